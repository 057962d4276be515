/*
 * always_ceiling.c — the fastest `--fsync always` server this box allows:
 * the same-run yardstick of issue #15's ">= 4x Redis in every `always` P16
 * row" (bench/vs-redis-sale runs it next to both servers).
 *
 * It does the least any server must do to acknowledge a write only once
 * it is durable, and nothing else: one event loop reads RESP requests
 * (arrays of bulk strings, boundaries checked, contents not looked at),
 * stages one CEIL_RECORD_BYTES record per request (invcored's LEVEL record
 * is 64 bytes) and answers +PONG once that record is on disk. One flusher
 * thread writes and fdatasyncs whatever is staged, back to back (group
 * commit, overlapped with the loop's next pass), keeps CEIL_ZEROS_AHEAD of
 * zeros ahead of the records as the journal does (so fdatasync commits no
 * file-system metadata), and tells the loop the durable end through an
 * eventfd. No command table, no engine, no checksum, a 7-byte reply: every
 * real server does more per request, so its rate here bounds the `always`
 * rate of any server with one event loop on this box, under the same
 * client. invcore-bench's `ping` scenario drives it.
 *
 *   always_ceiling --port P --dir DIR [--fsync always|none]
 *                  [--flusher thread|inline]
 *
 * `none` skips the fdatasync (the loop's own ceiling). `--flusher inline`
 * has no flusher thread: the loop itself writes and fdatasyncs after each
 * pass, before it answers (Redis's `appendfsync always`); the default
 * overlaps the two (invcored's way). Runs until SIGINT or
 * SIGTERM, then prints requests, fdatasyncs and records per fdatasync and
 * removes its file. Invariants: a reply is written only after the flusher
 * published a durable end at or past its request's record (the barriers
 * of a connection are in request order, so its replies are too). Staged
 * bytes stay under CEIL_STAGED_MAX: a client keeps at most its pipeline
 * in flight (50 x 16 requests are 51 KB of records), and more than the
 * limit ends the run with an error rather than a silent stall.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define CEIL_RECORD_BYTES 64 /* invcored's LEVEL record: 16 framing + 48 payload */
#define CEIL_ZEROS_AHEAD (1u << 20) /* the journal's JOURNAL_PREALLOC_BYTES */
#define CEIL_IN_BYTES (64u << 10) /* a connection's read buffer */
#define CEIL_OUT_BYTES (64u << 10) /* a connection's unsent replies */
#define CEIL_BARRIERS 64 /* a connection's pending durability barriers */
#define CEIL_CONNS_MAX 4096
#define CEIL_EVENTS 256
#define CEIL_STAGED_MAX (16u << 20) /* staged, not yet written record bytes */
#define CEIL_ARGS_MAX 1024 /* elements of one request */
#define CEIL_ARG_BYTES_MAX (1u << 20) /* one bulk string */
#define CEIL_PATH_MAX 4096
#define CEIL_NUM_DIGITS_MAX 10 /* a length or count of at most 10 digits */

static const char PONG[] = "+PONG\r\n";
#define PONG_LEN (sizeof PONG - 1)

typedef struct {
    uint64_t pos; /* durable end the replies wait for */
    uint32_t replies;
} barrier;

typedef struct conn {
    int fd;
    bool open, want_out, held;
    size_t in_len, out_len, out_sent;
    barrier bar[CEIL_BARRIERS];
    unsigned bar_head, bar_count;
    struct conn *next_held; /* the loop's list of connections with barriers */
    char in[CEIL_IN_BYTES];
    char out[CEIL_OUT_BYTES];
} conn;

/* The staged records between the loop and the flusher, under mu. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *buf; /* CEIL_STAGED_MAX bytes */
    size_t len;
    uint64_t end; /* file position after the last staged byte */
    bool stop;
} stage;

static stage g_stage = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
/* Written by the flusher after each fdatasync (release: the loop that reads
 * it (acquire) may answer every request whose record ends at or before). */
static _Atomic uint64_t g_durable;
static _Atomic bool g_quit; /* set by the signal handler; relaxed: a flag */
static int g_file = -1, g_wake_fd = -1;
static bool g_sync = true, g_inline; /* --fsync always; --flusher inline */
static uint64_t g_fsyncs, g_requests; /* flusher's, loop's counters */
static size_t g_conns; /* open connections (the loop's), at most CEIL_CONNS_MAX */

