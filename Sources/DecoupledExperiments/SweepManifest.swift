import DecoupledCheckpoint
import Foundation

// The files of a sweep directory, as plain Codable models:
//
//   SWEEP_DIR/manifest.json          SweepManifest        (written by the sweep runner)
//   SWEEP_DIR/<run dir>/summary.json SweepRunSummary      (docs/run-directory.md)
//   SWEEP_DIR/<run dir>/metrics.jsonl SweepMetricsRecord  (docs/run-directory.md)
//
// Every loader reports a problem as a `SweepFileError` that names the file and the key
// (`runs[3].lr`, `final.test_acc`), because a sweep is hundreds of files written by other
// processes and "the data couldn't be read" does not say which one to look at.

/// A problem with one input file of a sweep: the file (with `:line` for JSON Lines), the key
/// inside it (a dotted path such as `runs[3].lr`, empty for the whole file) and what is wrong.
public struct SweepFileError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file, as the caller spelled its directory, with `:line` or `:line:column` when known.
    public let file: String
    /// The key path inside the file (`runs[3].lr`), or empty when the file as a whole is bad.
    public let key: String
    /// What is wrong, in words.
    public let message: String

    /// Creates an error about `key` in `file`.
    public init(file: String, key: String = "", message: String) {
        self.file = file
        self.key = key
        self.message = message
    }

    /// `file: key: message`, the form compilers and `ConfigError` use, so editors can jump to it.
    public var description: String { "\(file): \(key.isEmpty ? "" : "\(key): ")\(message)" }
}

/// The status of one run of a sweep. `pending` is the sweep's word for "no summary.json yet"
/// (not started or still running); the other four are what `summary.json` says.
public enum SweepRunStatus: String, Codable, CaseIterable, Sendable, Comparable {
    /// Trained to the end; its metrics are the sweep's results.
    case completed
    /// Stopped by a signal or time limit after a checkpoint; resuming continues it.
    case preempted
    /// Stopped because the loss became NaN or infinite; `reason` says where.
    case diverged
    /// Stopped by an error; `reason` says which.
    case failed
    /// No summary.json yet: queued or still training.
    case pending

    /// Finished with a usable result: only completed runs enter means, heatmaps and "best".
    public var isDone: Bool { self == .completed }
    /// Finished without a usable result.
    public var isFailure: Bool { self == .diverged || self == .failed }
    /// Not finished yet (a preempted run will be resumed by the runner).
    public var isUnfinished: Bool { self == .pending || self == .preempted }

    /// Orders statuses as tables list them: results first, then problems, then what is to come.
    public static func < (a: SweepRunStatus, b: SweepRunStatus) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

// MARK: - manifest.json

/// `SWEEP_DIR/manifest.json`: what a sweep runs. Written once by the sweep runner when it
/// expands a sweep spec; read by the runner to resume and by `decoupled report`.
///
/// ```json
/// { "format_version": 1, "name": "study", "spec": "sweep.toml",
///   "runs": [ { "id": "3f9a1c2b7d10", "dir": "runs/3f9a1c2b7d10", "method": "AdamW",
///               "lr": 0.001, "decay": 0.01, "seed": 0,
///               "overrides": { "optimizer.lr": 0.001, "optimizer.weight_decay": 0.01, "seed": 0 } } ] }
/// ```
/// Keys the model does not know are ignored, so a newer runner can add keys without
/// breaking older readers; a changed meaning gets a new `format_version`.
public struct SweepManifest: Codable, Equatable, Sendable {
    /// The manifest format this code reads and writes.
    public static let currentFormatVersion = 1
    /// The manifest's file name inside a sweep directory.
    public static let fileName = "manifest.json"

    /// The manifest format version; `load(from:)` refuses versions other than `currentFormatVersion`.
    public var formatVersion: Int
    /// The sweep's name, shown in reports.
    public var name: String
    /// The sweep spec the runs were expanded from, as the runner was given it.
    public var spec: String
    /// Every run of the sweep, in the order the runner expanded them.
    public var runs: [Run]

