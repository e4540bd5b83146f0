import Foundation
import Testing
@testable import DecoupledHDF5

/// Writes an unsigned-byte IDX file.
func writeIDX(_ path: String, dims: [Int], data: [UInt8], gzip: Bool) throws {
    var bytes: [UInt8] = [0, 0, 0x08, UInt8(dims.count)]
    for d in dims { bytes += [UInt8((d >> 24) & 255), UInt8((d >> 16) & 255), UInt8((d >> 8) & 255), UInt8(d & 255)] }
    bytes += data
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    if gzip {
        try runChildProcess("/bin/gzip", ["-f", path])
    }
}

/// A miniature Fashion-MNIST: `n` 4×4 images, pixel values from the index, label i % 10.
func writeMiniFashion(_ dir: String, train: Int, test: Int, gzip: Bool) throws {
    for (prefix, n) in [("train", train), ("t10k", test)] {
        let pixels: [UInt8] = (0..<(n * 16)).map { (j: Int) -> UInt8 in UInt8((j * 3) % 256) }
        try writeIDX("\(dir)/\(prefix)-images-idx3-ubyte", dims: [n, 4, 4], data: pixels, gzip: gzip)
        try writeIDX("\(dir)/\(prefix)-labels-idx1-ubyte", dims: [n], data: (0..<n).map { UInt8($0 % 10) }, gzip: gzip)
    }
}

@Suite struct ImporterTests {
    @Test(arguments: [true, false])
    func fashionMNISTImportAndStratifiedSubset(gzip: Bool) throws {
        let dir = TempDir()
        try writeMiniFashion(dir.path, train: 200, test: 50, gzip: gzip)
        let full = dir.file("full.h5")
        let s = try FashionMNIST.importDataset(directory: dir.path, output: full)
        #expect(s.trainCount == 200 && s.testCount == 50 && s.featureCount == 16 && s.numClasses == 10)
        let ds = try DatasetFile(path: full)
        #expect(ds.featureType == .uint8 && ds.scale == Float(1.0 / 255.0))
        #expect(ds.license.contains("MIT") && ds.source.contains("Fashion-MNIST"))
        let x = try ds.features(.train).read(start: [7, 0], count: [1, 16], as: UInt8.self)
        let wantX: [UInt8] = (0..<16).map { (j: Int) -> UInt8 in UInt8(((7 * 16 + j) * 3) % 256) }
        #expect(x == wantX)
        let wantY: [UInt8] = (0..<50).map { (j: Int) -> UInt8 in UInt8(j % 10) }
        #expect(try ds.labels(.test).read(as: UInt8.self) == wantY)

        let sub = dir.file("sub.h5")
        try FashionMNIST.importDataset(directory: dir.path, output: sub, trainPerClass: 5, testPerClass: 2, seed: 3)
        let small = try DatasetFile(path: sub)
        #expect(small.trainCount == 50 && small.testCount == 20)
        #expect(try small.classCounts(.train) == [Int](repeating: 5, count: 10))
        #expect(try small.classCounts(.test) == [Int](repeating: 2, count: 10))
        #expect(small.source.contains("stratified subset"))
        // Each kept image is the original image of the same label (rows were not mixed up).
        let labels = try small.labels(.train).read(as: UInt8.self)
        let images = try small.features(.train).read(as: UInt8.self)
        func originalImage(_ j: Int) -> [UInt8] { (0..<16).map { (k: Int) -> UInt8 in UInt8(((j * 16 + k) * 3) % 256) } }
        for r in 0..<50 {
            let row = Array(images[(r * 16)..<(r * 16 + 16)])
            let matches: [Int] = (0..<200).filter { originalImage($0) == row }
            let labelOK = matches.contains { $0 % 10 == Int(labels[r]) }
            #expect(labelOK, "row \(r) image/label pair")
        }
        // Reproducible for a seed, different for another.
        let again = dir.file("again.h5"), other = dir.file("other.h5")
        try FashionMNIST.importDataset(directory: dir.path, output: again, trainPerClass: 5, testPerClass: 2, seed: 3)
        try FashionMNIST.importDataset(directory: dir.path, output: other, trainPerClass: 5, testPerClass: 2, seed: 4)
        #expect(try DatasetFile(path: again).features(.train).read(as: UInt8.self) == images)
        #expect(try DatasetFile(path: other).features(.train).read(as: UInt8.self) != images)
    }

