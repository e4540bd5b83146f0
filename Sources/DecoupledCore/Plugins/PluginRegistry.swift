/// Every optimizer, regularizer and schedule, found by name. Built-ins and external plugins
/// register through the same `register`; built-ins are registered explicitly by
/// `PluginRegistry.builtIn()` (no static-initializer magic).
public final class PluginRegistry {
    public private(set) var optimizers: [String: OptimizerPlugin] = [:]
    public private(set) var regularizers: [String: RegularizerPlugin] = [:]
    public private(set) var schedules: [String: SchedulePlugin] = [:]
    /// Optimizer aliases: name → (base optimizer, default decoupled decay λ).
    public private(set) var aliases: [String: OptimizerAlias] = [:]

    public struct OptimizerAlias: Sendable {
        public let name: String
        public let base: String
        public let defaultDecay: Double
        public let summary: String
    }

    /// A shared library that was not loaded, why, and the plugin names it declares as far as
    /// its descriptor could be read (none when, e.g., it was built for another ABI version).
    public struct RefusedLibrary: Sendable {
        public let path: String
        public let error: PluginError
        public let declaredNames: [String]

        /// The refusal without the path (the message of a `.library` error).
        public var reason: String {
            if case .library(_, let message) = error { return message }
            return "\(error)"
        }
    }

    /// External libraries offered but not loaded yet (`deferExternal`).
    public private(set) var deferredLibraries: [String] = []
    /// Libraries that were offered and refused, in the order they were tried.
    public private(set) var refusedLibraries: [RefusedLibrary] = []
    /// Called once per refused library, when it is refused (the command line prints a warning).
    public var onRefusal: ((RefusedLibrary) -> Void)?

    public init() {}

    /// Offers external libraries without loading them: loading runs a library's code, so it
    /// waits until a lookup asks for a name no registered plugin has (or `loadExternal()`).
    /// A library that is then refused is reported to `onRefusal` and kept in
    /// `refusedLibraries`; it is an error only for a lookup of a name it declares.
    /// Like registering, the loading a lookup may do is not thread-safe: resolve configs on
    /// one thread (plans are built before any worker starts).
    public func deferExternal(_ paths: [String]) {
        deferredLibraries += paths
    }

    /// Loads every deferred library now (what `decoupled plugins list` does).
    public func loadExternal() {
        let paths = deferredLibraries
        deferredLibraries = []
        for path in paths {
            var names: [String] = []
            do {
                try ExternalPluginLoader.load(path, into: self, declaring: &names)
            } catch {
                let refused = RefusedLibrary(path: path, error: error as? PluginError ?? .library(path: path, message: "\(error)"),
                                             declaredNames: names)
                refusedLibraries.append(refused)
                onRefusal?(refused)
            }
        }
    }

    /// A plugin by name: registered ones first, then the deferred libraries are loaded and
    /// asked; a name declared by a refused library gets that library's refusal.
    private func lookup<P>(_ kind: PluginKind, _ name: String, _ table: () -> [String: P], others: [String] = []) throws -> P {
        if let p = table()[name] { return p }
        if !deferredLibraries.isEmpty {
            loadExternal()
            if let p = table()[name] { return p }
        }
        if let r = refusedLibraries.first(where: { $0.declaredNames.contains(name) }) {
            throw PluginError.library(path: r.path, message: "declares \(kind.rawValue) '\(name)' but was refused: \(r.reason)")
        }
        let names = Array(table().keys) + others
        throw PluginError.unknownPlugin(kind: kind, name: name, closest: closestNames(to: name, in: names), all: names.sorted(),
                                        refused: refusedLibraries.map { "\($0.path) (\($0.reason))" })
    }

