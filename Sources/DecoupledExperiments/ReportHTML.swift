import Foundation

// report/index.html: one page with the counts, a note on how to read the figures, the
// heatmaps and curves (SVG inline as <img>, PNG linked), the best setting per method and
// both tables. No scripts, no external resources: it opens from a file:// URL, an archive
// or a CI artifact as it is.

enum ReportHTML {
    static let style = """
    body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; color: #1d1d1f;
           max-width: 1400px; margin: 0 auto; padding: 1.5em 2em 4em; }
    h1 { font-size: 1.7em; margin-bottom: 0.1em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
    .meta { color: #666; margin-top: 0; }
    .counts span { display: inline-block; padding: 0.15em 0.7em; border-radius: 1em; margin-right: 0.4em; font-weight: 600; }
    .c-done { background: #d9f2e3; color: #14532d; } .c-failed { background: #fde2e1; color: #7f1d1d; }
    .c-pending { background: #fdf1d6; color: #713f12; } .c-total { background: #eee; color: #333; }
    .note { background: #fff8e6; border-left: 4px solid #f0b429; padding: 0.5em 1em; }
    .error { background: #fdecea; border-left: 4px solid #d93025; padding: 0.5em 1em; }
    .read { background: #f5f7fa; padding: 0.6em 1.2em; border-radius: 6px; }
    .figures { display: flex; flex-wrap: wrap; gap: 1.5em; }
    figure { margin: 0; } figure img { max-width: 100%; border: 1px solid #e5e5e5; background: #fff; }
    figcaption { color: #555; font-size: 0.9em; }
    table { border-collapse: collapse; font-size: 0.88em; margin: 0.5em 0; }
    th, td { padding: 0.25em 0.7em; border-bottom: 1px solid #e8e8e8; text-align: left; white-space: nowrap; }
    th { background: #f3f3f3; position: sticky; top: 0; } .num { text-align: right; font-variant-numeric: tabular-nums; }
    tr.bad td { background: #fdf0ef; } tr.pending td { color: #888; } tr.best td { background: #eaf6ee; font-weight: 600; }
    code { background: #f3f3f3; padding: 0 0.3em; border-radius: 3px; }
    #study { border-bottom: 3px solid #ddd; padding-bottom: 1em; } ul.verdict li { margin: 0.35em 0; }
    .selection { font-weight: 600; }
    """

