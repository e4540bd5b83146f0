import Foundation

// `decoupled convert` (docs/convert.md): a setting written in one framework's convention,
// rewritten in another's, or a plain statement that no setting there makes the same
// updates. What each framework's knob does comes from the convention table
// (`Convention.weightDecay`, `regularizerDefaults`, `optimizerDefaults`, Conventions.swift);
// this file only solves "which knob, with which value, does the same thing" and writes the
// answer in the target framework's own words.

// MARK: - Options

/// The options of `decoupled convert`, by long name. The command declares one option per
/// case with this help, and the tests parse docs/convert.md's example commands into the same
/// values, so the documented commands and the command line cannot disagree.
public enum ConversionOption: String, CaseIterable, Sendable {
    /// `--from`: the source convention.
    case from
    /// `--to`: the target convention.
    case to
    /// `--optimizer`: sgd | sgdw | adam | adamw.
    case optimizer
    /// `--to-optimizer`: the optimizer wanted in the target.
    case toOptimizer = "to-optimizer"
    /// `--lr`: the base learning rate.
    case lr
    /// `--weight-decay`: the framework's own weight_decay.
    case weightDecay = "weight-decay"
    /// `--l2`: an L2 penalty in the loss.
    case l2
    /// `--normalized`: `--weight-decay` is the paper's λ_norm.
    case normalized
    /// `--momentum`: SGD's μ.
    case momentum
    /// `--dampening`: PyTorch SGD's dampening.
    case dampening
    /// `--nesterov`: Nesterov momentum.
    case nesterov
    /// `--beta1`: Adam's β1.
    case beta1
    /// `--beta2`: Adam's β2.
    case beta2
    /// `--eps`: Adam's ε.
    case eps
    /// `--amsgrad`: AMSGrad.
    case amsgrad
    /// `--batch-size`: b of the normalized decay.
    case batchSize = "batch-size"
    /// `--train-size`: B of the normalized decay.
    case trainSize = "train-size"
    /// `--epochs`: T of the normalized decay.
    case epochs
    /// `--schedule-multiplier`: η_t for the per-step line.
    case scheduleMultiplier = "schedule-multiplier"

    /// The option as typed: `--weight-decay`.
    public var flag: String { "--" + rawValue }

    /// True for switches, which take no value.
    public var isSwitch: Bool { self == .normalized || self == .nesterov || self == .amsgrad }

    /// The placeholder `--help` shows for the value.
    public var valueName: String {
        switch self {
        case .from, .to: return "convention"
        case .optimizer, .toOptimizer: return "name"
        case .batchSize: return "b"
        case .trainSize: return "B"
        case .epochs: return "T"
        case .scheduleMultiplier: return "η"
        default: return "x"
        }
    }

    /// One line of `--help`.
    public var help: String {
        switch self {
        case .from: return "Convention the setting is written in: pytorch | keras | caffe | optax | paper."
        case .to: return "Convention to write it in (the same one, with --to-optimizer, switches L2 ↔ decoupled)."
        case .optimizer: return "sgd | sgdw | adam | adamw | adagrad(w) | rmsprop(w) | adadelta(w) | adamax(w) | nadam(w) | radam(w) | lamb | lion, as the source framework calls it (caffe: sgd, its SGDSolver)."
        case .toOptimizer: return "Optimizer wanted in the target (default: whichever makes the same updates)."
        case .lr: return "Base learning rate (the paper's α); a schedule multiplies it the same way everywhere."
        case .weightDecay: return "The framework's own weight_decay (paper: λ of SGDW/AdamW), meaning per docs/config.md."
        case .l2: return "An L2 penalty in the loss: λ/2·‖w‖² (g += λ·w); keras: L2(λ) = λ·‖w‖² (g += 2λ·w)."
        case .normalized: return "Paper: --weight-decay is λ_norm, λ = λ_norm·√(b/(B·T)); needs --batch-size, --train-size, --epochs."
        case .momentum: return "SGD momentum μ in [0, 1) (the paper's β1 in SGDW)."
        case .dampening: return "PyTorch SGD dampening in [0, 1]."
        case .nesterov: return "Nesterov momentum."
        case .beta1: return "Adam β1 in [0, 1) (default 0.9)."
        case .beta2: return "Adam β2 in [0, 1) (default 0.999)."
        case .eps: return "Adam ε ≥ 0 (default: the source framework's, Keras 1e-7, others 1e-8)."
        case .amsgrad: return "AMSGrad (PyTorch, Keras)."
        case .batchSize: return "Minibatch size b, for the paper's normalized decay."
        case .trainSize: return "Training-set size B, for the paper's normalized decay."
        case .epochs: return "Epochs T of the run (with warm restarts: of the period), for the paper's normalized decay."
        case .scheduleMultiplier: return "η_t at the step of interest: also print the decay each step applies there."
        }
    }
}

/// A bad `decoupled convert` input: names the option and says what is expected.
public struct ConversionError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The option at fault, as typed (`--lr`).
    public let option: String
    /// What is wrong and what is expected.
    public let message: String

    /// An error about `option`.
    public init(_ option: ConversionOption, _ message: String) {
        self.option = option.flag
        self.message = message
    }

    /// `--lr: expected a number > 0, got '-1'`.
    public var description: String { "\(option): \(message)" }
}

// MARK: - Request

/// A validated `decoupled convert` request: one setting in the source convention.
public struct ConversionRequest: Sendable {
    /// Which knob the source setting's decay is on.
    public enum Decay: Equatable, Sendable {
        /// The framework's own `weight_decay` (the paper's λ), per the convention table.
        case weightDecay(Double)
        /// An L2 penalty in the loss, with the convention's factor (`l2` in docs/config.md).
        case l2(Double)
    }

