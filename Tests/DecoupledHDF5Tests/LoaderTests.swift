import DecoupledRandom
import Foundation
import Testing
@testable import DecoupledHDF5

/// Collects one epoch: the batches' sample indices, plus checks that features and labels
/// belong to the sample each index names.
func collectEpoch(_ loader: MinibatchLoader, features: Int = 6, classes: Int = 5, featureType: H5ScalarType = .uint8,
                  scale: Float = 1.0 / 255.0) throws -> [[Int]] {
    var batches: [[Int]] = []
    var b = Minibatch()
    while try loader.next(into: &b) {
        #expect(b.count == b.indices.count && b.labels.count == b.count && b.features.count == b.count * features)
        for k in 0..<b.count {
            let i = b.indices[k]
            #expect(b.labels[k] == Int32(i % classes), "label of sample \(i)")
            for j in 0..<features {
                let want: Float = featureType == .uint8 ? Float((i * 7 + j) % 251) * scale : (Float(i) + Float(j) / 1000) * scale
                if b.features[k * features + j] != want {
                    Issue.record("feature \(j) of sample \(i): \(b.features[k * features + j]) != \(want)")
                    return batches
                }
            }
        }
        batches.append(b.indices)
    }
    return batches
}

@Suite struct LoaderTests {
    /// Layouts: several windows (small buffer), chunked+gzip, contiguous, float32, one window.
    static let layouts: [(String, DatasetStorage, H5ScalarType, Int)] = [
        ("gzip-multiwindow", DatasetStorage(chunkRows: 16, gzipLevel: 1, shuffle: true), .uint8, 2_000),
        ("contiguous", .contiguous, .uint8, 4_000),
        ("float32-chunked", DatasetStorage(chunkRows: 10), .float32, 3_000),
        ("one-window", DatasetStorage(chunkRows: 64), .uint8, 1 << 20),
    ]

