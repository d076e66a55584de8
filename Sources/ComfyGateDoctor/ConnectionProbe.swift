import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS

/// A raw probe below any HTTP library: resolve the name, connect, optionally shake hands with TLS, send one
/// `GET` with `Connection: close`, and record exactly what came back — including nothing at all (curl's
/// `(52) Empty reply from server`), which HTTP clients report only as a generic error.
struct ConnectionProbe: Sendable {
    let host: String
    let port: Int
    let useTLS: Bool
    let path: String
    let timeout: Duration

    enum ConnectFailure: Error, Equatable {
        case unresolvable(String)
        case refused(address: String)
        case timedOut(address: String)
        case other(address: String, String)
    }

    enum TLSOutcome: Equatable {
        case established(Duration)
        case failed(String)
    }

    /// What the server sent back on the connection.
    enum Answer: Equatable {
        case response(status: Int, statusLine: String, headers: [String: String], bodyExcerpt: String)
        /// The connection closed cleanly before a single byte arrived.
        case closedWithoutResponse
        /// The connection was reset (RST) before a single byte arrived.
        case resetWithoutResponse
        /// Some bytes, then the connection ended before the response head was complete.
        case truncated(byteCount: Int)
        /// Nothing (or an incomplete head) within the timeout.
        case timedOut(byteCount: Int)
        /// The first bytes are not an HTTP response.
        case notHTTP(firstBytes: [UInt8])
        /// TLS failed, so no HTTP was exchanged.
        case noExchange
    }

    struct Outcome: Equatable {
        var address: String
        var resolveDuration: Duration
        var connectDuration: Duration
        var tls: TLSOutcome?
        var answer: Answer
        var answerDuration: Duration
    }

    func run() async throws(ConnectFailure) -> Outcome {
        let clock = ContinuousClock()
        let resolveStart = clock.now
        let address: SocketAddress
        do {
            address = try await NIOThreadPool.singleton.runIfActive { [host, port] in
                try SocketAddress.makeAddressResolvingHost(host, port: port)
            }
        } catch {
            throw .unresolvable(String(describing: error))
        }
        let resolveDuration = resolveStart.duration(to: clock.now)
        let addressText = Self.describe(address)

        let request = "GET \(path) HTTP/1.1\r\nHost: \(Self.hostHeader(host: host, port: port, tls: useTLS))\r\n"
            + "User-Agent: comfygate-doctor\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
        let group = MultiThreadedEventLoopGroup.singleton
        let eventLoop = group.next()
        let tlsPromise = eventLoop.makePromise(of: Void.self)
        let readPromise = eventLoop.makePromise(of: ProbeRead.self)
        let sslContext: NIOSSLContext?
        if useTLS {
            do {
                sslContext = try NIOSSLContext(configuration: .makeClientConfiguration())
            } catch {
                throw .other(address: addressText, "TLS setup: \(error)")
            }
        } else {
            sslContext = nil
        }
        let serverHostname = Self.isIPLiteral(host) ? nil : host
        let timeAmount = TimeAmount.nanoseconds(Int64(timeout / .nanoseconds(1)))
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(timeAmount)
            .channelInitializer { channel in
                do {
                    if let sslContext {
                        try channel.pipeline.syncOperations.addHandler(
                            try NIOSSLClientHandler(context: sslContext, serverHostname: serverHostname))
                    }
                    try channel.pipeline.syncOperations.addHandler(
                        ProbeHandler(
                            request: request, waitsForTLS: sslContext != nil, timeout: timeAmount, tlsPromise: tlsPromise,
                            readPromise: readPromise))
                    return channel.eventLoop.makeSucceededVoidFuture()
                } catch {
                    return channel.eventLoop.makeFailedFuture(error)
                }
            }
        let connectStart = clock.now
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(to: address).get()
        } catch {
            tlsPromise.fail(ChannelError.alreadyClosed)
            readPromise.fail(ChannelError.alreadyClosed)
            if let channelError = error as? ChannelError, case .connectTimeout = channelError { throw .timedOut(address: addressText) }
            if let io = error as? IOError, io.errnoCode == ECONNREFUSED { throw .refused(address: addressText) }
            if let io = error as? IOError, io.errnoCode == ETIMEDOUT { throw .timedOut(address: addressText) }
            throw .other(address: addressText, String(describing: error))
        }
        let connectDuration = connectStart.duration(to: clock.now)
        defer { channel.close(promise: nil) }

