/*
 * udp-echo-server.c - reference libuv UDP echo server (baseline for
 * weft-echo --udp, loaded by Benchmarks/dgram/dgram-load).
 *
 * Usage: udp-echo-server --port P [--host 127.0.0.1]   (port 0 = ephemeral)
 *
 * One uv_loop, one uv_udp_t (SO_RCVBUF 4 MiB, as weft-echo --udp asks).
 * Prints "listening on HOST:PORT (udp)" and flushes stdout.
 *
 * - Receiving: one static 64 KiB buffer (libuv hands datagrams over one at a
 *   time, and each is echoed before the next is read).
 * - Echo: uv_udp_try_send to the sender; on UV_EAGAIN the datagram is copied
 *   into a malloc'd send request and queued with uv_udp_send, freed in its
 *   callback. Other send errors drop the datagram (counted, printed at exit).
 * - SIGINT/SIGTERM: close the handles, run the loop dry, exit 0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static uv_loop_t *loop;
static uv_udp_t server;
static uv_signal_t sig_int, sig_term;
static char buffer[65536];
static long send_errors;

typedef struct {
    uv_udp_send_t req;
    size_t len;
    char data[];
} send_req_t;

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
    (void)handle;
    (void)suggested;
    *buf = uv_buf_init(buffer, sizeof buffer);
}

static void on_sent(uv_udp_send_t *req, int status) {
    if (status < 0) send_errors++;
    free(req);
}

static void on_recv(uv_udp_t *handle, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr, unsigned flags) {
    (void)flags;
    if (nread < 0 || addr == NULL) return;  /* errors, or nothing to read */
    uv_buf_t out = uv_buf_init(buf->base, (unsigned)nread);
    int rc = uv_udp_try_send(handle, &out, 1, addr);
    if (rc >= 0) return;
    if (rc != UV_EAGAIN) { send_errors++; return; }
    send_req_t *req = malloc(sizeof *req + nread);
    memcpy(req->data, buf->base, nread);
    req->len = nread;
    uv_buf_t queued = uv_buf_init(req->data, (unsigned)nread);
    if (uv_udp_send(&req->req, handle, &queued, 1, addr, on_sent) < 0) { send_errors++; free(req); }
}

static void on_signal(uv_signal_t *signal, int signum) {
    (void)signum;
    (void)signal;
    uv_close((uv_handle_t *)&server, NULL);
    uv_close((uv_handle_t *)&sig_int, NULL);
    uv_close((uv_handle_t *)&sig_term, NULL);
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1";
    int port = 7000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--host")) host = argv[i + 1];
    }
    loop = uv_default_loop();
    struct sockaddr_in address;
    uv_ip4_addr(host, port, &address);
    uv_udp_init(loop, &server);
    int rc = uv_udp_bind(&server, (const struct sockaddr *)&address, 0);
    if (rc < 0) { fprintf(stderr, "bind: %s\n", uv_strerror(rc)); return 1; }
    int size = 4 << 20;
    uv_recv_buffer_size((uv_handle_t *)&server, &size);
    uv_udp_recv_start(&server, on_alloc, on_recv);
    struct sockaddr_in bound;
    int length = sizeof bound;
    uv_udp_getsockname(&server, (struct sockaddr *)&bound, &length);
    char name[64];
    uv_ip4_name(&bound, name, sizeof name);
    printf("listening on %s:%d (udp)\n", name, ntohs(bound.sin_port));
    fflush(stdout);
    uv_signal_init(loop, &sig_int);
    uv_signal_start(&sig_int, on_signal, SIGINT);
    uv_signal_init(loop, &sig_term);
    uv_signal_start(&sig_term, on_signal, SIGTERM);
    uv_run(loop, UV_RUN_DEFAULT);
    if (send_errors) fprintf(stderr, "send errors: %ld\n", send_errors);
    return 0;
}
