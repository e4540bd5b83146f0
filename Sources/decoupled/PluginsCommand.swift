import ArgumentParser
import DecoupledCore
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
            External plugins are shared libraries found in plugins/*/build/ (under the current
            directory) and in $DECOUPLED_PLUGIN_PATH (colon-separated directories or files).

            Examples:
              decoupled plugins list
              DECOUPLED_PLUGIN_PATH=~/my-plugins decoupled plugins list
            """)

        func run() throws {
            let registry = try loadRegistry()
            print(registry.listing())
        }
    }
}

/// The built-ins plus every external plugin found; a refused library stops with its reason.
func loadRegistry() throws -> PluginRegistry {
    let registry = PluginRegistry.builtIn()
    try ExternalPluginLoader.loadAll(into: registry, root: URL(fileURLWithPath: FileManager.default.currentDirectoryPath),
                                     environment: ProcessInfo.processInfo.environment)
    return registry
}
