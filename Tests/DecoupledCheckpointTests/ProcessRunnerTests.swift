import Foundation
import Testing
@testable import DecoupledCheckpoint
@testable import DecoupledSystem

/// The one process runner: output capture, time limit, logging to a file, working directory.
@Suite struct ProcessRunnerTests {
    @Test func capturesBothOutputsAndTheExit() throws {
        let r = try Subprocess.run("/bin/sh", ["-c", "echo out; echo err >&2; exit 3"])
        #expect(r.exit == .exited(3) && r.status == 3)
        #expect(r.stdout == "out\n" && r.stderr == "err\n", "\(r)")
        // More than a pipe holds, on both outputs at once: drained as it comes, no deadlock.
        let big = try Subprocess.run("/bin/sh", ["-c", "head -c 300000 /dev/zero; head -c 200000 /dev/zero >&2"])
        #expect(big.stdout.utf8.count == 300_000 && big.stderr.utf8.count == 200_000)
        let killed = try Subprocess.run("/bin/sh", ["-c", "kill -9 $$"])
        #expect(killed.exit == .signaled(SIGKILL) && killed.status == 137)
    }

    @Test func aTimeLimitKillsTheChildAndSaysSo() throws {
        let t0 = Date()
        do {
            _ = try Subprocess.run("/bin/sleep", ["30"], options: .init(timeout: 0.3))
            Issue.record("sleep 30 finished within 0.3 s")
        } catch let e as SubprocessError {
            #expect(e == .timedOut(command: "/bin/sleep 30", seconds: 0.3))
            #expect(e.description.contains("/bin/sleep 30 did not finish within 0.3 s"), "\(e)")
        }
        #expect(Date().timeIntervalSince(t0) < 5)
    }

    @Test func aGrandchildHoldingTheOutputDoesNotHoldTheCaller() throws {
        let t0 = Date()
        let r = try Subprocess.run("/bin/sh", ["-c", "sleep 5 & echo started"])
        #expect(r.exit == .exited(0) && r.stdout == "started\n")
        #expect(Date().timeIntervalSince(t0) < 4)
    }

    @Test func environmentWorkingDirectoryAndLogFile() throws {
        let dir = TempDir()
        let r = try Subprocess.run("/bin/sh", ["-c", "pwd; echo $ONLY"], options: .init(environment: ["ONLY": "this"], workingDirectory: dir.path))
        #expect(r.stdout == "\(FS.canonical(dir.path)!)\nthis\n", "\(r)")

        let log = dir.file("child.log")
        try "before\n".write(toFile: log, atomically: false, encoding: .utf8)
        let child = try Subprocess.spawn("/bin/sh", ["-c", "echo out; echo err >&2"], options: .init(output: .appendTo(log), newProcessGroup: true))
        #expect(child.wait() == .exited(0))
        #expect(try String(contentsOfFile: log, encoding: .utf8) == "before\nout\nerr\n")
        #expect(throws: SubprocessError.self) { _ = try Subprocess.run("/nonexistent/program", []) }
    }

    @Test func aLinkedLogFileIsRefusedAndItsTargetKept() throws {
        let dir = TempDir()
        let target = try linked(dir, "train.log")
        do {
            _ = try Subprocess.spawn("/bin/echo", ["hi"], options: .init(output: .appendTo(dir.file("train.log"))))
            Issue.record("logged through a link")
        } catch let e as SubprocessError {
            #expect("\(e)".contains(dir.file("train.log")) && "\(e)".contains("symbolic link"), "\(e)")
        }
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "precious\n")
    }

    @Test func aConversationAsksLineByLineAndSurvivesAChildThatEnded() throws {
        let echo = try SubprocessConversation("/bin/sh", ["-c", "echo ready; while read -r line; do echo \"got $line\"; done; echo bye >&2"])
        #expect(try echo.receiveLine(timeout: 10) == "ready")
        for question in ["one", "two words"] {
            try echo.send(question)
            #expect(try echo.receiveLine(timeout: 10) == "got \(question)")
        }
        #expect(echo.finish(timeout: 10) == .exited(0))
        #expect(echo.standardError == "bye\n")

        // A child that ends: its output ends (nil), and writing to it is an error, not SIGPIPE.
        let quitter = try SubprocessConversation("/bin/sh", ["-c", "echo last words >&2; exit 4"])
        #expect(try quitter.receiveLine(timeout: 10) == nil)
        #expect(quitter.finish(timeout: 10) == .exited(4))
        #expect(quitter.standardError == "last words\n")
        #expect(throws: SubprocessError.self) { try quitter.send("anyone there?") }
        let ended = try SubprocessConversation("/bin/sh", ["-c", "exit 0"])
        #expect(try ended.receiveLine(timeout: 10) == nil)
        _ = ended.process.wait()
        do {
            for _ in 0..<100 { try ended.send(String(repeating: "x", count: 10_000)) }
            Issue.record("wrote 1 MB to a child that had ended")
        } catch let e as SubprocessError {
            #expect("\(e)".contains("stopped reading its input"), "\(e)")
        }
    }

    @Test func aConversationThatGetsNoAnswerKillsTheChildAndSaysSo() throws {
        let t0 = Date()
        let silent = try SubprocessConversation("/bin/sleep", ["30"])
        do {
            _ = try silent.receiveLine(timeout: 0.3)
            Issue.record("sleep answered")
        } catch let e as SubprocessError {
            #expect(e == .timedOut(command: "/bin/sleep 30", seconds: 0.3))
        }
        #expect(silent.finish(timeout: 5) == .signaled(SIGKILL))
        #expect(Date().timeIntervalSince(t0) < 5)
    }
}
