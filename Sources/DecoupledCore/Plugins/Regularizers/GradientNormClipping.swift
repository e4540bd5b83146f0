/// Global gradient-norm clipping, `torch.nn.utils.clip_grad_norm_(params, max_norm)` before
/// the step: with N = ‖(g of every tensor the entry covers)‖₂, every gradient is multiplied by
/// min(1, max_norm/(N + 1e-6)), computed in float32 as PyTorch does. A top-level entry covers
/// the whole model: `decay_bias = false` does not spare biases here (clipping is no decay).
/// It runs first in the pipeline, so coupled terms (PyTorch's `weight_decay`) are added to
/// the clipped gradient, as in PyTorch.
public final class GradientNormClipping: RegularizerPlugin {
    public let name = "clip_grad_norm"
    public let version = "1.0.0"
    public let kind = PluginKind.regularizer
    public let summary = "global gradient-norm clipping before the step (torch.nn.utils.clip_grad_norm_)"
    public let hyperParameters: [HyperParameterSpec] = [
        .init("max_norm", .number(0...Double.infinity, openLower: true), default: .number(1), "the largest global L2 norm of the gradients"),
    ]
    public let metricName: String? = "clipped_tensors"
    public init() {}

    public func isDecoupled(_ hp: HyperValues) -> Bool { false }
    public func sparesBiasAndNorm(_ hp: HyperValues) -> Bool { false }

    public func tensorPasses(_ hp: HyperValues, context: StepContext) -> [TensorPass] {
        let maxNorm = Float(hp.number("max_norm"))
        return [TensorPass(phase: .beforeUpdate, partial: { t in
            var s = 0.0
            for x in t.gradients { s += Double(x) * Double(x) }
            return s
        }, apply: { t, total in
            // clip_coef = max_norm / (total_norm + 1e-6), clamped to 1, all in float32.
            let coefficient = Swift.min(maxNorm / (Float(total.squareRoot()) + 1e-6), 1)
            guard coefficient != 1 else { return 0 }
            for i in t.gradients.indices { t.gradients[i] *= coefficient }
            return 1
        })]
    }

    public func penalty(_ hp: HyperValues, sumSquares: Double, sumAbs: Double) -> Double? { nil }
    public func audit(_ hp: HyperValues) -> String { "clip the global gradient norm to \(hp.number("max_norm").formatted)" }
}
