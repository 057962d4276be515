/*
 * repl_elect.c — leader election on an etcd lease (repl_elect.h has the
 * contract).
 *
 * One thread per elector runs rounds (elect_round): read /<cluster>/leader;
 * present → follow it (watch the key until it is deleted); absent → if
 * allowed, campaign (grant a lease, then a txn "create_revision == 0 → put
 * the key on my lease"); won → lead (keep-alives every granted TTL /
 * REPL_KEEPALIVE_FRACTION until a failure, valid_until, a resign or stop).
 *
 * Shared state and its locking:
 *  - (term, valid_until_ns) is the pair is_leader reads on every call. It
 *    is published with a sequence lock: writers hold e->mu (the thread and
 *    repl_elect_resign), so there is one writer at a time; readers take no
 *    lock and retry a torn read at most REPL_SEQ_READS_MAX times (then they
 *    answer "not leader", the safe side). valid_until_ns 0: not leader.
 *  - Everything else shared (status, stop / pause / resign requests, the
 *    resign holdoff) is under e->mu, with e->cond (monotonic clock) for the
 *    thread's interruptible waits and for resign's wait for its answer.
 *  - The etcd client and the lease id belong to the thread alone.
 *
 * Invariants: the pair says leader only while the thread is in lead()
 * (published after a won campaign, cleared before it returns); a
 * valid_until is never later than the send time of the request that
 * earned it + the TTL etcd granted − REPL_LEASE_SAFETY_MS; once a resign
 * is requested the thread publishes no leadership until it has answered.
 */
#include "server/repl_elect.h"

#include <assert.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "fileio.h"
#include "server/etcd.h"

/* Wait between rounds after an etcd error, and between re-reads of a free
 * key this node may not campaign for (a standby still applying). */
#define REPL_RETRY_MS 100u
/* One etcd_watch_next wait: how late the thread sees a stop while it
 * follows (the watch has no other wake-up). */
#define REPL_WATCH_SLICE_MS 50u
/* Torn reads of the (term, valid_until) pair before is_leader gives up and
 * answers false: a writer publishes a few times a second, so a retry is
 * already rare. */
#define REPL_SEQ_READS_MAX 64u
/* resign waits for the thread's answer for at most this many etcd calls
 * (one keep-alive in flight, then the revoke) plus one. */
#define REPL_RESIGN_WAIT_CALLS 3u
/* etcd calls time out after TTL / REPL_KEEPALIVE_FRACTION, and never
 * later than this: it bounds how long stop() and resign() wait for a call
 * in flight, and is still well above an etcd leader election (1 s by
 * default) that a call may have to wait out. */
#define REPL_ETCD_TIMEOUT_MS_MAX 2000u
#define REPL_KEY_MAX (REPL_CLUSTER_MAX + 16u) /* "/<cluster>/leader" */
/* The leader key's value: {"addr":"<host:port>"} */
#define REPL_VALUE_PREFIX "{\"addr\":\""
#define REPL_VALUE_SUFFIX "\"}"
#define REPL_VALUE_MAX (sizeof REPL_VALUE_PREFIX + REPL_ADDR_MAX + sizeof REPL_VALUE_SUFFIX)
#define REPL_PORT_MAX 65535u
#define REPL_PORT_DIGITS_MAX 5u

/* etcd may grant more than asked (its minimum TTL is about 1.5 election
 * timeouts); more than this is a misconfigured etcd, refused. */
#define REPL_GRANTED_TTL_S_MAX 600

/* After a keep-alive interval and a whole call timeout (each TTL / 3),
 * valid_until must still be ahead: the next keep-alive can renew it. */
_Static_assert(REPL_LEASE_SAFETY_MS <
                   REPL_LEASE_TTL_MS_MIN - 2u * (REPL_LEASE_TTL_MS_MIN / REPL_KEEPALIVE_FRACTION),
               "the safety margin must leave room for keep-alives");
_Static_assert(REPL_LEASE_TTL_MS_MIN / REPL_KEEPALIVE_FRACTION >= ETCD_TIMEOUT_MS_MIN &&
                   REPL_ETCD_TIMEOUT_MS_MAX >= ETCD_TIMEOUT_MS_MIN,
               "the etcd timeout is derived from the TTL");

