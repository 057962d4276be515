/*
 * level.h — the level operations on the hot word (private part): get, set,
 * adjust, delete, lists, hold lines and batch changes. The layout is in
 * level_word.h; changes of the cold part in level_cold.h.
 */
#ifndef INV_LEVEL_H
#define INV_LEVEL_H

#include "level_cold.h"
#include "level_word.h"

/* Engine-internal, inside an epoch section. */
/* Deletes every level of item (its item record is already gone); returns
 * the highest journal position written (0: none, or memory mode). */
uint64_t level_drop_item(inv_engine *e, uint64_t item);
/* Does any level of item hold units reserved by holds? */
bool level_item_reserved(inv_engine *e, uint64_t item);
/* Sets or clears one level's UNTRACKED flag to follow its item (the
 * position written, 0: none). */
uint64_t level_follow_tracked(inv_engine *e, uint64_t item, uint64_t loc, bool tracked);
/* Sets or clears the UNTRACKED flag on every level of item (same return). */
uint64_t level_mark_tracked(inv_engine *e, uint64_t item, bool tracked);
/* Every level at loc follows the location's active flag (same return). */
uint64_t level_mark_location(inv_engine *e, uint64_t loc);

/* Hold lines. op_pos: the hold change's journal position (0 in memory
 * mode); every level it touches is stamped with it. LEVEL_NEEDS_POSITION:
 * a level carries a newer revision — publish what was done and call again
 * with a new position. *image: the level word after the change. */
/* A hold's lines as one step (all or nothing, and nobody sees a part of
 * it: see level.c, "multi-level changes"). */
enum {
    LEVEL_LINE_CHANGED = 1, /* the word changed: image is the word after */
    LEVEL_LINE_KEPT = 2, /* untracked: counts nothing, no image */
    LEVEL_LINE_ABSENT = 3 /* unreserve: the level was deleted meanwhile */
};
typedef struct {
    uint64_t item, loc;
    int64_t qty; /* reserve: units taken; unreserve: units returned */
    int64_t sold; /* unreserve: units that stay held, now committed */
    /* out */
    uint8_t result; /* LEVEL_LINE_* */
    int64_t available_seen; /* reserve: the available its step saw last */
    table_word image;
} level_hold_line;
/* Where a multi-level change is journaled: its position (0: memory mode),
 * and how to get a new one when a line carries a newer revision (the old
 * one given back; 0: the journal failed). */
typedef struct {
    uint64_t pos;
    uint64_t (*renew)(void *ctx);
    void *ctx;
    /* A descriptor for the first attempt (level_spare_new), taken by the
     * change (NULL after it), or NULL: one is allocated. */
    struct table_mcas *spare;
    /* The change is decided already (a hold's end): if memory runs out
     * it waits for some instead of failing (a failure would leave the
     * decision half applied). */
    bool must_finish;
} level_position;
/* A descriptor for a later multi-level change of up to n lines, so that
 * the change cannot run out of memory after its caller decided it: NULL
 * for n < 2 (none needed) and when out of memory (*nomem set). */
struct table_mcas *level_spare_new(size_t n, bool *nomem);
/* Frees a spare the change did not take (NULL: nothing). */
void level_spare_free(struct table_mcas *d);
/* Moves every line's qty from available to reserved, unless a line's
 * available would drop below its floor (INSUFFICIENT, with *failed and
 * its available_seen): then nothing changed at all, no revision either.
 * Also INVALID (inactive), LIMIT, NOTFOUND, NOMEM, EIO (no new position):
 * nothing changed. */
int level_reserve_all(inv_engine *e, level_hold_line *lines, size_t n, level_position *at,
                      size_t *failed);
/* Ends every line as one step: qty units return to available, sold units
 * stay held and are counted as committed (under every line's LOCK, so no
 * reader sees the step without the counts: level_cold.h, lock sets); a
 * deleted level is left out (ABSENT). LIMIT (more than held), NOMEM, EIO:
 * nothing changed. */
int level_unreserve_all(inv_engine *e, level_hold_line *lines, size_t n, level_position *at,
                        size_t *failed);
/* A batch's SET and ADJUST lines as one step (batch.c; the single calls'
 * rules, lines in order): every line of one level is decided on one word,
 * every level installed in one table_mcas, so nobody sees the batch half
 * applied, is refused by it, or sees a revision of it unless it succeeds. */
