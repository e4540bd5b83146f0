import COpenBLAS
import DecoupledCore
import DecoupledRandom

/// A fully connected network `layers[0] → layers[1] → … → layers.last` with hand-written
/// forward and backward passes on OpenBLAS `cblas_sgemm`.
///
/// - Parameters, in order: "fc1.weight" `[layers[1], layers[0]]`, "fc1.bias" `[layers[1]]`,
///   "fc2.weight", … — PyTorch `nn.Linear` layout (`y = x·Wᵀ + b`), so weights can be
///   exchanged with PyTorch unchanged.
/// - Hidden layers use `activation`; the last layer is linear (logits / predictions).
/// - Initialisation (`init`): He = N(0, 2/fan_in), Xavier = U(±√(6/(fan_in+fan_out))); biases 0.
///   Weights are drawn layer by layer in row-major order from the generator passed to
///   `initialize`.
/// - Determinism: a batch is cut into partitions of `partitionRows` rows (a fixed number,
///   independent of the thread count); each partition runs the forward pass and the backward
///   pass to the pre-activation gradients of every layer. Weight gradients are then computed
///   as fixed tiles of dW = dZᵀ·A (each tile one sgemm over the whole batch) and bias
///   gradients as column sums in batch order, so no cross-thread reduction exists and the
///   results are bit-identical for any `threads`. OpenBLAS is pinned to one thread per call.
/// - Scratch buffers are sized for `maxBatch` rows and grow (once) if a larger batch arrives;
///   a step allocates nothing otherwise. An instance must not be used concurrently.
public class MLP: Model {
    public let layers: [Int]
    public let activation: ActivationKind
    public let loss: LossKind
    public let initialization: InitKind
    public let parameterSpecs: [TensorSpec]
    /// Rows per batch partition of the forward/backward pass (fixed for determinism).
    public let partitionRows: Int
    public var inputCount: Int { layers[0] }
    public var outputCount: Int { layers[layers.count - 1] }
    /// Rows the scratch buffers currently hold.
    public private(set) var capacity: Int = 0

    /// Default rows per partition: a batch of 128 gives 2 partitions. Measured on the 2-core
    /// EPYC (784-256-128-10, batch 128): 64 rows beat 32 by ~7% (sgemm with M=32 runs at
    /// ~75 GFLOP/s vs ~84 for M=64). Batches of 256+ give more partitions for more threads.
    public static let defaultPartitionRows = 64

    private let layerCount: Int
    // Per layer l (0-based, layers[l] → layers[l+1]), each [capacity, layers[l+1]]:
    private var z: [UnsafeMutablePointer<Float>] = []   // pre-activation (logits for the last)
    private var a: [UnsafeMutablePointer<Float>] = []   // activation (hidden layers only)
    private var dz: [UnsafeMutablePointer<Float>] = []  // ∂loss/∂z
    private var rowLoss: UnsafeMutablePointer<Double>?
    private var partitionCorrect: UnsafeMutablePointer<Int>?
    private var buffers: [UnsafeMutableRawPointer] = []
    private let gradientTasks: [GradientTask]
    private let pool = ParallelTasks()

    /// A tile of one layer's weight gradient, or a range of its bias gradient.
    struct GradientTask {
        var layer: Int
        var isBias: Bool
        var rows: Range<Int>
        var cols: Range<Int>
        var cost: Int
    }

