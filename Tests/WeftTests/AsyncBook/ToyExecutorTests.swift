import Dispatch
import Foundation
import Synchronization
import Testing
import Weft

// The Rust async book's channel-based executor ("Applied: Build an Executor"),
// written in Swift against Weft's core only: `Future`, `Poll`, `Context`,
// `Waker`/`Wakeable` and the combinators. No `Runtime`, no libuv: it shows the
// core is usable with a hand-written executor (docs/ARCHITECTURE.md, "Layers":
// Core is "usable with a hand-written executor").

// MARK: - std::sync::mpsc::sync_channel

/// The channel behind `sync_channel`: a bounded queue with counted senders.
/// `recv` blocks until an element arrives, or returns `nil` once every sender is
/// gone and the queue is empty (Rust's `Err(RecvError)`).
private final class Channel<Element: Sendable>: Sendable {
    private struct State {
        var queue: [Element] = []
        var senders = 0
    }
    private let state = Mutex(State())
    /// Signalled once per element sent, and once when the last sender goes.
    private let signal = DispatchSemaphore(value: 0)
    let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    func addSender() { state.locked { $0.senders += 1 } }

    func removeSender() {
        let wasLast = state.locked { state -> Bool in
            state.senders -= 1
            return state.senders == 0
        }
        if wasLast { signal.signal() }
    }

    func trySend(_ element: Element) -> Bool {
        let sent = state.locked { state -> Bool in
            guard state.queue.count < capacity else { return false }
            state.queue.append(element)
            return true
        }
        if sent { signal.signal() }
        return sent
    }

    /// Gives up (returning `nil` and recording an issue) after `patience`, so a
    /// broken test fails instead of hanging the whole suite.
    func recv(patience: DispatchTimeInterval = .seconds(10)) -> Element? {
        while true {
            guard signal.wait(timeout: .now() + patience) == .success else {
                Issue.record("the channel received nothing for \(patience); is a sender leaked?")
                return nil
            }
            let (element, closed) = state.locked { state -> (Element?, Bool) in
                if !state.queue.isEmpty { return (state.queue.removeFirst(), false) }
                return (nil, state.senders == 0)
            }
            if let element { return element }
            if closed { return nil }
        }
    }
}

/// `SyncSender<T>`: cloning it adds a sender; dropping the last one closes the channel.
private final class SyncSender<Element: Sendable>: Sendable {
    private let channel: Channel<Element>

    init(_ channel: Channel<Element>) {
        self.channel = channel
        channel.addSender()
    }

    deinit { channel.removeSender() }

    func clone() -> SyncSender { SyncSender(channel) }

    /// `try_send(..).expect("too many tasks queued")`.
    func trySend(_ element: Element) {
        precondition(channel.trySend(element), "too many tasks queued")
    }
}

/// `Receiver<T>`.
private struct Receiver<Element: Sendable> {
    let channel: Channel<Element>
    func recv() -> Element? { channel.recv() }
}

/// `sync_channel(bound)`.
private func syncChannel<Element: Sendable>(_ bound: Int) -> (SyncSender<Element>, Receiver<Element>) {
    let channel = Channel<Element>(capacity: bound)
    return (SyncSender(channel), Receiver(channel: channel))
}

// MARK: - The executor

/// Task executor that receives tasks off of a channel and runs them.
private struct Executor {
    let readyQueue: Receiver<Task>

    /// `Executor::run`: runs until every sender (the spawner's and every task's)
    /// is gone and the queue is empty.
    func run() {
        while let task = readyQueue.recv() {
            // Take the future, and if it has not yet completed (is still Some),
            // poll it in an attempt to complete it. As in the book, the task's
            // lock is held while polling.
            task.future.locked { futureSlot in
                if var future = futureSlot.take() {
                    // Create a waker from the task itself (`waker_ref(&task)`).
                    var context = Context(waker: Waker(task))
                    if case .pending = future.poll(&context) {
                        // We're not done processing the future, so put it back in
                        // its task to be run again in the future.
                        futureSlot = future
                    }
                }
            }
        }
    }
}

