import Foundation
import Testing
@testable import DecoupledCheckpoint

/// The file layer never writes or truncates through a symbolic link.
@Suite struct SymlinkTests {
    @Test func aLinkedRunLockIsRefusedAndItsTargetKept() throws {
        let dir = TempDir()
        let target = try linked(dir, "run.lock")
        do {
            _ = try RunLock(runDirectory: dir.path)
            Issue.record("locked through a link")
        } catch let e as RunLockError {
            #expect(e.reason.contains("symbolic link"), "\(e)")
        }
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "precious\n")
    }

    @Test func atomicWritesReplaceLinksInsteadOfFollowingThem() throws {
        let dir = TempDir()
        let target = try linked(dir, "best.txt")
        let tmpTarget = try linked(dir, "best.txt.tmp")
        try FS.writeAtomically("ckpt-0000000001.h5\n", to: dir.file("best.txt"))
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "precious\n")
        #expect(try String(contentsOfFile: tmpTarget, encoding: .utf8) == "precious\n")
        #expect(try String(contentsOfFile: dir.file("best.txt"), encoding: .utf8) == "ckpt-0000000001.h5\n")
        #expect(try FileManager.default.attributesOfItem(atPath: dir.file("best.txt"))[.type] as? FileAttributeType == .typeRegular)
    }

    @Test func openingForWritingRefusesLinksAndNonRegularFiles() throws {
        let dir = TempDir()
        let target = try linked(dir, "metrics.jsonl")
        #expect(throws: CheckpointError.self) { _ = try FS.AppendFile(dir.file("metrics.jsonl")) }
        #expect(throws: CheckpointError.self) { _ = try FS.openFD("/dev/null", O_WRONLY, "open") }
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "precious\n")
    }
}
