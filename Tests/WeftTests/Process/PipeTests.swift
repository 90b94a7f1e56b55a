import Foundation
import Glibc
import CLibUV
import CWeftSupport
import Testing
@testable import Weft

/// Pipes on the one stream machinery: the anonymous pipe pair, and an already
/// open descriptor wrapped as a pipe (`uv_pipe_open`) or a terminal (`uv_tty_init`).
@Suite("Pipes")
struct PipeTests {
    @Test("1 MiB written to an anonymous pipe's writer, then shut down, is read back exactly from its reader, then end of stream")
    func anonymousPipeCarriesOneMebibyte() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let (reader, writer) = try runtime.block(on: PipeStream.pipeFuture()).get()
        let sent = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ ($0 >> 11)) }
        let (written, received) = try runtime.block(on: timeoutFuture(.seconds(20), join(
            writer.writeAll(sent).then { _ in writer.shutdownFuture() },
            reader.readToEnd(limit: 4 << 20)))).get()
        try written.get()
        #expect(try received.get() == sent)
        reader.close()
        // The reader is gone: writing fails with EPIPE (no SIGPIPE).
        try runtime.block(on: sleepFuture(for: .milliseconds(1)))
        let (reader2, writer2) = try runtime.block(on: PipeStream.pipeFuture()).get()
        reader2.close()
        try runtime.block(on: sleepFuture(for: .milliseconds(1)))
        let broken = try runtime.block(on: writer2.writeAll([1, 2, 3]))
        #expect(throws: WeftError.self) { try broken.get() }
        if case .failure(let error) = broken { #expect(error.code == .brokenPipe, "\(error)") }
        writer.close()
        writer2.close()
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("writing a pipe's read end (or shutting it down), or reading its write end, fails with invalidArgument saying so (brokenPipe and notConnected said the peer was gone); the pipe still works the right way round")
    func wrongDirection() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let (reader, writer) = try runtime.block(on: PipeStream.pipeFuture()).get()
        let wrote = try #require(try runtime.block(on: reader.writeAll([1, 2, 3])).failure)
        #expect(wrote.kind == .invalidArgument && wrote.description.contains("not open for writing"), "\(wrote)")
        let read = try #require(try runtime.block(on: timeoutFuture(.seconds(5), writer.readFuture())).get().failure)
        #expect(read.kind == .invalidArgument && read.description.contains("not open for reading"), "\(read)")
        let shut = try #require(try runtime.block(on: timeoutFuture(.seconds(5), reader.shutdownFuture())).get().failure)
        #expect(shut.kind == .invalidArgument && shut.description.contains("not open for writing"), "\(shut)")
        try runtime.block(on: writer.writeAll([9])).get()
        #expect(try runtime.block(on: timeoutFuture(.seconds(5), reader.readFuture())).get().get() == [9])
        reader.close()
        writer.close()
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("a pipe's shutdown awaited by two tasks succeeds for both, and a later call succeeds too, as a socket's does (a pipe is closed instead, having no half-close)")
    func pipeShutdownTwice() async throws {
        let loop = try LoopThread()
        defer { loop.shutdown() }
        let baseline = try await NetTest.handleBaseline(on: loop)
        let (reader, writer) = try await awaitWithin(.seconds(20), loop.spawn { try await PipeStream.pipe() })
        try await awaitWithin(.seconds(20), loop.spawn { try await writer.write(Array("once".utf8)) })
        let first = loop.spawn { try await writer.shutdown() }
        let second = loop.spawn { try await writer.shutdown() }
        try await awaitWithin(.seconds(20), first)
        try await awaitWithin(.seconds(20), second)
        try await awaitWithin(.seconds(20), loop.spawn { try await writer.shutdown() })
        let bytes = try await awaitWithin(.seconds(20), loop.spawn { () async throws -> [UInt8] in
            var all: [UInt8] = []
            while case let bytes = try await reader.read(), !bytes.isEmpty { all += bytes }
            return all
        })
        #expect(bytes == Array("once".utf8))
        try await awaitWithin(.seconds(20), loop.spawn { reader.close() })
        try await NetTest.expectNothingLeftOpen(on: loop, handlesBefore: baseline)
    }

    @Test("a pipe's shutdown dropped after it was submitted (a timeout) still closes the write end, so the reader reads end of stream")
    func droppedShutdownStillEndsTheReader() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let (reader, writer) = try runtime.block(on: PipeStream.pipeFuture()).get()
        var shutdown: Optional = writer.shutdownFuture()
        // Nothing queued: the flush passes, and uv_shutdown is submitted at this poll.
        let first = try runtime.block(on: pollFn { context in .ready(shutdown!.poll(&context)) })
        #expect(!first.isReady)
        shutdown = nil  // dropped before its callback
        let end = try runtime.block(on: timeoutFuture(.seconds(5), reader.readFuture())).get()
        #expect(end.isSuccess && (try? end.get())?.isEmpty == true, "the reader did not read end of stream: \(end)")
        #expect(writer.isClosed)
        reader.close()
        writer.close()
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }

    @Test("from async code: PipeStream.pipe(), write, shut down, read to the end")
    func asyncPipe() async throws {
        let loop = try LoopThread()
        defer { loop.shutdown() }
        let baseline = try await NetTest.handleBaseline(on: loop)
        let bytes = try await awaitWithin(.seconds(20), loop.spawn { () async throws -> [UInt8] in
            let (reader, writer) = try await PipeStream.pipe()
            try await writer.write(Array("through a pipe".utf8))
            try await writer.shutdown()
            var all: [UInt8] = []
            while case let bytes = try await reader.read(), !bytes.isEmpty { all += bytes }
            return all
        })
        #expect(bytes == Array("through a pipe".utf8))
        try await NetTest.expectNothingLeftOpen(on: loop, handlesBefore: baseline)
    }

    @Test("an open pipe descriptor wrapped as a stream (uv_pipe_open) reads what is written to the other end; closing it closes the descriptor")
    func wrappedPipeDescriptor() throws {
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        var descriptors: [Int32] = [-1, -1]
        // Close-on-exec: a child another test spawns meanwhile must not
        // inherit the read end (it kept it open, and the write below succeeded).
        #expect(uv_pipe(&descriptors, 0, 0) == 0)  // both ends close-on-exec
        let stream = try PipeStream.adopting(descriptors[0], kind: StreamConnection.Kind.pipe, loop: runtime.loop)
        #expect(write(descriptors[1], "abc", 3) == 3)
        #expect(try runtime.block(on: stream.readFuture()).get() == Array("abc".utf8))
        #expect(write(descriptors[1], "d", 1) == 1)
        #expect(try runtime.block(on: stream.readFuture()).get() == Array("d".utf8))
        stream.close()
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
        // Closing the stream closed the read end: the writer now gets EPIPE.
        #expect(write(descriptors[1], "e", 1) == -1 && errno == EPIPE)
        close(descriptors[1])
    }

    @Test("a pseudo-terminal's slave wrapped as a terminal stream (uv_tty_init) writes to the master and reads a line typed there; closing it closes the descriptor")
    func wrappedTerminalDescriptor() throws {
        var master: Int32 = -1
        var slave: Int32 = -1
        let opened = weft_open_pseudo_terminal(&master, &slave)
        try #require(opened == 0, "no pseudo-terminal available: \(String(cString: uv_strerror(opened)))")
        defer { close(master) }
        #expect(isatty(slave) == 1)
        var terminalStatus = stat()
        try #require(fstat(slave, &terminalStatus) == 0)
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let terminal = try PipeStream.adopting(slave, kind: StreamConnection.Kind.tty, loop: runtime.loop)
        #expect(terminal.connection.kind == .tty)
        try runtime.block(on: timeoutFuture(.seconds(5), terminal.writeAll(Array("to the master\n".utf8)))).get().get()
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = read(master, &buffer, buffer.count)
        // The line discipline turns "\n" into "\r\n" on the way out.
        #expect(String(decoding: buffer[..<max(0, count)], as: UTF8.self) == "to the master\r\n")
        #expect(write(master, "typed\n", 6) == 6)
        #expect(try runtime.block(on: timeoutFuture(.seconds(5), terminal.readFuture())).get().get() == Array("typed\n".utf8))
        terminal.close()
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
        // libuv reopened the terminal on a descriptor of its own and made
        // `slave` a duplicate of it: both are closed now (`slave` may have
        // been reused since by another test's file, never this terminal).
        var status = stat()
        let stillTheTerminal = fstat(slave, &status) == 0 && status.st_rdev == terminalStatus.st_rdev
            && status.st_mode & S_IFMT == S_IFCHR
        #expect(!stillTheTerminal, "descriptor \(slave) still open on the terminal")
    }

    // Before the fix that came with this test, a terminal was read on in the
    // background as a socket is, up to 64 KiB: a line typed after a read had
    // returned was taken into the stream, from a child sharing the terminal.
    @Test("a terminal is read on demand: once a read has returned, a line typed later stays in the terminal, for its other readers, until the stream is read again")
    func terminalReadOnDemand() throws {
        var master: Int32 = -1
        var slave: Int32 = -1
        let opened = weft_open_pseudo_terminal(&master, &slave)
        try #require(opened == 0, "no pseudo-terminal available: \(String(cString: uv_strerror(opened)))")
        defer { close(master) }
        let other = dup(slave)  // another reader of the terminal, as a child's standard input
        defer { close(other) }
        let (runtime, baseline) = try NetTest.runtimeWithHandleBaseline()
        let terminal = try PipeStream.adopting(slave, kind: StreamConnection.Kind.tty, loop: runtime.loop)
        #expect(write(master, "first\n", 6) == 6)
        #expect(try runtime.block(on: timeoutFuture(.seconds(5), terminal.readFuture())).get().get() == Array("first\n".utf8))
        #expect(write(master, "second\n", 7) == 7)
        try runtime.block(on: sleepFuture(for: .milliseconds(100)))  // the loop runs, and hears of the line
        var ready = pollfd(fd: other, events: Int16(POLLIN), revents: 0)
        let readable = poll(&ready, 1, 1000) == 1
        #expect(readable, "the stream took the line in the background")
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = readable ? read(other, &buffer, buffer.count) : 0  // not a read that would wait for ever
        #expect(String(decoding: buffer[..<max(0, count)], as: UTF8.self) == "second\n")
        #expect(write(master, "third\n", 6) == 6)
        #expect(try runtime.block(on: timeoutFuture(.seconds(5), terminal.readFuture())).get().get() == Array("third\n".utf8))
        terminal.close()
        try NetTest.expectNothingLeftOpen(runtime, handlesBefore: baseline)
    }
}
