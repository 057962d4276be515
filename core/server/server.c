/*
 * server.c — event loops, connections, accept, limits, idle timeout and
 * replies held until durable.
 *
 * Threading: a connection belongs to one loop for its whole life and is
 * touched only by that loop's thread; loops share only the engine, the
 * read-only config, the statistics (stats.h) and their mailboxes. Nothing
 * here blocks: all sockets are non-blocking, and durability is awaited
 * through the engine's eventfd (inv_durable_subscribe), never
 * inv_wait_durable. Each loop iteration defers the journal's flusher
 * wake-ups (inv_defer_journal_begin after epoll_wait, _end before the
 * next): one wake-up and one file write per iteration, not per write, and
 * always paid before the loop sleeps, so a held reply's durability never
 * waits on a flusher nobody woke.
 *
 * CLIENT LIST and CLIENT KILL span every loop, so no loop reads another's
 * connections: the requesting loop posts a gather to every loop's mailbox
 * (a lock-free stack, drained whole) and parks the requesting connection
 * (no more of its requests run). Each loop, at a point of its iteration
 * where no connection is being worked on, lists or closes its own matching
 * connections into its own part of the gather; the last one to answer
 * posts the gather back to the requesting loop, which writes the reply and
 * unparks the connection. A gather lives until its reply is written (or
 * its requester is gone); leftovers are drained when the server is freed.
 *
 * Invariants of a connection:
 *  - Replies are appended to out in request order and sent in that order.
 *  - Barrier i says: bytes at absolute offset >= bar.off may not be sent
 *    before inv_durable_position() >= bar.pos. Offsets increase along the
 *    ring, so the first undurable barrier bounds what may be sent.
 *  - Input that arrives whole is parsed straight from the loop's read buffer
 *    (zero copy); only an incomplete tail is copied into the connection's
 *    own buffer, which is freed once empty (idle clients own no buffers).
 *  - Unparsed input <= max_query, unsent output <= max_reply, or the client
 *    is disconnected; above CONN_OUT_SOFT of unsent output the loop stops
 *    reading from that client (a slow reader cannot make it buffer more).
 *  - Input that is buffered and could run now (conn_runnable) is never left
 *    without a wake-up: a connection stops running it only while output
 *    above CONN_OUT_SOFT is pending (EPOLLOUT is armed or the reply is held,
 *    and both end in conn_pump), or it sits on the loop's ready list, which
 *    every iteration runs. Otherwise a client that pipelined more than
 *    CONN_OUT_SOFT of replies and then waited would wait forever.
 *  - Client buffer memory (--maxmemory-clients): c->mem is what the
 *    connection's buffers (q, out: held replies included) were charged at
 *    its last conn_mem_sync; lp->mem is the sum over the loop's
 *    connections, and g.clients_mem the sum over loops (each loop adds its
 *    own deltas: no lock, one relaxed atomic add per change of a buffer's
 *    size, not per request). A connection's buffers change only on its own
 *    loop, and every path that may grow them ends in conn_flush (which
 *    syncs), conn_close (which releases all) or, for replies deferred to
 *    the end of the pass (CONN_FLUSH_DEFER_BYTES), conn_mem_sync itself
 *    before the connection goes on the ready list, so the charge is exact
 *    whenever the loop is between events. Over the bound, loop_mem_enforce
 *    closes the loop's largest connections first while the loop holds more
 *    than its share (bound / loops), and wakes the other loops when it does
 *    not; each checks after every event and every iteration, so the total
 *    exceeds the bound by at most what one event can add per loop (a few
 *    reads of LOOP_READ_BUF and one doubling of a buffer), plus what a loop
 *    under its share adds (up to that share) while the loop over its share
 *    wakes to close its largest.
 *  - Admission (--maxclients) is exact: g.connected is raised by a bounded
 *    CAS (stats_admit) before a connection is admitted and lowered when it
 *    closes, so it never exceeds maxclients and a refusal means maxclients
 *    connections were open at that moment, whatever the number of loops.
 *    A refusal is counted before the refused client can see it.
 *  - A reply buffer whose allocation failed (out.failed) holds a truncated
 *    reply: no more requests run, and conn_flush closes the connection.
 *  - A parked connection (its CLIENT LIST/KILL reply waits for the other
 *    loops) runs no request and is not closed for EOF until that reply is
 *    written; conn_close and loop_begin_stop unpark it (the gather then
 *    completes without it). Every loop answers every part posted to it, at
 *    its exit at the latest, or server_free does.
 *  - A blocked connection (FEED.READ BLOCK found nothing yet) is on its
 *    loop's blocked list and runs no request. Each loop iteration that
 *    sees the durable position advance (the durability eventfd wakes the
 *    loop, so within one flusher round) asks command_feed_resume of each
 *    blocked connection, and once more at its deadline; the loop sleeps no
 *    longer than the nearest deadline. EOF closes it at once (nothing is
 *    owed), as do CLIENT KILL and shutdown; at most LOOP_BLOCKED_MAX per
 *    loop, so a wake-up costs a bounded number of reads.
 */
#include "alloc.h"
#include "server/server.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "server/command.h"
#include "server/http.h"
#include "server/list.h"
#include "server/resp.h"
#include "server/stats.h"

#define LOOP_READ_BUF (64u << 10) /* one read() per readable event */
#define LOOP_EVENTS_MAX 256 /* epoll_wait batch */
#define LOOP_TICK_MS 100 /* timeouts and held-reply safety net */
#define LOOP_ACCEPT_BATCH 64 /* accepts per readable listener */
#define LOOP_READS_PER_EVENT 4 /* fairness between clients */
#define LOOP_PUMP_ROUNDS 4 /* flush+run rounds per pump (fairness) */
#define LISTEN_BACKLOG 1024
#define CONN_BARRIERS 32 /* pending durability barriers */
#define CONN_OUT_SOFT (1u << 20) /* stop reading above this unsent */
/* Replies up to this many unsent bytes wait for the end of the event loop's
 * pass over its ready events and go out together, as Redis sends its
 * replies before it sleeps: a send that wakes a client thread on a busy
 * box lets that thread preempt the loop mid-pass (measured at P1 with 50
 * connections and a 2-thread client on 2 cores: 13k involuntary switches
 * per second of the loop, p99 4.3 ms against Redis's 0.9). More than this
 * is sent at once, so deferral adds at most LOOP_EVENTS_MAX times it to
 * the unsent bytes of one pass. */
#define CONN_FLUSH_DEFER_BYTES (16u << 10)
#define CONN_OUT_KEEP (64u << 10) /* output buffer kept when empty */
/* The smallest buffer of unparsed input: a partial request of n bytes
 * holds at most max(CONN_Q_MIN, 2n) (growth by doubling). */
#define CONN_Q_MIN 4096u
/* An HTTP connection closed by a refusal (413, 431, ...) lingers, as
 * nginx's lingering close: closing a socket with unread input makes the
 * kernel send a reset, and a client still sending (a large body) then sees
 * a send failure, never the response. So its write side is shut (FIN after
 * the response) and its input read and dropped until the client's EOF, for
 * at most CONN_LINGER_MS or CONN_LINGER_BYTES_MAX bytes. */
#define CONN_LINGER_MS 5000
#define CONN_LINGER_BYTES_MAX (64u << 20)
#define MAXCLIENTS_MSG "-ERR max number of clients reached\r\n"
#define LOOP_LOG_LINES_PER_S \
    20 /* client log lines per loop per second:
                                         a flood of bad clients must not
                                         flood the log; the rest are dropped */
#define GATHER_DONE UINT32_MAX /* mail.slot of a gather's done notice */
/* Clients blocked in FEED.READ per loop: each durable advance re-reads for
 * every one of them, on the loop, so their number bounds that work. */
#define LOOP_BLOCKED_MAX 1024u
/* Connections one loop_mem_enforce call may close: a bound on the work of
 * one call (the next event or iteration goes on). */
#define LOOP_EVICT_MAX 64u
/* Over --maxmemory-clients with nothing of its own to close, a loop wakes
 * the others (which hold the memory) at most once per this many ms. */
#define LOOP_EVICT_WAKE_MS 10

typedef struct loop loop;
typedef struct gather gather;

typedef union {
    struct sockaddr sa;
    struct sockaddr_in in4;
    struct sockaddr_in6 in6;
} sock_addr;

/* A message between loops: one loop's part of a gather (slot = that loop's
 * index) or, slot GATHER_DONE, the notice that every part is ready. */
typedef struct mail {
    struct mail *next; /* written by the poster before the release push */
    gather *g;
    uint32_t slot;
} mail;

