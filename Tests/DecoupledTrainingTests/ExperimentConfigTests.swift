import DecoupledCore
@testable import DecoupledTraining
import Foundation
import Testing

/// Every way a config can be wrong gives an error naming the file, the line (or the `--set`
/// that caused it), the key, and what was expected.
@Suite struct ExperimentConfigTests {
    static let valid = """
    name = "t"
    seed = 1

    [data]
    file = "datasets/fashion-mnist-small.h5"
    batch_size = 64

    [model]
    kind = "mlp"
    hidden = [32]

    [optimizer]
    name = "adamw"
    lr = 1e-3
    weight_decay = 1e-2

    [[regularizers]]
    name = "l2"
    lambda = 1e-4

    [schedule]
    name = "cosine"
    t0 = 2

    [train]
    epochs = 2
    """

    /// Parses `text` (or `valid` with `replacing` swapped in) and returns the error.
    func error(_ text: String, overrides: [String] = []) throws -> ConfigError {
        try #require(try errorIfAny(text, overrides: overrides))
    }

    func errorIfAny(_ text: String, overrides: [String]) throws -> ConfigError? {
        do {
            let sets = try overrides.map(ConfigOverride.init)
            let config = try ExperimentConfig.parse(text, file: "exp.toml", overrides: sets)
            _ = try config.plan(registry: PluginRegistry.builtIn(),
                                tensors: [TensorSpec(name: "fc1.weight", shape: [4, 3], role: .weight), TensorSpec(name: "fc1.bias", shape: [4], role: .bias)])
        } catch let e as ConfigError {
            return e
        }
        Issue.record("expected a config error")
        return nil
    }

    func edited(_ old: String, _ new: String) -> String {
        precondition(Self.valid.contains(old), old)
        return Self.valid.replacingOccurrences(of: old, with: new)
    }

