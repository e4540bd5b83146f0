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

    /// Where `compile` puts its libraries: one directory per test process, removed when the
    /// process exits (a loaded library stays mapped after its file is gone).
    static let compileDirectory: URL = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("dc-plugin-tests-\(getpid())")
        atexit { try? FileManager.default.removeItem(at: ExternalPluginTests.compileDirectory) }
        return dir
    }()

    /// Compiles C source into a shared library in `compileDirectory`.
    static func compile(_ name: String, _ source: String) throws -> String {
        let dir = compileDirectory
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

    /// The error a call throws, nil when it throws none.
    func throwing<T>(_ body: () throws -> T) -> Error? {
        do { _ = try body(); return nil } catch { return error }
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
        #expect(msg.contains(lib) && msg.contains("version 7") && msg.contains("expects version 2"), "\(msg)")
    }

    /// Version 1 descriptors have another layout: refused with both versions and the way out.
    @Test func refusesABIVersion1LibrariesNamingBothVersions() throws {
        let lib = try Self.compile("abiv1", Self.pluginSource(name: "abiv1", abi: "1u"))
        let msg = try #require(refusal(lib))
        #expect(msg.contains(lib) && msg.contains("version 1") && msg.contains("expects version 2")
                && msg.contains("from ABI v1 to v2"), "\(msg)")
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

    @Test func searchPathAndTheDevBuildsPluginsDirectoryAreScanned() throws {
        _ = try Self.shippedLibrary("l1-decoupled", "libl1_decoupled.so")
        let extra = try Self.compile("extra", Self.pluginSource(name: "extra_reg"))
        // A development build: the repository is found from the binary's path, not the working directory.
        let binary = Self.root.appendingPathComponent(".build/x86_64-unknown-linux-gnu/debug/decoupled").path
        let found = ExternalPluginLoader.candidates(executable: binary, environment: ["DECOUPLED_PLUGIN_PATH": extra])
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

    /// An external optimizer supplies only its direction; the host adds the coupled terms and
    /// applies the decoupled decay and the step around it, as the built-in kernels do: an
    /// external plain SGD (d = lr·g) with coupled L2 and L1 and decoupled decay is the
    /// built-in SGD kernel bit for bit, on one worker or three.
    @Test func externalOptimizerGetsTheEnginesPipelineAroundItsDirection() throws {
        let source = Self.descriptorSource("""
            { .struct_size = sizeof(dc_plugin), .kind = DC_PLUGIN_OPTIMIZER, .name = "ext_sgd", .version = "0.1",
              .hparam_count = 1, .hparams = hp, .direction = dir }
            """, prelude: """
            static const dc_plugin_hparam hp[] = {{"lr", 0.1, 0, 10, NULL}};
            static void dir(const dc_plugin_step *s, const float *w, const float *g, float *const *st, float *d, size_t n) {
                for (size_t i = 0; i < n; i++) d[i] = (float)s->lr * g[i];
            }
            """)
        let registry = PluginRegistry.builtIn()
        try ExternalPluginLoader.load(try Self.compile("ext_sgd", source), into: registry)
        let n = 70
        let w: [Float] = (0..<n).map { i in
            let x = Float((i * 37) % 101) / 50 - 1
            return i % 9 == 0 ? 0 : x  // exact zeros: sign(0) = 0 for L1
        }
        let gs = (0..<3).map { s in (0..<n).map { Float((($0 + s) * 53) % 97) / 48 - 1 } }
        let regs = [PluginSpec(name: "l2", params: ["lambda": .number(0.05)], key: "regularizers[0]"),
                    PluginSpec(name: "l1", params: ["lambda": .number(0.01)], key: "regularizers[1]"),
                    PluginSpec(name: "weight_decay", params: ["lambda": .number(0.1)], key: "regularizers[2]")]
        for workers in [1, 3] {
            let builtIn = try runSteps(spec("sgd", ["lr": .number(0.1)], regs: regs), w: w, grads: gs, registry: registry)
            let external = try runSteps(spec("ext_sgd", ["lr": .number(0.1)], regs: regs), w: w, grads: gs, registry: registry, workers: workers)
            #expect(external.w.map(\.bitPattern) == builtIn.w.map(\.bitPattern), "workers: \(workers)")
            // The statistics are the kernels' too.
            #expect(external.engine.apply().stats == builtIn.engine.apply().stats)
        }
    }

    /// The decay audit shows s_t only for a regularizer that declares it uses it
    /// (DC_PLUGIN_USES_DECAY_SCALE: l1_decoupled), not for a constraint (max_norm), which has
    /// no `scale` key either.
    @Test func theDecayAuditShowsTheScaleOnlyOfPluginsThatUseIt() throws {
        let registry = PluginRegistry.builtIn()
        try ExternalPluginLoader.load(try Self.shippedLibrary("l1-decoupled", "libl1_decoupled.so"), into: registry)
        try ExternalPluginLoader.load(try Self.shippedLibrary("max-norm", "libmax_norm.so"), into: registry)
        let tensors = [TensorSpec(name: "fc.weight", shape: [2, 3], role: .weight)]
        let l1 = PluginSpec(name: "l1_decoupled", params: ["lambda": .number(0.5), "scale": .text("schedule")], key: "regularizers[0]")
        let plan = try UpdatePlan(spec("sgd", ["lr": .number(0.1)], regs: [l1, PluginSpec(name: "max_norm", params: ["max_norm": .number(1.5)], key: "regularizers[1]")]),
                                  registry: registry, tensors: tensors)
        let audit = plan.decayAudit()
        let line = try #require(audit.split(separator: "\n").first { $0.hasPrefix("fc.weight") }.map(String.init), "\(audit)")
        #expect(line.contains("plugin l1_decoupled (lambda=0.5, scale=\"schedule\") × s_t=schedule; plugin max_norm (max_norm=1.5)"), "\(line)")
        #expect(!line.contains("max_norm=1.5) ×"), "\(line)")
        let error = #expect(throws: PluginError.self) {
            try UpdatePlan(spec("sgd", ["lr": .number(0.1)], regs: [PluginSpec(name: "max_norm", params: ["max_norm": .number(1.5), "scale": .text("lr")],
                                                                               key: "regularizers[0]")]), registry: registry, tensors: tensors)
        }
        #expect("\(error!)".contains("regularizers[0].scale"), "\(error!)")
    }

    /// The factored layouts reach C plugins: a tensor hook declaring matrix_rows, matrix_columns
    /// and vector_elements state gets each tensor's part with Adafactor's sizes ([B…, R], [B…, C]
    /// and the elements of a vector), writes them in place, and they are the arena's slots.
    @Test func factoredStateLayoutsReachCPlugins() throws {
        let source = Self.descriptorSource("""
            { .struct_size = sizeof(dc_plugin), .kind = DC_PLUGIN_REGULARIZER, .name = "factor_probe", .version = "0.1",
              .state_count = 3, .states = st, .phase = DC_PHASE_BEFORE, .tensor_apply = ta }
            """, prelude: """
            static const dc_plugin_state st[] = {{"r", 0, DC_STATE_MATRIX_ROWS}, {"c", 0, DC_STATE_MATRIX_COLUMNS},
                                                 {"v", -1, DC_STATE_VECTOR_ELEMENTS}};
            /* Row and column sums of g over each matrix of the last two dimensions; a vector's g into v. */
            static int64_t ta(const dc_plugin_step *s, const dc_tensor_info *t, float *w, float *g, float *const *st, double total) {
                if (t->rank < 2) { for (int64_t i = 0; i < t->count; i++) st[2][i] = g[i]; return 0; }
                const int64_t R = t->shape[t->rank - 2], C = t->shape[t->rank - 1], B = t->count / (R * C);
                for (int64_t b = 0; b < B; b++)
                    for (int64_t r = 0; r < R; r++)
                        for (int64_t c = 0; c < C; c++) {
                            st[0][b * R + r] += g[(b * R + r) * C + c];
                            st[1][b * C + c] += g[(b * R + r) * C + c];
                        }
                return 0;
            }
            """)
        let registry = PluginRegistry.builtIn()
        try ExternalPluginLoader.load(try Self.compile("factor_probe", source), into: registry)
        let tensors = [TensorSpec(name: "conv.weight", shape: [2, 3, 4], role: .weight),
                       TensorSpec(name: "fc.bias", shape: [5], role: .weight),
                       TensorSpec(name: "scale", shape: [], role: .weight)]
        let arena = try ParameterArena(specs: tensors)
        for e in arena.entries {
            let g = arena.view(arena.grads, e)
            for i in g.indices { g[i] = Float(i + 1) }
        }
        let plan = try UpdatePlan(spec("sgd", ["lr": .number(0.1)], regs: [PluginSpec(name: "factor_probe", params: [:], key: "regularizers[0]")]),
                                  registry: registry, tensors: tensors)
        let engine = try UpdateEngine(plan: plan, arena: arena, kernels: .best, workers: 2, chunkElements: 16)
        engine.apply()
        let (conv, bias, scalar) = (arena.entries[0], arena.entries[1], arena.entries[2])
        #expect(arena.stateShape("factor_probe.r", conv) == [2, 3] && arena.stateShape("factor_probe.c", conv) == [2, 4])
        #expect(arena.stateShape("factor_probe.v", conv) == [] && arena.stateShape("factor_probe.v", bias) == [5])
        #expect(arena.stateShape("factor_probe.r", bias) == [] && arena.stateShape("factor_probe.v", scalar) == [])
        // g = 1…24 as two 3×4 matrices: row sums 10, 26, 42, 58, 74, 90; column sums 15…18, 51…54.
        #expect(Array(arena.stateView("factor_probe.r", conv)) == [10, 26, 42, 58, 74, 90])
        #expect(Array(arena.stateView("factor_probe.c", conv)) == [15, 18, 21, 24, 51, 54, 57, 60])
        #expect(Array(arena.stateView("factor_probe.v", bias)) == [1, 2, 3, 4, 5] && arena.stateView("factor_probe.v", scalar)[0] == 1)
        // A matrix's vector_elements float and a vector's factored floats keep their initial values.
        #expect(arena.stateView("factor_probe.v", conv)[0] == -1 && arena.stateView("factor_probe.r", bias)[0] == 0)
    }

    /// ABI v2's init hook fills the anchor from the starting weights of a fresh run, after a
    /// skipped first batch too, and never after a resume (the checkpoint's anchor stays).
    @Test func anchorDecayInitHookRunsOncePerFreshRun() throws {
        let registry = PluginRegistry.builtIn()
        try ExternalPluginLoader.load(try Self.shippedLibrary("anchor-decay", "libanchor_decay.so"), into: registry)
        let n = 40
        let w = (0..<n).map { Float(($0 * 37) % 101) / 50 - 1 }
        let gs = (0..<3).map { s in (0..<n).map { Float((($0 + s) * 53) % 97) / 48 - 1 } }
        // λ·s_t = 1: every step ends back on the anchor, up to the rounding of w − (w − w₀).
        let s = spec("sgd", ["lr": .number(0.1)], regs: [PluginSpec(name: "anchor_decay", params: ["lambda": .number(1), "scale": .text("constant")],
                                                                    key: "regularizers[0]")])
        let (after, _, engine) = try runSteps(s, w: w, grads: gs, registry: registry)
        for i in 0..<n { #expect(abs(after[i] - w[i]) <= 1e-6 * max(1, abs(w[i])), "element \(i)") }
        let arena = engine.arena
        #expect(Array(arena.view(arena.slot("anchor_decay.anchor"), arena.entries[0])) == w)

        for (resumed, expected) in [(true, Float(7)), (false, w[0])] {
            let tensors = [TensorSpec(name: "fc.weight", shape: [n], role: .weight)]
            let a = try ParameterArena(specs: tensors)
            a.view(a.params, a.entries[0]).initialize(from: w)
            let e = try UpdateEngine(plan: try UpdatePlan(s, registry: registry, tensors: tensors), arena: a, kernels: .best)
            if resumed {
                a.view(a.slot("anchor_decay.anchor"), a.entries[0]).initialize(repeating: 7)  // the checkpoint's anchor
                e.restore(step: 5)
            } else {
                e.skipStep()  // a skipped first batch does not count as a resume
            }
            e.apply()
            #expect(a.view(a.slot("anchor_decay.anchor"), a.entries[0])[0] == expected, "resumed: \(resumed)")
        }
    }

    /// A library of one plugin with the given fields; `lib` overrides the library struct.
    static func descriptorSource(_ fields: String, prelude: String = "",
                                 lib: String = "DC_PLUGIN_ABI_VERSION, sizeof(dc_plugin_library), sizeof(plugins) / sizeof(plugins[0]), 0, plugins") -> String {
        """
        #include <decoupled_plugin.h>
        static int64_t apply(const dc_plugin_step *s, float *w, const float *g, float *const *st, size_t n) { return 0; }
        \(prelude)
        static const dc_plugin plugins[] = {\(fields)};
        static const dc_plugin_library lib = { \(lib) };
        const dc_plugin_library *decoupled_plugin_library(void) { return &lib; }
        """
    }

    /// Every field of a descriptor is checked before use: each broken library is refused with
    /// a message naming the file and the field, instead of crashing the host.
    @Test func malformedDescriptorsAreRefusedNamingTheField() throws {
        let hp = "static const dc_plugin_hparam hp[] = {{\"lambda\", 0.1, 0, 1, \"doc\"}, {\"lambda\", 0.1, 0, 1, NULL}};"
        let outOfRange = "static const dc_plugin_hparam hp[] = {{\"lambda\", 5, 0, 1, NULL}};"
        let scale = "static const dc_plugin_hparam hp[] = {{\"scale\", 0, 0, 1, NULL}};"
        let noName = "static const dc_plugin_hparam hp[] = {{NULL, 0, 0, 1, NULL}};"
        let states = "static const dc_plugin_state st[] = {{\"m\", 0}, {NULL, 0}};"
        let twinStates = "static const dc_plugin_state st[] = {{\"m\", 0}, {\"m\", 1}};"
        let infiniteState = "static const dc_plugin_state st[] = {{\"m\", 1.0f / 0.0f}};"
        let hooks = """
            static int64_t ta(const dc_plugin_step *s, const dc_tensor_info *t, float *w, float *g, float *const *st, double total) { return 0; }
            static double pa(const dc_plugin_step *s, const dc_tensor_info *t, const float *w, const float *g, float *const *st) { return 0; }
            """
        /// `hooks`: phase, flags, partial, tensor_apply, init_state (v2); then an optimizer's direction.
        func plugin(_ name: String = "\"p\"", kind: String = "DC_PLUGIN_REGULARIZER", summary: String = "\"t\"", hparams: String = "0, 0, NULL, NULL",
                    apply: String = "apply", size: String = "sizeof(dc_plugin)", hooks: String = "0, 0, NULL, NULL, NULL",
                    direction: String = "NULL") -> String {
            "{ \(size), \(kind), \(name), \"0.1\", \(summary), NULL, \(hparams), \(apply), \(hooks), \(direction) }"
        }
        let directionFn = "static void dir(const dc_plugin_step *s, const float *w, const float *g, float *const *st, float *d, size_t n) {}"
        let cases: [(String, String, String)] = [
            ("nullhparams", Self.descriptorSource(plugin(hparams: "1, 0, NULL, NULL")), "plugin 'p': hparams is NULL but hparam_count is 1"),
            ("nullstates", Self.descriptorSource(plugin(hparams: "0, 1, NULL, NULL")), "plugin 'p': states is NULL but state_count is 1"),
            ("nullname", Self.descriptorSource(plugin("NULL")), "plugin #0: name is NULL"),
            ("emptyname", Self.descriptorSource(plugin("\"\"")), "plugin #0: name is empty"),
            ("longname", Self.descriptorSource(plugin("\"\(String(repeating: "a", count: 100))\"")), "plugin #0: name is longer than 64 bytes"),
            ("spacename", Self.descriptorSource(plugin("\"a b\"")), "name \"a b\" must be letters, digits and '_'"),
            ("longsummary", Self.descriptorSource(plugin(summary: "\"\(String(repeating: "s", count: 300))\"")), "plugin 'p': summary is longer than 256 bytes"),
            ("nullapply", Self.descriptorSource(plugin(apply: "NULL")), "plugin 'p': apply, tensor_apply and init_state are all NULL"),
            ("nulldirection", Self.descriptorSource(plugin(kind: "DC_PLUGIN_OPTIMIZER", apply: "NULL")), "plugin 'p': direction is NULL"),
            ("applyopt", Self.descriptorSource(plugin(kind: "DC_PLUGIN_OPTIMIZER", direction: "dir"), prelude: directionFn),
             "plugin 'p': apply is set on an optimizer; an optimizer supplies only direction"),
            ("directionreg", Self.descriptorSource(plugin(direction: "dir"), prelude: directionFn),
             "plugin 'p': direction is set on a regularizer"),
            ("phasenohook", Self.descriptorSource(plugin(hooks: "DC_PHASE_AFTER, 0, NULL, NULL, NULL")), "phase is 2 but tensor_apply is NULL"),
            ("hooknophase", Self.descriptorSource(plugin(hooks: "DC_PHASE_NONE, 0, NULL, ta, NULL"), prelude: hooks), "tensor_apply is set but phase is DC_PHASE_NONE"),
            ("badphase", Self.descriptorSource(plugin(hooks: "9, 0, NULL, ta, NULL"), prelude: hooks), "phase is 9; expected 0 (none), 1 (before) or 2 (after)"),
            ("badflags", Self.descriptorSource(plugin(hooks: "0, 6, NULL, NULL, NULL")), "plugin 'p': flags is 6; the known flags are DC_PLUGIN_USES_DECAY_SCALE (1)"),
            ("flagsopt", Self.descriptorSource(plugin(kind: "DC_PLUGIN_OPTIMIZER", apply: "NULL", hooks: "0, DC_PLUGIN_USES_DECAY_SCALE, NULL, NULL, NULL", direction: "dir"),
                                               prelude: directionFn), "flags has DC_PLUGIN_USES_DECAY_SCALE, which is for regularizers"),
            ("partialonly", Self.descriptorSource(plugin(hooks: "DC_PHASE_NONE, 0, pa, NULL, NULL"), prelude: hooks), "partial is set but tensor_apply is NULL"),
            ("badlayout", Self.descriptorSource(plugin(hparams: "0, 1, NULL, st"), prelude: "static const dc_plugin_state st[] = {{\"m\", 0, 9}};"),
             "states[0] 'm': layout is 9; expected 0 (element), 1 (rows), 2 (columns), 3 (scalar), 4 (matrix_rows), 5 (matrix_columns) or 6 (vector_elements)"),
            ("infinitestate", Self.descriptorSource(plugin(hparams: "0, 1, NULL, st"), prelude: infiniteState), "states[0] 'm': initial_value inf is not finite"),
            ("badkind", Self.descriptorSource(plugin(kind: "7")), "plugin 'p': kind is 7"),
            ("smallplugin", Self.descriptorSource(plugin(size: "8")), "plugin #0: dc_plugin.struct_size is 8 bytes"),
            ("twinhparams", Self.descriptorSource(plugin(hparams: "2, 0, hp, NULL"), prelude: hp), "hparams[1].name 'lambda' is declared twice"),
            ("reservedscale", Self.descriptorSource(plugin(hparams: "1, 0, hp, NULL"), prelude: scale), "hparams[0].name 'scale' is reserved"),
            ("badrange", Self.descriptorSource(plugin(hparams: "1, 0, hp, NULL"), prelude: outOfRange), "hparams[0] 'lambda': default 5.0 is not a finite value in [0.0, 1.0]"),
            ("hparamnoname", Self.descriptorSource(plugin(hparams: "1, 0, hp, NULL"), prelude: noName), "hparams[0].name is NULL"),
            ("nullstate", Self.descriptorSource(plugin(hparams: "0, 2, NULL, st"), prelude: states), "states[1].name is NULL"),
            ("twinstates", Self.descriptorSource(plugin(hparams: "0, 2, NULL, st"), prelude: twinStates), "states[1].name 'm' is declared twice"),
            ("twinplugins", Self.descriptorSource(plugin() + ", " + plugin()), "name 'p' is declared twice"),
            ("nullplugins", Self.descriptorSource(plugin(), lib: "DC_PLUGIN_ABI_VERSION, sizeof(dc_plugin_library), 2, 0, NULL"), "plugins is NULL but plugin_count is 2"),
            ("noplugins", Self.descriptorSource(plugin(), lib: "DC_PLUGIN_ABI_VERSION, sizeof(dc_plugin_library), 0, 0, plugins"), "plugin_count is 0"),
            ("hugecount", Self.descriptorSource(plugin(), lib: "DC_PLUGIN_ABI_VERSION, sizeof(dc_plugin_library), 100000, 0, plugins"), "plugin_count is 100000"),
        ]
        for (name, source, expected) in cases {
            let lib = try Self.compile("malformed_\(name)", source)
            let registry = PluginRegistry.builtIn()
            let msg = try #require(refusal(lib, into: registry), "\(name) was accepted")
            #expect(msg.contains(lib) && msg.contains(expected), "\(name): \(msg)")
            #expect(registry.all.allSatisfy { $0.source == "built-in" }, "\(name): a refused library registered something")
        }
    }

    /// Offered libraries load only when a lookup needs a name no built-in has; a refused one
    /// (malformed, another ABI, a mistyped path) is reported, and is an error only for the
    /// names it declares.
    @Test func aRefusedLibraryIsAnErrorOnlyForTheNamesItDeclares() throws {
        let marker = FileManager.default.temporaryDirectory.appendingPathComponent("dc-ctor-\(getpid())").path
        try? FileManager.default.removeItem(atPath: marker)
        // The constructor of `good` leaves a file: proof that the library was loaded (and its code run).
        let good = try Self.compile("lazygood", Self.pluginSource(name: "lazy_good")
            + "\n#include <stdio.h>\n__attribute__((constructor)) static void loaded(void) { fclose(fopen(\"\(marker)\", \"w\")); }\n")
        let bad = try Self.compile("lazybad", Self.descriptorSource(
            "{ sizeof(dc_plugin), DC_PLUGIN_REGULARIZER, \"lazy_bad\", \"0.1\", \"t\", NULL, 1, 0, NULL, NULL, apply }"))
        let otherABI = try Self.compile("lazyabi", Self.pluginSource(name: "lazy_abi", abi: "9u"))
        let typo = "/nonexistent/libtypo.so"
        let registry = PluginRegistry.builtIn()
        var warned: [String] = []
        registry.onRefusal = { warned.append($0.path) }
        registry.deferExternal([good, bad, otherABI, typo])

        // Built-ins need no library: nothing is loaded, no code of a library runs.
        _ = try registry.regularizer(named: "l2")
        _ = try registry.optimizer(named: "adam")
        #expect(registry.deferredLibraries.count == 4 && warned.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: marker))

        // A name no built-in has loads them all; the refusals are warnings.
        #expect(try registry.regularizer(named: "lazy_good").source == good)
        #expect(FileManager.default.fileExists(atPath: marker))
        #expect(warned == [bad, otherABI, typo])
        #expect(registry.refusedLibraries.map(\.declaredNames) == [["lazy_bad"], [], []])

        // A name a refused library declares: its refusal, naming the file and the field.
        let e1 = "\(try #require(throwing { try registry.regularizer(named: "lazy_bad") }))"
        #expect(e1.contains(bad) && e1.contains("declares regularizer 'lazy_bad' but was refused") && e1.contains("hparams is NULL"), "\(e1)")
        // A name nobody declares: unknown, with the libraries that could not be read.
        let e2 = "\(try #require(throwing { try registry.optimizer(named: "lazy_abi") }))"
        #expect(e2.contains("unknown optimizer 'lazy_abi'") && e2.contains(otherABI) && e2.contains("version 9") && e2.contains(typo), "\(e2)")
        let listing = registry.listing()
        #expect(listing.contains("regularizer lazy_good 0.1") && listing.contains("refused \(bad)") && listing.contains("refused \(typo)"), "\(listing)")
        try? FileManager.default.removeItem(atPath: marker)
    }

    /// Libraries come from the installation (next to the binary) and from the repository a
    /// development binary was built in, found from the binary's path.
    @Test func candidatesComeFromTheBinarysInstallationOrRepository() throws {
        let top = FileManager.default.temporaryDirectory.appendingPathComponent("dc-layout-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: top) }
        func touch(_ path: String) throws {
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            _ = FileManager.default.createFile(atPath: path, contents: Data())
        }
        for f in ["prefix/bin/decoupled", "prefix/lib/decoupled/plugins/libinstalled.so", "prefix/plugins/x/build/libnot.so",
                  "repo/Package.swift", "repo/plugins/p/build/libdev.so", "repo/.build/x86_64-unknown-linux-gnu/release/decoupled"] {
            try touch("\(top)/\(f)")
        }
        #expect(ExternalPluginLoader.candidates(executable: "\(top)/prefix/bin/decoupled", environment: [:])
                == ["\(top)/prefix/lib/decoupled/plugins/libinstalled.so"])
        #expect(ExternalPluginLoader.candidates(executable: "\(top)/repo/.build/x86_64-unknown-linux-gnu/release/decoupled", environment: [:])
                == ["\(top)/repo/plugins/p/build/libdev.so"])
    }
}
