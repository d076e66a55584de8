/// Who a request acts as, in the policy's terms: the authenticated user and what their role lets them do.
public struct Caller: Sendable, Equatable {
    /// What a role may do through the gateway.
    public enum Role: String, Sendable, Equatable {
        /// Everything, and sees everyone's work.
        case admin
        /// Runs workflows and sees only their own work.
        case user
        /// Reads their own work only: safe methods and the websocket.
        case viewer
        /// Not a user: the Prometheus scraper with the configured scrape token, which may read `/metrics` only.
        case scraper
    }

    /// The user's stable id.
    public var userID: String
    /// The user's login name.
    public var userName: String
    public var role: Role

    public init(userID: String, userName: String, role: Role) {
        self.userID = userID
        self.userName = userName
        self.role = role
    }

    public var isAdmin: Bool { role == .admin }

    /// The caller's own space: file folders and websocket client ids.
    public var space: UserSpace { UserSpace(userID: userID, userName: userName) }
}
