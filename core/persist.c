/*
 * persist.c — the write side of durability (see persist.h for the ordering
 * rule): reserving, publishing and abandoning journal positions for the
 * modules' records, acknowledging a change (waiting for the journal under
 * fsync ALWAYS), and the public durability calls (inv_durable_position,
 * inv_wait_durable, ...). It knows the journal and the engine struct, and
 * of the records only the level images it encodes for level.c and
 * level_cold.c; recovery.c opens the journal, replays it and writes
 * snapshots.
 *
 * Invariants: every reservation handed out must be published or abandoned
 * by the module that took it (journal.h); this file only forwards them. Its
 * one state is per thread (the last acknowledged position). Under fsync
 * ALWAYS without deferral, persist_ack returns only once pos is durable.
 * With the replication gate, "durable" also means replicated: every
 * answer below is capped by the gate's end, which only grows.
 */
#include "persist.h"

#include "alloc.h"
#include "journal.h"

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>

/* A position is a level's revision: every one the journal can reach fits. */
_Static_assert(JOURNAL_POSITION_MAX == TABLE_VERSION_MAX, "positions fit the version bits");

static __thread uint64_t last_write_position;

/* Asserts only: e is an engine with a journal, opened with a valid fsync
 * policy (engine_open_tuned refuses any other). The write side below is
 * reached only through such an engine. */
static bool persist_engine_ok(const inv_engine *e)
{
    return e != NULL && e->jr != NULL && e->cfg.fsync_policy <= INV_FSYNC_NONE;
}

/* Asserts only: pos is a position the journal may have handed out (8-byte
 * aligned, at or past the first; journal.h). */
static bool persist_position_ok(uint64_t pos)
{
    return pos >= JOURNAL_POSITION_FIRST && pos % 8u == 0;
}

/* ---- writing ------------------------------------------------------------ */

uint64_t persist_reserve(inv_engine *e, uint32_t len)
{
    assert(persist_engine_ok(e));
    uint64_t pos = journal_reserve(e->jr, len);
    /* 0: the journal failed or closes (the caller's typed error). */
    assert(pos == 0 || persist_position_ok(pos));
    return pos;
}

void persist_abandon(inv_engine *e, uint64_t pos, uint32_t len)
{
    assert(persist_engine_ok(e));
    assert(persist_position_ok(pos));
    (void)journal_abandon(e->jr, pos, len);
}

int persist_publish(inv_engine *e, uint64_t pos, uint8_t type, const void *payload, uint32_t len)
{
    assert(persist_engine_ok(e));
    assert(persist_position_ok(pos));
    assert(payload != NULL || len == 0);
    /* a module's record type (journal.h keeps those below for itself), of
     * a length the reservation at pos accepted */
    assert(type >= JOURNAL_TYPE_USER_MIN && len <= JOURNAL_PAYLOAD_MAX);
    /* With late reservation the point was reached before the position was
     * taken (persist_late_position). */
    if (!persist_late_reserve())
        (void)fault_check_arg(FAULT_PERSIST_BEFORE_PUBLISH, type, 0);
    return journal_publish(e->jr, pos, type, payload, len);
}

uint64_t persist_late_position(inv_engine *e, uint8_t type, uint32_t len)
{
    assert(persist_engine_ok(e));
    /* after the CAS, before a position */
    (void)fault_check_arg(FAULT_PERSIST_BEFORE_PUBLISH, type, 0);
    return persist_reserve(e, len);
}

int persist_level(inv_engine *e, uint64_t pos, uint64_t item, uint64_t loc, table_word v,
                  uint64_t w0_before, uint64_t meta)
{
    assert(persist_engine_ok(e));
    assert(persist_position_ok(pos));
    /* a level image carries a live or deleted value, never a growth or
     * multi-word flag (those stay in memory and are masked below) */
    assert((v.w1 & TABLE_VERSION_MAX) != 0);
    /* a meta replay accepts (replay refuses any other as corruption) */
    assert(persist_meta_valid(meta, PERSIST_LEVEL_KINDS, true));
    persist_level_image img = {item,      loc, v.w0, v.w1 & (TABLE_VERSION_MAX | TABLE_TOMB),
                               w0_before, meta};
    return persist_publish(e, pos, PERSIST_LEVEL, &img, sizeof img);
}

