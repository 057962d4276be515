/*
 * engine.h — the top of the engine (private): engine.c opens and closes an
 * engine, runs its background thread and answers statistics (the inv_*
 * calls of include/invcore.h that belong to no lower module).
 *
 * Layers, each including only headers of the layers below it (make
 * check-cycles keeps the graph free of cycles):
 *   table, epoch, journal,           tables, reclamation, files, error
 *   snapshot, error                  messages (the bottom)
 *   engine_state, persist            the engine struct; writing records
 *   catalog, level, hold, batch      items and locations, stock, holds,
 *                                    batches, in that order
 *   recovery                         opening a data dir; snapshots
 *   replica                          following a leader's stream
 *   engine                           open, close, background (this)
 *   tenants                          named engines, one shared background
 *   server/                          the RESP server, on invcore.h alone
 * Every public entry point enters an epoch section for its whole duration
 * and leaves it before returning (the automatic quiescent point per
 * operation).
 */
#ifndef INV_ENGINE_H
#define INV_ENGINE_H

#include "engine_state.h"

/* Settings that are not inv_config fields (tests). */
typedef struct {
    uint64_t journal_segment_bytes; /* 0: the journal's default */
    /* No background thread of its own: the owner (tenants.c) calls
     * engine_background_tick every engine_background_period_ms instead,
     * and never after inv_close began. */
    bool no_background;
} engine_tuning;

/* inv_open with tuning (NULL: none). */
int engine_open_tuned(inv_engine **out, const inv_config *cfg, const engine_tuning *tuning);

/* One pass of the background work on e at wall time now_ms (> 0): the
 * clock, hold expiry, request-id expiry, table growth, a due snapshot. No
 * epoch_reclaim (global: the caller runs it once per pass over all its
 * engines). Never concurrently with itself on one e, never after inv_close
 * began. */
void engine_background_tick(inv_engine *e, int64_t now_ms);
/* The period of e's background pass, in milliseconds. */
uint32_t engine_background_period_ms(const inv_engine *e);

#endif /* INV_ENGINE_H */
