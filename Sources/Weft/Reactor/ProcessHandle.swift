import CLibUV
import CWeftSupport

/// What `uv_spawn` needs, already resolved: the environment as `NAME=value`
/// strings, each standard stream as a slot.
struct SpawnOptions {
    /// Where one of the child's standard streams goes.
    enum Slot {
        /// `/dev/null`-like: libuv leaves the descriptor closed in the child
        /// (never used: the user-facing `.null` opens `/dev/null` instead,
        /// since a child with a closed descriptor 0, 1 or 2 may reuse it).
        case ignore
        /// The child gets a copy of this parent descriptor (which the parent keeps).
        case inherit(Int32)
        /// A new socket pair: the child's end is its descriptor, the parent's
        /// end opened on this `.pipe` connection. `childReads` for standard input.
        case pipe(StreamConnection, childReads: Bool)
    }

    var file: String
    /// `argv`, the program's name first.
    var arguments: [String]
    /// `NAME=value` entries, as bytes (an inherited one need not be UTF-8);
    /// `nil`: the parent's environment, as it is at the spawn.
    var environment: [[UInt8]]?
    var workingDirectory: String?
    var stdio: [Slot]
}

/// The owner of one `uv_process_t`: a spawned child, until libuv reports its
/// exit (which it learns from `SIGCHLD` and `waitpid`, reaping the child).
///
/// Handle lifetime: the `uv_process_t` is allocated apart; unlike the other
/// handle owners, its `data` holds a *retained* reference to this object from
/// the spawn until the exit callback, so the handle stays open, and the child
/// is reaped, however early the user drops the ``ChildProcess``. The exit
/// callback takes that reference back, records the status, clears `data` and
/// closes the handle (freed in its close callback). If the loop shuts down
/// first, ``ChildRegistry`` closes the handle the same way and hands the pid to
/// the process's reaper thread, which reaps it when it exits
/// (`weft_reap_in_background`), so no child ever stays a zombie. Confined to
/// the loop thread.
final class ProcessHandle {
    let loop: EventLoop
    /// The child's process ID, fixed at spawn.
    let processID: Int32
    /// Open (and retaining this object) until the exit is reported or the loop
    /// shuts down; `nil` afterwards.
    private var handle: UnsafeMutablePointer<uv_process_t>?
    /// The exit status and the terminating signal (0: none), once reported.
    private(set) var exit: (status: Int64, signal: Int32)?
    /// Set when the loop shut down before the child exited.
    private(set) var abandoned = false
    /// Kill the child (`SIGKILL`) when its ``ChildProcess`` goes away.
    let killOnRelease: Bool
    /// The tasks waiting for the exit.
    private var waiting = WaitingWakers()

    private init(loop: EventLoop, handle: UnsafeMutablePointer<uv_process_t>, killOnRelease: Bool) {
        self.loop = loop
        self.handle = handle
        self.killOnRelease = killOnRelease
        processID = handle.pointee.pid
    }

    /// Fails with `.invalidArgument` when one of `strings` (the executable,
    /// an argument, a variable, a path) holds a NUL byte: C would cut it
    /// there, and so run, pass or open something else.
    static func refuseNUL(in strings: [String], executable: String) throws(WeftError) {
        guard let text = strings.first(where: { $0.utf8.contains(0) }) else { return }
        throw WeftError(.invalidArgument, operation: "spawn",
                        detail: "executable \(executable.debugDescription): \(text.debugDescription) contains a NUL byte")
    }

    /// A failed spawn's error: the libuv error `code`, naming the executable
    /// (and the working directory, if set).
    static func spawnError(_ code: Int32, executable: String, workingDirectory: String?) -> WeftError {
        var detail = "executable \(executable.debugDescription)"
        if let workingDirectory { detail += ", working directory \(workingDirectory.debugDescription)" }
        return WeftError(.libuv(code: code), operation: "spawn", detail: detail)
    }

