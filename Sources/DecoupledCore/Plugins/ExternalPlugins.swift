import CDecoupledKernels
import CDecoupledPluginABI
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Loads external plugins: shared libraries exporting `decoupled_plugin_library` (the C ABI of
/// `decoupled_plugin.h`).
///
/// Loading a library runs its code (constructors first), so libraries come only from places
/// the user chose, never from the working directory: the plugin directories of the binary's
/// `InstallLayout` (the installation's `<bindir>/../lib/decoupled/plugins`, and the
/// repository's `plugins/*/build/` for a development build), and `DECOUPLED_PLUGIN_PATH`.
/// `PluginRegistry.deferExternal` loads them only when a name no built-in has is looked up.
///
/// Every field of a library's descriptor is checked before it is used; a library that fails
/// (another ABI version, a missing symbol, a NULL pointer with a nonzero count, a bad or
/// duplicate name, ...) is refused with a message naming the file and the field.
public enum ExternalPluginLoader {
    public static let pathVariable = "DECOUPLED_PLUGIN_PATH"

    /// The libraries to offer, in this order: those in the plugin directories of `executable`'s
    /// `InstallLayout` (the installation's, then a development build's plugins/*/build/),
    /// then each entry of the search path (colon-separated directories or files; an entry that
    /// does not exist is kept, so loading it reports it).
    public static func candidates(executable: String?, environment: [String: String]) -> [String] {
        var found: [String] = []
        if let executable { found += InstallLayout(executable: executable).pluginDirectories.flatMap(libraries(in:)) }
        for entry in (environment[pathVariable] ?? "").split(separator: ":").map(String.init) where !entry.isEmpty {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: entry, isDirectory: &isDir), isDir.boolValue {
                found += libraries(in: entry)
            } else {
                found.append(entry)
            }
        }
        var seen = Set<String>()
        return found.filter { seen.insert(URL(fileURLWithPath: $0).resolvingSymlinksInPath().path).inserted }
    }

    /// The shipped plugins of a source tree: `plugins/*/build/*.so` under `root`.
    public static func repositoryLibraries(root: String) -> [String] {
        InstallLayout.repositoryPluginDirectories(root: root).flatMap(libraries(in:))
    }

    /// Shared libraries directly in `dir`, sorted.
    static func libraries(in dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
            .filter { $0.hasSuffix(".so") || $0.hasSuffix(".dylib") }.map { (dir as NSString).appendingPathComponent($0) }
    }

    /// Loads one library and registers its plugins; a refused library registers nothing.
    public static func load(_ path: String, into registry: PluginRegistry) throws {
        var names: [String] = []
        try load(path, into: registry, declaring: &names)
    }

    /// `load`, also reporting the plugin names the library declares as far as its
    /// descriptor could be read, so a refusal can be tied to the names a config uses.
    static func load(_ path: String, into registry: PluginRegistry, declaring names: inout [String]) throws {
        let loaded = try read(path, names: &names)
        // Check every name before registering any, so a refused library leaves no half of itself.
        for (i, p) in loaded.enumerated() {
            try registry.checkAvailable(p.name, source: path)
            if loaded[..<i].contains(where: { $0.name == p.name }) {
                throw PluginError.library(path: path, message: "plugin #\(i): name '\(p.name)' is declared twice")
            }
        }
        for p in loaded { try registry.register(p) }
    }

    private static func read(_ path: String, names: inout [String]) throws -> [Plugin] {
        func refuse(_ message: String) -> PluginError { .library(path: path, message: message) }
        guard FileManager.default.fileExists(atPath: path) else { throw refuse("no such file") }
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            throw refuse("cannot be loaded: \(String(cString: dlerror()))")
        }
        guard let sym = dlsym(handle, DC_PLUGIN_ENTRY_SYMBOL) else {
            throw refuse("does not export the entry symbol '\(DC_PLUGIN_ENTRY_SYMBOL)'; is it a Decoupled plugin?")
        }
        let entry = unsafeBitCast(sym, to: dc_plugin_entry_fn.self)
        guard let lib = entry() else { throw refuse("entry symbol returned NULL") }
        // Version and size first: read nothing else from a library built for another ABI.
        let version = lib.pointee.abi_version
        guard version == DC_PLUGIN_ABI_VERSION else {
            // Version 1 libraries are refused too: v2 changed dc_plugin's layout (states with initial
            // values, tensor hooks), so reading a v1 descriptor would misread its fields.
            throw refuse("was built for plugin ABI version \(version), this host expects version \(DC_PLUGIN_ABI_VERSION); rebuild it against this decoupled_plugin.h"
                         + (version == 1 ? " (plugins/README.md: from ABI v1 to v2)" : ""))
        }
        guard lib.pointee.struct_size >= MemoryLayout<dc_plugin_library>.size else {
            throw refuse("dc_plugin_library.struct_size is \(lib.pointee.struct_size) bytes, expected \(MemoryLayout<dc_plugin_library>.size)")
        }
        let count = Int(lib.pointee.plugin_count)
        guard count > 0 else { throw refuse("dc_plugin_library.plugin_count is 0: it declares no plugins") }
        guard count <= Limits.plugins else {
            throw refuse("dc_plugin_library.plugin_count is \(count), more than \(Limits.plugins); is the struct filled in?")
        }
        guard let plugins = lib.pointee.plugins else {
            throw refuse("dc_plugin_library.plugins is NULL but plugin_count is \(count)")
        }
        var loaded: [Plugin] = []
        for i in 0..<count {
            let desc = try ExternalDescriptor(plugins + i, index: i, path: path, names: &names)
            loaded.append(desc.kind == .optimizer ? ExternalOptimizer(desc) : ExternalRegularizer(desc))
        }
        return loaded
    }

    /// Bounds on what a descriptor declares: far above any real plugin, low enough that a
    /// garbage count is caught before it is used to read memory.
    enum Limits {
        static let plugins = 64, hyperParameters = 64, stateSlots = 16
        static let name = 64, version = 64, summary = 256, doc = 512
    }
}

