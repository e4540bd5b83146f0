import DecoupledCheckpoint
import DecoupledCore
import DecoupledTraining
import Foundation
import Testing

/// The registry with the external plugins built by `make plugins` (plugins/*/build).
func registryWithPlugins() throws -> PluginRegistry {
    let registry = PluginRegistry.builtIn()
    for path in ExternalPluginLoader.repositoryLibraries(root: repositoryRoot) { try ExternalPluginLoader.load(path, into: registry) }
    return registry
}

/// Caffe's resume test, for every optimizer family: 2N steps in one go vs N steps, a
/// checkpoint, a new session and trainer restored from it, and N more — bit-identical
/// parameters, optimizer state and metrics.
@Suite struct ResumeTests {
    /// A small run: 20 steps per epoch (10 000 samples, batch 500), 2 epochs.
    static func config(_ optimization: String) throws -> ExperimentConfig {
        try ExperimentConfig.parse("""
        name = "resume"
        seed = 3
        \(optimization)
        [data]
        file = "\(repositoryRoot)/datasets/fashion-mnist-small.h5"
        batch_size = 500
        [model]
        kind = "mlp"
        hidden = [8]
        [train]
        epochs = 2
        log_every = 7
        """, file: "resume.toml")
    }

    static let cases: [(String, String)] = [
        ("adam+l2", """
         [optimizer]
         name = "adam"
         lr = 1e-2
         [[regularizers]]
         name = "l2"
         lambda = 1e-3
         [schedule]
         name = "cosine_restarts"
         unit = "step"
         t0 = 6
         t_mult = 2
         """),
        ("adamw", """
         [optimizer]
         name = "adamw"
         lr = 1e-2
         weight_decay = 0.1
         [schedule]
         name = "cosine_restarts"
         t0 = 0.5
         t_mult = 2
         """),
        ("sgdw", """
         convention = "paper"
         [optimizer]
         name = "sgdw"
         lr = 0.1
         momentum = 0.9
         nesterov = true
         weight_decay = 1e-3
         [schedule]
         name = "cosine_restarts"
         t0 = 0.5
         """),
        ("adamw+l1_decoupled", """
         [optimizer]
         name = "adamw"
         lr = 1e-2
         [[regularizers]]
         name = "l1_decoupled"
         lambda = 0.5
         [schedule]
         name = "cosine"
         t0 = 2
         """),
        // Tensor phases: global clipping before, group lasso's proximal step and the external
        // max-norm constraint (ABI v2 tensor hook) after the element-wise pass.
        ("adamw+clip+group_lasso+max_norm", """
         [optimizer]
         name = "adamw"
         lr = 1e-2
         [[regularizers]]
         name = "clip_grad_norm"
         max_norm = 0.5
         [[regularizers]]
         name = "group_lasso"
         lambda = 0.05
         [[regularizers]]
         name = "max_norm"
         max_norm = 1
         """),
        // A stateful external regularizer: its anchor slot must be checkpointed and restored.
        ("sgd+anchor_decay", """
         [optimizer]
         name = "sgd"
         lr = 0.1
         momentum = 0.9
         [[regularizers]]
         name = "anchor_decay"
         lambda = 0.5
         """),
    ]

    struct Snapshot: Equatable {
        var params: [UInt32]
        var slots: [String: [UInt32]]
        var records: [MetricRecord]
    }

    static func snapshot(_ t: Trainer) throws -> Snapshot {
        let a = t.session.arena
        var slots: [String: [UInt32]] = [:]
        for s in t.session.stateSlots {
            slots[s] = a.entries.flatMap { e in a.stateView(s, e).map(\.bitPattern) }
        }
        let records = try recordsWithoutTimings((t.runDirectory as NSString).appendingPathComponent("metrics.jsonl"))
        return Snapshot(params: parameterBits(t.session), slots: slots, records: records)
    }

    static func trainer(_ config: ExperimentConfig, _ dir: String, threads: Int, resume: Bool) throws -> Trainer {
        let session = try TrainingSession(config: config, registry: try registryWithPlugins(), kernels: .best, threads: threads)
        return try Trainer(session: session, runDirectory: dir, resume: resume, progress: ProgressReporter(quiet: true))
    }

