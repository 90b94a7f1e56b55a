import Testing
import Weft

extension ConcurrencyBridge {
    /// Cancelling a Swift task drops the Weft future it awaits: timers are disarmed,
    /// reads stopped, and `CancellationError` is thrown promptly.
    @Suite("Cancellation of async Weft calls")
    struct CancellationTests {
        @Test("cancelling a task sleeping on a runtime's loop throws CancellationError at once and disarms its timer")
        func cancelSleepOnRuntime() throws {
            let runtime = try Runtime()
            let executor = runtime.taskExecutor
            #expect(runtime.pendingTimerCount == 0)
            let sleeper = try runtime.guardedBlock(on: AsyncFuture { () async -> Task<Void, any Error> in
                Task(executorPreference: executor) { try await Weft.sleep(for: .seconds(3600)) }
            })
            // Lets it arm its timer: waits (up to 20 s) until a timer is armed,
            // checked between short sleeps of our own, whose timers are gone by
            // then, so the one counted is the sleeper's.
            let armedBy = ContinuousClock.now + .seconds(20)
            while runtime.pendingTimerCount == 0, ContinuousClock.now < armedBy {
                try runtime.guardedBlock(on: sleepFuture(for: .milliseconds(1)))
            }
            #expect(runtime.pendingTimerCount == 1, "the hour-long sleep should be armed")

            let (cancelled, elapsed) = try runtime.guardedBlock(on: AsyncFuture { () async -> (Bool, Duration) in
                let start = ContinuousClock.now
                sleeper.cancel()
                let result = await sleeper.result
                return (isCancellation(result), ContinuousClock.now - start)
            })
            #expect(cancelled)
            // Not cancelled, the task would wait out its hour: 5 s is loose enough
            // for a loaded machine or a sanitizer and still catches that.
            #expect(elapsed < .seconds(5), "cancellation took \(elapsed.milliseconds) ms")
            #expect(runtime.pendingTimerCount == 0)
            #expect(runtime.statistics.tasksAlive == 0)
        }

        @Test("a cancelled task's sleep throws CancellationError however short, as Task.sleep does: a loop of zero sleeps ends when cancelled (it ran for ever)")
        func zeroSleepsEndWhenCancelled() async throws {
            let loop = try LoopThread()
            defer { loop.shutdown() }
            let sleeper = loop.spawn {
                await ending {
                    while true { try await Weft.sleep(for: .zero) }
                }
            }
            try await Task.sleep(for: .milliseconds(5))
            try await expectCancelledPromptly(sleeper)
            let past = Task { () async -> Bool in
                withUnsafeCurrentTask { $0?.cancel() }
                do { try await Weft.sleep(until: .now - .seconds(1)) } catch { return true }
                return false
            }
            #expect(await past.value, "sleep(until:) a past deadline in a cancelled task returned")
        }

        @Test("a task without a waker of its own, awaiting a future that wakes itself at every poll, ends when cancelled (its cancellation was never seen: it spun for ever)")
        func selfWakingAwaitEndsWhenCancelled() async throws {
            let loop = try LoopThread()
            defer { loop.shutdown() }
            let spinner = Task(executorPreference: loop.taskExecutor) {
                await ending {
                    try await value(of: pollFn { (context: inout Context) -> Poll<Void> in
                        context.waker.wake()
                        return .pending
                    })
                }
            }
            try await Task.sleep(for: .milliseconds(20))
            try await expectCancelledPromptly(spinner)
        }

        @Test("cancelling a task sleeping on a LoopThread, from another thread, throws CancellationError promptly")
        func cancelSleepOnLoopThread() async throws {
            let loop = try LoopThread()
            defer { loop.shutdown() }
            let sleeping = Latch()
            let sleeper = loop.spawn {
                await ending {
                    sleeping.set()
                    try await Weft.sleep(for: .seconds(3600))
                }
            }
            try await awaitWithin(.seconds(20), Task { try await value(of: sleeping.wait()) })
            try await Task.sleep(for: .milliseconds(5))
            try await expectCancelledPromptly(sleeper)
        }

        @Test("a Task created inside a spawned task inherits its task-local values but not its waker: cancelled alone while it sleeps, it throws CancellationError promptly, and the spawned task goes on")
        func cancelTaskCreatedInsideSpawnedTask() async throws {
            let loop = try LoopThread()
            defer { loop.shutdown() }
            let sleeping = Latch()
            let release = Latch()
            let inner = Shared<Task<Ending, Never>?>(nil)
            let outer = loop.spawn { () async throws -> String in
                inner.value = Task(executorPreference: loop.taskExecutor) {
                    await ending {
                        sleeping.set()
                        try await Weft.sleep(for: .seconds(3600))
                    }
                }
                // Waiting on the loop too while `inner` sleeps.
                try await value(of: release.wait())
                return Task.isCancelled ? "cancelled" : "released"
            }
            try await awaitWithin(.seconds(20), Task { try await value(of: sleeping.wait()) })
            try await Task.sleep(for: .milliseconds(5))
            try await expectCancelledPromptly(inner.value!)
            release.set()
            #expect(try await awaitWithin(.seconds(20), outer) == "released")
        }

        @Test("a task spawned on a loop and cancelled before its first await throws CancellationError there, and at every later await")
        func spawnedTaskCancelledBeforeAwaiting() async throws {
            let loop = try LoopThread()
            defer { loop.shutdown() }
            let outcomes = try await awaitWithin(.seconds(20), loop.spawn { () async -> [String] in
                withUnsafeCurrentTask { $0?.cancel() }
                var outcomes: [String] = []
                for _ in 0..<2 {
                    let end = await ending { try await Weft.sleep(for: .seconds(3600)) }
                    outcomes.append(end.cancelled ? "cancelled" : end.outcome)
                }
                return outcomes
            })
            #expect(outcomes == ["cancelled", "cancelled"])
        }

