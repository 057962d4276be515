/*
 * feed_json.h — one change-feed record (inv_feed_record) as one JSON
 * object, for the webhook sender (an array of records per POST) and the
 * command-line reader invcore-feed (one object per line). The generator is
 * yajl's (Debian libyajl-dev): a streaming writer into one growing buffer,
 * no document tree, so a record costs no allocation once the buffer has
 * grown (bench/bench_webhook.c "json" measures it against jansson).
 *
 * The object (docs/PROTOCOL.md "Webhooks" has the full schema):
 *   {"position":N,"group":N,"time_ms":N,"kind":"level.adjust",
 *    "item":null,"location":null,"hold_id":null,"request_id":null,
 *    "actor":null,"deleted":false,"changes":[{"kind":..,"item":"123",
 *    "location":"7","revision":N,"deltas":{"available":-2},
 *    "after":{"available":8},"created":false,"deleted":false,
 *    "reason":null,"ref":null,"hold_id":null}]}
 * Ids (item, location) are decimal strings: 64-bit values stay exact in
 * every JSON reader. A record's own item / location are set for the
 * kinds "item" / "location", "default_location" (null otherwise: a level
 * change names its level in changes[]). Positions, revisions and
 * quantities are numbers.
 *
 * Byte strings (hold ids, request ids, refs, actors) are bytes, not text:
 * a valid UTF-8 sequence is written as itself; every other byte b >= 0x80
 * is written as the code point U+00bb (as if Latin-1: JSON "\u00bb"
 * semantics); control characters are escaped (\n, \u001f, ...). The output
 * is always valid UTF-8 JSON. A consumer that needs the exact bytes back
 * sees them exactly when the string was ASCII or UTF-8.
 *
 * A feed_json is used by one thread at a time; nothing here is shared.
 */
#ifndef INV_SERVER_FEED_JSON_H
#define INV_SERVER_FEED_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include "invcore.h"

/* Longest byte string of a record (INV_REF_MAX is the largest of the
 * engine's limits; a longer one is a corrupt record: INV_EINVALID). */
#define FEED_JSON_STRING_MAX 1024u
/* Largest document: a batch record of INV_BATCH_LINES_MAX changes is far
 * below it; beyond it feed_json_add fails with INV_ELIMIT. */
#define FEED_JSON_DOC_MAX (256u << 20)

typedef struct feed_json feed_json;

/* NULL when out of memory. */
feed_json *feed_json_new(void);
void feed_json_free(feed_json *j);
/* Starts a new document in an empty buffer: a JSON array of records when
 * array (feed_json_add appends elements), else a single record. */
void feed_json_begin(feed_json *j, bool array);
/* Appends one record. INV_OK; INV_EINVALID when it cannot be written (a
 * string longer than FEED_JSON_STRING_MAX, a kind without a name, a second
 * record in a single-record document): nothing was added, the document
 * goes on. INV_ELIMIT (the document would pass FEED_JSON_DOC_MAX) or
 * INV_ENOMEM: the document is unusable until the next feed_json_begin. */
int feed_json_add(feed_json *j, const inv_feed_record *r);
/* Bytes generated so far (an array is still open). */
size_t feed_json_len(const feed_json *j);
/* Closes the array (if any) and returns the document: valid until the
 * next begin or free. Not NUL-terminated. INV_OK or INV_EINVALID (a
 * single-record document with no record, or a failed add). */
int feed_json_end(feed_json *j, const char **buf, size_t *len);

#endif /* INV_SERVER_FEED_JSON_H */
