/*
 * fileio.c — file helpers shared by the journal and snapshots (see
 * fileio.h). Stateless; every function may run on any thread.
 */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "sysio.h"
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

void fileio_errmsg(char *buf, size_t len, const char *fmt, ...)
{
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
    snprintf(out, cap, "%016" PRIx64 "%s", pos, suffix);
}

void fileio_path(char *out, size_t cap, const char *dir, uint64_t pos, const char *suffix)
{
    snprintf(out, cap, "%s/%016" PRIx64 "%s", dir, pos, suffix);
}

bool fileio_parse_name(const char *name, const char *suffix, uint64_t *pos)
{
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
    fileio_header_encode_extra(out, f, position, 0);
}

void fileio_header_encode_extra(uint8_t out[FILEIO_HEADER_BYTES], const fileio_format *f,
                                uint64_t position, uint32_t extra)
{
    memcpy(out, f->magic, FILEIO_MAGIC_BYTES);
    memcpy(out + 8, &f->version, 4);
    memcpy(out + 12, &extra, 4);
    memcpy(out + 16, &position, 8);
    uint64_t sum = XXH3_64bits(out, 24);
    memcpy(out + 24, &sum, 8);
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

const char *fileio_map(const char *path, bool sequential, const uint8_t **p, uint64_t *size)
{
    *p = NULL;
    *size = 0;
    int fd = sysio_open(FAULT_FILE_OPEN, path, O_RDONLY | O_CLOEXEC, 0);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        errno = e; /* the caller reports open's or fstat's reason */
        return "read";
    }
    uint64_t n = (uint64_t)st.st_size;
    if (n > 0) {
        void *m = mmap(NULL, n, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
        if (m == MAP_FAILED) {
            int e = errno;
            close(fd);
            errno = e;
            return "map";
        }
        if (sequential)
            madvise(m, n, MADV_SEQUENTIAL);
        *p = m;
    }
    close(fd);
    *size = n;
    return NULL;
}

void fileio_unmap(const uint8_t *p, uint64_t size)
{
    if (p != NULL)
        munmap((void *)p, size);
}

int fileio_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = sysio_fsync(FAULT_DIR_SYNC, fd);
    close(fd);
    return rc;
}
