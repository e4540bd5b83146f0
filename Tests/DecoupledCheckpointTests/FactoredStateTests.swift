import DecoupledCore
import Foundation
import Testing
@testable import DecoupledCheckpoint

/// A regularizer with state per row, per column and per tensor (the shapes Adafactor's
/// factored moments need), all feeding back into the weights so a lost or misplaced value
/// changes the trajectory.
final class FactoredProbe: RegularizerPlugin {
    let name = "factored_probe"
    let version = "1.0.0"
    let kind = PluginKind.regularizer
    let summary = "test only: row, column and tensor state"
    let hyperParameters: [HyperParameterSpec] = []
    func isDecoupled(_ hp: HyperValues) -> Bool { true }
    func state(_ hp: HyperValues) -> [StateDeclaration] {
        [StateDeclaration("probe.row_sq", initialValue: 1, layout: .rows),
         StateDeclaration("probe.col_sum", layout: .columns),
         StateDeclaration("probe.steps", initialValue: 0.5, layout: .scalar)]
    }
    func tensorPasses(_ hp: HyperValues, context: StepContext) -> [TensorPass] {
        [TensorPass(phase: .beforeUpdate) { t, _ in
            let (rows, cols) = (t.state[0], t.state[1])
            for r in 0..<t.info.rows {
                let g = t.row(r, of: t.gradients)
                rows[r] = 0.9 * rows[r] + 0.1 * g.reduce(0) { $0 + $1 * $1 }
                for c in g.indices { cols[c] += g[c] }
            }
            t.state[2][0] += 1
            return -1
        }, TensorPass(phase: .afterUpdate) { t, _ in
            let (rows, cols, steps) = (t.state[0], t.state[1], t.state[2][0])
            for r in 0..<t.info.rows {
                let w = t.row(r, of: t.weights)
                for c in w.indices { w[c] -= 1e-3 * (rows[r].squareRoot() + cols[c]) / steps }
            }
            return -1
        }]
    }
    func penalty(_ hp: HyperValues, sumSquares: Double, sumAbs: Double) -> Double? { nil }
    func audit(_ hp: HyperValues) -> String { "factored probe" }
}

@Suite struct FactoredStateTests {
    static let specs = [TensorSpec(name: "fc1.weight", shape: [5, 7], role: .weight),
                        TensorSpec(name: "conv.kernel", shape: [3, 2, 4], role: .weight),
                        TensorSpec(name: "scale", shape: [], role: .weight),
                        TensorSpec(name: "fc2.weight", shape: [3, 5], role: .weight),
                        TensorSpec(name: "fc2.scale", shape: [3], role: .weight)]

    static func engine(workers: Int) throws -> UpdateEngine {
        let registry = PluginRegistry.builtIn()
        try registry.register(FactoredProbe())
        let spec = OptimizationSpec(optimizer: PluginSpec(name: "adam", params: ["lr": .number(0.01)], key: "optimizer"),
                                    regularizers: [PluginSpec(name: "factored_probe", params: [:], key: "regularizers[0]")],
                                    schedule: ScheduleSpec(unit: .step))
        return try engine(spec, registry, workers: workers)
    }

    /// Adafactor, whose row_var/col_var factor the last two dimensions (matrixRows/matrixColumns).
    static func adafactor(workers: Int) throws -> UpdateEngine {
        let spec = OptimizationSpec(optimizer: PluginSpec(name: "adafactor", params: ["lr": .number(0.05), "weight_decay": .number(0.1)],
                                                          key: "optimizer"), schedule: ScheduleSpec(unit: .step))
        return try engine(spec, .builtIn(), workers: workers)
    }

    static func engine(_ spec: OptimizationSpec, _ registry: PluginRegistry, workers: Int) throws -> UpdateEngine {
        let arena = try ParameterArena(specs: specs)
        for e in arena.entries {
            for (i, x) in arena.view(arena.params, e).indices.enumerated() { arena.view(arena.params, e)[x] = Float((i * 13 + e.index) % 17) / 8 - 1 }
        }
        return try UpdateEngine(plan: try UpdatePlan(spec, registry: registry, tensors: specs), arena: arena, kernels: .best,
                                workers: workers, chunkElements: 16)
    }

    static func steps(_ e: UpdateEngine, _ range: Range<Int>) {
        for s in range {
            for t in e.arena.entries {
                let g = e.arena.view(e.arena.grads, t)
                for i in g.indices { g[i] = Float(((i + 3 * s + t.index) * 29) % 23) / 11 - 1 }
            }
            e.apply()
        }
    }

    static func bits(_ e: UpdateEngine) -> [String: [UInt32]] {
        var out = ["params": e.arena.entries.flatMap { e.arena.view(e.arena.params, $0).map(\.bitPattern) }]
        for s in e.plan.stateSlots { out[s] = e.arena.entries.flatMap { e.arena.stateView(s, $0).map(\.bitPattern) } }
        return out
    }

