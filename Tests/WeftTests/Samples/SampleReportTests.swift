import Foundation
import Glibc
import Testing
import Weft

extension TimingSensitive {
    @Suite("Sample runtime reports")
    struct SampleReportTests {
        @Test("on SIGUSR1 a sample prints its runtime's counters and live tasks, and keeps serving",
              arguments: [["weft-echo"], ["weft-echo", "--poll"], ["weft-hello"]])
        func reportOnSIGUSR1(command: [String]) throws {
            try #require(SampleBinaries.path(command[0]) != nil, "\(command[0]) is built next to the tests")
            let (child, address) = try SampleProcessTests.launch(command[0], Array(command.dropFirst()))
            defer { child.stop() }
            let runtime = try Runtime()
            let stream = try runtime.block(on: timeout(.seconds(5), TCPStream.connect(to: address))).get().get()
            try runtime.block(on: sleep(for: .milliseconds(100)))  // the connection is being served

            kill(child.process.processIdentifier, SIGUSR1)
            let header = try #require(child.readLine(within: .seconds(5)), "nothing printed after SIGUSR1")
            #expect(header.hasSuffix("runtime report"), "unexpected line: \(header)")
            let counters = try #require(child.readLine(within: .seconds(1)))
            #expect(counters.hasPrefix("tasks: "), "unexpected line: \(counters)")
            let times = try #require(child.readLine(within: .seconds(1)))
            #expect(times.hasPrefix("time: "), "unexpected line: \(times)")
            let resources = try #require(child.readLine(within: .seconds(1)))
            #expect(resources.hasPrefix("handles: "), "unexpected line: \(resources)")
            #expect(child.process.isRunning)

            stream.close()
            #expect(child.signalAndWait(SIGTERM, within: .seconds(5)))
            #expect(child.process.terminationStatus == 0)
        }
    }
}
