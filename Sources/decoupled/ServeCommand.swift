import ArgumentParser
import DecoupledServe
import Dispatch
import Foundation

/// `decoupled serve DIR`: a live dashboard of a sweep or run directory in the browser.
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "A live dashboard of a sweep or run directory in the browser: runs, learning curves, heatmaps, verdict.",
        discussion: """
        Serves one page on this machine that follows a sweep (a directory with manifest.json) or a single run directory while it runs. The page lists every run with its status (as `decoupled sweep status` reports it), draws the learning curves (test and validation error, training loss against epoch) as metrics arrive, fills in one heatmap per method as runs complete (the same cells and selection as `decoupled report`), and shows the study's verdict once verdict.json exists. It updates itself every 2 seconds.

        The server only reads the directory; everything the page needs is built into this binary, so it works without an internet connection. It listens on 127.0.0.1 (this machine only) unless --host says otherwise. Ctrl-C stops it.

        Examples:
          decoupled serve sweeps/study
          decoupled serve runs/fashion-mlp-adamw-20261121-101500 --port 8090
          decoupled serve sweeps/study --port 0
        """)

    @Argument(help: "A sweep directory (holds manifest.json) or a run directory.")
    var directory: String

    @Option(help: "The port to listen on; 0 picks a free one and prints it.")
    var port: Int = 8080

    @Option(help: "The address to listen on; 127.0.0.1 serves this machine only.")
    var host: String = "127.0.0.1"

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0...65535, got \(port)") }
        guard !host.isEmpty else { throw ValidationError("--host must not be empty") }
    }

    func run() throws {
        guard #available(macOS 14, *) else { throw ValidationError("decoupled serve needs macOS 14 or later") }
        let source = try DashboardSource.open(directory)
        let server = DashboardServer(source: source, host: host, port: port)
        // ArgumentParser runs this synchronously; the server is async, so it runs in a task
        // while this thread waits (the signals that stop it are handled by the server).
        let finished = DispatchSemaphore(value: 0)
        let outcome = ServeOutcome()
        let what = source.kind == .sweep ? "sweep \(source.name)" : "run directory \(source.name)"
        Task {
            do {
                try await server.run { url in
                    print("serving \(what) at \(url) (Ctrl-C stops)")
                    fflush(stdout)
                }
            } catch {
                outcome.error = error
            }
            finished.signal()
        }
        finished.wait()
        if let error = outcome.error { throw error }
    }
}

/// How the server task ended, handed to the waiting thread.
private final class ServeOutcome: @unchecked Sendable {
    // Written by the task before it signals the semaphore, read after the wait.
    var error: Error?
}
