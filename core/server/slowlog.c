/*
 * slowlog.c — the slow log and the latency monitor (see slowlog.h).
 *
 * Invariants:
 *  - An entry keeps at most SLOWLOG_ARGS_MAX arguments of at most
 *    SLOWLOG_ARG_BYTES_MAX bytes each (plus Redis's "... (N more ...)"
 *    notes), so one entry is bounded (~5.4 KB) and a ring of max_len
 *    entries too.
 *  - Within a ring entries are in id order, oldest at head: ids are taken
 *    under the ring's lock from one process-wide counter.
 *  - A ring, once registered, lives until the process exits (the thread
 *    that created it may be gone; its entries stay readable).
 *  - Locks: a writer holds only its ring's lock; a reader takes the ring
 *    locks in registration order (never two in another order), and the
 *    registry lock is never held with a ring lock. The latency lock is a
 *    leaf.
 */
#include "alloc.h"
#include "server/slowlog.h"

#include "clock.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOWLOG_NOTE_MAX 48u /* "... (N more bytes)" and its kin */
#define SLOWLOG_REDACTED "(redacted)"

typedef struct {
    uint64_t id;
    int64_t time_s; /* Unix time */
    uint64_t duration_us;
    uint32_t argc; /* kept arguments, <= SLOWLOG_ARGS_MAX */
    uint32_t len[SLOWLOG_ARGS_MAX];
    char addr[SLOWLOG_CLIENT_MAX + 1];
    char name[SLOWLOG_CLIENT_MAX + 1];
    char bytes[]; /* the kept arguments, one after another */
} slow_entry;

typedef struct {
    pthread_mutex_t lock;
    slow_entry **e; /* cap slots, a circular buffer */
    unsigned cap, head, n;
} slow_ring;

static slow_ring *g_rings[SLOWLOG_RINGS_MAX];
static _Atomic size_t g_nrings;
static pthread_mutex_t g_reg_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic uint64_t g_next_id;
static __thread slow_ring *tl_ring;

/* ---- rings ---------------------------------------------------------------- */

/* A ring as its lock holder sees it (used only in asserts; O(1)). */
static bool ring_ok(const slow_ring *r)
{
    return r != NULL && r->e != NULL && r->cap >= 1 && r->head < r->cap && r->n <= r->cap;
}

/* An entry entry_new made: its kept arguments within the bounds. */
static bool entry_ok(const slow_entry *e)
{
    return e != NULL && e->argc >= 1 && e->argc <= SLOWLOG_ARGS_MAX &&
           memchr(e->addr, '\0', sizeof e->addr) != NULL &&
           memchr(e->name, '\0', sizeof e->name) != NULL;
}

/* The calling thread's ring, created and registered at its first use; NULL
 * when out of memory. Slow path only. */
static slow_ring *ring_mine(unsigned max_len)
{
    assert(max_len >= 1); /* slowlog_push returns first on 0 */
    if (tl_ring != NULL)
        return tl_ring;
    pthread_mutex_lock(&g_reg_lock);
    /* relaxed: the registry lock orders writers of the count */
    size_t k = atomic_load_explicit(&g_nrings, memory_order_relaxed);
    if (k == SLOWLOG_RINGS_MAX) {
        tl_ring = g_rings[k - 1]; /* shared: its lock makes that safe */
        pthread_mutex_unlock(&g_reg_lock);
        return tl_ring;
    }
    slow_ring *r = inv_calloc(1, sizeof *r);
    slow_entry **slots = inv_calloc(max_len, sizeof *slots);
    if (r == NULL || slots == NULL) {
        pthread_mutex_unlock(&g_reg_lock);
        free(r);
        free(slots);
        return NULL;
    }
    pthread_mutex_init(&r->lock, NULL);
    r->e = slots;
    r->cap = max_len;
    assert(ring_ok(r) && k < SLOWLOG_RINGS_MAX);
    g_rings[k] = r;
    /* release: the ring and its slot are visible before the count */
    atomic_store_explicit(&g_nrings, k + 1, memory_order_release);
    pthread_mutex_unlock(&g_reg_lock);
    tl_ring = r;
    return r;
}

static size_t rings_count(void)
{
    /* acquire: pairs with the release in ring_mine */
    size_t k = atomic_load_explicit(&g_nrings, memory_order_acquire);
    assert(k <= SLOWLOG_RINGS_MAX);
    return k;
}

static slow_entry *ring_at(const slow_ring *r, unsigned i) /* 0: oldest */
{
    assert(ring_ok(r) && i < r->n);
    return r->e[(r->head + i) % r->cap];
}

/* ---- entries ---------------------------------------------------------------- */

/* Appends one kept argument: at most SLOWLOG_ARG_BYTES_MAX bytes, and a
 * note of how many more there were (as Redis). Returns the bytes used. */
