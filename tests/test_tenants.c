/*
 * test_tenants.c — the tenant registry (core/tenants.c) through the public
 * API: name rules, create / list / get / drop, isolation of two tenants
 * with the same ids, drops with live holds and with references held,
 * persistence across close and reopen (dropped ones stay gone, a leftover
 * renamed-aside directory is removed, an old single-engine data dir opens
 * as the default tenant), lookups racing creates and drops, hold expiry by
 * the set's shared background thread, and a thousand tenants.
 */
#include "test_util.h"

#include "invcore.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

enum {
    LOC = 10,
    ITEM = 1,
    SWEEP_MS = 10,
    LONG_TTL_MS = 600000, /* never expires during a test */
    EXPIRY_WAIT_MS = 10000, /* bound on waiting for a hold to expire */
    MANY_TENANTS = 1000,
    RACE_THREADS = 4,
    RACE_NAMES = 8,
};

#define NAME(s) (s), strlen(s)

static inv_tenants *open_set(const char *dir)
{
    inv_tenants *ts = NULL;
    inv_config cfg = {.data_dir = dir, .sweep_interval_ms = SWEEP_MS};
    int rc = inv_tenants_open(&ts, &cfg, NULL);
    cr_assert_eq(rc, INV_OK, "inv_tenants_open: %s", inv_strerror(rc));
    cr_assert_not_null(ts);
    return ts;
}

/* A fresh scratch directory /tmp/invcore-TAG-* (in dir) and a set on it. */
static inv_tenants *open_tmp_set(char *dir, size_t cap, const char *tag)
{
    tu_tmpdir(dir, cap, tag);
    return open_set(dir);
}

/* Closes ts and removes its scratch directory. */
static void close_and_remove(inv_tenants *ts, const char *dir)
{
    inv_tenants_close(ts);
    cr_assert_eq(tu_remove_tree(dir), 0, "remove %s", dir);
}

static inv_tenant *get_ok(inv_tenants *ts, const char *name)
{
    inv_tenant *t = NULL;
    int rc = inv_tenant_get(ts, NAME(name), &t);
    cr_assert_eq(rc, INV_OK, "get %s: %s", name, inv_strerror(rc));
    return t;
}

/* ITEM at LOC with qty available, in t's engine. */
static void stock_engine(inv_engine *e, int64_t qty)
{
    cr_assert_eq(inv_location_put(e, LOC, NULL), INV_OK);
    tu_put_item(e, ITEM, true);
    tu_set_level(e, ITEM, LOC, qty);
}

static void stock(inv_tenant *t, int64_t qty)
{
    stock_engine(inv_tenant_engine(t), qty);
}

static void hold(inv_tenant *t, const char *id, int64_t qty, uint64_t ttl_ms, int want)
{
    inv_hold_line line = {ITEM, LOC, qty};
    int rc = inv_hold_create(inv_tenant_engine(t), NAME(id), ttl_ms, &line, 1, NULL);
    cr_assert_eq(rc, want, "hold %s: %s", id, inv_strerror(rc));
}

/* ---- names ---------------------------------------------------------------- */

Test(tenants, names_are_checked)
{
    char n64[65], n65[66];
    memset(n64, 'a', 64);
    n64[64] = 0;
    memset(n65, 'b', 65);
    n65[65] = 0;
    const char *good[] = {"a", "0", "shop-1", "my_shop.eu", "a..b", "x-", n64};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        cr_expect_eq(inv_tenant_name_check(NAME(good[i])), INV_OK, "%s", good[i]);
    const char *bad[] = {"", ".", "..", ".hidden", "A", "shop 1", "shop/1", "é", "a*", n65};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_expect_eq(inv_tenant_name_check(NAME(bad[i])), INV_EINVALID, "%s", bad[i]);
    cr_expect_eq(inv_tenant_name_check("ab\0c", 4), INV_EINVALID);
    cr_expect_eq(inv_tenant_name_check(NULL, 1), INV_EINVALID);
}

/* ---- create, list, get, drop ------------------------------------------------ */

static int collect(void *arg, inv_tenant *t)
{
    char *buf = arg;
    size_t len;
    const char *name = inv_tenant_name(t, &len);
    cr_assert_eq(strlen(name), len);
    strcat(buf, name);
    strcat(buf, ",");
    return 0;
}

static int stop_at_second(void *arg, inv_tenant *t)
{
    (void)t;
    return ++*(int *)arg == 2 ? 7 : 0;
}

