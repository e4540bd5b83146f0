import DecoupledCore
import DecoupledTraining
import Foundation
import Testing

/// docs/convert.md's examples are tests, so the document cannot drift from the command:
/// every ```console block that starts with `$ decoupled convert` is parsed with the option
/// table the command uses (`ConversionOption`), run through the library, and its output must
/// be the block's text exactly (`Error: …` blocks: the error's one line). The config each
/// example prints must read back through the config reader and make the source setting's
/// updates, as its verdict says.
@Suite struct ConvertTests {
    static let doc = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("docs/convert.md")

    /// One documented command and its expected output.
    struct Example: Sendable, CustomTestStringConvertible {
        let line: Int
        let arguments: [String]
        let output: [String]
        var testDescription: String { "docs/convert.md:\(line)" }
    }

    /// The examples of docs/convert.md, in order.
    static var examples: [Example] {
        guard let text = try? String(contentsOf: doc, encoding: .utf8) else { return [] }
        let lines = text.components(separatedBy: "\n")
        var out: [Example] = []
        var i = 0
        while i < lines.count {
            defer { i += 1 }
            guard lines[i] == "```console", i + 1 < lines.count, lines[i + 1].hasPrefix("$ decoupled convert") else { continue }
            let start = i + 1
            var command = ""
            var j = start
            // The command, with shell line continuations.
            while j < lines.count {
                let l = lines[j]
                command += " " + (l.hasSuffix("\\") ? String(l.dropLast()) : l)
                j += 1
                if !l.hasSuffix("\\") { break }
            }
            var output: [String] = []
            while j < lines.count, lines[j] != "```" {
                output.append(lines[j])
                j += 1
            }
            let words = command.split(separator: " ").map(String.init)
            out.append(Example(line: start + 1, arguments: Array(words.dropFirst(3)), output: output))
            i = j
        }
        return out
    }

    /// Command-line words to `ConversionRequest`'s input, as ArgumentParser reads them for
    /// `ConvertCommand`: `--name value`, switches alone.
    static func parse(_ words: [String]) throws -> ([ConversionOption: String], Set<ConversionOption>) {
        var values: [ConversionOption: String] = [:]
        var switches: Set<ConversionOption> = []
        var k = 0
        while k < words.count {
            guard words[k].hasPrefix("--"), let o = ConversionOption(rawValue: String(words[k].dropFirst(2))) else {
                throw ConversionError(.from, "docs/convert.md: '\(words[k])' is not an option of decoupled convert")
            }
            if o.isSwitch {
                switches.insert(o)
            } else {
                guard k + 1 < words.count else { throw ConversionError(o, "docs/convert.md: no value") }
                values[o] = words[k + 1]
                k += 1
            }
            k += 1
        }
        return (values, switches)
    }

    @Test func docHasTheExamples() {
        let all = Self.examples
        #expect(all.count >= 20, "expected the examples in \(Self.doc.path)")
        func has(_ command: String) -> Bool { all.contains { $0.arguments.joined(separator: " ") == command } }
        // Issue 7's two required examples.
        #expect(has("--from caffe --to keras --optimizer sgd --lr 0.01 --weight-decay 0.0005 --momentum 0.9"))
        #expect(has("--from pytorch --to paper --optimizer adamw --lr 0.001 --weight-decay 0.01"))
        #expect(all.contains { $0.output.first?.hasPrefix("Error: ") == true })
        #expect(all.contains { $0.output.first?.hasPrefix("no exact equivalent") == true })
    }

