import ArgumentParser
import DecoupledCore
import Foundation

struct BenchOptimizersCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "optimizers",
        abstract: "Whole engine steps of any optimizer, relative to Adam's fused kernel and to a probe of its own traffic.",
        discussion: """
        Times UpdateEngine.apply() for each optimizer (decoupled weight decay λ = 1e-2) on one \
        tensor: the fused kernels (SGD, Adam, Adagrad, RMSprop, Adadelta, Adamax, NAdam, RAdam) \
        and the whole-tensor path (TensorOptimizer: lamb, adafactor; one worker per tensor), \
        and external plugins' optimizers (`decoupled plugins list`: the plugin's direction between \
        the host's kernel passes). \
        Each step alternates with an in-place bandwidth probe that moves the same bytes per \
        parameter (read w, g and every element state; write w and the states) on the same \
        arrays and workers; "of probe" is the probe's time over the step's, 1.00 at the \
        memory limit. Each of --rounds rounds times the probe and the step next to each other \
        (the order reversed every other round), each for at least --seconds; the table shows \
        the median of the per-round ratios with a distribution-free 95 % interval. The fused \
        family kernels' target (≥ 0.90 of the probe) is met only when the whole interval lies \
        above it, missed when it lies below, otherwise not established. Build in release mode \
        for meaningful figures.

        Examples:
          decoupled bench optimizers --sizes 1e7 --workers 1,2
          decoupled bench optimizers --sizes 5e7 --optimizers nadam,radam --rounds 41
          decoupled bench optimizers --optimizers adamw,nadam,adagrad --json
          decoupled bench optimizers --optimizers adamw,lion   # lion: plugins/lion
        """)

    @Option(help: "Parameter counts, comma-separated; scientific notation allowed.")
    var sizes: String = "1e6,1e7"

    @Option(help: "Worker counts, comma-separated (default: 1 up to the active cores).")
    var workers: String?

    static let family = "sgd,adamw,adagrad,rmsprop,adadelta,adamax,nadam,radam,lamb,adafactor"

    @Option(help: "Optimizers or aliases, built-in or from external plugins, comma-separated (default: sgd, adamw, adagrad, rmsprop, adadelta, adamax, nadam, radam, lamb, adafactor; adam, the reference, is always timed).")
    var optimizers: String?

    @Option(help: "Kernel path of the fused kernels; default: $DECOUPLED_KERNELS or the best for this CPU.")
    var kernel: String?

    @Option(help: "Rounds of probe and step per optimizer; ratios are medians over them with 95 % intervals (6 or more rounds).")
    var rounds: Int = KernelBenchmark.defaultRounds

    @Option(help: "Timed seconds per measurement: steps back to back until this much time has passed.")
    var seconds: Double = KernelBenchmark.defaultSeconds

    @Flag(help: "Print one JSON array instead of a table.")
    var json = false

    func validate() throws {
        guard rounds >= 1 else { throw ValidationError("--rounds: expected a count of at least 1, got \(rounds)") }
        guard seconds > 0, seconds.isFinite else { throw ValidationError("--seconds: expected a positive number of seconds, got \(seconds)") }
    }

    func run() throws {
        let sizeList = try parseSizes(sizes)
        let workerList = try parseWorkers(workers)
        // External plugins too: they are loaded only if a name is not built in, as for training.
        let registry = loadRegistry()
        let names = try parseList(optimizers ?? Self.family, "--optimizers") { $0 }
        for n in names {
            do { _ = try registry.optimizer(named: registry.alias(named: n)?.base ?? n) } catch { throw ValidationError("--optimizers: \(error)") }
        }
        let path = try kernel.map { try KernelPath.named($0) } ?? KernelPath.fromEnvironment(ProcessInfo.processInfo.environment)
        var bench = OptimizerBenchmark(registry: registry, kernel: path)
        bench.rounds = rounds
        bench.minSeconds = seconds
        var results: [OptimizerBenchmark.Result] = []
        if !json {
            print("fused kernel path: \(path.name); medians of \(rounds) round\(rounds == 1 ? "" : "s"), ratios with 95 % intervals")
            // Swift's String(format:) does not pad %@ on Linux: text columns are padded by hand.
            print([("optimizer", -9), ("params", 11), ("workers", 7), ("ns/param", 9), ("vs adam", 8), ("B/param", 7),
                   ("probe ns", 9), ("of probe [95 %]", -18), ("target", -1)]
                .map { BenchKernelsCommand.pad($0.0, $0.1) }.joined(separator: " "))
        }
        for n in sizeList {
            for w in workerList {
                let rs = try bench.run(parameters: n, workers: w, optimizers: names)
                results += rs
                if !json {
                    for r in rs {
                        let probe = r.probeNsPerParameter.map { String(format: "%9.3f", $0) } ?? String(repeating: " ", count: 8) + "-"
                        let fraction = " " + BenchKernelsCommand.pad(r.fractionOfProbeInterval?.formatted ?? "-", -18)
                        let target = r.probeTarget.map { " " + $0.summary } ?? ""
                        let bytes = r.bytesPerParameter.map { String(format: "%7d", $0) } ?? String(repeating: " ", count: 6) + "-"
                        print(String(format: "%@ %11d %7d %9.3f %7.2fx %@ %@%@%@",
                                     BenchKernelsCommand.pad(r.optimizer, -9) as NSString, r.parameters, r.workers,
                                     r.nsPerParameter, r.relativeToAdam, bytes as NSString, probe as NSString, fraction as NSString,
                                     target as NSString))
                    }
                }
            }
        }
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try enc.encode(results), as: UTF8.self))
        }
    }
}
