import CLibUV

/// How to start a child process: the executable, its arguments, environment
/// and working directory, and where its standard streams go (Tokio's
/// `Command`). A value: set it up, then spawn it as often as you like.
///
/// ```swift
/// var command = Command("/bin/sh", arguments: ["-c", "tr a-z A-Z"])
/// command.standardInput = .pipe
/// command.standardOutput = .pipe
/// let child = try await command.spawn()
/// try await child.standardInput!.write(Array("hello".utf8))
/// try await child.standardInput!.shutdown()          // the child reads end of file
/// let shouted = try await value(of: child.standardOutput!.readToEnd()).get()
/// let status = try await child.wait()                // "HELLO", exit code 0
/// ```
///
/// - ``spawn()`` (``spawnFuture()``) starts it and returns its
///   ``ChildProcess``: the process ID, its piped streams, its exit.
/// - ``status()`` (``statusFuture()``) runs it to its exit.
/// - ``output(limit:)`` (``outputFuture(limit:)``) runs it with its output and
///   errors collected.
///
/// A child is spawned with `uv_spawn` on the loop of the runtime that polls
/// the future (for the async forms, the calling task's loop, else the shared
/// one), which reaps it when it exits: no child stays a zombie, even when its
/// ``ChildProcess`` is dropped early (see ``ChildProcess``).
public struct Command: Sendable {
    /// Where one of the child's standard streams goes.
    public enum Stdio: Sendable, Hashable {
        /// The parent's own stream (descriptor 0, 1 or 2).
        ///
        /// One the parent uses non-blocking (a ``StandardStream`` open on a
        /// pipe or socket) is handed over so that the parent's loop keeps it
        /// non-blocking: a pipe is reopened for the child, a blocking
        /// description of its own; a socket (or a pipe that cannot be
        /// reopened, without `/proc`) cannot be, and reaches the child
        /// non-blocking, where a program expecting a blocking stream may fail
        /// with `EAGAIN`. Give such a child `.pipe` instead.
        case inherit
        /// `/dev/null`: reads end at once, writes vanish.
        case null
        /// A new pipe to the parent: the ``ChildProcess``'s ``PipeStream``.
        case pipe
        /// The file at `path`: read for standard input; for the output and
        /// error streams created if needed (mode 0644) and truncated, once
        /// the child's working directory and executable were found usable (a
        /// misspelt program leaves the file as it was); output and error set
        /// to one path share one descriptor (`>f 2>&1`). The parent opens
        /// it, so a relative path is from the parent's working directory,
        /// not the child's ``Command/workingDirectory``. A FIFO is opened
        /// without waiting for its other end: as output with no reader, the
        /// spawn fails with `ENXIO`; as input with no writer yet, the child
        /// reads end of stream at once.
        case file(path: String)
        /// A copy of the parent's open `descriptor` (which the parent keeps
        /// and may close after the spawn); non-blocking, it is handed over
        /// as for ``inherit``.
        case descriptor(Int32)
    }

    /// The program: a path, or a name without a slash, looked up in the
    /// `PATH` of the child's environment (as `execvp` does).
    public var executable: String
    /// The arguments after the program's name.
    public var arguments: [String]
    /// The child's working directory; `nil`: the parent's.
    public var workingDirectory: String?
    /// The child's standard input; `.inherit` by default.
    public var standardInput: Stdio = .inherit
    /// The child's standard output; `.inherit` by default.
    public var standardOutput: Stdio = .inherit
    /// The child's standard error; `.inherit` by default.
    public var standardError: Stdio = .inherit
    /// Whether dropping the ``ChildProcess`` kills the child (`SIGKILL`);
    /// `false` by default: the child runs on, and is still reaped when it
    /// exits (Tokio's `kill_on_drop`).
    public var killOnDrop = false

    /// Whether the child starts from the parent's environment (at spawn time)
    /// or from an empty one; ``clearEnvironment()`` sets it to `false`.
    public private(set) var inheritsEnvironment = true
    /// The changes to the starting environment, in order (`nil`: removed).
    private var environmentChanges: [(name: String, value: String?)] = []

    /// A command running `executable` with `arguments`, inheriting the
    /// parent's environment, working directory and standard streams.
    public init(_ executable: String, arguments: [String] = []) {
        self.executable = executable
        self.arguments = arguments
    }

    /// Sets the environment variable `name` to `value` in the child. A name
    /// that is empty or holds `=` (or a NUL byte) fails the spawn with
    /// `.invalidArgument`: the child would get another variable than asked
    /// (`A=B` set to `x` is `A` set to `B=x`).
    public mutating func setEnvironment(_ name: String, to value: String) {
        environmentChanges.append((name, value))
    }

    /// Removes the environment variable `name` from the child's environment.
    public mutating func removeEnvironment(_ name: String) {
        environmentChanges.append((name, nil))
    }

    /// Starts the child's environment empty (the changes made before are
    /// dropped): only what ``setEnvironment(_:to:)`` sets afterwards.
    public mutating func clearEnvironment() {
        inheritsEnvironment = false
        environmentChanges.removeAll()
    }

