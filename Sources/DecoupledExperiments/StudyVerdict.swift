import DecoupledTraining
import Foundation

/// What the study found, computed from the runs' `summary.json` final evaluations only, so
/// every number can be checked against the runs' metrics (StudyTests does).
///
/// Selection reads the validation split only: a setting is chosen by its validation loss
/// (cross-entropy of the final evaluation, mean over seeds). The test split is read only to
/// report the selected settings. A comparison is a difference of seed means with a 95 %
/// Welch interval; one whose interval contains 0 is worded "no measurable difference".
/// Quantities without a closed-form interval (the slope of the best decay against the
/// learning rate or the training length) get a seed-bootstrap percentile interval.
public struct StudyVerdict: Codable, Equatable, Sendable {
    /// One (method, lr, decay) over its seeds.
    public struct Setting: Codable, Equatable, Sendable {
        public var method: String
        public var lr: Double
        public var decay: Double
        /// The run ids, in seed order.
        public var runs: [String]
        public var valLoss: SeedMean
        public var valError: SeedMean
        public var testLoss: SeedMean
        public var testError: SeedMean
        public var zeroFraction: SeedMean
    }

    /// Does decay matter in this regime? The best decayed setting against the best λ = 0
    /// setting, on validation loss.
    public struct Regime: Codable, Equatable, Sendable {
        public var method: String
        public var bestDecayed: Setting
        public var bestUndecayed: Setting
        /// Validation loss of the best λ = 0 setting minus that of the best decayed one.
        public var gap: Double
        /// Standard error of `gap`.
        public var gapSe: Double
        /// gap / gap_se: the regime is right when this exceeds 3.
        public var gapInSe: Double
        public var holds: Bool
    }

    /// Two methods' selected settings compared on one test metric.
    public struct Comparison: Codable, Equatable, Sendable {
        public var a: String
        public var b: String
        /// `test_loss` or `test_error`.
        public var metric: String
        /// a − b, with its 95 % interval; nil when a side has fewer than two seeds.
        public var difference: Difference?
        public var statement: String
    }

    /// A number with a 95 % seed-bootstrap interval.
    /// A slope estimated from best values on a grid: `low`/`high` are the 2.5 % and 97.5 %
    /// seed-bootstrap percentiles widened by `gridResolution` on each side, because a best
    /// value read off a grid is only known to half a grid step.
    public struct Estimate: Codable, Equatable, Sendable {
        public var value: Double
        public var low: Double
        public var high: Double
        /// How far the slope can move when every best value is off by half a grid step.
        public var gridResolution: Double
        /// Resamples in which the quantity was defined, of `resamples`.
        public var defined: Int
        public var resamples: Int
    }

    public struct LRDecay: Codable, Equatable, Sendable {
        public var lr: Double
        public var decay: Double
    }

    /// How the best decay moves with the learning rate (the paper's Figure 2 as a number).
    public struct Basin: Codable, Equatable, Sendable {
        public var method: String
        /// For each learning rate, the decay with the lowest mean validation loss.
        public var bestDecayByLr: [LRDecay]
        /// Slope of log λ* against log lr over the learning rates whose λ* > 0.
        public var slope: Estimate?
        /// For a decoupled method, the same slope with the decay in PyTorch's convention
        /// (`weight_decay` = λ/lr, the decay multiplied by the learning rate): slope − 1.
        public var slopeLrScaled: Estimate?
        /// Learning rates whose best decay is the grid's largest: the basin may lie beyond the
        /// grid there, and the slope is then a bound, not an estimate.
        public var atGridEdge: [Double]
        /// What the paper predicts: about −1 for coupled L2, about 0 for decoupled decay.
        public var predicted: Double
        public var statement: String
    }

    /// A coupled method's slope against its decoupled counterpart's.
    public struct BasinContrast: Codable, Equatable, Sendable {
        public var coupled: String
        public var decoupled: String
        /// |slope(coupled)| − |slope(decoupled)|, bootstrapped jointly: positive when the
        /// decoupled basin is the flatter one (the paper's claim).
        public var difference: Estimate?
        /// The same with the decoupled decay in PyTorch's lr-scaled convention:
        /// |slope(coupled)| − |slope(decoupled) − 1|.
        public var differenceLrScaled: Estimate?
        public var statement: String
    }

    public struct BudgetLength: Codable, Equatable, Sendable {
        public var epochs: Int
        /// The λ_norm with the lowest mean validation loss, and the raw λ it means at this length.
        public var bestLambdaNorm: Double
        public var bestLambdaRaw: Double
        public var valLoss: SeedMean
    }

