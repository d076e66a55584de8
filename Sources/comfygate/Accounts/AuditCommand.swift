import ArgumentParser
import ComfyGateCore
import Foundation

/// `comfygate audit`: the audit trail — sign-ins, tokens, account and quota changes — newest first.
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Show the audit trail (sign-ins, tokens, account and quota changes), newest first.",
        discussion: """
            Examples:
              comfygate audit --since 24h
              comfygate audit --user alice --json
            """
    )

    @Option(help: ArgumentHelp("Only events about this user.", valueName: "name")) var user: String?
    @Option(help: ArgumentHelp("How far back: 90m, 24h, 7d, … (default: everything kept).", valueName: "duration"))
    var since: String?
    @Option(help: ArgumentHelp("At most this many events (default 1000).", valueName: "count")) var limit = 1000
    @Flag(help: "Print JSON (version 1): {\"version\": 1, \"events\": [{\"time\", \"action\", \"user\", \"client\", \"detail\"}]}.")
    var json = false
    @OptionGroup var store: StoreOptions

    func validate() throws {
        if let since, DurationParser.seconds(since) == nil {
            throw ValidationError("--since: '\(since)' is not a duration such as 90m, 24h or 7d")
        }
        guard (1...1_000_000).contains(limit) else { throw ValidationError("--limit must be 1 to 1000000") }
    }

    func run() async throws {
        try await AccountCommand.run(store) { accounts in
            let after = since.flatMap(DurationParser.seconds).map { Date().addingTimeInterval(-$0) }
            let wanted = user?.lowercased()
            // The store keeps the newest first; filters read up to ten times the limit to fill it.
            let events = try await accounts.store.auditEvents(limit: wanted == nil && after == nil ? limit : limit * 10)
                .filter { event in
                    (wanted == nil || event.userName?.lowercased() == wanted) && (after.map { event.time >= $0 } ?? true)
                }
                .prefix(limit)
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            if json {
                try Output.printJSON([
                    "version": 1,
                    "events": events.map { event in
                        [
                            "time": formatter.string(from: event.time), "action": event.action,
                            "user": event.userName ?? NSNull(), "client": event.clientAddress ?? NSNull(), "detail": event.detail,
                        ] as [String: any Sendable]
                    },
                ] as [String: any Sendable])
            } else {
                Output.printTable(
                    header: ["TIME", "ACTION", "USER", "CLIENT", "DETAIL"],
                    rows: events.map { [formatter.string(from: $0.time), $0.action, $0.userName ?? "-", $0.clientAddress ?? "-", $0.detail] })
            }
        }
    }
}
