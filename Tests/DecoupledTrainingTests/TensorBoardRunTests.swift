import DecoupledTensorBoard
import DecoupledTraining
import Foundation
import Testing

/// `train.tensorboard`: a run's event files hold exactly the scalars of its metrics.jsonl,
/// each step once, across resumes.
@Suite struct TensorBoardRunTests {
    /// 20 steps per epoch, 2 epochs, a train-only record every 7 steps; Adam + coupled L2
    /// under a cosine schedule, so lr, the schedule multiplier and a penalty all vary.
    static func config(tensorboard: Bool = true) throws -> ExperimentConfig {
        try ExperimentConfig.parse("""
        name = "tensorboard"
        seed = 5
        [optimizer]
        name = "adam"
        lr = 1e-2
        [[regularizers]]
        name = "l2"
        lambda = 1e-3
        [schedule]
        name = "cosine"
        [data]
        file = "\(repositoryRoot)/datasets/fashion-mnist-small.h5"
        batch_size = 500
        validation = 500
        [model]
        kind = "mlp"
        hidden = [8]
        [train]
        epochs = 2
        log_every = 7
        tensorboard = \(tensorboard)
        """, file: "tensorboard.toml")
    }

    static func trainer(_ config: ExperimentConfig, _ dir: String, resume: Bool, allowConfigChange: Bool = false) throws -> Trainer {
        let session = try TrainingSession(config: config, registry: .builtIn(), kernels: .best, threads: 2)
        return try Trainer(session: session, runDirectory: dir, resume: resume, progress: ProgressReporter(quiet: true),
                           allowConfigChange: allowConfigChange)
    }

    /// The scalars every metrics.jsonl record maps to, by step.
    static func metricsScalars(_ runDirectory: String) throws -> [Int64: [TensorBoardScalar]] {
        var out: [Int64: [TensorBoardScalar]] = [:]
        for r in try MetricRecord.read((runDirectory as NSString).appendingPathComponent("metrics.jsonl")) {
            #expect(out[Int64(r.step)] == nil, "metrics.jsonl has step \(r.step) twice")
            out[Int64(r.step)] = try TensorBoardLog.scalars(of: r)
        }
        return out
    }

    /// The scalars of the run's event files, by step; a step in two events is a failure.
    static func eventScalars(_ runDirectory: String) throws -> [Int64: [TensorBoardScalar]] {
        let directory = (runDirectory as NSString).appendingPathComponent(TensorBoardLog.directoryName)
        var out: [Int64: [TensorBoardScalar]] = [:]
        for file in try EventFileReader.eventFiles(in: directory) {
            for e in try EventFileReader.read(file).events.map(\.event) where e.fileVersion == nil {
                #expect(out[e.step] == nil, "step \(e.step) is in two events (the second in \(file))")
                out[e.step] = e.scalars
            }
        }
        return out
    }

    /// Equal, with NaN equal to NaN (bit patterns).
    static func same(_ a: [Int64: [TensorBoardScalar]], _ b: [Int64: [TensorBoardScalar]], ignoringTags ignored: String? = nil) -> Bool {
        func key(_ d: [Int64: [TensorBoardScalar]]) -> [Int64: [String: UInt32]] {
            d.mapValues { Dictionary(uniqueKeysWithValues: $0.filter { ignored == nil || !$0.tag.hasPrefix(ignored!) }
                .map { ($0.tag, $0.value.bitPattern) }) }
        }
        return key(a) == key(b)
    }

    @Test func eventFilesHoldTheMetricsLog() throws {
        let scratch = Scratch()
        #expect(try Self.trainer(try Self.config(), scratch.path, resume: false).run().status == .completed)
        let events = try Self.eventScalars(scratch.path)
        #expect(Self.same(events, try Self.metricsScalars(scratch.path)))
        // Independently of the tag mapping: the metrics records' values under their tags.
        let records = try MetricRecord.read(scratch.file("metrics.jsonl"))
        // Steps 7, 14, 19 (evaluation), 28, 35, 38 (evaluation): no train-only record at 21, two
        // steps after an evaluation (the trainer's followsEvaluationClosely), so 6 records.
        #expect(records.count == 6 && events.count == records.count)
        for r in records {
            let got = Dictionary(uniqueKeysWithValues: try #require(events[Int64(r.step)]).map { ($0.tag, $0.value) })
            #expect(r.lr != nil && got["optimizer/lr"] == r.lr.map(Float.init))
            #expect(r.scheduleMultiplier != nil && got["optimizer/schedule_multiplier"] == r.scheduleMultiplier.map(Float.init))
            #expect(r.weightNorm != nil && got["weights/norm"] == r.weightNorm.map(Float.init))
            #expect(r.zeroFraction != nil && got["weights/zero_fraction"] == r.zeroFraction.map(Float.init))
            #expect(got["progress/epoch"] == Float(r.epoch))
            let penalties = r.penalties ?? [:]
            #expect(penalties.count == 1)
            for (name, value) in penalties { #expect(got["loss/penalty/\(name)"] == Float(value)) }
            #expect(got["loss/test"] == r.testLoss.map(Float.init))
            #expect(got["accuracy/test"] == r.testAcc.map(Float.init))
            #expect(got["accuracy/validation"] == r.valAcc.map(Float.init))
            #expect(got["accuracy/train"] == r.trainAcc.map(Float.init))
        }
    }

    /// A run killed after logging past its checkpoint, mid-way through an event record: the
    /// resume drops the events after the checkpoint and the torn record (with a warning), so
    /// the event files end up with each step once, holding what an uninterrupted run holds.
    @Test func resumeTrimsAndNeverDuplicatesSteps() throws {
        let whole = Scratch(), split = Scratch()
        _ = try Self.trainer(try Self.config(), whole.path, resume: false).run()
        #expect(try Self.trainer(try Self.config(), split.path, resume: false).run(stopAfter: 13).status == .preempted)

        // What the killed process would have left: an event at step 14 (past the checkpoint at
        // 13), then the first bytes of another record.
        let directory = (split.path as NSString).appendingPathComponent(TensorBoardLog.directoryName)
        let extra = try EventFileWriter(directory: directory)
        try extra.write(TensorBoardEvent(wallTime: 0, step: 14, scalars: [TensorBoardScalar(tag: "loss/test", value: 9)]))
        extra.close()
        let written = try Data(contentsOf: URL(fileURLWithPath: extra.path))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: extra.path))
        handle.seekToEndOfFile()
        handle.write(written.prefix(20))
        handle.closeFile()

        // The trim, on a copy: its warning names the torn record.
        let copy = Scratch()
        try FileManager.default.copyItem(atPath: directory, toPath: copy.file(TensorBoardLog.directoryName))
        let trimmed = try TensorBoardLog.trim(runDirectory: copy.path, keepThrough: 13)
        #expect(trimmed.steps == [7])
        #expect(trimmed.warnings.count == 1 && trimmed.warnings[0].contains("partial record at byte offset \(written.count)"))

        #expect(try Self.trainer(try Self.config(), split.path, resume: true).run().status == .completed)
        let events = try Self.eventScalars(split.path)
        #expect(Self.same(events, try Self.metricsScalars(split.path)))
        #expect(Self.same(events, try Self.eventScalars(whole.path), ignoringTags: "time/"))
        // The first session's file and the resumed session's; the one holding only step 14 is gone.
        #expect(try EventFileReader.eventFiles(in: directory).count == 2)
    }

