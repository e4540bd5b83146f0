import DecoupledCore
import Testing

/// Every SIMD path against the scalar reference, on inputs that stress IEEE corner cases.
@Suite struct KernelPathTests {
    /// Inputs mixing normal values with zeros, signed zeros, denormals, huge and tiny values.
    static func nastyValues(_ n: Int, seed: UInt64, scale: Float) -> [Float] {
        var rng = SplitMix(seed)
        let specials: [Float] = [0, -0.0, 1e-40, -1e-40, Float.leastNonzeroMagnitude, 1e-30, -1e-30,
                                 1e30, -1e30, 3e38, 1, -1]
        return (0..<n).map { _ in
            let u = rng.next()
            if u % 5 == 0 { return specials[Int(u >> 8) % specials.count] }
            return (Float(u >> 40) / Float(1 << 24) - 0.5) * scale
        }
    }

    struct SplitMix {
        var s: UInt64
        init(_ s: UInt64) { self.s = s }
        mutating func next() -> UInt64 {
            s &+= 0x9e37_79b9_7f4a_7c15
            var z = s
            z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
            z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
            return z ^ (z >> 31)
        }
    }

    /// Relative 1e-6 (an ulp-scale tolerance for float32), NaN equal to NaN.
    static func close(_ a: Float, _ b: Float) -> Bool {
        if a.isNaN || b.isNaN { return a.isNaN && b.isNaN }
        if a == b { return true }
        return abs(a - b) <= 1e-6 * max(abs(a), abs(b))
    }

    struct Arrays: Equatable { var w, m, v, x: [Float] }

    static func runAdam(_ path: KernelPath, _ a: Arrays, _ g: [Float], amsgrad: Bool, reg: FusedRegularization,
                        steps: Int) -> (Arrays, StepStatistics) {
        var a = a
        var stats = StepStatistics.zero
        for t in 1...steps {
            let hp = AdamKernelParameters(lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, amsgrad: amsgrad, step: t, regularization: reg)
            stats = a.w.withUnsafeMutableBufferPointer { w in
                a.m.withUnsafeMutableBufferPointer { m in
                    a.v.withUnsafeMutableBufferPointer { v in
                        a.x.withUnsafeMutableBufferPointer { x in
                            path.adam(hp, w.baseAddress!, g, m.baseAddress!, v.baseAddress!, x.baseAddress!, w.count)
                        }
                    }
                }
            }
        }
        return (a, stats)
    }

    static func runSGD(_ path: KernelPath, _ w: [Float], _ g: [Float], momentum: Float, nesterov: Bool,
                       lrIn: Bool, reg: FusedRegularization, steps: Int) -> ([Float], [Float], StepStatistics) {
        var w = w
        var b = [Float](repeating: 0, count: w.count)
        var stats = StepStatistics.zero
        for t in 1...steps {
            let hp = SGDKernelParameters(lr: 0.01, momentum: momentum, dampening: 0.1, nesterov: nesterov,
                                         firstStep: t == 1 && !lrIn, lrInMomentum: lrIn, regularization: reg)
            stats = w.withUnsafeMutableBufferPointer { wp in
                b.withUnsafeMutableBufferPointer { bp in path.sgd(hp, wp.baseAddress!, g, bp.baseAddress!, wp.count) }
            }
        }
        return (w, b, stats)
    }

    static let regs: [FusedRegularization] = [
        FusedRegularization(),
        FusedRegularization(l2: 1e-2),
        FusedRegularization(l1: 1e-3),
        FusedRegularization(l2: 5e-3, l1: 1e-3, decay: 1e-4),
    ]

    /// Sizes around vector widths and a size with a long body and a tail.
    static let sizes = [1, 3, 8, 15, 16, 17, 31, 33, 1000, 4099]

