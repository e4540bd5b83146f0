import Foundation

/// A finished child process: its exit status and everything it wrote.
struct ChildResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs a child process to completion and returns its status and output.
func runChild(_ executable: String, _ arguments: [String]) throws -> ChildResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = arguments
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    // Spawn under the HDF5 lock so the child cannot inherit a descriptor between open and CLOEXEC.
    try H5.locked { try p.run() }
    // Drain stderr on another thread while reading stdout, so a chatty child cannot block on a full pipe.
    final class Box: @unchecked Sendable { var data = Data() }
    let errBox = Box()
    let group = DispatchGroup()
    group.enter()
    DispatchQueue.global().async { errBox.data = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
    let data = out.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    p.waitUntilExit()
    return ChildResult(status: p.terminationStatus, stdout: String(decoding: data, as: UTF8.self),
                       stderr: String(decoding: errBox.data, as: UTF8.self))
}

/// Runs a child process and returns its stdout; a non-zero exit is an error with its stderr.
@discardableResult
func runChildProcess(_ executable: String, _ arguments: [String]) throws -> String {
    let r = try runChild(executable, arguments)
    guard r.status == 0 else {
        throw DataInputError("\(executable) \(arguments.joined(separator: " ")) failed with status \(r.status): \(r.stderr)")
    }
    return r.stdout
}
