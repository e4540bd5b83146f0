/// An `OptimizationSpec` resolved against a registry and a model's tensors: every tensor in
/// exactly one group, every hyper-parameter validated, conventions and aliases applied.
public final class UpdatePlan {
    public struct Regularizer {
        public let plugin: RegularizerPlugin
        public let hyper: HyperValues
        public let key: String
    }

    public struct Group {
        public let name: String
        public let tensors: [Int]
        public let optimizer: OptimizerPlugin
        public let hyper: HyperValues
        public let lrMultiplier: Double
        public let regularizers: [Regularizer]
        /// The optimizer's base learning rate (`OptimizerPlugin.learningRate`).
        public var baseLR: Double { optimizer.learningRate(hyper) }
        /// The state of this group's optimizer and regularizers, in that order.
        public var stateDeclarations: [StateDeclaration] {
            optimizer.state(hyper) + regularizers.flatMap { $0.plugin.state($0.hyper) }
        }
        public var stateSlots: [String] { stateDeclarations.map(\.name) }
    }

    public let spec: OptimizationSpec
    public let groups: [Group]
    /// Group index of each arena tensor.
    public let groupOfTensor: [Int]
    public let schedule: Schedule
    public let tensorSpecs: [TensorSpec]

    public init(_ spec: OptimizationSpec, registry: PluginRegistry, tensors: [TensorSpec]) throws {
        self.spec = spec
        self.tensorSpecs = tensors
        let convention = spec.convention

        // Optimizer: alias → base + implied decoupled decay; `weight_decay` per convention.
        var optParams = spec.optimizer.params
        let alias = registry.aliases[spec.optimizer.name]
        let baseName = alias?.base ?? spec.optimizer.name
        let optimizer = try registry.optimizer(named: baseName)
        var wd = alias?.defaultDecay ?? 0
        if let given = optParams.removeValue(forKey: "weight_decay") {
            guard case .number(let x) = given, x >= 0, x.isFinite else {
                throw PluginError.outOfRange(key: "\(spec.optimizer.key).weight_decay", value: given, range: "[0, inf)")
            }
            wd = x
        }
        // PyTorch's NAdam/RAdam/Adam switch: weight_decay decoupled (w ← w(1 − lr_t λ)) instead
        // of coupled, for any optimizer under the pytorch convention.
        var decoupledSwitch = false
        if let d = optParams.removeValue(forKey: "decoupled_weight_decay") {
            guard case .flag(let b) = d else {
                throw PluginError.wrongType(key: "\(spec.optimizer.key).decoupled_weight_decay", value: d, expected: "true or false")
            }
            guard convention == .pytorch || !b else {
                throw PluginError.invalid(key: "\(spec.optimizer.key).decoupled_weight_decay",
                                          message: "is PyTorch's switch and needs convention = \"pytorch\" (here weight_decay already means what the \(convention.rawValue) convention says); use a weight_decay regularizer")
            }
            decoupledSwitch = b
        }
        var l1Decay = false
        if let rt = optParams.removeValue(forKey: "regularization_type") {
            guard convention == .caffe, case .text(let t) = rt, t == "L1" || t == "L2" else {
                throw PluginError.invalid(key: "\(spec.optimizer.key).regularization_type",
                                          message: "is Caffe's \"L1\" | \"L2\" and needs convention = \"caffe\", got \(rt)")
            }
            l1Decay = t == "L1"
        }
        // A built-in optimizer computes one framework's math; under a convention whose
        // framework computes it differently, its keys would not mean what they say there.
        // An optimizer no convention models (a Swift plugin registered by its host) is
        // accepted under any, as external plugins are.
        let modelling = Convention.modelling(baseName)
        if optimizer.source == "built-in", !modelling.isEmpty, !convention.models(base: baseName) {
            let homes = modelling.map { "\"\($0.rawValue)\"" }.joined(separator: " or ")
            throw PluginError.invalid(key: "\(spec.optimizer.key).name",
                                      message: "\(spec.optimizer.name) computes as the \(homes) convention's framework does; the \(convention.rawValue) convention models \(convention.optimizers.joined(separator: ", ")). Use convention = \(homes) (then weight_decay means what it says there, or give a decay as [[regularizers]])")
        }
        if convention == .paper && alias == nil && wd > 0 {
            throw PluginError.invalid(key: "\(spec.optimizer.key).weight_decay",
                                      message: "the paper defines weight decay for sgdw and adamw only; use one of them or an l2 regularizer")
        }
        var merged = convention.optimizerDefaults(base: baseName)
        merged.merge(optParams) { _, given in given }
        let topHyper: HyperValues
        do { topHyper = try optimizer.resolve(merged, keyPrefix: spec.optimizer.key) } catch PluginError.unknownKey(let key, _, let known) where alias != nil {
            // Name what the user wrote (`adamw`), not the base it resolves to, and count the
            // alias's own key among the accepted ones.
            throw PluginError.unknownKey(key: key, plugin: spec.optimizer.name,
                                         known: (known + ["weight_decay"]).sorted())
        }

        func implied(_ lambda: Double, key: String) -> [PluginSpec] {
            convention.weightDecay(lambda, optimizer: baseName, isAlias: alias != nil || decoupledSwitch, l1: l1Decay, key: key).map { [$0] } ?? []
        }
        let topRegs = implied(wd, key: "\(spec.optimizer.key).weight_decay") + spec.regularizers
        func resolveRegs(_ specs: [PluginSpec]) throws -> [Regularizer] {
            try specs.map { s in
                let plugin = try registry.regularizer(named: s.name)
                var params = convention.regularizerDefaults(s.name).filter { k, _ in
                    plugin.hyperParameters.contains { $0.name == k }
                }
                params.merge(s.params) { _, given in given }
                return Regularizer(plugin: plugin, hyper: try plugin.resolve(params, keyPrefix: s.key), key: s.key)
            }
        }
        let topRegularizers = try resolveRegs(topRegs)

        // Groups: the first matching [[groups]] entry wins; biases and norm scales fall into
        // an implicit undecayed group unless decay_bias = true.
        var groups: [Group] = []
        var groupOf = [Int](repeating: -1, count: tensors.count)
        for g in spec.groups {
            guard g.lrMultiplier > 0, g.lrMultiplier.isFinite else {
                throw PluginError.outOfRange(key: "\(g.key).lr_multiplier", value: .number(g.lrMultiplier), range: "(0, inf)")
            }
            var params = merged
            params.merge(g.optimizer) { _, given in given }
            // A group's own weight_decay replaces the optimizer-level one (PyTorch param groups).
            let groupDecay = params.removeValue(forKey: "weight_decay")
            let hyper = try optimizer.resolve(params, keyPrefix: "\(g.key).optimizer")
            var regs = try g.regularizers.map(resolveRegs) ?? topRegularizers
            if let groupDecay {
                guard case .number(let x) = groupDecay, x >= 0, x.isFinite else {
                    throw PluginError.outOfRange(key: "\(g.key).optimizer.weight_decay", value: groupDecay, range: "[0, inf)")
                }
                regs = try resolveRegs(implied(x, key: "\(g.key).optimizer.weight_decay")
                                       + (g.regularizers ?? spec.regularizers))
            }
            let members = tensors.indices.filter { groupOf[$0] == -1 && g.match.matches(tensors[$0]) }
            // decay_bias = false still holds inside a group that does not choose its own regularization.
            let choosesRegularization = g.regularizers != nil || groupDecay != nil
            let spared = spec.decayBias || choosesRegularization ? [] : members.filter { [.bias, .norm].contains(tensors[$0].role) }
            let decayed = members.filter { !spared.contains($0) }
            for (part, name, partRegs) in [(decayed, g.name, regs), (spared, "\(g.name) (no decay: bias, norm)", Self.notSpared(regs))] where !part.isEmpty {
                for t in part { groupOf[t] = groups.count }
                groups.append(Group(name: name, tensors: part, optimizer: optimizer, hyper: hyper,
                                    lrMultiplier: g.lrMultiplier, regularizers: partRegs))
            }
        }
        let rest = tensors.indices.filter { groupOf[$0] == -1 }
        let undecayed = spec.decayBias ? [] : rest.filter { [.bias, .norm].contains(tensors[$0].role) }
        let defaults = rest.filter { !undecayed.contains($0) }
        if !defaults.isEmpty {
            for t in defaults { groupOf[t] = groups.count }
            groups.append(Group(name: "default", tensors: defaults, optimizer: optimizer, hyper: topHyper,
                                lrMultiplier: 1, regularizers: topRegularizers))
        }
        if !undecayed.isEmpty {
            for t in undecayed { groupOf[t] = groups.count }
            groups.append(Group(name: "no_decay (bias, norm)", tensors: undecayed, optimizer: optimizer,
                                hyper: topHyper, lrMultiplier: 1, regularizers: Self.notSpared(topRegularizers)))
        }
        self.groups = groups
        self.groupOfTensor = groupOf

        // Schedule, with optional linear warm-up composed in front of it.
        let sp = try registry.schedule(named: spec.schedule.plugin.name)
        var schedule = try sp.make(try sp.resolve(spec.schedule.plugin.params, keyPrefix: spec.schedule.plugin.key))
        guard spec.schedule.warmup >= 0, spec.schedule.warmup.isFinite else {
            throw PluginError.outOfRange(key: "schedule.warmup", value: .number(spec.schedule.warmup), range: "[0, inf)")
        }
        guard (0...1).contains(spec.schedule.warmupStart) else {
            throw PluginError.outOfRange(key: "schedule.warmup_start", value: .number(spec.schedule.warmupStart), range: "[0, 1]")
        }
        if spec.schedule.warmup > 0 {
            schedule = WarmupSchedule(length: spec.schedule.warmup, start: spec.schedule.warmupStart, base: schedule)
        }
        self.schedule = schedule

        var layouts: [String: StateLayout] = [:]
        for g in groups {
            // Two entries of one stateful plugin in a group would share (and corrupt) its state.
            var seen = Set<String>()
            for s in g.stateDeclarations where !seen.insert(s.name).inserted {
                throw PluginError.invalid(key: "state slot '\(s.name)'",
                                          message: "is declared twice in group '\(g.name)': list each stateful plugin once per group")
            }
            for s in g.stateDeclarations {
                if let other = layouts[s.name], other != s.layout {
                    throw PluginError.invalid(key: "state slot '\(s.name)'",
                                              message: "is declared per \(other.rawValue) and per \(s.layout.rawValue) by the plugins of group '\(g.name)'; rename one")
                }
                layouts[s.name] = s.layout
            }
        }
    }

