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

/// The gradient with the coupled terms, with the same two roundings as the kernels'
/// `dc_coupled`: g + l2·w, then + l1·sign(w).
@inline(__always)
func coupledGradient(_ g: Float, weight w: Float, l2: Float, l1: Float) -> Float {
    let withL2 = g + l2 * w
    return withL2 + l1 * kernelSign(w)
}

extension ElementwiseOptimizer {
    /// The generic element-wise path; a built-in with a fused kernel (FusedFamily.swift)
    /// overrides `update`, and FusedFamilyTests holds that kernel to this path bit for bit.
    public func update(_ hp: HyperValues, context: StepContext, regularization: FusedRegularization,
                       arena: ParameterArena, kernels: KernelPath) -> PieceUpdate {
        elementwiseUpdate(hp, context: context, regularization: regularization, arena: arena)
    }

    /// The engine's pipeline around `direction`, one element at a time in Swift: what every
    /// `ElementwiseOptimizer` runs unless it brings a fused kernel.
    public func elementwiseUpdate(_ hp: HyperValues, context: StepContext, regularization: FusedRegularization,
                                  arena: ParameterArena) -> PieceUpdate {
        let c = coefficients(hp, context: context)
        let (l2, l1, keep) = regularization.elementTerms
        let slots = PinnedArray(state(hp).filter { $0.layout == .element }.map { arena.slot($0.name).base })
        let w = arena.params.base, g = arena.grads.base
        return { p in
            var stats = StepStatistics.zero
            for i in p.offset..<(p.offset + p.count) {
                let w0 = w[i], raw = g[i]
                let gi = coupledGradient(raw, weight: w0, l2: l2, l1: l1)
                let d = self.direction(c, weight: w0, gradient: gi, state: ElementState(slots: slots.pointer, index: i))
                let w1 = w0 * keep - d
                w[i] = w1
                stats.count(gradient: raw, weight: w1)
            }
            return withExtendedLifetime(slots) { stats }
        }
    }
}

/// An optimizer whose direction needs whole tensors: factored second moments (Adafactor),
/// trust ratios (LARS, LAMB), update clipping by a tensor's RMS. The engine runs the same
/// pipeline around it, one tensor at a time instead of one element:
///
///     g' ← g + l2·w + l1·sign(w)               coupled terms, into a scratch tensor (engine)
///     direction(coefficients, tensor, g', d)   the optimizer writes d for the whole tensor
///     w  ← keep·w − d                          decoupled decay and apply (engine)
///     statistics of g and the new w, in piece order (engine)
///
/// Each tensor is one worker's call, so the result does not depend on the number of workers.
/// `tensor.state` holds the tensor's part of every declared slot, whatever its layout.
public protocol TensorOptimizer: OptimizerPlugin {
    associatedtype Coefficients
    /// The per-step scalars of one group.
    func coefficients(_ hp: HyperValues, context: StepContext) -> Coefficients
    /// Writes the step `direction` (the engine then writes w ← keep·w − d) of one tensor from
    /// `gradient`, which holds the coupled terms; `tensor.weights` are the weights before it.
    func direction(_ c: Coefficients, tensor: TensorData, gradient: UnsafeBufferPointer<Float>,
                   direction: UnsafeMutableBufferPointer<Float>)
}

/// One group's whole-tensor update for one step: writes the tensor's new weights.
public typealias TensorUpdate = (TensorData) -> Void

extension TensorOptimizer {
    /// Never called: the engine runs `tensorUpdate` for this optimizer's groups.
    public func update(_ hp: HyperValues, context: StepContext, regularization: FusedRegularization,
                       arena: ParameterArena, kernels: KernelPath) -> PieceUpdate {
        { _ in .zero }
    }

    public func tensorUpdate(_ hp: HyperValues, context: StepContext, regularization: FusedRegularization) -> TensorUpdate? {
        wholeTensorUpdate(coefficients(hp, context: context), regularization: regularization)
    }

    /// The engine's pipeline around `direction` with coefficients `c`: for an optimizer that
    /// takes part of `regularization` into its own direction (LAMB's decay inside the trust
    /// ratio) and hands the engine the rest.
    public func wholeTensorUpdate(_ c: Coefficients, regularization: FusedRegularization) -> TensorUpdate {
        let (l2, l1, keep) = regularization.elementTerms
        return { t in
            let n = t.info.count
            let g = UnsafeMutableBufferPointer<Float>.allocate(capacity: 2 * max(n, 1))
            defer { g.deallocate() }
            let d = UnsafeMutableBufferPointer(rebasing: g[n..<(2 * n)])
            let w = t.weights, raw = t.gradients
            for i in 0..<n { g[i] = coupledGradient(raw[i], weight: w[i], l2: l2, l1: l1) }
            d.update(repeating: 0)
            self.direction(c, tensor: t, gradient: UnsafeBufferPointer(rebasing: g[0..<n]), direction: d)
            for i in 0..<n { w[i] = w[i] * keep - d[i] }
        }
    }
}
