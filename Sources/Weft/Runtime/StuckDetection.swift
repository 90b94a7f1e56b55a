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
    /// for `main`, the join slots of other tasks holding its waker, and (when its
    /// own join slot is set) the handle of the task awaiting it. Anything beyond is
    /// assumed to be a waker that may still fire, so the answer errs towards
    /// "not stuck".
    private func anyWakerHeldOutside(main: Unmanaged<RawTask>) -> Bool {
        let joinSlotReferences = countJoinSlotReferences()
        return registry.contains { task in
            let pointer = Unmanaged.passUnretained(task).toOpaque()
            var known = 1 + (joinSlotReferences[pointer] ?? 0)
            if task.state.pointee.load(ordering: .acquiring) & TaskState.joinWaker != 0 { known += 1 }
            if pointer == main.toOpaque() { known += 1 }
            return SwiftRuntime.strongRetainCount(pointer) > known
        }
    }

    private func countJoinSlotReferences() -> [UnsafeMutableRawPointer: Int] {
        var counts: [UnsafeMutableRawPointer: Int] = [:]
        registry.forEach { task in
            // Read with the slot held: a copy of the handle may be polled on
            // another thread meanwhile.
            if let waiter = task.readJoinWaker({ $0.target as? RawTask }) ?? nil {
                counts[Unmanaged.passUnretained(waiter).toOpaque(), default: 0] += 1
            }
        }
        return counts
    }

    func stuckDetail() -> String {
        "\(counters.tasksAlive) task(s) pending, none ready, no active handle or request, no waker held outside the runtime"
    }
}
