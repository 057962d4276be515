/*
 * catalog.h — locations and inventory items, with their SKU, variant and
 * product indexes (private to the engine).
 *
 * Records are immutable and copy-on-write: a change builds a new record and
 * swaps the pointer held in the table slot by one CAS; the old record is
 * retired through the epoch. Readers take no lock. Every function here runs
 * inside an epoch critical section entered by its caller (the public
 * inv_* entry points in catalog.c enter it themselves).
 *
 * Writers of one item (put, delete) are serialised by a striped mutex taken
 * outside the epoch section: an item change touches up to four entries
 * (record, SKU, variant, product) and the stripe makes that group change
 * appear whole to other writers of the same item. Readers, level code and
 * writers of other items never wait on it (catalog.c explains why).
 *
 * Levels sit above the catalog: level code calls catalog_item_exists and
 * catalog_foreach_location, and the catalog reaches levels only through the
 * hooks below, registered by engine.c (catalog.c never includes level.h).
 * Record formats and payloads: catalog_record.h.
 */
#ifndef INV_CATALOG_H
#define INV_CATALOG_H

#include "invcore.h"
#include "snapshot.h"
#include "table.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Item writer stripes (a power of two): writers of different items rarely
 * share one. */
#define CATALOG_WRITE_STRIPES 256

/* The set of location ids, sorted, immutable once published (COW). */
typedef struct catalog_locs {
    size_t n;
    uint64_t ids[];
} catalog_locs;

/* ---- levels, above the catalog --------------------------------------------
 * What an item change needs from its levels. engine.c registers these right
 * after catalog_init, before any other thread can use the engine; all four
 * must be set. Contract for each:
 *  - it runs inside the caller's epoch section; drop_item, mark_tracked and
 *    item_reserved also run inside the item's writer stripe, so they must
 *    not take it (nor call inv_item_put / inv_item_del); they may read the
 *    catalog (catalog_item_exists, catalog_foreach_location);
 *  - the two that write levels journal each change themselves and return
 *    the highest journal position they wrote (0: none, or memory mode); the
 *    catalog acknowledges its own change only once that position is
 *    durable too.
 */
typedef struct catalog_level_hooks {
    /* item's record is already a tombstone: delete every level of item. */
    uint64_t (*drop_item)(inv_engine *e, uint64_t item);
    /* item's tracked flag has just changed (to tracked): every level of
     * item follows it. */
    uint64_t (*mark_tracked)(inv_engine *e, uint64_t item, bool tracked);
    /* Does any level of item hold units reserved by live holds? Asked after
     * the item's tombstone is in place (a hold reserving later backs out). */
    bool (*item_reserved)(inv_engine *e, uint64_t item);
    /* Reads one level: INV_OK with *out, or INV_ENOTFOUND (none). A read,
     * changes nothing. */
    int (*read_level)(inv_engine *e, uint64_t item, uint64_t loc, inv_level *out);
} catalog_level_hooks;

typedef struct catalog {
    table items;     /* (item id, 0) -> item record pointer */
    table locations; /* (location id, 0) -> location record pointer */
    table skus;      /* 128-bit hash of the SKU -> item id */
    table variants;  /* 128-bit hash of the variant -> item id */
    table products;  /* 128-bit hash of the product -> product record */
    /* The default location: w0 = id, w1 = version (0: none yet), changed
     * only by table_cas so id and "is set" change together. */
    table_slot default_location;
    /* Every location id ever created (sorted COW array, NULL: none). */
    _Atomic(catalog_locs *) location_ids;
    uint64_t index_seed;   /* seed of the string index hashes */
    const void *owner;     /* epoch_retire tag */
    pthread_mutex_t write_locks[CATALOG_WRITE_STRIPES];
    catalog_level_hooks level; /* set once by catalog_set_level_hooks */
} catalog;

int catalog_init(catalog *c, const inv_config *cfg, const void *owner);
/* Registers the level hooks (copied); before the catalog is shared. */
void catalog_set_level_hooks(catalog *c, const catalog_level_hooks *hooks);
/* Frees every record; only when no other thread uses the catalog. */
void catalog_destroy(catalog *c);

/* Inside an epoch section: does the item exist, and is it tracked? */
bool catalog_item_exists(catalog *c, uint64_t item, bool *tracked);
bool catalog_location_exists(catalog *c, uint64_t loc);

/* Calls fn for every location id (in id order, though callers should not
 * rely on it); stops at a nonzero return. */
int catalog_foreach_location(catalog *c, int (*fn)(void *ctx, uint64_t loc), void *ctx);

/* Inside an epoch section: the default location (false: none yet). */
bool catalog_default_location(catalog *c, uint64_t *loc);

/* ---- durability (persist.c) ---------------------------------------------
 * With a journal, a catalog change reserves its journal position before its
 * CAS and stores it as the record's version (w1), as levels do; the record
 * (PERSIST_ITEM, PERSIST_LOCATION, PERSIST_DEFAULT, payloads described in
 * catalog_record.h) carries that version, and replay installs a record only when
 * its version is above the one loaded, so snapshot + journal replay is
 * idempotent. Replay does not touch the SKU / variant / product indexes:
 * catalog_rebuild_indexes builds them once at the end. */

/* Applies one record (pos: its journal position, 0 from a snapshot).
 * Inside an epoch section, single-threaded recovery. */
int catalog_replay(catalog *c, uint64_t pos, uint8_t type, const void *payload, uint32_t len);
/* After replay: the indexes from the item records. INV_EEXISTS if two
 * items hold one SKU or variant (a corrupt data directory). */
int catalog_rebuild_indexes(catalog *c);
/* Writes every location, item and the default location to w. Inside an
 * epoch section; writers may run. */
int catalog_snapshot(catalog *c, snapshot_writer *w);

#endif /* INV_CATALOG_H */