        let exchangeStart = clock.now
        var tls: TLSOutcome? = nil
        if useTLS {
            do {
                try await tlsPromise.futureResult.get()
                tls = .established(exchangeStart.duration(to: clock.now))
            } catch {
                let read = try? await readPromise.futureResult.get()
                let detail = read?.error ?? String(describing: error)
                return Outcome(
                    address: addressText, resolveDuration: resolveDuration, connectDuration: connectDuration,
                    tls: .failed(detail), answer: .noExchange, answerDuration: exchangeStart.duration(to: clock.now))
            }
        } else {
            tlsPromise.succeed()
        }
        let answerStart = clock.now
        let read: ProbeRead
        do {
            read = try await readPromise.futureResult.get()
        } catch {
            throw .other(address: addressText, String(describing: error))
        }
        return Outcome(
            address: addressText, resolveDuration: resolveDuration, connectDuration: connectDuration, tls: tls,
            answer: Self.interpret(read), answerDuration: answerStart.duration(to: clock.now))
    }

    static func interpret(_ read: ProbeRead) -> Answer {
        let bytes = read.bytes
        if bytes.isEmpty {
            switch read.end {
            case .timedOut: return .timedOut(byteCount: 0)
            case .reset: return .resetWithoutResponse
            case .closed, .complete: return .closedWithoutResponse
            }
        }
        guard bytes.starts(with: Array("HTTP/".utf8)) else { return .notHTTP(firstBytes: Array(bytes.prefix(16))) }
        guard let head = ProbeHandler.headEnd(bytes) else {
            return read.end == .timedOut ? .timedOut(byteCount: bytes.count) : .truncated(byteCount: bytes.count)
        }
        let headText = String(decoding: bytes[..<head], as: UTF8.self)
        var lines = headText.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst()
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, let status = Int(parts[1]) else { return .notHTTP(firstBytes: Array(bytes.prefix(16))) }
        var headers: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let body = String(decoding: bytes[(head + 4)...].prefix(300), as: UTF8.self)
        return .response(status: status, statusLine: statusLine, headers: headers, bodyExcerpt: body)
    }

    static func describe(_ address: SocketAddress) -> String {
        guard let ip = address.ipAddress, let port = address.port else { return "\(address)" }
        return address.protocol == .inet6 ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }

    static func hostHeader(host: String, port: Int, tls: Bool) -> String {
        let bracketed = host.contains(":") ? "[\(host)]" : host
        return port == (tls ? 443 : 80) ? bracketed : "\(bracketed):\(port)"
    }

    static func isIPLiteral(_ host: String) -> Bool {
        (try? SocketAddress(ipAddress: host, port: 0)) != nil
    }
}

/// The bytes a probe received and how the exchange ended.
struct ProbeRead: Sendable {
    enum End: Sendable, Equatable {
        /// The whole response head and its announced body arrived.
        case complete
        case closed
        case reset
        case timedOut
    }

    var bytes: [UInt8]
    var end: End
    var error: String?
}

/// Writes the request once the connection (and TLS, if any) is up, then collects bytes until the response is
/// complete, the peer closes, or the timeout fires.
final class ProbeHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let request: String
    private let waitsForTLS: Bool
    private let timeout: TimeAmount
    private let tlsPromise: EventLoopPromise<Void>
    private let readPromise: EventLoopPromise<ProbeRead>
    private var received: [UInt8] = []
    private var finished = false
    private var lastError: String?
    private var timer: Scheduled<Void>?

    init(request: String, waitsForTLS: Bool, timeout: TimeAmount, tlsPromise: EventLoopPromise<Void>, readPromise: EventLoopPromise<ProbeRead>) {
        self.request = request
        self.waitsForTLS = waitsForTLS
        self.timeout = timeout
        self.tlsPromise = tlsPromise
        self.readPromise = readPromise
    }

    func channelActive(context: ChannelHandlerContext) {
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: timeout) {
            let (handler, context) = bound.value
            handler.tlsPromise.fail(ChannelError.connectTimeout(handler.timeout))
            handler.finish(.timedOut)
            context.close(promise: nil)
        }
        if !waitsForTLS { send(context: context) }
        context.fireChannelActive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tlsEvent = event as? TLSUserEvent, case .handshakeCompleted = tlsEvent {
            tlsPromise.succeed()
            send(context: context)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        received += buffer.readableBytesView
        if Self.isComplete(received) || received.count >= 64 * 1024 {
            finish(.complete)
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        tlsPromise.fail(ChannelError.eof)
        finish(lastError == nil ? .closed : .reset)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        lastError = String(describing: error)
        tlsPromise.fail(error)
        context.close(promise: nil)
    }

    private func send(context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: request)), promise: nil)
    }

    private func finish(_ end: ProbeRead.End) {
        guard !finished else { return }
        finished = true
        timer?.cancel()
        readPromise.succeed(ProbeRead(bytes: received, end: end, error: lastError))
    }

    /// Index of the `\r\n\r\n` that ends the head.
    static func headEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for index in 0...(bytes.count - 4) where bytes[index] == 13 && bytes[index + 1] == 10 && bytes[index + 2] == 13 && bytes[index + 3] == 10 {
            return index
        }
        return nil
    }

    /// A head whose `Content-Length` body has fully arrived.
    static func isComplete(_ bytes: [UInt8]) -> Bool {
        guard let head = headEnd(bytes) else { return false }
        let text = String(decoding: bytes[..<head], as: UTF8.self).lowercased()
        guard let line = text.components(separatedBy: "\r\n").first(where: { $0.hasPrefix("content-length:") }),
            let length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces))
        else { return false }
        return bytes.count - (head + 4) >= length
    }
}
