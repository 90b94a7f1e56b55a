import CWeftSupport

/// What could still wake a task when the ready queue is empty: the check that
/// turns a `block(on:)` that can never finish into an error instead of a hang.
extension EventLoop {
    enum ProgressSource { case events, outsideWakerOnly, none }

    func progressSource(main: Unmanaged<RawTask>) -> ProgressSource {
        if hasActiveIO { return .events }
        if !inbox.isEmpty || servesForeignWork { return .events }
        return anyWakerHeldOutside(main: main) ? .outsideWakerOnly : .none
    }

    /// Whether some pending task is referenced from somewhere the runtime does not
    /// account for: a waker kept by another thread or by user state.
    ///
    /// A task's known references are the registry's, the one `block(on:)` holds
    /// for `main`, the join slots of other tasks holding its waker (alone, or
    /// among the ``JoinWaiters`` of several copies of a handle), and one handle
    /// per waiter in its own join slot that is not finished (the task, the
    /// `await` or the set awaiting it holds that handle; a finished one dropped
    /// it with its future, though its waker stays until another takes its
    /// place). A waker that cannot tell whether it is finished (a no-op one, a
    /// user's closure) counts as no handle: a handle behind it is then a
    /// reference beyond the known ones.
    /// Anything beyond is assumed to be a waker that may still fire, so the
    /// answer errs towards "not stuck". (A task still running that gave up
    /// awaiting, a `select` it lost, is counted as holding its handle: the
    /// one way this errs towards "stuck".)
    private func anyWakerHeldOutside(main: Unmanaged<RawTask>) -> Bool {
        var joinSlots: [UnsafeMutableRawPointer: JoinSlotReferences] = [:]
        registry.forEach { task in
            // Read with the slot held: a copy of the handle may be polled on
            // another thread meanwhile.
            let waiters = joinWaiters(of: task)
            joinSlots[Unmanaged.passUnretained(task).toOpaque(), default: .init()].handlesAwaiting =
                waiters.count { ($0 as? any FinishableWakeable).map { !$0.isFinished } ?? false }
            for case let waiter as RawTask in waiters {
                joinSlots[Unmanaged.passUnretained(waiter).toOpaque(), default: .init()].wakersKept += 1
            }
        }
        return registry.contains { task in
            let pointer = Unmanaged.passUnretained(task).toOpaque()
            let slots = joinSlots[pointer] ?? .init()
            var known = 1 + slots.wakersKept + slots.handlesAwaiting
            if pointer == main.toOpaque() { known += 1 }
            return SwiftRuntime.strongRetainCount(pointer) > known
        }
    }

    /// What the wakers in `task`'s join slot wake (each waiter's, when several
    /// copies of its handle were polled), read with the slot held: a copy of
    /// the handle may be polled on another thread meanwhile. A waiter that
    /// gave up leaves its waker there until another takes its place.
    func joinWaiters(of task: RawTask) -> [any Wakeable] {
        task.readJoinWaker { waker in
            (waker.target as? JoinWaiters)?.waiting.targets ?? [waker.target]
        } ?? []
    }

    /// A task's references that join slots account for.
    private struct JoinSlotReferences {
        /// Its wakers kept in the join slots of the tasks it awaits.
        var wakersKept = 0
        /// The handles of the tasks awaiting it: one per waker in its slot of
        /// a task not finished.
        var handlesAwaiting = 0
    }

    func stuckDetail() -> String {
        "\(counters.tasksAlive) task(s) pending, none ready, no active handle or request, no waker held outside the runtime"
    }
}
