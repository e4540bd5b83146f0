import CDecoupledKernels
import Foundation

/// Measures the fused update kernels against a bandwidth probe run on the same arrays in the
/// same process, so the ratio says how close an optimizer step gets to the memory limit.
public struct KernelBenchmark {
    /// An optimizer configuration the benchmark times, with the bytes it must move per parameter.
    public enum Case: String, CaseIterable, Codable, Sendable {
        case sgd, momentum, nesterov, adam, adamw, amsgrad

        /// Bytes of memory traffic per parameter: every array read once, every state written once.
        public var bytesPerParameter: Int {
            switch self {
            case .sgd: return 12                  // read w, g; write w
            case .momentum, .nesterov: return 20  // + read/write buf
            case .adam, .adamw: return 28         // read w, g, m, v; write w, m, v
            case .amsgrad: return 36              // + read/write vmax
            }
        }
    }

    public struct Result: Codable, Sendable {
        public let kernel: String
        public let optimizer: String
        public let parameters: Int
        public let workers: Int
        public let nsPerParameter: Double
        /// Traffic actually moved per second, from `bytesPerParameter`.
        public let gbPerSecond: Double
        /// The probe's GB/s on the same arrays and workers, measured right before.
        public let probeGBPerSecond: Double
        /// gbPerSecond / probeGBPerSecond.
        public let ratioToProbe: Double
    }

    public var kernel: KernelPath
    public var minSeconds: Double = 0.25
    public var repetitions = 5

    public init(kernel: KernelPath) { self.kernel = kernel }

    /// Times every case at one size on `workers` threads; the probe is timed first on the same arrays.
    public func run(parameters: Int, workers: Int, cases: [Case]) throws -> [Result] {
        let arena = try ParameterArena(specs: [TensorSpec(name: "w", shape: [parameters], role: .weight)])
        let sharder = Sharder(arena: arena, workers: workers)
        fillRandom(arena)
        let w = arena.params.base, g = arena.grads.base
        let m = arena.slot("m").base, v = arena.slot("v").base, vmax = arena.slot("vmax").base

        let probeSeconds = time(sharder.chunkCount) {
            sharder.forEachPiece { p in kernel.probe(w + p.offset, g + p.offset, m + p.offset, v + p.offset, p.count) }
        }
        // Bring w/m/v back to a realistic range after the probe's additions.
        fillRandom(arena)
        let probeGBs = Double(28 * parameters) / probeSeconds / 1e9

        return cases.map { c in
            var step = 0
            let seconds = time(sharder.chunkCount) {
                step += 1
                _ = sharder.run { p in self.step(c, step: step, w + p.offset, g + p.offset,
                                                 m + p.offset, v + p.offset, vmax + p.offset, p.count) }
            }
            let gbs = Double(c.bytesPerParameter * parameters) / seconds / 1e9
            return Result(kernel: kernel.name, optimizer: c.rawValue, parameters: parameters,
                          workers: sharder.workers, nsPerParameter: seconds / Double(parameters) * 1e9,
                          gbPerSecond: gbs, probeGBPerSecond: probeGBs, ratioToProbe: gbs / probeGBs)
        }
    }

    private func step(_ c: Case, step: Int, _ w: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>,
                      _ m: UnsafeMutablePointer<Float>, _ v: UnsafeMutablePointer<Float>,
                      _ vmax: UnsafeMutablePointer<Float>, _ n: Int) -> dc_step_stats {
        let reg = dc_reg_terms(l2: c == .adam ? 1e-4 : 0, l1: 0, decay_keep: c == .adamw ? 1 - 1e-3 * 1e-2 : 1)
        switch c {
        case .sgd, .momentum, .nesterov:
            var hp = dc_sgd_params(lr: 1e-3, momentum: c == .sgd ? 0 : 0.9, dampening: 0,
                                   nesterov: c == .nesterov ? 1 : 0, first_step: 0, lr_in_momentum: 0,
                                   reg: dc_reg_terms(l2: 1e-4, l1: 0, decay_keep: 1))
            return kernel.sgd(&hp, w, g, c == .sgd ? nil : m, n)
        case .adam, .adamw, .amsgrad:
            var hp = dc_adam_params(lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, amsgrad: c == .amsgrad,
                                    step: step, reg: reg)
            return kernel.adam(&hp, w, g, m, v, c == .amsgrad ? vmax : nil, n)
        }
    }

    /// Median seconds per call of `body`, each sample long enough to be timed reliably
    /// (`OptimizerBenchmark` times engine steps with it too).
    func time(_ chunks: Int, _ body: () -> Void) -> Double {
        body()  // warm-up: page faults, thread pool start
        var perCall: [Double] = []
        for _ in 0..<repetitions {
            var calls = 0
            let start = DispatchTime.now().uptimeNanoseconds
            var elapsed: UInt64 = 0
            repeat {
                body()
                calls += 1
                elapsed = DispatchTime.now().uptimeNanoseconds - start
            } while Double(elapsed) < minSeconds / Double(repetitions) * 1e9
            perCall.append(Double(elapsed) / 1e9 / Double(calls))
        }
        return perCall.sorted()[perCall.count / 2]
    }

    private func fillRandom(_ arena: ParameterArena) {
        var s: UInt32 = 12345
        func next() -> Float {
            s = s &* 1_664_525 &+ 1_013_904_223
            return Float(s >> 8) / Float(1 << 24) - 0.5
        }
        let n = arena.capacity
        let w = arena.params.base, g = arena.grads.base
        let m = arena.slot("m").base, v = arena.slot("v").base, x = arena.slot("vmax").base
        for i in 0..<n {
            w[i] = next(); g[i] = next() * 1e-2
            m[i] = 0; v[i] = 0; x[i] = 0
        }
    }
}
