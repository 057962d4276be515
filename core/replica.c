/*
 * replica.c — the engine's side of replication (docs/REPLICATION.md): a
 * replica applies its leader's journal stream (inv_repl_apply), is
 * promoted to leader (inv_repl_promote), and a leader hands the records
 * it writes to the shipper through the journal's tap. The network side
 * (etcd, election, who ships and who follows) is the server's
 * (core/server/repl.c); the acknowledgement gate is persist.c's.
 *
 * Invariants: a replica's journal holds a prefix of its leader's stream,
 * byte for byte at the same positions (recovery_replica_apply refuses
 * anything else); a promoted engine ships every byte its journal writes
 * from inv_repl_position on, in order, once; it acknowledges nothing the
 * shipper has not confirmed (persist.c's gate).
 */
#include "replica.h"

#include "journal.h"
#include "persist.h"
#include "recovery.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The ship callback, remembered for the journal's tap. */
struct replica_tap {
    inv_repl_ship_fn ship;
    void *arg;
};

static bool is_replica(inv_engine *e)
{
    /* acquire: pairs with recovery_replica_promote's release. */
    return e->jr != NULL && atomic_load_explicit(&e->replica, memory_order_acquire);
}

uint64_t inv_repl_position(inv_engine *e)
{
    if (!e || !e->jr)
        return 0;
    assert(e->jr != NULL);
    return journal_tail(e->jr);
}

int inv_repl_apply(inv_engine *e, uint64_t first, const void *bytes, size_t len)
{
    if (!e || !bytes || len == 0 || !is_replica(e))
        return INV_EINVALID;
    assert(e->jr != NULL);
    /* The records' payloads are read in place as structs: they need the
     * 8-byte alignment the journal gives them, which a caller's buffer
     * (an etcd value after its key) may not have. */
    void *copy = NULL;
    if ((uintptr_t)bytes % 8u != 0) {
        copy = malloc(len);
        if (!copy)
            return INV_ENOMEM;
        bytes = memcpy(copy, bytes, len);
    }
    int rc = recovery_replica_apply(e, first, bytes, len);
    free(copy);
    assert(rc == INV_OK || rc == INV_EINVALID || rc == INV_EIO || rc == INV_ENOMEM);
    return rc;
}

/* The journal's tap: the ring's one or two pieces, each a contiguous run
 * of the stream. */
static void tap_ship(void *arg, uint64_t first, const struct iovec *iov, int iovcnt)
{
    replica_tap *t = arg;
    assert(t != NULL && t->ship != NULL && iovcnt >= 1 && iovcnt <= 2);
    for (int i = 0; i < iovcnt; i++) {
        t->ship(t->arg, first, iov[i].iov_base, iov[i].iov_len);
        first += iov[i].iov_len;
    }
}

int inv_repl_promote(inv_engine *e, inv_repl_ship_fn ship, void *arg)
{
    if (!e || !ship || !is_replica(e))
        return INV_EINVALID;
    assert(e->jr != NULL && e->repl_tap == NULL);
    replica_tap *t = malloc(sizeof *t);
    if (!t)
        return INV_ENOMEM;
    *t = (replica_tap){ship, arg};
    /* Everything below the tail came from the leader's log: replicated. */
    int rc = persist_gate_install(e, journal_tail(e->jr));
    if (rc != INV_OK) {
        free(t);
        return rc;
    }
    e->repl_tap = t;
    journal_set_tap(e->jr, tap_ship, t);
    rc = recovery_replica_promote(e);
    assert(rc != INV_OK || !is_replica(e));
    return rc;
}

void replica_free(inv_engine *e)
{
    assert(e != NULL);
    persist_gate_free(e);
    free(e->repl_tap);
    e->repl_tap = NULL;
}
