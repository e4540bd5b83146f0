import CHDF5
import Foundation

/// A file or a group: something that holds groups and datasets.
public class H5Container: H5Object {
    /// What a link inside a container points at.
    public enum ChildKind: Equatable { case group, dataset, other }

    /// Whether `path` (relative or absolute) names an existing object. Each component is
    /// checked in turn, because H5Lexists fails rather than answering when a parent is missing.
    public func contains(_ path: String) throws -> Bool {
        let cid = try liveID("look up '\(path)'")
        let parts = path.split(separator: "/").map(String.init)
        var prefix = path.hasPrefix("/") ? "/" : ""
        for part in parts {
            prefix += (prefix.isEmpty || prefix.hasSuffix("/") ? "" : "/") + part
            let exists = try H5.call("look up", at(childPath(path))) { H5Lexists(cid, prefix, dc_h5p_default()) }
            if exists <= 0 { return false }
        }
        return true
    }

    /// What `path` is; nil when it does not exist.
    public func kind(of path: String) throws -> ChildKind? {
        guard try contains(path) else { return nil }
        let cid = try liveID("look up '\(path)'")
        let t = H5.unchecked { dc_h5o_type_by_name(cid, path) }
        switch t {
        case Int32(H5O_TYPE_GROUP.rawValue): return .group
        case Int32(H5O_TYPE_DATASET.rawValue): return .dataset
        default: return .other
        }
    }

    /// Names of the direct children, in name order.
    public func childNames() throws -> [String] {
        let cid = try liveID("list children")
        var count: hsize_t = 0
        try H5.call("list children", at) { dc_h5g_num_links(cid, &count) }
        var names: [String] = []
        for i in 0..<count {
            let len = try H5.call("read link name", at) { dc_h5l_name_by_idx(cid, i, nil, 0) }
            var buf = [CChar](repeating: 0, count: Int(len) + 1)
            try H5.call("read link name", at) { dc_h5l_name_by_idx(cid, i, &buf, buf.count) }
            names.append(String(cString: buf))
        }
        return names
    }

    /// An error for a missing object that lists what the parent does contain.
    func missing(_ path: String, _ operation: String) -> HDF5Error {
        let full = childPath(path)
        var parentPath = String(full[..<(full.lastIndex(of: "/") ?? full.startIndex)])
        if parentPath.isEmpty { parentPath = "/" }
        var reason = "no such object"
        if let owner = (self as? H5File) ?? owner, let parentKind = try? owner.kind(of: parentPath) {
            if parentKind == .group, let g = try? owner.openGroup(parentPath), let names = try? g.childNames() {
                reason += " (\(parentPath) holds: \(names.isEmpty ? "nothing" : names.joined(separator: ", ")))"
            }
        } else if parentPath != "/" {
            reason += " (no group \(parentPath) either)"
        }
        return HDF5Error(operation: operation, file: filePath, object: full, reason: reason)
    }

    // MARK: groups

    /// Opens an existing group.
    public func openGroup(_ path: String) throws -> H5Group {
        let cid = try liveID("open group '\(path)'")
        let full = childPath(path)
        if path != "/" && path != "." {
            guard let k = try kind(of: path) else { throw missing(path, "open group") }
            guard k == .group else {
                throw HDF5Error(operation: "open group", file: filePath, object: full, reason: "it is a dataset, not a group")
            }
        }
        let gid = try H5.call("open group", at(full)) { H5Gopen2(cid, path, dc_h5p_default()) }
        return H5Group(id: gid, filePath: filePath, objectPath: full, owner: (self as? H5File) ?? owner)
    }

    /// Creates a group, with any missing intermediate groups; an existing group is opened.
    @discardableResult
    public func createGroup(_ path: String) throws -> H5Group {
        if try contains(path) { return try openGroup(path) }
        let cid = try liveID("create group '\(path)'")
        let full = childPath(path)
        let lcpl = try H5.call("create link property list", at(full)) { H5Pcreate(dc_h5p_link_create()) }
        defer { H5.unchecked { _ = H5Pclose(lcpl) } }
        try H5.call("enable intermediate groups", at(full)) { H5Pset_create_intermediate_group(lcpl, 1) }
        let gid = try H5.call("create group", at(full)) {
            H5Gcreate2(cid, path, lcpl, dc_h5p_default(), dc_h5p_default())
        }
        return H5Group(id: gid, filePath: filePath, objectPath: full, owner: (self as? H5File) ?? owner)
    }

