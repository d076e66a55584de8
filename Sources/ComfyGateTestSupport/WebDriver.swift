import AsyncHTTPClient
import ComfyGateCore
import Foundation
import NIOCore
import NIOHTTP1

#if canImport(Glibc)
import Glibc
#endif

/// A small W3C WebDriver client for tests: `chromedriver` on a free loopback port driving one headless Chromium.
///
/// Obtain one with ``withHeadlessChromium(_:)``, which always ends the session and chromedriver.
public final class WebDriver: Sendable {
    /// An element of the page, as WebDriver refers to it.
    public struct Element: Sendable, Hashable {
        public let id: String
    }

    /// A cookie the browser holds.
    public struct Cookie: Sendable, Decodable {
        public let name: String
        public let value: String
        public let path: String?
        public let domain: String?
        public let secure: Bool?
        public let httpOnly: Bool?
        public let sameSite: String?
    }

    /// A command that failed, chromedriver or Chromium missing or not starting, or a wait that timed out.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    private static let elementKey = "element-6066-11e4-a52e-4f735466cecf"
    private let driver: ChildProcess
    private let client: HTTPClient
    private let driverURL: String
    private let sessionID: String
    private let scratchDirectory: String

    private init(driver: ChildProcess, client: HTTPClient, driverURL: String, sessionID: String, scratchDirectory: String) {
        self.driver = driver
        self.client = client
        self.driverURL = driverURL
        self.sessionID = sessionID
        self.scratchDirectory = scratchDirectory
    }

    // MARK: navigation and elements

    /// Loads `url` and waits for the page's load event.
    public func navigate(to url: String) async throws {
        let _: Discarded = try await command(.POST, "url", ["url": url])
    }

    /// The URL of the page now shown.
    public func currentURL() async throws -> String { try await command(.GET, "url") }

    /// The first element matching a CSS selector; fails when there is none.
    public func findElement(_ selector: String) async throws -> Element {
        let reference: [String: String] = try await command(.POST, "element", ["using": "css selector", "value": selector])
        return try Self.element(reference)
    }

    /// Every element matching a CSS selector, in document order.
    public func findElements(_ selector: String) async throws -> [Element] {
        let references: [[String: String]] = try await command(.POST, "elements", ["using": "css selector", "value": selector])
        return try references.map(Self.element)
    }

    public func click(_ element: Element) async throws {
        let _: Discarded = try await command(.POST, "element/\(element.id)/click", [:])
    }

    /// Types `text` into the element.
    public func sendKeys(_ text: String, to element: Element) async throws {
        let _: Discarded = try await command(.POST, "element/\(element.id)/value", ["text": text])
    }

    /// The element's rendered text.
    public func text(of element: Element) async throws -> String { try await command(.GET, "element/\(element.id)/text") }

    /// An attribute's value, nil when the element has none.
    public func attribute(_ name: String, of element: Element) async throws -> String? {
        try await command(.GET, "element/\(element.id)/attribute/\(name)")
    }

    /// Runs `script` as a function body in the page (`arguments[i]` are the given strings) and decodes what it returns.
    public func executeScript<Result: Decodable>(
        _ script: String, arguments: [String] = [], as type: Result.Type = Result.self
    ) async throws -> Result {
        try await command(.POST, "execute/sync", ["script": script, "args": arguments])
    }

