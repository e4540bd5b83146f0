#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// A zero-initialised float buffer aligned to 64 bytes (one cache line, one AVX-512 vector),
/// owned by this object and freed with it.
///
/// Buffers of 2 MiB and more are aligned to 2 MiB and, on Linux, advised as huge-page
/// backed (`MADV_HUGEPAGE`; honoured when transparent huge pages are `always` or `madvise`):
/// an optimizer step streams four to five such arrays at once, and with 4 KiB pages the
/// hardware prefetchers stop at every page boundary of every stream. On a 2-core AMD EPYC
/// this made the 5e7-parameter kernels about a fifth faster (docs/kernels.md).
public final class AlignedBuffer: @unchecked Sendable {
    public static let alignment = 64
    /// Size and alignment of a transparent huge page on x86-64 and most AArch64 kernels.
    public static let hugePageBytes = 2 << 20
    public let count: Int
    public let base: UnsafeMutablePointer<Float>
    /// What `posix_memalign` returned (`base` may start a few cache lines in).
    private let allocation: UnsafeMutableRawPointer
    /// Successive huge buffers start this many bytes apart modulo 4 KiB (cycling through 16
    /// offsets): arrays that all began on a 2 MiB boundary would share their low 12 address
    /// bits, and a loop storing to one while loading the others at the same index stalls on
    /// 4K aliasing (the store looks like it may feed the load).
    static let staggerBytes = 256
    private static let hugeBuffersMade = Atomic<Int>(0)

    /// Allocates `count` floats with `posix_memalign`, all zero.
    public init(count: Int) {
        precondition(count >= 0)
        var raw: UnsafeMutableRawPointer?
        let payload = max(count, 1) * MemoryLayout<Float>.stride
        let huge = payload >= AlignedBuffer.hugePageBytes
        let stagger = huge ? AlignedBuffer.hugeBuffersMade.add(1, ordering: .relaxed).oldValue % 16 * AlignedBuffer.staggerBytes : 0
        let bytes = payload + stagger
        let rc = posix_memalign(&raw, huge ? AlignedBuffer.hugePageBytes : AlignedBuffer.alignment, bytes)
        guard rc == 0, let raw else {
            fatalError("out of memory: cannot allocate \(bytes) bytes for a parameter buffer")
        }
        #if os(Linux)
        // Before the first touch (the memset), so the pages are faulted in as huge pages. Only
        // whole huge pages are advised; a failure (no THP in this kernel) just keeps 4 KiB pages.
        if huge { _ = madvise(raw, bytes & ~(AlignedBuffer.hugePageBytes - 1), MADV_HUGEPAGE) }
        #endif
        memset(raw, 0, bytes)
        self.count = count
        allocation = raw
        self.base = (raw + stagger).bindMemory(to: Float.self, capacity: max(count, 1))
    }

    deinit { free(allocation) }

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: base, count: count) }

    public func zero() { memset(base, 0, count * MemoryLayout<Float>.stride) }

    public func copy(from other: AlignedBuffer) {
        precondition(other.count == count)
        memcpy(base, other.base, count * MemoryLayout<Float>.stride)
    }
}
