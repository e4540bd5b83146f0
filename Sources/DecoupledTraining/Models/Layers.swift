import COpenBLAS
import DecoupledCore
import DecoupledRandom
import Foundation

/// How a layer splits its work over threads without making results depend on the thread
/// count: a batch is cut into fixed partitions of `partitionRows` samples; every output
/// element is computed by one task with the same code, and every sum across partitions
/// (weight gradients of convolutions) runs in partition order afterwards.
struct LayerRunner {
    let pool: ParallelTasks
    let threads: Int
    let partitionRows: Int

    func partitions(_ batch: Int) -> Int { (batch + partitionRows - 1) / partitionRows }

    /// `body(partition, firstRow, endRow, worker)` for every partition of the batch.
    func overPartitions(batch: Int, _ body: (Int, Int, Int, Int) -> Void) {
        pool.run(count: partitions(batch), threads: threads) { p, worker in
            let r0 = p * partitionRows
            body(p, r0, min(r0 + partitionRows, batch), worker)
        }
    }

    /// `body(task)` for `count` independent tasks.
    func tasks(_ count: Int, _ body: (Int) -> Void) {
        pool.run(count: count, threads: threads) { t, _ in body(t) }
    }

    /// Workers the pool can run at once (scratch buffers are kept per worker).
    var workers: Int { max(threads, 1) }
}

/// Seeded weight initialisation of one layer with weights (biases take `biasInit`).
public enum WeightInit: Equatable, Sendable {
    /// He/Kaiming normal, N(0, 2/fan_in).
    case he
    /// Glorot uniform, U(±√(6/(fan_in + fan_out))).
    case xavier
    /// Glorot normal, N(0, 2/(fan_in + fan_out)) (PyTorch `xavier_normal_`).
    case xavierNormal
    /// N(0, std²) redrawn outside ±2 std (TensorFlow's `truncated_normal`, DeepOBS's 2c2d).
    case truncatedNormal(std: Double)

    /// The TOML spelling.
    public var name: String {
        switch self {
        case .he: return "he"
        case .xavier: return "xavier"
        case .xavierNormal: return "xavier_normal"
        case .truncatedNormal: return "truncated_normal"
        }
    }

    static let names = ["he", "xavier", "xavier_normal", "truncated_normal"]

    /// Fills `count` weights; fan_in/fan_out as PyTorch counts them (receptive field included).
    func fill(_ w: UnsafeMutablePointer<Float>, count: Int, fanIn: Int, fanOut: Int, rng: inout Xoshiro256) {
        switch self {
        case .he:
            let std = (2.0 / Double(fanIn)).squareRoot()
            for i in 0..<count { w[i] = Float(rng.nextGaussian() * std) }
        case .xavier:
            let bound = (6.0 / Double(fanIn + fanOut)).squareRoot()
            for i in 0..<count { w[i] = Float((2 * rng.nextDouble() - 1) * bound) }
        case .xavierNormal:
            let std = (2.0 / Double(fanIn + fanOut)).squareRoot()
            for i in 0..<count { w[i] = Float(rng.nextGaussian() * std) }
        case .truncatedNormal(let std):
            for i in 0..<count {
                var z = rng.nextGaussian()
                while abs(z) > 2 { z = rng.nextGaussian() }
                w[i] = Float(z * std)
            }
        }
    }
}

/// One layer of a `SequentialModel`: a forward and a backward pass over a whole batch of
/// per-sample activations laid out contiguously (`[batch, inputShape...]`, row-major, NCHW
/// for images).
///
/// Parameters live in the arena: the model hands each layer the whole pointer list and the
/// layer reads its own tensors from `firstParameter` on, in the order of `parameterSpecs`.
protocol Layer: AnyObject {
    /// The layer's TOML `type`, for messages.
    var typeName: String { get }
    var inputShape: [Int] { get }
    var outputShape: [Int] { get }
    /// Trainable tensors with local names ("weight", "bias"); the model prefixes the index.
    var parameterSpecs: [TensorSpec] { get }
    /// Index of this layer's first tensor in the model's parameter list (set by the model).
    var firstParameter: Int { get set }
    func initialize(_ params: [UnsafeMutablePointer<Float>], rng: inout Xoshiro256)
    /// Forward pass; `training` selects batch statistics (batch norm) and active dropout.
    func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int,
                 params: [UnsafePointer<Float>], training: Bool, runner: LayerRunner)
    /// Backward pass after a training forward on the same batch: writes this layer's
    /// parameter gradients (overwriting) and, unless `dx` is nil, ∂loss/∂x. `dy` may be
    /// clobbered.
    func backward(x: UnsafePointer<Float>, y: UnsafePointer<Float>, dy: UnsafeMutablePointer<Float>,
                  dx: UnsafeMutablePointer<Float>?, batch: Int, params: [UnsafePointer<Float>],
                  grads: [UnsafeMutablePointer<Float>], runner: LayerRunner)
    /// State besides parameters a checkpoint must hold (batch-norm statistics, dropout RNG).
    func saveState(into state: inout ModelState, prefix: String)
    func restoreState(_ state: ModelState, prefix: String) throws
}

