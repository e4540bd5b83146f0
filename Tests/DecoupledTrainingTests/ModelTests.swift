import DecoupledCore
import DecoupledRandom
import Foundation
import Testing

@testable import DecoupledTraining

// MARK: - Helpers

/// Parameter and gradient storage for a model, freed on deinit.
private final class ModelState {
    let model: Model
    let params: [UnsafeMutablePointer<Float>]
    let grads: [UnsafeMutablePointer<Float>]
    var constParams: [UnsafePointer<Float>] { params.map { UnsafePointer($0) } }

    init(_ model: Model, seed: UInt64 = 1) {
        self.model = model
        params = model.parameterSpecs.map { .allocate(capacity: $0.count) }
        grads = model.parameterSpecs.map {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: $0.count)
            p.initialize(repeating: .nan, count: $0.count)
            return p
        }
        var rng = Xoshiro256(seed: seed, stream: "init")
        model.initialize(params: params, rng: &rng)
    }

    deinit {
        params.forEach { $0.deallocate() }
        grads.forEach { $0.deallocate() }
    }

    func set(_ tensor: Int, _ values: [Float]) {
        precondition(values.count == model.parameterSpecs[tensor].count)
        for (i, v) in values.enumerated() { params[tensor][i] = v }
    }

    func grad(_ tensor: Int) -> [Float] {
        Array(UnsafeBufferPointer(start: grads[tensor], count: model.parameterSpecs[tensor].count))
    }

    func allGrads() -> [Float] { (0..<params.count).flatMap { grad($0) } }
}

/// A synthetic batch matching a model's loss.
private final class Batch {
    let batch: Int
    let x: UnsafeMutablePointer<Float>
    let labels: UnsafeMutablePointer<Int32>
    let values: UnsafeMutablePointer<Float>
    let loss: LossKind

    init(model: Model, batch: Int, seed: UInt64 = 7) {
        self.batch = batch
        loss = model.loss
        var rng = Xoshiro256(seed: seed, stream: "data")
        x = .allocate(capacity: batch * model.inputCount)
        for i in 0..<(batch * model.inputCount) { x[i] = Float(rng.nextGaussian()) }
        labels = .allocate(capacity: batch)
        for i in 0..<batch { labels[i] = Int32(rng.nextInt(below: model.outputCount)) }
        values = .allocate(capacity: batch * model.outputCount)
        for i in 0..<(batch * model.outputCount) {
            values[i] = model.loss == .logistic ? Float(rng.nextDouble()) : Float(rng.nextGaussian())
        }
    }

    deinit {
        x.deallocate()
        labels.deallocate()
        values.deallocate()
    }

    var targets: Targets { loss == .crossEntropy ? .labels(labels) : .values(values) }
}

private func step(_ s: ModelState, _ b: Batch, threads: Int = 1) -> BatchResult {
    s.model.lossAndGradients(x: b.x, targets: b.targets, batch: b.batch, params: s.constParams,
                             grads: s.grads, threads: threads)
}

private func lossOnly(_ s: ModelState, _ b: Batch, threads: Int = 1) -> Double {
    s.model.evaluate(x: b.x, targets: b.targets, batch: b.batch, params: s.constParams, threads: threads).loss
}

/// Central differences of the model's own loss (Float forward, Double-accumulated loss), one
/// parameter at a time; the step actually taken (after Float rounding) is the denominator.
private func numericalGradient(_ s: ModelState, _ b: Batch, eps: Float = 1e-3) -> [Double] {
    var out: [Double] = []
    for (t, spec) in s.model.parameterSpecs.enumerated() {
        for i in 0..<spec.count {
            let w = s.params[t][i]
            let up = w + eps, down = w - eps
            s.params[t][i] = up
            let lp = lossOnly(s, b)
            s.params[t][i] = down
            let lm = lossOnly(s, b)
            s.params[t][i] = w
            out.append((lp - lm) / (Double(up) - Double(down)))
        }
    }
    return out
}

