import ComfyGateCore
import ComfyGateSQLite
import Foundation
import Testing

/// `comfygate users quota` and `comfygate usage`, run as the built binary against a data directory.
@Suite struct QuotaAndUsageCommandTests {
    private static func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    private static func limit(_ report: [String: Any], _ name: String) -> (value: Double?, from: String?) {
        let entry = (report["limits"] as? [String: Any])?[name] as? [String: Any]
        return (entry?["value"] as? Double, entry?["from"] as? String)
    }

    @Test func quotasShowWhereEachLimitComesFromAndChangeAsAsked() async throws {
        let directory = try AccountCommandTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = directory.appendingPathComponent("comfygate.toml")
        try "[quotas.user]\nmax_waiting_jobs = 5\njobs_per_day = 100\n".write(to: config, atomically: true, encoding: .utf8)
        let common = ["--data", directory.appendingPathComponent("data").path, "--config", config.path]
        #expect(try await CommandRunner.run(["users", "add", "alice", "--role", "user"] + common).status == 0)

        let initial = try Self.json(try await CommandRunner.run(["users", "quota", "alice", "--json"] + common).stdout)
        #expect(initial["version"] as? Int == 1)
        #expect(Self.limit(initial, "max_waiting_jobs") == (5, "role user"))
        #expect(Self.limit(initial, "gpu_seconds_per_day") == (nil, "none"))
        #expect(initial["weight"] as? Double == 1)

        let changed = try await CommandRunner.run(
            ["users", "quota", "alice", "--jobs-per-day", "10", "--gpu-seconds-per-day", "900.5", "--weight", "2", "--json"] + common)
        #expect(changed.status == 0, "\(changed.stderr)")
        #expect(changed.stderr.contains("quota of 'alice' changed"))
        let report = try Self.json(changed.stdout)
        #expect(Self.limit(report, "jobs_per_day") == (10, "user"))
        #expect(Self.limit(report, "gpu_seconds_per_day") == (900.5, "user"))
        #expect(Self.limit(report, "max_waiting_jobs") == (5, "role user"), "untouched limits keep their source")
        #expect(report["weight"] as? Double == 2)

        let unset = try Self.json(try await CommandRunner.run(["users", "quota", "alice", "--unset", "jobs_per_day", "--json"] + common).stdout)
        #expect(Self.limit(unset, "jobs_per_day") == (100, "role user"))
        #expect(Self.limit(unset, "gpu_seconds_per_day") == (900.5, "user"))

        let table = try await CommandRunner.run(["users", "quota", "alice", "--reset"] + common)
        #expect(table.status == 0)
        #expect(table.stdout.hasPrefix("LIMIT"))
        #expect(table.stdout.contains("gpu_seconds_per_day  -"), "reset: \(table.stdout)")
        #expect(table.stdout.contains("weight               1"))

        let store = try SQLiteStore(path: directory.appendingPathComponent("data/comfygate.sqlite").path)
        #expect(try await store.userQuotas().isEmpty, "settings equal to the defaults are not kept")
        #expect(try await store.auditEvents(limit: 10).filter { $0.action == "user.quota" }.count == 3)
    }

    @Test(arguments: [
        (["--max-waiting-jobs=-1"], "--max-waiting-jobs must be 0 or more"),
        (["--weight", "nan"], "--weight must be a number, 0 or more"),
        (["--unset", "per_day"], "--unset: 'per_day' is not one of max_waiting_jobs, jobs_per_day, gpu_seconds_per_day, max_image_area"),
    ])
    func badQuotaOptionsAreUsageErrors(_ options: [String], _ message: String) async throws {
        let directory = try AccountCommandTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let result = try await CommandRunner.run(["users", "quota", "alice"] + options + ["--data", directory.path])
        #expect(result.status == 2)
        #expect(result.stderr.contains(message), "\(result.stderr)")
    }

    @Test func anUnknownUsersQuotaIsAnError() async throws {
        let directory = try AccountCommandTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        #expect(try await CommandRunner.run(["users", "add", "alice", "--role", "user", "--data", directory.path]).status == 0)
        let result = try await CommandRunner.run(["users", "quota", "nobody", "--weight", "3", "--data", directory.path])
        #expect(result.status == 1)
        #expect(result.stderr.contains("user 'nobody' does not exist"))
    }

    @Test func usageSumsEachUsersJobsOverThePeriod() async throws {
        let directory = try AccountCommandTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let data = ["--data", directory.appendingPathComponent("data").path]
        #expect(try await CommandRunner.run(["users", "add", "alice", "--role", "user"] + data).status == 0)
        #expect(try await CommandRunner.run(["users", "add", "bob", "--role", "user"] + data).status == 0)
        let store = try SQLiteStore(path: directory.appendingPathComponent("data/comfygate.sqlite").path)
        let alice = try #require(try await store.user(named: "alice"))
        let bob = try #require(try await store.user(named: "bob"))
        let now = Date()
        func job(_ user: User, createdAgo: TimeInterval, waited: TimeInterval?, gpu: Double, state: JobState) -> Job {
            var job = Job(userID: user.id, source: .native, state: state, workflow: "{}", createdAt: now.addingTimeInterval(-createdAgo))
            job.dispatchedAt = waited.map { job.createdAt.addingTimeInterval($0) }
            job.gpuSeconds = gpu
            return job
        }
        for fixture in [
            job(alice, createdAgo: 600, waited: 4, gpu: 30, state: .succeeded),
            job(alice, createdAgo: 300, waited: 8, gpu: 12.5, state: .failed),
            job(alice, createdAgo: 60, waited: nil, gpu: 0, state: .queued),
            job(alice, createdAgo: 3 * 86_400, waited: 1, gpu: 500, state: .succeeded),
            job(bob, createdAgo: 120, waited: 2, gpu: 0, state: .running),
        ] {
            try await store.insertJob(fixture)
        }

        let result = try await CommandRunner.run(["usage", "--json"] + data)
        #expect(result.status == 0, "\(result.stderr)")
        let usage = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(usage["version"] as? Int == 1 && usage["since_seconds"] as? Double == 86_400)
        let rows = try #require(usage["users"] as? [[String: Any]])
        #expect(rows.map { $0["user"] as? String } == ["alice", "bob"])
        #expect(rows[0]["jobs"] as? Int == 3 && rows[0]["finished_jobs"] as? Int == 2)
        #expect(rows[0]["gpu_seconds"] as? Double == 42.5)
        #expect(rows[0]["mean_wait_seconds"] as? Double == 6)
        #expect(rows[1]["jobs"] as? Int == 1 && rows[1]["finished_jobs"] as? Int == 0)

        let week = try await CommandRunner.run(["usage", "--since", "7d"] + data)
        #expect(week.stdout.hasPrefix("USER"))
        #expect(week.stdout.contains("542.5"), "the older job counts over a week: \(week.stdout)")
        #expect(try await CommandRunner.run(["usage", "--since", "soon"] + data).status == 2)
    }
}