struct repl_elect {
    /* immutable after start */
    char key[REPL_KEY_MAX];
    size_t klen;
    char value[REPL_VALUE_MAX];
    size_t vlen;
    char advertise[REPL_ADDR_MAX + 1];
    int64_t ttl_s; /* requested, rounded up */
    uint32_t etcd_timeout_ms;
    uint64_t check_interval_ns; /* a follower re-reads the key this often */
    bool (*may_campaign)(void *arg);
    void *may_campaign_arg;
    pthread_t thread;

    /* the sequence-locked pair (written under mu; read lock-free) */
    _Atomic uint64_t seq; /* odd while a writer is changing the pair */
    _Atomic uint64_t term;
    _Atomic uint64_t valid_until_ns;

    /* under mu */
    pthread_mutex_t mu;
    pthread_cond_t cond; /* CLOCK_MONOTONIC; broadcast on every request */
    bool stop, paused, exited;
    bool resign_req; /* set by resign, cleared by the thread's answer */
    uint64_t resign_asked, resign_answered; /* generations */
    int resign_rc;
    uint64_t holdoff_until_ns; /* no campaign before this */
    repl_elect_status st; /* role is derived from the pair when read */

    /* the thread's own */
    etcd_client *etcd;
    int64_t lease_id; /* 0: none */
    uint64_t granted_ttl_ms;
};

/* ---- validation ------------------------------------------------------------ */

bool repl_cluster_valid(const char *s)
{
    if (s == NULL)
        return false;
    size_t n = strnlen(s, REPL_CLUSTER_MAX + 1);
    if (n == 0 || n > REPL_CLUSTER_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-';
        if (!ok)
            return false;
    }
    return true;
}

/* A host name or IPv4 address ([A-Za-z0-9.-]), or "[" IPv6 "]". */
static bool host_valid(const char *h, size_t n)
{
    if (n == 0)
        return false;
    bool v6 = h[0] == '[';
    if (v6 && (n < 3 || h[n - 1] != ']'))
        return false;
    for (size_t i = v6 ? 1 : 0; i < (v6 ? n - 1 : n); i++) {
        char ch = h[i];
        bool hex = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
        bool ok = v6 ? hex || ch == ':' || ch == '.'
                     : hex || (ch >= 'g' && ch <= 'z') || (ch >= 'G' && ch <= 'Z') || ch == '.' ||
                           ch == '-';
        if (!ok)
            return false;
    }
    return v6 || (h[0] != '-' && h[0] != '.');
}

/* "host:port", port 1..65535 in decimal without a leading zero; n bytes. */
static bool addr_valid(const char *s, size_t n)
{
    if (s == NULL || n == 0 || n > REPL_ADDR_MAX)
        return false;
    const char *colon = NULL;
    for (size_t i = n; i > 0 && colon == NULL; i--)
        if (s[i - 1] == ':')
            colon = s + i - 1;
    if (colon == NULL)
        return false;
    size_t hlen = (size_t)(colon - s), plen = n - hlen - 1;
    if (plen == 0 || plen > REPL_PORT_DIGITS_MAX || colon[1] == '0')
        return false;
    uint32_t port = 0;
    for (size_t i = 1; i <= plen; i++) {
        if (colon[i] < '0' || colon[i] > '9')
            return false;
        port = port * 10u + (uint32_t)(colon[i] - '0');
    }
    return port <= REPL_PORT_MAX && host_valid(s, hlen);
}

