import DecoupledCheckpoint
import DecoupledTensorBoard
import Foundation

/// The run's metrics records as TensorBoard scalars, in event files under RUN_DIR/tensorboard
/// (`train.tensorboard`; docs/run-directory.md). Written by `MetricsLog` at the same points
/// as metrics.jsonl, so the two hold the same records; on resume the event files are trimmed
/// to the same step as the metrics log.
public final class TensorBoardLog {
    /// The directory inside a run directory.
    public static let directoryName = "tensorboard"

    public let directory: String
    private let writer: EventFileWriter
    /// What opening found worth a warning (a torn record dropped); the trainer prints it.
    public private(set) var warnings: [String] = []

    /// Opens a new event file in RUN_DIR/tensorboard after trimming the existing ones to
    /// `keepThrough` (`trim`), and writes the records of `kept` (the metrics log after its own
    /// trim) that no event file holds: a run that turns TensorBoard on at a resume, or whose
    /// event write was cut off by a kill, still gets every record.
    public init(runDirectory: String, kept: [MetricRecord], keepThrough: Int?) throws {
        directory = (runDirectory as NSString).appendingPathComponent(Self.directoryName)
        let (steps, trimWarnings) = try Self.trim(runDirectory: runDirectory, keepThrough: keepThrough)
        warnings = trimWarnings
        writer = try EventFileWriter(directory: directory)
        for r in kept where !steps.contains(Int64(r.step)) { try append(r) }
    }

    public var eventFilePath: String { writer.path }

    public func append(_ r: MetricRecord) throws {
        try writer.write(TensorBoardEvent(wallTime: Date().timeIntervalSince1970, step: Int64(r.step),
                                          scalars: try Self.scalars(of: r)))
    }

    /// Drops the events past step `keepThrough` (all of them when nil: a new run in a used
    /// directory) from the event files in RUN_DIR/tensorboard, each file rewritten atomically
    /// or removed when no scalars remain, as `MetricsLog` trims metrics.jsonl: the directory
    /// then reads as if the run had never stopped. A torn last record (a kill mid-write) is
    /// dropped with a warning. Returns the steps the remaining files hold scalars for.
    @discardableResult
    public static func trim(runDirectory: String, keepThrough: Int?) throws -> (steps: Set<Int64>, warnings: [String]) {
        let directory = (runDirectory as NSString).appendingPathComponent(directoryName)
        guard FS.isDirectory(directory) else { return ([], []) }
        let limit = Int64(keepThrough ?? -1)
        var steps = Set<Int64>(), warnings: [String] = []
        for file in try EventFileReader.eventFiles(in: directory) {
            let contents: EventFileReader.Contents
            do { contents = try EventFileReader.read(file, allowingTornEnd: true) } catch let e as EventFileError {
                // Damage other than a torn end is not ours to repair: the user decides.
                throw EventFileError(file: e.file, offset: e.offset, message: e.message
                    + "; the run cannot trim its TensorBoard files to the checkpoint: move this file out of \(directory) and resume again")
            }
            let kept = contents.events.map(\.event).filter { $0.fileVersion != nil || $0.step <= limit }
            if let torn = contents.tornAt {
                warnings.append("warning: \(file) ended in a partial record at byte offset \(torn) (a write cut off by a kill); it is dropped")
            }
            if !kept.contains(where: { $0.fileVersion == nil }) {
                if let failed = FS.unlinkIfPresent(file) {
                    throw EventFileError(file: file, offset: nil, message: "cannot remove the event file, which holds no record to keep: \(failed)")
                }
            } else if kept.count != contents.events.count || contents.tornAt != nil {
                try EventFileWriter.rewrite(file, with: kept)
            }
            for e in kept where e.fileVersion == nil { steps.insert(e.step) }
        }
        return (steps, warnings)
    }

    // MARK: tags

    /// Chart names for metrics.jsonl's keys, grouped by the part before the slash (TensorBoard
    /// shows each group as a section). A key missing here (added later, or renamed) is its
    /// own tag, so every key of a record reaches TensorBoard.
    static let tagByKey: [String: String] = [
        "epoch": "progress/epoch", "skipped_steps": "progress/skipped_steps",
        "lr": "optimizer/lr", "schedule_multiplier": "optimizer/schedule_multiplier",
        "data_loss": "loss/train_data", "total_loss": "loss/train_total", "penalty": "loss/penalty",
        "val_loss": "loss/validation", "test_loss": "loss/test",
        "train_acc": "accuracy/train", "val_acc": "accuracy/validation", "test_acc": "accuracy/test",
        "weight_norm": "weights/norm", "zero_fraction": "weights/zero_fraction",
        "step_ms": "time/step_ms", "elapsed_s": "time/elapsed_s",
    ]
    /// Keys whose value is an object of named values: one tag per name, under this prefix.
    static let tagPrefixByObjectKey = ["penalties": "loss/penalty/", "metrics": "plugin/"]

    /// The scalars of a record: every number of its metrics.jsonl line but `step` (the
    /// event's step), under the line's own keys (its `Codable` conformance, so the two cannot
    /// disagree), in key order. Non-finite values stay non-finite.
    public static func scalars(of record: MetricRecord) throws -> [TensorBoardScalar] {
        var out: [(tag: String, value: Double)] = []
        for leaf in try NumberLeaves.of(record) {
            guard let key = leaf.path.first, key != "step" else { continue }
            if leaf.path.count == 2, let prefix = tagPrefixByObjectKey[key] {
                out.append((prefix + leaf.path[1], leaf.value))
            } else if leaf.path.count == 1 {
                out.append((tagByKey[key] ?? key, leaf.value))
            } else {
                out.append((leaf.path.joined(separator: "/"), leaf.value))
            }
        }
        return out.sorted { $0.tag < $1.tag }.map { TensorBoardScalar(tag: $0.tag, value: Float($0.value)) }
    }

}
