import ArgumentParser
import DecoupledCore
import DecoupledSystem
import DecoupledTraining
import Foundation

struct BenchTrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Training samples/s (data + forward + backward + update) for 1..N threads, beside PyTorch.",
        discussion: """
        Times whole training steps of CONFIG's model on its data (default: the shipped \
        examples/fashion-mlp-adamw.toml, the Fashion-MNIST MLP 784-256-128-10 with AdamW, batch \
        128, on the full set when `make data` made it, else the shipped subset). With --torch \
        PYTHON, the same MLP, batch and optimizer run in PyTorch (the shipped \
        scripts/bench/torch_train.py, data held in memory as tensors) for each thread count in the \
        same run, and the ratio is printed. Build in release mode.

        Examples:
          decoupled bench train
          decoupled bench train --threads 1,2 --torch /path/to/venv/bin/python
          decoupled bench train --config examples/fashion-mlp-sgdw.toml \\
              --set data.batch_size=256
        """)

    @Option(help: "Experiment config whose model, data and optimizer are timed (default: the shipped examples/fashion-mlp-adamw.toml).")
    var config: String?

    @Option(name: .customLong("set"), help: ArgumentHelp("Override a config key (repeatable).", valueName: "key=value"))
    var overrides: [String] = []

    @Option(help: "Thread counts, comma-separated (default: 1 up to the active cores).")
    var threads: String?

    @Option(help: "Timed seconds per measurement.")
    var seconds: Double = 3

    @Option(help: "A Python interpreter with torch and h5py: also measure PyTorch on the same data.")
    var torch: String?

    func run() throws {
        let configPath = try config.map { InstallLayout.userFile($0) } ?? InstallLayout.require("examples/fashion-mlp-adamw.toml", for: "the default --config")
        let sets = try overrides.map(ConfigOverride.init)
        var cfg = try ExperimentConfig.load(path: configPath, overrides: sets)
        // Without the full Fashion-MNIST (`make data`), the shipped subset stands in.
        if !overrides.contains(where: { $0.hasPrefix("data.file=") }), !FileManager.default.fileExists(atPath: cfg.data.resolvedFile) {
            cfg = try ExperimentConfig.load(path: configPath, overrides: sets + [try ConfigOverride("data.file=datasets/fashion-mnist-small.h5")])
        }
        let threadList = try threads.map { try parseList($0, "--threads") { Int($0).flatMap { $0 >= 1 ? $0 : nil } } }
            ?? Array(1...Sharder.activeCores)
        let registry = loadRegistry()
        let kernels = try KernelPath.fromEnvironment(ProcessInfo.processInfo.environment)
        print("model \(cfg.model.kind.rawValue) \(cfg.model.hidden), optimizer \(cfg.optimization.optimizer.name), batch \(cfg.data.batchSize), data \(cfg.data.resolvedFile), kernels \(kernels.name)")
        print(String(format: "%7@ %14@ %14@ %7@", "threads" as NSString, "ours samples/s" as NSString,
                     "torch samples/s" as NSString, "ratio" as NSString))
        for t in threadList {
            let ours = try TrainingBenchmark.run(config: cfg, registry: registry, kernels: kernels, threads: t, seconds: seconds)
            var theirs: Double?
            if let python = torch {
                theirs = try torchSamplesPerSecond(python: python, data: cfg.data.resolvedFile, threads: t,
                                                   batch: cfg.data.batchSize, hidden: cfg.model.hidden)
            }
            print(String(format: "%7d %14.0f %14@ %7@", t, ours.samplesPerSecond,
                         (theirs.map { String(format: "%.0f", $0) } ?? "-") as NSString,
                         (theirs.map { String(format: "%.2f×", ours.samplesPerSecond / $0) } ?? "-") as NSString))
        }
    }

    func torchSamplesPerSecond(python: String, data: String, threads: Int, batch: Int, hidden: [Int]) throws -> Double {
        let script = try InstallLayout.require("scripts/bench/torch_train.py", for: "--torch")
        // Through the one process runner: stdout captured (the JSON line), stderr kept for the error.
        let r: Subprocess.Result
        do {
            r = try Subprocess.run(python, [script, data, "--threads", String(threads), "--batch", String(batch), "--seconds", String(seconds),
                                            "--hidden", hidden.map(String.init).joined(separator: ",")])
        } catch {
            throw ValidationError("--torch: cannot run \(python): \(error)")
        }
        guard r.exit == .exited(0),
              let obj = try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any],
              let sps = obj["samples_per_s"] as? Double else {
            let why = r.stderr.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").last.map { ": \($0)" } ?? ""
            throw ValidationError("--torch: \(python) \(script) failed (\(r.exit))\(why); it needs torch and h5py")
        }
        return sps
    }
}
