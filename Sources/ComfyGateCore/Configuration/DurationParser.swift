public import Foundation

/// Durations as people write them in flags and config files: `45s`, `90m`, `12h`, `30d`, `2w`, or plain seconds.
public enum DurationParser {
    /// The longest duration accepted: 100 years, far below what a timer counting nanoseconds in 64 bits holds
    /// (292 years), so no configured duration can overflow one.
    public static let maxSeconds: TimeInterval = 100 * 365 * 86_400

    /// The number of seconds `text` stands for, or nil when it is not a positive duration of at most
    /// ``maxSeconds``.
    public static func seconds(_ text: String) -> TimeInterval? {
        let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
        guard let unit = trimmed.last else { return nil }
        let multipliers: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800]
        let (number, multiplier): (Substring, Double) =
            if let multiplier = multipliers[unit] { (trimmed.dropLast(), multiplier) } else { (Substring(trimmed), 1) }
        guard let value = Double(number), value.isFinite, value > 0, value * multiplier <= maxSeconds else { return nil }
        return value * multiplier
    }

    /// A short rendering such as `30d`, `12h` or `90s`.
    public static func format(_ seconds: TimeInterval) -> String {
        for (unit, size) in [("d", 86_400.0), ("h", 3600.0), ("m", 60.0)] where seconds >= size && seconds.truncatingRemainder(dividingBy: size) == 0 {
            return "\(Int(seconds / size))\(unit)"
        }
        return "\(Int(seconds))s"
    }
}