/// What the C struct says, checked field by field and copied into Swift once at load time.
struct ExternalDescriptor {
    let plugin: UnsafePointer<dc_plugin>
    let kind: PluginKind
    let name, version, summary, source: String
    let metric: String?
    let hyper: [HyperParameterSpec]
    /// Declared slots, unprefixed, with their initial values and layouts.
    let states: [(name: String, initial: Float, layout: StateLayout)]
    /// The tensor hooks' phase (`.beforeUpdate`, `.afterUpdate`), when `tensor_apply` is set.
    let phase: TensorPhase?
    /// A regularizer that reads `decay_scale` (DC_PLUGIN_USES_DECAY_SCALE): it gets the
    /// `scale` hyper-parameter, and the decay audit shows its s_t.
    let usesDecayScale: Bool

    /// Reads plugin #`index` of the library at `path`, appending its name to `names` as soon
    /// as the name is known to be valid.
    init(_ p: UnsafePointer<dc_plugin>, index: Int, path: String, names: inout [String]) throws {
        typealias Limits = ExternalPluginLoader.Limits
        var field = "plugin #\(index)"
        func refuse(_ message: String) -> PluginError { .library(path: path, message: "\(field): \(message)") }
        /// A C string field: nil when NULL and optional; refused when NULL and required, or too long.
        func text(_ c: UnsafePointer<CChar>?, _ key: String, max: Int, required: Bool) throws -> String? {
            guard let c else {
                if required { throw refuse("\(key) is NULL") }
                return nil
            }
            // strnlen: an unterminated string is not read past the limit.
            guard strnlen(c, max + 1) <= max else { throw refuse("\(key) is longer than \(max) bytes") }
            return String(cString: c)
        }
        /// A name used in configs and state slot keys: letters, digits and '_'.
        func identifier(_ c: UnsafePointer<CChar>?, _ key: String) throws -> String {
            let s = try text(c, key, max: Limits.name, required: true)!
            guard !s.isEmpty else { throw refuse("\(key) is empty") }
            guard s.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
                throw refuse("\(key) \"\(s)\" must be letters, digits and '_'")
            }
            return s
        }

