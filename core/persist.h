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

#include "fault.h"
#include "engine_state.h"
#include "journal.h"
#include "table.h"

/* Record types (journal.h: engine types start at 16). Listed here, where
 * every writer sees them; recovery.c dispatches on them. The formats
 * written (and the older ones still read) are in docs/JOURNAL.md, "Engine
 * records"; the feed (feed.c) decodes the same bytes. */
enum {
    PERSIST_LEVEL = 16, /* one level's hot word after a change, the word
                         * before and the change's meta (format 3, 48
                         * bytes; 40 and 32 still read) */
    PERSIST_ITEM = 17, /* an item record, whole, or its deletion */
    PERSIST_LOCATION = 18, /* a location record, whole */
    PERSIST_DEFAULT = 19, /* the default location, with its time (24 bytes;
                           * 16 still read) */
    PERSIST_HOLD = 20, /* a hold and the after-images of its levels, with
                        * the actor (format 2; 0 and 1 still read) */
    PERSIST_COUNTS = 21, /* a snapshot's first record: table sizes */
    PERSIST_BATCH = 22, /* a batch's changes, with time, actor and each
                         * change's kind and line (batch.c; format 1, 0
                         * still read) */
    PERSIST_LEVEL_COLD = 23, /* one level, hot word and cold part: after a
                              * change, with before and meta (format 2, 112
                              * bytes); in a snapshot, whole (format 1, 64) */
    PERSIST_IDEM = 24 /* a snapshot's remembered request id (idem.h's record) */
};

/* The meta word of a LEVEL (format 3) and a LEVEL_COLD (format 2) record:
 * what the change feed needs beside the images. Bits 0..43 time_ms (Unix
 * ms of the change; 2^44 ms is beyond the year 2500), bits 44..51 kind (an
 * inv_feed_kind), bit 52 created (the change created the level), bits
 * 53..63 zero: replay refuses a record with any of them set. */
#define PERSIST_META_TIME_BITS 44
#define PERSIST_META_TIME_MAX ((1ULL << PERSIST_META_TIME_BITS) - 1)
#define PERSIST_META_KIND_SHIFT PERSIST_META_TIME_BITS
#define PERSIST_META_KIND_MASK 0xffULL
#define PERSIST_META_CREATED (1ULL << 52)
#define PERSIST_META_ZERO (~0ULL << 53)

_Static_assert(INV_FEED_KINDS <= PERSIST_META_KIND_MASK + 1, "a feed kind fits the meta word");

/* A meta word without its time: kind and created (a constant where the
 * writer's kind is one). */
static inline uint64_t persist_meta_kind_bits(inv_feed_kind kind, bool created)
{
    return ((uint64_t)kind & PERSIST_META_KIND_MASK) << PERSIST_META_KIND_SHIFT |
           (created ? PERSIST_META_CREATED : 0);
}

/* kind_bits (persist_meta_kind_bits) with its time. A time outside 0 ..
 * PERSIST_META_TIME_MAX (a clock set wrong) is clamped into it, so the
 * record stays readable; one unsigned compare on the way of every real
 * time (a negative one is a huge unsigned value). */
static inline uint64_t persist_meta_at(uint64_t kind_bits, int64_t time_ms)
{
    uint64_t t = (uint64_t)time_ms;
    if (__builtin_expect(t > PERSIST_META_TIME_MAX, 0))
        t = time_ms < 0 ? 0 : PERSIST_META_TIME_MAX;
    return t | kind_bits;
}

static inline uint64_t persist_meta(int64_t time_ms, inv_feed_kind kind, bool created)
{
    return persist_meta_at(persist_meta_kind_bits(kind, created), time_ms);
}

static inline int64_t persist_meta_time_ms(uint64_t meta)
{
    return (int64_t)(meta & PERSIST_META_TIME_MAX);
}

static inline inv_feed_kind persist_meta_kind(uint64_t meta)
{
    return (inv_feed_kind)((meta >> PERSIST_META_KIND_SHIFT) & PERSIST_META_KIND_MASK);
}

