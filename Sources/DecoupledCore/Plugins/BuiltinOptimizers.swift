import CDecoupledKernels

/// SGD with momentum, dampening and Nesterov, fused into `dc_sgd_step`.
///
/// `momentum_form` picks where the learning rate enters: `torch` (buf = μ·buf + (1−d)·g,
/// w −= lr·buf; PyTorch, optax) or `lr_inside` (buf = μ·buf + lr·g, w −= buf; Caffe, Keras,
/// the paper's SGDW). They differ only when the learning rate changes during training.
public final class SGDOptimizer: OptimizerPlugin {
    public let name = "sgd"
    public let version = "1.0.0"
    public let kind = PluginKind.optimizer
    public let summary = "SGD with momentum, dampening and Nesterov (PyTorch semantics by default)"
    public let hyperParameters: [HyperParameterSpec] = [
        .init("lr", .number(0...Double.infinity, openLower: true), default: .number(0.01), "base learning rate"),
        .init("momentum", .number(0...1, openUpper: true), default: .number(0), "μ; 0 = plain SGD"),
        .init("dampening", .number(0...1), default: .number(0), "buf = μ·buf + (1 − dampening)·g"),
        .init("nesterov", .flag, default: .flag(false), "Nesterov momentum (needs momentum > 0, dampening 0)"),
        .init("momentum_form", .choice(["torch", "lr_inside"]), default: .text("torch"),
              "torch: w −= lr·buf; lr_inside: buf accumulates lr·g (Caffe, Keras, paper)"),
    ]

    public init() {}

    public func state(_ hp: HyperValues) -> [StateDeclaration] {
        hp.number("momentum") > 0 ? [StateDeclaration("momentum_buffer")] : []
    }

    public func validate(_ hp: HyperValues, keyPrefix: String) throws {
        if hp.flag("nesterov") && (hp.number("momentum") <= 0 || hp.number("dampening") != 0) {
            throw PluginError.invalid(key: "\(keyPrefix).nesterov",
                                      message: "Nesterov momentum requires momentum > 0 and dampening = 0")
        }
    }

    public func update(_ hp: HyperValues, context: StepContext, regularization: FusedRegularization,
                       arena: ParameterArena, kernels: KernelPath) -> PieceUpdate {
        let momentum = hp.number("momentum")
        let lrInside = hp.text("momentum_form") == "lr_inside"
        let params = Pinned(SGDKernelParameters(lr: Float(context.lr), momentum: Float(momentum),
                                                dampening: Float(hp.number("dampening")), nesterov: hp.flag("nesterov"),
                                                firstStep: context.step == 1 && !lrInside, lrInMomentum: lrInside,
                                                regularization: regularization).kernelParameters)
        let w = arena.params.base, g = arena.grads.base
        let buf = momentum > 0 ? arena.slot("momentum_buffer").base : nil
        return { p in kernels.sgd(params.pointer, w + p.offset, g + p.offset, buf.map { $0 + p.offset }, p.count) }
    }
}

/// Adam and AMSGrad with bias correction, fused into `dc_adam_step`.
///
/// `eps_mode` places ε as PyTorch/optax do (`torch`: √v̂ + ε) or as Keras does (`keras`:
/// √v + ε before bias correction, i.e. ε·√(1−β2ᵗ) in PyTorch's terms). In `keras` mode the
/// per-step scalars are also computed the way Keras computes them, so replays of Keras runs
/// agree to float32 rounding (see `kerasParams`).
public final class AdamOptimizer: OptimizerPlugin {
    public let name = "adam"
    public let version = "1.0.0"
    public let kind = PluginKind.optimizer
    public let summary = "Adam with bias correction; AMSGrad option (PyTorch's order of operations)"
    public let hyperParameters: [HyperParameterSpec] = [
        .init("lr", .number(0...Double.infinity, openLower: true), default: .number(1e-3), "base learning rate"),
        .init("beta1", .number(0...1, openUpper: true), default: .number(0.9), "first-moment decay β1"),
        .init("beta2", .number(0...1, openUpper: true), default: .number(0.999), "second-moment decay β2"),
        .init("eps", .number(0...Double.infinity), default: .number(1e-8), "ε in the denominator"),
        .init("amsgrad", .flag, default: .flag(false), "use the running maximum of v (AMSGrad)"),
        .init("eps_mode", .choice(["torch", "keras"]), default: .text("torch"),
              "torch: √v̂ + ε; keras: √v + ε before bias correction"),
    ]

