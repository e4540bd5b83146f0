/// Coupled L2: the penalty λ/2·‖w‖² (`half`: Caffe, PyTorch, the paper) or λ·‖w‖² (`full`:
/// Keras), so the gradient gains λ·w or 2λ·w — the factor of 2 that bites when porting.
public final class L2Regularizer: RegularizerPlugin {
    public let name = "l2"
    public let version = "1.0.0"
    public let kind = PluginKind.regularizer
    public let summary = "coupled L2 penalty in the loss: g += λw (half) or 2λw (full)"
    public let hyperParameters: [HyperParameterSpec] = [
        .init("lambda", .number(0...Double.infinity), default: .number(0), "λ"),
        .init("convention", .choice(["half", "full"]), default: .text("half"), "half: λ/2‖w‖²; full: λ‖w‖²"),
    ]
    public init() {}

    static func coefficient(_ lambda: Double, _ convention: String) -> Double {
        convention == "full" ? 2 * lambda : lambda
    }
    public func isDecoupled(_ hp: HyperValues) -> Bool { false }
    public func fused(_ hp: HyperValues, context: StepContext) -> FusedRegularization {
        FusedRegularization(l2: Self.coefficient(hp.number("lambda"), hp.text("convention")))
    }
    public func penalty(_ hp: HyperValues, sumSquares: Double, sumAbs: Double) -> Double? {
        Self.coefficient(hp.number("lambda"), hp.text("convention")) / 2 * sumSquares
    }
    public func audit(_ hp: HyperValues) -> String {
        "coupled L2 λ=\(hp.number("lambda").formatted) (\(hp.text("convention")): g += \(Self.coefficient(hp.number("lambda"), hp.text("convention")).formatted)·w)"
    }
}

/// Coupled L1: the penalty λ·‖w‖₁, so the gradient gains λ·sign(w) (sign(0) = 0).
public final class L1Regularizer: RegularizerPlugin {
    public let name = "l1"
    public let version = "1.0.0"
    public let kind = PluginKind.regularizer
    public let summary = "coupled L1 penalty in the loss: g += λ·sign(w)"
    public let hyperParameters: [HyperParameterSpec] = [
        .init("lambda", .number(0...Double.infinity), default: .number(0), "λ"),
    ]
    public init() {}
    public func isDecoupled(_ hp: HyperValues) -> Bool { false }
    public func fused(_ hp: HyperValues, context: StepContext) -> FusedRegularization {
        FusedRegularization(l1: hp.number("lambda"))
    }
    public func penalty(_ hp: HyperValues, sumSquares: Double, sumAbs: Double) -> Double? {
        hp.number("lambda") * sumAbs
    }
    public func audit(_ hp: HyperValues) -> String { "coupled L1 λ=\(hp.number("lambda").formatted)" }
}

/// Coupled elastic net: l1·‖w‖₁ + L2 with its convention (Keras `L1L2`).
public final class ElasticRegularizer: RegularizerPlugin {
    public let name = "elastic"
    public let version = "1.0.0"
    public let kind = PluginKind.regularizer
    public let summary = "coupled L1 + L2 (Keras L1L2): g += l1·sign(w) + l2·w (or 2·l2·w, full)"
    public let hyperParameters: [HyperParameterSpec] = [
        .init("l1", .number(0...Double.infinity), default: .number(0), "L1 coefficient"),
        .init("l2", .number(0...Double.infinity), default: .number(0), "L2 coefficient"),
        .init("convention", .choice(["half", "full"]), default: .text("half"), "of the L2 part"),
    ]
    public init() {}
    public func isDecoupled(_ hp: HyperValues) -> Bool { false }
    public func fused(_ hp: HyperValues, context: StepContext) -> FusedRegularization {
        FusedRegularization(l2: L2Regularizer.coefficient(hp.number("l2"), hp.text("convention")), l1: hp.number("l1"))
    }
    public func penalty(_ hp: HyperValues, sumSquares: Double, sumAbs: Double) -> Double? {
        hp.number("l1") * sumAbs + L2Regularizer.coefficient(hp.number("l2"), hp.text("convention")) / 2 * sumSquares
    }
    public func audit(_ hp: HyperValues) -> String {
        "coupled L1 \(hp.number("l1").formatted) + L2 \(hp.number("l2").formatted) (\(hp.text("convention")))"
    }
}

