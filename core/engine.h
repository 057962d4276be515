/*
 * engine.h — the engine object shared by the modules (private).
 *
 * Layers: engine.c opens and closes, level.c changes stock, catalog.c keeps
 * items and locations, hold.c keeps reservations; all of them sit on
 * table.c (lock-free hash tables) and epoch.c (reclamation). Every public
 * entry point enters an epoch section for its whole duration and leaves it
 * before returning (the automatic quiescent point per operation).
 */
#ifndef INV_ENGINE_H
#define INV_ENGINE_H

#include "catalog.h"
#include "invcore.h"
#include "table.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

typedef struct hold_record hold_record;
typedef struct journal journal;

typedef struct hold_book {
    table by_id; /* 128-bit hash of the hold id -> hold record */
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
    /* Durability (persist.c): NULL in memory mode. */
    journal *jr;
    char *data_dir;
    int lock_fd; /* flock on data_dir/LOCK: one engine per directory */
    pthread_mutex_t snapshot_lock; /* one snapshot at a time (not a hot path) */
    _Atomic uint64_t snapshot_position; /* journal position of the last one */
    _Atomic uint64_t snapshots;
    /* The background thread: expires holds, reclaims memory, finishes
     * table growth. */
    pthread_t background;
    _Atomic int stopping;
    bool background_started;
    /* Recovery only (batch.c): batches the journal shows cut short. */
    struct batch_recovery *batch_pending;
};

#endif /* INV_ENGINE_H */
