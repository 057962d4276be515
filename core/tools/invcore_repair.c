/*
 * invcore_repair.c — build/invcore-repair: the operator's way back from a
 * journal that replay refuses ("journal corrupt ... refusing to open").
 *
 *   invcore-repair [--dry-run] [--yes] DATA_DIR
 *
 * It takes the directory's lock (no engine may run on it), finds where
 * replay starts (after the newest valid snapshot) and reads the journal
 * from there, read-only, to the first bad record: a record that fails its
 * checks, a bad segment header, or a segment that does not start where the
 * previous one ended. It shows that point (file, byte offset, position,
 * why) and what a cut there drops (the bytes after it in its segment, the
 * later segments, and how many valid records it can still see beyond it),
 * asks for confirmation (unless --yes), copies every segment file it will
 * cut or set aside to DATA_DIR/repair-<UTC time>/ (synced), and only then
 * cuts: journal_replay's repair mode cuts the segment at the bad record
 * and renames the later segments *.jnl.cut. Last, it replays the journal
 * again without repair to check that it now opens.
 *
 * Exit codes: 0 nothing to repair (the journal replays as it is, or ends
 * in a torn tail that replay cuts by itself) or repaired; 1 an error (I/O,
 * damage a cut cannot mend, the check after the cut failed); 2 bad
 * arguments (usage printed); 3 damage found and left as it was (--dry-run,
 * or the confirmation was not "yes"); 4 the directory is in use (an engine
 * holds its lock).
 *
 * Invariants: nothing in DATA_DIR changes before the copy is complete and
 * synced, and nothing at all changes with --dry-run or without "yes"; the
 * cut is journal_replay's own (the tool's scan only predicts and reports
 * it: both cut at the first bad record in position order).
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"
#include "invcore.h"
#include "journal.h"
#include "recovery.h"
#include "snapshot.h"

#define EXIT_DONE 0
#define EXIT_ERROR 1
#define EXIT_USAGE 2
#define EXIT_LEFT 3
#define EXIT_IN_USE 4

#define REPAIR_ERR_MAX 1024
#define REPAIR_PATH_MAX (JOURNAL_PATH_MAX + 2 * FILEIO_NAME_MAX)
/* The copy's directory: DATA_DIR/repair-YYYYmmddTHHMMSSZ[-N]. */
#define REPAIR_DIR_PREFIX "repair-"
/* Suffixes tried when a copy of the same second exists. */
#define REPAIR_DIR_TRIES 100
/* Bytes one sendfile of the copy moves at most. */
#define REPAIR_COPY_CHUNK (1u << 20)
/* Bytes of the confirmation answer read from stdin. */
#define REPAIR_ANSWER_MAX 64
/* The largest segment file the scan reads whole (a segment is at most
 * segment_bytes, 64 MiB by default, plus its zeros ahead). */
#define REPAIR_SEGMENT_MAX (UINT64_C(4) << 30)

static const char g_usage[] =
    "usage: invcore-repair [--dry-run] [--yes] DATA_DIR\n"
    "cuts a corrupt journal at its first bad record, after showing what it drops\n"
    "and copying the segment files it changes to DATA_DIR/repair-<time>/.\n"
    "exit: 0 nothing to repair or repaired, 1 error, 2 usage, 3 damage left\n"
    "(--dry-run or not confirmed), 4 directory in use\n";

typedef struct {
    const char *dir;
    bool dry_run, yes, help;
} opts;

/* The first bad point of the journal, and what a cut there drops. */
typedef struct {
    uint64_t from; /* where replay starts (after the snapshot) */
    size_t first_seg; /* the segment replay starts in */
    uint64_t kept_records; /* valid records before the bad point */
    bool found; /* a bad point exists */
    bool gap; /* it is a segment that does not continue the previous one */
    size_t seg; /* the segment it is in */
    uint64_t offset, position; /* byte offset in that file; stream position */
    const char *why;
    uint64_t drop_bytes; /* from the bad point to the end of the journal */
    size_t later_segments; /* segments after seg (set aside whole) */
    uint64_t valid_after; /* valid records seen beyond the bad point */
    bool later_data; /* a later segment holds more than its header */
    uint64_t synced; /* the largest synced end a valid record (or a clean
                      * close's header) names: every record below it was
                      * fdatasynced (journal.h, the synced-back field) */
} repair_plan;