    @Test func badIDXInput() throws {
        let dir = TempDir()
        expectError(["/nonexistent-fmnist", "does not exist"]) { try FashionMNIST.importDataset(directory: "/nonexistent-fmnist", output: dir.file("o.h5")) }
        try writeMiniFashion(dir.path, train: 20, test: 10, gzip: false)
        // Labels file shorter than its header says.
        let labels = dir.file("t10k-labels-idx1-ubyte")
        try writeIDX(labels, dims: [10], data: [0, 1, 2], gzip: false)
        expectError([labels, "truncated", "expected 10 bytes", "found 3"]) { try FashionMNIST.importDataset(directory: dir.path, output: dir.file("o.h5")) }
        try writeIDX(labels, dims: [10], data: [0, 1, 2, 3, 4, 5, 6, 7, 8, 12], gzip: false)
        expectError([labels, "label 12 at index 9", "outside 0..<10"]) { try FashionMNIST.importDataset(directory: dir.path, output: dir.file("o.h5")) }
        try writeIDX(labels, dims: [9], data: [UInt8](repeating: 0, count: 9), gzip: false)
        expectError(["has 10 images", "has 9 labels"]) { try FashionMNIST.importDataset(directory: dir.path, output: dir.file("o.h5")) }
        try "hello".write(toFile: labels, atomically: true, encoding: .utf8)
        expectError([labels, "not an IDX file"]) { try FashionMNIST.importDataset(directory: dir.path, output: dir.file("o.h5")) }
        try FileManager.default.removeItem(atPath: labels)
        expectError(["has no t10k-labels-idx1-ubyte.gz or t10k-labels-idx1-ubyte"]) { try FashionMNIST.importDataset(directory: dir.path, output: dir.file("o.h5")) }
        expectError(["class 0", "fewer than the 3 requested"]) {
            try writeMiniFashion(dir.path, train: 20, test: 10, gzip: false)
            try FashionMNIST.importDataset(directory: dir.path, output: dir.file("o.h5"), trainPerClass: 3)
        }
        #expect(!FileManager.default.fileExists(atPath: dir.file("o.h5")), "failed imports leave no output")
        #expect(!FileManager.default.fileExists(atPath: dir.file("o.h5.tmp")), "nor a temporary file")
    }

    @Test func csvImport() throws {
        let dir = TempDir()
        let train = dir.file("train.csv"), test = dir.file("test.csv")
        var text = "a,b,c,label\n"
        for i in 0..<40 { text += "\(Double(i) * 0.5),\(-i),\(i % 7),\(i % 4)\n" }
        try text.write(toFile: train, atomically: true, encoding: .utf8)
        try "a,b,c,label\n1,2,3,0\r\n\n4,5,6,3\n".write(toFile: test, atomically: true, encoding: .utf8)
        var o = CSVImportOptions(trainPath: train, output: dir.file("csv.h5"))
        o.testPath = test
        o.labelColumn = "label"
        let s = try CSVImport.importDataset(o)
        #expect(s.trainCount == 40 && s.testCount == 2 && s.featureCount == 3 && s.numClasses == 4)
        let ds = try DatasetFile(path: o.output)
        #expect(ds.featureType == .float32 && ds.scale == 1)
        #expect(try ds.features(.train).read(start: [9, 0], count: [1, 3], as: Float.self) == [4.5, -9, 2])
        #expect(try ds.features(.test).read(as: Float.self) == [1, 2, 3, 4, 5, 6])
        #expect(try ds.classCounts(.train) == [10, 10, 10, 10])

        // No test file: an exact, seeded fraction of the rows becomes the test split.
        var p = CSVImportOptions(trainPath: train, output: dir.file("split.h5"))
        p.testFraction = 0.25
        p.labelColumn = "3"
        p.featureType = .float32
        try CSVImport.importDataset(p)
        let split = try DatasetFile(path: p.output)
        #expect(split.trainCount == 30 && split.testCount == 10)
        let all = try split.features(.train).read(as: Float.self) + split.features(.test).read(as: Float.self)
        let firstColumn: Set<Float> = Set(stride(from: 0, to: all.count, by: 3).map { all[$0] })
        let expectedColumn: Set<Float> = Set((0..<40).map { Float($0) * 0.5 })
        #expect(firstColumn == expectedColumn)
    }