    /// Spawns the child on `loop` (the calling thread must be its thread).
    /// Fails with the libuv error of `uv_spawn` naming the executable: `ENOENT`
    /// when it does not exist, `EACCES` when it is not executable, `EMFILE`
    /// when the process is out of descriptors.
    /// Its strings must hold no NUL byte (``refuseNUL(in:executable:)``).
    static func spawn(_ options: SpawnOptions, on loop: EventLoop, killOnRelease: Bool) throws(WeftError) -> ProcessHandle {
        guard let process = weft_process_alloc() else {
            throw WeftError(uvCode: UV_ENOMEM.rawValue, operation: "spawn \(options.file)")
        }
        // libuv hears of a child's exit only through SIGCHLD (its loop's own
        // signal handle): blocked (inherited), no exit would ever be reported,
        // every wait would hang and the children stay zombies. As
        // `SignalWatcher` does for its signal. (One system call; the fork
        // costs a thousand times more.)
        unblockSignalOnThisThread(SIGCHLD)
        let result = withCStrings(options.arguments.map(\.utf8)) { arguments in
            withOptionalCStrings(options.environment) { environment in
                withOptionalCString(options.workingDirectory) { directory in
                    options.file.withCString { file in
                        withUnsafeTemporaryAllocation(of: uv_stdio_container_t.self, capacity: options.stdio.count) { containers in
                            for (index, slot) in options.stdio.enumerated() {
                                var container = uv_stdio_container_t()
                                switch slot {
                                case .ignore:
                                    container.flags = UV_IGNORE
                                case .inherit(let descriptor):
                                    container.flags = UV_INHERIT_FD
                                    container.data.fd = descriptor
                                case .pipe(let connection, let childReads):
                                    let direction = childReads ? UV_READABLE_PIPE.rawValue : UV_WRITABLE_PIPE.rawValue
                                    container.flags = uv_stdio_flags(rawValue: UV_CREATE_PIPE.rawValue | direction)
                                    container.data.stream = connection.stream
                                }
                                containers.initializeElement(at: index, to: container)
                            }
                            var settings = uv_process_options_t()
                            settings.exit_cb = { process, status, signal in
                                guard let data = process?.pointee.data else { return }
                                Unmanaged<ProcessHandle>.fromOpaque(data).takeRetainedValue()
                                    .didExit(status: status, signal: signal)
                            }
                            settings.file = file
                            settings.args = arguments
                            settings.env = environment
                            settings.cwd = directory
                            settings.stdio_count = Int32(containers.count)
                            settings.stdio = containers.baseAddress
                            // On the process's CPUs: forked by a loop pinned to
                            // one, the child (and all it starts) ran there alone.
                            let saved = weft_widen_cpus()
                            defer { weft_restore_cpus(saved) }
                            return uv_spawn(loop.uvLoop, process, &settings)
                        }
                    }
                }
            }
        }
        if result < 0 {
            // uv_spawn initialised the handle before it failed: it must be closed.
            weft_close_and_free(weft_process_handle(process))
            throw spawnError(result, executable: options.file, workingDirectory: options.workingDirectory)
        }
        let owner = ProcessHandle(loop: loop, handle: process, killOnRelease: killOnRelease)
        process.pointee.data = Unmanaged.passRetained(owner).toOpaque()
        loop.withAttachment(ChildRegistry.key) { $0.running[ObjectIdentifier(owner)] = owner }
        return owner
    }

    /// The exit callback: record, close, wake.
    private func didExit(status: Int64, signal: Int32) {
        exit = (status, signal)
        finish()
    }

    /// Closes the handle (no callback reaches this object afterwards) and wakes
    /// the waiters.
    private func finish() {
        guard let handle else { return }
        self.handle = nil
        weft_close_and_free(weft_process_handle(handle))
        loop.withAttachment(ChildRegistry.key) { _ = $0.running.removeValue(forKey: ObjectIdentifier(self)) }
        waiting.wakeAll()
    }

    /// Ready with the exit once reported; a `.shutDown` error if the loop shut
    /// down first.
    func pollExit(_ context: inout Context) -> Poll<Result<(status: Int64, signal: Int32), WeftError>> {
        if let exit { return .ready(.success(exit)) }
        if abandoned {
            return .ready(.failure(WeftError(.shutDown, operation: "wait",
                                             detail: "the loop shut down before child \(processID) exited")))
        }
        waiting.register(context.waker)?.wake()
        return .pending
    }

