import DecoupledCore
import DecoupledHDF5
import DecoupledSystem
import Foundation

/// `decoupled replay`: applies a spec's optimizer, regularizers, groups and schedule —
/// through the same registry, plan, engine and kernels as training — to recorded gradients,
/// and writes the parameter trajectory. The file layout is documented in docs/replay.md.
public struct Replay {
    public struct Result {
        public let steps: Int
        public let tensors: [String]
        public let kernel: String
        /// The decay audit of the resolved plan.
        public let audit: String
    }

    public var registry: PluginRegistry
    public var kernels: KernelPath
    public var workers: Int?

    public init(registry: PluginRegistry, kernels: KernelPath, workers: Int? = nil) {
        self.registry = registry
        self.kernels = kernels
        self.workers = workers
    }

    /// The tensor's role, from an optional `role` attribute or its name.
    static func role(_ name: String, _ ds: H5Dataset) throws -> TensorRole {
        if try ds.hasAttribute("role"), let r = TensorRole(rawValue: try ds.stringAttribute("role")) { return r }
        let leaf = name.split(separator: ".").last.map(String.init) ?? name
        if leaf == "bias" || leaf.hasSuffix("_bias") { return .bias }
        if name.contains("norm") { return .norm }
        return .weight
    }

    /// Replays `input` under the spec text (from `specFile`), writing `output` atomically.
    public func run(specText: String, specFile: String, input: String, output: String) throws -> Result {
        let root = try ConfigReader.parse(specText, file: specFile)
        let spec = try OptimizationConfig.read(root)
        // IEEE unless the spec opts in: replays are compared bit for bit with other frameworks'
        // trajectories, which are computed with gradual underflow.
        let mode: FloatingPointMode = try root.bool("flush_subnormals", default: false) ? .flushSubnormals : .ieee
        _ = try root.string("name", default: "")
        _ = try root.string("description", default: "")
        try root.finish()

        let file = try H5File(input, mode: .readOnly)
        defer { try? file.close() }
        guard try file.kind(of: "params") == .group else {
            throw ReplayError(file: input, object: "/params", message: "missing: the initial parameters go in a group /params, one dataset per tensor")
        }
        guard try file.kind(of: "grads") == .group else {
            throw ReplayError(file: input, object: "/grads", message: "missing: the gradients go in a group /grads, shape [steps, ...] per tensor")
        }
        let names = try file.openGroup("params").childNames().sorted()
        guard !names.isEmpty else { throw ReplayError(file: input, object: "/params", message: "holds no tensors") }
        var specs: [TensorSpec] = []
        var grads: [H5Dataset] = []
        var steps: Int?
        for n in names {
            let p = try file.openDataset("params/\(n)")
            let shape = try p.shape()
            specs.append(TensorSpec(name: n, shape: shape.isEmpty ? [1] : shape, role: try Self.role(n, p)))
            guard try file.kind(of: "grads/\(n)") == .dataset else {
                throw ReplayError(file: input, object: "/grads/\(n)", message: "missing: every tensor in /params needs its gradients")
            }
            let g = try file.openDataset("grads/\(n)")
            let gshape = try g.shape()
            guard gshape.count == shape.count + 1, Array(gshape.dropFirst()) == shape else {
                throw ReplayError(file: input, object: "/grads/\(n)", message: "has shape \(gshape), expected [steps] + \(shape)")
            }
            if let s = steps, s != gshape[0] {
                throw ReplayError(file: input, object: "/grads/\(n)", message: "has \(gshape[0]) steps, other tensors have \(s)")
            }
            steps = gshape[0]
            grads.append(g)
        }
        let extra = try file.openGroup("grads").childNames().filter { !names.contains($0) }
        if let e = extra.first { throw ReplayError(file: input, object: "/grads/\(e)", message: "has no initial value in /params") }
        let stepCount = steps!

        let arena = try ParameterArena(specs: specs)
        for (i, n) in names.enumerated() {
            let values = try file.openDataset("params/\(n)").read(as: Float.self, converting: true)
            arena.view(arena.params, arena.entries[i]).initialize(from: values)
        }
        let plan = try OptimizationConfig.plan(spec, registry: registry, tensors: specs, root: root)
        var timing = UpdateEngine.Timing()
        if spec.schedule.unit == .epoch {
            guard try file.hasAttribute("steps_per_epoch") else {
                throw ReplayError(file: input, object: "steps_per_epoch",
                                  message: "the spec's schedule counts epochs; give the input a root attribute steps_per_epoch or use unit = \"step\"")
            }
            timing.stepsPerEpoch = Int(try file.integerAttribute("steps_per_epoch"))
        }
        for key in ["batch_size", "training_size"] where try file.hasAttribute(key) {
            let v = Int(try file.integerAttribute(key))
            if key == "batch_size" { timing.batchSize = v } else { timing.trainingSize = v }
        }
        let engine = try UpdateEngine(plan: plan, arena: arena, kernels: kernels, workers: workers, timing: timing)

        // NAME.tmp created exclusively after removing a leftover (or a planted link), then
        // renamed over NAME: never written through a link, and a reader sees all or nothing.
        let tmp = output + FS.temporarySuffix
        FS.unlinkIfPresent(tmp)
        let out = try H5File(tmp, mode: .createExclusive)
        do {
            var trajectories: [H5Dataset] = []
            for (i, s) in specs.enumerated() {
                let ds = try out.createDataset("trajectory/\(s.name)", type: .float32, shape: [stepCount + 1] + s.shape)
                try ds.write(Array(arena.view(arena.params, arena.entries[i])), start: [0] + s.shape.map { _ in 0 },
                             count: [1] + s.shape)
                trajectories.append(ds)
            }
            for t in 0..<stepCount {
                for (i, s) in specs.enumerated() {
                    let g = try grads[i].read(start: [t] + s.shape.map { _ in 0 }, count: [1] + s.shape, as: Float.self, converting: true)
                    arena.view(arena.grads, arena.entries[i]).initialize(from: g)
                }
                mode.run { _ = engine.apply() }
                for (i, s) in specs.enumerated() {
                    try trajectories[i].write(Array(arena.view(arena.params, arena.entries[i])),
                                              start: [t + 1] + s.shape.map { _ in 0 }, count: [1] + s.shape)
                }
            }
            for (i, s) in specs.enumerated() {
                let group = plan.groups[plan.groupOfTensor[i]]
                for slot in group.stateSlots {
                    try out.createDataset("state/\(slot)/\(s.name)", values: Array(arena.stateView(slot, arena.entries[i])),
                                          shape: arena.stateShape(slot, arena.entries[i])).close()
                }
            }
            for ds in trajectories { try ds.close() }
            try out.setAttribute("spec", specText)
            try out.setAttribute("steps", Int64(stepCount))
            try out.setAttribute("kernel", kernels.name)
            try out.setAttribute("decay_audit", plan.decayAudit())
            try out.close()
        } catch {
            try? out.close()
            FS.unlinkIfPresent(tmp)
            throw error
        }
        try FS.renameFile(tmp, output)
        return Result(steps: stepCount, tensors: names, kernel: kernels.name, audit: plan.decayAudit())
    }
}

public struct ReplayError: Error, CustomStringConvertible {
    public let file: String
    public let object: String
    public let message: String
    public var description: String { "\(file): \(object) \(message)" }
}
