/*
 * persist.h — the write side of durability (private): what a change writes
 * to the journal, and its acknowledgement. It knows only the journal and
 * the engine struct; recovery.c reads the records back (and alone knows
 * how each type is applied).
 *
 * Ordering rule (DESIGN.md): a change reserves its journal position before
 * its CAS and stamps it on every level it touches as the new revision. A
 * change that finds a level revision above its own position abandons the
 * reservation (a PAD record) and reserves again. So a record always stands
 * after every record whose effect it builds on, and the durable prefix of
 * the journal is always a state that really existed, whole.
 *
 * A multi-level change (a hold) that must re-reserve midway first publishes
 * what it did so far as a partial record; recovery finishes such a change
 * (a create is aborted, an end is completed) and journals the finish.
 */
#ifndef INV_PERSIST_H
#define INV_PERSIST_H

#include "engine_state.h"
#include "journal.h"
#include "table.h"

/* Record types (journal.h: engine types start at 16). Listed here, where
 * every writer sees them; recovery.c dispatches on them. */
enum {
    PERSIST_LEVEL = 16, /* one level's after-image */
    PERSIST_ITEM = 17, /* an item record, whole, or its deletion */
    PERSIST_LOCATION = 18, /* a location record, whole */
    PERSIST_DEFAULT = 19, /* the default location */
    PERSIST_HOLD = 20, /* a hold and the after-images of its levels */
    PERSIST_COUNTS = 21, /* a snapshot's first record: table sizes */
    PERSIST_BATCH = 22, /* a batch's changes (batch.c) */
    PERSIST_LEVEL_COLD = 23, /* one level's after-image, hot word and cold part */
    PERSIST_IDEM = 24 /* a snapshot's remembered request id (idem.h's record) */
};

/* The payload of a PERSIST_LEVEL record: a change of the hot word only.
 * Format 1 (32 bytes, before model 2) lacks updated_s. */
typedef struct {
    uint64_t item, location;
    uint64_t w0, w1; /* the level word; w1 = revision, TABLE_TOMB if deleted */
    uint32_t updated_s, zero;
} persist_level_image;

#define PERSIST_LEVEL_LEN ((uint32_t)sizeof(persist_level_image))
#define PERSIST_LEVEL_LEN_V1 32u

/* The cold part as journaled: committed, LOCK and MOVED are left out
 * (committed is derived at recovery: held minus the held holds' units). */
typedef struct {
    uint64_t rules; /* INACTIVE, CONTINUE, the preorder limit */
    uint64_t d_s, q_i;
    uint32_t created_s, updated_s;
} persist_cold;

/* The payload of a PERSIST_LEVEL_COLD record (every change of the cold
 * part, and every level of a snapshot). */
typedef struct {
    uint64_t item, location;
    uint64_t w0, w1;
    persist_cold cold;
} persist_level_cold_image;

#define PERSIST_LEVEL_COLD_LEN ((uint32_t)sizeof(persist_level_cold_image))

/* Position for a record of len bytes; 0 when the journal failed. */
uint64_t persist_reserve(inv_engine *e, uint32_t len);
void persist_abandon(inv_engine *e, uint64_t pos, uint32_t len);
int persist_publish(inv_engine *e, uint64_t pos, uint8_t type, const void *payload, uint32_t len);
int persist_level(inv_engine *e, uint64_t pos, uint64_t item, uint64_t loc, table_word v,
                  uint32_t updated_s);
int persist_level_cold(inv_engine *e, uint64_t pos, uint64_t item, uint64_t loc, table_word v,
                       const persist_cold *cold);
/* After a successful change at pos (outside any epoch section): remembers
 * it for inv_last_write_position and, with fsync ALWAYS and no deferral,
 * waits until it is durable. */
int persist_ack(inv_engine *e, uint64_t pos);

/* Test-only switches (tests/test_crash.c sets them in a child process;
 * nothing else may). late_reserve takes journal positions at publish time
 * instead of before the CAS — it breaks the ordering rule on purpose, so a
 * test can show it catches the breakage. before_publish runs before every
 * record is published (to inject a delay). */
extern bool persist_test_late_reserve;
extern void (*persist_test_before_publish)(uint8_t type);
/* With late_reserve: runs the hook, then takes the position. */
uint64_t persist_test_late_position(inv_engine *e, uint8_t type, uint32_t len);

#endif /* INV_PERSIST_H */
