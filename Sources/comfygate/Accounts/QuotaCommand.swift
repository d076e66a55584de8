import ArgumentParser
import ComfyGateCore
import Foundation

extension UsersCommand {
    /// `comfygate users quota NAME`: show or change a user's limits (over their role's) and fair-share weight.
    struct Quota: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show or set a user's quota: limits over their role's ([quotas.<role>]) and their share of the GPU.",
            discussion: """
                Without options, shows the limits that apply and where each comes from.

                Examples:
                  comfygate users quota alice
                  comfygate users quota alice --jobs-per-day 50 --gpu-seconds-per-day \\
                      1800 --weight 2
                  comfygate users quota alice --unset jobs_per_day --json
                """
        )

        @Argument(help: ArgumentHelp("The user.", valueName: "name")) var name: String
        @Option(name: .customLong("max-waiting-jobs"), help: ArgumentHelp("Most jobs queued or running at once.", valueName: "count")) var maxWaitingJobs: Int?
        @Option(name: .customLong("jobs-per-day"), help: ArgumentHelp("Most jobs submitted over 24 hours.", valueName: "count")) var jobsPerDay: Int?
        @Option(name: .customLong("gpu-seconds-per-day"), help: ArgumentHelp("Most GPU seconds used over 24 hours.", valueName: "seconds")) var gpuSecondsPerDay: Double?
        @Option(name: .customLong("max-image-area"), help: ArgumentHelp("Largest image a workflow may ask for, in pixels.", valueName: "pixels")) var maxImageArea: Int?
        @Option(help: ArgumentHelp("Share of the GPU against other users (default 1; 2 gets twice the time; 0 only when nobody else waits).", valueName: "number"))
        var weight: Double?
        @Option(help: ArgumentHelp("Remove an override, falling back to the role's limit (repeatable): \(Self.settingList).", valueName: "setting"))
        var unset: [String] = []

        private static let settingList = QuotaLimits.Setting.allCases.map(\.rawValue).joined(separator: ", ")
        @Flag(help: "Remove every override and set the weight back to 1.") var reset = false
        @Flag(help: "Print JSON (version 1).") var json = false
        @OptionGroup var store: StoreOptions

        func validate() throws {
            for (option, value) in [("--max-waiting-jobs", maxWaitingJobs), ("--jobs-per-day", jobsPerDay), ("--max-image-area", maxImageArea)] {
                if let value, value < 0 { throw ValidationError("\(option) must be 0 or more") }
            }
            for (option, value) in [("--gpu-seconds-per-day", gpuSecondsPerDay), ("--weight", weight)] {
                if let value, !(value.isFinite && value >= 0) { throw ValidationError("\(option) must be a number, 0 or more") }
            }
            if let unknown = unset.first(where: { QuotaLimits.Setting(rawValue: $0) == nil }) {
                throw ValidationError("--unset: '\(unknown)' is not one of \(Self.settingList)")
            }
        }

        private var changes: Bool {
            reset || !unset.isEmpty || weight != nil || maxWaitingJobs != nil || jobsPerDay != nil || gpuSecondsPerDay != nil
                || maxImageArea != nil
        }

        func run() async throws {
            try await AccountCommand.run(store) { accounts, configuration in
                var (user, quota) = try await accounts.quota(userName: name)
                if changes {
                    quota = try await accounts.updateQuota(userName: name) { quota in
                        if reset { quota = UserQuota(userID: quota.userID) }
                        for setting in unset.compactMap(QuotaLimits.Setting.init) { quota.limits[setting] = nil }
                        quota.limits = QuotaLimits(
                            maxWaitingJobs: maxWaitingJobs, jobsPerDay: jobsPerDay, gpuSecondsPerDay: gpuSecondsPerDay,
                            maxImageArea: maxImageArea
                        ).merging(over: quota.limits)
                        if let weight { quota.weight = weight }
                    }
                    CommandFailure.printNote("quota of '\(user.name)' changed")
                }
                let roleLimits = configuration.quotas[user.role] ?? QuotaLimits()
                let rows = QuotaLimits.Setting.allCases.map { setting -> (String, Double?, String) in
                    if let own = quota.limits[setting] { return (setting.rawValue, own, "user") }
                    if let role = roleLimits[setting] { return (setting.rawValue, role, "role \(user.role)") }
                    return (setting.rawValue, nil, "none")
                }
                if json {
                    var limits: [String: any Sendable] = [:]
                    for (setting, value, source) in rows {
                        limits[setting] = ["value": value ?? NSNull(), "from": source] as [String: any Sendable]
                    }
                    try Output.printJSON(
                        ["version": 1, "user": user.name, "role": user.role.rawValue, "weight": quota.weight, "limits": limits] as [String: any Sendable])
                } else {
                    Output.printTable(
                        header: ["LIMIT", "VALUE", "FROM"],
                        rows: rows.map { [$0.0, $0.1.map(Self.number) ?? "-", $0.2] }
                            + [["weight", Self.number(quota.weight), quota.weight == 1 ? "default" : "user"]])
                }
            }
        }

        /// A number as typed: whole numbers without a fraction.
        private static func number(_ value: Double) -> String {
            value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
        }
    }
}
