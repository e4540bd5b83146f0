import DecoupledRandom
import DecoupledTraining
import Foundation

// The sweep spec (docs/sweeps.md): a base experiment config, the methods to compare, the
// learning-rate and decay axes and the seeds. Read strictly with the config language's
// `ConfigReader`, so an unknown key or a wrong type is an error naming the file, line and key,
// exactly like an experiment config.

/// A parsed sweep spec: what `SweepPlan` expands into runs (method × lr × decay × seed).
///
/// ```toml
/// name  = "study"
/// base  = "../examples/fashion-mlp-adamw.toml"   # relative to the spec file
/// seeds = [0, 1]
/// set   = { "train.epochs" = 10 }                 # overrides for every run (--set syntax)
/// lr    = [1e-4, 3e-4, 1e-3]                      # or { log_uniform = [1e-5, 1e-2], count = 4 }
/// decay = [0.0, 1e-4, 1e-3]
///
/// [[methods]]
/// label     = "Adam+L2"
/// decay_key = "regularizers[0].lambda"
/// optimizer = { name = "adam" }                   # replaces the base's [optimizer]
/// regularizers = [ { name = "l2", lambda = 0.0 } ]
/// ```
public struct SweepSpec {
    /// Where a value came from in the spec, to point errors about it at the right line.
    struct Origin {
        let reader: ConfigReader
        let key: String

        func error(_ message: String) -> ConfigError { reader.error(key, message) }
    }

    /// A list of values for one axis (learning rate or decay), as written or as drawn.
    public struct Axis: Equatable {
        /// How the values were given.
        public enum Source: Equatable {
            /// An explicit list: `lr = [1e-4, 1e-3]`.
            case list
            /// `{ log_space = [lo, hi], count = n }`: n values evenly spaced in log(x), both ends included.
            case logSpace(low: Double, high: Double, count: Int)
            /// `{ log_uniform = [lo, hi], count = n }`: n values drawn uniformly in log(x), seeded by `sweep_seed`.
            case logUniform(low: Double, high: Double, count: Int)
            /// `{ uniform = [lo, hi], count = n }`: n values drawn uniformly in x, seeded by `sweep_seed`.
            case uniform(low: Double, high: Double, count: Int)
        }

        /// The values, in the order runs are expanded.
        public let values: [Double]
        /// How they were given.
        public let source: Source
        let origin: Origin

        /// Equal values from the same kind of source.
        public static func == (a: Axis, b: Axis) -> Bool { a.values == b.values && a.source == b.source }
    }

    /// One `key = value` applied to every run of the sweep (`set`) or of a method (`methods[i].set`).
    public struct Setting {
        /// The config key path, as for `--set` (`train.epochs`, `regularizers[0].lambda`).
        public let key: String
        /// The value.
        public let value: ConfigValue
        let origin: Origin
    }

    /// One `[[methods]]` entry: an optimizer/regularizer pair (whole config tables that replace
    /// the base's) and which key the decay axis sets.
    public struct Method {
        /// The label reports use for this method (one heatmap each), e.g. "AdamW".
        public let label: String
        /// The config key the decay axis sets, e.g. `optimizer.weight_decay` or `regularizers[0].lambda`.
        public let decayKey: String
        /// This method's own learning rates (instead of the spec's `lr`), if given.
        public let lr: Axis?
        /// This method's own decay values (instead of the spec's `decay`), if given.
        public let decay: Axis?
        /// Top-level config keys whose values replace the base's (`optimizer`, `regularizers`, `schedule`, ...).
        public let replacements: [Setting]
        /// Keys set for this method's runs, after the spec's `set`.
        public let settings: [Setting]
        /// The position in the spec (`methods[i]`), for messages.
        public let index: Int
        let origin: Origin
        let decayKeyOrigin: Origin
    }

