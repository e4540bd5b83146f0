import DecoupledCore
import DecoupledTraining
import DecoupledSystem
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs a sweep's runs on this machine: at most `jobs` trainer processes at a time, each
/// `decoupled train configs/<id>.toml --run-dir runs/<id> --resume --quiet --threads T`.
///
/// Idempotent: a completed run is skipped, a preempted or interrupted one resumes from its
/// newest checkpoint (bit-identically), a failed or diverged one is left alone unless
/// `retryFailed`. On SIGINT/SIGTERM/SIGUSR1 the runner sends SIGTERM to its trainers (they
/// checkpoint and exit 75) and returns once they have; a second SIGINT exits at once (130).
/// The trainers run with `DECOUPLED_STOP_WITH_PARENT=<runner pid>`, which makes each of them
/// get SIGTERM when the runner dies, even by SIGKILL, so none keeps writing unsupervised.
///
/// Call `run` from the main thread: the kernel sends that signal when the *thread* that
/// started a trainer exits, so trainers must be started from a thread that lives as long as
/// the runner.
///
/// A run's outcome comes from its summary.json together with the exit status: exit 0 counts
/// only with a `completed` summary. A watchdog stops a trainer that writes nothing to its run
/// directory for `stallTimeout` seconds (SIGTERM, then SIGKILL after `stallGrace`) and
/// records the run as failed.
public final class LocalRunner {
    /// What a run did in this invocation, reported to the progress callback's caller.
    public struct Outcome: Equatable, Sendable {
        /// Runs of the spec.
        public var total = 0
        /// Completed before this invocation started (skipped).
        public var alreadyCompleted = 0
        /// Trainers started.
        public var started = 0
        /// Runs completed by the end (including `alreadyCompleted`).
        public var completed = 0
        /// Runs failed or diverged by the end (including earlier ones not retried).
        public var failed = 0
        /// Runs not finished: never started, preempted, interrupted, or busy in another process.
        public var unfinished = 0
        /// Runs whose directory another process was writing, so this runner left them alone.
        public var busy = 0
        /// The runner stopped early on a signal.
        public var interruptedBy: String?

        /// The exit status for `decoupled sweep run`: 0 every run completed; 75 stopped by a
        /// signal or runs left unfinished (rerun to continue); 3 finished, but some runs
        /// failed or diverged.
        public var exitCode: Int32 {
            if interruptedBy != nil || unfinished > 0 { return StopSignals.preemptedExitCode }
            return failed > 0 ? 3 : 0
        }
    }

    /// The plan whose runs are run (its sweep directory must have been written).
    public let plan: SweepPlan
    /// Trainer processes at a time.
    public let jobs: Int
    /// `--threads` of each trainer.
    public let threadsPerRun: Int
    /// The `decoupled` executable the trainers are started from.
    public let executable: String
    /// Also rerun failed and diverged runs (they resume from their newest checkpoint).
    public var retryFailed = false
    /// Extra environment for the trainers (e.g. DECOUPLED_KERNELS); the runner's own is inherited.
    public var environment: [String: String] = [:]
    /// Seconds a trainer may go without writing to its run directory before the watchdog stops
    /// it; 0 turns the watchdog off. Default: the spec's `stall_timeout`.
    public var stallTimeout: Double
    /// Seconds from the watchdog's SIGTERM to its SIGKILL. Default: the spec's `stall_grace`.
    public var stallGrace: Double

    /// A runner for `plan`. `threadsPerRun` nil: max(1, cores / jobs). `executable` nil: this
    /// process's own executable (/proc/self/exe), which must be `decoupled`.
    public init(plan: SweepPlan, jobs: Int, threadsPerRun: Int? = nil, executable: String? = nil) throws {
        guard jobs >= 1 else { throw SweepRunnerError("--jobs must be at least 1, got \(jobs)") }
        if let t = threadsPerRun, t < 1 { throw SweepRunnerError("--threads-per-run must be at least 1, got \(t)") }
        self.plan = plan
        self.jobs = jobs
        stallTimeout = plan.spec.stallTimeout
        stallGrace = plan.spec.stallGrace
        self.threadsPerRun = threadsPerRun ?? max(1, ProcessInfo.processInfo.activeProcessorCount / jobs)
        self.executable = try executable ?? LocalRunner.currentExecutable()
        guard FileManager.default.isExecutableFile(atPath: self.executable) else {
            throw SweepRunnerError("\(self.executable) is not an executable; the runner starts `decoupled train` from it")
        }
    }

