import Foundation
import Testing

/// `decoupled bench kernels` as the user runs it: each case against the probe of its own
/// traffic, and `--torch` with stand-in interpreters (no PyTorch needed). No timed assertions.
@Suite struct BenchKernelsCommandTests {
    /// A fake "python" that runs no Python: it prints `stdout` and `stderr` and exits with `status`.
    static func fakeInterpreter(_ scratch: Scratch, _ name: String, stdout: String = "", stderr: String = "",
                                status: Int32) throws -> String {
        let path = scratch.file(name)
        try """
        #!/bin/sh
        printf '%s' '\(stdout)'
        printf '%s' '\(stderr)' >&2
        exit \(status)
        """.write(toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
        return path
    }

    static func run(_ scratch: Scratch, _ args: [String], _ tag: String) throws -> (status: Int32, out: String, err: String) {
        let p = try startDecoupled(["bench", "kernels", "--sizes", "2000", "--workers", "1", "--rounds", "1",
                                    "--seconds", "0.005"] + args, in: scratch.path, tag: tag)
        #expect(waitFor(p, seconds: 60))
        return (p.terminationStatus, try String(contentsOfFile: scratch.file("\(tag).out"), encoding: .utf8),
                try String(contentsOfFile: scratch.file("\(tag).err"), encoding: .utf8))
    }

    @Test func torchWithoutTorchIsAnErrorNamingTheInterpreterAndWhatItPrinted() throws {
        let scratch = Scratch()
        let noTorch = try Self.fakeInterpreter(scratch, "python-without-torch",
                                               stderr: "Traceback (most recent call last):\nModuleNotFoundError: No module named \"torch\"\n",
                                               status: 1)
        let r = try Self.run(scratch, ["--optimizers", "sgd", "--torch", noTorch], "no-torch")
        #expect(r.status != 0)
        #expect(r.err.contains("--torch: \(noTorch) ") && r.err.contains("scripts/bench/torch_kernels.py failed (exit status 1)")
                && r.err.contains("ModuleNotFoundError: No module named \"torch\"") && r.err.contains("it needs torch"), "\(r.err)")
        #expect(!r.err.contains("Fatal error") && !r.err.contains("Traceback"), "\(r.err)")

        let missing = scratch.file("no-such-python")
        let m = try Self.run(scratch, ["--optimizers", "sgd", "--torch", missing], "missing")
        #expect(m.status != 0 && m.err.contains("--torch: cannot run \(missing)"), "\(m.err)")

        let garbage = try Self.fakeInterpreter(scratch, "python-printing-garbage", stdout: "hello\n", status: 0)
        let g = try Self.run(scratch, ["--optimizers", "sgd", "--torch", garbage], "garbage")
        #expect(g.status != 0 && g.err.contains("printed no JSON object: hello"), "\(g.err)")
    }

    @Test func everyCaseIsMeasuredAgainstTheProbeOfItsOwnTrafficAndBesideTheReference() throws {
        let scratch = Scratch()
        // 1 ms per step for each case: 500 ns/param at 2000 parameters.
        let fake = try Self.fakeInterpreter(scratch, "python-fake-torch", stdout: """
            {"torch": "fake", "threads": 1, "parameters": 2000, "seconds_per_step": \
            {"sgd": 0.001, "momentum": 0.001, "adamw": 0.001, "amsgrad": 0.001}}
            """, status: 0)
        let r = try Self.run(scratch, ["--optimizers", "sgd,momentum,adamw,amsgrad", "--torch", fake, "--json"], "json")
        #expect(r.status == 0, "\(r.err)")
        let results = try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [[String: Any]])
        let probeBytes = Dictionary(uniqueKeysWithValues: results.map { ($0["optimizer"] as? String ?? "?", $0["probeBytesPerParameter"] as? Int ?? 0) })
        #expect(probeBytes == ["sgd": 12, "momentum": 20, "adamw": 28, "amsgrad": 36], "\(r.out)")
        for result in results {
            let ours = try #require(result["nsPerParameter"] as? Double)
            let theirs = try #require(result["referenceNsPerParameter"] as? Double)
            let speedup = try #require(result["speedupOverReference"] as? Double)
            #expect(abs(theirs - 500) < 1e-9 && abs(speedup - theirs / ours) < 1e-9 * speedup, "\(result)")
            let gbs = try #require(result["gbPerSecond"] as? Double), probe = try #require(result["probeGBPerSecond"] as? Double)
            #expect(abs((result["ratioToProbe"] as? Double ?? 0) - gbs / probe) < 1e-9 * gbs / probe, "\(result)")
        }

        let missingCase = try Self.run(scratch, ["--optimizers", "nesterov", "--torch", fake], "missing-case")
        #expect(missingCase.status != 0 && missingCase.err.contains("printed no positive seconds_per_step for nesterov"), "\(missingCase)")
        let table = try Self.run(scratch, ["--optimizers", "adamw", "--torch", fake, "--rounds", "2"], "table")
        #expect(table.status == 0 && table.out.contains("medians of 2 rounds") && table.out.contains("vs torch"), "\(table)")
        let adamw = table.out.split(separator: "\n").first { $0.hasPrefix("adamw") }.map { $0.split(separator: " ").map(String.init) }
        #expect(adamw?[5] == "28B" && adamw?[8] == "500.000", "\(table.out)")
        let plain = try Self.run(scratch, ["--optimizers", "sgd,nesterov"], "plain")
        #expect(plain.status == 0, "\(plain.err)")
        let rows = plain.out.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        #expect(rows.first { $0.first == "sgd" }?[5] == "12B" && rows.first { $0.first == "nesterov" }?[5] == "20B", "\(plain.out)")
        #expect(!plain.out.contains("vs torch"), "\(plain.out)")
    }
}
