import DecoupledTraining
import Foundation
import Testing

/// The terminal progress bar and the run's closing line.
@Suite struct ProgressTests {
    final class Capture: @unchecked Sendable {
        var text = ""
        var now = 0.0
    }

    func reporter(_ c: Capture) -> ProgressReporter {
        ProgressReporter(mode: .bar, output: { c.text += $0 }, clock: { c.now })
    }

    /// The ETA extrapolates the steps this process ran: a run resumed at step 1000 of 1100
    /// that does a step per second has 49 s to go after 51 steps, however long the run took
    /// before it was stopped.
    @Test func etaIsMeasuredFromThisProcessSteps() {
        let c = Capture()
        let p = reporter(c)
        c.now = 5000
        p.update(step: 1001, total: 1100, stepsPerEpoch: 100, loss: 0.5)
        #expect(c.text.hasSuffix("ETA --\u{1B}[K"), "\(c.text)")
        c.now = 5050
        p.update(step: 1051, total: 1100, stepsPerEpoch: 100, loss: 0.5)
        #expect(c.text.hasSuffix("step 1051/1100 loss 0.5000 ETA 49s\u{1B}[K"), "\(c.text)")
    }

    /// The bar's last frame ends its line before anything else is printed, and only once.
    @Test func endBarEndsTheLine() {
        let c = Capture()
        let p = reporter(c)
        p.endBar()
        #expect(c.text.isEmpty, "no bar, nothing to end")
        p.update(step: 10, total: 10, stepsPerEpoch: 5, loss: nil)
        #expect(c.text.contains("100%") && !c.text.hasSuffix("\n"))
        p.endBar()
        p.endBar()
        #expect(c.text.hasSuffix("\u{1B}[K\n") && !c.text.hasSuffix("\n\n"))
        p.line("next")
        #expect(c.text.hasSuffix("\u{1B}[K\nnext\n"), "a line after the bar's end does not clear it: \(c.text.debugDescription)")
    }

    /// A trainer ends the bar when the run ends, so `train`'s summary line starts on its own line.
    @Test func trainerEndsTheBar() throws {
        let c = Capture()
        let dir = Scratch()
        let session = try TrainingSession(config: try smallConfig(), registry: .builtIn(), kernels: .best, threads: 1)
        let trainer = try Trainer(session: session, runDirectory: dir.path, resume: false,
                                  progress: ProgressReporter(mode: .bar, output: { c.text += $0 }))
        let summary = try trainer.run()
        #expect(summary.status == .completed)
        let lastFrame = c.text.split(separator: "\r").last.map(String.init) ?? ""
        #expect(lastFrame.contains("100% step 79/79") && lastFrame.hasSuffix("\u{1B}[K\n"), "\(lastFrame.debugDescription)")
    }

    @Test func closingLineSaysWhetherTheRunFinished() {
        let eval = MetricRecord(step: 400, epoch: 5, testLoss: 0.4, testAcc: 0.8612)
        var summary = RunSummary(name: "mlp", status: .completed, step: 790, stepsTotal: 790,
                                 final: MetricRecord(step: 790, epoch: 10, testLoss: 0.3, testAcc: 0.8811), best: eval,
                                 wallS: 12.5, trainSamplesPerS: 6400)
        let completed = ProgressReporter.describe(summary)
        #expect(completed == "completed: mlp, step 790/790, final test accuracy 0.8811 (best test accuracy 0.8612 at epoch 5), 12.5 s, 6400 samples/s")
        summary.status = .preempted
        summary.reason = "SIGTERM at step 512"
        summary.step = 512
        summary.final = eval
        let preempted = ProgressReporter.describe(summary)
        #expect(preempted.hasPrefix("preempted: mlp, stopped at step 512/790 (SIGTERM at step 512); last evaluation at step 400 (epoch 5.00): test accuracy 0.8612"), "\(preempted)")
        #expect(!preempted.contains("final"))
        summary.final = nil
        summary.best = nil
        #expect(ProgressReporter.describe(summary).contains("; not evaluated yet"))
    }
}
