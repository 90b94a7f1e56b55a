#define _GNU_SOURCE  // sched_getaffinity, CPU_SET, pthread_setaffinity_np
#include "CWeftSupport.h"
#include <malloc.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

WEFT_TLS void *weft_current_runtime_storage;
WEFT_TLS long weft_task_budget_storage = -1;
static WEFT_TLS uint64_t random_state;

static WEFT_TLS unsigned long long thread_identity;
static _Atomic unsigned long long last_thread_identity;

unsigned long long weft_thread_identity(void) {
    if (thread_identity == 0) {
        thread_identity = atomic_fetch_add_explicit(&last_thread_identity, 1, memory_order_relaxed) + 1;
    }
    return thread_identity;
}

/// A virtual clock: its time first (what `weft_virtual_clock` points at), then
/// whether it was uninstalled, the clock installed before it on its thread,
/// and two references: its owner's, and the chain's (the thread's pointer, or
/// the `previous` of the clock installed after it).
struct weft_virtual_clock_node {
    uint64_t nanoseconds;
    _Atomic int retired;
    _Atomic int references;
    struct weft_virtual_clock_node *previous;
};

/// The calling thread's newest clock; only this thread reads or changes the
/// chain below it.
static WEFT_TLS weft_virtual_clock_node *virtual_clock;

/// The clock of the loop this thread drives (for the span of its `block(on:)`),
/// which `weft_virtual_clock` returns whatever the chain holds: `real_time`
/// for a real-time loop, NULL while no loop is driven here.
static WEFT_TLS const uint64_t *driven_clock;
static const uint64_t real_time = 0;

const uint64_t *weft_virtual_clock_drive(const uint64_t *clock) {
    const uint64_t *previous = driven_clock;
    driven_clock = clock == NULL ? &real_time : clock;
    return previous;
}

void weft_virtual_clock_restore(const uint64_t *previous) { driven_clock = previous; }

static void release_virtual_clock(weft_virtual_clock_node *clock) {
    if (atomic_fetch_sub_explicit(&clock->references, 1, memory_order_acq_rel) == 1) free(clock);
}

/// Takes the uninstalled clocks off the top of the calling thread's chain
/// (those uninstalled out of order, or from another thread, leave once the
/// ones above them have).
static void prune_retired_clocks(void) {
    weft_virtual_clock_node *top = virtual_clock;
    while (top != NULL && atomic_load_explicit(&top->retired, memory_order_acquire)) {
        weft_virtual_clock_node *previous = top->previous;
        virtual_clock = previous;  // the chain's reference moves with it
        release_virtual_clock(top);
        top = previous;
    }
}

const uint64_t *weft_virtual_clock(void) {
    const uint64_t *driven = driven_clock;
    if (driven != NULL) return driven == &real_time ? NULL : driven;
    prune_retired_clocks();
    return virtual_clock == NULL ? NULL : &virtual_clock->nanoseconds;
}

weft_virtual_clock_node *weft_virtual_clock_install(uint64_t nanoseconds) {
    prune_retired_clocks();
    weft_virtual_clock_node *clock = malloc(sizeof *clock);
    if (clock == NULL) return NULL;
    clock->nanoseconds = nanoseconds;
    atomic_init(&clock->retired, 0);
    atomic_init(&clock->references, 2);
    clock->previous = virtual_clock;
    virtual_clock = clock;
    return clock;
}

uint64_t *weft_virtual_clock_time(weft_virtual_clock_node *clock) { return &clock->nanoseconds; }

void weft_virtual_clock_uninstall(weft_virtual_clock_node *clock) {
    atomic_store_explicit(&clock->retired, 1, memory_order_release);
    // On its own thread, it leaves there and then, even while a loop is
    // driven here (weft_virtual_clock prunes only while none is: a runtime
    // made and dropped on a loop's thread left its node for the thread's life).
    prune_retired_clocks();
}

size_t weft_virtual_clock_chain_length(void) {
    size_t length = 0;
    for (weft_virtual_clock_node *clock = virtual_clock; clock != NULL; clock = clock->previous) length += 1;
    return length;
}

void weft_virtual_clock_release(weft_virtual_clock_node *clock) { release_virtual_clock(clock); }

void weft_set_thread_name(const char *name) { prctl(PR_SET_NAME, name, 0, 0, 0); }

/* The CPUs the process may run on: its main thread's. A loop pinned to one
 * CPU narrows only its own thread's, and each thread or child it starts
 * inherits that (a child on one CPU, a group made on the loop of one loop). */
