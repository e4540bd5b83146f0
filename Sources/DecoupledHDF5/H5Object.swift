import CHDF5
import Foundation

/// An open HDF5 object (file, group or dataset): the identifier plus the names that go into
/// error messages. The identifier is released exactly once, by `close()` or by `deinit`, so a
/// handle cannot leak even when an error unwinds past it.
public class H5Object {
    enum Kind { case file, group, dataset }

    private(set) var id: hid_t
    let kind: Kind
    /// The file on disk, as the caller named it.
    public let filePath: String
    /// Absolute path of the object inside the file ("/" for the file and its root group).
    public let objectPath: String
    /// Children keep their file object alive, so the file id cannot be released under them.
    let owner: H5File?

    init(id: hid_t, kind: Kind, filePath: String, objectPath: String, owner: H5File?) {
        self.id = id
        self.kind = kind
        self.filePath = filePath
        self.objectPath = objectPath
        self.owner = owner
    }

    deinit {
        if id >= 0 { releaseID() }
    }

    var at: H5Where { H5Where(file: filePath, object: kind == .file ? "" : objectPath) }
    func at(_ sub: String) -> H5Where { H5Where(file: filePath, object: sub) }

    /// Whether the handle is still open.
    public var isOpen: Bool { id >= 0 }

    /// The identifier, or an error saying the handle was already closed.
    func liveID(_ operation: String) throws -> hid_t {
        guard id >= 0 else {
            throw HDF5Error(operation: operation, file: filePath, object: at.object,
                            reason: "the handle was already closed")
        }
        return id
    }

    @discardableResult
    private func releaseID() -> herr_t {
        let old = id
        id = -1
        return H5.unchecked {
            switch kind {
            case .file: return H5Fclose(old)
            case .group: return H5Gclose(old)
            case .dataset: return H5Dclose(old)
            }
        }
    }

    /// Releases the handle now and reports a failure (deinit releases silently otherwise).
    func closeChecked(_ operation: String) throws {
        guard id >= 0 else { return }
        let old = id
        id = -1
        try H5.call(operation, at) {
            switch kind {
            case .file: return H5Fclose(old)
            case .group: return H5Gclose(old)
            case .dataset: return H5Dclose(old)
            }
        }
    }

    /// Joins a path relative to this object into an absolute object path (for messages).
    func childPath(_ name: String) -> String {
        if name.hasPrefix("/") { return name }
        let base = objectPath == "/" ? "" : objectPath
        return base + "/" + name
    }
}

/// RAII for temporary HDF5 ids (dataspaces, property lists, types) inside one function.
struct H5Temp {
    let id: hid_t
    let close: (hid_t) -> herr_t
    func release() { H5.unchecked { _ = close(id) } }
}

/// Creates a simple dataspace; `shape == []` makes a scalar one.
func makeDataspace(_ shape: [Int], maxShape: [Int?]? = nil, _ at: H5Where) throws -> hid_t {
    if shape.isEmpty {
        return try H5.call("create scalar dataspace", at) { H5Screate(H5S_SCALAR) }
    }
    var dims = hsizes(shape)
    if let maxShape {
        var maxDims = maxShape.map { $0.map { hsize_t($0) } ?? dc_h5s_unlimited() }
        return try H5.call("create dataspace", at) {
            H5Screate_simple(Int32(dims.count), &dims, &maxDims)
        }
    }
    return try H5.call("create dataspace", at) { H5Screate_simple(Int32(dims.count), &dims, nil) }
}

/// Shape of a dataspace (empty for scalar, and for HDF5's "null" dataspace `count` is 0).
func dataspaceShape(_ space: hid_t, _ at: H5Where) throws -> (shape: [Int], maxShape: [Int?], points: Int) {
    let rank = Int(try H5.call("query dataspace rank", at) { H5Sget_simple_extent_ndims(space) })
    var dims = [hsize_t](repeating: 0, count: max(rank, 1))
    var maxDims = [hsize_t](repeating: 0, count: max(rank, 1))
    if rank > 0 {
        try H5.call("query dataspace shape", at) { H5Sget_simple_extent_dims(space, &dims, &maxDims) }
    }
    let points = Int(try H5.call("count dataspace points", at) { H5Sget_simple_extent_npoints(space) })
    let unlimited = dc_h5s_unlimited()
    return (dims.prefix(rank).map { Int($0) },
            maxDims.prefix(rank).map { $0 == unlimited ? nil : Int($0) },
            points)
}
