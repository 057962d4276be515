/*
 * test_repl_log.c — integration: the replicated log in etcd
 * (core/server/repl_log.c) against a real 3-member etcd cluster on loopback
 * (etcd_harness.h), plus the entry encoding's hostile-input checks, which
 * need no cluster.
 *
 * One cluster serves the whole suite (a start costs seconds): the runner
 * starts it before any test (Criterion's PRE_ALL hook; a constructor under
 * tests/tsan_criterion, which has no hooks) and passes its endpoints to
 * the test processes in $REPL_LOG_TEST_ETCD. Tests do not interfere: each
 * uses its own log cluster name (its own keys). The one global effect, a
 * compaction, only ends other tests' watches, which their readers replace
 * by themselves (that is part of what is tested). A test process that
 * finds no shared cluster starts its own.
 *
 * Nothing waits on time alone: entries are awaited with bounded loops of
 * repl_log_next.
 */
#include "etcd_harness.h"
#include "server/repl_log.h"

#ifndef TSAN_CRITERION_CRITERION_H
#include <criterion/hooks.h>
#endif

#define WAIT_MS 20000u /* an awaited entry must come within this */
#define NEXT_MS 500u /* one repl_log_next wait inside a bounded loop */
#define QUIET_MS 300u /* "nothing more arrives": one short wait */
#define ENV_ENDPOINTS "REPL_LOG_TEST_ETCD"
#define ENTRIES 6 /* entries the multi-entry tests append */
#define ERR_MAX REPL_LOG_ERROR_MAX

/* ---- the shared cluster ----------------------------------------------------- */

static eh_cluster g_shared; /* in the process that started it */
static pid_t g_shared_owner;
static eh_cluster g_private; /* a test's own, when none is shared */
static bool g_private_up;
static const char *g_endpoints;

/* Starts the shared cluster without cr_assert (no test is running yet):
 * on failure the variable stays unset and each test starts its own. */
static void shared_start(void)
{
    for (int t = 0; t < EH_START_TRIES; t++) {
        if (eh_try_start(&g_shared)) {
            g_shared_owner = getpid();
            setenv(ENV_ENDPOINTS, g_shared.endpoints, 1);
            return;
        }
        fprintf(stderr, "test_repl_log: shared etcd cluster did not form (try %d)\n", t + 1);
        eh_stop(&g_shared);
    }
}

static void shared_stop(void)
{
    if (g_shared_owner == getpid()) /* not in a forked test process */
        eh_stop(&g_shared);
}

#ifdef TSAN_CRITERION_CRITERION_H
__attribute__((constructor)) static void shared_start_ctor(void)
{
    shared_start();
    atexit(shared_stop);
}
#else
ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
    shared_start();
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
    shared_stop();
}
#endif

static void cluster_up(void)
{
    g_endpoints = getenv(ENV_ENDPOINTS);
    if (g_endpoints != NULL && g_endpoints[0] != '\0')
        return;
    eh_start(&g_private);
    g_private_up = true;
    g_endpoints = g_private.endpoints;
}

/* A cluster of the test's own (for a test that kills a member). */
static void private_up(void)
{
    eh_start(&g_private);
    g_private_up = true;
    g_endpoints = g_private.endpoints;
}

static void cluster_down(void)
{
    if (g_private_up)
        eh_stop(&g_private);
    g_private_up = false;
}

/* ---- helpers -------------------------------------------------------------------- */

static etcd_client *client(void)
{
    char err[ETCD_ERROR_MAX];
    etcd_client *c = etcd_open(g_endpoints, EH_CLIENT_TIMEOUT_MS, err, sizeof err);
    cr_assert_not_null(c, "etcd_open(%s): %s", g_endpoints, err);
    return c;
}

/* Creates /<cluster>/leader without a lease: its create_revision, the
 * term. Deletes an earlier one first (a new leader, a new term). */
static uint64_t make_leader(etcd_client *c, const char *cluster)
{
    char key[REPL_LOG_KEY_MAX];
    int n = snprintf(key, sizeof key, "/%s/leader", cluster);
    int64_t rev = 0;
    cr_assert_eq(etcd_delete_range(c, key, (size_t)n, NULL, 0, NULL, NULL), INV_OK, "%s",
                 etcd_errmsg(c));
    cr_assert_eq(etcd_put(c, key, (size_t)n, "{\"addr\":\"t:1\"}", 14, 0, &rev), INV_OK, "%s",
                 etcd_errmsg(c));
    etcd_kv kv;
    cr_assert_eq(etcd_get(c, key, (size_t)n, &kv, NULL), INV_OK);
    cr_assert_eq(kv.create_revision, rev, "a new key's create_revision is its put's revision");
    etcd_kv_clear(&kv);
    return (uint64_t)rev;
}

/* len bytes that differ with seed and position (a payload and its
 * expected copy). */
