import CDecoupledKernels
import Foundation

/// Adafactor as `torch.optim.Adafactor` computes it (`_single_tensor_adafactor`, torch ≥ 2.5):
///
///     β̂2 = t^beta2_decay;  ρ = min(lr_t, 1/√t);  α = max(ε2, RMS(w))·ρ
///     ≥ 2-D, over the last two dimensions (R rows, C columns):
///         r ← lerp(r, mean_c g², β̂2);  c ← lerp(c, mean_r g², β̂2);  v̂ = r·c / max(mean_r r, ε1)
///     1-D: v ← lerp(v, g², β̂2);  v̂ = v
///     u = g / √max(v̂, ε1²);  w ← w − α / max(1, RMS(u)/d) · u
///
/// PyTorch's `weight_decay` is decoupled, w ← w(1 − lr_t λ) (RMS(w) read before it), and so
/// is this optimizer's under the pytorch convention (`Convention.weightDecay`); an `l2`
/// regularizer adds a coupled term (PyTorch has none).
///
/// What the current plugin API lacks, and how this file works around it: a per-tensor phase
/// (RMS(w), the row and column means of g², RMS(u) all need the whole tensor before any
/// element moves) and per-row/column state. `update` runs the tensor phase serially over every
/// tensor of the arena (an optimizer does not learn its group's tensors) and keeps the factored
/// row and column statistics in the first B·R and B·C floats of the per-element slots
/// `row_var` and `col_var` at the tensor's offset (B: the product of the leading dimensions);
/// the rest of those slots stays zero. Checkpoints and replays carry them like any slot.
public final class AdafactorOptimizer: OptimizerPlugin {
    public let name = "adafactor"
    public let version = "1.0.0"
    public let kind = PluginKind.optimizer
    public let summary = "Adafactor: factored second moment for ≥2-D tensors (torch.optim.Adafactor semantics)"
    public let hyperParameters: [HyperParameterSpec] = [
        .learningRate(1e-2),
        .init("beta2_decay", .number(-Double.infinity...0), default: .number(-0.8), "β̂2 = t^beta2_decay"),
        .init("eps1", .number(0...Double.infinity), default: .number(Double(Float.ulpOfOne)),
              "ε1: floor of the variance estimate (PyTorch's eps[0]; None there = float32 machine ε, the default)"),
        .init("eps2", .number(0...Double.infinity), default: .number(1e-3), "ε2: floor of RMS(w) in the step size"),
        .init("d", .number(1...Double.infinity), default: .number(1), "clipping threshold of RMS(u) (≥ 1, as PyTorch requires)"),
    ]

    public init() {}

    public func stateSlots(_ hp: HyperValues) -> [String] { ["row_var", "col_var", "variance"] }

    /// One tensor's factorization: B leading blocks of R×C (factored), or none (1-D, 0-D).
    struct Layout {
        let blocks, rows, cols: Int
        let factored: Bool
        init(_ shape: [Int]) {
            factored = shape.count >= 2
            rows = factored ? shape[shape.count - 2] : 1
            cols = factored ? shape[shape.count - 1] : 1
            blocks = factored ? shape.dropLast(2).reduce(1, *) : 1
        }
    }

