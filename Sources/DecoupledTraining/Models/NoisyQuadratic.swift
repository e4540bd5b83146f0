import COpenBLAS
import DecoupledCore
import DecoupledRandom
import Foundation

/// DeepOBS's noisy quadratic test problem `quadratic_deep` (Schneider, Balles & Hennig 2019):
/// the loss of a sample x is ½·(θ − x)ᵀQ(θ − x) for θ ∈ ℝ¹⁰⁰, a fixed Hessian Q whose
/// eigenvalues are 90 draws from U(0, 1) and 10 from U(30, 60) (the spectrum reported for deep
/// networks), rotated by a Haar-random rotation; the data are 1 000 draws x ~ N(0, 0.6²·I) for
/// training and 1 000 for testing; θ starts at 1.
///
/// Every number is drawn exactly as DeepOBS draws it — NumPy's `RandomState(42)` for the
/// eigenvalues and the rotation (Diaconis & Shahshahani's subgroup algorithm), `RandomState(42)`
/// for the training and `RandomState(43)` for the test samples — so this is DeepOBS's instance
/// of the problem, not a look-alike (checked against NumPy by a fixture in `make test`).
public enum NoisyQuadratic {
    public static let dimension = 100
    public static let samplesPerSplit = 1000
    public static let noiseLevel = 0.6

    /// The Hessian Q, row-major `[dimension, dimension]`, in double precision.
    public static func deepOBSHessian() -> [Double] {
        let n = dimension
        var rng = NumPyRandomState(seed: 42)
        let eigenvalues = (0..<90).map { _ in rng.uniform(0, 1) } + (0..<10).map { _ in rng.uniform(30, 60) }
        let r = haarRotation(n, &rng)
        // Q = Rᵀ · diag(λ) · R
        var q = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in 0..<n {
                var s = 0.0
                for k in 0..<n { s += r[k * n + i] * eigenvalues[k] * r[k * n + j] }
                q[i * n + j] = s
            }
        }
        return q
    }

    /// A rotation drawn by the subgroup algorithm, row-major, as DeepOBS's `random_rotation`
    /// builds it (including its final sign flip) from the same stream of draws.
    static func haarRotation(_ n: Int, _ rng: inout NumPyRandomState) -> [Double] {
        let t = 2 * Double.pi * rng.uniform(0, 1)
        var r = [cos(t), sin(t), -sin(t), cos(t)]
        for d in 2..<n {
            let m = d + 1
            var v = (0..<m).map { _ in rng.gauss() }
            let vNorm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            v = v.map { $0 / vNorm }
            // x = (e₁ − v) / ‖e₁ − v‖: the reflection that maps e₁ onto v
            var x = v.map { -$0 }
            x[0] += 1
            let xNorm = x.reduce(0) { $0 + $1 * $1 }.squareRoot()
            x = x.map { $0 / xNorm }
            // D = [[1, 0], [0, R]]; R ← D − 2·x·(xᵀD)
            var embedded = [Double](repeating: 0, count: m * m)
            embedded[0] = 1
            for i in 0..<d { for j in 0..<d { embedded[(i + 1) * m + j + 1] = r[i * d + j] } }
            var xD = [Double](repeating: 0, count: m)
            for j in 0..<m { for i in 0..<m { xD[j] += x[i] * embedded[i * m + j] } }
            r = [Double](repeating: 0, count: m * m)
            for i in 0..<m { for j in 0..<m { r[i * m + j] = embedded[i * m + j] - 2 * x[i] * xD[j] } }
        }
        return r.map { -$0 }
    }

    /// The samples of one split, row-major `[samplesPerSplit, dimension]`, rounded to float as
    /// DeepOBS does (`np.float32`).
    public static func deepOBSSamples(test: Bool) -> [Float] {
        var rng = NumPyRandomState(seed: test ? 43 : 42)
        return (0..<(samplesPerSplit * dimension)).map { _ in Float(rng.normal(0, noiseLevel)) }
    }
}

