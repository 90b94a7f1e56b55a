import Foundation
import Glibc
import HelloServer
import Testing
import Weft

/// The sample executables, run as child processes.
enum SampleBinaries {
    /// The build directory: the test bundle (`WeftPackageTests.xctest`) is built
    /// next to the products, e.g. `.build/x86_64-unknown-linux-gnu/debug/`.
    static let directory: URL? = {
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? Bundle.main.executablePath
            ?? CommandLine.arguments.first
        return executable.map { URL(fileURLWithPath: $0).deletingLastPathComponent() }
    }()

    /// The path of the built executable `name`, if there is one.
    static func path(_ name: String) -> String? {
        guard let path = directory?.appendingPathComponent(name).path,
              FileManager.default.isExecutableFile(atPath: path) else { return nil }
        return path
    }
}

/// A child process with its standard output on a pipe. `stop()` (also run by
/// `deinit`) kills it if it is still running and reaps it.
final class SampleChild {
    let process = Process()
    /// The pipe the child writes to, unless `outputThroughFIFO`.
    private let output = Pipe()
    private var buffered: [UInt8] = []
    /// With `outputThroughFIFO`: the FIFO that is the child's stdout, and
    /// the test's end to read it.
    private let fifo: (path: String, reader: Int32)?

    /// Starts `path` with `arguments`; its stdout and stderr go to a pipe, or
    /// with `outputThroughFIFO` to a named pipe, which ``fillOutput()`` can
    /// fill to the byte.
    init(_ path: String, arguments: [String], outputThroughFIFO: Bool = false) throws {
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        if outputThroughFIFO {
            let fifoPath = NSTemporaryDirectory() + "weft-sample-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).fifo"
            try #require(mkfifo(fifoPath, 0o600) == 0, "mkfifo: \(String(cString: strerror(errno)))")
            let reader = open(fifoPath, O_RDONLY | O_NONBLOCK | O_CLOEXEC)  // first: a writer's open then returns at once
            let writer = try #require(FileHandle(forWritingAtPath: fifoPath))
            fifo = (fifoPath, reader)
            process.standardOutput = writer
            process.standardError = writer
        } else {
            fifo = nil
            process.standardOutput = output
            process.standardError = output
        }
        // The child inherits the signal mask of the thread that spawns it, and
        // the test runs on a dispatch worker thread that blocks SIGTERM and
        // SIGINT: the child would never see them. Spawn with an empty mask.
        var empty = sigset_t()
        var saved = sigset_t()
        sigemptyset(&empty)
        pthread_sigmask(SIG_SETMASK, &empty, &saved)
        defer { pthread_sigmask(SIG_SETMASK, &saved, nil) }
        try process.run()
        if let writer = process.standardOutput as? FileHandle { try writer.close() }  // the child's is its own
    }

    /// The next line of output, waiting at most `limit` (nil on timeout or EOF).
    func readLine(within limit: Duration) -> String? {
        let deadline = ContinuousClock.now + limit
        let fd = fifo?.reader ?? output.fileHandleForReading.fileDescriptor
        while true {
            if let newline = buffered.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffered[..<newline], as: UTF8.self)
                buffered.removeSubrange(...newline)
                return line
            }
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else { return nil }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let milliseconds = Int32(max(1, remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000))
            guard poll(&poller, 1, milliseconds) > 0 else { continue }
            if poller.revents & Int16(POLLIN) == 0 { return nil }  // the last writer left
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard count > 0 else { return nil }
            buffered += chunk[..<count]
        }
    }

    /// Sends `signal` and waits at most `limit` for the process to exit.
    func signalAndWait(_ signal: Int32, within limit: Duration) -> Bool {
        kill(process.processIdentifier, signal)
        return waitForExit(within: limit)
    }

    /// Waits at most `limit` for the process to exit.
    func waitForExit(within limit: Duration) -> Bool {
        let deadline = ContinuousClock.now + limit
        while process.isRunning {
            if ContinuousClock.now >= deadline { return false }
            usleep(5_000)
        }
        return true
    }

    /// The exit status, or nil while it runs (Foundation traps on reading
    /// `terminationStatus` of a running process, ending the whole test run).
    var exitStatus: Int32? {
        process.isRunning ? nil : process.terminationStatus
    }

    /// With `outputThroughFIFO`: fills the child's stdout to the last byte,
    /// through a non-blocking descriptor of the test's own (the child's stays
    /// blocking), so that the child's next write to it blocks.
    func fillOutput() throws {
        let fifo = try #require(fifo, "fillOutput needs outputThroughFIFO")
        let writer = open(fifo.path, O_WRONLY | O_NONBLOCK | O_CLOEXEC)
        try #require(writer >= 0)
        defer { close(writer) }
        let block = [UInt8](repeating: UInt8(ascii: "."), count: 4096)
        var size = block.count
        while size > 0 {
            if block.withUnsafeBytes({ write(writer, $0.baseAddress, size) }) < 0 { size /= 2 }
        }
    }

    /// Kills the process if it still runs, and reaps it.
    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    deinit {
        stop()
        if let fifo {
            close(fifo.reader)
            unlink(fifo.path)
        }
    }
}

