import Glibc
import Testing
import Weft

@Suite("Introspection")
struct IntrospectionTests {
    @Test("a report lists every live task by its name or its future's type, with whether it is queued and awaited")
    func taskDump() throws {
        let runtime = try Runtime()
        let sleeper = runtime.spawn(sleepFuture(for: .seconds(3600)), name: "the long nap")
        _ = runtime.spawn(sleepFuture(for: .seconds(3600)))
        try runtime.block(on: yields(1))  // both have been polled and wait
        _ = runtime.spawn(ready(1))       // spawned, not yet polled: queued

        let report = runtime.report()
        #expect(report.statistics.tasksAlive == 3)
        #expect(report.pendingTimerCount == 2)
        #expect(report.openHandleCount == runtime.openHandleCount)
        #expect(report.activeRequestCount == 0)
        #expect(report.tasks.count == 3)
        let names = report.tasks.map(\.name)
        #expect(names.contains("the long nap"))
        #expect(names.contains("Sleep"))
        #expect(names.contains { $0.contains("Ready") }, "\(names)")
        #expect(report.tasks.filter(\.isScheduled).count == 1)
        #expect(report.description.contains("waiting the long nap"), "\(report)")
        sleeper.abort()
        try runtime.block(on: sleeper.map { _ in () })
        // The aborted nap is gone, and the ready task ran meanwhile: one sleep is left.
        #expect(runtime.report().tasks.map(\.name) == ["Sleep"])
    }

    @Test("a task is reported awaited while a task awaits its handle, not after a handle polled once by hand or a waiter that ended (the slot keeps their waker: the report said awaited)")
    func awaitedOnlyWhileAwaited() throws {
        let runtime = try Runtime()
        let sleeper = runtime.spawn(sleepFuture(for: .seconds(3600)), name: "nap")
        try runtime.block(on: yields(1))
        func napAwaited() -> Bool? { runtime.report().tasks.first { $0.name == "nap" }?.isAwaited }
        #expect(napAwaited() == false)

        let probe = sleeper
        #expect(probe.nowOrNever() == nil)  // leaves the no-op waker in the slot
        #expect(napAwaited() == false, "polled once by hand")

        let waiter = runtime.spawn(sleeper, name: "waiter")
        try runtime.block(on: yields(1))
        #expect(napAwaited() == true, "a task awaits it")
        waiter.abort()
        try runtime.block(on: waiter.map { _ in () })
        #expect(napAwaited() == false, "its waiter was aborted")
        sleeper.abort()
    }

    @Test("tasks completing in any order leave exactly the others in the report")
    func registryKeepsTheRest() throws {
        let runtime = try Runtime()
        var senders: [Int: OneshotSender<Void>] = [:]
        for index in 0..<200 {
            let (sender, receiver) = oneshotChannel(of: Void.self)
            senders[index] = sender
            runtime.spawn(receiver, name: "task \(index)")
        }
        var generator = SystemRandomNumberGenerator()
        var live = Set(0..<200)
        for index in (0..<200).shuffled(using: &generator) {
            try senders.removeValue(forKey: index)?.send(())
            live.remove(index)
            try runtime.block(on: yields(1))
            #expect(Set(runtime.report().tasks.map(\.name)) == Set(live.map { "task \($0)" }))
        }
        #expect(runtime.statistics.tasksAlive == 0)
    }

    @Test("a report splits the time inside block(on:) into busy and blocked in the OS poll")
    func busyAndBlocked() throws {
        let runtime = try Runtime()
        try runtime.block(on: lazy { sleepFuture(for: .milliseconds(400)) })
        let spin = pollFn { context -> Poll<Void> in
            let start = ContinuousClock.now
            while ContinuousClock.now - start < .milliseconds(20) {}
            return .ready(())
        }
        try runtime.block(on: spin)
        let statistics = runtime.report().statistics
        // An eighth of the 400 ms sleep: room for a loop clock read late, a
        // poll timeout rounded down, or the thread kept off the CPU between
        // its polls on a loaded machine (busy, not blocked), and time in the
        // OS poll not counted (or counted as busy) still fails.
        #expect(statistics.nanosecondsBlocked >= 50_000_000, "\(statistics)")
        #expect(statistics.nanosecondsBusy >= 18_000_000, "\(statistics)")
        #expect(statistics.nanosecondsBusy < 1_000_000_000, "\(statistics)")
    }