static int process_cpus(cpu_set_t *set) {
    CPU_ZERO(set);
    if (sched_getaffinity(getpid(), sizeof *set, set) == 0) return 0;
    CPU_ZERO(set);
    return sched_getaffinity(0, sizeof *set, set) == 0 ? 0 : -errno;
}

void weft_attributes_use_process_cpus(pthread_attr_t *attributes) {
    cpu_set_t set;
    if (process_cpus(&set) == 0) pthread_attr_setaffinity_np(attributes, sizeof set, &set);
}

void *weft_widen_cpus(void) {
    cpu_set_t own, all;
    if (process_cpus(&all) != 0) return NULL;
    CPU_ZERO(&own);
    if (pthread_getaffinity_np(pthread_self(), sizeof own, &own) != 0 || CPU_EQUAL(&own, &all)) return NULL;
    cpu_set_t *saved = malloc(sizeof *saved);
    if (saved == NULL) return NULL;
    *saved = own;
    if (pthread_setaffinity_np(pthread_self(), sizeof all, &all) != 0) {
        free(saved);
        return NULL;
    }
    return saved;
}

void weft_restore_cpus(void *saved) {
    if (saved == NULL) return;
    pthread_setaffinity_np(pthread_self(), sizeof(cpu_set_t), saved);
    free(saved);
}

static void no_work(uv_work_t *work) { (void)work; }
static void no_work_done(uv_work_t *work, int status) { (void)work; (void)status; }

static void start_thread_pool_once(void) {
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0) return;
    uv_work_t work;
    void *saved = weft_widen_cpus();
    if (uv_queue_work(&loop, &work, no_work, no_work_done) == 0) uv_run(&loop, UV_RUN_DEFAULT);
    weft_restore_cpus(saved);
    uv_loop_close(&loop);
}

void weft_start_thread_pool(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, start_thread_pool_once);
}

int weft_allowed_cpus(int *cpus, int capacity) {
    cpu_set_t set;
    int status = process_cpus(&set);
    if (status != 0) return status;
    int count = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, &set)) continue;
        if (count < capacity) cpus[count] = cpu;
        count++;
    }
    return count;
}

