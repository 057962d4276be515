/*
 * test_etcd.c — integration: the etcd v3 client (core/server/etcd.c)
 * against a real 3-member etcd cluster on loopback (etcd_harness.h), one
 * fresh cluster per test, so no test sees another's keys.
 *
 * Nothing waits on time alone: events are awaited with bounded loops of
 * etcd_watch_next, and only the hostile-input test runs without a cluster.
 */
#include "etcd_harness.h"

#define WAIT_MS 20000u /* an awaited event or condition must come within this */
#define NEXT_MS 500u /* one etcd_watch_next wait inside a bounded loop */

static eh_cluster g_cl;

static void cluster_up(void)
{
    eh_start(&g_cl);
}

static void cluster_down(void)
{
    eh_stop(&g_cl);
}

static etcd_client *client_all(void)
{
    char err[ETCD_ERROR_MAX];
    etcd_client *c = etcd_open(g_cl.endpoints, EH_CLIENT_TIMEOUT_MS, err, sizeof err);
    cr_assert_not_null(c, "etcd_open(%s): %s", g_cl.endpoints, err);
    return c;
}

static void put_ok(etcd_client *c, const char *key, const char *val, int64_t lease, int64_t *rev)
{
    int rc = etcd_put(c, key, strlen(key), val, strlen(val), lease, rev);
    cr_assert_eq(rc, INV_OK, "put %s: %d %s", key, rc, etcd_errmsg(c));
}

/* The next watch event, waiting in bounded steps; the test fails on an
 * error or when none comes within WAIT_MS. */
static etcd_event next_event(etcd_watch *w)
{
    etcd_event ev;
    uint64_t deadline = tu_deadline_ms(WAIT_MS);
    int rc;
    while ((rc = etcd_watch_next(w, &ev, NEXT_MS)) == INV_ENOTFOUND && !tu_past(deadline))
        ;
    cr_assert_eq(rc, INV_OK, "watch next: %d %s", rc, etcd_watch_errmsg(w));
    return ev;
}

Test(etcd, put_get_round_trips_binary_keys_and_values, .init = cluster_up, .fini = cluster_down)
{
    etcd_client *c = client_all();
    const uint8_t key[] = {'/', 'b', 0x00, 0xff, 'k', 0x00};
    uint8_t val[300];
    for (size_t i = 0; i < sizeof val; i++)
        val[i] = (uint8_t)(255 - i % 256);
    int64_t rev1 = 0, rev2 = 0, rev3 = 0;
    cr_assert_eq(etcd_put(c, key, sizeof key, val, sizeof val, 0, &rev1), INV_OK, "%s",
                 etcd_errmsg(c));
    cr_assert_eq(etcd_put(c, key, sizeof key, val, 7, 0, &rev2), INV_OK, "%s", etcd_errmsg(c));
    cr_assert_gt(rev2, rev1);
    etcd_kv kv;
    cr_assert_eq(etcd_get(c, key, sizeof key, &kv, &rev3), INV_OK, "%s", etcd_errmsg(c));
    cr_assert_eq(kv.klen, sizeof key);
    cr_assert_eq(memcmp(kv.key, key, sizeof key), 0);
    cr_assert_eq(kv.vlen, 7);
    cr_assert_eq(memcmp(kv.value, val, 7), 0);
    cr_assert_eq(kv.mod_revision, rev2);
    cr_assert_eq(kv.create_revision, rev1);
    cr_assert_eq(kv.version, 2);
    cr_assert_eq(kv.lease, 0);
    cr_assert_geq(rev3, rev2);
    etcd_kv_clear(&kv);
    /* an empty value is a value, not an absent key */
    cr_assert_eq(etcd_put(c, "/empty", 6, NULL, 0, 0, NULL), INV_OK, "%s", etcd_errmsg(c));
    cr_assert_eq(etcd_get(c, "/empty", 6, &kv, NULL), INV_OK, "%s", etcd_errmsg(c));
    cr_assert_eq(kv.vlen, 0);
    etcd_kv_clear(&kv);
    etcd_close(c);
}

