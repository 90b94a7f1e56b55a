import CLibUV

/// A running (or finished) child process, from ``Command/spawn()``.
///
/// It holds the child's process ID, its standard streams that were set to
/// ``Command/Stdio/pipe`` (as ``PipeStream``s: take them out to use them in
/// other tasks), and its exit: ``wait()`` (``waitFuture()``). ``kill(signal:)``
/// sends it a signal.
///
/// **Dropping it** does not stop the child (as with Tokio): the child runs
/// on, and its loop still reaps it when it exits (as soon as the loop runs:
/// a ``Runtime``'s runs while some `block(on:)` drives it, a ``LoopThread``'s
/// all the time), so it never stays a zombie for long; it no longer keeps the
/// loop alive, though. With ``Command/killOnDrop`` the
/// child is killed (`SIGKILL`) instead, and reaped the same way. The piped
/// streams are closed when they go away, like any stream.
///
/// **Shutdown:** if the runtime (or loop thread) shuts down while the child
/// still runs, the child is killed if ``Command/killOnDrop`` is set, and
/// otherwise left running; either way a background thread reaps it when it
/// exits, and waiting for it fails with ``WeftError/Code/shutDown``.
///
/// The child belongs to the loop it was spawned on; ``kill(signal:)`` and the
/// poll forms fail with `.wrongThread` off it, the async forms hop to it.
///
/// `@unchecked Sendable` is sound for the reason ``TCPStream``'s is: the
/// process handle is touched solely on the loop thread (every entry point
/// checks the thread; `deinit` elsewhere hands the release to the loop). The
/// stream properties are plain stored references, to be set from one task at
/// a time.
public final class ChildProcess: @unchecked Sendable {
    let process: ProcessHandle

    /// The child's process ID.
    public let processID: Int32
    /// The child's standard input, when it was ``Command/Stdio/pipe``: write to
    /// it; shut it down or close it so that the child reads end of file.
    public var standardInput: PipeStream?
    /// The child's standard output, when it was ``Command/Stdio/pipe``.
    public var standardOutput: PipeStream?
    /// The child's standard error, when it was ``Command/Stdio/pipe``.
    public var standardError: PipeStream?

    init(process: ProcessHandle, pipes: [PipeStream?]) {
        self.process = process
        processID = process.processID
        standardInput = pipes[0]
        standardOutput = pipes[1]
        standardError = pipes[2]
    }

    deinit {
        if process.loop.closesHere {
            process.release()
        } else {
            process.loop.enqueue(ReleaseChild(child: UnsafeTransfer(value: process)))
        }
    }

    /// A future of the child's exit. Its first poll closes
    /// ``standardInput`` (as Tokio's `wait` does), so a child reading it to
    /// the end does not wait forever.
    public func waitFuture() -> WaitForExit {
        WaitForExit(child: self)
    }

    /// Sends `signal` (by default `SIGKILL`, 9) to the child. Nothing happens
    /// once its exit was reported. Call it on the loop thread. Throws
    /// ``WeftError/Kind-swift.enum/shutDown`` once the loop shut down before
    /// the child exited (set ``Command/killOnDrop`` to have the shutdown kill it).
    public func kill(signal: Int32 = 9) throws(WeftError) {
        if let error = process.wrongThread("kill") { throw error }
        try process.kill(signal)
    }
}

/// How a child process ended: its exit code, or the signal that killed it.
public struct ProcessExitStatus: Sendable, Hashable, CustomStringConvertible {
    /// The code it passed to `exit`; `nil` when a signal killed it.
    public let exitCode: Int32?
    /// The signal that killed it; `nil` when it exited.
    public let signal: Int32?

    /// From what libuv reports.
    init(status: Int64, signal: Int32) {
        if signal != 0 {
            (exitCode, self.signal) = (nil, signal)
        } else {
            (exitCode, self.signal) = (Int32(truncatingIfNeeded: status), nil)
        }
    }

    /// Whether it exited with code 0.
    public var isSuccess: Bool { exitCode == 0 }

    public var description: String {
        if let signal { return "killed by signal \(signal)" }
        return "exit code \(exitCode ?? -1)"
    }
}

/// A finished child's status and what it wrote, from ``Command/output(limit:)``.
public struct ProcessOutput: Sendable, Hashable {
    /// How it ended.
    public let status: ProcessExitStatus
    /// Everything it wrote to its standard output.
    public let standardOutput: [UInt8]
    /// Everything it wrote to its standard error.
    public let standardError: [UInt8]
}
