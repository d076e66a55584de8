import Hummingbird
import NIOCore

/// The client's request body as a transport reads it. A failure while reading it (the client broke the
/// message or went away) or fewer bytes than its `Content-Length` announced ends it with ``ClientBodyError``,
/// so a broken upload is answered as the client's error and is never passed on to ComfyUI as if complete.
struct CheckedRequestBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer

    let body: RequestBody
    let expectedLength: Int?

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: body.makeAsyncIterator(), expectedLength: expectedLength)
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: RequestBody.AsyncIterator
        let expectedLength: Int?
        var received = 0

        mutating func next() async throws -> ByteBuffer? {
            let buffer: ByteBuffer?
            do {
                buffer = try await base.next()
            } catch {
                throw ClientBodyError.broken
            }
            guard let buffer else {
                if let expectedLength, received != expectedLength {
                    throw ClientBodyError.incomplete(received: received, expected: expectedLength)
                }
                return nil
            }
            received += buffer.readableBytes
            return buffer
        }
    }
}

/// Why a client's request body could not be passed on.
enum ClientBodyError: Error, Equatable {
    /// Reading it failed: a malformed chunk, the connection closed mid-body.
    case broken
    /// It ended before the length its `Content-Length` announced.
    case incomplete(received: Int, expected: Int)
}