extension TimingSensitive {
    @Suite("Sample executables")
    struct SampleProcessTests {
        /// Starts `name --port 0` (plus `options`) and reads the address from its
        /// first line.
        static func launch(_ name: String, _ options: [String] = []) throws -> (SampleChild, SocketAddress) {
            let path = try #require(SampleBinaries.path(name))
            let child = try SampleChild(path, arguments: ["--port", "0"] + options)
            let line = try #require(child.readLine(within: .seconds(10)), "\(name) printed nothing")
            let prefix = "listening on "
            try #require(line.hasPrefix(prefix), "unexpected first line: \(line)")
            let address = try SocketAddress(String(line.dropFirst(prefix.count)))
            #expect(address.host == "127.0.0.1")
            #expect(address.port != 0)
            return (child, address)
        }

        /// Sends SIGTERM and expects a clean exit (status 0), without a hang
        /// and, unless `connectionsLeftOpen` (a caller that keeps clients
        /// connected on purpose, with a zero grace period), without the drain
        /// waiting out its grace period.
        static func expectCleanExitOnSIGTERM(_ child: SampleChild, connectionsLeftOpen: Bool = false) {
            let start = ContinuousClock.now
            // 10 s: loose enough for a loaded machine; a hang still fails.
            let exited = child.signalAndWait(SIGTERM, within: .seconds(10))
            #expect(exited, "still running 10 s after SIGTERM")
            guard exited else { return }
            #expect(child.process.terminationReason == .exit)
            #expect(child.exitStatus == 0)
            #expect(ContinuousClock.now - start < .seconds(10))
            // The drain waiting for connections that are gone (its grace period
            // is 5 s for weft-echo and 10 s for weft-hello, which the 10 s above
            // no longer catches) ends in "still open after the grace period":
            // here every connection is done, so it must not.
            guard !connectionsLeftOpen else { return }
            var rest: [String] = []
            while let line = child.readLine(within: .seconds(2)) { rest.append(line) }
            #expect(!rest.contains { $0.contains("after the grace period") }, "the drain ran out its grace period: \(rest)")
        }

        @Test("weft-echo --port 0 prints its address, echoes a client's bytes, and exits with status 0 on SIGTERM without waiting out its grace period",
              .enabled(if: SampleBinaries.path("weft-echo") != nil, "weft-echo is not built next to the test bundle"),
              arguments: [[], ["--poll"], ["--loops", "1"], ["--loops", "2"], ["--loops", "2", "--distribution", "handoff"]])
        func echoSample(options: [String]) throws {
            let (child, address) = try Self.launch("weft-echo", options)
            defer { child.stop() }

            let runtime = try Runtime()
            let message = NetTest.bytes(String(repeating: "echo through a child process. ", count: 2000))
            let echoed = try runtime.block(on: timeoutFuture(.seconds(10), TCPStream.connectFuture(to: address).onSuccess { stream in
                join(stream.writeAll(message).onSuccess { stream.shutdownFuture() }, stream.readToEnd())
                    .map { written, read in written.flatMap { read } }
            })).get().get()
            #expect(echoed == message)
            Self.expectCleanExitOnSIGTERM(child)
        }

