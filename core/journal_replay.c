/*
 * journal_replay.c — reading the journal back: the segment scan, replay
 * with checksum verification, zero tails, torn tails and repair, and
 * dropping segments a snapshot made unnecessary. The writer is journal.c;
 * the format is docs/JOURNAL.md.
 *
 * Invariants:
 *  - Nothing read from disk is trusted: every record goes through
 *    journal_frame_decode (lengths bounded by JOURNAL_PAYLOAD_MAX and the
 *    file), every segment header through fileio_header_check.
 *  - Replay hands the callback records in strictly increasing position
 *    order, each at most once, and only records of a contiguous prefix of
 *    the stream: a gap or a bad record ends what is replayed.
 *  - A bad record is a torn tail (cut, with a warning naming file and
 *    offset) if no valid record follows it anywhere, in its segment or a
 *    later one, or if it lies at or past the synced end that the valid
 *    records of the stream name (journal.h: the synced-back field), and no
 *    later segment holds data: a hole in what no completed fdatasync
 *    covered, where the device may have kept a later page and lost an
 *    earlier one. Otherwise (below a named synced end, or with valid
 *    records after it in a journal that names none) it is corruption,
 *    refused unless repair (then cut there and later segments set aside
 *    as *.cut, never deleted).
 *  - The end position replay returns is at or above every segment
 *    header's reserved-ahead mark it read, so positions handed out before
 *    a crash are never handed out again.
 *  - A run of zeros to the end of a segment is where its records end (the
 *    writer keeps zeros ahead of them, journal.h); it is trimmed.
 *  - Every cut, trim or rename is followed by a directory fsync before
 *    replay returns: a crash cannot bring back what was cut and overlap
 *    what is appended next.
 *  - No thread of its own; safe while a journal appends to the same dir
 *    only for journal_drop_before (replay runs before journal_open).
 */
#include "sysio.h"
#include "alloc.h"
#include "journal.h"

#include "clock.h"
#include "fileio.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Replay logs progress every this many bytes. */
#define JOURNAL_REPLAY_LOG_BYTES (1ULL << 30)
/* Replay that takes longer than this says how long it took. */
#define JOURNAL_REPLAY_LOG_NS (1000ULL * 1000u * 1000u)
#define SEGMENT_PATH_MAX (JOURNAL_PATH_MAX + FILEIO_NAME_MAX)

_Static_assert(JOURNAL_SEGMENT_HEADER == FILEIO_HEADER_BYTES,
               "a segment opens with the fileio header");
_Static_assert(JOURNAL_RECORD_MAX <= FILEIO_READ_BUF_BYTES,
               "the reader's buffer holds a whole record");

/* ---- the segment scan --------------------------------------------------- */

const fileio_format journal_segment_format = {
    JOURNAL_SEGMENT_MAGIC,
    JOURNAL_FORMAT_VERSION,
};

static int cmp_segment(const void *a, const void *b)
{
    assert(a != NULL && b != NULL);
    uint64_t x = ((const journal_segment *)a)->first;
    uint64_t y = ((const journal_segment *)b)->first;
    return x < y ? -1 : x > y;
}

/* Appends seg to the growing array *v (capacity *cap). */
static int segments_push(journal_segment **v, size_t *cap, size_t n, journal_segment seg)
{
    assert(v != NULL && cap != NULL);
    assert(n <= *cap && n < JOURNAL_SEGMENTS_MAX);
    if (n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        journal_segment *nv = inv_realloc(*v, nc * sizeof *nv);
        if (nv == NULL)
            return INV_ENOMEM;
        *v = nv;
        *cap = nc;
    }
    assert(n < *cap && *v != NULL);
    (*v)[n] = seg;
    return INV_OK;
}

