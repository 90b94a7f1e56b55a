import CLibUV

/// The parent's descriptors a child gets as its standard streams (`.inherit`,
/// `.descriptor`), kept from the one change libuv's child makes to them.
///
/// Before its `exec`, libuv 1.44's child makes each of its descriptors 0, 1
/// and 2 blocking (`uv__nonblock_fcntl(fd, 0)` in `uv__process_child_init`).
/// `O_NONBLOCK` belongs to the open file description, which a copied
/// descriptor shares with the parent's: spawning a child with inherited
/// standard streams made the parent's pipe blocking under the
/// ``StandardStream`` reading or writing it, whose loop then blocked in a read
/// or a write. So a non-blocking descriptor is handed over as one of the
/// child's own where it can be, and set back otherwise:
///
/// - a pipe (or FIFO) is opened anew through `/proc/self/fd`: the same pipe,
///   under an open file description of the child's own, whose mode the child
///   may change (opened non-blocking, so that a read end with no writer does
///   not wait; the child makes it blocking);
/// - anything else (a socket, a terminal, a pipe that cannot be reopened) is
///   given as it is and made non-blocking again once `uv_spawn` returned:
///   it returns only after the child's `exec` (or failure: it waits for it
///   through a close-on-exec pipe), so the child's change is behind it. Until
///   then the description is blocking, and another loop writing to it could
///   block: what cannot be reopened is not safe from that. The look at the
///   mode, the spawn and the setting back run under the lock of the standard
///   streams on pipes (``StandardStream/whilePipeModesHeld(_:)``), so that
///   their last close, which makes a pipe found blocking blocking again,
///   never falls in between and is undone.
///
/// A descriptor found blocking is handed over as it is, and the spawn runs
/// without the lock (spawns on several loops at once do not wait for each
/// other). A standard stream opened on it between the look and the spawn
/// made it non-blocking, and the child blocking again: the spawn then makes
/// it non-blocking again, as one it set back
/// (``StandardStream/keepPipesNonBlocking(_:adoptedSince:)``).
struct InheritedDescriptors: ~Copyable {
    /// The descriptors handed over as they are, non-blocking before the spawn.
    private var toRestore: [Int32] = []
    /// The descriptors handed over as they are, blocking at the look.
    private var foundBlocking: [Int32] = []
    /// The standard streams on pipes adopted before the first look.
    private var adoptionsAtLook: Int?
    /// The pipes reopened for the child, closed after the spawn.
    private var reopened: [Int32] = []

    init() {}

    deinit {
        for descriptor in reopened { weft_close(descriptor) }
    }

    /// The descriptor the child gets for the parent's `descriptor`. Its mode
    /// is read under the lock a spawn holds from its own look to its setting
    /// back (``spawnRestoringModes(_:)``): read outside it, it could be read
    /// while another spawn's child had made the description blocking, and
    /// then nobody set it back after this spawn's child did the same (two
    /// threads spawning 200 children each left a shared socket blocking).
    mutating func forChild(_ descriptor: Int32) -> Int32 {
        let (flags, adoptions) = StandardStream.statusFlags(of: descriptor)
        if adoptionsAtLook == nil { adoptionsAtLook = adoptions }
        guard flags >= 0, weft_is_nonblocking(flags) != 0 else {
            foundBlocking.append(descriptor)
            return descriptor
        }
        var status = stat()
        if fstat(descriptor, &status) == 0, status.st_mode & mode_t(S_IFMT) == mode_t(S_IFIFO) {
            let own = weft_open("/proc/self/fd/\(descriptor)", (flags & O_ACCMODE) | O_NONBLOCK | O_CLOEXEC, 0)
            if own >= 0 {
                reopened.append(own)
                return own
            }
        }
        toRestore.append(descriptor)
        return descriptor
    }

    /// Runs `spawn`, then makes the descriptors handed over as they are that
    /// were non-blocking just before it non-blocking again; all of it while
    /// no standard stream's last close can change a pipe's mode
    /// (``StandardStream/whilePipeModesHeld(_:)``). When all were blocking at
    /// the look, `spawn` runs without the lock, and those a standard stream
    /// opened since is on are made non-blocking after it.
    func spawnRestoringModes<Result>(_ spawn: () throws(WeftError) -> Result) throws(WeftError) -> Result {
        guard !toRestore.isEmpty else {
            defer {
                if let adoptionsAtLook, !foundBlocking.isEmpty {
                    StandardStream.keepPipesNonBlocking(foundBlocking, adoptedSince: adoptionsAtLook)
                }
            }
            return try spawn()
        }
        return try StandardStream.whilePipeModesHeld { () throws(WeftError) -> Result in
            // Those found blocking too: a stream opened since made them non-blocking.
            let nonBlocking = (toRestore + foundBlocking).filter { DescriptorMode.isNonBlocking($0) == true }
            defer {
                for descriptor in nonBlocking { DescriptorMode.setNonBlocking(descriptor, true) }
            }
            return try spawn()
        }
    }
}

/// A descriptor's `O_NONBLOCK`, which belongs to its open file description
/// (shared by every copy of the descriptor, in this process and its children).
enum DescriptorMode {
    /// Whether `descriptor` is non-blocking; nil if its flags cannot be read.
    static func isNonBlocking(_ descriptor: Int32) -> Bool? {
        let flags = weft_status_flags(descriptor)
        return flags >= 0 ? weft_is_nonblocking(flags) != 0 : nil
    }

    /// Makes `descriptor` non-blocking or blocking, if it is not already.
    static func setNonBlocking(_ descriptor: Int32, _ nonBlocking: Bool) {
        let flags = weft_status_flags(descriptor)
        guard flags >= 0, (weft_is_nonblocking(flags) != 0) != nonBlocking else { return }
        _ = weft_set_status_flags(descriptor, nonBlocking ? flags | O_NONBLOCK : flags & ~Int32(O_NONBLOCK))
    }
}