/* Replay itself cuts, and opens, a bad point with no later segment holding
 * data and either nothing valid after it or at/past every synced end the
 * stream names (a hole in the last unsynced write); anything else it
 * refuses (journal_replay.c, bad_record: the same rule). */
static bool plan_is_torn_tail(const repair_plan *pl)
{
    bool unsynced =
        pl->offset >= JOURNAL_SEGMENT_HEADER && pl->synced != 0 && pl->position >= pl->synced;
    return pl->found && !pl->gap && !pl->later_data && (pl->valid_after == 0 || unsynced);
}

/* Raises the plan's synced end to e. */
static void plan_synced(repair_plan *pl, uint64_t e)
{
    if (e > pl->synced)
        pl->synced = e;
}

/* ---- arguments ------------------------------------------------------------ */

static int parse_args(opts *o, int argc, char **argv)
{
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0)
            o->help = true;
        else if (strcmp(a, "--dry-run") == 0)
            o->dry_run = true;
        else if (strcmp(a, "--yes") == 0)
            o->yes = true;
        else if (a[0] == '-' || o->dir != NULL) {
            fprintf(stderr, "invcore-repair: unexpected argument %s\n", a);
            return -1;
        } else
            o->dir = a;
    }
    if (o->help)
        return 0;
    if (o->dir == NULL || o->dir[0] == '\0' || strlen(o->dir) >= JOURNAL_PATH_MAX) {
        fprintf(stderr, "invcore-repair: give one data directory (shorter than %u bytes)\n",
                JOURNAL_PATH_MAX);
        return -1;
    }
    return 0;
}

/* ---- the lock ------------------------------------------------------------- */

/* Takes DATA_DIR's lock as an engine would (recovery.c). The lock file is
 * created only when the tool will write (a dry run changes nothing); a
 * directory without one has never been opened by an engine. Returns an
 * exit code; *fd_out gets the lock's fd (-1: none). */
static int take_lock(const opts *o, int *fd_out)
{
    char path[REPAIR_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", o->dir, RECOVERY_LOCK_FILE);
    int flags = O_RDWR | O_CLOEXEC | (o->dry_run ? 0 : O_CREAT);
    int fd = open(path, flags, 0644);
    *fd_out = fd;
    if (fd < 0 && o->dry_run && errno == ENOENT)
        return EXIT_DONE;
    if (fd < 0) {
        fprintf(stderr, "invcore-repair: cannot open %s: %s\n", path, strerror(errno));
        return EXIT_ERROR;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) == 0)
        return EXIT_DONE;
    int e = errno;
    fprintf(stderr, "invcore-repair: %s is in use (%s): stop the engine that holds it first\n",
            o->dir, strerror(e));
    return e == EWOULDBLOCK ? EXIT_IN_USE : EXIT_ERROR;
}

/* ---- the read-only scan ----------------------------------------------------- */

/* The record at p + off (avail bytes): NULL if replay accepts it, with *sz
 * and *type; else why not. */
static const char *check_record(const uint8_t *p, uint64_t off, uint64_t size, uint8_t *type,
                                uint64_t *sz)
{
    assert(off < size && p != NULL);
    const uint8_t *pl;
    uint32_t len;
    const char *why = journal_frame_decode(p + off, size - off, type, &pl, &len, sz);
    if (why == NULL && *type != JOURNAL_TYPE_PAD && *type < JOURNAL_TYPE_USER_MIN)
        why = "record type reserved for the journal";
    return why;
}

/* Valid records found by trying every 8-aligned offset of p[off, size)
 * of the segment at first (a record found is skipped whole); each raises
 * the plan's synced end to what it names. */
