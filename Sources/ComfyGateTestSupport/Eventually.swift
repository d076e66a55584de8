/// Polls `condition` every 10 ms until it holds or `timeout` has passed, and answers whether it held.
///
/// The bound is wall-clock time, not a count of polls, and generous by default (it costs nothing when the
/// condition comes true): while the whole suite starts at once on a small machine, the other side of a
/// connection may need many seconds to be scheduled, and a poll that gives up early reports a failure that
/// is not there.
public func eventually(within timeout: Duration = .seconds(30), _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(10))
    }
    return try await condition()
}
