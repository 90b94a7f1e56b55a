/// The async twins of the TCP futures (Net/), by the one rule every async
/// twin follows (docs/ARCHITECTURE.md, "The Swift concurrency bridge"). They
/// run on the handle's own loop: at once when called there, else hopping to it.
/// UDP's `send(_:to:)` and `receive(into:)` and a stream's `write` first take
/// their future's first step synchronously on their own loop
/// (docs/ARCHITECTURE.md, "The async fast paths").

extension TCPStream {
    /// Connects to `address`.
    nonisolated(nonsending)
    public static func connect(to address: SocketAddress) async throws -> TCPStream {
        try await awaitResult(transferring: UnsafeTransfer(value: Connect(address: address)), "connect \(address)")
    }

    /// Resolves `host` (a numeric address needs no lookup) and connects to its
    /// addresses by Happy Eyeballs.
    nonisolated(nonsending)
    public static func connect(host: String, port: Int) async throws -> TCPStream {
        try await awaitResult(transferring: UnsafeTransfer(value: ConnectByName(host: host, port: port)), "connect \(host):\(port)")
    }

    /// Connects to the first of `addresses` that accepts, by Happy Eyeballs
    /// (see the future form, ``connectFuture(toAny:)``).
    nonisolated(nonsending)
    public static func connect(toAny addresses: [SocketAddress]) async throws -> TCPStream {
        try await awaitResult(transferring: UnsafeTransfer(value: ConnectToAny(addresses, operation: "connect")), "connect")
    }

    /// Up to `maxLength` bytes; empty at end of stream (and at once for a
    /// `maxLength` of 0). Cancel-safe.
    nonisolated(nonsending)
    public func read(upTo maxLength: Int = 64 * 1024) async throws -> [UInt8] {
        try await readStream(upTo: maxLength, connection)
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
    /// The buffer's count never changes, and it stays the caller's own array:
    /// past the count its bytes are as they were, unless bytes the stream read
    /// into it while the read waited went to a concurrent reader. When the
    /// read is cancelled, the buffer is a new one of the same count, zeroed.
    ///
    /// **Cancellation:** cancel-safe: no byte is consumed from the stream unless
    /// the read completes.
    nonisolated(nonsending)
    public func read(into buffer: inout [UInt8]) async throws -> Int {
        try await readStream(into: &buffer, connection)
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
        try await writeStream(bytes, to: self, connection)
    }

    /// Flushes, then half-closes: the peer reads end of stream. Fails with
    /// `ENOTCONN` when the peer reset the connection.
    nonisolated(nonsending)
    public func shutdown() async throws {
        try await shutdownStream(self, connection)
    }

    /// Waits until every byte written has been handed to the kernel (a write
    /// cancelled or timed out may have left some queued). See ``Flush``.
    nonisolated(nonsending)
    public func flush() async throws {
        try await flushStream(self, connection)
    }
}

extension TCPListener {
    /// Resolves `host` and binds its first address (IPv4 preferred), on the
    /// calling task's loop (or ``LoopThread/shared``). See the future form,
    /// ``bindFuture(host:port:backlog:reusePort:)``.
    nonisolated(nonsending)
    public static func bind(host: String, port: Int, backlog: Int = 1024, reusePort: Bool = false) async throws -> TCPListener {
        try await bind(host: host, port: port, options: SocketOptions(reusePort: reusePort, backlog: backlog))
    }

    /// Resolves `host` and binds its first address (IPv4 preferred) with
    /// `options`. See the future form, `bindFuture(host:port:options:)`.
    nonisolated(nonsending)
    public static func bind(host: String, port: Int, options: SocketOptions) async throws -> TCPListener {
        try await awaitResult(transferring: UnsafeTransfer(value: BindByName(host: host, port: port, options: options)), "bind \(host):\(port)")
    }