        guard p.pointee.struct_size >= MemoryLayout<dc_plugin>.size else {
            throw refuse("dc_plugin.struct_size is \(p.pointee.struct_size) bytes, expected \(MemoryLayout<dc_plugin>.size)")
        }
        plugin = p
        name = try identifier(p.pointee.name, "name")
        names.append(name)
        field = "plugin '\(name)'"
        switch p.pointee.kind {
        case DC_PLUGIN_REGULARIZER.rawValue: kind = .regularizer
        case DC_PLUGIN_OPTIMIZER.rawValue: kind = .optimizer
        default: throw refuse("kind is \(p.pointee.kind); expected \(DC_PLUGIN_REGULARIZER.rawValue) (regularizer) or \(DC_PLUGIN_OPTIMIZER.rawValue) (optimizer)")
        }
        switch kind {
        case .optimizer:
            guard p.pointee.direction != nil else { throw refuse("direction is NULL: an optimizer supplies its direction") }
            guard p.pointee.apply == nil else {
                throw refuse("apply is set on an optimizer; an optimizer supplies only direction (the host adds the coupled terms and applies the decay and the step)")
            }
        default:
            guard p.pointee.direction == nil else { throw refuse("direction is set on a regularizer; only an optimizer supplies a direction") }
            guard p.pointee.apply != nil || p.pointee.tensor_apply != nil || p.pointee.init_state != nil else {
                throw refuse("apply, tensor_apply and init_state are all NULL: the plugin does nothing")
            }
        }
        switch (p.pointee.phase, p.pointee.tensor_apply != nil) {
        case (DC_PHASE_NONE.rawValue, false): phase = nil
        case (DC_PHASE_BEFORE.rawValue, true): phase = .beforeUpdate
        case (DC_PHASE_AFTER.rawValue, true): phase = .afterUpdate
        case (DC_PHASE_NONE.rawValue, true): throw refuse("tensor_apply is set but phase is DC_PHASE_NONE; say when it runs (DC_PHASE_BEFORE or DC_PHASE_AFTER)")
        case (DC_PHASE_BEFORE.rawValue, false), (DC_PHASE_AFTER.rawValue, false): throw refuse("phase is \(p.pointee.phase) but tensor_apply is NULL")
        default: throw refuse("phase is \(p.pointee.phase); expected 0 (none), 1 (before) or 2 (after)")
        }
        if p.pointee.partial != nil && p.pointee.tensor_apply == nil { throw refuse("partial is set but tensor_apply is NULL") }
        let known = DC_PLUGIN_USES_DECAY_SCALE.rawValue
        guard p.pointee.flags & ~known == 0 else {
            throw refuse("flags is \(p.pointee.flags); the known flags are DC_PLUGIN_USES_DECAY_SCALE (\(known))")
        }
        usesDecayScale = p.pointee.flags & DC_PLUGIN_USES_DECAY_SCALE.rawValue != 0
        if usesDecayScale && kind == .optimizer {
            throw refuse("flags has DC_PLUGIN_USES_DECAY_SCALE, which is for regularizers (an optimizer's decay comes from the group's regularizers)")
        }
        version = try text(p.pointee.version, "version", max: Limits.version, required: false) ?? "unversioned"
        summary = try text(p.pointee.summary, "summary", max: Limits.summary, required: false) ?? ""
        metric = try p.pointee.metric == nil ? nil : identifier(p.pointee.metric, "metric")
        source = path

        let hparamCount = Int(p.pointee.hparam_count)
        guard hparamCount <= Limits.hyperParameters else {
            throw refuse("hparam_count is \(hparamCount), more than \(Limits.hyperParameters)")
        }
        var hs: [HyperParameterSpec] = []
        if hparamCount > 0 {
            guard let hparams = p.pointee.hparams else { throw refuse("hparams is NULL but hparam_count is \(hparamCount)") }
            // The host adds `scale` to every regularizer (DecayScale): a plugin cannot declare it.
            let reserved = kind == .regularizer ? [DecayScale.spec.name] : []
            for i in 0..<hparamCount {
                let h = hparams[i]
                let n = try identifier(h.name, "hparams[\(i)].name")
                if hs.contains(where: { $0.name == n }) || reserved.contains(n) {
                    throw refuse("hparams[\(i)].name '\(n)' is \(reserved.contains(n) ? "reserved (the host adds it)" : "declared twice")")
                }
                guard h.default_value.isFinite, h.min_value <= h.default_value, h.default_value <= h.max_value else {
                    throw refuse("hparams[\(i)] '\(n)': default \(h.default_value) is not a finite value in [\(h.min_value), \(h.max_value)]")
                }
                let doc = try text(h.doc, "hparams[\(i)].doc", max: Limits.doc, required: false) ?? ""
                hs.append(HyperParameterSpec(n, .number(h.min_value...h.max_value), default: .number(h.default_value), doc))
            }
        }
        hyper = hs

