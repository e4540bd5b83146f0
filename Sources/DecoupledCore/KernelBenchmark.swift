import Foundation

/// Measures the fused update kernels against in-place bandwidth probes run on the same arrays
/// in the same process, so the ratio says how close an optimizer step gets to the memory
/// limit, and optionally against a reference implementation (PyTorch's fused optimizers, a
/// process kept alive beside us). Many short rounds: in each, a case's probe, our step and the
/// reference's step are timed next to each other, so each round's ratios compare
/// measurements taken under the same machine state; the ratios' median over rounds comes
/// with a distribution-free 95 % interval (`MedianInterval`) and targets are judged on it
/// (`TargetCheck`).
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
        /// Traffic actually moved per second, from `bytesPerParameter` and `nsPerParameter`.
        public let gbPerSecond: Double
        /// The traffic of this case's own probe (= the case's `bytesPerParameter`).
        public let probeBytesPerParameter: Int
        /// That probe's GB/s on the same arrays and workers, from its median time over the rounds.
        public let probeGBPerSecond: Double
        /// Median over rounds of (probe time / our time) in the same round: our GB/s over the probe's.
        public let ratioToProbe: Double
        /// `ratioToProbe` with its 95 % interval.
        public let ratioToProbeInterval: MedianInterval
        /// The reference's (PyTorch's) ns/param, median over the rounds; nil without one.
        public let referenceNsPerParameter: Double?
        /// Median over rounds of (reference time / our time) in the same round: above 1 we are
        /// faster. nil without a reference.
        public let speedupOverReference: Double?
        /// `speedupOverReference` with its 95 % interval.
        public let speedupInterval: MedianInterval?
        /// The speed-up issue 15 asks of this case, judged on the interval; nil without a
        /// reference or a target.
        public let speedupTarget: TargetCheck?
    }

    /// Someone else's implementation (PyTorch's fused optimizers), kept running for all rounds
    /// of one size and worker count and asked for one timed measurement at a time.
    public protocol Reference: AnyObject {
        /// Seconds per step of `c`, over steps run back to back for at least `seconds`.
        func secondsPerStep(_ c: Case, forAtLeast seconds: Double) throws -> Double
        /// Ends the reference (called once its rounds are done).
        func finish() throws
    }

    /// Starts a reference for `parameters` elements on `workers` threads for `cases`, warmed up.
    public typealias ReferenceFactory = (_ parameters: Int, _ workers: Int, _ cases: [Case]) throws -> Reference

    /// The speed-up over PyTorch's fused optimizer each case should reach (issue 15: AdamW
    /// ≥ 1.1×, SGD with and without momentum ≥ 1.0×); cases without one are only reported.
    public static let speedupTargets: [Case: Double] = [.adamw: 1.1, .sgd: 1.0, .momentum: 1.0, .nesterov: 1.0]

    public var kernel: KernelPath
    /// Timed seconds per measurement: steps run back to back until this much time has passed.
    public var minSeconds = KernelBenchmark.defaultSeconds
    /// Rounds per size and worker count: in each, every case's probe, our step and the
    /// reference's step are measured next to each other.
    public var rounds = KernelBenchmark.defaultRounds

    /// Short measurements, many rounds: a round's measurements share the machine's state, and
    /// 21 rounds give the median an interval from the 6th to the 16th value (97.3 % coverage).
    public static let defaultRounds = 21
    public static let defaultSeconds = 0.05

    public init(kernel: KernelPath) { self.kernel = kernel }

    /// The measurements of one round for one case, in time order: ours in the middle, so both
    /// ratios compare adjacent measurements, and the order reversed every other round so that
    /// neither side always goes first (after the other side's threads have just gone idle).
    enum Side { case probe, ours, reference }
    static func order(round: Int, withReference: Bool) -> [Side] {
        let forward: [Side] = withReference ? [.probe, .ours, .reference] : [.probe, .ours]
        return round % 2 == 0 ? forward : forward.reversed()
    }

    /// Times every case at one size on `workers` threads for `rounds` rounds, each round
    /// measuring, per case, the probe of its traffic, our step and (with `reference`) the
    /// reference's step next to each other; ratios are taken within a round, then summarised
    /// over rounds by their median and its 95 % interval.
    public func run(parameters: Int, workers: Int, cases: [Case], reference makeReference: ReferenceFactory? = nil) throws -> [Result] {
        let arena = try ParameterArena(specs: [TensorSpec(name: "w", shape: [parameters], role: .weight)])
        let sharder = Sharder(arena: arena, workers: workers)
        let w = arena.params.base, g = arena.grads.base
        let states = ["m", "v", "vmax"].map { arena.slot($0).base }
        var step = 0
        fillRandom(arena)
        let probe = { (stateCount: Int) in
            sharder.forEachPiece { p in
                withUnsafeTemporaryAllocation(of: UnsafeMutablePointer<Float>?.self, capacity: stateCount) { piece in
                    for j in 0..<stateCount { piece[j] = states[j] + p.offset }
                    // Scale 0: the probe's bytes without disturbing the optimizer's arrays.
                    kernel.probe(scale: 0, w + p.offset, g + p.offset, UnsafeBufferPointer(piece), p.count)
                }
            }
        }
        let ours = { (c: Case) in
            step += 1
            _ = sharder.run { p in self.step(c, step: step, w + p.offset, g + p.offset, states[0] + p.offset,
                                             states[1] + p.offset, states[2] + p.offset, p.count) }
        }
        // Warm-up: page faults, the thread pool, each path once.
        for c in cases { probe(c.stateArrays); ours(c) }
        let reference = try makeReference?(parameters, sharder.workers, cases)
        var probeSeconds: [Case: [Double]] = [:], ourSeconds: [Case: [Double]] = [:], referenceSeconds: [Case: [Double]] = [:]
        for round in 0..<max(1, rounds) {
            for c in cases {
                for side in Self.order(round: round, withReference: reference != nil) {
                    switch side {
                    case .probe: probeSeconds[c, default: []].append(secondsPerCall { probe(c.stateArrays) })
                    case .ours: ourSeconds[c, default: []].append(secondsPerCall { ours(c) })
                    case .reference: referenceSeconds[c, default: []].append(try reference!.secondsPerStep(c, forAtLeast: minSeconds))
                    }
                }
            }
        }
        try reference?.finish()
        return cases.map { c in
            let mine = ourSeconds[c]!, probes = probeSeconds[c]!
            let seconds = MedianInterval(mine).median
            let bytes = Double(c.bytesPerParameter * parameters)
            let toProbe = MedianInterval(zip(probes, mine).map { $0 / $1 })
            let theirs = referenceSeconds[c].map { MedianInterval($0).median }
            let speedup = referenceSeconds[c].map { MedianInterval(zip($0, mine).map { $0 / $1 }) }
            return Result(kernel: kernel.name, optimizer: c.rawValue, parameters: parameters, workers: sharder.workers,
                          rounds: mine.count, nsPerParameter: seconds / Double(parameters) * 1e9, gbPerSecond: bytes / seconds / 1e9,
                          probeBytesPerParameter: c.bytesPerParameter, probeGBPerSecond: bytes / MedianInterval(probes).median / 1e9,
                          ratioToProbe: toProbe.median, ratioToProbeInterval: toProbe,
                          referenceNsPerParameter: theirs.map { $0 / Double(parameters) * 1e9 },
                          speedupOverReference: speedup?.median, speedupInterval: speedup,
                          speedupTarget: speedup.flatMap { s in Self.speedupTargets[c].map { TargetCheck(s, atLeast: $0) } })
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

    /// Seconds per call of `body`, calling it back to back until `minSeconds` have passed
    /// (`OptimizerBenchmark` times engine steps with it too). No warm-up: the callers warm up
    /// once before their rounds.
    func secondsPerCall(_ body: () throws -> Void) rethrows -> Double {
        var calls = 0
        let start = DispatchTime.now().uptimeNanoseconds
        var elapsed: UInt64 = 0
        repeat {
            try body()
            calls += 1
            elapsed = DispatchTime.now().uptimeNanoseconds - start
        } while Double(elapsed) < minSeconds * 1e9
        return Double(elapsed) / 1e9 / Double(calls)
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
