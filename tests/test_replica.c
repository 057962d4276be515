/*
 * test_replica.c — the engine's side of replication (core/replica.c,
 * docs/REPLICATION.md) in one process: a promoted engine ships its journal
 * stream into a buffer, replicas apply it, and their states are compared
 * level by level (revisions included). The network side is
 * test_repl_server.c's.
 *
 * Waits are on events (the shipped end reaching the journal's tail), never
 * on time.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "engine.h"
#include "journal.h"
#include "test_util.h"

#define WAIT_MS 10000u
#define STREAM_BYTES_MAX (64u << 20)
#define LEVELS_MAX 4096u
#define ITEMS 20u
#define LOCS 3u

/* ---- a stream buffer (the ship callback runs on the journal's writer) ---- */

typedef struct {
    pthread_mutex_t lock;
    uint64_t first; /* stream position of bytes[0] (0: nothing yet) */
    uint8_t *bytes;
    size_t len;
    _Atomic uint64_t end; /* first + len */
} stream;

static void stream_init(stream *s)
{
    pthread_mutex_init(&s->lock, NULL);
    s->first = 0;
    s->bytes = malloc(STREAM_BYTES_MAX);
    cr_assert_not_null(s->bytes);
    s->len = 0;
    atomic_init(&s->end, 0);
}

static void stream_free(stream *s)
{
    free(s->bytes);
    pthread_mutex_destroy(&s->lock);
}

static void ship(void *arg, uint64_t first, const void *bytes, size_t len)
{
    stream *s = arg;
    pthread_mutex_lock(&s->lock);
    if (s->first == 0)
        s->first = first;
    /* contiguous, in order, each byte once (invcore.h) */
    if (first != s->first + s->len || s->len + len > STREAM_BYTES_MAX)
        abort();
    memcpy(s->bytes + s->len, bytes, len);
    s->len += len;
    atomic_store(&s->end, s->first + s->len);
    pthread_mutex_unlock(&s->lock);
}

/* Waits until the stream holds everything e's journal handed out. */
static void stream_wait(stream *s, inv_engine *e)
{
    uint64_t deadline = tu_deadline_ms(WAIT_MS);
    while (atomic_load(&s->end) < inv_repl_position(e)) {
        cr_assert(!tu_past(deadline), "shipped %llu of %llu",
                  (unsigned long long)atomic_load(&s->end),
                  (unsigned long long)inv_repl_position(e));
        tu_sleep_ms(1);
    }
    cr_assert_eq(atomic_load(&s->end), inv_repl_position(e));
}

