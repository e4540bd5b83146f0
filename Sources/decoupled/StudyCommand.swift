import ArgumentParser
import DecoupledCheckpoint
import DecoupledCore
import DecoupledExperiments
import DecoupledTraining
import Foundation

struct StudyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "study",
        abstract: "The default job: L2 regularization vs decoupled weight decay on Fashion-MNIST, with a verdict.",
        discussion: """
        One sweep (docs/study.md) in a regime where regularization matters: the 784-256-128-10 MLP \
        trained on a stratified subset of the training split, validated on samples held out of it, \
        tested on the whole test split, cosine schedule, several seeds per setting. Its parts: the \
        AdamW paper's Figure 2 (Adam+L2 vs AdamW, SGD-momentum+L2 vs SGDW over learning rate × \
        decay), the training budget with normalized decay, and coupled vs decoupled L1. It runs \
        locally on all cores, writes the report (SWEEP_DIR/report/index.html) and prints a verdict \
        (also SWEEP_DIR/verdict.json): settings are selected on validation loss, every comparison \
        is a difference of seed means with a 95 % interval, and one inside the noise reads "no \
        measurable difference". Interrupted, it resumes where it stopped.

        Data: the full Fashion-MNIST (datasets/fashion-mnist.h5, from `make data`) when present \
        among the shipped files, else the shipped subset; --quick always uses the subset unless \
        --data is given. The base config is the shipped examples/fashion-mlp-adamw.toml, so the \
        study runs from any directory; SWEEP_DIR is relative to the working directory.

        On a cluster, --spec-only writes SWEEP_DIR/study.toml and stops; run it on Slurm, then \
        the same study command again writes the report and the verdict:
          decoupled study --full --spec-only
          decoupled sweep run sweeps/study-full/study.toml --dir sweeps/study-full \\
              --backend slurm --partition cpu --time 2:00:00
          decoupled study --full

        Examples:
          decoupled study --quick
          decoupled study
          decoupled study --full --spec-only
          decoupled study --jobs 8 --dir sweeps/my-study
        """)

    @Flag(help: "A first look (under 3 minutes on 2 cores): coarser grids, 2 seeds, the shipped subset.")
    var quick = false

    @Flag(help: "The larger version for a cluster: finer grids, 5 seeds, a fourth training length.")
    var full = false

    @Flag(help: "Write SWEEP_DIR/study.toml and stop (to run it with `decoupled sweep run --backend slurm`).")
    var specOnly = false

    @Option(help: "Sweep directory (default: sweeps/study, sweeps/study-quick or sweeps/study-full).")
    var dir: String?

    @Option(help: "Runs at a time (default: active cores); each run uses one thread.")
    var jobs: Int?

    @Option(help: "Dataset file (default: see above).")
    var data: String?

    func validate() throws {
        if quick && full { throw ValidationError("--quick and --full exclude each other") }
        if let j = jobs, j < 1 { throw ValidationError("--jobs must be at least 1, got \(j)") }
    }

    func run() throws {
        let cwd = FileManager.default.currentDirectoryPath
        func absolute(_ p: String) -> String { p.hasPrefix("/") ? p : (cwd as NSString).appendingPathComponent(p) }
        // The defaults ship with the binary (InstallLayout), so the study runs from any directory.
        let dataFile: String
        if let data {
            dataFile = absolute(data)
            guard FileManager.default.fileExists(atPath: dataFile) else { throw ValidationError("--data: \(dataFile) not found") }
        } else if !quick, let full = InstallLayout.current?.resource("datasets/fashion-mnist.h5") {
            dataFile = full
        } else {
            dataFile = try InstallLayout.require("datasets/fashion-mnist-small.h5", for: "the study's data (or give --data)")
        }
        let base = try InstallLayout.require("examples/fashion-mlp-adamw.toml", for: "the study's base config")
        let design = quick ? StudyDesign.quick(dataFile: dataFile)
            : full ? StudyDesign.full(dataFile: dataFile) : StudyDesign.standard(dataFile: dataFile)
        let sweepDir = dir ?? "sweeps/\(design.name)"
        try FS.createDirectory(sweepDir)
        let specPath = (sweepDir as NSString).appendingPathComponent("study.toml")
        let specText = design.specText(base: base)
        try FS.writeAtomically(specText, to: specPath)
        // The design next to the manifest makes the directory a study for `decoupled report`,
        // which then puts the verdict and the study's figures at the top of its page.
        try FS.writeAtomically(try design.encoded(), to: (sweepDir as NSString).appendingPathComponent(StudyDesign.fileName))
        let registry = loadRegistry()
        let plan = try SweepPlan(spec: try SweepSpec.parse(text: specText, file: specPath), sweepDirectory: sweepDir,
                                 registry: registry)
        let workers = jobs ?? ProcessInfo.processInfo.activeProcessorCount
        if specOnly {
            print("wrote \(specPath) (\(plan.entries.count) runs); run it with\n"
                  + "  decoupled sweep run \(specPath) --dir \(sweepDir) --backend slurm ...\n"
                  + "then `decoupled study\(full ? " --full" : quick ? " --quick" : "") --dir \(sweepDir)` writes the report and the verdict")
            return
        }
        FileHandle.standardError.write(Data(("study: \(plan.entries.count) runs on \(design.trainSubset) training samples of \(dataFile) "
            + "(\(design.validation) held out for validation), \(design.seeds.count) seeds, \(workers) at a time → \(sweepDir)\n").utf8))
        let outcome = try LocalRunner(plan: plan, jobs: workers, threadsPerRun: 1).run { line in
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
        if outcome.completed < outcome.total {
            FileHandle.standardError.write(Data("study: \(outcome.total - outcome.completed) run(s) not completed; the report and verdict cover the rest (rerun `decoupled study\(quick ? " --quick" : full ? " --full" : "")` to finish)\n".utf8))
        }
        // The report computes the verdict (from study.json) for its top section; the same one
        // is printed and saved, naming the report's index.html.
        let report = try SweepReport.generate(sweepDirectory: URL(fileURLWithPath: sweepDir))
        let verdict = try report.verdict
            ?? StudyVerdict.compute(design: design, sweepDirectory: sweepDir, reportIndex: report.index.path)
        try FS.writeAtomically(try StudyVerdict.encoder.encode(verdict), to: (sweepDir as NSString).appendingPathComponent(StudyVerdict.fileName))
        print(verdict.text)
        if outcome.interruptedBy != nil { Foundation.exit(outcome.exitCode) }
    }
}
