import CLibUV
import Dispatch
import Synchronization

/// Writes introspection output (a ``RuntimeReport`` on SIGUSR1, say) to a
/// file descriptor from a thread of its own, so that a reader who stops
/// reading — a supervisor that hung, a full log pipe — blocks that thread and
/// never a loop.
///
/// While a text is being written, further texts are dropped and counted
/// (``droppedCount``), and the next text that gets through starts with a line
/// saying how many were dropped: a blocked output costs one thread and one
/// text's memory, however many reports are asked for.
///
/// <!-- snippet: compile-only: waits for signals until the process ends -->
/// ```swift
/// import Glibc
/// for try await _ in signals(SIGUSR1).values {
///     if let report = Runtime.currentReport() { ReportWriter.standardOutput.write("\(report)\n") }
/// }
/// ```
public final class ReportWriter: Sendable {
    /// A writer to standard output (descriptor 1).
    public static let standardOutput = ReportWriter(descriptor: STDOUT_FILENO)

    private struct State {
        /// The text being written, with the number of texts dropped between
        /// the one before it and it.
        var waiting: (text: String, droppedBefore: Int)?
        var dropped = 0
        var droppedSinceLastAccepted = 0
        var threadStarted = false
    }

    private let descriptor: Int32
    private let state = Mutex(State())
    private let ready = DispatchSemaphore(value: 0)

    /// A writer to `descriptor`, which it does not close. Its thread starts at
    /// the first ``write(_:)``.
    public init(descriptor: Int32) {
        self.descriptor = descriptor
    }

    /// Hands `text` to the writer thread. Returns `false`, and counts the text
    /// in ``droppedCount``, while another is still being written (the output
    /// is slow or blocked). Never blocks beyond a lock, unless no thread could
    /// be started: then it writes on the calling thread, as `print` would.
    @discardableResult
    public func write(_ text: String) -> Bool {
        let (queued, start) = state.locked { state -> (Bool, Bool) in
            guard state.waiting == nil else {
                state.dropped += 1
                state.droppedSinceLastAccepted += 1
                return (false, false)
            }
            state.waiting = (text, state.droppedSinceLastAccepted)
            state.droppedSinceLastAccepted = 0
            defer { state.threadStarted = true }
            return (true, !state.threadStarted)
        }
        if start { startWriterThread() }
        if queued { ready.signal() }
        return queued
    }

    /// Texts dropped so far because another was being written.
    public var droppedCount: Int { state.locked { $0.dropped } }

    private func startWriterThread() {
        if let thread = try? startThread({ [self] in self.serve() }) {
            pthread_detach(thread)
        } else {
            // No thread: write on the caller's, as print would, and try a
            // thread again at the next text (with none started, the next
            // text waited for a thread that did not exist, and every later
            // one was dropped behind it).
            state.locked { $0.threadStarted = false }
            serveOnce()
        }
    }

    /// The writer thread: writes each text as it comes, for the life of the
    /// process.
    private func serve() {
        while true {
            ready.wait()
            serveOnce()
        }
    }

    private func serveOnce() {
        guard let (text, dropped) = state.locked({ $0.waiting }) else { return }
        var output = text
        if dropped > 0 { output = "(\(dropped) report(s) dropped while the output was blocked)\n" + text }
        writeAll(Array(output.utf8))
        state.locked { $0.waiting = nil }
    }

    private func writeAll(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { weft_write(descriptor, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 {
                let error = weft_errno()
                if error == EINTR { continue }
                // A non-blocking output (a pipe a `StandardStream` shares,
                // which libuv made so) is full: wait for room, as a blocking
                // write does. (Given up here, the text was cut short, no word said.)
                if error == EAGAIN, weft_wait_for(descriptor, Int16(POLLOUT), -1) > 0 { continue }
                return  // a closed or broken output: nothing more to do
            }
            offset += written
        }
    }
}