    /// Removes the link `path` (the object's space is reclaimed by HDF5 when unreferenced;
    /// the file does not shrink, which is why checkpoints are written to a fresh file).
    public func remove(_ path: String) throws {
        let cid = try liveID("remove '\(path)'")
        guard try contains(path) else { throw missing(path, "remove") }
        try H5.call("remove", at(childPath(path))) { H5Ldelete(cid, path, dc_h5p_default()) }
    }

    // MARK: datasets

    /// Creates a dataset of the given element type and shape (intermediate groups are created).
    public func createDataset(_ path: String, type: H5ScalarType, shape: [Int],
                              options: H5DatasetOptions = H5DatasetOptions()) throws -> H5Dataset {
        let cid = try liveID("create dataset '\(path)'")
        let full = childPath(path)
        let where_ = at(full)
        try options.validate(shape: shape, where_)
        if try contains(path) {
            throw HDF5Error(operation: "create dataset", file: filePath, object: full, reason: "an object of that name already exists")
        }
        let space = try makeDataspace(shape, maxShape: options.maxShape, where_)
        defer { H5.unchecked { _ = H5Sclose(space) } }
        let dcpl = try options.makeCreationPlist(where_)
        defer { H5.unchecked { _ = H5Pclose(dcpl) } }
        let lcpl = try H5.call("create link property list", where_) { H5Pcreate(dc_h5p_link_create()) }
        defer { H5.unchecked { _ = H5Pclose(lcpl) } }
        try H5.call("enable intermediate groups", where_) { H5Pset_create_intermediate_group(lcpl, 1) }
        let did = try H5.call("create dataset", where_) {
            H5Dcreate2(cid, path, type.nativeTypeID, space, lcpl, dcpl, dc_h5p_default())
        }
        return H5Dataset(id: did, filePath: filePath, objectPath: full, owner: (self as? H5File) ?? owner)
    }

    /// Creates a dataset holding `values` (shape defaults to one dimension).
    @discardableResult
    public func createDataset<T: H5Scalar>(_ path: String, values: [T], shape: [Int]? = nil,
                                           options: H5DatasetOptions = H5DatasetOptions()) throws -> H5Dataset {
        let ds = try createDataset(path, type: T.h5Type, shape: shape ?? [values.count], options: options)
        try ds.write(values)
        return ds
    }

    /// Opens an existing dataset. `chunkCacheBytes` sizes HDF5's per-dataset chunk cache
    /// (default: HDF5's 1 MiB); the streaming loader reads whole chunks and keeps it small.
    public func openDataset(_ path: String, chunkCacheBytes: Int? = nil) throws -> H5Dataset {
        let cid = try liveID("open dataset '\(path)'")
        let full = childPath(path)
        let where_ = at(full)
        guard let k = try kind(of: path) else { throw missing(path, "open dataset") }
        guard k == .dataset else {
            throw HDF5Error(operation: "open dataset", file: filePath, object: full,
                            reason: k == .group ? "it is a group, not a dataset" : "it is not a dataset")
        }
        var dapl = dc_h5p_default()
        if let bytes = chunkCacheBytes {
            dapl = try H5.call("create dataset access list", where_) { H5Pcreate(dc_h5p_dataset_access()) }
            // 521 hash slots (prime, HDF5's default) suffice: the loader touches few chunks at once.
            try H5.call("set chunk cache", where_) { H5Pset_chunk_cache(dapl, 521, max(bytes, 0), 1.0) }
        }
        defer { if dapl != dc_h5p_default() { H5.unchecked { _ = H5Pclose(dapl) } } }
        let did = try H5.call("open dataset", where_) { H5Dopen2(cid, path, dapl) }
        return H5Dataset(id: did, filePath: filePath, objectPath: full, owner: (self as? H5File) ?? owner)
    }
}

/// An HDF5 group.
public final class H5Group: H5Container {
    init(id: hid_t, filePath: String, objectPath: String, owner: H5File?) {
        super.init(id: id, kind: .group, filePath: filePath, objectPath: objectPath, owner: owner)
    }

    /// Closes the group now (otherwise it is closed when the last reference goes away).
    public func close() throws { try closeChecked("close group") }
}

