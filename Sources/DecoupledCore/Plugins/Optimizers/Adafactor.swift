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
/// RMS(w), the row and column means of g² and RMS(u) need the whole tensor, so this is a
/// `TensorOptimizer`. The factored statistics are state of layouts `matrixRows` ([B…, R]) and
/// `matrixColumns` ([B…, C]), PyTorch's `row_var` and `col_var` without their unit dimension;
/// `variance` (`vectorElements`) is per element for tensors of rank < 2 only, as in PyTorch, so
/// a matrix keeps no full-size slot it never reads.
public final class AdafactorOptimizer: TensorOptimizer {
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

    public func state(_ hp: HyperValues) -> [StateDeclaration] {
        [StateDeclaration("row_var", layout: .matrixRows), StateDeclaration("col_var", layout: .matrixColumns),
         StateDeclaration("variance", layout: .vectorElements)]
    }

    public struct Coefficients {
        /// 1 − β̂2 = t^beta2_decay, the weight of this step's g² in the averages.
        let oneMinusBeta2, eps1: Float
        let rho, eps2, d: Double
    }

    public func coefficients(_ hp: HyperValues, context: StepContext) -> Coefficients {
        let t = Double(context.step)
        return Coefficients(oneMinusBeta2: Float(pow(t, hp.number("beta2_decay"))), eps1: Float(hp.number("eps1")),
                            rho: min(context.lr, 1 / t.squareRoot()), eps2: hp.number("eps2"), d: hp.number("d"))
    }

    public func direction(_ c: Coefficients, tensor: TensorData, gradient x: UnsafeBufferPointer<Float>,
                          direction u: UnsafeMutableBufferPointer<Float>) {
        let n = tensor.info.count, shape = tensor.info.shape, w = tensor.weights
        var ww = 0.0
        for i in 0..<n { ww += Double(w[i]) * Double(w[i]) }
        let alpha = max(c.eps2, Double(Float(ww.squareRoot())) / Double(n).squareRoot()) * c.rho
        let floor = c.eps1 * c.eps1

        if shape.count >= 2 {
            // B blocks of R×C: the matrices of the last two dimensions.
            let rows = shape[shape.count - 2], cols = shape[shape.count - 1], blocks = n / (rows * cols)
            let rowVar = tensor.state[0], colVar = tensor.state[1]
            for b in 0..<blocks {
                let base = b * rows * cols
                var rowSum: Float = 0
                for r in 0..<rows {
                    var s: Float = 0
                    for col in 0..<cols { let g = x[base + r * cols + col]; s += g * g }
                    let k = b * rows + r
                    rowVar[k] = torchLerp(rowVar[k], s / Float(cols), c.oneMinusBeta2)
                    rowSum += rowVar[k]
                }
                for col in 0..<cols {
                    var s: Float = 0
                    for r in 0..<rows { let g = x[base + r * cols + col]; s += g * g }
                    let k = b * cols + col
                    colVar[k] = torchLerp(colVar[k], s / Float(rows), c.oneMinusBeta2)
                }
                let meanOfRows = max(rowSum / Float(rows), c.eps1)
                for r in 0..<rows {
                    for col in 0..<cols {
                        let i = base + r * cols + col
                        let v = rowVar[b * rows + r] * colVar[b * cols + col] / meanOfRows
                        u[i] = (1 / max(v, floor).squareRoot()) * x[i]
                    }
                }
            }
        } else {
            let variance = tensor.state[2]
            for i in 0..<n {
                let v = torchLerp(variance[i], x[i] * x[i], c.oneMinusBeta2)
                variance[i] = v
                u[i] = (1 / max(v, floor).squareRoot()) * x[i]
            }
        }

        var uu = 0.0
        for i in 0..<n { uu += Double(u[i]) * Double(u[i]) }
        let denom = max(1, Double(Float(uu.squareRoot())) / (Double(n).squareRoot() * c.d))
        let scale = Float(alpha / denom)
        for i in 0..<n { u[i] = scale * u[i] }
    }
}
