import DecoupledCheckpoint
import DecoupledCore
import DecoupledHDF5
import DecoupledTraining
import Foundation
import Testing

/// The red-team items on runs: skipped steps, symbolic links, foreign checkpoints, memory,
/// warnings under --quiet, messages about non-finite values and config errors.
@Suite struct RunDirectoryHardeningTests {
    /// A tiny run on the shipped subset: 79 steps per epoch at batch 128.
    static func config(_ train: String, optimizer: String = "name = \"adamw\"\nlr = 1e-3",
                       model: String = "hidden = [8]", file: String = "small.toml",
                       overrides: [ConfigOverride] = []) throws -> ExperimentConfig {
        try ExperimentConfig.parse("""
        name = "hardening"
        seed = 5
        [data]
        file = "\(repositoryRoot)/datasets/fashion-mnist-small.h5"
        batch_size = 128
        [model]
        kind = "mlp"
        \(model)
        [optimizer]
        \(optimizer)
        [train]
        \(train)
        """, file: file, overrides: overrides)
    }

    static func trainer(_ config: ExperimentConfig, _ dir: String, resume: Bool = false, allowConfigChange: Bool = false,
                        progress: ProgressReporter = ProgressReporter(quiet: true)) throws -> Trainer {
        let session = try TrainingSession(config: config, registry: .builtIn(), kernels: .best, threads: 1)
        return try Trainer(session: session, runDirectory: dir, resume: resume, progress: progress,
                           allowConfigChange: allowConfigChange)
    }

    static func finite(_ t: Trainer) -> Bool {
        let a = t.session.arena
        return a.entries.allSatisfy { e in a.view(a.params, e).allSatisfy(\.isFinite) }
    }

    // MARK: 1. skip_step

    /// lr = 1e6 makes every step non-finite: the run must not end "completed"; it stops as
    /// diverged past train.max_skipped_steps, with the count reported, a final evaluation and
    /// a checkpoint of the (untouched, finite) parameters.
    @Test func tooManySkippedStepsEndTheRunAsDiverged() throws {
        let dir = Scratch()
        let config = try Self.config("steps = 60\nnan_policy = \"skip_step\"\nmax_skipped_steps = 5",
                                     optimizer: "name = \"adamw\"\nlr = 1e6")
        let t = try Self.trainer(config, dir.file("run"))
        let summary = try t.run()
        #expect(summary.status == .diverged, "\(summary)")
        #expect(summary.skippedSteps == 6)
        #expect(summary.reason?.contains("max_skipped_steps") == true)
        #expect(Self.finite(t))
        let records = try MetricRecord.read(dir.file("run/metrics.jsonl"))
        #expect(records.last?.skippedSteps == 6 && records.last?.isEvaluation == true, "\(records)")
        let store = try CheckpointStore(runDirectory: dir.file("run"), readOnly: true)
        #expect(store.list().first?.step == summary.step && store.list().first?.isValid == true)
    }

    /// Every batch (all 400 samples) holds the NaN sample, so every step is skipped; within
    /// the bound the run completes — but with its final evaluation and checkpoint, and the
    /// skipped steps counted in metrics and summary.
    @Test func aRunWhoseLastStepsAreSkippedIsStillEvaluatedAndSaved() throws {
        let dir = Scratch()
        try NaNPolicyTests.poisonedData(dir.file("poison.h5"))
        let config = try NaNPolicyTests.config(dataFile: dir.file("poison.h5"), batchSize: 400,
                                               train: "epochs = 3\nnan_policy = \"skip_step\"\nmax_skipped_steps = 5")
        let t = try Self.trainer(config, dir.file("run"))
        let summary = try t.run()
        #expect(summary.status == .completed && summary.step == 3 && summary.skippedSteps == 3, "\(summary)")
        let records = try MetricRecord.read(dir.file("run/metrics.jsonl"))
        #expect(records.last?.step == 3 && records.last?.isEvaluation == true && records.last?.skippedSteps == 3)
        #expect(summary.final?.step == 3)
        let store = try CheckpointStore(runDirectory: dir.file("run"), readOnly: true)
        #expect(store.list().map(\.step).contains(3))
    }

