import DecoupledSystem
import DecoupledTraining
import Foundation
import Testing
@testable import DecoupledExperiments

/// The Slurm programs the localhost cluster needs (scripts/slurm/cluster.sh).
let slurmPrograms = ["munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel", "sinfo"]

/// Whether Slurm and munge are installed (on PATH or in /usr/sbin).
let slurmInstalled: Bool = slurmPrograms.allSatisfy { name in
    ((ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init) + ["/usr/sbin", "/usr/bin"])
        .contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(name)") }
}

/// `--backend slurm` on a real one-node cluster on this machine: a 6-task job array in which
/// one task is requeued by Slurm (`scontrol requeue`, SIGTERM) and one gets the time-limit
/// warning (`scancel --batch --signal=USR1`, the task requeues itself); both resume from
/// their checkpoints and end bit-identical to uninterrupted runs of their configs.
@Suite(.serialized) struct SweepSlurmTests {
    /// Runs scripts/slurm/cluster.sh; returns its exit status and output. With the tool's runner,
    /// not Foundation's Process: it learns that a child ended when a socket the child inherited closes, and the
    /// daemons cluster.sh starts would inherit it too and keep it open.
    func cluster(_ command: String, _ dir: String, in scratch: SweepScratch) throws -> (Int32, String) {
        let log = scratch.file("cluster-\(command).log")
        try? FileManager.default.removeItem(atPath: log)
        let child = try Subprocess.spawn("\(sweepRepositoryRoot)/scripts/slurm/cluster.sh", [command, dir],
                                         options: .init(output: .appendTo(log), newProcessGroup: true))
        var exit: ChildExit?
        let deadline = Date().addingTimeInterval(120)
        while exit == nil && Date() < deadline {
            usleep(20_000)
            exit = child.poll()
        }
        guard let exit else {
            child.signal(SIGKILL)
            return (-1, "cluster.sh \(command) did not finish within 120 s:\n" + scratch.text("cluster-\(command).log"))
        }
        return (exit == .exited(0) ? 0 : 1, scratch.text("cluster-\(command).log"))
    }

    /// Runs a Slurm client command with the cluster's environment.
    func slurm(_ args: [String], _ env: [String: String], timeout: Double = 20) throws -> (Int32, String) {
        let r = try SlurmQueue.run(args, environment: env, timeout: timeout)
        return (r.status, r.output + r.errorText)
    }

