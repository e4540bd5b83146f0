import ArgumentParser
import DecoupledCore
import DecoupledSystem
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
        abstract: "Fused update kernels vs in-place bandwidth probes on the same arrays, and optionally PyTorch's fused optimizers.",
        discussion: """
        For each optimizer, size and worker count prints ns/param, GB/s of traffic actually moved \
        (bytes each optimizer must read and write), and the ratio to the probe of that traffic: a \
        trivial in-place kernel reading and writing w and as many state arrays as the optimizer has \
        (SGD none, momentum and Nesterov one, Adam and AdamW two, AMSGrad three) and reading g. \
        Every figure is the median over --rounds rounds. With --torch PYTHON, each round also runs \
        the shipped scripts/bench/torch_kernels.py, which times torch.optim.SGD, Adam and AdamW \
        with fused=True on one flat parameter of the same size, the same hyperparameters and \
        torch.set_num_threads(workers), right after our cases, and the speed ratio is printed \
        (above 1× we are faster). Build in release mode for meaningful figures.

        Examples:
          decoupled bench kernels
          decoupled bench kernels --sizes 1e7,5e7 --workers 1,2 --optimizers adamw
          decoupled bench kernels --sizes 5e7 --optimizers sgd,adamw --torch python3
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

    @Option(help: "A Python interpreter with torch: also time PyTorch's fused optimizers, interleaved with ours.")
    var torch: String?

    @Option(help: "Rounds per size and worker count (probes, our kernels, then PyTorch's); figures are medians over them.")
    var rounds: Int = 3

    @Option(help: "Timed seconds per measurement (each split into 5 samples, the median kept).")
    var seconds: Double = 0.25

    @Flag(help: "Print one JSON array instead of a table.")
    var json = false

    func validate() throws {
        guard rounds >= 1 else { throw ValidationError("--rounds: expected a count of at least 1, got \(rounds)") }
        guard seconds > 0, seconds.isFinite else { throw ValidationError("--seconds: expected a positive number of seconds, got \(seconds)") }
    }

    func run() throws {
        let sizeList = try parseSizes(sizes)
        let workerList = try parseWorkers(workers)
        let cases = try parseList(optimizers, "--optimizers") { KernelBenchmark.Case(rawValue: $0) }
        let path = try kernel.map { try KernelPath.named($0) }
            ?? KernelPath.fromEnvironment(ProcessInfo.processInfo.environment)
        var bench = KernelBenchmark(kernel: path)
        bench.rounds = rounds
        bench.minSeconds = seconds
        let reference = try torch.map { python in
            let script = try InstallLayout.require("scripts/bench/torch_kernels.py", for: "--torch")
            return { (parameters: Int, workers: Int, cases: [KernelBenchmark.Case]) throws -> [KernelBenchmark.Case: Double] in
                try torchSecondsPerStep(python: python, script: script, parameters: parameters, workers: workers, cases: cases,
                                        repetitions: bench.repetitions)
            }
        }
        var results: [KernelBenchmark.Result] = []
        if !json {
            print("kernel path: \(path.name) (\(path.vectorWidth) lanes); runnable here: \(KernelPath.runnable.map(\.name).joined(separator: ", ")); medians of \(rounds) round\(rounds == 1 ? "" : "s")")
            // Swift's String(format:) does not pad %@ on Linux: the header is padded by hand.
            let header = [("optimizer", -9), ("params", 11), ("workers", 7), ("ns/param", 9), ("GB/s", 8), ("probe", 6),
                          ("GB/s", 8), ("ratio", 7)] + (torch == nil ? [] : [("torch ns/p", 11), ("vs torch", 8)])
            print(header.map { name, width in
                let fill = String(repeating: " ", count: max(0, abs(width) - name.count))
                return width < 0 ? name + fill : fill + name
            }.joined(separator: " "))
        }
        for n in sizeList {
            for w in workerList {
                let rs = try bench.run(parameters: n, workers: w, cases: cases, reference: reference)
                results += rs
                if !json {
                    for r in rs {
                        let theirs = r.referenceNsPerParameter.map { String(format: " %11.3f %7.2f×", $0, r.speedupOverReference!) } ?? ""
                        let name = r.optimizer.padding(toLength: max(9, r.optimizer.count), withPad: " ", startingAt: 0)
                        print(String(format: "%@ %11d %7d %9.3f %8.2f %5dB %8.2f %6.1f%%%@", name as NSString,
                                     r.parameters, r.workers, r.nsPerParameter, r.gbPerSecond, r.probeBytesPerParameter,
                                     r.probeGBPerSecond, r.ratioToProbe * 100, theirs as NSString))
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

    /// One run of scripts/bench/torch_kernels.py: PyTorch's seconds per fused step of each case.
    func torchSecondsPerStep(python: String, script: String, parameters: Int, workers: Int,
                             cases: [KernelBenchmark.Case], repetitions: Int) throws -> [KernelBenchmark.Case: Double] {
        let output = try runTorchScript(python: python, script: script, needs: "torch",
                                        ["--parameters", String(parameters), "--threads", String(workers),
                                         "--cases", cases.map(\.rawValue).joined(separator: ","),
                                         "--seconds", String(seconds), "--repetitions", String(repetitions)])
        let perCase = output["seconds_per_step"] as? [String: Any] ?? [:]
        return try Dictionary(uniqueKeysWithValues: cases.map { c in
            guard let s = perCase[c.rawValue] as? Double, s > 0, s.isFinite else {
                throw ValidationError("--torch: \(python) \(script) printed no positive seconds_per_step for \(c.rawValue): \(output)")
            }
            return (c, s)
        })
    }
}

/// Runs a shipped PyTorch benchmark script (`--torch PYTHON`) through the one process runner
/// and returns the JSON object it prints on its last line of standard output. A missing
/// interpreter, a failing script (no torch, say) or output that is not such an object is a
/// ValidationError naming the interpreter, the script and what it printed.
func runTorchScript(python: String, script: String, needs: String, _ arguments: [String]) throws -> [String: Any] {
    let r: Subprocess.Result
    do {
        r = try Subprocess.run(python, [script] + arguments)
    } catch {
        throw ValidationError("--torch: cannot run \(python): \(error)")
    }
    let lastLine = { (text: String) in
        text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").last.map(String.init) }
    guard r.exit == .exited(0) else {
        let why = (lastLine(r.stderr) ?? lastLine(r.stdout)).map { ": \($0)" } ?? ""
        throw ValidationError("--torch: \(python) \(script) failed (\(r.exit))\(why); it needs \(needs)")
    }
    guard let line = lastLine(r.stdout),
          let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
        throw ValidationError("--torch: \(python) \(script) printed no JSON object: \(lastLine(r.stdout) ?? "nothing")")
    }
    return object
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
