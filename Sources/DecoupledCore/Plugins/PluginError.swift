/// Errors of plugin resolution and loading; each names the key, value or file at fault.
public enum PluginError: Error, CustomStringConvertible, Equatable {
    /// `refused`: libraries that were not loaded ("path (reason)"); one of them may have been meant.
    case unknownPlugin(kind: PluginKind, name: String, closest: [String], all: [String], refused: [String] = [])
    case duplicate(name: String, existing: String, new: String)
    case outOfRange(key: String, value: HyperValue, range: String)
    case wrongType(key: String, value: HyperValue, expected: String)
    case unknownKey(key: String, plugin: String, known: [String])
    case invalid(key: String, message: String)
    case library(path: String, message: String)

    public var description: String {
        switch self {
        case .unknownPlugin(let kind, let name, let closest, let all, let refused):
            let hint = closest.isEmpty ? "" : " Did you mean \(closest.map { "'\($0)'" }.joined(separator: " or "))?"
            let notLoaded = refused.isEmpty ? "" : ". Refused plugin libraries: \(refused.joined(separator: "; "))"
            return "unknown \(kind.rawValue) '\(name)'.\(hint) Registered \(kind.rawValue)s: \(all.joined(separator: ", "))\(notLoaded)"
        case .duplicate(let name, let existing, let new):
            return "plugin name '\(name)' from \(new) is already registered by \(existing); plugin names must be unique"
        case .outOfRange(let key, let value, let range):
            return "\(key) = \(value) is out of range; expected \(range)"
        case .wrongType(let key, let value, let expected):
            return "\(key) = \(value) has the wrong type; expected \(expected)"
        case .unknownKey(let key, let plugin, let known):
            return "\(key) is not a hyper-parameter of '\(plugin)'; it has: \(known.isEmpty ? "none" : known.joined(separator: ", "))"
        case .invalid(let key, let message):
            return "\(key): \(message)"
        case .library(let path, let message):
            return "plugin library \(path): \(message)"
        }
    }
}

/// Levenshtein distance, for "did you mean" suggestions.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var prev = Array(0...b.count), cur = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        cur[0] = i
        for j in 1...b.count {
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        swap(&prev, &cur)
    }
    return prev[b.count]
}

/// The registered names closest to `name` (distance ≤ 3, or sharing a prefix), best first.
func closestNames(to name: String, in names: [String]) -> [String] {
    let scored = names.map { ($0, editDistance(name.lowercased(), $0.lowercased())) }
    let near = scored.filter { $0.1 <= max(2, name.count / 3) || $0.0.hasPrefix(name) || name.hasPrefix($0.0) }
    return near.sorted { ($0.1, $0.0) < ($1.1, $1.0) }.prefix(3).map(\.0)
}

extension PluginError {
    /// The config key the error is about, when it is about one.
    public var key: String? {
        switch self {
        case .outOfRange(let k, _, _), .wrongType(let k, _, _), .unknownKey(let k, _, _), .invalid(let k, _): return k
        default: return nil
        }
    }
}
