/// A failure of a secrets operation, worded for the person running it: it names the file and says what
/// happened, and never contains a secret.
public struct SecretsError: Error, Equatable, CustomStringConvertible {
    /// One line per problem.
    public var problems: [String]

    public init(_ problem: String) { self.problems = [problem] }

    public init(problems: [String]) { self.problems = problems }

    public var description: String { problems.joined(separator: "\n") }
}

/// One or more problems with a manifest, all reported at once.
public struct ManifestError: Error, Equatable, CustomStringConvertible {
    /// One line per problem, each naming the manifest file and the offending entry.
    public var problems: [String]

    public init(problems: [String]) { self.problems = problems }

    public var description: String { problems.joined(separator: "\n") }
}
