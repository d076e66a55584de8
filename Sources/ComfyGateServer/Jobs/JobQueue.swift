import ComfyGateCore
import ComfyGateJobs
import ComfyGatePolicy
import Foundation
import Logging
import Synchronization

/// The gateway's queue in front of ComfyUI. Every prompt accepted is a job in the store; ComfyUI is handed at
/// most `in_flight` of them at a time, chosen by ``FairShare``; the rest wait in the gateway, already checked
/// against ComfyUI's node catalog. Jobs out at ComfyUI are watched until its history has them (or it forgot
/// them, after a restart: they queue again), so they outlive restarts of either side and none runs twice.
actor JobQueue {
    /// What a submission is answered with.
    struct Answer: Sendable {
        var status: Int
        var body: [UInt8]
        /// Seconds for `Retry-After`, on a refusal over a quota.
        var retryAfter: Int?
    }

    /// What became of a submission.
    enum Admission: Sendable {
        /// Over one of the caller's limits: no job.
        case overQuota(QuotaRefusal)
        /// Refused as ComfyUI refuses a prompt (its own answer at hand-over, or the same shape from the gateway's
        /// check of a prompt that must wait): no job.
        case refused(status: Int, answer: [UInt8])
        /// Handed to ComfyUI at once, which accepted it with `answer`.
        case handedOver(Job, answer: [UInt8])
        /// Held in the gateway's queue — or out at ComfyUI with its answer lost, which the watch finds out.
        case held(Job, nodeErrors: PolicyJSON)
    }

    private let store: any GatewayStore
    private let backend: ComfyUIBackend
    private let settings: JobSettings
    private let roleQuotas: [Role: QuotaLimits]
    private let ownership: OwnershipIndex
    private let notices: JobNotices
    /// Tells followers of a job that it changed.
    nonisolated let events: JobEvents
    /// The client id of the gateway's own websocket to ComfyUI, which gets the events of jobs submitted without one.
    private let listenerClientID: String
    private let logger: Logger
    private let now: @Sendable () -> Date
    private let metrics: GatewayMetrics?

    /// Jobs ComfyUI accepted and has not been seen to finish, by id.
    private var inFlight: [String: Job] = [:]
    /// Hand-overs under way, per user: slots taken before ComfyUI has answered.
    private var handingOverByUser: [String: Int] = [:]
    private var handingOver: Int { handingOverByUser.values.reduce(0, +) }
    /// Jobs waiting in the gateway, per user.
    private var queuedByUser: [String: Int] = [:]
    private var pumping = false
    private var pumpAgain = false
    /// The `number` answered for held jobs, counting on like ComfyUI's own.
    private var nextNumber = 0
    private var catalog: (catalog: NodeCatalog, fetchedAt: Date)?
    /// When ComfyUI last failed to give its node catalog: held prompts go unchecked until ``catalogRetry`` later.
    private var catalogUnavailableSince: Date?
    /// The creation time of the latest job: each new one is later by at least ``creationStep``, so first in,
    /// first out holds even for submissions the clock cannot tell apart.
    private var latestCreation = Date.distantPast

    static let creationStep: TimeInterval = 0.001
    /// Each user's jobs queued or out at ComfyUI, for the `queue_remaining` their websockets are told.
    nonisolated let counts: WaitingCounts

    /// How long a node catalog read from ComfyUI is used to check held prompts.
    static let catalogLifetime: TimeInterval = 60
    /// How long after a failed read of the node catalog it is asked for again.
    static let catalogRetry: TimeInterval = 5

    init(
        store: any GatewayStore, backend: ComfyUIBackend, settings: JobSettings, roleQuotas: [Role: QuotaLimits],
        ownership: OwnershipIndex, counts: WaitingCounts, notices: JobNotices, events: JobEvents, listenerClientID: String,
        logger: Logger, now: @escaping @Sendable () -> Date, metrics: GatewayMetrics?
    ) {
        self.metrics = metrics
        self.counts = counts
        self.events = events
        self.listenerClientID = listenerClientID
        self.store = store
        self.backend = backend
        self.settings = settings
        self.roleQuotas = roleQuotas
        self.ownership = ownership
        self.notices = notices
        self.logger = logger
        self.now = now
    }

    // MARK: Start

    /// Loads the unfinished jobs, and the owners of recent ones and of their outputs, from the store.
    func load() async throws {
        let recent = try await store.jobs(userID: nil, states: nil, limit: Self.ownersLoaded, createdBefore: nil)
        latestCreation = recent.first?.createdAt ?? .distantPast
        for job in recent.reversed() {
            ownership.record(prompt: job.id, owner: job.userID)
            ownership.record(files: job.outputs.map(Self.fileReference), owner: job.userID)
        }
        for job in try await store.jobs(inStates: [.queued, .running, .canceling]) {
            ownership.record(prompt: job.id, owner: job.userID)
            if job.state == .queued {
                queuedByUser[job.userID, default: 0] += 1
            } else {
                inFlight[job.id] = job
            }
        }
        publishCounts()
    }

    /// How many of the latest jobs have their owners loaded at start. Outputs land in their owner's folder, which
    /// is theirs anyway; the index matters for jobs still in use.
    static let ownersLoaded = 10_000

    // MARK: Submissions

    /// Takes a native `POST /prompt`, already rewritten for its caller: refused over a quota (429), handed to
    /// ComfyUI at once when a slot is free and nobody waits (ComfyUI's answer, whatever it is), otherwise checked
    /// against ComfyUI's node catalog and held (ComfyUI's answer shapes either way). Runs to its end even when the
    /// calling task is cancelled (the client went away), so no job is left half handed over.
    nonisolated func submit(_ submission: NativeSubmission, caller: Caller) async throws -> Answer {
        try await Task { try await self.admitNative(submission, caller: caller) }.value
    }

    private func admitNative(_ submission: NativeSubmission, caller: Caller) async throws -> Answer {
        let id: String
        if let chosen = submission.promptID {
            if try await isTaken(chosen) { throw PolicyRefusal.conflict("prompt_id already exists") }
            id = chosen
        } else {
            id = UUID().uuidString.lowercased()
        }
        let job = submission.job(id: id, userID: caller.userID, createdAt: now())
        switch try await admit(job, prompt: submission.prompt, targets: submission.partialExecutionTargets, caller: caller) {
        case .overQuota(let refusal):
            return Answer(status: 429, body: Self.json(refusal), retryAfter: refusal.retryAfter)
        case .refused(let status, let answer):
            return Answer(status: status, body: answer)
        case .handedOver(_, let answer):
            return Answer(status: 200, body: answer)
        case .held(let job, let nodeErrors):
            return queuedAnswer(job, nodeErrors: nodeErrors)
        }
    }

    /// Takes a Comfy API v2 job (its graph already resolved to ComfyUI's file names) by the same rules as a native
    /// prompt. Its idempotency key, if any, is claimed only when a job is made: a refusal leaves it free.
    nonisolated func submit(_ job: Job, prompt: PolicyJSON, caller: Caller) async throws -> Admission {
        try await Task { try await self.admit(job, prompt: prompt, targets: nil, caller: caller) }.value
    }

    /// Refuses a submission over a quota; hands it to ComfyUI at once when a slot is free and nobody waits (ComfyUI's
    /// answer, whatever it is); otherwise checks it against ComfyUI's node catalog and holds it. Runs to its end even
    /// when the calling task is cancelled (the client went away), so no job is left half handed over.
    private func admit(_ submitted: Job, prompt: PolicyJSON, targets: [String]?, caller: Caller) async throws -> Admission {
        let time = max(now(), latestCreation.addingTimeInterval(Self.creationStep))
        latestCreation = time
        if let refusal = try await quotaRefusal(for: caller, prompt: prompt, at: time) { return .overQuota(refusal) }
        var job = submitted
        job.createdAt = time
        let id = job.id

        if inFlight.count + handingOver < settings.inFlight, queuedByUser.isEmpty {
            // Owned before ComfyUI sees it: its first events may come before its answer.
            ownership.record(prompt: id, owner: caller.userID)
            beginHandOver(caller.userID)
            job.state = .running
            job.dispatchedAt = time
            job.backend = backend.name
            let outcome: HandOver
            do {
                try await store.insertJob(job)
                outcome = await handOver(job)
            } catch {
                ownership.forget(prompt: id)
                endHandOver(caller.userID)
                throw error
            }
            endHandOver(caller.userID)
            switch outcome {
            case .accepted(let answer):
                publishCounts()
                return .handedOver(job, answer: answer)
            case .refused(let status, let answer):
                // Not accepted, so never a job: the client gets ComfyUI's own answer.
                ownership.forget(prompt: id)
                _ = try await store.deleteJob(id: id)
                return .refused(status: status, answer: answer)
            case .unreachable:
                // ComfyUI may have it or not: the watch finds out, and queues it again only if ComfyUI has not.
                inFlight[id] = job
                publishCounts()
                return .held(job, nodeErrors: .object([]))
            }
        }

        let nodeErrors: PolicyJSON
        switch await validate(prompt, targets: targets) {
        case .refused(let answer):
            return .refused(status: 400, answer: answer.serialized())
        case .accepted(_, let errors):
            nodeErrors = errors
        case nil:
            nodeErrors = .object([])
        }
        try await store.insertJob(job)
        ownership.record(prompt: id, owner: caller.userID)
        hold(job)
        return .held(job, nodeErrors: nodeErrors)
    }

    /// Counts a job the gateway now holds.
    private func hold(_ job: Job) {
        queuedByUser[job.userID, default: 0] += 1
        publishCounts()
        notices.queueChanged(userID: job.userID, remaining: counts.count(of: job.userID))
        Task { await self.pump() }
    }

    /// ComfyUI's answer to a queued prompt: `{"prompt_id", "number", "node_errors"}`.
    private func queuedAnswer(_ job: Job, nodeErrors: PolicyJSON) -> Answer {
        nextNumber += 1
        let answer = PolicyJSON.object([
            .init(key: "prompt_id", value: .string(job.id)),
            .init(key: "number", value: .number(String(nextNumber))),
            .init(key: "node_errors", value: nodeErrors),
        ])
        return Answer(status: 200, body: answer.serialized())
    }

    /// Whether a prompt id is taken, by a job or by a prompt recorded before jobs were kept.
    private func isTaken(_ id: String) async throws -> Bool {
        if ownership.owner(ofPrompt: id) != nil { return true }
        if try await store.job(id: id) != nil { return true }
        return try await store.prompt(id: id) != nil
    }

    /// The submission checked against ComfyUI's node catalog; nil when ComfyUI cannot be asked for it.
    private func validate(_ prompt: PolicyJSON, targets: [String]?) async -> PromptValidation? {
        let time = now()
        let stale = catalog.map { time.timeIntervalSince($0.fetchedAt) > Self.catalogLifetime } ?? true
        if stale, catalogUnavailableSince.map({ time.timeIntervalSince($0) > Self.catalogRetry }) ?? true {
            if let info = try? await backend.objectInfo(), let read = NodeCatalog(objectInfo: info) {
                catalog = (read, time)
                catalogUnavailableSince = nil
            } else {
                catalogUnavailableSince = time
            }
        }
        guard let catalog else { return nil }
        return PromptValidator(catalog: catalog.catalog).validate(prompt, targets: targets)
    }

    /// The output nodes a held job will run, by the node catalog last read.
    func outputsToExecute(of job: Job) -> [String] {
        guard let catalog, let prompt = try? PolicyJSON(parsing: Array(job.workflow.utf8)),
            case .accepted(let outputs, _) = PromptValidator(catalog: catalog.catalog).validate(prompt)
        else { return [] }
        return outputs
    }

    // MARK: Quotas

    private func quotaRefusal(for caller: Caller, prompt: PolicyJSON, at time: Date) async throws -> QuotaRefusal? {
        let roleLimits = Role(rawValue: caller.role.rawValue).flatMap { roleQuotas[$0] } ?? QuotaLimits()
        let userQuota = try await store.userQuota(userID: caller.userID)
        let limits = (userQuota?.limits ?? QuotaLimits()).merging(over: roleLimits)
        guard limits != QuotaLimits() else { return nil }
        let dayStart = time.addingTimeInterval(-86_400)
        var usage = QuotaUsage()
        if limits.maxWaitingJobs != nil {
            usage.waitingJobs = try await store.countJobs(
                userID: caller.userID, states: [.queued, .running, .canceling], createdAfter: nil)
        }
        if let perDay = limits.jobsPerDay {
            usage.jobsToday = try await store.countJobs(userID: caller.userID, states: nil, createdAfter: dayStart)
            if usage.jobsToday >= perDay, perDay > 0 {
                let latest = try await store.jobs(userID: caller.userID, states: nil, limit: perDay, createdBefore: nil)
                usage.nextJobLeavesDay = latest.last.map { $0.createdAt.addingTimeInterval(86_400) }
            }
        }
        if limits.gpuSecondsPerDay != nil {
            usage.gpuSecondsToday = try await store.gpuSeconds(userID: caller.userID, completedAfter: dayStart)[caller.userID] ?? 0
        }
        // The mean job time only tells how long a full queue takes to make room: read it only then.
        let queueIsFull = limits.maxWaitingJobs.map { usage.waitingJobs >= $0 } ?? false
        return QuotaCheck.refusal(
            limits: limits, usage: usage, imageArea: ImageArea.largest(in: prompt),
            expectedWait: queueIsFull ? try await meanJobSeconds(of: caller.userID, at: time) : 0, now: time)
    }

    /// The user's mean GPU time per job over the fair-share window (60 s when they finished none).
    private func meanJobSeconds(of userID: String, at time: Date) async throws -> TimeInterval {
        let since = time.addingTimeInterval(-settings.fairShareWindow)
        let used = try await store.gpuSeconds(userID: userID, completedAfter: since)[userID] ?? 0
        let finished = try await store.countJobs(userID: userID, states: [.succeeded, .failed], createdAfter: since)
        return finished > 0 ? max(1, used / Double(finished)) : 60
    }

    private static func json(_ refusal: QuotaRefusal) -> [UInt8] {
        var members: [PolicyJSON.Member] = [
            .init(key: "error", value: .string(refusal.message)),
            .init(key: "limit", value: .string(refusal.limit.rawValue)),
        ]
        if let retryAfter = refusal.retryAfter {
            members.append(.init(key: "retry_after", value: .number(String(retryAfter))))
        }
        return PolicyJSON.object(members).serialized()
    }

    // MARK: Hand-over

    private enum HandOver {
        case accepted(answer: [UInt8])
        case refused(status: Int, answer: [UInt8])
        case unreachable
    }

    /// Sends a job to ComfyUI; an accepted job is out from then on. When the exchange broke, ComfyUI may or may
    /// not have the job: the caller leaves that to the watch.
    private func handOver(_ job: Job) async -> HandOver {
        guard let body = NativeSubmission.dispatchBody(of: job, defaultClientID: listenerClientID) else {
            return .refused(status: 400, answer: NativeSubmission.unreadableJobAnswer.serialized())
        }
        do {
            let (status, answer) = try await backend.submit(body)
            guard status == 200 else {
                metrics?.dispatchFailed(backend: backend.name, reason: "refused")
                return .refused(status: status, answer: answer)
            }
            inFlight[job.id] = job
            metrics?.jobDispatched(backend: backend.name)
            metrics?.jobWaited(user: job.userID, seconds: max(0, (job.dispatchedAt ?? now()).timeIntervalSince(job.createdAt)))
            return .accepted(answer: answer)
        } catch {
            logger.warning("job not handed to ComfyUI", metadata: ["job": "\(job.id)", "error": "\(error)"])
            metrics?.dispatchFailed(backend: backend.name, reason: "unreachable")
            return .unreachable
        }
    }

    /// Hands waiting jobs to ComfyUI while slots are free, in fair order. Runs once at a time; a call while it runs
    /// makes it look again before it ends.
    func pump() async {
        if pumping {
            pumpAgain = true
            return
        }
        pumping = true
        defer { pumping = false }
        repeat {
            pumpAgain = false
            while inFlight.count + handingOver < settings.inFlight, !queuedByUser.isEmpty {
                let next: Job?
                do {
                    next = try await nextJob()
                } catch is CancellationError {
                    return
                } catch {
                    logger.error("the job queue could not read the store", metadata: ["error": "\(error)"])
                    return
                }
                guard let job = next else {
                    // The counts were off (another process changed the store): read them again.
                    try? await recount()
                    break
                }
                guard await dispatch(job) else { return }
            }
        } while pumpAgain
    }

    /// Hands one waiting job over; false when ComfyUI could not be reached (the job waits again).
    private func dispatch(_ job: Job) async -> Bool {
        var running = job
        running.state = .running
        running.dispatchedAt = now()
        running.backend = backend.name
        guard (try? await store.updateJob(running, expecting: .queued)) == true else {
            try? await recount()
            return true
        }
        decrementQueued(job.userID)
        beginHandOver(job.userID)
        let outcome = await handOver(running)
        endHandOver(job.userID)
        switch outcome {
        case .accepted:
            break
        case .refused(409, _):
            // ComfyUI has it already: a hand-over the gateway did not see through before it stopped.
            inFlight[job.id] = running
        case .refused(let status, let answer):
            await fail(running, status: status, answer: answer)
            events.publish(.changed, about: job.id)
        case .unreachable:
            // ComfyUI may have it or not: the watch finds out, and queues it again only if ComfyUI has not.
            inFlight[job.id] = running
            publishCounts()
            return false
        }
        publishCounts()
        notices.queueChanged(userID: job.userID, remaining: counts.count(of: job.userID))
        events.publish(.changed, about: job.id)
        return true
    }

    /// Ends a job ComfyUI refused at hand-over: failed, with ComfyUI's reason in its history and on its owner's
    /// websockets.
    private func fail(_ job: Job, status: Int, answer: [UInt8]) async {
        let reason = (try? PolicyJSON(parsing: answer))
            ?? .object([.init(key: "error", value: .string("ComfyUI answered \(status)"))])
        nextNumber += 1
        let refused = NativeViews.RefusedDispatch(job: job, answer: reason, number: nextNumber, at: now())
        var failed = job
        failed.state = .failed
        failed.completedAt = now()
        failed.failure = refused.failure
        failed.historyEntry = String(decoding: refused.historyEntry.serialized(), as: UTF8.self)
        do {
            if try await !store.updateJob(failed, expecting: .running) {
                logger.error("a refused job was changed before it could be stored as failed", metadata: ["job": "\(job.id)"])
            }
        } catch {
            logger.error("a refused job could not be stored as failed", metadata: ["job": "\(job.id)", "error": "\(error)"])
        }
        notices.send(refused.event.serializedAsComfyUI(), toUser: job.userID)
    }

    /// The waiting job whose turn it is.
    private func nextJob() async throws -> Job? {
        let queued = try await store.queuedJobs()
        guard !queued.isEmpty else { return nil }
        guard let chosen = FairShare().next(of: Self.waiting(queued), standings: try await standings(of: queued)) else {
            return nil
        }
        return try await store.job(id: chosen.id)
    }

    /// The held jobs, in the order they would be handed over if nothing changed, for the native `/queue`.
    func heldJobs(visibleTo caller: Caller) async throws -> [Job] {
        let queued = try await store.queuedJobs()
        guard !queued.isEmpty else { return [] }
        var visible: [Job] = []
        for waiting in FairShare().order(of: Self.waiting(queued), standings: try await standings(of: queued))
        where caller.isAdmin || waiting.userID == caller.userID {
            if let job = try await store.job(id: waiting.id), job.state == .queued { visible.append(job) }
        }
        return visible
    }

    /// Where each user with jobs waiting stands now: GPU time over the window (running jobs' time so far
    /// included), weight, and jobs handed over in the window.
    private func standings(of queued: [QueuedJob]) async throws -> [String: FairShare.Standing] {
        let time = now()
        let windowStart = time.addingTimeInterval(-settings.fairShareWindow)
        let used = try await store.gpuSeconds(userID: nil, completedAfter: windowStart)
        let weights = Dictionary(try await store.userQuotas().map { ($0.userID, $0.weight) }, uniquingKeysWith: { $1 })
        var standings: [String: FairShare.Standing] = [:]
        for userID in Set(queued.map(\.userID)) {
            let running = inFlight.values.filter { $0.userID == userID }.reduce(0.0) { total, job in
                total + max(0, time.timeIntervalSince(job.startedAt ?? job.dispatchedAt ?? time))
            }
            let handedOver = try await store.countJobs(
                userID: userID, states: Set(JobState.allCases).subtracting([.queued]), createdAfter: windowStart)
            standings[userID] = FairShare.Standing(
                usedSeconds: (used[userID] ?? 0) + running, weight: weights[userID] ?? 1, handedOver: handedOver)
        }
        return standings
    }

    private static func waiting(_ queued: [QueuedJob]) -> [FairShare.WaitingJob] {
        queued.map { FairShare.WaitingJob(id: $0.id, userID: $0.userID, queuedAt: $0.createdAt) }
    }

    // MARK: Watch

    /// Whether ComfyUI has jobs of the gateway's that it has not been seen to finish.
    var hasJobsOut: Bool { !inFlight.isEmpty }

    /// Asks ComfyUI about the jobs it has: finished ones take their outcome from its history, forgotten ones queue
    /// again (or end, if they were being cancelled). Nothing changes while ComfyUI cannot be asked.
    func watch() async {
        let snapshot = inFlight
        guard !snapshot.isEmpty else { return }
        let queued: Set<String>
        do {
            queued = try await backend.queuedPromptIDs()
        } catch {
            return
        }
        for job in snapshot.values where !queued.contains(job.id) {
            let entry: PolicyJSON?
            do {
                entry = try await backend.historyEntry(promptID: job.id)
            } catch {
                return
            }
            guard let current = inFlight[job.id] else { continue }
            let sighting: DispatchedJob.Sighting = entry.map { .finished($0) } ?? .unknown
            guard let updated = DispatchedJob.update(current, sighting: sighting, now: now()) else { continue }
            guard (try? await store.updateJob(updated, expecting: current.state)) == true else {
                // Changed meanwhile (a cancellation): look again next time with what the store has.
                if let stored = try? await store.job(id: job.id) {
                    inFlight[job.id] = stored.state == .running || stored.state == .canceling ? stored : nil
                }
                continue
            }
            inFlight[job.id] = nil
            if updated.state == .queued {
                queuedByUser[updated.userID, default: 0] += 1
                logger.notice("ComfyUI forgot a job it had; it waits again", metadata: ["job": "\(job.id)"])
            } else {
                ownership.record(files: updated.outputs.map(Self.fileReference), owner: updated.userID)
                metrics?.gpuSeconds(user: updated.userID, seconds: updated.gpuSeconds)
            }
            publishCounts()
            notices.queueChanged(userID: updated.userID, remaining: counts.count(of: updated.userID))
            events.publish(.changed, about: job.id)
        }
        await pump()
    }

    /// Brings a user's jobs out at ComfyUI up to date before their history is read. A hand-over under way is
    /// waited for (at most a few seconds): ComfyUI may have run the job before its answer reached the gateway.
    func settle(userID: String?) async {
        for _ in 0..<Self.handOverWaits where handingOverByUser.keys.contains(where: { userID == nil || $0 == userID }) {
            try? await Task.sleep(for: .milliseconds(10))
        }
        guard inFlight.values.contains(where: { userID == nil || $0.userID == userID }) else { return }
        // Not in the request's task: a client that goes away must not cut a hand-over or a store write short.
        await Task { await self.watch() }.value
    }

    /// How many times ``settle(userID:)`` looks, 10 ms apart, for a hand-over to end.
    static let handOverWaits = 300

    private func beginHandOver(_ userID: String) {
        handingOverByUser[userID, default: 0] += 1
    }

    private func endHandOver(_ userID: String) {
        let left = (handingOverByUser[userID] ?? 0) - 1
        handingOverByUser[userID] = left > 0 ? left : nil
    }

    // MARK: Cancelling and forgetting

    /// Cancels the caller's jobs among `ids` (any job for an admin): a held one ends at once without ComfyUI; one
    /// out at ComfyUI is marked as being cancelled, so that when ComfyUI drops it, it ends rather than waits again.
    /// Returns the ids ComfyUI should still be asked to delete.
    func cancel(_ ids: [String], by caller: Caller) async throws -> [String] {
        let wanted = Set(ids)
        let open = try await store.jobs(
            userID: caller.isAdmin ? nil : caller.userID, states: [.queued, .running], limit: Self.ownersLoaded,
            createdBefore: nil
        ).filter { wanted.contains($0.id) }
        var ended: Set<String> = []
        for job in open {
            let id = job.id
            switch job.state {
            case .queued:
                var canceled = job
                canceled.state = .canceled
                canceled.completedAt = now()
                canceled.failure = JobFailure(code: "canceled", message: "the job was cancelled before it ran")
                if try await store.updateJob(canceled, expecting: .queued) {
                    ended.insert(id)
                    events.publish(.changed, about: id)
                    decrementQueued(job.userID)
                    publishCounts()
                    notices.queueChanged(userID: job.userID, remaining: counts.count(of: job.userID))
                }
            case .running:
                var canceling = job
                canceling.state = .canceling
                if try await store.updateJob(canceling, expecting: .running) {
                    if inFlight[id] != nil { inFlight[id] = canceling }
                    events.publish(.changed, about: id)
                }
            default:
                break
            }
        }
        return ids.filter { !ended.contains($0) }
    }

    /// The 1-based place of a held job in the order the fair share would hand the held jobs over; nil when it is
    /// not held.
    func queuePosition(of job: Job) async throws -> Int? {
        guard job.state == .queued else { return nil }
        return try await queuePositions()[job.id]
    }

    /// Every held job's 1-based place in that order, by id: one reading of the queue for a whole list.
    func queuePositions() async throws -> [String: Int] {
        let queued = try await store.queuedJobs()
        guard !queued.isEmpty else { return [:] }
        let order = FairShare().order(of: Self.waiting(queued), standings: try await standings(of: queued))
        return Dictionary(order.enumerated().map { ($1.id, $0 + 1) }, uniquingKeysWith: { first, _ in first })
    }

    /// Cancels every held job the caller may cancel (`POST /queue {"clear": true}`).
    func cancelAllHeld(by caller: Caller) async throws {
        _ = try await cancel(try await heldJobs(visibleTo: caller).map(\.id), by: caller)
    }

    /// Takes jobs out of the native `/history` (`POST /history`): their history entries are dropped, the jobs and
    /// their use stay. `ids` nil means all the caller may see.
    func forgetHistory(_ ids: [String]?, by caller: Caller) async throws {
        let jobs: [Job]
        if let ids {
            var found: [Job] = []
            for id in ids { if let job = try await store.job(id: id) { found.append(job) } }
            jobs = found
        } else {
            jobs = try await store.jobs(
                userID: caller.isAdmin ? nil : caller.userID, states: JobState.finished, limit: Self.ownersLoaded,
                createdBefore: nil)
        }
        for job in jobs where job.historyEntry != nil && job.state.isFinished && (caller.isAdmin || job.userID == caller.userID) {
            var forgotten = job
            forgotten.historyEntry = nil
            _ = try await store.updateJob(forgotten, expecting: job.state)
        }
    }

    /// The native history the caller may see, in the order ComfyUI finished them as it lists them: their latest
    /// `newest` finished jobs (everyone's for an admin) with a history entry.
    func history(for caller: Caller, newest: Int) async throws -> [Job] {
        await settle(userID: caller.isAdmin ? nil : caller.userID)
        let jobs = try await store.jobs(
            userID: caller.isAdmin ? nil : caller.userID, states: JobState.finished, limit: newest, createdBefore: nil)
        return jobs.filter { $0.historyEntry != nil }
            .sorted { ($0.completedAt ?? $0.createdAt, $0.id) < ($1.completedAt ?? $1.createdAt, $1.id) }
    }

    /// One job's native history entry, when the caller may see it.
    func historyItem(_ id: String, for caller: Caller) async throws -> Job? {
        await settle(userID: caller.isAdmin ? nil : caller.userID)
        guard let job = try await store.job(id: id), caller.isAdmin || job.userID == caller.userID,
            job.historyEntry != nil
        else { return nil }
        return job
    }

    // MARK: Retention

    /// Expires jobs finished longer ago than the retention, and removes expired ones a retention later.
    func sweep() async {
        let time = now()
        do {
            let expired = try await store.expireJobs(completedBefore: time.addingTimeInterval(-settings.retention))
            let removed = try await store.deleteJobs(expiredBefore: time.addingTimeInterval(-2 * settings.retention))
            if !expired.isEmpty || removed > 0 {
                logger.info("jobs swept", metadata: ["expired": "\(expired.count)", "removed": "\(removed)"])
            }
        } catch is CancellationError {
            return
        } catch {
            logger.error("jobs could not be swept", metadata: ["error": "\(error)"])
        }
    }

    // MARK: Counts

    private func decrementQueued(_ userID: String) {
        let left = (queuedByUser[userID] ?? 0) - 1
        queuedByUser[userID] = left > 0 ? left : nil
    }

    private func recount() async throws {
        queuedByUser = [:]
        for job in try await store.queuedJobs() { queuedByUser[job.userID, default: 0] += 1 }
        publishCounts()
    }

    private func publishCounts() {
        var waiting = queuedByUser
        for job in inFlight.values { waiting[job.userID, default: 0] += 1 }
        counts.set(waiting)
        metrics?.queueDepths(queuedByUser)
    }

    static func fileReference(_ output: JobOutput) -> OwnershipIndex.FileReference {
        OwnershipIndex.FileReference(type: output.fileType.rawValue, subfolder: output.subfolder, name: output.fileName)
    }
}

/// Each user's jobs queued or out at ComfyUI, readable without waiting for the queue.
final class WaitingCounts: Sendable {
    private let counts = Mutex<[String: Int]>([:])

    func count(of userID: String) -> Int { counts.withLock { $0[userID] ?? 0 } }

    func set(_ new: [String: Int]) { counts.withLock { $0 = new } }
}
