import DecoupledCheckpoint
import DecoupledTraining
import Foundation

// The files of a sweep directory, as plain Codable models:
//
//   SWEEP_DIR/manifest.json           SweepManifest  (written by the sweep runner)
//   SWEEP_DIR/<run dir>/summary.json  RunSummary     (DecoupledTraining's RunFormat.swift,
//   SWEEP_DIR/<run dir>/metrics.jsonl MetricRecord    the same types the trainer writes with)
//
// Every loader reports a problem as a `FileFormatError` that names the file and the key
// (`runs[3].lr`, `final.test_acc`), because a sweep is hundreds of files written by other
// processes and "the data couldn't be read" does not say which one to look at.

/// The sweep's view of a run's status is `RunStatus?`: what the run's summary.json says, or
/// nil, shown as "pending", while it has none (queued or still training). A separate enum with
/// a `pending` case would repeat RunStatus's cases, and the two lists could drift apart.
extension Optional where Wrapped == RunStatus {
    /// Every status a sweep's run can be in, as tables list them: results first, then
    /// problems, then what is to come.
    public static var sweepOrder: [RunStatus?] { RunStatus.allCases.map { $0 } + [nil] }
    /// The word tables and logs use: the status, or "pending" without a summary.
    public var label: String { self?.rawValue ?? "pending" }
    /// Finished with a usable result: only completed runs enter means, heatmaps and "best".
    public var isDone: Bool { self == .completed }
    /// Finished without a usable result.
    public var isFailure: Bool { self?.isFailure ?? false }
    /// Not finished yet (a preempted run will be resumed by the runner).
    public var isUnfinished: Bool { self == nil || self == .preempted }
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
        let manifest = try JSONFile.decode(SweepManifest.self, file: file, what: "sweep manifest")
        try manifest.validate(file: file.path)
        return manifest
    }

    /// Checks what JSON types cannot: the format version, unique non-empty ids, usable axis
    /// values. `file` names the manifest in the error.
    public func validate(file: String = SweepManifest.fileName) throws {
        guard formatVersion == Self.currentFormatVersion else {
            throw FileFormatError(file: file, key: "format_version",
                                 message: "format version \(formatVersion) is not supported (this build reads version \(Self.currentFormatVersion))")
        }
        var seen: [String: Int] = [:]
        for (i, run) in runs.enumerated() {
            func fail(_ key: String, _ message: String) -> FileFormatError {
                FileFormatError(file: file, key: "runs[\(i)].\(key)", message: message)
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
