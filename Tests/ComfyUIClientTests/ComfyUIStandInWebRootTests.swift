import AsyncHTTPClient
import ComfyGateTestSupport
import Foundation
import NIOHTTP1
import Testing

/// The stand-in with a web root serves it as ComfyUI serves its front end (A.1): `GET /` answers `index.html`, every
/// file is static at `/…` (never under `/api`), `GET /extensions` lists the front end's extension scripts.
@Suite("ComfyUI stand-in web root", .timeLimit(.minutes(2)))
struct ComfyUIStandInWebRootTests {
    /// A small web root: index, scripts, styles, data, images, fonts and a nested extension folder.
    static func makeWebRoot() throws -> URL {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("standin-webroot-" + UUID().uuidString)
        let files: [String: String] = [
            "index.html": "<!doctype html><title>front end</title>",
            "assets/index-abc.js": "export const a = 1;",
            "assets/lib/vue.mjs": "export default {};",
            "assets/index-abc.css": "body{}",
            "assets/manifest-abc.json": #"{"name": "ComfyUI"}"#,
            "assets/images/logo.svg": "<svg/>",
            "assets/images/icon.png": "\u{89}PNG",
            "favicon.ico": "ico",
            "fonts/inter.woff2": "wOF2",
            "fonts/icons.ttf": "ttf",
            "extensions/core/widgetInputs.js": "//",
            "extensions/core/clipspace.js": "//",
            "extensions/core/notes.txt": "not a script",
            "extensions/core/.hidden.js": "//",
            "extensions/core/load3d/SceneManager.js": "//",
            "extensions/top.js": "//",
        ]
        for (path, text) in files {
            let url = root.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(text.utf8).write(to: url)
        }
        return root
    }

    static func withWebRoot(_ body: (ComfyUIStandIn, HTTPClient, URL) async throws -> Void) async throws {
        let root = try makeWebRoot()
        defer { try? FileManager.default.removeItem(at: root) }
        var options = ComfyUIStandIn.Options()
        options.webRoot = root.path
        try await withComfyUIStandIn(options) { standIn in
            try await withHTTPClient { client in try await body(standIn, client, root) }
        }
    }

    @Test func theRootAnswersTheWebRootsIndexWithoutCaching() async throws {
        try await Self.withWebRoot { standIn, client, _ in
            for path in ["/", "/api/"] {
                let root = try await client.call(standIn.baseURL + path)
                #expect(root.status == 200 && root.text == "<!doctype html><title>front end</title>")
                #expect(root.header("Content-Type") == "text/html")
                #expect(root.header("Cache-Control") == "no-cache" && root.header("Pragma") == "no-cache" && root.header("Expires") == "0")
            }
            let index = try await client.call(standIn.baseURL + "/index.html")
            #expect(index.status == 200 && index.header("Pragma") == nil)
        }
    }

    @Test func filesAreServedWithTheirContentTypes() async throws {
        try await Self.withWebRoot { standIn, client, _ in
            let expected: [(String, String)] = [
                ("/assets/index-abc.js", "text/javascript"), ("/assets/lib/vue.mjs", "text/javascript"),
                ("/assets/index-abc.css", "text/css"), ("/assets/manifest-abc.json", "application/json"),
                ("/assets/images/logo.svg", "image/svg+xml"), ("/assets/images/icon.png", "image/png"),
                ("/favicon.ico", "image/vnd.microsoft.icon"), ("/fonts/inter.woff2", "font/woff2"), ("/fonts/icons.ttf", "font/ttf"),
                ("/extensions/core/notes.txt", "text/plain"), ("/index.html", "text/html"),
            ]
            for (path, contentType) in expected {
                let file = try await client.call(standIn.baseURL + path)
                #expect(file.status == 200, "\(path)")
                #expect(file.header("Content-Type") == contentType, "\(path)")
                #expect(file.header("ETag") != nil && file.header("Last-Modified") != nil && file.header("Accept-Ranges") == "bytes")
            }
            // cache_control: scripts and styles are revalidated, images kept a day.
            #expect(try await client.call(standIn.baseURL + "/assets/index-abc.js").header("Cache-Control") == "no-cache")
            #expect(try await client.call(standIn.baseURL + "/assets/images/icon.png").header("Cache-Control") == "public, max-age=86400")
            #expect(try await client.call(standIn.baseURL + "/assets/images/gone.png").header("Cache-Control") == "public, max-age=3600")

            let script = try await client.call(standIn.baseURL + "/assets/index-abc.js")
            #expect(script.text == "export const a = 1;")
            let etag = try #require(script.header("ETag"))
            let revalidated = try await client.call(standIn.baseURL + "/assets/index-abc.js", headers: [("If-None-Match", etag)])
            #expect(revalidated.status == 304 && revalidated.body.isEmpty)
            let part = try await client.call(standIn.baseURL + "/assets/index-abc.js", headers: [("Range", "bytes=7-11")])
            #expect(part.status == 206 && part.text == "const" && part.header("Content-Range") == "bytes 7-11/19")
        }
    }

