import DecoupledCheckpoint
import DecoupledCore
import DecoupledHDF5
import DecoupledTraining
import Foundation
import Testing

/// The `decoupled` executable built beside the test bundle (`swift build --build-tests`
/// builds both into the same products directory).
let decoupledBinary: String = {
    let dir = (Bundle.main.executablePath.map { ($0 as NSString).deletingLastPathComponent })
        ?? "\(repositoryRoot)/.build/debug"
    for candidate in [dir, (dir as NSString).deletingLastPathComponent, "\(repositoryRoot)/.build/debug"] {
        let p = (candidate as NSString).appendingPathComponent("decoupled")
        if FileManager.default.isExecutableFile(atPath: p) { return p }
    }
    return "\(repositoryRoot)/.build/debug/decoupled"
}()

/// Starts `decoupled` with output to files in `dir` (a pipe nobody reads could fill and block it).
func startDecoupled(_ args: [String], in dir: String, tag: String) throws -> Process {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: decoupledBinary)
    p.arguments = args
    p.currentDirectoryURL = URL(fileURLWithPath: repositoryRoot)
    FileManager.default.createFile(atPath: "\(dir)/\(tag).out", contents: nil)
    FileManager.default.createFile(atPath: "\(dir)/\(tag).err", contents: nil)
    p.standardOutput = FileHandle(forWritingAtPath: "\(dir)/\(tag).out")
    p.standardError = FileHandle(forWritingAtPath: "\(dir)/\(tag).err")
    p.standardInput = FileHandle.nullDevice
    try p.run()
    return p
}

func waitFor(_ p: Process, seconds: Double) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while p.isRunning && Date() < deadline { usleep(5_000) }
    return !p.isRunning
}

/// Runs `decoupled` to the end with output to files in `dir`; its exit status and what it
/// printed. A run that takes longer than `seconds` is a failed expectation and is terminated.
func runDecoupled(_ args: [String], in dir: String, tag: String, seconds: Double = 60) throws -> (status: Int32, out: String, err: String) {
    let p = try startDecoupled(args, in: dir, tag: tag)
    if !waitFor(p, seconds: seconds) {
        Issue.record("decoupled \(args.joined(separator: " ")) did not finish in \(seconds) s")
        p.terminate()
        p.waitUntilExit()
    }
    return (p.terminationStatus, try String(contentsOfFile: "\(dir)/\(tag).out", encoding: .utf8),
            try String(contentsOfFile: "\(dir)/\(tag).err", encoding: .utf8))
}

/// Real processes: kills at random moments, stop signals, the run lock. Each kill is followed
/// by a check that the newest checkpoint listed verifies; at the end the run equals the
/// uninterrupted one bit for bit.
@Suite(.serialized) struct ProcessTests {
    static let configText = """
    name = "kill"
    seed = 11
    [data]
    file = "\(repositoryRoot)/datasets/fashion-mnist-small.h5"
    batch_size = 500
    [model]
    kind = "mlp"
    hidden = [8]
    [optimizer]
    name = "adamw"
    lr = 1e-2
    [schedule]
    name = "cosine_restarts"
    t0 = 1
    [train]
    epochs = 12
    checkpoint_every = 2
    log_every = 5
    """

    func finalState(_ dir: String, config: ExperimentConfig) throws -> (params: [UInt32], slots: [UInt32], records: [MetricRecord]) {
        let session = try TrainingSession(config: config, registry: .builtIn(), kernels: .best, threads: 1)
        let store = try CheckpointStore(runDirectory: dir, readOnly: true)
        let newest = try #require(try store.newestValid())
        let meta = try store.load(newest.path, into: session.arena, slots: session.stateSlots)
        #expect(meta.step == session.totalSteps)
        let a = session.arena
        let slots = session.stateSlots.flatMap { s in a.entries.flatMap { e in a.stateView(s, e).map(\.bitPattern) } }
        let records = try recordsWithoutTimings("\(dir)/metrics.jsonl")
        return (parameterBits(session), slots, records)
    }