int journal_segments_list(const char *dir, journal_segment **out, size_t *n, char *errbuf,
                          size_t errlen)
{
    assert(dir != NULL && out != NULL && n != NULL);
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (d == NULL) {
        if (errno == ENOENT)
            return INV_OK;
        fileio_errmsg(errbuf, errlen, "journal: cannot open directory %s: %s", dir,
                      strerror(errno));
        return INV_EIO;
    }
    size_t cap = 0;
    journal_segment *v = NULL;
    int rc = INV_OK;
    struct dirent *e;
    while (rc == INV_OK && (e = readdir(d)) != NULL) {
        journal_segment seg;
        if (!fileio_parse_name(e->d_name, JOURNAL_SEGMENT_SUFFIX, &seg.first) ||
            seg.first < JOURNAL_POSITION_FIRST || seg.first >= JOURNAL_POSITION_MAX ||
            seg.first % 8u != 0)
            continue; /* not a segment we write: positions never get there */
        if (*n == JOURNAL_SEGMENTS_MAX) {
            fileio_errmsg(errbuf, errlen, "journal: more than %u segments in %s",
                          JOURNAL_SEGMENTS_MAX, dir);
            rc = INV_ELIMIT;
            break;
        }
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, 0) != 0 || !S_ISREG(st.st_mode))
            continue;
        seg.size = (uint64_t)st.st_size;
        rc = segments_push(&v, &cap, *n, seg);
        if (rc == INV_OK)
            (*n)++;
    }
    closedir(d);
    if (rc != INV_OK) {
        free(v);
        *n = 0;
        return rc;
    }
    if (*n > 1)
        qsort(v, *n, sizeof *v, cmp_segment);
    assert(*n <= JOURNAL_SEGMENTS_MAX && (*n == 0 || v != NULL));
    *out = v;
    return INV_OK;
}

/* ---- replay ------------------------------------------------------------- */

typedef struct {
    const char *dir;
    uint64_t from;
    bool repair;
    journal_replay_fn fn;
    void *ctx;
    char *errbuf;
    size_t errlen;
    uint64_t records, bytes, next_log_bytes, t0_ns;
    uint64_t synced; /* the largest synced end a valid record named */
    uint64_t hwm; /* the newest segment header's reserved-ahead mark */
} replay_run;

/* How a segment's records ended: at the file's end, at zeros the writer kept
 * ahead of them (trimmed; the next segment may follow), or at a bad record
 * (cut; later segments are set aside). */
typedef enum { SEG_OK, SEG_TRIM, SEG_CUT } seg_result;

/* A replay's state, for asserts only (O(1)): a directory, somewhere for
 * its message, and the progress log's next step ahead of the bytes read
 * (each record is far smaller than a step). */
static bool replay_run_ok(const replay_run *r)
{
    return r != NULL && r->dir != NULL && (r->errbuf != NULL || r->errlen == 0) &&
           r->bytes < r->next_log_bytes;
}

const uint8_t *journal_record_read(fileio_reader *rd, uint64_t off, size_t *avail)
{
    assert(rd != NULL && avail != NULL);
    const uint8_t *q = fileio_reader_at(rd, off, JOURNAL_RECORD_OVERHEAD, avail);
    if (q == NULL || *avail < JOURNAL_RECORD_OVERHEAD)
        return q;
    /* The length is not trusted: an impossible one asks for no more (the
     * decode refuses it), a possible one for the whole record. */
    uint32_t len = (uint32_t)fileio_load_u64(q);
    if (len > JOURNAL_PAYLOAD_MAX)
        return q;
    return fileio_reader_at(rd, off, (size_t)journal_record_size(len), avail);
}

/* Reports a read error of the segment at path: INV_EIO naming the file and
 * the offset (a media error is an error, never a torn tail). */
static int read_failed(replay_run *r, const char *path, const fileio_reader *rd)
{
    assert(replay_run_ok(r));
    assert(path != NULL && rd != NULL);
    fileio_errmsg(r->errbuf, r->errlen, "journal: cannot read %s at byte offset %" PRIu64 ": %s",
                  path, rd->err_off, strerror(errno));
    return INV_EIO;
}

/* Looks for valid records at any 8-aligned offset in [off, size) of the
 * segment at first: *found if there is one, *synced the largest synced
 * end they name (0: none). INV_OK or INV_EIO (a read error). */