    /// The training-budget part: does the best raw λ move with T, does the best λ_norm stay?
    public struct Budget: Codable, Equatable, Sendable {
        public var lr: Double
        public var lengths: [BudgetLength]
        /// Slopes of log λ*_raw and log λ*_norm against log T (the paper: −0.5 and 0).
        public var slopeRaw: Estimate?
        public var slopeNorm: Estimate?
        /// Training lengths whose best λ_norm is the smallest or largest of the grid.
        public var atGridEdge: [Int]
        public var statement: String
    }

    /// Coupled vs decoupled L1: fraction of exact zeros at equal validation accuracy.
    public struct Sparsity: Codable, Equatable, Sendable {
        /// Every setting of both methods: the frontier's points.
        public var points: [Setting]
        /// Settings qualify when their mean validation error is at most this (the best
        /// validation error of both methods plus one point).
        public var errorLevel: Double
        /// Per method, the qualifying setting with the most zeros.
        public var chosen: [Setting]
        /// zeros(decoupled) − zeros(coupled) of the chosen settings.
        public var difference: Difference?
        public var statement: String
    }

    /// How settings were selected.
    public var selection: String
    public var seeds: Int
    public var regime: [Regime]
    /// The selected setting of each Figure-2 method.
    public var selected: [Setting]
    public var comparisons: [Comparison]
    public var basins: [Basin]
    public var basinContrasts: [BasinContrast]
    public var budget: Budget?
    public var sparsity: Sparsity?
    /// Runs that did not complete (diverged, failed, pending): their settings are not selected.
    public var incompleteRuns: Int
    /// The verdict in words, as printed.
    public var statements: [String]
    public var report: String

    static let bootstrapResamples = 1000

    /// The verdict's file name in a study's sweep directory (written by `decoupled study`).
    public static let fileName = "verdict.json"

    /// The verdict saved in `sweepDirectory`, nil when there is none yet (a study still
    /// running, or an ordinary sweep); a file that does not decode is an error naming it and the key.
    public static func load(sweepDirectory: String) throws -> StudyVerdict? {
        let url = URL(fileURLWithPath: (sweepDirectory as NSString).appendingPathComponent(fileName))
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        return try JSONFile.decode(StudyVerdict.self, file: url, what: "study verdict", decoder: decoder)
    }

    /// The encoder of `verdict.json` (snake_case keys like every other file of a run).
    public static var encoder: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        e.keyEncodingStrategy = .convertToSnakeCase
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return e
    }

    public static var decoder: JSONDecoder {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return d
    }
}

// MARK: computing it

/// One run's final evaluation, as the verdict reads it.
struct StudyRunResult {
    let id: String
    let seed: Int
    let valLoss: Double
    let valError: Double
    let testLoss: Double
    let testError: Double
    let zeroFraction: Double
}

/// A (method, lr, decay) cell: usable when every run of it completed with finite numbers.
struct StudyCell {
    let method: String
    let lr: Double
    let decay: Double
    let results: [StudyRunResult]
    let usable: Bool

    /// The validation loss averaged with per-seed weights (a bootstrap resample); nil when
    /// no resampled seed is in the cell.
    func valLoss(weights: [Int: Int]?) -> Double? {
        guard usable else { return nil }
        guard let weights else { return results.map(\.valLoss).reduce(0, +) / Double(results.count) }
        var sum = 0.0, n = 0
        for r in results { let w = weights[r.seed] ?? 0; sum += Double(w) * r.valLoss; n += w }
        return n > 0 ? sum / Double(n) : nil
    }

    var setting: StudyVerdict.Setting {
        let rs = results.sorted { $0.seed < $1.seed }
        return StudyVerdict.Setting(method: method, lr: lr, decay: decay, runs: rs.map(\.id),
                                    valLoss: SeedMean(rs.map(\.valLoss))!, valError: SeedMean(rs.map(\.valError))!,
                                    testLoss: SeedMean(rs.map(\.testLoss))!, testError: SeedMean(rs.map(\.testError))!,
                                    zeroFraction: SeedMean(rs.map(\.zeroFraction))!)
    }
}

