/// A user's own part of the shared ComfyUI: the folder their uploads and outputs live in, and the namespace
/// of their websocket client ids.
public struct UserSpace: Sendable, Equatable {
    public let userID: String
    public let userName: String

    public init(userID: String, userName: String) {
        self.userID = userID
        self.userName = userName
    }

    /// The parent of every user's folder under ComfyUI's `input/`, `output/` and `temp/`: a user folder can
    /// never be a folder someone made outside the gateway.
    public static let foldersRoot = "users"

    /// The user's folder, relative to `input/`, `output/` or `temp/`: `users/<name in lower case>`. Names are
    /// unique regardless of case; one that starts with a dot (`.`, `..`) gets a leading `+`, a character no
    /// user name may hold, so the folder stays one real path component and no other user's.
    public var folder: String {
        let name = userName.lowercased()
        return Self.foldersRoot + "/" + (name.hasPrefix(".") ? "+" + name : name)
    }

    /// Whether a relative folder path (as ComfyUI gets it in `subfolder`, `/` separated, already normalised) is
    /// the user's folder or inside it.
    public func contains(folder path: String) -> Bool {
        path == folder || path.hasPrefix(folder + "/")
    }

    /// The prefix of the user's websocket client ids. It ends with `~`, which user ids never hold, so no
    /// user's prefix starts another's.
    public var clientIDPrefix: String { userID + "~" }

    /// The client id ComfyUI gets for an id this user sent: kept when already in the user's namespace (the
    /// `sid` ComfyUI reported back), prefixed otherwise. Another user's id can only ever become a new id of
    /// this user's.
    public func clientID(_ sent: String) -> String {
        sent.hasPrefix(clientIDPrefix) ? sent : clientIDPrefix + sent
    }

    /// Whether a client id ComfyUI knows belongs to this user.
    public func owns(clientID: String) -> Bool {
        clientID.hasPrefix(clientIDPrefix)
    }
}