    /// The environment the child would get if spawned now, as `NAME=value`
    /// strings in a stable order (each variable where it was first set). An
    /// inherited entry that is not UTF-8 shows here repaired (U+FFFD); the
    /// child gets its bytes as they are.
    public var environment: [String] {
        environmentEntries.map { String(decoding: $0, as: UTF8.self) }
    }

    /// ``environment`` as the child gets it: `NAME=value` entries of bytes.
    /// Names are told apart by their bytes, as the C library does, not as
    /// Swift strings (which would merge names that differ only in Unicode
    /// normalization, and repair bytes that are not UTF-8).
    var environmentEntries: [[UInt8]] {
        environmentEntries(inheriting: inheritsEnvironment ? weft_environ() : nil)
    }

    /// ``environmentEntries`` over `inherited`, a `NULL`-terminated list of
    /// C strings (the process's `environ`), or none.
    func environmentEntries(inheriting inherited: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> [[UInt8]] {
        var entries: [[UInt8]: [UInt8]] = [:]  // by name; a removed name has none
        var order: [[UInt8]] = []  // every name set, in the order first set
        var listed: Set<[UInt8]> = []
        func set(_ name: [UInt8], _ entry: [UInt8]?) {
            if entry != nil, listed.insert(name).inserted { order.append(name) }
            entries[name] = entry
        }
        if var pointer = inherited {
            while let entry = pointer.pointee {
                var length = 0
                while entry[length] != 0 { length += 1 }
                let bytes = Array(UnsafeRawBufferPointer(start: entry, count: length))
                if let equals = bytes.firstIndex(of: UInt8(ascii: "=")) { set(Array(bytes[..<equals]), bytes) }
                pointer += 1
            }
        }
        for change in environmentChanges {
            set(Array(change.name.utf8), change.value.map { Array("\(change.name)=\($0)".utf8) })
        }
        return order.compactMap { entries[$0] }
    }

    /// A future that spawns the child on the runtime polling it. See ``spawn()``.
    public func spawnFuture() -> SpawnChild {
        SpawnChild(command: self)
    }

    /// A future that spawns the child and waits for its exit. See ``status()``.
    /// Pipes set for its standard streams are closed once it is spawned
    /// (nothing could read or write them): a child writing to one gets `EPIPE`
    /// or `SIGPIPE` (`ECONNRESET` once bytes it wrote were left unread: its
    /// streams are socket pairs) rather than waiting for ever on a full pipe.
    public func statusFuture() -> RunToExit {
        RunToExit(command: self)
    }

    /// A future that spawns the child with its output and errors collected.
    /// See ``output(limit:)``.
    public func outputFuture(limit: Int = 16 << 20) -> CollectOutput {
        CollectOutput(command: self, limit: limit)
    }
}

extension Command {
    /// Fails with `.invalidArgument` when a variable set or removed has a name
    /// no environment entry can carry: empty, or holding `=` (the entry is
    /// `NAME=value`, and the first `=` ends the name).
    func refuseBadVariableNames() throws(WeftError) {
        guard let change = environmentChanges.first(where: { $0.name.isEmpty || $0.name.utf8.contains(UInt8(ascii: "=")) }) else {
            return
        }
        throw WeftError(.invalidArgument, operation: "spawn",
                        detail: "executable \(executable.debugDescription): environment variable name \(change.name.debugDescription) is empty or contains \"=\"")
    }

    /// The standard streams' names in errors, by descriptor number.
    private static let streamNames = ["standard input", "standard output", "standard error"]

    /// Fails with EINVAL, as libuv does for -1, when a standard stream is a
    /// negative descriptor: libuv gave the child /dev/null for any other (its
    /// child setup reads a negative descriptor as "none").
    func refuseNegativeDescriptors() throws(WeftError) {
        for (index, stdio) in [standardInput, standardOutput, standardError].enumerated() {
            guard case .descriptor(let descriptor) = stdio, descriptor < 0 else { continue }
            throw WeftError(.libuv(code: UV_EINVAL.rawValue), operation: "spawn",
                            detail: "executable \(executable.debugDescription): \(Self.streamNames[index]) is descriptor \(descriptor), which cannot be open")
        }
    }