int weft_pin_current_thread(int cpu) {
    if (cpu < 0 || cpu >= CPU_SETSIZE) return EINVAL;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

void weft_set_current_runtime(void *runtime) { weft_current_runtime_storage = runtime; }

uint64_t weft_random(void) {
    uint64_t x = random_state;
    if (x == 0) {
        // Lazily seed from the thread's address-space layout and the clock.
        x = (uint64_t)(uintptr_t)&random_state ^ uv_hrtime() ^ 0x9E3779B97F4A7C15ull;
        if (x == 0) x = 1;
    }
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    random_state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

void weft_seed_random(uint64_t seed) { random_state = seed ? seed : 1; }

uint64_t weft_swap_random_state(uint64_t state) {
    uint64_t previous = random_state;
    random_state = state;
    return previous;
}

void weft_release_free_memory(void) { malloc_trim(0); }

void weft_release_pages(void *start, size_t length) {
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t first = ((uintptr_t)start + page - 1) & ~(page - 1);
    uintptr_t end = ((uintptr_t)start + length) & ~(page - 1);
    if (end > first) madvise((void *)first, end - first, MADV_DONTNEED);
}

struct loop_finisher {
    uv_loop_t *loop;
    void (*release)(uv_loop_t *loop);
};

static void *finish_loop(void *argument) {
    struct loop_finisher *finisher = argument;
    // Runs until no request or handle is active: the pool work completes and
    // its after-work callback runs here.
    while (uv_run(finisher->loop, UV_RUN_DEFAULT) != 0) {}
    if (uv_loop_close(finisher->loop) == 0) finisher->release(finisher->loop);
    free(finisher);
    return NULL;
}

int weft_finish_loop_in_background(uv_loop_t *loop, void (*release)(uv_loop_t *loop)) {
    struct loop_finisher *finisher = malloc(sizeof *finisher);
    if (finisher == NULL) return UV_ENOMEM;
    finisher->loop = loop;
    finisher->release = release;
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    weft_attributes_use_process_cpus(&attributes);
    pthread_t thread;
    int rc = pthread_create(&thread, &attributes, finish_loop, finisher);
    pthread_attr_destroy(&attributes);
    if (rc != 0) { free(finisher); return -rc; }
    return 0;
}

uv_timer_t *weft_timer_new(uv_loop_t *loop, int *error) {
    uv_timer_t *timer = malloc(sizeof *timer);
    if (timer == NULL) { *error = UV_ENOMEM; return NULL; }
    int rc = uv_timer_init(loop, timer);
    if (rc != 0) { free(timer); *error = rc; return NULL; }
    timer->data = NULL;
    return timer;
}

uv_async_t *weft_async_new(uv_loop_t *loop, uv_async_cb callback, int *error) {
    uv_async_t *async = malloc(sizeof *async);
    if (async == NULL) { *error = UV_ENOMEM; return NULL; }
    int rc = uv_async_init(loop, async, callback);
    if (rc != 0) { free(async); *error = rc; return NULL; }
    async->data = NULL;
    return async;
}

uv_tcp_t *weft_tcp_new(uv_loop_t *loop, int *error) {
    uv_tcp_t *tcp = malloc(sizeof *tcp);
    if (tcp == NULL) { *error = UV_ENOMEM; return NULL; }
    int rc = uv_tcp_init(loop, tcp);
    if (rc != 0) { free(tcp); *error = rc; return NULL; }
    tcp->data = NULL;
    return tcp;
}

uv_pipe_t *weft_pipe_new(uv_loop_t *loop, int *error) {
    uv_pipe_t *pipe = malloc(sizeof *pipe);
    if (pipe == NULL) { *error = UV_ENOMEM; return NULL; }
    int rc = uv_pipe_init(loop, pipe, 0);
    if (rc != 0) { free(pipe); *error = rc; return NULL; }
    pipe->data = NULL;
    return pipe;
}

uv_udp_t *weft_udp_new(uv_loop_t *loop, int *error) {
    uv_udp_t *udp = malloc(sizeof *udp);
    if (udp == NULL) { *error = UV_ENOMEM; return NULL; }
    int rc = uv_udp_init(loop, udp);
    if (rc != 0) { free(udp); *error = rc; return NULL; }
    udp->data = NULL;
    return udp;
}

uv_poll_t *weft_poll_new(uv_loop_t *loop, int fd, int *error) {
    uv_poll_t *poll = malloc(sizeof *poll);
    if (poll == NULL) { *error = UV_ENOMEM; return NULL; }
    int rc = uv_poll_init(loop, poll, fd);
    if (rc != 0) { free(poll); *error = rc; return NULL; }
    poll->data = NULL;
    return poll;
}

int weft_socket_configure(int fd, const weft_socket_options *options, const char **failed_call) {
    if (options->receive_buffer_size >= 0 &&
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &options->receive_buffer_size, sizeof(int)) != 0) {
        *failed_call = "setsockopt SO_RCVBUF";
        return uv_translate_sys_error(errno);
    }
    if (options->send_buffer_size >= 0 &&
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &options->send_buffer_size, sizeof(int)) != 0) {
        *failed_call = "setsockopt SO_SNDBUF";
        return uv_translate_sys_error(errno);
    }
    if (options->linger_seconds >= 0) {
        struct linger linger = { .l_onoff = 1, .l_linger = options->linger_seconds };
        if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, sizeof linger) != 0) {
            *failed_call = "setsockopt SO_LINGER";
            return uv_translate_sys_error(errno);
        }
    }
    return 0;
}

int weft_socket_bind(const struct sockaddr *address, int address_length, int type,
                     const weft_socket_options *options, int backlog, const char **failed_call) {
    int fd = socket(address->sa_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) { *failed_call = "socket"; return uv_translate_sys_error(errno); }
    int one = 1;
    const char *call = NULL;
    int inet = address->sa_family == AF_INET || address->sa_family == AF_INET6;
    if (inet && options->reuse_address && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
        call = "setsockopt SO_REUSEADDR";
    else if (inet && options->reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
        call = "setsockopt SO_REUSEPORT";
    else if (address->sa_family == AF_INET6 && options->ipv6_only >= 0 &&
             setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &options->ipv6_only, sizeof(int)) != 0)
        call = "setsockopt IPV6_V6ONLY";
    else if (weft_socket_configure(fd, options, &call) != 0)
        ;
    else if (bind(fd, address, (socklen_t)address_length) != 0)
        call = "bind";
    else if (backlog > 0 && listen(fd, backlog) != 0)
        call = "listen";
    if (call == NULL) return fd;
    int error = uv_translate_sys_error(errno);
    close(fd);
    // Bound to a path, a Unix socket made its file: a failed listen must not
    // leave it behind, or binding again would find the path taken.
    const struct sockaddr_un *unix_address = (const struct sockaddr_un *)address;
    if (strcmp(call, "listen") == 0 && address->sa_family == AF_UNIX && unix_address->sun_path[0] != 0)
        unlink(unix_address->sun_path);
    *failed_call = call;
    return error;
}

int weft_unix_connect(const struct sockaddr *address, int address_length) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return uv_translate_sys_error(errno);
    int rc;
    do rc = connect(fd, address, (socklen_t)address_length);
    while (rc != 0 && errno == EINTR);
    if (rc == 0) return fd;
    int error = uv_translate_sys_error(errno);
    close(fd);
    return error;
}

