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
    enum Kind { case heatmap, testErrorCurves, trainLossCurves }
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

/// The colour scale shared by all heatmaps, in percent.
struct ReportColourRange {
    let low: Double
    let high: Double
    /// True when the worst cells are beyond `high` and saturate, so the good region keeps
    /// its contrast (a chance-level cell at 90 % would otherwise flatten 11 % vs 14 %).
    let capped: Bool

    /// From the cell values of every method; nil when no cell has a result.
    init?(_ values: [Double]) {
        guard let lo = values.min(), let hi = values.max() else { return nil }
        // Saturate beyond 2.5 × the best error (at least best + 10 points): the region a tuned
        // method lives in stays readable, and every cell still prints its exact number.
        let cap = max(lo * 2.5, lo + 10)
        low = lo
        capped = hi > cap
        high = capped ? cap : (hi > lo ? hi : lo + 1)
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

    /// Draws the plot defined above it as PNG and SVG. pngcairo when this gnuplot has it,
    /// else libgd's png (some gnuplot-nox builds lack cairo).
    static func outputs(_ stem: String, width: Int, height: Int, plot: String) -> String {
        """

        if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
            set terminal pngcairo size \(width),\(height) noenhanced font "\(font),11"
        } else {
            set terminal png size \(width),\(height) noenhanced font "\(font),11"
        }
        set output "\(stem).png"
        \(plot)
        set terminal svg size \(width),\(height) noenhanced font "\(font),11" background "#ffffff"
        set output "\(stem).svg"
        replot
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

    static func heatmap(_ results: SweepResults, method: String, slug: String, metric: ReportMetric,
                        range: ReportColourRange?) -> ReportFigure {
        let stem = "heatmap-\(slug)"
        let (lrs, decays) = results.axes(of: method)
        let settings = results.settings(of: method)
        let best = results.best(of: method, metric: metric)
        let seeds = settings.map(\.runs.count).max() ?? 0
        let nx = lrs.count, ny = decays.count
        // Cells of about 105 × 85 pixels, and room for the colour bar, labels and legend.
        let width = max(660, 270 + 105 * nx), height = max(540, 210 + 85 * ny)
        let title = "\(method): \(metric.phrase) (%)"
        let half = 0.47  // tiles with white gaps: no anti-aliasing seams, cells read as a grid
        // One decimal reads fastest; two when the whole scale spans less than two points.
        let decimals = range.map { $0.high - $0.low < 2 ? 2 : 1 } ?? 1

        var data = "# \(method): \(metric.phrase) (%), mean over the completed seeds of each cell.\n"
        data += "# Cells without a completed run are not listed (the script draws them grey).\n"
        data += "# x_index y_index lr decay test_error_pct seeds_completed seeds\n"
        var objects = "", labels = ""
        var objectID = 0, labelID = 0
        var hasMissing = false, hasPartial = false
        for (yi, decay) in decays.enumerated() {
            for (xi, lr) in lrs.enumerated() {
                let cell = settings.first { $0.lr == lr && $0.decay == decay }
                let (x, y) = (Double(xi), Double(yi))
                let n = ReportPlots.coordinate
                if let cell = cell, let v = cell.aggregate(metric), let range = range {
                    let pct = v.mean * 100
                    data += "\(xi) \(yi) \(lr) \(decay) \(pct) \(v.count) \(cell.runs.count)\n"
                    // White on the dark end of viridis, near-black on the light end.
                    let ink = range.position(pct) < 0.62 ? "#ffffff" : "#1a1a1a"
                    let partial = v.count < cell.runs.count
                    labelID += 1
                    labels += "set label \(labelID) \(ReportFormat.gnuplot(String(format: "%.\(decimals)f", pct))) at \(n(x)),\(n(partial ? y + 0.1 : y)) center front tc rgb \"\(ink)\" font \",12\"\n"
                    if partial {
                        hasPartial = true
                        labelID += 1
                        labels += "set label \(labelID) \"\(v.count) of \(cell.runs.count) seeds\" at \(n(x)),\(n(y - 0.2)) center front tc rgb \"\(ink)\" font \",8\"\n"
                    }
                } else {
                    hasMissing = true
                    objectID += 1
                    // A hole in the grid (no such run) is paler than a run without a result.
                    let grey = cell == nil ? "#ededed" : "#d4d4d4"
                    objects += "set object \(objectID) rect from \(n(x - half)),\(n(y - half)) to \(n(x + half)),\(n(y + half)) back fc rgb \"\(grey)\" fs solid 1.0 noborder\n"
                    labelID += 1
                    let why = cell.map { $0.missingLabel } ?? "no run"
                    labels += "set label \(labelID) \(ReportFormat.gnuplot(why.isEmpty ? "no result" : why)) at \(n(x)),\(n(y)) center front tc rgb \"#555555\" font \",9\"\n"
                }
            }
        }
        if let best = best, let xi = lrs.firstIndex(of: best.setting.lr), let yi = decays.firstIndex(of: best.setting.decay) {
            objectID += 1
            let e = half + 0.02, n = ReportPlots.coordinate
            objects += "set object \(objectID) rect from \(n(Double(xi) - e)),\(n(Double(yi) - e)) to \(n(Double(xi) + e)),\(n(Double(yi) + e)) front fs empty border lc rgb \"#ff2d20\" lw 3.5\n"
        }

        var legend = [String]()
        if best != nil { legend.append("red outline: lowest mean error") }
        if hasMissing { legend.append("grey: no completed run (status shown)") }
        if hasPartial { legend.append("\"k of n seeds\": mean over the completed ones") }
        if let r = range, r.capped { legend.append(String(format: "colours saturate above %.1f %%", r.high)) }
        // About 6.5 pixels per character at 9 points; wrap so the note never runs off the image.
        let legendLines = ReportFormat.wrap(legend, separator: "   ·   ", width: (width - 40) * 10 / 65)
        let subtitle = "mean over \(seeds == 1 ? "1 seed" : "\(seeds) seeds") · sweep \(results.manifest.name)"

        let xtics = ReportFormat.hyperAxis(lrs).enumerated().map { "\(ReportFormat.gnuplot($0.element)) \($0.offset)" }.joined(separator: ", ")
        let ytics = ReportFormat.hyperAxis(decays).enumerated().map { "\(ReportFormat.gnuplot($0.element)) \($0.offset)" }.joined(separator: ", ")
        var s = header(stem, "heatmap of \(metric.phrase), method \(method)")
        s += """
        set title \(ReportFormat.gnuplot(title + "\n" + subtitle)) font ",14"
        unset key
        set border 0
        set tics nomirror scale 0
        set xrange [-0.5:\(Double(nx) - 0.5)]
        set yrange [-0.5:\(Double(ny) - 0.5)]
        set xtics (\(xtics)) offset 0,0.3
        set ytics (\(ytics)) offset 0.5,0
        set xlabel "learning rate (log-spaced)"
        set ylabel "weight decay / L2 λ (log-spaced; 0 = none)"
        \(palette)
        set cblabel "test error (%)" offset 1,0
        set cbtics scale 0.5 out nomirror
        set bmargin \(5 + legendLines.count)

        """
        s += objects + labels
        // Untagged, after the numbered cell labels, so it takes the next free tag and never replaces one.
        // gnuplot anchors a multi-line label at its first line, so lift it by ~14 px per line.
        let legendY = String(format: "%.4f", Double(12 + 14 * legendLines.count) / Double(height))
        s += "set label \(ReportFormat.gnuplot(legendLines.joined(separator: "\n"))) at screen 0.5, screen \(legendY) center font \",9\" tc rgb \"#333333\"\n"
        let plot: String
        if let r = range, data.split(separator: "\n").contains(where: { !$0.hasPrefix("#") }) {
            s += "set cbrange [\(String(format: "%.4f", r.low)):\(String(format: "%.4f", r.high))]\n"
            plot = "plot \"\(stem).dat\" using 1:2:(\(half)):(\(half)):5 with boxxyerror fs solid 1.0 noborder fc palette"
        } else {
            // No cell with a result: draw the grey grid alone; a colour bar would have no scale.
            s += "unset colorbox\n"
            plot = "plot NaN notitle"
        }
        s += outputs(stem, width: width, height: height, plot: plot)
        return ReportFigure(kind: .heatmap, stem: stem, method: method, title: "\(method): \(metric.phrase) by learning rate and weight decay",
                            data: [("\(stem).dat", data)], script: s)
    }

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

    /// One method's best run and its metrics records, for the curves.
    struct Curve {
        let method: String
        let slug: String
        let best: ReportMethodBest
        let records: [SweepMetricsRecord]
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
                guard let e = r.epoch, e.isFinite else { continue }
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
        set border 3
        set tics nomirror out
        set grid xtics ytics lt 1 lc rgb "#e3e3e3" lw 1
        set key top right Left reverse opaque box lc rgb "#bbbbbb" samplen 2.5 spacing 1.2 width 1
        set xrange [0:*]
        set autoscale yfix
        set offsets 0, 0, graph 0.06, graph 0.04
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
