import ArgumentParser
import ComfyGateCore
import Foundation

/// `comfygate tokens`: API tokens for scripts and ComfyUI clients.
struct TokensCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokens",
        abstract: "Create, list, revoke and import API tokens.",
        discussion: """
            Examples:
              T=$(comfygate tokens create --user alice --name laptop --expires 30d)
              comfygate tokens list --user alice --json
              comfygate tokens revoke 7Hq2mXpL0aZc
              comfygate tokens import --user qwen-api --bcrypt-hash-file \\
                  ComfyUI/login/PASSWORD --name migrated
            """,
        subcommands: [Create.self, List.self, Revoke.self, Import.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a token and print only the token on stdout: T=$(comfygate tokens create --user alice).",
            discussion: "Example: T=$(comfygate tokens create --user alice --name ci --expires 90d)"
        )
        @Option(help: ArgumentHelp("The owner.", valueName: "name")) var user: String
        @Option(help: ArgumentHelp("A label, e.g. laptop or ci.", valueName: "label")) var name: String?
        @Option(help: ArgumentHelp("Lifetime such as 12h, 30d or 2w (default: no expiry).", valueName: "duration")) var expires: String?
        @OptionGroup var store: StoreOptions

        func validate() throws {
            if let expires, DurationParser.seconds(expires) == nil {
                throw ValidationError("--expires: '\(expires)' is not a duration such as 12h, 30d or 2w")
            }
        }

        func run() async throws {
            try await AccountCommand.run(store) { accounts in
                let lifetime = expires.flatMap(DurationParser.seconds)
                let created = try await accounts.createToken(userName: user, name: name, expiresIn: lifetime)
                print(created.token)
                CommandFailure.printNote("created token \(created.record.id) for '\(user)'; it is shown this once")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List tokens (ids and metadata, never a secret).",
            discussion: "Example: comfygate tokens list --user alice --json")
        @Option(help: ArgumentHelp("Only this user's tokens.", valueName: "name")) var user: String?
        @Flag(help: "Print JSON: {\"version\": 1, \"tokens\": […]}.") var json = false
        @OptionGroup var store: StoreOptions

        func run() async throws {
            try await AccountCommand.run(store) { accounts in
                let now = Date()
                let tokens = try await accounts.listTokens(userName: user)
                if json {
                    try Output.printJSON([
                        "version": 1,
                        "tokens": tokens.map { token, owner in
                            [
                                "id": token.id, "user": owner, "name": token.name, "kind": token.kindName,
                                "state": token.state(at: now), "created_at": Output.timestamp(token.createdAt),
                                "expires_at": token.expiresAt.map(Output.timestamp) ?? NSNull(),
                                "last_used_at": token.lastUsedAt.map(Output.timestamp) ?? NSNull(),
                            ] as [String: any Sendable]
                        },
                    ] as [String: any Sendable])
                } else {
                    Output.printTable(
                        header: ["ID", "USER", "NAME", "KIND", "STATE", "CREATED", "EXPIRES", "LAST USED"],
                        rows: tokens.map { token, owner in
                            [token.id, owner, token.name, token.kindName, token.state(at: now), Output.timestamp(token.createdAt),
                             token.expiresAt.map(Output.timestamp) ?? "never", token.lastUsedAt.map(Output.timestamp) ?? "never"]
                        }
                    )
                }
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke a token by id; it stops working at once.", discussion: "Example: comfygate tokens revoke 7Hq2mXpL0aZc")
        @Argument(help: ArgumentHelp("The token id shown by 'tokens list'.", valueName: "id")) var id: String
        @OptionGroup var store: StoreOptions

        func run() async throws {
            try await AccountCommand.run(store) { accounts in
                try await accounts.revokeToken(id: id)
                CommandFailure.printNote("revoked token \(id)")
            }
        }
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Accept an existing deployment's raw token by importing its bcrypt hash.",
            discussion: """
                FILE holds the hash on its first line (a whole-file token hash, or ComfyUI-Login's login/PASSWORD).
                Clients then present the raw token the hash was made from; only the hash is stored.

                Example: comfygate tokens import --user qwen-api --bcrypt-hash-file \\
                    ComfyUI/login/PASSWORD --name migrated
                """
        )
        @Option(help: ArgumentHelp("The owner.", valueName: "name")) var user: String
        @Option(name: .customLong("bcrypt-hash-file"), help: ArgumentHelp("File whose first line is a $2a$/$2b$/$2y$ bcrypt hash.", valueName: "file")) var file: String
        @Option(help: ArgumentHelp("A label.", valueName: "label")) var name: String?
        @OptionGroup var store: StoreOptions

        func run() async throws {
            try await AccountCommand.run(store) { accounts in
                let text: String
                do {
                    text = try String(contentsOfFile: file, encoding: .utf8)
                } catch {
                    throw CommandFailure.failed("cannot read \(file): \(CommandFailure.reason(error))")
                }
                let firstLine = text.split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init) ?? ""
                let record: APIToken
                do {
                    record = try await accounts.importBcryptToken(userName: user, hash: firstLine, name: name)
                } catch let error as BcryptHashError {
                    throw CommandFailure.failed("\(file): \(error)")
                }
                print(record.id)
                CommandFailure.printNote("imported bcrypt token \(record.id) for '\(user)'")
            }
        }
    }
}
