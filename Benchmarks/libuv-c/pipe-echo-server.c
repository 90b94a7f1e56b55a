/*
 * pipe-echo-server.c - reference libuv Unix-socket echo server (baseline for
 * weft-echo --unix, loaded by Benchmarks/dgram/dgram-load --unix).
 *
 * Usage: pipe-echo-server --unix PATH
 *
 * One uv_loop, uv_pipe_bind + uv_listen (backlog 1024); the socket file is
 * removed at exit. Prints "listening on PATH (unix)" and flushes stdout.
 * The echo is echo-server.c's: a 64 KiB buffer free-list, uv_try_write of
 * everything read, the remainder copied into one uv_write request; at EOF
 * close once the queued writes are done. No backpressure (the load client
 * keeps a bounded window in flight).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#define BUF_SIZE (64 * 1024)

typedef struct pool_buf { struct pool_buf *next; } pool_buf_t;
static pool_buf_t *pool_head;

static char *pool_get(void) {
    if (pool_head) { pool_buf_t *b = pool_head; pool_head = b->next; return (char *)b; }
    return malloc(BUF_SIZE);
}

static void pool_put(char *base) {
    pool_buf_t *b = (pool_buf_t *)base;
    b->next = pool_head;
    pool_head = b;
}

typedef struct {
    uv_pipe_t pipe; /* must be first */
    size_t queued;
    int eof;
} conn_t;

typedef struct {
    uv_write_t req;
    conn_t *conn;
    size_t len;
    char data[];
} write_req_t;

static uv_loop_t *loop;
static uv_pipe_t server;
static uv_signal_t sig_int, sig_term;
static const char *path;

static void on_close(uv_handle_t *handle) { free(handle); }

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
    (void)handle;
    (void)suggested;
    *buf = uv_buf_init(pool_get(), BUF_SIZE);
}

static void on_write(uv_write_t *req, int status) {
    (void)status;
    write_req_t *w = (write_req_t *)req;
    conn_t *c = w->conn;
    c->queued -= w->len;
    free(w);
    if (c->eof && c->queued == 0) uv_close((uv_handle_t *)c, on_close);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
    conn_t *c = (conn_t *)stream;
    if (nread > 0) {
        size_t done = 0;
        if (c->queued == 0) {
            uv_buf_t out = uv_buf_init(buf->base, (unsigned)nread);
            int rc = uv_try_write(stream, &out, 1);
            if (rc > 0) done = rc;
        }
        if (done < (size_t)nread) {
            size_t rest = nread - done;
            write_req_t *w = malloc(sizeof *w + rest);
            memcpy(w->data, buf->base + done, rest);
            w->conn = c;
            w->len = rest;
            uv_buf_t out = uv_buf_init(w->data, (unsigned)rest);
            c->queued += rest;
            uv_write(&w->req, stream, &out, 1, on_write);
        }
    } else if (nread < 0) {
        uv_read_stop(stream);
        c->eof = 1;
        if (c->queued == 0) uv_close((uv_handle_t *)c, on_close);
    }
    if (buf->base) pool_put(buf->base);
}

static void on_connection(uv_stream_t *listener, int status) {
    if (status < 0) return;
    conn_t *c = calloc(1, sizeof *c);
    uv_pipe_init(loop, &c->pipe, 0);
    if (uv_accept(listener, (uv_stream_t *)c) == 0) uv_read_start((uv_stream_t *)c, on_alloc, on_read);
    else uv_close((uv_handle_t *)c, on_close);
}

static void on_signal(uv_signal_t *signal, int signum) {
    (void)signal;
    (void)signum;
    unlink(path);
    exit(0);
}

int main(int argc, char **argv) {
    for (int i = 1; i + 1 < argc; i += 2) if (!strcmp(argv[i], "--unix")) path = argv[i + 1];
    if (!path) { fprintf(stderr, "usage: pipe-echo-server --unix PATH\n"); return 2; }
    signal(SIGPIPE, SIG_IGN);
    loop = uv_default_loop();
    uv_pipe_init(loop, &server, 0);
    int rc = uv_pipe_bind(&server, path);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&server, 1024, on_connection);
    if (rc < 0) { fprintf(stderr, "bind %s: %s\n", path, uv_strerror(rc)); return 1; }
    printf("listening on %s (unix)\n", path);
    fflush(stdout);
    uv_signal_init(loop, &sig_int);
    uv_signal_start(&sig_int, on_signal, SIGINT);
    uv_signal_init(loop, &sig_term);
    uv_signal_start(&sig_term, on_signal, SIGTERM);
    uv_run(loop, UV_RUN_DEFAULT);
    return 0;
}
