import DecoupledCore
import DecoupledRandom
import Foundation
import Testing
@testable import DecoupledCheckpoint
import DecoupledHDF5

/// Every kind of damage is detected, named (file and object), and `newestValid` falls back.
@Suite struct CorruptionTests {
    /// A run with valid checkpoints at steps 1 and 2; step 2's bytes are what tests damage.
    struct Fixture {
        let dir = TempDir()
        let store: CheckpointStore
        let arena: ParameterArena
        let older: String
        let newer: String
        let original: [UInt8]

        init() throws {
            store = try CheckpointStore(runDirectory: dir.path, keepLast: 5)
            older = try store.save(arena: try makeArena(seed: 10), slots: adamSlots, meta: makeMeta(step: 1))
            arena = try makeArena(seed: 11)
            newer = try store.save(arena: arena, slots: adamSlots, meta: makeMeta(step: 2))
            original = try readBytes(newer)
        }

        /// Every dataset's byte range in the file, found by its (random, hence unique) content.
        func dataRegions() throws -> [(object: String, range: Range<Int>)] {
            var out: [(String, Range<Int>)] = []
            let roles = [("/params", arena.params)] + adamSlots.map { ("/state/\($0)", arena.slot($0)) }
            for (group, buffer) in roles {
                for spec in testSpecs where spec.count >= 4 {
                    let bytes = tensorBytes(arena, buffer, spec.name)
                    let at = try #require(offset(of: bytes, in: original), "\(group)/\(spec.name) not found in the file")
                    out.append(("\(group)/\(spec.name)", at..<(at + bytes.count)))
                }
            }
            let runState = [UInt8](makeMeta(step: 2).runState)
            let at = try #require(offset(of: runState, in: original))
            out.append(("/meta/run_state", at..<(at + runState.count)))
            return out
        }

