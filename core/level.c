/*
 * level.c — stock levels: get, set, set-if-revision, create-only set,
 * adjust, adjust with a floor, delete, list per item.
 *
 * Hot paths (get, adjust) take no lock and allocate nothing: one table
 * probe, one consistent read and one cmpxchg16b, retried with the fresh
 * word when another writer came first. Invariants:
 *  - a level exists only for an item and a location the catalog knows: a
 *    creation re-checks the item after publishing, and undoes itself if the
 *    item was deleted meanwhile (item deletion marks first, sweeps after);
 *  - |available| <= INV_QTY_MAX and 0 <= reserved <= INV_QTY_MAX always;
 *  - the revision strictly increases on every change, and a refused change
 *    leaves the word untouched;
 *  - a hold's lines, and a batch's SET and ADJUST lines (level_batch_apply),
 *    change as one step (level_multi_apply, table_mcas):
 *    readers see all of them changed or none, and a refused one changes
 *    no word at all; a sale's counts and a batch of other lines land under
 *    their levels' LOCKs (level_cold.h, lock sets), which every single
 *    change waits for (level_committed_for: LEVEL_COLD_BUSY);
 *  - with a journal, every single change publishes one LEVEL record
 *    (persist.h, format 3): the word after, the word it replaced, its
 *    feed kind and its time, whose second is the level's updated_s.
 */
#include "level.h"

#include "catalog.h"
#include "epoch.h"
#include "fault.h"
#include "persist.h"
#include "vec.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

/* A change landed in slot s at now_s: its level's updated time moves on
 * (a plain store, once a second at most: a hot level's line stays
 * unwritten). */
static inline void level_touch(table_slot *s, uint32_t now_s)
{
    level_cold *c = level_cold_of(s);
    /* relaxed: a timestamp; the change itself was published by its CAS.
     * Forward only: a writer whose second is a tick behind another's (two
     * readings of a coarse clock) must not move updated_at back, below
     * created_at. */
    if (atomic_load_explicit(&c->updated_s, memory_order_relaxed) < now_s)
        atomic_store_explicit(&c->updated_s, now_s, memory_order_relaxed);
}

/* A level was just created in slot s at now_s (its cold part is zero: a
 * fresh slot, or a deletion cleared it). */
static void level_created(table_slot *s, uint32_t now_s)
{
    assert(s != NULL);
    /* relaxed: timestamps; the creation was published by its CAS. */
    atomic_store_explicit(&level_cold_of(s)->created_s, now_s, memory_order_relaxed);
}

/* What a single call's record says of its change besides the words. */
typedef struct {
    uint64_t w0_before; /* the word it replaced (0: it created the level) */
    uint64_t kind_bits; /* persist_meta_kind_bits: a constant per caller */
} level_said;

/* What a change that did not create its level says. */
static inline level_said level_said_of(uint64_t w0_before, inv_feed_kind kind)
{
    return (level_said){w0_before, persist_meta_kind_bits(kind, false)};
}

static inline bool level_said_created(level_said said)
{
    return (said.kind_bits & PERSIST_META_CREATED) != 0;
}

/* Is v a word a level change may leave in its slot (asserts only, off the
 * single-level hot path)? No descriptor in it (a multi-level change hands
 * back its decided words), a revision >= 1 (a deletion's tombstone keeps
 * one too), and held is a count (0 .. LEVEL_HELD_MAX). */
static bool level_word_ok(table_word v)
{
    if (v.w1 & TABLE_DESC)
        return false;
    return table_version(v) >= 1 && level_held(v) >= 0 && level_held(v) <= LEVEL_HELD_MAX;
}

/* Units a word counts: available + held. The moves between the two (a hold
 * line, a batch's pending units) keep it (asserts only). */
static int64_t level_units(table_word v)
{
    return level_available(v) + level_held(v);
}

/* Publishes the level record of a change made at *pos (journal only):
 * v landed in slot s, replacing said.w0_before. The record's time and
 * the level's timestamps are one reading (level_time_now). No assertion:
 * every single adjust with a journal runs it (replay checks the record). */
static int level_publish_record(inv_engine *e, uint64_t *pos, uint64_t item, uint64_t loc,
                                table_word v, table_slot *s, level_said said)
{
    level_time now = level_time_now(e);
    if (level_said_created(said))
        level_created(s, now.s);
    level_touch(s, now.s);
    if (e->jr && persist_late_reserve() && *pos == 0 &&
        (*pos = persist_late_position(e, PERSIST_LEVEL, PERSIST_LEVEL_LEN)) == 0)
        return INV_EIO;
    if (*pos == 0)
        return INV_OK;
    return persist_level(e, *pos, item, loc, v, said.w0_before,
                         persist_meta_at(said.kind_bits, now.ms));
}

/* As level_publish_record, with the in-memory case (no position, no
 * journal) decided inline: it is every change of an in-memory engine, and
 * reads the engine's second only. Always inlined: a call here would cost
 * the hot adjust a tenth of its time. */
static inline __attribute__((always_inline)) int level_published(inv_engine *e, uint64_t *pos,
                                                                 uint64_t item, uint64_t loc,
                                                                 table_word v, table_slot *s,
                                                                 level_said said)
{
    /* expect: lays the in-memory exit in line, as before the feed; the
     * journal's way is a call anyway. */
    if (__builtin_expect(*pos == 0 && !e->jr, 1)) {
        uint32_t now_s = engine_now_s(e);
        if (level_said_created(said)) /* a constant false where inlined into a change */
            level_created(s, now_s);
        level_touch(s, now_s);
        return INV_OK;
    }
    return level_publish_record(e, pos, item, loc, v, s, said);
}

static int level_delete(inv_engine *e, uint64_t item, uint64_t loc, bool force, uint64_t *pos_out);

/* ---- one level's update: table_update and the ordering rule ---------------
 *
 * Every change of a level is an operation step (available_step for a set
 * or an adjust, tracked_step, ...) run by table_update inside
 * level_update_with, which adds what every change needs: the level must
 * exist (or, for a creation, must not), and the new word is stamped with
 * its revision (persist.h's ordering rule). table_update may run the step
 * again after a lost race: the position it reserved stays in the context
 * for the next try, and the record is published only after table_update
 * returns, from the word that landed. The single calls (level_rmw) pass a
 * table step per operation (available_update, ...), so the operation is a
 * direct call the compiler can inline; the hold and batch lines pass the
 * operation in the context (level_update_step), an indirect call as
 * before. */

/* An operation step answers TABLE_STEP_WRITE with the new w0 in *next (a
 * deletion also sets TABLE_TOMB in next->w1; the stamp writes the
 * revision), LEVEL_KEEP (success without a change), or a refusal: a
 * negative INV_E* code other than NOTFOUND and EIO, which the update
 * itself answers (no level; the journal failed). */
#define LEVEL_KEEP TABLE_STEP_KEEP

typedef int (*level_step)(table_word cur, table_word *next, const void *arg);

typedef struct {
    inv_engine *e;
    level_step step;
    const void *arg;
    /* own (single calls): the change's position, reserved on first use
     * and kept across lost races; else the caller's op_pos (0: memory). */
    uint64_t pos;
    bool own;
    bool create; /* the level must be absent (a tombstone, or no value) */
    bool restamp; /* out, not own: a revision >= pos is there */
    uint64_t w0_before; /* out: the w0 the landing write replaced (0: created) */
    /* A single call that reports the level: the slot table_update_at
     * decides in (its where), so the step reads the committed count of the
     * word it decides on (level_committed_for); NULL: none read. */
    table_slot *const *slot;
    int64_t committed; /* out: that count */
} level_ctx;

/* own, with a journal: the position to stamp, reserved before the CAS on
 * first use (pos: the one reserved so far, 0: none) and re-reserved when
 * the level carries it already (level_position_for). 0: the journal
 * failed. Takes and returns values, so the caller's context stays in
 * registers. */
static inline uint64_t level_own_position(inv_engine *e, uint64_t pos, uint64_t version)
{
    if (pos != 0 && version < pos)
        return pos;
    return level_position_for(e, pos, version, PERSIST_LEVEL_LEN);
}

/* Writes next's revision: base + 1 in memory (base: cur's, or above the
 * dropped tombstones for a never-written slot), else the position. */
