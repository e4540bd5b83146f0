import COpenBLAS
import DecoupledCore
import DecoupledHDF5
@testable import DecoupledTraining
import Foundation
import Testing

/// 1e-20², subnormal, multiplied at run time (in the thread's mode) where the optimizer
/// cannot see the factors.
@inline(never) func subnormalProduct() -> Float { tinyFactor * tinyFactor }
nonisolated(unsafe) var tinyFactor: Float = 1e-20

/// Holds work items back until `threads` distinct threads have taken some (or, once, for at
/// most 30 s from the first arrival), so that work really reaches Dispatch's own threads: on
/// a loaded machine the calling thread would otherwise often do all of it, and a worker that
/// ignores the mode would go unnoticed. The 30 s count from the first arrival, not from the
/// rendezvous's creation (a test may build a whole training session in between), and are
/// generous because parallel tests can keep every Dispatch worker busy for seconds.
final class Rendezvous: @unchecked Sendable {
    private let lock = NSLock()
    private var seen = Set<UInt>()
    private var deadline: Date?
    let threads: Int
    init(threads: Int) { self.threads = threads }
    var arrived: Int { lock.withLock { seen.count } }

    func arrive() {
        let me = UInt(pthread_self())
        let until = lock.withLock { () -> Date in
            _ = seen.insert(me)
            if deadline == nil { deadline = Date().addingTimeInterval(30) }
            return deadline!
        }
        while arrived < threads && Date() < until { usleep(50) }
    }
}

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
    /// Makes the first update spread over this many threads, when given.
    let rendezvous: Rendezvous?
    init(threads: Int? = nil) { rendezvous = threads.map(Rendezvous.init) }

    func isDecoupled(_ hp: HyperValues) -> Bool { false }
    func fused(_ hp: HyperValues, context: StepContext) -> FusedRegularization { FusedRegularization() }
    func pass(_ hp: HyperValues, context: StepContext, arena: ParameterArena) -> PiecePass? {
        { [self] _ in
            rendezvous?.arrive()
            let flushing = FloatingPointMode.current.flushesSubnormals
            lock.withLock { if flushing { flushed += 1 } else { ieee += 1 } }
            return 0
        }
    }
    func penalty(_ hp: HyperValues, sumSquares: Double, sumAbs: Double) -> Double? { nil }
    func audit(_ hp: HyperValues) -> String { "mode probe" }

    /// The built-in registry plus a fresh probe.
    static func registry(threads: Int? = nil) throws -> (PluginRegistry, ModeProbe) {
        let registry = PluginRegistry.builtIn(), probe = ModeProbe(threads: threads)
        try registry.register(probe)
        return (registry, probe)
    }
}

/// Serialized: each rendezvous holds a Dispatch pool thread while it waits for a second one, and
/// the pool is as wide as the cores (2 in CI), so cases run side by side starved each other of
/// the second thread until the rendezvous timed out (seen under full-suite load).
@Suite(.serialized, .enabled(if: FloatingPointMode.canFlushSubnormals, "flushing is a no-op on this architecture"))
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
            let rendezvous = Rendezvous(threads: 2)
            out.withUnsafeMutableBufferPointer { c in
                mode.run {
                    ParallelTasks().run(count: tasks, threads: 2) { t in
                        rendezvous.arrive()
                        Self.sgemm(rows: rows, inner: 64, cols: cols, value: 1e-20, into: c.baseAddress! + t * rows * cols)
                    }
                }
            }
            #expect(rendezvous.arrived == 2, "the tasks ran on one thread only")
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

    /// Runs one multiply per piece on `workers` sharder threads, in `mode`; returns whether
    /// each piece's product came out as zero.
    func productsAreZero(mode: FloatingPointMode, workers: Int) throws -> [Bool] {
        let arena = try ParameterArena(specs: [TensorSpec(name: "w", shape: [64 * 1024], role: .weight)])
        let sharder = Sharder(arena: arena, chunkElements: 1024, workers: workers)
        let rendezvous = Rendezvous(threads: min(workers, 2))
        var zero = [Bool](repeating: false, count: sharder.pieces.count)
        zero.withUnsafeMutableBufferPointer { out in
            mode.run {
                sharder.forEachPiece { p in
                    rendezvous.arrive()
                    out[p.index] = subnormalProduct() == 0
                }
            }
        }
        #expect(rendezvous.arrived == min(workers, 2), "\(workers) workers ran on \(rendezvous.arrived) thread(s)")
        return zero
    }

    @Test func sharderWorkersComputeInTheCallersMode() throws {
        for workers in [1, 2, 4] {
            #expect(try productsAreZero(mode: .flushSubnormals, workers: workers).allSatisfy { $0 }, "\(workers) workers")
            #expect(try productsAreZero(mode: .ieee, workers: workers).allSatisfy { !$0 }, "\(workers) workers")
        }
    }

    /// Dispatch's threads are shared: after flushing work on them, plain Dispatch work from an
    /// IEEE thread (on the same pool threads) must not flush.
    @Test func dispatchThreadsAreHandedBackInTheirOwnMode() throws {
        _ = try productsAreZero(mode: .flushSubnormals, workers: 2)
        let rendezvous = Rendezvous(threads: 2)
        var flushing = [Bool](repeating: true, count: 16)
        flushing.withUnsafeMutableBufferPointer { out in
            DispatchQueue.concurrentPerform(iterations: out.count) { i in
                rendezvous.arrive()
                out[i] = FloatingPointMode.current.flushesSubnormals || subnormalProduct() == 0
            }
        }
        #expect(flushing.allSatisfy { !$0 })
    }

    func probedConfig(flush: Bool?, epochs: Int = 1) throws -> ExperimentConfig {
        try smallConfig(flush.map { "flush_subnormals = \($0)" } ?? "", epochs: epochs,
                        regularizer: "[[regularizers]]\nname = \"mode-probe\"")
    }

    /// Every piece of every update of a run on 2 threads computes in the configured mode
    /// (flushing by default), and the trainer's thread is handed back in IEEE mode.
    @Test(arguments: [nil, true, false])
    func trainingComputesInTheConfiguredMode(_ flush: Bool?) throws {
        let (registry, probe) = try ModeProbe.registry(threads: 2)
        let dir = Scratch()
        let session = try TrainingSession(config: try probedConfig(flush: flush), registry: registry, kernels: .best, threads: 2)
        #expect(session.floatingPointMode.flushesSubnormals == (flush ?? true))
        let summary = try Trainer(session: session, runDirectory: dir.path, resume: false, progress: ProgressReporter(quiet: true)).run()
        #expect(summary.status == .completed && probe.rendezvous?.arrived == 2)
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
