/*
 * echo-server.c - reference libuv TCP echo server (baseline for echo-load).
 *
 * Usage: echo-server --port P [--host 127.0.0.1] [--threads N]   (port 0 = ephemeral)
 *
 * One uv_loop, listen backlog 1024. Prints "listening on HOST:PORT" (the
 * real bound port) and flushes stdout.
 *
 * --threads N: the many-loops baseline (also with N = 1: the same code path). N threads, each with its own
 * uv_loop and its own listener on the same address with SO_REUSEPORT (the
 * socket is made with uv_tcp_init_ex, the option set, then bound); the
 * kernel spreads connections over them. Everything below is per thread (the
 * loop and the buffer pool are thread-local). On SIGINT/SIGTERM the main
 * thread prints the connections each loop accepted
 * ("conns_per_loop=a,b,...") and exits 0 without closing the loops.
 *
 * - Read buffers come from a free-list of 64 KiB buffers: the alloc callback
 *   pops one (malloc only if the list is empty), the read callback pushes it
 *   back, so there is no malloc per read in steady state and an idle
 *   connection holds no buffer.
 * - Echo: uv_try_write of everything read; whatever was not written (partial
 *   write or UV_EAGAIN) is copied into one malloc'd write request and queued
 *   with uv_write; freed in the write callback.
 * - Backpressure: queued bytes are counted per connection; above 1 MiB the
 *   connection stops reading, and resumes once the queue drains below 256 KiB.
 * - EOF: close at once if nothing is queued, otherwise uv_shutdown (runs after
 *   the queued writes) and close in its callback. Errors/resets: close.
 * - SIGINT/SIGTERM: close every handle, run the loop dry, exit 0.
 * - SIGPIPE is ignored; TCP_NODELAY is set on accepted connections.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define BUF_SIZE (64 * 1024)
#define POOL_MAX 64
#define HIGH_WATER (1024 * 1024)
#define LOW_WATER (256 * 1024)

typedef struct {
    uv_tcp_t tcp; /* must be first */
    uv_shutdown_t shutdown_req;
    size_t queued;  /* bytes in uv_write requests not yet completed */
    unsigned paused : 1;  /* reading stopped for backpressure */
    unsigned eof : 1;     /* peer sent EOF */
    unsigned shutting : 1;
} conn_t;

typedef struct {
    uv_write_t req;
    conn_t *conn;
    size_t len;
    char data[];
} write_req_t;

static __thread uv_loop_t *loop;
static __thread uv_tcp_t server;
static uv_signal_t sig_int, sig_term;
/* --threads mode: connections accepted by each thread's loop. */
static __thread long *accepted_here;

/* ---- buffer pool ---- */

typedef struct pool_buf {
    struct pool_buf *next;
} pool_buf_t;

static __thread pool_buf_t *pool_head;
static __thread int pool_count;

static char *pool_get(void) {
    pool_buf_t *b = pool_head;
    if (b) {
        pool_head = b->next;
        pool_count--;
        return (char *)b;
    }
    return malloc(BUF_SIZE);
}

static void pool_put(char *p) {
    if (!p)
        return;
    if (pool_count >= POOL_MAX) {
        free(p);
        return;
    }
    pool_buf_t *b = (pool_buf_t *)p;
    b->next = pool_head;
    pool_head = b;
    pool_count++;
}

static void pool_drain(void) {
    while (pool_head) {
        pool_buf_t *b = pool_head;
        pool_head = b->next;
        free(b);
    }
    pool_count = 0;
}

/* ---- connections ---- */

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void on_conn_close(uv_handle_t *h) { free(h); }

static void conn_close(conn_t *c) {
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, on_conn_close);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)h;
    (void)suggested;
    char *p = pool_get();
    *buf = uv_buf_init(p, p ? BUF_SIZE : 0);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
    (void)status;
    conn_close((conn_t *)req->handle);
}

/* Peer sent EOF: close now if nothing is queued, else after the writes. */
static void conn_eof(conn_t *c) {
    c->eof = 1;
    uv_read_stop((uv_stream_t *)&c->tcp);
    if (c->queued == 0) {
        conn_close(c);
        return;
    }
    c->shutting = 1;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
        conn_close(c);
}

