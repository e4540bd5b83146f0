import DecoupledTraining
import Foundation

// What the report knows about a sweep: every run with its status and numbers, the runs
// grouped into settings (method, lr, decay) over seeds, and the best setting per method.
// Only completed runs enter means, heatmaps and "best": a diverged run's last test error is
// the error of a broken model, and a preempted run's is the error of an unfinished one.
//
// "Best" is a selection, and selecting on the split that is then reported makes the reported
// number optimistic. So when the runs hold out a validation split, the best setting is the
// one with the lowest mean validation loss (the study verdict's rule) and the test error is
// only reported; sweeps without one (older runs) fall back to the test split, and say so.

/// Which test error the heatmaps show (and "best" minimizes in sweeps without validation).
public enum ReportMetric: String, CaseIterable, Sendable {
    /// The test error of the last evaluation (the AdamW paper's Figure 2).
    case final
    /// The test error of the run's best evaluation (summary.json `best`): picked on the
    /// validation split when the run has one, else the lowest test error (the test set as oracle).
    case best

    /// Words for titles and tables.
    public var phrase: String {
        switch self {
        case .final: return "final test error"
        case .best: return "test error at the best evaluation (chosen on validation when there is one)"
        }
    }
}

/// How the report picks each method's best setting (the outlined cell, the curves, the tables).
public enum ReportSelection: Sendable, Equatable {
    /// The lowest mean final validation loss over seeds, among settings whose every seed
    /// completed with one: the rule of the study verdict (StudyVerdict), so both name the
    /// same settings. The test numbers are only reported.
    case validation
    /// The lowest mean test error over the completed seeds: only for runs without a
    /// validation split, where nothing else is there to select on.
    case test

    /// The rule in words, for tables, legends and the page.
    public var phrase: String {
        switch self {
        case .validation: return "selected on the lowest mean validation loss over seeds; test numbers are only reported"
        case .test: return "selected on the test split (no validation split in these runs)"
        }
    }

    /// The legend of the outlined heatmap cell.
    var outline: String {
        switch self {
        case .validation: return "red outline: selected (lowest mean validation loss)"
        case .test: return "red outline: lowest mean test error (selected on test: no validation split)"
        }
    }
}

/// Mean and sample standard deviation of a metric over the seeds of one setting.
public struct MeanStd: Equatable, Sendable {
    /// The mean.
    public let mean: Double
    /// The sample standard deviation (n − 1 in the denominator); nil for a single value.
    public let std: Double?
    /// How many values went in.
    public let count: Int

    /// The mean and standard deviation of `values`, nil when empty.
    public init?(_ values: [Double]) {
        guard !values.isEmpty else { return nil }
        let n = Double(values.count)
        let mean = values.reduce(0, +) / n
        self.mean = mean
        self.count = values.count
        // Seeds are a sample of the seed distribution, so the unbiased (n − 1) estimate.
        self.std = values.count > 1 ? (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / (n - 1)).squareRoot() : nil
    }

    private init(mean: Double, std: Double?, count: Int) {
        self.mean = mean
        self.std = std
        self.count = count
    }

    /// The same in another unit (a fraction as percent): mean and std times `factor`.
    func scaled(by factor: Double) -> MeanStd { MeanStd(mean: mean * factor, std: std.map { $0 * abs(factor) }, count: count) }
}

/// How many runs of a sweep are in which state.
public struct ReportStatusCounts: Equatable, Sendable {
    /// Runs per status; every status is a key, zero included.
    public let byStatus: [RunStatus?: Int]

    /// Counts the statuses of `statuses`.
    public init<S: Sequence>(_ statuses: S) where S.Element == RunStatus? {
        var d = Dictionary(uniqueKeysWithValues: RunStatus?.sweepOrder.map { ($0, 0) })
        for s in statuses { d[s, default: 0] += 1 }
        byStatus = d
    }

    /// All runs.
    public var total: Int { byStatus.values.reduce(0, +) }
    /// Completed runs (usable results).
    public var done: Int { byStatus[.completed] ?? 0 }
    /// Failed and diverged runs.
    public var failed: Int { (byStatus[.failed] ?? 0) + (byStatus[.diverged] ?? 0) }
    /// Pending and preempted runs (the runner will still run them).
    public var pending: Int { (byStatus[nil] ?? 0) + (byStatus[.preempted] ?? 0) }

    /// "36 runs: 33 done, 2 failed (1 diverged), 1 pending".
    public var sentence: String {
        var failedText = "\(failed) failed"
        if let d = byStatus[.diverged], d > 0 { failedText += " (\(d) diverged)" }
        var pendingText = "\(pending) pending"
        if let p = byStatus[.preempted], p > 0 { pendingText += " (\(p) preempted)" }
        return "\(total) run\(total == 1 ? "" : "s"): \(done) done, \(failedText), \(pendingText)"
    }
}

