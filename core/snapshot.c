/*
 * snapshot.c — checkpoint files (see snapshot.h, docs/JOURNAL.md).
 *
 * Invariants:
 *  - A file named <position>.snap is complete: it was fsynced under its
 *    temp name <position>.snap.tmp before the rename, and the directory is
 *    fsynced after the rename. Older snapshots are deleted only after that,
 *    so a crash at any point leaves the previous snapshot or the new one.
 *  - A snapshot is accepted only whole: header, every record checksum, and
 *    a trailer (record count, digest of the record checksums) that ends the
 *    file exactly. Loading verifies first and calls back second, so a bad
 *    file never feeds the caller half its records.
 *  - Nothing read from disk is trusted: every length is bounded by
 *    JOURNAL_PAYLOAD_MAX and the file size (journal_frame_decode).
 */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "sysio.h"
#include "alloc.h"
#include "snapshot.h"

#include "fileio.h"
#include "journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SNAPSHOT_MAGIC "INVSNAP1" /* 8 bytes on disk, no NUL */
#define SNAPSHOT_SUFFIX ".snap"
#define SNAPSHOT_TMP_SUFFIX ".snap.tmp"
/* Snapshot files one listing considers. */
#define SNAPSHOT_FILES_MAX 4096u
#define SNAPSHOT_PATH_MAX (JOURNAL_PATH_MAX + FILEIO_NAME_MAX)

_Static_assert(SNAPSHOT_HEADER == FILEIO_HEADER_BYTES, "a snapshot opens with the fileio header");

static const fileio_format snapshot_format = {
    SNAPSHOT_MAGIC,
    SNAPSHOT_FORMAT_VERSION,
};

struct snapshot_writer {
    int fd;
    bool failed;
    uint64_t position, records, digest;
    size_t used;
    char dir[JOURNAL_PATH_MAX];
    char tmp[SNAPSHOT_PATH_MAX];
    uint8_t buf[SNAPSHOT_BUFFER_BYTES];
};

/* A writer's state, for asserts only (O(1)): a position, and the buffer
 * cursor within the buffer; the file open until the commit closes it. */
static bool snapshot_writer_ok(const snapshot_writer *w)
{
    return w != NULL && w->position > 0 && w->used <= SNAPSHOT_BUFFER_BYTES &&
           (w->fd >= 0 || w->failed);
}

static uint64_t digest_step(uint64_t digest, uint64_t checksum)
{
    return XXH3_64bits_withSeed(&checksum, sizeof checksum, digest);
}