/// Indices where analytic and numerical gradients disagree beyond
/// |a − n| ≤ rtol·max(|a|, |n|) + atol.
private func gradientMismatches(analytic: [Float], numerical: [Double], rtol: Double = 1e-2,
                                atol: Double = 1e-4) -> [Int] {
    precondition(analytic.count == numerical.count)
    return analytic.indices.filter { i in
        let a = Double(analytic[i]), n = numerical[i]
        return !(abs(a - n) <= rtol * max(abs(a), abs(n)) + atol)
    }
}

private func bits(_ xs: [Float]) -> [UInt32] { xs.map(\.bitPattern) }

/// An independent Double-precision reference of the MLP loss (naive loops, PyTorch layout).
private func referenceLoss(_ s: ModelState, _ b: Batch, layers: [Int], activation: ActivationKind) -> Double {
    var total = 0.0
    for r in 0..<b.batch {
        var h = (0..<layers[0]).map { Double(b.x[r * layers[0] + $0]) }
        for l in 0..<(layers.count - 1) {
            let w = s.params[2 * l], bias = s.params[2 * l + 1]
            var z = [Double](repeating: 0, count: layers[l + 1])
            for o in 0..<layers[l + 1] {
                var acc = Double(bias[o])
                for i in 0..<layers[l] { acc += Double(w[o * layers[l] + i]) * h[i] }
                z[o] = acc
            }
            if l < layers.count - 2 {
                switch activation {
                case .relu: z = z.map { max($0, 0) }
                case .tanh: z = z.map { Foundation.tanh($0) }
                case .gelu: z = z.map { 0.5 * $0 * (1 + erf($0 / 2.0.squareRoot())) }
                }
            }
            h = z
        }
        let c = h.count
        switch b.loss {
        case .crossEntropy:
            let m = h.max()!
            let lse = m + log(h.reduce(0) { $0 + exp($1 - m) })
            total += lse - h[Int(b.labels[r])]
        case .logistic:
            for j in 0..<c {
                let z = h[j], t = Double(b.values[r * c + j])
                total += max(z, 0) - z * t + log1p(exp(-abs(z)))
            }
        case .mse:
            for j in 0..<c {
                let d = h[j] - Double(b.values[r * c + j])
                total += d * d
            }
        case .quadratic:
            Issue.record("an MLP has no quadratic loss")
        }
    }
    let denominator = b.loss == .crossEntropy ? b.batch : b.batch * layers.last!
    return total / Double(denominator)
}

// MARK: - Structure and initialisation

@Suite("Model structure and initialisation")
struct ModelStructureTests {
    @Test func parameterSpecsFollowPyTorchLayout() {
        let m = MLP(layers: [5, 4, 3], activation: .relu, loss: .crossEntropy, init: .he, maxBatch: 8)
        #expect(m.parameterSpecs == [
            TensorSpec(name: "fc1.weight", shape: [4, 5], role: .weight),
            TensorSpec(name: "fc1.bias", shape: [4], role: .bias),
            TensorSpec(name: "fc2.weight", shape: [3, 4], role: .weight),
            TensorSpec(name: "fc2.bias", shape: [3], role: .bias),
        ])
        #expect(m.inputCount == 5 && m.outputCount == 3)
        let s = SoftmaxRegression(inputs: 6, classes: 4, maxBatch: 2)
        #expect(s.parameterSpecs.map(\.shape) == [[4, 6], [4]] && s.loss == .crossEntropy)
        let r = LinearRegression(inputs: 3, maxBatch: 2)
        #expect(r.parameterSpecs.map(\.shape) == [[1, 3], [1]] && r.loss == .mse)
    }

    @Test func heInitialisationIsSeededNormalWithFanInVariance() {
        let m = MLP(layers: [400, 300, 10], init: .he, maxBatch: 1)
        let a = ModelState(m, seed: 3), b = ModelState(m, seed: 3), c = ModelState(m, seed: 4)
        let n = 400 * 300
        let w = Array(UnsafeBufferPointer(start: a.params[0], count: n)).map(Double.init)
        let mean = w.reduce(0, +) / Double(n)
        let std = (w.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(n)).squareRoot()
        let expected = (2.0 / 400).squareRoot()
        #expect(abs(mean) < 5 * expected / Double(n).squareRoot())   // 5 standard errors
        #expect(abs(std / expected - 1) < 0.01)
        #expect(bits(Array(UnsafeBufferPointer(start: a.params[0], count: n)))
                == bits(Array(UnsafeBufferPointer(start: b.params[0], count: n))))
        #expect(a.params[0][0] != c.params[0][0])
        #expect((0..<300).allSatisfy { a.params[1][$0] == 0 } && (0..<10).allSatisfy { a.params[3][$0] == 0 })
    }

    @Test func xavierInitialisationIsUniformWithinGlorotBound() {
        let m = MLP(layers: [400, 300, 10], init: .xavier, maxBatch: 1)
        let s = ModelState(m, seed: 5)
        let bound = Float((6.0 / 700).squareRoot())
        let w = Array(UnsafeBufferPointer(start: s.params[0], count: 400 * 300))
        #expect(w.allSatisfy { abs($0) <= bound })
        #expect(w.max()! > 0.99 * bound && w.min()! < -0.99 * bound)
        let variance = w.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(w.count)
        #expect(abs(variance / (Double(bound * bound) / 3) - 1) < 0.02)
        let bound2 = Float((6.0 / 310).squareRoot())
        #expect((0..<3000).allSatisfy { abs(s.params[2][$0]) <= bound2 })
        #expect((0..<300).allSatisfy { s.params[1][$0] == 0 })
    }
}

