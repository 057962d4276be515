/*
 * engine_state.h — the engine's state: the struct every module shares, and
 * the wall clock (private).
 *
 * Layout only, no behaviour: each part belongs to the module that changes
 * it — levels to level.c, cat to catalog.c, holds to hold.c, the journal to
 * persist.c (writing) and recovery.c (opening, closing), the data directory
 * and snapshots to recovery.c; engine.c, the top, creates and frees it.
 * This header includes no module above table.h, so any module may include
 * it without a cycle (make check-cycles): the catalog's layout lives here
 * for that reason, as the hold book's does.
 */
#ifndef INV_ENGINE_STATE_H
#define INV_ENGINE_STATE_H

#include "idem.h"
#include "invcore.h"
#include "table.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

typedef struct hold_record hold_record;
typedef struct journal journal;
typedef struct feed_state feed_state;

/* ---- the catalog's tables (catalog.h has the rules) ----------------------- */

/* Item writer stripes (a power of two): writers of different items rarely
 * share one. */
#define CATALOG_WRITE_STRIPES 256

/* The set of location ids, sorted, immutable once published (COW). */
typedef struct catalog_locs {
    size_t n;
    uint64_t ids[];
} catalog_locs;

/* ---- the catalog's level hooks (catalog.h: catalog_set_level_hooks) -------
 * What an item change needs from its levels. engine.c registers these right
 * after catalog_init, before any other thread can use the engine; all four
 * must be set. Contract for each:
 *  - it runs inside the caller's epoch section; drop_item, mark_tracked and
 *    item_reserved also run inside the item's writer stripe, so they must
 *    not take it (nor call inv_item_put / inv_item_del); they may read the
 *    catalog (catalog_item_exists, catalog_foreach_location);
 *  - the two that write levels journal each change themselves and return
 *    the highest journal position they wrote (0: none, or memory mode); the
 *    catalog acknowledges its own change only once that position is
 *    durable too.
 */
typedef struct catalog_level_hooks {
    /* item's record is already a tombstone: delete every level of item. */
    uint64_t (*drop_item)(inv_engine *e, uint64_t item);
    /* item's tracked flag has just changed (to tracked): every level of
     * item follows it. */
    uint64_t (*mark_tracked)(inv_engine *e, uint64_t item, bool tracked);
    /* Does any level of item hold units reserved by live holds? Asked after
     * the item's tombstone is in place (a hold reserving later backs out). */
    bool (*item_reserved)(inv_engine *e, uint64_t item);
    /* Reads one level: INV_OK with *out, or INV_ENOTFOUND (none). A read,
     * changes nothing. */
    int (*read_level)(inv_engine *e, uint64_t item, uint64_t loc, inv_level *out);
    /* loc's active flag has just changed: every level at loc follows it
     * (an inactive location's levels refuse stock changes). Same return
     * as mark_tracked. Runs in the changer's epoch section, no stripe. */
    uint64_t (*mark_location)(inv_engine *e, uint64_t loc);
} catalog_level_hooks;

typedef struct catalog {
    table items; /* (item id, 0) -> item record pointer */
    table locations; /* (location id, 0) -> location record pointer */
    table skus; /* 128-bit hash of the SKU -> item id */
    table variants; /* 128-bit hash of the variant -> item id */
    table products; /* 128-bit hash of the product -> product record */
    /* The default location: w0 = id, w1 = version (0: none yet), changed
     * only by table_cas so id and "is set" change together. */
    table_slot default_location;
    /* Every location id ever created (sorted COW array, NULL: none). */
    _Atomic(catalog_locs *) location_ids;
    uint64_t index_seed; /* seed of the string index hashes */
    const void *owner; /* epoch_retire tag */
    pthread_mutex_t write_locks[CATALOG_WRITE_STRIPES];
    catalog_level_hooks level; /* set once by catalog_set_level_hooks */
} catalog;

/* ---- the hold book (hold.h has the rules) --------------------------------- */

typedef struct hold_book {
    table by_id; /* 128-bit hash of the hold id -> hold record */
    /* 128-bit hash of (item, buyer id) -> units the buyer counts on the
     * item (w0; see hold.c, "buyer limits"). */
    table by_buyer;
    /* Timing wheel: each slot a stack of records pushed by creators and
     * popped whole by the background thread (the only consumer). */
    _Atomic(hold_record *) *wheel;
    /* Records pushed by creators too close to (or past) the sweep; every
     * sweep drains it (see wheel_push_racing in hold.c). */
    _Atomic(hold_record *) wheel_intake;
    /* The first tick the sweeper has not swept yet, published for creators
     * (0 before its first run, which sweeps the whole wheel). */
    _Atomic int64_t wheel_next_tick;
    int64_t swept_tick; /* background thread only */
    _Atomic uint64_t created, committed, released, expired, active;
} hold_book;

struct inv_engine {
    table levels; /* (item, location) -> level word (see level.h) */
    catalog cat;
    hold_book holds;
    inv_config cfg;
    /* Durability: NULL in memory mode. persist.c writes it; recovery.c
     * opens and closes it. */
    journal *jr;
    char *data_dir;
    int lock_fd; /* flock on data_dir/LOCK: one engine per directory */
    pthread_mutex_t snapshot_lock; /* one snapshot at a time (not a hot path) */
    _Atomic uint64_t snapshot_position; /* journal position of the last one */
    _Atomic uint64_t snapshots;
    /* The change feed (feed.c): its boundary index and the retention of
     * journal segments; NULL in memory mode. */
    feed_state *feed;
    /* Journal segment size (0: the journal's default). Not an inv_config
     * field: set through engine_open_tuned (engine.h), which tests use to
     * make many small segments. */
    uint64_t journal_segment_bytes;
    /* The background thread (engine.c): expires holds, reclaims memory,
     * finishes table growth, takes snapshots. */
    pthread_t background;
    _Atomic int stopping;
    bool background_started;
    /* Recovery only (batch.c): batches the journal shows cut short. */
    struct batch_recovery *batch_pending;
    /* Request ids of idempotent batches (batch.c claims and decides them;
     * recovery.c installs them; the background thread expires them). */
    idem_store idem;
    /* Wall clock in Unix seconds for level timestamps, refreshed by the
     * background thread (engine.c) every period: the hot paths read one
     * shared word instead of the clock. */
    _Atomic uint32_t now_s;
    /* Replication (replica.c, docs/REPLICATION.md). replica: the engine
     * follows a leader's stream and expires nothing (set at open, cleared
     * by inv_repl_promote while the server's loops are paused). repl_gate:
     * a promoted engine's acknowledgement gate (persist.c), published once
     * by the promotion, NULL before. */
    _Atomic bool replica;
    _Atomic(struct persist_repl_gate *) repl_gate;
    struct replica_tap *repl_tap; /* the journal's tap's state (replica.c) */
};

/* The engine's clock in Unix seconds (a period behind at most). */
static inline uint32_t engine_now_s(inv_engine *e)
{
    /* relaxed: a timestamp, ordered with nothing. */
    return atomic_load_explicit(&e->now_s, memory_order_relaxed);
}

#endif /* INV_ENGINE_STATE_H */
