import DecoupledCore
import Testing

/// SGD with momentum (PyTorch form) written as a Swift element-wise optimizer, importing no
/// C module: the engine adds the coupled terms, the decoupled decay and the statistics.
final class ElementwiseSGD: ElementwiseOptimizer {
    let name = "sgd_elementwise"
    let version = "1.0.0"
    let kind = PluginKind.optimizer
    let summary = "test only: SGD with momentum as one function per element"
    let hyperParameters: [HyperParameterSpec] = [
        .init("lr", .number(0...Double.infinity, openLower: true), default: .number(0.01), "lr"),
        .init("momentum", .number(0...1, openUpper: true), default: .number(0), "μ"),
    ]

    struct Coefficients { var lr, momentum: Float; var first: Bool }

    func state(_ hp: HyperValues) -> [StateDeclaration] { [StateDeclaration("sgd_elementwise.buffer")] }
    func validate(_ hp: HyperValues, keyPrefix: String) throws {
        if hp.number("momentum") == 0 { throw PluginError.invalid(key: "\(keyPrefix).momentum", message: "must be > 0 here") }
    }
    func coefficients(_ hp: HyperValues, context: StepContext) -> Coefficients {
        Coefficients(lr: Float(context.lr), momentum: Float(hp.number("momentum")), first: context.step == 1)
    }
    func direction(_ c: Coefficients, weight: Float, gradient: Float, state: ElementState) -> Float {
        let b = c.first ? gradient : c.momentum * state[0] + 1 * gradient
        state[0] = b
        return c.lr * b
    }
}

/// Plain SGD as a whole-tensor optimizer that also keeps each row's gradient norm as state.
final class TensorSGD: TensorOptimizer {
    let name = "sgd_tensor"
    let version = "1.0.0"
    let kind = PluginKind.optimizer
    let summary = "test only: SGD one tensor at a time, row norms of g as state"
    let hyperParameters: [HyperParameterSpec] = [
        .init("lr", .number(0...Double.infinity, openLower: true), default: .number(0.01), "lr"),
    ]
    func state(_ hp: HyperValues) -> [StateDeclaration] { [StateDeclaration("sgd_tensor.row_norm", layout: .rows)] }
    func coefficients(_ hp: HyperValues, context: StepContext) -> Float { Float(context.lr) }
    func direction(_ lr: Float, tensor t: TensorData, gradient g: UnsafeBufferPointer<Float>, direction d: UnsafeMutableBufferPointer<Float>) {
        for i in g.indices { d[i] = lr * g[i] }
        for r in 0..<t.info.rows { t.state[0][r] = Float(rowNorm(g[(r * t.info.rowLength)..<((r + 1) * t.info.rowLength)])) }
    }
}

/// An optimizer without `lr`: it moves each weight by η_t·sign(g), so lr_t must be η_t.
final class UnitSign: ElementwiseOptimizer {
    let name = "unit_sign"
    let version = "1.0.0"
    let kind = PluginKind.optimizer
    let summary = "test only: w ← w − η_t·sign(g), no lr"
    let hyperParameters: [HyperParameterSpec] = []
    func state(_ hp: HyperValues) -> [StateDeclaration] { [] }
    func coefficients(_ hp: HyperValues, context: StepContext) -> Float { Float(context.lr) }
    func direction(_ lr: Float, weight: Float, gradient: Float, state: ElementState) -> Float {
        lr * (gradient > 0 ? 1 : gradient < 0 ? -1 : 0)
    }
}

