import Foundation

// Errors about the project's JSON files (run directories, sweep manifests, study designs,
// Slurm job lists) and the decoding that produces them. They live here, below both the
// trainer and the sweep code, so the run-directory reader (RunFormat.swift) and the sweep's
// own loaders report a bad file the same way: file, key, what was expected.

/// A problem with one input file (a run's summary.json or metrics.jsonl, a sweep manifest,
/// ...): the file (with `:line` for JSON Lines), the key inside it (a dotted path such as
/// `runs[3].lr`, empty for the whole file) and what is wrong.
public struct FileFormatError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file, as the caller spelled its directory, with `:line` or `:line:column` when known.
    public let file: String
    /// The key path inside the file (`runs[3].lr`), or empty when the file as a whole is bad.
    public let key: String
    /// What is wrong, in words.
    public let message: String

    /// Creates an error about `key` in `file`.
    public init(file: String, key: String = "", message: String) {
        self.file = file
        self.key = key
        self.message = message
    }

    /// `file: key: message`, the form compilers and `ConfigError` use, so editors can jump to it.
    public var description: String { "\(file): \(key.isEmpty ? "" : "\(key): ")\(message)" }
}

// MARK: - JSON with errors that name the file and key

/// JSON decoding whose errors are `FileFormatError`s with a readable key path and, for syntax
/// errors, the line and column (Foundation only reports a character offset).
package enum JSONFile {
    package static func decoder() -> JSONDecoder {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return d
    }

    /// Reads and decodes a whole file; `what` says what the file should be in the "missing" error.
    /// `decoder` decodes the bytes (a file with its own key or number conventions, like
    /// verdict.json); the errors are mapped the same way.
    package static func decode<T: Decodable>(_ type: T.Type, file: URL, what: String, decoder: JSONDecoder = decoder()) throws -> T {
        guard FileManager.default.fileExists(atPath: file.path) else {
            throw FileFormatError(file: file.path, message: "no such file (expected the \(what))")
        }
        let data: Data
        do { data = try Data(contentsOf: file) } catch {
            throw FileFormatError(file: file.path, message: "cannot read the \(what): \(reason(error))")
        }
        return try decode(type, data: data, file: file.path, line: nil, decoder: decoder)
    }

    /// Decodes `data`; `line` is the line number of a JSON Lines record, for the error.
    package static func decode<T: Decodable>(_ type: T.Type, data: Data, file: String, line: Int?,
                                             decoder: JSONDecoder = decoder()) throws -> T {
        let where_ = line.map { "\(file):\($0)" } ?? file
        do {
            return try decoder.decode(type, from: data)
        } catch let error as DecodingError {
            switch error {
            case .dataCorrupted(let c) where c.codingPath.isEmpty:
                throw syntaxError(data: data, file: file, line: line, fallback: c.debugDescription)
            case .dataCorrupted(let c):
                throw FileFormatError(file: where_, key: keyPath(c.codingPath), message: c.debugDescription)
            case .keyNotFound(let key, let c):
                throw FileFormatError(file: where_, key: keyPath(c.codingPath + [key]), message: "missing")
            case .valueNotFound(let t, let c):
                throw FileFormatError(file: where_, key: keyPath(c.codingPath), message: "is null, expected \(typeName(t))")
            case .typeMismatch(let t, let c):
                throw FileFormatError(file: where_, key: keyPath(c.codingPath),
                                     message: "expected \(typeName(t)), found \(foundDescription(data: data, path: c.codingPath))")
            @unknown default:
                throw FileFormatError(file: where_, message: "\(error)")
            }
        }
    }

    /// `runs[3].lr` from a coding path.
    package static func keyPath(_ path: [CodingKey]) -> String {
        var s = ""
        for k in path {
            if let i = k.intValue, k.stringValue.hasPrefix("Index") || k.stringValue == String(i) { s += "[\(i)]" }
            else { s += (s.isEmpty ? "" : ".") + k.stringValue }
        }
        return s
    }

    package static func typeName(_ t: Any.Type) -> String {
        switch t {
        case is Double.Type, is Float.Type: return "a number"
        case is Int.Type: return "an integer"
        case is String.Type: return "a string"
        case is Bool.Type: return "a boolean"
        case is [Any].Type: return "an array"
        default:
            let n = "\(t)"
            if n.hasPrefix("Array") { return "an array" }
            if n.hasPrefix("Dictionary") || ["Sweep", "MetricRecord", "RunSummary"].contains(where: n.hasPrefix) { return "an object" }
            return n
        }
    }

    /// What the JSON has at `path`, for "expected a number, found a string".
    package static func foundDescription(data: Data, path: [CodingKey]) -> String {
        guard var node = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) else { return "another type" }
        for k in path {
            if let i = k.intValue, let a = node as? [Any], i < a.count { node = a[i] }
            else if let d = node as? [String: Any], let v = d[k.stringValue] { node = v }
            else { return "another type" }
        }
        switch node {
        case let s as String: return "the string \"\(s.prefix(40))\""
        case is [Any]: return "an array"
        case is [String: Any]: return "an object"
        case is NSNull: return "null"
        case let n as NSNumber:
            // JSONSerialization gives booleans as NSNumber too, with the C type `char` ("c").
            return String(cString: n.objCType) == "c" ? "the boolean \(n.boolValue)" : "the number \(n)"
        default: return "another type"
        }
    }

    /// A syntax error with line and column; Foundation's message gives a character offset.
    /// `fallback` is the decoder's own words, used when the text parses after all (the
    /// decoder refused something else at the top level).
    package static func syntaxError(data: Data, file: String, line: Int?, fallback: String) -> FileFormatError {
        var detail = "not valid JSON"
        var position = line.map { ":\($0)" } ?? ""
        do {
            _ = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
            detail = fallback
        } catch {
            let info = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? ""
            if !info.isEmpty { detail += " (\(info.trimmingCharacters(in: CharacterSet(charactersIn: "."))))" }
            if let r = info.range(of: #"character (\d+)"#, options: .regularExpression),
               let offset = Int(info[r].dropFirst("character ".count)) {
                let prefix = data.prefix(offset)
                let row = prefix.filter { $0 == 0x0A }.count
                let column = offset - (prefix.lastIndex(of: 0x0A).map { $0 + 1 } ?? 0) + 1
                position = line.map { ":\($0):\(column)" } ?? ":\(row + 1):\(column)"
            }
        }
        if data.isEmpty { detail = "empty file, expected a JSON object" }
        return FileFormatError(file: file + position, message: detail)
    }

    /// The interesting part of a Foundation file error.
    package static func reason(_ error: Error) -> String {
        let ns = error as NSError
        if let u = ns.userInfo[NSUnderlyingErrorKey] as? NSError, u.domain == NSPOSIXErrorDomain,
           let code = POSIXErrorCode(rawValue: Int32(u.code)) {
            return String(cString: strerror(code.rawValue))
        }
        return ns.localizedDescription
    }
}
