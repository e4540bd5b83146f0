import DecoupledCore
import Foundation

/// Decides what `train`, `train --resume` and `resume` do with a run directory, so that no
/// saved run is ever overwritten by accident:
///
/// - a new run needs an empty (or new) directory;
/// - resuming continues from the newest valid checkpoint, or starts from step 0 when the
///   directory has none yet (what a sweep runner wants: "make this run exist");
/// - resuming with a config that differs from the stored `config.toml` is refused unless
///   allowed, and the differences are listed either way.
public enum RunLauncher {
    public struct Request {
        /// The config file; nil resumes from the run directory's own `config.toml`.
        public var configPath: String?
        public var overrides: [ConfigOverride] = []
        /// nil: `runs/<name>-<yyyyMMdd-HHmmss>`.
        public var runDirectory: String?
        public var resume = false
        public var allowConfigChange = false
        /// Overrides `train.threads` (not part of the config: results do not depend on it).
        public var threads: Int?

        public init(configPath: String?, runDirectory: String?) {
            self.configPath = configPath
            self.runDirectory = runDirectory
        }
    }

    /// Builds the session and trainer for a request; messages for the user go to `progress`.
    public static func prepare(_ request: Request, registry: PluginRegistry, kernels: KernelPath,
                               progress: ProgressReporter) throws -> Trainer {
        let storedConfig: String? = request.runDirectory.map { ($0 as NSString).appendingPathComponent("config.toml") }
        let config: ExperimentConfig
        if let path = request.configPath {
            config = try ExperimentConfig.load(path: path, overrides: request.overrides)
        } else {
            guard let stored = storedConfig, FileManager.default.fileExists(atPath: stored) else {
                throw TrainingError("\(request.runDirectory ?? "."): not a run directory (no config.toml); start a run with `decoupled train CONFIG`")
            }
            config = try ExperimentConfig.load(path: stored, overrides: request.overrides)
        }
        let dir = request.runDirectory ?? defaultRunDirectory(name: config.name)
        let stored = (dir as NSString).appendingPathComponent("config.toml")
        let hasRun = FileManager.default.fileExists(atPath: stored)
        if hasRun {
            guard request.resume else {
                throw TrainingError("\(dir) already holds a run; continue it with `decoupled resume \(dir)` (or `train --resume`), or choose another --run-dir")
            }
            let differences = try diff(storedPath: stored, config)
            if !differences.isEmpty {
                let list = differences.map { "  \($0)" }.joined(separator: "\n")
                guard request.allowConfigChange else {
                    throw TrainingError("the config differs from the one \(dir) was started with:\n\(list)\nrerun with --allow-config-change to resume with the new one")
                }
                progress.line("resuming with a changed config (--allow-config-change):\n\(list)")
            }
        }
        let session = try TrainingSession(config: config, registry: registry, kernels: kernels, threads: request.threads)
        // Through `warning`, so that quiet sweep runs record it in their train.log too.
        for notice in session.dataset.notices { progress.warning("notice: \(notice)") }
        return try Trainer(session: session, runDirectory: dir, resume: request.resume && hasRun, progress: progress,
                           allowConfigChange: request.allowConfigChange)
    }

    /// `key: old → new` for every leaf that differs between the stored config and `config`.
    public static func diff(storedPath: String, _ config: ExperimentConfig) throws -> [String] {
        let text = try String(contentsOfFile: storedPath, encoding: .utf8)
        return try differences(old: text, oldName: storedPath, new: config.resolvedText)
    }

    /// `key: old → new` for every leaf that differs between two config texts.
    public static func differences(old oldText: String, oldName: String, new newText: String) throws -> [String] {
        let old = try ConfigReader.parse(oldText, file: oldName).document.flattened()
        let new = try ConfigReader.parse(newText, file: "config").document.flattened()
        return Set(old.keys).union(new.keys).sorted().compactMap { k in
            old[k] == new[k] ? nil : "\(k): \(old[k] ?? "(absent)") → \(new[k] ?? "(absent)")"
        }
    }

    static func defaultRunDirectory(name: String) -> String {
        let f = DateFormatter()
        f.dateFormat = "yyyyMMdd-HHmmss"
        f.locale = Locale(identifier: "en_US_POSIX")
        let safe = String(name.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "-" })
        return "runs/\(safe)-\(f.string(from: Date()))"
    }
}
