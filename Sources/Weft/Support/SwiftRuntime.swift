import CWeftSupport

/// Every call Weft makes into Swift's runtime that is not public API, in one
/// place (the C side is `CSupport/CWeftSupport/SwiftRuntime.c`). Each says what
/// it saves, measured (docs/BENCHMARKS-HISTORY.md), and what the public API would cost
/// instead. `Tests/WeftTests/Support/SwiftRuntimeHooksTests.swift` checks what
/// each one does and fails naming it if a toolchain changes its behaviour;
/// the public replacement is named beside each, to fall back on then.
@usableFromInline
enum SwiftRuntime {
    // MARK: - Tasks (swift_task_addCancellationHandler, swift_task_getCurrent, swift_task_localValuePush/Pop/Get)

    /// Adds a cancellation record to the current task: when the task is
    /// cancelled (at once, if it already is), `observer.taskWasCancelled()`
    /// runs on the cancelling thread. Remove the record with
    /// ``removeCancellationHandler(_:)`` in the same task, before anything the
    /// task allocated after adding it is freed; keep `observer` alive until then.
    ///
    /// Public replacement: `withTaskCancellationHandler`. Its body and closure
    /// are not `nonisolated(nonsending)`, so it checks the executor five times
    /// per call, each check taking the task's status lock for a task with an
    /// executor preference: `swift_task_switch` 6 -> 2 per async echo (second
    /// session). Its frame also pushed an idle connection's task into a second
    /// 1 KiB stack slab (3,420 -> 2,349 B per idle connection, sixth session).
    @inlinable @inline(__always)
    static func addCancellationHandler(_ observer: TaskCancellationObserver) -> UnsafeMutableRawPointer? {
        weft_add_cancellation_handler(Unmanaged.passUnretained(observer).toOpaque())
    }

    /// Removes a record ``addCancellationHandler(_:)`` added (nil: none).
    @inlinable @inline(__always)
    static func removeCancellationHandler(_ record: UnsafeMutableRawPointer?) {
        if let record { weft_remove_cancellation_handler(record) }
    }

    /// The running task's address (0 outside a task): compared, never
    /// dereferenced. Public replacement: none without an allocation
    /// (`withUnsafeCurrentTask` gives the same pointer through a closure).
    @inlinable
    static var currentTaskAddress: UInt {
        UInt(bitPattern: weft_current_task())
    }

    /// Binds `key` to `value` in the current task, as `TaskLocal.withValue`
    /// does around its body, without that function's frame; undo it with
    /// ``popTaskLocal()`` in the same task, in reverse order with the task's
    /// other stack allocations (cancellation records included). `key` is an
    /// address the runtime compares, never reads: a `TaskLocal` object's
    /// (`Unmanaged.passUnretained(local).toOpaque()`) or a constant's.
    ///
    /// Public replacement: `TaskLocal.withValue`, whose frame and closure cost
    /// an idle connection's task a second stack slab (see above).
    static func pushTaskLocal<Value: Sendable>(_ key: UnsafeRawPointer, _ value: Value) {
        // The runtime moves the value out of the buffer (which is left
        // uninitialized; a temporary allocation does not deinitialize).
        withUnsafeTemporaryAllocation(of: Value.self, capacity: 1) { buffer in
            buffer.initializeElement(at: 0, to: value)
            weft_task_local_value_push(
                key, buffer.baseAddress!, unsafeBitCast(Value.self as Any.Type, to: UnsafeRawPointer.self))
        }
    }

    /// Where the current task keeps the value ``pushTaskLocal(_:_:)`` bound to
    /// `key` (its own binding or one it inherited), or nil: read in place,
    /// valid while the binding is. `Value` must be the type pushed.
    ///
    /// Public replacement: `TaskLocal`'s getter, which copies the value out
    /// through its type's value witnesses (it is generic and not inlinable),
    /// and whose key, a `TaskLocal` in a `static`, is a lazily initialized
    /// global: a `swift_once` check, a witness copy, and a retain and a
    /// release, on every await of a task on a loop (`TaskResumer`).
    @inlinable @inline(__always)
    static func taskLocalValue<Value>(_ key: UnsafeRawPointer, as type: Value.Type) -> UnsafePointer<Value>? {
        weft_task_local_value_get(key).map { $0.assumingMemoryBound(to: Value.self) }
    }

    /// Undoes the latest ``pushTaskLocal(_:_:)``.
    static func popTaskLocal() {
        weft_task_local_value_pop()
    }

    // MARK: - Continuations (_unsafeInheritExecutor_withUnsafeContinuation)

    /// `withUnsafeContinuation` that runs on the caller's executor without
    /// checking it first. The public function takes an `isolated` parameter,
    /// so its caller checks the executor before the call, and each check takes
    /// the task's status lock (second session: one of the four lock
    /// acquisitions per suspension). Public replacement: `withUnsafeContinuation`.
    @inlinable @inline(__always)
    nonisolated(nonsending)
    static func withUnsafeContinuationOnCallersExecutor<T>(
        _ body: (UnsafeContinuation<T, Never>) -> Void
    ) async -> T {
        await _unsafeInheritExecutor_withUnsafeContinuation(body)
    }

    // MARK: - Objects (swift_retainCount, swift_isUniquelyReferenced_nonNull_native, the class pointer)

    /// The strong retain count of the Swift object at `object` (an address,
    /// so that asking adds no reference of its own). Only the stuck detector
    /// uses it, to learn whether anyone outside the runtime still holds a
    /// task's waker; never for memory management. Public replacement: none
    /// (the detector would have to assume a waker is always held, and never
    /// report).
    static func strongRetainCount(_ object: UnsafeRawPointer) -> Int {
        Int(weft_strong_retain_count(object))
    }

    /// Whether `object` has exactly one strong reference. Public replacement:
    /// `isKnownUniquelyReferenced(&variable)`, a modifying access to the
    /// variable that ThreadSanitizer reports as a race when two threads ask at
    /// once about one shared slot.
    @inlinable @inline(__always)
    static func isUniquelyReferenced(_ object: UnsafeRawPointer) -> Bool {
        weft_is_uniquely_referenced(object)
    }

    /// Whether the Swift object at `object` is an instance of `type` itself
    /// (not of a subclass): its first word is its class's metadata. Lets a
    /// stored waker whose target is a task be woken through a borrowed
    /// reference, with no retain and release (two atomic operations; the
    /// oneshot and join hand-offs). Public replacement: `target as? RawTask`,
    /// a dynamic cast that costs more than the retain it saves.
    @inlinable @inline(__always)
    static func isInstance<T: AnyObject>(_ object: UnsafeRawPointer, ofExactly type: T.Type) -> Bool {
        object.load(as: UnsafeRawPointer.self) == unsafeBitCast(type, to: UnsafeRawPointer.self)
    }
}

/// What a cancellation record added by ``SwiftRuntime/addCancellationHandler(_:)``
/// tells when its task is cancelled. Subclass it.
@usableFromInline
class TaskCancellationObserver {
    @usableFromInline init() {}

    /// The task was cancelled. Runs on the cancelling thread, possibly while
    /// the task runs on another.
    func taskWasCancelled() {}
}

/// Called by the cancellation record's handler (`SwiftRuntime.c`) on the
/// cancelling thread, with the observer it was given.
@c(weft_task_cancelled)
func taskCancelled(_ context: UnsafeMutableRawPointer) {
    Unmanaged<TaskCancellationObserver>.fromOpaque(context)._withUnsafeGuaranteedRef { $0.taskWasCancelled() }
}
