import CHDF5
import Foundation

// Readers of NumPy's own file formats, so the arrays users already have (np.save, np.savez,
// np.savez_compressed, keras.datasets' .npz files) import without Python:
//
//   .npy  https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
//         "\x93NUMPY", major, minor, header length (uint16 LE in 1.0, uint32 LE in 2.0/3.0),
//         a Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (N, 28, 28)},
//         padded with spaces and a newline, then the raw array bytes.
//   .npz  a zip archive of .npy members, stored (np.savez) or deflated (np.savez_compressed);
//         NumPy writes them with Python's zipfile, Zip64 extra fields included.

/// The element types a .npy array may hold for import: little-endian (or byte-order-free)
/// booleans, integers and floats. Anything else (big-endian, float16, complex, strings,
/// structured and object arrays) is refused by `NumPyArray.parse` with a message saying so.
public enum NumPyElementType: String, Equatable, Sendable {
    case bool = "b1", int8 = "i1", uint8 = "u1", int16 = "i2", uint16 = "u2", int32 = "i4", uint32 = "u4"
    case int64 = "i8", uint64 = "u8", float32 = "f4", float64 = "f8"

    public var byteSize: Int { Int(rawValue.dropFirst())! }
    public var isInteger: Bool { self != .float32 && self != .float64 && self != .bool }
    /// NumPy's name of the type, for messages.
    public var numpyName: String {
        switch self {
        case .bool: return "bool"
        case .float32: return "float32"
        case .float64: return "float64"
        default: return (rawValue.hasPrefix("u") ? "uint" : "int") + "\(byteSize * 8)"
        }
    }
}

/// A .npy array read into memory: its shape (C order), element type and raw little-endian bytes.
public struct NumPyArray {
    /// Where the array came from, for messages: `x.npy` or `data.npz:x_train`.
    public var name: String
    public var shape: [Int]
    public var elementType: NumPyElementType
    public var bytes: Data

    public var count: Int { shape.reduce(1, *) }

    public init(name: String, shape: [Int], elementType: NumPyElementType, bytes: Data) {
        self.name = name
        self.shape = shape
        self.elementType = elementType
        self.bytes = bytes
    }

    /// Reads a .npy file.
    public static func read(_ path: String) throws -> NumPyArray {
        try parse(NumPyArchive.readWholeFile(path, what: ".npy file"), name: path)
    }

    /// The array as the bytes of a format-1.0 .npy file (C order, little-endian), the inverse
    /// of `parse`: `np.load` reads it.
    public func npyData() -> Data {
        let dims = shape.map(String.init).joined(separator: ", ") + (shape.count == 1 ? "," : "")
        // NumPy writes '|' (no byte order) for one-byte types and '<' (little-endian) for the rest.
        let order = elementType.byteSize == 1 ? "|" : "<"
        var header = "{'descr': '\(order)\(elementType.rawValue)', 'fortran_order': False, 'shape': (\(dims)), }"
        // The preamble (10 bytes) plus the header, newline included, is a multiple of 64.
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var out = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        let length = header.utf8.count
        out.append(contentsOf: [UInt8(length & 0xff), UInt8(length >> 8)])
        out.append(contentsOf: Array(header.utf8))
        out.append(bytes)
        return out
    }

