import CHDF5
import Foundation

/// How a dataset is stored: chunking and the filter pipeline (applied in the order shuffle →
/// gzip → Fletcher-32, h5py's order; the checksum covers the bytes as stored on disk).
public struct H5DatasetOptions: Equatable, Sendable {
    /// Chunk shape; nil stores the dataset contiguously. Filters and unlimited dimensions need chunks.
    public var chunkShape: [Int]?
    /// gzip (deflate) level 0...9; nil for none.
    public var gzipLevel: Int?
    /// Byte-shuffle filter: groups the i-th bytes of all elements, which makes gzip far more
    /// effective on multi-byte numbers.
    public var shuffle: Bool
    /// Fletcher-32 checksum per chunk; a corrupted chunk then fails to read instead of
    /// returning wrong numbers.
    public var fletcher32: Bool
    /// Maximum shape; nil entries are unlimited (the dataset can grow with `setExtent`). nil = fixed.
    public var maxShape: [Int?]?

    public init(chunkShape: [Int]? = nil, gzipLevel: Int? = nil, shuffle: Bool = false,
                fletcher32: Bool = false, maxShape: [Int?]? = nil) {
        self.chunkShape = chunkShape
        self.gzipLevel = gzipLevel
        self.shuffle = shuffle
        self.fletcher32 = fletcher32
        self.maxShape = maxShape
    }

    func validate(shape: [Int], _ at: H5Where) throws {
        func fail(_ reason: String) -> HDF5Error { HDF5Error(operation: "create dataset", file: at.file, object: at.object, reason: reason) }
        if shape.contains(where: { $0 < 0 }) { throw fail("shape \(shape) has a negative dimension") }
        if let level = gzipLevel, !(0...9).contains(level) { throw fail("gzip level must be 0...9, got \(level)") }
        if let maxShape {
            guard maxShape.count == shape.count else { throw fail("max shape \(maxShape) has rank \(maxShape.count), shape \(shape) has rank \(shape.count)") }
            for (d, m) in zip(shape, maxShape) where m != nil && m! < d {
                throw fail("max shape \(maxShape.map { $0.map(String.init) ?? "unlimited" }) is smaller than shape \(shape)")
            }
        }
        guard let chunk = chunkShape else {
            if gzipLevel != nil || shuffle || fletcher32 { throw fail("gzip, shuffle and fletcher32 need a chunk shape") }
            if maxShape?.contains(where: { $0 == nil }) == true { throw fail("unlimited dimensions need a chunk shape") }
            return
        }
        guard chunk.count == shape.count, !shape.isEmpty else {
            throw fail("chunk shape \(chunk) must have the dataset's rank \(shape.count) (and scalars cannot be chunked)")
        }
        if chunk.contains(where: { $0 <= 0 }) { throw fail("chunk shape \(chunk) must be positive") }
        if let maxShape {
            for (c, m) in zip(chunk, maxShape) where m != nil && c > max(m!, 1) {
                throw fail("chunk shape \(chunk) exceeds the fixed maximum shape in some dimension")
            }
        } else {
            for (c, d) in zip(chunk, shape) where c > max(d, 1) {
                throw fail("chunk shape \(chunk) exceeds the fixed shape \(shape) in some dimension; give maxShape to allow growth")
            }
        }
    }

    func makeCreationPlist(_ at: H5Where) throws -> hid_t {
        let dcpl = try H5.call("create dataset creation list", at) { H5Pcreate(dc_h5p_dataset_create()) }
        do {
            // No creation/modification times in object headers: the same data then gives the same
            // bytes, so a rebuilt dataset or checkpoint can be compared with cmp(1) (h5py's default too).
            try H5.call("disable time tracking", at) { H5Pset_obj_track_times(dcpl, false) }
            if let chunk = chunkShape {
                var dims = hsizes(chunk)
                try H5.call("set chunk shape \(chunk)", at) { H5Pset_chunk(dcpl, Int32(dims.count), &dims) }
                if shuffle { try H5.call("add shuffle filter", at) { H5Pset_shuffle(dcpl) } }
                if let level = gzipLevel {
                    guard H5.deflateAvailable else {
                        throw HDF5Error(operation: "create dataset", file: at.file, object: at.object,
                                        reason: "this libhdf5 (\(H5.libraryVersion)) has no gzip filter")
                    }
                    try H5.call("add gzip filter", at) { H5Pset_deflate(dcpl, UInt32(level)) }
                }
                if fletcher32 { try H5.call("add fletcher32 filter", at) { H5Pset_fletcher32(dcpl) } }
            }
        } catch {
            H5.unchecked { _ = H5Pclose(dcpl) }
            throw error
        }
        return dcpl
    }
}

