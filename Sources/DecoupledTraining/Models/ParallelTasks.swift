import COpenBLAS
import DecoupledCore

/// Runs a fixed list of independent tasks on up to `threads` workers.
///
/// Tasks are claimed from a shared counter, so which worker runs a task varies from run to
/// run, but each task writes its own disjoint output with the same code whatever the thread
/// count: results are bit-identical for any `threads`. Workers compute in the caller's
/// floating-point mode (`FloatingPointMode`), OpenBLAS calls included since they run on the
/// calling thread. One instance per model; not reentrant.
final class ParallelTasks {
    private let counter: UnsafeMutablePointer<Int>

    init() {
        counter = UnsafeMutablePointer<Int>.allocate(capacity: 1)
        counter.initialize(to: 0)
    }

    deinit { counter.deallocate() }

    func run(count: Int, threads: Int, _ body: (Int) -> Void) {
        run(count: count, threads: threads) { task, _ in body(task) }
    }

    /// `body(task, worker)`: `worker` in `0..<min(threads, count)` names the worker running the
    /// task, for per-worker scratch buffers (a result must never depend on it).
    func run(count: Int, threads: Int, _ body: (Int, Int) -> Void) {
        let workers = min(max(threads, 1), count)
        if workers <= 1 {
            for i in 0..<count { body(i, 0) }
            return
        }
        decoupled_atomic_store(counter, 0)
        let counter = self.counter
        FloatingPointMode.concurrentPerform(iterations: workers) { worker in
            while true {
                let i = decoupled_atomic_fetch_add(counter, 1)
                if i >= count { break }
                body(i, worker)
            }
        }
    }
}

/// OpenBLAS must run each call on the calling thread: its multi-threaded sgemm may sum in a
/// thread-count-dependent order, and the models parallelise over fixed partitions themselves.
/// Running on the calling thread also makes sgemm use that thread's floating-point mode
/// (OpenBLAS's own pool threads would keep theirs).
enum BLASThreads {
    /// Pins OpenBLAS to one thread per call (idempotent; the setting is process-wide).
    static let pinnedToOne: Void = {
        openblas_set_num_threads(1)
    }()

    static func pin() { _ = pinnedToOne }
}
