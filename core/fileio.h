/*
 * fileio.h — the file helpers that the journal (journal.c, journal_replay.c),
 * snapshots (snapshot.c) and the change feed (feed_scan.c) share: names
 * "<16 hex digits><suffix>", the 32-byte file header both formats open
 * with, reading a file with pread through one bounded buffer (never mmap:
 * a media error is EIO, not SIGBUS; a file a writer still extends is
 * followed), syncing a directory, error messages and warnings.
 * docs/JOURNAL.md has the formats.
 *
 * Invariants:
 *  - Nothing read from disk is trusted: fileio_header_check reads at most
 *    the bytes it is given and names the first check that failed, in the
 *    words of its check (callers name the file).
 *  - The formats are little-endian and written with host loads and stores
 *    (checked at compile time below).
 *  - No state but a reader's own: every function is safe from any thread
 *    (a fileio_reader belongs to one thread).
 */
#ifndef INV_FILEIO_H
#define INV_FILEIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include "fault.h"

#include "fault.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the journal and snapshot formats are little-endian (host loads)"
#endif

/* Warnings go to stderr (operators read them); fuzz builds stay quiet. */
#ifdef INV_FUZZ
#define FILEIO_WARN(...) ((void)0)
#else
#define FILEIO_WARN(...) fprintf(stderr, __VA_ARGS__)
#endif

/* Hex digits of the position in a file name. */
#define FILEIO_NAME_HEX 16u
/* Bytes a name or a path built here may need beyond its directory. */
#define FILEIO_NAME_MAX 64u

/* The file header: magic[8], u32 version, u32 extra (the format's: zero
 * for snapshots), u64 position, u64 xxh3 of the 24 bytes before it. */
#define FILEIO_HEADER_BYTES 32u
#define FILEIO_MAGIC_BYTES 8u

/* The header checks, in the order they are made. */
typedef enum {
    FILEIO_HEADER_SHORT, /* fewer than FILEIO_HEADER_BYTES */
    FILEIO_HEADER_MAGIC, /* not this format's magic */
    FILEIO_HEADER_CHECKSUM, /* the header's own checksum */
    FILEIO_HEADER_VERSION, /* a format version we do not read */
    FILEIO_HEADER_POSITION, /* the position differs from the file name's */
    FILEIO_HEADER_CHECKS
} fileio_header_check_id;

/* A file format that opens with the header: its magic and version, and
 * what to say when each check fails (each format keeps its wording). */
typedef struct fileio_format {
    const char *magic; /* FILEIO_MAGIC_BYTES bytes (the NUL is not written) */
    uint32_t version;
} fileio_format;

static inline uint64_t fileio_load_u64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline bool fileio_all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return false;
    return true;
}

/* Formats into buf (nothing when buf is NULL or len 0). */
void fileio_errmsg(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "<16 hex of pos><suffix>" and "<dir>/<16 hex of pos><suffix>". */
void fileio_name(char *out, size_t cap, uint64_t pos, const char *suffix);
void fileio_path(char *out, size_t cap, const char *dir, uint64_t pos, const char *suffix);
/* Parses "<16 lower-case hex><suffix>" (exactly) into *pos. */
bool fileio_parse_name(const char *name, const char *suffix, uint64_t *pos);

void fileio_header_encode(uint8_t out[FILEIO_HEADER_BYTES], const fileio_format *f,
                          uint64_t position);
/* As fileio_header_encode with the format's own u32 at offset 12 (zero in
 * formats that have none; the journal's reserved-ahead mark). */
void fileio_header_encode_extra(uint8_t out[FILEIO_HEADER_BYTES], const fileio_format *f,
                                uint64_t position, uint32_t extra);
/* The u32 at offset 12 of a header that passed fileio_header_check. */
static inline uint32_t fileio_header_extra(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p + 12, sizeof v);
    return v;
}
/* Checks the header at p (avail bytes readable) against f and the position
 * its file name gives: NULL if valid, else f's reason for the first check
 * that failed. */
const char *fileio_header_check(const uint8_t *p, size_t avail, const fileio_format *f,
                                uint64_t position);

