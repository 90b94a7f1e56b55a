#ifndef WEFT_SUPPORT_H
#define WEFT_SUPPORT_H

// Small C helpers for Weft. Everything here is either a pointer cast that Swift
// spells badly, a per-thread variable, or the "allocate apart, free in the close
// callback" rule for libuv handles (docs/ARCHITECTURE.md, "Handles and requests") written once.

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

// MARK: - Per-thread state

// initial-exec: a direct %fs-relative load instead of a __tls_get_addr call.
// Fine for executables and libraries loaded at start-up.
#define WEFT_TLS _Thread_local __attribute__((tls_model("initial-exec")))

// The two per-thread variables every poll reads, defined in CWeftSupport.c and
// read here through inline functions: Swift inlines them, so a check of the
// calling thread or of the budget is a load, not a call into C.
extern WEFT_TLS void *weft_current_runtime_storage;
extern WEFT_TLS long weft_task_budget_storage;

/// The runtime driving the calling thread (NULL when none): set by the executor
/// around each turn of its loop, read by leaf futures such as sleeps.
static inline void *weft_current_runtime(void) { return weft_current_runtime_storage; }
void weft_set_current_runtime(void *runtime);

/// A number for the calling thread that no other thread of the process ever
/// had (a `pthread_t`, the address of the thread's descriptor, is reused by a
/// thread started after one that ended).
unsigned long long weft_thread_identity(void);

/// A fast per-thread pseudo-random generator (xorshift64*), used for fairness
/// decisions such as which branch of a select is polled first. Not cryptographic.
uint64_t weft_random(void);
void weft_seed_random(uint64_t seed);
/// Replaces the calling thread's generator state, returning the old one (a
/// deterministic runtime keeps its own stream this way).
uint64_t weft_swap_random_state(uint64_t state);

/// A deterministic runtime's clock, installed on the thread that made it.
typedef struct weft_virtual_clock_node weft_virtual_clock_node;
/// The calling thread's virtual clock (nanoseconds), or NULL for real time:
/// that of the loop it drives (`weft_virtual_clock_drive`), else the newest
/// installed on this thread and not uninstalled.
const uint64_t *weft_virtual_clock(void);
/// While a loop runs on this thread, its clock is the thread's: `clock` (NULL
/// for a real-time loop), until `weft_virtual_clock_restore` is given what
/// this returns.
const uint64_t *weft_virtual_clock_drive(const uint64_t *clock);
void weft_virtual_clock_restore(const uint64_t *previous);
/// Installs a clock reading `nanoseconds` on the calling thread (NULL out of
/// memory). The caller holds one reference (`weft_virtual_clock_release`).
weft_virtual_clock_node *weft_virtual_clock_install(uint64_t nanoseconds);
/// The clock's time, for its owner to read and advance.
uint64_t *weft_virtual_clock_time(weft_virtual_clock_node *clock);
/// Uninstalls `clock`, from any thread and in any order: its thread goes back
/// to the newest clock installed before it that is still installed (at once
/// when called there, else at that thread's next read).
void weft_virtual_clock_uninstall(weft_virtual_clock_node *clock);
/// Drops the owner's reference; the memory goes once its thread dropped it too.
void weft_virtual_clock_release(weft_virtual_clock_node *clock);
/// The clocks on the calling thread's chain, uninstalled ones still there
/// included; for tests.
size_t weft_virtual_clock_chain_length(void);

/// Names the calling thread (`prctl(PR_SET_NAME)`, which keeps the first 15
/// bytes): what `top -H`, `perf` and debuggers show.
void weft_set_thread_name(const char *name);

/// The CPUs the process may run on (its main thread's `sched_getaffinity`,
/// not a pinned loop's), lowest first: writes up to `capacity` of them to `cpus` and returns how many there
/// are, or -errno.
int weft_allowed_cpus(int *cpus, int capacity);

/// Pins the calling thread to `cpu`; returns 0 or an errno value.
int weft_pin_current_thread(int cpu);
/// Gives a thread about to be created the CPUs the process may run on (its
/// main thread's), not its creator's: a pinned loop's.
void weft_attributes_use_process_cpus(pthread_attr_t *attributes);
/// Widens the calling thread's CPUs to the process's for a moment (a pinned
/// loop about to fork a child, which inherits them); returns what to hand
/// `weft_restore_cpus`, NULL when nothing was changed.
void *weft_widen_cpus(void);
void weft_restore_cpus(void *saved);
/// Starts libuv's thread pool, once, on the process's CPUs: its threads,
/// shared by every loop, inherit the CPUs of the thread that first uses it.
void weft_start_thread_pool(void);

