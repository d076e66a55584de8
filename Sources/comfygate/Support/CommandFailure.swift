import ArgumentParser
import ComfyGateCore
import Foundation

/// A failure reported to the user as one clear message and an exit code scripts can rely on:
/// 1 when the operation failed, 2 for usage, configuration and input errors (a malformed user name, a short password).
struct CommandFailure: Error, CustomStringConvertible {
    let message: String
    let exitCode: Int32

    static func failed(_ message: String) -> CommandFailure { CommandFailure(message: message, exitCode: 1) }
    static func usage(_ message: String) -> CommandFailure { CommandFailure(message: message, exitCode: 2) }

    var description: String { message }

    /// Runs a command body, turning every error into a message on standard error and an exit code.
    static func report(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let failure as CommandFailure {
            Self.printError(failure.message)
            throw ExitCode(failure.exitCode)
        } catch let exit as ExitCode {
            throw exit
        } catch let error as IdentityError {
            // A malformed user name or token label is bad input.
            Self.printError(error.description)
            throw ExitCode(2)
        } catch let error as AccountError {
            Self.printError(error.description)
            throw ExitCode(2)
        } catch {
            Self.printError(reason(error))
            throw ExitCode(1)
        }
    }

    static func printError(_ message: String) {
        for line in message.split(separator: "\n", omittingEmptySubsequences: false) {
            FileHandle.standardError.write(Data("comfygate: \(line)\n".utf8))
        }
    }

    /// A readable reason for an error: domain errors describe themselves; system errors give their message.
    static func reason(_ error: any Error) -> String {
        if let cocoa = error as? CocoaError { return cocoa.localizedDescription }
        return String(describing: error)
    }
}
