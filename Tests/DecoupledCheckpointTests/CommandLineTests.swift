import Foundation
@testable import DecoupledHDF5
import Testing
@testable import DecoupledCheckpoint

/// `decoupled checkpoint list` and `verify`, run as the user would.
@Suite struct CommandLineTests {
    @Test func verifyExitStatusAndListOutput() throws {
        let dir = TempDir()
        let store = try CheckpointStore(runDirectory: dir.path)
        let arena = try makeArena(seed: 60)
        let good = try store.save(arena: arena, slots: adamSlots, meta: makeMeta(step: 10, epoch: 1), isBest: true)
        let bad = try store.save(arena: arena, slots: adamSlots, meta: makeMeta(step: 20, epoch: 2))
        var bytes = try readBytes(bad)
        let at = try #require(offset(of: tensorBytes(arena, arena.slot("exp_avg"), "emb.weight"), in: bytes))
        bytes[at + 7] ^= 0x10
        try writeBytes(bytes, bad)

        let ok = try decoupledCheckpoint(["verify", good])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stdout.contains("valid") && ok.stdout.contains("step 10") && ok.stdout.contains("state slots: exp_avg, exp_avg_sq"), "\(ok.stdout)")

        let corrupt = try decoupledCheckpoint(["verify", bad])
        #expect(corrupt.status == 1)
        #expect(corrupt.stderr.contains(bad) && corrupt.stderr.contains("'/state/exp_avg/emb.weight': CRC-32 mismatch"), "\(corrupt.stderr)")

        let missing = try decoupledCheckpoint(["verify", dir.file("none.h5")])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("no such file"), "\(missing.stderr)")

        let list = try decoupledCheckpoint(["list", dir.path])
        #expect(list.status == 0, "\(list.stderr)")
        let lines = list.stdout.split(separator: "\n").map(String.init)
        let row20 = lines.first { $0.hasPrefix("20 ") } ?? ""
        let row10 = lines.first { $0.hasPrefix("10 ") } ?? ""
        #expect(row20.contains("CORRUPT") && row20.contains("/state/exp_avg/emb.weight") && row20.contains(" 2 "), "\(list.stdout)")
        #expect(row10.contains("valid") && row10.contains("(best)") && row10.contains(" 1 "), "\(list.stdout)")
        #expect(lines.firstIndex(of: row20)! < lines.firstIndex(of: row10)!, "newest first")
    }
}
