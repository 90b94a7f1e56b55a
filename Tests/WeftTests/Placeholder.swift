import Testing
import Weft

@Test func smoke() throws {
    let runtime = try Runtime()
    let start = ContinuousClock.now
    let v = try runtime.block(on: sleep(for: .milliseconds(20)).map { 42 })
    #expect(v == 42)
    print(ContinuousClock.now - start, runtime.statistics)
    let h = runtime.spawn(sleep(for: .milliseconds(5)).map { "x" })
    let r = try runtime.block(on: join(h, sleep(for: .milliseconds(1)), ready(3), ready("s")))
    print(r)
    do { _ = try runtime.block(on: pending(Int.self)); Issue.record("no error") } catch { print(error) }
}
