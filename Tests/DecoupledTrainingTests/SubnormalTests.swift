import COpenBLAS
import DecoupledCore
import DecoupledHDF5
@testable import DecoupledTraining
import Foundation
import Testing

/// A regularizer that changes nothing and counts, for every piece the update engine runs,
/// whether the worker flushed subnormals: it sees exactly the threads and modes of the kernels.
final class ModeProbe: RegularizerPlugin {
    let name = "mode-probe"
    let version = "1.0.0"
    let kind = PluginKind.regularizer
    let summary = "test only: counts the pieces updated with and without subnormal flushing"
    let hyperParameters: [HyperParameterSpec] = []
    private let lock = NSLock()
    private(set) var flushed = 0
    private(set) var ieee = 0

    func isDecoupled(_ hp: HyperValues) -> Bool { false }
    func fused(_ hp: HyperValues, context: StepContext) -> FusedRegularization { FusedRegularization() }
    func pass(_ hp: HyperValues, context: StepContext, arena: ParameterArena) -> PiecePass? {
        { [self] _ in
            let flushing = FloatingPointMode.current.flushesSubnormals
            lock.withLock { if flushing { flushed += 1 } else { ieee += 1 } }
            return 0
        }
    }
    func penalty(_ hp: HyperValues, sumSquares: Double, sumAbs: Double) -> Double? { nil }
    func audit(_ hp: HyperValues) -> String { "mode probe" }

    /// The built-in registry plus a fresh probe.
    static func registry() throws -> (PluginRegistry, ModeProbe) {
        let registry = PluginRegistry.builtIn(), probe = ModeProbe()
        try registry.register(probe)
        return (registry, probe)
    }
}

