/*
 * test_server_feed.c — integration: the change feed of PROTOCOL.md
 * ("Change feed") against a real build/invcored (test_server_harness.h):
 * FEED.READ's pages and every refusal, FROM $ then BLOCK woken by another
 * client's write, BLOCK's timeout (nil), a blocked client that disconnects
 * (freed: INFO blocked_clients), the ITEM / LOC filters, LEVEL.HISTORY's
 * paging, the actor (CLIENT SETNAME) on journaled changes, INFO
 * persistence's history fields, the in-memory refusal, a read from
 * before retention (-LIMIT history starts at <pos>), and the acceptance
 * tests: a reader following a 64-client flash sale rebuilds every level
 * from the records alone; and after kill -9 mid-sale (--fsync always) and
 * a restart the feed continues with no gap and no duplicate.
 *
 * Waits are bounded loops on events (INFO fields, replies); nothing here
 * asserts on timing.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>

#include "test_server_harness.h"

#define FEED_WAIT_MS 10000 /* bound of every wait for an event */
#define SALE_CLIENTS 64 /* the acceptance test's writers */
#define SALE_ITEMS 4 /* levels (item, location 1) they fight over */
#define SALE_ITEM_BASE 101
#define SALE_STOCK 400 /* units per level at the start */
#define SALE_OPS 30 /* operations per writer (times INVCORE_STRESS_SCALE) */
#define SALE_HOLD_TTL_MS 600000 /* no hold expires during a test */
#define MARK_ITEM 999 /* the level whose change tells the reader to stop */
#define KNOWN_LEVELS 16 /* levels a reconstruction tracks */
#define SEEN_MAX 400000 /* positions a reader keeps */
#define BLOCKED_PER_LOOP 1024 /* LOOP_BLOCKED_MAX in core/server/server.c */
#define RETENTION_REF_BYTES 256 /* REF's limit: the biggest change records */
#define RETENTION_TX_LINES 256 /* lines of one of its transactions (the limit) */
#define RETENTION_TX_BATCH 8 /* transactions pipelined at once */
#define RETENTION_TX_MAX 4000 /* about 400 MiB: a bound, never reached */

/* A test's second server (other flags than S's); teardown stops it even
 * when an assertion ended the test early. */
static srv_t T;

static void setup(void)
{
    srv_suite_start(NULL);
}
static void teardown(void)
{
    srv_suite_stop();
    if (T.dir[0] != '\0' && access(T.dir, F_OK) == 0)
        srv_cleanup(&T); /* a test ended before it stopped T */
    memset(&T, 0, sizeof T);
}

TestSuite(server_feed, .init = setup, .fini = teardown, .timeout = 180);

/* ---- reading replies -------------------------------------------------------- */

/* A field of a record or change map (RESP2: a flat array of pairs). */
static const redisReply *fget(const redisReply *m, const char *name)
{
    if (m == NULL || m->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < m->elements; i += 2)
        if (m->element[i]->type == REDIS_REPLY_STRING && strcmp(m->element[i]->str, name) == 0)
            return m->element[i + 1];
    return NULL;
}

static long long fint(const redisReply *m, const char *name)
{
    const redisReply *v = fget(m, name);
    if (v == NULL)
        return -1;
    if (v->type == REDIS_REPLY_INTEGER)
        return v->integer;
    return v->type == REDIS_REPLY_STRING ? atoll(v->str) : -1;
}

static const char *fstr(const redisReply *m, const char *name)
{
    const redisReply *v = fget(m, name);
    return v != NULL && v->type == REDIS_REPLY_STRING ? v->str : "";
}

/* A quantity in a delta / after map; 0 when absent. */
static long long fqty(const redisReply *change, const char *map, const char *q)
{
    const redisReply *m = fget(change, map);
    return fget(m, q) ? fint(m, q) : 0;
}

/* A page's shape: [next_position, [record ...]]; false if it is not one. */
static bool is_page(const redisReply *r)
{
    return r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
           r->element[0]->type == REDIS_REPLY_INTEGER && r->element[1]->type == REDIS_REPLY_ARRAY;
}

static redisReply *page_cmd(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    cr_assert(is_page(r), "'%s': not a page (type %d '%s')", fmt, r ? r->type : -1,
              r && r->str ? r->str : "");
    return r;
}

/* An INFO field as a number (-1: absent). */
static long long info_field(redisContext *c, const char *section, const char *name)
{
    redisReply *r = cmd(c, "INFO %s", section);
    char key[96];
    snprintf(key, sizeof key, "\n%s:", name);
    const char *p = r->str ? strstr(r->str, key) : NULL;
    long long v = p ? atoll(p + strlen(key)) : -1;
    freeReplyObject(r);
    return v;
}

/* Waits until INFO's field equals want; false after FEED_WAIT_MS. */
static bool info_wait(redisContext *c, const char *section, const char *name, long long want)
{
    long long deadline = srv_now_ms() + FEED_WAIT_MS;
    while (srv_now_ms() < deadline) {
        if (info_field(c, section, name) == want)
            return true;
        srv_sleep_ms(5);
    }
    return false;
}

static void seed(redisContext *c)
{
    expect_status(c, "OK", "LOC.SET 1 name Main");
    expect_status(c, "OK", "LOC.SET 2 name Second");
    expect_status(c, "OK", "ITEM.SET 10 sku A");
    expect_status(c, "OK", "ITEM.SET 11 sku B");
}

/* FEED.READ FROM $'s next position: where new records will follow. */
static long long feed_end(redisContext *c)
{
    redisReply *r = page_cmd(c, "FEED.READ FROM $");
    cr_assert_eq(r->element[1]->elements, 0);
    long long end = r->element[0]->integer;
    freeReplyObject(r);
    return end;
}

/* ---- the basics ---------------------------------------------------------------- */

