import DecoupledCore
import Foundation
import Testing

/// The optimizer family beyond SGD/Adam (their trajectories against PyTorch and optax are in
/// ConformanceTests): determinism across workers, resume from slots and step alone, the
/// pytorch convention's decoupled_weight_decay switch and its aliases, and conventions that
/// refuse an optimizer whose math is another framework's.
@Suite struct OptimizerFamilyTests {
    /// Each optimizer with flags that exercise every state slot, under the convention that models it.
    struct Config: Sendable {
        let name: String
        let hyper: [String: HyperValue]
        let convention: Convention
    }

    static let configs: [Config] = [
        Config(name: "adagrad", hyper: ["lr": .number(0.05), "lr_decay": .number(0.01), "initial_accumulator_value": .number(0.2)],
               convention: .pytorch),
        Config(name: "rmsprop", hyper: ["lr": .number(0.01), "centered": .flag(true), "momentum": .number(0.5)], convention: .pytorch),
        Config(name: "adadelta", hyper: ["lr": .number(1)], convention: .pytorch),
        Config(name: "adamax", hyper: ["lr": .number(0.01)], convention: .pytorch),
        Config(name: "nadam", hyper: ["lr": .number(0.01), "momentum_decay": .number(0.01)], convention: .pytorch),
        Config(name: "radam", hyper: ["lr": .number(0.01), "beta2": .number(0.9)], convention: .pytorch),
        Config(name: "lamb", hyper: ["lr": .number(0.01), "weight_decay": .number(0.1)], convention: .optax),
        Config(name: "adafactor", hyper: ["lr": .number(0.01), "weight_decay": .number(0.1)], convention: .pytorch),
    ]
    static let n = 300
    static let w0: [Float] = (0..<n).map { i in Float((i * 37) % 101) / 50 - 1 }
    static let grads: [[Float]] = (0..<6).map { s in gradient(s) }

    static func gradient(_ s: Int) -> [Float] {
        (0..<n).map { i in
            let k = ((i + 7 * s) * 53) % 97
            return Float(k) / 48 - 1
        }
    }

    @Test(arguments: configs.map { $0.name })
    func bitIdenticalForAnyWorkerCountAndAfterResume(_ name: String) throws {
        let config = try #require(Self.configs.first { $0.name == name })
        let l2 = PluginSpec(name: "l2", params: ["lambda": .number(0.01)], key: "regularizers[0]")
        let s = spec(name, config.hyper, regs: [l2], convention: config.convention)
        let one = try runSteps(s, w: Self.w0, grads: Self.grads, workers: 1).w
        let three = try runSteps(s, w: Self.w0, grads: Self.grads, workers: 3).w
        #expect(one.map { $0.bitPattern } == three.map { $0.bitPattern }, "\(name): 1 vs 3 workers")
        #expect(one != Self.w0, "\(name) did not move the weights")

        // Resume: everything an optimizer carries between steps is its declared slots and the step.
        let first = try runSteps(s, w: Self.w0, grads: Array(Self.grads[..<3]), workers: 2).engine
        let specs = first.arena.entries.map { $0.spec }
        let arena = try ParameterArena(specs: specs)
        arena.params.base.update(from: first.arena.params.base, count: first.arena.capacity)
        // The engine allocates the declared slots (with their layouts and initial values);
        // the first run's state then overwrites every tensor's part, as a checkpoint load does.
        let engine = try UpdateEngine(plan: try UpdatePlan(s, registry: .builtIn(), tensors: specs), arena: arena,
                                      kernels: try KernelPath.named("scalar"), workers: 2, chunkElements: 16)
        for slot in first.plan.stateSlots {
            for e in arena.entries {
                _ = arena.stateView(slot, e).update(fromContentsOf: first.arena.stateView(slot, first.arena.entries[e.index]))
            }
        }
        engine.restore(step: first.step)
        for g in Self.grads[3...] {
            arena.view(arena.grads, arena.entries[0]).initialize(from: g)
            engine.apply()
        }
        let resumed = Array(arena.view(arena.params, arena.entries[0]))
        #expect(resumed.map { $0.bitPattern } == one.map { $0.bitPattern }, "\(name): resumed after 3 steps")
    }

    /// PyTorch's NAdam(decoupled_weight_decay=True) is our nadam with the switch, or nadamw;
    /// both decay w by lr·λ before the step, unlike the coupled default.
    @Test func decoupledSwitchEqualsTheAlias() throws {
        for base in ["nadam", "radam", "adagrad"] {
            let hp: [String: HyperValue] = ["lr": .number(0.01), "weight_decay": .number(0.5)]
            var switched = hp
            switched["decoupled_weight_decay"] = .flag(true)
            let viaSwitch = try runSteps(spec(base, switched), w: Self.w0, grads: Self.grads).w
            let viaAlias = try runSteps(spec(base + "w", hp), w: Self.w0, grads: Self.grads).w
            let coupled = try runSteps(spec(base, hp), w: Self.w0, grads: Self.grads).w
            let explicit = try runSteps(spec(base, ["lr": .number(0.01)], regs: [
                PluginSpec(name: "weight_decay", params: ["lambda": .number(0.5)], key: "regularizers[0]")]), w: Self.w0, grads: Self.grads).w
            #expect(viaSwitch.map { $0.bitPattern } == viaAlias.map { $0.bitPattern }, "\(base)")
            #expect(viaSwitch.map { $0.bitPattern } == explicit.map { $0.bitPattern }, "\(base)")
            #expect(viaSwitch != coupled, "\(base): the switch changed nothing")
        }
    }

