import ComfyGateCore
import Foundation
import Synchronization
import Testing

@Suite struct DedicatedThreadTests {
    /// More blocking works than there are cores all run at once: each has a thread of its own, where a
    /// dispatch queue would run as many as there are cores (and with them hold every task in the process).
    @Test func moreBlockingWorksThanCoresRunAtOnce() async {
        let count = ProcessInfo.processInfo.activeProcessorCount + 2
        let barrier = Barrier(count: count)
        let outcomes = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<count {
                group.addTask { await DedicatedThread.run(name: "test-worker") { barrier.arriveAndWait(timeout: 20) } }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(outcomes == Array(repeating: true, count: count), "every work saw all the others inside at the same time")
    }

    /// Releases its waiters once `count` of them are waiting together.
    private final class Barrier: Sendable {
        private let count: Int
        private let arrived = Mutex(0)

        init(count: Int) { self.count = count }

        /// Whether all `count` arrived within `timeout` seconds. Blocks the calling thread.
        func arriveAndWait(timeout: TimeInterval) -> Bool {
            arrived.withLock { $0 += 1 }
            let giveUp = Date().addingTimeInterval(timeout)
            while arrived.withLock({ $0 }) < count {
                if Date() > giveUp { return false }
                usleep(1_000)
            }
            return true
        }
    }

    @Test func errorsReachTheCaller() async {
        struct Refused: Error, Equatable {}
        await #expect(throws: Refused()) {
            try await DedicatedThread.run(name: "test-thrower") { () throws(Refused) -> Int in throw Refused() }
        }
        #expect(await DedicatedThread.run(name: "test-value") { 6 * 7 } == 42)
    }
}