Test(server_feed, bad_input_gets_typed_errors)
{
    seed(C);
    expect_error(C, "INVALID COUNT must be 1..10000", "FEED.READ COUNT 0");
    expect_error(C, "LIMIT COUNT must be 1..10000", "FEED.READ COUNT 10001");
    expect_error(C, "INVALID COUNT must be a decimal", "FEED.READ COUNT -1");
    expect_error(C, "INVALID unknown option 'FILTER'", "FEED.READ FILTER x");
    expect_error(C, "INVALID unknown option 'LOCATION'", "FEED.READ LOCATION 1");
    expect_error(C, "INVALID option COUNT given twice", "FEED.READ COUNT 1 COUNT 2");
    expect_error(C, "INVALID FROM must be a decimal", "FEED.READ FROM abc");
    expect_error(C, "INVALID BLOCK must be a decimal", "FEED.READ BLOCK -5");
    expect_error(C, "LIMIT BLOCK must be", "FEED.READ BLOCK 99999999999999");
    expect_error(C, "INVALID ITEM must be a decimal", "FEED.READ ITEM x");
    expect_error(C, "ERR wrong number of arguments", "FEED.READ FROM");
    long long end = feed_end(C);
    expect_error(C, "INVALID FROM", "FEED.READ FROM %lld", end + 1000000);
    expect_error(C, "INVALID FROM", "FEED.READ FROM 18446744073709551615");
    expect_error(C, "INVALID COUNT must be 1..10000", "LEVEL.HISTORY 10 1 COUNT 0");
    expect_error(C, "LIMIT COUNT must be 1..10000", "LEVEL.HISTORY 10 1 COUNT 20000");
    expect_error(C, "INVALID unknown option 'AFTER'", "LEVEL.HISTORY 10 1 AFTER 3");
    expect_error(C, "INVALID item must be a decimal", "LEVEL.HISTORY x 1");
    expect_error(C, "ERR wrong number of arguments", "LEVEL.HISTORY 10");
    /* refused inside MULTI: it may park the connection */
    expect_status(C, "OK", "MULTI");
    expect_error(C, "", "FEED.READ");
    expect_error(C, "EXECABORT", "EXEC");
}

Test(server_feed, records_come_in_order_with_their_changes_and_the_next_position)
{
    seed(C);
    long long start = feed_end(C);
    long long rev_set = expect_level(C, 10, 0, "LEVEL.SET 10 1 10");
    long long rev_adj = expect_level(C, 7, 0, "LEVEL.ADJUST 10 1 -3 REASON damaged REF po-9");
    redisReply *r = page_cmd(C, "FEED.READ FROM %lld", start);
    const redisReply *recs = r->element[1];
    cr_assert_eq(recs->elements, 2, "records %zu", recs->elements);
    cr_assert_eq(r->element[0]->integer, rev_adj, "next %lld", r->element[0]->integer);
    const redisReply *set = recs->element[0], *adj = recs->element[1];
    /* a level change's record position is its revision */
    cr_assert_eq(fint(set, "position"), rev_set);
    cr_assert_eq(fint(adj, "position"), rev_adj);
    cr_assert_gt(fint(adj, "time_ms"), 1500000000000LL);
    const redisReply *sc = fget(set, "changes"), *ac = fget(adj, "changes");
    cr_assert(sc && sc->elements == 1 && ac && ac->elements == 1);
    cr_assert_str_eq(fstr(sc->element[0], "kind"), "level.set");
    cr_assert_str_eq(fstr(sc->element[0], "item"), "10");
    cr_assert_str_eq(fstr(sc->element[0], "location"), "1");
    cr_assert_eq(fqty(sc->element[0], "delta", "available"), 10);
    cr_assert_eq(fqty(sc->element[0], "after", "available"), 10);
    const redisReply *c = ac->element[0];
    cr_assert_str_eq(fstr(c, "kind"), "level.adjust");
    cr_assert_eq(fqty(c, "delta", "available"), -3);
    cr_assert_eq(fqty(c, "after", "available"), 7);
    cr_assert_eq(fint(c, "revision"), rev_adj);
    cr_assert_str_eq(fstr(c, "reason"), "damaged");
    cr_assert_str_eq(fstr(c, "ref"), "po-9");
    /* only non-zero deltas are listed */
    cr_assert_null(fget(fget(c, "delta"), "reserved"));
    freeReplyObject(r);
    /* from the next position: nothing yet, and the same next position */
    r = page_cmd(C, "FEED.READ FROM %lld", rev_adj);
    cr_assert_eq(r->element[1]->elements, 0);
    cr_assert_eq(r->element[0]->integer, rev_adj);
    freeReplyObject(r);
    /* COUNT 1 pages through them one by one */
    r = page_cmd(C, "FEED.READ FROM %lld COUNT 1", start);
    cr_assert_eq(r->element[1]->elements, 1);
    cr_assert_eq(r->element[0]->integer, rev_set);
    freeReplyObject(r);
    /* FROM 0 starts at the oldest record: the locations and items first */
    r = page_cmd(C, "FEED.READ FROM 0 COUNT 10000");
    cr_assert_geq(r->element[1]->elements, 6);
    cr_assert_str_eq(fstr(r->element[1]->element[0], "kind"), "location");
    cr_assert_str_eq(fstr(r->element[1]->element[0], "location"), "1");
    cr_assert_eq(r->element[0]->integer, rev_adj);
    freeReplyObject(r);
}

/* RESP3: records and changes are maps (hiredis 0.14 speaks RESP2 only, so
 * the bytes are read raw). */