    /// The message of the error planning `s` throws, nil when it plans.
    func planError(_ s: OptimizationSpec) -> String? {
        do {
            _ = try UpdatePlan(s, registry: .builtIn(), tensors: [TensorSpec(name: "w", shape: [2], role: .weight)])
            return nil
        } catch { return "\(error)" }
    }

    @Test func decoupledSwitchOutsidePytorchIsRefusedNamingTheKey() {
        let optax = planError(spec("adam", ["lr": .number(0.01), "decoupled_weight_decay": .flag(true)], convention: .optax))
        #expect(optax?.contains("optimizer.decoupled_weight_decay") == true && optax?.contains("pytorch") == true, "\(optax ?? "planned")")
        let wrongType = planError(spec("nadam", ["lr": .number(0.01), "decoupled_weight_decay": .number(1)]))
        #expect(wrongType?.contains("optimizer.decoupled_weight_decay") == true && wrongType?.contains("true or false") == true,
                "\(wrongType ?? "planned")")
    }

    /// An optimizer computing torch.optim's math under the keras convention (Keras's Adagrad
    /// differs) would silently mean something else: refused, naming the convention to use.
    @Test func conventionsRefuseOptimizersTheyDoNotModel() {
        for (name, convention, home) in [("adagrad", Convention.keras, "pytorch"), ("lamb", .pytorch, "optax"),
                                         ("nadamw", .optax, "pytorch"), ("adam", .caffe, "pytorch")] {
            let e = planError(spec(name, ["lr": .number(0.01)], convention: convention))
            #expect(e?.contains("optimizer.name") == true && e?.contains("\"\(home)\"") == true, "\(name) under \(convention): \(e ?? "planned")")
        }
    }
}

/// Adafactor's factored state (per-row and per-column slots over the last two dimensions of
/// each ≥ 2-D tensor, per element for the bias) survives a resume bit for bit, with tensors
/// cut into pieces across workers and split into two groups.
@Suite struct AdafactorResumeTests {
    static let tensors = [TensorSpec(name: "conv.weight", shape: [2, 3, 7], role: .weight),
                          TensorSpec(name: "fc.weight", shape: [5, 9], role: .weight),
                          TensorSpec(name: "fc.bias", shape: [5], role: .bias)]
    static let spec = OptimizationSpec(optimizer: PluginSpec(name: "adafactor", params: ["lr": .number(0.5), "weight_decay": .number(0.1)],
                                                             key: "optimizer"), schedule: ScheduleSpec(unit: .step))

    static func gradient(_ step: Int, _ count: Int, _ tensor: Int) -> [Float] {
        (0..<count).map { i in Float(((i + 11 * step + 5 * tensor) * 53) % 97) / 48 - 1 }
    }

    /// Runs `steps` from `start`, on `arena` (fresh when nil); returns the engine.
    static func run(_ steps: Range<Int>, arena given: ParameterArena? = nil, workers: Int) throws -> UpdateEngine {
        let arena = try given ?? ParameterArena(specs: tensors)
        if given == nil {
            for (t, e) in arena.entries.enumerated() {
                arena.view(arena.params, e).initialize(from: (0..<e.count).map { i in Float(((i * 37 + t) % 101)) / 50 - 1 })
            }
        }
        let engine = try UpdateEngine(plan: try UpdatePlan(spec, registry: .builtIn(), tensors: tensors), arena: arena,
                                      kernels: try KernelPath.named("scalar"), workers: workers, chunkElements: 16)
        engine.restore(step: steps.lowerBound)
        for s in steps {
            for (t, e) in arena.entries.enumerated() { arena.view(arena.grads, e).initialize(from: gradient(s, e.count, t)) }
            engine.apply()
        }
        return engine
    }

    @Test func resumeIsBitIdentical() throws {
        let straight = try Self.run(0..<6, workers: 1).arena
        let first = try Self.run(0..<3, workers: 3).arena
        let copy = try ParameterArena(specs: Self.tensors)
        copy.params.base.update(from: first.params.base, count: first.capacity)
        for (name, buffer) in first.slots {
            copy.slot(name, layout: first.layout(ofSlot: name)).base.update(from: buffer.base, count: buffer.count)
        }
        let resumed = try Self.run(3..<6, arena: copy, workers: 2).arena
        let a = Array(UnsafeBufferPointer(start: straight.params.base, count: straight.capacity))
        let b = Array(UnsafeBufferPointer(start: resumed.params.base, count: resumed.capacity))
        #expect(a.map { $0.bitPattern } == b.map { $0.bitPattern })
        #expect(straight.slots.keys.sorted() == ["col_var", "row_var", "variance"])
        // PyTorch's row_var [B, R, 1] and col_var [B, 1, C], without the unit dimension.
        let conv = straight.entries[0], fc = straight.entries[1]
        #expect(straight.stateShape("row_var", conv) == [2, 3] && straight.stateShape("col_var", conv) == [2, 7])
        #expect(straight.stateShape("row_var", fc) == [5] && straight.stateShape("col_var", fc) == [9])
    }
}
