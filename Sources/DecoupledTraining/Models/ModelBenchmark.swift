import DecoupledCore
import DecoupledRandom
import Dispatch

/// Forward + backward throughput of a model on synthetic data (no optimizer step).
public enum ModelBenchmark {
    public struct Result: Sendable {
        /// Samples per second from the mean step time.
        public var samplesPerSecond: Double
        /// Samples per second from the median step time (robust on a shared machine).
        public var medianSamplesPerSecond: Double
        /// Timed steps (after warm-up).
        public var steps: Int
        public var batch: Int
        public var threads: Int
    }

    /// Runs `lossAndGradients` on one fixed synthetic batch until at least `seconds` have
    /// passed (and at least 10 steps), after `warmup` untimed steps.
    public static func run(model: Model, batch: Int, threads: Int, seconds: Double = 1.0,
                           warmup: Int = 5, seed: UInt64 = 0) -> Result {
        precondition(batch > 0)
        var rng = Xoshiro256(seed: seed, stream: "benchmark")
        let specs = model.parameterSpecs
        let params = specs.map { UnsafeMutablePointer<Float>.allocate(capacity: $0.count) }
        let grads = specs.map { UnsafeMutablePointer<Float>.allocate(capacity: $0.count) }
        defer {
            params.forEach { $0.deallocate() }
            grads.forEach { $0.deallocate() }
        }
        model.initialize(params: params, rng: &rng)
        let x = UnsafeMutablePointer<Float>.allocate(capacity: batch * model.inputCount)
        defer { x.deallocate() }
        for i in 0..<(batch * model.inputCount) { x[i] = Float(rng.nextDouble()) }
        let labels = UnsafeMutablePointer<Int32>.allocate(capacity: batch)
        defer { labels.deallocate() }
        for i in 0..<batch { labels[i] = Int32(rng.nextInt(below: model.outputCount)) }
        let values = UnsafeMutablePointer<Float>.allocate(capacity: batch * model.outputCount)
        defer { values.deallocate() }
        for i in 0..<(batch * model.outputCount) { values[i] = rng.nextDouble() < 0.5 ? 0 : 1 }
        let targets: Targets = model.loss == .crossEntropy ? .labels(labels) : .values(values)
        let constParams = params.map { UnsafePointer($0) }

        for _ in 0..<warmup {
            _ = model.lossAndGradients(x: x, targets: targets, batch: batch, params: constParams,
                                       grads: grads, threads: threads)
        }
        var times: [UInt64] = []
        times.reserveCapacity(4096)
        let start = DispatchTime.now().uptimeNanoseconds
        var now = start
        while times.count < 10 || Double(now - start) < seconds * 1e9 {
            let t0 = now
            _ = model.lossAndGradients(x: x, targets: targets, batch: batch, params: constParams,
                                       grads: grads, threads: threads)
            now = DispatchTime.now().uptimeNanoseconds
            times.append(now - t0)
        }
        let total = Double(now - start) * 1e-9
        times.sort()
        let median = Double(times[times.count / 2]) * 1e-9
        return Result(samplesPerSecond: Double(batch * times.count) / total,
                      medianSamplesPerSecond: Double(batch) / median,
                      steps: times.count, batch: batch, threads: threads)
    }

    /// Forward + backward samples per second (mean over the timed steps).
    public static func samplesPerSecond(model: Model, batch: Int, threads: Int, seconds: Double = 1.0) -> Double {
        run(model: model, batch: batch, threads: threads, seconds: seconds).samplesPerSecond
    }
}