// MARK: - Finite-difference gradient checks

@Suite("Model gradients (finite differences)")
struct ModelGradientTests {
    /// MLP with two hidden layers, every activation × loss; batch 5 in partitions of 2 rows
    /// (one partial partition), run on 2 threads.
    @Test(arguments: ActivationKind.allCases, LossKind.allCases.filter { $0 != .quadratic })
    func mlpGradientMatchesFiniteDifferences(activation: ActivationKind, loss: LossKind) {
        let layers = [4, 6, 5, 3]
        let m = MLP(layers: layers, activation: activation, loss: loss, init: .xavier, maxBatch: 5, partitionRows: 2)
        let s = ModelState(m, seed: 11)
        // Non-zero biases so their gradients flow through a non-trivial point.
        for t in [1, 3, 5] { for i in 0..<m.parameterSpecs[t].count { s.params[t][i] = 0.1 * Float(i % 3) - 0.1 } }
        let b = Batch(model: m, batch: 5)
        let r = step(s, b, threads: 2)
        let analytic = s.allGrads()
        let numerical = numericalGradient(s, b)
        #expect(gradientMismatches(analytic: analytic, numerical: numerical) == [])
        #expect(analytic.contains { $0 != 0 })
        // The loss agrees with an independent Double-precision reference.
        let reference = referenceLoss(s, b, layers: layers, activation: activation)
        #expect(abs(r.loss - reference) <= 1e-5 * max(1, abs(reference)))
    }

    @Test(arguments: [LossKind.crossEntropy, .mse, .logistic])
    func regressionModelsMatchFiniteDifferences(loss: LossKind) {
        let m: MLP = loss == .crossEntropy
            ? SoftmaxRegression(inputs: 5, classes: 4, init: .he, maxBatch: 3, partitionRows: 2)
            : LinearRegression(inputs: 5, outputs: 2, loss: loss, init: .he, maxBatch: 3, partitionRows: 2)
        let s = ModelState(m, seed: 21)
        let b = Batch(model: m, batch: 7)  // larger than maxBatch: scratch grows
        let r = step(s, b, threads: 3)
        #expect(gradientMismatches(analytic: s.allGrads(), numerical: numericalGradient(s, b)) == [])
        let reference = referenceLoss(s, b, layers: m.layers, activation: .relu)
        #expect(abs(r.loss - reference) <= 1e-5 * max(1, abs(reference)))
    }

