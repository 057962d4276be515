/*
 * recovery.c — the read side of durability, and the one module that knows
 * every record type: opening a data directory (its lock, the newest
 * snapshot, the journal replayed after it with each record handed to the
 * module that owns its type, then finishing the changes the journal shows
 * half done: batches, holds, levels of changed items), closing it, and
 * writing snapshots while writers run. persist.c is the write side.
 *
 * Replay invariants: recovery is single-threaded and runs inside one epoch
 * section; records apply in journal order (the level images prefetched
 * ahead are applied before any other record); every apply is idempotent by
 * revision, so a record replayed over a snapshot that holds it changes
 * nothing. The journal opens for writing only after the whole replay, and
 * the finishes are journaled before the engine accepts a change.
 *
 * Snapshot invariant: a snapshot taken at position S (the durable end when
 * it starts: every change below S is applied in memory) may also contain
 * changes at positions >= S; it is committed only once the journal is
 * durable up to the tail read after the scan, so every change it contains
 * has its record on disk, and replaying the journal from S over it — by
 * revision, idempotently — yields exactly a state that existed.
 */
#include "sysio.h"
#include "recovery.h"

#include "batch.h"
#include "catalog.h"
#include "clock.h"
#include "epoch.h"
#include "feed.h"
#include "fileio.h"
#include "hold.h"
#include "journal.h"
#include "level.h"
#include "level_cold.h"
#include "persist.h"
#include "snapshot.h"
#include "table.h"

#include <assert.h>
#include <inttypes.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

/* Error messages about the data directory. */
#define RECOVERY_ERR_MAX 512
#define RECOVERY_PATH_MAX 4096

/* The payload of PERSIST_COUNTS, a snapshot's first record: how many
 * entries follow, so loading sizes each table once instead of growing it. */
typedef struct {
    uint64_t levels, items, locations, holds;
} recovery_counts;

/* ---- replay --------------------------------------------------------------- */

/* Level images replayed in a window: each one's slot is prefetched when
 * it enters, and it is applied when it leaves, so the cache misses of
 * consecutive records overlap instead of queueing. */
#define REPLAY_WINDOW 16

/* A level record in the window: the hot word, and the cold part when the
 * record carried one (PERSIST_LEVEL_COLD). */
typedef struct {
    uint64_t item, location;
    table_word hot;
    uint32_t updated_s;
    bool has_cold;
    persist_cold cold;
} replay_level;

typedef struct {
    inv_engine *e;
    uint64_t records, bytes;
    bool items_replayed; /* an item record came from the journal */
    replay_level window[REPLAY_WINDOW];
    size_t window_head, window_n;
} replay_ctx;

/* A replay's state, for asserts only (O(1)): an engine, and the window of
 * level images within its ring. */
static bool replay_ctx_ok(const replay_ctx *c)
{
    return c != NULL && c->e != NULL && c->window_n <= REPLAY_WINDOW &&
           c->window_head < REPLAY_WINDOW;
}

/* Applies the oldest image of the window. */
static int window_pop(replay_ctx *c)
{
    assert(replay_ctx_ok(c));
    assert(c->window_n > 0);
    replay_level *img = &c->window[c->window_head];
    c->window_head = (c->window_head + 1) % REPLAY_WINDOW;
    c->window_n--;
    return level_install_full(c->e, img->item, img->location, img->hot, img->updated_s,
                              img->has_cold ? &img->cold : NULL);
}

/* Applies every image still in the window (before any other record, and
 * at the end: records apply in journal order). */
static int window_drain(replay_ctx *c)
{
    assert(replay_ctx_ok(c));
    int rc = INV_OK;
    while (rc == INV_OK && c->window_n)
        rc = window_pop(c);
    assert(rc != INV_OK || c->window_n == 0);
    return rc;
}

/* A payload that is one struct of size bytes: copied into dst, or false
 * when len is not its size. */
static bool payload_struct(void *dst, size_t size, const void *payload, uint32_t len)
{
    assert(dst != NULL && size > 0);
    if (len != size)
        return false;
    memcpy(dst, payload, size);
    return true;
}

