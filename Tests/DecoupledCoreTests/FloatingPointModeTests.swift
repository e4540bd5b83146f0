import DecoupledCore
import Testing

/// Factors whose product, 1e-40, is subnormal (< 1.18e-38). Read through a function the
/// optimizer cannot see into, so the multiply happens at run time in the thread's mode.
@inline(never) func subnormalProduct() -> Float { tinyFactor * tinyFactor }
nonisolated(unsafe) var tinyFactor: Float = 1e-20

/// Subnormal flushing, scoped on the calling thread. How workers inherit it is tested with
/// the models and the trainer (DecoupledTrainingTests/SubnormalTests.swift).
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
}
