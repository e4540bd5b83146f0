/// Pieces the torch.optim family shares: PyTorch's lerp, Adam's moment update and the
/// hyper-parameter declarations every Adam-like optimizer repeats.

/// An element-wise optimizer's per-step scalars that also compute the step, so the optimizer
/// itself declares only hyper-parameters and state (`ElementwiseOptimizer`'s
/// `coefficients` and `direction` come from here).
public protocol ElementStep {
    init(_ hp: HyperValues, context: StepContext)
    /// The step d of one element (w ← keep·w − d) from its gradient with the coupled terms.
    func step(g: Float, w: Float, state: ElementState) -> Float
}

extension ElementwiseOptimizer where Coefficients: ElementStep {
    public func coefficients(_ hp: HyperValues, context: StepContext) -> Coefficients { Coefficients(hp, context: context) }

    @inline(__always)
    public func direction(_ c: Coefficients, weight: Float, gradient: Float, state: ElementState) -> Float {
        c.step(g: gradient, w: weight, state: state)
    }
}

/// PyTorch's `lerp_(end, weight)` on CPU: a + w·(b − a) for |w| < 0.5, else b − (b − a)·(1 − w),
/// so moving averages written `m.lerp_(g, 1 − β)` round as PyTorch's do.
@inline(__always)
public func torchLerp(_ a: Float, _ b: Float, _ weight: Float) -> Float {
    abs(weight) < 0.5 ? a + weight * (b - a) : b - (b - a) * (1 - weight)
}

/// Adam's moments in element state 0 and 1, updated as PyTorch updates them:
/// m ← lerp(m, g, 1 − β1), v ← β2·v + (1 − β2)·g².
public struct AdamMoments: Sendable {
    let oneMinusBeta1, beta2, oneMinusBeta2: Float

    public init(_ hp: HyperValues) {
        oneMinusBeta1 = Float(1 - hp.number("beta1"))
        beta2 = Float(hp.number("beta2"))
        oneMinusBeta2 = Float(1 - hp.number("beta2"))
    }

    /// The two moment slots as `state(_:)` declares them.
    public static let declarations = [StateDeclaration("exp_avg"), StateDeclaration("exp_avg_sq")]

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
