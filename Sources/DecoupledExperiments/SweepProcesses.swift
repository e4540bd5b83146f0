import DecoupledTraining
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Processes and files shared by the sweep backends: starting trainer processes, the sweep
// directory's lock, finding out whether a run directory is being written, the failure record
// a runner leaves when a trainer could not say why it stopped, and number formatting.

/// How a child process ended.
public enum ChildExit: Equatable, CustomStringConvertible, Sendable {
    /// Exited with this status.
    case exited(Int32)
    /// Killed by this signal.
    case signaled(Int32)

    /// Decodes a waitpid(2) status (the W* macros are not available to Swift).
    init(waitStatus s: Int32) {
        self = (s & 0x7f) == 0 ? .exited((s >> 8) & 0xff) : .signaled(s & 0x7f)
    }

    /// "exit status 1", "signal 9 (SIGKILL)".
    public var description: String {
        switch self {
        case .exited(let c): return "exit status \(c)"
        case .signaled(let s): return "signal \(s) (\(signalName(s)))"
        }
    }
}

/// The usual name of a signal number.
func signalName(_ s: Int32) -> String {
    switch s {
    case SIGHUP: return "SIGHUP"
    case SIGINT: return "SIGINT"
    case SIGKILL: return "SIGKILL"
    case SIGSEGV: return "SIGSEGV"
    case SIGABRT: return "SIGABRT"
    case SIGBUS: return "SIGBUS"
    case SIGTERM: return "SIGTERM"
    case SIGUSR1: return "SIGUSR1"
    case SIGILL: return "SIGILL"
    case SIGFPE: return "SIGFPE"
    default: return "signal \(s)"
    }
}

/// A child process started with posix_spawn: its own process group (so a terminal's Ctrl-C
/// reaches only the runner, which decides what the children get), default signal handling,
/// standard input from /dev/null and output appended to a log file.
struct ChildProcess {
    let pid: pid_t

    /// Starts `executable` with `arguments` (argv[1...]) and the environment `environment`.
    static func spawn(executable: String, arguments: [String], environment: [String: String],
                      logFile: String) throws -> ChildProcess {
        let logFD = open(logFile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard logFD >= 0 else {
            throw SweepRunnerError("cannot open the log \(logFile): \(String(cString: strerror(errno)))")
        }
        defer { close(logFD) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, logFD, 1)
        posix_spawn_file_actions_adddup2(&actions, logFD, 2)
        // Nothing else is inherited: a descriptor some library left without O_CLOEXEC (e.g.
        // Foundation's Process, which learns that a child ended when its socket closes)
        // would otherwise stay open in the child and in any daemon it starts.
        if let closeFrom = ChildProcess.closeFrom { _ = closeFrom(&actions, 3) }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for s in [SIGINT, SIGTERM, SIGUSR1, SIGHUP, SIGPIPE] { sigaddset(&defaults, s) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for p in argv { free(p) }
            for p in envp { free(p) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard rc == 0 else {
            throw SweepRunnerError("cannot start \(executable): \(String(cString: strerror(rc)))")
        }
        return ChildProcess(pid: pid)
    }

    /// glibc's posix_spawn_file_actions_addclosefrom_np (2.34 and later), looked up at run
    /// time: Swift's Glibc module does not export it. nil elsewhere.
    static let closeFrom: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32)? = {
        #if os(Linux)
        guard let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self)
        #else
        return nil
        #endif
    }()

    /// The exit, if the process has ended (reaps it); nil while it runs.
    func poll() -> ChildExit? {
        var status: Int32 = 0
        let r = waitpid(pid, &status, WNOHANG)
        guard r == pid else { return nil }
        return ChildExit(waitStatus: status)
    }

    /// Sends a signal (ignored when the process is gone).
    func signal(_ s: Int32) { _ = kill(pid, s) }
}

/// An error of the sweep runner that is not about one input file: a process that cannot be
/// started, a sweep directory in use, a failing `sbatch`.
public struct SweepRunnerError: Error, CustomStringConvertible, Equatable, Sendable {
    /// What went wrong, naming the file, command or value.
    public let message: String
    /// Creates an error with a message.
    public init(_ message: String) { self.message = message }
    /// The message.
    public var description: String { message }
}

/// Exclusive use of a sweep directory by one runner (or one planning/submitting command): a
/// non-blocking flock(2) on `SWEEP_DIR/sweep.lock`, which holds the holder's pid. Like the
/// run lock, it disappears with the process, so a killed runner never leaves it behind.
final class SweepLock {
    let path: String
    private var fd: Int32

