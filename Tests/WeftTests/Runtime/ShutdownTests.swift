import Foundation
import Testing
import Weft

@Suite("Runtime shutdown")
struct ShutdownTests {
    @Test("shutdown with 1,000 tasks sleeping an hour leaves no open handle and cancels every task")
    func shutdownWithManyPendingTasks() throws {
        let runtime = try Runtime()
        var handles = (0..<1_000).map { index in
            runtime.spawn(sleepFuture(for: .seconds(3_600)).map { index })
        }
        try runtime.block(on: yieldNow())  // every task arms its timer
        #expect(runtime.pendingTimerCount == 1_000)
        #expect(runtime.statistics.tasksAlive == 1_000)
        #expect(runtime.openHandleCount > 0)

        try runtime.shutdown()
        #expect(runtime.openHandleCount == 0)
        #expect(runtime.pendingTimerCount == 0)
        #expect(runtime.statistics.tasksAlive == 0)

        var outcomes: [JoinError?] = []
        for index in handles.indices {
            #expect(handles[index].isFinished)
            guard case .ready(let output) = pollOnce(&handles[index]) else {
                Issue.record("handle \(index) still pending after shutdown")
                continue
            }
            outcomes.append(output.failure)
        }
        #expect(outcomes.count == 1_000)
        #expect(outcomes.allSatisfy { $0 == JoinError(.runtimeShutDown) })
    }

    @Test("shutdown drops every task's future")
    func shutdownDropsFutures() throws {
        let runtime = try Runtime()
        let flags = (0..<10).map { _ in DropFlag() }
        for flag in flags {
            let probe = flag.makeProbe()
            runtime.spawn(sleepFuture(for: .seconds(60)).map { probe.touch() })
        }
        runtime.spawn(pending(Void.self))  // never polled before shutdown
        try runtime.block(on: yieldNow())
        #expect(flags.allSatisfy { !$0.isDropped })
        try runtime.shutdown()
        #expect(flags.allSatisfy { $0.isDropped })
    }

    @Test("JoinHandles of a shut-down runtime complete with .runtimeShutDown when awaited on another runtime")
    func handlesAwaitedOnAnotherRuntime() throws {
        let first = try Runtime()
        let handle = first.spawn(sleepFuture(for: .seconds(3_600)).map { "never" })
        try first.block(on: yieldNow())
        try first.shutdown()

        let second = try Runtime()
        let output = try second.block(on: handle)
        #expect(output.failure == JoinError(.runtimeShutDown))
    }

    @Test("a task aborted and then cut off by shutdown before its abort was carried out ends as aborted, as abort() promises; the others as cancelled by the shutdown")
    func abortedBeforeShutdown() throws {
        let first = try Runtime()
        let aborted = first.spawn(sleepFuture(for: .seconds(3_600)).map { "never" })
        let other = first.spawn(sleepFuture(for: .seconds(3_600)).map { "never" })
        try first.block(on: yieldNow())
        aborted.abort()  // from the loop's own thread: carried out at the task's next turn
        try first.shutdown()
        let second = try Runtime()
        #expect(try second.block(on: aborted).failure == JoinError(.aborted))
        #expect(try second.block(on: other).failure == JoinError(.runtimeShutDown))
    }

    @Test("dropping a runtime cancels its tasks like shutdown")
    func droppingTheRuntimeCancelsTasks() throws {
        var handle: JoinHandle<Int>
        do {
            let runtime = try Runtime()
            handle = runtime.spawn(sleepFuture(for: .seconds(3_600)).map { 1 })
            try runtime.block(on: yieldNow())
        }
        #expect(handle.isFinished)
        guard case .ready(let output) = pollOnce(&handle) else {
            Issue.record("handle pending after its runtime was dropped")
            return
        }
        #expect(output.failure == JoinError(.runtimeShutDown))
    }

    @Test("spawning after shutdown yields a handle that is already .runtimeShutDown")
    func spawnAfterShutdown() throws {
        let runtime = try Runtime()
        try runtime.shutdown()
        let polls = Counter()
        var handle = runtime.spawn(pollFn { (_: inout Context) -> Poll<Int> in
            polls.value += 1
            return .ready(1)
        })
        #expect(handle.isFinished)
        guard case .ready(let output) = pollOnce(&handle) else {
            Issue.record("handle pending after shutdown")
            return
        }
        #expect(output.failure == JoinError(.runtimeShutDown))
        #expect(polls.value == 0)
        #expect(runtime.statistics.tasksAlive == 0)
    }

