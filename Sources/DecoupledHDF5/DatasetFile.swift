import Foundation

/// One of the two splits of a dataset file.
public enum DatasetSplit: String, Codable, CaseIterable, Sendable {
    case train, test
    var xPath: String { "/\(rawValue)/x" }
    var yPath: String { "/\(rawValue)/y" }
}

/// A dataset file (format in datasets/README.md), opened and validated: `/train/x`, `/train/y`,
/// `/test/x`, `/test/y`; x of rank ≥ 2 (samples first) in uint8 or float32, y of rank 1 in any
/// integer type with values in 0..<num_classes; root attributes `num_classes` (inferred with
/// a notice when absent), `scale` (required for uint8 features; 1 for float32 when absent),
/// `class_names` (optional), `source` and `license`.
///
/// Everything is checked at open, so training never discovers a bad label mid-epoch. Labels
/// are scanned in bounded blocks, so opening a file larger than memory is fine.
public final class DatasetFile {
    public let path: String
    public let file: H5File
    /// Element type of the features: `.uint8` or `.float32`.
    public let featureType: H5ScalarType
    /// Shape of one sample (x's shape without the first dimension), e.g. [784] or [28, 28].
    public let sampleShape: [Int]
    /// Number of features per sample (product of `sampleShape`).
    public let featureCount: Int
    /// The `num_classes` attribute; without one, the number of `class_names`, else the largest
    /// label + 1 (and `notices` says so).
    public let numClasses: Int
    /// The `class_names` attribute: the name of each class 0..<numClasses, when the file has them
    /// (CSV imports with string labels write them).
    public let classNames: [String]?
    /// What opening the file assumed, for the user to see (an inferred num_classes).
    public let notices: [String]
    /// Multiplier turning stored features into model inputs: x_model = Float(x_stored) · scale.
    public let scale: Float
    public let source: String
    public let license: String
    public let trainCount: Int
    public let testCount: Int

    let datasets: [DatasetSplit: (x: H5Dataset, y: H5Dataset)]
    let labelTypes: [DatasetSplit: H5ScalarType]

    /// Upper bound on `num_classes`, to catch a corrupt attribute before it sizes an array.
    public static let maxClasses = 1 << 20

    /// Opens and validates `path`; each violation is a `DatasetFormatError` (or an
    /// `HDF5Error` for files HDF5 cannot read) that names file, object, expectation and finding.
    public convenience init(path: String, labelScanBlock: Int = 1 << 16) throws {
        try self.init(file: try H5File(path, mode: .readOnly), path: path, labelScanBlock: labelScanBlock)
    }