/// A regularizer with state that starts at 1: counts the steps each element has seen.
final class StepCounter: RegularizerPlugin {
    let name = "step_counter"
    let version = "1.0.0"
    let kind = PluginKind.regularizer
    let summary = "test only: state declared with initial value 1, incremented after each step"
    let hyperParameters: [HyperParameterSpec] = []
    func isDecoupled(_ hp: HyperValues) -> Bool { true }
    func state(_ hp: HyperValues) -> [StateDeclaration] { [StateDeclaration("step_counter.seen", initialValue: 1)] }
    func tensorPasses(_ hp: HyperValues, context: StepContext) -> [TensorPass] {
        [TensorPass(phase: .afterUpdate) { t, _ in
            for i in t.state[0].indices { t.state[0][i] += 1 }
            return -1
        }]
    }
    func penalty(_ hp: HyperValues, sumSquares: Double, sumAbs: Double) -> Double? { nil }
    func audit(_ hp: HyperValues) -> String { "counter" }
}

@Suite struct PipelineTests {
    static let tensors = [TensorSpec(name: "fc1.weight", shape: [7, 45], role: .weight),
                          TensorSpec(name: "fc1.bias", shape: [7], role: .bias),
                          TensorSpec(name: "fc2.weight", shape: [3, 7], role: .weight)]

    static func registry() throws -> PluginRegistry {
        let r = PluginRegistry.builtIn()
        try r.register(ElementwiseSGD())
        try r.register(UnitSign())
        try r.register(TensorSGD())
        try r.register(StepCounter())
        // max_norm is the external ABI v2 example (plugins/max-norm): a tensor hook in C.
        try ExternalPluginLoader.load(try ExternalPluginTests.shippedLibrary("max-norm", "libmax_norm.so"), into: r)
        return r
    }

    /// Deterministic weights and gradients (a few exact zeros among them).
    static func values(_ n: Int, _ seed: Int, scale: Float) -> [Float] {
        (0..<n).map { Float((($0 + seed) * 7919) % 211) / 105 - 1 }.map { $0 * scale }
    }

    struct Run {
        var params: [UInt32]
        var slots: [String: [UInt32]]
        var reports: [UpdateEngine.StepReport]
        var arena: ParameterArena
        var engine: UpdateEngine
    }

    static func run(_ spec: OptimizationSpec, steps: Int = 4, workers: Int = 1, chunk: Int = 64,
                    kernels: KernelPath = .best, gradScale: Float = 1) throws -> Run {
        let arena = try ParameterArena(specs: tensors)
        for e in arena.entries {
            arena.view(arena.params, e).initialize(from: values(e.count, e.index + 100, scale: 0.5))
        }
        let plan = try UpdatePlan(spec, registry: try registry(), tensors: tensors)
        let engine = try UpdateEngine(plan: plan, arena: arena, kernels: kernels, workers: workers, chunkElements: chunk)
        var reports: [UpdateEngine.StepReport] = []
        for s in 0..<steps {
            for e in arena.entries {
                arena.view(arena.grads, e).initialize(from: values(e.count, 31 * s + e.index, scale: gradScale))
            }
            reports.append(engine.apply())
        }
        func bits(_ b: AlignedBuffer) -> [UInt32] { arena.entries.flatMap { arena.view(b, $0).map(\.bitPattern) } }
        let slots = Dictionary(uniqueKeysWithValues: arena.slots.keys.map { k in (k, arena.entries.flatMap { arena.stateView(k, $0).map(\.bitPattern) }) })
        return Run(params: bits(arena.params), slots: slots, reports: reports, arena: arena, engine: engine)
    }

    static let coupledAndDecay = [PluginSpec(name: "l2", params: ["lambda": .number(0.01)], key: "regularizers[0]"),
                                  PluginSpec(name: "l1", params: ["lambda": .number(0.002)], key: "regularizers[1]"),
                                  PluginSpec(name: "weight_decay", params: ["lambda": .number(0.1)], key: "regularizers[2]")]

