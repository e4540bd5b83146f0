/// Cuts a row-major array into hyperslabs of whole rows (along the first dimension) of at
/// most `maxBytes` each — or one row, when a row alone is larger. Checkpoint reads and writes
/// go through HDF5 in such pieces: big enough that per-call overhead vanishes, small enough to
/// start writeback early and to verify through a small buffer.
struct Pieces: Sequence {
    struct Piece {
        var start: [Int]
        var count: [Int]
        /// Byte range of the piece within the whole array.
        var byteOffset: Int
        var byteCount: Int
    }

    let shape: [Int]
    let elementSize: Int
    let maxBytes: Int

    /// Bytes of one row (everything but the first dimension); the element size for rank ≤ 1.
    static func rowBytes(shape: [Int], elementSize: Int) -> Int {
        shape.dropFirst().reduce(1, *) * elementSize
    }

    func makeIterator() -> AnyIterator<Piece> {
        if shape.isEmpty {
            // A scalar: one piece, no selection.
            var done = false
            return AnyIterator {
                if done { return nil }
                done = true
                return Piece(start: [], count: [], byteOffset: 0, byteCount: elementSize)
            }
        }
        let rowBytes = Pieces.rowBytes(shape: shape, elementSize: elementSize)
        let rowsPerPiece = Swift.max(1, maxBytes / Swift.max(rowBytes, 1))
        let rows = shape[0]
        var row = 0
        let shape = self.shape
        return AnyIterator {
            // An empty array (a dimension of 0) has no pieces.
            guard row < rows, rowBytes > 0 else { return nil }
            let n = Swift.min(rowsPerPiece, rows - row)
            var start = [Int](repeating: 0, count: shape.count)
            start[0] = row
            var count = shape
            count[0] = n
            let piece = Piece(start: start, count: count, byteOffset: row * rowBytes, byteCount: n * rowBytes)
            row += n
            return piece
        }
    }
}
