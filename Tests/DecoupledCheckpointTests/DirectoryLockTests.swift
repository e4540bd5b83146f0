import Foundation
import Testing
@testable import DecoupledCheckpoint
@testable import DecoupledSystem

/// The one lock type, for both of its directories: run.lock and sweep.lock.
@Suite struct DirectoryLockTests {
    @Test func runAndSweepLocksAreIndependentAndEachRefusesASecondHolder() throws {
        let dir = TempDir()
        let run = try DirectoryLock(runDirectory: dir.path)
        let sweep = try DirectoryLock(dir.path, kind: .sweep, purpose: "running")
        #expect(run.lockPath == dir.file("run.lock") && sweep.lockPath == dir.file("sweep.lock"))
        #expect(try String(contentsOfFile: sweep.lockPath, encoding: .utf8) == "\(getpid())\n")
        #expect(DirectoryLock.holder(of: dir.path, kind: .run) == getpid())
        #expect(DirectoryLock.holder(of: dir.path, kind: .sweep) == getpid())
        #expect(DirectoryLock.registered(FS.canonical(dir.path)!, kind: .sweep) === sweep)

        do {
            _ = try DirectoryLock(dir.path, kind: .sweep, purpose: "planning")
            Issue.record("a second sweep lock was granted")
        } catch let e as DirectoryLockError {
            #expect(e.holderPID == getpid())
            #expect(e.description.hasPrefix("cannot lock sweep directory '\(dir.path)' for planning: this process (pid \(getpid()))"), "\(e)")
        }
        sweep.release()
        #expect(!sweep.isHeld && run.isHeld)
        #expect(DirectoryLock.holder(of: dir.path, kind: .sweep) == nil)
        // Released: the pid is cleared, and the next holder gets it.
        #expect(try String(contentsOfFile: sweep.lockPath, encoding: .utf8) == "")
        let again = try DirectoryLock(dir.path, kind: .sweep)
        #expect(again.isHeld)
    }

    @Test func anotherProcessHoldingTheSweepLockIsNamedWithWhatToDo() throws {
        let dir = TempDir()
        let holder = try RunLockTests.PythonHolder(lockPath: dir.file("sweep.lock"))
        defer { holder.finish() }
        let pid = holder.process.processIdentifier
        #expect(DirectoryLock.holder(of: dir.path, kind: .sweep) == pid)
        do {
            _ = try DirectoryLock(dir.path, kind: .sweep, purpose: "running")
            Issue.record("locked a held sweep directory")
        } catch let e as DirectoryLockError {
            #expect(e.holderPID == pid)
            #expect(e.description.contains("in use by process \(pid)") && e.description.contains("kill -TERM \(pid)"), "\(e)")
        }
        holder.finish()
        #expect(try DirectoryLock(dir.path, kind: .sweep).isHeld)
    }

    @Test func aStalePidInAnUnlockedFileIsNoHolder() throws {
        let dir = TempDir()
        // A holder killed before it could clear its pid: the file names it, nobody locks it.
        try "999999\n".write(toFile: dir.file("sweep.lock"), atomically: false, encoding: .utf8)
        #expect(DirectoryLock.holder(of: dir.path, kind: .sweep) == nil)
        let lock = try DirectoryLock(dir.path, kind: .sweep)
        #expect(try String(contentsOfFile: lock.lockPath, encoding: .utf8) == "\(getpid())\n")
    }

    @Test func aLinkedSweepLockIsRefusedAndItsTargetKept() throws {
        let dir = TempDir()
        let target = try linked(dir, "sweep.lock")
        #expect(throws: DirectoryLockError.self) { _ = try DirectoryLock(dir.path, kind: .sweep) }
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "precious\n")
    }
}
