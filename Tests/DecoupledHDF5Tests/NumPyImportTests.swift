import Foundation
import Testing
@testable import DecoupledHDF5

/// The committed fixtures of scripts/datasets/make-numpy-fixtures.py (written by real NumPy).
let numpyFixtures = repoRoot + "/Tests/DecoupledHDF5Tests/Fixtures/numpy/"

/// The fixtures' formulas: train image i is (i·6 + k) % 256 for its 6 pixels, label i % 3;
/// test image i is (200 + i·6 + k) % 256, label (i + 1) % 3.
func fixturePixels(_ i: Int, test: Bool = false) -> [UInt8] { (0..<6).map { UInt8(((test ? 200 : 0) + i * 6 + $0) % 256) } }

@Suite struct NumPyImportTests {
    @Test(arguments: ["keras-stored.npz", "keras-compressed.npz"])
    func kerasStyleArchive(name: String) throws {
        let dir = TempDir()
        let out = dir.file("out.h5")
        let s = try NumPyImport.importArchive(numpyFixtures + name, options: NumPyImportOptions(output: out))
        #expect(s.trainCount == 12 && s.testCount == 4 && s.numClasses == 3 && s.notes.isEmpty)
        let ds = try DatasetFile(path: out)
        #expect(ds.sampleShape == [2, 3] && ds.featureType == .uint8 && ds.scale == Float(1.0 / 255.0))
        #expect(try ds.features(.train).read(as: UInt8.self) == (0..<12).flatMap { fixturePixels($0) })
        #expect(try ds.features(.test).read(as: UInt8.self) == (0..<4).flatMap { fixturePixels($0, test: true) })
        #expect(try ds.labels(.train).read(as: UInt8.self) == (0..<12).map { UInt8($0 % 3) })
        #expect(try ds.labels(.test).read(as: UInt8.self) == (0..<4).map { UInt8(($0 + 1) % 3) })
        #expect(ds.source.contains(name))
    }

    @Test func npyFilesAllVersionsAndOrders() throws {
        let dir = TempDir()
        // Format versions 1.0, 2.0, 3.0 and a Fortran-order float32 array all give the same images.
        for images in ["x_train.npy", "x_train_v2.npy", "x_train_v3.npy", "x_train_fortran.npy"] {
            let out = dir.file("\(images).h5")
            try NumPyImport.importFiles(images: numpyFixtures + images, labels: numpyFixtures + "y_train.npy",
                                        testImages: numpyFixtures + "x_test.npy", testLabels: numpyFixtures + "y_test.npy",
                                        options: NumPyImportOptions(output: out))
            let ds = try DatasetFile(path: out)
            let want = (0..<12).flatMap { fixturePixels($0) }
            if ds.featureType == .uint8 {
                #expect(try ds.features(.train).read(as: UInt8.self) == want, "\(images)")
            } else {
                #expect(images == "x_train_fortran.npy" && ds.scale == 1)
                #expect(try ds.features(.train).read(as: Float.self) == want.map(Float.init), "\(images)")
            }
        }
        // float64 images of shape (N, 6) and labels of shape (N, 1), no test arrays: an exact,
        // seeded fraction is held out, and every sample lands in one split with its label.
        var o = NumPyImportOptions(output: dir.file("held.h5"))
        o.testFraction = 0.25
        let s = try NumPyImport.importFiles(images: numpyFixtures + "x_train_f64.npy", labels: numpyFixtures + "y_train_col.npy",
                                            testImages: nil, testLabels: nil, options: o)
        #expect(s.trainCount == 9 && s.testCount == 3)
        let ds = try DatasetFile(path: o.output)
        #expect(ds.featureType == .float32 && ds.sampleShape == [6])
        var seen: [Int] = []
        for split in DatasetSplit.allCases {
            let x = try ds.features(split).read(as: Float.self), y = try ds.labels(split).read(as: UInt8.self)
            for r in 0..<y.count {
                let i = Int(x[r * 6] * 2) / 6  // pixel 0 of sample i is i·6, halved
                #expect(Array(x[(r * 6)..<(r * 6 + 6)]) == fixturePixels(i).map { Float($0) / 2 })
                #expect(Int(y[r]) == i % 3)
                seen.append(i)
            }
            // Each split keeps the original order.
            #expect(seen.suffix(y.count) == seen.suffix(y.count).sorted())
        }
        #expect(seen.sorted() == Array(0..<12))
        let again = dir.file("again.h5")
        o.output = again
        try NumPyImport.importFiles(images: numpyFixtures + "x_train_f64.npy", labels: numpyFixtures + "y_train_col.npy",
                                    testImages: nil, testLabels: nil, options: o)
        #expect(try DatasetFile(path: again).features(.test).read(as: Float.self) == ds.features(.test).read(as: Float.self))
    }