    // MARK: 2. symbolic links

    /// A run directory whose files were replaced by links to files outside it: resume refuses
    /// the linked run.lock, and after it is removed, rewrites every other file in place of its
    /// link — the files outside keep their content.
    @Test func noFileIsWrittenThroughASymbolicLink() throws {
        let dir = Scratch()
        let run = dir.file("run")
        let config = try Self.config("steps = 3")
        _ = try Self.trainer(config, run).run()
        let outside = dir.file("outside")
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        let names = ["run.lock", "config.toml", "decay_audit.txt", "metrics.jsonl", "metrics.csv", "summary.json",
                     "checkpoints/best.txt"]
        // Each link points at a copy of the file it replaces (so reading through it is harmless).
        var originals: [String: Data] = [:]
        for name in names {
            let target = (outside as NSString).appendingPathComponent(name.replacingOccurrences(of: "/", with: "_"))
            let original = FileManager.default.contents(atPath: (run as NSString).appendingPathComponent(name)) ?? Data()
            originals[name] = original
            try original.write(to: URL(fileURLWithPath: target))
            try? FileManager.default.removeItem(atPath: (run as NSString).appendingPathComponent(name))
            try FileManager.default.createSymbolicLink(atPath: (run as NSString).appendingPathComponent(name),
                                                       withDestinationPath: target)
        }
        do {
            _ = try Self.trainer(config, run, resume: true)
            Issue.record("resume locked a run directory through a linked run.lock")
        } catch {
            #expect("\(error)".contains("symbolic link") && "\(error)".contains("run.lock"), "\(error)")
        }
        try FileManager.default.removeItem(atPath: (run as NSString).appendingPathComponent("run.lock"))
        let resumed = try Self.trainer(config, run, resume: true)
        _ = try resumed.run()
        for name in names {
            let target = (outside as NSString).appendingPathComponent(name.replacingOccurrences(of: "/", with: "_"))
            #expect(FileManager.default.contents(atPath: target) == originals[name], "\(name) was written through")
        }
        for name in ["config.toml", "metrics.jsonl", "summary.json"] {
            let attributes = try FileManager.default.attributesOfItem(atPath: (run as NSString).appendingPathComponent(name))
            #expect(attributes[.type] as? FileAttributeType == .typeRegular, "\(name)")
        }
    }

    // MARK: 3. foreign checkpoints

    /// A checkpoint copied from a run with another lr is refused, naming the file and the key;
    /// --allow-config-change proceeds and re-saves it, so a plain resume works afterwards.
    @Test func aCheckpointFromAnotherRunIsRefused() throws {
        let dir = Scratch()
        let mine = try Self.config("steps = 4\ncheckpoint_every = 2")
        let other = try Self.config("steps = 6\ncheckpoint_every = 6", optimizer: "name = \"adamw\"\nlr = 0.5")
        _ = try Self.trainer(mine, dir.file("a")).run(stopAfter: 2)
        _ = try Self.trainer(other, dir.file("b")).run()
        let foreign = dir.file("a/checkpoints/ckpt-0000000006.h5")
        try FileManager.default.copyItem(atPath: dir.file("b/checkpoints/ckpt-0000000006.h5"), toPath: foreign)
        do {
            _ = try Self.trainer(mine, dir.file("a"), resume: true)
            Issue.record("a foreign checkpoint was loaded")
        } catch {
            let text = "\(error)"
            #expect(text.contains(foreign) && text.contains("optimizer.lr") && text.contains("--allow-config-change"), "\(text)")
        }
        let progress = ProgressReporter(quiet: true)
        do {
            let allowed = try Self.trainer(mine, dir.file("a"), resume: true, allowConfigChange: true, progress: progress)
            #expect(allowed.session.step == 6)
            #expect(progress.warnings.contains { $0.contains("optimizer.lr") }, "\(progress.warnings)")
        }
        // Re-saved under this run's config: the next resume takes it without the flag.
        let again = try Self.trainer(mine, dir.file("a"), resume: true)
        #expect(again.session.step == 6)
    }

    // MARK: 4. memory

