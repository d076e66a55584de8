/// Which backend takes a job: among those that may take it now, the least loaded for its weight.
public enum BackendChoice {
    /// A backend as the choice sees it.
    public struct Candidate: Sendable, Equatable {
        public var name: String
        /// Its share of the work relative to the others.
        public var weight: Double
        /// Jobs out there now (running, waiting there, or being handed over).
        public var active: Int
        /// Jobs it may have at once.
        public var slots: Int
        /// Whether it answers, is not drained, and has every model file the job names.
        public var canRun: Bool

        public init(name: String, weight: Double, active: Int, slots: Int, canRun: Bool) {
            self.name = name
            self.weight = weight
            self.active = active
            self.slots = slots
            self.canRun = canRun
        }
    }

    /// The index of the backend to hand the job to, nil when none may take it now: among those that can run it and
    /// have a free slot, the one whose load after taking it (`(active + 1) / weight`) is lowest, the earlier listed on
    /// a tie.
    public static func choose(_ candidates: [Candidate]) -> Int? {
        var best: (index: Int, load: Double)?
        for (index, candidate) in candidates.enumerated() where candidate.canRun && candidate.active < candidate.slots {
            let load = Double(candidate.active + 1) / candidate.weight
            if best.map({ load < $0.load }) ?? true { best = (index, load) }
        }
        return best?.index
    }
}
