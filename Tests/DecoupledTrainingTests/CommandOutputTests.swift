import DecoupledTraining
import Foundation
import Testing

/// A one-epoch AdamW run of a small MLP on the shipped Fashion-MNIST subset, for the command tests.
func tinyMLPConfig(seed: Int, batchSize: Int, hidden: Int) -> String {
    """
    name = "tiny"
    seed = \(seed)
    [data]
    file = "\(repositoryRoot)/datasets/fashion-mnist-small.h5"
    batch_size = \(batchSize)
    [model]
    kind = "mlp"
    hidden = [\(hidden)]
    [optimizer]
    name = "adamw"
    lr = 1e-2
    [train]
    epochs = 1
    """
}

/// What `decoupled train` and `eval` print, run as the user would.
@Suite struct CommandOutputTests {
    @Test func evalJSONKeepsPathsReadable() throws {
        #expect(FileManager.default.isExecutableFile(atPath: decoupledBinary), "build with `swift build --build-tests` first")
        let scratch = Scratch()
        let configPath = scratch.file("tiny.toml")
        try tinyMLPConfig(seed: 3, batchSize: 500, hidden: 8).write(toFile: configPath, atomically: true, encoding: .utf8)
        let run = scratch.file("run")
        let train = try startDecoupled(["train", configPath, "--run-dir", run, "--quiet", "--threads", "1"], in: scratch.path, tag: "train")
        #expect(waitFor(train, seconds: 120) && train.terminationStatus == 0)
        let trainOut = try String(contentsOfFile: scratch.file("train.out"), encoding: .utf8)
        #expect(trainOut.hasPrefix("completed: tiny, step 20/20, final test accuracy "), "\(trainOut)")

        let eval = try startDecoupled(["eval", run, "--json"], in: scratch.path, tag: "eval")
        #expect(waitFor(eval, seconds: 120) && eval.terminationStatus == 0)
        let text = try String(contentsOfFile: scratch.file("eval.out"), encoding: .utf8)
        #expect(!text.contains("\\/") && text.contains("\"checkpoint\":\"\(run)/checkpoints/ckpt-0000000020.h5\""), "\(text)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(object["step"] as? Int == 20 && object["samples"] as? Int == 2000 && object["split"] as? String == "test")
    }

    /// `data import npy|npz|csv` as a user types them (datasets/README.md).
    @Test func dataImportCommands() throws {
        let scratch = Scratch()
        let fixtures = "\(repositoryRoot)/Tests/DecoupledHDF5Tests/Fixtures/numpy"
        func run(_ args: [String], _ tag: String) throws -> (status: Int32, out: String, err: String) {
            try runDecoupled(args, in: scratch.path, tag: tag)
        }
        let npz = try run(["data", "import", "npz", "\(fixtures)/no-test.npz", "--test-fraction", "0.25",
                           "--layout", "contiguous", "-o", scratch.file("npz.h5")], "npz")
        #expect(npz.status == 0 && npz.out.contains("9 train + 3 test samples, 6 uint8 features, 3 classes, contiguous"), "\(npz)")
        #expect(npz.err.contains("notice: \(fixtures)/no-test.npz has no 'x_test' and 'y_test'"), "\(npz.err)")
        let npy = try run(["data", "import", "npy", "--images", "\(fixtures)/x_train_f64.npy", "--labels", "\(fixtures)/y_train_col.npy",
                           "--test-images", "\(fixtures)/x_train_f64.npy", "--test-labels", "\(fixtures)/y_train.npy",
                           "--chunk-rows", "5", "-o", scratch.file("npy.h5")], "npy")
        #expect(npy.status == 0 && npy.out.contains("12 train + 12 test samples, 6 float32 features, 3 classes, chunks of 5 rows"), "\(npy)")
        let bad = try run(["data", "import", "npy", "--images", "\(fixtures)/x_train_bigendian.npy", "--labels", "\(fixtures)/y_train.npy",
                           "-o", scratch.file("bad.h5")], "bad")
        #expect(bad.status != 0 && bad.err.contains("x_train_bigendian.npy: big-endian data"), "\(bad)")
        #expect(!FileManager.default.fileExists(atPath: scratch.file("bad.h5")))

        // The iris example of `data import csv --help`.
        var iris = "sepal_length,sepal_width,petal_length,petal_width,species\n"
        for i in 0..<15 { iris += "5.\(i % 10),3.\(i % 7),1.\(i % 5),0.\(i % 3),\(["setosa", "versicolor", "virginica"][i % 3])\n" }
        try iris.write(toFile: scratch.file("iris.csv"), atomically: true, encoding: .utf8)
        let csv = try run(["data", "import", "csv", scratch.file("iris.csv"), "--label-column", "species",
                           "--test-fraction", "0.2", "--output", scratch.file("iris.h5")], "csv")
        #expect(csv.status == 0 && csv.out.contains("classes (attribute class_names): 0 setosa, 1 versicolor, 2 virginica"), "\(csv)")
        let inspect = try run(["data", "inspect", scratch.file("iris.h5")], "inspect")
        #expect(inspect.status == 0 && inspect.out.contains("class names: 0 setosa, 1 versicolor, 2 virginica"), "\(inspect)")
        let generated = try run(["data", "inspect", "synthetic:quadratic_deep"], "generated")
        #expect(generated.status != 0 && generated.err.contains("'synthetic:quadratic_deep' names a data set generated in memory"),
                "\(generated)")
    }
}
