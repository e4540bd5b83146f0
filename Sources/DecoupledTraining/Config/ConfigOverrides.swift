import Foundation
import TOMLKit

/// One `--set key=value` from the command line: a dotted key path into the config
/// (`optimizer.lr`, `train.epochs`, `regularizers[0].lambda`) and a TOML value. A value that
/// is not valid TOML (`--set optimizer.name=adamw`) is taken as a string, so users need not
/// quote names in a shell.
public struct ConfigOverride: Equatable, CustomStringConvertible {
    public let path: [PathComponent]
    public let key: String
    public let value: ConfigValue

    public enum PathComponent: Equatable {
        case key(String)
        case index(Int)
    }

    public var description: String { "--set \(key)=\(value)" }

    public init(key: String, value: ConfigValue) throws {
        self.key = key
        self.value = value
        self.path = try Self.parsePath(key)
    }

    /// Parses `key=value`.
    public init(_ text: String) throws {
        guard let eq = text.firstIndex(of: "="), eq != text.startIndex else {
            throw ConfigError(file: "--set", line: nil, key: text, message: "expected key=value, e.g. --set optimizer.lr=3e-4")
        }
        let key = text[..<eq].trimmingCharacters(in: .whitespaces)
        let raw = text[text.index(after: eq)...].trimmingCharacters(in: .whitespaces)
        try self.init(key: key, value: Self.parseValue(raw))
    }

    /// A TOML value (number, boolean, string, array, inline table), or the raw text as a string.
    static func parseValue(_ raw: String) -> ConfigValue {
        if let t = try? TOMLTable(string: "v = \(raw)"), let v = t["v"] { return ConfigValue(v) }
        return .string(raw)
    }

    static func parsePath(_ key: String) throws -> [PathComponent] {
        var out: [PathComponent] = []
        for part in key.split(separator: ".", omittingEmptySubsequences: false) {
            var name = Substring(part)
            var indices: [Int] = []
            while name.hasSuffix("]"), let open = name.lastIndex(of: "[") {
                guard let i = Int(name[name.index(after: open)..<name.index(before: name.endIndex)]), i >= 0 else {
                    throw ConfigError(file: "--set", line: nil, key: key, message: "bad index in '\(part)'; expected e.g. regularizers[0]")
                }
                indices.insert(i, at: 0)
                name = name[..<open]
            }
            guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }) else {
                throw ConfigError(file: "--set", line: nil, key: key, message: "'\(part)' is not a key; expected a dotted path like optimizer.lr or regularizers[0].lambda")
            }
            out.append(.key(String(name)))
            out += indices.map { .index($0) }
        }
        return out
    }

    /// Applies the override to a document: tables on the path are created when missing, an
    /// index must name an existing array element.
    func apply(to root: inout ConfigValue) throws {
        func set(_ node: inout ConfigValue, _ rest: ArraySlice<PathComponent>) throws {
            guard let head = rest.first else {
                node = value
                return
            }
            switch (head, node) {
            case (.key(let k), .table(var d)):
                var child = d[k] ?? (rest.count > 1 ? .table([:]) : value)
                if d[k] == nil, case .index = rest.dropFirst().first {
                    throw ConfigError(file: "--set", line: nil, key: key, message: "'\(k)' has no element to index; it is not in the config")
                }
                try set(&child, rest.dropFirst())
                d[k] = child
                node = .table(d)
            case (.index(let i), .array(var a)):
                guard i < a.count else {
                    throw ConfigError(file: "--set", line: nil, key: key, message: "index \(i) is out of range; the config has \(a.count) element(s)")
                }
                try set(&a[i], rest.dropFirst())
                node = .array(a)
            case (.key(let k), _):
                throw ConfigError(file: "--set", line: nil, key: key, message: "cannot set '\(k)' inside \(node.typeName) \(node)")
            case (.index(let i), _):
                throw ConfigError(file: "--set", line: nil, key: key, message: "cannot index [\(i)] into \(node.typeName) \(node)")
            }
        }
        try set(&root, path[...])
    }
}

extension ConfigValue {
    /// The document as TOML text: top-level values, then `[table]` sections and `[[array]]`
    /// tables, keys sorted, so equal documents print identically (used for the run
    /// directory's config.toml and for run ids).
    public func tomlText() -> String {
        guard case .table(let root) = self else { return "" }
        var out = ""
        Self.emitTable(root, prefix: "", into: &out)
        return out
    }

    private static func emitTable(_ d: [String: ConfigValue], prefix: String, into out: inout String) {
        let keys = d.keys.sorted()
        func isSection(_ v: ConfigValue) -> Bool {
            if case .table = v { return true }
            if case .array(let a) = v, !a.isEmpty, a.allSatisfy({ if case .table = $0 { return true } else { return false } }) { return true }
            return false
        }
        for k in keys where !isSection(d[k]!) { out += "\(quoteKey(k)) = \(inline(d[k]!))\n" }
        for k in keys where isSection(d[k]!) {
            let name = prefix.isEmpty ? quoteKey(k) : "\(prefix).\(quoteKey(k))"
            switch d[k]! {
            case .table(let t):
                out += "\n[\(name)]\n"
                emitTable(t, prefix: name, into: &out)
            case .array(let a):
                for case .table(let t) in a {
                    out += "\n[[\(name)]]\n"
                    emitTable(t, prefix: name, into: &out)
                }
            default: break
            }
        }
    }

    private static func quoteKey(_ k: String) -> String {
        k.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }) && !k.isEmpty ? k : quote(k)
    }

    private static func quote(_ s: String) -> String {
        var r = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": r += "\\\""
            case "\\": r += "\\\\"
            case "\n": r += "\\n"
            case "\t": r += "\\t"
            case "\r": r += "\\r"
            default:
                if u.value < 0x20 || u.value == 0x7f { r += String(format: "\\u%04X", u.value) } else { r.unicodeScalars.append(u) }
            }
        }
        return r + "\""
    }

    private static func inline(_ v: ConfigValue) -> String {
        switch v {
        case .string(let s): return quote(s)
        case .bool(let b): return b ? "true" : "false"
        case .number(let x, let isInt):
            if isInt { return String(Int64(x)) }
            if x.isNaN { return "nan" }
            if x.isInfinite { return x > 0 ? "inf" : "-inf" }
            let s = "\(x)"  // shortest round-trip form: 0.001, 1e-05, 2.0
            return s.contains(".") || s.contains("e") ? s : s + ".0"
        case .array(let a): return "[" + a.map(inline).joined(separator: ", ") + "]"
        case .table(let d): return "{ " + d.keys.sorted().map { "\(quoteKey($0)) = \(inline(d[$0]!))" }.joined(separator: ", ") + " }"
        }
    }

    /// Every leaf as `dotted.key = value`, for showing the differences between two configs.
    public func flattened(prefix: String = "") -> [String: String] {
        switch self {
        case .table(let d):
            var out: [String: String] = [:]
            for (k, v) in d { out.merge(v.flattened(prefix: prefix.isEmpty ? k : "\(prefix).\(k)")) { a, _ in a } }
            if d.isEmpty && !prefix.isEmpty { out[prefix] = "{}" }
            return out
        case .array(let a) where a.contains(where: { if case .table = $0 { return true } else { return false } }):
            var out: [String: String] = [:]
            for (i, v) in a.enumerated() { out.merge(v.flattened(prefix: "\(prefix)[\(i)]")) { a, _ in a } }
            if a.isEmpty { out[prefix] = "[]" }
            return out
        default:
            return [prefix: description]
        }
    }
}
