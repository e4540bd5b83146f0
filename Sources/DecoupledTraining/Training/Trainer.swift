import DecoupledCheckpoint
import DecoupledCore
import DecoupledHDF5
import Foundation

/// Runs one experiment into its run directory (docs/run-directory.md): the training loop,
/// periodic evaluation, metrics, checkpoints, resume, signals and the NaN policy.
public final class Trainer {
    /// Everything besides tensors that a checkpoint must hold for a bit-identical resume.
    struct RunState: Codable {
        var step: Int
        var loader: LoaderPosition
        /// Sums over the steps since the last metrics record (so the next record is the same
        /// whether or not the run was interrupted in between).
        var lossSum: Double = 0
        var correct = 0
        var predictions = 0
        var samples = 0
        var steps = 0
        var stepSeconds = 0.0
        var best: MetricRecord?
        var elapsed = 0.0
        var trainedSamples = 0
        /// Steps whose batch is skipped after a rollback (the step that went non-finite).
        var skip: [Int] = []
        var rollbacks = 0
        /// Steps skipped by nan_policy = "skip_step" (optional: checkpoints of older versions lack it).
        var skippedSteps: Int?
        /// fnv1a64Hex of the resolved config the checkpoint was saved under: the run's identity
        /// (the config text itself is /meta/config; resume compares the two key by key).
        var configHash: String?
        /// Batch-norm running statistics and dropout generators (nil for models without state).
        var model: ModelState?
    }

    public let session: TrainingSession
    public let runDirectory: String
    public let progress: ProgressReporter
    let store: CheckpointStore
    let lock: RunLock
    var state: RunState
    var log: MetricsLog!
    private(set) var startStep = 0
    private var resumedFrom: String?
    /// `--allow-config-change`: a checkpoint saved under another config may be loaded.
    let allowConfigChange: Bool

    /// Prepares a run directory: a new run writes `config.toml` and `decay_audit.txt`; with
    /// `resume` the newest valid checkpoint is loaded (corrupt ones are skipped and reported).
    /// A checkpoint saved under another config (copied from another run) is refused unless
    /// `allowConfigChange`; then it is loaded and re-saved under this config, so the next plain
    /// resume of this directory finds a checkpoint of its own.
    public init(session: TrainingSession, runDirectory: String, resume: Bool, progress: ProgressReporter,
                allowConfigChange: Bool = false) throws {
        self.session = session
        self.runDirectory = runDirectory
        self.progress = progress
        self.allowConfigChange = allowConfigChange
        try FS.createDirectory(runDirectory)
        lock = try RunLock(runDirectory: runDirectory)
        store = try CheckpointStore(runDirectory: runDirectory, keepLast: session.config.train.keepCheckpoints)
        state = RunState(step: 0, loader: session.trainLoader.position)
        var foreign = false
        if resume, let found = try store.newestValid() {
            for s in found.skipped {
                progress.warning("warning: checkpoint \(s.path) is not usable (\(s.reason)); falling back to an older one")
            }
            foreign = try restore(from: found.path)
            resumedFrom = found.path
            if let fixed = try store.reconcileBest(withStep: state.best?.step) { progress.warning("warning: \(fixed)") }
        }
        startStep = state.step
        let config = session.config
        try FS.writeAtomically(config.resolvedText, to: path("config.toml"))
        try FS.writeAtomically(session.plan.decayAudit(), to: path("decay_audit.txt"))
        log = try MetricsLog(directory: runDirectory, penaltyNames: session.engine.penalties().map(\.name),
                             metricNames: passMetricNames, keepThrough: resume ? state.step : nil,
                             tensorboard: config.train.tensorboard)
        for w in log.warnings { progress.warning(w) }
        if foreign { try saveCheckpoint(isBest: false) }
    }

    func path(_ name: String) -> String { (runDirectory as NSString).appendingPathComponent(name) }

    var passMetricNames: [String] {
        session.plan.groups.flatMap { g in g.regularizers.compactMap { r in
            r.plugin.metricName.map { "\(r.plugin.name).\($0)" } } }.uniqued()
    }

