import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
@testable import DecoupledExperiments

// `decoupled report` on a synthetic sweep written here: 2 methods × 3 learning rates × 3
// decays (0 included) × 2 seeds, with one failed, one diverged and one pending run, metrics
// that look like training (falling loss, a test error minimum before the last epoch, train-only
// log records, penalties, NaN written as a string) and the manifest as the runner writes it.

/// A fresh directory per test, removed afterwards (file-private: other suites of this target
/// may bring their own).
fileprivate final class TempDir {
    let url: URL
    init() {
        url = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("decoupled-report-test-" + UUID().uuidString)
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(at: url) }
}

/// The synthetic sweep: what was written, so tests compare the report against it.
struct SyntheticSweep {
    struct Run {
        let id: String, method: String, lr: Double, decay: Double, seed: Int
        var dir: String { "runs/\(id)" }
    }
    static let methods = ["AdamW", "Adam+L2"]
    static let lrs = [1e-4, 1e-3, 1e-2]
    static let decays = [0, 1e-3, 1e-2]
    static let epochs = 10

    let directory: URL
    var runs: [Run] = []
    /// Every summary.json written, by run id, as the dictionaries that were serialized: the
    /// exact Doubles. (Reading them back with JSONSerialization would not do: on Linux it
    /// parses some decimals one ulp off, where JSONDecoder rounds correctly.)
    private(set) var summaries: [String: [String: Any]] = [:]
    /// The (method, lr, decay, seed) of the runs that do not complete.
    static let failed = ("AdamW", 1e-2, 1e-2, 1), diverged = ("Adam+L2", 1e-2, 0.0, 0), pending = ("Adam+L2", 1e-2, 0.0, 1)

    /// The final test error the synthetic run converges to: a bowl in (log lr, log λ), axis-
    /// aligned for the decoupled method and diagonal for L2 (the paper's picture), plus seed noise.
    static func finalError(_ method: String, _ lr: Double, _ decay: Double, _ seed: Int) -> Double {
        let x = log10(lr) + 3, y = (decay == 0 ? -4 : log10(decay)) + 2
        let noise = (seed == 0 ? 1.0 : -1.0) * 0.002 * (1 + x * x)
        return method == "AdamW" ? 0.11 + 0.03 * x * x + 0.008 * y * y + noise
                                 : 0.125 + 0.02 * (x + y) * (x + y) + 0.01 * y * y + noise
    }

    /// Test error after epoch `t`: falling towards the final error, with a dip at epoch 8 so
    /// the best error (and its epoch) differs from the final one.
    static func testError(_ final: Double, _ t: Int) -> Double {
        final + 0.3 * exp(-0.7 * Double(t)) - (t == 8 ? 0.004 : 0)
    }

    init(at directory: URL, omitRunDirectory: Bool = false) throws {
        self.directory = directory
        var i = 0
        for m in Self.methods { for lr in Self.lrs { for d in Self.decays { for s in 0..<2 {
            runs.append(Run(id: String(format: "%012llx", 0x3f9a1c2b7d10 + UInt64(i) * 7919), method: m, lr: lr, decay: d, seed: s))
            i += 1
        } } } }
        // The manifest as the contract spells it, written by hand rather than by SweepManifest,
        // so the decoder is tested against the format and not against its own encoder.
        let runsJSON = runs.map { r in
            let key = r.method == "AdamW" ? "optimizer.weight_decay" : "regularizers.l2"
            return """
                { "id": "\(r.id)", "dir": "\(r.dir)", "method": "\(r.method)", "lr": \(r.lr), "decay": \(r.decay), "seed": \(r.seed),
                  "overrides": { "optimizer.lr": \(r.lr), "\(key)": \(r.decay), "seed": \(r.seed) } }
            """
        }.joined(separator: ",\n")
        try write("manifest.json", "{ \"format_version\": 1, \"name\": \"study\", \"spec\": \"sweep.toml\",\n  \"runs\": [\n\(runsJSON)\n  ] }\n")
        for (k, r) in runs.enumerated() {
            if omitRunDirectory && k == 5 { continue }
            try FileManager.default.createDirectory(at: directory.appendingPathComponent(r.dir), withIntermediateDirectories: true)
            if let summary = try writeRun(r) { summaries[r.id] = summary }
        }
    }

