/*
 * feed_scan.c — the change feed's reading of segment files: a cursor
 * (fileio's reader over one segment at a time) and the index of record
 * boundaries (marks) built by walking segments with it.
 *
 * Invariants:
 *  - A cursor never trusts a length: a header's length is bounded by
 *    JOURNAL_PAYLOAD_MAX before it sizes a read (journal_record_read), and
 *    every record passes journal_frame_decode (checksum, zero padding)
 *    before it is returned.
 *  - A cursor reads only below its limit (the journal's durable end, for a
 *    running engine), where every record is whole on disk: its reader
 *    follows the live segment up to there and never reads (or keeps) the
 *    bytes after, which the writer may still turn from zeros into records.
 *  - Marks are record starts reached by walking a segment from its first
 *    position; a segment's marks are at least FEED_MARK_BYTES apart.
 * The owner of a cursor or an index serialises its calls (one thread).
 */
#include "alloc.h"
#include "feed_scan.h"

#include "fault.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define SEGMENT_PATH_MAX (JOURNAL_PATH_MAX + FILEIO_NAME_MAX)

_Static_assert(FEED_BUF_BYTES >= JOURNAL_RECORD_OVERHEAD && FEED_MARK_BYTES >= 8,
               "a read-ahead holds a record header");
_Static_assert(FEED_BUF_BYTES <= FILEIO_READ_BUF_BYTES &&
                   JOURNAL_RECORD_MAX <= FILEIO_READ_BUF_BYTES,
               "the reader's buffer holds the read-ahead and the largest record");

/* ---- the cursor --------------------------------------------------------- */

/* A cursor's state, for asserts only (O(1)): a directory, and a reader
 * that is closed or has its buffer. */
static bool cursor_ok(const feed_cursor *c)
{
    return c != NULL && c->dir != NULL && (c->rd.fd < 0 || c->rd.buf != NULL);
}

/* A segment's walked state, for asserts only (O(1)): its first mark at
 * its first position, the newest mark and last record below its walked
 * end, the marks within their allocation. */
static bool seg_ok(const feed_seg *s)
{
    return s != NULL && s->marks != NULL && s->n_marks > 0 && s->n_marks <= s->cap_marks &&
           s->marks[0] == s->first && s->end >= s->first && s->marks[s->n_marks - 1] <= s->end &&
           (s->last == 0 || s->last < s->end);
}

/* An index's state, for asserts only (O(1)): its segments within their
 * allocation, its cursor sound. */
static bool index_ok(const feed_index *ix)
{
    return ix != NULL && ix->n <= ix->cap && (ix->n == 0 || ix->segs != NULL) &&
           cursor_ok(&ix->cur);
}

int feed_cursor_init(feed_cursor *c, const char *dir, bool offline)
{
    assert(c != NULL && dir != NULL);
    memset(c, 0, sizeof *c);
    c->dir = dir;
    c->offline = offline;
    c->rd.fd = -1; /* the reader (and its buffer) comes with a segment */
    assert(cursor_ok(c) && c->rd.buf == NULL);
    return INV_OK;
}

static void close_segment(feed_cursor *c)
{
    assert(cursor_ok(c));
    fileio_reader_close(&c->rd); /* a closed one stays closed */
    assert(c->rd.fd < 0 && c->rd.buf == NULL);
}

void feed_cursor_free(feed_cursor *c)
{
    assert(c != NULL);
    fileio_reader_close(&c->rd);
    memset(c, 0, sizeof *c);
    c->rd.fd = -1;
}

void feed_cursor_seek(feed_cursor *c, uint64_t pos, uint64_t seg_first)
{
    assert(cursor_ok(c));
    assert(pos >= seg_first && seg_first >= JOURNAL_POSITION_FIRST);
    if (seg_first != c->seg_first)
        close_segment(c);
    c->seg_first = seg_first;
    c->pos = pos;
}

static int invalid(feed_cursor *c, const char *why)
{
    assert(cursor_ok(c) && why != NULL);
    fileio_errmsg(c->why, sizeof c->why, "segment %016llx, position %llu: %s",
                  (unsigned long long)c->seg_first, (unsigned long long)c->pos, why);
    return INV_EINVALID;
}

/* A read error (errno) of the open segment: INV_EIO, c->why naming the
 * file and the byte offset of the read that failed (a media error is an
 * error, never the end of the records). */
static int read_failed(feed_cursor *c)
{
    assert(cursor_ok(c) && c->rd.fd >= 0);
    fileio_errmsg(c->why, sizeof c->why,
                  "cannot read segment file %016" PRIx64 "%s at byte offset %" PRIu64 ": %s",
                  c->seg_first, JOURNAL_SEGMENT_SUFFIX, c->rd.err_off, strerror(errno));
    return INV_EIO;
}