static uint64_t count_valid(repair_plan *pl, const uint8_t *p, uint64_t first, uint64_t off,
                            uint64_t size)
{
    uint64_t n = 0;
    assert(p != NULL || size == 0);
    off = (off + 7) & ~(uint64_t)7;
    while (off + JOURNAL_RECORD_OVERHEAD <= size) {
        uint8_t type;
        uint64_t sz;
        if (check_record(p, off, size, &type, &sz) == NULL) {
            n += type != JOURNAL_TYPE_PAD;
            if (off >= JOURNAL_SEGMENT_HEADER)
                plan_synced(pl,
                            journal_frame_synced(p + off, first + (off - JOURNAL_SEGMENT_HEADER)));
            off += sz;
        } else {
            off += 8;
        }
    }
    return n;
}

/* Reads segment s of dir whole into *p (malloc'd; read with pread, never
 * mapped: a media error is a message, not a SIGBUS); false (message
 * printed) when it cannot. */
static bool read_segment(const char *dir, const journal_segment *s, uint8_t **p, uint64_t *size)
{
    char path[REPAIR_PATH_MAX];
    fileio_path(path, sizeof path, dir, s->first, JOURNAL_SEGMENT_SUFFIX);
    *p = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        fprintf(stderr, "invcore-repair: cannot open %s: %s\n", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return false;
    }
    uint64_t n = (uint64_t)st.st_size;
    uint8_t *buf = n > REPAIR_SEGMENT_MAX ? NULL : malloc(n ? n : 1);
    if (buf == NULL) {
        fprintf(stderr, "invcore-repair: cannot read %s whole (%" PRIu64 " bytes)\n", path, n);
        close(fd);
        return false;
    }
    uint64_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, buf + got, n - got, (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            fprintf(stderr, "invcore-repair: cannot read %s at byte offset %" PRIu64 ": %s\n", path,
                    got, strerror(errno));
            free(buf);
            close(fd);
            return false;
        }
        if (r == 0)
            break; /* the file shrank: what was read is the file */
        got += (uint64_t)r;
    }
    close(fd);
    assert(got <= n);
    *p = buf;
    *size = got;
    return true;
}

/* Walks segment s's records as replay does; on the first bad one fills
 * the plan's point. *end gets the position after its last good record. */
static void scan_segment(repair_plan *pl, size_t i, const journal_segment *s, const uint8_t *p,
                         uint64_t size, uint64_t *end)
{
    assert(!pl->found && i < SIZE_MAX);
    uint64_t off = JOURNAL_SEGMENT_HEADER;
    const char *why = fileio_header_check(p, size, &journal_segment_format, s->first);
    if (why != NULL) {
        off = 0;
    } else {
        /* a clean close synced every record below its header's mark */
        uint32_t extra = fileio_header_extra(p);
        if (extra & JOURNAL_HEADER_CLEAN)
            plan_synced(pl, s->first + 8u * (uint64_t)(extra & JOURNAL_HEADER_MARK_MASK));
    }
    while (why == NULL && off < size) {
        uint8_t type;
        uint64_t sz;
        const char *bad = check_record(p, off, size, &type, &sz);
        if (bad != NULL) {
            /* zeros to the end: the writer's zeros ahead, where the
             * segment's records end (replay trims them) */
            if (!fileio_all_zero(p + off, size - off))
                why = bad;
            break;
        }
        pl->kept_records += type != JOURNAL_TYPE_PAD;
        plan_synced(pl, journal_frame_synced(p + off, s->first + (off - JOURNAL_SEGMENT_HEADER)));
        off += sz;
    }
    assert(off <= size);
    *end = s->first + (off > JOURNAL_SEGMENT_HEADER ? off - JOURNAL_SEGMENT_HEADER : 0);
    if (why == NULL)
        return;
    pl->found = true;
    pl->seg = i;
    pl->offset = off;
    pl->position = *end; /* where the bad record (or the file) starts */
    pl->why = why;
    pl->drop_bytes = size - off;
    pl->valid_after = count_valid(pl, p, s->first, off + 8, size);
}