static uint8_t *payload(size_t len, uint64_t seed)
{
    uint8_t *p = malloc(len);
    cr_assert_not_null(p);
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (uint8_t)x;
    }
    return p;
}

static void append_ok(etcd_client *c, const char *cluster, uint64_t term, uint64_t first,
                      size_t len, uint64_t seed)
{
    char err[ERR_MAX];
    uint8_t *p = payload(len, seed);
    int rc = repl_log_append(c, cluster, term, first, p, len, err, sizeof err);
    free(p);
    cr_assert_eq(rc, INV_OK, "append [%" PRIu64 ", +%zu) term %" PRIu64 ": %d %s", first, len, term,
                 rc, err);
}

static repl_log_reader *follow(const char *cluster, uint64_t from)
{
    char err[ERR_MAX];
    repl_log_reader *r =
        repl_log_follow(g_endpoints, EH_CLIENT_TIMEOUT_MS, cluster, from, err, sizeof err);
    cr_assert_not_null(r, "repl_log_follow(%s, %" PRIu64 "): %s", cluster, from, err);
    return r;
}

/* repl_log_next until something other than "nothing yet", within WAIT_MS. */
static int next_rc(repl_log_reader *r, repl_log_entry *e)
{
    uint64_t deadline = tu_deadline_ms(WAIT_MS);
    int rc;
    while ((rc = repl_log_next(r, e, NEXT_MS)) == INV_ENOTFOUND && !tu_past(deadline))
        ;
    return rc;
}

/* The next entry must be [first, first + len) of term with seed's bytes. */
static void expect_entry(repl_log_reader *r, uint64_t term, uint64_t first, size_t len,
                         uint64_t seed)
{
    repl_log_entry e;
    int rc = next_rc(r, &e);
    cr_assert_eq(rc, INV_OK, "next at %" PRIu64 ": %d %s", first, rc, repl_log_reader_errmsg(r));
    cr_assert_eq(e.first, first);
    cr_assert_eq(e.end, first + len);
    cr_assert_eq(e.term, term);
    cr_assert_gt(e.mod_revision, 0);
    uint8_t *p = payload(len, seed);
    cr_assert_eq(memcmp(e.payload, p, len), 0, "payload of [%" PRIu64 ", +%zu) differs", first,
                 len);
    free(p);
    cr_assert_eq(repl_log_reader_position(r), first + len);
}

static void expect_quiet(repl_log_reader *r)
{
    repl_log_entry e;
    int rc = repl_log_next(r, &e, QUIET_MS);
    cr_assert_eq(rc, INV_ENOTFOUND, "nothing more: %d %s", rc, repl_log_reader_errmsg(r));
}

/* The error repl_log_next settles on (and keeps returning). */
static void expect_final(repl_log_reader *r, int want)
{
    repl_log_entry e;
    int rc = next_rc(r, &e);
    cr_assert_eq(rc, want, "want %d, got %d: %s", want, rc, repl_log_reader_errmsg(r));
    cr_assert_neq(repl_log_reader_errmsg(r)[0], '\0', "a final error has a message");
    cr_assert_eq(repl_log_next(r, &e, 0), want, "a final error stays");
}

static void put_raw(etcd_client *c, const char *cluster, uint64_t pos, const void *v, size_t vlen)
{
    char key[REPL_LOG_KEY_MAX];
    size_t klen = repl_log_key(key, sizeof key, cluster, pos);
    cr_assert_gt(klen, 0);
    cr_assert_eq(etcd_put(c, key, klen, v, vlen, 0, NULL), INV_OK, "%s", etcd_errmsg(c));
}

static void expect_head(etcd_client *c, const char *cluster, uint64_t end, uint64_t term)
{
    char err[ERR_MAX];
    uint64_t e = 0, t = 0;
    int64_t rev = 0;
    int rc = repl_log_head(c, cluster, &e, &t, &rev, err, sizeof err);
    cr_assert_eq(rc, INV_OK, "head: %d %s", rc, err);
    cr_assert_eq(e, end, "head end %" PRIu64 ", want %" PRIu64, e, end);
    cr_assert_eq(t, term);
    cr_assert_gt(rev, 0);
}

/* Entry i of the multi-entry tests: sizes vary, positions follow. */
static size_t entry_len(int i)
{
    return (size_t)(8 * (1 + i * 37 % 50));
}

static uint64_t entry_first(uint64_t start, int i)
{
    uint64_t p = start;
    for (int j = 0; j < i; j++)
        p += entry_len(j);
    return p;
}

static void append_entries(etcd_client *c, const char *cluster, uint64_t term, uint64_t start,
                           int from, int to)
{
    for (int i = from; i < to; i++)
        append_ok(c, cluster, term, entry_first(start, i), entry_len(i), (uint64_t)i);
}

static void expect_entries(repl_log_reader *r, uint64_t term, uint64_t start, int from, int to)
{
    for (int i = from; i < to; i++)
        expect_entry(r, term, entry_first(start, i), entry_len(i), (uint64_t)i);
}

