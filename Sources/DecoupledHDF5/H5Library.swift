import CHDF5
import Foundation

/// Where an HDF5 call is aimed, for error messages: the file path and the object path in it.
struct H5Where {
    var file: String
    var object: String
}

/// The one choke point through which every HDF5 C call goes.
///
/// Why one place: HDF5 reports failures through a negative return value plus an error stack
/// that the *next* API call clears, and (by default) prints that stack to stderr. Running each
/// call here lets us (1) silence the printing on every thread that uses HDF5 (in thread-safe
/// builds the setting is per thread), (2) capture the stack immediately after a failing call,
/// before anything else can clear it, and turn it into an `HDF5Error` naming file and object,
/// and (3) serialize all calls with one lock, so the prefetching loader thread and the caller
/// may both use HDF5 even when libhdf5 was built without its own thread-safety.
enum H5 {
    /// Recursive, so a multi-call unit (`locked`) may use `call` inside.
    private static let lock = NSRecursiveLock()

    /// A per-thread marker: set once the calling thread has turned off HDF5's error printing.
    private static let silencedKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    @inline(__always)
    private static func silenceThisThread() {
        if pthread_getspecific(silencedKey) == nil {
            _ = dc_h5e_silence()
            pthread_setspecific(silencedKey, UnsafeRawPointer(bitPattern: 1))
        }
    }

    /// Runs `body` (one HDF5 C call) under the library lock; a negative result becomes an
    /// `HDF5Error` carrying the captured error stack.
    @discardableResult
    static func call<T: BinaryInteger>(_ operation: @autoclosure () -> String, _ at: H5Where,
                                       _ body: () -> T) throws -> T {
        lock.lock()
        defer { lock.unlock() }
        silenceThisThread()
        let result = body()
        if result < 0 {
            let stack = captureStack()
            throw HDF5Error(operation: operation(), file: at.file, object: at.object,
                            reason: stack.reason, stack: stack.lines)
        }
        return result
    }

    /// For C calls that cannot fail in a way we could act on (releasing handles in `deinit`,
    /// queries used only for display): still locked and silenced, the result passed through.
    @discardableResult
    static func unchecked<T>(_ body: () -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        silenceThisThread()
        return body()
    }

    /// Runs several C calls as one locked unit, for sequences that must not interleave with
    /// another thread. Also used around spawning child processes: a child forked while HDF5 is
    /// between open(2) and our FD_CLOEXEC would inherit the descriptor and, with it, HDF5's
    /// flock, so a later reopen in this process would fail with "unable to lock file".
    static func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        silenceThisThread()
        return try body()
    }

    /// Copies the current thread's error stack. Called with the lock held, right after the failure.
    private static func captureStack() -> (reason: String, lines: [String]) {
        let capacity = 16
        var entries = [dc_h5e_entry](repeating: dc_h5e_entry(), count: capacity)
        let n = Int(entries.withUnsafeMutableBufferPointer { dc_h5e_capture($0.baseAddress, Int32(capacity)) })
        guard n > 0 else { return ("HDF5 reported a failure but left no error message", []) }
        var lines: [String] = []
        var innermost = ""
        for i in 0..<n {
            var e = entries[i]
            let major = cString(&e.major), minor = cString(&e.minor)
            let fn = cString(&e.func), desc = cString(&e.desc)
            lines.append("\(fn): \(major): \(minor): \(desc)")
            if i == 0 { innermost = desc.isEmpty ? minor : desc }
        }
        return (innermost, lines)
    }

    private static func cString<T>(_ tuple: inout T) -> String {
        withUnsafeBytes(of: &tuple) { raw in
            let bytes = raw.bindMemory(to: UInt8.self)
            let end = bytes.firstIndex(of: 0) ?? bytes.count
            return String(decoding: bytes[..<end], as: UTF8.self)
        }
    }

    /// Whether this libhdf5 can write gzip (deflate) filtered datasets.
    static var deflateAvailable: Bool {
        unchecked { H5Zfilter_avail(H5Z_FILTER_DEFLATE) } > 0
    }

    /// The linked library's version, e.g. "1.10.8".
    static var libraryVersion: String {
        var major: UInt32 = 0, minor: UInt32 = 0, release: UInt32 = 0
        unchecked { H5get_libversion(&major, &minor, &release) }
        return "\(major).\(minor).\(release)"
    }
}

/// Converts Swift dimensions to `hsize_t` arrays and checks they are non-negative.
@inline(__always)
func hsizes(_ dims: [Int]) -> [hsize_t] { dims.map { hsize_t($0) } }