/* Adds what the segments set aside whole hold to the plan (after the bad
 * point's segment; from it when it is a gap). */
static bool scan_later(repair_plan *pl, const char *dir, const journal_segment *segs, size_t n)
{
    assert(pl->found && pl->seg < n);
    size_t first = pl->seg + (pl->gap ? 0 : 1);
    pl->later_segments = n - first;
    for (size_t k = first; k < n; k++) {
        uint8_t *p;
        uint64_t size;
        if (!read_segment(dir, &segs[k], &p, &size))
            return false;
        pl->drop_bytes += k != pl->seg ? size : 0; /* a gap's own size is counted */
        pl->later_data |= k != pl->seg && size > JOURNAL_SEGMENT_HEADER;
        bool header_ok =
            fileio_header_check(p, size, &journal_segment_format, segs[k].first) == NULL;
        pl->valid_after +=
            count_valid(pl, p, segs[k].first, header_ok ? JOURNAL_SEGMENT_HEADER : 0, size);
        free(p);
    }
    return true;
}

/* Finds the first bad point of the journal replay would read. */
static int plan_repair(repair_plan *pl, const char *dir, const journal_segment *segs, size_t n)
{
    assert(pl->from >= JOURNAL_POSITION_FIRST && (n == 0 || segs != NULL));
    size_t i = 0;
    while (i + 1 < n && segs[i + 1].first <= pl->from)
        i++;
    pl->first_seg = i;
    if (n > 0 && segs[i].first > pl->from) {
        fprintf(stderr,
                "invcore-repair: the journal starts at position %" PRIu64
                " but replay needs %" PRIu64
                " (a missing segment): cutting cannot mend this; restore the segment\n",
                segs[i].first, pl->from);
        return EXIT_ERROR;
    }
    uint64_t expected = n > 0 ? segs[i].first : 0;
    for (; i < n && !pl->found; i++) {
        if (segs[i].first != expected) {
            *pl = (repair_plan){.from = pl->from,
                                .first_seg = pl->first_seg,
                                .kept_records = pl->kept_records,
                                .found = true,
                                .gap = true,
                                .seg = i,
                                .position = segs[i].first,
                                .why = "the segment does not start where the previous one ends "
                                       "(missing segment)",
                                .drop_bytes = segs[i].size};
            break;
        }
        uint8_t *p;
        uint64_t size;
        if (!read_segment(dir, &segs[i], &p, &size))
            return EXIT_ERROR;
        scan_segment(pl, i, &segs[i], p, size, &expected);
        free(p);
    }
    if (pl->found && !scan_later(pl, dir, segs, n))
        return EXIT_ERROR;
    assert(!pl->found || pl->seg < n);
    return EXIT_DONE;
}

static void print_plan(const repair_plan *pl, const char *dir, const journal_segment *segs,
                       size_t n)
{
    printf("invcore-repair: %s\n", dir);
    if (pl->from > JOURNAL_POSITION_FIRST)
        printf("  snapshot: position %" PRIu64 " (replay starts there)\n", pl->from);
    else
        printf("  snapshot: none (replay starts at the first segment)\n");
    printf("  journal: %zu segment(s) from the one replay starts in\n", n - pl->first_seg);
    if (!pl->found) {
        printf("  no bad record: the journal replays as it is; nothing to repair\n");
        return;
    }
    char path[REPAIR_PATH_MAX];
    fileio_path(path, sizeof path, dir, segs[pl->seg].first, JOURNAL_SEGMENT_SUFFIX);
    printf("  first bad record: %s at byte offset %" PRIu64 " (position %" PRIu64 "): %s\n", path,
           pl->offset, pl->position, pl->why);
    printf("  kept: %" PRIu64 " valid record(s) before it\n", pl->kept_records);
    printf("  dropped: %" PRIu64 " byte(s) from there, %zu segment(s) set aside whole as *%s.cut\n",
           pl->drop_bytes, pl->later_segments, JOURNAL_SEGMENT_SUFFIX);
    printf("  valid records beyond the bad one: %" PRIu64 "%s\n", pl->valid_after,
           plan_is_torn_tail(pl) ? " (a torn tail: replay cuts it by itself)" : " (lost by a cut)");
}

