import Foundation

// Number and text formatting shared by the tables, the plots and the HTML page. Humans get
// short numbers (percentages with two decimals, "1e-3"); the CSV gets Swift's shortest
// round-tripping representation so that parsing it back gives the exact Double.

enum ReportFormat {
    /// A hyper-parameter value as an axis tick or table cell: "0", "1e-3", "5e-4", "3.16e-4",
    /// "1e-2", "0.3". Scientific below 0.1, where the exponent is what a reader compares.
    static func hyper(_ v: Double) -> String {
        if v == 0 { return "0" }
        if !v.isFinite { return "\(v)" }
        let a = abs(v)
        if a >= 0.1 && a < 1000 { return trimmed(String(format: "%.3g", v)) }
        return scientific(v)
    }

    /// Tick labels of one axis in one style: scientific for all when any value needs it, so
    /// an axis never reads "1e-4, 1e-3, 0.01".
    static func hyperAxis(_ values: [Double]) -> [String] {
        let plain = values.allSatisfy { $0 == 0 || (abs($0) >= 0.1 && abs($0) < 1000) }
        return values.map { plain || $0 == 0 ? hyper($0) : scientific($0) }
    }

    /// "1e-2", "5e-4", "3.16e-4".
    static func scientific(_ v: Double) -> String {
        guard v != 0, v.isFinite else { return hyper(v) }
        var e = Int(floor(log10(abs(v))))
        var m = v / pow(10, Double(e))
        // log10 of an exact power of ten can land a hair below it.
        if abs(m) >= 9.9995 { m /= 10; e += 1 }
        if abs(m) < 0.99995 { m *= 10; e -= 1 }
        let ms = abs(m - m.rounded()) < 1e-9 ? String(Int(m.rounded())) : trimmed(String(format: "%.3g", m))
        return "\(ms)e\(e)"
    }

    /// "12.34" (a fraction shown as percent with two decimals), "" for nil, "nan" for NaN.
    static func percent(_ fraction: Double?, decimals: Int = 2) -> String {
        guard let f = fraction else { return "" }
        return f.isFinite ? String(format: "%.\(decimals)f", f * 100) : "\(f)"
    }

    /// A loss with four significant digits.
    static func loss(_ v: Double?) -> String {
        guard let v = v else { return "" }
        return v.isFinite ? String(format: "%.4g", v) : "\(v)"
    }

    /// A fraction in [0, 1] with four decimals (zero fraction).
    static func fraction(_ v: Double?) -> String {
        guard let v = v else { return "" }
        return v.isFinite ? String(format: "%.4f", v) : "\(v)"
    }

    /// An epoch: "20" or "12.5".
    static func epoch(_ v: Double?) -> String {
        guard let v = v else { return "" }
        return trimmed(String(format: "%.2f", v))
    }

    /// Wall time: "42.1 s", "12.3 min", "2.05 h".
    static func duration(_ seconds: Double?) -> String {
        guard let s = seconds, s.isFinite else { return "" }
        if s < 600 { return String(format: "%.1f s", s) }
        if s < 36000 { return String(format: "%.1f min", s / 60) }
        return String(format: "%.2f h", s / 3600)
    }

    /// "11.52 ± 0.31" in percent, or "11.52" for a single seed.
    static func percentMeanStd(_ m: MeanStd?) -> String {
        guard let m = m else { return "" }
        return percent(m.mean) + (m.std.map { " ± " + percent($0) } ?? "")
    }

    /// A loss mean ± std.
    static func lossMeanStd(_ m: MeanStd?) -> String {
        guard let m = m else { return "" }
        return loss(m.mean) + (m.std.map { " ± " + loss($0) } ?? "")
    }

    /// An exact value for the CSV: the shortest text that parses back to the same Double.
    static func exact(_ v: Double?) -> String { v.map { "\($0)" } ?? "" }

    /// Drops trailing zeros of a fixed or %g number: "12.50" → "12.5", "3.00" → "3".
    static func trimmed(_ s: String) -> String {
        guard s.contains("."), !s.contains("e") else { return s }
        var t = s
        while t.hasSuffix("0") { t.removeLast() }
        if t.hasSuffix(".") { t.removeLast() }
        return t
    }

    /// Greedy word wrap of `items` joined by `separator` into lines of at most `width` characters.
    static func wrap(_ items: [String], separator: String, width: Int) -> [String] {
        var lines: [String] = []
        var line = ""
        for item in items {
            if line.isEmpty { line = item }
            else if line.count + separator.count + item.count <= width { line += separator + item }
            else { lines.append(line); line = item }
        }
        if !line.isEmpty { lines.append(line) }
        return lines
    }

    /// A file-name-safe slug of a method label, unique within `taken`: "Adam+L2" → "adam-l2".
    static func slug(_ label: String, taken: inout Set<String>) -> String {
        var s = ""
        for c in label.lowercased().unicodeScalars {
            if (c >= "a" && c <= "z") || (c >= "0" && c <= "9") { s.unicodeScalars.append(c) }
            else if !s.hasSuffix("-") && !s.isEmpty { s += "-" }
        }
        while s.hasSuffix("-") { s.removeLast() }
        if s.isEmpty { s = "method" }
        var candidate = s
        var n = 2
        while taken.contains(candidate) { candidate = "\(s)-\(n)"; n += 1 }
        taken.insert(candidate)
        return candidate
    }

    static func html(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }

    /// A Markdown table cell: pipes escaped, newlines folded.
    static func markdown(_ s: String) -> String {
        s.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
    }

    /// A CSV field (RFC 4180): quoted when it holds a comma, quote or line break.
    static func csv(_ s: String) -> String {
        guard s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return s }
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// A gnuplot double-quoted string literal.
    static func gnuplot(_ s: String) -> String {
        "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n") + "\""
    }
}
