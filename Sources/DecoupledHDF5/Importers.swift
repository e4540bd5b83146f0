import CHDF5
import DecoupledRandom
import Foundation

/// What an importer wrote.
public struct ImportSummary: CustomStringConvertible, Equatable {
    public var path: String
    public var trainCount: Int
    public var testCount: Int
    public var featureCount: Int
    public var numClasses: Int
    public var featureType: H5ScalarType
    public var storage: DatasetStorage
    public var fileBytes: Int
    /// The `class_names` written, when the labels were names.
    public var classNames: [String]? = nil
    /// What the import assumed, for the user to see (printed before the summary).
    public var notes: [String] = []

    public var description: String {
        var text = "wrote \(path): \(trainCount) train + \(testCount) test samples, \(featureCount) \(featureType) features, "
            + "\(numClasses) classes, \(storage), \(String(format: "%.2f", Double(fileBytes) / 1_048_576)) MiB"
        if let names = classNames {
            text += "\nclasses (attribute class_names): "
                + names.prefix(20).enumerated().map { "\($0.offset) \($0.element)" }.joined(separator: ", ")
                + (names.count > 20 ? ", … (\(names.count) in all)" : "")
        }
        return text
    }

    static func of(_ path: String, _ writer: DatasetWriter, storage: DatasetStorage, numClasses: Int) -> ImportSummary {
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        return ImportSummary(path: path, trainCount: writer.counts[.train] ?? 0, testCount: writer.counts[.test] ?? 0,
                             featureCount: writer.sampleShape.reduce(1, *), numClasses: numClasses,
                             featureType: writer.featureType, storage: storage, fileBytes: size)
    }
}

// MARK: - IDX

/// An IDX array (the MNIST family's format): big-endian header, then raw bytes.
public struct IDXArray: Equatable {
    public var dims: [Int]
    public var data: [UInt8]
}

public enum IDX {
    /// Reads an unsigned-byte IDX file, gzip-compressed or not (zlib's gzread reads both).
    public static func read(_ path: String) throws -> IDXArray {
        guard FileManager.default.fileExists(atPath: path) else { throw DataInputError("IDX file \(path): no such file") }
        guard let gz = gzopen(path, "rb") else {
            throw DataInputError("IDX file \(path): cannot open: \(String(cString: strerror(errno)))")
        }
        defer { gzclose(gz) }
        func readExactly(_ n: Int, _ what: String) throws -> [UInt8] {
            var out = [UInt8](repeating: 0, count: n)
            var got = 0
            try out.withUnsafeMutableBytes { buf in
                while got < n {
                    let want = UInt32(min(n - got, 1 << 30))
                    let r = gzread(gz, buf.baseAddress! + got, want)
                    if r < 0 {
                        var code: Int32 = 0
                        let msg = gzerror(gz, &code).map { String(cString: $0) } ?? "unknown error"
                        throw DataInputError("IDX file \(path): corrupt gzip data while reading \(what): \(msg)")
                    }
                    if r == 0 { break }
                    got += Int(r)
                }
            }
            guard got == n else {
                throw DataInputError("IDX file \(path): truncated: expected \(n) bytes of \(what), found \(got)")
            }
            return out
        }
        let magic = try readExactly(4, "the header")
        guard magic[0] == 0, magic[1] == 0 else {
            throw DataInputError("IDX file \(path): not an IDX file (magic bytes \(magic.prefix(2).map { String(format: "%02x", $0) }.joined()), expected 0000)")
        }
        guard magic[2] == 0x08 else {
            throw DataInputError("IDX file \(path): element type 0x\(String(format: "%02x", magic[2])) is not unsigned byte (0x08)")
        }
        let rank = Int(magic[3])
        guard (1...4).contains(rank) else { throw DataInputError("IDX file \(path): rank \(rank), expected 1...4") }
        let dimBytes = try readExactly(4 * rank, "the dimensions")
        var dims: [Int] = []
        for i in 0..<rank {
            let d = dimBytes[(4 * i)..<(4 * i + 4)].reduce(0) { ($0 << 8) | Int($1) }
            dims.append(d)
        }
        let count = dims.reduce(1, *)
        guard count <= 1 << 34 else { throw DataInputError("IDX file \(path): dimensions \(dims) are implausibly large") }
        let data = try readExactly(count, "data for dimensions \(dims)")
        var extra: UInt8 = 0
        if gzread(gz, &extra, 1) > 0 {
            throw DataInputError("IDX file \(path): trailing bytes after the \(count) bytes that dimensions \(dims) describe")
        }
        return IDXArray(dims: dims, data: data)
    }
}

