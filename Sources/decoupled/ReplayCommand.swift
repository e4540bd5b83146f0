import ArgumentParser
import DecoupledCore
import DecoupledTraining
import Foundation

struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Apply a spec's optimizer, regularizers, groups and schedule to recorded gradients.",
        discussion: """
        Reads initial parameters (/params/<name>) and gradients (/grads/<name>, shape [steps, \
        ...]) from INPUT, runs them through the same registry, plan and kernels as training, and \
        writes the trajectory (/trajectory/<name>, shape [steps+1, ...]) and the final optimizer \
        state (/state/<slot>/<name>) to OUTPUT. Layout: docs/replay.md. External plugins named in \
        the spec are loaded from the installation's plugin directory (or plugins/*/build of the \
        checkout, for a development build) and $DECOUPLED_PLUGIN_PATH.

        Examples:
          decoupled replay spec.toml --input grads.h5 --output trajectory.h5
          decoupled replay examples/replay-adamw-l1.toml --input g.h5 --output t.h5
          decoupled replay spec.toml --input g.h5 --output t.h5 --audit
        """)

    @Argument(help: "The replay spec (TOML): convention, [optimizer], [[regularizers]], [schedule], [[groups]].")
    var spec: String

    @Option(help: "HDF5 file with /params and /grads.")
    var input: String

    @Option(help: "HDF5 file to write (replaced atomically).")
    var output: String

    @Option(help: "Worker threads (default: active cores).")
    var workers: Int?

    @Flag(help: "Print the decay audit: every tensor's group, lr and regularization.")
    var audit = false

    func run() throws {
        let spec = InstallLayout.userFile(self.spec)
        guard let text = FileManager.default.contents(atPath: spec).map({ String(decoding: $0, as: UTF8.self) }) else {
            throw ValidationError("cannot read spec file '\(spec)'")
        }
        let replay = Replay(registry: loadRegistry(),
                            kernels: try KernelPath.fromEnvironment(ProcessInfo.processInfo.environment),
                            workers: workers)
        let result = try replay.run(specText: text, specFile: spec, input: input, output: output)
        print("replayed \(result.steps) steps of \(result.tensors.count) tensors (\(result.kernel) kernels) → \(output)")
        if audit { print(result.audit) }
    }
}