@Suite(.enabled(if: FloatingPointMode.canFlushSubnormals, "flushing is a no-op on this architecture"))
struct SubnormalTests {
    /// `rows`×`inner` times `inner`×`cols`, every factor `value`, on the calling thread's BLAS.
    static func sgemm(rows: Int, inner: Int, cols: Int, value: Float, into c: UnsafeMutablePointer<Float>) {
        let a = [Float](repeating: value, count: rows * inner), b = [Float](repeating: value, count: inner * cols)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(cols), Int32(inner),
                    1, a, Int32(inner), b, Int32(cols), 0, c, Int32(cols))
    }

    /// sgemm results that are subnormal (64 · 1e-40 = 6.4e-39) come out as zero on every
    /// ParallelTasks worker in flushing mode, and as they are otherwise: OpenBLAS computes on
    /// the calling thread, in its mode.
    @Test func modelWorkersAndBLASComputeInTheCallersMode() {
        BLASThreads.pin()
        let tasks = 8, rows = 4, cols = 64
        for mode in [FloatingPointMode.flushSubnormals, .ieee] {
            var out = [Float](repeating: .nan, count: tasks * rows * cols)
            out.withUnsafeMutableBufferPointer { c in
                mode.run {
                    ParallelTasks().run(count: tasks, threads: 2) { t in
                        Self.sgemm(rows: rows, inner: 64, cols: cols, value: 1e-20, into: c.baseAddress! + t * rows * cols)
                    }
                }
            }
            #expect(out.allSatisfy { mode.flushesSubnormals ? $0 == 0 : $0.isSubnormal }, "\(mode)")
        }
        // A product large enough for OpenBLAS to split over its own threads, were it allowed
        // to: those would not flush.
        var big = [Float](repeating: .nan, count: 256 * 256)
        big.withUnsafeMutableBufferPointer { c in
            FloatingPointMode.flushSubnormals.run { Self.sgemm(rows: 256, inner: 256, cols: 256, value: 1e-21, into: c.baseAddress!) }
        }
        #expect(big.allSatisfy { $0 == 0 })
        #expect(FloatingPointMode.current == .ieee)
    }

    func probedConfig(flush: Bool?, epochs: Int = 1) throws -> ExperimentConfig {
        try smallConfig(flush.map { "flush_subnormals = \($0)" } ?? "", epochs: epochs,
                        regularizer: "[[regularizers]]\nname = \"mode-probe\"")
    }

    /// Every piece of every update of a run on 2 threads computes in the configured mode
    /// (flushing by default), and the trainer's thread is handed back in IEEE mode.
    @Test(arguments: [nil, true, false])
    func trainingComputesInTheConfiguredMode(_ flush: Bool?) throws {
        let (registry, probe) = try ModeProbe.registry()
        let dir = Scratch()
        let session = try TrainingSession(config: try probedConfig(flush: flush), registry: registry, kernels: .best, threads: 2)
        #expect(session.floatingPointMode.flushesSubnormals == (flush ?? true))
        let summary = try Trainer(session: session, runDirectory: dir.path, resume: false, progress: ProgressReporter(quiet: true)).run()
        #expect(summary.status == .completed)
        #expect(flush == false ? probe.ieee > 0 && probe.flushed == 0 : probe.flushed > 0 && probe.ieee == 0,
                "\(probe.flushed) pieces flushed, \(probe.ieee) in IEEE mode")
        #expect(FloatingPointMode.current == .ieee)
    }

    /// Adam with strong coupled L2, flushing: still bit-identical on 1 and 2 threads.
    @Test func strongCoupledL2WithFlushingIsBitIdenticalAcrossThreadCounts() throws {
        let l2 = try smallConfig(regularizer: "[[regularizers]]\nname = \"l2\"\nlambda = 1e-2")
        let config = try ExperimentConfig.parse(l2.resolvedText, file: "l2.toml", overrides: [
            try ConfigOverride("optimizer.name=\"adam\""), try ConfigOverride("optimizer.weight_decay=0")])
        #expect(config.train.flushSubnormals && config.optimization.optimizer.name == "adam")
        var runs: [([UInt32], [MetricRecord])] = []
        for threads in [1, 2] {
            let dir = Scratch()
            let session = try TrainingSession(config: config, registry: .builtIn(), kernels: .best, threads: threads)
            try Trainer(session: session, runDirectory: dir.path, resume: false, progress: ProgressReporter(quiet: true)).run()
            runs.append((parameterBits(session), try recordsWithoutTimings(dir.file("metrics.jsonl"))))
        }
        #expect(runs[0].0 == runs[1].0)
        #expect(runs[0].1 == runs[1].1)
    }

    /// Replay keeps IEEE arithmetic (bit-exact comparisons with other frameworks) unless the
    /// spec sets flush_subnormals = true.
    @Test(arguments: [nil, true, false])
    func replayIsIEEEUnlessTheSpecOptsIn(_ flush: Bool?) throws {
        let input = repositoryRoot + "/Tests/DecoupledTrainingTests/Fixtures/reference/torch-adam-l2-const.h5"
        let fixture = try H5File(input)
        let spec = try fixture.stringAttribute("spec")
        try fixture.close()
        let (registry, probe) = try ModeProbe.registry()
        let scratch = Scratch()
        let text = (flush.map { "flush_subnormals = \($0)\n" } ?? "") + spec + "\n[[regularizers]]\nname = \"mode-probe\"\n"
        let result = try Replay(registry: registry, kernels: .best, workers: 2)
            .run(specText: text, specFile: "spec.toml", input: input, output: scratch.file("out.h5"))
        #expect(result.steps > 0)
        #expect(flush == true ? probe.ieee == 0 && probe.flushed > 0 : probe.flushed == 0 && probe.ieee > 0,
                "\(probe.flushed) pieces flushed, \(probe.ieee) in IEEE mode")
    }

    @Test func replayRejectsANonBooleanFlushSetting() throws {
        let e = try #require(throws: ConfigError.self) {
            try Replay(registry: .builtIn(), kernels: .best)
                .run(specText: "flush_subnormals = \"yes\"\n[optimizer]\nname = \"sgd\"\n", specFile: "spec.toml",
                     input: "/nonexistent.h5", output: "/nonexistent-out.h5")
        }
        #expect(e.key == "flush_subnormals" && e.description.contains("expected true or false"), "\(e)")
    }
}
