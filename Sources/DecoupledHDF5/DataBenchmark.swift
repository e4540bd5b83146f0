import DecoupledRandom
import Foundation

/// `decoupled bench data`: streaming throughput from HDF5 for contiguous, chunked and
/// chunked+gzip files, sequential and shuffled, beside h5py on the same files; and peak
/// resident memory while streaming a small and a large generated file.
public enum DataBenchmark {
    public struct Options {
        /// Fashion-MNIST IDX directory; when absent, a synthetic 60000×784 uint8 set is generated.
        public var source: String? = FashionMNIST.defaultDirectory
        /// Where benchmark files go (created if needed; files are removed afterwards unless `keepFiles`).
        public var workDirectory: String = NSTemporaryDirectory() + "decoupled-bench-data"
        public var batchSize = 128
        /// Smaller than the 47 MB of Fashion-MNIST's training features, so every epoch reads from
        /// HDF5 (a split that fits in the buffer is served from memory after the first epochs).
        public var bufferBytes = 16 << 20
        /// Minimum wall time per measurement (at least one epoch is always streamed).
        public var seconds = 2.0
        public var seed: UInt64 = 0
        /// The h5py side: script path and interpreter; nil script = skip.
        public var h5pyScript: String? = "scripts/bench/h5py_stream.py"
        public var python = "/usr/bin/python3"
        /// Generated sizes (MB) for the peak-RSS comparison; empty = skip.
        public var memorySizesMB: [Int] = [200, 2000]
        /// Command that runs `rssProbe` in a fresh process, e.g. [decoupled, "bench", "data"]:
        /// the probe arguments are appended. nil = skip the memory comparison.
        public var probeCommand: [String]? = nil
        public var keepFiles = false
        public init() {}
    }

    public struct Measurement: Codable {
        public var file: String
        public var layout: String
        public var order: String
        public var samplesPerSecond: Double
        public var megabytesPerSecond: Double
        public var implementation: String
    }

    /// Streams `path` for ≥ `seconds` (whole epochs) and returns samples/s and stored MB/s.
    public static func measure(path: String, shuffle: Bool, batchSize: Int, bufferBytes: Int, seconds: Double,
                               seed: UInt64) throws -> (samplesPerSecond: Double, megabytesPerSecond: Double) {
        let ds = try DatasetFile(path: path)
        let rowBytes = ds.featureCount * ds.featureType.byteSize
        let start = DispatchTime.now().uptimeNanoseconds
        let loader = try MinibatchLoader(file: ds, split: .train, batchSize: batchSize, seed: seed, shuffle: shuffle,
                                         bufferBytes: bufferBytes)
        var batch = Minibatch()
        var samples = 0
        var checksum: Float = 0
        var elapsed = 0.0
        repeat {
            while try loader.next(into: &batch) {
                samples += batch.count
                checksum += batch.features[batch.count * ds.featureCount / 2]  // touch the output
            }
            elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        } while elapsed < seconds
        if checksum.isNaN { print("") }  // keeps the loop's work observable
        let sps = Double(samples) / elapsed
        return (sps, sps * Double(rowBytes) / 1e6)
    }

    /// Streams one shuffled epoch and returns the process's peak resident set (VmHWM, bytes).
    /// Meant to run in a fresh process (`probeCommand`), so the peak belongs to this file alone.
    public static func rssProbe(path: String, batchSize: Int, bufferBytes: Int, seed: UInt64) throws -> Int {
        let ds = try DatasetFile(path: path)
        let loader = try MinibatchLoader(file: ds, split: .train, batchSize: batchSize, seed: seed, bufferBytes: bufferBytes)
        var batch = Minibatch()
        while try loader.next(into: &batch) {}
        return peakRSSBytes()
    }

