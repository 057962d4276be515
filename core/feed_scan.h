/*
 * feed_scan.h — reading a data directory's journal records by position
 * (private; the change feed's lower half): a cursor that reads segment
 * files through fileio's reader (pread through one bounded buffer, fault
 * sites FILE_OPEN and FILE_READ), and an index of record boundaries
 * ("marks") that lets a reader start at, check, or scan back from any
 * position without reading a segment from its start.
 *
 * Contract with the writer (journal.h): records below the durable end are
 * whole on disk and never change; a segment's records end where the next
 * segment starts (the bytes after them in its file are zeros, or none); a
 * new segment's header is on disk before any of its records. So a cursor
 * that meets zeros or the end of a file at a position below the durable
 * end finds the records there in the segment named by that position.
 *
 * Invariants: nothing read is trusted (every record passes
 * journal_frame_decode, every segment header fileio_header_check); a
 * cursor reads ahead FEED_BUF_BYTES (a larger record: the record) and
 * never past its limit, below which the live segment's bytes are final
 * (fileio_reader_follow); marks are record boundaries found by walking
 * from a segment's first position.
 * Neither structure is shared between threads: the owner serialises.
 */
#ifndef INV_FEED_SCAN_H
#define INV_FEED_SCAN_H

#include "fileio.h"
#include "journal.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A cursor's read-ahead: one pread reads this much (records of a few
 * dozen bytes: thousands per read), not the reader's whole buffer, since a
 * history walk seeks back a chunk at a time. A record larger than this is
 * read whole (at most JOURNAL_RECORD_MAX). */
#define FEED_BUF_BYTES (256u << 10)
/* Stream bytes between two marks: checking a position or starting a scan
 * back reads at most this much (plus one record) from the mark before. */
#define FEED_MARK_BYTES (64u << 10)
/* "No limit": an offline reader reads every whole record on disk. */
#define FEED_NO_LIMIT UINT64_MAX

/* feed_cursor_next's answer where a segment's records end (positive:
 * never an INV_E* code): call feed_cursor_switch to go on. */
#define FEED_SEGMENT_END 2

typedef struct {
    const char *dir; /* not owned */
    bool offline; /* no writer: a bad record with nothing after it ends the data */
    fileio_reader rd; /* the segment being read (rd.fd < 0: none open) */
    uint64_t seg_first; /* its first position */
    uint64_t pos; /* the next record's position */
    char why[128]; /* the last INV_EINVALID's or INV_EIO's reason */
} feed_cursor;

/* One record as framed: payload points into the cursor's buffer (valid
 * until its next call). */
typedef struct {
    uint64_t pos, size;
    uint8_t type;
    const uint8_t *payload;
    uint32_t len;
} feed_raw;

/* INV_OK: nothing is allocated until a segment is opened. */
int feed_cursor_init(feed_cursor *c, const char *dir, bool offline);
void feed_cursor_free(feed_cursor *c);
/* Places the cursor at pos, a boundary in the segment that starts at
 * seg_first (opened on the next read). */
void feed_cursor_seek(feed_cursor *c, uint64_t pos, uint64_t seg_first);
/* The record at c->pos if it starts below limit: INV_OK (c->pos moves
 * past it); INV_ENOTFOUND at limit (or, offline, at the end of the data);
 * FEED_SEGMENT_END; INV_ELIMIT when the segment's file is gone;
 * INV_EINVALID (a corrupt record or header: c->why); INV_EIO (c->why: the
 * file and the byte offset); INV_ENOMEM (the reader's buffer). */
int feed_cursor_next(feed_cursor *c, uint64_t limit, feed_raw *out);
/* Goes on in the segment that starts at c->pos: INV_OK; INV_ENOTFOUND
 * offline when there is none (the end of the data); INV_EINVALID when a
 * writer's segment is missing there (or its header is bad); INV_EIO,
 * INV_ENOMEM as feed_cursor_next. */
int feed_cursor_switch(feed_cursor *c);

/* ---- the boundary index ----------------------------------------------- */

typedef struct {
    uint64_t first; /* the segment's first position */
    uint64_t end; /* positions [first, end) are walked; end is a boundary */
    uint64_t last; /* the last record start below end (0: none) */
    bool done; /* the segment's records end at end */
    uint64_t *marks; /* marks[0] == first; increasing boundaries */
    size_t n_marks, cap_marks;
} feed_seg;

typedef struct {
    feed_seg *segs; /* sorted by first; contiguous */
    size_t n, cap;
    feed_cursor cur; /* walks segments for the index */
} feed_index;

int feed_index_init(feed_index *ix, const char *dir, bool offline);
void feed_index_free(feed_index *ix);
/* Follows the directory: segments added since, and those below oldest
 * (or deleted) forgotten. */
int feed_index_sync(feed_index *ix, uint64_t oldest);
/* The first position the index knows (0: no segment). */
uint64_t feed_index_first(const feed_index *ix);
/* The first position of the segment holding pos (the last one starting
 * at or below it; 0: none). */
uint64_t feed_index_segment(const feed_index *ix, uint64_t pos);
/* Is pos (below limit) a record boundary? *seg_first: its segment. */
int feed_index_boundary(feed_index *ix, uint64_t pos, uint64_t limit, bool *is,
                        uint64_t *seg_first);
/* The start of the last record below end (0: none in the index), end a
 * boundary at or below limit. */
int feed_index_last_before(feed_index *ix, uint64_t end, uint64_t limit, uint64_t *last);
/* The chunk to scan before `before` (a boundary): [*lo, before), *lo the
 * mark before it, in the segment starting at *seg_first. *lo == before:
 * nothing below (the oldest position). */
int feed_index_chunk_before(feed_index *ix, uint64_t before, uint64_t limit, uint64_t *lo,
                            uint64_t *seg_first);
/* The end of the records on disk (offline): the last segment walked to
 * its end. */
int feed_index_data_end(feed_index *ix, uint64_t *end);

#endif /* INV_FEED_SCAN_H */
