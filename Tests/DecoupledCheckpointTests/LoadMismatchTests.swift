import DecoupledCore
import DecoupledHDF5
import Foundation
import Testing
@testable import DecoupledCheckpoint

/// A checkpoint that does not fit the arena is refused with every mismatch at once, and
/// nothing is copied.
@Suite struct LoadMismatchTests {
    @Test func everyMismatchInOneErrorAndTheArenaUnchanged() throws {
        let dir = TempDir()
        let store = try CheckpointStore(runDirectory: dir.path)
        let path = try store.save(arena: try makeArena(seed: 30), slots: adamSlots, meta: makeMeta(step: 1))

        // fc1.weight reshaped, fc2.bias gone, fc3.weight new; slots: exp_avg kept,
        // momentum_buffer asked for (not in the file), exp_avg_sq not asked for (in the file).
        var specs = testSpecs.filter { $0.name != "fc2.bias" }
        specs[0] = TensorSpec(name: "fc1.weight", shape: [5, 8], role: .weight)
        specs.append(TensorSpec(name: "fc3.weight", shape: [2, 2], role: .weight))
        let arena = try makeArena(seed: 31, specs: specs, slots: ["exp_avg"])
        let before = snapshot(arena)

        let e = expectCheckpointError { _ = try store.load(path, into: arena, slots: ["exp_avg", "momentum_buffer"]) }
        guard case .mismatch(let file, let mismatches)? = e else {
            Issue.record("expected mismatch, got \(String(describing: e))")
            return
        }
        #expect(file == path)
        #expect(mismatches.count == 5, "\(mismatches)")
        let text = "\(e!)"
        for fragment in ["tensor 'fc1.weight' has shape [5, 7] in the file (/params/fc1.weight) but [5, 8] in the arena",
                         "tensor 'fc3.weight' (shape [2, 2]) is missing from the file",
                         "tensor 'fc2.bias' (shape [3]) is in the file (/params/fc2.bias) but not in the arena",
                         "state slot 'momentum_buffer' is missing from the file (it has: exp_avg, exp_avg_sq)",
                         "state slot 'exp_avg_sq' is in the file (/state/exp_avg_sq) but not among the slots to load",
                         "5 mismatches; nothing was loaded", path] {
            #expect(text.contains(fragment), "missing '\(fragment)' in:\n\(text)")
        }
        #expect(snapshot(arena) == before, "a refused load changed the arena")
        #expect(arena.slots["momentum_buffer"] == nil, "a refused load created a slot")
    }

    @Test func anotherFormatVersionIsAMismatch() throws {
        let dir = TempDir()
        let store = try CheckpointStore(runDirectory: dir.path)
        let path = try store.save(arena: try makeArena(seed: 32), slots: adamSlots, meta: makeMeta(step: 1))
        do {
            let f = try H5File(path, mode: .readWrite)
            try f.setAttribute("format_version", Int64(2))
            try f.close()
        }
        let arena = try makeArena(seed: 33, specs: [TensorSpec(name: "fc1.weight", shape: [5, 7], role: .weight)])
        let before = snapshot(arena)
        let e = expectCheckpointError { _ = try store.load(path, into: arena, slots: adamSlots) }
        let text = "\(e!)"
        #expect(text.contains("format_version is 2; this build reads format 1"), "\(text)")
        #expect(text.contains("tensor 'emb.weight' (shape [64, 33]) is in the file"), "\(text)")
        #expect(snapshot(arena) == before)
        let v = expectCheckpointError { try CheckpointStore.verify(path: path) }
        #expect("\(v!)".contains("format_version is 2"))
    }

    @Test func badSlotListsAreRefused() throws {
        let dir = TempDir()
        let store = try CheckpointStore(runDirectory: dir.path)
        let path = try store.save(arena: try makeArena(seed: 34), slots: adamSlots, meta: makeMeta(step: 1))
        let arena = try makeArena(seed: 35)
        let e = expectCheckpointError { _ = try store.load(path, into: arena, slots: ["exp_avg", "exp_avg", "a/b"]) }
        #expect("\(e!)".contains("listed twice") && "\(e!)".contains("'a/b' cannot be used"))
    }
}
