import DecoupledRandom
import Dispatch
import Foundation

/// One minibatch, in caller-visible memory that the loader refills in place (no per-batch
/// allocation once the arrays have grown to the batch size).
public struct Minibatch {
    /// `count × featureCount` model inputs, row-major: stored features × the file's `scale`.
    public var features: [Float] = []
    /// `count` class labels in 0..<numClasses.
    public var labels: [Int32] = []
    /// `count` sample indices within the split (row numbers of x and y), in batch order.
    public var indices: [Int] = []
    /// Samples in this batch: `batchSize`, or fewer for the last batch of an epoch.
    public var count: Int = 0
    public init() {}
}

/// The exact position of a loader, saved in checkpoints: restoring it continues with exactly
/// the batches the saved loader would have produced next.
///
/// An epoch's order is a pure function of the generator state at the epoch's start (`rngState`)
/// and the window layout, so the position needs no per-sample state: `cursor` samples of epoch
/// `epoch` have been delivered. The layout fields make a restore with a different buffer size or
/// a different file an error instead of a silently different order.
public struct LoaderPosition: Codable, Equatable, Sendable {
    /// Epochs completed before the current one (0 for the first).
    public var epoch: Int
    /// Samples of the current epoch already delivered.
    public var cursor: Int
    /// xoshiro256** state at the start of `epoch` (`Xoshiro256.state`).
    public var rngState: [UInt64]
    /// Seed the loader was created with (kept for the record; the order follows `rngState`).
    public var seed: UInt64
    public var split: DatasetSplit
    public var shuffle: Bool
    public var sampleCount: Int
    /// Rows per read block (the dataset's chunk rows, or a chosen block for contiguous data).
    public var blockRows: Int
    /// Blocks per shuffle window (from `bufferBytes`).
    public var windowBlocks: Int
}

/// Streams minibatches of one split of a `DatasetFile` with memory bounded by `bufferBytes`,
/// independent of the dataset's size.
///
/// Scheme (a two-level shuffle, as in TensorFlow's shuffle buffer or WebDataset, but exactly
/// one visit per sample): the split is cut into blocks aligned to the HDF5 chunk rows, so every
/// read decompresses whole chunks exactly once per epoch. Each epoch draws a permutation of the
/// blocks; consecutive groups of `windowBlocks` blocks form windows; a window is read into one
/// of two buffer slots and its rows are visited in a random permutation. A sample's position in
/// the epoch order is therefore uniform over its window, and windows come in random order. When
/// the buffer holds the whole split the shuffle is a full uniform permutation. Batches run across
/// window (not epoch) boundaries; the last batch of an epoch may be short (PyTorch's default
/// `drop_last=False`). While the caller consumes one slot, a background Dispatch queue reads
/// the next window, across epoch boundaries too, into the other.
///
/// Conversion from uint8 (× `scale`) or float32 to `Float` happens as rows are copied into the
/// caller's batch. Not safe to call from several threads at once (one consumer).
public final class MinibatchLoader {
    public let file: DatasetFile
    public let split: DatasetSplit
    public let batchSize: Int
    public let seed: UInt64
    public let shuffle: Bool
    public let bufferBytes: Int
    public let featureCount: Int
    public let sampleCount: Int
    /// The rows of the split this loader visits (sorted row indices), or nil for all rows.
    public let rows: [Int]?
    public var numClasses: Int { file.numClasses }
    /// Rows per aligned read block.
    public let blockRows: Int
    /// Blocks per window.
    public let windowBlocks: Int
    /// Bytes the loader itself holds: the two window slots plus HDF5's chunk caches.
    public let reservedBytes: Int
    public var batchesPerEpoch: Int { (sampleCount + batchSize - 1) / batchSize }

    private let x: H5Dataset
    private let y: H5Dataset
    private let featureType: H5ScalarType
    private let rowBytes: Int
    private let trailingShape: [Int]
    private let scale: Float
    private let blockCount: Int
    private let windowRowsCapacity: Int
    /// Rows of one file chunk (or of one ~1 MiB read for contiguous data): the unit a row
    /// selection is read in.
    private let fileChunkRows: Int
    /// Holds one file chunk while a row selection picks its rows (a one-row stub without one).
    private let scratch: Slot