/* ---- reading: pread through one bounded buffer ------------------------------
 *
 * Files are read with pread, never mapped: a media error is then an EIO
 * from read (reported with the file and offset), never a SIGBUS, and a file
 * cut short under the reader simply ends earlier. Reads are forward mostly;
 * the buffer keeps what is still wanted when it slides.
 *
 * A file a writer still extends (a live journal segment, read by the change
 * feed) is *followed* (fileio_reader_follow): its reader reads only below
 * the end the caller knows to be final, so the buffer never holds bytes
 * the writer may still change (the zeros a segment is extended with turn
 * into records), and re-reads the file's size when a read needs bytes past
 * the size it knew (the file grew). A reader that is never followed reads
 * as the size was at open (replay, snapshots: files nobody writes). */

/* The reader's buffer: the largest span fileio_reader_at can return (a
 * journal record, JOURNAL_RECORD_MAX, fits with room for read-ahead). */
#define FILEIO_READ_BUF_BYTES (4u << 20)

typedef struct fileio_reader {
    int fd;
    fault_site read_site; /* FAULT_REPLAY_READ or FAULT_FILE_READ */
    uint64_t size; /* file bytes (lowered if the file shrinks under us;
                    * followed: at most final_end, raised as the file grows) */
    uint8_t *buf; /* FILEIO_READ_BUF_BYTES */
    uint64_t buf_off; /* file offset of buf[0] */
    size_t buf_len; /* bytes of the file in buf */
    uint64_t err_off; /* where the read that failed started */
    size_t read_ahead; /* bytes a refill reads at least (default: the buffer) */
    uint64_t final_end; /* followed: bytes below it are final (0: not followed) */
} fileio_reader;

/* Opens path for reading (open_site, then read_site for every pread).
 * 0, or -1 with errno (ENOMEM if the buffer cannot be had). */
int fileio_reader_open(fileio_reader *r, const char *path, fault_site open_site,
                       fault_site read_site);
/* The bytes of the file from off: *avail of them (at least
 * min(want, size - off), want <= FILEIO_READ_BUF_BYTES; 0 at the end).
 * NULL on a read error, with errno set and r->err_off where it happened. */
const uint8_t *fileio_reader_at_slow(fileio_reader *r, uint64_t off, size_t want, size_t *avail);
static inline const uint8_t *fileio_reader_at(fileio_reader *r, uint64_t off, size_t want,
                                              size_t *avail)
{
    /* Fast path (replay's every record): the bytes are in the buffer. */
    uint64_t end = r->buf_off + r->buf_len;
    if (__builtin_expect(off >= r->buf_off && off + want <= end, 1)) {
        *avail = (size_t)(end - off);
        return r->buf + (off - r->buf_off);
    }
    return fileio_reader_at_slow(r, off, want, avail);
}
/* True if every byte of [off, size) is zero; *err set (and false) on a
 * read error. */
bool fileio_reader_zero_from(fileio_reader *r, uint64_t off, bool *err);
/* A refill reads ahead `bytes` (0 < bytes <= FILEIO_READ_BUF_BYTES), or the
 * bytes asked if more, instead of the whole buffer: for a reader that
 * seeks back often (the feed's history walks a chunk at a time). */
void fileio_reader_read_ahead(fileio_reader *r, size_t bytes);
/* Follows a file a writer still extends: the bytes below final_end (> 0)
 * are final and no read goes past them; a read that needs bytes past the
 * size known re-reads it (fstat). final_end only grows: a lower one than
 * an earlier call's changes nothing (what was final stays final). Call it
 * before the first read that could reach past the final bytes. */
void fileio_reader_follow(fileio_reader *r, uint64_t final_end);
void fileio_reader_close(fileio_reader *r);

/* fsync of a directory (a rename, create or unlink in it becomes durable).
 * 0, or -1 with errno. */
int fileio_fsync_dir(const char *dir);
/* fsync of the directory that holds the directory dir, reached as dir's
 * "..": a path through a symlink (a tenant's /proc/self/fd/N) syncs the
 * real parent. 0, or -1 with errno. */
int fileio_fsync_parent(const char *dir);
/* mkdir (site: its fault site) that makes the directory's name durable:
 * the parent is fsynced whether this call created dir or found it, since
 * a directory an earlier process created may not be on disk yet (a power
 * loss would take it and every file in it). 0, or -1 with errno. */
int fileio_mkdir_durable(fault_site site, const char *dir, mode_t mode);

#endif /* INV_FILEIO_H */