Test(server_feed, resp3_records_are_maps)
{
    seed(C);
    long long start = feed_end(C);
    expect_level(C, 4, 0, "LEVEL.SET 11 2 4");
    int fd = raw_connect(&S);
    char req[128], buf[4096];
    const char hello[] = "HELLO 3\r\n";
    raw_send(fd, hello, sizeof hello - 1);
    size_t n = raw_recv(fd, buf, sizeof buf - 1, 20, 2000);
    cr_assert_gt(n, 0);
    int len = snprintf(req, sizeof req, "FEED.READ FROM %lld\r\n", start);
    raw_send(fd, req, (size_t)len);
    n = raw_recv(fd, buf, sizeof buf - 1, 60, 2000);
    buf[n] = 0;
    cr_assert(strncmp(buf, "*2\r\n:", 5) == 0, "reply starts '%.20s'", buf);
    cr_assert_not_null(strstr(buf, "*1\r\n%"), "one record, a map: %s", buf);
    close(fd);
}

/* FROM $, then BLOCK 0 on C: another client's write wakes it (hiredis's
 * 5 s timeout bounds the wait: a reader never woken fails). */
static void block_wakes_on_a_write(redisContext *c, const srv_t *s)
{
    long long set = expect_level(c, 5, 0, "LEVEL.SET 10 1 5");
    /* under interval / none the set reaches readers after its reply */
    long long end = feed_end(c), deadline = srv_now_ms() + FEED_WAIT_MS;
    while (end < set && srv_now_ms() < deadline) {
        srv_sleep_ms(1);
        end = feed_end(c);
    }
    cr_assert_eq(end, set, "the set never reached the feed");
    redisContext *w = srv_connect(s);
    cr_assert_eq(redisAppendCommand(c, "FEED.READ FROM %lld BLOCK 0", end), REDIS_OK);
    cr_assert_eq(redisBufferWrite(c, &(int){0}), REDIS_OK);
    cr_assert(info_wait(w, "clients", "blocked_clients", 1), "the reader never blocked");
    long long rev = expect_level(w, 4, 0, "LEVEL.ADJUST 10 1 -1");
    redisReply *r = NULL;
    cr_assert_eq(redisGetReply(c, (void **)&r), REDIS_OK, "no reply: %s", c->errstr);
    cr_assert(is_page(r), "type %d", r->type);
    cr_assert_eq(r->element[1]->elements, 1);
    const redisReply *rec = r->element[1]->element[0];
    cr_assert_eq(fint(rec, "position"), rev);
    cr_assert_eq(fqty(fget(rec, "changes")->element[0], "delta", "available"), -1);
    cr_assert_eq(r->element[0]->integer, rev);
    freeReplyObject(r);
    cr_assert(info_wait(w, "clients", "blocked_clients", 0));
    /* the connection runs requests again */
    expect_status(c, "PONG", "PING");
    redisFree(w);
}

/* "$" means changes made after the read: under interval a write is
 * acknowledged before it is durable, and FROM $ must not hand out a
 * position before it (a follower would then read it as new). */
Test(server_feed, from_dollar_excludes_writes_acknowledged_before_it)
{
    const char *extra[] = {"--fsync", "interval", "--fsync-interval-ms", "400", NULL};
    srv_prepare(&T);
    cr_assert_eq(srv_spawn(&T, 1, extra), 0, "invcored did not start");
    redisContext *c = srv_connect(&T);
    seed(c);
    long long set = expect_level(c, 5, 0, "LEVEL.SET 10 1 5");
    /* at once: the set is most likely not fsynced yet (400 ms interval) */
    long long end = feed_end(c);
    cr_assert_eq(end, set, "FROM $ answered position %lld before the set at %lld", end, set);
    redisContext *w = srv_connect(&T);
    long long rev = expect_level(w, 4, 0, "LEVEL.ADJUST 10 1 -1");
    redisReply *r = page_cmd(c, "FEED.READ FROM %lld BLOCK 5000", end);
    cr_assert_eq(r->element[1]->elements, 1);
    cr_assert_eq(fint(r->element[1]->element[0], "position"), rev, "the first new record");
    freeReplyObject(r);
    redisFree(w);
    redisFree(c);
    srv_cleanup(&T);
}

Test(server_feed, from_dollar_then_block_wakes_when_another_client_writes)
{
    seed(C);
    block_wakes_on_a_write(C, &S);
}

/* interval and none acknowledge before the fdatasync: the wake-up still
 * comes from the durable position's advance, not from a reply */
Test(server_feed, block_wakes_under_fsync_interval_and_none)
{
    const char *policies[] = {"interval", "none"};
    for (size_t i = 0; i < 2; i++) {
        const char *extra[] = {"--fsync", policies[i], NULL};
        srv_prepare(&T);
        cr_assert_eq(srv_spawn(&T, 1, extra), 0, "invcored --fsync %s did not start", policies[i]);
        redisContext *c = srv_connect(&T);
        seed(c);
        block_wakes_on_a_write(c, &T);
        redisFree(c);
        srv_cleanup(&T);
    }
}

Test(server_feed, block_timeout_answers_nil_and_the_connection_goes_on)
{
    seed(C);
    redisReply *r = cmd(C, "FEED.READ FROM $ BLOCK 50");
    cr_assert_eq(r->type, REDIS_REPLY_NIL, "type %d", r->type);
    freeReplyObject(r);
    /* a filter that examined records meanwhile says where it got to */
    long long end = feed_end(C);
    redisContext *w = srv_connect(&S);
    cr_assert_eq(redisAppendCommand(C, "FEED.READ FROM %lld BLOCK 1500 ITEM 11", end), REDIS_OK);
    cr_assert_eq(redisBufferWrite(C, &(int){0}), REDIS_OK);
    cr_assert(info_wait(w, "clients", "blocked_clients", 1));
    long long rev = expect_level(w, 3, 0, "LEVEL.SET 10 1 3");
    cr_assert_eq(redisGetReply(C, (void **)&r), REDIS_OK);
    cr_assert(is_page(r), "type %d", r->type);
    cr_assert_eq(r->element[1]->elements, 0);
    cr_assert_eq(r->element[0]->integer, rev);
    freeReplyObject(r);
    expect_status(C, "PONG", "PING");
    redisFree(w);
}