    /// The order of one epoch.
    private struct EpochPlan {
        let epoch: Int
        let startState: [UInt64]
        let nextState: [UInt64]
        let blockOrder: [Int32]
        let windowSeed: UInt64
        let windowStarts: [Int]  // first epoch-cursor of each window, plus the total at the end
        var windowCount: Int { windowStarts.count - 1 }
    }

    /// One window's worth of rows: features as stored, labels, the visiting order, and the
    /// sample index of each buffer row.
    private final class Slot {
        let raw: UnsafeMutableRawPointer
        let labels: UnsafeMutablePointer<Int32>
        let perm: UnsafeMutablePointer<Int32>
        let sampleIndex: UnsafeMutablePointer<Int>
        var rows = 0
        var key: (epoch: Int, window: Int) = (-1, -1)
        /// Sorted block ids whose rows the slot holds; set only after a complete read.
        var blocks: [Int32] = []
        init(rowCapacity: Int, rowBytes: Int) {
            raw = UnsafeMutableRawPointer.allocate(byteCount: max(rowCapacity * rowBytes, 1), alignment: 64)
            labels = .allocate(capacity: max(rowCapacity, 1))
            perm = .allocate(capacity: max(rowCapacity, 1))
            sampleIndex = .allocate(capacity: max(rowCapacity, 1))
        }
        deinit {
            raw.deallocate()
            labels.deallocate()
            perm.deallocate()
            sampleIndex.deallocate()
        }
    }

    private var slots: [Slot]
    private var current = 0                   // slot being consumed
    private var plan: EpochPlan               // plan of the current epoch
    private var nextPlan: EpochPlan?          // plan of the next epoch, once needed
    private var windowIndex = 0               // window of `plan` held by slots[current]
    private var cursor = 0                    // samples delivered in the current epoch

    private let queue = DispatchQueue(label: "decoupled.hdf5.prefetch", qos: .userInitiated)
    private var pending: (slot: Int, epoch: Int, window: Int, done: DispatchSemaphore)?
    private var pendingError: Error?

