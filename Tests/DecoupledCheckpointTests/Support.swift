import DecoupledCore
import DecoupledRandom
import Foundation
import Testing
@testable import DecoupledCheckpoint
@testable import DecoupledHDF5

/// A fresh directory per test, removed afterwards.
final class TempDir {
    let path: String
    init() {
        path = NSTemporaryDirectory() + "decoupled-ckpt-test-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }
}

/// Awkward on purpose: a scalar, a rank-3 tensor, sizes that are not multiples of the arena's
/// 16-float alignment, and one larger tensor so corruption tests have a data region to aim at.
let testSpecs: [TensorSpec] = [
    TensorSpec(name: "fc1.weight", shape: [5, 7], role: .weight),
    TensorSpec(name: "fc1.bias", shape: [5], role: .bias),
    TensorSpec(name: "conv.kernel", shape: [3, 2, 4], role: .weight),
    TensorSpec(name: "scale", shape: [], role: .norm),
    TensorSpec(name: "emb.weight", shape: [64, 33], role: .weight),
    TensorSpec(name: "fc2.weight", shape: [3, 5], role: .weight),
    TensorSpec(name: "fc2.bias", shape: [3], role: .bias),
]
let adamSlots = ["exp_avg", "exp_avg_sq"]

/// An arena whose every value is a random 32-bit pattern: NaNs with payloads, infinities,
/// subnormals and negative zeros included, so only a bit-exact round trip compares equal.
func makeArena(seed: UInt64, specs: [TensorSpec] = testSpecs, slots: [String] = adamSlots) throws -> ParameterArena {
    let arena = try ParameterArena(specs: specs)
    var rng = Xoshiro256(seed: seed)
    for buffer in [arena.params] + slots.map({ arena.slot($0) }) {
        for e in arena.entries {
            let v = arena.view(buffer, e)
            for i in 0..<v.count { v[i] = Float(bitPattern: UInt32(truncatingIfNeeded: rng.next())) }
        }
    }
    // A few named specials where a converting reader would slip.
    if let bias = arena.entry(named: "fc1.bias") {
        let p = arena.view(arena.params, bias)
        p[0] = -0.0; p[1] = Float(bitPattern: 0x7fc0_1234); p[2] = .leastNonzeroMagnitude; p[3] = -.infinity
    }
    return arena
}

/// The raw bytes of one tensor in one role buffer.
func tensorBytes(_ arena: ParameterArena, _ buffer: AlignedBuffer, _ name: String) -> [UInt8] {
    Array(UnsafeRawBufferPointer(arena.view(buffer, arena.entry(named: name)!)))
}

/// Everything an arena holds: every role buffer byte for byte (padding included) by slot name.
func snapshot(_ arena: ParameterArena) -> [String: [UInt8]] {
    var out = ["<params>": Array(UnsafeRawBufferPointer(arena.params.buffer))]
    for (name, buffer) in arena.slots { out[name] = Array(UnsafeRawBufferPointer(buffer.buffer)) }
    return out
}

func makeMeta(step: Int, epoch: Int? = nil) -> CheckpointMeta {
    CheckpointMeta(step: step, epoch: epoch ?? step / 10,
                   config: "name = \"fashion-mlp\"\n[optimizer]\nlr = 1e-3  # ü, ✓, 学习率\n",
                   plugins: ["adamw": "1.0.0", "l1-decoupled": "0.3.1"],
                   runState: Data("{\"rng\":[1,2,3,18446744073709551615],\"loader\":{\"epoch\":\(step),\"cursor\":17},\"best\":0.875}".utf8))
}

/// Expects `body` to throw a `CheckpointError`; returns it (nil, with an issue, otherwise).
@discardableResult
func expectCheckpointError(sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) -> CheckpointError? {
    do {
        try body()
        Issue.record("expected a CheckpointError, got none", sourceLocation: sourceLocation)
    } catch let e as CheckpointError {
        return e
    } catch {
        Issue.record("expected a CheckpointError, got \(type(of: error)): \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

// MARK: child processes

/// The system Python that has h5py (Debian python3-h5py); the python3 on PATH may be another one.
let systemPython = "/usr/bin/python3"

/// Runs a Python script with the system interpreter. The tests fail (not skip) without h5py:
/// `make test` installs python3-h5py.
func python(_ script: String, _ args: [String] = []) throws -> ChildResult {
    let dir = TempDir()
    let scriptPath = dir.file("script.py")
    try script.write(toFile: scriptPath, atomically: true, encoding: .utf8)
    return try runChild(systemPython, [scriptPath] + args)
}

/// Repository root, from this file's location (symbolic links resolved).
let repoRoot: String = {
    var url = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}()

/// The `decoupled` executable built beside the test bundle (`swift build --build-tests`
/// builds it too): the directory of the test runner, or its parents for bundle layouts.
func decoupledBinary() throws -> String {
    var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
    for _ in 0..<4 {
        let candidate = dir.appendingPathComponent("decoupled").path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        dir.deleteLastPathComponent()
    }
    throw CheckpointError.invalidArgument("no 'decoupled' executable found near \(CommandLine.arguments[0]); build with `swift build --build-tests`")
}

/// Runs `decoupled checkpoint ARGS…`, failing clearly when the command is not registered.
func decoupledCheckpoint(_ arguments: [String], under prefix: [String] = []) throws -> ChildResult {
    let binary = try decoupledBinary()
    let r: ChildResult
    if prefix.isEmpty {
        r = try runChild(binary, ["checkpoint"] + arguments)
    } else {
        r = try runChild(prefix[0], Array(prefix.dropFirst()) + [binary, "checkpoint"] + arguments)
    }
    if r.stderr.contains("Unexpected argument 'checkpoint'") || r.stderr.contains("Unknown subcommand") {
        Issue.record("the decoupled binary has no `checkpoint` command: register CheckpointCommand in Sources/decoupled/main.swift")
    }
    return r
}

/// Finds where `needle` occurs in `haystack` (exactly once expected); nil when absent.
func offset(of needle: [UInt8], in haystack: [UInt8]) -> Int? {
    guard !needle.isEmpty, needle.count <= haystack.count else { return nil }
    let first = needle[0]
    var i = 0
    let last = haystack.count - needle.count
    while i <= last {
        if haystack[i] == first && Array(haystack[i..<(i + needle.count)]) == needle { return i }
        i += 1
    }
    return nil
}

func readBytes(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) }
func writeBytes(_ bytes: [UInt8], _ path: String) throws { try Data(bytes).write(to: URL(fileURLWithPath: path)) }

/// A symbolic link `dir/name` → `dir/outside-<name>`, a file holding "precious\n" that nothing
/// may write through the link; returns the target.
func linked(_ dir: TempDir, _ name: String) throws -> String {
    let target = dir.file("outside-\(name)")
    try "precious\n".write(toFile: target, atomically: false, encoding: .utf8)
    try FileManager.default.createSymbolicLink(atPath: dir.file(name), withDestinationPath: target)
    return target
}
