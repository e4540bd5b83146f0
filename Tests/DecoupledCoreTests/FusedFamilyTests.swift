import CDecoupledKernels
import DecoupledCore
import Testing

/// The family's fused kernels (Plugins/FusedFamily.swift, decoupled_kernels_family.h) against
/// the generic element-wise path (`elementwiseUpdate`, i.e. the optimizers' Swift element
/// functions, which the conformance fixtures check against PyTorch): bit for bit on every
/// kernel path, 1–3 workers, pieces ending mid-vector, coupled L2 and L1 with decoupled decay,
/// through both RAdam regimes and both forms of PyTorch's lerp.
@Suite struct FusedFamilyTests {
    struct Case: Sendable, CustomStringConvertible {
        let name: String
        let hyper: [String: HyperValue]
        var description: String { "\(name) \(hyper.keys.sorted().map { "\($0)=\(hyper[$0]!)" }.joined(separator: " "))" }
    }

    static let cases: [Case] = [
        Case(name: "adagrad", hyper: ["lr": .number(0.05), "lr_decay": .number(0.01), "initial_accumulator_value": .number(0.2)]),
        Case(name: "rmsprop", hyper: ["lr": .number(0.01)]),
        Case(name: "rmsprop", hyper: ["lr": .number(0.01), "centered": .flag(true)]),
        Case(name: "rmsprop", hyper: ["lr": .number(0.01), "momentum": .number(0.5)]),
        Case(name: "rmsprop", hyper: ["lr": .number(0.01), "centered": .flag(true), "momentum": .number(0.5)]),
        // α = 0.3: the lerp weight 1 − α ≥ 0.5 takes PyTorch's second form.
        Case(name: "rmsprop", hyper: ["lr": .number(0.01), "alpha": .number(0.3), "centered": .flag(true)]),
        Case(name: "adadelta", hyper: ["lr": .number(1)]),
        Case(name: "adamax", hyper: ["lr": .number(0.01)]),
        Case(name: "adamax", hyper: ["lr": .number(0.01), "beta1": .number(0.2)]),
        Case(name: "nadam", hyper: ["lr": .number(0.01), "momentum_decay": .number(0.01)]),
        // β2 = 0.9: steps 1–5 unrectified, 6–8 rectified.
        Case(name: "radam", hyper: ["lr": .number(0.01), "beta2": .number(0.9)]),
    ]

    /// Tensors whose pieces end mid-vector for every lane count (4, 8, 16) at 64-element chunks.
    static let shapes = [[5], [37], [7, 43]]
    static let steps = 8

    /// Deterministic values in [−1, 1) with exact zeros and rare large spikes.
    static func values(_ n: Int, seed: UInt32) -> [Float] {
        var s = seed &* 2_654_435_761 &+ 1
        return (0..<n).map { i in
            s = s &* 1_664_525 &+ 1_013_904_223
            let x = Float(s >> 8) / Float(1 << 23) - 1
            return i % 23 == 0 ? 0 : (i % 31 == 0 ? 40 * x : x)
        }
    }

    struct Run {
        var arena: ParameterArena
        var stats: [[StepStatistics]] = []
    }

    /// Runs `steps` updates of `c` through `fused` (the kernel path) or the generic path.
    static func run(_ c: Case, path: KernelPath?, workers: Int) throws -> Run {
        let registry = PluginRegistry.builtIn()
        let opt = try #require(try registry.optimizer(named: c.name) as? any ElementwiseOptimizer)
        let hp = try HyperValues(specs: opt.hyperParameters, given: c.hyper, keyPrefix: "optimizer", pluginName: c.name)
        let arena = try ParameterArena(specs: shapes.enumerated().map { TensorSpec(name: "t\($0.offset)", shape: $0.element, role: .weight) })
        for s in opt.state(hp) { _ = arena.slot(s.name, initialValue: s.initialValue, layout: s.layout) }
        let sharder = Sharder(arena: arena, chunkElements: 64, workers: workers)
        let reg = FusedRegularization(l2: 0.01, l1: 0.001, decay: 1e-3)
        arena.params.base.update(from: values(arena.capacity, seed: 1), count: arena.capacity)
        var out = Run(arena: arena)
        for t in 1...steps {
            arena.grads.base.update(from: values(arena.capacity, seed: UInt32(t + 1)), count: arena.capacity)
            let context = StepContext(step: t, eta: 1, lr: hp.number("lr"))
            let update = path.map { opt.update(hp, context: context, regularization: reg, arena: arena, kernels: $0) }
                ?? opt.elementwiseUpdate(hp, context: context, regularization: reg, arena: arena)
            var stats = [StepStatistics](repeating: .zero, count: sharder.pieces.count)
            stats.withUnsafeMutableBufferPointer { s in sharder.forEachPiece { p in s[p.index] = update(p) } }
            out.stats.append(stats)
        }
        return out
    }

