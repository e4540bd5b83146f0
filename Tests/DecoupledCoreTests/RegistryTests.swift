import CDecoupledKernels
import DecoupledCore
import Foundation
import Testing

/// One tensor "w" (and optionally a bias) through the registry, plan and engine.
func runSteps(_ spec: OptimizationSpec, w: [Float], grads: [[Float]], bias: [Float]? = nil,
              registry: PluginRegistry = .builtIn(), workers: Int = 1) throws -> (w: [Float], bias: [Float]?, engine: UpdateEngine) {
    var specs = [TensorSpec(name: "fc.weight", shape: [w.count], role: .weight)]
    if let bias { specs.append(TensorSpec(name: "fc.bias", shape: [bias.count], role: .bias)) }
    let arena = try ParameterArena(specs: specs)
    arena.view(arena.params, arena.entries[0]).initialize(from: w)
    if let bias { arena.view(arena.params, arena.entries[1]).initialize(from: bias) }
    let plan = try UpdatePlan(spec, registry: registry, tensors: specs)
    let engine = try UpdateEngine(plan: plan, arena: arena, kernels: try KernelPath.named("scalar"), workers: workers,
                                  chunkElements: 16)
    for g in grads {
        arena.view(arena.grads, arena.entries[0]).initialize(from: g)
        if let bias { arena.view(arena.grads, arena.entries[1]).initialize(from: [Float](repeating: 1, count: bias.count)) }
        engine.apply()
    }
    return (Array(arena.view(arena.params, arena.entries[0])), bias.map { _ in Array(arena.view(arena.params, arena.entries[1])) }, engine)
}

func spec(_ optimizer: String, _ params: [String: HyperValue], regs: [PluginSpec] = [], convention: Convention = .pytorch,
          schedule: ScheduleSpec = ScheduleSpec(unit: .step)) -> OptimizationSpec {
    OptimizationSpec(convention: convention, optimizer: PluginSpec(name: optimizer, params: params, key: "optimizer"),
                     regularizers: regs, schedule: schedule)
}

@Suite struct RegistryTests {
    let adamHP: [String: HyperValue] = ["lr": .number(0.25), "beta1": .number(0.5), "beta2": .number(0.75), "eps": .number(0)]

    @Test func adamwScaleModesClosedForm() throws {
        // η(0) = 0.5 (multistep with a milestone at 0), lr = 0.25 → lr_t = 0.125, λ = 0.5, g = 2, w = 1.
        // Adam's first step moves lr_t·sign(g) = 0.125; decay keep = 1 − s_t·λ.
        let half = ScheduleSpec(plugin: PluginSpec(name: "multistep", params: ["milestones": .numbers([0]), "gamma": .number(0.5)],
                                                   key: "schedule"), unit: .step)
        let cases: [(String, Float)] = [("lr", 0.9375 - 0.125), ("schedule", 0.75 - 0.125), ("constant", 0.5 - 0.125)]
        for (scale, expected) in cases {
            let s = spec("adam", adamHP, regs: [PluginSpec(name: "weight_decay", params: ["lambda": .number(0.5), "scale": .text(scale)],
                                                           key: "regularizers[0]")], schedule: half)
            #expect(try runSteps(s, w: [1], grads: [[2]]).w == [expected], "scale \(scale)")
        }
        // The alias: adamw's weight_decay is decoupled and lr-scaled under PyTorch's convention.
        var hp = adamHP
        hp["weight_decay"] = .number(0.5)
        #expect(try runSteps(spec("adamw", hp, schedule: half), w: [1], grads: [[2]]).w == [0.8125])
        // …and schedule-scaled under the paper's.
        #expect(try runSteps(spec("adamw", hp, convention: .paper, schedule: half), w: [1], grads: [[2]]).w == [0.625])
        // Adam's weight_decay is coupled L2 (PyTorch): g' = 2 + 0.5·1 = 2.5 — the step is still lr_t.
        #expect(try runSteps(spec("adam", hp, schedule: half), w: [1], grads: [[2]]).w == [0.875])
    }

