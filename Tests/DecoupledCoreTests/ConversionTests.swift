import DecoupledCore
import Foundation
import Testing

/// `decoupled convert`'s library (`ConversionRequest`, `Conversion`): the documented
/// equivalences, every input error, and — over the whole matrix of conventions, optimizers
/// and decay knobs — that each verdict holds when source and target settings run through
/// the engine (whose conventions the reference fixtures tie to the real frameworks).
@Suite struct ConversionTests {
    static func request(_ values: [ConversionOption: String], _ switches: Set<ConversionOption> = []) throws -> ConversionRequest {
        try ConversionRequest(values: values, switches: switches)
    }

    static func weightDecay(_ c: Conversion) -> Double? {
        guard case .number(let x)? = c.targetSpec?.optimizer.params["weight_decay"] else { return nil }
        return x
    }

    static func l2(_ c: Conversion) -> Double? {
        guard let r = c.targetSpec?.regularizers.first, r.name == "l2", case .number(let x)? = r.params["lambda"] else { return nil }
        return x
    }

    @Test func caffeWeightDecayIsHalfAKerasL2() throws {
        let c = Conversion(try Self.request([.from: "caffe", .to: "keras", .optimizer: "sgd", .lr: "0.01",
                                             .weightDecay: "0.0005", .momentum: "0.9"]))
        #expect(c.verdict == .exact)
        #expect(Self.l2(c) == 0.00025)
        #expect(c.frameworkLines.contains { $0.hasPrefix("keras.regularizers.L2(0.00025)") })
        // …and back: Keras L2(0.00025) is Caffe weight_decay 0.0005.
        let back = Conversion(try Self.request([.from: "keras", .to: "caffe", .optimizer: "sgd", .lr: "0.01",
                                                .l2: "0.00025", .momentum: "0.9"]))
        #expect(back.verdict == .exact)
        #expect(Self.weightDecay(back) == 0.0005)
    }

    @Test func pytorchAdamWAndThePaper() throws {
        // The paper decays by η_t·λ, PyTorch by lr_t·wd = α·η_t·wd: λ_paper = α·wd.
        let c = Conversion(try Self.request([.from: "pytorch", .to: "paper", .optimizer: "adamw", .lr: "0.001", .weightDecay: "0.01"]))
        #expect(c.verdict == .exact)
        #expect(Self.weightDecay(c) == 1e-5)
        let back = Conversion(try Self.request([.from: "paper", .to: "pytorch", .optimizer: "adamw", .lr: "0.001", .weightDecay: "1e-05"]))
        #expect(Self.weightDecay(back) == 0.01)
        #expect(back.frameworkLines == ["torch.optim.AdamW(params, lr=0.001, weight_decay=0.01)"])
    }

    @Test func normalizedDecayNeedsBatchDatasetAndEpochs() throws {
        // λ = λ_norm·√(b/(B·T)) = 0.05·√(100/(50000·8)) = 0.05·0.0158… = 7.9e-4; PyTorch wd = λ/α.
        let c = Conversion(try Self.request([.from: "paper", .to: "pytorch", .optimizer: "adamw", .lr: "0.001", .weightDecay: "0.05",
                                             .batchSize: "100", .trainSize: "50000", .epochs: "8"], [.normalized]))
        let expected = 0.05 * (100.0 / (50000 * 8)).squareRoot() / 0.001
        #expect(abs(Self.weightDecay(c)! - expected) <= 1e-12 * expected)
        // Towards the paper with b, B, T: written as the paper writes it, λ_norm.
        let to = Conversion(try Self.request([.from: "pytorch", .to: "paper", .optimizer: "adamw", .lr: "0.001", .weightDecay: "\(expected)",
                                              .batchSize: "100", .trainSize: "50000", .epochs: "8"]))
        guard case .number(let lambdaNorm)? = to.targetSpec?.regularizers.first?.params["lambda"] else {
            Issue.record("expected a normalized weight_decay regularizer")
            return
        }
        #expect(abs(lambdaNorm - 0.05) <= 1e-9)
    }