    @Test func aModelLargerThanMemoryIsAClearError() throws {
        let config = try Self.config("steps = 1", overrides: [try ConfigOverride("model.hidden=[1000000,1000000]")])
        do {
            _ = try TrainingSession(config: config, registry: .builtIn(), kernels: .best, threads: 1)
            Issue.record("a 4 TB model was accepted")
        } catch {
            let text = "\(error)"
            #expect(text.contains("model.hidden") && text.contains("data.batch_size") && text.contains("GB"), "\(text)")
        }
    }

    // MARK: 5. warnings, messages, config errors

    /// The fallback warning is printed (and recorded) with --quiet too.
    @Test func fallbackWarningSurvivesQuiet() throws {
        let dir = Scratch()
        let config = try Self.config("steps = 4\ncheckpoint_every = 2")
        _ = try Self.trainer(config, dir.file("run")).run()
        let newest = dir.file("run/checkpoints/ckpt-0000000004.h5")
        let handle = try #require(FileHandle(forUpdatingAtPath: newest))
        try handle.seek(toOffset: 3000)
        try handle.write(contentsOf: Data(repeating: 0x5a, count: 64))
        try handle.close()
        let progress = ProgressReporter(quiet: true)
        let t = try Self.trainer(config, dir.file("run"), resume: true, progress: progress)
        #expect(t.session.step == 2)
        #expect(progress.warnings.contains { $0.contains("not usable") && $0.contains(newest) }, "\(progress.warnings)")
    }

    /// eps = 0 makes step 1's parameters NaN: the message counts them and does not claim a
    /// checkpoint that was never saved.
    @Test func divergenceAtStepOneCountsWhatWentNonFinite() throws {
        let dir = Scratch()
        let config = try Self.config("steps = 5", optimizer: "name = \"adamw\"\nlr = 1e-3\neps = 0")
        let progress = ProgressReporter(quiet: true)
        let summary = try Self.trainer(config, dir.file("run"), progress: progress).run()
        #expect(summary.status == .diverged)
        let reason = summary.reason ?? ""
        #expect(!reason.contains(" 0 non-finite") && reason.contains("non-finite parameter"), "\(reason)")
        #expect(progress.warnings.contains { $0.contains("no checkpoint was saved") }, "\(progress.warnings)")
        #expect(!progress.warnings.contains { $0.contains("last checkpoint") })
    }