// MARK: - Fashion-MNIST

public enum FashionMNIST {
    /// Where the Debian package `dataset-fashion-mnist` installs the IDX files.
    public static let defaultDirectory = "/usr/share/datasets/fashion-mnist"
    public static let classNames = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    public static let source = "Fashion-MNIST (Xiao, Rasul, Vollgraf 2017), https://github.com/zalandoresearch/fashion-mnist"
    public static let license = "MIT License, Copyright (c) 2017 Zalando SE; full notice in datasets/README.md"

    /// Finds `base` or `base.gz` in `dir`.
    static func locate(_ dir: String, _ base: String) throws -> String {
        for name in [base + ".gz", base] {
            let p = (dir as NSString).appendingPathComponent(name)
            if FileManager.default.fileExists(atPath: p) { return p }
        }
        throw DataInputError("Fashion-MNIST directory \(dir) has no \(base).gz or \(base)")
    }

    /// Imports Fashion-MNIST from IDX files into a dataset file.
    ///
    /// - Parameters:
    ///   - directory: holds train-/t10k- images/labels IDX files (gz or not); nil = the Debian path.
    ///   - trainPerClass, testPerClass: a stratified subset with this many samples of each class,
    ///     drawn with `seed`, kept in the original order; nil keeps the whole split.
    ///   - storage: nil = chunked + gzip.
    @discardableResult
    public static func importDataset(directory: String?, output: String, trainPerClass: Int? = nil,
                                     testPerClass: Int? = nil, seed: UInt64 = 0,
                                     storage: DatasetStorage? = nil) throws -> ImportSummary {
        let dir = directory ?? defaultDirectory
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw DataInputError("Fashion-MNIST directory \(dir) does not exist"
                                 + (directory == nil ? " (install the Debian package dataset-fashion-mnist, or pass --source DIR)" : ""))
        }
        var splits: [DatasetSplit: (x: IDXArray, y: IDXArray)] = [:]
        for (split, prefix) in [(DatasetSplit.train, "train"), (.test, "t10k")] {
            let xPath = try locate(dir, "\(prefix)-images-idx3-ubyte")
            let yPath = try locate(dir, "\(prefix)-labels-idx1-ubyte")
            let x = try IDX.read(xPath), y = try IDX.read(yPath)
            guard x.dims.count == 3 else { throw DataInputError("\(xPath): expected images of rank 3 (N×rows×cols), found dims \(x.dims)") }
            guard y.dims.count == 1 else { throw DataInputError("\(yPath): expected labels of rank 1, found dims \(y.dims)") }
            guard x.dims[0] == y.dims[0] else {
                throw DataInputError("\(xPath) has \(x.dims[0]) images but \(yPath) has \(y.dims[0]) labels")
            }
            if let bad = y.data.firstIndex(where: { $0 >= 10 }) {
                throw DataInputError("\(yPath): label \(y.data[bad]) at index \(bad) is outside 0..<10")
            }
            splits[split] = (x, y)
        }
        let train = splits[.train]!, test = splits[.test]!
        guard Array(train.x.dims.dropFirst()) == Array(test.x.dims.dropFirst()) else {
            throw DataInputError("train images are \(train.x.dims.dropFirst()) but test images are \(test.x.dims.dropFirst())")
        }
        let featureCount = train.x.dims[1] * train.x.dims[2]

        func select(_ labels: [UInt8], perClass: Int?, stream: String) throws -> [Int] {
            guard let k = perClass else { return Array(labels.indices) }
            guard k >= 1 else { throw DataInputError("samples per class must be ≥ 1, got \(k)") }
            var rng = Xoshiro256(seed: seed, stream: stream)
            var chosen: [Int] = []
            for c in 0..<10 {
                var idx = labels.indices.filter { labels[$0] == c }
                guard idx.count >= k else {
                    throw DataInputError("class \(c) (\(classNames[c])) has \(idx.count) samples in \(stream), fewer than the \(k) requested")
                }
                for i in 0..<k { idx.swapAt(i, i + rng.nextInt(below: idx.count - i)) }  // partial Fisher–Yates
                chosen += idx.prefix(k)
            }
            return chosen.sorted()
        }
        let trainIdx = try select(train.y.data, perClass: trainPerClass, stream: "fashion-mnist-train")
        let testIdx = try select(test.y.data, perClass: testPerClass, stream: "fashion-mnist-test")

