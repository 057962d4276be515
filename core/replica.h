/*
 * replica.h — the engine's side of replication (private part; the public
 * calls inv_repl_* are in include/invcore.h, the design in
 * docs/REPLICATION.md). Sits above recovery (which applies records) and
 * below engine (which frees it at close).
 */
#ifndef INV_REPLICA_H
#define INV_REPLICA_H

#include "engine_state.h"

typedef struct replica_tap replica_tap;

/* At inv_close: frees the acknowledgement gate and the tap's state (the
 * journal, which calls the tap, is closed before). */
void replica_free(inv_engine *e);

#endif /* INV_REPLICA_H */
