import DecoupledExperiments
import Foundation
import Hummingbird
import Logging
import NIOCore

// `decoupled serve`: one page (HTML, script and style compiled into the binary, nothing from
// the internet) that polls a small JSON API every two seconds:
//
//   GET /api/runs                       every run and its status (as `sweep status`)
//   GET /api/runs/ID/metrics?since=N    the run's metrics records from the N-th on
//   GET /api/heatmaps                   the report's heatmap grids (sweeps)
//   GET /api/verdict                    the study's verdict.json, or null
//
// The server only reads. Requests whose Host is not this machine's loopback name are refused
// while it listens on a loopback address, so a web page elsewhere cannot read the runs through
// a DNS name that it points at 127.0.0.1 (DNS rebinding).

/// The dashboard's HTTP server. (Hummingbird needs macOS 14 on Apple systems; the package
/// itself still builds for macOS 13.)
@available(macOS 14, *)
public struct DashboardServer: Sendable {
    public let source: DashboardSource
    /// The address to listen on (127.0.0.1 by default: only this machine can connect).
    public let host: String
    /// The port; 0 picks a free one, reported to `onListening`.
    public let port: Int

    public init(source: DashboardSource, host: String = "127.0.0.1", port: Int = 8080) {
        self.source = source
        self.host = host
        self.port = port
    }

    /// The address as a URL host: IPv6 literals in brackets.
    static func urlHost(_ host: String) -> String { host.contains(":") ? "[\(host)]" : host }

    /// Serves until SIGINT or SIGTERM. `onListening` gets the page's URL once the port is
    /// bound (with the port the system chose for port 0). A port in use or an address that
    /// cannot be bound is a `DashboardError`.
    public func run(onListening: @escaping @Sendable (String) -> Void) async throws {
        var logger = Logger(label: "decoupled-serve")
        // Requests are not logged, and binding errors are reported by the caller as a
        // DashboardError; the library's own lines would repeat them.
        logger.logLevel = .critical
        let app = Application(
            router: makeRouter(),
            configuration: .init(address: .hostname(host, port: port), serverName: nil, reuseAddress: false),
            onServerRunning: { channel in
                let bound = channel.localAddress?.port ?? port
                onListening("http://\(Self.urlHost(host)):\(bound)/")
            },
            logger: logger)
        do {
            try await app.runService()
        } catch {
            throw Self.listenError(error, host: host, port: port)
        }
    }

    /// A bind failure in words; other errors pass through.
    static func listenError(_ error: Error, host: String, port: Int) -> Error {
        if let io = error as? IOError {
            if io.errnoCode == EADDRINUSE { return DashboardError.portInUse(host: host, port: port) }
            return DashboardError.cannotListen(host: host, port: port, reason: String(cString: strerror(io.errnoCode)))
        }
        if error is SocketAddressError.UnknownHost {
            return DashboardError.cannotListen(host: host, port: port, reason: "no such host name")
        }
        if error is SocketAddressError {
            return DashboardError.cannotListen(host: host, port: port, reason: "not a usable address (\(error))")
        }
        return error
    }