    /// The check must be able to fail: a single perturbed gradient element is caught.
    @Test func perturbedGradientIsCaught() {
        let m = MLP(layers: [4, 6, 3], activation: .tanh, loss: .crossEntropy, init: .xavier, maxBatch: 5)
        let s = ModelState(m, seed: 2)
        let b = Batch(model: m, batch: 5)
        _ = step(s, b)
        var analytic = s.allGrads()
        let numerical = numericalGradient(s, b)
        #expect(gradientMismatches(analytic: analytic, numerical: numerical) == [])
        let k = 9
        analytic[k] += 0.02 * max(abs(analytic[k]), 0.05)
        #expect(gradientMismatches(analytic: analytic, numerical: numerical) == [k])
        // A gradient of the wrong sign everywhere is caught everywhere it is not tiny.
        let flipped = analytic.map { -$0 }
        let caught = Set(gradientMismatches(analytic: flipped, numerical: numerical))
        let notTiny = Set(numerical.indices.filter { abs(numerical[$0]) > 1e-4 })
        #expect(!notTiny.isEmpty && notTiny.isSubset(of: caught))
    }
}

// MARK: - Closed forms

@Suite("Model closed-form checks")
struct ModelClosedFormTests {
    /// ŷ = x·wᵀ + b with w = [0.5, −1], b = 0.25 on x = [[1, 2], [3, −1]], y = [1, 0]:
    /// ŷ = [−1.25, 2.75], r = ŷ − y = [−2.25, 2.75], loss = (r₁² + r₂²)/2 = 6.3125,
    /// ∂/∂ŷ = 2r/2 = r, ∂w = Σ rᵢxᵢ = [6, −7.25], ∂b = Σ rᵢ = 0.5 — all exact in binary.
    @Test func linearRegressionMSEGradientIsExact() {
        let m = LinearRegression(inputs: 2, maxBatch: 2)
        let s = ModelState(m)
        s.set(0, [0.5, -1])
        s.set(1, [0.25])
        let x: [Float] = [1, 2, 3, -1], y: [Float] = [1, 0]
        let r = x.withUnsafeBufferPointer { xp in
            y.withUnsafeBufferPointer { yp in
                m.lossAndGradients(x: xp.baseAddress!, targets: .values(yp.baseAddress!), batch: 2,
                                   params: s.constParams, grads: s.grads, threads: 2)
            }
        }
        #expect(r.loss == 6.3125)
        #expect(r.count == 2 && r.correct == 0 && r.accuracy == nil)
        #expect(s.grad(0) == [6, -7.25])
        #expect(s.grad(1) == [0.5])
    }