/* The file offset of position pos of the open segment. */
static uint64_t file_off(const feed_cursor *c, uint64_t pos)
{
    assert(cursor_ok(c) && pos >= c->seg_first);
    return JOURNAL_SEGMENT_HEADER + (pos - c->seg_first);
}

/* Opens c->seg_first's file and checks its header. */
static int open_segment(feed_cursor *c)
{
    assert(cursor_ok(c) && c->rd.fd < 0);
    assert(c->seg_first >= JOURNAL_POSITION_FIRST);
    char path[SEGMENT_PATH_MAX];
    fileio_path(path, sizeof path, c->dir, c->seg_first, JOURNAL_SEGMENT_SUFFIX);
    if (fileio_reader_open(&c->rd, path, FAULT_FILE_OPEN, FAULT_FILE_READ) != 0) {
        if (errno == ENOENT)
            return INV_ELIMIT;
        int e = errno;
        fileio_errmsg(c->why, sizeof c->why, "cannot open segment file %016" PRIx64 "%s: %s",
                      c->seg_first, JOURNAL_SEGMENT_SUFFIX, strerror(e));
        return e == ENOMEM ? INV_ENOMEM : INV_EIO;
    }
    fileio_reader_read_ahead(&c->rd, FEED_BUF_BYTES);
    /* Only the header is known final yet (a segment is opened only below
     * the limit, and its header is on disk before any of its records);
     * feed_cursor_next follows the file up to its limit. */
    fileio_reader_follow(&c->rd, JOURNAL_SEGMENT_HEADER);
    size_t avail;
    const uint8_t *h = fileio_reader_at(&c->rd, 0, JOURNAL_SEGMENT_HEADER, &avail);
    const char *why =
        h ? fileio_header_check(h, avail, &journal_segment_format, c->seg_first) : NULL;
    if (h && !why)
        return INV_OK;
    int rc = h ? invalid(c, why) : read_failed(c);
    close_segment(c);
    return rc;
}

/* Does any segment start after c->seg_first? */
static bool later_segment(const feed_cursor *c)
{
    assert(cursor_ok(c));
    journal_segment *segs;
    size_t n;
    if (journal_segments_list(c->dir, &segs, &n, NULL, 0) != INV_OK)
        return true; /* cannot tell: not the end */
    bool later = n && segs[n - 1].first > c->seg_first;
    free(segs);
    return later;
}

/* A record that does not decode: corruption, or, offline with nothing
 * after it, a torn tail (the end of the data). */
static int bad_record(feed_cursor *c, const char *why)
{
    assert(cursor_ok(c) && why != NULL);
    if (c->offline && !later_segment(c))
        return INV_ENOTFOUND;
    return invalid(c, why);
}

int feed_cursor_next(feed_cursor *c, uint64_t limit, feed_raw *out)
{
    assert(cursor_ok(c) && out != NULL);
    if (c->pos >= limit)
        return INV_ENOTFOUND;
    int rc = c->rd.fd < 0 ? open_segment(c) : INV_OK;
    if (rc != INV_OK)
        return rc;
    /* Every byte of the segment below limit is final: whole records, or
     * the zeros after its last one (FEED_NO_LIMIT: the whole file). */
    uint64_t past = limit - c->seg_first;
    fileio_reader_follow(&c->rd, past > UINT64_MAX - JOURNAL_SEGMENT_HEADER
                                     ? UINT64_MAX
                                     : JOURNAL_SEGMENT_HEADER + past);
    size_t avail;
    const uint8_t *p = journal_record_read(&c->rd, file_off(c, c->pos), &avail);
    if (!p)
        return read_failed(c);
    if (avail < JOURNAL_RECORD_HEADER || fileio_load_u64(p) == 0)
        return FEED_SEGMENT_END; /* the file ends, or the zeros after its records */
    uint32_t len = (uint32_t)fileio_load_u64(p);
    if (len > JOURNAL_PAYLOAD_MAX)
        return bad_record(c, "record length out of range");
    if (journal_record_size(len) > avail)
        return bad_record(c, "record cut short");
    const char *why =
        journal_frame_decode(p, avail, &out->type, &out->payload, &out->len, &out->size);
    if (why)
        return bad_record(c, why);
    /* a decoded record lies within the bytes read */
    assert(out->size <= avail && out->size == journal_record_size(out->len));
    out->pos = c->pos;
    c->pos += out->size;
    return INV_OK;
}

int feed_cursor_switch(feed_cursor *c)
{
    assert(cursor_ok(c));
    close_segment(c);
    c->seg_first = c->pos;
    int rc = open_segment(c);
    if (rc == INV_ELIMIT)
        return c->offline ? INV_ENOTFOUND : invalid(c, "the next segment is missing");
    return rc;
}

/* ---- the boundary index -------------------------------------------------- */

