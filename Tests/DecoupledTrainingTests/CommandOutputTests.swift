import DecoupledTraining
import Foundation
import Testing

/// What `decoupled train` and `eval` print, run as the user would.
@Suite struct CommandOutputTests {
    @Test func evalJSONKeepsPathsReadable() throws {
        #expect(FileManager.default.isExecutableFile(atPath: decoupledBinary), "build with `swift build --build-tests` first")
        let scratch = Scratch()
        let configPath = scratch.file("tiny.toml")
        try """
        name = "tiny"
        seed = 3
        [data]
        file = "\(repositoryRoot)/datasets/fashion-mnist-small.h5"
        batch_size = 500
        [model]
        kind = "mlp"
        hidden = [8]
        [optimizer]
        name = "adamw"
        lr = 1e-2
        [train]
        epochs = 1
        """.write(toFile: configPath, atomically: true, encoding: .utf8)
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
}