Test(etcd, get_of_a_missing_key_is_notfound, .init = cluster_up, .fini = cluster_down)
{
    etcd_client *c = client_all();
    etcd_kv kv;
    put_ok(c, "/present", "x", 0, NULL);
    cr_assert_eq(etcd_get(c, "/absent", 7, &kv, NULL), INV_ENOTFOUND);
    cr_assert_null(kv.value);
    /* a prefix of a present key is not that key */
    cr_assert_eq(etcd_get(c, "/pres", 5, &kv, NULL), INV_ENOTFOUND);
    etcd_close(c);
}

#define RANGE_KEYS 250
#define RANGE_PAGE 7

typedef struct {
    int n;
    int64_t max_mod;
    bool order_ok;
    char last[64];
} range_seen;

static int range_collect(void *arg, const etcd_kv *kv)
{
    range_seen *s = arg;
    char k[64];
    snprintf(k, sizeof k, "/r/%04d", s->n);
    s->order_ok = s->order_ok && kv->klen == strlen(k) && memcmp(kv->key, k, kv->klen) == 0 &&
                  kv->vlen == 4 && memcmp(kv->value, k + 3, 4) == 0;
    s->max_mod = kv->mod_revision > s->max_mod ? kv->mod_revision : s->max_mod;
    s->n++;
    return 0;
}

static int range_stop_at_3(void *arg, const etcd_kv *kv)
{
    int *n = arg;
    return ++*n == 3 ? 42 : 0;
}

Test(etcd, range_prefix_pages_return_every_key_once_in_order, .init = cluster_up,
     .fini = cluster_down)
{
    etcd_client *c = client_all();
    /* neighbours that must not be included: "/r" itself sorts before,
     * "/r0" and "/s" after the prefix "/r/" */
    put_ok(c, "/r", "x", 0, NULL);
    put_ok(c, "/r0", "x", 0, NULL);
    put_ok(c, "/s", "x", 0, NULL);
    /* written in a scrambled order: the range must sort them */
    for (int i = 0; i < RANGE_KEYS; i++) {
        int j = (i * 97) % RANGE_KEYS; /* 97 is coprime with 250 */
        char k[32];
        snprintf(k, sizeof k, "/r/%04d", j);
        put_ok(c, k, k + 3, 0, NULL);
    }
    range_seen s = {.order_ok = true};
    int64_t rev = 0;
    int rc = etcd_range_prefix(c, "/r/", 3, RANGE_PAGE, range_collect, &s, &rev);
    cr_assert_eq(rc, INV_OK, "%s", etcd_errmsg(c));
    cr_assert_eq(s.n, RANGE_KEYS);
    cr_assert(s.order_ok, "keys out of order, missing or repeated");
    cr_assert_geq(rev, s.max_mod);
    int stopped = 0;
    cr_assert_eq(etcd_range_prefix(c, "/r/", 3, RANGE_PAGE, range_stop_at_3, &stopped, NULL), 42);
    cr_assert_eq(stopped, 3);
    etcd_close(c);
}

Test(etcd, delete_prefix_counts_deleted_keys, .init = cluster_up, .fini = cluster_down)
{
    etcd_client *c = client_all();
    for (int i = 0; i < 10; i++) {
        char k[32];
        snprintf(k, sizeof k, "/d/%d", i);
        put_ok(c, k, "v", 0, NULL);
    }
    put_ok(c, "/d", "outside", 0, NULL);
    put_ok(c, "/e/0", "outside", 0, NULL);
    int64_t deleted = -1, rev = 0;
    cr_assert_eq(etcd_delete_prefix(c, "/d/", 3, &deleted, &rev), INV_OK, "%s", etcd_errmsg(c));
    cr_assert_eq(deleted, 10);
    cr_assert_eq(etcd_delete_prefix(c, "/d/", 3, &deleted, NULL), INV_OK);
    cr_assert_eq(deleted, 0);
    etcd_kv kv;
    cr_assert_eq(etcd_get(c, "/d", 2, &kv, NULL), INV_OK);
    etcd_kv_clear(&kv);
    cr_assert_eq(etcd_get(c, "/e/0", 4, &kv, NULL), INV_OK);
    etcd_kv_clear(&kv);
    cr_assert_eq(etcd_delete_range(c, "/d", 2, NULL, 0, &deleted, NULL), INV_OK);
    cr_assert_eq(deleted, 1);
    etcd_close(c);
}