    public init() {}

    public func state(_ hp: HyperValues) -> [StateDeclaration] {
        (hp.flag("amsgrad") ? ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"] : ["exp_avg", "exp_avg_sq"]).map { StateDeclaration($0) }
    }

    public func update(_ hp: HyperValues, context: StepContext, regularization: FusedRegularization,
                       arena: ParameterArena, kernels: KernelPath) -> PieceUpdate {
        let amsgrad = hp.flag("amsgrad")
        let params = Pinned((hp.text("eps_mode") == "keras"
            ? Self.kerasParams(hp, context: context, regularization: regularization)
            : AdamKernelParameters(lr: context.lr, beta1: hp.number("beta1"), beta2: hp.number("beta2"), eps: hp.number("eps"),
                                   amsgrad: amsgrad, step: context.step, regularization: regularization)).kernelParameters)
        let w = arena.params.base, g = arena.grads.base
        let m = arena.slot("exp_avg").base, v = arena.slot("exp_avg_sq").base
        let vmax = amsgrad ? arena.slot("max_exp_avg_sq").base : nil
        return { p in
            kernels.adam(params.pointer, w + p.offset, g + p.offset, m + p.offset, v + p.offset,
                         vmax.map { $0 + p.offset }, p.count)
        }
    }
}

extension AdamOptimizer {
    /// Kernel scalars for Keras's Adam (`keras/src/optimizers/adam.py`, `update_step`):
    ///
    ///     α = lr · √(1 − β2ᵗ) / (1 − β1ᵗ)      float32, βᵗ = power(float32(β), float32(t))
    ///     w ← w − (m·α) / (√v + ε)
    ///
    /// The kernel computes w·keep − (step_size·m) / (√v·inv_bc2_sqrt + eps), so
    /// step_size = α, inv_bc2_sqrt = 1 (an exact multiply) and the raw ε reproduce Keras's
    /// division exactly; only the scalars change, the per-element arithmetic does not.
    ///
    /// Why float32 and `powf`: Keras rounds β2 to float32 *before* the power, so at t = 1
    /// its 1 − β2ᵗ is 1 − 0.99900001 instead of 0.001 (1.3e-5 relative), and one ulp of β2ᵗ
    /// is ~6e-5 of 1 − β2ᵗ. Computing α in double (PyTorch's way) left up to 7.8e-6 of the
    /// tensor's scale between our trajectories and Keras's; this way the remaining difference
    /// is the decoupled decay's w·keep (Keras: w − w·wd·lr) and v's update order, ≤ 1.9e-6
    /// over the fixtures. XLA's CPU f32 `pow`, as Keras calls it eagerly, gives glibc `powf`'s
    /// bits except where βᵗ is subnormal (XLA flushes it to 0), so 1 − βᵗ is the same float
    /// either way (checked for t ≤ 1000, β ∈ {0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999,
    /// 0.9999}); a correctly rounded power is not (it differs at some t for 0.8 and 0.95).
    static func kerasParams(_ hp: HyperValues, context: StepContext, regularization: FusedRegularization) -> AdamKernelParameters {
        let b1 = hp.number("beta1"), b2 = hp.number("beta2")
        let t = Float(context.step)
        let alpha = Float(context.lr) * (1 - powf(Float(b2), t)).squareRoot() / (1 - powf(Float(b1), t))
        // 1 − β as Keras writes it (`1 - self.beta_1`): a Python double rounded to float32 once.
        return AdamKernelParameters(stepSize: alpha, invBC2Sqrt: 1, eps: Float(hp.number("eps")),
                                    oneMinusBeta1: Float(1 - b1), beta2: Float(b2), oneMinusBeta2: Float(1 - b2),
                                    amsgrad: hp.flag("amsgrad"), regularization: regularization)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
