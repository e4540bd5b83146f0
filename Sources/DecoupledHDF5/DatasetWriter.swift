import Foundation
import DecoupledSystem

/// How a dataset file's arrays are laid out on disk.
public struct DatasetStorage: Equatable, Sendable, CustomStringConvertible {
    /// Rows per chunk; nil stores x and y contiguously (no filters possible).
    public var chunkRows: Int?
    /// gzip level 0...9, or nil for none.
    public var gzipLevel: Int?
    /// Byte shuffle before gzip (helps multi-byte types; a no-op for uint8).
    public var shuffle: Bool
    public var fletcher32: Bool

    public init(chunkRows: Int?, gzipLevel: Int? = nil, shuffle: Bool = false, fletcher32: Bool = false) {
        self.chunkRows = chunkRows
        self.gzipLevel = gzipLevel
        self.shuffle = shuffle
        self.fletcher32 = fletcher32
    }

    public static let contiguous = DatasetStorage(chunkRows: nil)

    /// Target size of one feature chunk: big enough that per-chunk overhead vanishes and gzip
    /// finds repetition, small enough that the loader's block permutation stays fine-grained
    /// and that random single-row readers (h5py) do not decompress megabytes per row.
    public static let targetChunkBytes = 256 << 10

    /// Rows per chunk for rows of `rowBytes` bytes at the target chunk size.
    public static func defaultChunkRows(rowBytes: Int) -> Int { max(1, targetChunkBytes / max(rowBytes, 1)) }

    /// Chunked + gzip level 4 + shuffle, the importers' default.
    public static func compressed(rowBytes: Int, level: Int = 4) -> DatasetStorage {
        DatasetStorage(chunkRows: defaultChunkRows(rowBytes: rowBytes), gzipLevel: level, shuffle: true)
    }

    public var description: String {
        guard let rows = chunkRows else { return "contiguous" }
        var parts = ["chunks of \(rows) rows"]
        if shuffle { parts.append("shuffle") }
        if let g = gzipLevel { parts.append("gzip \(g)") }
        if fletcher32 { parts.append("fletcher32") }
        return parts.joined(separator: ", ")
    }
}

/// Writes a dataset file in the format of datasets/README.md, row block by row block, so an
/// importer never holds a whole split in memory. The file is written as `PATH.tmp` and renamed
/// into place by `finish`, so a failed import leaves no half-written dataset behind.
public final class DatasetWriter {
    public let path: String
    public let featureType: H5ScalarType
    public let labelType: H5ScalarType
    public let sampleShape: [Int]
    public let counts: [DatasetSplit: Int]
    private let tmpPath: String
    private let inMemory: Bool
    private var file: H5File?
    private var x: [DatasetSplit: H5Dataset] = [:]
    private var y: [DatasetSplit: H5Dataset] = [:]
    private var written: [DatasetSplit: Int] = [.train: 0, .test: 0]
    private var maxLabel: Int64 = -1

    /// - Parameters:
    ///   - featureType: `.uint8` or `.float32`.
    ///   - labelType: any integer type wide enough for the classes (importers use uint8 for
    ///     ≤ 256 classes, else int32).
    ///   - counts: samples per split, known up front so the datasets have fixed shapes.
    public convenience init(path: String, featureType: H5ScalarType, labelType: H5ScalarType = .int32, sampleShape: [Int],
                            counts: [DatasetSplit: Int], storage: DatasetStorage) throws {
        try self.init(path: path, inMemory: false, featureType: featureType, labelType: labelType,
                      sampleShape: sampleShape, counts: counts, storage: storage)
    }

    /// A writer whose file lives in memory only (HDF5's core driver without a backing store):
    /// `finishInMemory` hands it over as an open `DatasetFile`, and nothing touches the disk.
    /// `name` stands for the file in messages. For generated data sets (`synthetic:…`).
    public convenience init(memoryNamed name: String, featureType: H5ScalarType, labelType: H5ScalarType = .int32,
                            sampleShape: [Int], counts: [DatasetSplit: Int]) throws {
        try self.init(path: name, inMemory: true, featureType: featureType, labelType: labelType,
                      sampleShape: sampleShape, counts: counts, storage: .contiguous)
    }

    private init(path: String, inMemory: Bool, featureType: H5ScalarType, labelType: H5ScalarType, sampleShape: [Int],
                 counts: [DatasetSplit: Int], storage: DatasetStorage) throws {
        guard featureType == .uint8 || featureType == .float32 else {
            throw DataInputError("dataset features must be uint8 or float32, not \(featureType)")
        }
        guard labelType.isInteger else { throw DataInputError("dataset labels must be integers, not \(labelType)") }
        guard !sampleShape.isEmpty, sampleShape.allSatisfy({ $0 > 0 }) else {
            throw DataInputError("sample shape must be non-empty and positive, got \(sampleShape)")
        }
        self.path = path
        self.featureType = featureType
        self.labelType = labelType
        self.sampleShape = sampleShape
        self.counts = counts
        self.inMemory = inMemory
        tmpPath = path + FS.temporarySuffix
        let f: H5File
        if inMemory {
            // HDF5 keeps one namespace of open files, memory ones included: a unique name lets
            // two sessions (or tests) hold the same generated data set at once.
            f = try H5File("\(path)#\(UUID().uuidString)", mode: .memory)
        } else {
            // A leftover PATH.tmp (or a link planted there) is removed, not followed; the exclusive
            // create (O_EXCL) then refuses whatever appears at that name meanwhile.
            FS.unlinkIfPresent(tmpPath)
            f = try H5File(tmpPath, mode: .createExclusive)
        }
        file = f
        for split in DatasetSplit.allCases {
            let n = counts[split] ?? 0
            var xOptions = H5DatasetOptions(), yOptions = H5DatasetOptions()
            if let rows = storage.chunkRows {
                // A chunk cannot exceed a fixed dimension; empty splits still get a chunk of 1 row.
                let r = max(1, min(rows, n))
                xOptions = H5DatasetOptions(chunkShape: [r] + sampleShape, gzipLevel: storage.gzipLevel,
                                            shuffle: storage.shuffle, fletcher32: storage.fletcher32,
                                            maxShape: n == 0 ? [nil] + sampleShape.map { Optional($0) } : nil)
                // Labels chunked with the same rows, so the loader's aligned blocks read whole label chunks too.
                yOptions = H5DatasetOptions(chunkShape: [r], gzipLevel: storage.gzipLevel, shuffle: storage.shuffle,
                                            fletcher32: storage.fletcher32, maxShape: n == 0 ? [nil] : nil)
            }
            x[split] = try f.createDataset(split.xPath, type: featureType, shape: [n] + sampleShape, options: xOptions)
            y[split] = try f.createDataset(split.yPath, type: labelType, shape: [n], options: yOptions)
        }
    }