    @Test(arguments: cases.map(\.0), [13, 20])
    func resumedRunEqualsUninterruptedRun(_ name: String, cut: Int) throws {
        let config = try Self.config(Self.cases.first { $0.0 == name }!.1)
        let whole = Scratch(), split = Scratch()
        let uninterrupted = try Self.trainer(config, whole.path, threads: 2, resume: false)
        #expect(try uninterrupted.run().status == .completed)

        let first = try Self.trainer(config, split.path, threads: 2, resume: false)
        let stopped = try first.run(stopAfter: cut)
        #expect(stopped.status == .preempted && stopped.step == cut)
        // A new session and trainer (as a new process would build them), with another thread count.
        let second = try Self.trainer(config, split.path, threads: 1, resume: true)
        #expect(second.resumedCheckpoint != nil)
        #expect(second.session.step == cut)
        #expect(try second.run().status == .completed)

        let a = try Self.snapshot(uninterrupted), b = try Self.snapshot(second)
        #expect(a.params == b.params, "parameters differ")
        #expect(a.slots == b.slots, "optimizer state differs")
        #expect(a.records == b.records, "metrics differ")
        // Evaluations at 20 and 40; train-only records every 7 steps but not at 21, one step
        // after the evaluation at 20 (it would average a single batch).
        #expect(a.records.map(\.step) == [7, 14, 20, 28, 35, 40])
        if name.contains("l1") { #expect(b.records.last!.zeroFraction! > 0) }
        if name.contains("max_norm") {
            // The tensor passes worked: rows were constrained, zeroed, gradients clipped.
            let metrics = b.records.compactMap(\.metrics).reduce(into: [String: Double]()) { $0.merge($1) { x, y in x + y } }
            for key in ["max_norm.clipped_rows", "clip_grad_norm.clipped_tensors"] { #expect(metrics[key, default: 0] > 0, "\(key): \(metrics)") }
        }
        if name.contains("anchor") { #expect(b.slots.keys.contains("anchor_decay.anchor"), "the regularizer's state is saved") }
    }

    @Test func corruptNewestCheckpointFallsBackToThePreviousOne() throws {
        let config = try Self.config(Self.cases[1].1)
        let whole = Scratch(), split = Scratch()
        let uninterrupted = try Self.trainer(config, whole.path, threads: 2, resume: false)
        _ = try uninterrupted.run()
        let first = try Self.trainer(config, split.path, threads: 2, resume: false)
        _ = try first.run(stopAfter: 20)  // epoch 1 ends at step 20: an evaluation, a best checkpoint, then the stop
        let second = try Self.trainer(config, split.path, threads: 2, resume: true)
        _ = try second.run(stopAfter: 27)
        let store = try CheckpointStore(runDirectory: split.path, readOnly: true)
        let newest = try #require(store.list().first)
        #expect(newest.step == 27)
        // Garbage over the middle of the newest checkpoint.
        let handle = try #require(FileHandle(forWritingAtPath: newest.path))
        try handle.seek(toOffset: UInt64(newest.sizeBytes / 2))
        try handle.write(contentsOf: Data(repeating: 0xA5, count: 4096))
        try handle.close()
        let third = try Self.trainer(config, split.path, threads: 2, resume: true)
        #expect(third.session.step == 20)
        _ = try third.run()
        #expect(try Self.snapshot(third) == Self.snapshot(uninterrupted))
    }

    /// A kill between renaming a new best checkpoint into place and rewriting best.txt
    /// leaves the marker on an older (or since deleted) file, and retention would then keep
    /// the wrong one. Resume puts the marker back on the run state's best evaluation.
    @Test(arguments: [7, 27])
    func resumeRepairsAStaleBestMarker(markedStep: Int) throws {
        let config = try Self.config(Self.cases[1].1)
        let dir = Scratch()
        _ = try Self.trainer(config, dir.path, threads: 2, resume: false).run(stopAfter: 27)  // best at step 20
        let marker = dir.file("checkpoints/" + CheckpointFormat.bestMarkerName)
        let stale = CheckpointFormat.fileName(step: markedStep)  // 7: no such file; 27: a checkpoint, not the best
        try (stale + "\n").write(toFile: marker, atomically: true, encoding: .utf8)
        #expect(FileManager.default.fileExists(atPath: dir.file("checkpoints/" + stale)) == (markedStep == 27))
        let resumed = try Self.trainer(config, dir.path, threads: 2, resume: true)
        #expect(resumed.session.step == 27)
        let store = try CheckpointStore(runDirectory: dir.path, readOnly: true)
        #expect(store.bestCheckpoint == dir.file("checkpoints/" + CheckpointFormat.fileName(step: 20)))
        #expect(try resumed.run().status == .completed)
        // Whatever retention removed since, the marker names a checkpoint that exists.
        #expect(store.bestCheckpoint != nil)
    }
}
