import Foundation
import DecoupledTraining
import Testing
@testable import DecoupledExperiments

// `decoupled report` on a synthetic study directory written here (manifest, study.json, run
// directories with summary.json and metrics.jsonl): the Figure 2 pairs, the budget lengths and
// both L1 methods over 2 seeds, with validation metrics in every run. The numbers are made so
// that validation and test disagree about AdamW's best setting, one SGD+L2 cell is at chance
// level and one SGDW cell diverged.

/// A fresh directory per test (SweepScratch), removed afterwards.
fileprivate final class Scratch {
    let scratch = SweepScratch("dsr")
    var url: URL { URL(fileURLWithPath: scratch.path) }
}

struct SyntheticStudy {
    static let seeds = [0, 1]
    static let design = StudyDesign(
        name: "study-synthetic", dataFile: "synthetic.h5", trainSubset: 500, validation: 2000, batchSize: 128, epochs: 4,
        evalEvery: 1, seeds: seeds, adamLR: [1e-4, 1e-3, 1e-2], sgdLR: [1e-2, 1e-1],
        adamL2: [0, 1e-3, 1e-2], adamW: [0, 1e-3, 1e-2], sgdL2: [0, 1e-3, 1e-2], sgdW: [0, 1e-3, 1e-2],
        budgetLR: 1e-3, budgetEpochs: [5, 10], budgetNormalized: [0.01, 0.04, 0.16], l1LR: 1e-3, l1: [1e-4, 1e-3])
    /// The chance-level (completed) and the diverged cell.
    static let chance = ("SGD+L2", 1e-1, 1e-2), diverged = ("SGDW", 1e-1, 1e-2)

    struct Run { let id: String, method: String, lr: Double, decay: Double, seed: Int }
    let directory: URL
    var runs: [Run] = []

    static func noise(_ seed: Int) -> Double { seed == 0 ? 1 : -1 }

    /// (final validation loss, final test error, zero fraction) of a run.
    static func finals(_ m: String, _ lr: Double, _ d: Double, _ seed: Int) -> (val: Double, test: Double, zeros: Double) {
        let n = noise(seed)
        if (m, lr, d) == chance { return (2.30 + 0.001 * n, 0.90 + 0.001 * n, 0) }
        if m.hasPrefix("AdamW-norm") {
            let x = log2(d / 0.04)
            return (0.5 + 0.02 * x * x + 0.002 * n, 0.15 + 0.005 * x * x + 0.002 * n, 0)
        }
        if m == "Adam+L1" || m == "Adam+proxL1" {
            let strong = d == 1e-3
            let zeros = m == "Adam+proxL1" ? (strong ? 0.30 : 0.02) : (strong ? 0.001 : 0)
            return (0.5 + (strong ? 0.004 : 0) + 0.002 * n, 0.15 + (strong ? 0.004 : 0) + 0.002 * n, zeros + 0.001 * (n + 1))
        }
        let x = log10(lr) + (m.hasPrefix("SGD") ? 1.5 : 3), y = (d == 0 ? -5 : log10(d)) + 3
        // AdamW's test error is lowest at (1e-3, 1e-2), where its validation loss is not: a
        // report that selected on test would outline another cell than the verdict.
        let test = m == "AdamW" && lr == 1e-3 && d == 1e-2 ? 0.10 : 0.15 + 0.02 * x * x + 0.001 * y * y
        return (0.5 + 0.05 * x * x + 0.004 * y * y + 0.002 * n, test + 0.002 * n, 0)
    }

    var methods: [(String, [Double], [Double])] {
        let d = Self.design
        return [("Adam+L2", d.adamLR, d.adamL2), ("AdamW", d.adamLR, d.adamW), ("SGD+L2", d.sgdLR, d.sgdL2), ("SGDW", d.sgdLR, d.sgdW)]
            + d.budgetEpochs.map { (StudyDesign.budgetMethod(epochs: $0), [d.budgetLR], d.budgetNormalized) }
            + [(StudyDesign.sparsityMethods.0, [d.l1LR], d.l1), (StudyDesign.sparsityMethods.1, [d.l1LR], d.l1)]
    }

