import DecoupledCore
import DecoupledRandom
import DecoupledHDF5
import Foundation
import Testing
@testable import DecoupledTraining

/// A small layer model with its parameters, random inputs and labels.
final class LayerHarness {
    let model: SequentialModel
    let arena: ParameterArena
    var x: [Float]
    var labels: [Int32]
    let batch: Int

    init(_ toml: String, inputs: Int, classes: Int, batch: Int, seed: UInt64 = 7) throws {
        let config = try ExperimentConfig.parse("""
            [data]
            file = "unused.h5"
            [model]
            \(toml)
            [train]
            steps = 1
            [optimizer]
            name = "sgd"
            lr = 0.1
            """, file: "layers.toml")
        model = try #require(try config.model.makeModel(inputCount: inputs, outputCount: classes, maxBatch: batch) as? SequentialModel)
        arena = try ParameterArena(specs: model.parameterSpecs)
        var rng = Xoshiro256(seed: seed, stream: "init")
        model.initialize(params: arena.pointers(arena.params), rng: &rng)
        // Non-trivial norm parameters, so their gradients are not at a symmetric point.
        for e in arena.entries where e.spec.role == .norm {
            for (i, v) in arena.view(arena.params, e).indices.enumerated() {
                arena.view(arena.params, e)[v] += Float(i % 3) * 0.1 - 0.05
            }
        }
        var data = Xoshiro256(seed: seed, stream: "data")
        x = (0..<(batch * inputs)).map { _ in Float(data.nextGaussian()) }
        labels = (0..<batch).map { _ in Int32(data.nextInt(below: classes)) }
        self.batch = batch
    }

    var params: [UnsafePointer<Float>] { arena.pointers(arena.params).map { UnsafePointer($0) } }

    /// Loss and gradients in training mode; the model state (dropout generator, batch-norm
    /// statistics) is put back afterwards, so every call sees the same masks.
    func train(threads: Int = 1) -> BatchResult {
        let saved = model.state
        defer { try! model.restore(saved) }
        return x.withUnsafeBufferPointer { xs in
            labels.withUnsafeBufferPointer { ls in
                model.lossAndGradients(x: xs.baseAddress!, targets: .labels(ls.baseAddress!), batch: batch,
                                       params: params, grads: arena.pointers(arena.grads), threads: threads)
            }
        }
    }

    func gradientBits() -> [UInt32] { arena.entries.flatMap { arena.view(arena.grads, $0).map(\.bitPattern) } }

    /// Central differences of the training loss for every parameter element, against the
    /// analytic gradient: |numeric − analytic| ≤ absolute + relative·|analytic|.
    func checkGradients(step: Float = 1e-3, absolute: Double = 2e-3, relative: Double = 2e-2) -> [String] {
        _ = train()
        let analytic = arena.entries.map { Array(arena.view(arena.grads, $0)) }
        var failures: [String] = []
        for (t, e) in arena.entries.enumerated() {
            let p = arena.view(arena.params, e)
            for i in 0..<e.count {
                let original = p[i]
                p[i] = original + step
                let plus = train().loss
                p[i] = original - step
                let minus = train().loss
                p[i] = original
                let numeric = (plus - minus) / Double(2 * step)
                let a = Double(analytic[t][i])
                if abs(numeric - a) > absolute + relative * abs(a) {
                    failures.append("\(e.spec.name)[\(i)]: numeric \(numeric), analytic \(a)")
                }
            }
        }
        return failures
    }
}