/// A filter of a dataset's pipeline, as stored.
public struct H5FilterInfo: Equatable, Sendable, CustomStringConvertible {
    public var id: Int32
    public var name: String
    public var parameters: [UInt32]
    public var description: String {
        switch id {
        case 1: return "gzip(\(parameters.first ?? 0))"
        case 2: return "shuffle"
        case 3: return "fletcher32"
        default: return "\(name)(id \(id))"
        }
    }
}

/// What `H5Dataset.info()` reports.
public struct H5DatasetInfo: Equatable, Sendable {
    public var shape: [Int]
    /// nil entries are unlimited.
    public var maxShape: [Int?]
    /// The numeric type, or nil when the stored type is something else (see `storedType`).
    public var elementType: H5ScalarType?
    /// Human-readable stored type ("uint8", "variable-length string", "compound", ...).
    public var storedType: String
    /// nil for contiguous (or compact) storage.
    public var chunkShape: [Int]?
    public var filters: [H5FilterInfo]
    /// Bytes allocated in the file (after compression).
    public var storageBytes: Int

    public var elementCount: Int { shape.reduce(1, *) }
}

/// An HDF5 dataset: whole and hyperslab reads and writes of numeric arrays (row-major).
public final class H5Dataset: H5Object {
    init(id: hid_t, filePath: String, objectPath: String, owner: H5File?) {
        super.init(id: id, kind: .dataset, filePath: filePath, objectPath: objectPath, owner: owner)
    }

    /// Closes the dataset now (otherwise it is closed when the last reference goes away).
    public func close() throws { try closeChecked("close dataset") }

    // MARK: metadata

    public func shape() throws -> [Int] {
        let did = try liveID("query shape")
        let space = try H5.call("query dataspace", at) { H5Dget_space(did) }
        defer { H5.unchecked { _ = H5Sclose(space) } }
        return try dataspaceShape(space, at).shape
    }

    func storedType() throws -> StoredType {
        let did = try liveID("query type")
        let tid = try H5.call("query type", at) { H5Dget_type(did) }
        defer { H5.unchecked { _ = H5Tclose(tid) } }
        return StoredType.classify(tid)
    }

    /// The numeric element type; an error (naming what is stored) for strings and other types.
    public func elementType() throws -> H5ScalarType {
        let stored = try storedType()
        guard case .scalar(let t) = stored else {
            throw HDF5Error(operation: "use dataset", file: filePath, object: objectPath,
                            reason: "it holds \(stored.text), not numbers")
        }
        return t
    }

    /// Shape, type, chunking, filters and on-disk size.
    /// Chunks allocated in the file (written at least once), nil for unchunked storage.
    public func allocatedChunks() throws -> Int? {
        guard try info().chunkShape != nil else { return nil }
        let did = try liveID("count chunks")
        let space = try H5.call("query dataspace", at) { H5Dget_space(did) }
        defer { H5.unchecked { _ = H5Sclose(space) } }
        var n: hsize_t = 0
        _ = try H5.call("count chunks", at) { H5Dget_num_chunks(did, space, &n) }
        return Int(n)
    }

