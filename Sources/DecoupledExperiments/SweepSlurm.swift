import DecoupledCheckpoint
import DecoupledTraining
import DecoupledSystem
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// The Slurm backend: one job array per submission, one array task per unfinished run. Slurm
// schedules, throttles and requeues; the generated script only trains, passes signals on,
// requeues itself before a time limit and records what happened. Measured behaviour of
// Slurm 22.05 (signals, requeue, state queries) is in scripts/slurm/README.md.
//
//   SWEEP_DIR/slurm/job.sh          the batch script of the latest submission
//   SWEEP_DIR/slurm/tasks.txt       line i+1: the run id of array task i
//   SWEEP_DIR/slurm/jobs.json       every submission: job id, time, the run id of each task
//   SWEEP_DIR/slurm/events.jsonl    one JSON object per task event (start, preempted, ...)
//   SWEEP_DIR/slurm/task-<job>_<i>.out  the script's own output per task (appended across requeues)

/// Options of the Slurm backend (`decoupled sweep run --backend slurm`).
public struct SlurmOptions: Equatable, Sendable {
    /// `--partition`.
    public var partition: String?
    /// `--account`.
    public var account: String?
    /// `--mem` per task, e.g. "4G".
    public var mem: String?
    /// `--cpus-per-task`; also each trainer's `--threads`.
    public var cpusPerTask = 1
    /// `--time` per task, e.g. "2:00:00".
    public var time: String?
    /// At most this many tasks at once (`--array=0-N%throttle`).
    public var throttle: Int?
    /// A task preempted before its time limit requeues itself while SLURM_RESTART_COUNT is below this.
    public var maxRequeues = 3
    /// SIGUSR1 reaches the task this many seconds before its time limit (`--signal=B:USR1@s`).
    public var signalSeconds = 60
    /// Extra `#SBATCH` lines, e.g. "--qos=long" or "#SBATCH --constraint=avx512".
    public var extraLines: [String] = []

    /// Default options: 1 CPU per task, 3 requeues, USR1 60 s before the limit.
    public init() {}