static size_t keep_arg(char *dst, const char *p, size_t len)
{
    assert(dst != NULL && (p != NULL || len == 0));
    if (len <= SLOWLOG_ARG_BYTES_MAX) {
        memcpy(dst, p, len);
        return len;
    }
    memcpy(dst, p, SLOWLOG_ARG_BYTES_MAX);
    int k = snprintf(dst + SLOWLOG_ARG_BYTES_MAX, SLOWLOG_NOTE_MAX, "... (%zu more bytes)",
                     len - SLOWLOG_ARG_BYTES_MAX);
    /* the note fits its room: "... (N more bytes)" with N of at most 20 digits */
    assert(k > 0 && (unsigned)k < SLOWLOG_NOTE_MAX);
    return SLOWLOG_ARG_BYTES_MAX + (size_t)k;
}

static void copy_client(char *dst, const char *src)
{
    assert(dst != NULL);
    snprintf(dst, SLOWLOG_CLIENT_MAX + 1, "%s", src ? src : "");
}

static slow_entry *entry_new(const resp_arg *argv, size_t argc, size_t redact_from,
                             uint64_t duration_us, const char *addr, const char *name)
{
    /* More than SLOWLOG_ARGS_MAX: the last kept one says how many more. */
    size_t kept = argc > SLOWLOG_ARGS_MAX ? SLOWLOG_ARGS_MAX - 1 : argc;
    size_t cap = (SLOWLOG_ARG_BYTES_MAX + SLOWLOG_NOTE_MAX) * SLOWLOG_ARGS_MAX;
    assert(argv != NULL && argc >= 1 && kept <= SLOWLOG_ARGS_MAX);
    slow_entry *e = inv_malloc(sizeof *e + cap);
    if (e == NULL)
        return NULL;
    size_t off = 0;
    for (size_t i = 0; i < kept; i++) {
        size_t used;
        if (i >= redact_from)
            used = keep_arg(e->bytes + off, SLOWLOG_REDACTED, strlen(SLOWLOG_REDACTED));
        else
            used = keep_arg(e->bytes + off, argv[i].ptr, argv[i].len);
        e->len[i] = (uint32_t)used;
        off += used;
        assert(off <= (i + 1) * (SLOWLOG_ARG_BYTES_MAX + SLOWLOG_NOTE_MAX)); /* within cap */
    }
    if (kept < argc) {
        int k = snprintf(e->bytes + off, SLOWLOG_NOTE_MAX, "... (%zu more arguments)", argc - kept);
        e->len[kept++] = k > 0 ? (uint32_t)k : 0;
    }
    e->argc = (uint32_t)kept;
    e->time_s = clock_wall_s();
    e->duration_us = duration_us;
    copy_client(e->addr, addr);
    copy_client(e->name, name);
    assert(entry_ok(e));
    return e;
}

void slowlog_push(const resp_arg *argv, size_t argc, size_t redact_from, uint64_t duration_us,
                  const char *addr, const char *name, unsigned max_len)
{
    if (max_len == 0 || argc == 0)
        return;
    slow_ring *r = ring_mine(max_len);
    slow_entry *e = entry_new(argv, argc, redact_from, duration_us, addr, name);
    if (r == NULL || e == NULL) {
        free(e); /* out of memory: this entry is not logged */
        return;
    }
    pthread_mutex_lock(&r->lock);
    assert(ring_ok(r) && entry_ok(e));
    /* relaxed: ids need only be unique and increasing per ring (the lock) */
    e->id = atomic_fetch_add_explicit(&g_next_id, 1, memory_order_relaxed);
    if (r->n == r->cap) { /* full: drop the oldest */
        free(r->e[r->head]);
        r->head = (r->head + 1) % r->cap;
        r->n--;
    }
    r->e[(r->head + r->n) % r->cap] = e;
    r->n++;
    assert(ring_ok(r) && ring_at(r, r->n - 1) == e); /* the newest */
    pthread_mutex_unlock(&r->lock);
}

static void lock_all(size_t k)
{
    assert(k <= SLOWLOG_RINGS_MAX);
    for (size_t i = 0; i < k; i++)
        pthread_mutex_lock(&g_rings[i]->lock);
}

static void unlock_all(size_t k)
{
    assert(k <= SLOWLOG_RINGS_MAX);
    for (size_t i = k; i-- > 0;)
        pthread_mutex_unlock(&g_rings[i]->lock);
}

static size_t total_locked(size_t k)
{
    size_t n = 0;
    assert(k <= SLOWLOG_RINGS_MAX);
    for (size_t i = 0; i < k; i++) {
        assert(ring_ok(g_rings[i])); /* locked by the caller */
        n += g_rings[i]->n;
    }
    return n;
}

