public import Foundation

/// Where model files are downloaded from: the Hugging Face hub or a mirror with its layout
/// (`{endpoint}/{repository}/resolve/{revision}/{path}`), with an optional token.
public struct ModelSource: Sendable, Equatable {
    /// `HF_ENDPOINT`, else `https://huggingface.co`.
    public var endpoint: URL
    /// `HF_TOKEN`: sent as `Authorization: Bearer` to the endpoint's host only, never to the host a download is
    /// redirected to.
    public var token: String?

    public static let defaultEndpoint = URL(string: "https://huggingface.co")!

    public init(endpoint: URL = Self.defaultEndpoint, token: String? = nil) {
        self.endpoint = endpoint
        self.token = token
    }

    /// The source the environment names (`HF_ENDPOINT`, `HF_TOKEN`); nil when `HF_ENDPOINT` is not an http(s) URL.
    public init?(environment: [String: String]) {
        var endpoint = Self.defaultEndpoint
        if let text = environment["HF_ENDPOINT"]?.trimmingCharacters(in: .whitespaces), !text.isEmpty {
            guard let url = URL(string: text), ["http", "https"].contains(url.scheme?.lowercased() ?? ""), url.host != nil else {
                return nil
            }
            endpoint = url
        }
        let token = environment["HF_TOKEN"]?.trimmingCharacters(in: .whitespacesAndNewlines)
        self.init(endpoint: endpoint, token: token?.isEmpty == false ? token : nil)
    }

    /// The download URL of a file.
    public func url(of file: ModelFile) -> URL {
        var base = endpoint.absoluteString
        while base.hasSuffix("/") { base.removeLast() }
        let path = file.path.split(separator: "/").map { $0.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? String($0) }
        return URL(string: "\(base)/\(file.repository)/resolve/\(file.revision)/\(path.joined(separator: "/"))")!
    }

    /// Whether a URL is on the endpoint's host (and so may carry the token).
    func isEndpoint(_ url: URL) -> Bool {
        url.host?.lowercased() == endpoint.host?.lowercased() && url.port == endpoint.port
            && url.scheme?.lowercased() == endpoint.scheme?.lowercased()
    }
}
