import DecoupledCore
import DecoupledHDF5
import Dispatch
import Foundation

/// One checkpoint dataset as its metadata describes it (no raw data read yet).
struct StoredDataset {
    /// Absolute object path, e.g. "/state/exp_avg/fc1.weight".
    var path: String
    var shape: [Int]
    /// nil when the stored type is not numeric (`storedType` says what it is).
    var elementType: H5ScalarType?
    var storedType: String
    /// The `crc32` attribute; nil when missing or malformed (a problem is recorded then).
    var checksum: UInt32?

    var byteCount: Int { shape.reduce(1, *) * (elementType?.byteSize ?? 0) }
}

/// The structure of a checkpoint file read from its metadata, with every structural problem
/// found (missing groups, wrong types, missing checksums, state slots that do not mirror
/// /params). HDF5 verifies the metadata's own checksums while this is read.
struct CheckpointLayout {
    var formatVersion: Int?
    var step: Int?
    var epoch: Int?
    /// Tensor name → /params dataset.
    var params: [String: StoredDataset] = [:]
    /// Slot → tensor name → /state/<slot> dataset.
    var state: [String: [String: StoredDataset]] = [:]
    /// Object path → /meta dataset.
    var meta: [String: StoredDataset] = [:]
    var problems: [CheckpointProblem] = []

    /// Every dataset, in a fixed order: /params, /state by slot, /meta (each by name).
    var allDatasets: [StoredDataset] {
        params.keys.sorted().map { params[$0]! }
            + state.keys.sorted().flatMap { slot in state[slot]!.keys.sorted().map { state[slot]![$0]! } }
            + meta.keys.sorted().map { meta[$0]! }
    }
}

/// Reading and verifying checkpoint files (format 1).
enum CheckpointReader {
    /// Bytes per HDF5 read while verifying; two such buffers alternate between the reading
    /// thread and the checksum thread.
    static let verifyPieceBytes = 8 << 20