        let store = storage ?? .compressed(rowBytes: featureCount)
        let writer = try DatasetWriter(path: output, featureType: .uint8, labelType: .uint8, sampleShape: [featureCount],
                                       counts: [.train: trainIdx.count, .test: testIdx.count], storage: store)
        for (split, idx, arrays) in [(DatasetSplit.train, trainIdx, train), (.test, testIdx, test)] {
            var start = 0
            while start < idx.count {
                let part = idx[start..<min(start + 4096, idx.count)]
                var features = [UInt8]()
                features.reserveCapacity(part.count * featureCount)
                for i in part { features += arrays.x.data[(i * featureCount)..<((i + 1) * featureCount)] }
                try writer.append(split, features: features, labels: part.map { Int32(arrays.y.data[$0]) })
                start += part.count
            }
        }
        var src = source + ", imported from \(dir)"
        if trainPerClass != nil || testPerClass != nil {
            src += "; stratified subset: \(trainPerClass.map { "\($0)" } ?? "all") train and "
                + "\(testPerClass.map { "\($0)" } ?? "all") test samples per class, seed \(seed)"
        }
        try writer.finish(numClasses: 10, scale: 1.0 / 255.0, source: src, license: license)
        return ImportSummary.of(output, writer, storage: store, numClasses: 10)
    }
}

// MARK: - CSV

/// Options of `CSVImport.importDataset`.
public struct CSVImportOptions: Equatable {
    public enum Header: String, Equatable, CaseIterable { case auto, yes, no }

    public var trainPath: String
    /// A separate test file; when nil, `testFraction` of the train file's rows become the test split.
    public var testPath: String?
    public var testFraction: Double = 0.2
    public var output: String
    /// "last", "first", a 0-based column index, or a header name.
    public var labelColumn: String = "last"
    public var header: Header = .auto
    public var delimiter: Character = ","
    /// `.float32` (default) or `.uint8` (values must be integers 0...255).
    public var featureType: H5ScalarType = .float32
    /// Default 1/255 for uint8, 1 for float32.
    public var scale: Double?
    /// Default: largest label + 1.
    public var numClasses: Int?
    public var seed: UInt64 = 0
    /// nil = chunked + gzip.
    public var storage: DatasetStorage?
    public var source: String?
    public var license: String?

    public init(trainPath: String, output: String) {
        self.trainPath = trainPath
        self.output = output
    }
}

/// How a CSV file's label texts become class indices. When every label is a non-negative
/// integer, the labels are the indices (num_classes: largest + 1 unless given). Otherwise they
/// are class names, numbered in sorted order of their Unicode code points (the order of
/// Python's `sorted()` and scikit-learn's LabelEncoder), e.g. iris's "setosa" 0,
/// "versicolor" 1, "virginica" 2; the names are stored as the `class_names` attribute.
struct CSVClasses {
    /// nil for integer labels.
    let names: [String]?
    let numClasses: Int
    private let indexOfName: [String: Int32]

    init(labels: Set<String>, numClasses requested: Int?, files: String) throws {
        let integers = labels.compactMap { Int64($0) }.filter { $0 >= 0 }
        if integers.count == labels.count {
            let largest = integers.max() ?? -1
            guard largest < Int64(DatasetFile.maxClasses) else {
                throw DataInputError("CSV label \(largest) in \(files) is too large: labels must be class indices below \(DatasetFile.maxClasses)")
            }
            names = nil
            numClasses = requested ?? Int(largest + 1)
            indexOfName = [:]
        } else {
            let sorted = labels.sorted { $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars) }
            if let n = requested, n != sorted.count {
                let shown = sorted.prefix(12).joined(separator: ", ") + (sorted.count > 12 ? ", …" : "")
                throw DataInputError("CSV labels in \(files) are names (\(sorted.count) distinct: \(shown)), but --num-classes is \(n); leave it out or give \(sorted.count)")
            }
            names = sorted
            numClasses = sorted.count
            indexOfName = Dictionary(uniqueKeysWithValues: sorted.enumerated().map { ($0.element, Int32($0.offset)) })
        }
    }

    /// The class index of a label text; `location` ("file:line") names it in errors.
    func index(of label: Substring, at location: String) throws -> Int32 {
        if names != nil {
            guard let i = indexOfName[String(label)] else { throw DataInputError("\(location): label '\(label)' was not seen in the first pass") }
            return i
        }
        guard let v = Int64(label), v >= 0, v < Int64(numClasses) else {
            throw DataInputError("\(location): label \(label) is outside 0..<\(numClasses) (num_classes)")
        }
        return Int32(v)
    }
}

/// Chooses exactly `testCount` of `total` rows, visited in order, for the test split by
/// selection sampling (Knuth's Algorithm S) with a seeded generator: one pass, no index list
/// in memory, and the same rows for the same seed.
struct HeldOutRows {
    private var rng: Xoshiro256
    private var row = 0
    private let total: Int
    private var needed: Int

