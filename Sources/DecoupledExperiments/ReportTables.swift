import DecoupledTraining
import Foundation

// The two tables of a report, each defined once as columns and rendered as Markdown, CSV and
// HTML, so the three files cannot disagree about what a column holds.
//
// CSV values are exact (fractions, seconds, shortest round-trip decimals) for scripts; the
// Markdown and HTML cells are rounded for reading (test error in percent).

/// One column: its human header, its CSV name, and the cell text for humans and for the CSV.
struct ReportColumn<Row> {
    let header: String
    let csvName: String
    /// Right-aligned in Markdown and HTML (numbers).
    let numeric: Bool
    let text: (Row) -> String
    let csv: (Row) -> String

    init(_ header: String, csv csvName: String, numeric: Bool = true,
         text: @escaping (Row) -> String, exact csv: @escaping (Row) -> String) {
        self.header = header
        self.csvName = csvName
        self.numeric = numeric
        self.text = text
        self.csv = csv
    }
}

enum ReportTables {
    /// The per-run table: id, method, lr, decay, seed, status,
    /// final/best test error (+ epoch), final train loss, zero fraction, wall time; then why
    /// a run failed and where it lives.
    static let runColumns: [ReportColumn<ReportRun>] = [
        .init("run", csv: "id", numeric: false, text: { $0.run.id }, exact: { $0.run.id }),
        .init("method", csv: "method", numeric: false, text: { $0.run.method }, exact: { $0.run.method }),
        .init("lr", csv: "lr", text: { ReportFormat.hyper($0.run.lr) }, exact: { ReportFormat.exact($0.run.lr) }),
        .init("λ", csv: "decay", text: { ReportFormat.hyper($0.run.decay) }, exact: { ReportFormat.exact($0.run.decay) }),
        .init("seed", csv: "seed", text: { String($0.run.seed) }, exact: { String($0.run.seed) }),
        .init("status", csv: "status", numeric: false, text: { $0.status.label }, exact: { $0.status.label }),
        .init("final test error (%)", csv: "final_test_error",
              text: { ReportFormat.percent($0.finalTestError) }, exact: { ReportFormat.exact($0.finalTestError) }),
        .init("best test error (%)", csv: "best_test_error",
              text: { ReportFormat.percent($0.bestTestError) }, exact: { ReportFormat.exact($0.bestTestError) }),
        .init("best at epoch", csv: "best_epoch",
              text: { ReportFormat.epoch($0.bestEpoch) }, exact: { ReportFormat.exact($0.bestEpoch) }),
        .init("final train loss", csv: "final_train_loss",
              text: { ReportFormat.loss($0.finalTrainLoss) }, exact: { ReportFormat.exact($0.finalTrainLoss) }),
        .init("zero fraction", csv: "zero_fraction",
              text: { ReportFormat.fraction($0.zeroFraction) }, exact: { ReportFormat.exact($0.zeroFraction) }),
        .init("wall time", csv: "wall_s",
              text: { ReportFormat.duration($0.wallSeconds) }, exact: { ReportFormat.exact($0.wallSeconds) }),
        .init("note", csv: "reason", numeric: false, text: { $0.summary?.reason ?? "" }, exact: { $0.summary?.reason ?? "" }),
        .init("directory", csv: "dir", numeric: false, text: { $0.run.dir }, exact: { $0.run.dir }),
    ]

    /// The per-setting table: seeds of one (method, lr, decay) as mean ± sample std over the
    /// completed runs.
    static let settingColumns: [ReportColumn<ReportSetting>] = [
        .init("method", csv: "method", numeric: false, text: { $0.method }, exact: { $0.method }),
        .init("lr", csv: "lr", text: { ReportFormat.hyper($0.lr) }, exact: { ReportFormat.exact($0.lr) }),
        .init("λ", csv: "decay", text: { ReportFormat.hyper($0.decay) }, exact: { ReportFormat.exact($0.decay) }),
        .init("seeds done", csv: "completed",
              text: { "\($0.completed.count) of \($0.runs.count)" }, exact: { String($0.completed.count) }),
        .init("final test error (%)", csv: "final_test_error_mean",
              text: { ReportFormat.percentMeanStd($0.aggregate(.final)) }, exact: { ReportFormat.exact($0.aggregate(.final)?.mean) }),
        .init("", csv: "final_test_error_std", text: { _ in "" }, exact: { ReportFormat.exact($0.aggregate(.final)?.std) }),
        .init("best test error (%)", csv: "best_test_error_mean",
              text: { ReportFormat.percentMeanStd($0.aggregate(.best)) }, exact: { ReportFormat.exact($0.aggregate(.best)?.mean) }),
        .init("", csv: "best_test_error_std", text: { _ in "" }, exact: { ReportFormat.exact($0.aggregate(.best)?.std) }),
        .init("final train loss", csv: "final_train_loss_mean",
              text: { ReportFormat.lossMeanStd($0.finalTrainLoss) }, exact: { ReportFormat.exact($0.finalTrainLoss?.mean) }),
        .init("", csv: "final_train_loss_std", text: { _ in "" }, exact: { ReportFormat.exact($0.finalTrainLoss?.std) }),
        .init("runs", csv: "runs", text: { String($0.runs.count) }, exact: { String($0.runs.count) }),
        .init("statuses", csv: "statuses", numeric: false,
              text: { statusList($0.runs) }, exact: { statusList($0.runs) }),
    ]

