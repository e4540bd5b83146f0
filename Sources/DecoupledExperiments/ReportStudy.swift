import DecoupledTraining
import Foundation

// The study section of a report (a sweep directory with study.json, written by `decoupled
// study`): the verdict's statements at the top of the page, then the figures a reviewer of
// the AdamW paper's claims asks for, each drawn from the same settings the verdict selected:
//
// - Figure 2 as pairs: coupled and decoupled heatmaps side by side on one clipped colour
//   scale, once for the test error (reported) and once for the validation loss (what
//   selection reads), every cell as mean ±std over seeds, each decay axis in its own unit;
// - learning curves of the selected settings with seed bands;
// - the sparsity frontier of coupled vs decoupled L1;
// - the training budget: validation loss against λ_norm per training length, and the best
//   λ (raw and normalized) against the length.

/// A study sweep's design, verdict and the metrics of its selected runs.
struct ReportStudy {
    let design: StudyDesign
    let verdict: StudyVerdict
    /// metrics.jsonl of every run of the selected Figure 2 settings, by run id.
    let records: [String: [MetricRecord]]

    /// Reads study.json and computes the verdict; nil for an ordinary sweep. Everything is
    /// read here, before the report writes anything.
    static func load(_ results: SweepResults, index: URL) throws -> ReportStudy? {
        guard let design = try StudyDesign.load(sweepDirectory: results.directory) else { return nil }
        let verdict = try StudyVerdict.compute(design: design, sweepDirectory: results.directory.path, reportIndex: index.path)
        var records: [String: [MetricRecord]] = [:]
        for id in verdict.selected.flatMap(\.runs) {
            guard let run = results.runs.first(where: { $0.run.id == id }) else { continue }
            records[id] = try MetricRecord.read(run.directory.appendingPathComponent("metrics.jsonl").path)
        }
        return ReportStudy(design: design, verdict: verdict, records: records)
    }

    var seedsText: String { verdict.seeds == 1 ? "1 seed" : "\(verdict.seeds) seeds" }

    func unit(_ method: String) -> String { design.decayUnit(method) ?? "weight decay λ" }

    func selected(_ method: String) -> StudyVerdict.Setting? { verdict.selected.first { $0.method == method } }

    static func slug(_ label: String) -> String {
        var taken = Set<String>()
        return ReportFormat.slug(label, taken: &taken)
    }

    /// Every figure of the section, in page order.
    func figures(_ results: SweepResults) -> [ReportFigure] {
        var figures: [ReportFigure] = []
        for (coupled, decoupled) in StudyDesign.basinPairs where results.methods.contains(coupled) || results.methods.contains(decoupled) {
            figures.append(pairHeatmap(results, coupled, decoupled, quantity: .testError))
            figures.append(pairHeatmap(results, coupled, decoupled, quantity: .validationLoss))
        }
        for (coupled, decoupled) in StudyDesign.basinPairs {
            if let f = selectedCurves(coupled, decoupled) { figures.append(f) }
        }
        if let f = frontier(results) { figures.append(f) }
        if let f = budget(results) { figures.append(f) }
        return figures
    }

    // MARK: Figure 2 pairs

    enum Quantity {
        case testError, validationLoss

        /// A setting's value over its completed seeds, in the plotted unit.
        func value(_ s: ReportSetting) -> MeanStd? {
            self == .testError ? s.aggregate(.final).map(ReportPlots.percent) : s.validationLoss
        }

        /// "15.63 ±0.21" (test error, %) or "0.452 ±0.004" (validation loss).
        func text(_ m: MeanStd) -> String {
            let f = self == .testError ? "%.2f" : "%.3f"
            return String(format: f, m.mean) + (m.std.map { " ±" + String(format: f, $0) } ?? "")
        }

        var phrase: String { self == .testError ? "final test error (%)" : "final validation loss (cross-entropy)" }
        var stemPart: String { self == .testError ? "test-error" : "val-loss" }
        /// Colours reach at least this far above the best cell (see ReportColourRange).
        var minimumCap: Double { self == .testError ? 10 : 0.25 }
        var unitSuffix: String { self == .testError ? " %" : "" }
    }