        let stateCount = Int(p.pointee.state_count)
        guard stateCount <= Limits.stateSlots else { throw refuse("state_count is \(stateCount), more than \(Limits.stateSlots)") }
        var states: [(name: String, initial: Float, layout: StateLayout)] = []
        if stateCount > 0 {
            guard let declared = p.pointee.states else {
                throw refuse("states is NULL but state_count is \(stateCount)")
            }
            for i in 0..<stateCount {
                let s = try identifier(declared[i].name, "states[\(i)].name")
                guard !states.contains(where: { $0.name == s }) else { throw refuse("states[\(i)].name '\(s)' is declared twice") }
                let initial = declared[i].initial_value
                guard initial.isFinite else { throw refuse("states[\(i)] '\(s)': initial_value \(initial) is not finite") }
                guard let layout = ExternalDescriptor.layouts[declared[i].layout] else {
                    let expected = ExternalDescriptor.layouts.sorted { $0.key < $1.key }.map { "\($0.key) (\($0.value.rawValue))" }
                    throw refuse("states[\(i)] '\(s)': layout is \(declared[i].layout); expected \(expected.dropLast().joined(separator: ", ")) or \(expected.last!)")
                }
                states.append((s, initial, layout))
            }
        }
        self.states = states
    }

    /// The C ABI's `dc_state_layout` values: every `StateLayout`.
    static let layouts: [UInt32: StateLayout] = [
        DC_STATE_ELEMENT.rawValue: .element, DC_STATE_ROWS.rawValue: .rows, DC_STATE_COLUMNS.rawValue: .columns,
        DC_STATE_SCALAR.rawValue: .scalar, DC_STATE_MATRIX_ROWS.rawValue: .matrixRows,
        DC_STATE_MATRIX_COLUMNS.rawValue: .matrixColumns, DC_STATE_VECTOR_ELEMENTS.rawValue: .vectorElements,
    ]

    /// One call of the plugin's `apply` on a piece, with its state slots offset to the piece.
    /// `values` (the hyper-parameters the step points to) is kept alive for the call.
    func apply(_ step: Pinned<dc_plugin_step>, _ values: HyperArray, _ states: [UnsafeMutablePointer<Float>?],
               _ arena: ParameterArena, _ p: Sharder.Piece) -> Int64 {
        withExtendedLifetime(values) {
            var slots = states.map { $0.map { $0 + p.offset } }
            return slots.withUnsafeMutableBufferPointer { s in
                plugin.pointee.apply!(step.pointer, arena.params.base + p.offset, arena.grads.base + p.offset, s.baseAddress, p.count)
            }
        }
    }

    /// One call of the optimizer's `direction` on a piece: `w` and `g` (the coupled gradient)
    /// and `d` are the piece's, the state slots are offset to it.
    func direction(_ step: Pinned<dc_plugin_step>, _ values: HyperArray, _ states: [UnsafeMutablePointer<Float>?],
                   w: UnsafePointer<Float>, g: UnsafePointer<Float>, d: UnsafeMutablePointer<Float>, _ p: Sharder.Piece) {
        withExtendedLifetime(values) {
            var slots = states.map { $0.map { $0 + p.offset } }
            slots.withUnsafeMutableBufferPointer { s in plugin.pointee.direction!(step.pointer, w, g, s.baseAddress, d, p.count) }
        }
    }

    /// Whether the plugin has an init hook or a tensor hook.
    var hasTensorHooks: Bool { plugin.pointee.init_state != nil || plugin.pointee.tensor_apply != nil }

    /// The state pointers `apply` gets: element slots, NULL for the others.
    func elementStates(_ arena: ParameterArena) -> [UnsafeMutablePointer<Float>?] {
        stateDeclarations.map { $0.layout == .element ? arena.slot($0.name).base : nil }
    }

    /// The declared state as the host names it: `plugin.slot`.
    var stateDeclarations: [StateDeclaration] {
        states.map { StateDeclaration("\(name).\($0.name)", initialValue: $0.initial, layout: $0.layout) }
    }

    /// The init hook and the tensor hook as tensor passes for one group and step.
    func tensorPasses(_ step: Pinned<dc_plugin_step>, _ values: HyperArray) -> [TensorPass] {
        var passes: [TensorPass] = []
        if let initState = plugin.pointee.init_state {
            passes.append(TensorPass(phase: .start) { t, _ in
                Self.withCTensor(t) { info, state in initState(info, t.weights.baseAddress!, state) }
                return -1
            })
        }
        if let phase, let tensorApply = plugin.pointee.tensor_apply {
            let partial = plugin.pointee.partial.map { fn in
                { (t: TensorData) -> Double in
                    withExtendedLifetime(values) {
                        Self.withCTensor(t) { info, state in fn(step.pointer, info, t.weights.baseAddress!, t.gradients.baseAddress!, state) }
                    }
                }
            }
            passes.append(TensorPass(phase: phase, partial: partial) { t, total in
                withExtendedLifetime(values) {
                    Self.withCTensor(t) { info, state in
                        tensorApply(step.pointer, info, t.weights.baseAddress!, t.gradients.baseAddress!, state, total)
                    }
                }
            })
        }
        return passes
    }

    /// Calls `body` with the C view of a tensor: its info and its state pointers.
    static func withCTensor<R>(_ t: TensorData, _ body: (UnsafePointer<dc_tensor_info>, UnsafePointer<UnsafeMutablePointer<Float>?>) -> R) -> R {
        let shape = t.info.shape.map(Int64.init)
        let role: dc_tensor_role = switch t.info.role {
        case .weight: DC_ROLE_WEIGHT
        case .bias: DC_ROLE_BIAS
        case .norm: DC_ROLE_NORM
        case .other: DC_ROLE_OTHER
        }
        var state = t.state.map { Optional($0.baseAddress!) }
        if state.isEmpty { state = [nil] }
        return t.info.name.withCString { name in
            shape.withUnsafeBufferPointer { extents in
                var info = dc_tensor_info(struct_size: UInt32(MemoryLayout<dc_tensor_info>.size), role: role.rawValue, name: name,
                                          index: Int64(t.info.index), count: Int64(t.info.count), rows: Int64(t.info.rows),
                                          row_length: Int64(t.info.rowLength), rank: UInt32(shape.count), reserved: 0,
                                          shape: extents.baseAddress)
                return state.withUnsafeBufferPointer { s in body(&info, s.baseAddress!) }
            }
        }
    }

    /// The C step struct for a context; `values` must outlive the call.
    func step(_ c: StepContext, _ values: UnsafePointer<Double>, decayScale: Double) -> dc_plugin_step {
        dc_plugin_step(struct_size: UInt32(MemoryLayout<dc_plugin_step>.size), reserved: 0, step: Int64(c.step),
                       lr: c.lr, eta: c.eta, decay_scale: decayScale, hparams: values)
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

/// An external regularizer: runs on each chunk right after the optimizer's kernel, and/or on
/// whole tensors. For a plugin that declares DC_PLUGIN_USES_DECAY_SCALE the host adds the
/// decoupled `scale` choice (lr | schedule | constant) and passes s_t as decay_scale.
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
        hyperParameters = d.hyper + (d.usesDecayScale ? [DecayScale.spec] : [])
    }

    func isDecoupled(_ hp: HyperValues) -> Bool { true }
    func state(_ hp: HyperValues) -> [StateDeclaration] { d.stateDeclarations }
    func penalty(_ hp: HyperValues, sumSquares: Double, sumAbs: Double) -> Double? { nil }
    func audit(_ hp: HyperValues) -> String {
        "plugin \(name) (\(hp))" + (d.usesDecayScale ? " × s_t=\(hp.text("scale"))" : "")
    }

    /// The C step struct and the hyper-parameter values it points to.
    func step(_ hp: HyperValues, _ context: StepContext) -> (Pinned<dc_plugin_step>, HyperArray) {
        let values = HyperArray(hp, d.hyper)
        let scale = d.usesDecayScale ? DecayScale(rawValue: hp.text("scale"))!.value(context) : 0
        return (Pinned(d.step(context, values.values, decayScale: scale)), values)
    }

    func pass(_ hp: HyperValues, context: StepContext, arena: ParameterArena) -> PiecePass? {
        guard d.plugin.pointee.apply != nil else { return nil }
        let (step, values) = step(hp, context)
        let states = d.elementStates(arena)
        return { p in self.d.apply(step, values, states, arena, p) }
    }

    func tensorPasses(_ hp: HyperValues, context: StepContext) -> [TensorPass] {
        guard d.hasTensorHooks else { return [] }
        let (step, values) = step(hp, context)
        return d.tensorPasses(step, values)
    }
}

