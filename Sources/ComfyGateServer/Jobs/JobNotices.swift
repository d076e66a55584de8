import ComfyGatePolicy

/// What the job queue tells users on their open websockets, as ComfyUI would have told them had it held the jobs.
struct JobNotices: Sendable {
    let sockets: OpenWebSockets

    /// `status` with `queue_remaining`: the user's jobs queued or out at ComfyUI changed in number.
    func queueChanged(userID: String, remaining: Int) {
        let status = PolicyJSON.object([
            .init(key: "type", value: .string("status")),
            .init(
                key: "data",
                value: .object([
                    .init(
                        key: "status",
                        value: .object([
                            .init(
                                key: "exec_info",
                                value: .object([.init(key: "queue_remaining", value: .number(String(remaining)))]))
                        ]))
                ])),
        ])
        send(status.serializedAsComfyUI(), toUser: userID)
    }

    /// Any message of the gateway's own, to every websocket of the user.
    func send(_ message: [UInt8], toUser userID: String) {
        sockets.send(message, toUser: userID)
    }
}