Test(tenants, create_list_get_drop)
{
    inv_tenants *ts = open_set(NULL);
    cr_assert_eq(inv_tenants_count(ts), 1);
    cr_assert_eq(inv_tenant_create(ts, NAME("zeta")), INV_OK);
    cr_assert_eq(inv_tenant_create(ts, NAME("alpha")), INV_OK);
    cr_assert_eq(inv_tenant_create(ts, NAME("alpha")), INV_EEXISTS);
    cr_assert_eq(inv_tenant_create(ts, NAME(INV_TENANT_DEFAULT)), INV_EEXISTS);
    cr_assert_eq(inv_tenant_create(ts, NAME("Bad")), INV_EINVALID);
    cr_assert_eq(inv_tenants_count(ts), 3);

    char list[256] = "";
    cr_assert_eq(inv_tenants_each(ts, collect, list), 0);
    cr_assert_str_eq(list, "alpha,default,zeta,");
    int calls = 0;
    cr_assert_eq(inv_tenants_each(ts, stop_at_second, &calls), 7);
    cr_assert_eq(calls, 2);

    inv_tenant *a = get_ok(ts, "alpha");
    cr_assert_not_null(inv_tenant_engine(a));
    cr_assert_not(inv_tenant_dropped(a));
    inv_tenant *d = inv_tenant_default(ts);
    inv_tenant *d2 = get_ok(ts, INV_TENANT_DEFAULT);
    cr_assert_eq(d, d2);
    cr_assert_neq(inv_tenant_engine(a), inv_tenant_engine(d));
    inv_tenant_put(d2);
    inv_tenant_put(d);
    inv_tenant_put(a);
    inv_tenant_put(NULL);

    inv_tenant *none = NULL;
    cr_assert_eq(inv_tenant_get(ts, NAME("nope"), &none), INV_ENOTFOUND);
    cr_assert_null(none);
    cr_assert_eq(inv_tenant_drop(ts, NAME("nope"), false), INV_ENOTFOUND);
    cr_assert_eq(inv_tenant_drop(ts, NAME(INV_TENANT_DEFAULT), true), INV_EINVALID);
    cr_assert_eq(inv_tenant_drop(ts, NAME("alpha"), false), INV_OK);
    cr_assert_eq(inv_tenant_get(ts, NAME("alpha"), &none), INV_ENOTFOUND);
    cr_assert_eq(inv_tenants_count(ts), 2);
    list[0] = 0;
    inv_tenants_each(ts, collect, list);
    cr_assert_str_eq(list, "default,zeta,");
    inv_tenants_close(ts);
}

/* ---- isolation ------------------------------------------------------------- */

Test(tenants, same_ids_in_two_tenants_are_independent)
{
    inv_tenants *ts = open_set(NULL);
    cr_assert_eq(inv_tenant_create(ts, NAME("a")), INV_OK);
    cr_assert_eq(inv_tenant_create(ts, NAME("b")), INV_OK);
    inv_tenant *a = get_ok(ts, "a"), *b = get_ok(ts, "b");
    inv_engine *ea = inv_tenant_engine(a), *eb = inv_tenant_engine(b);
    stock(a, 10);
    inv_level lv;
    cr_assert_eq(inv_level_get(eb, ITEM, LOC, &lv), INV_ENOTFOUND, "b sees a's level");
    stock(b, 3);
    cr_assert_eq(inv_level_adjust(ea, ITEM, LOC, -4, 0, &lv), INV_OK);
    cr_assert_eq(tu_level_of(ea, ITEM, LOC).available, 6);
    cr_assert_eq(tu_level_of(eb, ITEM, LOC).available, 3);

    hold(a, "h1", 2, LONG_TTL_MS, INV_OK);
    inv_hold_info info;
    cr_assert_eq(inv_hold_get(eb, NAME("h1"), &info), INV_ENOTFOUND, "b sees a's hold");
    hold(b, "h1", 3, LONG_TTL_MS, INV_OK); /* the same id, other lines: no CONFLICT */
    cr_assert_eq(tu_level_of(ea, ITEM, LOC).reserved, 2);
    cr_assert_eq(tu_level_of(eb, ITEM, LOC).reserved, 3);

    /* The same request id with other lines in each tenant: no CONFLICT. */
    inv_batch_line la = {.op = INV_BATCH_LEVEL_ADJUST,
                         .item = ITEM,
                         .location = LOC,
                         .qty = 1,
                         .floor = INV_NO_FLOOR};
    inv_batch_line lb = la;
    lb.qty = 5;
    inv_batch_opts opts = {NAME("req-1")};
    cr_assert_eq(inv_batch_ex(ea, &la, 1, &opts, NULL, NULL), INV_OK);
    cr_assert_eq(inv_batch_ex(eb, &lb, 1, &opts, NULL, NULL), INV_OK);
    cr_assert_eq(tu_level_of(ea, ITEM, LOC).available, 5); /* 6 - 2 held + 1 */
    cr_assert_eq(tu_level_of(eb, ITEM, LOC).available, 5); /* 3 - 3 held + 5 */
    inv_stats sa, sb;
    inv_stats_get(ea, &sa);
    inv_stats_get(eb, &sb);
    cr_assert_eq(sa.request_ids, 1);
    cr_assert_eq(sb.request_ids, 1);
    cr_assert_eq(sa.request_id_conflicts + sb.request_id_conflicts, 0);
    inv_tenant_put(a);
    inv_tenant_put(b);
    inv_tenants_close(ts);
}