    public func info() throws -> H5DatasetInfo {
        let did = try liveID("query layout")
        let space = try H5.call("query dataspace", at) { H5Dget_space(did) }
        defer { H5.unchecked { _ = H5Sclose(space) } }
        let (shape, maxShape, _) = try dataspaceShape(space, at)
        let stored = try storedType()
        let dcpl = try H5.call("query creation list", at) { H5Dget_create_plist(did) }
        defer { H5.unchecked { _ = H5Pclose(dcpl) } }
        var chunk: [Int]? = nil
        if H5.unchecked({ H5Pget_layout(dcpl) }) == H5D_CHUNKED {
            var dims = [hsize_t](repeating: 0, count: max(shape.count, 1))
            let rank = try H5.call("query chunk shape", at) { H5Pget_chunk(dcpl, Int32(dims.count), &dims) }
            chunk = dims.prefix(Int(rank)).map { Int($0) }
        }
        let nfilters = try H5.call("count filters", at) { H5Pget_nfilters(dcpl) }
        var filters: [H5FilterInfo] = []
        for i in 0..<nfilters {
            var flags: UInt32 = 0
            var nvalues = 8
            var values = [UInt32](repeating: 0, count: 8)
            var name = [CChar](repeating: 0, count: 128)
            var config: UInt32 = 0
            let fid = try H5.call("query filter \(i)", at) {
                H5Pget_filter2(dcpl, UInt32(i), &flags, &nvalues, &values, name.count, &name, &config)
            }
            filters.append(H5FilterInfo(id: fid, name: String(cString: name), parameters: Array(values.prefix(min(nvalues, 8)))))
        }
        let storage = H5.unchecked { H5Dget_storage_size(did) }
        var elementType: H5ScalarType? = nil
        if case .scalar(let t) = stored { elementType = t }
        return H5DatasetInfo(shape: shape, maxShape: maxShape, elementType: elementType, storedType: stored.text,
                             chunkShape: chunk, filters: filters, storageBytes: Int(storage))
    }

    /// Changes the current shape (only within the maximum shape given at creation).
    public func setExtent(_ newShape: [Int]) throws {
        let did = try liveID("resize")
        let current = try info()
        guard newShape.count == current.shape.count else {
            throw HDF5Error(operation: "resize", file: filePath, object: objectPath,
                            reason: "new shape \(newShape) has rank \(newShape.count), the dataset has rank \(current.shape.count)")
        }
        for (n, m) in zip(newShape, current.maxShape) where n < 0 || (m != nil && n > m!) {
            throw HDF5Error(operation: "resize", file: filePath, object: objectPath,
                            reason: "new shape \(newShape) exceeds the maximum shape \(current.maxShape.map { $0.map(String.init) ?? "unlimited" })")
        }
        var dims = hsizes(newShape)
        try H5.call("resize to \(newShape)", at) { H5Dset_extent(did, &dims) }
    }

    // MARK: reading

    /// Reads the whole dataset. The element type must match `T` exactly unless `converting`
    /// is true, in which case HDF5 converts (integers out of range are clipped by HDF5).
    public func read<T: H5Scalar>(as type: T.Type = T.self, converting: Bool = false) throws -> [T] {
        let shape = try shape()
        return try read(start: shape.map { _ in 0 }, count: shape, as: type, converting: converting)
    }

    /// Reads the hyperslab `start ..< start + count` (row-major, contiguous in the result).
    public func read<T: H5Scalar>(start: [Int], count: [Int], as type: T.Type = T.self,
                                  converting: Bool = false) throws -> [T] {
        let n = count.reduce(1, *)
        return try [T](unsafeUninitializedCapacity: n) { buffer, initialized in
            try readRaw(start: start, count: count, memoryType: T.h5Type, converting: converting,
                        into: UnsafeMutableRawBufferPointer(buffer))
            initialized = n
        }
    }

    /// Reads the hyperslab into caller memory (which must hold exactly the selected elements).
    public func read<T: H5Scalar>(start: [Int], count: [Int], into buffer: UnsafeMutableBufferPointer<T>,
                                  converting: Bool = false) throws {
        try readRaw(start: start, count: count, memoryType: T.h5Type, converting: converting,
                    into: UnsafeMutableRawBufferPointer(buffer))
    }

    /// Reads a hyperslab as `memoryType` into raw memory; the loader uses it to read uint8 or
    /// float32 features without knowing the type statically.
    public func readRaw(start: [Int], count: [Int], memoryType: H5ScalarType, converting: Bool = false,
                        into buffer: UnsafeMutableRawBufferPointer) throws {
        try transfer("read", start: start, count: count, memoryType: memoryType, converting: converting,
                     bytes: buffer.count,
                     sizeMismatch: { n in "buffer holds \(buffer.count) bytes, the selection needs \(n * memoryType.byteSize)" }) {
            H5Dread($0, memoryType.nativeTypeID, $1, $2, dc_h5p_default(), buffer.baseAddress)
        }
    }

    // MARK: writing

    /// Writes the whole dataset (`values.count` must equal the element count).
    public func write<T: H5Scalar>(_ values: [T], converting: Bool = false) throws {
        let shape = try shape()
        try write(values, start: shape.map { _ in 0 }, count: shape, converting: converting)
    }

