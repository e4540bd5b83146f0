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
    private var jsonl: FileHandle
    private var csv: FileHandle
    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return e
    }()

    /// Opens the logs in `directory`, keeping only records with `step <= keepThrough`
    /// (nil: start empty).
    public init(directory: String, penaltyNames: [String], metricNames: [String], keepThrough: Int?) throws {
        jsonlPath = (directory as NSString).appendingPathComponent("metrics.jsonl")
        csvPath = (directory as NSString).appendingPathComponent("metrics.csv")
        self.penaltyNames = penaltyNames
        self.metricNames = metricNames
        var kept: [MetricRecord] = []
        if let keepThrough {
            kept = try MetricsLog.read(jsonlPath).filter { $0.step <= keepThrough }
        }
        let header = (MetricRecord.fixedColumns + penaltyNames.map { "penalty.\($0)" } + MetricRecord.trailingColumns
                      + metricNames.map { "metric.\($0)" }).joined(separator: ",") + "\n"
        // Rewritten whole and renamed into place (Data.write(options: .atomic)): a kill during
        // a resume's rewrite leaves the old, complete files.
        var lines = Data(), rows = Data(header.utf8)
        for r in kept {
            lines.append(try Self.line(r, Self.encoder))
            rows.append(Self.csvLine(r, penaltyNames, metricNames))
        }
        try lines.write(to: URL(fileURLWithPath: jsonlPath), options: .atomic)
        try rows.write(to: URL(fileURLWithPath: csvPath), options: .atomic)
        jsonl = try FileHandle(forWritingTo: URL(fileURLWithPath: jsonlPath))
        csv = try FileHandle(forWritingTo: URL(fileURLWithPath: csvPath))
        try jsonl.seekToEnd()
        try csv.seekToEnd()
    }

    static func csvLine(_ r: MetricRecord, _ penaltyNames: [String], _ metricNames: [String]) -> Data {
        Data((r.csvRow(penaltyNames: penaltyNames, metricNames: metricNames).joined(separator: ",") + "\n").utf8)
    }

    static func line(_ r: MetricRecord, _ encoder: JSONEncoder) throws -> Data {
        var line = try encoder.encode(r)
        line.append(UInt8(ascii: "\n"))
        return line
    }

    deinit {
        try? jsonl.close()
        try? csv.close()
    }

    public func append(_ r: MetricRecord) throws {
        try jsonl.write(contentsOf: try Self.line(r, Self.encoder))
        try csv.write(contentsOf: Self.csvLine(r, penaltyNames, metricNames))
    }

    /// Every record of a `metrics.jsonl`; a missing file reads as none. A torn last line
    /// (a kill mid-write) is dropped; any other bad line is an error naming the file and line.
    public static func read(_ path: String) throws -> [MetricRecord] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        let lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        var out: [MetricRecord] = []
        for (i, line) in lines.enumerated() where !line.isEmpty {
            do {
                out.append(try decoder.decode(MetricRecord.self, from: Data(line)))
            } catch {
                if i == lines.count - 1 { break }  // no trailing newline: the write was cut off
                throw TrainingError("\(path):\(i + 1): not a metrics record: \(error)")
            }
        }
        return out
    }
}