typedef struct {
    uint8_t kind; /* LEVEL_CHANGE_SET or LEVEL_CHANGE_ADJUST */
    int64_t qty, floor; /* floor: ADJUST only (INV_NO_FLOOR: none) */
    uint64_t if_revision; /* 0: none */
    /* out, on success */
    bool wrote; /* the line changed the word (else: kept, untracked) */
    bool stamped; /* the level carries the batch's revision after it */
    table_word after; /* the level's word after the line */
} level_batch_op;
typedef struct {
    uint64_t item, loc;
    level_batch_op *ops; /* this level's lines, in line order */
    size_t n_ops;
    /* out */
    table_word before; /* the word the lines were decided on */
    size_t failed_op; /* a refusal: the refused line of ops */
    table_word seen; /* a refusal: the word it was decided on */
    level_rules rules; /* read when the level has rules (zero it first) */
    const uint64_t *pos; /* private: the change's position (at->pos) */
} level_batch_level;
/* Applies every level's lines as one step: INV_OK (each op's after has
 * its final revision), or, with nothing changed and no revision moved,
 * the refusal of level *failed (its failed_op, seen), NOTFOUND, EIO (no
 * new position) or NOMEM. 1 <= n <= TABLE_MCAS_KEYS_MAX, keys distinct
 * and in key order (so two batches install in one order). */
int level_batch_apply(inv_engine *e, level_batch_level *lv, size_t n, level_position *at,
                      size_t *failed);
/* What one level's lines would answer now, nothing written (the lines
 * path's first refusal, for a refused batch's report): INV_OK, a refusal
 * (failed_op, seen) or NOTFOUND. */
int level_batch_try(inv_engine *e, level_batch_level *lv);
/* Reads a level (inside an epoch section). */
int level_read(inv_engine *e, uint64_t item, uint64_t loc, inv_level *out);

/* Batch changes (batch.c), stamped like hold lines (op_pos; memory mode:
 * revision + 1) and answering LEVEL_NEEDS_POSITION likewise. Each notes
 * what it did to the word, so that the batch can take exactly that back. */
enum {
    LEVEL_CHANGE_SET = 1, /* available = qty (IFREV if_revision) */
    LEVEL_CHANGE_ADJUST = 2, /* available += qty (floor, IFREV) */
    LEVEL_CHANGE_RESERVE = 3, /* a hold line: available -= qty, reserved += qty */
    LEVEL_CHANGE_SELL = 4, /* a committed hold line: reserved -= qty */
    LEVEL_CHANGE_RETURN = 5, /* a released hold line: its units become pending */
    LEVEL_CHANGE_SETTLE = 6 /* the batch is decided: pending -> available */
};

/* Pending units: a batch keeps the units it adds to a tracked level in
 * the level's reserved until the batch is decided (then SETTLE makes them
 * available), so no other caller takes units the batch may take back. Its
 * own lines see available + pending, and take from pending first. */
typedef struct {
    uint8_t kind;
    int64_t qty, floor;
    uint64_t if_revision;
    int64_t pending; /* in: the batch's pending units on this level */
    /* out: what the change did to the word (0, 0 and kept when an
     * untracked level counted nothing), to the batch's pending units, and
     * the word it was decided on */
    int64_t d_available, d_reserved, d_pending;
    bool kept;
    table_word seen;
    level_rules rules; /* read when the level has rules (zero it first) */
} level_change;

int level_change_at(inv_engine *e, uint64_t item, uint64_t loc, level_change *c, uint64_t op_pos,
                    table_word *image);

/* Taking a change back. A level the batch created (created_revision: its
 * first revision) and nobody changed since is deleted again; any other is
 * moved back by the deltas, whatever else changed it meanwhile (never
 * refused: beyond the word's range it saturates, see LEVEL_AVAILABLE_WIDE). */
typedef struct {
    int64_t d_available, d_reserved;
    uint64_t created_revision;
} level_undo;

int level_undo_at(inv_engine *e, uint64_t item, uint64_t loc, const level_undo *u, uint64_t op_pos,
                  table_word *image);
/* Creates (item, loc) for a batch at op_pos, its qty units pending (in
 * reserved; an untracked level or a negative qty: in available): INV_OK,
 * NOTFOUND (no such item or location), LEVEL_NEEDS_POSITION, or
 * LEVEL_EXISTS (change it instead). */
#define LEVEL_EXISTS 2
int level_create_at(inv_engine *e, uint64_t item, uint64_t loc, int64_t qty, uint64_t op_pos,
                    table_word *image);

/* Recovery: deletes levels of missing items and follows items' tracked
 * flags, journaled; *pos_max gets the highest position written. */
int level_reconcile(inv_engine *e, uint64_t *pos_max);
#endif /* INV_LEVEL_H */
