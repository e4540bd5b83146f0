import Foundation

/// One thing wrong with a checkpoint file: the HDF5 object concerned ("/params/fc1.weight";
/// "/" for the file as a whole) and what was expected or found.
public struct CheckpointProblem: Equatable, Sendable, CustomStringConvertible {
    /// Absolute HDF5 path of the object concerned; "/" for the file as a whole.
    public var object: String
    /// What was expected and what was found.
    public var reason: String

    /// A problem with `object`.
    public init(object: String, reason: String) {
        self.object = object
        self.reason = reason
    }

    public var description: String { "'\(object)': \(reason)" }
}

/// A checkpoint that `newestValid()` passed over, and why.
public struct SkippedCheckpoint: Equatable, Sendable {
    /// The checkpoint file passed over.
    public var path: String
    /// The problems, without the file name (the caller prints `path` beside it).
    public var reason: String

    /// A skipped file and why.
    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
}

/// Everything the checkpoint store reports — and what `FS` throws (`io`, `diskFull`), which is
/// why it lives in this lowest module: every file error in the tool has this one form, naming
/// the path. Modules above see it through DecoupledCheckpoint's re-export.
///
/// Everything the checkpoint store reports. Each case names the file, and where it applies
/// the object inside it, plus what was expected.
public enum CheckpointError: Error, Equatable, CustomStringConvertible {
    /// The file failed verification: unreadable, truncated, a checksum mismatch, a missing
    /// or malformed object. Lists every problem found.
    case corrupt(file: String, problems: [CheckpointProblem])
    /// The file is sound but does not fit the arena and slots it was to be loaded into.
    /// Lists every mismatch; nothing was copied.
    case mismatch(file: String, mismatches: [String])
    /// A save ran out of space ("no space left on device") or hit the file size limit ("file
    /// too large"). No partial file is left behind; earlier checkpoints are untouched.
    case diskFull(file: String, object: String, reason: String)
    /// A system call on `path` failed.
    case io(path: String, operation: String, reason: String)
    /// Checkpoint files exist but none of them is valid.
    case noValidCheckpoint(directory: String, skipped: [SkippedCheckpoint])
    /// The caller passed something unusable (a slot the arena lacks, a negative step, …).
    case invalidArgument(String)

    /// The problems of a `corrupt` error joined into one line, without the file name.
    public var reason: String {
        switch self {
        case .corrupt(_, let problems):
            return problems.map(\.description).joined(separator: "; ")
        case .mismatch(_, let mismatches):
            return mismatches.joined(separator: "; ")
        case .diskFull(_, let object, let reason):
            return object.isEmpty ? reason : "\(reason) (writing '\(object)')"
        case .io(let path, let operation, let reason):
            return "cannot \(operation) '\(path)': \(reason)"
        case .noValidCheckpoint(let directory, let skipped):
            return "no valid checkpoint in '\(directory)' (\(skipped.count) corrupt)"
        case .invalidArgument(let message):
            return message
        }
    }

    public var description: String {
        switch self {
        case .corrupt(let file, let problems):
            if problems.count == 1 { return "checkpoint '\(file)' is corrupt: \(problems[0])" }
            return "checkpoint '\(file)' is corrupt (\(problems.count) problems):\n"
                + problems.map { "  - \($0)" }.joined(separator: "\n")
        case .mismatch(let file, let mismatches):
            return "cannot load checkpoint '\(file)': it does not match the model (\(mismatches.count) "
                + (mismatches.count == 1 ? "mismatch" : "mismatches") + "; nothing was loaded):\n"
                + mismatches.map { "  - \($0)" }.joined(separator: "\n")
        case .diskFull(let file, let object, let reason):
            let what = object.isEmpty ? "" : " while writing '\(object)'"
            return "cannot save checkpoint '\(file)': \(reason)\(what); no partial file is left behind "
                + "and earlier checkpoints are untouched"
        case .io(let path, let operation, let reason):
            return "cannot \(operation) '\(path)': \(reason)"
        case .noValidCheckpoint(let directory, let skipped):
            return "no valid checkpoint in '\(directory)'; every one is corrupt:\n"
                + skipped.map { "  - \($0.path): \($0.reason)" }.joined(separator: "\n")
        case .invalidArgument(let message):
            return message
        }
    }
}
