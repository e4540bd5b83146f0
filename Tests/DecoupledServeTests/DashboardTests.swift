import DecoupledSystem
import DecoupledTraining
import Foundation
import Testing
@testable import DecoupledExperiments
@testable import DecoupledServe

/// The curves Chromium drew: (series class, run id) → number of points.
func drawnCurves(_ dom: String) -> [String: Int] {
    let re = try! NSRegularExpression(pattern: #"<path class="curve ([a-z]+)"[^>]*? data-run="([^"]+)" data-points="(\d+)""#)
    var out: [String: Int] = [:]
    for m in re.matches(in: dom, range: NSRange(dom.startIndex..., in: dom)) {
        let s = { (i: Int) in String(dom[Range(m.range(at: i), in: dom)!]) }
        out["\(s(1)) \(s(2))"] = Int(s(3))!
    }
    return out
}

/// The status cell of each run row: id → text.
func drawnStatuses(_ dom: String) -> [String: String] {
    let re = try! NSRegularExpression(pattern: #"<tr data-run-id="([^"]+)"[^>]*><td>[^<]*</td><td class="status status-[a-z]+">([^<]*)</td>"#)
    var out: [String: String] = [:]
    for m in re.matches(in: dom, range: NSRange(dom.startIndex..., in: dom)) {
        out[String(dom[Range(m.range(at: 1), in: dom)!])] = String(dom[Range(m.range(at: 2), in: dom)!])
    }
    return out
}

@Suite("decoupled serve", .serialized)
struct DashboardTests {
    // MARK: the API, through the built binary

    @Test("the API answers runs, metrics, heatmaps and verdict from the readers; never writes; ids are only looked up")
    func api() throws {
        let scratch = ServeScratch()
        let sweep = try SweepFixture(in: scratch)
        try sweep.writeVerdict(statements: ["AdamW: decay helps (gap 4.1 standard errors)."])
        var before = treeFingerprint(sweep.directory)
        let server = try ServeProcess(sweep.directory, scratch: scratch)

        let runs = try #require(try getJSON(server, "/api/runs") as? [String: Any])
        #expect(runs["kind"] as? String == "sweep")
        #expect(runs["name"] as? String == "live")
        let rows = try #require(runs["runs"] as? [[String: Any]])
        #expect(rows.count == 8)
        for row in rows {
            let id = row["id"] as! String
            #expect(row["state"] as? String == sweep.states[id]?.rawValue, "\(id)")
        }
        let runningRow = try #require(rows.first { $0["id"] as? String == sweep.runningID })
        #expect(runningRow["lock_holder"] as? Int == Int(getpid()))
        #expect((runningRow["progress"] as? [String: Any])?["records"] as? Int == 2)
        let counts = try #require(runs["counts"] as? [String: Int])
        #expect(counts == ["done": 4, "running": 1, "pending": 1, "failed": 2])

        // Metrics from the N-th record on; a log shorter than N starts over.
        let all = try #require(try getJSON(server, "/api/runs/\(sweep.runningID)/metrics?since=0") as? [String: Any])
        #expect((all["records"] as? [Any])?.count == 2)
        #expect(all["next"] as? Int == 2)
        let rest = try #require(try getJSON(server, "/api/runs/\(sweep.runningID)/metrics?since=1") as? [String: Any])
        let restRecords = try #require(rest["records"] as? [[String: Any]])
        #expect(restRecords.count == 1)
        #expect(restRecords.first?["epoch"] as? Double == 2)
        #expect(restRecords.first?["test_acc"] != nil)
        let beyond = try #require(try getJSON(server, "/api/runs/\(sweep.runningID)/metrics?since=9") as? [String: Any])
        #expect(beyond["reset"] as? Bool == true)
        #expect((beyond["records"] as? [Any])?.count == 2)
        let pendingID = sweep.states.first { $0.value == .pending }!.key
        let none = try #require(try getJSON(server, "/api/runs/\(pendingID)/metrics?since=0") as? [String: Any])
        #expect((none["records"] as? [Any])?.count == 0)

        // Bad parameters and ids that are not in the manifest: clear errors, no file reached.
        let badSince = try rawGET(port: server.port, path: "/api/runs/\(sweep.runningID)/metrics?since=-1")
        #expect(badSince.status == 400)
        #expect(badSince.body.contains("since must be a whole number"))
        try FS.writeAtomically(Data("{\"step\":1,\"epoch\":1}\n".utf8), to: scratch.file("metrics.jsonl"))
        for path in ["/api/runs/nosuchrun/metrics", "/api/runs/..%2F..%2F..%2Fetc/metrics", "/api/runs/%2E%2E/metrics",
                     "/api/runs/../../../etc/passwd", "/api/runs/runs%2F..%2F..%2F/metrics", "/../../etc/passwd",
                     "/api/runs/\(sweep.runningID)%2F..%2F..%2F../metrics"] {
            let r = try rawGET(port: server.port, path: path)
            #expect(r.status == 404, "\(path): \(r.status) \(r.body)")
            #expect(!r.body.contains("\"records\""), "\(path)")
            #expect(!r.body.contains("root:"), "\(path)")
        }

        // A damaged line in a log: the reader's message, naming the file, line and key.
        #expect(treeFingerprint(sweep.directory) == before, "the server wrote into the sweep directory")
        let damagedID = sweep.states.first { $0.value == .diverged }!.key
        let damagedLog = "\(sweep.runDirectory(damagedID))/metrics.jsonl"
        let intact = try Data(contentsOf: URL(fileURLWithPath: damagedLog))
        try FS.writeAtomically(Data("{\"step\": 1, \"epoch\": \"one\"}\n".utf8) + intact, to: damagedLog)
        let damaged = try rawGET(port: server.port, path: "/api/runs/\(damagedID)/metrics?since=0")
        #expect(damaged.status == 500)
        #expect(damaged.body.contains("metrics.jsonl:1: epoch: expected a number"), "\(damaged.body)")
        try FS.writeAtomically(intact, to: damagedLog)
        before = treeFingerprint(sweep.directory)

        // A page elsewhere that points its own DNS name at 127.0.0.1 is refused.
        let rebound = try rawGET(port: server.port, path: "/api/runs", hostHeader: "evil.example:\(server.port)")
        #expect(rebound.status == 403)
        #expect(try rawGET(port: server.port, path: "/api/runs", hostHeader: "127.0.0.1.example.com").status == 403)
        #expect(try rawGET(port: server.port, path: "/api/runs", hostHeader: "localhost:\(server.port)").status == 200)

        // Heatmaps: the report's cells, filled by completed runs only.
        let heat = try #require(try getJSON(server, "/api/heatmaps") as? [String: Any])
        let grids = try #require(heat["grids"] as? [[String: Any]])
        #expect(grids.map { $0["method"] as? String } == ["Adam+L2", "AdamW"])
        let adamW = try #require(grids.last?["cells"] as? [[String: Any]])
        #expect(adamW.count == 4)
        #expect(adamW.filter { $0["mean"] != nil }.count == 3)
        #expect(adamW.contains { $0["missing"] as? String == "pending" && $0["runs"] as? [String] == [sweep.runningID] },
                "the running run's cell: pending in the report's words, with its run id: \(adamW)")
        let adamL2 = try #require(grids.first?["cells"] as? [[String: Any]])
        #expect(adamL2.contains { $0["missing"] as? String == "diverged" })
        #expect(adamL2.contains { $0["missing"] as? String == "failed" })
        #expect(grids.allSatisfy { $0["selected_run"] is String })

        let verdict = try #require(try getJSON(server, "/api/verdict") as? [String: Any])
        #expect(verdict["statements"] as? [String] == ["AdamW: decay helps (gap 4.1 standard errors)."])

        // The page and its files, with a policy that allows nothing from elsewhere.
        let page = try rawGET(port: server.port, path: "/")
        #expect(page.status == 200)
        #expect(page.body.contains("<script src=\"dashboard.js\""))
        #expect(!page.body.contains("http://") && !page.body.contains("https://"))
        #expect(try rawGET(port: server.port, path: "/dashboard.js").body.contains("api/runs"))

        #expect(server.stop() == .exited(0))
        #expect(treeFingerprint(sweep.directory) == before, "the server wrote into the sweep directory")
    }

    // MARK: the page, in a real browser

    @Test("Chromium shows the runs, draws curves and heatmaps from the API, and follows a new metrics line",
          .enabled(if: chromiumPath != nil,
                   "chromium not found on PATH (set DECOUPLED_CHROMIUM or run scripts/install-deps.sh, which installs Debian's chromium)"))
    func browser() throws {
        let scratch = ServeScratch()
        let sweep = try SweepFixture(in: scratch)
        try sweep.writeVerdict(statements: ["AdamW: decay helps (gap 4.1 standard errors)."])
        let server = try ServeProcess(sweep.directory, scratch: scratch)

        let dom = try chromiumDOM(server.url, scratch: scratch)
        // The script ran and polled at least once.
        #expect(dom.contains("data-polls=\""), "no poll finished: \(dom.prefix(3000))")
        #expect(!dom.contains("Cannot update"), "\(dom)")
        let statuses = drawnStatuses(dom)
        #expect(statuses.count == 8, "\(statuses)")
        for (id, state) in sweep.states { #expect(statuses[id]?.hasPrefix(state.rawValue) == true, "\(id): \(statuses[id] ?? "no row")") }
        #expect(statuses[sweep.runningID] == "running (pid \(getpid()))")
        #expect(dom.contains("sweep live"))
        #expect(dom.contains("8 runs: 4 done, 1 running, 1 pending, 2 failed"))

        // Curves: the running run and each method's selected run, drawn from their records.
        let curves = drawnCurves(dom)
        #expect(curves["test \(sweep.runningID)"] == 2, "\(curves)")
        #expect(curves["validation \(sweep.runningID)"] == 2, "\(curves)")
        #expect(curves["train \(sweep.runningID)"] == 2, "\(curves)")
        #expect(curves.keys.filter { $0.hasPrefix("test ") }.count == 3, "running + 2 selected runs: \(curves)")
        #expect(curves.values.allSatisfy { $0 > 0 })

        // Heatmaps: one per method, cells with values for completed runs, statuses for the rest.
        #expect(occurrences("<figure data-method=", in: dom) == 2)
        #expect(occurrences("class=\"cell done\"", in: dom) == 4, "4 completed runs")
        #expect(occurrences("class=\"cell missing\"", in: dom) == 4)
        #expect(occurrences("class=\"selected\"", in: dom) == 2)
        #expect(dom.contains(">diverged<") && dom.contains(">failed<") && dom.contains(">pending<"))
        #expect(occurrences("class=\"missing\">running<", in: dom) == 1, "the running run's cell says so")
        // The verdict: its statements and selected settings.
        #expect(dom.contains("AdamW: decay helps (gap 4.1 standard errors)."))
        #expect(dom.contains("<tr><td>AdamW</td><td>0.001</td><td>0</td><td>0.61</td><td>22.00</td><td>0.00</td></tr>"), "\(dom)")

        // The trainer appends a record: the API and then the page show it.
        try appendMetrics([evalRecord(epoch: 3, quality: 0.06)], runDirectory: sweep.runDirectory(sweep.runningID))
        let more = try #require(try getJSON(server, "/api/runs/\(sweep.runningID)/metrics?since=2") as? [String: Any])
        #expect((more["records"] as? [[String: Any]])?.map { $0["epoch"] as? Double } == [3])
        let before = treeFingerprint(sweep.directory)
        let dom2 = try chromiumDOM(server.url, scratch: scratch) { drawnCurves($0)["test \(sweep.runningID)"] == 3 }
        #expect(drawnCurves(dom2)["test \(sweep.runningID)"] == 3, "\(drawnCurves(dom2))")
        #expect(drawnCurves(dom2)["train \(sweep.runningID)"] == 3)

        let screenshot = "\(serveRepositoryRoot)/.build/serve-dashboard.png"
        try chromiumScreenshot(server.url, to: screenshot, scratch: scratch)
        #expect(treeFingerprint(sweep.directory) == before, "the server wrote into the sweep directory")

        // The run completes: the API moves it to completed and fills its heatmap cell (the
        // page draws those as shown above).
        try RunSummary(name: sweep.runningID, status: .completed, step: 60, epoch: 3, stepsTotal: 60,
                       final: evalRecord(epoch: 3, quality: 0.06)).write(to: "\(sweep.runDirectory(sweep.runningID))/summary.json")
        sweep.runningLock.release()
        let runs = try #require(try getJSON(server, "/api/runs") as? [String: Any])
        let row = (runs["runs"] as? [[String: Any]])?.first { $0["id"] as? String == sweep.runningID }
        #expect(row?["state"] as? String == "completed")
        #expect(runs["counts"] as? [String: Int] == ["done": 5, "running": 0, "pending": 1, "failed": 2])
        let heat = try #require(try getJSON(server, "/api/heatmaps") as? [String: Any])
        let adamW = (heat["grids"] as? [[String: Any]])?.last?["cells"] as? [[String: Any]]
        #expect(adamW?.filter { $0["mean"] != nil }.count == 4)

        let png = try Data(contentsOf: URL(fileURLWithPath: screenshot))
        #expect(png.count > 20_000, "a screenshot of a drawn page, not a blank one: \(png.count) bytes")
    }

    @Test("a single run directory: its status and curves",
          .enabled(if: chromiumPath != nil, "chromium not found on PATH (set DECOUPLED_CHROMIUM or run scripts/install-deps.sh)"))
    func singleRun() throws {
        let scratch = ServeScratch()
        let runDir = scratch.file("fashion-mlp-adamw-20261201-101500")
        try FS.createDirectory(runDir)
        try "name = \"fashion-mlp-adamw\"\n".write(toFile: "\(runDir)/config.toml", atomically: true, encoding: .utf8)
        try appendMetrics((1...5).map { evalRecord(epoch: $0, quality: 0) }, runDirectory: runDir)
        let server = try ServeProcess(runDir, scratch: scratch)

        let runs = try #require(try getJSON(server, "/api/runs") as? [String: Any])
        #expect(runs["kind"] as? String == "run")
        let rows = try #require(runs["runs"] as? [[String: Any]])
        #expect(rows.map { $0["id"] as? String } == ["fashion-mlp-adamw-20261201-101500"])
        #expect(rows.first?["state"] as? String == "pending", "no summary.json, no lock holder")
        #expect(try getJSON(server, "/api/heatmaps") is NSNull)
        #expect(try getJSON(server, "/api/verdict") is NSNull)

        let dom = try chromiumDOM(server.url, scratch: scratch)
        #expect(drawnCurves(dom) == ["test fashion-mlp-adamw-20261201-101500": 5, "validation fashion-mlp-adamw-20261201-101500": 5,
                                     "train fashion-mlp-adamw-20261201-101500": 5], "\(drawnCurves(dom))")
        #expect(dom.contains("run fashion-mlp-adamw-20261201-101500"))
        #expect(dom.contains("id=\"heatmaps-section\" hidden"))
    }

    // MARK: errors

    @Test("a missing path, a file, a directory of neither kind, a bad manifest and a port in use are clear errors")
    func errors() throws {
        let scratch = ServeScratch()
        func serve(_ args: [String]) throws -> Subprocess.Result {
            try Subprocess.run(serveDecoupledBinary, ["serve"] + args, options: .init(timeout: 60))
        }
        let missing = try serve([scratch.file("nope")])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("nope: no such directory"), "\(missing.stderr)")

        try "x".write(toFile: scratch.file("file.txt"), atomically: true, encoding: .utf8)
        let file = try serve([scratch.file("file.txt")])
        #expect(file.stderr.contains("file.txt: is a file"), "\(file.stderr)")

        try FS.createDirectory(scratch.file("empty"))
        let empty = try serve([scratch.file("empty")])
        #expect(empty.stderr.contains("neither a sweep directory (no manifest.json) nor a run directory"), "\(empty.stderr)")

        try FS.createDirectory(scratch.file("bad"))
        try "{\"format_version\": 1, \"name\": \"x\", \"spec\": \"s\", \"runs\": [{\"id\": \"a\"}]}"
            .write(toFile: scratch.file("bad/manifest.json"), atomically: true, encoding: .utf8)
        let bad = try serve([scratch.file("bad")])
        #expect(bad.stderr.contains("manifest.json: runs[0].dir: missing"), "\(bad.stderr)")

        let badPort = try serve([scratch.path, "--port", "70000"])
        #expect(badPort.stderr.contains("--port must be 0...65535"), "\(badPort.stderr)")

        // A port another server holds.
        let sweep = try SweepFixture(in: scratch)
        let first = try ServeProcess(sweep.directory, scratch: scratch)
        let second = try serve([sweep.directory, "--port", String(first.port)])
        #expect(second.status != 0)
        #expect(second.stderr.contains("cannot listen on 127.0.0.1:\(first.port): the port is in use"), "\(second.stderr)")
    }

    @Test("Host headers: loopback names pass, others are refused only on a loopback address")
    func hostNames() {
        #expect(LoopbackHostMiddleware.hostName("127.0.0.1:8080") == "127.0.0.1")
        #expect(LoopbackHostMiddleware.hostName("[::1]:8080") == "::1")
        #expect(LoopbackHostMiddleware.hostName("LocalHost") == "localhost")
        #expect(LoopbackHostMiddleware.isLoopback("127.0.0.1") && LoopbackHostMiddleware.isLoopback("::1"))
        #expect(LoopbackHostMiddleware.isLoopback("127.1.2.3") && LoopbackHostMiddleware.isLoopback("localhost"))
        #expect(!LoopbackHostMiddleware.isLoopback("127.0.0.1.example.com"), "a DNS name that starts like a loopback address")
        #expect(!LoopbackHostMiddleware.isLoopback("evil.example") && !LoopbackHostMiddleware.isLoopback("10.0.0.1"))
        #expect(!LoopbackHostMiddleware.isLoopback(""))
    }
}
