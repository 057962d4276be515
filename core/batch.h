/*
 * batch.h — many changes as one (inv_batch, the server's MULTI/EXEC): the
 * journal record of a batch and its recovery (private part).
 *
 * A batch writes one PERSIST_BATCH record per journal position it uses:
 * partial records while it runs, then one final record (applied, with the
 * records of the holds it created or ended; or aborted). Each record
 * carries every change's status, so the last one recovery finds tells
 * what to take back when there is no final record.
 */
#ifndef INV_BATCH_H
#define INV_BATCH_H

#include "engine_state.h"

/* Applies a PERSIST_BATCH record (journal replay; single-threaded). */
int batch_replay(inv_engine *e, uint64_t pos, const void *payload, uint32_t len);
/* After replay, with the journal open: takes back the changes of every
 * batch that has no final record, journaled, and waits until that is
 * durable. */
int batch_recover_finish(inv_engine *e);
/* Frees what replay gathered (also when recovery failed before finishing). */
void batch_recovery_free(inv_engine *e);

#endif /* INV_BATCH_H */