Test(etcd, txn_compare_and_put_applies_only_while_the_compare_holds, .init = cluster_up,
     .fini = cluster_down)
{
    etcd_client *c = client_all();
    int64_t rev = 0;
    put_ok(c, "/cas", "v1", 0, &rev);
    etcd_compare cmp = {
        .target = ETCD_TARGET_MOD, .result = ETCD_EQUAL, .key = "/cas", .klen = 4, .number = rev};
    etcd_op ops[2] = {{.kind = ETCD_OP_PUT, .key = "/cas", .klen = 4, .value = "v2", .vlen = 2},
                      {.kind = ETCD_OP_PUT, .key = "/cas-log", .klen = 8, .value = "a", .vlen = 1}};
    bool ok = false;
    int64_t trev = 0;
    cr_assert_eq(etcd_txn_put_if(c, &cmp, 1, ops, 2, &ok, &trev), INV_OK, "%s", etcd_errmsg(c));
    cr_assert(ok, "the compare held: the txn must succeed");
    cr_assert_eq(trev, rev + 1);
    /* the same txn again: /cas was modified, so nothing is written */
    ops[1].value = "b";
    cr_assert_eq(etcd_txn_put_if(c, &cmp, 1, ops, 2, &ok, &trev), INV_OK, "%s", etcd_errmsg(c));
    cr_assert_not(ok, "the compare no longer holds");
    cr_assert_eq(trev, rev + 1, "a failed txn writes nothing");
    etcd_kv kv;
    cr_assert_eq(etcd_get(c, "/cas-log", 8, &kv, NULL), INV_OK);
    cr_assert_eq(kv.vlen, 1);
    cr_assert_eq(kv.value[0], 'a');
    etcd_kv_clear(&kv);
    /* create-if-absent: version == 0, and a VALUE compare */
    etcd_compare absent = {
        .target = ETCD_TARGET_VERSION, .result = ETCD_EQUAL, .key = "/new", .klen = 4, .number = 0};
    etcd_op create = {.kind = ETCD_OP_PUT, .key = "/new", .klen = 4, .value = "n", .vlen = 1};
    cr_assert_eq(etcd_txn_put_if(c, &absent, 1, &create, 1, &ok, NULL), INV_OK);
    cr_assert(ok);
    cr_assert_eq(etcd_txn_put_if(c, &absent, 1, &create, 1, &ok, NULL), INV_OK);
    cr_assert_not(ok);
    etcd_compare val = {.target = ETCD_TARGET_VALUE,
                        .result = ETCD_NOT_EQUAL,
                        .key = "/cas",
                        .klen = 4,
                        .value = "v2",
                        .vlen = 2};
    etcd_op del = {.kind = ETCD_OP_DELETE, .key = "/cas", .klen = 4};
    cr_assert_eq(etcd_txn_put_if(c, &val, 1, &del, 1, &ok, NULL), INV_OK);
    cr_assert_not(ok, "/cas is v2");
    val.result = ETCD_EQUAL;
    cr_assert_eq(etcd_txn_put_if(c, &val, 1, &del, 1, &ok, NULL), INV_OK);
    cr_assert(ok);
    cr_assert_eq(etcd_get(c, "/cas", 4, &kv, NULL), INV_ENOTFOUND);
    etcd_close(c);
}

/* The fenced append the replication will use: "put log/x only if the
 * leader key still carries my lease". */
static bool fenced_append(etcd_client *c, int64_t lease, const char *logkey)
{
    etcd_compare cmp = {.target = ETCD_TARGET_LEASE,
                        .result = ETCD_EQUAL,
                        .key = "/leader",
                        .klen = 7,
                        .number = lease};
    etcd_op op = {
        .kind = ETCD_OP_PUT, .key = logkey, .klen = strlen(logkey), .value = "rec", .vlen = 3};
    bool ok = false;
    int rc = etcd_txn_put_if(c, &cmp, 1, &op, 1, &ok, NULL);
    cr_assert_eq(rc, INV_OK, "%s", etcd_errmsg(c));
    return ok;
}

