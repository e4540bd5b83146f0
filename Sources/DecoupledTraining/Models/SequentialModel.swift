import DecoupledCore
import DecoupledRandom

/// A model made of a list of layers applied in order (`[model] layers = [...]`), with the
/// data loss on the last layer's outputs.
///
/// - Parameter names follow `torch.nn.Sequential`: layer `i`'s tensors are "i.weight" and
///   "i.bias" in PyTorch's layouts, so an `nn.Sequential` with the same layers loads them with
///   `load_state_dict` (batch-norm buffers come from the model state, docs/problems.md).
/// - Training (`lossAndGradients`) uses batch statistics and active dropout; `evaluate` uses
///   running statistics and no dropout, and changes no state.
/// - Determinism: every layer splits the batch into fixed partitions of `partitionRows` rows
///   and reduces across them in a fixed order, so losses and gradients are bit-identical for
///   any thread count (OpenBLAS is pinned to one thread per call).
public final class SequentialModel: Model {
    public let parameterSpecs: [TensorSpec]
    public let inputShape: [Int]
    public var inputCount: Int { inputShape.reduce(1, *) }
    public let outputCount: Int
    public let loss: LossKind
    public let partitionRows: Int
    /// Layer descriptions, for messages and `decoupled problems list`.
    public let layerSummaries: [String]
    let layers: [Layer]
    private let pool = ParallelTasks()
    /// Training activations: the output of every layer ([rows, layer output]).
    private var outputs: [GrowableBuffer]
    /// Evaluation ping-pong buffers (no activation has to survive the pass).
    private let evaluation = (GrowableBuffer(), GrowableBuffer())
    /// ∂loss/∂(layer output), ping-pong.
    private let gradients = (GrowableBuffer(), GrowableBuffer())
    private var rowLoss: [Double] = []
    private var partitionCorrect: [Int] = []

    /// Rows per partition. A batch of 128 gives 4 partitions (balanced on 1–4 threads).
    public static let defaultPartitionRows = 32

    init(inputShape: [Int], layers: [Layer], loss: LossKind, partitionRows: Int) {
        self.inputShape = inputShape
        self.layers = layers
        self.loss = loss
        self.partitionRows = partitionRows
        self.outputCount = layers.last!.outputCount
        var specs: [TensorSpec] = []
        for (i, layer) in layers.enumerated() {
            layer.firstParameter = specs.count
            specs += layer.parameterSpecs.map { TensorSpec(name: "\(i).\($0.name)", shape: $0.shape, role: $0.role) }
        }
        parameterSpecs = specs
        layerSummaries = layers.enumerated().map { i, l in
            "\(i) \(l.typeName) \(l.inputShape) → \(l.outputShape)"
        }
        outputs = layers.map { _ in GrowableBuffer() }
        BLASThreads.pin()
    }

    /// Floats per sample of the training buffers: every layer's output, the two gradient
    /// buffers, and the masks and indices dropout and max pooling keep.
    public var activationFloatsPerSample: Int {
        let widest = layers.map { max($0.inputCount, $0.outputCount) }.max()!
        return layers.reduce(0) { $0 + $1.outputCount * ($1 is DropoutLayer || $1 is Pool2DLayer ? 2 : 1) } + 2 * widest
    }

    public func initialize(params: [UnsafeMutablePointer<Float>], rng: inout Xoshiro256) {
        precondition(params.count == parameterSpecs.count, "expected \(parameterSpecs.count) parameter tensors")
        for layer in layers { layer.initialize(params, rng: &rng) }
    }

    public func lossAndGradients(x: UnsafePointer<Float>, targets: Targets, batch: Int,
                                 params: [UnsafePointer<Float>], grads: [UnsafeMutablePointer<Float>],
                                 threads: Int) -> BatchResult {
        precondition(grads.count == parameterSpecs.count, "expected \(parameterSpecs.count) gradient tensors")
        let runner = LayerRunner(pool: pool, threads: threads, partitionRows: partitionRows)
        var input = x
        for (l, layer) in layers.enumerated() {
            outputs[l].reserve(batch * layer.outputCount)
            layer.forward(input, outputs[l].base, batch: batch, params: params, training: true, runner: runner)
            input = UnsafePointer(outputs[l].base)
        }
        let widest = layers.map { max($0.inputCount, $0.outputCount) }.max()!
        gradients.0.reserve(batch * widest)
        gradients.1.reserve(batch * widest)
        var dy = gradients.0.base, dx = gradients.1.base
        let result = computeLoss(logits: input, targets: targets, batch: batch, dz: dy, runner: runner)
        for l in stride(from: layers.count - 1, through: 0, by: -1) {
            let layerInput = l == 0 ? x : UnsafePointer(outputs[l - 1].base)
            layers[l].backward(x: layerInput, y: outputs[l].base, dy: dy, dx: l == 0 ? nil : dx, batch: batch,
                               params: params, grads: grads, runner: runner)
            swap(&dy, &dx)
        }
        return result
    }

    public func evaluate(x: UnsafePointer<Float>, targets: Targets, batch: Int,
                         params: [UnsafePointer<Float>], threads: Int) -> BatchResult {
        let runner = LayerRunner(pool: pool, threads: threads, partitionRows: partitionRows)
        let widest = layers.map(\.outputCount).max()!
        evaluation.0.reserve(batch * widest)
        evaluation.1.reserve(batch * widest)
        var input = x
        var out = evaluation.0.base, spare = evaluation.1.base
        for layer in layers {
            layer.forward(input, out, batch: batch, params: params, training: false, runner: runner)
            input = UnsafePointer(out)
            swap(&out, &spare)
        }
        gradients.0.reserve(batch * outputCount)
        return computeLoss(logits: input, targets: targets, batch: batch, dz: gradients.0.base, runner: runner)
    }

    /// The mean data loss (row losses summed in row order) and correct predictions; writes
    /// ∂loss/∂logits to `dz`.
    private func computeLoss(logits: UnsafePointer<Float>, targets: Targets, batch: Int,
                             dz: UnsafeMutablePointer<Float>, runner: LayerRunner) -> BatchResult {
        if rowLoss.count < batch { rowLoss = [Double](repeating: 0, count: batch) }
        let partitions = runner.partitions(batch)
        if partitionCorrect.count < partitions { partitionCorrect = [Int](repeating: 0, count: partitions) }
        let loss = self.loss, c = outputCount
        rowLoss.withUnsafeMutableBufferPointer { rows in
            partitionCorrect.withUnsafeMutableBufferPointer { correct in
                runner.overPartitions(batch: batch) { p, r0, r1, _ in
                    correct[p] = ModelKernels.loss(loss, targets: targets, z: logits, cols: c, r0: r0, r1: r1,
                                                   batch: batch, dz: dz, rowLoss: rows.baseAddress!)
                }
            }
        }
        return ModelKernels.batchResult(loss, rowLoss: rowLoss.prefix(batch), partitionCorrect: partitionCorrect.prefix(partitions),
                                        batch: batch, outputs: c)
    }

    /// Batch-norm statistics and dropout generators, under PyTorch `state_dict` names.
    public var state: ModelState? {
        var s = ModelState()
        for (i, layer) in layers.enumerated() { layer.saveState(into: &s, prefix: "\(i).") }
        return s == ModelState() ? nil : s
    }

    public func restore(_ state: ModelState?) throws {
        let s = state ?? ModelState()
        for (i, layer) in layers.enumerated() { try layer.restoreState(s, prefix: "\(i).") }
    }
}
