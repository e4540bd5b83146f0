import CDecoupledKernels

/// Runs one optimizer step of an `UpdatePlan` over an arena: per group the optimizer's
/// kernel with its fused regularization, then any regularizer passes on the same chunk,
/// all sharded over workers. The fixed pipeline per element is documented in docs/kernels.md.
public final class UpdateEngine {
    public let plan: UpdatePlan
    public let arena: ParameterArena
    public let kernels: KernelPath
    public let sharder: Sharder
    /// Steps done so far (t of the next step is `step + 1`).
    public private(set) var step = 0

    /// What one step did, reduced in piece order (deterministic for any worker count).
    public struct StepReport {
        public var stats: dc_step_stats
        /// Per group: statistics of its tensors.
        public var groupStats: [dc_step_stats]
        /// Counts reported by regularizer passes, by "plugin.metric" name.
        public var passMetrics: [String: Int64]
        public var eta: Double
        public var lr: Double
    }

    /// Training-size information for normalized decay, and how schedule time is measured.
    public struct Timing {
        public var stepsPerEpoch: Int?
        public var batchSize: Int?
        public var trainingSize: Int?
        /// The run's length in epochs (T of normalized decay when the schedule has no period).
        public var totalEpochs: Double?

        public init(stepsPerEpoch: Int? = nil, batchSize: Int? = nil, trainingSize: Int? = nil, totalEpochs: Double? = nil) {
            self.stepsPerEpoch = stepsPerEpoch
            self.batchSize = batchSize
            self.trainingSize = trainingSize
            self.totalEpochs = totalEpochs
        }
    }

    public var timing: Timing
    private var pieceStats: [dc_step_stats]
    /// Pass k's count for piece p at [k · pieces + p].
    private var pieceCounts: [Int64]

    public init(plan: UpdatePlan, arena: ParameterArena, kernels: KernelPath, workers: Int? = nil,
                chunkElements: Int = Sharder.defaultChunkElements, timing: Timing = Timing()) throws {
        guard plan.tensorSpecs == arena.entries.map(\.spec) else {
            throw PluginError.invalid(key: "plan", message: "was resolved for other tensors than the arena holds")
        }
        if plan.spec.schedule.unit == .epoch && timing.stepsPerEpoch == nil {
            throw PluginError.invalid(key: "schedule.unit", message: "\"epoch\" needs the number of steps per epoch; use unit = \"step\" here")
        }
        self.plan = plan
        self.arena = arena
        self.kernels = kernels
        self.timing = timing
        self.sharder = Sharder(arena: arena, chunkElements: chunkElements, workers: workers)
        for s in plan.stateSlots { arena.slot(s) }
        pieceStats = [dc_step_stats](repeating: .zero, count: sharder.pieces.count)
        pieceCounts = []
    }

    /// Schedule time before update number `step` (0-based), in the schedule's unit.
    public func scheduleTime(afterSteps done: Int) -> Double {
        switch plan.spec.schedule.unit {
        case .step: return Double(done)
        case .epoch: return Double(done) / Double(timing.stepsPerEpoch!)
        }
    }

    /// The step context of group `g` for the next update.
    public func context(group g: Int, afterSteps done: Int) -> StepContext {
        let time = scheduleTime(afterSteps: done)
        let eta = plan.schedule.multiplier(at: time)
        let group = plan.groups[g]
        var period = plan.schedule.period(at: time)
        var periodSteps: Double?
        if let p = period, plan.spec.schedule.unit == .step {
            periodSteps = p
            period = timing.stepsPerEpoch.map { p / Double($0) }
        }
        var c = StepContext(step: done + 1, eta: eta, lr: group.baseLR * group.lrMultiplier * eta,
                            batchSize: timing.batchSize, trainingSize: timing.trainingSize,
                            periodEpochs: period ?? timing.totalEpochs)
        c.periodSteps = periodSteps
        return c
    }

    /// Applies one update with the gradients in `arena.grads`.
    @discardableResult
    public func apply() -> StepReport {
        let groups = plan.groups
        var updates: [PieceUpdate] = []
        var passes: [[(String, PiecePass)]] = []
        for (gi, g) in groups.enumerated() {
            let ctx = context(group: gi, afterSteps: step)
            let fused = g.regularizers.reduce(FusedRegularization()) { $0 + $1.plugin.fused($1.hyper, context: ctx) }
            updates.append(g.optimizer.update(g.hyper, context: ctx, regularization: fused, arena: arena, kernels: kernels))
            passes.append(g.regularizers.compactMap { r in
                r.plugin.pass(r.hyper, context: ctx, arena: arena).map { ("\(r.plugin.name).\(r.plugin.metricName ?? "count")", $0) }
            })
        }
        let maxPasses = passes.map(\.count).max() ?? 0
        let n = sharder.pieces.count
        if pieceCounts.count != maxPasses * n { pieceCounts = [Int64](repeating: 0, count: maxPasses * n) }
        let groupOf = plan.groupOfTensor
        pieceStats.withUnsafeMutableBufferPointer { out in
            pieceCounts.withUnsafeMutableBufferPointer { counts in
                sharder.forEachPiece { p in
                    let g = groupOf[p.tensor]
                    out[p.index] = updates[g](p)
                    for (k, pass) in passes[g].enumerated() { counts[k * n + p.index] = pass.1(p) }
                }
            }
        }
        var report = StepReport(stats: .zero, groupStats: Array(repeating: .zero, count: groups.count),
                                passMetrics: [:], eta: plan.schedule.multiplier(at: scheduleTime(afterSteps: step)),
                                lr: groups.first.map { $0.baseLR } ?? 0)
        report.lr *= report.eta
        for p in sharder.pieces {
            report.stats.accumulate(pieceStats[p.index])
            report.groupStats[groupOf[p.tensor]].accumulate(pieceStats[p.index])
            for (k, pass) in passes[groupOf[p.tensor]].enumerated() {
                report.passMetrics[pass.0, default: 0] += max(0, pieceCounts[k * n + p.index])
            }
        }
        step += 1
        return report
    }

    /// Restores the step counter (from a checkpoint).
    public func restore(step: Int) { self.step = step }

    /// Each coupled regularizer's term in the loss, by "group/plugin" (an extra pass over the
    /// weights; call it at metric cadence, not every step).
    public func penalties() -> [(name: String, value: Double)] {
        var out: [(String, Double)] = []
        for g in plan.groups where !g.regularizers.isEmpty {
            var sq = 0.0, abs1 = 0.0
            for t in g.tensors {
                for x in arena.view(arena.params, arena.entries[t]) {
                    let d = Double(x)
                    sq += d * d
                    abs1 += Swift.abs(d)
                }
            }
            for r in g.regularizers {
                if let v = r.plugin.penalty(r.hyper, sumSquares: sq, sumAbs: abs1) { out.append(("\(g.name)/\(r.plugin.name)", v)) }
            }
        }
        return out
    }
}
