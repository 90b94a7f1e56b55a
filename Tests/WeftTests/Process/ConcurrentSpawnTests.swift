import Glibc
import Testing
import Weft

/// Spawns racing each other over the mode of a descriptor their children
/// share. A stress test (hundreds of forks, 35 s under AddressSanitizer, which
/// starved the tests beside it): in the serialized suite, which the sanitizer
/// runs skip.
extension TimingSensitive {
    @Suite("Concurrent spawns sharing a descriptor")
    struct ConcurrentSpawnTests {
        @Test("two threads spawning children that each get the same non-blocking socket as their standard output leave it non-blocking: one's look at its mode, outside the lock, could fall while the other's child had made it blocking, and then no one set it back after its own child did")
        func concurrentSpawnsOnOneSocket() throws {
            var ends: [Int32] = [-1, -1]
            try #require(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) == 0)
            defer { close(ends[0]); close(ends[1]) }
            _ = fcntl(ends[0], F_SETFL, fcntl(ends[0], F_GETFL) | O_NONBLOCK)
            let socket = ends[0]
            let spawners = (0..<2).map { _ in
                NetTest.PeerThread {
                    guard let runtime = try? Runtime() else { return }
                    var command = Command("/bin/true")
                    command.standardOutput = .descriptor(socket)
                    for _ in 0..<100 {
                        _ = try? runtime.block(on: timeoutFuture(.seconds(10), command.statusFuture()))
                    }
                }
            }
            #expect(spawners.allSatisfy { $0.join(within: 120) })
            #expect(fcntl(socket, F_GETFL) & O_NONBLOCK != 0, "a child left the socket blocking")
        }
    }
}