    /// The convention the setting is written in.
    public let from: Convention
    /// The convention to write it in.
    public let to: Convention
    /// An optimizer some convention models, or its decoupled alias (`ConversionRequest.optimizers`).
    public let optimizer: String
    /// The optimizer wanted in the target; nil: whichever makes the same updates.
    public let targetOptimizer: String?
    /// The base learning rate (the paper's α).
    public let lr: Double
    /// The decay and which knob it is on.
    public let decay: Decay
    /// `--weight-decay` is the paper's λ_norm (then `batchSize`, `trainSize`, `epochs` are set).
    public let normalized: Bool
    /// SGD momentum μ (0 for Adam).
    public let momentum: Double
    /// PyTorch SGD dampening.
    public let dampening: Double
    /// Nesterov momentum.
    public let nesterov: Bool
    /// Adam's β1 as given; nil: the default (0.9 everywhere).
    public let beta1: Double?
    /// Adam's β2 as given; nil: the default (0.999 everywhere).
    public let beta2: Double?
    /// Adam's ε as given; nil: the source framework's default (Keras 1e-7, others 1e-8).
    public let eps: Double?
    /// AMSGrad.
    public let amsgrad: Bool
    /// b, B and T of the paper's normalized decay: all set or all nil.
    public let batchSize: Int?
    /// Training-set size B.
    public let trainSize: Int?
    /// Epochs T (of the run, or of the restart period).
    public let epochs: Double?
    /// η_t for the per-step line, when given.
    public let scheduleMultiplier: Double?

    /// Every optimizer a convention models (`Convention.optimizers`), each followed by its
    /// decoupled aliases: sgd, sgdw, adam, adamw, adagrad, adagradw, …
    static let optimizers: [String] = {
        var bases: [String] = []
        for c in Convention.allCases { for o in c.optimizers where !bases.contains(o) { bases.append(o) } }
        return bases.flatMap { b in [b] + Conversion.aliases.values.filter { $0.base == b }.map(\.name).sorted() }
    }()