    /// Polls `condition` every 100 ms until it holds; fails after `timeout`, with the last error `condition` threw.
    public func waitUntil(
        _ description: String, timeout: Duration = .seconds(30), _ condition: () async throws -> Bool
    ) async throws {
        let deadline = ContinuousClock.now + timeout
        var lastError: (any Error)?
        while ContinuousClock.now < deadline {
            do {
                if try await condition() { return }
                lastError = nil
            } catch {
                lastError = error
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw Failure(description: "timed out after \(timeout) waiting until \(description)" + (lastError.map { " (last error: \($0))" } ?? ""))
    }

    // MARK: cookies and screenshots

    public func cookies() async throws -> [Cookie] { try await command(.GET, "cookie") }

    public func deleteCookie(named name: String) async throws {
        let _: Discarded = try await command(.DELETE, "cookie/\(name.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? name)")
    }

    public func deleteAllCookies() async throws {
        let _: Discarded = try await command(.DELETE, "cookie")
    }

    /// The visible part of the page as PNG bytes.
    public func screenshot() async throws -> [UInt8] {
        let encoded: String = try await command(.GET, "screenshot")
        guard let data = Data(base64Encoded: encoded) else { throw Failure(description: "the screenshot is not base64") }
        return [UInt8](data)
    }

    /// Writes ``screenshot()`` to `path`, creating its directory.
    public func saveScreenshot(to path: String) async throws {
        let bytes = try await screenshot()
        let url = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(bytes).write(to: url)
    }

    // MARK: session

    /// Starts chromedriver and a headless Chromium session with a throwaway profile.
    static func start() async throws -> WebDriver {
        let chromium = try executable("chromium"), chromedriver = try executable("chromedriver")
        let scratch = FileManager.default.temporaryDirectory.path + "/comfygate-webdriver-" + UUID().uuidString.lowercased()
        try FileManager.default.createDirectory(atPath: scratch + "/profile", withIntermediateDirectories: true)
        let port = try freePort()
        let driver = try ChildProcess(
            [chromedriver, "--port=\(port)", "--log-path=\(scratch)/chromedriver.log"], standardOutput: .null, standardError: .null)
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        let driverURL = "http://127.0.0.1:\(port)"
        do {
            try await waitForDriver(driverURL, driver: driver, client: client, log: scratch + "/chromedriver.log")
            let options: [String: Any] = [
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900",
                    "--user-data-dir=\(scratch)/profile",
                ],
            ]
            let capabilities: [String: Any] = [
                "browserName": "chrome", "goog:chromeOptions": options, "timeouts": ["pageLoad": 60_000, "script": 30_000],
            ]
            let body = try JSONSerialization.data(withJSONObject: ["capabilities": ["alwaysMatch": capabilities]])
            let created: NewSession = try await send(client, .POST, driverURL + "/session", body: body)
            return WebDriver(driver: driver, client: client, driverURL: driverURL, sessionID: created.sessionId, scratchDirectory: scratch)
        } catch {
            await stop(driver: driver, client: client, scratchDirectory: scratch)
            throw error
        }
    }

    /// Ends the session, then chromedriver and anything left in its process group, and removes the profile.
    func quit() async {
        _ = try? await command(.DELETE, "") as Discarded
        await Self.stop(driver: driver, client: client, scratchDirectory: scratchDirectory)
    }

    private static func stop(driver: ChildProcess, client: HTTPClient, scratchDirectory: String) async {
        driver.send(SIGTERM)
        let deadline = ContinuousClock.now + .seconds(5)
        while driver.isRunning, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(50)) }
        // chromedriver runs in a process group of its own, which the browsers it started share.
        kill(-driver.pid, SIGKILL)
        driver.send(SIGKILL)
        driver.waitForExit()
        try? await client.shutdown()
        try? FileManager.default.removeItem(atPath: scratchDirectory)
    }

    private static func waitForDriver(_ url: String, driver: ChildProcess, client: HTTPClient, log: String) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            guard driver.isRunning else {
                let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                throw Failure(description: "chromedriver exited at start: \(text)")
            }
            if let status: DriverStatus = try? await send(client, .GET, url + "/status"), status.ready { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw Failure(description: "chromedriver did not become ready within 30 s")
    }

    /// The full path of `name` on `PATH`.
    private static func executable(_ name: String) throws -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        for directory in path.split(separator: ":") where FileManager.default.isExecutableFile(atPath: "\(directory)/\(name)") {
            return "\(directory)/\(name)"
        }
        throw Failure(description: "`\(name)` is not on PATH; scripts/test installs it (apt-get install chromium chromium-driver)")
    }

    private static func freePort() throws -> Int {
        do { return try LoopbackPort.free() } catch { throw Failure(description: "no free loopback port for chromedriver") }
    }

    // MARK: wire

    private struct Envelope<Value: Decodable>: Decodable { let value: Value }
    private struct CommandError: Decodable { let error: String; let message: String }
    private struct NewSession: Decodable { let sessionId: String }
    private struct DriverStatus: Decodable { let ready: Bool }
    /// Any value, not read.
    private struct Discarded: Decodable { init(from decoder: any Decoder) {} }

    private static func element(_ reference: [String: String]) throws -> Element {
        guard let id = reference[elementKey] else { throw Failure(description: "not an element reference: \(reference)") }
        return Element(id: id)
    }

    private func command<Value: Decodable>(_ method: HTTPMethod, _ path: String, _ body: [String: Any]? = nil) async throws -> Value {
        let data = try body.map { try JSONSerialization.data(withJSONObject: $0) }
        let url = driverURL + "/session/" + sessionID + (path.isEmpty ? "" : "/" + path)
        return try await Self.send(client, method, url, body: data)
    }

    private static func send<Value: Decodable>(_ client: HTTPClient, _ method: HTTPMethod, _ url: String, body: Data? = nil) async throws -> Value {
        var request = HTTPClientRequest(url: url)
        request.method = method
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json; charset=utf-8")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let response = try await client.execute(request, timeout: .seconds(90))
        let bytes = Data(try await response.body.collect(upTo: 64 << 20).readableBytesView)
        guard response.status == .ok else {
            let reason = (try? JSONDecoder().decode(Envelope<CommandError>.self, from: bytes)).map { "\($0.value.error): \($0.value.message)" }
            throw Failure(description: "\(method.rawValue) \(url) answered \(response.status.code): " + (reason ?? String(decoding: bytes, as: UTF8.self)))
        }
        return try JSONDecoder().decode(Envelope<Value>.self, from: bytes).value
    }
}

/// Runs `body` with a headless Chromium driven through chromedriver, both found on `PATH`, then ends them whether
/// `body` returned or threw.
public func withHeadlessChromium<T: Sendable>(_ body: (WebDriver) async throws -> T) async throws -> T {
    let browser = try await WebDriver.start()
    do {
        let result = try await body(browser)
        await browser.quit()
        return result
    } catch {
        await browser.quit()
        throw error
    }
}
