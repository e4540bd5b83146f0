import DecoupledSystem
import DecoupledTraining
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Shared by the sweep backends: the runner's error, the failure record a runner leaves when a
// trainer could not say why it stopped, and number formatting. Processes, locks and file
// writes go through DecoupledSystem (Subprocess, DirectoryLock, FS).

/// An error of the sweep runner that is not about one input file: a process that cannot be
/// started, a sweep directory in use, a failing `sbatch`.
public struct SweepRunnerError: Error, CustomStringConvertible, Equatable, Sendable {
    /// What went wrong, naming the file, command or value.
    public let message: String
    /// Creates an error with a message.
    public init(_ message: String) { self.message = message }
    /// The message.
    public var description: String { message }
}

/// What a runner writes into a run directory when the trainer ended without a summary of
/// its own (it exited with an error before training, or was killed): a `summary.json` with
/// status "failed" and the reason, so reports and `sweep status` show why, and the run is
/// not retried without `--retry-failed`.
enum SweepFailureRecord {
    /// Writes the failure summary unless the trainer wrote a "failed" summary itself since
    /// `since`. The reason is the exit status and `reason`, or else the last error line of
    /// `logFile` (the trainer's output).
    static func write(runDirectory: String, exit: ChildExit, since: Date, logFile: String, logOffset: UInt64,
                      reason: String? = nil) {
        let summaryPath = (runDirectory as NSString).appendingPathComponent("summary.json")
        if let attributes = try? FileManager.default.attributesOfItem(atPath: summaryPath),
           let modified = attributes[.modificationDate] as? Date, modified >= since,
           let summary = try? RunSummary.load(from: URL(fileURLWithPath: summaryPath)), summary.status == .failed {
            return
        }
        let reason = "\(exit)" + ((reason ?? lastErrorLine(logFile: logFile, from: logOffset)).map { ": \($0)" } ?? "")
        // Keep what an earlier summary knew (how far the run got), so the record stays useful.
        var summary = (try? RunSummary.load(from: URL(fileURLWithPath: summaryPath))) ?? RunSummary(status: .failed)
        summary.status = .failed
        summary.reason = reason
        summary.writtenBy = "sweep runner"
        try? summary.write(to: summaryPath)
    }

    /// Why a trainer's exit status 0 does not make its run completed: nil when summary.json
    /// says `completed`. Only the trainer's summary tells that training reached its end; a
    /// process can exit 0 from anywhere (a plugin calling exit(0)).
    static func incompleteSuccess(_ state: SweepRunState) -> String? {
        guard state.status != .completed || state.unreadable != nil else { return nil }
        let said = state.unreadable.map { "summary.json is unreadable: \($0)" }
            ?? (state.status == nil ? "no summary.json" : "summary.json says \(state.status.label)")
        return "the trainer exited with status 0 before the end of training (\(said)); something in it called exit, e.g. a plugin"
    }

    /// The last line of the log written since `offset` that reports an error (ArgumentParser
    /// prints "Error: ..."), else its last non-empty line.
    static func lastErrorLine(logFile: String, from offset: UInt64) -> String? {
        guard let h = FileHandle(forReadingAtPath: logFile) else { return nil }
        defer { try? h.close() }
        let end = (try? h.seekToEnd()) ?? 0
        let start = max(offset, end > 16_384 ? end - 16_384 : 0)
        try? h.seek(toOffset: start)
        guard let data = try? h.readToEnd() else { return nil }
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("===") }
        let line = lines.last(where: { $0.lowercased().contains("error") }) ?? lines.last
        return line.map { String($0.prefix(500)) }
    }
}

/// Number and duration formatting for progress lines and status tables.
enum SweepFormat {
    /// Compact: 1e-3, 3e-4, 0.1, 0, 2.5e-5 (exponent form below 0.1, up to 4 significant digits).
    static func number(_ x: Double) -> String {
        if x == 0 { return "0" }
        if !x.isFinite { return "\(x)" }
        if abs(x) >= 0.1 && abs(x) < 1e5 { return trim(String(format: "%.4g", x)) }
        let e = Int(floor(log10(abs(x))))
        var m = x / pow(10, Double(e))
        var exp = e
        // 9.99996e-4 rounds to 10 at four digits: carry into the exponent.
        if abs(Double(String(format: "%.3f", m))!) >= 10 { m /= 10; exp += 1 }
        return "\(trim(String(format: "%.3f", m)))e\(exp)"
    }

    private static func trim(_ s: String) -> String {
        guard s.contains("."), !s.contains("e") else { return s }
        var t = s
        while t.hasSuffix("0") { t.removeLast() }
        if t.hasSuffix(".") { t.removeLast() }
        return t
    }

    /// 45s, 1m20s, 2h05m.
    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m\(String(format: "%02d", s % 60))s" }
        return "\(s / 3600)h\(String(format: "%02d", (s % 3600) / 60))m"
    }

    /// ISO 8601 UTC with seconds, for logs and events.
    static func timestamp(_ date: Date = Date()) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: date)
    }
}