/* A level image is valid when its revision is and its cold part keeps to
 * the layout (level.h): nothing read from disk is trusted. */
static bool level_image_valid(uint64_t w1, const persist_cold *cold)
{
    if ((w1 & ~(TABLE_VERSION_MAX | TABLE_TOMB)) != 0 || table_version((table_word){0, w1}) == 0)
        return false;
    return !cold || level_cold_valid(cold);
}

/* A LEVEL_COLD record: format 1 (a snapshot's level, or a journal change
 * before the feed) or format 2 (a journal change: the level before and
 * the meta follow, checked though replay needs only the level after). */
static bool read_level_cold(const void *payload, uint32_t len, replay_level *r)
{
    assert(payload != NULL && r != NULL);
    persist_level_cold_change rec;
    if (len != PERSIST_LEVEL_COLD_LEN_V1 && len != PERSIST_LEVEL_COLD_LEN)
        return false;
    memcpy(&rec, payload, len);
    if (len == PERSIST_LEVEL_COLD_LEN &&
        (!persist_meta_valid(rec.meta, PERSIST_LEVEL_COLD_KINDS, false) ||
         !level_cold_valid(&rec.before)))
        return false;
    const persist_level_cold_image *img = &rec.after;
    *r = (replay_level){img->item,           img->location, {img->w0, img->w1},
                        img->cold.updated_s, true,          img->cold};
    return level_image_valid(img->w1, &img->cold);
}

/* A LEVEL record: format 1 (32 bytes: no time), 2 (40: updated_s and a
 * zero word) or 3 (48: the word before and the meta, whose time gives
 * updated_s; a creation has no word before). */
static bool read_level(const void *payload, uint32_t len, replay_level *r)
{
    assert(payload != NULL && r != NULL);
    uint32_t updated_s = 0;
    persist_level_image img = {0};
    if (len == PERSIST_LEVEL_LEN) {
        memcpy(&img, payload, len);
        bool created = persist_meta_created(img.meta);
        if (!persist_meta_valid(img.meta, PERSIST_LEVEL_KINDS, true) ||
            (created && (persist_meta_kind(img.meta) != INV_FEED_LEVEL_SET || img.w0_before)))
            return false;
        updated_s = (uint32_t)(persist_meta_time_ms(img.meta) / 1000);
    } else if (len == PERSIST_LEVEL_LEN_V2) {
        persist_level_image_v2 v2;
        memcpy(&v2, payload, len);
        if (v2.zero)
            return false;
        memcpy(&img, &v2, PERSIST_LEVEL_LEN_V1); /* the four words both share */
        updated_s = v2.updated_s;
    } else if (len == PERSIST_LEVEL_LEN_V1) {
        memcpy(&img, payload, len);
    } else {
        return false;
    }
    *r = (replay_level){img.item, img.location, {img.w0, img.w1}, updated_s, false, {0}};
    return level_image_valid(img.w1, NULL);
}

static int apply_level(replay_ctx *c, uint8_t type, const void *payload, uint32_t len)
{
    assert(replay_ctx_ok(c));
    assert(type == PERSIST_LEVEL || type == PERSIST_LEVEL_COLD);
    replay_level r;
    if (!payload || !(type == PERSIST_LEVEL_COLD ? read_level_cold(payload, len, &r)
                                                 : read_level(payload, len, &r)))
        return INV_EINVALID;
    int rc = c->window_n == REPLAY_WINDOW ? window_pop(c) : INV_OK;
    table_prefetch(&c->e->levels, r.item, r.location);
    c->window[(c->window_head + c->window_n++) % REPLAY_WINDOW] = r;
    assert(replay_ctx_ok(c) && c->window_n > 0);
    return rc;
}

