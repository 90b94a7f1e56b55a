/// The async twins of the TCP futures (Net/), by the one rule every async
/// twin follows (docs/ARCHITECTURE.md, "The Swift concurrency bridge"). They
/// run on the handle's own loop: at once when called there, else hopping to it.

extension TCPStream {
    /// Connects to `address`.
    nonisolated(nonsending)
    public static func connect(to address: SocketAddress) async throws -> TCPStream {
        try await value(transferring: UnsafeTransfer(value: Connect(address: address))).value.get()
    }

    /// Resolves `host` and connects to its addresses by Happy Eyeballs.
    nonisolated(nonsending)
    public static func connect(host: String, port: Int) async throws -> TCPStream {
        try await value(transferring: UnsafeTransfer(value: ConnectByName(host: host, port: port))).value.get()
    }

    /// Connects to the first of `addresses` that accepts, by Happy Eyeballs
    /// (see the future form, ``connectFuture(toAny:)``).
    nonisolated(nonsending)
    public static func connect(toAny addresses: [SocketAddress]) async throws -> TCPStream {
        try await value(transferring: UnsafeTransfer(value: ConnectToAny(addresses, operation: "connect"))).value.get()
    }

    /// Up to `maxLength` bytes; empty at end of stream. Cancel-safe.
    nonisolated(nonsending)
    public func read(upTo maxLength: Int = 64 * 1024) async throws -> [UInt8] {
        do {
            return try await awaitValue(transferring: UnsafeTransfer(value: ReadSome(stream: self, maxLength: maxLength)), on: connection.loop).value.get()
        } catch is AwaitCancelled { throw connection.cancelledError("read") }
    }

    /// Reads up to `buffer.count` bytes into the start of `buffer` and returns
    /// how many; 0 at end of stream (or when `buffer` is empty). The buffer is
    /// reused rather than allocated per read, as with Tokio's `read(&mut buf)`:
    ///
    /// <!-- snippet: prelude: acceptedStream -->
    /// ```swift
    /// var buffer = [UInt8](repeating: 0, count: 16 * 1024)
    /// while true {
    ///     let count = try await stream.read(into: &buffer)
    ///     if count == 0 { break }
    ///     try await stream.write(buffer[..<count])
    /// }
    /// ```
    ///
    /// The buffer's count never changes. When the read is cancelled, the buffer
    /// is a new one of the same count, zeroed.
    ///
    /// **Cancellation:** cancel-safe: no byte is consumed from the stream unless
    /// the read completes.
    nonisolated(nonsending)
    public func read(into buffer: inout [UInt8]) async throws -> Int {
        let count = buffer.count
        // Hand the storage over (not a copy of the reference), so writing into
        // it on the loop needs no copy-on-write.
        var storage: [UInt8] = []
        swap(&storage, &buffer)
        let read = UnsafeTransfer(value: ReadInto(stream: self, buffer: consume storage))
        do {
            let filled = try await awaitValue(transferring: consume read, on: connection.loop).value
            buffer = filled.buffer
            return try filled.count.get()
        } catch is AwaitCancelled {
            buffer = [UInt8](repeating: 0, count: count)
            throw connection.cancelledError("read")
        }
    }

    /// Writes all of `bytes` and waits until they reached the OS. Not cancel-safe:
    /// a prefix may have been written when cancelled.
    nonisolated(nonsending)
    public func write(_ bytes: [UInt8]) async throws {
        try await write(bytes[...])
    }

    /// Writes all of `bytes`, a slice such as the filled prefix of a read
    /// buffer, and waits until they reached the OS. Not cancel-safe: a prefix
    /// may have been written when cancelled.
    ///
    /// Always inlined, so that `write(_: [UInt8])` costs no extra task frame.
    @inline(__always)
    nonisolated(nonsending)
    public func write(_ bytes: ArraySlice<UInt8>) async throws {
        do {
            try await awaitValue(transferring: UnsafeTransfer(value: writeAll(bytes)), on: connection.loop).value.get()
        } catch is AwaitCancelled { throw connection.cancelledError("write") }
    }

    /// Flushes, then half-closes: the peer reads end of stream.
    nonisolated(nonsending)
    public func shutdown() async throws {
        do {
            try await awaitValue(transferring: UnsafeTransfer(value: Shutdown(writer: self)), on: connection.loop).value.get()
        } catch is AwaitCancelled { throw connection.cancelledError("shutdown") }
    }
}

extension TCPListener {
    /// Resolves `host` and binds its first address (IPv4 preferred), on the
    /// calling task's loop (or ``LoopThread/shared``). See the future form,
    /// ``bindFuture(host:port:backlog:reusePort:)``.
    nonisolated(nonsending)
    public static func bind(host: String, port: Int, backlog: Int = 1024, reusePort: Bool = false) async throws -> TCPListener {
        try await value(transferring: UnsafeTransfer(value: BindByName(host: host, port: port, backlog: backlog, reusePort: reusePort))).value.get()
    }

    /// The next connection. Cancel-safe.
    nonisolated(nonsending)
    public func accept() async throws -> TCPStream {
        do {
            return try await awaitValue(transferring: UnsafeTransfer(value: Accept(listener: self)), on: acceptor.loop).value.get()
        } catch is AwaitCancelled { throw acceptor.cancelledError("accept") }
    }

    /// Accepted connections as an `AsyncSequence`; it ends when the listener closes.
    ///
    /// <!-- snippet: compile-only: serves until the listener is closed -->
    /// ```swift
    /// let loop = try LoopThread()
    /// let server = loop.spawn {
    ///     let listener = try TCPListener.bind(SocketAddress("127.0.0.1:7000"))
    ///     for try await connection in listener.connections {
    ///         loop.spawn { try await connection.write(Array("hello\n".utf8)); connection.close() }
    ///     }
    /// }
    /// try await server.value
    /// ```
    public var connections: AsyncThrowingMapSequence<PollStreamValues<Incoming>, TCPStream> {
        PollStreamValues(base: incoming, loop: acceptor.loop).map { try $0.get() }
    }
}

extension TCPHandleOwner {
    /// What an async operation on this handle throws when awaiting its future
    /// was cancelled: ``WeftError/Kind/closed`` if that is because the handle's
    /// loop has shut down (the task runs on the loop's orphaned-jobs queue, and
    /// the shutdown closed the handle), else `CancellationError`.
    ///
    /// The async operations each spell out their `do`/`catch` around
    /// `awaitValue` rather than share a generic helper: called, the helper costs
    /// each read and write a frame on the task; always inlined, it costs a
    /// retain and a release, or (generic over this protocol) crashes the 6.3
    /// compiler.
    func cancelledError(_ operation: String) -> any Error {
        guard loop.isRunningOrphanedJobs else { return CancellationError() }
        return WeftError(.closed, operation: operation, detail: "its loop has shut down")
    }
}
