import CLibUV
import CWeftSupport

/// Starts a thread running `body` (a `pthread`: unlike a Dispatch or
/// Foundation thread, it is named and pinned by the code it runs, and it can
/// be joined). Throws the `pthread_create` error number.
func startThread(_ body: @escaping @Sendable () -> Void) throws(ThreadStartError) -> pthread_t {
    let retained = Unmanaged.passRetained(ThreadBody(body))
    var thread = pthread_t()
    // On the process's CPUs, not its creator's: a loop pinned to one CPU
    // starting a loop (a group made in its task, the shared loop) confined
    // it there too.
    var attributes = pthread_attr_t()
    pthread_attr_init(&attributes)
    weft_attributes_use_process_cpus(&attributes)
    let created = pthread_create(&thread, &attributes, { argument in
        Unmanaged<ThreadBody>.fromOpaque(argument!).takeRetainedValue().run()
        return nil
    }, retained.toOpaque())
    pthread_attr_destroy(&attributes)
    guard created == 0 else {
        retained.release()
        throw ThreadStartError(code: created)
    }
    return thread
}

/// `pthread_create` failed with `code` (an errno value).
struct ThreadStartError: Error {
    let code: Int32
}

/// The closure a thread runs, handed to `pthread_create` as a retained
/// pointer.
private final class ThreadBody: Sendable {
    let run: @Sendable () -> Void
    init(_ run: @escaping @Sendable () -> Void) { self.run = run }
}

/// Unblocks `signal` for the calling thread (a loop's): a process may start
/// with it blocked, inherited from a parent thread's mask, and then the loop
/// thread would never take it.
func unblockSignalOnThisThread(_ signal: Int32) {
    var mask = sigset_t()
    sigemptyset(&mask)
    sigaddset(&mask, signal)
    pthread_sigmask(SIG_UNBLOCK, &mask, nil)
}