static int apply_counts(inv_engine *e, const void *payload, uint32_t len)
{
    assert(e != NULL);
    recovery_counts n;
    if (!payload_struct(&n, sizeof n, payload, len))
        return INV_EINVALID;
    int rc = table_reserve(&e->levels, (size_t)n.levels);
    if (rc == INV_OK)
        rc = table_reserve(&e->cat.items, (size_t)n.items);
    if (rc == INV_OK)
        rc = table_reserve(&e->cat.locations, (size_t)n.locations);
    if (rc == INV_OK)
        rc = table_reserve(&e->holds.by_id, (size_t)n.holds);
    return rc;
}

/* A remembered request id from a snapshot (one still inside its
 * retention; older ones are dropped by idem_install). */
static int apply_idem(inv_engine *e, const void *payload, uint32_t len)
{
    assert(e != NULL);
    idem_record_view v;
    int rc = idem_record_decode(payload, len, &v);
    if (rc == INV_OK)
        rc = idem_install(&e->idem, v.id, v.id_len, v.digest, v.decided_at_ms, v.rc, v.outcome,
                          v.outcome_len, clock_wall_ms());
    return rc;
}

static int report_bad(int rc, uint8_t type, uint64_t pos)
{
    assert(rc <= INV_OK); /* INV_OK or a negative INV_E* code */
    if (rc != INV_OK)
        fprintf(stderr, "invcore: recovery: bad record of type %u at position %llu (%s)\n", type,
                (unsigned long long)pos, inv_strerror(rc));
    return rc;
}

/* Recovery is single-threaded and runs inside one epoch section (recover). */
static int apply_record(void *ctx, uint64_t pos, uint8_t type, const void *payload, uint32_t len)
{
    replay_ctx *c = ctx;
    assert(replay_ctx_ok(c));
    c->records++;
    c->bytes += len;
    if (type == PERSIST_LEVEL || type == PERSIST_LEVEL_COLD)
        return report_bad(apply_level(c, type, payload, len), type, pos);
    int rc = window_drain(c);
    if (rc != INV_OK)
        return report_bad(rc, type, pos);
    switch (type) {
    case PERSIST_COUNTS:
        rc = apply_counts(c->e, payload, len);
        break;
    case PERSIST_ITEM:
        c->items_replayed |= pos != 0;
        rc = catalog_replay(&c->e->cat, pos, type, payload, len);
        break;
    case PERSIST_LOCATION:
    case PERSIST_DEFAULT:
        rc = catalog_replay(&c->e->cat, pos, type, payload, len);
        break;
    case PERSIST_HOLD:
        rc = hold_replay(c->e, pos, payload, len);
        break;
    case PERSIST_BATCH:
        rc = batch_replay(c->e, pos, payload, len);
        break;
    case PERSIST_IDEM:
        rc = apply_idem(c->e, payload, len);
        break;
    default:
        rc = INV_EINVALID;
    }
    return report_bad(rc, type, pos);
}

static int apply_snapshot_record(void *ctx, uint8_t type, const void *payload, uint32_t len)
{
    assert(replay_ctx_ok(ctx));
    return apply_record(ctx, 0, type, payload, len);
}

static int recover(inv_engine *e, uint64_t *end_position, uint64_t *records_end,
                   bool *items_replayed)
{
    assert(e != NULL && e->data_dir != NULL);
    assert(end_position != NULL && records_end != NULL && items_replayed != NULL);
    char err[RECOVERY_ERR_MAX] = "";
    replay_ctx c = {.e = e};
    double t0 = clock_mono_s();
    uint64_t snap_pos = 0;
    epoch_enter(); /* one section for the whole load: nothing runs beside it */
    int rc =
        snapshot_load_latest(e->data_dir, &snap_pos, apply_snapshot_record, &c, err, sizeof err);
    if (rc == INV_ENOTFOUND)
        rc = INV_OK, snap_pos = 0;
    if (rc != INV_OK) {
        epoch_exit();
        fprintf(stderr, "invcore: cannot load snapshot: %s\n", err[0] ? err : inv_strerror(rc));
        return rc;
    }
    rc = window_drain(&c);
    uint64_t snap_records = c.records;
    if (rc == INV_OK)
        rc = journal_replay_records(e->data_dir, snap_pos, e->cfg.repair, apply_record, &c,
                                    end_position, records_end, err, sizeof err);
    if (rc == INV_OK)
        rc = window_drain(&c);
    epoch_exit();
    if (rc != INV_OK) {
        fprintf(stderr, "invcore: cannot replay the journal: %s\n",
                err[0] ? err : inv_strerror(rc));
        return rc;
    }
    assert(replay_ctx_ok(&c) && c.window_n == 0);
    *items_replayed = c.items_replayed;
    /* relaxed: no other thread runs yet (the background thread starts
     * after recovery). */
    atomic_store_explicit(&e->snapshot_position, snap_pos, memory_order_relaxed);
    double secs = clock_mono_s() - t0;
    if (c.records)
        fprintf(stderr,
                "invcore: recovered %llu snapshot records and %llu journal records "
                "(%.1f MB) in %.2f s\n",
                (unsigned long long)snap_records, (unsigned long long)(c.records - snap_records),
                (double)c.bytes / 1e6, secs);
    return INV_OK;
}

