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
        case .pytorch where !isAlias, .caffe:
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
