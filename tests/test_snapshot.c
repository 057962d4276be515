/*
 * test_snapshot.c — snapshot files: commit and load, replacement of older
 * snapshots, and crashes mid-snapshot (a temp file left behind, a truncated
 * or damaged snapshot) falling back to the previous complete one.
 */
#include "test_util.h"

#include "fault.h"
#include "journal.h"
#include "snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool exists(const char *dir, uint64_t pos, const char *suffix)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%016" PRIx64 "%s", dir, pos, suffix);
    return access(path, F_OK) == 0;
}

/* Records carry (seed, index) so a load can tell snapshots apart. */
static void write_snapshot(const char *dir, uint64_t pos, uint32_t seed, size_t n)
{
    snapshot_writer *w;
    cr_assert_eq(snapshot_begin(&w, dir, pos), INV_OK);
    uint8_t buf[300];
    for (size_t i = 0; i < n; i++) {
        uint32_t len = 8 + (uint32_t)(i % 250);
        memcpy(buf, &seed, 4);
        uint32_t k = (uint32_t)i;
        memcpy(buf + 4, &k, 4);
        memset(buf + 8, (int)(i * 7), len - 8);
        cr_assert_eq(snapshot_add(w, 16 + (uint8_t)(i % 64), buf, len), INV_OK);
    }
    cr_assert_eq(snapshot_commit(w), INV_OK);
}

typedef struct {
    uint32_t seed;
    size_t n, bad;
} check_ctx;

static int check_cb(void *ctx, uint8_t type, const void *payload, uint32_t len)
{
    check_ctx *c = ctx;
    uint32_t seed, k;
    memcpy(&seed, payload, 4);
    memcpy(&k, (const uint8_t *)payload + 4, 4);
    if (len != 8 + k % 250 || type != 16 + k % 64 || k != c->n)
        c->bad++;
    if (c->n == 0)
        c->seed = seed;
    else if (seed != c->seed)
        c->bad++;
    c->n++;
    return INV_OK;
}

static check_ctx load(const char *dir, int want_rc, uint64_t *pos)
{
    check_ctx c = {0, 0, 0};
    char err[256] = "";
    int rc = snapshot_load_latest(dir, pos, check_cb, &c, err, sizeof err);
    cr_assert_eq(rc, want_rc, "rc %d: %s", rc, err);
    cr_assert_eq(c.bad, 0);
    return c;
}

Test(snapshot, commit_then_load_returns_every_record_in_order)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "test-snapshot");
    size_t n = 20000 / (size_t)tu_scale();
    write_snapshot(dir, 4096, 7, n);
    uint64_t pos = 0;
    check_ctx c = load(dir, INV_OK, &pos);
    cr_assert_eq(pos, 4096);
    cr_assert_eq(c.n, n);
    cr_assert_eq(c.seed, 7);
    tu_remove_tree(dir);
}

Test(snapshot, a_newer_commit_deletes_older_snapshots)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "test-snapshot");
    write_snapshot(dir, 100, 1, 10);
    write_snapshot(dir, 200, 2, 20);
    cr_assert(!exists(dir, 100, ".snap"));
    uint64_t pos;
    check_ctx c = load(dir, INV_OK, &pos);
    cr_assert_eq(pos, 200);
    cr_assert_eq(c.n, 20);
    cr_assert_eq(c.seed, 2);
    tu_remove_tree(dir);
}

Test(snapshot, empty_snapshot_is_valid_and_none_is_notfound)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "test-snapshot");
    uint64_t pos;
    load(dir, INV_ENOTFOUND, &pos);
    write_snapshot(dir, 8, 0, 0);
    check_ctx c = load(dir, INV_OK, &pos);
    cr_assert_eq(c.n, 0);
    cr_assert_eq(pos, 8);
    tu_remove_tree(dir);
}

Test(snapshot, abort_removes_the_temp_file)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "test-snapshot");
    snapshot_writer *w;
    cr_assert_eq(snapshot_begin(&w, dir, 77), INV_OK);
    cr_assert_eq(snapshot_add(w, 16, "abcdefgh", 8), INV_OK);
    cr_assert_eq(snapshot_add(w, 2, "x", 1), INV_EINVALID);
    snapshot_abort(w);
    cr_assert(!exists(dir, 77, ".snap.tmp"));
    cr_assert(!exists(dir, 77, ".snap"));
    tu_remove_tree(dir);
}

