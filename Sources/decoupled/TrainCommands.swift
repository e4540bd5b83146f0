import ArgumentParser
import DecoupledCheckpoint
import DecoupledCore
import DecoupledHDF5
import DecoupledTraining
import Foundation

/// Options shared by `train` and `resume`.
struct RunOptions: ParsableArguments {
    @Option(name: .customLong("set"), help: ArgumentHelp("Override a config key, e.g. --set optimizer.lr=3e-4 (repeatable).",
                                                         valueName: "key=value"))
    var overrides: [String] = []

    @Option(help: "Worker threads for the model and the update (default: the config's train.threads; 0 = active cores). Results do not depend on it.")
    var threads: Int?

    @Flag(help: "Resume even when the config differs from the run directory's config.toml (the differences are printed).")
    var allowConfigChange = false

    @Flag(help: "No progress output (metrics files and summary.json are still written).")
    var quiet = false

    func launch(_ request: inout RunLauncher.Request) throws -> Never {
        request.overrides = try overrides.map(ConfigOverride.init)
        request.allowConfigChange = allowConfigChange
        request.threads = threads
        let progress = ProgressReporter(quiet: quiet)
        StopSignals.install()
        let trainer = try RunLauncher.prepare(request, registry: loadRegistry(),
                                              kernels: try KernelPath.fromEnvironment(ProcessInfo.processInfo.environment),
                                              progress: progress)
        progress.line("run directory: \(trainer.runDirectory)")
        let summary = try trainer.run()
        print(ProgressReporter.describe(summary))
        print("summary: \((trainer.runDirectory as NSString).appendingPathComponent("summary.json"))")
        switch summary.status {
        case .completed: Foundation.exit(0)
        case .preempted: Foundation.exit(StopSignals.preemptedExitCode)
        case .diverged: Foundation.exit(StopSignals.divergedExitCode)
        case .failed: Foundation.exit(1)
        }
    }
}

/// One paragraph: ArgumentParser wraps it to the terminal (a newline here would break a line early).
let exitCodesHelp = """
Exit status: 0 finished; 75 stopped by SIGINT/SIGTERM/SIGUSR1 after writing a checkpoint \
(resumable: run `decoupled resume RUN_DIR`); 3 stopped on NaN/Inf (nan_policy); 1 error \
(the message names the file, key or value); 130 a second SIGINT (the last checkpoint is intact).
"""

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a model from an experiment config into a run directory.",
        discussion: """
        Streams the [data] file in minibatches, trains the [model] with the [optimizer], \
        [[regularizers]], [[groups]] and [schedule] of CONFIG (docs/config.md), evaluates on the test \
        split every train.eval_every epochs, and writes config.toml, metrics.jsonl, metrics.csv, \
        decay_audit.txt, checkpoints/ and summary.json into the run directory \
        (docs/run-directory.md). A progress bar is drawn on a terminal; plain lines otherwise.

        A relative data.file is looked up in the working directory, next to CONFIG, then in the \
        shipped files (share/decoupled of the installation, or the checkout of a development \
        build). CONFIG itself, when not found, is looked up in the shipped files too, so the \
        examples below run from any directory.

        \(exitCodesHelp)

        Examples:
          decoupled train examples/fashion-mlp-adamw.toml
          decoupled train examples/fashion-mlp-adamw.toml --set train.epochs=5
          decoupled train examples/fashion-mlp-sgdw.toml --set optimizer.lr=0.05
          decoupled train examples/fashion-mlp-sgdw.toml --run-dir runs/sgdw
          decoupled train examples/fashion-mlp-sgdw.toml --run-dir runs/sgdw --resume
        """)

    @Argument(help: "The experiment config (TOML).")
    var config: String

    @Option(help: "The run directory (default: runs/<name>-<date-time>).")
    var runDir: String?

    @Flag(help: "Continue the run in --run-dir from its newest valid checkpoint (or start it if it has none).")
    var resume = false

    @OptionGroup var options: RunOptions

    func validate() throws {
        if resume && runDir == nil { throw ValidationError("--resume needs --run-dir: the run directory to continue") }
    }

    func run() throws {
        var request = RunLauncher.Request(configPath: InstallLayout.userFile(config), runDirectory: runDir)
        request.resume = resume
        try options.launch(&request)
    }
}

