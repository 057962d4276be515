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
 */
#include "persist.h"

#include "journal.h"

#include <assert.h>

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
    if (e->cfg.defer_durability || e->cfg.fsync_policy != INV_FSYNC_ALWAYS)
        return journal_failed(e->jr) ? INV_EIO : INV_OK;
    int rc = journal_wait(e->jr, pos);
    assert(rc == INV_OK || rc == INV_EIO); /* journal.h: durable, or failed first */
    return rc;
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
        return journal_failed(e->jr) ? 0 : UINT64_MAX;
    uint64_t durable_end = journal_durable_end(e->jr);
    /* never below the first position, so the answer never wraps */
    assert(durable_end >= JOURNAL_POSITION_FIRST);
    /* durable only what was handed out (the tail is read after the end) */
    assert(durable_end <= journal_tail(e->jr));
    return durable_end - 1;
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
        return journal_failed(e->jr) ? INV_EIO : INV_OK;
    int rc = journal_wait(e->jr, position);
    assert(rc == INV_OK || rc == INV_EIO); /* journal.h */
    return rc;
}