    /// Opens a checkpoint read-only; an unreadable file (not HDF5, truncated, bad superblock
    /// checksum) becomes `corrupt` naming the file and the object "/".
    static func open(_ path: String) throws -> H5File {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw CheckpointError.io(path: path, operation: "open checkpoint", reason: "no such file")
        }
        guard !isDir.boolValue else {
            throw CheckpointError.io(path: path, operation: "open checkpoint", reason: "it is a directory")
        }
        do {
            return try H5File(path, mode: .readOnly)
        } catch let e as HDF5Error {
            if e.reason.hasPrefix("permission denied") {
                throw CheckpointError.io(path: path, operation: "open checkpoint", reason: e.reason)
            }
            throw CheckpointError.corrupt(file: path, problems: [CheckpointProblem(object: "/", reason: e.reason)])
        }
    }

    static func problem(_ error: Error, object: String) -> CheckpointProblem {
        if let e = error as? HDF5Error {
            return CheckpointProblem(object: e.object.isEmpty ? object : e.object, reason: "cannot \(e.operation): \(e.reason)")
        }
        return CheckpointProblem(object: object, reason: "\(error)")
    }

    // MARK: structure

    /// Reads the structure. Problems are collected, not thrown, so one pass reports them all.
    /// With a format_version other than ours the rest is read on a best-effort basis.
    static func layout(of file: H5File) -> CheckpointLayout {
        var layout = CheckpointLayout()
        func note(_ object: String, _ reason: String) { layout.problems.append(CheckpointProblem(object: object, reason: reason)) }
        func intAttribute(_ name: String, on object: H5Object, _ path: String) -> Int? {
            do {
                guard try object.hasAttribute(name) else {
                    note(path, "attribute '\(name)' is missing" + (name == CheckpointFormat.formatVersionAttribute ? " (not a Decoupled checkpoint?)" : ""))
                    return nil
                }
                return Int(try object.integerAttribute(name))
            } catch {
                layout.problems.append(problem(error, object: path))
                return nil
            }
        }

        layout.formatVersion = intAttribute(CheckpointFormat.formatVersionAttribute, on: file, "/")
        if let v = layout.formatVersion, v != CheckpointFormat.version {
            note("/", "format_version is \(v); this build reads format \(CheckpointFormat.version)")
        }
        layout.step = intAttribute(CheckpointFormat.stepAttribute, on: file, "/")
        layout.epoch = intAttribute(CheckpointFormat.epochAttribute, on: file, "/")
        if let s = layout.step, s < 0 { note("/", "attribute 'step' is \(s); expected ≥ 0") }
        if let e = layout.epoch, e < 0 { note("/", "attribute 'epoch' is \(e); expected ≥ 0") }

        /// Opens a group and lists its children; nil (with a problem noted) when it is not a group.
        func children(_ path: String) -> (H5Group, [String])? {
            do {
                guard let kind = try file.kind(of: path) else {
                    note(path, "group is missing")
                    return nil
                }
                guard kind == .group else {
                    note(path, "is not a group")
                    return nil
                }
                let g = try file.openGroup(path)
                return (g, try g.childNames())
            } catch {
                layout.problems.append(problem(error, object: path))
                return nil
            }
        }

        /// Reads one dataset's description, checking type, rank and checksum attribute.
        func dataset(_ path: String, expect: H5ScalarType, rank1: Bool = false) -> StoredDataset? {
            do {
                guard let kind = try file.kind(of: path) else {
                    note(path, "dataset is missing")
                    return nil
                }
                guard kind == .dataset else {
                    note(path, "is a \(kind == .group ? "group" : "non-dataset object"), expected a dataset")
                    return nil
                }
                let ds = try file.openDataset(path)
                let info = try ds.info()
                var d = StoredDataset(path: path, shape: info.shape, elementType: info.elementType,
                                      storedType: info.storedType, checksum: nil)
                if info.elementType != expect {
                    note(path, "is stored as \(info.storedType); expected \(expect)")
                    d.elementType = nil
                }
                if rank1 && info.shape.count != 1 {
                    note(path, "has shape \(info.shape); expected one dimension")
                }
                if try ds.hasAttribute(CheckpointFormat.checksumAttribute) {
                    let v = try ds.integerAttribute(CheckpointFormat.checksumAttribute)
                    if let c = UInt32(exactly: v) { d.checksum = c } else { note(path, "attribute 'crc32' is \(v); expected a 32-bit unsigned value") }
                } else {
                    note(path, "attribute 'crc32' (its checksum) is missing")
                }
                try ds.close()
                return d
            } catch {
                layout.problems.append(problem(error, object: path))
                return nil
            }
        }

        if let (_, names) = children(CheckpointFormat.paramsGroup) {
            for name in names {
                if let d = dataset(CheckpointFormat.paramsGroup + "/" + name, expect: .float32) { layout.params[name] = d }
            }
        }
        if let (_, slots) = children(CheckpointFormat.stateGroup) {
            for slot in slots {
                let slotPath = CheckpointFormat.stateGroup + "/" + slot
                guard let (_, names) = children(slotPath) else { continue }
                var tensors: [String: StoredDataset] = [:]
                for name in names {
                    if let d = dataset(slotPath + "/" + name, expect: .float32) { tensors[name] = d }
                }
                layout.state[slot] = tensors
            }
        }
        if children(CheckpointFormat.metaGroup) != nil {
            for path in CheckpointFormat.metaDatasets {
                if let d = dataset(path, expect: .uint8, rank1: true) { layout.meta[path] = d }
            }
        }

        // Every state slot holds one tensor per parameter tensor, of one layout: the same shape,
        // per row, per column or a scalar (StateLayout).
        for (slot, tensors) in layout.state.sorted(by: { $0.key < $1.key }) {
            let slotPath = CheckpointFormat.stateGroup + "/" + slot
            var fitting = Set(StateLayout.allCases)
            for (name, p) in layout.params.sorted(by: { $0.key < $1.key }) {
                guard let t = tensors[name] else {
                    note(slotPath + "/" + name, "is missing: every state slot holds every tensor of /params")
                    continue
                }
                let spec = TensorSpec(name: name, shape: p.shape, role: .other)
                let fits = Set(StateLayout.allCases.filter { $0.shape(of: spec) == t.shape })
                if fits.isEmpty {
                    note(t.path, "has shape \(t.shape), but \(p.path) has \(p.shape) (state is per element, row, column or tensor)")
                } else if fitting.intersection(fits).isEmpty {
                    note(t.path, "has shape \(t.shape): another layout than the slot's other tensors (\(fitting.map(\.rawValue).sorted().joined(separator: " or ")))")
                }
                fitting.formIntersection(fits)
            }
            for name in tensors.keys.sorted() where layout.params[name] == nil {
                note(slotPath + "/" + name, "has no counterpart in /params")
            }
        }
        return layout
    }

    // MARK: raw data

    /// Reads every dataset with a known type and checksum through two small alternating
    /// buffers and compares its CRC-32 with the stored one. Returns the problems found.
    static func verifyData(_ file: H5File, _ datasets: [StoredDataset]) -> [CheckpointProblem] {
        let checkable = datasets.filter { $0.elementType != nil && $0.checksum != nil }
        guard !checkable.isEmpty else { return [] }
        let maxRow = checkable.map { Pieces.rowBytes(shape: $0.shape, elementSize: $0.elementType!.byteSize) }.max() ?? 0
        let bufferBytes = max(verifyPieceBytes, maxRow)
        let buffers = (0..<2).map { _ in UnsafeMutableRawPointer.allocate(byteCount: bufferBytes, alignment: 64) }
        defer { buffers.forEach { $0.deallocate() } }
        let available = [DispatchSemaphore(value: 1), DispatchSemaphore(value: 1)]
        let pipeline = ChecksumPipeline(count: checkable.count)
        // Runs before the buffers are freed (defers run in reverse order), also when throwing.
        defer { pipeline.wait() }

        var problems: [CheckpointProblem] = []
        var unreadable = Set<Int>()
        var next = 0
        for (i, d) in checkable.enumerated() {
            do {
                let ds = try file.openDataset(d.path)
                for piece in Pieces(shape: d.shape, elementSize: d.elementType!.byteSize, maxBytes: verifyPieceBytes) {
                    let b = next
                    available[b].wait()
                    let buffer = UnsafeMutableRawBufferPointer(start: buffers[b], count: piece.byteCount)
                    do {
                        try ds.readRaw(start: piece.start, count: piece.count, memoryType: d.elementType!, into: buffer)
                    } catch {
                        available[b].signal()
                        throw error
                    }
                    pipeline.submit(i, UnsafeRawBufferPointer(buffer)) { available[b].signal() }
                    next ^= 1
                }
                try ds.close()
            } catch {
                unreadable.insert(i)
                problems.append(problem(error, object: d.path))
            }
        }
        let crcs = pipeline.wait()
        for (i, d) in checkable.enumerated() where !unreadable.contains(i) && crcs[i] != d.checksum! {
            problems.append(mismatch(d, computed: crcs[i]))
        }
        return problems
    }

    static func mismatch(_ d: StoredDataset, computed: UInt32) -> CheckpointProblem {
        CheckpointProblem(object: d.path, reason: String(format: "CRC-32 mismatch: stored 0x%08x, computed 0x%08x", d.checksum!, computed)
                            + " over its \(d.byteCount) bytes (the data changed after it was written)")
    }

    /// Reads the (already verified) /meta datasets into a `CheckpointMeta`.
    static func meta(_ file: H5File, _ layout: CheckpointLayout) -> (CheckpointMeta?, [CheckpointProblem]) {
        var problems: [CheckpointProblem] = []
        func bytes(_ path: String) -> [UInt8]? {
            do { return try file.openDataset(path).read(as: UInt8.self) } catch {
                problems.append(problem(error, object: path))
                return nil
            }
        }
        guard let step = layout.step, let epoch = layout.epoch,
              let configBytes = bytes(CheckpointFormat.configPath),
              let pluginBytes = bytes(CheckpointFormat.pluginsPath),
              let runState = bytes(CheckpointFormat.runStatePath) else { return (nil, problems) }
        guard let config = String(bytes: configBytes, encoding: .utf8) else {
            return (nil, [CheckpointProblem(object: CheckpointFormat.configPath, reason: "is not valid UTF-8 text")])
        }
        let plugins: [String: String]
        do { plugins = try JSONDecoder().decode([String: String].self, from: Data(pluginBytes)) } catch {
            return (nil, [CheckpointProblem(object: CheckpointFormat.pluginsPath,
                                            reason: "is not a JSON object of plugin name → version strings (\(error))")])
        }
        return (CheckpointMeta(step: step, epoch: epoch, config: config, plugins: plugins, runState: Data(runState)), [])
    }

    /// Everything `verify` establishes about a file: its structure, its metadata and every
    /// problem (structure, checksums, unreadable objects).
    struct Inspection {
        var layout: CheckpointLayout
        var meta: CheckpointMeta?
        var problems: [CheckpointProblem]
    }

    /// Full verification: structure, every checksum, the metadata. Opening failures throw;
    /// everything after is collected in `problems`.
    static func inspect(_ path: String, file: H5File? = nil, layout known: CheckpointLayout? = nil) throws -> Inspection {
        let f = try file ?? open(path)
        let layout = known ?? self.layout(of: f)
        var problems = layout.problems
        if layout.formatVersion != CheckpointFormat.version {
            // Another format: its data layout is unknown, so nothing more is meaningful.
            return Inspection(layout: layout, meta: nil, problems: problems)
        }
        if let step = layout.step, let named = CheckpointFormat.step(fromFileName: (path as NSString).lastPathComponent), named != step {
            problems.append(CheckpointProblem(object: "/", reason: "the file name says step \(named) but attribute 'step' is \(step)"))
        }
        FS.adviseWillNeed(path)
        problems += verifyData(f, layout.allDatasets)
        var meta: CheckpointMeta? = nil
        if problems.isEmpty {
            let (m, metaProblems) = self.meta(f, layout)
            meta = m
            problems += metaProblems
        }
        return Inspection(layout: layout, meta: meta, problems: problems)
    }
}
