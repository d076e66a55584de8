import ComfyGateCore
import ComfyGatePolicy
import HTTPTypes

extension RequestFacts {
    /// The facts of a request as HTTPTypes carries it, on any request path.
    init(_ request: HTTPRequest, isWebSocket: Bool) {
        let fields = request.headerFields
        let hasBody = fields[.transferEncoding] != nil || (fields[.contentLength].flatMap { Int($0) } ?? 0) > 0
        self.init(
            method: request.method.rawValue, target: request.path ?? "/", isWebSocket: isWebSocket, hasBody: hasBody,
            contentType: fields[.contentType]
        )
    }
}

extension Identity {
    /// The Prometheus scraper, who sent the configured scrape token: no user of the store.
    static let scraper = Identity(userID: "", userName: "[scraper]", role: .viewer, credential: .scrapeToken)

    /// The identity in the access policy's terms.
    var caller: Caller {
        let role: Caller.Role =
            switch (credential, self.role) {
            case (.scrapeToken, _): .scraper
            case (_, .admin): .admin
            case (_, .user): .user
            case (_, .viewer): .viewer
            }
        return Caller(userID: userID, userName: userName, role: role)
    }
}

extension PolicyRefusal {
    var httpStatus: HTTPResponse.Status { HTTPResponse.Status(code: status) }
}
