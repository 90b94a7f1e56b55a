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
            #expect(child.signalAndWait(SIGTERM, within: .seconds(10)))
            #expect(child.exitStatus == 0)
        }
    
        @Test("weft-echo's UDP and Unix socket echoes print a report on SIGUSR1 too, keep serving, and exit cleanly on SIGTERM (SIGUSR1 killed them, leaving the socket file)",
              .enabled(if: SampleBinaries.path("weft-echo") != nil, "weft-echo is not built next to the test bundle"),
              arguments: [["--udp", "--loops", "1"], ["--udp", "--poll"], ["--unix"], ["--unix", "--poll"]])
        func datagramAndUnixReports(options: [String]) throws {
            let path = try #require(SampleBinaries.path("weft-echo"))
            let socketPath = NSTemporaryDirectory() + "weft-echo-report-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
            let arguments = options.first == "--unix" ? ["--unix", socketPath] + options.dropFirst() : ["--port", "0"] + options
            let child = try SampleChild(path, arguments: arguments)
            defer { child.stop() }
            let line = try #require(child.readLine(within: .seconds(10)), "weft-echo printed nothing")
            #expect(line.hasPrefix("listening on "), "unexpected first line: \(line)")
            kill(child.process.processIdentifier, SIGUSR1)
            let header = try #require(child.readLine(within: .seconds(5)), "nothing printed after SIGUSR1")
            #expect(header.hasSuffix("runtime report"), "unexpected line: \(header)")
            let counters = try #require(child.readLine(within: .seconds(1)))
            #expect(counters.hasPrefix("tasks: "), "unexpected line: \(counters)")
            #expect(child.process.isRunning)
            if options.first == "--unix" {
                #expect(FileManager.default.fileExists(atPath: socketPath))
                let runtime = try Runtime()
                let stream = try runtime.block(on: timeoutFuture(.seconds(5), UnixStream.connectFuture(to: .path(socketPath)))).get().get()
                stream.close()
            }
            #expect(child.signalAndWait(SIGTERM, within: .seconds(10)))
            #expect(child.process.terminationReason == .exit)
            #expect(child.exitStatus == 0)
            #expect(!FileManager.default.fileExists(atPath: socketPath), "the socket file is left behind")
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
            let served = try runtime.block(on: timeoutFuture(.seconds(20), TCPStream.connectFuture(to: address).onSuccess { stream in
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

        @Test("a sample whose stdout is full still shuts down on SIGTERM: its drain's lines wait on a thread of their own, not on a loop (the loop blocked in write for good)",
              arguments: [["weft-echo", "--loops", "2"], ["weft-echo", "--poll"], ["weft-echo", "--udp", "--loops", "1"],
                          ["weft-echo", "--udp", "--poll"], ["weft-hello", "--loops", "2"], ["weft-hello", "--loops", "1"]])
        func shutdownWithStdoutFull(command: [String]) throws {
            let path = try #require(SampleBinaries.path(command[0]), "\(command[0]) is built next to the tests")
            let child = try SampleChild(path, arguments: ["--port", "0"] + command.dropFirst(), outputThroughFIFO: true)
            defer { child.stop() }
            let line = try #require(child.readLine(within: .seconds(10)), "\(command[0]) printed nothing")
            #expect(line.hasPrefix("listening on "), "unexpected first line: \(line)")
            try child.fillOutput()  // and nobody reads it from here on
            try #require(child.signalAndWait(SIGTERM, within: .seconds(10)), "still running 10 s after SIGTERM")
            #expect(child.process.terminationReason == .exit)
            #expect(child.exitStatus == 0)
        }

        // Before the fix that came with this test, the address line was
        // written straight to the full FIFO on the loop that watches for the
        // signals, whose handlers were installed already: that loop blocked in
        // write, the SIGTERM caught and never read, until SIGKILL.
        @Test("a sample whose stdout is full before it announces its address still serves, and exits 0 on SIGTERM",
              arguments: [[], ["--poll"]])  // async (one loop: --unix serves on one) and poll
        func stdoutFullBeforeTheAnnounce(options: [String]) throws {
            let echo = try #require(SampleBinaries.path("weft-echo"), "weft-echo is built next to the tests")
            let socketPath = NSTemporaryDirectory() + "weft-full-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
            defer { unlink(socketPath) }
            // The shell fills the FIFO (64 KiB) before it becomes weft-echo on it.
            let child = try SampleChild("/bin/sh", arguments: [
                "-c", "head -c 65536 /dev/zero; exec '\(echo)' --unix '\(socketPath)' \(options.joined(separator: " "))",
            ], outputThroughFIFO: true)
            defer { child.stop() }
            // Bound (after the signal handlers), then its announce, then serving.
            let runtime = try Runtime()
            let deadline = ContinuousClock.now + .seconds(20)
            var echoed: [UInt8]?
            while echoed == nil && ContinuousClock.now < deadline {
                if let stream = try? runtime.block(on: timeoutFuture(.seconds(2), UnixStream.connectFuture(to: .path(socketPath)))).get().get() {
                    echoed = try? runtime.block(on: timeoutFuture(.seconds(5), stream.writeAll([7]).then { _ in stream.readExact(1) })).get().get()
                    stream.close()
                } else {
                    usleep(20_000)
                }
            }
            #expect(echoed == [7], "weft-echo did not serve with its stdout full")
            try #require(child.signalAndWait(SIGTERM, within: .seconds(10)), "still running 10 s after SIGTERM")
            #expect(child.process.terminationReason == .exit)
            #expect(child.exitStatus == 0)
        }
}
}
