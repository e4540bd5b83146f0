import DecoupledCore
import DecoupledHDF5
import Foundation

/// What to do when a step produces a non-finite loss, gradient or parameter.
public enum NaNPolicy: String, Codable, CaseIterable, Sendable {
    /// End the run with status "diverged"; the last checkpoint stays the newest.
    case stop
    /// Leave parameters and optimizer state as they were before the step and go on.
    case skipStep = "skip_step"
    /// Reload the newest checkpoint and go on, skipping the batch that failed.
    case rollback
}

/// A whole experiment: data, model, optimization and training cadence, read strictly from
/// TOML (docs/config.md) with `--set` overrides applied.
public struct ExperimentConfig {
    public struct Data: Equatable {
        /// The HDF5 dataset file, as written in the config.
        public var file: String
        /// `file` resolved against the working directory, the config's directory, then the
        /// binary's resource root (`ExperimentConfig.resolve`).
        public var resolvedFile: String
        /// Every place `file` was looked for, in order (the last is `resolvedFile` when found).
        public var searchedFiles: [String]
        public var batchSize: Int
        public var bufferBytes: Int
        public var evalBatchSize: Int
        /// Training samples to train on, drawn stratified from the training split after the
        /// validation rows are held out (nil: all of them).
        public var trainSubset: Int?
        /// Training-split samples held out for validation (nil: no validation split).
        public var validation: ValidationSize?
        /// Seed of the stratified draw of `trainSubset` and `validation` (not the run's seed,
        /// so runs that differ in seed share their data).
        public var splitSeed: UInt64
        /// Whether the run trains on a selection of the training split rather than all of it.
        public var selectsRows: Bool { trainSubset != nil || validation != nil }
    }

    public struct Train: Equatable {
        /// Length of the run: exactly one of epochs and steps is set.
        public var epochs: Int?
        public var steps: Int?
        /// Evaluate on the test split every this many epochs (and at the end).
        public var evalEvery: Int
        /// A train-only metrics record every this many steps (0 = only at evaluations).
        public var logEvery: Int
        /// Checkpoint every this many steps (0 = only at the end and on signals).
        public var checkpointEvery: Int
        public var keepCheckpoints: Int
        /// Workers for the model and the update; 0 = active cores.
        public var threads: Int
        public var nanPolicy: NaNPolicy
        /// nan_policy = "skip_step": more skipped steps than this end the run as diverged;
        /// nil = 1% of the run's steps, at least 10.
        public var maxSkippedSteps: Int? = nil
        /// Compute with subnormals flushed to zero (docs/config.md, `flush_subnormals`).
        public var flushSubnormals: Bool
        /// Also write the metrics records' scalars as TensorBoard event files in
        /// RUN_DIR/tensorboard (docs/run-directory.md); sweeps turn it on unless their config sets it.
        public var tensorboard: Bool = false
    }

    public var name: String
    public var description: String
    public var seed: UInt64
    public var data: Data
    public var model: ModelConfig
    public var train: Train
    public var optimization: OptimizationSpec
    /// The config after overrides, as TOML with sorted keys (what the run directory stores).
    public var resolvedText: String
    /// The parsed document (kept for plan errors with lines, and config diffs on resume).
    public let reader: ConfigReader

    public static let topLevelKeys = ["name", "description", "seed", "problem", "data", "model", "train"] + OptimizationConfig.topLevelKeys