Test(etcd, txn_fenced_on_the_leader_lease_fails_once_the_lease_is_gone, .init = cluster_up,
     .fini = cluster_down)
{
    etcd_client *c = client_all();
    int64_t a = 0, b = 0, ttl = 0;
    cr_assert_eq(etcd_lease_grant(c, 30, &a, &ttl), INV_OK, "%s", etcd_errmsg(c));
    cr_assert_eq(etcd_lease_grant(c, 30, &b, NULL), INV_OK, "%s", etcd_errmsg(c));
    cr_assert_neq(a, b);
    put_ok(c, "/leader", "node-a", a, NULL);
    cr_assert(fenced_append(c, a, "/log/1"), "A holds the leader key");
    cr_assert_not(fenced_append(c, b, "/log/b1"), "B does not");
    cr_assert_eq(etcd_lease_revoke(c, a), INV_OK, "%s", etcd_errmsg(c));
    cr_assert_not(fenced_append(c, a, "/log/2"), "A's lease was revoked");
    put_ok(c, "/leader", "node-b", b, NULL);
    cr_assert_not(fenced_append(c, a, "/log/3"), "B owns the leader key now");
    cr_assert(fenced_append(c, b, "/log/4"));
    etcd_kv kv;
    cr_assert_eq(etcd_get(c, "/log/1", 6, &kv, NULL), INV_OK);
    etcd_kv_clear(&kv);
    cr_assert_eq(etcd_get(c, "/log/2", 6, &kv, NULL), INV_ENOTFOUND);
    cr_assert_eq(etcd_get(c, "/log/3", 6, &kv, NULL), INV_ENOTFOUND);
    cr_assert_eq(etcd_get(c, "/log/b1", 7, &kv, NULL), INV_ENOTFOUND);
    etcd_close(c);
}

Test(etcd, lease_grant_keepalive_revoke_and_its_keys_go_with_it, .init = cluster_up,
     .fini = cluster_down)
{
    etcd_client *c = client_all();
    int64_t id = 0, ttl = 0, left = 0;
    cr_assert_eq(etcd_lease_grant(c, 20, &id, &ttl), INV_OK, "%s", etcd_errmsg(c));
    cr_assert_gt(id, 0);
    cr_assert_geq(ttl, 20);
    put_ok(c, "/leased", "v", id, NULL);
    etcd_kv kv;
    cr_assert_eq(etcd_get(c, "/leased", 7, &kv, NULL), INV_OK);
    cr_assert_eq(kv.lease, id);
    etcd_kv_clear(&kv);
    cr_assert_eq(etcd_lease_keepalive(c, id, &left), INV_OK, "%s", etcd_errmsg(c));
    cr_assert_gt(left, 0);
    cr_assert_leq(left, ttl);
    cr_assert_eq(etcd_lease_revoke(c, id), INV_OK, "%s", etcd_errmsg(c));
    cr_assert_eq(etcd_get(c, "/leased", 7, &kv, NULL), INV_ENOTFOUND);
    cr_assert_eq(etcd_lease_keepalive(c, id, &left), INV_ENOTFOUND);
    cr_assert_eq(etcd_lease_revoke(c, id), INV_ENOTFOUND);
    /* a put on a revoked lease is refused by etcd */
    cr_assert_eq(etcd_put(c, "/leased", 7, "v", 1, id, NULL), INV_ENOTFOUND);
    etcd_close(c);
}

#define WATCH_BEFORE 100 /* puts before the watch starts */
#define WATCH_AFTER 100 /* puts after */
#define WATCH_TXNS 10 /* txns of ETCD_TXN_OPS_MAX puts: more than the queue holds */

