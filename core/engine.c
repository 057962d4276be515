/*
 * engine.c — the top of the engine: opening and closing an engine,
 * statistics, and the background work (hold expiry, memory reclamation,
 * finishing growth, snapshots): one thread per engine, or, for a tenant
 * engine (engine_tuning.no_background), engine_background_tick called by
 * the tenant set's one thread. Durability is recovery.c's (a data
 * directory) and persist.c's (writing); engine.c only calls recovery.
 *
 * Invariant: every public entry point runs inside one epoch section, so
 * memory retired by a concurrent change is never freed under it.
 */
#include "alloc.h"
#include "engine.h"

#include "catalog.h"
#include "clock.h"
#include "epoch.h"
#include "feed.h"
#include "hold.h"
#include "journal.h"
#include "level.h"
#include "recovery.h"
#include "replica.h"
#include "table.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Background period when no hold sweep interval is configured tighter. */
#define ENGINE_BACKGROUND_MS_MAX 50

/* Asserts only: a configuration as engine_open_tuned leaves it once it
 * accepted it (a known fsync policy, every 0 "default" replaced). */
static bool engine_config_ok(const inv_config *c)
{
    return c->fsync_policy <= INV_FSYNC_NONE && c->fsync_interval_ms > 0 &&
           c->fsync_interval_ms <= JOURNAL_FSYNC_INTERVAL_MS_MAX && c->sweep_interval_ms > 0 &&
           c->snapshot_journal_bytes > 0 && c->history_retention_ms > 0;
}

/* Asserts only: an engine open() set up whole: its configuration accepted,
 * its journal open exactly when it has a data directory (recovery_open),
 * the directory's copy taken by recovery (cfg keeps no caller pointer). */
static bool engine_ok(const inv_engine *e)
{
    return e != NULL && engine_config_ok(&e->cfg) && (e->jr != NULL) == (e->data_dir != NULL) &&
           e->cfg.data_dir == NULL;
}

uint32_t engine_background_period_ms(const inv_engine *e)
{
    assert(e != NULL && e->cfg.sweep_interval_ms > 0); /* defaulted at open */
    uint32_t period_ms = e->cfg.sweep_interval_ms;
    period_ms = period_ms > ENGINE_BACKGROUND_MS_MAX ? ENGINE_BACKGROUND_MS_MAX : period_ms;
    assert(period_ms > 0 && period_ms <= ENGINE_BACKGROUND_MS_MAX);
    return period_ms;
}

void engine_background_tick(inv_engine *e, int64_t now_ms)
{
    assert(engine_ok(e) && now_ms > 0);
    assert(now_ms / 1000 <= UINT32_MAX); /* e->now_s's u32 seconds never wrap (until 2106) */
    /* relaxed: a timestamp (engine_now_s). */
    atomic_store_explicit(&e->now_s, (uint32_t)(now_ms / 1000), memory_order_relaxed);
    /* acquire: pairs with the promotion's release (recovery.c). A replica
     * changes nothing by itself (its leader's stream expires holds, and
     * its applier runs alone: docs/REPLICATION.md). */
    if (atomic_load_explicit(&e->replica, memory_order_acquire))
        return;
    epoch_enter();
    hold_expire_due(e, now_ms);
    (void)idem_expire(&e->idem, now_ms);
    table_finish_growth(&e->levels);
    epoch_exit();
    assert(engine_background_period_ms(e) <= ENGINE_BACKGROUND_MS_MAX);
    recovery_maybe_snapshot(e);
}

static void *background_main(void *arg)
{
    inv_engine *e = arg;
    uint32_t period_ms = engine_background_period_ms(e);
    assert(period_ms > 0 && period_ms <= ENGINE_BACKGROUND_MS_MAX);
    /* acquire: pairs with the release in inv_close. */
    while (!atomic_load_explicit(&e->stopping, memory_order_acquire)) {
        engine_background_tick(e, clock_wall_ms());
        epoch_reclaim();
        clock_sleep_ms(period_ms);
    }
    /* the thread started only for a whole engine, and inv_close joins it
     * before tearing anything down */
    assert(engine_ok(e));
    return NULL;
}

