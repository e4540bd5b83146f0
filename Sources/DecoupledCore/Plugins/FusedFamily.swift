import CDecoupledKernels

/// The fused kernels of the torch.optim family (`decoupled_kernels_family.h`): each built-in
/// `ElementwiseOptimizer` below replaces the generic element-wise path with one C call per
/// piece. The per-step scalars come from the optimizer's own `Coefficients` (computed once
/// per step, in double where PyTorch computes in Python floats); the kernels repeat its
/// `step` function operation for operation, and FusedFamilyTests holds every kernel path to
/// `elementwiseUpdate` bit for bit. State slots and their order are the declared ones, so
/// checkpoints and replays do not see which path ran.

extension KernelPath {
    @inline(__always)
    func adagrad(_ hp: UnsafePointer<dc_adagrad_params>, _ w: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>,
                        _ sum: UnsafeMutablePointer<Float>, _ n: Int) -> dc_step_stats {
        table.pointee.adagrad(hp, w, g, sum, n)
    }

    /// `gradAvg` may be nil unless centered, `momentumBuffer` unless `has_momentum`.
    @inline(__always)
    func rmsprop(_ hp: UnsafePointer<dc_rmsprop_params>, _ w: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>,
                        _ squareAvg: UnsafeMutablePointer<Float>, _ gradAvg: UnsafeMutablePointer<Float>?,
                        _ momentumBuffer: UnsafeMutablePointer<Float>?, _ n: Int) -> dc_step_stats {
        table.pointee.rmsprop(hp, w, g, squareAvg, gradAvg, momentumBuffer, n)
    }

    @inline(__always)
    func adadelta(_ hp: UnsafePointer<dc_adadelta_params>, _ w: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>,
                         _ squareAvg: UnsafeMutablePointer<Float>, _ accDelta: UnsafeMutablePointer<Float>, _ n: Int) -> dc_step_stats {
        table.pointee.adadelta(hp, w, g, squareAvg, accDelta, n)
    }

    @inline(__always)
    func adamax(_ hp: UnsafePointer<dc_adamax_params>, _ w: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>,
                       _ expAvg: UnsafeMutablePointer<Float>, _ expInf: UnsafeMutablePointer<Float>, _ n: Int) -> dc_step_stats {
        table.pointee.adamax(hp, w, g, expAvg, expInf, n)
    }

    @inline(__always)
    func nadam(_ hp: UnsafePointer<dc_nadam_params>, _ w: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>,
                      _ expAvg: UnsafeMutablePointer<Float>, _ expAvgSq: UnsafeMutablePointer<Float>, _ n: Int) -> dc_step_stats {
        table.pointee.nadam(hp, w, g, expAvg, expAvgSq, n)
    }

    @inline(__always)
    func radam(_ hp: UnsafePointer<dc_radam_params>, _ w: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>,
                      _ expAvg: UnsafeMutablePointer<Float>, _ expAvgSq: UnsafeMutablePointer<Float>, _ n: Int) -> dc_step_stats {
        table.pointee.radam(hp, w, g, expAvg, expAvgSq, n)
    }
}

extension dc_lerp {
    /// PyTorch's `lerp_` weight as `torchLerp` uses it: 1 − weight in float, the form by |weight|.
    init(weight: Float) {
        self.init(weight: weight, one_minus_weight: 1 - weight, from_end: abs(weight) < 0.5 ? 0 : 1)
    }
}

extension AdamMoments {
    var kernelMoments: dc_moments {
        dc_moments(exp_avg: dc_lerp(weight: oneMinusBeta1), beta2: beta2, one_minus_beta2: oneMinusBeta2)
    }
}

extension ElementwiseOptimizer {
    /// The arena's element-state buffers in declaration order (`ElementState`'s indices).
    func elementSlots(_ hp: HyperValues, _ arena: ParameterArena) -> [UnsafeMutablePointer<Float>] {
        state(hp).filter { $0.layout == .element }.map { arena.slot($0.name).base }
    }

    /// A piece update calling `kernel` with the piece's weights, gradients and states.
    func fusedUpdate<Params>(_ params: Params, hp: HyperValues, arena: ParameterArena,
                             _ kernel: @escaping (UnsafePointer<Params>, UnsafeMutablePointer<Float>, UnsafePointer<Float>,
                                                  [UnsafeMutablePointer<Float>], Sharder.Piece) -> dc_step_stats) -> PieceUpdate {
        let pinned = Pinned(params)
        let w = arena.params.base, g = arena.grads.base, slots = elementSlots(hp, arena)
        return { p in StepStatistics(kernel(pinned.pointer, w + p.offset, g + p.offset, slots, p)) }
    }
}