    /// Parses the bytes of a .npy file (or .npz member); `name` names it in errors.
    public static func parse(_ data: Data, name: String) throws -> NumPyArray {
        func fail(_ problem: String) -> DataInputError { DataInputError("\(name): \(problem)") }
        let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)
        guard data.count >= 10 else {
            throw fail(data.starts(with: magic.prefix(data.count)) && !data.isEmpty
                       ? "truncated: \(data.count) bytes, shorter than a .npy header"
                       : "not a .npy file (\(data.count) bytes, no \\x93NUMPY magic)")
        }
        guard data.starts(with: magic) else {
            let head = data.prefix(6).map { String(format: "%02x", $0) }.joined(separator: " ")
            throw fail("not a .npy file (starts with bytes \(head), expected the magic \\x93NUMPY)")
        }
        let base = data.startIndex
        let major = data[base + 6], minor = data[base + 7]
        let headerLength: Int, headerStart: Int
        switch major {
        case 1:
            headerLength = Int(data[base + 8]) | Int(data[base + 9]) << 8
            headerStart = 10
        case 2, 3:
            guard data.count >= 12 else { throw fail("truncated: the version \(major).\(minor) header length is cut off") }
            headerLength = (0..<4).reduce(0) { $0 | Int(data[base + 8 + $1]) << (8 * $1) }
            headerStart = 12
        default:
            throw fail("format version \(major).\(minor) is not supported (1.0, 2.0 and 3.0 are)")
        }
        guard data.count >= headerStart + headerLength else {
            throw fail("truncated: the header needs \(headerLength) bytes, the file has \(data.count - headerStart) after the preamble")
        }
        let headerBytes = data[(base + headerStart)..<(base + headerStart + headerLength)]
        // 1.0 and 2.0 headers are latin-1, 3.0 UTF-8; the keys and values this reader accepts are ASCII.
        guard let header = String(bytes: headerBytes, encoding: major == 3 ? .utf8 : .isoLatin1) else {
            throw fail("the header is not valid \(major == 3 ? "UTF-8" : "latin-1") text")
        }
        let dict: [String: PythonLiteral]
        do { dict = try PythonLiteral.parseDictionary(header) } catch let e as PythonLiteral.SyntaxError {
            throw fail("malformed header (\(e.message)): \(header.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        guard case .string(let descr)? = dict["descr"] else {
            if dict["descr"] != nil { throw fail("structured arrays (a list as descr) are not supported; save a plain numeric array") }
            throw fail("the header has no 'descr' (element type)")
        }
        guard case .bool(let fortran)? = dict["fortran_order"] else { throw fail("the header has no boolean 'fortran_order'") }
        guard case .tuple(let dims)? = dict["shape"] else { throw fail("the header has no 'shape' tuple") }
        let shape = try dims.map { d -> Int in
            guard case .integer(let v) = d, v >= 0 else { throw fail("shape \(dims) holds a value that is not a non-negative integer") }
            return v
        }
        let elementType = try Self.elementType(descr, fail: fail)
        // Every partial product must fit, zero dimensions left out: (2^40, 2^40, 0) holds no
        // elements, but its sample shape would overflow wherever features are counted.
        var nonZeroProduct = 1, overflow = false
        for d in shape where d > 0 {
            let (p, o) = nonZeroProduct.multipliedReportingOverflow(by: d)
            nonZeroProduct = p
            overflow = overflow || o
        }
        let (nonZeroBytes, bytesOverflow) = nonZeroProduct.multipliedReportingOverflow(by: elementType.byteSize)
        guard !overflow, !bytesOverflow, nonZeroBytes < 1 << 50 else { throw fail("shape \(shape) is implausibly large") }
        let count = shape.contains(0) ? 0 : nonZeroProduct
        let byteCount = count * elementType.byteSize
        let available = data.count - headerStart - headerLength
        guard available >= byteCount else {
            throw fail("truncated: shape \(shape) of \(elementType.numpyName) needs \(byteCount) data bytes, the file has \(available)")
        }
        guard available == byteCount else {
            throw fail("\(available - byteCount) trailing bytes after the \(byteCount) data bytes that shape \(shape) of \(elementType.numpyName) describes")
        }
        var bytes = Data(data.suffix(from: base + headerStart + headerLength))
        if fortran && shape.count > 1 { bytes = cOrder(fromFortran: bytes, shape: shape, elementSize: elementType.byteSize) }
        return NumPyArray(name: name, shape: shape, elementType: elementType, bytes: bytes)
    }