    /// TensorBoard turned on at a resume: the records logged before are written too.
    @Test func turnedOnAtResumeBackfills() throws {
        let scratch = Scratch()
        _ = try Self.trainer(try Self.config(tensorboard: false), scratch.path, resume: false).run(stopAfter: 19)
        #expect(!FileManager.default.fileExists(atPath: scratch.file(TensorBoardLog.directoryName)))
        _ = try Self.trainer(try Self.config(), scratch.path, resume: true, allowConfigChange: true).run()
        let events = try Self.eventScalars(scratch.path)
        // 19 steps per epoch (9 500 training rows, batch 500): steps 7, 14, 19 before the resume;
        // none at 21, two steps after the evaluation at 19.
        #expect(events.keys.sorted() == [7, 14, 19, 28, 35, 38])
        #expect(Self.same(events, try Self.metricsScalars(scratch.path)))
    }

    @Test func tagForEveryKey() throws {
        let r = MetricRecord(step: 3, epoch: 0.5, lr: 0.25, scheduleMultiplier: 0.5, dataLoss: 2, penalty: 0.125, penalties: ["all/l2": 0.125],
                             totalLoss: 2.125, trainAcc: 0.75, valLoss: .nan, valAcc: 0.5, testLoss: .infinity, testAcc: 0.25,
                             weightNorm: 3, zeroFraction: 0.0625, stepMs: 1.5, elapsedS: 9, metrics: ["l1.zeros": 4], skippedSteps: 1)
        let scalars = try TensorBoardLog.scalars(of: r)
        let byTag = Dictionary(uniqueKeysWithValues: scalars.map { ($0.tag, $0.value) })
        #expect(byTag.count == scalars.count)
        #expect(byTag["optimizer/schedule_multiplier"] == 0.5 && byTag["optimizer/lr"] == 0.25)
        #expect(byTag["loss/train_data"] == 2 && byTag["loss/train_total"] == 2.125 && byTag["loss/penalty"] == 0.125)
        #expect(byTag["loss/penalty/all/l2"] == 0.125 && byTag["plugin/l1.zeros"] == 4)
        #expect(byTag["loss/validation"]!.isNaN && byTag["loss/test"] == .infinity)
        #expect(byTag["accuracy/train"] == 0.75 && byTag["accuracy/validation"] == 0.5 && byTag["accuracy/test"] == 0.25)
        #expect(byTag["weights/norm"] == 3 && byTag["weights/zero_fraction"] == 0.0625)
        #expect(byTag["time/step_ms"] == 1.5 && byTag["time/elapsed_s"] == 9)
        #expect(byTag["progress/epoch"] == 0.5 && byTag["progress/skipped_steps"] == 1)
        // Every key of the line but step, once.
        let object = try #require(try JSONSerialization.jsonObject(with: try r.jsonLine()) as? [String: Any])
        let leaves = object.filter { $0.key != "step" }.map { ($0.value as? [String: Any])?.count ?? 1 }.reduce(0, +)
        #expect(scalars.count == leaves)
    }
}

extension TensorBoardRunTests {
    /// A damaged event file stops the resume with an error naming the file, the offset and
    /// what to do (it is not silently dropped or rewritten).
    @Test func damagedEventFileStopsTheResumeWithAdvice() throws {
        let scratch = Scratch()
        _ = try Self.trainer(try Self.config(), scratch.path, resume: false).run(stopAfter: 8)
        let directory = scratch.file(TensorBoardLog.directoryName)
        let file = try #require(try EventFileReader.eventFiles(in: directory).first)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: file))
        let second = try EventFileReader.read(file).events[1].offset
        bytes[second + 20] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: file))
        do {
            _ = try Self.trainer(try Self.config(), scratch.path, resume: true)
            Issue.record("the resume accepted a damaged event file")
        } catch let e as EventFileError {
            #expect(e.file == file && e.offset == second)
            #expect(e.description.contains("move this file out of \(directory)"), "\(e)")
        }
    }
}