    @Test func killsSignalsAndTheLockNeverLoseTheRun() throws {
        #expect(FileManager.default.isExecutableFile(atPath: decoupledBinary), "build with `swift build --build-tests` first")
        let scratch = Scratch()
        let configPath = scratch.file("kill.toml")
        try Self.configText.write(toFile: configPath, atomically: true, encoding: .utf8)
        let config = try ExperimentConfig.load(path: configPath)
        let whole = scratch.file("whole"), killed = scratch.file("killed")

        let reference = try startDecoupled(["train", configPath, "--run-dir", whole, "--quiet"], in: scratch.path, tag: "whole")
        #expect(waitFor(reference, seconds: 120) && reference.terminationStatus == 0)

        // The lock: a second writer of a running run directory is refused within a second.
        let holder = try startDecoupled(["train", configPath, "--run-dir", killed, "--resume", "--quiet"], in: scratch.path, tag: "holder")
        while !FileManager.default.fileExists(atPath: "\(killed)/config.toml") && holder.isRunning { usleep(5_000) }
        let intruder = try startDecoupled(["train", configPath, "--run-dir", killed, "--resume", "--quiet"], in: scratch.path, tag: "intruder")
        let t0 = Date()
        #expect(waitFor(intruder, seconds: 5))
        #expect(Date().timeIntervalSince(t0) < 1.0 && intruder.terminationStatus == 1)
        let refusal = (try? String(contentsOfFile: scratch.file("intruder.err"), encoding: .utf8)) ?? ""
        #expect(refusal.contains("in use by process \(holder.processIdentifier)"), "\(refusal)")
        kill(holder.processIdentifier, SIGKILL)
        holder.waitUntilExit()

        // A stop signal: checkpoint, exit 75, resumable.
        let signalled = try startDecoupled(["train", configPath, "--run-dir", killed, "--resume", "--quiet"], in: scratch.path, tag: "usr1")
        usleep(400_000)
        #expect(signalled.isRunning, "the run should still be going")
        if signalled.isRunning {
            kill(signalled.processIdentifier, SIGUSR1)
            #expect(waitFor(signalled, seconds: 30))
            #expect(signalled.terminationStatus == StopSignals.preemptedExitCode)
            let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(killed)/summary.json"))) as? [String: Any]
            #expect(summary?["status"] as? String == "preempted")
            let store = try CheckpointStore(runDirectory: killed, readOnly: true)
            #expect(store.list().first?.step == summary?["step"] as? Int)
        }
        // Two SIGINTs: the second exits at once; the newest checkpoint stays valid.
        let interrupted = try startDecoupled(["train", configPath, "--run-dir", killed, "--resume", "--quiet"], in: scratch.path, tag: "int")
        usleep(400_000)
        #expect(interrupted.isRunning, "the run should still be going")
        if interrupted.isRunning {
            kill(interrupted.processIdentifier, SIGINT)
            kill(interrupted.processIdentifier, SIGINT)
            #expect(waitFor(interrupted, seconds: 30))
            #expect([StopSignals.preemptedExitCode, 130].contains(interrupted.terminationStatus))
            #expect(try CheckpointStore(runDirectory: killed, readOnly: true).list().first?.isValid != false)
        }

        // 50 kills at random moments (during steps, saves, metrics writes, start-up).
        var rng = SystemRandomNumberGenerator()
        var kills = 0, attempts = 0
        while kills < 50 && attempts < 80 {
            attempts += 1
            let p = try startDecoupled(["train", configPath, "--run-dir", killed, "--resume", "--quiet"], in: scratch.path, tag: "k")
            usleep(UInt32.random(in: 20_000...250_000, using: &rng))
            if !p.isRunning { break }  // finished on its own: nothing left to interrupt
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            kills += 1
            let store = try CheckpointStore(runDirectory: killed, readOnly: true)
            if let newest = store.list().first {
                #expect(newest.isValid, "after kill \(kills): \(newest.path) is \(String(describing: newest.problem))")
            }
        }
        #expect(kills >= 40, "only \(kills) kills landed before the run finished")

        let last = try startDecoupled(["resume", killed, "--quiet"], in: scratch.path, tag: "last")
        #expect(waitFor(last, seconds: 120) && last.terminationStatus == 0)
        let a = try finalState(whole, config: config), b = try finalState(killed, config: config)
        #expect(a.params == b.params, "parameters differ after \(kills) kills")
        #expect(a.slots == b.slots, "optimizer state differs")
        #expect(a.records == b.records, "metrics differ")
    }
}