static inline bool persist_meta_created(uint64_t meta)
{
    return (meta & PERSIST_META_CREATED) != 0;
}

/* The bit of kind k in a set of kinds (persist_meta_valid's kinds). */
#define PERSIST_KIND_BIT(k) (1u << (k))
_Static_assert(INV_FEED_KINDS <= 32, "a set of feed kinds fits a u32");

/* A meta word read from disk keeps to the layout: its zero bits clear, its
 * kind one of kinds (a set of PERSIST_KIND_BIT), created only if
 * may_create, and its seconds within a level's u32 timestamps. */
static inline bool persist_meta_valid(uint64_t meta, uint32_t kinds, bool may_create)
{
    inv_feed_kind k = persist_meta_kind(meta);
    return (meta & PERSIST_META_ZERO) == 0 && k < INV_FEED_KINDS &&
           (kinds & PERSIST_KIND_BIT(k)) != 0 && (may_create || !persist_meta_created(meta)) &&
           persist_meta_time_ms(meta) / 1000 <= UINT32_MAX;
}

/* The payload of a PERSIST_LEVEL record, format 3 (written): a change of
 * the hot word only, with the word it replaced (w0_before: 0 when the
 * change created the level) and its meta (kind LEVEL_SET, _ADJUST,
 * _DELETE or _TRACKING; the level's updated_at seconds are its time_ms /
 * 1000). */
typedef struct {
    uint64_t item, location;
    uint64_t w0, w1; /* the level word; w1 = revision, TABLE_TOMB if deleted */
    uint64_t w0_before;
    uint64_t meta;
} persist_level_image;

/* Format 2 (model 2, before the feed), still read: no before word, no
 * meta; updated_s its time in seconds. Format 1 (32 bytes, before model
 * 2): its first four words only. */
typedef struct {
    uint64_t item, location;
    uint64_t w0, w1;
    uint32_t updated_s, zero;
} persist_level_image_v2;

#define PERSIST_LEVEL_LEN ((uint32_t)sizeof(persist_level_image))
#define PERSIST_LEVEL_LEN_V2 ((uint32_t)sizeof(persist_level_image_v2))
#define PERSIST_LEVEL_LEN_V1 32u
/* The kinds a LEVEL record may carry (a set that created its level: SET
 * with created). */
#define PERSIST_LEVEL_KINDS                                                           \
    (PERSIST_KIND_BIT(INV_FEED_LEVEL_SET) | PERSIST_KIND_BIT(INV_FEED_LEVEL_ADJUST) | \
     PERSIST_KIND_BIT(INV_FEED_LEVEL_DELETE) | PERSIST_KIND_BIT(INV_FEED_LEVEL_TRACKING))

_Static_assert(PERSIST_LEVEL_LEN == 48 && PERSIST_LEVEL_LEN_V2 == 40,
               "the journal format (docs/JOURNAL.md)");

/* The cold part as journaled: committed, LOCK and MOVED are left out
 * (committed is derived at recovery: held minus the held holds' units). */
typedef struct {
    uint64_t rules; /* INACTIVE, CONTINUE, the preorder limit */
    uint64_t d_s, q_i;
    uint32_t created_s, updated_s;
} persist_cold;

/* The payload of a PERSIST_LEVEL_COLD record, format 1: one level whole,
 * as every snapshot writes it (and journal changes before the feed). */
typedef struct {
    uint64_t item, location;
    uint64_t w0, w1;
    persist_cold cold;
} persist_level_cold_image;

/* Format 2, every journal change of the cold part: format 1's payload (the
 * level after), then the level before (its hot w0 and its cold part) and
 * the meta (kind LEVEL_MOVE, _FULFIL, _RETURN, _POLICY, _ACTIVITY,
 * _DELETE or _TRANSFER; never created). The length tells the formats
 * apart. */