static inline int level_stamp(level_ctx *c, table_word cur, table_word *next)
{
    uint64_t base = table_version(cur);
    if (base == 0) /* a never-written slot: start above dropped tombstones */
        base = table_version_floor(&c->e->levels);
    uint64_t revision = base + 1;
    if (c->own) {
        if (c->e->jr && !persist_late_reserve()) {
            c->pos = level_own_position(c->e, c->pos, table_version(cur));
            if (c->pos == 0)
                return INV_EIO;
            revision = c->pos;
        }
    } else if (c->pos) {
        /* >=: a revision must change on every change, even a second
         * change of one level by one hold change (a give-back). */
        if (base >= c->pos) {
            c->restamp = true;
            return TABLE_STEP_KEEP;
        }
        revision = c->pos;
    }
    next->w1 = revision | (next->w1 & TABLE_TOMB);
    /* The last write the step decides is the one that lands (a lost CAS
     * runs the step again on the fresh word): the record's before word. */
    c->w0_before = c->create ? 0 : cur.w0;
    return TABLE_STEP_WRITE;
}

/* What every level change adds to its operation (see the section's
 * comment). Inlined: each table step below passes its operation. */
static inline __attribute__((always_inline)) int
level_update_with(level_ctx *c, table_word cur, table_word *next, level_step step)
{
    if (table_is_live(cur) == c->create)
        return c->create ? LEVEL_KEEP : INV_ENOTFOUND;
    if (c->slot) {
        int busy = level_committed_for(*c->slot, cur, &c->committed);
        if (__builtin_expect(busy != INV_OK, 0))
            return busy; /* LEVEL_COLD_BUSY: a sale is being counted */
    }
    int rc = step(cur, next, c->arg);
    if (rc != TABLE_STEP_WRITE)
        return rc;
    return level_stamp(c, cur, next);
}

/* The table step of a change whose operation is in its context (c->step:
 * an indirect call; the hold and batch lines, creations). */
static inline int level_update_step(void *p, table_word cur, table_word *next)
{
    level_ctx *c = p;
    assert(c != NULL && c->step != NULL); /* the hold, batch and creation steps */
    return level_update_with(c, cur, next, c->step);
}

/* Gives back a position a single call reserved for a change that did not
 * land (0: none). */
static void level_abandon(inv_engine *e, uint64_t pos)
{
    if (pos)
        persist_abandon(e, pos, PERSIST_LEVEL_LEN);
}

/* Is (item, loc)'s word in s still v? (a refusal's report, level_rmw) */
static bool level_word_unchanged(table_slot *s, uint64_t item, uint64_t loc, table_word v)
{
    table_word now = table_load_key(s, item, loc);
    return now.w0 == v.w0 && now.w1 == v.w1;
}

/* The calling thread's last level lookup (see table_memo). */
static __thread table_memo level_memo __attribute__((tls_model("initial-exec")));

/* Read-modify-write of one existing level, with its own position: update
 * is its operation's table step (available_update, ...; arg: the operation's),
 * kind the feed's name for it. Inlined into each caller with the step, so
 * adjust is one memo probe and one CAS (no assertion here: the hot path).
 * *pos_out: the change's journal position to acknowledge on (0 in memory
 * mode); when nothing changed, the revision of the state it reports. */
static inline __attribute__((always_inline)) int level_rmw(inv_engine *e, uint64_t item,
                                                           uint64_t loc, table_step_fn update,
                                                           const void *arg, inv_feed_kind kind,
                                                           inv_level *out, uint64_t *pos_out)
{
    table_word v;
    table_slot *s = NULL;
    level_ctx c = {e, NULL, arg, 0, true, false, false, 0, &s, 0};
    int rc;
    for (;;) {
        rc = table_update_at(&e->levels, item, loc, false, &level_memo, update, &c, &v, &s);
        if (__builtin_expect(rc == TABLE_STEP_WRITE, 1))
            break;
        if (rc == LEVEL_COLD_BUSY) {
            level_cold_wait(s); /* a sale's count is landing: decide again */
            continue;
        }
        /* A refusal (or keep) reports the word it decided on with that
         * word's count: read after it, so still its own while the word is
         * (else decide again on the newer one). */
        if (rc == INV_ENOTFOUND || rc == INV_EIO || rc == LEVEL_NEEDS_RULES || !out ||
            level_word_unchanged(s, item, loc, v))
            break;
    }
    uint64_t pos = c.pos;
    if (rc == TABLE_STEP_WRITE) {
        level_out_counted(v, c.committed, out);
        rc = level_published(e, &pos, item, loc, v, s, level_said_of(c.w0_before, kind));
        *pos_out = pos;
        return rc;
    }
    level_abandon(e, pos);
    /* A success that changed nothing reports the level as it is at v: it
     * is acknowledged once that state is durable (its revision's record),
     * never on a state a power loss could take back. */
    *pos_out = rc == LEVEL_KEEP && e->jr ? table_version(v) : 0;
    /* No level, or a failed journal, reports nothing. */
    if (rc != INV_ENOTFOUND && rc != INV_EIO && rc != LEVEL_NEEDS_RULES)
        level_out_counted(v, c.committed, out);
    return rc == LEVEL_KEEP ? INV_OK : rc;
}

/* The condition of a SET or ADJUST with if_revision (0: none). */
static inline bool revision_matches(table_word cur, uint64_t if_revision)
{
    return !if_revision || table_version(cur) == if_revision;
}

/* cur's w0 with available replaced (reserved and flags kept). */
static inline uint64_t with_available(table_word cur, int64_t available)
{
    return (cur.w0 & ~0xffffffffULL) | (uint32_t)(int32_t)available;
}

/* A SET (available = qty) or, with adjust, an ADJUST (available += qty,
 * not below floor unless INV_NO_FLOOR): one operation. */
typedef struct {
    int64_t qty, floor;
    uint64_t if_revision;
    bool adjust;
    const level_rules *rules; /* read when the level has rules */
} available_arg;

/* Inline: a single call's adjust is a constant once inlined, so neither
 * operation pays for the other (the single calls take it in line). A
 * floor-less decrement of a tracked level follows its oversell policy
 * (deny: not below 0); an inactive level takes no set or adjust. */
static inline int available_step(table_word cur, table_word *next, const void *p)
{
    const available_arg *a = p;
    if (!revision_matches(cur, a->if_revision))
        return INV_ECONFLICT;
    uint64_t rules;
    int rc = level_rules_for(cur, a->rules, &rules);
    if (rc != INV_OK)
        return rc;
    if (level_inactive(rules))
        return INV_EINVALID;
    int64_t available = a->qty;
    if (a->adjust) {
        int64_t floor = a->floor;
        if (floor == INV_NO_FLOOR && a->qty < 0 && !level_untracked(cur))
            floor = level_policy_floor(rules);
        else if (floor != INV_NO_FLOOR && level_untracked(cur))
            return LEVEL_KEEP; /* untracked: always available, counts nothing */
        available += level_available(cur);
        if (floor != INV_NO_FLOOR && available < floor)
            return INV_EINSUFFICIENT;
        /* Out of range only counts when moving away from the range: a
         * release may have left available above INV_QTY_MAX (it returns
         * held units). */
        if (!qty_in_range(available) && llabs(available) > llabs(level_available(cur)))
            return INV_ELIMIT;
    }
    next->w0 = with_available(cur, available);
    return TABLE_STEP_WRITE;
}

/* set's and adjust's table step for level_rmw (see the section's comment). */
static inline __attribute__((always_inline)) int available_update(void *c, table_word cur,
                                                                  table_word *next)
{
    return level_update_with(c, cur, next, available_step);
}

static int tracked_step(table_word cur, table_word *next, const void *p)
{
    assert(p != NULL);
    bool untracked = !*(const bool *)p;
    if (level_untracked(cur) == untracked)
        return LEVEL_KEEP;
    next->w0 = untracked ? cur.w0 | LEVEL_UNTRACKED : cur.w0 & ~LEVEL_UNTRACKED;
    /* only the flag moves: the counts stay as they are */
    assert((next->w0 ^ cur.w0) == LEVEL_UNTRACKED);
    return TABLE_STEP_WRITE;
}

static inline __attribute__((always_inline)) int tracked_update(void *c, table_word cur,
                                                                table_word *next)
{
    return level_update_with(c, cur, next, tracked_step);
}

/* Rules never read: a level with rules sends its change to read them. */
static const level_rules level_rules_unread = {0, 0};

/* The slow path of a set or adjust on a level with rules (a policy or an
 * inactive location): reads them for the revision met, and runs again
 * until the change is decided on the rules of the word it replaces. */
