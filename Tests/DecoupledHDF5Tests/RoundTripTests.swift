import Foundation
import Testing
@testable import DecoupledHDF5

/// Values that exercise each type's range: negatives, extremes, fractions.
func sampleValues<T: H5Scalar>(_: T.Type, count: Int, salt: Int = 0) -> [T] {
    (0..<count).map { i -> T in
        let k = i + salt
        switch T.h5Type {
        case .int8: return Int8(truncatingIfNeeded: k * 37 - 128) as! T
        case .int16: return Int16(truncatingIfNeeded: k * 1009 - 30000) as! T
        case .int32: return (k == 0 ? Int32.min : k == 1 ? Int32.max : Int32(truncatingIfNeeded: k * 100_003 - 5_000_000)) as! T
        case .int64: return (T.self == Int.self ? Int(k * 1_000_000_007 - 1) as! T
                             : (k == 0 ? Int64.min : Int64(k) * 9_000_000_000_000 - 1) as! T)
        case .uint8: return UInt8(truncatingIfNeeded: k * 13) as! T
        case .uint16: return UInt16(truncatingIfNeeded: k * 4099) as! T
        case .uint32: return UInt32(truncatingIfNeeded: k * 400_009) as! T
        case .uint64: return (k == 0 ? UInt64.max : UInt64(k) * 18_000_000_000_000_000 / 7) as! T
        case .float32: return (k == 0 ? Float.greatestFiniteMagnitude : Float(k) * -0.37 + 1e-3) as! T
        case .float64: return (k == 0 ? Double.leastNonzeroMagnitude : Double(k) * 3.14159e-7 - 12.5) as! T
        }
    }
}

let storageVariants: [(String, H5DatasetOptions)] = [
    ("contiguous", H5DatasetOptions()),
    ("chunked", H5DatasetOptions(chunkShape: [8, 3])),
    ("gzip", H5DatasetOptions(chunkShape: [8, 3], gzipLevel: 6)),
    ("gzip+shuffle", H5DatasetOptions(chunkShape: [5, 5], gzipLevel: 4, shuffle: true)),
    ("fletcher32", H5DatasetOptions(chunkShape: [16, 2], fletcher32: true)),
    ("all", H5DatasetOptions(chunkShape: [7, 4], gzipLevel: 9, shuffle: true, fletcher32: true)),
]

func roundTrip<T: H5Scalar & Equatable>(_ type: T.Type, in dir: TempDir) throws {
    let path = dir.file("rt-\(T.h5Type).h5")
    let shape = [37, 5]
    let values = sampleValues(T.self, count: 37 * 5)
    do {
        let f = try H5File(path, mode: .create)
        for (name, options) in storageVariants {
            try f.createDataset("/g/\(name)", values: values, shape: shape, options: options)
        }
        try f.close()
    }
    let f = try H5File(path, mode: .readWrite)
    for (name, options) in storageVariants {
        let d = try f.openDataset("/g/\(name)")
        let info = try d.info()
        #expect(info.shape == shape)
        #expect(info.elementType == T.h5Type)
        #expect(info.chunkShape == options.chunkShape, "\(name)")
        var expectedFilters: [Int32] = []
        if options.shuffle { expectedFilters.append(2) }
        if options.gzipLevel != nil { expectedFilters.append(1) }
        if options.fletcher32 { expectedFilters.append(3) }
        #expect(info.filters.map(\.id) == expectedFilters, "\(name)")
        #expect(try d.read(as: T.self) == values, "\(T.h5Type) \(name) whole read")
        // Hyperslab rows 3..<20, columns 1..<4.
        let slab = try d.read(start: [3, 1], count: [17, 3], as: T.self)
        var expected: [T] = []
        for r in 3..<20 { for c in 1..<4 { expected.append(values[r * 5 + c]) } }
        #expect(slab == expected, "\(T.h5Type) \(name) hyperslab")
        // Hyperslab write, then whole read shows exactly that change.
        let patch = sampleValues(T.self, count: 4 * 2, salt: 11)
        try d.write(patch, start: [30, 2], count: [4, 2])
        var after = values
        for r in 0..<4 { for c in 0..<2 { after[(30 + r) * 5 + 2 + c] = patch[r * 2 + c] } }
        #expect(try d.read(as: T.self) == after, "\(T.h5Type) \(name) after hyperslab write")
    }
}

