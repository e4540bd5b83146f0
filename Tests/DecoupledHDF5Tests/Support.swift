import Foundation
import Testing
@testable import DecoupledHDF5

/// A fresh directory per test, removed afterwards.
final class TempDir {
    let path: String
    init() {
        path = NSTemporaryDirectory() + "decoupled-hdf5-test-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }
}

/// The system Python that has h5py (Debian python3-h5py); the python3 on PATH may be another one.
let systemPython = "/usr/bin/python3"

/// Runs a Python script with the system interpreter; the test fails (not skips) when h5py is
/// missing, because `make test` installs python3-h5py.
func python(_ script: String, _ args: [String] = []) throws -> String {
    let dir = TempDir()
    let scriptPath = dir.file("script.py")
    try script.write(toFile: scriptPath, atomically: true, encoding: .utf8)
    return try runChildProcess(systemPython, [scriptPath] + args)
}

func json(_ text: String) throws -> Any {
    try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
}

/// Repository root, found from this file's location.
let repoRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}()

/// Writes a small dataset file whose features encode the sample index, so loader tests can
/// check which sample each row came from: x[i, j] = (i * 7 + j) % 251 (uint8) or i + j/1000.
@discardableResult
func makeDataset(_ path: String, train: Int, test: Int, features: Int = 6, classes: Int = 5,
                 featureType: H5ScalarType = .uint8, storage: DatasetStorage = DatasetStorage(chunkRows: 16, gzipLevel: 1, shuffle: true),
                 scale: Double = 1.0 / 255.0) throws -> String {
    let w = try DatasetWriter(path: path, featureType: featureType, labelType: .int64, sampleShape: [features],
                              counts: [.train: train, .test: test], storage: storage)
    for (split, n) in [(DatasetSplit.train, train), (.test, test)] {
        var start = 0
        while start < n {
            let rows = min(1000, n - start)
            let labels = (start..<(start + rows)).map { Int32($0 % classes) }
            if featureType == .uint8 {
                var f = [UInt8]()
                for i in start..<(start + rows) { for j in 0..<features { f.append(UInt8((i * 7 + j) % 251)) } }
                try w.append(split, features: f, labels: labels)
            } else {
                var f = [Float]()
                for i in start..<(start + rows) { for j in 0..<features { f.append(Float(i) + Float(j) / 1000) } }
                try w.append(split, features: f, labels: labels)
            }
            start += rows
        }
    }
    try w.finish(numClasses: classes, scale: scale, source: "test", license: "CC0")
    return path
}

/// Expects `body` to throw an error whose description contains every fragment.
func expectError(_ fragments: [String], sourceLocation: SourceLocation = #_sourceLocation,
                 _ body: () throws -> Void) {
    do {
        try body()
        Issue.record("expected an error containing \(fragments), got none", sourceLocation: sourceLocation)
    } catch {
        let text = "\(error)"
        for f in fragments where !text.contains(f) {
            Issue.record("error \"\(text)\" does not contain \"\(f)\"", sourceLocation: sourceLocation)
        }
    }
}