typedef struct {
    persist_level_cold_image after;
    uint64_t w0_before;
    persist_cold before;
    uint64_t meta;
} persist_level_cold_change;

#define PERSIST_LEVEL_COLD_LEN_V1 ((uint32_t)sizeof(persist_level_cold_image))
#define PERSIST_LEVEL_COLD_LEN ((uint32_t)sizeof(persist_level_cold_change))
#define PERSIST_LEVEL_COLD_KINDS                                                           \
    (PERSIST_KIND_BIT(INV_FEED_LEVEL_MOVE) | PERSIST_KIND_BIT(INV_FEED_LEVEL_FULFIL) |     \
     PERSIST_KIND_BIT(INV_FEED_LEVEL_RETURN) | PERSIST_KIND_BIT(INV_FEED_LEVEL_POLICY) |   \
     PERSIST_KIND_BIT(INV_FEED_LEVEL_ACTIVITY) | PERSIST_KIND_BIT(INV_FEED_LEVEL_DELETE) | \
     PERSIST_KIND_BIT(INV_FEED_LEVEL_TRANSFER))

_Static_assert(PERSIST_LEVEL_COLD_LEN_V1 == 64 && PERSIST_LEVEL_COLD_LEN == 112,
               "the journal format (docs/JOURNAL.md)");

/* Position for a record of len bytes; 0 when the journal failed. */
uint64_t persist_reserve(inv_engine *e, uint32_t len);
void persist_abandon(inv_engine *e, uint64_t pos, uint32_t len);
int persist_publish(inv_engine *e, uint64_t pos, uint8_t type, const void *payload, uint32_t len);
/* A LEVEL record (format 3) of v, which replaced w0_before. */
int persist_level(inv_engine *e, uint64_t pos, uint64_t item, uint64_t loc, table_word v,
                  uint64_t w0_before, uint64_t meta);
/* A LEVEL_COLD record (format 2); rec->after.w1 is v's whole w1 (only the
 * revision and TABLE_TOMB are written). */
int persist_level_cold(inv_engine *e, uint64_t pos, const persist_level_cold_change *rec);
/* After a successful change at pos (outside any epoch section): remembers
 * it for inv_last_write_position and, with fsync ALWAYS and no deferral,
 * waits until it is durable. */
int persist_ack(inv_engine *e, uint64_t pos);

/* ---- replication's acknowledgement gate (docs/REPLICATION.md) ---------- */

/* A promoted leader acknowledges a change only once its record is both
 * durable under the fsync policy and replicated (inv_repl_acked): the gate
 * holds the replicated end and wakes inv_wait_durable's sleepers. */
typedef struct persist_repl_gate persist_repl_gate;
/* Installs the gate with every record below start counted as replicated
 * (what the replica received from the log). Once, before writers run.
 * INV_ENOMEM. */
int persist_gate_install(inv_engine *e, uint64_t start);
/* The replicated end (0: no gate). */
uint64_t persist_gate_end(inv_engine *e);
/* The end of what readers of the journal may see (the change feed): the
 * durable end, capped by the gate's end on a promoted leader (a change
 * not replicated yet may still be taken back by a failover). */
uint64_t persist_visible_end(inv_engine *e);
/* Frees the gate (inv_close). */
void persist_gate_free(inv_engine *e);

/* Test mode (fault.h: a test arms FAULT_PERSIST_LATE_RESERVE to fail every
 * call, in a child process; nothing else may): journal positions are taken
 * at publish time instead of before the CAS. It breaks the ordering rule on
 * purpose, so a test can show it catches the breakage. Every record passes
 * the test point FAULT_PERSIST_BEFORE_PUBLISH (arg: its type) before it is
 * published (to inject a delay or a death). */
static inline bool persist_late_reserve(void)
{
    return fault_check(FAULT_PERSIST_LATE_RESERVE) != 0;
}
/* With the late mode: reaches the test point, then takes the position. */
uint64_t persist_late_position(inv_engine *e, uint8_t type, uint32_t len);

#endif /* INV_PERSIST_H */
