/// A hyper-parameter value as a config gives it.
public enum HyperValue: Equatable, Sendable, CustomStringConvertible {
    case number(Double)
    case flag(Bool)
    case text(String)
    case numbers([Double])

    public var description: String {
        switch self {
        case .number(let x): return x.formatted
        case .flag(let b): return String(b)
        case .text(let s): return "\"\(s)\""
        case .numbers(let xs): return "[" + xs.map(\.formatted).joined(separator: ", ") + "]"
        }
    }

    var typeName: String {
        switch self {
        case .number: return "a number"
        case .flag: return "true or false"
        case .text: return "a string"
        case .numbers: return "a list of numbers"
        }
    }
}

extension Double {
    /// Shortest text that reads back as the same Double (what users typed).
    var formatted: String {
        if self == rounded(), abs(self) < 1e15 { return String(Int64(self)) }
        return "\(self)"
    }
}

/// A declared hyper-parameter: name, kind and valid values, default, one-line doc.
public struct HyperParameterSpec: Sendable {
    public enum Kind: Sendable {
        /// A number in `range`; `openUpper`/`openLower` exclude the bounds.
        case number(ClosedRange<Double>, openLower: Bool = false, openUpper: Bool = false)
        case flag
        case choice([String])
        case numbers
    }

    public let name: String
    public let kind: Kind
    public let defaultValue: HyperValue
    public let doc: String

    public init(_ name: String, _ kind: Kind, default value: HyperValue, _ doc: String) {
        self.name = name
        self.kind = kind
        self.defaultValue = value
        self.doc = doc
    }

    /// The accepted values, as an error message or `plugins list` shows them.
    public var rangeText: String {
        switch kind {
        case .number(let r, let ol, let ou):
            return "\(ol ? "(" : "[")\(r.lowerBound.formatted), \(r.upperBound == .infinity ? "inf" : r.upperBound.formatted)\(ou ? ")" : "]")"
        case .flag: return "true | false"
        case .choice(let options): return options.joined(separator: " | ")
        case .numbers: return "list of numbers"
        }
    }

    /// Checks `value` against the declaration; the error names `key`, the value and the range.
    func validate(_ value: HyperValue, key: String) throws -> HyperValue {
        switch (kind, value) {
        case (.number(let r, let ol, let ou), .number(let x)):
            let ok = x.isFinite && r.contains(x) && !(ol && x == r.lowerBound) && !(ou && x == r.upperBound)
            guard ok else { throw PluginError.outOfRange(key: key, value: value, range: rangeText) }
            return value
        case (.flag, .flag), (.numbers, .numbers): return value
        case (.numbers, .number(let x)): return .numbers([x])
        case (.choice(let options), .text(let s)):
            guard options.contains(s) else { throw PluginError.outOfRange(key: key, value: value, range: rangeText) }
            return value
        default:
            let expected: String
            switch kind {
            case .number: expected = "a number"
            case .flag: expected = "true or false"
            case .choice: expected = "one of \(rangeText)"
            case .numbers: expected = "a list of numbers"
            }
            throw PluginError.wrongType(key: key, value: value, expected: expected)
        }
    }
}

/// Resolved, validated hyper-parameters of one plugin instance: every declared name has a value.
public struct HyperValues: Sendable, CustomStringConvertible {
    public let values: [String: HyperValue]
    let order: [String]

    /// Validates `given` against `specs`; `keyPrefix` names the config table in errors
    /// (e.g. "optimizer" → "optimizer.beta1").
    public init(specs: [HyperParameterSpec], given: [String: HyperValue], keyPrefix: String,
                pluginName: String) throws {
        var v: [String: HyperValue] = [:]
        for s in specs { v[s.name] = s.defaultValue }
        for (k, value) in given.sorted(by: { $0.key < $1.key }) {
            guard let spec = specs.first(where: { $0.name == k }) else {
                throw PluginError.unknownKey(key: "\(keyPrefix).\(k)", plugin: pluginName,
                                             known: specs.map(\.name))
            }
            v[k] = try spec.validate(value, key: "\(keyPrefix).\(k)")
        }
        values = v
        order = specs.map(\.name)
    }

    public func number(_ name: String) -> Double {
        if case .number(let x)? = values[name] { return x }
        preconditionFailure("hyper-parameter \(name) is not a declared number")
    }
    public func flag(_ name: String) -> Bool {
        if case .flag(let b)? = values[name] { return b }
        preconditionFailure("hyper-parameter \(name) is not a declared flag")
    }
    public func text(_ name: String) -> String {
        if case .text(let s)? = values[name] { return s }
        preconditionFailure("hyper-parameter \(name) is not a declared choice")
    }
    public func numbers(_ name: String) -> [Double] {
        switch values[name] {
        case .numbers(let xs)?: return xs
        case .number(let x)?: return [x]
        default: preconditionFailure("hyper-parameter \(name) is not a declared list")
        }
    }

    public var description: String {
        order.compactMap { k in values[k].map { "\(k)=\($0)" } }.joined(separator: ", ")
    }
}