extension StudyVerdict {
    /// Reads the sweep's runs and computes the verdict for `design`.
    public static func compute(design: StudyDesign, sweepDirectory: String, reportIndex: String) throws -> StudyVerdict {
        let results = try SweepResults.load(sweepDirectory: URL(fileURLWithPath: sweepDirectory))
        var cells: [StudyCell] = []
        var incomplete = 0
        for s in results.settings {
            var rs: [StudyRunResult] = []
            for r in s.runs {
                guard r.status.isDone, let f = r.summary?.final, let vl = f.valLoss, let ve = f.valError,
                      let tl = f.testLoss, let te = f.testError, [vl, ve, tl, te].allSatisfy(\.isFinite) else {
                    incomplete += 1
                    continue
                }
                rs.append(StudyRunResult(id: r.run.id, seed: r.run.seed, valLoss: vl, valError: ve, testLoss: tl,
                                         testError: te, zeroFraction: f.zeroFraction ?? 0))
            }
            cells.append(StudyCell(method: s.method, lr: s.lr, decay: s.decay, results: rs,
                                   usable: !rs.isEmpty && rs.count == s.runs.count))
        }
        return StudyAnalysis(design: design, cells: cells).verdict(incompleteRuns: incomplete, report: reportIndex)
    }
}

/// The computation behind `StudyVerdict.compute`, over cells already read.
struct StudyAnalysis {
    let design: StudyDesign
    let cells: [StudyCell]
    let resamples: [[Int: Int]]

    init(design: StudyDesign, cells: [StudyCell]) {
        self.design = design
        self.cells = cells
        resamples = Statistics.bootstrapSeedWeights(seeds: design.seeds, count: StudyVerdict.bootstrapResamples)
    }

    func cells(_ method: String) -> [StudyCell] { cells.filter { $0.method == method } }

    /// The cell with the lowest (weighted) validation loss among `candidates`.
    func best(_ candidates: [StudyCell], weights: [Int: Int]? = nil) -> StudyCell? {
        var best: (StudyCell, Double)?
        for c in candidates {
            guard let v = c.valLoss(weights: weights) else { continue }
            if best == nil || v < best!.1 { best = (c, v) }
        }
        return best?.0
    }

    func verdict(incompleteRuns: Int, report: String) -> StudyVerdict {
        var statements: [String] = []
        let regime = StudyDesign.basinMethods.compactMap(regime)
        for r in regime {
            statements.append(String(format: "%@: best decay beats no decay on validation loss by %.4f (standard error %.4f: %.1f SE) — %@",
                                     r.method, r.gap, r.gapSe, r.gapInSe,
                                     r.holds ? "decay matters in this regime" : "below 3 SE: decay does not measurably matter here"))
        }
        let selected = StudyDesign.basinMethods.compactMap { best(cells($0))?.setting }
        var comparisons: [StudyVerdict.Comparison] = []
        for (coupled, decoupled) in StudyDesign.basinPairs {
            guard let c = selected.first(where: { $0.method == coupled }),
                  let d = selected.first(where: { $0.method == decoupled }) else { continue }
            for metric in ["test_error", "test_loss"] {
                let pick: (StudyVerdict.Setting) -> SeedMean = { metric == "test_error" ? $0.testError : $0.testLoss }
                let diff = Difference(pick(d), pick(c))
                comparisons.append(StudyVerdict.Comparison(a: decoupled, b: coupled, metric: metric, difference: diff,
                                                           statement: Self.compare(decoupled, coupled, diff, metric: metric)))
            }
        }
        statements += comparisons.map(\.statement)
        let basins = StudyDesign.basinPairs.flatMap { [basin($0.0, predicted: -1), basin($0.1, predicted: 0)] }.compactMap { $0 }
        statements += basins.map(\.statement)
        let contrasts = StudyDesign.basinPairs.map(contrast)
        statements += contrasts.map(\.statement)
        let budget = self.budget()
        if let budget { statements.append(budget.statement) }
        let sparsity = self.sparsity()
        if let sparsity { statements.append(sparsity.statement) }
        if incompleteRuns > 0 {
            statements.append("\(incompleteRuns) run(s) did not complete; their settings were not selected")
        }
        return StudyVerdict(selection: "lowest validation loss (final evaluation), mean over seeds; the test split is only reported",
                            seeds: design.seeds.count, regime: regime, selected: selected, comparisons: comparisons,
                            basins: basins, basinContrasts: contrasts, budget: budget, sparsity: sparsity,
                            incompleteRuns: incompleteRuns, statements: statements, report: report)
    }

    // MARK: parts

