import DecoupledCore
import Foundation

/// What subnormal floats cost a whole training run: the same config trained with strong
/// coupled L2 and without, with subnormal flushing on and off (`train.flush_subnormals`).
/// Adam with coupled L2 drives weights and moments into the subnormal range, where IEEE
/// arithmetic is many times slower (issue 13); with flushing the L2 run should cost about
/// what the λ = 0 run does.
public enum SubnormalBenchmark {
    public struct Run: Codable, Sendable {
        public var flushSubnormals: Bool
        public var lambda: Double
        public var epochs: Int
        public var threads: Int
        /// The trainer's wall time (steps, evaluations and checkpoints).
        public var wallSeconds: Double
        public var testAccuracy: Double?
        /// Fractions of the parameters, and of the optimizer state values, that are subnormal
        /// at the end (0 with flushing: no result is ever subnormal).
        public var subnormalParameters: Double
        public var subnormalState: Double
    }

    /// Trains `configPath` for `epochs` (the schedule's t0 too) with its first regularizer's
    /// λ set to `lambda` and flushing as given, in a scratch run directory, and measures it.
    /// `overrides` are applied first.
    public static func run(configPath: String, overrides: [ConfigOverride], lambda: Double, flush: Bool, epochs: Int,
                           threads: Int?, registry: PluginRegistry, kernels: KernelPath) throws -> Run {
        let sets = try overrides + [
            ConfigOverride(key: "train.epochs", value: .number(Double(epochs), isInteger: true)),
            ConfigOverride(key: "schedule.t0", value: .number(Double(epochs), isInteger: true)),
            ConfigOverride(key: "regularizers[0].lambda", value: .number(lambda, isInteger: false)),
            ConfigOverride(key: "train.flush_subnormals", value: .bool(flush)),
        ]
        let config = try ExperimentConfig.load(path: configPath, overrides: sets)
        let directory = NSTemporaryDirectory() + "decoupled-bench-subnormals-\(getpid())-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let session = try TrainingSession(config: config, registry: registry, kernels: kernels, threads: threads)
        let trainer = try Trainer(session: session, runDirectory: directory, resume: false, progress: ProgressReporter(quiet: true))
        let summary = try trainer.run()
        guard summary.status == .completed else {
            throw TrainingError("λ = \(lambda), flush_subnormals = \(flush): the run ended \(summary.status.rawValue): \(summary.reason ?? "")")
        }
        let arena = session.arena
        func subnormalFraction(_ buffers: [AlignedBuffer]) -> Double {
            var subnormal = 0, total = 0
            for b in buffers {
                for e in arena.entries {
                    subnormal += arena.view(b, e).reduce(0) { $0 + ($1.isSubnormal ? 1 : 0) }
                    total += e.count
                }
            }
            return total > 0 ? Double(subnormal) / Double(total) : 0
        }
        return Run(flushSubnormals: flush, lambda: lambda, epochs: epochs, threads: session.threads,
                   wallSeconds: summary.wallS ?? .nan, testAccuracy: summary.final?.testAcc,  // the trainer always sets wall_s
                   subnormalParameters: subnormalFraction([arena.params]),
                   subnormalState: subnormalFraction(session.stateSlots.map { arena.slot($0) }))
    }
}
