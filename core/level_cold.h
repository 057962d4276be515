/*
 * level_cold.h — changes and reads of a level's cold part (private; the
 * layout and its rules are in level.h, the code in level_cold.c).
 *
 * A cold change is one level's move between named quantities (a move,
 * a fulfilment, a receipt), a change of its rules (oversell policy,
 * activity), or its deletion: decided and applied under the level's LOCK
 * with one CAS of its hot word, stamped like every level change (its own
 * journal position, PERSIST_LEVEL_COLD, or a multi-level change's op_pos).
 */
#ifndef INV_LEVEL_COLD_H
#define INV_LEVEL_COLD_H

#include "level_word.h"
#include "persist.h"

enum {
    LEVEL_COLD_MOVE = 1, /* quantities change by d[] (units conserved unless
                          * the caller means otherwise: fulfil, receive) */
    LEVEL_COLD_RULES = 2, /* rules bits under rules_mask become rules_bits */
    LEVEL_COLD_DELETE = 3, /* a tombstone; refused while units are held
                            * unless force */
    LEVEL_COLD_RAW = 4 /* the raw fields change by raw_in[] (a batch's undo or
                        * settle: never refused, saturating at the ranges) */
};

/* The raw fields of a level a change moves (op->raw). held includes
 * committed (a count of its units), and a batch's pending units. */
enum {
    LEVEL_RAW_AVAILABLE = 0,
    LEVEL_RAW_HELD = 1,
    LEVEL_RAW_COMMITTED = 2,
    LEVEL_RAW_INCOMING = 3,
    LEVEL_RAW_DAMAGED = 4,
    LEVEL_RAW_SAFETY = 5,
    LEVEL_RAW_QC = 6,
    LEVEL_RAW_N = 7
};

/* Internal: the level was frozen by growth under the lock; apply again. */
#define LEVEL_COLD_RETRY 4
/* Internal: a rules change that changes nothing. */
#define LEVEL_COLD_KEEP 5

typedef struct {
    int kind;
    /* What the feed calls it (inv_feed_kind): a change with its own record
     * (op_pos 0) writes it there; a batch names its change by it. */
    inv_feed_kind feed_kind;
    int64_t d[INV_QTY_NAMES]; /* MOVE: deltas (reserved: always 0) */
    int64_t floor; /* MOVE taking available: INV_NO_FLOOR (the policy) or a floor */
    bool stock_change; /* MOVE: refused (INVALID) on an inactive level */
    uint64_t rules_mask, rules_bits; /* RULES */
    bool follow_location; /* RULES: INACTIVE follows the catalog's location,
                           * read under the lock (rules_mask INACTIVE) */
    bool force; /* DELETE */
    int64_t raw_in[LEVEL_RAW_N]; /* RAW */
    /* A batch's change: increases stay pending (held) and pend_in[] are
     * the batch's pending units per quantity on this level (its own lines
     * see and take them first). */
    bool batch;
    int64_t pend_in[INV_QTY_NAMES];
    /* out: what the change did (raw deltas; pending units per quantity,
     * negative when it took pending ones; RULES: the masked bits before) */
    int64_t raw[LEVEL_RAW_N];
    int64_t pend_out[INV_QTY_NAMES];
    uint64_t rules_before;
} level_cold_op;

/* A level's state after a change, as journaled. */
typedef struct {
    table_word hot;
    persist_cold cold;
} level_image;

/* Reads (item, loc)'s rules for its current revision (inside an epoch
 * section): INV_OK, or NOTFOUND. Waits while a rules change holds the
 * level's LOCK. */
int level_rules_read(inv_engine *e, uint64_t item, uint64_t loc, level_rules *out);
/* A single change's own journal position for a record of len bytes:
 * reserved on first use (pos 0), re-reserved while the level's revision
 * (version) is at or above it. 0: the journal failed. */
uint64_t level_position_for(inv_engine *e, uint64_t pos, uint64_t version, uint32_t len);
/* Growth's copy of a level's cold part (table_move_extra_fn). */
void level_move_cold(void *from, void *to);
/* The cold word of (item, loc) as it is now (0: no such level); for
 * level_out of a word read elsewhere. */
uint64_t level_rules_now(inv_engine *e, uint64_t item, uint64_t loc);
/* Counts qty units of (item, loc)'s held units as committed, under the
 * level's LOCK, after the CAS that sold them landed (a decided batch's
 * sold lines; a hold's end counts inside its lock set instead). */
void level_commit_units(inv_engine *e, uint64_t item, uint64_t loc, int64_t qty);

/* ---- lock sets: the LOCKs of a multi-level change that moves counts -----
 *
 * A hold end that sells units changes its levels' hot words (one step,
 * table_mcas) and their committed counts. Both are one step to readers
 * because the change holds the LOCK of every level it touches from
 * before its hot change until the counts are stored: a reader or a
 * single change that reads a count waits while LOCK is held, so nobody
 * reads a sale's revision without its count (level_committed_for,
 * level_read_at). The set is the calling thread's (at most one at a
 * time); locks are taken in key order, so sets never wait on each other
 * in a cycle. Growth that copies a cold part the thread holds (its own settle
 * of one of the set's slots) moves the LOCK into the copy, and the set
 * follows it (level_move_cold). While it holds a set, the thread's own
 * changes and reads of those levels go on as if unlocked (level_cold_apply
 * neither takes nor gives back a LOCK the set holds), it inserts nothing
 * into the level table (an insert helps growth, which would wait for other
 * sets' LOCKs) and takes no second set. A level the holder creates was
 * claimed before the set was taken (level_locks_cover): its never-written
 * slot is in the set, growth keeps it, and a single creation of it by
 * another thread waits for the LOCK like any change. */
