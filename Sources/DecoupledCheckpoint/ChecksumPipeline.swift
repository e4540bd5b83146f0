import DecoupledHDF5
import Dispatch

/// CRC-32s computed on one background thread while the calling thread does the I/O, so a
/// save or load costs max(I/O, checksum) rather than their sum. Pieces are folded in
/// submission order (a serial queue), so a checksum fed in several pieces is exact.
///
/// The submitted memory must stay valid and unchanged until `wait()` returns (or the piece's
/// `then` callback has run, for recycled buffers).
final class ChecksumPipeline {
    private let queue = DispatchQueue(label: "decoupled.checkpoint.crc32", qos: .userInitiated)
    private let group = DispatchGroup()
    /// Written on `queue` only; read after `wait()`, which orders it after every write.
    private var values: [UInt32]

    init(count: Int) {
        values = [UInt32](repeating: 0, count: count)
    }

    /// Memory handed to the checksum thread; the caller guarantees it outlives the job.
    private struct Piece: @unchecked Sendable { let bytes: UnsafeRawBufferPointer }

    /// Folds `bytes` into checksum number `index`, then runs `then` (on the background thread).
    func submit(_ index: Int, _ bytes: UnsafeRawBufferPointer, then: (@Sendable () -> Void)? = nil) {
        let piece = Piece(bytes: bytes)
        group.enter()
        queue.async { [self] in
            values[index] = CRC32.update(values[index], piece.bytes)
            then?()
            group.leave()
        }
    }

    /// Waits for every submitted piece and returns the checksums.
    @discardableResult
    func wait() -> [UInt32] {
        group.wait()
        return values
    }
}
