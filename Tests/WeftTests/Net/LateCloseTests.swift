import Dispatch
import Glibc
import Testing
@testable import Weft

@Suite("Handles closed after their runtime shut down")
struct LateCloseTests {
    @Test("a stream with writes queued in libuv, dropped on another thread after its runtime shut down, lets its loop go (the queued writes kept the loop alive: nobody ran it again to cancel them, and the loop leaked with its descriptors)")
    func streamWithQueuedWritesLetsItsLoopGo() throws {
        weak var loop: EventLoop?
        try {
            let runtime = try Runtime()
            loop = runtime.loop
            let listener = try NetTest.bindLoopback(runtime)
            let client = try RawSocket.connected(to: try listener.localAddress.port)  // never reads
            defer { client.close() }
            let server = try runtime.block(on: timeoutFuture(.seconds(5), listener.acceptFuture())).get().get()
            try server.setBufferLimits(unread: 64 * 1024, queued: 64 << 20)
            try server.setOptions(SocketOptions(sendBufferSize: 4096))
            let chunk = [UInt8](repeating: 7, count: 4 << 20)
            let accepted = try runtime.block(on: pollFn { context -> Poll<Int> in
                guard case .ready(.success(let count)) = chunk.withUnsafeBytes({ server.pollWrite(&context, $0) }) else {
                    return .ready(-1)
                }
                return .ready(count)
            })
            #expect(accepted == chunk.count)
            #expect(server.connection.queuedWriteBytes > 0, "nothing left queued in libuv")
            listener.close()
            try runtime.shutdown()
            let handover = SharedBox<TCPStream?>(server)
            #expect(returnsOnAThreadOfItsOwn(within: .seconds(10)) { handover.set(nil) })
        }()
        // Freed, the loop closed its descriptors (the suites run in parallel:
        // a count of this process's descriptors would not show four).
        #expect(loop == nil, "the loop was not freed")
    }

    /// Resumes its continuation when it goes.
    final class ResumesWhenReleased: @unchecked Sendable {
        let continuation: CheckedContinuation<Void, Never>
        init(_ continuation: CheckedContinuation<Void, Never>) { self.continuation = continuation }
        deinit { continuation.resume() }
    }

    // Before the fix that came with this test, the resumed task's job went to
    // the dead loop's own queue (the late close's thread counts as running
    // the loop), and was handed on only once no handle of the loop was open:
    // with the UDP socket open, the task never ran again.
    @Test("a Swift task resumed inside a late close (its continuation's last owner released there) runs, though another handle of the shut-down loop is still open")
    func taskResumedByALateCloseRuns() async throws {
        let resumed = DispatchSemaphore(value: 0)
        let ranAgain = Shared(false)
        let returned = returnsOnAThreadOfItsOwn(within: .seconds(30)) {
            do {
                let runtime = try Runtime()
                let socket = try UDPSocket.bind(SocketAddress("127.0.0.1:0"), runtime: runtime)  // stays open
                defer { socket.close() }
                let parked = SharedBox<ResumesWhenReleased?>(nil)
                Task(executorPreference: runtime.taskExecutor) {
                    await withCheckedContinuation { parked.set(ResumesWhenReleased($0)) }
                    resumed.signal()
                }
                try runtime.block(on: timeoutFuture(.seconds(10), NetTest.eventually { parked.get() != nil })).get()
                // A sleep armed on the runtime whose waker holds the last
                // reference to the continuation's box.
                let sleep = SharedBox<Sleep?>(sleepFuture(for: .seconds(60)))
                try {
                    let box = parked.get()!
                    parked.set(nil)
                    let waker = Waker { withExtendedLifetime(box) {} }
                    try runtime.block(on: pollFn { (_: inout Context) -> Poll<Void> in
                        var armed = sleep.get()!
                        var context = Context(waker: waker)
                        _ = armed.poll(&context)
                        sleep.set(armed)
                        return .ready(())
                    })
                }()
                try runtime.shutdown()
                // Dropped on another thread: released by a late close.
                _ = returnsOnAThreadOfItsOwn(within: .seconds(10)) { sleep.set(nil) }
                ranAgain.value = resumed.wait(timeout: .now() + 5) == .success
            } catch {
                Issue.record("\(error)")
            }
        }
        #expect(returned)
        #expect(ranAgain.value, "the task resumed in the late close never ran")
    }
}
