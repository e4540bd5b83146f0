import DecoupledTraining
import Foundation
import Testing
@testable import DecoupledExperiments

/// `decoupled study --quick` on the shipped subset, checked as a reviewer would: every number
/// in verdict.json is recomputed here from the runs' own metrics.jsonl, selection is shown to
/// ignore the test split, and the wording follows the intervals.
@Suite struct StudyTests {
    /// One run's last evaluation, read from its metrics.jsonl (not from summary.json).
    struct Final {
        let run: SweepManifest.Run
        let record: MetricRecord
    }

    static func mean(_ xs: [Double]) -> Double { xs.reduce(0, +) / Double(xs.count) }

    @Test func quickStudyVerdictEqualsTheRunsMetrics() throws {
        let scratch = SweepScratch()
        let dir = scratch.file("study")
        let p = try startSweepDecoupled(["study", "--quick", "--dir", dir, "--jobs", "2"], in: scratch.path, tag: "study")
        #expect(waitForExit(p, seconds: 900) && p.terminationStatus == 0,
                "\((try? String(contentsOfFile: scratch.file("study.err"), encoding: .utf8)) ?? "")")
        let verdictURL = URL(fileURLWithPath: "\(dir)/verdict.json")
        let verdictText = try String(contentsOf: verdictURL, encoding: .utf8)
        #expect(verdictText.contains("\"basin_contrasts\"") && !verdictText.contains("basinContrasts"), "snake_case keys")
        let verdict = try StudyVerdict.decoder.decode(StudyVerdict.self, from: Data(contentsOf: verdictURL))
        let manifest = try SweepManifest.load(from: URL(fileURLWithPath: dir))
        let design = StudyDesign.quick(dataFile: "")
        #expect(manifest.runs.count == design.runCount && verdict.incompleteRuns == 0 && verdict.seeds == 2)

