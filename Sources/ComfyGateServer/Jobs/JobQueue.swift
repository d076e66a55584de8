import ComfyGateCore
import ComfyGateJobs
import ComfyGatePolicy
import Foundation
import Logging
import Synchronization

/// The gateway's queue in front of its ComfyUI backends. Every prompt accepted is a job in the store; each backend
/// is handed at most its slots' worth at a time — the job whose turn it is by ``FairShare``, to the least loaded
/// backend for its weight that has every model file the job names (``BackendChoice``) — and the rest wait in the
/// gateway, already checked against a node catalog. A job is claimed in the store before it is handed over
/// (``GatewayStore/claimJob(id:backend:slots:at:)``), so replicas sharing the store never hand one over twice. Jobs
/// out at a backend are watched until its history has them (or it forgot them, after a restart: they queue again);
/// when a backend goes down its waiting jobs queue again and its running ones fail (or queue again once, when
/// retryable). Jobs outlive restarts of either side and none runs twice.
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
    private let pool: BackendPool
    private let placement: InputPlacement
    /// Which backend has each job's output files.
    nonisolated let fileLocations: FileLocations
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
    /// Hand-overs under way, per user and per backend: slots taken before ComfyUI has answered.
    private var handingOverByUser: [String: Int] = [:]
    private var handingOverByBackend: [String: Int] = [:]
    /// Jobs being handed over by this gateway now.
    private var handingOverJobs: Set<String> = []
    /// The model files each waiting job names, read once.
    private var modelFilesByJob: [String: ModelFiles] = [:]
    /// When this gateway learnt from the store of a job out at a backend that it did not hand over itself.
    private var learntElsewhere: [String: ContinuousClock.Instant] = [:]
    /// Jobs waiting in the gateway, per user.
    private var queuedByUser: [String: Int] = [:] {
        didSet { queueCountsVersion &+= 1 }
    }
    /// Changes with every change of ``queuedByUser``.
    private var queueCountsVersion = 0
    private var pumping = false
    private var pumpAgain = false
    /// The `number` answered for held jobs, counting on like ComfyUI's own.
    private var nextNumber = 0
    /// The creation time of the latest job: each new one is later by at least ``creationStep``, so first in,
    /// first out holds even for submissions the clock cannot tell apart.
    private var latestCreation = Date.distantPast

    static let creationStep: TimeInterval = 0.001
    /// Each user's jobs queued or out at ComfyUI, for the `queue_remaining` their websockets are told.
    nonisolated let counts: WaitingCounts

    /// With replicas sharing the store (``JobSettings/dispatchLease``), how long after a job was claimed the watch
    /// leaves it alone whichever gateway claimed it, so one whose hand-over is still under way elsewhere is never
    /// queued again; after that, a claim whose gateway died before ComfyUI had the job has expired and the job waits
    /// again. 0 for a gateway alone on its store, which knows its own hand-overs.
    private let dispatchLease: TimeInterval
    /// How long a hand-over may take: two thirds of the lease (20 s alone on the store).
    private var handOverTimeout: Duration { .milliseconds(Int64((dispatchLease > 0 ? dispatchLease : 30) * 2000 / 3)) }

    init(
        store: any GatewayStore, pool: BackendPool, placement: InputPlacement, fileLocations: FileLocations, dispatchLease: TimeInterval,
        settings: JobSettings, roleQuotas: [Role: QuotaLimits],
        ownership: OwnershipIndex, counts: WaitingCounts, notices: JobNotices, events: JobEvents, listenerClientID: String,
        logger: Logger, now: @escaping @Sendable () -> Date, metrics: GatewayMetrics?
    ) {
        self.metrics = metrics
        self.counts = counts
        self.events = events
        self.listenerClientID = listenerClientID
        self.store = store
        self.pool = pool
        self.placement = placement
        self.fileLocations = fileLocations
        self.dispatchLease = dispatchLease
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
            finished(job)
        }
        for job in try await store.jobs(inStates: [.queued, .running, .canceling]) {
            ownership.record(prompt: job.id, owner: job.userID)
            if job.state == .queued {
                queuedByUser[job.userID, default: 0] += 1
            } else {
                var current = job
                current.backend = pool.backend(of: job)?.name ?? job.backend
                inFlight[job.id] = current
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

        let files = ModelFiles(prompt: prompt)
        if let reason = pool.refusal(for: files) { return .refused(status: 400, answer: Self.noBackendAnswer(reason)) }

        if queuedByUser.isEmpty, let backend = freeBackend(for: files) {
            // Owned before ComfyUI sees it: its first events may come before its answer.
            ownership.record(prompt: id, owner: caller.userID)
            beginHandOver(job, on: backend)
            let outcome: HandOver
            do {
                try await store.insertJob(job)
                guard let claimed = try await store.claimJob(id: id, backend: backend.name, slots: backend.slots, at: time) else {
                    // Another gateway's hand-over took the slot first: the job waits its turn.
                    endHandOver(job, on: backend)
                    modelFilesByJob[id] = files
                    hold(job)
                    return .held(job, nodeErrors: .object([]))
                }
                job = claimed
                outcome = await handOver(job, to: backend)
            } catch {
                ownership.forget(prompt: id)
                endHandOver(job, on: backend)
                throw error
            }
            endHandOver(job, on: backend)
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
                // The backend may have it or not: the watch finds out, and queues it again only if it has not.
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
        modelFilesByJob[id] = files
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

    /// The submission checked against the node catalog of a backend that could run it; nil when none can be read.
    private func validate(_ prompt: PolicyJSON, targets: [String]?) async -> PromptValidation? {
        if pool.members.allSatisfy({ $0.current.catalog == nil }) { await readCatalog(of: pool.primary) }
        guard let catalog = catalog(for: ModelFiles(prompt: prompt)) else { return nil }
        return PromptValidator(catalog: catalog).validate(prompt, targets: targets)
    }

    /// When a backend last failed to give its node catalog here: it is asked again only ``catalogRetry`` later.
    private var catalogUnavailableSince: Date?
    static let catalogRetry: TimeInterval = 5

    /// Reads a backend's node catalog now (the watch reads them too, but not before its first look).
    private func readCatalog(of backend: Backend) async {
        let time = now()
        guard catalogUnavailableSince.map({ time.timeIntervalSince($0) > Self.catalogRetry }) ?? true else { return }
        catalogUnavailableSince = await backend.readCatalog(within: .seconds(BackendWatch.probeTimeout)) ? nil : time
    }

    /// The node catalog of the first backend that could run a job naming `files`, else of the first one read.
    private func catalog(for files: ModelFiles) -> NodeCatalog? {
        pool.candidates(for: files).lazy.compactMap(\.current.catalog).first
            ?? pool.members.lazy.compactMap(\.current.catalog).first
    }

    /// The output nodes a held job will run, by a node catalog.
    func outputsToExecute(of job: Job) -> [String] {
        guard let prompt = try? PolicyJSON(parsing: Array(job.workflow.utf8)), let catalog = catalog(for: ModelFiles(prompt: prompt)),
            case .accepted(let outputs, _) = PromptValidator(catalog: catalog).validate(prompt)
        else { return [] }
        return outputs
    }

    /// ComfyUI's answer shape for a prompt no backend can run.
    static func noBackendAnswer(_ reason: String) -> [UInt8] {
        PolicyJSON.object([
            .init(key: "error", value: .object([
                .init(key: "type", value: .string("missing_models")),
                .init(key: "message", value: .string("No ComfyUI backend can run this prompt")),
                .init(key: "details", value: .string(reason)),
                .init(key: "extra_info", value: .object([])),
            ])),
            .init(key: "node_errors", value: .object([])),
        ]).serialized()
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

    /// Puts the job's kept input files on the backend and sends it there; an accepted job is out from then on.
    /// When the exchange broke or took longer than the hand-over timeout, the backend may or may not have the job: the
    /// caller leaves that to the watch, and the failure counts against the backend's circuit breaker.
    private func handOver(_ job: Job, to backend: Backend) async -> HandOver {
        guard let body = NativeSubmission.dispatchBody(of: job, defaultClientID: listenerClientID) else {
            return .refused(status: 400, answer: NativeSubmission.unreadableJobAnswer.serialized())
        }
        do {
            let (status, answer) = try await withDeadline(handOverTimeout) { [placement] in
                try await placement.place(for: job, on: backend)
                return try await backend.calls.submit(body)
            }
            guard status == 200 else {
                metrics?.dispatchFailed(backend: backend.name, reason: "refused")
                return .refused(status: status, answer: answer)
            }
            inFlight[job.id] = job
            metrics?.jobDispatched(backend: backend.name)
            metrics?.jobWaited(user: job.userID, seconds: max(0, (job.dispatchedAt ?? now()).timeIntervalSince(job.createdAt)))
            return .accepted(answer: answer)
        } catch {
            logger.warning("job not handed to ComfyUI", metadata: ["job": "\(job.id)", "backend": "\(backend.name)", "error": "\(error)"])
            metrics?.dispatchFailed(backend: backend.name, reason: "unreachable")
            if backend.recordFailure("hand-over failed: \(error)", logger: logger) { await backendWentDown(backend) }
            return .unreachable
        }
    }

    /// Hands waiting jobs to backends while they have free slots, in fair order. Runs once at a time; a call while it
    /// runs makes it look again before it ends.
    func pump() async {
        if pumping {
            pumpAgain = true
            return
        }
        pumping = true
        defer { pumping = false }
        var standings: StandingsSnapshot?
        repeat {
            pumpAgain = false
            while !queuedByUser.isEmpty {
                let next: NextDispatch
                do {
                    next = try await nextDispatch(standings: &standings)
                } catch is CancellationError {
                    return
                } catch {
                    logger.error("the job queue could not read the store", metadata: ["error": "\(error)"])
                    return
                }
                switch next {
                case .dispatch(let job, let backend):
                    if await dispatch(job, to: backend) { standings?.standings[job.userID]?.handedOver += 1 }
                case .nothingFits:
                    break
                case .noneQueued:
                    // The counts were off (another process changed the store): read them again.
                    try? await recount()
                }
                guard case .dispatch = next else { break }
            }
        } while pumpAgain
    }

    /// Hands one waiting job to a backend, once the store let this gateway claim it; whether it could claim it.
    private func dispatch(_ job: Job, to backend: Backend) async -> Bool {
        let claimed: Job?
        do {
            claimed = try await store.claimJob(id: job.id, backend: backend.name, slots: backend.slots, at: now())
        } catch {
            logger.error("a job could not be claimed", metadata: ["job": "\(job.id)", "error": "\(error)"])
            return false
        }
        guard let running = claimed else {
            // Another gateway took it, or filled the backend: read the counts again.
            try? await recount()
            return false
        }
        modelFilesByJob[job.id] = nil
        decrementQueued(job.userID)
        beginHandOver(running, on: backend)
        let outcome = await handOver(running, to: backend)
        endHandOver(running, on: backend)
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
            // The backend may have it or not: the watch finds out, and queues it again only if it has not.
            inFlight[job.id] = running
        }
        publishCounts()
        notices.queueChanged(userID: job.userID, remaining: counts.count(of: job.userID))
        events.publish(.changed, about: job.id)
        return true
    }

    /// What the pump does next.
    private enum NextDispatch {
        case dispatch(Job, Backend)
        /// Jobs wait, but none of them fits a backend with a free slot now.
        case nothingFits
        case noneQueued
    }

    /// The first waiting job in fair order that a backend with a free slot can run, and that backend.
    /// - Parameter standings: the fair-share standings this pump read, kept up to date with its own dispatches (read
    ///   again when missing a user, or older than ``StandingsSnapshot/lifetime``): reading them takes the window's
    ///   finished jobs, too much to do for every dispatch of a long queue.
    private func nextDispatch(standings: inout StandingsSnapshot?) async throws -> NextDispatch {
        let queued = try await store.queuedJobs()
        guard !queued.isEmpty else { return .noneQueued }
        let active = try await store.activeJobCounts()
        guard pool.members.contains(where: { $0.isAvailable && active[$0.name, default: 0] < $0.slots }) else { return .nothingFits }
        if standings.map({ !$0.isFresh || !Set(queued.map(\.userID)).isSubset(of: $0.standings.keys) }) ?? true {
            standings = StandingsSnapshot(standings: try await self.standings(of: queued), readAt: .now)
        }
        for waiting in FairShare().order(of: Self.waiting(queued), standings: standings?.standings ?? [:]) {
            guard let files = try await modelFiles(ofJob: waiting.id),
                let backend = freeBackend(for: files, active: { active[$0.name, default: 0] })
            else { continue }
            guard let job = try await store.job(id: waiting.id), job.state == .queued else { continue }
            return .dispatch(job, backend)
        }
        return .nothingFits
    }

    /// The model files a waiting job names; nil when it is gone.
    private func modelFiles(ofJob id: String) async throws -> ModelFiles? {
        if let known = modelFilesByJob[id] { return known }
        guard let job = try await store.job(id: id) else { return nil }
        let files = ModelFiles(prompt: (try? PolicyJSON(parsing: Array(job.workflow.utf8))) ?? .object([]))
        modelFilesByJob[id] = files
        return files
    }

    /// The backend to hand a job naming `files` to now, by ``BackendChoice``; nil when none may take it.
    private func freeBackend(for files: ModelFiles, active: ((Backend) -> Int)? = nil) -> Backend? {
        let candidates = pool.members.map { backend in
            BackendChoice.Candidate(
                name: backend.name, weight: backend.configuration.weight, active: active?(backend) ?? activeJobs(on: backend),
                slots: backend.slots, canRun: backend.isAvailable && (backend.missing(files)?.isEmpty ?? true))
        }
        return BackendChoice.choose(candidates).map { pool.members[$0] }
    }

    /// The jobs this gateway has out at a backend, or is handing over to it.
    private func activeJobs(on backend: Backend) -> Int {
        inFlight.values.count { $0.backend == backend.name && !handingOverJobs.contains($0.id) }
            + (handingOverByBackend[backend.name] ?? 0)
    }

    /// Ends a job ComfyUI refused at hand-over: failed, with ComfyUI's reason in its history and on its owner's
    /// websockets.
    /// - Parameter code: the failure's code, when it is not ComfyUI's refusal (`invalid_prompt`).
    private func fail(_ job: Job, status: Int, answer: [UInt8], code: String? = nil) async {
        let reason = (try? PolicyJSON(parsing: answer))
            ?? .object([.init(key: "error", value: .string("ComfyUI answered \(status)"))])
        nextNumber += 1
        let refused = NativeViews.RefusedDispatch(job: job, answer: reason, number: nextNumber, at: now())
        var failed = job
        failed.state = .failed
        failed.completedAt = now()
        failed.failure = refused.failure
        if let code { failed.failure?.code = code }
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

    /// The fair-share standings as one pump read them.
    private struct StandingsSnapshot {
        /// How long a pump uses standings it read before reading them again.
        static let lifetime: Duration = .seconds(1)

        var standings: [String: FairShare.Standing]
        let readAt: ContinuousClock.Instant

        var isFresh: Bool { ContinuousClock.now - readAt < Self.lifetime }
    }

    private static func waiting(_ queued: [QueuedJob]) -> [FairShare.WaitingJob] {
        queued.map { FairShare.WaitingJob(id: $0.id, userID: $0.userID, queuedAt: $0.createdAt) }
    }

    // MARK: Watch

    /// Whether backends have jobs of the gateway's that they have not been seen to finish.
    var hasJobsOut: Bool { !inFlight.isEmpty }

    /// Whether a backend has jobs of the gateway's out.
    func hasJobsOut(on backend: String) -> Bool { inFlight.values.contains { $0.backend == backend } }

    /// Asks each backend about the jobs it has — every gateway's, as the store lists them: finished ones take their
    /// outcome from its history, forgotten ones queue again (or end, if they were being cancelled). Nothing changes
    /// for a backend that cannot be asked, nor for a job whose hand-over may still be under way.
    func watch() async {
        await refreshFromStore()
        guard !inFlight.isEmpty else { return await pump() }
        for (name, jobs) in Dictionary(grouping: inFlight.values, by: { $0.backend ?? "" }) {
            guard let backend = pool.backend(named: name), backend.current.state != .down else { continue }
            // Only jobs already handed over before the queue is read: one whose hand-over ends meanwhile would be
            // in neither its queue as read nor its history.
            let settled = jobs.filter { !isBeingHandedOver($0) }
            guard !settled.isEmpty else { continue }
            let queue: (running: Set<String>, pending: Set<String>)
            do {
                queue = try await backend.calls.queue()
            } catch {
                continue
            }
            backend.update { health in
                health.running = queue.running
                health.pending = queue.pending.count
            }
            for job in settled where !queue.running.contains(job.id) && !queue.pending.contains(job.id) {
                let entry: PolicyJSON?
                do {
                    entry = try await backend.calls.historyEntry(promptID: job.id)
                } catch {
                    break
                }
                guard let current = inFlight[job.id], current.backend == job.backend, current.dispatchedAt == job.dispatchedAt else {
                    continue
                }
                await settle(current, sighting: entry.map { .finished($0) } ?? .unknown)
            }
        }
        await pump()
    }

    /// Stores what a backend said of one of its jobs, and tells whoever follows it. A job its backend does not know
    /// is looked up again first: handed over anew meanwhile (by another gateway), it is left to the next look.
    private func settle(_ current: Job, sighting: DispatchedJob.Sighting) async {
        guard let updated = DispatchedJob.update(current, sighting: sighting, now: now()) else { return }
        if sighting == .unknown, let stored = try? await store.job(id: current.id), stored.attempts != current.attempts {
            inFlight[current.id] = stored.state == .running || stored.state == .canceling ? stored : nil
            return
        }
        guard (try? await store.updateJob(updated, expecting: current.state)) == true else {
            // Changed meanwhile (a cancellation, another gateway): look again next time with what the store has.
            if let stored = try? await store.job(id: current.id) {
                inFlight[current.id] = stored.state == .running || stored.state == .canceling ? stored : nil
                if stored.state.isFinished { finished(stored) }
            }
            return
        }
        inFlight[current.id] = nil
        if updated.state == .queued {
            queuedByUser[updated.userID, default: 0] += 1
            logger.notice("ComfyUI forgot a job it had; it waits again", metadata: ["job": "\(current.id)", "backend": "\(current.backend ?? "")"])
        } else {
            finished(updated)
            metrics?.gpuSeconds(user: updated.userID, seconds: updated.gpuSeconds)
        }
        publishCounts()
        notices.queueChanged(userID: updated.userID, remaining: counts.count(of: updated.userID))
        events.publish(.changed, about: current.id)
    }

    /// Records what a finished job left: its files are its owner's, on its backend.
    private func finished(_ job: Job) {
        let files = job.outputs.map(Self.fileReference)
        ownership.record(files: files, owner: job.userID)
        if let backend = job.backend { fileLocations.record(files, on: backend) }
    }

    /// Whether a job may still be on its way to its backend: this gateway hands it over now, or (with replicas) it
    /// was claimed elsewhere and this gateway learnt of it less than the dispatch lease ago. Counted on this process's
    /// monotonic clock from when it learnt of the job, so neither a wall clock that jumps nor replicas whose clocks
    /// differ make a lease end early.
    private func isBeingHandedOver(_ job: Job) -> Bool {
        if handingOverJobs.contains(job.id) { return true }
        guard dispatchLease > 0, let since = learntElsewhere[job.id] else { return false }
        return ContinuousClock.now - since < .milliseconds(Int64(dispatchLease * 1000))
    }

    /// Takes the jobs out at backends and the waiting counts from the store: other gateways sharing it hand over
    /// and finish jobs too. Jobs that ended elsewhere are announced to their followers here.
    private func refreshFromStore() async {
        // Only what this gateway had before the read can be found gone by it: a hand-over accepted while the store was
        // read is not in the answer yet.
        let before = Set(inFlight.keys)
        guard let stored = try? await store.jobs(inStates: [.running, .canceling]) else { return }
        var fresh: [String: Job] = [:]
        for var job in stored {
            job.backend = pool.backend(of: job)?.name ?? job.backend
            fresh[job.id] = job
        }
        for id in before where fresh[id] == nil && inFlight[id] != nil {
            inFlight[id] = nil
            if let ended = try? await store.job(id: id), ended.state.isFinished { finished(ended) }
            events.publish(.changed, about: id)
        }
        for (id, job) in fresh where inFlight[id].map({ $0.attempts != job.attempts }) ?? true {
            // New to this gateway, or handed over again since (by another gateway, after it waited again).
            inFlight[id] = job
            if !handingOverJobs.contains(id) { learntElsewhere[id] = .now }
        }
        learntElsewhere = learntElsewhere.filter { inFlight[$0.key] != nil }
        publishCounts()
        try? await recount()
    }

    /// A backend's breaker opened: the jobs waiting in its queue wait in the gateway again; the ones it ran fail, or
    /// wait again once when their submitter allowed a retry; the ones being cancelled end. Whatever it still has when
    /// it comes back is taken out of its queue then (``backendCameUp(_:)``).
    func backendWentDown(_ backend: Backend) async {
        let lost = inFlight.values.filter { $0.backend == backend.name && !isBeingHandedOver($0) }
        // ComfyUI runs one prompt at a time, first in first out: the one it was last seen running, and (as that look
        // may be a second old) the one handed over first, may have started; the others only waited in its queue.
        var mayHaveRun = backend.current.running
        if let first = lost.min(by: { ($0.dispatchedAt ?? .distantPast, $0.id) < ($1.dispatchedAt ?? .distantPast, $1.id) }) {
            mayHaveRun.insert(first.id)
        }
        for job in lost {
            var updated = job
            let ran = mayHaveRun.contains(job.id) || job.startedAt != nil
            if job.state == .canceling {
                updated.state = .canceled
                updated.completedAt = now()
                updated.failure = JobFailure(code: "canceled", message: "the job was cancelled")
            } else if ran, !(job.retryable && job.attempts < 2) {
                let message = "the ComfyUI backend '\(backend.name)' stopped answering while the job ran"
                await fail(job, status: 503, answer: Self.backendFailedAnswer(message), code: "backend_failed")
                inFlight[job.id] = nil
                events.publish(.changed, about: job.id)
                continue
            } else {
                updated.state = .queued
                updated.backend = nil
                updated.dispatchedAt = nil
                updated.startedAt = nil
            }
            guard (try? await store.updateJob(updated, expecting: job.state)) == true else { continue }
            inFlight[job.id] = nil
            if updated.state == .queued {
                queuedByUser[job.userID, default: 0] += 1
                logger.notice("a job waits again: its backend went down", metadata: ["job": "\(job.id)", "backend": "\(backend.name)", "ran": "\(ran)"])
            }
            events.publish(.changed, about: job.id)
        }
        publishCounts()
        await pump()
    }

    /// A backend answers again: whatever its queue still has that is no longer its job (moved to another backend
    /// while it was down, or ended) is taken out of it, so nothing runs twice; then it takes work again.
    func backendCameUp(_ backend: Backend) async {
        placement.forgetPlacements(on: backend.name)
        if let queue = try? await backend.probes.queue() {
            for id in queue.running.union(queue.pending) {
                guard let job = try? await store.job(id: id) else { continue }
                let stillThere = pool.backend(of: job) === backend && (job.state == .running || job.state == .canceling)
                if !stillThere {
                    logger.notice("taking a job out of a backend that came back: it moved on", metadata: ["job": "\(id)", "backend": "\(backend.name)"])
                    try? await backend.calls.cancel(promptID: id)
                }
            }
        }
        await pump()
    }

    /// ComfyUI's answer shape for a job its backend dropped.
    static func backendFailedAnswer(_ message: String) -> [UInt8] {
        PolicyJSON.object([
            .init(key: "error", value: .object([
                .init(key: "type", value: .string("backend_failed")),
                .init(key: "message", value: .string(message)),
                .init(key: "details", value: .string("")),
                .init(key: "extra_info", value: .object([])),
            ])),
            .init(key: "node_errors", value: .object([])),
        ]).serialized()
    }

    /// Brings a user's jobs out at backends up to date before their history is read. A hand-over under way is
    /// waited for (at most a few seconds): the backend may have run the job before its answer reached the gateway.
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

    private func beginHandOver(_ job: Job, on backend: Backend) {
        handingOverByUser[job.userID, default: 0] += 1
        handingOverByBackend[backend.name, default: 0] += 1
        handingOverJobs.insert(job.id)
    }

    private func endHandOver(_ job: Job, on backend: Backend) {
        func decrement(_ counts: inout [String: Int], _ key: String) {
            let left = (counts[key] ?? 0) - 1
            counts[key] = left > 0 ? left : nil
        }
        decrement(&handingOverByUser, job.userID)
        decrement(&handingOverByBackend, backend.name)
        handingOverJobs.remove(job.id)
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
                    modelFilesByJob[id] = nil
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

    /// Stops a job out at its backend: taken out of its queue if it waits there, interrupted if it runs.
    nonisolated func stopAtBackend(_ job: Job) async throws {
        try await pool.backend(of: job)?.calls.cancel(promptID: job.id)
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

    /// Counts the waiting jobs again from the store (other gateways queue and dispatch too); a count this gateway
    /// changed while the store was read is left to the next look.
    private func recount() async throws {
        let version = queueCountsVersion
        let queued = try await store.queuedJobs()
        guard version == queueCountsVersion else { return }
        var counts: [String: Int] = [:]
        for job in queued { counts[job.userID, default: 0] += 1 }
        queuedByUser = counts
        publishCounts()
    }

    private func publishCounts() {
        var waiting = queuedByUser
        var active = handingOverByBackend
        for job in inFlight.values {
            waiting[job.userID, default: 0] += 1
            if let backend = job.backend, !handingOverJobs.contains(job.id) { active[backend, default: 0] += 1 }
        }
        counts.set(waiting)
        pool.setActive(active)
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
