import DecoupledSystem
import DecoupledTraining
import Foundation

// `decoupled report SWEEP_DIR`: tables, heatmaps, learning curves and one HTML page for a
// sweep directory (manifest.json + one run directory per run, docs/run-directory.md). A
// study's directory (study.json next to the manifest) also gets its verdict and the study's
// figures at the top of the page (ReportStudy).
//
// Everything is read before anything is written, so a bad input file stops the report with
// an error naming the file and key and leaves a previous report untouched. The tables do
// not need gnuplot and are written first; a missing or failing gnuplot is reported in the
// result, not thrown, so the caller can still show what was written.

/// How to make a report.
public struct ReportOptions: Sendable {
    /// Where to write; nil means `SWEEP_DIR/report`.
    public var outputDirectory: URL?
    /// Which test error the heatmaps show (and "best" minimizes in sweeps without validation).
    public var metric: ReportMetric
    /// The gnuplot executable: a path, or a name looked up on `PATH`; nil means "gnuplot".
    public var gnuplot: String?
    /// The environment gnuplot is looked up in (tests pass their own `PATH`).
    public var environment: [String: String]

    /// Options with the defaults of `decoupled report`.
    public init(outputDirectory: URL? = nil, metric: ReportMetric = .final, gnuplot: String? = nil,
                environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.outputDirectory = outputDirectory
        self.metric = metric
        self.gnuplot = gnuplot
        self.environment = environment
    }
}

/// A report could not be drawn or written (input problems are `FileFormatError`s instead).
public struct ReportError: Error, CustomStringConvertible, Equatable, Sendable {
    /// What went wrong, for callers that react differently (the CLI's exit message).
    public enum Kind: Equatable, Sendable {
        /// No gnuplot executable was found.
        case gnuplotMissing
        /// gnuplot ran and failed on a script.
        case gnuplotFailed
        /// An output file or directory could not be written.
        case cannotWrite
    }

    /// What went wrong.
    public let kind: Kind
    /// The whole message, naming the file and what to do.
    public let message: String

    /// The message.
    public var description: String { message }

    static func gnuplotMissing(searched: String) -> ReportError {
        ReportError(kind: .gnuplotMissing,
                    message: "gnuplot not found (looked for \(searched)): the tables were written, the figures were not; "
                        + "run `make deps` (installs the Debian package gnuplot-nox) and run `decoupled report` again")
    }

    static func gnuplotFailed(script: String, message: String) -> ReportError {
        ReportError(kind: .gnuplotFailed, message: "\(script): \(message)")
    }

    static func cannotWrite(_ path: String, _ error: Error) -> ReportError {
        // FS's errors name the path themselves: only their reason is added, so the path appears once.
        if case CheckpointError.io(_, _, let reason)? = error as? CheckpointError {
            return ReportError(kind: .cannotWrite, message: "\(path): cannot write: \(reason)")
        }
        return ReportError(kind: .cannotWrite, message: "\(path): cannot write: \(JSONFile.reason(error))")
    }
}

/// What a report wrote and found.
public struct ReportResult: Sendable {
    /// The directory everything was written to.
    public let outputDirectory: URL
    /// The page that ties the report together.
    public let index: URL
    /// summary.md, summary.csv, summary-by-setting.csv and index.html.
    public let documents: [URL]
    /// The PNG and SVG figures that were drawn (empty when gnuplot is missing).
    public let figures: [URL]
    /// The gnuplot scripts and data files behind the figures (written even without gnuplot).
    public let sources: [URL]
    /// How many runs are in which state.
    public let counts: ReportStatusCounts
    /// The test metric the heatmaps show.
    public let metric: ReportMetric
    /// How "best" was selected: on validation loss, or on test for runs without validation.
    public let selection: ReportSelection
    /// The best setting of each method that has a completed run, in manifest order.
    public let best: [ReportMethodBest]
    /// The study's verdict when the sweep directory is a study (has study.json): computed for
    /// the page's top section, for `decoupled study` to print and save as verdict.json.
    public let verdict: StudyVerdict?
    /// Methods without any completed run yet.
    public let methodsWithoutResult: [String]
    /// Warnings gnuplot printed while drawing.
    public let warnings: [String]
    /// Why the figures are missing or incomplete; the tables and the page were written anyway.
    public let plotError: ReportError?

    /// Every file written.
    public var files: [URL] { documents + figures + sources }
}

/// Makes the report of a sweep directory: `summary.md`, `summary.csv`,
/// `summary-by-setting.csv`, heatmaps and learning curves (PNG + SVG, with their gnuplot
/// scripts and data) and `index.html`.
public enum SweepReport {
    /// File names of the report, fixed so that links to them stay valid across reruns.
    public static let summaryMarkdown = "summary.md", summaryCSV = "summary.csv",
                      settingsCSV = "summary-by-setting.csv", indexHTML = "index.html"

