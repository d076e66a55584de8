import ComfyGateCore
import ComfyGateJobs
import ComfyGatePolicy
import Foundation
import Testing

@Suite struct V2RepresentationTests {
    static let created = Date(timeIntervalSince1970: 1_790_000_000.25)

    static func job(state: JobState = .succeeded) -> Job {
        Job(
            id: "0f8e7d6c-0000-4000-8000-000000000001", userID: "id-alice", source: .v2, state: state, workflow: "{}",
            metadata: #"{"run":"7"}"#, createdAt: created, startedAt: created.addingTimeInterval(2),
            completedAt: state.isFinished ? created.addingTimeInterval(5) : nil,
            outputs: [JobOutput(nodeID: "9", fileName: "a_00001_.png", subfolder: "users/alice", mediaKind: .image, contentType: "image/png", sizeBytes: 812)],
            failure: state == .failed
                ? JobFailure(code: "execution_error", message: "boom", nodeID: "3", classType: "KSampler", details: #"{"traceback": ["a\n", "b\n"]}"#)
                : nil)
    }

    @Test func aJobHasEveryRequiredKeyWithHostRelativeLinksAndDatesInUTC() throws {
        let json = V2Representation.job(Self.job(), origin: "http://127.0.0.1:8189", now: Self.created)
        let keys = Set(json.members?.map(\.key) ?? [])
        for required in ["id", "status", "created_at", "started_at", "completed_at", "expires_at", "queue_position", "progress", "outputs", "error", "urls"] {
            #expect(keys.contains(required), "\(required) missing")
        }
        #expect(json["status"] == .string("succeeded"))
        #expect(json["created_at"] == .string("2026-09-21T14:13:20.250Z"))
        #expect(json["queue_position"] == .null && json["error"] == .null)
        #expect(json["urls"]?["self"] == .string("/api/v2/jobs/0f8e7d6c-0000-4000-8000-000000000001"))
        #expect(json["urls"]?["events"] == .string("/api/v2/jobs/0f8e7d6c-0000-4000-8000-000000000001/events"))
        #expect(json["metadata"]?["run"] == .string("7"))
        let output = try #require(json["outputs"]?.arrayValue?.first)
        #expect(output["type"] == .string("image") && output["size_bytes"] == .number("812"))
        #expect(output["hash"] == .null, "the key is present even while the hash is unknown")
        #expect(output["url"]?.stringValue?.hasPrefix("http://127.0.0.1:8189/api/v2/assets/") == true)
    }

    @Test func aFailureIsAJobErrorWithItsTraceback() {
        let error = V2Representation.job(Self.job(state: .failed), origin: "http://h", now: Self.created)["error"]
        #expect(error?["code"] == .string("node_execution_error"))
        #expect(error?["node_id"] == .string("3") && error?["class_type"] == .string("KSampler"))
        #expect(error?["traceback"] == .string("a\nb\n"))
    }

    @Test func errorsComeInTheEnvelope() {
        let envelope = V2Representation.errorEnvelope(code: "queue_full", message: "you have 2 jobs waiting")
        #expect(String(decoding: envelope.serialized(), as: UTF8.self)
            == #"{"error":{"code":"queue_full","message":"you have 2 jobs waiting","details":null}}"#)
    }
}