/* Checks that the next event is a PUT of key /w/<i> at revision > *rev. */
static void expect_put(etcd_watch *w, int i, int64_t *rev)
{
    char k[32];
    snprintf(k, sizeof k, "/w/%05d", i);
    etcd_event ev = next_event(w);
    cr_assert_eq(ev.type, ETCD_EVENT_PUT, "event %d", i);
    cr_assert(ev.klen == strlen(k) && memcmp(ev.key, k, ev.klen) == 0, "event %d: key %.*s", i,
              (int)ev.klen, (const char *)ev.key);
    cr_assert(ev.vlen == 1 && ev.value[0] == (char)('a' + i % 26), "event %d: value", i);
    cr_assert_geq(ev.mod_revision, *rev, "event %d: revisions never go back", i);
    *rev = ev.mod_revision;
}

static void put_numbered(etcd_client *c, int i)
{
    char k[32], v[2] = {(char)('a' + i % 26), 0};
    snprintf(k, sizeof k, "/w/%05d", i);
    put_ok(c, k, v, 0, NULL);
}

Test(etcd, watch_from_an_old_revision_sees_every_change_once_in_order, .init = cluster_up,
     .fini = cluster_down)
{
    etcd_client *c = client_all();
    int64_t start = 0;
    put_ok(c, "/x-outside", "x", 0, &start); /* the revision before the first put */
    for (int i = 0; i < WATCH_BEFORE; i++)
        put_numbered(c, i);
    char err[ETCD_ERROR_MAX];
    etcd_watch *w = etcd_watch_start(c, "/w/", 3, start + 1, err, sizeof err);
    cr_assert_not_null(w, "%s", err);
    int n = WATCH_BEFORE;
    for (; n < WATCH_BEFORE + WATCH_AFTER; n++)
        put_numbered(c, n);
    /* txns of many puts each: more events than the queue holds, so the
     * watch thread must wait for room (it must not drop any) */
    for (int t = 0; t < WATCH_TXNS; t++) {
        static char keys[ETCD_TXN_OPS_MAX][32], vals[ETCD_TXN_OPS_MAX][2];
        etcd_op ops[ETCD_TXN_OPS_MAX];
        for (int j = 0; j < (int)ETCD_TXN_OPS_MAX; j++, n++) {
            snprintf(keys[j], sizeof keys[j], "/w/%05d", n);
            vals[j][0] = (char)('a' + n % 26);
            ops[j] = (etcd_op){.kind = ETCD_OP_PUT,
                               .key = keys[j],
                               .klen = strlen(keys[j]),
                               .value = vals[j],
                               .vlen = 1};
        }
        etcd_compare always = {.target = ETCD_TARGET_VERSION,
                               .result = ETCD_GREATER,
                               .key = "/x-outside",
                               .klen = 10,
                               .number = 0};
        bool ok = false;
        cr_assert_eq(etcd_txn_put_if(c, &always, 1, ops, ETCD_TXN_OPS_MAX, &ok, NULL), INV_OK, "%s",
                     etcd_errmsg(c));
        cr_assert(ok);
    }
    int64_t del_rev = 0;
    cr_assert_eq(etcd_delete_range(c, "/w/00000", 8, NULL, 0, NULL, &del_rev), INV_OK);
    int64_t rev = 0;
    for (int i = 0; i < n; i++)
        expect_put(w, i, &rev);
    etcd_event ev = next_event(w);
    cr_assert_eq(ev.type, ETCD_EVENT_DELETE);
    cr_assert(ev.klen == 8 && memcmp(ev.key, "/w/00000", 8) == 0);
    cr_assert_eq(ev.mod_revision, del_rev);
    /* exactly once: nothing more comes */
    cr_assert_eq(etcd_watch_next(w, &ev, 200), INV_ENOTFOUND);
    etcd_watch_stop(w);
    etcd_close(c);
}