    /// - Parameters:
    ///   - layers: sizes including input and output, e.g. `[784, 256, 128, 10]`; at least 2.
    ///   - activation: hidden-layer non-linearity (unused without hidden layers).
    ///   - loss: data loss on the last layer's outputs.
    ///   - init: weight initialisation (biases start at zero).
    ///   - maxBatch: rows to preallocate scratch buffers for.
    ///   - partitionRows: rows per forward/backward partition; results depend on it (not on
    ///     the thread count), so keep it fixed across runs that must agree bit for bit.
    public init(layers: [Int], activation: ActivationKind = .relu, loss: LossKind = .crossEntropy,
                init initKind: InitKind = .he, maxBatch: Int = 128,
                partitionRows: Int = MLP.defaultPartitionRows) {
        precondition(layers.count >= 2, "an MLP needs at least input and output sizes")
        precondition(layers.allSatisfy { $0 > 0 }, "layer sizes must be positive: \(layers)")
        precondition(partitionRows > 0)
        self.layers = layers
        self.activation = activation
        self.loss = loss
        self.initialization = initKind
        self.partitionRows = partitionRows
        self.layerCount = layers.count - 1
        var specs: [TensorSpec] = []
        for l in 0..<(layers.count - 1) {
            specs.append(TensorSpec(name: "fc\(l + 1).weight", shape: [layers[l + 1], layers[l]], role: .weight))
            specs.append(TensorSpec(name: "fc\(l + 1).bias", shape: [layers[l + 1]], role: .bias))
        }
        self.parameterSpecs = specs
        self.gradientTasks = MLP.makeGradientTasks(layers: layers)
        BLASThreads.pin()
        ensureCapacity(max(maxBatch, 1))
    }

    deinit { freeBuffers() }

    // MARK: Initialisation

    public func initialize(params: [UnsafeMutablePointer<Float>], rng: inout Xoshiro256) {
        precondition(params.count == parameterSpecs.count, "expected \(parameterSpecs.count) parameter tensors")
        for l in 0..<layerCount {
            let fanIn = layers[l], fanOut = layers[l + 1]
            let w = params[2 * l], b = params[2 * l + 1]
            let n = fanIn * fanOut
            switch initialization {
            case .he:
                let std = (2.0 / Double(fanIn)).squareRoot()
                for i in 0..<n { w[i] = Float(rng.nextGaussian() * std) }
            case .xavier:
                let bound = (6.0 / Double(fanIn + fanOut)).squareRoot()
                for i in 0..<n { w[i] = Float((2 * rng.nextDouble() - 1) * bound) }
            }
            for i in 0..<fanOut { b[i] = 0 }
        }
    }

    // MARK: Forward / backward

    public func lossAndGradients(x: UnsafePointer<Float>, targets: Targets, batch: Int,
                                 params: [UnsafePointer<Float>], grads: [UnsafeMutablePointer<Float>],
                                 threads: Int) -> BatchResult {
        precondition(grads.count == parameterSpecs.count, "expected \(parameterSpecs.count) gradient tensors")
        let result = run(x: x, targets: targets, batch: batch, params: params, threads: threads, backward: true)
        let tasks = gradientTasks
        pool.run(count: tasks.count, threads: threads) { t in
            self.gradientTile(tasks[t], x: x, batch: batch, grads: grads)
        }
        return result
    }

    public func evaluate(x: UnsafePointer<Float>, targets: Targets, batch: Int,
                         params: [UnsafePointer<Float>], threads: Int) -> BatchResult {
        run(x: x, targets: targets, batch: batch, params: params, threads: threads, backward: false)
    }

    /// Forward pass, loss, and (if `backward`) the pre-activation gradients of every layer.
    private func run(x: UnsafePointer<Float>, targets: Targets, batch: Int,
                     params: [UnsafePointer<Float>], threads: Int, backward: Bool) -> BatchResult {
        precondition(batch > 0, "empty batch")
        precondition(params.count == parameterSpecs.count, "expected \(parameterSpecs.count) parameter tensors")
        switch (loss, targets) {
        case (.crossEntropy, .labels), (.logistic, .values), (.mse, .values): break
        default: preconditionFailure("\(loss) loss needs \(loss == .crossEntropy ? "labels" : "float targets")")
        }
        ensureCapacity(batch)
        let partitions = (batch + partitionRows - 1) / partitionRows
        pool.run(count: partitions, threads: threads) { p in
            let r0 = p * self.partitionRows, r1 = min(r0 + self.partitionRows, batch)
            self.partitionCorrect![p] = self.forwardBackward(
                x: x, targets: targets, batch: batch, r0: r0, r1: r1, params: params, backward: backward)
        }
        return ModelKernels.batchResult(loss, rowLoss: UnsafeBufferPointer(start: rowLoss!, count: batch),
                                        partitionCorrect: UnsafeBufferPointer(start: partitionCorrect!, count: partitions),
                                        batch: batch, outputs: outputCount)
    }

