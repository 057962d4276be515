/*
 * level_word.h — the level's layout: its hot word and its cold part, and
 * the inline reads of both (private; the operations: level.h, level_cold.h).
 *
 * A level lives in one 64-byte table slot (one cache line): the key, the
 * hot word and the cold part (docs/ARCHITECTURE.md, "The level").
 *
 * The hot word, 16 bytes changed only by cmpxchg16b:
 *   w0 bits  0..31  available, a two's-complement int32 (|available| <= 1e9)
 *   w0 bits 32..61  held: units out of available that belong to holds or
 *                   orders: reserved (live holds, a batch's pending units)
 *                   + committed (sold, not yet fulfilled), 0 .. 2^30 - 1
 *   w0 bit  62      RULES: the cold word has INACTIVE or CONTINUE set (a
 *                   change that needs the rules reads it then, only then)
 *   w0 bit  63      UNTRACKED: the item is untracked (always available)
 *   w1              revision (>= 1; the table owns w1's top three bits)
 * Every condition (floor, expected revision) is checked against the very
 * word the CAS replaces, so it can never be stale. The hot paths (adjust,
 * floored adjust, hold create, hold commit) change only this word, so they
 * stay one CAS: a hold commit moves units from reserved to committed, both
 * inside held, and counts them in the cold word's committed under the
 * level's LOCK, taken before its CAS (level_cold.h, lock sets).
 *
 * The cold part (level_cold, the slot's 32 extra bytes):
 *   rules   committed (bits 0..29; the part of held that is sold), LOCK
 *           (bit 30), MOVED (bit 31), INACTIVE (32), CONTINUE (33) and the
 *           preorder limit (bits 34..63; all ones: none)
 *   d_s     damaged (low 32 bits), safety_stock (high 32)
 *   q_i     quality_control (low 32), incoming (high 32)
 *   created_s, updated_s   Unix seconds
 * Who changes what: every change of the cold part, a commit's count
 * included, holds LOCK from before its hot CAS until its cold stores are
 * done, so those changes are serialised per level, their journal images
 * come in revision order, and an unlocked cold part belongs to the hot
 * word there now (readers: level_read_at, level_committed_for). Growth waits for LOCK
 * to be free, then sets MOVED (after which nothing changes the old cold
 * part) and copies it (table_move_extra_fn). updated_s is a plain store
 * after a change (a reader may see the previous second for a moment).
 * reserved = held - committed; on_hand = available + held + damaged +
 * safety_stock + quality_control.
 */
#ifndef INV_LEVEL_WORD_H
#define INV_LEVEL_WORD_H

#include <assert.h>

#include "clock.h"
#include "engine_state.h"
#include "table.h"

#define LEVEL_UNTRACKED (1ULL << 63)
#define LEVEL_RULES (1ULL << 62)
#define LEVEL_RESERVED_SHIFT 32
#define LEVEL_RESERVED_MASK ((1ULL << 30) - 1)
/* The most units held (reserved + committed) on one level. */
#define LEVEL_HELD_MAX ((int64_t)LEVEL_RESERVED_MASK)

/* Undone availability may leave INV_QTY_MAX (as a release may), up to: */
#define LEVEL_AVAILABLE_WIDE (2 * INV_QTY_MAX)

/* The cold word (level_cold.rules). */
#define LEVEL_COMMITTED_MASK ((1ULL << 30) - 1)
#define LEVEL_COLD_LOCK (1ULL << 30)
#define LEVEL_COLD_MOVED (1ULL << 31)
#define LEVEL_COLD_INACTIVE (1ULL << 32)
#define LEVEL_COLD_CONTINUE (1ULL << 33)
#define LEVEL_LIMIT_SHIFT 34
#define LEVEL_LIMIT_NONE ((1ULL << 30) - 1) /* the field's all-ones value */

typedef struct {
    _Atomic uint64_t rules;
    _Atomic uint64_t d_s; /* damaged | safety_stock << 32 */
    _Atomic uint64_t q_i; /* quality_control | incoming << 32 */
    _Atomic uint32_t created_s, updated_s;
} level_cold;