size_t slowlog_len(unsigned max_len)
{
    size_t k = rings_count();
    lock_all(k);
    size_t n = total_locked(k);
    unlock_all(k);
    assert(k > 0 || n == 0); /* no ring, no entry */
    return n < max_len ? n : max_len;
}

void slowlog_reset(void)
{
    size_t k = rings_count();
    for (size_t i = 0; i < k; i++) {
        slow_ring *r = g_rings[i];
        pthread_mutex_lock(&r->lock);
        for (unsigned j = 0; j < r->n; j++)
            free(ring_at(r, j));
        r->head = r->n = 0;
        assert(ring_ok(r));
        pthread_mutex_unlock(&r->lock);
    }
}

static void entry_reply(resp_out *o, const slow_entry *e)
{
    assert(o != NULL && entry_ok(e));
    resp_w_array(o, 6);
    resp_w_int(o, (int64_t)e->id);
    resp_w_int(o, e->time_s);
    resp_w_int(o, (int64_t)e->duration_us);
    resp_w_array(o, e->argc);
    size_t off = 0;
    for (uint32_t i = 0; i < e->argc; i++) {
        resp_w_bulk(o, e->bytes + off, e->len[i]);
        off += e->len[i];
    }
    resp_w_bulk_str(o, e->addr);
    resp_w_bulk_str(o, e->name);
}

void slowlog_reply(resp_out *o, size_t count, unsigned max_len)
{
    size_t k = rings_count();
    unsigned left[SLOWLOG_RINGS_MAX]; /* entries of ring i not yet written */
    assert(o != NULL);
    lock_all(k);
    size_t n = total_locked(k);
    if (n > max_len)
        n = max_len;
    if (n > count)
        n = count;
    for (size_t i = 0; i < k; i++)
        left[i] = g_rings[i]->n;
    resp_w_array(o, n);
    /* Newest first: each step takes the highest id among the rings' newest
     * entries not yet written. O(n * rings), rings <= SLOWLOG_RINGS_MAX. */
    for (size_t w = 0; w < n; w++) {
        size_t best = k;
        for (size_t i = 0; i < k; i++)
            if (left[i] > 0 && (best == k || ring_at(g_rings[i], left[i] - 1)->id >
                                                 ring_at(g_rings[best], left[best] - 1)->id))
                best = i;
        if (best == k)
            break; /* unreachable: n <= the entries held */
        entry_reply(o, ring_at(g_rings[best], --left[best]));
    }
    assert(n <= max_len && n <= count);
    unlock_all(k);
}

/* ---- latency monitor --------------------------------------------------------- */

typedef struct {
    int64_t time_s; /* 0: an unused sample */
    uint64_t ms;
} lat_sample;

typedef struct {
    lat_sample s[LATENCY_SAMPLES_MAX];
    unsigned idx; /* the next sample to write (the oldest) */
    uint64_t max_ms;
} lat_series;

static const char *const g_event_names[LATENCY_EVENTS] = {"command", "fast-command"};
static lat_series g_lat[LATENCY_EVENTS];
static pthread_mutex_t g_lat_lock = PTHREAD_MUTEX_INITIALIZER;

const char *latency_event_name(latency_event ev)
{
    assert(g_event_names[LATENCY_EVENTS - 1] != NULL); /* a name per event */
    return (unsigned)ev < LATENCY_EVENTS ? g_event_names[ev] : NULL;
}

int latency_event_find(const char *name, size_t len)
{
    assert(name != NULL || len == 0);
    for (int i = 0; i < LATENCY_EVENTS; i++)
        if (strlen(g_event_names[i]) == len && strncasecmp(g_event_names[i], name, len) == 0)
            return i;
    return -1;
}

static lat_sample *series_latest(lat_series *t)
{
    assert(t != NULL && t->idx < LATENCY_SAMPLES_MAX);
    lat_sample *p = &t->s[(t->idx + LATENCY_SAMPLES_MAX - 1) % LATENCY_SAMPLES_MAX];
    return p->time_s != 0 ? p : NULL;
}

void latency_add(latency_event ev, uint64_t latency_ms)
{
    if ((unsigned)ev >= LATENCY_EVENTS)
        return;
    int64_t now = clock_wall_s();
    pthread_mutex_lock(&g_lat_lock);
    lat_series *t = &g_lat[ev];
    lat_sample *last = series_latest(t);
    if (latency_ms > t->max_ms)
        t->max_ms = latency_ms;
    if (last != NULL && last->time_s == now) { /* one sample per second: the worst */
        if (latency_ms > last->ms)
            last->ms = latency_ms;
    } else {
        t->s[t->idx] = (lat_sample){now, latency_ms};
        t->idx = (t->idx + 1) % LATENCY_SAMPLES_MAX;
    }
    assert(t->max_ms >= latency_ms && t->idx < LATENCY_SAMPLES_MAX);
    pthread_mutex_unlock(&g_lat_lock);
}

