import Foundation
import Testing
@testable import DecoupledHDF5

/// Bad input gives a clear error naming the file/object and what was expected, never a crash.
@Suite struct ErrorTests {
    @Test func missingFile() throws {
        expectError(["cannot open file", "/nonexistent/dir/none.h5", "no such file"]) {
            _ = try H5File("/nonexistent/dir/none.h5")
        }
        expectError(["/nonexistent/none.h5", "no such file"]) { _ = try DatasetFile(path: "/nonexistent/none.h5") }
    }

    @Test func notAnHDF5File() throws {
        let dir = TempDir()
        let path = dir.file("text.h5")
        try String(repeating: "this is not HDF5\n", count: 100).write(toFile: path, atomically: true, encoding: .utf8)
        expectError(["cannot open file", path, "not an HDF5 file"]) { _ = try H5File(path) }
        expectError([dir.path, "it is a directory"]) { _ = try H5File(dir.path) }
    }

    @Test func truncatedFile() throws {
        let dir = TempDir()
        let path = try makeDataset(dir.file("full.h5"), train: 500, test: 100)
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let cut = dir.file("cut.h5")
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: cut))
        expectError(["cannot open file", cut, "truncated"]) { _ = try DatasetFile(path: cut) }
    }

    @Test func missingDataset() throws {
        let dir = TempDir()
        let path = dir.file("partial.h5")
        do {
            let f = try H5File(path, mode: .create)
            try f.createDataset("train/x", values: [UInt8](repeating: 1, count: 20), shape: [4, 5])
            try f.createDataset("train/y", values: [Int64](repeating: 0, count: 4))
            try f.setAttribute("num_classes", Int64(2))
            try f.setAttribute("scale", 1.0)
            try f.close()
        }
        expectError([path, "/test/x", "no such object", "train"]) { _ = try DatasetFile(path: path) }
        let f = try H5File(path)
        expectError(["open dataset", "/train/z", path, "no such object", "/train holds: x, y"]) { _ = try f.openDataset("train/z") }
        expectError(["open dataset", "/train", "is a group"]) { _ = try f.openDataset("train") }
        expectError(["/nope/x", "no group /nope"]) { _ = try f.openDataset("nope/x") }
    }

    /// Writes a dataset file with h5py-free control over each array, for the format checks.
    func writeFile(_ path: String, xTrain: (H5ScalarType, [Int]) = (.uint8, [10, 4]), yTrain: (H5ScalarType, [Int]) = (.int64, [10]),
                   labels: [Int64]? = nil, numClasses: Int64? = 3, scale: Double? = 1.0 / 255) throws {
        let f = try H5File(path, mode: .create)
        func make(_ name: String, _ spec: (H5ScalarType, [Int]), fill: [Int64]? = nil) throws {
            let d = try f.createDataset(name, type: spec.0, shape: spec.1)
            let n = spec.1.reduce(1, *)
            let v = fill ?? (0..<n).map { Int64($0 % 3) }
            try d.write(v.map(Double.init), converting: true)
        }
        try make("train/x", xTrain)
        try make("train/y", yTrain, fill: labels)
        try make("test/x", (xTrain.0, [2] + xTrain.1.dropFirst()))
        try make("test/y", (yTrain.0, [2]))
        if let numClasses { try f.setAttribute("num_classes", numClasses) }
        if let scale { try f.setAttribute("scale", scale) }
        try f.close()
    }

    @Test func wrongDtype() throws {
        let dir = TempDir()
        let a = dir.file("f64.h5")
        try writeFile(a, xTrain: (.float64, [10, 4]))
        expectError([a, "/train/x", "expected features of type uint8 or float32", "found float64"]) { _ = try DatasetFile(path: a) }
        let b = dir.file("floatlabels.h5")
        try writeFile(b, yTrain: (.float32, [10]))
        expectError([b, "/train/y", "expected integer labels", "found float32"]) { _ = try DatasetFile(path: b) }
        // Reading a dataset as the wrong Swift type without conversion.
        let f = try H5File(a)
        expectError(["/train/x", "holds float64, not float32"]) { _ = try f.openDataset("train/x").read(as: Float.self) }
    }

    @Test func wrongRank() throws {
        let dir = TempDir()
        let a = dir.file("rank1x.h5")
        try writeFile(a, xTrain: (.uint8, [10]))
        expectError([a, "/train/x", "rank ≥ 2", "rank 1"]) { _ = try DatasetFile(path: a) }
        let b = dir.file("rank2y.h5")
        try writeFile(b, yTrain: (.int64, [10, 1]))
        expectError([b, "/train/y", "expected rank 1", "rank 2, shape [10, 1]"]) { _ = try DatasetFile(path: b) }
    }

    @Test func labelsOutOfRange() throws {
        let dir = TempDir()
        let a = dir.file("range.h5")
        try writeFile(a, labels: [0, 1, 2, 0, 1, 2, 0, 3, 1, 1])
        expectError([a, "/train/y", "labels in 0..<3", "label 3 at index 7"]) { _ = try DatasetFile(path: a) }
        let b = dir.file("negative.h5")
        try writeFile(b, labels: [0, 1, -1, 0, 1, 2, 0, 2, 1, 1])
        expectError([b, "/train/y", "label -1 at index 2"]) { _ = try DatasetFile(path: b) }
    }

    @Test func lengthMismatch() throws {
        let dir = TempDir()
        let a = dir.file("len.h5")
        try writeFile(a, yTrain: (.int64, [9]))
        expectError([a, "/train/y", "as many labels as /train/x has samples (10)", "9 labels"]) { _ = try DatasetFile(path: a) }
    }

    @Test func badAttributes() throws {
        let dir = TempDir()
        let a = dir.file("nonc.h5")
        try writeFile(a, numClasses: nil)
        let inferred = try DatasetFile(path: a)  // without num_classes: largest label + 1, with a notice
        #expect(inferred.numClasses == 3 && inferred.notices.first?.contains("inferred 3") == true)
        let b = dir.file("zero.h5")
        try writeFile(b, numClasses: 0)
        expectError([b, "num_classes", "an integer in 1...", "found 0"]) { _ = try DatasetFile(path: b) }
        let c = dir.file("noscale.h5")
        try writeFile(c, scale: nil)
        expectError([c, "scale", "for uint8 features"]) { _ = try DatasetFile(path: c) }
        let d = dir.file("negscale.h5")
        try writeFile(d, scale: -1)
        expectError([d, "scale", "positive", "-1"]) { _ = try DatasetFile(path: d) }
    }

    @Test func hyperslabOutOfBoundsAndBadOptions() throws {
        let dir = TempDir()
        let f = try H5File(dir.file("b.h5"), mode: .create)
        let d = try f.createDataset("m", values: [Float](repeating: 0, count: 12), shape: [3, 4])
        expectError(["'/m'", "start [2, 0] count [2, 4] lies outside the shape [3, 4]"]) {
            _ = try d.read(start: [2, 0], count: [2, 4], as: Float.self)
        }
        expectError(["rank 2"]) { _ = try d.read(start: [0], count: [3], as: Float.self) }
        expectError(["got 5 values", "needs 4"]) { try d.write([Float](repeating: 1, count: 5), start: [0, 0], count: [1, 4]) }
        expectError(["need a chunk shape"]) { _ = try f.createDataset("g", type: .float32, shape: [4], options: H5DatasetOptions(gzipLevel: 4)) }
        expectError(["gzip level must be 0...9"]) {
            _ = try f.createDataset("g", type: .float32, shape: [4], options: H5DatasetOptions(chunkShape: [2], gzipLevel: 12))
        }
        expectError(["already exists"]) { _ = try f.createDataset("m", type: .float32, shape: [4]) }
    }

    /// Fletcher-32 turns silent corruption into a read error.
    @Test func fletcher32DetectsCorruption() throws {
        let dir = TempDir()
        let path = dir.file("sum.h5")
        let values = (0..<4096).map { Float($0) * 0.25 }
        do {
            let f = try H5File(path, mode: .create)
            try f.createDataset("v", values: values, options: H5DatasetOptions(chunkShape: [4096], fletcher32: true))
            try f.close()
        }
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        // Find the stored value 1000.25 (bytes of Float) and flip one bit in it.
        let needle = withUnsafeBytes(of: Float(1000.25)) { Data($0) }
        let at = try #require(bytes.range(of: needle))
        bytes[at.lowerBound] ^= 0x01
        try bytes.write(to: URL(fileURLWithPath: path))
        let f = try H5File(path)
        expectError(["read", "'/v'", path]) { _ = try f.openDataset("v").read(as: Float.self) }
        do {
            _ = try f.openDataset("v").read(as: Float.self)
        } catch let e as HDF5Error {
            #expect(e.stack.joined().lowercased().contains("fletcher32") || e.reason.lowercased().contains("checksum")
                    || e.stack.joined().lowercased().contains("checksum"), "stack: \(e.stack)")
        }
    }
}
