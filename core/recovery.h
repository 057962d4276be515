/*
 * recovery.h — opening and closing a data directory, and snapshots
 * (private). The read side of durability: the only module that knows what
 * every record type means and which module applies it (persist.h lists
 * the types and writes them).
 *
 * Opening: lock the directory (one engine per directory), load the newest
 * snapshot, replay the journal after it, open the journal for writing at
 * its end, then finish, journaled, what the journal shows half done
 * (batches, holds, levels of changed items). Single-threaded: engine.c
 * calls it before any other thread uses the engine. Snapshots run beside
 * writers, one at a time.
 */
#ifndef INV_RECOVERY_H
#define INV_RECOVERY_H

#include "engine_state.h"

/* The file in a data directory whose lock (flock, exclusive) marks it as
 * in use by an engine, or by invcore-repair. */
#define RECOVERY_LOCK_FILE "LOCK"

/* Recovers the engine from e->cfg.data_dir (kept as e->data_dir) and opens
 * its journal. On failure recovery_close still has to run. */
int recovery_open(inv_engine *e);
/* Closes the journal (everything acknowledged is on disk after), releases
 * the directory and frees what recovery kept. Also in memory mode (then
 * there is nothing to close). */
int recovery_close(inv_engine *e);

/* A replica (inv_config.replica) opens its journal where its records end,
 * as a follower, and finishes nothing: inv_repl_apply's stream carries the
 * leader's own finishing records. */
/* Appends the leader's records [first, first + len) to the journal at
 * their positions and applies them as replay does (replica.c checks the
 * engine; nothing else may run on it). */
int recovery_replica_apply(inv_engine *e, uint64_t first, const uint8_t *bytes, size_t len);
/* Makes the journal take writes again, rebuilds the indexes and finishes
 * what the stream left half done (journaled), as recovery_open does after
 * a replay; then clears e->replica. */
int recovery_replica_promote(inv_engine *e);

/* Writes a snapshot and drops the journal it covers (INV_EINVALID in
 * memory mode). */
int recovery_snapshot(inv_engine *e);
/* Background: snapshot when the journal grew past the threshold. */
void recovery_maybe_snapshot(inv_engine *e);

#endif /* INV_RECOVERY_H */
