import DecoupledCheckpoint
import Foundation

/// One row of `metrics.jsonl` / `metrics.csv` (docs/run-directory.md lists every key).
public struct MetricRecord: Codable, Equatable {
    public var step: Int
    public var epoch: Double
    public var lr: Double
    public var eta: Double
    public var data_loss: Double?
    public var penalty: Double
    /// Each coupled regularizer's loss term, by "group/regularizer".
    public var penalties: [String: Double]
    public var total_loss: Double?
    public var train_acc: Double?
    /// On the validation rows held out of the training split (`data.validation`); nil without.
    public var val_loss: Double?
    public var val_acc: Double?
    public var test_loss: Double?
    public var test_acc: Double?
    public var weight_norm: Double
    public var zero_fraction: Double
    public var step_ms: Double?
    public var elapsed_s: Double
    /// Counts reported by regularizer plugins, by "plugin.metric".
    public var metrics: [String: Double]
    /// Steps skipped so far by nan_policy = "skip_step" (nil in logs of older versions).
    public var skipped_steps: Int? = nil

    /// Whether this record evaluated the test split.
    public var isEvaluation: Bool { test_loss != nil }

    static let fixedColumns = ["step", "epoch", "lr", "eta", "data_loss", "penalty"]
    static let trailingColumns = ["total_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc", "weight_norm", "zero_fraction",
                                  "step_ms", "elapsed_s"]

    func csvRow(penaltyNames: [String], metricNames: [String]) -> [String] {
        func f(_ x: Double?) -> String { x.map { "\($0)" } ?? "" }
        return [String(step), f(epoch), f(lr), f(eta), f(data_loss), f(penalty)]
            + penaltyNames.map { f(penalties[$0]) }
            + [f(total_loss), f(train_acc), f(val_loss), f(val_acc), f(test_loss), f(test_acc), f(weight_norm), f(zero_fraction), f(step_ms),
               f(elapsed_s)]
            + metricNames.map { f(metrics[$0]) }
    }
}

/// Appends records to `metrics.jsonl` and `metrics.csv`, flushing each line so a crash or a
/// preemption loses nothing already logged. On resume it first drops records past the
/// checkpoint's step, so the files read as if the run had never stopped.
public final class MetricsLog {
    public let jsonlPath: String
    public let csvPath: String
    let penaltyNames: [String]
    let metricNames: [String]
    private var jsonl: FS.AppendFile
    private var csv: FS.AppendFile
    /// What opening found worth a warning (a torn last line set aside); the trainer prints it.
    public private(set) var warnings: [String] = []
    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return e
    }()

    /// Opens the logs in `directory`, keeping only records with `step <= keepThrough`
    /// (nil: start empty). A torn last line (a kill mid-write) is not silently dropped: its
    /// bytes are appended to `metrics.jsonl.torn` and reported in `warnings`.
    public init(directory: String, penaltyNames: [String], metricNames: [String], keepThrough: Int?) throws {
        jsonlPath = (directory as NSString).appendingPathComponent("metrics.jsonl")
        csvPath = (directory as NSString).appendingPathComponent("metrics.csv")
        self.penaltyNames = penaltyNames
        self.metricNames = metricNames
        var kept: [MetricRecord] = []
        if let keepThrough {
            let (records, torn) = try MetricsLog.readKeepingTornLine(jsonlPath)
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
        let header = (MetricRecord.fixedColumns + penaltyNames.map { "penalty.\($0)" } + MetricRecord.trailingColumns
                      + metricNames.map { "metric.\($0)" }).joined(separator: ",") + "\n"
        // Rewritten whole and renamed into place: a kill during a resume's rewrite leaves the
        // old, complete files; a link planted at either name is replaced, never written through.
        var lines = Data(), rows = Data(header.utf8)
        for r in kept {
            lines.append(try Self.line(r, Self.encoder))
            rows.append(Self.csvLine(r, penaltyNames, metricNames))
        }
        try FS.writeAtomically(lines, to: jsonlPath)
        try FS.writeAtomically(rows, to: csvPath)
        jsonl = try FS.AppendFile(jsonlPath)
        csv = try FS.AppendFile(csvPath)
    }

    static func csvLine(_ r: MetricRecord, _ penaltyNames: [String], _ metricNames: [String]) -> Data {
        Data((r.csvRow(penaltyNames: penaltyNames, metricNames: metricNames).joined(separator: ",") + "\n").utf8)
    }

    static func line(_ r: MetricRecord, _ encoder: JSONEncoder) throws -> Data {
        var line = try encoder.encode(r)
        line.append(UInt8(ascii: "\n"))
        return line
    }

    public func append(_ r: MetricRecord) throws {
        try jsonl.write(try Self.line(r, Self.encoder))
        try csv.write(Self.csvLine(r, penaltyNames, metricNames))
    }

    /// Every record of a `metrics.jsonl`; a missing file reads as none. A torn last line
    /// (a kill mid-write) is left out; any other bad line is an error naming the file and line.
    public static func read(_ path: String) throws -> [MetricRecord] {
        try readKeepingTornLine(path).records
    }

    /// The records, and the bytes of a torn last line (no trailing newline, not a record) if any.
    static func readKeepingTornLine(_ path: String) throws -> (records: [MetricRecord], torn: Data?) {
        guard let data = FileManager.default.contents(atPath: path) else { return ([], nil) }
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        let lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        var out: [MetricRecord] = []
        for (i, line) in lines.enumerated() where !line.isEmpty {
            do {
                out.append(try decoder.decode(MetricRecord.self, from: Data(line)))
            } catch {
                if i == lines.count - 1 { return (out, Data(line)) }  // no trailing newline: the write was cut off
                throw TrainingError("\(path):\(i + 1): not a metrics record: \(error)")
            }
        }
        return (out, nil)
    }
}
