public enum PluginKind: String, Sendable, CaseIterable {
    case optimizer, regularizer, schedule
}

/// What every plugin declares: its registry name, version, kind and hyper-parameters.
public protocol Plugin: AnyObject {
    var name: String { get }
    var version: String { get }
    var kind: PluginKind { get }
    var summary: String { get }
    var hyperParameters: [HyperParameterSpec] { get }
    /// "built-in" or the shared library's path.
    var source: String { get }
    /// Checks that involve more than one hyper-parameter (each value is already in its
    /// declared range), throwing `PluginError` with the config key `keyPrefix.NAME`.
    /// `resolve` calls it; the default accepts everything.
    func validate(_ hp: HyperValues, keyPrefix: String) throws
}

extension Plugin {
    public var source: String { "built-in" }
    public func validate(_ hp: HyperValues, keyPrefix: String) throws {}

    /// Validates a config table against this plugin's declarations, then `validate`.
    public func resolve(_ given: [String: HyperValue], keyPrefix: String) throws -> HyperValues {
        let hp = try HyperValues(specs: hyperParameters, given: given, keyPrefix: keyPrefix, pluginName: name)
        try validate(hp, keyPrefix: keyPrefix)
        return hp
    }
}

/// Where training is at the moment of an update, for one parameter group.
public struct StepContext: Sendable {
    /// t, counting from 1.
    public var step: Int
    /// η_t, the schedule multiplier.
    public var eta: Double
    /// lr_t = base lr · η_t · the group's lr multiplier.
    public var lr: Double
    /// Minibatch size b, training-set size B and the current period T in epochs (the run's
    /// length, or the current restart period), for normalized decay; nil when unknown.
    public var batchSize: Int?
    public var trainingSize: Int?
    public var periodEpochs: Double?
    /// The current schedule period in steps, when the schedule counts steps and has periods.
    public var periodSteps: Double?

    public init(step: Int, eta: Double, lr: Double, batchSize: Int? = nil, trainingSize: Int? = nil,
                periodEpochs: Double? = nil) {
        self.step = step
        self.eta = eta
        self.lr = lr
        self.batchSize = batchSize
        self.trainingSize = trainingSize
        self.periodEpochs = periodEpochs
    }
}

/// Regularization fused into the element-wise pass: coupled gradient terms and a decoupled
/// decay rate, summed over a group's regularizers.
public struct FusedRegularization: Equatable, Sendable {
    /// g += l2·w (already 2λ for convention full).
    public var l2: Double = 0
    /// g += l1·sign(w).
    public var l1: Double = 0
    /// w ← (1 − decay)·w before the step; decay = s_t·λ.
    public var decay: Double = 0

    public init(l2: Double = 0, l1: Double = 0, decay: Double = 0) {
        self.l2 = l2
        self.l1 = l1
        self.decay = decay
    }

    public static func + (a: Self, b: Self) -> Self { Self(l2: a.l2 + b.l2, l1: a.l1 + b.l1, decay: a.decay + b.decay) }

    /// The coefficients as the element-wise pass uses them: l2 and l1 in float, and
    /// keep = 1 − decay computed in double and rounded once.
    public var elementTerms: (l2: Float, l1: Float, keep: Float) { (Float(l2), Float(l1), Float(1 - decay)) }
}

/// What the element-wise pass gathers while it writes the weights, reduced in piece order.
public struct StepStatistics: Equatable, Sendable {
    /// Gradient elements that were NaN or ±Inf.
    public var nonfiniteGradients: Int64 = 0
    /// Parameters exactly 0 after the step.
    public var zeroParameters: Int64 = 0
    /// Σ w² after the step.
    public var parameterSumSquares: Double = 0

    public init(nonfiniteGradients: Int64 = 0, zeroParameters: Int64 = 0, parameterSumSquares: Double = 0) {
        self.nonfiniteGradients = nonfiniteGradients
        self.zeroParameters = zeroParameters
        self.parameterSumSquares = parameterSumSquares
    }

    public static let zero = StepStatistics()

    public mutating func accumulate(_ other: StepStatistics) {
        nonfiniteGradients += other.nonfiniteGradients
        zeroParameters += other.zeroParameters
        parameterSumSquares += other.parameterSumSquares
    }

    /// Counts one element as the fused kernels do: gradient `g` as read, weight `w` as written.
    @inline(__always)
    public mutating func count(gradient g: Float, weight w: Float) {
        if !g.isFinite { nonfiniteGradients += 1 }
        count(weight: w)
    }

    /// Counts one weight as written (zeros and Σw²).
    @inline(__always)
    public mutating func count(weight w: Float) {
        if w == 0 { zeroParameters += 1 }
        parameterSumSquares += Double(w) * Double(w)
    }
}

/// A state buffer a plugin declares for every tensor of its groups: one float per element,
/// per row, per column or per tensor (`layout`), allocated by the engine with `initialValue`,
/// checkpointed and written by `replay`.
public struct StateDeclaration: Equatable, Sendable {
    /// The slot's name in the arena, checkpoints and replay output; it must not collide with
    /// another plugin's (external plugins' slots are prefixed with the plugin's name).
    public var name: String
    /// Every value before the first step.
    public var initialValue: Float
    public var layout: StateLayout

    public init(_ name: String, initialValue: Float = 0, layout: StateLayout = .element) {
        self.name = name
        self.initialValue = initialValue
        self.layout = layout
    }
}

/// A per-piece element-wise pass (arena-absolute offsets); returns a count for metrics or -1.
public typealias PiecePass = (Sharder.Piece) -> Int64