Test(server_feed, a_blocked_client_that_disconnects_is_freed)
{
    seed(C);
    long long before = info_field(C, "clients", "connected_clients");
    int fd = raw_connect(&S);
    const char req[] = "FEED.READ FROM $ BLOCK 0\r\n";
    raw_send(fd, req, sizeof req - 1);
    cr_assert(info_wait(C, "clients", "blocked_clients", 1));
    cr_assert_eq(info_field(C, "clients", "connected_clients"), before + 1);
    redisReply *r = cmd(C, "CLIENT LIST");
    cr_assert_not_null(strstr(r->str, "flags=b"), "%s", r->str);
    freeReplyObject(r);
    close(fd);
    cr_assert(info_wait(C, "clients", "blocked_clients", 0), "still blocked after EOF");
    cr_assert(info_wait(C, "clients", "connected_clients", before));
    /* a write after it wakes nothing that is gone */
    expect_level(C, 1, 0, "LEVEL.SET 10 1 1");
    expect_status(C, "PONG", "PING");
}

/* Records with a change of the item (and location) only, and of those only
 * the changes that match. */
Test(server_feed, filters_keep_only_matching_changes)
{
    seed(C);
    long long start = feed_end(C);
    expect_status(C, "OK", "MULTI");
    expect_status(C, "QUEUED", "LEVEL.SET 10 1 5");
    expect_status(C, "QUEUED", "LEVEL.SET 11 1 6");
    expect_status(C, "QUEUED", "LEVEL.SET 10 2 7");
    redisReply *x = cmd(C, "EXEC");
    cr_assert_eq(x->type, REDIS_REPLY_ARRAY);
    freeReplyObject(x);
    expect_level(C, 8, 0, "LEVEL.SET 11 2 8");
    redisReply *r = page_cmd(C, "FEED.READ FROM %lld ITEM 10", start);
    cr_assert_eq(r->element[1]->elements, 1, "records %zu", r->element[1]->elements);
    /* the two sets (and the settle of the units the created level got) */
    const redisReply *ch = fget(r->element[1]->element[0], "changes");
    cr_assert_geq(ch->elements, 2);
    for (size_t i = 0; i < ch->elements; i++)
        cr_assert_str_eq(fstr(ch->element[i], "item"), "10");
    /* the next position is past the set of item 11 the filter dropped
     * after the batch: nothing is examined twice */
    long long next = r->element[0]->integer;
    cr_assert_gt(next, fint(r->element[1]->element[0], "position"));
    freeReplyObject(r);
    r = page_cmd(C, "FEED.READ FROM %lld ITEM 11 LOC 2", start);
    cr_assert_eq(r->element[1]->elements, 1);
    ch = fget(r->element[1]->element[0], "changes");
    cr_assert_eq(ch->elements, 1);
    cr_assert_eq(fqty(ch->element[0], "after", "available"), 8);
    freeReplyObject(r);
    r = page_cmd(C, "FEED.READ FROM %lld ITEM 10", next);
    cr_assert_eq(r->element[1]->elements, 0);
    cr_assert_eq(r->element[0]->integer, next);
    freeReplyObject(r);
    r = page_cmd(C, "FEED.READ FROM %lld ITEM 12345", start);
    cr_assert_eq(r->element[1]->elements, 0);
    cr_assert_gt(r->element[0]->integer, start);
    freeReplyObject(r);
}

Test(server_feed, level_history_pages_newest_first)
{
    seed(C);
    long long revs[8];
    revs[0] = expect_level(C, 10, 0, "LEVEL.SET 10 1 10");
    expect_level(C, 9, 0, "LEVEL.SET 11 1 9"); /* another level between */
    for (int i = 1; i < 8; i++)
        revs[i] = expect_level(C, 10 - i, 0, "LEVEL.ADJUST 10 1 -1");
    long long before = 0;
    int seen = 0, pages = 0;
    do {
        redisReply *r = page_cmd(C, "LEVEL.HISTORY 10 1 COUNT 3 BEFORE %lld", before);
        const redisReply *recs = r->element[1];
        cr_assert_leq(recs->elements, 3);
        for (size_t i = 0; i < recs->elements; i++, seen++) {
            cr_assert_lt(seen, 8, "more records than changes");
            cr_assert_eq(fint(recs->element[i], "position"), revs[7 - seen], "record %d", seen);
            const redisReply *ch = fget(recs->element[i], "changes");
            cr_assert_eq(ch->elements, 1);
            cr_assert_str_eq(fstr(ch->element[0], "item"), "10");
            cr_assert_eq(fqty(ch->element[0], "after", "available"), 10 - (7 - seen));
        }
        before = r->element[0]->integer;
        freeReplyObject(r);
        cr_assert_lt(++pages, 10);
    } while (before != 0);
    cr_assert_eq(seen, 8);
    /* a level without changes: an empty page */
    redisReply *r = page_cmd(C, "LEVEL.HISTORY 11 2");
    cr_assert_eq(r->element[1]->elements, 0);
    cr_assert_eq(r->element[0]->integer, 0);
    freeReplyObject(r);
}