    init(sweepDirectory: String, purpose: String) throws {
        path = (sweepDirectory as NSString).appendingPathComponent("sweep.lock")
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SweepRunnerError("cannot open \(path): \(String(cString: strerror(errno)))") }
        var rc: Int32
        repeat { rc = flock(fd, LOCK_EX | LOCK_NB) } while rc != 0 && errno == EINTR
        if rc != 0 {
            let code = errno
            close(fd)
            fd = -1
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            throw SweepRunnerError(code == EWOULDBLOCK
                ? "\(sweepDirectory) is in use\(holder.isEmpty ? "" : " by process \(holder)") (\(path) is locked): another `decoupled sweep run` works on it; wait for it to end or stop it (Ctrl-C or kill -TERM \(holder.isEmpty ? "PID" : holder))"
                : "cannot lock \(path) for \(purpose): \(String(cString: strerror(code)))")
        }
        let text = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = text.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
    }

    deinit { release() }

    func release() {
        guard fd >= 0 else { return }
        _ = ftruncate(fd, 0)
        close(fd)
        fd = -1
    }
}

/// Whether a process holds a run directory's `run.lock` (DecoupledCheckpoint.RunLock), found
/// without touching the lock: taking it, even briefly, could make a trainer that starts at
/// that moment fail. Linux lists every flock in /proc/locks with the holder's pid and the
/// file's device and inode; elsewhere the pid written in run.lock is checked for being alive.
enum RunLockProbe {
    /// The pid holding `RUN_DIR/run.lock`, or nil when nobody does.
    static func holder(runDirectory: String) -> pid_t? {
        let lockPath = (runDirectory as NSString).appendingPathComponent("run.lock")
        var st = stat()
        guard stat(lockPath, &st) == 0 else { return nil }
        if let table = try? String(contentsOfFile: "/proc/locks", encoding: .utf8) {
            let dev = UInt64(st.st_dev)
            let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & ~UInt64(0xfff))
            let minor = (dev & 0xff) | ((dev >> 12) & ~UInt64(0xff))
            let wanted = String(format: "%02llx:%02llx:%llu", major, minor, UInt64(st.st_ino))
            // "1: FLOCK  ADVISORY  WRITE 4242 fd:01:1234567 0 EOF"; "1: -> FLOCK ..." are waiters.
            for line in table.split(separator: "\n") where !line.contains("->") {
                let f = line.split(separator: " ", omittingEmptySubsequences: true)
                guard f.count >= 6, f[1] == "FLOCK", f[5].lowercased() == wanted, let pid = pid_t(f[4]) else { continue }
                return pid
            }
            return nil
        }
        guard let text = try? String(contentsOfFile: lockPath, encoding: .utf8),
              let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0,
              kill(pid, 0) == 0 || errno == EPERM else { return nil }
        return pid
    }
}

