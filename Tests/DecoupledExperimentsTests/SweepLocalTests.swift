import DecoupledTraining
import DecoupledCheckpoint
import Foundation
import Testing
@testable import DecoupledExperiments

/// `decoupled sweep run --backend local` as a real process tree: a 12-run sweep with 2 jobs,
/// an idempotent rerun, a runner killed with SIGKILL (its trainers must stop by themselves)
/// and resumed to results bit-identical with the uninterrupted sweep, SIGINT, failures.
@Suite(.serialized) struct SweepLocalTests {
    /// "start <id>" lines of runner.log after byte `offset`.
    func startedRuns(_ dir: String, after offset: Int = 0) -> [String] {
        let text = (try? String(contentsOfFile: "\(dir)/runner.log", encoding: .utf8)) ?? ""
        return String(text.utf8.dropFirst(offset))!.split(separator: "\n").compactMap { line in
            let f = line.split(separator: " ")
            return f.count > 2 && f[1] == "start" ? String(f[2]) : nil
        }
    }

    func logSize(_ dir: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: "\(dir)/runner.log"))?[.size] as? NSNumber)?.intValue ?? 0
    }

    /// Run directories whose run.lock some process holds.
    func lockedRuns(_ plan: SweepPlan) -> [String] {
        plan.entries.filter { DirectoryLock.holder(of: $0.runDirectory) != nil }.map(\.id)
    }

    /// Trainer processes still alive for a sweep directory, found by their command line. A
    /// trainer the killed runner had only just started may not hold its run lock yet, so an
    /// empty `lockedRuns` alone does not mean every trainer has stopped.
    func trainersAlive(_ sweepDirectory: String) -> [String] {
        let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return pids.filter { Int32($0) != nil }.compactMap { pid in
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return nil }
            let args = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            return args.contains("train") && args.contains(where: { $0.hasPrefix(sweepDirectory + "/") }) ? pid : nil
        }
    }

    @Test func aLocalSweepCompletesIsIdempotentAndSurvivesAKilledRunner() throws {
        #expect(FileManager.default.isExecutableFile(atPath: sweepDecoupledBinary), "build with `swift build --build-tests` first")
        let scratch = SweepScratch()
        _ = try writeTinyBase(scratch)
        let specPath = scratch.file("spec.toml")
        try tinySpecText(name: "local", lrs: ["3e-3", "1e-2", "3e-2"]).write(toFile: specPath, atomically: true, encoding: .utf8)
        let whole = scratch.file("whole"), killed = scratch.file("killed")

        // 1. The whole sweep in one go.
        let t0 = Date()
        let runner = try startSweepDecoupled(["sweep", "run", specPath, "--dir", whole, "--jobs", "2"], in: scratch.path, tag: "whole")
        #expect(waitForExit(runner, seconds: 120) && runner.terminationStatus == 0, "\(scratch.text("whole.out"))\(scratch.text("whole.err"))")
        let plan = try SweepPlan(spec: try SweepSpec.load(path: specPath), sweepDirectory: whole, write: false)
        #expect(plan.entries.count == 12)
        #expect(startedRuns(whole).sorted() == plan.entries.map(\.id).sorted())
        for e in plan.entries { #expect(summaryStatus(e.runDirectory) == "completed", "\(e.label)") }
        let out = scratch.text("whole.out")
        #expect(out.contains("[12/12 done, 0 running, 0 failed]"), "\(out)")
        #expect(out.contains("test acc 0."), "\(out)")
        #expect(lockedRuns(plan).isEmpty)
        print("whole sweep: \(String(format: "%.1f", Date().timeIntervalSince(t0))) s")

        // 2. Rerunning it starts nothing and touches no run.
        let mtimes = plan.entries.map { summaryModified($0.runDirectory) }
        let offset = logSize(whole)
        let rerun = try startSweepDecoupled(["sweep", "run", specPath, "--dir", whole, "--jobs", "2"], in: scratch.path, tag: "rerun")
        #expect(waitForExit(rerun, seconds: 60) && rerun.terminationStatus == 0)
        #expect(scratch.text("rerun.out").contains("nothing to do: 12 of 12 runs completed"), "\(scratch.text("rerun.out"))")
        #expect(startedRuns(whole, after: offset).isEmpty)
        #expect(plan.entries.map { summaryModified($0.runDirectory) } == mtimes)

        // 3. The same sweep elsewhere, its runner SIGKILLed with runs in flight.
        let killedPlan = try SweepPlan(spec: try SweepSpec.load(path: specPath), sweepDirectory: killed, write: false)
        #expect(killedPlan.entries.map(\.id) == plan.entries.map(\.id), "run ids depend on the configs only")
        let victim = try startSweepDecoupled(["sweep", "run", specPath, "--dir", killed, "--jobs", "2"], in: scratch.path, tag: "victim")
        // Midway = some trainer is inside its loop with most of it ahead (its newest checkpoint
        // at step 4...16 of 40): a kill then lands before its final save, not after it.
        func newestCheckpointStep(_ runDirectory: String) -> Int? {
            ((try? FileManager.default.contentsOfDirectory(atPath: runDirectory + "/checkpoints")) ?? [])
                .compactMap { CheckpointFormat.step(fromFileName: $0) }.max()
        }
        let midway = waitUntil(seconds: 60) {
            killedPlan.entries.filter { summaryStatus($0.runDirectory) == "completed" }.count >= 3
                && killedPlan.entries.contains { e in
                    lockedRuns(killedPlan).contains(e.id) && (4...16).contains(newestCheckpointStep(e.runDirectory) ?? 0)
                }
        }
        #expect(midway, "the runner should be midway: \(scratch.text("victim.out"))")
        kill(victim.processIdentifier, SIGKILL)
        victim.waitUntilExit()
        // Its trainers get SIGTERM from the kernel (DECOUPLED_STOP_WITH_PARENT), checkpoint and stop.
        #expect(waitUntil(seconds: 15) { lockedRuns(killedPlan).isEmpty && trainersAlive(killed).isEmpty },
                "trainers kept running: \(lockedRuns(killedPlan)), processes \(trainersAlive(killed))")
        let done = Set(killedPlan.entries.filter { summaryStatus($0.runDirectory) == "completed" }.map(\.id))
        let preempted = killedPlan.entries.filter { summaryStatus($0.runDirectory) == "preempted" }
        #expect(done.count >= 3 && done.count < 12)
        #expect(!preempted.isEmpty, "a trainer running at the kill should have stopped as preempted")
        let doneMtimes = killedPlan.entries.filter { done.contains($0.id) }.map { summaryModified($0.runDirectory) }

        let offset2 = logSize(killed)
        let resumed = try startSweepDecoupled(["sweep", "run", specPath, "--dir", killed, "--jobs", "2"], in: scratch.path, tag: "resumed")
        #expect(waitForExit(resumed, seconds: 120) && resumed.terminationStatus == 0, "\(scratch.text("resumed.out"))\(scratch.text("resumed.err"))")
        // Only the missing runs were started, and the completed ones were not touched.
        #expect(Set(startedRuns(killed, after: offset2)) == Set(killedPlan.entries.map(\.id)).subtracting(done))
        #expect(killedPlan.entries.filter { done.contains($0.id) }.map { summaryModified($0.runDirectory) } == doneMtimes)
        // Every run ends bit-identical to the uninterrupted sweep: parameters and final metrics.
        for (a, b) in zip(plan.entries, killedPlan.entries) {
            let x = try FinalRunState(runDirectory: a.runDirectory, configPath: a.configPath)
            let y = try FinalRunState(runDirectory: b.runDirectory, configPath: b.configPath)
            #expect(x == y, "\(a.label) differs after the killed runner (preempted: \(preempted.contains { $0.id == a.id }))")
        }

        // `sweep status` agrees.
        let status = try SweepStatus.load(sweepDirectory: killed)
        #expect(status.counts.done == 12 && status.counts.failed == 0 && status.counts.running == 0)
        #expect(status.render().contains("12 runs: 12 done, 0 running, 0 pending, 0 failed"))
    }

    @Test func sigintStopsTheTrainersAndAFailureIsRecordedNotRetried() throws {
        let scratch = SweepScratch()
        _ = try writeTinyBase(scratch, epochs: 20)
        let specPath = scratch.file("spec.toml")
        try tinySpecText(name: "int", lrs: ["1e-2"], seeds: [0]).write(toFile: specPath, atomically: true, encoding: .utf8)
        let dir = scratch.file("sweep")
        let plan = try SweepPlan(spec: try SweepSpec.load(path: specPath), sweepDirectory: dir, write: false)

        // SIGINT: the runner passes SIGTERM on, the trainers checkpoint, the runner exits 75.
        let runner = try startSweepDecoupled(["sweep", "run", specPath, "--dir", dir, "--jobs", "2"], in: scratch.path, tag: "int")
        #expect(waitUntil(seconds: 30) { lockedRuns(plan).count == 2 }, "\(scratch.text("int.out"))")
        usleep(200_000)
        kill(runner.processIdentifier, SIGINT)
        #expect(waitForExit(runner, seconds: 30))
        #expect(runner.terminationStatus == StopSignals.preemptedExitCode, "\(scratch.text("int.out"))\(scratch.text("int.err"))")
        #expect(scratch.text("int.out").contains("SIGINT: stopping 2 running trainers"))
        for e in plan.entries { #expect(summaryStatus(e.runDirectory) == "preempted") }
        #expect(lockedRuns(plan).isEmpty)

        // A run that cannot start (a file where its checkpoints directory goes) fails with a
        // reason, and a rerun does not retry it without --retry-failed.
        let checkpoints = "\(plan.entries[1].runDirectory)/checkpoints"
        try FileManager.default.moveItem(atPath: checkpoints, toPath: checkpoints + ".aside")
        try "not a directory".write(toFile: "\(plan.entries[1].runDirectory)/checkpoints", atomically: true, encoding: .utf8)
        let failing = try startSweepDecoupled(["sweep", "run", specPath, "--dir", dir, "--jobs", "2"], in: scratch.path, tag: "fail")
        #expect(waitForExit(failing, seconds: 120))
        #expect(failing.terminationStatus == 3, "\(scratch.text("fail.out"))\(scratch.text("fail.err"))")
        #expect(summaryStatus(plan.entries[0].runDirectory) == "completed")
        let failed = try RunSummary.load(from: URL(fileURLWithPath: "\(plan.entries[1].runDirectory)/summary.json"))
        #expect(failed.status == .failed && failed.reason?.hasPrefix("exit status 1: ") == true, "\(String(describing: failed.reason))")
        #expect(scratch.text("fail.out").contains("\(plan.entries[1].label): failed (exit status 1"), "\(scratch.text("fail.out"))")

        let offset = logSize(dir)
        let again = try startSweepDecoupled(["sweep", "run", specPath, "--dir", dir], in: scratch.path, tag: "again")
        #expect(waitForExit(again, seconds: 60) && again.terminationStatus == 3)
        #expect(scratch.text("again.out").contains("1 failed or diverged (rerun with --retry-failed to retry them)"), "\(scratch.text("again.out"))")
        #expect(startedRuns(dir, after: offset).isEmpty)

        // Fixed, --retry-failed resumes it from its checkpoint to the end.
        try FileManager.default.removeItem(atPath: checkpoints)
        try FileManager.default.moveItem(atPath: checkpoints + ".aside", toPath: checkpoints)
        let retry = try startSweepDecoupled(["sweep", "run", specPath, "--dir", dir, "--retry-failed"], in: scratch.path, tag: "retry")
        #expect(waitForExit(retry, seconds: 120) && retry.terminationStatus == 0, "\(scratch.text("retry.out"))\(scratch.text("retry.err"))")
        #expect(startedRuns(dir, after: offset) == [plan.entries[1].id])
        #expect(summaryStatus(plan.entries[1].runDirectory) == "completed")
    }
}
