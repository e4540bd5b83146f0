import CDecoupledKernels

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
}

extension Plugin {
    public var source: String { "built-in" }

    /// Validates a config table against this plugin's declarations.
    public func resolve(_ given: [String: HyperValue], keyPrefix: String) throws -> HyperValues {
        try HyperValues(specs: hyperParameters, given: given, keyPrefix: keyPrefix, pluginName: name)
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

/// Regularization fused into the kernels: coupled gradient terms and a decoupled decay rate.
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

    /// The kernel's view: coefficients in float, keep = 1 − decay computed in double.
    public var kernelTerms: dc_reg_terms { dc_reg_terms(l2: Float(l2), l1: Float(l1), decay_keep: Float(1 - decay)) }
}

/// A per-piece element-wise pass (arena-absolute offsets); returns a count for metrics or -1.
public typealias PiecePass = (Sharder.Piece) -> Int64

/// The update of one group for one step: the kernel call on a piece.
public typealias PieceUpdate = (Sharder.Piece) -> dc_step_stats

/// An optimizer: the direction from the gradient and its state, in one kernel pass.
public protocol OptimizerPlugin: Plugin {
    /// Per-element state slots this configuration needs (buffers in the arena).
    func stateSlots(_ hp: HyperValues) -> [String]
    /// The kernel call for one group and step, with the group's fused regularization.
    func update(_ hp: HyperValues, context: StepContext, regularization: FusedRegularization,
                arena: ParameterArena, kernels: KernelPath) -> PieceUpdate
}

/// A regularizer: a coupled term (in the gradient), a decoupled one (on the weights), or an
/// element-wise pass of its own that runs on each chunk right after the optimizer's kernel.
public protocol RegularizerPlugin: Plugin {
    /// True when the term acts on the weights directly rather than through the gradient.
    func isDecoupled(_ hp: HyperValues) -> Bool
    /// The part fused into the kernel, if any.
    func fused(_ hp: HyperValues, context: StepContext) -> FusedRegularization
    /// An extra pass right after the kernel on the same chunk, if the regularizer needs one.
    func pass(_ hp: HyperValues, context: StepContext, arena: ParameterArena) -> PiecePass?
    /// The penalty's value in the loss for a tensor with Σw² = `sumSquares` and Σ|w| = `sumAbs`,
    /// or nil for decoupled terms (which are not part of any loss).
    func penalty(_ hp: HyperValues, sumSquares: Double, sumAbs: Double) -> Double?
    /// One line for the decay audit: coefficients and scale mode.
    func audit(_ hp: HyperValues) -> String
    /// A name for the count `pass` returns (e.g. "zeroed"), if any.
    var metricName: String? { get }
    /// Per-element state slots this configuration needs (buffers in the arena, checkpointed
    /// and written by replay like the optimizer's); names must not collide with other plugins'.
    func stateSlots(_ hp: HyperValues) -> [String]
}

extension RegularizerPlugin {
    public func stateSlots(_ hp: HyperValues) -> [String] { [] }
    public func pass(_ hp: HyperValues, context: StepContext, arena: ParameterArena) -> PiecePass? { nil }
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
