// What the sample servers share: how they read their command line, where
// their messages go, and the address they listen on.

import Dispatch
import Glibc
import Weft

/// A sample's command line, as users of command-line tools expect it:
/// `--help`/`-h` prints the usage on stdout and exits 0; a usage error goes to
/// stderr with the usage and exits 2; any other failure goes to stderr and
/// exits 1.
public struct SampleCommand: Sendable {
    /// The program's name, e.g. `weft-echo`.
    public let name: String
    /// The options, e.g. `[--host H] [--port P]`.
    public let synopsis: String
    /// What the program does and what each option means, for `--help`.
    public let help: String

    public init(name: String, synopsis: String, help: String) {
        self.name = name
        self.synopsis = synopsis
        self.help = help
    }

    /// The arguments after the program's name; exits 0 after printing the
    /// help when they ask for it (before a `--`, after which every argument
    /// is an operand, `weft-cat`'s files).
    public func arguments() -> [String] {
        let arguments = Array(CommandLine.arguments.dropFirst())
        let options = arguments.prefix { $0 != "--" }
        if options.contains("--help") || options.contains("-h") {
            print("usage: \(name) \(synopsis)\n\n\(help)")
            exit(0)
        }
        return arguments
    }

    /// Prints every accept that failed while the listener went on listening
    /// (out of descriptors, with the waiting connections it closed) as
    /// `NAME: ERROR` through ``StatusLines``: Weft counts them in each loop's
    /// report, but an operator watching the output should see, when it
    /// happens, that the server is refusing connections. Installs the
    /// process's ``RuntimeEvents`` observer.
    public func printAcceptFailures() {
        let name = self.name
        RuntimeEvents.observe { event in
            if case .acceptFailed = event { StatusLines.say("\(name): \(event)") }
        }
    }

    /// Reports a usage error on stderr and exits 2.
    public func usageError(_ problem: String) -> Never {
        writeError("\(name): \(problem)\nusage: \(name) \(synopsis) (\(name) --help for more)")
        exit(2)
    }

    /// Reports a failure on stderr and exits 1.
    public func fail(_ error: any Error) -> Never {
        StatusLines.finish()
        writeError("\(name): \(error)")
        exit(1)
    }

    /// The value after `flag`, or a usage error: none, or another option
    /// (`--unix --poll` is a missing value, not a file named `--poll`).
    public func value(after flag: String, in arguments: inout IndexingIterator<[String]>) -> String {
        guard let value = arguments.next(), !value.hasPrefix("--") else { usageError("\(flag) needs a value") }
        return value
    }

    /// `value` as a whole number in `range`, or a usage error: "`flag` takes
    /// `unit` from `range`'s bounds, not '`value`'".
    public func number(_ value: String, for flag: String, in range: ClosedRange<Int>, unit: String = "a number") -> Int {
        guard let number = Int(value), range.contains(number) else {
            usageError("\(flag) takes \(unit) from \(range.lowerBound) to \(range.upperBound), not '\(value)'")
        }
        return number
    }

    /// `value` as seconds (fractions allowed, kept to the millisecond) from 0
    /// (included with `allowingZero`) to `maximum`, or a usage error.
    public func seconds(_ value: String, for flag: String, upTo maximum: Int, allowingZero: Bool) -> Duration {
        // Checked once kept to the millisecond: 0.0004 is 0.
        guard let seconds = Double(value), seconds <= Double(maximum), seconds >= 0,
              case let milliseconds = Int64((seconds * 1000).rounded()), allowingZero || milliseconds > 0 else {
            usageError("\(flag) takes seconds from \(allowingZero ? "0" : "0.001") to \(maximum), not '\(value)'")
        }
        return .milliseconds(milliseconds)
    }

    /// A second SIGINT or SIGTERM cut a graceful shutdown short: says so and
    /// exits at once, with the shell's status for death by that signal
    /// (128 + the signal).
    public func exitAtOnce(afterSignal signal: Int32, connectionsOpen: Int) -> Never {
        StatusLines.say("\(name): signal \(signal) again, exiting at once with \(connectionsOpen) connection(s) open")
        StatusLines.finish()
        exit(128 + signal)
    }
}

