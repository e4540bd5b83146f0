import ArgumentParser
import DecoupledCore
import DecoupledTraining
import Foundation

/// `decoupled bench subnormals`; the measurement is `SubnormalBenchmark` in DecoupledTraining.
struct BenchSubnormalsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "subnormals",
        abstract: "What subnormal floats cost a run: Adam + coupled L2 λ vs λ = 0, with flushing off and on.",
        discussion: """
        Trains CONFIG (default: Adam with coupled L2, the MLP 784-256-128-10) on the shipped
        subset for --epochs (the cosine schedule's t0 follows), once with λ = 0 and once with
        the first regularizer's λ = --lambda, for each mode of --modes
        (train.flush_subnormals = false and true). Prints each run's wall time, its ratio to
        the λ = 0 run's in the same mode, the final test accuracy, and the
        fractions of parameters and optimizer state values left subnormal. Strong coupled L2
        under Adam drives both into the subnormal range, which IEEE arithmetic handles many
        times slower; with flushing the ratio should stay near 1 (target: at most 1.3× at
        λ = 1e-2 over 40 epochs). Build in release mode for meaningful figures.

        Examples:
          decoupled bench subnormals
          decoupled bench subnormals --epochs 10 --modes flush
          decoupled bench subnormals --lambda 1e-3 --threads 1 --json
        """)

    @Option(help: "Experiment config with at least one [[regularizers]] entry (its λ is varied).")
    var config = "examples/fashion-mlp-adam-l2.toml"

    @Option(name: .customLong("set"), help: ArgumentHelp("Override a config key (repeatable).", valueName: "key=value"))
    var overrides: [String] = []

    @Option(help: "Epochs per run (also the schedule's t0).")
    var epochs = 40

    @Option(help: "The strong λ, compared with λ = 0.")
    var lambda = 1e-2

    @Option(help: "Modes, comma-separated: ieee (flush_subnormals = false), flush (true).")
    var modes = "ieee,flush"

    @Option(help: "Worker threads (default: the config's train.threads; 0 = active cores).")
    var threads: Int?

    @Flag(help: "Print one JSON array instead of a table.")
    var json = false

    func run() throws {
        guard epochs >= 1 else { throw ValidationError("--epochs: expected an integer ≥ 1, got \(epochs)") }
        guard lambda > 0, lambda.isFinite else { throw ValidationError("--lambda: expected a number > 0, got \(lambda)") }
        let flushModes = try parseList(modes, "--modes") { ["ieee": false, "flush": true][$0] }
        var sets = try overrides.map(ConfigOverride.init)
        if !overrides.contains(where: { $0.hasPrefix("data.file=") }) {
            sets.insert(try ConfigOverride("data.file=datasets/fashion-mnist-small.h5"), at: 0)
        }
        let registry = try loadRegistry()
        let kernels = try KernelPath.fromEnvironment(ProcessInfo.processInfo.environment)
        var runs: [SubnormalBenchmark.Run] = []
        if !json {
            print("\(config), \(epochs) epochs, kernels \(kernels.name); flushing \(FloatingPointMode.canFlushSubnormals ? "supported" : "a no-op on this CPU")")
            print(String(format: "%-5@ %8@ %9@ %7@ %8@ %17@ %16@", "mode" as NSString, "lambda" as NSString,
                         "wall s" as NSString, "ratio" as NSString, "test acc" as NSString,
                         "subnormal params" as NSString, "subnormal state" as NSString))
        }
        for flush in flushModes {
            var baseline: Double?
            for l in [0, lambda] {
                let r = try SubnormalBenchmark.run(configPath: config, overrides: sets, lambda: l, flush: flush, epochs: epochs,
                                                   threads: threads, registry: registry, kernels: kernels)
                runs.append(r)
                if l == 0 { baseline = r.wallSeconds }
                if !json {
                    // The ratio is the λ run's wall time over the λ = 0 run's, in the same mode.
                    let ratio = l == 0 ? "1" : baseline.map { String(format: "%.2f×", r.wallSeconds / $0) } ?? "-"
                    print(String(format: "%-5@ %8@ %9.1f %7@ %8@ %16.2f%% %15.2f%%", (flush ? "flush" : "ieee") as NSString,
                                 (l == 0 ? "0" : String(format: "%g", l)) as NSString, r.wallSeconds, ratio as NSString,
                                 (r.testAccuracy.map { String(format: "%.4f", $0) } ?? "-") as NSString,
                                 r.subnormalParameters * 100, r.subnormalState * 100))
                }
            }
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(runs), as: UTF8.self))
        }
    }
}