    /// The spec file, as the caller named it.
    public let file: String
    /// The spec's text (copied into the sweep directory as `sweep.toml`).
    public let text: String
    /// The sweep's name: the default sweep directory is `sweeps/<name>`.
    public let name: String
    /// The base experiment config, resolved against the spec's directory.
    public let baseFile: String
    /// The base config's text.
    public let baseText: String
    /// The seeds; nil: the base config's `seed` (one run per cell).
    public let seeds: [Int]?
    /// Seeds the random axes (`log_uniform`, `uniform`); the same seed draws the same values.
    public let sweepSeed: UInt64
    /// The local runner's watchdog: seconds a trainer may go without writing anything to its
    /// run directory before it is stopped (SIGTERM) and recorded as failed; 0 turns it off.
    public let stallTimeout: Double
    /// Seconds between the watchdog's SIGTERM and its SIGKILL, for a trainer too stuck to stop.
    public let stallGrace: Double
    /// Keys set for every run, in the order they are applied.
    public let settings: [Setting]
    /// The learning-rate axis (`optimizer.lr`); nil: the base config's lr.
    public let lr: Axis?
    /// The decay axis (each method's `decay_key`); nil: the value the config already has.
    public let decay: Axis?
    /// The methods, in spec order; a spec without `[[methods]]` has one, labelled by the base's optimizer.
    public let methods: [Method]
    let seedsOrigin: Origin?

    /// Keys a spec's top level accepts.
    public static let topLevelKeys = ["name", "description", "base", "seeds", "sweep_seed", "stall_timeout", "stall_grace",
                                            "set", "lr", "decay", "methods"]
    /// Keys of a `[[methods]]` entry besides the config keys it replaces (`methodConfigKeys`).
    public static let methodKeys = ["label", "decay_key", "lr", "decay", "set"]
    /// Experiment-config top-level keys a method may replace: everything but the ones the sweep owns.
    public static var methodConfigKeys: [String] {
        ExperimentConfig.topLevelKeys.filter { !["name", "description", "seed"].contains($0) }
    }

