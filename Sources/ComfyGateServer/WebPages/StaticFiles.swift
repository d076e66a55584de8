import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The gateway's own static files, served to anyone at `/comfygate/static/…`: the pages' one stylesheet, their
/// small script (copy buttons), and the extension ComfyUI's front end loads from the list at `GET /extensions`.
enum StaticFiles {
    struct File {
        let contentType: String
        let bytes: ByteBuffer
        /// A strong validator: the first 16 hex digits of the content's SHA-256.
        let etag: String

        init(_ contentType: String, _ text: String) {
            self.contentType = contentType
            bytes = ByteBuffer(string: text)
            etag = "\"" + SHA256.hash(data: Array(text.utf8)).prefix(8).map { String(format: "%02x", $0) }.joined() + "\""
        }
    }

    /// The URL of the extension, as `GET /extensions` lists it.
    static let extensionURL = "/comfygate/static/comfygate-extension.js"

    static let files: [String: File] = [
        "comfygate.css": File("text/css; charset=utf-8", PageStyle.css),
        "pages.js": File("text/javascript; charset=utf-8", PageStyle.script),
        "comfygate-extension.js": File("text/javascript; charset=utf-8", ComfyUIExtension.script),
    ]

    /// The answer for `GET|HEAD /comfygate/static/<name>`: the file, `304` when the browser has it, `404`.
    static func response(path: String, headers: HTTPFields) -> Response {
        let name = String(path.dropFirst("/comfygate/static/".count))
        guard let file = files[name] else { return GatewayResponse.error(.notFound, "no such file") }
        let common: HTTPFields = [
            .eTag: file.etag, .cacheControl: "no-cache", .contentType: file.contentType,
            HTTPField.Name("X-Content-Type-Options")!: "nosniff",
        ]
        if headers[.ifNoneMatch] == file.etag { return Response(status: .notModified, headers: common) }
        var fields = common
        fields[.contentLength] = String(file.bytes.readableBytes)
        return Response(status: .ok, headers: fields, body: .init(byteBuffer: file.bytes))
    }
}
