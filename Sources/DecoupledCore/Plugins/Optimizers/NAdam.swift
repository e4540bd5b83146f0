import Foundation

/// NAdam as `torch.optim.NAdam` computes it (`_single_tensor_nadam`), with momentum decay:
///
///     μ_t = β1·(1 − ½·0.96^(t·ψ)),  Π_t = Π_{t−1}·μ_t (float32, as PyTorch's state)
///     m ← lerp(m, g, 1 − β1);  v ← β2·v + (1 − β2)·g²;  d = √(v/(1 − β2ᵗ)) + ε
///     w ← w − lr·(1 − μ_t)/(1 − Π_t)·g/d − lr·μ_{t+1}/(1 − Π_t·μ_{t+1})·m/d
///
/// PyTorch's `decoupled_weight_decay = true` (NAdamW) is the pytorch convention's
/// `decoupled_weight_decay` (docs/config.md), not a hyper-parameter of the direction.
public final class NAdamOptimizer: ElementwiseOptimizer {
    public let name = "nadam"
    public let version = "1.0.0"
    public let kind = PluginKind.optimizer
    public let summary = "NAdam: Adam with Nesterov momentum and momentum decay (torch.optim.NAdam semantics)"
    public let hyperParameters: [HyperParameterSpec] = [
        .learningRate(2e-3),
    ] + HyperParameterSpec.adamMoments(eps: 1e-8) + [
        .init("momentum_decay", .number(0...Double.infinity), default: .number(4e-3), "ψ in μ_t = β1·(1 − ½·0.96^(t·ψ))"),
    ]

    public init() {}

    public func state(_ hp: HyperValues) -> [StateDeclaration] { AdamMoments.declarations }

    /// The per-step scalars of one group, and the step of one element.
    public struct Coefficients: ElementStep {
        let moments: AdamMoments
        let gradScale, avgScale, bc2, eps: Float

        public init(_ hp: HyperValues, context: StepContext) {
            let b1 = hp.number("beta1"), psi = hp.number("momentum_decay"), t = Double(context.step)
            func mu(_ s: Double) -> Double { b1 * (1 - 0.5 * pow(0.96, s * psi)) }
            // PyTorch keeps Π_t in a float32 tensor: each factor is multiplied in float32.
            var product: Float = 1
            for s in 1...context.step { product = product * Float(mu(Double(s))) }
            let piT = Double(product), next = mu(t + 1)
            gradScale = Float(context.lr * (1 - mu(t)) / (1 - piT))
            avgScale = Float(context.lr * next / (1 - piT * next))
            moments = AdamMoments(hp)
            bc2 = Float(1 - pow(hp.number("beta2"), t))
            eps = Float(hp.number("eps"))
        }

        @inline(__always)
        public func step(g: Float, w: Float, state: ElementState) -> Float {
            let (m, v) = moments.update(g, state)
            let d = (v / bc2).squareRoot() + eps
            return gradScale * g / d + avgScale * m / d
        }
    }
}