    /// Rows `r0..<r1`: forward through every layer, loss, then back to ∂loss/∂z of layer 0.
    /// Returns the correct predictions among these rows.
    private func forwardBackward(x: UnsafePointer<Float>, targets: Targets, batch: Int, r0: Int, r1: Int,
                                 params: [UnsafePointer<Float>], backward: Bool) -> Int {
        let m = Int32(r1 - r0)
        let last = layerCount - 1
        for l in 0...last {
            let nIn = layers[l], nOut = layers[l + 1]
            let input: UnsafePointer<Float> = l == 0 ? x + r0 * nIn : UnsafePointer(a[l - 1] + r0 * nIn)
            let zl = z[l] + r0 * nOut
            // z = input · Wᵀ
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, Int32(nOut), Int32(nIn),
                        1, input, Int32(nIn), params[2 * l], Int32(nIn), 0, zl, Int32(nOut))
            if l < last {
                ModelKernels.biasActivation(activation, z: zl, a: a[l] + r0 * nOut, b: params[2 * l + 1],
                                            rows: r1 - r0, cols: nOut)
            } else {
                ModelKernels.addBias(zl, params[2 * l + 1], rows: r1 - r0, cols: nOut)
            }
        }
        let correct = ModelKernels.loss(loss, targets: targets, z: z[last], cols: outputCount, r0: r0, r1: r1,
                                        batch: batch, dz: dz[last], rowLoss: rowLoss!)
        guard backward else { return correct }
        var l = last
        while l > 0 {
            let nIn = layers[l], nOut = layers[l + 1]
            let dIn = dz[l - 1] + r0 * nIn
            // ∂loss/∂a_{l-1} = dz_l · W_l
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, Int32(nIn), Int32(nOut),
                        1, dz[l] + r0 * nOut, Int32(nOut), params[2 * l], Int32(nIn), 0, dIn, Int32(nIn))
            ModelKernels.activationBackward(activation, d: dIn, z: z[l - 1] + r0 * nIn, a: a[l - 1] + r0 * nIn,
                                            n: (r1 - r0) * nIn)
            l -= 1
        }
        return correct
    }

    /// One fixed tile of a weight gradient (dW = dzᵀ·A over the whole batch) or a range of a
    /// bias gradient (column sums of dz in batch order).
    private func gradientTile(_ task: GradientTask, x: UnsafePointer<Float>, batch: Int,
                              grads: [UnsafeMutablePointer<Float>]) {
        let l = task.layer
        let nIn = layers[l], nOut = layers[l + 1]
        if task.isBias {
            ModelKernels.columnSums(dz[l] + task.rows.lowerBound, ld: nOut, rows: batch,
                                    cols: task.rows.count, into: grads[2 * l + 1] + task.rows.lowerBound)
            return
        }
        let input: UnsafePointer<Float> = l == 0 ? x : UnsafePointer(a[l - 1])
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans,
                    Int32(task.rows.count), Int32(task.cols.count), Int32(batch),
                    1, dz[l] + task.rows.lowerBound, Int32(nOut),
                    input + task.cols.lowerBound, Int32(nIn),
                    0, grads[2 * l] + task.rows.lowerBound * nIn + task.cols.lowerBound, Int32(nIn))
    }

    /// Tiles of every layer's weight gradient (~`tileElements` each, cut along the longer side,
    /// so the operand sgemm re-packs per tile is the smaller one) plus one bias task per layer,
    /// largest first. Depends on the layer sizes only — never on the thread count.
    static func makeGradientTasks(layers: [Int], tileElements: Int = 16_384) -> [GradientTask] {
        var tasks: [GradientTask] = []
        for l in 0..<(layers.count - 1) {
            let nIn = layers[l], nOut = layers[l + 1]
            let pieces = max(1, Int((Double(nIn * nOut) / Double(tileElements)).rounded()))
            let alongCols = nIn >= nOut
            let length = alongCols ? nIn : nOut
            var chunk = (length + pieces - 1) / pieces
            chunk = min(length, (chunk + 15) / 16 * 16)
            var start = 0
            while start < length {
                let end = min(start + chunk, length)
                let rows = alongCols ? 0..<nOut : start..<end
                let cols = alongCols ? start..<end : 0..<nIn
                tasks.append(GradientTask(layer: l, isBias: false, rows: rows, cols: cols,
                                          cost: rows.count * cols.count))
                start = end
            }
            tasks.append(GradientTask(layer: l, isBias: true, rows: 0..<nOut, cols: 0..<1, cost: nOut / 8))
        }
        // Stable order: largest first (better balance with dynamic claiming).
        return tasks.enumerated().sorted { ($0.element.cost, -$0.offset) > ($1.element.cost, -$1.offset) }
            .map { $0.element }
    }

    // MARK: Scratch buffers

    private func ensureCapacity(_ rows: Int) {
        guard rows > capacity else { return }
        freeBuffers()
        func floats(_ n: Int) -> UnsafeMutablePointer<Float> {
            let raw = UnsafeMutableRawPointer.allocate(byteCount: max(n, 1) * MemoryLayout<Float>.stride, alignment: 64)
            buffers.append(raw)
            let p = raw.bindMemory(to: Float.self, capacity: max(n, 1))
            p.initialize(repeating: 0, count: max(n, 1))
            return p
        }
        for l in 0..<layerCount {
            let n = rows * layers[l + 1]
            z.append(floats(n))
            dz.append(floats(n))
            if l < layerCount - 1 { a.append(floats(n)) }
        }
        let lossRaw = UnsafeMutableRawPointer.allocate(byteCount: rows * MemoryLayout<Double>.stride, alignment: 64)
        buffers.append(lossRaw)
        rowLoss = lossRaw.bindMemory(to: Double.self, capacity: rows)
        rowLoss!.initialize(repeating: 0, count: rows)
        let partitions = (rows + partitionRows - 1) / partitionRows
        let correctRaw = UnsafeMutableRawPointer.allocate(byteCount: partitions * MemoryLayout<Int>.stride, alignment: 64)
        buffers.append(correctRaw)
        partitionCorrect = correctRaw.bindMemory(to: Int.self, capacity: partitions)
        partitionCorrect!.initialize(repeating: 0, count: partitions)
        capacity = rows
    }

    private func freeBuffers() {
        for b in buffers { b.deallocate() }
        buffers = []
        z = []
        a = []
        dz = []
        rowLoss = nil
        partitionCorrect = nil
        capacity = 0
    }
}