    /// Sends `signal` to the child; nothing once it has exited (its pid may
    /// belong to another process by then). Until the exit is reported the child
    /// is at worst a zombie, whose pid nobody else can have. After the loop
    /// shut down with the child running, a `.shutDown` error: the child may
    /// still run, but it is a background reaper's now, which may have reaped
    /// it (and freed its pid) already.
    func kill(_ signal: Int32) throws(WeftError) {
        if abandoned {
            throw WeftError(.shutDown, operation: "kill(\(signal)) child \(processID)",
                            detail: "the loop shut down before the child exited")
        }
        guard let handle else { return }
        try check(uv_process_kill(handle, signal), "kill(\(signal)) child \(processID)")
    }

    /// The error for a call from a thread other than the loop's, if it is one.
    func wrongThread(_ operation: String) -> WeftError? {
        loop.wrongThread(operation)
    }

    /// The user's ``ChildProcess`` went away: kill the child if asked to, and
    /// stop it keeping the loop alive. The handle stays open until the exit,
    /// which reaps the child.
    func release() {
        guard let handle else { return }
        if killOnRelease { _ = uv_process_kill(handle, SIGKILL) }
        uv_unref(weft_process_handle(handle))
    }

    /// The loop shuts down with the child still running: kill it if asked to,
    /// hand it to a background reaper, close the handle.
    fileprivate func abandon() {
        guard let handle else { return }
        if killOnRelease { _ = uv_process_kill(handle, SIGKILL) }
        // Fails only when the reaper thread could not be started; the child
        // stays listed, and the next abandoned child starts it.
        _ = weft_reap_in_background(processID)
        abandoned = true
        finish()
        // The reference the handle's `data` held.
        Unmanaged.passUnretained(self).release()
    }
}

/// The children of one loop still running, so that a shutdown can hand them to
/// a reaper (see ``ProcessHandle``). Loop-confined, like the handles.
final class ChildRegistry: LoopShutdownObserver {
    static let key = LoopAttachmentKey(.children) { _ in ChildRegistry() }
    var running: [ObjectIdentifier: ProcessHandle] = [:]

    func loopShuttingDown() {
        for child in Array(running.values) { child.abandon() }
    }
}

/// `body` with a NULL-terminated array of C strings, valid for the call. The
/// strings and the array are on the stack when small (`uv_spawn` forks: every
/// heap page written after the fork, by a `free` too, costs the parent a
/// copy-on-write fault; docs/BENCHMARKS.md, "Processes").
private func withCStrings<Entry: Collection<UInt8>, Result>(
    _ strings: [Entry], _ body: (UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Result
) -> Result {
    let byteCount = strings.reduce(0) { $0 + $1.count + 1 }
    return withUnsafeTemporaryAllocation(of: CChar.self, capacity: max(1, byteCount)) { bytes in
        withUnsafeTemporaryAllocation(of: UnsafeMutablePointer<CChar>?.self, capacity: strings.count + 1) { pointers in
            var offset = 0
            for (index, string) in strings.enumerated() {
                pointers[index] = bytes.baseAddress! + offset
                for byte in string {
                    bytes[offset] = CChar(bitPattern: byte)
                    offset += 1
                }
                bytes[offset] = 0
                offset += 1
            }
            pointers[strings.count] = nil
            return body(pointers.baseAddress!)
        }
    }
}

/// `withCStrings`, or `body(nil)` for `nil`.
private func withOptionalCStrings<Result>(_ strings: [[UInt8]]?, _ body: (UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Result) -> Result {
    guard let strings else { return body(nil) }
    return withCStrings(strings) { body($0) }
}

private func withOptionalCString<Result>(_ string: String?, _ body: (UnsafePointer<CChar>?) -> Result) -> Result {
    guard let string else { return body(nil) }
    return string.withCString { body($0) }
}

/// A ``ChildProcess``'s release, handed to its loop from another thread.
struct ReleaseChild: LoopJob {
    /// Moved to the loop thread: the thread that asked no longer uses it.
    let child: UnsafeTransfer<ProcessHandle>

    func run() {
        child.value.release()
    }

    /// The loop shut down, which already abandoned the child to a reaper.
    func loopClosed() {}
}