    /// Validates a file that is already open (a data set generated in memory); `path` names it
    /// in messages.
    public init(file: H5File, path: String, labelScanBlock: Int = 1 << 16) throws {
        self.path = path
        self.file = file
        func formatError(_ object: String, _ expected: String, _ found: String) -> DatasetFormatError {
            DatasetFormatError(file: path, object: object, expected: expected, found: found)
        }

        // Datasets: present, of the right kind, rank and type.
        var opened: [DatasetSplit: (x: H5Dataset, y: H5Dataset)] = [:]
        var infos: [DatasetSplit: (x: H5DatasetInfo, y: H5DatasetInfo)] = [:]
        for split in DatasetSplit.allCases {
            for p in [split.xPath, split.yPath] {
                guard let kind = try file.kind(of: p) else {
                    let top = (try? file.childNames()) ?? []
                    throw formatError(p, "a dataset \(p) (the format needs /train/x, /train/y, /test/x, /test/y)",
                                      "no such object (file root holds: \(top.isEmpty ? "nothing" : top.joined(separator: ", ")))")
                }
                guard kind == .dataset else { throw formatError(p, "a dataset", kind == .group ? "a group" : "another kind of object") }
            }
            let x = try file.openDataset(split.xPath)
            let y = try file.openDataset(split.yPath)
            let xi = try x.info(), yi = try y.info()
            guard xi.shape.count >= 2 else {
                throw formatError(split.xPath, "rank ≥ 2 (samples × features)", "rank \(xi.shape.count), shape \(xi.shape)")
            }
            guard let xt = xi.elementType, xt == .uint8 || xt == .float32 else {
                throw formatError(split.xPath, "features of type uint8 or float32", xi.storedType)
            }
            guard yi.shape.count == 1 else {
                throw formatError(split.yPath, "rank 1 (one label per sample)", "rank \(yi.shape.count), shape \(yi.shape)")
            }
            guard let yt = yi.elementType, yt.isInteger else {
                throw formatError(split.yPath, "integer labels (int8...int64 or uint8...uint64)", yi.storedType)
            }
            guard xi.shape[0] == yi.shape[0] else {
                throw formatError(split.yPath, "as many labels as \(split.xPath) has samples (\(xi.shape[0]))",
                                  "\(yi.shape[0]) labels")
            }
            // A file can declare far more samples than it holds (a 163 KB file with 2^31
            // "samples"): reads of never-written storage return fill values, not an error.
            for (d, i, p) in [(x, xi, split.xPath), (y, yi, split.yPath)] where i.elementCount > 0 {
                let raw = i.elementCount * (i.elementType?.byteSize ?? 0)
                if let chunk = i.chunkShape {
                    let expected = zip(i.shape, chunk).reduce(1) { $0 * (($1.0 + $1.1 - 1) / max($1.1, 1)) }
                    if let written = try d.allocatedChunks(), written < expected {
                        throw formatError(p, "data for all \(i.shape[0]) samples it declares (\(expected) chunks of \(chunk))",
                                          "only \(written) chunk(s) were ever written")
                    }
                } else if i.storageBytes < raw {
                    throw formatError(p, "data for all \(i.shape[0]) samples it declares (\(raw) bytes)",
                                      "only \(i.storageBytes) bytes are stored")
                }
            }
            opened[split] = (x, y)
            infos[split] = (xi, yi)
        }
        let train = infos[.train]!, test = infos[.test]!
        var largestAt: (split: DatasetSplit, index: Int)? = nil
        guard train.x.elementType == test.x.elementType else {
            throw formatError(DatasetSplit.test.xPath, "the same feature type as /train/x (\(train.x.storedType))", test.x.storedType)
        }
        guard Array(train.x.shape.dropFirst()) == Array(test.x.shape.dropFirst()) else {
            throw formatError(DatasetSplit.test.xPath, "the sample shape of /train/x \(Array(train.x.shape.dropFirst()))",
                              "\(Array(test.x.shape.dropFirst()))")
        }
        guard train.x.shape[0] > 0 else { throw formatError(DatasetSplit.train.xPath, "at least one training sample", "0") }
        featureType = train.x.elementType!
        sampleShape = Array(train.x.shape.dropFirst())
        featureCount = sampleShape.reduce(1, *)
        guard featureCount > 0 else { throw formatError(DatasetSplit.train.xPath, "at least one feature per sample", "shape \(train.x.shape)") }
        trainCount = train.x.shape[0]
        testCount = test.x.shape[0]
        datasets = opened
        labelTypes = [.train: train.y.elementType!, .test: test.y.elementType!]

        // Labels: scanned in bounded blocks for their range before num_classes is known, so a
        // file without the attribute can have it inferred.
        var largest: Int64 = -1
        for split in DatasetSplit.allCases {
            let y = opened[split]!.y
            let n = split == .train ? trainCount : testCount
            var start = 0
            while start < n {
                let count = min(labelScanBlock, n - start)
                // HDF5 clips uint64 values ≥ 2^63 to Int64.max on conversion, which still fails the check.
                let block = try y.read(start: [start], count: [count], as: Int64.self, converting: labelTypes[split] != .int64)
                for (i, v) in block.enumerated() {
                    if v < 0 { throw formatError(split.yPath, "labels ≥ 0 (class indices)", "label \(v) at index \(start + i)") }
                    if v > largest { largest = v; largestAt = (split, start + i) }
                }
                start += count
            }
        }

        // Attributes.
        var notices: [String] = []
        var names: [String]? = nil
        if try file.hasAttribute("class_names") {
            guard case .strings(let list) = try file.attribute("class_names"), !list.isEmpty else {
                throw formatError("class_names", "a list of strings (one name per class)", "\((try? file.attribute("class_names").description) ?? "an unreadable value")")
            }
            names = list
        }
        let nc: Int64
        if try file.hasAttribute("num_classes") {
            do { nc = try file.integerAttribute("num_classes") } catch let e as HDF5Error {
                throw formatError("num_classes", "one integer ≥ 1", e.reason)
            }
        } else if let names {
            nc = Int64(names.count)
            notices.append("\(path) has no num_classes attribute; using \(nc), the number of class_names")
        } else {
            // h5py files written by hand often leave it out; the labels say how many classes
            // there are at least, and a notice says what was assumed.
            nc = largest + 1
            notices.append("\(path) has no num_classes attribute; inferred \(nc) (largest label + 1)"
                           + " — set it to be sure, e.g. in h5py: f.attrs[\"num_classes\"] = \(max(nc, 1))")
        }
        guard nc >= 1 && nc <= Int64(DatasetFile.maxClasses) else {
            throw formatError("num_classes", "an integer in 1...\(DatasetFile.maxClasses)", "\(nc)")
        }
        if largest >= nc, let at = largestAt {
            throw formatError(at.split.yPath, "labels in 0..<\(nc) (num_classes = \(nc))", "label \(largest) at index \(at.index)")
        }
        if let names, names.count != Int(nc) {
            throw formatError("class_names", "\(nc) names (num_classes = \(nc))", "\(names.count): \(names.prefix(8).joined(separator: ", "))\(names.count > 8 ? ", …" : "")")
        }
        numClasses = Int(nc)
        classNames = names
        self.notices = notices
        if try file.hasAttribute("scale") {
            let s: Double
            do { s = try file.doubleAttribute("scale") } catch let e as HDF5Error {
                throw formatError("scale", "one positive finite number", e.reason)
            }
            guard s.isFinite && s > 0 else { throw formatError("scale", "a positive finite number", "\(s)") }
            scale = Float(s)
        } else if featureType == .float32 {
            scale = 1
        } else {
            throw formatError("scale", "a root attribute scale for uint8 features (e.g. 1/255)", "no such attribute")
        }
        source = (try? file.stringAttribute("source")) ?? ""
        license = (try? file.stringAttribute("license")) ?? ""
    }