    public func update(_ hp: HyperValues, context: StepContext, regularization: FusedRegularization,
                       arena: ParameterArena, kernels: KernelPath) -> PieceUpdate {
        let t = Double(context.step)
        let oneMinusBeta2 = Float(pow(t, hp.number("beta2_decay")))
        let rho = min(context.lr, 1 / t.squareRoot())
        let eps1 = Float(hp.number("eps1")), eps2 = hp.number("eps2"), d = hp.number("d")
        let reg = regularization.kernelTerms
        let w = arena.params.base, g = arena.grads.base
        let rowVar = arena.slot("row_var").base, colVar = arena.slot("col_var").base, variance = arena.slot("variance").base

        @inline(__always) func coupled(_ i: Int) -> Float {
            let sign: Float = (w[i] > 0 ? 1 : 0) - (w[i] < 0 ? 1 : 0)
            return (g[i] + reg.l2 * w[i]) + reg.l1 * sign
        }
        /// This step's factored statistics of one tensor: rows [B·R], columns [B·C], and
        /// max(mean of the rows, ε1) per block.
        struct Factors {
            var rows: [Float] = [], cols: [Float] = [], meanOfRows: [Float] = []
        }

        /// u of element i of tensor e (1-D: from the variance as this step leaves it, not stored).
        @inline(__always) func direction(_ i: Int, _ e: ParameterArena.Entry, _ l: Layout, _ f: Factors) -> Float {
            let x = coupled(i)
            let v: Float
            if l.factored {
                let j = i - e.offset, b = j / (l.rows * l.cols), r = (j / l.cols) % l.rows, c = j % l.cols
                v = f.rows[b * l.rows + r] * f.cols[b * l.cols + c] / f.meanOfRows[b]
            } else {
                v = torchLerp(variance[i], x * x, oneMinusBeta2)
            }
            return (1 / max(v, eps1 * eps1).squareRoot()) * x
        }

        // The tensor phase, read-only (every group's `update` runs it over the whole arena):
        // this step's factored statistics, then each tensor's step scale α/denom. A tensor's
        // first piece stores its statistics; no piece reads the slots after this phase.
        var scales: [Float] = []
        var factors: [Factors] = []
        for e in arena.entries {
            let n = e.count, o = e.offset, l = Layout(e.spec.shape)
            var ww = 0.0
            for i in e.range { ww += Double(w[i]) * Double(w[i]) }
            let alpha = max(eps2, Double(Float(ww.squareRoot())) / Double(n).squareRoot()) * rho
            var f = Factors()
            if l.factored {
                f.rows = Array(UnsafeBufferPointer(start: rowVar + o, count: l.blocks * l.rows))
                f.cols = Array(UnsafeBufferPointer(start: colVar + o, count: l.blocks * l.cols))
                for b in 0..<l.blocks {
                    let base = o + b * l.rows * l.cols
                    var rowSum: Float = 0
                    for r in 0..<l.rows {
                        var s: Float = 0
                        for c in 0..<l.cols { let x = coupled(base + r * l.cols + c); s += x * x }
                        let k = b * l.rows + r
                        f.rows[k] = torchLerp(f.rows[k], s / Float(l.cols), oneMinusBeta2)
                        rowSum += f.rows[k]
                    }
                    for c in 0..<l.cols {
                        var s: Float = 0
                        for r in 0..<l.rows { let x = coupled(base + r * l.cols + c); s += x * x }
                        let k = b * l.cols + c
                        f.cols[k] = torchLerp(f.cols[k], s / Float(l.rows), oneMinusBeta2)
                    }
                    f.meanOfRows.append(max(rowSum / Float(l.rows), eps1))
                }
            }
            factors.append(f)
            var uu = 0.0
            for i in e.range {
                let u = direction(i, e, l, f)
                uu += Double(u) * Double(u)
            }
            let denom = max(1, Double(Float(uu.squareRoot())) / (Double(n).squareRoot() * d))
            scales.append(Float(-alpha / denom))
        }

        let keep = reg.decay_keep
        let layouts = arena.entries.map { Layout($0.spec.shape) }
        return { p in
            let e = arena.entries[p.tensor], l = layouts[p.tensor], scale = scales[p.tensor], f = factors[p.tensor]
            if l.factored && p.offset == e.offset {
                (rowVar + e.offset).update(from: f.rows, count: f.rows.count)
                (colVar + e.offset).update(from: f.cols, count: f.cols.count)
            }
            var stats = dc_step_stats.zero
            for i in p.offset..<(p.offset + p.count) {
                let u = direction(i, e, l, f)
                if !l.factored { variance[i] = torchLerp(variance[i], coupled(i) * coupled(i), oneMinusBeta2) }
                let w1 = w[i] * keep + scale * u
                w[i] = w1
                if !g[i].isFinite { stats.nonfinite_grads += 1 }
                if w1 == 0 { stats.zero_params += 1 }
                stats.param_sumsq += Double(w1) * Double(w1)
            }
            return stats
        }
    }
}
