import DecoupledCheckpoint
import DecoupledCore
import DecoupledHDF5
import DecoupledTraining
import Foundation

/// A sweep spec expanded into runs (method × lr × decay × seed), every run's config resolved
/// and validated, and the sweep directory that holds them:
///
/// ```
/// SWEEP_DIR/manifest.json        SweepManifest: every run ever planned here (old ones are kept)
/// SWEEP_DIR/sweep.toml           a copy of the spec (an edited spec moves the old copy to sweep-<time>.toml)
/// SWEEP_DIR/configs/<id>.toml    each run's resolved config
/// SWEEP_DIR/runs/<id>/           each run's directory (docs/run-directory.md)
/// SWEEP_DIR/runner.log           what the local runner did
/// SWEEP_DIR/slurm/               job script, task list, job ids and events of the Slurm backend
/// ```
///
/// A run's id is the first 12 hex digits of the FNV-1a hash of its resolved config (the text
/// `decoupled train` stores as the run's config.toml, whose full hash is summary.json's
/// `config_hash`): the same spec always gives the same ids, and an edited spec keeps the ids
/// of the runs it still contains, so their results are reused.
public struct SweepPlan {
    /// One run of the spec.
    public struct Entry {
        /// The manifest entry: id, run directory, method, lr, decay, seed, overrides.
        public let run: SweepManifest.Run
        /// The resolved config (`configs/<id>.toml`, the run directory's config.toml).
        public let configText: String
        /// `SWEEP_DIR/configs/<id>.toml`, absolute.
        public let configPath: String
        /// `SWEEP_DIR/runs/<id>`, absolute.
        public let runDirectory: String

        /// The run's id (`run.id`).
        public var id: String { run.id }

        /// "AdamW lr=1e-3 decay=1e-2 seed=0", for progress lines.
        public var label: String {
            "\(run.method) lr=\(SweepFormat.number(run.lr)) decay=\(SweepFormat.number(run.decay)) seed=\(run.seed)"
        }
    }

    /// The spec the runs come from.
    public let spec: SweepSpec
    /// The sweep directory, absolute.
    public let directory: String
    /// The spec's runs in expansion order: methods in spec order, then lr, decay, seed.
    public let entries: [Entry]
    /// The manifest after `write()`: the runs of earlier specs planned into this directory
    /// followed by the new ones. Before writing, the spec's runs only.
    public private(set) var manifest: SweepManifest

    /// The default sweep directory of a spec: `sweeps/<name>` in the working directory.
    public static func defaultDirectory(for spec: SweepSpec) -> String { "sweeps/\(spec.name)" }

    /// Expands and validates the spec; every run's config is parsed and its update plan built
    /// against `registry` (so an unknown plugin, a bad key or a bad value fails here, before
    /// anything runs). With `write` the sweep directory is created or updated (`write()`).
    public init(spec: SweepSpec, sweepDirectory: String, registry: PluginRegistry = .builtIn(), write: Bool = true) throws {
        self.spec = spec
        let cwd = FileManager.default.currentDirectoryPath
        directory = ((sweepDirectory.hasPrefix("/") ? sweepDirectory : (cwd as NSString).appendingPathComponent(sweepDirectory))
                     as NSString).standardizingPath
        entries = try SweepExpansion(spec: spec, directory: directory, registry: registry).expand()
        manifest = SweepManifest(name: spec.name, spec: "sweep.toml", runs: entries.map(\.run))
        if write { try self.write() }
    }

