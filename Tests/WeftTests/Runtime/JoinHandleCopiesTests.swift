import Foundation
import Testing
import Weft

/// Copies of one `JoinHandle` awaited in several tasks, and join wakers kept
/// after the task they wait on finished.
@Suite("JoinHandle copies and join wakers")
struct JoinHandleCopiesTests {
    @Test("every task awaiting a copy of one handle is woken when the task finishes (the second poll's waker took the first's place, which was never woken)")
    func everyWaiterOnCopiesIsWoken() throws {
        let runtime = try Runtime()
        let mailbox = Mailbox<Int>()
        let handle = runtime.spawn(mailbox.receive())
        var first = handle
        var second = handle
        let firstWoken = AtomicCounter()
        let secondWoken = AtomicCounter()
        #expect(!pollOnce(&first, waker: Waker { _ = firstWoken.increment() }).isReady)
        #expect(!pollOnce(&second, waker: Waker { _ = secondWoken.increment() }).isReady)
        try runtime.block(on: lazy { mailbox.send(5); return ready(()) }.then { _ in yields(2) })
        #expect(firstWoken.value == 1, "the first waiter was not woken")
        #expect(secondWoken.value == 1)
        #expect(try pollOnce(&first).readyValue?.get() == 5)
    }

    @Test("a task awaiting one copy is still woken after another task polled another copy and gave up (a select with a timeout)")
    func awaiterOutlivesAGaveUpPoll() throws {
        let runtime = try Runtime()
        let mailbox = Mailbox<Int>()
        let target = runtime.spawn(mailbox.receive())
        let awaiter = runtime.spawn(target)
        let impatient = runtime.spawn(select(either: target, or: sleepFuture(for: .milliseconds(5))).map { _ in () })
        runtime.spawn(sleepFuture(for: .milliseconds(30)).map { mailbox.send(7) })
        _ = try runtime.block(on: impatient)
        let output = try runtime.block(on: timeoutFuture(.seconds(5), awaiter))
        #expect(try output.get().get().get() == 7)
    }

    @Test("two tasks that each gave up awaiting the other's handle are both freed when they finish (each kept the other's waker, and so the other, for ever)")
    func tasksThatGaveUpOnEachOtherAreFreed() throws {
        final class Output: Sendable {
            let freed: AtomicCounter
            init(_ freed: AtomicCounter) { self.freed = freed }
            deinit { freed.increment() }
        }
        let runtime = try Runtime()
        let freed = AtomicCounter()
        let handles = Box<[JoinHandle<Output>]>([])
        for index in 0..<2 {
            handles.value.append(runtime.spawn(lazy {
                select(either: handles.value[1 - index], or: sleepFuture(for: .milliseconds(5))).map { _ in Output(freed) }
            }))
        }
        // Made at the first poll, and long after theirs: made before the loop
        // ran, a loaded machine could leave it due before their 5 ms were.
        try runtime.block(on: lazy { sleepFuture(for: .milliseconds(200)) })
        #expect(handles.value.allSatisfy { $0.isFinished })
        handles.value = []  // detaches both; their outputs go with the tasks
        #expect(freed.value == 2, "the tasks held each other through their join slots")
    }

    @Test("copies of a handle polled on several threads at once, one of them until the task finishes: each waiter is woken, and the one still polling takes the output")
    func copiesPolledOnSeveralThreads() throws {
        for _ in 0..<50 {
            let runtime = try Runtime()
            let mailbox = Mailbox<Int>()
            let handle = runtime.spawn(mailbox.receive())
            let registered = AtomicCounter()
            let woken = AtomicCounter()
            // Three threads register their wakers again and again, then wait.
            let waiters = (0..<3).map { _ in
                ForeignThread {
                    var copy = handle
                    let wakes = AtomicCounter()
                    let waker = Waker { _ = wakes.increment() }
                    for _ in 0..<200 { #expect(!pollOnce(&copy, waker: waker).isReady) }
                    registered.increment()
                    while wakes.value == 0 { usleep(100) }
                    woken.increment()
                }
            }
            // A fourth polls, with a new waker each time, until it takes the output.
            let taken = Shared<Int?>(nil)
            let taker = ForeignThread {
                var copy = handle
                while true {
                    if case .ready(let output) = pollOnce(&copy, waker: Waker {}) {
                        taken.value = try? output.get()
                        return
                    }
                }
            }
            while registered.value < 3 { usleep(100) }
            try runtime.block(on: lazy { mailbox.send(1); return ready(()) }.then { _ in yields(2) })
            for thread in waiters { thread.join() }
            taker.join()
            #expect(woken.value == 3)
            #expect(taken.value == 1)
        }
    }
}

extension Poll {
    /// The ready value, or nil while pending.
    fileprivate var readyValue: Value? {
        if case .ready(let value) = self { return value }
        return nil
    }
}