/* ---- no cluster: the encoding ---------------------------------------------------- */

/* cl with a leader (*term) and one entry [0, 64) of payload 1, and a
 * follower that read it and now watches (nothing more came). */
static repl_log_reader *watching_after_one(etcd_client *c, const char *cl, uint64_t *term)
{
    *term = make_leader(c, cl);
    append_ok(c, cl, *term, 0, 64, 1);
    repl_log_reader *watching = follow(cl, 0);
    expect_entry(watching, *term, 0, 64, 1);
    expect_quiet(watching);
    return watching;
}

Test(repl_log, entry_encoding_round_trips_and_every_corruption_is_refused)
{
    enum { LEN = 64 };
    uint8_t *p = payload(LEN, 7);
    uint8_t v[REPL_LOG_ENTRY_HEADER_BYTES + LEN], bad[sizeof v];
    repl_log_entry e;
    cr_assert_eq(repl_log_entry_encode(v, sizeof v, 5, 4096, p, LEN), INV_OK);
    cr_assert_eq(memcmp(v, "INVRLOG1", 8), 0);
    cr_assert_null(repl_log_entry_check(v, sizeof v, 4096, &e));
    cr_assert(e.term == 5 && e.first == 4096 && e.end == 4096 + LEN);
    cr_assert_eq(memcmp(e.payload, p, LEN), 0);
    /* every single flipped bit of the header and the payload is caught */
    for (size_t i = 0; i < sizeof v; i++)
        for (int bit = 0; bit < 8; bit++) {
            memcpy(bad, v, sizeof v);
            bad[i] ^= (uint8_t)(1u << bit);
            cr_assert_not_null(repl_log_entry_check(bad, sizeof bad, 4096, &e),
                               "byte %zu bit %d flipped was accepted", i, bit);
        }
    /* every truncation and an extra byte */
    for (size_t n = 0; n < sizeof v; n++)
        cr_assert_not_null(repl_log_entry_check(v, n, 4096, &e), "truncated to %zu", n);
    uint8_t longer[sizeof v + 8] = {0};
    memcpy(longer, v, sizeof v);
    cr_assert_not_null(repl_log_entry_check(longer, sizeof longer, 4096, &e));
    cr_assert_not_null(repl_log_entry_check(NULL, 0, 4096, &e));
    /* a good entry under another key */
    cr_assert_not_null(repl_log_entry_check(v, sizeof v, 4096 + LEN, &e));
    free(p);
}

Test(repl_log, encoding_and_keys_refuse_bad_arguments)
{
    uint8_t in[16] = {0}, out[REPL_LOG_ENTRY_HEADER_BYTES + 16];
    cr_assert_eq(repl_log_entry_encode(out, sizeof out, 0, 0, in, 16), INV_EINVALID, "term 0");
    cr_assert_eq(repl_log_entry_encode(out, sizeof out, (uint64_t)INT64_MAX + 1, 0, in, 16),
                 INV_EINVALID, "term over int64");
    cr_assert_eq(repl_log_entry_encode(out, sizeof out, 1, 0, in, 0), INV_EINVALID, "empty");
    cr_assert_eq(repl_log_entry_encode(out, sizeof out, 1, 4, in, 16), INV_EINVALID, "first");
    cr_assert_eq(repl_log_entry_encode(out, sizeof out, 1, 0, in, 12), INV_EINVALID, "length");
    cr_assert_eq(repl_log_entry_encode(out, sizeof out - 1, 1, 0, in, 16), INV_EINVALID, "cap");
    cr_assert_eq(repl_log_entry_encode(out, sizeof out, 1, UINT64_MAX - 7, in, 16), INV_EINVALID,
                 "first + len overflows");
    cr_assert_eq(repl_log_entry_encode(out, SIZE_MAX, 1, 0, in, REPL_LOG_ENTRY_PAYLOAD_MAX + 8),
                 INV_EINVALID, "over the payload max");
    char key[REPL_LOG_KEY_MAX];
    cr_assert_eq(repl_log_key(key, sizeof key, "shop-1", 0x1234abcd00ull), 28);
    cr_assert_str_eq(key, "/shop-1/log/0000001234abcd00");
    cr_assert_eq(repl_log_key(key, sizeof key, "bad/name", 0), 0);
    cr_assert_eq(repl_log_key(key, sizeof key, "", 0), 0);
    cr_assert_eq(repl_log_key(key, 10, "shop", 0), 0);
    char err[ERR_MAX];
    cr_assert_null(repl_log_follow("http://127.0.0.1:1", 1000, "c", 4, err, sizeof err));
    cr_assert_null(repl_log_follow("http://127.0.0.1:1", 1000, "a b", 0, err, sizeof err));
    cr_assert_null(repl_log_follow("ftp://x", 1000, "c", 0, err, sizeof err));
    cr_assert_neq(err[0], '\0');
    repl_log_entry e;
    cr_assert_eq(repl_log_next(NULL, &e, 0), INV_EINVALID);
    repl_log_follow_stop(NULL);
}