/// What a sample says on stdout while it serves and shuts down (the drain's
/// progress, accept errors, the last line), written in order by a thread of
/// Dispatch's: a stdout nobody reads (a full log pipe) blocks that thread,
/// never a loop, where the signal watcher and the grace period's timer must
/// go on running. (Printing there directly blocked a draining server in
/// `write` for good: only SIGKILL ended it.)
///
/// The line that announces the address is printed directly when stdout has
/// room for it (``announce(_:)``): the poll servers start no thread but their
/// loop's unless they have something to say.
public enum StatusLines {
    private static let queue = DispatchQueue(label: "weft.sample.status-lines")
    private static let unwritten = DispatchGroup()

    /// Queues `line` (and a newline) for stdout; never blocks.
    public static func say(_ line: String) {
        unwritten.enter()
        queue.async {
            writeAll(STDOUT_FILENO, line + "\n")
            unwritten.leave()
        }
    }

    /// Waits until the lines said so far are written, at most `limit`: call
    /// it before the process exits, so that they reach a reader, and that a
    /// blocked stdout delays the exit by `limit` at most.
    public static func finish(within limit: DispatchTimeInterval = .seconds(1)) {
        _ = unwritten.wait(timeout: .now() + limit)
    }
}

/// Prints `line` (a server's "listening on ADDRESS") on stdout now when
/// stdout has room for it, else through ``StatusLines``: it is printed on the
/// loop that watches for SIGINT and SIGTERM, whose handlers are installed
/// first, so a stdout already full (a log pipe nobody reads) blocked that loop
/// in `write` before it served, deaf to both signals: only SIGKILL ended it.
/// A pipe with room takes a line this short whole, so the direct write never
/// blocks, and a poll server stays on one thread.
public func announce(_ line: String) {
    fflush(nil)  // anything print() buffered goes first
    var output = pollfd(fd: STDOUT_FILENO, events: Int16(POLLOUT), revents: 0)
    if poll(&output, 1, 0) == 1 && output.revents & Int16(POLLOUT) != 0 {
        writeAll(STDOUT_FILENO, line + "\n")
    } else {
        StatusLines.say(line)
    }
}

/// Writes `line` and a newline to stderr.
public func writeError(_ line: String) {
    writeAll(STDERR_FILENO, line + "\n")
}

/// Writes all of `text` to `descriptor`; gives up when the output is closed
/// or fails. A non-blocking output that is full (stderr sharing a pipe with
/// a `StandardStream` on stdout, `2>&1`, which libuv made non-blocking) is
/// waited for, as a blocking write waits: the line was dropped, no word said.
private func writeAll(_ descriptor: Int32, _ text: String) {
    let bytes = Array(text.utf8)
    var written = 0
    while written < bytes.count {
        let count = bytes[written...].withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
        if count < 0 && errno == EINTR { continue }
        if count < 0 && errno == EAGAIN {
            var room = pollfd(fd: descriptor, events: Int16(POLLOUT), revents: 0)
            if poll(&room, 1, -1) > 0 { continue }
        }
        if count <= 0 { return }
        written += count
    }
}

/// The address to listen on: `host` as a numeric address, or else its first
/// address from the resolver (`localhost` gives `127.0.0.1` or `::1`).
///
/// Runs on its caller's executor: a numeric host then costs no hop, so a
/// sample's top-level code starts no thread of Swift's global executor for
/// it (the `--poll` servers stay single-threaded, as the C server is: glibc's
/// system-call wrappers cost more in a multi-threaded process).
nonisolated(nonsending)
public func listenAddress(host: String, port: Int) async throws -> SocketAddress {
    if let numeric = try? SocketAddress(host: host, port: port) { return numeric }
    let addresses = try await resolve(host: host, port: port)
    guard let first = addresses.first(where: { $0.family == .ipv4 }) ?? addresses.first else {
        throw WeftError(.invalidArgument, operation: "resolve \(host)", detail: "no address")
    }
    return first
}