typedef struct conn {
    int fd;
    loop *lp;
    session sess;
    sock_addr peer; /* as accept4 reported it */
    int64_t created_ms; /* loop clock (CLIENT LIST age) */
    gather *gather; /* CLIENT LIST/KILL awaiting other loops */
    bool parked; /* gather != NULL: run no request until then */
    bool blocked; /* on lp->blocked: FEED.READ BLOCK awaits records */
    int64_t block_deadline_ms; /* loop clock; 0: none */
    resp_out out;
    size_t sent; /* bytes of out.buf already written */
    uint64_t base; /* absolute offset of out.buf[0] */
    char *q; /* incomplete input, NULL when none */
    size_t qlen, qcap, need;
    struct {
        uint64_t off, pos;
    } bar[CONN_BARRIERS];
    unsigned bhead, bcount;
    /* The tenant whose journal positions bar[] holds (a reference while
     * not NULL): one at a time, see conn_hold_at. */
    inv_tenant *bar_tenant;
    uint32_t ev; /* events registered with epoll */
    bool closing; /* QUIT or framing error: flush, then close */
    bool want_write; /* last send hit EAGAIN */
    int64_t linger_until_ms; /* lingering close (CONN_LINGER_MS): 0, or when it ends */
    size_t linger_bytes; /* input dropped while lingering */
    int64_t last_ms;
    http_conn *http; /* accepted on --http-port; NULL: RESP */
    list_node link; /* on lp->conns while open */
    list_node held_link; /* on lp->held while a reply waits for durability */
    list_node ready_link; /* on lp->ready while runnable input waits */
    list_node blocked_link; /* on lp->blocked while blocked */
    struct conn *dead_next; /* closed, freed at the end of the iteration */
    size_t mem; /* buffer bytes charged (conn_mem_sync); 0 once closed */
} conn;

struct loop {
    server *srv;
    int epfd, lfd, wakefd, durfd;
    int hfd; /* the HTTP listener; -1: off */
    int spare_fd; /* /dev/null, given up to accept-and-close on EMFILE */
    pthread_t th;
    bool started;
    stats_thread *st;
    cmd_scratch *scratch;
    resp_arg *argv;
    char *rbuf;
    list_head conns; /* open connections, newest first */
    list_head held; /* connections with held replies */
    list_head ready; /* runnable input left by conn_pump, FIFO */
    list_head blocked; /* connections in FEED.READ BLOCK */
    /* The durability eventfd fired since the blocked were last read (under
     * every fsync policy: inv_durable_position is UINT64_MAX but under
     * always, so it cannot tell) */
    bool blocked_signal;
    int64_t blocked_next_ms; /* nearest deadline among them; 0: none */
    conn *dead; /* closed, freed by loop_reap */
    int64_t now_ms, last_sweep_ms, last_quiesce_ms, stop_deadline_ms;
    uint32_t index; /* in srv->loops: its slot in a gather */
    _Atomic(mail *) inbox; /* pushed by any loop, drained by this one */
    int64_t log_second; /* rate limit of conn_log */
    unsigned log_lines;
    uint64_t mem; /* owner only: the sum of its connections' mem */
    int64_t evict_wake_ms; /* the last time it woke the others (enforce) */
};

/* One loop's answer to a gather. Only that loop writes it, before its
 * release decrement of gather.pending. */
typedef struct {
    mail m;
    resp_out text; /* LIST: its connections' lines */
    uint64_t killed; /* KILL: connections it matched */
    bool kill_requester; /* KILL matched the requester (SKIPME no) */
} gather_part;

struct gather {
    client_filter f; /* immutable once posted (ids: copied below) */
    loop *home; /* the requester's loop; immutable */
    conn *requester; /* home loop only; NULL once it closed */
    _Atomic uint32_t pending; /* parts not yet answered */
    mail done;
    uint32_t nparts;
    gather_part parts[]; /* nparts, then f.ids' copy, in one block */
};

struct server {
    server_config cfg;
    server_ctx ctx;
    stats_global g;
    inv_tenants *tenants;
    server_subs *subs;
    token_registry tokens; /* --tokens */
    int port;
    int http_port; /* 0: off */
    unsigned nloops;
    loop *loops;
    _Atomic int stopping;
    bool durable;
    /* server_pause: the loops park at their iteration's end while
     * pause_req is set (a replica applies its leader's records alone).
     * paused and exited count loops, under pause_lock. */
    _Atomic int pause_req;
    pthread_mutex_t pause_lock;
    pthread_cond_t pause_cv;
    unsigned paused, exited;
};

static char g_tag_listen, g_tag_listen_http, g_tag_wake, g_tag_durable; /* epoll data tags */

/* The connection that embeds a node of one of the loop's lists. */
static conn *conn_of(list_node *n)
{
    return LIST_ENTRY(n, conn, link);
}
static conn *held_of(list_node *n)
{
    return LIST_ENTRY(n, conn, held_link);
}
static conn *ready_of(list_node *n)
{
    return LIST_ENTRY(n, conn, ready_link);
}
static conn *blocked_of(list_node *n)
{
    return LIST_ENTRY(n, conn, blocked_link);
}

/* ---- what CLIENT LIST and the log say about a connection ---------------- */

/* "ip:port", or "[ip]:port" for IPv6 (as Redis writes them). */
static void format_addr(const sock_addr *a, char *dst, size_t cap)
{
    char ip[INET6_ADDRSTRLEN];
    if (a->sa.sa_family == AF_INET6 &&
        inet_ntop(AF_INET6, &a->in6.sin6_addr, ip, sizeof ip) != NULL)
        snprintf(dst, cap, "[%s]:%u", ip, (unsigned)ntohs(a->in6.sin6_port));
    else if (a->sa.sa_family == AF_INET &&
             inet_ntop(AF_INET, &a->in4.sin_addr, ip, sizeof ip) != NULL)
        snprintf(dst, cap, "%s:%u", ip, (unsigned)ntohs(a->in4.sin_port));
    else
        snprintf(dst, cap, "?:0");
}

/* Owner loop only: every field read here is the loop's own. */
static void conn_facts_fill(conn *c, conn_facts *f)
{
    sock_addr local;
    socklen_t sl = sizeof local;
    int64_t now = c->lp->now_ms;
    memset(f, 0, sizeof *f);
    format_addr(&c->peer, f->addr, sizeof f->addr);
    if (getsockname(c->fd, &local.sa, &sl) != 0)
        local.sa.sa_family = AF_UNSPEC;
    format_addr(&local, f->laddr, sizeof f->laddr);
    f->fd = c->fd;
    f->proto = c->out.proto;
    f->age_s = (now - c->created_ms) / 1000;
    f->idle_s = (now - c->last_ms) / 1000;
    f->qbuf = c->qlen;
    f->qbuf_free = c->qcap - c->qlen;
    f->obl = c->out.len - c->sent;
    f->omem = c->out.cap;
    f->tot_mem = sizeof *c + c->qcap + c->out.cap;
    f->closing = c->closing;
    f->want_write = c->want_write;
    f->blocked = c->blocked;
}

/* One line on stderr about a client, which is named by id, address and
 * the name it gave itself (names hold no spaces: cmd_conn.c). At most
 * LOOP_LOG_LINES_PER_S lines per loop per second. */
static void conn_log(conn *c, const char *what)
{
    loop *lp = c->lp;
    char addr[CLIENT_ADDR_MAX];
    if (lp->now_ms / 1000 != lp->log_second) {
        lp->log_second = lp->now_ms / 1000;
        lp->log_lines = 0;
    }
    if (lp->log_lines >= LOOP_LOG_LINES_PER_S)
        return;
    lp->log_lines++;
    format_addr(&c->peer, addr, sizeof addr);
    fprintf(stderr, "invcored: client id=%llu addr=%s name=%s lib-name=%s %s\n",
            (unsigned long long)c->sess.id, addr, c->sess.name ? c->sess.name : "",
            c->sess.lib_name ? c->sess.lib_name : "", what);
}

/* ---- connection lifetime ------------------------------------------------ */

/* The requester of a gather no longer waits for it (it is closing): the
 * gather completes without it and is freed by its home loop. */
static void conn_unpark(conn *c)
{
    if (c->gather != NULL)
        c->gather->requester = NULL;
    c->gather = NULL;
    c->parked = false;
}

static void held_remove(conn *c)
{
    list_remove(&c->lp->held, &c->held_link);
}

/* Takes c off the blocked list (its read answered, or it is closing). */
static void conn_unblock(conn *c)
{
    if (!c->blocked)
        return;
    list_remove(&c->lp->blocked, &c->blocked_link);
    c->blocked = false;
    /* relaxed: a statistic (INFO blocked_clients), orders nothing */
    atomic_fetch_sub_explicit(&c->lp->srv->g.blocked, 1, memory_order_relaxed);
}

/* Appends c to the ready list (FIFO, so re-added connections go after the
 * ones already waiting: round-robin between busy pipelines). */
static void ready_add(conn *c)
{
    if (!list_linked(&c->lp->ready, &c->ready_link))
        list_push_back(&c->lp->ready, &c->ready_link);
}

static void ready_remove(conn *c)
{
    list_remove(&c->lp->ready, &c->ready_link);
}

/* Drops the connection's barrier tenant reference. */
static void conn_bar_tenant_put(conn *c)
{
    if (c->bar_tenant == NULL)
        return;
    inv_defer_journal_end(inv_tenant_engine(c->bar_tenant)); /* before it may close */
    inv_tenant_put(c->bar_tenant);
    c->bar_tenant = NULL;
}

/* Charges the connection's buffers as they are now (nothing once closed)
 * to its loop and to the shared total (see the invariants above). Owner
 * loop only; no lock, one relaxed atomic add when a size changed. */