    /// The next connection. Cancel-safe.
    nonisolated(nonsending)
    public func accept() async throws -> TCPStream {
        do {
            return try await awaitValue(transferring: UnsafeTransfer(value: Accept(listener: self)), on: acceptor.loop).value.get()
        } catch let cancelled as AwaitCancelled { throw acceptor.cancelledError(cancelled, "accept") }
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
    public var connections: PollStreamResults<Incoming, TCPStream> {
        PollStreamResults(values: incoming.values, operation: "accept")
    }
}

/// The addresses `host` resolves to (IPv4 and IPv6), with `port`, looked up
/// with `getaddrinfo` on libuv's thread pool. The poll form is
/// ``resolveFuture(host:port:)``.
///
/// Fails with `.invalidArgument` for a port outside 0...65535 or a host
/// holding a NUL, `.notFound` for a name that does not resolve.
///
/// **Cancellation:** cancelling the task cancels the lookup if it has not
/// started, and throws `CancellationError`.
nonisolated(nonsending)
public func resolve(host: String, port: Int) async throws -> [SocketAddress] {
    try await awaitResult(transferring: UnsafeTransfer(value: Resolve(host: host, port: port)), "resolve \(host):\(port)")
}

extension UnixStream {
    /// Connects to the Unix socket `address` (see ``connectFuture(to:)``).
    nonisolated(nonsending)
    public static func connect(to address: UnixAddress) async throws -> UnixStream {
        try await awaitResult(transferring: UnsafeTransfer(value: UnixConnect(address: address)), "connect \(address)")
    }

    /// Up to `maxLength` bytes; empty at end of stream (and at once for a
    /// `maxLength` of 0). Cancel-safe.
    nonisolated(nonsending)
    public func read(upTo maxLength: Int = 64 * 1024) async throws -> [UInt8] {
        try await readStream(upTo: maxLength, connection)
    }

    /// Reads up to `buffer.count` bytes into the start of `buffer`, as
    /// ``TCPStream/read(into:)`` (libuv reads straight into it while it waits).
    ///
    /// **Cancellation:** cancel-safe; the buffer is then a new zeroed one of
    /// the same count.
    nonisolated(nonsending)
    public func read(into buffer: inout [UInt8]) async throws -> Int {
        try await readStream(into: &buffer, connection)
    }

    /// Writes all of `bytes` and waits until they reached the OS. Not
    /// cancel-safe: a prefix may have been written when cancelled.
    nonisolated(nonsending)
    public func write(_ bytes: [UInt8]) async throws {
        try await write(bytes[...])
    }

    /// Writes all of `bytes` (a slice) and waits until they reached the OS.
    /// Not cancel-safe.
    nonisolated(nonsending)
    public func write(_ bytes: ArraySlice<UInt8>) async throws {
        try await writeStream(bytes, to: self, connection)
    }

    /// Flushes, then half-closes: the peer reads end of stream; this side can
    /// still read. Fails with `ENOTCONN` when the peer reset the connection.
    nonisolated(nonsending)
    public func shutdown() async throws {
        try await shutdownStream(self, connection)
    }

    /// Waits until every byte written has been handed to the kernel (a write
    /// cancelled or timed out may have left some queued). See ``Flush``.
    nonisolated(nonsending)
    public func flush() async throws {
        try await flushStream(self, connection)
    }
}

// The halves of a split stream read and write as the whole stream does: the
// same async operations, on the stream's loop, so that a task holding one half
// awaits its reads (or writes) without building a future (Tokio's `OwnedReadHalf`
// and `OwnedWriteHalf`).

extension ReadHalf where Stream == TCPStream {
    /// Up to `maxLength` bytes of the whole stream, as ``TCPStream/read(upTo:)``.
    nonisolated(nonsending)
    public func read(upTo maxLength: Int = 64 * 1024) async throws -> [UInt8] {
        try await readStream(upTo: maxLength, stream.connection)
    }

    /// Reads into the start of `buffer`, as ``TCPStream/read(into:)``.
    nonisolated(nonsending)
    public func read(into buffer: inout [UInt8]) async throws -> Int {
        try await readStream(into: &buffer, stream.connection)
    }
}

extension ReadHalf where Stream == UnixStream {
    /// Up to `maxLength` bytes of the whole stream, as ``UnixStream/read(upTo:)``.
    nonisolated(nonsending)
    public func read(upTo maxLength: Int = 64 * 1024) async throws -> [UInt8] {
        try await readStream(upTo: maxLength, stream.connection)
    }

