import DecoupledTraining
import Foundation

// The figures of a report, as gnuplot data files and scripts:
//
// - one heatmap per method of the mean test error over (learning rate, weight decay), the
//   AdamW paper's Figure 2. The grid is drawn in index coordinates with the true values as
//   tick labels: sweeps are log-spaced and include λ = 0, which no log axis can show. Cells
//   without a completed run are grey and say why; the best cell is outlined. All heatmaps
//   share one colour scale so that methods compare by colour.
// - learning curves (test error and training loss against epoch) of each method's best run,
//   the paper's Figure 3.

/// One figure of the report: `stem.png`, `stem.svg`, drawn by `stem.gp` from data files.
struct ReportFigure {
    enum Kind {
        case heatmap, testErrorCurves, trainLossCurves
        /// The study section's figures (ReportStudy).
        case studyHeatmap, studyCurves, studyFrontier, studyBudget
    }
    let kind: Kind
    let stem: String
    /// The method of a heatmap; nil for the curves, which show every method.
    let method: String?
    let title: String
    /// Data files next to the script, name → contents.
    let data: [(name: String, contents: String)]
    let script: String

    var png: String { stem + ".png" }
    var svg: String { stem + ".svg" }
    var scriptName: String { stem + ".gp" }
}

/// A colour scale shared by heatmaps (test error in percent, or a loss), clipped so that a
/// few bad cells cannot wash out the others.
struct ReportColourRange {
    let low: Double
    let high: Double
    /// True when the worst cells are beyond `high` and saturate, so the good region keeps
    /// its contrast (a chance-level cell at 90 % would otherwise flatten 11 % vs 14 %).
    let capped: Bool

    /// From the cell values (lower is better); nil when no cell has a result. `minimumCap` is
    /// how far above the best value colours reach at least (10 points of error by default).
    init?(_ values: [Double], minimumCap: Double = 10) {
        let finite = values.filter(\.isFinite)
        guard let lo = finite.min(), let hi = finite.max() else { return nil }
        // Saturate beyond 2.5 × the best value (at least best + minimumCap): the region a tuned
        // method lives in stays readable, and every cell still prints its exact number. The
        // scale ends at the worst cell inside that cap, so cells beyond it (a diverged or
        // chance-level setting) do not move the colours of the others at all.
        let cap = max(lo * 2.5, lo + minimumCap)
        let inside = finite.filter { $0 <= cap }.max()!
        low = lo
        capped = hi > cap
        high = inside > lo ? inside : lo + minimumCap / 10
    }

    /// The position of `v` on the scale, 0...1.
    func position(_ v: Double) -> Double { min(1, max(0, (v - low) / (high - low))) }
}