    static func bits(_ b: AlignedBuffer, _ n: Int) -> [UInt32] { (0..<n).map { b.base[$0].bitPattern } }

    /// "" when `a` and `b` hold the same bits, else the first element that differs and how many do.
    static func difference(_ a: AlignedBuffer, _ b: AlignedBuffer, _ n: Int) -> String {
        let differing = (0..<n).filter { a.base[$0].bitPattern != b.base[$0].bitPattern }
        guard let i = differing.first else { return "" }
        return "\(differing.count) of \(n) differ, first [\(i)]: \(a.base[i]) vs \(b.base[i])"
    }

    @Test(arguments: cases)
    func fusedKernelsEqualTheElementFunctionsBitForBit(_ c: Case) throws {
        let reference = try Self.run(c, path: nil, workers: 1)
        let n = reference.arena.capacity
        let slots = reference.arena.slots.keys.sorted()
        #expect(Self.bits(reference.arena.params, n) != Self.values(n, seed: 1).map(\.bitPattern), "\(c): weights did not move")
        for path in KernelPath.runnable {
            for workers in 1...3 {
                let fused = try Self.run(c, path: path, workers: workers)
                let label = "\(c) [\(path), \(workers) workers]"
                let weights = Self.difference(fused.arena.params, reference.arena.params, n)
                #expect(weights.isEmpty, "\(label): weights: \(weights)")
                for slot in slots {
                    let state = Self.difference(fused.arena.slot(slot), reference.arena.slot(slot), n)
                    #expect(state.isEmpty, "\(label): \(slot): \(state)")
                }
                // Counts are exact; Σw² is summed per lane in double, so only its rounding may differ.
                for (a, b) in zip(fused.stats.joined(), reference.stats.joined()) {
                    #expect(a.nonfiniteGradients == b.nonfiniteGradients && a.zeroParameters == b.zeroParameters, "\(label): counts")
                    #expect(abs(a.parameterSumSquares - b.parameterSumSquares) <= 1e-12 * max(b.parameterSumSquares, 1e-300),
                            "\(label): Σw² \(a.parameterSumSquares) vs \(b.parameterSumSquares)")
                }
            }
        }
    }

    /// A non-finite gradient is counted and spreads exactly as on the generic path.
    @Test func nonFiniteGradientsMatchTheGenericPath() throws {
        for name in ["adagrad", "rmsprop", "adadelta", "adamax", "nadam", "radam"] {
            let c = Case(name: name, hyper: [:])
            let registry = PluginRegistry.builtIn()
            let opt = try #require(try registry.optimizer(named: name) as? any ElementwiseOptimizer)
            let hp = try HyperValues(specs: opt.hyperParameters, given: [:], keyPrefix: "optimizer", pluginName: name)
            func step(_ path: KernelPath?) throws -> ([UInt32], StepStatistics) {
                let arena = try ParameterArena(specs: [TensorSpec(name: "w", shape: [21], role: .weight)])
                for s in opt.state(hp) { _ = arena.slot(s.name, initialValue: s.initialValue, layout: s.layout) }
                arena.params.base.update(from: Self.values(21, seed: 9), count: 21)
                var g = Self.values(21, seed: 10)
                g[3] = .nan; g[17] = .infinity; g[19] = -.infinity
                arena.grads.base.update(from: g, count: 21)
                let ctx = StepContext(step: 1, eta: 1, lr: hp.number("lr"))
                let update = path.map { opt.update(hp, context: ctx, regularization: FusedRegularization(), arena: arena, kernels: $0) }
                    ?? opt.elementwiseUpdate(hp, context: ctx, regularization: FusedRegularization(), arena: arena)
                let s = update(Sharder(arena: arena, workers: 1).pieces[0])
                // NaN payloads are not compared: every NaN counts as the same value.
                return ((0..<21).map { arena.params.base[$0].isNaN ? Float.nan.bitPattern : arena.params.base[$0].bitPattern }, s)
            }
            let (reference, referenceStats) = try step(nil)
            #expect(referenceStats.nonfiniteGradients == 3, "\(c)")
            for path in KernelPath.runnable {
                let (w, s) = try step(path)
                #expect(w == reference, "\(c) [\(path)]")
                #expect(s.nonfiniteGradients == 3 && s.zeroParameters == referenceStats.zeroParameters, "\(c) [\(path)]")
            }
        }
    }
}