    func regime(_ method: String) -> StudyVerdict.Regime? {
        let cs = cells(method)
        guard let d = best(cs.filter { $0.decay > 0 })?.setting, let u = best(cs.filter { $0.decay == 0 })?.setting,
              let sd = d.valLoss.se, let su = u.valLoss.se else { return nil }
        let gap = u.valLoss.mean - d.valLoss.mean
        let se = (sd * sd + su * su).squareRoot()
        let inSE = se > 0 ? gap / se : (gap > 0 ? .infinity : 0)
        return StudyVerdict.Regime(method: method, bestDecayed: d, bestUndecayed: u, gap: gap, gapSe: se, gapInSe: inSE,
                                   holds: inSE > 3)
    }

    /// λ*(lr) for every learning rate of a method, under `weights`.
    func bestDecays(_ method: String, weights: [Int: Int]?) -> [StudyVerdict.LRDecay] {
        let cs = cells(method)
        return Array(Set(cs.map(\.lr))).sorted().compactMap { lr in
            best(cs.filter { $0.lr == lr }, weights: weights).map { StudyVerdict.LRDecay(lr: lr, decay: $0.decay) }
        }
    }

    static func logSlope(_ points: [(x: Double, y: Double)]) -> Double? {
        Statistics.slope(points.filter { $0.x > 0 && $0.y > 0 }.map { (log($0.x), log($0.y)) })
    }

    func basinSlope(_ method: String, weights: [Int: Int]?) -> Double? {
        Self.logSlope(bestDecays(method, weights: weights).map { ($0.lr, $0.decay) })
    }

    /// A point estimate with the bootstrap interval of `f` over the seed resamples, widened
    /// by the grid's resolution.
    func estimate(resolution: Double, _ f: ([Int: Int]?) -> Double?) -> StudyVerdict.Estimate? {
        guard let value = f(nil) else { return nil }
        let draws = resamples.compactMap(f)
        guard let (low, high) = Statistics.percentileInterval(draws) else { return nil }
        return StudyVerdict.Estimate(value: value, low: low - resolution, high: high + resolution, gridResolution: resolution,
                                     defined: draws.count, resamples: resamples.count)
    }

    /// The grid resolution of a method's basin slope: over the learning rates whose best
    /// decay is > 0, half a step of its decay grid carried through the slope.
    func basinResolution(_ method: String) -> Double {
        Statistics.quantization(xs: bestDecays(method, weights: nil).filter { $0.decay > 0 }.map(\.lr),
                                grid: cells(method).map(\.decay))
    }

    func basin(_ method: String, predicted: Double) -> StudyVerdict.Basin? {
        let byLR = bestDecays(method, weights: nil)
        guard !byLR.isEmpty else { return nil }
        let slope = estimate(resolution: basinResolution(method)) { basinSlope(method, weights: $0) }
        let largest = cells(method).map(\.decay).max()
        let edges = byLR.filter { $0.decay == largest }.map(\.lr)
        let pairs = byLR.map { "lr \(ReportFormat.hyper($0.lr)) → \(ReportFormat.hyper($0.decay))" }.joined(separator: ", ")
        var s = "\(method): best decay per learning rate (validation): \(pairs); "
        if let e = slope {
            s += "slope of log λ* vs log lr \(Self.estimateText(e)); the paper predicts about \(Int(predicted)): "
                + (e.low <= predicted && predicted <= e.high ? "consistent" : "not reproduced")
        } else {
            s += "slope not measurable (fewer than two learning rates with a best decay > 0)"
        }
        let decoupled = predicted == 0
        let lrScaled = decoupled ? slope.map { e in
            StudyVerdict.Estimate(value: e.value - 1, low: e.low - 1, high: e.high - 1, gridResolution: e.gridResolution,
                                  defined: e.defined, resamples: e.resamples)
        } : nil
        if let e = lrScaled {
            s += "; with the decay in PyTorch's convention (weight_decay = λ/lr) the slope is \(Self.estimateText(e)): "
                + (e.low <= 0 && 0 <= e.high ? "there the best decay does not depend on lr" : "there too it depends on lr")
        }
        if !edges.isEmpty {
            s += "; at lr " + edges.map { ReportFormat.hyper($0) }.joined(separator: ", ")
                + " the best decay is the grid's largest, so the basin may extend beyond the grid"
        }
        return StudyVerdict.Basin(method: method, bestDecayByLr: byLR, slope: slope, slopeLrScaled: lrScaled, atGridEdge: edges,
                                  predicted: predicted, statement: s)
    }