    /// Reads a config file; `overrides` are `--set key=value` pairs applied in order.
    public static func load(path: String, overrides: [ConfigOverride] = []) throws -> ExperimentConfig {
        let text: String
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue {
            throw ConfigError(file: path, line: nil, key: "", message: "is a directory; expected a TOML config file")
        }
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw ConfigError(file: path, line: nil, key: "", message: "cannot read the config: \(error.localizedDescription)")
        }
        return try parse(text, file: path, overrides: overrides)
    }

    public static func parse(_ text: String, file: String, overrides: [ConfigOverride] = []) throws -> ExperimentConfig {
        let root = try ConfigReader.parse(text, file: file, overrides: overrides)
        // Unknown top-level keys first: a misspelt table (`[modle]`) must be named as such,
        // not reported as the required table it was meant to be.
        try root.refuseUnknown(allowed: topLevelKeys)
        let name = try root.string("name", default: ((file as NSString).lastPathComponent as NSString).deletingPathExtension)
        let description = try root.string("description", default: "")
        let seed = try root.int("seed", default: 0, min: 0)

        // A named test problem supplies the model and the defaults of data.file,
        // data.batch_size and train.epochs (docs/problems.md).
        var problem: TestProblem?
        if root.has("problem") {
            let name = try root.string("problem", allowed: TestProblem.all.map(\.name))
            problem = TestProblem.named(name)
            if root.has("model") {
                throw root.error("model", "the problem \"\(name)\" defines the model; remove the [model] table, or remove `problem` and describe the model yourself")
            }
        }
        let d = try root.table("data") ?? (problem != nil ? ConfigReader(file: file, locator: root.locator, path: "data", table: [:], overrides: root.overrides) : nil)
        guard let d else {
            throw root.error("data", "is required: a [data] table with file = \"datasets/....h5\"")
        }
        let dataFile = try d.string("file", default: problem?.dataFile)
        let located = resolve(dataFile, configFile: file)
        let data = Data(file: dataFile, resolvedFile: located.path, searchedFiles: located.searched,
                        batchSize: try d.int("batch_size", default: problem?.batchSize ?? 128, min: 1),
                        bufferBytes: Int(try d.double("buffer_mb", default: 64, range: 1...1_048_576) * 1_048_576),
                        evalBatchSize: try d.int("eval_batch_size", default: 1000, min: 1),
                        trainSubset: try d.optionalInt("train_subset", min: 1),
                        validation: try readValidation(d),
                        splitSeed: UInt64(try d.int("split_seed", default: 0, min: 0)))
        try d.finish()

        let model: ModelConfig
        if let problem {
            model = try problem.modelConfig()
        } else {
            guard let m = try root.table("model") else {
                throw root.error("model", "is required: a [model] table with kind = \"mlp\" | \"softmax\" | \"linear\" | \"sequential\", or a named test problem (problem = \"fmnist_2c2d\"; `decoupled problems list`)")
            }
            model = try readModel(m)
        }

        let t = try root.table("train") ?? (problem != nil ? ConfigReader(file: file, locator: root.locator, path: "train", table: [:], overrides: root.overrides) : nil)
        guard let t else { throw root.error("train", "is required: a [train] table with epochs = N or steps = N") }
        let steps = try t.optionalInt("steps", min: 1)
        let epochs = try t.optionalInt("epochs", min: 1) ?? (steps == nil ? problem?.epochs : nil)
        if (epochs == nil) == (steps == nil) {
            throw t.error(epochs == nil ? "epochs" : "steps", "give exactly one of epochs = N and steps = N")
        }
        var train = Train(epochs: epochs, steps: steps,
                          evalEvery: try t.int("eval_every", default: 1, min: 1),
                          logEvery: try t.int("log_every", default: 0, min: 0),
                          checkpointEvery: try t.int("checkpoint_every", default: 0, min: 0),
                          keepCheckpoints: try t.int("keep_checkpoints", default: 3, min: 1),
                          threads: try t.int("threads", default: 0, min: 0),
                          nanPolicy: NaNPolicy(rawValue: try t.string("nan_policy", default: "stop",
                                                                      allowed: NaNPolicy.allCases.map(\.rawValue)))!,
                          flushSubnormals: try t.bool("flush_subnormals", default: true))
        train.maxSkippedSteps = try t.optionalInt("max_skipped_steps", min: 0)
        train.tensorboard = try t.bool("tensorboard", default: false)
        try t.finish()

        let optimization = try OptimizationConfig.read(root)
        try root.finish()
        // The stored config names the data file absolutely, so a run resumes from anywhere.
        var resolved = root.document
        try ConfigOverride(key: "data.file", value: .string(data.resolvedFile)).apply(to: &resolved)
        return ExperimentConfig(name: name, description: description, seed: UInt64(seed), data: data, model: model,
                                train: train, optimization: optimization, resolvedText: resolved.tomlText(),
                                reader: root)
    }

    /// `validation = N` (a count) or `validation = 0.1` (a fraction of the training split).
    static func readValidation(_ d: ConfigReader) throws -> ValidationSize? {
        guard let v = d.value("validation") else { return nil }
        switch v {
        case .number(let x, true):
            guard x >= 1 else { throw d.error("validation", "a count must be ≥ 1, got \(Int64(x)); omit the key for no validation split") }
            return .count(Int(x))
        case .number(let x, false):
            guard x > 0 && x < 1 else {
                throw d.error("validation", "a fraction must be in (0, 1), got \(x); write an integer for a count of samples")
            }
            return .fraction(x)
        default:
            throw d.error("validation", "expected a count of samples (e.g. 10000) or a fraction of the training split "
                          + "(e.g. 0.1), got \(v.typeName) \(v)")
        }
    }

    static func readModel(_ m: ConfigReader) throws -> ModelConfig {
        // A layer list makes the kind "sequential" unless the config says otherwise.
        let kind = ModelKind(rawValue: try m.string("kind", default: m.has("layers") ? "sequential" : nil,
                                                    allowed: ModelKind.allCases.map(\.rawValue)))!
        var model = ModelConfig(kind: kind)
        if kind == .sequential {
            guard let layers = try m.tables("layers"), !layers.isEmpty else {
                throw m.error("layers", "is required for kind = \"sequential\": a list of layer tables, e.g. layers = [{ type = \"dense\", units = 10 }] or [[model.layers]] sections")
            }
            model.layers = try layers.map(LayerSpec.read)
            if m.has("input_shape") {
                let shape = try m.ints("input_shape", default: [])
                guard shape.count == 1 || shape.count == 3, shape.allSatisfy({ $0 > 0 }) else {
                    throw m.error("input_shape", "expected [features] or [channels, height, width] of positive integers, got \(shape)")
                }
                model.inputShape = shape
            }
        }
        model.hidden = try m.ints("hidden", default: [])
        if let bad = model.hidden.first(where: { $0 <= 0 }) {
            throw m.error("hidden", "sizes must be positive integers, got \(bad)")
        }
        model.activation = ActivationKind(rawValue: try m.string("activation", default: "relu",
                                                                 allowed: ActivationKind.allCases.map(\.rawValue)))!
        if m.has("init") {
            model.initialization = InitKind(rawValue: try m.string("init", allowed: InitKind.allCases.map(\.rawValue)))
        }
        if m.has("loss") {
            model.loss = LossKind(rawValue: try m.string("loss", allowed: LossKind.allCases.map(\.rawValue)))
        }
        try m.finish()
        return model
    }

    /// A relative data path is looked up in the working directory first, then next to the
    /// config file, then in the resource root of the running binary (`InstallLayout`: the
    /// repository for a development build, PREFIX/share/decoupled for an installation), so
    /// `decoupled train examples/x.toml` from the repository, a config kept beside its data and
    /// an installed example run from any directory all work. The first that exists wins;
    /// when none does, the path is the working directory's and `searched` lists all of them.
    static func resolve(_ path: String, configFile: String, workingDirectory: String = FileManager.default.currentDirectoryPath,
                        resourceRoot: String? = InstallLayout.current?.resourceRoot) -> (path: String, searched: [String]) {
        if path.hasPrefix("/") || SyntheticData.isSynthetic(path) { return (path, [path]) }
        let configDir = (configFile as NSString).deletingLastPathComponent
        var bases = [workingDirectory,
                     configDir.hasPrefix("/") ? configDir : (workingDirectory as NSString).appendingPathComponent(configDir)]
        if let resourceRoot { bases.append(resourceRoot) }
        var searched: [String] = []
        for base in bases {
            let candidate = ((base as NSString).appendingPathComponent(path) as NSString).standardizingPath
            if FileManager.default.fileExists(atPath: candidate) { return (candidate, searched + [candidate]) }
            if !searched.contains(candidate) { searched.append(candidate) }
        }
        return (searched[0], searched)
    }

    /// The update plan for the model's tensors, with plugin errors pointing at config lines.
    public func plan(registry: PluginRegistry, tensors: [TensorSpec]) throws -> UpdatePlan {
        try OptimizationConfig.plan(optimization, registry: registry, tensors: tensors, root: reader)
    }
}