    init(total: Int, testCount: Int, seed: UInt64, stream: String) {
        rng = Xoshiro256(seed: seed, stream: stream)
        self.total = total
        needed = testCount
    }

    /// The split of the next row.
    mutating func next() -> DatasetSplit {
        defer { row += 1 }
        guard needed > 0 else { return .train }
        if rng.nextInt(below: total - row) < needed { needed -= 1; return .test }
        return .train
    }
}

public enum CSVImport {
    /// Reads lines with getline(3): bounded memory whatever the file size.
    final class LineReader {
        let path: String
        private let fp: UnsafeMutablePointer<FILE>
        private var line: UnsafeMutablePointer<CChar>? = nil
        private var capacity = 0
        private(set) var lineNumber = 0
        init(_ path: String) throws {
            self.path = path
            guard FileManager.default.fileExists(atPath: path) else { throw DataInputError("CSV file \(path): no such file") }
            guard let f = fopen(path, "r") else { throw DataInputError("CSV file \(path): cannot open: \(String(cString: strerror(errno)))") }
            fp = f
        }
        deinit {
            free(line)
            fclose(fp)
        }
        /// The next non-blank line without its line ending, or nil at the end.
        func next() -> String? {
            while true {
                let n = getline(&line, &capacity, fp)
                if n < 0 { return nil }
                lineNumber += 1
                // Strip the line ending bytewise: Swift treats "\r\n" as one Character.
                var len = n
                while len > 0 && (line![len - 1] == 10 || line![len - 1] == 13) { len -= 1 }
                let s = String(decoding: UnsafeRawBufferPointer(start: line!, count: len), as: UTF8.self)
                if !s.trimmingCharacters(in: .whitespaces).isEmpty { return s }
            }
        }
    }

    static func fields(_ line: String, _ d: Character) -> [Substring] {
        line.split(separator: d, omittingEmptySubsequences: false).map { f in
            var t = f.drop(while: { $0 == " " || $0 == "\t" })
            while let l = t.last, l == " " || l == "\t" { t = t.dropLast() }
            if t.count >= 2, t.first == "\"", t.last == "\"" { t = t.dropFirst().dropLast() }
            return t
        }
    }

    struct Layout {
        var columns: Int
        var labelIndex: Int
        var hasHeader: Bool
        var rows: Int
        /// The distinct texts of the label column.
        var labels: Set<String>
    }

    /// Pass 1: header, column count, label column, row count, label range; every value checked.
    static func scan(_ path: String, _ o: CSVImportOptions) throws -> Layout {
        let reader = try LineReader(path)
        guard let first = reader.next() else { throw DataInputError("CSV file \(path): no data rows") }
        let firstFields = fields(first, o.delimiter)
        let columns = firstFields.count
        guard columns >= 2 else {
            throw DataInputError("CSV file \(path):\(reader.lineNumber): found \(columns) column; need a label and at least one feature (delimiter '\(o.delimiter)')")
        }
        let hasHeader: Bool
        switch o.header {
        case .yes: hasHeader = true
        case .no: hasHeader = false
        case .auto:
            // A header row has text where the data has numbers. Text in the same column of the
            // second row too is data: a column of class names (iris's species), not a header.
            let second = try LineReader(path)
            _ = second.next()
            if let next = second.next().map({ fields($0, o.delimiter) }), next.count == columns {
                hasHeader = zip(firstFields, next).contains { Double($0) == nil && Double($1) != nil }
            } else {
                hasHeader = !firstFields.allSatisfy { Double($0) != nil }
            }
        }
        let labelIndex: Int
        switch o.labelColumn {
        case "last": labelIndex = columns - 1
        case "first": labelIndex = 0
        default:
            if let i = Int(o.labelColumn) {
                guard (0..<columns).contains(i) else {
                    throw DataInputError("CSV file \(path): label column \(i) is outside 0..<\(columns)")
                }
                labelIndex = i
            } else if hasHeader, let i = firstFields.firstIndex(where: { $0 == o.labelColumn }) {
                labelIndex = i
            } else {
                throw DataInputError("CSV file \(path): no column named '\(o.labelColumn)'"
                                     + (hasHeader ? " (header: \(firstFields.joined(separator: ", ")))" : " (the file has no header row)"))
            }
        }
        var layout = Layout(columns: columns, labelIndex: labelIndex, hasHeader: hasHeader, rows: 0, labels: [])
        var scratchF: [Float] = [], scratchU: [UInt8] = []
        func check(_ line: String) throws {
            let label = try parse(line, lineNumber: reader.lineNumber, path: path, layout: layout, o: o,
                                  floats: &scratchF, bytes: &scratchU)
            if layout.labels.insert(String(label)).inserted, layout.labels.count > DatasetFile.maxClasses {
                throw DataInputError("CSV file \(path):\(reader.lineNumber): more than \(DatasetFile.maxClasses) distinct labels in column \(layout.labelIndex); is it the label column?")
            }
            layout.rows += 1
            scratchF.removeAll(keepingCapacity: true)
            scratchU.removeAll(keepingCapacity: true)
        }
        if !hasHeader { try check(first) }
        while let line = reader.next() { try check(line) }
        guard layout.rows > 0 else { throw DataInputError("CSV file \(path): no data rows after the header") }
        return layout
    }

