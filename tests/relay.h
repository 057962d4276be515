/*
 * relay.h — a loopback TCP relay a test can cut (test_repl_elect.c,
 * test_repl_server.c): relay_start listens on a free port and forwards
 * every connection to upstream_port; relay_cut closes every socket of it
 * at once and its port refuses from then on, as a network partition
 * would look to the process behind it.
 */
#ifndef TEST_RELAY_H
#define TEST_RELAY_H

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define RELAY_CONNS_MAX 16 /* connections one relay forwards at once */
#define RELAY_BUF 65536 /* bytes forwarded per read */

typedef struct {
    int listen_fd, upstream_port, port;
    int wake[2]; /* a byte on wake[1]: cut */
    int fd[RELAY_CONNS_MAX][2]; /* [client, upstream], -1 when unused */
    pthread_t thread;
} relay;

static inline int connect_loopback(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static inline void relay_close_pair(relay *r, int i)
{
    for (int s = 0; s < 2; s++)
        if (r->fd[i][s] >= 0)
            close(r->fd[i][s]);
    r->fd[i][0] = r->fd[i][1] = -1;
}

static inline void relay_accept(relay *r)
{
    int c = accept4(r->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0)
        return;
    int u = connect_loopback(r->upstream_port);
    for (int i = 0; u >= 0 && i < RELAY_CONNS_MAX; i++) {
        if (r->fd[i][0] < 0) {
            r->fd[i][0] = c;
            r->fd[i][1] = u;
            return;
        }
    }
    close(c); /* full or etcd refused: the client sees a reset */
    if (u >= 0)
        close(u);
}

/* Moves what fd[i][from] has to fd[i][1 - from]; false at EOF or error. */
static inline bool relay_forward(relay *r, int i, int from)
{
    static _Thread_local char buf[RELAY_BUF];
    ssize_t n = read(r->fd[i][from], buf, sizeof buf);
    if (n <= 0)
        return false;
    for (ssize_t off = 0; off < n;) {
        ssize_t w = write(r->fd[i][1 - from], buf + off, (size_t)(n - off));
        if (w <= 0)
            return false;
        off += w;
    }
    return true;
}

static inline void *relay_main(void *p)
{
    relay *r = p;
    for (;;) {
        struct pollfd pf[2 + 2 * RELAY_CONNS_MAX];
        int slot[2 + 2 * RELAY_CONNS_MAX], n = 0;
        pf[n++] = (struct pollfd){.fd = r->wake[0], .events = POLLIN};
        pf[n++] = (struct pollfd){.fd = r->listen_fd, .events = POLLIN};
        for (int i = 0; i < RELAY_CONNS_MAX; i++)
            for (int s = 0; s < 2 && r->fd[i][0] >= 0; s++) {
                slot[n] = i * 2 + s;
                pf[n++] = (struct pollfd){.fd = r->fd[i][s], .events = POLLIN};
            }
        if (poll(pf, (nfds_t)n, -1) < 0)
            continue;
        if (pf[0].revents != 0)
            break;
        if (pf[1].revents & POLLIN)
            relay_accept(r);
        for (int k = 2; k < n; k++) {
            int i = slot[k] / 2, s = slot[k] % 2;
            if (pf[k].revents != 0 && r->fd[i][0] >= 0 && !relay_forward(r, i, s))
                relay_close_pair(r, i);
        }
    }
    /* cut: every socket goes, the port refuses from now on */
    for (int i = 0; i < RELAY_CONNS_MAX; i++)
        relay_close_pair(r, i);
    close(r->listen_fd);
    return NULL;
}

static inline void relay_start(relay *r, int upstream_port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    socklen_t alen = sizeof a;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    memset(r->fd, -1, sizeof r->fd);
    r->upstream_port = upstream_port;
    r->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(r->listen_fd, 0);
    cr_assert_eq(bind(r->listen_fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(getsockname(r->listen_fd, (struct sockaddr *)&a, &alen), 0);
    cr_assert_eq(listen(r->listen_fd, RELAY_CONNS_MAX), 0);
    r->port = ntohs(a.sin_port);
    cr_assert_eq(pipe2(r->wake, O_CLOEXEC), 0);
    cr_assert_eq(pthread_create(&r->thread, NULL, relay_main, r), 0);
}

static inline void relay_cut(relay *r)
{
    cr_assert_eq(write(r->wake[1], "x", 1), 1);
    pthread_join(r->thread, NULL);
    close(r->wake[0]);
    close(r->wake[1]);
}

/* n relays, one to each of upstream_ports, and the CSV of their URLs
 * ("http://127.0.0.1:<port>,...") in endpoints: a process given those
 * endpoints reaches every member only through them. */
static inline void relay_set_start(relay *rl, size_t n, const int *upstream_ports, char *endpoints,
                                   size_t cap)
{
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        relay_start(&rl[i], upstream_ports[i]);
        int w = snprintf(endpoints + used, cap - used, "%shttp://127.0.0.1:%d", i > 0 ? "," : "",
                         rl[i].port);
        cr_assert(w > 0 && (size_t)w < cap - used, "endpoints longer than %zu bytes", cap);
        used += (size_t)w;
    }
}

static inline void relay_set_cut(relay *rl, size_t n)
{
    for (size_t i = 0; i < n; i++)
        relay_cut(&rl[i]);
}

#endif /* TEST_RELAY_H */
