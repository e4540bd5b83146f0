#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Element-wise pieces of the forward and backward passes: bias + activation, activation
/// derivatives, and the three losses. All operate on a range of batch rows, so every output
/// element is computed by the same code whatever the partitioning into threads.
enum ModelKernels {
    static let sqrtHalf: Float = 0.707_106_781_186_547_524_40     // 1/√2
    static let invSqrt2Pi: Float = 0.398_942_280_401_432_677_94   // 1/√(2π)

    // MARK: Forward

    /// z[i, j] += b[j] for `rows` rows of `cols` columns.
    @inline(__always)
    static func addBias(_ z: UnsafeMutablePointer<Float>, _ b: UnsafePointer<Float>, rows: Int, cols: Int) {
        for i in 0..<rows {
            let zr = z + i * cols
            for j in 0..<cols { zr[j] += b[j] }
        }
    }

    /// z += b (row-broadcast), then a = f(z). `z` keeps the pre-activation for the backward pass.
    static func biasActivation(_ kind: ActivationKind, z: UnsafeMutablePointer<Float>,
                               a: UnsafeMutablePointer<Float>, b: UnsafePointer<Float>,
                               rows: Int, cols: Int) {
        switch kind {
        case .relu:
            for i in 0..<rows {
                let zr = z + i * cols, ar = a + i * cols
                for j in 0..<cols {
                    let v = zr[j] + b[j]
                    zr[j] = v
                    ar[j] = v < 0 ? 0 : v   // NaN propagates (as torch.relu)
                }
            }
        case .tanh:
            for i in 0..<rows {
                let zr = z + i * cols, ar = a + i * cols
                for j in 0..<cols {
                    let v = zr[j] + b[j]
                    zr[j] = v
                    ar[j] = tanhf(v)
                }
            }
        case .gelu:
            for i in 0..<rows {
                let zr = z + i * cols, ar = a + i * cols
                for j in 0..<cols {
                    let v = zr[j] + b[j]
                    zr[j] = v
                    ar[j] = 0.5 * v * (1 + erff(v * sqrtHalf))
                }
            }
        }
    }

    // MARK: Backward

    /// d ← d ⊙ f'(z), in place, for a contiguous block of `n` elements.
    static func activationBackward(_ kind: ActivationKind, d: UnsafeMutablePointer<Float>,
                                   z: UnsafePointer<Float>, a: UnsafePointer<Float>, n: Int) {
        switch kind {
        case .relu:
            for i in 0..<n { d[i] = z[i] > 0 ? d[i] : 0 }
        case .tanh:
            for i in 0..<n {
                let ai = a[i]
                d[i] = d[i] * (1 - ai * ai)
            }
        case .gelu:
            for i in 0..<n {
                let v = z[i]
                let cdf = 0.5 * (1 + erff(v * sqrtHalf))
                let pdf = expf(-0.5 * v * v) * invSqrt2Pi
                d[i] = d[i] * (cdf + v * pdf)
            }
        }
    }

