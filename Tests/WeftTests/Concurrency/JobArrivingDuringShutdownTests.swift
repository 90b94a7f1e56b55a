import Dispatch
import Glibc
import Testing
@testable import Weft

/// A Swift job that reaches a plain runtime's loop while it shuts down.
@Suite("A Swift job arriving during a shutdown")
struct JobArrivingDuringShutdownTests {
    /// Runs `action` when its loop shuts down (in its shutdown observers'
    /// turn, before the loop's inbox is closed).
    final class ShutdownHook: LoopShutdownObserver, @unchecked Sendable {
        static let key = LoopAttachmentKey { _ in ShutdownHook() }
        /// Set on the loop's thread before the shutdown, read there during it.
        var action: () -> Void = {}
        func loopShuttingDown() { action() }
    }

    // Before the fix that came with this test, the shutdown looked for the
    // bridge's executors (which take the Swift jobs a dead loop can no longer
    // run) once, before telling its observers: an await from another thread
    // that made them afterwards, its job queued before the inbox closed,
    // trapped ("a Swift job queued on a loop without the bridge's executors").
    // The hook puts that await in the window every time.
    @Test("an await from another thread that first uses a runtime's executors while it shuts down ends; the shutdown does not trap")
    func awaitMakingTheExecutorsDuringShutdown() async throws {
        let ended = DispatchSemaphore(value: 0)
        let outcome = Shared<String?>(nil)
        let queued = Shared(false), endedInTime = Shared(false), hadExecutors = Shared(true)
        let returned = returnsOnAThreadOfItsOwn(within: .seconds(30)) {
            do {
                let awaiting = try LoopThread()
                defer { awaiting.shutdown() }
                let runtime = try Runtime()
                let listener = try TCPListener.bind(SocketAddress("127.0.0.1:0"), runtime: runtime)
                hadExecutors.value = runtime.loop.attachments.orphanage != nil
                let inbox = runtime.loop.inbox
                runtime.loop.withAttachment(ShutdownHook.key) { hook in
                    hook.action = {
                        // On a thread of its own, not Swift's pool, which
                        // other tests may keep busy for longer than this waits.
                        awaiting.spawn {
                            do {
                                _ = try await listener.accept()
                                outcome.value = "accepted"
                            } catch {
                                outcome.value = "\(error)"
                            }
                            ended.signal()
                        }
                        // Until the task's first job is in the loop's inbox.
                        let deadline = ContinuousClock.now + .seconds(10)
                        while inbox.isEmpty && ContinuousClock.now < deadline { sched_yield() }
                        queued.value = !inbox.isEmpty
                    }
                }
                try runtime.shutdown()
                runtime.loop.withAttachment(ShutdownHook.key) { $0.action = {} }  // it held the listener
                endedInTime.value = ended.wait(timeout: .now() + 10) == .success
                listener.close()
            } catch {
                outcome.value = "setup failed: \(error)"
            }
        }
        #expect(returned)
        #expect(!hadExecutors.value, "the runtime had the bridge's executors already")
        #expect(queued.value, "the await's job never reached the inbox: the test did not test the window")
        #expect(endedInTime.value, "the await did not end")
        let ending = outcome.value
        #expect(ending != nil && ending != "accepted", "\(String(describing: ending))")
    }
}
