import DecoupledTraining
import Foundation
import Testing
@testable import DecoupledExperiments

/// Sweep specs: strict reading with errors at file:line:key, expansion, stable run ids, and
/// an edited spec that adds runs without losing the old ones. No processes.
@Suite struct SweepSpecTests {
    /// Parses `text` as `<scratch>/spec.toml` and expands it without writing; returns the error text.
    func failure(_ text: String, in scratch: SweepScratch) throws -> String {
        let path = scratch.file("spec.toml")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        do {
            let spec = try SweepSpec.load(path: path)
            _ = try SweepPlan(spec: spec, sweepDirectory: scratch.file("sweep"), write: false)
        } catch {
            return "\(error)"
        }
        Issue.record("expected an error for:\n\(text)")
        return ""
    }

    @Test func specErrorsNameFileLineAndKey() throws {
        let scratch = SweepScratch()
        _ = try writeTinyBase(scratch)
        let spec = scratch.file("spec.toml")
        let head = "name = \"e\"\nbase = \"base.toml\"\n"

        // Unknown keys, at the top level and in a method, list what is accepted.
        var e = try failure(head + "seed = [0, 1]\n", in: scratch)
        #expect(e.hasPrefix("\(spec):3: seed: unknown key"), "\(e)")
        #expect(e.contains("seeds"))
        e = try failure(head + "\n[[methods]]\nlabel = \"A\"\noptimiser = { name = \"adam\" }\n", in: scratch)
        #expect(e.hasPrefix("\(spec):6: methods[0].optimiser: unknown key"), "\(e)")
        #expect(e.contains("optimizer") && e.contains("regularizers"))

        // Wrong types and values.
        e = try failure(head + "lr = [1e-3, \"fast\"]\n", in: scratch)
        #expect(e.hasPrefix("\(spec):3: lr: expected numbers, found a string"), "\(e)")
        e = try failure(head + "lr = [1e-3, -1e-3]\n", in: scratch)
        #expect(e.hasPrefix("\(spec):3: lr: -0.001 is out of range; expected positive numbers"), "\(e)")
        e = try failure(head + "seeds = [0, 0]\n", in: scratch)
        #expect(e.hasPrefix("\(spec):3: seeds: 0 is listed twice"), "\(e)")
        e = try failure(head + "lr = { log_uniform = [1e-5, 1e-2] }\n", in: scratch)
        #expect(e.hasPrefix("\(spec):3: lr: needs count"), "\(e)")
        e = try failure(head + "\n[[methods]]\nlabel = \"A\"\n[[methods]]\nlabel = \"A\"\n", in: scratch)
        #expect(e.hasPrefix("\(spec):7: methods[1].label: \"A\" is also the label of methods[0]"), "\(e)")
        e = try failure("name = \"e\"\nbase = \"missing.toml\"\n", in: scratch)
        #expect(e.hasPrefix("\(spec):2: base: no such file"), "\(e)")

        // Errors in the resolved configs point at the spec line that set the value.
        e = try failure(head + "set = { \"train.epochs\" = \"ten\" }\n", in: scratch)
        #expect(e.hasPrefix("\(spec):3: set.train.epochs: expected an integer, got a string \"ten\""), "\(e)")
        e = try failure(head + "\n[[methods]]\nlabel = \"A\"\noptimizer = { name = \"adamx\" }\n", in: scratch)
        #expect(e.hasPrefix("\(spec):6: methods[0].optimizer: optimizer.name: unknown optimizer 'adamx'"), "\(e)")
        e = try failure(head + "\n[[methods]]\nlabel = \"A\"\noptimizer = { name = \"adam\", beta3 = 0.5 }\n", in: scratch)
        #expect(e.hasPrefix("\(spec):6: methods[0].optimizer: optimizer.beta3 is not a hyper-parameter"), "\(e)")
        e = try failure(head + "\n[[methods]]\nlabel = \"A\"\ndecay_key = \"regularizers[0].lambda\"\ndecay = [0.0, 1e-4]\n", in: scratch)
        #expect(e.hasPrefix("\(spec):7: methods[0].decay: regularizers[0].lambda: 'regularizers' has no element to index"), "\(e)")
        e = try failure(head + "set = { \"data.file\" = \"\(scratch.file("nothing.h5"))\" }\n", in: scratch)
        #expect(e.hasPrefix("\(spec):3: set.data.file: cannot open"), "\(e)")
        // ...and at the base's line when the base itself is wrong for a run.
        try String(contentsOfFile: scratch.file("base.toml"), encoding: .utf8)
            .replacingOccurrences(of: "hidden = [8]", with: "hidden = [8]\nwidth = 3")
            .write(toFile: scratch.file("base.toml"), atomically: true, encoding: .utf8)
        e = try failure(head, in: scratch)
        #expect(e.hasPrefix("\(scratch.file("base.toml")):9: model.width: unknown key"), "\(e)")
        #expect(e.contains("base of sweep spec \(spec)"), "\(e)")
    }

