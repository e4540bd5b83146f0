import DecoupledCore
import DecoupledHDF5
import DecoupledTraining
import Foundation
import Testing

/// Every reference fixture made by scripts/reference/make_fixtures.py with the real
/// frameworks (PyTorch, optax, Keras; NumPy transcriptions of Caffe and the paper), replayed
/// through `decoupled replay`'s engine: the trajectory must match at every step.
///
/// `DECOUPLED_EXTRA_FIXTURES=DIR` adds every `DIR/*.h5` to the committed set, e.g. fresh
/// random PyTorch cases from `scripts/reference/check_random.sh` (CI has no torch: unset, only
/// the committed fixtures run). Fixtures of an external plugin's optimizer replay through the
/// shipped plugin, built by its Makefile (`shippedPlugins`).
@Suite struct ConformanceTests {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/reference")
    static let extraVariable = "DECOUPLED_EXTRA_FIXTURES"
    /// The extra directory, absolute, when the variable is set and not empty.
    static var extraDir: URL? {
        guard let d = ProcessInfo.processInfo.environment[extraVariable], !d.isEmpty else { return nil }
        return URL(fileURLWithPath: d, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath)).standardizedFileURL
    }
    static func h5Files(_ dir: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter { $0.hasSuffix(".h5") }.sorted()
    }
    /// Committed fixtures by file name, extra ones by absolute path (so a fresh case may share
    /// a committed case's name without hiding it).
    static var cases: [String] {
        h5Files(dir) + (extraDir.map { d in h5Files(d).map { d.appendingPathComponent($0).path } } ?? [])
    }

    /// Agreement at every step, relative to the tensor's scale at that step (its largest
    /// |value|): an element near zero inherits rounding from the larger terms of its update,
    /// so its own magnitude is no measure of fp32 error.
    ///
    /// PyTorch (and our random PyTorch cases) computes bias corrections and schedules in
    /// double as we do: 1e-6. optax and the NumPy transcriptions of the paper and Caffe
    /// compute them in float32 (e.g. 1 − β2ᵗ loses ~6e-5 of its relative precision when
    /// rounded in float32 at t = 1), which drifts to ~4.4e-6 of the tensor's scale over 50
    /// steps (optax-adamw-const). The keras convention computes Adam's scalars as Keras does
    /// (`AdamOptimizer.kerasParams`), so Keras Adam is within 1.9e-6; what is left there is
    /// the decoupled decay, w·keep with keep = float(1 − lr·wd) against Keras's w − w·wd·lr
    /// (keep carries 1 − keep to ~3e-8 absolute, ~5e-5 of the decay, every step), and v's
    /// update order, both per-element kernel arithmetic that stays PyTorch's.
    static func tolerance(_ name: String) -> Float {
        name.hasPrefix("torch-") || name.hasPrefix("random-torch-") ? 1e-6 : 5e-6
    }

    static func mismatch(_ ours: [Float], _ theirs: [Float], tolerance: Float) -> (Int, Float)? {
        let scale = theirs.map { abs($0) }.max() ?? 0
        var worst: (Int, Float)?
        for i in ours.indices {
            let s = max(abs(ours[i]), abs(theirs[i]), scale)
            let rel = s == 0 ? 0 : abs(ours[i] - theirs[i]) / s
            if rel > tolerance, rel > (worst?.1 ?? 0) { worst = (i, rel) }
        }
        return worst
    }

    /// The shipped external plugins, built where `make plugins` builds them (plugins/*/build/,
    /// by each plugin's Makefile; up to date already under `make test`), so fixtures of a
    /// plugin's optimizer (optax-lion-*: plugins/lion) replay too.
    static let shippedPlugins: Result<[String], PluginError> = {
        let plugins = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("plugins")
        var libraries: [String] = []
        do {
            for dir in try FileManager.default.contentsOfDirectory(atPath: plugins.path).sorted()
            where FileManager.default.fileExists(atPath: plugins.appendingPathComponent("\(dir)/Makefile").path) {
                let d = plugins.appendingPathComponent(dir)
                let p = Process()
                p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
                p.arguments = ["make", "-s", "-C", d.path]
                try p.run()
                p.waitUntilExit()
                guard p.terminationStatus == 0 else { return .failure(.library(path: d.path, message: "make failed")) }
                let build = d.appendingPathComponent("build")
                libraries += try FileManager.default.contentsOfDirectory(atPath: build.path).filter { $0.hasSuffix(".so") }.sorted()
                    .map { build.appendingPathComponent($0).path }
            }
        } catch {
            return .failure(.library(path: plugins.path, message: "\(error)"))
        }
        return .success(libraries)
    }()

    /// The built-in registry plus the shipped plugins.
    static func registry() throws -> PluginRegistry {
        let r = PluginRegistry.builtIn()
        for lib in try shippedPlugins.get() { try ExternalPluginLoader.load(lib, into: r) }
        return r
    }

    @Test func fixturesArePresent() {
        #expect(Self.h5Files(Self.dir).count >= 30, "expected the committed reference fixtures in \(Self.dir.path)")
        // A set variable naming an empty or missing directory must not pass as "all matched".
        if let extra = Self.extraDir {
            #expect(!Self.h5Files(extra).isEmpty, "\(Self.extraVariable)=\(extra.path) holds no .h5 fixtures")
        }
    }

    @Test(arguments: ConformanceTests.cases)
    func replayMatchesFramework(_ file: String) throws {
        let path = file.hasPrefix("/") ? file : Self.dir.appendingPathComponent(file).path
        let name = URL(fileURLWithPath: path).lastPathComponent
        let fixture = try H5File(path)
        defer { try? fixture.close() }
        let spec = try fixture.stringAttribute("spec")
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("replay-\(getpid())-\(UUID().uuidString)-\(name)").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        for kernels in [KernelPath.best, try KernelPath.named("scalar")] {
            let replay = Replay(registry: try Self.registry(), kernels: kernels, workers: 2)
            let result = try replay.run(specText: spec, specFile: "\(name):spec", input: path, output: out)
            let ours = try H5File(out)
            defer { try? ours.close() }
            for t in result.tensors {
                let theirs = try fixture.openDataset("trajectory/\(t)")
                let shape = try theirs.shape()
                let per = shape.dropFirst().reduce(1, *)
                let a = try ours.openDataset("trajectory/\(t)").read(as: Float.self)
                let b = try theirs.read(as: Float.self)
                #expect(a.count == b.count, "\(name) \(t): \(a.count) vs \(b.count) values")
                for s in 0..<shape[0] {
                    let r = (s * per)..<((s + 1) * per)
                    if let (i, rel) = Self.mismatch(Array(a[r]), Array(b[r]), tolerance: Self.tolerance(name)) {
                        Issue.record("\(name) [\(kernels)] \(t) step \(s) element \(i): ours \(a[r][r.lowerBound + i]) vs reference \(b[r][r.lowerBound + i]) (relative \(rel))")
                        break
                    }
                }
            }
        }
    }
}
