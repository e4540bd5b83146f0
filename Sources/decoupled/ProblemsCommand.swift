import ArgumentParser
import DecoupledTraining

struct ProblemsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "problems",
        abstract: "Named test problems (DeepOBS style): a model on a data set with its batch size and epochs.",
        subcommands: [List.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the test problems a config can choose with `problem = \"NAME\"`.",
            discussion: """
            A config with `problem = "fmnist_2c2d"` gets the problem's model and the defaults of \
            data.file, data.batch_size and train.epochs (its own keys win); it still names the \
            optimizer. docs/problems.md has the networks, their origin and reference accuracies.

            Examples:
              decoupled problems list
              decoupled problems list --layers
              decoupled train examples/fmnist-2c2d.toml
            """)

        @Flag(help: "Also print each problem's layers with their shapes.")
        var layers = false

        func run() throws {
            for p in TestProblem.all {
                print("\(p.name.padding(toLength: 15, withPad: " ", startingAt: 0)) \(p.summary)")
                print("                batch \(p.batchSize), \(p.epochs) epochs, data \(p.dataFile); \(p.origin)")
                guard layers else { continue }
                let config = try ExperimentConfig.parse("problem = \"\(p.name)\"\n[optimizer]\nname = \"sgd\"\nlr = 0.1",
                                                        file: "problem \(p.name)")
                let model = try config.model.makeModel(inputCount: 784, outputCount: 10, maxBatch: 1)
                if let sequential = model as? SequentialModel {
                    for line in sequential.layerSummaries { print("                  \(line)") }
                }
                let count = model.parameterSpecs.reduce(0) { $0 + $1.count }
                print("                  \(count) parameters")
            }
        }
    }
}