Test(etcd, watch_large_values_arrive_whole, .init = cluster_up, .fini = cluster_down)
{
    enum { N = 8, BYTES = 300000 }; /* each event spans many stream reads */
    etcd_client *c = client_all();
    char err[ETCD_ERROR_MAX];
    etcd_watch *w = etcd_watch_start(c, "/big/", 5, 0, err, sizeof err);
    cr_assert_not_null(w, "%s", err);
    uint8_t *val = malloc(BYTES);
    cr_assert_not_null(val);
    for (int i = 0; i < N; i++) {
        for (size_t j = 0; j < BYTES; j++)
            val[j] = (uint8_t)(j * 31 + (size_t)i);
        char k[32];
        snprintf(k, sizeof k, "/big/%d", i);
        cr_assert_eq(etcd_put(c, k, strlen(k), val, BYTES, 0, NULL), INV_OK, "%s", etcd_errmsg(c));
    }
    for (int i = 0; i < N; i++) {
        etcd_event ev = next_event(w);
        cr_assert_eq(ev.vlen, BYTES);
        for (size_t j = 0; j < BYTES; j++)
            val[j] = (uint8_t)(j * 31 + (size_t)i);
        cr_assert_eq(memcmp(ev.value, val, BYTES), 0, "event %d's value differs", i);
    }
    free(val);
    etcd_watch_stop(w);
    etcd_close(c);
}

Test(etcd, watch_at_a_compacted_revision_reports_the_compaction, .init = cluster_up,
     .fini = cluster_down)
{
    etcd_client *c = client_all();
    int64_t first = 0, last = 0;
    put_ok(c, "/cw/a", "1", 0, &first);
    for (int i = 0; i < 5; i++)
        put_ok(c, "/cw/a", "2", 0, &last);
    cr_assert_eq(etcd_compact(c, last, true), INV_OK, "%s", etcd_errmsg(c));
    cr_assert_eq(etcd_compact(c, first, false), INV_ELIMIT, "already compacted");
    char err[ETCD_ERROR_MAX];
    etcd_watch *w = etcd_watch_start(c, "/cw/", 4, first, err, sizeof err);
    cr_assert_not_null(w, "%s", err);
    etcd_event ev;
    uint64_t deadline = tu_deadline_ms(WAIT_MS);
    int rc;
    while ((rc = etcd_watch_next(w, &ev, NEXT_MS)) == INV_ENOTFOUND && !tu_past(deadline))
        ;
    cr_assert_eq(rc, INV_ELIMIT, "rc %d: %s", rc, etcd_watch_errmsg(w));
    cr_assert_eq(etcd_watch_compact_revision(w), last);
    /* the end stays */
    cr_assert_eq(etcd_watch_next(w, &ev, 0), INV_ELIMIT);
    etcd_watch_stop(w);
    /* a range at a compacted revision says the same */
    etcd_close(c);
}

typedef struct {
    etcd_watch *w;
    atomic_int done;
} stopper;

static void *stop_thread(void *p)
{
    stopper *s = p;
    etcd_watch_stop(s->w);
    /* release: the test thread's acquire sees the stop finished */
    atomic_store_explicit(&s->done, 1, memory_order_release);
    return NULL;
}

Test(etcd, stopping_an_idle_watch_returns, .init = cluster_up, .fini = cluster_down)
{
    etcd_client *c = client_all();
    char err[ETCD_ERROR_MAX];
    etcd_watch *w = etcd_watch_start(c, "/idle/", 6, 0, err, sizeof err);
    cr_assert_not_null(w, "%s", err);
    etcd_event ev;
    cr_assert_eq(etcd_watch_next(w, &ev, 100), INV_ENOTFOUND, "nothing was written");
    stopper s = {.w = w};
    atomic_init(&s.done, 0);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, stop_thread, &s), 0);
    cr_assert(tu_wait_at_least(&s.done, 1, WAIT_MS), "etcd_watch_stop did not return");
    pthread_join(t, NULL);
    etcd_close(c);
}