    /// Creates a manifest of the current format version.
    public init(name: String, spec: String, runs: [Run], formatVersion: Int = SweepManifest.currentFormatVersion) {
        self.formatVersion = formatVersion
        self.name = name
        self.spec = spec
        self.runs = runs
    }

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", name, spec, runs
    }

    /// One run: where it lives, which heatmap cell it belongs to, and how its config differs
    /// from the spec's base config.
    public struct Run: Codable, Equatable, Sendable {
        /// A short unique id (the runner derives it from a hash of the overrides).
        public var id: String
        /// The run directory, relative to the sweep directory (an absolute path is used as is).
        public var dir: String
        /// The label of the optimizer/regularizer pair, e.g. "AdamW" or "Adam+L2": one heatmap each.
        public var method: String
        /// The base learning rate: the heatmaps' x axis.
        public var lr: Double
        /// The weight decay or L2 factor λ (0 allowed): the heatmaps' y axis.
        public var decay: Double
        /// The seed; runs that differ only in seed are averaged.
        public var seed: Int
        /// The config keys this run sets on top of the spec's base config (`--set key=value`).
        public var overrides: [String: Value]

        /// Creates a run.
        public init(id: String, dir: String, method: String, lr: Double, decay: Double, seed: Int,
                    overrides: [String: Value] = [:]) {
            self.id = id
            self.dir = dir
            self.method = method
            self.lr = lr
            self.decay = decay
            self.seed = seed
            self.overrides = overrides
        }

        /// The run directory resolved against the sweep directory.
        public func directory(in sweepDirectory: URL) -> URL {
            dir.hasPrefix("/") ? URL(fileURLWithPath: dir, isDirectory: true)
                               : sweepDirectory.appendingPathComponent(dir, isDirectory: true)
        }

        // Overrides are optional on read: a hand-written manifest may leave them out.
        enum CodingKeys: String, CodingKey { case id, dir, method, lr, decay, seed, overrides }