/* ---- with the cluster -------------------------------------------------------------- */

Test(repl_log, appended_entries_read_back_in_order_and_the_head_follows, .init = cluster_up,
     .fini = cluster_down)
{
    const char *cl = "roundtrip";
    etcd_client *c = client();
    char err[ERR_MAX];
    cr_assert_eq(repl_log_head(c, cl, NULL, NULL, NULL, err, sizeof err), INV_ENOTFOUND);
    uint64_t term = make_leader(c, cl);
    append_entries(c, cl, term, 0, 0, ENTRIES);
    expect_head(c, cl, entry_first(0, ENTRIES), term);
    repl_log_reader *r = follow(cl, 0);
    expect_entries(r, term, 0, 0, ENTRIES);
    expect_quiet(r);
    repl_log_follow_stop(r);
    etcd_close(c);
}

Test(repl_log, followers_started_before_and_midway_receive_every_entry_in_order, .init = cluster_up,
     .fini = cluster_down)
{
    const char *cl = "follow";
    etcd_client *c = client();
    uint64_t term = make_leader(c, cl);
    repl_log_reader *early = follow(cl, 0);
    expect_quiet(early); /* nothing yet: it now watches */
    append_entries(c, cl, term, 0, 0, ENTRIES / 2);
    expect_entries(early, term, 0, 0, ENTRIES / 2);
    /* from an entry boundary in the middle: the rest of what exists, then
     * what is appended later, as the early one sees it */
    repl_log_reader *mid = follow(cl, entry_first(0, 1));
    expect_entries(mid, term, 0, 1, ENTRIES / 2);
    expect_quiet(mid);
    /* an old entry put again (a duplicate) is skipped by both watchers */
    etcd_kv kv;
    char key[REPL_LOG_KEY_MAX];
    size_t klen = repl_log_key(key, sizeof key, cl, 0);
    cr_assert_eq(etcd_get(c, key, klen, &kv, NULL), INV_OK);
    cr_assert_eq(etcd_put(c, key, klen, kv.value, kv.vlen, 0, NULL), INV_OK);
    etcd_kv_clear(&kv);
    append_entries(c, cl, term, 0, ENTRIES / 2, ENTRIES);
    expect_entries(mid, term, 0, ENTRIES / 2, ENTRIES);
    expect_entries(early, term, 0, ENTRIES / 2, ENTRIES);
    expect_quiet(early);
    expect_quiet(mid);
    repl_log_follow_stop(early);
    repl_log_follow_stop(mid);
    etcd_close(c);
}

Test(repl_log, an_append_with_a_term_that_is_not_the_leaders_is_fenced, .init = cluster_up,
     .fini = cluster_down)
{
    const char *cl = "fence";
    etcd_client *c = client();
    char err[ERR_MAX], key[REPL_LOG_KEY_MAX];
    uint8_t *p = payload(64, 1);
    /* no leader at all: even the first entry is refused */
    cr_assert_eq(repl_log_append(c, cl, 1, 0, p, 64, err, sizeof err), INV_ECONFLICT, "%s", err);
    cr_assert_eq(repl_log_head(c, cl, NULL, NULL, NULL, err, sizeof err), INV_ENOTFOUND);
    uint64_t old = make_leader(c, cl);
    append_ok(c, cl, old, 0, 64, 1);
    /* a new leader: the deposed one's append writes nothing */
    uint64_t term = make_leader(c, cl);
    cr_assert_gt(term, old);
    cr_assert_eq(repl_log_append(c, cl, old, 64, p, 64, err, sizeof err), INV_ECONFLICT);
    cr_assert(strstr(err, "not the leader") != NULL, "message: %s", err);
    cr_assert_eq(repl_log_append(c, cl, term + 1, 64, p, 64, err, sizeof err), INV_ECONFLICT);
    expect_head(c, cl, 64, old);
    etcd_kv kv;
    size_t klen = repl_log_key(key, sizeof key, cl, 64);
    cr_assert_eq(etcd_get(c, key, klen, &kv, NULL), INV_ENOTFOUND, "nothing written at 64");
    /* the leader's own goes through, and the follower sees the terms grow */
    append_ok(c, cl, term, 64, 64, 2);
    expect_head(c, cl, 128, term);
    repl_log_reader *r = follow(cl, 0);
    expect_entry(r, old, 0, 64, 1);
    expect_entry(r, term, 64, 64, 2);
    repl_log_follow_stop(r);
    free(p);
    etcd_close(c);
}