    @Test(arguments: ConvertTests.examples)
    func docExampleIsWhatTheCommandPrints(_ e: Example) throws {
        let (values, switches) = try Self.parse(e.arguments)
        if let first = e.output.first, first.hasPrefix("Error: ") {
            #expect(e.output.count == 1, "an error example shows the one error line")
            #expect(throws: ConversionError.self) { try ConversionRequest(values: values, switches: switches) }
            do {
                _ = try ConversionRequest(values: values, switches: switches)
            } catch let error as ConversionError {
                #expect("Error: \(error)" == first)
            }
            return
        }
        let c = Conversion(try ConversionRequest(values: values, switches: switches))
        let printed = c.text.components(separatedBy: "\n")
        for (k, (a, b)) in zip(printed, e.output).enumerated() where a != b {
            Issue.record("docs/convert.md:\(e.line + k + 1): the command prints\n\(a)\nthe doc says\n\(b)")
            break
        }
        #expect(printed.count == e.output.count, "\(printed.count) lines printed, \(e.output.count) documented")

        // The documented config, read back by the config reader, makes the source's updates.
        guard let at = e.output.firstIndex(of: "config:") else {
            #expect(c.verdict == .none, "a conversion with a setting shows its config")
            return
        }
        let config = e.output[(at + 1)...].prefix { $0.hasPrefix("  ") }.map { String($0.dropFirst(2)) }.joined(separator: "\n")
        let root = try ConfigReader.parse(config, file: "docs/convert.md:\(e.line)")
        let target = try OptimizationConfig.read(root)
        try root.finish()
        var rng = Seeded(UInt64(e.line))
        let w = (0..<20).map { _ in Float(rng.uniform() * 2 - 1) }
        let gs = (0..<25).map { _ in (0..<20).map { _ in Float((rng.uniform() - 0.5) * 2) } }
        let atConstant = Self.difference(try Self.run(c.sourceSpec, Self.constant, w, gs), try Self.run(target, Self.constant, w, gs))
        let atVarying = Self.difference(try Self.run(c.sourceSpec, Self.varying, w, gs), try Self.run(target, Self.varying, w, gs))
        switch c.verdict {
        case .exact:
            #expect(atConstant <= 2e-6 && atVarying <= 2e-6, "exact, but \(atConstant) / \(atVarying) apart")
        case .exactWhileLRConstant:
            #expect(atConstant <= 2e-6, "\(atConstant) apart at a constant lr")
            #expect(atVarying > 1e-3, "only \(atVarying) apart under a schedule")
        case .approximate:
            #expect(atConstant <= 1e-3 && atVarying <= 1e-3, "\(atConstant) / \(atVarying) apart")
        case .none:
            Issue.record("a config printed with verdict none")
        }
    }

    // MARK: engine

    static let constant = ScheduleSpec(unit: .step)
    static let varying = ScheduleSpec(plugin: PluginSpec(name: "multistep", params: ["milestones": .numbers([6, 15]), "gamma": .number(0.3)],
                                                         key: "schedule"), unit: .step)

    /// A weight and a bias (decay_bias = true decays both) through plan and engine.
    static func run(_ spec: OptimizationSpec, _ schedule: ScheduleSpec, _ w: [Float], _ grads: [[Float]]) throws -> [Float] {
        var s = spec
        s.schedule = schedule
        let n = w.count / 2
        let specs = [TensorSpec(name: "fc.weight", shape: [n], role: .weight), TensorSpec(name: "fc.bias", shape: [w.count - n], role: .bias)]
        let arena = try ParameterArena(specs: specs)
        let plan = try UpdatePlan(s, registry: .builtIn(), tensors: specs)
        let engine = try UpdateEngine(plan: plan, arena: arena, kernels: try KernelPath.named("scalar"), workers: 1, chunkElements: 16)
        _ = arena.view(arena.params, arena.entries[0]).initialize(from: w[..<n])
        _ = arena.view(arena.params, arena.entries[1]).initialize(from: w[n...])
        for g in grads {
            _ = arena.view(arena.grads, arena.entries[0]).initialize(from: g[..<n])
            _ = arena.view(arena.grads, arena.entries[1]).initialize(from: g[n...])
            engine.apply()
        }
        return Array(arena.view(arena.params, arena.entries[0])) + Array(arena.view(arena.params, arena.entries[1]))
    }

    static func difference(_ a: [Float], _ b: [Float]) -> Float {
        let scale = max(a.map(abs).max() ?? 0, b.map(abs).max() ?? 0, 1e-30)
        return zip(a, b).map { abs($0 - $1) }.max()! / scale
    }

    /// A small seeded generator (the data only has to be fixed per example).
    struct Seeded {
        var s: UInt64
        init(_ seed: UInt64) { s = seed &+ 0x9e37_79b9_7f4a_7c15 }
        mutating func uniform() -> Double {
            s = s &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Double(s >> 11) * 0x1.0p-53
        }
    }
}