    static func elementType(_ descr: String, fail: (String) -> DataInputError) throws -> NumPyElementType {
        guard let order = descr.first, descr.count >= 3 else { throw fail("element type '\(descr)' is not understood") }
        let code = String(descr.dropFirst())
        guard let t = NumPyElementType(rawValue: code) else {
            switch code.first {
            case "O": throw fail("object arrays (descr '\(descr)') are pickled Python objects; save a numeric array (e.g. x.astype(np.float32))")
            case "U", "S": throw fail("string arrays (descr '\(descr)') cannot be imported; map the labels to integers first")
            default: throw fail("element type '\(descr)' is not supported (bool, int8-64, uint8-64, float32 and float64 are)")
            }
        }
        switch order {
        case "<", "|": return t
        // "=" (native) is what NumPy itself never writes, but a hand-made header might; every
        // machine this builds on is little-endian.
        case "=": return t
        case ">" where t.byteSize == 1: return t
        case ">": throw fail("big-endian data (descr '\(descr)') is not supported; convert with x.astype(x.dtype.newbyteorder('<'))")
        default: throw fail("element type '\(descr)' is not understood")
        }
    }

    /// Reorders a Fortran-order (column-major) array into C order: element (i0, …, ik) sits at
    /// Σ i_j · Π_{m<j} d_m in the source and at Σ i_j · Π_{m>j} d_m in the result.
    static func cOrder(fromFortran source: Data, shape: [Int], elementSize: Int) -> Data {
        let count = shape.reduce(1, *)
        var out = Data(count: count * elementSize)
        guard count > 0 else { return out }
        var fortranStride = [Int](repeating: 1, count: shape.count)
        for j in 1..<shape.count { fortranStride[j] = fortranStride[j - 1] * shape[j - 1] }
        source.withUnsafeBytes { (src: UnsafeRawBufferPointer) in
            out.withUnsafeMutableBytes { (dst: UnsafeMutableRawBufferPointer) in
                var index = [Int](repeating: 0, count: shape.count)
                var from = 0
                for to in 0..<count {
                    (dst.baseAddress! + to * elementSize).copyMemory(from: src.baseAddress! + from * elementSize, byteCount: elementSize)
                    // Advance the C-order multi-index (last dimension fastest).
                    var j = shape.count - 1
                    while j >= 0 {
                        index[j] += 1
                        from += fortranStride[j]
                        if index[j] < shape[j] { break }
                        from -= fortranStride[j] * shape[j]
                        index[j] = 0
                        j -= 1
                    }
                }
            }
        }
        return out
    }

    /// Element `i` (flat, C order) as a Double; exact for every integer below 2^53.
    public func double(at i: Int) -> Double {
        bytes.withUnsafeBytes { b in
            let p = b.baseAddress! + i * elementType.byteSize
            switch elementType {
            case .bool: return p.load(as: UInt8.self) != 0 ? 1 : 0
            case .int8: return Double(p.load(as: Int8.self))
            case .uint8: return Double(p.load(as: UInt8.self))
            case .int16: return Double(Int16(littleEndian: p.loadUnaligned(as: Int16.self)))
            case .uint16: return Double(UInt16(littleEndian: p.loadUnaligned(as: UInt16.self)))
            case .int32: return Double(Int32(littleEndian: p.loadUnaligned(as: Int32.self)))
            case .uint32: return Double(UInt32(littleEndian: p.loadUnaligned(as: UInt32.self)))
            case .int64: return Double(Int64(littleEndian: p.loadUnaligned(as: Int64.self)))
            case .uint64: return Double(UInt64(littleEndian: p.loadUnaligned(as: UInt64.self)))
            case .float32: return Double(Float(bitPattern: UInt32(littleEndian: p.loadUnaligned(as: UInt32.self))))
            case .float64: return Double(bitPattern: UInt64(littleEndian: p.loadUnaligned(as: UInt64.self)))
            }
        }
    }

