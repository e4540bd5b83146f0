/// Adadelta as `torch.optim.Adadelta` computes it (`_single_tensor_adadelta`):
///
///     v ← ρ·v + (1 − ρ)·g²
///     δ = √(u + ε) / √(v + ε) · g
///     u ← ρ·u + (1 − ρ)·δ²
///     w ← w − lr·δ
public final class AdadeltaOptimizer: ElementwiseOptimizer {
    public let name = "adadelta"
    public let version = "1.0.0"
    public let kind = PluginKind.optimizer
    public let summary = "Adadelta: steps scaled by the RMS of past steps (torch.optim.Adadelta semantics)"
    public let hyperParameters: [HyperParameterSpec] = [
        .learningRate(1.0),
        .init("rho", .number(0...1), default: .number(0.9), "decay ρ of both running averages"),
        .init("eps", .number(0...Double.infinity), default: .number(1e-6), "ε inside both roots"),
    ]

    public init() {}

    public func state(_ hp: HyperValues) -> [StateDeclaration] { [StateDeclaration("square_avg"), StateDeclaration("acc_delta")] }

    /// The per-step scalars of one group, and the step of one element.
    public struct Coefficients: ElementStep {
        let lr, rho, oneMinusRho, eps: Float

        public init(_ hp: HyperValues, context: StepContext) {
            lr = Float(context.lr)
            rho = Float(hp.number("rho"))
            oneMinusRho = Float(1 - hp.number("rho"))
            eps = Float(hp.number("eps"))
        }

        @inline(__always)
        public func step(g: Float, w: Float, state: ElementState) -> Float {
            let v = state[0] * rho + oneMinusRho * g * g
            state[0] = v
            let delta = (state[1] + eps).squareRoot() / (v + eps).squareRoot() * g
            state[1] = state[1] * rho + oneMinusRho * delta * delta
            return lr * delta
        }
    }
}
