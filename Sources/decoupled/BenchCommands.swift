import ArgumentParser
import DecoupledCore
import Foundation

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks, measured against a reference taken in the same run.",
        subcommands: [BenchKernelsCommand.self, BenchDataCommand.self, BenchTrainCommand.self, BenchCheckpointCommand.self,
                       BenchSubnormalsCommand.self, BenchOptimizersCommand.self])
}

struct BenchKernelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels",
        abstract: "Fused update kernels vs an in-place bandwidth probe on the same arrays.",
        discussion: """
        For each optimizer, size and worker count prints ns/param, GB/s of traffic actually moved \
        (bytes each optimizer must read and write), and the ratio to the probe: a trivial in-place \
        kernel reading and writing w, m, v and reading g — Adam's exact traffic. Build in release \
        mode for meaningful figures.

        Examples:
          decoupled bench kernels
          decoupled bench kernels --sizes 1e7,5e7 --workers 1,2 --optimizers adamw
          DECOUPLED_KERNELS=scalar decoupled bench kernels --sizes 1e5 --json
        """)

    @Option(help: "Parameter counts, comma-separated; scientific notation allowed.")
    var sizes: String = "1e5,1e6,1e7,5e7"

    @Option(help: "Worker counts, comma-separated (default: 1 up to the active cores).")
    var workers: String?

    @Option(help: "Optimizers: \(KernelBenchmark.Case.allCases.map(\.rawValue).joined(separator: ",")).")
    var optimizers: String = KernelBenchmark.Case.allCases.map(\.rawValue).joined(separator: ",")

    @Option(help: "Kernel path (scalar, avx2, avx512, neon); default: $DECOUPLED_KERNELS or the best for this CPU.")
    var kernel: String?

    @Flag(help: "Print one JSON array instead of a table.")
    var json = false

    func run() throws {
        let sizeList = try parseSizes(sizes)
        let workerList = try parseWorkers(workers)
        let cases = try parseList(optimizers, "--optimizers") { KernelBenchmark.Case(rawValue: $0) }
        let path = try kernel.map { try KernelPath.named($0) }
            ?? KernelPath.fromEnvironment(ProcessInfo.processInfo.environment)
        let bench = KernelBenchmark(kernel: path)
        var results: [KernelBenchmark.Result] = []
        if !json {
            print("kernel path: \(path.name) (\(path.vectorWidth) lanes); runnable here: \(KernelPath.runnable.map(\.name).joined(separator: ", "))")
            print(String(format: "%-9@ %11@ %7@ %9@ %8@ %8@ %7@", "optimizer" as NSString, "params" as NSString,
                         "workers" as NSString, "ns/param" as NSString, "GB/s" as NSString,
                         "probe" as NSString, "ratio" as NSString))
        }
        for n in sizeList {
            for w in workerList {
                let rs = try bench.run(parameters: n, workers: w, cases: cases)
                results += rs
                if !json {
                    for r in rs {
                        print(String(format: "%-9@ %11d %7d %9.3f %8.2f %8.2f %6.1f%%", r.optimizer as NSString,
                                     r.parameters, r.workers, r.nsPerParameter, r.gbPerSecond,
                                     r.probeGBPerSecond, r.ratioToProbe * 100))
                    }
                }
            }
        }
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try enc.encode(results), as: UTF8.self))
        }
    }
}

/// `--sizes`: parameter counts ≥ 1, scientific notation allowed.
func parseSizes(_ text: String) throws -> [Int] {
    try parseList(text, "--sizes") { Double($0).flatMap { $0 >= 1 ? Int($0) : nil } }
}

/// `--workers`: counts ≥ 1; by default 1 up to the active cores.
func parseWorkers(_ text: String?) throws -> [Int] {
    try text.map { try parseList($0, "--workers") { Int($0).flatMap { $0 >= 1 ? $0 : nil } } } ?? Array(1...Sharder.activeCores)
}

/// Parses a comma-separated option, naming the option and the bad element on failure.
func parseList<T>(_ text: String, _ option: String, _ parse: (String) -> T?) throws -> [T] {
    let items = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    guard !items.isEmpty else { throw ValidationError("\(option): expected a comma-separated list, got '\(text)'") }
    return try items.map { item in
        guard let v = parse(item) else { throw ValidationError("\(option): cannot use '\(item)' (from '\(text)')") }
        return v
    }
}
