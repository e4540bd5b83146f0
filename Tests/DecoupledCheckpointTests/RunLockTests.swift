import Foundation
import Testing
@testable import DecoupledCheckpoint
@testable import DecoupledHDF5

/// One writer per run directory, refused fast, with the holder named; released on exit.
@Suite struct RunLockTests {
    /// A Python child that holds (or probes) run.lock the way another decoupled process would.
    final class PythonHolder {
        let process = Process()
        let stdin = Pipe()
        let stdout = Pipe()

        /// Takes the lock, writes its pid like RunLock does, prints "locked", and holds the lock
        /// until its stdin closes.
        init(lockPath: String) throws {
            let script = """
            import fcntl, os, sys
            fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.ftruncate(fd, 0); os.write(fd, b"%d\\n" % os.getpid())
            print("locked", flush=True)
            sys.stdin.read()
            """
            process.executableURL = URL(fileURLWithPath: systemPython)
            process.arguments = ["-c", script, lockPath]
            process.standardInput = stdin
            process.standardOutput = stdout
            try H5.locked { try process.run() }
            let line = String(decoding: stdout.fileHandleForReading.availableData, as: UTF8.self)
            guard line.hasPrefix("locked") else { throw CheckpointError.invalidArgument("python holder did not lock: '\(line)'") }
        }

        /// Ends the child (closing its stdin) and waits for it.
        func finish() {
            try? stdin.fileHandleForWriting.close()
            process.waitUntilExit()
        }
    }

    func elapsed(_ body: () throws -> Void) rethrows -> Double {
        let t = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - t) / 1e9
    }

    @Test func aSecondLockInThisProcessIsRefusedAtOnce() throws {
        let dir = TempDir()
        let first = try RunLock(runDirectory: dir.path)
        #expect(try String(contentsOfFile: first.lockPath, encoding: .utf8) == "\(getpid())\n")
        var refusal: RunLockError?
        let seconds = elapsed {
            do { _ = try RunLock(runDirectory: dir.path) } catch { refusal = error as? RunLockError }
        }
        #expect(seconds < 1)
        let e = try #require(refusal)
        #expect(e.holderPID == getpid())
        #expect(e.description.contains(dir.path) && e.description.contains("\(getpid())"), "\(e)")
        // A writing store in this process uses the lock already held instead of failing.
        let store = try CheckpointStore(runDirectory: dir.path)
        try store.save(arena: try makeArena(seed: 40), slots: adamSlots, meta: makeMeta(step: 1))
        first.release()
        #expect(throws: CheckpointError.self) {
            try store.save(arena: try makeArena(seed: 40), slots: adamSlots, meta: makeMeta(step: 2))
        }
        let again = try RunLock(runDirectory: dir.path)
        #expect(again.isHeld)
    }

    @Test func anotherProcessHoldingTheLockIsNamed() throws {
        let dir = TempDir()
        let holder = try PythonHolder(lockPath: dir.file("run.lock"))
        defer { holder.finish() }
        var refusal: RunLockError?
        let seconds = elapsed {
            do { _ = try RunLock(runDirectory: dir.path) } catch { refusal = error as? RunLockError }
        }
        #expect(seconds < 1)
        let e = try #require(refusal)
        #expect(e.holderPID == holder.process.processIdentifier)
        #expect(e.description.contains("in use by process \(holder.process.processIdentifier)") && e.description.contains(dir.path), "\(e)")
        // A writing store is refused too, and removes nothing meanwhile.
        try FileManager.default.createDirectory(atPath: dir.file("checkpoints"), withIntermediateDirectories: true)
        try writeBytes([1], dir.file("checkpoints/ckpt-0000000001.h5.tmp"))
        #expect(throws: RunLockError.self) { try CheckpointStore(runDirectory: dir.path) }
        #expect(FileManager.default.fileExists(atPath: dir.file("checkpoints/ckpt-0000000001.h5.tmp")))

        // The lock goes away with the process.
        holder.finish()
        let lock = try RunLock(runDirectory: dir.path)
        #expect(lock.isHeld)
    }

    @Test func ourLockIsVisibleToOtherProcessesAndNotInherited() throws {
        let dir = TempDir()
        let lock = try RunLock(runDirectory: dir.path)
        let probe = """
        import fcntl, os, sys
        fd = os.open(sys.argv[1], os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB); print("free")
        except BlockingIOError:
            print("busy", open(sys.argv[1]).read().strip())
        """
        let r = try python(probe, [lock.lockPath])
        #expect(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "busy \(getpid())", "\(r)")

        // A child started while we hold the lock must not keep it after we release it. Plain
        // posix_spawn, because Foundation's Process closes inherited descriptors itself and
        // would hide a missing close-on-exec.
        var pid: pid_t = 0
        var argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/sleep"), strdup("5"), nil]
        defer { argv.forEach { free($0) } }
        let spawned = H5.locked { posix_spawn(&pid, "/bin/sleep", nil, nil, &argv, environ) }
        try #require(spawned == 0)
        defer {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
        lock.release()
        let r2 = try python(probe, [lock.lockPath])
        #expect(r2.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "free", "the child inherited the lock: \(r2)")
    }
}