static __attribute__((noinline)) int adjust_with_rules(inv_engine *e, uint64_t item, uint64_t loc,
                                                       available_arg *arg, inv_level *out,
                                                       uint64_t *pos)
{
    assert(arg->rules == &level_rules_unread); /* the fast path read none */
    inv_feed_kind kind = arg->adjust ? INV_FEED_LEVEL_ADJUST : INV_FEED_LEVEL_SET;
    level_rules rules = {0, 0};
    arg->rules = &rules;
    int rc;
    do {
        rc = level_rules_read(e, item, loc, &rules);
        if (rc == INV_OK)
            rc = level_rmw(e, item, loc, available_update, arg, kind, out, pos);
    } while (rc == LEVEL_NEEDS_RULES);
    assert(rc <= INV_OK || rc == LEVEL_KEEP); /* decided on the rules in force */
    arg->rules = &level_rules_unread;
    return rc;
}

int inv_level_adjust_if(inv_engine *e, uint64_t item, uint64_t loc, int64_t delta, int64_t floor,
                        uint64_t if_revision, inv_level *out)
{
    if (!e || !qty_in_range(delta))
        return e ? INV_ELIMIT : INV_EINVALID;
    if (floor != INV_NO_FLOOR && !qty_in_range(floor))
        return INV_ELIMIT;
    available_arg arg = {delta, floor, if_revision, true, &level_rules_unread};
    uint64_t pos;
    epoch_enter();
    int rc = level_rmw(e, item, loc, available_update, &arg, INV_FEED_LEVEL_ADJUST, out, &pos);
    if (__builtin_expect(rc == LEVEL_NEEDS_RULES, 0))
        rc = adjust_with_rules(e, item, loc, &arg, out, &pos);
    epoch_exit();
    return pos && rc == INV_OK ? persist_ack(e, pos) : rc;
}

int inv_level_adjust(inv_engine *e, uint64_t item, uint64_t loc, int64_t delta, int64_t floor,
                     inv_level *out)
{
    return inv_level_adjust_if(e, item, loc, delta, floor, 0, out);
}

int level_read(inv_engine *e, uint64_t item, uint64_t loc, inv_level *out)
{
    for (;;) {
        table_slot *s = table_find_memo(&e->levels, item, loc, &level_memo);
        if (!s)
            return INV_ENOTFOUND;
        /* A frozen value is still the latest; a moved one lives on in the
         * next array. A multi-level change in flight reads as decided. */
        table_word v = table_load(s);
        if (v.w1 & TABLE_MOVED) {
            table_memo_forget(&level_memo);
            continue;
        }
        /* The common case inline (level_read_at's first turn): a plain
         * live word, its cold part unlocked, and the same word after. */
        if (__builtin_expect(!(v.w1 & (TABLE_DESC | TABLE_FROZEN)) && table_is_live(v), 1)) {
            /* acquire: as level_read_at (the count's store, or its LOCK) */
            uint64_t r = atomic_load_explicit(&level_cold_of(s)->rules, memory_order_acquire);
            table_word again = table_load(s);
            if (__builtin_expect(!(r & (LEVEL_COLD_LOCK | LEVEL_COLD_MOVED)) && again.w0 == v.w0 &&
                                     again.w1 == v.w1,
                                 1)) {
                level_out(v, level_held(v) != 0 ? r : 0, out);
                return INV_OK;
            }
        }
        v = table_load_key(s, item, loc);
        if (!table_is_live(v) && !(v.w1 & TABLE_MOVED))
            return INV_ENOTFOUND;
        return level_read_at(e, item, loc, s, v, out);
    }
}

int inv_level_get(inv_engine *e, uint64_t item, uint64_t loc, inv_level *out)
{
    if (!e)
        return INV_EINVALID;
    epoch_enter();
    int rc = level_read(e, item, loc, out);
    epoch_exit();
    return rc;
}

/* The word of a new level (item, loc) with available = qty, untracked as
 * its item is: NOTFOUND unless the catalog knows the item and location. */
static int level_new_word(inv_engine *e, uint64_t item, uint64_t loc, int64_t qty, bool *tracked,
                          uint64_t *w0)
{
    assert(qty_in_range(qty)); /* the callers checked it (a typed error) */
    *tracked = true;
    if (!catalog_item_exists(&e->cat, item, tracked) || !catalog_location_exists(&e->cat, loc))
        return INV_ENOTFOUND;
    if (!catalog_location_active(&e->cat, loc))
        return INV_EINVALID; /* an inactive location takes no new stock */
    *w0 = level_pack(qty, 0, !*tracked);
    assert(level_held((table_word){*w0, 0}) == 0);
    return INV_OK;
}

/* A creation's operation (arg: the new w0). A tombstone keeps its
 * revision in cur, so the re-created level's revisions go on. */
static int create_step(table_word cur, table_word *next, const void *p)
{
    assert(!table_is_live(cur));
    *next = (table_word){*(const uint64_t *)p, 0};
    assert(level_available(*next) >= -INV_QTY_MAX && level_held(*next) <= INV_QTY_MAX);
    return TABLE_STEP_WRITE;
}

/* Creates the level (item, loc) with available = qty, unless it exists:
 * returns LEVEL_KEEP then, so the caller updates it instead. Not inlined:
 * once per level, it would crowd inv_level_set's hot path (registers). */
static __attribute__((noinline)) int level_create(inv_engine *e, uint64_t item, uint64_t loc,
                                                  int64_t qty, inv_level *out, uint64_t *pos_out)
{
    bool tracked;
    uint64_t w0;
    int rc = level_new_word(e, item, loc, qty, &tracked, &w0);
    if (rc != INV_OK)
        return rc;
    table_word v;
    table_slot *s = NULL;
    /* the slot: a lock set may hold the claimed slot for its own creation
     * (level_cold.h): wait for it like any change (LEVEL_COLD_BUSY) */
    level_ctx c = {e, create_step, &w0, 0, true, true, false, 0, &s, 0};
    while ((rc = table_update_at(&e->levels, item, loc, true, NULL, level_update_step, &c, &v,
                                 &s)) == LEVEL_COLD_BUSY)
        level_cold_wait(s);
    uint64_t pos = c.pos;
    if (rc != TABLE_STEP_WRITE) {
        level_abandon(e, pos);
        return rc; /* LEVEL_KEEP: created meanwhile */
    }
    assert(table_is_live(v) && level_word_ok(v) && table_version(v) >= 1);
    table_note_created(&e->levels);
    rc = level_published(e, &pos, item, loc, v, s,
                         (level_said){0, persist_meta_kind_bits(INV_FEED_LEVEL_SET, true)});
    *pos_out = pos;
    if (rc == INV_OK && !catalog_item_exists(&e->cat, item, &tracked)) {
        /* The item was deleted while we created: its sweep may have
         * missed us, so undo (a tombstone, as the sweep would). */
        (void)level_delete(e, item, loc, true, pos_out);
        return INV_ENOTFOUND;
    }
    if (rc == INV_OK && tracked == level_untracked(v)) {
        /* The tracked flag changed meanwhile: follow it. */
        uint64_t marked = 0;
        (void)level_rmw(e, item, loc, tracked_update, &tracked, INV_FEED_LEVEL_TRACKING, NULL,
                        &marked);
        if (marked > *pos_out)
            *pos_out = marked;
    }
    if (rc == INV_OK && !catalog_location_active(&e->cat, loc)) {
        /* The location was deactivated meanwhile: follow it. */
        uint64_t marked = level_follow_active(e, item, loc);
        if (marked > *pos_out)
            *pos_out = marked;
    }
    assert(level_held(v) == 0); /* a new level holds nothing */
    level_out_counted(v, 0, out);
    return rc;
}

int inv_level_set(inv_engine *e, uint64_t item, uint64_t loc, int64_t qty, uint64_t if_revision,
                  inv_level *out)
{
    if (!e)
        return INV_EINVALID;
    if (!qty_in_range(qty))
        return INV_ELIMIT;
    available_arg arg = {qty, INV_NO_FLOOR, if_revision, false, &level_rules_unread};
    uint64_t pos = 0;
    epoch_enter();
    int rc;
    for (;;) {
        rc = level_rmw(e, item, loc, available_update, &arg, INV_FEED_LEVEL_SET, out, &pos);
        if (__builtin_expect(rc == LEVEL_NEEDS_RULES, 0))
            rc = adjust_with_rules(e, item, loc, &arg, out, &pos);
        if (rc != INV_ENOTFOUND)
            break;
        if (if_revision) {
            /* Conditional on a revision, but there is no level (revision 0). */
            if (out)
                *out = (inv_level){0, 0, 0};
            rc = INV_ECONFLICT;
            break;
        }
        rc = level_create(e, item, loc, qty, out, &pos);
        if (rc != LEVEL_KEEP)
            break;
    }
    epoch_exit();
    assert(rc <= INV_OK); /* no private answer leaves the call */
    return pos && rc == INV_OK ? persist_ack(e, pos) : rc;
}

