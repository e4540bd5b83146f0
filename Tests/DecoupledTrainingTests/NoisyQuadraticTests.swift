import DecoupledCore
import DecoupledRandom
import DecoupledTraining
import Foundation
import Testing

/// `quadratic_deep`: the generated instance is DeepOBS's (NumPy's draws, fixture from
/// scripts/reference/deepobs_quadratic.py fixture), the model's gradient is right, and the problem
/// trains from its one config key.
@Suite struct NoisyQuadraticTests {
    struct Fixture: Decodable {
        let hessian_rows: [String: [Double]]
        let hessian_diagonal: [Double]
        let hessian_trace: Double
        let hessian_frobenius: Double
        let train_rows: [String: [Double]]
        let test_rows: [String: [Double]]
        let train_mean: Double
    }

    static let fixture: Fixture = {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/quadratic/deepobs-quadratic.json")
        return try! JSONDecoder().decode(Fixture.self, from: Data(contentsOf: path))
    }()

    @Test func numpyStreamsAreReproduced() {
        // Values printed by NumPy 2 for RandomState(42): random_sample(3) and normal(0, 1, 3).
        var u = NumPyRandomState(seed: 42)
        #expect([u.nextDouble(), u.nextDouble(), u.nextDouble()] == [0.3745401188473625, 0.9507143064099162, 0.7319939418114051])
        var g = NumPyRandomState(seed: 42)
        #expect([g.gauss(), g.gauss(), g.gauss()] == [0.4967141530112327, -0.13826430117118466, 0.6476885381006925])
    }

    @Test func hessianIsDeepOBSs() {
        let n = NoisyQuadratic.dimension
        let q = NoisyQuadratic.deepOBSHessian()
        let f = Self.fixture
        // Summation orders differ from NumPy's BLAS, so entries agree to rounding, not bits.
        func close(_ a: Double, _ b: Double, _ scale: Double = 60) -> Bool { abs(a - b) <= 1e-9 * scale }
        for (key, row) in f.hessian_rows {
            let i = Int(key)!
            #expect(zip(q[(i * n)..<((i + 1) * n)], row).allSatisfy { close($0, $1) }, "row \(i)")
        }
        #expect((0..<n).allSatisfy { close(q[$0 * n + $0], f.hessian_diagonal[$0]) })
        #expect(close((0..<n).reduce(0) { $0 + q[$1 * n + $1] }, f.hessian_trace))
        #expect(close(q.reduce(0) { $0 + $1 * $1 }.squareRoot(), f.hessian_frobenius))
        // Symmetric, and its spectrum is DeepOBS's: trace = Σλ with 10 eigenvalues in (30, 60).
        #expect((0..<n).allSatisfy { i in (0..<n).allSatisfy { j in close(q[i * n + j], q[j * n + i]) } })
    }

    @Test func samplesAreDeepOBSs() {
        let n = NoisyQuadratic.dimension
        let train = NoisyQuadratic.deepOBSSamples(test: false), test = NoisyQuadratic.deepOBSSamples(test: true)
        for (key, row) in Self.fixture.train_rows {
            let i = Int(key)!
            #expect(Array(train[(i * n)..<((i + 1) * n)]) == row.map(Float.init), "train row \(i)")
        }
        for (key, row) in Self.fixture.test_rows {
            let i = Int(key)!
            #expect(Array(test[(i * n)..<((i + 1) * n)]) == row.map(Float.init), "test row \(i)")
        }
        #expect(abs(train.reduce(0.0) { $0 + Double($1) } / Double(train.count) - Self.fixture.train_mean) < 1e-12)
    }

