import Foundation
import Glibc
import Testing
import Weft

extension TimingSensitive {
    @Suite("Sample runtime reports")
    struct SampleReportTests {
        @Test("on SIGUSR1 a sample prints each loop's counters and live tasks, and keeps serving",
              arguments: [["weft-echo", "--loops", "1"], ["weft-echo", "--loops", "2"], ["weft-echo", "--poll"],
                          ["weft-hello", "--loops", "2"]])
        func reportOnSIGUSR1(command: [String]) throws {
            try #require(SampleBinaries.path(command[0]) != nil, "\(command[0]) is built next to the tests")
            let (child, address) = try SampleProcessTests.launch(command[0], Array(command.dropFirst()))
            defer { child.stop() }
            let runtime = try Runtime()
            let stream = try runtime.block(on: timeoutFuture(.seconds(5), TCPStream.connectFuture(to: address))).get().get()
            try runtime.block(on: sleepFuture(for: .milliseconds(100)))  // the connection is being served

            kill(child.process.processIdentifier, SIGUSR1)
            let loops = command.firstIndex(of: "--loops").map { Int(command[$0 + 1])! } ?? 1
            var header = try #require(child.readLine(within: .seconds(5)), "nothing printed after SIGUSR1")
            for loop in 0..<loops {
                if loop > 0 {
                    // Skip the previous loop's task lines (indented).
                    repeat {
                        header = try #require(child.readLine(within: .seconds(1)), "no report for loop \(loop)")
                    } while header.hasPrefix("  ")
                }
                #expect(header.hasSuffix("runtime report"), "unexpected line: \(header)")
                if command[0] != "weft-echo" || !command.contains("--poll") {
                    #expect(header.contains("loop \(loop) of \(loops),"), "unexpected line: \(header)")
                }
                let counters = try #require(child.readLine(within: .seconds(1)))
                #expect(counters.hasPrefix("tasks: "), "unexpected line: \(counters)")
                let times = try #require(child.readLine(within: .seconds(1)))
                #expect(times.hasPrefix("time: "), "unexpected line: \(times)")
                let resources = try #require(child.readLine(within: .seconds(1)))
                #expect(resources.hasPrefix("handles: "), "unexpected line: \(resources)")
                let swiftTasks = try #require(child.readLine(within: .seconds(1)))
                #expect(swiftTasks.hasPrefix("swift tasks: "), "unexpected line: \(swiftTasks)")
                let buffers = try #require(child.readLine(within: .seconds(1)))
                #expect(buffers.hasPrefix("buffers: ") && buffers.hasSuffix("reads paused for the loop's budget: 0"),
                        "unexpected line: \(buffers)")
                let accepts = try #require(child.readLine(within: .seconds(1)))
                #expect(accepts == "accept: out of descriptors 0 times, 0 connections shed", "unexpected line: \(accepts)")
            }
            #expect(child.process.isRunning)

            stream.close()
            #expect(child.signalAndWait(SIGTERM, within: .seconds(5)))
            #expect(child.process.terminationStatus == 0)
        }
    
        @Test("a sample whose stdout nobody reads keeps serving through 400 SIGUSR1 reports, and says how many it dropped once the output drains",
              arguments: [["weft-echo", "--loops", "2"], ["weft-echo", "--poll"], ["weft-hello", "--loops", "2"]])
        func reportsNeverBlockServing(command: [String]) throws {
            try #require(SampleBinaries.path(command[0]) != nil, "\(command[0]) is built next to the tests")
            let (child, address) = try SampleProcessTests.launch(command[0], Array(command.dropFirst()))
            defer { child.stop() }
            // From here on nobody reads the child's stdout: the pipe (64 KiB) fills.
            for _ in 0..<400 {
                kill(child.process.processIdentifier, SIGUSR1)
                usleep(2_000)
            }
            let runtime = try Runtime()
            let served = try runtime.block(on: timeoutFuture(.seconds(3), TCPStream.connectFuture(to: address).onSuccess { stream in
                stream.writeAll(Array("GET / HTTP/1.1\r\n\r\n".utf8)).onSuccess { stream.readFuture(upTo: 1) }
            }))
            #expect((try? served.get().get())?.isEmpty == false, "not served while its stdout was full: \(served)")
            #expect(child.process.isRunning)
            // Drained, the next report says how many were dropped.
            while child.readLine(within: .seconds(1)) != nil {}
            kill(child.process.processIdentifier, SIGUSR1)
            var sawDropped = false
            while let line = child.readLine(within: .seconds(2)) {
                if line.contains("dropped while the output was blocked") { sawDropped = true }
            }
            #expect(sawDropped, "no line said how many reports were dropped")
        }
}
}