void latency_reply_latest(resp_out *o)
{
    lat_sample latest[LATENCY_EVENTS];
    uint64_t max[LATENCY_EVENTS];
    size_t n = 0;
    assert(o != NULL);
    pthread_mutex_lock(&g_lat_lock);
    for (int i = 0; i < LATENCY_EVENTS; i++) {
        lat_sample *p = series_latest(&g_lat[i]);
        latest[i] = p ? *p : (lat_sample){0, 0};
        max[i] = g_lat[i].max_ms;
        n += p != NULL;
    }
    pthread_mutex_unlock(&g_lat_lock);
    assert(n <= LATENCY_EVENTS);
    resp_w_array(o, n);
    for (int i = 0; i < LATENCY_EVENTS; i++) {
        if (latest[i].time_s == 0)
            continue;
        resp_w_array(o, 4);
        resp_w_bulk_str(o, g_event_names[i]);
        resp_w_int(o, latest[i].time_s);
        resp_w_int(o, (int64_t)latest[i].ms);
        resp_w_int(o, (int64_t)max[i]);
    }
}

void latency_reply_history(resp_out *o, latency_event ev)
{
    assert(o != NULL);
    if ((unsigned)ev >= LATENCY_EVENTS) {
        resp_w_array(o, 0);
        return;
    }
    pthread_mutex_lock(&g_lat_lock);
    lat_series copy = g_lat[ev];
    pthread_mutex_unlock(&g_lat_lock);
    size_t n = 0;
    assert(copy.idx < LATENCY_SAMPLES_MAX);
    for (unsigned i = 0; i < LATENCY_SAMPLES_MAX; i++)
        n += copy.s[i].time_s != 0;
    resp_w_array(o, n);
    for (unsigned i = 0; i < LATENCY_SAMPLES_MAX; i++) {
        const lat_sample *p = &copy.s[(copy.idx + i) % LATENCY_SAMPLES_MAX];
        if (p->time_s == 0)
            continue;
        resp_w_array(o, 2);
        resp_w_int(o, p->time_s);
        resp_w_int(o, (int64_t)p->ms);
    }
}

int latency_reset(latency_event ev)
{
    if ((unsigned)ev >= LATENCY_EVENTS)
        return 0;
    pthread_mutex_lock(&g_lat_lock);
    int had = series_latest(&g_lat[ev]) != NULL;
    memset(&g_lat[ev], 0, sizeof g_lat[ev]);
    assert(series_latest(&g_lat[ev]) == NULL);
    pthread_mutex_unlock(&g_lat_lock);
    return had;
}

void latency_doctor(char *buf, size_t cap, int64_t threshold_us)
{
    if (cap == 0)
        return;
    assert(buf != NULL);
    buf[0] = '\0';
    size_t off = 0;
    int spikes = 0;
    pthread_mutex_lock(&g_lat_lock);
    for (int i = 0; i < LATENCY_EVENTS && off < cap; i++) {
        const lat_series *t = &g_lat[i];
        size_t n = 0;
        uint64_t sum = 0;
        for (unsigned j = 0; j < LATENCY_SAMPLES_MAX; j++)
            if (t->s[j].time_s != 0) {
                n++;
                sum += t->s[j].ms;
            }
        if (n == 0)
            continue;
        spikes++;
        int k = snprintf(buf + off, cap - off,
                         "%d. %s: %zu latency spikes (average %llums, worst %llums). "
                         "Look at SLOWLOG GET for the commands and their arguments.\n",
                         spikes, g_event_names[i], n, (unsigned long long)(sum / n),
                         (unsigned long long)t->max_ms);
        off += k > 0 ? (size_t)k : 0;
    }
    pthread_mutex_unlock(&g_lat_lock);
    if (off >= cap)
        return;
    if (threshold_us < 0)
        snprintf(buf + off, cap - off,
                 "The latency monitor is off (--slowlog-log-slower-than -1): "
                 "no command is recorded.\n");
    else if (spikes == 0)
        snprintf(buf + off, cap - off,
                 "No latency spike was observed: no command took %lld us or more "
                 "(--slowlog-log-slower-than).\n",
                 (long long)threshold_us);
    else
        snprintf(buf + off, cap - off,
                 "Spikes are commands that took %lld us or more "
                 "(--slowlog-log-slower-than). Big listings (LEVEL.LIST, ITEM.MGET, "
                 "PRODUCT.INVENTORY, SCAN with a large COUNT) and fsync always under "
                 "disk pressure are the usual causes.\n",
                 (long long)threshold_us);
}