/* ---- drops ------------------------------------------------------------------ */

Test(tenants, drop_with_live_holds_is_busy_unless_forced)
{
    inv_tenants *ts = open_set(NULL);
    cr_assert_eq(inv_tenant_create(ts, NAME("shop")), INV_OK);
    inv_tenant *t = get_ok(ts, "shop");
    stock(t, 5);
    hold(t, "h", 2, LONG_TTL_MS, INV_OK);
    inv_tenant_put(t);
    cr_assert_eq(inv_tenant_drop(ts, NAME("shop"), false), INV_EBUSY);
    t = get_ok(ts, "shop"); /* nothing changed */
    cr_assert_not(inv_tenant_dropped(t));
    cr_assert_eq(tu_level_of(inv_tenant_engine(t), ITEM, LOC).reserved, 2);
    inv_tenant_put(t);
    cr_assert_eq(inv_tenant_drop(ts, NAME("shop"), true), INV_OK);
    inv_tenant *none;
    cr_assert_eq(inv_tenant_get(ts, NAME("shop"), &none), INV_ENOTFOUND);
    cr_assert_eq(inv_tenant_create(ts, NAME("shop")), INV_OK);
    t = get_ok(ts, "shop");
    inv_hold_info info;
    cr_assert_eq(inv_hold_get(inv_tenant_engine(t), NAME("h"), &info), INV_ENOTFOUND);
    inv_level lv;
    cr_assert_eq(inv_level_get(inv_tenant_engine(t), ITEM, LOC, &lv), INV_ENOTFOUND);
    inv_tenant_put(t);
    inv_tenants_close(ts);
}

Test(tenants, drop_while_referenced_keeps_the_engine_for_the_holder)
{
    char dir[128];
    inv_tenants *ts = open_tmp_set(dir, sizeof dir, "tenants-ref");
    cr_assert_eq(inv_tenant_create(ts, NAME("shop")), INV_OK);
    inv_tenant *t = get_ok(ts, "shop");
    stock(t, 5);
    cr_assert_eq(inv_tenant_drop(ts, NAME("shop"), false), INV_OK);
    cr_assert(inv_tenant_dropped(t));
    inv_tenant *none;
    cr_assert_eq(inv_tenant_get(ts, NAME("shop"), &none), INV_ENOTFOUND);
    /* The holder still reads and writes its engine. */
    inv_level lv;
    cr_assert_eq(inv_level_adjust(inv_tenant_engine(t), ITEM, LOC, -1, 0, &lv), INV_OK);
    cr_assert_eq(lv.available, 4);
    /* Re-created while the old one is still held: a new, empty tenant. */
    cr_assert_eq(inv_tenant_create(ts, NAME("shop")), INV_OK);
    inv_tenant *t2 = get_ok(ts, "shop");
    cr_assert_neq(t2, t);
    cr_assert_eq(inv_level_get(inv_tenant_engine(t2), ITEM, LOC, &lv), INV_ENOTFOUND);
    /* The holder's path-based files (a snapshot) stay in its own, renamed
     * directory, never in the re-created tenant's. */
    cr_assert_eq(inv_snapshot(inv_tenant_engine(t)), INV_OK);
    stock(t2, 9);
    inv_tenant_put(t); /* closes the dropped engine, removes its files */
    inv_tenant_put(t2);
    inv_tenants_close(ts);

    ts = open_set(dir);
    t = get_ok(ts, "shop");
    cr_assert_eq(tu_level_of(inv_tenant_engine(t), ITEM, LOC).available, 9, "the new one's data");
    inv_tenant_put(t);
    close_and_remove(ts, dir);
}

