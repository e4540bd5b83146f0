/// An optimizer written as one function per element: the engine runs the rest of the fused
/// pipeline around it, exactly as the built-in kernels do (docs/architecture.md):
///
///     g  ← g + l2·w + l1·sign(w)                 coupled regularizer terms (engine)
///     d  ← direction(coefficients, w, g, state)  the optimizer (this protocol)
///     w  ← keep·w − d                            decoupled decay and apply (engine)
///     statistics of g and the new w              (engine)
///
/// `coefficients` runs once per group and step (bias corrections, lr_t, …); `direction` on
/// every element, on every worker, so it must only touch its own element's state. Declare
/// the state with `state(_:)`: `ElementState[k]` is the k-th slot of layout `.element` in
/// declaration order (per-row, per-column and per-tensor state is for tensor passes).
public protocol ElementwiseOptimizer: OptimizerPlugin {
    associatedtype Coefficients
    /// The per-step scalars of one group.
    func coefficients(_ hp: HyperValues, context: StepContext) -> Coefficients
    /// The step d for one element (the engine then writes w ← keep·w − d): `gradient` already
    /// holds the coupled terms; `state` reads and writes this element's state in place.
    func direction(_ c: Coefficients, weight: Float, gradient: Float, state: ElementState) -> Float
}

/// One element's declared state: `state[k]` is slot k of the optimizer's `state(_:)`.
public struct ElementState {
    let slots: UnsafePointer<UnsafeMutablePointer<Float>>
    let index: Int

    @inline(__always)
    public subscript(_ k: Int) -> Float {
        get { slots[k][index] }
        nonmutating set { slots[k][index] = newValue }
    }
}

/// sign(w) as the kernels compute it: +1, −1, or 0 for ±0 and NaN.
@inline(__always)
func kernelSign(_ w: Float) -> Float { (w > 0 ? 1 : 0) - (w < 0 ? 1 : 0) }

extension ElementwiseOptimizer {
    public func update(_ hp: HyperValues, context: StepContext, regularization: FusedRegularization,
                       arena: ParameterArena, kernels: KernelPath) -> PieceUpdate {
        let c = coefficients(hp, context: context)
        let (l2, l1, keep) = regularization.elementTerms
        let slots = PinnedArray(state(hp).filter { $0.layout == .element }.map { arena.slot($0.name).base })
        let w = arena.params.base, g = arena.grads.base
        return { p in
            var stats = StepStatistics.zero
            for i in p.offset..<(p.offset + p.count) {
                let w0 = w[i], raw = g[i]
                // The same two roundings as the kernels' dc_coupled: g + l2·w, then + l1·sign(w).
                var gi = raw + l2 * w0
                gi = gi + l1 * kernelSign(w0)
                let d = self.direction(c, weight: w0, gradient: gi, state: ElementState(slots: slots.pointer, index: i))
                let w1 = w0 * keep - d
                w[i] = w1
                stats.count(gradient: raw, weight: w1)
            }
            return withExtendedLifetime(slots) { stats }
        }
    }
}
