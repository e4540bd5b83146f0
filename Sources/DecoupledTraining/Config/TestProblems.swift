/// A named test problem (DeepOBS style): a model on a data set with its usual batch size and
/// length, chosen with one config key, `problem = "fmnist_2c2d"` (docs/problems.md).
///
/// The problem supplies the `[model]` table and the defaults of `data.file`,
/// `data.batch_size` and `train.epochs`; the config still chooses the optimizer, and any of
/// the defaulted keys it sets wins.
public struct TestProblem: Sendable {
    public let name: String
    /// One line for `decoupled problems list`.
    public let summary: String
    /// Where the problem's definition comes from.
    public let origin: String
    public let dataFile: String
    public let batchSize: Int
    public let epochs: Int
    /// The `[model]` table's body, in the config language.
    public let model: String

    /// Every problem, in the order `decoupled problems list` prints them.
    public static let all: [TestProblem] = [
        TestProblem(
            name: "fmnist_logreg", summary: "softmax regression 784 → 10 on Fashion-MNIST",
            origin: "DeepOBS fmnist_logreg (its weights start at 0; here Xavier uniform, biases 0)",
            dataFile: "datasets/fashion-mnist.h5", batchSize: 128, epochs: 50,
            model: #"kind = "softmax""#),
        TestProblem(
            name: "fmnist_mlp", summary: "MLP 784-1000-500-100-10, ReLU, on Fashion-MNIST",
            origin: "DeepOBS fmnist_mlp (net_mlp: truncated normal std 0.03, biases 0)",
            dataFile: "datasets/fashion-mnist.h5", batchSize: 128, epochs: 100,
            model: """
            layers = [
              \(dense(1000, std: 0.03, bias: 0)), { type = "relu" },
              \(dense(500, std: 0.03, bias: 0)), { type = "relu" },
              \(dense(100, std: 0.03, bias: 0)), { type = "relu" },
              \(dense(10, std: 0.03, bias: 0)),
            ]
            """),
        TestProblem(
            name: "fmnist_2c2d", summary: "2 conv (32, 64 @5×5 same) + max-pool, dense 1024, on Fashion-MNIST",
            origin: "DeepOBS fmnist_2c2d (net_mnist_2c2d: truncated normal std 0.05, biases 0.05)",
            dataFile: "datasets/fashion-mnist.h5", batchSize: 128, epochs: 100,
            model: twoConvTwoDense(batchNorm: false)),
        TestProblem(
            name: "fmnist_2c2d_bn", summary: "fmnist_2c2d with batch norm after each conv and the dense 1024",
            origin: "this project: fmnist_2c2d plus BatchNorm2d/BatchNorm1d (momentum 0.1, eps 1e-5) before each ReLU",
            dataFile: "datasets/fashion-mnist.h5", batchSize: 128, epochs: 100,
            model: twoConvTwoDense(batchNorm: true)),
        TestProblem(
            name: "quadratic_deep", summary: "noisy quadratic ½(θ − x)ᵀQ(θ − x) in 100 dimensions, generated data",
            origin: "DeepOBS quadratic_deep (the same Hessian and samples: NumPy RandomState 42/43, θ starts at 1)",
            dataFile: SyntheticData.scheme + "quadratic_deep", batchSize: 128, epochs: 100,
            model: #"kind = "quadratic_deep""#),
    ]

    public static func named(_ name: String) -> TestProblem? { all.first { $0.name == name } }

    private static func dense(_ units: Int, std: Double, bias: Double) -> String {
        #"{ type = "dense", units = \#(units), init = "truncated_normal", init_std = \#(std), bias_init = \#(bias) }"#
    }

    private static func twoConvTwoDense(batchNorm: Bool) -> String {
        func conv(_ filters: Int) -> String {
            #"{ type = "conv2d", filters = \#(filters), kernel = 5, padding = "same", init = "truncated_normal", init_std = 0.05, bias_init = 0.05 }"#
        }
        let norm = batchNorm ? #" { type = "batch_norm" },"# : ""
        return """
        input_shape = [1, 28, 28]
        layers = [
          \(conv(32)),\(norm) { type = "relu" }, { type = "max_pool", size = 2 },
          \(conv(64)),\(norm) { type = "relu" }, { type = "max_pool", size = 2 },
          { type = "flatten" },
          \(dense(1024, std: 0.05, bias: 0.05)),\(norm) { type = "relu" },
          \(dense(10, std: 0.05, bias: 0.05)),
        ]
        """
    }

    /// The problem's model, parsed as the config parses `[model]`.
    func modelConfig() throws -> ModelConfig {
        let reader = try ConfigReader.parse(model, file: "problem \(name)")
        return try ExperimentConfig.readModel(reader)
    }
}
