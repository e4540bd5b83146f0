/// Which model family a config builds.
public enum ModelKind: String, Codable, CaseIterable, Sendable {
    /// Multi-layer perceptron with `hidden` layers.
    case mlp
    /// Softmax (multinomial logistic) regression: no hidden layers, cross-entropy.
    case softmax
    /// Linear regression (MSE), or binary logistic regression with `loss = "logistic"`.
    case linear
    /// A list of layers (`layers = [...]`): dense, conv2d, pooling, batch norm, dropout, …
    case sequential
    /// DeepOBS's noisy quadratic ½·(θ − x)ᵀQ(θ − x) in 100 dimensions (`NoisyQuadraticModel`);
    /// its data are `data.file = "synthetic:quadratic_deep"`.
    case quadraticDeep = "quadratic_deep"
}

/// The `[model]` table of an experiment config.
///
/// ```toml
/// [model]
/// kind       = "mlp"            # mlp | softmax | linear | sequential | quadratic_deep (required)
/// hidden     = [256, 128]       # hidden sizes, mlp only; default []          (input/output come from the data)
/// activation = "relu"           # relu | tanh | gelu (exact erf GELU); default relu; ignored without hidden layers
/// init       = "he"             # he | xavier; default: he for mlp with relu/gelu, xavier otherwise
/// loss       = "cross_entropy"  # cross_entropy | logistic | mse | quadratic; default: cross_entropy (mlp, softmax), mse (linear), quadratic (quadratic_deep)
/// ```
///
/// - `init`: `he` draws w ~ N(0, 2/fan_in) (Kaiming normal, fan_in); `xavier` draws
///   w ~ U(±√(6/(fan_in+fan_out))) (Glorot uniform). Biases always start at 0.
/// - `loss`: `cross_entropy` takes integer labels (mean over samples); `logistic` (sigmoid
///   binary cross-entropy on logits) and `mse` take float targets with one column per output
///   (mean over all batch·outputs elements, PyTorch's `reduction="mean"`).
/// - Allowed combinations: `softmax` needs `cross_entropy`; `linear` needs `mse` or
///   `logistic`; neither takes `hidden`. `cross_entropy` needs at least 2 classes.
///
/// Optional keys decode as nil and take the documented defaults in `makeModel`; the TOML layer
/// is responsible for rejecting unknown keys.
public struct ModelConfig: Codable, Equatable, Sendable {
    public var kind: ModelKind
    public var hidden: [Int]
    public var activation: ActivationKind
    /// TOML key `init`; nil = default for the kind (see the type's documentation).
    public var initialization: InitKind?
    /// nil = default for the kind (see the type's documentation).
    public var loss: LossKind?
    /// kind = "sequential": the layers, in order (docs/config.md).
    public var layers: [LayerSpec]?
    /// kind = "sequential": the shape of one sample, `[features]` or `[channels, height, width]`
    /// (NCHW); nil = `[features]` of the data.
    public var inputShape: [Int]?

    enum CodingKeys: String, CodingKey {
        case kind, hidden, activation, initialization = "init", loss, layers, inputShape = "input_shape"
    }

    public init(kind: ModelKind, hidden: [Int] = [], activation: ActivationKind = .relu,
                initialization: InitKind? = nil, loss: LossKind? = nil) {
        self.kind = kind
        self.hidden = hidden
        self.activation = activation
        self.initialization = initialization
        self.loss = loss
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        kind = try c.decode(ModelKind.self, forKey: .kind)
        hidden = try c.decodeIfPresent([Int].self, forKey: .hidden) ?? []
        activation = try c.decodeIfPresent(ActivationKind.self, forKey: .activation) ?? .relu
        initialization = try c.decodeIfPresent(InitKind.self, forKey: .initialization)
        loss = try c.decodeIfPresent(LossKind.self, forKey: .loss)
        layers = try c.decodeIfPresent([LayerSpec].self, forKey: .layers)
        inputShape = try c.decodeIfPresent([Int].self, forKey: .inputShape)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(kind, forKey: .kind)
        try c.encode(hidden, forKey: .hidden)
        try c.encode(activation, forKey: .activation)
        try c.encodeIfPresent(initialization, forKey: .initialization)
        try c.encodeIfPresent(loss, forKey: .loss)
        try c.encodeIfPresent(layers, forKey: .layers)
        try c.encodeIfPresent(inputShape, forKey: .inputShape)
    }

    /// The loss after applying the kind's default.
    public var resolvedLoss: LossKind {
        if let loss { return loss }
        switch kind {
        case .linear: return .mse
        case .quadraticDeep: return .quadratic
        case .mlp, .softmax, .sequential: return .crossEntropy
        }
    }

