import DecoupledCheckpoint
import Foundation

// The one home of a run directory's JSON formats (docs/run-directory.md):
//
//   <run dir>/summary.json   RunSummary   (status: RunStatus)
//   <run dir>/metrics.jsonl  MetricRecord, one per line (metrics.csv: the same rows)
//
// The trainer writes them and the sweep runner, `sweep status`, reports and the study read
// them, all through these types: when the trainer and the sweep each had their own copy, a
// trainer's exit and the sweep's view of it could disagree. Properties are camelCase; the
// keys on disk are snake_case (the CodingKeys), and must not change: older run directories
// and checkpoints (whose run state holds the best record) are read back with them.
//
// Reading is tolerant of older versions (a key added later is optional, and absent or null
// decodes as nil) but not of damage: a bad file or line is a `FileFormatError` naming the
// file, the line for JSON Lines, the key and what was expected.

/// How a run ended: the `status` of `summary.json`. A run without a summary.json has no
/// status yet; the sweep code shows that as "pending" (`RunStatus?`, nil).
public enum RunStatus: String, Codable, CaseIterable, Sendable {
    /// Trained to the end; its metrics are the run's results.
    case completed
    /// Stopped by a signal or time limit after a checkpoint; resuming continues it.
    case preempted
    /// Stopped because the loss or the parameters became NaN or infinite; `reason` says where.
    case diverged
    /// Stopped by an error (or killed, as recorded by the sweep runner); `reason` says which.
    case failed

    /// Finished without a usable result.
    public var isFailure: Bool { self == .diverged || self == .failed }

    /// Decodes a status; anything else is an error listing the four (the decoder's own
    /// message would not say what is allowed).
    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        let text = try c.decode(String.self)
        guard let s = RunStatus(rawValue: text) else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription:
                "'\(text)' is not one of \(RunStatus.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self = s
    }
}

/// One record of `metrics.jsonl` and row of `metrics.csv`: every evaluation, and every
/// `train.log_every` steps a train-only record (no test or validation keys).
///
/// `step` and `epoch` are in every record any version wrote, so their absence is damage;
/// every other key is optional on read: a train-only record has no test metrics, logs of
/// older versions lack later keys (`val_*`, `skipped_steps`, ...), and a hand-written record
/// may leave out what it does not know. Non-finite numbers are the strings "NaN",
/// "Infinity", "-Infinity" (plain JSON has none; a diverged run has them). Unset keys are
/// left out of the JSON, so a record read and written back (a resume trims the log) keeps
/// exactly the keys it had.
public struct MetricRecord: Codable, Equatable, Sendable {
    /// Optimizer updates done.
    public var step: Int
    /// Epochs done, fractional (`step / steps_per_epoch`).
    public var epoch: Double
    /// Learning rate of the first group at the last update (base lr × η_t).
    public var lr: Double?
    /// Schedule multiplier η_t at the last update (key `schedule_multiplier`; logs of older
    /// versions call it `eta`, which reads as "time remaining", and are read as well).
    public var scheduleMultiplier: Double?
    /// Mean data loss (cross-entropy, without penalty) over the training batches since the previous record.
    public var dataLoss: Double?
    /// Sum of the coupled regularizers' loss terms (0 when none).
    public var penalty: Double?
    /// Each coupled regularizer's loss term, by "group/regularizer".
    public var penalties: [String: Double]?
    /// `dataLoss + penalty`.
    public var totalLoss: Double?
    /// Training accuracy since the previous record, a fraction.
    public var trainAcc: Double?
    /// On the validation rows held out of the training split (`data.validation`); nil without.
    public var valLoss: Double?
    public var valAcc: Double?
    /// Mean data loss on the test split (eval records only).
    public var testLoss: Double?
    /// Accuracy on the test split, a fraction (eval records only).
    public var testAcc: Double?
    /// ‖w‖₂ over all parameters.
    public var weightNorm: Double?
    /// Fraction of parameters exactly 0.
    public var zeroFraction: Double?
    /// Mean wall time per step since the previous record, milliseconds.
    public var stepMs: Double?
    /// Wall time of the run so far (summed over resumes), seconds.
    public var elapsedS: Double?
    /// Counts reported by regularizer plugins, by "plugin.metric".
    public var metrics: [String: Double]?
    /// Steps skipped so far by nan_policy = "skip_step".
    public var skippedSteps: Int?

    /// Creates a record; every key but `step` and `epoch` defaults to absent.
    public init(step: Int, epoch: Double, lr: Double? = nil, scheduleMultiplier: Double? = nil, dataLoss: Double? = nil,
                penalty: Double? = nil, penalties: [String: Double]? = nil, totalLoss: Double? = nil,
                trainAcc: Double? = nil, valLoss: Double? = nil, valAcc: Double? = nil, testLoss: Double? = nil,
                testAcc: Double? = nil, weightNorm: Double? = nil, zeroFraction: Double? = nil, stepMs: Double? = nil,
                elapsedS: Double? = nil, metrics: [String: Double]? = nil, skippedSteps: Int? = nil) {
        self.step = step; self.epoch = epoch; self.lr = lr; self.scheduleMultiplier = scheduleMultiplier
        self.dataLoss = dataLoss; self.penalty = penalty; self.penalties = penalties; self.totalLoss = totalLoss
        self.trainAcc = trainAcc; self.valLoss = valLoss; self.valAcc = valAcc; self.testLoss = testLoss; self.testAcc = testAcc
        self.weightNorm = weightNorm; self.zeroFraction = zeroFraction; self.stepMs = stepMs; self.elapsedS = elapsedS
        self.metrics = metrics; self.skippedSteps = skippedSteps
    }