/// The model of `quadratic_deep`: one parameter tensor θ (`theta`, role weight, starting at 1)
/// and the loss ½·(θ − x)ᵀQ(θ − x), averaged over the batch. It has no targets and no accuracy;
/// the gradient of the mean is Q·(θ − x̄). Computed in double precision in a fixed order, so
/// the result does not depend on the thread count.
public final class NoisyQuadraticModel: Model {
    public let parameterSpecs = [TensorSpec(name: "theta", shape: [NoisyQuadratic.dimension], role: .weight)]
    public var inputCount: Int { NoisyQuadratic.dimension }
    public let outputCount: Int
    public var loss: LossKind { .quadratic }
    private let hessian: [Double]
    private var difference = [Double](repeating: 0, count: NoisyQuadratic.dimension)
    /// Scratch of `summedLoss`: the batch's θ − x and (θ − x)·Q, row-major [batch, dimension].
    private var differences: [Double] = [], products: [Double] = []

    public init(outputCount: Int) {
        self.outputCount = outputCount
        hessian = NoisyQuadratic.deepOBSHessian()
    }

    public func initialize(params: [UnsafeMutablePointer<Float>], rng: inout Xoshiro256) {
        params[0].update(repeating: 1, count: NoisyQuadratic.dimension)
    }

    /// ½·qᵀQq for q = θ − x, summed over the batch's samples in order: the batch's differences
    /// D = θ − X times Q in one dgemm (OpenBLAS, single-threaded here like every product in the
    /// models, so the sums do not depend on the thread count), then each row's qᵀ(Qq).
    private func summedLoss(_ theta: UnsafePointer<Float>, _ x: UnsafePointer<Float>, batch: Int) -> Double {
        let n = NoisyQuadratic.dimension
        if differences.count < batch * n {
            differences = [Double](repeating: 0, count: batch * n)
            products = differences
        }
        var sum = 0.0
        hessian.withUnsafeBufferPointer { q in
            differences.withUnsafeMutableBufferPointer { d in
                products.withUnsafeMutableBufferPointer { y in
                    for i in 0..<(batch * n) { d[i] = Double(theta[i % n]) - Double(x[i]) }
                    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(batch), Int32(n), Int32(n),
                                1, d.baseAddress, Int32(n), q.baseAddress, Int32(n), 0, y.baseAddress, Int32(n))
                    for b in 0..<batch {
                        var total = 0.0
                        for i in 0..<n { total += d[b * n + i] * y[b * n + i] }
                        sum += 0.5 * total
                    }
                }
            }
        }
        return sum
    }

    public func evaluate(x: UnsafePointer<Float>, targets: Targets, batch: Int,
                         params: [UnsafePointer<Float>], threads: Int) -> BatchResult {
        BatchResult(loss: summedLoss(params[0], x, batch: batch) / Double(batch), correct: 0, count: batch, predictions: 0)
    }

    public func lossAndGradients(x: UnsafePointer<Float>, targets: Targets, batch: Int,
                                 params: [UnsafePointer<Float>], grads: [UnsafeMutablePointer<Float>],
                                 threads: Int) -> BatchResult {
        let result = evaluate(x: x, targets: targets, batch: batch, params: params, threads: threads)
        let n = NoisyQuadratic.dimension
        // ∇ mean ½(θ − xᵢ)ᵀQ(θ − xᵢ) = Q·(θ − x̄)
        var meanX = [Double](repeating: 0, count: n)
        for b in 0..<batch { for i in 0..<n { meanX[i] += Double(x[b * n + i]) } }
        for i in 0..<n { difference[i] = Double(params[0][i]) - meanX[i] / Double(batch) }
        hessian.withUnsafeBufferPointer { q in
            for i in 0..<n {
                var row = 0.0
                for j in 0..<n { row += q[i * n + j] * difference[j] }
                grads[0][i] = Float(row)
            }
        }
        return result
    }
}
