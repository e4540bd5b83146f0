import ArgumentParser
import DecoupledCore
import DecoupledExperiments
import Foundation

struct PluginsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plugins",
        abstract: "Optimizer, regularizer and schedule plugins.",
        subcommands: [List.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List every plugin, built-in or external, with version, kind, hyper-parameters and source.",
            discussion: """
            External plugins are shared libraries found in the installation's plugin directory \
            (<bindir>/../lib/decoupled/plugins, where `make install` puts the shipped ones), in the \
            checkout's plugins/*/build/ when this binary is a development build (.build/ inside the \
            checkout), and in $DECOUPLED_PLUGIN_PATH (colon-separated directories or files), wherever \
            the command runs. Never in the working directory. This command loads every one of them \
            (loading runs a library's code); training loads them only when its config names a plugin \
            no built-in provides. Refused libraries are listed last, with the reason.

            Examples:
              decoupled plugins list
              DECOUPLED_PLUGIN_PATH=~/my-plugins decoupled plugins list
            """)

        func run() throws {
            let registry = loadRegistry(warnings: false)
            registry.loadExternal()
            print(registry.listing())
        }
    }
}

/// The built-ins, with the external libraries offered but not loaded: a command loads them
/// when its config names a plugin no built-in has. A library refused then is a warning on
/// stderr (`warnings`), and an error only for a config naming one of its plugins.
func loadRegistry(warnings: Bool = true) -> PluginRegistry {
    let registry = PluginRegistry.builtIn()
    registry.deferExternal(ExternalPluginLoader.candidates(executable: InstallLayout.current?.executable,
                                                           environment: ProcessInfo.processInfo.environment))
    if warnings {
        registry.onRefusal = { r in
            FileHandle.standardError.write(Data("warning: \(r.error); its plugins are not available\n".utf8))
        }
    }
    return registry
}
