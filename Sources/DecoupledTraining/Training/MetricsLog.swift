import DecoupledCheckpoint
import Foundation

/// Appends records to `metrics.jsonl` and `metrics.csv`, flushing each line so a crash or a
/// preemption loses nothing already logged. On resume it first drops records past the
/// checkpoint's step, so the files read as if the run had never stopped. With `tensorboard`,
/// every record also goes to the run's TensorBoard event files (`TensorBoardLog`), trimmed
/// the same way.
public final class MetricsLog {
    public let jsonlPath: String
    public let csvPath: String
    let penaltyNames: [String]
    let metricNames: [String]
    private var jsonl: FS.AppendFile
    private var csv: FS.AppendFile
    /// The TensorBoard event files (`train.tensorboard`); nil when off.
    public let tensorBoard: TensorBoardLog?
    /// What opening found worth a warning (a torn last line set aside); the trainer prints it.
    public private(set) var warnings: [String] = []

    /// Opens the logs in `directory`, keeping only records with `step <= keepThrough`
    /// (nil: start empty). A torn last line (a kill mid-write) is not silently dropped: its
    /// bytes are appended to `metrics.jsonl.torn` and reported in `warnings`. Event files a
    /// run with `tensorboard` wrote are trimmed to the same step even when it is now off.
    public init(directory: String, penaltyNames: [String], metricNames: [String], keepThrough: Int?,
                tensorboard: Bool = false) throws {
        jsonlPath = (directory as NSString).appendingPathComponent("metrics.jsonl")
        csvPath = (directory as NSString).appendingPathComponent("metrics.csv")
        self.penaltyNames = penaltyNames
        self.metricNames = metricNames
        var kept: [MetricRecord] = []
        // A resume of a run that was stopped before its first record has no log yet: nothing to keep.
        if let keepThrough, FileManager.default.fileExists(atPath: jsonlPath) {
            let (records, torn) = try MetricRecord.readKeepingTornLine(jsonlPath)
            kept = records.filter { $0.step <= keepThrough }
            if let torn {
                let side = jsonlPath + ".torn"
                var saved = FileManager.default.contents(atPath: side) ?? Data()
                saved.append(torn)
                saved.append(UInt8(ascii: "\n"))
                try FS.writeAtomically(saved, to: side)
                warnings.append("warning: \(jsonlPath) ended in a partial line (\(torn.count) bytes, a write cut off by a kill); "
                                + "it is dropped from the log and kept in \(side)")
            }
        }
        // Rewritten whole and renamed into place: a kill during a resume's rewrite leaves the
        // old, complete files; a link planted at either name is replaced, never written through.
        var lines = Data(), rows = MetricRecord.csvHeader(penaltyNames: penaltyNames, metricNames: metricNames)
        for r in kept {
            lines.append(try r.jsonLine())
            rows.append(r.csvLine(penaltyNames: penaltyNames, metricNames: metricNames))
        }
        try FS.writeAtomically(lines, to: jsonlPath)
        try FS.writeAtomically(rows, to: csvPath)
        jsonl = try FS.AppendFile(jsonlPath)
        csv = try FS.AppendFile(csvPath)
        if tensorboard {
            let log = try TensorBoardLog(runDirectory: directory, kept: kept, keepThrough: keepThrough)
            warnings += log.warnings
            tensorBoard = log
        } else {
            warnings += try TensorBoardLog.trim(runDirectory: directory, keepThrough: keepThrough).warnings
            tensorBoard = nil
        }
    }

    public func append(_ r: MetricRecord) throws {
        try jsonl.write(try r.jsonLine())
        try csv.write(r.csvLine(penaltyNames: penaltyNames, metricNames: metricNames))
        try tensorBoard?.append(r)
    }
}
