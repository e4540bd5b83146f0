import Foundation

/// LAMB as `optax.lamb` computes it (You et al. 2020): Adam's bias-corrected direction plus
/// the decoupled decay, rescaled per tensor by the trust ratio ‖w‖/‖u‖:
///
///     m ← β1·m + (1 − β1)·g;  v ← β2·v + (1 − β2)·g²
///     u = m̂/(√(v̂ + ε_root) + ε) + λ·w
///     w ← w − lr·(‖w‖/‖u‖)·u          (ratio 1 when ‖w‖ or ‖u‖ is 0)
///
/// The decoupled decay belongs to u, inside the ratio: a group's decay s_t·λ enters as
/// λ = s_t·λ/lr_t (the decay per unit of lr_t, λ itself for scale = lr), and the engine gets
/// only the coupled terms (and the decay itself when lr_t = 0, where no ratio can carry it).
/// The trust ratio needs the tensor's whole u, so this is a `TensorOptimizer`.
public final class LambOptimizer: TensorOptimizer {
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

    public func state(_ hp: HyperValues) -> [StateDeclaration] { AdamMoments.declarations }

    public struct Coefficients {
        let oneMinusBeta1, beta1, oneMinusBeta2, beta2, bc1, bc2, eps, epsRoot, lr: Float
        /// λ of u = … + λ·w: the group's decoupled decay per unit of lr_t.
        let decay: Float
    }

    /// The scalars without decay inside the ratio (`tensorUpdate` supplies the group's).
    public func coefficients(_ hp: HyperValues, context: StepContext) -> Coefficients {
        coefficients(hp, context: context, decay: 0)
    }

    func coefficients(_ hp: HyperValues, context: StepContext, decay: Double) -> Coefficients {
        // Bias corrections in float32 from float32 β, as optax computes them (1 − β^count).
        let b1 = hp.number("beta1"), b2 = hp.number("beta2"), t = context.step
        return Coefficients(oneMinusBeta1: Float(1 - b1), beta1: Float(b1), oneMinusBeta2: Float(1 - b2), beta2: Float(b2),
                            bc1: 1 - powf(Float(b1), Float(t)), bc2: 1 - powf(Float(b2), Float(t)),
                            eps: Float(hp.number("eps")), epsRoot: Float(hp.number("eps_root")), lr: Float(context.lr),
                            decay: Float(decay))
    }

    /// Moves the group's decoupled decay into u (inside the trust ratio); the engine keeps
    /// the coupled terms.
    public func tensorUpdate(_ hp: HyperValues, context: StepContext, regularization: FusedRegularization) -> TensorUpdate? {
        let inside = context.lr > 0 ? regularization.decay / context.lr : 0
        let outside = FusedRegularization(l2: regularization.l2, l1: regularization.l1,
                                          decay: context.lr > 0 ? 0 : regularization.decay)
        return wholeTensorUpdate(coefficients(hp, context: context, decay: inside), regularization: outside)
    }

    public func direction(_ c: Coefficients, tensor: TensorData, gradient g: UnsafeBufferPointer<Float>,
                          direction d: UnsafeMutableBufferPointer<Float>) {
        let w = tensor.weights, m = tensor.state[0], v = tensor.state[1]
        var ww = 0.0, uu = 0.0
        for i in 0..<tensor.info.count {
            let m1 = c.oneMinusBeta1 * g[i] + c.beta1 * m[i]
            let v1 = c.oneMinusBeta2 * (g[i] * g[i]) + c.beta2 * v[i]
            m[i] = m1
            v[i] = v1
            let u = (m1 / c.bc1) / ((v1 / c.bc2 + c.epsRoot).squareRoot() + c.eps) + c.decay * w[i]
            d[i] = u
            ww += Double(w[i]) * Double(w[i])
            uu += Double(u) * Double(u)
        }
        let ratio: Float = ww == 0 || uu == 0 ? 1 : Float(ww.squareRoot() / uu.squareRoot())
        let scale = c.lr * ratio
        for i in 0..<tensor.info.count { d[i] = scale * d[i] }
    }
}