static void conn_mem_sync(conn *c)
{
    loop *lp = c->lp;
    size_t now = c->fd >= 0 ? c->qcap + c->out.cap : 0;
    assert(lp->mem >= c->mem); /* the loop's sum includes this charge */
    if (now == c->mem)
        return;
    if (now > c->mem) {
        stats_add_global(&lp->srv->g.clients_mem, now - c->mem);
        lp->mem += now - c->mem;
    } else {
        stats_sub_global(&lp->srv->g.clients_mem, c->mem - now);
        lp->mem -= c->mem - now;
    }
    c->mem = now;
    assert(lp->mem >= now);
}

/* Closes the socket at once; the memory is freed at the end of the loop
 * iteration (loop_reap), so events already fetched for it stay safe. */
static void conn_close(conn *c)
{
    loop *lp = c->lp;
    if (c->fd < 0)
        return;
    held_remove(c);
    ready_remove(c); /* freed at loop_reap: must not stay reachable */
    conn_unpark(c); /* a reply it awaits has nowhere to go */
    conn_unblock(c);
    session_free(&c->sess);
    conn_bar_tenant_put(c);
    c->bcount = 0;
    epoll_ctl(lp->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    list_remove(&lp->conns, &c->link);
    resp_out_free(&c->out);
    http_conn_free(c->http);
    c->http = NULL;
    free(c->q);
    c->q = NULL;
    c->qlen = c->qcap = 0;
    c->fd = -1;
    conn_mem_sync(c); /* releases all it was charged */
    /* last: a client that sees the slot free (INFO connected_clients) finds
     * the memory released too */
    stats_sub_global(&lp->srv->g.connected, 1); /* the maxclients slot */
    c->dead_next = lp->dead;
    lp->dead = c;
}

static void loop_reap(loop *lp)
{
    while (lp->dead) {
        conn *c = lp->dead;
        lp->dead = c->dead_next;
        free(c);
    }
}

static size_t out_pending(const conn *c)
{
    return c->out.len - c->sent;
}

/* Buffered input could run now: it is complete enough to parse, nothing
 * ends the connection, and the client has output room. */
static bool conn_runnable(const conn *c)
{
    return c->fd >= 0 && c->qlen > 0 && !c->closing && !c->out.failed && !c->parked &&
           !c->blocked && c->need <= c->qlen && out_pending(c) <= CONN_OUT_SOFT;
}

/* The end (relative to out.buf) of what may be sent now. */
static size_t sendable_end(conn *c)
{
    uint64_t dur = c->bcount > 0 ? inv_durable_position(inv_tenant_engine(c->bar_tenant)) : 0;
    while (c->bcount > 0) {
        unsigned i = c->bhead;
        if (c->bar[i].pos > dur)
            return (size_t)(c->bar[i].off - c->base);
        c->bhead = (c->bhead + 1) % CONN_BARRIERS;
        c->bcount--;
    }
    held_remove(c);
    return c->out.len;
}

static void conn_update_events(conn *c)
{
    uint32_t ev = 0;
    struct epoll_event e;
    if ((!c->closing || c->linger_until_ms != 0) && out_pending(c) <= CONN_OUT_SOFT)
        ev |= EPOLLIN; /* a lingering connection's input is read and dropped */
    if (c->want_write)
        ev |= EPOLLOUT;
    if (ev == c->ev)
        return;
    /* RDHUP only with IN: unread EOF must not wake a loop that waits */
    e.events = ev | ((ev & EPOLLIN) ? EPOLLRDHUP : 0);
    e.data.ptr = c;
    if (epoll_ctl(c->lp->epfd, EPOLL_CTL_MOD, c->fd, &e) == 0)
        c->ev = ev;
}

/* A closing HTTP connection whose response is all sent: shuts its write
 * side and keeps reading (and dropping) its input (CONN_LINGER_MS). True
 * while it lingers; false when it is to be closed now (RESP, or the
 * shutdown failed). */
static bool conn_linger(conn *c)
{
    assert(c->closing && c->out.len == 0);
    if (c->linger_until_ms != 0)
        return true; /* already: its input's end or the sweep closes it */
    if (c->http == NULL || shutdown(c->fd, SHUT_WR) != 0)
        return false;
    c->linger_until_ms = c->lp->now_ms + CONN_LINGER_MS;
    struct epoll_event e = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
    if (epoll_ctl(c->lp->epfd, EPOLL_CTL_MOD, c->fd, &e) != 0)
        return false;
    c->ev = EPOLLIN;
    return true;
}

/* A lingering connection's input: dropped; closed at its end, on an error,
 * or past CONN_LINGER_BYTES_MAX. */
static void conn_linger_read(conn *c)
{
    loop *lp = c->lp;
    assert(c->linger_until_ms != 0);
    for (int round = 0; round < LOOP_READS_PER_EVENT; round++) {
        ssize_t n = read(c->fd, lp->rbuf, LOOP_READ_BUF);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0 || (c->linger_bytes += (size_t)n) > CONN_LINGER_BYTES_MAX) {
            conn_close(c);
            return;
        }
    }
}

/* Sends what may be sent. Returns -1 if the connection was closed. */
static int conn_flush(conn *c)
{
    size_t end;
    if (c->out.failed) {
        /* a reply is truncated: sending it, or anything after it, would
         * desynchronise the client */
        conn_close(c);
        return -1;
    }
    end = sendable_end(c);
    c->want_write = false;
    while (c->sent < end) {
        ssize_t n = send(c->fd, c->out.buf + c->sent, end - c->sent, MSG_NOSIGNAL);
        if (n > 0) {
            c->sent += (size_t)n;
            c->last_ms = c->lp->now_ms;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            c->want_write = true;
            break;
        }
        conn_close(c);
        return -1;
    }
    if (c->sent == c->out.len) {
        c->base += c->out.len;
        c->out.len = c->sent = 0;
        if (c->out.cap > CONN_OUT_KEEP)
            resp_out_free(&c->out);
    } else if (c->sent > c->out.len / 2) {
        memmove(c->out.buf, c->out.buf + c->sent, c->out.len - c->sent);
        c->base += c->sent;
        c->out.len -= c->sent;
        c->sent = 0;
    }
    conn_mem_sync(c); /* every path that grows a buffer ends here or closes */
    if (c->closing && c->out.len == 0 && !c->parked) {
        if (conn_linger(c))
            return 0;
        conn_close(c);
        return -1;
    }
    if (out_pending(c) > c->lp->srv->cfg.max_reply) {
        stats_add_global(&c->lp->srv->g.reply_limit_closed, 1);
        conn_log(c, "closed: unsent replies over --max-reply-buffer");
        conn_close(c);
        return -1;
    }
    conn_update_events(c);
    return 0;
}

/* Holds the reply starting at absolute offset start until journal
 * position pos is durable (RESP: the command's last write; HTTP: the
 * handler's durable_at). */
static void conn_hold_at(conn *c, uint64_t start, uint64_t pos, inv_tenant *t)
{
    loop *lp = c->lp;
    if (lp->durfd < 0 || pos == 0 || t == NULL)
        return;
    if (pos <= inv_durable_position(inv_tenant_engine(t)))
        return;
    if (c->bar_tenant != t) {
        /* Positions of two journals do not compare: the replies held for
         * the previous tenant are made durable first (a write after a
         * switch of tenant on one connection, with writes in flight: a
         * rare case, one fsync's wait), then the barriers are t's. */
        if (c->bcount > 0) {
            unsigned last = (c->bhead + c->bcount - 1) % CONN_BARRIERS;
            int rc = inv_wait_durable(inv_tenant_engine(c->bar_tenant), c->bar[last].pos);
            if (rc != INV_OK) {
                /* that journal failed: the held replies (and this one)
                 * will never be durable, so they are never sent; the
                 * connection closes after what was, as loop_release_held
                 * closes a held connection */
                c->out.len = (size_t)(c->bar[c->bhead].off - c->base);
                c->bcount = 0;
                c->closing = true;
                return;
            }
            c->bcount = 0; /* all durable: sendable */
        }
        conn_bar_tenant_put(c);
        inv_tenant_ref(t);
        c->bar_tenant = t;
    }
    if (c->bcount == CONN_BARRIERS) {
        /* ring full: the newest barrier also covers this reply; waiting
         * for the larger position is conservative and keeps order */
        unsigned last = (c->bhead + c->bcount - 1) % CONN_BARRIERS;
        if (c->bar[last].pos < pos)
            c->bar[last].pos = pos;
    } else {
        unsigned i = (c->bhead + c->bcount) % CONN_BARRIERS;
        c->bar[i].off = start;
        c->bar[i].pos = pos;
        c->bcount++;
    }
    stats_add_global(&lp->srv->g.held_replies, 1);
    if (!list_linked(&lp->held, &c->held_link))
        list_push_front(&lp->held, &c->held_link);
}

/* Parses and runs requests from data[0..len); returns the bytes consumed.
 * Stops at an incomplete request, on backpressure, when closing, or once
 * the reply buffer failed. */