    /// This process's executable, resolved (`InstallLayout.currentExecutable`).
    public static func currentExecutable() throws -> String {
        do { return try InstallLayout.currentExecutable() } catch { throw SweepRunnerError("\(error); pass it explicitly") }
    }

    private struct Running {
        let entry: SweepPlan.Entry
        let child: Subprocess
        let started: Date
        let logFile: String
        let logOffset: UInt64
        /// What the run directory looked like when the watchdog last saw it change, and when.
        var written: RunDirectoryFingerprint
        var lastProgress: Date
        /// When the watchdog sent SIGTERM, and whether it went on to SIGKILL.
        var stoppedByWatchdog: Date?
        var killedByWatchdog = false

        /// The watchdog's look at this trainer at `now`.
        mutating func watch(now: Date, timeout: Double, grace: Double, say: (String) -> Void) {
            let current = RunDirectoryFingerprint(entry.runDirectory)
            if current != written {
                written = current
                lastProgress = now
                return
            }
            if let stopped = stoppedByWatchdog {
                if !killedByWatchdog && now.timeIntervalSince(stopped) >= grace {
                    killedByWatchdog = true
                    child.signal(SIGKILL)
                    say("\(entry.label): still running \(SweepFormat.duration(grace)) after SIGTERM: SIGKILL")
                }
            } else if now.timeIntervalSince(lastProgress) >= timeout {
                stoppedByWatchdog = now
                child.signal(SIGTERM)
                say("\(entry.label): nothing written to \(entry.runDirectory) for \(SweepFormat.duration(timeout)) (stall_timeout): SIGTERM")
            }
        }

        /// Why the watchdog stopped it, for the failure record.
        var watchdogReason: String? {
            guard let stopped = stoppedByWatchdog else { return nil }
            return "no progress for \(SweepFormat.duration(stopped.timeIntervalSince(lastProgress))) (stall_timeout): stopped with SIGTERM"
                + (killedByWatchdog ? ", then SIGKILL" : "")
        }
    }

