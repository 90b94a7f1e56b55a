import Foundation
import Synchronization
import Testing
import Weft

extension TimingSensitive {
    /// Invariant 3, across threads: wakes from other threads go through the
    /// runtime's inbox and are never lost.
    @Suite("Wakes from other threads")
    struct ForeignWakeTests {
        @Test("8 threads × 10,000 foreign wakes lose none and crash nothing")
        func manyForeignWakesLoseNone() throws {
            let runtime = try Runtime()
            let threadCount = 8
            let wakesPerThread = 10_000
            let total = threadCount * wakesPerThread
            let counter = AtomicCounter()
            let published = Shared<Waker?>(nil)

            let threads = (0..<threadCount).map { _ in
                ForeignThread {
                    // Wait for the task's first poll to publish its waker.
                    var waker = published.value
                    while waker == nil {
                        Thread.sleep(forTimeInterval: 0.0005)
                        waker = published.value
                    }
                    for _ in 0..<wakesPerThread {
                        counter.increment()
                        waker!.wake()
                    }
                }
            }

            let polls = Counter()
            let observed = try runtime.block(on: pollFn { (context: inout Context) -> Poll<Int> in
                polls.value += 1
                if polls.value == 1 { published.value = context.waker }
                let seen = counter.value
                return seen == total ? .ready(seen) : .pending
            })
            threads.forEach { $0.join() }

            // Ready only once a poll saw every increment: the wake after the
            // last one was not lost. (How many polls the wakes took depends on
            // the threads' timing: no bound on it can fail.)
            #expect(observed == total)
            #expect(runtime.statistics.tasksAlive == 0)
        }

        @Test("a task woken from another thread while the loop blocks in the OS poll runs promptly")
        func foreignWakeInterruptsTheOSPoll() throws {
            let runtime = try Runtime()
            let published = Shared<Waker?>(nil)
            let fired = AtomicCounter()
            // A long timer keeps the loop blocked in epoll meanwhile.
            let keepAlive = runtime.spawn(sleepFuture(for: .seconds(60)))
            let waker = ForeignThread {
                while published.value == nil { Thread.sleep(forTimeInterval: 0.001) }
                Thread.sleep(forTimeInterval: 0.02)
                fired.increment()
                published.value!.wake()
            }
            let (_, elapsed) = try measure {
                try runtime.block(on: pollFn { (context: inout Context) -> Poll<Void> in
                    if fired.value > 0 { return .ready(()) }
                    published.value = context.waker
                    return .pending
                })
            }
            waker.join()
            keepAlive.abort()
            #expect(elapsed >= .milliseconds(20))
            #expect(elapsed < .seconds(2))
        }
    }
}