    @Test func expansionCountsAndIdsAreStable() throws {
        let scratch = SweepScratch()
        _ = try writeTinyBase(scratch)
        let text = tinySpecText(name: "x", lrs: ["1e-3", "3e-3", "1e-2"])
        let spec = try SweepSpec.parse(text: text, file: scratch.file("spec.toml"))
        let plan = try SweepPlan(spec: spec, sweepDirectory: scratch.file("sweep"), write: false)
        // 2 methods × 3 lr × 1 decay × 2 seeds.
        #expect(plan.entries.count == 12)
        #expect(Set(plan.entries.map(\.id)).count == 12)
        #expect(plan.entries.map(\.run.method) == Array(repeating: "Adam+L2", count: 6) + Array(repeating: "AdamW", count: 6))
        #expect(plan.entries.prefix(6).map(\.run.lr) == [1e-3, 1e-3, 3e-3, 3e-3, 1e-2, 1e-2])
        #expect(plan.entries.prefix(2).map(\.run.seed) == [0, 1])
        for e in plan.entries {
            #expect(e.id == String(fnv1a64Hex(e.configText).prefix(12)))
            #expect(e.id.count == 12 && e.run.dir == "runs/\(e.id)")
            let config = try ExperimentConfig.parse(e.configText, file: "resolved")
            #expect(config.seed == UInt64(e.run.seed))
            #expect(config.resolvedText == e.configText, "the stored config must read back to itself (its hash is the id)")
        }
        let adamL2 = plan.entries[0]
        #expect(adamL2.run.decay == 1e-4)
        #expect(adamL2.run.overrides["regularizers[0].lambda"] == .number(1e-4))
        #expect(adamL2.run.overrides["optimizer.name"] == .string("adam"))
        #expect(adamL2.run.overrides["optimizer.lr"] == .number(1e-3))
        #expect(adamL2.run.overrides["seed"] == .integer(0))

        // Same spec, same ids, in another process's working directory or another sweep dir.
        let again = try SweepPlan(spec: try SweepSpec.parse(text: text, file: scratch.file("spec.toml")),
                                  sweepDirectory: scratch.file("elsewhere"), write: false)
        #expect(again.entries.map(\.id) == plan.entries.map(\.id))

        // Random axes: seeded, stable, and a larger count keeps the values drawn before.
        func drawn(_ axis: String) throws -> [Double] {
            try SweepSpec.parse(text: "name = \"r\"\nbase = \"base.toml\"\nsweep_seed = 7\nlr = \(axis)\n",
                                file: scratch.file("r.toml")).lr!.values
        }
        let four = try drawn("{ log_uniform = [1e-5, 1e-2], count = 4 }")
        #expect(four.count == 4 && four.allSatisfy { $0 >= 1e-5 && $0 <= 1e-2 })
        #expect(try drawn("{ log_uniform = [1e-5, 1e-2], count = 4 }") == four)
        #expect(try Array(drawn("{ log_uniform = [1e-5, 1e-2], count = 6 }").prefix(4)) == four)
        #expect(try drawn("{ log_space = [1e-4, 1e-2], count = 3 }") == [1e-4, 1e-3, 1e-2])
        #expect(try drawn("{ log_space = [1e-4, 1e-2], count = 2, also = [5e-3] }") == [1e-4, 1e-2, 5e-3])
    }

