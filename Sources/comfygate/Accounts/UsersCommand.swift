import ArgumentParser
import ComfyGateCore
import Foundation
import Logging

/// `comfygate users`: manage who may use the gateway. Works against the same store while `serve` runs.
struct UsersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "users",
        abstract: "Add, list, disable users and set their passwords.",
        discussion: """
            Every subcommand finds the store as `serve` does (--data, COMFYGATE_DATA, --config, --database-url) and \
            works while the gateway runs. Only `users add` creates a missing store.

            Examples:
              comfygate users add alice --role user   # prints a random password
              printf '%s\\n' "$PASSWORD" | comfygate users add bob --role admin \\
                  --password-stdin
              comfygate users list --json
              comfygate users disable alice
            """,
        subcommands: [Add.self, List.self, Disable.self, Enable.self, Passwd.self, Quota.self]
    )

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a user. Without --password-stdin a random password is generated and printed on stdout.",
            discussion: "Example: comfygate users add alice --role user --data /var/lib/comfygate"
        )

        @Argument(help: ArgumentHelp("The user name (letters, digits, '.', '_', '-', '@').", valueName: "name")) var name: String
        @Option(help: ArgumentHelp("admin, user or viewer.", valueName: "role")) var role: RoleArgument
        @Flag(name: .customLong("password-stdin"), help: "Read the password from standard input.") var passwordStdin = false
        @OptionGroup var store: StoreOptions

        func run() async throws {
            try await AccountCommand.run(store, creatingStore: true) { accounts in
                let password = passwordStdin ? try PasswordInput.readStandardInput() : TokenFormat.randomBase62(count: 20)
                let user = try await accounts.addUser(name: name, role: role.role, password: password)
                CommandFailure.printNote("added user '\(user.name)' (role \(user.role))")
                if !passwordStdin { print(password) }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List users (never a secret).",
            discussion: "Example: comfygate users list --json")
        @Flag(help: "Print JSON: {\"version\": 1, \"users\": […]}.") var json = false
        @OptionGroup var store: StoreOptions

        func run() async throws {
            try await AccountCommand.run(store) { accounts in
                let users = try await accounts.store.users()
                if json {
                    try Output.printJSON([
                        "version": 1,
                        "users": users.map { user in
                            [
                                "name": user.name, "id": user.id, "role": user.role.rawValue, "disabled": user.isDisabled,
                                "has_password": user.passwordHash != nil, "created_at": Output.timestamp(user.createdAt),
                            ] as [String: any Sendable]
                        },
                    ] as [String: any Sendable])
                } else {
                    Output.printTable(
                        header: ["NAME", "ROLE", "STATE", "PASSWORD", "CREATED"],
                        rows: users.map { user in
                            [user.name, user.role.rawValue, user.isDisabled ? "disabled" : "active",
                             user.passwordHash == nil ? "no" : "yes", Output.timestamp(user.createdAt)]
                        }
                    )
                }
            }
        }
    }

    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Disable a user: no login, no tokens, sessions ended.", discussion: "Example: comfygate users disable alice")
        @Argument(help: ArgumentHelp("The user.", valueName: "name")) var name: String
        @OptionGroup var store: StoreOptions

        func run() async throws {
            try await AccountCommand.run(store) { accounts in
                try await accounts.setDisabled(userName: name, true)
                CommandFailure.printNote("disabled user '\(name)'")
            }
        }
    }

    struct Enable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Enable a disabled user again.", discussion: "Example: comfygate users enable alice")
        @Argument(help: ArgumentHelp("The user.", valueName: "name")) var name: String
        @OptionGroup var store: StoreOptions

        func run() async throws {
            try await AccountCommand.run(store) { accounts in
                try await accounts.setDisabled(userName: name, false)
                CommandFailure.printNote("enabled user '\(name)'")
            }
        }
    }

    struct Passwd: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set a user's password and end their sessions. Without --password-stdin a random one is printed.",
            discussion: "Example: comfygate users passwd alice --password-stdin < new-password.txt"
        )
        @Argument(help: ArgumentHelp("The user.", valueName: "name")) var name: String
        @Flag(name: .customLong("password-stdin"), help: "Read the password from standard input.") var passwordStdin = false
        @OptionGroup var store: StoreOptions

        func run() async throws {
            try await AccountCommand.run(store) { accounts in
                let password = passwordStdin ? try PasswordInput.readStandardInput() : TokenFormat.randomBase62(count: 20)
                try await accounts.setPassword(userName: name, password: password)
                CommandFailure.printNote("password changed for '\(name)'; their sessions were ended")
                if !passwordStdin { print(password) }
            }
        }
    }
}

/// A role as typed on the command line.
struct RoleArgument: ExpressibleByArgument, Sendable {
    let role: Role

    init?(argument: String) {
        guard let role = Role(rawValue: argument.lowercased()) else { return nil }
        self.role = role
    }

    static var allValueStrings: [String] { Role.allCases.map(\.rawValue) }
}

/// Shared plumbing of the account commands: configuration, store, errors.
enum AccountCommand {
    /// - Parameter creatingStore: whether the command may create an embedded store that is not there yet (only
    ///   `users add` may: every other account command on a missing store says where it looked).
    static func run(
        _ options: StoreOptions, creatingStore: Bool = false, _ body: @escaping @Sendable (AccountService) async throws -> Void
    ) async throws {
        try await run(options, creatingStore: creatingStore) { accounts, _ in try await body(accounts) }
    }

    /// ``run(_:creatingStore:_:)`` for commands that also read the configuration (role quotas, say).
    static func run(
        _ options: StoreOptions, creatingStore: Bool = false,
        _ body: @escaping @Sendable (AccountService, GatewayConfiguration) async throws -> Void
    ) async throws {
        try await CommandFailure.report {
            let configuration = try options.resolve()
            var logger = Logger(label: "comfygate")
            logger.logLevel = .warning
            let missing = creatingStore ? nil : options.whereTheDataDirectoryCameFrom()
            try await StoreAccess.withStore(configuration, logger: logger, missingStoreSource: missing) { store in
                try await body(AccountService(store: store), configuration)
            }
        }
    }
}

/// Passwords read from standard input: the first line, without its line ending.
enum PasswordInput {
    static func readStandardInput() throws -> String {
        guard let line = readLine(strippingNewline: true), !line.isEmpty else {
            throw CommandFailure.usage("--password-stdin: no password on standard input")
        }
        return line.hasSuffix("\r") ? String(line.dropLast()) : line
    }
}