int weft_socket_set_reuse_address(int fd, int on) {
    return setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) == 0 ? 0 : uv_translate_sys_error(errno);
}

int weft_socket_bind_existing(int fd, const struct sockaddr *address, int address_length) {
    return bind(fd, address, (socklen_t)address_length) == 0 ? 0 : uv_translate_sys_error(errno);
}

int weft_socket_take_error(int fd) {
    int error = 0;
    socklen_t length = sizeof error;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0) return uv_translate_sys_error(errno);
    return error == 0 ? 0 : uv_translate_sys_error(error);
}

int weft_udp_set_ip_option(int fd, weft_udp_ip_option option, int value, const char **failed_call) {
    static const struct { int ipv4; const char *ipv4_name; int ipv6; const char *ipv6_name; } names[] = {
        [WEFT_UDP_TTL] = { IP_TTL, "setsockopt IP_TTL", IPV6_UNICAST_HOPS, "setsockopt IPV6_UNICAST_HOPS" },
        [WEFT_UDP_MULTICAST_TTL] = { IP_MULTICAST_TTL, "setsockopt IP_MULTICAST_TTL",
                                     IPV6_MULTICAST_HOPS, "setsockopt IPV6_MULTICAST_HOPS" },
        [WEFT_UDP_MULTICAST_LOOP] = { IP_MULTICAST_LOOP, "setsockopt IP_MULTICAST_LOOP",
                                      IPV6_MULTICAST_LOOP, "setsockopt IPV6_MULTICAST_LOOP" },
    };
    int domain = AF_INET;
    socklen_t length = sizeof domain;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &length) != 0) {
        *failed_call = "getsockopt SO_DOMAIN";
        return uv_translate_sys_error(errno);
    }
    if (domain == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, names[option].ipv6, &value, sizeof value) != 0) {
        *failed_call = names[option].ipv6_name;
        return uv_translate_sys_error(errno);
    }
    if (setsockopt(fd, IPPROTO_IP, names[option].ipv4, &value, sizeof value) != 0) {
        *failed_call = names[option].ipv4_name;
        return uv_translate_sys_error(errno);
    }
    return 0;
}

int weft_peer_credentials(int fd, int *pid, unsigned int *uid, unsigned int *gid) {
    struct ucred credentials;
    socklen_t length = sizeof credentials;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0) return uv_translate_sys_error(errno);
    *pid = credentials.pid;
    *uid = credentials.uid;
    *gid = credentials.gid;
    return 0;
}

int weft_socket_file_identity(const char *path, unsigned long long *device, unsigned long long *inode) {
    struct stat status;
    if (lstat(path, &status) != 0) return uv_translate_sys_error(errno);
    if (!S_ISSOCK(status.st_mode)) return UV_EEXIST;
    *device = status.st_dev;
    *inode = status.st_ino;
    return 0;
}

void weft_remove_socket_file(const char *path, unsigned long long device, unsigned long long inode) {
    unsigned long long current_device, current_inode;
    if (weft_socket_file_identity(path, &current_device, &current_inode) != 0) return;
    if (current_device == device && current_inode == inode) unlink(path);
}

int weft_accept(int listener) {
    int fd;
    do fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    return fd >= 0 ? fd : uv_translate_sys_error(errno);
}

_Bool weft_loop_release_reserve(uv_loop_t *loop) {
    if (loop->emfile_fd == -1) return 0;
    close(loop->emfile_fd);
    loop->emfile_fd = -1;
    return 1;
}

_Bool weft_loop_take_reserve(uv_loop_t *loop) {
    if (loop->emfile_fd == -1) loop->emfile_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    return loop->emfile_fd != -1;
}

