/*
 * feed.h — the change feed (private part): the engine's feed state, the
 * retention of journal segments for history, and its statistics. The
 * public calls (inv_feed_*, inv_level_history) are in include/invcore.h;
 * the decoding is feed_decode.h's, the reading of segments feed_scan.h's.
 *
 * Retention: a snapshot no longer deletes every segment below its
 * position, only those also outside retention (recovery.c calls
 * feed_retention_drop). Before deleting, it makes the file history.start
 * in the data directory durable, holding R (the first position kept) and
 * L (the last record's position before R): a reader after a position
 * below L is refused (INV_ELIMIT) instead of silently skipping, and a
 * reader after L, or after 0, starts at R.
 */
#ifndef INV_FEED_H
#define INV_FEED_H

#include "engine_state.h"

/* The file in the data directory that says where history starts. */
#define FEED_HISTORY_FILE "history.start"
/* Bytes of the journal one inv_level_history call walks at most: a page
 * may come back short (even empty) with *next_before not 0. The cost of a
 * page is O(bytes walked) (docs/JOURNAL.md): about 1 ms per MiB here
 * (bench_feed_read) once the boundary index covers the segments walked,
 * so a call stays near 2 ms, short enough for the server's event loop (a
 * segment's first walk also builds its index: about 0.5 ms per MiB of the
 * segment, once). */
#define FEED_HISTORY_SCAN_BYTES_MAX (2ULL << 20)

/* After recovery opened e's data directory (with its journal): reads
 * history.start. INV_OK also without a data directory (no feed). */
int feed_init(inv_engine *e);
/* No reader may be open. NULL state is a no-op. */
void feed_destroy(inv_engine *e);

/* After a snapshot at snapshot_pos is committed: deletes the segments
 * whose records all lie below it and which are outside retention (the
 * last record older than history_retention_ms, by the file's mtime, or
 * beyond history_retention_bytes counting from the newest segment),
 * oldest first, never the last one; history.start first. */
int feed_retention_drop(inv_engine *e, uint64_t snapshot_pos);

/* inv_stats' history fields. */
void feed_stats(inv_engine *e, inv_stats *out);

#endif /* INV_FEED_H */