static bool config_valid(const repl_elect_config *cfg, char *err, size_t errlen)
{
    if (cfg == NULL || cfg->etcd_endpoints == NULL) {
        fileio_errmsg(err, errlen, "repl_elect: no configuration or no etcd endpoints");
        return false;
    }
    if (!repl_cluster_valid(cfg->cluster)) {
        fileio_errmsg(err, errlen,
                      "repl_elect: cluster name '%.*s' is not 1..%u bytes of [A-Za-z0-9_.-]",
                      (int)REPL_CLUSTER_MAX, cfg->cluster != NULL ? cfg->cluster : "(null)",
                      REPL_CLUSTER_MAX);
        return false;
    }
    if (cfg->advertise == NULL ||
        !addr_valid(cfg->advertise, strnlen(cfg->advertise, REPL_ADDR_MAX + 1))) {
        fileio_errmsg(
            err, errlen, "repl_elect: advertise address '%.*s' is not host:port (%u bytes at most)",
            (int)REPL_ADDR_MAX, cfg->advertise != NULL ? cfg->advertise : "(null)", REPL_ADDR_MAX);
        return false;
    }
    uint32_t ttl = cfg->lease_ttl_ms == 0 ? REPL_LEASE_TTL_MS_DEFAULT : cfg->lease_ttl_ms;
    if (ttl < REPL_LEASE_TTL_MS_MIN || ttl > REPL_LEASE_TTL_MS_MAX) {
        fileio_errmsg(err, errlen, "repl_elect: lease TTL %" PRIu32 " ms is outside [%u, %u]", ttl,
                      REPL_LEASE_TTL_MS_MIN, REPL_LEASE_TTL_MS_MAX);
        return false;
    }
    return true;
}

/* The address in a leader key's value, or false when it is not ours to
 * read (another format, a bad address): the leader is then unnamed. */
static bool value_addr(const uint8_t *v, size_t vlen, char *out, size_t cap)
{
    size_t pre = sizeof REPL_VALUE_PREFIX - 1, suf = sizeof REPL_VALUE_SUFFIX - 1;
    assert(out != NULL && cap > REPL_ADDR_MAX);
    out[0] = '\0';
    if (v == NULL || vlen < pre + suf || memcmp(v, REPL_VALUE_PREFIX, pre) != 0 ||
        memcmp(v + vlen - suf, REPL_VALUE_SUFFIX, suf) != 0)
        return false;
    size_t n = vlen - pre - suf;
    if (!addr_valid((const char *)v + pre, n))
        return false;
    memcpy(out, v + pre, n);
    out[n] = '\0';
    return true;
}

/* ---- the sequence-locked pair ---------------------------------------------- */

/* Caller holds e->mu (so it is the only writer). */
static void pair_store_locked(repl_elect *e, uint64_t term, uint64_t valid_until_ns)
{
    assert(valid_until_ns == 0 || term > 0);
    /* relaxed: only writers (serialised by mu) change seq */
    uint64_t s = atomic_load_explicit(&e->seq, memory_order_relaxed);
    assert((s & 1u) == 0);
    /* relaxed: the release stores below order it before the new data */
    atomic_store_explicit(&e->seq, s + 1u, memory_order_relaxed);
    /* release: a reader that sees either new value also sees the odd seq */
    atomic_store_explicit(&e->term, term, memory_order_release);
    atomic_store_explicit(&e->valid_until_ns, valid_until_ns, memory_order_release);
    /* release: publishes the pair to readers that acquire the even seq */
    atomic_store_explicit(&e->seq, s + 2u, memory_order_release);
}

/* One consistent reading of the pair; false after REPL_SEQ_READS_MAX torn
 * reads. Takes no lock. */
static bool pair_load(repl_elect *e, uint64_t *term, uint64_t *valid_until_ns)
{
    for (unsigned i = 0; i < REPL_SEQ_READS_MAX; i++) {
        /* acquire: the pair stored before this seq is visible */
        uint64_t s1 = atomic_load_explicit(&e->seq, memory_order_acquire);
        if (s1 & 1u)
            continue;
        /* acquire: keeps the second seq load below after these loads */
        uint64_t t = atomic_load_explicit(&e->term, memory_order_acquire);
        uint64_t v = atomic_load_explicit(&e->valid_until_ns, memory_order_acquire);
        /* relaxed: ordered after the acquire loads above */
        uint64_t s2 = atomic_load_explicit(&e->seq, memory_order_relaxed);
        if (s1 == s2) {
            assert(v == 0 || t > 0); /* a leadership always has a term */
            *term = t;
            *valid_until_ns = v;
            return true;
        }
    }
    return false;
}

/* ---- state changes (the thread, under mu) ---------------------------------- */

static void leader_unknown_locked(repl_elect *e)
{
    e->st.term = 0;
    e->st.leader_addr[0] = '\0';
}