/* Applies the stream bytes [from, end) to r. */
static int stream_apply(stream *s, inv_engine *r, uint64_t from)
{
    pthread_mutex_lock(&s->lock);
    cr_assert(from >= s->first && from <= s->first + s->len);
    size_t off = (size_t)(from - s->first);
    int rc = s->len > off ? inv_repl_apply(r, from, s->bytes + off, s->len - off) : INV_OK;
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* ---- engines ------------------------------------------------------------- */

/* A replica without a background thread of its own: the tests tick it
 * (engine_background_tick, never concurrently with another tick). */
static inv_engine *open_replica(const char *dir, inv_fsync_policy policy)
{
    inv_engine *e = NULL;
    inv_config cfg = {
        .data_dir = dir, .fsync_policy = policy, .defer_durability = true, .replica = true};
    int rc = engine_open_tuned(&e, &cfg, &(engine_tuning){.no_background = true});
    cr_assert_eq(rc, INV_OK, "open replica %s: %s", dir, inv_strerror(rc));
    return e;
}

/* A replica promoted at once: a leader of a fresh log, shipping into s. */
static inv_engine *open_leader(const char *dir, stream *s)
{
    inv_engine *e = open_replica(dir, INV_FSYNC_ALWAYS);
    int rc = inv_repl_promote(e, ship, s);
    cr_assert_eq(rc, INV_OK, "promote: %s", inv_strerror(rc));
    return e;
}

static int row_cmp(const void *a, const void *b)
{
    const inv_level_row *x = a, *y = b;
    if (x->item != y->item)
        return x->item < y->item ? -1 : 1;
    return x->location < y->location ? -1 : x->location > y->location;
}

/* Every level of e, sorted by (item, location). */
static size_t levels_of(inv_engine *e, inv_level_row *rows)
{
    size_t n = 0;
    uint64_t cursor = 0;
    do {
        size_t got = 0;
        int rc = inv_level_scan(e, cursor, 256, rows + n, LEVELS_MAX - n, &got, &cursor);
        cr_assert_eq(rc, INV_OK, "scan: %s", inv_strerror(rc));
        n += got;
    } while (cursor != 0);
    qsort(rows, n, sizeof *rows, row_cmp);
    return n;
}

/* Units held (reserved + committed): what the journal carries. A standby
 * derives committed units from its holds only when promoted
 * (docs/REPLICATION.md), so before that it counts them as reserved. */
static int64_t held_units(inv_engine *e, uint64_t item, uint64_t loc)
{
    inv_level_full f;
    cr_assert_eq(inv_level_get_full(e, item, loc, &f), INV_OK);
    return f.qty[INV_QTY_RESERVED] + f.qty[INV_QTY_COMMITTED];
}

/* a and b hold the same levels at the same revisions. */
static void assert_same_levels(inv_engine *a, inv_engine *b)
{
    static inv_level_row ra[LEVELS_MAX], rb[LEVELS_MAX];
    size_t na = levels_of(a, ra), nb = levels_of(b, rb);
    cr_assert_eq(na, nb, "levels: %zu against %zu", na, nb);
    cr_assert_gt(na, 0);
    for (size_t i = 0; i < na; i++) {
        cr_assert(ra[i].item == rb[i].item && ra[i].location == rb[i].location &&
                      ra[i].level.available == rb[i].level.available &&
                      held_units(a, ra[i].item, ra[i].location) ==
                          held_units(b, rb[i].item, rb[i].location) &&
                      ra[i].level.revision == rb[i].level.revision,
                  "level (%llu, %llu): %lld/%lld rev %llu against %lld/%lld rev %llu",
                  (unsigned long long)ra[i].item, (unsigned long long)ra[i].location,
                  (long long)ra[i].level.available, (long long)ra[i].level.reserved,
                  (unsigned long long)ra[i].level.revision, (long long)rb[i].level.available,
                  (long long)rb[i].level.reserved, (unsigned long long)rb[i].level.revision);
    }
}

/* A catalog, stock, adjusts and holds in every state on e; hold "open-<k>"
 * stays held. */
static void some_changes(inv_engine *e, unsigned k)
{
    for (size_t j = 0; j < LOCS; j++)
        cr_assert_eq(inv_location_put(e, tu_loc_id(j), NULL), INV_OK);
    for (size_t i = 0; i < ITEMS; i++) {
        cr_assert_eq(inv_item_put(e, tu_item_id(i), NULL), INV_OK);
        for (size_t j = 0; j < LOCS; j++)
            cr_assert_eq(inv_level_set(e, tu_item_id(i), tu_loc_id(j), 100 + (int64_t)i, 0, NULL),
                         INV_OK);
    }
    for (size_t i = 0; i < ITEMS; i++)
        cr_assert_eq(inv_level_adjust(e, tu_item_id(i), tu_loc_id(i % LOCS), -3, 0, NULL), INV_OK);
    const char *verbs[] = {"commit", "release", "open"};
    for (size_t h = 0; h < 3; h++) {
        char id[32];
        int n = snprintf(id, sizeof id, "%s-%u", verbs[h], k);
        inv_hold_line lines[2] = {{tu_item_id(h), tu_loc_id(0), 2},
                                  {tu_item_id(h + 1), tu_loc_id(1), 1}};
        cr_assert_eq(inv_hold_create(e, id, (size_t)n, 60000, lines, 2, NULL), INV_OK);
        if (h == 0)
            cr_assert_eq(inv_hold_commit(e, id, (size_t)n), INV_OK);
        if (h == 1)
            cr_assert_eq(inv_hold_release(e, id, (size_t)n), INV_OK);
    }
}

/* A leader with some_changes(k) shipped, and a replica that applied them. */
typedef struct {
    char dl[128], dr[128];
    stream s;
    inv_engine *l, *r;
} pair;

static void pair_open(pair *p, const char *name, inv_fsync_policy replica_policy, unsigned k)
{
    tu_tmpdir(p->dl, sizeof p->dl, "repl-leader");
    tu_tmpdir(p->dr, sizeof p->dr, name);
    stream_init(&p->s);
    p->l = open_leader(p->dl, &p->s);
    p->r = open_replica(p->dr, replica_policy);
    cr_assert_eq(inv_repl_position(p->r), inv_repl_position(p->l), "both start at the first");
    some_changes(p->l, k);
    stream_wait(&p->s, p->l);
    cr_assert_eq(stream_apply(&p->s, p->r, inv_repl_position(p->r)), INV_OK);
    cr_assert_eq(inv_repl_position(p->r), inv_repl_position(p->l));
}

/* Closes what is still open (l or r NULL: closed already). */
static void pair_close(pair *p)
{
    inv_close(p->l);
    inv_close(p->r);
    stream_free(&p->s);
    tu_remove_tree(p->dl);
    tu_remove_tree(p->dr);
}

/* ---- tests ----------------------------------------------------------------- */

Test(replica, a_replica_holds_its_leaders_levels_at_the_same_revisions)
{
    pair p;
    pair_open(&p, "repl-replica", INV_FSYNC_ALWAYS, 1);
    assert_same_levels(p.l, p.r);
    inv_hold_info hi;
    cr_assert_eq(inv_hold_get(p.r, "open-1", 6, &hi), INV_OK);
    cr_assert_eq(hi.state, INV_HOLD_HELD);
    cr_assert_eq(inv_hold_get(p.r, "commit-1", 8, &hi), INV_OK);
    cr_assert_eq(hi.state, INV_HOLD_COMMITTED);
    pair_close(&p);
}

/* A leader with one level written, shipped and synced on disk: only the
 * gate holds it back. The level's record position. */
static uint64_t leader_one_level_unacked(inv_engine *l, stream *s)
{
    cr_assert_eq(inv_location_put(l, 1, NULL), INV_OK);
    cr_assert_eq(inv_item_put(l, 2, NULL), INV_OK);
    cr_assert_eq(inv_level_set(l, 2, 1, 10, 0, NULL), INV_OK);
    uint64_t pos = inv_last_write_position();
    stream_wait(s, l);
    uint64_t deadline = tu_deadline_ms(WAIT_MS);
    while (journal_durable_end(l->jr) < inv_repl_position(l))
        cr_assert(!tu_past(deadline), "the journal syncs");
    return pos;
}

Test(replica, acknowledgements_wait_for_the_shipper)
{
    char dl[128];
    tu_tmpdir(dl, sizeof dl, "repl-ack");
    stream s;
    stream_init(&s);
    inv_engine *l = open_leader(dl, &s);
    uint64_t pos = leader_one_level_unacked(l, &s);
    cr_assert_lt(inv_durable_position(l), pos, "nothing replicated yet: not durable");
    inv_repl_acked(l, pos); /* up to, not including, the record at pos */
    cr_assert_lt(inv_durable_position(l), pos);
    inv_repl_acked(l, atomic_load(&s.end));
    cr_assert_geq(inv_durable_position(l), pos, "synced and replicated");
    cr_assert_eq(inv_wait_durable(l, pos), INV_OK);
    cr_assert_eq(inv_repl_acked_end(l), atomic_load(&s.end));
    inv_close(l);
    stream_free(&s);
    tu_remove_tree(dl);
}

Test(replica, the_feed_of_a_leader_shows_only_what_is_replicated)
{
    char dl[128];
    tu_tmpdir(dl, sizeof dl, "repl-feed");
    stream s;
    stream_init(&s);
    inv_engine *l = open_leader(dl, &s);
    (void)leader_one_level_unacked(l, &s);
    inv_feed *f = NULL;
    cr_assert_eq(inv_feed_open(l, 0, &f), INV_OK);
    inv_feed_record rec;
    cr_assert_eq(inv_feed_next(f, &rec), INV_ENOTFOUND, "a change not replicated is not shown");
    inv_repl_acked(l, atomic_load(&s.end));
    cr_assert_eq(inv_feed_next(f, &rec), INV_OK, "replicated: shown");
    inv_feed_close(f);
    inv_close(l);
    stream_free(&s);
    tu_remove_tree(dl);
}

Test(replica, a_replica_refuses_its_own_writes_and_expires_nothing)
{
    pair p;
    pair_open(&p, "repl-ro", INV_FSYNC_INTERVAL, 2);
    uint64_t before = inv_repl_position(p.r);
    int rc = inv_level_adjust(p.r, tu_item_id(0), tu_loc_id(0), 1, INV_NO_FLOOR, NULL);
    cr_assert_neq(rc, INV_OK, "a replica's own write is refused");
    cr_assert_eq(inv_repl_position(p.r), before, "and takes no position of the leader's stream");
    /* a tick far past every expiry: the replica leaves its holds alone */
    engine_background_tick(p.r, clock_wall_ms() + 3600 * 1000);
    inv_hold_info hi;
    cr_assert_eq(inv_hold_get(p.r, "open-2", 6, &hi), INV_OK);
    cr_assert_eq(hi.state, INV_HOLD_HELD);
    cr_assert_eq(inv_repl_promote(p.l, ship, &p.s), INV_EINVALID, "a leader is promoted once");
    pair_close(&p);
}

Test(replica, a_resend_is_skipped_and_a_gap_or_a_bad_record_refused)
{
    pair p;
    pair_open(&p, "repl-bad", INV_FSYNC_NONE, 3);
    inv_engine *l = p.l, *r = p.r;
    stream *s = &p.s;
    uint64_t start = s->first;
    uint64_t end = inv_repl_position(r);
    cr_assert_eq(stream_apply(s, r, start), INV_OK, "a resend");
    cr_assert_eq(inv_repl_position(r), end, "changes nothing");
    assert_same_levels(l, r);
    cr_assert_eq(inv_level_adjust(l, tu_item_id(1), tu_loc_id(1), 5, 0, NULL), INV_OK);
    stream_wait(s, l);
    pthread_mutex_lock(&s->lock);
    size_t off = (size_t)(end - s->first), len = s->len - off;
    uint8_t *copy = malloc(len);
    memcpy(copy, s->bytes + off, len);
    pthread_mutex_unlock(&s->lock);
    cr_assert_eq(inv_repl_apply(r, end + 8, copy, len - 8), INV_EINVALID, "a gap");
    copy[len / 2] ^= 0x40;
    cr_assert_eq(inv_repl_apply(r, end, copy, len), INV_EINVALID, "a flipped bit");
    cr_assert_eq(inv_repl_position(r), end, "nothing of a bad record is taken");
    copy[len / 2] ^= 0x40;
    uint8_t *odd = malloc(len + 1); /* an etcd value after its key: any alignment */
    memcpy(odd + 1, copy, len);
    cr_assert_eq(inv_repl_apply(r, end, odd + 1, len), INV_OK);
    free(odd);
    assert_same_levels(l, r);
    cr_assert_eq(inv_repl_apply(l, end, copy, len), INV_EINVALID, "a leader applies nothing");
    free(copy);
    pair_close(&p);
}

Test(replica, a_reopened_replica_resumes_and_a_promoted_one_leads_on)
{
    char dl[128], dr[128], d3[128];
    tu_tmpdir(dl, sizeof dl, "repl-leader");
    tu_tmpdir(dr, sizeof dr, "repl-next");
    tu_tmpdir(d3, sizeof d3, "repl-third");
    stream s, s2;
    stream_init(&s);
    stream_init(&s2);
    inv_engine *l = open_leader(dl, &s);
    inv_engine *r = open_replica(dr, INV_FSYNC_INTERVAL);
    inv_engine *r3 = open_replica(d3, INV_FSYNC_ALWAYS);
    some_changes(l, 4);
    stream_wait(&s, l);
    cr_assert_eq(stream_apply(&s, r, inv_repl_position(r)), INV_OK);
    uint64_t at = inv_repl_position(r);
    inv_close(r); /* a standby restarts: it resumes where its records end */
    r = open_replica(dr, INV_FSYNC_INTERVAL);
    cr_assert_eq(inv_repl_position(r), at, "reserved-ahead positions are not a replica's");
    assert_same_levels(l, r);
    cr_assert_eq(inv_level_adjust(l, tu_item_id(2), tu_loc_id(2), 7, 0, NULL), INV_OK);
    stream_wait(&s, l);
    cr_assert_eq(stream_apply(&s, r, at), INV_OK);
    cr_assert_eq(stream_apply(&s, r3, inv_repl_position(r3)), INV_OK);
    inv_close(l); /* the leader dies */
    uint64_t handover = inv_repl_position(r);
    cr_assert_eq(inv_repl_promote(r, ship, &s2), INV_OK);
    /* the held hold survives the failover and can be committed */
    cr_assert_eq(inv_hold_commit(r, "open-4", 6), INV_OK);
    cr_assert_eq(inv_level_adjust(r, tu_item_id(3), tu_loc_id(0), -1, 0, NULL), INV_OK);
    stream_wait(&s2, r);
    cr_assert_eq(s2.first, handover, "the new leader's stream continues the old one");
    cr_assert_eq(stream_apply(&s2, r3, inv_repl_position(r3)), INV_OK);
    assert_same_levels(r, r3);
    inv_hold_info hi;
    cr_assert_eq(inv_hold_get(r3, "open-4", 6, &hi), INV_OK);
    cr_assert_eq(hi.state, INV_HOLD_COMMITTED);
    inv_close(r);
    inv_close(r3);
    stream_free(&s);
    stream_free(&s2);
    tu_remove_tree(dl);
    tu_remove_tree(dr);
    tu_remove_tree(d3);
}

Test(replica, a_promoted_replica_expires_what_its_leader_left_held)
{
    char dl[128], dr[128];
    tu_tmpdir(dl, sizeof dl, "repl-leader");
    tu_tmpdir(dr, sizeof dr, "repl-expiry");
    stream s, s2;
    stream_init(&s);
    stream_init(&s2);
    inv_engine *l = open_leader(dl, &s);
    inv_engine *r = open_replica(dr, INV_FSYNC_ALWAYS);
    some_changes(l, 5);
    stream_wait(&s, l);
    cr_assert_eq(stream_apply(&s, r, inv_repl_position(r)), INV_OK);
    inv_close(l);
    cr_assert_eq(inv_repl_promote(r, ship, &s2), INV_OK);
    engine_background_tick(r, clock_wall_ms() + 3600 * 1000);
    inv_hold_info hi;
    int rc = inv_hold_get(r, "open-5", 6, &hi);
    cr_assert(rc == INV_ENOTFOUND || (rc == INV_OK && hi.state == INV_HOLD_EXPIRED),
              "the new leader's clock expires the hold (rc %d state %d)", rc, (int)hi.state);
    inv_level lv;
    cr_assert_eq(inv_level_get(r, tu_item_id(2), tu_loc_id(0), &lv), INV_OK);
    cr_assert_eq(lv.reserved, 0, "its units are back");
    inv_close(r);
    stream_free(&s);
    stream_free(&s2);
    tu_remove_tree(dl);
    tu_remove_tree(dr);
}

Test(replica, a_replica_needs_a_data_directory)
{
    inv_engine *e = NULL;
    cr_assert_eq(inv_open(&e, &(inv_config){.replica = true}), INV_EINVALID);
    cr_assert_null(e);
    cr_assert_eq(inv_repl_apply(NULL, 8, "x", 1), INV_EINVALID);
    cr_assert_eq(inv_repl_promote(NULL, ship, NULL), INV_EINVALID);
    cr_assert_eq(inv_repl_position(NULL), 0);
}
