import ArgumentParser
import DecoupledCore
import DecoupledExperiments
import DecoupledTraining
import Foundation

// The sweep commands parse arguments and call DecoupledExperiments, where the logic lives
// (SweepSpec, SweepPlan, LocalRunner, SlurmBackend, SweepStatus; docs/sweeps.md).

/// `decoupled sweep …`
struct SweepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweep",
        abstract: "Run a grid of experiments (method × lr × decay × seed) locally or on Slurm, and follow it.",
        discussion: """
        A sweep spec (TOML, docs/sweeps.md) names a base config, methods (optimizer and \
        regularizer pairs), a learning-rate axis, a decay axis and seeds. `sweep run` expands it \
        into SWEEP_DIR (manifest.json, configs/<id>.toml, runs/<id>/) and trains every run that is \
        not finished; rerunning it continues where it stopped.

        Examples:
          decoupled sweep run examples/sweep-adamw-vs-l2.toml --jobs 2
          decoupled sweep run study.toml --dir sweeps/study --backend slurm
          decoupled sweep status sweeps/study
        """,
        subcommands: [SweepRunCommand.self, SweepStatusCommand.self, SweepEventCommand.self])
}

/// `decoupled sweep run SPEC`
struct SweepRunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Expand a sweep spec and train its unfinished runs (local processes or a Slurm job array).",
        discussion: """
        Completed runs are skipped; preempted or interrupted ones resume from their newest \
        checkpoint, bit-identically; failed and diverged ones are retried only with \
        --retry-failed. An edited spec adds its new runs to the manifest and keeps the old ones. \
        SPEC, when not found, is looked up in the shipped files too (examples/...).

        --backend local: --jobs trainer processes at a time, each `decoupled train \
        configs/<id>.toml --run-dir runs/<id> --resume --quiet --threads T`. On SIGINT/SIGTERM \
        the trainers checkpoint and stop (a second Ctrl-C exits at once); if the runner is killed, \
        its trainers stop by themselves.

        --backend slurm: writes SWEEP_DIR/slurm/job.sh (one array task per unfinished run) and \
        submits it with sbatch. Tasks requeue themselves before the time limit (SIGUSR1 \
        --signal-seconds before it) up to --max-requeues times and resume from their checkpoint; \
        preemption and `scontrol requeue` resume the same way.

        Exit status: 0 every run completed (local) or the job was submitted (slurm); 75 stopped \
        by a signal or runs left unfinished (rerun the same command to continue); 3 the sweep \
        ended but some runs failed or diverged; 1 error (the message names the file, key or value).

        Examples:
          decoupled sweep run study.toml --jobs 4
          decoupled sweep run study.toml --jobs 2 --threads-per-run 1 --retry-failed
          decoupled sweep run study.toml --backend slurm --partition cpu \\
              --cpus-per-task 4 --time 1:00:00 --throttle 20
          decoupled sweep run study.toml --backend slurm --sbatch-line "--qos=long" \\
              --dry-run
        """)

    @Argument(help: "The sweep spec (TOML).")
    var spec: String

    @Option(help: "The sweep directory (default: sweeps/<name>).")
    var dir: String?

    @Option(help: "local or slurm.")
    var backend: String = "local"

    @Option(help: "local: trainer processes at a time.")
    var jobs: Int = 1

    @Option(help: "local: --threads of each trainer (default: max(1, cores / jobs)).")
    var threadsPerRun: Int?

    @Flag(help: "Also rerun failed and diverged runs (from their newest checkpoint).")
    var retryFailed = false

    @Flag(help: "Write the sweep directory (and for slurm the job script) and print what would run; start nothing.")
    var dryRun = false

    @Option(help: "slurm: --partition.")
    var partition: String?

    @Option(help: "slurm: --account.")
    var account: String?

    @Option(help: "slurm: --mem per task, e.g. 4G.")
    var mem: String?

    @Option(help: "slurm: --cpus-per-task (also each trainer's --threads).")
    var cpusPerTask: Int = 1

    @Option(help: "slurm: --time per task, e.g. 2:00:00.")
    var time: String?

    @Option(help: "slurm: at most this many tasks at once (--array=...%N).")
    var throttle: Int?

    @Option(help: "slurm: requeues of a task before its time limit, at most (SLURM_RESTART_COUNT).")
    var maxRequeues: Int = 3

    @Option(help: "slurm: SIGUSR1 this many seconds before the time limit (checkpoint and requeue).")
    var signalSeconds: Int = 60

    // .unconditional: the value itself starts with dashes ("--qos=long").
    @Option(name: .customLong("sbatch-line"), parsing: .unconditionalSingleValue, help: ArgumentHelp("slurm: an extra #SBATCH line, e.g. \"--qos=long\" (repeatable).", valueName: "line"))
    var sbatchLines: [String] = []

    func validate() throws {
        guard ["local", "slurm"].contains(backend) else { throw ValidationError("--backend must be local or slurm, got '\(backend)'") }
        if jobs < 1 { throw ValidationError("--jobs must be at least 1, got \(jobs)") }
        if let t = threadsPerRun, t < 1 { throw ValidationError("--threads-per-run must be at least 1, got \(t)") }
        // Before the sweep directory is planned and written: a bad option must leave no trace.
        if backend == "slurm" {
            do { try slurmOptions().validate() } catch { throw ValidationError("\(error)") }
        }
    }

    func slurmOptions() -> SlurmOptions {
        var options = SlurmOptions()
        options.partition = partition
        options.account = account
        options.mem = mem
        options.cpusPerTask = cpusPerTask
        options.time = time
        options.throttle = throttle
        options.maxRequeues = maxRequeues
        options.signalSeconds = signalSeconds
        options.extraLines = sbatchLines
        return options
    }

    func run() throws {
        let sweepSpec = try SweepSpec.load(path: InstallLayout.userFile(spec))
        let plan = try SweepPlan(spec: sweepSpec, sweepDirectory: dir ?? SweepPlan.defaultDirectory(for: sweepSpec),
                                 registry: loadRegistry())
        if backend == "slurm" { try runSlurm(plan) } else { try runLocal(plan) }
    }

    func runLocal(_ plan: SweepPlan) throws {
        let runner = try LocalRunner(plan: plan, jobs: jobs, threadsPerRun: threadsPerRun)
        runner.retryFailed = retryFailed
        if dryRun {
            print("sweep \(plan.spec.name): \(plan.entries.count) runs in \(plan.directory) (dry run: nothing started)")
            for e in plan.entries { print("  \(e.id)  \(e.label)") }
            return
        }
        let outcome = try runner.run { line in
            print(line)
            fflush(stdout)
        }
        if outcome.exitCode != 0 { throw ExitCode(outcome.exitCode) }
    }

    func runSlurm(_ plan: SweepPlan) throws {
        var backend = try SlurmBackend(plan: plan, options: slurmOptions())
        backend.retryFailed = retryFailed
        let s = try backend.submit(dryRun: dryRun)
        var notes: [String] = []
        if s.completed > 0 { notes.append("\(s.completed) completed") }
        if s.failedNotRetried > 0 { notes.append("\(s.failedNotRetried) failed or diverged (not retried without --retry-failed)") }
        if s.busy > 0 { notes.append("\(s.busy) being written by processes on this machine") }
        let left = notes.isEmpty ? "" : " (\(notes.joined(separator: ", ")))"
        if s.tasks.isEmpty {
            print("sweep \(plan.spec.name): nothing to submit: \(plan.entries.count) runs\(left)")
            if s.failedNotRetried > 0 { throw ExitCode(3) }
            return
        }
        if dryRun {
            print(s.script, terminator: "")
            print("# dry run: \(s.tasks.count) tasks written to \(s.scriptPath) and slurm/tasks.txt\(left); submit with: sbatch \(s.scriptPath)")
            return
        }
        print("sweep \(plan.spec.name): submitted job \(s.jobID!) with \(s.tasks.count) tasks\(left)")
        print("script: \(s.scriptPath); follow with: decoupled sweep status \(plan.directory)")
    }
}