    @Test func optaxAndKerasAdamWAreTorchAdamW() throws {
        let optax = Conversion(try Self.request([.from: "optax", .to: "pytorch", .optimizer: "adamw", .lr: "0.001", .weightDecay: "0.0001"]))
        #expect(optax.verdict == .exact)
        #expect(Self.weightDecay(optax) == 0.0001)
        // Keras 3's weight_decay is decoupled and lr-scaled like AdamW's; only ε's placement differs.
        let keras = Conversion(try Self.request([.from: "keras", .to: "pytorch", .optimizer: "adam", .lr: "0.001", .weightDecay: "0.004"]))
        #expect(keras.verdict == .approximate)
        #expect(keras.targetSpec?.optimizer.name == "adamw")
        #expect(Self.weightDecay(keras) == 0.004)
        // Keras's default ε (1e-7) is carried over explicitly: PyTorch's default is 1e-8.
        #expect(keras.targetSpec?.optimizer.params["eps"] == .number(1e-7))
    }

    @Test func adamWithL2HasNoAdamWEquivalent() throws {
        let c = Conversion(try Self.request([.from: "pytorch", .to: "pytorch", .optimizer: "adam", .lr: "0.001", .weightDecay: "0.0001",
                                             .toOptimizer: "adamw"]))
        #expect(c.verdict == .none)
        #expect(c.targetSpec == nil && c.config == nil)
        #expect(c.why.contains("√v̂ + ε"))
        #expect(c.text.hasPrefix("no exact equivalent in pytorch"))
    }

    @Test func sgdL2EqualsSGDWOnlyWithoutMomentum() throws {
        let plain = Conversion(try Self.request([.from: "pytorch", .to: "pytorch", .optimizer: "sgd", .lr: "0.1", .weightDecay: "0.0005",
                                                 .toOptimizer: "sgdw"]))
        #expect(plain.verdict == .exact)
        #expect(Self.weightDecay(plain) == 0.0005)
        let momentum = Conversion(try Self.request([.from: "pytorch", .to: "pytorch", .optimizer: "sgd", .lr: "0.1", .weightDecay: "0.0005",
                                                    .momentum: "0.9", .toOptimizer: "sgdw"]))
        #expect(momentum.verdict == .none)
        // The steady-state hint: λ/(1 − μ).
        #expect(momentum.closest?.contains("= 0.005 ") == true)
    }

    @Test func momentumFormsAgreeOnlyAtConstantLR() throws {
        let c = Conversion(try Self.request([.from: "caffe", .to: "pytorch", .optimizer: "sgd", .lr: "0.01", .weightDecay: "0.0005", .momentum: "0.9"]))
        #expect(c.verdict == .exactWhileLRConstant)
        let keras = Conversion(try Self.request([.from: "caffe", .to: "keras", .optimizer: "sgd", .lr: "0.01", .weightDecay: "0.0005", .momentum: "0.9"]))
        #expect(keras.verdict == .exact)
    }

    @Test func numbersLoseBinaryNoiseOnly() {
        #expect(Conversion.num(0.001 * 0.01) == "1e-05")
        #expect(Conversion.num(0.0005 / 2) == "0.00025")
        #expect(Conversion.num(0.1 + 0.2) == "0.3")
        #expect(Conversion.num(128) == "128")
        #expect(Conversion.num(1.0 / 3) == "0.333333333333")
    }