/// The cooperative budget of the task being polled: how many more ready
/// results its leaf futures may hand out before the task must yield.
/// `weft_budget_set(-1)` means unlimited (outside a task).
static inline void weft_budget_set(long budget) { weft_task_budget_storage = budget; }
/// The budget left (-1: unlimited).
static inline long weft_budget_get(void) { return weft_task_budget_storage; }
/// Takes one unit; false when the budget is spent (the caller should yield).
static inline _Bool weft_budget_consume(void) {
    if (weft_task_budget_storage < 0) return 1;
    if (weft_task_budget_storage == 0) return 0;
    weft_task_budget_storage--;
    return 1;
}
/// Gives back a unit taken by `weft_budget_consume` (the leaf was pending).
static inline void weft_budget_refund(void) {
    if (weft_task_budget_storage >= 0) weft_task_budget_storage++;
}

// MARK: - ThreadSanitizer

// Synchronization.Mutex takes its lock through a futex whose slow path runs in
// the uninstrumented standard library, so ThreadSanitizer does not see the
// happens-before edge it creates and reports accesses made under the lock as
// races. `weft_tsan_acquire`/`weft_tsan_release` announce the edge. Without
// TSan the weak symbols are null and these are a test and a branch.
void __tsan_acquire(void *address) __attribute__((weak));
void __tsan_release(void *address) __attribute__((weak));

static inline void weft_tsan_acquire(const void *address) {
    if (__tsan_acquire) __tsan_acquire((void *)address);
}

static inline void weft_tsan_release(const void *address) {
    if (__tsan_release) __tsan_release((void *)address);
}

// MARK: - Loops

/// For a loop whose runtime is gone but whose requests (thread-pool work, a
/// name lookup) cannot be cancelled: a detached thread runs the loop until
/// they complete, then closes it and calls `release(loop)`. Returns 0, or an
/// error code (the loop is then left alone).
int weft_finish_loop_in_background(uv_loop_t *loop, void (*release)(uv_loop_t *loop));

// MARK: - Memory

/// Returns the free pages of glibc's heaps to the OS (`malloc_trim(0)`).
void weft_release_free_memory(void);
/// Returns the whole pages inside `[start, start + length)` to the OS
/// (`madvise(MADV_DONTNEED)`): memory that stays allocated but unused, whose
/// pages read as zeros when touched again.
void weft_release_pages(void *start, size_t length);

// MARK: - Handles

/// A heap-allocated, initialised timer, or NULL with *error set.
uv_timer_t *weft_timer_new(uv_loop_t *loop, int *error);
/// A heap-allocated, initialised async handle, or NULL with *error set.
uv_async_t *weft_async_new(uv_loop_t *loop, uv_async_cb callback, int *error);
/// Clears `data` and closes the handle; its memory is freed in the close callback.
/// After this call no callback of the handle reaches its former owner.
void weft_close_and_free(uv_handle_t *handle);

/// A heap-allocated, initialised TCP handle, or NULL with *error set.
uv_tcp_t *weft_tcp_new(uv_loop_t *loop, int *error);

/// A heap-allocated, initialised pipe handle (not for passing handles), or
/// NULL with *error set.
uv_pipe_t *weft_pipe_new(uv_loop_t *loop, int *error);
/// A heap-allocated, initialised UDP handle, or NULL with *error set.
uv_udp_t *weft_udp_new(uv_loop_t *loop, int *error);

/// A heap-allocated, initialised poll handle watching `fd`, or NULL with
/// *error set. The handle does not own `fd`.
uv_poll_t *weft_poll_new(uv_loop_t *loop, int fd, int *error);
static inline uv_handle_t *weft_poll_handle(uv_poll_t *p) { return (uv_handle_t *)p; }

// MARK: - Listening sockets
//
// Weft accepts by itself (a poll handle on the listening socket) rather than
// through `uv_listen`: libuv 1.44 handles running out of descriptors on accept
// silently (its "EMFILE trick" closes the waiting connections and tells no
// one), and an operator must be able to see it.

/// Socket options applied between `socket` and `bind` by `weft_socket_bind`
/// (and by `weft_socket_configure` on any socket). A negative size or linger
/// leaves that option alone; `ipv6_only` is -1 (leave), 0 or 1.
typedef struct {
    _Bool reuse_address;
    _Bool reuse_port;
    int ipv6_only;
    int receive_buffer_size;
    int send_buffer_size;
    int linger_seconds;
} weft_socket_options;

