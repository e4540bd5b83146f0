import DecoupledExperiments
import DecoupledTraining
import Foundation

// What `decoupled serve` shows, read from a sweep directory or a single run directory through
// the readers `sweep status`, `decoupled report` and the study use (SweepStatus, MetricRecord,
// ReportHeatmapGrid, StudyVerdict): the dashboard never parses a run file itself, and never
// writes one. A URL names a run only by its id, which is looked up in the table built here
// from the manifest (or the one served run): no part of a URL is ever joined to a path.

/// Why the dashboard cannot serve a directory or cannot listen.
public enum DashboardError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The path does not exist.
    case noSuchDirectory(String)
    /// The path is a file, not a directory.
    case notADirectory(String)
    /// A directory that is neither a sweep nor a run directory.
    case notARunOrSweep(String)
    /// Another process listens on the address.
    case portInUse(host: String, port: Int)
    /// The address cannot be bound (a bad host name, a port needing privileges, ...).
    case cannotListen(host: String, port: Int, reason: String)

    public var description: String {
        switch self {
        case .noSuchDirectory(let p):
            return "\(p): no such directory (expected a sweep directory with manifest.json, or a run directory)"
        case .notADirectory(let p):
            return "\(p): is a file, expected a sweep directory (with manifest.json) or a run directory"
        case .notARunOrSweep(let p):
            return "\(p): neither a sweep directory (no \(SweepManifest.fileName)) nor a run directory "
                + "(none of \(DashboardSource.runDirectoryMarkers.joined(separator: ", ")))"
        case .portInUse(let host, let port):
            return "cannot listen on \(host):\(port): the port is in use by another program; "
                + "choose another with --port N, or --port 0 for any free port"
        case .cannotListen(let host, let port, let reason):
            return "cannot listen on \(host):\(port): \(reason)"
        }
    }
}

/// The directory being served and the runs a URL may name.
public struct DashboardSource: Sendable {
    /// A sweep directory (manifest.json) or one run directory.
    public enum Kind: String, Codable, Sendable { case sweep, run }

    /// Files of which at least one is in every run directory, whatever stage it is at
    /// (docs/run-directory.md): the config from the start, then metrics and summary.
    static let runDirectoryMarkers = ["config.toml", "metrics.jsonl", RunSummary.fileName]

    public let kind: Kind
    /// The directory, absolute and standardized.
    public let directory: String
    /// The sweep's name (manifest) or the run directory's name.
    public let name: String
    /// Run id → run directory. The only way from a URL to a file.
    let runDirectories: [String: String]
    /// Run ids in manifest order (one for a run directory).
    let runIDs: [String]