    /// Checks the values (names the option and what was expected).
    public func validate() throws {
        if cpusPerTask < 1 { throw SweepRunnerError("--cpus-per-task must be at least 1, got \(cpusPerTask)") }
        if let t = throttle, t < 1 { throw SweepRunnerError("--throttle must be at least 1, got \(t)") }
        if maxRequeues < 0 { throw SweepRunnerError("--max-requeues must be 0 or more, got \(maxRequeues)") }
        if signalSeconds < 1 { throw SweepRunnerError("--signal-seconds must be at least 1, got \(signalSeconds)") }
        // Each value becomes an #SBATCH line verbatim, so each must be what sbatch accepts
        // there — checked before anything of the sweep is written.
        let formats: [(String, String?, String, String)] = [
            ("--partition", partition, #"^[A-Za-z0-9_.\-]+(,[A-Za-z0-9_.\-]+)*$"#, "a partition name or a comma-separated list (letters, digits, _ . -)"),
            ("--account", account, #"^[A-Za-z0-9_.\-]+$"#, "an account name (letters, digits, _ . -)"),
            ("--mem", mem, #"^[0-9]+[KMGTkmgt]?$"#, "a size such as 4000, 4G or 512M"),
            ("--time", time, #"^([0-9]+-[0-9]+(:[0-9]+){0,2}|[0-9]+(:[0-9]+){0,2}|UNLIMITED|INFINITE)$"#,
             "minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS (e.g. 2:00:00)"),
        ]
        for (name, value, pattern, expected) in formats {
            if let v = value, v.range(of: pattern, options: .regularExpression) == nil {
                throw SweepRunnerError("\(name) \"\(v)\" is not valid: expected \(expected)")
            }
        }
        for line in extraLines where line.contains(where: { $0.isNewline || ($0.asciiValue.map { $0 < 0x20 } ?? false) }) {
            throw SweepRunnerError("--sbatch-line \"\(line)\" must be a single line without control characters")
        }
    }
}

/// One submission, as `SWEEP_DIR/slurm/jobs.json` lists it.
public struct SlurmJobRecord: Codable, Equatable, Sendable {
    /// The array's job id (`sbatch --parsable`).
    public var jobID: String
    /// When it was submitted (ISO 8601).
    public var submitted: String
    /// The run id of each array task, by task index.
    public var tasks: [String]

    enum CodingKeys: String, CodingKey { case jobID = "job_id", submitted, tasks }

    /// Creates a record.
    public init(jobID: String, submitted: String, tasks: [String]) {
        self.jobID = jobID
        self.submitted = submitted
        self.tasks = tasks
    }
}

/// `SWEEP_DIR/slurm/jobs.json`.
struct SlurmJobsFile: Codable {
    var jobs: [SlurmJobRecord]

    static func path(_ sweepDirectory: String) -> String {
        ((sweepDirectory as NSString).appendingPathComponent("slurm") as NSString).appendingPathComponent("jobs.json")
    }

    static func load(_ sweepDirectory: String) throws -> SlurmJobsFile {
        let p = path(sweepDirectory)
        guard FileManager.default.fileExists(atPath: p) else { return SlurmJobsFile(jobs: []) }
        return try JSONFile.decode(SlurmJobsFile.self, file: URL(fileURLWithPath: p), what: "Slurm job list")
    }

    func write(_ sweepDirectory: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var data = try encoder.encode(self)
        data.append(0x0A)
        try FS.writeAtomically(data, to: Self.path(sweepDirectory))
    }
}

/// Submits a sweep's unfinished runs as one Slurm job array.
///
/// Each task runs `decoupled train configs/<id>.toml --run-dir runs/<id> --resume`, so a
/// requeued task resumes from its own checkpoint. The trainer runs as a child of the batch
/// script, which passes Slurm's signals on to it: SIGTERM (requeue, preemption, scancel) and
/// SIGUSR1 (`--signal=B:USR1@s`, before the time limit) both make it checkpoint and exit 75.
/// After a SIGTERM Slurm itself requeues (or cancels) the task; otherwise (time limit ahead)
/// the script requeues it with `scontrol requeue` while SLURM_RESTART_COUNT < maxRequeues.
/// Every start and end is a line in `slurm/events.jsonl`.
public struct SlurmBackend {
    /// The plan whose runs are submitted (its sweep directory must have been written).
    public let plan: SweepPlan
    /// sbatch options.
    public let options: SlurmOptions
    /// The `decoupled` executable the tasks run (an absolute path the compute nodes can reach).
    public let executable: String
    /// Also submit failed and diverged runs.
    public var retryFailed = false
    /// The environment of sbatch/squeue/scontrol (SLURM_CONF for a test cluster); sbatch
    /// passes it on to the tasks.
    public var environment: [String: String] = ProcessInfo.processInfo.environment

    /// A backend for `plan`; `executable` nil: this process's own executable.
    public init(plan: SweepPlan, options: SlurmOptions, executable: String? = nil) throws {
        try options.validate()
        self.plan = plan
        self.options = options
        self.executable = try executable ?? LocalRunner.currentExecutable()
    }

    /// What `submit` wrote and did.
    public struct Submission: Sendable {
        /// The batch script's text (`slurm/job.sh`).
        public let script: String
        /// `SWEEP_DIR/slurm/job.sh`.
        public let scriptPath: String
        /// The run id of each task, by task index (`slurm/tasks.txt`); empty: nothing to submit.
        public let tasks: [String]
        /// The job id, nil for a dry run or when nothing was submitted.
        public let jobID: String?
        /// Runs completed before this submission.
        public let completed: Int
        /// Failed or diverged runs left out (no `retryFailed`).
        public let failedNotRetried: Int
        /// Runs left out because a process on this machine holds their run lock.
        public let busy: Int
    }

    /// `SWEEP_DIR/slurm/<name>`.
    func slurmPath(_ name: String) -> String {
        ((plan.directory as NSString).appendingPathComponent("slurm") as NSString).appendingPathComponent(name)
    }

    /// Writes `slurm/job.sh` and `slurm/tasks.txt` for the unfinished runs and, unless
    /// `dryRun`, submits them with sbatch and appends the job to `slurm/jobs.json`. Refused
    /// while an earlier job of this sweep is still queued or running (its tasks read tasks.txt).
    public func submit(dryRun: Bool) throws -> Submission {
        try FS.createDirectory(slurmPath(""))
        let lock = try DirectoryLock(plan.directory, kind: .sweep, purpose: "submitting")
        defer { lock.release() }
        var jobs = try SlurmJobsFile.load(plan.directory)
        if let job = try SlurmQueue.activeJobs(sweepDirectory: plan.directory, environment: environment).first {
            throw SweepRunnerError("job \(job) of this sweep is still queued or running (squeue -j \(job)); wait for it to end or `scancel \(job)`, then rerun (its tasks read \(slurmPath("tasks.txt")), which a new submission would rewrite)")
        }

        var tasks: [String] = []
        var completed = 0, failedNotRetried = 0, busy = 0
        for e in plan.entries {
            let state = SweepRunState.read(runDirectory: e.runDirectory)
            if state.lockHolder != nil { busy += 1; continue }
            switch state.status {
            case .completed: completed += 1
            case .failed, .diverged: if retryFailed { tasks.append(e.id) } else { failedNotRetried += 1 }
            case nil, .preempted: tasks.append(e.id)
            }
        }
        let script = try self.script(taskCount: tasks.count)
        let scriptPath = slurmPath("job.sh")
        guard !tasks.isEmpty else {
            return Submission(script: script, scriptPath: scriptPath, tasks: [], jobID: nil, completed: completed,
                              failedNotRetried: failedNotRetried, busy: busy)
        }
        try FS.writeAtomically(tasks.joined(separator: "\n") + "\n", to: slurmPath("tasks.txt"))
        try FS.writeAtomically(script, to: scriptPath, mode: 0o755)  // executable from its creation: no chmod by name
        for id in tasks {
            try FS.createDirectory((plan.directory as NSString).appendingPathComponent("runs/\(id)"))
        }
        if dryRun {
            return Submission(script: script, scriptPath: scriptPath, tasks: tasks, jobID: nil, completed: completed,
                              failedNotRetried: failedNotRetried, busy: busy)
        }

        var env = environment
        env["DECOUPLED_STOP_WITH_PARENT"] = nil  // the script sets it for its trainer
        let result = try SlurmQueue.run(["sbatch", "--parsable", scriptPath], environment: env)
        guard result.status == 0 else {
            throw SweepRunnerError("sbatch \(scriptPath) failed (\(result.status)): \(result.errorText)")
        }
        // "<id>" or "<id>;<cluster>" on multi-cluster setups.
        let jobID = String(result.output.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ";").first ?? "")
        guard !jobID.isEmpty, jobID.allSatisfy(\.isNumber) else {
            throw SweepRunnerError("sbatch printed \"\(result.output.trimmingCharacters(in: .whitespacesAndNewlines))\", expected a job id")
        }
        jobs.jobs.append(SlurmJobRecord(jobID: jobID, submitted: SweepFormat.timestamp(), tasks: tasks))
        try jobs.write(plan.directory)
        try RunnerLog(path: plan.path("runner.log")).append("slurm: submitted job \(jobID), \(tasks.count) tasks: \(tasks.joined(separator: " "))")
        return Submission(script: script, scriptPath: scriptPath, tasks: tasks, jobID: jobID, completed: completed,
                          failedNotRetried: failedNotRetried, busy: busy)
    }

    /// The batch script for `taskCount` tasks.
    public func script(taskCount: Int) throws -> String {
        let sweep = plan.directory
        let cwd = FileManager.default.currentDirectoryPath
        for (what, p) in [("the sweep directory", sweep), ("the working directory", cwd)] where p.contains(where: { $0.isWhitespace }) {
            throw SweepRunnerError("\(what) \(p) contains whitespace, which #SBATCH lines cannot hold; use a path without spaces")
        }
        var lines = [
            "#!/bin/bash",
            "# Generated by `decoupled sweep run --backend slurm` for the sweep \"\(plan.spec.name)\" (docs/sweeps.md).",
            "# Array task i trains the run on line i+1 of slurm/tasks.txt and resumes it after a requeue.",
            "#SBATCH --job-name=decoupled-\(plan.spec.name)",
            "#SBATCH --array=0-\(max(taskCount - 1, 0))" + (options.throttle.map { "%\($0)" } ?? ""),
            "#SBATCH --ntasks=1",
            "#SBATCH --cpus-per-task=\(options.cpusPerTask)",
            "#SBATCH --requeue",
            "#SBATCH --open-mode=append",
            "#SBATCH --signal=B:USR1@\(options.signalSeconds)",
            // The submitting directory: relative plugin paths are found from it, as locally.
            "#SBATCH --chdir=\(cwd)",
            "#SBATCH --output=\(sweep)/slurm/task-%A_%a.out",
        ]
        if let p = options.partition { lines.append("#SBATCH --partition=\(p)") }
        if let a = options.account { lines.append("#SBATCH --account=\(a)") }
        if let m = options.mem { lines.append("#SBATCH --mem=\(m)") }
        if let t = options.time { lines.append("#SBATCH --time=\(t)") }
        for l in options.extraLines {
            let t = l.trimmingCharacters(in: .whitespaces)
            lines.append(t.hasPrefix("#SBATCH") ? t : "#SBATCH \(t)")
        }
        lines.append(contentsOf: [
            "",
            "set -u",
            "SWEEP_DIR=\(shellQuote(sweep))",
            "DECOUPLED=\(shellQuote(executable))",
            "MAX_REQUEUES=\(options.maxRequeues)",
            "TASK=${SLURM_ARRAY_TASK_ID:?this is a job array script: submit it with sbatch}",
            "RUN_ID=$(sed -n \"$((TASK + 1))p\" \"$SWEEP_DIR/slurm/tasks.txt\")",
            "[ -n \"$RUN_ID\" ] || { echo \"error: no run for task $TASK in $SWEEP_DIR/slurm/tasks.txt\" >&2; exit 1; }",
            "RUN_DIR=$SWEEP_DIR/runs/$RUN_ID",
            "RESTARTS=${SLURM_RESTART_COUNT:-0}   # unset on the first run, 1, 2, ... after requeues",
            "STARTED=$(date +%s)",
            "event() {   # event NAME [OPTIONS]: one JSON line in slurm/events.jsonl",
            "    \"$DECOUPLED\" sweep event \"$SWEEP_DIR\" \"$@\" --run \"$RUN_ID\" --started-at \"$STARTED\" \\",
            "        || echo \"warning: could not record the event $1\" >&2",
            "}",
            "",
            "mkdir -p \"$RUN_DIR\"",
            "echo \"=== $(date -u +%Y-%m-%dT%H:%M:%SZ) task $TASK, job ${SLURM_JOB_ID:-?}, restart $RESTARTS, $(hostname): run $RUN_ID\"",
            "event start",
            "",
            "# The trainer is a child, not exec'd, so that this script can requeue the task and record",
            "# how it ended. --signal=B:USR1 (time limit ahead) reaches only this shell and SIGTERM",
            "# (requeue, preemption, scancel) reaches every process: pass both on; the trainer",
            "# checkpoints and exits 75 on either. DECOUPLED_STOP_WITH_PARENT: it also stops if this",
            "# shell is killed.",
            "child=\"\"",
            "caught=\"\"",
            "trap 'caught=USR1; kill -USR1 \"$child\" 2>/dev/null' USR1",
            "trap 'caught=TERM; kill -TERM \"$child\" 2>/dev/null' TERM",
            "trap 'caught=INT; kill -TERM \"$child\" 2>/dev/null' INT",
            "DECOUPLED_STOP_WITH_PARENT=$$ \"$DECOUPLED\" train \"$SWEEP_DIR/configs/$RUN_ID.toml\" --run-dir \"$RUN_DIR\" \\",
            "    --resume --quiet --threads \"${SLURM_CPUS_PER_TASK:-1}\" >>\"$RUN_DIR/train.log\" 2>&1 &",
            "child=$!",
            "# A trapped signal ends `wait` early (status > 128) while the trainer runs on: wait again",
            "# until it has ended, then take its own status.",
            "while :; do",
            "    wait \"$child\"; rc=$?",
            "    kill -0 \"$child\" 2>/dev/null && continue",
            "    wait \"$child\" 2>/dev/null; r=$?; [ \"$r\" -ne 127 ] && rc=$r",
            "    break",
            "done",
            "",
            "case $rc in",
            "    0) event completed --exit-code 0 ;;",
            "    3) event diverged --exit-code 3 ;;",
            "    75)",
            "        if [ \"$caught\" = TERM ] || [ \"$caught\" = INT ]; then",
            "            # Slurm is ending this task (requeue, preemption, scancel); it requeues it itself if it should.",
            "            event preempted --exit-code 75 --signal \"SIG$caught\"",
            "        elif [ \"$RESTARTS\" -ge \"$MAX_REQUEUES\" ]; then",
            "            event preempted --exit-code 75 ${caught:+--signal SIG$caught} \\",
            "                --message \"not requeued: restart $RESTARTS of at most $MAX_REQUEUES; rerun decoupled sweep run to continue\"",
            "        else",
            "            # The time limit is near (USR1): continue in a new allocation.",
            "            event preempted --exit-code 75 ${caught:+--signal SIG$caught}",
            "            event requeued --exit-code 75 --message \"scontrol requeue ${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID} (restart $((RESTARTS + 1)) of at most $MAX_REQUEUES)\"",
            "            scontrol requeue \"${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}\" \\",
            "                || event failed --exit-code 75 --message \"scontrol requeue failed; the run stays preempted: rerun decoupled sweep run\"",
            "        fi ;;",
            "    *) event failed --exit-code \"$rc\" ;;",
            "esac",
            "exit \"$rc\"",
        ])
        return lines.joined(separator: "\n") + "\n"
    }
}

/// Single-quotes a string for bash.
func shellQuote(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }

// MARK: - the queue

/// The state of one array task as `scontrol show job` reports it.
public struct SlurmTaskState: Equatable, Sendable {
    /// "<array id>_<task>".
    public var job: String
    /// PENDING, RUNNING, COMPLETED, FAILED, TIMEOUT, CANCELLED, ...
    public var state: String
    /// Why it is pending (Priority, JobArrayTaskLimit, BeginTime, ...), "None" otherwise.
    public var reason: String
    /// Times it was requeued (SLURM_RESTART_COUNT of its current run).
    public var restarts: Int
    /// "<exit code>:<signal>".
    public var exitCode: String
}

/// Reading Slurm's view of a sweep's jobs with the standard clients (no accounting database
/// is assumed: `sacct` needs slurmdbd).
public enum SlurmQueue {
    /// Output of a client command.
    struct CommandResult {
        var status: Int32
        var output: String
        var errorText: String
    }

    /// Runs a Slurm client (found on PATH, or in /usr/bin, /usr/sbin) through the one process
    /// runner, with a time limit and its output captured.
    static func run(_ arguments: [String], environment: [String: String], timeout: TimeInterval = 30) throws -> CommandResult {
        let name = arguments[0]
        let searchPath = (environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").map(String.init) + ["/usr/bin", "/usr/sbin", "/usr/local/bin"]
        guard let exe = searchPath.map({ ($0 as NSString).appendingPathComponent(name) })
            .first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw SweepRunnerError("\(name) is not installed (not on PATH): the Slurm backend needs the Slurm client commands (Debian: slurm-client)")
        }
        do {
            let r = try Subprocess.run(exe, Array(arguments.dropFirst()),
                                       options: .init(environment: environment, output: .capture, timeout: timeout))
            return CommandResult(status: r.status, output: r.stdout, errorText: r.stderr.trimmingCharacters(in: .whitespacesAndNewlines))
        } catch SubprocessError.timedOut {
            throw SweepRunnerError("\(arguments.joined(separator: " ")) did not answer within \(Int(timeout)) s (is slurmctld up? SLURM_CONF=\(environment["SLURM_CONF"] ?? "unset"))")
        } catch let e as SubprocessError {
            throw SweepRunnerError(e.description)
        }
    }

    /// Whether any task of the job is still pending, running, suspended or completing.
    static func isActive(jobID: String, environment: [String: String]) throws -> Bool {
        let r = try run(["squeue", "-h", "-j", jobID, "-o", "%i"], environment: environment)
        if r.status != 0 {
            // Finished long enough ago for the controller to have forgotten it.
            if r.errorText.contains("Invalid job id") { return false }
            throw SweepRunnerError("squeue -j \(jobID) failed (\(r.status)): \(r.errorText)")
        }
        return !r.output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
    }

    /// The jobs of `slurm/jobs.json` that still have tasks queued or running.
    static func activeJobs(sweepDirectory: String, environment: [String: String]) throws -> [String] {
        try SlurmJobsFile.load(sweepDirectory).jobs.map(\.jobID).filter { try isActive(jobID: $0, environment: environment) }
    }

    /// The state of every task of a job, by task index; nil when Slurm no longer knows the job.
    static func tasks(jobID: String, environment: [String: String]) throws -> [Int: SlurmTaskState]? {
        let r = try run(["scontrol", "show", "job", "-o", jobID], environment: environment)
        if r.status != 0 {
            if r.errorText.contains("Invalid job id") { return nil }
            throw SweepRunnerError("scontrol show job \(jobID) failed (\(r.status)): \(r.errorText)")
        }
        var out: [Int: SlurmTaskState] = [:]
        for line in r.output.split(separator: "\n") {
            var fields: [String: String] = [:]
            for token in line.split(separator: " ") {
                guard let eq = token.firstIndex(of: "=") else { continue }
                let k = String(token[..<eq])
                if fields[k] == nil { fields[k] = String(token[token.index(after: eq)...]) }
            }
            guard let ids = fields["ArrayTaskId"] else { continue }
            let state = SlurmTaskState(job: "", state: fields["JobState"] ?? "?", reason: fields["Reason"] ?? "",
                                       restarts: Int(fields["Restarts"] ?? "") ?? 0, exitCode: fields["ExitCode"] ?? "")
            // Pending tasks come as one line: "ArrayTaskId=2-5%2" or "1,3-4".
            let list = ids.split(separator: "%").first.map(String.init) ?? ids
            for part in list.split(separator: ",") {
                let bounds = part.split(separator: "-").compactMap { Int($0) }
                guard let lo = bounds.first else { continue }
                for i in lo...(bounds.count > 1 ? bounds[1] : lo) {
                    var s = state
                    s.job = "\(fields["ArrayJobId"] ?? jobID)_\(i)"
                    out[i] = s
                }
            }
        }
        return out
    }
}

// MARK: - events

/// One line of `SWEEP_DIR/slurm/events.jsonl`: something that happened to an array task.
public struct SlurmEvent: Codable, Equatable, Sendable {
    /// start, completed, diverged, preempted, requeued or failed.
    public var event: String
    /// When (ISO 8601, UTC).
    public var time: String
    /// The run id.
    public var run: String
    /// "<array id>_<task>".
    public var job: String?
    /// The task's own job id (SLURM_JOB_ID).
    public var jobID: String?
    /// The array task index.
    public var task: Int?
    /// SLURM_RESTART_COUNT (0 on the first run).
    public var restart: Int?
    /// The node.
    public var node: String?
    /// The trainer's exit status (128 + n: killed by signal n).
    public var exitCode: Int?
    /// The signal the task received (SIGTERM, SIGUSR1).
    public var signal: String?
    /// The run's summary.json status after the event (absent before its first summary).
    public var status: String?
    /// The run's summary.json reason after the event.
    public var reason: String?
    /// Steps done, from summary.json.
    public var step: Int?
    /// Extra words from the script.
    public var message: String?

    /// The events the batch script records.
    public static let kinds = ["start", "completed", "diverged", "preempted", "requeued", "failed"]

    enum CodingKeys: String, CodingKey {
        case event, time, run, job, task, restart, node, signal, status, reason, step, message
        case jobID = "job_id", exitCode = "exit_code"
    }

    /// Appends an event for `run` to the sweep's events.jsonl, with the task's identity taken
    /// from the SLURM_* variables of `environment` and the run's state from its summary.json.
    /// A `failed` event first leaves a failure summary in the run directory when the trainer
    /// could not write one since `startedAt` (so status and reports show the reason). A
    /// `completed` event for a run whose summary.json does not say completed is recorded as
    /// `failed` (a trainer that exited 0 before the end).
    @discardableResult
    public static func record(sweepDirectory: String, event: String, run: String, exitCode: Int?, signal: String?,
                              message: String?, startedAt: Date?, environment: [String: String]) throws -> SlurmEvent {
        guard kinds.contains(event) else {
            throw SweepRunnerError("unknown event \"\(event)\"; expected one of \(kinds.joined(separator: ", "))")
        }
        guard !run.isEmpty, run.allSatisfy({ $0.isHexDigit }) else {
            throw SweepRunnerError("--run \"\(run)\" is not a run id (12 hex digits)")
        }
        let runDirectory = (sweepDirectory as NSString).appendingPathComponent("runs/\(run)")
        var event = event, failure: String?
        // The script says `completed` for exit status 0; only a completed summary.json makes it so.
        if event == "completed", let why = SweepFailureRecord.incompleteSuccess(SweepRunState.read(runDirectory: runDirectory)) {
            event = "failed"
            failure = why
        }
        if event == "failed", let code = exitCode, code != StopSignals.preemptedExitCode {
            let exit: ChildExit = code > 128 ? .signaled(Int32(code - 128)) : .exited(Int32(code))
            SweepFailureRecord.write(runDirectory: runDirectory, exit: exit, since: startedAt ?? .distantPast,
                                     logFile: (runDirectory as NSString).appendingPathComponent("train.log"), logOffset: 0,
                                     reason: failure)
        }
        let state = SweepRunState.read(runDirectory: runDirectory)
        let arrayJob = environment["SLURM_ARRAY_JOB_ID"], task = environment["SLURM_ARRAY_TASK_ID"]
        var e = SlurmEvent(event: event, time: SweepFormat.timestamp(), run: run)
        e.job = arrayJob.flatMap { a in task.map { "\(a)_\($0)" } }
        e.jobID = environment["SLURM_JOB_ID"]
        e.task = task.flatMap { Int($0) }
        e.restart = Int(environment["SLURM_RESTART_COUNT"] ?? "0") ?? 0
        e.node = environment["SLURMD_NODENAME"] ?? ProcessInfo.processInfo.hostName
        e.exitCode = exitCode
        e.signal = signal.flatMap { $0.isEmpty ? nil : $0 }
        if FileManager.default.fileExists(atPath: (runDirectory as NSString).appendingPathComponent("summary.json")) {
            e.status = state.unreadable == nil ? state.status.label : nil
            e.reason = state.reason
            e.step = state.step
        }
        e.message = message
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let line = String(decoding: try encoder.encode(e), as: UTF8.self) + "\n"
        let dir = (sweepDirectory as NSString).appendingPathComponent("slurm")
        try FS.createDirectory(dir)
        try FS.append(line, to: (dir as NSString).appendingPathComponent("events.jsonl"))
        return e
    }

    /// The events of a sweep, oldest first; lines that cannot be read are skipped and named in `problems`.
    public static func load(sweepDirectory: String) -> (events: [SlurmEvent], problems: [String]) {
        let path = ((sweepDirectory as NSString).appendingPathComponent("slurm") as NSString).appendingPathComponent("events.jsonl")
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return ([], []) }
        var events: [SlurmEvent] = [], problems: [String] = []
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where !line.isEmpty {
            do { events.append(try JSONFile.decode(SlurmEvent.self, data: Data(line.utf8), file: path, line: i + 1)) }
            catch { problems.append("\(error)") }
        }
        return (events, problems)
    }

    init(event: String, time: String, run: String) {
        self.event = event
        self.time = time
        self.run = run
    }
}
