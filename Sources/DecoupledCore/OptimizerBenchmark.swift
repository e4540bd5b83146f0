import Foundation

/// Times whole optimizer steps through the engine (registry → plan → `UpdateEngine.apply`), so
/// optimizers on any path (fused kernels, the generic element-wise path of a plugin's
/// `ElementwiseOptimizer`, whole-tensor `TensorOptimizer`s) can be compared with the fused
/// Adam kernel in the same run. Every optimizer gets decoupled weight decay
/// (λ = 1e-2, lr-scaled) under the first convention that models it.
///
/// Each optimizer is also measured against an in-place bandwidth probe with its own traffic
/// (`KernelPath.probe` with scale 0: read w, g and every element state, write w and the states) on
/// the engine's own arrays, pieces and workers: `rounds` rounds of the probe and the step next
/// to each other (their order reversed every other round), the per-round ratio summarised by
/// its median and 95 % interval (`MedianInterval`), as `KernelBenchmark` does.
public struct OptimizerBenchmark {
    public struct Result: Codable, Sendable {
        public let optimizer: String
        public let parameters: Int
        public let workers: Int
        public let nsPerParameter: Double
        /// nsPerParameter / that of `adam` (the fused kernel) at the same size and workers.
        public let relativeToAdam: Double
        /// Memory traffic of one step per parameter: 4 bytes × (read w, g, each element state;
        /// write w, each state). Nil for more than three element states (no probe for them).
        public let bytesPerParameter: Int?
        /// The in-place probe's ns per parameter with that traffic, timed in the same rounds.
        public let probeNsPerParameter: Double?
        /// Median over rounds of (probe time / step time) in the same round: the fraction of the
        /// probe's speed the step reaches.
        public let fractionOfProbe: Double?
        /// `fractionOfProbe` with its 95 % interval.
        public let fractionOfProbeInterval: MedianInterval?
        /// The fused family kernels' target (≥ 0.90 of the probe), judged on the interval; nil
        /// for optimizers without that target.
        public let probeTarget: TargetCheck?
    }

    /// The kernels issue 15 added for the torch.optim family (kernels_family_simd.h) and the
    /// fraction of their probe each should reach.
    public static let familyKernels: Set<String> = ["adagrad", "rmsprop", "adadelta", "adamax", "nadam", "radam"]
    public static let familyProbeTarget = 0.9

    public var registry: PluginRegistry
    public var kernel: KernelPath
    /// Timed seconds per measurement (steps or probes back to back until this much time has passed).
    public var minSeconds = KernelBenchmark.defaultSeconds
    /// Rounds of probe and step per optimizer.
    public var rounds = KernelBenchmark.defaultRounds

    public init(registry: PluginRegistry, kernel: KernelPath) {
        self.registry = registry
        self.kernel = kernel
    }

    /// Times `adam` and then each of `optimizers` at one size on `workers` threads.
    public func run(parameters: Int, workers: Int, optimizers: [String]) throws -> [Result] {
        let names = ["adam"] + optimizers.filter { $0 != "adam" }
        var timings: [String: Timing] = [:]
        for name in names { timings[name] = try time(name, parameters: parameters, workers: workers) }
        let adam = timings["adam"]!.stepSeconds
        return names.filter { optimizers.contains($0) || $0 == "adam" }.map { name in
            let t = timings[name]!
            let base = registry.alias(named: name)?.base ?? name
            return Result(optimizer: name, parameters: parameters, workers: workers,
                          nsPerParameter: t.stepSeconds / Double(parameters) * 1e9, relativeToAdam: t.stepSeconds / adam,
                          bytesPerParameter: t.bytesPerParameter, probeNsPerParameter: t.probeSeconds.map { $0 / Double(parameters) * 1e9 },
                          fractionOfProbe: t.fractionOfProbe?.median, fractionOfProbeInterval: t.fractionOfProbe,
                          probeTarget: Self.familyKernels.contains(base)
                            ? t.fractionOfProbe.map { TargetCheck($0, atLeast: Self.familyProbeTarget) } : nil)
        }
    }

    /// Median seconds of one engine step and of the same-traffic probe, and their per-round ratio.
    struct Timing {
        var stepSeconds: Double
        var probeSeconds: Double?
        var fractionOfProbe: MedianInterval?
        var bytesPerParameter: Int?
    }

    /// Times engine steps of optimizer `name` and its probe next to each other, `rounds`
    /// rounds of one measurement each, the order reversed every other round.
    func time(_ name: String, parameters: Int, workers: Int) throws -> Timing {
        let base = registry.alias(named: name)?.base ?? name
        let convention = Convention.modelling(base).first ?? .pytorch
        let spec = OptimizationSpec(convention: convention, optimizer: PluginSpec(name: name, params: ["lr": .number(1e-3)], key: "optimizer"),
                                    regularizers: [PluginSpec(name: "weight_decay", params: ["lambda": .number(1e-2)], key: "regularizers[0]")],
                                    schedule: ScheduleSpec(unit: .step), decayBias: true)
        let tensors = [TensorSpec(name: "w", shape: [parameters], role: .weight)]
        let arena = try ParameterArena(specs: tensors)
        let engine = try UpdateEngine(plan: try UpdatePlan(spec, registry: registry, tensors: tensors), arena: arena,
                                      kernels: kernel, workers: workers)
        var s: UInt32 = 12345
        let w = arena.params.base, g = arena.grads.base
        for i in 0..<parameters {
            s = s &* 1_664_525 &+ 1_013_904_223
            w[i] = Float(s >> 8) / Float(1 << 24) - 0.5
            g[i] = w[i] * 1e-2
        }
        let states = engine.plan.stateDeclarations.filter { $0.layout == .element }.map { arena.slot($0.name).base }
        let kernel = self.kernel
        // Scale 0: the probe moves the step's bytes but leaves weights and state as they were.
        let probe: (() -> Void)? = states.count > KernelPath.probeMaxStates ? nil : {
            engine.sharder.forEachPiece { p in
                let piece = states.map { Optional($0 + p.offset) }
                piece.withUnsafeBufferPointer { kernel.probe(scale: 0, w + p.offset, g + p.offset, $0, p.count) }
            }
        }
        var timer = KernelBenchmark(kernel: kernel)
        timer.minSeconds = minSeconds
        // Warm-up: page faults, the thread pool, lazily built state.
        probe?()
        engine.apply()
        var steps: [Double] = [], probes: [Double] = []
        for round in 0..<max(1, rounds) {
            for side in KernelBenchmark.order(round: round, withReference: false) {
                switch side {
                case .probe: if let probe { probes.append(timer.secondsPerCall(probe)) }
                case .ours: steps.append(timer.secondsPerCall { engine.apply() })
                case .reference: break
                }
            }
        }
        return Timing(stepSeconds: MedianInterval(steps).median, probeSeconds: probe == nil ? nil : MedianInterval(probes).median,
                      fractionOfProbe: probe == nil ? nil : MedianInterval(zip(probes, steps).map { $0 / $1 }),
                      bytesPerParameter: probe == nil ? nil : 4 * (3 + 2 * states.count))
    }
}