    /// Parses one row, appending its features to `floats` or `bytes`; returns the label's text.
    static func parse(_ line: String, lineNumber: Int, path: String, layout: Layout, o: CSVImportOptions,
                      floats: inout [Float], bytes: inout [UInt8]) throws -> Substring {
        let f = fields(line, o.delimiter)
        guard f.count == layout.columns else {
            throw DataInputError("CSV file \(path):\(lineNumber): found \(f.count) columns, expected \(layout.columns)")
        }
        let label = f[layout.labelIndex]
        guard !label.isEmpty else {
            throw DataInputError("CSV file \(path):\(lineNumber): the label in column \(layout.labelIndex) is empty")
        }
        for (i, v) in f.enumerated() where i != layout.labelIndex {
            if o.featureType == .uint8 {
                guard let b = UInt8(v) else {
                    throw DataInputError("CSV file \(path):\(lineNumber): column \(i) value '\(v)' is not an integer 0...255 (features are uint8)")
                }
                bytes.append(b)
            } else {
                guard let x = Float(v), x.isFinite else {
                    throw DataInputError("CSV file \(path):\(lineNumber): column \(i) value '\(v)' is not a finite number")
                }
                floats.append(x)
            }
        }
        return label
    }

    /// Imports one or two CSV files (one row per sample, one integer label column) into a dataset file.
    @discardableResult
    public static func importDataset(_ o: CSVImportOptions) throws -> ImportSummary {
        guard o.featureType == .uint8 || o.featureType == .float32 else {
            throw DataInputError("CSV features must be uint8 or float32, not \(o.featureType)")
        }
        let trainLayout = try scan(o.trainPath, o)
        var testLayout: Layout? = nil
        if let t = o.testPath {
            let l = try scan(t, o)
            guard l.columns == trainLayout.columns else {
                throw DataInputError("CSV file \(t) has \(l.columns) columns but \(o.trainPath) has \(trainLayout.columns)")
            }
            testLayout = l
        } else if !(o.testFraction >= 0 && o.testFraction < 1) {
            throw DataInputError("test fraction must be in [0, 1), got \(o.testFraction)")
        }
        let files = [o.trainPath] + (o.testPath.map { [$0] } ?? [])
        let classes = try CSVClasses(labels: trainLayout.labels.union(testLayout?.labels ?? []), numClasses: o.numClasses,
                                     files: files.joined(separator: " and "))
        let numClasses = classes.numClasses
        let featureCount = trainLayout.columns - 1
        // Without a test file, exactly round(fraction·N) seeded test rows (HeldOutRows).
        let total = trainLayout.rows
        let testFromTrain = testLayout == nil ? Int((o.testFraction * Double(total)).rounded()) : 0
        guard total - testFromTrain >= 1 else { throw DataInputError("CSV file \(o.trainPath): no rows left for training") }
        let counts: [DatasetSplit: Int] = [.train: total - testFromTrain, .test: testLayout?.rows ?? testFromTrain]
        let store = o.storage ?? .compressed(rowBytes: featureCount * o.featureType.byteSize)
        let writer = try DatasetWriter(path: o.output, featureType: o.featureType,
                                       labelType: numClasses <= 256 ? .uint8 : .int32, sampleShape: [featureCount],
                                       counts: counts, storage: store)
        let blockRows = max(1, (4 << 20) / max(featureCount * 4, 1))

        final class Buffer {
            var floats: [Float] = [], bytes: [UInt8] = [], labels: [Int32] = []
        }
        var buffers: [DatasetSplit: Buffer] = [.train: Buffer(), .test: Buffer()]
        func flush(_ split: DatasetSplit, force: Bool) throws {
            let b = buffers[split]!
            guard b.labels.count >= blockRows || (force && !b.labels.isEmpty) else { return }
            if o.featureType == .uint8 { try writer.append(split, features: b.bytes, labels: b.labels) }
            else { try writer.append(split, features: b.floats, labels: b.labels) }
            b.floats.removeAll(keepingCapacity: true)
            b.bytes.removeAll(keepingCapacity: true)
            b.labels.removeAll(keepingCapacity: true)
        }
        func copy(_ path: String, layout: Layout, split: (Int) -> DatasetSplit) throws {
            let reader = try LineReader(path)
            if layout.hasHeader { _ = reader.next() }
            var row = 0
            while let line = reader.next() {
                let s = split(row)
                let b = buffers[s]!
                let label = try parse(line, lineNumber: reader.lineNumber, path: path, layout: layout, o: o,
                                      floats: &b.floats, bytes: &b.bytes)
                b.labels.append(try classes.index(of: label, at: "CSV file \(path):\(reader.lineNumber)"))
                try flush(s, force: false)
                row += 1
            }
        }
        var heldOut = HeldOutRows(total: total, testCount: testFromTrain, seed: o.seed, stream: "csv-test-split")
        try copy(o.trainPath, layout: trainLayout) { _ in heldOut.next() }
        if let t = o.testPath, let l = testLayout { try copy(t, layout: l) { _ in .test } }
        try flush(.train, force: true)
        try flush(.test, force: true)
        buffers = [:]
        let scale = o.scale ?? (o.featureType == .uint8 ? 1.0 / 255.0 : 1.0)
        try writer.finish(numClasses: numClasses, scale: scale,
                          source: o.source ?? "CSV import of \(files.joined(separator: " and "))",
                          license: o.license ?? "unknown (set with --license)", classNames: classes.names)
        var summary = ImportSummary.of(o.output, writer, storage: store, numClasses: numClasses)
        summary.classNames = classes.names
        return summary
    }
}

