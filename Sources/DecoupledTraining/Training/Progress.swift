import Foundation

/// Reports a run's progress on standard error: a one-line bar with ETA redrawn in place on a
/// terminal, or plain lines (one per metrics record) when standard error is a file or pipe,
/// as in logs on servers.
public final class ProgressReporter {
    public enum Mode { case bar, lines, quiet }

    public let mode: Mode
    private var lastDraw = 0.0
    private var barVisible = false

    /// `quiet` prints nothing; otherwise the mode follows whether standard error is a terminal.
    public init(quiet: Bool = false) {
        mode = quiet ? .quiet : (isatty(STDERR_FILENO) == 1 ? .bar : .lines)
    }

    /// Redraws the bar (at most 10 times a second); nothing in line mode.
    public func update(step: Int, total: Int, stepsPerEpoch: Int, elapsed: Double, startStep: Int, loss: Double?) {
        guard mode == .bar else { return }
        let now = Date().timeIntervalSinceReferenceDate
        guard now - lastDraw >= 0.1 || step == total else { return }
        lastDraw = now
        let frac = total > 0 ? Double(step) / Double(total) : 1
        let width = 24
        let filled = Int(frac * Double(width))
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        let done = step - startStep
        let eta = done > 0 ? elapsed / Double(done) * Double(total - step) : .nan
        let epochs = (Double(total) / Double(stepsPerEpoch)).rounded(.up)
        var line = String(format: "epoch %d/%.0f %@ %3.0f%% step %d/%d", step / stepsPerEpoch + (step == total ? 0 : 1),
                          epochs, bar, frac * 100, step, total)
        if let loss { line += String(format: " loss %.4f", loss) }
        line += " ETA " + Self.duration(eta)
        FileHandle.standardError.write(Data(("\r" + line + "\u{1B}[K").utf8))
        barVisible = true
    }

    /// Prints a line (above the bar on a terminal).
    public func line(_ text: String) {
        guard mode != .quiet else { return }
        write(text)
    }

    /// Prints a warning or error line even with `--quiet`: sweeps run trainers quietly, and
    /// their train.log must still record a checkpoint fallback, a skipped step or a divergence.
    public func warning(_ text: String) {
        warnings.append(text)
        write(text)
    }

    /// Every warning printed so far (tests and summaries read them).
    public private(set) var warnings: [String] = []

    private func write(_ text: String) {
        FileHandle.standardError.write(Data(((barVisible ? "\r\u{1B}[K" : "") + text + "\n").utf8))
        barVisible = false
    }

    /// A record as one line: `epoch 3.00 step 1407 lr 1.00e-03 loss 0.3412 (+0.0021) acc 0.872 | test 0.3811 0.861 | ‖w‖ 45.2 zeros 0.0% | 1.21 ms/step`.
    public static func describe(_ r: MetricRecord) -> String {
        var s = String(format: "epoch %.2f step %d", r.epoch, r.step)
        if let lr = r.lr { s += String(format: " lr %.3g", lr) }
        if let l = r.dataLoss { s += String(format: " loss %.4f", l) }
        if let p = r.penalty, p != 0 { s += String(format: " (+%.4f)", p) }
        if let a = r.trainAcc { s += String(format: " acc %.4f", a) }
        if let l = r.valLoss { s += String(format: " | val loss %.4f", l) }
        if let a = r.valAcc { s += String(format: " acc %.4f", a) }
        if let l = r.testLoss { s += String(format: " | test loss %.4f", l) }
        if let a = r.testAcc { s += String(format: " acc %.4f", a) }
        if let n = r.weightNorm, let z = r.zeroFraction { s += String(format: " | ‖w‖ %.4g zeros %.2f%%", n, z * 100) }
        if let ms = r.stepMs { s += String(format: " | %.3f ms/step", ms) }
        return s
    }

    public static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "--" }
        let s = Int(seconds.rounded())
        if s >= 3600 { return "\(s / 3600)h\(String(format: "%02d", s % 3600 / 60))m" }
        if s >= 60 { return "\(s / 60)m\(String(format: "%02d", s % 60))s" }
        return "\(s)s"
    }
}