    /// Reads into the start of `buffer`, as ``UnixStream/read(into:)``.
    nonisolated(nonsending)
    public func read(into buffer: inout [UInt8]) async throws -> Int {
        try await readStream(into: &buffer, stream.connection)
    }
}

extension WriteHalf where Stream == TCPStream {
    /// Writes all of `bytes` to the whole stream, as ``TCPStream/write(_:)-([UInt8])``.
    nonisolated(nonsending)
    public func write(_ bytes: [UInt8]) async throws {
        try await writeStream(bytes[...], to: stream, stream.connection)
    }

    /// Writes all of `bytes`, a slice, as ``TCPStream/write(_:)-(ArraySlice<UInt8>)``.
    nonisolated(nonsending)
    public func write(_ bytes: ArraySlice<UInt8>) async throws {
        try await writeStream(bytes, to: stream, stream.connection)
    }

    /// Flushes, then half-closes the whole stream, as ``TCPStream/shutdown()``:
    /// the read half can still read.
    nonisolated(nonsending)
    public func shutdown() async throws {
        try await shutdownStream(stream, stream.connection)
    }

    /// Waits until every byte written to the stream has been handed to the
    /// kernel, as ``TCPStream/flush()``.
    nonisolated(nonsending)
    public func flush() async throws {
        try await flushStream(stream, stream.connection)
    }
}

extension WriteHalf where Stream == UnixStream {
    /// Writes all of `bytes` to the whole stream, as ``UnixStream/write(_:)-([UInt8])``.
    nonisolated(nonsending)
    public func write(_ bytes: [UInt8]) async throws {
        try await writeStream(bytes[...], to: stream, stream.connection)
    }

    /// Writes all of `bytes`, a slice, as ``UnixStream/write(_:)-(ArraySlice<UInt8>)``.
    nonisolated(nonsending)
    public func write(_ bytes: ArraySlice<UInt8>) async throws {
        try await writeStream(bytes, to: stream, stream.connection)
    }

    /// Flushes, then half-closes the whole stream, as ``UnixStream/shutdown()``:
    /// the read half can still read.
    nonisolated(nonsending)
    public func shutdown() async throws {
        try await shutdownStream(stream, stream.connection)
    }

    /// Waits until every byte written to the stream has been handed to the
    /// kernel, as ``UnixStream/flush()``.
    nonisolated(nonsending)
    public func flush() async throws {
        try await flushStream(stream, stream.connection)
    }
}

extension UnixListener {
    /// The next connection. Cancel-safe.
    nonisolated(nonsending)
    public func accept() async throws -> UnixStream {
        do {
            return try await awaitValue(transferring: UnsafeTransfer(value: UnixAccept(listener: self)), on: acceptor.loop).value.get()
        } catch let cancelled as AwaitCancelled { throw acceptor.cancelledError(cancelled, "accept") }
    }

    /// Accepted connections as an `AsyncSequence`; it ends when the listener closes.
    public var connections: PollStreamResults<UnixIncoming, UnixStream> {
        PollStreamResults(values: incoming.values, operation: "accept")
    }
}

extension UDPSocket {
    /// Resolves `host` (a numeric address needs no lookup) and binds a UDP
    /// socket to its first address, IPv4 preferred, on the calling task's loop
    /// (or ``LoopThread/shared``). See ``bind(_:options:runtime:)`` for the
    /// errors.
    nonisolated(nonsending)
    public static func bind(host: String, port: Int, options: Options = Options()) async throws -> UDPSocket {
        try await awaitResult(transferring: UnsafeTransfer(value: UDPBindByName(host: host, port: port, options: options)), "bind udp \(host):\(port)")
    }