    /// Validates option values as typed (`values` for options with a value, `switches` for
    /// the switches given); each error names the option and what it expects.
    public init(values: [ConversionOption: String], switches: Set<ConversionOption> = []) throws {
        for o in switches where !o.isSwitch { throw ConversionError(o, "expects a value") }
        for o in values.keys where o.isSwitch { throw ConversionError(o, "is a switch and takes no value") }
        let conventions = Convention.allCases.map(\.rawValue).joined(separator: " | ")
        func convention(_ o: ConversionOption) throws -> Convention {
            guard let s = values[o] else { throw ConversionError(o, "missing; expected \(conventions)") }
            guard let c = Convention(rawValue: s.lowercased()) else {
                throw ConversionError(o, "unknown convention '\(s)'; expected \(conventions)")
            }
            return c
        }
        func optimizerName(_ o: ConversionOption) throws -> String? {
            guard let s = values[o] else { return nil }
            guard Self.optimizers.contains(s.lowercased()) else {
                throw ConversionError(o, "unknown optimizer '\(s)'; expected \(Self.optimizers.joined(separator: " | "))")
            }
            return s.lowercased()
        }
        func number(_ o: ConversionOption, _ expected: String, _ ok: (Double) -> Bool) throws -> Double? {
            guard let s = values[o] else { return nil }
            guard let x = Double(s.trimmingCharacters(in: .whitespaces)), x.isFinite, ok(x) else {
                throw ConversionError(o, "expected \(expected), got '\(s)'")
            }
            return x
        }
        func count(_ o: ConversionOption) throws -> Int? {
            guard let s = values[o] else { return nil }
            guard let n = Int(s.trimmingCharacters(in: .whitespaces)), n >= 1 else {
                throw ConversionError(o, "expected an integer ≥ 1, got '\(s)'")
            }
            return n
        }

        from = try convention(.from)
        to = try convention(.to)
        guard let name = try optimizerName(.optimizer) else {
            throw ConversionError(.optimizer, "missing; expected \(Self.optimizers.joined(separator: " | "))")
        }
        optimizer = name
        let base = Conversion.base(of: name)
        let isAlias = name != base
        guard from.models(base: base) else {
            if from == .caffe {
                throw ConversionError(.optimizer, "\(name) with --from \(from.rawValue): the \(from.rawValue) convention is Caffe's SGDSolver, sgd only")
            }
            throw ConversionError(.optimizer, "\(name) with --from \(from.rawValue): the \(from.rawValue) convention models \(from.optimizers.joined(separator: ", ")); \(base) is modelled by \(Convention.modelling(base).map(\.rawValue).joined(separator: ", "))")
        }
        if isAlias, case .coupled = Conversion.unitEffect(from, optimizer: name, knob: .weightDecay) {
            throw ConversionError(.optimizer, "\(name) with --from \(from.rawValue): \(from.displayName) has no decoupled weight decay (its weight_decay is L2); use \(base)")
        }
        targetOptimizer = try optimizerName(.toOptimizer)
        if let t = targetOptimizer, Conversion.base(of: t) != base {
            throw ConversionError(.toOptimizer, "\(t) is not in the family of --optimizer \(name); convert within one family (\(base) and its decoupled alias)")
        }
        guard let lr = try number(.lr, "a number > 0", { $0 > 0 }) else {
            throw ConversionError(.lr, "missing; expected a number > 0 (the base learning rate)")
        }
        self.lr = lr

        let wd = try number(.weightDecay, "a number ≥ 0", { $0 >= 0 })
        let l2 = try number(.l2, "a number ≥ 0", { $0 >= 0 })
        switch (wd, l2) {
        case (nil, nil):
            throw ConversionError(.weightDecay, "missing decay: give --weight-decay (the framework's weight_decay) or --l2 (an L2 penalty in the loss)")
        case (.some, .some):
            throw ConversionError(.l2, "given together with --weight-decay; convert one decay at a time")
        case (let x?, nil):
            guard from.definesWeightDecay(isAlias: isAlias) else {
                throw ConversionError(.weightDecay, "the paper defines weight decay for sgdw and adamw only; for \(name) with L2 use --l2")
            }
            decay = .weightDecay(x)
        case (nil, let x?):
            if isAlias { throw ConversionError(.l2, "\(name) decays through --weight-decay; for an L2 penalty use --optimizer \(base)") }
            decay = .l2(x)
        }

        let isSGD = base == "sgd"
        func only(_ o: ConversionOption, sgd: Bool) throws {
            guard values[o] != nil || switches.contains(o) else { return }
            if sgd && !isSGD { throw ConversionError(o, "applies to sgd and sgdw\(o == .momentum ? "; Adam's first-moment decay is --beta1" : "")") }
            if !sgd && base != "adam" {
                throw ConversionError(o, "applies to adam and adamw\(isSGD ? "" : "; \(base)'s own hyper-parameters carry over unchanged, set them in the config")")
            }
        }
        for o in [ConversionOption.momentum, .dampening, .nesterov] { try only(o, sgd: true) }
        for o in [ConversionOption.beta1, .beta2, .eps, .amsgrad] { try only(o, sgd: false) }
        momentum = try number(.momentum, "a number in [0, 1)", { $0 >= 0 && $0 < 1 }) ?? 0
        dampening = try number(.dampening, "a number in [0, 1]", { $0 >= 0 && $0 <= 1 }) ?? 0
        if values[.dampening] != nil, !from.hasDampening {
            throw ConversionError(.dampening, "is PyTorch's; \(from.displayName) has no dampening")
        }
        nesterov = switches.contains(.nesterov)
        if nesterov {
            guard from.hasNesterov else { throw ConversionError(.nesterov, "\(from.displayName) has no Nesterov momentum") }
            guard momentum > 0, dampening == 0 else { throw ConversionError(.nesterov, "needs --momentum > 0 and no --dampening") }
        }
        beta1 = try number(.beta1, "a number in [0, 1)", { $0 >= 0 && $0 < 1 })
        beta2 = try number(.beta2, "a number in [0, 1)", { $0 >= 0 && $0 < 1 })
        eps = try number(.eps, "a number ≥ 0", { $0 >= 0 })
        amsgrad = switches.contains(.amsgrad)
        if amsgrad, !from.hasAMSGrad {
            throw ConversionError(.amsgrad, from.amsgradAbsence)
        }

        batchSize = try count(.batchSize)
        trainSize = try count(.trainSize)
        epochs = try number(.epochs, "a number > 0", { $0 > 0 })
        let sizes: [(ConversionOption, Bool)] = [(.batchSize, batchSize != nil), (.trainSize, trainSize != nil), (.epochs, epochs != nil)]
        normalized = switches.contains(.normalized)
        if normalized {
            guard from == .paper, isAlias, case .weightDecay = decay else {
                throw ConversionError(.normalized, "is the paper's normalized weight decay: needs --from paper, --optimizer sgdw or adamw and --weight-decay")
            }
            if let missing = sizes.first(where: { !$0.1 }) {
                throw ConversionError(missing.0, "missing; --normalized needs --batch-size, --train-size and --epochs (λ = λ_norm·√(b/(B·T)))")
            }
        } else if sizes.contains(where: \.1), let missing = sizes.first(where: { !$0.1 }) {
            throw ConversionError(missing.0, "missing; --batch-size, --train-size and --epochs go together (the paper's normalized decay)")
        }
        scheduleMultiplier = try number(.scheduleMultiplier, "a number > 0", { $0 > 0 })
    }

    /// The source decay's value: λ, or λ_norm·√(b/(B·T)) when normalized.
    var rawDecay: Double { normalized ? decayValue * normalization! : decayValue }

    /// √(b/(B·T)) when b, B and T are known.
    var normalization: Double? {
        guard let b = batchSize, let n = trainSize, let t = epochs else { return nil }
        return (Double(b) / (Double(n) * t)).squareRoot()
    }
}

// MARK: - Conversion

/// The answer to a `ConversionRequest`: the target setting in the target framework's words
/// and as a config, with why, or that no setting there makes the same updates.
public struct Conversion: Sendable {
    /// How closely the target setting reproduces the source's updates.
    public enum Verdict: String, Sendable {
        /// The same updates under any schedule (up to float rounding).
        case exact
        /// The same updates while the learning rate does not change (momentum forms differ).
        case exactWhileLRConstant
        /// The decay converts exactly but something else differs slightly (Adam's ε placement).
        case approximate
        /// No setting in the target makes the same updates.
        case none
    }

    /// What was asked.
    public let request: ConversionRequest
    /// How closely the target reproduces the source's updates.
    public let verdict: Verdict
    /// The target setting in its framework's own words (Python, prototxt or the paper's symbols).
    public let frameworkLines: [String]
    /// The target setting in our config language (docs/config.md), nil when there is none.
    public let config: String?
    /// One line of why.
    public let why: String
    /// For `.none` with momentum: the value that matches the decay's steady state, as a hint.
    public let closest: String?
    /// With `--schedule-multiplier`: what each step applies at that η_t.
    public let perStep: String?
    /// The source setting as our engine reads it.
    public let sourceSpec: OptimizationSpec
    /// The target setting as our engine reads it; the same as `config`.
    public let targetSpec: OptimizationSpec?

    /// Where a decay sits: the optimizer's `weight_decay` or an `l2` regularizer.
    enum Knob: Equatable { case weightDecay, l2 }

    /// What one unit of a knob does: `coupled(k)`: g += k·λ·w; `decoupled(s)`: w −= s_t·λ·w.
    enum Effect: Equatable {
        case coupled(Double)
        case decoupled(DecayScale)
        var isCoupled: Bool { if case .coupled = self { return true } else { return false } }
    }

    /// A target candidate: optimizer name, knob and what a unit of it does.
    struct Candidate {
        let optimizer: String
        let knob: Knob
        let effect: Effect
    }

    /// The built-in aliases (adamw → adam, sgdw → sgd).
    static let aliases = PluginRegistry.builtIn().aliases

    /// The base optimizer of sgd/sgdw/adam/adamw.
    static func base(of optimizer: String) -> String { aliases[optimizer]?.base ?? optimizer }

    /// What one unit of `knob` on `optimizer` does in `convention`, read from the table.
    static func unitEffect(_ convention: Convention, optimizer: String, knob: Knob) -> Effect {
        let base = base(of: optimizer)
        let spec: PluginSpec
        switch knob {
        case .weightDecay:
            spec = convention.weightDecay(1, optimizer: base, isAlias: base != optimizer, l1: false, key: "optimizer.weight_decay")!
        case .l2:
            spec = PluginSpec(name: "l2", params: convention.regularizerDefaults("l2"), key: "regularizers")
        }
        switch spec.name {
        case "l2":
            let half = L2Regularizer().hyperParameters.first { $0.name == "convention" }!.defaultValue
            guard case .text(let form) = spec.params["convention"] ?? half else { preconditionFailure("l2 convention is text") }
            return .coupled(L2Regularizer.coefficient(1, form))
        case "weight_decay":
            guard case .text(let s) = spec.params["scale"] ?? DecayScale.spec.defaultValue, let scale = DecayScale(rawValue: s) else {
                preconditionFailure("weight_decay scale is a DecayScale")
            }
            return .decoupled(scale)
        default:
            preconditionFailure("the convention table maps weight_decay to l2 or weight_decay, got \(spec.name)")
        }
    }

    /// Powers of the base lr in a decoupled decay's per-step rate relative to lr_t: the
    /// rate is lr_t·λ (`lr`: 0) or η_t·λ = lr_t·λ/lr (`schedule`: −1). `constant` (λ, no
    /// schedule at all) equals neither at every step; no convention uses it.
    static func lrPower(_ s: DecayScale) -> Int? {
        switch s {
        case .lr: return 0
        case .schedule: return -1
        case .constant: return nil
        }
    }

    /// target value = source value · ratio · lr^lrPower.
    struct Relation {
        var ratio: Double
        var lrPower: Int
        /// L2 ↔ decoupled, valid for SGD without momentum only.
        var crossing: Bool
        func value(_ x: Double, lr: Double) -> Double { x * ratio * pow(lr, Double(lrPower)) }
        /// "λ/2", "lr·λ", "λ/lr"…, of the source symbol `s`.
        func text(_ s: String, extra: (num: [String], den: [String]) = ([], [])) -> String {
            var num: [String] = [], den: [String] = []
            if lrPower > 0 { num.append("lr") }
            if ratio > 1 { num.append(Conversion.num(ratio)) }
            if ratio < 1 { den.append(Conversion.num(1 / ratio)) }
            if lrPower < 0 { den.append("lr") }
            num += extra.num
            den += extra.den
            let n = (num + [s]).joined(separator: "·")
            switch den.count {
            case 0: return n
            case 1: return "\(n)/\(den[0])"
            default: return "\(n)/(\(den.joined(separator: "·")))"
            }
        }
    }

    /// How a source decay of unit effect `s` maps onto a target knob of unit effect `t`,
    /// nil when no value of the target knob makes the same updates. L2 and decoupled decay
    /// coincide only for SGD without momentum: w − lr_t·(g + λw) = (1 − lr_t·λ)·w − lr_t·g.
    static func relation(_ s: Effect, _ t: Effect, sgdWithoutMomentum: Bool) -> Relation? {
        switch (s, t) {
        case (.coupled(let ks), .coupled(let kt)):
            return Relation(ratio: ks / kt, lrPower: 0, crossing: false)
        case (.decoupled(let ss), .decoupled(let st)):
            guard let ps = lrPower(ss), let pt = lrPower(st) else { return nil }
            return Relation(ratio: 1, lrPower: ps - pt, crossing: false)
        case (.coupled(let ks), .decoupled(let st)) where sgdWithoutMomentum:
            guard let pt = lrPower(st) else { return nil }
            return Relation(ratio: ks, lrPower: -pt, crossing: true)
        case (.decoupled(let ss), .coupled(let kt)) where sgdWithoutMomentum:
            guard let ps = lrPower(ss) else { return nil }
            return Relation(ratio: 1 / kt, lrPower: ps, crossing: true)
        default:
            return nil
        }
    }

    /// The knobs `convention` offers for `optimizer` (the target), best first: the
    /// optimizer's own weight_decay, then an L2 term in the loss. An alias is offered only
    /// where it is decoupled (Caffe's "sgdw" would be L2 under another name).
    static func candidates(_ convention: Convention, optimizer: String) -> [Candidate] {
        let base = base(of: optimizer), isAlias = base != optimizer
        guard convention.models(base: base) else { return [] }
        var out: [Candidate] = []
        if convention.definesWeightDecay(isAlias: isAlias) {
            let e = unitEffect(convention, optimizer: optimizer, knob: .weightDecay)
            if !(isAlias && e.isCoupled) { out.append(Candidate(optimizer: optimizer, knob: .weightDecay, effect: e)) }
        }
        if !isAlias { out.append(Candidate(optimizer: optimizer, knob: .l2, effect: unitEffect(convention, optimizer: optimizer, knob: .l2))) }
        return out
    }

    /// Converts `request` (already validated).
    public init(_ request: ConversionRequest) {
        self.request = request
        let r = request
        let base = Self.base(of: r.optimizer)
        let isSGD = base == "sgd"
        let momentum = isSGD ? r.momentum : 0
        let sourceKnob: Knob
        switch r.decay { case .weightDecay: sourceKnob = .weightDecay; case .l2: sourceKnob = .l2 }
        let sourceEffect = Self.unitEffect(r.from, optimizer: r.optimizer, knob: sourceKnob)
        let x = r.rawDecay
        let adamDefaults = AdamOptimizer().hyperParameters
        func adamDefault(_ n: String) -> Double {
            guard case .number(let v)? = adamDefaults.first(where: { $0.name == n })?.defaultValue else { preconditionFailure(n) }
            return v
        }
        let hp = OptimizerSettings(lr: r.lr, momentum: momentum, dampening: isSGD ? r.dampening : 0, nesterov: r.nesterov,
                                   beta1: r.beta1 ?? adamDefault("beta1"), beta2: r.beta2 ?? adamDefault("beta2"),
                                   betasGiven: r.beta1 != nil || r.beta2 != nil,
                                   eps: r.eps ?? r.from.defaultEps, amsgrad: r.amsgrad)
        sourceSpec = Self.spec(r.from, optimizer: r.optimizer, knob: sourceKnob, value: r.normalized ? nil : x,
                               normalized: r.normalized ? r.decayValue : nil, request: r, hp: hp, epsGiven: r.eps != nil)

        let sourceName = "\(r.from.label) \(Self.knobName(r.from, optimizer: r.optimizer, knob: sourceKnob))"
        var sourceText = "\(sourceName) λ: \(Self.effectText(sourceEffect, "λ"))"
        if r.normalized {
            sourceText = "the paper's normalized λ_norm = \(Self.num(r.decayValue)) is λ = λ_norm·√(b/(B·T)) = \(Self.num(x)) for b = \(r.batchSize!), B = \(r.trainSize!), T = \(Self.num(r.epochs!)); " + sourceText
        }

        // Features the target framework lacks: no setting there can make the same updates.
        var blocker: String?
        if !r.to.models(base: base) {
            blocker = r.to == .caffe && base == "adam"
                ? "the caffe convention is Caffe's SGDSolver; Caffe's AdamSolver (ε added to √v, as in Keras) is not one of our conventions"
                : "the \(r.to.rawValue) convention does not model \(base) (ours computes as \(Convention.modelling(base).map(\.displayName).joined(separator: ", ")) does; \(r.to.displayName) has none or computes differently); \(base) is modelled by \(Convention.modelling(base).map(\.rawValue).joined(separator: ", "))"
        } else if isSGD, momentum > 0, hp.dampening > 0, !r.to.hasDampening {
            blocker = "PyTorch's dampening (buf = μ·buf + (1 − d)·g, not applied on the first step) has no counterpart in \(r.to.displayName)"
        } else if r.nesterov, !r.to.hasNesterov {
            blocker = "\(r.to.displayName) has no Nesterov momentum"
        } else if base == "adam", r.amsgrad, !r.to.hasAMSGrad {
            blocker = r.to.amsgradAbsence
        }

        let names = r.targetOptimizer.map { [$0] } ?? ConversionRequest.optimizers.filter { Self.base(of: $0) == base }
        let offered = blocker == nil ? names.flatMap { Self.candidates(r.to, optimizer: $0) } : []
        let matches = offered.compactMap { c in
            Self.relation(sourceEffect, c.effect, sgdWithoutMomentum: isSGD && momentum == 0).map { (c, $0) }
        }
        // Prefer the source's kind of decay (L2 stays L2); for L2 the optimizer's own
        // weight_decay over an L2 term; for decoupled decay the name the framework uses:
        // adamw (every framework has AdamW), sgd where SGD's own weight_decay is decoupled
        // (Keras, optax: no SGDW class), else sgdw.
        let best = matches.min { a, b in
            func rank(_ c: Candidate) -> (Int, Int) {
                let isAlias = Self.base(of: c.optimizer) != c.optimizer
                let baseDecoupled = !Self.unitEffect(r.to, optimizer: base, knob: .weightDecay).isCoupled
                let preferred = c.effect.isCoupled ? c.knob == .weightDecay : (isSGD && baseDecoupled ? !isAlias : isAlias)
                return (c.effect.isCoupled == sourceEffect.isCoupled ? 0 : 1, preferred ? 0 : 1)
            }
            return rank(a.0) < rank(b.0)
        }

        guard let (target, relation) = best else {
            verdict = .none
            frameworkLines = []
            config = nil
            targetSpec = nil
            perStep = nil
            let wanted = r.targetOptimizer ?? base
            if let blocker {
                why = "\(blocker)."
                closest = nil
            } else if offered.isEmpty {
                why = "\(r.to.displayName) has no decoupled weight decay (its weight_decay is L2, g += λ·w), so no \(wanted) setting there decays the weights directly."
                closest = nil
            } else {
                why = Self.mismatchReason(source: sourceEffect, base: base)
                closest = isSGD ? Self.closest(source: sourceEffect, target: offered[0], convention: r.to, momentum: momentum,
                                               dampening: hp.dampening, x: x, lr: r.lr) : nil
            }
            return
        }

        var y = relation.value(x, lr: r.lr)
        y = Double(String(format: "%.12g", y)) ?? y  // drop binary noise (0.001·0.01 = 1.0000000000000001e-05)
        let normalizedTarget: Double? = (r.to == .paper && !target.effect.isCoupled) ? r.normalization.map { y / $0 } : nil
        let spec = Self.spec(r.to, optimizer: target.optimizer, knob: target.knob, value: normalizedTarget == nil ? y : nil,
                             normalized: normalizedTarget, request: r, hp: hp, epsGiven: hp.eps != r.to.defaultEps)
        targetSpec = spec
        config = Self.toml(spec)
        frameworkLines = Self.frameworkLines(r.to, target: target, value: y, hp: hp, normalized: normalizedTarget, request: r)

        let targetName = "\(r.to.label) \(Self.knobName(r.to, optimizer: target.optimizer, knob: target.knob))"
        var because = "\(sourceText); \(targetName) λ′: \(Self.effectText(target.effect, "λ′")); so λ′ = \(relation.text("λ")) = \(Self.num(y))"
        if relation.crossing {
            because += " (without momentum L2 and decoupled decay are one update: w − lr_t·(g + λ·w) = (1 − lr_t·λ)·w − lr_t·g)"
        }
        because += "."
        var v = Verdict.exact
        if isSGD, momentum > 0 {
            let (sf, tf) = (r.from.momentumForm, r.to.momentumForm)
            func place(_ f: String) -> String { f == "lr_inside" ? "inside" : "outside" }
            if sf == tf {
                because += " Both keep the learning rate \(place(sf)) the momentum buffer, so this holds under any schedule."
            } else {
                v = .exactWhileLRConstant
                because += " \(r.from.displayName) keeps the learning rate \(place(sf)) the momentum buffer, \(r.to.displayName) \(place(tf)): after an lr change their buffers weigh past gradients differently."
            }
        }
        if base == "adam", r.from.epsMode != r.to.epsMode {
            v = .approximate
            let t1 = 1 / (1 - hp.beta2).squareRoot()
            because += " ε does not convert: Keras adds ε to √v before bias correction, ε/√(1 − β2ᵗ) in PyTorch's terms (\(Self.num(Double(String(format: "%.3g", t1))!))·ε at t = 1 for β2 = \(Self.num(hp.beta2)), → ε later), so no constant ε matches; it matters only while ε is not small against √v̂."
        }
        verdict = v
        why = because
        closest = nil
        perStep = r.scheduleMultiplier.map { eta in
            Self.perStepText(target.effect, value: y, lr: r.lr, eta: eta, isSGD: isSGD, momentum: momentum)
        }
    }

    /// The whole answer as `decoupled convert` prints it: verdict, the framework's words,
    /// the config, why, and the optional hint and per-step line.
    public var text: String {
        var lines: [String] = []
        switch verdict {
        case .exact: lines.append("exact")
        case .exactWhileLRConstant: lines.append("exact while the learning rate is constant (no schedule, no warm-up)")
        case .approximate: lines.append("approximate: the decay converts exactly, Adam's ε does not")
        case .none: lines.append("no exact equivalent in \(request.to.rawValue)")
        }
        lines += frameworkLines
        if let config {
            lines.append("config:")
            lines += config.split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }
        }
        lines.append("why: " + why)
        if let closest { lines.append("closest: " + closest) }
        if let perStep { lines.append(perStep) }
        return lines.joined(separator: "\n")
    }

    // MARK: Why

    static func mismatchReason(source: Effect, base: String) -> String {
        if base != "sgd" && base != "adam" {
            let scaling = [
                "adagrad": "is divided by √Σg² + ε", "rmsprop": "is divided by √v + ε", "adadelta": "is scaled by √(u + ε)/√(v + ε)",
                "adamax": "is divided by max(β2·u, |g| + ε)", "nadam": "is divided by √v̂ + ε", "radam": "is divided by √v̂ + ε (once rectified)",
                "lamb": "is divided by √v̂ + ε and rescaled by the per-tensor trust ratio",
                "adafactor": "is divided by the root of the factored second moment", "lion": "enters the sign of the interpolated momentum",
            ][base] ?? "goes through \(base)'s scaling"
            return source.isCoupled
                ? "\(base)'s L2 term λ·w is added to the gradient and \(scaling) with it, so a weight's decay depends on its gradients; decoupled decay (lr_t·λ·w) does not. No weight_decay makes the same updates."
                : "decoupled decay (lr_t·λ·w) does not depend on the gradients; an L2 term in the gradient \(scaling) with it. No L2 coefficient makes the same updates."
        }
        switch (source.isCoupled, base == "sgd") {
        case (true, false):
            return "Adam's L2 term λ·w is added to the gradient and divided by √v̂ + ε with it, so a weight is decayed less the larger its gradients have been; decoupled decay (lr_t·λ·w) skips that division. No weight_decay makes the same updates."
        case (false, false):
            return "decoupled decay (lr_t·λ·w) is not divided by √v̂ + ε; an L2 term in the gradient would be, so a weight with large gradients would be decayed less. No L2 coefficient makes the same updates."
        case (true, true):
            return "with momentum the L2 term λ·w enters the momentum buffer, so step t decays by lr·λ·Σ μ^(t−s)·w_s over past weights, while decoupled decay uses the current w only. They differ from the second step on, even at a constant learning rate."
        case (false, true):
            return "decoupled decay shrinks the current w only; an L2 term would enter the momentum buffer and keep acting through past weights (lr·λ·Σ μ^(t−s)·w_s). They differ from the second step on, even at a constant learning rate."
        }
    }

    /// SGD with momentum: the value whose decay matches the other's once the buffer has
    /// filled (the buffer holds Σ μ^k·(1 − d) = (1 − d)/(1 − μ) times a slowly changing λ·w).
    static func closest(source: Effect, target: Candidate, convention: Convention, momentum: Double, dampening: Double,
                        x: Double, lr: Double) -> String? {
        let flip: Effect = source.isCoupled ? .decoupled(.lr) : .coupled(1)
        // The source restated as the other kind (per unit), then mapped onto the target knob.
        guard let toFlip = relation(source, flip, sgdWithoutMomentum: true),
              let onTarget = relation(flip, target.effect, sgdWithoutMomentum: false) else { return nil }
        let gain = (1 - dampening) / (1 - momentum)
        let factor = source.isCoupled ? gain : 1 / gain
        let combined = Relation(ratio: toFlip.ratio * onTarget.ratio, lrPower: toFlip.lrPower + onTarget.lrPower, crossing: false)
        let y = combined.value(x, lr: lr) * factor
        let d = dampening > 0 ? ["(1−d)"] : []
        let extra: (num: [String], den: [String]) = source.isCoupled ? (d, ["(1−μ)"]) : (["(1−μ)"], d)
        let name = knobName(convention, optimizer: target.optimizer, knob: target.knob)
        return "\(convention.label) \(name) λ′ ≈ \(combined.text("λ", extra: extra)) = \(num(Double(String(format: "%.6g", y))!)) matches the decay per step once the momentum buffer has filled (t ≫ 1/(1−μ)) while w changes slowly; not the same updates"
    }

    static func perStepText(_ effect: Effect, value y: Double, lr: Double, eta: Double, isSGD: Bool, momentum: Double) -> String {
        let at = "at η_t = \(num(eta))"
        switch effect {
        case .decoupled(let s):
            let rate = s.value(StepContext(step: 1, eta: eta, lr: lr * eta)) * y
            return "\(at): w ← (1 − \(num(rate)))·w each step (\(s == .lr ? "lr·η_t·λ′" : s == .schedule ? "η_t·λ′" : "λ′")), besides the gradient step"
        case .coupled(let k):
            if isSGD && momentum == 0 {
                return "\(at): w ← (1 − \(num(lr * eta * k * y)))·w − lr_t·g each step (lr·η_t·\(k == 1 ? "" : num(k))λ′)"
            }
            return "\(at): g += \(num(k * y))·w each step, which then goes through \(isSGD ? "the momentum buffer" : "Adam's moments and √v̂ + ε"): no fixed shrink per step"
        }
    }

    /// What the knob is called in its framework.
    static func knobName(_ c: Convention, optimizer: String, knob: Knob) -> String {
        let base = base(of: optimizer), isAlias = base != optimizer
        if let cls = torchClass[base] {  // the torch.optim family (pytorch only)
            switch knob {
            case .weightDecay:
                if !isAlias { return "\(cls) weight_decay" }
                return torchHasDecoupledSwitch(base) ? "\(cls)(decoupled_weight_decay=True) weight_decay" : "\(cls) with decoupled decay"
            case .l2: return "L2 loss term λ/2·‖w‖²"
            }
        }
        if base == "lamb" || base == "lion" {  // optax only
            return knob == .weightDecay ? "optax.\(base) weight_decay" : "add_decayed_weights before optax.\(base)"
        }
        switch (c, knob) {
        case (.pytorch, .weightDecay):
            return isAlias ? (base == "adam" ? "AdamW weight_decay" : "SGD with decoupled decay") : "\(base == "adam" ? "Adam" : "SGD") weight_decay"
        case (.keras, .weightDecay): return "\(kerasClass(optimizer)) weight_decay"
        case (.caffe, .weightDecay): return "weight_decay"
        case (.optax, .weightDecay):
            return base == "adam" ? "adamw weight_decay" : "add_decayed_weights after trace"
        case (.paper, .weightDecay): return isAlias ? (base == "adam" ? "AdamW" : "SGDW") : "weight decay"
        case (.keras, .l2): return "L2 regularizer"
        case (.optax, .l2): return "add_decayed_weights before the optimizer"
        case (.paper, .l2): return "\(base == "adam" ? "Adam" : "SGD") with L2"
        case (.pytorch, .l2), (.caffe, .l2): return "L2 loss term λ/2·‖w‖²"
        }
    }

    static func effectText(_ e: Effect, _ s: String) -> String {
        switch e {
        case .coupled(let k): return "g += \(k == 1 ? "" : num(k))\(s)·w"
        case .decoupled(.lr): return "w −= lr·η_t·\(s)·w"
        case .decoupled(.schedule): return "w −= η_t·\(s)·w"
        case .decoupled(.constant): return "w −= \(s)·w"
        }
    }

    // MARK: Specs and config text

    /// Everything but the decay, carried from source to target unchanged.
    struct OptimizerSettings {
        var lr, momentum, dampening: Double
        var nesterov: Bool
        var beta1, beta2: Double
        var betasGiven: Bool
        var eps: Double
        var amsgrad: Bool
    }

    /// A setting as our engine reads it. `value`: the knob's λ; `normalized`: the paper's
    /// λ_norm instead (then b, B, T come from the request).
    static func spec(_ c: Convention, optimizer: String, knob: Knob, value: Double?, normalized: Double?,
                     request r: ConversionRequest, hp: OptimizerSettings, epsGiven: Bool) -> OptimizationSpec {
        let base = base(of: optimizer)
        var params: [String: HyperValue] = ["lr": .number(hp.lr)]
        if base == "sgd" {
            if hp.momentum > 0 { params["momentum"] = .number(hp.momentum) }
            if hp.dampening > 0 { params["dampening"] = .number(hp.dampening) }
            if hp.nesterov { params["nesterov"] = .flag(true) }
        } else if base == "adam" {
            if hp.betasGiven {
                params["beta1"] = .number(hp.beta1)
                params["beta2"] = .number(hp.beta2)
            }
            if epsGiven { params["eps"] = .number(hp.eps) }
            if hp.amsgrad { params["amsgrad"] = .flag(true) }
        }
        var regs: [PluginSpec] = []
        if let lambdaNorm = normalized {
            // The paper's own form: λ_norm with b, B, T; the alias's implied decay set to 0.
            params["weight_decay"] = .number(0)
            regs.append(PluginSpec(name: "weight_decay", params: [
                "lambda": .number(lambdaNorm), "normalized": .flag(true), "batch_size": .number(Double(r.batchSize!)),
                "train_size": .number(Double(r.trainSize!)), "epochs": .number(r.epochs!),
            ], key: "regularizers[0]"))
        } else if let value {
            switch knob {
            case .weightDecay: params["weight_decay"] = .number(value)
            case .l2: regs.append(PluginSpec(name: "l2", params: ["lambda": .number(value)], key: "regularizers[0]"))
            }
        }
        return OptimizationSpec(convention: c, optimizer: PluginSpec(name: optimizer, params: params, key: "optimizer"),
                                regularizers: regs, schedule: ScheduleSpec(unit: .step), decayBias: true)
    }

    static let optimizerKeyOrder = ["lr", "momentum", "dampening", "nesterov", "beta1", "beta2", "eps", "amsgrad", "weight_decay"]
    static let regularizerKeyOrder = ["lambda", "convention", "scale", "normalized", "batch_size", "train_size", "epochs"]

    /// The config text (docs/config.md) of a spec's convention, decay_bias, optimizer and
    /// regularizers; the schedule is the user's and is left out.
    public static func toml(_ spec: OptimizationSpec) -> String {
        func value(_ v: HyperValue) -> String {
            switch v {
            case .number(let x): return num(x)
            case .flag(let b): return b ? "true" : "false"
            case .text(let s): return "\"\(s)\""
            case .numbers(let xs): return "[" + xs.map(num).joined(separator: ", ") + "]"
            }
        }
        func table(_ p: PluginSpec, order: [String]) -> [String] {
            let keys = order.filter { p.params[$0] != nil } + p.params.keys.filter { !order.contains($0) }.sorted()
            return ["name = \"\(p.name)\""] + keys.map { "\($0) = \(value(p.params[$0]!))" }
        }
        var lines = ["convention = \"\(spec.convention.rawValue)\"",
                     "decay_bias = \(spec.decayBias)   # frameworks decay biases too unless told not to",
                     "[optimizer]"]
        lines += table(spec.optimizer, order: optimizerKeyOrder)
        for r in spec.regularizers {
            lines.append("[[regularizers]]")
            lines += table(r, order: regularizerKeyOrder)
        }
        return lines.joined(separator: "\n")
    }

    // MARK: Framework words

    /// torch.optim's class for each optimizer of the family beyond SGD/Adam.
    static let torchClass = ["adagrad": "Adagrad", "rmsprop": "RMSprop", "adadelta": "Adadelta", "adamax": "Adamax",
                             "nadam": "NAdam", "radam": "RAdam", "adafactor": "Adafactor"]

    /// PyTorch's NAdam and RAdam take decoupled_weight_decay=True; the others have no decoupled decay.
    static func torchHasDecoupledSwitch(_ base: String) -> Bool { base == "nadam" || base == "radam" }

    static func kerasClass(_ optimizer: String) -> String {
        switch optimizer {
        case "adamw": return "AdamW"
        case "adam": return "Adam"
        default: return "SGD"
        }
    }

    static func frameworkLines(_ c: Convention, target: Candidate, value y: Double, hp: OptimizerSettings,
                               normalized: Double?, request r: ConversionRequest) -> [String] {
        let base = base(of: target.optimizer), isAlias = base != target.optimizer
        let isSGD = base == "sgd"
        let decoupled = !target.effect.isCoupled
        let epsChanged = hp.eps != c.defaultEps
        func call(_ f: String, _ args: [(String, String?)]) -> String {
            "\(f)(" + args.compactMap { k, v in v.map { k.isEmpty ? $0 : "\(k)=\($0)" } }.joined(separator: ", ") + ")"
        }
        func opt(_ x: Double, when: Bool) -> String? { when ? num(x) : nil }
        let y = num(y)
        if let cls = torchClass[base] {  // modelled by the pytorch convention only
            let lr = num(hp.lr)
            if base == "adafactor" {  // its weight_decay is decoupled; PyTorch has no coupled form
                if decoupled { return ["torch.optim.Adafactor(params, lr=\(lr), weight_decay=\(y))"] }
                return ["torch.optim.Adafactor(params, lr=\(lr))",
                        "loss = loss + \(y) / 2 * sum((p ** 2).sum() for p in decayed_params)  # L2 in the loss: PyTorch's Adafactor has no coupled decay"]
            }
            if !decoupled { return ["torch.optim.\(cls)(params, lr=\(lr), weight_decay=\(y))"] }
            if torchHasDecoupledSwitch(base) { return ["torch.optim.\(cls)(params, lr=\(lr), weight_decay=\(y), decoupled_weight_decay=True)"] }
            return ["torch.optim.\(cls)(params, lr=\(lr))",
                    "p.mul_(1 - group[\"lr\"] * \(y))  # each decayed p of each group, before opt.step() (as AdamW does it): PyTorch's \(cls) has no decoupled decay"]
        }
        if base == "lamb" || base == "lion" {  // modelled by the optax convention only
            let lr = num(hp.lr)
            if decoupled { return ["optax.\(base)(learning_rate=\(lr), weight_decay=\(y))"] }
            return ["optax.chain(optax.add_decayed_weights(\(y)), optax.\(base)(learning_rate=\(lr), weight_decay=0))"]
        }
        switch c {
        case .pytorch:
            if isSGD {
                let sgd = call("torch.optim.SGD", [("", "params"), ("lr", num(hp.lr)), ("momentum", opt(hp.momentum, when: hp.momentum > 0)),
                                                   ("dampening", opt(hp.dampening, when: hp.dampening > 0)),
                                                   ("nesterov", hp.nesterov ? "True" : nil), ("weight_decay", decoupled ? nil : y)])
                if !decoupled { return [sgd] }
                return [sgd, "p.mul_(1 - group[\"lr\"] * \(y))  # each decayed p of each group, before opt.step(): PyTorch has no SGDW"]
            }
            return [call(isAlias ? "torch.optim.AdamW" : "torch.optim.Adam", [
                ("", "params"), ("lr", num(hp.lr)), ("betas", hp.betasGiven ? "(\(num(hp.beta1)), \(num(hp.beta2)))" : nil),
                ("eps", opt(hp.eps, when: epsChanged)), ("weight_decay", y), ("amsgrad", hp.amsgrad ? "True" : nil)])]
        case .keras:
            let args: [(String, String?)] = isSGD
                ? [("learning_rate", num(hp.lr)), ("momentum", opt(hp.momentum, when: hp.momentum > 0)), ("nesterov", hp.nesterov ? "True" : nil)]
                : [("learning_rate", num(hp.lr)), ("beta_1", opt(hp.beta1, when: hp.betasGiven)), ("beta_2", opt(hp.beta2, when: hp.betasGiven)),
                   ("epsilon", opt(hp.eps, when: epsChanged)), ("amsgrad", hp.amsgrad ? "True" : nil)]
            if decoupled {
                return [call("keras.optimizers.\(kerasClass(target.optimizer))", args + [("weight_decay", y)])]
            }
            return [call("keras.optimizers.\(kerasClass(target.optimizer))", args),
                    "keras.regularizers.L2(\(y))  # each layer's kernel_regularizer (and bias_regularizer, to decay biases too)"]
        case .optax:
            if !isSGD {
                let args: [(String, String?)] = [("learning_rate", num(hp.lr)), ("b1", opt(hp.beta1, when: hp.betasGiven)),
                                                 ("b2", opt(hp.beta2, when: hp.betasGiven)), ("eps", opt(hp.eps, when: epsChanged))]
                if decoupled { return [call("optax.adamw", args + [("weight_decay", y)])] }
                return ["optax.chain(optax.add_decayed_weights(\(y)), \(call("optax.adam", args)))"]
            }
            if decoupled {
                let trace = hp.momentum > 0 ? call("optax.trace", [("decay", num(hp.momentum)), ("nesterov", hp.nesterov ? "True" : nil)]) + ", " : ""
                return ["optax.chain(\(trace)optax.add_decayed_weights(\(y)), optax.scale_by_learning_rate(\(num(hp.lr))))"]
            }
            return ["optax.chain(optax.add_decayed_weights(\(y)), " + call("optax.sgd", [
                ("learning_rate", num(hp.lr)), ("momentum", opt(hp.momentum, when: hp.momentum > 0)), ("nesterov", hp.nesterov ? "True" : nil)]) + ")"]
        case .caffe:
            return ["solver.prototxt: type: \"SGD\" base_lr: \(num(hp.lr)) momentum: \(num(hp.momentum)) weight_decay: \(y) regularization_type: \"L2\""]
        case .paper:
            let algorithm = isSGD
                ? (decoupled ? "SGDW (Loshchilov & Hutter 2019, Algorithm 1)" : "SGD with L2 (Loshchilov & Hutter 2019, Algorithm 1, λ·θ in g_t)")
                : (decoupled ? "AdamW (Loshchilov & Hutter 2019, Algorithm 2)" : "Adam with L2 (Loshchilov & Hutter 2019, Algorithm 2, λ·θ in g_t)")
            var symbols = ["α = \(num(hp.lr))", "β1 = \(num(isSGD ? hp.momentum : hp.beta1))"]
            if !isSGD { symbols += ["β2 = \(num(hp.beta2))", "ε = \(num(hp.eps))"] }
            symbols.append("λ = \(y)")
            var line = "\(algorithm): " + symbols.joined(separator: ", ") + "; η_t = the schedule multiplier"
            if let n = normalized {
                line += "; normalized: λ_norm = λ/√(b/(B·T)) = \(num(Double(String(format: "%.6g", n))!)) for b = \(r.batchSize!), B = \(r.trainSize!), T = \(num(r.epochs!))"
            }
            return [line]
        }
    }

    /// Shortest text of `x` after dropping binary noise beyond 12 significant digits; whole
    /// numbers without a fraction. Valid in Python, TOML and prototxt.
    public static func num(_ x: Double) -> String {
        guard x.isFinite else { return "\(x)" }
        let r = Double(String(format: "%.12g", x)) ?? x
        if r == r.rounded(), abs(r) < 1e15 { return String(Int64(r)) }
        return "\(r)"
    }
}

extension ConversionRequest {
    /// The decay as typed (λ_norm when normalized).
    var decayValue: Double {
        switch decay { case .weightDecay(let v), .l2(let v): return v }
    }
}

extension Convention {
    /// The framework's name in prose.
    var displayName: String {
        switch self {
        case .pytorch: return "PyTorch"
        case .keras: return "Keras"
        case .caffe: return "Caffe"
        case .optax: return "optax"
        case .paper: return "the paper"
        }
    }

    /// The framework's name before one of its knobs ("paper AdamW").
    var label: String { self == .paper ? "paper" : displayName }

    /// Why AMSGrad cannot be written in this convention (where `hasAMSGrad` is false).
    var amsgradAbsence: String {
        switch self {
        case .optax: return "optax.amsgrad takes the running maximum of the bias-corrected v̂ (PyTorch and Keras: of the raw v) and optax.adamw has no AMSGrad, so optax has no AMSGrad of PyTorch's meaning"
        case .paper: return "the paper's Algorithm 2 has no AMSGrad"
        default: return "\(displayName) has no AMSGrad"
        }
    }
}
