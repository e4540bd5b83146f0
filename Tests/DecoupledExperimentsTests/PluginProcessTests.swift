import Foundation
import Testing
@testable import DecoupledExperiments

/// External plugins that misbehave, as real processes: a segfault on the worker threads, a
/// library in the working directory, a malformed library, a plugin calling exit(0), a plugin
/// that never returns. Every one must end with a clear status, never a hang.
@Suite(.serialized) struct PluginProcessTests {
    /// A regularizer whose hyper-parameter `mode` picks how it misbehaves in `apply`.
    static let misbehavingSource = """
        #include <decoupled_plugin.h>
        #include <stdlib.h>
        #include <unistd.h>
        static int64_t apply(const dc_plugin_step *s, float *w, const float *g, float *const *st, size_t n) {
            switch ((int)s->hparams[0]) {
            case 1: *(volatile int *)0 = 1; break; /* a segfault, on every worker thread */
            case 2: exit(0);
            case 3: for (;;) sleep(1);
            }
            return 0;
        }
        static const dc_plugin_hparam hp[] = {{"mode", 0, 0, 3, "0 fine, 1 segfault, 2 exit(0), 3 never return"}};
        static const dc_plugin plugins[] = {{ sizeof(dc_plugin), DC_PLUGIN_REGULARIZER, "misbehave", "0.1", "test", NULL, 1, 0, hp, NULL, apply }};
        static const dc_plugin_library lib = { DC_PLUGIN_ABI_VERSION, sizeof(dc_plugin_library), 1, 0, plugins };
        const dc_plugin_library *decoupled_plugin_library(void) { return &lib; }
        """

    /// `hparam_count = 1` with `hparams = NULL`; its constructor leaves the file MARKER.
    static func malformedSource(marker: String) -> String {
        """
        #include <decoupled_plugin.h>
        #include <stdio.h>
        __attribute__((constructor)) static void loaded(void) { fclose(fopen("\(marker)", "w")); }
        static int64_t apply(const dc_plugin_step *s, float *w, const float *g, float *const *st, size_t n) { return 0; }
        static const dc_plugin plugins[] = {{ sizeof(dc_plugin), DC_PLUGIN_REGULARIZER, "malformed", "0.1", "test", NULL, 1, 0, NULL, NULL, apply }};
        static const dc_plugin_library lib = { DC_PLUGIN_ABI_VERSION, sizeof(dc_plugin_library), 1, 0, plugins };
        const dc_plugin_library *decoupled_plugin_library(void) { return &lib; }
        """
    }

    /// Compiles C source into `dir/lib<name>.so` against the plugin ABI header.
    func compile(_ name: String, _ source: String, in dir: String) throws -> String {
        let c = "\(dir)/\(name).c", so = "\(dir)/lib\(name).so"
        try source.write(toFile: c, atomically: true, encoding: .utf8)
        let cc = Process()
        cc.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        cc.arguments = ["cc", "-shared", "-fPIC", "-I", "\(sweepRepositoryRoot)/Sources/CDecoupledPluginABI/include", "-o", so, c]
        try cc.run()
        cc.waitUntilExit()
        try #require(cc.terminationStatus == 0, "cc failed on \(c)")
        return so
    }