    /// A coupled method and its decoupled counterpart side by side, one colour scale.
    func pairHeatmap(_ results: SweepResults, _ coupled: String, _ decoupled: String, quantity q: Quantity) -> ReportFigure {
        let stem = "study-\(Self.slug(coupled))-vs-\(Self.slug(decoupled))-\(q.stemPart)"
        let methods = [coupled, decoupled]
        let range = ReportColourRange(methods.flatMap { results.settings(of: $0).compactMap { q.value($0)?.mean } },
                                      minimumCap: q.minimumCap)
        let panels = methods.map { m in
            ReportPlots.heatmapPanel(results, method: m, selected: results.settings(of: m).first { s in
                selected(m).map { $0.lr == s.lr && $0.decay == s.decay } ?? false
            }, range: range, value: q.value, text: q.text, font: 11)
        }
        let nx = panels.map(\.nx).max() ?? 1, ny = panels.map(\.ny).max() ?? 1
        // Two panels of ~115 × 80 pixel cells, the colour bar on the right, the note below.
        let width = max(1240, 2 * (190 + 115 * nx) + 260), height = max(600, 280 + 80 * ny)
        let legend = ReportPlots.heatmapLegend(panels, selection: .validation, range: range, unit: q.unitSuffix, width: width)
        let title = "\(coupled) vs \(decoupled): \(q.phrase), mean ±std over \(seedsText) · sweep \(results.manifest.name)"
        let top = 1 - 70.0 / Double(height), bottom = Double(95 + 14 * legend.count) / Double(height)
        let f = { (v: Double) in String(format: "%.4f", v) }
        var body = "set multiplot title \(ReportFormat.gnuplot(title)) font \",14\"\n"
        for (i, (m, p)) in zip(methods, panels).enumerated() {
            let (l, r) = i == 0 ? (0.09, 0.44) : (0.55, 0.90)
            body += """
            set lmargin at screen \(f(l)); set rmargin at screen \(f(r)); set tmargin at screen \(f(top)); set bmargin at screen \(f(bottom))
            set title \(ReportFormat.gnuplot(m)) font ",13"
            set xrange [-0.5:\(Double(p.nx) - 0.5)]
            set yrange [-0.5:\(Double(p.ny) - 0.5)]
            set xtics (\(p.xtics)) offset 0,0.3
            set ytics (\(p.ytics)) offset 0.5,0
            set xlabel "learning rate (log-spaced)"
            set ylabel \(ReportFormat.gnuplot(unit(m) + " (log-spaced; 0 = none)"))
            \(i == 0 ? "unset colorbox" : "set colorbox user origin screen 0.925, screen \(f(bottom)) size screen 0.016, screen \(f(top - bottom))")

            """
            body += p.objects + p.labels
            if i == 1 { body += ReportPlots.bottomNote(legend, height: height) }
            body += ReportPlots.heatmapPlot("\(stem)-\(Self.slug(m)).dat", p, range: range)
            body += "unset object\nunset label\n"
        }
        body += "unset multiplot\n"
        var s = ReportPlots.header(stem, "\(coupled) vs \(decoupled), \(q.phrase), one colour scale")
        s += """
        unset key
        set border 0
        set tics nomirror scale 0
        \(ReportPlots.palette)
        set cblabel \(ReportFormat.gnuplot(q.phrase)) offset 1,0
        set cbtics scale 0.5 out nomirror

        """
        s += ReportPlots.outputs(stem, width: width, height: height, multiplot: body)
        let data = zip(methods, panels).map { m, p in
            ("\(stem)-\(Self.slug(m)).dat", "# \(m): \(q.phrase), mean over the completed seeds of each cell; decay in \(unit(m)).\n" + p.data)
        }
        let caption = "\(coupled) (decay axis: \(unit(coupled))) vs \(decoupled) (decay axis: \(unit(decoupled))): "
            + "\(q.phrase), each cell mean ±std over \(seedsText), one colour scale clipped at 2.5× the best cell; "
            + "red outline: the setting selected on mean validation loss"
        return ReportFigure(kind: .studyHeatmap, stem: stem, method: nil, title: caption, data: data, script: s)
    }