    /// The name of class `c`: its `class_names` entry, or the index.
    public func className(_ c: Int) -> String { classNames.map { $0[c] } ?? "\(c)" }

    public func count(_ split: DatasetSplit) -> Int { split == .train ? trainCount : testCount }

    /// The first non-finite feature of a split (NaN or ±Inf; only float32 files can hold one),
    /// scanned in bounded blocks: `(sample, value)`, nil when every feature is finite.
    public func firstNonFiniteFeature(_ split: DatasetSplit, blockFloats: Int = 1 << 20) throws -> (sample: Int, value: Float)? {
        guard featureType == .float32 else { return nil }
        let n = count(split), rows = max(1, blockFloats / featureCount)
        var start = 0
        while start < n {
            let c = min(rows, n - start)
            let block = try features(split).read(start: [start] + sampleShape.map { _ in 0 }, count: [c] + sampleShape, as: Float.self)
            if let i = block.firstIndex(where: { !$0.isFinite }) { return (start + i / featureCount, block[i]) }
            start += c
        }
        return nil
    }
    public func features(_ split: DatasetSplit) -> H5Dataset { datasets[split]!.x }
    public func labels(_ split: DatasetSplit) -> H5Dataset { datasets[split]!.y }
    public func labelType(_ split: DatasetSplit) -> H5ScalarType { labelTypes[split]! }

    /// Number of samples of each class in a split.
    public func classCounts(_ split: DatasetSplit) throws -> [Int] {
        var counts = [Int](repeating: 0, count: numClasses)
        for v in try allLabels(split) { counts[Int(v)] += 1 }
        return counts
    }
}