        /// Decodes a run; `overrides` may be missing (empty).
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            id = try c.decode(String.self, forKey: .id)
            dir = try c.decode(String.self, forKey: .dir)
            method = try c.decode(String.self, forKey: .method)
            lr = try c.decode(Double.self, forKey: .lr)
            decay = try c.decode(Double.self, forKey: .decay)
            seed = try c.decode(Int.self, forKey: .seed)
            overrides = try c.decodeIfPresent([String: Value].self, forKey: .overrides) ?? [:]
        }
    }

    /// One override value. JSON has one number type and TOML two, so integers are kept apart
    /// from floats; a whole-number float written as `1.0` reads back as the integer 1, which
    /// the config loader accepts wherever it accepts a float.
    public enum Value: Codable, Equatable, Sendable, CustomStringConvertible {
        /// A JSON integer.
        case integer(Int)
        /// A JSON number with a fraction or exponent.
        case number(Double)
        /// A JSON string.
        case string(String)
        /// A JSON boolean.
        case bool(Bool)

        /// Decodes whichever of the four JSON scalars is there.
        public init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let b = try? c.decode(Bool.self) { self = .bool(b) }
            else if let i = try? c.decode(Int.self) { self = .integer(i) }
            else if let d = try? c.decode(Double.self) { self = .number(d) }
            else if let s = try? c.decode(String.self) { self = .string(s) }
            else {
                throw DecodingError.typeMismatch(Value.self, .init(codingPath: c.codingPath,
                    debugDescription: "expected a number, string or boolean"))
            }
        }

        /// Encodes the scalar as itself.
        public func encode(to encoder: Encoder) throws {
            var c = encoder.singleValueContainer()
            switch self {
            case .integer(let i): try c.encode(i)
            case .number(let d): try c.encode(d)
            case .string(let s): try c.encode(s)
            case .bool(let b): try c.encode(b)
            }
        }

        /// The value as a TOML literal, ready for `--set key=<literal>`.
        public var description: String {
            switch self {
            case .integer(let i): return String(i)
            case .number(let d): return "\(d)"
            case .bool(let b): return b ? "true" : "false"
            case .string(let s):
                let escaped = s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
                return "\"\(escaped)\""
            }
        }
    }

    /// Reads and validates a manifest. `url` is the manifest file or the sweep directory that
    /// holds `manifest.json`. Errors name the file and the key: `study/manifest.json: runs[3].lr:
    /// expected a number, found a string`.
    public static func load(from url: URL) throws -> SweepManifest {
        var isDirectory: ObjCBool = false
        let file = FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) && isDirectory.boolValue
            ? url.appendingPathComponent(fileName) : url
        let manifest = try SweepJSON.decode(SweepManifest.self, file: file, what: "sweep manifest")
        try manifest.validate(file: file.path)
        return manifest
    }

    /// Checks what JSON types cannot: the format version, unique non-empty ids, usable axis
    /// values. `file` names the manifest in the error.
    public func validate(file: String = SweepManifest.fileName) throws {
        guard formatVersion == Self.currentFormatVersion else {
            throw SweepFileError(file: file, key: "format_version",
                                 message: "format version \(formatVersion) is not supported (this build reads version \(Self.currentFormatVersion))")
        }
        var seen: [String: Int] = [:]
        for (i, run) in runs.enumerated() {
            func fail(_ key: String, _ message: String) -> SweepFileError {
                SweepFileError(file: file, key: "runs[\(i)].\(key)", message: message)
            }
            if run.id.isEmpty { throw fail("id", "must not be empty") }
            if let j = seen[run.id] { throw fail("id", "'\(run.id)' is also the id of runs[\(j)]") }
            seen[run.id] = i
            if run.dir.isEmpty { throw fail("dir", "must not be empty") }
            if run.method.isEmpty { throw fail("method", "must not be empty") }
            // The axes are drawn log-spaced, so lr must be positive; λ = 0 is the no-decay baseline.
            if !(run.lr.isFinite && run.lr > 0) { throw fail("lr", "must be a positive number, got \(run.lr)") }
            if !(run.decay.isFinite && run.decay >= 0) { throw fail("decay", "must be a number ≥ 0, got \(run.decay)") }
        }
    }

    /// Writes the manifest as pretty-printed JSON with sorted keys (stable diffs), atomically so
    /// a reader never sees half a file.
    public func write(to url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var data = try encoder.encode(self)
        data.append(0x0A)
        try FS.writeAtomically(data, to: url.path)
    }
}

// MARK: - summary.json and metrics.jsonl

/// One record of `metrics.jsonl` (docs/run-directory.md), the keys a report needs. Every key
/// may be `null` or absent: train-only records have no test metrics, and runs without a
/// coupled regularizer may leave out the penalty. Non-finite numbers may be written as the
/// strings "NaN", "Infinity", "-Infinity" (plain JSON has no NaN; a diverged run has them).
public struct SweepMetricsRecord: Codable, Equatable, Sendable {
    /// Optimizer updates done.
    public var step: Int?
    /// Epochs done, fractional.
    public var epoch: Double?
    /// Learning rate of the first group at the last update.
    public var lr: Double?
    /// Schedule multiplier η_t at the last update.
    public var eta: Double?
    /// Mean data loss (cross-entropy, without penalty) over the training batches since the previous record.
    public var dataLoss: Double?
    /// Sum of the coupled regularizers' loss terms.
    public var penalty: Double?
    /// `dataLoss + penalty`.
    public var totalLoss: Double?
    /// Training accuracy since the previous record, a fraction.
    public var trainAcc: Double?
    /// Validation loss and accuracy (runs with `data.validation` only).
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
    /// Wall time of the run so far, seconds.
    public var elapsedS: Double?