_Static_assert(sizeof(level_cold) == 32, "a level's cold part fills its cache line");

static inline level_cold *level_cold_of(table_slot *s)
{
    return (level_cold *)table_slot_extra(s);
}

static inline int64_t level_available(table_word v)
{
    return (int32_t)(uint32_t)v.w0;
}
/* Units held: reserved + committed (+ a running batch's pending units). */
static inline int64_t level_held(table_word v)
{
    return (int64_t)((v.w0 >> LEVEL_RESERVED_SHIFT) & LEVEL_RESERVED_MASK);
}
static inline bool level_untracked(table_word v)
{
    return (v.w0 & LEVEL_UNTRACKED) != 0;
}
static inline bool level_has_rules(table_word v)
{
    return (v.w0 & LEVEL_RULES) != 0;
}

static inline uint64_t level_pack(int64_t available, int64_t reserved, bool untracked)
{
    return (uint64_t)(uint32_t)(int32_t)available | ((uint64_t)reserved << LEVEL_RESERVED_SHIFT) |
           (untracked ? LEVEL_UNTRACKED : 0);
}
/* As level_pack, keeping cur's RULES bit. */
static inline uint64_t level_repack(table_word cur, int64_t available, int64_t held, bool untracked)
{
    return level_pack(available, held, untracked) | (cur.w0 & LEVEL_RULES);
}

static inline int64_t level_committed(uint64_t rules)
{
    return (int64_t)(rules & LEVEL_COMMITTED_MASK);
}

/* The public view of a level word and its cold word's committed count
 * (read for the same revision: reserved = held - committed). */
static inline void level_out(table_word v, uint64_t rules, inv_level *out)
{
    if (out) {
        int64_t committed = level_committed(rules);
        int64_t held = level_held(v);
        out->available = level_available(v);
        out->reserved = held > committed ? held - committed : 0;
        out->revision = table_version(v);
    }
}

/* As level_out with a committed count known for v's revision (read from
 * the count's own bits: 0 .. LEVEL_COMMITTED_MASK; no assertion, it is
 * every single change's reply). */
static inline void level_out_counted(table_word v, int64_t committed, inv_level *out)
{
    level_out(v, (uint64_t)committed, out);
}

/* out for v read from slot s with the slot's committed count as it is:
 * exact when nothing changes the level (a verification at rest); a read
 * that runs beside changes uses level_read_at (level_cold.h). */
void level_out_slot(table_word v, table_slot *s, inv_level *out);

/* A single change's read of its level's committed count, inside its step
 * (level.c, level_update_with), after it read cur: the count of cur's
 * revision (*committed), or LEVEL_COLD_BUSY while another thread's change
 * holds the level's LOCK (a cold change, a sale being counted, or a batch
 * whose lines run under its levels' LOCKs: the caller waits,
 * level_cold_wait, and decides again, so it never sees or is refused by
 * a part of it).
 * Counts change only under LOCK, in the same section as the hot word's
 * CAS, so an unlocked count read after cur is cur's as long as cur is
 * still the word: the step's CAS of cur proves it. */
#define LEVEL_COLD_BUSY 6
/* Does the calling thread's lock set hold cold part c? (level_cold.c) */
bool level_locks_mine(const level_cold *c);
static inline int level_committed_for(table_slot *s, table_word cur, int64_t *committed)
{
    /* acquire: the counting store (release) of the change whose hot word
     * cur is, or its LOCK. */
    uint64_t r = atomic_load_explicit(&level_cold_of(s)->rules, memory_order_acquire);
    if (__builtin_expect((r & LEVEL_COLD_LOCK) != 0, 0) && !level_locks_mine(level_cold_of(s)))
        return LEVEL_COLD_BUSY; /* a multi-level change holds the level */
    *committed = level_held(cur) != 0 ? level_committed(r) : 0;
    return INV_OK;
}

/* The rules (cold word) a change of a RULES level follows, read for one
 * revision of its word: a step meeting another revision answers
 * LEVEL_NEEDS_RULES and its caller reads them again (level_rules_read).
 * Every change of the rules changes the word, so rules read for the
 * revision a CAS replaces are the rules in force. */
