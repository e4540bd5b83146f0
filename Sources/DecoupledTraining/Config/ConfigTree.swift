import Foundation
import TOMLKit

/// A config error that names the file, the line where TOML put the key, and the key itself.
public struct ConfigError: Error, CustomStringConvertible, Equatable {
    public let file: String
    public let line: Int?
    public let key: String
    public let message: String

    public var description: String {
        "\(file)\(line.map { ":\($0)" } ?? ""): \(key.isEmpty ? "" : "\(key): ")\(message)"
    }
}

/// A TOML document as plain values, with each key's line remembered for error messages
/// (TOMLKit gives values, not positions, so positions come from a scan of the text).
public indirect enum ConfigValue: Equatable, CustomStringConvertible {
    case table([String: ConfigValue])
    case array([ConfigValue])
    case string(String)
    case number(Double, isInteger: Bool)
    case bool(Bool)

    init(_ v: TOMLValueConvertible) {
        let t = v.tomlValue
        switch t.type {
        case .table:
            var d: [String: ConfigValue] = [:]
            for (k, x) in t.table! { d[k] = ConfigValue(x) }
            self = .table(d)
        case .array: self = .array(t.array!.map { ConfigValue($0) })
        case .string: self = .string(t.string!)
        case .int: self = .number(Double(t.int!), isInteger: true)
        case .double: self = .number(t.double!, isInteger: false)
        case .bool: self = .bool(t.bool!)
        default: self = .string(t.debugDescription)
        }
    }

    /// "a table", "an array", "a string", "an integer", "a number" or "a boolean", for messages.
    public var typeName: String {
        switch self {
        case .table: return "a table"
        case .array: return "an array"
        case .string: return "a string"
        case .number(_, let i): return i ? "an integer" : "a number"
        case .bool: return "a boolean"
        }
    }

    public var description: String {
        switch self {
        case .table(let d): return "{ " + d.keys.sorted().map { "\($0) = \(d[$0]!)" }.joined(separator: ", ") + " }"
        case .array(let a): return "[" + a.map(\.description).joined(separator: ", ") + "]"
        case .string(let s): return "\"\(s)\""
        case .number(let x, let i): return i ? String(Int64(x)) : "\(x)"
        case .bool(let b): return String(b)
        }
    }
}

/// Finds the line of `section.key` (or `section[i].key`) in TOML text.
struct LineLocator {
    private var lines: [String: Int] = [:]

    init(_ text: String) {
        var section = ""
        var arrayCounts: [String: Int] = [:]
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("[[") , let end = line.range(of: "]]") {
                let name = line[line.index(line.startIndex, offsetBy: 2)..<end.lowerBound].trimmingCharacters(in: .whitespaces)
                let i = arrayCounts[name, default: 0]
                arrayCounts[name] = i + 1
                section = "\(name)[\(i)]"
                lines[section] = n + 1
            } else if line.hasPrefix("["), let end = line.firstIndex(of: "]") {
                section = line[line.index(after: line.startIndex)..<end].trimmingCharacters(in: .whitespaces)
                lines[section] = n + 1
            } else if let eq = line.firstIndex(of: "="), !line.hasPrefix("#") {
                let key = line[..<eq].trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "\"", with: "")
                lines[section.isEmpty ? key : "\(section).\(key)"] = n + 1
            }
        }
    }

    /// The line of `path`, or of its nearest enclosing key or section.
    func line(_ path: String) -> Int? {
        var p = path
        while !p.isEmpty {
            if let l = lines[p] { return l }
            guard let cut = p.lastIndex(where: { $0 == "." || $0 == "[" }) else { break }
            p = String(p[..<cut])
        }
        return nil
    }
}

/// Reads one table strictly: typed getters record which keys were used, and `finish()`
/// refuses any key nobody asked for, listing the ones allowed.
public final class ConfigReader {
    let file: String
    let locator: LineLocator
    /// This table's key path ("" for the root, "optimizer", "regularizers[1]").
    let path: String
    let table: [String: ConfigValue]
    /// Command-line overrides by key path: errors about these keys point at `--set`, not a line.
    let overrides: [String: ConfigOverride]
    private var used: Set<String> = []

    init(file: String, locator: LineLocator, path: String, table: [String: ConfigValue],
         overrides: [String: ConfigOverride] = [:]) {
        self.file = file
        self.locator = locator
        self.path = path
        self.table = table
        self.overrides = overrides
    }

    /// Parses TOML text and applies `--set` overrides in order; a syntax error names the file,
    /// line and column.
    public static func parse(_ text: String, file: String, overrides: [ConfigOverride] = []) throws -> ConfigReader {
        var doc: ConfigValue
        do {
            doc = ConfigValue(try TOMLTable(string: text))
        } catch let e as TOMLParseError {
            throw ConfigError(file: file, line: e.source.begin.line, key: "",
                              message: "TOML syntax error at column \(e.source.begin.column): \(e.description)")
        }
        for o in overrides { try o.apply(to: &doc) }
        guard case .table(let d) = doc else { preconditionFailure("a TOML document is a table") }
        return ConfigReader(file: file, locator: LineLocator(text), path: "", table: d,
                            overrides: Dictionary(overrides.map { ($0.key, $0) }, uniquingKeysWith: { $1 }))
    }

    /// The whole table this reader reads (the document, for the root), overrides applied.
    public var document: ConfigValue { .table(table) }

    func key(_ k: String) -> String { path.isEmpty ? k : "\(path).\(k)" }

