/// The numbers an `Encodable` value encodes, each with its key path: `MetricRecord`'s keys and
/// values exactly as its `Codable` conformance (the one that writes metrics.jsonl) names them,
/// without printing and re-parsing JSON (Foundation's parser can be one unit off in the last
/// place, which rounds a Float the other way). Strings, booleans and nils are left out.
enum NumberLeaves {
    static func of<T: Encodable>(_ value: T) throws -> [(path: [String], value: Double)] {
        let sink = Sink()
        try value.encode(to: Collector(sink: sink, codingPath: []))
        return sink.leaves
    }

    final class Sink {
        var leaves: [(path: [String], value: Double)] = []
    }

    struct Collector: Encoder {
        let sink: Sink
        var codingPath: [CodingKey]
        var userInfo: [CodingUserInfoKey: Any] { [:] }

        func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
            KeyedEncodingContainer(Keyed<Key>(sink: sink, codingPath: codingPath))
        }
        func unkeyedContainer() -> UnkeyedEncodingContainer { Unkeyed(sink: sink, codingPath: codingPath) }
        func singleValueContainer() -> SingleValueEncodingContainer { Single(sink: sink, codingPath: codingPath) }
    }

    /// Records `value` at `path` when it is a number; encodes anything else further down.
    static func record<T: Encodable>(_ value: T, at path: [CodingKey], into sink: Sink) throws {
        switch value {
        case let x as Double: sink.leaves.append((path.map(\.stringValue), x))
        case let x as Float: sink.leaves.append((path.map(\.stringValue), Double(x)))
        case let x as any BinaryInteger: sink.leaves.append((path.map(\.stringValue), Double(x)))
        case is Bool, is String: break
        default: try value.encode(to: Collector(sink: sink, codingPath: path))
        }
    }

    struct Keyed<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let sink: Sink
        var codingPath: [CodingKey]
        mutating func encodeNil(forKey key: Key) throws {}
        mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
            try NumberLeaves.record(value, at: codingPath + [key], into: sink)
        }
        // The primitive requirements (no defaults in the standard library), all to `record`.
        mutating func encode(_ value: Bool, forKey key: Key) throws { try NumberLeaves.record(value, at: codingPath + [key], into: sink) }
        mutating func encode(_ value: String, forKey key: Key) throws { try NumberLeaves.record(value, at: codingPath + [key], into: sink) }
        mutating func encode(_ value: Double, forKey key: Key) throws { try NumberLeaves.record(value, at: codingPath + [key], into: sink) }
        mutating func encode(_ value: Float, forKey key: Key) throws { try NumberLeaves.record(value, at: codingPath + [key], into: sink) }
        mutating func encode(_ value: Int, forKey key: Key) throws { try NumberLeaves.record(value, at: codingPath + [key], into: sink) }
        mutating func encode(_ value: Int8, forKey key: Key) throws { try NumberLeaves.record(value, at: codingPath + [key], into: sink) }
        mutating func encode(_ value: Int16, forKey key: Key) throws { try NumberLeaves.record(value, at: codingPath + [key], into: sink) }
        mutating func encode(_ value: Int32, forKey key: Key) throws { try NumberLeaves.record(value, at: codingPath + [key], into: sink) }
        mutating func encode(_ value: Int64, forKey key: Key) throws { try NumberLeaves.record(value, at: codingPath + [key], into: sink) }
        mutating func encode(_ value: UInt, forKey key: Key) throws { try NumberLeaves.record(value, at: codingPath + [key], into: sink) }
        mutating func encode(_ value: UInt8, forKey key: Key) throws { try NumberLeaves.record(value, at: codingPath + [key], into: sink) }
        mutating func encode(_ value: UInt16, forKey key: Key) throws { try NumberLeaves.record(value, at: codingPath + [key], into: sink) }
        mutating func encode(_ value: UInt32, forKey key: Key) throws { try NumberLeaves.record(value, at: codingPath + [key], into: sink) }
        mutating func encode(_ value: UInt64, forKey key: Key) throws { try NumberLeaves.record(value, at: codingPath + [key], into: sink) }
        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
            KeyedEncodingContainer(Keyed<NestedKey>(sink: sink, codingPath: codingPath + [key]))
        }
        mutating func nestedUnkeyedContainer(forKey key: Key) -> UnkeyedEncodingContainer {
            Unkeyed(sink: sink, codingPath: codingPath + [key])
        }
        mutating func superEncoder() -> Encoder { Collector(sink: sink, codingPath: codingPath) }
        mutating func superEncoder(forKey key: Key) -> Encoder { Collector(sink: sink, codingPath: codingPath + [key]) }
    }

    /// Arrays: elements keyed by their index.
    struct Unkeyed: UnkeyedEncodingContainer {
        let sink: Sink
        var codingPath: [CodingKey]
        var count = 0
        init(sink: Sink, codingPath: [CodingKey]) { self.sink = sink; self.codingPath = codingPath }
        mutating func next() -> [CodingKey] { defer { count += 1 }; return codingPath + [Index(intValue: count)] }
        mutating func encodeNil() throws { count += 1 }
        mutating func encode<T: Encodable>(_ value: T) throws { try NumberLeaves.record(value, at: next(), into: sink) }
        mutating func encode(_ value: Bool) throws { try NumberLeaves.record(value, at: next(), into: sink) }
        mutating func encode(_ value: String) throws { try NumberLeaves.record(value, at: next(), into: sink) }
        mutating func encode(_ value: Double) throws { try NumberLeaves.record(value, at: next(), into: sink) }
        mutating func encode(_ value: Float) throws { try NumberLeaves.record(value, at: next(), into: sink) }
        mutating func encode(_ value: Int) throws { try NumberLeaves.record(value, at: next(), into: sink) }
        mutating func encode(_ value: Int8) throws { try NumberLeaves.record(value, at: next(), into: sink) }
        mutating func encode(_ value: Int16) throws { try NumberLeaves.record(value, at: next(), into: sink) }
        mutating func encode(_ value: Int32) throws { try NumberLeaves.record(value, at: next(), into: sink) }
        mutating func encode(_ value: Int64) throws { try NumberLeaves.record(value, at: next(), into: sink) }
        mutating func encode(_ value: UInt) throws { try NumberLeaves.record(value, at: next(), into: sink) }
        mutating func encode(_ value: UInt8) throws { try NumberLeaves.record(value, at: next(), into: sink) }
        mutating func encode(_ value: UInt16) throws { try NumberLeaves.record(value, at: next(), into: sink) }
        mutating func encode(_ value: UInt32) throws { try NumberLeaves.record(value, at: next(), into: sink) }
        mutating func encode(_ value: UInt64) throws { try NumberLeaves.record(value, at: next(), into: sink) }
        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
            KeyedEncodingContainer(Keyed<NestedKey>(sink: sink, codingPath: next()))
        }
        mutating func nestedUnkeyedContainer() -> UnkeyedEncodingContainer { Unkeyed(sink: sink, codingPath: next()) }
        mutating func superEncoder() -> Encoder { Collector(sink: sink, codingPath: next()) }
    }

    struct Single: SingleValueEncodingContainer {
        let sink: Sink
        var codingPath: [CodingKey]
        mutating func encodeNil() throws {}
        mutating func encode<T: Encodable>(_ value: T) throws { try NumberLeaves.record(value, at: codingPath, into: sink) }
        mutating func encode(_ value: Bool) throws { try NumberLeaves.record(value, at: codingPath, into: sink) }
        mutating func encode(_ value: String) throws { try NumberLeaves.record(value, at: codingPath, into: sink) }
        mutating func encode(_ value: Double) throws { try NumberLeaves.record(value, at: codingPath, into: sink) }
        mutating func encode(_ value: Float) throws { try NumberLeaves.record(value, at: codingPath, into: sink) }
        mutating func encode(_ value: Int) throws { try NumberLeaves.record(value, at: codingPath, into: sink) }
        mutating func encode(_ value: Int8) throws { try NumberLeaves.record(value, at: codingPath, into: sink) }
        mutating func encode(_ value: Int16) throws { try NumberLeaves.record(value, at: codingPath, into: sink) }
        mutating func encode(_ value: Int32) throws { try NumberLeaves.record(value, at: codingPath, into: sink) }
        mutating func encode(_ value: Int64) throws { try NumberLeaves.record(value, at: codingPath, into: sink) }
        mutating func encode(_ value: UInt) throws { try NumberLeaves.record(value, at: codingPath, into: sink) }
        mutating func encode(_ value: UInt8) throws { try NumberLeaves.record(value, at: codingPath, into: sink) }
        mutating func encode(_ value: UInt16) throws { try NumberLeaves.record(value, at: codingPath, into: sink) }
        mutating func encode(_ value: UInt32) throws { try NumberLeaves.record(value, at: codingPath, into: sink) }
        mutating func encode(_ value: UInt64) throws { try NumberLeaves.record(value, at: codingPath, into: sink) }
    }

    struct Index: CodingKey {
        let index: Int
        var intValue: Int? { index }
        var stringValue: String { String(index) }
        init(intValue: Int) { index = intValue }
        init?(stringValue: String) { return nil }
    }
}
