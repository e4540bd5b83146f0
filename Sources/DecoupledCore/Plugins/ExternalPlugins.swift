import CDecoupledKernels
import CDecoupledPluginABI
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Loads external plugins: shared libraries exporting `decoupled_plugin_library` (the C ABI of
/// `decoupled_plugin.h`), found in `plugins/*/build/` and in `DECOUPLED_PLUGIN_PATH`.
/// A library built for another ABI version, missing the symbol, malformed, or registering a
/// name already taken is refused with a message naming the file.
public enum ExternalPluginLoader {
    public static let pathVariable = "DECOUPLED_PLUGIN_PATH"

    /// Shared libraries in `plugins/*/build/` under `root` and in the search path
    /// (colon-separated directories or files).
    public static func candidates(root: URL, environment: [String: String]) -> [String] {
        var found: [String] = []
        let fm = FileManager.default
        func scan(_ dir: String) {
            guard let names = try? fm.contentsOfDirectory(atPath: dir) else { return }
            for n in names.sorted() where n.hasSuffix(".so") || n.hasSuffix(".dylib") { found.append(dir + "/" + n) }
        }
        let pluginsDir = root.appendingPathComponent("plugins").path
        for p in ((try? fm.contentsOfDirectory(atPath: pluginsDir)) ?? []).sorted() { scan(pluginsDir + "/" + p + "/build") }
        for entry in (environment[pathVariable] ?? "").split(separator: ":").map(String.init) where !entry.isEmpty {
            var isDir: ObjCBool = false
            if fm.fileExists(atPath: entry, isDirectory: &isDir), isDir.boolValue { scan(entry) } else { found.append(entry) }
        }
        var seen = Set<String>()
        return found.filter { seen.insert(URL(fileURLWithPath: $0).standardizedFileURL.path).inserted }
    }

    /// Loads every candidate into `registry`; the first refusal stops with its error.
    public static func loadAll(into registry: PluginRegistry, root: URL, environment: [String: String]) throws {
        for path in candidates(root: root, environment: environment) { try load(path, into: registry) }
    }

    /// Loads one library and registers its plugins.
    public static func load(_ path: String, into registry: PluginRegistry) throws {
        guard FileManager.default.fileExists(atPath: path) else {
            throw PluginError.library(path: path, message: "no such file")
        }
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            throw PluginError.library(path: path, message: "cannot be loaded: \(String(cString: dlerror()))")
        }
        guard let sym = dlsym(handle, DC_PLUGIN_ENTRY_SYMBOL) else {
            throw PluginError.library(path: path, message: "does not export the entry symbol '\(DC_PLUGIN_ENTRY_SYMBOL)'; is it a Decoupled plugin?")
        }
        let entry = unsafeBitCast(sym, to: dc_plugin_entry_fn.self)
        guard let lib = entry() else { throw PluginError.library(path: path, message: "entry symbol returned NULL") }
        // Version and size first: read nothing else from a library built for another ABI.
        let version = lib.pointee.abi_version
        guard version == DC_PLUGIN_ABI_VERSION else {
            throw PluginError.library(path: path, message: "was built for plugin ABI version \(version), this host expects version \(DC_PLUGIN_ABI_VERSION); rebuild it against this decoupled_plugin.h")
        }
        guard lib.pointee.struct_size >= MemoryLayout<dc_plugin_library>.size else {
            throw PluginError.library(path: path, message: "dc_plugin_library is \(lib.pointee.struct_size) bytes, expected \(MemoryLayout<dc_plugin_library>.size)")
        }
        guard lib.pointee.plugin_count > 0, let plugins = lib.pointee.plugins else {
            throw PluginError.library(path: path, message: "declares no plugins")
        }
        var loaded: [Plugin] = []
        for i in 0..<Int(lib.pointee.plugin_count) {
            let p = plugins + i
            guard p.pointee.struct_size >= MemoryLayout<dc_plugin>.size else {
                throw PluginError.library(path: path, message: "plugin #\(i): dc_plugin is \(p.pointee.struct_size) bytes, expected \(MemoryLayout<dc_plugin>.size)")
            }
            guard let cname = p.pointee.name, !String(cString: cname).isEmpty, p.pointee.apply != nil else {
                throw PluginError.library(path: path, message: "plugin #\(i) has no name or no apply function")
            }
            let desc = try ExternalDescriptor(p, path: path)
            switch p.pointee.kind {
            case DC_PLUGIN_REGULARIZER.rawValue: loaded.append(ExternalRegularizer(desc))
            case DC_PLUGIN_OPTIMIZER.rawValue: loaded.append(ExternalOptimizer(desc))
            default:
                throw PluginError.library(path: path, message: "plugin '\(desc.name)' has unknown kind \(p.pointee.kind)")
            }
        }
        // Check every name before registering any, so a refused library leaves no half of itself.
        for (i, p) in loaded.enumerated() {
            try registry.checkAvailable(p.name, source: path)
            if loaded[..<i].contains(where: { $0.name == p.name }) {
                throw PluginError.duplicate(name: p.name, existing: path, new: path)
            }
        }
        for p in loaded { try registry.register(p) }
    }
}

/// What the C struct says, copied into Swift once at load time.
struct ExternalDescriptor {
    let plugin: UnsafePointer<dc_plugin>
    let name, version, summary, source: String
    let metric: String?
    let hyper: [HyperParameterSpec]
    let stateNames: [String]