    /// Writes the hyperslab `start ..< start + count` from row-major `values`.
    public func write<T: H5Scalar>(_ values: [T], start: [Int], count: [Int], converting: Bool = false) throws {
        try values.withUnsafeBytes { raw in
            try writeRaw(start: start, count: count, memoryType: T.h5Type, converting: converting, from: raw)
        }
    }

    /// Writes a hyperslab from raw memory holding elements of `memoryType`.
    public func writeRaw(start: [Int], count: [Int], memoryType: H5ScalarType, converting: Bool = false,
                         from buffer: UnsafeRawBufferPointer) throws {
        try transfer("write", start: start, count: count, memoryType: memoryType, converting: converting,
                     bytes: buffer.count,
                     sizeMismatch: { n in "got \(buffer.count / memoryType.byteSize) values, the selection \(count) needs \(n)" }) {
            H5Dwrite($0, memoryType.nativeTypeID, $1, $2, dc_h5p_default(), buffer.baseAddress)
        }
    }

    /// The checks and dataspace selection shared by reads and writes: type compatibility,
    /// selection bounds, buffer size; then `call(dataset, memory space, file space)`.
    private func transfer(_ operation: String, start: [Int], count: [Int], memoryType: H5ScalarType, converting: Bool,
                          bytes: Int, sizeMismatch: (Int) -> String, _ call: (hid_t, hid_t, hid_t) -> herr_t) throws {
        let did = try liveID(operation)
        try checkType(memoryType, converting: converting, operation: operation)
        let space = try H5.call("query dataspace", at) { H5Dget_space(did) }
        defer { H5.unchecked { _ = H5Sclose(space) } }
        let shape = try dataspaceShape(space, at).shape
        let n = try checkSelection(start: start, count: count, shape: shape, operation: operation)
        guard bytes == n * memoryType.byteSize else {
            throw HDF5Error(operation: operation, file: filePath, object: objectPath, reason: sizeMismatch(n))
        }
        if n == 0 { return }
        let memSpace = try select(space, start: start, count: count, shape: shape)
        defer { if memSpace != dc_h5s_all() { H5.unchecked { _ = H5Sclose(memSpace) } } }
        let fileSpace = memSpace == dc_h5s_all() ? dc_h5s_all() : space
        try H5.call(shape.isEmpty ? operation : "\(operation) hyperslab start \(start) count \(count)", at) {
            call(did, memSpace, fileSpace)
        }
    }

    // MARK: helpers

    private func checkType(_ memoryType: H5ScalarType, converting: Bool, operation: String) throws {
        let stored = try storedType()
        guard case .scalar(let t) = stored else {
            throw HDF5Error(operation: operation, file: filePath, object: objectPath,
                            reason: "it holds \(stored.text), not numbers")
        }
        if t != memoryType && !converting {
            throw HDF5Error(operation: operation, file: filePath, object: objectPath,
                            reason: "it holds \(t), not \(memoryType) (pass converting: true to let HDF5 convert)")
        }
    }

    /// Validates a selection against the shape; returns its element count.
    private func checkSelection(start: [Int], count: [Int], shape: [Int], operation: String) throws -> Int {
        func fail(_ reason: String) -> HDF5Error {
            HDF5Error(operation: operation, file: filePath, object: objectPath, reason: reason)
        }
        guard start.count == shape.count, count.count == shape.count else {
            throw fail("selection start \(start) count \(count) must have the dataset's rank \(shape.count) (shape \(shape))")
        }
        for i in 0..<shape.count {
            if start[i] < 0 || count[i] < 0 || start[i] > shape[i] || count[i] > shape[i] - start[i] {
                throw fail("selection start \(start) count \(count) lies outside the shape \(shape)")
            }
        }
        return count.reduce(1, *)
    }

    /// Selects the hyperslab in `space`; returns the matching memory dataspace, or H5S_ALL
    /// when the selection is the whole (or scalar) dataset.
    private func select(_ space: hid_t, start: [Int], count: [Int], shape: [Int]) throws -> hid_t {
        if shape.isEmpty || (count == shape && start.allSatisfy { $0 == 0 }) { return dc_h5s_all() }
        var s = hsizes(start), c = hsizes(count)
        try H5.call("select hyperslab start \(start) count \(count)", at) {
            H5Sselect_hyperslab(space, H5S_SELECT_SET, &s, nil, &c, nil)
        }
        return try H5.call("create memory dataspace", at) { H5Screate_simple(Int32(c.count), &c, nil) }
    }
}