    /// Opens a loader at the start of epoch 0, or at `position` when given.
    ///
    /// - Parameters:
    ///   - bufferBytes: memory for the two window slots (and HDF5's chunk caches); must hold at
    ///     least two read blocks of the split. Larger buffers shuffle more globally.
    ///   - shuffle: false visits samples in file order every epoch (for evaluation).
    ///   - rows: a subset of the split's rows to visit (sorted, distinct; see `DataSelection`);
    ///     nil visits every row. Blocks are then blocks of this list, read as runs of
    ///     consecutive rows, so a subset that fits the buffer is read from the file once.
    public init(file: DatasetFile, split: DatasetSplit, batchSize: Int, seed: UInt64, shuffle: Bool = true,
                bufferBytes: Int = 64 << 20, rows: [Int]? = nil, position: LoaderPosition? = nil) throws {
        guard batchSize >= 1 else { throw DataInputError("batch size must be ≥ 1, got \(batchSize)") }
        if let rows {
            let n = file.count(split)
            for (i, r) in rows.enumerated() where r < 0 || r >= n || (i > 0 && rows[i - 1] >= r) {
                throw DataInputError("row selection for '\(split.rawValue)' in '\(file.path)': row \(r) at position \(i) "
                                     + "is out of order or outside 0..<\(n); expected sorted, distinct rows")
            }
        }
        self.rows = rows
        self.file = file
        self.split = split
        self.batchSize = batchSize
        self.seed = seed
        self.shuffle = shuffle
        self.bufferBytes = bufferBytes
        featureCount = file.featureCount
        sampleCount = rows?.count ?? file.count(split)
        featureType = file.featureType
        rowBytes = file.featureCount * file.featureType.byteSize
        trailingShape = file.sampleShape
        scale = file.scale

        // Chunk caches: x is read in whole chunks, each once per epoch, so caching x chunks only
        // costs memory; labels may be chunked more coarsely than x by other writers, so they get
        // a small cache that holds a few label chunks.
        let labelCache = min(1 << 20, max(bufferBytes / 16, 0))
        x = try file.file.openDataset(split.xPath, chunkCacheBytes: 0)
        y = try file.file.openDataset(split.yPath, chunkCacheBytes: labelCache)
        let xInfo = try x.info()

        // Read blocks follow the chunk rows; contiguous data gets ~1 MiB blocks.
        let perRow = rowBytes + 4 + 4 + 8  // features, label, permutation entry, sample index
        fileChunkRows = max(1, xInfo.chunkShape?[0] ?? (1 << 20) / max(rowBytes, 1))
        scratch = Slot(rowCapacity: rows == nil ? 1 : fileChunkRows, rowBytes: rowBytes)
        if let chunk = xInfo.chunkShape {
            blockRows = max(1, chunk[0])
        } else {
            blockRows = max(1, min(max(sampleCount, 1), (1 << 20) / max(rowBytes, 1), max(1, bufferBytes / 4 / perRow)))
        }
        let slotBytes = (bufferBytes - labelCache) / 2
        let blockBytes = blockRows * perRow
        guard slotBytes >= blockBytes else {
            let need = 2 * blockBytes + labelCache
            throw DataInputError("buffer of \(bufferBytes) bytes is too small for '\(split.xPath)' in '\(file.path)': "
                                 + "two chunks of \(blockRows) rows need \(need) bytes; use a buffer of at least "
                                 + "\((need + (1 << 20) - 1) >> 20) MiB")
        }
        blockCount = (sampleCount + blockRows - 1) / blockRows
        windowBlocks = max(1, min(slotBytes / blockBytes, max(blockCount, 1)))
        windowRowsCapacity = windowBlocks * blockRows
        reservedBytes = 2 * windowRowsCapacity * perRow + labelCache + (rows == nil ? 0 : fileChunkRows * perRow)
        slots = [Slot(rowCapacity: windowRowsCapacity, rowBytes: rowBytes),
                 Slot(rowCapacity: windowRowsCapacity, rowBytes: rowBytes)]
        plan = EpochPlan(epoch: 0, startState: [], nextState: [], blockOrder: [], windowSeed: 0, windowStarts: [0, 0])

        if let position {
            try restore(position)
        } else {
            let start = Xoshiro256(seed: seed, stream: "data-shuffle").state
            plan = makePlan(epoch: 0, state: start)
            try seek(cursor: 0)
        }
    }

    deinit {
        // The background read writes into slot memory: let it finish before the slots go.
        pending?.done.wait()
    }

    // MARK: position

    /// The exact position: restoring it reproduces the following batches.
    public var position: LoaderPosition {
        LoaderPosition(epoch: plan.epoch, cursor: cursor, rngState: plan.startState, seed: seed, split: split,
                       shuffle: shuffle, sampleCount: sampleCount, blockRows: blockRows, windowBlocks: windowBlocks)
    }

    /// Moves to a saved position. The split, sample count, shuffle flag and window layout must
    /// match (the layout follows from the file's chunking and `bufferBytes`).
    public func restore(_ p: LoaderPosition) throws {
        func mismatch(_ what: String, _ saved: Any, _ mine: Any) -> DataInputError {
            DataInputError("cannot restore loader position for '\(file.path)': it was saved with \(what) \(saved), "
                           + "this loader has \(mine)"
                           + (what.contains("window") || what.contains("block") ? " (use the same buffer size and file)" : ""))
        }
        guard p.split == split else { throw mismatch("split", p.split.rawValue, split.rawValue) }
        guard p.sampleCount == sampleCount else { throw mismatch("sample count", p.sampleCount, sampleCount) }
        guard p.shuffle == shuffle else { throw mismatch("shuffle", p.shuffle, shuffle) }
        guard p.blockRows == blockRows else { throw mismatch("block rows", p.blockRows, blockRows) }
        guard p.windowBlocks == windowBlocks else { throw mismatch("window blocks", p.windowBlocks, windowBlocks) }
        guard p.epoch >= 0, p.cursor >= 0, p.cursor <= sampleCount else {
            throw DataInputError("cannot restore loader position for '\(file.path)': epoch \(p.epoch) cursor \(p.cursor) "
                                 + "is outside 0...\(sampleCount)")
        }
        let rng: Xoshiro256
        do { rng = try Xoshiro256(state: p.rngState) } catch {
            throw DataInputError("cannot restore loader position for '\(file.path)': \(error)")
        }
        try drainPending()
        plan = makePlan(epoch: p.epoch, state: rng.state)
        nextPlan = nil
        slots[0].key = (-1, -1)
        slots[1].key = (-1, -1)
        try seek(cursor: p.cursor)
    }