    /// Creates a record; every key defaults to absent.
    public init(step: Int? = nil, epoch: Double? = nil, lr: Double? = nil, eta: Double? = nil,
                dataLoss: Double? = nil, penalty: Double? = nil, totalLoss: Double? = nil,
                trainAcc: Double? = nil, valLoss: Double? = nil, valAcc: Double? = nil,
                testLoss: Double? = nil, testAcc: Double? = nil, weightNorm: Double? = nil, zeroFraction: Double? = nil, stepMs: Double? = nil, elapsedS: Double? = nil) {
        self.step = step; self.epoch = epoch; self.lr = lr; self.eta = eta
        self.dataLoss = dataLoss; self.penalty = penalty; self.totalLoss = totalLoss
        self.trainAcc = trainAcc; self.valLoss = valLoss; self.valAcc = valAcc; self.testLoss = testLoss; self.testAcc = testAcc
        self.weightNorm = weightNorm; self.zeroFraction = zeroFraction; self.stepMs = stepMs; self.elapsedS = elapsedS
    }

    enum CodingKeys: String, CodingKey {
        case step, epoch, lr, eta, penalty
        case dataLoss = "data_loss", totalLoss = "total_loss", trainAcc = "train_acc"
        case valLoss = "val_loss", valAcc = "val_acc"
        case testLoss = "test_loss", testAcc = "test_acc", weightNorm = "weight_norm"
        case zeroFraction = "zero_fraction", stepMs = "step_ms", elapsedS = "elapsed_s"
    }

    /// The test error `1 − test_acc` (a fraction), when the record has a test accuracy.
    public var testError: Double? { testAcc.map { 1 - $0 } }
    /// The validation error `1 − val_acc`, when the run holds out a validation split.
    public var valError: Double? { valAcc.map { 1 - $0 } }

    /// Reads a `metrics.jsonl` file. A last line without its newline that does not parse is
    /// a record being appended right now and is left out; any other bad line is an error
    /// naming `file:line` and the key.
    public static func loadJSONL(from url: URL) throws -> [SweepMetricsRecord] {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw SweepFileError(file: url.path, message: "cannot read metrics: \(SweepJSON.reason(error))")
        }
        let lines = data.split(separator: 0x0A, omittingEmptySubsequences: false)
        var records: [SweepMetricsRecord] = []
        for (i, line) in lines.enumerated() {
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            do {
                records.append(try SweepJSON.decode(SweepMetricsRecord.self, data: Data(line), file: url.path, line: i + 1))
            } catch where i == lines.count - 1 {
                continue  // no newline after it: still being written
            }
        }
        return records
    }
}

/// `summary.json` of a run (docs/run-directory.md), the keys a report needs.
public struct SweepRunSummary: Codable, Equatable, Sendable {
    /// The run's name from its config.
    public var name: String?
    /// completed, preempted, diverged or failed (never `pending`: that is the absence of this file).
    public var status: SweepRunStatus
    /// Why a run was preempted, diverged or failed.
    public var reason: String?
    /// Optimizer updates done.
    public var step: Int?
    /// Epochs done.
    public var epoch: Double?
    /// Optimizer updates the config asks for.
    public var stepsTotal: Int?
    /// The last eval record.
    public var final: SweepMetricsRecord?
    /// The eval record with the highest validation accuracy (without a validation split: the
    /// highest test accuracy; lowest loss without accuracy).
    public var best: SweepMetricsRecord?
    /// Wall time of the run, summed over resumes, seconds.
    public var wallS: Double?
    /// Training throughput.
    public var trainSamplesPerS: Double?
    /// The kernel path the run used (scalar, avx2, avx512, neon).
    public var kernel: String?
    /// Worker threads.
    public var threads: Int?
    /// FNV-1a 64-bit hash of the run's config.toml (`config_hash`), 16 hex digits.
    public var configHash: String?