        @Test("a task cancelled before it awaits a pending sleep throws CancellationError without arming a timer")
        func cancelledBeforeSleeping() throws {
            let runtime = try Runtime()
            let executor = runtime.taskExecutor
            let result = try runtime.guardedBlock(on: AsyncFuture { () async -> Result<Void, any Error> in
                let task = Task(executorPreference: executor) { () async throws -> Void in
                    withUnsafeCurrentTask { $0?.cancel() }
                    try await Weft.sleep(for: .seconds(3600))
                }
                return await task.result
            })
            #expect(isCancellation(result))
            #expect(runtime.pendingTimerCount == 0)
        }

        @Test("cancelling value(of:) awaited off any loop (on the shared loop) throws CancellationError promptly")
        func cancelValueOnSharedLoop() async throws {
            // High priority: timed on a thread of its own root queue, not one that the
            // synchronous tests running in parallel may hold.
            let waiter = Task(priority: .high) { await ending { try await value(of: sleepFuture(for: .seconds(3600))) } }
            try await Task.sleep(for: .milliseconds(10))
            try await expectCancelledPromptly(waiter)
        }

        @Test("cancelling a task blocked in stream.read() throws CancellationError at once; the stream stays usable and closes without a leak")
        func cancelReadOnRuntime() throws {
            let runtime = try Runtime()
            let executor = runtime.taskExecutor
            let baselineHandles = runtime.openHandleCount
            let listener = try TCPListener.bind(SocketAddress("127.0.0.1:0"), runtime: runtime)
            let address = try listener.localAddress
            let (connected, accepted) = try runtime.guardedBlock(on: join(TCPStream.connectFuture(to: address), listener.acceptFuture()))
            let client = try connected.get()
            let server = try accepted.get()
            let handlesWithStreams = runtime.openHandleCount
            #expect(handlesWithStreams == baselineHandles + 3)

            let (cancelled, elapsed) = try runtime.guardedBlock(on: AsyncFuture { () async -> (Bool, Duration) in
                let reader = Task(executorPreference: executor) { try await server.read(upTo: 100) }
                try? await Weft.sleep(for: .milliseconds(5))  // lets it block in the read
                let start = ContinuousClock.now
                reader.cancel()
                let result = await reader.result
                return (isCancellation(result), ContinuousClock.now - start)
            })
            #expect(cancelled)
            // Not cancelled, the read would wait for ever (no byte is sent): 5 s is
            // loose enough for a loaded machine or a sanitizer and still catches that.
            #expect(elapsed < .seconds(5), "cancellation took \(elapsed.milliseconds) ms")
            #expect(runtime.openHandleCount == handlesWithStreams)
            #expect(runtime.pendingTimerCount == 0)
            #expect(!server.isClosed)

            // Nothing was lost, and the stream still reads and writes.
            let echoed = try runtime.guardedBlock(on: AsyncFuture { () async -> Result<[UInt8], any Error> in
                await outcome {
                    try await client.write([1, 2, 3])
                    var received: [UInt8] = []
                    while received.count < 3 { received += try await server.read(upTo: 100) }
                    try await server.write(received)
                    var back: [UInt8] = []
                    while back.count < 3 { back += try await client.read(upTo: 100) }
                    return back
                }
            })
            #expect(try echoed.get() == [1, 2, 3])

            server.close()
            client.close()
            listener.close()
            #expect(server.isClosed)
            #expect(runtime.openHandleCount == baselineHandles)
            #expect(runtime.statistics.tasksAlive == 0)
            try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baselineHandles)
        }

        @Test("cancelling a task blocked in stream.read() on a LoopThread, from another thread, throws CancellationError promptly and loses no bytes")
        func cancelReadOnLoopThread() async throws {
            try await withConnectedPair { loop, _, client, server in
                let reader = loop.spawn { await ending { try await server.read(upTo: 100) } }
                try await Task.sleep(for: .milliseconds(10))
                try await expectCancelledPromptly(reader)

                let received = try await awaitWithin(.seconds(20), loop.spawn { () async throws -> [UInt8] in
                    try await client.write([9, 8, 7])
                    var received: [UInt8] = []
                    while received.count < 3 { received += try await server.read(upTo: 100) }
                    return received
                })
                #expect(received == [9, 8, 7])

                // Closing one end from the test thread: the other reads end of stream.
                client.close()
                let eof = try await awaitWithin(.seconds(20), loop.spawn { try await server.read(upTo: 100) })
                #expect(eof.isEmpty)
            }
        }

        @Test("cancelling a task blocked in accept() throws CancellationError and the listener still accepts")
        func cancelAccept() async throws {
            let loop = try LoopThread()
            defer { loop.shutdown() }
            let handlesBefore = try await NetTest.handleBaseline(on: loop)
            let (listener, address) = try await NetTest.bindLoopback(on: loop)
            defer { listener.close() }
            let acceptor = loop.spawn { try await listener.accept() }
            try await Task.sleep(for: .milliseconds(10))
            acceptor.cancel()
            let result = await outcome { try await awaitWithin(.seconds(20), acceptor) }
            #expect(isCancellation(result), "got \(result)")

            let connected = try await awaitWithin(.seconds(20), loop.spawn { () async throws -> Bool in
                async let accepted = listener.accept()
                let client = try await TCPStream.connect(to: address)
                let server = try await accepted
                try await client.write([1])
                let byte = try await server.read(upTo: 1)
                return byte == [1]
            })
            #expect(connected)
            listener.close()
            try await NetTest.expectNothingLeftOpen(on: loop, handlesBefore: handlesBefore)
        }
    }
}