    /// The paper's claim about the basins: the best decoupled decay depends less on the
    /// learning rate than the best coupled L2 does, i.e. |slope(decoupled)| < |slope(coupled)|.
    func contrast(_ pair: (String, String)) -> StudyVerdict.BasinContrast {
        let (coupled, decoupled) = pair
        let resolution = basinResolution(coupled) + basinResolution(decoupled)
        let e = estimate(resolution: resolution) { w in
            guard let c = basinSlope(coupled, weights: w), let d = basinSlope(decoupled, weights: w) else { return nil }
            return abs(c) - abs(d)
        }
        var s = "basin alignment, \(decoupled) vs \(coupled): |slope(\(coupled))| − |slope(\(decoupled))| = "
        if let e {
            s += Self.estimateText(e) + (e.low > 0
                ? " — the best decoupled decay depends measurably less on lr (the paper's claim: reproduced)"
                : e.high < 0 ? " — the best coupled decay depends less on lr (the paper's claim: not reproduced)"
                : " — no measurable difference at this resolution (the paper's claim: not reproduced here)")
        } else {
            s += "not measurable (a slope is undefined)"
        }
        let scaled = estimate(resolution: resolution) { w in
            guard let c = basinSlope(coupled, weights: w), let d = basinSlope(decoupled, weights: w) else { return nil }
            return abs(c) - abs(d - 1)
        }
        if let scaled {
            s += "; with \(decoupled)'s decay in PyTorch's convention (weight_decay = λ/lr): \(Self.estimateText(scaled))"
                + (scaled.low > 0 ? ", measurably flatter than \(coupled)" : scaled.high < 0 ? ", measurably steeper than \(coupled)"
                   : ", no measurable difference")
        }
        return StudyVerdict.BasinContrast(coupled: coupled, decoupled: decoupled, difference: e, differenceLrScaled: scaled,
                                          statement: s)
    }

    /// λ_raw = λ_norm·√(b/(B·T)), the normalization the `weight_decay` plugin applies.
    func rawLambda(norm: Double, epochs: Int) -> Double {
        norm * (Double(design.batchSize) / (Double(design.trainSubset) * Double(epochs))).squareRoot()
    }

    func budget() -> StudyVerdict.Budget? {
        let lengths: [StudyVerdict.BudgetLength] = design.budgetEpochs.compactMap { t in
            best(cells(StudyDesign.budgetMethod(epochs: t))).map { c in
                StudyVerdict.BudgetLength(epochs: t, bestLambdaNorm: c.decay, bestLambdaRaw: rawLambda(norm: c.decay, epochs: t),
                                          valLoss: c.setting.valLoss)
            }
        }
        guard lengths.count >= 2 else { return nil }
        func slope(raw: Bool) -> (([Int: Int]?) -> Double?) {
            { w in
                Self.logSlope(design.budgetEpochs.compactMap { t in
                    best(cells(StudyDesign.budgetMethod(epochs: t)), weights: w).map {
                        (Double(t), raw ? rawLambda(norm: $0.decay, epochs: t) : $0.decay)
                    }
                })
            }
        }
        let resolution = Statistics.quantization(xs: design.budgetEpochs.map(Double.init), grid: design.budgetNormalized)
        let sr = estimate(resolution: resolution, slope(raw: true)), sn = estimate(resolution: resolution, slope(raw: false))
        let grid = design.budgetNormalized
        let edges = lengths.filter { $0.bestLambdaNorm == grid.min() || $0.bestLambdaNorm == grid.max() }.map(\.epochs)
        var s = "training budget (Adam, lr \(ReportFormat.hyper(design.budgetLR)), normalized decoupled decay): best λ_norm "
            + lengths.map { "T=\($0.epochs) → \(ReportFormat.hyper($0.bestLambdaNorm)) (raw \(ReportFormat.hyper($0.bestLambdaRaw)))" }
                .joined(separator: ", ")
        if let sr, let sn {
            let rawMoves = sr.high < 0 || sr.low > 0, normStays = sn.low <= 0 && 0 <= sn.high
            s += "; slope of log λ* vs log T: raw \(Self.estimateText(sr)) (paper: −0.5), normalized \(Self.estimateText(sn)) (paper: 0) — "
                + (rawMoves ? "the best raw λ moves with T" : "no measurable movement of the best raw λ")
                + (normStays ? ", the best λ_norm stays put" : ", the best λ_norm moves too")
                + (rawMoves && normStays && edges.isEmpty ? " (the paper's claim: reproduced)"
                   : edges.isEmpty ? " (the paper's claim: not reproduced here)" : "")
        }
        if !edges.isEmpty {
            s += "; at T = " + edges.map(String.init).joined(separator: ", ")
                + " the best λ_norm is at the edge of its grid, so the optimum is not resolved and the slopes say nothing about the claim"
        }
        return StudyVerdict.Budget(lr: design.budgetLR, lengths: lengths, slopeRaw: sr, slopeNorm: sn, atGridEdge: edges,
                                   statement: s)
    }

