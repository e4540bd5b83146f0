import DecoupledSystem
import DecoupledTraining
import Foundation
import Testing
@testable import DecoupledExperiments

// Helpers of the `decoupled serve` tests: a sweep directory written through the run-directory
// types (as the trainer and the sweep runner write it), the built binary started as a child,
// a raw HTTP client (so a test can send any Host header and any path, unnormalised) and
// headless Chromium.

/// The repository root (three levels above this file).
let serveRepositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

/// The `decoupled` executable built beside the test bundle (`swift build --build-tests`).
let serveDecoupledBinary: String = {
    let dir = (Bundle.main.executablePath.map { ($0 as NSString).deletingLastPathComponent })
        ?? "\(serveRepositoryRoot)/.build/debug"
    for candidate in [dir, (dir as NSString).deletingLastPathComponent, "\(serveRepositoryRoot)/.build/debug"] {
        let p = (candidate as NSString).appendingPathComponent("decoupled")
        if FileManager.default.isExecutableFile(atPath: p) { return p }
    }
    return "\(serveRepositoryRoot)/.build/debug/decoupled"
}()

/// Chromium from Debian's package (scripts/install-deps.sh installs it), or $DECOUPLED_CHROMIUM.
let chromiumPath: String? = {
    let env = ProcessInfo.processInfo.environment
    if let p = env["DECOUPLED_CHROMIUM"], FileManager.default.isExecutableFile(atPath: p) { return p }
    for dir in (env["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
        for name in ["chromium", "chromium-browser"] {
            let p = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
    }
    return nil
}()

/// A fresh directory under /tmp, removed on deinit.
final class ServeScratch {
    let path: String
    init(_ prefix: String = "dserve") {
        var template = Array("/tmp/\(prefix).XXXXXX".utf8CString)
        path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }
}

/// A metrics record of an evaluation at `epoch` (20 steps per epoch) whose numbers fall with
/// the epoch, so curves have a shape; `quality` shifts a run's errors.
func evalRecord(epoch: Int, quality: Double) -> MetricRecord {
    let e = Double(epoch)
    let testError = 0.12 + quality + 0.3 / (e + 1)
    return MetricRecord(step: epoch * 20, epoch: e, lr: 1e-3, scheduleMultiplier: 1, dataLoss: 1.8 / (e + 0.5) + quality, penalty: 0,
                        totalLoss: 1.8 / (e + 0.5) + quality, trainAcc: 1 - testError + 0.05, valLoss: 0.5 + quality + 0.4 / (e + 1),
                        valAcc: 1 - testError - 0.01, testLoss: 0.5 + quality + 0.4 / (e + 1), testAcc: 1 - testError,
                        weightNorm: 10 + e, zeroFraction: 0, stepMs: 1.5, elapsedS: 0.5 * e)
}

/// Appends records to a run's metrics.jsonl, as the trainer does (one line each).
func appendMetrics(_ records: [MetricRecord], runDirectory: String) throws {
    for r in records {
        try FS.append(String(decoding: try r.jsonLine(), as: UTF8.self), to: "\(runDirectory)/metrics.jsonl")
    }
}

/// A small study-like sweep, written with the run-directory and manifest writers:
/// Adam+L2 and AdamW × lr {1e-3, 1e-2} × decay {0, d} × seed 0, in every state a sweep shows.
/// `runningLock` holds the run lock of the running run (AdamW lr 1e-2 λ 1e-2), as its trainer would.
struct SweepFixture {
    let directory: String
    let manifest: SweepManifest
    let runningID: String
    let runningLock: DirectoryLock
    /// id → expected state.
    let states: [String: SweepStatus.State]

    init(in scratch: ServeScratch) throws {
        directory = scratch.file("sweep")
        try FS.createDirectory(directory)
        var runs: [SweepManifest.Run] = []
        var states: [String: SweepStatus.State] = [:]
        var running: (String, DirectoryLock)?
        // (method, lr, decay, state)
        let plan: [(String, Double, Double, SweepStatus.State)] = [
            ("Adam+L2", 1e-3, 0, .completed), ("Adam+L2", 1e-2, 0, .diverged),
            ("Adam+L2", 1e-3, 1e-4, .pending), ("Adam+L2", 1e-2, 1e-4, .failed),
            ("AdamW", 1e-3, 0, .completed), ("AdamW", 1e-2, 0, .completed),
            ("AdamW", 1e-3, 1e-2, .completed), ("AdamW", 1e-2, 1e-2, .running),
        ]
        for (i, (method, lr, decay, state)) in plan.enumerated() {
            let id = String(format: "run%02d%@", i, method == "AdamW" ? "w" : "l")
            let run = SweepManifest.Run(id: id, dir: "runs/\(id)", method: method, lr: lr, decay: decay, seed: 0,
                                        overrides: ["optimizer.lr": .number(lr)])
            runs.append(run)
            states[id] = state
            let runDir = "\(directory)/runs/\(id)"
            let quality = Double(i) * 0.01
            switch state {
            case .pending:
                continue
            case .completed:
                try FS.createDirectory(runDir)
                let records = (1...4).map { evalRecord(epoch: $0, quality: quality) }
                try appendMetrics(records, runDirectory: runDir)
                try RunSummary(name: id, status: .completed, step: 80, epoch: 4, stepsTotal: 80, final: records.last,
                               best: records.last, wallS: 2).write(to: "\(runDir)/summary.json")
            case .running:
                try FS.createDirectory(runDir)
                try appendMetrics((1...2).map { evalRecord(epoch: $0, quality: quality) }, runDirectory: runDir)
                running = (id, try DirectoryLock(runDirectory: runDir))
            case .diverged:
                try FS.createDirectory(runDir)
                try appendMetrics([evalRecord(epoch: 1, quality: 0.5)], runDirectory: runDir)
                try RunSummary(name: id, status: .diverged, reason: "non-finite loss at step 31").write(to: "\(runDir)/summary.json")
            case .failed:
                try FS.createDirectory(runDir)
                try RunSummary(name: id, status: .failed, reason: "trainer exited with signal 9 (SIGKILL)",
                               writtenBy: "sweep runner").write(to: "\(runDir)/summary.json")
            case .preempted:
                Issue.record("the fixture has no preempted run")
            }
        }
        manifest = SweepManifest(name: "live", spec: "live.toml", runs: runs)
        try manifest.write(to: URL(fileURLWithPath: "\(directory)/manifest.json"))
        (runningID, runningLock) = running!
        self.states = states
    }

    func runDirectory(_ id: String) -> String { "\(directory)/runs/\(id)" }

    /// A verdict.json as `decoupled study` writes it (through StudyVerdict's encoder).
    func writeVerdict(statements: [String]) throws {
        let selected = StudyVerdict.Setting(method: "AdamW", lr: 1e-3, decay: 0, runs: ["run04w"], valLoss: SeedMean([0.61])!,
                                            valError: SeedMean([0.21])!, testLoss: SeedMean([0.63])!,
                                            testError: SeedMean([0.22])!, zeroFraction: SeedMean([0])!)
        let verdict = StudyVerdict(selection: "lowest mean validation loss over seeds", seeds: 1, regime: [], selected: [selected],
                                   comparisons: [], basins: [], basinContrasts: [], budget: nil, sparsity: nil,
                                   incompleteRuns: 4, statements: statements, report: "report/index.html")
        try FS.writeAtomically(try StudyVerdict.encoder.encode(verdict), to: "\(directory)/\(StudyVerdict.fileName)")
    }
}

/// Names, sizes and modification times of every file below `dir`: equal before and after
/// means nothing was written.
func treeFingerprint(_ dir: String) -> [String] {
    let e = FileManager.default.enumerator(atPath: dir)
    var out: [String] = []
    while let name = e?.nextObject() as? String {
        let a = try? FileManager.default.attributesOfItem(atPath: "\(dir)/\(name)")
        out.append("\(name) \(a?[.size] ?? "-") \((a?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)")
    }
    return out.sorted()
}

/// A running `decoupled serve`, stopped (SIGTERM) on deinit.
final class ServeProcess {
    let process: Subprocess
    let log: String
    /// The URL it printed.
    let url: String
    /// "127.0.0.1", and the port it chose.
    let host: String
    let port: UInt16

    init(_ directory: String, extra: [String] = [], scratch: ServeScratch) throws {
        log = scratch.file("serve-\(UUID().uuidString.prefix(8)).log")
        process = try Subprocess.spawn(serveDecoupledBinary, ["serve", directory, "--port", "0"] + extra,
                                       options: .init(output: .appendTo(log)))
        var printed: String?
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("serving ") }),
               let start = line.range(of: "http://"), let end = line[start.lowerBound...].firstIndex(of: " ") {
                printed = String(line[start.lowerBound..<end])
                break
            }
            if process.poll() != nil { break }
            usleep(20_000)
        }
        guard let url = printed else {
            process.signal(SIGKILL)
            _ = process.wait()
            throw ServeTestError("decoupled serve did not print its URL: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        }
        self.url = url
        let hostPort = url.dropFirst("http://".count).dropLast()  // "127.0.0.1:PORT"
        host = String(hostPort.split(separator: ":")[0])
        port = UInt16(hostPort.split(separator: ":")[1])!
    }

    /// Stops the server the way Ctrl-C does; its exit status.
    @discardableResult
    func stop() -> ChildExit? {
        process.signal(SIGINT)
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if let exit = process.poll() { return exit }
            usleep(20_000)
        }
        process.signal(SIGKILL)
        return process.wait()
    }

    /// A test that does not check the clean stop ends the server at once.
    deinit {
        if process.poll() == nil {
            process.signal(SIGKILL)
            _ = process.wait()
        }
    }
}