        @Test("weft-echo --udp --port 0 prints its address, echoes datagrams back to their sender, and exits with status 0 on SIGTERM without waiting out its grace period; --host localhost works too",
              .enabled(if: SampleBinaries.path("weft-echo") != nil, "weft-echo is not built next to the test bundle"),
              arguments: [["--loops", "1"], ["--loops", "2"], ["--poll"], ["--host", "localhost"], ["--host", "localhost", "--poll"]])
        func udpEchoSample(options: [String]) throws {
            let path = try #require(SampleBinaries.path("weft-echo"))
            let child = try SampleChild(path, arguments: ["--udp", "--port", "0"] + options)
            defer { child.stop() }
            let line = try #require(child.readLine(within: .seconds(10)), "weft-echo printed nothing")
            try #require(line.hasPrefix("listening on ") && line.hasSuffix(" (udp)"), "unexpected first line: \(line)")
            let address = try SocketAddress(String(line.dropFirst("listening on ".count).dropLast(" (udp)".count)))
            #expect(address.host == "127.0.0.1" || address.host == "::1", "not a loopback address: \(address)")
            let runtime = try Runtime()
            let client = try UDPSocket.bind(SocketAddress(address.family == .ipv6 ? "[::1]:0" : "127.0.0.1:0"), runtime: runtime)
            try client.connect(to: address)
            for index in 0..<20 {
                let payload = NetTest.bytes("datagram \(index)")
                let reply = try runtime.block(on: timeoutFuture(.seconds(10), client.sendFuture(payload).then { sent in
                    client.receiveFuture().map { received in sent.flatMap { received } }
                })).get().get()
                #expect(reply.bytes == payload)
                #expect(reply.sender == address)
            }
            client.close()
            Self.expectCleanExitOnSIGTERM(child)
        }

        @Test("weft-echo --udp --port P with P held by another weft-echo --udp fails with EADDRINUSE instead of sharing it (both bound with SO_REUSEPORT, the kernel split the datagrams between them)",
              .enabled(if: SampleBinaries.path("weft-echo") != nil, "weft-echo is not built next to the test bundle"),
              arguments: [[String](), ["--poll"]])
        func udpPortInUse(options: [String]) throws {
            let path = try #require(SampleBinaries.path("weft-echo"))
            let first = try SampleChild(path, arguments: ["--udp", "--port", "0"])
            defer { first.stop() }
            let line = try #require(first.readLine(within: .seconds(10)), "weft-echo printed nothing")
            let address = try SocketAddress(String(line.dropFirst("listening on ".count).dropLast(" (udp)".count)))
            let second = try SampleChild(path, arguments: ["--udp", "--port", "\(address.port)"] + options)
            defer { second.stop() }
            let said = try #require(second.readLine(within: .seconds(10)), "the second weft-echo printed nothing")
            #expect(said.contains("EADDRINUSE"), "\(said)")
            #expect(second.waitForExit(within: .seconds(10)), "still running")
            #expect(second.exitStatus != 0)
            Self.expectCleanExitOnSIGTERM(first)
        }

        @Test("weft-echo --unix PATH (async, and --poll) echoes a client's bytes with half-close, exits with status 0 on SIGTERM without waiting out its grace period, and removes its socket file",
              .enabled(if: SampleBinaries.path("weft-echo") != nil, "weft-echo is not built next to the test bundle"),
              arguments: [[], ["--poll"]])
        func unixEchoSample(options: [String]) throws {
            let path = try #require(SampleBinaries.path("weft-echo"))
            let socketPath = NSTemporaryDirectory() + "weft-echo-sample-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
            let child = try SampleChild(path, arguments: ["--unix", socketPath] + options)
            defer { child.stop() }
            let line = try #require(child.readLine(within: .seconds(10)), "weft-echo printed nothing")
            #expect(line == "listening on \(socketPath) (unix)")
            let runtime = try Runtime()
            let message = NetTest.bytes(String(repeating: "echo through a Unix socket. ", count: 2000))
            let echoed = try runtime.block(on: timeoutFuture(.seconds(10), UnixStream.connectFuture(to: .path(socketPath)).onSuccess { stream in
                join(stream.writeAll(message).onSuccess { stream.shutdownFuture() }, stream.readToEnd())
                    .map { written, read in written.flatMap { read } }
            })).get().get()
            #expect(echoed == message)
            Self.expectCleanExitOnSIGTERM(child)
            #expect(!FileManager.default.fileExists(atPath: socketPath), "the socket file is left behind")
        }