@Suite struct LayerTests {
    /// Every layer type behind a layer with parameters (so its input gradient is checked
    /// too), with strides, paddings and odd sizes.
    static let gradientCases: [(String, String, Int, Int)] = [
        ("dense+relu", #"layers = [{ type = "dense", units = 7 }, { type = "relu" }, { type = "dense", units = 3 }]"#, 5, 3),
        ("dense+tanh", #"layers = [{ type = "dense", units = 6, init = "xavier" }, { type = "tanh" }, { type = "dense", units = 3 }]"#, 4, 3),
        ("dense+gelu", #"layers = [{ type = "dense", units = 6, bias_init = 0.1 }, { type = "gelu" }, { type = "dense", units = 4 }]"#, 5, 4),
        ("conv stride 2 padding 1", """
         input_shape = [2, 6, 5]
         layers = [{ type = "conv2d", filters = 3, kernel = 3, stride = 2, padding = 1 }, { type = "tanh" },
                   { type = "flatten" }, { type = "dense", units = 3 }]
         """, 60, 3),
        ("conv same, uneven kernel", """
         input_shape = [2, 5, 4]
         layers = [{ type = "conv2d", filters = 2, kernel = [3, 2], padding = "same", init = "xavier_normal" },
                   { type = "conv2d", filters = 2, kernel = 2, init = "truncated_normal", init_std = 0.3, bias_init = 0.05 },
                   { type = "flatten" }, { type = "dense", units = 3 }]
         """, 40, 3),
        ("max pool", """
         input_shape = [1, 6, 6]
         layers = [{ type = "conv2d", filters = 2, kernel = 3, padding = 1 }, { type = "max_pool", size = 2 },
                   { type = "flatten" }, { type = "dense", units = 3 }]
         """, 36, 3),
        ("avg pool padded", """
         input_shape = [1, 5, 5]
         layers = [{ type = "conv2d", filters = 2, kernel = 2 }, { type = "avg_pool", size = 3, stride = 2, padding = 1 },
                   { type = "flatten" }, { type = "dense", units = 3 }]
         """, 25, 3),
        ("dropout", #"layers = [{ type = "dense", units = 8 }, { type = "dropout", rate = 0.4 }, { type = "dense", units = 3 }]"#, 5, 3),
        ("batch norm 1d", #"layers = [{ type = "dense", units = 6 }, { type = "batch_norm" }, { type = "tanh" }, { type = "dense", units = 3 }]"#, 5, 3),
        ("batch norm 2d", """
         input_shape = [1, 4, 4]
         layers = [{ type = "conv2d", filters = 3, kernel = 3, padding = "same" }, { type = "batch_norm", momentum = 0.2 },
                   { type = "tanh" }, { type = "flatten" }, { type = "dense", units = 3 }]
         """, 16, 3),
    ]

    @Test(arguments: gradientCases.map(\.0))
    func finiteDifferencesAgreeWithBackward(_ name: String) throws {
        let c = Self.gradientCases.first { $0.0 == name }!
        let h = try LayerHarness(c.1, inputs: c.2, classes: c.3, batch: 6)
        let failures = h.checkGradients()
        #expect(failures.isEmpty, "\(failures.count) elements differ, e.g. \(failures.prefix(5))")
    }

    /// The same check with a batch of 40 (two partitions of 32 and 8 rows), so the
    /// cross-partition sums of convolution and dense gradients are checked too.
    @Test(arguments: ["conv stride 2 padding 1", "max pool", "batch norm 2d", "dense+gelu"])
    func finiteDifferencesAcrossPartitions(_ name: String) throws {
        let c = Self.gradientCases.first { $0.0 == name }!
        let h = try LayerHarness(c.1, inputs: c.2, classes: c.3, batch: 40)
        let failures = h.checkGradients()
        #expect(failures.isEmpty, "\(failures.count) elements differ, e.g. \(failures.prefix(5))")
    }

    /// A conv net with batch norm and dropout, batch 70 (three partitions, the last short):
    /// losses, gradients and running statistics are bit-identical for 1, 2 and 3 threads.
    @Test func bitIdenticalAcrossThreadCounts() throws {
        let toml = """
            input_shape = [2, 9, 9]
            layers = [{ type = "conv2d", filters = 4, kernel = 3, padding = "same" }, { type = "batch_norm" },
                      { type = "relu" }, { type = "max_pool", size = 2 }, { type = "flatten" },
                      { type = "dense", units = 16 }, { type = "batch_norm" }, { type = "relu" },
                      { type = "dropout", rate = 0.25 }, { type = "dense", units = 5 }]
            """
        var reference: (BatchResult, [UInt32], ModelState?)?
        for threads in [1, 2, 3] {
            let h = try LayerHarness(toml, inputs: 162, classes: 5, batch: 70)
            let before = h.model.state
            let r = h.train(threads: threads)
            try h.model.restore(before)
            _ = h.x.withUnsafeBufferPointer { xs in
                h.labels.withUnsafeBufferPointer { ls in
                    h.model.lossAndGradients(x: xs.baseAddress!, targets: .labels(ls.baseAddress!), batch: h.batch,
                                             params: h.params, grads: h.arena.pointers(h.arena.grads), threads: threads)
                }
            }
            let evaluation = h.x.withUnsafeBufferPointer { xs in
                h.labels.withUnsafeBufferPointer { ls in
                    h.model.evaluate(x: xs.baseAddress!, targets: .labels(ls.baseAddress!), batch: h.batch,
                                     params: h.params, threads: threads)
                }
            }
            #expect(evaluation.loss.isFinite)
            let current = (r, h.gradientBits(), h.model.state)
            if let reference {
                #expect(reference.0 == current.0, "\(threads) threads: loss differs")
                #expect(reference.1 == current.1, "\(threads) threads: gradients differ")
                #expect(reference.2 == current.2, "\(threads) threads: running statistics or generator differ")
            } else {
                reference = current
            }
        }
    }

    /// Evaluation uses the running statistics and no dropout, and changes no state.
    @Test func evaluationIsDeterministicAndStateless() throws {
        let h = try LayerHarness(#"layers = [{ type = "dense", units = 8 }, { type = "batch_norm" }, { type = "dropout", rate = 0.5 }, { type = "dense", units = 3 }]"#,
                                 inputs: 4, classes: 3, batch: 10)
        func evaluate() -> BatchResult {
            h.x.withUnsafeBufferPointer { xs in
                h.labels.withUnsafeBufferPointer { ls in
                    h.model.evaluate(x: xs.baseAddress!, targets: .labels(ls.baseAddress!), batch: h.batch, params: h.params, threads: 2)
                }
            }
        }
        let state = h.model.state
        let a = evaluate(), b = evaluate()
        #expect(a == b && h.model.state == state)
        // Training moves the running statistics (momentum 0.1 from 0 and 1) and the generator.
        _ = h.x.withUnsafeBufferPointer { xs in
            h.labels.withUnsafeBufferPointer { ls in
                h.model.lossAndGradients(x: xs.baseAddress!, targets: .labels(ls.baseAddress!), batch: h.batch,
                                         params: h.params, grads: h.arena.pointers(h.arena.grads), threads: 1)
            }
        }
        let after = try #require(h.model.state)
        #expect(after != state)
        #expect(after.counters["1.num_batches_tracked"] == 1)
        #expect(after.buffer("1.running_var")!.allSatisfy { $0 != 1 })
        #expect(evaluate() != a)
    }

    @Test func parameterNamesAndShapesFollowTorchSequential() throws {
        let h = try LayerHarness("""
            input_shape = [1, 8, 8]
            layers = [{ type = "conv2d", filters = 4, kernel = 5, padding = "same" }, { type = "batch_norm" }, { type = "relu" },
                      { type = "max_pool", size = 2 }, { type = "flatten" }, { type = "dense", units = 10 }]
            """, inputs: 64, classes: 10, batch: 2)
        #expect(h.model.parameterSpecs == [
            TensorSpec(name: "0.weight", shape: [4, 1, 5, 5], role: .weight), TensorSpec(name: "0.bias", shape: [4], role: .bias),
            TensorSpec(name: "1.weight", shape: [4], role: .norm), TensorSpec(name: "1.bias", shape: [4], role: .norm),
            TensorSpec(name: "5.weight", shape: [10, 64], role: .weight), TensorSpec(name: "5.bias", shape: [10], role: .bias),
        ])
    }

    /// A 3×3 input through a known 2×2 kernel, stride 1, no padding, against hand arithmetic.
    @Test func convolutionMatchesHandArithmetic() throws {
        let h = try LayerHarness("""
            input_shape = [1, 3, 3]
            layers = [{ type = "conv2d", filters = 1, kernel = 2 }, { type = "flatten" }, { type = "dense", units = 4 }]
            """, inputs: 9, classes: 4, batch: 1)
        let conv = h.model.layers[0]
        let w = h.arena.view(h.arena.params, h.arena.entries[0]), b = h.arena.view(h.arena.params, h.arena.entries[1])
        w[0] = 1; w[1] = 2; w[2] = 3; w[3] = 4; b[0] = 0.5
        let x: [Float] = [1, 2, 3, 4, 5, 6, 7, 8, 9]
        var y = [Float](repeating: 0, count: 4)
        let runner = LayerRunner(pool: ParallelTasks(), threads: 1, partitionRows: 32)
        x.withUnsafeBufferPointer { xs in
            y.withUnsafeMutableBufferPointer { ys in
                conv.forward(xs.baseAddress!, ys.baseAddress!, batch: 1, params: h.params, training: false, runner: runner)
            }
        }
        // y[0,0] = 1·1 + 2·2 + 3·4 + 4·5 + 0.5
        #expect(y == [37.5, 47.5, 67.5, 77.5])
    }

    @Test func configErrorsNameTheLayerAndKey() throws {
        func message(_ model: String, inputs: Int = 784) -> String {
            do {
                let c = try ExperimentConfig.parse("""
                    [data]
                    file = "unused.h5"
                    [model]
                    \(model)
                    [train]
                    steps = 1
                    [optimizer]
                    name = "sgd"
                    lr = 0.1
                    """, file: "bad.toml")
                _ = try c.model.makeModel(inputCount: inputs, outputCount: 10, maxBatch: 4)
                return "no error"
            } catch { return "\(error)" }
        }
        #expect(message(#"layers = [{ type = "dense", units = 10, kernel = 3 }]"#).contains("model.layers[0].kernel: unknown key"))
        #expect(message(#"layers = [{ type = "conv", filters = 2 }]"#).contains("model.layers[0].type: \"conv\" is not one of dense | conv2d"))
        #expect(message(#"layers = [{ type = "conv2d", filters = 2 }]"#).contains("model.layers[0].kernel: is required"))
        #expect(message(#"layers = [{ type = "dropout", rate = 1.0 }]"#).contains("model.layers[0].rate: must be below 1"))
        #expect(message(#"layers = [{ type = "dense", units = 0 }]"#).contains("model.layers[0].units"))
        #expect(message("""
            [[model.layers]]
            type = "dense"
            units = 10
            [[model.layers]]
            type = "max_pool"
            size = 2
            stride = [2, 0]
            """).contains("bad.toml:10: model.layers[1].stride: expected a positive integer or [rows, columns]"))
        #expect(message(#"layers = [{ type = "conv2d", filters = 2, kernel = 3 }, { type = "dense", units = 10 }]"#)
            .contains("model.layers[0] (conv2d) needs a [channels, height, width] input"))
        #expect(message("""
            input_shape = [1, 28, 28]
            layers = [{ type = "conv2d", filters = 2, kernel = 3 }, { type = "dense", units = 10 }]
            """).contains("model.layers[1] (dense) needs a flat input, got [2, 26, 26]; put { type = \"flatten\" } before it"))
        #expect(message("""
            input_shape = [1, 28, 28]
            layers = [{ type = "conv2d", filters = 2, kernel = 3, stride = 2, padding = "same" }]
            """).contains("model.layers[0] (conv2d): padding = \"same\" needs stride 1"))
        #expect(message("""
            input_shape = [1, 28, 27]
            layers = [{ type = "dense", units = 10 }]
            """).contains("model.input_shape [1, 28, 27] holds 756 values but the data has 784 features"))
        #expect(message(#"layers = [{ type = "dense", units = 7 }]"#)
            .contains("the last layer, model.layers[0] (dense), outputs [7] but the loss needs 10 values"))
        #expect(message(#"kind = "mlp""# + "\n" + #"layers = [{ type = "dense", units = 10 }]"#).contains("model.layers: unknown key"))
    }
}

/// Caffe's resume test for a layer model with batch norm and dropout: 2N steps in one go
/// vs N steps, a checkpoint, a new session and trainer (another thread count), N more —
/// bit-identical parameters, optimizer state, model state and metrics.
@Suite struct LayerResumeTests {
    static func config() throws -> ExperimentConfig {
        try ExperimentConfig.parse("""
            name = "layers-resume"
            seed = 5
            convention = "pytorch"
            [data]
            file = "\(repositoryRoot)/datasets/fashion-mnist-small.h5"
            batch_size = 500
            train_subset = 3000
            eval_batch_size = 2000
            [model]
            input_shape = [1, 28, 28]
            layers = [{ type = "conv2d", filters = 3, kernel = 5, stride = 3 }, { type = "batch_norm" }, { type = "relu" },
                      { type = "avg_pool", size = 2 }, { type = "flatten" }, { type = "dropout", rate = 0.3 },
                      { type = "dense", units = 12 }, { type = "batch_norm" }, { type = "gelu" }, { type = "dense", units = 10 }]
            [optimizer]
            name = "adamw"
            lr = 1e-2
            weight_decay = 1e-2
            [train]
            epochs = 2
            log_every = 4
            """, file: "layers-resume.toml")
    }

    @Test(arguments: [5, 6])
    func resumedRunEqualsUninterruptedRun(cut: Int) throws {
        let config = try Self.config()
        let whole = Scratch(), split = Scratch()
        let uninterrupted = try ResumeTests.trainer(config, whole.path, threads: 2, resume: false)
        #expect(try uninterrupted.run().status == .completed)
        let first = try ResumeTests.trainer(config, split.path, threads: 2, resume: false)
        #expect(try first.run(stopAfter: cut).step == cut)
        let second = try ResumeTests.trainer(config, split.path, threads: 1, resume: true)
        #expect(second.session.step == cut)
        #expect(try second.run().status == .completed)
        let a = try ResumeTests.snapshot(uninterrupted), b = try ResumeTests.snapshot(second)
        #expect(a.params == b.params, "parameters differ")
        #expect(a.slots == b.slots, "optimizer state differs")
        #expect(a.records == b.records, "metrics differ")
        let state = try #require(uninterrupted.session.model.state)
        #expect(state == second.session.model.state, "running statistics or dropout generator differ")
        #expect(state.counters["1.num_batches_tracked"] == 12 && state.generators["5.generator"] != nil)
        // The checkpoint is what carried the state: a fresh model starts from other statistics.
        let fresh = try TrainingSession(config: config, registry: try registryWithPlugins(), kernels: .best, threads: 1)
        #expect(fresh.model.state != state)
    }

    /// A named problem builds the documented network with the documented defaults.
    @Test func problemSuppliesModelAndDefaults() throws {
        let c = try ExperimentConfig.parse("""
            problem = "fmnist_2c2d"
            [optimizer]
            name = "adamw"
            lr = 1e-3
            """, file: "p.toml")
        #expect(c.data.batchSize == 128 && c.train.epochs == 100 && c.data.file == "datasets/fashion-mnist.h5")
        let model = try #require(try c.model.makeModel(inputCount: 784, outputCount: 10, maxBatch: 8) as? SequentialModel)
        #expect(model.parameterSpecs.map(\.name) == ["0.weight", "0.bias", "3.weight", "3.bias", "7.weight", "7.bias", "9.weight", "9.bias"])
        #expect(model.parameterSpecs.map(\.shape) == [[32, 1, 5, 5], [32], [64, 32, 5, 5], [64], [1024, 3136], [1024], [10, 1024], [10]])
        let bn = try ExperimentConfig.parse("problem = \"fmnist_2c2d_bn\"\n[train]\nsteps = 3\n[optimizer]\nname = \"sgd\"\nlr = 0.1",
                                            file: "p.toml")
        #expect(bn.train.steps == 3 && bn.train.epochs == nil)
        let roles = try bn.model.makeModel(inputCount: 784, outputCount: 10, maxBatch: 8).parameterSpecs.filter { $0.role == .norm }.map(\.name)
        #expect(roles == ["1.weight", "1.bias", "5.weight", "5.bias", "10.weight", "10.bias"])
        for p in TestProblem.all {
            // quadratic_deep's generated data have 100 features and one (unused) class.
            let quadratic = p.dataFile == SyntheticData.scheme + "quadratic_deep"
            _ = try p.modelConfig().makeModel(inputCount: quadratic ? 100 : 784, outputCount: quadratic ? 1 : 10, maxBatch: 2)
        }
        do {
            _ = try ExperimentConfig.parse("problem = \"fmnist_2c2d\"\n[model]\nkind = \"mlp\"\n[optimizer]\nname = \"sgd\"\nlr = 0.1", file: "p.toml")
            Issue.record("a [model] table beside a problem was accepted")
        } catch {
            #expect("\(error)".contains("p.toml:2: model: the problem \"fmnist_2c2d\" defines the model"))
        }
        do {
            _ = try ExperimentConfig.parse("problem = \"fmnist_3c3d\"\n[optimizer]\nname = \"sgd\"\nlr = 0.1", file: "p.toml")
            Issue.record("an unknown problem was accepted")
        } catch {
            #expect("\(error)".contains("problem: \"fmnist_3c3d\" is not one of fmnist_logreg | fmnist_mlp | fmnist_2c2d | fmnist_2c2d_bn"))
        }
    }
}

/// One training step of a small layer model against PyTorch (fixture written by
/// scripts/reference/make_layer_fixture.py): the same loss, parameter gradients and batch-norm
/// running statistics from the same weights and batch (40 samples: two partitions).
@Suite struct LayerConformanceTests {
    @Test func trainingStepMatchesPyTorch() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/layers/torch-layers.h5").path
        let f = try H5File(path)
        defer { try? f.close() }
        let config = try ExperimentConfig.parse("[data]\nfile = \"unused.h5\"\n[model]\n\(try f.stringAttribute("model"))\n[train]\nsteps = 1\n[optimizer]\nname = \"sgd\"\nlr = 0.1",
                                                file: "torch-layers.h5:model")
        let x = try f.openDataset("x").read(as: Float.self)
        let y = try f.openDataset("y").read(as: Int32.self)
        let model = try #require(try config.model.makeModel(inputCount: 128, outputCount: 5, maxBatch: 40) as? SequentialModel)
        let arena = try ParameterArena(specs: model.parameterSpecs)
        for e in arena.entries {
            let values = try f.openDataset("params/\(e.spec.name)").read(as: Float.self)
            #expect(values.count == e.count, "\(e.spec.name): shape")
            _ = arena.view(arena.params, e).update(from: values)
        }
        let params = arena.pointers(arena.params).map { UnsafePointer($0) }
        let result = x.withUnsafeBufferPointer { xs in
            y.withUnsafeBufferPointer { ys in
                model.lossAndGradients(x: xs.baseAddress!, targets: .labels(ys.baseAddress!), batch: 40, params: params,
                                       grads: arena.pointers(arena.grads), threads: 2)
            }
        }
        let loss = try f.openDataset("loss").read(as: Double.self)[0]
        #expect(abs(result.loss - loss) <= 1e-5 * abs(loss), "loss \(result.loss) vs PyTorch \(loss)")
        func close(_ a: [Float], _ b: [Float], _ what: String) {
            for i in b.indices where abs(Double(a[i]) - Double(b[i])) > 2e-6 + 1e-3 * abs(Double(b[i])) {
                Issue.record("\(what)[\(i)]: ours \(a[i]) vs PyTorch \(b[i])")
                return
            }
        }
        for e in arena.entries {
            close(Array(arena.view(arena.grads, e)), try f.openDataset("grads/\(e.spec.name)").read(as: Float.self), "gradient \(e.spec.name)")
        }
        let state = try #require(model.state)
        for name in ["1.running_mean", "1.running_var", "9.running_mean", "9.running_var"] {
            close(try #require(state.buffer(name)), try f.openDataset("buffers/\(name)").read(as: Float.self), name)
        }
    }
}
