/// A plugin named in a config with its hyper-parameters; `key` is where it came from
/// (e.g. "optimizer", "regularizers[2]") so errors can point at it.
public struct PluginSpec: Sendable {
    public var name: String
    public var params: [String: HyperValue]
    public var key: String

    public init(name: String, params: [String: HyperValue] = [:], key: String) {
        self.name = name
        self.params = params
        self.key = key
    }
}

/// The framework whose meaning of hyper-parameters a config uses (docs/config.md).
public enum Convention: String, CaseIterable, Sendable {
    case pytorch, keras, caffe, optax, paper
}

/// Which tensors a parameter group takes: all given criteria must hold.
public struct GroupMatch: Sendable {
    public var roles: [TensorRole]?
    /// A glob over tensor names: `*` any run, `?` one character.
    public var pattern: String?
    /// Tensors of rank ≤ maxRank (1 selects biases and norm scales).
    public var maxRank: Int?

    public init(roles: [TensorRole]? = nil, pattern: String? = nil, maxRank: Int? = nil) {
        self.roles = roles
        self.pattern = pattern
        self.maxRank = maxRank
    }

    public func matches(_ spec: TensorSpec) -> Bool {
        if let roles, !roles.contains(spec.role) { return false }
        if let pattern, !glob(pattern, spec.name) { return false }
        if let maxRank, spec.rank > maxRank { return false }
        return true
    }
}

/// `*` and `?` glob matching.
func glob(_ pattern: String, _ text: String) -> Bool {
    let p = Array(pattern), t = Array(text)
    var pi = 0, ti = 0, star = -1, mark = 0
    while ti < t.count {
        if pi < p.count && (p[pi] == "?" || p[pi] == t[ti]) { pi += 1; ti += 1 }
        else if pi < p.count && p[pi] == "*" { star = pi; mark = ti; pi += 1 }
        else if star >= 0 { pi = star + 1; mark += 1; ti = mark }
        else { return false }
    }
    while pi < p.count && p[pi] == "*" { pi += 1 }
    return pi == p.count
}

public struct GroupSpec: Sendable {
    public var name: String
    public var match: GroupMatch
    public var lrMultiplier: Double
    /// Optimizer hyper-parameter overrides for this group.
    public var optimizer: [String: HyperValue]
    /// Replaces the top-level regularizers when set (an empty list: no regularization).
    public var regularizers: [PluginSpec]?
    public var key: String

    public init(name: String, match: GroupMatch, lrMultiplier: Double = 1, optimizer: [String: HyperValue] = [:],
                regularizers: [PluginSpec]? = nil, key: String) {
        self.name = name
        self.match = match
        self.lrMultiplier = lrMultiplier
        self.optimizer = optimizer
        self.regularizers = regularizers
        self.key = key
    }
}

public enum ScheduleUnit: String, Sendable { case step, epoch }

public struct ScheduleSpec: Sendable {
    public var plugin: PluginSpec
    public var unit: ScheduleUnit
    /// Linear warm-up length in `unit`s, from `warmupStart` to 1.
    public var warmup: Double
    public var warmupStart: Double

    public init(plugin: PluginSpec = PluginSpec(name: "constant", key: "schedule"), unit: ScheduleUnit = .epoch,
                warmup: Double = 0, warmupStart: Double = 0) {
        self.plugin = plugin
        self.unit = unit
        self.warmup = warmup
        self.warmupStart = warmupStart
    }
}

/// Everything that decides an update: optimizer, regularizers, schedule, groups, convention.
/// Resolved against a registry and a model's tensors into an `UpdatePlan`.
public struct OptimizationSpec: Sendable {
    public var convention: Convention
    /// May carry `weight_decay`, read per `convention` (docs/config.md).
    public var optimizer: PluginSpec
    public var regularizers: [PluginSpec]
    public var schedule: ScheduleSpec
    public var groups: [GroupSpec]
    /// Decay biases and norm scales too (frameworks' default); ours is not to.
    public var decayBias: Bool

    public init(convention: Convention = .pytorch, optimizer: PluginSpec, regularizers: [PluginSpec] = [],
                schedule: ScheduleSpec = ScheduleSpec(), groups: [GroupSpec] = [], decayBias: Bool = false) {
        self.convention = convention
        self.optimizer = optimizer
        self.regularizers = regularizers
        self.schedule = schedule
        self.groups = groups
        self.decayBias = decayBias
    }
}