    /// Reads a spec file; `base` is resolved against the spec's directory.
    public static func load(path: String) throws -> SweepSpec {
        let text: String
        guard FileManager.default.fileExists(atPath: path) else {
            throw FileFormatError(file: path, message: "no such file (expected a sweep spec, docs/sweeps.md)")
        }
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw FileFormatError(file: path, message: "cannot read the sweep spec: \(JSONFile.reason(error))")
        }
        return try parse(text: text, file: path)
    }

    /// Parses a spec's text. `file` names the spec in errors and locates `base` (relative to
    /// the file's directory); the base config is read here, its validity is checked by
    /// `SweepPlan` for every run.
    public static func parse(text: String, file: String) throws -> SweepSpec {
        let root = try ConfigReader.parse(text, file: file)
        let defaultName = ((file as NSString).lastPathComponent as NSString).deletingPathExtension
        let name = try root.string("name", default: defaultName)
        guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }),
              name != ".", name != ".." else {
            throw root.error("name", "\"\(name)\" cannot name a directory (sweeps/<name>); use letters, digits, '.', '_' and '-'")
        }
        _ = try root.string("description", default: "")
        let base = try root.string("base")
        let specDir = (file as NSString).deletingLastPathComponent
        let baseFile = base.hasPrefix("/") ? base
            : ((specDir.isEmpty ? "." : specDir) as NSString).appendingPathComponent(base)
        let baseText: String
        guard FileManager.default.fileExists(atPath: baseFile) else {
            throw root.error("base", "no such file: \(baseFile) (a relative base is relative to the spec's directory)")
        }
        do { baseText = try String(contentsOfFile: baseFile, encoding: .utf8) } catch {
            throw root.error("base", "cannot read the base config \(baseFile) (relative paths are relative to the spec's directory): \(JSONFile.reason(error))")
        }
        // A syntax error in the base names the base file and line.
        let baseDocument = try ConfigReader.parse(baseText, file: baseFile).document

        var seedsOrigin: Origin?
        var seeds: [Int]?
        if root.has("seeds") {
            let list = try root.ints("seeds", default: [])
            seedsOrigin = Origin(reader: root, key: "seeds")
            if list.isEmpty { throw root.error("seeds", "is empty; give at least one seed or leave the key out (the base's seed)") }
            if let bad = list.first(where: { $0 < 0 }) { throw root.error("seeds", "\(bad) is negative; seeds are integers ≥ 0") }
            if let dup = duplicate(list) { throw root.error("seeds", "\(dup) is listed twice") }
            seeds = list
        }
        let sweepSeed = try root.int("sweep_seed", default: 0, min: 0)
        let stallTimeout = try root.double("stall_timeout", default: 1800, range: 0...1e9)
        let stallGrace = try root.double("stall_grace", default: 30, range: 0...1e9)
        let settings = try readSettings(root)
        let lr = try readAxis(root, "lr", sweepSeed: UInt64(sweepSeed), stream: "lr", positive: true)
        let decay = try readAxis(root, "decay", sweepSeed: UInt64(sweepSeed), stream: "decay", positive: false)

        var methods: [Method] = []
        if let tables = try root.tables("methods") {
            if tables.isEmpty { throw root.error("methods", "is empty; give at least one [[methods]] table or leave the key out") }
            for (i, m) in tables.enumerated() {
                let method = try readMethod(m, index: i, sweepSeed: UInt64(sweepSeed))
                if let j = methods.firstIndex(where: { $0.label == method.label }) {
                    throw m.error("label", "\"\(method.label)\" is also the label of methods[\(j)]; labels name heatmaps and must differ")
                }
                methods.append(method)
            }
        } else {
            // One method: the base config as it is, labelled by its optimizer.
            var label = "base"
            if case .table(let d)? = baseDocument.tableValue("optimizer"), case .string(let n)? = d["name"] { label = n }
            methods = [Method(label: label, decayKey: "optimizer.weight_decay", lr: nil, decay: nil, replacements: [],
                              settings: [], index: 0, origin: Origin(reader: root, key: "methods"),
                              decayKeyOrigin: Origin(reader: root, key: "decay"))]
        }
        try finish(root, allowed: topLevelKeys, what: "the top level")
        return SweepSpec(file: file, text: text, name: name, baseFile: (baseFile as NSString).standardizingPath,
                         baseText: baseText, seeds: seeds, sweepSeed: UInt64(sweepSeed), stallTimeout: stallTimeout,
                         stallGrace: stallGrace, settings: settings, lr: lr,
                         decay: decay, methods: methods, seedsOrigin: seedsOrigin)
    }

    static func readMethod(_ m: ConfigReader, index: Int, sweepSeed: UInt64) throws -> Method {
        let label = try m.string("label")
        if label.isEmpty || label.contains(where: { $0.isNewline }) {
            throw m.error("label", "must be a non-empty single line, got \"\(label)\"")
        }
        let decayKey = try m.string("decay_key", default: "optimizer.weight_decay")
        do { _ = try ConfigOverride(key: decayKey, value: .number(0, isInteger: false)) } catch let e as ConfigError {
            throw m.error("decay_key", e.message)
        }
        let settings = try readSettings(m)
        let lr = try readAxis(m, "lr", sweepSeed: sweepSeed, stream: "methods.\(label).lr", positive: true)
        let decay = try readAxis(m, "decay", sweepSeed: sweepSeed, stream: "methods.\(label).decay", positive: false)
        if m.has("decay") && !m.has("decay_key") {
            // Explicit values for an implicit key would silently set the wrong thing for an
            // L2 method; ask for the key.
            throw m.error("decay", "needs decay_key: the config key these values set (e.g. \"optimizer.weight_decay\" or \"regularizers[0].lambda\")")
        }
        // Every other key must be an experiment-config top-level key: its value replaces the base's.
        var replacements: [Setting] = []
        for (key, raw) in try m.remainingAsHyperValues().sorted(by: { $0.key < $1.key }) where !methodKeys.contains(key) {
            guard methodConfigKeys.contains(key) else {
                throw m.error(key, "unknown key; a [[methods]] table accepts \((methodKeys + methodConfigKeys).joined(separator: ", ")) (config tables given here replace the base's)")
            }
            replacements.append(Setting(key: key, value: raw.value, origin: Origin(reader: m, key: key)))
        }
        return Method(label: label, decayKey: decayKey, lr: lr, decay: decay, replacements: replacements,
                      settings: settings, index: index, origin: Origin(reader: m, key: "label"),
                      decayKeyOrigin: Origin(reader: m, key: m.has("decay_key") ? "decay_key" : "label"))
    }

    /// `set = { "train.epochs" = 10, ... }` (or a `[set]` table): every key a `--set` path; a
    /// nested table is read as dotted keys (`{ train = { epochs = 10 } }` is `train.epochs`).
    static func readSettings(_ r: ConfigReader) throws -> [Setting] {
        guard let t = try r.table("set") else { return [] }
        var out: [Setting] = []
        func flatten(_ prefix: String, _ value: ConfigValue, origin: Origin) throws {
            if case .table(let d) = value, !d.isEmpty {
                for k in d.keys.sorted() { try flatten(prefix.isEmpty ? k : "\(prefix).\(k)", d[k]!, origin: origin) }
                return
            }
            do { _ = try ConfigOverride(key: prefix, value: value) } catch let e as ConfigError {
                throw origin.error(e.message)
            }
            out.append(Setting(key: prefix, value: value, origin: origin))
        }
        for (key, raw) in try t.remainingAsHyperValues().sorted(by: { $0.key < $1.key }) {
            try flatten(key, raw.value, origin: Origin(reader: t, key: key))
        }
        // Sorted, a table's key comes before the keys inside it, so `set` behaves like the
        // same --set options given in this order.
        out.sort { $0.key < $1.key }
        if let seedSetting = out.first(where: { $0.key == "seed" }) {
            throw seedSetting.origin.error("the seed is the sweep's `seeds` axis; set `seeds = [...]` instead")
        }
        return out
    }

    /// An axis: a list of numbers or a `{ log_space | log_uniform | uniform = [lo, hi], count = n }` table.
    static func readAxis(_ r: ConfigReader, _ key: String, sweepSeed: UInt64, stream: String, positive: Bool) throws -> Axis? {
        guard r.has(key) else { return nil }
        let origin = Origin(reader: r, key: key)
        let what = positive ? "positive numbers" : "numbers ≥ 0"
        func check(_ x: Double, _ where_: ConfigReader, _ k: String) throws -> Double {
            guard x.isFinite, positive ? x > 0 : x >= 0 else {
                throw where_.error(k, "\(x) is out of range; expected \(what)")
            }
            return x
        }
        if case .table? = r.document.tableValue(key) {
            let t = try r.table(key)!
            var forms: [(String, HyperValueText)] = []
            var count: Int?
            var also: [Double] = []
            for (k, raw) in try t.remainingAsHyperValues().sorted(by: { $0.key < $1.key }) {
                switch k {
                case "count":
                    guard case .number(let n, true) = raw.value, n >= 1 else {
                        throw t.error(k, "expected an integer ≥ 1, got \(raw.value)")
                    }
                    count = Int(n)
                case "also":
                    also = try numbers(raw.value, t, k).map { try check($0, t, k) }
                case "log_space", "log_uniform", "uniform":
                    forms.append((k, raw))
                default:
                    throw t.error(k, "unknown key; an axis table accepts log_space, log_uniform, uniform (one of them, = [low, high]), count and also")
                }
            }
            guard forms.count == 1, let (form, raw) = forms.first else {
                throw r.error(key, forms.isEmpty ? "an axis table needs one of log_space, log_uniform, uniform = [low, high] and count = n"
                                                : "give only one of log_space, log_uniform, uniform")
            }
            let range = try numbers(raw.value, t, form)
            guard range.count == 2 else { throw t.error(form, "expected [low, high], got \(raw.value)") }
            let (lo, hi) = (range[0], range[1])
            let logScale = form != "uniform"
            guard lo.isFinite, hi.isFinite, lo <= hi, logScale ? lo > 0 : (positive ? lo > 0 : lo >= 0) else {
                throw t.error(form, "[\(lo), \(hi)] is not a range of \(logScale ? "positive numbers" : what) with low ≤ high")
            }
            guard let n = count else { throw r.error(key, "needs count = n (how many values)") }
            var values: [Double]
            let source: Axis.Source
            switch form {
            case "log_space":
                source = .logSpace(low: lo, high: hi, count: n)
                values = (0..<n).map { i in
                    n == 1 ? lo : roundSignificant(exp(log(lo) + (log(hi) - log(lo)) * Double(i) / Double(n - 1)))
                }
            default:
                // Draws from a stream named after the axis: reordering the spec or adding
                // axes does not change them, and raising `count` keeps the first values.
                var rng = Xoshiro256(seed: sweepSeed, stream: stream)
                source = logScale ? .logUniform(low: lo, high: hi, count: n) : .uniform(low: lo, high: hi, count: n)
                values = (0..<n).map { _ in
                    let u = rng.nextDouble()
                    return roundSignificant(logScale ? exp(log(lo) + (log(hi) - log(lo)) * u) : lo + (hi - lo) * u)
                }
            }
            values += also
            if let dup = duplicate(values) {
                throw r.error(key, "the value \(dup) occurs twice (drawn values are rounded to 4 significant digits); change count, the range or sweep_seed")
            }
            return Axis(values: values, source: source, origin: origin)
        }
        guard case .array? = r.document.tableValue(key) else {
            let v = r.document.tableValue(key)!
            throw r.error(key, "expected an array of \(what) or a table like { log_uniform = [1e-5, 1e-2], count = 4 }, got \(v.typeName) \(v)")
        }
        // Read raw (no typed getter reads a list of floats); `finish` accepts the key later.
        let raw = r.document.tableValue(key)!
        let values = try numbers(raw, r, key).map { try check($0, r, key) }
        if values.isEmpty { throw r.error(key, "is empty; give at least one value or leave the key out") }
        if let dup = duplicate(values) { throw r.error(key, "\(dup) is listed twice") }
        return Axis(values: values, source: .list, origin: origin)
    }

    static func numbers(_ v: ConfigValue, _ r: ConfigReader, _ key: String) throws -> [Double] {
        guard case .array(let a) = v else { throw r.error(key, "expected an array of numbers, got \(v.typeName) \(v)") }
        return try a.map { e in
            guard case .number(let x, _) = e else { throw r.error(key, "expected numbers, found \(e.typeName) \(e)") }
            return x
        }
    }

    /// Refuses unknown keys, listing the accepted ones. (ConfigReader.finish would also refuse
    /// the axes, which are read raw from the document: no typed getter reads a list of floats.)
    static func finish(_ r: ConfigReader, allowed: [String], what: String) throws {
        for (key, _) in try r.remainingAsHyperValues().sorted(by: { $0.key < $1.key }) where !allowed.contains(key) {
            throw r.error(key, "unknown key; \(what) of a sweep spec accepts: \(allowed.joined(separator: ", "))")
        }
    }

    static func duplicate<T: Hashable>(_ values: [T]) -> T? {
        var seen = Set<T>()
        return values.first { !seen.insert($0).inserted }
    }

    /// Rounds to 4 significant digits, so drawn values are readable in configs and reports.
    static func roundSignificant(_ x: Double) -> Double {
        guard x != 0, x.isFinite else { return x }
        return Double(String(format: "%.3e", x))!
    }
}

// MARK: - small helpers

extension ConfigValue {
    /// The value of `key` when this is a table.
    func tableValue(_ key: String) -> ConfigValue? {
        guard case .table(let d) = self else { return nil }
        return d[key]
    }
}

