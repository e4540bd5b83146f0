import CHDF5

/// The numeric element types the wrapper reads and writes. Values are stored little-endian
/// (the native order here); big-endian files written elsewhere are converted by HDF5 on read.
public enum H5ScalarType: String, Codable, CaseIterable, Sendable, CustomStringConvertible {
    case int8, int16, int32, int64, uint8, uint16, uint32, uint64, float32, float64

    public var byteSize: Int {
        switch self {
        case .int8, .uint8: return 1
        case .int16, .uint16: return 2
        case .int32, .uint32, .float32: return 4
        case .int64, .uint64, .float64: return 8
        }
    }

    public var isInteger: Bool { self != .float32 && self != .float64 }
    public var isSigned: Bool { [.int8, .int16, .int32, .int64].contains(self) }
    public var description: String { rawValue }

    /// HDF5's predefined native type (owned by the library, never closed).
    var nativeTypeID: hid_t {
        switch self {
        case .int8: return dc_h5t_native_int8()
        case .int16: return dc_h5t_native_int16()
        case .int32: return dc_h5t_native_int32()
        case .int64: return dc_h5t_native_int64()
        case .uint8: return dc_h5t_native_uint8()
        case .uint16: return dc_h5t_native_uint16()
        case .uint32: return dc_h5t_native_uint32()
        case .uint64: return dc_h5t_native_uint64()
        case .float32: return dc_h5t_native_float()
        case .float64: return dc_h5t_native_double()
        }
    }
}

/// What an object's stored datatype is, as far as this wrapper cares: one of the numeric
/// types, a string, or something else it does not handle (described for error messages).
enum StoredType: Equatable {
    case scalar(H5ScalarType)
    case string(variable: Bool, size: Int)
    case other(String)

    var text: String {
        switch self {
        case .scalar(let t): return t.rawValue
        case .string(let v, let size): return v ? "variable-length string" : "fixed-length string (\(size) bytes)"
        case .other(let s): return s
        }
    }

    /// Classifies a datatype id (not closed here).
    static func classify(_ tid: hid_t) -> StoredType {
        H5.unchecked {
            let cls = H5Tget_class(tid)
            let size = H5Tget_size(tid)
            switch cls {
            case H5T_INTEGER:
                let signed = H5Tget_sign(tid) == H5T_SGN_2
                switch (size, signed) {
                case (1, true): return .scalar(.int8)
                case (2, true): return .scalar(.int16)
                case (4, true): return .scalar(.int32)
                case (8, true): return .scalar(.int64)
                case (1, false): return .scalar(.uint8)
                case (2, false): return .scalar(.uint16)
                case (4, false): return .scalar(.uint32)
                case (8, false): return .scalar(.uint64)
                default: return .other("\(size)-byte integer")
                }
            case H5T_FLOAT:
                switch size {
                case 4: return .scalar(.float32)
                case 8: return .scalar(.float64)
                default: return .other("\(size * 8)-bit float")
                }
            case H5T_STRING:
                let variable = H5Tis_variable_str(tid) > 0
                return .string(variable: variable, size: variable ? 0 : Int(size))
            case H5T_COMPOUND: return .other("compound")
            case H5T_ENUM: return .other("enum (e.g. h5py bool)")
            case H5T_ARRAY: return .other("array type")
            case H5T_VLEN: return .other("variable-length sequence")
            case H5T_OPAQUE: return .other("opaque")
            case H5T_REFERENCE: return .other("reference")
            case H5T_BITFIELD: return .other("bitfield")
            default: return .other("unknown type class \(cls.rawValue)")
            }
        }
    }
}

/// Swift types that map one-to-one onto an `H5ScalarType`.
public protocol H5Scalar {
    static var h5Type: H5ScalarType { get }
}

extension Int8: H5Scalar { public static var h5Type: H5ScalarType { .int8 } }
extension Int16: H5Scalar { public static var h5Type: H5ScalarType { .int16 } }
extension Int32: H5Scalar { public static var h5Type: H5ScalarType { .int32 } }
extension Int64: H5Scalar { public static var h5Type: H5ScalarType { .int64 } }
extension UInt8: H5Scalar { public static var h5Type: H5ScalarType { .uint8 } }
extension UInt16: H5Scalar { public static var h5Type: H5ScalarType { .uint16 } }
extension UInt32: H5Scalar { public static var h5Type: H5ScalarType { .uint32 } }
extension UInt64: H5Scalar { public static var h5Type: H5ScalarType { .uint64 } }
extension Float: H5Scalar { public static var h5Type: H5ScalarType { .float32 } }
extension Double: H5Scalar { public static var h5Type: H5ScalarType { .float64 } }
/// `Int` is 64 bits on every platform Decoupled supports.
extension Int: H5Scalar { public static var h5Type: H5ScalarType { .int64 } }
