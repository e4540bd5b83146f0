import DecoupledTraining
import Foundation
import Testing
@testable import DecoupledExperiments

/// `decoupled study --quick` on the shipped subset: the verdict's numbers are the runs' own.
@Suite struct StudyTests {
    @Test func quickStudyVerdictEqualsTheRunsMetrics() throws {
        let scratch = SweepScratch()
        let dir = scratch.file("study")
        let p = try startSweepDecoupled(["study", "--quick", "--dir", dir, "--jobs", "2"], in: scratch.path, tag: "study")
        #expect(waitForExit(p, seconds: 600) && p.terminationStatus == 0,
                "\((try? String(contentsOfFile: scratch.file("study.err"), encoding: .utf8)) ?? "")")
        let verdict = try JSONDecoder().decode(StudyVerdict.self, from: Data(contentsOf: URL(fileURLWithPath: "\(dir)/verdict.json")))
        let manifest = try SweepManifest.load(from: URL(fileURLWithPath: dir))
        #expect(Set(verdict.best.map(\.method)) == ["Adam+L2", "AdamW", "SGD+L2", "SGDW", "AdamW+L1"])
        func lastEvaluation(_ id: String) throws -> MetricRecord {
            let run = try #require(manifest.runs.first { $0.id == id })
            return try #require(try MetricsLog.read("\(dir)/\(run.dir)/metrics.jsonl").last(where: \.isEvaluation))
        }
        for b in verdict.best {
            let record = try lastEvaluation(b.run)
            #expect(record.test_acc == b.testAccuracy && record.zero_fraction == b.zeroFraction, "\(b.method)")
            // No run of the method beats its "best".
            for run in manifest.runs where run.method == b.method {
                #expect(try lastEvaluation(run.id).test_acc! <= b.testAccuracy)
            }
        }
        let l1 = try #require(verdict.l1)
        #expect(try lastEvaluation(l1.run).zero_fraction == l1.zeroFraction)
        #expect(verdict.l1AccuracyCost == verdict.best.first { $0.method == "AdamW" }!.testAccuracy - l1.testAccuracy)
        #expect(FileManager.default.fileExists(atPath: verdict.report))
        for m in ["adam-l2", "adamw", "sgd-l2", "sgdw", "adamw-l1"] {
            #expect(FileManager.default.fileExists(atPath: "\(dir)/report/heatmap-\(m).png"), "\(m)")
        }
    }
}
