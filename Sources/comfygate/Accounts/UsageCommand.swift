import ArgumentParser
import ComfyGateCore
import Foundation

/// `comfygate usage`: what each user's jobs amounted to over a recent period.
struct UsageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "usage",
        abstract: "Report jobs, GPU seconds and time waited in the queue per user.",
        discussion: """
            Examples:
              comfygate usage
              comfygate usage --since 7d --json   # {"version": 1, "since_seconds": \\
                  604800, "users": [...]}
            """
    )

    @Option(help: ArgumentHelp("How far back to count jobs, by when they were submitted: 90m, 24h, 7d, … (default 24h).", valueName: "duration"))
    var since: String = "24h"
    @Flag(help: "Print JSON (version 1).") var json = false
    @OptionGroup var store: StoreOptions

    func validate() throws {
        guard DurationParser.seconds(since) != nil else { throw ValidationError("--since: '\(since)' is not a duration such as 90m, 24h or 7d") }
    }

    func run() async throws {
        let period = DurationParser.seconds(since) ?? 86_400
        try await AccountCommand.run(store) { accounts in
            let now = Date()
            let summaries = try await accounts.store.usage(from: now.addingTimeInterval(-period), to: now.addingTimeInterval(1))
            let names = Dictionary(try await accounts.store.users().map { ($0.id, $0.name) }, uniquingKeysWith: { first, _ in first })
            let rows = summaries.map { summary in
                (name: names[summary.userID] ?? summary.userID, summary: summary,
                 meanWait: summary.dispatchedJobs > 0 ? summary.waitSeconds / Double(summary.dispatchedJobs) : nil)
            }.sorted { $0.name < $1.name }
            if json {
                try Output.printJSON([
                    "version": 1,
                    "since_seconds": period,
                    "users": rows.map { row in
                        [
                            "user": row.name, "user_id": row.summary.userID, "jobs": row.summary.jobs,
                            "finished_jobs": row.summary.finishedJobs, "dispatched_jobs": row.summary.dispatchedJobs,
                            "gpu_seconds": row.summary.gpuSeconds, "wait_seconds": row.summary.waitSeconds,
                            "mean_wait_seconds": row.meanWait ?? NSNull(),
                        ] as [String: any Sendable]
                    },
                ] as [String: any Sendable])
            } else {
                Output.printTable(
                    header: ["USER", "JOBS", "FINISHED", "GPU SECONDS", "MEAN WAIT"],
                    rows: rows.map { row in
                        [row.name, String(row.summary.jobs), String(row.summary.finishedJobs),
                         String(format: "%.1f", row.summary.gpuSeconds), row.meanWait.map { String(format: "%.1fs", $0) } ?? "-"]
                    }
                )
            }
        }
    }
}
