import Foundation

/// Answers whether a file inside a git work tree is ignored by git, using `git check-ignore`.
/// Files outside any work tree (no `.git` up the tree) are fine.
final class GitIgnoreChecker {
    private var cache: [String: String?] = [:]

    /// `nil` when the file is safe from `git add`; otherwise why it is not.
    func problem(for url: URL) -> String? {
        if let cached = cache[url.path] { return cached }
        let answer = check(url)
        cache[url.path] = answer
        return answer
    }

    private func check(_ url: URL) -> String? {
        var directory = url.deletingLastPathComponent()
        while true {
            if FileManager.default.fileExists(atPath: directory.appendingPathComponent(".git").path) { break }
            let parent = directory.deletingLastPathComponent()
            if parent.path == directory.path { return nil }
            directory = parent
        }
        let status: Int32
        do {
            status = try ChildProcess(
                ["git", "-C", directory.path, "check-ignore", "-q", "--", url.path], standardOutput: .null, standardError: .null
            ).waitForExit()
        } catch {
            return "inside the git work tree \(directory.path), and git could not be run to check .gitignore"
        }
        switch status {
        case 0: return nil
        case 1: return "inside the git work tree \(directory.path) and not ignored by git (add it to .gitignore)"
        default: return "inside the git work tree \(directory.path), and git check-ignore failed"
        }
    }
}