/* ---- opening and closing the data directory ------------------------------- */

/* Creates the data directory durably (its parent synced: without that, a
 * power loss can take the directory and every acknowledged write in it). */
static int make_dir(const char *dir)
{
    assert(dir != NULL && dir[0] != '\0');
    if (fileio_mkdir_durable(FAULT_RECOVERY_MKDIR, dir, 0755) == 0)
        return INV_OK;
    fprintf(stderr, "invcore: cannot create data directory %s: %s\n", dir, strerror(errno));
    return INV_EIO;
}

/* Two engines appending to one journal would interleave it: the first to
 * open a directory holds an exclusive lock on it until it closes. */
static int lock_dir(inv_engine *e)
{
    assert(e != NULL && e->data_dir != NULL && e->lock_fd < 0);
    char path[RECOVERY_PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", e->data_dir, RECOVERY_LOCK_FILE) >=
        sizeof path)
        return INV_EINVALID;
    e->lock_fd = sysio_open(FAULT_RECOVERY_LOCK, path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (e->lock_fd < 0) {
        fprintf(stderr, "invcore: cannot open %s: %s\n", path, strerror(errno));
        return INV_EIO;
    }
    if (flock(e->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        fprintf(stderr, "invcore: data directory %s is in use by another engine (%s)\n",
                e->data_dir, strerror(errno));
        close(e->lock_fd);
        e->lock_fd = -1;
        return INV_EEXISTS;
    }
    assert(e->lock_fd >= 0);
    return INV_OK;
}

static int held_line_less(void *ctx, uint64_t item, uint64_t loc, int64_t qty)
{
    assert(ctx != NULL);
    int rc = level_committed_less(ctx, item, loc, qty);
    if (rc != INV_OK)
        fprintf(stderr,
                "invcore: recovery: hold lines hold more of level (%llu, %llu) than it has\n",
                (unsigned long long)item, (unsigned long long)loc);
    return rc == INV_ENOTFOUND ? INV_OK : rc;
}

/* Committed units are not journaled: a level's held units less those of
 * its HELD holds' lines are committed (level.h). Derived once every
 * change is finished, before the engine accepts any. */
static int derive_committed(inv_engine *e)
{
    assert(e != NULL && e->jr != NULL);
    epoch_enter();
    int rc = level_committed_reset(e);
    if (rc == INV_OK)
        rc = hold_foreach_held_line(e, held_line_less, e);
    epoch_exit();
    return rc;
}

/* Finishes what the journal shows half done, journaled, once the journal
 * is open for writing (items_replayed: see below). */
static int finish_changes(inv_engine *e, bool items_replayed)
{
    assert(e != NULL && e->jr != NULL);
    int rc = batch_recover_finish(e);
    if (rc == INV_OK)
        rc = hold_recover_finish(e);
    uint64_t pos = 0;
    /* A snapshot holds no level that disagrees with its item (see
     * snapshot_level): only item changes replayed from the journal can
     * have left level changes unfinished. */
    if (rc == INV_OK && items_replayed)
        rc = level_reconcile(e, &pos);
    if (rc == INV_OK && pos)
        rc = journal_wait(e->jr, pos);
    if (rc == INV_OK)
        rc = derive_committed(e);
    return rc;
}

int recovery_open(inv_engine *e)
{
    assert(e != NULL && e->cfg.data_dir != NULL);
    assert(e->jr == NULL);
    e->lock_fd = -1;
    e->data_dir = strdup(e->cfg.data_dir);
    if (!e->data_dir)
        return INV_ENOMEM;
    int rc = make_dir(e->data_dir);
    if (rc == INV_OK)
        rc = lock_dir(e);
    uint64_t end = 0, records_end = 0;
    bool items_replayed = false;
    if (rc == INV_OK)
        rc = recover(e, &end, &records_end, &items_replayed);
    if (rc == INV_OK) {
        epoch_enter();
        rc = catalog_rebuild_indexes(&e->cat);
        epoch_exit();
    }
    if (rc != INV_OK)
        return rc;
    char err[RECOVERY_ERR_MAX] = "";
    /* A replica resumes its leader's stream where its records end: the
     * positions it reserved ahead were never its own to hand out. */
    journal_config jc = {.dir = e->data_dir,
                         .start_position = e->cfg.replica ? records_end : end,
                         .policy = e->cfg.fsync_policy,
                         .fsync_interval_ms = e->cfg.fsync_interval_ms,
                         .segment_bytes = e->journal_segment_bytes};
    rc = journal_open(&e->jr, &jc, err, sizeof err);
    if (rc != INV_OK) {
        fprintf(stderr, "invcore: cannot open the journal: %s\n", err[0] ? err : inv_strerror(rc));
        e->jr = NULL;
        return rc;
    }
    assert(e->jr != NULL && e->lock_fd >= 0);
    if (e->cfg.replica) {
        /* The leader finishes what the stream shows half done, in its own
         * records; this engine does at its promotion (recovery_promote). */
        journal_set_follower(e->jr, true);
        /* relaxed: no other thread runs yet. */
        atomic_store_explicit(&e->replica, true, memory_order_relaxed);
        return INV_OK;
    }
    return finish_changes(e, items_replayed);
}

/* ---- a replica (replica.c) -------------------------------------------------- */

/* Appends the leader's record at pos (the tail) to the replica's journal. */
static int replica_append(inv_engine *e, uint64_t pos, uint8_t type, const void *payload,
                          uint32_t len)
{
    assert(e != NULL && e->jr != NULL);
    assert(type == JOURNAL_TYPE_PAD || type >= JOURNAL_TYPE_USER_MIN);
    if (journal_reserve_at(e->jr, pos, len) != pos)
        return journal_failed(e->jr) ? INV_EIO : INV_EINVALID;
    if (type == JOURNAL_TYPE_PAD)
        return journal_abandon(e->jr, pos, len);
    return journal_publish(e->jr, pos, type, payload, len);
}

int recovery_replica_apply(inv_engine *e, uint64_t first, const uint8_t *bytes, size_t len)
{
    assert(e != NULL && e->jr != NULL && bytes != NULL && len > 0);
    uint64_t tail = journal_tail(e->jr);
    if (first > tail || first % 8u != 0) {
        fprintf(stderr,
                "invcore replica: records from position %" PRIu64 " do not continue ours (%" PRIu64
                ")\n",
                first, tail);
        return INV_EINVALID;
    }
    replay_ctx c = {.e = e};
    int rc = INV_OK;
    epoch_enter(); /* the server's loops are paused: nothing runs beside it */
    for (size_t off = 0; off < len && rc == INV_OK;) {
        uint8_t type;
        const uint8_t *payload;
        uint32_t plen;
        uint64_t size;
        const char *why =
            journal_frame_decode(bytes + off, len - off, &type, &payload, &plen, &size);
        uint64_t pos = first + off;
        if (why) {
            fprintf(stderr, "invcore replica: bad record at position %" PRIu64 ": %s\n", pos, why);
            rc = INV_EINVALID;
            break;
        }
        off += size;
        if (pos + size <= tail)
            continue; /* this journal has it (a resend after a restart) */
        if (pos != tail || (type != JOURNAL_TYPE_PAD && type < JOURNAL_TYPE_USER_MIN)) {
            fprintf(stderr,
                    "invcore replica: record of type %u at %" PRIu64 " (tail %" PRIu64 ")\n", type,
                    pos, tail);
            rc = INV_EINVALID;
            break;
        }
        rc = replica_append(e, pos, type, payload, plen);
        tail = pos + size;
        if (rc == INV_OK && type >= JOURNAL_TYPE_USER_MIN)
            rc = apply_record(&c, pos, type, payload, plen);
    }
    int drained = window_drain(&c);
    if (rc == INV_OK)
        rc = drained;
    /* replay leaves the string indexes to a rebuild (catalog.c) */
    if (rc == INV_OK && c.items_replayed)
        rc = catalog_rebuild_indexes(&e->cat);
    epoch_exit();
    assert(rc != INV_OK || journal_tail(e->jr) >= first + len);
    return rc;
}

int recovery_replica_promote(inv_engine *e)
{
    assert(e != NULL && e->jr != NULL);
    /* relaxed: the promoting thread is the only one using e (paused loops) */
    assert(atomic_load_explicit(&e->replica, memory_order_relaxed));
    journal_set_follower(e->jr, false);
    epoch_enter();
    int rc = catalog_rebuild_indexes(&e->cat);
    epoch_exit();
    /* items_replayed true: the stream may have changed any item */
    if (rc == INV_OK)
        rc = finish_changes(e, true);
    if (rc == INV_OK)
        /* release: the background tick that sees it cleared sees the
         * finished state (it starts expiring holds). */
        atomic_store_explicit(&e->replica, false, memory_order_release);
    return rc;
}

int recovery_close(inv_engine *e)
{
    assert(e != NULL);
    int rc = INV_OK;
    if (e->jr)
        rc = journal_close(e->jr);
    e->jr = NULL;
    if (e->data_dir && e->lock_fd >= 0)
        close(e->lock_fd); /* releases the directory */
    e->lock_fd = -1;
    free(e->data_dir);
    e->data_dir = NULL;
    batch_recovery_free(e); /* also after a recovery that failed midway */
    assert(e->jr == NULL && e->lock_fd == -1 && e->data_dir == NULL);
    return rc;
}

/* ---- snapshots ------------------------------------------------------------ */

typedef struct {
    inv_engine *e;
    snapshot_writer *w;
} snapshot_ctx;

/* A level whose item is gone, or whose untracked flag disagrees with its
 * item, belongs to an item change whose level changes are still running:
 * the snapshot shows them finished (those changes' records, at or above
 * the snapshot's position, replay idempotently over it). */
static int snapshot_level(void *ctx, uint64_t item, uint64_t loc, table_word v, table_slot *s)
{
    assert(ctx != NULL && s != NULL);
    assert(table_is_live(v)); /* table_foreach_slot visits live levels only */
    snapshot_ctx *c = ctx;
    bool tracked = true;
    if (!catalog_item_exists(&c->e->cat, item, &tracked))
        return 0;
    uint64_t w0 = tracked ? v.w0 & ~LEVEL_UNTRACKED : v.w0 | LEVEL_UNTRACKED;
    /* format 1: a level whole (a snapshot holds states, not changes) */
    persist_level_cold_image img = {item, loc, w0, v.w1 & TABLE_VERSION_MAX, {0}};
    /* a revision replay accepts (level_image_valid: never 0) */
    assert(img.w1 != 0 && level_image_valid(img.w1, NULL));
    level_cold_image(s, &img.cold);
    return snapshot_add(c->w, PERSIST_LEVEL_COLD, &img, PERSIST_LEVEL_COLD_LEN_V1);
}

/* A table's live entries as inv_stats counts them (the count may dip below
 * zero for a moment while a creation and a deletion race). */
static uint64_t live_entries(table *t)
{
    assert(t != NULL);
    int64_t n = table_live(t);
    return n > 0 ? (uint64_t)n : 0;
}

static int snapshot_idem(void *ctx, const idem_entry *entry)
{
    assert(ctx != NULL && entry != NULL);
    uint8_t buf[IDEM_RECORD_LEN_MAX];
    size_t len = idem_record_len(entry);
    assert(len <= sizeof buf);
    idem_record_encode(entry, buf);
    return snapshot_add(ctx, PERSIST_IDEM, buf, (uint32_t)len);
}

static int snapshot_write(inv_engine *e, snapshot_writer *w)
{
    assert(e != NULL && w != NULL);
    assert(e->jr != NULL); /* only an engine with a journal writes snapshots */
    recovery_counts n = {live_entries(&e->levels), live_entries(&e->cat.items),
                         live_entries(&e->cat.locations), (uint64_t)table_live(&e->holds.by_id)};
    int rc = snapshot_add(w, PERSIST_COUNTS, &n, sizeof n);
    if (rc != INV_OK)
        return rc;
    epoch_enter();
    rc = catalog_snapshot(&e->cat, w);
    snapshot_ctx sc = {e, w};
    if (rc == INV_OK)
        rc = table_foreach_slot(&e->levels, snapshot_level, &sc);
    if (rc == INV_OK)
        rc = hold_snapshot(e, w);
    if (rc == INV_OK)
        rc = idem_foreach(&e->idem, snapshot_idem, w);
    epoch_exit();
    return rc;
}

int recovery_snapshot(inv_engine *e)
{
    assert(e != NULL);
    if (!e->jr)
        return INV_EINVALID;
    pthread_mutex_lock(&e->snapshot_lock);
    assert(e->data_dir != NULL);
    uint64_t start = journal_durable_end(e->jr);
    assert(start >= JOURNAL_POSITION_FIRST); /* snapshot_begin refuses 0 */
    snapshot_writer *w = NULL;
    int rc = snapshot_begin(&w, e->data_dir, start);
    if (rc == INV_OK)
        rc = snapshot_write(e, w);
    if (rc == INV_OK) {
        /* Every change the scan saw has a position below the tail now. */
        uint64_t tail = journal_tail(e->jr);
        rc = journal_wait(e->jr, tail - 1);
    }
    if (rc == INV_OK)
        rc = journal_sync_written(e->jr); /* those records outlive a crash */
    if (rc == INV_OK) {
        rc = snapshot_commit(w);
        w = NULL;
    }
    assert(rc != INV_OK || w == NULL); /* committed: the commit freed it */
    if (w)
        snapshot_abort(w);
    if (rc == INV_OK) {
        /* relaxed: read only by the threshold check and statistics; the
         * snapshot lock orders snapshots among themselves. */
        atomic_store_explicit(&e->snapshot_position, start, memory_order_relaxed);
        /* relaxed: statistics. */
        atomic_fetch_add_explicit(&e->snapshots, 1, memory_order_relaxed);
        /* Only what is outside history's retention (feed.h). */
        rc = feed_retention_drop(e, start);
    }
    pthread_mutex_unlock(&e->snapshot_lock);
    return rc;
}

void recovery_maybe_snapshot(inv_engine *e)
{
    assert(e != NULL);
    if (!e->jr)
        return;
    assert(e->cfg.snapshot_journal_bytes > 0); /* defaulted at open */
    /* relaxed: a threshold check. */
    uint64_t since =
        journal_tail(e->jr) - atomic_load_explicit(&e->snapshot_position, memory_order_relaxed);
    if (since > e->cfg.snapshot_journal_bytes) {
        int rc = recovery_snapshot(e);
        if (rc != INV_OK)
            fprintf(stderr, "invcore: snapshot failed: %s\n", inv_strerror(rc));
    }
}

int inv_snapshot(inv_engine *e)
{
    if (!e)
        return INV_EINVALID;
    int rc = recovery_snapshot(e);
    assert(rc <= INV_OK);
    return rc;
}