    @Test func conventionsOfL2AndWeightDecay() throws {
        let sgd: [String: HyperValue] = ["lr": .number(0.25)]
        // PyTorch SGD(weight_decay = 0.5): g' = 1 + 0.5·2 = 2 → 2 − 0.5
        var hp = sgd
        hp["weight_decay"] = .number(0.5)
        #expect(try runSteps(spec("sgd", hp), w: [2], grads: [[1]]).w == [1.5])
        // Caffe weight_decay with regularization_type L1: g' = 1 + 0.5 → 2 − 0.375
        hp["regularization_type"] = .text("L1")
        #expect(try runSteps(spec("sgd", hp, convention: .caffe), w: [2], grads: [[1]]).w == [1.625])
        // Keras L2(0.5) is λ‖w‖²: g' = 1 + 2·0.5·2 = 3 → 2 − 0.75; PyTorch-style l2 is half.
        let l2 = [PluginSpec(name: "l2", params: ["lambda": .number(0.5)], key: "regularizers[0]")]
        #expect(try runSteps(spec("sgd", sgd, regs: l2, convention: .keras), w: [2], grads: [[1]]).w == [1.25])
        #expect(try runSteps(spec("sgd", sgd, regs: l2), w: [2], grads: [[1]]).w == [1.5])
        // Caffe weight_decay 0.0005 (half) is Keras l2 0.00025 (full): the same step.
        var caffe = sgd
        caffe["weight_decay"] = .number(0.0005)
        let keras = [PluginSpec(name: "l2", params: ["lambda": .number(0.00025)], key: "regularizers[0]")]
        let a = try runSteps(spec("sgd", caffe, convention: .caffe), w: [2, -3], grads: [[1, 1]]).w
        let b = try runSteps(spec("sgd", sgd, regs: keras, convention: .keras), w: [2, -3], grads: [[1, 1]]).w
        #expect(a == b)
        // elastic: l1·sign(w) + l2·w: g' = 1 + 0.25 + 0.5·2 = 2.25 → 2 − 0.5625
        let el = [PluginSpec(name: "elastic", params: ["l1": .number(0.25), "l2": .number(0.5)], key: "regularizers[0]")]
        #expect(try runSteps(spec("sgd", sgd, regs: el), w: [2], grads: [[1]]).w == [1.4375])
    }

    func randomStream(_ n: Int, steps: Int, seed: UInt64) -> ([Float], [[Float]]) {
        var rng = SystemRandomNumberGeneratorSeeded(seed)
        let w = (0..<n).map { _ in Float(rng.uniform() * 2 - 1) }
        let gs = (0..<steps).map { _ in (0..<n).map { _ in Float(rng.uniform() - 0.5) } }
        return (w, gs)
    }

    @Test func sgdWithL2EqualsSGDWOnlyWithoutMomentum() throws {
        func both(_ momentum: Double, _ w: [Float], _ gs: [[Float]]) throws -> ([Float], [Float]) {
            let base: [String: HyperValue] = ["lr": .number(0.1), "momentum": .number(momentum)]
            let coupled = try runSteps(spec("sgd", base, regs: [PluginSpec(name: "l2", params: ["lambda": .number(0.01)], key: "r")]),
                                       w: w, grads: gs).w
            var dhp = base
            dhp["weight_decay"] = .number(0.01)
            return (coupled, try runSteps(spec("sgdw", dhp), w: w, grads: gs).w)
        }
        // Without momentum every step agrees to float rounding: w − lr(g + λw) vs (1 − lrλ)w − lr·g,
        // relative 1e-6 of the magnitudes involved (checked step by step from the same state).
        var (w, gs) = randomStream(4096, steps: 10, seed: 3)
        for g in gs {
            let (c, d) = try both(0, w, [g])
            for i in w.indices {
                let scale = max(abs(w[i]), abs(c[i]), abs(0.1 * g[i]))
                #expect(abs(c[i] - d[i]) <= 1e-6 * scale, "element \(i): \(c[i]) vs \(d[i])")
            }
            w = c
        }
        // With momentum the decay enters the buffer in one and not the other: they drift apart.
        (w, gs) = randomStream(257, steps: 20, seed: 5)
        let (c, d) = try both(0.9, w, gs)
        let diff = zip(c, d).map { abs($0 - $1) / max(abs($0), abs($1), 1e-3) }.max()!
        #expect(diff > 1e-4, "SGD+L2 and SGDW must differ with momentum (max rel \(diff))")
    }

    @Test func adamWithL2DiffersFromAdamW() throws {
        let (w, gs) = randomStream(257, steps: 20, seed: 4)
        var hp: [String: HyperValue] = ["lr": .number(1e-2), "weight_decay": .number(0.1)]
        let adamL2 = try runSteps(spec("adam", hp), w: w, grads: gs).w
        let adamW = try runSteps(spec("adamw", hp), w: w, grads: gs).w
        hp["weight_decay"] = .number(0)
        let plain = try runSteps(spec("adam", hp), w: w, grads: gs).w
        let diff = zip(adamL2, adamW).map { abs($0 - $1) }.max()!
        #expect(diff > 1e-3, "Adam+L2 and AdamW must differ (max |Δ| \(diff))")
        // and both actually regularize: smaller weights than plain Adam
        func norm(_ x: [Float]) -> Float { x.reduce(0) { $0 + $1 * $1 } }
        #expect(norm(adamW) < norm(plain) && norm(adamL2) < norm(plain))
    }

