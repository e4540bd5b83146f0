import DecoupledSystem
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
        // Through the one process runner: stdin is /dev/null (gnuplot reads commands from stdin
        // after a script only with "-", and can never wait for a terminal), both outputs are
        // drained as they come, so a chatty gnuplot cannot block on a full pipe.
        let r: Subprocess.Result
        do {
            r = try Subprocess.run(executable.path, [script], options: .init(workingDirectory: directory.path, output: .capture))
        } catch {
            throw ReportError.gnuplotFailed(script: directory.appendingPathComponent(script).path,
                                            message: "cannot start \(executable.path): \(JSONFile.reason(error))")
        }
        let text = r.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
        guard r.exit == .exited(0) else {
            throw ReportError.gnuplotFailed(script: directory.appendingPathComponent(script).path,
                                            message: "gnuplot exited with \(r.exit): " + text)
        }
        return text
    }
}
