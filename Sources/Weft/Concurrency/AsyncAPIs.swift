/// Async faces of Weft's futures and streams, for `async`/`await` code. Each
/// runs the underlying future on the current loop (or ``LoopThread/shared``);
/// cancelling the Swift task drops that future and throws `CancellationError`.

/// Suspends for `duration` on the loop's timer wheel.
///
/// **Cancellation:** cancel-safe; the timer is disarmed and `CancellationError` thrown.
nonisolated(nonsending)
public func sleep(for duration: Duration) async throws(CancellationError) {
    _ = try await value(transferring: Transfer(value: sleep(for: duration) as Sleep))
}

/// Runs `operation` with a time limit: `.success` with its result, or
/// `.failure(TimedOut)` after cancelling it when time runs out first.
nonisolated(nonsending)
public func timeout<T: Sendable>(
    _ limit: Duration, _ operation: @escaping @Sendable () async -> T
) async throws(CancellationError) -> Result<T, TimedOut> {
    try await value(transferring: Transfer(value: timeout(limit, AsyncFuture(operation)))).value
}

/// A poll-based stream as an `AsyncSequence`. See ``PollStream/values``.
public struct PollStreamValues<Base: PollStream>: AsyncSequence {
    /// The stream's elements.
    public typealias Element = Base.Element
    let base: Base
    /// The loop the stream belongs to, if it is bound to one.
    let loop: LoopTaskExecutor?

    public func makeAsyncIterator() -> Iterator {
        Iterator(base: base, loop: loop)
    }

    /// Takes elements by polling the stream on its loop.
    public struct Iterator: AsyncIteratorProtocol {
        var base: Base?
        let loop: LoopTaskExecutor?

        /// The next element, or `nil` at the end.
        ///
        /// **Cancellation:** throws `CancellationError`; the stream is dropped and
        /// the sequence ends.
        public mutating func next() async throws -> Base.Element? {
            guard let stream = base.take() else { return nil }
            let (element, rest) = try await value(transferring: Transfer(value: stream.next()), on: loop).value
            if element != nil { base = rest }
            return element
        }
    }
}

extension PollStream {
    /// This stream as an `AsyncSequence`:
    /// `for try await tick in interval(every: .seconds(1)).values { ... }`.
    public var values: PollStreamValues<Self> {
        PollStreamValues(base: self, loop: nil)
    }
}

extension TCPStream {
    /// Connects to `address`.
    nonisolated(nonsending)
    public static func connect(to address: SocketAddress) async throws -> TCPStream {
        try await value(transferring: Transfer(value: Connect(address: address))).value.get()
    }

    /// Resolves `host` and connects to the first of its addresses that accepts.
    nonisolated(nonsending)
    public static func connect(host: String, port: Int) async throws -> TCPStream {
        try await value(transferring: Transfer(value: ConnectByName(host: host, port: port))).value.get()
    }

    /// Up to `maxLength` bytes; empty at end of stream. Cancel-safe.
    nonisolated(nonsending)
    public func read(upTo maxLength: Int = 64 * 1024) async throws -> [UInt8] {
        do {
            return try await awaitValue(transferring: Transfer(value: ReadSome(stream: self, maxLength: maxLength)), on: core.loop.executors.task).value.get()
        } catch is AwaitCancelled { throw core.cancelledError("read") }
    }

    /// Reads up to `buffer.count` bytes into the start of `buffer` and returns
    /// how many; 0 at end of stream (or when `buffer` is empty). The buffer is
    /// reused rather than allocated per read, as with Tokio's `read(&mut buf)`:
    ///
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
        let read = Transfer(value: ReadInto(stream: self, buffer: consume storage))
        do {
            let filled = try await awaitValue(transferring: consume read, on: core.loop.executors.task).value
            buffer = filled.buffer
            return try filled.count.get()
        } catch is AwaitCancelled {
            buffer = [UInt8](repeating: 0, count: count)
            throw core.cancelledError("read")
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
            try await awaitValue(transferring: Transfer(value: writeAll(bytes)), on: core.loop.executors.task).value.get()
        } catch is AwaitCancelled { throw core.cancelledError("write") }
    }

    /// Flushes, then half-closes: the peer reads end of stream.
    nonisolated(nonsending)
    public func shutdown() async throws {
        do {
            try await awaitValue(transferring: Transfer(value: Shutdown(writer: self)), on: core.loop.executors.task).value.get()
        } catch is AwaitCancelled { throw core.cancelledError("shutdown") }
    }
}

extension TCPListener {
    /// The next connection. Cancel-safe.
    nonisolated(nonsending)
    public func accept() async throws -> TCPStream {
        do {
            return try await awaitValue(transferring: Transfer(value: Accept(listener: self)), on: core.loop.executors.task).value.get()
        } catch is AwaitCancelled { throw core.cancelledError("accept") }
    }

    /// Accepted connections as an `AsyncSequence`; it ends when the listener closes.
    ///
    /// ```swift
    /// for try await connection in listener.connections { ... }
    /// ```
    public var connections: AsyncThrowingMapSequence<PollStreamValues<Incoming>, TCPStream> {
        PollStreamValues(base: incoming, loop: core.loop.executors.task).map { try $0.get() }
    }
}
