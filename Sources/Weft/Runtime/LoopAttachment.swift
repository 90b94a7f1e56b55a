import Synchronization

/// Names one kind of per-loop state that a layer above the executor keeps on
/// every loop: the concurrency bridge's executors and spare waker, the
/// reactor's read buffers. The executor stores the value and releases it with
/// the loop, without knowing its type: the hook through which those layers
/// keep state per loop without the executor depending on them.
///
/// Declare each key once, as a `static let`. Weft's own keys take a fixed
/// ``LoopAttachmentSlot``, so that their `static let` is a constant the
/// compiler folds: a key found by a counter at run time is a lazily
/// initialized global, and every read of it (two per socket read, for the
/// read buffers) paid a `swift_once` check. Any other key (a test's) takes the
/// next free slot:
///
/// <!-- snippet: declarations; testable -->
/// ```swift
/// final class ConnectionCounter {   // state kept per loop, as ReadBufferPool is
///     var open = 0
///     static let key = LoopAttachmentKey { _ in ConnectionCounter() }
/// }
/// ```
struct LoopAttachmentKey<Value: AnyObject>: Sendable {
    /// How many kinds of attachment a loop can hold.
    static var capacity: Int { 8 }

    /// The attachment's slot in every loop.
    let index: Int
    /// Makes the value for `loop`, the first time it is asked for there; it
    /// may run on any thread, and more than once when two threads race (one
    /// value is kept), so it must only build the value.
    let make: @Sendable (EventLoop) -> Value

    /// A key in the fixed `slot` (no other key may name it).
    init(_ slot: LoopAttachmentSlot, make: @escaping @Sendable (EventLoop) -> Value) {
        index = slot.rawValue
        self.make = make
    }

    /// A key in the next slot after the fixed ones.
    init(make: @escaping @Sendable (EventLoop) -> Value) {
        index = LoopAttachmentSlot.allCases.count + loopAttachmentKeysMade.add(1, ordering: .relaxed).oldValue
        precondition(index < Self.capacity, "more than \(Self.capacity) kinds of loop attachment: raise the capacity")
        self.make = make
    }
}

/// The slots of the attachments Weft's own layers keep, one per kind: listed
/// here so that no two keys share one (the names are the only thing this
/// layer knows of them).
enum LoopAttachmentSlot: Int, CaseIterable {
    /// The concurrency bridge's executors and spare waker (`LoopExecutors`).
    case executors
    /// The reactor's read buffers and buffer budget (`ReadBufferPool`).
    case readBuffers
    /// The reactor's children still running (`ChildRegistry`).
    case children
    /// The reactor's signal handles and file watches open (`OpenWatches`).
    case openWatches
}

/// How many keys have taken a slot after the fixed ones.
private let loopAttachmentKeysMade = Atomic<Int>(0)

/// A loop's attachments: one slot per key, each holding a retained object
/// (its address; 0 while none). A slot is written once, by a
/// compare-exchange from 0, and read lock-free from any thread.
struct LoopAttachments: ~Copyable {
    private let slots: InlineArray<8, Atomic<UInt>> = InlineArray { _ in Atomic(0) }

    deinit {
        for index in slots.indices {
            let bits = slots[index].load(ordering: .acquiring)
            if bits != 0 { Unmanaged<AnyObject>.fromOpaque(UnsafeRawPointer(bitPattern: bits)!).release() }
        }
    }

    /// Calls `body` with the attachment for `key` (made on first use), not
    /// retained: the loop holds it for as long as the loop lives.
    @inline(__always)
    func with<Value, Result>(
        _ key: LoopAttachmentKey<Value>, on loop: EventLoop, _ body: (Value) -> Result
    ) -> Result {
        var bits = slots[key.index].load(ordering: .acquiring)
        if bits == 0 { bits = attach(key, on: loop) }
        return Unmanaged<Value>.fromOpaque(UnsafeRawPointer(bitPattern: bits)!)._withUnsafeGuaranteedRef(body)
    }

    /// Tells each attachment that is a ``LoopShutdownObserver`` that the loop
    /// is shutting down; on the loop thread, from `EventLoop.shutdown()`.
    func notifyShutdown() {
        forEachAttached { ($0 as? any LoopShutdownObserver)?.loopShuttingDown() }
    }

    /// Tells each attachment that is a ``LoopMemoryHolder`` to hand back the
    /// memory it keeps unused; on the loop thread, before the loop trims its
    /// heap (``HeapTrim``).
    func releaseIdleMemory() {
        forEachAttached { ($0 as? any LoopMemoryHolder)?.releaseIdleMemory() }
    }

    /// The attachment that takes the Swift jobs the loop can no longer run
    /// (the bridge's executors), if the loop has one.
    var orphanage: (any LoopJobOrphanage)? {
        var found: (any LoopJobOrphanage)?
        forEachAttached { if found == nil { found = $0 as? any LoopJobOrphanage } }
        return found
    }

    private func forEachAttached(_ body: (AnyObject) -> Void) {
        for index in slots.indices {
            let bits = slots[index].load(ordering: .acquiring)
            guard bits != 0 else { continue }
            body(Unmanaged<AnyObject>.fromOpaque(UnsafeRawPointer(bitPattern: bits)!).takeUnretainedValue())
        }
    }

    @inline(never)
    private func attach<Value>(_ key: LoopAttachmentKey<Value>, on loop: EventLoop) -> UInt {
        let made = UInt(bitPattern: Unmanaged.passRetained(key.make(loop)).toOpaque())
        let (exchanged, original) = slots[key.index].compareExchange(
            expected: 0, desired: made, ordering: .acquiringAndReleasing)
        if exchanged { return made }
        Unmanaged<Value>.fromOpaque(UnsafeRawPointer(bitPattern: made)!).release()
        return original
    }
}

/// An attachment that must act when its loop shuts down (the reactor's
/// children still running, which nothing would reap once the loop stops):
/// the hook through which the executor tells a layer above without knowing it.
protocol LoopShutdownObserver: AnyObject {
    /// The loop is shutting down: its tasks were cancelled, and no callback
    /// will run again. Called once, on the loop thread.
    func loopShuttingDown()
}

/// An attachment that keeps memory it could hand back while the loop is idle
/// (the reactor's cached read buffers): the hook through which the executor's
/// heap trim (``HeapTrim``) reaches it without knowing it.
protocol LoopMemoryHolder: AnyObject {
    /// The loop is about to block after a burst of work, with nothing running:
    /// hand back what is kept unused. Called on the loop thread.
    func releaseIdleMemory()
}
