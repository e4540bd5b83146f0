import DecoupledCore
import DecoupledRandom
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `decoupled bench checkpoint`: checkpoint save and load throughput next to a `dd`-style
/// sequential write (`dd if=/dev/zero of=X bs=16M conv=fdatasync`) of the same size to the
/// same directory, each round measuring all three, so the ratios compare like with like.
public enum CheckpointBenchmark {
    /// What to measure and where.
    public struct Options {
        /// Parameters in the synthetic arena (split into 4 layers of weight + bias).
        public var parameters = 50_000_000
        /// State slots saved beside the parameters (Adam's two by default).
        public var slots = ["exp_avg", "exp_avg_sq"]
        /// Where the files go: put it on the disk to measure. A subdirectory is used and removed.
        public var directory = NSTemporaryDirectory()
        /// Rounds of dd, save and load (alternating which of dd and save comes first).
        public var repeats = 3
        /// Seed of the synthetic values.
        public var seed: UInt64 = 1
        /// The defaults: 5·10⁷ parameters with Adam's two slots, three rounds, in the temporary directory.
        public init() {}
    }

    /// One round: dd, save, load of the same number of bytes.
    public struct Round: Encodable, Equatable {
        /// Bytes of the checkpoint file; dd writes as many (rounded up to whole 16 MiB blocks).
        public var fileBytes: Int
        /// Bytes dd wrote: `fileBytes` rounded up to whole 16 MiB blocks.
        public var ddBytes: Int
        /// write(2) of every block plus the fdatasync.
        public var ddSeconds: Double
        /// write + fsync + rename + directory fsync (retention deletes nothing during the benchmark:
        /// the benchmark removes each checkpoint itself, after its load, untimed).
        public var saveSeconds: Double
        /// Verification pass from disk, then the copy pass into the arena (from the page cache).
        public var loadSeconds: Double
        /// Fraction of the file still cached when the load started (nil: could not be measured).
        public var residentBeforeLoad: Double?

        /// Throughputs in 10⁹ bytes per second, and the save's and load's as fractions of dd's.
        public var ddGBps: Double { Double(ddBytes) / ddSeconds / 1e9 }
        public var saveGBps: Double { Double(fileBytes) / saveSeconds / 1e9 }
        public var loadGBps: Double { Double(fileBytes) / loadSeconds / 1e9 }
        public var saveRatio: Double { saveGBps / ddGBps }
        public var loadRatio: Double { loadGBps / ddGBps }

        private enum Keys: String, CodingKey {
            case fileBytes, ddBytes, ddSeconds, saveSeconds, loadSeconds, residentBeforeLoad
            case ddGBps, saveGBps, loadGBps, saveRatio, loadRatio
        }