    // MARK: batches

    /// Fills `batch` with the next minibatch and returns true; at the end of an epoch returns
    /// false (once) and moves to the start of the next epoch.
    @discardableResult
    public func next(into batch: inout Minibatch) throws -> Bool {
        if cursor >= sampleCount {
            try advanceEpoch()
            return false
        }
        let n = min(batchSize, sampleCount - cursor)
        resize(&batch.features, to: n * featureCount)
        resize(&batch.labels, to: n)
        resize(&batch.indices, to: n)
        batch.count = n
        var filled = 0
        try batch.features.withUnsafeMutableBufferPointer { feat in
            try batch.labels.withUnsafeMutableBufferPointer { lab in
                try batch.indices.withUnsafeMutableBufferPointer { idx in
                    while filled < n {
                        let windowStart = plan.windowStarts[windowIndex]
                        let windowEnd = plan.windowStarts[windowIndex + 1]
                        if cursor >= windowEnd {
                            try moveToWindow(windowIndex + 1)
                            continue
                        }
                        let slot = slots[current]
                        let take = min(n - filled, windowEnd - cursor)
                        let offset = cursor - windowStart
                        for k in 0..<take {
                            let row = shuffle ? Int(slot.perm[offset + k]) : offset + k
                            copyRow(slot, row: row, to: feat.baseAddress! + (filled + k) * featureCount)
                            lab[filled + k] = slot.labels[row]
                            idx[filled + k] = slot.sampleIndex[row]
                        }
                        filled += take
                        cursor += take
                    }
                }
            }
        }
        return true
    }

    /// Convenience: a fresh batch, or nil at the end of an epoch (then positioned at the next).
    public func next() throws -> Minibatch? {
        var b = Minibatch()
        return try next(into: &b) ? b : nil
    }

    /// Runs `body` on each remaining batch of the current epoch (all of it from a fresh start),
    /// e.g. for evaluation with `shuffle: false`; the loader ends at the start of the next epoch.
    public func forEachBatch(_ body: (Minibatch) throws -> Void) throws {
        var b = Minibatch()
        while try next(into: &b) { try body(b) }
    }

    @inline(__always)
    private func copyRow(_ slot: Slot, row: Int, to dst: UnsafeMutablePointer<Float>) {
        let fc = featureCount
        if featureType == .uint8 {
            let src = (slot.raw + row * rowBytes).assumingMemoryBound(to: UInt8.self)
            let s = scale
            for j in 0..<fc { dst[j] = Float(src[j]) * s }
        } else {
            let src = (slot.raw + row * rowBytes).assumingMemoryBound(to: Float.self)
            if scale == 1 {
                dst.update(from: src, count: fc)
            } else {
                let s = scale
                for j in 0..<fc { dst[j] = src[j] * s }
            }
        }
    }

    private func resize<T: Numeric>(_ a: inout [T], to n: Int) {
        if a.count > n { a.removeLast(a.count - n) } else if a.count < n { a.append(contentsOf: repeatElement(0, count: n - a.count)) }
    }

    // MARK: epochs and windows