    // MARK: learning curves

    /// Mean, min and max over seeds of one quantity at each evaluation every seed has.
    static func seedBand(_ runs: [[MetricRecord]], _ value: (MetricRecord) -> Double?) -> [(epoch: Double, mean: Double, low: Double, high: Double)] {
        var byEpoch: [Double: [Double]] = [:]
        for records in runs {
            for r in records {
                guard let v = value(r), v.isFinite else { continue }
                let e = r.epoch
                byEpoch[e, default: []].append(v)
            }
        }
        return byEpoch.keys.sorted().compactMap { e in
            let vs = byEpoch[e]!
            guard vs.count == runs.count else { return nil }
            return (e, vs.reduce(0, +) / Double(vs.count), vs.min()!, vs.max()!)
        }
    }

    /// Validation loss and test error against epoch of the two selected settings of a pair.
    func selectedCurves(_ coupled: String, _ decoupled: String) -> ReportFigure? {
        let chosen = [coupled, decoupled].compactMap(selected)
        guard !chosen.isEmpty else { return nil }
        let stem = "study-curves-\(Self.slug(coupled))-vs-\(Self.slug(decoupled))"
        var data: [(name: String, contents: String)] = []
        var valPlots: [String] = [], testPlots: [String] = []
        for (i, s) in chosen.enumerated() {
            let runs = s.runs.compactMap { records[$0] }
            let val = Self.seedBand(runs) { $0.valLoss }
            let test = Self.seedBand(runs) { $0.testError.map { $0 * 100 } }
            let name = "\(stem)-\(Self.slug(s.method)).dat"
            var text = "# \(s.method), lr \(s.lr), decay \(s.decay) (\(unit(s.method))), selected on validation loss; runs \(s.runs.joined(separator: " "))\n"
            text += "# Over the \(runs.count) seeds, at each evaluation all of them have:\n"
            text += "# epoch val_loss_mean val_loss_min val_loss_max test_error_pct_mean test_error_pct_min test_error_pct_max\n"
            for (v, t) in zip(val, test) where v.epoch == t.epoch {
                text += "\(v.epoch) \(v.mean) \(v.low) \(v.high) \(t.mean) \(t.low) \(t.high)\n"
            }
            data.append((name, text))
            let colour = ReportPlots.lineColours[i % ReportPlots.lineColours.count]
            let label = ReportFormat.gnuplot("\(s.method)  (lr \(ReportFormat.hyper(s.lr)), λ \(ReportFormat.hyper(s.decay)))")
            valPlots += ["\"\(name)\" using 1:3:4 with filledcurves fc rgb \"\(colour)\" fs transparent solid 0.22 noborder notitle",
                         "\"\(name)\" using 1:2 with linespoints pt 7 ps 0.7 lw 2 lc rgb \"\(colour)\" title \(label)"]
            testPlots += ["\"\(name)\" using 1:6:7 with filledcurves fc rgb \"\(colour)\" fs transparent solid 0.22 noborder notitle",
                          "\"\(name)\" using 1:5 with linespoints pt 7 ps 0.7 lw 2 lc rgb \"\(colour)\" title \(label)"]
        }
        var title = "\(coupled) vs \(decoupled), selected settings: line = mean over \(seedsText), band = min–max over seeds"
        // At λ = 0 a coupled method and its decoupled counterpart are the same optimizer.
        let same = chosen.count == 2 && chosen[0].lr == chosen[1].lr && chosen.allSatisfy { $0.decay == 0 }
        if same { title += "\nboth selected λ = 0 at the same lr: the same optimizer, so the curves coincide" }
        let body = """
        set multiplot layout 1,2 title \(ReportFormat.gnuplot(title)) font ",13"
        set title "validation loss (cross-entropy)"
        set ylabel "validation loss (cross-entropy)"
        plot \(valPlots.joined(separator: ", \\\n     "))
        set title "test error (%)"
        set ylabel "test error (%)"
        plot \(testPlots.joined(separator: ", \\\n     "))
        unset multiplot

        """
        var s = ReportPlots.header(stem, "learning curves of the selected settings with seed bands")
        s += """
        set xlabel "epoch"
        \(ReportPlots.curveAxes)

        """
        s += ReportPlots.outputs(stem, width: 1240, height: 520, multiplot: body)
        let caption = "Learning curves of the settings selected on validation loss, \(coupled) vs \(decoupled): "
            + "validation loss (cross-entropy) and test error (%) against epoch; line: mean over \(seedsText), band: min–max over seeds"
            + (same ? " (both selected λ = 0 at the same learning rate: one optimizer, the curves coincide)" : "")
        return ReportFigure(kind: .studyCurves, stem: stem, method: nil, title: caption, data: data, script: s)
    }

