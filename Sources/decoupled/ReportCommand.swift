import ArgumentParser
import DecoupledExperiments
import DecoupledTraining
import Foundation

/// `decoupled report SWEEP_DIR`: tables, heatmaps, learning curves and an HTML page of a sweep.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Tables, heatmaps and learning curves of a sweep directory, tied together in report/index.html.",
        discussion: """
        Reads SWEEP_DIR/manifest.json and each run's summary.json and metrics \
        (docs/run-directory.md) and writes into SWEEP_DIR/report (or --output):
          summary.md, summary.csv     every run: status, test errors, train loss, ...
          summary-by-setting.csv      each (method, lr, λ): mean and std over seeds
          heatmap-<method>.png/.svg   test error over lr × λ (AdamW paper, Fig. 2)
          curves-test-error.png/.svg  test error vs epoch, best run per method (Fig. 3)
          curves-train-loss.png/.svg  training loss vs epoch of the same runs
          index.html                  all of the above on one page

        "Best" is selected on the mean validation loss over seeds when the runs hold out a \
        validation split (test numbers are then only reported), else on the test error, and the \
        page says which. A study's directory (study.json, written by `decoupled study`) also gets \
        the verdict and the study's figures (paired Figure 2 heatmaps, curves with seed bands, \
        sparsity frontier, training budget) at the top of index.html. gnuplot draws the figures \
        (`make deps` installs it) from the .gp scripts and .dat files written next to them. A \
        sweep still running is reported as far as it got.

        Examples:
          decoupled report sweeps/study
          decoupled report sweeps/study --metric best --output /tmp/study-report
        """)

    @Argument(help: "The sweep directory (holds manifest.json).")
    var sweepDir: String

    @Option(help: "Directory to write to (default: SWEEP_DIR/report).")
    var output: String?

    @Option(help: "Test error to compare: 'final' (last evaluation) or 'best' (lowest over epochs).")
    var metric: String = "final"

    @Option(help: ArgumentHelp("The gnuplot executable (default: gnuplot on PATH).", visibility: .hidden))
    var gnuplot: String?

    func validate() throws {
        guard ReportMetric(rawValue: metric) != nil else {
            throw ValidationError("--metric must be 'final' or 'best', got '\(metric)'")
        }
    }

    func run() throws {
        let options = ReportOptions(outputDirectory: output.map { URL(fileURLWithPath: $0, isDirectory: true) },
                                    metric: ReportMetric(rawValue: metric)!, gnuplot: gnuplot)
        // Input errors (FileFormatError) and a missing gnuplot (ReportError) describe themselves,
        // naming the file and key or what to install; ArgumentParser prints them as "Error: ...".
        let result = try SweepReport.generate(sweepDirectory: URL(fileURLWithPath: sweepDir, isDirectory: true),
                                              options: options)
        let cwd = FileManager.default.currentDirectoryPath + "/"
        func show(_ url: URL) -> String { url.path.hasPrefix(cwd) ? String(url.path.dropFirst(cwd.count)) : url.path }

        print("wrote")
        for url in [result.index] + result.documents.filter({ $0 != result.index }) + result.figures {
            print("  \(show(url))")
        }
        if !result.sources.isEmpty {
            print("  \(show(result.outputDirectory))/*.gp, *.dat (\(result.sources.count) gnuplot scripts and data files)")
        }
        print(result.counts.sentence)
        if result.counts.pending > 0 {
            print("\(result.counts.pending) run\(result.counts.pending == 1 ? " is" : "s are") not finished: "
                  + "the report covers the \(result.counts.done) completed; run it again when the sweep is done")
        }
        print("best per method (\(result.selection.phrase); \(result.metric.phrase), mean over seeds):")
        let width = max(6, result.best.map(\.method.count).max() ?? 0)
        for b in result.best {
            print("  " + b.method + String(repeating: " ", count: max(0, width - b.method.count)) + "  \(b)")
        }
        for m in result.methodsWithoutResult { print("  \(m): no completed run yet") }
        for w in result.warnings { FileHandle.standardError.write(Data("warning: gnuplot: \(w)\n".utf8)) }
        if let e = result.plotError { throw e }
    }
}
