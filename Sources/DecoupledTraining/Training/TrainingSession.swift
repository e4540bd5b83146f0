import DecoupledCore
import DecoupledHDF5
import DecoupledRandom
import Foundation

/// The objects one training run is made of — data stream, model, arena, update plan and
/// engine — and the one training step that ties them together (Caffe's fixed pipeline):
///
/// 1. next minibatch from the training stream (a new epoch starts after the last batch);
/// 2. forward and backward pass of the data loss into `arena.grads`;
/// 3. one update through the plan's plugins and the sharded kernels (coupled regularizers
///    enter the gradient inside the kernel, decoupled ones decay the weights there too);
/// 4. the schedule advances with the engine's step counter.
///
/// Everything here is deterministic: the same config and seed give bit-identical parameters
/// whatever the thread count (models and the sharder both split work into fixed pieces).
///
/// Steps and evaluations compute in `floatingPointMode` (from `train.flush_subnormals`); the
/// workers of the model and the sharder inherit it from the calling thread.
public final class TrainingSession {
    public let config: ExperimentConfig
    public let dataset: DatasetFile
    public let trainLoader: MinibatchLoader
    public let model: Model
    public let arena: ParameterArena
    public let plan: UpdatePlan
    public let engine: UpdateEngine
    public let threads: Int
    /// The mode every step and evaluation computes in (`train.flush_subnormals`).
    public let floatingPointMode: FloatingPointMode
    public let stepsPerEpoch: Int
    /// Steps of the whole run (`train.steps`, or `train.epochs` × steps per epoch).
    public let totalSteps: Int
    private var batch = Minibatch()
    private var oneHot: [Float] = []
    private let evalLoader: MinibatchLoader
    /// The held-out rows of the training split (`data.validation`), if any.
    private let validationLoader: MinibatchLoader?
    /// The training and validation rows when the config selects rows (`data.train_subset`,
    /// `data.validation`); nil when the run trains on the whole training split.
    public let selection: DataSelection?
    private var evalBatch = Minibatch()

    /// The outcome of one step.
    public struct StepOutcome {
        public var result: BatchResult
        /// Nil when the update was not applied (non-finite loss or gradients).
        public var report: UpdateEngine.StepReport?
        /// The loss, a gradient or an updated parameter was NaN or ±Inf.
        public var nonFinite: Bool
        /// True when the parameters were changed by a non-finite step (they must not be saved).
        public var parametersDamaged: Bool
    }