/// Applies the buffer sizes and linger of `options` to `fd`; 0, or a negative
/// libuv error code with `*failed_call` naming the option.
int weft_socket_configure(int fd, const weft_socket_options *options, const char **failed_call);

/// A socket of `type` (`SOCK_STREAM` or `SOCK_DGRAM`) bound to `address`
/// (IPv4, IPv6 or `AF_UNIX` of `address_length` bytes): non-blocking,
/// close-on-exec, with `options` applied before `bind`; listening with
/// `backlog` when `backlog` > 0. Returns the descriptor, or a negative libuv
/// error code with `*failed_call` naming the call that failed.
int weft_socket_bind(const struct sockaddr *address, int address_length, int type,
                     const weft_socket_options *options, int backlog, const char **failed_call);

// MARK: - UDP sockets adopted by libuv
//
// Weft binds a UDP socket itself and hands it to `uv_udp_open`, which in libuv
// 1.44 (a) sets SO_REUSEADDR on every socket it adopts and (b) leaves unset
// the flag by which its TTL and multicast setters choose between the IPv4 and
// the IPv6 option (only libuv's own bind sets it), so on an adopted IPv6
// socket they would change IPv4 options that IPv6 datagrams ignore.

/// Sets SO_REUSEADDR of `fd` to `on`; 0 or a negative libuv error code.
int weft_socket_set_reuse_address(int fd, int on);

/// Binds the existing socket `fd` to `address`; 0 or a negative libuv error code.
int weft_socket_bind_existing(int fd, const struct sockaddr *address, int address_length);

/// Reads and so clears the error pending on `fd` (SO_ERROR: an ICMP error a
/// UDP socket's peer caused, kept until a receive or a send takes it); the
/// pending error as a libuv code, 0 for none.
int weft_socket_take_error(int fd);

/// An IP option of a UDP socket, set by `weft_udp_set_ip_option`.
typedef enum {
    /// `IP_TTL`, and `IPV6_UNICAST_HOPS` on an IPv6 socket.
    WEFT_UDP_TTL,
    /// `IP_MULTICAST_TTL`, and `IPV6_MULTICAST_HOPS` on an IPv6 socket.
    WEFT_UDP_MULTICAST_TTL,
    /// `IP_MULTICAST_LOOP`, and `IPV6_MULTICAST_LOOP` on an IPv6 socket.
    WEFT_UDP_MULTICAST_LOOP,
} weft_udp_ip_option;

/// Sets `option` of the UDP socket `fd` to `value`: the IPv4 option, and on
/// an IPv6 socket the IPv6 one too (an IPv6 socket that is not IPv6-only
/// also sends to IPv4 peers, with the IPv4 options). 0, or a negative libuv
/// error code with `*failed_call` naming the option.
int weft_udp_set_ip_option(int fd, weft_udp_ip_option option, int value, const char **failed_call);

/// A non-blocking, close-on-exec Unix stream socket connected to `address`
/// (a Unix connect completes at once or fails: `EAGAIN` when the listener's
/// backlog is full). Returns the descriptor or a negative libuv error code.
int weft_unix_connect(const struct sockaddr *address, int address_length);

/// The peer's process, user and group (`SO_PEERCRED`) of the Unix socket
/// `fd`; 0 or a negative libuv error code.
int weft_peer_credentials(int fd, int *pid, unsigned int *uid, unsigned int *gid);

/// The device and inode of `path` if it is a socket; 0 or a negative libuv
/// error code (`UV_ENOENT` when absent, `UV_EEXIST` when not a socket).
int weft_socket_file_identity(const char *path, unsigned long long *device, unsigned long long *inode);

/// Removes the socket file `path` if it still has this device and inode (the
/// socket Weft bound, not one somebody put in its place).
void weft_remove_socket_file(const char *path, unsigned long long device, unsigned long long inode);

/// Accepts one connection from `listener`: its descriptor (non-blocking,
/// close-on-exec), or a negative libuv error code (`UV_EAGAIN` when none is
/// waiting; `EINTR` is retried).
int weft_accept(int listener);

/// The loop's descriptor held in reserve for running out (`/dev/null`, in
/// libuv's own `emfile_fd` field: libuv opens it when the loop's first stream
/// is made and uses it only for `uv_listen`, which Weft does not use, so one
/// descriptor per loop serves both). Closing it makes room to accept the
/// waiting connections and close them, so that clients see a close, not a hang.
/// `weft_loop_release_reserve` closes it and returns whether there was one;
/// `weft_loop_take_reserve` opens it if it is not open and returns whether it
/// is now.
_Bool weft_loop_release_reserve(uv_loop_t *loop);
_Bool weft_loop_take_reserve(uv_loop_t *loop);

