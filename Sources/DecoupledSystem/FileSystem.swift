import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// close(2) under a name that members called `close()` cannot shadow.
private func closeDescriptor(_ fd: Int32) { _ = close(fd) }

/// The one layer of system calls for the files this tool writes (run directories, checkpoints,
/// sweep directories, reports, datasets, replays): opening (O_NOFOLLOW, O_CLOEXEC, regular files only), EINTR retries,
/// durable writes (fsync of files and directories, atomic rename), appends, early writeback,
/// page-cache control, and errors that name the path — with the ones that mean "the disk is
/// full" classified. Other code does not call open/write/ftruncate on such files itself.
public enum FS {
    /// The suffix of a file being written before it is renamed into place (NAME.tmp).
    public static let temporarySuffix = ".tmp"

    public static func errnoText(_ code: Int32) -> String { String(cString: strerror(code)) }

    /// Errors that mean the file system refused more data: they become `diskFull`.
    public static func diskFullReason(errno code: Int32) -> String? {
        switch code {
        case ENOSPC: return "no space left on device"
        case EDQUOT: return "no space left on device (disk quota exceeded)"
        case EFBIG: return fileTooLargeReason()
        default: return nil
        }
    }

    public static func fileTooLargeReason() -> String {
        if let limit = fileSizeLimit() {
            return "file too large: the process may write files of at most \(limit) bytes (ulimit -f / RLIMIT_FSIZE)"
        }
        return "file too large"
    }

    /// RLIMIT_FSIZE in bytes, nil when unlimited.
    public static func fileSizeLimit() -> Int? {
        var limit = rlimit()
        #if canImport(Glibc)
        let resource = __rlimit_resource_t(RLIMIT_FSIZE.rawValue)
        #else
        let resource = RLIMIT_FSIZE
        #endif
        guard getrlimit(resource, &limit) == 0, limit.rlim_cur != rlim_t.max else { return nil }
        return Int(clamping: limit.rlim_cur)
    }

    /// Bytes available to this user on the file system holding `path`.
    public static func availableBytes(_ path: String) -> Int? {
        var s = statvfs()
        guard statvfs(path, &s) == 0 else { return nil }
        return Int(clamping: UInt64(s.f_bavail) &* UInt64(s.f_frsize))
    }

    /// A failed system call on `path`, classified: ENOSPC/EDQUOT/EFBIG become `diskFull`.
    public static func failure(_ operation: String, _ path: String, errno code: Int32, object: String = "") -> CheckpointError {
        if let full = diskFullReason(errno: code) { return .diskFull(file: path, object: object, reason: full) }
        return .io(path: path, operation: operation, reason: errnoText(code))
    }

    /// Repeats a system call interrupted by a signal (EINTR): every call that can block goes
    /// through here, so a SIGTERM that arrives mid-call never turns into a spurious failure.
    @discardableResult
    public static func retrying<T: BinaryInteger>(_ call: () -> T) -> T {
        while true {
            let rc = call()
            if rc >= 0 || errno != EINTR { return rc }
        }
    }

    /// A failed call on a file that is not a checkpoint: an `io` error whose reason says
    /// "no space left on device" in words when that is the cause.
    public static func ioFailure(_ operation: String, _ path: String, errno code: Int32) -> CheckpointError {
        .io(path: path, operation: operation, reason: diskFullReason(errno: code) ?? errnoText(code))
    }

    /// open(2), the one way this tool opens files: O_CLOEXEC (a child process must not
    /// inherit our descriptors), EINTR retried, and — for everything but directories —
    /// O_NOFOLLOW, so a symbolic link planted in a run directory can never redirect a write
    /// (or a truncation) to a file outside it. A file opened for writing must be a regular
    /// file. Errors name the path and the operation once, here.
    public static func openFD(_ path: String, _ flags: Int32, _ operation: String, mode: mode_t = 0o644) throws -> Int32 {
        let directory = flags & O_DIRECTORY != 0
        let fd = retrying { open(path, flags | O_CLOEXEC | (directory ? 0 : O_NOFOLLOW), mode) }
        if fd < 0 {
            let code = errno
            if code == ELOOP && !directory {
                throw CheckpointError.io(path: path, operation: operation, reason: "it is a symbolic link; refusing to follow it "
                                         + "(files in a run or sweep directory are never written through links)")
            }
            throw failure(operation, path, errno: code)
        }
        if flags & (O_WRONLY | O_RDWR) != 0 {
            var st = stat()
            if fstat(fd, &st) != 0 || (st.st_mode & S_IFMT) != S_IFREG {
                close(fd)
                throw CheckpointError.io(path: path, operation: operation, reason: "not a regular file")
            }
        }
        return fd
    }