    /// Creates a summary.
    public init(name: String? = nil, status: SweepRunStatus, reason: String? = nil, step: Int? = nil,
                epoch: Double? = nil, stepsTotal: Int? = nil, final: SweepMetricsRecord? = nil,
                best: SweepMetricsRecord? = nil, wallS: Double? = nil, trainSamplesPerS: Double? = nil,
                kernel: String? = nil, threads: Int? = nil, configHash: String? = nil) {
        self.name = name; self.status = status; self.reason = reason; self.step = step; self.epoch = epoch
        self.stepsTotal = stepsTotal; self.final = final; self.best = best; self.wallS = wallS
        self.trainSamplesPerS = trainSamplesPerS; self.kernel = kernel; self.threads = threads
        self.configHash = configHash
    }

    enum CodingKeys: String, CodingKey {
        case name, status, reason, step, epoch, final, best, kernel, threads
        case stepsTotal = "steps_total", wallS = "wall_s", trainSamplesPerS = "train_samples_per_s"
        case configHash = "config_hash"
    }

    /// Decodes a summary; a `status` outside the four written ones is an error listing them.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let text = try c.decode(String.self, forKey: .status)
        guard let s = SweepRunStatus(rawValue: text), s != .pending else {
            throw DecodingError.dataCorruptedError(forKey: .status, in: c,
                debugDescription: "'\(text)' is not one of completed, preempted, diverged, failed")
        }
        status = s
        name = try c.decodeIfPresent(String.self, forKey: .name)
        reason = try c.decodeIfPresent(String.self, forKey: .reason)
        step = try c.decodeIfPresent(Int.self, forKey: .step)
        epoch = try c.decodeIfPresent(Double.self, forKey: .epoch)
        stepsTotal = try c.decodeIfPresent(Int.self, forKey: .stepsTotal)
        final = try c.decodeIfPresent(SweepMetricsRecord.self, forKey: .final)
        best = try c.decodeIfPresent(SweepMetricsRecord.self, forKey: .best)
        wallS = try c.decodeIfPresent(Double.self, forKey: .wallS)
        trainSamplesPerS = try c.decodeIfPresent(Double.self, forKey: .trainSamplesPerS)
        kernel = try c.decodeIfPresent(String.self, forKey: .kernel)
        threads = try c.decodeIfPresent(Int.self, forKey: .threads)
        configHash = try c.decodeIfPresent(String.self, forKey: .configHash)
    }

    /// Reads a run's `summary.json`; errors name the file and the key.
    public static func load(from url: URL) throws -> SweepRunSummary {
        try SweepJSON.decode(SweepRunSummary.self, file: url, what: "run summary")
    }
}

// MARK: - JSON with errors that name the file and key

/// JSON decoding whose errors are `SweepFileError`s with a readable key path and, for syntax
/// errors, the line and column (Foundation only reports a character offset).
enum SweepJSON {
    static func decoder() -> JSONDecoder {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return d
    }

    /// Reads and decodes a whole file; `what` says what the file should be in the "missing" error.
    static func decode<T: Decodable>(_ type: T.Type, file: URL, what: String) throws -> T {
        guard FileManager.default.fileExists(atPath: file.path) else {
            throw SweepFileError(file: file.path, message: "no such file (expected the \(what))")
        }
        let data: Data
        do { data = try Data(contentsOf: file) } catch {
            throw SweepFileError(file: file.path, message: "cannot read the \(what): \(reason(error))")
        }
        return try decode(type, data: data, file: file.path, line: nil)
    }

    /// Decodes `data`; `line` is the line number of a JSON Lines record, for the error.
    static func decode<T: Decodable>(_ type: T.Type, data: Data, file: String, line: Int?) throws -> T {
        let where_ = line.map { "\(file):\($0)" } ?? file
        do {
            return try decoder().decode(type, from: data)
        } catch let error as DecodingError {
            switch error {
            case .dataCorrupted(let c) where c.codingPath.isEmpty:
                throw syntaxError(data: data, file: file, line: line, fallback: c.debugDescription)
            case .dataCorrupted(let c):
                throw SweepFileError(file: where_, key: keyPath(c.codingPath), message: c.debugDescription)
            case .keyNotFound(let key, let c):
                throw SweepFileError(file: where_, key: keyPath(c.codingPath + [key]), message: "missing")
            case .valueNotFound(let t, let c):
                throw SweepFileError(file: where_, key: keyPath(c.codingPath), message: "is null, expected \(typeName(t))")
            case .typeMismatch(let t, let c):
                throw SweepFileError(file: where_, key: keyPath(c.codingPath),
                                     message: "expected \(typeName(t)), found \(foundDescription(data: data, path: c.codingPath))")
            @unknown default:
                throw SweepFileError(file: where_, message: "\(error)")
            }
        }
    }

