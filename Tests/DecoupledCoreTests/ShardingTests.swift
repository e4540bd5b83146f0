import DecoupledCore
import Testing

/// Results must not depend on the number of workers, the chunk size, or how elements are
/// split into tensors, for any fixed kernel path.
@Suite struct ShardingTests {
    static let odd = [1, 7, 15, 16, 17, 33, 100, 1023, 16385, 40001]

    /// Fills params/grads deterministically from each element's global index.
    static func fill(_ arena: ParameterArena) {
        var k = 0
        for e in arena.entries {
            let w = arena.view(arena.params, e), g = arena.view(arena.grads, e)
            for i in 0..<e.count {
                let x = Float((k &* 2_654_435_761) % 1_000_003) / 1_000_003 - 0.5
                w[i] = x * 3
                g[i] = (x * 7).truncatingRemainder(dividingBy: 1) * 0.1
                k += 1
            }
        }
    }

    /// Three AdamW steps (with coupled L1 and L2 too) through the sharder; returns flattened
    /// params and state in element order, plus the reduced statistics.
    static func adamW(specs: [TensorSpec], path: KernelPath, workers: Int, chunk: Int) throws
        -> ([UInt32], [UInt32], StepStatistics) {
        let arena = try ParameterArena(specs: specs)
        fill(arena)
        let sharder = Sharder(arena: arena, chunkElements: chunk, workers: workers)
        let w = arena.params.base, g = arena.grads.base
        let m = arena.slot("m").base, v = arena.slot("v").base
        var stats = StepStatistics.zero
        for t in 1...3 {
            let hp = AdamKernelParameters(lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, amsgrad: false, step: t,
                                          regularization: FusedRegularization(l2: 1e-3, l1: 1e-4, decay: 1e-4))
            stats = sharder.run { p in
                path.adam(hp, w + p.offset, g + p.offset, m + p.offset, v + p.offset, nil, p.count)
            }
        }
        var params: [UInt32] = [], moments: [UInt32] = []
        for e in arena.entries {
            params += arena.view(arena.params, e).map(\.bitPattern)
            moments += arena.view(arena.slot("m"), e).map(\.bitPattern) + arena.view(arena.slot("v"), e).map(\.bitPattern)
        }
        return (params, moments, stats)
    }

    static var specs: [TensorSpec] {
        odd.enumerated().map { TensorSpec(name: "t\($0.offset)", shape: [$0.element], role: .weight) }
    }

    @Test(arguments: KernelPath.runnable.map(\.name))
    func bitIdenticalForAnyWorkerCount(_ name: String) throws {
        let path = try KernelPath.named(name)
        let (p1, m1, s1) = try Self.adamW(specs: Self.specs, path: path, workers: 1, chunk: 1024)
        for workers in [2, 3, 7] {
            let (p, m, s) = try Self.adamW(specs: Self.specs, path: path, workers: workers, chunk: 1024)
            #expect(p == p1, "\(name): params differ with \(workers) workers")
            #expect(m == m1, "\(name): optimizer state differs with \(workers) workers")
            // statistics are reduced in piece order, so they are bit-identical too
            #expect(s.parameterSumSquares.bitPattern == s1.parameterSumSquares.bitPattern && s.zeroParameters == s1.zeroParameters)
        }
    }

    @Test(arguments: KernelPath.runnable.map(\.name))
    func elementResultsIndependentOfChunkingAndTensorSplit(_ name: String) throws {
        let path = try KernelPath.named(name)
        let (reference, refState, _) = try Self.adamW(specs: Self.specs, path: path, workers: 1, chunk: 16 * 1024)
        for chunk in [16, 48, 1024, 4096] {
            let (p, m, _) = try Self.adamW(specs: Self.specs, path: path, workers: 3, chunk: chunk)
            #expect(p == reference && m == refState, "\(name): chunk \(chunk) changes results")
        }
        // The same elements as one tensor: every element's update is the same bits.
        let total = Self.odd.reduce(0, +)
        let (single, _, _) = try Self.adamW(specs: [TensorSpec(name: "all", shape: [total], role: .weight)],
                                            path: path, workers: 2, chunk: 1024)
        #expect(single == reference, "\(name): splitting a tensor changes element results")
    }

    @Test func piecesCoverEveryElementOnceAndStayAligned() throws {
        let arena = try ParameterArena(specs: Self.specs)
        for chunk in [16, 64, 1024, 16 * 1024] {
            let sharder = Sharder(arena: arena, chunkElements: chunk)
            var covered = [Int](repeating: 0, count: arena.capacity)
            for p in sharder.pieces {
                #expect(p.offset % ParameterArena.alignmentFloats == 0)
                #expect(p.count <= chunk && p.offset / chunk == (p.offset + p.count - 1) / chunk)
                for i in p.offset..<(p.offset + p.count) { covered[i] += 1 }
            }
            for e in arena.entries {
                #expect(covered[e.range].allSatisfy { $0 == 1 }, "tensor \(e.spec.name) chunk \(chunk)")
            }
            #expect(covered.reduce(0, +) == arena.parameterCount)  // padding never touched
        }
    }

    @Test func arenaRefusesBadSpecs() {
        #expect(throws: ArenaError.self) { try ParameterArena(specs: [TensorSpec(name: "a", shape: [2, 0], role: .weight)]) }
        #expect(throws: ArenaError.self) {
            try ParameterArena(specs: [TensorSpec(name: "a", shape: [2], role: .weight),
                                       TensorSpec(name: "a", shape: [3], role: .bias)])
        }
        do {
            _ = try ParameterArena(specs: [TensorSpec(name: "fc1.weight", shape: [3, -1], role: .weight)])
        } catch { #expect(String(describing: error).contains("fc1.weight")) }
    }

    @Test func arenaBuffersAre64ByteAligned() throws {
        let arena = try ParameterArena(specs: Self.specs)
        for b in [arena.params, arena.grads, arena.slot("exp_avg")] {
            #expect(Int(bitPattern: b.base) % 64 == 0)
        }
        for e in arena.entries { #expect(e.offset % 16 == 0) }
    }
}