    // MARK: sparsity

    /// Fraction of exact zeros against test error, one point per λ₁ and method.
    func frontier(_ results: SweepResults) -> ReportFigure? {
        guard let sp = verdict.sparsity, !sp.points.isEmpty else { return nil }
        let stem = "study-sparsity-frontier"
        let (coupled, decoupled) = StudyDesign.sparsityMethods
        var data: [(name: String, contents: String)] = []
        var plots: [String] = []
        var chosenKeyed = false
        for (i, m) in [coupled, decoupled].enumerated() {
            let name = "\(stem)-\(Self.slug(m)).dat"
            var text = "# \(m): one row per λ₁ (\(unit(m))) whose every seed completed; mean and std over \(seedsText).\n"
            text += "# test_error_pct test_error_pct_std zeros_pct zeros_pct_std lambda chosen\n"
            var chosenRows = ""
            for p in sp.points where p.method == m {
                guard let s = results.settings(of: m).first(where: { $0.lr == p.lr && $0.decay == p.decay }),
                      let err = s.aggregate(.final).map(ReportPlots.percent),
                      let zeros = MeanStd(s.completed.compactMap(\.zeroFraction)).map(ReportPlots.percent) else { continue }
                let chosen = sp.chosen.contains { $0.method == m && $0.lr == p.lr && $0.decay == p.decay }
                let row = "\(err.mean) \(err.std ?? 0) \(zeros.mean) \(zeros.std ?? 0) \"λ₁=\(ReportFormat.hyper(p.decay))\" \(chosen ? 1 : 0)\n"
                text += row
                if chosen { chosenRows += row }
            }
            text += "\n\n# chosen (the most zeros at validation error ≤ \(String(format: "%.2f", sp.errorLevel * 100)) %)\n" + chosenRows
            data.append((name, text))
            let colour = ReportPlots.lineColours[i % ReportPlots.lineColours.count]
            plots += ["\"\(name)\" index 0 using 1:3:2:4 with xyerrorbars pt 7 ps 1.1 lw 1.5 lc rgb \"\(colour)\" title \(ReportFormat.gnuplot("\(m): \(unit(m))"))",
                      "\"\(name)\" index 0 using 1:3:5 with labels offset char 1,char 0.8 left font \",9\" tc rgb \"\(colour)\" notitle"]
            if !chosenRows.isEmpty {
                // One key entry for the circles of both methods.
                let key = chosenKeyed ? "notitle"
                    : "title " + ReportFormat.gnuplot(String(format: "chosen: most zeros at validation error ≤ %.2f %%", sp.errorLevel * 100))
                chosenKeyed = true
                plots.append("\"\(name)\" index 1 using 1:3 with points pt 6 ps 3.2 lw 2 lc rgb \"#ff2d20\" \(key)")
            }
        }
        let title = "Sparsity frontier: exact zeros vs final test error, mean ±std over \(seedsText) (Adam, lr \(ReportFormat.hyper(design.l1LR)))"
        var s = ReportPlots.header(stem, "fraction of exact zeros against test error, coupled vs decoupled L1")
        s += """
        set title \(ReportFormat.gnuplot(title)) font ",13"
        set xlabel "final test error (%)"
        set ylabel "exact zeros (% of parameters)"
        set border 3
        set tics nomirror out
        set grid xtics ytics lt 1 lc rgb "#e3e3e3" lw 1
        set key outside bottom center horizontal Left reverse samplen 1.5 spacing 1.1
        # Zeros cannot be negative: the axis starts at 0, with room above for the labels.
        set yrange [0:*]
        set offsets graph 0.12, graph 0.12, graph 0.12, 0

        """
        s += ReportPlots.outputs(stem, width: 900, height: 600, plot: "plot " + plots.joined(separator: ", \\\n     "))
        let caption = "Sparsity frontier: fraction of exact zeros (% of parameters) against final test error (%), one point per λ₁, "
            + "mean ±std over \(seedsText) (error bars); \(coupled): \(unit(coupled)); \(decoupled): \(unit(decoupled)); "
            + String(format: "circled: the setting each method reaches with the most zeros at validation error ≤ %.2f %% (the verdict's choice)", sp.errorLevel * 100)
        return ReportFigure(kind: .studyFrontier, stem: stem, method: nil, title: caption, data: data, script: s)
    }

