import CHDF5
import Foundation

/// The value of an attribute as stored: numbers come back widened (integers to Int64 or, for
/// unsigned 64-bit, UInt64; floats to Double) so a reader need not know the writer's width.
public enum H5AttributeValue: Equatable, CustomStringConvertible {
    case integers([Int64])
    case unsignedIntegers([UInt64])
    case floats([Double])
    case strings([String])

    public var description: String {
        func list<T>(_ v: [T]) -> String { v.count == 1 ? "\(v[0])" : "\(v)" }
        switch self {
        case .integers(let v): return list(v)
        case .unsignedIntegers(let v): return list(v)
        case .floats(let v): return list(v)
        case .strings(let v): return v.count == 1 ? "\"\(v[0])\"" : "\(v)"
        }
    }
}

extension H5Object {
    // MARK: writing

    /// Sets (creating or replacing) a scalar numeric attribute.
    public func setAttribute<T: H5Scalar>(_ name: String, _ value: T) throws {
        try writeNumericAttribute(name, [value], scalar: true)
    }

    /// Sets (creating or replacing) a one-dimensional numeric attribute.
    public func setAttribute<T: H5Scalar>(_ name: String, _ values: [T]) throws {
        try writeNumericAttribute(name, values, scalar: false)
    }

    /// Sets (creating or replacing) a scalar string attribute, stored as a variable-length UTF-8
    /// string: the form h5py writes for `attrs[name] = "text"` and reads back as `str`.
    public func setAttribute(_ name: String, _ value: String) throws {
        try writeStringAttribute(name, [value], scalar: true)
    }

    /// Sets (creating or replacing) a one-dimensional attribute of variable-length UTF-8
    /// strings: what h5py writes for `attrs[name] = ["a", "b"]` and reads back as an array of `str`.
    public func setAttribute(_ name: String, _ values: [String]) throws {
        try writeStringAttribute(name, values, scalar: false)
    }

    private func writeStringAttribute(_ name: String, _ values: [String], scalar: Bool) throws {
        let oid = try liveID("write attribute '\(name)'")
        let where_ = at
        try deleteAttributeIfPresent(name)
        let stype = try H5.call("create string type for attribute '\(name)'", where_) { H5Tcopy(dc_h5t_c_s1()) }
        defer { H5.unchecked { _ = H5Tclose(stype) } }
        try H5.call("set string size for attribute '\(name)'", where_) { H5Tset_size(stype, dc_h5t_variable()) }
        try H5.call("set UTF-8 for attribute '\(name)'", where_) { H5Tset_cset(stype, H5T_CSET_UTF8) }
        let space = try makeDataspace(scalar ? [] : [values.count], where_)
        defer { H5.unchecked { _ = H5Sclose(space) } }
        let aid = try H5.call("create attribute '\(name)'", where_) {
            H5Acreate2(oid, name, stype, space, dc_h5p_default(), dc_h5p_default())
        }
        defer { H5.unchecked { _ = H5Aclose(aid) } }
        // strdup'd copies: the C strings must all stay alive until the one H5Awrite call.
        var pointers: [UnsafePointer<CChar>?] = values.map { UnsafePointer(strdup($0)) }
        defer { for p in pointers { free(UnsafeMutablePointer(mutating: p)) } }
        try H5.call("write attribute '\(name)'", where_) { H5Awrite(aid, stype, &pointers) }
    }

    private func writeNumericAttribute<T: H5Scalar>(_ name: String, _ values: [T], scalar: Bool) throws {
        let oid = try liveID("write attribute '\(name)'")
        let where_ = at
        try deleteAttributeIfPresent(name)
        let space = try makeDataspace(scalar ? [] : [values.count], where_)
        defer { H5.unchecked { _ = H5Sclose(space) } }
        let type = T.h5Type.nativeTypeID
        let aid = try H5.call("create attribute '\(name)'", where_) {
            H5Acreate2(oid, name, type, space, dc_h5p_default(), dc_h5p_default())
        }
        defer { H5.unchecked { _ = H5Aclose(aid) } }
        _ = try values.withUnsafeBytes { raw in
            try H5.call("write attribute '\(name)'", where_) { H5Awrite(aid, type, raw.baseAddress) }
        }
    }