static void on_write(uv_write_t *req, int status) {
    write_req_t *w = (write_req_t *)req;
    conn_t *c = w->conn;
    c->queued -= w->len;
    free(w);
    if (uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (c->paused && !c->eof && c->queued < LOW_WATER) {
        c->paused = 0;
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
            conn_close(c);
    }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    conn_t *c = (conn_t *)s;
    if (nread > 0) {
        uv_buf_t out = uv_buf_init(buf->base, (unsigned)nread);
        int r = uv_try_write(s, &out, 1);
        size_t done;
        if (r >= 0) {
            done = (size_t)r;
        } else if (r == UV_EAGAIN) {
            done = 0;
        } else {
            pool_put(buf->base);
            conn_close(c);
            return;
        }
        if (done < (size_t)nread) {
            size_t rest = (size_t)nread - done;
            write_req_t *w = malloc(sizeof *w + rest);
            if (!w) {
                pool_put(buf->base);
                conn_close(c);
                return;
            }
            memcpy(w->data, buf->base + done, rest);
            w->conn = c;
            w->len = rest;
            uv_buf_t wb = uv_buf_init(w->data, (unsigned)rest);
            r = uv_write(&w->req, s, &wb, 1, on_write);
            if (r != 0) {
                free(w);
                pool_put(buf->base);
                conn_close(c);
                return;
            }
            c->queued += rest;
            if (c->queued > HIGH_WATER && !c->paused) {
                c->paused = 1;
                uv_read_stop(s);
            }
        }
        pool_put(buf->base);
        return;
    }
    pool_put(buf->base);
    if (nread == 0) /* EAGAIN */
        return;
    if (nread == UV_EOF)
        conn_eof(c);
    else
        conn_close(c); /* ECONNRESET, ENOBUFS, ... */
}

static void on_connection(uv_stream_t *srv, int status) {
    if (status < 0) {
        fprintf(stderr, "echo-server: connection error: %s\n", uv_strerror(status));
        return;
    }
    conn_t *c = calloc(1, sizeof *c);
    if (!c) {
        fprintf(stderr, "echo-server: out of memory\n");
        return;
    }
    uv_tcp_init(loop, &c->tcp);
    if (uv_accept(srv, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (accepted_here)
        __atomic_fetch_add(accepted_here, 1, __ATOMIC_RELAXED);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        conn_close(c);
}

/* ---- shutdown on signal ---- */

static void close_walk_cb(uv_handle_t *h, void *arg) {
    (void)arg;
    if (uv_is_closing(h))
        return;
    if (h == (uv_handle_t *)&server || h == (uv_handle_t *)&sig_int || h == (uv_handle_t *)&sig_term)
        uv_close(h, NULL);
    else if (h->type == UV_TCP)
        uv_close(h, on_conn_close);
    else
        uv_close(h, NULL);
}

static void on_signal(uv_signal_t *s, int signum) {
    (void)s;
    (void)signum;
    uv_walk(loop, close_walk_cb, NULL);
}

/* ---- main ---- */

static void usage(void) {
    fprintf(stderr, "usage: echo-server --port P [--host 127.0.0.1] [--threads N]\n");
    exit(2);
}

/* ---- --threads N: a loop per thread, a SO_REUSEPORT listener on each ---- */

typedef struct {
    pthread_t thread;
    struct sockaddr_storage addr;
    long accepted;
    int ready; /* 1 listening, -1 failed */
    pthread_mutex_t *mutex;
    pthread_cond_t *cond;
} worker_t;

/* Binds a SO_REUSEPORT listener on this thread's loop; 0 or a libuv error. */
static int listen_reuseport(const struct sockaddr *addr) {
    int r = uv_tcp_init_ex(loop, &server, addr->sa_family);
    uv_os_fd_t fd;
    int one = 1;
    if (r == 0)
        r = uv_fileno((uv_handle_t *)&server, &fd);
    if (r == 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
        r = uv_translate_sys_error(errno);
    if (r == 0)
        r = uv_tcp_bind(&server, addr, 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&server, 1024, on_connection);
    return r;
}

static void *worker_main(void *arg) {
    worker_t *w = arg;
    loop = malloc(sizeof *loop);
    uv_loop_init(loop);
    accepted_here = &w->accepted;
    int r = listen_reuseport((const struct sockaddr *)&w->addr);
    if (r != 0)
        fprintf(stderr, "echo-server: listen: %s\n", uv_strerror(r));
    else {
        /* Port 0: report the port the first listener got. */
        int len = sizeof w->addr;
        uv_tcp_getsockname(&server, (struct sockaddr *)&w->addr, &len);
    }
    pthread_mutex_lock(w->mutex);
    w->ready = r == 0 ? 1 : -1;
    pthread_cond_broadcast(w->cond);
    pthread_mutex_unlock(w->mutex);
    if (r == 0)
        uv_run(loop, UV_RUN_DEFAULT);
    return NULL;
}

static int run_threads(const struct sockaddr_storage *addr, int threads) {
    pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
    worker_t *workers = calloc((size_t)threads, sizeof *workers);
    /* SIGINT and SIGTERM are taken by sigwait on this thread; the workers
       inherit the blocked mask. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    for (int i = 0; i < threads; i++) {
        workers[i].addr = i == 0 ? *addr : workers[0].addr;
        workers[i].mutex = &mutex;
        workers[i].cond = &cond;
        pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]);
        pthread_mutex_lock(&mutex);
        while (workers[i].ready == 0)
            pthread_cond_wait(&cond, &mutex);
        pthread_mutex_unlock(&mutex);
        if (workers[i].ready < 0)
            return 1;
    }
    char name[64];
    struct sockaddr_storage *bound = &workers[0].addr;
    if (bound->ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)bound, name, sizeof name);
        printf("listening on [%s]:%d\n", name, ntohs(((struct sockaddr_in6 *)bound)->sin6_port));
    } else {
        uv_ip4_name((struct sockaddr_in *)bound, name, sizeof name);
        printf("listening on %s:%d\n", name, ntohs(((struct sockaddr_in *)bound)->sin_port));
    }
    fflush(stdout);
    int signum;
    sigwait(&stop, &signum);
    printf("conns_per_loop=");
    for (int i = 0; i < threads; i++)
        printf("%s%ld", i ? "," : "", __atomic_load_n(&workers[i].accepted, __ATOMIC_RELAXED));
    printf("\n");
    fflush(stdout);
    _exit(0);
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1";
    long port = -1;
    long threads = 0; /* 0: the classic single loop on the main thread */
    for (int i = 1; i < argc; i++) {
        if ((strcmp(argv[i], "--port") == 0 || strcmp(argv[i], "-p") == 0) && i + 1 < argc) {
            char *end;
            errno = 0;
            port = strtol(argv[++i], &end, 10);
            if (errno || *end || port < 0 || port > 65535)
                usage();
        } else if ((strcmp(argv[i], "--host") == 0 || strcmp(argv[i], "-H") == 0) && i + 1 < argc) {
            host = argv[++i];
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            char *end;
            errno = 0;
            threads = strtol(argv[++i], &end, 10);
            if (errno || *end || threads < 1 || threads > 1024)
                usage();
        } else {
            usage();
        }
    }
    if (port < 0)
        usage();

    signal(SIGPIPE, SIG_IGN);
    loop = uv_default_loop();

    struct sockaddr_storage addr;
    int r = uv_ip4_addr(host, (int)port, (struct sockaddr_in *)&addr);
    if (r != 0)
        r = uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)&addr);
    if (r != 0) {
        fprintf(stderr, "echo-server: bad host %s\n", host);
        return 2;
    }
    if (threads >= 1)
        return run_threads(&addr, (int)threads);

    uv_tcp_init(loop, &server);
    r = uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&server, 1024, on_connection);
    if (r != 0) {
        fprintf(stderr, "echo-server: listen on %s:%ld: %s\n", host, port, uv_strerror(r));
        return 1;
    }

    struct sockaddr_storage bound;
    int len = sizeof bound;
    r = uv_tcp_getsockname(&server, (struct sockaddr *)&bound, &len);
    if (r != 0) {
        fprintf(stderr, "echo-server: getsockname: %s\n", uv_strerror(r));
        return 1;
    }
    char name[64];
    int bport;
    if (bound.ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)&bound, name, sizeof name);
        bport = ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
        printf("listening on [%s]:%d\n", name, bport);
    } else {
        uv_ip4_name((struct sockaddr_in *)&bound, name, sizeof name);
        bport = ntohs(((struct sockaddr_in *)&bound)->sin_port);
        printf("listening on %s:%d\n", name, bport);
    }
    fflush(stdout);

    uv_signal_init(loop, &sig_int);
    uv_signal_start(&sig_int, on_signal, SIGINT);
    uv_signal_init(loop, &sig_term);
    uv_signal_start(&sig_term, on_signal, SIGTERM);

    uv_run(loop, UV_RUN_DEFAULT);

    r = uv_loop_close(loop);
    if (r != 0)
        fprintf(stderr, "echo-server: uv_loop_close: %s\n", uv_strerror(r));
    pool_drain();
    return 0;
}
