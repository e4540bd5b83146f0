import Foundation
import DecoupledSystem

/// A finished child process: its exit status and everything it wrote.
typealias ChildResult = Subprocess.Result

/// Runs a child process (the h5py helpers, gzip, mount) to completion with our environment
/// and returns its status and output, through the one process runner.
func runChild(_ executable: String, _ arguments: [String]) throws -> ChildResult {
    try Subprocess.run(executable, arguments)
}

/// Runs a child process and returns its stdout; a non-zero exit is an error with its stderr.
@discardableResult
func runChildProcess(_ executable: String, _ arguments: [String]) throws -> String {
    let r = try runChild(executable, arguments)
    guard r.status == 0 else {
        throw DataInputError("\(executable) \(arguments.joined(separator: " ")) failed with \(r.exit): \(r.stderr)")
    }
    return r.stdout
}