    /// Removes an attribute; does nothing if there is none of that name.
    public func deleteAttributeIfPresent(_ name: String) throws {
        let oid = try liveID("delete attribute '\(name)'")
        if try H5.call("check attribute '\(name)'", at, { H5Aexists(oid, name) }) > 0 {
            try H5.call("delete attribute '\(name)'", at) { H5Adelete(oid, name) }
        }
    }

    // MARK: reading

    public func hasAttribute(_ name: String) throws -> Bool {
        let oid = try liveID("check attribute '\(name)'")
        return try H5.call("check attribute '\(name)'", at) { H5Aexists(oid, name) } > 0
    }

    /// Names of all attributes, in name order.
    public func attributeNames() throws -> [String] {
        let oid = try liveID("list attributes")
        var count: hsize_t = 0
        try H5.call("count attributes", at) { dc_h5o_num_attrs(oid, &count) }
        var names: [String] = []
        for i in 0..<count {
            let len = try H5.call("read attribute name", at) {
                H5Aget_name_by_idx(oid, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, dc_h5p_default())
            }
            var buf = [CChar](repeating: 0, count: Int(len) + 1)
            try H5.call("read attribute name", at) {
                H5Aget_name_by_idx(oid, ".", H5_INDEX_NAME, H5_ITER_INC, i, &buf, buf.count, dc_h5p_default())
            }
            names.append(String(cString: buf))
        }
        return names
    }

    /// Reads an attribute of any supported kind; a missing attribute is an error naming the
    /// attributes that do exist.
    public func attribute(_ name: String) throws -> H5AttributeValue {
        let oid = try liveID("read attribute '\(name)'")
        let where_ = at
        guard try hasAttribute(name) else {
            let present = (try? attributeNames()) ?? []
            throw HDF5Error(operation: "read attribute '\(name)' of", file: filePath, object: objectPath,
                            reason: "no such attribute (present: \(present.isEmpty ? "none" : present.joined(separator: ", ")))")
        }
        let aid = try H5.call("open attribute '\(name)'", where_) { H5Aopen(oid, name, dc_h5p_default()) }
        defer { H5.unchecked { _ = H5Aclose(aid) } }
        let tid = try H5.call("query type of attribute '\(name)'", where_) { H5Aget_type(aid) }
        defer { H5.unchecked { _ = H5Tclose(tid) } }
        let space = try H5.call("query dataspace of attribute '\(name)'", where_) { H5Aget_space(aid) }
        defer { H5.unchecked { _ = H5Sclose(space) } }
        let count = try dataspaceShape(space, where_).points
        let stored = StoredType.classify(tid)
        switch stored {
        case .scalar(let t) where t == .uint64:
            var v = [UInt64](repeating: 0, count: count)
            try H5.call("read attribute '\(name)'", where_) { H5Aread(aid, dc_h5t_native_uint64(), &v) }
            return .unsignedIntegers(v)
        case .scalar(let t) where t.isInteger:
            var v = [Int64](repeating: 0, count: count)
            try H5.call("read attribute '\(name)'", where_) { H5Aread(aid, dc_h5t_native_int64(), &v) }
            return .integers(v)
        case .scalar:
            var v = [Double](repeating: 0, count: count)
            try H5.call("read attribute '\(name)'", where_) { H5Aread(aid, dc_h5t_native_double(), &v) }
            return .floats(v)
        case .string(let variable, let size):
            return .strings(try readStrings(aid, tid: tid, variable: variable, size: size, count: count, name: name))
        case .other(let what):
            throw HDF5Error(operation: "read attribute '\(name)' of", file: filePath, object: objectPath,
                            reason: "its type is \(what); only numbers and strings are supported")
        }
    }

