import Foundation
import Testing

/// `decoupled bench optimizers` as the user runs it, external plugins' optimizers included.
/// No timed assertions.
@Suite struct BenchOptimizersCommandTests {
    static func run(_ scratch: Scratch, _ args: [String], _ tag: String) throws -> (status: Int32, out: String, err: String) {
        try runDecoupled(["bench", "optimizers", "--sizes", "2000", "--workers", "1", "--rounds", "1", "--seconds", "0.005"] + args,
                         in: scratch.path, tag: tag)
    }

    /// lion comes from plugins/lion (built by `make plugins`), found as for training: its one
    /// element state gives a 20-byte probe, beside adam's 28.
    @Test func anExternalOptimizerIsTimedBesideAdamAndItsProbe() throws {
        let scratch = Scratch()
        let r = try Self.run(scratch, ["--optimizers", "lion", "--json"], "lion")
        #expect(r.status == 0, "\(r.err)")
        let results = try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [[String: Any]])
        let bytes = Dictionary(uniqueKeysWithValues: results.map { ($0["optimizer"] as? String ?? "?", $0["bytesPerParameter"] as? Int ?? 0) })
        #expect(bytes == ["adam": 28, "lion": 20], "\(r.out)")
        #expect(results.allSatisfy { ($0["nsPerParameter"] as? Double ?? 0) > 0 }, "\(r.out)")

        let unknown = try Self.run(scratch, ["--optimizers", "adamw,lino"], "unknown")
        #expect(unknown.status != 0 && unknown.err.contains("--optimizers: unknown optimizer 'lino'")
                && unknown.err.contains("lion"), "\(unknown)")
    }
}
