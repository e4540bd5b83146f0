import DecoupledTraining
import Foundation
import Testing

/// The one reader and writer of summary.json and metrics.jsonl (RunFormat.swift): the keys on
/// disk, tolerance of older versions, and errors that name the file, line and key.
@Suite struct RunFormatTests {
    /// The keys are the on-disk format (docs/run-directory.md); older run directories, reports
    /// and checkpoints' run state are read back with them. Sorted, so lines compare byte for byte.
    @Test func metricRecordLineKeepsTheDocumentedKeys() throws {
        let r = MetricRecord(step: 7, epoch: 0.5, lr: 0.25, scheduleMultiplier: 1, dataLoss: 2, penalty: 0.5, penalties: ["w/l2": 0.5],
                             totalLoss: 2.5, trainAcc: 0.75, valLoss: 3, valAcc: 0.5, testLoss: 4, testAcc: 0.25,
                             weightNorm: 8, zeroFraction: 0, stepMs: 1.5, elapsedS: 9, metrics: ["p.m": 1], skippedSteps: 0)
        let line = String(decoding: try r.jsonLine(), as: UTF8.self)
        // Slashes are not escaped ("w/l2", not "w\/l2").
        #expect(line == #"{"data_loss":2,"elapsed_s":9,"epoch":0.5,"lr":0.25,"metrics":{"p.m":1},"penalties":{"w/l2":0.5},"penalty":0.5,"schedule_multiplier":1,"skipped_steps":0,"step":7,"step_ms":1.5,"test_acc":0.25,"test_loss":4,"total_loss":2.5,"train_acc":0.75,"val_acc":0.5,"val_loss":3,"weight_norm":8,"zero_fraction":0}"# + "\n")
        // Unset keys are left out, not written as null: a record read and written back keeps its keys.
        let trainOnly = String(decoding: try MetricRecord(step: 1, epoch: 0.1, dataLoss: .nan).jsonLine(), as: UTF8.self)
        #expect(trainOnly == #"{"data_loss":"NaN","epoch":0.1,"step":1}"# + "\n")
        // The same record encodes to the same bytes every time: dictionaries inside it
        // (penalties, metrics) too, whatever their hash order in this process.
        var many = r
        many.penalties = Dictionary(uniqueKeysWithValues: (0..<40).map { ("g\($0)/l2", Double($0)) })
        let lines = try (0..<5).map { _ in try many.jsonLine() }
        #expect(Set(lines).count == 1)
        let keys = try #require(try JSONSerialization.jsonObject(with: lines[0]) as? [String: Any])
        #expect(keys.count == 19)
        let text = String(decoding: lines[0], as: UTF8.self)
        let positions = (0..<40).map { "g\($0)/l2" }.sorted().map { text.range(of: "\"\($0)\"")!.lowerBound }
        #expect(positions == positions.sorted(), "penalty keys in sorted order")
    }

