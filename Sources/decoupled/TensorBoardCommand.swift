import ArgumentParser
import DecoupledTensorBoard
import Foundation

/// `decoupled tensorboard …`: the run's TensorBoard event files (`train.tensorboard`).
struct TensorBoardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tensorboard",
        abstract: "Check and print the TensorBoard event files a run wrote.",
        subcommands: [Dump.self])

    struct Dump: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Verify every record of a run's event files and print their scalars.",
            discussion: """
            Reads RUN_DIR/tensorboard/events.out.tfevents.* (or the event files of a directory, or one file) in the order TensorBoard reads them, verifies both CRC-32C checksums of every record and decodes each Event. Prints each file's name and record count, then one line per scalar: step, tag and value. A damaged or truncated record is an error naming the file and the record's byte offset (exit status 1).

            Examples:
              decoupled tensorboard dump runs/fashion-mlp-adamw-20261121-101500
              decoupled tensorboard dump sweeps/study/runs/3f9a1c2b7d10 --summary
            """)

        @Argument(help: "A run directory, a directory of event files, or one event file.")
        var path: String

        @Flag(help: "Print only each file's record and scalar counts, steps and tags.")
        var summary = false

        func run() throws {
            do {
                let files = try eventFiles(path)
                if files.isEmpty {
                    FileHandle.standardError.write(Data("\(path): no event files (events.out.tfevents.*); was the run trained with train.tensorboard = true?\n".utf8))
                    throw ExitCode.failure
                }
                for file in files {
                    let contents = try EventFileReader.read(file)
                    let scalarEvents = contents.events.filter { $0.event.fileVersion == nil }
                    let version = contents.events.first?.event.fileVersion ?? "?"
                    if summary {
                        let steps = scalarEvents.map(\.event.step)
                        let tags = Set(scalarEvents.flatMap { $0.event.scalars.map(\.tag) }).sorted()
                        let range = steps.isEmpty ? "no steps" : "steps \(steps.min()!)...\(steps.max()!)"
                        print("\(file): \(contents.events.count) records (\(version)), \(scalarEvents.count) with scalars, \(range); tags: \(tags.joined(separator: " "))")
                        continue
                    }
                    print("\(file): \(contents.events.count) records, file_version \(version)")
                    for e in scalarEvents {
                        for s in e.event.scalars { print("  step \(e.event.step)  \(s.tag) = \(s.value)") }
                        for t in e.event.otherValueTags { print("  step \(e.event.step)  \(t): not a simple_value scalar") }
                    }
                }
            } catch let e as EventFileError {
                FileHandle.standardError.write(Data("error: \(e)\n".utf8))
                throw ExitCode.failure
            }
        }

        /// The files `path` names: itself, or the event files of RUN_DIR/tensorboard, or of
        /// the directory.
        func eventFiles(_ path: String) throws -> [String] {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw EventFileError(file: path, offset: nil, message: "no such file or directory")
            }
            guard isDirectory.boolValue else { return [path] }
            let inner = (path as NSString).appendingPathComponent("tensorboard")
            var innerIsDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: inner, isDirectory: &innerIsDirectory), innerIsDirectory.boolValue {
                return try EventFileReader.eventFiles(in: inner)
            }
            return try EventFileReader.eventFiles(in: path)
        }
    }
}