    func sparsity() -> StudyVerdict.Sparsity? {
        let (coupled, decoupled) = StudyDesign.sparsityMethods
        let points = (cells(coupled) + cells(decoupled)).filter(\.usable).map(\.setting)
        guard let bestError = points.map(\.valError.mean).min() else { return nil }
        let level = bestError + 0.01
        let chosen: [StudyVerdict.Setting] = [coupled, decoupled].compactMap { m in
            points.filter { $0.method == m && $0.valError.mean <= level }.max { $0.zeroFraction.mean < $1.zeroFraction.mean }
        }
        let c = chosen.first { $0.method == coupled }, d = chosen.first { $0.method == decoupled }
        var diff: Difference?
        var s = String(format: "sparsity at equal accuracy (validation error ≤ %.2f %%, the best plus 1 point): ", level * 100)
        if let c, let d {
            diff = Difference(d.zeroFraction, c.zeroFraction)
            s += String(format: "%@ %.1f %% zeros (λ₁ %@, test error %.2f %%), %@ %.1f %% zeros (λ₁ %@, test error %.2f %%) — ",
                        decoupled, d.zeroFraction.mean * 100, ReportFormat.hyper(d.decay), d.testError.mean * 100,
                        coupled, c.zeroFraction.mean * 100, ReportFormat.hyper(c.decay), c.testError.mean * 100)
            if let diff, diff.isMeasurable {
                s += String(format: "%@ reaches more sparsity by %.1f ± %.1f points (%d seeds)",
                            diff.difference > 0 ? decoupled : coupled, abs(diff.difference) * 100,
                            (diff.high - diff.low) / 2 * 100, min(diff.nA, diff.nB))
            } else {
                s += "no measurable difference in sparsity at this resolution"
            }
        } else {
            s += [c == nil ? coupled : nil, d == nil ? decoupled : nil].compactMap { $0 }.joined(separator: " and ")
                + " reached no setting at that accuracy"
        }
        return StudyVerdict.Sparsity(points: points, errorLevel: level, chosen: chosen, difference: diff, statement: s)
    }

    // MARK: words

    static func estimateText(_ e: StudyVerdict.Estimate) -> String {
        String(format: "%.2f [%.2f, %.2f]", e.value, e.low, e.high)
            + (e.defined < e.resamples ? " (defined in \(e.defined) of \(e.resamples) resamples)" : "")
    }

    /// "A better than B by x ± y (n seeds)" or "no measurable difference at this resolution";
    /// `diff` is a − b of a lower-is-better metric.
    static func compare(_ a: String, _ b: String, _ diff: Difference?, metric: String) -> String {
        let unit = metric == "test_error" ? "test error" : "test loss"
        let scale = metric == "test_error" ? 100.0 : 1.0
        let fmt = metric == "test_error" ? "%.2f ± %.2f points" : "%.4f ± %.4f"
        guard let diff else { return "\(a) vs \(b) on \(unit): no interval (fewer than two seeds)" }
        let n = " (95 % interval, \(diff.nA) and \(diff.nB) seeds)"
        let size = String(format: fmt, abs(diff.difference) * scale, (diff.high - diff.low) / 2 * scale)
        guard diff.isMeasurable else {
            return "\(a) vs \(b) on \(unit): no measurable difference at this resolution (\(a) − \(b) = "
                + String(format: fmt, diff.difference * scale, (diff.high - diff.low) / 2 * scale) + n + ")"
        }
        return diff.difference < 0 ? "\(a) better than \(b) on \(unit) by \(size)\(n)"
            : "\(b) better than \(a) on \(unit) by \(size)\(n)"
    }
}

extension StudyVerdict {
    /// The lines `decoupled study` prints.
    public var text: String {
        (["", "Verdict (selected on validation loss; \(seeds) seeds per setting; intervals are 95 %):", ""]
            + statements.map { "  • " + $0 } + ["", "  report: \(report)"]).joined(separator: "\n")
    }
}