    /// Sends `bytes` as one datagram to `address` and returns once the kernel
    /// took it; waits while the send queue is full (backpressure).
    ///
    /// Fails with `.invalidArgument` for more than 65,507 bytes, `.closed` on
    /// a closed socket, or the kernel's error (`EHOSTUNREACH`, `EISCONN` on a
    /// connected socket, …) with the address in the operation.
    ///
    /// **Cancellation:** throws `CancellationError`; the datagram may have been
    /// sent already.
    nonisolated(nonsending)
    public func send(_ bytes: [UInt8], to address: SocketAddress) async throws {
        try await send(bytes[...], to: address)
    }

    /// Sends `bytes`, a slice such as the filled prefix of a buffer that
    /// ``receive(into:)`` filled, as one datagram to `address`, and returns
    /// once the kernel took it. No copy is made unless the kernel cannot take
    /// it at once (then it is queued, as ``send(_:to:)-([UInt8],_)`` says). Errors as
    /// ``send(_:to:)-([UInt8],_)``.
    ///
    /// **Cancellation:** throws `CancellationError`; the datagram may have been
    /// sent already.
    ///
    /// On its own loop it first does what the poll future's first poll would,
    /// `uv_udp_try_send`, with no future and no await (``UDPSocket`` sends
    /// most datagrams this way, and an await per datagram costs about as
    /// much as the rest of Weft's work for it); only when that cannot finish
    /// the send does it await ``sendFuture(_:to:)-([UInt8],_)``, which queues the datagram
    /// without trying again. Always inlined, so that `send(_: [UInt8], to:)`
    /// costs no extra task frame.
    @inline(__always)
    nonisolated(nonsending)
    public func send(_ bytes: ArraySlice<UInt8>, to address: SocketAddress) async throws {
        var tryFirst = true
        if endpoint.isOnRunningLoop, let sent = endpoint.sendAtOnce(bytes, to: address) {
            switch sent {
            case .sent: return
            case .failed(let code): throw WeftError(uvCode: code, operation: "send to \(address)")
            case .mustQueue: tryFirst = false
            }
        }
        do {
            try await awaitValue(transferring: UnsafeTransfer(value: UDPSend(socket: self, bytes: bytes, address: address, tryFirst: tryFirst)),
                                 on: endpoint.loop).value.get()
        } catch let cancelled as AwaitCancelled { throw endpoint.cancelledError(cancelled, "send to \(address)") }
    }

    /// Sends `bytes` to the connected peer (see ``connect(to:)``); fails with
    /// `EDESTADDRREQ` when not connected, `ECONNREFUSED` when an earlier
    /// datagram was refused. Otherwise as ``send(_:to:)-([UInt8],_)``.
    nonisolated(nonsending)
    public func send(_ bytes: [UInt8]) async throws {
        do {
            try await awaitValue(transferring: UnsafeTransfer(value: UDPSend(socket: self, bytes: bytes[...], address: nil)), on: endpoint.loop).value.get()
        } catch let cancelled as AwaitCancelled { throw endpoint.cancelledError(cancelled, "send") }
    }

    /// The next datagram, its sender and whether it was truncated.
    ///
    /// Fails with `.closed` once the socket is closed, or with an error the
    /// socket reported (`ECONNREFUSED` on a connected socket whose peer has
    /// no listener), once; receiving again then goes on.
    ///
    /// **Cancellation:** cancel-safe: throws `CancellationError` and no
    /// datagram is lost.
    nonisolated(nonsending)
    public func receive() async throws -> UDPDatagram {
        do {
            return try await awaitValue(transferring: UnsafeTransfer(value: UDPReceive(socket: self)), on: endpoint.loop).value.get()
        } catch let cancelled as AwaitCancelled { throw endpoint.cancelledError(cancelled, "receive") }
    }