/* Create-only: level_create's own CAS decides (it writes only over an
 * absent value), so of concurrent creators exactly one wins; the others
 * answer EXISTS with the level as they found it. */
int inv_level_create(inv_engine *e, uint64_t item, uint64_t loc, int64_t qty, inv_level *out)
{
    if (!e)
        return INV_EINVALID;
    if (!qty_in_range(qty))
        return INV_ELIMIT;
    uint64_t pos = 0;
    epoch_enter();
    int rc = level_create(e, item, loc, qty, out, &pos);
    if (rc == LEVEL_KEEP) {
        rc = INV_EEXISTS;
        if (out && level_read(e, item, loc, out) != INV_OK)
            *out = (inv_level){0, 0, 0}; /* deleted again meanwhile */
    }
    epoch_exit();
    assert(rc <= INV_OK); /* level_create answers OK, KEEP (mapped) or an error */
    return pos && rc == INV_OK ? persist_ack(e, pos) : rc;
}

/* Deletes inside an epoch section. force: also with reserved units (the
 * item itself is being deleted). */
static int level_delete(inv_engine *e, uint64_t item, uint64_t loc, bool force, uint64_t *pos_out)
{
    assert(e != NULL && pos_out != NULL);
    level_cold_op op = {
        .kind = LEVEL_COLD_DELETE, .feed_kind = INV_FEED_LEVEL_DELETE, .force = force};
    level_image image;
    return level_cold_apply(e, item, loc, &op, 0, &image, pos_out);
}

int inv_level_del(inv_engine *e, uint64_t item, uint64_t loc)
{
    if (!e)
        return INV_EINVALID;
    uint64_t pos = 0;
    epoch_enter();
    int rc = level_delete(e, item, loc, false, &pos);
    epoch_exit();
    return pos && rc == INV_OK ? persist_ack(e, pos) : rc;
}

typedef struct {
    inv_engine *e;
    uint64_t item;
    inv_level_entry *out;
    size_t cap, n;
} list_ctx;

static int list_one(void *p, uint64_t loc)
{
    list_ctx *c = p;
    assert(c->out != NULL || c->cap == 0);
    inv_level lv;
    if (level_read(c->e, c->item, loc, &lv) != INV_OK)
        return 0; /* deleted meanwhile */
    assert(lv.reserved >= 0 && lv.revision >= 1);
    if (c->n < c->cap)
        c->out[c->n] = (inv_level_entry){loc, lv};
    c->n++;
    return 0;
}

static int cmp_entry(const void *x, const void *y)
{
    const inv_level_entry *a = x, *b = y;
    return a->location < b->location ? -1 : a->location > b->location;
}

int inv_level_list(inv_engine *e, uint64_t item, inv_level_entry *out, size_t cap, size_t *n_out)
{
    if (!e || (!out && cap) || !n_out)
        return INV_EINVALID;
    list_ctx c = {e, item, out, cap, 0};
    epoch_enter();
    bool tracked;
    int rc = catalog_item_exists(&e->cat, item, &tracked) ? INV_OK : INV_ENOTFOUND;
    if (rc == INV_OK)
        rc = catalog_foreach_location(&e->cat, list_one, &c);
    epoch_exit();
    if (rc != INV_OK)
        return rc;
    if (c.n && cap)
        qsort(out, c.n < cap ? c.n : cap, sizeof *out, cmp_entry);
    *n_out = c.n;
    return c.n > cap ? INV_ELIMIT : INV_OK;
}

typedef struct {
    inv_engine *e;
    uint64_t item;
    bool tracked;
    uint64_t pos_max; /* the highest journal position written */
} item_ctx;

static void note_pos(item_ctx *c, uint64_t pos)
{
    if (pos > c->pos_max)
        c->pos_max = pos;
}

static int drop_one(void *p, uint64_t loc)
{
    item_ctx *c = p;
    assert(c->e != NULL);
    uint64_t pos = 0;
    (void)level_delete(c->e, c->item, loc, true, &pos);
    note_pos(c, pos);
    return 0;
}

uint64_t level_drop_item(inv_engine *e, uint64_t item)
{
    item_ctx c = {e, item, false, 0};
    (void)catalog_foreach_location(&e->cat, drop_one, &c);
    return c.pos_max;
}

/* Units reserved by live holds (committed units go with a deleted item). */
static int reserved_one(void *p, uint64_t loc)
{
    item_ctx *c = p;
    inv_level lv;
    if (level_read(c->e, c->item, loc, &lv) != INV_OK)
        return 0;
    return lv.reserved > 0; /* 1 stops the walk */
}

bool level_item_reserved(inv_engine *e, uint64_t item)
{
    item_ctx c = {e, item, false, 0};
    return catalog_foreach_location(&e->cat, reserved_one, &c) != 0;
}

uint64_t level_follow_tracked(inv_engine *e, uint64_t item, uint64_t loc, bool tracked)
{
    assert(e != NULL);
    uint64_t pos = 0;
    (void)level_rmw(e, item, loc, tracked_update, &tracked, INV_FEED_LEVEL_TRACKING, NULL, &pos);
    assert(pos == 0 || e->jr != NULL); /* a position only with a journal */
    return pos;
}

static int mark_one(void *p, uint64_t loc)
{
    item_ctx *c = p;
    note_pos(c, level_follow_tracked(c->e, c->item, loc, c->tracked));
    return 0;
}

typedef struct {
    inv_engine *e;
    uint64_t loc;
    uint64_t pos_max;
} location_ctx;

static int follow_active_one(void *p, uint64_t item)
{
    location_ctx *c = p;
    uint64_t pos = level_follow_active(c->e, item, c->loc);
    if (pos > c->pos_max)
        c->pos_max = pos;
    return 0;
}

uint64_t level_mark_location(inv_engine *e, uint64_t loc)
{
    location_ctx c = {e, loc, 0};
    (void)catalog_foreach_item(&e->cat, follow_active_one, &c);
    return c.pos_max;
}

uint64_t level_mark_tracked(inv_engine *e, uint64_t item, bool tracked)
{
    item_ctx c = {e, item, tracked, 0};
    (void)catalog_foreach_location(&e->cat, mark_one, &c);
    return c.pos_max;
}

/* ---- lines of multi-level changes (holds) ------------------------------- */

/* Applies step to one level, stamped with the change's position op_pos
 * (journal) or with revision + 1 (memory, op_pos 0). Answers INV_OK when
 * the change landed (*image) or the step kept the level (no image), or
 * LEVEL_NEEDS_POSITION: the level carries a newer revision; the caller
 * publishes what it did so far and calls again at a new position. */
static int level_apply_at(inv_engine *e, uint64_t item, uint64_t loc, level_step step,
                          const void *arg, uint64_t op_pos, table_word *image)
{
    table_word v;
    table_slot *s = NULL;
    assert(step != NULL && image != NULL);
    level_ctx c = {e, step, arg, op_pos, false, false, false, 0, &s, 0};
    int rc;
    while ((rc = table_update_at(&e->levels, item, loc, false, NULL, level_update_step, &c, &v,
                                 &s)) == LEVEL_COLD_BUSY)
        level_cold_wait(s); /* another thread's multi-level change holds it */
    assert(rc != TABLE_UPDATE_NO_KEY); /* an absent level is NOTFOUND */
    if (c.restamp)
        return LEVEL_NEEDS_POSITION;
    if (rc == TABLE_STEP_WRITE) {
        assert(!op_pos || table_version(v) == op_pos);
        assert(level_word_ok(v));
        /* its time is in the hold or batch record; the clock of every
         * other change of the level (level_time_now), so that updated_at
         * never reads before created_at */
        level_touch(s, level_time_now(e).s);
        *image = v;
    }
    return rc == LEVEL_KEEP ? INV_OK : rc;
}

typedef struct {
    int64_t qty;
    bool counted;
    int64_t available_seen;
    level_rules rules;
} reserve_arg;

/* A hold line: available -> held, not below the level's policy floor (0
 * unless it lets orders continue); an inactive level takes no hold. */