int feed_index_init(feed_index *ix, const char *dir, bool offline)
{
    assert(ix != NULL && dir != NULL);
    memset(ix, 0, sizeof *ix);
    return feed_cursor_init(&ix->cur, dir, offline);
}

static void seg_free(feed_seg *s)
{
    assert(s != NULL);
    free(s->marks);
    s->marks = NULL;
}

void feed_index_free(feed_index *ix)
{
    assert(ix != NULL && ix->n <= ix->cap);
    for (size_t i = 0; i < ix->n; i++)
        seg_free(&ix->segs[i]);
    free(ix->segs);
    feed_cursor_free(&ix->cur);
    memset(ix, 0, sizeof *ix);
}

static int push_mark(feed_seg *s, uint64_t pos)
{
    assert(seg_ok(s) || s->n_marks == 0);
    assert(s->n_marks == 0 || pos > s->marks[s->n_marks - 1]); /* strictly increasing */
    if (s->n_marks == s->cap_marks) {
        size_t cap = s->cap_marks ? s->cap_marks * 2 : 16;
        uint64_t *m = inv_realloc(s->marks, cap * sizeof *m);
        if (!m)
            return INV_ENOMEM;
        s->marks = m;
        s->cap_marks = cap;
    }
    s->marks[s->n_marks++] = pos;
    assert(seg_ok(s) && s->marks[s->n_marks - 1] == pos);
    return INV_OK;
}

/* A newly listed segment: nothing walked yet. */
static int seg_new(feed_seg *s, uint64_t first)
{
    assert(s != NULL && first >= JOURNAL_POSITION_FIRST);
    *s = (feed_seg){.first = first, .end = first};
    return push_mark(s, first);
}

int feed_index_sync(feed_index *ix, uint64_t oldest)
{
    assert(index_ok(ix));
    journal_segment *list;
    size_t n;
    int rc = journal_segments_list(ix->cur.dir, &list, &n, NULL, 0);
    if (rc != INV_OK)
        return rc;
    size_t lo = 0;
    while (lo < n && list[lo].first < oldest)
        lo++; /* retention has dropped them (or is about to) */
    /* Segments go at the front and come at the back: keep the known ones
     * still listed, in order, then add the new ones. */
    size_t gone = 0;
    while (gone < ix->n && ix->segs[gone].first < (lo < n ? list[lo].first : UINT64_MAX))
        seg_free(&ix->segs[gone++]);
    if (gone) {
        memmove(ix->segs, ix->segs + gone, (ix->n - gone) * sizeof *ix->segs);
        ix->n -= gone;
    }
    if (n - lo > ix->cap) {
        feed_seg *s = inv_realloc(ix->segs, (n - lo) * sizeof *s);
        if (!s) {
            free(list);
            return INV_ENOMEM;
        }
        ix->segs = s;
        ix->cap = n - lo;
    }
    for (size_t i = lo; rc == INV_OK && i < n; i++) {
        if (ix->n && list[i].first <= ix->segs[ix->n - 1].first)
            continue;
        rc = seg_new(&ix->segs[ix->n], list[i].first);
        if (rc == INV_OK)
            ix->n++;
    }
    free(list);
    assert(index_ok(ix));
    return rc;
}

uint64_t feed_index_first(const feed_index *ix)
{
    assert(index_ok(ix));
    return ix->n ? ix->segs[0].first : 0;
}

/* The index of the last segment starting at or below pos (strictly below
 * with below): SIZE_MAX when none. */
static size_t seg_of(const feed_index *ix, uint64_t pos, bool below)
{
    assert(index_ok(ix));
    size_t lo = 0, hi = ix->n; /* the answer is lo - 1 */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (below ? ix->segs[mid].first < pos : ix->segs[mid].first <= pos)
            lo = mid + 1;
        else
            hi = mid;
    }
    assert(lo <= ix->n);
    return lo ? lo - 1 : SIZE_MAX;
}

uint64_t feed_index_segment(const feed_index *ix, uint64_t pos)
{
    assert(index_ok(ix));
    size_t si = seg_of(ix, pos, false);
    return si == SIZE_MAX ? 0 : ix->segs[si].first;
}

/* The last mark of s below pos (or at it, with at). */
static uint64_t mark_before(const feed_seg *s, uint64_t pos, bool at)
{
    assert(seg_ok(s) && pos >= s->first);
    size_t lo = 0, hi = s->n_marks;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (at ? s->marks[mid] <= pos : s->marks[mid] < pos)
            lo = mid + 1;
        else
            hi = mid;
    }
    assert(lo > 0);
    return s->marks[lo - 1];
}

/* Walks segment si on from its end until end >= upto, its records end,
 * or limit; marks every FEED_MARK_BYTES. */