/// An external optimizer: its `direction` replaces the built-in kernel for its groups, and the
/// host runs the engine's pipeline around it exactly as the kernels do, on the same kernel
/// path: the coupled gradient into a chunk-sized scratch (`dc_coupled`), the plugin's
/// direction d into another, then w ← keep·w − d and the statistics (`dc_apply_direction`),
/// while the piece is in cache.
final class ExternalOptimizer: OptimizerPlugin {
    let d: ExternalDescriptor
    var name: String { d.name }
    var version: String { d.version }
    let kind = PluginKind.optimizer
    var summary: String { d.summary }
    var source: String { d.source }
    var hyperParameters: [HyperParameterSpec] { d.hyper }
    /// Two arrays per concurrent piece: the coupled gradient and the direction.
    let scratch = PieceScratch(arrays: 2)

    init(_ d: ExternalDescriptor) { self.d = d }

    func state(_ hp: HyperValues) -> [StateDeclaration] { d.stateDeclarations }

    func tensorPasses(_ hp: HyperValues, context: StepContext) -> [TensorPass] {
        guard d.hasTensorHooks else { return [] }
        let values = HyperArray(hp, d.hyper)
        return d.tensorPasses(Pinned(d.step(context, values.values, decayScale: context.lr)), values)
    }

    func update(_ hp: HyperValues, context: StepContext, regularization: FusedRegularization,
                arena: ParameterArena, kernels: KernelPath) -> PieceUpdate {
        let values = HyperArray(hp, d.hyper)
        let states = d.elementStates(arena)
        let step = Pinned(d.step(context, values.values, decayScale: context.lr))
        let terms = Pinned(regularization.kernelTerms)
        let w = arena.params.base, g = arena.grads.base
        return { [d, scratch] p in
            scratch.borrow(count: p.count) { arrays in
                let coupled = arrays[0], direction = arrays[1]
                kernels.coupled(terms.pointer, w + p.offset, g + p.offset, coupled, p.count)
                d.direction(step, values, states, w: w + p.offset, g: coupled, d: direction, p)
                return kernels.applyDirection(terms.pointer, w + p.offset, g + p.offset, direction, p.count)
            }
        }
    }
}