    /// `SWEEP_DIR/<name>`, absolute.
    public func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }

    /// Creates or updates the sweep directory: the resolved configs, the spec copy and the
    /// manifest (old runs kept, new ones appended, metadata of runs still in the spec updated).
    /// Refused while a local runner holds the sweep directory.
    public mutating func write() throws {
        let fm = FileManager.default
        try FS.createDirectory(path("configs"))
        try FS.createDirectory(path("runs"))
        let lock = try DirectoryLock(directory, kind: .sweep, purpose: "planning")
        defer { lock.release() }

        for e in entries {
            if let existing = try? String(contentsOfFile: e.configPath, encoding: .utf8) {
                guard existing == e.configText else {
                    throw FileFormatError(file: e.configPath, message: "holds a different config with the same id \(e.run.id) (a hash collision, or the file was edited); move it away and rerun")
                }
                continue
            }
            try FS.writeAtomically(e.configText, to: e.configPath)
        }

        // The spec copy; an edited spec keeps the previous copy beside it.
        let copy = path("sweep.toml")
        if let old = try? String(contentsOfFile: copy, encoding: .utf8), old != spec.text {
            let f = DateFormatter()
            f.dateFormat = "yyyyMMdd-HHmmss"
            f.locale = Locale(identifier: "en_US_POSIX")
            var kept = path("sweep-\(f.string(from: Date())).toml")
            var n = 1
            while fm.fileExists(atPath: kept) { kept = path("sweep-\(f.string(from: Date()))-\(n).toml"); n += 1 }
            try fm.moveItem(atPath: copy, toPath: kept)
        }
        try FS.writeAtomically(spec.text, to: copy)

        let manifestURL = URL(fileURLWithPath: path(SweepManifest.fileName))
        var merged = fm.fileExists(atPath: manifestURL.path) ? try SweepManifest.load(from: manifestURL)
                                                             : SweepManifest(name: spec.name, spec: "sweep.toml", runs: [])
        merged.name = spec.name
        merged.spec = "sweep.toml"
        for e in entries {
            if let i = merged.runs.firstIndex(where: { $0.id == e.run.id }) {
                merged.runs[i] = e.run  // same config; the spec may have relabelled it
            } else {
                merged.runs.append(e.run)
            }
        }
        try merged.validate(file: manifestURL.path)
        try merged.write(to: manifestURL)
        manifest = merged
    }
}

/// The expansion of one spec: override lists, config validation with errors pointing at the
/// spec (or the base) line that set the offending value, manifest entries.
final class SweepExpansion {
    let spec: SweepSpec
    let directory: String
    let registry: PluginRegistry
    /// Data files opened for validation: path → (features, classes).
    private var dataShapes: [String: (Int, Int)] = [:]
    /// Model parameter tensors built for validation, per model config and data shape.
    private var modelTensors: [(ModelConfig, Int, Int, [TensorSpec])] = []

    init(spec: SweepSpec, directory: String, registry: PluginRegistry) {
        self.spec = spec
        self.directory = directory
        self.registry = registry
    }

    /// An override with the spec position that asked for it.
    struct Sourced {
        let override: ConfigOverride
        let origin: SweepSpec.Origin
    }

    func expand() throws -> [SweepPlan.Entry] {
        var entries: [SweepPlan.Entry] = []
        var byID: [String: Int] = [:]
        let baseReader = try ConfigReader.parse(spec.baseText, file: spec.baseFile)
        for method in spec.methods {
            let lrs: [Double?] = (method.lr ?? spec.lr).map { $0.values } ?? [nil]
            let decayAxis = method.decay ?? spec.decay
            let decays: [Double?] = decayAxis.map { $0.values } ?? [nil]
            let seeds: [Int?] = spec.seeds ?? [nil]
            for lr in lrs {
                for decay in decays {
                    for seed in seeds {
                        var list: [Sourced] = []
                        func add(_ key: String, _ value: ConfigValue, _ origin: SweepSpec.Origin) throws {
                            do { list.append(Sourced(override: try ConfigOverride(key: key, value: value), origin: origin)) }
                            catch let e as ConfigError { throw origin.error(e.message) }
                        }
                        for r in method.replacements { try add(r.key, r.value, r.origin) }
                        for s in spec.settings + method.settings { try add(s.key, s.value, s.origin) }
                        if let lr { try add("optimizer.lr", .number(lr, isInteger: false), (method.lr ?? spec.lr)!.origin) }
                        if let decay {
                            try add(method.decayKey, .number(decay, isInteger: false),
                                    method.decay != nil ? method.decay!.origin : method.decayKeyOrigin)
                        }
                        if let seed { try add("seed", .number(Double(seed), isInteger: true), spec.seedsOrigin!) }
                        let context = "run \(method.label)" + (lr.map { " lr=\(SweepFormat.number($0))" } ?? "")
                            + (decay.map { " decay=\(SweepFormat.number($0))" } ?? "") + (seed.map { " seed=\($0)" } ?? "")
                        let entry = try resolve(method: method, lr: lr, decay: decay, overrides: list, context: context,
                                                baseReader: baseReader)
                        if let j = byID[entry.run.id] {
                            throw method.origin.error("\(context) resolves to the same config as run \(entries[j].run.method) lr=\(SweepFormat.number(entries[j].run.lr)) decay=\(SweepFormat.number(entries[j].run.decay)) seed=\(entries[j].run.seed) (id \(entry.run.id)): does the decay axis set a key the method's optimizer ignores, or is a value listed twice?")
                        }
                        byID[entry.run.id] = entries.count
                        entries.append(entry)
                    }
                }
            }
        }
        return entries
    }