    @Test func gradientMatchesFiniteDifferences() throws {
        let model = NoisyQuadraticModel(outputCount: 1)
        let n = NoisyQuadratic.dimension, batch = 5
        var rng = NumPyRandomState(seed: 7)
        let x = (0..<(batch * n)).map { _ in Float(rng.normal(0, 0.6)) }
        var theta = (0..<n).map { _ in Float(rng.normal(1, 0.5)) }
        var grad = [Float](repeating: 0, count: n)
        let labels = [Int32](repeating: 0, count: batch)
        func loss(_ t: [Float]) -> Double {
            t.withUnsafeBufferPointer { tp in x.withUnsafeBufferPointer { xp in labels.withUnsafeBufferPointer { lp in
                model.evaluate(x: xp.baseAddress!, targets: .labels(lp.baseAddress!), batch: batch,
                               params: [tp.baseAddress!], threads: 1).loss
            } } }
        }
        let result = theta.withUnsafeBufferPointer { tp in x.withUnsafeBufferPointer { xp in
            labels.withUnsafeBufferPointer { lp in grad.withUnsafeMutableBufferPointer { gp in
                model.lossAndGradients(x: xp.baseAddress!, targets: .labels(lp.baseAddress!), batch: batch,
                                       params: [tp.baseAddress!], grads: [gp.baseAddress!], threads: 1)
            } }
        } }
        #expect(result.loss == loss(theta) && result.accuracy == nil)
        // The loss is exactly quadratic, so a central difference has only rounding error.
        for i in [0, 13, 99] {
            let h: Float = 1e-2
            let saved = theta[i]
            theta[i] = saved + h; let up = loss(theta)
            theta[i] = saved - h; let down = loss(theta)
            theta[i] = saved
            let numeric = (up - down) / Double(2 * h)
            #expect(abs(numeric - Double(grad[i])) <= 1e-3 * max(1, abs(numeric)), "θ[\(i)]: \(numeric) vs \(grad[i])")
        }
    }

    @Test func problemTrainsFromItsKeyAndResumesBitIdentically() throws {
        let text = """
        problem = "quadratic_deep"
        [optimizer]
        name = "sgd"
        lr = 0.01
        momentum = 0.9
        [train]
        epochs = 3
        """
        let config = try ExperimentConfig.parse(text, file: "q.toml")
        #expect(config.data.resolvedFile == "synthetic:quadratic_deep" && config.data.batchSize == 128)
        let full = Scratch(), split = Scratch()
        func trainer(_ dir: Scratch, resume: Bool) throws -> Trainer {
            let session = try TrainingSession(config: config, registry: .builtIn(), kernels: .best, threads: 1)
            return try Trainer(session: session, runDirectory: dir.path, resume: resume, progress: ProgressReporter(quiet: true))
        }
        let a = try trainer(full, resume: false)
        let summary = try a.run()
        #expect(summary.status == .completed)
        // θ starts at 1 (loss ≈ ½·tr(Q)·(1 + 0.36)); three epochs of momentum SGD reach the ≈ 90 plateau.
        let records = try MetricRecord.read(full.file("metrics.jsonl"))
        #expect((summary.final?.testLoss ?? .infinity) < 100 && (records.first?.dataLoss ?? 0) > 150, "\(records.map(\.dataLoss))")
        _ = try trainer(split, resume: false).run(stopAfter: 9)
        let b = try trainer(split, resume: true)
        _ = try b.run()
        #expect(parameterBits(a.session) == parameterBits(b.session))
    }

    @Test func badSyntheticNamesAndShapesAreErrors() throws {
        let unknown = try ExperimentConfig.parse("""
            problem = "quadratic_deep"
            [data]
            file = "synthetic:quadratic_shallow"
            [optimizer]
            name = "sgd"
            lr = 0.1
            """, file: "q.toml")
        #expect(throws: (any Error).self) { _ = try TrainingSession(config: unknown, registry: .builtIn(), kernels: .best) }
        do { _ = try TrainingSession(config: unknown, registry: .builtIn(), kernels: .best) } catch {
            #expect("\(error)".contains("quadratic_shallow") && "\(error)".contains("synthetic:quadratic_deep"), "\(error)")
        }
        let wrongData = try ExperimentConfig.parse("""
            problem = "quadratic_deep"
            [data]
            file = "\(repositoryRoot)/datasets/fashion-mnist-small.h5"
            [optimizer]
            name = "sgd"
            lr = 0.1
            """, file: "q.toml")
        do {
            _ = try TrainingSession(config: wrongData, registry: .builtIn(), kernels: .best)
            Issue.record("a 784-feature data set was accepted for quadratic_deep")
        } catch {
            #expect("\(error)".contains("100 features") && "\(error)".contains("784"), "\(error)")
        }
    }
}
