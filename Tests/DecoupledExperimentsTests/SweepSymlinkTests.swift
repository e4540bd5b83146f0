import DecoupledSystem
import Foundation
import Testing
@testable import DecoupledExperiments

/// The sweep's own files — sweep.lock, runner.log, slurm/events.jsonl — and a report's outputs
/// go through FS: a symbolic link planted at one of them is refused with an error naming the
/// file, and the link's target is never written.
@Suite(.serialized) struct SweepSymlinkTests {
    /// A link `dir/name` → `dir/outside-<name>`, which holds "precious\n"; returns the target.
    func linked(_ dir: String, _ name: String) throws -> String {
        let target = (dir as NSString).appendingPathComponent("outside-" + (name as NSString).lastPathComponent)
        try "precious\n".write(toFile: target, atomically: false, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: (dir as NSString).appendingPathComponent(name), withDestinationPath: target)
        return target
    }

    func contents(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }

    /// A one-run spec at scratch/spec.toml and an empty sweep directory scratch/sweep for it.
    func emptySweep(_ scratch: SweepScratch) throws -> String {
        _ = try writeTinyBase(scratch)
        try tinySpecText(name: "links", lrs: ["1e-2"]).write(toFile: scratch.file("spec.toml"), atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: scratch.file("sweep"), withIntermediateDirectories: true)
        return scratch.file("sweep")
    }

    @Test func aLinkedSweepLockIsRefusedAndItsTargetKept() throws {
        let scratch = SweepScratch()
        let dir = try emptySweep(scratch)
        let target = try linked(dir, "sweep.lock")
        do {
            _ = try SweepPlan(spec: try SweepSpec.load(path: scratch.file("spec.toml")), sweepDirectory: dir, write: true)
            Issue.record("planned through a linked sweep.lock")
        } catch let e as DirectoryLockError {
            #expect(e.description.contains("sweep directory '\(dir)' for planning") && e.reason.contains("symbolic link"), "\(e)")
        }
        #expect(contents(target) == "precious\n")
    }

    @Test func aLinkedRunnerLogStopsTheRunnerBeforeItStartsAnything() throws {
        #expect(FileManager.default.isExecutableFile(atPath: sweepDecoupledBinary), "build with `swift build --build-tests` first")
        let scratch = SweepScratch()
        let dir = try emptySweep(scratch)
        let target = try linked(dir, "runner.log")
        let p = try startSweepDecoupled(["sweep", "run", scratch.file("spec.toml"), "--dir", dir, "--jobs", "1"],
                                        in: scratch.path, tag: "run")
        #expect(waitForExit(p, seconds: 60) && p.terminationStatus != 0)
        let err = scratch.text("run.err")
        #expect(err.contains("\(dir)/runner.log") && err.contains("symbolic link"), "\(err)")
        #expect(contents(target) == "precious\n")
        // Nothing was trained: no run directory has a summary.
        let runs = (try? FileManager.default.contentsOfDirectory(atPath: dir + "/runs")) ?? []
        #expect(runs.allSatisfy { !FileManager.default.fileExists(atPath: "\(dir)/runs/\($0)/summary.json") }, "\(runs)")

        // The log opened at once, and every later line, refuse the link just the same.
        #expect(throws: CheckpointError.self) { _ = try RunnerLog(path: dir + "/runner.log") }
    }

    @Test func aLinkedEventsFileIsRefused() throws {
        let scratch = SweepScratch()
        try FileManager.default.createDirectory(atPath: scratch.file("slurm"), withIntermediateDirectories: true)
        let target = try linked(scratch.file("slurm"), "events.jsonl")
        #expect(throws: CheckpointError.self) {
            try SlurmEvent.record(sweepDirectory: scratch.path, event: "start", run: "0123456789ab", exitCode: nil, signal: nil,
                                  message: nil, startedAt: nil, environment: [:])
        }
        #expect(contents(target) == "precious\n")
    }

    @Test func aLinkedReportOutputIsRefusedAndItsTargetKept() throws {
        let scratch = SweepScratch()
        let sweepURL = URL(fileURLWithPath: scratch.file("sweep"))
        try FileManager.default.createDirectory(at: sweepURL, withIntermediateDirectories: true)
        _ = try SyntheticSweep(at: sweepURL)
        let out = scratch.file("report")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let target = try linked(out, SweepReport.summaryCSV)
        do {
            _ = try SweepReport.generate(sweepDirectory: sweepURL,
                                         options: ReportOptions(outputDirectory: URL(fileURLWithPath: out), gnuplot: "/nonexistent/gnuplot"))
            Issue.record("wrote a report through a link")
        } catch let e as ReportError {
            #expect(e.kind == .cannotWrite && e.message.contains("\(out)/\(SweepReport.summaryCSV)") && e.message.contains("symbolic link"),
                    "\(e)")
            // The path once: FS's own text is not repeated after it.
            #expect(e.message.components(separatedBy: SweepReport.summaryCSV).count == 2, "\(e)")
        }
        #expect(contents(target) == "precious\n")
    }
}