static void leader_unknown(repl_elect *e)
{
    pthread_mutex_lock(&e->mu);
    leader_unknown_locked(e);
    pthread_mutex_unlock(&e->mu);
}

/* Publishes this node's leadership of term until valid_until_ns, unless a
 * stop or resign is pending (the thread answers those first). */
static void lead_publish_locked(repl_elect *e, uint64_t term, uint64_t valid_until_ns)
{
    assert(term > 0 && valid_until_ns > 0);
    assert(e->granted_ttl_ms >= REPL_LEASE_TTL_MS_MIN);
    if (e->stop || e->resign_req)
        return;
    pair_store_locked(e, term, valid_until_ns);
    e->st.term = term;
    snprintf(e->st.leader_addr, sizeof e->st.leader_addr, "%s", e->advertise);
    e->st.leader_until_ns = valid_until_ns;
    e->st.granted_ttl_ms = e->granted_ttl_ms;
}

/* This node stops acting as leader now (idempotent). Its leadership ended
 * at the earlier of valid_until and now. */
static void step_down_locked(repl_elect *e, uint64_t now_ns)
{
    uint64_t term = 0, vu = 0;
    (void)pair_load(e, &term, &vu); /* under mu: never torn */
    if (vu == 0)
        return;
    pair_store_locked(e, term, 0);
    if (now_ns < e->st.leader_until_ns)
        e->st.leader_until_ns = now_ns;
    leader_unknown_locked(e);
    assert(atomic_load_explicit(&e->valid_until_ns, memory_order_relaxed) == 0);
}

/* Waits on cond until deadline_ns (monotonic) or a broadcast. */
static void wait_until_locked(repl_elect *e, uint64_t deadline_ns)
{
    assert(e != NULL && deadline_ns > 0);
    struct timespec ts = {.tv_sec = (time_t)(deadline_ns / CLOCK_NS_PER_S),
                          .tv_nsec = (long)(deadline_ns % CLOCK_NS_PER_S)};
    (void)pthread_cond_timedwait(&e->cond, &e->mu, &ts);
}

/* Sleeps ms unless stopped (or woken by a request); true once stopping. */
static bool nap(repl_elect *e, uint32_t ms)
{
    assert(e != NULL && ms > 0);
    uint64_t deadline = clock_mono_ns() + (uint64_t)ms * CLOCK_NS_PER_MS;
    pthread_mutex_lock(&e->mu);
    if (!e->stop && clock_mono_ns() < deadline)
        wait_until_locked(e, deadline);
    bool stop = e->stop;
    pthread_mutex_unlock(&e->mu);
    return stop;
}

static bool stopping(repl_elect *e)
{
    pthread_mutex_lock(&e->mu);
    bool stop = e->stop;
    pthread_mutex_unlock(&e->mu);
    return stop;
}

/* The best-effort revoke of this node's lease (a failure leaves it to
 * expire on its own). */
static int lease_drop(repl_elect *e)
{
    assert(e->etcd != NULL);
    if (e->lease_id == 0)
        return INV_OK;
    int rc = etcd_lease_revoke(e->etcd, e->lease_id);
    e->lease_id = 0;
    return rc == INV_ENOTFOUND ? INV_OK : rc;
}

/* ---- following ------------------------------------------------------------- */

static void leader_seen(repl_elect *e, const uint8_t *value, size_t vlen, int64_t create_rev)
{
    char addr[REPL_ADDR_MAX + 1];
    assert(value != NULL || vlen == 0);
    (void)value_addr(value, vlen, addr, sizeof addr);
    pthread_mutex_lock(&e->mu);
    e->st.term = create_rev > 0 ? (uint64_t)create_rev : 0;
    memcpy(e->st.leader_addr, addr, sizeof addr);
    pthread_mutex_unlock(&e->mu);
}

/* Reads the leader key into the status: INV_OK present, INV_ENOTFOUND
 * absent (the leader is then unknown), or the error. *mod_rev (may be
 * NULL): the key's mod_revision. */
