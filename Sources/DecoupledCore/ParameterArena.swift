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

    /// The state buffer called `name`, created on first use with every element (padding
    /// included) set to `initialValue`; an existing buffer keeps its values.
    @discardableResult
    public func slot(_ name: String, initialValue: Float = 0) -> AlignedBuffer {
        if let s = slots[name] { return s }
        let s = AlignedBuffer(count: capacity)
        if initialValue != 0 { UnsafeMutableBufferPointer(start: s.base, count: capacity).update(repeating: initialValue) }
        slots[name] = s
        return s
    }

    /// Drops every state slot (e.g. when an optimizer is replaced).
    public func removeSlots() { slots.removeAll() }

    /// The tensor's elements within a role buffer.
    public func view(_ buffer: AlignedBuffer, _ entry: Entry) -> UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: buffer.base + entry.offset, count: entry.count)
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
