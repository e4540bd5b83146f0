import Foundation

/// RAdam as `torch.optim.RAdam` computes it (`_single_tensor_radam`):
///
///     m ← lerp(m, g, 1 − β1);  v ← β2·v + (1 − β2)·g²;  m̂ = m/(1 − β1ᵗ)
///     ρ∞ = 2/(1 − β2) − 1,  ρ_t = ρ∞ − 2t·β2ᵗ/(1 − β2ᵗ)
///     ρ_t > 5: w ← w − lr·m̂·√(1 − β2ᵗ)/(√v + ε)·r_t,  r_t = √((ρ_t−4)(ρ_t−2)ρ∞ / ((ρ∞−4)(ρ∞−2)ρ_t))
///     else:    w ← w − lr·m̂
///
/// PyTorch's `decoupled_weight_decay = true` (RAdamW) is the pytorch convention's
/// `decoupled_weight_decay` (docs/config.md).
public final class RAdamOptimizer: ElementwiseOptimizer {
    public let name = "radam"
    public let version = "1.0.0"
    public let kind = PluginKind.optimizer
    public let summary = "RAdam: Adam with a rectified warm-up of the adaptive step (torch.optim.RAdam semantics)"
    public let hyperParameters: [HyperParameterSpec] = [
        .learningRate(1e-3),
    ] + HyperParameterSpec.adamMoments(eps: 1e-8, epsDoc: "ε added to √v")

    public init() {}

    public func state(_ hp: HyperValues) -> [StateDeclaration] { AdamMoments.declarations }

    /// The per-step scalars of one group, and the step of one element.
    public struct Coefficients: ElementStep {
        let moments: AdamMoments
        let lr, bc1, sqrtBC2, eps, rect: Float
        let rectified: Bool

        public init(_ hp: HyperValues, context: StepContext) {
            let b1 = hp.number("beta1"), b2 = hp.number("beta2"), t = Double(context.step)
            let bc2 = 1 - pow(b2, t)
            let rhoInf = 2 / (1 - b2) - 1
            let rhoT = rhoInf - 2 * t * pow(b2, t) / bc2
            rectified = rhoT > 5
            rect = rectified ? Float(((rhoT - 4) * (rhoT - 2) * rhoInf / ((rhoInf - 4) * (rhoInf - 2) * rhoT)).squareRoot()) : 1
            lr = Float(context.lr)
            moments = AdamMoments(hp)
            bc1 = Float(1 - pow(b1, t))
            sqrtBC2 = Float(bc2.squareRoot())
            eps = Float(hp.number("eps"))
        }

        @inline(__always)
        public func step(g: Float, w: Float, state: ElementState) -> Float {
            let (m, v) = moments.update(g, state)
            let corrected = m / bc1 * lr
            guard rectified else { return corrected }
            return corrected * (sqrtBC2 / (v.squareRoot() + eps)) * rect
        }
    }
}
