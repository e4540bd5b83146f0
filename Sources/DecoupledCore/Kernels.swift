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

    /// SGD step over `n` elements (`dc_sgd_params`); `buffer` may be nil when momentum is 0.
    @inline(__always)
    public func sgd(_ hp: UnsafePointer<dc_sgd_params>, _ w: UnsafeMutablePointer<Float>,
                    _ g: UnsafePointer<Float>, _ buffer: UnsafeMutablePointer<Float>?,
                    _ n: Int) -> StepStatistics {
        StepStatistics(table.pointee.sgd(hp, w, g, buffer, n))
    }

    /// Adam step over `n` elements (`dc_adam_params`); `vmax` may be nil unless AMSGrad.
    @inline(__always)
    public func adam(_ hp: UnsafePointer<dc_adam_params>, _ w: UnsafeMutablePointer<Float>,
                     _ g: UnsafePointer<Float>, _ m: UnsafeMutablePointer<Float>,
                     _ v: UnsafeMutablePointer<Float>, _ vmax: UnsafeMutablePointer<Float>?,
                     _ n: Int) -> StepStatistics {
        StepStatistics(table.pointee.adam(hp, w, g, m, v, vmax, n))
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

extension dc_adam_params {
    /// Kernel parameters for Adam step `t` (from 1): bias corrections computed in double and
    /// rounded once, as PyTorch computes them in Python floats.
    public init(lr: Double, beta1: Double, beta2: Double, eps: Double, amsgrad: Bool, step t: Int,
                reg: dc_reg_terms) {
        let bc1 = 1 - pow(beta1, Double(t)), bc2 = 1 - pow(beta2, Double(t))
        self.init(step_size: Float(lr / bc1), inv_bc2_sqrt: Float(1 / bc2.squareRoot()), eps: Float(eps),
                  one_minus_beta1: Float(1 - beta1), beta2: Float(beta2), one_minus_beta2: Float(1 - beta2),
                  amsgrad: amsgrad ? 1 : 0, reg: reg)
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
