/// What a deployment adds to the built-in rules, from the `[policy]` section of `comfygate.toml`.
public struct PolicyRules: Sendable, Equatable {
    /// Routes only admins may use, beyond the built-in ones.
    public var adminOnlyPaths: [PathPattern]
    /// Routes nobody may use through the gateway.
    public var deniedPaths: [PathPattern]
    /// Node class types non-admins may not run.
    public var deniedNodeClasses: Set<String>

    public init(adminOnlyPaths: [PathPattern] = [], deniedPaths: [PathPattern] = [], deniedNodeClasses: Set<String> = []) {
        self.adminOnlyPaths = adminOnlyPaths
        self.deniedPaths = deniedPaths
        self.deniedNodeClasses = deniedNodeClasses
    }
}

/// A route pattern: an exact route (`/free`), or a route and everything under it (`/manager/*`). Routes are
/// compared as ComfyUI matches them: decoded, with `/api` folded, so `/api/manager/x` is `/manager/x`.
public struct PathPattern: Sendable, Equatable, CustomStringConvertible {
    private let base: String
    private let coversChildren: Bool

    /// nil unless the text starts with `/` and holds `*` only as a final `/*`.
    public init?(_ text: String) {
        guard text.hasPrefix("/") else { return nil }
        if text.hasSuffix("/*") {
            base = String(text.dropLast(2))
            coversChildren = true
        } else {
            base = text
            coversChildren = false
        }
        guard !base.contains("*"), let route = RoutePath(path: base.isEmpty ? "/" : base), route.value == (base.isEmpty ? "/" : base)
        else { return nil }
    }

    public func matches(_ route: RoutePath) -> Bool {
        coversChildren ? route.isUnder(base) : route.value == base
    }

    public var description: String { coversChildren ? base + "/*" : base }
}
