import ArgumentParser
import DecoupledCore
import DecoupledExperiments
import DecoupledTraining
import Foundation

struct StudyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "study",
        abstract: "The default job: L2 regularization vs decoupled weight decay on Fashion-MNIST, with a verdict.",
        discussion: """
        Sweeps the 784-256-128-10 MLP over a learning-rate × decay grid for Adam+L2, AdamW,
        SGD-momentum+L2, SGDW and AdamW+decoupled L1 (cosine schedule), runs it locally on all
        cores, writes the report (heatmaps per method, learning curves, index.html), and prints
        a verdict: the best test accuracy per method, how much the best decay moves with the
        learning rate, and what decoupled L1 buys in exact zeros. The grid is written as an
        ordinary sweep spec (SWEEP_DIR/study.toml). Interrupted, it resumes where it stopped.

        Data: the full Fashion-MNIST (datasets/fashion-mnist.h5, from `make data`) when
        present, else the shipped subset; --quick always uses the subset unless --data is given.

        Examples:
          decoupled study --quick            # about a minute on 2 cores
          decoupled study                    # the full grid, about 10 minutes on 2 cores
          decoupled study --jobs 8 --dir sweeps/my-study
        """)

    @Flag(help: "A first look: a smaller grid and 3 epochs on the shipped subset.")
    var quick = false

    @Option(help: "Sweep directory (default: sweeps/study or sweeps/study-quick).")
    var dir: String?

    @Option(help: "Runs at a time (default: active cores); each run uses one thread.")
    var jobs: Int?

    @Option(help: "Dataset file (default: see above).")
    var data: String?

    func run() throws {
        let cwd = FileManager.default.currentDirectoryPath
        func absolute(_ p: String) -> String { p.hasPrefix("/") ? p : (cwd as NSString).appendingPathComponent(p) }
        let full = "datasets/fashion-mnist.h5", subset = "datasets/fashion-mnist-small.h5"
        let dataFile = absolute(data ?? (!quick && FileManager.default.fileExists(atPath: full) ? full : subset))
        guard FileManager.default.fileExists(atPath: dataFile) else {
            throw ValidationError("data file \(dataFile) not found; run from the repository root, or `make data` for the full set")
        }
        let base = absolute("examples/fashion-mlp-adamw.toml")
        guard FileManager.default.fileExists(atPath: base) else {
            throw ValidationError("\(base) not found; run `decoupled study` from the repository root")
        }
        let design = quick ? StudyDesign.quick(dataFile: dataFile) : StudyDesign.standard(dataFile: dataFile)
        let sweepDir = dir ?? "sweeps/\(design.name)"
        try FileManager.default.createDirectory(atPath: sweepDir, withIntermediateDirectories: true)
        let specPath = (sweepDir as NSString).appendingPathComponent("study.toml")
        let specText = design.specText(base: base)
        try specText.write(toFile: specPath, atomically: true, encoding: .utf8)

        let registry = loadRegistry()
        let plan = try SweepPlan(spec: try SweepSpec.parse(text: specText, file: specPath), sweepDirectory: sweepDir,
                                 registry: registry)
        let workers = jobs ?? ProcessInfo.processInfo.activeProcessorCount
        FileHandle.standardError.write(Data("study: \(plan.entries.count) runs (\(design.epochs) epochs each) on \(dataFile), \(workers) at a time → \(sweepDir)\n".utf8))
        let outcome = try LocalRunner(plan: plan, jobs: workers, threadsPerRun: 1).run { line in
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
        if outcome.completed < outcome.total {
            FileHandle.standardError.write(Data("study: \(outcome.total - outcome.completed) run(s) not completed; the report covers the rest (rerun `decoupled study\(quick ? " --quick" : "")` to finish)\n".utf8))
        }
        let report = try SweepReport.generate(sweepDirectory: URL(fileURLWithPath: sweepDir))
        let verdict = try StudyVerdict.compute(sweepDirectory: sweepDir, reportIndex: report.index.path)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(verdict).write(to: URL(fileURLWithPath: (sweepDir as NSString).appendingPathComponent("verdict.json")))
        print(verdict.text)
        if outcome.interruptedBy != nil { Foundation.exit(outcome.exitCode) }
    }
}
