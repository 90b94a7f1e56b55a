import Testing
import Weft

@Suite("Async book: TimerFuture on Weft's runtime")
struct TimerFutureTests {
    @Test("the book's TimerFuture, awaited with block(on:), completes after its duration")
    func timerFutureWithBlockOn() throws {
        let runtime = try Runtime()
        let log = Box<[String]>([])
        let start = ContinuousClock.now
        // The book's `async { println!("howdy!"); TimerFuture::new(..).await; println!("done!") }`.
        try runtime.guardedBlock(on: ready(()).then { _ -> TimerFuture in
            log.value.append("howdy!")
            return TimerFuture(duration: .milliseconds(50))
        }.map { log.value.append("done!") })
        #expect(log.value == ["howdy!", "done!"])
        #expect(ContinuousClock.now - start >= .milliseconds(50))
    }

    @Test("the book's TimerFuture runs beside Weft's own sleeps in one join")
    func timerFutureBesideSleep() throws {
        let runtime = try Runtime()
        let start = ContinuousClock.now
        let (_, _, value) = try runtime.guardedBlock(on: join(
            TimerFuture(duration: .milliseconds(30)),
            sleepFuture(for: .milliseconds(10)),
            runtime.spawn(TimerFuture(duration: .milliseconds(20)).map { 7 })
        ))
        #expect(try value.get() == 7)
        #expect(ContinuousClock.now - start >= .milliseconds(30))
    }
}