    enum CodingKeys: String, CodingKey {
        case step, epoch, lr, scheduleMultiplier = "schedule_multiplier"
        case dataLoss = "data_loss", penalty, penalties, totalLoss = "total_loss", trainAcc = "train_acc"
        case valLoss = "val_loss", valAcc = "val_acc", testLoss = "test_loss", testAcc = "test_acc"
        case weightNorm = "weight_norm", zeroFraction = "zero_fraction", stepMs = "step_ms", elapsedS = "elapsed_s"
        case metrics, skippedSteps = "skipped_steps"
    }

    /// Keys of older versions, read but never written.
    enum LegacyKeys: String, CodingKey {
        case eta
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        step = try c.decode(Int.self, forKey: .step)
        epoch = try c.decode(Double.self, forKey: .epoch)
        lr = try c.decodeIfPresent(Double.self, forKey: .lr)
        if c.contains(.scheduleMultiplier) {
            scheduleMultiplier = try c.decodeIfPresent(Double.self, forKey: .scheduleMultiplier)
        } else {
            scheduleMultiplier = try decoder.container(keyedBy: LegacyKeys.self).decodeIfPresent(Double.self, forKey: .eta)
        }
        dataLoss = try c.decodeIfPresent(Double.self, forKey: .dataLoss)
        penalty = try c.decodeIfPresent(Double.self, forKey: .penalty)
        penalties = try c.decodeIfPresent([String: Double].self, forKey: .penalties)
        totalLoss = try c.decodeIfPresent(Double.self, forKey: .totalLoss)
        trainAcc = try c.decodeIfPresent(Double.self, forKey: .trainAcc)
        valLoss = try c.decodeIfPresent(Double.self, forKey: .valLoss)
        valAcc = try c.decodeIfPresent(Double.self, forKey: .valAcc)
        testLoss = try c.decodeIfPresent(Double.self, forKey: .testLoss)
        testAcc = try c.decodeIfPresent(Double.self, forKey: .testAcc)
        weightNorm = try c.decodeIfPresent(Double.self, forKey: .weightNorm)
        zeroFraction = try c.decodeIfPresent(Double.self, forKey: .zeroFraction)
        stepMs = try c.decodeIfPresent(Double.self, forKey: .stepMs)
        elapsedS = try c.decodeIfPresent(Double.self, forKey: .elapsedS)
        metrics = try c.decodeIfPresent([String: Double].self, forKey: .metrics)
        skippedSteps = try c.decodeIfPresent(Int.self, forKey: .skippedSteps)
    }

    /// Whether this record evaluated the test split.
    public var isEvaluation: Bool { testLoss != nil }
    /// The test error `1 − test_acc` (a fraction), when the record has a test accuracy.
    public var testError: Double? { testAcc.map { 1 - $0 } }
    /// The validation error `1 − val_acc`, when the run holds out a validation split.
    public var valError: Double? { valAcc.map { 1 - $0 } }

    // MARK: metrics.csv

    static let fixedColumns = ["step", "epoch", "lr", "schedule_multiplier", "data_loss", "penalty"]
    static let trailingColumns = ["total_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc", "weight_norm", "zero_fraction",
                                  "step_ms", "elapsed_s"]

    /// The CSV header: the fixed columns, one per coupled regularizer and plugin metric.
    static func csvHeader(penaltyNames: [String], metricNames: [String]) -> Data {
        Data(((fixedColumns + penaltyNames.map { "penalty.\($0)" } + trailingColumns + metricNames.map { "metric.\($0)" })
              .joined(separator: ",") + "\n").utf8)
    }

    /// The record as a CSV row, a missing value empty.
    func csvLine(penaltyNames: [String], metricNames: [String]) -> Data {
        func f(_ x: Double?) -> String { x.map { "\($0)" } ?? "" }
        let row = [String(step), f(epoch), f(lr), f(scheduleMultiplier), f(dataLoss), f(penalty)]
            + penaltyNames.map { f(penalties?[$0]) }
            + [f(totalLoss), f(trainAcc), f(valLoss), f(valAcc), f(testLoss), f(testAcc), f(weightNorm), f(zeroFraction), f(stepMs),
               f(elapsedS)]
            + metricNames.map { f(metrics?[$0]) }
        return Data((row.joined(separator: ",") + "\n").utf8)
    }

    // MARK: metrics.jsonl