int weft_getsockname(int fd, struct sockaddr *address, int *length) {
    socklen_t size = (socklen_t)*length;
    if (getsockname(fd, address, &size) != 0) return uv_translate_sys_error(errno);
    *length = (int)size;
    return 0;
}

void weft_close_descriptor(int fd) { close(fd); }

uv_signal_t *weft_signal_new(uv_loop_t *loop, int *error) {
    uv_signal_t *signal_handle = malloc(sizeof *signal_handle);
    if (signal_handle == NULL) { *error = UV_ENOMEM; return NULL; }
    int rc = uv_signal_init(loop, signal_handle);
    if (rc != 0) { free(signal_handle); *error = rc; return NULL; }
    signal_handle->data = NULL;
    return signal_handle;
}

/* The disposition each signal had before Weft first watched it, and how many
 * of Weft's handles watch it now (all of libuv's signal handles in a process
 * that uses Weft are Weft's, but for a loop's own SIGCHLD watcher). libuv
 * sets a signal back to SIG_DFL when its last handle for it stops: a process
 * started under nohup (SIGHUP ignored), or a foreign handler, lost that once
 * a stream went. Locked around libuv's start and close, which take libuv's
 * own signal lock inside this one, always in this order.
 *
 * SIGCHLD is never restored: it is libuv's. uv_spawn starts the loop's child
 * watcher (a SIGCHLD handle) under libuv's lock alone, so it could install
 * libuv's handler between the check below and the write, which put SIG_DFL
 * back over it: that loop never heard of its children's exits again (every
 * wait hung, the children stayed zombies). Seen with `weft-bench
 * sigchld-stream-churn` (a loop churning SIGCHLD streams beside one spawning
 * /bin/true): a wait hung after 470 to 7,500 spawns in half the 10 s runs. */
static pthread_mutex_t weft_signal_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    int watchers;
    struct sigaction previous;
} weft_signal_table[NSIG];

int weft_signal_watch(uv_signal_t *handle, uv_signal_cb callback, int signum) {
    if (signum <= 0 || signum >= NSIG) return uv_signal_start(handle, callback, signum);  /* libuv's UV_EINVAL */
    pthread_mutex_lock(&weft_signal_lock);
    int saved = weft_signal_table[signum].watchers > 0
        || sigaction(signum, NULL, &weft_signal_table[signum].previous) == 0;
    int rc = uv_signal_start(handle, callback, signum);
    if (rc == 0 && saved) weft_signal_table[signum].watchers++;
    pthread_mutex_unlock(&weft_signal_lock);
    return rc;
}

void weft_signal_close(uv_signal_t *handle) {
    int signum = handle->signum; /* 0 unless a start succeeded */
    pthread_mutex_lock(&weft_signal_lock);
    weft_close_and_free((uv_handle_t *)handle);
    if (signum > 0 && signum < NSIG && weft_signal_table[signum].watchers > 0
        && --weft_signal_table[signum].watchers == 0 && signum != SIGCHLD) {
        /* Only if libuv let go of it too (no other libuv handle watches it). */
        struct sigaction now;
        if (sigaction(signum, NULL, &now) == 0 && !(now.sa_flags & SA_SIGINFO) && now.sa_handler == SIG_DFL) {
            sigaction(signum, &weft_signal_table[signum].previous, NULL);
        }
    }
    pthread_mutex_unlock(&weft_signal_lock);
}

uv_tty_t *weft_tty_new(uv_loop_t *loop, int fd, int *error) {
    uv_tty_t *tty = malloc(sizeof *tty);
    if (tty == NULL) { *error = UV_ENOMEM; return NULL; }
    int rc = uv_tty_init(loop, tty, fd, 1);
    if (rc != 0) { free(tty); *error = rc; return NULL; }
    tty->data = NULL;
    /* On a terminal's slave side libuv reopens the terminal on a descriptor of
     * its own, which the handle uses and closes, and makes `fd` a duplicate of
     * it: closed here, since nothing else would (the standard ones stay). */
    uv_os_fd_t used;
    if (uv_fileno((uv_handle_t *)tty, &used) == 0 && used != fd && fd > STDERR_FILENO) close(fd);
    return tty;
}

uv_process_t *weft_process_alloc(void) {
    uv_process_t *process = calloc(1, sizeof *process);
    return process;
}

