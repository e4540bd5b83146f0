import DecoupledTraining
import Foundation

/// Where every run of a sweep directory stands (`decoupled sweep status`): read from the
/// manifest, each run's summary.json and run lock, and, for the Slurm backend, the queue and
/// the task events. Reading changes nothing (the run locks are looked up, never taken).
public struct SweepStatus {
    /// A run's state. `running`: a process on this machine holds its run.lock, or Slurm runs its task.
    public enum State: String, CaseIterable, Codable, Sendable {
        /// Not started: no summary.json.
        case pending
        /// Being written by a live process, or its Slurm task runs.
        case running
        /// Trained to the end.
        case completed
        /// Stopped by a signal after a checkpoint; the next run continues it.
        case preempted
        /// Stopped on non-finite values (nan_policy).
        case diverged
        /// Stopped by an error; summary.json says which.
        case failed

        /// pending, running, done, failed: the four counts of the headline.
        public var group: String {
            switch self {
            case .pending, .preempted: return "pending"
            case .running: return "running"
            case .completed: return "done"
            case .diverged, .failed: return "failed"
            }
        }
    }

    /// One run's line.
    public struct Run: Sendable {
        /// The manifest entry.
        public let run: SweepManifest.Run
        /// What the run directory says (summary.json, run.lock).
        public let files: RunDirectoryState
        /// The Slurm task of the latest submission that included this run, and its state.
        public let slurm: SlurmTaskState?
        /// The newest event of this run in slurm/events.jsonl.
        public let lastEvent: SlurmEvent?

        /// The state: running while Slurm runs its task, else what the run directory says.
        public var state: State { slurm?.state == "RUNNING" ? .running : files.state }
        public var reason: String? { files.reason }
        public var finalTestAccuracy: Double? { files.finalTestAccuracy }
        public var step: Int? { files.step }
        public var stepsTotal: Int? { files.stepsTotal }
        public var lockHolder: Int32? { files.lockHolder }
    }

    /// One run directory's state from its own files (summary.json and run.lock), before any
    /// Slurm queue is consulted: what `sweep status` starts from, and what `decoupled serve`
    /// shows for a run directory served on its own.
    public struct RunDirectoryState: Sendable {
        /// running when a process holds run.lock, else summary.json's status (pending without one).
        public let state: State
        /// Why it was preempted, diverged or failed, or what is wrong with summary.json.
        public let reason: String?
        /// The final test accuracy (summary.json `final.test_acc`).
        public let finalTestAccuracy: Double?
        /// Steps done and steps the config asks for (summary.json).
        public let step: Int?
        public let stepsTotal: Int?
        /// The process holding the run lock, if any.
        public let lockHolder: Int32?

        /// Reads the run directory; never takes its lock.
        public static func read(_ runDirectory: String) -> RunDirectoryState {
            let s = SweepRunState.read(runDirectory: runDirectory)
            var state: State
            switch s.status {
            case nil: state = .pending
            case .completed: state = .completed
            case .preempted: state = .preempted
            case .diverged: state = .diverged
            case .failed: state = .failed
            }
            if s.lockHolder != nil { state = .running }
            return RunDirectoryState(state: state, reason: s.unreadable ?? s.reason, finalTestAccuracy: s.finalTestAccuracy,
                                     step: s.step, stepsTotal: s.stepsTotal, lockHolder: s.lockHolder)
        }
    }

    /// The sweep directory.
    public let directory: String
    /// The manifest.
    public let manifest: SweepManifest
    /// Every run of the manifest, in manifest order.
    public let runs: [Run]
    /// Slurm submissions (slurm/jobs.json), oldest first; empty for local sweeps.
    public let slurmJobs: [SlurmJobRecord]
    /// Per job id: the task states, or nil when Slurm no longer knows the job.
    public let slurmTasks: [String: [Int: SlurmTaskState]?]
    /// All task events, oldest first.
    public let events: [SlurmEvent]
    /// Things that could not be read (a Slurm client failing, a bad events line).
    public let problems: [String]

    /// Runs per count group: pending (incl. preempted), running, done, failed (incl. diverged).
    public var counts: (pending: Int, running: Int, done: Int, failed: Int) { Self.counts(runs.map(\.state)) }

    /// The four counts of `states`.
    public static func counts<S: Sequence>(_ states: S) -> (pending: Int, running: Int, done: Int, failed: Int) where S.Element == State {
        var c = (pending: 0, running: 0, done: 0, failed: 0)
        for state in states {
            switch state.group {
            case "running": c.running += 1
            case "done": c.done += 1
            case "failed": c.failed += 1
            default: c.pending += 1
            }
        }
        return c
    }

