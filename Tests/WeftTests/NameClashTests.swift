import Foundation
import Synchronization
import Testing
import Weft

// docs/ARCHITECTURE.md, "Names": a public name must not clash with what users
// import beside Weft. This file
// imports Foundation, Synchronization (and, through Foundation, Glibc) next to Weft
// and uses Weft's public types and functions without a single `Weft.` prefix. It
// must keep compiling as the API grows.

/// A user-written stream type, to show `PollStream` is unambiguous beside
/// `Foundation.Stream`.
private struct Countdown: PollStream {
    var remaining: Int
    mutating func pollNext(_ context: inout Context) -> Poll<Int?> {
        guard remaining > 0 else { return .ready(nil) }
        remaining -= 1
        return .ready(remaining)
    }
}

@Suite("Names next to Foundation and Synchronization")
struct NameClashTests {
    @Test("Weft's public names work unqualified beside Foundation and Synchronization")
    func unqualifiedNames() throws {
        let runtime: Runtime = try Runtime()
        let nap: Sleep = sleepFuture(for: .milliseconds(2))
        let ticks: Interval = interval(every: .milliseconds(1))
        let handle: JoinHandle<Int> = runtime.spawn(ready(40))
        var set = FutureSet<Ready<Int>>()
        set.insert(ready(2))

        // Foundation's Thread and Synchronization's Mutex, side by side with Weft's Waker.
        let wokenOnThread = Mutex(false)
        let waker = Waker { wokenOnThread.locked { $0 = true } }
        let threadDone = DispatchSemaphore(value: 0)
        let thread = Thread {
            waker.wake()
            threadDone.signal()
        }
        thread.start()
        threadDone.wait()
        #expect(wokenOnThread.locked { $0 })

        var context = Context(waker: .noop)
        let polled: Poll<Int?> = set.pollNext(&context)
        #expect(polled == .ready(2))

        let (joined, first, bounded) = try runtime.guardedBlock(on: join(
            handle,
            ticks.next().map { $0.element },
            timeoutFuture(.seconds(10), nap.map { "slept" })
        ))
        #expect(try joined.get() == 40)
        #expect(first == 0)
        #expect(try bounded.get() == "slept")

        let winner: Either<Void, Int> = try runtime.guardedBlock(on: select(
            either: sleepFuture(for: .seconds(60)),
            or: Countdown(remaining: 3).fold(0) { $0 + $1 }
        ))
        #expect(winner.right == 3)  // 2 + 1 + 0

        func takesStream<S: PollStream>(_ stream: S) -> S { stream }
        _ = takesStream(Countdown(remaining: 1))
    }

    @Test("the UDP and Unix-socket names (UDPSocket, UDPDatagram, UnixStream, UnixListener, UnixAddress, SocketOptions, resolveFuture) work unqualified beside Foundation and Glibc")
    func networkNames() throws {
        let runtime: Runtime = try Runtime()
        let socket: UDPSocket = try UDPSocket.bind(SocketAddress("127.0.0.1:0"), runtime: runtime)
        defer { socket.close() }
        let address: SocketAddress = try socket.localAddress
        let echoed: Result<UDPDatagram, WeftError> = try runtime.guardedBlock(on: timeoutFuture(.seconds(10),
            socket.sendFuture([1], to: address).then { _ in socket.receiveFuture() })).get()
        #expect(try echoed.get().bytes == [1])
        let name: UnixAddress = .abstract("weft-names-\(getpid())")
        let listener: UnixListener = try UnixListener.bind(name, options: SocketOptions(backlog: 8), runtime: runtime)
        defer { listener.close() }
        let connected: Result<UnixStream, WeftError> = try runtime.guardedBlock(on: UnixStream.connectFuture(to: name))
        try connected.get().close()
        let resolved: Result<[SocketAddress], WeftError> = try runtime.guardedBlock(on: timeoutFuture(.seconds(10), resolveFuture(host: "127.0.0.1", port: 1))).get()
        #expect(try resolved.get().first?.port == 1)
    }

    @Test("the file names (File, FileSystem, FileStatus, FileKind, FileOpenOptions, FilePermissions, DirectoryEntry, FileChanges, copy) work unqualified beside Foundation and Glibc")
    func fileNames() throws {
        let runtime: Runtime = try Runtime()
        let directory: String = try runtime.guardedBlock(on: FileSystem.makeTemporaryDirectoryFuture(prefix: "/tmp/weft-names-")).get()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let options: FileOpenOptions = [.read, .write, .create]
        let permissions: FilePermissions = [.ownerRead, .ownerWrite]
        let file: File = try runtime.guardedBlock(on: File.openFuture(directory + "/f", options: options, permissions: permissions)).get()
        try runtime.guardedBlock(on: file.writeFuture([1, 2, 3], at: 0)).get()
        let status: FileStatus = try runtime.guardedBlock(on: file.statusFuture()).get()
        let kind: FileKind = status.kind
        #expect(kind == .regular && status.size == 3)
        let copyTarget: File = try runtime.guardedBlock(on: File.openFuture(directory + "/g", options: [.write, .create])).get()
        #expect(try runtime.guardedBlock(on: copy(from: file, to: copyTarget)).get() == 3)
        file.close()
        copyTarget.close()
        let entries: [DirectoryEntry] = try runtime.guardedBlock(on: FileSystem.contentsOfDirectoryFuture(directory)).get()
        #expect(entries.map(\.name) == ["f", "g"])
        let changes: FileChanges = FileSystem.watch(directory)
        _ = changes
    }

    @Test("the process names (Command, ProcessExitStatus (Swift Testing has an ExitStatus), ProcessOutput, PipeStream, SpawnChild, WaitForExit) work unqualified beside Foundation, whose own is Process")
    func processNames() throws {
        let runtime: Runtime = try Runtime()
        var command: Command = Command("/bin/echo", arguments: ["names"])
        command.standardInput = .null
        let output: Result<ProcessOutput, WeftError> = try runtime.guardedBlock(on: timeoutFuture(.seconds(10), command.outputFuture())).get()
        let status: ProcessExitStatus = try output.get().status
        #expect(status.isSuccess)
        let spawn: SpawnChild = Command("/bin/true").spawnFuture()
        let child = try runtime.guardedBlock(on: spawn).get()
        let wait: WaitForExit = child.waitFuture()
        #expect(try runtime.guardedBlock(on: timeoutFuture(.seconds(10), wait)).get().get().isSuccess)
        let pipe: Result<(reader: PipeStream, writer: PipeStream), WeftError> = try runtime.guardedBlock(on: PipeStream.pipeFuture())
        let (reader, writer) = try pipe.get()
        reader.close()
        writer.close()
        let foundations: Foundation.Process.Type = Process.self  // Foundation's stays unqualified too
        #expect(foundations == Foundation.Process.self)
    }
}
