import DecoupledCheckpoint
import Foundation
import Testing

/// Every command's `--help`, rendered by the built binary at 80 columns as a user sees it
/// (COLUMNS=80, output not a terminal): no line longer than the screen, no example broken
/// across lines, no paragraph broken where ArgumentParser would not break it (text
/// pre-wrapped in the source gets wrapped a second time into ragged lines).
@Suite struct HelpTextTests {
    static let columns = 80
    /// Commands hidden from their parent's SUBCOMMANDS list, found by name.
    static let hidden = [["checkpoint", "synthesize"], ["sweep", "event"]]

    func help(_ path: [String]) throws -> String {
        var env = ProcessInfo.processInfo.environment
        env["COLUMNS"] = String(Self.columns)
        let r = try Subprocess.run(decoupledBinary, path + ["--help"],
                                   options: .init(environment: env, workingDirectory: NSTemporaryDirectory(), timeout: 60))
        #expect(r.status == 0, "decoupled \(path.joined(separator: " ")) --help: \(r.stderr)")
        return r.stdout
    }

    /// The names listed under SUBCOMMANDS: (two-space indented; wrapped abstracts indent more).
    static func subcommands(_ text: String) -> [String] {
        let lines = text.components(separatedBy: "\n")
        guard let start = lines.firstIndex(of: "SUBCOMMANDS:") else { return [] }
        return lines[(start + 1)...].prefix { !$0.isEmpty }
            .filter { $0.hasPrefix("  ") && !$0.hasPrefix("   ") }
            .compactMap { $0.split(separator: " ").first.map(String.init) }
    }

    /// Every problem of one rendered help text; empty when it reads as intended.
    static func problems(_ text: String) -> [String] {
        var found: [String] = []
        let lines = text.components(separatedBy: "\n")
        func indent(_ l: String) -> Int { l.prefix { $0 == " " }.count }
        for l in lines where l.count > columns { found.append("longer than \(columns) columns: \(l)") }
        var i = 0
        while i < lines.count {
            guard lines[i].hasSuffix("Examples:") else { i += 1; continue }
            var examples = 0
            i += 1
            while i < lines.count, !lines[i].isEmpty {
                let l = lines[i], previous = lines[i - 1]
                if indent(l) == 2 {
                    // An example starts with the command, perhaps after environment variables.
                    let words = l.dropFirst(2).split(separator: " ")
                    let command = words.drop { $0.contains("=") && $0.first!.isUppercase }.first
                    if command != "decoupled" { found.append("example line not starting with `decoupled`: \(l)") }
                    examples += 1
                } else if indent(l) < 4 || !previous.hasSuffix(" \\") {
                    // A continuation is indented and follows an explicit `\`; anything else is an
                    // example cut by the wrapper.
                    found.append("broken example: \(previous) ⏎ \(l)")
                }
                i += 1
            }
            if examples == 0 { found.append("empty Examples: block") }
        }
        // Paragraph text (not indented) broken although the next word would have fitted: a
        // newline in the source, not the wrapper's. A line ending a sentence or introducing a
        // list may end early (the abstract, then the discussion, start new lines).
        for (l, next) in zip(lines, lines.dropFirst()) where !l.isEmpty && !next.isEmpty && indent(l) == 0 && indent(next) == 0 {
            guard let last = l.last, !".:".contains(last) else { continue }
            let word = next.prefix { $0 != " " }
            if l.count + 1 + word.count < columns { found.append("paragraph broken early: \(l) ⏎ \(next)") }
        }
        return found
    }

    @Test func everyCommandsHelpFitsEightyColumnsWithWholeExamples() throws {
        #expect(FileManager.default.isExecutableFile(atPath: decoupledBinary), "build with `swift build --build-tests` first")
        var queue: [[String]] = [[]] + Self.hidden, seen = 0
        var report: [String] = []
        while !queue.isEmpty {
            let path = queue.removeFirst()
            let text = try help(path)
            seen += 1
            report += Self.problems(text).map { "decoupled \(path.joined(separator: " ")) --help: \($0)" }
            queue += Self.subcommands(text).filter { $0 != "help" }.map { path + [$0] }.filter { !Self.hidden.contains($0) }
        }
        #expect(seen >= 25, "only \(seen) commands found")
        #expect(report.isEmpty, "\(report.joined(separator: "\n"))")
    }

    /// The checks themselves: text pre-wrapped in the source and an example cut by the wrapper
    /// are caught; an unwrapped paragraph and an indented continuation after `\` are not.
    @Test func theChecksCatchPreWrappedTextAndCutExamples() {
        let good = """
        OVERVIEW: Train a model.
        Streams the data file in minibatches and writes everything into the run
        directory.

        Examples:
          decoupled train examples/fashion-mlp-adamw.toml --set train.epochs=5
          decoupled convert --from caffe --to keras --optimizer sgd --lr 0.01 \\
              --weight-decay 0.0005
          DECOUPLED_KERNELS=scalar decoupled bench kernels
        """
        #expect(Self.problems(good).isEmpty, "\(Self.problems(good))")
        let preWrapped = """
        Streams the [data] file in minibatches, trains the
        [model] with the [optimizer] of CONFIG.
        """
        #expect(Self.problems(preWrapped).contains { $0.hasPrefix("paragraph broken early") })
        let cut = """
        Examples:
          decoupled train examples/fashion-mlp-adamw.toml --set optimizer.lr=3e-4 --set
        train.epochs=5
        """
        #expect(Self.problems(cut).contains { $0.hasPrefix("broken example") })
        #expect(Self.problems(String(repeating: "x", count: 81)).count == 1)
    }
}
