import DecoupledCore
import Foundation
import Testing

/// The shipped files are found from the binary's path: a checkout for a development build,
/// PREFIX/share/decoupled for an installation, nothing for a binary copied elsewhere.
@Suite struct InstallLayoutTests {
    final class Tree {
        let top = FileManager.default.temporaryDirectory.appendingPathComponent("dc-install-layout-\(UUID().uuidString)").path
        init(_ files: [String]) throws {
            for f in files {
                let path = "\(top)/\(f)"
                try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                _ = FileManager.default.createFile(atPath: path, contents: Data())
            }
        }
        deinit { try? FileManager.default.removeItem(atPath: top) }
    }

    @Test func resourcesOfAnInstallationACheckoutAndABareBinary() throws {
        let t = try Tree(["prefix/bin/decoupled", "prefix/share/decoupled/examples/a.toml",
                          "repo/Package.swift", "repo/plugins/p/build/libp.so", "repo/examples/a.toml",
                          "repo/.build/x86_64-unknown-linux-gnu/debug/decoupled", "loose/decoupled"])
        let installed = InstallLayout(executable: "\(t.top)/prefix/bin/decoupled")
        #expect(installed.repository == nil)
        #expect(installed.resourceRoot == "\(t.top)/prefix/share/decoupled")
        #expect(installed.resource("examples/a.toml") == "\(t.top)/prefix/share/decoupled/examples/a.toml")
        #expect(installed.resource("examples/missing.toml") == nil)
        #expect(installed.pluginDirectories == ["\(t.top)/prefix/lib/decoupled/plugins"])

        let dev = InstallLayout(executable: "\(t.top)/repo/.build/x86_64-unknown-linux-gnu/debug/decoupled")
        #expect(dev.repository == "\(t.top)/repo" && dev.resourceRoot == "\(t.top)/repo")
        #expect(dev.resource("examples/a.toml") == "\(t.top)/repo/examples/a.toml")
        #expect(dev.pluginDirectories.last == "\(t.top)/repo/plugins/p/build")

        // A symbolic link to the installed binary (e.g. from ~/bin) finds the same installation.
        try FileManager.default.createSymbolicLink(atPath: "\(t.top)/link", withDestinationPath: "\(t.top)/prefix/bin/decoupled")
        #expect(InstallLayout(executable: "\(t.top)/link").resourceRoot == installed.resourceRoot)

        let bare = InstallLayout(executable: "\(t.top)/loose/decoupled")
        #expect(bare.resourceRoot == nil && bare.resource("examples/a.toml") == nil)
        #expect(throws: ResourceError.self) { try InstallLayout.require("examples/nowhere.toml", for: "a test", layout: bare) }
        do {
            _ = try InstallLayout.require("examples/missing.toml", for: "the study's base config", layout: installed)
            Issue.record("a missing shipped file must be an error")
        } catch let e as ResourceError {
            #expect(e.description.contains("the study's base config") && e.description.contains("\(t.top)/prefix/share/decoupled/examples/missing.toml"), "\(e)")
        }
    }

    @Test func aUserFileIsTakenAsGivenElseFromTheShippedFiles() throws {
        let t = try Tree(["prefix/bin/decoupled", "prefix/share/decoupled/examples/a.toml"])
        let installed = InstallLayout(executable: "\(t.top)/prefix/bin/decoupled")
        #expect(InstallLayout.userFile("examples/a.toml", layout: installed) == "\(t.top)/prefix/share/decoupled/examples/a.toml")
        #expect(InstallLayout.userFile("examples/b.toml", layout: installed) == "examples/b.toml")
        #expect(InstallLayout.userFile("/abs/examples/a.toml", layout: installed) == "/abs/examples/a.toml")
    }
}
