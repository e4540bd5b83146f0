import DecoupledCore
import Foundation

/// Training throughput: whole steps (minibatch from HDF5, forward, backward, fused update)
/// of a config's model on its data, in samples per second.
public enum TrainingBenchmark {
    public struct Result: Codable, Sendable {
        public var threads: Int
        public var batch: Int
        public var steps: Int
        public var samplesPerSecond: Double
        /// From the median step time (robust on a shared machine).
        public var medianSamplesPerSecond: Double
    }

    /// Runs `warmup` untimed steps, then steps until `seconds` have passed (at least 20).
    public static func run(config: ExperimentConfig, registry: PluginRegistry, kernels: KernelPath, threads: Int,
                           seconds: Double = 3, warmup: Int = 20) throws -> Result {
        let session = try TrainingSession(config: config, registry: registry, kernels: kernels, threads: threads)
        for _ in 0..<warmup { _ = try session.trainStep() }
        var times: [UInt64] = []
        var samples = 0
        let start = DispatchTime.now().uptimeNanoseconds
        var now = start
        while times.count < 20 || Double(now - start) < seconds * 1e9 {
            let t0 = now
            let outcome = try session.trainStep()
            samples += outcome.result.count
            now = DispatchTime.now().uptimeNanoseconds
            times.append(now - t0)
        }
        times.sort()
        return Result(threads: session.threads, batch: config.data.batchSize, steps: times.count,
                      samplesPerSecond: Double(samples) / (Double(now - start) * 1e-9),
                      medianSamplesPerSecond: Double(config.data.batchSize) / (Double(times[times.count / 2]) * 1e-9))
    }
}
