import Foundation
import Glibc
import Testing
import Weft

// Helpers for the fault-injection tests in Tests/WeftTests/Faults. They build
// on NetTest (NetTestSupport.swift), RawSocket, SampleChild and SampleBinaries
// (SampleProcessTests.swift); everything uses Weft's public API only.

enum Faults {
    // MARK: - Process resources

    /// How far this process's descriptor count may rise above its baseline in
    /// an in-process leak check. The suites here are serialized with the other
    /// timing-sensitive ones, but the rest of the test target runs in parallel
    /// in the same process and opens sockets and pipes of its own meanwhile.
    /// Every check using it puts hundreds of descriptors or more at stake
    /// (10,000 connections, 1,000 runtimes of 4 descriptors each, 256 sockets),
    /// so a leak that recurs exceeds it; a one-off leak of a few does not.
    static let inProcessDescriptorSlack = 64

    /// Descriptors open in process `pid` (this process when `nil`): the entries
    /// of `/proc/<pid>/fd`. For this process the count includes the directory
    /// descriptor used to list it, the same on every call.
    static func openDescriptors(of pid: pid_t? = nil) -> Int {
        let path = pid.map { "/proc/\($0)/fd" } ?? "/proc/self/fd"
        return (try? FileManager.default.contentsOfDirectory(atPath: path).count) ?? -1
    }

    /// Samples `value` every 10 ms (sleeping the calling thread, which is not
    /// running a runtime) until `isSettled` accepts a sample or `limit` passes;
    /// returns the last sample.
    static func settle(within limit: Duration, _ value: () -> Int, until isSettled: (Int) -> Bool) -> Int {
        let deadline = ContinuousClock.now + limit
        var sample = value()
        while !isSettled(sample) && ContinuousClock.now < deadline {
            usleep(10_000)
            sample = value()
        }
        return sample
    }

    // MARK: - Sample servers in child processes

    /// A sample server running in a child process.
    struct Server {
        let child: SampleChild
        let address: SocketAddress

        var pid: pid_t { child.process.processIdentifier }
        var isRunning: Bool { child.process.isRunning }
        /// The child's open descriptors.
        var descriptors: Int { Faults.openDescriptors(of: pid) }
        /// The child's resident set size in bytes.
        var residentBytes: Int { NetTest.residentBytes(of: pid) }

        /// The child's descriptor count once it has stopped changing (the same
        /// over 100 ms, sampled every 20 ms; at most 3 s): its count at rest,
        /// after it has closed the connections of clients that went away.
        func restingDescriptors() -> Int {
            let deadline = ContinuousClock.now + .seconds(3)
            var samples = [descriptors]
            while ContinuousClock.now < deadline {
                usleep(20_000)
                samples.append(descriptors)
                if samples.count >= 5 && Set(samples.suffix(5)).count == 1 { break }
            }
            return samples.last!
        }

        /// How far the child's RSS is above `baseline` once it has handed its
        /// freed memory back: waits up to 1 s for the growth to drop to
        /// `tolerance` (a loop releases free heap pages at most ten times a
        /// second, after the burst that freed them); returns the last growth.
        func residentGrowthSettled(above baseline: Int, tolerance: Int) -> Int {
            Faults.settle(within: .seconds(1), { residentBytes - baseline }, until: { $0 <= tolerance })
        }

        /// Waits up to 3 s for the child's descriptor count to come back to
        /// `baseline`; returns the last count.
        func descriptorsSettled(at baseline: Int) -> Int {
            Faults.settle(within: .seconds(3), { descriptors }, until: { $0 <= baseline })
        }
    }

    /// Starts sample `name` on 127.0.0.1, port 0, with `options` and a grace
    /// period of zero: on SIGTERM it closes the misbehaving clients still
    /// connected at once (graceful draining is tested in GracefulShutdownTests).
    static func launch(_ name: String, _ options: [String] = []) throws -> Server {
        let (child, address) = try TimingSensitive.SampleProcessTests.launch(name, options + ["--grace-period", "0"])
        return Server(child: child, address: address)
    }

    // MARK: - Well-behaved clients