extension Layer {
    var inputCount: Int { inputShape.reduce(1, *) }
    var outputCount: Int { outputShape.reduce(1, *) }
    func saveState(into state: inout ModelState, prefix: String) {}
    func restoreState(_ state: ModelState, prefix: String) throws {}
}

/// A float scratch buffer that grows (never shrinks) on demand.
final class GrowableBuffer {
    private(set) var buffer = AlignedBuffer(count: 0)
    var base: UnsafeMutablePointer<Float> { buffer.base }

    func reserve(_ count: Int) {
        if count > buffer.count { buffer = AlignedBuffer(count: count) }
    }
}

// MARK: - Dense

/// `y = x·Wᵀ + b` (PyTorch `nn.Linear`: weight `[out, in]`, bias `[out]`).
final class DenseLayer: Layer {
    let typeName = "dense"
    let inputShape: [Int]
    let outputShape: [Int]
    let parameterSpecs: [TensorSpec]
    var firstParameter = 0
    let weightInit: WeightInit
    let biasInit: Float
    private let nIn: Int, nOut: Int
    private let gradientTasks: [MLP.GradientTask]

    init(inputs: Int, units: Int, weightInit: WeightInit, biasInit: Float) {
        nIn = inputs
        nOut = units
        inputShape = [inputs]
        outputShape = [units]
        self.weightInit = weightInit
        self.biasInit = biasInit
        parameterSpecs = [TensorSpec(name: "weight", shape: [units, inputs], role: .weight),
                          TensorSpec(name: "bias", shape: [units], role: .bias)]
        // At most ~8 tiles: large layers (3136 → 1024) would otherwise be cut into hundreds of
        // thin tiles, each re-packing dY.
        gradientTasks = MLP.makeGradientTasks(layers: [inputs, units], tileElements: max(16_384, inputs * units / 8))
    }

    func initialize(_ params: [UnsafeMutablePointer<Float>], rng: inout Xoshiro256) {
        weightInit.fill(params[firstParameter], count: nIn * nOut, fanIn: nIn, fanOut: nOut, rng: &rng)
        let b = params[firstParameter + 1]
        for i in 0..<nOut { b[i] = biasInit }
    }

    func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int,
                 params: [UnsafePointer<Float>], training: Bool, runner: LayerRunner) {
        let w = params[firstParameter], b = params[firstParameter + 1]
        let nIn = self.nIn, nOut = self.nOut
        // Column blocks over the whole batch: each block's weights are packed once per step, not
        // once per partition (the 3 136 → 1 024 layer's 12.8 MB four times).
        let blocks = Self.columnBlocks(nOut)
        runner.tasks(blocks.count) { t in
            let j = blocks[t]
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(batch), Int32(j.count), Int32(nIn),
                        1, x, Int32(nIn), w + j.lowerBound * nIn, Int32(nIn), 0, y + j.lowerBound, Int32(nOut))
        }
        runner.overPartitions(batch: batch) { _, r0, r1, _ in
            ModelKernels.addBias(y + r0 * nOut, b, rows: r1 - r0, cols: nOut)
        }
    }

    /// Fixed column blocks of at least 128 columns (4 for a 1 024-wide output), the same for any
    /// thread count.
    static func columnBlocks(_ columns: Int) -> [Range<Int>] {
        let count = max(1, min(8, columns / 128))
        return (0..<count).map { ($0 * columns / count)..<(($0 + 1) * columns / count) }
    }

    func backward(x: UnsafePointer<Float>, y: UnsafePointer<Float>, dy: UnsafeMutablePointer<Float>,
                  dx: UnsafeMutablePointer<Float>?, batch: Int, params: [UnsafePointer<Float>],
                  grads: [UnsafeMutablePointer<Float>], runner: LayerRunner) {
        let nIn = self.nIn, nOut = self.nOut
        let gw = grads[firstParameter], gb = grads[firstParameter + 1]
        let tasks = gradientTasks
        // Weight gradient in fixed tiles, each one sgemm over the whole batch; bias as
        // column sums in batch order: no cross-thread reduction.
        runner.tasks(tasks.count) { t in
            let task = tasks[t]
            if task.isBias {
                ModelKernels.columnSums(dy, ld: nOut, rows: batch, cols: nOut, into: gb)
                return
            }
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans,
                        Int32(task.rows.count), Int32(task.cols.count), Int32(batch),
                        1, dy + task.rows.lowerBound, Int32(nOut), x + task.cols.lowerBound, Int32(nIn),
                        0, gw + task.rows.lowerBound * nIn + task.cols.lowerBound, Int32(nIn))
        }
        guard let dx else { return }
        let w = params[firstParameter]
        let blocks = Self.columnBlocks(nIn)
        runner.tasks(blocks.count) { t in
            let j = blocks[t]
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(batch), Int32(j.count), Int32(nOut),
                        1, dy, Int32(nOut), w + j.lowerBound, Int32(nIn), 0, dx + j.lowerBound, Int32(nIn))
        }
    }
}

// MARK: - Activations and flatten