    @Test func stateHasItsDeclaredShapeAndInitialValue() throws {
        let e = try Self.engine(workers: 1)
        let a = e.arena, fc1 = a.entries[0], conv = a.entries[1], scalar = a.entries[2]
        #expect(a.stateShape("probe.row_sq", fc1) == [5] && a.stateShape("probe.col_sum", fc1) == [7])
        #expect(a.stateShape("probe.row_sq", conv) == [3] && a.stateShape("probe.col_sum", conv) == [8])
        #expect(a.stateShape("probe.steps", fc1) == [] && a.stateShape("probe.row_sq", scalar) == [1])
        #expect(Array(a.stateView("probe.row_sq", conv)) == [1, 1, 1] && a.stateView("probe.steps", conv)[0] == 0.5)
    }

    @Test func adafactorStateFactorsTheLastTwoDimensions() throws {
        let a = try Self.adafactor(workers: 1).arena, fc1 = a.entries[0], conv = a.entries[1], scalar = a.entries[2]
        #expect(a.stateShape("row_var", fc1) == [5] && a.stateShape("col_var", fc1) == [7])
        #expect(a.stateShape("row_var", conv) == [3, 2] && a.stateShape("col_var", conv) == [3, 4])
        #expect(a.stateShape("row_var", scalar) == [] && a.stateShape("variance", scalar) == [])
        // `variance` is used by tensors of rank < 2 only: a matrix keeps one unused float, not a full copy.
        let vector = a.entries[4]
        #expect(a.stateShape("variance", vector) == [3] && a.stateShape("row_var", vector) == [])
        #expect(a.stateShape("variance", conv) == [] && a.stateShape("variance", fc1) == [])
        #expect(a.slot("variance").count == a.entries.count * ParameterArena.alignmentFloats, "one aligned unit per tensor")
    }

    /// A checkpoint written while `variance` was a full-size slot for every tensor is refused,
    /// naming the slot, the tensor and both shapes, rather than loaded into the wrong places.
    @Test func anAdafactorCheckpointWithAFullSizeVarianceIsRefused() throws {
        let old = try ParameterArena(specs: Self.specs)
        old.slot("row_var", layout: .matrixRows)
        old.slot("col_var", layout: .matrixColumns)
        old.slot("variance")
        let dir = TempDir()
        let store = try CheckpointStore(runDirectory: dir.path)
        let path = try store.save(arena: old, slots: ["col_var", "row_var", "variance"],
                                  meta: CheckpointMeta(step: 1, epoch: 0, config: "", plugins: [:], runState: Data()))
        let e = try Self.adafactor(workers: 1)
        let error = #expect(throws: CheckpointError.self) { try store.load(path, into: e.arena, slots: e.plan.stateSlots) }
        #expect("\(error!)".contains("state slot 'variance' has shape [5, 7] for tensor 'fc1.weight'")
                && "\(error!)".contains("but [] in the arena (vector_elements state)"), "\(error!)")
    }

    /// 2N steps in one go equal N steps, a checkpoint, a fresh arena and engine (another worker
    /// count) restored from it, and N more: parameters and every state bit for bit.
    @Test func resumeThroughACheckpointIsBitIdentical() throws {
        try Self.checkResume(Self.engine)
    }

    @Test func adafactorResumesThroughACheckpointBitIdentically() throws {
        try Self.checkResume(Self.adafactor)
    }

    static func checkResume(_ engine: (_ workers: Int) throws -> UpdateEngine) throws {
        let whole = try engine(1)
        Self.steps(whole, 0..<8)

        let first = try engine(2)
        Self.steps(first, 0..<4)
        let dir = TempDir()
        let store = try CheckpointStore(runDirectory: dir.path)
        let meta = CheckpointMeta(step: 4, epoch: 0, config: "", plugins: [:], runState: Data())
        let path = try store.save(arena: first.arena, slots: first.plan.stateSlots, meta: meta)

        let second = try engine(3)
        _ = try store.load(path, into: second.arena, slots: second.plan.stateSlots)
        second.restore(step: 4)
        #expect(Self.bits(second) == Self.bits(first), "the checkpoint round trip")
        Self.steps(second, 4..<8)
        #expect(Self.bits(second) == Self.bits(whole))
        #expect(Self.bits(second) != Self.bits(try engine(1)), "the state moved")
    }

    @Test func aSlotOfAnotherLayoutIsAMismatch() throws {
        let e = try Self.engine(workers: 1)
        Self.steps(e, 0..<1)
        let dir = TempDir()
        let store = try CheckpointStore(runDirectory: dir.path)
        let path = try store.save(arena: e.arena, slots: e.plan.stateSlots,
                                  meta: CheckpointMeta(step: 1, epoch: 0, config: "", plugins: [:], runState: Data()))
        let other = try ParameterArena(specs: Self.specs)
        other.slot("probe.row_sq", layout: .columns)
        other.slot("probe.col_sum", layout: .columns)
        other.slot("probe.steps", layout: .scalar)
        let error = #expect(throws: CheckpointError.self) { try store.load(path, into: other, slots: e.plan.stateSlots) }
        #expect("\(error!)".contains("state slot 'probe.row_sq' has shape [5] for tensor 'fc1.weight'"), "\(error!)")
    }
}