// MARK: - NumPy (.npy, .npz)

/// Options of `NumPyImport`.
public struct NumPyImportOptions {
    public var output: String
    /// `.uint8` or `.float32`; nil = uint8 for uint8 images, float32 for every other type.
    /// uint8 from another type needs integer values 0...255.
    public var featureType: H5ScalarType?
    /// Default 1/255 for uint8 features, 1 for float32.
    public var scale: Double?
    /// Default: largest label + 1.
    public var numClasses: Int?
    /// Without test arrays, this fraction of the samples (seeded) becomes the test split.
    public var testFraction: Double = 0.2
    public var seed: UInt64 = 0
    /// The layout for rows of a given byte size (known once the arrays are read); nil = chunked + gzip.
    public var storage: ((_ rowBytes: Int) throws -> DatasetStorage)?
    public var source: String?
    public var license: String?

    public init(output: String) { self.output = output }
}

/// Imports NumPy arrays (images: samples first, any numeric type; labels: integer class
/// indices, shape (N,) or (N, 1)) into a dataset file. The sample shape is kept ([N, 28, 28]
/// stays 28×28). Every array is checked before anything is written.
public enum NumPyImport {
    /// Keys of the arrays in an .npz file; the defaults are those of keras.datasets' files.
    public struct Keys: Equatable {
        public var images = "x_train", labels = "y_train", testImages = "x_test", testLabels = "y_test"
        public init() {}
    }

    /// Imports .npy files; without `testImages`/`testLabels`, `testFraction` of the samples
    /// become the test split.
    @discardableResult
    public static func importFiles(images: String, labels: String, testImages: String?, testLabels: String?,
                                   options o: NumPyImportOptions) throws -> ImportSummary {
        guard (testImages == nil) == (testLabels == nil) else {
            throw DataInputError("test images and test labels go together: give both or neither")
        }
        let train = (x: try NumPyArray.read(images), y: try NumPyArray.read(labels))
        var test: (x: NumPyArray, y: NumPyArray)? = nil
        if let ti = testImages, let tl = testLabels { test = (try NumPyArray.read(ti), try NumPyArray.read(tl)) }
        let files = [images, labels] + (testImages.map { [$0, testLabels!] } ?? [])
        return try importArrays(train: train, test: test, options: o, from: files.joined(separator: ", "))
    }