struct ResumeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resume",
        abstract: "Continue a run from its newest valid checkpoint.",
        discussion: """
        Reads RUN_DIR/config.toml, loads the newest checkpoint that passes its checksums (a \
        corrupt one is reported and skipped), and continues bit-identically: same parameters, \
        optimizer state, data order and metrics as a run that was never interrupted, with any \
        thread count.

        \(exitCodesHelp)

        Examples:
          decoupled resume runs/fashion-mlp-adamw-20261121-101500
          decoupled resume runs/x --threads 1
          decoupled resume runs/x --set train.epochs=30 --allow-config-change
        """)

    @Argument(help: "The run directory.")
    var runDir: String

    @OptionGroup var options: RunOptions

    func run() throws {
        var request = RunLauncher.Request(configPath: nil, runDirectory: runDir)
        request.resume = true
        try options.launch(&request)
    }
}

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate a run's checkpoint on a data split.",
        discussion: """
        Loads RUN_DIR/config.toml and a checkpoint (default: the newest valid one; --best: the one \
        with the best test metric; --checkpoint FILE: that file), and prints the mean data loss and \
        accuracy over the whole split. --set data.file=OTHER.h5 evaluates on other data with the \
        same features and classes.

        Examples:
          decoupled eval runs/fashion-mlp-adamw-20261121-101500
          decoupled eval runs/x --best --split train
          decoupled eval runs/x --checkpoint runs/x/checkpoints/ckpt-0000004690.h5
          decoupled eval runs/x --best --json
        """)

    @Argument(help: "The run directory.")
    var runDir: String

    @Option(help: "A checkpoint file (default: the newest valid one in RUN_DIR/checkpoints).")
    var checkpoint: String?

    @Flag(help: "Use the checkpoint marked best.")
    var best = false

    @Option(help: "Split: test, validation (the rows data.validation holds out) or train (the rows the run trains on).")
    var split: String = "test"

    @Option(name: .customLong("set"), help: ArgumentHelp("Override a config key, e.g. data.file=... (repeatable).", valueName: "key=value"))
    var overrides: [String] = []

    @Flag(help: "Print one JSON object.")
    var json = false

    func run() throws {
        // `validation` is not a file split: it is the rows the config holds out of the training split.
        guard split == "validation" || DatasetSplit(rawValue: split) != nil else {
            throw ValidationError("--split: expected test, validation or train, got '\(split)'")
        }
        let which = DatasetSplit(rawValue: split)
        let config = try ExperimentConfig.load(path: (runDir as NSString).appendingPathComponent("config.toml"),
                                               overrides: try overrides.map(ConfigOverride.init))
        let session = try TrainingSession(config: config, registry: loadRegistry(),
                                          kernels: try KernelPath.fromEnvironment(ProcessInfo.processInfo.environment))
        let store = try CheckpointStore(runDirectory: runDir, readOnly: true)
        let path: String
        if let checkpoint {
            path = checkpoint
        } else if best {
            guard let b = store.list().first(where: { $0.isBest && $0.isValid }) else {
                throw ValidationError("\(runDir): no valid checkpoint is marked best")
            }
            path = b.path
        } else {
            guard let newest = try store.newestValid() else { throw ValidationError("\(runDir): no valid checkpoint in \(store.directory)") }
            for s in newest.skipped { FileHandle.standardError.write(Data("warning: skipped \(s.path): \(s.reason)\n".utf8)) }
            path = newest.path
        }
        let meta = try store.load(path, into: session.arena, slots: session.stateSlots)
        let r: BatchResult
        if let which {
            r = try session.evaluate(which)
        } else {
            guard let v = try session.evaluateValidation() else {
                throw ValidationError("--split validation: the run's config holds out no validation split (data.validation)")
            }
            r = v
        }
        if json {
            struct Output: Encodable { var checkpoint: String, step: Int, split: String, loss: Double, accuracy: Double?, samples: Int }
            let encoder = JSONEncoder()
            // Paths stay readable ("runs/x/checkpoints/…", not "runs\/x\/…"); a NaN loss is "NaN", as in metrics.jsonl.
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
            let output = Output(checkpoint: path, step: meta.step, split: split, loss: r.loss, accuracy: r.accuracy, samples: r.count)
            print(String(decoding: try encoder.encode(output), as: UTF8.self))
        } else {
            print("\(path) (step \(meta.step)): \(split) loss \(String(format: "%.4f", r.loss))"
                  + (r.accuracy.map { String(format: ", accuracy %.4f", $0) } ?? "") + " over \(r.count) samples")
        }
    }
}
