import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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

    /// The shell's number for it: the exit status, or 128 + the signal.
    public var status: Int32 {
        switch self {
        case .exited(let c): return c
        case .signaled(let s): return 128 + s
        }
    }

    /// "exit status 1", "signal 9 (SIGKILL)".
    public var description: String {
        switch self {
        case .exited(let c): return "exit status \(c)"
        case .signaled(let s): return "signal \(s) (\(signalName(s)))"
        }
    }
}

/// poll(2) under a name that `Subprocess.poll()` cannot shadow; EINTR is "nothing yet".
private func pollDescriptors(_ fds: inout [pollfd], _ milliseconds: Int32) -> Int32 {
    poll(&fds, nfds_t(fds.count), milliseconds)
}

/// The usual name of a signal number.
public func signalName(_ s: Int32) -> String {
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

/// A child process that could not be started, or did not end in time.
public enum SubprocessError: Error, Equatable, CustomStringConvertible {
    /// posix_spawn (or setting up its output) failed.
    case cannotStart(executable: String, reason: String)
    /// Still running after `seconds`; it was killed (SIGKILL) and reaped.
    case timedOut(command: String, seconds: Double)
    /// A `SubprocessConversation`'s child stopped reading its input (it ended, most likely).
    case stoppedReading(command: String, reason: String)

    public var description: String {
        switch self {
        case .cannotStart(let exe, let reason): return "cannot start \(exe): \(reason)"
        case .timedOut(let command, let seconds):
            return "\(command) did not finish within \(String(format: "%g", seconds)) s; it was killed"
        case .stoppedReading(let command, let reason): return "\(command) stopped reading its input: \(reason)"
        }
    }
}

/// The one way this tool starts a child process (trainers, Slurm clients, gnuplot, the h5py
/// helpers): posix_spawn with standard input from /dev/null, default signal handling and an
/// empty signal mask, and no inherited descriptor beyond 0–2 — so a child never keeps a lock,
/// a pipe or an HDF5 file of ours open. Foundation's `Process` is not used: it learns that a
/// child ended when a socket the child inherited closes, and daemons started by the child
/// (a Slurm test cluster) would inherit it too and keep it open.
///
/// `spawn` starts a child and returns at once (a sweep's trainers, polled); `run` waits for it,
/// with the output captured or logged and an optional time limit.
public struct Subprocess: Sendable {
    /// Where the child's standard output and error go.
    public enum Output: Sendable {
        /// Into the result's `stdout` and `stderr` (`run` only).
        case capture
        /// To /dev/null.
        case discard
        /// Both appended to this file (created if missing; through `FS`, so never via a link).
        case appendTo(String)
    }

    /// The few ways the callers' children differ.
    public struct Options: Sendable {
        /// The child's environment; nil inherits ours.
        public var environment: [String: String]?
        /// The child's working directory; nil keeps ours.
        public var workingDirectory: String?
        public var output: Output
        /// `run` kills the child (SIGKILL) after this
        /// many seconds and throws `SubprocessError.timedOut`; nil waits for ever.
        public var timeout: Double?
        /// Start the child in a process group of its own, so a terminal's Ctrl-C reaches only
        /// us, and we decide what the children get.
        public var newProcessGroup: Bool

        public init(environment: [String: String]? = nil, workingDirectory: String? = nil, output: Output = .capture,
                    timeout: Double? = nil, newProcessGroup: Bool = false) {
            self.environment = environment
            self.workingDirectory = workingDirectory
            self.output = output
            self.timeout = timeout
            self.newProcessGroup = newProcessGroup
        }
    }

    /// A finished child: how it ended and what it wrote (empty unless captured).
    public struct Result: Sendable {
        public var exit: ChildExit
        public var stdout: String
        public var stderr: String
        /// The exit status, or 128 + the signal that killed it.
        public var status: Int32 { exit.status }
    }

    public let pid: pid_t

    /// Starts `executable` (a path, or a name looked up on PATH) with `arguments` (argv[1...]). `.capture` is for `run`; here
    /// it means /dev/null.
    public static func spawn(_ executable: String, _ arguments: [String], options: Options = Options()) throws -> Subprocess {
        try spawn(executable, arguments, options: options, captureInto: nil)
    }

    /// Runs `executable` to its end (or the time limit) and returns how it ended and, with
    /// `.capture`, its output. Both pipes are drained as they fill, so a chatty child cannot
    /// block; once the child has ended, what is left in them is read without waiting for EOF,
    /// so a daemon that inherited them cannot make this hang.
    public static func run(_ executable: String, _ arguments: [String], options: Options = Options()) throws -> Result {
        var pipes: [[Int32]] = []
        if case .capture = options.output {
            for _ in 0..<2 {
                var p: [Int32] = [-1, -1]
                guard pipe(&p) == 0 else {
                    let reason = FS.errnoText(errno)
                    for q in pipes { q.forEach { _ = close($0) } }
                    throw SubprocessError.cannotStart(executable: executable, reason: "pipe: \(reason)")
                }
                for fd in p { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
                _ = fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK)
                pipes.append(p)
            }
        }
        let child: Subprocess
        do {
            child = try spawn(executable, arguments, options: options, captureInto: pipes.isEmpty ? nil : (pipes[0][1], pipes[1][1]))
        } catch {
            for p in pipes { p.forEach { _ = close($0) } }
            throw error
        }
        for p in pipes { _ = close(p[1]) }
        var open = pipes.map { $0[0] }
        defer { open.forEach { _ = close($0) } }
        var collected = [[UInt8]](repeating: [], count: pipes.count)

        /// Reads what the pipes hold; waits up to `milliseconds` for something to arrive.
        func drain(waiting milliseconds: Int32) {
            guard !open.isEmpty else { return }
            var fds = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            guard pollDescriptors(&fds, milliseconds) > 0 else { return }
            var buffer = [UInt8](repeating: 0, count: 65_536)
            for f in fds where f.revents != 0 {
                let index = pipes.firstIndex { $0[0] == f.fd }!
                while true {
                    let n = buffer.withUnsafeMutableBytes { read(f.fd, $0.baseAddress, $0.count) }
                    if n > 0 { collected[index].append(contentsOf: buffer[0..<n]); continue }
                    if n < 0 && errno == EINTR { continue }
                    if n == 0 { _ = close(f.fd); open.removeAll { $0 == f.fd } }  // EOF
                    break  // EAGAIN: empty for now
                }
            }
        }

        let deadline = options.timeout.map { Date().addingTimeInterval($0) }
        var exit: ChildExit?
        while exit == nil {
            if open.isEmpty { usleep(5_000) } else { drain(waiting: 20) }
            exit = child.poll()
            if exit == nil, let deadline, Date() >= deadline {
                // SIGKILL: a Slurm client, for one, goes on retrying (and redelivering signals)
                // after SIGTERM; the time limit is for answers that will not come.
                child.signal(SIGKILL)
                _ = child.wait()
                let command = ([executable] + arguments).joined(separator: " ")
                throw SubprocessError.timedOut(command: command, seconds: options.timeout!)
            }
        }
        // Everything the child wrote is in the pipes now; take it without waiting for an EOF
        // that a grandchild holding the write end could delay for ever.
        var before = -1
        while !open.isEmpty && collected.reduce(0, { $0 + $1.count }) != before {
            before = collected.reduce(0) { $0 + $1.count }
            drain(waiting: 0)
        }
        return Result(exit: exit!, stdout: String(decoding: collected.first ?? [], as: UTF8.self),
                      stderr: String(decoding: collected.count > 1 ? collected[1] : [], as: UTF8.self))
    }

    static func spawn(_ executable: String, _ arguments: [String], options: Options,
                                  captureInto capture: (Int32, Int32)?, input: Int32? = nil) throws -> Subprocess {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let input {
            posix_spawn_file_actions_adddup2(&actions, input, 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        var logFD: Int32 = -1
        defer { if logFD >= 0 { _ = close(logFD) } }
        switch (options.output, capture) {
        case (_, .some(let pair)):
            posix_spawn_file_actions_adddup2(&actions, pair.0, 1)
            posix_spawn_file_actions_adddup2(&actions, pair.1, 2)
        case (.appendTo(let path), nil):
            // Opened here, through FS (no link, regular file only), and handed to the child:
            // the child never opens the log by name.
            do { logFD = try FS.openFD(path, O_WRONLY | O_CREAT | O_APPEND, "open the log") } catch {
                throw SubprocessError.cannotStart(executable: executable, reason: "\(error)")
            }
            posix_spawn_file_actions_adddup2(&actions, logFD, 1)
            posix_spawn_file_actions_adddup2(&actions, logFD, 2)
        case (.capture, nil), (.discard, nil):
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        }
        if let dir = options.workingDirectory {
            guard let addChdir = Subprocess.addChdir else {
                throw SubprocessError.cannotStart(executable: executable,
                                                  reason: "this C library cannot set a child's working directory (\(dir)): posix_spawn_file_actions_addchdir_np is missing")
            }
            _ = addChdir(&actions, dir)
        }
        // Nothing else is inherited: a descriptor some library left without O_CLOEXEC would
        // otherwise stay open in the child and in any daemon it starts.
        if let closeFrom = Subprocess.closeFrom { _ = closeFrom(&actions, 3) }

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
        var flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF
        if options.newProcessGroup {
            posix_spawnattr_setpgroup(&attributes, 0)
            flags |= POSIX_SPAWN_SETPGROUP
        }
        posix_spawnattr_setflags(&attributes, Int16(flags))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = options.environment.map { $0.map { strdup("\($0.key)=\($0.value)") } + [nil] }
        defer {
            for p in argv { free(p) }
            for p in envp ?? [] { free(p) }
        }
        var pid: pid_t = 0
        // posix_spawnp: a bare name ("python3") is looked up on our PATH, as a shell would.
        let rc = envp.map { posix_spawnp(&pid, executable, &actions, &attributes, argv, $0) }
            ?? posix_spawnp(&pid, executable, &actions, &attributes, argv, environ)
        guard rc == 0 else { throw SubprocessError.cannotStart(executable: executable, reason: FS.errnoText(rc)) }
        return Subprocess(pid: pid)
    }

    private typealias FileActions = UnsafeMutablePointer<posix_spawn_file_actions_t>
    /// glibc's posix_spawn_file_actions_addclosefrom_np (2.34 and later) and
    /// posix_spawn_file_actions_addchdir_np (2.29), looked up at run time: Swift's Glibc module
    /// does not export them. nil elsewhere.
    private static let closeFrom: (@convention(c) (FileActions, Int32) -> Int32)? = symbol("posix_spawn_file_actions_addclosefrom_np")
    private static let addChdir: (@convention(c) (FileActions, UnsafePointer<CChar>) -> Int32)? = symbol("posix_spawn_file_actions_addchdir_np")

    private static func symbol<T>(_ name: String) -> T? {
        #if os(Linux)
        guard let s = dlsym(nil, name) else { return nil }
        return unsafeBitCast(s, to: T.self)
        #else
        return nil
        #endif
    }

    /// The exit, if the process has ended (reaps it); nil while it runs.
    public func poll() -> ChildExit? {
        var status: Int32 = 0
        let r = waitpid(pid, &status, WNOHANG)
        guard r == pid else { return nil }
        return ChildExit(waitStatus: status)
    }

    /// Waits for the process to end and reaps it.
    public func wait() -> ChildExit? {
        var status: Int32 = 0
        guard FS.retrying({ waitpid(pid, &status, 0) }) == pid else { return nil }
        return ChildExit(waitStatus: status)
    }

    /// Sends a signal to the child itself (ignored when the process is gone). Not to its group:
    /// a trainer handles SIGTERM by checkpointing, and what it started is its own business.
    public func signal(_ s: Int32) { _ = kill(pid, s) }
}
