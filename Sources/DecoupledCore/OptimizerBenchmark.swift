import Foundation

/// Times whole optimizer steps through the engine (registry → plan → `UpdateEngine.apply`), so
/// optimizers on any path (fused kernels, the generic element-wise path of a plugin's
/// `ElementwiseOptimizer`, whole-tensor `TensorOptimizer`s) can be compared with the fused
/// Adam kernel in the same run. Every optimizer gets decoupled weight decay
/// (λ = 1e-2, lr-scaled) under the first convention that models it.
///
/// Each optimizer is also measured against an in-place bandwidth probe with its own traffic
/// (`KernelPath.probe` with scale 0: read w, g and every element state, write w and the states) on
/// the engine's own arrays, pieces and workers, the probe and the step timed in alternation
/// so both see the same machine load.
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
        /// probeNsPerParameter / nsPerParameter: the fraction of the probe's speed the step reaches.
        public let fractionOfProbe: Double?
    }

    public var registry: PluginRegistry
    public var kernel: KernelPath
    public var minSeconds: Double = 0.5
    public var repetitions = 5

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
            return Result(optimizer: name, parameters: parameters, workers: workers,
                          nsPerParameter: t.stepSeconds / Double(parameters) * 1e9, relativeToAdam: t.stepSeconds / adam,
                          bytesPerParameter: t.bytesPerParameter, probeNsPerParameter: t.probeSeconds.map { $0 / Double(parameters) * 1e9 },
                          fractionOfProbe: t.probeSeconds.map { $0 / t.stepSeconds })
        }
    }

    /// Median seconds of one engine step and of the same-traffic probe.
    struct Timing {
        var stepSeconds: Double
        var probeSeconds: Double?
        var bytesPerParameter: Int?
    }

    /// Times engine steps of optimizer `name` and its probe in alternation, `repetitions`
    /// rounds of one sample each; medians of each.
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
        timer.minSeconds = minSeconds / Double(repetitions)
        timer.repetitions = 1
        var steps: [Double] = [], probes: [Double] = []
        for _ in 0..<repetitions {
            if let probe { probes.append(timer.time(1, probe)) }
            steps.append(timer.time(1) { engine.apply() })
        }
        func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }
        return Timing(stepSeconds: median(steps), probeSeconds: probe == nil ? nil : median(probes),
                      bytesPerParameter: probe == nil ? nil : 4 * (3 + 2 * states.count))
    }
}