    /// Runs every unfinished run of the plan and returns what happened. `progress` gets one
    /// line per finished run (and the opening and closing lines); `runner.log` gets those and
    /// one line per started trainer, with times. Installs the stop-signal handlers.
    public func run(progress: (String) -> Void) throws -> Outcome {
        let lock = try DirectoryLock(plan.directory, kind: .sweep, purpose: "running")
        defer { lock.release() }
        StopSignals.install()
        let log = try RunnerLog(path: plan.path("runner.log"))
        // Tasks of a Slurm submission of this sweep may be training its runs on other nodes,
        // where the run locks of this machine cannot see them.
        if !(try SlurmJobsFile.load(plan.directory).jobs.isEmpty) {
            do {
                if let job = try SlurmQueue.activeJobs(sweepDirectory: plan.directory, environment: ProcessInfo.processInfo.environment).first {
                    throw SweepRunnerError("job \(job) of this sweep is still queued or running on Slurm (squeue -j \(job)); wait for it to end or `scancel \(job)` before running the sweep locally")
                }
            } catch let e as SweepRunnerError where !e.message.hasPrefix("job ") {
                log.append("note: cannot ask Slurm about this sweep's jobs (\(e.message)); running locally")
            }
        }

        var outcome = Outcome()
        outcome.total = plan.entries.count
        var queue: [SweepPlan.Entry] = []
        var skippedFailures = 0
        for e in plan.entries {
            let state = SweepRunState.read(runDirectory: e.runDirectory)
            if let pid = state.lockHolder {
                outcome.busy += 1
                log.append("busy \(e.run.id) \(e.label): run.lock held by process \(pid); left alone")
                continue
            }
            switch state.status {
            case .completed: outcome.alreadyCompleted += 1
            case .failed, .diverged:
                if retryFailed { queue.append(e) } else { skippedFailures += 1 }
            case nil, .preempted: queue.append(e)
            }
        }
        var completed = outcome.alreadyCompleted
        var failed = skippedFailures
        let total = outcome.total
        func say(_ line: String) {
            progress(line)
            log.append(line)
        }

        log.append("runner pid \(getpid()): \(plan.spec.file) → \(plan.directory), \(total) runs, \(jobs) job(s) × \(threadsPerRun) thread(s), executable \(executable)")
        if queue.isEmpty {
            say("sweep \(plan.spec.name): nothing to do: \(completed) of \(total) runs completed"
                + (failed > 0 ? ", \(failed) failed or diverged (rerun with --retry-failed to retry them)" : "")
                + (outcome.busy > 0 ? ", \(outcome.busy) being written by other processes" : ""))
            outcome.completed = completed
            outcome.failed = failed
            outcome.unfinished = outcome.busy
            return outcome
        }
        say("sweep \(plan.spec.name): \(total) runs in \(plan.directory): \(completed) completed, \(failed) failed"
            + (retryFailed ? "" : skippedFailures > 0 ? " (not retried without --retry-failed)" : "")
            + ", \(queue.count) to run; \(jobs) job\(jobs == 1 ? "" : "s") × \(threadsPerRun) thread\(threadsPerRun == 1 ? "" : "s")")

        var environment = ProcessInfo.processInfo.environment.merging(self.environment) { $1 }
        environment["DECOUPLED_STOP_WITH_PARENT"] = String(getpid())
        var running: [Running] = []
        var stopping: String?
        var durations: [Double] = []
        var nextWatch = Date()

        while true {
            if stopping == nil, let signal = StopSignals.pending {
                stopping = signal
                say("\(signal): stopping \(running.count) running trainer\(running.count == 1 ? "" : "s") (they checkpoint and exit); rerun to continue")
                for r in running { r.child.signal(SIGTERM) }
            }
            while stopping == nil && running.count < jobs && !queue.isEmpty {
                let e = queue.removeFirst()
                do {
                    running.append(try start(e, environment: environment, log: log))
                    outcome.started += 1
                } catch {
                    failed += 1
                    say("[\(completed)/\(total) done, \(running.count) running, \(failed) failed] \(e.label): could not start: \(error)")
                }
            }
            if running.isEmpty && (queue.isEmpty || stopping != nil) { break }
            if stallTimeout > 0 && Date() >= nextWatch {
                // Once a second: listing run directories 50 times a second would be wasted work.
                let now = Date()
                nextWatch = now.addingTimeInterval(1)
                for i in running.indices { running[i].watch(now: now, timeout: stallTimeout, grace: stallGrace, say: say) }
            }

            var i = 0
            while i < running.count {
                guard let exit = running[i].child.poll() else { i += 1; continue }
                let r = running.remove(at: i)
                let seconds = Date().timeIntervalSince(r.started)
                let state = SweepRunState.read(runDirectory: r.entry.runDirectory)
                var what = ""
                func recordFailure(_ reason: String?) {
                    failed += 1
                    SweepFailureRecord.write(runDirectory: r.entry.runDirectory, exit: exit, since: r.started,
                                             logFile: r.logFile, logOffset: r.logOffset, reason: reason)
                    let recorded = SweepRunState.read(runDirectory: r.entry.runDirectory).reason ?? "\(exit)"
                    what = "failed (\(recorded)); log: \(r.logFile)"
                }
                switch exit {
                case _ where r.watchdogReason != nil:
                    recordFailure(r.watchdogReason)
                case .exited(0) where state.status == .completed:
                    completed += 1
                    durations.append(seconds)
                    what = state.finalTestAccuracy.map { String(format: "test acc %.4f", $0) } ?? "completed"
                case .exited(0):
                    recordFailure(SweepFailureRecord.incompleteSuccess(state))
                case .exited(StopSignals.preemptedExitCode), .exited(130):
                    what = "preempted" + (state.reason.map { " (\($0))" } ?? "")
                case .exited(StopSignals.divergedExitCode):
                    failed += 1
                    what = "diverged" + (state.reason.map { " (\($0))" } ?? "")
                default:
                    if let pid = DirectoryLock.holder(of: r.entry.runDirectory) {
                        // Refused because another process writes the run: not a failure of the run.
                        outcome.busy += 1
                        what = "left alone: run.lock is held by process \(pid)"
                    } else {
                        recordFailure(nil)
                    }
                }
                var line = "[\(completed)/\(total) done, \(running.count) running, \(failed) failed] \(r.entry.label): \(what), "
                    + String(format: "%.1f s", seconds)
                let remaining = queue.count + running.count
                if stopping == nil, remaining > 0, !durations.isEmpty {
                    let mean = durations.reduce(0, +) / Double(durations.count)
                    line += "; ETA \(SweepFormat.duration(mean * Double(remaining) / Double(min(jobs, remaining))))"
                }
                say(line)
                log.append("exit \(r.entry.id): \(exit)")
            }
            usleep(20_000)
        }

        outcome.completed = completed
        outcome.failed = failed
        outcome.unfinished = total - completed - failed
        outcome.interruptedBy = stopping
        var closing = "sweep \(plan.spec.name): \(completed) of \(total) completed"
        if failed > 0 { closing += ", \(failed) failed or diverged" }
        if outcome.unfinished > 0 { closing += ", \(outcome.unfinished) unfinished" }
        if let s = stopping { closing += " (stopped by \(s); rerun the same command to continue)" }
        say(closing + "; status: decoupled sweep status \(plan.directory)")
        return outcome
    }

