import DecoupledCore
import DecoupledTraining
import Foundation
import Testing

let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

/// A small but real run on the shipped Fashion-MNIST subset.
func smallConfig(_ extra: String = "", epochs: Int = 1, regularizer: String = "") throws -> ExperimentConfig {
    let text = """
    name = "small"
    seed = 7
    [data]
    file = "\(repositoryRoot)/datasets/fashion-mnist-small.h5"
    batch_size = 128
    [model]
    kind = "mlp"
    hidden = [32]
    [optimizer]
    name = "adamw"
    lr = 1e-3
    weight_decay = 1e-2
    \(regularizer)
    [schedule]
    name = "cosine"
    t0 = \(epochs)
    [train]
    epochs = \(epochs)
    \(extra)
    """
    return try ExperimentConfig.parse(text, file: "small.toml")
}

/// A fresh directory per test, removed afterwards.
final class Scratch {
    let path = NSTemporaryDirectory() + "decoupled-training-test-" + UUID().uuidString
    init() { try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }
}

/// A run's metrics records with the wall-clock fields cleared: timings differ between runs by
/// nature, everything else must not.
func recordsWithoutTimings(_ metricsPath: String) throws -> [MetricRecord] {
    try MetricRecord.read(metricsPath).map { r in
        var r = r
        r.stepMs = nil
        r.elapsedS = 0
        return r
    }
}

func parameterBits(_ s: TrainingSession) -> [UInt32] {
    s.arena.entries.flatMap { e in s.arena.view(s.arena.params, e).map(\.bitPattern) }
}

@Suite struct TrainingTests {
    /// Runs to the end in a fresh run directory and returns the trainer.
    func train(_ config: ExperimentConfig, threads: Int, kernels: KernelPath = .best) throws -> (Trainer, RunSummary, Scratch) {
        let dir = Scratch()
        let session = try TrainingSession(config: config, registry: .builtIn(), kernels: kernels, threads: threads)
        let trainer = try Trainer(session: session, runDirectory: dir.path, resume: false, progress: ProgressReporter(quiet: true))
        return (trainer, try trainer.run(), dir)
    }

    @Test func oneEpochIsBitIdenticalAcrossRunsAndThreadCounts() throws {
        let config = try smallConfig()
        let (a, sa, da) = try train(config, threads: 1)
        let (b, sb, db) = try train(config, threads: 2)
        let (c, _, _) = try train(config, threads: 2)
        #expect(parameterBits(a.session) == parameterBits(b.session))
        #expect(parameterBits(b.session) == parameterBits(c.session))
        let ma = try MetricRecord.read(da.file("metrics.jsonl")), mb = try MetricRecord.read(db.file("metrics.jsonl"))
        #expect(ma.map(\.dataLoss) == mb.map(\.dataLoss) && ma.map(\.testAcc) == mb.map(\.testAcc))
        #expect(sa.status == .completed && sb.status == .completed && sa.final?.testLoss == sb.final?.testLoss)
        // One epoch of a 32-unit MLP learns something real.
        #expect((sa.final?.testAcc ?? 0) > 0.7, "\(String(describing: sa.final))")
    }