    /// Copies the next datagram into the start of `buffer` and returns its
    /// length, its sender and whether it was cut short. The buffer is reused
    /// rather than an array allocated per datagram (Tokio's `recv_from(&mut
    /// buf)`); send its filled prefix back with ``send(_:to:)-(ArraySlice<UInt8>,_)``:
    ///
    /// <!-- snippet: compile-only: waits for a datagram from a peer; prelude: udpSocket -->
    /// ```swift
    /// var buffer = [UInt8](repeating: 0, count: 2048)
    /// let receipt = try await socket.receive(into: &buffer)
    /// try await socket.send(buffer[..<receipt.count], to: receipt.sender)
    /// ```
    ///
    /// The buffer's count never changes. A datagram longer than the buffer
    /// (or than ``Options/maximumDatagramSize``) is cut short and marked
    /// ``UDPReceipt/isTruncated``; the rest of it is lost, as with `recvfrom`.
    /// An empty buffer receives a datagram as 0 bytes, truncated unless it
    /// was empty.
    ///
    /// Fails as ``receive()``: with `.closed` once the socket is closed, or
    /// with an error the socket reported (`ECONNREFUSED`), once.
    ///
    /// **Cancellation:** cancel-safe: throws `CancellationError` and no
    /// datagram is lost; the buffer is then a new one of the same count, zeroed.
    nonisolated(nonsending)
    public func receive(into buffer: inout [UInt8]) async throws -> UDPReceipt {
        // On its own loop, a datagram already queued is taken at once, with no
        // future and no await (as `send(_:to:)` says); the budget still applies.
        if endpoint.isOnRunningLoop,
           let received = endpoint.takeQueued({ UDPReceiveInto.copy($0, $1, into: &buffer) }) {
            return try received.get()
        }
        let count = buffer.count
        // Hand the storage over (not a copy of the reference), so writing into
        // it on the loop needs no copy-on-write.
        var storage: [UInt8] = []
        swap(&storage, &buffer)
        let receive = UnsafeTransfer(value: BorrowedUDPReceiveInto(endpoint: endpoint, buffer: consume storage))
        do {
            // Taken apart, not read field by field: each field read copied
            // the pair (a retain of the buffer and of the sender's address).
            let (filled, receipt) = try await awaitValue(transferring: consume receive, on: endpoint.loop).value
            buffer = filled
            return try receipt.get()
        } catch let cancelled as AwaitCancelled {
            buffer = [UInt8](repeating: 0, count: count)
            throw endpoint.cancelledError(cancelled, "receive")
        }
    }

