import ComfyGateCore
import ComfyGatePolicy
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// ComfyUI's own users when it runs with `--multi-user`: each gateway user gets one of their own, created on
/// first use through ComfyUI's `POST /users` and remembered in the store, and every request carries that user's
/// `comfy-user` header, so saved workflows and settings are per user. (A client's own `comfy-user` header is
/// never forwarded.)
final class ComfyUIUsers: Service, Sendable {
    /// What ComfyUI was found to be.
    enum Mode: Sendable, Equatable {
        case unknown
        /// Without `--multi-user`: one shared user directory.
        case shared
        case multiUser
    }

    private struct State {
        var mode = Mode.unknown
        var lastProbe: ContinuousClock.Instant?
        var ids: [String: String] = [:]
    }

    private let transport: any UpstreamTransport
    private let store: any GatewayStore
    private let logger: Logger
    private let state = Mutex(State())

    init(transport: any UpstreamTransport, store: any GatewayStore, logger: Logger) {
        self.transport = transport
        self.store = store
        self.logger = logger
    }

    /// How often ComfyUI is asked again while its mode is unknown (it was unreachable).
    static let probeInterval = Duration.seconds(10)

    static let header = HTTPField.Name("comfy-user")!

    var mode: Mode { state.withLock { $0.mode } }

    /// The `comfy-user` value for a user when it can be told without waiting: `.some(nil)` when ComfyUI shares
    /// one user directory, nil when it has to be looked up (or ComfyUI's mode is not known yet).
    func cachedHeader(for userID: String) -> String?? {
        state.withLock { state in
            switch state.mode {
            case .shared: .some(nil)
            case .multiUser: state.ids[userID].map { .some($0) }
            case .unknown: nil
            }
        }
    }

    /// The `comfy-user` value for a caller, creating their ComfyUI user on first use; nil when ComfyUI shares one
    /// user directory (or cannot be asked now).
    func header(for caller: Caller) async -> String? {
        if let known = cachedHeader(for: caller.userID) { return known }
        guard await probe() == .multiUser else { return nil }
        do {
            if let stored = try await store.comfyUserID(forUser: caller.userID) {
                remember(stored, for: caller.userID)
                return stored
            }
            let created = try await create(named: caller.userName)
            try await store.setComfyUserID(created, forUser: caller.userID)
            remember(created, for: caller.userID)
            logger.info("ComfyUI user created", metadata: ["user": "\(caller.userName)", "comfy_user": "\(created)"])
            return created
        } catch {
            logger.warning("no ComfyUI user for this user", metadata: ["user": "\(caller.userName)", "error": "\(error)"])
            return nil
        }
    }

    /// Asks ComfyUI whether it runs with `--multi-user` (its `GET /users` lists users then), at most every
    /// ``probeInterval`` while unknown; logs what it means once.
    @discardableResult
    func probe() async -> Mode {
        let due = state.withLock { state -> Bool in
            guard state.mode == .unknown else { return false }
            let now = ContinuousClock.now
            if let last = state.lastProbe, now - last < Self.probeInterval { return false }
            state.lastProbe = now
            return true
        }
        guard due, let answer = try? await request(.get, "/users", body: nil) else { return mode }
        let found: Mode
        if answer.status == .notFound || answer.status == .methodNotAllowed {
            // No user routes (a ComfyUI from before them, or a proxy that does not pass them): nothing to send.
            found = .shared
            logger.warning(
                "ComfyUI has no user routes: saved workflows and settings are shared by every user",
                metadata: ["users_status": "\(answer.status.code)"])
        } else if answer.status == .ok, let users = try? PolicyJSON(parsing: answer.body), users.members != nil {
            found = users["users"] != nil ? .multiUser : .shared
            if found == .shared {
                logger.warning("ComfyUI runs without --multi-user: saved workflows and settings are shared by every user")
            }
        } else {
            return .unknown
        }
        state.withLock { $0.mode = found }
        if found == .multiUser {
            logger.info("ComfyUI runs with --multi-user: each user gets a ComfyUI user of their own")
        }
        return found
    }

    /// Tells at start what ComfyUI's mode means for users (when ComfyUI answers), then waits for shutdown.
    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled, await self.probe() == .unknown {
                try? await Task.sleep(for: Self.probeInterval)
            }
        }
        try? await gracefulShutdown()
    }

    private func remember(_ comfyUserID: String, for userID: String) {
        state.withLock { $0.ids[userID] = comfyUserID }
    }

    /// Creates a ComfyUI user named after the gateway user; when the name is taken (a store restored from an older
    /// backup), the existing user of that name is taken over.
    private func create(named name: String) async throws -> String {
        let body = PolicyJSON.object([PolicyJSON.Member(key: "username", value: .string(name))]).serialized()
        let answer = try await request(.post, "/users", body: body)
        if answer.status == .ok, let id = (try? PolicyJSON(parsing: answer.body))?.stringValue { return id }
        let listing = try await request(.get, "/users", body: nil)
        if let users = (try? PolicyJSON(parsing: listing.body))?["users"]?.members,
            let existing = users.first(where: { $0.value.stringValue == name })
        {
            return existing.key
        }
        throw PolicyRefusal(status: 502, message: "ComfyUI did not create a user for \(name) (status \(answer.status.code))")
    }

    private func request(_ method: HTTPRequest.Method, _ path: String, body: [UInt8]?) async throws -> (status: HTTPResponse.Status, body: [UInt8]) {
        var headers: HTTPFields = [:]
        if body != nil { headers[.contentType] = "application/json" }
        let response = try await transport.send(UpstreamRequest(
            method: method, pathAndQuery: path, headers: headers,
            body: body.map { RequestBody(buffer: ByteBuffer(bytes: $0)) }, contentLength: body?.count
        ))
        return (response.status, try await UpstreamProxy.collect(response, limit: 16 << 20))
    }
}