/* ---- persistence -------------------------------------------------------------- */

Test(tenants, an_old_data_dir_opens_as_the_default_tenant)
{
    char dir[128];
    tu_tmpdir(dir, sizeof dir, "tenants-old");
    inv_engine *e = tu_open_dir(dir, INV_FSYNC_ALWAYS);
    stock_engine(e, 42);
    inv_close(e);

    inv_tenants *ts = open_set(dir);
    cr_assert_eq(inv_tenants_count(ts), 1);
    inv_tenant *d = inv_tenant_default(ts);
    cr_assert_eq(tu_level_of(inv_tenant_engine(d), ITEM, LOC).available, 42);
    inv_tenant_put(d);
    cr_assert_eq(inv_tenant_create(ts, NAME("new")), INV_OK);
    inv_tenants_close(ts);

    /* The default tenant's recovery ignores tenants/: inv_open still works. */
    e = tu_open_dir(dir, INV_FSYNC_ALWAYS);
    cr_assert_eq(tu_level_of(e, ITEM, LOC).available, 42);
    inv_close(e);
    cr_assert_eq(tu_remove_tree(dir), 0);
}

static size_t count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "opendir %s", dir);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += de->d_name[0] != '.' || strncmp(de->d_name, ".dropped.", 9) == 0;
    closedir(d);
    return n;
}

Test(tenants, tenants_and_their_data_survive_reopen)
{
    char dir[128], path[256];
    inv_tenants *ts = open_tmp_set(dir, sizeof dir, "tenants-persist");
    const char *names[] = {"one", "two", "gone"};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(inv_tenant_create(ts, NAME(names[i])), INV_OK);
        inv_tenant *t = get_ok(ts, names[i]);
        stock(t, 100 + i);
        inv_tenant_put(t);
    }
    inv_tenant *d = inv_tenant_default(ts);
    stock(d, 7);
    inv_tenant_put(d);
    cr_assert_eq(inv_tenant_drop(ts, NAME("gone"), true), INV_OK);
    inv_tenants_close(ts);

    snprintf(path, sizeof path, "%s/tenants", dir);
    cr_assert_eq(count_entries(path), 2, "only one/ and two/ are left");
    snprintf(path, sizeof path, "%s/tenants/.dropped.x", dir);
    cr_assert_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/tenants/.dropped.x/f", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fclose(f);

    ts = open_set(dir);
    cr_assert_eq(inv_tenants_count(ts), 3);
    for (int i = 0; i < 2; i++) {
        inv_tenant *t = get_ok(ts, names[i]);
        cr_assert_eq(tu_level_of(inv_tenant_engine(t), ITEM, LOC).available, 100 + i);
        inv_tenant_put(t);
    }
    inv_tenant *none;
    cr_assert_eq(inv_tenant_get(ts, NAME("gone"), &none), INV_ENOTFOUND);
    d = inv_tenant_default(ts);
    cr_assert_eq(tu_level_of(inv_tenant_engine(d), ITEM, LOC).available, 7);
    inv_tenant_put(d);
    snprintf(path, sizeof path, "%s/tenants/.dropped.x", dir);
    struct stat st;
    cr_assert_neq(stat(path, &st), 0, "the leftover was removed");
    close_and_remove(ts, dir);
}

/* ---- the shared background thread ------------------------------------------- */

Test(tenants, holds_expire_in_a_non_default_tenant)
{
    inv_tenants *ts = open_set(NULL);
    cr_assert_eq(inv_tenant_create(ts, NAME("shop")), INV_OK);
    inv_tenant *t = get_ok(ts, "shop");
    stock(t, 5);
    hold(t, "short", 2, 1, INV_OK);
    inv_engine *e = inv_tenant_engine(t);
    uint64_t deadline = tu_deadline_ms(EXPIRY_WAIT_MS);
    inv_stats st;
    do {
        tu_sleep_ms(SWEEP_MS);
        cr_assert_eq(inv_stats_get(e, &st), INV_OK);
    } while (st.holds_expired == 0 && !tu_past(deadline));
    cr_assert_eq(st.holds_expired, 1, "the shared thread expired the hold");
    cr_assert_eq(tu_level_of(e, ITEM, LOC).available, 5);
    inv_tenant_put(t);
    inv_tenants_close(ts);
}