        var finals: [Final] = []
        for run in manifest.runs {
            let records = try MetricRecord.read("\(dir)/\(run.dir)/metrics.jsonl")
            let last = records.last(where: \.isEvaluation)
            finals.append(Final(run: run, record: try #require(last)))
        }
        func cell(_ method: String, _ lr: Double, _ decay: Double) -> [Final] {
            finals.filter { $0.run.method == method && $0.run.lr == lr && $0.run.decay == decay }.sorted { $0.run.seed < $1.run.seed }
        }
        /// A setting of the verdict against the runs it names.
        func check(_ s: StudyVerdict.Setting) {
            let runs = cell(s.method, s.lr, s.decay)
            #expect(runs.map(\.run.id) == s.runs, "\(s.method) lr \(s.lr) decay \(s.decay)")
            #expect(s.valLoss.mean == Self.mean(runs.map { $0.record.valLoss! }))
            #expect(s.valError.mean == Self.mean(runs.map { 1 - $0.record.valAcc! }))
            #expect(s.testLoss.mean == Self.mean(runs.map { $0.record.testLoss! }))
            #expect(s.testError.mean == Self.mean(runs.map { 1 - $0.record.testAcc! }))
            #expect(s.zeroFraction.mean == Self.mean(runs.map { $0.record.zeroFraction! }))
            #expect(s.valLoss.n == 2)
        }
        /// The setting of `method` with the lowest mean validation loss, recomputed here.
        func bestOnValidation(_ method: String, decays: (Double) -> Bool = { _ in true }) -> (Double, Double) {
            let keys = Set(finals.filter { $0.run.method == method && decays($0.run.decay) }.map { [$0.run.lr, $0.run.decay] })
            let best = keys.min { a, b in
                Self.mean(cell(method, a[0], a[1]).map { $0.record.valLoss! }) < Self.mean(cell(method, b[0], b[1]).map { $0.record.valLoss! })
            }!
            return (best[0], best[1])
        }

        #expect(verdict.selected.map(\.method) == StudyDesign.basinMethods)
        for s in verdict.selected {
            check(s)
            #expect(bestOnValidation(s.method) == (s.lr, s.decay), "\(s.method) is selected on validation loss")
        }
        #expect(verdict.regime.map(\.method) == StudyDesign.basinMethods)
        for r in verdict.regime {
            check(r.bestDecayed)
            check(r.bestUndecayed)
            #expect(bestOnValidation(r.method, decays: { $0 > 0 }) == (r.bestDecayed.lr, r.bestDecayed.decay))
            #expect(bestOnValidation(r.method, decays: { $0 == 0 }) == (r.bestUndecayed.lr, r.bestUndecayed.decay))
            #expect(r.gap == r.bestUndecayed.valLoss.mean - r.bestDecayed.valLoss.mean && r.holds == (r.gapInSe > 3))
        }
        #expect(verdict.comparisons.count == 4)
        for c in verdict.comparisons {
            let a = try #require(verdict.selected.first { $0.method == c.a }), b = try #require(verdict.selected.first { $0.method == c.b })
            let d = try #require(c.difference)
            let want = c.metric == "test_error" ? a.testError.mean - b.testError.mean : a.testLoss.mean - b.testLoss.mean
            #expect(d.difference == want && d.low <= want && want <= d.high)
            // Honest by construction: an interval that contains 0 is never a ranking.
            if d.low <= 0 && 0 <= d.high {
                #expect(c.statement.contains("no measurable difference") && !c.statement.contains("better"), "\(c.statement)")
            } else {
                #expect(c.statement.contains("better than") && !c.statement.contains("no measurable"), "\(c.statement)")
            }
        }
        for b in verdict.basins {
            for p in b.bestDecayByLr {
                let atLR = finals.filter { $0.run.method == b.method && $0.run.lr == p.lr }
                let bestDecay = Set(atLR.map(\.run.decay)).min { x, y in
                    Self.mean(cell(b.method, p.lr, x).map { $0.record.valLoss! }) < Self.mean(cell(b.method, p.lr, y).map { $0.record.valLoss! })
                }
                #expect(bestDecay == p.decay, "\(b.method) lr \(p.lr)")
            }
            if let s = b.slope { #expect(s.low <= s.high && s.defined <= s.resamples) }
        }
        let budget = try #require(verdict.budget)
        #expect(budget.lengths.map(\.epochs) == design.budgetEpochs)
        for l in budget.lengths {
            #expect(bestOnValidation(StudyDesign.budgetMethod(epochs: l.epochs)).1 == l.bestLambdaNorm)
            #expect(abs(l.bestLambdaRaw - l.bestLambdaNorm * (128.0 / (Double(design.trainSubset) * Double(l.epochs))).squareRoot()) < 1e-15)
        }
        let sparsity = try #require(verdict.sparsity)
        #expect(sparsity.points.count == 2 * design.l1.count)
        sparsity.points.forEach(check)
        for c in sparsity.chosen { #expect(c.valError.mean <= sparsity.errorLevel) }
        #expect(verdict.statements.count >= 10 && FileManager.default.fileExists(atPath: verdict.report))
        // study.json holds the design, and the report opens with the verdict it printed.
        let saved = try #require(try StudyDesign.load(sweepDirectory: URL(fileURLWithPath: dir)))
        #expect(saved.name == design.name && saved.seeds == design.seeds && saved.adamW == design.adamW)
        #expect(verdict.report == URL(fileURLWithPath: "\(dir)/report/index.html").path)
        let page = try String(contentsOfFile: verdict.report, encoding: .utf8)
        #expect(page.contains("<section id=\"study\">") && verdict.statements.allSatisfy { page.contains(ReportFormat.html($0)) })

        // Selection never reads the test split: scramble every run's test numbers in its
        // summary.json and the selected settings, basins and budget stay exactly the same.
        let results = try SweepResults.load(sweepDirectory: URL(fileURLWithPath: dir))
        for (i, r) in results.runs.enumerated() {
            let url = r.directory.appendingPathComponent("summary.json")
            var json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
            var final = try #require(json["final"] as? [String: Any])
            final["test_loss"] = Double((i * 7919) % 101) / 10
            final["test_acc"] = Double((i * 104_729) % 97) / 97
            json["final"] = final
            try JSONSerialization.data(withJSONObject: json).write(to: url)
        }
        let scrambled = try StudyVerdict.compute(design: design, sweepDirectory: dir, reportIndex: verdict.report)
        #expect(scrambled.selected.map { [$0.lr, $0.decay] } == verdict.selected.map { [$0.lr, $0.decay] })
        #expect(scrambled.basins.map(\.bestDecayByLr) == verdict.basins.map(\.bestDecayByLr))
        #expect(scrambled.budget?.lengths.map(\.bestLambdaNorm) == budget.lengths.map(\.bestLambdaNorm))
        #expect(scrambled.regime.map(\.gap) == verdict.regime.map(\.gap))
        #expect(scrambled.selected.map(\.testLoss) != verdict.selected.map(\.testLoss), "the scramble reached the verdict")
    }

    @Test func differenceIntervalsAndWording() throws {
        let a = try #require(SeedMean([0.10, 0.11, 0.12])), b = try #require(SeedMean([0.20, 0.21, 0.22]))
        let d = try #require(Difference(a, b))
        // se = 0.01/√3 each; Welch df = 4 → t = 2.776.
        let half = 2.776 * (2 * 0.0001 / 3).squareRoot()
        #expect(abs(d.difference + 0.1) < 1e-12 && abs(d.high - d.low - 2 * half) < 1e-9 && d.isMeasurable)
        #expect(StudyAnalysis.compare("A", "B", d, metric: "test_error").hasPrefix("A better than B on test error by 10.00 ± "))
        let c = try #require(SeedMean([0.10, 0.30, 0.20]))
        let e = try #require(Difference(a, c))
        #expect(!e.isMeasurable && StudyAnalysis.compare("A", "B", e, metric: "test_loss").contains("no measurable difference"))
        #expect(Difference(try #require(SeedMean([0.1])), a) == nil, "one seed gives no interval")
        #expect(Statistics.slope([(0, 1), (1, 3), (2, 5)]) == 2 && Statistics.slope([(1, 1)]) == nil)
        // x = log 1, log e, log e² and a grid one e-fold per step: (1/2)·(1 + 0 + 1)/2.
        let e1 = exp(1.0)
        #expect(abs(Statistics.quantization(xs: [1, e1, e1 * e1], grid: [0, 1, e1, e1 * e1]) - 0.5) < 1e-12)
        #expect(Statistics.quantization(xs: [1], grid: [1, 2]) == 0)
    }
}