    /// `eta` was renamed `schedule_multiplier` (it read as "time remaining"); logs, summaries and
    /// checkpoints' run state written before still read, and write back under the new key.
    @Test func olderEtaKeyReadsAsScheduleMultiplier() throws {
        let dir = Scratch()
        let path = dir.file("metrics.jsonl")
        try Data((#"{"step":10,"epoch":1,"eta":0.5}"# + "\n" + #"{"step":20,"epoch":2,"schedule_multiplier":0.25}"# + "\n").utf8)
            .write(to: URL(fileURLWithPath: path))
        let records = try MetricRecord.read(path)
        #expect(records.map(\.scheduleMultiplier) == [0.5, 0.25])
        #expect(String(decoding: try records[0].jsonLine(), as: UTF8.self) == #"{"epoch":1,"schedule_multiplier":0.5,"step":10}"# + "\n")
        let summary = dir.file("summary.json")
        try Data(#"{"status":"completed","final":{"step":20,"epoch":2,"eta":0.125,"test_acc":0.9}}"#.utf8).write(to: URL(fileURLWithPath: summary))
        #expect(try RunSummary.load(from: URL(fileURLWithPath: summary)).final?.scheduleMultiplier == 0.125)
    }

    @Test func metricsReaderSkipsATornLastLineAndReadsOlderRecords() throws {
        let dir = Scratch()
        let path = dir.file("metrics.jsonl")
        // A record of an older version (no val_*, penalties, metrics, skipped_steps), a null
        // test metric, a whitespace-only line, then a line cut off by a kill.
        let old = #"{"step":10,"epoch":1,"lr":0.1,"eta":1,"data_loss":0.5,"penalty":0,"total_loss":0.5,"train_acc":0.8,"test_loss":0.6,"test_acc":null,"weight_norm":3,"zero_fraction":0,"elapsed_s":2}"#
        let torn = #"{"step":30,"epoch":3,"da"#
        try Data((old + "\n \n" + #"{"step":20,"epoch":2}"# + "\n" + torn).utf8).write(to: URL(fileURLWithPath: path))
        let (records, tornBytes) = try MetricRecord.readKeepingTornLine(path)
        #expect(records.map(\.step) == [10, 20])
        #expect(records[0].testLoss == 0.6 && records[0].testAcc == nil && records[0].valLoss == nil && records[0].penalties == nil)
        #expect(records[0].isEvaluation && !records[1].isEvaluation)
        #expect(tornBytes == Data(torn.utf8))
        #expect(try MetricRecord.read(path) == records)
    }

    @Test func metricsReaderNamesFileLineAndKeyOfABadMiddleLine() throws {
        let dir = Scratch()
        let path = dir.file("metrics.jsonl")
        func error(_ text: String) throws -> FileFormatError {
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
            return try #require(throws: FileFormatError.self) { _ = try MetricRecord.read(path) }
        }
        let good = #"{"step":1,"epoch":0.5}"#
        let typed = try error(good + "\n" + #"{"step":2,"epoch":1,"test_acc":"high"}"# + "\n" + good + "\n")
        #expect(typed.file == "\(path):2" && typed.key == "test_acc" && typed.message.contains("expected a number"), "\(typed)")
        let missing = try error(#"{"epoch":1}"# + "\n" + good + "\n")
        #expect(missing.file == "\(path):1" && missing.key == "step" && missing.message == "missing", "\(missing)")
        // A bad last line that does end in its newline was written whole: damage, not a torn write.
        let whole = try error(good + "\n" + "{not json}\n")
        #expect(whole.file.hasPrefix("\(path):2") && whole.message.contains("not valid JSON"), "\(whole)")
        let absent = try #require(throws: FileFormatError.self) { _ = try MetricRecord.read(dir.file("none.jsonl")) }
        #expect(absent.file == dir.file("none.jsonl") && absent.message.contains("no such file"))
    }

    @Test func summaryRoundTripsAndRefusesUnknownStatuses() throws {
        let dir = Scratch()
        let path = dir.file("summary.json")
        let summary = RunSummary(name: "x", status: .diverged, reason: "loss nan", step: 3, epoch: 0.5, stepsTotal: 6,
                                 final: MetricRecord(step: 3, epoch: 0.5, testLoss: .infinity), wallS: 1, trainSamplesPerS: 2,
                                 kernel: "scalar", threads: 1, configHash: "00ff", skippedSteps: 0)
        try summary.write(to: path)
        #expect(try RunSummary.load(from: URL(fileURLWithPath: path)) == summary)
        let keys = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any]).keys
        #expect(Set(keys) == ["name", "status", "reason", "step", "epoch", "steps_total", "final", "wall_s", "train_samples_per_s",
                              "kernel", "threads", "config_hash", "skipped_steps"])

        // A summary the sweep runner wrote for a run that never started has a status and a reason only.
        try Data(#"{"status": "failed", "reason": "killed", "written_by": "sweep runner"}"#.utf8).write(to: URL(fileURLWithPath: path))
        let bare = try RunSummary.load(from: URL(fileURLWithPath: path))
        #expect(bare.status == .failed && bare.writtenBy == "sweep runner" && bare.step == nil)

        // "pending" is the sweep's word for no summary.json, never a written status.
        try Data(#"{"status": "pending"}"#.utf8).write(to: URL(fileURLWithPath: path))
        let e = try #require(throws: FileFormatError.self) { _ = try RunSummary.load(from: URL(fileURLWithPath: path)) }
        #expect(e.file == path && e.key == "status" && e.message == "'pending' is not one of completed, preempted, diverged, failed", "\(e)")
    }
}
