import DecoupledSystem
import Foundation
import Testing
@testable import DecoupledExperiments

/// The sweep's own files go through FS: a symbolic link planted at one of them is refused
/// with an error naming the file, and the link's target is never written.
@Suite(.serialized) struct SweepSymlinkTests {
    /// A link `dir/name` → `dir/outside-<name>`, which holds "precious\n"; returns the target.
    func linked(_ dir: String, _ name: String) throws -> String {
        let target = (dir as NSString).appendingPathComponent("outside-" + (name as NSString).lastPathComponent)
        try "precious\n".write(toFile: target, atomically: false, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: (dir as NSString).appendingPathComponent(name), withDestinationPath: target)
        return target
    }

    func contents(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }

    /// A one-run spec at scratch/spec.toml and an empty sweep directory scratch/sweep for it.
    func emptySweep(_ scratch: SweepScratch) throws -> String {
        _ = try writeTinyBase(scratch)
        try tinySpecText(name: "links", lrs: ["1e-2"]).write(toFile: scratch.file("spec.toml"), atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: scratch.file("sweep"), withIntermediateDirectories: true)
        return scratch.file("sweep")
    }

    @Test func aLinkedSweepLockIsRefusedAndItsTargetKept() throws {
        let scratch = SweepScratch()
        let dir = try emptySweep(scratch)
        let target = try linked(dir, "sweep.lock")
        do {
            _ = try SweepPlan(spec: try SweepSpec.load(path: scratch.file("spec.toml")), sweepDirectory: dir, write: true)
            Issue.record("planned through a linked sweep.lock")
        } catch let e as DirectoryLockError {
            #expect(e.description.contains("sweep directory '\(dir)' for planning") && e.reason.contains("symbolic link"), "\(e)")
        }
        #expect(contents(target) == "precious\n")
    }
}
