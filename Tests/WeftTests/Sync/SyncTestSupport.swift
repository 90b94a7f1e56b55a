import Weft

// Helpers for the sync-primitive tests (Tests/WeftTests/Sync). Public API only.

/// A future of every element of `stream` until it ends.
struct CollectAll<S: PollStream>: Future {
    var stream: S
    var elements: [S.Element] = []

    mutating func poll(_ context: inout Context) -> Poll<[S.Element]> {
        while true {
            switch stream.pollNext(&context) {
            case .pending: return .pending
            case .ready(let element?): elements.append(element)
            case .ready(nil): return .ready(elements)
            }
        }
    }
}

func collectAll<S: PollStream>(_ stream: S) -> CollectAll<S> {
    CollectAll(stream: stream)
}

/// A future that sends `values` one after another through a bounded sender,
/// waiting for room each time; ready with how many were sent.
struct SendAll<Value: Sendable>: Future {
    let sender: ChannelSender<Value>
    var values: [Value]
    var position = 0
    var inFlight: ChannelSend<Value>?

    init(_ sender: ChannelSender<Value>, _ values: [Value]) {
        self.sender = sender
        self.values = values
    }

    mutating func poll(_ context: inout Context) -> Poll<Int> {
        while true {
            if inFlight == nil {
                guard position < values.count else { return .ready(position) }
                inFlight = sender.sendFuture(values[position])
            }
            switch inFlight!.poll(&context) {
            case .pending: return .pending
            case .ready(.success):
                inFlight = nil
                position += 1
            case .ready(.failure):
                return .ready(position)
            }
        }
    }
}

/// Polls `future` once with `waker`, by hand.
func pollFuture<F: Future>(_ future: inout F, waker: Waker = .noop) -> Poll<F.Output> {
    var context = Context(waker: waker)
    return future.poll(&context)
}

/// The error a channel send threw, or nil when it delivered.
func sendError<Value, Returned>(_ send: () throws(SendError<Value>) -> Returned) -> SendError<Value>? {
    do {
        _ = try send()
        return nil
    } catch {
        return error
    }
}