    /// The regularizers `decay_bias = false` keeps on biases and norm scales (gradient clipping).
    static func notSpared(_ regs: [Regularizer]) -> [Regularizer] {
        regs.filter { !$0.plugin.sparesBiasAndNorm($0.hyper) }
    }

    /// The state the optimizers and regularizers declare, in a stable order: what the engine
    /// allocates, checkpoints save and restore, and replay writes.
    public var stateDeclarations: [StateDeclaration] {
        var seen: [StateDeclaration] = []
        for g in groups { for s in g.stateDeclarations where !seen.contains(where: { $0.name == s.name }) { seen.append(s) } }
        return seen
    }

    /// The names of `stateDeclarations`.
    public var stateSlots: [String] { stateDeclarations.map(\.name) }

    /// The names of the plugins in use with their versions (for run records and checkpoints).
    public var pluginVersions: [String: String] {
        var v: [String: String] = [:]
        for g in groups {
            v[g.optimizer.name] = g.optimizer.version
            for r in g.regularizers { v[r.plugin.name] = r.plugin.version }
        }
        return v
    }

    /// For every tensor: its group, lr, coupled and decoupled coefficients and scale mode.
    public func decayAudit() -> String {
        var lines = ["convention: \(spec.convention.rawValue)   optimizer: \(spec.optimizer.name)"
                        + (groups.first.map { " (\($0.optimizer.name): \($0.hyper))" } ?? "")]
        let width = max(6, tensorSpecs.map(\.name.count).max() ?? 0)
        lines.append("tensor".padding(toLength: width, withPad: " ", startingAt: 0)
                     + "  role    shape          group                  lr          regularization")
        for (t, s) in tensorSpecs.enumerated() {
            let g = groups[groupOfTensor[t]]
            let regs = g.regularizers.isEmpty ? "none" : g.regularizers.map { $0.plugin.audit($0.hyper) }.joined(separator: "; ")
            lines.append(s.name.padding(toLength: width, withPad: " ", startingAt: 0) + "  "
                         + s.role.rawValue.padding(toLength: 6, withPad: " ", startingAt: 0) + "  "
                         + "\(s.shape)".padding(toLength: 13, withPad: " ", startingAt: 0) + "  "
                         + g.name.padding(toLength: 21, withPad: " ", startingAt: 0) + "  "
                         + "\((g.baseLR * g.lrMultiplier).formatted)".padding(toLength: 10, withPad: " ", startingAt: 0)
                         + "  " + regs)
        }
        return lines.joined(separator: "\n")
    }
}