/* The reaper: one thread for the whole process, started at the first child
 * a loop abandons at its shutdown, that reaps each such child when it exits,
 * whatever loop it came from. It sleeps in poll(2) on a pidfd per child
 * (readable once the child exited), so it costs nothing while they run; a
 * child whose pidfd cannot be opened (a kernel before 5.3, out of
 * descriptors) is asked with waitpid(WNOHANG) every REAPER_POLL_MS instead.
 * One thread for all: a thread per child, blocked in waitpid, made a
 * thousand threads for a thousand abandoned children, and a thread that
 * could not be created (a limit on processes) left its child a zombie
 * without a word. A child listed stays listed until reaped: if the thread
 * cannot be started, the next abandoned child tries again. */
#define REAPER_POLL_MS 100

struct reaped_child { pid_t pid; int pidfd; };

static pthread_mutex_t reaper_lock = PTHREAD_MUTEX_INITIALIZER;
static struct reaped_child *reaper_children;
static size_t reaper_count, reaper_capacity;
/* An eventfd written when a child is listed, to wake the thread's poll. */
static int reaper_wake = -1;
static int reaper_started;

/* Reaps the listed children that exited (or are no longer ours: ECHILD). */
static void reap_exited_locked(void) {
    for (size_t i = 0; i < reaper_count;) {
        pid_t rc;
        do { rc = waitpid(reaper_children[i].pid, NULL, WNOHANG); } while (rc < 0 && errno == EINTR);
        if (rc == 0) { i++; continue; }
        if (reaper_children[i].pidfd >= 0) close(reaper_children[i].pidfd);
        reaper_children[i] = reaper_children[--reaper_count];
    }
}

static void *reaper_main(void *unused) {
    (void)unused;
    struct pollfd *polled = NULL;
    size_t polled_capacity = 0;
    for (;;) {
        pthread_mutex_lock(&reaper_lock);
        reap_exited_locked();
        /* Without its eventfd (none could be made) nothing wakes it for a
         * child listed later: it looks every REAPER_POLL_MS instead. */
        int timeout = reaper_wake >= 0 ? -1 : REAPER_POLL_MS;
        if (polled_capacity < reaper_count + 1) {
            struct pollfd *grown = realloc(polled, (reaper_count + 1) * sizeof *polled);
            if (grown != NULL) { polled = grown; polled_capacity = reaper_count + 1; }
        }
        size_t count = 0;
        if (polled_capacity >= reaper_count + 1) {
            polled[count++] = (struct pollfd){ .fd = reaper_wake, .events = POLLIN };
            for (size_t i = 0; i < reaper_count; i++) {
                if (reaper_children[i].pidfd >= 0) {
                    polled[count++] = (struct pollfd){ .fd = reaper_children[i].pidfd, .events = POLLIN };
                } else {
                    timeout = REAPER_POLL_MS;
                }
            }
        } else {
            timeout = REAPER_POLL_MS;  /* no memory for the list: ask them all in turn */
        }
        pthread_mutex_unlock(&reaper_lock);
        if (count == 0) {
            usleep(REAPER_POLL_MS * 1000);
            continue;
        }
        if (poll(polled, count, timeout) > 0 && (polled[0].revents & POLLIN)) {
            uint64_t added;
            (void)!read(reaper_wake, &added, sizeof added);
        }
    }
    return NULL;
}

int weft_reap_in_background(int pid) {
    int pidfd = -1;
#ifdef SYS_pidfd_open
    pidfd = (int)syscall(SYS_pidfd_open, pid, 0);  /* close-on-exec, always */
#endif
    pthread_mutex_lock(&reaper_lock);
    int result = 0;
    if (reaper_wake < 0) reaper_wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (reaper_count == reaper_capacity) {
        size_t capacity = reaper_capacity == 0 ? 16 : reaper_capacity * 2;
        struct reaped_child *grown = realloc(reaper_children, capacity * sizeof *grown);
        if (grown == NULL) {
            pthread_mutex_unlock(&reaper_lock);
            if (pidfd >= 0) close(pidfd);
            return UV_ENOMEM;
        }
        reaper_children = grown;
        reaper_capacity = capacity;
    }
    reaper_children[reaper_count++] = (struct reaped_child){ .pid = pid, .pidfd = pidfd };
    if (!reaper_started) {
        pthread_t thread;
        pthread_attr_t attributes;
        pthread_attr_init(&attributes);
        pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attributes, 64 * 1024);
        weft_attributes_use_process_cpus(&attributes);
        int rc = pthread_create(&thread, &attributes, reaper_main, NULL);
        pthread_attr_destroy(&attributes);
        if (rc == 0) {
            reaper_started = 1;
            pthread_setname_np(thread, "weft-reaper");
        } else {
            result = uv_translate_sys_error(rc);
        }
    }
    int wake = reaper_wake;
    pthread_mutex_unlock(&reaper_lock);
    if (wake >= 0) {
        uint64_t one = 1;
        (void)!write(wake, &one, sizeof one);
    }
    return result;
}

