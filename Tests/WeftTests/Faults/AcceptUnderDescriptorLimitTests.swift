import Foundation
import Glibc
import Testing
import Weft

/// The listener under descriptor exhaustion, in a child process with a low
/// `RLIMIT_NOFILE` (issue: "accept errors never kill the listener").
extension TimingSensitive {
    @Suite("Accepting under a descriptor limit")
    struct AcceptUnderDescriptorLimitTests {
        /// One client: connect, send a byte, expect it back; `false` if the server
        /// closed or reset the connection or did not answer in time.
        static func echoesOneByte(_ address: SocketAddress, keep: Box<[TCPStream]>) -> some Future<Bool> {
            let exchange = TCPStream.connectFuture(to: address).then { connected -> AnyFuture<Bool> in
                guard case .success(let stream) = connected else { return ready(false).boxed() }
                return stream.writeAll([42]).then { _ in stream.readExact(1) }.map { reply in
                    guard case .success([42]) = reply else { return false }
                    keep.value.append(stream)
                    return true
                }.boxed()
            }
            return timeoutFuture(.seconds(3), exchange).map { (try? $0.get()) ?? false }
        }

        @Test("with 48 descriptors, the echo server keeps serving its connections, sheds the excess (printed when it happens, and counted, with the time, in its SIGUSR1 report), and accepts again once descriptors free up")
        func listenerSurvivesEMFILE() throws {
            let binary = try #require(SampleBinaries.path("weft-echo"), "weft-echo is built next to the tests")
            let child = try SampleChild("/bin/sh", arguments: ["-c", "ulimit -n 48 && exec '\(binary)' --poll --port 0"])
            defer { child.stop() }
            let line = try #require(child.readLine(within: .seconds(10)), "weft-echo printed nothing")
            let address = try SocketAddress(String(line.dropFirst("listening on ".count)))

            let runtime = try Runtime()
            let kept = Box<[TCPStream]>([])
            // 80 clients at once: more than the server has descriptors for.
            let answered = try runtime.block(on: joinAll((0..<80).map { _ in Self.echoesOneByte(address, keep: kept) }))
            let served = answered.filter { $0 }.count
            #expect(served >= 20, "the server served \(served) of 80 clients")
            #expect(served < 80, "the limit was not reached: \(served) of 80 served")
            #expect(child.process.isRunning, "the server died at the descriptor limit")

            // The operator can see it: the report counts the times the server ran
            // out, the connections it shed, and when it last happened.
            kill(child.process.processIdentifier, SIGUSR1)
            var reportLine: String?
            var failures: [String] = []  // printed as they happened, before the report
            while let line = child.readLine(within: .seconds(3)) {
                if line.hasPrefix("weft-echo: accept on ") { failures.append(line) }
                if line.hasPrefix("accept: ") { reportLine = line; break }
            }
            #expect(!failures.isEmpty, "weft-echo printed no failed accept")
            #expect(failures.allSatisfy { $0.contains("EMFILE") }, "\(failures)")
            #expect(failures.contains { $0.contains("waiting connection(s)") }, "none says what it shed: \(failures)")
            let accepts = try #require(reportLine, "no accept line in the SIGUSR1 report")
            let counts = accepts.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
            #expect(accepts.hasPrefix("accept: out of descriptors "), "\(accepts)")
            #expect(counts.count >= 2 && counts[0] >= 1 && counts[1] >= 1, "\(accepts)")
            #expect(counts.count >= 2 && counts[1] >= 80 - served - 1, "shed fewer than were refused: \(accepts)")
            #expect(accepts.contains(", last at 20") && accepts.hasSuffix(" UTC"), "\(accepts)")

            // The connections it has still work.
            let first = try #require(kept.value.first)
            let again = try runtime.block(on: timeoutFuture(.seconds(3), first.writeAll([7]).then { _ in first.readExact(1) }))
            #expect(try again.get().get() == [7])

            // Free the descriptors; new connections are accepted again.
            for stream in kept.value { stream.close() }
            kept.value.removeAll()
            try runtime.block(on: sleepFuture(for: .milliseconds(200)))
            let later = try runtime.block(on: joinAll((0..<10).map { _ in Self.echoesOneByte(address, keep: kept) }))
            #expect(later.allSatisfy { $0 }, "after freeing descriptors: \(later)")
            for stream in kept.value { stream.close() }

            #expect(child.signalAndWait(SIGTERM, within: .seconds(2)))
            #expect(child.exitStatus == 0)
        }
    }
}
