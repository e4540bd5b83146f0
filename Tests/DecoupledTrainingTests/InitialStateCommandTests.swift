import DecoupledCore
import DecoupledHDF5
import DecoupledTraining
import Foundation
import Testing

/// `decoupled initial-state` writes exactly the start a training session has: its step-0
/// parameters and the sample order its loader delivers (docs/problems.md, same start).
@Suite struct InitialStateCommandTests {
    @Test func writesTheSessionsStartingPointAndOrder() throws {
        #expect(FileManager.default.isExecutableFile(atPath: decoupledBinary), "build with `swift build --build-tests` first")
        let scratch = Scratch()
        let configPath = scratch.file("tiny.toml")
        try tinyMLPConfig(seed: 5, batchSize: 96, hidden: 4).write(toFile: configPath, atomically: true, encoding: .utf8)
        let out = scratch.file("start")
        let p = try startDecoupled(["initial-state", configPath, "--epochs", "2", "--output", out], in: scratch.path, tag: "start")
        #expect(waitFor(p, seconds: 120) && p.terminationStatus == 0)

        let session = try TrainingSession(config: try ExperimentConfig.load(path: configPath), registry: .builtIn(), kernels: .best)
        for entry in session.arena.entries {
            let array = try NumPyArray.read("\(out)/\(entry.spec.name).npy")
            let values = array.bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            #expect(array.shape == entry.spec.shape && array.elementType == .float32, "\(entry.spec.name)")
            #expect(values == Array(session.arena.view(session.arena.params, entry)), "\(entry.spec.name)")
        }
        let order = try NumPyArray.read("\(out)/order.npy")
        let rows = order.bytes.withUnsafeBytes { Array($0.bindMemory(to: Int64.self)) }.map { Int($0) }
        let n = session.trainingSampleCount
        #expect(order.shape == [2, n] && order.elementType == .int64)
        // The session's own first epoch, batch by batch; each epoch a permutation, a fresh one.
        var delivered: [Int] = []
        while let batch = try session.trainLoader.next() { delivered += batch.indices }
        #expect(Array(rows[0..<n]) == delivered)
        #expect(rows[0..<n].sorted() == Array(0..<n) && rows[n...].sorted() == Array(0..<n))
        #expect(Array(rows[0..<n]) != Array(rows[n...]))
    }
}