    // MARK: budget

    /// Validation loss against λ_norm per training length, and the best λ against length.
    func budget(_ results: SweepResults) -> ReportFigure? {
        let lengths = design.budgetEpochs.filter { results.methods.contains(StudyDesign.budgetMethod(epochs: $0)) }
        guard !lengths.isEmpty else { return nil }
        let stem = "study-budget"
        var data: [(name: String, contents: String)] = []
        var plots: [String] = []
        var bestRows = ""
        for (i, t) in lengths.enumerated() {
            let m = StudyDesign.budgetMethod(epochs: t)
            let name = "\(stem)-t\(t).dat"
            var text = "# \(m): final validation loss by λ_norm (\(unit(m))), mean and std over the completed seeds.\n"
            text += "# lambda_norm val_loss_mean val_loss_std seeds_completed\n"
            for s in results.settings(of: m) where s.decay > 0 {
                guard let v = s.validationLoss else { continue }
                text += "\(s.decay) \(v.mean) \(v.std ?? 0) \(v.count)\n"
            }
            data.append((name, text))
            let colour = ReportPlots.lineColours[i % ReportPlots.lineColours.count]
            plots.append("\"\(name)\" using 1:2:3 with yerrorlines pt 7 ps 0.9 lw 2 lc rgb \"\(colour)\" title \"T = \(t) epochs\"")
            if let b = verdict.budget?.lengths.first(where: { $0.epochs == t }) {
                bestRows += "\(t) \(b.bestLambdaNorm) \(b.bestLambdaRaw) \(b.valLoss.mean)\n"
            }
        }
        data.append(("\(stem)-best.dat", "# Best λ per training length (lowest mean validation loss), as the verdict selects it.\n"
                     + "# epochs lambda_norm lambda_raw val_loss_mean\n" + bestRows))
        if !bestRows.isEmpty {
            plots.append("\"\(stem)-best.dat\" using 2:4 with points pt 6 ps 3 lw 2 lc rgb \"#ff2d20\" title \"best per T\"")
        }
        let title = "Training budget (Adam, lr \(ReportFormat.hyper(design.budgetLR)), normalized decoupled decay), mean ±std over \(seedsText)"
        var body = """
        set multiplot layout 1,2 title \(ReportFormat.gnuplot(title)) font ",13"
        set title "validation loss vs λ_norm, one line per training length T"
        set logscale x
        set xlabel "λ_norm (λ = λ_norm·√(b/(B·T)), log scale)"
        set ylabel "final validation loss (cross-entropy)"
        plot \(plots.joined(separator: ", \\\n     "))

        """
        if !bestRows.isEmpty {
            body += """
            set title "best λ against training length (selected on validation)"
            set logscale xy
            set xlabel "training length T (epochs, log scale)"
            set ylabel "best λ (log scale)"
            set xtics (\(lengths.map { "\"\($0)\" \($0)" }.joined(separator: ", ")))
            plot "\(stem)-best.dat" using 1:2 with linespoints pt 7 ps 1.1 lw 2 lc rgb "#0072B2" title "λ_norm* (normalized)", \\
                 "\(stem)-best.dat" using 1:3 with linespoints pt 5 ps 1.1 lw 2 lc rgb "#D55E00" title "λ* raw (per-step decoupled λ)"
            unset logscale
            set xtics autofreq

            """
        }
        body += "unset multiplot\n"
        var s = ReportPlots.header(stem, "training budget: validation loss by λ_norm per length, best λ by length")
        s += """
        set border 3
        set tics nomirror out
        set grid xtics ytics lt 1 lc rgb "#e3e3e3" lw 1
        set key top left Left reverse opaque box lc rgb "#bbbbbb" samplen 2 spacing 1.1
        set offsets graph 0.05, graph 0.05, graph 0.08, graph 0.05
        set format x "%g"

        """
        s += ReportPlots.outputs(stem, width: 1240, height: 540, multiplot: body)
        let caption = "Training budget: final validation loss (cross-entropy) against λ_norm (decoupled λ = λ_norm·√(b/(B·T))), "
            + "one line per training length T in epochs, mean ±std over \(seedsText) (error bars), circled: the best λ_norm per T; "
            + "right: that best λ, normalized and raw, against T"
        return ReportFigure(kind: .studyBudget, stem: stem, method: nil, title: caption, data: data, script: s)
    }