Test(repl_log, an_append_where_the_log_does_not_end_is_refused, .init = cluster_up,
     .fini = cluster_down)
{
    const char *cl = "position";
    etcd_client *c = client();
    char err[ERR_MAX];
    uint64_t term = make_leader(c, cl);
    append_ok(c, cl, term, 0, 128, 1);
    uint8_t *p = payload(64, 9);
    cr_assert_eq(repl_log_append(c, cl, term, 192, p, 64, err, sizeof err), INV_ECONFLICT,
                 "past the end");
    cr_assert(strstr(err, "ends at 128") != NULL, "message: %s", err);
    cr_assert_eq(repl_log_append(c, cl, term, 64, p, 64, err, sizeof err), INV_ECONFLICT,
                 "inside the last entry");
    cr_assert_eq(repl_log_append(c, cl, term, 0, p, 64, err, sizeof err), INV_ECONFLICT,
                 "over the first entry, with other bytes");
    /* preconditions refused before anything is sent */
    cr_assert_eq(repl_log_append(c, cl, term, 132, p, 64, err, sizeof err), INV_EINVALID);
    cr_assert_eq(repl_log_append(c, cl, term, 128, p, 60, err, sizeof err), INV_EINVALID);
    cr_assert_eq(repl_log_append(c, cl, term, 128, p, 0, err, sizeof err), INV_EINVALID);
    cr_assert_eq(repl_log_append(c, cl, 0, 128, p, 64, err, sizeof err), INV_EINVALID);
    cr_assert_eq(repl_log_append(c, "no/slash", term, 128, p, 64, err, sizeof err), INV_EINVALID);
    expect_head(c, cl, 128, term);
    append_ok(c, cl, term, 128, 64, 9);
    expect_head(c, cl, 192, term);
    free(p);
    etcd_close(c);
}

Test(repl_log, a_retried_append_that_already_applied_is_a_success, .init = cluster_up,
     .fini = cluster_down)
{
    const char *cl = "retry";
    etcd_client *c = client();
    char err[ERR_MAX];
    uint64_t term = make_leader(c, cl);
    append_ok(c, cl, term, 0, 256, 3);
    append_ok(c, cl, term, 0, 256, 3); /* same term, first, bytes: ours */
    expect_head(c, cl, 256, term);
    append_ok(c, cl, term, 256, 64, 4);
    append_ok(c, cl, term, 256, 64, 4);
    /* the same position with other bytes or another length is not ours */
    uint8_t *p = payload(64, 5);
    cr_assert_eq(repl_log_append(c, cl, term, 256, p, 64, err, sizeof err), INV_ECONFLICT);
    cr_assert(strstr(err, "already holds") != NULL, "message: %s", err);
    cr_assert_eq(repl_log_append(c, cl, term, 256, p, 56, err, sizeof err), INV_ECONFLICT);
    /* nor is it from another term */
    uint64_t next = make_leader(c, cl);
    uint8_t *q = payload(64, 4);
    cr_assert_eq(repl_log_append(c, cl, next, 256, q, 64, err, sizeof err), INV_ECONFLICT);
    expect_head(c, cl, 320, term);
    repl_log_reader *r = follow(cl, 0);
    expect_entry(r, term, 0, 256, 3);
    expect_entry(r, term, 256, 64, 4);
    expect_quiet(r);
    repl_log_follow_stop(r);
    free(p);
    free(q);
    etcd_close(c);
}

Test(repl_log, a_corrupt_entry_is_reported_invalid_whether_read_or_watched, .init = cluster_up,
     .fini = cluster_down)
{
    const char *cl = "corrupt";
    etcd_client *c = client();
    uint64_t term = make_leader(c, cl);
    append_ok(c, cl, term, 0, 64, 1);
    /* watched: the follower waits at 64 when the bad entry is put */
    repl_log_reader *watching = follow(cl, 0);
    expect_entry(watching, term, 0, 64, 1);
    expect_quiet(watching);
    uint8_t v[REPL_LOG_ENTRY_HEADER_BYTES + 64];
    uint8_t *p = payload(64, 2);
    cr_assert_eq(repl_log_entry_encode(v, sizeof v, term, 64, p, 64), INV_OK);
    v[REPL_LOG_ENTRY_HEADER_BYTES + 10] ^= 1; /* a payload bit: the checksum */
    put_raw(c, cl, 64, v, sizeof v);
    expect_final(watching, INV_EINVALID);
    cr_assert(strstr(repl_log_reader_errmsg(watching), "checksum") != NULL, "%s",
              repl_log_reader_errmsg(watching));
    /* read: a follower that gets it from the start */
    repl_log_reader *reading = follow(cl, 64);
    expect_final(reading, INV_EINVALID);
    repl_log_follow_stop(watching);
    repl_log_follow_stop(reading);
    /* a good entry whose key says another position */
    cr_assert_eq(repl_log_entry_encode(v, sizeof v, term, 64, p, 64), INV_OK);
    put_raw(c, cl, 128, v, sizeof v);
    reading = follow(cl, 128);
    expect_final(reading, INV_EINVALID);
    repl_log_follow_stop(reading);
    /* a key under the prefix that is no entry key */
    const char *cl2 = "corrupt-key";
    uint64_t t2 = make_leader(c, cl2);
    repl_log_reader *w2 = follow(cl2, 0);
    expect_quiet(w2);
    cr_assert_eq(etcd_put(c, "/corrupt-key/log/xyz", 20, "v", 1, 0, NULL), INV_OK);
    expect_final(w2, INV_EINVALID);
    repl_log_follow_stop(w2);
    (void)t2;
    free(p);
    etcd_close(c);
}

