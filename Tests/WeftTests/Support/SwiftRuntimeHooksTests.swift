import CWeftSupport
import Dispatch
import Synchronization
import Testing
@testable import Weft

// Each call into Swift's runtime that is not public API (Support/SwiftRuntime.swift),
// checked for what Weft relies on. If a toolchain changes one, the test named
// after it fails with a message saying which call and what to fall back on.
@Suite("Swift runtime calls Weft makes outside the public API")
struct SwiftRuntimeHooksTests {
    final class Object {}
    class Base {}
    final class Derived: Base {}

    final class Observer: TaskCancellationObserver, @unchecked Sendable {
        let calls = Atomic<Int>(0)
        override func taskWasCancelled() { calls.add(1, ordering: .relaxed) }
    }

    @TaskLocal static var local: Int = 0

    @Test("swift_retainCount counts strong references")
    func retainCount() {
        let object = Object()
        let address = UnsafeRawPointer(Unmanaged.passUnretained(object).toOpaque())
        let before = SwiftRuntime.strongRetainCount(address)
        let second = Unmanaged.passRetained(object)
        #expect(SwiftRuntime.strongRetainCount(address) == before + 1,
                "swift_retainCount no longer counts a retain: the stuck detector (StuckDetection.swift) cannot work")
        second.release()
        #expect(before >= 1)
    }

    @Test("swift_isUniquelyReferenced_nonNull_native tells one reference from two")
    func uniquelyReferenced() {
        let object = Object()
        let address = UnsafeRawPointer(Unmanaged.passUnretained(object).toOpaque())
        #expect(SwiftRuntime.isUniquelyReferenced(address),
                "the uniqueness test no longer sees a sole reference: fall back to isKnownUniquelyReferenced")
        let second = Unmanaged.passRetained(object)
        #expect(!SwiftRuntime.isUniquelyReferenced(address),
                "the uniqueness test no longer sees a second reference: fall back to isKnownUniquelyReferenced")
        second.release()
    }

    @Test("an object's first word is its class, exactly: a subclass's instance does not match")
    func classPointer() {
        let derived = Derived()
        let address = UnsafeRawPointer(Unmanaged.passUnretained(derived).toOpaque())
        #expect(SwiftRuntime.isInstance(address, ofExactly: Derived.self),
                "an object no longer starts with its class's metadata: wakeStoredWaker must fall back to `as? RawTask`")
        #expect(!SwiftRuntime.isInstance(address, ofExactly: Base.self))
        #expect(!SwiftRuntime.isInstance(address, ofExactly: Object.self))
        withExtendedLifetime(derived) {}
    }

    @Test("swift_task_getCurrent gives each task its own stable address, and 0 outside a task")
    func currentTask() async {
        let mine = SwiftRuntime.currentTaskAddress
        #expect(mine != 0, "swift_task_getCurrent returned null inside a task")
        await Task.yield()
        #expect(SwiftRuntime.currentTaskAddress == mine, "a task's address changed across a suspension")
        let other = await Task { SwiftRuntime.currentTaskAddress }.value
        #expect(other != 0 && other != mine, "two tasks share an address: TaskResumer's owner check would fail")
        let outside = await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: SwiftRuntime.currentTaskAddress) }
        }
        #expect(outside == 0)
    }

    @Test("swift_task_localValuePush/Pop bind a task-local as TaskLocal.withValue does, and swift_task_localValueGet finds it")
    func taskLocal() async {
        let key = UnsafeRawPointer(Unmanaged.passUnretained(Self.$local).toOpaque())
        #expect(Self.local == 0)
        #expect(SwiftRuntime.taskLocalValue(key, as: Int.self) == nil)
        SwiftRuntime.pushTaskLocal(key, 42)
        #expect(Self.local == 42, "a pushed task-local is not visible: fall back to TaskLocal.withValue in TaskResumer")
        #expect(SwiftRuntime.taskLocalValue(key, as: Int.self)?.pointee == 42,
                "swift_task_localValueGet does not find the binding: fall back to a TaskLocal's getter in TaskResumer")
        let bits = UInt(bitPattern: key)  // a pointer is not Sendable
        let inherited = await Task {
            (Self.local, SwiftRuntime.taskLocalValue(UnsafeRawPointer(bitPattern: bits)!, as: Int.self)?.pointee)
        }.value
        #expect(inherited == (42, 42), "a child task does not inherit the pushed value")
        SwiftRuntime.popTaskLocal()
        #expect(Self.local == 0, "popping did not restore the previous value")
        #expect(SwiftRuntime.taskLocalValue(key, as: Int.self) == nil)
    }

    @Test("a constant key binds a task-local as a TaskLocal object does: what TaskResumer relies on")
    func constantKey() async {
        let key = weft_task_resumer_key()!
        #expect(SwiftRuntime.taskLocalValue(key, as: Int.self) == nil)
        SwiftRuntime.pushTaskLocal(key, 7)
        #expect(SwiftRuntime.taskLocalValue(key, as: Int.self)?.pointee == 7)
        let bits = UInt(bitPattern: key)
        let inherited = await Task { SwiftRuntime.taskLocalValue(UnsafeRawPointer(bitPattern: bits)!, as: Int.self)?.pointee }.value
        #expect(inherited == 7, "a child task does not inherit a value bound to a constant key")
        SwiftRuntime.popTaskLocal()
        #expect(SwiftRuntime.taskLocalValue(key, as: Int.self) == nil)
    }

    @Test("swift_task_addCancellationHandler calls the observer once when its task is cancelled, and at once if it already was")
    func cancellationHandler() async throws {
        let observer = Observer()
        let started = Atomic<Bool>(false)
        let task = Task {
            let record = SwiftRuntime.addCancellationHandler(observer)
            started.store(true, ordering: .releasing)
            while !Task.isCancelled { await Task.yield() }
            SwiftRuntime.removeCancellationHandler(record)
        }
        while !started.load(ordering: .acquiring) { await Task.yield() }
        #expect(observer.calls.load(ordering: .relaxed) == 0)
        task.cancel()
        await task.value
        #expect(observer.calls.load(ordering: .relaxed) == 1,
                "the cancellation record's handler did not run: fall back to withTaskCancellationHandler")

        let late = Observer()
        let cancelledFirst = Task {
            while !Task.isCancelled { await Task.yield() }
            SwiftRuntime.removeCancellationHandler(SwiftRuntime.addCancellationHandler(late))
        }
        cancelledFirst.cancel()
        await cancelledFirst.value
        #expect(late.calls.load(ordering: .relaxed) == 1, "a record added to a cancelled task did not run at once")
    }

    @Test("_unsafeInheritExecutor_withUnsafeContinuation resumes on the caller's loop thread")
    func continuationOnCallersExecutor() async throws {
        let loop = try LoopThread()
        defer { loop.shutdown() }
        let sameThread = loop.spawn { () async -> Bool in
            let before = Runtime.currentReport() != nil
            let value: Int = await SwiftRuntime.withUnsafeContinuationOnCallersExecutor { continuation in
                DispatchQueue.global().async { continuation.resume(returning: 7) }
            }
            return before && value == 7 && Runtime.currentReport() != nil
        }
        #expect(try await awaitWithin(.seconds(20), sameThread),
                "the continuation did not resume on the loop: fall back to withUnsafeContinuation")
    }
}