static void die(const char *what)
{
    fprintf(stderr, "always_ceiling: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void on_signal(int sig)
{
    (void)sig;
    atomic_store_explicit(&g_quit, true, memory_order_relaxed);
}

/* ---- the flusher --------------------------------------------------------- */

static void write_all(const char *p, size_t n, uint64_t off)
{
    while (n > 0) {
        ssize_t w = pwrite(g_file, p, n, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            die("pwrite");
        p += w, n -= (size_t)w, off += (uint64_t)w;
    }
}

static uint64_t g_written, g_zeroed; /* file positions: records, zeros (the writer's) */
static char *g_zeros; /* CEIL_ZEROS_AHEAD zero bytes */

/* Writes n record bytes at the end, keeps zeros ahead, fdatasyncs, and
 * publishes the new durable end: by the flusher thread or the loop. */
static void make_durable(const char *p, size_t n)
{
    write_all(p, n, g_written);
    g_written += n;
    if (g_sync && (g_zeroed < g_written || g_zeroed - g_written < CEIL_ZEROS_AHEAD / 2)) {
        if (g_zeroed < g_written)
            g_zeroed = g_written;
        write_all(g_zeros, CEIL_ZEROS_AHEAD, g_zeroed);
        g_zeroed += CEIL_ZEROS_AHEAD;
    }
    if (g_sync && fdatasync(g_file) != 0)
        die("fdatasync");
    g_fsyncs++;
    atomic_store_explicit(&g_durable, g_written, memory_order_release);
}

static void *flusher_main(void *arg)
{
    (void)arg;
    char *mine = malloc(CEIL_STAGED_MAX);
    if (mine == NULL)
        die("malloc");
    for (;;) {
        pthread_mutex_lock(&g_stage.mu);
        while (g_stage.len == 0 && !g_stage.stop)
            pthread_cond_wait(&g_stage.cv, &g_stage.mu);
        if (g_stage.len == 0 && g_stage.stop) {
            pthread_mutex_unlock(&g_stage.mu);
            break;
        }
        /* swap buffers: the loop stages into the empty one meanwhile */
        char *full = g_stage.buf;
        size_t n = g_stage.len;
        g_stage.buf = mine, g_stage.len = 0;
        pthread_mutex_unlock(&g_stage.mu);
        mine = full;
        make_durable(mine, n);
        uint64_t one = 1;
        if (write(g_wake_fd, &one, sizeof one) != sizeof one)
            die("eventfd write");
    }
    free(mine);
    return NULL;
}

/* ---- the event loop ------------------------------------------------------ */

/* A decimal of at most CEIL_NUM_DIGITS_MAX digits ending in CRLF at p (len
 * bytes available): 1 and *v, *used; 0 incomplete; -1 malformed. */
static int parse_num(const char *p, size_t len, uint64_t *v, size_t *used)
{
    uint64_t x = 0;
    size_t i = 0;
    for (; i < len && p[i] >= '0' && p[i] <= '9'; i++) {
        if (i == CEIL_NUM_DIGITS_MAX)
            return -1;
        x = x * 10 + (uint64_t)(p[i] - '0');
    }
    if (i + 2 > len)
        return len - i > 0 && p[i] != '\r' ? -1 : 0;
    if (i == 0 || p[i] != '\r' || p[i + 1] != '\n')
        return -1;
    *v = x, *used = i + 2;
    return 1;
}

/* The length of the complete request at the start of p: > 0; 0 incomplete;
 * -1 malformed (the connection is closed). */
static long request_len(const char *p, size_t len)
{
    if (len == 0)
        return 0;
    if (p[0] != '*')
        return -1;
    uint64_t argc, arg_len;
    size_t at = 1, used;
    int rc = parse_num(p + at, len - at, &argc, &used);
    if (rc <= 0)
        return rc;
    if (argc == 0 || argc > CEIL_ARGS_MAX)
        return -1;
    at += used;
    for (uint64_t i = 0; i < argc; i++) {
        if (at >= len)
            return 0;
        if (p[at] != '$')
            return -1;
        at++;
        rc = parse_num(p + at, len - at, &arg_len, &used);
        if (rc <= 0)
            return rc;
        if (arg_len > CEIL_ARG_BYTES_MAX)
            return -1;
        at += used;
        if (len - at < arg_len + 2)
            return 0;
        if (p[at + arg_len] != '\r' || p[at + arg_len + 1] != '\n')
            return -1;
        at += arg_len + 2;
    }
    return (long)at;
}

/* A closed connection's memory, once nothing refers to it. */
static void conn_free(conn *c)
{
    assert(!c->open && !c->held && g_conns > 0);
    g_conns--;
    free(c);
}

static void conn_close(int ep, conn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->open = false; /* freed by the loop once off the held list */
}

/* One non-blocking send (sending) or recv of at most n bytes, retried when
 * interrupted: the bytes moved, 0 when it would block, -1 when the peer is
 * gone or the socket failed. */
static ssize_t io_call(int fd, bool sending, char *p, size_t n)
{
    for (;;) {
        ssize_t r = sending ? send(fd, p, n, MSG_NOSIGNAL) : recv(fd, p, n, 0);
        if (r > 0)
            return r;
        if (r < 0 && errno == EINTR)
            continue;
        return r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
    }
}

static void conn_flush(int ep, conn *c)
{
    while (c->out_sent < c->out_len) {
        ssize_t w = io_call(c->fd, true, c->out + c->out_sent, c->out_len - c->out_sent);
        if (w == 0)
            break;
        if (w < 0) {
            conn_close(ep, c);
            return;
        }
        c->out_sent += (size_t)w;
    }
    if (c->out_sent == c->out_len)
        c->out_sent = c->out_len = 0;
    bool want = c->out_len > 0;
    if (want != c->want_out) {
        struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        c->want_out = want;
    }
}

/* Reads and stages what fits: every complete request gets its record,
 * and the connection one barrier at the staged end. */
static void conn_read(int ep, conn *c, char *staged, size_t *staged_len, uint64_t *staged_end,
                      conn **held)
{
    for (;;) {
        if (c->in_len == CEIL_IN_BYTES) {
            conn_close(ep, c); /* one request larger than the buffer */
            return;
        }
        ssize_t r = io_call(c->fd, false, c->in + c->in_len, CEIL_IN_BYTES - c->in_len);
        if (r == 0)
            break;
        if (r < 0) {
            conn_close(ep, c);
            return;
        }
        c->in_len += (size_t)r;
        if ((size_t)r < CEIL_IN_BYTES)
            break;
    }
    size_t at = 0;
    uint32_t n = 0;
    for (;;) {
        long l = request_len(c->in + at, c->in_len - at);
        if (l < 0) {
            conn_close(ep, c);
            return;
        }
        if (l == 0)
            break;
        if (*staged_len + CEIL_RECORD_BYTES > CEIL_STAGED_MAX) {
            errno = ENOBUFS;
            die("more requests in flight than CEIL_STAGED_MAX holds");
        }
        /* the record: the request's first bytes, zero-filled */
        size_t copy = (size_t)l < CEIL_RECORD_BYTES ? (size_t)l : CEIL_RECORD_BYTES;
        memcpy(staged + *staged_len, c->in + at, copy);
        memset(staged + *staged_len + copy, 0, CEIL_RECORD_BYTES - copy);
        *staged_len += CEIL_RECORD_BYTES;
        *staged_end += CEIL_RECORD_BYTES;
        at += (size_t)l;
        n++;
    }
    memmove(c->in, c->in + at, c->in_len - at);
    c->in_len -= at;
    if (n == 0)
        return;
    g_requests += n;
    if (c->bar_count == CEIL_BARRIERS) { /* merge into the newest: later, never early */
        barrier *b = &c->bar[(c->bar_head + c->bar_count - 1) % CEIL_BARRIERS];
        b->pos = *staged_end, b->replies += n;
    } else {
        c->bar[(c->bar_head + c->bar_count) % CEIL_BARRIERS] = (barrier){*staged_end, n};
        c->bar_count++;
    }
    if (!c->held) {
        c->held = true;
        c->next_held = *held, *held = c;
    }
}

/* Answers every request whose record is durable; unlinks connections with
 * nothing held and frees the closed ones. */
static void release_held(int ep, conn **held)
{
    uint64_t durable = atomic_load_explicit(&g_durable, memory_order_acquire);
    for (conn **pp = held; *pp != NULL;) {
        conn *c = *pp;
        while (c->open && c->bar_count > 0 && c->bar[c->bar_head].pos <= durable) {
            barrier *b = &c->bar[c->bar_head];
            while (b->replies > 0 && c->out_len + PONG_LEN <= CEIL_OUT_BYTES) {
                memcpy(c->out + c->out_len, PONG, PONG_LEN);
                c->out_len += PONG_LEN, b->replies--;
            }
            if (b->replies > 0) { /* the client reads slower than it sends */
                conn_flush(ep, c);
                if (c->out_len + PONG_LEN > CEIL_OUT_BYTES)
                    break; /* EPOLLOUT comes back here */
                continue;
            }
            c->bar_head = (c->bar_head + 1) % CEIL_BARRIERS, c->bar_count--;
        }
        if (c->open)
            conn_flush(ep, c);
        if (!c->open || c->bar_count == 0) {
            *pp = c->next_held;
            c->held = false;
            if (!c->open)
                conn_free(c);
        } else {
            pp = &c->next_held;
        }
    }
}

static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    if (fd < 0)
        die("socket");
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 512) != 0)
        die("bind/listen");
    return fd;
}