    @Test(arguments: ["scalar", "best"])
    func elementwiseOptimizerMatchesTheFusedKernelBitForBit(_ path: String) throws {
        let kernels = path == "best" ? KernelPath.best : try KernelPath.named("scalar")
        var s = spec("sgd_elementwise", ["lr": .number(0.05), "momentum": .number(0.9)], regs: Self.coupledAndDecay)
        s.decayBias = true
        let ours = try Self.run(s, kernels: kernels)
        s.optimizer = PluginSpec(name: "sgd", params: ["lr": .number(0.05), "momentum": .number(0.9)], key: "optimizer")
        let fused = try Self.run(s, kernels: kernels)
        #expect(ours.params == fused.params)
        #expect(ours.slots["sgd_elementwise.buffer"] == fused.slots["momentum_buffer"])
        // The SIMD paths sum w² in vector lanes: only the scalar reference sums in element order.
        for (a, b) in zip(ours.reports.map(\.stats), fused.reports.map(\.stats)) {
            #expect(a.nonfiniteGradients == b.nonfiniteGradients && a.zeroParameters == b.zeroParameters)
            #expect(path == "scalar" ? a == b : abs(a.parameterSumSquares - b.parameterSumSquares) <= 1e-12 * b.parameterSumSquares)
        }
    }

    @Test(arguments: ["scalar", "best"])
    func tensorOptimizerMatchesTheFusedKernelBitForBit(_ path: String) throws {
        let kernels = path == "best" ? KernelPath.best : try KernelPath.named("scalar")
        var s = spec("sgd_tensor", ["lr": .number(0.05)], regs: Self.coupledAndDecay)
        s.decayBias = true
        let ours = try Self.run(s, workers: 3, kernels: kernels)
        let oneWorker = try Self.run(s, workers: 1, kernels: kernels)
        #expect(oneWorker.params == ours.params && oneWorker.slots == ours.slots)
        s.optimizer = PluginSpec(name: "sgd", params: ["lr": .number(0.05)], key: "optimizer")
        let fused = try Self.run(s, kernels: kernels)
        #expect(ours.params == fused.params)
        for (a, b) in zip(ours.reports.map(\.stats), fused.reports.map(\.stats)) {
            #expect(a.nonfiniteGradients == b.nonfiniteGradients && a.zeroParameters == b.zeroParameters)
            #expect(path == "scalar" ? a == b : abs(a.parameterSumSquares - b.parameterSumSquares) <= 1e-12 * b.parameterSumSquares)
        }
        // Row state: 7 + 7 + 3 rows, each the norm of its last coupled gradient row (nonzero).
        let rows = try #require(ours.slots["sgd_tensor.row_norm"])
        let e = ours.arena.entries
        #expect(e.allSatisfy { ours.arena.stateView("sgd_tensor.row_norm", $0).count == $0.spec.shape[0] })
        #expect(e.allSatisfy { ours.arena.stateView("sgd_tensor.row_norm", $0).allSatisfy { $0 > 0 } }, "\(rows.count)")
    }