    /// Creates a directory and its parents; an existing directory is fine. A path that exists
    /// as something else, or cannot be created, is an error naming the path in words (not a
    /// Foundation error code).
    public static func createDirectory(_ path: String) throws {
        var st = stat()
        if stat(path, &st) == 0 {
            if (st.st_mode & S_IFMT) == S_IFDIR { return }
            throw CheckpointError.io(path: path, operation: "create directory", reason: "it exists and is not a directory")
        }
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty && parent != path && parent != "/" { try createDirectory(parent) }
        if mkdir(path, 0o755) != 0 && errno != EEXIST { throw failure("create directory", path, errno: errno) }
        if !isDirectory(path) {
            throw CheckpointError.io(path: path, operation: "create directory", reason: "it exists and is not a directory")
        }
    }

    /// Writes all of `bytes` at the file's current offset (short writes and EINTR continued).
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
        var done = 0
        while done < bytes.count {
            let n = retrying { write(fd, bytes.baseAddress! + done, bytes.count - done) }
            if n < 0 { throw ioFailure("write", path, errno: errno) }
            if n == 0 { throw CheckpointError.io(path: path, operation: "write", reason: "short write") }
            done += n
        }
    }

    /// fsync(2) of a file through a descriptor of our own: Linux syncs the inode whichever
    /// descriptor asks, so this covers what HDF5 wrote through its (already closed) one.
    public static func fsyncFile(_ path: String) throws {
        let fd = try openFD(path, O_RDONLY, "open for fsync")
        defer { close(fd) }
        if retrying({ fsync(fd) }) != 0 { throw failure("fsync", path, errno: errno) }
    }

    /// fsync(2) of a directory, which makes a rename or unlink in it durable.
    public static func fsyncDirectory(_ path: String) throws {
        let fd = try openFD(path, O_RDONLY | O_DIRECTORY, "open directory for fsync")
        defer { close(fd) }
        // Some file systems (and macOS for directories) answer EINVAL: nothing more can be done there.
        if fsync(fd) != 0 && errno != EINVAL { throw failure("fsync directory", path, errno: errno) }
    }

    /// rename(2): atomic replacement of `to` within one file system.
    public static func renameFile(_ from: String, _ to: String) throws {
        if retrying({ rename(from, to) }) != 0 {
            throw CheckpointError.io(path: from, operation: "rename to '\(to)'", reason: errnoText(errno))
        }
    }

    /// Removes a file; a missing one is fine. Returns the error text otherwise.
    @discardableResult
    public static func unlinkIfPresent(_ path: String) -> String? {
        if unlink(path) == 0 || errno == ENOENT { return nil }
        return errnoText(errno)
    }

    public static func fileSize(_ path: String) -> Int? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return Int(st.st_size)
    }

    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// The absolute path with symbolic links resolved, or nil when it does not exist.
    public static func canonical(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }

    /// Writes a small file atomically and durably: NAME.tmp (created anew, never through a
    /// link), fsync, rename over NAME (which replaces a link at NAME instead of following it),
    /// directory fsync. Every small file of a run or sweep directory is written this way.
    ///
    /// `mode` is given to the creating open(2) (less the umask), so an executable script is never
    /// written and then chmod-ed by name. With `refusingLinks`, a symbolic link at NAME is an
    /// error instead of being replaced: for outputs whose directory the user chose (a report),
    /// where such a link is someone's file rather than a planted one.
    public static func writeAtomically(_ text: String, to path: String, mode: mode_t = 0o644, refusingLinks: Bool = false) throws {
        try writeAtomically(Data(text.utf8), to: path, mode: mode, refusingLinks: refusingLinks)
    }

    public static func writeAtomically(_ data: Data, to path: String, mode: mode_t = 0o644, refusingLinks: Bool = false) throws {
        if refusingLinks && isSymbolicLink(path) {
            throw CheckpointError.io(path: path, operation: "write", reason: "it is a symbolic link; refusing to replace it "
                                     + "(remove it, or choose another output directory)")
        }
        let tmp = path + temporarySuffix
        unlinkIfPresent(tmp)  // a crashed writer's leftover, or a planted link: removed, not followed
        let fd = try openFD(tmp, O_WRONLY | O_CREAT | O_EXCL, "create", mode: mode)
        var failed: Error? = nil
        do {
            try data.withUnsafeBytes { try writeAll(fd, $0, path: tmp) }
            if retrying({ fsync(fd) }) != 0 { throw ioFailure("fsync", tmp, errno: errno) }
        } catch {
            failed = error
        }
        close(fd)
        if let failed {
            unlinkIfPresent(tmp)
            throw failed
        }
        try renameFile(tmp, path)
        try fsyncDirectory((path as NSString).deletingLastPathComponent)
    }

    /// Whether `path` itself is a symbolic link (lstat: the link, not its target).
    public static func isSymbolicLink(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFLNK
    }

    /// Appends `text` to `path` (created if missing) with one write(2) on an O_APPEND
    /// descriptor, so lines from concurrent writers (trainers, array tasks, the runner) never
    /// interleave. Opened through `openFD`: never through a link, never into a non-regular file.
    public static func append(_ text: String, to path: String) throws {
        let fd = try openFD(path, O_WRONLY | O_CREAT | O_APPEND, "append to")
        defer { closeDescriptor(fd) }
        try Array(text.utf8).withUnsafeBytes { try writeAll(fd, $0, path: path) }
    }

    /// Empties the file open on `fd` (ftruncate(2), EINTR retried). Through a descriptor, so no
    /// name is resolved: the caller opened `path` through `openFD` (or HDF5 created it
    /// exclusively). Errors name `path`.
    public static func truncate(_ fd: Int32, path: String) throws {
        if retrying({ ftruncate(fd, 0) }) != 0 { throw failure("truncate", path, errno: errno) }
    }

    /// Writes `bytes` at offset 0 of the file open on `fd` (pwrite(2); EINTR retried, a short
    /// write is an error).
    public static func writeAtStart(_ fd: Int32, _ bytes: [UInt8], path: String) throws {
        let n = retrying { bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) } }
        if n < 0 { throw ioFailure("write", path, errno: errno) }
        if n != bytes.count { throw CheckpointError.io(path: path, operation: "write", reason: "short write") }
    }

    /// A file open for appending (metrics logs): opened through `openFD`, so never through a link.
    public final class AppendFile {
        public let path: String
        private var fd: Int32

        public init(_ path: String) throws {
            self.path = path
            fd = try FS.openFD(path, O_WRONLY | O_APPEND, "open for appending")
        }

        deinit { close() }

        public func write(_ data: Data) throws {
            guard fd >= 0 else { throw CheckpointError.io(path: path, operation: "append to", reason: "already closed") }
            try data.withUnsafeBytes { try FS.writeAll(fd, $0, path: path) }
        }

        public func close() {
            if fd >= 0 { closeDescriptor(fd) }
            fd = -1
        }
    }

    // MARK: writeback and page cache

    private typealias SyncFileRange = @convention(c) (Int32, Int64, Int64, UInt32) -> Int32
    /// sync_file_range(2) is Linux-only and not exported by Swift's Glibc module (it sits behind
    /// _GNU_SOURCE), so it is looked up at run time; nil elsewhere.
    private static let syncFileRange: SyncFileRange? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "sync_file_range") else { return nil }
        return unsafeBitCast(symbol, to: SyncFileRange.self)
    }()

    /// Starts writeback of the file's dirty pages without waiting (SYNC_FILE_RANGE_WRITE).
    /// Why: left alone, Linux starts writing only when the final fsync asks (a checkpoint is far
    /// below the dirty-page thresholds), so the disk idles while we copy into the page cache.
    /// Errors are ignored: this only moves work earlier, the fsync still decides.
    public static func startWriteback(_ fd: Int32) {
        _ = syncFileRange?(fd, 0, 0, 2 /* SYNC_FILE_RANGE_WRITE */)
    }

    /// Asks the kernel to read the whole file ahead (POSIX_FADV_WILLNEED), so the disk streams
    /// while we checksum what has arrived. Skipped for files larger than a quarter of memory.
    public static func adviseWillNeed(_ path: String) {
        guard let size = fileSize(path), size <= Int(ProcessInfo.processInfo.physicalMemory / 4),
              let fd = try? openFD(path, O_RDONLY, "open") else { return }
        _ = posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED)
        close(fd)
    }

    /// Drops the file's pages from the page cache (fdatasync, then POSIX_FADV_DONTNEED), so the
    /// next read comes from the disk. Returns the fraction of pages still resident afterwards,
    /// or nil when residency cannot be measured.
    public static func dropFromPageCache(_ path: String) throws -> Double? {
        let fd = try openFD(path, O_RDONLY, "open")
        defer { close(fd) }
        _ = fdatasync(fd)
        _ = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)
        return residentFraction(fd: fd)
    }

    /// mincore(2) over a read-only mapping of the file: the fraction of its pages in memory.
    public static func residentFraction(fd: Int32) -> Double? {
        var st = stat()
        guard fstat(fd, &st) == 0 else { return nil }
        let size = Int(st.st_size)
        if size == 0 { return 0 }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        guard let map = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0), map != MAP_FAILED else { return nil }
        defer { munmap(map, size) }
        let pages = (size + page - 1) / page
        var vec = [UInt8](repeating: 0, count: pages)
        guard mincore(map, size, &vec) == 0 else { return nil }
        return Double(vec.reduce(0) { $0 + Int($1 & 1) }) / Double(pages)
    }
}
