import CDecoupledSystem
import Dispatch

/// How a thread's floating-point unit treats subnormal floats (0 < |x| < 1.18e-38).
///
/// IEEE arithmetic on subnormals is slow on most CPUs (a microcode assist per operation on
/// x86). Strong coupled L2 under Adam drives weights and moments into that range, and such
/// runs became 4–15× slower, almost all of it in sgemm (issue 13). Flushing turns results
/// that would be subnormal into zero and reads subnormal inputs as zero (x86 FTZ + DAZ,
/// AArch64 FPCR.FZ); on other architectures it is a no-op.
///
/// The mode is a per-thread register. A thread enters a mode for a scope with `run`; work
/// split over Dispatch threads goes through `concurrentPerform`, which runs every worker in
/// its caller's mode — Dispatch's threads are not ours, so each is handed back as it was.
/// Results stay deterministic: every thread that computes uses the same mode.
public struct FloatingPointMode: Equatable, Sendable, CustomStringConvertible {
    public var flushesSubnormals: Bool

    public init(flushesSubnormals: Bool) { self.flushesSubnormals = flushesSubnormals }

    /// Gradual underflow, as IEEE 754 specifies (every thread's initial mode).
    public static let ieee = FloatingPointMode(flushesSubnormals: false)
    /// Subnormal results and inputs are zero.
    public static let flushSubnormals = FloatingPointMode(flushesSubnormals: true)

    /// Whether flushing has an effect on this CPU architecture (x86-64 and AArch64).
    public static var canFlushSubnormals: Bool { dc_flush_subnormals_supported() != 0 }

    /// The calling thread's mode.
    public static var current: FloatingPointMode {
        FloatingPointMode(flushesSubnormals: dc_flush_subnormals_get() != 0)
    }

    public var description: String { flushesSubnormals ? "flush subnormals" : "IEEE" }

    /// Runs `body` on the calling thread in this mode and then restores the thread's previous
    /// mode (also when `body` throws). When the thread is already in this mode it costs one
    /// register read.
    public func run<R>(_ body: () throws -> R) rethrows -> R {
        let previous = dc_flush_subnormals_get() != 0
        if previous == flushesSubnormals { return try body() }
        dc_flush_subnormals_set(flushesSubnormals ? 1 : 0)
        defer { dc_flush_subnormals_set(previous ? 1 : 0) }
        return try body()
    }

    /// `DispatchQueue.concurrentPerform` whose iterations all run in the caller's mode: the
    /// one way the sharder and the models spread work over threads.
    public static func concurrentPerform(iterations: Int, execute work: (Int) -> Void) {
        let mode = current
        DispatchQueue.concurrentPerform(iterations: iterations) { i in mode.run { work(i) } }
    }
}