Test(etcd, hostile_inputs_are_refused)
{
    char err[ETCD_ERROR_MAX];
    const char *bad[] = {
        "",
        "127.0.0.1:2379",
        "https://127.0.0.1:2379",
        "http://",
        "http://127.0.0.1:0",
        "http://127.0.0.1:65536",
        "http://127.0.0.1:2379/v3",
        "http://user@127.0.0.1:2379",
        "http://127.0.0.1:2379,",
        "http://127.0.0.1:2379,,http://127.0.0.1:2380",
        "http://127.0.0.1:12a",
        "http://a b:1",
        "http://127.0.0.1:2379,http://127.0.0.1:2379,http://127.0.0.1:2379,http://127.0.0.1:2379,"
        "http://127.0.0.1:2379,http://127.0.0.1:2379,http://127.0.0.1:2379,http://127.0.0.1:2379,"
        "http://127.0.0.1:2379",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        cr_assert_null(etcd_open(bad[i], 1000, err, sizeof err), "accepted '%s'", bad[i]);
        cr_assert_neq(err[0], '\0', "no message for '%s'", bad[i]);
    }
    char *longurl = malloc(ETCD_ENDPOINT_MAX + 64);
    cr_assert_not_null(longurl);
    snprintf(longurl, ETCD_ENDPOINT_MAX + 64, "http://");
    memset(longurl + 7, 'a', ETCD_ENDPOINT_MAX + 40);
    longurl[ETCD_ENDPOINT_MAX + 47] = '\0';
    cr_assert_null(etcd_open(longurl, 1000, err, sizeof err));
    free(longurl);
    cr_assert_null(etcd_open(NULL, 1000, err, sizeof err));
    cr_assert_null(etcd_open("http://127.0.0.1:1", 0, err, sizeof err), "timeout 0");
    cr_assert_null(etcd_open("http://127.0.0.1:1", ETCD_TIMEOUT_MS_MAX + 1, NULL, 0));
    /* a good list (nothing listens: argument checks come before sending) */
    etcd_client *c =
        etcd_open("http://127.0.0.1:1,http://[::1]:2/,http://localhost", 1000, err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    size_t big = ETCD_VALUE_MAX + 1;
    uint8_t *v = calloc(1, big);
    cr_assert_not_null(v);
    etcd_kv kv;
    bool ok;
    int64_t id;
    cr_assert_eq(etcd_put(c, "k", 1, v, big, 0, NULL), INV_EINVALID);
    cr_assert_eq(etcd_put(c, v, ETCD_KEY_MAX + 1, "v", 1, 0, NULL), INV_EINVALID);
    cr_assert_eq(etcd_put(c, NULL, 1, "v", 1, 0, NULL), INV_EINVALID);
    cr_assert_eq(etcd_put(c, "k", 0, "v", 1, 0, NULL), INV_EINVALID);
    cr_assert_eq(etcd_put(c, "k", 1, NULL, 1, 0, NULL), INV_EINVALID);
    cr_assert_eq(etcd_put(c, "k", 1, "v", 1, -1, NULL), INV_EINVALID);
    cr_assert_eq(etcd_put(NULL, "k", 1, "v", 1, 0, NULL), INV_EINVALID);
    cr_assert_eq(etcd_get(c, NULL, 0, &kv, NULL), INV_EINVALID);
    cr_assert_eq(etcd_get(c, "k", 1, NULL, NULL), INV_EINVALID);
    cr_assert_eq(etcd_range_prefix(c, "k", 1, 0, NULL, NULL, NULL), INV_EINVALID);
    cr_assert_eq(etcd_delete_prefix(c, "", 0, NULL, NULL), INV_EINVALID);
    cr_assert_eq(etcd_delete_range(c, "k", 1, NULL, 3, NULL, NULL), INV_EINVALID);
    etcd_compare cmp = {.target = ETCD_TARGET_MOD, .key = "k", .klen = 1};
    etcd_op op = {.kind = ETCD_OP_PUT, .key = "k", .klen = 1, .value = v, .vlen = 1000000};
    etcd_op two[2] = {op, op}; /* each fits, together they do not */
    cr_assert_eq(etcd_txn_put_if(c, &cmp, 1, two, 2, &ok, NULL), INV_EINVALID);
    cr_assert_eq(etcd_txn_put_if(c, &cmp, 0, &op, 1, &ok, NULL), INV_EINVALID);
    cr_assert_eq(etcd_txn_put_if(c, &cmp, 1, &op, ETCD_TXN_OPS_MAX + 1, &ok, NULL), INV_EINVALID);
    cr_assert_eq(etcd_txn_put_if(c, &cmp, 1, &op, 1, NULL, NULL), INV_EINVALID);
    cmp.target = (etcd_target)99;
    cr_assert_eq(etcd_txn_put_if(c, &cmp, 1, &op, 1, &ok, NULL), INV_EINVALID);
    cr_assert_eq(etcd_lease_grant(c, 0, &id, NULL), INV_EINVALID);
    cr_assert_eq(etcd_lease_keepalive(c, 0, NULL), INV_EINVALID);
    cr_assert_eq(etcd_lease_revoke(c, -5), INV_EINVALID);
    cr_assert_eq(etcd_compact(c, 0, false), INV_EINVALID);
    cr_assert_null(etcd_watch_start(c, NULL, 3, 0, err, sizeof err));
    cr_assert_null(etcd_watch_start(NULL, "k", 1, 0, err, sizeof err));
    cr_assert_eq(etcd_watch_next(NULL, NULL, 0), INV_EINVALID);
    cr_assert_neq(etcd_errmsg(c)[0], '\0');
    free(v);
    etcd_close(c);
    etcd_close(NULL);
    etcd_watch_stop(NULL);
}

Test(etcd, killing_one_member_changes_nothing_visible, .init = cluster_up, .fini = cluster_down)
{
    etcd_client *c = client_all();
    int64_t rev = 0;
    put_ok(c, "/k/before", "1", 0, &rev);
    /* kill the member the client is using, so it must fail over */
    int m = eh_member_of(&g_cl, etcd_endpoint(c));
    cr_assert_geq(m, 0, "endpoint %s", etcd_endpoint(c));
    eh_kill(&g_cl, m);
    for (int i = 0; i < 20; i++) {
        char k[32];
        int64_t r = 0;
        snprintf(k, sizeof k, "/k/%d", i);
        put_ok(c, k, "v", 0, &r);
        cr_assert_gt(r, rev, "revisions grow");
        rev = r;
        etcd_kv kv;
        cr_assert_eq(etcd_get(c, k, strlen(k), &kv, NULL), INV_OK, "%s", etcd_errmsg(c));
        cr_assert_eq(kv.mod_revision, r);
        etcd_kv_clear(&kv);
        etcd_compare cmp = {.target = ETCD_TARGET_MOD,
                            .result = ETCD_EQUAL,
                            .key = k,
                            .klen = strlen(k),
                            .number = r};
        etcd_op op = {.kind = ETCD_OP_PUT, .key = k, .klen = strlen(k), .value = "w", .vlen = 1};
        bool ok = false;
        cr_assert_eq(etcd_txn_put_if(c, &cmp, 1, &op, 1, &ok, &rev), INV_OK, "%s", etcd_errmsg(c));
        cr_assert(ok);
    }
    cr_assert_neq(eh_member_of(&g_cl, etcd_endpoint(c)), m, "moved off the dead member");
    etcd_kv kv;
    cr_assert_eq(etcd_get(c, "/k/before", 9, &kv, NULL), INV_OK);
    etcd_kv_clear(&kv);
    etcd_close(c);
}

Test(etcd, all_members_gone_fails_with_eio_within_the_timeout, .init = cluster_up,
     .fini = cluster_down)
{
    enum { TIMEOUT_MS = 2000 };
    char err[ETCD_ERROR_MAX];
    etcd_client *c = etcd_open(g_cl.endpoints, TIMEOUT_MS, err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    put_ok(c, "/g", "1", 0, NULL);
    for (int i = 0; i < EH_MEMBERS; i++)
        eh_kill(&g_cl, i);
    uint64_t t0 = tu_now_ns();
    cr_assert_eq(etcd_put(c, "/g", 2, "2", 1, 0, NULL), INV_EIO);
    etcd_kv kv;
    cr_assert_eq(etcd_get(c, "/g", 2, &kv, NULL), INV_EIO);
    cr_assert_neq(etcd_errmsg(c)[0], '\0');
    cr_assert_null(etcd_watch_start(c, "/g", 2, 0, err, sizeof err));
    /* bounded, not timed: three calls of at most TIMEOUT_MS each, with a
     * generous margin for a loaded machine */
    cr_assert_lt(tu_now_ns() - t0, (uint64_t)(3 * TIMEOUT_MS + 10000) * 1000000u, "a call hung");
    etcd_close(c);
}
