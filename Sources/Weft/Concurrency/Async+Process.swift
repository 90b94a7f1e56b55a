/// The async twins of the process and pipe futures (Process/), by the one rule
/// every async twin follows (docs/ARCHITECTURE.md, "The Swift concurrency
/// bridge"). Spawning and making a pipe run on the calling task's loop (else
/// the shared one); the rest on the child's or the stream's own loop.
///
/// A spawn, a run, a wait or a new pipe whose loop shuts down under it throws
/// ``WeftError/Kind/shutDown``, as ``ChildProcess`` promises and the poll
/// forms report, and a pipe's or standard stream's read or write
/// ``WeftError/Kind/closed``, not `CancellationError`: the task was not
/// cancelled (``awaitCancelledError(_:else:)`` tells the two apart).

extension Command {
    /// Spawns the child (see ``spawnFuture()``) on the calling task's loop, or
    /// the shared one. Fails with the libuv error naming the executable:
    /// ``WeftError/Code/notFound`` (`ENOENT`) when there is no such program,
    /// ``WeftError/Code/permissionDenied`` when it is not executable,
    /// ``WeftError/Code/tooManyOpenFiles`` when out of descriptors.
    nonisolated(nonsending)
    public func spawn() async throws -> ChildProcess {
        do {
            return try await awaitValue(transferring: UnsafeTransfer(value: spawnFuture())).value.get()
        } catch let cancelled as AwaitCancelled { throw loopShutDown(cancelled, "spawn") }
    }

    /// Spawns the child with inherited standard streams (unless set otherwise)
    /// and waits for its exit (see ``statusFuture()``).
    ///
    /// **Cancellation:** the child runs on (killed with ``killOnDrop``) and is
    /// reaped; this throws `CancellationError`. In a task cancelled already,
    /// nothing is spawned.
    nonisolated(nonsending)
    public func status() async throws -> ProcessExitStatus {
        // The spawn is the future's first poll, which an await makes before
        // it looks at the task's cancellation: the child started, with
        // nothing left to wait for it.
        if Task.isCancelled { throw CancellationError() }
        do {
            return try await awaitValue(transferring: UnsafeTransfer(value: statusFuture())).value.get()
        } catch let cancelled as AwaitCancelled { throw loopShutDown(cancelled, "status") }
    }

    /// Spawns the child with its standard output and error piped (its input
    /// `/dev/null` unless set otherwise), collects both, and waits for its exit
    /// (see ``outputFuture(limit:)``). If it writes more than `limit` bytes to
    /// either, it is killed (unless it has exited already) and this fails
    /// with `ENOBUFS`.
    ///
    /// **Cancellation:** as ``status()``; what was collected is dropped.
    nonisolated(nonsending)
    public func output(limit: Int = 16 << 20) async throws -> ProcessOutput {
        if Task.isCancelled { throw CancellationError() }  // as status()
        do {
            return try await awaitValue(transferring: UnsafeTransfer(value: outputFuture(limit: limit))).value.get()
        } catch let cancelled as AwaitCancelled { throw loopShutDown(cancelled, "output") }
    }

    /// What `operation` throws when its await was cancelled: `.shutDown` if
    /// the calling task's loop shut down under it, else `CancellationError`.
    private func loopShutDown(_ cancelled: AwaitCancelled, _ operation: String) -> any Error {
        awaitCancelledError(cancelled, else: WeftError(.shutDown, operation: operation,
                                                      detail: "executable \(executable.debugDescription): its loop shut down"))
    }
}

extension ChildProcess {
    /// Waits for the child's exit, after closing its ``standardInput`` (see
    /// ``waitFuture()``).
    ///
    /// **Cancellation:** cancel-safe: the child is left alone.
    nonisolated(nonsending)
    public func wait() async throws -> ProcessExitStatus {
        do {
            return try await awaitValue(transferring: UnsafeTransfer(value: waitFuture()), on: process.loop).value.get()
        } catch let cancelled as AwaitCancelled {
            throw awaitCancelledError(cancelled, else: WeftError(
                .shutDown, operation: "wait", detail: "the loop shut down before child \(processID) exited"))
        }
    }
}

extension PipeStream {
    /// Makes an anonymous pipe on the calling task's loop, or the shared one
    /// (see ``pipeFuture()``).
    nonisolated(nonsending)
    public static func pipe() async throws -> (reader: PipeStream, writer: PipeStream) {
        try await awaitResult(transferring: UnsafeTransfer(value: OpenPipe()), "pipe")
    }

    /// Up to `maxLength` bytes; empty at end of stream. Cancel-safe.
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

    /// Flushes, then closes the write direction: the reader (a child reading
    /// its standard input) reads end of file.
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

extension StandardStream {
    /// Up to `maxLength` bytes; empty at end of stream. Cancel-safe. See
    /// ``readFuture(upTo:)``.
    nonisolated(nonsending)
    public func read(upTo maxLength: Int = 64 * 1024) async throws -> [UInt8] {
        try await awaitResult(transferring: UnsafeTransfer(value: readFuture(upTo: maxLength)), on: loop, "read")
    }

    /// Writes all of `bytes` and waits until they reached the OS (flushed).
    /// Not cancel-safe: a prefix may have been written when cancelled.
    nonisolated(nonsending)
    public func write(_ bytes: [UInt8]) async throws {
        try await awaitResult(transferring: UnsafeTransfer(value: writeAll(bytes)), on: loop, "write")
    }

    /// Waits until every byte written has reached the OS.
    nonisolated(nonsending)
    public func flush() async throws {
        try await awaitResult(transferring: UnsafeTransfer(value: Flush(writer: self)), on: loop, "flush")
    }

    /// Flushes, then closes a terminal's or pipe's stream (a pipe has no
    /// half-close); flushes a file.
    nonisolated(nonsending)
    public func shutdown() async throws {
        try await awaitResult(transferring: UnsafeTransfer(value: Shutdown(writer: self)), on: loop, "shutdown")
    }
}
