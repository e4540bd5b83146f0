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
        Trains CONFIG (default: the shipped examples/fashion-mlp-adam-l2.toml, Adam with coupled \
        L2 on the MLP 784-256-128-10) on the shipped subset for --epochs (the cosine schedule's t0 \
        follows), once with λ = 0 and once with the first regularizer's λ = --lambda, for each \
        mode of --modes (train.flush_subnormals = false and true). Prints each run's wall time, its \
        ratio to the λ = 0 run's in the same mode, the final test accuracy, and the fractions of \
        parameters and optimizer state values left subnormal. Strong coupled L2 under Adam drives \
        both into the subnormal range, which IEEE arithmetic handles many times slower; with \
        flushing the ratio should stay near 1 (target: at most 1.3× at λ = 1e-2 over 40 epochs). \
        Build in release mode for meaningful figures.

        Examples:
          decoupled bench subnormals
          decoupled bench subnormals --epochs 10 --modes flush
          decoupled bench subnormals --lambda 1e-3 --threads 1 --repeats 3 --json
        """)

    @Option(help: "Experiment config with at least one [[regularizers]] entry (its λ is varied; default: the shipped examples/fashion-mlp-adam-l2.toml).")
    var config: String?

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

    @Option(help: "Rounds of all runs; wall times are their medians (the machine may be shared).")
    var repeats = 1

    @Flag(help: "Print one JSON array instead of a table.")
    var json = false

    func run() throws {
        guard epochs >= 1 else { throw ValidationError("--epochs: expected an integer ≥ 1, got \(epochs)") }
        guard lambda > 0, lambda.isFinite else { throw ValidationError("--lambda: expected a number > 0, got \(lambda)") }
        guard repeats >= 1 else { throw ValidationError("--repeats: expected an integer ≥ 1, got \(repeats)") }
        let flushModes = try parseList(modes, "--modes") { ["ieee": false, "flush": true][$0] }
        var sets = try overrides.map(ConfigOverride.init)
        if !overrides.contains(where: { $0.hasPrefix("data.file=") }) {
            sets.insert(try ConfigOverride("data.file=datasets/fashion-mnist-small.h5"), at: 0)
        }
        let config = try self.config.map { InstallLayout.userFile($0) } ?? InstallLayout.require("examples/fashion-mlp-adam-l2.toml", for: "the default --config")
        let registry = try loadRegistry()
        let kernels = try KernelPath.fromEnvironment(ProcessInfo.processInfo.environment)
        let lambdas = [0, lambda]
        // Repeats are interleaved (every mode and λ once per round) so that load from other
        // processes spreads over all four figures; the runs are deterministic, so only their
        // wall times differ between rounds.
        var runs: [SubnormalBenchmark.Run] = []
        for _ in 0..<repeats {
            for flush in flushModes {
                for l in lambdas {
                    let r = try SubnormalBenchmark.run(configPath: config, overrides: sets, lambda: l, flush: flush,
                                                       epochs: epochs, threads: threads, registry: registry, kernels: kernels)
                    runs.append(r)
                    FileHandle.standardError.write(Data(String(format: "run %d/%d: %@ lambda %g: %.1f s\n", runs.count,
                                                               repeats * flushModes.count * lambdas.count,
                                                               (flush ? "flush" : "ieee") as NSString, l, r.wallSeconds).utf8))
                }
            }
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(runs), as: UTF8.self))
            return
        }
        func median(_ flush: Bool, _ l: Double) -> Double {
            let w = runs.filter { $0.flushSubnormals == flush && $0.lambda == l }.map(\.wallSeconds).sorted()
            return w[w.count / 2]
        }
        func row(_ cells: [String]) -> String {
            let widths = [5, 8, 9, 7, 9, 17, 16]
            return zip(cells, widths).enumerated().map { i, c in
                let pad = String(repeating: " ", count: max(0, c.1 - c.0.count))
                return i == 0 ? c.0 + pad : pad + c.0
            }.joined(separator: " ")
        }
        print("\(config), \(epochs) epochs, \(runs[0].threads) threads, kernels \(kernels.name), median of \(repeats); "
              + "flushing \(FloatingPointMode.canFlushSubnormals ? "supported" : "a no-op on this CPU")")
        print(row(["mode", "lambda", "wall s", "ratio", "test acc", "subnormal params", "subnormal state"]))
        for flush in flushModes {
            for l in lambdas {
                let r = runs.first { $0.flushSubnormals == flush && $0.lambda == l }!
                // The ratio: this λ's wall time over λ = 0's, in the same mode.
                print(row([flush ? "flush" : "ieee", l == 0 ? "0" : String(format: "%g", l),
                           String(format: "%.1f", median(flush, l)), String(format: "%.2f×", median(flush, l) / median(flush, 0)),
                           r.testAccuracy.map { String(format: "%.4f", $0) } ?? "-",
                           String(format: "%.2f%%", r.subnormalParameters * 100), String(format: "%.2f%%", r.subnormalState * 100)]))
            }
        }
    }
}