    /// Calls `body(i, value)` for the elements `range` (flat, C order) as Doubles, with one
    /// access to the bytes and one type dispatch for the whole range (the importers' inner loop).
    public func forEachDouble(in range: Range<Int>, _ body: (Int, Double) throws -> Void) rethrows {
        try bytes.withUnsafeBytes { b in
            func each<T>(_: T.Type, _ convert: (T) -> Double) throws {
                for i in range { try body(i, convert(b.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.size, as: T.self))) }
            }
            // Little-endian data on a little-endian machine: the bytes load as they are.
            switch elementType {
            case .bool: try each(UInt8.self) { $0 != 0 ? 1 : 0 }
            case .int8: try each(Int8.self) { Double($0) }
            case .uint8: try each(UInt8.self) { Double($0) }
            case .int16: try each(Int16.self) { Double(Int16(littleEndian: $0)) }
            case .uint16: try each(UInt16.self) { Double(UInt16(littleEndian: $0)) }
            case .int32: try each(Int32.self) { Double(Int32(littleEndian: $0)) }
            case .uint32: try each(UInt32.self) { Double(UInt32(littleEndian: $0)) }
            case .int64: try each(Int64.self) { Double(Int64(littleEndian: $0)) }
            case .uint64: try each(UInt64.self) { Double(UInt64(littleEndian: $0)) }
            case .float32: try each(UInt32.self) { Double(Float(bitPattern: UInt32(littleEndian: $0))) }
            case .float64: try each(UInt64.self) { Double(bitPattern: UInt64(littleEndian: $0)) }
            }
        }
    }

    /// Element `i` of an integer (or bool) array as an Int64, nil when it does not fit.
    public func integer(at i: Int) -> Int64? {
        bytes.withUnsafeBytes { b -> Int64? in
            let p = b.baseAddress! + i * elementType.byteSize
            switch elementType {
            case .uint64:
                let v = UInt64(littleEndian: p.loadUnaligned(as: UInt64.self))
                return v <= UInt64(Int64.max) ? Int64(v) : nil
            case .int64: return Int64(littleEndian: p.loadUnaligned(as: Int64.self))
            case .float32, .float64: return nil
            default: return Int64(double(at: i))
            }
        }
    }
}

/// The subset of Python literal syntax a .npy header uses: a dict of string keys to strings,
/// booleans, integers and tuples of integers (and lists, to recognise structured dtypes).
enum PythonLiteral: Equatable {
    case string(String), bool(Bool), integer(Int), tuple([PythonLiteral]), list([PythonLiteral]), none

    struct SyntaxError: Error { var message: String }

    static func parseDictionary(_ text: String) throws -> [String: PythonLiteral] {
        var p = Parser(chars: Array(text.unicodeScalars), i: 0)
        p.skipSpace()
        guard p.eat("{") else { throw SyntaxError(message: "expected a dict starting with '{'") }
        var dict: [String: PythonLiteral] = [:]
        p.skipSpace()
        while !p.eat("}") {
            guard case .string(let key) = try p.value() else { throw SyntaxError(message: "a key is not a string") }
            p.skipSpace()
            guard p.eat(":") else { throw SyntaxError(message: "expected ':' after '\(key)'") }
            dict[key] = try p.value()
            p.skipSpace()
            if p.eat(",") { p.skipSpace(); continue }
            p.skipSpace()
            guard p.eat("}") else { throw SyntaxError(message: "expected ',' or '}' after the value of '\(key)'") }
            break
        }
        p.skipSpace()
        guard p.i == p.chars.count else { throw SyntaxError(message: "text after the dict") }
        return dict
    }