    /// One run: parse the base with the overrides, validate, derive the manifest entry.
    func resolve(method: SweepSpec.Method, lr: Double?, decay: Double?, overrides: [Sourced], context: String,
                          baseReader: ConfigReader) throws -> SweepPlan.Entry {
        /// An error about config key `key`: at the spec line of the last override that set it
        /// (or a table above it), else at the base file's line.
        func error(_ key: String, _ message: String) -> ConfigError {
            var text = message
            // The reader words override errors for the command line; here they come from the spec.
            if let r = text.range(of: " (from --set ", options: .backwards) { text = String(text[..<r.lowerBound]) }
            text += " (\(context))"
            if let path = try? ConfigOverride(key: key, value: .bool(true)).path {
                for s in overrides.reversed() where path.starts(with: s.override.path) {
                    // A `set` key names the config key itself; other origins (an axis, a
                    // method's table) say which config key inside them is wrong.
                    return s.origin.error(s.origin.key == key ? text : "\(key): \(text)")
                }
            }
            return baseReader.error(key, text + " [base of sweep spec \(spec.file)]")
        }
        /// A config error from the base with overrides, re-pointed at the spec where an
        /// override caused it. Plugin errors come without a key but start with it
        /// ("optimizer.beta3 is not a hyper-parameter of ..."): that key is used.
        func mapped(_ e: Error) -> Error {
            guard let c = e as? ConfigError else { return e }
            if !c.key.isEmpty { return error(c.key, c.message) }
            if let r = c.message.range(of: #"^[A-Za-z_][A-Za-z0-9_\-]*(\[[0-9]+\])*(\.[A-Za-z0-9_\-]+(\[[0-9]+\])*)+"#,
                                       options: .regularExpression),
               let path = try? ConfigOverride(key: String(c.message[r]), value: .bool(true)).path,
               let s = overrides.last(where: { path.starts(with: $0.override.path) }) {
                return s.origin.error("\(c.message) (\(context))")
            }
            guard !c.file.hasPrefix("--set") else { return c }
            return FileFormatError(file: c.file + (c.line.map { ":\($0)" } ?? ""),
                                  message: "\(c.message) (\(context)) [base of sweep spec \(spec.file)]")
        }

        // Sweeps write TensorBoard event files unless the base config or the spec says
        // otherwise. Not an override of the spec's: the manifest does not list it. A run an
        // earlier version planned here without it keeps its config, id and results.
        let setsTensorBoard = baseReader.document.tableValue("train")?.tableValue("tensorboard") != nil
            || overrides.contains { $0.override.key == "train.tensorboard" || ($0.override.key == "train" && $0.override.value.tableValue("tensorboard") != nil) }
        var config: ExperimentConfig
        do {
            config = try ExperimentConfig.parse(spec.baseText, file: spec.baseFile, overrides: overrides.map(\.override))
            if !setsTensorBoard && !FileManager.default.fileExists(atPath: configPath(id: Self.id(of: config))) {
                config = try ExperimentConfig.parse(spec.baseText, file: spec.baseFile,
                                                    overrides: overrides.map(\.override) + [try ConfigOverride(key: "train.tensorboard", value: .bool(true))])
            }
        } catch { throw mapped(error) }
        try validatePlan(config, error: error, mapped: mapped)

        let resolved = try ConfigReader.parse(config.resolvedText, file: "resolved config").document
        let runLR: Double
        if let lr { runLR = lr } else {
            guard case .number(let x, _)? = resolved.tableValue("optimizer")?.tableValue("lr"), x.isFinite, x > 0 else {
                throw error("optimizer.lr", "the config sets no positive optimizer.lr; give the spec an lr axis (lr = [...])")
            }
            runLR = x
        }
        var runDecay = decay ?? 0
        if decay == nil, let path = try? ConfigOverride(key: method.decayKey, value: .bool(true)).path {
            // No decay axis: the manifest records what the config has at decay_key (0 when unset).
            switch resolved.value(at: path) {
            case .number(let x, _)?: runDecay = x
            case nil: runDecay = 0
            case let other?: throw method.decayKeyOrigin.error("decay_key \(method.decayKey) holds \(other.typeName) \(other), expected a number (\(context))")
            }
            guard runDecay.isFinite, runDecay >= 0 else {
                throw method.decayKeyOrigin.error("decay_key \(method.decayKey) is \(runDecay); the manifest needs a number ≥ 0 (\(context))")
            }
        }

        let id = Self.id(of: config)
        var recorded: [String: SweepManifest.Value] = [:]
        for s in overrides {
            switch s.override.value {
            case .table, .array:
                // Whole tables (a method's [optimizer]): their scalar leaves, as dotted keys.
                for (k, v) in s.override.value.scalarLeaves(prefix: s.override.key) { recorded[k] = v }
            default:
                if let v = s.override.value.manifestValue { recorded[s.override.key] = v }
            }
        }
        let run = SweepManifest.Run(id: id, dir: "runs/\(id)", method: method.label, lr: runLR, decay: runDecay,
                                    seed: Int(config.seed), overrides: recorded)
        return SweepPlan.Entry(run: run, configText: config.resolvedText, configPath: configPath(id: id),
                               runDirectory: (directory as NSString).appendingPathComponent(run.dir))
    }