    /// Where the run resumed from, if it did.
    public var resumedCheckpoint: String? { resumedFrom }

    // MARK: the loop

    /// Trains to the end, or until a stop signal or non-finite values; returns the summary
    /// also written to `summary.json`. `stopAfter` stops as a signal would once that many
    /// steps are done (checkpoint, status "preempted"): how tests cut a run at an exact step.
    @discardableResult
    public func run(stopAfter: Int? = nil) throws -> RunSummary {
        // The whole loop, not only the session's steps: penalties and weight statistics read
        // the same (possibly subnormal) parameters.
        try session.floatingPointMode.run { try loop(stopAfter: stopAfter) }
    }

    private func loop(stopAfter: Int?) throws -> RunSummary {
        let s = session
        let policy = s.config.train.nanPolicy
        let cadence = s.config.train
        var lastSaved = resumedFrom != nil ? state.step : -1
        if let r = resumedFrom { progress.line("resuming \(runDirectory) at step \(state.step) from \(r)") }
        // Wall time adds up across resumes: each segment is folded into `state.elapsed` before
        // it is recorded or saved.
        var clock = Date()
        func lap() {
            state.elapsed += Date().timeIntervalSince(clock)
            clock = Date()
        }
        var lastMetrics: [String: Int64] = [:]

        while state.step < s.totalSteps {
            if let sig = StopSignals.pending ?? (state.step == stopAfter ? "stop after step \(state.step)" : nil) {
                lap()
                if lastSaved != state.step { try saveCheckpoint(isBest: false) }
                progress.line("\(sig): stopped at step \(state.step) after saving a checkpoint; resume with `decoupled resume \(runDirectory)`")
                return try finish(.preempted, reason: "\(sig) at step \(state.step)")
            }
            let t0 = DispatchTime.now().uptimeNanoseconds
            if state.skip.contains(state.step) {
                try s.skipBatch()
                state.step = s.step
                continue
            }
            let outcome = try s.trainStep(checkGradients: policy == .skipStep)
            var trained = true
            if outcome.nonFinite {
                let what = describeNonFinite(outcome)
                switch policy {
                case .skipStep where !outcome.parametersDamaged:
                    // Skipped, but the step still goes through the evaluation and checkpoint
                    // cadence below: a run whose last steps are skipped still ends evaluated
                    // and saved at its final step.
                    let skipped = (state.skippedSteps ?? 0) + 1
                    state.skippedSteps = skipped
                    state.step = s.step
                    let bound = maxSkippedSteps
                    progress.warning("warning: step \(state.step): \(what); step skipped (nan_policy = \"skip_step\", \(skipped) skipped so far, at most \(bound) allowed by train.max_skipped_steps)")
                    if skipped > bound {
                        lap()
                        try logFinalRecord()
                        if nonFiniteTensors().isEmpty { try saveCheckpoint(isBest: false) }
                        let reason = "\(skipped) steps skipped for non-finite values, more than train.max_skipped_steps = \(bound) (last: step \(state.step): \(what))"
                        progress.warning("error: \(reason); stopping as diverged")
                        return try finish(.diverged, reason: reason)
                    }
                    trained = false
                case .rollback where state.rollbacks < 5:
                    guard let found = try store.newestValid() else { fallthrough }
                    let failed = state.step
                    var skip = state.skip + [failed]
                    let rollbacks = state.rollbacks + 1
                    try restore(from: found.path)
                    skip = Array(Set(skip + state.skip)).sorted()
                    state.skip = skip
                    state.rollbacks = rollbacks
                    progress.warning("warning: step \(failed + 1): \(what); rolled back to step \(state.step) (\(found.path)), the batch of step \(failed + 1) will be skipped")
                    continue
                default:
                    lap()
                    progress.warning("error: step \(state.step + 1): \(what); stopping (nan_policy = \"\(policy.rawValue)\"), \(newestCheckpointPhrase)")
                    return try finish(.diverged, reason: "step \(state.step + 1): \(what)")
                }
            }
            state.step = s.step
            let r = outcome.result
            if trained {
                state.lossSum += r.loss * Double(r.count)
                state.correct += r.correct
                state.predictions += r.predictions
                state.samples += r.count
                state.trainedSamples += r.count
                state.steps += 1
                state.stepSeconds += Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
            }
            if let m = outcome.report?.passMetrics { lastMetrics = m }

            let step = state.step
            let epochEnd = step % s.stepsPerEpoch == 0
            let evaluate = step == s.totalSteps || (epochEnd && (step / s.stepsPerEpoch) % cadence.evalEvery == 0)
            let logTrain = cadence.logEvery > 0 && step % cadence.logEvery == 0 && !followsEvaluationClosely(step)
            var newBest = false
            if evaluate || logTrain {
                lap()
                var record = try makeRecord(evaluate: evaluate, report: outcome.report, passMetrics: lastMetrics)
                record.skippedSteps = state.skippedSteps ?? 0
                try log.append(record)
                if evaluate {
                    newBest = isBetter(record, than: state.best)
                    if newBest { state.best = record }
                    progress.line(ProgressReporter.describe(record))
                }
            }
            progress.update(step: step, total: s.totalSteps, stepsPerEpoch: s.stepsPerEpoch, loss: trained ? r.loss : nil)
            if newBest || step == s.totalSteps || (cadence.checkpointEvery > 0 && step % cadence.checkpointEvery == 0) {
                lap()
                // Non-finite parameters that no count caught (a plugin pass, an overflow to
                // ±Inf the gradient check cannot see) end the run here, before they are saved.
                let bad = nonFiniteTensors()
                if !bad.isEmpty {
                    let what = "\(bad.joined(separator: ", ")) hold NaN/Inf"
                    progress.warning("error: step \(step): \(what); stopping, \(newestCheckpointPhrase)")
                    return try finish(.diverged, reason: "step \(step): \(what)")
                }
                try saveCheckpoint(isBest: newBest)
                lastSaved = step
            }
        }
        lap()
        return try finish(.completed, reason: nil)
    }

