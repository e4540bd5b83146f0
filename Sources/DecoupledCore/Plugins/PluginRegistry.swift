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

    public init() {}

    /// The registry with every built-in plugin.
    public static func builtIn() -> PluginRegistry {
        let r = PluginRegistry()
        let plugins: [Plugin] = [SGDOptimizer(), AdamOptimizer(),
                                 L2Regularizer(), L1Regularizer(), ElasticRegularizer(), WeightDecayRegularizer()]
            + BuiltinSchedule.all
        for p in plugins { try! r.register(p) }
        try! r.registerAlias(OptimizerAlias(name: "adamw", base: "adam", defaultDecay: 1e-2,
                                            summary: "adam + decoupled weight decay (AdamW)"))
        try! r.registerAlias(OptimizerAlias(name: "sgdw", base: "sgd", defaultDecay: 0,
                                            summary: "sgd + decoupled weight decay (SGDW)"))
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
        if let p = optimizers[name] { return p }
        throw unknown(.optimizer, name, Array(optimizers.keys) + Array(aliases.keys))
    }

    public func regularizer(named name: String) throws -> RegularizerPlugin {
        if let p = regularizers[name] { return p }
        throw unknown(.regularizer, name, Array(regularizers.keys))
    }

    public func schedule(named name: String) throws -> SchedulePlugin {
        if let p = schedules[name] { return p }
        throw unknown(.schedule, name, Array(schedules.keys))
    }

    private func unknown(_ kind: PluginKind, _ name: String, _ names: [String]) -> PluginError {
        .unknownPlugin(kind: kind, name: name, closest: closestNames(to: name, in: names), all: names.sorted())
    }

    /// Every plugin, sorted by kind then name (what `decoupled plugins list` prints).
    public var all: [Plugin] {
        let ps: [Plugin] = Array(optimizers.values) + Array(regularizers.values) + Array(schedules.values)
        return ps.sorted { ($0.kind.rawValue, $0.name) < ($1.kind.rawValue, $1.name) }
    }

    /// A human-readable listing: kind, name, version, source, hyper-parameters with ranges.
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
        return out.joined(separator: "\n")
    }
}
