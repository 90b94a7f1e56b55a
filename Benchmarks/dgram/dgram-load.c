/*
 * dgram-load.c - a paced, time-bounded load client for UDP and Unix-socket
 * echo servers (../shared/tools/echo-load speaks TCP only).
 *
 * Usage: dgram-load (--udp HOST:PORT | --unix PATH) [-c SOCKETS] [-w WINDOW]
 *                   [-s SIZE] [-t SECONDS] [-r RATE]
 *
 * One thread, epoll. Each of SOCKETS sockets (UDP: connected to the server;
 * Unix: a stream connection) keeps at most WINDOW messages of SIZE bytes
 * unanswered: a reply (an echoed datagram, or SIZE echoed bytes) lets the next
 * one go. That window is the pacing: the client never sends faster than the
 * server answers. With -r RATE it also sends at most RATE messages per second
 * in total. A UDP socket that hears nothing for 200 ms while waiting counts
 * its outstanding datagrams as lost and sends a fresh window.
 *
 * After SECONDS (default 5) prints one line:
 *     ops=N secs=T ops_per_sec=X lost=L
 * where ops counts replies received (round trips).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    int fd;
    long outstanding;   /* messages sent and not yet answered */
    long pending_bytes; /* Unix: echoed bytes short of a whole message */
    double last_reply;
} peer_t;

static int udp = 0, size = 64, window = 1, count = 1;
static double seconds = 5, rate = 0;
static long ops = 0, lost = 0, sent = 0;
static char *message, *scratch;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void die(const char *what) {
    perror(what);
    exit(1);
}

/* Sends while the window and the rate allow; returns how many went. */
static void fill(peer_t *p, double start) {
    while (p->outstanding < window) {
        if (rate > 0 && sent >= rate * (now() - start)) return;
        ssize_t n = send(p->fd, message, size, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == ECONNREFUSED) return;
            die("send");
        }
        if (n != size) { fprintf(stderr, "short send %zd\n", n); exit(1); }
        p->outstanding++;
        sent++;
    }
}

int main(int argc, char **argv) {
    const char *target = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--udp") && v) { udp = 1; target = v; i++; }
        else if (!strcmp(a, "--unix") && v) { udp = 0; target = v; i++; }
        else if (!strcmp(a, "-c") && v) { count = atoi(v); i++; }
        else if (!strcmp(a, "-w") && v) { window = atoi(v); i++; }
        else if (!strcmp(a, "-s") && v) { size = atoi(v); i++; }
        else if (!strcmp(a, "-t") && v) { seconds = atof(v); i++; }
        else if (!strcmp(a, "-r") && v) { rate = atof(v); i++; }
        else { fprintf(stderr, "usage: dgram-load (--udp HOST:PORT | --unix PATH) [-c N] [-w N] [-s BYTES] [-t SECS] [-r PER_SEC]\n"); return 2; }
    }
    if (!target || count < 1 || window < 1 || size < 1 || size > 65507) { fprintf(stderr, "dgram-load: bad arguments\n"); return 2; }
    message = malloc(size);
    scratch = malloc(65536);
    memset(message, 'x', size);

    int epoll = epoll_create1(EPOLL_CLOEXEC);
    peer_t *peers = calloc(count, sizeof *peers);
    for (int i = 0; i < count; i++) {
        int fd;
        if (udp) {
            char host[256];
            snprintf(host, sizeof host, "%s", target);
            char *colon = strrchr(host, ':');
            if (!colon) { fprintf(stderr, "dgram-load: --udp takes HOST:PORT\n"); return 2; }
            *colon = 0;
            struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons(atoi(colon + 1)) };
            inet_pton(AF_INET, host, &address.sin_addr);
            fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
            if (fd < 0 || connect(fd, (struct sockaddr *)&address, sizeof address) != 0) die("udp connect");
        } else {
            struct sockaddr_un address = { .sun_family = AF_UNIX };
            snprintf(address.sun_path, sizeof address.sun_path, "%s", target);
            fd = socket(AF_UNIX, SOCK_STREAM, 0);
            if (fd < 0 || connect(fd, (struct sockaddr *)&address, sizeof address) != 0) die("unix connect");
            if (fcntl(fd, F_SETFL, O_NONBLOCK) != 0) die("fcntl");
        }
        peers[i].fd = fd;
        struct epoll_event event = { .events = EPOLLIN, .data.ptr = &peers[i] };
        if (epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event) != 0) die("epoll_ctl");
    }

    double start = now(), end = start + seconds;
    for (int i = 0; i < count; i++) { peers[i].last_reply = start; fill(&peers[i], start); }
    struct epoll_event events[64];
    while (1) {
        double t = now();
        if (t >= end) break;
        int timeout = rate > 0 ? 1 : (int)((end - t) * 1000) + 1;
        if (timeout > 50) timeout = 50;
        int n = epoll_wait(epoll, events, 64, timeout);
        if (n < 0 && errno != EINTR) die("epoll_wait");
        for (int e = 0; e < n; e++) {
            peer_t *p = events[e].data.ptr;
            while (1) {
                ssize_t got = recv(p->fd, scratch, udp ? 65536 : 65536, 0);
                if (got < 0) {
                    if (errno == EAGAIN) break;
                    if (udp && errno == ECONNREFUSED) break;
                    die("recv");
                }
                if (got == 0 && !udp) { fprintf(stderr, "dgram-load: the server closed a connection\n"); return 1; }
                long replies;
                if (udp) {
                    replies = 1;
                } else {
                    p->pending_bytes += got;
                    replies = p->pending_bytes / size;
                    p->pending_bytes %= size;
                }
                ops += replies;
                p->outstanding -= replies;
                if (p->outstanding < 0) p->outstanding = 0;  /* a reply to a datagram already counted lost */
                p->last_reply = now();
            }
            fill(p, start);
        }
        t = now();
        for (int i = 0; i < count; i++) {
            peer_t *p = &peers[i];
            if (udp && p->outstanding > 0 && t - p->last_reply > 0.2) {
                lost += p->outstanding;
                p->outstanding = 0;
                p->last_reply = t;
            }
            if (rate > 0 || p->outstanding == 0) fill(p, start);
        }
    }
    double elapsed = now() - start;
    printf("ops=%ld secs=%.3f ops_per_sec=%.0f lost=%ld\n", ops, elapsed, ops / elapsed, lost);
    return 0;
}