    func write(_ path: String, _ text: String) throws {
        try Data(text.utf8).write(to: directory.appendingPathComponent(path))
    }

    func json(_ object: Any) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }

    static func matches(_ r: Run, _ t: (String, Double, Double, Int)) -> Bool {
        r.method == t.0 && r.lr == t.1 && r.decay == t.2 && r.seed == t.3
    }

    /// metrics.jsonl and summary.json of one run, as docs/run-directory.md describes them;
    /// returns the summary written (nil for the pending run).
    func writeRun(_ r: Run) throws -> [String: Any]? {
        let final = Self.finalError(r.method, r.lr, r.decay, r.seed)
        let stepsPerEpoch = 40
        let l2 = r.method == "Adam+L2"
        var records: [[String: Any]] = []
        var evals: [[String: Any]] = []
        let lastEpoch = Self.matches(r, Self.failed) ? 3 : Self.matches(r, Self.pending) ? 1 : Self.epochs
        for t in 1...lastEpoch {
            // A train-only record half-way through the epoch (train.log_every), no test keys.
            let half = Double(t) - 0.5
            let halfLoss = final * 2 + 1.6 * exp(-0.5 * half)
            records.append(["step": Int(half * Double(stepsPerEpoch)), "epoch": half, "lr": r.lr, "eta": 1.0,
                            "data_loss": halfLoss, "penalty": l2 ? r.decay * 40 : 0.0, "total_loss": halfLoss + (l2 ? r.decay * 40 : 0),
                            "train_acc": 0.9 - 0.3 * exp(-0.5 * half), "test_loss": NSNull(), "test_acc": NSNull(),
                            "weight_norm": 20.0, "zero_fraction": 0.0, "step_ms": 1.5, "elapsed_s": half * 2])
            let loss = final * 2 + 1.6 * exp(-0.5 * Double(t))
            let penalty = l2 ? r.decay * 40 : 0.0
            var rec: [String: Any] = ["step": t * stepsPerEpoch, "epoch": Double(t), "lr": r.lr, "eta": 1.0,
                                      "data_loss": loss, "penalty": penalty, "total_loss": loss + penalty,
                                      "train_acc": 0.9 - 0.3 * exp(-0.5 * Double(t)),
                                      "test_loss": loss * 1.1, "test_acc": 1 - Self.testError(final, t),
                                      "weight_norm": 20 - r.decay * 100, "zero_fraction": r.method == "AdamW" ? 0.0005 * Double(r.seed + 1) : 0.0,
                                      "step_ms": 1.5, "elapsed_s": Double(t) * 2,
                                      "penalties": l2 ? ["weights/l2": penalty] : [:], "metrics": [:]]
            if Self.matches(r, Self.diverged) && t == lastEpoch {
                rec["data_loss"] = "NaN"; rec["total_loss"] = "NaN"; rec["test_loss"] = "NaN"; rec["test_acc"] = 0.1
            }
            records.append(rec)
            evals.append(rec)
        }
        var lines = try records.map { try json($0) }.joined(separator: "\n") + "\n"
        if Self.matches(r, Self.pending) {
            lines += "{\"step\": 60, \"epoch\": 1.5, \"data_lo"  // being appended right now
            try write(r.dir + "/metrics.jsonl", lines)
            return nil  // no summary.json: pending
        }
        try write(r.dir + "/metrics.jsonl", lines)
        var summary: [String: Any] = ["name": "\(r.method)-\(r.id)", "step": lastEpoch * stepsPerEpoch, "epoch": Double(lastEpoch),
                                      "steps_total": Self.epochs * stepsPerEpoch, "wall_s": 20.0 + Double(r.seed) + r.lr * 1000,
                                      "train_samples_per_s": 98765.0, "kernel": "avx2", "threads": 2, "config_hash": "ab12"]
        if Self.matches(r, Self.failed) {
            summary["status"] = "failed"; summary["reason"] = "data file vanished, \"train.h5\""
            summary["final"] = NSNull(); summary["best"] = NSNull()
        } else {
            summary["status"] = Self.matches(r, Self.diverged) ? "diverged" : "completed"
            summary["reason"] = Self.matches(r, Self.diverged) ? "loss is NaN at step 400" : NSNull()
            summary["final"] = evals.last!
            summary["best"] = evals.min { ($0["test_acc"] as! Double) > ($1["test_acc"] as! Double) }!
        }
        try write(r.dir + "/summary.json", try json(summary))
        return summary
    }

    /// The completed runs' metric for one setting, computed from what was written.
    func expectedSetting(_ method: String, _ lr: Double, _ decay: Double, best: Bool) -> [Double] {
        runs.filter { $0.method == method && $0.lr == lr && $0.decay == decay }
            .filter { r in ![Self.failed, Self.diverged, Self.pending].contains { Self.matches(r, $0) } }
            .map { r in
                let f = Self.finalError(r.method, r.lr, r.decay, r.seed)
                let errors = (1...Self.epochs).map { 1 - (1 - Self.testError(f, $0)) }
                return best ? errors.min()! : errors.last!
            }
    }
}