static int leader_read(repl_elect *e, int64_t *mod_rev)
{
    etcd_kv kv;
    int rc = etcd_get(e->etcd, e->key, e->klen, &kv, NULL);
    if (rc == INV_ENOTFOUND)
        leader_unknown(e);
    if (rc != INV_OK)
        return rc;
    if (kv.mod_revision <= 0 || kv.create_revision <= 0) {
        etcd_kv_clear(&kv);
        return INV_EIO; /* a malformed reply: no revision to watch from */
    }
    leader_seen(e, kv.value, kv.vlen, kv.create_revision);
    if (mod_rev != NULL)
        *mod_rev = kv.mod_revision;
    etcd_kv_clear(&kv);
    return INV_OK;
}

/* Watches the leader key from from_rev until it is deleted (INV_OK), the
 * watch ends (its code) or a stop. Every configured TTL it also reads the
 * key: a watch stream that hangs without breaking (a member cut off, its
 * TCP connection still open) must not hide the leader's end for long. */
static int follow(repl_elect *e, int64_t from_rev)
{
    char err[ETCD_ERROR_MAX];
    assert(from_rev > 0);
    etcd_watch *w = etcd_watch_start(e->etcd, e->key, e->klen, from_rev, err, sizeof err);
    if (w == NULL)
        return INV_EIO;
    int rc = INV_OK;
    uint64_t check_ns = clock_mono_ns() + e->check_interval_ns;
    while (!stopping(e)) {
        etcd_event ev;
        if (clock_mono_ns() >= check_ns) {
            /* absent (INV_ENOTFOUND): a new round campaigns at once */
            if ((rc = leader_read(e, NULL)) != INV_OK)
                break;
            check_ns = clock_mono_ns() + e->check_interval_ns;
        }
        rc = etcd_watch_next(w, &ev, REPL_WATCH_SLICE_MS);
        if (rc == INV_ENOTFOUND) {
            rc = INV_OK;
            continue;
        }
        if (rc != INV_OK)
            break;
        /* the watch is on a prefix: "/c/leader" also matches "/c/leaderX" */
        if (ev.klen != e->klen || memcmp(ev.key, e->key, e->klen) != 0)
            continue;
        if (ev.type == ETCD_EVENT_DELETE) {
            leader_unknown(e);
            break;
        }
        leader_seen(e, ev.value, ev.vlen, ev.create_revision);
    }
    etcd_watch_stop(w);
    return rc;
}

/* ---- campaigning and leading ----------------------------------------------- */

static bool campaign_allowed(repl_elect *e)
{
    pthread_mutex_lock(&e->mu);
    bool ok = !e->stop && !e->paused && clock_mono_ns() >= e->holdoff_until_ns;
    pthread_mutex_unlock(&e->mu);
    /* the hook runs unlocked: it may take its own locks */
    return ok && (e->may_campaign == NULL || e->may_campaign(e->may_campaign_arg));
}

/* valid_until for a request sent at sent_ns that earned ttl_ms. */
static uint64_t valid_until_of(uint64_t sent_ns, uint64_t ttl_ms)
{
    assert(ttl_ms >= REPL_LEASE_TTL_MS_MIN);
    return sent_ns + (ttl_ms - REPL_LEASE_SAFETY_MS) * CLOCK_NS_PER_MS;
}

/* Grants a lease and creates the key on it if absent. *term_out: the
 * txn's revision when won (0 lost); *sent_ns: the grant's send time. */
static int campaign(repl_elect *e, uint64_t *term_out, uint64_t *sent_ns)
{
    int64_t granted_s = 0, rev = 0;
    assert(e->lease_id == 0 && e->ttl_s > 0);
    *term_out = 0;
    *sent_ns = clock_mono_ns();
    int rc = etcd_lease_grant(e->etcd, e->ttl_s, &e->lease_id, &granted_s);
    if (rc != INV_OK)
        return rc;
    /* etcd never grants less than asked; bound it so ms cannot overflow */
    if (granted_s < e->ttl_s || granted_s > REPL_GRANTED_TTL_S_MAX) {
        (void)lease_drop(e);
        return INV_EIO;
    }
    e->granted_ttl_ms = (uint64_t)granted_s * 1000u;
    etcd_compare cmp = {.target = ETCD_TARGET_CREATE,
                        .result = ETCD_EQUAL,
                        .key = e->key,
                        .klen = e->klen,
                        .number = 0};
    etcd_op op = {.kind = ETCD_OP_PUT,
                  .key = e->key,
                  .klen = e->klen,
                  .value = e->value,
                  .vlen = e->vlen,
                  .lease = e->lease_id};
    bool won = false;
    rc = etcd_txn_put_if(e->etcd, &cmp, 1, &op, 1, &won, &rev);
    if (rc == INV_OK && won && rev <= 0)
        rc = INV_EIO; /* a malformed reply: we cannot know our term */
    if (rc != INV_OK || !won) {
        /* lost, or unknown (a timed-out txn may have been applied): the
         * revoke takes our key with the lease either way */
        (void)lease_drop(e);
        return rc;
    }
    assert(e->lease_id != 0);
    *term_out = (uint64_t)rev; /* the only op: the key's create_revision */
    return INV_OK;
}

