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
        and the whole-tensor path (TensorOptimizer: lamb, adafactor; one worker per tensor). \
        Each step alternates with an in-place bandwidth probe that moves the same bytes per \
        parameter (read w, g and every element state; write w and the states) on the same \
        arrays and workers; "of probe" is the probe's time over the step's, 1.00 at the \
        memory limit. Build in release mode for meaningful figures.

        Examples:
          decoupled bench optimizers --sizes 1e7 --workers 1,2
          decoupled bench optimizers --optimizers adamw,nadam,adagrad --json
        """)

    @Option(help: "Parameter counts, comma-separated; scientific notation allowed.")
    var sizes: String = "1e6,1e7"

    @Option(help: "Worker counts, comma-separated (default: 1 up to the active cores).")
    var workers: String?

    static let family = "sgd,adamw,adagrad,rmsprop,adadelta,adamax,nadam,radam,lamb,adafactor"

    @Option(help: "Optimizers or aliases, comma-separated (default: sgd, adamw, adagrad, rmsprop, adadelta, adamax, nadam, radam, lamb, adafactor; adam, the reference, is always timed).")
    var optimizers: String?

    @Option(help: "Kernel path of the fused kernels; default: $DECOUPLED_KERNELS or the best for this CPU.")
    var kernel: String?

    @Flag(help: "Print one JSON array instead of a table.")
    var json = false

    func run() throws {
        let sizeList = try parseSizes(sizes)
        let workerList = try parseWorkers(workers)
        let registry = PluginRegistry.builtIn()
        let names = try parseList(optimizers ?? Self.family, "--optimizers") { n in
            (try? registry.optimizer(named: registry.alias(named: n)?.base ?? n)) != nil ? n : nil
        }
        let path = try kernel.map { try KernelPath.named($0) } ?? KernelPath.fromEnvironment(ProcessInfo.processInfo.environment)
        let bench = OptimizerBenchmark(registry: registry, kernel: path)
        var results: [OptimizerBenchmark.Result] = []
        if !json {
            print("fused kernel path: \(path.name)")
            print(String(format: "%-9@ %11@ %7@ %9@ %8@ %7@ %9@ %8@", "optimizer" as NSString, "params" as NSString,
                         "workers" as NSString, "ns/param" as NSString, "vs adam" as NSString, "B/param" as NSString,
                         "probe ns" as NSString, "of probe" as NSString))
        }
        for n in sizeList {
            for w in workerList {
                let rs = try bench.run(parameters: n, workers: w, optimizers: names)
                results += rs
                if !json {
                    for r in rs {
                        let probe = r.probeNsPerParameter.map { String(format: "%9.3f", $0) } ?? String(repeating: " ", count: 8) + "-"
                        let fraction = r.fractionOfProbe.map { String(format: "%8.2f", $0) } ?? String(repeating: " ", count: 7) + "-"
                        let bytes = r.bytesPerParameter.map { String(format: "%7d", $0) } ?? String(repeating: " ", count: 6) + "-"
                        print(String(format: "%-9@ %11d %7d %9.3f %7.2fx %@ %@ %@", r.optimizer as NSString, r.parameters, r.workers,
                                     r.nsPerParameter, r.relativeToAdam, bytes as NSString, probe as NSString, fraction as NSString))
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
