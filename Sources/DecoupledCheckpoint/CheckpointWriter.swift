import DecoupledCore
import DecoupledHDF5
import Foundation

/// Writes one checkpoint file (format 1) straight from the arena's buffers: one contiguous
/// dataset per tensor, written from `arena.view(...)` without an intermediate copy, while a
/// second thread computes the CRC-32s of the same memory.
enum CheckpointWriter {
    /// Bytes per HDF5 write call (whole rows). Small enough that writeback can start while
    /// the rest of a large tensor is still being copied into the page cache.
    static let pieceBytes = 32 << 20
    /// Dirty bytes after which writeback is started (sync_file_range, without waiting).
    static let writebackBytes = 64 << 20

    private struct Tensor {
        let path: String
        let shape: [Int]
        let bytes: UnsafeRawBufferPointer
    }

    /// Writes a new file at `path`. On error the file may be partial and the caller removes
    /// it; `current` then names the object being written (for the error message).
    static func write(path: String, arena: ParameterArena, slots: [String], meta: CheckpointMeta,
                      current: inout String) throws {
        var tensors: [Tensor] = []
        for e in arena.entries {
            tensors.append(Tensor(path: CheckpointFormat.paramsGroup + "/" + e.spec.name, shape: e.spec.shape,
                                  bytes: UnsafeRawBufferPointer(arena.view(arena.params, e))))
        }
        for slot in slots where arena.slots[slot] != nil {  // the store checked every slot exists
            for e in arena.entries {
                tensors.append(Tensor(path: CheckpointFormat.stateGroup + "/\(slot)/" + e.spec.name, shape: arena.stateShape(slot, e),
                                      bytes: UnsafeRawBufferPointer(arena.stateView(slot, e))))
            }
        }
        // The checksum thread starts on all tensors now and runs ahead of the writes; the
        // arena is not modified during a save, so both threads read the same bytes.
        let pipeline = ChecksumPipeline(count: tensors.count)
        defer { pipeline.wait() }
        for (i, t) in tensors.enumerated() { pipeline.submit(i, t.bytes) }

        let metaBytes: [(String, [UInt8])] = [
            (CheckpointFormat.configPath, Array(meta.config.utf8)),
            (CheckpointFormat.pluginsPath, try meta.pluginsJSON()),
            (CheckpointFormat.runStatePath, [UInt8](meta.runState)),
        ]

        current = "/"
        let file = try H5File(path, mode: .createExclusive, checksummedMetadata: true)
        // Every handle still open, so the failure path can release them in the right order.
        var open: [H5Dataset] = []
        var fd: Int32 = -1
        do {
            fd = try file.fileDescriptor()
            try file.setAttribute(CheckpointFormat.formatVersionAttribute, Int64(CheckpointFormat.version))
            try file.setAttribute(CheckpointFormat.stepAttribute, Int64(meta.step))
            try file.setAttribute(CheckpointFormat.epochAttribute, Int64(meta.epoch))
            for group in [CheckpointFormat.paramsGroup, CheckpointFormat.stateGroup, CheckpointFormat.metaGroup]
                + slots.map({ CheckpointFormat.stateGroup + "/" + $0 }) {
                current = group
                try file.createGroup(group).close()
            }

            var dirty = 0
            for t in tensors {
                current = t.path
                let ds = try file.createDataset(t.path, type: .float32, shape: t.shape)
                open.append(ds)
                for piece in Pieces(shape: t.shape, elementSize: 4, maxBytes: pieceBytes) {
                    let slice = UnsafeRawBufferPointer(rebasing: t.bytes[piece.byteOffset..<(piece.byteOffset + piece.byteCount)])
                    try ds.writeRaw(start: piece.start, count: piece.count, memoryType: .float32, from: slice)
                    dirty += piece.byteCount
                    if dirty >= writebackBytes {
                        FS.startWriteback(fd)
                        dirty = 0
                    }
                }
            }
            FS.startWriteback(fd)

            for (p, bytes) in metaBytes {
                current = p
                let ds = try file.createDataset(p, values: bytes)
                defer { try? ds.close() }
                try ds.setAttribute(CheckpointFormat.checksumAttribute, bytes.withUnsafeBytes { CRC32.checksum($0) })
            }

            let checksums = pipeline.wait()
            for (ds, crc) in zip(open, checksums) {
                current = ds.objectPath
                try ds.setAttribute(CheckpointFormat.checksumAttribute, crc)
            }
            current = ""
            for ds in open { try ds.close() }
            open.removeAll()
            try file.close()
        } catch {
            // The file is garbage now; what matters is that HDF5 closes it cleanly. Out of
            // space, its closing metadata flush would fail too, and libhdf5 before 1.14.1
            // (HDFFV-11052) then frees the file but keeps its id, and crashes closing it again
            // at exit. Emptying the file first gives that flush the room it needs. (Past the
            // file size limit no flush can succeed, which is why the store checks the limit
            // before writing.)
            // Through FS, on HDF5's own descriptor of the file it created exclusively (no name
            // is resolved, so no link can be followed); a failure here changes nothing above.
            if fd >= 0 { try? FS.truncate(fd, path: path) }
            for ds in open { try? ds.close() }
            open.removeAll()
            try? file.close()
            throw error
        }
    }

    /// An upper bound of the file's size: the raw data plus generous room for HDF5's
    /// metadata (object headers with their attributes, link storage, superblock). Measured
    /// overhead is below 400 bytes per dataset; the tests check the bound holds.
    static func sizeBound(arena: ParameterArena, slots: [String], meta: CheckpointMeta) -> Int {
        let datasets = arena.entries.count * (1 + slots.count) + CheckpointFormat.metaDatasets.count
        let data = arena.parameterCount * 4 * (1 + slots.count)
        let metaBytes = meta.config.utf8.count + meta.runState.count + 64 * (meta.plugins.count + 1)
            + meta.plugins.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count }
        return data + metaBytes + 2048 * datasets + (64 << 10)
    }
}