/// `Spawner` spawns new futures onto the task channel.
private struct Spawner {
    let taskSender: SyncSender<Task>

    /// `Spawner::spawn`: box the future, wrap it in a task, and send the task.
    func spawn<F: Future<Void>>(_ future: sending F) {
        let task = Task(future: future.boxed(), taskSender: taskSender.clone())
        taskSender.trySend(task)
    }
}

/// A future that can reschedule itself to be polled by an `Executor`.
///
/// Named `Task` as in the book; it shadows the standard library's `Task` only in
/// this file, which is why Weft itself avoids the name.
private final class Task: Wakeable {
    /// In-progress future that should be pushed to completion. The `Mutex` is not
    /// needed for correctness (one thread executes tasks), but proves thread
    /// safety to the compiler, as in the book.
    let future: Mutex<AnyFuture<Void>?>

    /// Handle to place the task itself back onto the task queue.
    let taskSender: SyncSender<Task>

    init(future: sending AnyFuture<Void>, taskSender: SyncSender<Task>) {
        self.future = Mutex(future)
        self.taskSender = taskSender
    }

    /// `ArcWake::wake_by_ref`: implement `wake` by sending this task back onto
    /// the task channel so that it will be polled again by the executor.
    func wake() {
        taskSender.trySend(self)
    }
}

/// `new_executor_and_spawner()`.
private func newExecutorAndSpawner() -> (Executor, Spawner) {
    // Maximum number of tasks to allow queueing in the channel at once. This is
    // just to make `sync_channel` happy, and wouldn't be present in a real executor.
    let maxQueuedTasks = 10_000
    let (taskSender, readyQueue) = syncChannel(maxQueuedTasks) as (SyncSender<Task>, Receiver<Task>)
    return (Executor(readyQueue: readyQueue), Spawner(taskSender: taskSender))
}

// MARK: - Tests

@Suite("Async book: the channel-based toy executor, without Weft's runtime")
struct ToyExecutorTests {
    @Test("the book's main: a task prints howdy!, awaits a TimerFuture, prints done!, and run() returns")
    func booksMain() {
        let log = Shared<[String]>([])
        let start = ContinuousClock.now
        let executor: Executor
        do {
            let (newExecutor, spawner) = newExecutorAndSpawner()
            executor = newExecutor

            // Spawn a task to print before and after waiting on a timer.
            spawner.spawn(ready(()).then { _ -> TimerFuture in
                log.update { $0.append("howdy!") }
                // Wait for our timer future to complete (50 ms instead of the book's 2 s).
                return TimerFuture(duration: .milliseconds(50))
            }.map {
                log.update { $0.append("done!") }
            })

            // Drop the spawner (here: leave its scope) so that our executor knows
            // it is finished and won't receive more incoming tasks to run.
        }

        // Run the executor until the task queue is empty.
        executor.run()

        #expect(log.value == ["howdy!", "done!"])
        #expect(ContinuousClock.now - start >= .milliseconds(50))
    }

    @Test("the toy executor runs many tasks, Weft combinators and self-waking futures to completion")
    func manyTasksAndCombinators() {
        let finished = AtomicCounter()
        let executor: Executor
        do {
            let (newExecutor, spawner) = newExecutorAndSpawner()
            executor = newExecutor
            for index in 0..<50 {
                spawner.spawn(TimerFuture(duration: .milliseconds(index % 7)).map { finished.increment() })
            }
            spawner.spawn(join(
                TimerFuture(duration: .milliseconds(20)),
                TimerFuture(duration: .milliseconds(10)),
                yields(5)
            ).map { _ in finished.increment() })
            spawner.spawn(select(
                either: TimerFuture(duration: .milliseconds(5)),
                or: pending(Int.self)
            ).map { outcome in
                if case .left = outcome { finished.increment() }
            })
            spawner.spawn(joinAll((0..<10).map { TimerFuture(duration: .milliseconds($0)) }).map { _ in
                finished.increment()
            })
        }  // the spawner is dropped here

        executor.run()
        #expect(finished.value == 53)
    }
}
