import ArgumentParser
import DecoupledCore

/// `decoupled convert`: a setting from one framework's convention in another's
/// (docs/convert.md). The conversion and its text live in `DecoupledCore.Conversion`; this
/// only reads the options. Values are read as text and checked by `ConversionRequest`, so
/// every bad value gets the same message the tests and docs/convert.md show; `.unconditional`
/// lets `--lr -0.01` reach that check instead of reading "-0.01" as an option.
struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Rewrite a learning-rate/weight-decay setting from one framework's convention in another's.",
        discussion: """
        Prints the target setting in the target framework's words and as config TOML, with one \
        line of why, or says that no setting there makes the same updates (exit status 3). What \
        each knob means in each convention: docs/config.md ("What convention means"). Bad input \
        exits with status 64. See docs/convert.md for every rule and more examples.

        Examples:
          decoupled convert --from caffe --to keras --optimizer sgd --lr 0.01 \\
              --weight-decay 0.0005 --momentum 0.9
          decoupled convert --from pytorch --to paper --optimizer adamw --lr 0.001 \\
              --weight-decay 0.01
          decoupled convert --from pytorch --to pytorch --optimizer adam --lr 0.001 \\
              --weight-decay 0.0001 --to-optimizer adamw
          decoupled convert --from paper --to pytorch --optimizer adamw --lr 0.001 \\
              --weight-decay 0.05 --normalized --batch-size 128 --train-size 50000 \\
              --epochs 100
        """)

    @Option(name: .customLong(ConversionOption.from.rawValue), parsing: .unconditional, help: Self.help(.from)) var from: String?
    @Option(name: .customLong(ConversionOption.to.rawValue), parsing: .unconditional, help: Self.help(.to)) var to: String?
    @Option(name: .customLong(ConversionOption.optimizer.rawValue), parsing: .unconditional, help: Self.help(.optimizer)) var optimizer: String?
    @Option(name: .customLong(ConversionOption.toOptimizer.rawValue), parsing: .unconditional, help: Self.help(.toOptimizer)) var toOptimizer: String?
    @Option(name: .customLong(ConversionOption.lr.rawValue), parsing: .unconditional, help: Self.help(.lr)) var lr: String?
    @Option(name: .customLong(ConversionOption.weightDecay.rawValue), parsing: .unconditional, help: Self.help(.weightDecay)) var weightDecay: String?
    @Option(name: .customLong(ConversionOption.l2.rawValue), parsing: .unconditional, help: Self.help(.l2)) var l2: String?
    @Flag(name: .customLong(ConversionOption.normalized.rawValue), help: Self.help(.normalized)) var normalized = false
    @Option(name: .customLong(ConversionOption.momentum.rawValue), parsing: .unconditional, help: Self.help(.momentum)) var momentum: String?
    @Option(name: .customLong(ConversionOption.dampening.rawValue), parsing: .unconditional, help: Self.help(.dampening)) var dampening: String?
    @Flag(name: .customLong(ConversionOption.nesterov.rawValue), help: Self.help(.nesterov)) var nesterov = false
    @Option(name: .customLong(ConversionOption.beta1.rawValue), parsing: .unconditional, help: Self.help(.beta1)) var beta1: String?
    @Option(name: .customLong(ConversionOption.beta2.rawValue), parsing: .unconditional, help: Self.help(.beta2)) var beta2: String?
    @Option(name: .customLong(ConversionOption.eps.rawValue), parsing: .unconditional, help: Self.help(.eps)) var eps: String?
    @Flag(name: .customLong(ConversionOption.amsgrad.rawValue), help: Self.help(.amsgrad)) var amsgrad = false
    @Option(name: .customLong(ConversionOption.batchSize.rawValue), parsing: .unconditional, help: Self.help(.batchSize)) var batchSize: String?
    @Option(name: .customLong(ConversionOption.trainSize.rawValue), parsing: .unconditional, help: Self.help(.trainSize)) var trainSize: String?
    @Option(name: .customLong(ConversionOption.epochs.rawValue), parsing: .unconditional, help: Self.help(.epochs)) var epochs: String?
    @Option(name: .customLong(ConversionOption.scheduleMultiplier.rawValue), parsing: .unconditional, help: Self.help(.scheduleMultiplier))
    var scheduleMultiplier: String?

    static func help(_ o: ConversionOption) -> ArgumentHelp {
        ArgumentHelp(o.help, valueName: o.isSwitch ? nil : o.valueName)
    }

    /// The typed options, keyed as `ConversionRequest` reads them.
    func request() throws -> ConversionRequest {
        let given: [(ConversionOption, String?)] = [
            (.from, from), (.to, to), (.optimizer, optimizer), (.toOptimizer, toOptimizer), (.lr, lr),
            (.weightDecay, weightDecay), (.l2, l2), (.momentum, momentum), (.dampening, dampening),
            (.beta1, beta1), (.beta2, beta2), (.eps, eps), (.batchSize, batchSize), (.trainSize, trainSize),
            (.epochs, epochs), (.scheduleMultiplier, scheduleMultiplier),
        ]
        var values: [ConversionOption: String] = [:]
        for case let (o, v?) in given { values[o] = v }
        let switches = Set([(ConversionOption.normalized, normalized), (.nesterov, nesterov), (.amsgrad, amsgrad)]
            .filter(\.1).map(\.0))
        do {
            return try ConversionRequest(values: values, switches: switches)
        } catch let e as ConversionError {
            throw ValidationError(e.description)
        }
    }

    func validate() throws { _ = try request() }

    func run() throws {
        let conversion = Conversion(try request())
        print(conversion.text)
        if conversion.verdict == .none { throw ExitCode(3) }
    }
}
