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
    /// The identity in the access policy's terms.
    var caller: Caller {
        let role: Caller.Role = switch self.role {
        case .admin: .admin
        case .user: .user
        case .viewer: .viewer
        }
        return Caller(userID: userID, userName: userName, role: role)
    }
}

extension PolicyRefusal {
    var httpStatus: HTTPResponse.Status { HTTPResponse.Status(code: status) }
}
