import DecoupledSystem
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads TensorBoard event files: every record's two checksums verified, every record decoded
/// as an `Event`. Errors name the file and the byte offset of the bad record.
public enum EventFileReader {
    /// An event with where its record starts in its file.
    public struct Located: Equatable, Sendable {
        public let offset: Int
        public let event: TensorBoardEvent
    }

    /// The contents of one file.
    public struct Contents: Sendable {
        public let file: String
        public let events: [Located]
        /// Where a record cut off by the end of the file starts (only with `allowingTornEnd`).
        public let tornAt: Int?
    }

    /// Whether `name` is an event file's name: TensorBoard reads every file whose name
    /// contains "tfevents"; Decoupled's writers all start with this prefix.
    public static func isEventFileName(_ name: String) -> Bool { name.hasPrefix(EventFileWriter.namePrefix) }

    /// The event files of `directory` (not its subdirectories), in name order: the order
    /// TensorBoard reads them in, which for files of one host and process is the order
    /// they were created in.
    public static func eventFiles(in directory: String) throws -> [String] {
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: directory) } catch {
            throw EventFileError(file: directory, offset: nil, message: "cannot list the directory: \((error as NSError).localizedDescription)")
        }
        return names.filter(isEventFileName).sorted().map { (directory as NSString).appendingPathComponent($0) }
    }

    /// Reads `path`. Strict by default: a torn last record is an error. With
    /// `allowingTornEnd`, it is left out and its offset returned (what TensorBoard does with a
    /// file being written).
    public static func read(_ path: String, allowingTornEnd: Bool = false) throws -> Contents {
        // Only regular files (links followed): a name planted as a link to a device or a FIFO
        // would never end.
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw EventFileError(file: path, offset: nil, message: errno == ENOENT ? "no such file" : FS.errnoText(errno))
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw EventFileError(file: path, offset: nil, message: (st.st_mode & S_IFMT) == S_IFDIR ? "is a directory, not an event file" : "not a regular file")
        }
        let bytes: Data
        do { bytes = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw EventFileError(file: path, offset: nil, message: "cannot read the event file: \((error as NSError).localizedDescription)")
        }
        let (records, tornAt) = try RecordFraming.records(in: bytes, file: path, allowTornEnd: allowingTornEnd)
        var events: [Located] = []
        for r in records {
            let event: TensorBoardEvent
            do { event = try TensorBoardEvent(serialized: r.data) } catch {
                throw EventFileError(file: path, offset: r.offset, message: "the checksums match but the data is not an Event protocol buffer (\(error))")
            }
            events.append(Located(offset: r.offset, event: event))
        }
        if let first = events.first, first.event.fileVersion == nil {
            throw EventFileError(file: path, offset: first.offset, message: "the first event has no file_version: not an event file")
        }
        return Contents(file: path, events: events, tornAt: tornAt)
    }

    /// Every scalar in the event files of `directory`, in file and record order, as
    /// (step, tag, value).
    public static func scalars(inDirectory directory: String) throws -> [(step: Int64, tag: String, value: Float)] {
        var out: [(step: Int64, tag: String, value: Float)] = []
        for file in try eventFiles(in: directory) {
            for e in try read(file).events {
                for s in e.event.scalars { out.append((e.event.step, s.tag, s.value)) }
            }
        }
        return out
    }
}
