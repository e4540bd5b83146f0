import Foundation

// What the report knows about a sweep: every run with its status and numbers, the runs
// grouped into settings (method, lr, decay) over seeds, and the best setting per method.
// Only completed runs enter means, heatmaps and "best": a diverged run's last test error is
// the error of a broken model, and a preempted run's is the error of an unfinished one.

/// Which test error the heatmaps show and "best" minimizes.
public enum ReportMetric: String, CaseIterable, Sendable {
    /// The test error of the last evaluation (the AdamW paper's Figure 2).
    case final
    /// The lowest test error over all evaluations (early stopping with the test set as oracle).
    case best

    /// Words for titles and tables.
    public var phrase: String {
        switch self {
        case .final: return "final test error"
        case .best: return "best test error over epochs"
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
}

/// How many runs of a sweep are in which state.
public struct ReportStatusCounts: Equatable, Sendable {
    /// Runs per status; every status is a key, zero included.
    public let byStatus: [SweepRunStatus: Int]

    /// Counts the statuses of `statuses`.
    public init<S: Sequence>(_ statuses: S) where S.Element == SweepRunStatus {
        var d = Dictionary(uniqueKeysWithValues: SweepRunStatus.allCases.map { ($0, 0) })
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
    public var pending: Int { (byStatus[.pending] ?? 0) + (byStatus[.preempted] ?? 0) }

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
    let status: SweepRunStatus
    let summary: SweepRunSummary?
    let directory: URL

    var finalTestError: Double? { summary?.final?.testError }
    var bestTestError: Double? { summary?.best?.testError }
    var bestEpoch: Double? { summary?.best?.epoch }
    /// The data loss (cross-entropy without penalty), so L2 and decoupled runs compare.
    var finalTrainLoss: Double? { summary?.final?.dataLoss }
    var zeroFraction: Double? { summary?.final?.zeroFraction }
    var wallSeconds: Double? { summary?.wallS }

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
    var finalTrainLoss: MeanStd? {
        MeanStd(completed.compactMap { $0.finalTrainLoss }.filter { $0.isFinite })
    }

    /// The run whose metric is lowest (ties: lowest seed, then manifest order).
    func bestRun(_ m: ReportMetric) -> ReportRun? {
        runs.filter { $0.metric(m) != nil }.min { a, b in
            (a.metric(m)!, a.run.seed, a.index) < (b.metric(m)!, b.run.seed, b.index)
        }
    }

    /// The word for a cell without a result: the most telling status among its runs.
    var missingLabel: String {
        let statuses = Set(runs.map(\.status))
        return [SweepRunStatus.diverged, .failed, .preempted, .pending].filter(statuses.contains).map(\.rawValue)
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
    /// The metric over the setting's completed seeds.
    public let value: MeanStd
    /// How many runs (seeds) the setting has in total.
    public let runCount: Int
    /// The id of the setting's run with the lowest metric: the one whose curves are drawn.
    public let bestRunID: String
    /// That run's seed.
    public let bestRunSeed: Int
    /// That run's metric.
    public let bestRunValue: Double

    /// "lr 1e-3  λ 1e-2  11.52 ± 0.31 %  (2 of 2 seeds)  best run 3f9a1c2b7d10 seed 0: 11.21 %"
    public var description: String {
        "lr \(ReportFormat.hyper(lr))  λ \(ReportFormat.hyper(decay))  \(ReportFormat.percentMeanStd(value)) %  "
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
            throw SweepFileError(file: sweepDirectory.path, message: "no such sweep directory")
        }
        let manifestURL = sweepDirectory.appendingPathComponent(SweepManifest.fileName)
        let manifest = try SweepManifest.load(from: manifestURL)
        var runs: [ReportRun] = []
        for (i, run) in manifest.runs.enumerated() {
            let dir = run.directory(in: sweepDirectory)
            // A run directory appears when its run starts; until then the run is pending.
            if FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDirectory), !isDirectory.boolValue {
                throw SweepFileError(file: manifestURL.path, key: "runs[\(i)].dir",
                                     message: "'\(run.dir)' (\(dir.path)) is a file, expected a run directory")
            }
            let summaryURL = dir.appendingPathComponent("summary.json")
            let summary = FileManager.default.fileExists(atPath: summaryURL.path) ? try SweepRunSummary.load(from: summaryURL) : nil
            runs.append(ReportRun(index: i, run: run, status: summary?.status ?? .pending, summary: summary, directory: dir))
        }
        var methods: [String] = []
        for r in manifest.runs where !methods.contains(r.method) { methods.append(r.method) }
        return SweepResults(directory: sweepDirectory, manifest: manifest, runs: runs, methods: methods)
    }

    var counts: ReportStatusCounts { ReportStatusCounts(runs.map(\.status)) }

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

    /// The setting with the lowest mean metric, and its best run; nil without a completed run.
    func best(of method: String, metric m: ReportMetric) -> (setting: ReportSetting, value: MeanStd, run: ReportRun)? {
        var best: (setting: ReportSetting, value: MeanStd, run: ReportRun)?
        for s in settings(of: method) {
            guard let v = s.aggregate(m), let r = s.bestRun(m) else { continue }
            if best == nil || v.mean < best!.value.mean { best = (s, v, r) }
        }
        return best
    }

    func methodBest(_ method: String, metric m: ReportMetric) -> ReportMethodBest? {
        best(of: method, metric: m).map { b in
            ReportMethodBest(method: method, lr: b.setting.lr, decay: b.setting.decay, value: b.value,
                             runCount: b.setting.runs.count, bestRunID: b.run.run.id,
                             bestRunSeed: b.run.run.seed, bestRunValue: b.run.metric(m)!)
        }
    }
}
