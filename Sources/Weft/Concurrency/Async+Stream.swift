/// The async face of poll streams (Stream/): an `AsyncSequence` whose
/// iterator awaits each element through the bridge.

/// A poll-based stream as an `AsyncSequence`. See ``PollStream/values``.
public struct PollStreamValues<Base: PollStream>: AsyncSequence {
    /// The stream's elements.
    public typealias Element = Base.Element
    let base: Base
    /// The loop the stream belongs to, if it is bound to one.
    let loop: EventLoop?

    public func makeAsyncIterator() -> Iterator {
        Iterator(base: base, loop: loop)
    }

    /// The stream an iterator holds between its elements, dropped on its
    /// loop (``EventLoop/onLoop(_:)``): an iteration left early (a `break`)
    /// in code off the loop dropped it on that thread, and what its polls
    /// left armed (a timer of `take(until:)`, a sleep of `merge`) was
    /// cancelled there, beside the loop's own use of its timer wheel.
    final class Held {
        var stream: Base?
        var loop: EventLoop?

        init(_ stream: Base, loop: EventLoop?) {
            self.stream = stream
            self.loop = loop
        }

        deinit {
            guard let stream = stream.take(), let loop else { return }
            let held = UnsafeTransfer(value: stream)
            loop.onLoop { _ = held }
        }
    }

    /// Takes elements by polling the stream on its loop. A stream bound to
    /// no loop is polled, from then on, where its first `next()` polled it:
    /// on the caller's loop, or on the shared one for a caller off any loop.
    /// What a poll leaves armed (a timer, a socket) belongs to that loop, and
    /// the next poll, made from another loop's task, touched it off its thread.
    public struct Iterator: AsyncIteratorProtocol {
        let held: Held

        init(base: Base, loop: EventLoop?) {
            held = Held(base, loop: loop)
        }

        /// The next element, or `nil` at the end.
        ///
        /// **Cancellation:** throws `CancellationError`; the stream is dropped and
        /// the sequence ends.
        public mutating func next() async throws -> Base.Element? {
            try await next(isolation: nil)
        }

        /// ``next()`` on the caller's executor, as `for try await` asks for it:
        /// with no hop to Swift's generic executor and back around each element
        /// (for a task that prefers a loop, each hop reads that preference
        /// under the task's status lock).
        public mutating func next(isolation actor: isolated (any Actor)?) async throws -> Base.Element? {
            do {
                return try await awaitNext(isolation: actor)
            } catch {
                if error.reason == .noSharedLoop { throw LoopThread.sharedLoopFailure(in: "next") }
                throw CancellationError()
            }
        }

        /// ``next(isolation:)`` with the bridge's own error, which tells a
        /// loop's shutdown from a cancellation (``PollStreamResults`` reports
        /// the first as its handle's operations do).
        @inline(__always)
        mutating func awaitNext(isolation actor: isolated (any Actor)?) async throws(AwaitCancelled) -> Base.Element? {
            guard let stream = held.stream.take() else { return nil }
            // At the end, the rest is dropped where it was polled, on the loop.
            let element: Base.Element?, rest: Base?
            if let loop = held.loop {
                let next = stream.next().map { ($0.element, $0.element == nil ? nil : $0.rest) }
                (element, rest) = try await awaitValue(transferring: UnsafeTransfer(value: next), on: loop).value
            } else {
                // Read where it is polled: off any loop, that is the shared one.
                let next = stream.next().map { ($0.element, $0.element == nil ? nil : $0.rest, EventLoop.current) }
                (element, rest, held.loop) = try await awaitValue(transferring: UnsafeTransfer(value: next)).value
            }
            held.stream = rest
            return element
        }
    }
}

/// A poll stream of results as an `AsyncSequence` that throws each failure:
/// a listener's ``TCPListener/connections`` and ``UnixListener/connections``,
/// a UDP socket's ``UDPSocket/datagrams``. The sequence ends after the first
/// error it throws, as a throwing `map` would.
///
/// Not `PollStreamValues(...).map { try $0.get() }`: `map`'s transform is a
/// closure that runs on Swift's generic executor, so with the iteration every
/// element cost four executor switches more, each reading the task's executor
/// preference under its status lock (docs/BENCHMARKS-HISTORY.md, "Nineteenth session").
public struct PollStreamResults<Base: PollStream, Success>: AsyncSequence
where Base.Element == Result<Success, WeftError> {
    /// The stream's successes.
    public typealias Element = Success
    let values: PollStreamValues<Base>
    /// The operation each element is (`accept`, `receive`), for the error
    /// thrown when the stream's loop shuts down during an await.
    let operation: String

    public func makeAsyncIterator() -> Iterator {
        Iterator(values: values.makeAsyncIterator(), operation: operation)
    }

    /// Takes results by polling the stream on its loop.
    public struct Iterator: AsyncIteratorProtocol {
        var values: PollStreamValues<Base>.Iterator?
        let operation: String

        /// The next success, or `nil` at the end (also after an error was thrown).
        /// When the stream's loop shuts down during the await, throws
        /// ``WeftError/Kind/closed`` naming the operation, as the handle's
        /// own async operations do (`accept()`, `receive()`): nobody
        /// cancelled the task.
        ///
        /// **Cancellation:** throws `CancellationError`; the stream is dropped and
        /// the sequence ends.
        public mutating func next() async throws -> Success? {
            try await next(isolation: nil)
        }

        /// ``next()`` on the caller's executor (see
        /// ``PollStreamValues/Iterator/next(isolation:)``).
        public mutating func next(isolation actor: isolated (any Actor)?) async throws -> Success? {
            guard var iterator = values.take() else { return nil }
            let next: Result<Success, WeftError>?
            do {
                next = try await iterator.awaitNext(isolation: actor)
            } catch {
                throw awaitCancelledError(error, else: closedByItsLoopsShutdown(operation))
            }
            guard let result = next else { return nil }
            let success = try result.get()
            values = iterator
            return success
        }
    }
}