/// The scale s_t of a decoupled decay: `lr` (PyTorch AdamW, optax, Keras 3), `schedule` (the
/// paper: η_t) or `constant` (TF-Addons: 1).
public enum DecayScale: String, CaseIterable, Sendable {
    case lr, schedule, constant

    public func value(_ c: StepContext) -> Double {
        switch self {
        case .lr: return c.lr
        case .schedule: return c.eta
        case .constant: return 1
        }
    }

    static let spec = HyperParameterSpec("scale", .choice(allCases.map(\.rawValue)), default: .text("lr"),
                                         "s_t: lr (PyTorch, optax, Keras), schedule (paper: η_t), constant (1)")
    static let normalizedSpecs = [
        HyperParameterSpec("normalized", .flag, default: .flag(false),
                           "λ = lambda·√(b/(B·T)): b batch size, B training points, T epochs of the run or restart period"),
        HyperParameterSpec("batch_size", .number(0...Double.infinity), default: .number(0),
                           "b for normalized decay (0: the run's batch size)"),
        HyperParameterSpec("train_size", .number(0...Double.infinity), default: .number(0),
                           "B for normalized decay (0: the training set's size)"),
        HyperParameterSpec("epochs", .number(0...Double.infinity), default: .number(0),
                           "T for normalized decay (0: the restart period, else the run's epochs)"),
    ]

    /// λ, or the paper's normalized λ = λ_norm·√(b/(B·T)) when `normalized` (needs b, B, T).
    public static func lambda(_ hp: HyperValues, key: String = "lambda", _ c: StepContext) -> Double {
        let lambda = hp.number(key)
        guard hp.flag("normalized") else { return lambda }
        func given(_ k: String) -> Double? { hp.number(k) > 0 ? hp.number(k) : nil }
        let b = given("batch_size") ?? c.batchSize.map(Double.init)
        let n = given("train_size") ?? c.trainingSize.map(Double.init)
        // T: an explicit value, else the current restart period (in epochs of size B/b), else the run's length.
        var t = given("epochs") ?? c.periodEpochs
        if given("epochs") == nil, let steps = c.periodSteps, let b, let n { t = steps * b / n }
        guard let b, let n, let t, n > 0, t > 0 else { return lambda }
        return lambda * (b / (n * t)).squareRoot()
    }
}

/// Decoupled weight decay: w ← w − s_t·λ·w, never seen by the optimizer's moments.
public final class WeightDecayRegularizer: RegularizerPlugin {
    public let name = "weight_decay"
    public let version = "1.0.0"
    public let kind = PluginKind.regularizer
    public let summary = "decoupled L2 decay on the weights: w ← w − s_t·λ·w (AdamW, SGDW)"
    public let hyperParameters: [HyperParameterSpec] = [
        .init("lambda", .number(0...Double.infinity), default: .number(0), "λ (λ_norm when normalized)"),
        DecayScale.spec,
    ] + DecayScale.normalizedSpecs
    public init() {}
    public func isDecoupled(_ hp: HyperValues) -> Bool { true }
    public func fused(_ hp: HyperValues, context: StepContext) -> FusedRegularization {
        let scale = DecayScale(rawValue: hp.text("scale"))!
        return FusedRegularization(decay: scale.value(context) * DecayScale.lambda(hp, context))
    }
    public func penalty(_ hp: HyperValues, sumSquares: Double, sumAbs: Double) -> Double? { nil }
    public func audit(_ hp: HyperValues) -> String {
        "decoupled L2 λ=\(hp.number("lambda").formatted)\(hp.flag("normalized") ? " (normalized)" : "") × s_t=\(hp.text("scale"))"
    }
}