Test(snapshot, crash_mid_snapshot_leaves_a_temp_file_and_the_previous_loads)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "test-snapshot");
    write_snapshot(dir, 100, 1, 50);
    /* a writer that never commits: its temp file stays, as after a crash */
    snapshot_writer *w;
    cr_assert_eq(snapshot_begin(&w, dir, 300), INV_OK);
    uint8_t big[4096] = {0};
    for (int i = 0; i < 600; i++)
        cr_assert_eq(snapshot_add(w, 20, big, sizeof big), INV_OK);
    cr_assert(exists(dir, 300, ".snap.tmp"));
    uint64_t pos;
    check_ctx c = load(dir, INV_OK, &pos);
    cr_assert_eq(pos, 100);
    cr_assert_eq(c.n, 50);
    snapshot_abort(w);
    tu_remove_tree(dir);
}

/* stderr goes to a temporary file between capture_begin and capture_end,
 * which counts the captured lines that contain needle (the warnings a
 * refused snapshot must print, kept out of the test log). */
typedef struct {
    int saved_fd;
    FILE *file;
} stderr_capture;

static stderr_capture capture_begin(void)
{
    stderr_capture cap = {dup(2), tmpfile()};
    cr_assert(cap.saved_fd >= 0 && cap.file != NULL);
    fflush(stderr);
    cr_assert(dup2(fileno(cap.file), 2) == 2);
    return cap;
}

static size_t capture_end(stderr_capture *cap, const char *needle)
{
    fflush(stderr);
    cr_assert(dup2(cap->saved_fd, 2) == 2);
    close(cap->saved_fd);
    rewind(cap->file);
    char line[1024];
    size_t n = 0;
    while (fgets(line, sizeof line, cap->file) != NULL)
        n += strstr(line, needle) != NULL;
    fclose(cap->file);
    return n;
}

Test(snapshot, truncated_or_damaged_newest_falls_back_to_the_previous)
{
    char dir[64], path1[256], save1[256], path2[256], save2[256];
    tu_tmpdir(dir, sizeof dir, "test-snapshot");
    write_snapshot(dir, 100, 1, 40);
    snprintf(path1, sizeof path1, "%s/%016x.snap", dir, 100);
    snprintf(save1, sizeof save1, "%s/keep1", dir);
    tu_copy_file(path1, save1);
    write_snapshot(dir, 200, 2, 60);
    cr_assert(!exists(dir, 100, ".snap"));
    tu_copy_file(save1, path1); /* as if the crash came before the delete */
    snprintf(path2, sizeof path2, "%s/%016x.snap", dir, 200);
    snprintf(save2, sizeof save2, "%s/keep2", dir);
    tu_copy_file(path2, save2);
    struct stat st;
    cr_assert_eq(stat(path2, &st), 0);
    /* every truncation of the newest one is refused, with a warning that
     * names it; the previous loads */
    size_t step = (size_t)tu_scale(), loads = 0;
    stderr_capture cap = capture_begin();
    for (off_t cut = 0; cut < st.st_size; cut += (off_t)step, loads++) {
        tu_copy_file(save2, path2);
        cr_assert_eq(truncate(path2, cut), 0);
        uint64_t pos;
        check_ctx c = load(dir, INV_OK, &pos);
        cr_assert_eq(pos, 100, "cut at %lld", (long long)cut);
        cr_assert_eq(c.n, 40);
    }
    /* a flipped byte anywhere is refused too */
    for (off_t at = 0; at < st.st_size; at += 97, loads++) {
        tu_copy_file(save2, path2);
        FILE *f = fopen(path2, "r+b");
        fseek(f, at, SEEK_SET);
        int ch = fgetc(f);
        fseek(f, at, SEEK_SET);
        fputc(ch ^ 0x10, f);
        fclose(f);
        uint64_t pos;
        check_ctx c = load(dir, INV_OK, &pos);
        cr_assert_eq(pos, 100, "flip at %lld", (long long)at);
        cr_assert_eq(c.n, 40);
    }
    size_t warned = capture_end(&cap, path2);
    cr_assert_geq(warned, loads, "%zu warnings name %s for %zu refusals", warned, path2, loads);
    /* intact, the newest wins */
    tu_copy_file(save2, path2);
    uint64_t pos;
    check_ctx c = load(dir, INV_OK, &pos);
    cr_assert_eq(pos, 200);
    cr_assert_eq(c.n, 60);
    tu_remove_tree(dir);
}

