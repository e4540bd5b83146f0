import ArgumentParser
import Foundation

/// Help is rendered by ArgumentParser, which wraps paragraphs and option help to the terminal
/// but prints the synopsis (`USAGE: decoupled train <config> [--run-dir <run-dir>] …`) on one
/// line whatever its length. `mainWrappingUsage` is `main()` with that line wrapped too, so
/// every line of every `--help` fits the terminal.
extension Decoupled {
    static func mainWrappingUsage() -> Never {
        do {
            var command = try parseAsRoot()
            try command.run()
            Foundation.exit(0)
        } catch {
            let text = exitCode(for: error) == .success ? fullMessage(for: error) : ""
            // Help and --version: stdout, status 0; errors keep ArgumentParser's own output.
            guard !text.isEmpty else { exit(withError: error) }
            print(wrappingUsage(text, columns: terminalColumns()))
            Foundation.exit(0)
        }
    }

    /// The width ArgumentParser wraps to: $COLUMNS, else the terminal's, else 80.
    static func terminalColumns() -> Int {
        if let c = ProcessInfo.processInfo.environment["COLUMNS"].flatMap(Int.init), c > 0 { return c }
        var size = winsize()
        if ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return Int(size.ws_col) }
        return 80
    }

    /// `text` with its `USAGE:` line broken between synopsis elements (never inside
    /// `[...]` or `<...>`) to `columns`, continuation lines indented under the command name as
    /// ArgumentParser indents its own.
    static func wrappingUsage(_ text: String, columns: Int) -> String {
        let prefix = "USAGE: ", indent = String(repeating: " ", count: prefix.count)
        return text.components(separatedBy: "\n").map { line -> String in
            guard line.hasPrefix(prefix), line.count > columns else { return line }
            var elements: [String] = [], current = "", depth = 0
            for ch in line.dropFirst(prefix.count) {
                if ch == "[" || ch == "<" { depth += 1 }
                if ch == "]" || ch == ">" { depth -= 1 }
                if ch == " " && depth == 0 {
                    if !current.isEmpty { elements.append(current) }
                    current = ""
                } else {
                    current.append(ch)
                }
            }
            if !current.isEmpty { elements.append(current) }
            var lines: [String] = [], row = prefix
            for e in elements {
                if row.count > prefix.count && row.count + 1 + e.count > columns {
                    lines.append(row)
                    row = indent + e
                } else {
                    row += (row.count > prefix.count ? " " : "") + e
                }
            }
            lines.append(row)
            return lines.joined(separator: "\n")
        }.joined(separator: "\n")
    }
}
