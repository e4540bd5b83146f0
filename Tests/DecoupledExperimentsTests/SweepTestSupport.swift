import DecoupledCheckpoint
import DecoupledCore
import DecoupledTraining
import Foundation
import Testing
@testable import DecoupledExperiments

// Helpers of the sweep tests: the built `decoupled` binary (copied from
// DecoupledTrainingTests/ProcessTests.swift rather than importing test code), scratch
// directories, tiny sweep specs and the final state of a run for bit-for-bit comparisons.

/// The repository root (three levels above this file).
let sweepRepositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

/// The `decoupled` executable built beside the test bundle (`swift build --build-tests`
/// builds both into the same products directory).
let sweepDecoupledBinary: String = {
    let dir = (Bundle.main.executablePath.map { ($0 as NSString).deletingLastPathComponent })
        ?? "\(sweepRepositoryRoot)/.build/debug"
    for candidate in [dir, (dir as NSString).deletingLastPathComponent, "\(sweepRepositoryRoot)/.build/debug"] {
        let p = (candidate as NSString).appendingPathComponent("decoupled")
        if FileManager.default.isExecutableFile(atPath: p) { return p }
    }
    return "\(sweepRepositoryRoot)/.build/debug/decoupled"
}()

/// Starts `decoupled` with output to files in `dir` (a pipe nobody reads could fill and block
/// it), in the working directory `workingDirectory` (default: the repository root).
func startSweepDecoupled(_ args: [String], in dir: String, tag: String, environment: [String: String]? = nil,
                         workingDirectory: String = sweepRepositoryRoot) throws -> Process {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: sweepDecoupledBinary)
    p.arguments = args
    p.currentDirectoryURL = URL(fileURLWithPath: workingDirectory)
    if let environment { p.environment = environment }
    _ = FileManager.default.createFile(atPath: "\(dir)/\(tag).out", contents: nil)
    _ = FileManager.default.createFile(atPath: "\(dir)/\(tag).err", contents: nil)
    p.standardOutput = FileHandle(forWritingAtPath: "\(dir)/\(tag).out")
    p.standardError = FileHandle(forWritingAtPath: "\(dir)/\(tag).err")
    p.standardInput = FileHandle.nullDevice
    try p.run()
    return p
}

/// Waits for a process; false when it still runs after `seconds`.
func waitForExit(_ p: Process, seconds: Double) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while p.isRunning && Date() < deadline { usleep(5_000) }
    return !p.isRunning
}

/// Polls `condition` every `interval` seconds; false on timeout.
func waitUntil(seconds: Double, interval: Double = 0.005, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try condition() { return true }
        usleep(UInt32(interval * 1e6))
    }
    return try condition()
}

/// A fresh directory, removed on deinit. Short paths under /tmp: the Slurm test puts a Unix
/// socket below one.
final class SweepScratch {
    let path: String
    init(_ prefix: String = "dsw") {
        var template = Array("/tmp/\(prefix).XXXXXX".utf8CString)
        path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        chmod(path, 0o755)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }
    func text(_ name: String) -> String { (try? String(contentsOfFile: file(name), encoding: .utf8)) ?? "" }
}

/// The base config of the tiny runs: the shipped subset, batch 500 (20 steps per epoch),
/// hidden [8], checkpoints every 4 steps.
func writeTinyBase(_ scratch: SweepScratch, epochs: Int = 2) throws -> String {
    let path = scratch.file("base.toml")
    try """
    name = "tiny"
    seed = 0
    [data]
    file = "\(sweepRepositoryRoot)/datasets/fashion-mnist-small.h5"
    batch_size = 500
    [model]
    kind = "mlp"
    hidden = [8]
    [optimizer]
    name = "adamw"
    lr = 1e-2
    weight_decay = 1e-2
    [schedule]
    name = "cosine"
    t0 = \(epochs)
    [train]
    epochs = \(epochs)
    checkpoint_every = 4
    """.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

/// A spec over the tiny base: Adam+L2 and AdamW × `lrs` × one decay each × `seeds`.
func tinySpecText(name: String, lrs: [String], seeds: [Int] = [0, 1], extra: String = "") -> String {
    """
    name  = "\(name)"
    base  = "base.toml"
    seeds = [\(seeds.map(String.init).joined(separator: ", "))]
    lr    = [\(lrs.joined(separator: ", "))]
    \(extra)

    [[methods]]
    label     = "Adam+L2"
    decay_key = "regularizers[0].lambda"
    decay     = [1e-4]
    optimizer = { name = "adam" }
    regularizers = [ { name = "l2", lambda = 0.0 } ]

    [[methods]]
    label     = "AdamW"
    decay_key = "optimizer.weight_decay"
    decay     = [1e-2]
    optimizer = { name = "adamw" }
    regularizers = []
    """
}

/// A run's final state: the parameter bits of its newest checkpoint (which must be at the
/// last step) and summary.json's final metrics record without its wall-clock fields.
struct FinalRunState: Equatable {
    let parameterBits: [UInt32]
    let finalRecord: MetricRecord

    init(runDirectory: String, configPath: String) throws {
        let config = try ExperimentConfig.load(path: configPath)
        let session = try TrainingSession(config: config, registry: .builtIn(), kernels: .best, threads: 1)
        let store = try CheckpointStore(runDirectory: runDirectory, readOnly: true)
        let newest = try #require(try store.newestValid(), "no valid checkpoint in \(runDirectory)")
        let meta = try store.load(newest.path, into: session.arena, slots: session.stateSlots)
        #expect(meta.step == session.totalSteps, "\(runDirectory): newest checkpoint at step \(meta.step) of \(session.totalSteps)")
        let a = session.arena
        parameterBits = a.entries.flatMap { e in a.view(a.params, e).map(\.bitPattern) }
        let summary = try RunSummary.load(from: URL(fileURLWithPath: "\(runDirectory)/summary.json"))
        #expect(summary.status == .completed, "\(runDirectory): \(summary.status)")
        var final = try #require(summary.final, "\(runDirectory): summary.json has no final record")
        final.stepMs = nil  // wall-clock fields differ between any two runs
        final.elapsedS = nil
        finalRecord = final
    }
}

/// summary.json's modification time, nil when absent.
func summaryModified(_ runDirectory: String) -> Date? {
    (try? FileManager.default.attributesOfItem(atPath: "\(runDirectory)/summary.json"))?[.modificationDate] as? Date
}

/// The status summary.json holds, nil when absent.
func summaryStatus(_ runDirectory: String) -> String? {
    guard let data = FileManager.default.contents(atPath: "\(runDirectory)/summary.json"),
          let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
    return object["status"] as? String
}