/// An RFC 4180 CSV parser (quoted fields with "" escapes), enough to read the report back.
fileprivate func parseCSV(_ text: String) -> [[String: String]] {
    var rows: [[String]] = [], row: [String] = [], field = "", quoted = false
    var it = Array(text).makeIterator()
    var pending: Character? = nil
    while let c = pending ?? it.next() {
        pending = nil
        if quoted {
            if c == "\"" {
                if let n = it.next() { if n == "\"" { field.append("\"") } else { quoted = false; pending = n } } else { quoted = false }
            } else { field.append(c) }
        } else if c == "\"" { quoted = true }
        else if c == "," { row.append(field); field = "" }
        else if c == "\n" { row.append(field); rows.append(row); row = []; field = "" }
        else { field.append(c) }
    }
    guard let header = rows.first else { return [] }
    return rows.dropFirst().map { Dictionary(uniqueKeysWithValues: zip(header, $0)) }
}

/// Checks a PNG's signature and IHDR chunk; returns (width, height).
fileprivate func pngSize(_ url: URL) throws -> (Int, Int) {
    let d = [UInt8](try Data(contentsOf: url))
    #expect(d.count > 1000, "\(url.lastPathComponent) is only \(d.count) bytes")
    #expect(Array(d.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], "\(url.lastPathComponent): no PNG signature")
    #expect(Array(d[8..<16]) == [0, 0, 0, 13] + Array("IHDR".utf8), "\(url.lastPathComponent): first chunk is not IHDR")
    #expect(Array(d.suffix(8).prefix(4)) == Array("IEND".utf8), "\(url.lastPathComponent): does not end with IEND")
    func be32(_ o: Int) -> Int { d[o..<(o + 4)].reduce(0) { $0 << 8 | Int($1) } }
    return (be32(16), be32(20))
}

/// Parses an SVG as XML and returns its root element's name.
fileprivate func svgRoot(_ url: URL) throws -> String? {
    #if canImport(FoundationXML) || os(macOS)
    return try XMLDocument(contentsOf: url, options: []).rootElement()?.name
    #else
    return nil
    #endif
}

fileprivate func expectError(_ fragments: [String], sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
    do {
        try body()
        Issue.record("expected an error containing \(fragments), got none", sourceLocation: sourceLocation)
    } catch {
        let text = "\(error)"
        for f in fragments where !text.contains(f) {
            Issue.record("error \"\(text)\" does not contain \"\(f)\"", sourceLocation: sourceLocation)
        }
    }
}