    @Test(arguments: KernelPath.runnable.filter { $0.name != "scalar" }.map(\.name))
    func adamMatchesScalarReference(_ name: String) throws {
        let path = try KernelPath.named(name), scalar = try KernelPath.named("scalar")
        for (ri, reg) in Self.regs.enumerated() {
            for n in Self.sizes {
                for amsgrad in [false, true] {
                    let seed = UInt64(n * 31 + ri)
                    let a = Arrays(w: Self.nastyValues(n, seed: seed, scale: 4),
                                   m: Self.nastyValues(n, seed: seed + 1, scale: 1e-2),
                                   v: Self.nastyValues(n, seed: seed + 2, scale: 1e-3).map(abs),
                                   x: Self.nastyValues(n, seed: seed + 3, scale: 1e-3).map(abs))
                    let g = Self.nastyValues(n, seed: seed + 4, scale: 2)
                    let (ref, rs) = Self.runAdam(scalar, a, g, amsgrad: amsgrad, reg: reg, steps: 3)
                    let (got, gs) = Self.runAdam(path, a, g, amsgrad: amsgrad, reg: reg, steps: 3)
                    for (r, o) in [(ref.w, got.w), (ref.m, got.m), (ref.v, got.v), (ref.x, got.x)] {
                        for i in 0..<n where !Self.close(r[i], o[i]) {
                            Issue.record("\(name) adam n=\(n) reg#\(ri) amsgrad=\(amsgrad) [\(i)]: \(o[i]) vs scalar \(r[i])")
                            return
                        }
                    }
                    // Same operations in the same order: the paths are bit-identical, not just close.
                    #expect(ref.w.map(\.bitPattern) == got.w.map(\.bitPattern), "\(name) n=\(n)")
                    #expect(rs.nonfiniteGradients == gs.nonfiniteGradients && rs.zeroParameters == gs.zeroParameters)
                    // Σw² is summed in another order per path: close, and NaN/Inf alike.
                    let (sa, sb) = (rs.parameterSumSquares, gs.parameterSumSquares)
                    #expect(sa == sb || (sa.isNaN && sb.isNaN) || abs(sa - sb) <= 1e-12 * abs(sa), "\(name): Σw² \(sb) vs \(sa)")
                }
            }
        }
    }

    @Test(arguments: KernelPath.runnable.filter { $0.name != "scalar" }.map(\.name))
    func sgdMatchesScalarReference(_ name: String) throws {
        let path = try KernelPath.named(name), scalar = try KernelPath.named("scalar")
        for (ri, reg) in Self.regs.enumerated() {
            for n in Self.sizes {
                for (momentum, nesterov, lrIn) in [(Float(0), false, false), (0.9, false, false),
                                                   (0.9, true, false), (0.9, false, true), (0.9, true, true)] {
                    let w = Self.nastyValues(n, seed: UInt64(n + 7 * ri), scale: 4)
                    let g = Self.nastyValues(n, seed: UInt64(n + 7 * ri + 1), scale: 2)
                    let (rw, rb, rs) = Self.runSGD(scalar, w, g, momentum: momentum, nesterov: nesterov,
                                                   lrIn: lrIn, reg: reg, steps: 3)
                    let (ow, ob, os) = Self.runSGD(path, w, g, momentum: momentum, nesterov: nesterov,
                                                   lrIn: lrIn, reg: reg, steps: 3)
                    for i in 0..<n where !Self.close(rw[i], ow[i]) || !Self.close(rb[i], ob[i]) {
                        Issue.record("\(name) sgd n=\(n) μ=\(momentum) nesterov=\(nesterov) lrIn=\(lrIn) [\(i)]: \(ow[i]) vs \(rw[i])")
                        return
                    }
                    #expect(rw.map(\.bitPattern) == ow.map(\.bitPattern))
                    #expect(rs.nonfiniteGradients == os.nonfiniteGradients && rs.zeroParameters == os.zeroParameters)
                }
            }
        }
    }