struct ServeTestError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// One HTTP/1.1 request over a plain socket: the path and Host header exactly as given.
/// Returns the status code and the body (the server answers with Content-Length).
func rawGET(port: UInt16, path: String, hostHeader: String? = nil) throws -> (status: Int, body: String) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw ServeTestError("socket: \(errno)") }
    defer { close(fd) }
    var timeout = timeval(tv_sec: 10, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = port.bigEndian
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let rc = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard rc == 0 else { throw ServeTestError("connect to 127.0.0.1:\(port): errno \(errno)") }
    let request = "GET \(path) HTTP/1.1\r\nHost: \(hostHeader ?? "127.0.0.1:\(port)")\r\nConnection: close\r\n\r\n"
    _ = request.withCString { send(fd, $0, strlen($0), 0) }
    var data = Data()
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = recv(fd, &buffer, buffer.count, 0)
        if n <= 0 { break }
        data.append(contentsOf: buffer[0..<n])
    }
    let text = String(decoding: data, as: UTF8.self)
    guard let headEnd = text.range(of: "\r\n\r\n"), let status = Int(text.split(separator: " ").dropFirst().first ?? "") else {
        throw ServeTestError("not an HTTP response: \(text.prefix(200))")
    }
    return (status, String(text[headEnd.upperBound...]))
}