/// One run of the sweep and what its directory says.
struct ReportRun {
    let index: Int
    let run: SweepManifest.Run
    let status: RunStatus?
    let summary: RunSummary?
    let directory: URL

    var finalTestError: Double? { summary?.final?.testError }
    var bestTestError: Double? { summary?.best?.testError }
    var bestEpoch: Double? { summary?.best?.epoch }
    /// The data loss (cross-entropy without penalty), so L2 and decoupled runs compare.
    var finalTrainLoss: Double? { summary?.final?.dataLoss }
    var zeroFraction: Double? { summary?.final?.zeroFraction }
    var wallSeconds: Double? { summary?.wallS }
    /// The final validation loss of a completed run (what validation selection reads).
    var finalValLoss: Double? {
        guard status.isDone, let v = summary?.final?.valLoss, v.isFinite else { return nil }
        return v
    }

    /// The metric when this run is a result (completed, finite), else nil.
    func metric(_ m: ReportMetric) -> Double? {
        guard status.isDone else { return nil }
        let v = m == .final ? finalTestError : bestTestError
        return v.flatMap { $0.isFinite ? $0 : nil }
    }
}

/// The runs of one (method, lr, decay): one heatmap cell, one row of the aggregate table.
struct ReportSetting {
    let method: String
    let lr: Double
    let decay: Double
    let runs: [ReportRun]

    var completed: [ReportRun] { runs.filter { $0.status.isDone } }

    func aggregate(_ m: ReportMetric) -> MeanStd? { MeanStd(runs.compactMap { $0.metric(m) }) }
    /// Mean final validation loss over the completed seeds (shown even when a seed is missing).
    var validationLoss: MeanStd? { MeanStd(runs.compactMap(\.finalValLoss)) }
    /// The validation loss selection compares: nil unless every seed completed with one, as
    /// in the verdict, so a setting is never preferred for having lost its worse seeds.
    var selectableValidationLoss: MeanStd? {
        let values = runs.compactMap(\.finalValLoss)
        return values.count == runs.count ? MeanStd(values) : nil
    }
    var finalTrainLoss: MeanStd? {
        MeanStd(completed.compactMap { $0.finalTrainLoss }.filter { $0.isFinite })
    }

    /// The run whose selection value is lowest (ties: lowest seed, then manifest order): its
    /// final validation loss, or under `.test` its metric.
    func bestRun(_ m: ReportMetric, selection: ReportSelection) -> ReportRun? {
        let key: (ReportRun) -> Double? = selection == .validation ? { $0.finalValLoss } : { $0.metric(m) }
        return runs.filter { key($0) != nil && $0.metric(m) != nil }.min { a, b in
            (key(a)!, a.run.seed, a.index) < (key(b)!, b.run.seed, b.index)
        }
    }

    /// The word for a cell without a result: the most telling status among its runs.
    var missingLabel: String {
        let statuses = Set(runs.map(\.status))
        return [RunStatus.diverged, .failed, .preempted, nil].filter(statuses.contains).map(\.label)
            .joined(separator: " / ")
    }
}

/// The best setting of one method and its best run.
public struct ReportMethodBest: Sendable, CustomStringConvertible {
    /// The method label.
    public let method: String
    /// The setting's learning rate.
    public let lr: Double
    /// The setting's weight decay / L2 factor.
    public let decay: Double
    /// How the setting was selected.
    public let selection: ReportSelection
    /// The mean final validation loss it was selected on (nil under `.test`).
    public let validationLoss: MeanStd?
    /// The test metric over the setting's completed seeds (reported, selected on only under `.test`).
    public let value: MeanStd
    /// How many runs (seeds) the setting has in total.
    public let runCount: Int
    /// The id of the setting's best run (lowest validation loss, or metric under `.test`):
    /// the one whose curves are drawn.
    public let bestRunID: String
    /// That run's seed.
    public let bestRunSeed: Int
    /// That run's metric.
    public let bestRunValue: Double

    /// "lr 1e-3  λ 1e-2  11.52 ± 0.31 %  (2 of 2 seeds)  best run 3f9a1c2b7d10 seed 0: 11.21 %", with
    /// "val loss 0.4521 ± 0.003" before the test error when selected on validation.
    public var description: String {
        "lr \(ReportFormat.hyper(lr))  λ \(ReportFormat.hyper(decay))  "
            + (validationLoss.map { "val loss \(ReportFormat.lossMeanStd($0))  test " } ?? "")
            + "\(ReportFormat.percentMeanStd(value)) %  "
            + "(\(value.count) of \(runCount) seeds)  best run \(bestRunID) seed \(bestRunSeed): \(ReportFormat.percent(bestRunValue)) %"
    }
}

