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

static __thread uint64_t last_write_position;

/* ---- writing ------------------------------------------------------------ */

uint64_t persist_reserve(inv_engine *e, uint32_t len)
{
    assert(e != NULL && e->jr != NULL);
    return journal_reserve(e->jr, len);
}

void persist_abandon(inv_engine *e, uint64_t pos, uint32_t len)
{
    assert(e != NULL && e->jr != NULL);
    assert(pos >= JOURNAL_POSITION_FIRST && pos % 8u == 0);
    (void)journal_abandon(e->jr, pos, len);
}

int persist_publish(inv_engine *e, uint64_t pos, uint8_t type, const void *payload, uint32_t len)
{
    assert(e != NULL && e->jr != NULL);
    assert(payload != NULL || len == 0);
    /* With late reservation the point was reached before the position was
     * taken (persist_late_position). */
    if (!persist_late_reserve())
        (void)fault_check_arg(FAULT_PERSIST_BEFORE_PUBLISH, type, 0);
    return journal_publish(e->jr, pos, type, payload, len);
}

uint64_t persist_late_position(inv_engine *e, uint8_t type, uint32_t len)
{
    assert(e != NULL && e->jr != NULL);
    /* after the CAS, before a position */
    (void)fault_check_arg(FAULT_PERSIST_BEFORE_PUBLISH, type, 0);
    return persist_reserve(e, len);
}

int persist_level(inv_engine *e, uint64_t pos, uint64_t item, uint64_t loc, table_word v,
                  uint64_t w0_before, uint64_t meta)
{
    assert(e != NULL && e->jr != NULL);
    assert(pos >= JOURNAL_POSITION_FIRST);
    persist_level_image img = {item,      loc, v.w0, v.w1 & (TABLE_VERSION_MAX | TABLE_TOMB),
                               w0_before, meta};
    return persist_publish(e, pos, PERSIST_LEVEL, &img, sizeof img);
}

int persist_level_cold(inv_engine *e, uint64_t pos, const persist_level_cold_change *rec)
{
    assert(e != NULL && e->jr != NULL);
    assert(rec != NULL && pos >= JOURNAL_POSITION_FIRST);
    persist_level_cold_change img = *rec;
    img.after.w1 &= TABLE_VERSION_MAX | TABLE_TOMB; /* the table's other bits stay in memory */
    return persist_publish(e, pos, PERSIST_LEVEL_COLD, &img, sizeof img);
}

int persist_ack(inv_engine *e, uint64_t pos)
{
    assert(e != NULL);
    if (!e->jr)
        return INV_OK;
    last_write_position = pos;
    if (e->cfg.defer_durability || e->cfg.fsync_policy != INV_FSYNC_ALWAYS)
        return journal_failed(e->jr) ? INV_EIO : INV_OK;
    return journal_wait(e->jr, pos);
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
    return journal_durable_end(e->jr) - 1;
}

int inv_durable_subscribe(inv_engine *e)
{
    if (!e || !e->jr)
        return INV_EINVALID;
    return journal_subscribe(e->jr);
}

void inv_durable_unsubscribe(inv_engine *e, int fd)
{
    if (e && e->jr)
        journal_unsubscribe(e->jr, fd);
}

int inv_durable_subscribe_fd(inv_engine *e, int fd)
{
    if (!e || !e->jr || fd < 0)
        return INV_EINVALID;
    return journal_subscribe_fd(e->jr, fd);
}

void inv_durable_unsubscribe_fd(inv_engine *e, int fd)
{
    if (e && e->jr)
        journal_unsubscribe_fd(e->jr, fd);
}

int inv_wait_durable(inv_engine *e, uint64_t position)
{
    if (!e)
        return INV_EINVALID;
    if (!e->jr || position == 0)
        return INV_OK;
    if (e->cfg.fsync_policy != INV_FSYNC_ALWAYS)
        return journal_failed(e->jr) ? INV_EIO : INV_OK;
    return journal_wait(e->jr, position);
}
