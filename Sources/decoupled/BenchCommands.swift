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
        With --torch PYTHON, the shipped scripts/bench/torch_kernels.py keeps torch.optim.SGD, Adam \
        and AdamW with fused=True alive on one flat parameter of the same size, with the same \
        hyperparameters and torch.set_num_threads(workers), and times one measurement at a time \
        when asked ("vs torch": PyTorch's time over ours, above 1 we are faster).

        Each of --rounds rounds measures, per optimizer, the probe, our step and PyTorch's step \
        next to each other (ours in the middle, the order reversed every other round), each for at \
        least --seconds. Ratios are taken within a round; the table shows their median over the \
        rounds with a distribution-free 95 % interval for the median (order statistics; 6 rounds \
        or more). A target (AdamW ≥ 1.10× PyTorch, SGD with or without momentum ≥ 1.00×) is met \
        only when the whole interval lies above it, missed when it lies below, otherwise not \
        established. Build in release mode for meaningful figures.

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

    @Option(help: "Rounds per size and worker count; ratios are medians over them with 95 % intervals (6 or more rounds).")
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
        let cases = try parseList(optimizers, "--optimizers") { KernelBenchmark.Case(rawValue: $0) }
        let path = try kernel.map { try KernelPath.named($0) }
            ?? KernelPath.fromEnvironment(ProcessInfo.processInfo.environment)
        var bench = KernelBenchmark(kernel: path)
        bench.rounds = rounds
        bench.minSeconds = seconds
        let reference = try torch.map { python -> KernelBenchmark.ReferenceFactory in
            let script = try InstallLayout.require("scripts/bench/torch_kernels.py", for: "--torch")
            return { parameters, workers, cases in
                try TorchKernelsReference(python: python, script: script, parameters: parameters, workers: workers, cases: cases)
            }
        }
        var results: [KernelBenchmark.Result] = []
        if !json {
            print("kernel path: \(path.name) (\(path.vectorWidth) lanes); runnable here: \(KernelPath.runnable.map(\.name).joined(separator: ", ")); "
                  + "medians of \(rounds) round\(rounds == 1 ? "" : "s"), ratios with 95 % intervals")
            print(Self.header(torch: torch != nil))
        }
        for n in sizeList {
            for w in workerList {
                let rs = try bench.run(parameters: n, workers: w, cases: cases, reference: reference)
                results += rs
                if !json { rs.forEach { print(Self.row($0)) } }
            }
        }
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try enc.encode(results), as: UTF8.self))
        }
    }

    /// Column names and widths (negative: left-aligned). Swift's String(format:) does not pad
    /// %@ on Linux, so text columns are padded by hand.
    static func columns(torch: Bool) -> [(String, Int)] {
        [("optimizer", -9), ("params", 11), ("workers", 7), ("ns/param", 9), ("GB/s", 8), ("probe", 6), ("GB/s", 8),
         ("of probe [95 %]", -18)] + (torch ? [("torch ns/p", 11), ("vs torch [95 %]", -18), ("target", -1)] : [])
    }

    static func pad(_ text: String, _ width: Int) -> String {
        let fill = String(repeating: " ", count: max(0, abs(width) - text.count))
        return width < 0 ? text + fill : fill + text
    }

    static func header(torch: Bool) -> String {
        columns(torch: torch).map { pad($0.0, $0.1) }.joined(separator: " ")
    }

    static func row(_ r: KernelBenchmark.Result) -> String {
        var cells = [r.optimizer, String(r.parameters), String(r.workers), String(format: "%.3f", r.nsPerParameter),
                     String(format: "%.2f", r.gbPerSecond), "\(r.probeBytesPerParameter)B", String(format: "%.2f", r.probeGBPerSecond),
                     r.ratioToProbeInterval.formatted]
        if let theirs = r.referenceNsPerParameter, let speedup = r.speedupInterval {
            cells += [String(format: "%.3f", theirs), speedup.formatted, r.speedupTarget?.summary ?? "-"]
        }
        return zip(cells, columns(torch: r.speedupInterval != nil)).map { pad($0, $1.1) }.joined(separator: " ")
    }
}

/// PyTorch's fused optimizers as `bench kernels`' reference: scripts/bench/torch_kernels.py
/// kept running for one size and worker count and asked for one timed measurement at a
/// time over its standard input. Every failure (no interpreter, no torch, a crash, an answer
/// that is not what the script prints) is a ValidationError naming the interpreter and the
/// script and quoting what it printed.
final class TorchKernelsReference: KernelBenchmark.Reference {
    let python: String, script: String
    let conversation: SubprocessConversation
    /// Generous: importing torch and filling 5e7 parameters takes seconds on a loaded machine.
    static let startSeconds = 300.0
    /// A measurement's own time plus this much.
    static let answerSlackSeconds = 60.0

    init(python: String, script: String, parameters: Int, workers: Int, cases: [KernelBenchmark.Case]) throws {
        self.python = python
        self.script = script
        do {
            conversation = try SubprocessConversation(python, [script, "--parameters", String(parameters), "--threads", String(workers),
                                                               "--cases", cases.map(\.rawValue).joined(separator: ",")])
        } catch {
            throw ValidationError("--torch: cannot run \(python): \(error)")
        }
        let ready = try receive(within: Self.startSeconds)
        guard ready["ready"] as? Bool == true else { throw failure("printed no ready line", ready) }
        guard let threads = ready["threads"] as? Int, threads == workers else {
            throw failure("runs on \(ready["threads"] ?? "an unknown number of") threads, not the \(workers) asked for", ready)
        }
    }

    func secondsPerStep(_ c: KernelBenchmark.Case, forAtLeast seconds: Double) throws -> Double {
        do {
            try conversation.send("time \(c.rawValue) \(seconds)")
        } catch {
            throw try endedError()
        }
        let answer = try receive(within: seconds + Self.answerSlackSeconds)
        guard let s = answer["seconds_per_step"] as? Double, s > 0, s.isFinite else {
            throw failure("printed no positive seconds_per_step for \(c.rawValue)", answer)
        }
        return s
    }

    func finish() throws {
        let exit = conversation.finish(timeout: 30)
        guard exit == .exited(0) else { throw try endedError(exit) }
    }

    /// The next line, which must be a JSON object.
    private func receive(within seconds: Double) throws -> [String: Any] {
        let line: String?
        do {
            line = try conversation.receiveLine(timeout: seconds)
        } catch {
            throw ValidationError("--torch: \(python) \(script): \(error)")
        }
        guard let line else { throw try endedError() }
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw ValidationError("--torch: \(python) \(script) printed no JSON object: \(line)")
        }
        return object
    }

    private func failure(_ what: String, _ object: [String: Any]) -> ValidationError {
        let text = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])).map { String(decoding: $0, as: UTF8.self) } ?? "\(object)"
        return ValidationError("--torch: \(python) \(script) \(what): \(text)")
    }

    /// The script stopped answering: how it ended and the last line of its standard error.
    private func endedError(_ known: ChildExit? = nil) throws -> ValidationError {
        let exit = known ?? conversation.finish(timeout: 30)
        let lastLine = conversation.standardError.trimmingCharacters(in: .whitespacesAndNewlines)
            .split(separator: "\n").last.map { ": \($0)" } ?? ""
        return ValidationError("--torch: \(python) \(script) failed (\(exit))\(lastLine); it needs torch")
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
