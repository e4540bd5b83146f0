import DecoupledTraining
import Foundation

/// `decoupled study` / `make run`: the AdamW paper's questions asked of Fashion-MNIST in a
/// regime where regularization matters (docs/study.md), written as one ordinary sweep spec
/// (SWEEP_DIR/study.toml) and run as one sweep, so one runner, one progress line and one ETA
/// cover it. Three parts share the sweep, told apart by their method labels:
///
/// - the paper's Figure 2: Adam + L2 vs AdamW and SGD-momentum + L2 vs SGDW over a
///   learning-rate × decay grid (`basinMethods`);
/// - the training budget (§4.3, Appendix B): Adam with normalized decoupled decay at several
///   training lengths (`budgetMethods`);
/// - coupled vs decoupled (proximal) L1 over λ₁ (`sparsityMethods`).
///
/// Every run trains on the same stratified `trainSubset` of the training split, validates on
/// `validation` samples held out of it, and is tested on the file's whole test split. Seeds
/// vary the initialisation and the batch order, not the data.
public struct StudyDesign: Codable, Equatable, Sendable {
    public var name: String
    public var dataFile: String
    public var trainSubset: Int
    public var validation: Int
    public var batchSize: Int
    public var epochs: Int
    public var evalEvery: Int
    public var seeds: [Int]
    /// Learning rates of the Adam family and of the SGD family.
    public var adamLR: [Double]
    public var sgdLR: [Double]
    /// Decay values per method, each in its own unit (see `specText`).
    public var adamL2: [Double]
    public var adamW: [Double]
    public var sgdL2: [Double]
    public var sgdW: [Double]
    /// The budget part: Adam at `budgetLR` with normalized decoupled decay λ_norm
    /// (`budgetNormalized`) for each training length in `budgetEpochs`.
    public var budgetLR: Double
    public var budgetEpochs: [Int]
    public var budgetNormalized: [Double]
    /// The sparsity part: Adam at `l1LR` with coupled L1 (g += λ₁·sign w) or decoupled
    /// proximal L1 (w ← shrink(w, η_t·λ₁)), over the same λ₁ values.
    public var l1LR: Double
    public var l1: [Double]

    /// Method labels of the Figure 2 part, as (coupled, decoupled) pairs.
    public static let basinPairs = [("Adam+L2", "AdamW"), ("SGD+L2", "SGDW")]
    public static var basinMethods: [String] { basinPairs.flatMap { [$0.0, $0.1] } }
    /// Method labels of the sparsity part: coupled, decoupled.
    public static let sparsityMethods = ("Adam+L1", "Adam+proxL1")
    /// The budget part's method label for a training length.
    public static func budgetMethod(epochs: Int) -> String { "AdamW-norm T=\(epochs)" }

    /// The decay axis of a method in its own unit, for figures and tables: the same number
    /// means a different thing in each (see `specText`). nil for a label not of this design.
    public func decayUnit(_ method: String) -> String? {
        switch method {
        case "Adam+L2", "SGD+L2": return "coupled λ (g += λ·w)"
        case "AdamW", "SGDW": return "decoupled λ (w ← w − η_t·λ·w per step)"
        case Self.sparsityMethods.0: return "coupled λ₁ (g += λ₁·sign w)"
        case Self.sparsityMethods.1: return "decoupled λ₁ (w ← shrink(w, η_t·λ₁))"
        default:
            return budgetEpochs.contains { Self.budgetMethod(epochs: $0) == method }
                ? "λ_norm (decoupled λ = λ_norm·√(b/(B·T)))" : nil
        }
    }

    /// The design is kept next to the sweep as `SWEEP_DIR/study.json`, so that `decoupled
    /// report` knows a study directory and can compute its verdict.
    public static let fileName = "study.json"