static int stop_cb(void *ctx, uint8_t type, const void *payload, uint32_t len)
{
    size_t *n = ctx;
    return ++*n == 3 ? INV_ENOMEM : INV_OK;
}

Test(snapshot, a_callback_error_stops_the_load)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "test-snapshot");
    write_snapshot(dir, 100, 1, 10);
    size_t n = 0;
    uint64_t pos = 0;
    char err[256] = "";
    cr_assert_eq(snapshot_load_latest(dir, &pos, stop_cb, &n, err, sizeof err), INV_ENOMEM);
    cr_assert_eq(n, 3);
    tu_remove_tree(dir);
}

Test(snapshot, a_snapshot_with_a_journal_recovers_the_whole_state)
{
    /* the recovery sequence the engine follows: load the snapshot, replay
     * from its position, reopen the journal where replay ended */
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "test-snapshot");
    journal_config cfg = {.dir = dir, .policy = INV_FSYNC_ALWAYS, .segment_bytes = 4096};
    journal *j;
    cr_assert_eq(journal_open(&j, &cfg, NULL, 0), INV_OK);
    uint64_t pos[100];
    for (int i = 0; i < 100; i++) {
        pos[i] = journal_reserve(j, 64);
        uint8_t b[64] = {(uint8_t)i};
        cr_assert_eq(journal_publish(j, pos[i], 16, b, 64), INV_OK);
    }
    cr_assert_eq(journal_wait(j, pos[99]), INV_OK);
    write_snapshot(dir, pos[60], 9, 5); /* covers records below pos[60] */
    cr_assert_eq(journal_drop_before(dir, pos[60]), INV_OK);
    cr_assert_eq(journal_close(j), INV_OK);
    uint64_t snap;
    load(dir, INV_OK, &snap);
    cr_assert_eq(snap, pos[60]);
    uint64_t end;
    char err[256] = "";
    cr_assert_eq(journal_replay(dir, snap, false, NULL, NULL, &end, err, sizeof err), INV_OK, "%s",
                 err);
    cr_assert_eq(end, pos[99] + journal_record_size(64));
    cfg.start_position = end;
    cr_assert_eq(journal_open(&j, &cfg, err, sizeof err), INV_OK, "%s", err);
    cr_assert_eq(journal_reserve(j, 8), end);
    cr_assert_eq(journal_abandon(j, end, 8), INV_OK);
    cr_assert_eq(journal_close(j), INV_OK);
    tu_remove_tree(dir);
}

/* ---- read errors (issue 17, #7) ------------------------------------------- */

/* Records big enough that a snapshot spans more than one read buffer. */
#define READ_ERR_RECORDS 30000u

/* A media error while loading is INV_EIO naming the file and the offset
 * (it was a SIGBUS through the mapping): not "corrupt, try an older one". */
Test(snapshot, a_read_error_while_loading_is_eio_with_file_and_offset)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "test-snapshot");
    write_snapshot(dir, 77, 1, READ_ERR_RECORDS);
    for (uint64_t nth = 1; nth <= 3; nth++) {
        fault_reset();
        fault_fail(FAULT_FILE_READ, nth, 1, EIO);
        check_ctx c = {0, 0, 0};
        char err[256] = "";
        uint64_t pos = 0;
        int rc = snapshot_load_latest(dir, &pos, check_cb, &c, err, sizeof err);
        uint64_t failed = fault_failures(FAULT_FILE_READ);
        fault_reset();
        cr_assert(failed == 1 || nth > 1, "the load never read through FILE_READ");
        if (failed == 0) {
            cr_assert_eq(rc, INV_OK, "%s", err); /* fewer reads than nth */
            continue;
        }
        cr_assert_eq(rc, INV_EIO, "read %llu: rc %d: %s", (unsigned long long)nth, rc, err);
        cr_assert(strstr(err, "000000000000004d.snap") != NULL, "names the file: %s", err);
        cr_assert(strstr(err, "byte offset") != NULL, "names the offset: %s", err);
    }
    check_ctx c = load(dir, INV_OK, &(uint64_t){0});
    cr_assert_eq(c.n, READ_ERR_RECORDS);
    tu_remove_tree(dir);
}