Test(repl_log, a_corrupt_head_is_reported_invalid_and_blocks_appends, .init = cluster_up,
     .fini = cluster_down)
{
    const char *cl = "badhead";
    etcd_client *c = client();
    char err[ERR_MAX];
    uint64_t term = make_leader(c, cl);
    append_ok(c, cl, term, 0, 64, 1);
    uint8_t h[REPL_LOG_HEAD_BYTES];
    etcd_kv kv;
    cr_assert_eq(etcd_get(c, "/badhead/head", 13, &kv, NULL), INV_OK);
    cr_assert_eq(kv.vlen, sizeof h);
    memcpy(h, kv.value, sizeof h);
    etcd_kv_clear(&kv);
    /* its end changed: appends are refused, followers at the end too */
    h[7] ^= 0x40;
    cr_assert_eq(etcd_put(c, "/badhead/head", 13, h, sizeof h, 0, NULL), INV_OK);
    cr_assert_eq(repl_log_head(c, cl, NULL, NULL, NULL, err, sizeof err), INV_EINVALID);
    cr_assert(strstr(err, "checksum") != NULL, "message: %s", err);
    uint8_t *p = payload(64, 2);
    cr_assert_eq(repl_log_append(c, cl, term, 64, p, 64, err, sizeof err), INV_EINVALID, "%s", err);
    repl_log_reader *r = follow(cl, 0); /* entries that exist still read */
    expect_entry(r, term, 0, 64, 1);
    expect_final(r, INV_EINVALID);
    repl_log_follow_stop(r);
    /* only its term changed: the end still fences right, and the append
     * puts a good head in its place */
    h[7] ^= 0x40;
    h[20] ^= 0x10;
    cr_assert_eq(etcd_put(c, "/badhead/head", 13, h, sizeof h, 0, NULL), INV_OK);
    cr_assert_eq(repl_log_head(c, cl, NULL, NULL, NULL, err, sizeof err), INV_EINVALID);
    append_ok(c, cl, term, 64, 64, 2);
    expect_head(c, cl, 128, term);
    free(p);
    etcd_close(c);
}

Test(repl_log, an_entry_with_a_lower_term_or_a_gap_is_a_conflict, .init = cluster_up,
     .fini = cluster_down)
{
    const char *cl = "lowterm";
    etcd_client *c = client();
    uint64_t term;
    repl_log_reader *watching = watching_after_one(c, cl, &term);
    /* an entry written behind the fence's back, by an older term */
    uint8_t v[REPL_LOG_ENTRY_HEADER_BYTES + 64];
    uint8_t *p = payload(64, 2);
    cr_assert_eq(repl_log_entry_encode(v, sizeof v, term - 1, 64, p, 64), INV_OK);
    put_raw(c, cl, 64, v, sizeof v);
    expect_final(watching, INV_ECONFLICT);
    repl_log_reader *reading = follow(cl, 0);
    expect_entry(reading, term, 0, 64, 1);
    expect_final(reading, INV_ECONFLICT);
    repl_log_follow_stop(watching);
    repl_log_follow_stop(reading);
    /* a gap: the next entry starts past the end of the last one */
    const char *cl2 = "gap";
    uint64_t t2 = make_leader(c, cl2);
    append_ok(c, cl2, t2, 0, 64, 1);
    watching = follow(cl2, 0);
    expect_entry(watching, t2, 0, 64, 1);
    expect_quiet(watching);
    cr_assert_eq(repl_log_entry_encode(v, sizeof v, t2, 128, p, 64), INV_OK);
    put_raw(c, cl2, 128, v, sizeof v);
    expect_final(watching, INV_ECONFLICT);
    repl_log_follow_stop(watching);
    /* an overlap: an entry that starts inside the last one and ends past it */
    const char *cl3 = "overlap";
    uint64_t t3 = make_leader(c, cl3);
    append_ok(c, cl3, t3, 0, 64, 1);
    watching = follow(cl3, 0);
    expect_entry(watching, t3, 0, 64, 1);
    expect_quiet(watching);
    cr_assert_eq(repl_log_entry_encode(v, sizeof v, t3, 32, p, 64), INV_OK);
    put_raw(c, cl3, 32, v, sizeof v);
    expect_final(watching, INV_ECONFLICT);
    cr_assert(strstr(repl_log_reader_errmsg(watching), "overlaps") != NULL, "%s",
              repl_log_reader_errmsg(watching));
    repl_log_follow_stop(watching);
    free(p);
    etcd_close(c);
}