/// An HDF5 file. Groups and datasets opened from it keep it alive; `close()` refuses while
/// any are still open, so "closed" really means the file is closed on disk (which the
/// checkpoint writer relies on before it fsyncs and renames).
public final class H5File: H5Container {
    public enum Mode: Equatable {
        /// Open an existing file for reading.
        case readOnly
        /// Open an existing file for reading and writing.
        case readWrite
        /// Create a file, replacing any existing one.
        case create
        /// Create a file, failing if it exists.
        case createExclusive
        /// Create a file that lives in memory only (HDF5's core driver without a backing
        /// store): nothing is written to disk, and the contents are gone when it is closed.
        case memory
    }

    public let mode: Mode

    /// Cap of HDF5's metadata cache per file opened for reading, in HDF5's accounting (on-disk
    /// bytes of the cached entries). Why so small: the default adapts up to 32 MiB, and a v1
    /// B-tree chunk-index node (what h5py and HDF5's default format write) occupies about 2.5 KiB
    /// on disk but ~35 KiB in memory (its keys are sized for rank 32), so on a file with many
    /// chunks the cache's real footprint grew with the dataset (≈ 5 MiB more for 2 GB than for
    /// 200 MB). 256 KiB keeps the B-tree's upper levels cached; a missed leaf costs one small
    /// read from the page cache per chunk-sized block, next to the chunk itself.
    public static let metadataCacheBytes = 256 << 10