/// `decoupled sweep status SWEEP_DIR`
struct SweepStatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show where every run of a sweep stands (and its Slurm tasks and events).",
        discussion: """
        Counts runs pending (not started or preempted), running (its run.lock is held, or its \
        Slurm task runs), done and failed (failed or diverged), then one line per run: status, \
        method, lr, decay, seed, final test accuracy, step, reason. For Slurm sweeps also each \
        run's array task and state (scontrol), the jobs and the latest task events.

        Examples:
          decoupled sweep status sweeps/study
        """)

    @Argument(help: "The sweep directory (holds manifest.json).")
    var sweepDir: String

    func run() throws {
        print(try SweepStatus.load(sweepDirectory: sweepDir).render(), terminator: "")
    }
}

/// `decoupled sweep event` (used by the Slurm job script, hidden from help).
struct SweepEventCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "event",
        abstract: "Record a Slurm task event in SWEEP_DIR/slurm/events.jsonl (used by slurm/job.sh).",
        shouldDisplay: false)

    @Argument(help: "The sweep directory.")
    var sweepDir: String

    @Argument(help: "start, completed, diverged, preempted, requeued or failed.")
    var event: String

    @Option(name: .customLong("run"), help: "The run id.")
    var runID: String

    @Option(help: "The trainer's exit status.")
    var exitCode: Int?

    @Option(help: "The signal the task received.")
    var signal: String?

    @Option(help: "Extra words.")
    var message: String?

    @Option(help: "When the task started (seconds since 1970): a failed trainer's summary must be newer.")
    var startedAt: Double?

    func run() throws {
        try SlurmEvent.record(sweepDirectory: sweepDir, event: event, run: runID, exitCode: exitCode, signal: signal,
                              message: message, startedAt: startedAt.map { Date(timeIntervalSince1970: $0) },
                              environment: ProcessInfo.processInfo.environment)
    }
}