    /// "2 completed" or "1 completed, 1 failed".
    static func statusList(_ runs: [ReportRun]) -> String {
        let c = ReportStatusCounts(runs.map(\.status))
        return RunStatus?.sweepOrder.compactMap { s in
            let n = c.byStatus[s] ?? 0
            return n > 0 ? "\(n) \(s.label)" : nil
        }.joined(separator: ", ")
    }

    // Columns with an empty header carry only a CSV value (the std of the column before,
    // which humans read as "mean ± std" in one cell).
    static func visible<Row>(_ columns: [ReportColumn<Row>]) -> [ReportColumn<Row>] { columns.filter { !$0.header.isEmpty } }

    static func csv<Row>(_ columns: [ReportColumn<Row>], _ rows: [Row]) -> String {
        var out = columns.map(\.csvName).joined(separator: ",") + "\n"
        for r in rows { out += columns.map { ReportFormat.csv($0.csv(r)) }.joined(separator: ",") + "\n" }
        return out
    }

    static func markdown<Row>(_ columns: [ReportColumn<Row>], _ rows: [Row]) -> String {
        let cols = visible(columns)
        var out = "| " + cols.map { ReportFormat.markdown($0.header) }.joined(separator: " | ") + " |\n"
        out += "|" + cols.map { $0.numeric ? "---:|" : "---|" }.joined() + "\n"
        for r in rows { out += "| " + cols.map { ReportFormat.markdown($0.text(r)) }.joined(separator: " | ") + " |\n" }
        return out
    }

    /// An HTML table; `rowClass` lets the page tint failed/pending rows and mark best ones.
    static func html<Row>(_ columns: [ReportColumn<Row>], _ rows: [Row], rowClass: (Row) -> String = { _ in "" }) -> String {
        let cols = visible(columns)
        var out = "<table>\n<thead><tr>"
        out += cols.map { "<th\($0.numeric ? " class=\"num\"" : "")>\(ReportFormat.html($0.header))</th>" }.joined()
        out += "</tr></thead>\n<tbody>\n"
        for r in rows {
            let cls = rowClass(r)
            out += "<tr\(cls.isEmpty ? "" : " class=\"\(cls)\"")>"
            out += cols.map { "<td\($0.numeric ? " class=\"num\"" : "")>\(ReportFormat.html($0.text(r)))</td>" }.joined()
            out += "</tr>\n"
        }
        return out + "</tbody>\n</table>\n"
    }

    /// summary.md: the sweep's counts, the best setting per method and both tables.
    static func summaryMarkdown(_ results: SweepResults, metric: ReportMetric, best: [ReportMethodBest]) -> String {
        var md = "# Sweep report: \(results.manifest.name)\n\n"
        md += "Spec `\(results.manifest.spec)`. \(results.counts.sentence).\n"
        md += "Test error = 1 − test accuracy. Means and standard deviations are over the completed seeds of a setting.\n\n"
        md += "## Best setting per method (\(metric.phrase))\n\n"
        md += "Best settings \(results.selection.phrase).\n\n"
        if best.isEmpty { md += "No completed run yet.\n\n" }
        for b in best {
            md += "- **\(ReportFormat.markdown(b.method))**: lr \(ReportFormat.hyper(b.lr)), λ \(ReportFormat.hyper(b.decay)): "
            if let v = b.validationLoss { md += "validation loss \(ReportFormat.lossMeanStd(v)); test error " }
            md += "\(ReportFormat.percentMeanStd(b.value)) % (\(b.value.count) of \(b.runCount) seeds); "
            md += "best run `\(b.bestRunID)` (seed \(b.bestRunSeed)): \(ReportFormat.percent(b.bestRunValue)) %\n"
        }
        md += "\n## Settings (mean ± std over seeds)\n\n"
        md += markdown(settingColumns, results.settings)
        md += "\n## Runs\n\n"
        md += markdown(runColumns, results.sortedRuns)
        return md
    }
}
