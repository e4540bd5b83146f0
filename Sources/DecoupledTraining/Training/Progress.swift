import Foundation

/// Reports a run's progress on standard error: a one-line bar with ETA redrawn in place on a
/// terminal, or plain lines (one per metrics record) when standard error is a file or pipe,
/// as in logs on servers.
public final class ProgressReporter {
    public enum Mode { case bar, lines, quiet }

    public let mode: Mode
    private var lastDraw = -Double.infinity
    private var barVisible = false
    /// The first step this process drew and when: the ETA's rate is measured from there, so a
    /// resumed run's earlier wall time (or a stop in between) does not distort it.
    private var rateOrigin: (step: Int, time: Double)?
    private let output: (String) -> Void
    private let clock: () -> Double

    /// `quiet` prints nothing; otherwise the mode follows whether standard error is a terminal.
    public convenience init(quiet: Bool = false) {
        self.init(mode: quiet ? .quiet : (isatty(STDERR_FILENO) == 1 ? .bar : .lines))
    }

    /// A reporter in a given mode; `output` receives the text (default: standard error) and
    /// `clock` gives seconds (default: the wall clock); tests replace both.
    public init(mode: Mode, output: ((String) -> Void)? = nil, clock: (() -> Double)? = nil) {
        self.mode = mode
        self.output = output ?? { FileHandle.standardError.write(Data($0.utf8)) }
        self.clock = clock ?? { Date().timeIntervalSinceReferenceDate }
    }

    /// Redraws the bar (at most 10 times a second, and always at the last step); nothing in
    /// line mode. The ETA extrapolates the rate of the steps since this reporter's first update.
    public func update(step: Int, total: Int, stepsPerEpoch: Int, loss: Double?) {
        guard mode == .bar else { return }
        let now = clock()
        if rateOrigin == nil { rateOrigin = (step, now) }
        guard now - lastDraw >= 0.1 || step == total else { return }
        lastDraw = now
        let frac = total > 0 ? Double(step) / Double(total) : 1
        let width = 24
        let filled = Int(frac * Double(width))
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        let origin = rateOrigin!
        let done = step - origin.step
        let eta = step == total ? 0 : done > 0 ? (now - origin.time) / Double(done) * Double(total - step) : .nan
        let epochs = (Double(total) / Double(stepsPerEpoch)).rounded(.up)
        var line = String(format: "epoch %d/%.0f %@ %3.0f%% step %d/%d", step / stepsPerEpoch + (step == total ? 0 : 1),
                          epochs, bar, frac * 100, step, total)
        if let loss { line += String(format: " loss %.4f", loss) }
        line += " ETA " + Self.duration(eta)
        output("\r" + line + "\u{1B}[K")
        barVisible = true
    }

    /// Ends the bar's line, so what is printed next (the run's summary on standard output)
    /// starts on a line of its own.
    public func endBar() {
        guard barVisible else { return }
        output("\n")
        barVisible = false
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
        output((barVisible ? "\r\u{1B}[K" : "") + text + "\n")
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

    /// How a run ended, as `train` and `resume` print it: e.g. `completed: mlp, step 4690/4690,
    /// final test accuracy 0.8812 (best test accuracy 0.8840 at epoch 9), 93.1 s, 6443 samples/s`.
    /// A run that did not complete has no "final" result: a preempted one says where it stopped
    /// and what its last evaluation was.
    public static func describe(_ summary: RunSummary) -> String {
        func text(_ x: Int?) -> String { x.map(String.init) ?? "?" }
        func accuracies(_ r: MetricRecord) -> String {
            var parts: [String] = []
            if let a = r.valAcc { parts.append(String(format: "validation accuracy %.4f", a)) }
            if let a = r.testAcc { parts.append(String(format: "test accuracy %.4f", a)) }
            return parts.joined(separator: ", ")
        }
        var line = "\(summary.status.rawValue): \(summary.name ?? "?"), "
        switch summary.status {
        case .completed:
            line += "step \(text(summary.step))/\(text(summary.stepsTotal))"
            if let f = summary.final, !accuracies(f).isEmpty { line += ", final " + accuracies(f) }
        default:
            line += "stopped at step \(text(summary.step))/\(text(summary.stepsTotal))"
            if let reason = summary.reason { line += " (\(reason))" }
            if let f = summary.final {
                line += String(format: "; last evaluation at step %d (epoch %.2f)", f.step, f.epoch)
                if !accuracies(f).isEmpty { line += ": " + accuracies(f) }
            } else {
                line += "; not evaluated yet"
            }
        }
        if let b = summary.best, let a = b.valAcc ?? b.testAcc {
            line += String(format: " (best %@ accuracy %.4f at epoch %.0f)", b.valAcc != nil ? "validation" : "test", a, b.epoch)
        }
        if let wall = summary.wallS, let rate = summary.trainSamplesPerS { line += String(format: ", %.1f s, %.0f samples/s", wall, rate) }
        return line
    }

    public static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "--" }
        let s = Int(seconds.rounded())
        if s >= 3600 { return "\(s / 3600)h\(String(format: "%02d", s % 3600 / 60))m" }
        if s >= 60 { return "\(s / 60)m\(String(format: "%02d", s % 60))s" }
        return "\(s)s"
    }
}