    static func page(_ results: SweepResults, metric: ReportMetric, best: [ReportMethodBest], figures: [ReportFigure],
                     drawn: Set<String>, plotError: ReportError?, range: ReportColourRange?, study: ReportStudy?) -> String {
        let h = ReportFormat.html
        let name = results.manifest.name
        let counts = results.counts
        let bestRunIDs = Set(best.map(\.bestRunID))
        var p = """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Sweep report: \(h(name))</title>
        <style>
        \(style)
        </style>
        </head>
        <body>
        <h1>Sweep report: \(h(name))</h1>
        <p class="meta">spec <code>\(h(results.manifest.spec))</code> · sweep directory <code>\(h(results.directory.path))</code> · \
        generated \(h(ISO8601DateFormatter().string(from: Date()))) by <code>decoupled report</code> · metric: \(h(metric.phrase))</p>
        <p class="counts"><span class="c-total">\(counts.total) runs</span><span class="c-done">\(counts.done) done</span>\
        <span class="c-failed">\(counts.failed) failed\((counts.byStatus[.diverged] ?? 0) > 0 ? " (\(counts.byStatus[.diverged]!) diverged)" : "")</span>\
        <span class="c-pending">\(counts.pending) pending\((counts.byStatus[.preempted] ?? 0) > 0 ? " (\(counts.byStatus[.preempted]!) preempted)" : "")</span></p>

        """
        if counts.pending > 0 {
            p += "<p class=\"note\">\(counts.pending) of \(counts.total) runs \(counts.pending == 1 ? "has" : "have") not finished. This report shows the \(counts.done) "
            p += "completed ones; run <code>decoupled report</code> again when the sweep is done.</p>\n"
        }
        if let e = plotError {
            p += "<p class=\"error\">Figures missing: \(h(e.message))</p>\n"
        }
        let figureHTML = { (f: ReportFigure) in figure(f, drawn: drawn) }
        if let study { p += study.html(results, figures: figures, figure: figureHTML) }

        p += """
        <h2>How to read this report</h2>
        <div class="read">
        <p>The sweep trains every <b>method</b> (an optimizer with a way of regularizing: L2 added to the
        gradient, or weight decay applied to the weights directly) at every <b>learning rate</b> and
        <b>weight decay λ</b> of a grid, with several seeds. <b>Test error</b> is 1 − test accuracy, in percent;
        lower is better.</p>
        <p><b>Heatmaps</b> (Loshchilov &amp; Hutter, Figure 2): one per method, one cell per (learning rate, λ),
        showing the \(h(metric.phrase)) averaged over the seeds that completed (in every run with a validation
        split, the test numbers are only reported: nothing is selected on them). Darker is better, and all
        heatmaps share one colour scale so methods compare by colour\(range?.capped == true ? String(format: " (it saturates above %.1f %%; every cell prints its exact value)", range!.high) : ""). The red
        outline marks the method's best cell, \(h(results.selection.phrase)); grey cells have no completed run and say why (diverged,
        failed, pending). The axes are the grid's values, evenly spaced (log-spaced grids), so λ = 0
        has a column of its own. What to look for: with <b>decoupled</b> weight decay the good region tends to be
        aligned with the axes (the best λ hardly moves with the learning rate, so the two can be tuned
        separately); with <b>L2 regularization</b> under Adam or momentum it tends to be a diagonal (change
        the learning rate and λ must change too).</p>
        <p><b>Learning curves</b> (Figure 3): test error and training loss (cross-entropy without the
        penalty, so L2 and decoupled runs compare) against epoch, for the best run of each method: the
        best seed of its best cell (by the same rule).</p>
        <p><b>Tables</b>: settings as mean ± sample standard deviation over completed seeds; every run
        with its status. The same numbers, unrounded, are in
        <a href="\(SweepReport.summaryCSV)">\(SweepReport.summaryCSV)</a> and
        <a href="\(SweepReport.settingsCSV)">\(SweepReport.settingsCSV)</a>
        (test errors as fractions, wall time in seconds); <a href="\(SweepReport.summaryMarkdown)">\(SweepReport.summaryMarkdown)</a> has them as Markdown.</p>
        </div>

        <h2>Best setting per method</h2>
        <p class="selection">Best settings \(h(results.selection.phrase)).</p>

        """
        let validation = results.selection == .validation
        if best.isEmpty { p += "<p>No completed run yet.</p>\n" } else {
            p += "<table>\n<thead><tr><th>method</th><th class=\"num\">lr</th><th class=\"num\">λ</th>"
            if validation { p += "<th class=\"num\">validation loss (selected on)</th>" }
            p += "<th class=\"num\">\(h(metric.phrase)) (%)\(validation ? ", reported" : "")</th><th class=\"num\">seeds</th><th>best run</th><th class=\"num\">its test error (%)</th></tr></thead>\n<tbody>\n"
            for b in best {
                p += "<tr><td>\(h(b.method))</td><td class=\"num\">\(h(ReportFormat.hyper(b.lr)))</td><td class=\"num\">\(h(ReportFormat.hyper(b.decay)))</td>"
                if validation { p += "<td class=\"num\">\(h(ReportFormat.lossMeanStd(b.validationLoss)))</td>" }
                p += "<td class=\"num\">\(h(ReportFormat.percentMeanStd(b.value)))</td><td class=\"num\">\(b.value.count) of \(b.runCount)</td>"
                p += "<td><code>\(h(b.bestRunID))</code> (seed \(b.bestRunSeed))</td><td class=\"num\">\(h(ReportFormat.percent(b.bestRunValue)))</td></tr>\n"
            }
            p += "</tbody>\n</table>\n"
        }

        p += "\n<h2>Heatmaps: \(h(metric.phrase)) by learning rate and weight decay</h2>\n<div class=\"figures\">\n"
        p += figures.filter { $0.kind == .heatmap }.map(figureHTML).joined()
        p += "</div>\n\n<h2>Learning curves of the best runs</h2>\n"
        let curveFigures = figures.filter { $0.kind == .testErrorCurves || $0.kind == .trainLossCurves }
        if curveFigures.isEmpty { p += "<p>No completed run yet.</p>\n" } else {
            p += "<div class=\"figures\">\n" + curveFigures.map(figureHTML).joined() + "</div>\n"
        }

        p += "\n<h2>Settings (mean ± std over seeds)</h2>\n"
        p += ReportTables.html(ReportTables.settingColumns, results.settings) { s in
            best.contains { $0.method == s.method && $0.lr == s.lr && $0.decay == s.decay } ? "best" : ""
        }
        p += "\n<h2>Runs</h2>\n"
        p += ReportTables.html(ReportTables.runColumns, results.sortedRuns) { r in
            if bestRunIDs.contains(r.run.id) { return "best" }
            if r.status.isFailure { return "bad" }
            return r.status.isUnfinished ? "pending" : ""
        }
        p += "\n</body>\n</html>\n"
        return p
    }

    /// One figure: the SVG shown, the PNG and the script linked, its title as caption.
    static func figure(_ f: ReportFigure, drawn: Set<String>) -> String {
        let h = ReportFormat.html
        guard drawn.contains(f.stem) else {
            return "<figure><figcaption>\(h(f.title)): not drawn (see the error above); script <a href=\"\(h(f.scriptName))\">\(h(f.scriptName))</a></figcaption></figure>\n"
        }
        return """
        <figure><a href="\(h(f.png))"><img src="\(h(f.svg))" alt="\(h(f.title))"></a>
        <figcaption>\(h(f.title)) · <a href="\(h(f.png))">PNG</a> · <a href="\(h(f.svg))">SVG</a> · <a href="\(h(f.scriptName))">gnuplot script</a></figcaption></figure>

        """
    }
}