/// The address `fd` is bound to, written to `address`; 0 or a negative libuv
/// error code.
int weft_getsockname(int fd, struct sockaddr *address, int *length);

/// Closes `fd`, ignoring errors (a descriptor this process owns).
void weft_close_descriptor(int fd);

/// A heap-allocated, initialised signal handle, or NULL with *error set.
uv_signal_t *weft_signal_new(uv_loop_t *loop, int *error);
static inline uv_handle_t *weft_signal_handle(uv_signal_t *s) { return (uv_handle_t *)s; }
/// `uv_signal_start`, first saving the signal's disposition if no handle of
/// Weft's watches it yet.
int weft_signal_watch(uv_signal_t *handle, uv_signal_cb callback, int signum);
/// Closes and frees the handle (as `weft_close_and_free`); when it was the last
/// of Weft's handles watching its signal and libuv set the signal back to
/// `SIG_DFL`, restores the disposition `weft_signal_watch` saved (`SIG_IGN`
/// under nohup, a foreign handler). Never for SIGCHLD, which libuv's child
/// watchers own.
void weft_signal_close(uv_signal_t *handle);

/// `sendfile(2)` of up to `count` bytes of `in_fd` from `offset` to `out_fd`:
/// the bytes sent, or a negative libuv error (`UV_EAGAIN` when a non-blocking
/// socket is full). libuv 1.44's `uv_fs_sendfile` to a socket falls back to a
/// read/write loop that polls the socket, blocking its pool thread until a
/// slow peer reads; this one never waits.
long long weft_sendfile(int out_fd, int in_fd, long long offset, size_t count);

/// Copies from `in_fd` to `out_fd` through `buffer` (`block` bytes) until
/// `limit` bytes, the end of the input (`*ended` set) or an error, reading and
/// writing at the descriptors' positions where an offset is -1, else at the
/// offset (`pread`/`pwrite`, advanced by what was copied). `*copied` counts the
/// bytes written. Returns 0, or a negative libuv error with `*failed_write` set
/// when writing failed (else reading did). One pool job copying many blocks:
/// the thread hand-offs of a read and a write request per block cost more CPU
/// than the copy itself.
int weft_copy_blocks(int in_fd, long long in_offset, int out_fd, long long out_offset, void *buffer,
                     size_t block, long long limit, long long *copied, int *ended, int *failed_write);
/// `weft_copy_blocks`, in the kernel (`copy_file_range`) where both offsets
/// are given and the kernel can copy between the two files; through `buffer`
/// otherwise, or for what is left when the kernel refuses. `*failed_write` is
/// set for an error of the kernel's copy only when it is the writing side's
/// (no space, file too large).
int weft_copy_range(int in_fd, long long in_offset, int out_fd, long long out_offset, void *buffer,
                    size_t block, long long limit, long long *copied, int *ended, int *failed_write);
/// Whether `a` and `b` are open on one regular file (the same device and
/// inode, `fstat`): 1, else 0 (0 too when either cannot be read).
int weft_same_regular_file(int a, int b);
/// The size of the file open as `fd`, and where a write at the descriptor's
/// own position goes: its end when it appends (`O_APPEND`), else that
/// position. 0, or a negative libuv error.
int weft_write_position(int fd, long long *position, long long *size);

/// A heap-allocated, initialised file-system event handle, or NULL with *error set.
uv_fs_event_t *weft_fs_event_new(uv_loop_t *loop, int *error);
static inline uv_handle_t *weft_fs_event_handle(uv_fs_event_t *e) { return (uv_handle_t *)e; }

static inline uv_handle_t *weft_tcp_handle(uv_tcp_t *t) { return (uv_handle_t *)t; }
static inline uv_stream_t *weft_tcp_stream(uv_tcp_t *t) { return (uv_stream_t *)t; }
static inline uv_stream_t *weft_pipe_stream(uv_pipe_t *p) { return (uv_stream_t *)p; }
static inline uv_tcp_t *weft_stream_tcp(uv_stream_t *s) { return (uv_tcp_t *)s; }
static inline uv_pipe_t *weft_stream_pipe(uv_stream_t *s) { return (uv_pipe_t *)s; }
static inline uv_handle_t *weft_udp_handle(uv_udp_t *u) { return (uv_handle_t *)u; }
static inline uv_handle_t *weft_stream_handle(uv_stream_t *s) { return (uv_handle_t *)s; }
static inline uv_handle_t *weft_timer_handle(uv_timer_t *t) { return (uv_handle_t *)t; }
static inline uv_handle_t *weft_async_handle(uv_async_t *a) { return (uv_handle_t *)a; }