    @Test func missingFilesDirectoriesAndPathsOutsideTheRootAreRefused() async throws {
        try await Self.withWebRoot { standIn, client, root in
            let secret = root.deletingLastPathComponent().appendingPathComponent("standin-secret-" + UUID().uuidString)
            try Data("secret".utf8).write(to: secret)
            defer { try? FileManager.default.removeItem(at: secret) }
            try FileManager.default.createSymbolicLink(at: root.appendingPathComponent("link"), withDestinationURL: secret)

            let missing = try await client.call(standIn.baseURL + "/assets/nope.js")
            #expect(missing.status == 404 && missing.body.isEmpty)
            let directory = try await client.call(standIn.baseURL + "/assets")
            #expect(directory.status == 403 && directory.text == "403: Forbidden")
            for escape in ["/assets/%2e%2e/%2e%2e/" + secret.lastPathComponent, "/link"] {
                let refused = try await client.call(standIn.baseURL + escape)
                #expect(refused.status == 404 && refused.text == "404: Not Found", "\(escape)")
            }
            // Static files have no `/api` twin: only dynamic routes do.
            #expect(try await client.call(standIn.baseURL + "/api/assets/index-abc.js").status == 404)
            #expect(try await client.call(standIn.baseURL + "/api/index.html").status == 404)
        }
    }

    @Test func theStaticRouteTakesGETRequestsThatNoRouteTakes() async throws {
        try await Self.withWebRoot { standIn, client, _ in
            // aiohttp tries the static route at `/` after every route: a GET of a POST-only route looks for a file.
            let getInterrupt = try await client.call(standIn.baseURL + "/interrupt")
            #expect(getInterrupt.status == 404 && getInterrupt.body.isEmpty)
            let postFile = try await client.call(.POST, standIn.baseURL + "/assets/index-abc.js")
            #expect(postFile.status == 405 && postFile.header("Allow") == "GET,HEAD")
            let deleteStats = try await client.call(.DELETE, standIn.baseURL + "/system_stats")
            #expect(deleteStats.status == 405 && deleteStats.header("Allow") == "GET,HEAD")
            let putInterrupt = try await client.call(.PUT, standIn.baseURL + "/interrupt")
            #expect(putInterrupt.status == 405 && putInterrupt.header("Allow") == "GET,HEAD,POST")
        }
    }

    @Test func extensionsListTheWebRootsExtensionScripts() async throws {
        try await Self.withWebRoot { standIn, client, _ in
            for prefix in ["", "/api"] {
                let listed = try await client.call(standIn.baseURL + prefix + "/extensions").json()
                #expect(
                    listed == [
                        "/extensions/top.js", "/extensions/core/clipspace.js", "/extensions/core/widgetInputs.js",
                        "/extensions/core/load3d/SceneManager.js",
                    ])
            }
        }
    }

    @Test func aWebRootThatIsNoDirectoryStopsTheStart() async throws {
        var options = ComfyUIStandIn.Options()
        options.webRoot = "/nonexistent/comfyui-web-root"
        await #expect(throws: StandInWebRootError.self) {
            try await withComfyUIStandIn(options) { _ in }
        }
    }
}