    /// Whether a train-only record at `step` would come less than half of `train.log_every`
    /// steps after an evaluation record. Each record averages the training batches since the
    /// previous record, so such a record would cover a handful of batches (one, when
    /// log_every steps fall just after an epoch end) and show noise like train_acc 1.0; it is
    /// left out, and its batches go into the next record.
    func followsEvaluationClosely(_ step: Int) -> Bool {
        let every = session.stepsPerEpoch * session.config.train.evalEvery
        let lastEvaluation = (step - 1) / every * every
        return lastEvaluation > 0 && step - lastEvaluation < max(1, session.config.train.logEvery / 2)
    }

    /// `train.max_skipped_steps`, or its default: 1% of the run's steps, at least 10.
    var maxSkippedSteps: Int { session.config.train.maxSkippedSteps ?? max(10, session.totalSteps / 100) }

    /// Names the tensors holding NaN or ±Inf (empty when all parameters are finite).
    func nonFiniteTensors() -> [String] {
        let a = session.arena
        return a.entries.filter { e in !a.view(a.params, e).allSatisfy(\.isFinite) }.map(\.spec.name)
    }

    /// What a divergence message says of the checkpoints: the newest one stays, or none exists.
    var newestCheckpointPhrase: String {
        store.newestCheckpointName().map { "the last checkpoint (\($0)) is left as the newest" } ?? "no checkpoint was saved before it"
    }

    /// NaN and ±Inf values in one of the arena's buffers (parameters or gradients).
    func nonFiniteCount(_ buffer: AlignedBuffer) -> Int {
        let a = session.arena
        return a.entries.reduce(0) { n, e in n + a.view(buffer, e).reduce(0) { $0 + ($1.isFinite ? 0 : 1) } }
    }

