/// Adagrad as `torch.optim.Adagrad` computes it (`_single_tensor_adagrad`):
///
///     clr = lr / (1 + (t − 1)·lr_decay)
///     sum ← sum + g²                     (sum starts at initial_accumulator_value, its declared initial value)
///     w ← w − clr·g / (√sum + ε)
public final class AdagradOptimizer: ElementwiseOptimizer {
    public let name = "adagrad"
    public let version = "1.0.0"
    public let kind = PluginKind.optimizer
    public let summary = "Adagrad: per-element step lr/√Σg² (torch.optim.Adagrad semantics)"
    public let hyperParameters: [HyperParameterSpec] = [
        .learningRate(0.01),
        .init("lr_decay", .number(0...Double.infinity), default: .number(0), "clr = lr / (1 + (t − 1)·lr_decay)"),
        .init("initial_accumulator_value", .number(0...Double.infinity), default: .number(0), "the sum of squares at the start"),
        .init("eps", .number(0...Double.infinity), default: .number(1e-10), "ε added to √sum"),
    ]

    public init() {}

    public func state(_ hp: HyperValues) -> [StateDeclaration] {
        [StateDeclaration("sum", initialValue: Float(hp.number("initial_accumulator_value")))]
    }

    /// The per-step scalars of one group, and the step of one element.
    public struct Coefficients: ElementStep {
        let clr, eps: Float

        public init(_ hp: HyperValues, context: StepContext) {
            clr = Float(context.lr / (1 + Double(context.step - 1) * hp.number("lr_decay")))
            eps = Float(hp.number("eps"))
        }

        @inline(__always)
        public func step(g: Float, w: Float, state: ElementState) -> Float {
            let sum = state[0] + g * g
            state[0] = sum
            return clr * g / (sum.squareRoot() + eps)
        }
    }
}