    @Test(.enabled(if: slurmInstalled, "Slurm/munge are not installed (\(slurmPrograms.joined(separator: ", "))): `make test` installs them through scripts/install-deps.sh (Debian packages slurm-wlm and munge)"),
          .timeLimit(.minutes(4)))
    func aSlurmSweepSurvivesRequeueAndTimeLimitSignals() throws {
        let t0 = Date()
        let scratch = SweepScratch("dsl")
        let clusterDir = scratch.file("c")
        let (started, startOutput) = try cluster("start", clusterDir, in: scratch)
        // Always stop the daemons, whatever happens below.
        defer {
            let (rc, output) = (try? cluster("stop", clusterDir, in: scratch)) ?? (1, "could not run cluster.sh stop")
            #expect(rc == 0, "cluster.sh stop: \(output)")
        }
        try #require(started == 0, "the Slurm cluster did not start (Slurm and munge are installed, so this is a failure):\n\(startOutput)")
        var env = ProcessInfo.processInfo.environment
        for line in startOutput.split(separator: "\n") where line.hasPrefix("export ") {
            let kv = line.dropFirst("export ".count)
            if let eq = kv.firstIndex(of: "=") { env[String(kv[..<eq])] = String(kv[kv.index(after: eq)...]) }
        }
        try #require(env["SLURM_CONF"] != nil, "cluster.sh printed no SLURM_CONF: \(startOutput)")
        print("slurm cluster up after \(String(format: "%.1f", Date().timeIntervalSince(t0))) s")

        // 6 runs of 200 steps (10 epochs), checkpoints every 4 steps.
        _ = try writeTinyBase(scratch, epochs: 10)
        let specPath = scratch.file("spec.toml")
        try """
        name  = "slurm"
        base  = "base.toml"
        seeds = [0, 1]
        lr    = [3e-3, 1e-2, 3e-2]
        """.write(toFile: specPath, atomically: true, encoding: .utf8)
        let dir = scratch.file("sweep")
        let submit = try startSweepDecoupled(["sweep", "run", specPath, "--dir", dir, "--backend", "slurm", "--max-requeues", "2"],
                                             in: scratch.path, tag: "submit", environment: env)
        #expect(waitForExit(submit, seconds: 60) && submit.terminationStatus == 0, "\(scratch.text("submit.out"))\(scratch.text("submit.err"))")
        let plan = try SweepPlan(spec: try SweepSpec.load(path: specPath), sweepDirectory: dir, write: false)
        #expect(plan.entries.count == 6)
        let jobs = try SlurmJobsFile.load(dir).jobs
        let job = try #require(jobs.last?.jobID, "no job recorded in slurm/jobs.json: \(scratch.text("submit.out"))")
        #expect(jobs.last?.tasks == plan.entries.map(\.id))
        let script = scratch.text("sweep/slurm/job.sh")
        for line in ["#SBATCH --array=0-5", "#SBATCH --requeue", "#SBATCH --open-mode=append", "#SBATCH --signal=B:USR1@60"] {
            #expect(script.contains(line + "\n"), "job.sh lacks \(line)")
        }

        /// The newest checkpoint step of a run, from the file names (ckpt-<step>.h5).
        func checkpointStep(_ e: SweepPlan.Entry) -> Int {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: "\(e.runDirectory)/checkpoints")) ?? []
            return names.compactMap { n -> Int? in
                guard n.hasPrefix("ckpt-"), n.hasSuffix(".h5") else { return nil }
                return Int(n.dropFirst(5).dropLast(3))
            }.max() ?? 0
        }
        // Task 0: Slurm requeues it (SIGTERM to the job) mid-run.
        let first = plan.entries[0], second = plan.entries[1]
        #expect(waitUntil(seconds: 60) { checkpointStep(first) >= 8 }, "task 0 did not get going")
        #expect(summaryStatus(first.runDirectory) == nil, "task 0 finished before it could be preempted; make the runs longer")
        let (rq, rqOut) = try slurm(["scontrol", "requeue", "\(job)_0"], env)
        #expect(rq == 0, "scontrol requeue: \(rqOut)")
        // Task 1: the time-limit warning, USR1 to the batch shell; the task requeues itself.
        // (scancel --signal retries while other tasks are pending, redelivering: cut it short.)
        #expect(waitUntil(seconds: 60) { checkpointStep(second) >= 8 }, "task 1 did not get going")
        #expect(summaryStatus(second.runDirectory) == nil, "task 1 finished before it could be signalled")
        _ = try? slurm(["scancel", "--batch", "--signal=USR1", "\(job)_1"], env, timeout: 3)

        // Everything completes.
        let finished = try waitUntil(seconds: 150, interval: 0.5) {
            try SweepStatus.load(sweepDirectory: dir, environment: env).counts.done == 6
        }
        let status = try SweepStatus.load(sweepDirectory: dir, environment: env)
        #expect(finished, "\(status.render())")
        print("slurm sweep done after \(String(format: "%.1f", Date().timeIntervalSince(t0))) s")

        // What the events say: task 0 preempted by SIGTERM, task 1 by SIGUSR1 and requeued by
        // itself, both started again with restart 1 and completed; the others ran once.
        let events = SlurmEvent.load(sweepDirectory: dir).events
        func kinds(_ e: SweepPlan.Entry) -> [String] {
            events.filter { $0.run == e.id }.map { "\($0.event)/\($0.restart ?? -1)" + ($0.signal.map { "/\($0)" } ?? "") }
        }
        #expect(kinds(first) == ["start/0", "preempted/0/SIGTERM", "start/1", "completed/1"], "\(kinds(first))")
        #expect(kinds(second) == ["start/0", "preempted/0/SIGUSR1", "requeued/0", "start/1", "completed/1"], "\(kinds(second))")
        for e in plan.entries.dropFirst(2) { #expect(kinds(e) == ["start/0", "completed/0"], "\(e.label): \(kinds(e))") }
        let preemptedAt = events.first { $0.run == first.id && $0.event == "preempted" }?.step ?? 0
        #expect(preemptedAt > 0 && preemptedAt < 200, "task 0 was preempted at step \(preemptedAt)")
        #expect(status.runs[0].slurm?.restarts == 1 && status.runs[0].slurm?.state == "COMPLETED", "\(status.render())")
        #expect(status.runs[1].slurm?.restarts == 1)
        let rendered = status.render()
        #expect(rendered.contains("6 runs: 6 done, 0 running, 0 pending, 0 failed") && rendered.contains("requeued"), "\(rendered)")

        // Both interrupted runs equal an uninterrupted run of the same config, bit for bit.
        for e in [first, second] {
            let reference = scratch.file("reference-\(e.id)")
            let p = try startSweepDecoupled(["train", e.configPath, "--run-dir", reference, "--quiet"], in: scratch.path, tag: "ref-\(e.id)")
            #expect(waitForExit(p, seconds: 120) && p.terminationStatus == 0, "\(scratch.text("ref-\(e.id).err"))")
            #expect(try FinalRunState(runDirectory: e.runDirectory, configPath: e.configPath)
                    == FinalRunState(runDirectory: reference, configPath: e.configPath), "\(e.label) differs from its uninterrupted run")
        }

        // A second submission finds nothing left to do.
        let again = try startSweepDecoupled(["sweep", "run", specPath, "--dir", dir, "--backend", "slurm"], in: scratch.path,
                                            tag: "again", environment: env)
        #expect(waitForExit(again, seconds: 60) && again.terminationStatus == 0)
        #expect(scratch.text("again.out").contains("nothing to submit"), "\(scratch.text("again.out"))\(scratch.text("again.err"))")
        print("slurm test: \(String(format: "%.1f", Date().timeIntervalSince(t0))) s")
    }
}
