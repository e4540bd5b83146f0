import Foundation

/// Where the files `decoupled` ships beside its binary live, found from the binary's own path
/// (never from the working directory), so every command works from any directory.
///
/// Two layouts are recognised:
/// - a **development build** inside a checkout (`<repo>/.build/.../decoupled`, the test
///   bundles too): resources are the repository itself (`examples/`, `datasets/`,
///   `scripts/`), external plugins are `plugins/*/build/*.so`;
/// - an **installation** (`make install PREFIX=…`): `PREFIX/bin/decoupled`, resources in
///   `PREFIX/share/decoupled`, external plugins in `PREFIX/lib/decoupled/plugins`.
///
/// A binary copied anywhere else has no resource root; commands then look only where the
/// user points them (and say so when a default file is missing).
public struct InstallLayout: Equatable, Sendable {
    /// The plugin directory of an installation, relative to the directory of the binary.
    public static let installedPluginDirectory = "../lib/decoupled/plugins"
    /// The resource directory of an installation, relative to the directory of the binary.
    public static let installedShareDirectory = "../share/decoupled"

    /// The binary, with symbolic links resolved.
    public let executable: String
    /// The checkout a development build lives in.
    public let repository: String?
    /// The directory holding examples/, datasets/ and scripts/: the repository, else the
    /// installation's share directory when it exists.
    public let resourceRoot: String?
    /// Where external plugin libraries are looked for: the installation's plugin directory,
    /// then for a development build each `plugins/<name>/build` of the repository.
    public let pluginDirectories: [String]

    public init(executable: String) {
        let binary = URL(fileURLWithPath: executable).resolvingSymlinksInPath()
        let binDir = binary.deletingLastPathComponent()
        self.executable = binary.path
        repository = Self.repository(containing: binary)
        let share = binDir.appendingPathComponent(Self.installedShareDirectory).standardized.path
        var isDir: ObjCBool = false
        let hasShare = FileManager.default.fileExists(atPath: share, isDirectory: &isDir) && isDir.boolValue
        resourceRoot = repository ?? (hasShare ? share : nil)
        var plugins = [binDir.appendingPathComponent(Self.installedPluginDirectory).standardized.path]
        if let repository { plugins += Self.repositoryPluginDirectories(root: repository) }
        pluginDirectories = plugins
    }

    /// The build directories of a checkout's external plugins: `plugins/<name>/build`.
    public static func repositoryPluginDirectories(root: String) -> [String] {
        let dir = (root as NSString).appendingPathComponent("plugins")
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted().map { "\(dir)/\($0)/build" }
    }

    /// The layout of the running process (nil only when its executable cannot be found).
    public static let current: InstallLayout? = (try? currentExecutable()).map(InstallLayout.init(executable:))

    /// This process's executable, resolved (Linux: /proc/self/exe; else argv[0] against the
    /// working directory or PATH).
    public static func currentExecutable() throws -> String {
        if let p = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return p }
        let arg0 = CommandLine.arguments[0]
        if arg0.contains("/") {
            let cwd = FileManager.default.currentDirectoryPath
            return ((arg0.hasPrefix("/") ? arg0 : (cwd as NSString).appendingPathComponent(arg0)) as NSString).standardizingPath
        }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let p = (String(dir) as NSString).appendingPathComponent(arg0)
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        throw ResourceError("cannot find this program's executable (argv[0] = \(arg0))")
    }

    /// The source tree a development build lives in: the parent of the innermost `.build`
    /// directory above the binary, if it holds Package.swift and plugins/.
    static func repository(containing binary: URL) -> String? {
        var dir = binary.deletingLastPathComponent()
        while dir.path != "/" && !dir.path.isEmpty {
            if dir.lastPathComponent == ".build" {
                let root = dir.deletingLastPathComponent().path
                let fm = FileManager.default
                return fm.fileExists(atPath: root + "/Package.swift") && fm.fileExists(atPath: root + "/plugins") ? root : nil
            }
            dir = dir.deletingLastPathComponent()
        }
        return nil
    }

    /// A shipped file, `relative` to the resource root (e.g. "examples/fashion-mlp-adamw.toml"),
    /// if it exists there.
    public func resource(_ relative: String) -> String? {
        guard let resourceRoot else { return nil }
        let path = (resourceRoot as NSString).appendingPathComponent(relative)
        return FileManager.default.fileExists(atPath: path) ? path : nil
    }

    /// A file the user named (a config, a sweep spec): as given when it exists or is absolute,
    /// else the shipped file of that relative path (`decoupled train examples/x.toml` from any
    /// directory), else as given, so opening it reports the user's path.
    public static func userFile(_ path: String, layout: InstallLayout? = current) -> String {
        if path.hasPrefix("/") || FileManager.default.fileExists(atPath: path) { return path }
        return layout?.resource(path) ?? path
    }

    /// A shipped file the running binary needs by default (a command's default config, data
    /// file or script): in the resource root, else — for a binary with none — relative to the
    /// working directory. Missing, the error names every place looked and `purpose`.
    public static func require(_ relative: String, for purpose: String, layout: InstallLayout? = current) throws -> String {
        if let found = layout?.resource(relative) { return found }
        var looked: [String] = []
        if let root = layout?.resourceRoot {
            looked.append((root as NSString).appendingPathComponent(relative))
        } else {
            let fromCWD = (FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(relative)
            if FileManager.default.fileExists(atPath: fromCWD) { return fromCWD }
            looked.append(fromCWD)
        }
        let why = layout?.resourceRoot != nil ? ""
            : "; \(layout?.executable ?? "this binary") is neither inside a checkout's .build/ nor installed with its share/decoupled (make install PREFIX=…)"
        throw ResourceError("\(purpose): \(relative) not found (looked for \(looked.joined(separator: ", ")))\(why)")
    }
}

/// A shipped file or the executable could not be found; the message says where it was looked for.
public struct ResourceError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