    /// Softmax regression, 3 classes, 2 features, 2 samples, gradients written out by hand:
    /// ∂W = (1/B) Σᵢ (pᵢ − onehot(yᵢ)) xᵢᵀ, ∂b = (1/B) Σᵢ (pᵢ − onehot(yᵢ)).
    @Test func softmaxRegressionGradientByHand() {
        let m = SoftmaxRegression(inputs: 2, classes: 3, maxBatch: 2)
        let s = ModelState(m)
        let w: [Float] = [1, 0, 0, 1, -1, -1]   // rows: class 0, 1, 2
        let bias: [Float] = [0, 0.5, 0]
        s.set(0, w)
        s.set(1, bias)
        let x: [Float] = [1, 2, -1, 0.5]
        let labels: [Int32] = [1, 0]
        // Sample 1: z = [1, 2.5, −3], label 1.  Sample 2: z = [−1, 1, 0.5], label 0.
        let z: [[Double]] = [[1, 2.5, -3], [-1, 1, 0.5]]
        var expectedW = [Double](repeating: 0, count: 6), expectedB = [Double](repeating: 0, count: 3)
        var expectedLoss = 0.0
        for i in 0..<2 {
            let e = z[i].map { exp($0) }, sum = e.reduce(0, +)
            expectedLoss += log(sum) - z[i][Int(labels[i])]
            for c in 0..<3 {
                let d = (e[c] / sum - (c == Int(labels[i]) ? 1 : 0)) / 2
                expectedB[c] += d
                expectedW[c * 2] += d * Double(x[i * 2])
                expectedW[c * 2 + 1] += d * Double(x[i * 2 + 1])
            }
        }
        expectedLoss /= 2
        let r = x.withUnsafeBufferPointer { xp in
            labels.withUnsafeBufferPointer { lp in
                m.lossAndGradients(x: xp.baseAddress!, targets: .labels(lp.baseAddress!), batch: 2,
                                   params: s.constParams, grads: s.grads, threads: 1)
            }
        }
        #expect(abs(r.loss - expectedLoss) < 1e-6)
        #expect(r.correct == 1 && r.count == 2 && r.predictions == 2)  // sample 1 right, sample 2 wrong
        for (g, e) in zip(s.grad(0), expectedW) { #expect(abs(Double(g) - e) < 1e-6) }
        for (g, e) in zip(s.grad(1), expectedB) { #expect(abs(Double(g) - e) < 1e-6) }
    }

    @Test func geluMatchesExactErfForm() {
        // One hidden unit with weight 1 and bias 0 feeding an identity output: output = gelu(x).
        let m = MLP(layers: [1, 1, 1], activation: .gelu, loss: .mse, init: .he, maxBatch: 5)
        let s = ModelState(m)
        s.set(0, [1]); s.set(1, [0]); s.set(2, [1]); s.set(3, [0])
        for v in [-3.0, -0.5, 0, 0.7, 2.5] {
            let x = [Float(v)], t: [Float] = [0]
            let r = x.withUnsafeBufferPointer { xp in t.withUnsafeBufferPointer { tp in
                m.evaluate(x: xp.baseAddress!, targets: .values(tp.baseAddress!), batch: 1, params: s.constParams, threads: 1)
            } }
            let g = 0.5 * v * (1 + erf(v / 2.0.squareRoot()))
            #expect(abs(r.loss.squareRoot() - abs(g)) < 1e-6)
        }
    }
}

// MARK: - Determinism, stability, validation, config

@Suite("Model determinism and robustness")
struct ModelRobustnessTests {
    /// Bit-identical loss and gradients on 1, 2 and 3 threads (several partitions, a partial
    /// last partition, several weight-gradient tiles).
    @Test(arguments: [ActivationKind.relu, .gelu])
    func resultsAreBitIdenticalAcrossThreadCounts(activation: ActivationKind) {
        let m = MLP(layers: [300, 100, 40, 10], activation: activation, loss: .crossEntropy, init: .he,
                    maxBatch: 37, partitionRows: 8)
        #expect(MLP.makeGradientTasks(layers: m.layers).count > 6)
        let s = ModelState(m, seed: 9)
        let b = Batch(model: m, batch: 37)
        let r1 = step(s, b, threads: 1), g1 = s.allGrads()
        for t in [2, 3, 1, 2] {
            let r = step(s, b, threads: t)
            #expect(r.loss.bitPattern == r1.loss.bitPattern && r.correct == r1.correct)
            #expect(bits(s.allGrads()) == bits(g1))
        }
        let e = m.evaluate(x: b.x, targets: b.targets, batch: b.batch, params: s.constParams, threads: 3)
        #expect(e == r1)
    }

    @Test func benchmarkShapeIsBitIdenticalOnOneAndTwoThreads() {
        let m = MLP(layers: [784, 256, 128, 10], activation: .relu, loss: .crossEntropy, init: .he, maxBatch: 128)
        let s = ModelState(m, seed: 1)
        let b = Batch(model: m, batch: 128)
        let r1 = step(s, b, threads: 1), g1 = s.allGrads()
        let r2 = step(s, b, threads: 2), g2 = s.allGrads()
        #expect(r1.loss.bitPattern == r2.loss.bitPattern && bits(g1) == bits(g2))
    }

    @Test func largeLogitsStayFinite() {
        for loss in LossKind.allCases where loss != .mse && loss != .quadratic {
            let m = MLP(layers: [3, 4], loss: loss, init: .he, maxBatch: 4)
            let s = ModelState(m)
            for i in 0..<12 { s.params[0][i] = (i % 2 == 0 ? 1 : -1) * 4000 }
            let b = Batch(model: m, batch: 4)
            let r = step(s, b)
            #expect(r.loss.isFinite && r.loss > 0)
            #expect(s.allGrads().allSatisfy { $0.isFinite })
        }
    }

    @Test func outOfRangeLabelsAreRejectedByValidation() {
        let m = SoftmaxRegression(inputs: 2, classes: 3, maxBatch: 4)
        let good: [Int32] = [0, 2, 1], bad: [Int32] = [0, 3, 1]
        good.withUnsafeBufferPointer { p in #expect(throws: Never.self) { try m.validate(labels: p.baseAddress!, count: 3) } }
        bad.withUnsafeBufferPointer { p in
            _ = #expect(throws: ModelError.labelOutOfRange(index: 1, label: 3, classes: 3)) {
                try m.validate(labels: p.baseAddress!, count: 3)
            }
        }
    }

    @Test func logisticCountsSignAgreement() {
        let m = LinearRegression(inputs: 1, outputs: 2, loss: .logistic, maxBatch: 2)
        let s = ModelState(m)
        s.set(0, [1, -1]); s.set(1, [0, 0])
        let x: [Float] = [2, -1], t: [Float] = [1, 0, 1, 1]   // logits [[2, −2], [−1, 1]]
        let r = x.withUnsafeBufferPointer { xp in t.withUnsafeBufferPointer { tp in
            m.evaluate(x: xp.baseAddress!, targets: .values(tp.baseAddress!), batch: 2, params: s.constParams, threads: 1)
        } }
        #expect(r.correct == 3 && r.predictions == 4 && r.accuracy == 0.75)  // only (−1, t = 1) is wrong
        let expected = (log1p(exp(-2.0)) + log1p(exp(-2.0)) + log1p(exp(1.0)) + log1p(exp(-1.0))) / 4
        #expect(abs(r.loss - expected) < 1e-6)
    }

    @Test func configDecodesDefaultsAndBuildsModels() throws {
        let json = #"{"kind": "mlp", "hidden": [8, 4], "activation": "gelu", "init": "xavier", "loss": "logistic"}"#
        let c = try JSONDecoder().decode(ModelConfig.self, from: Data(json.utf8))
        #expect(c == ModelConfig(kind: .mlp, hidden: [8, 4], activation: .gelu, initialization: .xavier, loss: .logistic))
        let m = try #require(try c.makeModel(inputCount: 5, outputCount: 2, maxBatch: 16) as? MLP)
        #expect(m.layers == [5, 8, 4, 2] && m.activation == .gelu && m.loss == .logistic && m.initialization == .xavier)

        let minimal = try JSONDecoder().decode(ModelConfig.self, from: Data(#"{"kind": "mlp", "hidden": [3]}"#.utf8))
        #expect(minimal.resolvedLoss == .crossEntropy && minimal.resolvedInit == .he && minimal.activation == .relu)
        #expect(try minimal.makeModel(inputCount: 2, outputCount: 3, maxBatch: 4) is MLP)
        let softmax = ModelConfig(kind: .softmax)
        #expect(softmax.resolvedInit == .xavier)
        #expect(try softmax.makeModel(inputCount: 2, outputCount: 3, maxBatch: 4) is SoftmaxRegression)
        #expect(try ModelConfig(kind: .linear).makeModel(inputCount: 2, outputCount: 1, maxBatch: 4) is LinearRegression)

        let roundTrip = try JSONDecoder().decode(ModelConfig.self, from: JSONEncoder().encode(c))
        #expect(roundTrip == c)
    }

    @Test func configRejectsInvalidCombinations() {
        let cases: [(ModelConfig, Int)] = [
            (ModelConfig(kind: .softmax, hidden: [4]), 3),
            (ModelConfig(kind: .softmax, loss: .mse), 3),
            (ModelConfig(kind: .linear, loss: .crossEntropy), 3),
            (ModelConfig(kind: .mlp, hidden: [0]), 3),
            (ModelConfig(kind: .mlp, hidden: [4]), 1),   // cross-entropy with one class
        ]
        for (config, outputs) in cases {
            #expect(throws: ModelError.self) { try config.makeModel(inputCount: 2, outputCount: outputs, maxBatch: 4) }
        }
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(ModelConfig.self, from: Data(#"{"kind": "mlp", "activation": "swish"}"#.utf8))
        }
    }

    @Test func benchmarkRuns() {
        let m = MLP(layers: [20, 16, 4], maxBatch: 8)
        let r = ModelBenchmark.run(model: m, batch: 8, threads: 2, seconds: 0.01, warmup: 1)
        #expect(r.samplesPerSecond > 0 && r.steps >= 10)
    }
}
