#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A zero-initialised float buffer aligned to 64 bytes (one cache line, one AVX-512 vector),
/// owned by this object and freed with it.
public final class AlignedBuffer: @unchecked Sendable {
    public static let alignment = 64
    public let count: Int
    public let base: UnsafeMutablePointer<Float>

    /// Allocates `count` floats with `posix_memalign`, all zero.
    public init(count: Int) {
        precondition(count >= 0)
        var raw: UnsafeMutableRawPointer?
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        let rc = posix_memalign(&raw, AlignedBuffer.alignment, bytes)
        guard rc == 0, let raw else {
            fatalError("out of memory: cannot allocate \(bytes) bytes for a parameter buffer")
        }
        memset(raw, 0, bytes)
        self.count = count
        self.base = raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    deinit { free(base) }

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: base, count: count) }

    public func zero() { memset(base, 0, count * MemoryLayout<Float>.stride) }

    public func copy(from other: AlignedBuffer) {
        precondition(other.count == count)
        memcpy(base, other.base, count * MemoryLayout<Float>.stride)
    }
}