    struct Parser {
        var chars: [Unicode.Scalar]
        var i: Int
        mutating func skipSpace() { while i < chars.count, chars[i].properties.isWhitespace { i += 1 } }
        mutating func eat(_ c: Unicode.Scalar) -> Bool {
            guard i < chars.count, chars[i] == c else { return false }
            i += 1
            return true
        }
        mutating func value() throws -> PythonLiteral {
            skipSpace()
            guard i < chars.count else { throw SyntaxError(message: "unexpected end") }
            let c = chars[i]
            if c == "'" || c == "\"" {
                i += 1
                var s = ""
                while i < chars.count, chars[i] != c {
                    if chars[i] == "\\", i + 1 < chars.count { i += 1 }
                    s.unicodeScalars.append(chars[i])
                    i += 1
                }
                guard eat(c) else { throw SyntaxError(message: "unterminated string") }
                return .string(s)
            }
            if c == "(" || c == "[" {
                i += 1
                let close: Unicode.Scalar = c == "(" ? ")" : "]"
                var items: [PythonLiteral] = []
                skipSpace()
                while !eat(close) {
                    items.append(try value())
                    skipSpace()
                    if eat(",") { skipSpace(); continue }
                    guard eat(close) else { throw SyntaxError(message: "expected ',' or '\(close)'") }
                    break
                }
                return c == "(" ? .tuple(items) : .list(items)
            }
            var word = ""
            while i < chars.count, chars[i].properties.isAlphabetic || ("0"..."9").contains(chars[i]) || chars[i] == "-" || chars[i] == "_" {
                word.unicodeScalars.append(chars[i])
                i += 1
            }
            switch word {
            case "True": return .bool(true)
            case "False": return .bool(false)
            case "None": return .none
            default:
                // Python 2 wrote long dimensions as "60000L".
                let digits = word.hasSuffix("L") ? String(word.dropLast()) : word
                guard let v = Int(digits) else { throw SyntaxError(message: word.isEmpty ? "unexpected '\(c)'" : "unexpected '\(word)'") }
                return .integer(v)
            }
        }
    }
}

/// A .npz file: a zip archive whose members are .npy files named `KEY.npy`. Members are
/// stored or deflated (np.savez / np.savez_compressed); Zip64 records are understood, and
/// each member's CRC-32 is checked.
public struct NumPyArchive {
    public let path: String
    let data: Data
    struct Member {
        var name: String
        var method: UInt16
        var crc: UInt32
        var compressedSize: Int
        var size: Int
        var localHeaderOffset: Int
        var flags: UInt16
    }
    let members: [String: Member]
    /// The member names in archive order.
    public let memberNames: [String]
    /// The array keys (member names without `.npy`), in archive order.
    public var keys: [String] { memberNames.map { $0.hasSuffix(".npy") ? String($0.dropLast(4)) : $0 } }

    static func readWholeFile(_ path: String, what: String) throws -> Data {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { throw DataInputError("\(what) \(path): no such file") }
        guard !isDir.boolValue else { throw DataInputError("\(what) \(path): is a directory") }
        do { return try Data(contentsOf: URL(fileURLWithPath: path), options: .mappedIfSafe) } catch {
            throw DataInputError("\(what) \(path): cannot read: \((error as NSError).localizedDescription)")
        }
    }