int inv_open(inv_engine **out, const inv_config *cfg)
{
    int rc = engine_open_tuned(out, cfg, NULL);
    /* an engine exactly on success (out NULL: INV_EINVALID) */
    assert(rc == INV_OK ? out && engine_ok(*out) : !out || *out == NULL);
    return rc;
}

int engine_open_tuned(inv_engine **out, const inv_config *cfg, const engine_tuning *tuning)
{
    if (!out)
        return INV_EINVALID;
    *out = NULL;
    inv_config c = cfg ? *cfg : (inv_config){0};
    if (c.fsync_policy > INV_FSYNC_NONE || c.fsync_interval_ms > JOURNAL_FSYNC_INTERVAL_MS_MAX ||
        (c.replica && !c.data_dir))
        return INV_EINVALID;
    if (c.sweep_interval_ms == 0)
        c.sweep_interval_ms = INV_SWEEP_INTERVAL_MS_DEFAULT;
    if (c.fsync_interval_ms == 0)
        c.fsync_interval_ms = INV_FSYNC_INTERVAL_MS_DEFAULT;
    if (c.snapshot_journal_bytes == 0)
        c.snapshot_journal_bytes = INV_SNAPSHOT_BYTES_DEFAULT;
    if (c.history_retention_ms == 0)
        c.history_retention_ms = INV_HISTORY_RETENTION_MS_DEFAULT;
    assert(engine_config_ok(&c));
    inv_engine *e = inv_calloc(1, sizeof *e);
    if (!e)
        return INV_ENOMEM;
    e->cfg = c;
    e->cfg.data_dir = NULL; /* recovery_open keeps its own copy */
    e->journal_segment_bytes = tuning ? tuning->journal_segment_bytes : 0;
    pthread_mutex_init(&e->snapshot_lock, NULL);
    atomic_init(&e->now_s, (uint32_t)clock_wall_s());
    int rc =
        table_init_extra(&e->levels, c.levels_capacity, e, sizeof(level_cold), level_move_cold);
    if (rc == INV_OK) {
        /* a lock set's claimed, never-written level survives growth */
        table_keep_unlive(&e->levels, level_cold_keep_unlive);
        rc = catalog_init(&e->cat, &c, e);
        if (rc != INV_OK)
            table_destroy(&e->levels);
    }
    if (rc == INV_OK) {
        /* Levels sit above the catalog: it reaches them only through these. */
        static const catalog_level_hooks level_hooks = {level_drop_item, level_mark_tracked,
                                                        level_item_reserved, level_read,
                                                        level_mark_location};
        catalog_set_level_hooks(&e->cat, &level_hooks);
    }
    if (rc == INV_OK) {
        rc = hold_init(e);
        if (rc != INV_OK) {
            catalog_destroy(&e->cat);
            table_destroy(&e->levels);
        }
    }
    if (rc == INV_OK) {
        rc = idem_init(&e->idem, 0, c.request_id_retention_ms, c.request_ids_max, e);
        if (rc != INV_OK) {
            hold_destroy(e);
            catalog_destroy(&e->cat);
            table_destroy(&e->levels);
        }
    }
    if (rc != INV_OK) {
        pthread_mutex_destroy(&e->snapshot_lock);
        free(e);
        assert(*out == NULL); /* a caller never gets a half-built engine */
        return rc;
    }
    if (c.data_dir) {
        e->cfg.data_dir = c.data_dir;
        rc = recovery_open(e);
        e->cfg.data_dir = NULL;
        assert(rc != INV_OK || (e->jr != NULL && e->data_dir != NULL));
        if (rc == INV_OK)
            rc = feed_init(e);
        if (rc != INV_OK) {
            inv_close(e);
            assert(*out == NULL);
            return rc;
        }
    }
    /* A tenant set ticks its engines from one thread of its own. */
    if (tuning && tuning->no_background) {
        assert(engine_ok(e));
        *out = e;
        return INV_OK;
    }
    if (pthread_create(&e->background, NULL, background_main, e) != 0) {
        inv_close(e);
        return INV_ENOMEM;
    }
    assert(engine_ok(e));
    e->background_started = true;
    *out = e;
    return INV_OK;
}

