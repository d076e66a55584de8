import ComfyGateTestSupport
import Foundation
import NIOHTTP1
import Testing

/// ComfyUI's real front end (`comfyui-frontend-package` 1.27.10, the version ComfyUI 0.3.64 pins) loads in headless
/// Chromium from the stand-in, which answers everything the page asks at load as ComfyUI does.
@Suite(.timeLimit(.minutes(3)))
struct ComfyUIFrontEndTests {
    /// Where screenshots go: `COMFYGATE_SCREENSHOTS`, else a temporary directory.
    static var screenshotDirectory: String {
        ProcessInfo.processInfo.environment["COMFYGATE_SCREENSHOTS"]
            ?? FileManager.default.temporaryDirectory.path + "/comfygate-screenshots"
    }

    /// What the page asks at load that ComfyUI answers 404 too.
    static let absentAtLoad: Set<String> = [
        "/user.css", "/api/userdata/user.css",  // no user stylesheet
        "/favicon.ico",  // asked by the browser; the front end's icon is under /assets
        "/api/userdata",  // no saved workflows or subgraphs yet
        "/api/userdata/comfy.templates.json",  // no saved templates
        "/templates/index.json",  // the workflow templates package is not installed
    ]

    struct SocketState: Decodable {
        let readyState: Int
        let clientId: String?
    }

    @Test func theRealFrontEndLoadsFromTheStandIn() async throws {
        var options = ComfyUIStandIn.Options()
        options.webRoot = try await ComfyUIFrontEndPackage.staticDirectory()
        try await withComfyUIStandIn(options) { standIn in
            // A returning user: the front end shows the default workflow instead of its first-run template browser.
            let settings = try await TestHTTP.send(.POST, standIn.baseURL + "/api/settings", body: #"{"Comfy.TutorialCompleted": true}"#)
            #expect(settings.status == 200)
            try await withHeadlessChromium { browser in
                try await browser.navigate(to: standIn.baseURL + "/")
                try await browser.waitUntil("the graph canvas is on the page") {
                    try await !browser.findElements("canvas#graph-canvas").isEmpty
                }
                // The api takes its clientId from the sid of ComfyUI's first `status` message.
                try await browser.waitUntil("the app's websocket is open and has had ComfyUI's status") {
                    let socket: SocketState = try await browser.executeScript(
                        "const api = window.comfyAPI?.api?.api; return {readyState: api?.socket?.readyState ?? -1, clientId: api?.clientId ?? null};")
                    let openSids = standIn.recordedWebSockets.filter(\.isOpen).map(\.sid)
                    return socket.readyState == 1 && socket.clientId.map(openSids.contains) == true
                }
                try await browser.waitUntil("the default workflow is in the graph") {
                    try await browser.executeScript("return (window.app?.graph?.nodes?.length ?? 0) > 0;")
                }
                #expect(standIn.recordedWebSockets.map(\.path) == ["/ws"])
                let dialogs: [String] = try await browser.executeScript(
                    "return [...document.querySelectorAll('.p-dialog')].map(dialog => dialog.innerText);")
                #expect(dialogs.isEmpty, "dialogs open: \(dialogs)")

                let requests = standIn.recordedRequests
                let failed = requests.filter { $0.status >= 400 && !($0.status == 404 && Self.absentAtLoad.contains($0.path)) }
                #expect(failed.isEmpty, "\(failed.map { "\($0.method) \($0.path) → \($0.status)" })")
                let manifest = requests.filter { $0.path.hasPrefix("/assets/manifest-") }
                #expect(!manifest.isEmpty && manifest.allSatisfy { $0.status == 200 })
                let icons = requests.filter { request in
                    request.path.hasPrefix("/assets/") && [".ico", ".png", ".svg"].contains(where: request.path.hasSuffix)
                }
                #expect(!icons.isEmpty && icons.allSatisfy { $0.status == 200 })

                let path = Self.screenshotDirectory + "/comfyui-front-end.png"
                try await browser.saveScreenshot(to: path)
                let png = try Data(contentsOf: URL(fileURLWithPath: path))
                #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]))
            }
        }
    }
}