static int reserve_step(table_word cur, table_word *next, const void *p)
{
    reserve_arg *a = (reserve_arg *)p;
    assert(a->qty >= 1 && a->qty <= INV_QTY_MAX); /* a hold line's, checked by the hold */
    a->available_seen = level_available(cur);
    a->counted = !level_untracked(cur);
    uint64_t rules;
    int rc = level_rules_for(cur, &a->rules, &rules);
    if (rc != INV_OK)
        return rc;
    if (level_inactive(rules))
        return INV_EINVALID;
    if (!a->counted)
        return LEVEL_KEEP;
    int64_t available = level_available(cur) - a->qty;
    int64_t held = level_held(cur) + a->qty;
    int64_t floor = level_policy_floor(rules);
    if (floor != INV_NO_FLOOR ? available < floor : available < -INV_QTY_MAX)
        return INV_EINSUFFICIENT;
    if (held > INV_QTY_MAX)
        return INV_ELIMIT;
    next->w0 = level_repack(cur, available, held, false);
    /* units move from available to held: none made or lost */
    assert(level_units(*next) == level_units(cur) && level_held(*next) == held);
    return TABLE_STEP_WRITE;
}

typedef struct {
    int64_t ret, sell; /* units returned to available; units sold (stay held) */
} unreserve_arg;

/* A hold line ends: returned units go back to available; sold units stay
 * held (now committed: the caller counts them under its lock set). The
 * revision moves even when only units are sold. */
static int unreserve_step(table_word cur, table_word *next, const void *p)
{
    const unreserve_arg *a = p;
    assert(a->ret >= 0 && a->sell >= 0 && a->ret + a->sell >= 1);
    if (level_held(cur) < a->ret + a->sell)
        return INV_ELIMIT; /* would break conservation: refuse, keep as is */
    /* available <= 1e9 and held <= 1e9, so the sum fits the int32 field;
     * returning units is never refused for range. */
    next->w0 = level_repack(cur, level_available(cur) + a->ret, level_held(cur) - a->ret,
                            level_untracked(cur));
    assert(level_units(*next) == level_units(cur) && level_held(*next) >= a->sell);
    return TABLE_STEP_WRITE;
}

/* ---- multi-level changes: all lines in one step (table_mcas) -------------
 *
 * A hold's lines change their levels as one step: a descriptor goes into
 * every line's word (each decided by its step on the word it replaces,
 * stamped with op_pos), then one CAS decides them all. Until then readers
 * see every level as before, and an aborted change (a refusal on any line,
 * a newer revision met, or a writer that would not wait) puts every word
 * back exactly: nobody saw, or was refused by, any of its units, and no
 * revision moved. */

/* A line met a revision at or above op_pos (level_stamp's restamp): a
 * private answer, distinct from the table's own. */
#define LEVEL_MULTI_RESTAMP 7

/* One level of a multi-level change. */
typedef struct {
    uint64_t item, loc;
    level_step step;
    void *arg;
    level_rules *rules; /* read on LEVEL_NEEDS_RULES (NULL: the step reads none) */
    bool absent_ok; /* a level deleted meanwhile is left out, not a refusal */
    /* out */
    uint8_t result; /* LEVEL_LINE_* */
    table_word image; /* the word after (LEVEL_LINE_CHANGED) */
} multi_line;

/* The install step: level_update_with, with a newer revision answered as
 * LEVEL_MULTI_RESTAMP (the table would take level_stamp's KEEP for one). */
static int multi_step(void *p, table_word cur, table_word *next)
{
    level_ctx *c = p;
    assert(!c->own && !c->create); /* a line of a change positioned by its caller */
    c->restamp = false;
    int rc = level_update_with(c, cur, next, c->step);
    return c->restamp ? LEVEL_MULTI_RESTAMP : rc;
}

/* Installs d's entry i for line l: INV_OK (l->result says how), or the
 * line's refusal, NOTFOUND, LEVEL_NEEDS_POSITION. */
static int multi_install(inv_engine *e, table_mcas *d, size_t i, multi_line *l, uint64_t op_pos)
{
    /* the slot table_mcas_install decides in (its entry's), for the step's
     * LOCK check (level_committed_for) */
    assert(i < d->n && l->step != NULL);
    level_ctx c = {e, l->step, l->arg, op_pos, false, false, false, 0, &d->entry[i].slot, 0};
    for (;;) {
        int rc = table_mcas_install(&e->levels, d, i, multi_step, &c);
        if (rc == LEVEL_COLD_BUSY) {
            level_cold_wait(d->entry[i].slot); /* another thread's change holds it */
            continue;
        }
        if (rc == TABLE_STEP_WRITE || rc == TABLE_STEP_KEEP) {
            l->result = rc == TABLE_STEP_WRITE ? LEVEL_LINE_CHANGED : LEVEL_LINE_KEPT;
            return INV_OK;
        }
        if (rc == LEVEL_MULTI_RESTAMP)
            return LEVEL_NEEDS_POSITION;
        if (rc == LEVEL_NEEDS_RULES && l->rules) {
            rc = level_rules_read(e, l->item, l->loc, l->rules);
            if (rc == INV_OK)
                continue; /* decide again on the rules of the word met */
        }
        if (rc == INV_ENOTFOUND && l->absent_ok) {
            l->result = LEVEL_LINE_ABSENT;
            return INV_OK;
        }
        assert(rc < 0 || rc == LEVEL_NEEDS_RULES);
        return rc;
    }
}

/* Entry k met a revision at or above the position: every entry installed
 * before it is stamped with the new position instead (nobody reads a new
 * value before the decision, and the descriptor keeps those levels as
 * they were), so the change goes on where it stopped. */
static void multi_restamp(table_mcas *d, const multi_line *l, size_t k, uint64_t pos)
{
    assert(pos != 0);
    for (size_t j = 0; j < k; j++) {
        assert(d->entry[j].installed);
        if (l[j].result == LEVEL_LINE_CHANGED) {
            assert(table_version(d->entry[j].old) < pos);
            d->entry[j].new.w1 = (d->entry[j].new.w1 &TABLE_TOMB) | pos;
        }
    }
}

/* Installs every line of d, in order: INV_OK, or the refusal of line
 * *failed (NOTFOUND, EIO, a step's). */
static int multi_install_all(inv_engine *e, table_mcas *d, multi_line *l, size_t n,
                             level_position *at, size_t *failed)
{
    assert(n >= 2 && n == d->n); /* one line goes without a descriptor */
    for (size_t i = 0; i < n;) {
        int rc = multi_install(e, d, i, &l[i], at->pos);
        if (rc == LEVEL_NEEDS_POSITION) {
            /* Another change took a later position and landed first:
             * a new one, above it (positions are reserved before their
             * CAS), and this line again. */
            if ((at->pos = at->renew(at->ctx)) == 0)
                rc = INV_EIO;
            else {
                multi_restamp(d, l, i, at->pos);
                continue;
            }
        }
        if (rc != INV_OK) {
            *failed = i;
            return rc;
        }
        assert(d->entry[i].installed || l[i].result != LEVEL_LINE_CHANGED);
        i++;
    }
    return INV_OK;
}

/* One line is one CAS already: no descriptor (the one-line hold, the
 * commonest, costs what it did before). Answers as level_multi_apply. */
static int multi_apply_one(inv_engine *e, multi_line *l, level_position *at)
{
    assert(l->step != NULL && (at->pos == 0 || at->renew != NULL));
    for (;;) {
        table_word v;
        table_slot *s = NULL;
        level_ctx c = {e, l->step, l->arg, at->pos, false, false, false, 0, &s, 0};
        int rc = table_update_at(&e->levels, l->item, l->loc, false, NULL, multi_step, &c, &v, &s);
        if (rc == LEVEL_COLD_BUSY) {
            level_cold_wait(s); /* another thread's change holds it */
            continue;
        }
        if (rc == LEVEL_MULTI_RESTAMP) {
            if ((at->pos = at->renew(at->ctx)) == 0)
                return INV_EIO;
            continue; /* see multi_install_all */
        }
        if (rc == LEVEL_NEEDS_RULES && l->rules) {
            rc = level_rules_read(e, l->item, l->loc, l->rules);
            if (rc == INV_OK)
                continue;
        }
        if (rc == TABLE_STEP_WRITE) {
            assert(s != NULL && (!at->pos || table_version(v) == at->pos));
            assert(level_word_ok(v));
            l->result = LEVEL_LINE_CHANGED;
            l->image = v;
            level_touch(s, level_time_now(e).s);
            return INV_OK;
        }
        if (rc == TABLE_STEP_KEEP || (rc == INV_ENOTFOUND && l->absent_ok)) {
            l->result = rc == TABLE_STEP_KEEP ? LEVEL_LINE_KEPT : LEVEL_LINE_ABSENT;
            return INV_OK;
        }
        return rc;
    }
}