static int valid_records_after(replay_run *r, const char *path, fileio_reader *rd, uint64_t first,
                               uint64_t off, bool *found, uint64_t *synced)
{
    assert(replay_run_ok(r) && path != NULL && rd != NULL);
    assert(found != NULL && synced != NULL);
    *found = false;
    *synced = 0;
    /* Records start after the header: a frame that decodes inside a bad
     * header has no position (and would name one below the stream's). */
    if (off < JOURNAL_SEGMENT_HEADER)
        off = JOURNAL_SEGMENT_HEADER;
    for (off = (off + 7) & ~(uint64_t)7; off + JOURNAL_RECORD_OVERHEAD <= rd->size; off += 8) {
        size_t avail;
        const uint8_t *q = fileio_reader_at(rd, off, JOURNAL_RECORD_OVERHEAD, &avail);
        if (q == NULL)
            return read_failed(r, path, rd);
        uint64_t hdr = fileio_load_u64(q);
        uint32_t len = (uint32_t)hdr;
        /* cheap filters before reading the record and hashing */
        if ((uint8_t)(hdr >> 32) == 0 || len > JOURNAL_PAYLOAD_MAX ||
            journal_record_size(len) > rd->size - off)
            continue;
        if ((q = journal_record_read(rd, off, &avail)) == NULL)
            return read_failed(r, path, rd);
        uint8_t type;
        const uint8_t *pl;
        uint32_t n;
        uint64_t sz;
        if (journal_frame_decode(q, avail, &type, &pl, &n, &sz) != NULL)
            continue;
        *found = true;
        uint64_t e = journal_frame_synced(q, first + (off - JOURNAL_SEGMENT_HEADER));
        if (e > *synced)
            *synced = e;
    }
    return INV_OK;
}

