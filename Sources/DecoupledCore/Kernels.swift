import CDecoupledKernels
import Foundation

/// One instruction-set path of the fused update kernels (a `dc_kernel_table` from
/// `CDecoupledKernels`): the scalar reference, AVX2, AVX-512 or NEON.
///
/// Paths are chosen at run time from the CPU's features (`dc_kernels_best`) and can be
/// forced with the environment variable `DECOUPLED_KERNELS` so tests cover every path.
public struct KernelPath: CustomStringConvertible, @unchecked Sendable {
    /// The environment variable that forces a path: `scalar`, `avx2`, `avx512`, `neon` or `auto`.
    public static let environmentVariable = "DECOUPLED_KERNELS"

    let table: UnsafePointer<dc_kernel_table>

    public var name: String { String(cString: table.pointee.name) }
    /// Float lanes per vector; 1 for the scalar reference.
    public var vectorWidth: Int { Int(table.pointee.vector_width) }
    public var description: String { name }

    /// The path called `name`; wraps `dc_kernels_named`.
    public static func named(_ name: String) throws -> KernelPath {
        guard let t = dc_kernels_named(name) else {
            let compiled = compiledNames
            if compiled.contains(name) {
                throw KernelError.unsupportedByCPU(name, runnable: runnable.map(\.name))
            }
            throw KernelError.unknown(name, compiled: compiled)
        }
        return KernelPath(table: t)
    }

    /// The fastest path this CPU runs; wraps `dc_kernels_best`.
    public static var best: KernelPath { KernelPath(table: dc_kernels_best()) }

    /// Every path compiled into this build (`dc_kernels_compiled`), runnable here or not.
    public static var compiledNames: [String] {
        var names: [String] = []
        var p = dc_kernels_compiled()!
        while let n = p.pointee {
            names.append(String(cString: n))
            p += 1
        }
        return names
    }

    /// The paths this CPU can run, fastest first.
    public static var runnable: [KernelPath] {
        compiledNames.compactMap { dc_kernels_named($0).map(KernelPath.init(table:)) }
    }

    /// The path `DECOUPLED_KERNELS` asks for, or the best one when it is unset or `auto`.
    public static func fromEnvironment(_ environment: [String: String]) throws -> KernelPath {
        guard let requested = environment[environmentVariable], !requested.isEmpty,
              requested != "auto" else { return best }
        do {
            return try named(requested)
        } catch let e as KernelError {
            throw KernelError.environment(environmentVariable, e)
        }
    }

    /// SGD step over `n` elements; `buffer` may be nil when momentum is 0.
    @inline(__always)
    public func sgd(_ hp: SGDKernelParameters, _ w: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>,
                    _ buffer: UnsafeMutablePointer<Float>?, _ n: Int) -> StepStatistics {
        var c = hp.kernelParameters
        return sgd(&c, w, g, buffer, n)
    }

    /// Adam step over `n` elements; `vmax` may be nil unless AMSGrad.
    @inline(__always)
    public func adam(_ hp: AdamKernelParameters, _ w: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>,
                     _ m: UnsafeMutablePointer<Float>, _ v: UnsafeMutablePointer<Float>,
                     _ vmax: UnsafeMutablePointer<Float>?, _ n: Int) -> StepStatistics {
        var c = hp.kernelParameters
        return adam(&c, w, g, m, v, vmax, n)
    }

    /// The C calls, for the engine's per-piece closures: they convert the parameters once
    /// per step and pin them (`Pinned`) instead of once per piece.
    @inline(__always)
    func sgd(_ hp: UnsafePointer<dc_sgd_params>, _ w: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>,
             _ buffer: UnsafeMutablePointer<Float>?, _ n: Int) -> StepStatistics {
        StepStatistics(table.pointee.sgd(hp, w, g, buffer, n))
    }

    @inline(__always)
    func adam(_ hp: UnsafePointer<dc_adam_params>, _ w: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>,
              _ m: UnsafeMutablePointer<Float>, _ v: UnsafeMutablePointer<Float>,
              _ vmax: UnsafeMutablePointer<Float>?, _ n: Int) -> StepStatistics {
        StepStatistics(table.pointee.adam(hp, w, g, m, v, vmax, n))
    }