    /// Imports an .npz file. When neither test key is in the archive, `testFraction` of the
    /// samples become the test split (the summary's `notes` say so).
    @discardableResult
    public static func importArchive(_ path: String, keys: Keys = Keys(), options o: NumPyImportOptions) throws -> ImportSummary {
        let archive = try NumPyArchive(path: path)
        func require(_ key: String, _ what: String) throws -> NumPyArray {
            guard archive.contains(key) else {
                throw DataInputError(".npz file \(path): no array '\(key)' (the \(what); it holds: \(archive.keys.joined(separator: ", ")))")
            }
            return try archive.array(key)
        }
        let train = (x: try require(keys.images, "training images"), y: try require(keys.labels, "training labels"))
        var test: (x: NumPyArray, y: NumPyArray)? = nil
        var notes: [String] = []
        switch (archive.contains(keys.testImages), archive.contains(keys.testLabels)) {
        case (true, true): test = (try archive.array(keys.testImages), try archive.array(keys.testLabels))
        case (false, false):
            notes.append("\(path) has no '\(keys.testImages)' and '\(keys.testLabels)'; holding out \(o.testFraction) of the samples as the test split (seed \(o.seed))")
        case (true, false), (false, true):
            let missing = archive.contains(keys.testImages) ? keys.testLabels : keys.testImages
            throw DataInputError(".npz file \(path): has only one of the test arrays, no '\(missing)' (it holds: \(archive.keys.joined(separator: ", ")))")
        }
        var summary = try importArrays(train: train, test: test, options: o, from: path)
        summary.notes = notes + summary.notes
        return summary
    }

    /// Checks and writes arrays; `from` names the input files in the source attribute.
    static func importArrays(train: (x: NumPyArray, y: NumPyArray), test: (x: NumPyArray, y: NumPyArray)?,
                             options o: NumPyImportOptions, from: String) throws -> ImportSummary {
        let featureType = o.featureType ?? (train.x.elementType == .uint8 ? .uint8 : .float32)
        guard featureType == .uint8 || featureType == .float32 else {
            throw DataInputError("features must be stored as uint8 or float32, not \(featureType)")
        }
        let sampleShape = try checkImages(train.x)
        let trainLabels = try labels(train.y, samples: train.x)
        var testLabels: [Int32] = []
        if let test {
            let shape = try checkImages(test.x)
            guard shape == sampleShape else {
                throw DataInputError("\(test.x.name): samples of shape \(shape), but \(train.x.name) has samples of shape \(sampleShape)")
            }
            testLabels = try labels(test.y, samples: test.x)
        } else if !(o.testFraction > 0 && o.testFraction < 1) {
            throw DataInputError("without test arrays the test fraction must be in (0, 1), got \(o.testFraction)")
        }
        let largest = Int((trainLabels + testLabels).max() ?? 0)
        let numClasses = o.numClasses ?? largest + 1
        guard numClasses >= 1, numClasses <= DatasetFile.maxClasses else {
            throw DataInputError("number of classes must be in 1...\(DatasetFile.maxClasses), got \(numClasses)")
        }
        for (array, values) in [(train.y, trainLabels)] + (test.map { [($0.y, testLabels)] } ?? []) {
            if let i = values.firstIndex(where: { Int($0) >= numClasses }) {
                throw DataInputError("\(array.name): label \(values[i]) at index \(i) is outside 0..<\(numClasses) (the number of classes)")
            }
        }
        let featureCount = sampleShape.reduce(1, *)
        guard featureCount > 0 else { throw DataInputError("\(train.x.name): samples of shape \(sampleShape) hold no features") }
        // Which rows go where: the test arrays, or a seeded held-out fraction of the training rows.
        let n = train.x.shape[0]
        var assignment: [(DatasetSplit, NumPyArray, [Int32], Range<Int>)] = []
        var counts: [DatasetSplit: Int]
        var heldOutRows: [DatasetSplit] = []
        if let test {
            counts = [.train: n, .test: test.x.shape[0]]
            assignment = [(.train, train.x, trainLabels, 0..<n), (.test, test.x, testLabels, 0..<test.x.shape[0])]
        } else {
            let testCount = Int((o.testFraction * Double(n)).rounded())
            guard testCount >= 1, n - testCount >= 1 else {
                throw DataInputError("\(train.x.name): \(n) samples cannot be split by test fraction \(o.testFraction) into non-empty train and test splits")
            }
            var heldOut = HeldOutRows(total: n, testCount: testCount, seed: o.seed, stream: "numpy-test-split")
            heldOutRows = (0..<n).map { _ in heldOut.next() }
            counts = [.train: n - testCount, .test: testCount]
            assignment = [(.train, train.x, trainLabels, 0..<n)]
        }
        let rowBytes = featureCount * featureType.byteSize
        let store = try o.storage?(rowBytes) ?? .compressed(rowBytes: rowBytes)
        let writer = try DatasetWriter(path: o.output, featureType: featureType,
                                       labelType: numClasses <= 256 ? .uint8 : .int32, sampleShape: sampleShape,
                                       counts: counts, storage: store)
        let blockRows = max(1, (4 << 20) / max(featureCount * 4, 1))
        for (split, images, labels, rows) in assignment {
            var start = rows.lowerBound
            while start < rows.upperBound {
                let block = start..<min(start + blockRows, rows.upperBound)
                if heldOutRows.isEmpty {
                    try append(writer, split, images, labels, block, featureType: featureType, featureCount: featureCount)
                } else {
                    // Runs of consecutive rows of one split, so rows keep their order in each split.
                    var runStart = block.lowerBound
                    for r in block where r + 1 == block.upperBound || heldOutRows[r + 1] != heldOutRows[r] {
                        try append(writer, heldOutRows[r], images, labels, runStart..<(r + 1), featureType: featureType, featureCount: featureCount)
                        runStart = r + 1
                    }
                }
                start = block.upperBound
            }
        }
        let scale = o.scale ?? (featureType == .uint8 ? 1.0 / 255.0 : 1.0)
        try writer.finish(numClasses: numClasses, scale: scale, source: o.source ?? "NumPy import of \(from)",
                          license: o.license ?? "unknown (set with --license)")
        return ImportSummary.of(o.output, writer, storage: store, numClasses: numClasses)
    }