int persist_level_cold(inv_engine *e, uint64_t pos, const persist_level_cold_change *rec)
{
    assert(persist_engine_ok(e));
    assert(rec != NULL && persist_position_ok(pos));
    /* a meta replay accepts: a cold change never creates its level */
    assert(persist_meta_valid(rec->meta, PERSIST_LEVEL_COLD_KINDS, false));
    persist_level_cold_change img = *rec;
    img.after.w1 &= TABLE_VERSION_MAX | TABLE_TOMB; /* the table's other bits stay in memory */
    return persist_publish(e, pos, PERSIST_LEVEL_COLD, &img, sizeof img);
}

/* ---- the replication gate ------------------------------------------------- */

struct persist_repl_gate {
    /* Every record below it is replicated; only grows. */
    _Atomic uint64_t end;
    /* inv_wait_durable's sleepers (a blocking call, off the hot path: the
     * server waits on the journal's eventfds, which inv_repl_acked
     * signals). */
    pthread_mutex_t lock;
    pthread_cond_t moved;
};

static persist_repl_gate *gate_of(inv_engine *e)
{
    /* acquire: pairs with persist_gate_install's release (the gate is
     * initialised before it is seen). */
    return atomic_load_explicit(&e->repl_gate, memory_order_acquire);
}

int persist_gate_install(inv_engine *e, uint64_t start)
{
    assert(e != NULL && start >= JOURNAL_POSITION_FIRST);
    assert(gate_of(e) == NULL); /* once */
    persist_repl_gate *g = inv_calloc(1, sizeof *g);
    if (!g)
        return INV_ENOMEM;
    atomic_init(&g->end, start);
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->moved, NULL);
    /* release: see gate_of. */
    atomic_store_explicit(&e->repl_gate, g, memory_order_release);
    return INV_OK;
}

uint64_t persist_gate_end(inv_engine *e)
{
    assert(e != NULL);
    persist_repl_gate *g = gate_of(e);
    /* acquire: a caller that sees end sees the flusher's writes it covers
     * (the shipper stored it with release after etcd confirmed). */
    return g ? atomic_load_explicit(&g->end, memory_order_acquire) : 0;
}

uint64_t persist_visible_end(inv_engine *e)
{
    assert(e != NULL && e->jr != NULL);
    uint64_t end = journal_durable_end(e->jr), gate = persist_gate_end(e);
    return gate != 0 && gate < end ? gate : end;
}

void persist_gate_free(inv_engine *e)
{
    assert(e != NULL);
    persist_repl_gate *g = gate_of(e);
    if (!g)
        return;
    pthread_mutex_destroy(&g->lock);
    pthread_cond_destroy(&g->moved);
    free(g);
    /* relaxed: inv_close, nothing runs beside it. */
    atomic_store_explicit(&e->repl_gate, NULL, memory_order_relaxed);
}

void inv_repl_acked(inv_engine *e, uint64_t end)
{
    assert(e != NULL);
    persist_repl_gate *g = e->jr ? gate_of(e) : NULL;
    if (!g)
        return;
    /* relaxed: the shipper is the only writer. */
    assert(end >= atomic_load_explicit(&g->end, memory_order_relaxed));
    pthread_mutex_lock(&g->lock);
    /* release: pairs with persist_gate_end's acquire. */
    atomic_store_explicit(&g->end, end, memory_order_release);
    pthread_cond_broadcast(&g->moved);
    pthread_mutex_unlock(&g->lock);
    journal_notify(e->jr); /* the server's held replies */
}

uint64_t inv_repl_acked_end(inv_engine *e)
{
    return e ? persist_gate_end(e) : 0;
}

/* Blocks until the record at pos is replicated (no gate: at once). The
 * journal failing does not end the wait: a record that reached the log
 * is acknowledged whatever the local disk does next, and one that never
 * does is never acknowledged (the server's shutdown grace ends it). */