extension PollStreamResults: Sendable where Base: Sendable {}

/// Sendable when its stream is, so that `listener.connections` passes to
/// swift-async-algorithms and to ServiceLifecycle's `cancelOnGracefulShutdown()`.
/// `@unchecked` only for `loop`, which is not `Sendable` (its state belongs to
/// its thread): the sequence uses it solely as the destination of a hop
/// (`value(transferring:on:)` enqueues onto the loop through its thread-safe
/// inbox and polls the stream there), never touching the loop's state from
/// the thread that holds the sequence.
extension PollStreamValues: @unchecked Sendable where Base: Sendable {}

extension PollStream {
    /// This stream as an `AsyncSequence`:
    /// `for try await tick in interval(every: .seconds(1)).values { ... }`.
    public var values: PollStreamValues<Self> {
        PollStreamValues(base: self, loop: nil)
    }
}

extension SignalStream {
    /// The deliveries as an `AsyncSequence`: each awaited on the loop the
    /// stream was installed on (or, not installed yet, on the current loop or
    /// ``LoopThread/shared``, where the first element installs it).
    public var values: PollStreamValues<SignalStream> {
        PollStreamValues(base: self, loop: watcher?.owner.loop)
    }
}

extension FileChanges {
    /// The changes as an `AsyncSequence`: each awaited on the loop the watch
    /// was installed on (or, not installed yet, on the current loop or
    /// ``LoopThread/shared``, where the first element installs it).
    public var values: PollStreamValues<FileChanges> {
        PollStreamValues(base: self, loop: watcher?.owner.loop)
    }
}

extension Incoming {
    /// The accepted connections (each a `Result`) as an `AsyncSequence`,
    /// each awaited on the listener's loop, as ``TCPListener/connections``
    /// (the generic ``PollStream/values`` polled it on the caller's loop,
    /// where every element was `.wrongThread`). A combinator over it
    /// (`take(until:)`) is polled where it is awaited: await it on the
    /// listener's loop.
    public var values: PollStreamValues<Incoming> {
        PollStreamValues(base: self, loop: listener.acceptor.loop)
    }
}

extension UnixIncoming {
    /// The accepted connections as an `AsyncSequence`, each awaited on the
    /// listener's loop; see ``Incoming/values``.
    public var values: PollStreamValues<UnixIncoming> {
        PollStreamValues(base: self, loop: listener.acceptor.loop)
    }
}

extension UDPIncoming {
    /// The received datagrams as an `AsyncSequence`, each awaited on the
    /// socket's loop; see ``Incoming/values``.
    public var values: PollStreamValues<UDPIncoming> {
        PollStreamValues(base: self, loop: socket.endpoint.loop)
    }
}

extension AsyncSequence where Element: Sendable {
    /// Runs `body` for each element in a child task of its own, at most `limit`
    /// at once (`nil`: no limit), and returns when the sequence has ended and
    /// every child finished: the async face of
    /// ``PollStream/forEachConcurrent(limit:_:)`` (Swift's `AsyncSequence` has
    /// no such method; a task group does the work).
    ///
    /// The children inherit the calling task's executor preference, so on a
    /// Weft loop they run on that loop. With a limit, the sequence is not asked
    /// for another element while `limit` children run. The first error (of the
    /// sequence or of a child) is thrown once the children still running have
    /// been cancelled and have finished; a child's error is seen when the next
    /// element arrives or the sequence ends, and, with a limit, when `limit`
    /// children run (until then, further elements still start children).
    ///
    /// A `limit` below 1 traps.
    ///
    /// **Cancellation:** cancelling the calling task cancels every child and
    /// the iteration (as far as the sequence honours cancellation).
    public func forEachConcurrent(
        limit: Int?, _ body: @escaping @Sendable (Element) async throws -> Void
    ) async throws {
        precondition(limit.map { $0 > 0 } ?? true, "forEachConcurrent's limit must be positive (nil: no limit)")
        guard let limit else {
            // Discarding: an accept loop's finished children leave nothing behind.
            try await withThrowingDiscardingTaskGroup { group in
                for try await element in self {
                    if group.isCancelled { break }  // a child failed
                    group.addTask { try await body(element) }
                }
            }
            return
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            var running = 0
            var elements = makeAsyncIterator()
            while true {
                // Room first, then the element: taken before, it waited in
                // this task while `limit` children ran (an extra connection
                // accepted and held), and was lost if a child then failed.
                if running == limit {
                    try await group.next()
                    running -= 1
                }
                guard let element = try await elements.next() else { break }
                group.addTask { try await body(element) }
                running += 1
            }
            // Not `waitForAll()`, which waits for every child before throwing.
            while try await group.next() != nil {}
        }
    }
}