/// Chunk-sized scratch arrays for per-piece work: a piece borrows a set for the length of its
/// call and gives it back, so there are at most as many sets as pieces run at once (one per
/// worker), each allocated on first need and reused every step. Which set a piece gets does
/// not change its result.
final class PieceScratch: @unchecked Sendable {
    let arrays: Int
    private var free: [(base: UnsafeMutablePointer<Float>, capacity: Int)] = []
    private var all: [UnsafeMutablePointer<Float>] = []
    private let lock = NSLock()

    init(arrays: Int) { self.arrays = arrays }

    deinit { for p in all { p.deallocate() } }

    /// Runs `body` with `arrays` arrays of at least `count` floats each.
    func borrow<R>(count: Int, _ body: ([UnsafeMutablePointer<Float>]) -> R) -> R {
        lock.lock()
        var set = free.popLast()
        if let s = set, s.capacity < count {
            all.removeAll { $0 == s.base }
            s.base.deallocate()
            set = nil
        }
        if set == nil {
            let capacity = max(count, Sharder.defaultChunkElements)
            let base = UnsafeMutablePointer<Float>.allocate(capacity: capacity * arrays)
            all.append(base)
            set = (base, capacity)
        }
        lock.unlock()
        let (base, capacity) = set!
        defer {
            lock.lock()
            free.append((base, capacity))
            lock.unlock()
        }
        return body((0..<arrays).map { base + $0 * capacity })
    }
}
