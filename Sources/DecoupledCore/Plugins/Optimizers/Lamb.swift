import CDecoupledKernels
import Foundation

/// LAMB as `optax.lamb` computes it (You et al. 2020): Adam's bias-corrected direction plus
/// the decoupled decay, rescaled per tensor by the trust ratio ‖w‖/‖u‖:
///
///     m ← β1·m + (1 − β1)·g;  v ← β2·v + (1 − β2)·g²
///     u = m̂/(√(v̂ + ε_root) + ε) + λ·w
///     w ← w − lr·(‖w‖/‖u‖)·u          (ratio 1 when ‖w‖ or ‖u‖ is 0)
///
/// The decoupled decay belongs to u, inside the ratio: a group's decay s_t·λ enters as
/// λ = s_t·λ/lr_t (the decay per unit of lr_t, λ itself for scale = lr).
///
/// The trust ratio needs a tensor's whole update before any element moves, and the current
/// plugin API has no tensor phase: `update` computes every tensor's ‖w‖ and ‖u‖ in one serial,
/// read-only pass (over the whole arena, since an optimizer does not learn its group's
/// tensors), then the pieces apply the element-wise step with their tensor's ratio.
public final class LambOptimizer: OptimizerPlugin {
    public let name = "lamb"
    public let version = "1.0.0"
    public let kind = PluginKind.optimizer
    public let summary = "LAMB: Adam direction with a per-tensor trust ratio ‖w‖/‖u‖ (optax.lamb semantics)"
    public let hyperParameters: [HyperParameterSpec] = [
        .learningRate(1e-3),
    ] + HyperParameterSpec.adamMoments(eps: 1e-6) + [
        .init("eps_root", .number(0...Double.infinity), default: .number(0), "ε_root added to v̂ inside the root"),
    ]

    public init() {}

    public func stateSlots(_ hp: HyperValues) -> [String] { ["exp_avg", "exp_avg_sq"] }

    struct Scalars {
        let oneMinusBeta1, beta1, oneMinusBeta2, beta2, bc1, bc2, eps, epsRoot, decay: Float
        let reg: dc_reg_terms

        /// u for one element, and the moments it leaves.
        @inline(__always)
        func direction(w: Float, g raw: Float, m: Float, v: Float) -> (u: Float, m: Float, v: Float) {
            let sign: Float = (w > 0 ? 1 : 0) - (w < 0 ? 1 : 0)
            let g = (raw + reg.l2 * w) + reg.l1 * sign
            let m1 = oneMinusBeta1 * g + beta1 * m
            let v1 = oneMinusBeta2 * (g * g) + beta2 * v
            return ((m1 / bc1) / ((v1 / bc2 + epsRoot).squareRoot() + eps) + decay * w, m1, v1)
        }
    }

    public func update(_ hp: HyperValues, context: StepContext, regularization: FusedRegularization,
                       arena: ParameterArena, kernels: KernelPath) -> PieceUpdate {
        // Bias corrections in float32 from float32 β, as optax computes them (1 − β^count).
        let b1 = hp.number("beta1"), b2 = hp.number("beta2"), t = context.step
        let insideRatio = context.lr > 0 ? regularization.decay / context.lr : 0
        let outside = FusedRegularization(l2: regularization.l2, l1: regularization.l1,
                                          decay: context.lr > 0 ? 0 : regularization.decay)
        let s = Scalars(oneMinusBeta1: Float(1 - b1), beta1: Float(b1), oneMinusBeta2: Float(1 - b2), beta2: Float(b2),
                        bc1: 1 - powf(Float(b1), Float(t)), bc2: 1 - powf(Float(b2), Float(t)), eps: Float(hp.number("eps")),
                        epsRoot: Float(hp.number("eps_root")), decay: Float(insideRatio), reg: outside.kernelTerms)
        let w = arena.params.base, g = arena.grads.base
        let m = arena.slot("exp_avg").base, v = arena.slot("exp_avg_sq").base
        let ratios: [Float] = arena.entries.map { e in
            var ww = 0.0, uu = 0.0
            for i in e.range {
                let u = s.direction(w: w[i], g: g[i], m: m[i], v: v[i]).u
                ww += Double(w[i]) * Double(w[i])
                uu += Double(u) * Double(u)
            }
            return ww == 0 || uu == 0 ? 1 : Float(ww.squareRoot() / uu.squareRoot())
        }
        let lr = Float(context.lr), keep = s.reg.decay_keep
        return { p in
            let scale = lr * ratios[p.tensor]
            var stats = dc_step_stats.zero
            for i in p.offset..<(p.offset + p.count) {
                let (u, m1, v1) = s.direction(w: w[i], g: g[i], m: m[i], v: v[i])
                m[i] = m1
                v[i] = v1
                let w1 = w[i] * keep - scale * u
                w[i] = w1
                if !g[i].isFinite { stats.nonfinite_grads += 1 }
                if w1 == 0 { stats.zero_params += 1 }
                stats.param_sumsq += Double(w1) * Double(w1)
            }
            return stats
        }
    }
}