    enum CodingKeys: String, CodingKey {
        case name, seeds, epochs, validation, l1
        case dataFile = "data_file", trainSubset = "train_subset", batchSize = "batch_size", evalEvery = "eval_every"
        case adamLR = "adam_lr", sgdLR = "sgd_lr", adamL2 = "adam_l2", adamW = "adam_w", sgdL2 = "sgd_l2", sgdW = "sgd_w"
        case budgetLR = "budget_lr", budgetEpochs = "budget_epochs", budgetNormalized = "budget_normalized", l1LR = "l1_lr"
    }

    /// study.json's text: snake_case keys like the other files of a sweep.
    public func encoded() throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try e.encode(self) + Data("\n".utf8)
    }

    /// The design of the study in `sweepDirectory`; nil when it is an ordinary sweep (no
    /// study.json). A study.json that does not decode is an error naming the file and key.
    static func load(sweepDirectory: URL) throws -> StudyDesign? {
        let url = sweepDirectory.appendingPathComponent(fileName)
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        return try JSONFile.decode(StudyDesign.self, file: url, what: "study design")
    }

    /// The default study (`make run`): within 20 minutes on 2 cores, build included.
    /// 250 training samples for 180 epochs overfit without decay at every learning rate of
    /// the grid; five seeds, because with three the gap between decay and no decay for
    /// Adam + L2 stayed under 3 standard errors (docs/study.md has the pilot runs).
    public static func standard(dataFile: String) -> StudyDesign {
        StudyDesign(name: "study", dataFile: dataFile, trainSubset: 250, validation: 5000, batchSize: 128,
                    epochs: 180, evalEvery: 45, seeds: [0, 1, 2, 3, 4],
                    adamLR: [3e-5, 1e-4, 3e-4, 1e-3, 3e-3], sgdLR: [1e-3, 3e-3, 1e-2, 3e-2, 1e-1],
                    adamL2: [0, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1], adamW: [0, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2],
                    sgdL2: [0, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2], sgdW: [0, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2],
                    budgetLR: 3e-4, budgetEpochs: [60, 180, 540],
                    budgetNormalized: [0.002, 0.006, 0.02, 0.06, 0.2, 0.6],
                    l1LR: 3e-4, l1: [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3])
    }

    /// A first look within 3 minutes on 2 cores, on the shipped subset: coarser grids, two
    /// seeds (the fewest that give an interval), shorter training.
    public static func quick(dataFile: String) -> StudyDesign {
        StudyDesign(name: "study-quick", dataFile: dataFile, trainSubset: 250, validation: 2000, batchSize: 128,
                    epochs: 60, evalEvery: 20, seeds: [0, 1],
                    adamLR: [1e-4, 3e-4, 1e-3], sgdLR: [3e-3, 1e-2, 3e-2],
                    adamL2: [0, 3e-3, 3e-2], adamW: [0, 3e-4, 3e-3],
                    sgdL2: [0, 1e-3, 1e-2], sgdW: [0, 3e-4, 3e-3],
                    budgetLR: 3e-4, budgetEpochs: [20, 60, 180], budgetNormalized: [0.02, 0.08, 0.32],
                    l1LR: 3e-4, l1: [1e-4, 1e-3])
    }

    /// The larger version for a cluster (`decoupled study --full --spec-only`, then
    /// `decoupled sweep run --backend slurm`): finer grids, ten seeds, a fourth training length.
    public static func full(dataFile: String) -> StudyDesign {
        StudyDesign(name: "study-full", dataFile: dataFile, trainSubset: 250, validation: 5000, batchSize: 128,
                    epochs: 180, evalEvery: 30, seeds: Array(0..<10),
                    adamLR: [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2], sgdLR: [3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1],
                    adamL2: [0, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1], adamW: [0, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2],
                    sgdL2: [0, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1], sgdW: [0, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2],
                    budgetLR: 3e-4, budgetEpochs: [60, 180, 540, 1620],
                    budgetNormalized: [0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28],
                    l1LR: 3e-4, l1: [3e-6, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2])
    }

    /// Runs the design expands to.
    public var runCount: Int {
        let basin = adamLR.count * (adamL2.count + adamW.count) + sgdLR.count * (sgdL2.count + sgdW.count)
        return seeds.count * (basin + budgetEpochs.count * budgetNormalized.count + 2 * l1.count)
    }

    static func list(_ xs: [Double]) -> String { "[" + xs.map { "\($0)" }.joined(separator: ", ") + "]" }

    /// The sweep spec. Coupled L2 is PyTorch's (`g += λw`); the decoupled methods use the
    /// paper's convention (`w ← w − η_t·λ·w`: the decay is scaled by the schedule only, not by
    /// the learning rate), which is what makes the best λ independent of the learning rate in
    /// the paper's Figure 2. The budget part's λ is the paper's normalized λ_norm,
    /// λ = λ_norm·√(b/(B·T)) with B the training subset and T the run's epochs.
    public func specText(base: String) -> String {
        var text = """
        # Generated by `decoupled study` (docs/study.md); rerun with `decoupled sweep run` or edit and rerun.
        name  = "\(name)"
        base  = "\(base)"
        seeds = \(seeds)
        set   = { "data.file" = "\(dataFile)", "data.train_subset" = \(trainSubset), "data.validation" = \(validation), "data.batch_size" = \(batchSize), "train.epochs" = \(epochs), "train.eval_every" = \(evalEvery), "train.checkpoint_every" = 0, "schedule.name" = "cosine", "schedule.t0" = \(epochs) }

        """
        let l2 = "[ { name = \"l2\", lambda = 0.0 } ]"
        text += Self.method("Adam+L2", lr: adamLR, decay: adamL2, convention: "pytorch", optimizer: "{ name = \"adam\" }",
                            regularizers: l2)
        text += Self.method("AdamW", lr: adamLR, decay: adamW, convention: "paper", optimizer: "{ name = \"adamw\" }")
        text += Self.method("SGD+L2", lr: sgdLR, decay: sgdL2, convention: "pytorch",
                            optimizer: "{ name = \"sgd\", momentum = 0.9 }", regularizers: l2)
        text += Self.method("SGDW", lr: sgdLR, decay: sgdW, convention: "paper", optimizer: "{ name = \"sgdw\", momentum = 0.9 }")
        for t in budgetEpochs {
            text += Self.method(Self.budgetMethod(epochs: t), lr: [budgetLR], decay: budgetNormalized, convention: "paper",
                                optimizer: "{ name = \"adam\" }",
                                regularizers: "[ { name = \"weight_decay\", lambda = 0.0, scale = \"schedule\", normalized = true } ]",
                                set: "{ \"train.epochs\" = \(t), \"schedule.t0\" = \(t), \"train.eval_every\" = \(max(1, t / 4)) }")
        }
        text += Self.method(Self.sparsityMethods.0, lr: [l1LR], decay: l1, convention: "pytorch", optimizer: "{ name = \"adam\" }",
                            regularizers: "[ { name = \"l1\", lambda = 0.0 } ]")
        text += Self.method(Self.sparsityMethods.1, lr: [l1LR], decay: l1, convention: "paper", optimizer: "{ name = \"adam\" }",
                            regularizers: "[ { name = \"l1_decoupled\", lambda = 0.0, scale = \"schedule\" } ]")
        return text
    }

    /// One `[[methods]]` entry. Its decay axis sets the first regularizer's λ, or the
    /// optimizer's `weight_decay` when it has no regularizer.
    static func method(_ label: String, lr: [Double], decay: [Double], convention: String, optimizer: String,
                       regularizers: String? = nil, set: String? = nil) -> String {
        """

        [[methods]]
        label      = "\(label)"
        decay_key  = "\(regularizers == nil ? "optimizer.weight_decay" : "regularizers[0].lambda")"
        lr         = \(list(lr))
        decay      = \(list(decay))
        convention = "\(convention)"
        optimizer  = \(optimizer)
        regularizers = \(regularizers ?? "[]")

        """ + (set.map { "set        = \($0)\n" } ?? "")
    }
}