    @Test func validateIsCalledForEveryPlugin() throws {
        let e = #expect(throws: PluginError.self) {
            try UpdatePlan(spec("sgd_elementwise", ["momentum": .number(0)]), registry: try Self.registry(), tensors: Self.tensors)
        }
        #expect("\(e!)".contains("optimizer.momentum"))
        #expect(throws: PluginError.self) {
            try UpdatePlan(spec("sgd", ["nesterov": .flag(true)]), registry: try Self.registry(), tensors: Self.tensors)
        }
    }

    @Test func anOptimizerWithoutLRStepsByTheScheduleMultiplier() throws {
        let schedule = ScheduleSpec(plugin: PluginSpec(name: "multistep", params: ["milestones": .numbers([0]), "gamma": .number(0.5)],
                                                       key: "schedule"), unit: .step)
        let r = try Self.run(spec("unit_sign", [:], schedule: schedule), steps: 1)
        let w0 = Self.values(45, 100, scale: 0.5)[1], g0 = Self.values(45, 0, scale: 1)[1]
        #expect(r.reports[0].lr == 0.5)
        #expect(Float(bitPattern: r.params[1]) == w0 - 0.5 * (g0 > 0 ? 1 : -1))
    }

    @Test func declaredStateStartsAtItsInitialValueAndIsReplayState() throws {
        var s = spec("sgd", ["lr": .number(0.1)], regs: [PluginSpec(name: "step_counter", params: [:], key: "regularizers[0]")])
        s.decayBias = true
        let plan = try UpdatePlan(s, registry: try Self.registry(), tensors: Self.tensors)
        #expect(plan.stateSlots == ["step_counter.seen"])
        let r = try Self.run(s, steps: 3)
        #expect(Set(r.slots["step_counter.seen"]!) == [Float(4).bitPattern])
    }

    @Test func aStatefulPluginListedTwiceInAGroupIsRefused() throws {
        let twice = [PluginSpec(name: "step_counter", params: [:], key: "regularizers[0]"),
                     PluginSpec(name: "step_counter", params: [:], key: "regularizers[1]")]
        let e = #expect(throws: PluginError.self) {
            try UpdatePlan(spec("sgd", [:], regs: twice), registry: try Self.registry(), tensors: Self.tensors)
        }
        #expect("\(e!)".contains("state slot 'step_counter.seen'") && "\(e!)".contains("declared twice"), "\(e!)")
    }

    static let tensorPasses: [(String, [PluginSpec])] = [
        ("group lasso proximal", [PluginSpec(name: "group_lasso", params: ["lambda": .number(0.9), "scale": .text("constant")], key: "r")]),
        ("group lasso coupled", [PluginSpec(name: "group_lasso", params: ["lambda": .number(0.3), "form": .text("coupled")], key: "r")]),
        ("max norm", [PluginSpec(name: "max_norm", params: ["max_norm": .number(1.5)], key: "r")]),
        ("clip", [PluginSpec(name: "clip_grad_norm", params: ["max_norm": .number(2)], key: "r")]),
        ("all", [PluginSpec(name: "clip_grad_norm", params: ["max_norm": .number(2)], key: "r0"),
                 PluginSpec(name: "group_lasso", params: ["lambda": .number(0.1)], key: "r1"),
                 PluginSpec(name: "max_norm", params: ["max_norm": .number(1.5)], key: "r2")]),
    ]

    @Test(arguments: tensorPasses.map(\.0))
    func tensorPassesAreBitIdenticalForAnyWorkerCount(_ name: String) throws {
        let s = spec("adam", ["lr": .number(0.05)], regs: Self.tensorPasses.first { $0.0 == name }!.1)
        let one = try Self.run(s, workers: 1, gradScale: 3)
        for workers in [2, 3] {
            let other = try Self.run(s, workers: workers, gradScale: 3)
            #expect(one.params == other.params, "\(workers) workers")
            #expect(one.reports.map(\.stats) == other.reports.map(\.stats))
            #expect(one.reports.map(\.passMetrics) == other.reports.map(\.passMetrics))
        }
    }

    /// Row norms of a tensor of the arena.
    static func rowNorms(_ r: Run, _ t: Int) -> [Double] {
        let e = r.arena.entries[t], rows = e.spec.shape[0], len = e.count / rows
        let w = Array(r.arena.view(r.arena.params, e))
        return (0..<rows).map { i in w[(i * len)..<((i + 1) * len)].reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot() }
    }

    @Test func maxNormBoundsEveryRowAndCountsTheClippedOnes() throws {
        let s = spec("sgd", ["lr": .number(0.5)], regs: [PluginSpec(name: "max_norm", params: ["max_norm": .number(1.5)], key: "r")])
        let r = try Self.run(s, steps: 2, gradScale: 2)
        for t in [0, 2] { #expect(Self.rowNorms(r, t).allSatisfy { $0 <= 1.5 * (1 + 1e-6) }) }
        // The bias is spared (decay_bias = false): it moves as without the constraint.
        let free = try Self.run(spec("sgd", ["lr": .number(0.5)]), steps: 2, gradScale: 2)
        #expect(Array(r.arena.view(r.arena.params, r.arena.entries[1])) == Array(free.arena.view(free.arena.params, free.arena.entries[1])))
        #expect(Self.rowNorms(free, 0).contains { $0 > 1.5 }, "the constraint had work to do")
        #expect(r.reports[0].passMetrics["max_norm.clipped_rows"]! > 0)
        // The statistics describe the constrained weights.
        let sumsq = r.arena.entries.flatMap { Array(r.arena.view(r.arena.params, $0)) }.reduce(0.0) { $0 + Double($1) * Double($1) }
        #expect(abs(r.reports[1].stats.parameterSumSquares - sumsq) <= 1e-9 * sumsq)
    }

    @Test func proximalGroupLassoZeroesWholeRows() throws {
        let s = spec("sgd", ["lr": .number(0.01)],
                     regs: [PluginSpec(name: "group_lasso", params: ["lambda": .number(1.6), "scale": .text("constant")], key: "r")])
        let r = try Self.run(s, steps: 1)
        let norms = Self.rowNorms(r, 0) + Self.rowNorms(r, 2)
        let zero = norms.filter { $0 == 0 }.count
        #expect(zero > 0 && zero < norms.count, "\(norms)")
        #expect(r.reports[0].passMetrics["group_lasso.zero_rows"] == Int64(zero))
        #expect(r.reports[0].stats.zeroParameters >= Int64(zero * 7))
    }

    @Test func coupledGroupLassoAddsTheRowSubgradientAndReportsItsPenalty() throws {
        // SGD lr 1 without momentum: w1 = w0 − (g + λ·w0_r/‖w0_r‖).
        let s = spec("sgd", ["lr": .number(1)],
                     regs: [PluginSpec(name: "group_lasso", params: ["lambda": .number(0.3), "form": .text("coupled")], key: "r")])
        let r = try Self.run(s, steps: 1)
        let w0 = Self.values(315, 100, scale: 0.5), g = Self.values(315, 0, scale: 1)
        let norm = w0[0..<45].reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        let k = Float(0.3 / norm)
        for i in 0..<45 { #expect(Float(bitPattern: r.params[i]) == w0[i] - (g[i] + k * w0[i])) }
        let penalty = try #require(r.engine.penalties().first { $0.name == "default/group_lasso" })
        let expected = 0.3 * (Self.rowNorms(r, 0) + Self.rowNorms(r, 2)).reduce(0, +)
        #expect(abs(penalty.value - expected) <= 1e-12 * expected)
    }

    @Test func clippingScalesEveryGradientByTheGlobalFactorAndKeepsBiases() throws {
        // SGD lr 1 without momentum: w1 = w0 − coefficient·g, so the step reveals the factor.
        let s = spec("sgd", ["lr": .number(1)], regs: [PluginSpec(name: "clip_grad_norm", params: ["max_norm": .number(2)], key: "r")])
        let plan = try UpdatePlan(s, registry: try Self.registry(), tensors: Self.tensors)
        #expect(plan.groups.allSatisfy { $0.regularizers.count == 1 }, "clipping covers the bias group too")
        let r = try Self.run(s, steps: 1, gradScale: 3)
        let g = Self.tensors.indices.flatMap { Self.values(Self.tensors[$0].count, $0, scale: 3) }
        let w0 = Self.tensors.indices.flatMap { Self.values(Self.tensors[$0].count, $0 + 100, scale: 0.5) }
        let norm = Float(g.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot())
        let coefficient = 2 / (norm + 1e-6)
        #expect(coefficient < 1)
        let w1 = r.arena.entries.flatMap { Array(r.arena.view(r.arena.params, $0)) }
        for i in w1.indices { #expect(w1[i] == w0[i] - g[i] * coefficient) }
        #expect(r.reports[0].passMetrics["clip_grad_norm.clipped_tensors"] == 3)
    }
}