Test(repl_log, a_trimmed_and_compacted_log_sends_old_followers_to_a_snapshot, .init = cluster_up,
     .fini = cluster_down)
{
    const char *cl = "trim";
    etcd_client *c = client();
    char err[ERR_MAX];
    uint64_t term = make_leader(c, cl);
    append_entries(c, cl, term, 0, 0, ENTRIES);
    repl_log_reader *live = follow(cl, 0); /* keeps following through it all */
    expect_entries(live, term, 0, 0, ENTRIES);
    expect_quiet(live); /* it watches: it sees the deletions, and ignores them */
    uint64_t keep = entry_first(0, ENTRIES / 2);
    int64_t deleted = -1, rev = 0;
    cr_assert_eq(repl_log_delete_below(c, cl, keep, &deleted, &rev, err, sizeof err), INV_OK, "%s",
                 err);
    cr_assert_eq(deleted, ENTRIES / 2);
    cr_assert_eq(repl_log_compact(c, rev, err, sizeof err), INV_OK, "%s", err);
    cr_assert_eq(repl_log_compact(c, rev, err, sizeof err), INV_OK, "compacted again: %s", err);
    cr_assert_eq(repl_log_compact(c, rev + 1000000, err, sizeof err), INV_ELIMIT, "the future");
    expect_head(c, cl, entry_first(0, ENTRIES), term);
    /* below the retained start, from the very start or an entry inside */
    repl_log_reader *old = follow(cl, 0);
    expect_final(old, INV_ELIMIT);
    repl_log_follow_stop(old);
    old = follow(cl, entry_first(0, 1));
    expect_final(old, INV_ELIMIT);
    repl_log_follow_stop(old);
    /* from the retained start: everything after it */
    repl_log_reader *kept = follow(cl, keep);
    expect_entries(kept, term, 0, ENTRIES / 2, ENTRIES);
    /* later appends reach both, the one that watched across the trim too */
    append_entries(c, cl, term, 0, ENTRIES, ENTRIES + 2);
    expect_entries(kept, term, 0, ENTRIES, ENTRIES + 2);
    expect_entries(live, term, 0, ENTRIES, ENTRIES + 2);
    /* a follower watching across another trim and compaction */
    repl_log_reader *late = follow(cl, entry_first(0, ENTRIES + 2));
    expect_quiet(late);
    append_entries(c, cl, term, 0, ENTRIES + 2, ENTRIES + 3);
    cr_assert_eq(repl_log_delete_below(c, cl, 0, &deleted, &rev, err, sizeof err), INV_OK);
    cr_assert_eq(deleted, 0, "nothing below 0");
    cr_assert_eq(repl_log_compact(c, rev, err, sizeof err), INV_OK, "%s", err);
    expect_entries(late, term, 0, ENTRIES + 2, ENTRIES + 3);
    /* trimmed to nothing (a snapshot at the head): from below, a snapshot
     * is needed; from the head, the next append arrives */
    uint64_t end = entry_first(0, ENTRIES + 3);
    cr_assert_eq(repl_log_delete_below(c, cl, end, &deleted, &rev, err, sizeof err), INV_OK);
    cr_assert_eq(deleted, ENTRIES + 3 - ENTRIES / 2);
    old = follow(cl, keep);
    expect_final(old, INV_ELIMIT);
    cr_assert(strstr(repl_log_reader_errmsg(old), "no entries") != NULL, "%s",
              repl_log_reader_errmsg(old));
    repl_log_follow_stop(old);
    repl_log_reader *at_head = follow(cl, end);
    expect_quiet(at_head);
    append_entries(c, cl, term, 0, ENTRIES + 3, ENTRIES + 4);
    expect_entries(at_head, term, 0, ENTRIES + 3, ENTRIES + 4);
    expect_entries(late, term, 0, ENTRIES + 3, ENTRIES + 4);
    repl_log_follow_stop(at_head);
    repl_log_follow_stop(live);
    repl_log_follow_stop(kept);
    repl_log_follow_stop(late);
    etcd_close(c);
}

Test(repl_log, the_first_append_of_a_cluster_sets_where_its_log_starts, .init = cluster_up,
     .fini = cluster_down)
{
    const char *cl = "start";
    etcd_client *c = client();
    uint64_t term = make_leader(c, cl);
    repl_log_reader *zero = follow(cl, 0);
    expect_quiet(zero);
    append_ok(c, cl, term, 1 << 20, 64, 1);
    append_ok(c, cl, term, (1 << 20) + 64, 64, 2);
    expect_head(c, cl, (1 << 20) + 128, term);
    /* a follower from 0 cannot get what precedes the log's start */
    expect_final(zero, INV_ELIMIT);
    repl_log_follow_stop(zero);
    repl_log_reader *r = follow(cl, 1 << 20);
    expect_entry(r, term, 1 << 20, 64, 1);
    expect_entry(r, term, (1 << 20) + 64, 64, 2);
    repl_log_follow_stop(r);
    etcd_close(c);
}

