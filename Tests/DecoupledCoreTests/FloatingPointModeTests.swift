import DecoupledCore
import Dispatch
import Testing

/// Factors whose product, 1e-40, is subnormal (< 1.18e-38). Read through a function the
/// optimizer cannot see into, so the multiply happens at run time in the thread's mode.
@inline(never) func subnormalProduct() -> Float { tinyFactor * tinyFactor }
nonisolated(unsafe) var tinyFactor: Float = 1e-20

/// Subnormal flushing: scoped on the calling thread, carried to the sharder's workers, and
/// never left behind on a thread.
@Suite(.enabled(if: FloatingPointMode.canFlushSubnormals, "flushing is a no-op on this architecture"))
struct FloatingPointModeTests {
    @Test func runFlushesInsideAndRestoresAfter() throws {
        let before = FloatingPointMode.current
        #expect(before == .ieee, "test threads start in IEEE mode")
        #expect(subnormalProduct() != 0 && subnormalProduct().isSubnormal)
        FloatingPointMode.flushSubnormals.run {
            #expect(FloatingPointMode.current == .flushSubnormals)
            #expect(subnormalProduct() == 0)
            FloatingPointMode.ieee.run {
                #expect(subnormalProduct().isSubnormal)
            }
            #expect(subnormalProduct() == 0, "the inner scope restored the outer one")
        }
        #expect(FloatingPointMode.current == before)
        #expect(subnormalProduct().isSubnormal)
    }

    @Test func runRestoresWhenTheBodyThrows() {
        struct Boom: Error {}
        #expect(throws: Boom.self) { try FloatingPointMode.flushSubnormals.run { throw Boom() } }
        #expect(FloatingPointMode.current == .ieee)
    }

    /// Runs one multiply per piece on `workers` threads, in `mode`; returns whether each
    /// piece's product came out as zero.
    func productsAreZero(mode: FloatingPointMode, workers: Int) throws -> [Bool] {
        let arena = try ParameterArena(specs: [TensorSpec(name: "w", shape: [64 * 1024], role: .weight)])
        let sharder = Sharder(arena: arena, chunkElements: 1024, workers: workers)
        var zero = [Bool](repeating: false, count: sharder.pieces.count)
        zero.withUnsafeMutableBufferPointer { out in
            mode.run {
                sharder.forEachPiece { p in
                    // Enough work per piece that Dispatch hands pieces to its own threads too.
                    var spin: Float = 0
                    for i in 0..<20_000 { spin += Float(i & 1) }
                    out[p.index] = subnormalProduct() == 0 && spin > 0
                }
            }
        }
        return zero
    }

    @Test func sharderWorkersComputeInTheCallersMode() throws {
        for workers in [1, 2, 4] {
            #expect(try productsAreZero(mode: .flushSubnormals, workers: workers).allSatisfy { $0 }, "\(workers) workers")
            #expect(try productsAreZero(mode: .ieee, workers: workers).allSatisfy { !$0 }, "\(workers) workers")
        }
    }

    @Test func dispatchThreadsAreHandedBackInTheirOwnMode() throws {
        _ = try productsAreZero(mode: .flushSubnormals, workers: 4)
        // Plain Dispatch work from an IEEE thread, likely on the same pool threads: none of
        // them may still flush.
        var flushing = [Bool](repeating: true, count: 64)
        flushing.withUnsafeMutableBufferPointer { out in
            DispatchQueue.concurrentPerform(iterations: out.count) { i in
                out[i] = FloatingPointMode.current.flushesSubnormals || subnormalProduct() == 0
            }
        }
        #expect(flushing.allSatisfy { !$0 })
    }
}