typedef enum { LEAD_KEEPALIVE, LEAD_EXPIRED, LEAD_STOP, LEAD_RESIGN } lead_action;

/* Waits for the next thing a leader must do. Caller holds mu. */
static lead_action lead_next_locked(repl_elect *e, uint64_t due_ns)
{
    assert(due_ns > 0 && e->lease_id != 0);
    for (;;) {
        uint64_t term = 0, vu = 0, now = clock_mono_ns();
        (void)pair_load(e, &term, &vu);
        if (e->stop)
            return LEAD_STOP;
        if (e->resign_req)
            return LEAD_RESIGN;
        if (vu == 0 || now >= vu)
            return LEAD_EXPIRED;
        if (!e->paused && now >= due_ns)
            return LEAD_KEEPALIVE;
        wait_until_locked(e, e->paused || vu < due_ns ? vu : due_ns);
    }
}

/* Answers a pending resign (the node stepped down already): revoke, hold
 * off campaigning. */
static void resign_answer(repl_elect *e)
{
    /* relaxed: only this thread or resign, both under mu, store it */
    assert(atomic_load_explicit(&e->valid_until_ns, memory_order_relaxed) == 0);
    int rc = lease_drop(e);
    pthread_mutex_lock(&e->mu);
    assert(e->resign_req);
    e->holdoff_until_ns = clock_mono_ns() + (uint64_t)REPL_RESIGN_HOLDOFF_MS * CLOCK_NS_PER_MS;
    e->resign_rc = rc;
    e->resign_req = false;
    e->resign_answered = e->resign_asked;
    pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->mu);
}

/* Leads term from the grant sent at sent_ns until it must step down. */
static int lead(repl_elect *e, uint64_t term, uint64_t sent_ns)
{
    uint64_t interval_ns = e->granted_ttl_ms * CLOCK_NS_PER_MS / REPL_KEEPALIVE_FRACTION;
    int rc = INV_OK;
    assert(term > 0 && e->lease_id != 0);
    assert(interval_ns > 0);
    pthread_mutex_lock(&e->mu);
    lead_publish_locked(e, term, valid_until_of(sent_ns, e->granted_ttl_ms));
    uint64_t due_ns = sent_ns + interval_ns;
    for (;;) {
        lead_action a = lead_next_locked(e, due_ns);
        if (a != LEAD_KEEPALIVE) {
            step_down_locked(e, clock_mono_ns());
            pthread_mutex_unlock(&e->mu);
            if (a == LEAD_RESIGN)
                resign_answer(e);
            /* stopped or expired: no revoke; a frozen or stopped leader's
             * lease just expires, as a crashed one's would */
            e->lease_id = 0;
            return INV_OK;
        }
        pthread_mutex_unlock(&e->mu);
        int64_t left_s = 0;
        uint64_t sent = clock_mono_ns();
        rc = etcd_lease_keepalive(e->etcd, e->lease_id, &left_s);
        pthread_mutex_lock(&e->mu);
        uint64_t t_ignored = 0, vu = 0;
        (void)pair_load(e, &t_ignored, &vu); /* under mu: never torn */
        /* a renewal that comes back after valid_until passed does not
         * revive the leadership: is_leader already said no, and callers
         * may have failed writes on it */
        if ((rc == INV_OK && left_s <= 0) || rc == INV_ENOTFOUND || vu == 0 ||
            clock_mono_ns() >= vu)
            break;
        if (rc != INV_OK) {
            /* etcd did not answer (a member died, its cluster elects a
             * new raft leader): ask again soon; valid_until, unchanged,
             * still ends the leadership if no renewal comes in time */
            due_ns = clock_mono_ns() + (uint64_t)REPL_KEEPALIVE_RETRY_MS * CLOCK_NS_PER_MS;
            continue;
        }
        sent_ns = sent;
        due_ns = sent_ns + interval_ns;
        uint64_t ttl_ms = (uint64_t)left_s * 1000u;
        lead_publish_locked(
            e, term, valid_until_of(sent, ttl_ms < e->granted_ttl_ms ? ttl_ms : e->granted_ttl_ms));
    }
    /* the keep-alive failed, came too late, or the lease is gone (or a
     * resign came meanwhile): follower at once */
    step_down_locked(e, clock_mono_ns());
    bool resign = e->resign_req;
    pthread_mutex_unlock(&e->mu);
    if (resign)
        resign_answer(e);
    else if (rc != INV_ENOTFOUND)
        (void)lease_drop(e); /* frees the key at once if etcd still hears us */
    e->lease_id = 0;
    return rc == INV_OK ? INV_ENOTFOUND : rc;
}

