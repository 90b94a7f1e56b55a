import CLibUV

/// A libuv request in flight (`uv_write_t`, `uv_shutdown_t`, `uv_connect_t`,
/// `uv_getaddrinfo_t`, `uv_work_t`) and what it needs until its callback: the
/// one way Weft owns a request. Subclasses add what their request carries
/// (the stream and the bytes of a write, the addresses of a lookup).
///
/// Lifetime: `request.data` holds a retained reference to the operation from
/// `init` to the callback, which takes it back with ``finish(_:)``; libuv
/// calls every callback exactly once, even after a close or `uv_cancel`
/// (with `UV_ECANCELED`), so the request and whatever the operation holds
/// stay alive until then. If submitting the request fails, ``abandon()``
/// gives that reference back. The request's memory is freed in `deinit`.
class RequestOperation<Request> {
    let request: UnsafeMutablePointer<Request>
    /// The callback's status; `nil` until it ran.
    var status: Int32?
    /// Whom to wake when the callback ran: every task awaiting it (two tasks
    /// may await one shutdown).
    var waiting = WaitingWakers()

    init() {
        request = .allocate(capacity: 1)
        UnsafeMutableRawPointer(request).assumingMemoryBound(to: uv_req_t.self).pointee.data =
            Unmanaged.passRetained(self).toOpaque()
    }

    deinit {
        request.deallocate()
    }

    /// Takes back the reference held by a request whose callback runs now.
    static func finish(_ request: UnsafeMutablePointer<Request>) -> Self {
        Unmanaged<Self>.fromOpaque(address(of: request)).takeRetainedValue()
    }

    /// The address of the operation a request in flight belongs to (its
    /// `data`), which the request's reference keeps alive until `finish`.
    static func address(of request: UnsafeMutablePointer<Request>) -> UnsafeMutableRawPointer {
        UnsafeMutableRawPointer(request).assumingMemoryBound(to: uv_req_t.self).pointee.data!
    }

    /// Gives back the request's reference when submitting it failed.
    func abandon() {
        Unmanaged.passUnretained(self).release()
    }

    /// Records the callback's status and wakes every waiting task.
    func complete(status: Int32) {
        self.status = status
        waiting.wakeAll()
    }

    /// Nobody waits for the result any more: forgets the waiting tasks and
    /// asks libuv to cancel the request, which it can only do for thread-pool
    /// work not yet started (a name lookup, `spawnBlocking`). The callback
    /// still runs, later.
    func cancel() {
        waiting = WaitingWakers()
        guard status == nil else { return }
        _ = UnsafeMutableRawPointer(request).withMemoryRebound(to: uv_req_t.self, capacity: 1) { uv_cancel($0) }
    }

    /// ``cancel()`` for a request its owner shares between tasks (a file's
    /// read ahead): the tasks waiting on it are woken to poll again, and find
    /// it gone, instead of being forgotten (they waited for ever).
    func cancelWakingWaiters() {
        var waiters = waiting.take()
        cancel()
        waiters.wakeAll()
    }
}

/// A future's hold on a request it submitted: dropping it (with the future)
/// cancels the request (see ``RequestOperation/cancel()``), so a dropped
/// future's waker is never called.
///
/// It holds the request's loop, and the cancel runs there
/// (``EventLoop/onLoop(_:)``): a future may be dropped on another thread (in
/// a value an await returned there, an iterator left there, an await's job
/// that the orphaned-jobs queue ran after the loop's shutdown), where the
/// cancel ran beside the request's callback on the loop (both change the
/// operation's waiting list); without the hold, the loop's last owner could
/// tear it down meanwhile and free the loop `uv_cancel` then locked.
final class SubmittedRequest<Request, Operation: RequestOperation<Request>> {
    let operation: Operation
    let loop: EventLoop
    /// Whether other tasks may wait on the request too (a copy's chunk, which
    /// its files' next reads and writes wait for): dropping it then wakes
    /// them to poll again (``RequestOperation/cancelWakingWaiters()``), where
    /// forgetting them left them waiting for ever.
    let isShared: Bool

    init(_ operation: Operation, on loop: EventLoop, isShared: Bool = false) {
        self.operation = operation
        self.loop = loop
        self.isShared = isShared
    }

    /// The error for a poll on another thread than the request's loop's (a
    /// future moved to another loop after it started the request: the
    /// request's status and waiting list are that loop thread's alone, and an
    /// idle loop never completes it), if it is one.
    func wrongThread(_ name: @autoclosure () -> String) -> WeftError? {
        loop.wrongThread(name(), detail: "it was started on another loop")
    }

    deinit {
        let (operation, isShared) = (operation, isShared)
        loop.onLoop {
            if isShared {
                operation.cancelWakingWaiters()
            } else {
                operation.cancel()
            }
        }
    }
}

/// A request on a connection (`uv_write_t`, `uv_shutdown_t`, `uv_connect_t`):
/// it retains the connection, so the callback never reaches freed memory, and
/// for a write owns a copy of the bytes.
final class StreamRequest<Request>: RequestOperation<Request> {
    let connection: StreamConnection
    let buffer: UnsafeMutableRawPointer?
    let bufferCount: Int

    init(connection: StreamConnection, copying bytes: UnsafeRawBufferPointer? = nil) {
        self.connection = connection
        if let bytes, !bytes.isEmpty {
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: bytes.count, alignment: 1)
            buffer.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
            self.buffer = buffer
            bufferCount = bytes.count
        } else {
            buffer = nil
            bufferCount = 0
        }
        super.init()
    }

    deinit {
        buffer?.deallocate()
    }
}