    @Test func archiveOptions() throws {
        let dir = TempDir()
        var keys = NumPyImport.Keys()
        (keys.images, keys.labels, keys.testImages, keys.testLabels) = ("X", "y", "Xt", "yt")
        var o = NumPyImportOptions(output: dir.file("custom.h5"))
        o.featureType = .float32
        o.numClasses = 5
        let s = try NumPyImport.importArchive(numpyFixtures + "custom-keys.npz", keys: keys, options: o)
        #expect(s.numClasses == 5 && s.featureType == .float32)
        #expect(try DatasetFile(path: o.output).classCounts(.train) == [4, 4, 4, 0, 0])
        // Neither test array: held out, with a note saying so.
        let held = try NumPyImport.importArchive(numpyFixtures + "no-test.npz", options: NumPyImportOptions(output: dir.file("n.h5")))
        #expect(held.trainCount + held.testCount == 12 && held.testCount == 2)
        #expect(held.notes.count == 1 && held.notes[0].contains("no 'x_test' and 'y_test'"))
        // The default keys missing from a custom archive: the error lists what it holds.
        expectError(["custom-keys.npz", "no array 'x_train'", "it holds: X, y, Xt, yt"]) {
            try NumPyImport.importArchive(numpyFixtures + "custom-keys.npz", options: NumPyImportOptions(output: dir.file("e.h5")))
        }
        #expect(!FileManager.default.fileExists(atPath: dir.file("e.h5")))
    }

    @Test func refusedArrays() throws {
        let dir = TempDir()
        let out = dir.file("o.h5")
        func npy(_ images: String, _ labels: String, numClasses: Int? = nil, features: H5ScalarType? = nil) throws {
            var o = NumPyImportOptions(output: out)
            o.numClasses = numClasses
            o.featureType = features
            try NumPyImport.importFiles(images: numpyFixtures + images, labels: numpyFixtures + labels,
                                        testImages: nil, testLabels: nil, options: o)
        }
        expectError(["x_train_bigendian.npy", "big-endian", "'>f4'"]) { try npy("x_train_bigendian.npy", "y_train.npy") }
        expectError(["x_train_float16.npy", "'<f2' is not supported"]) { try npy("x_train_float16.npy", "y_train.npy") }
        expectError(["y_train_float.npy", "labels of type float32", "integer class indices"]) { try npy("x_train.npy", "y_train_float.npy") }
        expectError(["y_train_onehot.npy", "shape [12, 3]", "one-hot"]) { try npy("x_train.npy", "y_train_onehot.npy") }
        expectError(["y_train_negative.npy", "label -1 at index 0"]) { try npy("x_train.npy", "y_train_negative.npy") }
        expectError(["x_train.npy has 12 samples", "y_test.npy has 4 labels"]) { try npy("x_train.npy", "y_test.npy") }
        expectError(["y_train.npy", "label 2 at index 2", "outside 0..<2"]) { try npy("x_train.npy", "y_train.npy", numClasses: 2) }
        expectError(["x_train_f64.npy", "value 0.5 of sample 0", "not an integer 0...255"]) {
            try npy("x_train_f64.npy", "y_train.npy", features: .uint8)
        }
        expectError(["y_train.npy", "images of shape [12] (rank 1)"]) { try npy("y_train.npy", "y_train.npy") }
        expectError(["bzip2.npz", "member x_train.npy", "compression method 12"]) {
            try NumPyImport.importArchive(numpyFixtures + "bzip2.npz", options: NumPyImportOptions(output: out))
        }
        #expect(!FileManager.default.fileExists(atPath: out), "failed imports leave no output")
    }