/// GETs a JSON document; fails the test on a status other than 200.
func getJSON(_ server: ServeProcess, _ path: String) throws -> Any {
    let (status, body) = try rawGET(port: server.port, path: path)
    guard status == 200 else { throw ServeTestError("GET \(path): HTTP \(status): \(body)") }
    return try JSONSerialization.jsonObject(with: Data(body.utf8), options: [.fragmentsAllowed])
}

/// Loads `url` in headless Chromium, lets its scripts run for `budgetMs` of virtual time,
/// and returns the DOM as serialized then. Loaded again, up to 3 times, until `ready` holds
/// for it: on a loaded machine the page's first poll may still be on its way when the
/// budget ends. A page that never gets there fails the test's checks on the last DOM.
func chromiumDOM(_ url: String, budgetMs: Int = 3000, scratch: ServeScratch,
                 until ready: (String) -> Bool = { $0.contains("data-polls=") }) throws -> String {
    var dom = ""
    for _ in 0..<3 {
        let result = try Subprocess.run(chromiumPath!, chromiumArguments(scratch: scratch, budgetMs: budgetMs) + ["--dump-dom", url],
                                        options: .init(timeout: 90))
        guard result.status == 0 else { throw ServeTestError("chromium --dump-dom: \(result.exit): \(result.stderr.suffix(2000))") }
        dom = result.stdout
        if ready(dom) { break }
    }
    return dom
}

func chromiumScreenshot(_ url: String, to path: String, budgetMs: Int = 3000, scratch: ServeScratch) throws {
    try? FileManager.default.removeItem(atPath: path)
    let result = try Subprocess.run(chromiumPath!, chromiumArguments(scratch: scratch, budgetMs: budgetMs)
                                        + ["--screenshot=\(path)", "--window-size=1200,900", "--hide-scrollbars", url],
                                    options: .init(timeout: 90))
    guard result.status == 0, FileManager.default.fileExists(atPath: path) else {
        throw ServeTestError("chromium --screenshot: \(result.exit): \(result.stderr.suffix(2000))")
    }
}

/// Headless, no sandbox (CI runs as root), a profile of its own (other tests may run one too).
private func chromiumArguments(scratch: ServeScratch, budgetMs: Int) -> [String] {
    ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions",
     "--user-data-dir=\(scratch.file("chromium-profile"))", "--virtual-time-budget=\(budgetMs)"]
}

/// How often `needle` occurs in `haystack`.
func occurrences(_ needle: String, in haystack: String) -> Int {
    haystack.components(separatedBy: needle).count - 1
}