    public init(path: String) throws {
        self.path = path
        data = try Self.readWholeFile(path, what: ".npz file")
        func fail(_ problem: String) -> DataInputError { DataInputError(".npz file \(path): \(problem)") }
        let d = data
        func u16(_ o: Int) -> UInt16 { UInt16(d[d.startIndex + o]) | UInt16(d[d.startIndex + o + 1]) << 8 }
        func u32(_ o: Int) -> UInt32 { (0..<4).reduce(UInt32(0)) { $0 | UInt32(d[d.startIndex + o + $1]) << (8 * UInt32($1)) } }
        func u64(_ o: Int) -> UInt64 { (0..<8).reduce(UInt64(0)) { $0 | UInt64(d[d.startIndex + o + $1]) << (8 * UInt64($1)) } }
        guard d.count >= 22 else {
            throw fail(d.starts(with: [0x50, 0x4B]) ? "truncated: \(d.count) bytes, too short for a zip archive"
                                                      : "not a zip archive (an .npz file is one; \(d.count) bytes)")
        }
        // The end-of-central-directory record: the last "PK\5\6" within the 64 KiB comment limit.
        var eocd = -1
        var o = d.count - 22
        while o >= max(0, d.count - 22 - 65535) {
            if u32(o) == 0x0605_4B50 { eocd = o; break }
            o -= 1
        }
        guard eocd >= 0 else {
            throw fail(d.starts(with: [0x50, 0x4B, 0x03, 0x04])
                       ? "truncated or damaged: the zip archive's end record (central directory) is missing"
                       : "not a zip archive (an .npz file is one)")
        }
        var entryCount = Int(u16(eocd + 10))
        var directorySize = Int(u32(eocd + 12))
        var directoryOffset = Int(u32(eocd + 16))
        if entryCount == 0xFFFF || directorySize == 0xFFFF_FFFF || directoryOffset == 0xFFFF_FFFF {
            // Zip64: a locator just before the end record points at the Zip64 end record.
            let locator = eocd - 20
            guard locator >= 0, u32(locator) == 0x0706_4B50 else { throw fail("damaged: Zip64 end locator missing") }
            let record = Int(u64(locator + 8))
            guard record >= 0, record + 56 <= d.count, u32(record) == 0x0606_4B50 else { throw fail("damaged: Zip64 end record missing") }
            entryCount = Int(u64(record + 32))
            directorySize = Int(u64(record + 40))
            directoryOffset = Int(u64(record + 48))
        }
        guard directoryOffset >= 0, directorySize >= 0, directoryOffset + directorySize <= d.count else {
            throw fail("truncated: the central directory (\(directorySize) bytes at offset \(directoryOffset)) lies beyond the file's \(d.count) bytes")
        }
        var members: [String: Member] = [:], names: [String] = []
        var p = directoryOffset
        for _ in 0..<entryCount {
            guard p + 46 <= directoryOffset + directorySize, u32(p) == 0x0201_4B50 else {
                throw fail("damaged: bad central directory entry at offset \(p)")
            }
            let nameLength = Int(u16(p + 28)), extraLength = Int(u16(p + 30)), commentLength = Int(u16(p + 32))
            guard p + 46 + nameLength + extraLength + commentLength <= d.count else { throw fail("truncated central directory") }
            let name = String(decoding: d[(d.startIndex + p + 46)..<(d.startIndex + p + 46 + nameLength)], as: UTF8.self)
            var m = Member(name: name, method: u16(p + 10), crc: u32(p + 16), compressedSize: Int(u32(p + 20)),
                           size: Int(u32(p + 24)), localHeaderOffset: Int(u32(p + 42)), flags: u16(p + 8))
            // Zip64 extra field (id 1): the 64-bit values of the fields that hold 0xFFFFFFFF, in order.
            var e = p + 46 + nameLength
            let extraEnd = e + extraLength
            while e + 4 <= extraEnd {
                let id = u16(e), size = Int(u16(e + 2))
                if id == 1 {
                    var f = e + 4
                    func next() -> Int? {
                        guard f + 8 <= e + 4 + size else { return nil }
                        defer { f += 8 }
                        return Int(u64(f))
                    }
                    if m.size == 0xFFFF_FFFF, let v = next() { m.size = v }
                    if m.compressedSize == 0xFFFF_FFFF, let v = next() { m.compressedSize = v }
                    if m.localHeaderOffset == 0xFFFF_FFFF, let v = next() { m.localHeaderOffset = v }
                }
                e += 4 + size
            }
            members[name] = m
            names.append(name)
            p += 46 + nameLength + extraLength + commentLength
        }
        self.members = members
        memberNames = names
    }

