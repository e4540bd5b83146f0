import DecoupledCore
import DecoupledRandom

/// A differentiable model with hand-written forward and backward passes.
///
/// Parameters live outside the model (in the arena); every call receives one pointer per
/// entry of `parameterSpecs`, in the same order. A model owns only scratch buffers, so one
/// instance must not be used by two callers at the same time.
///
/// Determinism: for a fixed batch size, `lossAndGradients` and `evaluate` return bit-identical
/// losses and gradients whatever `threads` is (work is split into a fixed set of partitions
/// that does not depend on the thread count, and every reduction runs in a fixed order).
public protocol Model: AnyObject {
    /// Parameter tensors in a fixed order, names like "fc1.weight", "fc1.bias"; roles weight/bias.
    var parameterSpecs: [TensorSpec] { get }
    /// Features per sample (columns of `x`).
    var inputCount: Int { get }
    /// Model outputs per sample: classes for cross-entropy, target columns for MSE/logistic.
    var outputCount: Int { get }
    /// The data loss this model computes.
    var loss: LossKind { get }

    /// Fills `params` (one pointer per spec, same order, each `spec.count` floats) with the
    /// seeded initialisation the model was configured with.
    func initialize(params: [UnsafeMutablePointer<Float>], rng: inout Xoshiro256)

    /// Forward and backward pass on a minibatch.
    ///
    /// - `x`: row-major `[batch, inputCount]`.
    /// - `targets`: `.labels` for cross-entropy, `.values` (`[batch, outputCount]`) for MSE and
    ///   logistic.
    /// - `grads`: overwritten (not accumulated) with the gradient of the returned mean data
    ///   loss (see `LossKind` for what "mean" divides by).
    /// - `threads`: at most this many workers (`DispatchQueue.concurrentPerform`); ≤ 1 runs on
    ///   the calling thread. Results do not depend on it.
    /// - Returns the mean data loss and the number of correct predictions.
    func lossAndGradients(x: UnsafePointer<Float>, targets: Targets, batch: Int,
                          params: [UnsafePointer<Float>], grads: [UnsafeMutablePointer<Float>],
                          threads: Int) -> BatchResult

    /// Forward only (evaluation). The loss is bit-identical to the one `lossAndGradients`
    /// returns for the same batch and parameters.
    func evaluate(x: UnsafePointer<Float>, targets: Targets, batch: Int,
                  params: [UnsafePointer<Float>], threads: Int) -> BatchResult

    /// State besides the parameters that training changes and a checkpoint must hold
    /// (batch-norm running statistics, dropout generators); nil for models without any.
    var state: ModelState? { get }

    /// Puts back a state `state` returned (nil: the model has none); throws when it does not
    /// fit this model.
    func restore(_ state: ModelState?) throws
}

extension Model {
    public var state: ModelState? { nil }

    public func restore(_ state: ModelState?) throws {
        if let state, state != ModelState() {
            throw ModelError.invalidConfig("the checkpoint holds model state (\((state.buffers.keys.sorted() + state.generators.keys.sorted()).joined(separator: ", "))) this model has no use for")
        }
    }
}

/// What a minibatch is compared against.
public enum Targets {
    /// Class indices in `0..<outputCount`, one per sample (cross-entropy).
    case labels(UnsafePointer<Int32>)
    /// Row-major `[batch, outputCount]` float targets (MSE; logistic with targets in [0, 1]).
    case values(UnsafePointer<Float>)
}

/// The outcome of one forward (and backward) pass over a minibatch.
public struct BatchResult: Equatable, Sendable {
    /// Mean data loss over the batch (no regularization term). NaN if the batch contained an
    /// out-of-range label (release builds; debug builds assert).
    public var loss: Double
    /// Correct predictions: samples whose arg-max equals the label (cross-entropy); output
    /// elements whose sign agrees with the target thresholded at 0.5 (logistic); 0 (MSE).
    public var correct: Int
    /// Samples in the batch; weight `loss` by it to average over an epoch.
    public var count: Int
    /// The denominator of accuracy: `count` (cross-entropy), `count·outputCount` (logistic),
    /// 0 (MSE, no accuracy).
    public var predictions: Int

    public init(loss: Double, correct: Int, count: Int, predictions: Int) {
        self.loss = loss
        self.correct = correct
        self.count = count
        self.predictions = predictions
    }

    /// `correct / predictions`, or nil when the loss has no notion of accuracy.
    public var accuracy: Double? { predictions > 0 ? Double(correct) / Double(predictions) : nil }
}

/// Hidden-layer non-linearity.
public enum ActivationKind: String, Codable, CaseIterable, Sendable {
    /// max(z, 0); derivative 0 at z = 0 (as PyTorch). NaN propagates.
    case relu
    /// tanh(z).
    case tanh
    /// Exact GELU, z·Φ(z) = z/2·(1 + erf(z/√2)), PyTorch's default (`approximate="none"`).
    case gelu
}

/// Data loss; all reductions follow PyTorch's default `reduction="mean"`.
public enum LossKind: String, Codable, CaseIterable, Sendable {
    /// Softmax cross-entropy on integer labels (`nn.CrossEntropyLoss`), computed with
    /// log-sum-exp; mean over the samples of the batch.
    case crossEntropy = "cross_entropy"
    /// Binary logistic loss on logits with float targets in [0, 1] (`nn.BCEWithLogitsLoss`),
    /// computed stably as max(z,0) − z·t + log1p(exp(−|z|)); mean over all batch·outputCount
    /// elements.
    case logistic
    /// Squared error (`nn.MSELoss`), mean over all batch·outputCount elements.
    case mse
    /// The model's own quadratic form ½·(θ − x)ᵀQ(θ − x), mean over the samples; no targets
    /// (`quadratic_deep`, `NoisyQuadraticModel`).
    case quadratic
}

/// Seeded weight initialisation (biases always start at zero).
public enum InitKind: String, Codable, CaseIterable, Sendable {
    /// He/Kaiming normal: w ~ N(0, 2/fan_in) (PyTorch `kaiming_normal_`, mode fan_in, ReLU gain).
    case he
    /// Xavier/Glorot uniform: w ~ U(−a, a), a = √(6/(fan_in + fan_out)) (PyTorch `xavier_uniform_`).
    case xavier
}

/// Errors models report without trapping.
public enum ModelError: Error, Equatable, CustomStringConvertible {
    case labelOutOfRange(index: Int, label: Int32, classes: Int)
    case invalidConfig(String)

    public var description: String {
        switch self {
        case let .labelOutOfRange(index, label, classes):
            return "label \(label) of sample \(index) is outside 0..<\(classes)"
        case let .invalidConfig(message):
            return "model config: \(message)"
        }
    }
}

extension Model {
    /// Checks that every label is a valid class index; call once per data set (or batch)
    /// outside the hot loop. The training step itself only asserts in debug builds and
    /// returns a NaN loss for an out-of-range label in release builds.
    public func validate(labels: UnsafePointer<Int32>, count: Int) throws {
        try validateLabels(labels, count: count, classes: outputCount)
    }
}

/// Checks that `labels[0..<count]` all lie in `0..<classes`.
public func validateLabels(_ labels: UnsafePointer<Int32>, count: Int, classes: Int) throws {
    for i in 0..<count where labels[i] < 0 || Int(labels[i]) >= classes {
        throw ModelError.labelOutOfRange(index: i, label: labels[i], classes: classes)
    }
}
