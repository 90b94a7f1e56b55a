import Glibc
import Testing
import Weft

@Suite("Signal streams")
struct SignalStreamTests {
    @Test("two tasks waiting on copies of one installed signal stream are both served: each SIGUSR2 sent to this process wakes both, and one of them takes it")
    func copiesWaitingInTwoTasks() throws {
        let runtime = try Runtime()
        var stream = signals(SIGUSR2)
        try stream.install(runtime: runtime)
        let received = Counter()
        let waiters = [stream, stream].map { copy in
            runtime.spawn(copy.next().map { next in
                if next.element == SIGUSR2 { received.value += 1 }
            })
        }
        _ = consume stream
        try runtime.block(on: sleepFuture(for: .milliseconds(20)))  // both wait
        for expected in 1...2 {
            kill(getpid(), SIGUSR2)
            let arrived = try runtime.block(on: timeoutFuture(.seconds(10), NetTest.eventually { received.value >= expected }))
            #expect(arrived.isSuccess, "delivery \(expected) did not reach a waiting task")
        }
        for waiter in waiters {
            let ended = try runtime.block(on: timeoutFuture(.seconds(10), waiter))
            #expect(ended.isSuccess, "\(ended)")
        }
        #expect(received.value == 2)
    }
}