static int write_full(int fd, const uint8_t *p, size_t n)
{
    assert(fd >= 0 && (p != NULL || n == 0));
    while (n > 0) {
        ssize_t w = sysio_write(FAULT_SNAPSHOT_WRITE, fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    assert(n == 0);
    return 0;
}

/* ---- writing ---------------------------------------------------------------- */

int snapshot_begin(snapshot_writer **out, const char *dir, uint64_t position)
{
    if (out == NULL)
        return INV_EINVALID;
    *out = NULL;
    if (dir == NULL || strlen(dir) >= JOURNAL_PATH_MAX || position == 0)
        return INV_EINVALID;
    /* Durably: the commit syncs the directory, not its parent. */
    if (fileio_mkdir_durable(FAULT_SNAPSHOT_MKDIR, dir, 0755) != 0)
        return INV_EIO;
    snapshot_writer *w = inv_malloc(sizeof *w);
    if (w == NULL)
        return INV_ENOMEM;
    w->failed = false;
    w->position = position;
    w->records = 0;
    w->digest = position;
    snprintf(w->dir, sizeof w->dir, "%s", dir);
    fileio_path(w->tmp, sizeof w->tmp, dir, position, SNAPSHOT_TMP_SUFFIX);
    w->fd = sysio_open(FAULT_SNAPSHOT_OPEN, w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        free(w);
        return INV_EIO;
    }
    fileio_header_encode(w->buf, &snapshot_format, position);
    w->used = SNAPSHOT_HEADER;
    assert(snapshot_writer_ok(w) && w->used == SNAPSHOT_HEADER && w->records == 0);
    *out = w;
    return INV_OK;
}

static int flush_buf(snapshot_writer *w)
{
    assert(snapshot_writer_ok(w));
    if (!w->failed && w->used > 0 && write_full(w->fd, w->buf, w->used) != 0)
        w->failed = true;
    w->used = 0;
    assert(w->used == 0);
    return w->failed ? INV_EIO : INV_OK;
}

static int add_record(snapshot_writer *w, uint8_t type, const void *payload, uint32_t len)
{
    assert(snapshot_writer_ok(w));
    assert(len <= JOURNAL_PAYLOAD_MAX && (payload != NULL || len == 0));
    if (w->failed)
        return INV_EIO;
    uint64_t size = journal_record_size(len);
    if (w->used + size > SNAPSHOT_BUFFER_BYTES && flush_buf(w) != INV_OK)
        return INV_EIO;
    if (size > SNAPSHOT_BUFFER_BYTES) {
        /* bigger than the buffer: frame it in its own allocation */
        uint8_t *tmp = inv_malloc(size);
        if (tmp == NULL)
            return INV_ENOMEM;
        journal_frame_encode(tmp, type, payload, len);
        if (write_full(w->fd, tmp, size) != 0)
            w->failed = true;
        free(tmp);
    } else {
        journal_frame_encode(w->buf + w->used, type, payload, len);
        w->used += size;
    }
    if (w->failed)
        return INV_EIO;
    w->digest = digest_step(w->digest, journal_frame_checksum(type, payload, len));
    assert(snapshot_writer_ok(w)); /* the buffer cursor within bounds */
    w->records++;
    return INV_OK;
}

int snapshot_add(snapshot_writer *w, uint8_t type, const void *payload, uint32_t len)
{
    if (w == NULL || type < JOURNAL_TYPE_USER_MIN || len > JOURNAL_PAYLOAD_MAX ||
        (len > 0 && payload == NULL))
        return INV_EINVALID;
    int rc = add_record(w, type, payload, len);
    assert(rc == INV_OK || rc == INV_EIO || rc == INV_ENOMEM); /* add_record's answers */
    return rc;
}

void snapshot_abort(snapshot_writer *w)
{
    if (w == NULL)
        return;
    assert(w->tmp[0] != '\0'); /* snapshot_begin named the temporary file */
    if (w->fd >= 0)
        close(w->fd);
    sysio_unlink(FAULT_SNAPSHOT_UNLINK, w->tmp);
    free(w);
}

/* Deletes snapshots and temp files older than keep (best effort). */
static void delete_older(const char *dir, uint64_t keep)
{
    assert(dir != NULL && keep > 0);
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        uint64_t pos;
        if ((fileio_parse_name(e->d_name, SNAPSHOT_SUFFIX, &pos) ||
             fileio_parse_name(e->d_name, SNAPSHOT_TMP_SUFFIX, &pos)) &&
            pos < keep)
            sysio_unlinkat(FAULT_SNAPSHOT_UNLINK, dirfd(d), e->d_name, 0);
    }
    closedir(d);
}

int snapshot_commit(snapshot_writer *w)
{
    if (w == NULL)
        return INV_EINVALID;
    assert(snapshot_writer_ok(w));
    uint8_t trailer[SNAPSHOT_TRAILER_PAYLOAD];
    memcpy(trailer, &w->records, 8);
    memcpy(trailer + 8, &w->digest, 8);
    int rc = INV_OK;
    if (w->failed)
        rc = INV_EIO;
    if (rc == INV_OK) {
        /* the trailer is framed like any record; it is not counted */
        uint64_t records = w->records;
        rc = add_record(w, JOURNAL_TYPE_SNAPSHOT_TRAILER, trailer, sizeof trailer);
        w->records = records;
    }
    if (rc == INV_OK)
        rc = flush_buf(w);
    if (rc == INV_OK && sysio_fsync(FAULT_SNAPSHOT_SYNC, w->fd) != 0)
        rc = INV_EIO;
    if (close(w->fd) != 0 && rc == INV_OK)
        rc = INV_EIO;
    w->fd = -1;
    char final[SNAPSHOT_PATH_MAX];
    fileio_path(final, sizeof final, w->dir, w->position, SNAPSHOT_SUFFIX);
    if (rc == INV_OK && sysio_rename(FAULT_SNAPSHOT_RENAME, w->tmp, final) != 0)
        rc = INV_EIO;
    if (rc != INV_OK) {
        snapshot_abort(w);
        return rc;
    }
    if (fileio_fsync_dir(w->dir) != 0)
        rc = INV_EIO; /* renamed but maybe not durable: say so */
    if (rc == INV_OK) {
        delete_older(w->dir, w->position);
        fileio_fsync_dir(w->dir);
    }
    free(w);
    return rc;
}

/* ---- loading ----------------------------------------------------------------- */

/* Verifies the snapshot rd reads at position pos; NULL if valid, else the
 * reason with *bad_off set. *read_err: a read error stopped it (errno,
 * rd->err_off). */
static const char *verify(fileio_reader *rd, uint64_t pos, uint64_t *bad_off, bool *read_err)
{
    assert(rd != NULL && rd->fd >= 0 && pos > 0);
    assert(bad_off != NULL && read_err != NULL);
    *bad_off = 0;
    *read_err = false;
    size_t avail;
    const uint8_t *p = fileio_reader_at(rd, 0, SNAPSHOT_HEADER, &avail);
    if (p == NULL) {
        *read_err = true;
        return "read error";
    }
    const char *why = fileio_header_check(p, avail, &snapshot_format, pos);
    if (why != NULL)
        return why;
    uint64_t off = SNAPSHOT_HEADER, records = 0, digest = pos;
    while (off < rd->size) {
        uint8_t type;
        const uint8_t *pl;
        uint32_t len;
        uint64_t sz;
        *bad_off = off;
        if ((p = journal_record_read(rd, off, &avail)) == NULL) {
            *read_err = true;
            return "read error";
        }
        why = journal_frame_decode(p, avail, &type, &pl, &len, &sz);
        if (why != NULL)
            return why;
        if (type == JOURNAL_TYPE_SNAPSHOT_TRAILER) {
            uint64_t count, dig;
            if (len != SNAPSHOT_TRAILER_PAYLOAD)
                return "bad trailer length";
            memcpy(&count, pl, 8);
            memcpy(&dig, pl + 8, 8);
            if (count != records || dig != digest)
                return "trailer does not match the records";
            if (off + sz != rd->size)
                return "bytes after the trailer";
            return NULL;
        }
        if (type < JOURNAL_TYPE_USER_MIN)
            return "record type reserved for the journal";
        digest = digest_step(digest, journal_frame_checksum(type, pl, len));
        assert(off + sz <= rd->size); /* a decoded record within the file */
        records++;
        off += sz;
    }
    *bad_off = rd->size;
    return "no trailer (incomplete snapshot)";
}

/* A read error of the snapshot at path: INV_EIO naming file and offset. */
static int read_failed(const char *path, const fileio_reader *rd, char *errbuf, size_t errlen)
{
    assert(path != NULL && rd != NULL);
    fileio_errmsg(errbuf, errlen, "snapshot: cannot read %s at byte offset %" PRIu64 ": %s", path,
                  rd->err_off, strerror(errno));
    return INV_EIO;
}

/* Verifies then loads one snapshot file (read twice with pread, never
 * mapped: a media error is INV_EIO, not a SIGBUS). INV_EINVALID (warned)
 * if bad or gone; INV_EIO (or INV_ENOMEM) when it cannot be opened: an I/O
 * error says nothing against the file, and an older snapshot may need
 * segments that were dropped since (issue 17's fault loops: skipping it
 * refused the open as a "missing segment"). */
static int load_file(const char *path, uint64_t pos, snapshot_load_fn fn, void *ctx, char *errbuf,
                     size_t errlen)
{
    assert(path != NULL && pos > 0);
    fileio_reader rd;
    if (fileio_reader_open(&rd, path, FAULT_FILE_OPEN, FAULT_FILE_READ) != 0) {
        int e = errno;
        FILEIO_WARN("invcore snapshot: warning: cannot read %s: %s\n", path, strerror(e));
        if (e == ENOENT)
            return INV_EINVALID; /* removed since the listing: try older */
        fileio_errmsg(errbuf, errlen, "snapshot: cannot open %s: %s", path, strerror(e));
        return e == ENOMEM ? INV_ENOMEM : INV_EIO;
    }
    uint64_t bad_off;
    bool read_err;
    const char *why = verify(&rd, pos, &bad_off, &read_err);
    int rc = INV_OK;
    if (read_err) {
        rc = read_failed(path, &rd, errbuf, errlen);
    } else if (why != NULL) {
        FILEIO_WARN("invcore snapshot: warning: ignoring %s: %s at byte "
                    "offset %" PRIu64 "\n",
                    path, why, bad_off);
        rc = INV_EINVALID;
    }
    for (uint64_t off = SNAPSHOT_HEADER; rc == INV_OK && off < rd.size;) {
        uint8_t type;
        const uint8_t *p, *pl;
        uint32_t len;
        uint64_t sz;
        size_t avail;
        if ((p = journal_record_read(&rd, off, &avail)) == NULL) {
            rc = read_failed(path, &rd, errbuf, errlen);
            break;
        }
        /* verified above: cannot fail, but stay defensive */
        if (journal_frame_decode(p, avail, &type, &pl, &len, &sz) != NULL ||
            type == JOURNAL_TYPE_SNAPSHOT_TRAILER)
            break;
        if (fn != NULL && (rc = fn(ctx, type, pl, len)) != INV_OK) {
            fileio_errmsg(errbuf, errlen, "snapshot: load of %s stopped by its callback (%d)", path,
                          rc);
            rc = rc == INV_EINVALID ? INV_EIO : rc; /* not "try older" */
        }
        off += sz;
    }
    assert(rc != INV_OK || !read_err);
    fileio_reader_close(&rd);
    return rc;
}

static int cmp_desc(const void *a, const void *b)
{
    assert(a != NULL && b != NULL);
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

int snapshot_load_latest(const char *dir, uint64_t *position, snapshot_load_fn fn, void *ctx,
                         char *errbuf, size_t errlen)
{
    if (dir == NULL || position == NULL || strlen(dir) >= JOURNAL_PATH_MAX)
        return INV_EINVALID;
    DIR *d = opendir(dir);
    if (d == NULL)
        return errno == ENOENT ? INV_ENOTFOUND : INV_EIO;
    uint64_t *found = inv_malloc(SNAPSHOT_FILES_MAX * sizeof *found);
    if (found == NULL) {
        closedir(d);
        return INV_ENOMEM;
    }
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        uint64_t pos;
        if (fileio_parse_name(e->d_name, SNAPSHOT_TMP_SUFFIX, &pos))
            FILEIO_WARN("invcore snapshot: warning: ignoring unfinished "
                        "%s/%s\n",
                        dir, e->d_name);
        else if (fileio_parse_name(e->d_name, SNAPSHOT_SUFFIX, &pos) && pos > 0 &&
                 n < SNAPSHOT_FILES_MAX)
            found[n++] = pos;
    }
    closedir(d);
    assert(n <= SNAPSHOT_FILES_MAX);
    qsort(found, n, sizeof *found, cmp_desc);
    int rc = INV_ENOTFOUND;
    for (size_t i = 0; i < n; i++) {
        char path[SNAPSHOT_PATH_MAX];
        fileio_path(path, sizeof path, dir, found[i], SNAPSHOT_SUFFIX);
        rc = load_file(path, found[i], fn, ctx, errbuf, errlen);
        if (rc == INV_OK)
            *position = found[i];
        if (rc != INV_EINVALID)
            break;
        rc = INV_ENOTFOUND;
    }
    assert(rc != INV_OK || *position > 0);
    free(found);
    if (rc == INV_ENOTFOUND)
        fileio_errmsg(errbuf, errlen, "snapshot: no valid snapshot in %s", dir);
    return rc;
}
