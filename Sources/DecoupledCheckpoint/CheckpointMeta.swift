import Foundation

/// Everything in a checkpoint besides the tensors.
public struct CheckpointMeta: Codable, Equatable, Sendable {
    /// Optimizer updates done (root attribute `step`; also in the file name).
    public var step: Int
    /// Whole epochs done (root attribute `epoch`).
    public var epoch: Int
    /// The resolved config text the run was started with (`/meta/config`, UTF-8).
    public var config: String
    /// Plugin name → version of every plugin the run uses (`/meta/plugins`, a JSON object).
    public var plugins: [String: String]
    /// The trainer's own state — RNG states, data loader position, schedule, best metric,
    /// counters — as JSON. The store does not interpret it; it stores and checksums the bytes
    /// (`/meta/run_state`) and hands them back unchanged.
    public var runState: Data

    /// Metadata for a save; `load` returns what was saved, unchanged.
    public init(step: Int, epoch: Int, config: String, plugins: [String: String], runState: Data) {
        self.step = step
        self.epoch = epoch
        self.config = config
        self.plugins = plugins
        self.runState = runState
    }

    /// The bytes of `/meta/plugins`: JSON with sorted keys, so equal metadata gives equal files.
    func pluginsJSON() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array(try encoder.encode(plugins))
    }
}