        @Test("weft-hello --port 0 prints its address, answers GET / with 200 and the page, and exits with status 0 on SIGTERM without waiting out its grace period",
              .enabled(if: SampleBinaries.path("weft-hello") != nil, "weft-hello is not built next to the test bundle"),
              arguments: [[], ["--loops", "1"], ["--loops", "2"]])
        func helloSample(options: [String]) throws {
            let (child, address) = try Self.launch("weft-hello", options)
            defer { child.stop() }

            let runtime = try Runtime()
            let request = "GET / HTTP/1.1\r\nHost: \(address)\r\nUser-Agent: weft-tests\r\nAccept: */*\r\n\r\n"
            let response = try runtime.block(on: timeoutFuture(.seconds(10), TCPStream.connectFuture(to: address).onSuccess { stream in
                stream.writeAll(NetTest.bytes(request)).onSuccess { stream.readToEnd() }
            })).get().get()
            let text = NetTest.text(response)
            #expect(text.hasPrefix("HTTP/1.1 200 OK\r\n"))
            #expect(text.contains("Content-Length: \(Pages.hello.utf8.count)\r\n"))
            #expect(text.hasSuffix("\r\n\r\n" + Pages.hello))
            Self.expectCleanExitOnSIGTERM(child)
        }

        @Test("weft-default-executor (experimental): with a LoopGroup installed as Swift's default executor, Task { }, Task.detached { } and a nonisolated async function run on Weft loops, a TCP round trip works there, and Task.sleep ends (or is cancelled) back on a loop (the runtime trapped: the group could not schedule the sleep's wake-up); main stays off them",
              .enabled(if: SampleBinaries.path("weft-default-executor") != nil, "weft-default-executor is not built next to the test bundle"))
        func defaultExecutorSample() throws {
            let child = try SampleChild(try #require(SampleBinaries.path("weft-default-executor")), arguments: [])
            defer { child.stop() }
            var lines: [String] = []
            while let line = child.readLine(within: .seconds(10)) { lines.append(line) }
            #expect(lines == [
                "Task { }: on a Weft loop",
                "Task.detached { }: on a Weft loop",
                "nonisolated async function: on a Weft loop",
                "TCP round trip inside Task { }: echoed",
                "after Task.sleep inside Task { }: on a Weft loop",
                "a 60 s Task.sleep cancelled: cancelled, on a Weft loop",
                "main: off Weft's loops (Swift 6.3.1 on Linux keeps main on Dispatch's main queue)",
            ])
            #expect(child.waitForExit(within: .seconds(5)))
            #expect(child.exitStatus == 0)
        }

        @Test("weft-hello answers requests that arrived while it was stopped (SIGSTOP) even though their read deadline passed before SIGCONT",
              .enabled(if: SampleBinaries.path("weft-hello") != nil, "weft-hello is not built next to the test bundle"))
        func helloAnswersAfterStop() throws {
            let (child, address) = try Self.launch("weft-hello", ["--read-timeout", "1", "--loops", "1"])
            defer { child.stop() }
            var clients: [RawSocket] = []
            defer { for client in clients { client.close() } }
            let connecting = ContinuousClock.now
            for _ in 0..<8 { clients.append(try RawSocket.connected(to: address.port)) }
            usleep(200_000)  // accepted, each waiting for its request with a 1 s deadline
            kill(child.process.processIdentifier, SIGSTOP)
            if ContinuousClock.now - connecting >= .milliseconds(900) {
                // A deadline may have passed before the stop: that connection
                // was rightly closed, with no request yet.
                kill(child.process.processIdentifier, SIGCONT)
                try Test.cancel("skipped: the test's thread reached the stop too late on a loaded machine (a deadline may have passed before it)")
            }
            for client in clients { client.send(NetTest.bytes("GET / HTTP/1.1\r\nHost: test\r\n\r\n")) }
            usleep(1_300_000)  // every deadline passes while the server is stopped
            kill(child.process.processIdentifier, SIGCONT)
            var answered = 0
            for client in clients {
                client.setReceiveTimeout(seconds: 3)
                if client.receive(upTo: 17) == 17 { answered += 1 }  // "HTTP/1.1 200 OK\r\n"
            }
            #expect(answered == 8, "\(answered) of 8 requests that arrived while stopped were answered")
        }