    /// `runs[3].lr` from a coding path.
    static func keyPath(_ path: [CodingKey]) -> String {
        var s = ""
        for k in path {
            if let i = k.intValue, k.stringValue.hasPrefix("Index") || k.stringValue == String(i) { s += "[\(i)]" }
            else { s += (s.isEmpty ? "" : ".") + k.stringValue }
        }
        return s
    }

    static func typeName(_ t: Any.Type) -> String {
        switch t {
        case is Double.Type, is Float.Type: return "a number"
        case is Int.Type: return "an integer"
        case is String.Type: return "a string"
        case is Bool.Type: return "a boolean"
        case is [Any].Type: return "an array"
        default:
            let n = "\(t)"
            if n.hasPrefix("Array") { return "an array" }
            if n.hasPrefix("Dictionary") || n.hasPrefix("Sweep") { return "an object" }
            return n
        }
    }

    /// What the JSON has at `path`, for "expected a number, found a string".
    static func foundDescription(data: Data, path: [CodingKey]) -> String {
        guard var node = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) else { return "another type" }
        for k in path {
            if let i = k.intValue, let a = node as? [Any], i < a.count { node = a[i] }
            else if let d = node as? [String: Any], let v = d[k.stringValue] { node = v }
            else { return "another type" }
        }
        switch node {
        case let s as String: return "the string \"\(s.prefix(40))\""
        case is [Any]: return "an array"
        case is [String: Any]: return "an object"
        case is NSNull: return "null"
        case let n as NSNumber:
            // JSONSerialization gives booleans as NSNumber too, with the C type `char` ("c").
            return String(cString: n.objCType) == "c" ? "the boolean \(n.boolValue)" : "the number \(n)"
        default: return "another type"
        }
    }

    /// A syntax error with line and column; Foundation's message gives a character offset.
    /// `fallback` is the decoder's own words, used when the text parses after all (the
    /// decoder refused something else at the top level).
    static func syntaxError(data: Data, file: String, line: Int?, fallback: String) -> SweepFileError {
        var detail = "not valid JSON"
        var position = line.map { ":\($0)" } ?? ""
        do {
            _ = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
            detail = fallback
        } catch {
            let info = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? ""
            if !info.isEmpty { detail += " (\(info.trimmingCharacters(in: CharacterSet(charactersIn: "."))))" }
            if let r = info.range(of: #"character (\d+)"#, options: .regularExpression),
               let offset = Int(info[r].dropFirst("character ".count)) {
                let prefix = data.prefix(offset)
                let row = prefix.filter { $0 == 0x0A }.count
                let column = offset - (prefix.lastIndex(of: 0x0A).map { $0 + 1 } ?? 0) + 1
                position = line.map { ":\($0):\(column)" } ?? ":\(row + 1):\(column)"
            }
        }
        if data.isEmpty { detail = "empty file, expected a JSON object" }
        return SweepFileError(file: file + position, message: detail)
    }

    /// The interesting part of a Foundation file error.
    static func reason(_ error: Error) -> String {
        let ns = error as NSError
        if let u = ns.userInfo[NSUnderlyingErrorKey] as? NSError, u.domain == NSPOSIXErrorDomain,
           let code = POSIXErrorCode(rawValue: Int32(u.code)) {
            return String(cString: strerror(code.rawValue))
        }
        return ns.localizedDescription
    }
}