    @Test("currentReport() describes the runtime running the calling thread, and is nil elsewhere")
    func currentReport() throws {
        #expect(Runtime.currentReport() == nil)
        let runtime = try Runtime()
        let seen = try runtime.block(on: pollFn { _ -> Poll<Int?> in
            .ready(Runtime.currentReport()?.statistics.tasksAlive)
        })
        #expect(seen == 1)
    }

    @Test("a report's description lists at most listedTaskLimit tasks and counts the rest; its tasks keep them all")
    func descriptionIsCapped() throws {
        let runtime = try Runtime()
        let count = RuntimeReport.listedTaskLimit + 25
        for index in 0..<count { runtime.spawn(sleepFuture(for: .seconds(3600)), name: "nap \(index)") }
        try runtime.block(on: yields(1))
        let report = runtime.report()
        #expect(report.tasks.count == count)
        let listed = report.description.split(separator: "\n").filter { $0.hasPrefix("  waiting nap ") }
        #expect(listed.count == RuntimeReport.listedTaskLimit)
        #expect(report.description.hasSuffix("  … and 25 more"), "\(report)")
    }

    @Test("a ReportWriter whose pipe nobody reads never blocks its caller: while a text is stuck, the next is dropped and counted, and the first text after the pipe drains says so")
    func reportWriterNeverBlocks() throws {
        var descriptors: [Int32] = [0, 0]
        try #require(closeOnExecPipe(&descriptors) == 0)
        defer { close(descriptors[0]); close(descriptors[1]) }
        let writer = ReportWriter(descriptor: descriptors[1])
        let big = String(repeating: "r", count: 256 * 1024)  // more than the pipe holds
        let start = ContinuousClock.now
        #expect(writer.write(big))
        // Until the writer thread has taken the big text, a write may still be
        // refused for it; either way neither call blocks.
        #expect(!writer.write("second\n"))
        #expect(ContinuousClock.now - start < .seconds(1))
        #expect(writer.droppedCount == 1)

        // Drain the pipe: the big text arrives whole, then a new one carries the note.
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while output.count < big.utf8.count {
            let count = read(descriptors[0], &buffer, buffer.count)
            try #require(count > 0)
            output += buffer[..<count]
        }
        var accepted = false
        for _ in 0..<200 where !accepted {
            accepted = writer.write("third\n")
            if !accepted { usleep(5_000) }
        }
        #expect(accepted)
        // The refused retries above count too, until the thread let go of the big text.
        let dropped = writer.droppedCount
        #expect(dropped >= 1)
        let expected = big + "(\(dropped) report(s) dropped while the output was blocked)\nthird\n"
        while output.count < expected.utf8.count {
            let count = read(descriptors[0], &buffer, buffer.count)
            try #require(count > 0)
            output += buffer[..<count]
        }
        #expect(String(decoding: output, as: UTF8.self) == expected)
    }

    @Test("ReportWriter on a non-blocking output (a StandardStream makes a shared pipe so) waits for room and writes the whole text (it stopped at EAGAIN, the text cut short without a word)")
    func reportWriterOnANonBlockingOutput() throws {
        var descriptors: [Int32] = [0, 0]
        try #require(closeOnExecPipe(&descriptors) == 0)
        defer { close(descriptors[0]); close(descriptors[1]) }
        for descriptor in descriptors { _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK) }
        let writer = ReportWriter(descriptor: descriptors[1])
        let big = String(repeating: "r", count: 256 * 1024) + "end\n"  // more than the pipe holds
        #expect(writer.write(big))
        usleep(100_000)  // the pipe fills: the writer finds no room
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        let deadline = ContinuousClock.now + .seconds(5)
        while output.count < big.utf8.count && ContinuousClock.now < deadline {
            var readable = pollfd(fd: descriptors[0], events: Int16(POLLIN), revents: 0)
            guard poll(&readable, 1, 100) > 0 else { continue }
            let count = read(descriptors[0], &buffer, buffer.count)
            if count > 0 { output += buffer[..<count] }
        }
        #expect(output.count == big.utf8.count)
        #expect(String(decoding: output, as: UTF8.self) == big)
    }
}
