import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a directory could not be locked: another process (or another `DirectoryLock` in this
/// process) holds it, or the lock file could not be opened.
public struct DirectoryLockError: Error, Equatable, CustomStringConvertible {
    /// The directory, as the caller named it.
    public var directory: String
    /// The holder's process id as it wrote it into the lock file; nil when not known.
    public var holderPID: Int32?
    /// What went wrong, in words.
    public var reason: String
    /// "run directory", "sweep directory": what was to be locked.
    public var noun: String
    /// What the lock was taken for ("planning", "running"), when the caller said.
    public var purpose: String?

    /// A refusal to lock `directory`.
    public init(directory: String, holderPID: Int32?, reason: String, noun: String = DirectoryLock.Kind.run.noun,
                purpose: String? = nil) {
        self.directory = directory
        self.holderPID = holderPID
        self.reason = reason
        self.noun = noun
        self.purpose = purpose
    }

    public var description: String { "cannot lock \(noun) '\(directory)'\(purpose.map { " for \($0)" } ?? ""): \(reason)" }
}

/// The run directory's lock error keeps its name for the code and tests that catch it.
public typealias RunLockError = DirectoryLockError
/// The run directory's lock is a `DirectoryLock` of kind `.run`.
public typealias RunLock = DirectoryLock

/// Exclusive ownership of a directory by one process — a run directory (`run.lock`) or a sweep
/// directory (`sweep.lock`): a non-blocking flock(2) on `DIR/<kind.fileName>`, whose content is
/// the holder's pid so a refused process can say who holds it. A second process — or a second
/// `DirectoryLock` in the same process, since flock locks belong to an open file description —
/// fails at once instead of corrupting the directory.
///
/// The lock goes away with the descriptor: on `release()`, on deinit, and when the process
/// exits or is killed, so a crashed run never leaves the directory locked. The descriptor is
/// close-on-exec, so child processes do not keep the lock alive. The file itself is kept
/// (deleting a lock file races with a process that just opened it). It is opened through
/// `FS.openFD`, so a lock file replaced by a symbolic link is refused, never followed.
public final class DirectoryLock {
    /// What is locked: the lock file's name and the words used in refusals.
    public struct Kind: Sendable, Equatable {
        /// "run directory".
        public let noun: String
        /// "run.lock".
        public let fileName: String
        /// What the refused user can do about a holder with pid PID (the text PID is replaced).
        public let advice: String

        public init(noun: String, fileName: String, advice: String) {
            self.noun = noun
            self.fileName = fileName
            self.advice = advice
        }

        /// A run directory, held by its trainer.
        public static let run = Kind(noun: "run directory", fileName: "run.lock",
                                     advice: "wait for that run to end or stop it")
        /// A sweep directory, held by a runner or a planning/submitting command.
        public static let sweep = Kind(noun: "sweep directory", fileName: "sweep.lock",
                                       advice: "another `decoupled sweep run` works on it; wait for it to end or stop it (Ctrl-C or kill -TERM PID)")
    }

    /// The directory, as the caller named it.
    public let directory: String
    /// `DIR/<kind.fileName>`.
    public let lockPath: String
    public let kind: Kind
    private var fd: Int32
    /// The lock file with the directory's symbolic links resolved: the key under which this
    /// process's locks are known.
    let canonicalLockPath: String

    /// The run directory (the name the trainer and the checkpoint store use).
    public var runDirectory: String { directory }

    /// Locks a run directory (created if missing).
    public convenience init(runDirectory: String) throws {
        try self.init(runDirectory, kind: .run)
    }

    /// Locks `directory` (created if missing), or throws `DirectoryLockError` naming the
    /// holder's pid when another lock is held. Never blocks: a held lock is retried for 0.25 s
    /// at most. `purpose` ("planning") only goes into the refusal's text.
    public init(_ directory: String, kind: Kind, purpose: String? = nil) throws {
        self.directory = directory
        self.kind = kind
        let lockPath = (directory as NSString).appendingPathComponent(kind.fileName)
        self.lockPath = lockPath
        func fail(_ reason: String, pid: Int32? = nil) -> DirectoryLockError {
            DirectoryLockError(directory: directory, holderPID: pid, reason: reason, noun: kind.noun, purpose: purpose)
        }
        do { try FS.createDirectory(directory) } catch let e as CheckpointError { throw fail(e.reason) }
        guard let canonical = FS.canonical(directory) else { throw fail("cannot resolve the path: \(FS.errnoText(errno))") }
        let canonicalLock = (canonical as NSString).appendingPathComponent(kind.fileName)
        canonicalLockPath = canonicalLock

        // Through FS.openFD: never through a symbolic link, so a lock file replaced by a link
        // cannot make the pid write below truncate a file elsewhere.
        let fd: Int32
        do { fd = try FS.openFD(lockPath, O_RDWR | O_CREAT, "open the lock file") } catch let e as CheckpointError {
            throw fail(e.reason)
        }
        // Non-blocking, with a short grace period: while another thread of a process forks a
        // child, the child holds a copy of every descriptor until its exec closes the
        // close-on-exec ones — a lock just released can look held for that instant.
        var rc: Int32
        let deadline = DispatchTime.now().uptimeNanoseconds + DirectoryLock.graceNanoseconds
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
            let pid = DirectoryLock.holderPID(lockPath)
            let inThisProcess = DirectoryLock.registered(lockPath: canonicalLock) != nil
            let who: String
            if inThisProcess {
                who = "this process (pid \(getpid())) already holds it through another lock"
            } else if let pid {
                who = "it is in use by process \(pid) (the holder of \(lockPath)); "
                    + kind.advice.replacingOccurrences(of: "PID", with: "\(pid)")
            } else {
                who = "it is in use by another process, which has not yet written its pid into \(lockPath)"
            }
            throw fail(who, pid: inThisProcess ? getpid() : pid)
        }
        // Ours now: record the pid for whoever is refused next.
        do {
            try FS.truncate(fd, path: lockPath)
            try FS.writeAtStart(fd, Array("\(getpid())\n".utf8), path: lockPath)
        } catch let e as CheckpointError {
            close(fd)
            throw fail("cannot write the pid into \(lockPath): \(e.reason)")
        }
        self.fd = fd
        DirectoryLock.register(self)
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
        try? FS.truncate(fd, path: lockPath)  // only a courtesy to readers: the flock is what counts
        close(fd)  // closing the last descriptor of the open file description drops the flock
        fd = -1
        DirectoryLock.unregister(self)
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

    /// The pid of the process holding `DIR/<kind.fileName>`, or nil when nobody does, found
    /// without touching the lock: taking it, even briefly, could make a holder that starts at
    /// that moment fail. Linux lists every flock in /proc/locks with the holder's pid and the
    /// file's device and inode; elsewhere the pid written in the file is checked for being
    /// alive, so a stale pid left by a killed holder does not count.
    public static func holder(of directory: String, kind: Kind = .run) -> pid_t? {
        let lockPath = (directory as NSString).appendingPathComponent(kind.fileName)
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

    // MARK: the locks this process holds

    private final class WeakRef { weak var lock: DirectoryLock?; init(_ l: DirectoryLock) { lock = l } }
    private static var held: [String: WeakRef] = [:]
    private static let heldGuard = NSLock()

    private static func register(_ lock: DirectoryLock) {
        heldGuard.lock(); defer { heldGuard.unlock() }
        held[lock.canonicalLockPath] = WeakRef(lock)
    }

    private static func unregister(_ lock: DirectoryLock) {
        heldGuard.lock(); defer { heldGuard.unlock() }
        if held[lock.canonicalLockPath]?.lock === lock || held[lock.canonicalLockPath]?.lock == nil {
            held[lock.canonicalLockPath] = nil
        }
    }

    /// The live lock of kind `kind` this process holds on the directory with canonical path
    /// `canonical`.
    public static func registered(_ canonical: String, kind: Kind = .run) -> DirectoryLock? {
        registered(lockPath: (canonical as NSString).appendingPathComponent(kind.fileName))
    }

    private static func registered(lockPath: String) -> DirectoryLock? {
        heldGuard.lock(); defer { heldGuard.unlock() }
        guard let lock = held[lockPath]?.lock, lock.isHeld else { return nil }
        return lock
    }
}