Test(server_feed, journaled_changes_carry_the_client_name_as_actor)
{
    seed(C);
    expect_level(C, 10, 0, "LEVEL.SET 10 1 10");
    long long start = feed_end(C);
    expect_status(C, "OK", "CLIENT SETNAME checkout-7");
    expect_status(C, "OK", "HOLD.CREATE h1 600000 10 1 2");
    expect_status(C, "OK", "CLIENT SETNAME %s", "");
    expect_status(C, "OK", "HOLD.CREATE h2 600000 10 1 1");
    redisContext *other = srv_connect(&S);
    expect_status(other, "OK", "CLIENT SETNAME web-1");
    expect_level(other, 6, 3, "LEVEL.ADJUST 10 1 -1 REASON shrinkage");
    redisFree(other);
    redisReply *r = page_cmd(C, "FEED.READ FROM %lld", start);
    cr_assert_eq(r->element[1]->elements, 3);
    cr_assert_str_eq(fstr(r->element[1]->element[0], "actor"), "checkout-7");
    cr_assert_str_eq(fstr(r->element[1]->element[0], "hold"), "h1");
    cr_assert_null(fget(r->element[1]->element[1], "actor"));
    cr_assert_str_eq(fstr(r->element[1]->element[2], "actor"), "web-1");
    const redisReply *ch = fget(r->element[1]->element[0], "changes");
    cr_assert_eq(fqty(ch->element[0], "delta", "available"), -2);
    cr_assert_eq(fqty(ch->element[0], "delta", "reserved"), 2);
    freeReplyObject(r);
}

Test(server_feed, info_persistence_reports_the_history)
{
    seed(C);
    cr_assert_geq(info_field(C, "persistence", "history_oldest_position"), 0);
    cr_assert_gt(info_field(C, "persistence", "history_bytes"), 0);
}

Test(server_feed, in_memory_the_feed_is_refused_clearly)
{
    srv_prepare(&T);
    cr_assert_eq(srv_spawn(&T, 0, NULL), 0, "invcored --in-memory did not start");
    redisContext *c = srv_connect(&T);
    expect_error(c, "INVALID FEED.READ reads the journal; invcored runs --in-memory", "FEED.READ");
    expect_error(c, "INVALID LEVEL.HISTORY reads the journal", "LEVEL.HISTORY 1 1");
    redisFree(c);
    srv_cleanup(&T);
}

/* One loop holds at most LOOP_BLOCKED_MAX (server.c) blocked readers;
 * the next one is refused at once and its connection stays usable. */
Test(server_feed, blocked_readers_per_loop_are_bounded)
{
    struct rlimit rl;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < BLOCKED_PER_LOOP + 64 && rl.rlim_max >= BLOCKED_PER_LOOP + 64) {
        rl.rlim_cur = BLOCKED_PER_LOOP + 64;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < BLOCKED_PER_LOOP + 64)
        cr_skip_test("RLIMIT_NOFILE %llu: too few descriptors", (unsigned long long)rl.rlim_cur);
    const char *extra[] = {"--threads", "1", NULL};
    redisFree(C);
    srv_cleanup(&S);
    srv_start(&S, extra);
    C = srv_connect(&S);
    static int fds[BLOCKED_PER_LOOP];
    const char req[] = "FEED.READ FROM $ BLOCK 0\r\n";
    for (int i = 0; i < BLOCKED_PER_LOOP; i++) {
        fds[i] = raw_connect(&S);
        raw_send(fds[i], req, sizeof req - 1);
    }
    cr_assert(info_wait(C, "clients", "blocked_clients", BLOCKED_PER_LOOP));
    redisReply *r = cmd(C, "FEED.READ FROM $ BLOCK 0");
    cr_assert(r->type == REDIS_REPLY_ERROR &&
                  strncmp(r->str, "LIMIT too many clients wait in FEED.READ BLOCK", 46) == 0,
              "type %d '%s'", r->type, r->str ? r->str : "");
    freeReplyObject(r);
    expect_status(C, "PONG", "PING");
    for (int i = 0; i < BLOCKED_PER_LOOP; i++)
        close(fds[i]);
    cr_assert(info_wait(C, "clients", "blocked_clients", 0));
    r = cmd(C, "FEED.READ FROM $ BLOCK 10");
    cr_assert_eq(r->type, REDIS_REPLY_NIL, "room again: type %d", r->type);
    freeReplyObject(r);
}

/* Journal segment files (*.jnl) in a data dir. */
static int segments_in(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    cr_assert_not_null(d, "opendir %s", dir);
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        size_t len = strlen(e->d_name);
        n += len > 4 && strcmp(e->d_name + len - 4, ".jnl") == 0;
    }
    closedir(d);
    return n;
}

/* Retention drops whole segments (64 MiB): the journal is filled past one
 * with transactions of big records (256 adjusts, each with a 256-byte REF:
 * about 100 KiB a record), --fsync none for speed; --history-retention-bytes
 * 1 lets a snapshot drop every segment it covers. */