    public func error(_ k: String, _ message: String) -> ConfigError {
        if let o = overrides[key(k)] {
            return ConfigError(file: file, line: nil, key: key(k), message: "\(message) (from \(o))")
        }
        return ConfigError(file: file, line: locator.line(key(k)), key: key(k), message: message)
    }

    func value(_ k: String) -> ConfigValue? {
        used.insert(k)
        return table[k]
    }

    public func has(_ k: String) -> Bool { table[k] != nil }

    public func string(_ k: String, default d: String? = nil, allowed: [String]? = nil) throws -> String {
        guard let v = value(k) else {
            if let d { return d }
            throw error(k, "is required (a string\(allowed.map { ": " + $0.joined(separator: " | ") } ?? ""))")
        }
        guard case .string(let s) = v else { throw error(k, "expected a string, got \(v.typeName) \(v)") }
        if let allowed, !allowed.contains(s) {
            throw error(k, "\"\(s)\" is not one of \(allowed.joined(separator: " | "))")
        }
        return s
    }

    public func double(_ k: String, default d: Double? = nil, range: ClosedRange<Double>? = nil) throws -> Double {
        guard let v = value(k) else {
            if let d { return d }
            throw error(k, "is required (a number)")
        }
        guard case .number(let x, _) = v else { throw error(k, "expected a number, got \(v.typeName) \(v)") }
        if let range, !range.contains(x) { throw error(k, "\(v) is out of range; expected \(range.lowerBound)...\(range.upperBound)") }
        return x
    }

    public func int(_ k: String, default d: Int? = nil, min: Int? = nil) throws -> Int {
        guard let v = value(k) else {
            if let d { return d }
            throw error(k, "is required (an integer)")
        }
        guard case .number(let x, let isInt) = v, isInt else { throw error(k, "expected an integer, got \(v.typeName) \(v)") }
        if let min, Int(x) < min { throw error(k, "\(v) is out of range; expected an integer ≥ \(min)") }
        return Int(x)
    }

    public func optionalInt(_ k: String, min: Int? = nil) throws -> Int? { has(k) ? try int(k, min: min) : nil }

    public func bool(_ k: String, default d: Bool) throws -> Bool {
        guard let v = value(k) else { return d }
        guard case .bool(let b) = v else { throw error(k, "expected true or false, got \(v.typeName) \(v)") }
        return b
    }

    public func ints(_ k: String, default d: [Int]) throws -> [Int] {
        guard let v = value(k) else { return d }
        guard case .array(let a) = v else { throw error(k, "expected an array of integers, got \(v.typeName) \(v)") }
        return try a.map { e in
            guard case .number(let x, true) = e else { throw error(k, "expected integers, found \(e.typeName) \(e)") }
            return Int(x)
        }
    }

    public func strings(_ k: String) throws -> [String]? {
        guard let v = value(k) else { return nil }
        if case .string(let s) = v { return [s] }
        guard case .array(let a) = v else { throw error(k, "expected a string or an array of strings, got \(v.typeName)") }
        return try a.map { e in
            guard case .string(let s) = e else { throw error(k, "expected strings, found \(e.typeName) \(e)") }
            return s
        }
    }

    /// A sub-table (`[name]` or an inline table); nil when absent.
    public func table(_ k: String) throws -> ConfigReader? {
        guard let v = value(k) else { return nil }
        guard case .table(let d) = v else { throw error(k, "expected a table, got \(v.typeName) \(v)") }
        return ConfigReader(file: file, locator: locator, path: key(k), table: d, overrides: overrides)
    }

    /// An array of tables (`[[name]]`); empty when absent.
    public func tables(_ k: String) throws -> [ConfigReader]? {
        guard let v = value(k) else { return nil }
        guard case .array(let a) = v else { throw error(k, "expected an array of tables ([[\(k)]]), got \(v.typeName)") }
        return try a.enumerated().map { i, e in
            guard case .table(let d) = e else { throw error(k, "element \(i) is \(e.typeName), expected a table") }
            return ConfigReader(file: file, locator: locator, path: "\(key(k))[\(i)]", table: d, overrides: overrides)
        }
    }

    /// Every key not yet read, as plugin hyper-parameters (validated by the plugin itself).
    public func remainingAsHyperValues() throws -> [String: HyperValueText] {
        var out: [String: HyperValueText] = [:]
        for (k, v) in table where !used.contains(k) {
            used.insert(k)
            out[k] = HyperValueText(value: v, key: key(k), line: locator.line(key(k)))
        }
        return out
    }

    /// Refuses keys outside `allowed` before anything is read (same message as `finish`).
    public func refuseUnknown(allowed: [String]) throws {
        guard let first = table.keys.filter({ !allowed.contains($0) }).sorted().first else { return }
        throw error(first, "unknown \(table[first].map { if case .table = $0 { return "table" } else { return "key" } } ?? "key"); "
                    + "\(path.isEmpty ? "the top level" : "[\(path)]") accepts: \(allowed.sorted().joined(separator: ", "))")
    }

    /// Refuses keys that were never read.
    public func finish(allowed extra: [String] = []) throws {
        let unknown = table.keys.filter { !used.contains($0) }.sorted()
        guard let first = unknown.first else { return }
        let known = (Array(used) + extra).sorted()
        throw error(first, "unknown key; \(path.isEmpty ? "the top level" : "[\(path)]") accepts: \(known.joined(separator: ", "))")
    }
}

/// A raw value headed for a plugin, with its position for error messages.
public struct HyperValueText {
    public let value: ConfigValue
    public let key: String
    public let line: Int?
}