    @Test("block(on:) after shutdown throws .shutDown without polling")
    func blockAfterShutdown() throws {
        let runtime = try Runtime()
        try runtime.shutdown()
        let polls = Counter()
        let error = #expect(throws: WeftError.self) {
            try runtime.block(on: ready(1).counted(polls))
        }
        #expect(error?.kind == .shutDown)
        #expect(polls.value == 0)
    }

    // Before the fix that came with this test, each of the four passed the
    // thread check on the runtime's own thread (it created the loop, and
    // nobody ran it) and started its I/O on a loop nothing would run again:
    // each poll was pending, and a `block(on:)` of another runtime, or any
    // waiting of the caller's, waited for ever.
    @Test("an accept, a receive, a stream read and a file read polled on the runtime's thread after its shutdown fail with .shutDown naming the operation, instead of waiting on a loop nothing runs")
    func handlesPolledAfterShutdown() throws {
        let runtime = try Runtime()
        let listener = try NetTest.bindLoopback(runtime)
        let socket = try UDPSocket.bind(SocketAddress("127.0.0.1:0"), runtime: runtime)
        let (accepted, client) = try runtime.block(on: join(listener.acceptFuture(), TCPStream.connectFuture(to: try listener.localAddress)))
        let stream = try accepted.get()
        let connected = try client.get()
        let file = try runtime.block(on: File.openFuture("/proc/self/status")).get()
        try runtime.shutdown()

        var accept = listener.acceptFuture()
        var receive = socket.receiveFuture()
        var read = stream.readFuture()
        var fileRead = file.readFuture(upTo: 16)
        let polled: [String: Poll<WeftError?>] = [
            "accept": pollOnce(&accept).map { $0.failure },
            "receive": pollOnce(&receive).map { $0.failure },
            "read": pollOnce(&read).map { $0.failure },
            "file read": pollOnce(&fileRead).map { $0.failure },
        ]
        for (operation, poll) in polled.sorted(by: { $0.key < $1.key }) {
            guard case .ready(let error) = poll else {
                Issue.record("\(operation) after shutdown: pending")
                continue
            }
            #expect(error?.kind == .shutDown, "\(operation): \(String(describing: error))")
            #expect(error?.operation.contains(operation.split(separator: " ").last.map(String.init) ?? operation) == true,
                    "\(operation): \(String(describing: error))")
        }
        for closing in [listener.close, socket.close, stream.close, connected.close, file.close] { closing() }
        #expect(runtime.openHandleCount == 0)
    }

    @Test("shutdown is idempotent")
    func shutdownTwice() throws {
        let runtime = try Runtime()
        runtime.spawn(sleepFuture(for: .seconds(60)))
        try runtime.block(on: yieldNow())
        try runtime.shutdown()
        try runtime.shutdown()
        #expect(runtime.openHandleCount == 0)
        #expect(runtime.pendingTimerCount == 0)
    }

    @Test("a foreign wake after shutdown is ignored")
    func foreignWakeAfterShutdown() throws {
        let runtime = try Runtime()
        let mailbox = Mailbox<Int>()
        let handle = runtime.spawn(mailbox.receive())
        try runtime.block(on: yieldNow())
        let waker = try #require(mailbox.waker)
        try runtime.shutdown()
        let thread = ForeignThread { for _ in 0..<100 { waker.wake() } }
        thread.join()
        waker.wake()
        #expect(handle.isFinished)
        #expect(runtime.openHandleCount == 0)
    }

    @Test("shutdown() from inside a task throws .reentrantBlock and leaves the runtime running")
    func shutdownFromInsideATask() throws {
        let runtime = try Runtime()
        let caught = Box<WeftError?>(nil)
        let value = try runtime.guardedBlock(on: pollFn { (_: inout Context) -> Poll<Int> in
            do throws(WeftError) {
                try runtime.shutdown()
            } catch {
                caught.value = error
            }
            return .ready(1)
        }.then { value in sleepFuture(for: .milliseconds(1)).map { value + 1 } })
        #expect(caught.value?.kind == .reentrantBlock)
        #expect(value == 2)
    }

    @Test("handles of a shut-down runtime closed at once on four threads and on the runtime's own, each by three of them, are each closed once: nothing crashes, and every descriptor is released (each thread ran libuv's close on the loop's lists unlocked)")
    func handlesClosedOnSeveralThreadsAfterShutdown() async {
        // In a process of its own: the count of the process's descriptors is
        // exact there, where tests running beside it hold hundreds for seconds.
        await #expect(processExitsWith: .success) { try ShutdownTests.closeHandlesOnSeveralThreads() }
    }

    /// The test above, in its own process: exits with 1, saying why, when a
    /// check fails.
    static func closeHandlesOnSeveralThreads() throws {
        func check(_ condition: Bool, _ failure: @autoclosure () -> String) {
            guard !condition else { return }
            print(failure())
            exit(1)
        }
        // The first runtime of the process opens what libuv keeps for the
        // process (its signal lock's pipe): counted in the baseline.
        try Runtime().shutdown()
        let descriptors = Faults.openDescriptors()
        for _ in 0..<50 {
            let runtime = try Runtime()
            let sockets = try (0..<16).map { _ in try UDPSocket.bind(SocketAddress("127.0.0.1:0"), runtime: runtime) }
            let listeners = try (0..<16).map { _ in try NetTest.bindLoopback(runtime) }
            try runtime.shutdown()
            check(runtime.openHandleCount == 32, "\(runtime.openHandleCount) handles open after the shutdown, not 32")
            let closers = (0..<4).map { thread in
                NetTest.PeerThread {
                    for index in 0..<16 where index % 2 == thread % 2 {
                        sockets[index].close()
                        listeners[index].close()
                    }
                }
            }
            for index in 0..<16 {
                sockets[index].close()
                listeners[index].close()
            }
            check(closers.allSatisfy { $0.join(within: 20) }, "a closing thread did not finish within 20 s")
            check(runtime.openHandleCount == 0, "\(runtime.openHandleCount) handles open after every close")
        }
        // Alone in its process, the count comes back to the baseline but for
        // what the process's own machinery opens once when the machine is
        // loaded (Dispatch's timer descriptor, seen in a loaded run), once
        // the loops closed on other threads are gone (20 s: a loaded machine
        // may take seconds). A leak per runtime would leave 50 or more.
        let slack = 4
        let after = Faults.settle(within: .seconds(20), { Faults.openDescriptors() }) { $0 <= descriptors + slack }
        check(after <= descriptors + slack, "descriptors: \(descriptors) before, \(after) after")
    }
}