    private func readStrings(_ aid: hid_t, tid: hid_t, variable: Bool, size: Int, count: Int,
                             name: String) throws -> [String] {
        let where_ = at
        let cset = H5.unchecked { H5Tget_cset(tid) }
        let mem = try H5.call("create string type", where_) { H5Tcopy(dc_h5t_c_s1()) }
        defer { H5.unchecked { _ = H5Tclose(mem) } }
        try H5.call("set string type", where_) { H5Tset_cset(mem, cset == H5T_CSET_UTF8 ? H5T_CSET_UTF8 : H5T_CSET_ASCII) }
        if count == 0 { return [] }
        if variable {
            try H5.call("set string type", where_) { H5Tset_size(mem, dc_h5t_variable()) }
            var pointers = [UnsafeMutablePointer<CChar>?](repeating: nil, count: count)
            try H5.call("read attribute '\(name)'", where_) { H5Aread(aid, mem, &pointers) }
            // HDF5 allocated each string; release them whatever happens next.
            defer { H5.unchecked { for p in pointers where p != nil { _ = H5free_memory(p) } } }
            return pointers.map { $0.map { String(cString: $0) } ?? "" }
        } else {
            try H5.call("set string type", where_) { H5Tset_size(mem, size) }
            try H5.call("set string padding", where_) { H5Tset_strpad(mem, H5T_STR_NULLPAD) }
            var bytes = [UInt8](repeating: 0, count: size * count)
            try H5.call("read attribute '\(name)'", where_) { H5Aread(aid, mem, &bytes) }
            return (0..<count).map { i in
                var s = bytes[(i * size)..<((i + 1) * size)]
                if let nul = s.firstIndex(of: 0) { s = s[..<nul] }
                // Space-padded (Fortran-style) strings: drop the padding.
                while let last = s.last, last == 0x20 { s = s.dropLast() }
                return String(decoding: s, as: UTF8.self)
            }
        }
    }

    /// A numeric attribute holding exactly one integer (any stored integer width; a float with
    /// an integral value is accepted too, since some writers store counts as floats).
    public func integerAttribute(_ name: String) throws -> Int64 {
        let value = try attribute(name)
        switch value {
        case .integers(let v) where v.count == 1: return v[0]
        case .unsignedIntegers(let v) where v.count == 1 && v[0] <= UInt64(Int64.max): return Int64(v[0])
        case .floats(let v) where v.count == 1 && v[0].rounded() == v[0] && abs(v[0]) < 9e15: return Int64(v[0])
        default:
            throw HDF5Error(operation: "read attribute '\(name)' of", file: filePath, object: objectPath,
                            reason: "expected one integer, found \(value)")
        }
    }

    /// A numeric attribute holding exactly one number, as Double.
    public func doubleAttribute(_ name: String) throws -> Double {
        let value = try attribute(name)
        switch value {
        case .floats(let v) where v.count == 1: return v[0]
        case .integers(let v) where v.count == 1: return Double(v[0])
        case .unsignedIntegers(let v) where v.count == 1: return Double(v[0])
        default:
            throw HDF5Error(operation: "read attribute '\(name)' of", file: filePath, object: objectPath,
                            reason: "expected one number, found \(value)")
        }
    }

    /// A string attribute holding one string (variable or fixed length, as h5py writes either).
    public func stringAttribute(_ name: String) throws -> String {
        let value = try attribute(name)
        if case .strings(let v) = value, v.count == 1 { return v[0] }
        throw HDF5Error(operation: "read attribute '\(name)' of", file: filePath, object: objectPath,
                        reason: "expected one string, found \(value)")
    }

    /// A numeric attribute converted to `T` element-wise; integer targets reject fractional or
    /// out-of-range values instead of truncating them.
    public func numericAttribute<T: H5Scalar & Numeric>(_ name: String, as: T.Type = T.self) throws -> [T] {
        let value = try attribute(name)
        func fail() -> HDF5Error {
            HDF5Error(operation: "read attribute '\(name)' of", file: filePath, object: objectPath,
                      reason: "expected numbers representable as \(T.h5Type), found \(value)")
        }
        func convert(_ d: Double) throws -> T {
            switch T.h5Type {
            case .float32: return Float(d) as! T
            case .float64: return d as! T
            default: throw fail()
            }
        }
        switch value {
        case .integers(let v):
            if !T.h5Type.isInteger { return try v.map { try convert(Double($0)) } }
            return try v.map { guard let x = T(exactly: $0) else { throw fail() }; return x }
        case .unsignedIntegers(let v):
            if !T.h5Type.isInteger { return try v.map { try convert(Double($0)) } }
            return try v.map { guard let x = T(exactly: $0) else { throw fail() }; return x }
        case .floats(let v):
            if !T.h5Type.isInteger { return try v.map(convert) }
            return try v.map { d in
                guard d.rounded() == d, abs(d) < 9e15, let x = T(exactly: Int64(d)) else { throw fail() }
                return x
            }
        case .strings: throw fail()
        }
    }
}