        /// The measurements and the figures derived from them.
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: Keys.self)
            try c.encode(fileBytes, forKey: .fileBytes)
            try c.encode(ddBytes, forKey: .ddBytes)
            try c.encode(ddSeconds, forKey: .ddSeconds)
            try c.encode(saveSeconds, forKey: .saveSeconds)
            try c.encode(loadSeconds, forKey: .loadSeconds)
            try c.encodeIfPresent(residentBeforeLoad, forKey: .residentBeforeLoad)
            try c.encode(ddGBps, forKey: .ddGBps)
            try c.encode(saveGBps, forKey: .saveGBps)
            try c.encode(loadGBps, forKey: .loadGBps)
            try c.encode(saveRatio, forKey: .saveRatio)
            try c.encode(loadRatio, forKey: .loadRatio)
        }
    }

    /// Every round, and medians over them (the disk's speed varies from one write to the next,
    /// so single rounds mislead).
    public struct Report: Encodable, Equatable {
        /// Parameters in the synthetic arena (close to the requested count).
        public var parameters: Int
        public var tensors: Int
        public var slots: [String]
        public var rounds: [Round]

        static func median(_ v: [Double]) -> Double {
            let s = v.sorted()
            return s.isEmpty ? .nan : s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
        }
        /// Medians over the rounds; the ratios are medians of each round's own ratio.
        public var medianDdGBps: Double { Report.median(rounds.map(\.ddGBps)) }
        public var medianSaveGBps: Double { Report.median(rounds.map(\.saveGBps)) }
        public var medianLoadGBps: Double { Report.median(rounds.map(\.loadGBps)) }
        public var medianSaveRatio: Double { Report.median(rounds.map(\.saveRatio)) }
        public var medianLoadRatio: Double { Report.median(rounds.map(\.loadRatio)) }

        private enum Keys: String, CodingKey {
            case parameters, tensors, slots, rounds
            case medianDdGBps, medianSaveGBps, medianLoadGBps, medianSaveRatio, medianLoadRatio
        }

        /// The rounds and their medians.
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: Keys.self)
            try c.encode(parameters, forKey: .parameters)
            try c.encode(tensors, forKey: .tensors)
            try c.encode(slots, forKey: .slots)
            try c.encode(rounds, forKey: .rounds)
            try c.encode(medianDdGBps, forKey: .medianDdGBps)
            try c.encode(medianSaveGBps, forKey: .medianSaveGBps)
            try c.encode(medianLoadGBps, forKey: .medianLoadGBps)
            try c.encode(medianSaveRatio, forKey: .medianSaveRatio)
            try c.encode(medianLoadRatio, forKey: .medianLoadRatio)
        }
    }

    /// The tensor specs of a synthetic model with about `parameters` parameters: four layers of
    /// weight [rows, width] and bias [width], width ≤ 1000 (5e7 → exactly 4 × (12499×1000 + 1000)).
    public static func syntheticSpecs(parameters: Int) -> [TensorSpec] {
        let n = max(parameters, 8)
        let width = max(1, min(1000, n / 8))
        let rows = max(1, (n / 4 - width) / width)
        return (1...4).flatMap { l in
            [TensorSpec(name: "layer\(l).weight", shape: [rows, width], role: .weight),
             TensorSpec(name: "layer\(l).bias", shape: [width], role: .bias)]
        }
    }

    /// An arena of `syntheticSpecs(parameters:)` with `slots`, every value drawn from a
    /// seeded generator (parameters and each slot from their own stream), in [-1, 1).
    public static func syntheticArena(parameters: Int, slots: [String], seed: UInt64) throws -> ParameterArena {
        let arena = try ParameterArena(specs: syntheticSpecs(parameters: parameters))
        func fill(_ buffer: AlignedBuffer, _ stream: String) {
            var rng = Xoshiro256(seed: seed, stream: stream)
            for e in arena.entries {
                let v = arena.view(buffer, e)
                var i = 0
                while i < v.count {
                    let r = rng.next()
                    v[i] = Float(Int32(truncatingIfNeeded: r)) * 0x1p-31
                    if i + 1 < v.count { v[i + 1] = Float(Int32(truncatingIfNeeded: r >> 32)) * 0x1p-31 }
                    i += 2
                }
            }
        }
        fill(arena.params, "params")
        for slot in slots { fill(arena.slot(slot), "slot:" + slot) }
        return arena
    }

    /// Writes `bytes` (rounded up to whole blocks) of zeros to `path` with write(2) in blocks
    /// of `blockBytes`, then fdatasync — what `dd bs=16M conv=fdatasync` does — and returns the
    /// seconds from open to the end of the fdatasync. The file is removed afterwards.
    public static func ddWrite(path: String, bytes: Int, blockBytes: Int = 16 << 20) throws -> Double {
        var raw: UnsafeMutableRawPointer? = nil
        guard posix_memalign(&raw, 4096, blockBytes) == 0, let block = raw else {
            throw CheckpointError.invalidArgument("cannot allocate a \(blockBytes)-byte block")
        }
        defer { free(block) }
        memset(block, 0, blockBytes)
        defer { FS.unlinkIfPresent(path) }
        let start = DispatchTime.now().uptimeNanoseconds
        let fd = try FS.openFD(path, O_WRONLY | O_CREAT | O_TRUNC, "create")
        defer { close(fd) }
        var written = 0
        while written < bytes {
            let n = write(fd, block, blockBytes)
            if n < 0 {
                if errno == EINTR { continue }
                throw FS.failure("write", path, errno: errno)
            }
            written += n
        }
        if fdatasync(fd) != 0 { throw FS.failure("fdatasync", path, errno: errno) }
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    /// Runs `repeats` rounds of dd, save and load (bit-exactness checked after each load) and
    /// reports every round; progress and results go through `log`.
    public static func run(_ o: Options, log: (String) -> Void) throws -> Report {
        guard o.repeats >= 1 else { throw CheckpointError.invalidArgument("repeats must be ≥ 1, got \(o.repeats)") }
        guard o.parameters >= 1 else { throw CheckpointError.invalidArgument("parameters must be ≥ 1, got \(o.parameters)") }
        let fm = FileManager.default
        let work = (o.directory as NSString).appendingPathComponent("decoupled-bench-checkpoint-\(getpid())")
        try? fm.removeItem(atPath: work)
        defer { try? fm.removeItem(atPath: work) }
        let runDirectory = (work as NSString).appendingPathComponent("run")

        log("generating \(o.parameters) parameters with state slots \(o.slots.joined(separator: ", ")) …")
        let source = try syntheticArena(parameters: o.parameters, slots: o.slots, seed: o.seed)
        let target = try ParameterArena(specs: source.entries.map(\.spec))
        for slot in o.slots { target.slot(slot) }  // allocated (and zeroed) before timing
        let payload = source.parameterCount * 4 * (1 + o.slots.count)
        let store = try CheckpointStore(runDirectory: runDirectory, keepLast: o.repeats + 1)
        let ddPath = (work as NSString).appendingPathComponent("dd.bin")
        let block = 16 << 20
        let meta = { (step: Int) in
            CheckpointMeta(step: step, epoch: 0, config: "decoupled bench checkpoint", plugins: [:], runState: Data("{}".utf8))
        }

        // Disk state matters as much as the code: on thin-provisioned virtual disks the first
        // write to never-used blocks can be several times slower than rewriting blocks freed a
        // moment ago. So every file is deleted right after its measurement, and dd and the save
        // each write into blocks the other just freed; the order alternates between rounds so
        // neither always comes first. One untimed write of the full size primes the cycle.
        let ddBytes = (payload + block - 1) / block * block
        _ = try ddWrite(path: ddPath, bytes: ddBytes, blockBytes: block)

        log(String(format: "payload %.1f MB (%d tensors × %d roles), %d rounds, directory %@", Double(payload) / 1e6,
                   source.entries.count, 1 + o.slots.count, o.repeats, o.directory as NSString))
        var rounds: [Round] = []
        for r in 1...o.repeats {
            var dd = 0.0, save = 0.0, load = 0.0
            var fileBytes = payload
            var resident: Double? = nil
            func measureDD() throws {
                dd = try ddWrite(path: ddPath, bytes: ddBytes, blockBytes: block)
                // Commits the removal, so its blocks are free for the save (as after a checkpoint's removal).
                try FS.fsyncDirectory(work)
            }
            func measureCheckpoint() throws {
                var t = DispatchTime.now().uptimeNanoseconds
                let path = try store.save(arena: source, slots: o.slots, meta: meta(r))
                save = Double(DispatchTime.now().uptimeNanoseconds - t) / 1e9
                fileBytes = FS.fileSize(path) ?? payload

                resident = try FS.dropFromPageCache(path)
                t = DispatchTime.now().uptimeNanoseconds
                _ = try store.load(path, into: target, slots: o.slots)
                load = Double(DispatchTime.now().uptimeNanoseconds - t) / 1e9
                guard identical(source, target, slots: o.slots) else {
                    throw CheckpointError.corrupt(file: path, problems: [CheckpointProblem(object: "/", reason: "the loaded arena differs from the saved one")])
                }
                for b in [target.params] + o.slots.map({ target.slot($0) }) { b.zero() }
                FS.unlinkIfPresent(path)
                try FS.fsyncDirectory(store.directory)
            }
            if r % 2 == 1 {
                try measureDD()
                try measureCheckpoint()
            } else {
                try measureCheckpoint()
                try measureDD()
            }
            let round = Round(fileBytes: fileBytes, ddBytes: ddBytes, ddSeconds: dd, saveSeconds: save,
                              loadSeconds: load, residentBeforeLoad: resident)
            rounds.append(round)
            log(String(format: "round %d (%@): dd %.2f GB/s | save %.2f GB/s (%.0f%% of dd) | load %.2f GB/s (%.0f%% of dd)%@",
                       r, (r % 2 == 1 ? "dd first" : "save first") as NSString, round.ddGBps, round.saveGBps, round.saveRatio * 100,
                       round.loadGBps, round.loadRatio * 100, cacheNote(resident) as NSString))
        }
        return Report(parameters: source.parameterCount, tensors: source.entries.count, slots: o.slots, rounds: rounds)
    }

    static func cacheNote(_ resident: Double?) -> String {
        guard let resident else { return " [page cache state unknown: reads may be cached]" }
        if resident > 0.05 { return String(format: " [%.0f%% of the file was still cached: reads partly from memory]", resident * 100) }
        return ""
    }

    /// Byte equality of the parameter buffers and the slots (padding included, zero in both).
    static func identical(_ a: ParameterArena, _ b: ParameterArena, slots: [String]) -> Bool {
        func same(_ x: AlignedBuffer, _ y: AlignedBuffer) -> Bool {
            x.count == y.count && memcmp(x.base, y.base, x.count * 4) == 0
        }
        return same(a.params, b.params) && slots.allSatisfy { same(a.slot($0), b.slot($0)) }
    }
}
