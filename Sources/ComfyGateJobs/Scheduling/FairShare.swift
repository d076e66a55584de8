public import Foundation

/// Decides which waiting job ComfyUI gets next, so that one busy user cannot hold the GPU while others wait.
///
/// Among the users with work waiting, the one who used the least GPU time over the recent window, divided by
/// their weight, goes first; each user's own jobs go first in, first out. Time a job has been running so far
/// counts as use, so a user whose job holds the GPU right now is behind one who has nothing running. Ties go
/// to the user with fewer jobs handed to ComfyUI over the window, then to the one whose oldest job waited longest.
public struct FairShare: Sendable {
    /// A job the gateway holds, not yet handed to ComfyUI.
    public struct WaitingJob: Sendable, Equatable {
        public var id: String
        public var userID: String
        public var queuedAt: Date

        public init(id: String, userID: String, queuedAt: Date) {
            self.id = id
            self.userID = userID
            self.queuedAt = queuedAt
        }
    }

    /// Where a user stands at the moment of choosing.
    public struct Standing: Sendable, Equatable {
        /// GPU seconds over the window: finished jobs, plus how long their running jobs have run so far.
        public var usedSeconds: Double
        /// Their share of the GPU relative to others (1 by default; 2 gets twice the time of a user with 1; 0 is
        /// served only when nobody else waits).
        public var weight: Double
        /// Their jobs handed to ComfyUI over the window, finished or not: what tells apart users whose jobs took
        /// no measurable GPU time.
        public var handedOver: Int
        /// What one more of their jobs is expected to cost, in GPU seconds (their recent mean, say).
        public var expectedJobSeconds: Double

        public init(usedSeconds: Double = 0, weight: Double = 1, handedOver: Int = 0, expectedJobSeconds: Double = 1) {
            self.usedSeconds = usedSeconds
            self.weight = weight
            self.handedOver = handedOver
            self.expectedJobSeconds = expectedJobSeconds
        }
    }

    public init() {}

    /// The job to hand to ComfyUI next, or nil when none waits. Users missing from `standings` stand at zero.
    public func next(of waiting: [WaitingJob], standings: [String: Standing]) -> WaitingJob? {
        var queues = Self.queues(of: waiting)
        guard let user = Self.user(toServe: queues, standings: standings) else { return nil }
        return queues[user]?.removeFirst()
    }

    /// Every waiting job in the order they would be handed to ComfyUI if nothing else changed: each job taken
    /// adds its user's expected job cost to their use. This is the queue a user is shown.
    public func order(of waiting: [WaitingJob], standings: [String: Standing]) -> [WaitingJob] {
        var queues = Self.queues(of: waiting)
        var standings = standings
        var ordered: [WaitingJob] = []
        ordered.reserveCapacity(waiting.count)
        while let user = Self.user(toServe: queues, standings: standings), let job = queues[user]?.removeFirst() {
            ordered.append(job)
            if queues[user]?.isEmpty == true { queues[user] = nil }
            var standing = standings[user] ?? Standing()
            standing.usedSeconds += standing.expectedJobSeconds
            standing.handedOver += 1
            standings[user] = standing
        }
        return ordered
    }

    /// Each user's waiting jobs, oldest first (the input order breaks ties of equal times).
    private static func queues(of waiting: [WaitingJob]) -> [String: [WaitingJob]] {
        var queues: [String: [WaitingJob]] = [:]
        for job in waiting { queues[job.userID, default: []].append(job) }
        for user in queues.keys {
            queues[user] = queues[user]!.enumerated()
                .sorted { ($0.element.queuedAt, $0.offset) < ($1.element.queuedAt, $1.offset) }
                .map(\.element)
        }
        return queues
    }

    /// The user whose turn it is among those with jobs waiting.
    private static func user(toServe queues: [String: [WaitingJob]], standings: [String: Standing]) -> String? {
        var best: (user: String, key: (Double, Int, Date))?
        for (user, jobs) in queues {
            guard let oldest = jobs.first else { continue }
            let standing = standings[user] ?? Standing()
            let share = standing.weight > 0 ? standing.usedSeconds / standing.weight : .infinity
            let key = (share, standing.handedOver, oldest.queuedAt)
            if let current = best, !(key < current.key || (key == current.key && user < current.user)) { continue }
            best = (user, key)
        }
        return best?.user
    }
}