    /// The routes. Every handler answers a `Response` itself (errors as JSON with a message),
    /// so nothing reaches the library's default "500 with an empty body".
    func makeRouter() -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: LoopbackHostMiddleware(listeningHost: host))
        let source = self.source
        router.get("/") { _, _ in DashboardResponse.asset(DashboardAssets.html, type: "text/html; charset=utf-8") }
        router.get("/dashboard.js") { _, _ in DashboardResponse.asset(DashboardAssets.script, type: "text/javascript; charset=utf-8") }
        router.get("/dashboard.css") { _, _ in DashboardResponse.asset(DashboardAssets.style, type: "text/css; charset=utf-8") }
        router.get("/api/runs") { _, _ in
            DashboardResponse.json { try source.runsPayload() }
        }
        router.get("/api/runs/:id/metrics") { request, context in
            let id = context.parameters.get("id") ?? ""
            let sinceText = request.uri.queryParameters.get("since") ?? "0"
            guard let since = Int(sinceText), since >= 0 else {
                return DashboardResponse.error(.badRequest, "since must be a whole number ≥ 0, got '\(sinceText)'")
            }
            return DashboardResponse.json {
                guard let payload = try source.metricsPayload(id: id, since: since) else {
                    throw DashboardResponse.NotFound(message: "no run with id '\(id)' in \(source.directory)")
                }
                return payload
            }
        }
        router.get("/api/heatmaps") { _, _ in DashboardResponse.json { try source.heatmaps() } }
        router.get("/api/verdict") { _, _ in DashboardResponse.json(encoder: StudyVerdict.encoder) { try source.verdict() } }
        return router
    }
}

/// Building responses: JSON never cached (the page polls), assets with a policy that allows
/// only this server's own script, style and requests.
@available(macOS 14, *)
enum DashboardResponse {
    struct NotFound: Error { let message: String }

    static let securityHeaders: HTTPFields = [
        .contentSecurityPolicy: "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        .xContentTypeOptions: "nosniff",
        .cacheControl: "no-store",
    ]

    static func asset(_ text: String, type: String) -> Response {
        var headers = securityHeaders
        headers[.contentType] = type
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    /// The value of `make` as JSON (`null` for nil); a thrown error is a JSON `{"error": ...}`
    /// answer: 404 for an unknown run, 500 for a file that cannot be read, with its message
    /// (the file and key, from the readers).
    static func json<T: Encodable>(encoder: JSONEncoder = DashboardResponse.encoder, _ make: () throws -> T) -> Response {
        do {
            let data = try encoder.encode(make())
            var headers = securityHeaders
            headers[.contentType] = "application/json; charset=utf-8"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
        } catch let e as NotFound {
            return error(.notFound, e.message)
        } catch {
            return self.error(.internalServerError, "\(error)")
        }
    }

    static func error(_ status: HTTPResponse.Status, _ message: String) -> Response {
        var headers = securityHeaders
        headers[.contentType] = "application/json; charset=utf-8"
        let data = (try? encoder.encode(["error": message])) ?? Data("{}".utf8)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// Sorted keys, like the run files; non-finite numbers as the strings the run files use.
    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return e
    }()
}

/// Refuses requests whose Host header names another machine while the server listens on a
/// loopback address (see the top of this file). Listening on another address (`--host
/// 0.0.0.0`) is a deliberate choice to be reached by other names, so nothing is checked then.
@available(macOS 14, *)
struct LoopbackHostMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext
    let listeningHost: String

    /// localhost, ::1 or an IPv4 literal in 127.0.0.0/8 — parsed as an address, since a DNS
    /// name may well begin with "127." (127.0.0.1.example.com).
    static func isLoopback(_ host: String) -> Bool {
        if host == "localhost" || host == "::1" { return true }
        var address = in_addr()
        guard inet_pton(AF_INET, host, &address) == 1 else { return false }
        return UInt32(bigEndian: address.s_addr) >> 24 == 127
    }

    /// The host part of a Host header: "127.0.0.1:8080" → "127.0.0.1", "[::1]:8080" → "::1".
    static func hostName(_ authority: String) -> String {
        if authority.hasPrefix("["), let end = authority.firstIndex(of: "]") {
            return String(authority[authority.index(after: authority.startIndex)..<end])
        }
        return String(authority.split(separator: ":", maxSplits: 1).first ?? "").lowercased()
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if Self.isLoopback(listeningHost) {
            let name = request.head.authority.map(Self.hostName) ?? ""
            guard Self.isLoopback(name) || name == listeningHost else {
                return DashboardResponse.error(.forbidden, "this dashboard answers only to localhost, not to the host '\(name)'")
            }
        }
        return try await next(request, context)
    }
}