/* ---- many tenants ----------------------------------------------------------- */

Test(tenants, a_thousand_tenants)
{
    inv_tenants *ts = open_set(NULL);
    char name[32];
    for (int i = 0; i < MANY_TENANTS; i++) {
        snprintf(name, sizeof name, "t%04d", i);
        cr_assert_eq(inv_tenant_create(ts, NAME(name)), INV_OK, "%s", name);
    }
    cr_assert_eq(inv_tenants_count(ts), MANY_TENANTS + 1);
    for (int i = 0; i < MANY_TENANTS; i += 97) {
        snprintf(name, sizeof name, "t%04d", i);
        inv_tenant *t = get_ok(ts, name);
        size_t len;
        cr_assert_str_eq(inv_tenant_name(t, &len), name);
        inv_tenant_put(t);
    }
    inv_tenants_close(ts);
}

/* ---- hooks ---------------------------------------------------------------- */

typedef struct {
    int opened, closed;
    char last_closed[INV_TENANT_NAME_MAX + 1];
} hook_log;

static void on_open(void *arg, inv_tenant *t)
{
    hook_log *h = arg;
    cr_assert_not_null(inv_tenant_engine(t), "on_open sees the engine open");
    h->opened++;
}

static void on_close(void *arg, inv_tenant *t)
{
    hook_log *h = arg;
    snprintf(h->last_closed, sizeof h->last_closed, "%s", inv_tenant_name(t, NULL));
    h->closed++;
}

Test(tenants, hooks_run_once_per_engine_open_and_close)
{
    hook_log h = {0};
    inv_tenant_hooks hooks = {on_open, on_close, &h};
    inv_tenants *ts = NULL;
    cr_assert_eq(inv_tenants_open(&ts, &(inv_config){0}, &hooks), INV_OK);
    cr_assert_eq(h.opened, 1, "the default tenant's, inside inv_tenants_open");
    cr_assert_eq(inv_tenant_create(ts, NAME("a")), INV_OK);
    cr_assert_eq(h.opened, 2);
    inv_tenant *a = get_ok(ts, "a");
    cr_assert_eq(inv_tenant_drop(ts, NAME("a"), false), INV_OK);
    cr_assert_eq(h.closed, 0, "a reference is still held");
    inv_tenant_put(a);
    cr_assert_eq(h.closed, 1);
    cr_assert_str_eq(h.last_closed, "a");
    inv_tenants_close(ts);
    cr_assert_eq(h.closed, 2);
    cr_assert_str_eq(h.last_closed, INV_TENANT_DEFAULT);
}

/* ---- concurrency -------------------------------------------------------------- */

typedef struct {
    inv_tenants *ts;
    _Atomic int stop;
    _Atomic uint64_t adjusts;
} race_ctx;

static const char *const race_stable[] = {"s0", "s1"};

static void race_worker(void *arg, size_t index)
{
    race_ctx *c = arg;
    char name[16];
    uint64_t i = 0;
    /* relaxed: a stop flag, polled. */
    while (!atomic_load_explicit(&c->stop, memory_order_relaxed)) {
        inv_tenant *t = NULL;
        if (i % 2 == 0) {
            const char *s = race_stable[(index + i / 2) % 2];
            int rc = inv_tenant_get(c->ts, NAME(s), &t);
            TU_CHECK(rc == INV_OK, "get %s: %d", s, rc);
            if (rc != INV_OK)
                break;
            inv_level lv;
            rc = inv_level_adjust(inv_tenant_engine(t), ITEM, LOC, 1, INV_NO_FLOOR, &lv);
            TU_CHECK(rc == INV_OK, "adjust: %d", rc);
            /* relaxed: a counter. */
            atomic_fetch_add_explicit(&c->adjusts, 1, memory_order_relaxed);
        } else {
            snprintf(name, sizeof name, "r%u", (unsigned)(i % RACE_NAMES));
            if (inv_tenant_get(c->ts, NAME(name), &t) == INV_OK) {
                size_t len;
                TU_CHECK(strcmp(inv_tenant_name(t, &len), name) == 0, "got another tenant");
                inv_level lv;
                (void)inv_level_get(inv_tenant_engine(t), ITEM, LOC, &lv);
            }
        }
        inv_tenant_put(t);
        i++;
    }
}