    /// What went non-finite in a step, counted from the values themselves (the kernel's count
    /// covers gradients only, and is absent when the update was not applied).
    func describeNonFinite(_ outcome: TrainingSession.StepOutcome) -> String {
        let loss = outcome.result.loss
        if !loss.isFinite {
            let bad = session.nonFiniteFeaturesInLastBatch
            return "loss \(loss)" + (bad > 0 ? " (the batch holds \(bad) NaN/Inf feature value(s): the data file has non-finite features, see `decoupled data inspect \(session.config.data.resolvedFile)`)" : "")
        }
        var parts: [String] = []
        let grads = nonFiniteCount(session.arena.grads)
        if grads > 0 { parts.append("\(grads) non-finite gradient value(s)") }
        let params = nonFiniteCount(session.arena.params)
        if params > 0 { parts.append("\(params) non-finite parameter value(s) in \(nonFiniteTensors().joined(separator: ", "))") }
        return parts.isEmpty ? "the update's statistics went non-finite (parameter norm overflow)" : parts.joined(separator: " and ")
    }

    /// The last evaluation record, unless the step's record is already logged: a run that ends
    /// early (diverged on skipped steps) still reports its final test metrics.
    func logFinalRecord() throws {
        if (try MetricRecord.read(log.jsonlPath)).last?.step == state.step { return }
        var record = try makeRecord(evaluate: true, report: nil, passMetrics: [:])
        record.skippedSteps = state.skippedSteps ?? 0
        try log.append(record)
    }

    /// A metrics record from the sums since the previous one; resets the sums.
    func makeRecord(evaluate: Bool, report: UpdateEngine.StepReport?, passMetrics: [String: Int64]) throws -> MetricRecord {
        let s = session
        let penalties = s.engine.penalties()
        let penalty = penalties.reduce(0) { $0 + $1.value }
        let (norm, zeros) = s.weightStatistics()
        let ctx = s.engine.context(group: 0, afterSteps: max(state.step - 1, 0))
        let dataLoss = state.samples > 0 ? state.lossSum / Double(state.samples) : nil
        var record = MetricRecord(
            step: state.step, epoch: Double(state.step) / Double(s.stepsPerEpoch), lr: ctx.lr, scheduleMultiplier: ctx.eta,
            dataLoss: dataLoss, penalty: penalty, penalties: Dictionary(penalties.map { ($0.name, $0.value) }) { a, _ in a },
            totalLoss: dataLoss.map { $0 + penalty },
            trainAcc: state.predictions > 0 ? Double(state.correct) / Double(state.predictions) : nil,
            weightNorm: norm, zeroFraction: Double(zeros) / Double(s.arena.parameterCount),
            stepMs: state.steps > 0 ? state.stepSeconds / Double(state.steps) * 1000 : nil,
            elapsedS: state.elapsed, metrics: passMetrics.mapValues(Double.init))
        if evaluate {
            if let validation = try s.evaluateValidation() {
                record.valLoss = validation.loss
                record.valAcc = validation.accuracy
            }
            let test = try s.evaluateTest()
            record.testLoss = test.loss
            record.testAcc = test.accuracy
        }
        state.lossSum = 0
        state.correct = 0
        state.predictions = 0
        state.samples = 0
        state.steps = 0
        state.stepSeconds = 0
        return record
    }

    /// Whether `r` is a better evaluation than `best`. With a validation split the choice is
    /// made on validation only (accuracy, else loss), so "best" never peeks at the test split;
    /// without one it falls back to the test split, as documented in docs/run-directory.md.
    func isBetter(_ r: MetricRecord, than best: MetricRecord?) -> Bool {
        let selected = r.valLoss != nil ? (r.valAcc, r.valLoss) : (r.testAcc, r.testLoss)
        guard let best else { return selected.0 != nil || selected.1?.isFinite == true }
        let previous = best.valLoss != nil ? (best.valAcc, best.valLoss) : (best.testAcc, best.testLoss)
        if let a = selected.0, let b = previous.0 { return a > b }
        if let a = selected.1, let b = previous.1 { return a < b }
        return false
    }

    // MARK: checkpoints

