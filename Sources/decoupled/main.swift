import ArgumentParser
import CDecoupledSystem

/// The `decoupled` command line. Each subcommand lives in its own file.
struct Decoupled: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decoupled",
        abstract: "Optimizer and regularizer experiments on the CPU: L2 regularization vs decoupled weight decay.",
        discussion: """
        Examples and datasets ship with the binary: a relative data path in a config is looked up in the working directory, next to the config, then in the installation's share/decoupled (or the checkout, for a development build), so every command works from any directory.

        Examples:
          decoupled study --quick
          decoupled train examples/fashion-mlp-adamw.toml
          decoupled resume runs/fashion-mlp-adamw-20261121-101500
          decoupled replay spec.toml --input grads.h5 --output trajectory.h5
          decoupled plugins list
          decoupled bench kernels --sizes 1e6,1e7
        """,
        version: decoupledVersion,
        subcommands: [TrainCommand.self, ResumeCommand.self, EvalCommand.self, ReportCommand.self, ConvertCommand.self, ReplayCommand.self,
                      DataCommand.self, PluginsCommand.self, ProblemsCommand.self, CheckpointCommand.self, SweepCommand.self, StudyCommand.self,
                      ServeCommand.self, BenchCommand.self, TensorBoardCommand.self, InitialStateCommand.self])
}

// Before anything else: a crash (a plugin's segfault, on any worker thread) must end the
// process with its signal at once; the Swift runtime's own handler can hang instead.
_ = dc_install_fatal_signal_handlers()
Decoupled.mainWrappingUsage()
