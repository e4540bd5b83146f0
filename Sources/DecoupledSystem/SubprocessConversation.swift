import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// send(2) with MSG_NOSIGNAL, under a name the conversation's `send` does not shadow.
private func sendWithoutSIGPIPE(_ fd: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
    send(fd, bytes, count, Int32(MSG_NOSIGNAL))
}

/// A child process kept alive and asked one line at a time (`decoupled bench kernels --torch`
/// asks a persistent PyTorch process for one timed round after another, between ours). It is
/// started like every other child (`Subprocess`: default signals, no inherited descriptors
/// beyond 0–2), but its standard input and output are connected to us; its standard error is
/// collected (the last 64 KiB) for error messages.
///
/// The child's input is one end of a Unix socket pair rather than a pipe, so that writing to a
/// child that has ended fails with EPIPE (`send` with MSG_NOSIGNAL) instead of killing this
/// process with SIGPIPE. Dropping the conversation kills (SIGKILL) and reaps a child that has
/// not been `finish`ed.
public final class SubprocessConversation {
    public let process: Subprocess
    /// The command line, for messages.
    public let command: String
    private var input: Int32
    private var output: Int32
    private var errors: Int32
    private var pending: [UInt8] = []
    private var collectedErrors: [UInt8] = []
    private var ended: ChildExit?
    private static let keptErrorBytes = 65_536

    /// Starts `executable` with `arguments`; `environment` nil inherits ours.
    public init(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws {
        command = ([executable] + arguments).joined(separator: " ")
        var socketEnds: [Int32] = [-1, -1], outPipe: [Int32] = [-1, -1], errPipe: [Int32] = [-1, -1]
        func closeAll() { (socketEnds + outPipe + errPipe).filter { $0 >= 0 }.forEach { _ = close($0) } }
        #if os(Linux)
        let streamType = Int32(SOCK_STREAM.rawValue)
        #else
        let streamType = SOCK_STREAM
        #endif
        guard socketpair(AF_UNIX, streamType, 0, &socketEnds) == 0, pipe(&outPipe) == 0, pipe(&errPipe) == 0 else {
            let reason = FS.errnoText(errno)
            closeAll()
            throw SubprocessError.cannotStart(executable: executable, reason: "socketpair/pipe: \(reason)")
        }
        for fd in socketEnds + outPipe + errPipe { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        for fd in [outPipe[0], errPipe[0]] { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        do {
            process = try Subprocess.spawn(executable, arguments, options: Subprocess.Options(environment: environment),
                                           captureInto: (outPipe[1], errPipe[1]), input: socketEnds[1])
        } catch {
            closeAll()
            throw error
        }
        for fd in [socketEnds[1], outPipe[1], errPipe[1]] { _ = close(fd) }
        input = socketEnds[0]
        output = outPipe[0]
        errors = errPipe[0]
    }

    deinit {
        if ended == nil {
            process.signal(SIGKILL)
            _ = process.wait()
        }
        for fd in [input, output, errors] where fd >= 0 { _ = close(fd) }
    }

    /// Writes `line` and a newline to the child's standard input.
    public func send(_ line: String) throws {
        guard input >= 0 else { throw SubprocessError.stoppedReading(command: command, reason: "its input is closed") }
        let bytes = Array((line + "\n").utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { sendWithoutSIGPIPE(input, $0.baseAddress! + sent, $0.count - sent) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw SubprocessError.stoppedReading(command: command, reason: FS.errnoText(errno)) }
            sent += n
        }
    }

    /// The child's next line of standard output without its newline; nil when the child closed
    /// its output (it ended, as a rule). After `timeout` seconds without a whole line the child is
    /// killed and `SubprocessError.timedOut` thrown.
    public func receiveLine(timeout: Double) throws -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: pending[..<newline], as: UTF8.self)
                pending.removeSubrange(...newline)
                return line
            }
            if output < 0 {
                guard !pending.isEmpty else { return nil }
                defer { pending.removeAll() }
                return String(decoding: pending, as: UTF8.self)
            }
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else {
                process.signal(SIGKILL)
                ended = process.wait()
                throw SubprocessError.timedOut(command: command, seconds: timeout)
            }
            drain(waitingMilliseconds: Int32(min(left * 1000 + 1, 1000)))
        }
    }

    /// What the child has written to standard error so far (its last 64 KiB).
    public var standardError: String {
        drain(waitingMilliseconds: 0)
        return String(decoding: collectedErrors, as: UTF8.self)
    }

    /// Closes the child's input (a well-behaved child then exits), waits up to `timeout`
    /// seconds for it to end — killing it after that — and returns how it ended.
    @discardableResult
    public func finish(timeout: Double) -> ChildExit {
        if let ended { return ended }
        if input >= 0 { _ = close(input); input = -1 }
        let deadline = Date().addingTimeInterval(timeout)
        var exit = process.poll()
        while exit == nil && Date() < deadline {
            drain(waitingMilliseconds: 20)
            if output < 0 && errors < 0 { usleep(5_000) }
            exit = process.poll()
        }
        if exit == nil {
            process.signal(SIGKILL)
            exit = process.wait()
        }
        drain(waitingMilliseconds: 0)
        ended = exit ?? .signaled(SIGKILL)
        return ended!
    }

    /// Moves what the child's output and error pipes hold into `pending` and `collectedErrors`;
    /// waits up to `milliseconds` for something to arrive. A pipe at EOF is closed (-1).
    private func drain(waitingMilliseconds milliseconds: Int32) {
        var fds = [output, errors].filter { $0 >= 0 }.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        guard !fds.isEmpty, poll(&fds, nfds_t(fds.count), milliseconds) > 0 else { return }
        var buffer = [UInt8](repeating: 0, count: 65_536)
        for f in fds where f.revents != 0 {
            while true {
                let n = buffer.withUnsafeMutableBytes { read(f.fd, $0.baseAddress, $0.count) }
                if n > 0 {
                    if f.fd == output {
                        pending.append(contentsOf: buffer[0..<n])
                    } else {
                        collectedErrors.append(contentsOf: buffer[0..<n])
                        if collectedErrors.count > Self.keptErrorBytes {
                            collectedErrors.removeFirst(collectedErrors.count - Self.keptErrorBytes)
                        }
                    }
                    continue
                }
                if n < 0 && errno == EINTR { continue }
                if n == 0 {  // EOF
                    _ = close(f.fd)
                    if f.fd == output { output = -1 } else { errors = -1 }
                }
                break  // EAGAIN: empty for now
            }
        }
    }
}
