import ArgumentParser
import DecoupledCheckpoint
import Foundation

// The checkpoint commands only parse arguments and print; the logic is in DecoupledCheckpoint.

/// `decoupled checkpoint …`
struct CheckpointCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint",
        abstract: "List and verify the HDF5 checkpoints of a run directory.",
        discussion: """
        Checkpoints live in RUN_DIR/checkpoints/ckpt-<step>.h5 (the step zero-padded to 10 \
        digits); the format is described in docs/checkpoint-format.md.

        Examples:
          decoupled checkpoint list runs/fashion-mlp-adamw-20250101-120000
          decoupled checkpoint verify runs/x/checkpoints/ckpt-0000009380.h5
        """,
        subcommands: [CheckpointListCommand.self, CheckpointVerifyCommand.self, CheckpointSynthesizeCommand.self])
}

struct CheckpointListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List a run's checkpoints, newest first, each fully verified.",
        discussion: """
        Prints step, epoch, file size, validity (with the reason when corrupt) and the best \
        marker. Every checksum of every file is verified, so this reads the whole checkpoint \
        directory. Safe beside a running trainer: nothing is locked or removed.

        Examples:
          decoupled checkpoint list runs/fashion-mlp-adamw-20250101-120000
        """)

    @Argument(help: "The run directory (the one holding checkpoints/).")
    var runDirectory: String

    func run() throws {
        let store = try CheckpointStore(runDirectory: runDirectory, readOnly: true)
        let infos = store.list()
        if infos.isEmpty {
            print("no checkpoints in \(store.directory)")
            return
        }
        print("checkpoints in \(store.directory), newest first:")
        func pad(_ s: String, _ n: Int) -> String { s.padding(toLength: max(n, s.count), withPad: " ", startingAt: 0) }
        print("\(pad("step", 12)) \(pad("epoch", 7))        size  status")
        for info in infos {
            let epoch = info.epoch.map(String.init) ?? "?"
            var status = info.isValid ? "valid" : "CORRUPT: \(info.problem!.reason)"
            if info.isBest { status += "  (best)" }
            print("\(pad(String(info.step), 12)) \(pad(epoch, 7)) \(String(format: "%8.1f MB", Double(info.sizeBytes) / 1e6))  \(status)")
        }
    }
}

struct CheckpointVerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Verify one checkpoint file: structure, format_version and every checksum.",
        discussion: """
        Exits with status 0 when the file is valid and 1 when it is corrupt or unreadable, \
        printing every problem found (the dataset or attribute concerned and what was expected).

        Examples:
          decoupled checkpoint verify runs/my-run/checkpoints/ckpt-0000009380.h5
        """)

    @Argument(help: "The checkpoint file.")
    var file: String

    func run() throws {
        do {
            let v = try CheckpointStore.verify(path: file)
            let slots = v.slots.isEmpty ? "none" : v.slots.joined(separator: ", ")
            print("\(file): valid (format_version \(CheckpointFormat.version), step \(v.meta.step), epoch \(v.meta.epoch), "
                  + "\(v.tensors.count) tensors, \(v.parameterCount) parameters, state slots: \(slots), "
                  + String(format: "%.1f MB)", Double(v.sizeBytes) / 1e6))
        } catch let e as CheckpointError {
            FileHandle.standardError.write(Data("\(e)\n".utf8))
            throw ExitCode.failure
        }
    }
}

/// Writes a checkpoint of a synthetic, seeded arena through the store — what a trainer's save
/// does, without a trainer. Hidden: it exists for tests (the disk-full test runs it under a
/// file size limit) and for trying the format out.
struct CheckpointSynthesizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "synthesize",
        abstract: "Write a checkpoint of a synthetic arena into a run directory (for tests).",
        discussion: """
        The arena is CheckpointBenchmark.syntheticArena: four layers of weight and bias filled \
        from --seed.

        Examples:
          decoupled checkpoint synthesize /tmp/run --params 1e5 --step 10 --best
        """,
        shouldDisplay: false)

    @Argument(help: "The run directory (checkpoints go to RUN_DIR/checkpoints).")
    var runDirectory: String

    @Option(help: "Parameters (scientific notation allowed).")
    var params: String = "1e5"

    @Option(help: "The step recorded (and in the file name).")
    var step: Int = 1

    @Option(help: "The epoch recorded.")
    var epoch: Int = 0

    @Option(help: "State slots, comma-separated (empty for none).")
    var slots: String = "exp_avg,exp_avg_sq"

    @Option(help: "Seed of the values.")
    var seed: UInt64 = 1

    @Option(help: "Checkpoints to keep.")
    var keepLast: Int = 3

    @Flag(help: "Mark the checkpoint best.")
    var best = false

    func run() throws {
        guard let n = Double(params), n >= 1, n <= 1e10 else { throw ValidationError("--params: expected a count like 1e5, got '\(params)'") }
        let slotList = slots.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        // The store first: it takes the run lock, so a conflict is reported before any work.
        let store = try CheckpointStore(runDirectory: runDirectory, keepLast: keepLast)
        let arena = try CheckpointBenchmark.syntheticArena(parameters: Int(n), slots: slotList, seed: seed)
        let meta = CheckpointMeta(step: step, epoch: epoch, config: "synthetic checkpoint (decoupled checkpoint synthesize)",
                                  plugins: [:], runState: Data("{\"seed\":\(seed)}".utf8))
        print(try store.save(arena: arena, slots: slotList, meta: meta, isBest: best))
    }
}
