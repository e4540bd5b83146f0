import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a run directory could not be locked: another process (or another `RunLock` in this
/// process) holds it, or the lock file could not be opened.
public struct RunLockError: Error, Equatable, CustomStringConvertible {
    /// The run directory, as the caller named it.
    public var directory: String
    /// The holder's process id as it wrote it into `run.lock`; nil when not known.
    public var holderPID: Int32?
    /// What went wrong, in words.
    public var reason: String

    /// A refusal to lock `directory`.
    public init(directory: String, holderPID: Int32?, reason: String) {
        self.directory = directory
        self.holderPID = holderPID
        self.reason = reason
    }

    public var description: String { "cannot lock run directory '\(directory)': \(reason)" }
}

/// Exclusive ownership of a run directory by one process: a non-blocking flock(2) on
/// `RUN_DIR/run.lock`, whose content is the holder's pid so a refused process can say who
/// holds it. A second process — or a second `RunLock` in the same process, since flock locks
/// belong to an open file description — fails at once instead of corrupting the run.
///
/// The lock goes away with the descriptor: on `release()`, on deinit, and when the process
/// exits or is killed, so a crashed run never leaves the directory locked. The descriptor is
/// close-on-exec, so child processes do not keep the lock alive. The file itself is kept
/// (deleting a lock file races with a process that just opened it).
public final class RunLock {
    /// The run directory, as the caller named it.
    public let runDirectory: String
    /// `RUN_DIR/run.lock`.
    public let lockPath: String
    private var fd: Int32
    /// The directory with symbolic links resolved: the key under which this process's locks are known.
    let canonicalDirectory: String

    /// Locks `runDirectory` (created if missing), or throws `RunLockError` naming the holder's
    /// pid when another lock is held. Never blocks: a held lock is retried for 0.25 s at most.
    public init(runDirectory: String) throws {
        self.runDirectory = runDirectory
        lockPath = (runDirectory as NSString).appendingPathComponent("run.lock")
        func fail(_ reason: String, pid: Int32? = nil) -> RunLockError {
            RunLockError(directory: runDirectory, holderPID: pid, reason: reason)
        }
        do { try FS.createDirectory(runDirectory) } catch let e as CheckpointError { throw fail(e.reason) }
        guard let canonical = FS.canonical(runDirectory) else { throw fail("cannot resolve the path: \(FS.errnoText(errno))") }
        canonicalDirectory = canonical

        // Through FS.openFD: never through a symbolic link, so a `run.lock` replaced by a link
        // cannot make the pid write below truncate a file elsewhere.
        let fd: Int32
        do { fd = try FS.openFD(lockPath, O_RDWR | O_CREAT, "open the lock file") } catch let e as CheckpointError {
            throw fail(e.reason)
        }
        // Non-blocking, with a short grace period: while another thread of a process forks a
        // child, the child holds a copy of every descriptor until its exec closes the
        // close-on-exec ones — a lock just released can look held for that instant.
        var rc: Int32
        let deadline = DispatchTime.now().uptimeNanoseconds + RunLock.graceNanoseconds
        while true {
            rc = flock(fd, LOCK_EX | LOCK_NB)
            if rc == 0 { break }
            if errno == EINTR { continue }
            if errno != EWOULDBLOCK || DispatchTime.now().uptimeNanoseconds >= deadline { break }
            usleep(10_000)
        }
        if rc != 0 {
            let code = errno
            close(fd)
            guard code == EWOULDBLOCK else { throw fail("flock(\(lockPath)) failed: \(FS.errnoText(code))") }
            let pid = RunLock.holderPID(lockPath)
            let inThisProcess = RunLock.registered(canonical) != nil
            let who: String
            if inThisProcess {
                who = "this process (pid \(getpid())) already holds it through another RunLock"
            } else if let pid {
                who = "it is in use by process \(pid) (the holder of \(lockPath)); wait for that run to end or stop it"
            } else {
                who = "it is in use by another process, which has not yet written its pid into \(lockPath)"
            }
            throw fail(who, pid: inThisProcess ? getpid() : pid)
        }
        // Ours now: record the pid for whoever is refused next.
        let text = Array("\(getpid())\n".utf8)
        if FS.retrying({ ftruncate(fd, 0) }) != 0
            || FS.retrying({ text.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) } }) != text.count {
            let code = errno
            close(fd)
            throw fail("cannot write the pid into \(lockPath): \(FS.errnoText(code))")
        }
        self.fd = fd
        RunLock.register(self)
    }

    deinit { release() }

    /// How long a held lock is retried before refusing (well within the promised second).
    static let graceNanoseconds: UInt64 = 250_000_000

    /// Whether this object still holds the lock.
    public var isHeld: Bool { fd >= 0 }

    /// Releases the lock now (also done on deinit and process exit). The pid is cleared first,
    /// while the lock is still ours, so it never erases the pid of a next holder.
    public func release() {
        guard fd >= 0 else { return }
        FS.retrying { ftruncate(fd, 0) }
        close(fd)  // closing the last descriptor of the open file description drops the flock
        fd = -1
        RunLock.unregister(self)
    }

    /// The pid written in the lock file. A holder writes it right after locking, so an empty
    /// file is re-read for up to 0.2 s before giving up.
    static func holderPID(_ path: String) -> Int32? {
        for attempt in 0..<20 {
            if let text = try? String(contentsOfFile: path, encoding: .utf8),
               let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
                return pid
            }
            if attempt < 19 { usleep(10_000) }
        }
        return nil
    }

    // MARK: the locks this process holds

    private final class WeakRef { weak var lock: RunLock?; init(_ l: RunLock) { lock = l } }
    private static var held: [String: WeakRef] = [:]
    private static let heldGuard = NSLock()

    private static func register(_ lock: RunLock) {
        heldGuard.lock(); defer { heldGuard.unlock() }
        held[lock.canonicalDirectory] = WeakRef(lock)
    }

    private static func unregister(_ lock: RunLock) {
        heldGuard.lock(); defer { heldGuard.unlock() }
        if held[lock.canonicalDirectory]?.lock === lock || held[lock.canonicalDirectory]?.lock == nil {
            held[lock.canonicalDirectory] = nil
        }
    }

    /// The live lock this process holds on the directory with canonical path `canonical`.
    static func registered(_ canonical: String) -> RunLock? {
        heldGuard.lock(); defer { heldGuard.unlock() }
        guard let lock = held[canonical]?.lock, lock.isHeld else { return nil }
        return lock
    }
}
