/*
 * fileio.c — file helpers shared by the journal, snapshots and the change
 * feed (see fileio.h). No state but a reader's own; every function may run
 * on any thread (a reader on its owner's).
 */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "sysio.h"
#include "fileio.h"
#include "alloc.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

void fileio_errmsg(char *buf, size_t len, const char *fmt, ...)
{
    assert(fmt != NULL);
    if (buf == NULL || len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

/* ---- names -------------------------------------------------------------- */

void fileio_name(char *out, size_t cap, uint64_t pos, const char *suffix)
{
    assert(out != NULL && suffix != NULL);
    assert(cap >= FILEIO_NAME_HEX + strlen(suffix) + 1); /* never truncated */
    snprintf(out, cap, "%016" PRIx64 "%s", pos, suffix);
}

void fileio_path(char *out, size_t cap, const char *dir, uint64_t pos, const char *suffix)
{
    assert(out != NULL && dir != NULL && suffix != NULL);
    assert(cap > FILEIO_NAME_HEX + strlen(suffix) + 1);
    snprintf(out, cap, "%s/%016" PRIx64 "%s", dir, pos, suffix);
}

bool fileio_parse_name(const char *name, const char *suffix, uint64_t *pos)
{
    assert(name != NULL && suffix != NULL && pos != NULL);
    size_t n = strlen(name), s = strlen(suffix);
    if (n != FILEIO_NAME_HEX + s || strcmp(name + FILEIO_NAME_HEX, suffix) != 0)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < FILEIO_NAME_HEX; i++) {
        char c = name[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else
            return false;
        v = (v << 4) | d;
    }
    *pos = v;
    return true;
}

/* ---- the file header ---------------------------------------------------- */

void fileio_header_encode(uint8_t out[FILEIO_HEADER_BYTES], const fileio_format *f,
                          uint64_t position)
{
    assert(out != NULL && f != NULL);
    fileio_header_encode_extra(out, f, position, 0);
}

void fileio_header_encode_extra(uint8_t out[FILEIO_HEADER_BYTES], const fileio_format *f,
                                uint64_t position, uint32_t extra)
{
    assert(out != NULL && f != NULL);
    memcpy(out, f->magic, FILEIO_MAGIC_BYTES);
    memcpy(out + 8, &f->version, 4);
    memcpy(out + 12, &extra, 4);
    memcpy(out + 16, &position, 8);
    uint64_t sum = XXH3_64bits(out, 24);
    memcpy(out + 24, &sum, 8);
    /* what was encoded checks as it must */
    assert(fileio_header_check(out, FILEIO_HEADER_BYTES, f, position) == NULL);
}

/* Why a header is refused; callers name the file beside it. */
static const char *const header_why[FILEIO_HEADER_CHECKS] = {
    [FILEIO_HEADER_SHORT] = "short header",
    [FILEIO_HEADER_MAGIC] = "bad magic",
    [FILEIO_HEADER_CHECKSUM] = "header checksum mismatch",
    [FILEIO_HEADER_VERSION] = "unsupported format version",
    [FILEIO_HEADER_POSITION] = "header position does not match the file name",
};

const char *fileio_header_check(const uint8_t *p, size_t avail, const fileio_format *f,
                                uint64_t position)
{
    assert(p != NULL && f != NULL);
    if (avail < FILEIO_HEADER_BYTES)
        return header_why[FILEIO_HEADER_SHORT];
    if (memcmp(p, f->magic, FILEIO_MAGIC_BYTES) != 0)
        return header_why[FILEIO_HEADER_MAGIC];
    if (fileio_load_u64(p + 24) != XXH3_64bits(p, 24))
        return header_why[FILEIO_HEADER_CHECKSUM];
    uint32_t v;
    memcpy(&v, p + 8, 4);
    if (v != f->version)
        return header_why[FILEIO_HEADER_VERSION];
    if (fileio_load_u64(p + 16) != position)
        return header_why[FILEIO_HEADER_POSITION];
    return NULL;
}

/* ---- reading and syncing ------------------------------------------------ */

/* A reader's state, for asserts only (O(1)): open, with its buffer, and
 * the bytes in the buffer within it; a followed file's size within its
 * final bytes. */
static bool reader_ok(const fileio_reader *r)
{
    return r != NULL && r->fd >= 0 && r->buf != NULL && r->buf_len <= FILEIO_READ_BUF_BYTES &&
           r->read_ahead > 0 && r->read_ahead <= FILEIO_READ_BUF_BYTES &&
           (r->final_end == 0 || r->size <= r->final_end);
}

int fileio_reader_open(fileio_reader *r, const char *path, fault_site open_site,
                       fault_site read_site)
{
    assert(r != NULL && path != NULL);
    memset(r, 0, sizeof *r);
    r->fd = -1;
    r->read_site = read_site;
    int fd = sysio_open(open_site, path, O_RDONLY | O_CLOEXEC, 0);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        errno = e; /* the caller reports open's or fstat's reason */
        return -1;
    }
    r->buf = inv_malloc(FILEIO_READ_BUF_BYTES);
    if (r->buf == NULL) {
        close(fd);
        errno = ENOMEM;
        return -1;
    }
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL); /* a hint only */
    r->fd = fd;
    r->size = (uint64_t)st.st_size;
    r->read_ahead = FILEIO_READ_BUF_BYTES;
    assert(reader_ok(r) && r->buf_len == 0 && r->final_end == 0);
    return 0;
}

/* Refills the buffer so that it starts at off and holds want bytes (or
 * the file up to its end), keeping the bytes from off it already has.
 * 0, or -1 with errno and r->err_off. */
