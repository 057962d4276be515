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
 *   engine                           open, close, background (this)
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
} engine_tuning;

/* inv_open with tuning (NULL: none). */
int engine_open_tuned(inv_engine **out, const inv_config *cfg, const engine_tuning *tuning);

#endif /* INV_ENGINE_H */