/* ---- the copy ------------------------------------------------------------- */

/* Copies from to a new file to, synced (sendfile: no user buffer). 0, or
 * -1 with errno. */
static int copy_file(const char *from, const char *to)
{
    assert(from != NULL && to != NULL && strcmp(from, to) != 0);
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return -1;
    int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    ssize_t moved = out < 0 ? -1 : 1;
    while (moved > 0) {
        moved = sendfile(out, in, NULL, REPAIR_COPY_CHUNK);
        if (moved < 0 && errno == EINTR)
            moved = 1;
    }
    int rc = moved == 0 ? fsync(out) : -1;
    int e = errno;
    close(in);
    if (out >= 0 && close(out) != 0 && rc == 0)
        rc = -1, e = errno;
    errno = e;
    return rc;
}

/* Makes DATA_DIR/repair-<time>[-N]/ (durably) into out. */
static int make_copy_dir(const char *dir, char *out, size_t cap)
{
    time_t now = time(NULL);
    struct tm tm;
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", gmtime_r(&now, &tm));
    for (int k = 0; k < REPAIR_DIR_TRIES; k++) {
        if (k == 0)
            snprintf(out, cap, "%s/%s%s", dir, REPAIR_DIR_PREFIX, stamp);
        else
            snprintf(out, cap, "%s/%s%s-%d", dir, REPAIR_DIR_PREFIX, stamp, k);
        if (mkdir(out, 0755) == 0)
            return fileio_fsync_dir(dir);
        if (errno != EEXIST)
            return -1;
    }
    errno = EEXIST;
    return -1;
}

/* Copies every segment the cut changes (the bad one and all after it). */
static int copy_segments(const repair_plan *pl, const char *dir, const journal_segment *segs,
                         size_t n, char *copy_dir, size_t cap)
{
    if (make_copy_dir(dir, copy_dir, cap) != 0) {
        fprintf(stderr, "invcore-repair: cannot create a copy directory in %s: %s\n", dir,
                strerror(errno));
        return EXIT_ERROR;
    }
    int code = EXIT_DONE;
    for (size_t k = pl->seg; k < n && code == EXIT_DONE; k++) {
        char from[REPAIR_PATH_MAX], to[REPAIR_PATH_MAX];
        fileio_path(from, sizeof from, dir, segs[k].first, JOURNAL_SEGMENT_SUFFIX);
        fileio_path(to, sizeof to, copy_dir, segs[k].first, JOURNAL_SEGMENT_SUFFIX);
        if (copy_file(from, to) != 0) {
            fprintf(stderr, "invcore-repair: cannot copy %s to %s: %s\n", from, to,
                    strerror(errno));
            code = EXIT_ERROR;
        }
    }
    if (code == EXIT_DONE && fileio_fsync_dir(copy_dir) != 0) {
        fprintf(stderr, "invcore-repair: cannot sync %s: %s\n", copy_dir, strerror(errno));
        code = EXIT_ERROR;
    }
    if (code == EXIT_DONE)
        printf("  copied %zu segment file(s) to %s\n", n - pl->seg, copy_dir);
    return code;
}

/* ---- the cut -------------------------------------------------------------- */

/* "yes" on stdin (one line). */
static bool confirmed(void)
{
    printf("Cut the journal there? The files are copied first. Type 'yes' to go on: ");
    fflush(stdout);
    char answer[REPAIR_ANSWER_MAX];
    if (fgets(answer, sizeof answer, stdin) == NULL)
        return false;
    answer[strcspn(answer, "\r\n")] = '\0';
    return strcmp(answer, "yes") == 0;
}