    // MARK: page

    /// The section at the top of index.html: the verdict, the selected settings, the figures.
    func html(_ results: SweepResults, figures: [ReportFigure], figure: (ReportFigure) -> String) -> String {
        let h = ReportFormat.html
        var p = "<section id=\"study\">\n<h2>Study verdict</h2>\n"
        p += "<p class=\"read\">Design <code>\(h(design.name))</code>: \(design.trainSubset) training samples, "
            + "\(design.validation) held out for validation, the whole test split for testing; \(seedsText) per setting. "
            + "Selection: \(h(verdict.selection)). Intervals are 95 %; one containing 0 reads “no measurable difference”. "
            + "The same verdict is in <code>verdict.json</code> next to this report's directory.</p>\n"
        p += "<ul class=\"verdict\">\n" + verdict.statements.map { "<li>\(h($0))</li>\n" }.joined() + "</ul>\n"

        p += "<h3>Selected settings (on validation loss; test numbers only reported)</h3>\n<table>\n<thead><tr><th>method</th>"
            + "<th class=\"num\">lr</th><th class=\"num\">decay</th><th>decay unit</th><th class=\"num\">validation loss</th>"
            + "<th class=\"num\">test error (%)</th><th class=\"num\">test loss</th><th class=\"num\">seeds</th></tr></thead>\n<tbody>\n"
        for s in verdict.selected {
            let std = { (m: SeedMean, scale: Double, f: String) -> String in
                String(format: f, m.mean * scale) + (m.se.map { " ± " + String(format: f, $0 * Double(m.n).squareRoot() * scale) } ?? "")
            }
            p += "<tr><td>\(h(s.method))</td><td class=\"num\">\(h(ReportFormat.hyper(s.lr)))</td><td class=\"num\">\(h(ReportFormat.hyper(s.decay)))</td>"
                + "<td>\(h(unit(s.method)))</td><td class=\"num\">\(std(s.valLoss, 1, "%.4f"))</td><td class=\"num\">\(std(s.testError, 100, "%.2f"))</td>"
                + "<td class=\"num\">\(std(s.testLoss, 1, "%.4f"))</td><td class=\"num\">\(s.valLoss.n)</td></tr>\n"
        }
        p += "</tbody>\n</table>\n<p class=\"meta\">mean ± std over seeds</p>\n"

        let sections: [(ReportFigure.Kind, String)] = [
            (.studyHeatmap, "Figure 2: coupled L2 vs decoupled weight decay (each decay in its own unit)"),
            (.studyCurves, "Learning curves of the selected settings"),
            (.studyFrontier, "Sparsity: coupled vs decoupled (proximal) L1"),
            (.studyBudget, "Training budget: normalized decoupled decay"),
        ]
        for (kind, heading) in sections {
            let fs = figures.filter { $0.kind == kind }
            guard !fs.isEmpty else { continue }
            p += "<h3>\(h(heading))</h3>\n<div class=\"figures\">\n" + fs.map(figure).joined() + "</div>\n"
        }
        return p + "</section>\n"
    }
}
