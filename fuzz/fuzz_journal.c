/*
 * fuzz_journal.c — libFuzzer target for the journal and snapshot readers.
 *
 * The input is a segment file, optionally followed by the 8-byte marker
 * "INVSPLIT" and a snapshot file. Both are written to a temp directory
 * (named from their headers' positions so that the readers get past the
 * name checks), then journal_replay runs without and with repair, and
 * snapshot_load_latest runs. Must never crash or leak; and after a repair
 * replay has succeeded, a plain replay must succeed with the same records.
 */
#include "journal.h"
#include "snapshot.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char SPLIT[8] = {'I', 'N', 'V', 'S', 'P', 'L', 'I', 'T'};

static char g_dir[64];

static void clear_dir(void)
{
    DIR *d = opendir(g_dir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
}

static void remove_dir(void)
{
    clear_dir();
    rmdir(g_dir);
}

static void write_file(const char *path, const uint8_t *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            break;
        p += w;
        n -= (size_t)w;
    }
    close(fd);
}

/* The position in bytes 16..24 of a header, or fallback. */
static uint64_t header_position(const uint8_t *p, size_t n, uint64_t min)
{
    uint64_t v = 0;
    if (n >= 24)
        memcpy(&v, p + 16, 8);
    return v < min ? min : v;
}

typedef struct {
    uint64_t records, bytes, last_pos;
} tally;

static int journal_cb(void *ctx, uint64_t pos, uint8_t type, const void *payload, uint32_t len)
{
    tally *t = ctx;
    if (pos <= t->last_pos && t->records > 0)
        __builtin_trap(); /* positions must strictly increase */
    if (len > 0)
        t->bytes += ((const uint8_t *)payload)[len - 1]; /* touch the bytes */
    t->last_pos = pos;
    t->records++;
    return INV_OK;
}

static int snapshot_cb(void *ctx, uint8_t type, const void *payload, uint32_t len)
{
    tally *t = ctx;
    if (len > 0)
        t->bytes += ((const uint8_t *)payload)[0];
    t->records++;
    return INV_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (g_dir[0] == '\0') {
        snprintf(g_dir, sizeof g_dir, "/tmp/invcore-fuzz-journal-XXXXXX");
        if (mkdtemp(g_dir) == NULL)
            return 0;
        atexit(remove_dir);
    }
    clear_dir();
    const uint8_t *jp = data, *sp = NULL;
    size_t jn = size, sn = 0;
    const uint8_t *m = size >= sizeof SPLIT ? memmem(data, size, SPLIT, sizeof SPLIT) : NULL;
    if (m != NULL) {
        jn = (size_t)(m - data);
        sp = m + sizeof SPLIT;
        sn = size - jn - sizeof SPLIT;
    }
    char path[128];
    uint64_t first = header_position(jp, jn, JOURNAL_POSITION_FIRST);
    snprintf(path, sizeof path, "%s/%016" PRIx64 ".jnl", g_dir, first);
    write_file(path, jp, jn);

    char err[512];
    uint64_t end = 0;
    tally t = {0, 0, 0};
    journal_replay(g_dir, first, false, journal_cb, &t, &end, err, sizeof err);
    tally r = {0, 0, 0};
    if (journal_replay(g_dir, first, true, journal_cb, &r, &end, err, sizeof err) == INV_OK) {
        tally again = {0, 0, 0};
        uint64_t end2 = 0;
        if (journal_replay(g_dir, first, false, journal_cb, &again, &end2, err, sizeof err) !=
                INV_OK ||
            again.records != r.records || end2 != end)
            __builtin_trap(); /* repair must leave a clean journal */
    }

    if (sp != NULL) {
        uint64_t pos = header_position(sp, sn, 1);
        snprintf(path, sizeof path, "%s/%016" PRIx64 ".snap", g_dir, pos);
        write_file(path, sp, sn);
        tally s = {0, 0, 0};
        uint64_t loaded = 0;
        snapshot_load_latest(g_dir, &loaded, snapshot_cb, &s, err, sizeof err);
    }
    clear_dir();
    return 0;
}