    /// The received datagrams as an `AsyncSequence`; it ends when the socket
    /// closes, and throws the first error the socket reports.
    ///
    /// <!-- snippet: compile-only: echoes until the socket closes; prelude: udpSocket -->
    /// ```swift
    /// for try await datagram in socket.datagrams {
    ///     try await socket.send(datagram.bytes, to: datagram.sender)
    /// }
    /// ```
    public var datagrams: PollStreamResults<UDPIncoming, UDPDatagram> {
        PollStreamResults(values: incoming.values, operation: "receive")
    }
}

extension SocketOwner {
    /// What an async operation on this handle throws when awaiting its future
    /// was cancelled: ``WeftError/Kind/closed`` if that is because the handle's
    /// loop has shut down (the await ended on the loop's orphaned-jobs queue,
    /// and the shutdown closed the handle), else `CancellationError`.
    ///
    /// The async operations each spell out their `do`/`catch` around
    /// `awaitValue` rather than share a generic helper: called, the helper costs
    /// each read and write a frame on the task; always inlined, it costs a
    /// retain and a release, or (generic over this protocol) crashes the 6.3
    /// compiler.
    func cancelledError(_ cancelled: AwaitCancelled, _ operation: String) -> any Error {
        awaitCancelledError(cancelled, else: closedByItsLoopsShutdown(operation))
    }
}

// The async reads, writes, flush and shutdown of every stream over a
// `StreamConnection` (TCPStream, UnixStream, PipeStream), once: each awaits its future on the connection's
// loop, and a cancelled await throws the connection's cancellation error.

/// Up to `maxLength` bytes of the stream over `connection`; empty at end of
/// stream. The caller, a method of the stream, keeps the stream (and so its
/// connection) alive and open while this awaits: the future borrows it.
@inline(__always)
nonisolated(nonsending)
func readStream(upTo maxLength: Int, _ connection: StreamConnection) async throws -> [UInt8] {
    do {
        return try await awaitValue(transferring: UnsafeTransfer(value: BorrowedReadSome(connection: connection, maxLength: maxLength)), on: connection.loop).value.get()
    } catch let cancelled as AwaitCancelled { throw connection.cancelledError(cancelled, "read") }
}

/// Reads into the start of `buffer` and returns how many bytes; see
/// ``TCPStream/read(into:)``.
@inline(__always)
nonisolated(nonsending)
func readStream(into buffer: inout [UInt8], _ connection: StreamConnection) async throws -> Int {
    let count = buffer.count
    // Hand the storage over (not a copy of the reference), so writing into
    // it on the loop needs no copy-on-write.
    var storage: [UInt8] = []
    swap(&storage, &buffer)
    let read = UnsafeTransfer(value: ReadInto(connection: connection, buffer: consume storage))
    do {
        let (filled, count) = try await awaitValue(transferring: consume read, on: connection.loop).value
        buffer = filled
        return try count.get()
    } catch let cancelled as AwaitCancelled {
        buffer = [UInt8](repeating: 0, count: count)
        throw connection.cancelledError(cancelled, "read")
    }
}

/// Writes all of `bytes` to `writer` and waits until they reached the OS.
///
/// On the connection's loop it first does what the future's first poll
/// would (``StreamConnection/acceptWrite(_:)``), with no future and no await:
/// a write the kernel takes whole (most of an echo's) returns from there.
/// The future then writes what is left and waits for the queue to drain
/// (``awaitWrite(_:to:_:)``); an error is the future's to report.
@inline(__always)
nonisolated(nonsending)
func writeStream<Writer: AsyncWrite>(_ bytes: ArraySlice<UInt8>, to writer: Writer, _ connection: StreamConnection) async throws {
    var rest = bytes
    // A spent budget leaves it all to the future, which yields (pollWrite).
    if connection.loop.isRunningOnCallingThread, Budget.consume() {
        switch bytes.withUnsafeBytes({ connection.acceptWrite($0) }) {
        case .success(let accepted)?:
            if accepted == bytes.count && connection.queuedWriteBytes == 0 { return }
            rest = bytes.dropFirst(accepted)
        case .failure?:
            break  // the future reports it
        case nil:
            Budget.refund()  // the queue is full: the future waits, and spends nothing
        }
    }
    try await awaitWrite(rest, to: writer, connection)
}

/// The part of ``writeStream(_:to:_:)`` that awaits: writes `bytes` by
/// `writer`'s future and waits for the queue to drain.
///
/// Not inlined, so that its frame (the future and the await's state, more
/// than half a task-allocator slab) is on the task's stack only while a
/// write waits. Inlined, every write's frame held it, and a connection's
/// task that had written once kept a second 1 KiB slab for good
/// (docs/BENCHMARKS.md, "Idle connections: what each one holds").
@inline(never)
nonisolated(nonsending)
func awaitWrite<Writer: AsyncWrite>(_ bytes: ArraySlice<UInt8>, to writer: Writer, _ connection: StreamConnection) async throws {
    do {
        try await awaitValue(transferring: UnsafeTransfer(value: writer.writeAll(bytes)), on: connection.loop).value.get()
    } catch let cancelled as AwaitCancelled { throw connection.cancelledError(cancelled, "write") }
}

/// Waits until everything written to `writer` before it was handed to the kernel.
nonisolated(nonsending)
func flushStream<Writer: AsyncWrite>(_ writer: Writer, _ connection: StreamConnection) async throws {
    do {
        try await awaitValue(transferring: UnsafeTransfer(value: Flush(writer: writer)), on: connection.loop).value.get()
    } catch let cancelled as AwaitCancelled { throw connection.cancelledError(cancelled, "flush") }
}

/// Flushes `writer`, then half-closes it.
nonisolated(nonsending)
func shutdownStream<Writer: AsyncWrite>(_ writer: Writer, _ connection: StreamConnection) async throws {
    do {
        try await awaitValue(transferring: UnsafeTransfer(value: Shutdown(writer: writer)), on: connection.loop).value.get()
    } catch let cancelled as AwaitCancelled { throw connection.cancelledError(cancelled, "shutdown") }
}