static int extend(feed_index *ix, size_t si, uint64_t upto, uint64_t limit)
{
    assert(index_ok(ix) && si < ix->n);
    feed_seg *s = &ix->segs[si];
    if (si + 1 < ix->n && s->end == ix->segs[si + 1].first)
        s->done = true;
    if (s->done || s->end >= upto)
        return INV_OK;
    feed_cursor_seek(&ix->cur, s->end, s->first);
    while (!s->done && s->end < upto) {
        feed_raw raw;
        int rc = feed_cursor_next(&ix->cur, limit, &raw);
        if (rc == FEED_SEGMENT_END) {
            s->done = true;
            break;
        }
        if (rc == INV_ENOTFOUND)
            break; /* at limit */
        if (rc != INV_OK)
            return rc;
        if (raw.pos >= s->marks[s->n_marks - 1] + FEED_MARK_BYTES &&
            (rc = push_mark(s, raw.pos)) != INV_OK)
            return rc;
        s->last = raw.pos;
        s->end = raw.pos + raw.size;
        if (si + 1 < ix->n && s->end == ix->segs[si + 1].first)
            s->done = true;
    }
    assert(seg_ok(s));
    return INV_OK;
}

/* Walks from mark m of the segment at first towards pos: *at the last
 * record start below pos (0: none), *hit whether one starts at pos. */
static int walk(feed_index *ix, uint64_t first, uint64_t m, uint64_t pos, uint64_t limit,
                uint64_t *at, bool *hit)
{
    assert(index_ok(ix) && at != NULL && hit != NULL);
    assert(m >= first && m <= pos);
    feed_cursor_seek(&ix->cur, m, first);
    *at = 0;
    *hit = false;
    for (;;) {
        feed_raw raw;
        int rc = feed_cursor_next(&ix->cur, limit, &raw);
        if (rc == FEED_SEGMENT_END || rc == INV_ENOTFOUND)
            return INV_OK;
        if (rc != INV_OK)
            return rc;
        if (raw.pos >= pos) {
            *hit = raw.pos == pos;
            return INV_OK;
        }
        *at = raw.pos;
    }
}

int feed_index_boundary(feed_index *ix, uint64_t pos, uint64_t limit, bool *is, uint64_t *seg_first)
{
    assert(index_ok(ix) && is != NULL && seg_first != NULL);
    *is = false;
    size_t si = seg_of(ix, pos, false);
    if (si == SIZE_MAX || pos >= limit)
        return INV_OK;
    feed_seg *s = &ix->segs[si];
    *seg_first = s->first;
    int rc = extend(ix, si, pos + 1, limit);
    if (rc != INV_OK || pos >= s->end)
        return rc; /* beyond its records */
    if (pos == s->last || pos == s->first) {
        *is = true;
        return INV_OK;
    }
    uint64_t at;
    return walk(ix, s->first, mark_before(s, pos, true), pos, limit, &at, is);
}

/* The segment holding the records just below pos, walked up to pos
 * (NULL: none below pos). */
static int seg_below(feed_index *ix, uint64_t pos, uint64_t limit, feed_seg **out)
{
    assert(index_ok(ix) && out != NULL);
    *out = NULL;
    size_t si = seg_of(ix, pos, true);
    if (si == SIZE_MAX)
        return INV_OK;
    *out = &ix->segs[si];
    return extend(ix, si, pos, limit);
}

int feed_index_last_before(feed_index *ix, uint64_t end, uint64_t limit, uint64_t *last)
{
    assert(index_ok(ix) && last != NULL);
    *last = 0;
    feed_seg *s;
    int rc = seg_below(ix, end, limit, &s);
    if (rc != INV_OK || !s)
        return rc;
    if (end >= s->end) {
        *last = s->last;
        return INV_OK;
    }
    bool hit;
    return walk(ix, s->first, mark_before(s, end, false), end, limit, last, &hit);
}

int feed_index_chunk_before(feed_index *ix, uint64_t before, uint64_t limit, uint64_t *lo,
                            uint64_t *seg_first)
{
    assert(index_ok(ix) && lo != NULL && seg_first != NULL);
    *lo = before;
    feed_seg *s;
    int rc = seg_below(ix, before, limit, &s);
    if (rc != INV_OK || !s)
        return rc;
    *seg_first = s->first;
    *lo = mark_before(s, before, false);
    assert(*lo < before && *lo >= *seg_first);
    return INV_OK;
}

int feed_index_data_end(feed_index *ix, uint64_t *end)
{
    assert(index_ok(ix) && end != NULL);
    *end = 0;
    if (ix->n == 0)
        return INV_OK;
    int rc = extend(ix, ix->n - 1, FEED_NO_LIMIT, FEED_NO_LIMIT);
    *end = ix->segs[ix->n - 1].end;
    return rc;
}
