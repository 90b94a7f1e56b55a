/// The wakers of every task waiting for one event on a handle: data to read,
/// room to write, a connection to accept, a shutdown to finish, a signal.
/// Not synchronized: its owner confines it to one thread (a handle's, to the
/// loop) or guards it (a channel's, by its lock; a join slot's, by the slot).
///
/// A single slot would keep only the last task that polled, and the others
/// would never be woken (no silent hang): two tasks reading one
/// stream, or awaiting one shutdown, would leave one of them waiting forever.
/// So every distinct waker is kept until the event wakes them all; each woken
/// task polls again, one of them gets the event and the rest register again.
///
/// A waker is never told that its future was dropped, so the list would also
/// keep wakers nobody waits on any more (a read cancelled by a timeout, over
/// and over). When another waker comes, the list first drops those whose target
/// says waking it can no longer matter (``FinishableWakeable``: Weft's tasks,
/// the bridge's await wakers and a `FutureSet`'s children's wakers). Any other
/// kind of waker counts as waiting; so that a future polled with a new one each
/// time cannot grow the list without bound, past ``limit`` a newcomer takes the
/// place of the longest-kept waker of that kind, which `register` hands back to
/// be woken (a task still waiting then just polls again: a spurious wake-up).
/// Wakers that can tell are each a task really waiting, and are all kept:
/// evicting one of more than ``limit`` such tasks (300 receives of one socket)
/// only had it poll and register again, evicting the next, round and round, the
/// loop never idle.
///
/// The common case, one waiter, costs what a single slot costs: the first
/// waker has its own field, and the others' array does not exist (nil: no
/// allocation, no reference to retain when the list is moved or taken).
@usableFromInline
struct WaitingWakers {
    /// How many wakers it keeps at most.
    static let limit = 256

    @usableFromInline var first: Waker?
    /// The wakers after the first, oldest first; nil while there are none.
    @usableFromInline var others: [Waker]?

    @inlinable
    init() {}

    /// Whether no task is kept.
    @inlinable
    var isEmpty: Bool { first == nil }

    /// The wakers a ``register(_:)`` let go: the one it evicted to make room
    /// (past ``limit``), which ``wake()`` wakes, and those it forgot because
    /// their wait was over, released when this value goes. The caller keeps
    /// it until its access to the list, and any lock held around it, has
    /// ended: woken there, a waker that polls at once (a user's own waker
    /// may) found the list still being changed, or its lock held, and trapped
    /// or deadlocked; and the last reference to a finished task, released
    /// there, destroyed its output, which may close a handle or drop a sender
    /// of the very channel whose lock is held. A class, made only when
    /// something is let go: `register`'s usual result, nil, is then one word
    /// with nothing to destroy (as a four-word struct, each channel receive
    /// cost 12 ns more, `weft-bench channel`).
    @usableFromInline
    final class LetGo {
        @usableFromInline let evicted: Waker?
        @usableFromInline let forgotten: [Waker]

        @usableFromInline
        init(evicted: Waker?, forgotten: [Waker]) {
            self.evicted = evicted
            self.forgotten = forgotten
        }

        /// Wakes the evicted waker, if any.
        @inlinable
        func wake() { evicted?.wake() }
    }

    /// Keeps `waker` unless it would wake a task already kept. Returns what it
    /// let go, if anything, to wake and release once the caller's access to
    /// the list and any lock around it have ended (``LetGo``). Inlined for
    /// the common case, one waiting task.
    @inlinable
    mutating func register(_ waker: Waker) -> LetGo? {
        guard let kept = first else {
            first = waker
            return nil
        }
        if others == nil && kept.willWake(waker) { return nil }
        return registerAnother(waker)
    }

    /// `register` with a task kept already.
    @usableFromInline
    mutating func registerAnother(_ waker: Waker) -> LetGo? {
        let kept = first!
        if kept.willWake(waker) || others?.contains(where: { $0.willWake(waker) }) == true { return nil }
        var rest = others.take() ?? []  // now uniquely referenced: edited in place
        var forgotten: [Waker] = []
        rest.removeAll { waker in
            guard waker.isFinished else { return false }
            forgotten.append(waker)
            return true
        }
        rest.append(waker)
        var evicted: Waker?
        if kept.isFinished {
            forgotten.append(kept)
            first = rest.removeFirst()
            others = rest.isEmpty ? nil : rest
        } else if rest.count >= Self.limit && !kept.canTellFinished {
            first = rest.removeFirst()
            others = rest
            evicted = kept
        } else if rest.count >= Self.limit, let index = rest.dropLast().firstIndex(where: { !$0.canTellFinished }) {
            // Not the newcomer itself (the last): evicted in its own place, it
            // would poll and register again at once, round and round.
            evicted = rest.remove(at: index)
            others = rest
        } else {
            others = rest
        }
        return evicted == nil && forgotten.isEmpty ? nil : LetGo(evicted: evicted, forgotten: forgotten)
    }

    /// Takes every kept task, leaving the list empty: to wake them after a
    /// lock is released (`wakeAll()` on the value returned).
    @inlinable
    mutating func take() -> WaitingWakers {
        var taken = WaitingWakers()
        swap(&taken, &self)
        return taken
    }

    /// What each kept waker wakes, oldest first (for the stuck check).
    var targets: [any Wakeable] {
        guard let first else { return [] }
        return [first.target] + (others ?? []).map(\.target)
    }

    /// Forgets every kept task, then wakes it (so a wake that registers again
    /// at once is kept for the next event).
    @inlinable
    mutating func wakeAll() {
        guard let first = first.take() else { return }
        guard let rest = others.take() else { return first.wake() }
        first.wake()
        for waker in rest { waker.wake() }
    }
}

/// A waker target that can tell when waking it can no longer matter: the hook
/// through which the layers above (a task that completed, an await that is
/// over) let ``WaitingWakers`` forget wakers nobody waits on.
protocol FinishableWakeable: Wakeable {
    /// Whether waking it can no longer matter.
    var isFinished: Bool { get }
}

extension Waker {
    /// Whether waking it can no longer matter. False for targets that cannot
    /// tell (they are not ``FinishableWakeable``).
    var isFinished: Bool {
        (target as? any FinishableWakeable)?.isFinished ?? false
    }

    /// Whether its target can tell when waking it no longer matters.
    var canTellFinished: Bool {
        target is any FinishableWakeable
    }
}