/* Cuts path at off (removes it when off leaves no full header). */
static int cut_file(const char *path, uint64_t off)
{
    assert(path != NULL && path[0] != '\0');
    if (off < JOURNAL_SEGMENT_HEADER)
        return sysio_unlink(FAULT_REPLAY_UNLINK, path);
    int fd = sysio_open(FAULT_REPLAY_CUT, path, O_WRONLY | O_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int rc = sysio_ftruncate(FAULT_REPLAY_CUT, fd, (off_t)off);
    if (rc == 0)
        rc = sysio_fsync(FAULT_REPLAY_CUT, fd);
    close(fd);
    return rc;
}

static void replay_log(replay_run *r, const char *when)
{
    assert(replay_run_ok(r) && when != NULL);
    double s = (double)(clock_mono_ns() - r->t0_ns) / 1e9;
    FILEIO_WARN("invcore journal: replay %s: %" PRIu64 " records, %.1f MB, "
                "%.2f s\n",
                when, r->records, (double)r->bytes / 1e6, s);
}

/* Handles a bad record (or header, off 0) in segment path: torn tail, cut
 * by repair, or corruption. */
static int bad_record(replay_run *r, const char *path, fileio_reader *rd, uint64_t off,
                      uint64_t pos, const char *why, bool later_data, seg_result *res)
{
    assert(replay_run_ok(r) && path != NULL && rd != NULL);
    assert(why != NULL && res != NULL && off <= rd->size);
    uint64_t first = pos - (off > JOURNAL_SEGMENT_HEADER ? off - JOURNAL_SEGMENT_HEADER : 0);
    uint64_t synced_after;
    bool after;
    int rc = valid_records_after(r, path, rd, first, off + 8, &after, &synced_after);
    if (rc != INV_OK)
        return rc;
    uint64_t synced = synced_after > r->synced ? synced_after : r->synced;
    /* Unsynced: no record names a synced end past it (a header is synced
     * before any record is written: never torn but by the old rule). */
    bool unsynced = off >= JOURNAL_SEGMENT_HEADER && synced != 0 && pos >= synced;
    bool torn = !later_data && (!after || unsynced);
    if (!torn && !r->repair) {
        fileio_errmsg(r->errbuf, r->errlen,
                      "journal corrupt: %s at byte offset %" PRIu64 " (position %" PRIu64
                      "): %s, and valid records follow%s; refusing to open (repair cuts here)",
                      path, off, pos, why,
                      synced > pos ? " (it lies below the synced end they name)" : "");
        return INV_EINVALID;
    }
    FILEIO_WARN("invcore journal: warning: %s %s at byte offset %" PRIu64 " (position %" PRIu64
                "): %s%s; cutting %" PRIu64 " bytes\n",
                torn ? "torn tail in" : "repair: corrupt record in", path, off, pos, why,
                torn && after ? " inside the last unsynced write (no fdatasync covered it)" : "",
                rd->size - off);
    assert(torn || r->repair); /* corruption is cut only by a repair */
    *res = SEG_CUT;
    return INV_OK;
}

/* Hands one valid record at pos to the callback (user records at or past
 * the replay's start only) and counts it. */
static int replay_deliver(replay_run *r, uint64_t pos, uint8_t type, const uint8_t *pl,
                          uint32_t len, uint64_t sz)
{
    assert(replay_run_ok(r));
    assert((pl != NULL || len == 0) && sz == journal_record_size(len));
    if (type >= JOURNAL_TYPE_USER_MIN && pos >= r->from && r->fn != NULL) {
        int rc = r->fn(r->ctx, pos, type, pl, len);
        if (rc != INV_OK) {
            fileio_errmsg(r->errbuf, r->errlen,
                          "journal: replay stopped by its callback at "
                          "position %" PRIu64 " (%d)",
                          pos, rc);
            return rc;
        }
    }
    r->records++;
    r->bytes += sz;
    if (r->bytes >= r->next_log_bytes) {
        r->next_log_bytes += JOURNAL_REPLAY_LOG_BYTES;
        replay_log(r, "progress");
    }
    assert(replay_run_ok(r)); /* sz < the log step: one step at most */
    return INV_OK;
}

/* Replays the records of the segment being read after its header; *end_off
 * gets the file offset where its records end. */
static int replay_records(replay_run *r, const char *path, uint64_t first, fileio_reader *rd,
                          bool later_data, uint64_t *end_off, seg_result *res)
{
    assert(replay_run_ok(r) && path != NULL && rd != NULL);
    assert(end_off != NULL && res != NULL);
    uint64_t off = JOURNAL_SEGMENT_HEADER;
    int rc = INV_OK;
    while (off < rd->size) {
        uint8_t type;
        const uint8_t *pl;
        uint32_t len;
        uint64_t sz;
        uint64_t pos = first + (off - JOURNAL_SEGMENT_HEADER);
        size_t avail;
        const uint8_t *q = journal_record_read(rd, off, &avail);
        if (q == NULL) {
            rc = read_failed(r, path, rd);
            break;
        }
        const char *why = journal_frame_decode(q, avail, &type, &pl, &len, &sz);
        if (why == NULL && type != JOURNAL_TYPE_PAD && type < JOURNAL_TYPE_USER_MIN)
            why = "record type reserved for the journal";
        bool zeros = false, err = false;
        if (why != NULL)
            zeros = fileio_reader_zero_from(rd, off, &err);
        if (err) {
            rc = read_failed(r, path, rd);
            break;
        }
        if (zeros) {
            /* The zeros the writer keeps ahead of its records: the end of
             * this segment's records, not an error. */
            *res = SEG_TRIM;
            break;
        }
        if (why != NULL) {
            rc = bad_record(r, path, rd, off, pos, why, later_data, res);
            break;
        }
        uint64_t e = journal_frame_synced(q, pos);
        if (e > r->synced)
            r->synced = e;
        rc = replay_deliver(r, pos, type, pl, len, sz);
        if (rc != INV_OK)
            break;
        off += sz;
    }
    *end_off = off < rd->size ? off : rd->size;
    assert(*end_off >= JOURNAL_SEGMENT_HEADER || *end_off == rd->size);
    return rc;
}

/* Checks the header of the segment being read and takes its reserved-ahead
 * mark and clean flag; NULL, or why the header is bad. *rc: INV_EIO (with
 * the message) on a read error. */
static const char *segment_header_read(replay_run *r, const char *path, fileio_reader *rd,
                                       uint64_t first, int *rc)
{
    assert(replay_run_ok(r) && path != NULL && rd != NULL);
    assert(rc != NULL);
    size_t avail;
    const uint8_t *h = fileio_reader_at(rd, 0, JOURNAL_SEGMENT_HEADER, &avail);
    *rc = INV_OK;
    if (h == NULL) {
        *rc = read_failed(r, path, rd);
        return NULL;
    }
    const char *why = fileio_header_check(h, avail, &journal_segment_format, first);
    if (why != NULL)
        return why;
    uint32_t extra = fileio_header_extra(h);
    uint64_t mark = first + 8u * (uint64_t)(extra & JOURNAL_HEADER_MARK_MASK);
    /* The newest header's mark supersedes: marks only grow from one
     * segment to the next, but for a clean close's, which is exact. */
    r->hwm = mark;
    if ((extra & JOURNAL_HEADER_CLEAN) && mark > r->synced)
        r->synced = mark; /* a clean close synced every record below it */
    return NULL;
}

/* Replays one segment; *end gets the position after its last good record
 * and *res how its records ended (a trim or cut is done here). */
static int replay_segment(replay_run *r, const journal_segment *seg, bool later_data, uint64_t *end,
                          seg_result *res)
{
    assert(replay_run_ok(r) && seg != NULL);
    assert(end != NULL && res != NULL);
    char path[SEGMENT_PATH_MAX];
    fileio_path(path, sizeof path, r->dir, seg->first, JOURNAL_SEGMENT_SUFFIX);
    *res = SEG_OK;
    fileio_reader rd;
    if (fileio_reader_open(&rd, path, FAULT_REPLAY_OPEN, FAULT_REPLAY_READ) != 0) {
        fileio_errmsg(r->errbuf, r->errlen, "journal: cannot read %s: %s", path, strerror(errno));
        return errno == ENOMEM ? INV_ENOMEM : INV_EIO;
    }
    int rc;
    uint64_t off = 0;
    const char *why = segment_header_read(r, path, &rd, seg->first, &rc);
    if (why != NULL)
        rc = bad_record(r, path, &rd, 0, seg->first, why, later_data, res);
    else if (rc == INV_OK)
        rc = replay_records(r, path, seg->first, &rd, later_data, &off, res);
    fileio_reader_close(&rd);
    if (rc == INV_OK && (*res != SEG_OK || off < seg->size) && cut_file(path, off) != 0) {
        fileio_errmsg(r->errbuf, r->errlen, "journal: cannot cut %s at %" PRIu64 ": %s", path, off,
                      strerror(errno));
        return INV_EIO;
    }
    if (rc == INV_OK && *res == SEG_OK && off < seg->size)
        *res = SEG_TRIM; /* it shrank under us: cut where it ended */
    *end = seg->first + (off > JOURNAL_SEGMENT_HEADER ? off - JOURNAL_SEGMENT_HEADER : 0);
    assert(rc != INV_OK || *end >= seg->first);
    return rc;
}

/* Moves segments [from, n) out of the way (renamed *.cut). */
static int set_aside(const char *dir, const journal_segment *segs, size_t from, size_t n)
{
    assert(dir != NULL && segs != NULL);
    assert(from <= n);
    for (size_t i = from; i < n; i++) {
        char path[SEGMENT_PATH_MAX], cut[SEGMENT_PATH_MAX + 16];
        fileio_path(path, sizeof path, dir, segs[i].first, JOURNAL_SEGMENT_SUFFIX);
        snprintf(cut, sizeof cut, "%s.cut", path);
        FILEIO_WARN("invcore journal: warning: setting aside %s as %s\n", path, cut);
        if (sysio_rename(FAULT_REPLAY_RENAME, path, cut) != 0)
            return -1;
    }
    return 0;
}

/* Replays segs[i0, n) in order while each starts where the previous one
 * ended (*expected, updated). *changed: a file was cut, trimmed or set
 * aside (the directory needs an fsync). */
static int replay_segments(replay_run *r, const journal_segment *segs, size_t i0, size_t n,
                           uint64_t *expected, bool *changed)
{
    assert(replay_run_ok(r) && segs != NULL && i0 < n);
    assert(expected != NULL && changed != NULL);
    for (size_t i = i0; i < n; i++) {
        if (segs[i].first != *expected) {
            *changed = true;
            if (!r->repair) {
                fileio_errmsg(r->errbuf, r->errlen,
                              "journal corrupt: %s/%016" PRIx64 JOURNAL_SEGMENT_SUFFIX
                              " starts at position "
                              "%" PRIu64 " but the previous segment ends at "
                              "%" PRIu64 " (missing segment)",
                              r->dir, segs[i].first, segs[i].first, *expected);
                return INV_EINVALID;
            }
            return set_aside(r->dir, segs, i, n) != 0 ? INV_EIO : INV_OK;
        }
        bool later_data = false;
        for (size_t k = i + 1; k < n; k++)
            later_data |= segs[k].size > JOURNAL_SEGMENT_HEADER;
        seg_result res;
        int rc = replay_segment(r, &segs[i], later_data, expected, &res);
        if (rc != INV_OK)
            return rc;
        if (res == SEG_TRIM)
            *changed = true; /* trimmed; the next segment must start there */
        if (res == SEG_CUT) {
            *changed = true;
            if (set_aside(r->dir, segs, i + 1, n) == 0)
                return INV_OK;
            fileio_errmsg(r->errbuf, r->errlen, "journal: cannot set aside segments in %s: %s",
                          r->dir, strerror(errno));
            return INV_EIO;
        }
    }
    return INV_OK;
}

/* Where the writer resumes after records that end at end: at or above the
 * reserved-ahead mark (positions below it may have been handed out), and
 * never a gap too small for the PAD record that bridges it. */
static uint64_t resume_position(uint64_t end, uint64_t mark)
{
    assert(end >= JOURNAL_POSITION_FIRST);
    if (mark <= end)
        return end;
    if (mark - end < JOURNAL_RECORD_OVERHEAD)
        mark = end + JOURNAL_RECORD_OVERHEAD;
    assert(mark > end && mark % 8u == 0);
    return mark;
}

int journal_replay(const char *dir, uint64_t from_position, bool repair, journal_replay_fn fn,
                   void *ctx, uint64_t *end_position, char *errbuf, size_t errlen)
{
    uint64_t records_end;
    return journal_replay_records(dir, from_position, repair, fn, ctx, end_position, &records_end,
                                  errbuf, errlen);
}

int journal_replay_records(const char *dir, uint64_t from_position, bool repair,
                           journal_replay_fn fn, void *ctx, uint64_t *end_position,
                           uint64_t *records_end, char *errbuf, size_t errlen)
{
    if (dir == NULL || end_position == NULL || records_end == NULL ||
        strlen(dir) >= JOURNAL_PATH_MAX)
        return INV_EINVALID;
    replay_run r = {dir,
                    from_position,
                    repair,
                    fn,
                    ctx,
                    errbuf,
                    errlen,
                    0,
                    0,
                    JOURNAL_REPLAY_LOG_BYTES,
                    clock_mono_ns(),
                    0,
                    0};
    uint64_t from = from_position < JOURNAL_POSITION_FIRST ? JOURNAL_POSITION_FIRST : from_position;
    journal_segment *segs;
    size_t n;
    int rc = journal_segments_list(dir, &segs, &n, errbuf, errlen);
    if (rc != INV_OK)
        return rc;
    if (n == 0) {
        *end_position = *records_end = from;
        return INV_OK;
    }
    size_t i0 = 0; /* the last segment starting at or below from */
    while (i0 + 1 < n && segs[i0 + 1].first <= from)
        i0++;
    uint64_t expected = segs[i0].first;
    bool changed = false;
    if (expected > from) {
        fileio_errmsg(errbuf, errlen,
                      "journal corrupt: %s starts at position %" PRIu64
                      " but replay needs position %" PRIu64 " (missing segment)",
                      dir, expected, from);
        rc = INV_EINVALID;
    } else {
        rc = replay_segments(&r, segs, i0, n, &expected, &changed);
    }
    free(segs);
    if (changed && fileio_fsync_dir(dir) != 0 && rc == INV_OK) {
        /* Unsynced renames or cuts could come back after a crash and
         * overlap what is appended next. */
        fileio_errmsg(errbuf, errlen, "journal: cannot sync directory %s: %s", dir,
                      strerror(errno));
        rc = INV_EIO;
    }
    if (rc != INV_OK)
        return rc;
    if (clock_mono_ns() - r.t0_ns > JOURNAL_REPLAY_LOG_NS)
        replay_log(&r, "done");
    assert(replay_run_ok(&r));
    *records_end = expected > from ? expected : from;
    *end_position = resume_position(*records_end, r.hwm);
    assert(*end_position >= *records_end && *records_end >= from);
    return INV_OK;
}

/* ---- dropping old segments ---------------------------------------------- */

int journal_drop_before(const char *dir, uint64_t position)
{
    assert(dir != NULL);
    journal_segment *segs;
    size_t n;
    int rc = journal_segments_list(dir, &segs, &n, NULL, 0);
    if (rc != INV_OK)
        return rc;
    bool removed = false;
    /* Segment i holds positions [first_i, first_{i+1}): all below position
     * when the next one starts at or below it. Never the last. */
    for (size_t i = 0; i + 1 < n && segs[i + 1].first <= position; i++) {
        char path[SEGMENT_PATH_MAX];
        fileio_path(path, sizeof path, dir, segs[i].first, JOURNAL_SEGMENT_SUFFIX);
        if (sysio_unlink(FAULT_REPLAY_UNLINK, path) != 0 && errno != ENOENT) {
            rc = INV_EIO;
            break;
        }
        removed = true;
    }
    free(segs);
    if (removed && fileio_fsync_dir(dir) != 0 && rc == INV_OK)
        rc = INV_EIO;
    return rc;
}