    /// dx = dy ⊙ [z > 0] in one pass (the layer models' ReLU: no copy of dy first).
    static func reluBackward(dy: UnsafePointer<Float>, z: UnsafePointer<Float>, into dx: UnsafeMutablePointer<Float>, n: Int) {
        // In explicit vectors: the compiler left the select loop scalar (3 % of a fmnist_2c2d step).
        let zs = UnsafeRawPointer(z), dys = UnsafeRawPointer(dy), dxs = UnsafeMutableRawPointer(dx)
        var i = 0
        while i + 16 <= n {
            let keep = zs.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self) .> 0
            let g = SIMD16<Float>().replacing(with: dys.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self), where: keep)
            dxs.storeBytes(of: g, toByteOffset: 4 * i, as: SIMD16<Float>.self)
            i += 16
        }
        while i < n {
            dx[i] = z[i] > 0 ? dy[i] : 0
            i += 1
        }
    }

    /// Column sums over `rows` rows, in row order (fixed summation order per element):
    /// out[j] = Σ_i d[i·ld + j] for j in 0..<cols.
    static func columnSums(_ d: UnsafePointer<Float>, ld: Int, rows: Int, cols: Int,
                           into out: UnsafeMutablePointer<Float>) {
        for j in 0..<cols { out[j] = 0 }
        for i in 0..<rows {
            let dr = d + i * ld
            for j in 0..<cols { out[j] += dr[j] }
        }
    }

    // MARK: Losses

    /// The data loss `kind` on rows `r0..<r1` of logits `z` [*, cols]: row losses to `rowLoss`,
    /// ∂(mean loss)/∂z to `dz`; returns the correct predictions among these rows.
    static func loss(_ kind: LossKind, targets: Targets, z: UnsafePointer<Float>, cols: Int, r0: Int, r1: Int,
                     batch: Int, dz: UnsafeMutablePointer<Float>, rowLoss: UnsafeMutablePointer<Double>) -> Int {
        switch (kind, targets) {
        case let (.crossEntropy, .labels(labels)):
            return crossEntropy(z: z, labels: labels, classes: cols, r0: r0, r1: r1,
                                scale: 1 / Float(batch), dz: dz, rowLoss: rowLoss)
        case let (.logistic, .values(t)):
            return logistic(z: z, t: t, cols: cols, r0: r0, r1: r1, scale: 1 / Float(batch * cols), dz: dz, rowLoss: rowLoss)
        case let (.mse, .values(t)):
            squaredError(z: z, t: t, cols: cols, r0: r0, r1: r1, scale: 2 / Float(batch * cols), dz: dz, rowLoss: rowLoss)
            return 0
        default:
            preconditionFailure("\(kind) loss needs \(kind == .crossEntropy ? "labels" : "float targets")")
        }
    }

    /// The batch's mean loss from its row losses (summed in row order) and its correct
    /// predictions from the partitions' counts (summed in partition order). `rowLoss` holds
    /// exactly the batch's rows.
    static func batchResult<L: Collection, C: Collection>(_ kind: LossKind, rowLoss: L, partitionCorrect: C,
                                                          batch: Int, outputs c: Int) -> BatchResult
        where L.Element == Double, C.Element == Int {
        var sum = 0.0
        for v in rowLoss { sum += v }
        let correct = partitionCorrect.reduce(0, +)
        switch kind {
        case .crossEntropy:
            return BatchResult(loss: sum / Double(batch), correct: correct, count: batch, predictions: batch)
        case .logistic:
            return BatchResult(loss: sum / Double(batch * c), correct: correct, count: batch, predictions: batch * c)
        case .mse:
            return BatchResult(loss: sum / Double(batch * c), correct: 0, count: batch, predictions: 0)
        case .quadratic:
            return BatchResult(loss: sum / Double(batch), correct: 0, count: batch, predictions: 0)
        }
    }

    /// Softmax cross-entropy for rows `r0..<r1` of logits `z` [*, classes].
    /// Writes each row's loss (Double) to `rowLoss[i]`, the gradient scale·(softmax − onehot)
    /// to `dz`, and returns the number of rows whose arg-max (first maximum) equals the label.
    /// An out-of-range label asserts in debug builds; in release builds its row loss is NaN
    /// and its gradient row zero.
    static func crossEntropy(z: UnsafePointer<Float>, labels: UnsafePointer<Int32>, classes: Int,
                             r0: Int, r1: Int, scale: Float,
                             dz: UnsafeMutablePointer<Float>, rowLoss: UnsafeMutablePointer<Double>) -> Int {
        var correct = 0
        for i in r0..<r1 {
            let zr = z + i * classes, gr = dz + i * classes
            let label = Int(labels[i])
            guard label >= 0 && label < classes else {
                assertionFailure("label \(label) of sample \(i) is outside 0..<\(classes)")
                rowLoss[i] = .nan
                for j in 0..<classes { gr[j] = 0 }
                continue
            }
            var m = zr[0]
            var argmax = 0
            for j in 1..<max(classes, 1) where zr[j] > m {
                m = zr[j]
                argmax = j
            }
            var s: Float = 0
            for j in 0..<classes {
                let e = expf(zr[j] - m)
                gr[j] = e
                s += e
            }
            rowLoss[i] = Double(m) + log(Double(s)) - Double(zr[label])
            let k = scale / s
            for j in 0..<classes { gr[j] *= k }
            gr[label] -= scale
            if argmax == label { correct += 1 }
        }
        return correct
    }

    /// Binary logistic loss on logits with float targets, rows `r0..<r1` of [*, cols].
    /// Loss per element max(z,0) − z·t + log1p(exp(−|z|)); gradient scale·(σ(z) − t).
    /// Returns elements with (z > 0) == (t > 0.5).
    static func logistic(z: UnsafePointer<Float>, t: UnsafePointer<Float>, cols: Int,
                         r0: Int, r1: Int, scale: Float,
                         dz: UnsafeMutablePointer<Float>, rowLoss: UnsafeMutablePointer<Double>) -> Int {
        var correct = 0
        for i in r0..<r1 {
            let zr = z + i * cols, tr = t + i * cols, gr = dz + i * cols
            var acc = 0.0
            for j in 0..<cols {
                let v = zr[j], target = tr[j]
                let e = expf(-abs(v))                       // in (0, 1]
                acc += Double(max(v, 0) - v * target) + Double(log1pf(e))
                let sigma = v >= 0 ? 1 / (1 + e) : e / (1 + e)
                gr[j] = scale * (sigma - target)
                if (v > 0) == (target > 0.5) { correct += 1 }
            }
            rowLoss[i] = acc
        }
        return correct
    }

    /// Squared error, rows `r0..<r1` of [*, cols]; gradient scale·(z − t) (scale = 2/(B·cols)).
    static func squaredError(z: UnsafePointer<Float>, t: UnsafePointer<Float>, cols: Int,
                             r0: Int, r1: Int, scale: Float,
                             dz: UnsafeMutablePointer<Float>, rowLoss: UnsafeMutablePointer<Double>) {
        for i in r0..<r1 {
            let zr = z + i * cols, tr = t + i * cols, gr = dz + i * cols
            var acc = 0.0
            for j in 0..<cols {
                let d = zr[j] - tr[j]
                acc += Double(d) * Double(d)
                gr[j] = scale * d
            }
            rowLoss[i] = acc
        }
    }
}