table_mcas *level_spare_new(size_t n, bool *nomem)
{
    assert(n <= TABLE_MCAS_KEYS_MAX);
    table_mcas *d = n >= 2 ? table_mcas_new(n) : NULL;
    *nomem = n >= 2 && d == NULL;
    return d;
}

void level_spare_free(table_mcas *d)
{
    /* relaxed: a spare never installed was seen by no other thread */
    assert(d == NULL ||
           atomic_load_explicit(&d->status, memory_order_relaxed) == TABLE_MCAS_UNDECIDED);
    free(d);
}

/* The descriptor of an attempt: the caller's spare first, else a new one;
 * a decided change waits for memory rather than fail (NULL only when it
 * may fail: nothing changed yet). */
static table_mcas *multi_descriptor(level_position *at, size_t n)
{
    table_mcas *d = at->spare;
    at->spare = NULL;
    if (d != NULL) {
        assert(n <= d->cap);
        d->n = (uint32_t)n;
        return d;
    }
    unsigned backoff = TABLE_BACKOFF_MIN;
    while ((d = table_mcas_new(n)) == NULL && at->must_finish)
        table_backoff(&backoff); /* memory comes back as others free it */
    assert(d != NULL || !at->must_finish);
    return d;
}

/* Every line's change as one step (see the section's comment): INV_OK,
 * or, with nothing changed, the refusal of line *failed, NOTFOUND, EIO
 * (no new position) or NOMEM. at->pos: the change's position (0: memory
 * mode), renewed when a line carries a newer revision. Not on the
 * single-level hot path: one descriptor allocated per attempt. An attempt
 * aborted by a writer it blocked (table_mcas_help) starts over: that
 * writer made progress, so the system as a whole does. */
static int level_multi_apply(inv_engine *e, multi_line *l, size_t n, level_position *at,
                             size_t *failed)
{
    assert(n >= 1 && n <= TABLE_MCAS_KEYS_MAX);
    assert(at->pos == 0 || at->renew != NULL);
    unsigned backoff = TABLE_BACKOFF_MIN;
    *failed = 0;
    if (n == 1)
        return multi_apply_one(e, l, at);
    for (;;) {
        table_mcas *d = multi_descriptor(at, n);
        if (!d)
            return INV_ENOMEM;
        for (size_t i = 0; i < n; i++) {
            d->entry[i].a = l[i].item;
            d->entry[i].b = l[i].loc;
        }
        int rc = multi_install_all(e, d, l, n, at, failed);
        if (rc != INV_OK) {
            table_mcas_abort(&e->levels, d); /* every word back as it was */
            return rc;
        }
        if (table_mcas_decide(d)) {
            /* its time is in the hold's record; the clock of every other
             * change of the level (see level_apply_at), in the slot the
             * line went into (growth moving it meanwhile only loses the
             * second, as a racing touch may) */
            uint32_t now_s = level_time_now(e).s;
            for (size_t i = 0; i < n; i++) {
                /* a decided change's words carry its position */
                assert(l[i].result != LEVEL_LINE_CHANGED || !at->pos ||
                       table_version(d->entry[i].new) == at->pos);
                l[i].image = d->entry[i].new; /* d is retired by the finish */
                if (l[i].result == LEVEL_LINE_CHANGED)
                    level_touch(d->entry[i].slot, now_s);
            }
            table_mcas_finish(&e->levels, d);
            return INV_OK;
        }
        table_mcas_finish(&e->levels, d); /* a writer aborted it: start over */
        table_backoff(&backoff);
    }
}

/* A hold's lines as one step: take (reserve_step) or end (unreserve_step)
 * every line. */
static int hold_lines_apply(inv_engine *e, level_hold_line *lines, size_t n, level_position *at,
                            size_t *failed, bool take)
{
    assert(n >= 1 && n <= INV_HOLD_LINES_MAX);
    union {
        reserve_arg take;
        unreserve_arg end;
    } args[INV_HOLD_LINES_MAX];
    multi_line ml[INV_HOLD_LINES_MAX];
    for (size_t i = 0; i < n; i++) {
        ml[i] = (multi_line){lines[i].item, lines[i].loc,    NULL,  &args[i], NULL,
                             !take,         LEVEL_LINE_KEPT, {0, 0}};
        if (take) {
            args[i].take = (reserve_arg){lines[i].qty, false, 0, {0, 0}};
            ml[i].step = reserve_step;
            ml[i].rules = &args[i].take.rules;
        } else {
            assert(lines[i].qty >= 0 && lines[i].sold >= 0);
            args[i].end = (unreserve_arg){lines[i].qty, lines[i].sold};
            ml[i].step = unreserve_step;
        }
    }
    /* An end that sells units counts them as committed: it holds every
     * line's LOCK from before its step until the counts are stored, so
     * nobody reads the sale's revision without its count (level_cold.h,
     * lock sets). The set takes every line's level, so the settles growth
     * may ask of the step are all of levels the set holds. */
    bool sells = false;
    level_key keys[INV_HOLD_LINES_MAX];
    for (size_t i = 0; i < n; i++) {
        sells |= !take && lines[i].sold > 0;
        keys[i] = (level_key){lines[i].item, lines[i].loc, false};
    }
    if (sells)
        level_locks_take(e, keys, n);
    int rc = level_multi_apply(e, ml, n, at, failed);
    for (size_t i = 0; i < n; i++) {
        /* an untracked level keeps its word: nothing counted */
        lines[i].result = ml[i].result;
        lines[i].image = ml[i].image;
        if (take)
            lines[i].available_seen = args[i].take.available_seen;
        else if (rc == INV_OK && lines[i].sold && ml[i].result == LEVEL_LINE_CHANGED)
            level_locks_count(lines[i].item, lines[i].loc, lines[i].sold);
    }
    if (sells) {
        if (rc == INV_OK) /* a test point: readers now wait for the counts */
            (void)fault_check_arg(FAULT_LEVEL_SOLD, lines[0].item, lines[0].loc);
        level_locks_release();
    }
    assert(!level_locks_held());
    return rc;
}

int level_reserve_all(inv_engine *e, level_hold_line *lines, size_t n, level_position *at,
                      size_t *failed)
{
    assert(e != NULL && lines != NULL && at != NULL && failed != NULL);
    return hold_lines_apply(e, lines, n, at, failed, true);
}

int level_unreserve_all(inv_engine *e, level_hold_line *lines, size_t n, level_position *at,
                        size_t *failed)
{
    assert(e != NULL && lines != NULL && at != NULL && failed != NULL);
    return hold_lines_apply(e, lines, n, at, failed, false);
}

/* ---- a batch's SET and ADJUST lines as one step ------------------------- */

/* Every line of one level, in order, on one word (the single calls' step,
 * available_step): a refusal of any refuses the level, and so the batch.
 * A line after the level's first write sees the batch's revision (the
 * position, or in memory the revision after cur's), as it would had the
 * lines landed one by one. */
/* Reads of level_batch_try before it takes the rules it read as they are. */
#define LEVEL_TRY_ROUNDS 4