    func expect(_ e: ConfigError, line: Int?, key: String, _ fragments: String..., sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(e.file == "exp.toml" || e.file == "--set", sourceLocation: sourceLocation)
        #expect(e.line == line, "\(e)", sourceLocation: sourceLocation)
        #expect(e.key == key, "\(e)", sourceLocation: sourceLocation)
        for f in fragments { #expect(e.description.contains(f), "'\(f)' not in: \(e)", sourceLocation: sourceLocation) }
    }

    @Test func validConfigParses() throws {
        let c = try ExperimentConfig.parse(Self.valid, file: "exp.toml")
        #expect(c.name == "t" && c.seed == 1 && c.data.batchSize == 64 && c.model.hidden == [32])
        #expect(c.train.epochs == 2 && c.train.steps == nil && c.train.nanPolicy == .stop)
        #expect(c.optimization.regularizers.map(\.name) == ["l2"])
        #expect(c.train.flushSubnormals, "training flushes subnormals unless told not to")
    }

    @Test func flushSubnormalsIsABoolean() throws {
        #expect(try !ExperimentConfig.parse(edited("epochs = 2", "epochs = 2\nflush_subnormals = false"), file: "exp.toml")
            .train.flushSubnormals)
        #expect(try !ExperimentConfig.parse(Self.valid, file: "exp.toml", overrides: [ConfigOverride("train.flush_subnormals=false")])
            .train.flushSubnormals)
        expect(try error(edited("epochs = 2", "epochs = 2\nflush_subnormals = \"yes\"")), line: 27, key: "train.flush_subnormals",
               "expected true or false, got a string")
        expect(try error(edited("epochs = 2", "epochs = 2\nflush_subnormals = 1")), line: 27, key: "train.flush_subnormals",
               "expected true or false")
    }

    @Test func syntaxErrorNamesLineAndColumn() throws {
        let e = try error(edited("batch_size = 64", "batch_size = = 64"))
        expect(e, line: 6, key: "", "TOML syntax error", "column")
    }

    @Test func missingTables() throws {
        expect(try error(edited("[data]\nfile = \"datasets/fashion-mnist-small.h5\"\nbatch_size = 64\n", "")),
               line: nil, key: "data", "is required", "[data]")
        expect(try error(edited("[model]\nkind = \"mlp\"\nhidden = [32]\n", "")), line: nil, key: "model", "[model]")
        expect(try error(edited("[train]\nepochs = 2", "")), line: nil, key: "train", "epochs = N")
        expect(try error(edited("[optimizer]\nname = \"adamw\"\nlr = 1e-3\nweight_decay = 1e-2\n", "")),
               line: nil, key: "optimizer", "[optimizer]")
        expect(try error(edited("file = \"datasets/fashion-mnist-small.h5\"\n", "")), line: 4, key: "data.file", "is required")
    }

    @Test func unknownKeysListWhatIsAccepted() throws {
        expect(try error("colour = 1\n" + Self.valid), line: 1, key: "colour", "unknown key", "the top level accepts", "optimizer")
        expect(try error(edited("epochs = 2", "epochs = 2\nepoch_count = 3")), line: 27, key: "train.epoch_count",
               "unknown key", "[train] accepts", "eval_every")
        expect(try error(edited("hidden = [32]", "hidden = [32]\ndropout = 0.5")), line: 11, key: "model.dropout", "unknown key")
    }

    @Test func wrongTypes() throws {
        expect(try error(edited("batch_size = 64", "batch_size = \"64\"")), line: 6, key: "data.batch_size",
               "expected an integer, got a string")
        expect(try error(edited("hidden = [32]", "hidden = 32")), line: 10, key: "model.hidden", "expected an array of integers")
        expect(try error(edited("epochs = 2", "epochs = 2.5")), line: 26, key: "train.epochs", "expected an integer")
        expect(try error(edited("seed = 1", "seed = true")), line: 2, key: "seed", "expected an integer, got a boolean")
    }

    @Test func outOfRangeValues() throws {
        expect(try error(edited("batch_size = 64", "batch_size = 0")), line: 6, key: "data.batch_size", "≥ 1")
        expect(try error(edited("hidden = [32]", "hidden = [32, -4]")), line: 10, key: "model.hidden", "positive", "-4")
        expect(try error(edited("epochs = 2", "epochs = 2\neval_every = 0")), line: 27, key: "train.eval_every", "≥ 1")
        expect(try error(edited("seed = 1", "seed = -1")), line: 2, key: "seed", "≥ 0")
    }

    @Test func choicesNameTheAllowedValues() throws {
        expect(try error(edited("kind = \"mlp\"", "kind = \"cnn\"")), line: 9, key: "model.kind", "\"cnn\" is not one of mlp | softmax | linear")
        expect(try error(edited("epochs = 2", "epochs = 2\nnan_policy = \"ignore\"")), line: 27, key: "train.nan_policy",
               "stop | skip_step | rollback")
        expect(try error("convention = \"tensorflow\"\n" + Self.valid), line: 1, key: "convention", "pytorch | keras")
    }

    @Test func lengthIsEpochsOrSteps() throws {
        expect(try error(edited("epochs = 2", "epochs = 2\nsteps = 100")), line: 27, key: "train.steps", "exactly one of")
        expect(try error(edited("epochs = 2", "eval_every = 1")), line: 25, key: "train.epochs", "exactly one of")
    }

    @Test func pluginErrorsPointAtTheirLine() throws {
        let unknown = try error(edited("name = \"adamw\"", "name = \"adamx\""))
        #expect(unknown.line == 13 && unknown.description.contains("adamw"), "\(unknown)")
        let range = try error(edited("lr = 1e-3", "lr = -1e-3"))
        #expect(range.line == 14 && range.description.contains("lr"), "\(range)")
        let key = try error(edited("lambda = 1e-4", "lambda = 1e-4\nlamda = 2"))
        #expect(key.line == 20 && key.description.contains("lamda") && key.description.contains("lambda"), "\(key)")
        let schedule = try error(edited("name = \"cosine\"", "name = \"cosin\""))
        #expect(schedule.line == 22 && schedule.description.contains("cosine"), "\(schedule)")
    }

    @Test func overridesApplyAndTheirErrorsNameTheSet() throws {
        let c = try ExperimentConfig.parse(Self.valid, file: "exp.toml",
                                           overrides: [try ConfigOverride("optimizer.lr=3e-4"), try ConfigOverride("train.epochs=5"),
                                                       try ConfigOverride("regularizers[0].lambda=0"), try ConfigOverride("optimizer.name=adam")])
        #expect(c.optimization.optimizer.params["lr"] == .number(3e-4))
        #expect(c.optimization.optimizer.name == "adam")
        #expect(c.train.epochs == 5)
        #expect(c.optimization.regularizers[0].params["lambda"] == .number(0))
        #expect(c.resolvedText.contains("lr = 0.0003") && c.resolvedText.contains("epochs = 5"))

        let typed = try error(Self.valid, overrides: ["data.batch_size=big"])
        expect(typed, line: nil, key: "data.batch_size", "expected an integer, got a string", "--set data.batch_size=\"big\"")
        #expect(throws: ConfigError.self) { try ConfigOverride("no-equals-sign") }
        #expect(throws: ConfigError.self) { try ConfigOverride("a..b=1") }
        let index = try error(Self.valid, overrides: ["regularizers[3].lambda=1"])
        #expect(index.description.contains("out of range") && index.description.contains("1 element"), "\(index)")
        let unknown = try error(Self.valid, overrides: ["train.epoks=3"])
        #expect(unknown.key == "train.epoks" && unknown.description.contains("unknown key"), "\(unknown)")
    }

    @Test func resolvedTextRoundTrips() throws {
        let c = try ExperimentConfig.parse(Self.valid, file: "exp.toml")
        let again = try ExperimentConfig.parse(c.resolvedText, file: "config.toml")
        #expect(again.resolvedText == c.resolvedText)
        #expect(again.optimization.optimizer.params == c.optimization.optimizer.params)
    }

    @Test func missingDataFileNamesItAndTheFix() throws {
        let c = try ExperimentConfig.parse(edited("datasets/fashion-mnist-small.h5", "datasets/fashion-mnist.h5"), file: "exp.toml",
                                           overrides: [try ConfigOverride("data.file=/nonexistent/fashion-mnist.h5")])
        do {
            _ = try TrainingSession(config: c, registry: .builtIn(), kernels: .best)
            Issue.record("expected an error")
        } catch {
            let text = "\(error)"
            #expect(text.contains("/nonexistent/fashion-mnist.h5") && text.contains("make data"), "\(text)")
        }
    }

    /// The checkout: examples/ and datasets/.
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    /// The shipped experiment configs: examples/*.toml but the sweep and replay specs.
    static let shippedConfigs: [String] = ((try? FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("examples").path)) ?? [])
        .filter { $0.hasSuffix(".toml") && !$0.hasPrefix("sweep-") && !$0.hasPrefix("replay-") }.sorted()

    @Test func theShippedConfigsAreFound() {
        #expect(Self.shippedConfigs.count >= 8, "examples/: \(Self.shippedConfigs)")
    }

    /// Every shipped experiment config loads, and its model builds against its data, with the
    /// shipped external plugins as `decoupled` offers them: on the shipped subset when it names
    /// Fashion-MNIST (CI has no full copy), on its generated data otherwise.
    @Test(arguments: shippedConfigs)
    func aShippedConfigBuildsItsSession(name: String) throws {
        let path = Self.root.appendingPathComponent("examples/\(name)").path
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let subset = text.contains("quadratic_deep") ? [] : [try ConfigOverride("data.file=\(Self.root.path)/datasets/fashion-mnist-small.h5")]
        let config = try ExperimentConfig.load(path: path, overrides: subset)
        _ = try TrainingSession(config: config, registry: try ConformanceTests.registry(), kernels: .best)
    }

    @Test func modelThatDoesNotFitTheDataIsAConfigError() throws {
        let c = try ExperimentConfig.parse(edited("kind = \"mlp\"", "kind = \"softmax\""), file: "exp.toml",
                                           overrides: [try ConfigOverride("data.file=\(Self.root.path)/datasets/fashion-mnist-small.h5")])
        do {
            _ = try TrainingSession(config: c, registry: .builtIn(), kernels: .best)
            Issue.record("expected an error")
        } catch let e as ConfigError {
            #expect(e.key == "model" && e.line == 8 && e.description.contains("hidden"), "\(e)")
        }
    }

    @Test func validationAndSubsetKeys() throws {
        let c = try ExperimentConfig.parse(edited("batch_size = 64", "batch_size = 64\ntrain_subset = 500\nvalidation = 0.25\nsplit_seed = 3"),
                                           file: "exp.toml")
        #expect(c.data.trainSubset == 500 && c.data.validation == .fraction(0.25) && c.data.splitSeed == 3)
        let d = try ExperimentConfig.parse(Self.valid, file: "exp.toml", overrides: [try ConfigOverride("data.validation=2000")])
        #expect(d.data.validation == .count(2000) && d.data.trainSubset == nil && d.data.selectsRows)
        #expect(!(try ExperimentConfig.parse(Self.valid, file: "exp.toml")).data.selectsRows)
        expect(try error(edited("batch_size = 64", "batch_size = 64\nvalidation = 1.5")), line: 7, key: "data.validation", "(0, 1)")
        expect(try error(edited("batch_size = 64", "batch_size = 64\nvalidation = 0")), line: 7, key: "data.validation", "≥ 1")
        expect(try error(edited("batch_size = 64", "batch_size = 64\nvalidation = \"10%\"")), line: 7, key: "data.validation",
               "a count of samples", "a fraction")
        expect(try error(edited("batch_size = 64", "batch_size = 64\ntrain_subset = 0")), line: 7, key: "data.train_subset")
    }

    @Test func aSubsetLargerThanTheSplitIsAConfigErrorNamingTheFile() throws {
        let c = try ExperimentConfig.parse(Self.valid, file: "exp.toml",
                                           overrides: [try ConfigOverride("data.file=\(Self.root.path)/datasets/fashion-mnist-small.h5"),
                                                       try ConfigOverride("data.validation=2000"),
                                                       try ConfigOverride("data.train_subset=9000")])
        do {
            _ = try TrainingSession(config: c, registry: .builtIn(), kernels: .best)
            Issue.record("expected an error")
        } catch let e as ConfigError {
            #expect(e.key == "data" && e.description.contains("train_subset") && e.description.contains("1...8000")
                    && e.description.contains("fashion-mnist-small.h5"), "\(e)")
        }
    }

    /// A relative data.file: the working directory, next to the config, then the shipped files;
    /// none existing, the working directory's path with every place tried.
    @Test func relativeDataPathsResolveInOrderAndNameWhereTheyLooked() throws {
        let top = NSTemporaryDirectory() + "dc-resolve-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: top) }
        for d in ["cwd", "configs/datasets", "share/datasets"] {
            try FileManager.default.createDirectory(atPath: "\(top)/\(d)", withIntermediateDirectories: true)
        }
        for f in ["configs/datasets/near.h5", "share/datasets/near.h5", "share/datasets/shipped.h5", "cwd/here.h5"] {
            FileManager.default.createFile(atPath: "\(top)/\(f)", contents: Data())
        }
        func resolve(_ p: String) -> (path: String, searched: [String]) {
            ExperimentConfig.resolve(p, configFile: "\(top)/configs/x.toml", workingDirectory: "\(top)/cwd", resourceRoot: "\(top)/share")
        }
        #expect(resolve("here.h5").path == "\(top)/cwd/here.h5")
        #expect(resolve("datasets/near.h5").path == "\(top)/configs/datasets/near.h5")
        #expect(resolve("datasets/shipped.h5").path == "\(top)/share/datasets/shipped.h5")
        let missing = resolve("datasets/none.h5")
        #expect(missing.path == "\(top)/cwd/datasets/none.h5")
        #expect(missing.searched == ["\(top)/cwd/datasets/none.h5", "\(top)/configs/datasets/none.h5", "\(top)/share/datasets/none.h5"])
        #expect(resolve("/abs/x.h5").path == "/abs/x.h5")
    }
}
