import DecoupledCheckpoint
import DecoupledCore
import DecoupledHDF5
import Foundation

/// Runs one experiment into its run directory (docs/run-directory.md): the training loop,
/// periodic evaluation, metrics, checkpoints, resume, signals and the NaN policy.
public final class Trainer {
    /// How a run ended.
    public enum Status: String, Codable {
        case completed, preempted, diverged, failed
    }

    /// What the run directory's `summary.json` holds.
    public struct Summary: Codable {
        public var name: String
        public var status: Status
        public var reason: String?
        public var step: Int
        public var epoch: Double
        public var steps_total: Int
        public var final: MetricRecord?
        public var best: MetricRecord?
        public var wall_s: Double
        public var train_samples_per_s: Double
        public var kernel: String
        public var threads: Int
        /// FNV-1a 64-bit of config.toml, hex (identifies the resolved config; not a security hash).
        public var config_hash: String
    }

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

    /// Prepares a run directory: a new run writes `config.toml` and `decay_audit.txt`; with
    /// `resume` the newest valid checkpoint is loaded (corrupt ones are skipped and reported).
    public init(session: TrainingSession, runDirectory: String, resume: Bool, progress: ProgressReporter) throws {
        self.session = session
        self.runDirectory = runDirectory
        self.progress = progress
        try FileManager.default.createDirectory(atPath: runDirectory, withIntermediateDirectories: true)
        lock = try RunLock(runDirectory: runDirectory)
        store = try CheckpointStore(runDirectory: runDirectory, keepLast: session.config.train.keepCheckpoints)
        state = RunState(step: 0, loader: session.trainLoader.position)
        if resume, let found = try store.newestValid() {
            for s in found.skipped {
                progress.line("warning: checkpoint \(s.path) is not usable (\(s.reason)); falling back to an older one")
            }
            try restore(from: found.path)
            resumedFrom = found.path
        }
        startStep = state.step
        let config = session.config
        try config.resolvedText.write(toFile: path("config.toml"), atomically: true, encoding: .utf8)
        try session.plan.decayAudit().write(toFile: path("decay_audit.txt"), atomically: true, encoding: .utf8)
        log = try MetricsLog(directory: runDirectory, penaltyNames: session.engine.penalties().map(\.name),
                             metricNames: passMetricNames, keepThrough: resume ? state.step : nil)
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
    public func run(stopAfter: Int? = nil) throws -> Summary {
        // The whole loop, not only the session's steps: penalties and weight statistics read
        // the same (possibly subnormal) parameters.
        try session.floatingPointMode.run { try loop(stopAfter: stopAfter) }
    }

    private func loop(stopAfter: Int?) throws -> Summary {
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
            if outcome.nonFinite {
                let what = outcome.result.loss.isFinite
                    ? "\(outcome.report?.stats.nonfinite_grads ?? 0) non-finite gradient(s) or parameters"
                    : "loss \(outcome.result.loss)"
                switch policy {
                case .skipStep where !outcome.parametersDamaged:
                    progress.line("warning: step \(state.step + 1): \(what); step skipped (nan_policy = \"skip_step\")")
                    state.step = s.step
                    continue
                case .rollback where state.rollbacks < 5:
                    guard let found = try store.newestValid() else { fallthrough }
                    let failed = state.step
                    var skip = state.skip + [failed]
                    let rollbacks = state.rollbacks + 1
                    try restore(from: found.path)
                    skip = Array(Set(skip + state.skip)).sorted()
                    state.skip = skip
                    state.rollbacks = rollbacks
                    progress.line("warning: step \(failed + 1): \(what); rolled back to step \(state.step) (\(found.path)), the batch of step \(failed + 1) will be skipped")
                    continue
                default:
                    lap()
                    progress.line("error: step \(state.step + 1): \(what); stopping (nan_policy = \"\(policy.rawValue)\"), the last checkpoint is left as the newest")
                    return try finish(.diverged, reason: "step \(state.step + 1): \(what)")
                }
            }
            state.step = s.step
            let r = outcome.result
            state.lossSum += r.loss * Double(r.count)
            state.correct += r.correct
            state.predictions += r.predictions
            state.samples += r.count
            state.trainedSamples += r.count
            state.steps += 1
            state.stepSeconds += Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
            if let m = outcome.report?.passMetrics { lastMetrics = m }

            let step = state.step
            let epochEnd = step % s.stepsPerEpoch == 0
            let evaluate = step == s.totalSteps || (epochEnd && (step / s.stepsPerEpoch) % cadence.evalEvery == 0)
            let logTrain = cadence.logEvery > 0 && step % cadence.logEvery == 0
            var newBest = false
            if evaluate || logTrain {
                lap()
                let record = try makeRecord(evaluate: evaluate, report: outcome.report, passMetrics: lastMetrics)
                try log.append(record)
                if evaluate {
                    newBest = isBetter(record, than: state.best)
                    if newBest { state.best = record }
                    progress.line(ProgressReporter.describe(record))
                }
            }
            progress.update(step: step, total: s.totalSteps, stepsPerEpoch: s.stepsPerEpoch,
                            elapsed: state.elapsed + Date().timeIntervalSince(clock), startStep: startStep,
                            loss: r.loss)
            if newBest || step == s.totalSteps || (cadence.checkpointEvery > 0 && step % cadence.checkpointEvery == 0) {
                lap()
                try saveCheckpoint(isBest: newBest)
                lastSaved = step
            }
        }
        lap()
        return try finish(.completed, reason: nil)
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
            step: state.step, epoch: Double(state.step) / Double(s.stepsPerEpoch), lr: ctx.lr, eta: ctx.eta,
            data_loss: dataLoss, penalty: penalty, penalties: Dictionary(penalties.map { ($0.name, $0.value) }) { a, _ in a },
            total_loss: dataLoss.map { $0 + penalty },
            train_acc: state.predictions > 0 ? Double(state.correct) / Double(state.predictions) : nil,
            test_loss: nil, test_acc: nil, weight_norm: norm,
            zero_fraction: Double(zeros) / Double(s.arena.parameterCount),
            step_ms: state.steps > 0 ? state.stepSeconds / Double(state.steps) * 1000 : nil,
            elapsed_s: state.elapsed, metrics: passMetrics.mapValues(Double.init))
        if evaluate {
            let test = try s.evaluateTest()
            record.test_loss = test.loss
            record.test_acc = test.accuracy
        }
        state.lossSum = 0
        state.correct = 0
        state.predictions = 0
        state.samples = 0
        state.steps = 0
        state.stepSeconds = 0
        return record
    }

    func isBetter(_ r: MetricRecord, than best: MetricRecord?) -> Bool {
        guard let best else { return r.test_acc != nil || r.test_loss?.isFinite == true }
        if let a = r.test_acc, let b = best.test_acc { return a > b }
        if let a = r.test_loss, let b = best.test_loss { return a < b }
        return false
    }

    // MARK: checkpoints

    func saveCheckpoint(isBest: Bool) throws {
        let s = session
        // The last line of defence of "never save non-finite parameters": a plugin pass could
        // produce them after the kernel's own count.
        if let bad = s.arena.entries.first(where: { e in !s.arena.view(s.arena.params, e).allSatisfy(\.isFinite) }) {
            throw TrainingError("step \(state.step): tensor \(bad.spec.name) holds NaN/Inf; not saving it as a checkpoint")
        }
        state.loader = s.trainLoader.position
        let meta = CheckpointMeta(step: state.step, epoch: state.step / s.stepsPerEpoch, config: s.config.resolvedText,
                                  plugins: s.plan.pluginVersions, runState: try JSONEncoder().encode(state))
        try store.save(arena: s.arena, slots: s.stateSlots, meta: meta, isBest: isBest)
    }

    func restore(from checkpoint: String) throws {
        let s = session
        let meta = try store.load(checkpoint, into: s.arena, slots: s.stateSlots)
        let restored: RunState
        do { restored = try JSONDecoder().decode(RunState.self, from: meta.runState) } catch {
            throw TrainingError("\(checkpoint): /meta/run_state is not a run state this version understands: \(error)")
        }
        try s.trainLoader.restore(restored.loader)
        s.engine.restore(step: restored.step)
        state = restored
    }

    // MARK: summary

    func finish(_ status: Status, reason: String?) throws -> Summary {
        let s = session
        let records = try MetricsLog.read(log.jsonlPath)
        let summary = Summary(
            name: s.config.name, status: status, reason: reason, step: state.step,
            epoch: Double(state.step) / Double(s.stepsPerEpoch), steps_total: s.totalSteps,
            final: records.last(where: \.isEvaluation), best: state.best, wall_s: state.elapsed,
            train_samples_per_s: state.elapsed > 0 ? Double(state.trainedSamples) / state.elapsed : 0,
            kernel: s.engine.kernels.name, threads: s.threads,
            config_hash: fnv1a64Hex(s.config.resolvedText))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        try encoder.encode(summary).write(to: URL(fileURLWithPath: path("summary.json")), options: .atomic)
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