static int batch_level_step(table_word cur, table_word *next, const void *p)
{
    level_batch_level *lv = (level_batch_level *)p;
    assert(lv->n_ops >= 1 && lv->pos != NULL);
    uint64_t stamp = *lv->pos ? *lv->pos : table_version(cur) + 1;
    table_word w = cur;
    bool wrote = false;
    lv->before = cur;
    /* The rules read for cur are the rules of every word the lines make
     * from it (SET and ADJUST move available only): a line after the
     * first write decides on them under the batch's revision. (Before,
     * it asked for rules of a revision no read returns, and the batch
     * read them again forever.) */
    level_rules rules = lv->rules;
    for (size_t j = 0; j < lv->n_ops; j++) {
        level_batch_op *o = &lv->ops[j];
        bool adjust = o->kind == LEVEL_CHANGE_ADJUST;
        available_arg a = {o->qty, adjust ? o->floor : INV_NO_FLOOR, o->if_revision, adjust,
                           &rules};
        table_word nx = w;
        int rc = available_step(w, &nx, &a);
        if (rc != TABLE_STEP_WRITE && rc != LEVEL_KEEP) {
            lv->failed_op = j;
            lv->seen = w;
            return rc;
        }
        o->wrote = rc == TABLE_STEP_WRITE;
        /* a SET or ADJUST lands in range, or nearer to it than it was */
        assert(!o->wrote || qty_in_range(level_available(nx)) ||
               llabs(level_available(nx)) <= llabs(level_available(w)));
        if (o->wrote) {
            w.w0 = nx.w0;
            w.w1 = stamp | (w.w1 & TABLE_TOMB);
            wrote = true;
            if (rules.revision == table_version(cur))
                rules.revision = stamp;
        }
        o->stamped = wrote;
        o->after = w;
    }
    if (!wrote)
        return LEVEL_KEEP;
    assert(level_held(w) == level_held(cur)); /* SET and ADJUST move available only */
    next->w0 = w.w0;
    return TABLE_STEP_WRITE;
}

int level_batch_try(inv_engine *e, level_batch_level *lv)
{
    static const uint64_t no_position = 0; /* nothing is stamped */
    assert(lv->n_ops >= 1);
    lv->pos = &no_position;
    int rc = LEVEL_NEEDS_RULES;
    /* Rules changing under every read: give up on the rules as read. */
    for (unsigned round = 0; rc == LEVEL_NEEDS_RULES && round < LEVEL_TRY_ROUNDS; round++) {
        table_slot *s = table_find(&e->levels, lv->item, lv->loc);
        table_word w = s ? table_load_key(s, lv->item, lv->loc) : (table_word){0, 0};
        if (!table_is_live(w))
            return INV_ENOTFOUND;
        table_word next = w;
        rc = batch_level_step(w, &next, lv);
        if (rc == LEVEL_NEEDS_RULES &&
            (rc = level_rules_read(e, lv->item, lv->loc, &lv->rules)) == INV_OK)
            rc = LEVEL_NEEDS_RULES; /* decide again with them */
    }
    assert(rc != LEVEL_COLD_BUSY && rc != LEVEL_NEEDS_POSITION); /* a read: no CAS, no stamp */
    return rc == TABLE_STEP_WRITE || rc == LEVEL_KEEP || rc == LEVEL_NEEDS_RULES ? INV_OK : rc;
}

int level_batch_apply(inv_engine *e, level_batch_level *lv, size_t n, level_position *at,
                      size_t *failed)
{
    assert(n >= 1 && n <= TABLE_MCAS_KEYS_MAX && n <= INV_BATCH_LINES_MAX);
    multi_line ml[INV_BATCH_LINES_MAX];
    for (size_t i = 0; i < n; i++) {
        assert(i == 0 || lv[i - 1].item < lv[i].item ||
               (lv[i - 1].item == lv[i].item && lv[i - 1].loc < lv[i].loc)); /* key order */
        lv[i].pos = &at->pos; /* renewed in place: the step stamps what lands */
        ml[i] = (multi_line){lv[i].item,   lv[i].loc, batch_level_step, &lv[i],
                             &lv[i].rules, false,     LEVEL_LINE_KEPT,  {0, 0}};
    }
    int rc = level_multi_apply(e, ml, n, at, failed);
    if (rc != INV_OK)
        return rc;
    for (size_t i = 0; i < n; i++) {
        /* Each stamped line carries the revision that landed (a renewed
         * position, or memory's). */
        assert(ml[i].result == LEVEL_LINE_CHANGED || !lv[i].ops[lv[i].n_ops - 1].stamped);
        for (size_t j = 0; j < lv[i].n_ops; j++)
            if (lv[i].ops[j].stamped)
                lv[i].ops[j].after.w1 = ml[i].image.w1;
    }
    return INV_OK;
}

/* ---- changes of batches (batch.c) ------------------------------------------ */

/* Moves a tracked level's available by delta the batch way: units the
 * batch adds stay in reserved as its pending units until it is decided, and
 * units it takes come from its pending units first. So no other caller can
 * take units the batch may still take back (its undo never drops a level
 * below what others were allowed to leave there). */
static int batch_move(level_change *c, table_word cur, int64_t delta, table_word *next)
{
    int64_t available = level_available(cur), reserved = level_held(cur);
    assert(c->pending >= 0 && c->pending <= reserved);
    if (delta >= 0) {
        if (reserved + delta > (int64_t)LEVEL_RESERVED_MASK)
            return INV_ELIMIT; /* no room to keep the units pending */
        reserved += delta;
        c->d_pending = delta;
    } else {
        int64_t from_pending = c->pending < -delta ? c->pending : -delta;
        reserved -= from_pending;
        available -= -delta - from_pending;
        c->d_pending = -from_pending;
    }
    next->w0 = level_repack(cur, available, reserved, false);
    /* every unit of delta lands in available or the pending units, and
     * the batch never gives back more pending units than it has */
    assert(level_units(*next) == level_units(cur) + delta);
    assert(c->pending + c->d_pending >= 0);
    return TABLE_STEP_WRITE;
}

/* The step of a batch change on a tracked level. What the batch's lines
 * see is available + pending (their own units included); what others see
 * is the word. */
static int tracked_change_step(level_change *c, table_word cur, table_word *next)
{
    /* the batch's pending units are part of held (nobody else takes them) */
    assert(c->pending >= 0 && c->pending <= level_held(cur));
    int64_t seen = level_available(cur) + c->pending; /* as the batch's lines see it */
    int64_t held = level_held(cur) - c->pending; /* held by holds and orders */
    c->d_pending = 0;
    uint64_t rules = 0;
    if (c->kind <= LEVEL_CHANGE_RESERVE) {
        int rc = level_rules_for(cur, &c->rules, &rules);
        if (rc != INV_OK)
            return rc;
        if (level_inactive(rules))
            return INV_EINVALID;
    }
    switch (c->kind) {
    case LEVEL_CHANGE_SET:
        if (!revision_matches(cur, c->if_revision))
            return INV_ECONFLICT;
        return batch_move(c, cur, c->qty - seen, next);
    case LEVEL_CHANGE_ADJUST: {
        if (!revision_matches(cur, c->if_revision))
            return INV_ECONFLICT;
        int64_t after = seen + c->qty;
        int64_t floor =
            c->floor == INV_NO_FLOOR && c->qty < 0 ? level_policy_floor(rules) : c->floor;
        if (floor != INV_NO_FLOOR && after < floor)
            return INV_EINSUFFICIENT;
        if (!qty_in_range(after) && llabs(after) > llabs(seen))
            return INV_ELIMIT;
        return batch_move(c, cur, c->qty, next);
    }
    case LEVEL_CHANGE_RESERVE: {
        int64_t floor = level_policy_floor(rules);
        if (floor != INV_NO_FLOOR ? seen - c->qty < floor : seen - c->qty < -INV_QTY_MAX)
            return INV_EINSUFFICIENT;
        if (held + c->qty > INV_QTY_MAX)
            return INV_ELIMIT;
        /* The units stay or become reserved: the pending ones change owner. */
        int rc = batch_move(c, cur, -c->qty, next);
        next->w0 = level_repack(cur, level_available(*next), level_held(*next) + c->qty, false);
        return rc;
    }
    case LEVEL_CHANGE_SELL:
        /* The units stay held, now committed: the batch counts them once
         * it is decided (level_commit_units); the revision moves. */
        if (held < c->qty)
            return INV_ELIMIT; /* would break conservation: refuse, keep as is */
        return TABLE_STEP_WRITE;
    case LEVEL_CHANGE_RETURN:
        if (held < c->qty)
            return INV_ELIMIT;
        c->d_pending = c->qty; /* the hold's units become the batch's: no word change */
        return TABLE_STEP_WRITE;
    case LEVEL_CHANGE_SETTLE:
        /* Decided: the pending units become available (tracked or not). */
        next->w0 = level_repack(cur, level_available(cur) + c->pending,
                                level_held(cur) - c->pending, level_untracked(cur));
        c->d_pending = -c->pending;
        return TABLE_STEP_WRITE;
    default:
        return INV_EINVALID;
    }
}

/* Untracked levels count nothing: a batch changes them as the single calls
 * do, with nothing pending. */