static int reader_fill(fileio_reader *r, uint64_t off, size_t want)
{
    assert(reader_ok(r));
    assert(want <= FILEIO_READ_BUF_BYTES);
    uint64_t end = r->buf_off + r->buf_len;
    if (off >= r->buf_off && off < end) {
        size_t keep = (size_t)(end - off);
        memmove(r->buf, r->buf + (off - r->buf_off), keep);
        r->buf_len = keep;
    } else {
        r->buf_len = 0;
    }
    r->buf_off = off;
    /* Fill the read-ahead (the whole buffer unless set lower), at least
     * want, never past the file's end. A read of 0 bytes before it: the
     * file shrank. */
    size_t fill_to = want > r->read_ahead ? want : r->read_ahead;
    while (r->buf_len < fill_to && r->buf_off + r->buf_len < r->size) {
        uint64_t at = r->buf_off + r->buf_len;
        size_t n = fill_to - r->buf_len;
        if (n > r->size - at)
            n = (size_t)(r->size - at);
        ssize_t got = sysio_pread(r->read_site, r->fd, r->buf + r->buf_len, n, (off_t)at);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            r->err_off = at;
            return -1;
        }
        if (got == 0) {
            r->size = at; /* cut short under us: it ends here now */
            break;
        }
        r->buf_len += (size_t)got;
        if (r->buf_len >= want)
            break; /* enough for now; the next slide reads ahead again */
    }
    /* the buffer holds file bytes from off, within the buffer and file
     * (and, followed, below the final end: nothing that may still change) */
    assert(reader_ok(r) && r->buf_off == off);
    assert(r->final_end == 0 || r->buf_off + r->buf_len <= r->final_end);
    return 0;
}

/* A followed file's size, re-read: the file's, at most final_end, never
 * lowered here (a file cut short shows as a read of 0 bytes). 0, or -1
 * with errno. */
static int reader_restat(fileio_reader *r)
{
    assert(reader_ok(r) && r->final_end != 0);
    struct stat st;
    if (fstat(r->fd, &st) != 0)
        return -1;
    uint64_t size = (uint64_t)st.st_size;
    if (size > r->final_end)
        size = r->final_end; /* the bytes past it may still change */
    if (size > r->size)
        r->size = size;
    assert(r->size <= r->final_end);
    return 0;
}

const uint8_t *fileio_reader_at_slow(fileio_reader *r, uint64_t off, size_t want, size_t *avail)
{
    assert(reader_ok(r) && avail != NULL);
    assert(want <= FILEIO_READ_BUF_BYTES && r->fd >= 0);
    *avail = 0;
    /* A followed file may have grown since its size was read. */
    if (r->final_end != 0 && r->size < r->final_end && (off >= r->size || want > r->size - off) &&
        reader_restat(r) != 0) {
        r->err_off = off;
        return NULL;
    }
    if (off >= r->size)
        return r->buf; /* nothing left: avail 0 */
    uint64_t left = r->size - off;
    size_t need = want < left ? want : (size_t)left;
    if (off < r->buf_off || off + need > r->buf_off + r->buf_len) {
        if (reader_fill(r, off, need) != 0)
            return NULL;
        if (off >= r->size)
            return r->buf;
    }
    *avail = (size_t)(r->buf_off + r->buf_len - off);
    assert(*avail > 0 || off >= r->size);
    return r->buf + (off - r->buf_off);
}

bool fileio_reader_zero_from(fileio_reader *r, uint64_t off, bool *err)
{
    assert(reader_ok(r) && err != NULL);
    *err = false;
    while (off < r->size) {
        size_t avail;
        const uint8_t *p = fileio_reader_at(r, off, FILEIO_READ_BUF_BYTES, &avail);
        if (p == NULL) {
            *err = true;
            return false;
        }
        if (avail == 0)
            break;
        if (!fileio_all_zero(p, avail))
            return false;
        off += avail;
    }
    return true;
}

void fileio_reader_read_ahead(fileio_reader *r, size_t bytes)
{
    assert(reader_ok(r));
    assert(bytes > 0 && bytes <= FILEIO_READ_BUF_BYTES);
    r->read_ahead = bytes;
}

void fileio_reader_follow(fileio_reader *r, uint64_t final_end)
{
    assert(reader_ok(r) && final_end > 0);
    if (final_end <= r->final_end)
        return; /* what was final stays final */
    r->final_end = final_end;
    if (r->size > final_end)
        r->size = final_end; /* the first call: open's size may reach past it */
    /* nothing past the final bytes was read (or was, when they were final) */
    assert(r->size <= r->final_end && r->buf_off + r->buf_len <= r->final_end);
}

void fileio_reader_close(fileio_reader *r)
{
    assert(r != NULL);
    if (r->fd >= 0)
        close(r->fd);
    free(r->buf);
    r->fd = -1;
    r->buf = NULL;
    assert(r->fd == -1 && r->buf == NULL);
}

int fileio_fsync_dir(const char *dir)
{
    assert(dir != NULL && dir[0] != '\0');
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = sysio_fsync(FAULT_DIR_SYNC, fd);
    close(fd);
    return rc;
}

int fileio_fsync_parent(const char *dir)
{
    assert(dir != NULL && dir[0] != '\0');
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int parent = openat(fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int e = errno;
    close(fd);
    if (parent < 0) {
        errno = e;
        return -1;
    }
    int rc = sysio_fsync(FAULT_DIR_SYNC, parent);
    e = errno;
    close(parent);
    errno = e;
    return rc;
}

int fileio_mkdir_durable(fault_site site, const char *dir, mode_t mode)
{
    assert(dir != NULL && dir[0] != '\0');
    if (sysio_mkdir(site, dir, mode) != 0 && errno != EEXIST)
        return -1;
    return fileio_fsync_parent(dir);
}
