/*
 * snapshot.h — checkpoint files: a stream of typed records (the journal's
 * framing) taken at a journal position, written to a temp file, then
 * committed by fsync + rename + directory fsync. Recovery loads the newest
 * complete, valid snapshot and replays the journal from its position.
 * Format: docs/JOURNAL.md. A writer is used by one thread at a time.
 */
#ifndef INV_SNAPSHOT_H
#define INV_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "invcore.h"

/* Snapshot file header: magic[8], u32 version, u32 zero, u64 position,
 * u64 xxh3 of the 24 bytes before it. */
#define SNAPSHOT_HEADER 32u
#define SNAPSHOT_FORMAT_VERSION 1u
/* Bytes buffered before a write(2). */
#define SNAPSHOT_BUFFER_BYTES (1u << 20)
/* The trailer record's payload: u64 record count, u64 digest. */
#define SNAPSHOT_TRAILER_PAYLOAD 16u

typedef struct snapshot_writer snapshot_writer;

/* Opens a temp file in dir (created if missing) for a snapshot at journal
 * position (>= 1). */
int snapshot_begin(snapshot_writer **out, const char *dir, uint64_t position);
/* Appends one record (type >= JOURNAL_TYPE_USER_MIN, len <=
 * JOURNAL_PAYLOAD_MAX). INV_EIO once a write failed (the writer stays
 * failed; commit refuses). */
int snapshot_add(snapshot_writer *w, uint8_t type, const void *payload, uint32_t len);
/* Writes the trailer, fsyncs, renames to the final name, fsyncs the
 * directory, then deletes older snapshots. Frees w in every case (on error
 * the temp file is removed). */
int snapshot_commit(snapshot_writer *w);
/* Removes the temp file and frees w. NULL is a no-op. */
void snapshot_abort(snapshot_writer *w);

typedef int (*snapshot_load_fn)(void *ctx, uint8_t type, const void *payload, uint32_t len);

/* Loads the newest complete valid snapshot of dir: verifies it whole, then
 * calls fn for every record in order and sets *position. Temp files and
 * invalid snapshots are skipped with a warning on stderr. INV_ENOTFOUND if
 * there is none; a non-zero return of fn stops the load and is returned. */
int snapshot_load_latest(const char *dir, uint64_t *position, snapshot_load_fn fn, void *ctx,
                         char *errbuf, size_t errlen);

#endif /* INV_SNAPSHOT_H */
