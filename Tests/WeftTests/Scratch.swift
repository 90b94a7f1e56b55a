import Testing
import Foundation
import Weft

@Test func scratchHeldHandle() throws {
    let runtime = try Runtime()
    let h = runtime.spawn(pending(Int.self))
    let abortLater = ForeignThread { Thread.sleep(forTimeInterval: 1); h.abort() }
    let start = ContinuousClock.now
    do {
        let r = try runtime.block(on: h)
        print("SCRATCH held: returned", r, ContinuousClock.now - start)
    } catch {
        print("SCRATCH held: threw", error, ContinuousClock.now - start)
    }
    abortLater.join()
    let r2 = Result { try runtime.block(on: runtime.spawn(pending(Int.self))) }
    print("SCRATCH unheld", r2)
    print("SCRATCH", h.isFinished)
}