    /// Starts one trainer, its output appended to RUN_DIR/train.log.
    private func start(_ e: SweepPlan.Entry, environment: [String: String], log: RunnerLog) throws -> Running {
        try FS.createDirectory(e.runDirectory)
        let logFile = (e.runDirectory as NSString).appendingPathComponent("train.log")
        let arguments = ["train", e.configPath, "--run-dir", e.runDirectory, "--resume", "--quiet", "--threads", String(threadsPerRun)]
        let header = "=== \(SweepFormat.timestamp()) sweep runner \(getpid()): \(executable) \(arguments.joined(separator: " "))\n"
        try FS.append(header, to: logFile)  // a linked or non-regular train.log refuses the start
        let offset = ((try? FileManager.default.attributesOfItem(atPath: logFile))?[.size] as? NSNumber)?.uint64Value ?? 0
        let started = Date()
        // In a process group of its own, so a terminal's Ctrl-C reaches only the runner, which
        // decides what the trainers get.
        let child = try Subprocess.spawn(executable, arguments, options: .init(environment: environment, output: .appendTo(logFile),
                                                                              newProcessGroup: true))
        log.append("start \(e.id) \(e.label) pid \(child.pid)")
        return Running(entry: e, child: child, started: started, logFile: logFile, logOffset: offset,
                       written: RunDirectoryFingerprint(e.runDirectory), lastProgress: started)
    }
}

/// What a run directory says about its run right now: the summary's status and reason, the
/// final test accuracy, and whether a process holds its run lock.
struct SweepRunState {
    var status: RunStatus?
    var reason: String?
    var finalTestAccuracy: Double?
    var step: Int?
    var stepsTotal: Int?
    var wallSeconds: Double?
    var lockHolder: pid_t?
    /// summary.json exists but cannot be read: the problem.
    var unreadable: String?

    static func read(runDirectory: String) -> SweepRunState {
        var s = SweepRunState()
        s.lockHolder = DirectoryLock.holder(of: runDirectory)
        let url = URL(fileURLWithPath: (runDirectory as NSString).appendingPathComponent("summary.json"))
        guard FileManager.default.fileExists(atPath: url.path) else { return s }
        do {
            let summary = try RunSummary.load(from: url)
            s.status = summary.status
            s.reason = summary.reason
            s.finalTestAccuracy = summary.final?.testAcc
            s.step = summary.step
            s.stepsTotal = summary.stepsTotal
            s.wallSeconds = summary.wallS
        } catch {
            s.unreadable = "\(error)"
        }
        return s
    }
}

/// Names, sizes and modification times of the files in a run directory and its checkpoints/
/// (train.log, metrics.jsonl, summary.json, checkpoints, ...): any change means the trainer
/// is getting somewhere.
struct RunDirectoryFingerprint: Equatable {
    private var files: [String] = []

    init(_ runDirectory: String) {
        for dir in [runDirectory, (runDirectory as NSString).appendingPathComponent("checkpoints")] {
            for name in ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted() {
                let path = (dir as NSString).appendingPathComponent(name)
                guard let a = try? FileManager.default.attributesOfItem(atPath: path) else { continue }
                files.append("\(path) \(a[.size] ?? "-") \(a[.modificationDate] ?? "-")")
            }
        }
    }
}

/// `SWEEP_DIR/runner.log`: timestamped lines, appended through FS (one write each, so
/// concurrent writers do not interleave within a line; never through a link).
struct RunnerLog {
    let path: String

    /// Creates the log if missing; a runner.log that is a symbolic link or not a regular file
    /// is an error naming it, before anything is started.
    init(path: String) throws {
        self.path = path
        try FS.append("", to: path)
    }

    /// Errors are ignored here: the log was usable when opened, and a full disk must not stop
    /// a sweep whose trainers report it themselves.
    func append(_ line: String) {
        try? FS.append("\(SweepFormat.timestamp()) \(line)\n", to: path)
    }
}