@Suite struct RoundTripTests {
    @Test func everyTypeAndFilter() throws {
        let dir = TempDir()
        try roundTrip(Float.self, in: dir)
        try roundTrip(Double.self, in: dir)
        try roundTrip(Int32.self, in: dir)
        try roundTrip(Int64.self, in: dir)
        try roundTrip(UInt8.self, in: dir)
        try roundTrip(UInt64.self, in: dir)
        try roundTrip(Int8.self, in: dir)
        try roundTrip(Int16.self, in: dir)
        try roundTrip(UInt16.self, in: dir)
        try roundTrip(UInt32.self, in: dir)
    }

    @Test func attributesRoundTrip() throws {
        let dir = TempDir()
        let path = dir.file("attrs.h5")
        do {
            let f = try H5File(path, mode: .create)
            try f.setAttribute("i64", Int64(-9_000_000_000_000))
            try f.setAttribute("u64", UInt64.max)
            try f.setAttribute("f64", 0.1)
            try f.setAttribute("f32", Float(2.5))
            try f.setAttribute("i32s", [Int32(1), -2, 3])
            try f.setAttribute("text", "Grüße, 世界")
            try f.setAttribute("empty", "")
            try f.setAttribute("text", "replaced")  // overwrite keeps one attribute
            let g = try f.createGroup("a/b")
            try g.setAttribute("depth", Int32(2))
            try g.close()
            try f.close()
        }
        let f = try H5File(path)
        #expect(try f.attributeNames() == ["empty", "f32", "f64", "i32s", "i64", "text", "u64"])
        #expect(try f.integerAttribute("i64") == -9_000_000_000_000)
        #expect(try f.attribute("u64") == .unsignedIntegers([UInt64.max]))
        #expect(try f.doubleAttribute("f64") == 0.1)
        #expect(try f.doubleAttribute("f32") == 2.5)
        #expect(try f.numericAttribute("i32s", as: Int32.self) == [1, -2, 3])
        #expect(try f.stringAttribute("text") == "replaced")
        #expect(try f.stringAttribute("empty") == "")
        #expect(try f.openGroup("/a/b").integerAttribute("depth") == 2)
        expectError(["no such attribute", "missing", "empty, f32"]) { _ = try f.attribute("missing") }
        expectError(["expected one string", "0.1"]) { _ = try f.stringAttribute("f64") }
        expectError(["expected one integer"]) { _ = try f.integerAttribute("text") }
        expectError(["representable as uint8"]) { _ = try f.numericAttribute("i32s", as: UInt8.self) }
    }

    @Test func extendibleDatasetAndGroups() throws {
        let dir = TempDir()
        let f = try H5File(dir.file("ext.h5"), mode: .create)
        let d = try f.createDataset("/grow", type: .float64, shape: [0, 3],
                                    options: H5DatasetOptions(chunkShape: [4, 3], maxShape: [nil, 3]))
        for step in 0..<5 {
            try d.setExtent([(step + 1) * 2, 3])
            try d.write([Double](repeating: Double(step), count: 6), start: [step * 2, 0], count: [2, 3])
        }
        #expect(try d.shape() == [10, 3])
        #expect(try d.read(as: Double.self) == (0..<5).flatMap { [Double](repeating: Double($0), count: 6) })
        expectError(["exceeds the maximum shape"]) { try d.setExtent([10, 4]) }
        try f.createGroup("x/y/z")
        #expect(try f.contains("/x/y/z"))
        #expect(try f.contains("x/nope") == false)
        #expect(try f.kind(of: "x/y") == .group)
        #expect(try f.kind(of: "grow") == .dataset)
        #expect(try f.childNames() == ["grow", "x"])
        try f.remove("x")
        #expect(try f.contains("x") == false)
        // A scalar dataset.
        let s = try f.createDataset("scalar", type: .int64, shape: [])
        try s.write([Int64(42)])
        #expect(try s.read(as: Int64.self) == [42])
    }

    @Test func closeRefusesWhileObjectsOpenThenSyncs() throws {
        let dir = TempDir()
        let f = try H5File(dir.file("close.h5"), mode: .create)
        let d = try f.createDataset("v", values: [1.0, 2.0, 3.0])
        expectError(["close file", "still open", "/v"]) { try f.close() }
        #expect(f.isOpen)
        try f.sync()
        #expect(try f.fileDescriptor() >= 0)
        try d.close()
        expectError(["already closed"]) { _ = try d.read(as: Double.self) }
        try f.close()
        #expect(!f.isOpen)
        try f.close()  // idempotent
        #expect(try H5File(dir.file("close.h5")).openDataset("v").read(as: Double.self) == [1, 2, 3])
    }
}