/// A heap-allocated terminal handle on `fd` (`uv_tty_init`, readable), or NULL
/// with *error set. It owns `fd` unless that is 0, 1 or 2: closing it closes
/// `fd`, or `fd` is closed at once when libuv reopened the terminal on a
/// descriptor of its own (a slave terminal), which closing it closes.
uv_tty_t *weft_tty_new(uv_loop_t *loop, int fd, int *error);
static inline uv_stream_t *weft_tty_stream(uv_tty_t *t) { return (uv_stream_t *)t; }

// MARK: - Child processes

/// Heap memory for a process handle, not initialised: `uv_spawn` initialises
/// it (even when it fails, after which it must be closed with
/// `weft_close_and_free`).
uv_process_t *weft_process_alloc(void);
static inline uv_handle_t *weft_process_handle(uv_process_t *p) { return (uv_handle_t *)p; }

/// Lists child `pid` with the process's one reaper thread, which reaps it
/// when it exits, for a child whose loop shut down before it exited: it
/// never stays a zombie. Returns 0, or a negative libuv error code: the
/// child could not be listed (no memory), or the reaper thread could not be
/// started (the child stays listed, and the next call tries again).
int weft_reap_in_background(int pid);

/// The name (such as `ECONNREFUSED`) and message (`connection refused`) of
/// libuv error `code`, written NUL-terminated into `name` and `message`.
/// Through `uv_err_name_r` and `uv_strerror_r`: `uv_err_name` and
/// `uv_strerror` leak a copy of their text at every call for a code their
/// table lacks. For such a code that is an errno (libuv 1.44 has no
/// `EDQUOT`, `ESTALE`, `EDEADLK`), the C library's name and message
/// (lower-cased, as libuv's), not "Unknown system error".
void weft_error_text(int code, char *name, size_t name_length, char *message, size_t message_length);

/// A new pseudo-terminal (`posix_openpt`, `grantpt`, `unlockpt`, then the
/// slave opened by its name), both ends close-on-exec and not made the
/// controlling terminal; 0, or a negative libuv error code. For tests of
/// terminal streams.
int weft_open_pseudo_terminal(int *master, int *slave);

// MARK: - Process

/// Ignores SIGPIPE for the whole process (once): a write to a closed socket then
/// fails with EPIPE instead of killing the process.
void weft_ignore_sigpipe(void);

/// Opens `/dev/null` onto each of descriptors 0, 1 and 2 that is closed (once
/// per process, as Rust's standard library does at startup). A process started
/// with one closed (`<&-`, a supervisor) otherwise gave that number to the next
/// descriptor opened (an accepted socket, the loop's epoll), which a child
/// spawned with its streams inherited then got as its standard stream.
void weft_fill_closed_standard_descriptors(void);

/// Stops glibc from handing the top of the heap back to the OS on its own
/// (`M_TRIM_THRESHOLD` 64 MiB, once per process; left alone when the user set
/// `MALLOC_TRIM_THRESHOLD_` or a `trim_threshold` tunable). A server's loops
/// free and allocate read buffers and arrays at a high rate; with glibc's
/// default the heap top shrinks and grows under them, and each regrowth faults
/// its pages in again (up to 466,000 page faults in 2 s with 256 streams).
/// Weft's `HeapTrim` still returns free memory after bursts (`malloc_trim`).
/// Also fixes glibc's mmap threshold at its initial 128 KiB.
void weft_configure_malloc(void);

// MARK: - Loop accounting

/// Handles that are active and referenced (what keeps `uv_run` from returning).
unsigned int weft_loop_active_handles(const uv_loop_t *loop);
/// Requests in flight (writes, connects, getaddrinfo, work, ...).
unsigned int weft_loop_active_requests(const uv_loop_t *loop);
/// Every handle on the loop that is not closing, active or not.
unsigned int weft_loop_open_handles(uv_loop_t *loop);

// MARK: - Measurement

/// Bytes the C allocator has handed out and not taken back (glibc `mallinfo2`:
/// heap chunks and mmapped ones), for benchmarks that report memory per operation.
size_t weft_heap_bytes_in_use(void);

#include "SwiftRuntime.h"

#endif
