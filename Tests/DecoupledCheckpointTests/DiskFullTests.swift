import DecoupledCore
import Foundation
@testable import DecoupledHDF5
import Testing
@testable import DecoupledCheckpoint

/// A save that runs out of space fails clearly, removes its partial file and leaves the
/// previous checkpoint intact. Two ways to run out: a small tmpfs (ENOSPC, in this process;
/// needs mount permission, so only when it works here) and a child process under a file size
/// limit (`prlimit --fsize`, SIGXFSZ ignored; works for any user), which the store refuses
/// before writing: past the limit HDF5 could not even close the partial file.
@Suite struct DiskFullTests {
    /// Whether this process may mount a tmpfs (root with CAP_SYS_ADMIN), probed once.
    static let canMountTmpfs: Bool = {
        guard getuid() == 0 else { return false }
        let dir = TempDir()
        guard (try? runChild("/bin/mount", ["-t", "tmpfs", "-o", "size=65536", "tmpfs", dir.path]))?.status == 0 else { return false }
        _ = try? runChild("/bin/umount", [dir.path])
        return true
    }()

    /// ~1.2 MB per checkpoint: 100 400 parameters × 3 roles.
    let specs = [TensorSpec(name: "layer.weight", shape: [250, 400], role: .weight),
                 TensorSpec(name: "layer.bias", shape: [400], role: .bias)]

    func openDescriptors(to path: String) -> [String] {
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return fds.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + $0) }
            .filter { $0.hasPrefix(path) }
    }

    @Test(.enabled(if: DiskFullTests.canMountTmpfs, "needs permission to mount a tmpfs"))
    func noSpaceLeftOnATmpfs() throws {
        let dir = TempDir()
        let mount = try runChild("/bin/mount", ["-t", "tmpfs", "-o", "size=\(2 << 20)", "tmpfs", dir.path])
        try #require(mount.status == 0, "\(mount.stderr)")
        defer { _ = try? runChild("/bin/umount", ["-l", dir.path]) }

        let directory = dir.file("checkpoints")
        do {
            let store = try CheckpointStore(runDirectory: dir.path)
            let first = try makeArena(seed: 50, specs: specs)
            let kept = try store.save(arena: first, slots: adamSlots, meta: makeMeta(step: 1))
            let tmp = store.path("ckpt-0000000002.h5.tmp")
            let e = expectCheckpointError {
                try store.save(arena: try makeArena(seed: 51, specs: specs), slots: adamSlots, meta: makeMeta(step: 2))
            }
            guard case .diskFull(let file, let object, let reason)? = e else {
                Issue.record("expected diskFull, got \(String(describing: e))")
                return
            }
            #expect(file == tmp)
            #expect(object.hasPrefix("/"), "the object being written should be named: '\(object)'")
            #expect(reason.hasPrefix("no space left on device"))
            #expect("\(e!)".contains("ckpt-0000000002.h5.tmp") && "\(e!)".contains("no space left on device"), "\(e!)")

            // The partial file is gone — from the directory and from the process (its space is free again).
            #expect(try FileManager.default.contentsOfDirectory(atPath: store.directory) == ["ckpt-0000000001.h5"])
            #expect(openDescriptors(to: tmp).isEmpty, "a descriptor of the removed temporary file is still open")
            #expect((FS.availableBytes(dir.path) ?? 0) > 600_000)
            // The previous checkpoint is intact.
            let target = try ParameterArena(specs: specs)
            _ = try store.load(kept, into: target, slots: adamSlots)
            #expect(snapshot(target) == snapshot(first))
            #expect(try store.newestValid()?.path == kept)
        }  // releases the store's run lock for the child below

        // The same in a child process, which must exit with the error, not crash in libhdf5's
        // exit handler (HDF5 < 1.14.1 crashes there when a file failed to close).
        let child = try decoupledCheckpoint(["synthesize", dir.path, "--params", "1e5", "--step", "3"])
        #expect(child.status == 1, "\(child)")
        #expect(child.stderr.contains("ckpt-0000000003.h5.tmp") && child.stderr.contains("no space left on device"), "\(child.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["ckpt-0000000001.h5"])
    }

    @Test func fileTooLargeInAChildUnderAFileSizeLimit() throws {
        let dir = TempDir()
        let first = try CheckpointBenchmark.syntheticArena(parameters: 100_000, slots: adamSlots, seed: 7)
        let kept: String
        do {
            // The store's lock is released when it goes away, so the child can take it.
            let store = try CheckpointStore(runDirectory: dir.path)
            kept = try store.save(arena: first, slots: adamSlots, meta: makeMeta(step: 1))
        }
        let limit = 600_000  // half a checkpoint
        // `trap ''` makes SIGXFSZ ignored, which survives exec: write(2) then fails with EFBIG
        // instead of the signal killing the process.
        let r = try decoupledCheckpoint(["synthesize", dir.path, "--params", "1e5", "--step", "2"],
                                        under: ["/bin/sh", "-c", "trap '' XFSZ; exec prlimit --fsize=\(limit) \"$@\"", "sh"])
        #expect(r.status == 1, "the save under a \(limit)-byte limit should fail with an error: \(r)")
        #expect(r.stderr.contains("ckpt-0000000002.h5.tmp") && r.stderr.contains("file too large")
                && r.stderr.contains("at most \(limit) bytes"), "\(r.stderr)")

        let store = try CheckpointStore(runDirectory: dir.path, readOnly: true)
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.directory) == ["ckpt-0000000001.h5"])
        let target = try ParameterArena(specs: first.entries.map(\.spec))
        _ = try store.load(kept, into: target, slots: adamSlots)
        #expect(snapshot(target) == snapshot(first))

        // The same command without the limit succeeds (the failure was the limit, nothing else).
        let ok = try decoupledCheckpoint(["synthesize", dir.path, "--params", "1e5", "--step", "2"])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(try store.newestValid()?.path == store.path("ckpt-0000000002.h5"))
    }
}