Test(server_feed, a_read_from_before_retention_says_where_history_starts)
{
    const char *extra[] = {"--fsync", "none", "--history-retention-bytes", "1", NULL};
    srv_prepare(&T);
    cr_assert_eq(srv_spawn(&T, 1, extra), 0, "invcored did not start (log %s)", T.log);
    redisContext *c = srv_connect(&T);
    seed(c);
    expect_level(c, 1000, 0, "LEVEL.SET 10 1 1000");
    /* under none the records reach readers once the flusher wrote them,
     * after the replies: wait for the first one */
    redisReply *r = page_cmd(c, "FEED.READ FROM 0 COUNT 1 BLOCK %d", FEED_WAIT_MS);
    cr_assert_eq(r->element[1]->elements, 1);
    long long first = fint(r->element[1]->element[0], "position");
    freeReplyObject(r);
    char ref[RETENTION_REF_BYTES + 1];
    memset(ref, 'r', RETENTION_REF_BYTES);
    ref[RETENTION_REF_BYTES] = 0;
    int sent = 0;
    while (segments_in(T.data) < 2 && sent < RETENTION_TX_MAX) {
        for (int k = 0; k < RETENTION_TX_BATCH; k++, sent++) {
            redisAppendCommand(c, "MULTI");
            for (int l = 0; l < RETENTION_TX_LINES; l++)
                redisAppendCommand(c, "LEVEL.ADJUST 10 1 %d REF %s", (l & 1) ? -1 : 1, ref);
            redisAppendCommand(c, "EXEC");
        }
        for (int k = 0; k < RETENTION_TX_BATCH * (RETENTION_TX_LINES + 2); k++) {
            cr_assert_eq(redisGetReply(c, (void **)&r), REDIS_OK, "%s", c->errstr);
            cr_assert_neq(r->type, REDIS_REPLY_ERROR, "%s", r->str);
            freeReplyObject(r);
        }
    }
    cr_assert_geq(segments_in(T.data), 2, "the journal never reached a second segment");
    expect_status(c, "OK", "SNAPSHOT");
    long long oldest = info_field(c, "persistence", "history_oldest_position");
    cr_assert_gt(oldest, first, "the snapshot dropped nothing (oldest %lld)", oldest);
    char want[96];
    snprintf(want, sizeof want, "LIMIT history starts at %lld", oldest);
    expect_error(c, want, "FEED.READ FROM %lld", first);
    expect_error(c, "LIMIT history starts at", "LEVEL.HISTORY 10 1 BEFORE %lld", first + 1);
    /* FROM 0 starts at the oldest record kept */
    r = page_cmd(c, "FEED.READ FROM 0 COUNT 1 BLOCK %d", FEED_WAIT_MS);
    cr_assert_eq(r->element[1]->elements, 1);
    cr_assert_geq(fint(r->element[1]->element[0], "position"), oldest);
    freeReplyObject(r);
    redisFree(c);
    srv_cleanup(&T);
}

/* ---- the acceptance tests: a flash sale ---------------------------------- */

typedef struct {
    int port;
    bool may_die; /* the kill test: a missing reply ends a writer quietly */
    _Atomic int stop; /* writers: stop now (the server is killed) */
    _Atomic long long ops_ok; /* successful writes, all writers */
} sale;

/* Counts a successful write (relaxed: read after the join, or polled as
 * progress). */
static void sale_ok(sale *s)
{
    atomic_fetch_add_explicit(&s->ops_ok, 1, memory_order_relaxed);
}

/* One writer: holds of 1..3 units on one or two levels, committed or
 * released, and adjusts (restocks, shrinkage with FLOOR 0). Tolerates a
 * dead server (the kill test): stops at the first missing reply. */
static void sale_writer(void *arg, size_t idx)
{
    sale *s = arg;
    int me = (int)idx; /* hiredis's format knows no %zu */
    redisContext *c = srv_connect_port(s->port);
    TU_CHECK(c != NULL || s->may_die, "writer %d could not connect", me);
    if (c == NULL)
        return;
    redisReply *r = redisCommand(c, "CLIENT SETNAME buyer-%d", me);
    TU_CHECK((r != NULL && r->type == REDIS_REPLY_STATUS) || (r == NULL && s->may_die),
             "writer %d: CLIENT SETNAME", me);
    if (r == NULL) {
        redisFree(c);
        return;
    }
    freeReplyObject(r);
    tu_rng rng = tu_rng_seed(idx * 7919 + 1);
    uint64_t ops = tu_iters(SALE_OPS);
    /* relaxed: a stop request; the next reply failing says as much */
    for (int i = 0; i < (int)ops && !atomic_load_explicit(&s->stop, memory_order_relaxed); i++) {
        int item = SALE_ITEM_BASE + (int)tu_rng_below(&rng, SALE_ITEMS);
        int other = SALE_ITEM_BASE + (item - SALE_ITEM_BASE + 1) % SALE_ITEMS;
        int qty = 1 + (int)tu_rng_below(&rng, 3);
        uint64_t pick = tu_rng_below(&rng, 10);
        if (pick < 6) {
            r = pick < 3 ? redisCommand(c, "HOLD.CREATE s%d-%d %d %d 1 %d", me, i, SALE_HOLD_TTL_MS,
                                        item, qty)
                         : redisCommand(c, "HOLD.CREATE s%d-%d %d %d 1 %d %d 1 1", me, i,
                                        SALE_HOLD_TTL_MS, item, qty, other);
            if (r == NULL) {
                TU_CHECK(s->may_die, "writer %d: no reply: %s", me, c->errstr);
                break;
            }
            bool held = r->type == REDIS_REPLY_STATUS;
            TU_CHECK(held ||
                         (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "INSUFFICIENT", 12) == 0),
                     "HOLD.CREATE: %s", r->str ? r->str : "?");
            freeReplyObject(r);
            if (!held)
                continue;
            sale_ok(s);
            r = redisCommand(c, "HOLD.%s s%d-%d", tu_rng_below(&rng, 3) ? "COMMIT" : "RELEASE", me,
                             i);
        } else if (pick < 8) {
            r = redisCommand(c, "LEVEL.ADJUST %d 1 -1 FLOOR 0", item);
        } else {
            r = redisCommand(c, "LEVEL.ADJUST %d 1 %d", item, qty);
        }
        if (r == NULL) {
            TU_CHECK(s->may_die, "writer %d: no reply: %s", me, c->errstr);
            break;
        }
        TU_CHECK(r->type != REDIS_REPLY_ERROR || strncmp(r->str, "INSUFFICIENT", 12) == 0,
                 "writer %d: %s", me, r->str ? r->str : "?");
        if (r->type != REDIS_REPLY_ERROR)
            sale_ok(s);
        freeReplyObject(r);
    }
    redisFree(c);
}

/* What the records say about the levels: each level's quantities rebuilt
 * from deltas alone, checked against every after image on the way; and
 * every position seen, in order. */
typedef struct {
    long long item, loc;
    long long qty[3]; /* available, reserved, committed */
    long long revision;
} level_state;