/// Element-wise ReLU, tanh or exact GELU (PyTorch's `nn.ReLU`, `nn.Tanh`, `nn.GELU()`).
final class ActivationLayer: Layer {
    let kind: ActivationKind
    var typeName: String { kind.rawValue }
    let inputShape: [Int]
    var outputShape: [Int] { inputShape }
    let parameterSpecs: [TensorSpec] = []
    var firstParameter = 0

    init(_ kind: ActivationKind, shape: [Int]) {
        self.kind = kind
        inputShape = shape
    }

    func initialize(_ params: [UnsafeMutablePointer<Float>], rng: inout Xoshiro256) {}

    func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int,
                 params: [UnsafePointer<Float>], training: Bool, runner: LayerRunner) {
        let n = inputCount, kind = self.kind
        runner.overPartitions(batch: batch) { _, r0, r1, _ in
            let xs = x + r0 * n, ys = y + r0 * n
            switch kind {
            case .relu: for i in 0..<((r1 - r0) * n) { let v = xs[i]; ys[i] = v < 0 ? 0 : v }
            case .tanh: for i in 0..<((r1 - r0) * n) { ys[i] = tanhf(xs[i]) }
            case .gelu:
                for i in 0..<((r1 - r0) * n) {
                    let v = xs[i]
                    ys[i] = 0.5 * v * (1 + erff(v * ModelKernels.sqrtHalf))
                }
            }
        }
    }

    func backward(x: UnsafePointer<Float>, y: UnsafePointer<Float>, dy: UnsafeMutablePointer<Float>,
                  dx: UnsafeMutablePointer<Float>?, batch: Int, params: [UnsafePointer<Float>],
                  grads: [UnsafeMutablePointer<Float>], runner: LayerRunner) {
        guard let dx else { return }
        let n = inputCount, kind = self.kind
        runner.overPartitions(batch: batch) { _, r0, r1, _ in
            let count = (r1 - r0) * n
            if kind == .relu {
                ModelKernels.reluBackward(dy: dy + r0 * n, z: x + r0 * n, into: dx + r0 * n, n: count)
                return
            }
            (dx + r0 * n).update(from: dy + r0 * n, count: count)
            ModelKernels.activationBackward(kind, d: dx + r0 * n, z: x + r0 * n, a: y + r0 * n, n: count)
        }
    }
}

/// `[C, H, W] → [C·H·W]` in NCHW order (`nn.Flatten`): a copy, so every layer owns its output.
final class FlattenLayer: Layer {
    let typeName = "flatten"
    let inputShape: [Int]
    var outputShape: [Int] { [inputCount] }
    let parameterSpecs: [TensorSpec] = []
    var firstParameter = 0

    init(shape: [Int]) { inputShape = shape }

    func initialize(_ params: [UnsafeMutablePointer<Float>], rng: inout Xoshiro256) {}

    func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int,
                 params: [UnsafePointer<Float>], training: Bool, runner: LayerRunner) {
        y.update(from: x, count: batch * inputCount)
    }

    func backward(x: UnsafePointer<Float>, y: UnsafePointer<Float>, dy: UnsafeMutablePointer<Float>,
                  dx: UnsafeMutablePointer<Float>?, batch: Int, params: [UnsafePointer<Float>],
                  grads: [UnsafeMutablePointer<Float>], runner: LayerRunner) {
        dx?.update(from: dy, count: batch * inputCount)
    }
}

// MARK: - Convolution

/// Geometry of a 2-D window (convolution or pooling) over a `[C, H, W]` input.
struct Window2D: Equatable {
    var kernel: (h: Int, w: Int)
    var stride: (h: Int, w: Int)
    /// Zeros (or −∞ for max pooling) added before the first row/column and after the last.
    var padTop: Int, padBottom: Int, padLeft: Int, padRight: Int
    var height: Int, width: Int

    var outHeight: Int { (height + padTop + padBottom - kernel.h) / stride.h + 1 }
    var outWidth: Int { (width + padLeft + padRight - kernel.w) / stride.w + 1 }

    static func == (a: Window2D, b: Window2D) -> Bool {
        a.kernel == b.kernel && a.stride == b.stride && a.padTop == b.padTop && a.padBottom == b.padBottom
            && a.padLeft == b.padLeft && a.padRight == b.padRight && a.height == b.height && a.width == b.width
    }
}

/// 2-D convolution, NCHW, weight `[out, in, kh, kw]` and bias `[out]` (PyTorch `nn.Conv2d`
/// layout), on oneDNN (`OneDNNConvolution`), the library PyTorch's CPU convolutions run on: it
/// beat im2col + OpenBLAS sgemm by 1.4× on fmnist_2c2d (docs/problems.md "Speed").
///
/// Each partition of the batch is one oneDNN call on one thread, so every sum runs in an order
/// fixed by the batch alone: the weight and bias gradients of each partition are summed in
/// partition order afterwards — bit-identical for any thread count.
final class Conv2DLayer: Layer {
    let typeName = "conv2d"
    let inputShape: [Int]
    let outputShape: [Int]
    let parameterSpecs: [TensorSpec]
    var firstParameter = 0
    let window: Window2D
    let inChannels: Int, outChannels: Int
    let weightInit: WeightInit
    let biasInit: Float
    /// Weights per filter (in·kh·kw).
    private let k: Int
    /// One oneDNN convolution per partition size met so far (the batch's partitions, the short
    /// last one, evaluation batches).
    private var convolutions: [Int: OneDNNConvolution] = [:]
    private let workspaces = GrowableBuffer()       // per worker: oneDNN's blocked copies and scratchpad
    private let partialGradients = GrowableBuffer() // per partition: [out·k + out]

