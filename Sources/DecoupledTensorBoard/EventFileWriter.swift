import DecoupledSystem
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes one TensorBoard event file: created with its file-version record, then one record
/// per `write`, each appended with a single write(2) straight to the file (no buffer to lose
/// on a kill; at most the record being written is torn).
public final class EventFileWriter {
    static let namePrefix = "events.out.tfevents."
    public let path: String
    private let file: FS.AppendFile

    /// Creates a new event file in `directory` (created if missing), named as TensorBoard's
    /// writers name theirs: `events.out.tfevents.<10-digit Unix seconds>.<host>.<pid>.<n>`,
    /// n the first number not in use (a run resumed within the same second gets a file of its
    /// own, which sorts after the earlier one).
    public init(directory: String, now: Date = Date()) throws {
        try FS.createDirectory(directory)
        let seconds = String(format: "%010lld", Int64(now.timeIntervalSince1970))
        let stem = "\(Self.namePrefix)\(seconds).\(Self.hostName()).\(getpid())."
        var n = 0
        var candidate: String { (directory as NSString).appendingPathComponent(stem + String(n)) }
        while FileManager.default.fileExists(atPath: candidate) || FS.isSymbolicLink(candidate) { n += 1 }
        path = candidate
        let first = TensorBoardEvent(wallTime: now.timeIntervalSince1970, step: 0, fileVersion: TensorBoardEvent.fileVersion)
        try FS.writeAtomically(RecordFraming.frame(try first.serialized()), to: path)
        file = try FS.AppendFile(path)
    }

    /// Appends `event` as one record.
    public func write(_ event: TensorBoardEvent) throws {
        try file.write(RecordFraming.frame(try event.serialized()))
    }

    public func close() { file.close() }

    /// Replaces the file at `path` with `events`, atomically (a kill leaves the old file or
    /// the new one).
    public static func rewrite(_ path: String, with events: [TensorBoardEvent]) throws {
        var bytes = Data()
        for e in events { bytes.append(RecordFraming.frame(try e.serialized())) }
        try FS.writeAtomically(bytes, to: path)
    }

    /// gethostname(2), made safe for a file name (TensorBoard shows it in no chart; it tells
    /// apart files that runs on different machines wrote into one shared directory).
    static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        let name = String(cString: buffer)
        let safe = String(name.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") ? $0 : "_" })
        return safe.isEmpty ? "localhost" : safe
    }
}
