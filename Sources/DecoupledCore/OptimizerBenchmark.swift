import Foundation

/// Times whole optimizer steps through the engine (registry → plan → `UpdateEngine.apply`), so
/// optimizers on the generic element-wise and whole-tensor paths (`ElementwiseOptimizer`,
/// `TensorOptimizer`) can be compared with the fused SGD/Adam kernels in the same run. Every optimizer gets decoupled weight decay
/// (λ = 1e-2, lr-scaled) under the first convention that models it.
public struct OptimizerBenchmark {
    public struct Result: Codable, Sendable {
        public let optimizer: String
        public let parameters: Int
        public let workers: Int
        public let nsPerParameter: Double
        /// nsPerParameter / that of `adam` (the fused kernel) at the same size and workers.
        public let relativeToAdam: Double
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
        var seconds: [String: Double] = [:]
        for name in names { seconds[name] = try time(name, parameters: parameters, workers: workers) }
        return names.filter { optimizers.contains($0) || $0 == "adam" }.map { name in
            Result(optimizer: name, parameters: parameters, workers: workers,
                   nsPerParameter: seconds[name]! / Double(parameters) * 1e9, relativeToAdam: seconds[name]! / seconds["adam"]!)
        }
    }

    /// Median seconds of one engine step of optimizer `name`.
    func time(_ name: String, parameters: Int, workers: Int) throws -> Double {
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
        var timer = KernelBenchmark(kernel: kernel)
        timer.minSeconds = minSeconds
        timer.repetitions = repetitions
        return timer.time(1) { engine.apply() }
    }
}