    /// The host's passes around an external optimizer's direction (coupled gradient before,
    /// w ← keep·w − d and the statistics after) are the scalar reference's, bit for bit.
    @Test(arguments: KernelPath.runnable.filter { $0.name != "scalar" }.map(\.name))
    func externalDirectionPassesMatchScalarReference(_ name: String) throws {
        let path = try KernelPath.named(name), scalar = try KernelPath.named("scalar")
        for (ri, reg) in Self.regs.enumerated() {
            for n in Self.sizes {
                let seed = UInt64(n * 13 + ri)
                let w = Self.nastyValues(n, seed: seed, scale: 4), g = Self.nastyValues(n, seed: seed + 1, scale: 2)
                let d = Self.nastyValues(n, seed: seed + 2, scale: 1e-2)
                var outs: [[Float]] = [], weights: [[Float]] = [], stats: [StepStatistics] = []
                for p in [scalar, path] {
                    var out = [Float](repeating: .nan, count: n), wp = w
                    p.coupled(reg, w, g, &out, n)
                    stats.append(p.applyDirection(reg, &wp, g, d, n))
                    outs.append(out)
                    weights.append(wp)
                }
                #expect(outs[0].map(\.bitPattern) == outs[1].map(\.bitPattern), "\(name) coupled n=\(n) reg#\(ri)")
                #expect(weights[0].map(\.bitPattern) == weights[1].map(\.bitPattern), "\(name) apply n=\(n) reg#\(ri)")
                #expect(stats[0].nonfiniteGradients == stats[1].nonfiniteGradients && stats[0].zeroParameters == stats[1].zeroParameters)
                let (sa, sb) = (stats[0].parameterSumSquares, stats[1].parameterSumSquares)
                #expect(sa == sb || (sa.isNaN && sb.isNaN) || abs(sa - sb) <= 1e-12 * abs(sa), "\(name): Σw² \(sb) vs \(sa)")
                // The scalar reference is the definition: (g + l2·w) + l1·sign(w), then keep·w − d.
                let (l2, l1, keep) = reg.elementTerms
                func same(_ a: Float, _ b: Float) -> Bool { a.bitPattern == b.bitPattern || (a.isNaN && b.isNaN) }
                for i in 0..<n {
                    let sign: Float = w[i] > 0 ? 1 : (w[i] < 0 ? -1 : 0)
                    let c = (g[i] + l2 * w[i]) + l1 * sign, w1 = w[i] * keep - d[i]
                    if !same(c, outs[0][i]) || !same(w1, weights[0][i]) {
                        Issue.record("scalar n=\(n) reg#\(ri) [\(i)]: coupled \(outs[0][i]) vs \(c), w \(weights[0][i]) vs \(w1)")
                        break
                    }
                }
            }
        }
    }

    /// The probe moves exactly the traffic it is asked for: g is added to w and to the first
    /// `k` state arrays (tails included), and any further array is neither read into nor written.
    @Test(arguments: KernelPath.runnable.map(\.name))
    func probeMovesTheRequestedStateArrays(_ name: String) throws {
        let path = try KernelPath.named(name)
        for n in [1, 15, 16, 17, 100] {
            for k in 0...KernelPath.probeMaxStates {
                let g = Self.nastyValues(n, seed: UInt64(n * 5 + k), scale: 2)
                let w0 = (0..<n).map { Float($0) * 0.5 }
                var w = w0
                let starts = (0..<KernelPath.probeMaxStates).map { j in (0..<n).map { Float($0 + 1000 * (j + 1)) } }
                let states = starts.map { s -> UnsafeMutablePointer<Float> in
                    let p = UnsafeMutablePointer<Float>.allocate(capacity: n)
                    p.initialize(from: s, count: n)
                    return p
                }
                defer { states.forEach { $0.deallocate() } }
                let passed: [UnsafeMutablePointer<Float>?] = Array(states.prefix(k))
                w.withUnsafeMutableBufferPointer { wp in
                    passed.withUnsafeBufferPointer { sp in path.probe(wp.baseAddress!, g, sp, n) }
                }
                #expect(w == zip(w0, g).map { $0 + $1 }, "\(name) n=\(n) k=\(k): w")
                for j in 0..<KernelPath.probeMaxStates {
                    let expected = j < k ? zip(starts[j], g).map { $0 + $1 } : starts[j]
                    #expect(Array(UnsafeBufferPointer(start: states[j], count: n)) == expected, "\(name) n=\(n) k=\(k): state \(j)")
                }
            }
        }
    }

    @Test func environmentVariableForcesAPath() throws {
        #expect(try KernelPath.fromEnvironment(["DECOUPLED_KERNELS": "scalar"]).name == "scalar")
        #expect(try KernelPath.fromEnvironment([:]).name == KernelPath.best.name)
        #expect(try KernelPath.fromEnvironment(["DECOUPLED_KERNELS": "auto"]).name == KernelPath.best.name)
        do {
            _ = try KernelPath.fromEnvironment(["DECOUPLED_KERNELS": "sse9"])
            Issue.record("an unknown path must be refused")
        } catch {
            let text = String(describing: error)
            #expect(text.contains("DECOUPLED_KERNELS") && text.contains("sse9") && text.contains("scalar"))
        }
        #expect(KernelPath.runnable.last?.name == "scalar")
    }
}