    /// Builds the run's objects and initialises the parameters from the seed.
    ///
    /// - threads: overrides `train.threads` (nil: the config's; 0: active cores).
    public init(config: ExperimentConfig, registry: PluginRegistry, kernels: KernelPath, threads: Int? = nil) throws {
        self.config = config
        let requested = threads ?? config.train.threads
        self.threads = requested > 0 ? requested : ProcessInfo.processInfo.activeProcessorCount
        floatingPointMode = config.train.flushSubnormals ? .flushSubnormals : .ieee
        do {
            dataset = try SyntheticData.open(config.data.resolvedFile)
        } catch {
            let looked = config.data.searchedFiles.count > 1 ? "looked for \(config.data.searchedFiles.joined(separator: ", "))" : "looked for \(config.data.resolvedFile)"
            throw TrainingError("data.file: cannot open '\(config.data.file)' (\(looked)): \(error)"
                + (config.data.file.hasSuffix("fashion-mnist.h5") ? "\n  the full Fashion-MNIST is made by `make data` (needs the Debian package dataset-fashion-mnist); or train on the shipped subset: --set data.file=datasets/fashion-mnist-small.h5" : ""))
        }
        // Refuse a run the machine cannot hold before allocating anything large: an allocation
        // that fails later is a trap (SIGILL with a backtrace), not an error.
        try MemoryEstimate(config: config, inputs: dataset.featureCount, outputs: dataset.numClasses, slots: 0).check(config)
        // Every evaluation averages over the test split: an empty one would report NaN metrics.
        guard dataset.testCount > 0 else {
            throw TrainingError("data.file: \(config.data.resolvedFile) has an empty test split (/test/x holds 0 samples); the trainer evaluates on it, so it needs at least one")
        }
        if config.data.selectsRows {
            do {
                let labels = try dataset.allLabels(.train)
                selection = try DataSelection.stratified(
                    labels: labels, numClasses: dataset.numClasses,
                    validation: config.data.validation, trainSubset: config.data.trainSubset, seed: config.data.splitSeed)
            } catch let e as DataInputError {
                throw ConfigError(file: config.reader.file, line: config.reader.locator.line("data"), key: "data",
                                  message: "\(e.description) (data file \(config.data.resolvedFile))")
            }
        } else {
            selection = nil
        }
        trainLoader = try MinibatchLoader(file: dataset, split: .train, batchSize: config.data.batchSize,
                                          seed: config.seed, shuffle: true, bufferBytes: config.data.bufferBytes,
                                          rows: selection.map(\.train))
        evalLoader = try MinibatchLoader(file: dataset, split: .test, batchSize: config.data.evalBatchSize,
                                         seed: 0, shuffle: false, bufferBytes: config.data.bufferBytes)
        if let rows = selection?.validation, !rows.isEmpty {
            validationLoader = try MinibatchLoader(file: dataset, split: .train, batchSize: config.data.evalBatchSize,
                                                   seed: 0, shuffle: false, bufferBytes: config.data.bufferBytes, rows: rows)
        } else {
            validationLoader = nil
        }
        let maxBatch = max(config.data.batchSize, config.data.evalBatchSize)
        do {
            model = try config.model.makeModel(inputCount: dataset.featureCount, outputCount: dataset.numClasses,
                                               maxBatch: maxBatch)
        } catch {
            throw ConfigError(file: config.reader.file, line: config.reader.locator.line("model"), key: "model",
                              message: "\(error) (data: \(dataset.featureCount) features, \(dataset.numClasses) classes)")
        }
        arena = try ParameterArena(specs: model.parameterSpecs)
        var rng = Xoshiro256(seed: config.seed, stream: "init")
        model.initialize(params: arena.pointers(arena.params), rng: &rng)
        plan = try config.plan(registry: registry, tensors: model.parameterSpecs)
        // Now the optimizer state is known too (the engine allocates it next).
        try MemoryEstimate(config: config, inputs: dataset.featureCount, outputs: dataset.numClasses,
                           slots: plan.stateSlots.count).check(config)
        stepsPerEpoch = trainLoader.batchesPerEpoch
        totalSteps = config.train.steps ?? (config.train.epochs! * stepsPerEpoch)
        let epochs = config.train.epochs.map(Double.init) ?? Double(totalSteps) / Double(stepsPerEpoch)
        let timing = UpdateEngine.Timing(stepsPerEpoch: stepsPerEpoch, batchSize: config.data.batchSize,
                                         trainingSize: trainLoader.sampleCount, totalEpochs: epochs)
        engine = try UpdateEngine(plan: plan, arena: arena, kernels: kernels, workers: self.threads, timing: timing)
        if model.loss != .crossEntropy { oneHot = [Float](repeating: 0, count: maxBatch * model.outputCount) }
    }

    /// Steps done (= the engine's update counter; a skipped step counts too, as a scheduler
    /// step would).
    public var step: Int { engine.step }

    /// Runs one step on the next training batch. With `checkGradients` the gradients are
    /// scanned before the update so a non-finite one can be skipped without touching the
    /// parameters (the `skip_step` policy); otherwise the kernel's own count reports them
    /// after the fact, at no extra pass.
    @inline(never)  // Swift 6.3's optimizer crashes ("leaked owned value") when this is inlined
    public func trainStep(checkGradients: Bool = false) throws -> StepOutcome {
        try floatingPointMode.run {
            try nextTrainingBatch()
            let result = forward(batch, train: true)
            var gradientsFinite = result.loss.isFinite
            if gradientsFinite && checkGradients {
                gradientsFinite = arena.entries.allSatisfy { e in arena.view(arena.grads, e).allSatisfy(\.isFinite) }
            }
            guard gradientsFinite else {
                engine.skipStep()
                return StepOutcome(result: result, report: nil, nonFinite: true, parametersDamaged: false)
            }
            let report = engine.apply()
            let damaged = report.stats.nonfiniteGradients > 0 || !report.stats.parameterSumSquares.isFinite
            return StepOutcome(result: result, report: report, nonFinite: damaged, parametersDamaged: damaged)
        }
    }