extension AdagradOptimizer {
    public func update(_ hp: HyperValues, context: StepContext, regularization: FusedRegularization,
                       arena: ParameterArena, kernels: KernelPath) -> PieceUpdate {
        let c = coefficients(hp, context: context)
        return fusedUpdate(dc_adagrad_params(clr: c.clr, eps: c.eps, reg: regularization.kernelTerms), hp: hp, arena: arena) { hp, w, g, s, p in
            kernels.adagrad(hp, w, g, s[0] + p.offset, p.count)
        }
    }
}

extension RMSpropOptimizer {
    public func update(_ hp: HyperValues, context: StepContext, regularization: FusedRegularization,
                       arena: ParameterArena, kernels: KernelPath) -> PieceUpdate {
        let c = coefficients(hp, context: context)
        let params = dc_rmsprop_params(lr: c.lr, alpha: c.alpha, one_minus_alpha: c.oneMinusAlpha, eps: c.eps, momentum: c.momentum,
                                       grad_avg: dc_lerp(weight: c.oneMinusAlpha), centered: c.centered ? 1 : 0,
                                       has_momentum: c.hasMomentum ? 1 : 0, reg: regularization.kernelTerms)
        // Slots in declaration order: square_avg, then grad_avg if centered, then momentum_buffer.
        let centered = c.centered, momentum = c.hasMomentum
        return fusedUpdate(params, hp: hp, arena: arena) { hp, w, g, s, p in
            let avg = centered ? s[1] + p.offset : nil
            let buf = momentum ? s[centered ? 2 : 1] + p.offset : nil
            return kernels.rmsprop(hp, w, g, s[0] + p.offset, avg, buf, p.count)
        }
    }
}

extension AdadeltaOptimizer {
    public func update(_ hp: HyperValues, context: StepContext, regularization: FusedRegularization,
                       arena: ParameterArena, kernels: KernelPath) -> PieceUpdate {
        let c = coefficients(hp, context: context)
        let params = dc_adadelta_params(lr: c.lr, rho: c.rho, one_minus_rho: c.oneMinusRho, eps: c.eps, reg: regularization.kernelTerms)
        return fusedUpdate(params, hp: hp, arena: arena) { hp, w, g, s, p in
            kernels.adadelta(hp, w, g, s[0] + p.offset, s[1] + p.offset, p.count)
        }
    }
}

extension AdamaxOptimizer {
    public func update(_ hp: HyperValues, context: StepContext, regularization: FusedRegularization,
                       arena: ParameterArena, kernels: KernelPath) -> PieceUpdate {
        let c = coefficients(hp, context: context)
        let params = dc_adamax_params(clr: c.clr, beta2: c.beta2, eps: c.eps, exp_avg: dc_lerp(weight: c.oneMinusBeta1),
                                      reg: regularization.kernelTerms)
        return fusedUpdate(params, hp: hp, arena: arena) { hp, w, g, s, p in
            kernels.adamax(hp, w, g, s[0] + p.offset, s[1] + p.offset, p.count)
        }
    }
}

extension NAdamOptimizer {
    public func update(_ hp: HyperValues, context: StepContext, regularization: FusedRegularization,
                       arena: ParameterArena, kernels: KernelPath) -> PieceUpdate {
        let c = coefficients(hp, context: context)
        let params = dc_nadam_params(moments: c.moments.kernelMoments, grad_scale: c.gradScale, avg_scale: c.avgScale,
                                     bc2: c.bc2, eps: c.eps, reg: regularization.kernelTerms)
        return fusedUpdate(params, hp: hp, arena: arena) { hp, w, g, s, p in
            kernels.nadam(hp, w, g, s[0] + p.offset, s[1] + p.offset, p.count)
        }
    }
}

extension RAdamOptimizer {
    public func update(_ hp: HyperValues, context: StepContext, regularization: FusedRegularization,
                       arena: ParameterArena, kernels: KernelPath) -> PieceUpdate {
        let c = coefficients(hp, context: context)
        let params = dc_radam_params(moments: c.moments.kernelMoments, lr: c.lr, bc1: c.bc1, sqrt_bc2: c.sqrtBC2, eps: c.eps,
                                     rect: c.rect, rectified: c.rectified ? 1 : 0, reg: regularization.kernelTerms)
        return fusedUpdate(params, hp: hp, arena: arena) { hp, w, g, s, p in
            kernels.radam(hp, w, g, s[0] + p.offset, s[1] + p.offset, p.count)
        }
    }
}
