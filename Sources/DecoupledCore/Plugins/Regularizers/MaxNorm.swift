/// The max-norm constraint on rows (Srivastava et al. 2014, dropout's companion): after every
/// step, each row whose L2 norm exceeds c is scaled back to c, as `torch.renorm(w, 2, 0, c)`
/// does: w_r ← w_r·c/(‖w_r‖ + 1e-7) when ‖w_r‖ > c. A row is every element sharing the first
/// index (a Linear weight's incoming weights of one unit); on a vector it bounds each |w_i|.
public final class MaxNormConstraint: RegularizerPlugin {
    public let name = "max_norm"
    public let version = "1.0.0"
    public let kind = PluginKind.regularizer
    public let summary = "row-wise max-norm constraint after each step (torch.renorm(w, 2, 0, c))"
    public let hyperParameters: [HyperParameterSpec] = [
        .init("max_norm", .number(0...Double.infinity, openLower: true), default: .number(3), "c: the largest L2 norm a row may keep"),
    ]
    public let metricName: String? = "clipped_rows"
    public init() {}

    public func isDecoupled(_ hp: HyperValues) -> Bool { true }

    public func tensorPass(_ hp: HyperValues, context: StepContext) -> TensorPass? {
        let c = Float(hp.number("max_norm"))
        return TensorPass(phase: .afterUpdate) { t, _ in
            var clipped: Int64 = 0
            for r in 0..<t.info.rows {
                let w = t.row(r, of: t.weights)
                let norm = Float(rowNorm(w))
                guard norm > c else { continue }
                let k = c / (norm + 1e-7)
                for i in w.indices { w[i] *= k }
                clipped += 1
            }
            return clipped
        }
    }

    public func penalty(_ hp: HyperValues, sumSquares: Double, sumAbs: Double) -> Double? { nil }
    public func audit(_ hp: HyperValues) -> String { "max-norm constraint on rows ‖w_r‖ ≤ \(hp.number("max_norm").formatted)" }
}