typedef struct {
    int port;
    long long from; /* read after this */
    long long stop_at; /* stop once a record at or past this was seen (0: never) */
    _Atomic long long stop_at_live; /* set later by the test thread */
    level_state lv[KNOWN_LEVELS];
    size_t nlv;
    long long *seen; /* positions, in order */
    size_t nseen;
    bool failed_read; /* a read failed (the server died) */
    char err[256];
} follower;

static const char *const g_qty_names[3] = {"available", "reserved", "committed"};

static level_state *level_of(follower *f, long long item, long long loc)
{
    for (size_t i = 0; i < f->nlv; i++)
        if (f->lv[i].item == item && f->lv[i].loc == loc)
            return &f->lv[i];
    if (f->nlv == KNOWN_LEVELS)
        return NULL;
    level_state *l = &f->lv[f->nlv++];
    memset(l, 0, sizeof *l);
    l->item = item;
    l->loc = loc;
    return l;
}

/* Applies one record; checks its position follows the last one. */
static void follow_record(follower *f, const redisReply *rec)
{
    long long pos = fint(rec, "position");
    TU_CHECK(pos > (f->nseen ? f->seen[f->nseen - 1] : f->from), "position %lld after %lld", pos,
             f->nseen ? f->seen[f->nseen - 1] : f->from);
    if (f->nseen < SEEN_MAX)
        f->seen[f->nseen++] = pos;
    const redisReply *ch = fget(rec, "changes");
    for (size_t i = 0; ch != NULL && i < ch->elements; i++) {
        const redisReply *c = ch->element[i];
        level_state *l = level_of(f, atoll(fstr(c, "item")), atoll(fstr(c, "location")));
        TU_CHECK(l != NULL, "more than %d levels", KNOWN_LEVELS);
        if (l == NULL)
            continue;
        const redisReply *after = fget(c, "after");
        for (int q = 0; q < 3; q++) {
            l->qty[q] += fqty(c, "delta", g_qty_names[q]);
            if (fget(after, g_qty_names[q]) != NULL)
                TU_CHECK(fint(after, g_qty_names[q]) == l->qty[q],
                         "level %lld/%lld at %lld: %s after %lld, deltas sum to %lld", l->item,
                         l->loc, pos, g_qty_names[q], fint(after, g_qty_names[q]), l->qty[q]);
        }
        TU_CHECK(fint(c, "revision") > l->revision, "revision went back at %lld", pos);
        l->revision = fint(c, "revision");
        if (fget(c, "deleted"))
            memset(l->qty, 0, sizeof l->qty);
    }
}

static bool follower_done(follower *f)
{
    /* relaxed: a value written once by the test thread; polled */
    long long stop = atomic_load_explicit(&f->stop_at_live, memory_order_relaxed);
    return stop > 0 && f->nseen > 0 && f->seen[f->nseen - 1] >= stop;
}

/* Follows the feed with FEED.READ BLOCK until done or the server dies. */
static void *follower_main(void *arg)
{
    follower *f = arg;
    redisContext *c = srv_connect_port(f->port);
    long long pos = f->from;
    long long deadline = srv_now_ms() + 120000;
    while (c != NULL && !follower_done(f) && srv_now_ms() < deadline) {
        redisReply *r = redisCommand(c, "FEED.READ FROM %lld COUNT 1000 BLOCK 200", pos);
        if (r == NULL) {
            f->failed_read = true;
            break;
        }
        if (r->type == REDIS_REPLY_NIL) {
            freeReplyObject(r);
            continue;
        }
        if (!is_page(r)) {
            snprintf(f->err, sizeof f->err, "FEED.READ: type %d %s", r->type, r->str ? r->str : "");
            freeReplyObject(r);
            f->failed_read = true;
            break;
        }
        for (size_t i = 0; i < r->element[1]->elements; i++)
            follow_record(f, r->element[1]->element[i]);
        TU_CHECK(r->element[0]->integer >= pos, "next position went back");
        pos = r->element[0]->integer;
        freeReplyObject(r);
    }
    if (c != NULL)
        redisFree(c);
    return NULL;
}

static void follower_init(follower *f, int port, long long from)
{
    memset(f, 0, sizeof *f);
    f->port = port;
    f->from = from;
    f->seen = calloc(SEEN_MAX, sizeof *f->seen);
    cr_assert_not_null(f->seen);
}

/* The levels of the sale as LEVEL.GET ... ALL tells them, against the
 * reader's rebuilt state. */
static void expect_levels_match(redisContext *c, follower *f)
{
    for (int i = 0; i < SALE_ITEMS; i++) {
        level_state *l = level_of(f, SALE_ITEM_BASE + i, 1);
        cr_assert_not_null(l);
        redisReply *r = cmd(c, "LEVEL.GET %d 1 ALL", SALE_ITEM_BASE + i);
        cr_assert_eq(r->type, REDIS_REPLY_ARRAY, "LEVEL.GET: %s", r->str ? r->str : "");
        for (int q = 0; q < 3; q++)
            cr_assert_eq(fint(r, g_qty_names[q]), l->qty[q],
                         "item %d: %s is %lld, the feed's deltas sum to %lld", SALE_ITEM_BASE + i,
                         g_qty_names[q], fint(r, g_qty_names[q]), l->qty[q]);
        cr_assert_eq(fint(r, "revision"), l->revision, "item %d: revision", SALE_ITEM_BASE + i);
        cr_assert_geq(l->qty[0], 0, "oversold");
        freeReplyObject(r);
    }
}

static void sale_seed(redisContext *c)
{
    expect_status(c, "OK", "LOC.SET 1 name Main");
    expect_status(c, "OK", "ITEM.SET %d sku mark", MARK_ITEM);
    for (int i = 0; i < SALE_ITEMS; i++) {
        expect_status(c, "OK", "ITEM.SET %d sku s%d", SALE_ITEM_BASE + i, i);
        expect_level(c, SALE_STOCK, 0, "LEVEL.SET %d 1 %d", SALE_ITEM_BASE + i, SALE_STOCK);
    }
}