    @Test(arguments: [0, 1, 2, 3])
    func everySampleOncePerEpochDifferentOrders(layout: Int) throws {
        let (name, storage, type, buffer) = Self.layouts[layout]
        let dir = TempDir()
        let path = try makeDataset(dir.file("\(name).h5"), train: 1_003, test: 37, featureType: type, storage: storage,
                                   scale: type == .uint8 ? 1.0 / 255 : 0.5)
        let ds = try DatasetFile(path: path)
        let loader = try MinibatchLoader(file: ds, split: .train, batchSize: 50, seed: 42, bufferBytes: buffer)
        #expect(loader.reservedBytes <= buffer, "\(name): loader holds \(loader.reservedBytes) of \(buffer) bytes")
        if layout == 0 { #expect(loader.windowBlocks < (1_003 + 15) / 16, "small buffer must give several windows") }
        var orders: [[Int]] = []
        for epoch in 0..<3 {
            #expect(loader.position.epoch == epoch)
            let batches = try collectEpoch(loader, featureType: type, scale: type == .uint8 ? 1.0 / 255 : 0.5)
            #expect(batches.count == 21, "\(name): 1003 samples in batches of 50 → 20 full + 1 of 3")
            #expect(batches.dropLast().allSatisfy { $0.count == 50 } && batches.last?.count == 3)
            let all = batches.flatMap { $0 }
            #expect(all.count == 1_003 && Set(all) == Set(0..<1_003), "\(name) epoch \(epoch): each sample exactly once")
            orders.append(all)
        }
        #expect(orders[0] != orders[1] && orders[1] != orders[2] && orders[0] != orders[2], "\(name): order differs per epoch")
        #expect(orders[0] != Array(0..<1_003), "\(name): shuffled")
        // Same seed, same orders; another seed, other orders.
        let again = try MinibatchLoader(file: ds, split: .train, batchSize: 50, seed: 42, bufferBytes: buffer)
        for epoch in 0..<3 { #expect(try collectEpoch(again, featureType: type, scale: type == .uint8 ? 1.0 / 255 : 0.5).flatMap { $0 } == orders[epoch]) }
        let other = try MinibatchLoader(file: ds, split: .train, batchSize: 50, seed: 43, bufferBytes: buffer)
        #expect(try collectEpoch(other, featureType: type, scale: type == .uint8 ? 1.0 / 255 : 0.5).flatMap { $0 } != orders[0])
    }

    /// Stopping after k batches and restoring the saved position (through JSON, as a checkpoint
    /// would) continues with exactly the same batches, including across epoch boundaries.
    @Test func restoreContinuesWithTheSameBatches() throws {
        let dir = TempDir()
        let path = try makeDataset(dir.file("r.h5"), train: 777, test: 10)
        let ds = try DatasetFile(path: path)
        let buffer = 3_000
        let reference = try MinibatchLoader(file: ds, split: .train, batchSize: 32, seed: 9, bufferBytes: buffer)
        var stream: [[Int]?] = []  // nil marks an epoch end
        var b = Minibatch()
        for _ in 0..<(3 * 26) { stream.append(try reference.next(into: &b) ? b.indices : nil) }
        for k in [0, 1, 5, 24, 25, 26, 27, 40, 60] {
            let first = try MinibatchLoader(file: ds, split: .train, batchSize: 32, seed: 9, bufferBytes: buffer)
            for _ in 0..<k { _ = try first.next(into: &b) }
            let saved = try JSONEncoder().encode(first.position)
            let position = try JSONDecoder().decode(LoaderPosition.self, from: saved)
            // Restore into a fresh loader and into the used one.
            let fresh = try MinibatchLoader(file: ds, split: .train, batchSize: 32, seed: 12345, bufferBytes: buffer, position: position)
            let reused = try MinibatchLoader(file: ds, split: .train, batchSize: 32, seed: 9, bufferBytes: buffer)
            for _ in 0..<7 { _ = try reused.next(into: &b) }
            try reused.restore(position)
            for (n, loader) in [fresh, reused, first].enumerated() {
                for step in k..<min(k + 20, stream.count) {
                    let got: [Int]? = try loader.next(into: &b) ? b.indices : nil
                    #expect(got == stream[step], "k=\(k) loader \(n) step \(step)")
                }
            }
        }
    }

    @Test func restoreRejectsAnotherLayout() throws {
        let dir = TempDir()
        let ds = try DatasetFile(path: try makeDataset(dir.file("l.h5"), train: 500, test: 10))
        let a = try MinibatchLoader(file: ds, split: .train, batchSize: 10, seed: 1, bufferBytes: 3_000)
        let position = a.position
        expectError(["cannot restore", "window blocks", "same buffer size"]) {
            _ = try MinibatchLoader(file: ds, split: .train, batchSize: 10, seed: 1, bufferBytes: 1 << 20, position: position)
        }
        expectError(["cannot restore", "split train", "test"]) {
            _ = try MinibatchLoader(file: ds, split: .test, batchSize: 10, seed: 1, bufferBytes: 3_000, position: position)
        }
        var bad = position
        bad.rngState = [0, 0, 0, 0]
        expectError(["cannot restore", "all zeros"]) { try a.restore(bad) }
        bad = position
        bad.cursor = 501
        expectError(["cannot restore", "cursor 501"]) { try a.restore(bad) }
    }

    @Test func sequentialEvaluationOrder() throws {
        let dir = TempDir()
        let ds = try DatasetFile(path: try makeDataset(dir.file("s.h5"), train: 300, test: 123))
        let loader = try MinibatchLoader(file: ds, split: .test, batchSize: 50, seed: 0, shuffle: false, bufferBytes: 2_000)
        for _ in 0..<2 {
            let order = try collectEpoch(loader).flatMap { $0 }
            #expect(order == Array(0..<123))
        }
        #expect(loader.batchesPerEpoch == 3)
    }

    @Test func bufferTooSmallIsAClearError() throws {
        let dir = TempDir()
        let ds = try DatasetFile(path: try makeDataset(dir.file("t.h5"), train: 300, test: 10, storage: DatasetStorage(chunkRows: 100)))
        expectError(["buffer of 1000 bytes is too small", "/train/x", "100 rows"]) {
            _ = try MinibatchLoader(file: ds, split: .train, batchSize: 10, seed: 0, bufferBytes: 1_000)
        }
        expectError(["batch size must be ≥ 1"]) {
            _ = try MinibatchLoader(file: ds, split: .train, batchSize: 0, seed: 0)
        }
    }

    /// The two-level shuffle mixes globally: with several windows, samples from the first and
    /// the last part of the file both show up early in an epoch.
    @Test func shuffleSpansTheFile() throws {
        let dir = TempDir()
        let ds = try DatasetFile(path: try makeDataset(dir.file("m.h5"), train: 2_000, test: 10, storage: DatasetStorage(chunkRows: 20)))
        let loader = try MinibatchLoader(file: ds, split: .train, batchSize: 100, seed: 5, bufferBytes: 8_000)
        var b = Minibatch()
        var firstHalfOfEpoch = Set<Int>()
        for _ in 0..<10 { try loader.next(into: &b); firstHalfOfEpoch.formUnion(b.indices) }
        let blocksSeen = Set(firstHalfOfEpoch.map { $0 / 20 })
        #expect(blocksSeen.contains { $0 < 50 } && blocksSeen.contains { $0 >= 50 })
        #expect(blocksSeen.count >= 20, "the first half-epoch draws from many blocks, saw \(blocksSeen.count)")
    }

    /// A split that fits the buffer is shuffled as a uniform permutation, afresh every epoch and
    /// independently of the epoch before. 3 000 epochs of 12 samples, one loader (so the epochs'
    /// generator chaining is under test too): how often each sample lands at each position, and
    /// how often a sample at position i moves to position j in the next epoch, against the
    /// uniform 250 per cell. Each epoch adds a permutation matrix, so Pearson's statistic has mean
    /// n(n − 1) = 132 and SD ≈ √(2·132) = 16; the bound, 6 SD above, passes any uniform shuffle
    /// (the seed is fixed, so the figure is too) and fails a Fisher–Yates drawing j < i (Sattolo's
    /// cycles: an empty diagonal, ≈ 3 000) or from the whole range (bias of several per cent per
    /// cell), or epochs that repeat or follow from each other.
    @Test func wholeBufferShuffleIsUniformAndFreshEachEpoch() throws {
        let dir = TempDir()
        let n = 12, epochs = 3_000
        let ds = try DatasetFile(path: try makeDataset(dir.file("u.h5"), train: n, test: 2))
        let loader = try MinibatchLoader(file: ds, split: .train, batchSize: 5, seed: 2024, bufferBytes: 1 << 20)
        var placed = [[Int]](repeating: [Int](repeating: 0, count: n), count: n)  // [sample][position]
        var moved = placed                                                         // [position][next position]
        var previous: [Int]? = nil
        for _ in 0..<epochs {
            let order = try collectEpoch(loader).flatMap { $0 }
            #expect(order.count == n && Set(order) == Set(0..<n))
            var position = [Int](repeating: 0, count: n)
            for (i, sample) in order.enumerated() { position[sample] = i; placed[sample][i] += 1 }
            if let previous { for sample in 0..<n { moved[previous[sample]][position[sample]] += 1 } }
            previous = position
        }
        func pearson(_ table: [[Int]]) -> Double {
            let expected = Double(table.joined().reduce(0, +)) / Double(n * n)
            return table.joined().reduce(0.0) { $0 + (Double($1) - expected) * (Double($1) - expected) / expected }
        }
        let bound = Double(n * (n - 1)) + 6 * (2.0 * Double(n * (n - 1))).squareRoot()
        let (x2Placed, x2Moved) = (pearson(placed), pearson(moved))
        #expect(x2Placed < bound, "sample × position: Pearson \(x2Placed), uniform gives ≈ \(n * (n - 1))")
        #expect(x2Moved < bound, "position × next epoch's position: Pearson \(x2Moved), independent epochs give ≈ \(n * (n - 1))")
    }
}