static size_t conn_process(conn *c, const char *data, size_t len)
{
    loop *lp = c->lp;
    size_t pos = 0;
    /* out.failed: replies are being lost, so no request may run; parked:
     * a CLIENT LIST/KILL reply is owed first; blocked: a FEED.READ one */
    while (!c->closing && !c->out.failed && !c->parked && !c->blocked && pos < len) {
        if (c->http != NULL) { /* HTTP: the same loop, another parser */
            if (out_pending(c) > CONN_OUT_SOFT || c->need > len - pos)
                break;
            uint64_t start = c->base + c->out.len, durable_at;
            size_t used, need;
            inv_tenant *last = http_conn_tenant(c->http);
            if (last != NULL) /* a keep-alive client's tenant is usually the last one */
                inv_defer_journal_begin(inv_tenant_engine(last));
            http_step hs = http_conn_step(c->http, data + pos, len - pos, &c->out, lp->now_ms,
                                          &used, &need, &durable_at);
            c->need = need;
            if (hs == HTTP_STEP_NEED_MORE)
                break;
            conn_hold_at(c, start, durable_at, http_conn_tenant(c->http));
            c->closing = c->closing || hs == HTTP_STEP_CLOSE; /* conn_hold_at may close */
            pos += used;
            continue;
        }
        resp_limits lim;
        size_t argc, used, need;
        const char *err;
        resp_status st;
        if (out_pending(c) > CONN_OUT_SOFT)
            break;
        if (c->need > len - pos)
            break;
        session_limits(&c->sess, &lim);
        st = resp_parse(data + pos, len - pos, &lim, lp->argv, &argc, &used, &need, &err);
        if (st == RESP_NEED_MORE) {
            c->need = need;
            break;
        }
        c->need = 0;
        if (st == RESP_ERROR) {
            char what[160];
            resp_w_errorf(&c->out, "ERR %s", err);
            stats_add_global(&lp->srv->g.protocol_errors, 1);
            snprintf(what, sizeof what, "closed: %s", err);
            conn_log(c, what);
            c->closing = true;
            break;
        }
        if (argc > 0) {
            uint64_t start = c->base + c->out.len;
            if (c->sess.e != NULL)
                inv_defer_journal_begin(c->sess.e); /* no-op when it is deferred already */
            if (command_exec(&c->sess, &c->out, lp->argv, argc))
                conn_hold_at(c, start, inv_last_write_position(), c->sess.tenant);
            if (c->sess.quit)
                c->closing = true;
        }
        pos += used;
    }
    return pos;
}

/* Keeps data[0..len) as the connection's pending input. Returns 0, or -1
 * when memory is short: the input is then lost, so the caller must close
 * the connection (parsing later bytes as new requests would run the tail
 * of a request as a command). Input beyond max_query is a protocol error
 * that queues its reply and marks the connection closing (returns 0).
 * A closing connection runs no more requests, so its input is dropped:
 * leftovers after a framing error must not earn a second error. */
static int conn_keep_input(conn *c, const char *data, size_t len)
{
    size_t cap;
    char *nq;
    if (len == 0 || c->closing) {
        free(c->q);
        c->q = NULL;
        c->qlen = c->qcap = 0;
        return 0;
    }
    if (len > c->lp->srv->cfg.max_query) {
        /* HTTP: not reached (config_parse keeps the HTTP limits within) */
        if (c->http == NULL)
            resp_w_error(&c->out, "ERR", "Protocol error: query buffer limit exceeded");
        stats_add_global(&c->lp->srv->g.protocol_errors, 1);
        conn_log(c, "closed: unparsed input over --max-query-buffer");
        c->closing = true;
        free(c->q);
        c->q = NULL;
        c->qlen = c->qcap = 0;
        return 0;
    }
    if (c->q && data >= c->q && data < c->q + c->qcap) {
        /* already ours: slide to the front */
        memmove(c->q, data, len);
        c->qlen = len;
        return 0;
    }
    /* sized to what is kept, not to the next read: a client that leaves
     * one byte of a request costs CONN_Q_MIN, not a read buffer's worth
     * (the next read grows it by doubling, in conn_on_readable) */
    cap = CONN_Q_MIN;
    while (cap < len)
        cap *= 2;
    if (c->q && c->qcap >= len) { /* data is in the loop's buffer */
        memcpy(c->q, data, len);
        c->qlen = len;
        return 0;
    }
    nq = inv_malloc(cap);
    if (nq == NULL)
        return -1;
    memcpy(nq, data, len);
    free(c->q);
    c->q = nq;
    c->qcap = cap;
    c->qlen = len;
    return 0;
}

/* Runs what is buffered (after backpressure lifted). -1: closed. */
static int conn_resume(conn *c)
{
    size_t used;
    if (c->qlen == 0 || c->closing)
        return 0;
    used = conn_process(c, c->q, c->qlen);
    /* used == 0 with closing set: keep_input drops the input */
    if ((used > 0 || c->closing) && conn_keep_input(c, c->q + used, c->qlen - used) != 0) {
        conn_close(c);
        return -1;
    }
    return conn_flush(c);
}

/* Flushes, then runs input that backpressure left buffered once the
 * client has room again (held replies released by fsync included). After
 * LOOP_PUMP_ROUNDS it yields to other clients; input still runnable then
 * goes on the ready list (see the invariants above). -1: closed. */
static int conn_pump(conn *c)
{
    for (int round = 0; round < LOOP_PUMP_ROUNDS; round++) {
        size_t before = c->qlen;
        if (conn_flush(c) != 0)
            return -1;
        if (!conn_runnable(c))
            return 0; /* waits for bytes, EPOLLOUT, durability or close */
        if (conn_resume(c) != 0)
            return -1;
        if (c->qlen == before)
            return 0; /* no progress (defended): wait for more bytes */
    }
    if (conn_runnable(c))
        ready_add(c);
    return 0;
}

/* Runs the connections conn_pump left runnable. Only those waiting when
 * the call began: one re-added by its pump waits for the next iteration. */
static void loop_run_ready(loop *lp)
{
    size_t n = lp->ready.count;
    for (size_t i = 0; i < n && !list_empty(&lp->ready); i++) {
        conn *c = ready_of(list_first(&lp->ready));
        ready_remove(c);
        conn_pump(c);
    }
}

static void conn_on_readable(conn *c)
{
    loop *lp = c->lp;
    if (c->linger_until_ms != 0) {
        conn_linger_read(c);
        return;
    }
    for (int round = 0; round < LOOP_READS_PER_EVENT; round++) {
        const char *data;
        size_t len, used;
        ssize_t n;
        if (c->closing || out_pending(c) > CONN_OUT_SOFT)
            break;
        n = read(c->fd, lp->rbuf, LOOP_READ_BUF);
        if (n == 0) { /* EOF: send what is owed, then close */
            c->closing = true;
            break;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            conn_close(c);
            return;
        }
        if (n < 0)
            break;
        c->last_ms = lp->now_ms;
        if (c->qlen == 0) {
            data = lp->rbuf;
            len = (size_t)n;
        } else {
            if (c->qcap - c->qlen < (size_t)n) {
                size_t cap = c->qcap * 2;
                char *nq;
                while (cap - c->qlen < (size_t)n)
                    cap *= 2;
                nq = inv_realloc(c->q, cap);
                if (nq == NULL) {
                    conn_close(c);
                    return;
                }
                c->q = nq;
                c->qcap = cap;
            }
            memcpy(c->q + c->qlen, lp->rbuf, (size_t)n);
            c->qlen += (size_t)n;
            data = c->q;
            len = c->qlen;
        }
        used = conn_process(c, data, len);
        if (conn_keep_input(c, data + used, len - used) != 0) {
            conn_close(c);
            return;
        }
        if (c->out.failed)
            break; /* conn_flush closes it */
        if ((size_t)n < LOOP_READ_BUF)
            break;
    }
    /* Small replies go out with the pass's others (CONN_FLUSH_DEFER_BYTES):
     * the ready list runs after the pass. Not conn_flush either way: input
     * left by backpressure must run once the output drains, and nothing
     * else may ever wake this connection. */
    if (!c->closing && !c->out.failed && out_pending(c) <= CONN_FLUSH_DEFER_BYTES) {
        conn_mem_sync(c); /* charged now: the bound is enforced after each event */
        ready_add(c);
        return;
    }
    conn_pump(c);
}

/* ---- CLIENT LIST / KILL across loops (see the top of the file) ---------- */

/* Pushes m on lp's mailbox and wakes lp. Any thread. After the push, m
 * (and its gather) may be gone: the caller must not touch them again. */
static void mail_post(loop *lp, mail *m)
{
    uint64_t one = 1;
    ssize_t w;
    /* relaxed: only a first guess of the head; a failed CAS reloads it */
    mail *head = atomic_load_explicit(&lp->inbox, memory_order_relaxed);
    do {
        m->next = head;
        /* release: the gather's request (and, for a done notice, every
         * part) is visible to the loop that takes m (acquire below) */
    } while (!atomic_compare_exchange_weak_explicit(&lp->inbox, &head, m, memory_order_release,
                                                    memory_order_relaxed));
    w = write(lp->wakefd, &one, sizeof one);
    (void)w; /* the counter is full only if lp is awake anyway */
}

static void gather_free(gather *g)
{
    for (uint32_t i = 0; i < g->nparts; i++)
        resp_out_free(&g->parts[i].text);
    free(g);
}

