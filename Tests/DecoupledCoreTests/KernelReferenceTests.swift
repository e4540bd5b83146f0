import DecoupledCore
import Testing

/// Hand-worked steps of the scalar reference: numbers chosen so every intermediate is exact
/// in float32, so the expected values below are the true results, not a re-computation.
@Suite struct KernelReferenceTests {
    let scalar = try! KernelPath.named("scalar")

    /// Every coefficient below is a power of two, so keep = 1 − decay is exact.
    func reg(l2: Double = 0, l1: Double = 0, keep: Double = 1) -> FusedRegularization {
        FusedRegularization(l2: l2, l1: l1, decay: 1 - keep)
    }

    func sgd(_ w: [Float], _ g: [Float], lr: Float = 0.25, momentum: Float = 0, dampening: Float = 0,
             nesterov: Bool = false, lrInMomentum: Bool = false, reg r: FusedRegularization,
             buffer: inout [Float], first: Bool) -> [Float] {
        var w = w
        let hp = SGDKernelParameters(lr: lr, momentum: momentum, dampening: dampening, nesterov: nesterov,
                                     firstStep: first, lrInMomentum: lrInMomentum, regularization: r)
        _ = w.withUnsafeMutableBufferPointer { wp in
            buffer.withUnsafeMutableBufferPointer { bp in
                scalar.sgd(hp, wp.baseAddress!, g, bp.baseAddress!, wp.count)
            }
        }
        return w
    }

    @Test func plainSGDWithEachRegularizer() {
        var b: [Float] = [0]
        // w = 2, g = 1, lr = 0.25
        #expect(sgd([2], [1], reg: reg(), buffer: &b, first: true) == [1.75])
        // coupled L2, convention half, λ = 0.5: g' = 1 + 0.5·2 = 2, w = 2 − 0.25·2
        #expect(sgd([2], [1], reg: reg(l2: 0.5), buffer: &b, first: true) == [1.5])
        // coupled L2, convention full, λ = 0.5 → coefficient 2λ = 1: g' = 3
        #expect(sgd([2], [1], reg: reg(l2: 1.0), buffer: &b, first: true) == [1.25])
        // coupled L1, λ = 0.5: g' = 1 + 0.5·sign(2) = 1.5; and for a negative weight
        #expect(sgd([2], [1], reg: reg(l1: 0.5), buffer: &b, first: true) == [1.625])
        #expect(sgd([-2], [1], reg: reg(l1: 0.5), buffer: &b, first: true) == [-2.125])
        // L1 on an exact zero: sign(0) = 0, so only the data gradient moves it
        #expect(sgd([0], [1], reg: reg(l1: 0.5), buffer: &b, first: true) == [-0.25])
        // decoupled L2, lr-scaled: keep = 1 − 0.25·0.5 = 0.875; w = 2·0.875 − 0.25·1
        #expect(sgd([2], [1], reg: reg(keep: 0.875), buffer: &b, first: true) == [1.5])
    }

    @Test func momentumDampeningNesterovAndLrInMomentum() {
        // PyTorch form, μ = 0.5: step 1 buf = g = 1, w = 1.75; step 2 buf = 0.5 + 1 = 1.5, w = 1.375
        var b: [Float] = [0]
        var w = sgd([2], [1], momentum: 0.5, reg: reg(), buffer: &b, first: true)
        #expect(w == [1.75] && b == [1])
        w = sgd(w, [1], momentum: 0.5, reg: reg(), buffer: &b, first: false)
        #expect(w == [1.375] && b == [1.5])
        // dampening 0.5: the first step ignores it (buf = g), then buf = 0.5·1 + 0.5·1 = 1
        b = [0]
        w = sgd([2], [1], momentum: 0.5, dampening: 0.5, reg: reg(), buffer: &b, first: true)
        w = sgd(w, [1], momentum: 0.5, dampening: 0.5, reg: reg(), buffer: &b, first: false)
        #expect(w == [1.5] && b == [1])
        // Nesterov: d = g + μ·buf: step 1 d = 1.5 → 1.625; step 2 buf = 1.5, d = 1.75 → 1.1875
        b = [0]
        w = sgd([2], [1], momentum: 0.5, nesterov: true, reg: reg(), buffer: &b, first: true)
        #expect(w == [1.625])
        w = sgd(w, [1], momentum: 0.5, nesterov: true, reg: reg(), buffer: &b, first: false)
        #expect(w == [1.1875])
        // Caffe/Keras/paper form: buf = μ·buf + lr·g from a zero buffer, w −= buf
        b = [0]
        w = sgd([2], [1], momentum: 0.5, lrInMomentum: true, reg: reg(), buffer: &b, first: false)
        #expect(w == [1.75] && b == [0.25])
        w = sgd(w, [1], momentum: 0.5, lrInMomentum: true, reg: reg(), buffer: &b, first: false)
        #expect(w == [1.375] && b == [0.375])
        // Momentum + coupled L2 sees the penalty inside the buffer; decoupled decay does not.
        b = [0]
        w = sgd([2], [1], momentum: 0.5, reg: reg(l2: 0.5), buffer: &b, first: true)
        #expect(w == [1.5] && b == [2])
        b = [0]
        w = sgd([2], [1], momentum: 0.5, reg: reg(keep: 0.875), buffer: &b, first: true)
        #expect(w == [1.5] && b == [1])
    }

    struct AdamState { var w: [Float]; var m: [Float] = [0]; var v: [Float] = [0]; var vmax: [Float] = [0] }