        @Test("weft-echo --idle-timeout closes a connection idle that long and keeps one that talks more often",
              .enabled(if: SampleBinaries.path("weft-echo") != nil, "weft-echo is not built next to the test bundle"),
              arguments: [["--loops", "1"], ["--poll"]])
        func echoIdleTimeout(options: [String]) throws {
            let (child, address) = try Self.launch("weft-echo", ["--idle-timeout", "1"] + options)
            defer { child.stop() }
            let idle = try RawSocket.connected(to: address.port)
            defer { idle.close() }
            let talker = try RawSocket.connected(to: address.port)
            defer { talker.close() }
            talker.setReceiveTimeout(seconds: 2)
            let start = ContinuousClock.now
            var echoed = 0
            // A byte every 100 ms for 1.5 s, longer than the timeout: never
            // idle a second, unless this thread is held that long between two
            // (the server's wait is at most the time between two sends).
            var (lastSend, longestGap) = (ContinuousClock.now, Duration.zero)
            for turn in 0..<15 {
                let now = ContinuousClock.now
                if turn > 0 { longestGap = max(longestGap, now - lastSend) }
                lastSend = now
                talker.send([7])
                if talker.receive(upTo: 1) == 1 { echoed += 1 }
                usleep(100_000)
            }
            if echoed < 15 && longestGap >= .milliseconds(900) {
                try Test.cancel("skipped: this thread was held \(longestGap) between two bytes, near the idle timeout (loaded machine)")
            }
            #expect(echoed == 15, "the talking connection was cut after \(echoed) echoes")
            // The idle connection is closed long before the talker's second is
            // over; 10 s only gives a loaded machine room, and a connection never
            // closed still fails (the receive times out instead of reading the end).
            idle.setReceiveTimeout(seconds: 10)
            #expect(idle.receive(upTo: 1) == 0, "the idle connection should have been closed (end of stream)")
            #expect(ContinuousClock.now - start < .seconds(10))
            Self.expectCleanExitOnSIGTERM(child)
        }

