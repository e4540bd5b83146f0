/// Runs one optimizer step of an `UpdatePlan` over an arena, as one fixed pipeline per group
/// (docs/architecture.md has the picture and the reasons):
///
///  1. tensor phase before: per entry, its reduction over every tensor it covers (e.g. the
///     global gradient norm), then its per-tensor work (clipping), in configuration order;
///  2. the element-wise pass, piece by piece on all workers, fused in one kernel call:
///     coupled terms → the optimizer's direction → decoupled decay → apply → statistics;
///     element-wise regularizer passes follow on the same piece while it is in cache;
///  3. tensor phase after: constraints and proximal steps on whole tensors;
///  4. statistics: pieces whose weights a later pass changed are counted again, so the
///     report describes the weights the step leaves behind.
///
/// Every reduction runs in a fixed order (pieces, tensors), so results are bit-identical for
/// any number of workers.
public final class UpdateEngine {
    public let plan: UpdatePlan
    public let arena: ParameterArena
    public let kernels: KernelPath
    public let sharder: Sharder
    /// Steps done so far (t of the next step is `step + 1`).
    public private(set) var step = 0
    /// Whether the state holds a run's state already: set by the first update (after the
    /// start passes) and by `restore(step:)` (a checkpoint's state).
    public private(set) var stateInitialized = false

    /// What one step did, reduced in piece order (deterministic for any worker count).
    public struct StepReport {
        public var stats: StepStatistics
        /// Per group: statistics of its tensors.
        public var groupStats: [StepStatistics]
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
    private var pieceStats: [StepStatistics]
    /// Pass k's count for piece p at [k · pieces + p].
    private var pieceCounts: [Int64]
    /// Pieces of each tensor, in piece order.
    private let piecesOfTensor: [[Int]]

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
        for s in plan.stateDeclarations { arena.slot(s.name, initialValue: s.initialValue, layout: s.layout) }
        pieceStats = [StepStatistics](repeating: .zero, count: sharder.pieces.count)
        pieceCounts = []
        var byTensor = [[Int]](repeating: [], count: arena.entries.count)
        for p in sharder.pieces { byTensor[p.tensor].append(p.index) }
        piecesOfTensor = byTensor
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

    /// One configured entry's tensor pass this step: its tensors (of every group that lists
    /// the entry) with each group's pass and state, in tensor order.
    struct TensorPassRun {
        var key: String
        var metric: String
        var members: [(tensor: Int, pass: TensorPass, state: [String])] = []
    }

    /// The entries' tensor passes of a phase, in configuration order (first appearance).
    func tensorPasses(_ phase: TensorPhase, contexts: [StepContext]) -> [TensorPassRun] {
        var runs: [TensorPassRun] = []
        func add(_ key: String, metric: String, _ passes: [TensorPass], state: [String], tensors: [Int]) {
            for pass in passes where pass.phase == phase {
                let i = runs.firstIndex { $0.key == key } ?? { runs.append(TensorPassRun(key: key, metric: metric)); return runs.count - 1 }()
                runs[i].members += tensors.map { ($0, pass, state) }
            }
        }
        for (gi, g) in plan.groups.enumerated() {
            add(plan.spec.optimizer.key, metric: "\(g.optimizer.name).count", g.optimizer.tensorPasses(g.hyper, context: contexts[gi]),
                state: g.optimizer.state(g.hyper).map(\.name), tensors: g.tensors)
            for r in g.regularizers {
                add(r.key, metric: "\(r.plugin.name).\(r.plugin.metricName ?? "count")", r.plugin.tensorPasses(r.hyper, context: contexts[gi]),
                    state: r.plugin.state(r.hyper).map(\.name), tensors: g.tensors)
            }
        }
        for i in runs.indices { runs[i].members.sort { $0.tensor < $1.tensor } }
        return runs
    }

    /// Runs tensor passes: each entry's reduction (partials summed in tensor order), then its
    /// per-tensor work, tensors spread over the workers. Returns the tensors it ran on.
    func run(_ runs: [TensorPassRun], metrics: inout [String: Int64]) -> Set<Int> {
        var touched = Set<Int>()
        for run in runs {
            let data = run.members.map { m in tensorData(m.tensor, state: m.state) }
            var total = 0.0
            if run.members.contains(where: { $0.pass.partial != nil }) {
                var partials = [Double](repeating: 0, count: run.members.count)
                partials.withUnsafeMutableBufferPointer { out in
                    sharder.forEachIndex(run.members.count) { i in out[i] = run.members[i].pass.partial?(data[i]) ?? 0 }
                }
                for x in partials { total += x }
            }
            var counts = [Int64](repeating: -1, count: run.members.count)
            counts.withUnsafeMutableBufferPointer { out in
                sharder.forEachIndex(run.members.count) { i in out[i] = run.members[i].pass.apply(data[i], total) }
            }
            for c in counts where c >= 0 { metrics[run.metric, default: 0] += c }
            touched.formUnion(run.members.map(\.tensor))
        }
        return touched
    }

    func tensorData(_ t: Int, state: [String]) -> TensorData {
        let e = arena.entries[t]
        return TensorData(info: TensorInfo(index: t, spec: e.spec), weights: arena.view(arena.params, e),
                          gradients: arena.view(arena.grads, e), state: state.map { arena.stateView($0, e) })
    }

