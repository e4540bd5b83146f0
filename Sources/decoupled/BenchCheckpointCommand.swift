import ArgumentParser
import DecoupledCheckpoint
import Foundation

/// `decoupled bench checkpoint`; the measurement is `CheckpointBenchmark` in DecoupledCheckpoint.
struct BenchCheckpointCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint",
        abstract: "Checkpoint save and load throughput vs a dd-style sequential write to the same disk.",
        discussion: """
        Each round writes as many bytes as one checkpoint with write(2) of a 16 MiB block and \
        fdatasync (what `dd if=/dev/zero of=X bs=16M conv=fdatasync` measures), then saves a \
        checkpoint of a synthetic arena (write, fsync, rename, directory fsync), drops it from the \
        page cache (posix_fadvise DONTNEED, checked with mincore) and loads it back (verify every \
        checksum from disk, then copy into the arena), checking the result is bit-exact. Prints \
        GB/s and each figure's ratio to dd's, per round and as medians. Build in release mode for \
        meaningful figures.

        Every file is deleted right after its measurement and the order of dd and save alternates, \
        so both write into blocks the other just freed: on thin-provisioned virtual disks a first \
        write to never-used blocks can be several times slower, which would otherwise decide the \
        comparison.

        Examples:
          decoupled bench checkpoint --params 5e7 --dir /scratch
          decoupled bench checkpoint --params 1e7 --slots exp_avg --repeats 5 --json
        """)

    @Option(help: "Parameters (scientific notation allowed); the checkpoint holds them plus one copy per state slot.")
    var params: String = "5e7"

    @Option(help: "Directory on the disk to measure (a subdirectory is created and removed).")
    var dir: String = NSTemporaryDirectory()

    @Option(help: "State slots saved with the parameters, comma-separated (Adam: exp_avg,exp_avg_sq; empty for none).")
    var slots: String = "exp_avg,exp_avg_sq"

    @Option(help: "Rounds of dd, save and load.")
    var repeats: Int = 3

    @Flag(help: "Print the report as JSON instead of a summary.")
    var json = false

    func run() throws {
        guard let n = Double(params), n >= 1, n <= 1e10 else { throw ValidationError("--params: expected a count like 5e7, got '\(params)'") }
        guard repeats >= 1 else { throw ValidationError("--repeats must be ≥ 1, got \(repeats)") }
        var o = CheckpointBenchmark.Options()
        o.parameters = Int(n)
        o.slots = slots.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        o.directory = dir
        o.repeats = repeats
        let report = try CheckpointBenchmark.run(o) { line in if !json { print(line) } }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
            return
        }
        print(String(format: "median: dd %.2f GB/s | save %.2f GB/s = %.0f%% of dd | load %.2f GB/s = %.0f%% of dd",
                     report.medianDdGBps, report.medianSaveGBps, report.medianSaveRatio * 100,
                     report.medianLoadGBps, report.medianLoadRatio * 100))
    }
}