/* Room for every batch prepare() accepts: a level per change it may make
 * (INV_BATCH_LEVELS_MAX) and one per line that only reads (a GET). */
#define LEVEL_LOCKS_MAX (INV_BATCH_LEVELS_MAX + INV_BATCH_LINES_MAX)
_Static_assert(INV_HOLD_LINES_MAX <= LEVEL_LOCKS_MAX, "a hold's lines fit one lock set");
typedef struct {
    uint64_t item, loc;
    bool claimed; /* the caller claimed the key's slot (a creation to come) */
} level_key;
/* Locks every existing level of keys[0..n) (n <= LEVEL_LOCKS_MAX,
 * duplicates allowed) in key order, inside an epoch section. */
void level_locks_take(inv_engine *e, const level_key *keys, size_t n);
/* qty units of (item, loc), which the set holds, become committed when
 * the set is released. */
void level_locks_count(uint64_t item, uint64_t loc, int64_t qty);
/* Stores the counts and unlocks every level of the set. */
void level_locks_release(void);
/* Does the calling thread hold a lock set? */
bool level_locks_held(void);
/* Does the set hold every key that has a slot, and has every claimed key
 * still one (growth drops a claimed, never-written slot nobody holds:
 * claim again and retake)? A held slot that holds no live value (never
 * written, or a tombstone) stays through growth (level_cold_keep_unlive),
 * so a creation under the set finds it. */
bool level_locks_cover(inv_engine *e, const level_key *keys, size_t n);
/* table_keep_unlive_fn of the level table: the cold part decides, once,
 * by its rules word: its lock set's owner keeps it (true, and copies it);
 * anyone else waits while another thread holds it, then finds it MOVED
 * (copied by the owner, or dropped) or marks it MOVED itself (dropped:
 * nobody holds it). */
bool level_cold_keep_unlive(void *extra);

/* Waits while slot s's cold part is locked by a change in flight (a
 * single change answered LEVEL_COLD_BUSY). */
void level_cold_wait(table_slot *s);
/* A read of (item, loc) found as v in slot s (inside an epoch section):
 * out with committed read for the very revision it reports, following the
 * level to a later word or array when it moves meanwhile (a read may
 * answer any state within its call). INV_OK, or NOTFOUND (deleted). */
int level_read_at(inv_engine *e, uint64_t item, uint64_t loc, table_slot *s, table_word v,
                  inv_level *out);

/* Public move and policy calls share these (validated, built ops). */
int level_move_op(level_cold_op *op, int64_t qty, inv_qty_name from, inv_qty_name to,
                  int64_t floor);
int level_policy_op(level_cold_op *op, inv_oversell_policy policy, int64_t preorder_limit);
/* One quantity changes by delta (one half of a transfer). */
int level_delta_op(level_cold_op *op, inv_qty_name q, int64_t delta, int64_t floor);
/* committed -= qty (shipped). */
int level_fulfil_op(level_cold_op *op, int64_t qty);
/* INV_OK when loc exists and is active; NOTFOUND; INVALID (inactive). */
int level_location_inactive_check(inv_engine *e, uint64_t loc);
/* Makes (item, loc)'s INACTIVE flag follow its location (0: memory mode;
 * else the position to acknowledge on: its record's or, when nothing
 * changed, the revision of the state it kept). */
uint64_t level_follow_active(inv_engine *e, uint64_t item, uint64_t loc);

/* Applies op to (item, loc) inside an epoch section. op_pos 0: the change
 * reserves, stamps and publishes its own PERSIST_LEVEL_COLD record
 * (*pos_out: its position, to acknowledge; a rules change that changes
 * nothing: the revision of the state it found); else it is stamped with op_pos
 * and the caller journals *image (LEVEL_NEEDS_POSITION: a newer revision
 * is there). On a refusal image->hot is the word it was decided on. */
int level_cold_apply(inv_engine *e, uint64_t item, uint64_t loc, level_cold_op *op, uint64_t op_pos,
                     level_image *image, uint64_t *pos_out);

/* The named quantities of a state (reserved = held - committed). */
void level_quantities(table_word v, uint64_t rules, uint64_t d_s, uint64_t q_i,
                      int64_t q[INV_QTY_NAMES]);
/* A consistent read of everything (inside an epoch section). */
int level_read_full(inv_engine *e, uint64_t item, uint64_t loc, inv_level_full *out);

/* Recovery and snapshots (single-threaded, or a snapshot's fuzzy read). */
/* Does a cold part read from disk keep to the layout (nothing trusted)? */
bool level_cold_valid(const persist_cold *cold);
void level_cold_install(table_slot *s, const persist_cold *cold, bool replace_times);
void level_cold_clear(table_slot *s);
void level_cold_image(table_slot *s, persist_cold *out);
/* committed = held on every level, then less each held hold line's units
 * (level_committed_less): recovery derives committed this way. */
int level_committed_reset(inv_engine *e);
int level_committed_less(inv_engine *e, uint64_t item, uint64_t loc, int64_t qty);

/* Recovery: installs a level image unless a newer revision is there. */
int level_install(inv_engine *e, uint64_t item, uint64_t loc, table_word image);
/* As level_install, with the record's time (0: none) and cold part (NULL:
 * a change of the hot word only). */
int level_install_full(inv_engine *e, uint64_t item, uint64_t loc, table_word image,
                       uint32_t updated_s, const persist_cold *cold);

#endif /* INV_LEVEL_COLD_H */