    /// Non-finite features in the last training batch (a NaN loss with finite parameters
    /// usually comes from the data; `decoupled data inspect` finds where).
    public var nonFiniteFeaturesInLastBatch: Int {
        batch.features.prefix(batch.count * dataset.featureCount).reduce(0) { $0 + ($1.isFinite ? 0 : 1) }
    }

    /// Consumes the next training batch without an update (a step skipped after a rollback);
    /// the step counter still advances, so the schedule stays aligned with the data.
    public func skipBatch() throws {
        try nextTrainingBatch()
        engine.skipStep()
    }

    /// Fills `batch` with the next training batch; the loader reports an epoch's end once and
    /// then continues with the next epoch.
    private func nextTrainingBatch() throws {
        if !(try trainLoader.next(into: &batch)) { _ = try trainLoader.next(into: &batch) }
    }

    /// Mean data loss and accuracy over the whole test split (file order, fixed batches).
    public func evaluateTest() throws -> BatchResult { try evaluate(evalLoader) }

    /// Mean data loss and accuracy over the validation rows; nil without a validation split.
    public func evaluateValidation() throws -> BatchResult? { try validationLoader.map { try evaluate($0) } }

    /// Training samples per epoch (the training subset when the config selects one).
    public var trainingSampleCount: Int { trainLoader.sampleCount }

    /// Mean data loss and accuracy over a whole split, in file order (for the training split:
    /// the rows the run trains on).
    public func evaluate(_ split: DatasetSplit) throws -> BatchResult {
        if split == .test { return try evaluateTest() }
        return try evaluate(try MinibatchLoader(file: dataset, split: split, batchSize: config.data.evalBatchSize, seed: 0,
                                                shuffle: false, bufferBytes: config.data.bufferBytes,
                                                rows: selection.map(\.train)))
    }

    private func evaluate(_ loader: MinibatchLoader) throws -> BatchResult {
        try floatingPointMode.run {
            var lossSum = 0.0, correct = 0, count = 0, predictions = 0
            while try loader.next(into: &evalBatch) {
                let r = forward(evalBatch, train: false)
                lossSum += r.loss * Double(r.count)
                correct += r.correct
                count += r.count
                predictions += r.predictions
            }
            return BatchResult(loss: count > 0 ? lossSum / Double(count) : .nan, correct: correct, count: count,
                               predictions: predictions)
        }
    }

    private func forward(_ b: Minibatch, train: Bool) -> BatchResult {
        let params = arena.pointers(arena.params).map { UnsafePointer($0) }
        return b.features.withUnsafeBufferPointer { x in
            b.labels.withUnsafeBufferPointer { labels in
                withTargets(labels, count: b.count) { targets in
                    train
                        ? model.lossAndGradients(x: x.baseAddress!, targets: targets, batch: b.count, params: params,
                                                 grads: arena.pointers(arena.grads), threads: threads)
                        : model.evaluate(x: x.baseAddress!, targets: targets, batch: b.count, params: params,
                                         threads: threads)
                }
            }
        }
    }

    /// Class labels for cross-entropy; one-hot rows (one column per class) for MSE and
    /// logistic losses, so every model trains on the same classification files.
    private func withTargets<R>(_ labels: UnsafeBufferPointer<Int32>, count: Int, _ body: (Targets) -> R) -> R {
        if model.loss == .crossEntropy { return body(.labels(labels.baseAddress!)) }
        let k = model.outputCount
        return oneHot.withUnsafeMutableBufferPointer { t in
            for i in 0..<(count * k) { t[i] = 0 }
            for i in 0..<count where labels[i] >= 0 && Int(labels[i]) < k { t[i * k + Int(labels[i])] = 1 }
            return body(.values(UnsafePointer(t.baseAddress!)))
        }
    }