    /// `badCellsPending`: the chance-level and diverged cells have not run yet (no summary).
    init(at directory: URL, badCellsPending: Bool = false) throws {
        self.directory = directory
        for (m, lrs, decays) in methods { for lr in lrs { for d in decays { for s in Self.seeds {
            runs.append(Run(id: String(format: "%012llx", 0x5a1d00000000 + UInt64(runs.count)), method: m, lr: lr, decay: d, seed: s))
        } } } }
        try SweepManifest(name: Self.design.name, spec: "study.toml", runs: runs.map {
            .init(id: $0.id, dir: "runs/\($0.id)", method: $0.method, lr: $0.lr, decay: $0.decay, seed: $0.seed)
        }).write(to: directory.appendingPathComponent("manifest.json"))
        try Self.design.encoded().write(to: directory.appendingPathComponent(StudyDesign.fileName))
        let encoder = JSONEncoder()
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        for r in runs {
            let dir = directory.appendingPathComponent("runs/\(r.id)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            let bad = (r.method, r.lr, r.decay) == Self.chance || (r.method, r.lr, r.decay) == Self.diverged
            if badCellsPending && bad { continue }
            let f = Self.finals(r.method, r.lr, r.decay, r.seed)
            let divergedRun = (r.method, r.lr, r.decay) == Self.diverged
            // Four evaluations approaching the final numbers; the last is summary.json's final.
            let records = (1...4).map { e -> MetricRecord in
                let late = Double(4 - e)
                let val = divergedRun && e == 4 ? Double.nan : f.val + 0.1 * late
                return MetricRecord(step: e * 10, epoch: Double(e), dataLoss: f.val * 0.8 + 0.1 * late, valLoss: val,
                                          valAcc: 1 - f.test - 0.01 - 0.02 * late, testLoss: f.val * 1.02 + 0.1 * late,
                                          testAcc: 1 - f.test - 0.02 * late, zeroFraction: f.zeros)
            }
            try Data(try records.map { String(decoding: try encoder.encode($0), as: UTF8.self) }.joined(separator: "\n").utf8 + [0x0A])
                .write(to: dir.appendingPathComponent("metrics.jsonl"))
            let summary = RunSummary(status: divergedRun ? .diverged : .completed, reason: divergedRun ? "loss is NaN" : nil,
                                          step: 40, epoch: 4, stepsTotal: 40, final: records.last, best: records.last)
            try encoder.encode(summary).write(to: dir.appendingPathComponent("summary.json"))
        }
    }

    /// Mean over seeds of a completed cell, from the numbers the runs were written from.
    static func mean(_ m: String, _ lr: Double, _ d: Double, _ pick: ((val: Double, test: Double, zeros: Double)) -> Double) -> Double {
        seeds.map { pick(finals(m, lr, d, $0)) }.reduce(0, +) / Double(seeds.count)
    }
}

/// The `set cbrange [...]` lines of a gnuplot script.
fileprivate func colourRanges(_ url: URL) throws -> [String] {
    try String(contentsOf: url, encoding: .utf8).split(separator: "\n").filter { $0.hasPrefix("set cbrange") }.map(String.init)
}

@Suite struct StudyReportTests {
    static let gnuplotPresent = (try? Gnuplot.locate(nil, environment: ProcessInfo.processInfo.environment)) != nil

    @Test func bestIsSelectedOnValidationEvenWhenTestDisagrees() throws {
        let tmp = Scratch()
        _ = try SyntheticStudy(at: tmp.url)
        let results = try SweepResults.load(sweepDirectory: tmp.url)
        #expect(results.selection == .validation)
        // On the test split AdamW's best would be (1e-3, 1e-2): the fixture really disagrees.
        let byTest = try #require(results.settings(of: "AdamW").min { $0.aggregate(.final)!.mean < $1.aggregate(.final)!.mean })
        #expect((byTest.lr, byTest.decay) == (1e-3, 1e-2))

        let result = try SweepReport.generate(sweepDirectory: tmp.url)
        #expect(result.selection == .validation)
        let adamW = try #require(result.best.first { $0.method == "AdamW" })
        #expect((adamW.lr, adamW.decay) == (1e-3, 1e-3), "selected on validation loss, not on test error")
        #expect(adamW.validationLoss.map { abs($0.mean - SyntheticStudy.mean("AdamW", 1e-3, 1e-3) { $0.val }) < 1e-12 } == true)
        #expect(abs(adamW.value.mean - SyntheticStudy.mean("AdamW", 1e-3, 1e-3) { $0.test }) < 1e-12, "the test error is reported")
        // The best run whose curves are drawn is the seed with the lower validation loss (seed 1).
        #expect(adamW.bestRunSeed == 1)

        // The report and the verdict name the same settings.
        let verdict = try #require(result.verdict)
        #expect(verdict.report == result.index.path)
        for s in verdict.selected {
            let b = try #require(result.best.first { $0.method == s.method })
            #expect((b.lr, b.decay) == (s.lr, s.decay), "\(s.method)")
        }

        let html = try String(contentsOf: result.index, encoding: .utf8)
        #expect(html.contains("selected on the lowest mean validation loss over seeds; test numbers are only reported"))
        #expect(!html.contains("selected on the test split"))
        let md = try String(contentsOf: result.outputDirectory.appendingPathComponent("summary.md"), encoding: .utf8)
        #expect(md.contains("- **AdamW**: lr 1e-3, λ 1e-3: validation loss 0.5 ± 0.002828; test error 15.00 ± 0.28 %"), "\(md.prefix(1500))")
    }

