/// Named tensors of any shape laid out in one 64-byte-aligned buffer per role: parameters,
/// gradients, and one buffer per optimizer state slot ("exp_avg", "momentum_buffer", …).
///
/// Every tensor starts on a 16-float (64-byte) boundary, so chunks the sharder cuts at
/// multiples of 16 floats never split a vector and each tensor's elements sit at the same
/// vector lanes whatever the chunking. Padding between tensors is never touched by kernels.
public final class ParameterArena: @unchecked Sendable {
    /// Floats per alignment unit (64 bytes).
    public static let alignmentFloats = AlignedBuffer.alignment / MemoryLayout<Float>.stride

    public struct Entry: Sendable {
        public let index: Int
        public let spec: TensorSpec
        /// Offset of the first element in every role buffer.
        public let offset: Int
        public var count: Int { spec.count }
        public var range: Range<Int> { offset..<(offset + spec.count) }
    }

    public let entries: [Entry]
    /// Floats per role buffer, padding included.
    public let capacity: Int
    /// Real elements (padding excluded).
    public let parameterCount: Int
    public let params: AlignedBuffer
    public let grads: AlignedBuffer
    public private(set) var slots: [String: AlignedBuffer] = [:]
    /// The layout of every slot that is not one float per element (`StateLayout`).
    public private(set) var slotLayouts: [String: StateLayout] = [:]
    private let indexByName: [String: Int]

    public init(specs: [TensorSpec]) throws {
        var entries: [Entry] = []
        var names: [String: Int] = [:]
        var offset = 0
        for (i, spec) in specs.enumerated() {
            guard !spec.name.isEmpty else { throw ArenaError.emptyName(index: i) }
            guard spec.shape.allSatisfy({ $0 > 0 }) else { throw ArenaError.badShape(spec.name, spec.shape) }
            guard names[spec.name] == nil else { throw ArenaError.duplicateName(spec.name) }
            names[spec.name] = i
            entries.append(Entry(index: i, spec: spec, offset: offset))
            offset += ParameterArena.roundUp(spec.count)
        }
        self.entries = entries
        self.indexByName = names
        self.capacity = offset
        self.parameterCount = specs.reduce(0) { $0 + $1.count }
        self.params = AlignedBuffer(count: offset)
        self.grads = AlignedBuffer(count: offset)
    }

    static func roundUp(_ n: Int) -> Int {
        (n + alignmentFloats - 1) / alignmentFloats * alignmentFloats
    }

    public func index(of name: String) -> Int? { indexByName[name] }

    public func entry(named name: String) -> Entry? { indexByName[name].map { entries[$0] } }

    /// The state buffer called `name`, created on first use with `layout` and every value
    /// (padding included) set to `initialValue`; an existing buffer keeps its values and layout.
    @discardableResult
    public func slot(_ name: String, initialValue: Float = 0, layout: StateLayout = .element) -> AlignedBuffer {
        if let s = slots[name] { return s }
        let count = layout == .element ? capacity : offsets(layout).last!
        let s = AlignedBuffer(count: count)
        if initialValue != 0 { UnsafeMutableBufferPointer(start: s.base, count: count).update(repeating: initialValue) }
        slots[name] = s
        if layout != .element { slotLayouts[name] = layout }
        return s
    }

    /// Where each tensor's part of a slot of `layout` starts (one more entry: the total),
    /// every part on a 64-byte boundary.
    func offsets(_ layout: StateLayout) -> [Int] {
        var out = [0]
        for e in entries { out.append(out.last! + ParameterArena.roundUp(layout.count(of: e.spec))) }
        return out
    }

    /// The layout of slot `name` (`.element` for one that does not exist yet).
    public func layout(ofSlot name: String) -> StateLayout { slotLayouts[name] ?? .element }

    /// A tensor's part of state slot `name` (created on first use as an element slot), whatever
    /// the slot's layout: what checkpoints save and load, replay writes and tensor passes see.
    public func stateView(_ name: String, _ entry: Entry) -> UnsafeMutableBufferPointer<Float> {
        let buffer = slot(name), layout = layout(ofSlot: name)
        if layout == .element { return view(buffer, entry) }
        return UnsafeMutableBufferPointer(start: buffer.base + offsets(layout)[entry.index], count: layout.count(of: entry.spec))
    }

    /// The shape of a tensor's part of state slot `name`.
    public func stateShape(_ name: String, _ entry: Entry) -> [Int] { layout(ofSlot: name).shape(of: entry.spec) }

    /// Drops every state slot (e.g. when an optimizer is replaced).
    public func removeSlots() {
        slots.removeAll()
        slotLayouts.removeAll()
    }

    /// The tensor's elements within a role buffer.
    public func view(_ buffer: AlignedBuffer, _ entry: Entry) -> UnsafeMutableBufferPointer<Float> {
        // A slot per row, column or tensor is smaller: its parts are read through `stateView`.
        precondition(buffer.count >= capacity, "view(_:_:) of a buffer that is not per element; use stateView")
        return UnsafeMutableBufferPointer(start: buffer.base + entry.offset, count: entry.count)
    }

    /// Per-tensor pointers into a role buffer, in spec order (what models read and write).
    public func pointers(_ buffer: AlignedBuffer) -> [UnsafeMutablePointer<Float>] {
        entries.map { buffer.base + $0.offset }
    }
}

public enum ArenaError: Error, CustomStringConvertible {
    case emptyName(index: Int)
    case duplicateName(String)
    case badShape(String, [Int])

    public var description: String {
        switch self {
        case .emptyName(let i): return "parameter tensor #\(i) has an empty name"
        case .duplicateName(let n): return "parameter tensor '\(n)' is declared twice"
        case .badShape(let n, let s): return "parameter tensor '\(n)' has shape \(s); every dimension must be > 0"
        }
    }
}

/// How much state a slot keeps per tensor: one float per element, per row, per column, or
/// one per tensor. Rows are the elements sharing the first index (`TensorInfo.rows`); a
/// column is every row's element at one position, so `.rows` and `.columns` together hold
/// a factored second moment of a matrix. `matrixRows` and `matrixColumns` factor over the
/// last two dimensions instead, as torch.optim.Adafactor does for a tensor of any rank ≥ 2
/// (shape [B…, R, C]: [B…, R] and [B…, C]; for a 2-D tensor the same as `rows` and
/// `columns`; one float for a tensor of rank < 2, which has no matrix). `vectorElements` is
/// their complement: one float per element of a tensor of rank < 2 (the unfactored moment of
/// a vector or scalar) and one float for a tensor of rank ≥ 2.
public enum StateLayout: String, Sendable, CaseIterable {
    case element, rows, columns, scalar, matrixRows = "matrix_rows", matrixColumns = "matrix_columns"
    case vectorElements = "vector_elements"

    /// Floats per tensor.
    public func count(of spec: TensorSpec) -> Int { shape(of: spec).reduce(1, *) }

    /// The shape of one tensor's part (what a checkpoint stores).
    public func shape(of spec: TensorSpec) -> [Int] {
        let rows = spec.shape.first ?? 1
        switch self {
        case .element: return spec.shape
        case .rows: return [rows]
        case .columns: return [spec.count / rows]
        case .scalar: return []
        case .matrixRows: return spec.shape.count >= 2 ? Array(spec.shape.dropLast()) : []
        case .matrixColumns: return spec.shape.count >= 2 ? Array(spec.shape.dropLast(2)) + [spec.shape.last!] : []
        case .vectorElements: return spec.shape.count < 2 ? spec.shape : []
        }
    }
}
