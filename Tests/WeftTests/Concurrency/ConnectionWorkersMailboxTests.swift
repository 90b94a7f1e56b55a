import Glibc
import Testing
@testable import Weft

extension ConcurrencyBridge {
    /// `ConnectionWorkers.start` pops a waiting task's mailbox and then hands
    /// it the connection; the task may end in between (the loop's shutdown
    /// cancels it). A mailbox whose task ended must refuse the connection, so
    /// that `start` gives it to another task instead of leaving it where no
    /// one takes it (a handed-over descriptor was never closed).
    @Suite("serve: a connection for a task that just ended")
    struct ConnectionWorkersMailboxTests {
        @Test("a closed mailbox refuses a delivery and keeps nothing: the descriptor stays the caller's")
        func closedMailboxRefuses() throws {
            let loop = try LoopThread(name: "mailbox")
            defer { loop.shutdown() }
            let workers = ConnectionWorkers(loop: loop) { _ in }
            var pair: [Int32] = [-1, -1]
            try #require(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0)
            defer { close(pair[1]) }
            // Its first connection was taken; then its task ended.
            let mailbox = ConnectionWorkers.Mailbox(.descriptor(pair[0]), workers: workers, taskID: -1)
            mailbox.close()  // closes the untaken first descriptor, pair[0]
            #expect(!mailbox.deliver(.descriptor(pair[1])), "a mailbox whose task ended took a connection")
            #expect(!mailbox.hasDelivery)
            #expect(fcntl(pair[1], F_GETFD) != -1, "the refused descriptor was closed: it is still the caller's")
        }
    }
}