    @Test func studySectionOpensThePageWithTheVerdictAndItsFigures() throws {
        let tmp = Scratch()
        _ = try SyntheticStudy(at: tmp.url)
        let result = try SweepReport.generate(sweepDirectory: tmp.url)
        #expect(result.plotError == nil || !Self.gnuplotPresent, "\(result.plotError.map { "\($0)" } ?? "")")
        let verdict = try #require(result.verdict)
        #expect(verdict.statements.count >= 10)
        let html = try String(contentsOf: result.index, encoding: .utf8)

        // At the top: the first section of the page is the verdict, before everything else.
        let study = try #require(html.range(of: "<section id=\"study\">\n<h2>Study verdict</h2>"))
        let firstH2 = try #require(html.range(of: "<h2"))
        #expect(study.upperBound > firstH2.lowerBound && html[..<firstH2.lowerBound].contains("<section id=\"study\">"))
        for marker in ["How to read this report", "<h2>Best setting per method", "<h2>Heatmaps"] {
            let at = try #require(html.range(of: marker), "\(marker)")
            #expect(study.lowerBound < at.lowerBound, "the study section comes before \(marker)")
        }
        for s in verdict.statements { #expect(html.contains("<li>\(ReportFormat.html(s))</li>"), "statement missing: \(s)") }
        #expect(html.contains("Selected settings (on validation loss; test numbers only reported)"))

        // The paired heatmaps: values "mean ±std" in every cell, 2 decimals for the test error
        // in %, 3 for the validation loss; the verdict's setting outlined.
        let out = result.outputDirectory
        let testPair = try String(contentsOf: out.appendingPathComponent("study-adam-l2-vs-adamw-test-error.gp"), encoding: .utf8)
        let valPair = try String(contentsOf: out.appendingPathComponent("study-adam-l2-vs-adamw-val-loss.gp"), encoding: .utf8)
        let std = { (a: Double, b: Double) in abs(a - b) / 2.0.squareRoot() }
        let t = (0...1).map { SyntheticStudy.finals("AdamW", 1e-3, 1e-3, $0).test * 100 }
        let cell = String(format: "\"%.2f ±%.2f\"", (t[0] + t[1]) / 2, std(t[0], t[1]))
        #expect(cell == "\"15.00 ±0.28\"")
        #expect(testPair.contains(cell) && testPair.contains("set multiplot"))
        #expect(valPair.contains("\"0.500 ±0.003\""))
        // One outline per panel (the script draws PNG and SVG: twice each), at the selected
        // cell: both methods' (1e-3, 1e-3) is at index (1, 1).
        #expect(testPair.components(separatedBy: "lc rgb \"#ff2d20\" lw 3.5").count - 1 == 4)
        #expect(testPair.contains("rect from 0.51,0.51 to 1.49,1.49 front fs empty border lc rgb \"#ff2d20\""))
        // Each panel's decay axis in its own unit.
        #expect(testPair.contains("set ylabel \"coupled λ (g += λ·w) (log-spaced; 0 = none)\""))
        #expect(testPair.contains("set ylabel \"decoupled λ (w ← w − η_t·λ·w per step) (log-spaced; 0 = none)\""))

        let stems = ["study-adam-l2-vs-adamw-test-error", "study-adam-l2-vs-adamw-val-loss", "study-sgd-l2-vs-sgdw-test-error",
                     "study-sgd-l2-vs-sgdw-val-loss", "study-curves-adam-l2-vs-adamw", "study-curves-sgd-l2-vs-sgdw",
                     "study-sparsity-frontier", "study-budget"]
        for stem in stems {
            #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent(stem + ".gp").path), "\(stem).gp")
            if Self.gnuplotPresent {
                for ext in ["png", "svg"] {
                    let url = out.appendingPathComponent("\(stem).\(ext)")
                    #expect(result.figures.contains(url), "\(stem).\(ext) drawn")
                    let size = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? 0
                    #expect(size > 5000, "\(stem).\(ext) is \(size) bytes")
                }
                #expect(html.contains("<img src=\"\(stem).svg\""), "index.html shows \(stem)")
            }
        }
        if Self.gnuplotPresent {
            let svg = try String(contentsOf: out.appendingPathComponent("study-adam-l2-vs-adamw-test-error.svg"), encoding: .utf8)
            #expect(svg.contains("15.00 ±0.28") && svg.contains("η_t"))
        }

        // Every study figure's caption names its unit and its number of seeds.
        let captions = try NSRegularExpression(pattern: #"<img src="(study-[^"]+)\.svg"[^\n]*\n<figcaption>([^\n]*)</figcaption>"#)
        let found = captions.matches(in: html, range: NSRange(html.startIndex..., in: html)).map {
            (String(html[Range($0.range(at: 1), in: html)!]), String(html[Range($0.range(at: 2), in: html)!]))
        }
        if Self.gnuplotPresent { #expect(Set(found.map(\.0)) == Set(stems)) }
        let units: [String: [String]] = [
            "test-error": ["final test error (%)", "coupled λ (g += λ·w)", "decoupled λ (w ← w − η_t·λ·w per step)"],
            "val-loss": ["final validation loss (cross-entropy)", "coupled λ (g += λ·w)", "decoupled λ (w ← w − η_t·λ·w per step)"],
            "curves": ["validation loss (cross-entropy)", "test error (%)", "epoch"],
            "frontier": ["exact zeros (% of parameters)", "final test error (%)", "λ₁ (g += λ₁·sign w)", "λ₁ (w ← shrink(w, η_t·λ₁))"],
            "budget": ["validation loss (cross-entropy)", "λ_norm", "training length T in epochs"],
        ]
        for (stem, caption) in found {
            #expect(caption.contains("2 seeds"), "\(stem): \(caption)")
            let key = try #require(units.keys.first { stem.contains($0) }, "\(stem)")
            for u in units[key]! { #expect(caption.contains(ReportFormat.html(u)), "\(stem) caption lacks \"\(u)\": \(caption)") }
        }
    }

    @Test func aDivergedOrChanceLevelCellDoesNotMoveTheColourScale() throws {
        let tmp = Scratch()
        let withBad = tmp.url.appendingPathComponent("bad"), without = tmp.url.appendingPathComponent("pending")
        for d in [withBad, without] { try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true) }
        _ = try SyntheticStudy(at: withBad)
        _ = try SyntheticStudy(at: without, badCellsPending: true)
        let a = try SweepReport.generate(sweepDirectory: withBad), b = try SweepReport.generate(sweepDirectory: without)
        for q in ["test-error", "val-loss"] {
            let name = "study-sgd-l2-vs-sgdw-\(q).gp"
            let ra = try colourRanges(a.outputDirectory.appendingPathComponent(name))
            let rb = try colourRanges(b.outputDirectory.appendingPathComponent(name))
            #expect(ra.count == 4, "\(name): a scale per panel, for PNG and SVG: \(ra)")
            #expect(Set(ra).count == 1, "\(name): both panels share one scale: \(ra)")
            #expect(ra == rb, "\(name): the chance-level and diverged cells moved the scale: \(ra) vs \(rb)")
            let script = try String(contentsOf: a.outputDirectory.appendingPathComponent(name), encoding: .utf8)
            #expect(script.contains("colours saturate above"), "\(name): the clipped scale is said")
            #expect(script.contains("\"diverged\""), "\(name): the diverged cell is grey and named")
        }
        // The chance-level cell still prints its number; only its colour saturates.
        let script = try String(contentsOf: a.outputDirectory.appendingPathComponent("study-sgd-l2-vs-sgdw-test-error.gp"), encoding: .utf8)
        #expect(script.contains("\"90.00 ±0.14\""))
        let high = try #require(try colourRanges(a.outputDirectory.appendingPathComponent("study-sgd-l2-vs-sgdw-test-error.gp")).first?
            .split(separator: ":").last.flatMap { Double($0.dropLast()) })
        #expect(high < 50, "the scale ends below the chance-level cell: \(high)")
    }

    @Test func studyJSONRoundTripsAndABadOneNamesTheKey() throws {
        let tmp = Scratch()
        let d = SyntheticStudy.design
        try d.encoded().write(to: tmp.url.appendingPathComponent(StudyDesign.fileName))
        let text = try String(contentsOf: tmp.url.appendingPathComponent(StudyDesign.fileName), encoding: .utf8)
        #expect(text.contains("\"budget_normalized\"") && text.contains("\"train_subset\" : 500"), "snake_case keys")
        #expect(try StudyDesign.load(sweepDirectory: tmp.url) == d)
        try Data(text.replacingOccurrences(of: "\"train_subset\" : 500", with: "\"train_subset\" : \"many\"").utf8)
            .write(to: tmp.url.appendingPathComponent(StudyDesign.fileName))
        do {
            _ = try StudyDesign.load(sweepDirectory: tmp.url)
            Issue.record("a bad study.json must not load")
        } catch {
            #expect("\(error)".contains("study.json") && "\(error)".contains("train_subset"), "\(error)")
        }
        #expect(try StudyDesign.load(sweepDirectory: tmp.url.appendingPathComponent("elsewhere")) == nil)
    }
}