    /// Every bad input names its option and says what it expects.
    @Test(arguments: [
        ([.from: "tensorflow"], [], "--from: unknown convention 'tensorflow'; expected pytorch | keras | caffe | optax | paper"),
        ([.from: nil], [], "--from: missing; expected pytorch | keras | caffe | optax | paper"),
        ([.optimizer: "adabelief"], [], "--optimizer: unknown optimizer 'adabelief'; expected sgd | sgdw | adam | adamw | adagrad | adagradw | rmsprop | rmspropw | adadelta | adadeltaw | adamax | adamaxw | nadam | nadamw | radam | radamw | adafactor | lamb | lion"),
        ([.lr: "-0.01"], [], "--lr: expected a number > 0, got '-0.01'"),
        ([.lr: "fast"], [], "--lr: expected a number > 0, got 'fast'"),
        ([.lr: nil], [], "--lr: missing; expected a number > 0 (the base learning rate)"),
        ([.weightDecay: nil], [], "--weight-decay: missing decay: give --weight-decay (the framework's weight_decay) or --l2 (an L2 penalty in the loss)"),
        ([.weightDecay: "-1"], [], "--weight-decay: expected a number ≥ 0, got '-1'"),
        ([.l2: "1e-4"], [], "--l2: given together with --weight-decay; convert one decay at a time"),
        ([.momentum: "1"], [], "--momentum: expected a number in [0, 1), got '1'"),
        ([.optimizer: "adam", .momentum: "0.9"], [], "--momentum: applies to sgd and sgdw; Adam's first-moment decay is --beta1"),
        ([.beta1: "0.9"], [], "--beta1: applies to adam and adamw"),
        ([:], [.nesterov], "--nesterov: needs --momentum > 0 and no --dampening"),
        ([.from: "keras", .momentum: "0.9", .dampening: "0.1"], [], "--dampening: is PyTorch's; Keras has no dampening"),
        ([.from: "caffe", .optimizer: "adam"], [], "--optimizer: adam with --from caffe: the caffe convention is Caffe's SGDSolver, sgd only"),
        ([.from: "caffe", .optimizer: "sgdw"], [], "--optimizer: sgdw with --from caffe: Caffe has no decoupled weight decay (its weight_decay is L2); use sgd"),
        ([.from: "paper"], [], "--weight-decay: the paper defines weight decay for sgdw and adamw only; for sgd with L2 use --l2"),
        ([.optimizer: "sgdw", .weightDecay: nil, .l2: "1e-4"], [], "--l2: sgdw decays through --weight-decay; for an L2 penalty use --optimizer sgd"),
        ([.toOptimizer: "adamw"], [], "--to-optimizer: adamw is not in the family of --optimizer sgd; convert within one family (sgd and its decoupled alias)"),
        ([:], [.normalized], "--normalized: is the paper's normalized weight decay: needs --from paper, --optimizer sgdw or adamw and --weight-decay"),
        ([.from: "paper", .optimizer: "adamw", .batchSize: "128"], [.normalized], "--train-size: missing; --normalized needs --batch-size, --train-size and --epochs (λ = λ_norm·√(b/(B·T)))"),
        ([.batchSize: "128", .epochs: "3"], [], "--train-size: missing; --batch-size, --train-size and --epochs go together (the paper's normalized decay)"),
        ([.batchSize: "12.5", .trainSize: "100", .epochs: "3"], [], "--batch-size: expected an integer ≥ 1, got '12.5'"),
        ([.optimizer: "adam", .from: "optax"], [.amsgrad], "--amsgrad: optax.amsgrad takes the running maximum of the bias-corrected v̂ (PyTorch and Keras: of the raw v) and optax.adamw has no AMSGrad, so optax has no AMSGrad of PyTorch's meaning"),
        ([.scheduleMultiplier: "0"], [], "--schedule-multiplier: expected a number > 0, got '0'"),
        ([.lr: "nan"], [], "--lr: expected a number > 0, got 'nan'"),
    ] as [([ConversionOption: String?], Set<ConversionOption>, String)])
    func errorsNameTheOption(_ change: [ConversionOption: String?], _ switches: Set<ConversionOption>, _ message: String) {
        var values: [ConversionOption: String] = [.from: "pytorch", .to: "keras", .optimizer: "sgd", .lr: "0.01", .weightDecay: "0.0005"]
        for (k, v) in change { values[k] = v }
        #expect(throws: ConversionError.self) { try ConversionRequest(values: values, switches: switches) }
        do {
            _ = try ConversionRequest(values: values, switches: switches)
        } catch let e as ConversionError {
            #expect(e.description == message)
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    // MARK: the whole matrix, through the engine

    static let constant = ScheduleSpec(unit: .step)
    /// A schedule that changes the learning rate twice: momentum forms part here.
    static let varying = ScheduleSpec(plugin: PluginSpec(name: "multistep", params: ["milestones": .numbers([6, 15]), "gamma": .number(0.3)],
                                                         key: "schedule"), unit: .step)

    static func trajectory(_ spec: OptimizationSpec, _ schedule: ScheduleSpec, _ w: [Float], _ gs: [[Float]]) throws -> [Float] {
        var s = spec
        s.schedule = schedule
        return try runSteps(s, w: w, grads: gs).w
    }

    /// max |a − b| relative to the trajectory's scale.
    static func difference(_ a: [Float], _ b: [Float]) -> Float {
        let scale = max(a.map(abs).max() ?? 0, b.map(abs).max() ?? 0, 1e-30)
        return zip(a, b).map { abs($0 - $1) }.max()! / scale
    }

    /// The built-in optimizers beyond SGD/Adam with their decoupled aliases (lion, a plugin, is
    /// left to ConformanceTests).
    static let family = ["adagrad", "adagradw", "rmsprop", "rmspropw", "adadelta", "adadeltaw", "adamax", "adamaxw",
                         "nadam", "nadamw", "radam", "radamw", "lamb", "adafactor"]

    /// PyTorch NAdam's decoupled_weight_decay=True converts to itself; Adagrad, which has no
    /// such switch, gets AdamW's p.mul_ line; coupled to decoupled has no equivalent; optax's
    /// LAMB carries its weight_decay; Keras does not model torch's Adagrad.
    @Test func theOptimizerFamilyConverts() throws {
        let nadamw = Conversion(try Self.request([.from: "pytorch", .to: "pytorch", .optimizer: "nadamw", .lr: "0.01", .weightDecay: "0.1"]))
        #expect(nadamw.verdict == .exact && Self.weightDecay(nadamw) == 0.1)
        #expect(nadamw.frameworkLines == ["torch.optim.NAdam(params, lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)"])
        let adagradw = Conversion(try Self.request([.from: "pytorch", .to: "pytorch", .optimizer: "adagradw", .lr: "0.01", .weightDecay: "0.1"]))
        #expect(adagradw.verdict == .exact && adagradw.frameworkLines.count == 2 && adagradw.frameworkLines[1].hasPrefix("p.mul_(1 - group[\"lr\"] * 0.1)"))
        let crossing = Conversion(try Self.request([.from: "pytorch", .to: "pytorch", .optimizer: "rmsprop", .lr: "0.01",
                                                    .weightDecay: "0.1", .toOptimizer: "rmspropw"]))
        #expect(crossing.verdict == .none && crossing.why.contains("rmsprop"))
        let lamb = Conversion(try Self.request([.from: "optax", .to: "optax", .optimizer: "lamb", .lr: "0.01", .weightDecay: "0.1"]))
        #expect(lamb.verdict == .exact && lamb.frameworkLines == ["optax.lamb(learning_rate=0.01, weight_decay=0.1)"])
        let toKeras = Conversion(try Self.request([.from: "pytorch", .to: "keras", .optimizer: "adagradw", .lr: "0.01", .weightDecay: "0.1"]))
        #expect(toKeras.verdict == .none && toKeras.why.contains("modelled by pytorch"))
        #expect(throws: ConversionError.self) {
            try Self.request([.from: "keras", .to: "pytorch", .optimizer: "adagrad", .lr: "0.01", .weightDecay: "0.1"])
        }
        #expect(throws: ConversionError.self) {
            try Self.request([.from: "pytorch", .to: "pytorch", .optimizer: "nadam", .lr: "0.01", .weightDecay: "0.1", .beta1: "0.8"])
        }
    }