Test(repl_log, entries_at_the_payload_max_round_trip_and_larger_are_refused, .init = cluster_up,
     .fini = cluster_down)
{
    const char *cl = "big";
    etcd_client *c = client();
    char err[ERR_MAX];
    uint64_t term = make_leader(c, cl);
    const size_t max = REPL_LOG_ENTRY_PAYLOAD_MAX;
    repl_log_reader *watching = follow(cl, 0);
    expect_quiet(watching);
    append_ok(c, cl, term, 0, max, 11);
    append_ok(c, cl, term, max, max, 12);
    expect_entry(watching, term, 0, max, 11); /* through the watch */
    expect_entry(watching, term, max, max, 12);
    repl_log_reader *reading = follow(cl, 0); /* through gets */
    expect_entry(reading, term, 0, max, 11);
    expect_entry(reading, term, max, max, 12);
    uint8_t *p = payload(max + 8, 13);
    cr_assert_eq(repl_log_append(c, cl, term, 2 * max, p, max + 8, err, sizeof err), INV_EINVALID);
    expect_head(c, cl, 2 * max, term);
    expect_quiet(watching);
    repl_log_follow_stop(watching);
    repl_log_follow_stop(reading);
    free(p);
    etcd_close(c);
}

Test(repl_log, a_follower_whose_etcd_member_dies_resumes_and_fails_softly_without_etcd,
     .init = private_up, .fini = cluster_down)
{
    const char *cl = "member";
    etcd_client *c = client();
    uint64_t term = make_leader(c, cl);
    append_entries(c, cl, term, 0, 0, 2);
    /* the reader's client starts with the first endpoint, which answers:
     * its watch is on member 0 */
    repl_log_reader *r = follow(cl, 0);
    expect_entries(r, term, 0, 0, 2);
    expect_quiet(r);
    eh_kill(&g_private, 0);
    append_entries(c, cl, term, 0, 2, ENTRIES);
    expect_entries(r, term, 0, 2, ENTRIES);
    expect_quiet(r);
    /* every member gone: the outcome of an append is unknown, and the
     * follower reports etcd's failure, not a final one, each time */
    eh_kill(&g_private, 1);
    eh_kill(&g_private, 2);
    char err[ERR_MAX];
    uint8_t *p = payload(64, 99);
    cr_assert_eq(repl_log_append(c, cl, term, entry_first(0, ENTRIES), p, 64, err, sizeof err),
                 INV_EIO, "%s", err);
    free(p);
    repl_log_entry e;
    cr_assert_eq(next_rc(r, &e), INV_EIO, "%s", repl_log_reader_errmsg(r));
    cr_assert_eq(next_rc(r, &e), INV_EIO, "not final: %s", repl_log_reader_errmsg(r));
    repl_log_follow_stop(r);
    etcd_close(c);
}

Test(repl_log, the_entry_holding_a_position_is_found_until_it_is_trimmed, .init = cluster_up,
     .fini = cluster_down)
{
    const char *cl = "holding";
    etcd_client *c = client();
    char err[ERR_MAX];
    uint64_t first = 1, term = make_leader(c, cl);
    cr_assert_eq(repl_log_entry_holding(c, cl, 64, &first, err, sizeof err), INV_ENOTFOUND,
                 "an empty log holds nothing");
    append_ok(c, cl, term, 0, 64, 1);
    append_ok(c, cl, term, 64, 64, 2);
    append_ok(c, cl, term, 128, 64, 3);
    const uint64_t at[][2] = {{0, 0}, {8, 0}, {64, 64}, {120, 64}, {128, 128}, {4096, 128}};
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        cr_assert_eq(repl_log_entry_holding(c, cl, at[i][0], &first, err, sizeof err), INV_OK, "%s",
                     err);
        cr_assert_eq(first, at[i][1], "position %" PRIu64 ": entry at %" PRIu64, at[i][0], first);
    }
    cr_assert_eq(repl_log_delete_below(c, cl, 128, NULL, NULL, err, sizeof err), INV_OK);
    cr_assert_eq(repl_log_entry_holding(c, cl, 120, &first, err, sizeof err), INV_ENOTFOUND,
                 "trimmed: a reader from 120 needs a snapshot");
    cr_assert_eq(repl_log_entry_holding(c, cl, 130, &first, err, sizeof err), INV_OK);
    cr_assert_eq(first, 128);
    cr_assert_eq(repl_log_entry_holding(c, "bad name!", 0, &first, err, sizeof err), INV_EINVALID);
    etcd_close(c);
}
