import Weft

// Helpers for the combinator tests (Compose/ and Stream/).

/// The failure the combinator tests plant.
struct Planted: Error, Equatable {
    let tag: Int
    init(_ tag: Int = 0) { self.tag = tag }
}

/// A future that counts its polls, stays pending `pendingPolls` times (waking
/// itself), then is ready with `value`; it carries `probe` so that its drop is seen.
func counted<T>(_ value: T, after pendingPolls: Int = 0, polls: Counter, probe: DropProbe? = nil) -> PollFn<T> {
    var remaining = pendingPolls
    return pollFn { context in
        probe?.touch()
        polls.value += 1
        if remaining == 0 { return .ready(value) }
        remaining -= 1
        context.waker.wake()
        return .pending
    }
}

/// A future that never finishes and records its drop through `probe`.
func pendingForever<T>(_ type: T.Type = T.self, probe: DropProbe) -> PollFn<T> {
    pollFn { _ in
        probe.touch()
        return .pending  // never woken: dropping is its only way out
    }
}

/// Counts futures alive at once (created, not yet finished or dropped) and
/// remembers the most there ever were.
final class InFlight {
    private(set) var current = 0
    private(set) var most = 0
    private(set) var finished = 0

    /// A future that is in flight from now until it finishes `delay` later
    /// (after `yields` trips through the ready queue when `delay` is nil), ready
    /// with `value`.
    func track<T>(_ value: T, delay: Duration? = nil, yields count: Int = 1) -> InFlightFuture<T> {
        current += 1
        most = max(most, current)
        return InFlightFuture(value: value, sleep: delay.map { sleepFuture(for: $0) }, yields: count, token: Token(self))
    }

    /// Released exactly once: when its future finishes or is dropped.
    final class Token {
        let owner: InFlight
        var done = false
        init(_ owner: InFlight) { self.owner = owner }
        func finish() {
            guard !done else { return }
            done = true
            owner.current -= 1
            owner.finished += 1
        }
        deinit {
            if !done { owner.current -= 1 }
        }
    }
}

/// See ``InFlight/track(_:delay:yields:)``.
struct InFlightFuture<T>: Future {
    var value: T
    var sleep: Sleep?
    var yields: Int
    let token: InFlight.Token

    mutating func poll(_ context: inout Context) -> Poll<T> {
        if sleep != nil {
            guard case .ready = sleep!.poll(&context) else { return .pending }
        } else if yields > 0 {
            yields -= 1
            context.waker.wake()
            return .pending
        }
        token.finish()
        return .ready(value)
    }
}

/// A small deterministic generator for test delays (SplitMix64).
struct TestRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next(below bound: Int) -> Int {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Int((z ^ (z >> 31)) % UInt64(bound))
    }
}
