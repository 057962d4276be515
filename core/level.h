/*
 * level.h — the packed level word and the level operations (private part).
 *
 * A level lives in one 16-byte table value changed only by cmpxchg16b:
 *   w0 bits  0..31  available, a two's-complement int32 (|available| <= 1e9)
 *   w0 bits 32..61  reserved, held by live holds (0 .. 1e9)
 *   w0 bit  63      UNTRACKED: the item is untracked (always available)
 *   w1              revision (>= 1; the table owns w1's top three bits)
 * Every condition (floor, expected revision) is checked against the very
 * word the CAS replaces, so it can never be stale.
 */
#ifndef INV_LEVEL_H
#define INV_LEVEL_H

#include "engine.h"
#include "table.h"

#define LEVEL_UNTRACKED (1ULL << 63)
#define LEVEL_RESERVED_SHIFT 32
#define LEVEL_RESERVED_MASK ((1ULL << 30) - 1)

static inline int64_t level_available(table_word v) { return (int32_t)(uint32_t)v.w0; }
static inline int64_t level_reserved(table_word v)
{
    return (int64_t)((v.w0 >> LEVEL_RESERVED_SHIFT) & LEVEL_RESERVED_MASK);
}
static inline bool level_untracked(table_word v) { return (v.w0 & LEVEL_UNTRACKED) != 0; }

static inline uint64_t level_pack(int64_t available, int64_t reserved, bool untracked)
{
    return (uint64_t)(uint32_t)(int32_t)available |
           ((uint64_t)reserved << LEVEL_RESERVED_SHIFT) | (untracked ? LEVEL_UNTRACKED : 0);
}

static inline void level_out(table_word v, inv_level *out)
{
    if (out) {
        out->available = level_available(v);
        out->reserved = level_reserved(v);
        out->revision = table_version(v);
    }
}

static inline bool qty_in_range(int64_t q) { return q >= -INV_QTY_MAX && q <= INV_QTY_MAX; }

/* Engine-internal, inside an epoch section. */
/* Deletes every level of item (its item record is already gone); returns
 * the highest journal position written (0: none, or memory mode). */
uint64_t level_drop_item(inv_engine *e, uint64_t item);
/* Does any level of item hold units reserved by holds? */
bool level_item_reserved(inv_engine *e, uint64_t item);
/* Sets or clears the UNTRACKED flag on every level of item (same return). */
uint64_t level_mark_tracked(inv_engine *e, uint64_t item, bool tracked);

/* Hold lines. op_pos: the hold change's journal position (0 in memory
 * mode); every level it touches is stamped with it. LEVEL_NEEDS_POSITION:
 * a level carries a newer revision — publish what was done and call again
 * with a new position. *image: the level word after the change. */
#define LEVEL_NEEDS_POSITION 1
/* Moves qty from available to reserved unless available would drop below
 * 0 (INSUFFICIENT, with *available_seen). An untracked level counts nothing
 * (*counted false, INV_OK, no image written). */
int level_reserve(inv_engine *e, uint64_t item, uint64_t loc, int64_t qty, uint64_t op_pos,
                  bool *counted, int64_t *available_seen, table_word *image);
/* Gives a counted reservation back: reserved -= qty, and available += qty
 * unless sold. NOTFOUND when the level was deleted meanwhile. */
int level_unreserve(inv_engine *e, uint64_t item, uint64_t loc, int64_t qty, bool sold,
                    uint64_t op_pos, table_word *image);
/* Recovery: deletes levels of missing items and follows items' tracked
 * flags, journaled; *pos_max gets the highest position written. */
int level_reconcile(inv_engine *e, uint64_t *pos_max);
/* Recovery: installs a level image unless a newer revision is there. */
int level_install(inv_engine *e, uint64_t item, uint64_t loc, table_word image);

#endif /* INV_LEVEL_H */