    /// 100,000 bytes of a repeating pattern.
    static let message: [UInt8] = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }

    /// What a well-behaved client of an echo server gets back for ``message``:
    /// it connects, sends it, half-closes, and reads until the server closes.
    /// Bounded by 5 s (a failure or timeout yields `nil`).
    static func echoed(by address: SocketAddress, runtime: Runtime) throws -> [UInt8]? {
        let outcome = try runtime.block(on: timeoutFuture(.seconds(5), TCPStream.connectFuture(to: address).onSuccess { stream in
            join(stream.writeAll(message).onSuccess { stream.shutdownFuture() }, stream.readToEnd())
                .map { written, read in written.flatMap { read } }
        }))
        return try? outcome.get().get()
    }

    /// The status line weft-hello answers `GET /` with, for a well-behaved
    /// client; `nil` on failure or after 5 s.
    static func helloStatusLine(_ address: SocketAddress, runtime: Runtime) throws -> String? {
        let request = "GET / HTTP/1.1\r\nHost: \(address)\r\n\r\n"
        let outcome = try runtime.block(on: timeoutFuture(.seconds(5), TCPStream.connectFuture(to: address).onSuccess { stream in
            stream.writeAll(NetTest.bytes(request)).onSuccess { stream.readToEnd() }
        }))
        guard let response = try? outcome.get().get() else { return nil }
        return NetTest.text(response).components(separatedBy: "\r\n").first
    }

    // MARK: - Connect/close cycles

    /// Runs `count` connect/close cycles against `address`, `slots` at a time.
    /// In each cycle a client connects, half-closes, waits for the server to
    /// close its end (reading to the end of the stream, so the server has
    /// accepted and finished the connection) and closes. Ready with the first
    /// failure, or success once every cycle completed.
    ///
    /// The wait keeps the load closed-loop: at most `slots` connections are
    /// in flight. (Clients that close without waiting can connect faster than
    /// a Weft listener accepts, one connection per loop iteration, and then
    /// the kernel drops SYNs once the backlog is full, each costing a 1 s
    /// retransmission.)
    static func connectCloseCycles(
        to address: SocketAddress, count: Int, slots: Int
    ) -> some Future<Result<Void, WeftError>> {
        let cycles = (0..<slots).map { slot in
            NetTest.steps(count / slots + (slot < count % slots ? 1 : 0)) { _ in
                TCPStream.connectFuture(to: address).onSuccess { stream in
                    stream.shutdownFuture().onSuccess { stream.readToEnd() }.map { read in
                        stream.close()
                        return read.map { _ in () }
                    }
                }
            }
        }
        return joinAll(cycles).map { outcomes in
            outcomes.first { !$0.isSuccess } ?? .success(())
        }
    }

    // MARK: - Threads

    /// Runs `body(index)` on `count` plain threads at once and waits for all of
    /// them, at most `limit`; false if one is still running then.
    static func onThreads(_ count: Int, within limit: Double = 20, _ body: @escaping @Sendable (Int) -> Void) -> Bool {
        let threads = (0..<count).map { index in NetTest.PeerThread { body(index) } }
        return threads.allSatisfy { $0.join(within: limit) }
    }
}

extension RawSocket {
    /// How a never-reading sender ended.
    struct Stalled {
        /// Bytes the peer's side accepted.
        var sent = 0
        /// True when the peer stopped accepting (it stopped reading), false
        /// when the time limit ended the sending.
        var stalled = false
    }

    /// Sends `chunk` over and over without blocking, never reading, until the
    /// peer has accepted nothing for `stall` (its receive side is full: it
    /// stopped reading) or `limit` has passed.
    func sendUntilStalled(chunk: [UInt8], stall: Duration, limit: Duration) -> Stalled {
        var outcome = Stalled()
        let deadline = ContinuousClock.now + limit
        var lastProgress = ContinuousClock.now
        while ContinuousClock.now < deadline {
            let count = chunk.withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT) | Int32(MSG_NOSIGNAL))
            }
            if count > 0 {
                outcome.sent += count
                lastProgress = ContinuousClock.now
            } else if count < 0 && errno != EAGAIN && errno != EWOULDBLOCK {
                return outcome
            } else if ContinuousClock.now - lastProgress >= stall {
                outcome.stalled = true
                return outcome
            } else {
                usleep(1_000)
            }
        }
        return outcome
    }

    /// Sends `bytes` without blocking for longer than `limit` in all; returns
    /// how many were sent.
    @discardableResult
    func send(_ bytes: [UInt8], within limit: Duration) -> Int {
        var sent = 0
        let deadline = ContinuousClock.now + limit
        while sent < bytes.count && ContinuousClock.now < deadline {
            let count = bytes.withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_DONTWAIT) | Int32(MSG_NOSIGNAL))
            }
            if count > 0 {
                sent += count
            } else if count < 0 && errno != EAGAIN && errno != EWOULDBLOCK {
                return sent
            } else {
                usleep(1_000)
            }
        }
        return sent
    }
}
