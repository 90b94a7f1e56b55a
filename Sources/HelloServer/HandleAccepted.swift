import Weft

/// The async book's `handle_connection` for one item of `listener.incoming`:
/// the connection's ``HandleConnection``, or nothing to do for an accept that
/// failed (the listener keeps going, as the book's `unwrap` would not).
///
/// What ``handleConnection(_:readTimeout:)`` returns, so that an accept loop
/// reads as the book's:
/// `listener.incoming.forEachConcurrent(limit: nil) { stream in handleConnection(stream) }`.
///
/// **Cancellation:** dropping it drops the handler, which closes the connection.
public struct HandleAccepted: Future {
    var handler: HandleConnection<TCPStream>?

    public mutating func poll(_ context: inout Context) -> Poll<Void> {
        guard handler != nil else { return .ready(()) }
        guard case .ready = handler!.poll(&context) else { return .pending }
        handler = nil
        return .ready(())
    }
}

/// Serves one accepted connection (see ``HandleAccepted``): `/sleep` waits
/// `sleepDuration`, a client without its whole request line sent within
/// `readTimeout` is closed, and so is one that has sent nothing when
/// `closeIdle` is cancelled.
public func handleConnection(
    _ accepted: Result<TCPStream, WeftError>, sleepDuration: Duration = .seconds(5), readTimeout: Duration = .seconds(10),
    closeIdle: CancellationToken? = nil
) -> HandleAccepted {
    HandleAccepted(handler: (try? accepted.get()).map {
        HandleConnection(stream: $0, sleepDuration: sleepDuration, readTimeout: readTimeout, closeIdle: closeIdle)
    })
}
