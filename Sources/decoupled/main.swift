import ArgumentParser

/// The `decoupled` command line. Each subcommand lives in its own file.
struct Decoupled: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decoupled",
        abstract: "Optimizer and regularizer experiments on the CPU: L2 regularization vs decoupled weight decay.",
        discussion: """
        Examples:
          decoupled replay spec.toml --input grads.h5 --output trajectory.h5
          decoupled plugins list
          decoupled bench kernels --sizes 1e6,1e7
        """,
        subcommands: [ConvertCommand.self, DataCommand.self, ReplayCommand.self, PluginsCommand.self, BenchCommand.self])
}

Decoupled.main()
