import DecoupledRandom
import Testing
@testable import DecoupledTraining

/// 2×2, stride-2 max pooling (vectorised) against the definition: the first maximum of each
/// window in scan order, a NaN winning over numbers, the whole gradient routed to it. Inputs
/// drawn from four values make ties common; widths cover 8-wide and 4-wide blocks, overlapping
/// last blocks, odd widths and rows too short for a vector.
@Suite struct PoolingTests {
    static let shapes = [(28, 28), (14, 14), (9, 10), (6, 17), (2, 2), (4, 6)]

    @Test(arguments: shapes.indices)
    func maxPoolMatchesTheDefinition(_ shapeIndex: Int) {
        let (height, width) = Self.shapes[shapeIndex]
        let channels = 3, batch = 5
        let window = Window2D(kernel: (2, 2), stride: (2, 2), padTop: 0, padBottom: 0, padLeft: 0, padRight: 0,
                              height: height, width: width)
        let layer = Pool2DLayer(mode: .max, channels: channels, window: window)
        var rng = Xoshiro256(seed: 11, stream: "pooling")
        let x: [Float] = (0..<(batch * layer.inputCount)).map { _ in
            let r = rng.next() % 64
            return r == 0 ? .nan : Float(Int(r % 4) - 1)
        }
        var dy = (0..<(batch * layer.outputCount)).map { Float($0 + 1) }
        let oh = window.outHeight, ow = window.outWidth, hw = height * width
        var expectedY = [Float](repeating: 0, count: dy.count), expectedDx = [Float](repeating: 0, count: x.count)
        for plane in 0..<(batch * channels) {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    var best = Float.nan, bestIndex = -1
                    for i in 0..<2 {
                        for j in 0..<2 {
                            let index = plane * hw + (2 * oy + i) * width + 2 * ox + j, v = x[index]
                            if bestIndex < 0 || v > best || (v.isNaN && !best.isNaN) { (best, bestIndex) = (v, index) }
                        }
                    }
                    let out = (plane * oh + oy) * ow + ox
                    expectedY[out] = best
                    expectedDx[bestIndex] += dy[out]
                }
            }
        }
        var y = [Float](repeating: -7, count: dy.count), dx = [Float](repeating: -7, count: x.count)
        let runner = LayerRunner(pool: ParallelTasks(), threads: 2, partitionRows: 2)
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in
                layer.forward(xp.baseAddress!, yp.baseAddress!, batch: batch, params: [], training: true, runner: runner)
                dy.withUnsafeMutableBufferPointer { dyp in
                    dx.withUnsafeMutableBufferPointer { dxp in
                        layer.backward(x: xp.baseAddress!, y: UnsafePointer(yp.baseAddress!), dy: dyp.baseAddress!,
                                       dx: dxp.baseAddress!, batch: batch, params: [], grads: [], runner: runner)
                    }
                }
            }
        }
        let yBits = y.map(\.bitPattern), expectedBits = expectedY.map(\.bitPattern)
        #expect(yBits == expectedBits, "\(height)×\(width): \(zip(yBits, expectedBits).filter { $0 != $1 }.count) outputs differ")
        #expect(dx == expectedDx, "\(height)×\(width): \(zip(dx, expectedDx).filter { $0 != $1 }.count) input gradients differ")
    }
}