    @Test func damagedFiles() throws {
        let dir = TempDir()
        let good = try Data(contentsOf: URL(fileURLWithPath: numpyFixtures + "x_train.npy"))
        func check(_ bytes: Data, _ fragments: [String]) throws {
            let path = dir.file("bad.npy")
            try bytes.write(to: URL(fileURLWithPath: path))
            expectError([path] + fragments) { _ = try NumPyArray.read(path) }
        }
        try check(Data("PK not numpy at all".utf8), ["not a .npy file", "expected the magic"])
        try check(Data(), ["not a .npy file"])
        try check(good.prefix(8), ["truncated", "shorter than a .npy header"])
        try check(good.prefix(40), ["truncated", "the header needs"])
        try check(good.dropLast(5), ["truncated", "needs 72 data bytes, the file has 67"])
        try check(good + Data([0]), ["1 trailing bytes"])
        var version = good
        version[6] = 9
        try check(version, ["format version 9.0 is not supported"])
        // The preamble and header are latin-1 (the magic's 0x93 is not UTF-8).
        let header = String(data: good.prefix(128), encoding: .isoLatin1)!
        func edited(_ a: String, _ b: String) -> Data { header.replacingOccurrences(of: a, with: b).data(using: .isoLatin1)! + good.dropFirst(128) }
        try check(edited("'shape'", "'shapes'"), ["no 'shape' tuple"])
        try check(edited("{", "["), ["malformed header", "expected a dict"])
        try check(edited("'|u1'", "'|O1'"), ["object arrays", "pickled"])
        expectError(["missing.npy", "no such file"]) { _ = try NumPyArray.read(dir.file("missing.npy")) }

        let zip = try Data(contentsOf: URL(fileURLWithPath: numpyFixtures + "keras-compressed.npz"))
        func checkArchive(_ bytes: Data, _ fragments: [String]) throws {
            let path = dir.file("bad.npz")
            try bytes.write(to: URL(fileURLWithPath: path))
            expectError([path] + fragments) {
                try NumPyImport.importArchive(path, options: NumPyImportOptions(output: dir.file("o.h5")))
            }
        }
        try checkArchive(zip.prefix(zip.count / 2), ["truncated or damaged", "central directory"])
        try checkArchive(good, ["not a zip archive"])
        // A flipped byte inside the first member's deflate stream: zlib or the CRC-32 catches it.
        var flipped = zip
        flipped[zip.startIndex + 80] ^= 0xFF
        try checkArchive(flipped, ["member x_train.npy", "damaged"])
        #expect(!FileManager.default.fileExists(atPath: dir.file("o.h5")))
    }