    private func makePlan(epoch: Int, state: [UInt64]) -> EpochPlan {
        // `state` comes from a valid generator, never all-zero.
        var rng = (try? Xoshiro256(state: state)) ?? Xoshiro256(seed: seed)
        var order = (0..<blockCount).map { Int32($0) }
        if shuffle && blockCount > 1 {
            for i in stride(from: blockCount - 1, to: 0, by: -1) {
                order.swapAt(i, rng.nextInt(below: i + 1))
            }
        }
        let windowSeed = shuffle ? rng.next() : 0
        var starts = [0]
        var w = 0
        while w < blockCount {
            var rows = 0
            for b in order[w..<min(w + windowBlocks, blockCount)] { rows += rowsOfBlock(Int(b)) }
            starts.append(starts.last! + rows)
            w += windowBlocks
        }
        if starts.count == 1 { starts.append(0) }  // empty split: one empty window
        return EpochPlan(epoch: epoch, startState: state, nextState: rng.state, blockOrder: order,
                         windowSeed: windowSeed, windowStarts: starts)
    }

    private func rowsOfBlock(_ b: Int) -> Int { min(blockRows, sampleCount - b * blockRows) }

    private func planFor(epoch: Int) -> EpochPlan {
        if epoch == plan.epoch { return plan }
        if let p = nextPlan, p.epoch == epoch { return p }
        let p = makePlan(epoch: epoch, state: plan.nextState)
        nextPlan = p
        return p
    }

    /// The window that follows (epoch, window) in stream order.
    private func successor(epoch: Int, window: Int) -> (epoch: Int, window: Int) {
        let p = planFor(epoch: epoch)
        return window + 1 < p.windowCount ? (epoch, window + 1) : (epoch + 1, 0)
    }

    /// Positions at `cursor` of the current plan: loads its window synchronously, then
    /// prefetches the following one.
    private func seek(cursor c: Int) throws {
        var w = 0
        while w + 1 < plan.windowCount && plan.windowStarts[w + 1] <= c { w += 1 }
        if c == sampleCount && sampleCount > 0 { w = plan.windowCount - 1 }
        try drainPending()
        try load(slot: slots[current], epoch: plan.epoch, window: w)
        windowIndex = w
        cursor = c
        startPrefetch()
    }

    private func moveToWindow(_ w: Int) throws {
        guard w < plan.windowCount else { return }
        try waitFor(epoch: plan.epoch, window: w)
        windowIndex = w
        startPrefetch()
    }

    private func advanceEpoch() throws {
        let next = planFor(epoch: plan.epoch + 1)
        plan = next
        nextPlan = nil
        cursor = 0
        try waitFor(epoch: plan.epoch, window: 0)
        windowIndex = 0
        startPrefetch()
    }

    /// Makes the slot holding (epoch, window) current, waiting for its prefetch if needed.
    private func waitFor(epoch: Int, window: Int) throws {
        if let p = pending, p.epoch == epoch, p.window == window {
            p.done.wait()
            pending = nil
            if let e = pendingError { pendingError = nil; slots[p.slot].key = (-1, -1); throw e }
            current = p.slot
        } else {
            try drainPending()
            let other = 1 - current
            if slots[other].key != (epoch, window) {
                try load(slot: slots[other], epoch: epoch, window: window)
            }
            current = other
        }
    }

    /// Starts reading the window after the current one into the other slot.
    private func startPrefetch() {
        guard pending == nil, sampleCount > 0 else { return }
        let (e, w) = successor(epoch: plan.epoch, window: windowIndex)
        let other = 1 - current
        let p = planFor(epoch: e)
        let slot = slots[other]
        if slot.key == (e, w) { return }
        // When the other slot already holds exactly these blocks (the whole split fits in one
        // window), only the visiting order changes: reshuffle instead of reading again.
        let blocks = sortedBlocks(p, window: w)
        if slot.blocks == blocks {
            permute(slot, plan: p, window: w)
            slot.key = (e, w)
            return
        }
        let done = DispatchSemaphore(value: 0)
        pending = (other, e, w, done)
        pendingError = nil
        queue.async { [self] in
            do { try self.fill(slot, plan: p, window: w, blocks: blocks) } catch { self.pendingError = error }
            done.signal()
        }
    }

