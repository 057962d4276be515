/*
 * feed_decode.h — the change feed's decoder (private): one journal record
 * (type, payload, position) in, one inv_feed_record out. The formats are
 * docs/JOURNAL.md's; the old and the new form of every record are read.
 *
 * Pure: no files, no engine. A decoder keeps only scratch (the changes
 * array a record points into, and which hold changes are cut into partial
 * records so far, for their group). Nothing in a payload is trusted: every
 * length and count is checked against the payload's size before use, and a
 * record that breaks its layout decodes to INV_EINVALID.
 *
 * Pointers in a decoded record (ids, references, actor, request id) point
 * into the payload it was decoded from; changes into the decoder. Both stay
 * valid until the next decode with that decoder (and while the payload
 * does).
 */
#ifndef INV_FEED_DECODE_H
#define INV_FEED_DECODE_H

#include "invcore.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* feed_decode's answer for a record that is not shown in the feed: PAD,
 * snapshot types, a batch's partial or aborted records (positive: never
 * an INV_E* code). */
#define FEED_SKIP 1

/* Hold changes cut into partial records that one decoder follows at once
 * for their group (the position of the change's first record). More at
 * once (never seen: one per writer cut midway) forget the oldest, whose
 * records then show their own position as group. */
#define FEED_PARTIALS_MAX 64

/* A hold change seen partly: its id and first position. */
typedef struct {
    uint64_t first; /* 0: free */
    size_t id_len;
    char id[INV_HOLD_ID_MAX];
} feed_partial;

/* The meta word of the new formats (docs/JOURNAL.md): bits 0-43 time_ms,
 * 44-51 kind, bit 52 created, bits 53-63 zero. */
#define FEED_META_TIME_BITS 44
#define FEED_META_KIND_SHIFT 44
#define FEED_META_KIND_MASK 0xffULL
#define FEED_META_CREATED (1ULL << 52)
#define FEED_META_ZERO_MASK (~0ULL << 53)

static inline uint64_t feed_meta(int64_t time_ms, inv_feed_kind kind, bool created)
{
    return ((uint64_t)time_ms & ((1ULL << FEED_META_TIME_BITS) - 1)) |
           ((uint64_t)kind << FEED_META_KIND_SHIFT) | (created ? FEED_META_CREATED : 0);
}

/* A batch line's note: its reason and reference (into the payload). */
typedef struct {
    uint8_t reason;
    uint16_t ref_len;
    const char *ref;
} feed_note;

typedef struct {
    inv_feed_change *changes; /* cap entries */
    uint8_t *claimed; /* cap entries: a batch's change given to a hold line */
    uint32_t *last_image; /* cap entries: a batch slot's last image */
    size_t cap;
    feed_note notes[INV_BATCH_LINES_MAX]; /* a batch's notes by line */
    feed_partial partials[FEED_PARTIALS_MAX];
    size_t partials_next; /* the slot a new partial change takes */
} feed_decoder;

void feed_decoder_init(feed_decoder *d);
void feed_decoder_free(feed_decoder *d);

/* Decodes the record of the given type at pos. INV_OK: *rec is a feed
 * record; FEED_SKIP: nothing to show; INV_EINVALID: a malformed payload;
 * INV_ENOMEM. */
int feed_decode(feed_decoder *d, uint64_t pos, uint8_t type, const uint8_t *payload, uint32_t len,
                inv_feed_record *rec);

/* Is this a feed record type at all (the engine's change records)? A
 * cheap filter before decoding. */
bool feed_type_shown(uint8_t type);

#endif /* INV_FEED_DECODE_H */