void weft_error_text(int code, char *name, size_t name_length, char *message, size_t message_length) {
    uv_err_name_r(code, name, name_length);
    uv_strerror_r(code, message, message_length);
    static const char unknown[] = "Unknown system error";
    if (code >= 0 || strncmp(name, unknown, sizeof unknown - 1) != 0) return;
    const char *known = strerrorname_np(-code);
    if (known == NULL) return;
    snprintf(name, name_length, "%s", known);
    char buffer[256];
    const char *text = strerror_r(-code, buffer, sizeof buffer);
    snprintf(message, message_length, "%s", text);
    if (message[0] >= 'A' && message[0] <= 'Z' && !(message[1] >= 'A' && message[1] <= 'Z')) message[0] += 'a' - 'A';
}

int weft_open_pseudo_terminal(int *master, int *slave) {
    int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (m < 0) return uv_translate_sys_error(errno);
    char name[128];
    if (grantpt(m) != 0 || unlockpt(m) != 0 || ptsname_r(m, name, sizeof name) != 0) {
        int error = errno;
        close(m);
        return uv_translate_sys_error(error);
    }
    int s = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (s < 0) {
        int error = errno;
        close(m);
        return uv_translate_sys_error(error);
    }
    *master = m;
    *slave = s;
    return 0;
}

static pthread_once_t sigpipe_once = PTHREAD_ONCE_INIT;
long long weft_sendfile(int out_fd, int in_fd, long long offset, size_t count) {
    off_t position = (off_t)offset;
    ssize_t sent;
    do sent = sendfile(out_fd, in_fd, &position, count);
    while (sent == -1 && errno == EINTR);
    return sent < 0 ? -errno : (long long)sent;  /* libuv errors are -errno on Linux */
}

int weft_copy_blocks(int in_fd, long long in_offset, int out_fd, long long out_offset, void *buffer,
                     size_t block, long long limit, long long *copied, int *ended, int *failed_write) {
    *copied = 0;
    *ended = 0;
    *failed_write = 0;
    while (*copied < limit) {
        /* Never past `limit`: a range's copy ends at its count. */
        size_t want = limit - *copied < (long long)block ? (size_t)(limit - *copied) : block;
        ssize_t count;
        do count = in_offset < 0 ? read(in_fd, buffer, want) : pread(in_fd, buffer, want, (off_t)(in_offset + *copied));
        while (count == -1 && errno == EINTR);
        if (count < 0) return -errno;
        if (count == 0) { *ended = 1; return 0; }
        ssize_t written = 0;
        while (written < count) {
            ssize_t result;
            do result = out_offset < 0
                ? write(out_fd, (char *)buffer + written, (size_t)(count - written))
                : pwrite(out_fd, (char *)buffer + written, (size_t)(count - written), (off_t)(out_offset + *copied + written));
            while (result == -1 && errno == EINTR);
            if (result <= 0) {
                int error = result < 0 ? -errno : UV_EIO;
                /* Read at the descriptor's position, the bytes not written go
                 * back to it, to be copied again (a pipe cannot: they are lost). */
                if (in_offset < 0) lseek(in_fd, -(off_t)(count - written), SEEK_CUR);
                *copied += written;
                *failed_write = 1;
                return error;
            }
            written += result;
        }
        *copied += count;
    }
    return 0;
}