    /// VmHWM from /proc/self/status (Linux), or ru_maxrss elsewhere.
    public static func peakRSSBytes() -> Int {
        if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) {
            for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
                let kb = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
                return kb * 1024
            }
        }
        var usage = rusage()
        getrusage(0, &usage)  // 0 = RUSAGE_SELF
        return Int(usage.ru_maxrss) * 1024
    }

    /// Writes a synthetic uint8 dataset of about `megabytes` MB (784 features, 10 classes),
    /// chunked without compression, in bounded memory.
    public static func generate(path: String, megabytes: Int, features: Int = 784, seed: UInt64 = 1) throws {
        let rows = max(1, megabytes * 1_000_000 / features)
        let test = min(1000, max(1, rows / 100))
        let storage = DatasetStorage(chunkRows: DatasetStorage.defaultChunkRows(rowBytes: features))
        let w = try DatasetWriter(path: path, featureType: .uint8, labelType: .uint8, sampleShape: [features],
                                  counts: [.train: rows, .test: test], storage: storage)
        var rng = Xoshiro256(seed: seed)
        for (split, n) in [(DatasetSplit.train, rows), (.test, test)] {
            var start = 0
            while start < n {
                let k = min(4096, n - start)
                var x = [UInt8](repeating: 0, count: k * features)
                x.withUnsafeMutableBytes { raw in
                    let words = raw.count / 8
                    let p = raw.baseAddress!.assumingMemoryBound(to: UInt64.self)
                    for i in 0..<words { p[i] = rng.next() }
                }
                try w.append(split, features: x, labels: (start..<(start + k)).map { Int32($0 % 10) })
                start += k
            }
        }
        try w.finish(numClasses: 10, scale: 1.0 / 255, source: "generated by decoupled bench data", license: "CC0")
    }

    /// Runs the whole benchmark, printing progress and the report through `log`.
    public static func run(_ o: Options, log: (String) -> Void) throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: o.workDirectory, withIntermediateDirectories: true)
        defer {
            if !o.keepFiles {
                for name in (try? fm.contentsOfDirectory(atPath: o.workDirectory)) ?? [] where name.hasPrefix("bench-") {
                    try? fm.removeItem(atPath: (o.workDirectory as NSString).appendingPathComponent(name))
                }
            }
        }
        func file(_ name: String) -> String { (o.workDirectory as NSString).appendingPathComponent("bench-" + name) }

        // 1. The three layouts of the same data.
        let layouts: [(String, DatasetStorage)] = [
            ("contiguous", .contiguous),
            ("chunked", DatasetStorage(chunkRows: DatasetStorage.defaultChunkRows(rowBytes: 784))),
            ("chunked+gzip", .compressed(rowBytes: 784)),
        ]
        var haveFashion = false
        if let src = o.source {
            var isDir: ObjCBool = false
            haveFashion = fm.fileExists(atPath: src, isDirectory: &isDir) && isDir.boolValue
        }
        let dataName = haveFashion ? "Fashion-MNIST train (60000×784 uint8)" : "synthetic 60000×784 uint8 (Fashion-MNIST not found)"
        log("data: \(dataName); batch \(o.batchSize), buffer \(o.bufferBytes >> 20) MiB, ≥ \(o.seconds) s per measurement")
        if o.bufferBytes >= 47_040_000 {
            log("note: the buffer holds the whole split, so later epochs are served from memory, not from HDF5")
        }
        log("(files are freshly written, so reads come from the page cache: this measures HDF5 decoding and the loader, not the disk)")
        var paths: [(String, String)] = []
        for (name, storage) in layouts {
            let p = file("\(name).h5")
            if haveFashion {
                try FashionMNIST.importDataset(directory: o.source, output: p, storage: storage)
            } else {
                try generateLike(path: p, storage: storage)
            }
            paths.append((name, p))
        }

        // 2. Ours.
        var results: [Measurement] = []
        for (name, p) in paths {
            for shuffle in [false, true] {
                let r = try measure(path: p, shuffle: shuffle, batchSize: o.batchSize, bufferBytes: o.bufferBytes,
                                    seconds: o.seconds, seed: o.seed)
                results.append(Measurement(file: p, layout: name, order: shuffle ? "shuffled" : "sequential",
                                           samplesPerSecond: r.samplesPerSecond, megabytesPerSecond: r.megabytesPerSecond,
                                           implementation: "decoupled"))
                log("  decoupled  " + pad(name, 13) + " " + pad(shuffle ? "shuffled" : "sequential", 10)
                    + String(format: " %12.0f samples/s %9.1f MB/s", r.samplesPerSecond, r.megabytesPerSecond))
            }
        }

        // 3. h5py on the same files, in the same run.
        var h5py: [Measurement] = []
        if let script = o.h5pyScript {
            guard fm.fileExists(atPath: script) else {
                throw DataInputError("h5py benchmark script \(script) not found (pass --h5py-script, or --no-h5py)")
            }
            for (name, p) in paths {
                let args = [script, p, "--batch-size", String(o.batchSize), "--seconds", String(o.seconds), "--layout", name]
                let out = try runChildProcess(o.python, args)
                for line in out.split(separator: "\n") where line.hasPrefix("{") {
                    if let m = try? JSONDecoder().decode(Measurement.self, from: Data(line.utf8)) {
                        h5py.append(m)
                        log("  " + pad(m.implementation, 10) + " " + pad(m.layout, 13) + " " + pad(m.order, 10)
                            + String(format: " %12.0f samples/s %9.1f MB/s", m.samplesPerSecond, m.megabytesPerSecond))
                    }
                }
            }
        }

        // 4. Summary table.
        log("")
        log("streaming throughput (samples/s; MB/s of stored uint8 features)")
        log("layout        order       decoupled              h5py (default cache)   h5py (256 MiB cache)")
        for (name, _) in paths {
            for order in ["sequential", "shuffled"] {
                let ours = results.first { $0.layout == name && $0.order == order }!
                func cell(_ impl: String) -> String {
                    guard let m = h5py.first(where: { $0.layout == name && $0.order == order && $0.implementation == impl }) else {
                        return pad("        —", 24)
                    }
                    return String(format: "%9.0f  %7.1f MB/s    ", m.samplesPerSecond, m.megabytesPerSecond)
                }
                log(pad(name, 13) + " " + pad(order, 11) + String(format: "%9.0f  %7.1f MB/s   ", ours.samplesPerSecond,
                           ours.megabytesPerSecond) + cell("h5py") + cell("h5py-256MiB"))
            }
        }

        // 5. Peak RSS: small vs large generated file, each streamed in a fresh process.
        if let probe = o.probeCommand, !o.memorySizesMB.isEmpty {
            log("")
            log("peak resident memory streaming one shuffled epoch (fresh process each, buffer \(o.bufferBytes >> 20) MiB)")
            var peaks: [(Int, Int)] = []
            for mb in o.memorySizesMB {
                let p = file("generated-\(mb)MB.h5")
                log("  generating \(mb) MB …")
                try generate(path: p, megabytes: mb)
                let out = try runChildProcess(probe[0], Array(probe.dropFirst()) + ["--rss-probe", p, "--batch-size", String(o.batchSize),
                                                                               "--buffer-mb", String(o.bufferBytes >> 20)])
                guard let line = out.split(separator: "\n").last(where: { $0.hasPrefix("peak_rss_bytes=") }),
                      let bytes = Int(line.dropFirst("peak_rss_bytes=".count)) else {
                    throw DataInputError("RSS probe printed no peak_rss_bytes line: \(out)")
                }
                peaks.append((mb, bytes))
                log(String(format: "  %6d MB file: peak RSS %7.1f MiB", mb, Double(bytes) / 1_048_576))
                try? fm.removeItem(atPath: p)
            }
            if let first = peaks.first, let last = peaks.last, peaks.count > 1 {
                let ratio = Double(last.1) / Double(first.1)
                log(String(format: "  ratio %d MB / %d MB: %.3f", last.0, first.0, ratio)
                    + (abs(ratio - 1) <= 0.10 ? " (within the 10% bound)" : " (OUTSIDE the 10% bound)"))
            }
        }
    }

    static func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }

    /// Synthetic stand-in for Fashion-MNIST when the Debian package is missing.
    static func generateLike(path: String, storage: DatasetStorage) throws {
        let w = try DatasetWriter(path: path, featureType: .uint8, labelType: .uint8, sampleShape: [784],
                                  counts: [.train: 60_000, .test: 10_000], storage: storage)
        var rng = Xoshiro256(seed: 7)
        for (split, n) in [(DatasetSplit.train, 60_000), (.test, 10_000)] {
            var start = 0
            while start < n {
                let k = min(4096, n - start)
                // Image-like: mostly zeros with a bright blob, so gzip sees realistic redundancy.
                var x = [UInt8](repeating: 0, count: k * 784)
                for r in 0..<k {
                    let cx = 8 + rng.nextInt(below: 12), cy = 8 + rng.nextInt(below: 12)
                    for yy in (cy - 6)..<(cy + 6) { for xx in (cx - 6)..<(cx + 6) { x[r * 784 + yy * 28 + xx] = UInt8(128 + rng.nextInt(below: 128)) } }
                }
                try w.append(split, features: x, labels: (start..<(start + k)).map { Int32($0 % 10) })
                start += k
            }
        }
        try w.finish(numClasses: 10, scale: 1.0 / 255, source: "synthetic", license: "CC0")
    }
}
