import DecoupledHDF5
import Foundation

/// TFRecord framing, the container of TensorBoard event files: each record is
///
///     uint64 length (little-endian) | uint32 masked CRC-32C of those 8 bytes
///     data (length bytes)           | uint32 masked CRC-32C of the data
///
/// (little-endian throughout; see `CRC32C.masked`).
enum RecordFraming {
    /// Bytes of framing around the data: length, its CRC, the data's CRC.
    static let overhead = 16

    /// `data` framed as one record.
    static func frame(_ data: Data) -> Data {
        var out = Data(capacity: data.count + overhead)
        var length = UInt64(data.count).littleEndian
        let lengthBytes = withUnsafeBytes(of: &length) { Data($0) }
        out.append(lengthBytes)
        appendLittleEndian(lengthBytes.withUnsafeBytes { CRC32C.masked(CRC32C.checksum($0)) }, to: &out)
        out.append(data)
        appendLittleEndian(data.withUnsafeBytes { CRC32C.masked(CRC32C.checksum($0)) }, to: &out)
        return out
    }

    private static func appendLittleEndian(_ x: UInt32, to out: inout Data) {
        var v = x.littleEndian
        withUnsafeBytes(of: &v) { out.append(contentsOf: $0) }
    }

    /// A record found in a file: where it starts and its data.
    struct Record {
        let offset: Int
        let data: Data
    }

    /// The records of `bytes` (the contents of `file`, named in errors). A checksum that does
    /// not match is an error naming the record's offset. A file that ends inside a record
    /// whose length checksum is intact (a write cut off, or one in progress) is an error too,
    /// unless `allowTornEnd`: then the records before it are returned with the offset of the
    /// torn record.
    static func records(in bytes: Data, file: String, allowTornEnd: Bool) throws -> (records: [Record], tornAt: Int?) {
        var records: [Record] = []
        var tornOffset: Int? = nil
        try bytes.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let n = raw.count
            var at = 0
            func u32(_ i: Int) -> UInt32 { UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: i, as: UInt32.self)) }
            func tornError(_ what: String) -> EventFileError {
                EventFileError(file: file, offset: at, message: "the file ends inside this record (\(what)): truncated, or still being written")
            }
            while at < n {
                if n - at < 12 {
                    if allowTornEnd { break }
                    throw tornError("\(n - at) of the 12 bytes of its length and length checksum")
                }
                let lengthField = UnsafeRawBufferPointer(rebasing: raw[at..<at + 8])
                let lengthCRC = CRC32C.masked(CRC32C.checksum(lengthField))
                guard lengthCRC == u32(at + 8) else {
                    throw EventFileError(file: file, offset: at, message: String(format: "length checksum mismatch (stored 0x%08x, computed 0x%08x): the file is corrupted", u32(at + 8), lengthCRC))
                }
                let length = UInt64(littleEndian: lengthField.loadUnaligned(as: UInt64.self))
                let available = UInt64(n - at - 12)
                if length > available || available - length < 4 {
                    if allowTornEnd { break }
                    throw tornError("its length says \(length) data bytes plus a 4-byte checksum, \(available) bytes remain")
                }
                let dataStart = at + 12, dataEnd = dataStart + Int(length)
                let dataCRC = CRC32C.masked(CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[dataStart..<dataEnd])))
                guard dataCRC == u32(dataEnd) else {
                    throw EventFileError(file: file, offset: at, message: String(format: "data checksum mismatch (stored 0x%08x, computed 0x%08x) over its %llu data bytes: the file is corrupted", u32(dataEnd), dataCRC, length))
                }
                records.append(Record(offset: at, data: Data(raw[dataStart..<dataEnd])))
                at = dataEnd + 4
            }
            if at < n { tornOffset = at }
        }
        return (records, tornOffset)
    }
}