int weft_copy_range(int in_fd, long long in_offset, int out_fd, long long out_offset, void *buffer,
                    size_t block, long long limit, long long *copied, int *ended, int *failed_write) {
    *copied = 0;
    *ended = 0;
    *failed_write = 0;
    /* In the kernel first; a descriptor appending (no offset of its own
     * here) goes through the buffer, copy_file_range refusing O_APPEND. */
    if (in_offset >= 0 && out_offset >= 0) {
        loff_t in_at = in_offset, out_at = out_offset;
        while (*copied < limit) {
            long long rest = limit - *copied;
            ssize_t count = copy_file_range(in_fd, &in_at, out_fd, &out_at, (size_t)(rest < (1LL << 30) ? rest : (1LL << 30)), 0);
            if (count > 0) { *copied += count; continue; }
            if (count < 0 && errno == EINTR) continue;
            if (count < 0 && (errno == ENOSPC || errno == EFBIG || errno == EDQUOT)) {
                *failed_write = 1;
                return -errno;
            }
            /* Anything else, the buffer does the rest with its reads and
             * writes apart: files the kernel cannot copy between (EXDEV,
             * EINVAL, ...), an error that may be either side's (EPERM of a
             * sealed or immutable output, EIO, ETXTBSY), which it then names
             * rightly, and 0, the end or a file the kernel copies nothing from
             * (procfs and sysfs before Linux 5.19), which its read tells. */
            break;
        }
        if (*copied >= limit) return 0;
    }
    long long done = *copied, more = 0;
    int result = weft_copy_blocks(in_fd, in_offset < 0 ? -1 : in_offset + done, out_fd, out_offset < 0 ? -1 : out_offset + done,
                                  buffer, block, limit - done, &more, ended, failed_write);
    *copied = done + more;
    return result;
}

int weft_same_regular_file(int a, int b) {
    struct stat first, second;
    if (fstat(a, &first) != 0 || fstat(b, &second) != 0) return 0;
    return S_ISREG(first.st_mode) && first.st_dev == second.st_dev && first.st_ino == second.st_ino;
}

int weft_write_position(int fd, long long *position, long long *size) {
    struct stat status;
    if (fstat(fd, &status) != 0) return -errno;
    *size = (long long)status.st_size;
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0) return -errno;
    off_t offset = (flags & O_APPEND) ? status.st_size : lseek(fd, 0, SEEK_CUR);
    if (offset < 0) return -errno;
    *position = (long long)offset;
    return 0;
}

uv_fs_event_t *weft_fs_event_new(uv_loop_t *loop, int *error) {
    uv_fs_event_t *event_handle = malloc(sizeof *event_handle);
    if (event_handle == NULL) { *error = UV_ENOMEM; return NULL; }
    int rc = uv_fs_event_init(loop, event_handle);
    if (rc != 0) { free(event_handle); *error = rc; return NULL; }
    event_handle->data = NULL;
    return event_handle;
}

static void ignore_sigpipe_once(void) { signal(SIGPIPE, SIG_IGN); }
void weft_ignore_sigpipe(void) { pthread_once(&sigpipe_once, ignore_sigpipe_once); }

static pthread_once_t standard_descriptors_once = PTHREAD_ONCE_INIT;
static void fill_closed_standard_descriptors_once(void) {
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
        /* The lowest free number: this one, the lower ones being open. Another
         * number only if another thread took this one meanwhile: theirs. */
        int opened = open("/dev/null", O_RDWR);  /* whichever of 0, 1, 2 it lands on */
        if (opened > 2) close(opened);
    }
}
void weft_fill_closed_standard_descriptors(void) {
    pthread_once(&standard_descriptors_once, fill_closed_standard_descriptors_once);
}

static pthread_once_t malloc_once = PTHREAD_ONCE_INIT;
static void configure_malloc_once(void) {
    const char *tunables = getenv("GLIBC_TUNABLES");
    if (getenv("MALLOC_TRIM_THRESHOLD_") != NULL || (tunables != NULL && strstr(tunables, "trim_threshold") != NULL))
        return; /* the user chose */
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
}
void weft_configure_malloc(void) { pthread_once(&malloc_once, configure_malloc_once); }

static void free_on_close(uv_handle_t *handle) { free(handle); }

void weft_close_and_free(uv_handle_t *handle) {
    handle->data = NULL;
    uv_close(handle, free_on_close);
}

unsigned int weft_loop_active_handles(const uv_loop_t *loop) { return loop->active_handles; }
unsigned int weft_loop_active_requests(const uv_loop_t *loop) { return loop->active_reqs.count; }

static void count_open(uv_handle_t *handle, void *arg) {
    if (!uv_is_closing(handle)) (*(unsigned int *)arg)++;
}

unsigned int weft_loop_open_handles(uv_loop_t *loop) {
    unsigned int count = 0;
    uv_walk(loop, count_open, &count);
    return count;
}

size_t weft_heap_bytes_in_use(void) {
    // Chunks served from mmap (hblkhd) too: with the trim threshold set
    // (weft_configure_malloc), every block of 128 KiB or more is one, such as
    // a timer wheel's node array, which uordblks alone left out.
    struct mallinfo2 info = mallinfo2();
    return info.uordblks + info.hblkhd;
}
