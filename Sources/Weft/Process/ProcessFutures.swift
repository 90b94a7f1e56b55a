import CLibUV

/// Spawns a child. See ``Command/spawnFuture()``.
///
/// **Cancellation:** it completes at its first poll (`uv_spawn` does not
/// wait), so there is nothing to cancel.
public struct SpawnChild: Future {
    let command: Command
    /// Set when it yields its result: polled again, it fails (it would start
    /// a second child, and truncate the files the first one writes).
    var isDone = false

    public mutating func poll(_ context: inout Context) -> Poll<Result<ChildProcess, WeftError>> {
        if isDone { return .ready(.failure(.polledAgain("spawn \(command.executable)"))) }
        guard let loop = EventLoop.current else { return .ready(.failure(.outsideRuntime("spawn \(command.executable)"))) }
        isDone = true
        return .ready(Result { () throws(WeftError) in try command.spawn(on: loop) })
    }
}

/// Waits for a child's exit. See ``ChildProcess/waitFuture()``.
///
/// **Cancellation:** cancel-safe: dropping it leaves the child alone, and a
/// new one reports the same exit.
public struct WaitForExit: Future {
    let child: ChildProcess

    public mutating func poll(_ context: inout Context) -> Poll<Result<ProcessExitStatus, WeftError>> {
        if let error = child.process.wrongThread("wait") { return .ready(.failure(error)) }
        if let input = child.standardInput {
            child.standardInput = nil
            input.connection.close()
        }
        switch child.process.pollExit(&context) {
        case .pending: return .pending
        case .ready(.failure(let error)): return .ready(.failure(error))
        case .ready(.success(let exit)): return .ready(.success(ProcessExitStatus(status: exit.status, signal: exit.signal)))
        }
    }
}

/// Spawns a child and waits for its exit. See ``Command/statusFuture()``.
///
/// **Cancellation:** dropping it after the spawn drops the ``ChildProcess``:
/// the child runs on (killed with ``Command/killOnDrop``) and is reaped.
public struct RunToExit: Future {
    let command: Command
    var waiting: WaitForExit?
    /// Set when it yields its result: polled again, it fails (after a failed
    /// spawn, it would spawn again).
    var isDone = false

    public mutating func poll(_ context: inout Context) -> Poll<Result<ProcessExitStatus, WeftError>> {
        if isDone { return .ready(.failure(.polledAgain("spawn \(command.executable)"))) }
        return pollRun(&context).markingDone(&isDone)
    }

    private mutating func pollRun(_ context: inout Context) -> Poll<Result<ProcessExitStatus, WeftError>> {
        if waiting == nil {
            guard let loop = EventLoop.current else { return .ready(.failure(.outsideRuntime("spawn \(command.executable)"))) }
            do {
                let child = try command.spawn(on: loop)
                // Nobody can read a piped output here: closed, so that a child
                // writing more than a pipe holds gets EPIPE (or ECONNRESET)
                // instead of waiting for ever (Tokio's `status` drops them the
                // same way).
                for output in [child.standardOutput, child.standardError] { output?.close() }
                (child.standardOutput, child.standardError) = (nil, nil)
                waiting = child.waitFuture()
            } catch {
                return .ready(.failure(error))
            }
        }
        return waiting!.poll(&context)
    }
}

/// Spawns a child with its standard output and error piped, collects both,
/// and waits for its exit. See ``Command/outputFuture(limit:)``.
///
/// **Cancellation:** dropping it drops the child (see ``RunToExit``) and what
/// was collected.
public struct CollectOutput: Future {
    let command: Command
    let limit: Int
    var child: ChildProcess?
    var collected: [[UInt8]] = [[], []]
    var finished = [false, false]
    var exit: ProcessExitStatus?
    /// Set when it yields its result: polled again, it fails (after a failed
    /// spawn, it would spawn again).
    var isDone = false

    init(command: Command, limit: Int) {
        var command = command
        command.standardOutput = .pipe
        command.standardError = .pipe
        if command.standardInput == .inherit { command.standardInput = .null }
        self.command = command
        self.limit = limit
    }

    public mutating func poll(_ context: inout Context) -> Poll<Result<ProcessOutput, WeftError>> {
        if isDone { return .ready(.failure(.polledAgain("spawn \(command.executable)"))) }
        return pollOutput(&context).markingDone(&isDone)
    }

    private mutating func pollOutput(_ context: inout Context) -> Poll<Result<ProcessOutput, WeftError>> {
        guard limit >= 0 else {
            return .ready(.failure(WeftError(.invalidArgument, operation: "output(limit: \(limit))",
                                             detail: "the limit must not be negative")))
        }
        if child == nil {
            guard let loop = EventLoop.current else { return .ready(.failure(.outsideRuntime("spawn \(command.executable)"))) }
            do {
                child = try command.spawn(on: loop)
            } catch {
                return .ready(.failure(error))
            }
        }
        let child = child!
        let streams = [child.standardOutput!, child.standardError!]
        reading: for index in 0..<2 where !finished[index] {
            while case .ready(let result) = streams[index].pollFillBuffer(&context) {
                let bytes: UnsafeRawBufferPointer
                switch result {
                case .failure(let error): return .ready(.failure(error))
                case .success(let available): bytes = available
                }
                if bytes.isEmpty {
                    finished[index] = true
                    continue reading
                }
                if collected[index].count + bytes.count > limit {
                    return .ready(.failure(overLimit(index == 0 ? "standard output" : "standard error", child, &context)))
                }
                collected[index].append(contentsOf: bytes)
                streams[index].consume(bytes.count)
            }
        }
        if exit == nil {
            var waiting = child.waitFuture()
            switch waiting.poll(&context) {
            case .pending: break
            case .ready(.failure(let error)): return .ready(.failure(error))
            case .ready(.success(let status)): exit = status
            }
        }
        guard let exit, finished[0], finished[1] else { return .pending }
        return .ready(.success(ProcessOutput(status: exit, standardOutput: collected[0], standardError: collected[1])))
    }

    /// The error for `child` having written more than `limit` bytes to its
    /// `stream`: it is killed, unless it has exited already (its output and
    /// its exit often come in one turn of the loop), when its status is told
    /// instead of a kill that did nothing.
    private mutating func overLimit(_ stream: String, _ child: ChildProcess, _ context: inout Context) -> WeftError {
        if exit == nil {
            var waiting = child.waitFuture()
            if case .ready(.success(let status)) = waiting.poll(&context) { exit = status }
        }
        let fate: String
        if let exit {
            fate = "it had exited already (\(exit))"
        } else {
            _ = try? child.kill()
            fate = "it was killed"
        }
        return WeftError(.libuv(code: UV_ENOBUFS.rawValue), operation: "output",
                         detail: "\(command.executable.debugDescription) wrote more than \(limit) bytes to its \(stream); \(fate)")
    }
}