/// Multinomial logistic regression: one linear layer `inputs → classes` with softmax
/// cross-entropy ("fc1.weight" `[classes, inputs]`, "fc1.bias"). Default init Xavier uniform.
public final class SoftmaxRegression: MLP {
    public init(inputs: Int, classes: Int, init initKind: InitKind = .xavier, maxBatch: Int = 128,
                partitionRows: Int = MLP.defaultPartitionRows) {
        super.init(layers: [inputs, classes], activation: .relu, loss: .crossEntropy, init: initKind,
                   maxBatch: maxBatch, partitionRows: partitionRows)
    }
}

/// Linear regression: one linear layer `inputs → outputs` with mean squared error; with
/// `loss: .logistic` it is (multi-label) binary logistic regression. Default init Xavier uniform.
public final class LinearRegression: MLP {
    public init(inputs: Int, outputs: Int = 1, loss: LossKind = .mse, init initKind: InitKind = .xavier,
                maxBatch: Int = 128, partitionRows: Int = MLP.defaultPartitionRows) {
        precondition(loss != .crossEntropy, "use SoftmaxRegression for cross-entropy")
        super.init(layers: [inputs, outputs], activation: .relu, loss: loss, init: initKind,
                   maxBatch: maxBatch, partitionRows: partitionRows)
    }
}