static int untracked_change_step(level_change *c, table_word cur, table_word *next)
{
    assert(level_untracked(cur) && c->kind != LEVEL_CHANGE_SETTLE); /* see change_step */
    c->d_pending = 0;
    switch (c->kind) {
    case LEVEL_CHANGE_SET:
    case LEVEL_CHANGE_ADJUST: {
        available_arg a = {c->qty, c->floor, c->if_revision, c->kind == LEVEL_CHANGE_ADJUST,
                           &c->rules};
        return available_step(cur, next, &a);
    }
    case LEVEL_CHANGE_RESERVE:
    case LEVEL_CHANGE_SELL:
    case LEVEL_CHANGE_RETURN:
        return LEVEL_KEEP; /* hold lines on it were never counted */
    default:
        return INV_EINVALID;
    }
}

/* A batch change notes what it did to the word, so that the batch can take
 * exactly that back. */
static int change_step(table_word cur, table_word *next, const void *p)
{
    level_change *c = (level_change *)p;
    assert(c->kind >= LEVEL_CHANGE_SET && c->kind <= LEVEL_CHANGE_SETTLE);
    c->seen = cur;
    int rc = level_untracked(cur) && c->kind != LEVEL_CHANGE_SETTLE
                 ? untracked_change_step(c, cur, next)
                 : tracked_change_step(c, cur, next);
    /* untracked: nothing to change, nothing to undo */
    c->kept = rc == LEVEL_KEEP;
    if (rc == TABLE_STEP_WRITE) {
        c->d_available = level_available(*next) - level_available(cur);
        c->d_reserved = level_held(*next) - level_held(cur);
        assert(level_held(*next) >= 0 && level_held(*next) <= LEVEL_HELD_MAX);
    }
    return rc;
}

int level_change_at(inv_engine *e, uint64_t item, uint64_t loc, level_change *c, uint64_t op_pos,
                    table_word *image)
{
    assert(c->kind >= LEVEL_CHANGE_SET && c->kind <= LEVEL_CHANGE_SETTLE);
    c->kept = false;
    c->d_available = c->d_reserved = 0;
    int rc;
    while ((rc = level_apply_at(e, item, loc, change_step, c, op_pos, image)) ==
           LEVEL_NEEDS_RULES) {
        if ((rc = level_rules_read(e, item, loc, &c->rules)) != INV_OK)
            break;
    }
    return rc;
}

static int undo_step(table_word cur, table_word *next, const void *p)
{
    const level_undo *u = p;
    if (u->created_revision && table_version(cur) == u->created_revision) {
        /* Untouched since the batch created it: it goes as it came. */
        *next = (table_word){0, TABLE_TOMB};
        return TABLE_STEP_WRITE;
    }
    int64_t available = level_clamp(level_available(cur) - u->d_available, -LEVEL_AVAILABLE_WIDE,
                                    LEVEL_AVAILABLE_WIDE);
    int64_t reserved =
        level_clamp(level_held(cur) - u->d_reserved, 0, (int64_t)LEVEL_RESERVED_MASK);
    next->w0 = level_repack(cur, available, reserved, level_untracked(cur));
    /* the clamps keep both in their fields */
    assert(level_available(*next) == available && level_held(*next) == reserved);
    return TABLE_STEP_WRITE;
}

int level_undo_at(inv_engine *e, uint64_t item, uint64_t loc, const level_undo *u, uint64_t op_pos,
                  table_word *image)
{
    assert(u != NULL && image != NULL);
    int rc = level_apply_at(e, item, loc, undo_step, u, op_pos, image);
    if (rc == INV_OK && !table_is_live(*image)) /* an undone creation */
        table_note_deleted(&e->levels);
    return rc;
}

int level_create_at(inv_engine *e, uint64_t item, uint64_t loc, int64_t qty, uint64_t op_pos,
                    table_word *image)
{
    bool tracked;
    uint64_t w0;
    int rc = level_new_word(e, item, loc, qty, &tracked, &w0);
    if (rc != INV_OK)
        return rc;
    /* A tracked level's units stay the batch's pending units until it is
     * decided (a shortfall, qty < 0, is nothing anyone could take). */
    if (tracked && qty > 0)
        w0 = level_pack(0, qty, false);
    level_ctx c = {e, create_step, &w0, op_pos, false, true, false, 0, NULL, 0};
    table_word v;
    table_slot *s;
    /* Under a lock set the slot was claimed before the set was taken and
     * the set holds it (level_locks_cover): found, never inserted (an
     * insert would help growth, which waits for other sets). */
    bool insert = !level_locks_held();
    rc = table_update_at(&e->levels, item, loc, insert, NULL, level_update_step, &c, &v, &s);
    if (c.restamp)
        return LEVEL_NEEDS_POSITION;
    if (rc == TABLE_UPDATE_NO_KEY)
        return INV_ENOMEM; /* its claim failed (no memory): the batch fails whole */
    if (rc != TABLE_STEP_WRITE)
        return rc == LEVEL_KEEP ? LEVEL_EXISTS : rc; /* created meanwhile: change it */
    assert(table_is_live(v) && level_word_ok(v));
    assert(!op_pos || table_version(v) == op_pos);
    table_note_created(&e->levels);
    uint32_t now_s = level_time_now(e).s; /* the batch record has its time */
    level_created(s, now_s);
    level_touch(s, now_s);
    *image = v;
    return INV_OK;
}

/* ---- recovery: levels that disagree with their item --------------------- */

typedef struct {
    uint64_t item, location;
    bool drop, tracked;
} reconcile_entry;

typedef struct {
    inv_engine *e;
    vec todo; /* reconcile_entry */
} reconcile_list;

static int reconcile_visit(void *p, uint64_t item, uint64_t loc, table_word v)
{
    reconcile_list *l = p;
    assert(table_is_live(v)); /* table_foreach visits live levels */
    bool tracked = true;
    bool exists = catalog_item_exists(&l->e->cat, item, &tracked);
    if (exists && tracked != level_untracked(v))
        return 0; /* agrees */
    return vec_push(&l->todo, &(reconcile_entry){item, loc, !exists, tracked});
}

/* A crash between an item's record and the level changes it causes (a
 * deletion's level sweep, a tracked flag's marking) leaves levels that
 * disagree with their item: finish those changes, journaled. Single
 * threaded (recovery). */
int level_reconcile(inv_engine *e, uint64_t *pos_max)
{
    assert(e != NULL && pos_max != NULL);
    reconcile_list l = {e, VEC_OF(reconcile_entry)};
    epoch_enter();
    int rc = table_foreach(&e->levels, reconcile_visit, &l);
    reconcile_entry *todo = l.todo.items;
    for (size_t i = 0; rc == INV_OK && i < l.todo.n; i++) {
        uint64_t pos = 0;
        if (todo[i].drop)
            rc = level_delete(e, todo[i].item, todo[i].location, true, &pos);
        else
            rc = level_rmw(e, todo[i].item, todo[i].location, tracked_update, &todo[i].tracked,
                           INV_FEED_LEVEL_TRACKING, NULL, &pos);
        if (rc == INV_ENOTFOUND)
            rc = INV_OK;
        if (pos > *pos_max)
            *pos_max = pos;
    }
    epoch_exit();
    if (l.todo.n)
        fprintf(stderr,
                "invcore: recovery: finished %zu level change(s) of items changed "
                "before the crash\n",
                l.todo.n);
    vec_free(&l.todo);
    return rc;
}

/* ---- scan of every level (cursor = hash position, table_scan) ----------- */

static void row_put(void *rows, size_t i, uint64_t item, uint64_t loc, table_word v, table_slot *s)
{
    inv_level_row *row = (inv_level_row *)rows + i;
    assert(s != NULL && table_is_live(v)); /* a scan visits live levels */
    row->item = item;
    row->location = loc;
    level_out_slot(v, s, &row->level);
}

int inv_level_scan(inv_engine *e, uint64_t cursor, size_t count, inv_level_row *rows, size_t cap,
                   size_t *n_out, uint64_t *next_cursor)
{
    if (!e)
        return INV_EINVALID;
    epoch_enter();
    int rc =
        table_scan_page_slot(&e->levels, cursor, count, rows, cap, row_put, n_out, next_cursor);
    /* Each row read again with its count for the revision it reports
     * (row_put's is the slot's count as it was, which a sale in flight may
     * not have reached yet); a level deleted since keeps the row read. */
    for (size_t i = 0; rc == INV_OK && i < *n_out && i < cap; i++) {
        inv_level lv;
        if (level_read(e, rows[i].item, rows[i].location, &lv) == INV_OK)
            rows[i].level = lv;
    }
    epoch_exit();
    return rc;
}