void inv_close(inv_engine *e)
{
    if (!e)
        return;
    /* whole, or half opened: engine_open_tuned closes a failed recovery
     * with the configuration already accepted */
    assert(engine_config_ok(&e->cfg));
    /* release: the background thread sees the stop after our last change. */
    atomic_store_explicit(&e->stopping, 1, memory_order_release);
    if (e->background_started)
        pthread_join(e->background, NULL);
    feed_destroy(e);
    (void)recovery_close(e); /* also frees what batch recovery kept */
    replica_free(e); /* after the journal, whose writer calls its tap */
    hold_destroy(e);
    idem_destroy(&e->idem);
    catalog_destroy(&e->cat);
    table_destroy(&e->levels);
    epoch_drain_owner(e);
    pthread_mutex_destroy(&e->snapshot_lock);
    assert(e->jr == NULL && e->data_dir == NULL); /* recovery_close ran */
    free(e);
}

/* No epoch section: they touch only the journal's wake-up state, which
 * lives as long as e. */
void inv_defer_journal_begin(inv_engine *e)
{
    if (e && e->jr) {
        assert(engine_ok(e));
        journal_defer_begin(e->jr);
    }
}

void inv_defer_journal_end(inv_engine *e)
{
    if (e == NULL) {
        journal_defer_end_current();
    } else if (e->jr) {
        assert(engine_ok(e));
        journal_defer_end(e->jr);
    }
}

void inv_quiesce(inv_engine *e)
{
    (void)e;
    assert(e == NULL || engine_ok(e)); /* an engine open() set up */
    epoch_reclaim();
}

int inv_stats_get(inv_engine *e, inv_stats *out)
{
    if (!e || !out)
        return INV_EINVALID;
    assert(engine_ok(e));
    memset(out, 0, sizeof *out);
    epoch_enter();
    int64_t levels = table_live(&e->levels);
    int64_t items = table_live(&e->cat.items);
    int64_t locations = table_live(&e->cat.locations);
    out->levels = levels > 0 ? (uint64_t)levels : 0;
    out->items = items > 0 ? (uint64_t)items : 0;
    out->locations = locations > 0 ? (uint64_t)locations : 0;
    out->table_bytes = table_bytes(&e->levels) + table_bytes(&e->cat.items) +
                       table_bytes(&e->cat.locations) + table_bytes(&e->cat.skus) +
                       table_bytes(&e->cat.variants) + table_bytes(&e->cat.products) +
                       table_bytes(&e->holds.by_id) + table_bytes(&e->holds.by_buyer) +
                       table_bytes(&e->idem.by_id);
    assert(out->table_bytes >= 9 * sizeof(table)); /* each counts its header */
    out->table_resizes = atomic_load_explicit(&e->levels.resizes, memory_order_relaxed) +
                         atomic_load_explicit(&e->cat.items.resizes, memory_order_relaxed);
    hold_stats(e, out);
    idem_counters ic;
    idem_stats(&e->idem, &ic);
    out->request_ids = ic.remembered;
    out->request_id_hits = ic.hits;
    out->request_id_conflicts = ic.conflicts;
    out->request_ids_expired = ic.expired;
    out->request_ids_forgotten_early = ic.forgotten_early;
    epoch_exit();
    if (e->jr) {
        journal_stats js;
        journal_stats_get(e->jr, &js);
        out->journal_position = js.tail;
        assert(js.tail >= JOURNAL_POSITION_FIRST); /* positions start there */
        out->durable_position = js.durable_end;
        /* relaxed: statistics. */
        out->journal_bytes =
            js.tail - atomic_load_explicit(&e->snapshot_position, memory_order_relaxed);
        out->fsyncs = js.fsyncs;
        out->records_written = js.records;
        out->snapshots = atomic_load_explicit(&e->snapshots, memory_order_relaxed);
        out->snapshot_position = atomic_load_explicit(&e->snapshot_position, memory_order_relaxed);
        out->journal_failed = js.failed;
        feed_stats(e, out);
    }
    assert(out->durable_position <= out->journal_position || e->jr == NULL);
    return INV_OK;
}