Test(server_feed, a_reader_following_a_flash_sale_rebuilds_every_level)
{
    const char *extra[] = {"--threads", "2", NULL};
    redisFree(C);
    srv_cleanup(&S);
    srv_start(&S, extra);
    C = srv_connect(&S);
    sale_seed(C);
    follower f;
    follower_init(&f, S.port, 0); /* every record from the first */
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, follower_main, &f), 0);
    sale s = {.port = S.port};
    tu_run_threads(SALE_CLIENTS, sale_writer, &s);
    tu_assert_no_failures();
    /* a last change: the reader stops once it has seen it */
    long long mark = expect_level(C, 1, 0, "LEVEL.SET %d 1 1", MARK_ITEM);
    /* relaxed: polled by the reader; the join below orders the rest */
    atomic_store_explicit(&f.stop_at_live, mark, memory_order_relaxed);
    pthread_join(th, NULL);
    cr_assert(!f.failed_read, "the reader failed: %s", f.err);
    tu_assert_no_failures();
    cr_assert(follower_done(&f), "the reader never saw the last change (%zu records)", f.nseen);
    cr_assert_gt(atomic_load_explicit(&s.ops_ok, memory_order_relaxed), SALE_CLIENTS);
    expect_levels_match(C, &f);
    free(f.seen);
}

/* Reads every record after from up to the marker position into f (a
 * follower run on this thread). */
static void read_all(follower *f, long long stop_at)
{
    /* relaxed: single thread here */
    atomic_store_explicit(&f->stop_at_live, stop_at, memory_order_relaxed);
    follower_main(f);
    cr_assert(!f->failed_read, "read failed: %s", f->err);
    tu_assert_no_failures();
    cr_assert(follower_done(f));
}

/* The sale's writers on threads of their own (tu_run_threads waits for
 * them; the kill test must act while they run). */
typedef struct {
    sale *s;
    size_t idx;
} writer_arg;

static void *writer_main(void *p)
{
    writer_arg *w = p;
    sale_writer(w->s, w->idx);
    return NULL;
}

Test(server_feed, after_kill_9_mid_sale_the_feed_continues_with_no_gap_and_no_duplicate)
{
    const char *extra[] = {"--threads", "2", NULL};
    const char *restart[] = {"--fsync", "always", "--threads", "2", NULL};
    redisFree(C);
    srv_cleanup(&S);
    srv_start(&S, extra); /* --fsync always: the reader sees durable records */
    C = srv_connect(&S);
    sale_seed(C);
    follower f;
    follower_init(&f, S.port, 0);
    pthread_t reader, writers[SALE_CLIENTS];
    writer_arg wa[SALE_CLIENTS];
    sale s = {.port = S.port, .may_die = true};
    cr_assert_eq(pthread_create(&reader, NULL, follower_main, &f), 0);
    for (size_t i = 0; i < SALE_CLIENTS; i++) {
        wa[i] = (writer_arg){&s, i};
        cr_assert_eq(pthread_create(&writers[i], NULL, writer_main, &wa[i]), 0);
    }
    /* kill -9 once the reader has followed part of the sale */
    long long deadline = srv_now_ms() + FEED_WAIT_MS;
    /* relaxed: a progress count, polled */
    while (atomic_load_explicit(&s.ops_ok, memory_order_relaxed) < 4 * SALE_CLIENTS &&
           srv_now_ms() < deadline)
        srv_sleep_ms(1);
    cr_assert_eq(kill(S.pid, SIGKILL), 0);
    waitpid(S.pid, NULL, 0);
    S.pid = 0;
    /* relaxed: the failing replies stop them anyway */
    atomic_store_explicit(&s.stop, 1, memory_order_relaxed);
    for (size_t i = 0; i < SALE_CLIENTS; i++)
        pthread_join(writers[i], NULL);
    pthread_join(reader, NULL);
    tu_assert_no_failures();
    cr_assert(f.failed_read, "the reader should have lost its server");
    cr_assert_gt(f.nseen, SALE_ITEMS, "the reader saw too little before the kill");
    long long last = f.seen[f.nseen - 1];

    /* the same data dir: everything the reader saw was durable */
    redisFree(C);
    C = NULL;
    cr_assert_eq(srv_spawn(&S, 1, restart), 0, "restart failed (log %s)", S.log);
    C = srv_connect(&S);
    for (int i = 0; i < SALE_ITEMS; i++)
        freeReplyObject(cmd(C, "LEVEL.ADJUST %d 1 1", SALE_ITEM_BASE + i));
    long long mark = expect_level(C, 1, 0, "LEVEL.SET %d 1 1", MARK_ITEM);
    /* continuing from the last position seen ... */
    follower g;
    follower_init(&g, S.port, last);
    memcpy(g.lv, f.lv, sizeof f.lv); /* it goes on from what f rebuilt */
    g.nlv = f.nlv;
    read_all(&g, mark);
    /* ... and reading it all again from the start */
    follower h;
    follower_init(&h, S.port, 0);
    read_all(&h, mark);
    cr_assert_eq(h.nseen, f.nseen + g.nseen, "from 0: %zu records; before the kill %zu, after %zu",
                 h.nseen, f.nseen, g.nseen);
    for (size_t i = 0; i < f.nseen; i++)
        cr_assert_eq(h.seen[i], f.seen[i], "record %zu: %lld, before the kill %lld", i, h.seen[i],
                     f.seen[i]);
    for (size_t i = 0; i < g.nseen; i++)
        cr_assert_eq(h.seen[f.nseen + i], g.seen[i], "record %zu after the restart", i);
    expect_levels_match(C, &h);
    free(f.seen);
    free(g.seen);
    free(h.seen);
}