@Suite struct ReportTests {
    @Test func fullReportDrawsEveryFigureAndLinksIt() throws {
        let tmp = TempDir()
        let sweep = try SyntheticSweep(at: tmp.url)
        let result = try SweepReport.generate(sweepDirectory: tmp.url)
        #expect(result.plotError == nil, "\(result.plotError.map { "\($0)" } ?? "")")
        #expect(result.warnings.isEmpty, "\(result.warnings)")
        let out = tmp.url.appendingPathComponent("report")
        // DECOUPLED_KEEP_REPORT=DIR keeps a copy of the sweep and its report, to look at the figures.
        if let keep = ProcessInfo.processInfo.environment["DECOUPLED_KEEP_REPORT"] {
            try? FileManager.default.removeItem(atPath: keep)
            try FileManager.default.copyItem(at: tmp.url, to: URL(fileURLWithPath: keep))
        }
        #expect(result.outputDirectory.standardizedFileURL == out.standardizedFileURL)

        for f in ["summary.md", "summary.csv", "summary-by-setting.csv", "index.html",
                  "heatmap-adamw.png", "heatmap-adamw.svg", "heatmap-adam-l2.png", "heatmap-adam-l2.svg",
                  "curves-test-error.png", "curves-test-error.svg", "curves-train-loss.png", "curves-train-loss.svg"] {
            #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent(f).path), "\(f) missing")
        }
        for url in result.files { #expect(FileManager.default.fileExists(atPath: url.path), "\(url.path) reported but missing") }

        // One heatmap per method, and nothing else called heatmap.
        let listing = try FileManager.default.contentsOfDirectory(atPath: out.path)
        #expect(listing.filter { $0.hasPrefix("heatmap-") && $0.hasSuffix(".png") }.sorted() == ["heatmap-adam-l2.png", "heatmap-adamw.png"])
        #expect(listing.filter { $0.hasPrefix("heatmap-") && $0.hasSuffix(".svg") }.count == SyntheticSweep.methods.count)

        let pngs = result.figures.filter { $0.pathExtension == "png" }
        let svgs = result.figures.filter { $0.pathExtension == "svg" }
        #expect(pngs.count == 4 && svgs.count == 4)
        for png in pngs {
            let (w, h) = try pngSize(png)
            #expect((400...4000).contains(w) && (300...4000).contains(h), "\(png.lastPathComponent): \(w)×\(h)")
        }
        for svg in svgs {
            if let root = try svgRoot(svg) { #expect(root == "svg", "\(svg.lastPathComponent): root <\(root)>") }
            let text = try String(contentsOf: svg, encoding: .utf8)
            #expect(text.contains("</svg>"))
        }
        // The heatmap says what it shows, on which axes, and prints the values.
        let heat = try String(contentsOf: out.appendingPathComponent("heatmap-adamw.svg"), encoding: .utf8)
        for s in ["AdamW: final test error (%)", "learning rate (log-spaced)", "weight decay / L2 λ (log-spaced", "test error (%)",
                  ">1e-4<", ">1e-3<", ">1e-2<", ">0<", "red outline", "1 of 2 seeds"] {
            #expect(heat.contains(s), "heatmap-adamw.svg lacks \"\(s)\"")
        }
        let heatL2 = try String(contentsOf: out.appendingPathComponent("heatmap-adam-l2.svg"), encoding: .utf8)
        #expect(heatL2.contains("diverged / pending"), "the cell without a result should name its statuses")

        // The page shows every figure (SVG inline, PNG linked) and every local link resolves.
        let html = try String(contentsOf: result.index, encoding: .utf8)
        for svg in svgs { #expect(html.contains("src=\"\(svg.lastPathComponent)\""), "index.html does not show \(svg.lastPathComponent)") }
        for png in pngs { #expect(html.contains("href=\"\(png.lastPathComponent)\""), "index.html does not link \(png.lastPathComponent)") }
        let regex = try NSRegularExpression(pattern: ##"(?:src|href)="([^"#:]+)""##)
        for m in regex.matches(in: html, range: NSRange(html.startIndex..., in: html)) {
            let target = String(html[Range(m.range(at: 1), in: html)!])
            #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent(target).path), "index.html links missing \(target)")
        }
        #expect(html.contains("<h1>Sweep report: study</h1>"))
        #expect(html.contains("33 done") && html.contains("2 failed (1 diverged)") && html.contains("1 pending"))
        #expect(html.contains("How to read this report"))
        // These runs have no validation split: "best" falls back to the test split and says so.
        #expect(result.selection == .test && result.verdict == nil)
        #expect(html.contains("Best settings selected on the test split (no validation split in these runs)."))
        #expect(!html.contains("id=\"study\""), "an ordinary sweep has no study section")
        #expect(heat.contains("selected on test: no validation split"))

        // Counts and the best setting per method, against the synthetic truth.
        #expect(result.counts.done == 33 && result.counts.failed == 2 && result.counts.pending == 1)
        #expect(result.methodsWithoutResult.isEmpty)
        #expect(result.best.map(\.method) == SyntheticSweep.methods)
        for b in result.best {
            var expected: (lr: Double, decay: Double, mean: Double)?
            for lr in SyntheticSweep.lrs { for d in SyntheticSweep.decays {
                let v = sweep.expectedSetting(b.method, lr, d, best: false)
                guard !v.isEmpty else { continue }
                let mean = v.reduce(0, +) / Double(v.count)
                if expected == nil || mean < expected!.mean { expected = (lr, d, mean) }
            } }
            #expect(b.lr == expected!.lr && b.decay == expected!.decay, "\(b.method): best at \(b.lr), \(b.decay)")
            #expect(abs(b.value.mean - expected!.mean) < 1e-12)
        }
        let l2Best = result.best.first { $0.method == "Adam+L2" }!
        let curve = try String(contentsOf: out.appendingPathComponent("curve-adam-l2-test-error.dat"), encoding: .utf8)
        #expect(curve.contains("run \(l2Best.bestRunID)"))
        #expect(curve.split(separator: "\n").filter { !$0.hasPrefix("#") }.count == SyntheticSweep.epochs)
        let trainCurve = try String(contentsOf: out.appendingPathComponent("curve-adam-l2-train-loss.dat"), encoding: .utf8)
        #expect(trainCurve.split(separator: "\n").filter { !$0.hasPrefix("#") }.count == 2 * SyntheticSweep.epochs,
                "train-only log records belong on the training-loss curve")
    }

    @Test func summaryCSVHoldsTheRunFilesNumbersAndTablesNeedNoGnuplot() throws {
        let tmp = TempDir()
        let sweep = try SyntheticSweep(at: tmp.url)
        let out = tmp.url.appendingPathComponent("elsewhere")
        let result = try SweepReport.generate(sweepDirectory: tmp.url,
                                              options: ReportOptions(outputDirectory: out, gnuplot: "/nonexistent/gnuplot"))
        // Without gnuplot: a clear error in the result, the tables and the page written anyway.
        #expect(result.plotError?.kind == .gnuplotMissing)
        #expect(result.plotError?.message.contains("make deps") == true)
        #expect(result.figures.isEmpty)
        let html = try String(contentsOf: out.appendingPathComponent("index.html"), encoding: .utf8)
        #expect(html.contains("Figures missing") && html.contains("make deps"))

        let rows = parseCSV(try String(contentsOf: out.appendingPathComponent("summary.csv"), encoding: .utf8))
        #expect(rows.count == sweep.runs.count)
        #expect(Set(rows.map { $0["id"]! }) == Set(sweep.runs.map(\.id)))
        for row in rows {
            let run = sweep.runs.first { $0.id == row["id"] }!
            #expect(row["method"] == run.method && Double(row["lr"]!) == run.lr && Double(row["decay"]!) == run.decay
                    && Int(row["seed"]!) == run.seed && row["dir"] == run.dir)
            guard let s = sweep.summaries[run.id] else {
                #expect(row["status"] == "pending")
                for k in ["final_test_error", "best_test_error", "best_epoch", "final_train_loss", "zero_fraction", "wall_s"] {
                    #expect(row[k] == "", "pending run \(run.id): \(k) = \(row[k]!)")
                }
                continue
            }
            // Compare with the exact values the files were written from.
            #expect(row["status"] == s["status"] as? String)
            #expect(Double(row["wall_s"]!) == s["wall_s"] as? Double)
            let final = s["final"] as? [String: Any], best = s["best"] as? [String: Any]
            func number(_ o: [String: Any]?, _ k: String) -> Double? {
                if let v = o?[k] as? Double { return v }
                return (o?[k] as? String).flatMap { Double($0) }  // "NaN"
            }
            func same(_ csv: String?, _ expected: Double?) -> Bool {
                guard let e = expected else { return csv == "" }
                guard let v = csv.flatMap(Double.init) else { return false }
                return v == e || (v.isNaN && e.isNaN)
            }
            #expect(same(row["final_test_error"], number(final, "test_acc").map { 1 - $0 }), "\(run.id) final_test_error")
            #expect(same(row["best_test_error"], number(best, "test_acc").map { 1 - $0 }), "\(run.id) best_test_error")
            #expect(same(row["best_epoch"], number(best, "epoch")), "\(run.id) best_epoch")
            #expect(same(row["final_train_loss"], number(final, "data_loss")), "\(run.id) final_train_loss")
            #expect(same(row["zero_fraction"], number(final, "zero_fraction")), "\(run.id) zero_fraction")
            #expect(row["reason"] == (s["reason"] as? String ?? ""))
            if row["status"] == "completed" {
                // The synthetic curve dips at epoch 8, so best and final differ.
                #expect(Double(row["best_epoch"]!) == 8)
                #expect(Double(row["best_test_error"]!)! < Double(row["final_test_error"]!)!)
            }
        }

        // The per-setting CSV: mean and sample std over the completed seeds.
        let settings = parseCSV(try String(contentsOf: out.appendingPathComponent("summary-by-setting.csv"), encoding: .utf8))
        #expect(settings.count == SyntheticSweep.methods.count * 9)
        for row in settings {
            let (m, lr, d) = (row["method"]!, Double(row["lr"]!)!, Double(row["decay"]!)!)
            for best in [false, true] {
                let v = sweep.expectedSetting(m, lr, d, best: best)
                let prefix = best ? "best_test_error" : "final_test_error"
                #expect(Int(row["completed"]!) == v.count)
                if v.isEmpty { #expect(row[prefix + "_mean"] == ""); continue }
                let mean = v.reduce(0, +) / Double(v.count)
                #expect(abs(Double(row[prefix + "_mean"]!)! - mean) < 1e-15, "\(m) \(lr) \(d) \(prefix)")
                if v.count == 2 {
                    let std = abs(v[0] - v[1]) / 2.0.squareRoot()
                    #expect(abs(Double(row[prefix + "_std"]!)! - std) < 1e-15)
                } else {
                    #expect(row[prefix + "_std"] == "", "one seed has no standard deviation")
                }
            }
        }
        // The Markdown carries both tables with the same rows.
        let md = try String(contentsOf: out.appendingPathComponent("summary.md"), encoding: .utf8)
        #expect(md.contains("## Settings (mean ± std over seeds)") && md.contains("## Runs"))
        #expect(md.split(separator: "\n").filter { $0.hasPrefix("| 3f9a") || $0.hasPrefix("| 3f9b") || $0.hasPrefix("| 3f9c") }.count == sweep.runs.count)
    }

    @Test func bestMetricPicksTheLowestErrorOverEpochs() throws {
        let tmp = TempDir()
        let sweep = try SyntheticSweep(at: tmp.url)
        let results = try SweepResults.load(sweepDirectory: tmp.url)
        for m in SyntheticSweep.methods {
            let b = try #require(results.methodBest(m, metric: .best))
            let expected = sweep.expectedSetting(m, b.lr, b.decay, best: true)
            #expect(abs(b.value.mean - expected.reduce(0, +) / Double(expected.count)) < 1e-15)
            #expect(b.bestRunValue == expected.min()!)
            let f = try #require(results.methodBest(m, metric: .final))
            #expect(b.value.mean < f.value.mean)
        }
    }

    @Test func sweepWithNothingFinishedStillReports() throws {
        let tmp = TempDir()
        let manifest = SweepManifest(name: "fresh", spec: "sweep.toml", runs: [
            .init(id: "a1", dir: "runs/a1", method: "SGDW", lr: 0.1, decay: 0, seed: 0),
            .init(id: "a2", dir: "runs/a2", method: "SGDW", lr: 0.1, decay: 5e-4, seed: 0),
        ])
        try manifest.write(to: tmp.url.appendingPathComponent("manifest.json"))
        for r in manifest.runs {
            try FileManager.default.createDirectory(at: tmp.url.appendingPathComponent(r.dir), withIntermediateDirectories: true)
        }
        let result = try SweepReport.generate(sweepDirectory: tmp.url)
        #expect(result.plotError == nil, "\(result.plotError.map { "\($0)" } ?? "")")
        #expect(result.counts.pending == 2 && result.counts.done == 0)
        #expect(result.best.isEmpty && result.methodsWithoutResult == ["SGDW"])
        #expect(result.figures.map(\.lastPathComponent).sorted() == ["heatmap-sgdw.png", "heatmap-sgdw.svg"])
        let html = try String(contentsOf: result.index, encoding: .utf8)
        #expect(html.contains("2 of 2 runs have not finished"))
        #expect(html.contains("No completed run yet"))
    }

    @Test func manifestRoundTripsAndOverridesKeepTheirTypes() throws {
        let tmp = TempDir()
        let url = tmp.url.appendingPathComponent("manifest.json")
        let m = SweepManifest(name: "study", spec: "sweep.toml", runs: [
            .init(id: "3f9a1c2b7d10", dir: "runs/3f9a1c2b7d10", method: "AdamW", lr: 0.001, decay: 0.01, seed: 0,
                  overrides: ["optimizer.lr": .number(0.001), "seed": .integer(0), "optimizer.name": .string("adamw"),
                              "optimizer.amsgrad": .bool(false)]),
        ])
        try m.write(to: url)
        #expect(try SweepManifest.load(from: url) == m)
        #expect(try SweepManifest.load(from: tmp.url) == m, "a sweep directory finds its manifest.json")
        let text = try String(contentsOf: url, encoding: .utf8)
        #expect(text.contains("\"format_version\" : 1") && text.contains("\"dir\" : \"runs/3f9a1c2b7d10\""))
        let o = m.runs[0].overrides
        #expect(o["optimizer.lr"]!.description == "0.001" && o["seed"]!.description == "0")
        #expect(o["optimizer.name"]!.description == "\"adamw\"" && o["optimizer.amsgrad"]!.description == "false")
        #expect(m.runs[0].directory(in: tmp.url).path.hasSuffix("/runs/3f9a1c2b7d10"))
    }

    @Test func badInputsNameTheFileAndKey() throws {
        let tmp = TempDir()
        let manifestURL = tmp.url.appendingPathComponent("manifest.json")
        expectError(["manifest.json", "no such file", "sweep manifest"]) { _ = try SweepReport.generate(sweepDirectory: tmp.url) }
        expectError(["no such sweep directory"]) { _ = try SweepReport.generate(sweepDirectory: tmp.url.appendingPathComponent("nope")) }

        func manifest(_ text: String, _ fragments: [String], sourceLocation: SourceLocation = #_sourceLocation) throws {
            try Data(text.utf8).write(to: manifestURL)
            expectError([manifestURL.path] + fragments, sourceLocation: sourceLocation) { _ = try SweepManifest.load(from: manifestURL) }
        }
        let run = #"{"id": "a", "dir": "runs/a", "method": "AdamW", "lr": 0.001, "decay": 0, "seed": 0}"#
        try manifest("{\"format_version\": 1, \"name\": \"s\",\n \"spec\": \"x\" \"runs\": []}", ["manifest.json:2:", "not valid JSON"])
        try manifest("", ["empty file"])
        try manifest(#"{"format_version": 1, "name": "s", "spec": "x", "runs": [\#(run), {"id": "b", "dir": "runs/b", "method": "AdamW", "lr": "fast", "decay": 0, "seed": 0}]}"#,
                     ["runs[1].lr", "expected a number", "\"fast\""])
        try manifest(#"{"format_version": 1, "name": "s", "spec": "x", "runs": [{"id": "a", "dir": "runs/a", "lr": 0.001, "decay": 0, "seed": 0}]}"#,
                     ["runs[0].method", "missing"])
        try manifest(#"{"format_version": 2, "name": "s", "spec": "x", "runs": []}"#, ["format_version", "not supported"])
        try manifest(#"{"format_version": 1, "name": "s", "spec": "x", "runs": [\#(run), \#(run)]}"#, ["runs[1].id", "also the id of runs[0]"])
        try manifest(#"{"format_version": 1, "name": "s", "spec": "x", "runs": [\#(run.replacingOccurrences(of: "\"decay\": 0", with: "\"decay\": -1"))]}"#,
                     ["runs[0].decay", "≥ 0"])
        try manifest(#"{"format_version": 1, "name": "s", "spec": "x", "runs": {}}"#, ["runs", "expected an array", "found an object"])

        // A run directory the manifest names but that is not there yet: a run not started.
        let missing = try SyntheticSweep(at: tmp.url.appendingPathComponent("m").creatingDirectory(), omitRunDirectory: true)
        let partial = try SweepReport.generate(sweepDirectory: missing.directory)
        #expect(partial.counts.byStatus[nil]! >= 1)  // no summary.json: pending

        // A summary.json with a wrong type deep inside, and one with an unknown status.
        let sweep = try SyntheticSweep(at: tmp.url.appendingPathComponent("s").creatingDirectory())
        let summaryURL = sweep.directory.appendingPathComponent(sweep.runs[0].dir + "/summary.json")
        let good = try String(contentsOf: summaryURL, encoding: .utf8)
        try good.replacingOccurrences(of: "\"test_acc\":", with: "\"test_acc\":\"high\",\"x\":").write(to: summaryURL, atomically: true, encoding: .utf8)
        expectError([summaryURL.path, "final.test_acc", "expected a number", "\"high\""]) { _ = try SweepReport.generate(sweepDirectory: sweep.directory) }
        try good.replacingOccurrences(of: "\"completed\"", with: "\"done\"").write(to: summaryURL, atomically: true, encoding: .utf8)
        expectError([summaryURL.path, "status", "'done' is not one of completed"]) { _ = try SweepReport.generate(sweepDirectory: sweep.directory) }
        try good.write(to: summaryURL, atomically: true, encoding: .utf8)

        // A broken line inside a best run's metrics.jsonl: file:line and key, and no report written.
        let results = try SweepResults.load(sweepDirectory: sweep.directory)
        let best = try #require(results.methodBest("AdamW", metric: .final))
        let metricsURL = sweep.directory.appendingPathComponent("runs/\(best.bestRunID)/metrics.jsonl")
        var lines = try String(contentsOf: metricsURL, encoding: .utf8).split(separator: "\n").map(String.init)
        lines[2] = lines[2].replacingOccurrences(of: "\"epoch\":", with: "\"epoch\":[],\"y\":")
        try (lines.joined(separator: "\n") + "\n").write(to: metricsURL, atomically: true, encoding: .utf8)
        expectError([metricsURL.path + ":3", "epoch", "expected a number", "found an array"]) {
            _ = try SweepReport.generate(sweepDirectory: sweep.directory)
        }
        #expect(!FileManager.default.fileExists(atPath: sweep.directory.appendingPathComponent("report").path),
                "a bad input stops the report before anything is written")
    }
}

extension URL {
    /// Creates the directory and returns it, for one-line test setup.
    fileprivate func creatingDirectory() throws -> URL {
        try FileManager.default.createDirectory(at: self, withIntermediateDirectories: true)
        return self
    }
}