/// `nan_policy` on data with a NaN sample: every batch that holds it has a NaN loss.
@Suite struct NaNPolicyTests {
    /// 400 training samples of 4 features (sample 150 is NaN), 100 test samples, 3 classes.
    static func poisonedData(_ path: String) throws {
        let w = try DatasetWriter(path: path, featureType: .float32, sampleShape: [4], counts: [.train: 400, .test: 100],
                                  storage: .contiguous)
        var rng = SystemRandomNumberGenerator()
        for (split, n) in [(DatasetSplit.train, 400), (.test, 100)] {
            var x: [Float] = [], y: [Int32] = []
            for i in 0..<n {
                let c = Int32(i % 3)
                for j in 0..<4 { x.append(Float(j == Int(c) ? 1 : 0) + Float.random(in: -0.3...0.3, using: &rng)) }
                y.append(c)
            }
            if split == .train { x[150 * 4 + 2] = .nan }
            try w.append(split, features: x, labels: y)
        }
        try w.finish(numClasses: 3, scale: 1, source: "test", license: "test")
    }

    /// Softmax regression with SGD on `poisonedData` at `dataFile`.
    static func config(dataFile: String, batchSize: Int, train: String) throws -> ExperimentConfig {
        try ExperimentConfig.parse("""
        [data]
        file = "\(dataFile)"
        batch_size = \(batchSize)
        [model]
        kind = "softmax"
        [optimizer]
        name = "sgd"
        lr = 0.1
        [train]
        \(train)
        """, file: "nan.toml")
    }

    func run(_ policy: String) throws -> (RunSummary, Trainer, Scratch) {
        let dir = Scratch()
        try Self.poisonedData(dir.file("poison.h5"))
        let config = try Self.config(dataFile: dir.file("poison.h5"), batchSize: 40,
                                     train: "epochs = 3\ncheckpoint_every = 4\nnan_policy = \"\(policy)\"")
        let session = try TrainingSession(config: config, registry: .builtIn(), kernels: .best, threads: 1)
        let trainer = try Trainer(session: session, runDirectory: dir.file("run"), resume: false, progress: ProgressReporter(quiet: true))
        return (try trainer.run(), trainer, dir)
    }

    func allFinite(_ t: Trainer) -> Bool {
        t.session.arena.entries.allSatisfy { e in t.session.arena.view(t.session.arena.params, e).allSatisfy(\.isFinite) }
    }

    @Test func stopEndsTheRunAndKeepsNonFiniteParametersOutOfCheckpoints() throws {
        let (summary, trainer, dir) = try run("stop")
        defer { withExtendedLifetime(dir) {} }
        #expect(summary.status == .diverged && summary.reason?.contains("loss nan") == true, "\(summary)")
        let store = try CheckpointStore(runDirectory: trainer.runDirectory, readOnly: true)
        let step = try #require(summary.step)
        for c in store.list() { #expect(c.step < step + 1 && c.isValid) }
        // Whatever was saved is finite: reload the newest and look.
        if let newest = try store.newestValid() {
            _ = try store.load(newest.path, into: trainer.session.arena, slots: trainer.session.stateSlots)
            #expect(allFinite(trainer))
        }
    }

    @Test func skipStepSkipsOnlyThePoisonedBatches() throws {
        let (summary, trainer, dir) = try run("skip_step")
        defer { withExtendedLifetime(dir) {} }
        #expect(summary.status == .completed)
        #expect(allFinite(trainer))
        #expect((summary.final?.testAcc ?? 0) > 0.9, "\(String(describing: summary.final))")
    }

    @Test func rollbackReloadsAndSkipsTheFailingBatch() throws {
        let (summary, trainer, dir) = try run("rollback")
        defer { withExtendedLifetime(dir) {} }
        #expect(summary.status == .completed, "\(summary)")
        #expect(allFinite(trainer))
        #expect((summary.final?.testAcc ?? 0) > 0.9)
    }
}
