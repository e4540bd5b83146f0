import DecoupledTensorBoard
import Foundation
import Testing

/// A directory under the temporary directory, removed at deinit.
final class ScratchDirectory {
    let path: String
    init() {
        path = (NSTemporaryDirectory() as NSString).appendingPathComponent("tensorboard-test-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

let fixtureDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("Fixtures/tensorboard-writer").path

@Suite struct EventFileTests {
    /// What scripts/tensorboard/write_reference_events.py wrote with TensorBoard's writer.
    struct Expected: Decodable {
        struct Event: Decodable {
            let step: Int64
            let wall_time: Double
            let scalars: [String: String]
            let other_tags: [String]
        }
        let file: String
        let file_version: String
        let events: [Event]
    }

    func expected() throws -> Expected {
        let data = try Data(contentsOf: URL(fileURLWithPath: fixtureDirectory).appendingPathComponent("expected.json"))
        return try JSONDecoder().decode(Expected.self, from: data)
    }

    /// The event file TensorBoard's own writer wrote reads back with the values it was given.
    @Test func readsTensorBoardsOwnFile() throws {
        let e = try expected()
        let files = try EventFileReader.eventFiles(in: fixtureDirectory)
        #expect(files.map { ($0 as NSString).lastPathComponent } == [e.file])
        let contents = try EventFileReader.read(files[0])
        #expect(contents.tornAt == nil)
        #expect(contents.events.first?.event.fileVersion == e.file_version)
        let events = contents.events.dropFirst().map(\.event)
        #expect(events.count == e.events.count)
        for (got, want) in zip(events, e.events) {
            #expect(got.step == want.step)
            #expect(got.wallTime == want.wall_time)
            #expect(got.otherValueTags == want.other_tags)
            let values = Dictionary(uniqueKeysWithValues: got.scalars.map { ($0.tag, $0.value) })
            #expect(values.count == want.scalars.count)
            for (tag, text) in want.scalars {
                let value = try #require(Double(text))
                #expect(values[tag]?.bitPattern == Float(value).bitPattern, "step \(want.step) \(tag)")
            }
        }
    }

    /// Our writer's scalar records are byte for byte the ones TensorBoard's writer wrote for
    /// the same events: the same protobuf encoding and the same framing. (Its version record
    /// also names the writer in `source_metadata`, which ours leaves out.)
    @Test func writesTheSameBytesAsTensorBoard() throws {
        let e = try expected()
        let file = (fixtureDirectory as NSString).appendingPathComponent(e.file)
        let reference = try Data(contentsOf: URL(fileURLWithPath: file))
        let contents = try EventFileReader.read(file)
        let scratch = ScratchDirectory()
        var ours: [TensorBoardEvent] = [contents.events[0].event]
        for want in e.events where want.other_tags.isEmpty {
            // In the order the script wrote them (Python dicts keep insertion order; JSON keeps it too).
            let located = try #require(contents.events.first { $0.event.fileVersion == nil && $0.event.step == want.step })
            ours.append(TensorBoardEvent(wallTime: want.wall_time, step: want.step, scalars: located.event.scalars))
        }
        let path = (scratch.path as NSString).appendingPathComponent("events.out.tfevents.1.test")
        try EventFileWriter.rewrite(path, with: ours)
        let written = try Data(contentsOf: URL(fileURLWithPath: path))
        // The reference without the record holding the tensor value (which we do not write).
        let skipped = try #require(contents.events.firstIndex { !$0.event.otherValueTags.isEmpty })
        let start = contents.events[skipped].offset, end = contents.events[skipped + 1].offset
        var expectedBytes = reference
        expectedBytes.removeSubrange(start..<end)
        let ourFirst = try EventFileReader.read(path).events[1].offset
        #expect(written.dropFirst(ourFirst) == expectedBytes.dropFirst(contents.events[1].offset))
        #expect(written.count - ourFirst == expectedBytes.count - contents.events[1].offset)
    }

    func writeSample(_ directory: String) throws -> String {
        let writer = try EventFileWriter(directory: directory, now: Date(timeIntervalSince1970: 1_700_000_000))
        for step in [0, 7, 14] as [Int64] {
            try writer.write(TensorBoardEvent(wallTime: 1_700_000_000 + Double(step), step: step, scalars: [
                TensorBoardScalar(tag: "loss/test", value: 1 / Float(step + 1)),
                TensorBoardScalar(tag: "accuracy/test", value: .nan),
            ]))
        }
        writer.close()
        return writer.path
    }

    @Test func roundTripAndNaming() throws {
        let scratch = ScratchDirectory()
        let first = try writeSample(scratch.path)
        let second = try writeSample(scratch.path)  // the same second: a file of its own, sorting after
        #expect(first != second)
        #expect(try EventFileReader.eventFiles(in: scratch.path) == [first, second])
        #expect((first as NSString).lastPathComponent.hasPrefix("events.out.tfevents.1700000000."))
        let events = try EventFileReader.read(first).events.map(\.event)
        #expect(events.count == 4)
        #expect(events[0].fileVersion == "brain.Event:2")
        #expect(events[2].step == 7 && events[2].scalars[0] == TensorBoardScalar(tag: "loss/test", value: 0.125))
        #expect(events[2].scalars[1].value.isNaN)
        #expect(try EventFileReader.scalars(inDirectory: scratch.path).count == 12)
    }

    /// Every single-byte change anywhere in a file is an error naming the file and the offset
    /// of the record holding the byte.
    @Test func everyCorruptedByteIsDetected() throws {
        let scratch = ScratchDirectory()
        let path = try writeSample(scratch.path)
        let good = try Data(contentsOf: URL(fileURLWithPath: path))
        let offsets = try EventFileReader.read(path).events.map(\.offset)
        for i in 0..<good.count {
            var bad = good
            bad[i] ^= 0x40
            try bad.write(to: URL(fileURLWithPath: path))
            let recordStart = offsets.last { $0 <= i }!
            #expect(throws: EventFileError.self) { try EventFileReader.read(path) }
            do { _ = try EventFileReader.read(path) } catch let e as EventFileError {
                #expect(e.file == path && e.offset == recordStart, "byte \(i): \(e)")
                #expect(e.description.contains("byte offset \(recordStart)"))
            }
        }
    }

    /// A file cut anywhere but at a record boundary: strictly an error naming the cut record;
    /// allowing a torn end, the records before it.
    @Test func truncation() throws {
        let scratch = ScratchDirectory()
        let path = try writeSample(scratch.path)
        let good = try Data(contentsOf: URL(fileURLWithPath: path))
        let offsets = try EventFileReader.read(path).events.map(\.offset)
        for length in 1..<good.count {
            try good.prefix(length).write(to: URL(fileURLWithPath: path))
            let whole = offsets.filter { $0 < length }
            let recordStart = whole.last!
            if offsets.contains(length) {
                #expect(try EventFileReader.read(path).events.count == whole.count)
                continue
            }
            do {
                _ = try EventFileReader.read(path)
                Issue.record("cut at \(length): no error")
            } catch let e as EventFileError {
                #expect(e.offset == recordStart && e.message.contains("ends inside"), "cut at \(length): \(e)")
            }
            let tolerant = try EventFileReader.read(path, allowingTornEnd: true)
            #expect(tolerant.tornAt == recordStart)
            #expect(tolerant.events.count == whole.count - 1)
        }
    }

    @Test func notAnEventFile() throws {
        let scratch = ScratchDirectory()
        let path = (scratch.path as NSString).appendingPathComponent("events.out.tfevents.0.x")
        try Data("hello, this is not a record file at all".utf8).write(to: URL(fileURLWithPath: path))
        do {
            _ = try EventFileReader.read(path)
            Issue.record("no error")
        } catch let e as EventFileError {
            #expect(e.file == path && e.offset == 0 && e.message.hasPrefix("length checksum mismatch"), "\(e)")
        }
        #expect(throws: EventFileError(file: scratch.path + "/missing", offset: nil, message: "no such file")) {
            try EventFileReader.read(scratch.path + "/missing")
        }
        // A name that leads to a device (a planted link) is refused, not read forever.
        let device = (scratch.path as NSString).appendingPathComponent("events.out.tfevents.1.zero")
        try FileManager.default.createSymbolicLink(atPath: device, withDestinationPath: "/dev/zero")
        #expect(throws: EventFileError(file: device, offset: nil, message: "not a regular file")) { try EventFileReader.read(device) }
    }
}