    // Sorted keys: Foundation otherwise writes them in hash order, which differs from process
    // to process, so two runs' logs could not be compared line by line.
    static let lineEncoder: JSONEncoder = {
        let e = JSONEncoder()
        // Slashes unescaped: penalty keys are "group/regularizer", and "w\/l2" is noise to readers.
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return e
    }()

    /// The record as one line of `metrics.jsonl`, newline included.
    public func jsonLine() throws -> Data {
        var line = try Self.lineEncoder.encode(self)
        line.append(UInt8(ascii: "\n"))
        return line
    }

    /// Every record of a `metrics.jsonl` file. A torn last line (no newline after it and not
    /// a record: a write cut off by a kill, or being appended right now) is left out; any
    /// other bad line is a `FileFormatError` naming `file:line` and the key.
    public static func read(_ path: String) throws -> [MetricRecord] {
        try readKeepingTornLine(path).records
    }

    /// The records, and the bytes of a torn last line if any (the trainer sets them aside on
    /// resume instead of dropping them). A missing or unreadable file is an error naming it.
    public static func readKeepingTornLine(_ path: String) throws -> (records: [MetricRecord], torn: Data?) {
        guard FileManager.default.fileExists(atPath: path) else {
            throw FileFormatError(file: path, message: "no such file (expected the metrics log)")
        }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw FileFormatError(file: path, message: "cannot read the metrics log: \(JSONFile.reason(error))")
        }
        let lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        var records: [MetricRecord] = []
        for (i, line) in lines.enumerated() {
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            do {
                records.append(try JSONFile.decode(MetricRecord.self, data: Data(line), file: path, line: i + 1))
            } catch where i == lines.count - 1 {
                return (records, Data(line))  // no newline after it: the write did not finish
            }
        }
        return (records, nil)
    }
}

/// `summary.json`: how a run ended and its final and best records. The trainer writes it at
/// the end and on every preemption; the sweep runner writes a "failed" one for a trainer that
/// died without writing its own (`writtenBy` says so).
///
/// Only `status` is required on read: a summary the sweep runner wrote for a run that never
/// started has nothing else, and summaries of older versions lack later keys.
public struct RunSummary: Codable, Equatable, Sendable {
    /// The run's name from its config.
    public var name: String?
    /// How the run ended.
    public var status: RunStatus
    /// Why a run was preempted, diverged or failed.
    public var reason: String?
    /// Optimizer updates done.
    public var step: Int?
    /// Epochs done.
    public var epoch: Double?
    /// Optimizer updates the config asks for.
    public var stepsTotal: Int?
    /// The last eval record.
    public var final: MetricRecord?
    /// The eval record with the highest validation accuracy (lowest validation loss without
    /// accuracy; without a validation split, the same on the test split).
    public var best: MetricRecord?
    /// Wall time of the run, summed over resumes, seconds.
    public var wallS: Double?
    /// Training throughput, samples per second.
    public var trainSamplesPerS: Double?
    /// The kernel path the run used (scalar, avx2, avx512, neon).
    public var kernel: String?
    /// Worker threads.
    public var threads: Int?
    /// FNV-1a 64-bit of config.toml, 16 hex digits (identifies the resolved config; not a security hash).
    public var configHash: String?
    /// Steps skipped by nan_policy = "skip_step".
    public var skippedSteps: Int?
    /// "sweep runner" when the sweep runner wrote this summary for a trainer that died; nil
    /// when the trainer wrote it.
    public var writtenBy: String?

    /// Creates a summary.
    public init(name: String? = nil, status: RunStatus, reason: String? = nil, step: Int? = nil, epoch: Double? = nil,
                stepsTotal: Int? = nil, final: MetricRecord? = nil, best: MetricRecord? = nil, wallS: Double? = nil,
                trainSamplesPerS: Double? = nil, kernel: String? = nil, threads: Int? = nil, configHash: String? = nil,
                skippedSteps: Int? = nil, writtenBy: String? = nil) {
        self.name = name; self.status = status; self.reason = reason; self.step = step; self.epoch = epoch
        self.stepsTotal = stepsTotal; self.final = final; self.best = best; self.wallS = wallS
        self.trainSamplesPerS = trainSamplesPerS; self.kernel = kernel; self.threads = threads
        self.configHash = configHash; self.skippedSteps = skippedSteps; self.writtenBy = writtenBy
    }

    enum CodingKeys: String, CodingKey {
        case name, status, reason, step, epoch, final, best, kernel, threads
        case stepsTotal = "steps_total", wallS = "wall_s", trainSamplesPerS = "train_samples_per_s"
        case configHash = "config_hash", skippedSteps = "skipped_steps", writtenBy = "written_by"
    }

    /// The file name inside a run directory.
    public static let fileName = "summary.json"

    /// Reads a run's `summary.json`; errors name the file and the key.
    public static func load(from url: URL) throws -> RunSummary {
        try JSONFile.decode(RunSummary.self, file: url, what: "run summary")
    }

    /// Writes the summary as pretty-printed JSON with sorted keys, atomically (a reader sees
    /// the old summary or the new one, never half of one; a link at the name is replaced).
    public func write(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        try FS.writeAtomically(try encoder.encode(self), to: path)
    }
}