    init(_ p: UnsafePointer<dc_plugin>, path: String) throws {
        plugin = p
        name = String(cString: p.pointee.name)
        version = p.pointee.version.map { String(cString: $0) } ?? "unversioned"
        summary = p.pointee.summary.map { String(cString: $0) } ?? ""
        metric = p.pointee.metric.map { String(cString: $0) }
        source = path
        var hs: [HyperParameterSpec] = []
        for i in 0..<Int(p.pointee.hparam_count) {
            let h = p.pointee.hparams[i]
            guard let n = h.name else { throw PluginError.library(path: path, message: "plugin '\(name)': hyper-parameter #\(i) has no name") }
            guard h.min_value <= h.default_value, h.default_value <= h.max_value else {
                throw PluginError.library(path: path, message: "plugin '\(name)': default of \(String(cString: n)) is outside its range")
            }
            hs.append(HyperParameterSpec(String(cString: n), .number(h.min_value...h.max_value),
                                         default: .number(h.default_value), h.doc.map { String(cString: $0) } ?? ""))
        }
        hyper = hs
        stateNames = (0..<Int(p.pointee.state_count)).map { String(cString: p.pointee.state_names[$0]!) }
    }

    /// One call of the plugin's `apply` on a piece, with its state slots offset to the piece.
    /// `values` (the hyper-parameters the step points to) is kept alive for the call.
    func apply(_ step: Pinned<dc_plugin_step>, _ values: HyperArray, _ states: [UnsafeMutablePointer<Float>],
               _ arena: ParameterArena, _ p: Sharder.Piece) -> Int64 {
        withExtendedLifetime(values) {
            var slots = states.map { Optional($0 + p.offset) }
            return slots.withUnsafeMutableBufferPointer { s in
                plugin.pointee.apply!(step.pointer, arena.params.base + p.offset, arena.grads.base + p.offset, s.baseAddress, p.count)
            }
        }
    }

    /// The C step struct for a context; `values` must outlive the call.
    func step(_ c: StepContext, _ values: UnsafePointer<Double>, decayScale: Double, fused: FusedRegularization) -> dc_plugin_step {
        dc_plugin_step(struct_size: UInt32(MemoryLayout<dc_plugin_step>.size), reserved: 0, step: Int64(c.step),
                       lr: c.lr, eta: c.eta, decay_scale: decayScale, hparams: values,
                       coupled_l2: Float(fused.l2), coupled_l1: Float(fused.l1), decay_keep: Float(1 - fused.decay),
                       reserved_f: 0)
    }
}

/// Hyper-parameter values in declaration order, kept alive for the C callbacks.
final class HyperArray {
    let values: UnsafeMutablePointer<Double>
    init(_ hp: HyperValues, _ specs: [HyperParameterSpec]) {
        values = .allocate(capacity: max(1, specs.count))
        for (i, s) in specs.enumerated() { values[i] = hp.number(s.name) }
    }
    deinit { values.deallocate() }
}

/// An external regularizer: runs on each chunk right after the optimizer's kernel. The host
/// adds the decoupled `scale` choice (lr | schedule | constant) and passes s_t as decay_scale.
final class ExternalRegularizer: RegularizerPlugin {
    let d: ExternalDescriptor
    var name: String { d.name }
    var version: String { d.version }
    let kind = PluginKind.regularizer
    var summary: String { d.summary }
    var source: String { d.source }
    var metricName: String? { d.metric }
    let hyperParameters: [HyperParameterSpec]

    init(_ d: ExternalDescriptor) {
        self.d = d
        hyperParameters = d.hyper + [DecayScale.spec]
    }

    func isDecoupled(_ hp: HyperValues) -> Bool { true }
    func fused(_ hp: HyperValues, context: StepContext) -> FusedRegularization { FusedRegularization() }
    func penalty(_ hp: HyperValues, sumSquares: Double, sumAbs: Double) -> Double? { nil }
    func audit(_ hp: HyperValues) -> String { "plugin \(name) (\(hp)) × s_t=\(hp.text("scale"))" }

    func pass(_ hp: HyperValues, context: StepContext, arena: ParameterArena) -> PiecePass? {
        let values = HyperArray(hp, d.hyper)
        let scale = DecayScale(rawValue: hp.text("scale"))!.value(context)
        let states = d.stateNames.map { arena.slot("\(name).\($0)").base }
        let step = Pinned(d.step(context, values.values, decayScale: scale, fused: FusedRegularization()))
        return { p in self.d.apply(step, values, states, arena, p) }
    }
}

/// An external optimizer: replaces the built-in kernel for its groups. It receives the
/// group's fused regularization terms and applies them as the built-in kernels do.
final class ExternalOptimizer: OptimizerPlugin {
    let d: ExternalDescriptor
    var name: String { d.name }
    var version: String { d.version }
    let kind = PluginKind.optimizer
    var summary: String { d.summary }
    var source: String { d.source }
    var hyperParameters: [HyperParameterSpec] { d.hyper }

    init(_ d: ExternalDescriptor) { self.d = d }

    func stateSlots(_ hp: HyperValues) -> [String] { d.stateNames.map { "\(name).\($0)" } }

    func update(_ hp: HyperValues, context: StepContext, regularization: FusedRegularization,
                arena: ParameterArena, kernels: KernelPath) -> PieceUpdate {
        let values = HyperArray(hp, d.hyper)
        let states = stateSlots(hp).map { arena.slot($0).base }
        let step = Pinned(d.step(context, values.values, decayScale: context.lr, fused: regularization))
        let w = arena.params.base, g = arena.grads.base
        return { p in
            _ = self.d.apply(step, values, states, arena, p)
            // The chunk is still in cache: gather the same statistics the built-in kernels do.
            var s = dc_step_stats.zero
            for i in p.offset..<(p.offset + p.count) {
                if !g[i].isFinite { s.nonfinite_grads += 1 }
                if w[i] == 0 { s.zero_params += 1 }
                s.param_sumsq += Double(w[i]) * Double(w[i])
            }
            return s
        }
    }
}
