import Foundation

/// The names that make up checkpoint format 1, described in docs/checkpoint-format.md.
/// Everything that reads or writes a checkpoint takes its names from here.
public enum CheckpointFormat {
    /// The value of the root attribute `format_version` this build writes and reads.
    public static let version = 1
    /// The subdirectory of a run directory that holds the checkpoints.
    public static let directoryName = "checkpoints"
    /// The file in the checkpoint directory naming the checkpoint marked best (one line).
    public static let bestMarkerName = "best.txt"
    /// Suffix of files being written; a leftover one is a crashed save.
    public static let temporarySuffix = FS.temporarySuffix

    static let formatVersionAttribute = "format_version"
    static let stepAttribute = "step"
    static let epochAttribute = "epoch"
    /// Per-dataset attribute: CRC-32 (zlib polynomial) of the dataset's raw bytes as stored.
    static let checksumAttribute = "crc32"

    static let paramsGroup = "/params"
    static let stateGroup = "/state"
    static let metaGroup = "/meta"
    static let configPath = "/meta/config"
    static let pluginsPath = "/meta/plugins"
    static let runStatePath = "/meta/run_state"
    static let metaDatasets = [configPath, pluginsPath, runStatePath]

    private static let prefix = "ckpt-"
    private static let suffix = ".h5"

    /// `ckpt-<step zero-padded to 10 digits>.h5`; the padding makes name order step order
    /// (up to step 9 999 999 999; later steps simply get more digits).
    public static func fileName(step: Int) -> String {
        prefix + String(format: "%010lld", Int64(step)) + suffix
    }

    /// The step a checkpoint file name encodes, or nil when the name is not one of ours.
    public static func step(fromFileName name: String) -> Int? {
        guard name.hasPrefix(prefix), name.hasSuffix(suffix) else { return nil }
        let digits = name.dropFirst(prefix.count).dropLast(suffix.count)
        guard digits.count >= 10, digits.allSatisfy({ $0 >= "0" && $0 <= "9" }) else { return nil }
        return Int(digits)
    }

    /// Whether `name` is a temporary file of ours: a checkpoint or the best marker being
    /// written. Other `.tmp` files a user leaves in the directory are not touched.
    static func isTemporaryFileName(_ name: String) -> Bool {
        guard name.hasSuffix(temporarySuffix) else { return false }
        let base = String(name.dropLast(temporarySuffix.count))
        return base == bestMarkerName || step(fromFileName: base) != nil
    }

    /// Why `name` cannot be an HDF5 link name in our flat layout, or nil when it can. A "/"
    /// would make HDF5 create nested groups and "." names the group itself.
    static func invalidLinkName(_ name: String) -> String? {
        if name.isEmpty { return "it is empty" }
        if name == "." || name == ".." { return "'\(name)' is reserved" }
        if name.contains("/") { return "it contains '/', which HDF5 reads as a group separator" }
        if name.unicodeScalars.contains(where: { $0.value == 0 }) { return "it contains a NUL character" }
        return nil
    }
}
