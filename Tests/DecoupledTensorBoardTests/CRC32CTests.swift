import DecoupledHDF5
import Testing

@Suite struct CRC32CTests {
    func crc(_ bytes: [UInt8]) -> UInt32 { bytes.withUnsafeBytes { CRC32C.checksum($0) } }

    /// The check value of the CRC catalogue and the iSCSI test vectors of RFC 3720 (B.4).
    @Test func knownVectors() {
        #expect(crc(Array("123456789".utf8)) == 0xE306_9283)
        #expect(crc([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(crc([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(crc((0..<32).map { UInt8($0) }) == 0x46DD_794E)
        #expect(crc((0..<32).map { UInt8(31 - $0) }) == 0x113F_DB5C)
        #expect(crc([]) == 0)
    }

    /// Fed in pieces of every split point (through both the 8-byte and the byte loop), the
    /// CRC equals the whole buffer's.
    @Test func piecewiseEqualsWhole() {
        let bytes = (0..<53).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        let whole = crc(bytes)
        for split in 0...bytes.count {
            let a = bytes[..<split].withUnsafeBytes { CRC32C.update(0, $0) }
            #expect(bytes[split...].withUnsafeBytes { CRC32C.update(a, $0) } == whole)
        }
    }

    /// TensorFlow's masking (crc32c.h): rotate right by 15, add 0xa282ead8.
    @Test func masking() {
        #expect(CRC32C.masked(0) == 0xA282_EAD8)
        let crc: UInt32 = 0xE306_9283
        #expect(CRC32C.masked(crc) == ((crc >> 15 | crc << 17) &+ 0xA282_EAD8))
        #expect(CRC32C.masked(1) == 0x0002_0000 &+ 0xA282_EAD8)
    }
}