    /// Every source setting the CLI accepts, converted to every convention: a target config
    /// must build a plan and make the source's updates as its verdict says.
    @Test func everyVerdictHoldsInTheEngine() throws {
        var rng = SystemRandomNumberGeneratorSeeded(11)
        let w = (0..<24).map { _ in Float(rng.uniform() * 2 - 1) }
        let gs = (0..<25).map { _ in (0..<24).map { _ in Float((rng.uniform() - 0.5) * 2) } }
        var seen: [Conversion.Verdict: Int] = [:]
        var checked = 0
        for from in Convention.allCases {
            for to in Convention.allCases {
                for opt in ["sgd", "sgdw", "adam", "adamw"] + Self.family {
                    let isSGD = opt.hasPrefix("sgd")
                    let base = opt.hasSuffix("w") ? String(opt.dropLast()) : opt  // no base optimizer's name ends in w
                    let variants: [([ConversionOption: String], Set<ConversionOption>)] = isSGD
                        ? [([:], []), ([.momentum: "0.9"], []), ([.momentum: "0.9"], [.nesterov]), ([.momentum: "0.8", .dampening: "0.3"], [])]
                        : base == "adam" ? [([:], []), ([.beta2: "0.99", .eps: "1e-06"], []), ([:], [.amsgrad])] : [([:], [])]
                    for decay in [ConversionOption.weightDecay, .l2] {
                        for (extra, switches) in variants {
                            for target in [nil] + (["lamb", "adafactor"].contains(base) ? [base] : [base, base + "w"]) {
                                var values: [ConversionOption: String] = [.from: from.rawValue, .to: to.rawValue, .optimizer: opt,
                                                                          .lr: isSGD ? "0.1" : "0.01", decay: "0.05"]
                                values.merge(extra) { _, e in e }
                                if let target { values[.toOptimizer] = target }
                                guard let req = try? ConversionRequest(values: values, switches: switches) else { continue }
                                let c = Conversion(req)
                                let label = "\(values.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key.flag) \($0.value)" }.joined(separator: " ")) \(switches.map(\.flag).sorted().joined(separator: " "))"
                                seen[c.verdict, default: 0] += 1
                                checked += 1
                                guard let target = c.targetSpec else {
                                    #expect(c.verdict == .none && c.config == nil && !c.why.isEmpty, "\(label)")
                                    continue
                                }
                                let sourceConstant = try Self.trajectory(c.sourceSpec, Self.constant, w, gs)
                                let targetConstant = try Self.trajectory(target, Self.constant, w, gs)
                                let sourceVarying = try Self.trajectory(c.sourceSpec, Self.varying, w, gs)
                                let targetVarying = try Self.trajectory(target, Self.varying, w, gs)
                                let atConstant = Self.difference(sourceConstant, targetConstant)
                                let atVarying = Self.difference(sourceVarying, targetVarying)
                                switch c.verdict {
                                case .exact:
                                    #expect(atConstant <= 2e-6 && atVarying <= 2e-6, "\(label): exact but \(atConstant), \(atVarying)")
                                case .exactWhileLRConstant:
                                    #expect(atConstant <= 2e-6, "\(label): \(atConstant) at constant lr")
                                    #expect(atVarying > 1e-3, "\(label): the condition is real: \(atVarying) with a schedule")
                                case .approximate:
                                    #expect(atConstant <= 1e-3 && atVarying <= 1e-3, "\(label): approximate but \(atConstant), \(atVarying)")
                                case .none:
                                    Issue.record("\(label): .none with a target spec")
                                }
                            }
                        }
                    }
                }
            }
        }
        #expect(checked > 300)
        for v in [Conversion.Verdict.exact, .exactWhileLRConstant, .approximate, .none] {
            #expect((seen[v] ?? 0) > 0, "verdict \(v) never produced")
        }
    }

    /// "No exact equivalent" is true: the steady-state hint for SGD+L2 with momentum is not
    /// the same update, and neither is any AdamW decay for Adam+L2 (the closest we can pick:
    /// the same λ, and λ scaled to match at the first step).
    @Test func noEquivalentMeansDifferentUpdates() throws {
        var rng = SystemRandomNumberGeneratorSeeded(12)
        let w = (0..<24).map { _ in Float(rng.uniform() * 2 - 1) }
        let gs = (0..<25).map { _ in (0..<24).map { _ in Float((rng.uniform() - 0.5) * 2) } }
        let sgdL2 = Conversion(try Self.request([.from: "pytorch", .to: "pytorch", .optimizer: "sgd", .lr: "0.1", .weightDecay: "0.05",
                                                 .momentum: "0.9", .toOptimizer: "sgdw"]))
        #expect(sgdL2.verdict == .none)
        let source = try Self.trajectory(sgdL2.sourceSpec, Self.constant, w, gs)
        for lambda in [0.05, 0.5] {  // the same λ, and λ/(1 − μ)
            let sgdw = OptimizationSpec(optimizer: PluginSpec(name: "sgdw", params: ["lr": .number(0.1), "momentum": .number(0.9),
                                                                                     "weight_decay": .number(lambda)], key: "optimizer"),
                                        decayBias: true)
            #expect(Self.difference(source, try Self.trajectory(sgdw, Self.constant, w, gs)) > 1e-3)
        }
        let adamL2 = Conversion(try Self.request([.from: "pytorch", .to: "pytorch", .optimizer: "adam", .lr: "0.01", .weightDecay: "0.05",
                                                  .toOptimizer: "adamw"]))
        let adamSource = try Self.trajectory(adamL2.sourceSpec, Self.constant, w, gs)
        for lambda in [0.05, 0.5, 5] {
            let adamw = OptimizationSpec(optimizer: PluginSpec(name: "adamw", params: ["lr": .number(0.01), "weight_decay": .number(lambda)],
                                                               key: "optimizer"), decayBias: true)
            #expect(Self.difference(adamSource, try Self.trajectory(adamw, Self.constant, w, gs)) > 1e-4)
        }
    }
}
