import CDecoupledKernels

/// The state slots of one element, as an element-wise direction sees them: `state[k]` is
/// slot k of the optimizer's `stateSlots`, at this element.
public struct ElementState {
    let slots: UnsafePointer<UnsafeMutablePointer<Float>>
    let i: Int

    public subscript(k: Int) -> Float {
        @inline(__always) get { slots[k][i] }
        @inline(__always) nonmutating set { slots[k][i] = newValue }
    }
}

/// One optimizer's per-element math: per-step scalars computed once per group and step (in
/// double, rounded as the reference rounds them), then the step of each element.
public protocol ElementwiseDirection {
    init(_ hp: HyperValues, context: StepContext, regularization: FusedRegularization)
    /// Δ for one element, with w ← keep·w − Δ. `g` already holds the coupled terms; `w` is the
    /// weight before the step (for directions that read it).
    func step(g: Float, w: Float, state: ElementState) -> Float
}

/// An optimizer written as an element-wise direction plus declared state. The engine-side
/// work every optimizer shares — coupled terms (as `dc_coupled`), decoupled decay
/// (w·keep, as the fused kernels), the step statistics (as `dc_account`) — is done here once,
/// so a new optimizer supplies only its `Direction` and `stateSlots`.
public protocol ElementwiseOptimizer: OptimizerPlugin {
    associatedtype Direction: ElementwiseDirection
}

extension ElementwiseOptimizer {
    public func update(_ hp: HyperValues, context: StepContext, regularization: FusedRegularization,
                       arena: ParameterArena, kernels: KernelPath) -> PieceUpdate {
        let direction = Direction(hp, context: context, regularization: regularization)
        let terms = regularization.kernelTerms
        let slots = stateSlots(hp).map { arena.slot($0).base }
        let w = arena.params.base, g = arena.grads.base
        return { p in
            var shifted = slots.map { $0 + p.offset }
            return shifted.withUnsafeMutableBufferPointer { s in
                elementwiseStep(direction, terms, w + p.offset, g + p.offset, s.baseAddress!, p.count)
            }
        }
    }
}

/// The pipeline of one piece for an element-wise optimizer; the per-element order is the fused
/// kernels' (kernels_scalar.c): coupled terms, direction, w·keep − Δ, statistics.
@inline(__always)
func elementwiseStep<D: ElementwiseDirection>(_ d: D, _ r: dc_reg_terms, _ w: UnsafeMutablePointer<Float>,
                                              _ g: UnsafePointer<Float>,
                                              _ slots: UnsafeMutablePointer<UnsafeMutablePointer<Float>>,
                                              _ n: Int) -> dc_step_stats {
    var stats = dc_step_stats.zero
    for i in 0..<n {
        let w0 = w[i], raw = g[i]
        let sign: Float = (w0 > 0 ? 1 : 0) - (w0 < 0 ? 1 : 0)
        let gi = (raw + r.l2 * w0) + r.l1 * sign
        let w1 = w0 * r.decay_keep - d.step(g: gi, w: w0, state: ElementState(slots: slots, i: i))
        w[i] = w1
        if !raw.isFinite { stats.nonfinite_grads += 1 }
        if w1 == 0 { stats.zero_params += 1 }
        stats.param_sumsq += Double(w1) * Double(w1)
    }
    return stats
}

/// PyTorch's `lerp_(end, weight)` on CPU: a + w·(b − a) for |w| < 0.5, else b − (b − a)·(1 − w),
/// so moving averages written `m.lerp_(g, 1 − β)` round as PyTorch's do.
@inline(__always)
public func torchLerp(_ a: Float, _ b: Float, _ weight: Float) -> Float {
    abs(weight) < 0.5 ? a + weight * (b - a) : b - (b - a) * (1 - weight)
}

/// Adam's moments in slots 0 and 1, updated as PyTorch updates them:
/// m ← lerp(m, g, 1 − β1), v ← β2·v + (1 − β2)·g².
public struct AdamMoments {
    let oneMinusBeta1, beta2, oneMinusBeta2: Float

    public init(_ hp: HyperValues) {
        oneMinusBeta1 = Float(1 - hp.number("beta1"))
        beta2 = Float(hp.number("beta2"))
        oneMinusBeta2 = Float(1 - hp.number("beta2"))
    }

    @inline(__always)
    public func update(_ g: Float, _ state: ElementState) -> (m: Float, v: Float) {
        let m = torchLerp(state[0], g, oneMinusBeta1)
        let v = state[1] * beta2 + oneMinusBeta2 * g * g
        state[0] = m
        state[1] = v
        return (m, v)
    }
}

extension HyperParameterSpec {
    /// The `lr` every optimizer declares (`Group.baseLR` reads it).
    static func learningRate(_ value: Double) -> HyperParameterSpec {
        .init("lr", .number(0...Double.infinity, openLower: true), default: .number(value), "base learning rate")
    }

    /// β1, β2 and ε of the Adam family, with the reference's default ε.
    static func adamMoments(eps: Double, beta2: Double = 0.999, beta2Doc: String = "second-moment decay β2",
                            epsDoc: String = "ε added to √v̂") -> [HyperParameterSpec] {
        [.init("beta1", .number(0...1, openUpper: true), default: .number(0.9), "first-moment decay β1"),
         .init("beta2", .number(0...1, openUpper: true), default: .number(beta2), beta2Doc),
         .init("eps", .number(0...Double.infinity), default: .number(eps), epsDoc)]
    }
}