    /// Reads the sweep directory. `environment` is passed to squeue/scontrol (SLURM_CONF).
    public static func load(sweepDirectory: String,
                            environment: [String: String] = ProcessInfo.processInfo.environment) throws -> SweepStatus {
        let dir = (sweepDirectory as NSString).standardizingPath
        let manifest = try SweepManifest.load(from: URL(fileURLWithPath: dir, isDirectory: true))
        var problems: [String] = []

        let jobs = try SlurmJobsFile.load(dir).jobs
        var taskStates: [String: [Int: SlurmTaskState]?] = [:]
        var slurmByRun: [String: SlurmTaskState] = [:]
        for job in jobs {
            do {
                let states = try SlurmQueue.tasks(jobID: job.jobID, environment: environment)
                taskStates[job.jobID] = .some(states)
                for (i, id) in job.tasks.enumerated() {
                    if let s = states?[i] { slurmByRun[id] = s }  // later submissions win
                }
            } catch {
                problems.append("\(error)")
            }
        }
        let (events, eventProblems) = SlurmEvent.load(sweepDirectory: dir)
        problems += eventProblems
        var lastEvent: [String: SlurmEvent] = [:]
        for e in events { lastEvent[e.run] = e }

        let runs = manifest.runs.map { run -> Run in
            Run(run: run, files: RunDirectoryState.read(run.directory(in: URL(fileURLWithPath: dir, isDirectory: true)).path),
                slurm: slurmByRun[run.id], lastEvent: lastEvent[run.id])
        }
        return SweepStatus(directory: dir, manifest: manifest, runs: runs, slurmJobs: jobs, slurmTasks: taskStates,
                           events: events, problems: problems)
    }

    /// The report `decoupled sweep status` prints: headline, one line per run, then the Slurm
    /// jobs and events when there are any.
    public func render() -> String {
        let c = counts
        var out = "sweep \(manifest.name): \(directory)\n"
        out += "\(runs.count) runs: \(c.done) done, \(c.running) running, \(c.pending) pending, \(c.failed) failed\n\n"
        let slurm = !slurmJobs.isEmpty
        var table: [[String]] = [["id", "status", "method", "lr", "decay", "seed", "test acc", "step"]
                                 + (slurm ? ["slurm", "last event"] : []) + ["reason"]]
        for r in runs {
            var status = r.state.rawValue
            if let pid = r.lockHolder { status += " (pid \(pid))" }
            var row = [r.run.id, status, r.run.method, SweepFormat.number(r.run.lr), SweepFormat.number(r.run.decay),
                       String(r.run.seed), r.finalTestAccuracy.map { String(format: "%.4f", $0) } ?? "-",
                       r.step.map { s in "\(s)" + (r.stepsTotal.map { "/\($0)" } ?? "") } ?? "-"]
            if slurm {
                row.append(r.slurm.map { "\($0.job) \($0.state)" + ($0.restarts > 0 ? " r\($0.restarts)" : "") } ?? "-")
                row.append(r.lastEvent.map { e in e.event + (e.exitCode.map { " (\($0))" } ?? "") + " " + e.time } ?? "-")
            }
            row.append(r.reason ?? "")
            table.append(row)
        }
        out += Self.columns(table)
        if slurm {
            out += "\nslurm jobs (slurm/jobs.json):\n"
            for job in slurmJobs {
                guard let known = slurmTasks[job.jobID] else {
                    out += "  \(job.jobID): \(job.tasks.count) tasks, submitted \(job.submitted): state unknown (see the problems below)\n"
                    continue
                }
                guard let states = known else {
                    out += "  \(job.jobID): \(job.tasks.count) tasks, submitted \(job.submitted): no longer known to Slurm (finished before MinJobAge)\n"
                    continue
                }
                var byState: [String: Int] = [:]
                for s in states.values { byState[s.state, default: 0] += 1 }
                let words = byState.keys.sorted().map { "\(byState[$0]!) \($0)" }.joined(separator: ", ")
                let restarts = states.values.reduce(0) { $0 + $1.restarts }
                out += "  \(job.jobID): \(job.tasks.count) tasks, submitted \(job.submitted): \(words)"
                    + (restarts > 0 ? "; \(restarts) requeue\(restarts == 1 ? "" : "s")" : "") + "\n"
            }
            if !events.isEmpty {
                var byKind: [String: Int] = [:]
                for e in events { byKind[e.event, default: 0] += 1 }
                out += "events (slurm/events.jsonl): \(events.count): "
                    + SlurmEvent.kinds.compactMap { k in byKind[k].map { "\($0) \(k)" } }.joined(separator: ", ") + "\n"
                for e in events.suffix(8) {
                    out += "  \(e.time) \(e.event) \(e.run)" + (e.job.map { " task \($0)" } ?? "")
                        + (e.restart.map { $0 > 0 ? " restart \($0)" : "" } ?? "")
                        + (e.exitCode.map { " exit \($0)" } ?? "") + (e.signal.map { " \($0)" } ?? "")
                        + (e.reason.map { ": \($0)" } ?? "") + (e.message.map { " — \($0)" } ?? "") + "\n"
                }
            }
        }
        if !problems.isEmpty {
            out += "\nproblems:\n" + problems.map { "  \($0)\n" }.joined()
        }
        return out
    }

    /// Left-aligned columns separated by two spaces.
    static func columns(_ rows: [[String]]) -> String {
        guard let n = rows.map(\.count).max() else { return "" }
        var widths = [Int](repeating: 0, count: n)
        for r in rows { for (i, c) in r.enumerated() where i < n - 1 { widths[i] = max(widths[i], c.count) } }
        return rows.map { r in
            r.enumerated().map { i, c in i < r.count - 1 ? c.padding(toLength: widths[i], withPad: " ", startingAt: 0) : c }
                .joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }.joined(separator: "\n") + "\n"
    }
}