    @Test func csvErrors() throws {
        let dir = TempDir()
        let bad = dir.file("bad.csv")
        try "x,y,label\n1,2,0\n3,oops,1\n".write(toFile: bad, atomically: true, encoding: .utf8)
        var o = CSVImportOptions(trainPath: bad, output: dir.file("o.h5"))
        expectError(["\(bad):3", "column 1", "'oops'", "not a finite number"]) { try CSVImport.importDataset(o) }
        try "1,2,0\n3,4\n".write(toFile: bad, atomically: true, encoding: .utf8)
        expectError(["\(bad):2", "found 2 columns, expected 3"]) { try CSVImport.importDataset(o) }
        try "1,2,0\n3,4,\n".write(toFile: bad, atomically: true, encoding: .utf8)
        expectError(["\(bad):2", "the label in column 2 is empty"]) { try CSVImport.importDataset(o) }
        try "1,2,7\n".write(toFile: bad, atomically: true, encoding: .utf8)
        o.numClasses = 5
        expectError(["\(bad):1", "label 7 is outside 0..<5"]) { try CSVImport.importDataset(o) }
        o.numClasses = nil
        try "300,2,1\n".write(toFile: bad, atomically: true, encoding: .utf8)
        o.featureType = .uint8
        expectError(["\(bad):1", "'300'", "not an integer 0...255"]) { try CSVImport.importDataset(o) }
        o.labelColumn = "name"
        expectError(["no column named 'name'", "no header"]) { try CSVImport.importDataset(o) }
        o = CSVImportOptions(trainPath: dir.file("none.csv"), output: dir.file("o.h5"))
        expectError(["none.csv", "no such file"]) { try CSVImport.importDataset(o) }
    }

    @Test func inspectReport() throws {
        let dir = TempDir()
        let path = try makeDataset(dir.file("i.h5"), train: 100, test: 20, classes: 4)
        let r = try DatasetInspector.inspect(path: path)
        #expect(r.formatError == nil)
        for s in ["/train/x  uint8 [100, 6]  chunks [16, 6], shuffle + gzip(1)", "/train/y  int64 [100]",
                  "@num_classes = 4", "@source = \"test\"", "dataset format: valid", "class balance /train/y", "class 3: 25 (25.0%)", "class 0: 5 (25.0%)"] {
            #expect(r.text.contains(s), "missing \"\(s)\" in:\n\(r.text)")
        }
        let bad = dir.file("bad.h5")
        do {
            let f = try H5File(bad, mode: .create)
            try f.createDataset("train/x", values: [Float](repeating: 0, count: 4), shape: [2, 2])
            try f.close()
        }
        let rb = try DatasetInspector.inspect(path: bad)
        #expect(rb.formatError != nil)
        #expect(rb.text.contains("dataset format: INVALID") && rb.text.contains("/train/y"))
    }

    /// The shipped subset is what datasets/README.md says it is.
    @Test func shippedSubset() throws {
        let path = repoRoot + "/datasets/fashion-mnist-small.h5"
        let ds = try DatasetFile(path: path)
        #expect(ds.trainCount == 10_000 && ds.testCount == 2_000)
        #expect(ds.featureCount == 784 && ds.numClasses == 10 && ds.featureType == .uint8)
        #expect(try ds.classCounts(.train) == [Int](repeating: 1_000, count: 10))
        #expect(try ds.classCounts(.test) == [Int](repeating: 200, count: 10))
        #expect(ds.license.contains("MIT"))
        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int ?? 0
        #expect(size < 8 << 20, "keep the shipped subset small: \(size) bytes")
    }
}
