import Foundation

/// `decoupled data inspect`: every group and dataset of an HDF5 file with shape, type,
/// chunking, filters, size and attributes; for dataset-format files also the validation result
/// and the class balance of each split.
public enum DatasetInspector {
    public struct Report {
        public var text: String
        /// nil when the file is a valid dataset file or not meant as one (no /train, /test).
        public var formatError: Error?
    }

    public static func inspect(path: String) throws -> Report {
        let file = try H5File(path, mode: .readOnly)
        var out = ""
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        out += "\(path)  (\(mib(size)) on disk)\n"
        try describe(file, into: &out, indent: "  ")
        var formatError: Error? = nil
        let looksLikeDataset = try file.contains("train") || file.contains("test")
        if looksLikeDataset {
            do {
                let ds = try DatasetFile(path: path)
                for split in DatasetSplit.allCases {
                    if let bad = try ds.firstNonFiniteFeature(split) {
                        throw DatasetFormatError(file: path, object: split.xPath, expected: "finite features (no NaN or ±Inf)",
                                                 found: "\(bad.value) in sample \(bad.sample)")
                    }
                }
                out += "\ndataset format: valid — \(ds.trainCount) train, \(ds.testCount) test, "
                    + "\(ds.featureCount) \(ds.featureType) features × scale \(ds.scale), \(ds.numClasses) classes\n"
                for notice in ds.notices { out += "  notice: \(notice)\n" }
                if let names = ds.classNames {
                    out += "  class names: " + names.enumerated().map { "\($0.offset) \($0.element)" }.prefix(64).joined(separator: ", ")
                        + (names.count > 64 ? ", … (\(names.count) in all)" : "") + "\n"
                }
                for split in DatasetSplit.allCases {
                    let counts = try ds.classCounts(split)
                    let n = max(ds.count(split), 1)
                    out += "  class balance /\(split.rawValue)/y:"
                    if counts.count <= 64 {
                        out += "\n"
                        for (c, k) in counts.enumerated() {
                            let name = ds.classNames.map { " (\($0[c]))" } ?? ""
                            out += "    class \(c)\(name): " + String(format: "%d (%.1f%%)\n", k, 100 * Double(k) / Double(n))
                        }
                    } else {
                        let nonEmpty = counts.filter { $0 > 0 }
                        out += " \(nonEmpty.count) of \(counts.count) classes present, min \(nonEmpty.min() ?? 0), max \(counts.max() ?? 0)\n"
                    }
                }
            } catch {
                formatError = error
                out += "\ndataset format: INVALID — \(error)\n"
            }
        }
        return Report(text: out, formatError: formatError)
    }

    static func mib(_ bytes: Int) -> String {
        bytes >= 1 << 20 ? String(format: "%.2f MiB", Double(bytes) / 1_048_576) : "\(bytes) bytes"
    }

    static func describe(_ c: H5Container, into out: inout String, indent: String) throws {
        for name in try c.attributeNames() {
            let value = (try? c.attribute(name).description) ?? "(unreadable)"
            out += "\(indent)@\(name) = \(value.count > 200 ? String(value.prefix(200)) + "…" : value)\n"
        }
        for name in try c.childNames() {
            switch try c.kind(of: name) {
            case .group?:
                let g = try c.openGroup(name)
                out += "\(indent)\(g.objectPath)/\n"
                try describe(g, into: &out, indent: indent + "  ")
            case .dataset?:
                let d = try c.openDataset(name)
                let i = try d.info()
                let chunk = i.chunkShape.map { "chunks \($0)" } ?? "contiguous"
                let filters = i.filters.isEmpty ? "" : ", " + i.filters.map(\.description).joined(separator: " + ")
                let raw = i.elementCount * (i.elementType?.byteSize ?? 0)
                let ratio = raw > 0 && i.storageBytes > 0 ? String(format: " (%.2fx)", Double(raw) / Double(i.storageBytes)) : ""
                out += "\(indent)\(d.objectPath)  \(i.storedType) \(i.shape)  \(chunk)\(filters)  \(mib(i.storageBytes))\(ratio)\n"
                for a in try d.attributeNames() {
                    out += "\(indent)  @\(a) = \((try? d.attribute(a).description) ?? "(unreadable)")\n"
                }
            default:
                out += "\(indent)\(c.childPath(name))  (other object)\n"
            }
        }
    }
}