/* This loop's part: lists, or closes, its matching connections. Runs
 * where no connection is being worked on (loop_run_mail), so closing any
 * of them is safe. */
static void gather_answer(loop *lp, mail *m)
{
    gather *g = m->g;
    gather_part *p = &g->parts[m->slot];
    loop *home = g->home;
    assert(m->slot == lp->index && m->slot < g->nparts);
    for (list_node *n = list_first(&lp->conns), *next; n != NULL; n = next) {
        conn *c = conn_of(n);
        conn_facts cf;
        char what[80];
        next = list_next(n);
        conn_facts_fill(c, &cf);
        if (!client_filter_match(&g->f, &c->sess, &cf))
            continue;
        if (g->f.kind == CLIENT_GATHER_LIST) {
            client_info_line(&c->sess, &cf, &p->text);
            continue;
        }
        p->killed++;
        if (c->sess.id == g->f.self_id) {
            p->kill_requester = true; /* closes after its reply */
            continue;
        }
        snprintf(what, sizeof what, "closed: CLIENT KILL by client id=%llu",
                 (unsigned long long)g->f.self_id);
        conn_log(c, what);
        conn_close(c);
    }
    /* acq_rel: the release publishes this part; the last loop to answer
     * acquires every other part before it posts the done notice */
    if (atomic_fetch_sub_explicit(&g->pending, 1, memory_order_acq_rel) == 1)
        mail_post(home, &g->done);
}

/* Every loop answered: the requester (if still there) gets its reply and
 * runs the requests that waited behind it. */
static void gather_finish(gather *g)
{
    conn *c = g->requester;
    resp_out *all = &g->parts[0].text;
    uint64_t killed = 0;
    bool kill_requester = false;
    if (c == NULL) {
        gather_free(g);
        return;
    }
    for (uint32_t i = 0; i < g->nparts; i++) {
        killed += g->parts[i].killed;
        kill_requester |= g->parts[i].kill_requester;
        if (i > 0 && g->parts[i].text.len > 0) /* an empty part has no buf */
            resp_out_raw(all, g->parts[i].text.buf, g->parts[i].text.len);
        all->failed |= g->parts[i].text.failed;
    }
    c->gather = NULL;
    c->parked = false;
    if (all->failed)
        resp_w_error(&c->out, inv_errcode(INV_ENOMEM), inv_strerror(INV_ENOMEM));
    else
        client_gather_reply(&c->out, &g->f, all->buf, all->len, killed);
    if (kill_requester)
        c->closing = true; /* as Redis: after the reply */
    gather_free(g);
    conn_pump(c);
}

/* Takes the whole mailbox and handles it, oldest first. */
static void loop_run_mail(loop *lp)
{
    mail *m, *fifo = NULL;
    /* relaxed: a cheap look first; the exchange below orders what it takes */
    if (atomic_load_explicit(&lp->inbox, memory_order_relaxed) == NULL)
        return;
    /* acquire: pairs with the release push in mail_post */
    m = atomic_exchange_explicit(&lp->inbox, NULL, memory_order_acquire);
    while (m != NULL) { /* the stack is newest first: reverse it */
        mail *next = m->next;
        m->next = fifo;
        fifo = m;
        m = next;
    }
    while (fifo != NULL) {
        mail *next = fifo->next; /* read first: handling may free fifo */
        if (fifo->slot == GATHER_DONE)
            gather_finish(fifo->g);
        else
            gather_answer(lp, fifo);
        fifo = next;
    }
}

static void conn_op_facts(void *cp, conn_facts *out)
{
    conn_facts_fill(cp, out);
}

/* Parks the connection and posts the gather to every loop, its own
 * included (answered at its next loop_run_mail, like the others). */
static int conn_op_gather(void *cp, const client_filter *f)
{
    conn *c = cp;
    server *srv = c->lp->srv;
    uint32_t n = srv->nloops;
    gather *g;
    assert(c->gather == NULL && n > 0);
    g = inv_calloc(1, sizeof *g + n * sizeof(gather_part) + f->nids * sizeof(uint64_t));
    if (g == NULL)
        return -1;
    g->f = *f;
    if (f->nids > 0) {
        uint64_t *ids = (uint64_t *)(g->parts + n);
        memcpy(ids, f->ids, f->nids * sizeof *ids);
        g->f.ids = ids;
    }
    g->home = c->lp;
    g->requester = c;
    g->nparts = n;
    g->done.g = g;
    g->done.slot = GATHER_DONE;
    /* relaxed: published with the rest of g by the release pushes below */
    atomic_store_explicit(&g->pending, n, memory_order_relaxed);
    for (uint32_t i = 0; i < n; i++) {
        g->parts[i].m.g = g;
        g->parts[i].m.slot = i;
        resp_out_init(&g->parts[i].text, 2);
    }
    c->gather = g;
    c->parked = true;
    /* g outlives these posts: its home part, answered by this thread
     * later, keeps pending above zero until then */
    for (uint32_t i = 0; i < n; i++)
        mail_post(&srv->loops[i], &g->parts[i].m);
    return 0;
}

/* ---- FEED.READ BLOCK (see the top of the file) ------------------------------ */

static int conn_op_block(void *cp, uint64_t timeout_ms)
{
    conn *c = cp;
    loop *lp = c->lp;
    assert(!c->blocked && !c->parked);
    if (lp->blocked.count >= LOOP_BLOCKED_MAX)
        return -1;
    c->blocked = true;
    c->block_deadline_ms = timeout_ms ? lp->now_ms + (int64_t)timeout_ms : 0;
    list_push_back(&lp->blocked, &c->blocked_link);
    if (c->block_deadline_ms &&
        (lp->blocked_next_ms == 0 || c->block_deadline_ms < lp->blocked_next_ms))
        lp->blocked_next_ms = c->block_deadline_ms;
    /* relaxed: a statistic (INFO blocked_clients), orders nothing */
    atomic_fetch_add_explicit(&lp->srv->g.blocked, 1, memory_order_relaxed);
    return 0;
}

/* Answers the blocked connections that can be answered: every one when
 * the durable position moved since their last read (the eventfd fired),
 * and those whose deadline passed. Runs where no connection is being
 * worked on. */
static void loop_wake_blocked(loop *lp)
{
    bool advanced = lp->blocked_signal;
    if (!advanced && (lp->blocked_next_ms == 0 || lp->now_ms < lp->blocked_next_ms))
        return; /* the usual iteration: nothing to read, nothing due */
    lp->blocked_signal = false;
    lp->blocked_next_ms = 0;
    size_t n = lp->blocked.count; /* each is visited once */
    for (size_t i = 0; i < n && !list_empty(&lp->blocked); i++) {
        conn *c = blocked_of(list_first(&lp->blocked));
        bool due = c->block_deadline_ms && lp->now_ms >= c->block_deadline_ms;
        list_remove(&lp->blocked, &c->blocked_link);
        list_push_back(&lp->blocked, &c->blocked_link); /* visited: to the back */
        if ((advanced || due) && command_feed_resume(&c->sess, &c->out, due)) {
            conn_unblock(c);
            conn_pump(c); /* its reply, then what it pipelined behind */
        } else if (c->block_deadline_ms &&
                   (lp->blocked_next_ms == 0 || c->block_deadline_ms < lp->blocked_next_ms)) {
            lp->blocked_next_ms = c->block_deadline_ms;
        }
    }
}

/* epoll_wait's timeout: the tick, or sooner for a blocked read's deadline. */
static int loop_wait_ms(const loop *lp)
{
    if (!list_empty(&lp->ready))
        return 0; /* runnable input waits for no event */
    if (lp->blocked_next_ms == 0)
        return LOOP_TICK_MS;
    int64_t left = lp->blocked_next_ms - lp->now_ms;
    return left <= 0 ? 0 : left < LOOP_TICK_MS ? (int)left : LOOP_TICK_MS;
}

static const session_conn_ops g_conn_ops = {conn_op_facts, conn_op_gather, conn_op_block};

/* ---- accept ------------------------------------------------------------- */

/* The HTTP face's read-only test (http_read_only_fn): a cluster's standby
 * refuses HTTP writes as command.c refuses RESP ones. */
static bool ctx_read_only(const void *ctx)
{
    return server_ctx_read_only(ctx);
}

/* Callers count the refusal first: a client that reads the error (or sees
 * the close) and then asks INFO must find it counted. */
static void reject_client(int fd)
{
    ssize_t w = send(fd, MAXCLIENTS_MSG, sizeof MAXCLIENTS_MSG - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)w;
    close(fd);
}