    init(inChannels: Int, window: Window2D, filters: Int, weightInit: WeightInit, biasInit: Float) {
        self.inChannels = inChannels
        self.outChannels = filters
        self.window = window
        self.weightInit = weightInit
        self.biasInit = biasInit
        inputShape = [inChannels, window.height, window.width]
        outputShape = [filters, window.outHeight, window.outWidth]
        k = inChannels * window.kernel.h * window.kernel.w
        parameterSpecs = [TensorSpec(name: "weight", shape: [filters, inChannels, window.kernel.h, window.kernel.w], role: .weight),
                          TensorSpec(name: "bias", shape: [filters], role: .bias)]
    }

    func initialize(_ params: [UnsafeMutablePointer<Float>], rng: inout Xoshiro256) {
        let field = window.kernel.h * window.kernel.w
        weightInit.fill(params[firstParameter], count: outChannels * k, fanIn: inChannels * field,
                        fanOut: outChannels * field, rng: &rng)
        let b = params[firstParameter + 1]
        for i in 0..<outChannels { b[i] = biasInit }
    }

    /// The convolutions of every partition size of `batch`, holding `weight`, and a workspace
    /// per worker large enough for each (made before the partitions run in parallel).
    private func prepare(batch: Int, weight: UnsafePointer<Float>, runner: LayerRunner) -> (stride: Int, base: UnsafeMutablePointer<Float>) {
        let full = min(runner.partitionRows, batch), last = batch - (runner.partitions(batch) - 1) * runner.partitionRows
        var stride = 0
        for rows in Set([full, last]) {
            let convolution = convolutions[rows] ?? OneDNNConvolution(batch: rows, inChannels: inChannels, filters: outChannels, window: window)
            convolutions[rows] = convolution
            convolution.setWeights(weight)
            stride = max(stride, convolution.workspaceFloats)
        }
        workspaces.reserve(runner.workers * stride)
        return (stride, workspaces.base)
    }

    func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int,
                 params: [UnsafePointer<Float>], training: Bool, runner: LayerRunner) {
        let bias = params[firstParameter + 1], nIn = inputCount, nOut = outputCount
        let workspace = prepare(batch: batch, weight: params[firstParameter], runner: runner)
        let convolutions = self.convolutions
        runner.overPartitions(batch: batch) { _, r0, r1, worker in
            convolutions[r1 - r0]!.forward(x + r0 * nIn, bias: bias, y + r0 * nOut,
                                           workspace: workspace.base + worker * workspace.stride)
        }
    }

    func backward(x: UnsafePointer<Float>, y: UnsafePointer<Float>, dy: UnsafeMutablePointer<Float>,
                  dx: UnsafeMutablePointer<Float>?, batch: Int, params: [UnsafePointer<Float>],
                  grads: [UnsafeMutablePointer<Float>], runner: LayerRunner) {
        let k = self.k, out = outChannels, nIn = inputCount, nOut = outputCount
        let partial = out * k + out
        let partitions = runner.partitions(batch)
        partialGradients.reserve(partitions * partial)
        let partials = partialGradients.base
        // The forward pass of this batch set the same weights already; setting them again costs
        // two copies of the weights and keeps backward correct on its own.
        let workspace = prepare(batch: batch, weight: params[firstParameter], runner: runner)
        let convolutions = self.convolutions
        runner.overPartitions(batch: batch) { p, r0, r1, worker in
            let gw = partials + p * partial
            convolutions[r1 - r0]!.backward(x + r0 * nIn, dy: dy + r0 * nOut, weightGradient: gw, biasGradient: gw + out * k,
                                            dx: dx.map { $0 + r0 * nIn }, workspace: workspace.base + worker * workspace.stride)
        }
        // Partition sums in partition order, element ranges in parallel.
        let gw = grads[firstParameter], gb = grads[firstParameter + 1]
        let chunkElements = 4096
        runner.tasks((partial + chunkElements - 1) / chunkElements) { t in
            let lo = t * chunkElements, hi = min(lo + chunkElements, partial)
            for i in lo..<hi {
                var sum = partials[i]
                for q in 1..<max(partitions, 1) { sum += partials[q * partial + i] }
                if i < out * k { gw[i] = sum } else { gb[i - out * k] = sum }
            }
        }
    }
}

// MARK: - Pooling