    @Test func anOverriddenValueIsReportedAtItsSet() throws {
        let config = try Self.config("steps = 1", file: "base.toml", overrides: [try ConfigOverride("optimizer.lr=-1")])
        do {
            _ = try TrainingSession(config: config, registry: .builtIn(), kernels: .best, threads: 1)
            Issue.record("lr = -1 was accepted")
        } catch {
            let text = "\(error)"
            // Not "base.toml:16": the line the --set replaced.
            #expect(text.contains("--set optimizer.lr=-1") && text.range(of: #"base\.toml:\d"#, options: .regularExpression) == nil,
                    "\(text)")
        }
    }

    @Test func unknownTablesAndAliasKeysAreNamed() throws {
        do {
            _ = try ExperimentConfig.parse("[modle]\nkind = \"mlp\"\n[data]\nfile = \"x.h5\"\n", file: "typo.toml")
            Issue.record("[modle] was accepted")
        } catch {
            #expect("\(error)".contains("modle") && "\(error)".contains("unknown"), "\(error)")
        }
        let config = try Self.config("steps = 1", optimizer: "name = \"adamw\"\nlr = 1e-3\nbetta1 = 0.9")
        do {
            _ = try TrainingSession(config: config, registry: .builtIn(), kernels: .best, threads: 1)
            Issue.record("betta1 was accepted")
        } catch {
            #expect("\(error)".contains("'adamw'") && "\(error)".contains("weight_decay"), "\(error)")
        }
    }

    @Test func foundationErrorsBecomeMessagesNamingThePath() throws {
        let dir = Scratch()
        do {
            _ = try ExperimentConfig.load(path: dir.path)
            Issue.record("a directory was read as a config")
        } catch {
            #expect("\(error)".contains(dir.path) && "\(error)".contains("is a directory"), "\(error)")
        }
        FileManager.default.createFile(atPath: dir.file("afile"), contents: Data("x".utf8))
        do {
            _ = try Self.trainer(try Self.config("steps = 1"), dir.file("afile"))
            Issue.record("a file was used as a run directory")
        } catch {
            #expect("\(error)".contains(dir.file("afile")) && "\(error)".contains("not a directory"), "\(error)")
        }
    }

    /// A torn last metrics line is reported and kept in metrics.jsonl.torn, not dropped silently.
    @Test func aTornMetricsLineIsKeptAside() throws {
        let dir = Scratch()
        let config = try Self.config("steps = 4\ncheckpoint_every = 2\nlog_every = 1")
        _ = try Self.trainer(config, dir.file("run")).run(stopAfter: 2)
        let jsonl = dir.file("run/metrics.jsonl")
        let handle = try #require(FileHandle(forWritingAtPath: jsonl))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("{\"step\":3,\"epo".utf8))
        try handle.close()
        let progress = ProgressReporter(quiet: true)
        _ = try Self.trainer(config, dir.file("run"), resume: true, progress: progress)
        #expect(progress.warnings.contains { $0.contains("partial line") && $0.contains("metrics.jsonl.torn") }, "\(progress.warnings)")
        #expect(try String(contentsOfFile: jsonl + ".torn", encoding: .utf8) == "{\"step\":3,\"epo\n")
    }

    // MARK: data files

    @Test func inspectRefusesNonFiniteFeaturesAndTrainingNamesThem() throws {
        let dir = Scratch()
        try NaNPolicyTests.poisonedData(dir.file("poison.h5"))
        let report = try DatasetInspector.inspect(path: dir.file("poison.h5"))
        #expect(report.formatError != nil && report.text.contains("/train/x") && report.text.contains("sample 150"), "\(report.text)")
        let config = try NaNPolicyTests.config(dataFile: dir.file("poison.h5"), batchSize: 400, train: "steps = 1")
        let summary = try Self.trainer(config, dir.file("run")).run()
        #expect(summary.status == .diverged && summary.reason?.contains("data inspect") == true, "\(summary)")
    }

    @Test func anEmptyTestSplitIsRefused() throws {
        let dir = Scratch()
        let w = try DatasetWriter(path: dir.file("empty.h5"), featureType: .float32, sampleShape: [2], counts: [.train: 4, .test: 0],
                                  storage: .contiguous)
        try w.append(.train, features: [Float]([0, 1, 1, 0, 0, 1, 1, 0]), labels: [Int32]([0, 1, 0, 1]))
        try w.finish(numClasses: 2, scale: 1, source: "test", license: "test")
        let config = try NaNPolicyTests.config(dataFile: dir.file("empty.h5"), batchSize: 2, train: "steps = 1")
        do {
            _ = try TrainingSession(config: config, registry: .builtIn(), kernels: .best, threads: 1)
            Issue.record("an empty test split was accepted")
        } catch {
            #expect("\(error)".contains("empty test split"), "\(error)")
        }
    }

    /// A small file declaring 2^31 samples it never wrote is refused at open.
    @Test func declaredButUnwrittenSamplesAreRefused() throws {
        let dir = Scratch()
        let path = dir.file("hollow.h5")
        do {
            let f = try H5File(path, mode: .create)
            try f.createDataset("train/x", type: .float32, shape: [1 << 31, 4],
                                options: H5DatasetOptions(chunkShape: [1 << 16, 4])).close()
            try f.createDataset("train/y", type: .int32, shape: [1 << 31], options: H5DatasetOptions(chunkShape: [1 << 16])).close()
            try f.createDataset("test/x", values: [Float](repeating: 0, count: 8), shape: [2, 4]).close()
            try f.createDataset("test/y", values: [Int32(0), 1], shape: [2]).close()
            try f.setAttribute("num_classes", Int64(2))
            try f.close()
        }
        #expect(((try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0) < 1 << 20)
        do {
            _ = try DatasetFile(path: path)
            Issue.record("a file with 2^31 unwritten samples was accepted")
        } catch {
            #expect("\(error)".contains("/train/x") && "\(error)".contains("were ever written"), "\(error)")
        }
    }
}