static int open_spare_fd(void)
{
    return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* Out of descriptors (EMFILE/ENFILE): the pending connection stays in the
 * backlog and the level-triggered listener would wake the loop forever.
 * Give up the spare descriptor, accept the client, tell it why and close
 * it, then take the spare back. Counted as a rejected connection (INFO
 * rejected_connections), like a maxclients refusal. Returns 0 if a client
 * was taken off the backlog, -1 if none could be (no spare, or the race
 * for the freed descriptor was lost: retried on the next wake-up). */
static int loop_accept_shed(loop *lp)
{
    int fd;
    if (lp->spare_fd < 0)
        lp->spare_fd = open_spare_fd();
    if (lp->spare_fd < 0)
        return -1;
    close(lp->spare_fd);
    lp->spare_fd = -1;
    fd = accept4(lp->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
        stats_add_global(&lp->srv->g.rejected_maxclients, 1);
        reject_client(fd);
    }
    lp->spare_fd = open_spare_fd();
    return fd >= 0 ? 0 : -1;
}

static void loop_accept(loop *lp, bool http)
{
    server *srv = lp->srv;
    int lfd = http ? lp->hfd : lp->lfd;
    for (int k = 0; k < LOOP_ACCEPT_BATCH; k++) {
        struct epoll_event e;
        conn *c = NULL;
        int one = 1;
        sock_addr peer;
        socklen_t peer_len = sizeof peer;
        int fd = accept4(lfd, &peer.sa, &peer_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0 && (errno == EINTR || errno == ECONNABORTED))
            continue;
        if (fd < 0 && (errno == EMFILE || errno == ENFILE)) {
            if (loop_accept_shed(lp) == 0)
                continue;
            return;
        }
        if (fd < 0)
            return; /* EAGAIN, or a transient error (ENOBUFS): try later */
        /* exact: a slot is taken before the connection is admitted */
        bool admitted = stats_admit(&srv->g.connected, srv->cfg.maxclients);
        if (!admitted || (c = inv_calloc(1, sizeof *c)) == NULL ||
            (http && (c->http = http_conn_new(&srv->cfg, srv->tenants, &srv->tokens, ctx_read_only,
                                              &srv->ctx)) == NULL)) {
            free(c);
            if (admitted)
                stats_sub_global(&srv->g.connected, 1); /* its slot back */
            stats_add_global(&srv->g.rejected_maxclients, 1);
            reject_client(fd); /* after counting: see reject_client */
            continue;
        }
        stats_add_global(&srv->g.accepted, 1);
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c->fd = fd;
        c->lp = lp;
        c->peer = peer;
        c->last_ms = c->created_ms = lp->now_ms;
        session_init(&c->sess, &srv->ctx, lp->st, lp->scratch);
        c->sess.conn_ops = &g_conn_ops;
        c->sess.conn = c;
        resp_out_init(&c->out, 2);
        c->ev = EPOLLIN;
        e.events = EPOLLIN | EPOLLRDHUP;
        e.data.ptr = c;
        if (epoll_ctl(lp->epfd, EPOLL_CTL_ADD, fd, &e) != 0) {
            close(fd);
            session_free(&c->sess);
            http_conn_free(c->http);
            free(c);
            stats_sub_global(&srv->g.connected, 1); /* its slot back */
            continue;
        }
        list_push_front(&lp->conns, &c->link);
    }
}

/* ---- the loop ------------------------------------------------------------ */

/* Replies held for durability go out as their positions become durable.
 * If the journal failed, they never will: those clients are disconnected
 * (everything before the held reply was sent), so no change they could not
 * see made durable is ever acknowledged to them. */
static void loop_release_held(loop *lp)
{
    for (list_node *n = list_first(&lp->held), *next; n != NULL; n = next) {
        next = list_next(n);
        conn_pump(held_of(n));
    }
    /* still held: closed when their tenant's journal failed (asked once
     * per run of connections of one tenant) */
    inv_engine *asked = NULL;
    bool failed = false;
    for (list_node *n = list_first(&lp->held), *next; n; n = next) {
        conn *c = held_of(n);
        next = list_next(n);
        if (c->bar_tenant == NULL)
            continue;
        inv_engine *e = inv_tenant_engine(c->bar_tenant);
        if (e != asked) {
            inv_stats st;
            asked = e;
            failed = inv_stats_get(e, &st) == INV_OK && st.journal_failed;
        }
        if (failed)
            conn_close(c);
    }
}

static void loop_sweep(loop *lp)
{
    unsigned timeout_s = lp->srv->cfg.timeout_s;
    lp->last_sweep_ms = lp->now_ms;
    if (timeout_s == 0 && lp->hfd < 0)
        return;
    for (list_node *n = list_first(&lp->conns), *next; n != NULL; n = next) {
        conn *c = conn_of(n);
        next = list_next(n);
        if (c->linger_until_ms != 0 && lp->now_ms >= c->linger_until_ms) {
            conn_close(c); /* lingered long enough */
            continue;
        }
        if (c->http != NULL) { /* its own idle and request timeouts */
            if (http_conn_expired(c->http, lp->now_ms, c->last_ms)) {
                stats_add_global(&lp->srv->g.idle_closed, 1);
                conn_close(c);
            }
            continue;
        }
        if (timeout_s != 0 && lp->now_ms - c->last_ms > (int64_t)timeout_s * 1000) {
            stats_add_global(&lp->srv->g.idle_closed, 1);
            conn_log(c, "closed: idle for --timeout");
            conn_close(c);
        }
    }
}

/* The loop's connection holding the most buffer memory; NULL if none
 * holds any. O(connections): runs only over the bound. */
static conn *loop_largest(loop *lp)
{
    conn *best = NULL;
    for (list_node *n = list_first(&lp->conns); n != NULL; n = list_next(n)) {
        conn *c = conn_of(n);
        if (c->mem > 0 && (best == NULL || c->mem > best->mem))
            best = c;
    }
    assert(best == NULL || best->fd >= 0);
    return best;
}

/* --maxmemory-clients: over the bound, closes this loop's largest
 * connections first while the loop holds more than its share (bound /
 * loops: a loop under its share closes nothing, so one loop's hostile
 * clients never cost another loop's clients their connection); if the
 * loop has nothing to give, it wakes the loops that do (each runs this at
 * its next iteration). Runs between events, where closing is safe. */
static void loop_mem_enforce(loop *lp)
{
    server *srv = lp->srv;
    uint64_t bound = srv->cfg.maxmemory_clients;
    if (bound == 0 || stats_get(&srv->g.clients_mem) <= bound)
        return; /* the usual case: one relaxed load */
    uint64_t share = bound / srv->nloops;
    for (unsigned k = 0; k < LOOP_EVICT_MAX && lp->mem > share; k++) {
        conn *v = loop_largest(lp);
        if (v == NULL)
            break;
        char what[128];
        snprintf(what, sizeof what,
                 "closed: its %zu bytes of buffers were the most when clients held "
                 "over --maxmemory-clients",
                 v->mem);
        stats_add_global(&srv->g.evicted_memory, 1);
        conn_log(v, what);
        conn_close(v);
        if (stats_get(&srv->g.clients_mem) <= bound)
            return;
    }
    if (lp->mem <= share && lp->now_ms - lp->evict_wake_ms >= LOOP_EVICT_WAKE_MS) {
        lp->evict_wake_ms = lp->now_ms;
        for (unsigned i = 0; i < srv->nloops; i++) {
            uint64_t one = 1;
            ssize_t w = i == lp->index ? 0 : write(srv->loops[i].wakefd, &one, sizeof one);
            (void)w; /* a full counter means that loop is awake anyway */
        }
    }
}

static void loop_begin_stop(loop *lp)
{
    if (lp->stop_deadline_ms)
        return;
    lp->stop_deadline_ms = lp->now_ms + SERVER_SHUTDOWN_GRACE_MS;
    if (lp->lfd >= 0) {
        epoll_ctl(lp->epfd, EPOLL_CTL_DEL, lp->lfd, NULL);
        close(lp->lfd);
        lp->lfd = -1;
    }
    if (lp->hfd >= 0) {
        epoll_ctl(lp->epfd, EPOLL_CTL_DEL, lp->hfd, NULL);
        close(lp->hfd);
        lp->hfd = -1;
    }
    for (list_node *n = list_first(&lp->conns), *next; n != NULL; n = next) {
        conn *c = conn_of(n);
        next = list_next(n);
        c->closing = true; /* no new requests; what is owed still goes */
        conn_unpark(c); /* a CLIENT LIST/KILL reply is not among them */
        conn_unblock(c); /* nor a FEED.READ BLOCK one */
        if (c->out.len == 0)
            conn_close(c);
        else
            conn_flush(c);
    }
}

static void loop_dispatch(loop *lp, struct epoll_event *ev)
{
    void *p = ev->data.ptr;
    conn *c;
    if (p == &g_tag_listen || p == &g_tag_listen_http) {
        loop_accept(lp, p == &g_tag_listen_http);
        return;
    }
    if (p == &g_tag_wake || p == &g_tag_durable) {
        uint64_t v;
        ssize_t r = read(p == &g_tag_wake ? lp->wakefd : lp->durfd, &v, sizeof v);
        (void)r;
        if (p == &g_tag_durable) {
            lp->blocked_signal = true; /* read after the advance: no lost wake-up */
            loop_release_held(lp);
        }
        return;
    }
    c = p;
    if (c->fd < 0)
        return; /* closed earlier in this batch */
    if (ev->events & (EPOLLERR | EPOLLHUP)) {
        conn_close(c);
        return;
    }
    if ((ev->events & EPOLLOUT) && conn_pump(c) != 0)
        return;
    if (ev->events & (EPOLLIN | EPOLLRDHUP))
        conn_on_readable(c);
    loop_mem_enforce(lp); /* at most one event's growth over the bound */
}

/* Parks this loop while a pause is asked for (server_pause), outside
 * every request, with its journal wake-ups paid. */
static void loop_park(loop *lp)
{
    server *srv = lp->srv;
    inv_defer_journal_end(NULL);
    pthread_mutex_lock(&srv->pause_lock);
    srv->paused++;
    pthread_cond_broadcast(&srv->pause_cv);
    /* relaxed: read under the lock its writer holds. */
    while (atomic_load_explicit(&srv->pause_req, memory_order_relaxed))
        pthread_cond_wait(&srv->pause_cv, &srv->pause_lock);
    srv->paused--;
    pthread_mutex_unlock(&srv->pause_lock);
}

/* This loop ends: a pause no longer waits for it. */
static void loop_exited(loop *lp)
{
    server *srv = lp->srv;
    pthread_mutex_lock(&srv->pause_lock);
    srv->exited++;
    pthread_cond_broadcast(&srv->pause_cv);
    pthread_mutex_unlock(&srv->pause_lock);
}

void server_pause(server *s)
{
    assert(s != NULL);
    pthread_mutex_lock(&s->pause_lock);
    /* relaxed: the lock orders it for parkers; the loops' unlocked check
     * below is a hint (they take the lock before parking). */
    atomic_store_explicit(&s->pause_req, 1, memory_order_relaxed);
    for (unsigned i = 0; i < s->nloops; i++) {
        uint64_t one = 1;
        ssize_t w = write(s->loops[i].wakefd, &one, sizeof one);
        (void)w; /* EAGAIN: the counter is saturated, still signalled */
    }
    while (s->paused + s->exited < s->nloops)
        pthread_cond_wait(&s->pause_cv, &s->pause_lock);
    pthread_mutex_unlock(&s->pause_lock);
    assert(s->paused + s->exited == s->nloops);
}

void server_resume(server *s)
{
    assert(s != NULL);
    pthread_mutex_lock(&s->pause_lock);
    atomic_store_explicit(&s->pause_req, 0, memory_order_relaxed);
    pthread_cond_broadcast(&s->pause_cv);
    pthread_mutex_unlock(&s->pause_lock);
}

static void *loop_main(void *arg)
{
    loop *lp = arg;
    server *srv = lp->srv;
    struct epoll_event evs[LOOP_EVENTS_MAX];
    lp->now_ms = clock_mono_coarse_ms();
    lp->last_sweep_ms = lp->now_ms;
    for (;;) {
        int n = epoll_wait(lp->epfd, evs, LOOP_EVENTS_MAX, loop_wait_ms(lp));
        /* The iteration's writes wake the journal's flusher once, at its
         * end (inv_defer_journal_end below), not once per record: each
         * request defers its tenant's journal (conn_process), one at a
         * time per thread. */
        lp->now_ms = clock_mono_coarse_ms();
        for (int i = 0; i < n; i++)
            loop_dispatch(lp, &evs[i]);
        loop_run_ready(lp);
        if (!list_empty(&lp->blocked))
            loop_wake_blocked(lp);
        if (!list_empty(&lp->held))
            loop_release_held(lp); /* safety net; cheap when none held */
        loop_run_mail(lp);
        loop_mem_enforce(lp); /* asked by another loop, or grown by a pump */
        if (lp->now_ms - lp->last_sweep_ms >= 1000)
            loop_sweep(lp);
        /* acquire: pairs with the release in server_stop */
        if (atomic_load_explicit(&srv->stopping, memory_order_acquire))
            loop_begin_stop(lp);
        if (lp->stop_deadline_ms && (list_empty(&lp->conns) || lp->now_ms >= lp->stop_deadline_ms))
            break;
        loop_reap(lp);
        /* An iteration is a quiescent point. Reclaiming costs membarrier
         * IPIs to every CPU that runs one of our threads, so at most once
         * per clock tick, not once per iteration. */
        if (lp->now_ms != lp->last_quiesce_ms) {
            lp->last_quiesce_ms = lp->now_ms;
            inv_quiesce(NULL);
        }
        /* Before sleeping: the replies held for durability this iteration
         * wait on the durability eventfd, which only a woken flusher
         * signals; and a crash loses at most this iteration's records. */
        inv_defer_journal_end(NULL);
        /* relaxed: a hint; loop_park re-reads it under the lock, and the
         * pauser's eventfd write wakes epoll_wait after it set it. */
        if (atomic_load_explicit(&srv->pause_req, memory_order_relaxed))
            loop_park(lp);
    }
    loop_exited(lp);
    while (!list_empty(&lp->conns))
        conn_close(conn_of(list_first(&lp->conns)));
    loop_run_mail(lp); /* other loops' gathers wait for this one's part */
    loop_reap(lp);
    inv_defer_journal_end(NULL); /* the last iteration's writes */
    return NULL;
}

/* ---- setup ---------------------------------------------------------------- */

/* make_listener with reuse_port false binds a probe: SO_REUSEPORT would
 * let a second server process share the port silently (and split clients
 * between two states), so the first bind checks the port is free. */
static int make_listener_opt(const server_config *cfg, int port, bool reuse_port, char *err,
                             size_t errlen);

static int make_listener(const server_config *cfg, int port, char *err, size_t errlen)
{
    return make_listener_opt(cfg, port, true, err, errlen);
}

/* Fills ss with the numeric address bind (IPv6 when it holds a ':') and
 * port. Returns the address's length, or 0 if bind is not an address. */
static socklen_t listen_addr(const char *bind, int port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (strchr(bind, ':') != NULL) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        return inet_pton(AF_INET6, bind, &a6->sin6_addr) == 1 ? sizeof *a6 : 0;
    }
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, bind, &a4->sin_addr) == 1 ? sizeof *a4 : 0;
}