    /// The registry with every built-in plugin.
    public static func builtIn() -> PluginRegistry {
        let r = PluginRegistry()
        let plugins: [Plugin] = [SGDOptimizer(), AdamOptimizer(),
                                 AdagradOptimizer(),
                                 RMSpropOptimizer(),
                                 AdadeltaOptimizer(),
                                 AdamaxOptimizer(),
                                 NAdamOptimizer(),
                                 RAdamOptimizer(),
                                 LambOptimizer(),
                                 AdafactorOptimizer(),
                                 L2Regularizer(), L1Regularizer(), ElasticRegularizer(), WeightDecayRegularizer()]
            + [GroupLassoRegularizer(), GradientNormClipping()]  // tensor phases (Regularizers/)
            + BuiltinSchedule.all
        for p in plugins { try! r.register(p) }
        try! r.registerAlias(OptimizerAlias(name: "adamw", base: "adam", defaultDecay: 1e-2,
                                            summary: "adam + decoupled weight decay (AdamW)"))
        try! r.registerAlias(OptimizerAlias(name: "sgdw", base: "sgd", defaultDecay: 0,
                                            summary: "sgd + decoupled weight decay (SGDW)"))
        // The torch.optim family with decoupled decay: PyTorch's decoupled_weight_decay = true
        // (NAdam, RAdam) or, where PyTorch has no switch, AdamW's p.mul_(1 − lr·λ) before the step.
        for base in ["adagrad", "rmsprop", "adadelta", "adamax", "nadam", "radam"] {
            try! r.registerAlias(OptimizerAlias(name: base + "w", base: base, defaultDecay: 0,
                                                summary: "\(base) + decoupled weight decay"))
        }
        return r
    }

    private func existingSource(_ name: String) -> String? {
        if let p = optimizers[name] { return p.source }
        if let p = regularizers[name] { return p.source }
        if let p = schedules[name] { return p.source }
        if aliases[name] != nil { return "built-in alias" }
        return nil
    }

    /// Refuses a name already taken by any plugin or alias, naming both sources.
    public func checkAvailable(_ name: String, source: String) throws {
        if let existing = existingSource(name) {
            throw PluginError.duplicate(name: name, existing: existing, new: source)
        }
    }

    /// Adds a plugin; a name already taken by any plugin is refused, naming both sources.
    public func register(_ plugin: Plugin) throws {
        try checkAvailable(plugin.name, source: plugin.source)
        switch plugin {
        case let p as OptimizerPlugin: optimizers[p.name] = p
        case let p as RegularizerPlugin: regularizers[p.name] = p
        case let p as SchedulePlugin: schedules[p.name] = p
        default: preconditionFailure("plugin \(plugin.name) conforms to no plugin protocol")
        }
    }

    public func registerAlias(_ alias: OptimizerAlias) throws {
        try checkAvailable(alias.name, source: "alias")
        aliases[alias.name] = alias
    }

    /// The alias called `name` (adamw, sgdw), if any.
    public func alias(named name: String) -> OptimizerAlias? { aliases[name] }

    public func optimizer(named name: String) throws -> OptimizerPlugin {
        try lookup(.optimizer, name, { optimizers }, others: Array(aliases.keys))
    }

    public func regularizer(named name: String) throws -> RegularizerPlugin {
        try lookup(.regularizer, name, { regularizers })
    }

    public func schedule(named name: String) throws -> SchedulePlugin {
        try lookup(.schedule, name, { schedules })
    }

    /// Every plugin, sorted by kind then name (what `decoupled plugins list` prints).
    public var all: [Plugin] {
        let ps: [Plugin] = Array(optimizers.values) + Array(regularizers.values) + Array(schedules.values)
        return ps.sorted { ($0.kind.rawValue, $0.name) < ($1.kind.rawValue, $1.name) }
    }

    /// A human-readable listing: kind, name, version, source, hyper-parameters with ranges,
    /// then the refused libraries with the reason.
    public func listing() -> String {
        var out: [String] = []
        for p in all {
            out.append("\(p.kind.rawValue) \(p.name) \(p.version)  [\(p.source)]")
            out.append("    \(p.summary)")
            for h in p.hyperParameters {
                out.append("    \(h.name) = \(h.defaultValue)  (\(h.rangeText))  \(h.doc)")
            }
        }
        for a in aliases.values.sorted(by: { $0.name < $1.name }) {
            out.append("optimizer \(a.name) (alias)  [built-in]")
            out.append("    \(a.summary): \(a.base) + weight_decay, default weight_decay = \(a.defaultDecay.formatted)")
        }
        for r in refusedLibraries {
            out.append("refused \(r.path)")
            out.append("    \(r.reason)")
        }
        return out.joined(separator: "\n")
    }
}
