import DecoupledExperiments
import Foundation
import Testing

/// Slurm options become #SBATCH lines verbatim: each is checked before anything is written.
@Suite struct SlurmOptionsTests {
    @Test func malformedOptionsAreRefusedNamingTheOption() throws {
        var good = SlurmOptions()
        good.time = "1-02:00:00"
        good.partition = "cpu,gpu"
        good.account = "proj_1"
        good.mem = "4G"
        try good.validate()
        for (set, option) in [({ (o: inout SlurmOptions) in o.time = "1:00:00;id" }, "--time"),
                              ({ (o: inout SlurmOptions) in o.time = "2h" }, "--time"),
                              ({ (o: inout SlurmOptions) in o.partition = "cpu$(id)" }, "--partition"),
                              ({ (o: inout SlurmOptions) in o.account = "a/b" }, "--account"),
                              ({ (o: inout SlurmOptions) in o.mem = "4 GB" }, "--mem"),
                              ({ (o: inout SlurmOptions) in o.extraLines = ["--qos=long\r#SBATCH --x"] }, "--sbatch-line")] {
            var o = SlurmOptions()
            set(&o)
            #expect(throws: SweepRunnerError.self) { try o.validate() }
            do { try o.validate() } catch { #expect("\(error)".contains(option), "\(error)") }
        }
    }

    /// The command refuses a bad --time before it plans (writes) the sweep directory.
    @Test func aBadTimeLeavesNoSweepDirectory() throws {
        let scratch = SweepScratch()
        _ = try writeTinyBase(scratch)
        try tinySpecText(name: "slurmopts", lrs: ["1e-2"], seeds: [0]).write(toFile: scratch.file("spec.toml"), atomically: true, encoding: .utf8)
        let p = try startSweepDecoupled(["sweep", "run", scratch.file("spec.toml"), "--dir", scratch.file("sweep"),
                                         "--backend", "slurm", "--time", "1:00:00;id", "--dry-run"], in: scratch.path, tag: "bad")
        #expect(waitForExit(p, seconds: 60))
        #expect(p.terminationStatus != 0)
        #expect(scratch.text("bad.err").contains("--time"), "\(scratch.text("bad.err"))")
        #expect(!FileManager.default.fileExists(atPath: scratch.file("sweep")))
    }
}
