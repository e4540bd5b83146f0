import DecoupledCore
import DecoupledHDF5
import Foundation

/// One checkpoint file as `CheckpointStore.list()` reports it.
public struct CheckpointInfo: Equatable {
    /// `RUN_DIR/checkpoints/ckpt-<step>.h5`.
    public var path: String
    /// The step the file name encodes.
    public var step: Int
    /// The root attribute `epoch`; nil when unreadable.
    public var epoch: Int?
    /// The file's size on disk.
    public var sizeBytes: Int
    /// Whether `best.txt` names this file.
    public var isBest: Bool
    /// nil for a valid checkpoint; otherwise why it is not (every problem found).
    public var problem: CheckpointError?

    /// Whether the file verified completely.
    public var isValid: Bool { problem == nil }
}

/// What `CheckpointStore.verify(path:)` found in a valid checkpoint.
public struct VerifiedCheckpoint: Equatable {
    /// The file, as the caller named it.
    public var path: String
    /// step, epoch and /meta, as `load` would return them.
    public var meta: CheckpointMeta
    /// Tensor name → shape, from /params.
    public var tensors: [String: [Int]]
    /// The state slots in /state, sorted.
    public var slots: [String]
    /// Elements over all tensors of /params.
    public var parameterCount: Int
    /// The file's size on disk.
    public var sizeBytes: Int
}

/// The checkpoints of one run directory, in `RUN_DIR/checkpoints/` (docs/checkpoint-format.md).
///
/// - Saves are atomic and durable: the file is written as `NAME.tmp` next to its final name,
///   fsynced, renamed, and the directory fsynced. A crash leaves either the old set of
///   checkpoints or the new one, plus at most a `.tmp` file that the next writer removes.
/// - Every dataset carries a CRC-32 of its bytes; HDF5 checksums the metadata. `verify(path:)`
///   checks them all, and so do `list()`, `newestValid()` and `load(_:into:slots:)`.
/// - After each save the newest `keepLast` checkpoints (by step) are kept, plus the one
///   marked best (`best.txt`) and the one just written; the others are deleted.
///
/// A writing store holds the directory's `RunLock` — the one this process already holds, or
/// its own — so no other process writes (or cleans up) the same checkpoints. A read-only store
/// (`readOnly: true`, e.g. for `decoupled checkpoint list` beside a running trainer) takes no
/// lock, removes nothing and cannot save.
///
/// Not thread-safe: use a store from one thread at a time.
public final class CheckpointStore {
    /// The run directory, as the caller named it.
    public let runDirectory: String
    /// `RUN_DIR/checkpoints`.
    public let directory: String
    /// How many of the newest checkpoints each save keeps (≥ 1), besides the best.
    public let keepLast: Int
    /// Opened with `readOnly: true`: lists, verifies and loads, never writes or removes.
    public let isReadOnly: Bool
    /// The stale `*.tmp` files (crashed saves) removed when the store was opened.
    public let removedTemporaryFiles: [String]
    /// Files the last save's retention could not delete, with the reason (the save itself succeeded).
    public private(set) var lastRetentionErrors: [String] = []
    private let lock: RunLock?

    /// Opens the checkpoints of `runDirectory`. A writing store (the default) creates
    /// `checkpoints/`, takes the run lock unless this process holds it already (throwing
    /// `RunLockError` when another process does), and removes stale `*.tmp` files.
    public init(runDirectory: String, keepLast: Int = 3, readOnly: Bool = false) throws {
        guard keepLast >= 1 else {
            throw CheckpointError.invalidArgument("keepLast must be at least 1 (got \(keepLast)): a save must keep the checkpoint it wrote")
        }
        self.runDirectory = runDirectory
        self.directory = (runDirectory as NSString).appendingPathComponent(CheckpointFormat.directoryName)
        self.keepLast = keepLast
        self.isReadOnly = readOnly
        if readOnly {
            guard FS.isDirectory(runDirectory) else {
                throw CheckpointError.io(path: runDirectory, operation: "open run directory", reason: "no such directory")
            }
            lock = nil
            removedTemporaryFiles = []
            return
        }
        if !FS.isDirectory(runDirectory) {
            try CheckpointStore.createDirectory(runDirectory)
        }
        if let canonical = FS.canonical(runDirectory), let held = RunLock.registered(canonical) {
            lock = held
        } else {
            lock = try RunLock(runDirectory: runDirectory)
        }
        try CheckpointStore.createDirectory(directory)
        // Holding the lock, no save can be running: every temporary file is a crashed one.
        var removed: [String] = []
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        where CheckpointFormat.isTemporaryFileName(name) {
            let path = (directory as NSString).appendingPathComponent(name)
            if let problem = FS.unlinkIfPresent(path) {
                throw CheckpointError.io(path: path, operation: "remove stale temporary file", reason: problem)
            }
            removed.append(path)
        }
        removedTemporaryFiles = removed
    }

