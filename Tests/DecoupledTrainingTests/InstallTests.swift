import DecoupledCheckpoint
import Foundation
import Testing

/// `make install` as a user gets it: the plugins built and everything installed into a
/// temporary prefix with scripts/install.sh (what the Makefile's install target runs, here
/// with the debug binary so the suite needs no release build), then commands run from
/// another temporary directory. Nothing is written outside the temporary directory.
@Suite struct InstallTests {
    struct Tree {
        let top = NSTemporaryDirectory() + "decoupled-install-test-" + UUID().uuidString
        var prefix: String { top + "/prefix" }
        var elsewhere: String { top + "/elsewhere" }
        var binary: String { prefix + "/bin/decoupled" }
    }

    @discardableResult
    func run(_ executable: String, _ args: [String], in dir: String, timeout: Double = 300) throws -> Subprocess.Result {
        let r = try Subprocess.run(executable, args, options: .init(workingDirectory: dir, timeout: timeout))
        #expect(r.status == 0, "\(executable) \(args.joined(separator: " ")) in \(dir): \(r.exit)\n\(r.stdout)\n\(r.stderr)")
        return r
    }

    @Test func installedCommandsRunFromAnotherDirectory() throws {
        #expect(FileManager.default.isExecutableFile(atPath: decoupledBinary), "build with `swift build --build-tests` first")
        let t = Tree()
        defer { try? FileManager.default.removeItem(atPath: t.top) }
        try FileManager.default.createDirectory(atPath: t.elsewhere, withIntermediateDirectories: true)

        // The shipped plugins, built out of the tree (BUILD=…) so the checkout is not written to.
        let pluginsDir = repositoryRoot + "/plugins"
        var libraries: [String] = []
        for name in try FileManager.default.contentsOfDirectory(atPath: pluginsDir).sorted()
        where FileManager.default.fileExists(atPath: "\(pluginsDir)/\(name)/Makefile") {
            let build = "\(t.top)/plugin-build/\(name)"
            try run("/usr/bin/env", ["make", "-s", "-C", "\(pluginsDir)/\(name)", "BUILD=\(build)"], in: t.top)
            libraries += try FileManager.default.contentsOfDirectory(atPath: build).filter { $0.hasSuffix(".so") }.map { "\(build)/\($0)" }
        }
        #expect(libraries.count >= 2, "\(libraries)")
        try run(repositoryRoot + "/scripts/install.sh", ["install", t.prefix, decoupledBinary] + libraries, in: t.top)

        let version = try run(t.binary, ["--version"], in: t.elsewhere)
        #expect(version.stdout.range(of: #"^\d+\.\d+\.\d+"#, options: .regularExpression) != nil, "\(version.stdout)")

        // External plugins from PREFIX/lib/decoupled/plugins, whatever the working directory.
        let plugins = try run(t.binary, ["plugins", "list"], in: t.elsewhere)
        for name in ["regularizer l1_decoupled", "optimizer lion"] {
            let line = plugins.stdout.split(separator: "\n").first { $0.hasPrefix(name + " ") } ?? ""
            #expect(line.contains("[\(t.prefix)/lib/decoupled/plugins/"), "\(name): \(plugins.stdout)")
        }
        #expect(!plugins.stdout.contains("refused"), "\(plugins.stdout)")

        // An installed example naming the external regularizer and the shipped data by relative
        // paths: the config is found among the shipped files, the data in PREFIX/share/decoupled.
        let runDir = t.elsewhere + "/run"
        let train = try run(t.binary, ["train", "examples/fashion-mlp-adamw-l1.toml", "--run-dir", runDir, "--quiet",
                                       "--set", "data.file=datasets/fashion-mnist-small.h5", "--set", "data.train_subset=1000",
                                       "--set", "train.epochs=1", "--set", "schedule.t0=1"], in: t.elsewhere)
        #expect(train.stdout.contains("completed"), "\(train.stdout)")
        let stored = try String(contentsOfFile: runDir + "/config.toml", encoding: .utf8)
        #expect(stored.contains("\(t.prefix)/share/decoupled/datasets/fashion-mnist-small.h5"), "\(stored)")

        // The study's base config and data come from the installation. A real `study --quick`
        // trains 98 runs (about 35 s in release, minutes in a debug build), too slow for the
        // suite: --spec-only checks everything it looks up and stops before training.
        let studyDir = t.elsewhere + "/study"
        try run(t.binary, ["study", "--quick", "--spec-only", "--dir", studyDir], in: t.elsewhere)
        let spec = try String(contentsOfFile: studyDir + "/study.toml", encoding: .utf8)
        #expect(spec.contains("\(t.prefix)/share/decoupled/examples/fashion-mlp-adamw.toml"), "\(spec)")
        #expect(spec.contains("\(t.prefix)/share/decoupled/datasets/fashion-mnist-small.h5"), "\(spec)")

        // Uninstall removes what install put there and nothing else.
        let mine = t.prefix + "/lib/decoupled/plugins/libmine.so"
        FileManager.default.createFile(atPath: mine, contents: Data())
        try run(repositoryRoot + "/scripts/install.sh", ["uninstall", t.prefix], in: t.top)
        #expect(!FileManager.default.fileExists(atPath: t.binary))
        #expect(!FileManager.default.fileExists(atPath: t.prefix + "/share/decoupled"))
        #expect(FileManager.default.fileExists(atPath: mine))
    }
}