    /// A version 1.0 .npy file written by hand, as NumPy lays it out (header padded to 64 bytes).
    static func npy(descr: String, shape: [Int], body: Data) -> Data {
        let dims = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(dims), }"
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        let n = header.utf8.count
        return Data([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(n & 255), UInt8(n >> 8)]) + Data(header.utf8) + body
    }

    @Test func valuesThatDoNotFitTheFeatureType() throws {
        let dir = TempDir()
        // float64 images with a value beyond float32's range, and int16 images with a negative value.
        let big = [1.0, 2.0, 1e300, 4.0].flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }
        try Self.npy(descr: "<f8", shape: [2, 2], body: Data(big)).write(to: URL(fileURLWithPath: dir.file("big.npy")))
        let negative = [Int16(3), 200, -1, 7].flatMap { withUnsafeBytes(of: $0.littleEndian, Array.init) }
        try Self.npy(descr: "<i2", shape: [2, 2], body: Data(negative)).write(to: URL(fileURLWithPath: dir.file("neg.npy")))
        try Self.npy(descr: "|u1", shape: [2], body: Data([0, 1])).write(to: URL(fileURLWithPath: dir.file("y.npy")))
        func run(_ images: String, _ features: H5ScalarType?) throws {
            var o = NumPyImportOptions(output: dir.file("o.h5"))
            o.featureType = features
            o.testFraction = 0.5
            try NumPyImport.importFiles(images: dir.file(images), labels: dir.file("y.npy"), testImages: nil, testLabels: nil, options: o)
        }
        expectError(["big.npy", "value 1e+300 of sample 1", "not a finite float32 number"]) { try run("big.npy", nil) }
        expectError(["neg.npy", "value -1.0 of sample 1", "not an integer 0...255"]) { try run("neg.npy", .uint8) }
        // As float32 (the default for int16) the same values import exactly.
        try run("neg.npy", nil)
        let ds = try DatasetFile(path: dir.file("o.h5"))
        let rows = try ds.features(.train).read(as: Float.self) + ds.features(.test).read(as: Float.self)
        #expect(Set([Array(rows[0..<2]), Array(rows[2..<4])]) == Set([[3, 200], [-1, 7]]))
    }

    @Test func fortranOrderTransposes() {
        // A 2×3 array in Fortran order holds columns first: [a00 a10 a01 a11 a02 a12].
        let fortran = Data([0, 3, 1, 4, 2, 5])
        #expect(NumPyArray.cOrder(fromFortran: fortran, shape: [2, 3], elementSize: 1) == Data([0, 1, 2, 3, 4, 5]))
        // 2×2×2, element (i, j, k) = 4i + 2j + k, at Fortran offset i + 2j + 4k.
        var f3 = Data(count: 8)
        for i in 0..<2 { for j in 0..<2 { for k in 0..<2 { f3[i + 2 * j + 4 * k] = UInt8(4 * i + 2 * j + k) } } }
        #expect(NumPyArray.cOrder(fromFortran: f3, shape: [2, 2, 2], elementSize: 1) == Data(0..<8))
    }
}

@Suite struct ClassNameTests {
    @Test func csvStringLabels() throws {
        let dir = TempDir()
        let iris = dir.file("iris.csv")
        var text = "sepal_length,sepal_width,petal_length,petal_width,species\n"
        let species = ["virginica", "setosa", "versicolor"]
        for i in 0..<30 { text += "\(5 + Double(i % 7) / 10),3.\(i % 5),1.\(i % 3),0.\(i % 4),\(species[i % 3])\n" }
        try text.write(toFile: iris, atomically: true, encoding: .utf8)
        var o = CSVImportOptions(trainPath: iris, output: dir.file("iris.h5"))
        o.labelColumn = "species"
        let s = try CSVImport.importDataset(o)
        #expect(s.classNames == ["setosa", "versicolor", "virginica"] && s.numClasses == 3)
        #expect(s.description.contains("0 setosa, 1 versicolor, 2 virginica"))
        let ds = try DatasetFile(path: o.output)
        #expect(ds.classNames == ["setosa", "versicolor", "virginica"] && ds.notices.isEmpty)
        let all = try ds.features(.train).read(as: Float.self) + ds.features(.test).read(as: Float.self)
        let labels = try ds.labels(.train).read(as: UInt8.self) + ds.labels(.test).read(as: UInt8.self)
        // Each row's label is its species' index: row i has petal_width 0.(i % 4) … recompute from sepal_width.
        #expect(labels.count == 30 && all.count == 120)
        #expect(try ds.classCounts(.train).reduce(0, +) + ds.classCounts(.test).reduce(0, +) == 30)
        #expect(try ds.classCounts(.train).enumerated().allSatisfy { $0.element + (try ds.classCounts(.test))[$0.offset] == 10 })
        let report = try DatasetInspector.inspect(path: o.output)
        #expect(report.text.contains("class names: 0 setosa, 1 versicolor, 2 virginica"))
        #expect(report.text.contains("class 1 (versicolor): "))
        #expect(report.text.contains("@class_names = [\"setosa\", \"versicolor\", \"virginica\"]"))

        // Headerless (UCI's iris.data): names in the last column are data, not a header.
        let uci = dir.file("iris.data")
        try "5.1,3.5,1.4,0.2,Iris-setosa\n7.0,3.2,4.7,1.4,Iris-versicolor\n6.3,3.3,6.0,2.5,Iris-virginica\n4.9,3.0,1.4,0.2,Iris-setosa\n"
            .write(toFile: uci, atomically: true, encoding: .utf8)
        var u = CSVImportOptions(trainPath: uci, output: dir.file("uci.h5"))
        u.testFraction = 0.25
        let us = try CSVImport.importDataset(u)
        #expect(us.trainCount + us.testCount == 4 && us.classNames == ["Iris-setosa", "Iris-versicolor", "Iris-virginica"])

        // A wrong --num-classes for named labels is an error naming the classes found.
        u.numClasses = 2
        u.output = dir.file("u2.h5")
        expectError([uci, "are names (3 distinct: Iris-setosa, Iris-versicolor, Iris-virginica)", "--num-classes is 2"]) {
            try CSVImport.importDataset(u)
        }
    }