/// The update of one group for one step on one piece, with the piece's statistics.
public typealias PieceUpdate = (Sharder.Piece) -> StepStatistics

/// An optimizer: the direction from the gradient and its state. The engine owns the rest of
/// the pipeline (docs/architecture.md): tensor phases, the regularizers' coupled terms and
/// decoupled decay (handed over as `FusedRegularization`) and the statistics. Write an
/// element-wise optimizer as an `ElementwiseOptimizer` (one function per element); a fused
/// kernel implements `update` directly; a direction that needs whole tensors is a
/// `TensorOptimizer`.
public protocol OptimizerPlugin: Plugin {
    /// The base learning rate of a configuration: lr_t = base · η_t · group multiplier. The
    /// default is the `lr` hyper-parameter, or 1 (lr_t = η_t) for an optimizer without one.
    func learningRate(_ hp: HyperValues) -> Double
    /// The state this configuration needs.
    func state(_ hp: HyperValues) -> [StateDeclaration]
    /// Per-tensor passes of the optimizer's own, if any (see `TensorPass`).
    func tensorPasses(_ hp: HyperValues, context: StepContext) -> [TensorPass]
    /// The update of one group and step on a piece: coupled terms, direction, decay, apply,
    /// statistics, in that order (`regularization` holds the group's coupled and decay terms).
    func update(_ hp: HyperValues, context: StepContext, regularization: FusedRegularization,
                arena: ParameterArena, kernels: KernelPath) -> PieceUpdate
    /// The update of one group and step on whole tensors, for an optimizer whose direction
    /// needs them (`TensorOptimizer`); when given, the engine uses it instead of `update`.
    func tensorUpdate(_ hp: HyperValues, context: StepContext, regularization: FusedRegularization) -> TensorUpdate?
}

extension OptimizerPlugin {
    public func tensorUpdate(_ hp: HyperValues, context: StepContext, regularization: FusedRegularization) -> TensorUpdate? { nil }
    public func learningRate(_ hp: HyperValues) -> Double {
        hyperParameters.contains { $0.name == "lr" } ? hp.number("lr") : 1
    }
    public func tensorPasses(_ hp: HyperValues, context: StepContext) -> [TensorPass] { [] }
}

/// A regularizer or constraint: a coupled term (in the gradient), a decoupled one (on the
/// weights), an element-wise pass on each piece right after the optimizer's update, and/or
/// a per-tensor pass before or after the element-wise pass.
public protocol RegularizerPlugin: Plugin {
    /// True when the term acts on the weights directly rather than through the gradient.
    func isDecoupled(_ hp: HyperValues) -> Bool
    /// The part fused into the element-wise pass, if any.
    func fused(_ hp: HyperValues, context: StepContext) -> FusedRegularization
    /// An extra pass right after the optimizer's update on the same piece, if any.
    func pass(_ hp: HyperValues, context: StepContext, arena: ParameterArena) -> PiecePass?
    /// Per-tensor passes (whole tensors: at the start of a fresh run, before or after the
    /// element-wise pass), if any.
    func tensorPasses(_ hp: HyperValues, context: StepContext) -> [TensorPass]
    /// The state this configuration needs (the element-wise `pass` finds it with
    /// `arena.slot(name)`, a tensor pass in `TensorData.state`).
    func state(_ hp: HyperValues) -> [StateDeclaration]
    /// Whether `decay_bias = false` keeps this regularizer off biases and norm scales, as it
    /// does for every kind of decay (the default); a gradient transform such as clipping says no.
    func sparesBiasAndNorm(_ hp: HyperValues) -> Bool
    /// The penalty's value in the loss for a tensor with Σw² = `sumSquares` and Σ|w| = `sumAbs`,
    /// or nil for decoupled terms (which are not part of any loss) and for penalties that need
    /// the tensor itself (`penalty(_:tensor:weights:)`).
    func penalty(_ hp: HyperValues, sumSquares: Double, sumAbs: Double) -> Double?
    /// The penalty's value for one tensor, when it depends on more than Σw² and Σ|w| (e.g.
    /// row norms); nil when `penalty(_:sumSquares:sumAbs:)` answers or there is none.
    func penalty(_ hp: HyperValues, tensor: TensorInfo, weights: UnsafeBufferPointer<Float>) -> Double?
    /// One line for the decay audit: coefficients and scale mode.
    func audit(_ hp: HyperValues) -> String
    /// A name for the count `pass` or a tensor pass returns (e.g. "zeroed"), if any.
    var metricName: String? { get }
}

extension RegularizerPlugin {
    public func fused(_ hp: HyperValues, context: StepContext) -> FusedRegularization { FusedRegularization() }
    public func pass(_ hp: HyperValues, context: StepContext, arena: ParameterArena) -> PiecePass? { nil }
    public func tensorPasses(_ hp: HyperValues, context: StepContext) -> [TensorPass] { [] }
    public func state(_ hp: HyperValues) -> [StateDeclaration] { [] }
    public func sparesBiasAndNorm(_ hp: HyperValues) -> Bool { true }
    public func penalty(_ hp: HyperValues, tensor: TensorInfo, weights: UnsafeBufferPointer<Float>) -> Double? { nil }
    public var metricName: String? { nil }
}

/// A learning-rate schedule: η as a function of time in the schedule's unit.
public protocol Schedule: Sendable {
    /// η at time `t` (steps or epochs done before this update, fractional for epochs).
    func multiplier(at t: Double) -> Double
    /// The length of the period `t` falls in (the restart period of warm restarts), if any.
    func period(at t: Double) -> Double?
}

public protocol SchedulePlugin: Plugin {
    func make(_ hp: HyperValues) throws -> Schedule
}