    /// ‖w‖₂ and the number of exact zeros over all parameters.
    public func weightStatistics() -> (norm: Double, zeros: Int) {
        var sq = 0.0, zeros = 0
        for e in arena.entries {
            for x in arena.view(arena.params, e) {
                sq += Double(x) * Double(x)
                if x == 0 { zeros += 1 }
            }
        }
        return (sq.squareRoot(), zeros)
    }

    /// Every optimizer state slot the plan uses (what a checkpoint must hold).
    public var stateSlots: [String] { plan.stateSlots.sorted() }
}

/// The memory a run allocates, estimated from the config before allocating it: parameters,
/// gradients and optimizer state (4 bytes per parameter each), the model's activations for
/// the largest batch, and the data loaders' buffers.
struct MemoryEstimate {
    var parameters: Double
    var parameterBytes: Double
    var stateBytes: Double
    var activationBytes: Double
    var bufferBytes: Double
    var total: Double { parameterBytes + stateBytes + activationBytes + bufferBytes }

    init(config: ExperimentConfig, inputs: Int, outputs: Int, slots: Int) {
        let layers = [Double(inputs)] + (config.model.kind == .mlp ? config.model.hidden.map(Double.init) : []) + [Double(outputs)]
        var p = 0.0, activations = 0.0
        for l in 1..<layers.count {
            p += layers[l - 1] * layers[l] + layers[l]
            // z and dz of every layer, and the activation output of every hidden layer
            activations += layers[l] * (l < layers.count - 1 ? 3 : 2)
        }
        // A layer model is built without allocating its buffers: count from its layers.
        if config.model.kind == .sequential,
           let model = try? config.model.makeModel(inputCount: inputs, outputCount: outputs, maxBatch: 1) as? SequentialModel {
            p = Double(model.parameterSpecs.reduce(0) { $0 + $1.count })
            activations = Double(model.activationFloatsPerSample)
        }
        let rows = Double(max(config.data.batchSize, config.data.evalBatchSize))
        parameters = p
        parameterBytes = p * 4 * 2  // parameters and gradients
        stateBytes = p * 4 * Double(slots)
        // The loaders' batches (features, labels, order) besides their shuffle buffers.
        activationBytes = rows * activations * 4 + rows * Double(inputs + 4) * 4 * 3
        bufferBytes = Double(config.data.bufferBytes) * 2
    }

    /// The memory this process may use: physical memory (sysconf), or less when an address
    /// space or data size limit (ulimit -v / -d) is set.
    static func available() -> Double {
        var limit = Double(sysconf(Int32(_SC_PHYS_PAGES))) * Double(sysconf(Int32(_SC_PAGESIZE)))
        for resource in [RLIMIT_AS, RLIMIT_DATA] {
            var r = rlimit()
            #if canImport(Glibc)
            let ok = getrlimit(__rlimit_resource_t(resource.rawValue), &r) == 0
            #else
            let ok = getrlimit(resource, &r) == 0
            #endif
            if ok && r.rlim_cur != rlim_t.max { limit = min(limit, Double(r.rlim_cur)) }
        }
        return limit
    }

    static func gigabytes(_ bytes: Double) -> String { String(format: "%.1f GB", bytes / 1e9) }

    func check(_ config: ExperimentConfig) throws {
        let available = Self.available()
        guard total > available else { return }
        let g = Self.gigabytes
        let hidden = "[" + config.model.hidden.map(String.init).joined(separator: ", ") + "]"
        let layers = config.model.kind == .sequential
        throw config.reader.error(
            layers ? "model.layers" : "model.hidden",
            "the run needs about \(g(total)) of memory, more than the \(g(available)) this process can use: "
            + "\(String(format: "%.3g", parameters)) parameters take \(g(parameterBytes)) with their gradients"
            + (stateBytes > 0 ? " and \(g(stateBytes)) of optimizer state" : "")
            + ", activations for \(max(config.data.batchSize, config.data.evalBatchSize)) rows \(g(activationBytes)), data buffers \(g(bufferBytes)). "
            + (layers ? "Make the layers smaller" : "Make model.hidden (\(hidden))") + " or data.batch_size (\(config.data.batchSize)) / data.eval_batch_size "
            + "(\(config.data.evalBatchSize)) smaller")
    }
}

/// A training failure a user can act on.
public struct TrainingError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