/// A sweep's manifest and every run's state, read from the sweep directory.
struct SweepResults {
    let directory: URL
    let manifest: SweepManifest
    let runs: [ReportRun]
    /// Methods in the order they first appear in the manifest (the runner's order is the spec's).
    let methods: [String]

    /// Reads the manifest and every run's summary.json. A missing run directory or a bad
    /// summary is an error naming the file and key; a missing summary.json means pending.
    static func load(sweepDirectory: URL) throws -> SweepResults {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: sweepDirectory.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw FileFormatError(file: sweepDirectory.path, message: "no such sweep directory")
        }
        let manifestURL = sweepDirectory.appendingPathComponent(SweepManifest.fileName)
        let manifest = try SweepManifest.load(from: manifestURL)
        var runs: [ReportRun] = []
        for (i, run) in manifest.runs.enumerated() {
            let dir = run.directory(in: sweepDirectory)
            // A run directory appears when its run starts; until then the run is pending.
            if FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDirectory), !isDirectory.boolValue {
                throw FileFormatError(file: manifestURL.path, key: "runs[\(i)].dir",
                                     message: "'\(run.dir)' (\(dir.path)) is a file, expected a run directory")
            }
            let summaryURL = dir.appendingPathComponent("summary.json")
            let summary = FileManager.default.fileExists(atPath: summaryURL.path) ? try RunSummary.load(from: summaryURL) : nil
            runs.append(ReportRun(index: i, run: run, status: summary?.status, summary: summary, directory: dir))
        }
        var methods: [String] = []
        for r in manifest.runs where !methods.contains(r.method) { methods.append(r.method) }
        return SweepResults(directory: sweepDirectory, manifest: manifest, runs: runs, methods: methods)
    }

    var counts: ReportStatusCounts { ReportStatusCounts(runs.map(\.status)) }

    /// Validation when any completed run has a validation loss (the runs of one sweep share
    /// their data config), else test.
    var selection: ReportSelection { runs.contains { $0.finalValLoss != nil } ? .validation : .test }

    /// Runs sorted as the tables list them: method (manifest order), lr, decay, seed.
    var sortedRuns: [ReportRun] {
        runs.sorted { a, b in
            let ma = methods.firstIndex(of: a.run.method)!, mb = methods.firstIndex(of: b.run.method)!
            return (ma, a.run.lr, a.run.decay, a.run.seed, a.index) < (mb, b.run.lr, b.run.decay, b.run.seed, b.index)
        }
    }

    /// One setting per (method, lr, decay), in table order.
    var settings: [ReportSetting] {
        var order: [String] = []
        var groups: [String: [ReportRun]] = [:]
        for r in sortedRuns {
            let key = "\(r.run.method)\u{1F}\(r.run.lr)\u{1F}\(r.run.decay)"
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append(r)
        }
        return order.map { key in
            let rs = groups[key]!
            return ReportSetting(method: rs[0].run.method, lr: rs[0].run.lr, decay: rs[0].run.decay, runs: rs)
        }
    }

    func settings(of method: String) -> [ReportSetting] { settings.filter { $0.method == method } }

    /// The learning rates and decays one method's grid spans, ascending.
    func axes(of method: String) -> (lrs: [Double], decays: [Double]) {
        let rs = runs.filter { $0.run.method == method }
        return (Array(Set(rs.map(\.run.lr))).sorted(), Array(Set(rs.map(\.run.decay))).sorted())
    }

    /// The selected setting of `method` (see `selection`), its test metric and its best run;
    /// nil without a selectable setting. Ties keep the first in table order, as the verdict does.
    func best(of method: String, metric m: ReportMetric) -> (setting: ReportSetting, value: MeanStd, run: ReportRun)? {
        let selection = self.selection
        var best: (setting: ReportSetting, value: MeanStd, run: ReportRun, key: Double)?
        for s in settings(of: method) {
            guard let v = s.aggregate(m), let r = s.bestRun(m, selection: selection) else { continue }
            let key: Double
            if selection == .validation {
                guard let vl = s.selectableValidationLoss else { continue }
                key = vl.mean
            } else {
                key = v.mean
            }
            if best == nil || key < best!.key { best = (s, v, r, key) }
        }
        return best.map { ($0.setting, $0.value, $0.run) }
    }

    func methodBest(_ method: String, metric m: ReportMetric) -> ReportMethodBest? {
        let selection = self.selection
        return best(of: method, metric: m).map { b in
            ReportMethodBest(method: method, lr: b.setting.lr, decay: b.setting.decay, selection: selection,
                             validationLoss: selection == .validation ? b.setting.selectableValidationLoss : nil, value: b.value,
                             runCount: b.setting.runs.count, bestRunID: b.run.run.id,
                             bestRunSeed: b.run.run.seed, bestRunValue: b.run.metric(m)!)
        }
    }
}