    @Test func unknownNamesSuggestTheClosest() {
        do {
            _ = try UpdatePlan(spec("adamm", [:]), registry: .builtIn(), tensors: [TensorSpec(name: "w", shape: [1], role: .weight)])
            Issue.record("unknown optimizer accepted")
        } catch {
            let text = "\(error)"
            #expect(text.contains("unknown optimizer 'adamm'") && text.contains("Did you mean 'adam'"), "\(text)")
            #expect(text.contains("sgd") && text.contains("adamw"))
        }
        do {
            _ = try UpdatePlan(spec("adam", [:], regs: [PluginSpec(name: "wieght_decay", key: "regularizers[0]")]),
                               registry: .builtIn(), tensors: [TensorSpec(name: "w", shape: [1], role: .weight)])
            Issue.record("unknown regularizer accepted")
        } catch { #expect("\(error)".contains("'weight_decay'")) }
    }

    @Test func outOfRangeAndUnknownKeysNameKeyValueAndRange() {
        let t = [TensorSpec(name: "w", shape: [1], role: .weight)]
        let cases: [(OptimizationSpec, [String])] = [
            (spec("adam", ["beta1": .number(1.5)]), ["optimizer.beta1", "1.5", "[0, 1)"]),
            (spec("adam", ["lr": .number(0)]), ["optimizer.lr", "0", "(0, inf]"]),
            (spec("sgd", ["momentum": .text("high")]), ["optimizer.momentum", "\"high\"", "a number"]),
            (spec("sgd", ["nesterov": .flag(true)]), ["optimizer.nesterov", "momentum > 0"]),
            (spec("adam", ["betas": .number(0.9)]), ["optimizer.betas", "beta1"]),
            (spec("adam", [:], regs: [PluginSpec(name: "l2", params: ["convention": .text("double")], key: "regularizers[0]")]),
             ["regularizers[0].convention", "half | full"]),
            (spec("adam", [:], regs: [PluginSpec(name: "weight_decay", params: ["scale": .text("epoch")], key: "regularizers[1]")]),
             ["regularizers[1].scale", "lr | schedule | constant"]),
            (spec("adam", ["weight_decay": .number(-1)]), ["optimizer.weight_decay", "-1"]),
        ]
        for (s, needles) in cases {
            do {
                _ = try UpdatePlan(s, registry: .builtIn(), tensors: t)
                Issue.record("accepted: \(needles)")
            } catch {
                for n in needles { #expect("\(error)".contains(n), "\(error) should mention \(n)") }
            }
        }
    }

    @Test func biasesAreNotDecayedByDefaultAndTheAuditSaysSo() throws {
        let hp: [String: HyperValue] = ["lr": .number(0.25), "weight_decay": .number(0.5)]
        let r = try runSteps(spec("sgdw", hp), w: [2], grads: [[1]], bias: [2])
        #expect(r.w == [1.5])      // decayed: 2·0.875 − 0.25
        #expect(r.bias == [1.75])  // not decayed: 2 − 0.25
        var s = spec("sgdw", hp)
        s.decayBias = true
        #expect(try runSteps(s, w: [2], grads: [[1]], bias: [2]).bias == [1.5])
        let audit = r.engine.plan.decayAudit()
        #expect(audit.contains("fc.bias") && audit.contains("no_decay"))
        #expect(audit.contains("decoupled L2 λ=0.5") && audit.contains("s_t=lr"))
    }

    @Test func groupsSelectByPatternRoleAndRank() throws {
        var s = spec("sgd", ["lr": .number(0.25)])
        s.groups = [GroupSpec(name: "slow", match: GroupMatch(pattern: "fc.w*"), lrMultiplier: 0.5, key: "groups[0]")]
        let r = try runSteps(s, w: [2], grads: [[1]], bias: [2])
        #expect(r.w == [1.875] && r.bias == [1.75])
        #expect(GroupMatch(maxRank: 1).matches(TensorSpec(name: "ln.scale", shape: [4], role: .norm)))
        #expect(!GroupMatch(maxRank: 1).matches(TensorSpec(name: "fc.weight", shape: [4, 4], role: .weight)))
        #expect(GroupMatch(roles: [.bias]).matches(TensorSpec(name: "x", shape: [4], role: .bias)))
    }

    @Test func schedules() throws {
        let reg = PluginRegistry.builtIn()
        func make(_ name: String, _ p: [String: HyperValue]) throws -> Schedule {
            let sp = try reg.schedule(named: name)
            return try sp.make(try sp.resolve(p, keyPrefix: "schedule"))
        }
        let sgdr = try make("cosine_restarts", ["t0": .number(10), "t_mult": .number(2)])
        #expect(sgdr.multiplier(at: 0) == 1 && sgdr.multiplier(at: 10) == 1 && sgdr.multiplier(at: 30) == 1)
        #expect(abs(sgdr.multiplier(at: 5) - 0.5) < 1e-15 && abs(sgdr.multiplier(at: 20) - 0.5) < 1e-15)
        #expect(sgdr.period(at: 9.5) == 10 && sgdr.period(at: 10) == 20 && sgdr.period(at: 31) == 40)
        let cos = try make("cosine", ["t0": .number(4), "min_multiplier": .number(0.2)])
        #expect(abs(cos.multiplier(at: 2) - 0.6) < 1e-15 && abs(cos.multiplier(at: 9) - 0.2) < 1e-15)
        #expect(try make("step", ["step_size": .number(3), "gamma": .number(0.5)]).multiplier(at: 6.5) == 0.25)
        #expect(try make("multistep", ["milestones": .numbers([2, 5]), "gamma": .number(0.1)]).multiplier(at: 5) == 0.1 * 0.1)
        #expect(try make("exponential", ["gamma": .number(0.5)]).multiplier(at: 2) == 0.25)
        #expect(throws: PluginError.self) { try make("multistep", ["milestones": .numbers([5, 2])]) }
        // warm-up composes with any schedule and shifts it
        let plan = try UpdatePlan(spec("sgd", [:], schedule: ScheduleSpec(plugin: PluginSpec(name: "cosine", params: ["t0": .number(4)], key: "schedule"),
                                                                         unit: .step, warmup: 4)),
                                  registry: reg, tensors: [TensorSpec(name: "w", shape: [1], role: .weight)])
        #expect(plan.schedule.multiplier(at: 0) == 0 && plan.schedule.multiplier(at: 2) == 0.5)
        #expect(plan.schedule.multiplier(at: 4) == 1 && abs(plan.schedule.multiplier(at: 6) - 0.5) < 1e-15)
    }

    @Test func normalizedDecayUsesTheCurrentRestartPeriod() throws {
        // λ = λ_norm·√(b/(B·T)); b = 10, B = 1000, T = restart period in epochs (2, then 4).
        let s = spec("sgd", ["lr": .number(0.5)],
                     regs: [PluginSpec(name: "weight_decay", params: ["lambda": .number(1), "scale": .text("constant"), "normalized": .flag(true)], key: "r")],
                     schedule: ScheduleSpec(plugin: PluginSpec(name: "cosine_restarts", params: ["t0": .number(2), "t_mult": .number(2)], key: "schedule"),
                                            unit: .epoch))
        let specs = [TensorSpec(name: "w", shape: [1], role: .weight)]
        let arena = try ParameterArena(specs: specs)
        let engine = try UpdateEngine(plan: try UpdatePlan(s, registry: .builtIn(), tensors: specs), arena: arena,
                                      kernels: .best, timing: .init(stepsPerEpoch: 100, batchSize: 10, trainingSize: 1000, totalEpochs: 6))
        let r = engine.plan.groups[0].regularizers[0]
        let first = r.plugin.fused(r.hyper, context: engine.context(group: 0, afterSteps: 0)).decay
        let second = r.plugin.fused(r.hyper, context: engine.context(group: 0, afterSteps: 250)).decay
        #expect(abs(first - (10.0 / (1000 * 2)).squareRoot()) < 1e-15)
        #expect(abs(second - (10.0 / (1000 * 4)).squareRoot()) < 1e-15)
    }

    @Test func listingShowsEveryPluginWithVersionAndRanges() {
        let text = PluginRegistry.builtIn().listing()
        for n in ["optimizer sgd 1.0.0", "optimizer adam", "regularizer l2", "regularizer l1", "regularizer elastic",
                  "regularizer weight_decay", "schedule cosine_restarts", "adamw (alias)", "sgdw (alias)", "beta1 = 0.9"] {
            #expect(text.contains(n), "listing lacks \(n)")
        }
    }
}

/// A seeded uniform generator for test data.
struct SystemRandomNumberGeneratorSeeded {
    var s: UInt64
    init(_ seed: UInt64) { s = seed &+ 0x9e37_79b9_7f4a_7c15 }
    mutating func uniform() -> Double {
        s = s &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Double(s >> 11) * 0x1.0p-53
    }
}
