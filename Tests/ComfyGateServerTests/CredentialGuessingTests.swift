import AsyncHTTPClient
import ComfyGateCore
import ComfyGateTestSupport
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import Testing

/// Guessing tokens and passwords: per-address budgets for token guesses, bcrypt capacity of their own for
/// logins, and per-account lockouts that do not spill over onto an address shared by many people.
@Suite struct CredentialGuessingTests {
    static func randomGuess() -> String { "guess-" + TokenFormat.randomBase62(count: 24) }

    @Test func tokenGuessesFromOneAddressAreThrottledOnEveryPathBeforeAnyBcrypt() async throws {
        try await withGateway { gate in
            _ = try await gate.makeUser("qwen", password: "correct-horse-battery")
            let imported = "a-legacy-raw-token"
            _ = try await gate.accounts.importBcryptToken(userName: "qwen", hash: try await gate.accounts.hasher.hash(imported, cost: 4), name: "legacy")

            // Ten free failures per address, counted alike on websocket upgrades and plain requests.
            for _ in 0..<5 {
                let connection = try RawConnection(port: gate.port)
                try await connection.write(WebSocketTests.handshake(path: "/ws", port: gate.port, extra: "Authorization: Bearer \(Self.randomGuess())\r\n"))
                let answer = await connection.read(until: "}")
                #expect(answer.hasPrefix("HTTP/1.1 401"), "got \(answer.prefix(40))")
            }
            for _ in 0..<5 {
                let response = try await TestHTTP.send(.GET, "\(gate.baseURL)/prompt", headers: [("Authorization", "Bearer \(Self.randomGuess())")])
                #expect(response.status == 401)
            }
            let checked = gate.accounts.hasher.verificationCount

            let throttled = try await TestHTTP.send(.GET, "\(gate.baseURL)/prompt", headers: [("Authorization", "Bearer \(Self.randomGuess())")])
            #expect(throttled.status == 429)
            #expect(throttled.header("Retry-After") == "30")
            #expect(try throttled.json()["error"] as? String == "too many failed credentials, retry later")
            let right = try await TestHTTP.send(.GET, "\(gate.baseURL)/prompt", headers: [("Authorization", "Bearer \(imported)")])
            #expect(right.status == 429, "during the lockout even the right token is not checked")

            let connection = try RawConnection(port: gate.port)
            try await connection.write(WebSocketTests.handshake(path: "/ws", port: gate.port, extra: "Authorization: Bearer \(Self.randomGuess())\r\n"))
            let answer = await connection.read(until: "}")
            #expect(answer.hasPrefix("HTTP/1.1 429"), "got \(answer.prefix(40))")
            #expect(answer.contains("too many failed credentials"))
            #expect(answer.lowercased().contains("retry-after: "))

            #expect(gate.accounts.hasher.verificationCount == checked, "no bcrypt for an address over its budget")
            #expect(!gate.comfyUIRequests.contains { $0.path == "/prompt" })
            let login = try await BrowserLoginTests.login(gate, user: "qwen", password: "correct-horse-battery")
            #expect(login.status == 303, "token guesses do not use up the address's login attempts")

            gate.clock.advance(by: 30)
            #expect(try await TestHTTP.send(.GET, "\(gate.baseURL)/prompt", headers: [("Authorization", "Bearer \(imported)")]).status == 200)
        }
    }

    /// Token guesses from ever new addresses (behind a trusted proxy), each within its budget, keep the bcrypt
    /// queue for tokens full; correct logins meanwhile must not be turned away as busy.
    @Test func correctLoginsSucceedWhileTokenGuessesFillTheBcryptQueue() async throws {
        try await withGateway(configure: { configuration in
            configuration.trustedProxies = ["127.0.0.1"]
            configuration.bcryptConcurrency = 1
        }) { gate in
            _ = try await gate.makeUser("qwen", password: "correct-horse-battery")
            _ = try await gate.accounts.importBcryptToken(
                userName: "qwen", hash: try await gate.accounts.hasher.hash(Self.randomGuess(), cost: 10), name: "legacy")

            var configuration = HTTPClient.Configuration(timeout: .init(connect: .seconds(30), read: .seconds(60)))
            configuration.connectionPool = .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: 256)
            let flooder = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            let flood = FloodProgress()
            let flooding = Task { try await withThrowingTaskGroup(of: [Int].self) { group in
                // 65 requests fill the queue and its one thread; the others, answered 503 after a pause, come back
                // faster than the thread frees places.
                for _ in 0..<150 {
                    group.addTask {
                        while !flood.stop.load(ordering: .relaxed) {
                            var request = HTTPClientRequest(url: "\(gate.baseURL)/prompt")
                            request.headers.add(name: "Authorization", value: "Bearer \(Self.randomGuess())")
                            request.headers.add(name: "X-Forwarded-For", value: "10.\(UInt8.random(in: 0...255)).\(UInt8.random(in: 0...255)).\(UInt8.random(in: 1...254))")
                            do {
                                let response = try await flooder.execute(request, timeout: .seconds(60))
                                _ = try await response.body.collect(upTo: 1 << 16)
                                if response.status == .serviceUnavailable { flood.busyAnswers.add(1, ordering: .relaxed) }
                            } catch is HTTPClientError {
                                // A guess still queued at its deadline (a loaded machine slows bcrypt) held its place
                                // in the queue all the same: the flood goes on; only the logins are judged.
                            }
                        }
                        return []
                    }
                }
                group.addTask {
                    defer { flood.stop.store(true, ordering: .relaxed) }
                    for _ in 0..<600 where flood.busyAnswers.load(ordering: .relaxed) == 0 { try await Task.sleep(for: .milliseconds(50)) }
                    var statuses: [Int] = []
                    for _ in 0..<5 {
                        statuses.append(try await BrowserLoginTests.login(gate, user: "qwen", password: "correct-horse-battery").status)
                    }
                    return statuses
                }
                return try await group.reduce(into: [Int]()) { $0 += $1 }
            } }
            // The client is shut down whether the flood ended well or not (a client dropped unshut stops the process).
            let outcome = await flooding.result
            try await flooder.shutdown()
            let loginStatuses = try outcome.get()
            #expect(flood.busyAnswers.load(ordering: .relaxed) > 0, "the token queue was full during the logins")
            #expect(loginStatuses == [303, 303, 303, 303, 303])
        }
    }

    /// Shared by the flooding tasks of ``correctLoginsSucceedWhileTokenGuessesFillTheBcryptQueue()``.
    final class FloodProgress: Sendable {
        let stop = Atomic(false)
        /// 503 answers seen: the token queue was full.
        let busyAnswers = Atomic(0)
    }

    @Test func aGuesserDoesNotLockOutOtherAccountsBehindTheSameAddress() async throws {
        try await withGateway { gate in
            _ = try await gate.makeUser("alice", password: "correct-horse-battery")
            _ = try await gate.makeUser("bob", password: "staple-battery-horse")
            var statuses: [Int] = []
            for _ in 0..<6 { statuses.append(try await BrowserLoginTests.login(gate, user: "alice", password: "wrong-password").status) }
            #expect(statuses == [401, 401, 401, 401, 401, 429])
            let bob = try await BrowserLoginTests.login(gate, user: "bob", password: "staple-battery-horse")
            #expect(bob.status == 303, "bob shares alice's guesser's address, not her lockout")
        }
    }
}