    deinit {
        if file != nil {
            // Not finished: drop the partial file.
            x = [:]; y = [:]
            try? file?.close()
            file = nil
            if !inMemory { FS.unlinkIfPresent(tmpPath) }
        }
    }

    /// Appends `labels.count` rows to `split`; `features` holds them row-major and must be of
    /// the writer's feature type.
    public func append<T: H5Scalar>(_ split: DatasetSplit, features: [T], labels: [Int32]) throws {
        guard T.h5Type == featureType else {
            throw DataInputError("writing \(path): features are \(featureType), got \(T.h5Type) values")
        }
        let rowElements = sampleShape.reduce(1, *)
        guard features.count == labels.count * rowElements else {
            throw DataInputError("writing \(path): \(labels.count) labels need \(labels.count * rowElements) feature values, got \(features.count)")
        }
        let start = written[split]!, n = labels.count, total = counts[split] ?? 0
        guard start + n <= total else {
            throw DataInputError("writing \(path): split \(split.rawValue) was declared with \(total) samples, got more")
        }
        if n == 0 { return }
        for l in labels {
            guard l >= 0 else { throw DataInputError("writing \(path): negative label \(l) in split \(split.rawValue)") }
            maxLabel = max(maxLabel, Int64(l))
        }
        try x[split]!.write(features, start: [start] + sampleShape.map { _ in 0 }, count: [n] + sampleShape)
        try y[split]!.write(labels, start: [start], count: [n], converting: labelType != .int32)
        written[split] = start + n
    }

    /// Writes the attributes, checks every declared row was written and labels fit
    /// `numClasses`, closes the file and renames it into place. `classNames`, when given, name
    /// the classes 0..<numClasses in order (the `class_names` attribute).
    public func finish(numClasses: Int, scale: Double, source: String, license: String,
                       classNames: [String]? = nil) throws {
        guard !inMemory else { throw DataInputError("writing \(path): a data set in memory ends with finishInMemory") }
        let f = try completeFile(numClasses: numClasses, scale: scale, source: source, license: license, classNames: classNames)
        try f.close()
        // rename(2) replaces an existing file (or a link at PATH, not its target) atomically:
        // readers see the old or the new dataset.
        do { try FS.renameFile(tmpPath, path) } catch {
            throw DataInputError("writing \(path): \(error)")
        }
    }

    /// Writes the attributes of a writer made with `init(memoryNamed:…)` and opens the result.
    public func finishInMemory(numClasses: Int, scale: Double, source: String, license: String,
                               classNames: [String]? = nil) throws -> DatasetFile {
        guard inMemory else { throw DataInputError("writing \(path): a data set on disk ends with finish") }
        let f = try completeFile(numClasses: numClasses, scale: scale, source: source, license: license, classNames: classNames)
        return try DatasetFile(file: f, path: path)
    }

    /// Checks the counts, writes the root attributes and closes the datasets; the file stays open.
    private func completeFile(numClasses: Int, scale: Double, source: String, license: String,
                              classNames: [String]?) throws -> H5File {
        guard let f = file else { throw DataInputError("writing \(path): already finished") }
        for split in DatasetSplit.allCases where written[split]! != (counts[split] ?? 0) {
            throw DataInputError("writing \(path): split \(split.rawValue) declared \(counts[split] ?? 0) samples, \(written[split]!) written")
        }
        guard numClasses >= 1, maxLabel < Int64(numClasses) else {
            throw DataInputError("writing \(path): labels go up to \(maxLabel), which does not fit num_classes = \(numClasses)")
        }
        guard scale.isFinite && scale > 0 else { throw DataInputError("writing \(path): scale must be positive, got \(scale)") }
        if let names = classNames, names.count != numClasses {
            throw DataInputError("writing \(path): \(names.count) class names for num_classes = \(numClasses)")
        }
        try f.setAttribute("num_classes", Int64(numClasses))
        try f.setAttribute("scale", scale)
        try f.setAttribute("source", source)
        try f.setAttribute("license", license)
        if let names = classNames { try f.setAttribute("class_names", names) }
        try f.setAttribute("format", "decoupled-dataset")
        try f.setAttribute("format_version", Int64(1))
        for d in Array(x.values) + Array(y.values) { try d.close() }
        x = [:]; y = [:]
        file = nil
        return f
    }
}