/* One round: read the key, then follow, campaign or wait. */
static int elect_round(repl_elect *e)
{
    int64_t mod_rev = 0;
    assert(e->lease_id == 0); /* a lease lives only from a campaign to its end */
    int rc = leader_read(e, &mod_rev);
    if (rc == INV_OK)
        return follow(e, mod_rev + 1);
    if (rc != INV_ENOTFOUND)
        return rc;
    if (!campaign_allowed(e)) {
        (void)nap(e, REPL_RETRY_MS);
        return INV_OK;
    }
    uint64_t term = 0, sent_ns = 0;
    rc = campaign(e, &term, &sent_ns);
    if (rc != INV_OK || term == 0)
        return rc; /* lost: the next round reads the winner */
    return lead(e, term, sent_ns);
}

static void *elect_main(void *arg)
{
    repl_elect *e = arg;
    assert(e != NULL && e->etcd != NULL);
    while (!stopping(e)) {
        int rc = elect_round(e);
        if (rc != INV_OK && rc != INV_ENOTFOUND)
            (void)nap(e, REPL_RETRY_MS);
    }
    pthread_mutex_lock(&e->mu);
    e->exited = true;
    pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

/* ---- the API ---------------------------------------------------------------- */

static bool sync_init(repl_elect *e)
{
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0)
        return false;
    bool ok = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
              pthread_cond_init(&e->cond, &ca) == 0;
    pthread_condattr_destroy(&ca);
    if (ok && pthread_mutex_init(&e->mu, NULL) != 0) {
        pthread_cond_destroy(&e->cond);
        ok = false;
    }
    return ok;
}

repl_elect *repl_elect_start(const repl_elect_config *cfg, char *err, size_t errlen)
{
    if (!config_valid(cfg, err, errlen))
        return NULL;
    repl_elect *e = inv_calloc(1, sizeof *e);
    if (e == NULL) {
        fileio_errmsg(err, errlen, "repl_elect: out of memory");
        return NULL;
    }
    uint32_t ttl_ms = cfg->lease_ttl_ms == 0 ? REPL_LEASE_TTL_MS_DEFAULT : cfg->lease_ttl_ms;
    e->ttl_s = (int64_t)((ttl_ms + 999u) / 1000u);
    /* a hung etcd call must end well before a valid_until it could extend */
    e->etcd_timeout_ms = ttl_ms / REPL_KEEPALIVE_FRACTION;
    if (e->etcd_timeout_ms > REPL_ETCD_TIMEOUT_MS_MAX)
        e->etcd_timeout_ms = REPL_ETCD_TIMEOUT_MS_MAX;
    e->check_interval_ns = (uint64_t)ttl_ms * CLOCK_NS_PER_MS;
    e->klen = (size_t)snprintf(e->key, sizeof e->key, "/%s/leader", cfg->cluster);
    e->vlen = (size_t)snprintf(e->value, sizeof e->value, "%s%s%s", REPL_VALUE_PREFIX,
                               cfg->advertise, REPL_VALUE_SUFFIX);
    snprintf(e->advertise, sizeof e->advertise, "%s", cfg->advertise);
    assert(e->klen < sizeof e->key && e->vlen < sizeof e->value);
    e->may_campaign = cfg->may_campaign;
    e->may_campaign_arg = cfg->may_campaign_arg;
    atomic_init(&e->seq, 0);
    atomic_init(&e->term, 0);
    atomic_init(&e->valid_until_ns, 0);
    e->etcd = etcd_open(cfg->etcd_endpoints, e->etcd_timeout_ms, err, errlen);
    if (e->etcd == NULL) {
        free(e);
        return NULL;
    }
    bool synced = sync_init(e);
    if (synced && pthread_create(&e->thread, NULL, elect_main, e) == 0)
        return e;
    fileio_errmsg(err, errlen, "repl_elect: cannot %s",
                  synced ? "start the elector thread" : "initialise a mutex or condvar");
    if (synced) {
        pthread_mutex_destroy(&e->mu);
        pthread_cond_destroy(&e->cond);
    }
    etcd_close(e->etcd);
    free(e);
    return NULL;
}