    /// Applies one update with the gradients in `arena.grads`.
    @discardableResult
    public func apply() -> StepReport {
        let groups = plan.groups
        let contexts = groups.indices.map { context(group: $0, afterSteps: step) }
        var metrics: [String: Int64] = [:]

        // 0. Once per fresh run: state from the starting weights. 1. Tensor phase before.
        if !stateInitialized { _ = run(tensorPasses(.start, contexts: contexts), metrics: &metrics) }
        stateInitialized = true
        _ = run(tensorPasses(.beforeUpdate, contexts: contexts), metrics: &metrics)

        // 2. The element-wise pass.
        var updates: [PieceUpdate] = []
        var tensorUpdates: [TensorUpdate?] = []
        var passes: [[(String, PiecePass)]] = []
        for (gi, g) in groups.enumerated() {
            let ctx = contexts[gi]
            let fused = g.regularizers.reduce(FusedRegularization()) { $0 + $1.plugin.fused($1.hyper, context: ctx) }
            let whole = g.optimizer.tensorUpdate(g.hyper, context: ctx, regularization: fused)
            tensorUpdates.append(whole)
            updates.append(whole == nil ? g.optimizer.update(g.hyper, context: ctx, regularization: fused, arena: arena, kernels: kernels)
                                        : { _ in .zero })
            passes.append(g.regularizers.compactMap { r in
                r.plugin.pass(r.hyper, context: ctx, arena: arena).map { ("\(r.plugin.name).\(r.plugin.metricName ?? "count")", $0) }
            })
        }
        let maxPasses = passes.map(\.count).max() ?? 0
        let n = sharder.pieces.count
        if pieceCounts.count != maxPasses * n { pieceCounts = [Int64](repeating: 0, count: maxPasses * n) }
        let groupOf = plan.groupOfTensor
        let w = arena.params.base
        pieceStats.withUnsafeMutableBufferPointer { out in
            pieceCounts.withUnsafeMutableBufferPointer { counts in
                sharder.forEachPiece { p in
                    let g = groupOf[p.tensor]
                    guard tensorUpdates[g] == nil else { return }
                    out[p.index] = updates[g](p)
                    guard !passes[g].isEmpty else { return }
                    for (k, pass) in passes[g].enumerated() { counts[k * n + p.index] = pass.1(p) }
                    Self.recount(&out[p.index], w, p)
                }
            }
        }
        // Groups of a TensorOptimizer: one tensor per call, then their pieces' element-wise
        // passes and statistics in piece order.
        let wholeTensors = arena.entries.indices.filter { tensorUpdates[groupOf[$0]] != nil }
        if !wholeTensors.isEmpty {
            let stateNames = groups.map { g in g.optimizer.state(g.hyper).map(\.name) }
            let data = wholeTensors.map { tensorData($0, state: stateNames[groupOf[$0]]) }
            sharder.forEachIndex(wholeTensors.count) { i in tensorUpdates[groupOf[wholeTensors[i]]]!(data[i]) }
            let pieces = wholeTensors.flatMap { piecesOfTensor[$0] }
            let gradients = arena.grads.base
            pieceStats.withUnsafeMutableBufferPointer { out in
                pieceCounts.withUnsafeMutableBufferPointer { counts in
                    sharder.forEachIndex(pieces.count) { i in
                        let p = sharder.pieces[pieces[i]], g = groupOf[p.tensor]
                        for (k, pass) in passes[g].enumerated() { counts[k * n + p.index] = pass.1(p) }
                        var s = StepStatistics.zero
                        for j in p.offset..<(p.offset + p.count) { s.count(gradient: gradients[j], weight: w[j]) }
                        out[p.index] = s
                    }
                }
            }
        }

        // 3. Tensor phase after, and 4. the statistics of the weights it changed.
        let changed = run(tensorPasses(.afterUpdate, contexts: contexts), metrics: &metrics)
        if !changed.isEmpty {
            let pieces = changed.sorted().flatMap { piecesOfTensor[$0] }
            pieceStats.withUnsafeMutableBufferPointer { out in
                sharder.forEachIndex(pieces.count) { i in
                    let p = sharder.pieces[pieces[i]]
                    Self.recount(&out[p.index], w, p)
                }
            }
        }

        var report = StepReport(stats: .zero, groupStats: Array(repeating: .zero, count: groups.count),
                                passMetrics: metrics, eta: plan.schedule.multiplier(at: scheduleTime(afterSteps: step)),
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

    /// Counts a piece's weights again after a pass changed them (the gradient count stays).
    static func recount(_ s: inout StepStatistics, _ w: UnsafeMutablePointer<Float>, _ p: Sharder.Piece) {
        var fresh = StepStatistics(nonfiniteGradients: s.nonfiniteGradients)
        for i in p.offset..<(p.offset + p.count) { fresh.count(weight: w[i]) }
        s = fresh
    }

    /// Restores the step counter with the state of a checkpoint (the start passes never run).
    public func restore(step: Int) {
        self.step = step
        stateInitialized = true
    }

    /// Counts a step that made no update (a skipped batch): the schedule stays aligned with the data.
    public func skipStep() { step += 1 }

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
                if let v = r.plugin.penalty(r.hyper, sumSquares: sq, sumAbs: abs1) {
                    out.append(("\(g.name)/\(r.plugin.name)", v))
                } else {
                    let perTensor = g.tensors.map { t in
                        r.plugin.penalty(r.hyper, tensor: TensorInfo(index: t, spec: arena.entries[t].spec),
                                         weights: UnsafeBufferPointer(arena.view(arena.params, arena.entries[t])))
                    }
                    if perTensor.allSatisfy({ $0 != nil }), !perTensor.isEmpty {
                        out.append(("\(g.name)/\(r.plugin.name)", perTensor.reduce(0) { $0 + $1! }))
                    }
                }
            }
        }
        return out
    }
}
