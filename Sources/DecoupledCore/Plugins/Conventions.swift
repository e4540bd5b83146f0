/// How each framework's hyper-parameters translate into our plugins (docs/config.md).
///
/// The table is the heart of "which weight decay do you mean": `weight_decay` on an
/// optimizer is coupled L2 in PyTorch's `SGD`/`Adam` and Caffe, decoupled and lr-scaled in
/// PyTorch's `AdamW`, Keras 3 and optax, and decoupled and schedule-scaled in the paper.
extension Convention {
    /// What an optimizer's `weight_decay` becomes, or nil if this convention has none for it.
    func weightDecay(_ lambda: Double, optimizer: String, isAlias: Bool, l1: Bool, key: String) -> PluginSpec? {
        guard lambda > 0 else { return nil }
        switch self {
        case .pytorch where !isAlias && optimizer != "adafactor", .caffe:  // PyTorch's Adafactor decays decoupled
            return l1 ? PluginSpec(name: "l1", params: ["lambda": .number(lambda)], key: key)
                : PluginSpec(name: "l2", params: ["lambda": .number(lambda), "convention": .text("half")], key: key)
        case .pytorch, .keras, .optax:
            return PluginSpec(name: "weight_decay", params: ["lambda": .number(lambda), "scale": .text("lr")], key: key)
        case .paper:
            return PluginSpec(name: "weight_decay", params: ["lambda": .number(lambda), "scale": .text("schedule")], key: key)
        }
    }

    /// Defaults the convention sets on the base optimizer when the config does not say.
    func optimizerDefaults(base: String) -> [String: HyperValue] {
        switch (self, base) {
        case (.keras, "sgd"), (.caffe, "sgd"), (.paper, "sgd"): return ["momentum_form": .text("lr_inside")]
        case (.keras, "adam"): return ["eps_mode": .text("keras"), "eps": .number(1e-7)]
        default: return [:]
        }
    }

    /// Defaults the convention sets on regularizers (Keras's L2 is λ‖w‖², no ½).
    func regularizerDefaults(_ name: String) -> [String: HyperValue] {
        switch (self, name) {
        case (.keras, "l2"), (.keras, "elastic"): return ["convention": .text("full")]
        case (.paper, "weight_decay"): return ["scale": .text("schedule")]
        default: return [:]
        }
    }
}

/// What each framework offers beyond the table above, read by `decoupled convert`
/// (`Conversion`): a setting that needs a feature the target framework lacks has no
/// equivalent there. Forms the table already fixes (momentum form, ε placement, default ε)
/// are read from `optimizerDefaults` and the plugins' own defaults, not restated.
extension Convention {
    /// SGD's `momentum_form`: `torch` (lr outside the buffer: PyTorch, optax) or `lr_inside`
    /// (Keras, Caffe, the paper).
    var momentumForm: String { Self.defaultText(optimizerDefaults(base: "sgd")["momentum_form"], SGDOptimizer(), "momentum_form") }

    /// Adam's `eps_mode`: `torch` (ε added to √v̂) or `keras` (ε added to √v).
    var epsMode: String { Self.defaultText(optimizerDefaults(base: "adam")["eps_mode"], AdamOptimizer(), "eps_mode") }

    /// Adam's ε when the framework's user does not set it (Keras 1e-7, the others 1e-8).
    var defaultEps: Double {
        if case .number(let x)? = optimizerDefaults(base: "adam")["eps"] { return x }
        if case .number(let x)? = AdamOptimizer().hyperParameters.first(where: { $0.name == "eps" })?.defaultValue { return x }
        preconditionFailure("AdamOptimizer declares eps")
    }

    /// The built-in optimizers (and the shipped `lion` plugin) whose math is this framework's
    /// own, each checked by replay fixtures: the caffe convention is Caffe's `SGDSolver`
    /// (Caffe's `AdamSolver` adds ε to √v like Keras and is not modelled); Adagrad … RAdam
    /// compute as torch.optim's do (Keras's and optax's versions differ: Keras's Adagrad
    /// starts its accumulator at 0.1 and adds ε inside, optax's nadam has no momentum decay);
    /// LAMB and Lion are optax's.
    var optimizers: [String] {
        switch self {
        case .pytorch: return ["sgd", "adam", "adagrad", "rmsprop", "adadelta", "adamax", "nadam", "radam", "adafactor"]
        case .keras, .paper: return ["sgd", "adam"]
        case .caffe: return ["sgd"]
        case .optax: return ["sgd", "adam", "lamb", "lion"]
        }
    }

    /// Whether the convention models the optimizer family `base` (see `optimizers`).
    func models(base: String) -> Bool { optimizers.contains(base) }

    /// The conventions that model `base`, for messages.
    static func modelling(_ base: String) -> [Convention] { allCases.filter { $0.models(base: base) } }

    /// Whether the optimizer's own `weight_decay` means anything: the paper defines weight
    /// decay for SGDW and AdamW only (SGD and Adam take an L2 term in g_t). `UpdatePlan`
    /// refuses the same settings when it reads a config.
    func definesWeightDecay(isAlias: Bool) -> Bool { self != .paper || isAlias }

    /// PyTorch's `dampening` (buf ← μ·buf + (1 − d)·g, not applied on the first step) has
    /// no counterpart in Keras, Caffe, optax's `trace` or the paper.
    var hasDampening: Bool { self == .pytorch }

    /// Nesterov momentum: PyTorch `nesterov`, Keras `nesterov`, optax `trace(nesterov=True)`;
    /// Caffe's `SGDSolver` and the paper's Algorithm 1 have none.
    var hasNesterov: Bool { self == .pytorch || self == .keras || self == .optax }

    /// AMSGrad as PyTorch and Keras define it (running maximum of the raw v, then bias
    /// correction). `optax.amsgrad` takes the maximum of the bias-corrected v̂ and
    /// `optax.adamw` has no AMSGrad; the paper has none.
    var hasAMSGrad: Bool { self == .pytorch || self == .keras }

    private static func defaultText(_ given: HyperValue?, _ plugin: OptimizerPlugin, _ name: String) -> String {
        if case .text(let s)? = given { return s }
        if case .text(let s)? = plugin.hyperParameters.first(where: { $0.name == name })?.defaultValue { return s }
        preconditionFailure("\(plugin.name) declares \(name)")
    }
}