    /// The sample shape of an images array (its shape without the first dimension).
    static func checkImages(_ x: NumPyArray) throws -> [Int] {
        guard x.shape.count >= 2 else {
            throw DataInputError("\(x.name): images of shape \(x.shape) (rank \(x.shape.count)); expected samples first, then features (rank ≥ 2, e.g. (N, 784) or (N, 28, 28))")
        }
        guard x.elementType != .bool else { throw DataInputError("\(x.name): boolean images; convert with x.astype(np.uint8)") }
        return Array(x.shape.dropFirst())
    }

    /// Labels as class indices, checked against the images' sample count.
    static func labels(_ y: NumPyArray, samples x: NumPyArray) throws -> [Int32] {
        let n = y.shape.first ?? 0
        guard y.shape.count == 1 || (y.shape.count == 2 && y.shape[1] == 1) else {
            let hint = y.shape.count == 2 ? " (one-hot? convert with y.argmax(axis=1))" : ""
            throw DataInputError("\(y.name): labels of shape \(y.shape); expected one class index per sample, shape (N,) or (N, 1)\(hint)")
        }
        guard y.elementType.isInteger || y.elementType == .bool else {
            throw DataInputError("\(y.name): labels of type \(y.elementType.numpyName); expected integer class indices (convert with y.astype(np.int64))")
        }
        guard n == x.shape[0] else {
            throw DataInputError("\(x.name) has \(x.shape[0]) samples but \(y.name) has \(n) labels")
        }
        return try (0..<n).map { i in
            guard let v = y.integer(at: i), v >= 0, v < Int64(DatasetFile.maxClasses) else {
                let shown = y.integer(at: i).map(String.init) ?? String(format: "%.0f", y.double(at: i))
                throw DataInputError("\(y.name): label \(shown) at index \(i) is not a class index in 0..<\(DatasetFile.maxClasses)")
            }
            return Int32(v)
        }
    }

    /// Converts and appends `rows` of `images` (C order) to `split`.
    static func append(_ writer: DatasetWriter, _ split: DatasetSplit, _ images: NumPyArray, _ labels: [Int32],
                       _ rows: Range<Int>, featureType: H5ScalarType, featureCount: Int) throws {
        let first = rows.lowerBound * featureCount, end = rows.upperBound * featureCount
        let rowLabels = Array(labels[rows])
        func sample(_ i: Int) -> Int { i / featureCount }
        if featureType == .uint8 {
            var out = [UInt8](repeating: 0, count: end - first)
            if images.elementType == .uint8 {
                images.bytes.withUnsafeBytes { b in out.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: b[first..<end])) } }
            } else {
                try images.forEachDouble(in: first..<end) { i, v in
                    guard v >= 0, v <= 255, v.rounded() == v else {
                        throw DataInputError("\(images.name): value \(v) of sample \(sample(i)) is not an integer 0...255, as uint8 features need (store them as float32 instead)")
                    }
                    out[i - first] = UInt8(v)
                }
            }
            try writer.append(split, features: out, labels: rowLabels)
        } else {
            var out = [Float](repeating: 0, count: end - first)
            try images.forEachDouble(in: first..<end) { i, v in
                let f = Float(v)
                guard f.isFinite else {
                    throw DataInputError("\(images.name): value \(v) of sample \(sample(i)) is not a finite float32 number")
                }
                out[i - first] = f
            }
            try writer.append(split, features: out, labels: rowLabels)
        }
    }
}
