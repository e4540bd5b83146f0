import ArgumentParser
import DecoupledCore
import DecoupledHDF5
import DecoupledSystem
import DecoupledTraining
import Foundation

/// `decoupled initial-state`: the starting point of a run — its initial parameters and the
/// order in which its training loader delivers samples — as .npy files, so another framework
/// can train from exactly the same start (scripts/reference/same_start.py).
struct InitialStateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "initial-state",
        abstract: "Write a run's initial parameters and training sample order as .npy files.",
        discussion: """
        Builds the run the config describes (the same seed, model and loader as `decoupled \
        train`), trains nothing, and writes into OUTPUT:
          <tensor>.npy    every parameter at step 0, float32, under its PyTorch name and \
        layout (0.weight.npy [32, 1, 5, 5], …)
          order.npy       int64 [epochs, samples]: the training-split row of every sample, \
        in the order the loader delivers them; batch b of epoch e is \
        order[e, b·batch_size : (b+1)·batch_size]

        Example:
          decoupled initial-state examples/fmnist-2c2d.toml --set data.file=datasets/fashion-mnist-small.h5 \\
              --set seed=0 --epochs 3 --output /tmp/start-seed0
        """)

    @Argument(help: "The experiment config (TOML).")
    var config: String

    @Option(name: .customLong("set"), help: ArgumentHelp("Override a config key, e.g. --set seed=3 (repeatable).", valueName: "key=value"))
    var overrides: [String] = []

    @Option(help: "Epochs of sample order to write.")
    var epochs: Int = 1

    @Option(name: [.short, .long], help: "The directory to write into (created if missing; existing .npy files of the same names are replaced).")
    var output: String

    func validate() throws {
        guard epochs >= 1 else { throw ValidationError("--epochs must be ≥ 1, got \(epochs)") }
    }

    func run() throws {
        let experiment = try ExperimentConfig.load(path: config, overrides: try overrides.map(ConfigOverride.init))
        let session = try TrainingSession(config: experiment, registry: loadRegistry(),
                                          kernels: try KernelPath.fromEnvironment(ProcessInfo.processInfo.environment))
        try FS.createDirectory(output)
        func write(_ array: NumPyArray) throws {
            let path = (output as NSString).appendingPathComponent(array.name + ".npy")
            try FS.writeAtomically(array.npyData(), to: path, refusingLinks: true)
        }
        let arena = session.arena
        for entry in arena.entries {
            let values = Data(buffer: UnsafeBufferPointer(arena.view(arena.params, entry)))
            try write(NumPyArray(name: entry.spec.name, shape: entry.spec.shape, elementType: .float32, bytes: values))
        }
        // The session's own loader, fresh at epoch 0: exactly the batches training would see.
        let loader = session.trainLoader
        var order: [Int64] = []
        order.reserveCapacity(epochs * loader.sampleCount)
        var batch = Minibatch()
        for _ in 0..<epochs {
            while try loader.next(into: &batch) {
                order += batch.indices.prefix(batch.count).map(Int64.init)
            }
        }
        try write(NumPyArray(name: "order", shape: [epochs, loader.sampleCount], elementType: .int64,
                             bytes: order.withUnsafeBufferPointer { Data(buffer: $0) }))
        print("wrote \(arena.entries.count) parameter tensors and order.npy (\(epochs) × \(loader.sampleCount) samples, "
              + "batch \(experiment.data.batchSize)) to \(output)")
    }
}
