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

    public var description: String {
        "wrote \(path): \(trainCount) train + \(testCount) test samples, \(featureCount) \(featureType) features, "
            + "\(numClasses) classes, \(storage), \(String(format: "%.2f", Double(fileBytes) / 1_048_576)) MiB"
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
        var maxLabel: Int64
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
        let numericFirst = firstFields.allSatisfy { Double($0) != nil }
        let hasHeader: Bool
        switch o.header {
        case .yes: hasHeader = true
        case .no: hasHeader = false
        case .auto: hasHeader = !numericFirst
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
        var layout = Layout(columns: columns, labelIndex: labelIndex, hasHeader: hasHeader, rows: 0, maxLabel: -1)
        var scratchF: [Float] = [], scratchU: [UInt8] = []
        func check(_ line: String) throws {
            let (label, _) = try parse(line, lineNumber: reader.lineNumber, path: path, layout: layout, o: o,
                                       floats: &scratchF, bytes: &scratchU)
            layout.maxLabel = max(layout.maxLabel, label)
            layout.rows += 1
            scratchF.removeAll(keepingCapacity: true)
            scratchU.removeAll(keepingCapacity: true)
        }
        if !hasHeader { try check(first) }
        while let line = reader.next() { try check(line) }
        guard layout.rows > 0 else { throw DataInputError("CSV file \(path): no data rows after the header") }
        return layout
    }

    /// Parses one row, appending its features to `floats` or `bytes`; returns the label.
    static func parse(_ line: String, lineNumber: Int, path: String, layout: Layout, o: CSVImportOptions,
                      floats: inout [Float], bytes: inout [UInt8]) throws -> (Int64, Void) {
        let f = fields(line, o.delimiter)
        guard f.count == layout.columns else {
            throw DataInputError("CSV file \(path):\(lineNumber): found \(f.count) columns, expected \(layout.columns)")
        }
        guard let label = Int64(f[layout.labelIndex]), label >= 0 else {
            throw DataInputError("CSV file \(path):\(lineNumber): label '\(f[layout.labelIndex])' in column \(layout.labelIndex) is not a non-negative integer")
        }
        if let nc = o.numClasses, label >= Int64(nc) {
            throw DataInputError("CSV file \(path):\(lineNumber): label \(label) is outside 0..<\(nc) (num_classes)")
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
        return (label, ())
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
        let maxLabel = max(trainLayout.maxLabel, testLayout?.maxLabel ?? -1)
        guard maxLabel < Int64(DatasetFile.maxClasses) else {
            throw DataInputError("CSV label \(maxLabel) is too large: labels must be class indices below \(DatasetFile.maxClasses)")
        }
        let numClasses = o.numClasses ?? Int(maxLabel + 1)
        let featureCount = trainLayout.columns - 1
        // Without a test file, choose exactly round(fraction·N) test rows by selection sampling
        // (Knuth's Algorithm S) with the seeded generator: one pass, no index list in memory.
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
                let (label, _) = try parse(line, lineNumber: reader.lineNumber, path: path, layout: layout, o: o,
                                           floats: &b.floats, bytes: &b.bytes)
                b.labels.append(Int32(clamping: label))
                try flush(s, force: false)
                row += 1
            }
        }
        var rng = Xoshiro256(seed: o.seed, stream: "csv-test-split")
        var needed = testFromTrain
        try copy(o.trainPath, layout: trainLayout) { row in
            guard needed > 0 else { return .train }
            let remaining = total - row
            if rng.nextInt(below: remaining) < needed { needed -= 1; return .test }
            return .train
        }
        if let t = o.testPath, let l = testLayout { try copy(t, layout: l) { _ in .test } }
        try flush(.train, force: true)
        try flush(.test, force: true)
        buffers = [:]
        let scale = o.scale ?? (o.featureType == .uint8 ? 1.0 / 255.0 : 1.0)
        let files = [o.trainPath] + (o.testPath.map { [$0] } ?? [])
        try writer.finish(numClasses: numClasses, scale: scale,
                          source: o.source ?? "CSV import of \(files.joined(separator: " and "))",
                          license: o.license ?? "unknown (set with --license)")
        return ImportSummary.of(o.output, writer, storage: store, numClasses: numClasses)
    }
}