/* Takes no lock and allocates nothing: callers check it before every
 * acknowledgement. */
bool repl_elect_is_leader(repl_elect *e, uint64_t *term_out)
{
    uint64_t term = 0, vu = 0;
    if (e == NULL || !pair_load(e, &term, &vu) || vu == 0 || clock_mono_ns() >= vu)
        return false;
    assert(term > 0);
    if (term_out != NULL)
        *term_out = term;
    return true;
}

void repl_elect_state(repl_elect *e, repl_elect_status *out)
{
    if (out == NULL)
        return;
    memset(out, 0, sizeof *out);
    if (e == NULL)
        return;
    pthread_mutex_lock(&e->mu);
    *out = e->st;
    uint64_t term = 0, vu = 0;
    (void)pair_load(e, &term, &vu); /* under mu: never torn */
    out->role = vu != 0 && clock_mono_ns() < vu ? REPL_ROLE_LEADER : REPL_ROLE_FOLLOWER;
    if (vu != 0 && out->role == REPL_ROLE_FOLLOWER) {
        /* valid_until passed before the thread noticed: not leading, and
         * who leads next is not known yet */
        out->term = 0;
        out->leader_addr[0] = '\0';
    }
    assert(out->role != REPL_ROLE_LEADER || out->term > 0);
    pthread_mutex_unlock(&e->mu);
}

int repl_elect_resign(repl_elect *e)
{
    if (e == NULL)
        return INV_EINVALID;
    pthread_mutex_lock(&e->mu);
    uint64_t term = 0, vu = 0, now = clock_mono_ns();
    (void)pair_load(e, &term, &vu);
    if (vu == 0 || now >= vu || e->resign_req) {
        pthread_mutex_unlock(&e->mu);
        return INV_ECONFLICT;
    }
    /* is_leader is false from here on, before etcd hears of it */
    step_down_locked(e, now);
    assert(!repl_elect_is_leader(e, NULL));
    e->resign_req = true;
    uint64_t gen = ++e->resign_asked;
    pthread_cond_broadcast(&e->cond);
    uint64_t deadline = now +
                        (uint64_t)REPL_RESIGN_WAIT_CALLS * e->etcd_timeout_ms * CLOCK_NS_PER_MS +
                        (uint64_t)REPL_RETRY_MS * CLOCK_NS_PER_MS;
    while (e->resign_answered < gen && !e->exited && clock_mono_ns() < deadline)
        wait_until_locked(e, deadline);
    int rc = e->resign_answered >= gen ? e->resign_rc : INV_EIO;
    pthread_mutex_unlock(&e->mu);
    return rc;
}

void repl_elect_pause(repl_elect *e, bool paused)
{
    if (e == NULL)
        return;
    pthread_mutex_lock(&e->mu);
    e->paused = paused;
    pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->mu);
}

void repl_elect_stop(repl_elect *e)
{
    if (e == NULL)
        return;
    pthread_mutex_lock(&e->mu);
    e->stop = true;
    pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->mu);
    pthread_join(e->thread, NULL);
    assert(e->exited);
    etcd_close(e->etcd);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->cond);
    free(e);
}