    /// The bytes of a member, decompressed and checked against its CRC-32.
    func memberData(_ name: String) throws -> Data {
        guard let m = members[name] else {
            throw DataInputError(".npz file \(path): no member '\(name)' (members: \(memberNames.joined(separator: ", ")))")
        }
        func fail(_ problem: String) -> DataInputError { DataInputError(".npz file \(path), member \(name): \(problem)") }
        let d = data
        func u16(_ o: Int) -> Int { Int(d[d.startIndex + o]) | Int(d[d.startIndex + o + 1]) << 8 }
        let h = m.localHeaderOffset
        guard h >= 0, h + 30 <= d.count, d[d.startIndex + h] == 0x50, d[d.startIndex + h + 1] == 0x4B,
              d[d.startIndex + h + 2] == 3, d[d.startIndex + h + 3] == 4 else {
            throw fail("damaged: no local header at offset \(h)")
        }
        if m.flags & 1 != 0 { throw fail("the member is encrypted") }
        let start = h + 30 + u16(h + 26) + u16(h + 28)
        guard start + m.compressedSize <= d.count else {
            throw fail("truncated: \(m.compressedSize) bytes of data at offset \(start), the file has \(d.count)")
        }
        let raw = d[(d.startIndex + start)..<(d.startIndex + start + m.compressedSize)]
        let out: Data
        switch m.method {
        case 0:
            guard m.compressedSize == m.size else { throw fail("damaged: stored member with sizes \(m.compressedSize) ≠ \(m.size)") }
            out = Data(raw)
        case 8: out = try Self.inflate(raw, size: m.size, fail: fail)
        default:
            throw fail("zip compression method \(m.method) is not supported (stored and deflate are: np.savez and np.savez_compressed)")
        }
        let crc = out.withUnsafeBytes { CRC32.checksum($0) }
        guard crc == m.crc else {
            throw fail(String(format: "damaged: CRC-32 %08x, the archive records %08x", crc, m.crc))
        }
        return out
    }

    /// Raw deflate (zip method 8) with zlib, into a buffer of the size the directory records.
    static func inflate(_ raw: Data, size: Int, fail: (String) -> DataInputError) throws -> Data {
        var out = Data(count: size)
        var stream = z_stream()
        // inflateInit2 is a macro; -MAX_WBITS selects raw deflate (no zlib/gzip wrapper).
        guard inflateInit2_(&stream, -MAX_WBITS, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw fail("zlib could not start inflating")
        }
        defer { inflateEnd(&stream) }
        var status: Int32 = Z_OK
        var produced = 0
        raw.withUnsafeBytes { (src: UnsafeRawBufferPointer) in
            out.withUnsafeMutableBytes { (dst: UnsafeMutableRawBufferPointer) in
                var inOffset = 0, outOffset = 0
                // avail_in/avail_out are 32-bit: feed members larger than 4 GiB in pieces.
                repeat {
                    let inChunk = min(src.count - inOffset, Int(UInt32.max))
                    let outChunk = min(dst.count - outOffset, Int(UInt32.max))
                    stream.next_in = UnsafeMutablePointer(mutating: src.baseAddress?.assumingMemoryBound(to: Bytef.self).advanced(by: inOffset))
                    stream.avail_in = uInt(inChunk)
                    // One spare byte of output would be needed to see data beyond `size`; a
                    // zero-size buffer still lets zlib reach the stream end.
                    stream.next_out = dst.baseAddress?.assumingMemoryBound(to: Bytef.self).advanced(by: outOffset)
                    stream.avail_out = uInt(outChunk)
                    status = CHDF5.inflate(&stream, Z_NO_FLUSH)
                    inOffset += inChunk - Int(stream.avail_in)
                    outOffset += outChunk - Int(stream.avail_out)
                } while status == Z_OK && (inOffset < src.count) && (outOffset < dst.count || stream.avail_in > 0)
                produced = outOffset
            }
        }
        switch status {
        case Z_STREAM_END:
            guard produced == size else { throw fail("damaged: inflated to \(produced) bytes, the archive records \(size)") }
            return out
        case Z_OK, Z_BUF_ERROR:
            throw fail(produced >= size ? "damaged: the compressed data inflates to more than the \(size) bytes the archive records"
                                        : "truncated: the compressed data ends after \(produced) of \(size) bytes")
        default:
            let message = stream.msg.map { String(cString: $0) } ?? "error \(status)"
            throw fail("damaged: corrupt deflate data (\(message))")
        }
    }

    /// The array stored under `key` (member `key.npy`).
    public func array(_ key: String) throws -> NumPyArray {
        let member = members[key + ".npy"] != nil ? key + ".npy" : key
        return try NumPyArray.parse(memberData(member), name: "\(path):\(key)")
    }

    public func contains(_ key: String) -> Bool { members[key + ".npy"] != nil || members[key] != nil }
}
