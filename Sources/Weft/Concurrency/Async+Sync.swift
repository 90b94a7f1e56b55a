/// The async twins of the synchronisation primitives (Sync/): each awaits its
/// poll future through the bridge (`value(transferring:)`), by the one rule
/// every async twin follows (docs/ARCHITECTURE.md, "The Swift concurrency
/// bridge").

extension AsyncLock {
    /// Waits for the lock, from `async` code.
    ///
    /// **Cancellation:** cancel-safe (see the type); throws `CancellationError`.
    nonisolated(nonsending)
    public func lock() async throws(CancellationError) -> AsyncLockGuard<Value> {
        try await Weft.value(transferring: UnsafeTransfer(value: lockFuture() as AsyncLockAcquire<Value>)).value
    }
}

extension OneshotReceiver {
    /// The value, awaited from `async` code. Throws ``ChannelClosed`` when the
    /// sender was dropped without sending.
    ///
    /// **Cancellation:** cancel-safe (see the type); throws `CancellationError`.
    nonisolated(nonsending)
    public func receive() async throws -> Value {
        try await Weft.value(transferring: UnsafeTransfer(value: self)).value.get()
    }
}

extension CancellationToken {
    /// Waits until the token is cancelled, from `async` code.
    ///
    /// **Cancellation:** throws `CancellationError` if the calling Swift task is
    /// cancelled first.
    nonisolated(nonsending)
    public func cancelled() async throws(CancellationError) {
        _ = try await Weft.value(transferring: UnsafeTransfer(value: cancelledFuture() as TokenCancelled))
    }
}

extension JoinSet {
    /// The next result to finish, from `async` code on a Weft loop; `nil` when
    /// the set is empty.
    ///
    /// **Cancellation:** cancel-safe; throws `CancellationError`.
    nonisolated(nonsending)
    public func next() async throws(CancellationError) -> Result<Output, JoinError>? {
        try await Weft.value(transferring: UnsafeTransfer(value: nextFuture() as JoinSetNext<Output>)).value
    }
}

extension TaskTracker {
    /// Waits until the tracker is closed and no work is live, from `async` code.
    ///
    /// **Cancellation:** cancel-safe; throws `CancellationError`.
    nonisolated(nonsending)
    public func wait() async throws(CancellationError) {
        _ = try await Weft.value(transferring: UnsafeTransfer(value: waitFuture() as TaskTrackerWait))
    }
}

extension Notify {
    /// Waits for a notification, from `async` code.
    ///
    /// **Cancellation:** see the type; throws `CancellationError`.
    nonisolated(nonsending)
    public func notified() async throws(CancellationError) {
        _ = try await Weft.value(transferring: UnsafeTransfer(value: notifiedFuture() as Notified))
    }
}

extension BroadcastReceiver {
    /// The next event, awaited from `async` code; `nil` once every sender is
    /// gone and everything was read.
    ///
    /// **Cancellation:** cancel-safe (see the type); throws `CancellationError`.
    nonisolated(nonsending)
    public mutating func receive() async throws(CancellationError) -> BroadcastEvent<Value>? {
        let (event, rest) = try await Weft.value(transferring: UnsafeTransfer(value: next())).value
        self = rest
        return event
    }
}

extension WatchReceiver {
    /// Waits for a change, from `async` code. Throws ``ChannelClosed`` once
    /// every sender is gone.
    ///
    /// **Cancellation:** cancel-safe (see the type); throws `CancellationError`.
    nonisolated(nonsending)
    public func changed() async throws {
        try await Weft.value(transferring: UnsafeTransfer(value: changedFuture())).value.get()
    }
}

extension WatchSender {
    /// Waits until every receiver is gone, from `async` code.
    ///
    /// **Cancellation:** cancel-safe; throws `CancellationError`.
    nonisolated(nonsending)
    public func closed() async throws(CancellationError) {
        _ = try await Weft.value(transferring: UnsafeTransfer(value: closedFuture()))
    }
}

extension AsyncSemaphore {
    /// Waits for `permits` permits, from `async` code.
    ///
    /// **Cancellation:** cancel-safe (see the type); throws `CancellationError`.
    nonisolated(nonsending)
    public func acquire(_ permits: Int = 1) async throws(CancellationError) -> SemaphorePermit {
        try await Weft.value(transferring: UnsafeTransfer(value: acquireFuture(permits) as SemaphoreAcquire)).value
    }
}

extension ChannelSender {
    /// Delivers `value`, suspending while the buffer is full. Throws
    /// ``SendError`` (with the value) when the receiver is gone.
    ///
    /// **Cancellation:** throws `CancellationError`; the value is then either
    /// delivered already or dropped (see the type).
    nonisolated(nonsending)
    public func send(_ value: Value) async throws {
        try await Weft.value(transferring: UnsafeTransfer(value: sendFuture(value))).value.get()
    }
}

extension ChannelSender {
    /// Waits for room and reserves one slot (see ``reserveFuture()``). Throws
    /// ``ChannelClosed`` once the receiver is gone.
    ///
    /// **Cancellation:** cancel-safe; throws `CancellationError`.
    nonisolated(nonsending)
    public func reserve() async throws -> SendPermit<Value> {
        try await Weft.value(transferring: UnsafeTransfer(value: reserveFuture())).value.get()
    }
}

extension ChannelReceiver {
    /// Up to `limit` values: waits for the first, then takes whatever else is
    /// buffered; empty once every sender is gone and nothing is left. See
    /// ``next(many:)``.
    ///
    /// **Cancellation:** cancel-safe (see the type); throws `CancellationError`.
    nonisolated(nonsending)
    public func receive(many limit: Int) async throws(CancellationError) -> [Value] {
        try await Weft.value(transferring: UnsafeTransfer(value: next(many: limit))).value
    }

    /// The next value, awaited from `async` code; `nil` once every sender is gone.
    ///
    /// **Cancellation:** cancel-safe (see the type); throws `CancellationError`.
    nonisolated(nonsending)
    public func receive() async throws(CancellationError) -> Value? {
        // The stream is moved into `next()` and back; copies share the queue.
        try await Weft.value(transferring: UnsafeTransfer(value: next())).value.element
    }
}
