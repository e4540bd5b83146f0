import DecoupledTraining
import Foundation

/// Runs gnuplot scripts as child processes. The report writes each figure as a data file and
/// a script next to it, so a figure can be restyled by editing the script and running
/// `gnuplot NAME.gp` in the report directory, without Swift.
struct Gnuplot {
    let executable: URL

    /// Finds gnuplot: `path` when it names a file (contains a "/"), else that name (default
    /// "gnuplot") on `$PATH`. Missing gnuplot is an error telling how to install it.
    static func locate(_ path: String?, environment: [String: String]) throws -> Gnuplot {
        let name = path ?? "gnuplot"
        let fm = FileManager.default
        if name.contains("/") {
            guard fm.isExecutableFile(atPath: name) else { throw ReportError.gnuplotMissing(searched: name) }
            return Gnuplot(executable: URL(fileURLWithPath: name))
        }
        let dirs = (environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":").map(String.init)
        for d in dirs where !d.isEmpty {
            let candidate = (d as NSString).appendingPathComponent(name)
            if fm.isExecutableFile(atPath: candidate) { return Gnuplot(executable: URL(fileURLWithPath: candidate)) }
        }
        throw ReportError.gnuplotMissing(searched: "\(name) on PATH")
    }

    /// Runs `script` (a file name in `directory`) with `directory` as the working directory,
    /// so scripts use plain relative names. Returns gnuplot's warnings (stderr), if any.
    func run(script: String, in directory: URL) throws -> String {
        let p = Process()
        p.executableURL = executable
        p.arguments = [script]
        p.currentDirectoryURL = directory
        // gnuplot reads commands from stdin after a script only with "-"; null stdin makes sure
        // it can never wait for a terminal.
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
        let err = Pipe()
        p.standardError = err
        do { try p.run() } catch {
            throw ReportError.gnuplotFailed(script: directory.appendingPathComponent(script).path,
                                            message: "cannot start \(executable.path): \(JSONFile.reason(error))")
        }
        // Read to the end before waiting: a chatty gnuplot could otherwise block on a full pipe.
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        guard p.terminationReason == .exit, p.terminationStatus == 0 else {
            throw ReportError.gnuplotFailed(script: directory.appendingPathComponent(script).path,
                                            message: "gnuplot exited with status \(p.terminationStatus): "
                                                + text.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