    /// Writes the report of the sweep in `sweepDirectory`. Throws `FileFormatError` for bad
    /// inputs (nothing written then) and `ReportError` when the output cannot be written; a
    /// missing or failing gnuplot is `ReportResult.plotError`.
    public static func generate(sweepDirectory: URL, options: ReportOptions = ReportOptions()) throws -> ReportResult {
        let results = try SweepResults.load(sweepDirectory: sweepDirectory)
        let metric = options.metric
        let out = options.outputDirectory ?? sweepDirectory.appendingPathComponent("report", isDirectory: true)
        let study = try ReportStudy.load(results, index: out.appendingPathComponent(indexHTML))
        let best = results.methods.compactMap { results.methodBest($0, metric: metric) }
        var taken = Set<String>()
        let slugs = Dictionary(uniqueKeysWithValues: results.methods.map { ($0, ReportFormat.slug($0, taken: &taken)) })

        // Read the best runs' metrics now, so a bad metrics.jsonl stops before any output.
        var curves: [ReportPlots.Curve] = []
        for b in best {
            let run = results.runs.first { $0.run.id == b.bestRunID }!
            let records = try MetricRecord.read(run.directory.appendingPathComponent("metrics.jsonl").path)
            curves.append(.init(method: b.method, slug: slugs[b.method]!, best: b, records: records))
        }

        do { try FS.createDirectory(out.path) } catch { throw ReportError.cannotWrite(out.path, error) }
        // Through FS: NAME.tmp created anew and renamed into place, and a symbolic link at NAME
        // refused — the output directory is the user's, so a link there is someone's file.
        func write(_ name: String, _ text: String) throws -> URL {
            let url = out.appendingPathComponent(name)
            do { try FS.writeAtomically(text, to: url.path, refusingLinks: true) } catch { throw ReportError.cannotWrite(url.path, error) }
            return url
        }

        var documents = [
            try write(summaryMarkdown, ReportTables.summaryMarkdown(results, metric: metric, best: best)),
            try write(summaryCSV, ReportTables.csv(ReportTables.runColumns, results.sortedRuns)),
            try write(settingsCSV, ReportTables.csv(ReportTables.settingColumns, results.settings)),
        ]

        let range = ReportPlots.colourRange(results, metric: metric)
        var figures = (study?.figures(results) ?? []) + results.methods.map {
            ReportPlots.heatmap(results, method: $0, slug: slugs[$0]!, metric: metric, range: range)
        }
        if !curves.isEmpty {
            figures.append(ReportPlots.curves(curves, kind: .testErrorCurves, sweepName: results.manifest.name))
            figures.append(ReportPlots.curves(curves, kind: .trainLossCurves, sweepName: results.manifest.name))
        }
        var sources: [URL] = []
        for f in figures {
            for d in f.data { sources.append(try write(d.name, d.contents)) }
            sources.append(try write(f.scriptName, f.script))
        }

        let (drawn, warnings, plotError) = draw(figures, in: out, options: options)
        documents.append(try write(indexHTML, ReportHTML.page(results, metric: metric, best: best, figures: figures,
                                                                drawn: drawn, plotError: plotError, range: range, study: study)))
        let figureFiles = figures.filter { drawn.contains($0.stem) }.flatMap {
            [out.appendingPathComponent($0.png), out.appendingPathComponent($0.svg)]
        }
        return ReportResult(outputDirectory: out, index: documents.last!, documents: documents, figures: figureFiles,
                            sources: sources, counts: results.counts, metric: metric, selection: results.selection,
                            best: best, verdict: study?.verdict,
                            methodsWithoutResult: results.methods.filter { m in !best.contains { $0.method == m } },
                            warnings: warnings, plotError: plotError)
    }

    /// Runs every figure's script, in parallel (each is a separate gnuplot process writing its
    /// own files). Returns the stems drawn, gnuplot's warnings and the first failure.
    static func draw(_ figures: [ReportFigure], in dir: URL, options: ReportOptions)
        -> (drawn: Set<String>, warnings: [String], error: ReportError?) {
        let gnuplot: Gnuplot
        do { gnuplot = try Gnuplot.locate(options.gnuplot, environment: options.environment) } catch {
            return ([], [], error as? ReportError)
        }
        final class Outcomes: @unchecked Sendable {
            let lock = NSLock()
            var values: [Result<String, Error>?]
            init(_ n: Int) { values = Array(repeating: nil, count: n) }
        }
        let outcomes = Outcomes(figures.count)
        DispatchQueue.concurrentPerform(iterations: figures.count) { i in
            let r = Result { try gnuplot.run(script: figures[i].scriptName, in: dir) }
            outcomes.lock.lock(); outcomes.values[i] = r; outcomes.lock.unlock()
        }
        var drawn = Set<String>(), warnings: [String] = [], firstError: ReportError?
        for (f, r) in zip(figures, outcomes.values) {
            switch r! {
            case .success(let text):
                drawn.insert(f.stem)
                if !text.isEmpty { warnings.append("\(f.scriptName): \(text)") }
            case .failure(let e):
                if firstError == nil { firstError = e as? ReportError ?? ReportError.gnuplotFailed(script: f.scriptName, message: "\(e)") }
            }
        }
        return (drawn, warnings, firstError)
    }
}
