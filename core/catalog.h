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

#include "engine_state.h"
#include "invcore.h"
#include "snapshot.h"
#include "table.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* The catalog's tables (struct catalog) and its level hooks
 * (catalog_level_hooks) are laid out in engine_state.h. */

int catalog_init(catalog *c, const inv_config *cfg, const void *owner);
/* Registers the level hooks (copied); before the catalog is shared. */
void catalog_set_level_hooks(catalog *c, const catalog_level_hooks *hooks);
/* Frees every record; only when no other thread uses the catalog. */
void catalog_destroy(catalog *c);

/* Inside an epoch section: does the item exist, and is it tracked? */
bool catalog_item_exists(catalog *c, uint64_t item, bool *tracked);
bool catalog_location_exists(catalog *c, uint64_t loc);
/* Does loc exist and is it active? */
bool catalog_location_active(catalog *c, uint64_t loc);
/* Calls fn for every item (O(items); a location's activity change). */
int catalog_foreach_item(catalog *c, int (*fn)(void *ctx, uint64_t item), void *ctx);

/* Calls fn for every location id (in id order, though callers should not
 * rely on it); stops at a nonzero return. */
int catalog_foreach_location(catalog *c, int (*fn)(void *ctx, uint64_t loc), void *ctx);

/* Inside an epoch section: the default location (false: none yet). */
bool catalog_default_location(catalog *c, uint64_t *loc);

/* ---- durability (persist.h writes, recovery.c replays) -------------------
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