    /// A run's id: the first 12 hex digits of the FNV-1a hash of its resolved config.
    static func id(of config: ExperimentConfig) -> String { String(fnv1a64Hex(config.resolvedText).prefix(12)) }

    func configPath(id: String) -> String {
        ((directory as NSString).appendingPathComponent("configs") as NSString).appendingPathComponent("\(id).toml")
    }

    /// Builds the update plan as `decoupled train` would, without loading the data: the data
    /// file's header gives the model's shape.
    func validatePlan(_ config: ExperimentConfig, error errorAt: (String, String) -> ConfigError,
                      mapped: (Error) -> Error) throws {
        let file = config.data.resolvedFile
        let shape: (Int, Int)
        if let s = dataShapes[file] { shape = s } else {
            do {
                let data = try SyntheticData.open(file)
                shape = (data.featureCount, data.numClasses)
            } catch {
                throw errorAt("data.file", "cannot open '\(config.data.file)' (looked for \(file)): \(error)")
            }
            dataShapes[file] = shape
        }
        let tensors: [TensorSpec]
        if let t = modelTensors.first(where: { $0.0 == config.model && $0.1 == shape.0 && $0.2 == shape.1 }) {
            tensors = t.3
        } else {
            do {
                tensors = try config.model.makeModel(inputCount: shape.0, outputCount: shape.1, maxBatch: 1).parameterSpecs
            } catch {
                throw errorAt("model", "\(error) (data: \(shape.0) features, \(shape.1) classes)")
            }
            modelTensors.append((config.model, shape.0, shape.1, tensors))
        }
        do { _ = try config.plan(registry: registry, tensors: tensors) } catch { throw mapped(error) }
    }
}

extension ConfigValue {
    /// The value at a `--set` path, nil when absent.
    func value(at path: [ConfigOverride.PathComponent]) -> ConfigValue? {
        var node = self
        for c in path {
            switch (c, node) {
            case (.key(let k), .table(let d)):
                guard let next = d[k] else { return nil }
                node = next
            case (.index(let i), .array(let a)):
                guard i < a.count else { return nil }
                node = a[i]
            default: return nil
            }
        }
        return node
    }

    /// A scalar as a manifest value; nil for tables and arrays.
    var manifestValue: SweepManifest.Value? {
        switch self {
        case .string(let s): return .string(s)
        case .bool(let b): return .bool(b)
        case .number(let x, true): return .integer(Int(x))
        case .number(let x, false): return .number(x)
        case .table, .array: return nil
        }
    }

    /// Every scalar leaf under this value as `prefix.key` / `prefix[i].key` (arrays of scalars
    /// and empty tables have no manifest form and are left to the config file).
    func scalarLeaves(prefix: String) -> [(String, SweepManifest.Value)] {
        switch self {
        case .table(let d):
            return d.keys.sorted().flatMap { d[$0]!.scalarLeaves(prefix: "\(prefix).\($0)") }
        case .array(let a):
            guard a.allSatisfy({ if case .table = $0 { return true } else { return false } }) else { return [] }
            return a.enumerated().flatMap { $1.scalarLeaves(prefix: "\(prefix)[\($0)]") }
        default:
            return manifestValue.map { [(prefix, $0)] } ?? []
        }
    }
}