    /// Opens `path`: a sweep directory when it holds manifest.json (read and validated now, so
    /// a bad manifest is an error before the server starts), else a run directory.
    public static func open(_ path: String) throws -> DashboardSource {
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        let directory = (absolute as NSString).standardizingPath
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) else {
            throw DashboardError.noSuchDirectory(path)
        }
        guard isDirectory.boolValue else { throw DashboardError.notADirectory(path) }
        let url = URL(fileURLWithPath: directory, isDirectory: true)
        if FileManager.default.fileExists(atPath: url.appendingPathComponent(SweepManifest.fileName).path) {
            let manifest = try SweepManifest.load(from: url)
            var table: [String: String] = [:]
            for run in manifest.runs { table[run.id] = run.directory(in: url).path }
            return DashboardSource(kind: .sweep, directory: directory, name: manifest.name, runDirectories: table,
                                   runIDs: manifest.runs.map(\.id))
        }
        guard runDirectoryMarkers.contains(where: { FileManager.default.fileExists(atPath: url.appendingPathComponent($0).path) }) else {
            throw DashboardError.notARunOrSweep(path)
        }
        let id = url.lastPathComponent
        return DashboardSource(kind: .run, directory: directory, name: id, runDirectories: [id: directory], runIDs: [id])
    }

    // MARK: what the API answers

    /// `/api/runs`: every run's status as `sweep status` reports it.
    func runsPayload(now: Date = Date()) throws -> RunsPayload {
        var rows: [RunRow] = []
        var problems: [String] = []
        var name = self.name
        switch kind {
        case .sweep:
            let status = try SweepStatus.load(sweepDirectory: directory)
            problems = status.problems
            for r in status.runs {
                rows.append(RunRow(id: r.run.id, state: r.state, method: r.run.method, lr: r.run.lr, decay: r.run.decay,
                                   seed: r.run.seed, finalTestAccuracy: r.finalTestAccuracy, step: r.step, stepsTotal: r.stepsTotal,
                                   lockHolder: r.lockHolder, reason: r.reason,
                                   progress: r.state == .running ? progress(r.run.id) : nil))
            }
        case .run:
            let s = SweepStatus.RunDirectoryState.read(directory)
            if let summaryName = try? RunSummary.load(from: URL(fileURLWithPath: directory).appendingPathComponent(RunSummary.fileName)).name {
                name = summaryName
            }
            rows.append(RunRow(id: runIDs[0], state: s.state, method: nil, lr: nil, decay: nil, seed: nil,
                               finalTestAccuracy: s.finalTestAccuracy, step: s.step, stepsTotal: s.stepsTotal,
                               lockHolder: s.lockHolder, reason: s.reason, progress: progress(runIDs[0])))
        }
        let c = SweepStatus.counts(rows.map(\.state))
        let counts = Counts(pending: c.pending, running: c.running, done: c.done, failed: c.failed)
        return RunsPayload(kind: kind, name: name, directory: directory, updated: ISO8601DateFormatter().string(from: now),
                           counts: counts, runs: rows, problems: problems)
    }

    /// The newest metrics record of a run, for the progress column (nil before the first).
    private func progress(_ id: String) -> RunRow.Progress? {
        guard let dir = runDirectories[id],
              let records = try? MetricRecord.read((dir as NSString).appendingPathComponent("metrics.jsonl")),
              let last = records.last else { return nil }
        return RunRow.Progress(records: records.count, step: last.step, epoch: last.epoch)
    }

    /// `/api/runs/ID/metrics?since=N`: the records from the N-th on (0-based), or nil for an
    /// id the manifest does not list. A log shorter than N (a resume trims the records past its
    /// checkpoint) answers every record with `reset`, so the page starts that run's curves over.
    func metricsPayload(id: String, since: Int) throws -> MetricsPayload? {
        guard let dir = runDirectories[id] else { return nil }
        let path = (dir as NSString).appendingPathComponent("metrics.jsonl")
        // No log yet: the run has not started (or not reached its first record).
        guard FileManager.default.fileExists(atPath: path) else {
            return MetricsPayload(id: id, since: since, next: 0, reset: since > 0, records: [])
        }
        let records = try MetricRecord.read(path)
        if since > records.count {
            return MetricsPayload(id: id, since: 0, next: records.count, reset: true, records: records)
        }
        return MetricsPayload(id: id, since: since, next: records.count, reset: false, records: Array(records[since...]))
    }

    /// `/api/heatmaps`: the report's heatmap grids, nil for a run directory.
    func heatmaps() throws -> ReportHeatmapGrid.Set? {
        guard kind == .sweep else { return nil }
        return try ReportHeatmapGrid.load(sweepDirectory: URL(fileURLWithPath: directory, isDirectory: true))
    }

    /// `/api/verdict`: the study's verdict.json, nil when there is none.
    func verdict() throws -> StudyVerdict? {
        guard kind == .sweep else { return nil }
        return try StudyVerdict.load(sweepDirectory: directory)
    }
}

// MARK: - API payloads (snake_case keys, like the files they come from)

struct Counts: Codable, Equatable {
    var pending = 0, running = 0, done = 0, failed = 0
}

struct RunRow: Codable, Equatable {
    struct Progress: Codable, Equatable {
        let records: Int
        let step: Int
        let epoch: Double
    }

    let id: String
    let state: SweepStatus.State
    let method: String?
    let lr: Double?
    let decay: Double?
    let seed: Int?
    let finalTestAccuracy: Double?
    let step: Int?
    let stepsTotal: Int?
    let lockHolder: Int32?
    let reason: String?
    /// The newest metrics record of a running run.
    let progress: Progress?

    enum CodingKeys: String, CodingKey {
        case id, state, method, lr, decay, seed, step, reason, progress
        case finalTestAccuracy = "final_test_acc", stepsTotal = "steps_total", lockHolder = "lock_holder"
    }
}

struct RunsPayload: Codable, Equatable {
    let kind: DashboardSource.Kind
    let name: String
    let directory: String
    let updated: String
    let counts: Counts
    let runs: [RunRow]
    let problems: [String]
}

struct MetricsPayload: Codable, Equatable {
    let id: String
    let since: Int
    let next: Int
    let reset: Bool
    let records: [MetricRecord]
}
