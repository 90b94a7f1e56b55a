import Foundation
import Synchronization
import Weft

// The Rust async book's `TimerFuture` ("Applied: Build a Timer"), written in Swift
// with Weft's core types. Line for line:
//
//   pub struct TimerFuture { shared_state: Arc<Mutex<SharedState>> }
//       -> `struct TimerFuture` holding `sharedState`, a reference-counted
//          (`final class`) owner of a `Mutex<SharedState>`
//   struct SharedState { completed: bool, waker: Option<Waker> }
//       -> `struct SharedState` below
//   impl Future for TimerFuture { fn poll(...) }
//       -> `TimerFuture.poll(_:)`
//   impl TimerFuture { pub fn new(duration) }  (spawns a thread that sleeps,
//   sets `completed` and wakes the stored waker)
//       -> `TimerFuture.init(duration:)` with a Foundation `Thread`
//
// As in the book, the thread starts when the future is created (the example
// trades laziness for simplicity; Weft's own `Sleep` is lazy).

/// Shared state between the future and the waiting thread.
struct SharedState {
    /// Whether or not the sleep time has elapsed.
    var completed = false

    /// The waker for the task that `TimerFuture` is running on. The thread can
    /// use this after setting `completed = true` to tell `TimerFuture`'s task to
    /// wake up, see that `completed = true`, and move forward.
    var waker: Waker?
}

/// `Arc<Mutex<SharedState>>`: a shared, locked `SharedState`.
final class SharedTimerState: Sendable {
    let state = Mutex(SharedState())
}

/// The book's `TimerFuture`: completes once a thread has slept for `duration`.
struct TimerFuture: Future {
    let sharedState: SharedTimerState

    /// `TimerFuture::new`: create a new `TimerFuture` which will complete after
    /// the provided timeout.
    init(duration: Duration) {
        let sharedState = SharedTimerState()

        // Spawn the new thread.
        let threadSharedState = sharedState
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        Thread {
            Thread.sleep(forTimeInterval: seconds)
            // Signal that the timer has completed and wake up the last task on
            // which the future was polled, if one exists. (The book wakes while
            // holding the lock; so do we.)
            threadSharedState.state.locked { sharedState in
                sharedState.completed = true
                if let waker = sharedState.waker.take() {
                    waker.wake()
                }
            }
        }.start()

        self.sharedState = sharedState
    }

    mutating func poll(_ context: inout Context) -> Poll<Void> {
        // Look at the shared state to see if the timer has already completed.
        sharedState.state.locked { sharedState in
            if sharedState.completed {
                return .ready(())
            } else {
                // Set waker so that the thread can wake up the current task when
                // the timer has completed, ensuring that the future is polled
                // again and sees that `completed = true`.
                //
                // It's tempting to do this once rather than repeatedly cloning
                // the waker each time. However, the `TimerFuture` can move
                // between tasks on the executor, which could cause a stale waker
                // pointing to the wrong task. (The book omits the `willWake`
                // check to keep things simple; so do we.)
                sharedState.waker = context.waker
                return .pending
            }
        }
    }
}