    func saveCheckpoint(isBest: Bool) throws {
        let s = session
        // The last line of defence of "never save non-finite parameters": a plugin pass could
        // produce them after the kernel's own count.
        if let bad = nonFiniteTensors().first {
            throw TrainingError("step \(state.step): tensor \(bad) holds NaN/Inf; not saving it as a checkpoint")
        }
        state.loader = s.trainLoader.position
        state.configHash = fnv1a64Hex(s.config.resolvedText)
        state.model = s.model.state
        let meta = CheckpointMeta(step: state.step, epoch: state.step / s.stepsPerEpoch, config: s.config.resolvedText,
                                  plugins: s.plan.pluginVersions, runState: try JSONEncoder().encode(state))
        try store.save(arena: s.arena, slots: s.stateSlots, meta: meta, isBest: isBest)
    }

    /// Loads a checkpoint of this run. One saved under another config (another run's, or this
    /// run's before `--allow-config-change`) is refused, naming the file and the differing keys,
    /// unless changes are allowed; returns whether it was such a checkpoint.
    @discardableResult
    func restore(from checkpoint: String) throws -> Bool {
        let s = session
        let meta = try store.load(checkpoint, into: s.arena, slots: s.stateSlots)
        let differences = meta.config == s.config.resolvedText ? []
            : try RunLauncher.differences(old: meta.config, oldName: "\(checkpoint):/meta/config", new: s.config.resolvedText)
        if !differences.isEmpty {
            let list = differences.map { "  \($0)" }.joined(separator: "\n")
            guard allowConfigChange else {
                throw TrainingError("checkpoint \(checkpoint) was saved by a run with another config (copied from another run?); refusing to resume from it. Its config differs in:\n\(list)\nmove it out of \(store.directory), or rerun with --allow-config-change to continue from it under the current config")
            }
            progress.warning("warning: checkpoint \(checkpoint) was saved under another config; continuing from it under the current one (--allow-config-change):\n\(list)")
        }
        let restored: RunState
        do { restored = try JSONDecoder().decode(RunState.self, from: meta.runState) } catch {
            throw TrainingError("\(checkpoint): /meta/run_state is not a run state this version understands: \(error)")
        }
        do { try s.model.restore(restored.model) } catch {
            throw TrainingError("\(checkpoint): /meta/run_state: \(error)")
        }
        try s.trainLoader.restore(restored.loader)
        s.engine.restore(step: restored.step)
        state = restored
        return !differences.isEmpty
    }

    // MARK: summary

    func finish(_ status: RunStatus, reason: String?) throws -> RunSummary {
        progress.endBar()
        let s = session
        var status = status, reason = reason
        // A run is never reported "completed" with parameters that are not numbers.
        let bad = nonFiniteTensors()
        if status == .completed && !bad.isEmpty {
            status = .diverged
            reason = "the final parameters hold NaN/Inf (\(bad.joined(separator: ", ")))"
            progress.warning("error: \(reason!)")
        }
        let records = try MetricRecord.read(log.jsonlPath)
        let summary = RunSummary(
            name: s.config.name, status: status, reason: reason, step: state.step,
            epoch: Double(state.step) / Double(s.stepsPerEpoch), stepsTotal: s.totalSteps,
            final: records.last(where: \.isEvaluation), best: state.best, wallS: state.elapsed,
            trainSamplesPerS: state.elapsed > 0 ? Double(state.trainedSamples) / state.elapsed : 0,
            kernel: s.engine.kernels.name, threads: s.threads,
            configHash: fnv1a64Hex(s.config.resolvedText), skippedSteps: state.skippedSteps ?? 0)
        try summary.write(to: path(RunSummary.fileName))
        // The run directory is free for the next writer (a resume) as soon as the run ends.
        lock.release()
        return summary
    }
}

extension Array where Element: Hashable {
    func uniqued() -> [Element] {
        var seen = Set<Element>()
        return filter { seen.insert($0).inserted }
    }
}

/// FNV-1a 64-bit hash of the text's UTF-8 bytes as 16 hex digits: a stable identifier for
/// configs (run ids, summaries); collisions are not a security concern here.
public func fnv1a64Hex(_ text: String) -> String {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in text.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
    let hex = String(h, radix: 16)
    return String(repeating: "0", count: 16 - hex.count) + hex
}