        @Test("weft-echo --idle-timeout closes a connection that stops taking its echo: a write waits at most the timeout too (it waited for ever)",
              .enabled(if: SampleBinaries.path("weft-echo") != nil, "weft-echo is not built next to the test bundle"),
              arguments: [["--loops", "1"], ["--poll"]])
        func echoIdleTimeoutWhileWriting(options: [String]) throws {
            let (child, address) = try Self.launch("weft-echo", ["--idle-timeout", "0.3"] + options)
            defer { child.stop() }
            let client = try RawSocket.connected(to: address.port)
            defer { client.close() }
            // Echoed first: the server serves the connection (a server not
            // yet serving it, on a loaded machine, ended the push below early,
            // and then echoed all of it, closing with nothing unread).
            client.setReceiveTimeout(seconds: 10)
            client.send([7])
            try #require(client.receive(upTo: 1) == 1, "the first byte was not echoed")
            // Send until both ways are full: the server's echo waits on a
            // client that never reads. Longer than the idle timeout without
            // progress: the server's reset comes within it, and the sends
            // after it fail.
            _ = fcntl(client.fd, F_SETFL, fcntl(client.fd, F_GETFL) | O_NONBLOCK)
            let chunk = [UInt8](repeating: 7, count: 64 * 1024)
            var sent = 0
            var stalledSince = ContinuousClock.now
            while ContinuousClock.now - stalledSince < .seconds(1) {
                let count = chunk.withUnsafeBytes { Glibc.send(client.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if count > 0 {
                    sent += count
                    stalledSince = ContinuousClock.now
                } else {
                    usleep(10_000)
                }
            }
            #expect(sent > 0)
            // Closed with unread input, the server resets the connection.
            var reset = false
            let deadline = ContinuousClock.now + .seconds(3)
            while !reset, ContinuousClock.now < deadline {
                var poller = pollfd(fd: client.fd, events: Int16(POLLOUT), revents: 0)
                _ = poll(&poller, 1, 100)
                reset = poller.revents & Int16(POLLERR | POLLHUP) != 0
                if !reset && poller.revents != 0 { usleep(100_000) }
            }
            #expect(reset, "a connection not taking its echo was kept 3 s past a 0.3 s idle timeout (\(sent) bytes sent)")
            Self.expectCleanExitOnSIGTERM(child)
        }

        @Test("weft-echo --udp keeps echoing after a datagram it cannot send back (65,520 bytes over IPv6, past Weft's send bound): the echo task died with it",
              .enabled(if: SampleBinaries.path("weft-echo") != nil, "weft-echo is not built next to the test bundle"),
              arguments: [["--loops", "1"], ["--poll"]])
        func udpEchoOutlivesAFailedSend(options: [String]) throws {
            let path = try #require(SampleBinaries.path("weft-echo"))
            let child = try SampleChild(path, arguments: ["--udp", "--host", "::1", "--port", "0"] + options)
            defer { child.stop() }
            let line = try #require(child.readLine(within: .seconds(10)), "weft-echo printed nothing")
            try #require(line.hasPrefix("listening on "), "unexpected first line (no IPv6 loopback?): \(line)")
            let address = try SocketAddress(String(line.dropFirst("listening on ".count).dropLast(" (udp)".count)))
            let fd = socket(AF_INET6, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            try #require(fd >= 0)
            defer { close(fd) }
            var timeout = timeval(tv_sec: 2, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var sendBuffer: Int32 = 1 << 20
            setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sendBuffer, socklen_t(MemoryLayout<Int32>.size))
            var server = sockaddr_in6()
            server.sin6_family = sa_family_t(AF_INET6)
            server.sin6_port = in_port_t(UInt16(address.port).bigEndian)
            server.sin6_addr = in6addr_loopback
            func send(_ bytes: [UInt8]) -> Int {
                withUnsafePointer(to: &server) { pointer in
                    pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { to in
                        bytes.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, 0, to, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
                    }
                }
            }
            #expect(send([UInt8](repeating: 1, count: 65_520)) == 65_520)
            #expect(send(Array("ping".utf8)) == 4)
            var reply = [UInt8](repeating: 0, count: 65_536)
            let count = reply.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            #expect(count == 4, "no echo of the datagram after the one it could not send back")
            Self.expectCleanExitOnSIGTERM(child)
        }

        @Test("a sample given a bad option exits with status 2 and says why on stderr, with the usage",
              arguments: [["weft-echo", "--loops", "0"], ["weft-echo", "--poll", "--loops", "2"],
                          ["weft-echo", "--distribution", "random"], ["weft-hello", "--loops", "many"],
                          ["weft-echo", "--idle-timeout", "0"], ["weft-hello", "--read-timeout", "-1"],
                          ["weft-echo", "--port", "70000"], ["weft-echo", "--bogus", "1"],
                          ["weft-echo", "--udp", "--idle-timeout", "5"],
                          ["weft-echo", "--unix", "/tmp/weft-never-bound.sock", "--idle-timeout", "5"],
                          ["weft-echo", "--idle-timeout", "0.0004"], ["weft-echo", "--unix", "--poll"],
                          ["weft-echo", "--unix", "/tmp/weft-never-bound.sock", "--distribution", "handoff"],
                          ["weft-echo", "--unix", "/tmp/weft-never-bound.sock", "--host", "localhost"],
                          ["weft-echo", "--unix", "/tmp/weft-never-bound.sock", "--port", "7"],
                          ["weft-echo", "--udp", "--distribution", "handoff"], ["weft-echo", "--poll", "--distribution", "handoff"],
                          ["weft-echo", "--udp", "--grace-period", "3"], ["weft-echo", "--udp", "--buffer-budget", "8"]])
        func badOptions(command: [String]) throws {
            let path = try #require(SampleBinaries.path(command[0]), "\(command[0]) is built next to the tests")
            // A Unix socket's echo takes no port: each other command gets port 0.
            let port = command.contains("--unix") ? [] : ["--port", "0"]
            let child = try SampleChild(path, arguments: port + command.dropFirst())
            defer { child.stop() }
            let first = try #require(child.readLine(within: .seconds(10)), "\(command[0]) printed nothing")
            let text = first + (first.contains("usage:") ? "" : " " + (child.readLine(within: .seconds(2)) ?? ""))
            #expect(text.contains(command[command.count - 2]) && text.contains("usage:"), "unexpected output: \(text)")
            let exited = child.waitForExit(within: .seconds(5))
            #expect(exited, "still running")
            #expect(child.exitStatus == 2)
        }

        /// Runs `sample arguments` through the shell with `redirect` applied and
        /// returns its exit status and the one stream left on the pipe.
        static func run(_ sample: String, _ arguments: String, redirect: String) throws -> (status: Int32, output: String) {
            let path = try #require(SampleBinaries.path(sample))
            let child = try SampleChild("/bin/sh", arguments: ["-c", "'\(path)' \(arguments) \(redirect)"])
            defer { child.stop() }
            var lines: [String] = []
            while let line = child.readLine(within: .seconds(5)) { lines.append(line) }
            #expect(child.waitForExit(within: .seconds(5)))
            return (child.exitStatus ?? -1, lines.joined(separator: "\n"))
        }

        @Test("--help and -h print the usage and every option on stdout and exit 0; a usage error goes to stderr only and exits 2",
              arguments: [("weft-echo", ["--host", "--port", "--grace-period", "--idle-timeout", "--loops", "--distribution", "--buffer-budget", "--poll",
                                         "--udp", "--unix"]),
                          ("weft-hello", ["--host", "--port", "--grace-period", "--read-timeout", "--loops"])])
        func helpAndUsageErrors(sample: String, options: [String]) throws {
            for flag in ["--help", "-h"] {
                let help = try Self.run(sample, flag, redirect: "2>/dev/null")
                #expect(help.status == 0)
                #expect(help.output.hasPrefix("usage: \(sample)"), "\(help.output)")
                for option in options {
                    #expect(help.output.contains(option), "--help does not explain \(option)")
                }
            }
            let onStdout = try Self.run(sample, "--port nope", redirect: "2>/dev/null")
            #expect(onStdout.status == 2)
            #expect(onStdout.output.isEmpty, "a usage error wrote to stdout: \(onStdout.output)")
            let onStderr = try Self.run(sample, "--port nope", redirect: "2>&1 >/dev/null")
            #expect(onStderr.status == 2)
            #expect(onStderr.output.contains("--port takes a number") && onStderr.output.contains("usage: \(sample)"), "\(onStderr.output)")
        }

        @Test("weft-echo, weft-hello, weft-timers, weft-bench and weft-default-executor: an unknown option given last or first is called unknown (not 'needs a value'); a --unix value that cannot be an address is a usage error; weft-bench refuses a count that is not a positive whole number or is missing, and an option its benchmark does not take; weft-timers --help prints its usage",
              .enabled(if: ["weft-echo", "weft-hello", "weft-timers", "weft-bench", "weft-default-executor"].allSatisfy { SampleBinaries.path($0) != nil },
                       "the samples are not built next to the test bundle"))
        func echoUsageErrors() throws {
            let help = try Self.run("weft-timers", "--help", redirect: "2>/dev/null")
            #expect(help.status == 0)
            #expect(help.output.hasPrefix("usage: weft-timers"), "\(help.output)")
            for (sample, arguments, said) in [("weft-echo", "--bogus", "unknown option --bogus"),
                                              ("weft-echo", "--unix ''", "the path is empty"),
                                              ("weft-echo", "--unix @", "the abstract name is empty"),
                                              ("weft-echo", "--unix /tmp/\(String(repeating: "x", count: 120))", "bytes long"),
                                              // It said "--bogus needs a value".
                                              ("weft-hello", "--bogus", "unknown option --bogus"),
                                              ("weft-hello", "--bogus --port 80", "unknown option --bogus"),
                                              // It ran its demo and exited 0.
                                              ("weft-timers", "--bogus", "unknown option --bogus"),
                                              ("weft-default-executor", "--bogus", "unknown option --bogus"),
                                              // Each ran the benchmark with its defaults and exited 0.
                                              ("weft-bench", "spawn -n 0", "-n takes a positive whole number, not 0"),
                                              ("weft-bench", "spawn -n 300k", "-n takes a positive whole number, not 300k"),
                                              ("weft-bench", "spawn -n", "-n needs a value"),
                                              ("weft-bench", "spawn --n 5", "unknown option --n"),
                                              ("weft-bench", "timer-churn -n 5", "unknown option -n"),
                                              ("weft-bench", "bogus", "unknown benchmark bogus")] {
                let run = try Self.run(sample, arguments, redirect: "2>&1 >/dev/null")
                #expect(run.status == 2, "\(sample) \(arguments): \(run.output)")
                #expect(run.output.contains(said) && run.output.contains("usage:"), "\(sample) \(arguments): \(run.output)")
            }
        }

        @Test("weft-echo --unix: a second SIGINT while a connection is being waited for exits at once with status 130, the socket file already gone",
              .enabled(if: SampleBinaries.path("weft-echo") != nil, "weft-echo is not built next to the test bundle"))
        func unixSecondSignalExitsAtOnce() throws {
            let path = try #require(SampleBinaries.path("weft-echo"))
            let socketPath = NSTemporaryDirectory() + "weft-echo-drain-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
            let child = try SampleChild(path, arguments: ["--unix", socketPath, "--grace-period", "60"])
            defer { child.stop() }
            let line = try #require(child.readLine(within: .seconds(10)), "weft-echo printed nothing")
            #expect(line == "listening on \(socketPath) (unix)")
            let runtime = try Runtime()
            let held = try runtime.block(on: timeoutFuture(.seconds(5), UnixStream.connectFuture(to: .path(socketPath)))).get().get()
            defer { held.close() }
            // Echoed: accepted and served.
            #expect(try runtime.block(on: timeoutFuture(.seconds(10), held.writeAll([7]).then { _ in held.readExact(1) })).get().get() == [7])
            try Self.expectSecondSIGINTExitsAtOnce(child)
            #expect(!FileManager.default.fileExists(atPath: socketPath), "the socket file is left behind")
        }

        @Test("--host localhost listens on a loopback address and serves",
              arguments: [["weft-echo"], ["weft-echo", "--poll"], ["weft-hello"]])
        func listensOnLocalhost(command: [String]) throws {
            let (child, address) = try Self.launch(command[0], ["--host", "localhost"] + command.dropFirst())
            defer { child.stop() }
            let runtime = try Runtime()
            if command[0] == "weft-echo" {
                #expect(try Faults.echoed(by: address, runtime: runtime) == Faults.message)
            } else {
                #expect(try Faults.helloStatusLine(address, runtime: runtime) == "HTTP/1.1 200 OK")
            }
            Self.expectCleanExitOnSIGTERM(child)
        }

        @Test("a second SIGINT while a sample waits for a connection to finish exits at once with status 130",
              arguments: [["weft-echo"], ["weft-echo", "--poll"], ["weft-hello"], ["weft-hello", "--loops", "1"]])
        func secondSignalExitsAtOnce(command: [String]) throws {
            let (child, address) = try Self.launch(command[0], ["--grace-period", "60"] + command.dropFirst())
            defer { child.stop() }
            let runtime = try Runtime()
            let held = try runtime.block(on: timeoutFuture(.seconds(5), TCPStream.connectFuture(to: address))).get().get()
            defer { held.close() }
            if command[0] == "weft-hello" {  // a /sleep in flight keeps the connection
                _ = try runtime.block(on: held.writeAll(NetTest.bytes("GET /sleep HTTP/1.1\r\n\r\n")))
            } else {  // echoed: accepted and served
                #expect(try runtime.block(on: timeoutFuture(.seconds(10), held.writeAll([7]).then { _ in held.readExact(1) })).get().get() == [7])
            }
            try Self.expectSecondSIGINTExitsAtOnce(child)
        }

        /// With a connection being served: SIGINT, the drain's first line,
        /// then a second SIGINT, after which the child must exit with status 130
        /// well before its grace period (the callers give 60 s) ends: within
        /// 10 s, loose enough for a loaded machine.
        static func expectSecondSIGINTExitsAtOnce(_ child: SampleChild, sourceLocation: SourceLocation = #_sourceLocation) throws {
            usleep(100_000)  // the connection is being served
            kill(child.process.processIdentifier, SIGINT)
            var draining: String?
            while let line = child.readLine(within: .seconds(5)) {
                if line.contains("stopped accepting") { draining = line; break }
            }
            #expect(draining != nil, "the sample did not begin its drain", sourceLocation: sourceLocation)
            if draining?.hasSuffix(" for 0 connection(s)") == true {
                // The child had not accepted the connection yet (a loaded
                // machine): closing its listener reset it, and it had nothing
                // to wait for.
                try Test.cancel("skipped: the sample had not accepted the connection when SIGINT came", sourceLocation: sourceLocation)
            }
            let start = ContinuousClock.now
            #expect(child.signalAndWait(SIGINT, within: .seconds(10)), "still running 10 s after the second SIGINT",
                    sourceLocation: sourceLocation)
            #expect(ContinuousClock.now - start < .seconds(10), sourceLocation: sourceLocation)
            #expect(child.exitStatus == 130, sourceLocation: sourceLocation)
        }

        @Test(
            "a sample told to stop with SIGTERM as soon as it printed its address still exits with status 0",
            arguments: [["weft-echo"], ["weft-echo", "--poll"], ["weft-hello"]]
        )
        func stopRightAfterStart(command: [String]) throws {
            for _ in 0..<5 {
                let (child, _) = try Self.launch(command[0], Array(command.dropFirst()))
                defer { child.stop() }
                Self.expectCleanExitOnSIGTERM(child)
            }
        }
    }
}
