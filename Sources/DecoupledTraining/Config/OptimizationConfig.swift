import DecoupledCore

/// Reads the optimization part of a config — `convention`, `decay_bias`, `[optimizer]`,
/// `[[regularizers]]`, `[schedule]`, `[[groups]]` — shared by `train` and `replay`.
public enum OptimizationConfig {
    public static let topLevelKeys = ["convention", "decay_bias", "optimizer", "regularizers", "schedule", "groups"]

    public static func read(_ root: ConfigReader) throws -> OptimizationSpec {
        let convention = Convention(rawValue: try root.string("convention", default: "pytorch",
                                                               allowed: Convention.allCases.map(\.rawValue)))!
        let decayBias = try root.bool("decay_bias", default: false)
        guard let opt = try root.table("optimizer") else { throw root.error("optimizer", "is required: an [optimizer] table with name = ...") }
        let optimizer = try plugin(opt)
        let regularizers = try (root.tables("regularizers") ?? []).map(plugin)
        var schedule = ScheduleSpec()
        if let s = try root.table("schedule") {
            let unit = ScheduleUnit(rawValue: try s.string("unit", default: "epoch", allowed: ["epoch", "step"]))!
            let warmup = try s.double("warmup", default: 0, range: 0...Double.greatestFiniteMagnitude)
            let warmupStart = try s.double("warmup_start", default: 0, range: 0...1)
            schedule = ScheduleSpec(plugin: try plugin(s), unit: unit, warmup: warmup, warmupStart: warmupStart)
        }
        let groups = try (root.tables("groups") ?? []).map { g -> GroupSpec in
            let name = try g.string("name", default: g.path)
            var match = GroupMatch()
            if let m = try g.table("match") {
                if let roles = try m.strings("role") {
                    match.roles = try roles.map { r in
                        guard let role = TensorRole(rawValue: r) else {
                            throw m.error("role", "\"\(r)\" is not one of \(TensorRole.allCases.map(\.rawValue).joined(separator: " | "))")
                        }
                        return role
                    }
                }
                if m.has("pattern") { match.pattern = try m.string("pattern") }
                match.maxRank = try m.optionalInt("max_rank", min: 0)
                try m.finish()
            } else {
                throw g.error("match", "is required: e.g. match = { role = [\"bias\"] }, { pattern = \"fc1.*\" } or { max_rank = 1 }")
            }
            let lrMultiplier = try g.double("lr_multiplier", default: 1)
            let overrides = try g.table("optimizer").map { try hyperValues($0.remainingAsHyperValues(), file: g.file) } ?? [:]
            let regs = try g.tables("regularizers").map { try $0.map(plugin) }
            try g.finish()
            return GroupSpec(name: name, match: match, lrMultiplier: lrMultiplier, optimizer: overrides,
                             regularizers: regs, key: g.path)
        }
        return OptimizationSpec(convention: convention, optimizer: optimizer, regularizers: regularizers,
                                schedule: schedule, groups: groups, decayBias: decayBias)
    }

    /// A `name = ...` table whose other keys are the plugin's hyper-parameters.
    static func plugin(_ t: ConfigReader) throws -> PluginSpec {
        let name = try t.string("name")
        return PluginSpec(name: name, params: try hyperValues(t.remainingAsHyperValues(), file: t.file), key: t.path)
    }

    static func hyperValues(_ raw: [String: HyperValueText], file: String) throws -> [String: HyperValue] {
        try raw.mapValues { r in
            switch r.value {
            case .number(let x, _): return .number(x)
            case .bool(let b): return .flag(b)
            case .string(let s): return .text(s)
            case .array(let a):
                return .numbers(try a.map { e in
                    guard case .number(let x, _) = e else {
                        throw ConfigError(file: file, line: r.line, key: r.key, message: "expected a list of numbers, found \(e.typeName) \(e)")
                    }
                    return x
                })
            case .table: throw ConfigError(file: file, line: r.line, key: r.key, message: "expected a number, string or boolean, got a table")
            }
        }
    }

    /// Resolves against the registry, turning plugin errors into errors with file and line.
    public static func plan(_ spec: OptimizationSpec, registry: PluginRegistry, tensors: [TensorSpec],
                            root: ConfigReader) throws -> UpdatePlan {
        // Unknown plugin names first, each pointing at its own `name = ...` line.
        let named: [(PluginSpec, PluginKind)] = [(spec.optimizer, .optimizer), (spec.schedule.plugin, .schedule)]
            + (spec.regularizers + spec.groups.flatMap { $0.regularizers ?? [] }).map { ($0, .regularizer) }
        for (p, kind) in named {
            do {
                switch kind {
                case .optimizer: if registry.alias(named: p.name) == nil { _ = try registry.optimizer(named: p.name) }
                case .regularizer: _ = try registry.regularizer(named: p.name)
                case .schedule: _ = try registry.schedule(named: p.name)
                }
            } catch let e as PluginError {
                throw ConfigError(file: root.file, line: root.locator.line("\(p.key).name"), key: "\(p.key).name", message: e.description)
            }
        }
        do {
            return try UpdatePlan(spec, registry: registry, tensors: tensors)
        } catch let e as PluginError {
            // A value that came from `--set` is reported as such, not at the config line it replaced.
            if let k = e.key, let o = root.overrides[k] {
                throw ConfigError(file: root.file, line: nil, key: "", message: "\(e.description) (from \(o))")
            }
            throw ConfigError(file: root.file, line: e.key.flatMap { root.locator.line($0) } ?? e.key.flatMap { k in
                k.split(separator: ".").first.flatMap { root.locator.line(String($0)) }
            }, key: "", message: e.description)
        }
    }
}
