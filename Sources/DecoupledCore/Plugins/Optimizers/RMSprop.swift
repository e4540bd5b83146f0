/// RMSprop as `torch.optim.RMSprop` computes it (`_single_tensor_rmsprop`):
///
///     v ← α·v + (1 − α)·g²
///     centered: ḡ ← lerp(ḡ, g, 1 − α), d = √(v − ḡ²) + ε;  else d = √v + ε
///     momentum: buf ← μ·buf + g/d, w ← w − lr·buf;  else w ← w − lr·g/d
public final class RMSpropOptimizer: ElementwiseOptimizer {
    public let name = "rmsprop"
    public let version = "1.0.0"
    public let kind = PluginKind.optimizer
    public let summary = "RMSprop with centered and momentum options (torch.optim.RMSprop semantics)"
    public let hyperParameters: [HyperParameterSpec] = [
        .learningRate(0.01),
        .init("alpha", .number(0...1, openUpper: true), default: .number(0.99), "smoothing constant α of v"),
        .init("eps", .number(0...Double.infinity), default: .number(1e-8), "ε added to the root"),
        .init("momentum", .number(0...1, openUpper: true), default: .number(0), "μ of the step buffer; 0: none"),
        .init("centered", .flag, default: .flag(false), "divide by the root of the variance v − ḡ² instead of v"),
    ]

    public init() {}

    public func state(_ hp: HyperValues) -> [StateDeclaration] {
        (["square_avg"] + (hp.flag("centered") ? ["grad_avg"] : []) + (hp.number("momentum") > 0 ? ["momentum_buffer"] : []))
            .map { StateDeclaration($0) }
    }

    /// The per-step scalars of one group, and the step of one element.
    public struct Coefficients: ElementStep {
        let lr, alpha, oneMinusAlpha, eps, momentum: Float
        let centered, hasMomentum: Bool

        public init(_ hp: HyperValues, context: StepContext) {
            lr = Float(context.lr)
            alpha = Float(hp.number("alpha"))
            oneMinusAlpha = Float(1 - hp.number("alpha"))
            eps = Float(hp.number("eps"))
            momentum = Float(hp.number("momentum"))
            centered = hp.flag("centered")
            hasMomentum = hp.number("momentum") > 0
        }

        @inline(__always)
        public func step(g: Float, w: Float, state: ElementState) -> Float {
            let v = state[0] * alpha + oneMinusAlpha * g * g
            state[0] = v
            var avg: Float
            if centered {
                let mean = torchLerp(state[1], g, oneMinusAlpha)
                state[1] = mean
                avg = (v + -1 * mean * mean).squareRoot()
            } else {
                avg = v.squareRoot()
            }
            avg = avg + eps
            guard hasMomentum else { return lr * g / avg }
            let k = centered ? 2 : 1
            let buf = state[k] * momentum + g / avg
            state[k] = buf
            return lr * buf
        }
    }
}
