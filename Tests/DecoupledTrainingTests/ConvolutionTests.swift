import DecoupledRandom
import Testing
@testable import DecoupledTraining

/// The oneDNN convolution against a direct convolution written out as the definition (in
/// Double), for partitions of one sample, partitions that do not divide the batch, and the whole
/// batch as one partition; with strides and uneven padding, so every border is exercised.
@Suite struct ConvolutionTests {
    struct Case {
        var name: String
        var inChannels: Int, filters: Int
        var window: Window2D
    }

    static let cases: [Case] = [
        Case(name: "3×3 same", inChannels: 2, filters: 3,
             window: Window2D(kernel: (3, 3), stride: (1, 1), padTop: 1, padBottom: 1, padLeft: 1, padRight: 1, height: 7, width: 6)),
        Case(name: "3×2 stride 2, uneven padding", inChannels: 2, filters: 2,
             window: Window2D(kernel: (3, 2), stride: (2, 2), padTop: 1, padBottom: 0, padLeft: 0, padRight: 1, height: 7, width: 6)),
        Case(name: "5×5 padding 2 wider than the image", inChannels: 1, filters: 2,
             window: Window2D(kernel: (5, 5), stride: (1, 3), padTop: 2, padBottom: 2, padLeft: 2, padRight: 2, height: 3, width: 4)),
    ]

    /// y[s, o, oy, ox] = b[o] + Σ w[o, c, i, j]·x[s, c, oy·sh − padTop + i, ox·sw − padLeft + j], and
    /// its gradients for the upstream gradient dy.
    static func direct(_ c: Case, batch: Int, x: [Float], w: [Float], b: [Float], dy: [Float])
        -> (y: [Double], dw: [Double], db: [Double], dx: [Double]) {
        let win = c.window, oh = win.outHeight, ow = win.outWidth, kh = win.kernel.h, kw = win.kernel.w
        let nIn = c.inChannels * win.height * win.width, nOut = c.filters * oh * ow
        var y = [Double](repeating: 0, count: batch * nOut), dw = [Double](repeating: 0, count: w.count)
        var db = [Double](repeating: 0, count: c.filters), dx = [Double](repeating: 0, count: x.count)
        for s in 0..<batch {
            for o in 0..<c.filters {
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        let out = s * nOut + (o * oh + oy) * ow + ox
                        var sum = Double(b[o])
                        db[o] += Double(dy[out])
                        for ch in 0..<c.inChannels {
                            for i in 0..<kh {
                                for j in 0..<kw {
                                    let iy = oy * win.stride.h - win.padTop + i, ix = ox * win.stride.w - win.padLeft + j
                                    guard iy >= 0 && iy < win.height && ix >= 0 && ix < win.width else { continue }
                                    let xi = s * nIn + (ch * win.height + iy) * win.width + ix
                                    let wi = ((o * c.inChannels + ch) * kh + i) * kw + j
                                    sum += Double(w[wi]) * Double(x[xi])
                                    dw[wi] += Double(dy[out]) * Double(x[xi])
                                    dx[xi] += Double(dy[out]) * Double(w[wi])
                                }
                            }
                        }
                        y[out] = sum
                    }
                }
            }
        }
        return (y, dw, db, dx)
    }

    @Test(arguments: cases.map(\.name))
    func convolutionEqualsDirectConvolution(_ name: String) throws {
        let c = Self.cases.first { $0.name == name }!
        let batch = 7
        for partitionRows in [1, 4, 7] {   // partitions of 1; of 4 and 3; the whole batch
            let layer = Conv2DLayer(inChannels: c.inChannels, window: c.window, filters: c.filters,
                                    weightInit: .he, biasInit: 0)
            var rng = Xoshiro256(seed: 3, stream: "convolution")
            let x = (0..<(batch * layer.inputCount)).map { _ in Float(rng.nextGaussian()) }
            let w = (0..<(c.filters * c.inChannels * c.window.kernel.h * c.window.kernel.w)).map { _ in Float(rng.nextGaussian()) }
            let b = (0..<c.filters).map { _ in Float(rng.nextGaussian()) }
            var dy = (0..<(batch * layer.outputCount)).map { _ in Float(rng.nextGaussian()) }
            let expected = Self.direct(c, batch: batch, x: x, w: w, b: b, dy: dy)
            var y = [Float](repeating: .nan, count: batch * layer.outputCount)
            var dw = [Float](repeating: .nan, count: w.count), db = [Float](repeating: .nan, count: b.count)
            var dx = [Float](repeating: .nan, count: x.count)
            let runner = LayerRunner(pool: ParallelTasks(), threads: 2, partitionRows: partitionRows)
            w.withUnsafeBufferPointer { wp in
                b.withUnsafeBufferPointer { bp in
                    let params = [wp.baseAddress!, bp.baseAddress!]
                    x.withUnsafeBufferPointer { xp in
                        y.withUnsafeMutableBufferPointer { yp in
                            layer.forward(xp.baseAddress!, yp.baseAddress!, batch: batch, params: params, training: true, runner: runner)
                            dw.withUnsafeMutableBufferPointer { dwp in
                                db.withUnsafeMutableBufferPointer { dbp in
                                    dy.withUnsafeMutableBufferPointer { dyp in
                                        dx.withUnsafeMutableBufferPointer { dxp in
                                            layer.backward(x: xp.baseAddress!, y: UnsafePointer(yp.baseAddress!), dy: dyp.baseAddress!,
                                                           dx: dxp.baseAddress!, batch: batch, params: params,
                                                           grads: [dwp.baseAddress!, dbp.baseAddress!], runner: runner)
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            let chunk = "partitions of \(partitionRows)"
            for (what, ours, reference) in [("y", y, expected.y), ("dW", dw, expected.dw), ("db", db, expected.db), ("dx", dx, expected.dx)] {
                // Written as "not within" so that a NaN (an element never written) counts as a failure.
                let off = zip(ours, reference).enumerated().filter { !(abs(Double($1.0) - $1.1) <= 1e-5 * (1 + abs($1.1))) }
                #expect(ours.count == reference.count && off.isEmpty,
                        "\(name), \(chunk): \(off.count) elements of \(what) differ from the direct convolution, e.g. \(off.prefix(3).map { "[\($0.0)] \($0.1.0) vs \($0.1.1)" })")
            }
        }
    }
}