    @Test func classNamesSortByCodePoint() throws {
        let c = try CSVClasses(labels: ["b", "B", "a", "10", "9", "é"], numClasses: nil, files: "f.csv")
        #expect(c.names == ["10", "9", "B", "a", "b", "é"])
        #expect(try c.index(of: "a", at: "f.csv:1") == 3)
        let ints = try CSVClasses(labels: ["0", "4", "2"], numClasses: nil, files: "f.csv")
        #expect(ints.names == nil && ints.numClasses == 5)
        expectError(["f.csv:3", "label 7 is outside 0..<5"]) { _ = try ints.index(of: "7", at: "f.csv:3") }
    }

    @Test func numClassesInferredWithNotice() throws {
        let dir = TempDir()
        let path = try makeDataset(dir.file("h5py.h5"), train: 20, test: 5, classes: 4)
        do {
            let f = try H5File(path, mode: .readWrite)
            try f.deleteAttributeIfPresent("num_classes")
            try f.close()
        }
        do {
            let ds = try DatasetFile(path: path)
            #expect(ds.numClasses == 4)
            #expect(ds.notices.count == 1 && ds.notices[0].contains("no num_classes attribute; inferred 4 (largest label + 1)"))
            #expect(try DatasetInspector.inspect(path: path).text.contains("notice: \(path) has no num_classes attribute; inferred 4"))
        }
        // class_names without num_classes: their count.
        do {
            let f = try H5File(path, mode: .readWrite)
            try f.setAttribute("class_names", ["a", "b", "c", "d", "e"])
            try f.close()
        }
        do {
            let named = try DatasetFile(path: path)
            #expect(named.numClasses == 5 && named.className(4) == "e" && named.notices[0].contains("the number of class_names"))
        }
        // class_names that disagree with num_classes are a format error.
        do {
            let f = try H5File(path, mode: .readWrite)
            try f.setAttribute("num_classes", Int64(4))
            try f.close()
        }
        expectError([path, "class_names", "4 names (num_classes = 4)", "found 5: a, b, c, d, e"]) { _ = try DatasetFile(path: path) }
    }
}

@Suite struct NumPyWriteTests {
    /// `npyData` writes what NumPy itself writes: parsing a fixture NumPy saved and encoding it
    /// again gives the file's bytes exactly (header text, padding and data).
    @Test(arguments: ["x_train.npy", "y_train.npy", "y_train_float.npy", "x_train_f64.npy", "y_test.npy"])
    func encodesAsNumPyDoes(name: String) throws {
        let file = try Data(contentsOf: URL(fileURLWithPath: numpyFixtures + name))
        let array = try NumPyArray.parse(file, name: name)
        #expect(array.npyData() == file)
    }

    @Test func roundTripsEveryShape() throws {
        for shape in [[0], [5], [2, 3], [1, 2, 1, 2]] {
            let values = (0..<shape.reduce(1, *)).map { Float($0) * 0.5 - 1 }
            let array = NumPyArray(name: "a", shape: shape, elementType: .float32,
                                   bytes: values.withUnsafeBufferPointer { Data(buffer: $0) })
            let encoded = array.npyData()
            let back = try NumPyArray.parse(encoded, name: "a")
            #expect(back.shape == shape && back.elementType == .float32 && back.bytes == array.bytes, "\(shape)")
            // The data starts on a 64-byte boundary, as NumPy aligns it.
            #expect((encoded.count - array.bytes.count) % 64 == 0, "\(shape)")
        }
    }
}