    private func drainPending() throws {
        if let p = pending {
            p.done.wait()
            pending = nil
            if pendingError != nil { slots[p.slot].key = (-1, -1) }
            pendingError = nil
        }
    }

    private func load(slot: Slot, epoch: Int, window: Int) throws {
        let p = planFor(epoch: epoch)
        let blocks = sortedBlocks(p, window: window)
        if slot.blocks == blocks && !blocks.isEmpty {
            permute(slot, plan: p, window: window)
            slot.key = (epoch, window)
            return
        }
        try fill(slot, plan: p, window: window, blocks: blocks)
    }

    private func sortedBlocks(_ p: EpochPlan, window w: Int) -> [Int32] {
        guard w < p.windowCount, blockCount > 0 else { return [] }
        let lo = w * windowBlocks, hi = min(lo + windowBlocks, blockCount)
        // Read in file order for locality; the permutation makes the layout irrelevant.
        return p.blockOrder[lo..<hi].sorted()
    }

    /// Reads the window's blocks (background thread, or caller when seeking) and shuffles it.
    private func fill(_ slot: Slot, plan p: EpochPlan, window w: Int, blocks: [Int32]) throws {
        slot.key = (-1, -1)
        slot.blocks = []
        var row = 0
        for b in blocks {
            let first = Int(b) * blockRows
            let count = rowsOfBlock(Int(b))
            guard let rows else {
                try read(fileRows: first, count: count, into: slot, at: row)
                row += count
                continue
            }
            // A block is `count` entries of the row list. Rows in one file chunk are read with
            // one call covering them (one decompression per chunk): directly when they are
            // consecutive, else through `scratch`, keeping the selected rows.
            var k = 0
            while k < count {
                let start = rows[first + k]
                let chunkEnd = (start / fileChunkRows + 1) * fileChunkRows
                var n = 1
                while k + n < count && rows[first + k + n] < chunkEnd { n += 1 }
                let span = rows[first + k + n - 1] - start + 1
                if span == n {
                    try read(fileRows: start, count: n, into: slot, at: row)
                } else {
                    try read(fileRows: start, count: span, into: scratch, at: 0)
                    for j in 0..<n {
                        let from = rows[first + k + j] - start
                        (slot.raw + (row + j) * rowBytes).copyMemory(from: scratch.raw + from * rowBytes, byteCount: rowBytes)
                        slot.labels[row + j] = scratch.labels[from]
                        slot.sampleIndex[row + j] = scratch.sampleIndex[from]
                    }
                }
                row += n
                k += n
            }
        }
        slot.rows = row
        permute(slot, plan: p, window: w)
        slot.blocks = blocks
        slot.key = (p.epoch, w)
    }

    /// Reads `count` consecutive rows of the split, from `fileRows` on, into `slot` at `row`.
    private func read(fileRows start: Int, count: Int, into slot: Slot, at row: Int) throws {
        let raw = UnsafeMutableRawBufferPointer(start: slot.raw + row * rowBytes, count: count * rowBytes)
        try x.readRaw(start: [start] + trailingShape.map { _ in 0 }, count: [count] + trailingShape,
                      memoryType: featureType, into: raw)
        try y.read(start: [start], count: [count], into: UnsafeMutableBufferPointer(start: slot.labels + row, count: count),
                   converting: file.labelType(split) != .int32)
        for r in 0..<count { slot.sampleIndex[row + r] = start + r }
    }

    /// The window's row order: a seeded Fisher–Yates permutation (identity without shuffling).
    private func permute(_ slot: Slot, plan p: EpochPlan, window w: Int) {
        let m = slot.rows
        for i in 0..<m { slot.perm[i] = Int32(i) }
        guard shuffle, m > 1 else { return }
        var rng = Xoshiro256(seed: p.windowSeed ^ (UInt64(w) &* 0x9E37_79B9_7F4A_7C15))
        for i in stride(from: m - 1, to: 0, by: -1) {
            let j = rng.nextInt(below: i + 1)
            let t = slot.perm[i]; slot.perm[i] = slot.perm[j]; slot.perm[j] = t
        }
    }
}
