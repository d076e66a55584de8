/// A request the policy turns down: the HTTP status and the one-line reason the client gets as
/// `{"error": message}`.
public struct PolicyRefusal: Error, Sendable, Equatable {
    public var status: Int
    public var message: String

    public init(status: Int, message: String) {
        self.status = status
        self.message = message
    }

    public static func forbidden(_ message: String) -> Self { Self(status: 403, message: message) }
    public static func badRequest(_ message: String) -> Self { Self(status: 400, message: message) }
    public static func conflict(_ message: String) -> Self { Self(status: 409, message: message) }
    public static func notFound(_ message: String) -> Self { Self(status: 404, message: message) }
}