static void accept_all(int ep, int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
        if (fd < 0)
            return;
        conn *c = g_conns < CEIL_CONNS_MAX ? calloc(1, sizeof *c) : NULL;
        if (c == NULL) {
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c->fd = fd, c->open = true;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
            close(fd);
            free(c);
            continue;
        }
        g_conns++;
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: always_ceiling --port P --dir DIR [--fsync always|none]\n"
                    "                      [--flusher thread|inline]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int port = 0;
    const char *dir = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--port") == 0)
            port = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--dir") == 0)
            dir = argv[i + 1];
        else if (strcmp(argv[i], "--fsync") == 0 && strcmp(argv[i + 1], "always") == 0)
            g_sync = true;
        else if (strcmp(argv[i], "--fsync") == 0 && strcmp(argv[i + 1], "none") == 0)
            g_sync = false;
        else if (strcmp(argv[i], "--flusher") == 0 && strcmp(argv[i + 1], "thread") == 0)
            g_inline = false;
        else if (strcmp(argv[i], "--flusher") == 0 && strcmp(argv[i + 1], "inline") == 0)
            g_inline = true;
        else
            usage();
    }
    if (argc % 2 == 0 || port <= 0 || port > 65535 || dir == NULL)
        usage();
    char path[CEIL_PATH_MAX];
    if (snprintf(path, sizeof path, "%s/always_ceiling.journal", dir) >= (int)sizeof path)
        usage();
    g_file = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    g_wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    g_stage.buf = malloc(CEIL_STAGED_MAX);
    char *staged = malloc(CEIL_STAGED_MAX);
    g_zeros = calloc(1, CEIL_ZEROS_AHEAD);
    if (g_file < 0 || g_wake_fd < 0 || g_stage.buf == NULL || staged == NULL || g_zeros == NULL)
        die("setup");
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    int lfd = listen_on(port), ep = epoll_create1(EPOLL_CLOEXEC);
    static char tag_listen, tag_wake;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &tag_listen};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    ev.data.ptr = &tag_wake;
    epoll_ctl(ep, EPOLL_CTL_ADD, g_wake_fd, &ev);
    pthread_t flusher;
    if (!g_inline && pthread_create(&flusher, NULL, flusher_main, NULL) != 0)
        die("pthread_create");

    conn *held = NULL;
    size_t staged_len = 0;
    uint64_t staged_end = 0;
    struct epoll_event evs[CEIL_EVENTS];
    while (!atomic_load_explicit(&g_quit, memory_order_relaxed)) {
        int n = epoll_wait(ep, evs, CEIL_EVENTS, 100);
        if (n < 0 && errno != EINTR)
            die("epoll_wait");
        for (int i = 0; i < n; i++) {
            void *tag = evs[i].data.ptr;
            if (tag == &tag_listen) {
                accept_all(ep, lfd);
            } else if (tag == &tag_wake) {
                uint64_t v; /* drained; release_held below reads g_durable */
                (void)!read(g_wake_fd, &v, sizeof v);
            } else {
                conn *c = tag;
                if (c->open && (evs[i].events & EPOLLOUT))
                    conn_flush(ep, c);
                if (c->open && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                    conn_read(ep, c, staged, &staged_len, &staged_end, &held);
                if (!c->open && !c->held)
                    conn_free(c);
            }
        }
        /* the pass's records are made durable together (group commit):
         * inline, Redis's way, before the pass's replies; or by the
         * flusher, overlapped with the next pass */
        if (staged_len > 0 && g_inline) {
            make_durable(staged, staged_len);
            staged_len = 0;
        } else if (staged_len > 0) {
            pthread_mutex_lock(&g_stage.mu);
            if (g_stage.len + staged_len > CEIL_STAGED_MAX) {
                errno = ENOBUFS;
                die("more records waiting for the flusher than CEIL_STAGED_MAX holds");
            }
            memcpy(g_stage.buf + g_stage.len, staged, staged_len);
            g_stage.len += staged_len;
            staged_len = 0;
            pthread_cond_signal(&g_stage.cv);
            pthread_mutex_unlock(&g_stage.mu);
        }
        release_held(ep, &held);
    }
    if (!g_inline) {
        pthread_mutex_lock(&g_stage.mu);
        g_stage.stop = true;
        pthread_cond_signal(&g_stage.cv);
        pthread_mutex_unlock(&g_stage.mu);
        pthread_join(flusher, NULL);
    }
    printf("always_ceiling: %" PRIu64 " requests, %" PRIu64 " %s, %.1f records each\n", g_requests,
           g_fsyncs, g_sync ? "fdatasyncs" : "writes",
           g_fsyncs ? (double)g_requests / (double)g_fsyncs : 0.0);
    unlink(path);
    free(staged);
    free(g_stage.buf);
    free(g_zeros);
    return 0;
}
