/// Group lasso over rows, the L2,1 norm λ·Σ_r ‖w_r‖₂ (Yuan & Lin 2006): the structured-sparsity
/// sibling of L1, which drives whole rows (a Linear weight's output units) to zero. A row is
/// every element sharing the first index (`TensorInfo.rows`), so on a vector it is L1.
///
/// `form = "coupled"`: the subgradient joins the gradient before the optimizer sees it,
/// g_r += λ·w_r/‖w_r‖ (nothing for a zero row), so adaptive optimizers rescale it like L2.
/// `form = "proximal"`: decoupled, after the step, the block soft-threshold
/// w_r ← w_r·max(0, 1 − s_t·λ/‖w_r‖), which lands on exact zero rows; s_t as `scale` says.
public final class GroupLassoRegularizer: RegularizerPlugin {
    public let name = "group_lasso"
    public let version = "1.0.0"
    public let kind = PluginKind.regularizer
    public let summary = "row-wise L2,1 (group lasso): coupled subgradient or decoupled proximal step"
    public let hyperParameters: [HyperParameterSpec] = [
        .init("lambda", .number(0...Double.infinity), default: .number(0), "λ"),
        .init("form", .choice(["coupled", "proximal"]), default: .text("proximal"),
              "coupled: g_r += λ·w_r/‖w_r‖; proximal: w_r ← w_r·max(0, 1 − s_t·λ/‖w_r‖) after the step"),
        DecayScale.spec,
    ]
    public let metricName: String? = "zero_rows"
    public init() {}

    public func isDecoupled(_ hp: HyperValues) -> Bool { hp.text("form") == "proximal" }

    public func tensorPasses(_ hp: HyperValues, context: StepContext) -> [TensorPass] {
        let lambda = hp.number("lambda")
        guard lambda > 0 else { return [] }
        if !isDecoupled(hp) {
            return [TensorPass(phase: .beforeUpdate) { t, _ in
                for r in 0..<t.info.rows {
                    let norm = rowNorm(t.row(r, of: t.weights))
                    guard norm > 0 else { continue }
                    let k = Float(lambda / norm)
                    let w = t.row(r, of: t.weights), g = t.row(r, of: t.gradients)
                    for i in g.indices { g[i] = g[i] + k * w[i] }
                }
                return -1
            }]
        }
        let threshold = DecayScale(rawValue: hp.text("scale"))!.value(context) * lambda
        return [TensorPass(phase: .afterUpdate) { t, _ in
            var zeroRows: Int64 = 0
            for r in 0..<t.info.rows {
                let w = t.row(r, of: t.weights)
                let norm = rowNorm(w)
                if norm <= threshold {
                    w.update(repeating: 0)
                    zeroRows += 1
                } else {
                    let k = Float(1 - threshold / norm)
                    for i in w.indices { w[i] *= k }
                }
            }
            return zeroRows
        }]
    }

    public func penalty(_ hp: HyperValues, sumSquares: Double, sumAbs: Double) -> Double? { nil }

    public func penalty(_ hp: HyperValues, tensor: TensorInfo, weights: UnsafeBufferPointer<Float>) -> Double? {
        guard !isDecoupled(hp) else { return nil }
        var sum = 0.0
        for r in 0..<tensor.rows { sum += rowNorm(weights[(r * tensor.rowLength)..<((r + 1) * tensor.rowLength)]) }
        return hp.number("lambda") * sum
    }

    public func audit(_ hp: HyperValues) -> String {
        isDecoupled(hp)
            ? "group lasso (rows) proximal λ=\(hp.number("lambda").formatted) × s_t=\(hp.text("scale"))"
            : "group lasso (rows) coupled λ=\(hp.number("lambda").formatted): g_r += λ·w_r/‖w_r‖"
    }
}