    /// Sweep runs write TensorBoard event files unless the base or the spec decides; the
    /// default is not an override of the spec's, so the manifest does not list it.
    @Test func sweepRunsWriteTensorBoardUnlessTheConfigSaysOtherwise() throws {
        let scratch = SweepScratch()
        _ = try writeTinyBase(scratch)
        func plan(_ extra: String) throws -> [SweepPlan.Entry] {
            try SweepPlan(spec: try SweepSpec.parse(text: tinySpecText(name: "tb", lrs: ["1e-3"], seeds: [0], extra: extra),
                                                    file: scratch.file("spec.toml")),
                          sweepDirectory: scratch.file("sweep"), write: false).entries
        }
        for e in try plan("") {
            #expect(try ExperimentConfig.parse(e.configText, file: "resolved").train.tensorboard)
            #expect(e.run.overrides["train.tensorboard"] == nil)
        }
        let without = try plan("set = { \"train.tensorboard\" = false }")
        for e in without {
            #expect(try !ExperimentConfig.parse(e.configText, file: "resolved").train.tensorboard)
        }
        // A run planned before sweeps had the default (its config without the key is in
        // configs/) keeps its config and id.
        let before = try ExperimentConfig.parse(try #require(without.first).configText.replacingOccurrences(of: "tensorboard = false\n", with: ""),
                                                file: "before")
        let beforeID = String(fnv1a64Hex(before.resolvedText).prefix(12))
        try FileManager.default.createDirectory(atPath: scratch.file("sweep/configs"), withIntermediateDirectories: true)
        try before.resolvedText.write(toFile: scratch.file("sweep/configs/\(beforeID).toml"), atomically: true, encoding: .utf8)
        let kept = try plan("")
        #expect(kept.map(\.id).contains(beforeID))
        #expect(kept.first { $0.id == beforeID }?.configText == before.resolvedText)
        try (scratch.text("base.toml") + "\ntensorboard = false\n").write(toFile: scratch.file("base.toml"), atomically: true, encoding: .utf8)
        for e in try plan("") {
            #expect(try !ExperimentConfig.parse(e.configText, file: "resolved").train.tensorboard)
        }
    }

    @Test func aRerunWithAnExtraAxisValueKeepsTheOldRuns() throws {
        let scratch = SweepScratch()
        _ = try writeTinyBase(scratch)
        let dir = scratch.file("sweep")
        let first = try SweepPlan(spec: try SweepSpec.parse(text: tinySpecText(name: "x", lrs: ["1e-3", "1e-2"]),
                                                            file: scratch.file("spec.toml")), sweepDirectory: dir)
        #expect(first.manifest.runs.count == 8)
        // A run directory with results, which must survive.
        try FileManager.default.createDirectory(atPath: "\(dir)/runs/\(first.entries[0].id)", withIntermediateDirectories: true)
        try "{}".write(toFile: "\(dir)/runs/\(first.entries[0].id)/result", atomically: true, encoding: .utf8)

        // One more learning rate and one fewer seed: 2 × 3 × 1 × 1 runs, 2 of them new.
        let edited = tinySpecText(name: "x", lrs: ["1e-3", "1e-2", "3e-2"], seeds: [0])
        let second = try SweepPlan(spec: try SweepSpec.parse(text: edited, file: scratch.file("spec.toml")), sweepDirectory: dir)
        #expect(second.entries.count == 6)
        let manifest = try SweepManifest.load(from: URL(fileURLWithPath: dir))
        #expect(manifest.runs.count == 10, "8 old + 2 new")
        #expect(Array(manifest.runs.prefix(8)) == first.manifest.runs, "old runs stay first, unchanged")
        #expect(Set(manifest.runs.suffix(2).map(\.lr)) == [3e-2])
        for run in manifest.runs {
            #expect(FileManager.default.fileExists(atPath: "\(dir)/configs/\(run.id).toml"))
        }
        #expect(FileManager.default.fileExists(atPath: "\(dir)/runs/\(first.entries[0].id)/result"))
        #expect(scratch.text("sweep/sweep.toml") == edited)
        let kept = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix("sweep-") && $0.hasSuffix(".toml") }
        #expect(kept.count == 1, "the previous spec is kept: \(kept)")

        // The same spec again changes nothing.
        let before = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/manifest.json"))
        _ = try SweepPlan(spec: try SweepSpec.parse(text: edited, file: scratch.file("spec.toml")), sweepDirectory: dir)
        #expect(try Data(contentsOf: URL(fileURLWithPath: "\(dir)/manifest.json")) == before)
    }
}