        /// Damaged step 2 must fail verification naming the file (and `object` when given), and
        /// the scan must resume from step 1, reporting step 2 as skipped.
        func expectDetected(_ what: String, object: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws {
            let e = expectCheckpointError(sourceLocation: sourceLocation) { try CheckpointStore.verify(path: newer) }
            guard case .corrupt(let file, let problems)? = e else {
                Issue.record("\(what): expected corrupt, got \(String(describing: e))", sourceLocation: sourceLocation)
                return
            }
            #expect(file == newer, sourceLocation: sourceLocation)
            #expect(!problems.isEmpty && problems.allSatisfy { !$0.object.isEmpty && !$0.reason.isEmpty },
                    "\(what): \(problems)", sourceLocation: sourceLocation)
            if let object {
                #expect(problems.contains { $0.object == object }, "\(what): \(problems) should name \(object)",
                        sourceLocation: sourceLocation)
            }
            #expect("\(e!)".contains(newer), sourceLocation: sourceLocation)
            let found = try #require(try store.newestValid(), sourceLocation: sourceLocation)
            #expect(found.path == older, "\(what)", sourceLocation: sourceLocation)
            #expect(found.skipped.map(\.path) == [newer], sourceLocation: sourceLocation)
            if let object, let reason = found.skipped.first?.reason {
                #expect(reason.contains(object), "\(what): skipped reason '\(reason)'", sourceLocation: sourceLocation)
            }
        }
    }

    @Test func garbageIsDetected() throws {
        let f = try Fixture()
        var rng = Xoshiro256(seed: 1)
        try writeBytes((0..<f.original.count).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, f.newer)
        try f.expectDetected("garbage", object: "/")
        let e = expectCheckpointError { try CheckpointStore.verify(path: f.newer) }
        #expect("\(e!)".contains("not an HDF5 file"), "\(e!)")
        // Garbage over the data region alone: the checksum, not HDF5, catches it.
        let regions = try f.dataRegions()
        let emb = try #require(regions.first { $0.object == "/params/emb.weight" })
        var bytes = f.original
        for i in emb.range { bytes[i] = UInt8(truncatingIfNeeded: rng.next()) }
        try writeBytes(bytes, f.newer)
        try f.expectDetected("garbage data", object: "/params/emb.weight")
    }

    @Test func truncationAtTenRandomLengthsIsDetected() throws {
        let f = try Fixture()
        var rng = Xoshiro256(seed: 2)
        let lengths = [0, f.original.count - 1] + (0..<8).map { _ in rng.nextInt(below: f.original.count) }
        for n in lengths {
            try writeBytes(Array(f.original.prefix(n)), f.newer)
            try f.expectDetected("truncated to \(n) of \(f.original.count) bytes", object: "/")
        }
    }

    @Test func flippedBytesInTheDataRegionAreDetectedAndNamed() throws {
        let f = try Fixture()
        let regions = try f.dataRegions()
        var rng = Xoshiro256(seed: 3)
        for i in 0..<10 {
            // The first flips hit the meta and a scalar-sized tensor on purpose; the rest at random.
            let region = i == 0 ? regions.last! : regions[rng.nextInt(below: regions.count)]
            let at = region.range.lowerBound + rng.nextInt(below: region.range.count)
            var bytes = f.original
            bytes[at] ^= UInt8(1 << rng.nextInt(below: 8))
            try writeBytes(bytes, f.newer)
            try f.expectDetected("flip at byte \(at) in \(region.object)", object: region.object)
            let e = expectCheckpointError { try CheckpointStore.verify(path: f.newer) }
            #expect("\(e!)".contains("CRC-32 mismatch"))
        }
    }

    /// Anywhere else (superblock, object headers, attributes, unused space) a flip must either
    /// be reported or change nothing that is read: never a silently different checkpoint.
    @Test func flippedBytesAnywhereAreNeverSilent() throws {
        let f = try Fixture()
        var rng = Xoshiro256(seed: 4)
        let expected = snapshot(f.arena)
        var detected = 0
        for _ in 0..<24 {
            let at = rng.nextInt(below: f.original.count)
            var bytes = f.original
            bytes[at] ^= UInt8(1 << rng.nextInt(below: 8))
            try writeBytes(bytes, f.newer)
            let target = try ParameterArena(specs: testSpecs)
            do {
                let meta = try f.store.load(f.newer, into: target, slots: adamSlots)
                #expect(meta == makeMeta(step: 2), "flip at \(at) changed the metadata silently")
                #expect(snapshot(target) == expected, "flip at \(at) changed tensor data silently")
            } catch let e as CheckpointError {
                detected += 1
                #expect("\(e)".contains(f.newer))
                #expect(snapshot(target) == snapshot(try ParameterArena(specs: testSpecs)), "a refused load touched the arena")
            }
        }
        #expect(detected > 0)
    }

    @Test func aCorruptLoadLeavesTheArenaUntouched() throws {
        let f = try Fixture()
        var bytes = f.original
        let emb = try #require(try f.dataRegions().first { $0.object == "/state/exp_avg/emb.weight" })
        bytes[emb.range.upperBound - 1] ^= 0x80
        try writeBytes(bytes, f.newer)
        let target = try makeArena(seed: 12)
        let before = snapshot(target)
        let e = expectCheckpointError { _ = try f.store.load(f.newer, into: target, slots: adamSlots) }
        #expect("\(e!)".contains("/state/exp_avg/emb.weight"))
        #expect(snapshot(target) == before)
    }

    @Test func allCorruptThrowsListingEveryFile() throws {
        let f = try Fixture()
        try writeBytes(Array(f.original.prefix(100)), f.newer)
        try writeBytes([UInt8](repeating: 0x41, count: 5000), f.older)
        let e = expectCheckpointError { _ = try f.store.newestValid() }
        guard case .noValidCheckpoint(let directory, let skipped)? = e else {
            Issue.record("expected noValidCheckpoint, got \(String(describing: e))")
            return
        }
        #expect(directory == f.store.directory)
        #expect(skipped.map(\.path) == [f.newer, f.older])
        #expect("\(e!)".contains("truncated") && "\(e!)".contains("not an HDF5 file"), "\(e!)")
        // No checkpoint files at all is a fresh start, not an error.
        try FileManager.default.removeItem(atPath: f.newer)
        try FileManager.default.removeItem(atPath: f.older)
        #expect(try f.store.newestValid() == nil)
    }

    @Test func listReportsValidityEpochAndBest() throws {
        let f = try Fixture()
        try f.store.save(arena: f.arena, slots: adamSlots, meta: makeMeta(step: 30), isBest: true)
        var bytes = f.original
        bytes[try f.dataRegions()[0].range.lowerBound] ^= 0x04
        try writeBytes(bytes, f.newer)
        let infos = f.store.list()
        #expect(infos.map(\.step) == [30, 2, 1])
        #expect(infos.map(\.isValid) == [true, false, true])
        #expect(infos.map(\.isBest) == [true, false, false])
        #expect(infos.map(\.epoch) == [3, 0, 0])
        #expect(infos[1].problem?.reason.contains("CRC-32 mismatch") == true)
        #expect(infos.allSatisfy { $0.sizeBytes > 20_000 })
    }

    @Test func verifyOfAMissingFileOrNonCheckpointSaysSo() throws {
        let dir = TempDir()
        let e1 = expectCheckpointError { try CheckpointStore.verify(path: dir.file("nope.h5")) }
        #expect("\(e1!)".contains("no such file"))
        // A valid HDF5 file that is not a checkpoint: every missing piece is listed.
        let other = dir.file("other.h5")
        try H5File(other, mode: .create).close()
        let e2 = expectCheckpointError { try CheckpointStore.verify(path: other) }
        let text = "\(e2!)"
        for fragment in ["format_version' is missing", "'/params': group is missing", "'/state': group is missing", "'/meta': group is missing"] {
            #expect(text.contains(fragment), "\(text)")
        }
    }
}
