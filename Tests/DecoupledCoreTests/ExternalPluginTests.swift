import CDecoupledKernels
import DecoupledCore
import Foundation
import Testing

/// External plugins through the C ABI: the two shipped plugins, and deliberately broken
/// libraries compiled here, which the loader must refuse with a message naming the file.
@Suite(.serialized) struct ExternalPluginTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let abiInclude = root.appendingPathComponent("Sources/CDecoupledPluginABI/include").path

    /// Runs a command, failing the test with its output if it fails.
    @discardableResult
    static func sh(_ args: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = args
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        if p.terminationStatus != 0 { throw PluginError.library(path: args.joined(separator: " "), message: out) }
        return out
    }

    /// The shipped plugins, built with their own one-command build (as `make test` does).
    static func shippedLibrary(_ dir: String, _ lib: String) throws -> String {
        try sh(["make", "-s", "-C", root.appendingPathComponent("plugins/\(dir)").path])
        return root.appendingPathComponent("plugins/\(dir)/build/\(lib)").path
    }

    /// Compiles C source into a shared library in a temp directory.
    static func compile(_ name: String, _ source: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("dc-plugin-tests-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let c = dir.appendingPathComponent("\(name).c"), so = dir.appendingPathComponent("lib\(name).so")
        try source.write(to: c, atomically: true, encoding: .utf8)
        try sh(["cc", "-shared", "-fPIC", "-I", abiInclude, "-o", so.path, c.path])
        return so.path
    }

    static func pluginSource(name: String, abi: String = "DC_PLUGIN_ABI_VERSION", entry: String = "decoupled_plugin_library") -> String {
        """
        #include <decoupled_plugin.h>
        static int64_t apply(const dc_plugin_step *s, float *w, const float *g, float *const *st, size_t n) { return 0; }
        static const dc_plugin plugins[] = {{ sizeof(dc_plugin), DC_PLUGIN_REGULARIZER, "\(name)", "0.1", "test", NULL, 0, 0, NULL, NULL, apply }};
        static const dc_plugin_library lib = { \(abi), sizeof(dc_plugin_library), 1, 0, plugins };
        const dc_plugin_library *\(entry)(void) { return &lib; }
        """
    }

    func refusal(_ path: String, into registry: PluginRegistry = .builtIn()) -> String? {
        do {
            try ExternalPluginLoader.load(path, into: registry)
            return nil
        } catch { return "\(error)" }
    }

    @Test func refusesWrongABIVersionNamingFileAndVersions() throws {
        let lib = try Self.compile("wrongabi", Self.pluginSource(name: "wrongabi", abi: "7u"))
        let msg = try #require(refusal(lib))
        #expect(msg.contains(lib) && msg.contains("version 7") && msg.contains("expects version 1"), "\(msg)")
    }

    @Test func refusesMissingEntrySymbol() throws {
        let lib = try Self.compile("noentry", Self.pluginSource(name: "noentry", entry: "some_other_symbol"))
        let msg = try #require(refusal(lib))
        #expect(msg.contains(lib) && msg.contains("decoupled_plugin_library"), "\(msg)")
    }

    @Test func refusesDuplicateNamesAndRegistersNothingOfARefusedLibrary() throws {
        let clash = try Self.compile("clash", Self.pluginSource(name: "weight_decay"))
        let msg = try #require(refusal(clash))
        #expect(msg.contains("'weight_decay'") && msg.contains(clash) && msg.contains("built-in"), "\(msg)")
        let registry = PluginRegistry.builtIn()
        let a = try Self.compile("dupa", Self.pluginSource(name: "twin"))
        let b = try Self.compile("dupb", Self.pluginSource(name: "twin"))
        try ExternalPluginLoader.load(a, into: registry)
        let second = try #require(refusal(b, into: registry))
        #expect(second.contains(a) && second.contains(b), "\(second)")
    }

    @Test func refusesFilesThatAreNotLibraries() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("dc-not-a-lib-\(getpid()).so").path
        try "not an ELF file".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(refusal(path)?.contains("cannot be loaded") == true)
        #expect(refusal("/nonexistent/libx.so")?.contains("no such file") == true)
    }

    @Test func searchPathAndPluginsDirectoryAreScanned() throws {
        _ = try Self.shippedLibrary("l1-decoupled", "libl1_decoupled.so")
        let extra = try Self.compile("extra", Self.pluginSource(name: "extra_reg"))
        let found = ExternalPluginLoader.candidates(root: Self.root, environment: ["DECOUPLED_PLUGIN_PATH": extra])
        #expect(found.contains { $0.hasSuffix("plugins/l1-decoupled/build/libl1_decoupled.so") })
        #expect(found.contains(extra))
    }

    @Test func decoupledL1ByNameReachesExactZeros() throws {
        let registry = PluginRegistry.builtIn()
        try ExternalPluginLoader.load(try Self.shippedLibrary("l1-decoupled", "libl1_decoupled.so"), into: registry)
        #expect(registry.listing().contains("regularizer l1_decoupled 1.0.0"))
        // SGD lr 0.25, g = 0, l1_decoupled λ = 0.5 with lr scale: threshold 0.125 per step
        let s = spec("sgd", ["lr": .number(0.25)],
                     regs: [PluginSpec(name: "l1_decoupled", params: ["lambda": .number(0.5)], key: "regularizers[0]")])
        let r = try runSteps(s, w: [1, -0.2, 0.1, 0], grads: [[0, 0, 0, 0], [0, 0, 0, 0]], registry: registry)
        #expect(r.w == [0.75, 0, 0, 0])
        // the pass reports its metric: exact zeros after the pass
        let report = r.engine.apply()
        #expect(report.passMetrics["l1_decoupled.zeros"] == 3)
        // an out-of-range value is refused like a built-in's
        #expect(throws: PluginError.self) {
            try UpdatePlan(spec("sgd", [:], regs: [PluginSpec(name: "l1_decoupled", params: ["lambda": .number(-1)], key: "r")]),
                           registry: registry, tensors: [TensorSpec(name: "w", shape: [1], role: .weight)])
        }
    }

    @Test func lionOptimizerPluginIsDeterministicAcrossWorkers() throws {
        let registry = PluginRegistry.builtIn()
        try ExternalPluginLoader.load(try Self.shippedLibrary("lion", "liblion.so"), into: registry)
        let n = 5000
        let w = (0..<n).map { Float(($0 * 37) % 101) / 50 - 1 }
        let gs = (0..<3).map { s in (0..<n).map { Float((($0 + s) * 53) % 97) / 48 - 1 } }
        let s = spec("lion", ["lr": .number(0.01)],
                     regs: [PluginSpec(name: "weight_decay", params: ["lambda": .number(0.1)], key: "regularizers[0]")])
        let one = try runSteps(s, w: w, grads: gs, registry: registry, workers: 1).w
        let three = try runSteps(s, w: w, grads: gs, registry: registry, workers: 3).w
        #expect(one.map(\.bitPattern) == three.map(\.bitPattern))
        // Lion moves every weight by exactly lr per step (plus decay): first element
        let expected = ((w[0] * Float(1 - 0.01 * 0.1)) - 0.01 * (gs[0][0] > 0 ? 1 : -1))
        let first = try runSteps(s, w: w, grads: [gs[0]], registry: registry).w[0]
        #expect(first == expected)
    }
}