/// Max or average pooling over `[C, H, W]` (PyTorch `nn.MaxPool2d` / `nn.AvgPool2d` with
/// `count_include_pad=True`). Max pooling takes the first maximum of a window and routes the
/// whole gradient to it; padding counts as −∞ for max and 0 for average.
final class Pool2DLayer: Layer {
    enum Mode { case max, average }
    let mode: Mode
    var typeName: String { mode == .max ? "max_pool" : "avg_pool" }
    let inputShape: [Int]
    let outputShape: [Int]
    let parameterSpecs: [TensorSpec] = []
    var firstParameter = 0
    let window: Window2D
    private let channels: Int
    /// Per output element of the last training forward: the input index of its maximum.
    private var argmax: [Int32] = []

    init(mode: Mode, channels: Int, window: Window2D) {
        self.mode = mode
        self.channels = channels
        self.window = window
        inputShape = [channels, window.height, window.width]
        outputShape = [channels, window.outHeight, window.outWidth]
    }

    func initialize(_ params: [UnsafeMutablePointer<Float>], rng: inout Xoshiro256) {}

    func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int,
                 params: [UnsafePointer<Float>], training: Bool, runner: LayerRunner) {
        let w = window, oh = w.outHeight, ow = w.outWidth, hw = w.height * w.width
        let nIn = inputCount, nOut = outputCount, channels = self.channels, mode = self.mode
        let scale = 1 / Float(w.kernel.h * w.kernel.w)
        let unpadded = w.padTop == 0 && w.padBottom == 0 && w.padLeft == 0 && w.padRight == 0
        if mode == .max && argmax.count < batch * nOut { argmax = [Int32](repeating: 0, count: batch * nOut) }
        argmax.withUnsafeMutableBufferPointer { arg in
            let arg = arg.baseAddress
            runner.overPartitions(batch: batch) { _, r0, r1, _ in
                if mode == .max && unpadded {
                    Self.maxPoolInside(x, y, arg!, rows: r0..<r1, window: w, channels: channels)
                    return
                }
                for s in r0..<r1 {
                    for c in 0..<channels {
                        let xc = x + s * nIn + c * hw
                        let base = s * nOut + c * oh * ow
                        for oy in 0..<oh {
                            for ox in 0..<ow {
                                var best = -Float.infinity, bestIndex = -1, sum: Float = 0
                                for i in 0..<w.kernel.h {
                                    let iy = oy * w.stride.h - w.padTop + i
                                    guard iy >= 0 && iy < w.height else { continue }
                                    for j in 0..<w.kernel.w {
                                        let ix = ox * w.stride.w - w.padLeft + j
                                        guard ix >= 0 && ix < w.width else { continue }
                                        let v = xc[iy * w.width + ix]
                                        sum += v
                                        if bestIndex < 0 || v > best || (v.isNaN && !best.isNaN) {
                                            best = v
                                            bestIndex = c * hw + iy * w.width + ix
                                        }
                                    }
                                }
                                if mode == .max {
                                    y[base + oy * ow + ox] = best
                                    arg![base + oy * ow + ox] = Int32(bestIndex)
                                } else {
                                    y[base + oy * ow + ox] = sum * scale
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Max pooling of samples `rows` when every window lies inside the image (no padding): the
    /// general loop without its bounds checks, with the same choice (the first maximum; a NaN
    /// wins over numbers).
    private static func maxPoolInside(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                                      _ arg: UnsafeMutablePointer<Int32>, rows: Range<Int>, window w: Window2D,
                                      channels: Int) {
        let oh = w.outHeight, ow = w.outWidth, width = w.width, hw = w.height * width
        let kh = w.kernel.h, kw = w.kernel.w, sh = w.stride.h, sw = w.stride.w
        for s in rows {
            for c in 0..<channels {
                let xc = x + (s * channels + c) * hw
                let ys = y + (s * channels + c) * oh * ow, args = arg + (s * channels + c) * oh * ow
                for oy in 0..<oh {
                    if kh == 2 && kw == 2 && sh == 2 && sw == 2 && ow >= 8 {
                        maxPool2x2(row: xc + 2 * oy * width, width: width, outputs: ow,
                                   indexBase: Int32(c * hw + 2 * oy * width), ys + oy * ow, args + oy * ow)
                        continue
                    }
                    for ox in 0..<ow {
                        let first = oy * sh * width + ox * sw
                        var best = xc[first], bestIndex = first
                        for i in 0..<kh {
                            let start = first + i * width
                            for j in 0..<kw {
                                let v = xc[start + j]
                                if v > best || (v.isNaN && !best.isNaN) {
                                    best = v
                                    bestIndex = start + j
                                }
                            }
                        }
                        ys[oy * ow + ox] = best
                        args[oy * ow + ox] = Int32(c * hw + bestIndex)
                    }
                }
            }
        }
    }

    /// One output row (of at least 8) of a 2×2, stride-2 max pooling (fmnist_2c2d's first pool), 8
    /// outputs at a time from the input rows `row` and `row + width`, the last block overlapping
    /// the one before. Branch-free, with the scalar loop's choice: the window is scanned in the
    /// same order, and a value replaces the best only when greater, or NaN over a number. (Rows
    /// of fewer than 8 outputs stay scalar: filling vectors element by element cost more.)
    private static func maxPool2x2(row: UnsafePointer<Float>, width: Int, outputs: Int, indexBase: Int32,
                                   _ y: UnsafeMutablePointer<Float>, _ arg: UnsafeMutablePointer<Int32>) {
        func block(_ a: SIMD16<Float>, _ b: SIMD16<Float>, first: Int) -> (SIMD8<Float>, SIMD8<Int32>) {
            var best = a.evenHalf, offset = SIMD8<Int32>()
            func consider(_ v: SIMD8<Float>, _ o: Int32) {
                let better = (v .> best) .| ((v .!= v) .& (best .== best))
                best.replace(with: v, where: better)
                offset.replace(with: o, where: better)
            }
            consider(a.oddHalf, 1)
            consider(b.evenHalf, Int32(width))
            consider(b.oddHalf, Int32(width + 1))
            let lanes = SIMD8<Int32>(0, 2, 4, 6, 8, 10, 12, 14)
            return (best, lanes &+ offset &+ (indexBase + Int32(2 * first)))
        }
        let source = UnsafeRawPointer(row)
        var ox = 0
        while ox < outputs {
            let first = min(ox, outputs - 8)
            let (best, index) = block(source.loadUnaligned(fromByteOffset: 8 * first, as: SIMD16<Float>.self),
                                      source.loadUnaligned(fromByteOffset: 4 * (width + 2 * first), as: SIMD16<Float>.self),
                                      first: first)
            UnsafeMutableRawPointer(y + first).storeBytes(of: best, as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(arg + first).storeBytes(of: index, as: SIMD8<Int32>.self)
            ox = first + 8
        }
    }

    func backward(x: UnsafePointer<Float>, y: UnsafePointer<Float>, dy: UnsafeMutablePointer<Float>,
                  dx: UnsafeMutablePointer<Float>?, batch: Int, params: [UnsafePointer<Float>],
                  grads: [UnsafeMutablePointer<Float>], runner: LayerRunner) {
        guard let dx else { return }
        let w = window, oh = w.outHeight, ow = w.outWidth, hw = w.height * w.width
        let nIn = inputCount, nOut = outputCount, channels = self.channels, mode = self.mode
        let scale = 1 / Float(w.kernel.h * w.kernel.w)
        argmax.withUnsafeBufferPointer { arg in
            let arg = arg.baseAddress
            runner.overPartitions(batch: batch) { _, r0, r1, _ in
                (dx + r0 * nIn).update(repeating: 0, count: (r1 - r0) * nIn)
                for s in r0..<r1 {
                    let dxs = dx + s * nIn
                    if mode == .max {
                        for o in 0..<nOut where arg![s * nOut + o] >= 0 {
                            dxs[Int(arg![s * nOut + o])] += dy[s * nOut + o]
                        }
                        continue
                    }
                    for c in 0..<channels {
                        let dc = dxs + c * hw
                        for oy in 0..<oh {
                            for ox in 0..<ow {
                                let g = dy[s * nOut + c * oh * ow + oy * ow + ox] * scale
                                for i in 0..<w.kernel.h {
                                    let iy = oy * w.stride.h - w.padTop + i
                                    guard iy >= 0 && iy < w.height else { continue }
                                    for j in 0..<w.kernel.w {
                                        let ix = ox * w.stride.w - w.padLeft + j
                                        if ix >= 0 && ix < w.width { dc[iy * w.width + ix] += g }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

// MARK: - Dropout

/// Inverted dropout (`nn.Dropout`): in training each element is zeroed with probability
/// `rate` and the rest scaled by 1/(1 − rate); identity in evaluation.
///
/// The mask of a step comes from the layer's own xoshiro256** stream (one draw per step keys
/// a per-sample generator, so masks do not depend on the partitioning); the stream's state is
/// saved in checkpoints, so a resumed run draws the same masks.
final class DropoutLayer: Layer {
    let typeName = "dropout"
    let inputShape: [Int]
    var outputShape: [Int] { inputShape }
    let parameterSpecs: [TensorSpec] = []
    var firstParameter = 0
    let rate: Double
    var generator = Xoshiro256(seed: 0)
    private let mask = GrowableBuffer()

    init(rate: Double, shape: [Int]) {
        self.rate = rate
        inputShape = shape
    }

    func initialize(_ params: [UnsafeMutablePointer<Float>], rng: inout Xoshiro256) {
        generator = Xoshiro256(seed: rng.next())
    }

    func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int,
                 params: [UnsafePointer<Float>], training: Bool, runner: LayerRunner) {
        let n = inputCount
        guard training && rate > 0 else {
            y.update(from: x, count: batch * n)
            return
        }
        let key = generator.next()
        mask.reserve(batch * n)
        let mask = self.mask.base
        // Keep an element when its 24-bit uniform draw is ≥ rate.
        let threshold = UInt64((rate * 16_777_216).rounded(.up))
        let keep = Float(1 / (1 - rate))
        runner.overPartitions(batch: batch) { _, r0, r1, _ in
            for s in r0..<r1 {
                var g = Xoshiro256(seed: key ^ (UInt64(s) &* 0x9e37_79b9_7f4a_7c15))
                let m = mask + s * n, xs = x + s * n, ys = y + s * n
                for i in 0..<n {
                    m[i] = (g.next() >> 40) >= threshold ? keep : 0
                    ys[i] = xs[i] * m[i]
                }
            }
        }
    }

    func backward(x: UnsafePointer<Float>, y: UnsafePointer<Float>, dy: UnsafeMutablePointer<Float>,
                  dx: UnsafeMutablePointer<Float>?, batch: Int, params: [UnsafePointer<Float>],
                  grads: [UnsafeMutablePointer<Float>], runner: LayerRunner) {
        guard let dx else { return }
        let n = batch * inputCount
        if rate <= 0 {
            dx.update(from: dy, count: n)
            return
        }
        let mask = self.mask.base
        for i in 0..<n { dx[i] = dy[i] * mask[i] }
    }

    func saveState(into state: inout ModelState, prefix: String) {
        state.generators[prefix + "generator"] = generator.state
    }

    func restoreState(_ state: ModelState, prefix: String) throws {
        guard let words = state.generators[prefix + "generator"] else {
            throw ModelError.invalidConfig("the checkpoint's model state has no generator '\(prefix)generator' (dropout)")
        }
        generator = try Xoshiro256(state: words)
    }
}

// MARK: - Batch normalization

/// Batch normalization over the batch (`[F]` inputs, `nn.BatchNorm1d`) or the batch and the
/// pixels (`[C, H, W]` inputs, `nn.BatchNorm2d`), with PyTorch's conventions: biased variance
/// to normalize, unbiased variance in the running estimate, running = (1 − momentum)·running +
/// momentum·batch statistic, eps inside the square root. Evaluation uses the running
/// statistics. `weight` (γ, starts at 1) and `bias` (β, starts at 0) have role `norm`;
/// `running_mean`, `running_var` and `num_batches_tracked` are saved in checkpoints.
///
/// Each channel's statistics and gradients are summed in sample order (in Double) by one
/// task: bit-identical for any thread count.
final class BatchNormLayer: Layer {
    var typeName: String { inputShape.count == 1 ? "batch_norm (1d)" : "batch_norm (2d)" }
    let inputShape: [Int]
    var outputShape: [Int] { inputShape }
    let parameterSpecs: [TensorSpec]
    var firstParameter = 0
    let momentum: Double
    let eps: Double
    let channels: Int
    /// Elements per channel and sample (H·W, or 1 for `[F]` inputs).
    private let spatial: Int
    var runningMean: [Float]
    var runningVar: [Float]
    var batchesTracked = 0
    /// Per channel, from the last training forward: batch mean and 1/√(var + eps).
    private var mean: [Double]
    private var inverseStd: [Double]

    init(shape: [Int], momentum: Double, eps: Double) {
        inputShape = shape
        channels = shape[0]
        spatial = shape.dropFirst().reduce(1, *)
        self.momentum = momentum
        self.eps = eps
        runningMean = [Float](repeating: 0, count: shape[0])
        runningVar = [Float](repeating: 1, count: shape[0])
        mean = [Double](repeating: 0, count: shape[0])
        inverseStd = [Double](repeating: 1, count: shape[0])
        parameterSpecs = [TensorSpec(name: "weight", shape: [shape[0]], role: .norm),
                          TensorSpec(name: "bias", shape: [shape[0]], role: .norm)]
    }

    func initialize(_ params: [UnsafeMutablePointer<Float>], rng: inout Xoshiro256) {
        params[firstParameter].update(repeating: 1, count: channels)
        params[firstParameter + 1].update(repeating: 0, count: channels)
        runningMean = [Float](repeating: 0, count: channels)
        runningVar = [Float](repeating: 1, count: channels)
        batchesTracked = 0
    }

    /// Channel tasks: groups of channels so that a task has some work.
    private func channelGroups() -> (count: Int, size: Int) {
        let size = max(1, 256 / max(spatial, 1))
        return ((channels + size - 1) / size, size)
    }

    func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int,
                 params: [UnsafePointer<Float>], training: Bool, runner: LayerRunner) {
        let gamma = params[firstParameter], beta = params[firstParameter + 1]
        let channels = self.channels, spatial = self.spatial, stride = channels * spatial
        let groups = channelGroups()
        if !training {
            runningMean.withUnsafeBufferPointer { rm in
                runningVar.withUnsafeBufferPointer { rv in
                    runner.tasks(groups.count) { t in
                        for c in (t * groups.size)..<min((t + 1) * groups.size, channels) {
                            let scale = gamma[c] / (rv[c] + Float(self.eps)).squareRoot()
                            let shift = beta[c] - rm[c] * scale
                            for s in 0..<batch {
                                let xs = x + s * stride + c * spatial, ys = y + s * stride + c * spatial
                                for q in 0..<spatial { ys[q] = xs[q] * scale + shift }
                            }
                        }
                    }
                }
            }
            return
        }
        let n = Double(batch * spatial)
        let m = momentum
        mean.withUnsafeMutableBufferPointer { meanOut in
            inverseStd.withUnsafeMutableBufferPointer { invOut in
                runningMean.withUnsafeMutableBufferPointer { rm in
                    runningVar.withUnsafeMutableBufferPointer { rv in
                        runner.tasks(groups.count) { t in
                            for c in (t * groups.size)..<min((t + 1) * groups.size, channels) {
                                var sum = 0.0
                                for s in 0..<batch {
                                    let xs = x + s * stride + c * spatial
                                    for q in 0..<spatial { sum += Double(xs[q]) }
                                }
                                let mu = sum / n
                                var squares = 0.0
                                for s in 0..<batch {
                                    let xs = x + s * stride + c * spatial
                                    for q in 0..<spatial { let d = Double(xs[q]) - mu; squares += d * d }
                                }
                                let variance = squares / n
                                let inv = 1 / (variance + self.eps).squareRoot()
                                meanOut[c] = mu
                                invOut[c] = inv
                                let g = Double(gamma[c]), b = Double(beta[c])
                                for s in 0..<batch {
                                    let xs = x + s * stride + c * spatial, ys = y + s * stride + c * spatial
                                    for q in 0..<spatial { ys[q] = Float((Double(xs[q]) - mu) * inv * g + b) }
                                }
                                let unbiased = n > 1 ? variance * n / (n - 1) : variance
                                rm[c] = Float((1 - m) * Double(rm[c]) + m * mu)
                                rv[c] = Float((1 - m) * Double(rv[c]) + m * unbiased)
                            }
                        }
                    }
                }
            }
        }
        batchesTracked += 1
    }

    func backward(x: UnsafePointer<Float>, y: UnsafePointer<Float>, dy: UnsafeMutablePointer<Float>,
                  dx: UnsafeMutablePointer<Float>?, batch: Int, params: [UnsafePointer<Float>],
                  grads: [UnsafeMutablePointer<Float>], runner: LayerRunner) {
        let gamma = params[firstParameter]
        let gGamma = grads[firstParameter], gBeta = grads[firstParameter + 1]
        let channels = self.channels, spatial = self.spatial, stride = channels * spatial
        let n = Double(batch * spatial)
        let groups = channelGroups()
        mean.withUnsafeBufferPointer { meanIn in
            inverseStd.withUnsafeBufferPointer { invIn in
                runner.tasks(groups.count) { t in
                    for c in (t * groups.size)..<min((t + 1) * groups.size, channels) {
                        let mu = meanIn[c], inv = invIn[c]
                        var sumDy = 0.0, sumDyXhat = 0.0
                        for s in 0..<batch {
                            let xs = x + s * stride + c * spatial, ds = dy + s * stride + c * spatial
                            for q in 0..<spatial {
                                let d = Double(ds[q])
                                sumDy += d
                                sumDyXhat += d * (Double(xs[q]) - mu) * inv
                            }
                        }
                        gBeta[c] = Float(sumDy)
                        gGamma[c] = Float(sumDyXhat)
                        guard let dx else { continue }
                        // dx = γ·inv/n · (n·dy − Σdy − x̂·Σ(dy·x̂))
                        let k = Double(gamma[c]) * inv / n
                        for s in 0..<batch {
                            let xs = x + s * stride + c * spatial, ds = dy + s * stride + c * spatial
                            let out = dx + s * stride + c * spatial
                            for q in 0..<spatial {
                                let xhat = (Double(xs[q]) - mu) * inv
                                out[q] = Float(k * (n * Double(ds[q]) - sumDy - xhat * sumDyXhat))
                            }
                        }
                    }
                }
            }
        }
    }

    func saveState(into state: inout ModelState, prefix: String) {
        state.buffers[prefix + "running_mean"] = runningMean.map(\.bitPattern)
        state.buffers[prefix + "running_var"] = runningVar.map(\.bitPattern)
        state.counters[prefix + "num_batches_tracked"] = batchesTracked
    }

    func restoreState(_ state: ModelState, prefix: String) throws {
        for (name, count) in [("running_mean", channels), ("running_var", channels)] {
            guard let bits = state.buffers[prefix + name], bits.count == count else {
                throw ModelError.invalidConfig("the checkpoint's model state has no buffer '\(prefix)\(name)' of \(count) values (batch norm)")
            }
            let values = bits.map(Float.init(bitPattern:))
            if name == "running_mean" { runningMean = values } else { runningVar = values }
        }
        batchesTracked = state.counters[prefix + "num_batches_tracked"] ?? 0
    }
}

/// Model state besides the parameters that a checkpoint must hold for a bit-identical resume:
/// batch-norm running statistics and dropout generators. Keys are PyTorch `state_dict` names
/// ("1.running_mean"); floats are stored as IEEE-754 bit patterns, so JSON keeps them exactly.
public struct ModelState: Codable, Equatable, Sendable {
    /// Non-trainable tensors (`running_mean`, `running_var`) as float bit patterns.
    public var buffers: [String: [UInt32]] = [:]
    /// Integer buffers (`num_batches_tracked`).
    public var counters: [String: Int] = [:]
    /// xoshiro256** states of dropout layers ("3.generator").
    public var generators: [String: [UInt64]] = [:]

    public init() {}

    /// The float values of a buffer, if present.
    public func buffer(_ name: String) -> [Float]? { buffers[name].map { $0.map(Float.init(bitPattern:)) } }
}