    /// The gradient an external optimizer's direction sees: out = (g + l2·w) + l1·sign(w).
    public func coupled(_ reg: FusedRegularization, _ w: UnsafePointer<Float>, _ g: UnsafePointer<Float>,
                        _ out: UnsafeMutablePointer<Float>, _ n: Int) {
        var terms = reg.kernelTerms
        coupled(&terms, w, g, out, n)
    }

    /// After an external optimizer's direction d: w ← keep·w − d (keep from `reg`'s decoupled
    /// decay), with the statistics of g as read and w as written.
    public func applyDirection(_ reg: FusedRegularization, _ w: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>,
                               _ d: UnsafePointer<Float>, _ n: Int) -> StepStatistics {
        var terms = reg.kernelTerms
        return applyDirection(&terms, w, g, d, n)
    }

    @inline(__always)
    func coupled(_ reg: UnsafePointer<dc_reg_terms>, _ w: UnsafePointer<Float>, _ g: UnsafePointer<Float>,
                 _ out: UnsafeMutablePointer<Float>, _ n: Int) {
        table.pointee.coupled(reg, w, g, out, n)
    }

    @inline(__always)
    func applyDirection(_ reg: UnsafePointer<dc_reg_terms>, _ w: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>,
                        _ d: UnsafePointer<Float>, _ n: Int) -> StepStatistics {
        StepStatistics(table.pointee.apply_direction(reg, w, g, d, n))
    }

    /// Most state arrays `probe` moves besides w and g (`DC_PROBE_MAX_STATES`).
    public static let probeMaxStates = Int(DC_PROBE_MAX_STATES)

    /// The bandwidth probe: reads g, w and `states`, writes w and `states` back with scale·g
    /// added, no other math — 12 + 8·states.count bytes per element, an optimizer's traffic
    /// without its arithmetic. Scale 0 leaves the data unchanged (for a probe that alternates
    /// with steps on the same arrays). `states` holds at most `probeMaxStates` arrays of `n` floats.
    @inline(__always)
    public func probe(scale: Float = 1, _ w: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>,
                      _ states: UnsafeBufferPointer<UnsafeMutablePointer<Float>?>, _ n: Int) {
        precondition(states.count <= KernelPath.probeMaxStates, "the probe moves at most \(KernelPath.probeMaxStates) state arrays")
        table.pointee.probe(scale, w, g, states.baseAddress, Int32(states.count), n)
    }
}

public enum KernelError: Error, CustomStringConvertible {
    case unknown(String, compiled: [String])
    case unsupportedByCPU(String, runnable: [String])
    indirect case environment(String, KernelError)

    public var description: String {
        switch self {
        case .unknown(let n, let compiled):
            return "unknown kernel path '\(n)'; this build has: \(compiled.joined(separator: ", ")) (or 'auto')"
        case .unsupportedByCPU(let n, let runnable):
            return "kernel path '\(n)' is compiled in but this CPU cannot run it; runnable here: \(runnable.joined(separator: ", "))"
        case .environment(let variable, let inner):
            return "\(variable): \(inner.description)"
        }
    }
}

/// The scalars of one fused SGD step (`dc_sgd_step`; docs/kernels.md has its arithmetic).
public struct SGDKernelParameters: Equatable, Sendable {
    /// lr_t = lr · η_t · group multiplier.
    public var lr: Float
    /// μ; 0 = plain SGD, no buffer is read or written.
    public var momentum: Float
    /// d: buf ← μ·buf + (1 − d)·g.
    public var dampening: Float
    /// The direction is g + μ·buf instead of buf.
    public var nesterov: Bool
    /// PyTorch's first step: buf ← g (no dampening).
    public var firstStep: Bool
    /// Caffe/Keras/paper form: buf ← μ·buf + lr·g, w ← w − buf.
    public var lrInMomentum: Bool
    /// The group's coupled terms and decoupled decay.
    public var regularization: FusedRegularization

    public init(lr: Float, momentum: Float = 0, dampening: Float = 0, nesterov: Bool = false, firstStep: Bool = false,
                lrInMomentum: Bool = false, regularization: FusedRegularization = FusedRegularization()) {
        self.lr = lr
        self.momentum = momentum
        self.dampening = dampening
        self.nesterov = nesterov
        self.firstStep = firstStep
        self.lrInMomentum = lrInMomentum
        self.regularization = regularization
    }

