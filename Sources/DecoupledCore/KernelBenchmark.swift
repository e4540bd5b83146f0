import Foundation

/// Measures the fused update kernels against in-place bandwidth probes run on the same arrays
/// in the same process, so the ratio says how close an optimizer step gets to the memory
/// limit, and optionally against a reference implementation (PyTorch's fused optimizers)
/// timed in alternation with ours, round by round, so both see the same machine state.
public struct KernelBenchmark {
    /// An optimizer configuration the benchmark times, with the bytes it must move per parameter.
    public enum Case: String, CaseIterable, Codable, Sendable {
        case sgd, momentum, nesterov, adam, adamw, amsgrad

        /// Bytes of memory traffic per parameter: every array read once, every state written once.
        public var bytesPerParameter: Int { 12 + 8 * stateArrays }

        /// State arrays besides w and g: the momentum buffer; m and v; m, v and v̂max.
        public var stateArrays: Int {
            switch self {
            case .sgd: return 0                  // read w, g; write w
            case .momentum, .nesterov: return 1  // + read/write buf
            case .adam, .adamw: return 2         // + read/write m, v
            case .amsgrad: return 3              // + read/write v̂max
            }
        }
    }

    public struct Result: Codable, Sendable {
        public let kernel: String
        public let optimizer: String
        public let parameters: Int
        public let workers: Int
        /// Rounds measured; every time below is the median over them.
        public let rounds: Int
        public let nsPerParameter: Double
        /// Traffic actually moved per second, from `bytesPerParameter`.
        public let gbPerSecond: Double
        /// The traffic of this case's own probe (= the case's `bytesPerParameter`).
        public let probeBytesPerParameter: Int
        /// That probe's GB/s on the same arrays and workers, measured in the same rounds.
        public let probeGBPerSecond: Double
        /// gbPerSecond / probeGBPerSecond.
        public let ratioToProbe: Double
        /// The reference's (PyTorch's) ns/param in the same rounds; nil without one.
        public let referenceNsPerParameter: Double?
        /// Reference time / our time: above 1 we are faster. nil without a reference.
        public let speedupOverReference: Double?
    }

    /// Seconds per step of each case on `parameters` elements and `workers` threads, measured
    /// by someone else (PyTorch) right after our round.
    public typealias Reference = (_ parameters: Int, _ workers: Int, _ cases: [Case]) throws -> [Case: Double]

    public var kernel: KernelPath
    /// Timed seconds per measurement, split over `repetitions` samples.
    public var minSeconds: Double = 0.25
    public var repetitions = 5
    /// Rounds per size and worker count: probes, our cases, then the reference, each round.
    public var rounds = 3

    public init(kernel: KernelPath) { self.kernel = kernel }

    /// Times every case at one size on `workers` threads, `rounds` times: each round times the
    /// probes of the traffics the cases need, then every case, then calls `reference`.
    public func run(parameters: Int, workers: Int, cases: [Case], reference: Reference? = nil) throws -> [Result] {
        let arena = try ParameterArena(specs: [TensorSpec(name: "w", shape: [parameters], role: .weight)])
        let sharder = Sharder(arena: arena, workers: workers)
        let w = arena.params.base, g = arena.grads.base
        let states = ["m", "v", "vmax"].map { arena.slot($0).base }
        let probeStateCounts = Set(cases.map(\.stateArrays)).sorted()
        var probeSeconds: [Int: [Double]] = [:], ourSeconds: [Case: [Double]] = [:], referenceSeconds: [Case: [Double]] = [:]
        var step = 0
        fillRandom(arena)
        for _ in 0..<max(1, rounds) {
            for k in probeStateCounts {
                probeSeconds[k, default: []].append(time(sharder.chunkCount) {
                    sharder.forEachPiece { p in
                        withUnsafeTemporaryAllocation(of: UnsafeMutablePointer<Float>?.self, capacity: k) { piece in
                            for j in 0..<k { piece[j] = states[j] + p.offset }
                            kernel.probe(w + p.offset, g + p.offset, UnsafeBufferPointer(piece), p.count)
                        }
                    }
                })
            }
            // Bring w and the states back to a realistic range after the probes' additions.
            fillRandom(arena)
            for c in cases {
                ourSeconds[c, default: []].append(time(sharder.chunkCount) {
                    step += 1
                    _ = sharder.run { p in self.step(c, step: step, w + p.offset, g + p.offset, states[0] + p.offset,
                                                     states[1] + p.offset, states[2] + p.offset, p.count) }
                })
            }
            if let reference {
                let theirs = try reference(parameters, sharder.workers, cases)
                for c in cases { if let t = theirs[c] { referenceSeconds[c, default: []].append(t) } }
            }
        }
        return cases.map { c in
            let seconds = median(ourSeconds[c]!)
            let gbs = Double(c.bytesPerParameter * parameters) / seconds / 1e9
            let probeGBs = Double(c.bytesPerParameter * parameters) / median(probeSeconds[c.stateArrays]!) / 1e9
            let theirs = referenceSeconds[c].map(median)
            return Result(kernel: kernel.name, optimizer: c.rawValue, parameters: parameters, workers: sharder.workers,
                          rounds: max(1, rounds), nsPerParameter: seconds / Double(parameters) * 1e9, gbPerSecond: gbs,
                          probeBytesPerParameter: c.bytesPerParameter, probeGBPerSecond: probeGBs, ratioToProbe: gbs / probeGBs,
                          referenceNsPerParameter: theirs.map { $0 / Double(parameters) * 1e9 },
                          speedupOverReference: theirs.map { $0 / seconds })
        }
    }

    private func step(_ c: Case, step: Int, _ w: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>,
                      _ m: UnsafeMutablePointer<Float>, _ v: UnsafeMutablePointer<Float>,
                      _ vmax: UnsafeMutablePointer<Float>, _ n: Int) -> StepStatistics {
        // The hyperparameters scripts/bench/torch_kernels.py gives PyTorch's optimizers.
        let reg = FusedRegularization(l2: c == .adam ? 1e-4 : 0, decay: c == .adamw ? 1e-3 * 1e-2 : 0)
        switch c {
        case .sgd, .momentum, .nesterov:
            let hp = SGDKernelParameters(lr: 1e-3, momentum: c == .sgd ? 0 : 0.9, nesterov: c == .nesterov,
                                         regularization: FusedRegularization(l2: 1e-4))
            return kernel.sgd(hp, w, g, c == .sgd ? nil : m, n)
        case .adam, .adamw, .amsgrad:
            let hp = AdamKernelParameters(lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, amsgrad: c == .amsgrad,
                                          step: step, regularization: reg)
            return kernel.adam(hp, w, g, m, v, c == .amsgrad ? vmax : nil, n)
        }
    }

    private func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }

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
        return median(perCall)
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
