import DecoupledCore
import Foundation
import Testing
@testable import DecoupledCheckpoint

/// Which files survive a save, the best marker, and cleanup of crashed saves.
@Suite struct RetentionTests {
    func names(_ store: CheckpointStore) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: store.directory).sorted()
    }

    @Test func keepsTheLastNPlusTheBest() throws {
        let dir = TempDir()
        let store = try CheckpointStore(runDirectory: dir.path, keepLast: 2)
        let arena = try makeArena(seed: 20)
        try store.save(arena: arena, slots: adamSlots, meta: makeMeta(step: 10), isBest: true)
        for step in [20, 30, 40] { try store.save(arena: arena, slots: adamSlots, meta: makeMeta(step: step)) }
        #expect(try names(store) == ["best.txt", "ckpt-0000000010.h5", "ckpt-0000000030.h5", "ckpt-0000000040.h5"])
        #expect(try String(contentsOfFile: store.path("best.txt"), encoding: .utf8) == "ckpt-0000000010.h5\n")
        #expect(store.bestCheckpoint == store.path("ckpt-0000000010.h5"))
        #expect(store.list().map { "\($0.step)\($0.isBest ? "*" : "")" } == ["40", "30", "10*"])

        // A new best releases the old one to ordinary retention.
        try store.save(arena: arena, slots: adamSlots, meta: makeMeta(step: 50), isBest: true)
        #expect(try names(store) == ["best.txt", "ckpt-0000000040.h5", "ckpt-0000000050.h5"])
        #expect(store.bestCheckpoint == store.path("ckpt-0000000050.h5"))
        #expect(store.lastRetentionErrors.isEmpty)
    }

    /// Newer corrupt (or abandoned) files may fill the "last N"; the checkpoint just written is
    /// kept anyway, so a valid checkpoint always survives and is what a resume finds.
    @Test func neverDeletesTheOnlyValidCheckpoint() throws {
        let dir = TempDir()
        let store = try CheckpointStore(runDirectory: dir.path, keepLast: 1)
        let arena = try makeArena(seed: 21)
        try store.save(arena: arena, slots: adamSlots, meta: makeMeta(step: 100))
        try writeBytes([UInt8](repeating: 0, count: 4096), store.path("ckpt-0000000200.h5"))
        let saved = try store.save(arena: arena, slots: adamSlots, meta: makeMeta(step: 150))
        #expect(try names(store) == ["ckpt-0000000150.h5", "ckpt-0000000200.h5"])
        let found = try #require(try store.newestValid())
        #expect(found.path == saved)
        #expect(found.skipped.map(\.path) == [store.path("ckpt-0000000200.h5")])
        #expect(found.skipped[0].reason.contains("not an HDF5 file"))
        // keepLast 0 would delete the checkpoint just written: refused.
        #expect(throws: CheckpointError.self) { try CheckpointStore(runDirectory: dir.path, keepLast: 0) }
    }

    @Test func staleTemporaryFilesAreRemovedByAWriterOnly() throws {
        let dir = TempDir()
        do {
            let store = try CheckpointStore(runDirectory: dir.path)
            try store.save(arena: try makeArena(seed: 22), slots: adamSlots, meta: makeMeta(step: 1), isBest: true)
        }
        let checkpoints = dir.file("checkpoints")
        let stale = ["ckpt-0000000002.h5.tmp", "best.txt.tmp"]
        for name in stale + ["notes.tmp"] { try writeBytes([1, 2, 3], (checkpoints as NSString).appendingPathComponent(name)) }

        let reader = try CheckpointStore(runDirectory: dir.path, readOnly: true)
        #expect(reader.removedTemporaryFiles.isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: checkpoints).count == 5)
        #expect(throws: CheckpointError.self) {
            try reader.save(arena: try makeArena(seed: 22), slots: adamSlots, meta: makeMeta(step: 3))
        }

        let writer = try CheckpointStore(runDirectory: dir.path)
        #expect(Set(writer.removedTemporaryFiles) == Set(stale.map { (checkpoints as NSString).appendingPathComponent($0) }))
        #expect(try FileManager.default.contentsOfDirectory(atPath: checkpoints).sorted() == ["best.txt", "ckpt-0000000001.h5", "notes.tmp"])
        #expect(try writer.newestValid()?.path == writer.path("ckpt-0000000001.h5"))
    }

    @Test func fileNamesOrderBySteps() {
        #expect(CheckpointFormat.fileName(step: 0) == "ckpt-0000000000.h5")
        #expect(CheckpointFormat.fileName(step: 9380) == "ckpt-0000009380.h5")
        #expect(CheckpointFormat.fileName(step: 12_345_678_901) == "ckpt-12345678901.h5")
        #expect(CheckpointFormat.step(fromFileName: "ckpt-0000009380.h5") == 9380)
        #expect(CheckpointFormat.step(fromFileName: "ckpt-12345678901.h5") == 12_345_678_901)
        for bad in ["ckpt-123.h5", "ckpt-0000009380.h5.tmp", "best.txt", "ckpt-00000093a0.h5", "xckpt-0000009380.h5"] {
            #expect(CheckpointFormat.step(fromFileName: bad) == nil, "\(bad)")
        }
    }
}