    @Test func everyKernelPathTrainsTheSame() throws {
        var reference: [UInt32]?
        for path in KernelPath.runnable {
            let session = try TrainingSession(config: try smallConfig(), registry: .builtIn(), kernels: path, threads: 2)
            for _ in 0..<10 { _ = try session.trainStep() }
            let bits = parameterBits(session)
            if let r = reference { #expect(bits == r, "\(path.name)") } else { reference = bits }
        }
    }

    @Test func lossSeparatesDataLossAndEachPenalty() throws {
        let config = try smallConfig(regularizer: "[[regularizers]]\nname = \"l2\"\nlambda = 1e-3\n[[regularizers]]\nname = \"l1\"\nlambda = 1e-5")
        let (trainer, summary, dir) = try train(config, threads: 2)
        let record = try #require(summary.final)
        let penalties = try #require(record.penalties), penalty = try #require(record.penalty)
        #expect(penalties.keys.sorted() == ["default/l1", "default/l2"])
        // Biases are not regularized by default: the penalties cover the weights only.
        var sq = 0.0, abs1 = 0.0
        for e in trainer.session.arena.entries where e.spec.role == .weight {
            for x in trainer.session.arena.view(trainer.session.arena.params, e) { sq += Double(x) * Double(x); abs1 += abs(Double(x)) }
        }
        #expect(abs(penalties["default/l2"]! - 0.5e-3 * sq) <= 1e-9 * sq)
        #expect(abs(penalties["default/l1"]! - 1e-5 * abs1) <= 1e-9 * abs1)
        #expect(penalty == penalties.values.reduce(0, +))
        #expect(record.totalLoss == record.dataLoss! + penalty)
        let header = try String(contentsOfFile: dir.file("metrics.csv"), encoding: .utf8).split(separator: "\n")[0]
        #expect(header.contains("penalty.default/l1") && header.contains("penalty.default/l2") && header.contains("data_loss"))
    }

    @Test func runDirectoryHoldsWhatTheDocSays() throws {
        let config = try smallConfig("log_every = 20", epochs: 2)
        let (_, summary, dir) = try train(config, threads: 2)
        for f in ["config.toml", "metrics.jsonl", "metrics.csv", "summary.json", "decay_audit.txt"] {
            #expect(FileManager.default.fileExists(atPath: dir.file(f)), "\(f)")
        }
        let records = try MetricRecord.read(dir.file("metrics.jsonl"))
        // 79 steps per epoch: train-only records at 20, 40, 60, 100, 120, 140; evaluations at 79
        // and 158. None at 80: one step after the evaluation, it would average a single batch.
        #expect(records.map(\.step) == [20, 40, 60, 79, 100, 120, 140, 158])
        #expect(records.filter(\.isEvaluation).map(\.step) == [79, 158])
        let csv = try String(contentsOfFile: dir.file("metrics.csv"), encoding: .utf8).split(separator: "\n")
        #expect(csv.count == records.count + 1)
        #expect(summary.step == 158 && summary.stepsTotal == 158 && summary.epoch == 2)
        let stored = try ExperimentConfig.load(path: dir.file("config.toml"))
        #expect(stored.resolvedText == config.resolvedText)
    }

    /// With `data.validation` the trainer evaluates the held-out rows, trains on the subset
    /// only, and picks its best checkpoint on validation, never on test.
    @Test func validationSplitIsReportedAndSelectsTheBest() throws {
        let config = try smallConfig("eval_every = 1", epochs: 4)
        var text = config.resolvedText
        text = text.replacingOccurrences(of: "[data]\n", with: "[data]\ntrain_subset = 600\nvalidation = 1000\n")
        let withValidation = try ExperimentConfig.parse(text, file: "small.toml")
        let (trainer, summary, dir) = try train(withValidation, threads: 2)
        #expect(trainer.session.trainingSampleCount == 600 && trainer.session.stepsPerEpoch == 5)
        let evaluations = try MetricRecord.read(dir.file("metrics.jsonl")).filter(\.isEvaluation)
        #expect(evaluations.count == 4 && evaluations.allSatisfy { $0.valAcc != nil && $0.valLoss != nil && $0.testAcc != nil })
        let bestOnValidation = evaluations.max { ($0.valAcc!, -$0.step) < ($1.valAcc!, -$1.step) }!
        #expect(summary.best?.step == bestOnValidation.step)
        // Validation is 1000 of the 10 000 training rows: its accuracy is computed over them.
        let v = try #require(try trainer.session.evaluateValidation())
        #expect(v.count == 1000 && v.accuracy == summary.final?.valAcc)
        let csvHeader = try String(contentsOfFile: dir.file("metrics.csv"), encoding: .utf8).split(separator: "\n")[0]
        #expect(csvHeader.contains("val_loss,val_acc"))
        // Without the keys: the whole training split and no validation.
        let plain = try TrainingSession(config: config, registry: .builtIn(), kernels: .best, threads: 1)
        let noValidation = try plain.evaluateValidation()
        #expect(plain.trainingSampleCount == 10_000 && noValidation == nil)
    }
}
