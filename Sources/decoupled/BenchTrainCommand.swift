import ArgumentParser
import DecoupledCore
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
        same run, and the ratio is printed. --problem times named test problems (`decoupled \
        problems list`) instead, each beside the same nn.Sequential in PyTorch. Build in release \
        mode.

        Examples:
          decoupled bench train
          decoupled bench train --threads 1,2 --torch /path/to/venv/bin/python
          decoupled bench train --problem all --threads 1,2 --torch python3
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

    @Option(help: ArgumentHelp("Time named test problems instead of CONFIG (comma-separated, or \"all\"), each with AdamW(lr=1e-3, weight_decay=1e-2) in PyTorch's convention.", valueName: "names"))
    var problem: String?

    /// A config as `load` makes it; without the full Fashion-MNIST (`make data`) and no
    /// data.file of the user's, the shipped subset stands in.
    func withShippedSubset(_ load: ([ConfigOverride]) throws -> ExperimentConfig) throws -> ExperimentConfig {
        let cfg = try load([])
        guard !overrides.contains(where: { $0.hasPrefix("data.file=") }), !SyntheticData.isSynthetic(cfg.data.resolvedFile),
              !FileManager.default.fileExists(atPath: cfg.data.resolvedFile) else { return cfg }
        return try load([try ConfigOverride("data.file=datasets/fashion-mnist-small.h5")])
    }

    func run() throws {
        let sets = try overrides.map(ConfigOverride.init)
        var configs: [(String, ExperimentConfig)] = []
        if let problem {
            let names = problem == "all" ? TestProblem.all.map(\.name) : problem.split(separator: ",").map(String.init)
            for name in names {
                guard TestProblem.named(name) != nil else {
                    throw ValidationError("--problem: \"\(name)\" is not a test problem; `decoupled problems list` names them")
                }
                let text = "problem = \"\(name)\"\nconvention = \"pytorch\"\n[optimizer]\nname = \"adamw\"\nlr = 1e-3\nweight_decay = 1e-2\n"
                configs.append((name, try withShippedSubset { try ExperimentConfig.parse(text, file: "problem \(name)", overrides: sets + $0) }))
            }
        } else {
            let configPath = try config.map { InstallLayout.userFile($0) } ?? InstallLayout.require("examples/fashion-mlp-adamw.toml", for: "the default --config")
            configs = [((configPath as NSString).lastPathComponent, try withShippedSubset { try ExperimentConfig.load(path: configPath, overrides: sets + $0) })]
        }
        let threadList = try threads.map { try parseList($0, "--threads") { Int($0).flatMap { $0 >= 1 ? $0 : nil } } }
            ?? Array(1...Sharder.activeCores)
        let registry = loadRegistry()
        let kernels = try KernelPath.fromEnvironment(ProcessInfo.processInfo.environment)
        for (name, cfg) in configs {
            print("\(name): model \(cfg.model.kind.rawValue) \(cfg.model.kind == .sequential ? "(\(cfg.model.layers?.count ?? 0) layers)" : "\(cfg.model.hidden)"), optimizer \(cfg.optimization.optimizer.name), batch \(cfg.data.batchSize), data \(cfg.data.resolvedFile), kernels \(kernels.name)")
            print(String(format: "%7@ %14@ %14@ %7@ %13@", "threads" as NSString, "ours samples/s" as NSString,
                         "torch samples/s" as NSString, "ratio" as NSString, "median ratio" as NSString))
            for t in threadList {
                let ours = try TrainingBenchmark.run(config: cfg, registry: registry, kernels: kernels, threads: t, seconds: seconds)
                var theirs: (mean: Double, median: Double)?
                if let python = torch {
                    theirs = try torchSamplesPerSecond(python: python, config: cfg, threads: t)
                }
                print(String(format: "%7d %14.0f %14@ %7@ %13@", t, ours.samplesPerSecond,
                             (theirs.map { String(format: "%.0f", $0.mean) } ?? "-") as NSString,
                             (theirs.map { String(format: "%.2f×", ours.samplesPerSecond / $0.mean) } ?? "-") as NSString,
                             (theirs.map { String(format: "%.2f×", ours.medianSamplesPerSecond / $0.median) } ?? "-") as NSString))
            }
        }
    }

    /// PyTorch's samples/s (mean over the timed steps, and from the median step) for the same
    /// model: an MLP by its hidden sizes, a layer model by its layer list as JSON.
    func torchSamplesPerSecond(python: String, config cfg: ExperimentConfig, threads: Int) throws -> (mean: Double, median: Double) {
        var model: [String] = []
        if cfg.model.kind == .sequential {
            let description = TorchModelDescription(inputShape: cfg.model.inputShape, layers: cfg.model.layers ?? [])
            model = ["--layers", String(decoding: try JSONEncoder().encode(description), as: UTF8.self)]
        } else {
            model = ["--hidden", cfg.model.hidden.map(String.init).joined(separator: ",")]
        }
        return try torchSamplesPerSecond(python: python, data: cfg.data.resolvedFile, threads: threads,
                                         batch: cfg.data.batchSize, model: model)
    }

    func torchSamplesPerSecond(python: String, data: String, threads: Int, batch: Int, model: [String]) throws -> (mean: Double, median: Double) {
        let script = try InstallLayout.require("scripts/bench/torch_train.py", for: "--torch")
        let obj = try runTorchScript(python: python, script: script, needs: "torch and h5py",
                                     [data, "--threads", String(threads), "--batch", String(batch), "--seconds", String(seconds)] + model)
        guard let sps = obj["samples_per_s"] as? Double, let median = obj["median_samples_per_s"] as? Double else {
            throw ValidationError("--torch: \(python) \(script) printed no samples_per_s and median_samples_per_s: \(obj)")
        }
        return (sps, median)
    }
}

/// What scripts/bench/torch_train.py reads from `--layers` to build the same nn.Sequential.
struct TorchModelDescription: Encodable {
    var inputShape: [Int]?
    var layers: [LayerSpec]
}