static int make_listener_opt(const server_config *cfg, int port, bool reuse_port, char *err,
                             size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sl = listen_addr(cfg->bind, port, &ss);
    int one = 1, fd;
    if (sl == 0) {
        snprintf(err, errlen, "--bind: '%s' is not a numeric IPv4/IPv6 address", cfg->bind);
        return -1;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuse_port)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0 ||
        (reuse_port && listen(fd, LISTEN_BACKLOG) != 0)) {
        snprintf(err, errlen, "bind %s:%d: %s", cfg->bind, port, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static int bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
        return -1;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static int epoll_add(int epfd, int fd, void *tag)
{
    struct epoll_event e;
    e.events = EPOLLIN;
    e.data.ptr = tag;
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e);
}

static void loop_free(server *srv, loop *lp)
{
    if (lp->lfd >= 0)
        close(lp->lfd);
    if (lp->hfd >= 0)
        close(lp->hfd);
    if (lp->wakefd >= 0)
        close(lp->wakefd);
    if (lp->durfd >= 0)
        close(lp->durfd); /* unsubscribed from every tenant first (server_free) */
    if (lp->epfd >= 0)
        close(lp->epfd);
    if (lp->spare_fd >= 0)
        close(lp->spare_fd);
    stats_thread_free(lp->st);
    command_scratch_free(lp->scratch);
    free(lp->argv);
    free(lp->rbuf);
    lp->lfd = lp->hfd = lp->wakefd = lp->durfd = lp->epfd = lp->spare_fd = -1;
}

static int loop_init(server *srv, loop *lp, char *err, size_t errlen)
{
    lp->srv = srv;
    lp->index = (uint32_t)(lp - srv->loops);
    lp->epfd = epoll_create1(EPOLL_CLOEXEC);
    lp->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    lp->st = stats_thread_new();
    lp->scratch = command_scratch_new();
    lp->argv = inv_calloc(srv->cfg.max_args, sizeof *lp->argv);
    lp->rbuf = inv_malloc(LOOP_READ_BUF);
    /* reserved now, while descriptors are plentiful (loop_accept_shed) */
    lp->spare_fd = open_spare_fd();
    if (lp->epfd < 0 || lp->wakefd < 0 || lp->spare_fd < 0 || !lp->scratch || !lp->argv ||
        !lp->rbuf) {
        snprintf(err, errlen, "loop setup: %s", strerror(errno));
        return -1;
    }
    lp->lfd = make_listener(&srv->cfg, srv->port, err, errlen);
    if (lp->lfd < 0)
        return -1;
    if (srv->port == 0)
        srv->port = bound_port(lp->lfd);
    if (srv->http_port != 0) {
        /* the first loop binds any free port; the others share it */
        lp->hfd = make_listener(&srv->cfg, srv->http_port < 0 ? 0 : srv->http_port, err, errlen);
        if (lp->hfd < 0)
            return -1;
        if (srv->http_port < 0)
            srv->http_port = bound_port(lp->hfd);
    }
    /* With a journal, replies must wait: the loop's one durability eventfd,
     * which every tenant's journal signals (server_subs); in memory,
     * replies never wait. */
    lp->durfd = -1;
    if (srv->cfg.data_dir != NULL) {
        lp->durfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (lp->durfd < 0) {
            snprintf(err, errlen, "durability eventfd: %s", strerror(errno));
            return -1;
        }
        srv->durable = true;
    }
    if (epoll_add(lp->epfd, lp->lfd, &g_tag_listen) != 0 ||
        epoll_add(lp->epfd, lp->wakefd, &g_tag_wake) != 0 ||
        (lp->durfd >= 0 && epoll_add(lp->epfd, lp->durfd, &g_tag_durable) != 0) ||
        (lp->hfd >= 0 && epoll_add(lp->epfd, lp->hfd, &g_tag_listen_http) != 0)) {
        snprintf(err, errlen, "epoll_ctl: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- the durability fan-out ---------------------------------------------- */

struct server_subs {
    pthread_mutex_t lock; /* fds and n; taken inside the tenant set's hooks */
    int fds[SERVER_THREADS_MAX];
    unsigned n;
};

server_subs *server_subs_new(void)
{
    server_subs *u = inv_calloc(1, sizeof *u);
    if (u != NULL)
        pthread_mutex_init(&u->lock, NULL);
    return u;
}

void server_subs_free(server_subs *u)
{
    if (u == NULL)
        return;
    assert(u->n == 0); /* server_free unsubscribed every loop */
    pthread_mutex_destroy(&u->lock);
    free(u);
}

/* Subscribes (or not) every loop's eventfd to t's journal. A failed
 * subscription leaves that loop's replies for t to the loop's own re-check
 * of held replies each iteration (loop_main's safety net), so nothing is
 * acknowledged early; it is logged. */
static void subs_apply(server_subs *u, inv_tenant *t, bool subscribe)
{
    inv_engine *e = inv_tenant_engine(t);
    for (unsigned i = 0; i < u->n; i++) {
        if (!subscribe) {
            inv_durable_unsubscribe_fd(e, u->fds[i]);
            continue;
        }
        int rc = inv_durable_subscribe_fd(e, u->fds[i]);
        if (rc != INV_OK && rc != INV_EINVALID) {
            size_t len;
            fprintf(stderr, "invcored: tenant %s: durability subscription: %s\n",
                    inv_tenant_name(t, &len), inv_strerror(rc));
        }
    }
}

static void subs_on_open(void *arg, inv_tenant *t)
{
    server_subs *u = arg;
    pthread_mutex_lock(&u->lock);
    subs_apply(u, t, true);
    pthread_mutex_unlock(&u->lock);
}

static void subs_on_close(void *arg, inv_tenant *t)
{
    server_subs *u = arg;
    pthread_mutex_lock(&u->lock);
    subs_apply(u, t, false);
    pthread_mutex_unlock(&u->lock);
}

void server_subs_hooks(server_subs *u, inv_tenant_hooks *out)
{
    assert(u != NULL && out != NULL);
    out->on_open = subs_on_open;
    out->on_close = subs_on_close;
    out->arg = u;
}

static int subs_each_on(void *arg, inv_tenant *t)
{
    subs_apply(arg, t, true);
    return 0;
}

static int subs_each_off(void *arg, inv_tenant *t)
{
    subs_apply(arg, t, false);
    return 0;
}

/* Publishes the loops' eventfds and subscribes them to every tenant open
 * now; tenants made later are subscribed by subs_on_open. Runs before any
 * loop starts, so no tenant is made meanwhile (each one is subscribed
 * exactly once). */
static void subs_start(server *srv)
{
    server_subs *u = srv->subs;
    pthread_mutex_lock(&u->lock);
    u->n = 0;
    for (unsigned i = 0; i < srv->nloops; i++)
        if (srv->loops[i].durfd >= 0)
            u->fds[u->n++] = srv->loops[i].durfd;
    pthread_mutex_unlock(&u->lock);
    (void)inv_tenants_each(srv->tenants, subs_each_on, u);
}

/* The reverse, once the loops are joined: no journal signals a descriptor
 * about to be closed. */
static void subs_stop(server *srv)
{
    server_subs *u = srv->subs;
    (void)inv_tenants_each(srv->tenants, subs_each_off, u);
    pthread_mutex_lock(&u->lock);
    u->n = 0;
    pthread_mutex_unlock(&u->lock);
}

/* Physical memory in bytes; 0 if the system does not say. */
static uint64_t phys_mem_bytes(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
}

int server_start(server **out, const server_config *cfg, inv_tenants *tenants, server_subs *subs,
                 char *err, size_t errlen)
{
    server *srv = inv_calloc(1, sizeof *srv);
    *out = NULL;
    if (srv == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    srv->cfg = *cfg;
    pthread_mutex_init(&srv->pause_lock, NULL);
    pthread_cond_init(&srv->pause_cv, NULL);
    config_resolve(&srv->cfg, phys_mem_bytes()); /* --maxmemory-clients in bytes */
    srv->tenants = tenants;
    srv->subs = subs;
    char terr[512];
    if (token_registry_init(&srv->tokens, cfg->tokens_file, terr, sizeof terr) != INV_OK) {
        snprintf(err, errlen, "--tokens: %s", terr);
        free(srv);
        return -1;
    }
    srv->port = cfg->port;
    srv->http_port = cfg->http_port;
    srv->nloops = cfg->threads ? cfg->threads : 1;
    srv->loops = inv_calloc(srv->nloops, sizeof *srv->loops);
    if (srv->loops == NULL) {
        free(srv);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (unsigned i = 0; i < srv->nloops; i++)
        srv->loops[i].lfd = srv->loops[i].hfd = srv->loops[i].wakefd = srv->loops[i].durfd =
            srv->loops[i].epfd = srv->loops[i].spare_fd = -1;
    if (srv->port != 0) {
        /* Refuse a port another process listens on (see make_listener_opt). */
        int probe = make_listener_opt(&srv->cfg, srv->port, false, err, errlen);
        if (probe < 0)
            goto fail;
        close(probe);
    }
    if (srv->http_port > 0) { /* the same check for the HTTP port */
        int probe = make_listener_opt(&srv->cfg, srv->http_port, false, err, errlen);
        if (probe < 0)
            goto fail;
        close(probe);
    }
    for (unsigned i = 0; i < srv->nloops; i++)
        if (loop_init(srv, &srv->loops[i], err, errlen) != 0)
            goto fail;
    subs_start(srv);
    srv->ctx.tenants = tenants;
    srv->ctx.tokens = &srv->tokens;
    srv->ctx.cfg = &srv->cfg;
    srv->ctx.g = &srv->g;
    srv->ctx.start_ms = clock_wall_ms();
    srv->ctx.port = srv->port;
    srv->ctx.http_port = srv->http_port;
    srv->ctx.threads = srv->nloops;
    srv->ctx.cluster = cfg->cluster;
    for (unsigned i = 0; i < srv->nloops; i++) {
        if (pthread_create(&srv->loops[i].th, NULL, loop_main, &srv->loops[i]) != 0) {
            snprintf(err, errlen, "pthread_create failed");
            server_stop(srv);
            server_free(srv);
            return -1;
        }
        srv->loops[i].started = true;
    }
    *out = srv;
    return 0;
fail:
    for (unsigned i = 0; i < srv->nloops; i++)
        loop_free(srv, &srv->loops[i]);
    free(srv->loops);
    token_registry_destroy(&srv->tokens);
    free(srv);
    return -1;
}

int server_reload_tokens(server *s, char *err, size_t errlen)
{
    if (s->tokens.path == NULL) {
        snprintf(err, errlen, "no --tokens file");
        return INV_EINVALID;
    }
    return token_registry_reload(&s->tokens, err, errlen);
}

int server_port(const server *s)
{
    return s->port;
}

int server_http_port(const server *s)
{
    return s->http_port;
}

void server_set_repl(server *s, struct repl *r)
{
    assert(s != NULL && s->ctx.cluster != NULL);
    /* release: pairs with server_ctx_repl's acquire. */
    atomic_store_explicit(&s->ctx.repl, r, memory_order_release);
}

bool server_durable_replies(const server *s)
{
    return s->durable;
}

void server_stop(server *s)
{
    /* release: loops that see the flag also see everything before it */
    atomic_store_explicit(&s->stopping, 1, memory_order_release);
    for (unsigned i = 0; i < s->nloops; i++) {
        uint64_t one = 1;
        ssize_t w = write(s->loops[i].wakefd, &one, sizeof one);
        (void)w;
    }
    for (unsigned i = 0; i < s->nloops; i++) {
        if (s->loops[i].started)
            pthread_join(s->loops[i].th, NULL);
        s->loops[i].started = false;
    }
}

/* After the loops are joined: gathers posted to a loop that had already
 * exited are answered and freed here (one answer may post a done notice
 * to a loop already drained, hence the repeat; each pass handles every
 * mail there is, so it ends). */
static void server_drain_mail(server *s)
{
    bool any = true;
    while (any) {
        any = false;
        for (unsigned i = 0; i < s->nloops; i++) {
            /* relaxed: the loops are joined, nothing runs concurrently */
            if (atomic_load_explicit(&s->loops[i].inbox, memory_order_relaxed) != NULL) {
                any = true;
                loop_run_mail(&s->loops[i]);
            }
        }
    }
}

void server_free(server *s)
{
    if (s == NULL)
        return;
    server_drain_mail(s);
    subs_stop(s);
    for (unsigned i = 0; i < s->nloops; i++)
        loop_free(s, &s->loops[i]);
    free(s->loops);
    token_registry_destroy(&s->tokens);
    pthread_mutex_destroy(&s->pause_lock);
    pthread_cond_destroy(&s->pause_cv);
    free(s);
}