static void *race_admin(void *arg)
{
    race_ctx *c = arg;
    char name[16];
    for (unsigned i = 0; i < (unsigned)tu_iters_min(400, 40); i++) {
        snprintf(name, sizeof name, "r%u", i % RACE_NAMES);
        int rc = inv_tenant_create(c->ts, NAME(name));
        TU_CHECK(rc == INV_OK || rc == INV_EEXISTS, "create: %d", rc);
        snprintf(name, sizeof name, "r%u", (i + 3) % RACE_NAMES);
        rc = inv_tenant_drop(c->ts, NAME(name), true);
        TU_CHECK(rc == INV_OK || rc == INV_ENOTFOUND, "drop: %d", rc);
    }
    /* relaxed: the workers only poll it. */
    atomic_store_explicit(&c->stop, 1, memory_order_relaxed);
    return NULL;
}

static void race_run(void *arg, size_t index)
{
    if (index == RACE_THREADS)
        race_admin(arg);
    else
        race_worker(arg, index);
}

Test(tenants, lookups_race_creates_and_drops)
{
    race_ctx c = {.ts = open_set(NULL)};
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(inv_tenant_create(c.ts, NAME(race_stable[i])), INV_OK);
        inv_tenant *t = get_ok(c.ts, race_stable[i]);
        stock(t, 0);
        inv_tenant_put(t);
    }
    tu_run_threads(RACE_THREADS + 1, race_run, &c);
    tu_assert_no_failures();
    int64_t total = 0;
    for (int i = 0; i < 2; i++) {
        inv_tenant *t = get_ok(c.ts, race_stable[i]);
        total += tu_level_of(inv_tenant_engine(t), ITEM, LOC).available;
        inv_tenant_put(t);
    }
    /* relaxed: the workers were joined (tu_run_threads), which orders. */
    uint64_t adjusts = atomic_load_explicit(&c.adjusts, memory_order_relaxed);
    cr_assert_eq((uint64_t)total, adjusts, "every adjust landed once");
    inv_tenants_close(c.ts);
}

/* ---- durable subscriptions with the caller's fd ------------------------------ */

Test(tenants, one_eventfd_subscribes_to_many_engines)
{
    char dir[128];
    inv_tenants *ts = open_tmp_set(dir, sizeof dir, "tenants-fd");
    cr_assert_eq(inv_tenant_create(ts, NAME("a")), INV_OK);
    inv_tenant *a = get_ok(ts, "a");
    inv_tenant *d = inv_tenant_default(ts);
    int fd = eventfd(0, EFD_NONBLOCK);
    cr_assert_geq(fd, 0);
    cr_assert_eq(inv_durable_subscribe_fd(inv_tenant_engine(a), fd), INV_OK);
    cr_assert_eq(inv_durable_subscribe_fd(inv_tenant_engine(d), fd), INV_OK);
    cr_assert_eq(inv_durable_subscribe_fd(inv_tenant_engine(a), -1), INV_EINVALID);
    stock(a, 1);
    struct pollfd p = {fd, POLLIN, 0};
    cr_assert_eq(poll(&p, 1, EXPIRY_WAIT_MS), 1, "signalled within the bound");
    uint64_t v = 0;
    cr_assert_eq(read(fd, &v, sizeof v), (ssize_t)sizeof v, "signalled");
    cr_assert_gt(v, 0);
    inv_durable_unsubscribe_fd(inv_tenant_engine(a), fd);
    inv_durable_unsubscribe_fd(inv_tenant_engine(d), fd);
    cr_assert_eq(fcntl(fd, F_GETFD), 0, "the fd is still open");
    close(fd);
    inv_tenant_put(a);
    inv_tenant_put(d);
    inv_tenants_close(ts);

    inv_tenants *mem = open_set(NULL);
    d = inv_tenant_default(mem);
    fd = eventfd(0, EFD_NONBLOCK);
    cr_assert_eq(inv_durable_subscribe_fd(inv_tenant_engine(d), fd), INV_EINVALID);
    close(fd);
    inv_tenant_put(d);
    inv_tenants_close(mem);
    cr_assert_eq(tu_remove_tree(dir), 0);
}