static int gate_wait(inv_engine *e, uint64_t pos)
{
    assert(e != NULL);
    persist_repl_gate *g = gate_of(e);
    if (!g)
        return INV_OK;
    pthread_mutex_lock(&g->lock);
    /* relaxed: read under the lock the storer holds. */
    while (atomic_load_explicit(&g->end, memory_order_relaxed) <= pos)
        pthread_cond_wait(&g->moved, &g->lock);
    pthread_mutex_unlock(&g->lock);
    return INV_OK;
}

/* The durable position capped by the gate (records below its end). */
static uint64_t gate_cap(inv_engine *e, uint64_t durable)
{
    uint64_t end = persist_gate_end(e);
    if (end == 0)
        return durable;
    assert(end >= JOURNAL_POSITION_FIRST);
    return durable < end - 1 ? durable : end - 1;
}

int persist_ack(inv_engine *e, uint64_t pos)
{
    assert(e != NULL);
    if (!e->jr)
        return INV_OK;
    assert(persist_engine_ok(e));
    /* below what this journal handed out (callers skip 0: nothing written;
     * hold.c's retried create may acknowledge on 1, "no position") */
    assert(pos > 0 && pos < journal_tail(e->jr));
    last_write_position = pos;
    if (e->cfg.defer_durability)
        return journal_failed(e->jr) ? INV_EIO : INV_OK;
    if (e->cfg.fsync_policy != INV_FSYNC_ALWAYS)
        return journal_failed(e->jr) ? INV_EIO : gate_wait(e, pos);
    int rc = journal_wait(e->jr, pos);
    assert(rc == INV_OK || rc == INV_EIO); /* journal.h: durable, or failed first */
    return rc == INV_OK ? gate_wait(e, pos) : rc;
}

uint64_t inv_last_write_position(void)
{
    return last_write_position;
}

uint64_t inv_durable_position(inv_engine *e)
{
    if (!e || !e->jr)
        return UINT64_MAX;
    if (e->cfg.fsync_policy != INV_FSYNC_ALWAYS)
        /* interval and none acknowledge at once, as Redis's everysec does. */
        return journal_failed(e->jr) ? 0 : gate_cap(e, UINT64_MAX);
    uint64_t durable_end = journal_durable_end(e->jr);
    /* never below the first position, so the answer never wraps */
    assert(durable_end >= JOURNAL_POSITION_FIRST);
    /* durable only what was handed out (the tail is read after the end) */
    assert(durable_end <= journal_tail(e->jr));
    return gate_cap(e, durable_end - 1);
}

int inv_durable_subscribe(inv_engine *e)
{
    if (!e || !e->jr)
        return INV_EINVALID;
    assert(persist_engine_ok(e));
    int fd = journal_subscribe(e->jr);
    assert(fd >= 0 || fd == INV_ELIMIT || fd == INV_EIO); /* journal.h: nothing else */
    return fd;
}

void inv_durable_unsubscribe(inv_engine *e, int fd)
{
    if (e && e->jr) {
        assert(persist_engine_ok(e));
        journal_unsubscribe(e->jr, fd);
    }
}

int inv_durable_subscribe_fd(inv_engine *e, int fd)
{
    if (!e || !e->jr || fd < 0)
        return INV_EINVALID;
    assert(persist_engine_ok(e));
    int rc = journal_subscribe_fd(e->jr, fd);
    assert(rc == INV_OK || rc == INV_ELIMIT); /* journal.h; fd >= 0 checked */
    return rc;
}

void inv_durable_unsubscribe_fd(inv_engine *e, int fd)
{
    if (e && e->jr) {
        assert(persist_engine_ok(e));
        journal_unsubscribe_fd(e->jr, fd);
    }
}

int inv_wait_durable(inv_engine *e, uint64_t position)
{
    if (!e)
        return INV_EINVALID;
    if (!e->jr || position == 0)
        return INV_OK;
    assert(persist_engine_ok(e));
    if (e->cfg.fsync_policy != INV_FSYNC_ALWAYS)
        return journal_failed(e->jr) ? INV_EIO : gate_wait(e, position);
    int rc = journal_wait(e->jr, position);
    assert(rc == INV_OK || rc == INV_EIO); /* journal.h */
    return rc == INV_OK ? gate_wait(e, position) : rc;
}