    /// A one-epoch config on the shipped subset, with `regularizers` as given.
    func writeConfig(_ path: String, hidden: Int = 8, regularizers: String) throws {
        try """
        name = "plugin-process"
        seed = 0
        \(regularizers)
        [data]
        file = "\(sweepRepositoryRoot)/datasets/fashion-mnist-small.h5"
        batch_size = 500
        [model]
        kind = "mlp"
        hidden = [\(hidden)]
        [optimizer]
        name = "sgd"
        lr = 1e-2
        [train]
        epochs = 1
        """.write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// Waits for `p`; false when it still ran after `seconds`, and it is then SIGKILLed but not
    /// waited for: Foundation reaps a child only once every holder of its status socket is
    /// gone, and the Swift runtime's backtracer (a grandchild) can outlive it.
    func endedOrKilled(_ p: Process, seconds: Double) -> Bool {
        if waitForExit(p, seconds: seconds) { return true }
        kill(p.processIdentifier, SIGKILL)
        return false
    }

    func environment(_ extra: [String: String]) -> [String: String] {
        ProcessInfo.processInfo.environment.merging(extra) { $1 }.filter { $0.key != "SWIFT_BACKTRACE" }
    }

    /// The Swift runtime's crash handler hung a 2-thread trainer whose plugin segfaulted (a
    /// race: about one run in three here, hence three runs); ours ends it at once with the signal.
    @Test func aSegfaultingPluginEndsTheTrainerWithItsSignal() throws {
        let scratch = SweepScratch()
        let lib = try compile("misbehave", Self.misbehavingSource, in: scratch.path)
        // hidden 256: enough parameters for both worker threads to run the plugin at once.
        try writeConfig(scratch.file("crash.toml"), hidden: 256, regularizers: "[[regularizers]]\nname = \"misbehave\"\nmode = 1")
        for attempt in 1...3 {
            let p = try startSweepDecoupled(["train", scratch.file("crash.toml"), "--run-dir", scratch.file("run\(attempt)"), "--threads", "2", "--quiet"],
                                            in: scratch.path, tag: "crash\(attempt)", environment: environment(["DECOUPLED_PLUGIN_PATH": lib]))
            let err = { scratch.text("crash\(attempt).err") }
            try #require(endedOrKilled(p, seconds: 60), "run \(attempt): the trainer hung after the segfault: \(err())")
            #expect(p.terminationReason == .uncaughtSignal && p.terminationStatus == SIGSEGV, "run \(attempt): \(p.terminationReason) \(p.terminationStatus)")
            #expect(err().contains("decoupled: fatal signal SIGSEGV (11)"), "run \(attempt): \(err())")
        }
    }

    /// Libraries under the working directory are never loaded; a malformed or missing library
    /// on DECOUPLED_PLUGIN_PATH is listed as refused and stops only a config that names it; a
    /// training that names no external plugin loads none.
    @Test func onlyChosenLibrariesLoadAndOnlyWhenNeeded() throws {
        let scratch = SweepScratch()
        let untrusted = scratch.file("untrusted")
        try FileManager.default.createDirectory(atPath: untrusted + "/plugins/evil/build", withIntermediateDirectories: true)
        let evilMarker = scratch.file("evil-ran"), malformedMarker = scratch.file("malformed-ran")
        _ = try compile("evil", Self.malformedSource(marker: evilMarker).replacingOccurrences(of: "\"malformed\"", with: "\"evil\""),
                        in: untrusted + "/plugins/evil/build")
        let malformed = try compile("malformed", Self.malformedSource(marker: malformedMarker), in: scratch.path)
        let env = environment(["DECOUPLED_PLUGIN_PATH": "\(malformed):\(scratch.file("no-such-dir"))"])

        // Every command runs in the untrusted directory.
        func decoupled(_ args: [String], _ tag: String) throws -> Process {
            let p = try startSweepDecoupled(args, in: scratch.path, tag: tag, environment: env, workingDirectory: untrusted)
            try #require(endedOrKilled(p, seconds: 120), "decoupled \(args.joined(separator: " ")) did not end")
            return p
        }

        // `plugins list` loads what it is offered (that is its job), never the working directory's.
        let list = try decoupled(["plugins", "list"], "list")
        #expect(list.terminationStatus == 0, "\(scratch.text("list.err"))")
        let listing = scratch.text("list.out")
        #expect(listing.contains("refused \(malformed)") && listing.contains("plugin 'malformed': hparams is NULL but hparam_count is 1"), "\(listing)")
        #expect(listing.contains("refused \(scratch.file("no-such-dir"))") && listing.contains("regularizer l2"), "\(listing)")
        #expect(!listing.contains("evil") && !FileManager.default.fileExists(atPath: evilMarker))
        try? FileManager.default.removeItem(atPath: malformedMarker)

        // A training with built-in plugins only: it runs, and no library is even opened.
        try writeConfig(scratch.file("plain.toml"), regularizers: "[[regularizers]]\nname = \"l2\"\nlambda = 1e-4")
        let plain = try decoupled(["train", scratch.file("plain.toml"), "--run-dir", scratch.file("plain-run"), "--quiet"], "plain")
        #expect(plain.terminationStatus == 0, "\(scratch.text("plain.err"))")
        #expect(!FileManager.default.fileExists(atPath: malformedMarker) && !FileManager.default.fileExists(atPath: evilMarker))

        // A config naming the malformed plugin: an error naming the library and the field.
        try writeConfig(scratch.file("bad.toml"), regularizers: "[[regularizers]]\nname = \"malformed\"")
        let bad = try decoupled(["train", scratch.file("bad.toml"), "--run-dir", scratch.file("bad-run"), "--quiet"], "bad")
        #expect(bad.terminationReason == .exit && bad.terminationStatus == 1)
        let err = scratch.text("bad.err")
        #expect(err.contains(malformed) && err.contains("declares regularizer 'malformed' but was refused") && err.contains("hparams is NULL"), "\(err)")
    }

    /// Runs a sweep of the misbehaving plugin, one run per mode, 2 threads per trainer; its
    /// exit status, output and the runs by mode.
    func misbehavingSweep(modes: [Int], specKeys: String = "") throws -> (status: Int32, output: String, runs: [Int: SweepStatus.Run], render: String) {
        let scratch = SweepScratch()
        let lib = try compile("misbehave", Self.misbehavingSource, in: scratch.path)
        try writeConfig(scratch.file("base.toml"), regularizers: "[[regularizers]]\nname = \"misbehave\"")
        try """
        name = "misbehave"
        base = "base.toml"
        \(specKeys)
        [[methods]]
        label = "misbehave"
        decay_key = "regularizers[0].mode"
        decay = [\(modes.map(String.init).joined(separator: ", "))]
        """.write(toFile: scratch.file("spec.toml"), atomically: true, encoding: .utf8)
        let dir = scratch.file("sweep")
        let runner = try startSweepDecoupled(["sweep", "run", scratch.file("spec.toml"), "--dir", dir, "--jobs", "\(modes.count)", "--threads-per-run", "2"],
                                             in: scratch.path, tag: "sweep", environment: environment(["DECOUPLED_PLUGIN_PATH": lib]))
        try #require(endedOrKilled(runner, seconds: 240), "the runner did not end: \(scratch.text("sweep.out"))")
        let output = scratch.text("sweep.out") + scratch.text("sweep.err")
        let status = try SweepStatus.load(sweepDirectory: dir)
        return (runner.terminationStatus, output, Dictionary(uniqueKeysWithValues: status.runs.map { (Int($0.run.decay), $0) }), status.render())
    }

    /// A sweep whose trainers segfault and exit(0) in the middle of training: both runs end
    /// `failed` with the reason, the healthy one completes.
    @Test func crashesAndEarlyExitsEndAsFailedRuns() throws {
        let sweep = try misbehavingSweep(modes: [0, 1, 2])
        #expect(sweep.status == 3, "\(sweep.output)")
        #expect(sweep.runs[0]?.state == .completed, "\(sweep.render)")
        #expect(sweep.runs[1]?.state == .failed && sweep.runs[1]?.reason?.hasPrefix("signal 11 (SIGSEGV)") == true,
                "\(String(describing: sweep.runs[1]?.reason))")
        #expect(sweep.runs[2]?.state == .failed
                && sweep.runs[2]?.reason?.hasPrefix("exit status 0: the trainer exited with status 0 before the end of training") == true,
                "\(String(describing: sweep.runs[2]?.reason))")
        // Nothing but the healthy run is reported as completed (it ends with its test accuracy).
        #expect(!sweep.output.contains(": completed, ") && sweep.output.contains("1 of 3 completed, 2 failed or diverged"), "\(sweep.output)")
        #expect(sweep.render.contains("3 runs: 1 done, 0 running, 0 pending, 2 failed"), "\(sweep.render)")
    }

    /// A trainer stuck in a plugin (deaf to SIGTERM): the watchdog stops it and the run fails.
    @Test func theWatchdogStopsAStalledTrainer() throws {
        let sweep = try misbehavingSweep(modes: [3], specKeys: "stall_timeout = 5\nstall_grace = 1")
        #expect(sweep.status == 3, "\(sweep.output)")
        #expect(sweep.runs[3]?.state == .failed
                && sweep.runs[3]?.reason?.contains("(stall_timeout): stopped with SIGTERM, then SIGKILL") == true,
                "\(String(describing: sweep.runs[3]?.reason))")
        #expect(sweep.output.contains("(stall_timeout): SIGTERM") && sweep.output.contains("after SIGTERM: SIGKILL"), "\(sweep.output)")
    }

    /// The Slurm task script reports exit status 0 as `completed`; without a completed
    /// summary.json the event is recorded as `failed`, with a failure summary.
    @Test func aCompletedEventWithoutACompletedSummaryIsRecordedAsFailed() throws {
        let scratch = SweepScratch()
        let run = "0123456789ab"
        try FileManager.default.createDirectory(atPath: scratch.file("runs/\(run)"), withIntermediateDirectories: true)
        let e = try SlurmEvent.record(sweepDirectory: scratch.path, event: "completed", run: run, exitCode: 0, signal: nil,
                                      message: nil, startedAt: nil, environment: [:])
        #expect(e.event == "failed" && e.status == "failed", "\(e)")
        #expect(e.reason?.contains("exited with status 0 before the end of training (no summary.json)") == true, "\(String(describing: e.reason))")
        #expect(summaryStatus(scratch.file("runs/\(run)")) == "failed")
    }
}