    /// The initialisation after applying the default (He for ReLU/GELU MLPs, Xavier otherwise).
    public var resolvedInit: InitKind {
        if let initialization { return initialization }
        return kind == .mlp && !hidden.isEmpty && activation != .tanh ? .he : .xavier
    }

    /// Throws `ModelError.invalidConfig` naming the offending key.
    public func validate(inputCount: Int, outputCount: Int) throws {
        guard inputCount > 0 else { throw ModelError.invalidConfig("input size must be positive, got \(inputCount)") }
        guard outputCount > 0 else { throw ModelError.invalidConfig("output size must be positive, got \(outputCount)") }
        if let bad = hidden.first(where: { $0 <= 0 }) {
            throw ModelError.invalidConfig("model.hidden sizes must be positive, got \(bad)")
        }
        let loss = resolvedLoss
        if kind != .sequential && (layers != nil || inputShape != nil) {
            throw ModelError.invalidConfig("model.layers and model.input_shape are only allowed for kind = \"sequential\"")
        }
        if (loss == .quadratic) != (kind == .quadraticDeep) {
            throw ModelError.invalidConfig(kind == .quadraticDeep
                ? "model.loss must be \"quadratic\" (or omitted) for kind = \"quadratic_deep\", got \"\(loss.rawValue)\""
                : "model.loss = \"quadratic\" belongs to kind = \"quadratic_deep\" only")
        }
        switch kind {
        case .mlp:
            break
        case .quadraticDeep:
            guard hidden.isEmpty else { throw ModelError.invalidConfig("model.hidden is only allowed for kind = \"mlp\"") }
            guard inputCount == NoisyQuadratic.dimension else {
                throw ModelError.invalidConfig("kind = \"quadratic_deep\" needs \(NoisyQuadratic.dimension) features per sample (data.file = \"synthetic:quadratic_deep\"), got \(inputCount)")
            }
        case .sequential:
            guard hidden.isEmpty else { throw ModelError.invalidConfig("model.hidden is only allowed for kind = \"mlp\"; give the layers in model.layers") }
        case .softmax:
            guard hidden.isEmpty else { throw ModelError.invalidConfig("model.hidden is only allowed for kind = \"mlp\"") }
            guard loss == .crossEntropy else {
                throw ModelError.invalidConfig("model.loss must be \"cross_entropy\" for kind = \"softmax\", got \"\(loss.rawValue)\"")
            }
        case .linear:
            guard hidden.isEmpty else { throw ModelError.invalidConfig("model.hidden is only allowed for kind = \"mlp\"") }
            guard loss != .crossEntropy else {
                throw ModelError.invalidConfig("model.loss must be \"mse\" or \"logistic\" for kind = \"linear\" (use kind = \"softmax\" for cross_entropy)")
            }
        }
        if loss == .crossEntropy && outputCount < 2 {
            throw ModelError.invalidConfig("model.loss = \"cross_entropy\" needs at least 2 classes, got \(outputCount)")
        }
    }

    /// Builds the model for data with `inputCount` features and `outputCount` classes/targets.
    /// `partitionRows` (rows per forward/backward partition) changes results bit-wise, so a
    /// resumed run must use the same value; nil takes `MLP.defaultPartitionRows`.
    public func makeModel(inputCount: Int, outputCount: Int, maxBatch: Int,
                          partitionRows: Int? = nil) throws -> Model {
        try validate(inputCount: inputCount, outputCount: outputCount)
        let rows = partitionRows ?? (kind == .sequential ? SequentialModel.defaultPartitionRows : MLP.defaultPartitionRows)
        guard rows > 0 else { throw ModelError.invalidConfig("partition rows must be positive, got \(rows)") }
        let batch = max(maxBatch, 1)
        switch kind {
        case .mlp:
            return MLP(layers: [inputCount] + hidden + [outputCount], activation: activation, loss: resolvedLoss,
                       init: resolvedInit, maxBatch: batch, partitionRows: rows)
        case .softmax:
            return SoftmaxRegression(inputs: inputCount, classes: outputCount, init: resolvedInit,
                                     maxBatch: batch, partitionRows: rows)
        case .sequential:
            return try makeSequential(inputCount: inputCount, outputCount: outputCount, partitionRows: rows)
        case .linear:
            return LinearRegression(inputs: inputCount, outputs: outputCount, loss: resolvedLoss,
                                    init: resolvedInit, maxBatch: batch, partitionRows: rows)
        case .quadraticDeep:
            return NoisyQuadraticModel(outputCount: outputCount)
        }
    }
}