    /// One Adam step with β1 = 0.5, β2 = 0.75, ε = 0 (powers of two keep things exact).
    func adam(_ s: inout AdamState, _ g: [Float], t: Int, lr: Double = 0.25, amsgrad: Bool = false,
              reg r: FusedRegularization) {
        let hp = AdamKernelParameters(lr: lr, beta1: 0.5, beta2: 0.75, eps: 0, amsgrad: amsgrad, step: t, regularization: r)
        _ = s.w.withUnsafeMutableBufferPointer { w in
            s.m.withUnsafeMutableBufferPointer { m in
                s.v.withUnsafeMutableBufferPointer { v in
                    s.vmax.withUnsafeMutableBufferPointer { x in
                        scalar.adam(hp, w.baseAddress!, g, m.baseAddress!, v.baseAddress!, x.baseAddress!, w.count)
                    }
                }
            }
        }
    }

    @Test func adamFirstAndSecondStep() {
        // t = 1, g = 2: m = 0.5·2 = 1, v = 0.25·4 = 1, step = lr/(1−β1) = 0.5, √v̂ = 1·2 = 2
        // → w = 1 − 0.5·1/2 = 0.75 (Adam's first step is lr·sign(g))
        var s = AdamState(w: [1])
        adam(&s, [2], t: 1, reg: reg())
        #expect(s.w == [0.75] && s.m == [1] && s.v == [1])
        // t = 2, g = −2: m = 1 + 0.5·(−3) = −0.5, v = 0.75 + 1 = 1.75,
        // step = 0.25/0.75 = 1/3, √v̂ = √1.75/√0.4375 = 2 → w = 0.75 + (1/3)(0.5)/2 = 5/6
        adam(&s, [-2], t: 2, reg: reg())
        #expect(s.m == [-0.5] && s.v == [1.75])
        #expect(abs(s.w[0] - 5.0 / 6.0) <= 1e-6 * 5.0 / 6.0)
    }

    @Test func adamWithEachRegularizer() {
        // coupled L2 half, λ = 0.5, w = 1, g = 1.5 → g' = 2, same step as above
        var s = AdamState(w: [1])
        adam(&s, [1.5], t: 1, reg: reg(l2: 0.5))
        #expect(s.w == [0.75] && s.m == [1] && s.v == [1])
        // coupled L2 full, λ = 0.25 → coefficient 0.5: the same g' = 2
        s = AdamState(w: [1])
        adam(&s, [1.5], t: 1, reg: reg(l2: 0.5))
        #expect(s.w == [0.75])
        // coupled L1, λ = 0.5, w = −1, g = 2.5 → g' = 2: w = −1 − 0.25
        s = AdamState(w: [-1])
        adam(&s, [2.5], t: 1, reg: reg(l1: 0.5))
        #expect(s.w == [-1.25] && s.m == [1])
        // AdamW, lr-scaled: keep = 1 − 0.25·0.5 = 0.875 → w = 0.875 − 0.25; moments never see it
        s = AdamState(w: [1])
        adam(&s, [2], t: 1, reg: reg(keep: 0.875))
        #expect(s.w == [0.625] && s.m == [1] && s.v == [1])
        // schedule-scaled (η = 0.5, λ = 0.5 → keep 0.75) and constant (λ = 0.125 → keep 0.875)
        s = AdamState(w: [1])
        adam(&s, [2], t: 1, reg: reg(keep: 0.75))
        #expect(s.w == [0.5])
    }

    @Test func amsgradKeepsTheLargestSecondMoment() {
        // t = 1, g = 2: v = vmax = 1. t = 2, g = 0: m = 0.5, v = 0.75 < vmax = 1,
        // step = 1/3, √vmax/√0.4375 = 1/0.6614… → w = 0.75 − (1/3)(0.5)·√0.4375
        var s = AdamState(w: [1])
        adam(&s, [2], t: 1, amsgrad: true, reg: reg())
        #expect(s.vmax == [1])
        adam(&s, [0], t: 2, amsgrad: true, reg: reg())
        #expect(s.v == [0.75] && s.vmax == [1])
        let expected = 0.75 - (1.0 / 3.0) * 0.5 * 0.4375.squareRoot()
        #expect(abs(Double(s.w[0]) - expected) <= 1e-6 * expected)
        // without AMSGrad the denominator uses v = 0.75
        var p = AdamState(w: [1])
        adam(&p, [2], t: 1, reg: reg())
        adam(&p, [0], t: 2, reg: reg())
        let plain = 0.75 - (1.0 / 3.0) * 0.5 / (0.75 / 0.4375).squareRoot()
        #expect(abs(Double(p.w[0]) - plain) <= 1e-6 * plain)
    }

    @Test func statisticsCountNonFiniteGradientsAndZeros() {
        var w: [Float] = [1, 2, 3, 0.25, 5, 6, 7, 8, 9]
        let g: [Float] = [.nan, .infinity, -.infinity, 1, 0, 0, 0, 0, 0]
        var b = [Float](repeating: 0, count: w.count)
        for path in KernelPath.runnable {
            var ww = w
            let hp = SGDKernelParameters(lr: 0.25, regularization: reg())
            let stats = ww.withUnsafeMutableBufferPointer { wp in
                path.sgd(hp, wp.baseAddress!, g, &b, wp.count)
            }
            #expect(stats.nonfiniteGradients == 3, "\(path)")
            #expect(stats.zeroParameters == 1, "\(path)")  // 0.25 − 0.25·1 = 0
            #expect(ww[3] == 0)
        }
        w[0] = 0
    }
}
