public import ComfyGatePolicy

/// A Comfy API v2 refusal: the HTTP status and the error envelope's `code`, `message` and `details`.
public struct V2Failure: Error, Sendable, Equatable {
    public var status: Int
    public var code: String
    public var message: String
    public var details: PolicyJSON
    /// Seconds for `Retry-After`, when waiting helps.
    public var retryAfter: Int?

    public init(status: Int, code: String, message: String, details: PolicyJSON = .null, retryAfter: Int? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.retryAfter = retryAfter
    }

    /// The error envelope.
    public var envelope: PolicyJSON {
        V2Representation.errorEnvelope(code: code, message: message, details: details)
    }

    /// A refusal the gateway words the same on every door, given the contract's code for its status.
    public init(status: Int, message: String, retryAfter: Int? = nil) {
        let code: String =
            switch status {
            case 400, 415: "invalid_request"
            case 401: "unauthorized"
            case 402: "insufficient_credits"
            case 403: "forbidden"
            case 404: "not_found"
            case 405: "method_not_allowed"
            case 409: "conflict"
            case 413: "payload_too_large"
            case 429: "rate_limited"
            case 502: "upstream_error"
            case 503: "upstream_unreachable"
            case 500..<600: "internal_error"
            default: "http_\(status)"
            }
        self.init(status: status, code: code, message: message, retryAfter: retryAfter)
    }

    public static func invalidRequest(_ message: String) -> Self { Self(status: 400, code: "invalid_request", message: message) }
    public static func notFound(_ message: String) -> Self { Self(status: 404, code: "not_found", message: message) }
    public static func invalidWorkflow(_ message: String, details: PolicyJSON = .null) -> Self {
        Self(status: 422, code: "invalid_workflow", message: message, details: details)
    }
}

/// A `POST /api/v2/jobs` body taken apart: the API-format graph, `extra_data`, the caller's `metadata`, and the
/// `core/ASSET` references the graph makes to the caller's assets.
public struct V2Submission: Sendable, Equatable {
    /// A graph input that names an asset: `{"__type": "core/ASSET", "info": {"id": …}}`.
    public struct AssetReference: Sendable, Equatable {
        public var nodeID: String
        public var input: String
        public var assetID: String
    }

    public var workflow: PolicyJSON
    public var extraData: PolicyJSON
    /// A map of strings (the Cloud deployments' rules), or a string of at most 1 KiB (as `comfy-api-proxy` takes it).
    public var metadata: PolicyJSON?
    public var assetReferences: [AssetReference]

    /// Reads and checks a body, as the contract's refusals say: 400 for a body that is not a JSON object or an
    /// `extra_data` other than `{"api_key_comfy_org": "…"}`, 422 for a missing or UI-format workflow, reserved keys,
    /// a malformed asset reference or metadata outside the rules.
    public init(body: [UInt8]) throws(V2Failure) {
        guard let request = try? PolicyJSON(parsing: body), request.members != nil else {
            throw .invalidRequest("the body is not a JSON object")
        }
        for reserved in ["webhook_url", "inputs"] where request[reserved] != nil {
            throw .invalidWorkflow("'\(reserved)' is not supported")
        }
        guard let workflow = request["workflow"], let nodes = workflow.members else {
            throw .invalidWorkflow("'workflow' must be an API-format graph (an object of nodes)")
        }
        if workflow["nodes"]?.arrayValue != nil, workflow["links"] != nil {
            throw V2Failure(
                status: 422, code: "workflow_format_ui",
                message: "the workflow is in the UI (save) format; export it with 'Export (API)'")
        }
        self.workflow = workflow
        extraData = try Self.extraData(request["extra_data"])
        metadata = try Self.metadata(request["metadata"])
        var references: [AssetReference] = []
        for node in nodes {
            for input in node.value["inputs"]?.members ?? [] where input.value["__type"] == .string("core/ASSET") {
                guard let id = input.value["info"]?["id"]?.stringValue, !id.isEmpty else {
                    throw .invalidWorkflow("input '\(input.key)' of node \(node.key) names an asset without an id")
                }
                references.append(AssetReference(nodeID: node.key, input: input.key, assetID: id))
            }
        }
        assetReferences = references
    }

    /// The graph with each asset reference replaced by the file name ComfyUI knows the asset by.
    public func workflow(resolving fileNames: [String: String]) -> PolicyJSON {
        guard let nodes = workflow.members else { return workflow }
        return .object(nodes.map { node in
            guard let members = node.value.members else { return node }
            return .init(key: node.key, value: .object(members.map { member in
                guard member.key == "inputs", let inputs = member.value.members else { return member }
                return .init(key: "inputs", value: .object(inputs.map { input in
                    guard input.value["__type"] == .string("core/ASSET"),
                        let name = input.value["info"]?["id"]?.stringValue.flatMap({ fileNames[$0] })
                    else { return input }
                    return .init(key: input.key, value: .string(name))
                }))
            }))
        })
    }

    private static func extraData(_ value: PolicyJSON?) throws(V2Failure) -> PolicyJSON {
        guard let value, value != .null else { return .object([]) }
        guard let members = value.members, members.allSatisfy({ member in
            member.key == "api_key_comfy_org" && member.value.stringValue != nil
                || member.key == NativeSubmission.retryableKey && [.bool(true), .bool(false)].contains(member.value)
        })
        else {
            throw .invalidRequest("'extra_data' may hold only 'api_key_comfy_org', a string, and '\(NativeSubmission.retryableKey)', a boolean")
        }
        return value
    }

    /// At most 16 pairs; keys of 1–40 characters from `A-Z a-z 0-9 _ - .`; values of at most 256 UTF-8 bytes
    /// without control or bidirectional-override characters.
    static func metadata(_ value: PolicyJSON?) throws(V2Failure) -> PolicyJSON? {
        guard let value, value != .null else { return nil }
        if let text = value.stringValue {
            guard text.utf8.count <= 1024 else { throw invalidMetadata("a metadata string is at most 1 KiB") }
            return value
        }
        guard let pairs = value.members else { throw invalidMetadata("'metadata' must be a map of strings") }
        guard pairs.count <= 16 else { throw invalidMetadata("at most 16 metadata pairs") }
        for pair in pairs {
            guard (1...40).contains(pair.key.count), pair.key.unicodeScalars.allSatisfy(Self.isKeyCharacter) else {
                throw invalidMetadata("metadata key '\(pair.key)' must be 1–40 characters from A-Z a-z 0-9 _ - .")
            }
            guard let text = pair.value.stringValue, text.utf8.count <= 256,
                !text.unicodeScalars.contains(where: Self.isRefusedInValue)
            else {
                throw invalidMetadata("metadata '\(pair.key)' must be a string of at most 256 bytes without control characters")
            }
        }
        return value
    }

    private static func invalidMetadata(_ message: String) -> V2Failure {
        V2Failure(status: 422, code: "metadata_invalid", message: message)
    }

    private static func isKeyCharacter(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "A"..."Z", "a"..."z", "0"..."9", "_", "-", ".": true
        default: false
        }
    }

    private static func isRefusedInValue(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F, 0x202A...0x202E, 0x2066...0x2069: true
        default: false
        }
    }
}
