import Foundation

/// Adamax as `torch.optim.Adamax` computes it (`_single_tensor_adamax`):
///
///     m ← lerp(m, g, 1 − β1)
///     u ← max(β2·u, |g| + ε)
///     w ← w − lr/(1 − β1ᵗ) · m/u
public final class AdamaxOptimizer: ElementwiseOptimizer {
    public let name = "adamax"
    public let version = "1.0.0"
    public let kind = PluginKind.optimizer
    public let summary = "Adamax: Adam with the infinity norm (torch.optim.Adamax semantics)"
    public let hyperParameters: [HyperParameterSpec] = [
        .learningRate(2e-3),
    ] + HyperParameterSpec.adamMoments(eps: 1e-8, beta2Doc: "decay β2 of the infinity norm", epsDoc: "ε added to |g|")

    public init() {}

    public func state(_ hp: HyperValues) -> [StateDeclaration] { [StateDeclaration("exp_avg"), StateDeclaration("exp_inf")] }

    /// The per-step scalars of one group, and the step of one element.
    public struct Coefficients: ElementStep {
        let clr, oneMinusBeta1, beta2, eps: Float

        public init(_ hp: HyperValues, context: StepContext) {
            clr = Float(context.lr / (1 - pow(hp.number("beta1"), Double(context.step))))
            oneMinusBeta1 = Float(1 - hp.number("beta1"))
            beta2 = Float(hp.number("beta2"))
            eps = Float(hp.number("eps"))
        }

        @inline(__always)
        public func step(g: Float, w: Float, state: ElementState) -> Float {
            let m = torchLerp(state[0], g, oneMinusBeta1)
            // max(u·β2, |g| + ε) as the fused kernel's vmax_keep selects it (Swift's `max` picks
            // the second operand on a tie, which differs only for −0 against +0).
            let decayed = state[1] * beta2, norm = abs(g) + eps
            let u = norm > decayed ? norm : decayed
            state[0] = m
            state[1] = u
            return clr * m / u
        }
    }
}