/* journal_replay's repair cut, then a replay without repair as the check. */
static int cut_and_check(const repair_plan *pl, const char *dir)
{
    assert(pl->found && !plan_is_torn_tail(pl)); /* replay cuts a torn tail itself */
    char err[REPAIR_ERR_MAX] = "";
    uint64_t end = 0;
    fflush(stdout); /* the report before replay's warnings on stderr */
    int rc = journal_replay(dir, pl->from, true, NULL, NULL, &end, err, sizeof err);
    if (rc != INV_OK) {
        fprintf(stderr, "invcore-repair: the cut failed: %s\n", err[0] ? err : inv_strerror(rc));
        return EXIT_ERROR;
    }
    rc = journal_replay(dir, pl->from, false, NULL, NULL, &end, err, sizeof err);
    if (rc != INV_OK) {
        fprintf(stderr, "invcore-repair: the journal still does not replay: %s\n",
                err[0] ? err : inv_strerror(rc));
        return EXIT_ERROR;
    }
    printf("  repaired: the journal replays cleanly; the next record goes at position %" PRIu64
           "\n",
           end);
    return EXIT_DONE;
}

/* The replay start: the newest valid snapshot's position, or the first. */
static int replay_start(const char *dir, uint64_t *from)
{
    char err[REPAIR_ERR_MAX] = "";
    uint64_t pos = 0;
    int rc = snapshot_load_latest(dir, &pos, NULL, NULL, err, sizeof err);
    if (rc != INV_OK && rc != INV_ENOTFOUND) {
        fprintf(stderr, "invcore-repair: cannot read the snapshots of %s: %s\n", dir,
                err[0] ? err : inv_strerror(rc));
        return EXIT_ERROR;
    }
    *from = rc == INV_OK && pos > JOURNAL_POSITION_FIRST ? pos : JOURNAL_POSITION_FIRST;
    return EXIT_DONE;
}

static int repair(const opts *o)
{
    repair_plan pl = {0};
    int code = replay_start(o->dir, &pl.from);
    if (code != EXIT_DONE)
        return code;
    journal_segment *segs = NULL;
    size_t n = 0;
    char err[REPAIR_ERR_MAX] = "";
    int rc = journal_segments_list(o->dir, &segs, &n, err, sizeof err);
    if (rc != INV_OK) {
        fprintf(stderr, "invcore-repair: %s\n", err[0] ? err : inv_strerror(rc));
        return EXIT_ERROR;
    }
    code = plan_repair(&pl, o->dir, segs, n);
    if (code == EXIT_DONE)
        print_plan(&pl, o->dir, segs, n);
    bool needed = code == EXIT_DONE && pl.found && !plan_is_torn_tail(&pl);
    if (needed && o->dry_run) {
        printf("  dry run: nothing changed\n");
        code = EXIT_LEFT;
    } else if (needed && !o->yes && !confirmed()) {
        printf("  not confirmed: nothing changed\n");
        code = EXIT_LEFT;
    } else if (needed) {
        char copy_dir[REPAIR_PATH_MAX];
        code = copy_segments(&pl, o->dir, segs, n, copy_dir, sizeof copy_dir);
        if (code == EXIT_DONE)
            code = cut_and_check(&pl, o->dir);
    }
    free(segs);
    return code;
}

int main(int argc, char **argv)
{
    opts o;
    int code = parse_args(&o, argc, argv) == 0 ? EXIT_DONE : EXIT_USAGE;
    if (code == EXIT_USAGE || o.help) {
        fputs(g_usage, code == EXIT_USAGE ? stderr : stdout);
        return code;
    }
    struct stat st;
    if (stat(o.dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "invcore-repair: %s is not a directory\n", o.dir);
        return EXIT_ERROR;
    }
    int lock_fd = -1;
    code = take_lock(&o, &lock_fd);
    if (code == EXIT_DONE)
        code = repair(&o);
    if (fflush(stdout) != 0 && code == EXIT_DONE)
        code = EXIT_ERROR;
    if (lock_fd >= 0)
        close(lock_fd); /* releases the directory */
    return code;
}