typedef struct {
    uint64_t rules;
    uint64_t revision; /* 0: not read */
} level_rules;

#define LEVEL_NEEDS_RULES 3
/* A multi-level change's step met a level carrying a newer revision than
 * its position: publish what was done and call again at a new one. */
#define LEVEL_NEEDS_POSITION 1

/* The rules of cur (0 without the RULES bit), or LEVEL_NEEDS_RULES. */
static inline int level_rules_for(table_word cur, const level_rules *r, uint64_t *rules)
{
    *rules = 0;
    if (!level_has_rules(cur))
        return INV_OK;
    if (!r || r->revision != table_version(cur))
        return LEVEL_NEEDS_RULES;
    *rules = r->rules;
    return INV_OK;
}

/* The lowest available a floor-less decrement or a hold may leave under
 * the rules: 0 (deny), -limit, or INV_NO_FLOOR (continue without limit). */
static inline int64_t level_policy_floor(uint64_t rules)
{
    if (!(rules & LEVEL_COLD_CONTINUE))
        return 0;
    uint64_t limit = rules >> LEVEL_LIMIT_SHIFT;
    return limit == LEVEL_LIMIT_NONE ? INV_NO_FLOOR : -(int64_t)limit;
}

static inline bool level_inactive(uint64_t rules)
{
    return (rules & LEVEL_COLD_INACTIVE) != 0;
}

/* on_hand of a level's named quantities (indexed by inv_qty_name):
 * everything but incoming. */
static inline int64_t level_on_hand(const int64_t q[INV_QTY_NAMES])
{
    return q[INV_QTY_AVAILABLE] + q[INV_QTY_RESERVED] + q[INV_QTY_COMMITTED] + q[INV_QTY_DAMAGED] +
           q[INV_QTY_SAFETY_STOCK] + q[INV_QTY_QUALITY_CONTROL];
}

/* Saturates an undone or settled quantity into its field's range: only
 * reachable when other writers moved a level by about INV_QTY_MAX while
 * a batch ran. */
static inline int64_t level_clamp(int64_t q, int64_t lo, int64_t hi)
{
    return q < lo ? lo : q > hi ? hi : q;
}

/* The time of a level change: Unix ms for its record, and the whole
 * seconds its level's updated_s stores (always ms / 1000: the cold part
 * and the record agree). With a journal, the coarse wall clock (a vDSO
 * read, no syscall; a tick of resolution), since the record carries ms; in
 * memory, the engine's shared second (engine_now_s), so the in-memory hot
 * path reads no clock at all. */
typedef struct {
    int64_t ms;
    uint32_t s;
} level_time;

static inline level_time level_time_now(inv_engine *e)
{
    if (e->jr) {
        struct timespec ts = clock_read(CLOCK_REALTIME_COARSE);
        return (level_time){clock_ms_of(ts), (uint32_t)ts.tv_sec};
    }
    uint32_t s = engine_now_s(e);
    return (level_time){(int64_t)s * 1000, s};
}

/* A writer that met a multi-level change in flight on (item, loc)'s word v
 * (read from s) finishes or aborts it (table_mcas_help) until the word is
 * plain or frozen by growth: the word it may then replace. */
static inline table_word level_help_word(table_slot *s, table_word v, uint64_t item, uint64_t loc)
{
    while (!table_is_frozen(v) && (v.w1 & TABLE_DESC))
        table_mcas_help(s, &v, item, loc);
    assert(table_is_frozen(v) || !(v.w1 & TABLE_DESC));
    return v;
}

/* The word of (item, loc) in s as a writer may replace it (see above). */
static inline table_word level_load_helped(table_slot *s, uint64_t item, uint64_t loc)
{
    return level_help_word(s, table_load(s), item, loc);
}

static inline bool qty_in_range(int64_t q)
{
    return q >= -INV_QTY_MAX && q <= INV_QTY_MAX;
}

#endif /* INV_LEVEL_WORD_H */