    /// Spawns the child on `loop`, the calling thread's.
    func spawn(on loop: EventLoop) throws(WeftError) -> ChildProcess {
        if !loop.isOnLoopThread || loop.isShutDown, let error = loop.refusesNewHandle(operation: "spawn \(executable)") {
            throw error
        }
        let childEnvironment = inheritsEnvironment && environmentChanges.isEmpty ? nil : environmentEntries
        // Before anything is opened: a file path cut at a NUL truncated another file.
        let paths = [standardInput, standardOutput, standardError].compactMap { stdio -> String? in
            if case .file(let path) = stdio { return path }
            return nil
        }
        // (The inherited environment, C strings, holds none: only the changes can.)
        let changed = environmentChanges.flatMap { change in [change.name] + [change.value].compactMap { $0 } }
        let strings: [String] = [executable] + arguments + changed + [workingDirectory].compactMap { $0 } + paths
        try ProcessHandle.refuseNUL(in: strings, executable: executable)
        try refuseBadVariableNames()
        try refuseNegativeDescriptors()
        // A file for the output or error is truncated before the spawn: first
        // make sure the child could start at all (SpawnPreflight).
        let writesFiles = [standardOutput, standardError].contains { if case .file = $0 { true } else { false } }
        if writesFiles, let error = SpawnPreflight.failure(executable: executable, workingDirectory: workingDirectory,
                                                          path: childPath(childEnvironment)) {
            throw ProcessHandle.spawnError(error, executable: executable, workingDirectory: workingDirectory)
        }
        // The descriptors opened here for the child (files, /dev/null): it gets
        // copies, so they are closed once spawned, whatever happened.
        var opened: [Int32] = []
        defer { for descriptor in opened { weft_close(descriptor) } }
        /// The output and error files opened, each once: both set to one path
        /// share its descriptor, and so its offset (`>f 2>&1`); opened twice,
        /// each wrote from the start over the other's bytes.
        var outputFiles: [(path: String, descriptor: Int32, index: Int)] = []
        var inherited = InheritedDescriptors()
        var pipes: [StreamConnection?] = [nil, nil, nil]
        var slots: [SpawnOptions.Slot] = []
        slots.reserveCapacity(3)
        for index in 0..<3 {
            let stdio = index == 0 ? standardInput : index == 1 ? standardOutput : standardError
            switch stdio {
            case .inherit:
                slots.append(.inherit(inherited.forChild(Int32(index))))
            case .descriptor(let descriptor):
                slots.append(.inherit(inherited.forChild(descriptor)))
            // Byte for byte: two paths Swift calls equal (one precomposed,
            // one decomposed) are two files on Linux.
            case .file(let path) where index == 2 && outputFiles.first.map({ $0.path.utf8.elementsEqual(path.utf8) }) == true:
                slots.append(.inherit(outputFiles[0].descriptor))
            case .null, .file:
                let path: String
                let flags: Int32
                if case .file(let filePath) = stdio {
                    path = filePath
                    // Truncated below, once every file opened.
                    flags = index == 0 ? O_RDONLY : O_WRONLY | O_CREAT
                } else {
                    path = "/dev/null"
                    flags = O_RDWR
                }
                // Non-blocking: a FIFO's open waits for its other end, which held
                // the loop thread for ever (the child gets the stream blocking:
                // libuv clears O_NONBLOCK on its 0, 1 and 2). No controlling
                // terminal: a session leader opening a terminal took it as its own.
                let descriptor = weft_open(path, flags | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0o644)
                guard descriptor >= 0 else {
                    throw fileError(uv_translate_sys_error(weft_errno()), index, path)
                }
                opened.append(descriptor)
                if index > 0, case .file = stdio { outputFiles.append((path, descriptor, index)) }
                slots.append(.inherit(descriptor))
            case .pipe:
                let connection = try StreamConnection(loop: loop, kind: .pipe)
                pipes[index] = connection
                slots.append(.pipe(connection, childReads: index == 0))
            }
        }
        // As O_TRUNC would have (a pipe or a device has nothing to cut).
        for file in outputFiles {
            var status = stat()
            if fstat(file.descriptor, &status) == 0, status.st_mode & mode_t(S_IFMT) == mode_t(S_IFREG), ftruncate(file.descriptor, 0) != 0 {
                throw fileError(uv_translate_sys_error(weft_errno()), file.index, file.path)
            }
        }
        let options = SpawnOptions(file: executable, arguments: [executable] + arguments,
                                   environment: childEnvironment,
                                   workingDirectory: workingDirectory, stdio: slots)
        let process: ProcessHandle
        do throws(WeftError) {
            process = try inherited.spawnRestoringModes { () throws(WeftError) in
                try ProcessHandle.spawn(options, on: loop, killOnRelease: killOnDrop)
            }
        } catch {
            for pipe in pipes { pipe?.close() }
            throw error
        }
        return ChildProcess(process: process, pipes: pipes.map { $0.map(PipeStream.init(connection:)) })
    }

    /// The `PATH` the child looks its executable up in, as bytes: from
    /// `environment` (the child's entries), or the parent's when it inherits
    /// it unchanged.
    private func childPath(_ environment: [[UInt8]]?) -> [UInt8]? {
        guard let environment else {
            return getenv("PATH").map { Array(UnsafeRawBufferPointer(start: $0, count: strlen($0))) }
        }
        let prefix = Array("PATH=".utf8)
        guard let entry = environment.first(where: { $0.starts(with: prefix) }) else { return nil }
        return Array(entry.dropFirst(prefix.count))
    }

    /// The spawn's error for the file `path` of standard stream `index`.
    private func fileError(_ code: Int32, _ index: Int, _ path: String) -> WeftError {
        WeftError(.libuv(code: code), operation: "spawn",
                  detail: "executable \(executable.debugDescription), \(Self.streamNames[index]) file \(path.debugDescription)")
    }
}