/// What a runner writes into a run directory when the trainer ended without a summary of
/// its own (it exited with an error before training, or was killed): a `summary.json` with
/// status "failed" and the reason, so reports and `sweep status` show why, and the run is
/// not retried without `--retry-failed`.
enum SweepFailureRecord {
    /// Writes the failure summary unless the trainer wrote a "failed" summary itself since
    /// `since`. The reason is the exit status and `reason`, or else the last error line of
    /// `logFile` (the trainer's output).
    static func write(runDirectory: String, exit: ChildExit, since: Date, logFile: String, logOffset: UInt64,
                      reason: String? = nil) {
        let summaryPath = (runDirectory as NSString).appendingPathComponent("summary.json")
        if let attributes = try? FileManager.default.attributesOfItem(atPath: summaryPath),
           let modified = attributes[.modificationDate] as? Date, modified >= since,
           let summary = try? RunSummary.load(from: URL(fileURLWithPath: summaryPath)), summary.status == .failed {
            return
        }
        let reason = "\(exit)" + ((reason ?? lastErrorLine(logFile: logFile, from: logOffset)).map { ": \($0)" } ?? "")
        // Keep what an earlier summary knew (how far the run got), so the record stays useful.
        var summary = (try? RunSummary.load(from: URL(fileURLWithPath: summaryPath))) ?? RunSummary(status: .failed)
        summary.status = .failed
        summary.reason = reason
        summary.writtenBy = "sweep runner"
        try? summary.write(to: summaryPath)
    }

    /// Why a trainer's exit status 0 does not make its run completed: nil when summary.json
    /// says `completed`. Only the trainer's summary tells that training reached its end; a
    /// process can exit 0 from anywhere (a plugin calling exit(0)).
    static func incompleteSuccess(_ state: SweepRunState) -> String? {
        guard state.status != .completed || state.unreadable != nil else { return nil }
        let said = state.unreadable.map { "summary.json is unreadable: \($0)" }
            ?? (state.status == nil ? "no summary.json" : "summary.json says \(state.status.label)")
        return "the trainer exited with status 0 before the end of training (\(said)); something in it called exit, e.g. a plugin"
    }

    /// The last line of the log written since `offset` that reports an error (ArgumentParser
    /// prints "Error: ..."), else its last non-empty line.
    static func lastErrorLine(logFile: String, from offset: UInt64) -> String? {
        guard let h = FileHandle(forReadingAtPath: logFile) else { return nil }
        defer { try? h.close() }
        let end = (try? h.seekToEnd()) ?? 0
        let start = max(offset, end > 16_384 ? end - 16_384 : 0)
        try? h.seek(toOffset: start)
        guard let data = try? h.readToEnd() else { return nil }
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("===") }
        let line = lines.last(where: { $0.lowercased().contains("error") }) ?? lines.last
        return line.map { String($0.prefix(500)) }
    }
}

/// Number and duration formatting for progress lines and status tables.
enum SweepFormat {
    /// Compact: 1e-3, 3e-4, 0.1, 0, 2.5e-5 (exponent form below 0.1, up to 4 significant digits).
    static func number(_ x: Double) -> String {
        if x == 0 { return "0" }
        if !x.isFinite { return "\(x)" }
        if abs(x) >= 0.1 && abs(x) < 1e5 { return trim(String(format: "%.4g", x)) }
        let e = Int(floor(log10(abs(x))))
        var m = x / pow(10, Double(e))
        var exp = e
        // 9.99996e-4 rounds to 10 at four digits: carry into the exponent.
        if abs(Double(String(format: "%.3f", m))!) >= 10 { m /= 10; exp += 1 }
        return "\(trim(String(format: "%.3f", m)))e\(exp)"
    }

    private static func trim(_ s: String) -> String {
        guard s.contains("."), !s.contains("e") else { return s }
        var t = s
        while t.hasSuffix("0") { t.removeLast() }
        if t.hasSuffix(".") { t.removeLast() }
        return t
    }

    /// 45s, 1m20s, 2h05m.
    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m\(String(format: "%02d", s % 60))s" }
        return "\(s / 3600)h\(String(format: "%02d", (s % 3600) / 60))m"
    }

    /// ISO 8601 UTC with seconds, for logs and events.
    static func timestamp(_ date: Date = Date()) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: date)
    }
}