    /// Opens or creates `path`. A missing file, a file that is not HDF5 and a truncated file
    /// are each reported as an `HDF5Error` naming the path.
    ///
    /// `checksummedMetadata` (create modes only) writes the HDF5 1.8 file format
    /// (`H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V18)`): its superblock (v2) and
    /// object headers (v2) carry checksums that HDF5 verifies on every read, so a flipped byte
    /// in a group, dataset header or attribute is reported instead of being read as a different
    /// value (in a small test file 97 metadata bytes changed a value silently when flipped with
    /// the default, earliest format; none with this one).
    /// Readable by HDF5 ≥ 1.8 and h5py. Raw data is not covered: checkpoints checksum it themselves.
    public init(_ path: String, mode: Mode = .readOnly, checksummedMetadata: Bool = false) throws {
        let where_ = H5Where(file: path, object: "")
        self.mode = mode
        let fid: hid_t
        switch mode {
        // HDF5's own file locks are flock(2) locks, held by every process that inherited the
        // descriptor: any concurrent fork/exec (a compiler, a sweep's worker) that slips in
        // before FD_CLOEXEC can leave a file "locked" by a child. Writers here never share a
        // file (they write NAME.tmp and rename), and run directories get their own lock file,
        // so HDF5's locking is turned off rather than left to fail at random.
        case .readOnly, .readWrite:
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
                throw HDF5Error(operation: "open file", file: path, object: "", reason: "no such file")
            }
            guard !isDir.boolValue else {
                throw HDF5Error(operation: "open file", file: path, object: "", reason: "it is a directory")
            }
            let flags = mode == .readOnly ? dc_h5f_acc_rdonly() : dc_h5f_acc_rdwr()
            let fapl = try H5.call("create file access list", where_) { H5Pcreate(dc_h5p_file_access()) }
            defer { H5.unchecked { _ = H5Pclose(fapl) } }
            try H5.call("limit metadata cache", where_) { dc_h5p_limit_metadata_cache(fapl, H5File.metadataCacheBytes) }
            try H5.call("disable file locking", where_) { H5Pset_file_locking(fapl, false, true) }
            do {
                fid = try H5.locked {
                    let id = try H5.call("open file", where_) { H5Fopen(path, flags, fapl) }
                    H5File.setCloseOnExec(id)
                    return id
                }
            } catch var e as HDF5Error {
                e.reason = H5File.explain(e.reason, stack: e.stack, path: path)
                throw e
            }
        case .create, .createExclusive, .memory:
            let flags = mode == .createExclusive ? dc_h5f_acc_excl() : dc_h5f_acc_trunc()
            let fapl = try H5.call("create file access list", where_) { H5Pcreate(dc_h5p_file_access()) }
            defer { H5.unchecked { _ = H5Pclose(fapl) } }
            try H5.call("disable file locking", where_) { H5Pset_file_locking(fapl, false, true) }
            if mode == .memory {
                try H5.call("keep the file in memory", where_) { H5Pset_fapl_core(fapl, 1 << 20, false) }
            }
            if checksummedMetadata {
                try H5.call("select the HDF5 1.8 file format", where_) {
                    H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V18)
                }
            }
            fid = try H5.locked {
                let id = try H5.call("create file", where_) {
                    H5Fcreate(path, flags, dc_h5p_default(), fapl)
                }
                if mode != .memory { H5File.setCloseOnExec(id) }  // no descriptor: the core driver's handle is its memory
                return id
            }
        }
        super.init(id: fid, kind: .file, filePath: path, objectPath: "/", owner: nil)
    }

    /// HDF5 opens files without O_CLOEXEC; a child process (h5py in tests, benchmark probes,
    /// sweep runners) would inherit the descriptor and keep HDF5's flock alive after we close
    /// the file, making the next open fail. Called under the library lock, right after opening.
    private static func setCloseOnExec(_ fid: hid_t) {
        var handle: UnsafeMutableRawPointer? = nil
        let fapl = H5Fget_access_plist(fid)
        guard fapl >= 0 else { return }
        defer { _ = H5Pclose(fapl) }
        guard H5Fget_vfd_handle(fid, fapl, &handle) >= 0, let handle else { return }
        let fd = handle.load(as: Int32.self)
        let flags = fcntl(fd, F_GETFD)
        if flags >= 0 { _ = fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
    }

    /// Rewords HDF5's innermost message for the common ways a file is unreadable.
    private static func explain(_ reason: String, stack: [String], path: String) -> String {
        let all = ([reason] + stack).joined(separator: " | ")
        if all.contains("signature not found") {
            return "not an HDF5 file (no HDF5 signature found; HDF5: \(reason))"
        }
        if all.contains("truncated file") || all.contains("eof") && all.contains("stored_eof") {
            return "the file is truncated (HDF5: \(reason))"
        }
        if all.contains("Permission denied") { return "permission denied (HDF5: \(reason))" }
        return reason
    }

    /// Writes all buffered data and metadata of the file to the operating system.
    public func flush() throws {
        let fid = try liveID("flush file")
        try H5.call("flush file", at) { H5Fflush(fid, H5F_SCOPE_GLOBAL) }
    }

    /// The POSIX file descriptor HDF5 uses (default "sec2" driver), e.g. to `fsync` after
    /// `flush()`. It stays owned by HDF5: do not close it.
    public func fileDescriptor() throws -> Int32 {
        let fid = try liveID("get file descriptor")
        let fapl = try H5.call("get file access list", at) { H5Fget_access_plist(fid) }
        defer { H5.unchecked { _ = H5Pclose(fapl) } }
        var handle: UnsafeMutableRawPointer? = nil
        try H5.call("get file descriptor", at) { H5Fget_vfd_handle(fid, fapl, &handle) }
        guard let handle else {
            throw HDF5Error(operation: "get file descriptor", file: filePath, object: "", reason: "the file driver exposes none")
        }
        return handle.load(as: Int32.self)
    }

    /// Flushes, then forces the data to stable storage with fsync.
    public func sync() throws {
        try flush()
        let fd = try fileDescriptor()
        guard fsync(fd) == 0 else {
            throw HDF5Error(operation: "fsync", file: filePath, object: "", reason: String(cString: strerror(errno)))
        }
    }

    /// Paths of the groups, datasets and attributes opened from this file and still open.
    public func openObjectPaths() throws -> [String] {
        let fid = try liveID("list open objects")
        // Datasets, groups, named types, attributes (0x02|0x04|0x08|0x10), opened through this id only.
        let types = UInt32(0x02 | 0x04 | 0x08 | 0x10) | dc_h5f_obj_local()
        let n = try H5.call("count open objects", at) { H5Fget_obj_count(fid, types) }
        if n == 0 { return [] }
        var ids = [hid_t](repeating: -1, count: Int(n))
        let got = try H5.call("list open objects", at) { H5Fget_obj_ids(fid, types, Int(n), &ids) }
        return ids.prefix(Int(got)).map { oid in
            H5.unchecked { () -> String in
                let len = H5Iget_name(oid, nil, 0)
                guard len > 0 else { return "(unnamed object)" }
                var buf = [CChar](repeating: 0, count: len + 1)
                _ = H5Iget_name(oid, &buf, buf.count)
                return String(cString: buf)
            }
        }
    }

    /// Flushes and closes the file. Throws if groups or datasets from it are still open (HDF5
    /// would otherwise keep the file open behind our back) or if HDF5 fails to close it.
    public func close() throws {
        guard isOpen else { return }
        let open = try openObjectPaths()
        guard open.isEmpty else {
            throw HDF5Error(operation: "close file", file: filePath, object: "",
                            reason: "objects opened from it are still open: \(open.joined(separator: ", "))")
        }
        if mode != .readOnly { try flush() }
        try closeChecked("close file")
    }
}
