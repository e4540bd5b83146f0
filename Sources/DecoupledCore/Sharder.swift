import Foundation

/// Splits an arena into fixed, cache-sized, aligned chunks and runs per-piece work on them
/// with `DispatchQueue.concurrentPerform` (through `FloatingPointMode`, so every worker
/// computes in the caller's floating-point mode).
///
/// A piece is the part of one tensor inside one chunk. Chunk boundaries depend only on the
/// layout and `chunkElements`, never on the number of workers, and per-piece statistics are
/// reduced in piece order, so results are bit-identical for any worker count.
public final class Sharder: @unchecked Sendable {
    public struct Piece: Sendable {
        /// Position in `pieces` (and in any per-piece result array).
        public let index: Int
        /// Tensor index in the arena.
        public let tensor: Int
        /// Absolute offset of the first element in every role buffer.
        public let offset: Int
        public let count: Int
    }

    /// 16 Ki floats: 64 KiB per array, so w, g and two moments of a chunk stay in L2 while
    /// plugin callbacks run right after the built-in kernel on the same chunk.
    public static let defaultChunkElements = 16 * 1024

    public let chunkElements: Int
    public let pieces: [Piece]
    /// Pieces of chunk k are `pieces[chunkStarts[k]..<chunkStarts[k + 1]]`.
    public let chunkStarts: [Int]
    public var workers: Int

    public var chunkCount: Int { chunkStarts.count - 1 }

    public static var activeCores: Int { ProcessInfo.processInfo.activeProcessorCount }

    public init(arena: ParameterArena, chunkElements: Int = Sharder.defaultChunkElements,
                workers: Int? = nil) {
        precondition(chunkElements > 0 && chunkElements % ParameterArena.alignmentFloats == 0,
                     "chunk size must be a positive multiple of \(ParameterArena.alignmentFloats) floats")
        self.chunkElements = chunkElements
        self.workers = max(1, workers ?? Sharder.activeCores)
        var pieces: [Piece] = []
        var starts: [Int] = [0]
        let chunks = (arena.capacity + chunkElements - 1) / chunkElements
        var e = 0
        for k in 0..<chunks {
            let lo = k * chunkElements, hi = lo + chunkElements
            while e < arena.entries.count && arena.entries[e].range.upperBound <= lo { e += 1 }
            var j = e
            while j < arena.entries.count && arena.entries[j].offset < hi {
                let r = arena.entries[j].range.clamped(to: lo..<hi)
                if !r.isEmpty { pieces.append(Piece(index: pieces.count, tensor: j, offset: r.lowerBound, count: r.count)) }
                j += 1
            }
            if pieces.count > starts.last! { starts.append(pieces.count) }
        }
        self.pieces = pieces
        self.chunkStarts = starts
    }

    /// Runs `body` on every piece, chunk by chunk, on `workers` threads, each taking a
    /// contiguous block of chunks; returns the statistics reduced in piece order.
    public func run(_ body: (Piece) -> StepStatistics) -> StepStatistics {
        var perPiece = [StepStatistics](repeating: .zero, count: pieces.count)
        perPiece.withUnsafeMutableBufferPointer { out in
            forEachPieceIndex { p in out[p] = body(pieces[p]) }
        }
        var total = StepStatistics.zero
        for s in perPiece { total.accumulate(s) }
        return total
    }

    /// Runs `body` on every piece without statistics (e.g. the bandwidth probe).
    public func forEachPiece(_ body: (Piece) -> Void) {
        forEachPieceIndex { p in body(pieces[p]) }
    }

    /// Runs `body(i)` for every i in 0..<count on up to `workers` threads, each taking a
    /// contiguous block (the tensor passes: one tensor per call).
    public func forEachIndex(_ count: Int, _ body: (Int) -> Void) {
        let n = min(workers, count)
        guard n > 1 else { for i in 0..<count { body(i) }; return }
        FloatingPointMode.concurrentPerform(iterations: n) { w in
            for i in (count * w / n)..<(count * (w + 1) / n) { body(i) }
        }
    }

    private func forEachPieceIndex(_ body: (Int) -> Void) {
        let chunks = chunkCount
        let n = min(workers, max(chunks, 1))
        func work(_ w: Int) {
            let first = chunks * w / n, last = chunks * (w + 1) / n
            guard first < last else { return }
            for p in chunkStarts[first]..<chunkStarts[last] { body(p) }
        }
        if n == 1 { work(0) } else { FloatingPointMode.concurrentPerform(iterations: n) { work($0) } }
    }
}