    var kernelParameters: dc_sgd_params {
        dc_sgd_params(lr: lr, momentum: momentum, dampening: dampening, nesterov: nesterov ? 1 : 0,
                      first_step: firstStep ? 1 : 0, lr_in_momentum: lrInMomentum ? 1 : 0, reg: regularization.kernelTerms)
    }
}

/// The scalars of one fused Adam / AMSGrad step (`dc_adam_step`): the kernel computes
/// w ← keep·w − stepSize·m / (√v·invBC2Sqrt + eps) after the moment updates.
public struct AdamKernelParameters: Equatable, Sendable {
    /// lr_t / (1 − β1ᵗ).
    public var stepSize: Float
    /// 1 / √(1 − β2ᵗ).
    public var invBC2Sqrt: Float
    /// ε added to √v · invBC2Sqrt.
    public var eps: Float
    public var oneMinusBeta1: Float
    public var beta2: Float
    public var oneMinusBeta2: Float
    /// Keep vmax ← max(vmax, v) and use it in the denominator.
    public var amsgrad: Bool
    /// The group's coupled terms and decoupled decay.
    public var regularization: FusedRegularization

    /// The scalars exactly as given (e.g. Keras's, `AdamOptimizer.kerasParams`).
    public init(stepSize: Float, invBC2Sqrt: Float, eps: Float, oneMinusBeta1: Float, beta2: Float, oneMinusBeta2: Float,
                amsgrad: Bool, regularization: FusedRegularization) {
        self.stepSize = stepSize
        self.invBC2Sqrt = invBC2Sqrt
        self.eps = eps
        self.oneMinusBeta1 = oneMinusBeta1
        self.beta2 = beta2
        self.oneMinusBeta2 = oneMinusBeta2
        self.amsgrad = amsgrad
        self.regularization = regularization
    }

    /// Adam step `t` (from 1): bias corrections computed in double and rounded once, as
    /// PyTorch computes them in Python floats.
    public init(lr: Double, beta1: Double, beta2: Double, eps: Double, amsgrad: Bool, step t: Int,
                regularization: FusedRegularization = FusedRegularization()) {
        let bc1 = 1 - pow(beta1, Double(t)), bc2 = 1 - pow(beta2, Double(t))
        self.init(stepSize: Float(lr / bc1), invBC2Sqrt: Float(1 / bc2.squareRoot()), eps: Float(eps),
                  oneMinusBeta1: Float(1 - beta1), beta2: Float(beta2), oneMinusBeta2: Float(1 - beta2),
                  amsgrad: amsgrad, regularization: regularization)
    }

    var kernelParameters: dc_adam_params {
        dc_adam_params(step_size: stepSize, inv_bc2_sqrt: invBC2Sqrt, eps: eps, one_minus_beta1: oneMinusBeta1, beta2: beta2,
                       one_minus_beta2: oneMinusBeta2, amsgrad: amsgrad ? 1 : 0, reg: regularization.kernelTerms)
    }
}

extension StepStatistics {
    /// A fused kernel's statistics (the C type stays inside DecoupledCore).
    @inline(__always)
    init(_ s: dc_step_stats) {
        self.init(nonfiniteGradients: s.nonfinite_grads, zeroParameters: s.zero_params, parameterSumSquares: s.param_sumsq)
    }
}

extension FusedRegularization {
    /// The kernels' view: coefficients in float, keep = 1 − decay computed in double.
    var kernelTerms: dc_reg_terms {
        let t = elementTerms
        return dc_reg_terms(l2: t.l2, l1: t.l1, decay_keep: t.keep)
    }
}

/// A value at a stable heap address, for C calls made concurrently from escaping closures
/// (passing `&captured` from several threads would trip Swift's exclusivity checks).
public final class Pinned<T>: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<T>
    public init(_ value: T) {
        pointer = .allocate(capacity: 1)
        pointer.initialize(to: value)
    }
    deinit {
        pointer.deinitialize(count: 1)
        pointer.deallocate()
    }
}

/// An array at a stable heap address (e.g. state pointers read by every worker), kept alive
/// by the closures that read it.
final class PinnedArray<T>: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<T>
    let count: Int
    init(_ values: [T]) {
        count = values.count
        pointer = .allocate(capacity: max(1, values.count))
        pointer.initialize(from: values, count: values.count)
    }
    deinit {
        pointer.deinitialize(count: count)
        pointer.deallocate()
    }
}