    private static func createDirectory(_ path: String) throws { try FS.createDirectory(path) }

    func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }

    // MARK: saving

    /// Saves the arena's parameters and the named state slots with `meta` as
    /// `checkpoints/ckpt-<step>.h5` (replacing a file of the same step), marks it best when
    /// `isBest`, then applies retention. Returns the file's path.
    ///
    /// Out of space (or over the file size limit) it throws `CheckpointError.diskFull` naming
    /// the file and object; the partial file is removed and earlier checkpoints are untouched.
    @discardableResult
    public func save(arena: ParameterArena, slots: [String], meta: CheckpointMeta, isBest: Bool = false) throws -> String {
        guard !isReadOnly else {
            throw CheckpointError.invalidArgument("the checkpoint store of '\(runDirectory)' was opened read-only; it cannot save")
        }
        guard lock?.isHeld == true else {
            throw CheckpointError.invalidArgument("the run lock of '\(runDirectory)' was released; refusing to save without it")
        }
        try CheckpointStore.validate(arena: arena, slots: slots, meta: meta)
        let name = CheckpointFormat.fileName(step: meta.step)
        let final = path(name)
        let tmp = final + CheckpointFormat.temporarySuffix
        FS.unlinkIfPresent(tmp)
        // Past the file size limit a write can never be completed, nor can HDF5's closing
        // flush (see CheckpointWriter): refuse before writing anything.
        let bound = CheckpointWriter.sizeBound(arena: arena, slots: slots, meta: meta)
        if let limit = FS.fileSizeLimit(), limit < bound {
            throw CheckpointError.diskFull(file: tmp, object: "", reason: "file too large: the checkpoint takes up to \(bound) bytes "
                                           + "and the process may write files of at most \(limit) bytes (ulimit -f / RLIMIT_FSIZE)")
        }
        var current = ""
        do {
            try CheckpointWriter.write(path: tmp, arena: arena, slots: slots, meta: meta, current: &current)
            current = ""
            try FS.fsyncFile(tmp)
            try FS.renameFile(tmp, final)
        } catch {
            let failure = CheckpointStore.classifySaveFailure(error, file: tmp, object: current, directory: directory)
            FS.unlinkIfPresent(tmp)
            throw failure
        }
        try FS.fsyncDirectory(directory)
        if isBest {
            let marker = path(CheckpointFormat.bestMarkerName)
            do {
                try FS.writeAtomically(name + "\n", to: marker)
            } catch let e as CheckpointError {
                throw CheckpointError.io(path: marker, operation: "mark \(name) best (the checkpoint itself was saved) in",
                                         reason: e.reason)
            }
        }
        applyRetention(keeping: name)
        return final
    }

    /// Checks what a save needs before anything is written, listing every problem at once.
    static func validate(arena: ParameterArena, slots: [String], meta: CheckpointMeta) throws {
        var problems: [String] = []
        if meta.step < 0 { problems.append("step is \(meta.step); expected ≥ 0") }
        if meta.epoch < 0 { problems.append("epoch is \(meta.epoch); expected ≥ 0") }
        problems += slotProblems(slots)
        for slot in Set(slots).sorted() where arena.slots[slot] == nil {
            let have = arena.slots.keys.sorted()
            problems.append("state slot '\(slot)' does not exist in the arena (it has: \(have.isEmpty ? "none" : have.joined(separator: ", ")))")
        }
        for e in arena.entries {
            if let why = CheckpointFormat.invalidLinkName(e.spec.name) {
                problems.append("tensor name '\(e.spec.name)' cannot be stored: \(why)")
            }
        }
        if !problems.isEmpty {
            throw CheckpointError.invalidArgument("cannot save checkpoint: " + problems.joined(separator: "; "))
        }
    }

    static func slotProblems(_ slots: [String]) -> [String] {
        var problems: [String] = []
        var seen = Set<String>()
        for slot in slots {
            if !seen.insert(slot).inserted { problems.append("state slot '\(slot)' is listed twice") }
            if let why = CheckpointFormat.invalidLinkName(slot) { problems.append("state slot name '\(slot)' cannot be used: \(why)") }
        }
        return problems
    }

    /// Turns a failure while writing into a `CheckpointError`, recognising a full disk and the
    /// file size limit. HDF5 reports the errno of a failed write only inside its message text
    /// (which we may have truncated), so the file system and the limit are also asked directly.
    static func classifySaveFailure(_ error: Error, file: String, object: String, directory: String) -> CheckpointError {
        if let e = error as? CheckpointError {
            if case .diskFull(_, let o, let reason) = e { return .diskFull(file: file, object: o.isEmpty ? object : o, reason: reason) }
            return e
        }
        guard let e = error as? HDF5Error else {
            return .io(path: file, operation: "write checkpoint", reason: "\(error)")
        }
        let object = e.object.isEmpty ? object : e.object
        let text = ([e.reason] + e.stack).joined(separator: "\n")
        if text.contains("No space left on device") || text.contains("errno = \(ENOSPC),") {
            return .diskFull(file: file, object: object, reason: "no space left on device")
        }
        if text.contains("Disk quota exceeded") || text.contains("errno = \(EDQUOT),") {
            return .diskFull(file: file, object: object, reason: "no space left on device (disk quota exceeded)")
        }
        if text.contains("File too large") || text.contains("errno = \(EFBIG),") {
            return .diskFull(file: file, object: object, reason: FS.fileTooLargeReason())
        }
        if let free = FS.availableBytes(directory), free < 1 << 20 {
            return .diskFull(file: file, object: object, reason: "no space left on device (\(free) bytes free)")
        }
        if let limit = FS.fileSizeLimit(), let size = FS.fileSize(file), size >= limit - (1 << 20) {
            return .diskFull(file: file, object: object, reason: FS.fileTooLargeReason())
        }
        return .io(path: file, operation: "write '\(object.isEmpty ? "/" : object)' to", reason: e.description)
    }

    /// Keeps the newest `keepLast` checkpoints by step, the best one and `justSaved` (so the
    /// checkpoint that was just written and fsynced — a valid one — always survives), and
    /// deletes the rest.
    private func applyRetention(keeping justSaved: String) {
        lastRetentionErrors = []
        let files = checkpointFiles()
        var keep = Set(files.prefix(keepLast).map(\.name))
        keep.insert(justSaved)
        if let best = bestName() { keep.insert(best) }
        var removedAny = false
        for f in files where !keep.contains(f.name) {
            if let problem = FS.unlinkIfPresent(path(f.name)) {
                lastRetentionErrors.append("\(path(f.name)): \(problem)")
            } else {
                removedAny = true
            }
        }
        if removedAny {
            do { try FS.fsyncDirectory(directory) } catch { lastRetentionErrors.append("\(error)") }
        }
    }

    // MARK: listing

    /// Checkpoint files by step, newest first (names only; nothing is opened).
    func checkpointFiles() -> [(step: Int, name: String)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.compactMap { n in CheckpointFormat.step(fromFileName: n).map { ($0, n) } }
            .sorted { $0.step > $1.step }
    }

    /// The newest checkpoint file by step (not verified), nil when there is none.
    public func newestCheckpointName() -> String? { checkpointFiles().first.map { path($0.name) } }

    /// Makes `best.txt` name the checkpoint of `step` — the run state's best evaluation —
    /// when that checkpoint exists and the marker names another file or a missing one.
    /// A kill between renaming a new best checkpoint into place and rewriting the marker leaves
    /// the marker on the previous best; retention would then keep that one and could delete
    /// the real best. Called on resume, where the restored run state knows its best step.
    /// Returns a line for the user when the marker was changed.
    @discardableResult
    public func reconcileBest(withStep step: Int?) throws -> String? {
        guard let step, !isReadOnly else { return nil }
        let name = CheckpointFormat.fileName(step: step)
        let current = bestName()
        guard current != name, FileManager.default.fileExists(atPath: path(name)) else { return nil }
        let marker = path(CheckpointFormat.bestMarkerName)
        try FS.writeAtomically(name + "\n", to: marker)
        return "\(marker) named \(current.map { FileManager.default.fileExists(atPath: path($0)) ? $0 : "\($0) (deleted)" } ?? "no checkpoint")"
            + "; the run's best evaluation is step \(step): it now names \(name)"
    }

    /// The file name `best.txt` holds, if it names a checkpoint.
    func bestName() -> String? {
        guard let text = try? String(contentsOfFile: path(CheckpointFormat.bestMarkerName), encoding: .utf8) else { return nil }
        let name = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return CheckpointFormat.step(fromFileName: name) != nil ? name : nil
    }

    /// The path of the checkpoint marked best, when there is one and it exists.
    public var bestCheckpoint: String? {
        guard let name = bestName(), FileManager.default.fileExists(atPath: path(name)) else { return nil }
        return path(name)
    }

    /// Every checkpoint, newest first, each fully verified (this reads every file).
    public func list() -> [CheckpointInfo] {
        let best = bestName()
        return checkpointFiles().map { f in
            let p = path(f.name)
            var info = CheckpointInfo(path: p, step: f.step, epoch: nil, sizeBytes: FS.fileSize(p) ?? 0,
                                      isBest: f.name == best, problem: nil)
            do {
                let inspection = try CheckpointReader.inspect(p)
                info.epoch = inspection.layout.epoch
                if !inspection.problems.isEmpty { info.problem = .corrupt(file: p, problems: inspection.problems) }
            } catch let e as CheckpointError {
                info.problem = e
            } catch {
                info.problem = .io(path: p, operation: "verify", reason: "\(error)")
            }
            return info
        }
    }

    /// The newest checkpoint that verifies, with the newer ones passed over and why; nil when
    /// there are no checkpoint files. Throws `noValidCheckpoint` (listing each file and its
    /// problem) when files exist but none is valid: starting over silently would discard the run.
    public func newestValid() throws -> (path: String, skipped: [SkippedCheckpoint])? {
        let files = checkpointFiles()
        if files.isEmpty { return nil }
        var skipped: [SkippedCheckpoint] = []
        for f in files {
            let p = path(f.name)
            do {
                try CheckpointStore.verify(path: p)
                return (p, skipped)
            } catch let e as CheckpointError {
                skipped.append(SkippedCheckpoint(path: p, reason: e.reason))
            }
        }
        throw CheckpointError.noValidCheckpoint(directory: directory, skipped: skipped)
    }

    /// Verifies one checkpoint file completely: it opens as HDF5 (whose metadata checksums hold),
    /// has format_version 1, every required group, dataset and attribute, state slots that mirror
    /// /params, and every dataset's CRC-32 matches. Throws `corrupt` listing every problem (file
    /// and object), or `io` when the file cannot be opened at all.
    @discardableResult
    public static func verify(path: String) throws -> VerifiedCheckpoint {
        let inspection = try CheckpointReader.inspect(path)
        guard inspection.problems.isEmpty, let meta = inspection.meta else {
            let problems = inspection.problems.isEmpty
                ? [CheckpointProblem(object: CheckpointFormat.metaGroup, reason: "cannot be read")] : inspection.problems
            throw CheckpointError.corrupt(file: path, problems: problems)
        }
        let layout = inspection.layout
        return VerifiedCheckpoint(path: path, meta: meta, tensors: layout.params.mapValues(\.shape),
                                  slots: layout.state.keys.sorted(),
                                  parameterCount: layout.params.values.reduce(0) { $0 + $1.shape.reduce(1, *) },
                                  sizeBytes: FS.fileSize(path) ?? 0)
    }

    // MARK: loading

    /// Loads a checkpoint into `arena` (parameters) and the state slots `slots` (created when
    /// the arena lacks them), bit-exactly, and returns its metadata.
    ///
    /// All or nothing: first every mismatch between file and arena is collected — another
    /// format_version, missing or extra tensors, wrong shapes, missing or extra state slots —
    /// and thrown as one `mismatch` error; then every checksum is verified (`corrupt` on
    /// failure). Only then is anything copied, and the copy is checksummed again.
    public func load(_ path: String, into arena: ParameterArena, slots: [String]) throws -> CheckpointMeta {
        let argumentProblems = CheckpointStore.slotProblems(slots)
        if !argumentProblems.isEmpty {
            throw CheckpointError.invalidArgument("cannot load '\(path)': " + argumentProblems.joined(separator: "; "))
        }
        let file = try CheckpointReader.open(path)
        let layout = CheckpointReader.layout(of: file)

        // 1. Is it sound, and does it fit? A damaged file is reported as corrupt (a damaged
        // header would otherwise read as a "missing tensor"), and so is one without a readable
        // format_version; a sound one, or one of another format, is compared with the arena,
        // every mismatch at once.
        if layout.formatVersion == nil || (layout.formatVersion == CheckpointFormat.version && !layout.problems.isEmpty) {
            throw CheckpointError.corrupt(file: path, problems: layout.problems)
        }
        let mismatches = CheckpointStore.mismatches(layout, arena: arena, slots: slots)
        if !mismatches.isEmpty { throw CheckpointError.mismatch(file: path, mismatches: mismatches) }

        // 2. Is it intact? Every checksum, before the arena is touched.
        let inspection = try CheckpointReader.inspect(path, file: file, layout: layout)
        guard inspection.problems.isEmpty, let meta = inspection.meta else {
            throw CheckpointError.corrupt(file: path, problems: inspection.problems)
        }

        // 3. Copy, checksumming again what lands in the arena.
        var targets: [(StoredDataset, UnsafeMutableRawBufferPointer)] = []
        for e in arena.entries {
            targets.append((layout.params[e.spec.name]!, UnsafeMutableRawBufferPointer(arena.view(arena.params, e))))
        }
        for slot in slots {
            for e in arena.entries {
                targets.append((layout.state[slot]![e.spec.name]!, UnsafeMutableRawBufferPointer(arena.stateView(slot, e))))
            }
        }
        let problems = CheckpointStore.copy(file, targets)
        if !problems.isEmpty {
            throw CheckpointError.corrupt(file: path, problems: problems + [CheckpointProblem(
                object: "/", reason: "the file changed while it was being loaded (it verified a moment before); the arena now holds a partial copy")])
        }
        return meta
    }

    /// Every way `layout` does not fit `arena` and `slots`.
    static func mismatches(_ layout: CheckpointLayout, arena: ParameterArena, slots: [String]) -> [String] {
        var out: [String] = []
        if let v = layout.formatVersion, v != CheckpointFormat.version {
            out.append("format_version is \(v); this build reads format \(CheckpointFormat.version)")
        }
        for e in arena.entries {
            let name = e.spec.name
            guard let d = layout.params[name] else {
                out.append("tensor '\(name)' (shape \(e.spec.shape)) is missing from the file (no \(CheckpointFormat.paramsGroup)/\(name))")
                continue
            }
            if d.shape != e.spec.shape {
                out.append("tensor '\(name)' has shape \(d.shape) in the file (\(d.path)) but \(e.spec.shape) in the arena")
            }
        }
        for name in layout.params.keys.sorted() where arena.entry(named: name) == nil {
            out.append("tensor '\(name)' (shape \(layout.params[name]!.shape)) is in the file (\(layout.params[name]!.path)) but not in the arena")
        }
        let stored = layout.state.keys.sorted()
        for slot in slots where layout.state[slot] == nil {
            out.append("state slot '\(slot)' is missing from the file (it has: \(stored.isEmpty ? "no state slots" : stored.joined(separator: ", ")))")
        }
        // Each slot's tensors have the shapes of the arena's slot layout. Element slots mirror
        // /params (the reader checked that), whose shapes are compared above.
        for slot in slots where arena.layout(ofSlot: slot) != .element {
            for e in arena.entries {
                guard let d = layout.state[slot]?[e.spec.name] else { continue }
                let expected = arena.stateShape(slot, e)
                if d.shape != expected {
                    out.append("state slot '\(slot)' has shape \(d.shape) for tensor '\(e.spec.name)' in the file (\(d.path)) but \(expected) in the arena (\(arena.layout(ofSlot: slot).rawValue) state)")
                }
            }
        }
        for slot in stored where !slots.contains(slot) {
            out.append("state slot '\(slot)' is in the file (\(CheckpointFormat.stateGroup)/\(slot)) but not among the slots to load (\(slots.isEmpty ? "none" : slots.joined(separator: ", ")))")
        }
        return out
    }

    /// Reads each dataset straight into its arena view, in pieces, checksumming the pieces on
    /// the second thread while the next ones are read.
    static func copy(_ file: H5File, _ targets: [(StoredDataset, UnsafeMutableRawBufferPointer)]) -> [CheckpointProblem] {
        let pipeline = ChecksumPipeline(count: targets.count)
        defer { pipeline.wait() }
        var problems: [CheckpointProblem] = []
        var unreadable = Set<Int>()
        for (i, (d, destination)) in targets.enumerated() {
            do {
                let ds = try file.openDataset(d.path)
                for piece in Pieces(shape: d.shape, elementSize: 4, maxBytes: CheckpointWriter.pieceBytes) {
                    let slice = UnsafeMutableRawBufferPointer(
                        rebasing: destination[piece.byteOffset..<(piece.byteOffset + piece.byteCount)])
                    try ds.readRaw(start: piece.start, count: piece.count, memoryType: .float32, into: slice)
                    pipeline.submit(i, UnsafeRawBufferPointer(slice))
                }
                try ds.close()
            } catch {
                unreadable.insert(i)
                problems.append(CheckpointReader.problem(error, object: d.path))
            }
        }
        let crcs = pipeline.wait()
        for (i, (d, _)) in targets.enumerated() where !unreadable.contains(i) && crcs[i] != d.checksum {
            problems.append(CheckpointReader.mismatch(d, computed: crcs[i]))
        }
        return problems
    }
}