enum ReportPlots {
    /// Matplotlib's viridis at five stops: perceptually uniform, readable in grey and by
    /// colour-blind readers; dark = low error = good.
    static let palette = ##"set palette defined (0 "#440154", 0.25 "#3b528b", 0.5 "#21918c", 0.75 "#5ec962", 1 "#fde725")"##
    /// Okabe–Ito colours for lines: distinguishable with every common colour-vision deficiency.
    static let lineColours = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]
    static let font = "DejaVu Sans"

    /// The figure header every script shares: where it comes from and how to rerun it.
    static func header(_ stem: String, _ what: String) -> String {
        """
        # \(stem).gp: \(what)
        # Written by `decoupled report`; rerun in this directory with `gnuplot \(stem).gp`.
        set encoding utf8
        # Method labels are user text: no enhanced-text markup (an "_" would become a subscript).
        set termoption noenhanced

        """
    }

    /// Draws the plot defined above it as PNG and SVG.
    static func outputs(_ stem: String, width: Int, height: Int, plot: String) -> String {
        outputs(stem, width: width, height: height, png: plot, svg: "replot")
    }

    /// The same for a multiplot, which `replot` cannot repeat: the whole body is drawn once
    /// per terminal.
    static func outputs(_ stem: String, width: Int, height: Int, multiplot body: String) -> String {
        outputs(stem, width: width, height: height, png: body, svg: body)
    }

    /// pngcairo when this gnuplot has it, else libgd's png (some gnuplot-nox builds lack cairo).
    private static func outputs(_ stem: String, width: Int, height: Int, png: String, svg: String) -> String {
        """

        if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
            set terminal pngcairo size \(width),\(height) noenhanced font "\(font),11"
        } else {
            set terminal png size \(width),\(height) noenhanced font "\(font),11"
        }
        set output "\(stem).png"
        \(png)
        set terminal svg size \(width),\(height) noenhanced font "\(font),11" background "#ffffff"
        set output "\(stem).svg"
        \(svg)
        unset output

        """
    }

    /// A grid coordinate as short text: "2.47", not "2.4699999999999998".
    static func coordinate(_ v: Double) -> String { String(format: "%g", v) }

    /// The colour range over every method's cells for `metric`.
    static func colourRange(_ results: SweepResults, metric: ReportMetric) -> ReportColourRange? {
        ReportColourRange(results.settings.compactMap { $0.aggregate(metric).map { $0.mean * 100 } })
    }

    // MARK: heatmap

    /// One method's grid as gnuplot text: the data rows, the grey cells of settings without a
    /// result, the outline of the selected cell and one value label per cell. Shared by the
    /// per-method heatmaps and the study's side-by-side pairs.
    struct HeatmapPanel {
        var data = ""
        var objects = ""
        var labels = ""
        var xtics = ""
        var ytics = ""
        let nx: Int
        let ny: Int
        var hasMissing = false
        var hasPartial = false
        var hasOutline = false
        /// Grid half-width of a tile: white gaps between tiles, no anti-aliasing seams.
        static let half = 0.47
    }

    /// `value` is a cell's mean ± std over its completed seeds, in the unit plotted (`scale`
    /// times the stored number); `text` prints it in the cell.
    static func heatmapPanel(_ results: SweepResults, method: String, selected: ReportSetting?, range: ReportColourRange?,
                             value: (ReportSetting) -> MeanStd?, text: (MeanStd) -> String, font: Int = 12) -> HeatmapPanel {
        let (lrs, decays) = results.axes(of: method)
        let settings = results.settings(of: method)
        var p = HeatmapPanel(nx: lrs.count, ny: decays.count)
        let half = HeatmapPanel.half, n = ReportPlots.coordinate
        var objectID = 0, labelID = 0
        p.data = "# x_index y_index lr decay value seeds_completed seeds\n"
        for (yi, decay) in decays.enumerated() {
            for (xi, lr) in lrs.enumerated() {
                let cell = settings.first { $0.lr == lr && $0.decay == decay }
                let (x, y) = (Double(xi), Double(yi))
                if let cell = cell, let v = value(cell), let range = range {
                    p.data += "\(xi) \(yi) \(lr) \(decay) \(v.mean) \(v.count) \(cell.runs.count)\n"
                    // White on the dark end of viridis, near-black on the light end.
                    let ink = range.position(v.mean) < 0.62 ? "#ffffff" : "#1a1a1a"
                    let partial = v.count < cell.runs.count
                    labelID += 1
                    p.labels += "set label \(labelID) \(ReportFormat.gnuplot(text(v))) at \(n(x)),\(n(partial ? y + 0.1 : y)) center front tc rgb \"\(ink)\" font \",\(font)\"\n"
                    if partial {
                        p.hasPartial = true
                        labelID += 1
                        p.labels += "set label \(labelID) \"\(v.count) of \(cell.runs.count) seeds\" at \(n(x)),\(n(y - 0.2)) center front tc rgb \"\(ink)\" font \",8\"\n"
                    }
                } else {
                    p.hasMissing = true
                    objectID += 1
                    // A hole in the grid (no such run) is paler than a run without a result.
                    let grey = cell == nil ? "#ededed" : "#d4d4d4"
                    p.objects += "set object \(objectID) rect from \(n(x - half)),\(n(y - half)) to \(n(x + half)),\(n(y + half)) back fc rgb \"\(grey)\" fs solid 1.0 noborder\n"
                    labelID += 1
                    let why = cell.map { $0.missingLabel } ?? "no run"
                    p.labels += "set label \(labelID) \(ReportFormat.gnuplot(why.isEmpty ? "no result" : why)) at \(n(x)),\(n(y)) center front tc rgb \"#555555\" font \",9\"\n"
                }
            }
        }
        if let s = selected, let xi = lrs.firstIndex(of: s.lr), let yi = decays.firstIndex(of: s.decay) {
            objectID += 1
            p.hasOutline = true
            let e = half + 0.02
            p.objects += "set object \(objectID) rect from \(n(Double(xi) - e)),\(n(Double(yi) - e)) to \(n(Double(xi) + e)),\(n(Double(yi) + e)) front fs empty border lc rgb \"#ff2d20\" lw 3.5\n"
        }
        p.xtics = ReportFormat.hyperAxis(lrs).enumerated().map { "\(ReportFormat.gnuplot($0.element)) \($0.offset)" }.joined(separator: ", ")
        p.ytics = ReportFormat.hyperAxis(decays).enumerated().map { "\(ReportFormat.gnuplot($0.element)) \($0.offset)" }.joined(separator: ", ")
        return p
    }

    /// The tiles of a panel (the plot command), or an empty plot when no cell has a value.
    static func heatmapPlot(_ file: String, _ p: HeatmapPanel, range: ReportColourRange?) -> String {
        guard let r = range, p.data.split(separator: "\n").contains(where: { !$0.hasPrefix("#") }) else {
            // No cell with a result: draw the grey grid alone; a colour bar would have no scale.
            return "unset colorbox\nplot NaN notitle\n"
        }
        return "set cbrange [\(String(format: "%.6g", r.low)):\(String(format: "%.6g", r.high))]\n"
            + "plot \"\(file)\" using 1:2:(\(HeatmapPanel.half)):(\(HeatmapPanel.half)):5 with boxxyerror fs solid 1.0 noborder fc palette\n"
    }

    /// The note under a heatmap, wrapped to `width` pixels: what the outline, grey cells and
    /// saturated colours mean. `unit` follows the saturation value ("%" or "").
    static func heatmapLegend(_ panels: [HeatmapPanel], selection: ReportSelection, range: ReportColourRange?,
                              unit: String, width: Int) -> [String] {
        var legend = [String]()
        if panels.contains(where: \.hasOutline) { legend.append(selection.outline) }
        if panels.contains(where: \.hasMissing) { legend.append("grey: no completed run (status shown)") }
        if panels.contains(where: \.hasPartial) { legend.append("\"k of n seeds\": mean over the completed ones") }
        if let r = range, r.capped { legend.append("colours saturate above " + String(format: "%.3g", r.high) + unit) }
        // About 6.5 pixels per character at 9 points; wrap so the note never runs off the image.
        return ReportFormat.wrap(legend, separator: "   ·   ", width: (width - 40) * 10 / 65)
    }

    /// A note centred at the bottom of the image. Untagged, after the numbered cell labels, so
    /// it takes the next free tag and never replaces one; gnuplot anchors a multi-line label
    /// at its first line, so lift it by ~14 px per line.
    static func bottomNote(_ lines: [String], height: Int) -> String {
        let y = String(format: "%.4f", Double(12 + 14 * lines.count) / Double(height))
        return "set label \(ReportFormat.gnuplot(lines.joined(separator: "\n"))) at screen 0.5, screen \(y) center font \",9\" tc rgb \"#333333\"\n"
    }

    static func heatmap(_ results: SweepResults, method: String, slug: String, metric: ReportMetric,
                        range: ReportColourRange?) -> ReportFigure {
        let stem = "heatmap-\(slug)"
        let settings = results.settings(of: method)
        let best = results.best(of: method, metric: metric)
        let seeds = settings.map(\.runs.count).max() ?? 0
        // One decimal reads fastest; two when the whole scale spans less than two points.
        let decimals = range.map { $0.high - $0.low < 2 ? 2 : 1 } ?? 1
        let panel = heatmapPanel(results, method: method, selected: best?.setting, range: range,
                                 value: { $0.aggregate(metric).map(percent) }, text: { String(format: "%.\(decimals)f", $0.mean) })
        // Cells of about 105 × 85 pixels, and room for the colour bar, labels and legend.
        let width = max(660, 270 + 105 * panel.nx), height = max(540, 210 + 85 * panel.ny)
        let title = "\(method): \(metric.phrase) (%)"
        let legendLines = heatmapLegend([panel], selection: results.selection, range: range, unit: " %", width: width)
        let subtitle = "mean over \(seeds == 1 ? "1 seed" : "\(seeds) seeds") · sweep \(results.manifest.name)"

        let data = "# \(method): \(metric.phrase) (%), mean over the completed seeds of each cell.\n"
            + "# Cells without a completed run are not listed (the script draws them grey).\n" + panel.data
        var s = header(stem, "heatmap of \(metric.phrase), method \(method)")
        s += """
        set title \(ReportFormat.gnuplot(title + "\n" + subtitle)) font ",14"
        unset key
        set border 0
        set tics nomirror scale 0
        set xrange [-0.5:\(Double(panel.nx) - 0.5)]
        set yrange [-0.5:\(Double(panel.ny) - 0.5)]
        set xtics (\(panel.xtics)) offset 0,0.3
        set ytics (\(panel.ytics)) offset 0.5,0
        set xlabel "learning rate (log-spaced)"
        set ylabel "weight decay / L2 λ (log-spaced; 0 = none)"
        \(palette)
        set cblabel "test error (%)" offset 1,0
        set cbtics scale 0.5 out nomirror
        set bmargin \(5 + legendLines.count)

        """
        s += panel.objects + panel.labels + bottomNote(legendLines, height: height)
        s += outputs(stem, width: width, height: height, plot: heatmapPlot("\(stem).dat", panel, range: range))
        return ReportFigure(kind: .heatmap, stem: stem, method: method, title: "\(method): \(metric.phrase) by learning rate and weight decay",
                            data: [("\(stem).dat", data)], script: s)
    }

    /// A fraction's mean ± std in percent.
    static func percent(_ m: MeanStd) -> MeanStd { m.scaled(by: 100) }

    // MARK: learning curves

    /// Tick marks for a log axis over `range`, so a loss falling from 2 to 0.3 gets labels in
    /// between instead of gnuplot's lone decade tick: denser mantissas the fewer decades it spans.
    static func logTics(_ range: (Double, Double)) -> String {
        guard range.0.isFinite, range.1.isFinite, range.0 > 0, range.1 >= range.0 else { return "" }
        let decades = log10(range.1 / range.0)
        let mantissas: [Double] = decades < 1.2 ? [1, 1.5, 2, 3, 4, 5, 6, 8] : decades < 2.5 ? [1, 2, 3, 5] : decades < 5 ? [1, 2, 5] : [1]
        var tics: [String] = []
        var exponent = Int(floor(log10(range.0 / 1.3)))
        while pow(10, Double(exponent)) <= range.1 * 1.3 {
            for m in mantissas {
                let v = m * pow(10, Double(exponent))
                // Decimal text rather than the product: 3 × 0.1 is 0.30000000000000004 in binary.
                if v >= range.0 / 1.3 && v <= range.1 * 1.3 { tics.append(String(format: "%g", v)) }
            }
            exponent += 1
        }
        guard tics.count >= 2 else { return "" }
        return "set ytics (" + tics.joined(separator: ", ") + ")\nset mytics 1"
    }

    /// The axes and key of every plot against epoch: open axes, a light grid, the key boxed
    /// in the top right, the epochs from 0, the y range fitted with a little room.
    static let curveAxes = """
        set border 3
        set tics nomirror out
        set grid xtics ytics lt 1 lc rgb "#e3e3e3" lw 1
        set key top right Left reverse opaque box lc rgb "#bbbbbb" samplen 2.5 spacing 1.2 width 1
        set xrange [0:*]
        set autoscale yfix
        set offsets 0, 0, graph 0.06, graph 0.04
        """

    /// One method's best run and its metrics records, for the curves.
    struct Curve {
        let method: String
        let slug: String
        let best: ReportMethodBest
        let records: [MetricRecord]
    }

    /// Test error (or training loss) against epoch, one line per method's best run.
    static func curves(_ curves: [Curve], kind: ReportFigure.Kind, sweepName: String) -> ReportFigure {
        let isTest = kind == .testErrorCurves
        let stem = isTest ? "curves-test-error" : "curves-train-loss"
        var data: [(name: String, contents: String)] = []
        var plots: [String] = []
        var logScale = !isTest
        var lossRange: (Double, Double) = (.infinity, -.infinity)
        for (i, c) in curves.enumerated() {
            let name = "curve-\(c.slug)-\(isTest ? "test-error" : "train-loss").dat"
            var text = "# \(c.method), run \(c.best.bestRunID) (lr \(c.best.lr), decay \(c.best.decay), seed \(c.best.bestRunSeed))\n"
            text += isTest ? "# epoch test_error_pct   (eval records)\n" : "# epoch train_data_loss   (cross-entropy without penalty)\n"
            var points = 0
            for r in c.records {
                let e = r.epoch
                guard e.isFinite else { continue }
                if isTest, let err = r.testError, err.isFinite { text += "\(e) \(err * 100)\n"; points += 1 }
                if !isTest, let l = r.dataLoss, l.isFinite {
                    text += "\(e) \(l)\n"; points += 1
                    if l <= 0 { logScale = false }
                    lossRange = (min(lossRange.0, l), max(lossRange.1, l))
                }
            }
            data.append((name, text))
            guard points > 0 else { continue }
            let colour = lineColours[i % lineColours.count]
            // Points mark evaluations while they are few; a dense train-loss log is a line.
            let style = points <= 60 ? "linespoints pt 7 ps 0.7" : "lines"
            let label = "\(c.method)  (lr \(ReportFormat.hyper(c.best.lr)), λ \(ReportFormat.hyper(c.best.decay)), seed \(c.best.bestRunSeed))"
            plots.append("\"\(name)\" using 1:2 with \(style) lw 2 lc rgb \"\(colour)\" title \(ReportFormat.gnuplot(label))")
        }
        let title = isTest ? "Test error of each method's best setting" : "Training loss of each method's best setting"
        var s = header(stem, isTest ? "test error against epoch, best run per method" : "training loss against epoch, best run per method")
        s += """
        set title \(ReportFormat.gnuplot(title + "\nsweep \(sweepName)")) font ",14"
        set xlabel "epoch"
        set ylabel \(ReportFormat.gnuplot(isTest ? "test error (%)" : (logScale ? "training loss (cross-entropy, log scale)" : "training loss (cross-entropy)")))
        \(curveAxes)
        set format y "%g"
        \(logScale ? "set logscale y\n" + logTics(lossRange) : "")

        """
        let plot = plots.isEmpty ? "plot NaN notitle" : "plot " + plots.joined(separator: ", \\\n     ")
        s += outputs(stem, width: 860, height: 540, plot: plot)
        return ReportFigure(kind: kind, stem: stem, method: nil,
                            title: isTest ? "Test error vs epoch (best run per method)" : "Training loss vs epoch (best run per method)",
                            data: data, script: s)
    }
}
