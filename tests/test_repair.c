/*
 * test_repair.c — build/invcore-repair (core/tools/invcore_repair.c) run as
 * an operator would, on data directories whose journal replay refuses: a
 * dry run and a declined confirmation change no byte; a confirmed repair
 * copies the segments it changes to DATA_DIR/repair-<time>/ (the copy is
 * the original, byte for byte), cuts at the first bad record, sets later
 * segments aside, and the engine then opens without repair with every
 * change before the bad record; a missing segment is cut before; a torn
 * tail (replay's own business) and a clean directory need nothing; a
 * directory an engine holds is refused; exit codes as documented.
 *
 * The tool is found at $INVCORE_REPAIR, else build/invcore-repair (the
 * suites run from the repository's root; the Makefile builds it first).
 */
#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "engine.h"
#include "fileio.h"
#include "journal.h"
#include "persist.h"
#include "test_util.h"

#define RP_PATH_MAX 512
#define RP_OUT_MAX 8192
/* Files a data directory of these tests holds at most (listing). */
#define RP_FILES_MAX 256
/* Level records written before the corruption, and the one corrupted. */
#define RP_LEVELS 40
#define RP_BAD 20
#define RP_SEGMENT_BYTES 4096 /* small segments: a cut sets later ones aside */

#define EXIT_LEFT 3
#define EXIT_IN_USE 4

static char g_dir[128];

static void setup(void)
{
    tu_tmpdir(g_dir, sizeof g_dir, "repair");
}

static void teardown(void)
{
    tu_remove_tree(g_dir);
}

TestSuite(repair, .init = setup, .fini = teardown);

/* ---- running the tool ---------------------------------------------------- */

static const char *tool_path(void)
{
    const char *p = getenv("INVCORE_REPAIR");
    return p && *p ? p : "build/invcore-repair";
}

/* Runs the tool with args (NULL-terminated) and input on its stdin;
 * returns its exit code; out gets stdout and stderr. */
static int run_tool(const char *const *args, const char *input, char *out, size_t cap)
{
    cr_assert_eq(access(tool_path(), X_OK), 0, "%s: %s (build it: make build/invcore-repair)",
                 tool_path(), strerror(errno));
    int in[2];
    cr_assert_eq(pipe(in), 0);
    int ofd = memfd_create("invcore-repair-out", MFD_CLOEXEC);
    cr_assert_geq(ofd, 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(in[0], STDIN_FILENO);
        dup2(ofd, STDOUT_FILENO);
        dup2(ofd, STDERR_FILENO);
        close(in[1]);
        const char *argv[16] = {tool_path()};
        for (size_t i = 0; args[i] && i + 2 < 16; i++)
            argv[i + 1] = args[i];
        execv(tool_path(), (char *const *)argv);
        _exit(127);
    }
    close(in[0]);
    if (input) {
        ssize_t w = write(in[1], input, strlen(input));
        (void)w;
    }
    close(in[1]);
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    ssize_t n = pread(ofd, out, cap - 1, 0);
    out[n > 0 ? (size_t)n : 0] = '\0';
    close(ofd);
    cr_assert(WIFEXITED(status), "the tool died: status %d\n%s", status, out);
    return WEXITSTATUS(status);
}

/* ---- the directory's contents ---------------------------------------------- */

typedef struct {
    char name[sizeof(((struct dirent *)0)->d_name)];
    uint64_t size, hash;
    bool is_dir;
} rp_file;

typedef struct {
    rp_file f[RP_FILES_MAX];
    size_t n;
} rp_listing;

/* The whole file at path (malloc'd), *size its bytes. */
static uint8_t *read_whole(const char *path, uint64_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    cr_assert(fd >= 0 && fstat(fd, &st) == 0, "%s: %s", path, strerror(errno));
    *size = (uint64_t)st.st_size;
    uint8_t *p = malloc(*size ? *size : 1);
    cr_assert_not_null(p);
    cr_assert_eq(pread(fd, p, *size, 0), (ssize_t)*size, "%s: short read", path);
    close(fd);
    return p;
}

static uint64_t file_hash(const char *path, uint64_t *size)
{
    uint8_t *p = read_whole(path, size);
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (uint64_t i = 0; i < *size; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    free(p);
    return h;
}

/* Every entry of dir with its size and a hash of its bytes. */
static void list_dir(const char *dir, rp_listing *l)
{
    memset(l, 0, sizeof *l);
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "%s: %s", dir, strerror(errno));
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        cr_assert_lt(l->n, RP_FILES_MAX);
        rp_file *f = &l->f[l->n++];
        snprintf(f->name, sizeof f->name, "%s", e->d_name);
        char path[RP_PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        cr_assert_eq(stat(path, &st), 0);
        f->is_dir = S_ISDIR(st.st_mode);
        if (!f->is_dir)
            f->hash = file_hash(path, &f->size);
    }
    closedir(d);
}

static const rp_file *find_file(const rp_listing *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->f[i].name, name) == 0)
            return &l->f[i];
    return NULL;
}

static void assert_same_listing(const rp_listing *a, const rp_listing *b, const char *when)
{
    cr_assert_eq(a->n, b->n, "%s: %zu entries became %zu", when, a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        const rp_file *f = find_file(b, a->f[i].name);
        cr_assert_not_null(f, "%s: %s is gone", when, a->f[i].name);
        cr_assert(f->size == a->f[i].size && f->hash == a->f[i].hash, "%s: %s changed", when,
                  f->name);
    }
}

/* The repair-* directory the tool made (name into out); false if none. */
static bool find_copy_dir(const rp_listing *l, char *out, size_t cap)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->f[i].is_dir && strncmp(l->f[i].name, "repair-", 7) == 0) {
            snprintf(out, cap, "%s/%s", g_dir, l->f[i].name);
            return true;
        }
    return false;
}

/* ---- a corrupted data directory ------------------------------------------- */

/* Opens g_dir (fsync always; segment_bytes 0: the default). */
static int open_engine(uint64_t segment_bytes, inv_engine **out)
{
    inv_config cfg = {.data_dir = g_dir, .fsync_policy = INV_FSYNC_ALWAYS};
    engine_tuning tuning = {.journal_segment_bytes = segment_bytes};
    fflush(stderr);
    return engine_open_tuned(out, &cfg, &tuning);
}

/* RP_LEVELS level records, one per location, available k + 1. */
static void write_levels(uint64_t segment_bytes)
{
    inv_engine *e = NULL;
    cr_assert_eq(open_engine(segment_bytes, &e), INV_OK);
    tu_put_item(e, tu_item_id(0), true);
    for (size_t k = 0; k < RP_LEVELS; k++)
        cr_assert_eq(inv_location_put(e, tu_loc_id(k), NULL), INV_OK);
    for (size_t k = 0; k < RP_LEVELS; k++)
        tu_set_level(e, tu_item_id(0), tu_loc_id(k), (int64_t)k + 1);
    inv_close(e);
}

typedef struct {
    char seg_name[64]; /* the segment file of the bad record */
    uint64_t offset; /* its byte offset there */
} rp_bad;

/* Flips a payload byte of the RP_BAD-th level record; says where. */
static rp_bad corrupt_level_record(void)
{
    journal_segment *segs;
    size_t n;
    cr_assert_eq(journal_segments_list(g_dir, &segs, &n, NULL, 0), INV_OK);
    size_t seen = 0;
    rp_bad bad = {{0}, 0};
    for (size_t i = 0; i < n && bad.offset == 0; i++) {
        char path[RP_PATH_MAX];
        fileio_path(path, sizeof path, g_dir, segs[i].first, JOURNAL_SEGMENT_SUFFIX);
        uint64_t size;
        uint8_t *p = read_whole(path, &size);
        for (uint64_t off = JOURNAL_SEGMENT_HEADER; off < size;) {
            uint8_t type;
            const uint8_t *pl;
            uint32_t len;
            uint64_t sz;
            if (journal_frame_decode(p + off, size - off, &type, &pl, &len, &sz) != NULL)
                break;
            if (type == PERSIST_LEVEL && seen++ == RP_BAD) {
                fileio_name(bad.seg_name, sizeof bad.seg_name, segs[i].first,
                            JOURNAL_SEGMENT_SUFFIX);
                bad.offset = off;
                break;
            }
            off += sz;
        }
        free(p);
        if (bad.offset) {
            int fd = open(path, O_RDWR | O_CLOEXEC);
            cr_assert_geq(fd, 0);
            uint8_t b;
            cr_assert_eq(pread(fd, &b, 1, (off_t)bad.offset + 11), 1);
            b ^= 0x40;
            cr_assert_eq(pwrite(fd, &b, 1, (off_t)bad.offset + 11), 1);
            close(fd);
        }
    }
    free(segs);
    cr_assert_neq(bad.offset, 0, "level record %d not found", RP_BAD);
    return bad;
}

static void assert_refused(void)
{
    inv_engine *e = NULL;
    int rc = open_engine(0, &e);
    cr_assert_neq(rc, INV_OK, "a corrupt journal must still refuse to open");
    cr_assert_null(e);
}

/* The engine opens without repair and holds exactly the levels before the
 * bad record; it takes a write, and reopens with it. */
static void assert_repaired(void)
{
    inv_engine *e = NULL;
    int rc = open_engine(0, &e);
    cr_assert_eq(rc, INV_OK, "the engine must open after the repair: %s", inv_strerror(rc));
    for (size_t k = 0; k < RP_LEVELS; k++) {
        inv_level lv;
        rc = inv_level_get(e, tu_item_id(0), tu_loc_id(k), &lv);
        if (k < RP_BAD)
            cr_assert(rc == INV_OK && lv.available == (int64_t)k + 1,
                      "level %zu before the cut: %s", k, inv_strerror(rc));
        else
            cr_assert_eq(rc, INV_ENOTFOUND, "level %zu after the cut survived", k);
    }
    tu_set_level(e, tu_item_id(0), tu_loc_id(0), 77);
    inv_close(e);
    cr_assert_eq(open_engine(0, &e), INV_OK);
    cr_assert_eq(tu_level_of(e, tu_item_id(0), tu_loc_id(0)).available, 77);
    inv_close(e);
}

/* The tool (args) exits 0 saying `says`, and changes no byte of g_dir. */
static void assert_nothing_to_do(const char *const *args, const char *says)
{
    rp_listing before, after;
    list_dir(g_dir, &before);
    char out[RP_OUT_MAX];
    int code = run_tool(args, NULL, out, sizeof out);
    cr_assert_eq(code, 0, "%s: exit %d\n%s", says, code, out);
    cr_assert_not_null(strstr(out, says), "%s", out);
    list_dir(g_dir, &after);
    assert_same_listing(&before, &after, says);
}

/* ---- tests ------------------------------------------------------------------ */

Test(repair, dry_run_shows_the_bad_record_and_changes_nothing)
{
    write_levels(0);
    rp_bad bad = corrupt_level_record();
    rp_listing before, after;
    list_dir(g_dir, &before);
    char out[RP_OUT_MAX];
    int code = run_tool((const char *[]){"--dry-run", g_dir, NULL}, NULL, out, sizeof out);
    cr_assert_eq(code, EXIT_LEFT, "dry run: exit %d\n%s", code, out);
    char where[128];
    snprintf(where, sizeof where, "%s at byte offset %" PRIu64, bad.seg_name, bad.offset);
    cr_assert_not_null(strstr(out, where), "the report names %s:\n%s", where, out);
    cr_assert_not_null(strstr(out, "valid records beyond the bad one: "), "%s", out);
    cr_assert_null(strstr(out, "beyond the bad one: 0 "), "records follow the bad one:\n%s", out);
    list_dir(g_dir, &after);
    assert_same_listing(&before, &after, "dry run");
    assert_refused();
}

Test(repair, a_declined_confirmation_changes_nothing)
{
    write_levels(0);
    (void)corrupt_level_record();
    rp_listing before, after;
    list_dir(g_dir, &before);
    char out[RP_OUT_MAX];
    int code = run_tool((const char *[]){g_dir, NULL}, "no\n", out, sizeof out);
    cr_assert_eq(code, EXIT_LEFT, "declined: exit %d\n%s", code, out);
    code = run_tool((const char *[]){g_dir, NULL}, "", out, sizeof out); /* EOF */
    cr_assert_eq(code, EXIT_LEFT, "no answer: exit %d\n%s", code, out);
    list_dir(g_dir, &after);
    assert_same_listing(&before, &after, "declined");
    assert_refused();
}

Test(repair, a_confirmed_repair_keeps_a_copy_cuts_and_the_engine_opens)
{
    write_levels(0);
    rp_bad bad = corrupt_level_record();
    rp_listing before, after, copy;
    list_dir(g_dir, &before);
    char out[RP_OUT_MAX];
    int code = run_tool((const char *[]){g_dir, NULL}, "yes\n", out, sizeof out);
    cr_assert_eq(code, 0, "repair: exit %d\n%s", code, out);
    list_dir(g_dir, &after);
    char copy_dir[RP_PATH_MAX];
    cr_assert(find_copy_dir(&after, copy_dir, sizeof copy_dir), "no repair-* copy:\n%s", out);
    list_dir(copy_dir, &copy);
    const rp_file *orig = find_file(&before, bad.seg_name);
    const rp_file *kept = find_file(&copy, bad.seg_name);
    cr_assert_not_null(kept, "the copy lacks %s", bad.seg_name);
    cr_assert(kept->size == orig->size && kept->hash == orig->hash,
              "the copy of %s is not the original", bad.seg_name);
    const rp_file *cut = find_file(&after, bad.seg_name);
    cr_assert_not_null(cut);
    cr_assert_eq(cut->size, bad.offset, "the segment is cut at the bad record");
    assert_repaired();
    /* Nothing left to repair. */
    code = run_tool((const char *[]){"--dry-run", g_dir, NULL}, NULL, out, sizeof out);
    cr_assert_eq(code, 0, "after the repair: exit %d\n%s", code, out);
}

Test(repair, later_segments_are_copied_and_set_aside)
{
    write_levels(RP_SEGMENT_BYTES);
    rp_bad bad = corrupt_level_record();
    rp_listing before, after, copy;
    list_dir(g_dir, &before);
    char out[RP_OUT_MAX];
    int code = run_tool((const char *[]){"--yes", g_dir, NULL}, NULL, out, sizeof out);
    cr_assert_eq(code, 0, "repair --yes: exit %d\n%s", code, out);
    list_dir(g_dir, &after);
    char copy_dir[RP_PATH_MAX];
    cr_assert(find_copy_dir(&after, copy_dir, sizeof copy_dir));
    list_dir(copy_dir, &copy);
    size_t later = 0;
    for (size_t i = 0; i < before.n; i++) {
        uint64_t first, bad_first;
        if (!fileio_parse_name(before.f[i].name, JOURNAL_SEGMENT_SUFFIX, &first))
            continue;
        cr_assert(fileio_parse_name(bad.seg_name, JOURNAL_SEGMENT_SUFFIX, &bad_first));
        const rp_file *c = find_file(&copy, before.f[i].name);
        if (first < bad_first) {
            cr_assert_null(c, "%s (before the bad one) needs no copy", before.f[i].name);
            continue;
        }
        cr_assert(c && c->hash == before.f[i].hash, "%s: no faithful copy", before.f[i].name);
        if (first == bad_first)
            continue;
        later++;
        char aside[sizeof before.f[i].name + 8];
        snprintf(aside, sizeof aside, "%s.cut", before.f[i].name);
        cr_assert_not_null(find_file(&after, aside), "%s was not set aside", before.f[i].name);
        cr_assert_null(find_file(&after, before.f[i].name));
    }
    cr_assert_gt(later, 0, "the test needs segments after the bad one");
    assert_repaired();
}

Test(repair, a_missing_segment_is_cut_before_it)
{
    write_levels(RP_SEGMENT_BYTES);
    write_levels(RP_SEGMENT_BYTES); /* the same again: more segments */
    journal_segment *segs;
    size_t n;
    cr_assert_eq(journal_segments_list(g_dir, &segs, &n, NULL, 0), INV_OK);
    cr_assert_geq(n, 3, "the test needs three segments, has %zu", n);
    char path[RP_PATH_MAX];
    fileio_path(path, sizeof path, g_dir, segs[1].first, JOURNAL_SEGMENT_SUFFIX);
    cr_assert_eq(unlink(path), 0);
    assert_refused();
    char out[RP_OUT_MAX];
    int code = run_tool((const char *[]){"--yes", g_dir, NULL}, NULL, out, sizeof out);
    cr_assert_eq(code, 0, "gap: exit %d\n%s", code, out);
    cr_assert_not_null(strstr(out, "missing segment"), "%s", out);
    char aside[RP_PATH_MAX + 8];
    fileio_path(path, sizeof path, g_dir, segs[2].first, JOURNAL_SEGMENT_SUFFIX);
    snprintf(aside, sizeof aside, "%s.cut", path);
    cr_assert_eq(access(aside, F_OK), 0, "the segment after the gap is set aside:\n%s", out);
    free(segs);
    inv_engine *e = NULL;
    cr_assert_eq(open_engine(0, &e), INV_OK, "the engine opens after the repair");
    inv_close(e);
}

Test(repair, replay_starts_after_the_snapshot)
{
    write_levels(0);
    inv_engine *e = NULL;
    cr_assert_eq(open_engine(0, &e), INV_OK);
    cr_assert_eq(inv_snapshot(e), INV_OK);
    for (size_t k = 0; k < RP_LEVELS; k++) /* the same values: a second round */
        tu_set_level(e, tu_item_id(0), tu_loc_id(k), (int64_t)k + 1);
    inv_close(e);
    rp_bad bad = corrupt_level_record(); /* in the first round: below the snapshot */
    char out[RP_OUT_MAX];
    int code = run_tool((const char *[]){"--dry-run", g_dir, NULL}, NULL, out, sizeof out);
    cr_assert_not_null(strstr(out, "snapshot: position "), "%s", out);
    /* The segment holding the snapshot's position is replayed from its
     * start, so the bad record is found as recovery finds it. */
    cr_assert_eq(code, EXIT_LEFT, "exit %d\n%s", code, out);
    cr_assert_not_null(strstr(out, bad.seg_name), "%s", out);
    code = run_tool((const char *[]){"--yes", g_dir, NULL}, NULL, out, sizeof out);
    cr_assert_eq(code, 0, "exit %d\n%s", code, out);
    cr_assert_eq(open_engine(0, &e), INV_OK, "the engine opens after the repair");
    /* Every level is in the snapshot. */
    for (size_t k = 0; k < RP_LEVELS; k++)
        cr_assert_eq(tu_level_of(e, tu_item_id(0), tu_loc_id(k)).available, (int64_t)k + 1);
    inv_close(e);
}

Test(repair, a_torn_tail_is_left_to_replay)
{
    write_levels(0);
    journal_segment *segs;
    size_t n;
    cr_assert_eq(journal_segments_list(g_dir, &segs, &n, NULL, 0), INV_OK);
    cr_assert_geq(n, 1);
    char path[RP_PATH_MAX];
    fileio_path(path, sizeof path, g_dir, segs[n - 1].first, JOURNAL_SEGMENT_SUFFIX);
    free(segs);
    int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    cr_assert_geq(fd, 0);
    static const uint8_t torn[24] = {0xab, 0xab, 0xab, 0xab, 0x7f, 0x01};
    cr_assert_eq(write(fd, torn, sizeof torn), (ssize_t)sizeof torn);
    close(fd);
    assert_nothing_to_do((const char *[]){"--yes", g_dir, NULL}, "torn tail");
}

Test(repair, a_clean_directory_needs_nothing)
{
    write_levels(0);
    assert_nothing_to_do((const char *[]){g_dir, NULL}, "nothing to repair");
}

Test(repair, a_directory_in_use_is_refused)
{
    write_levels(0);
    inv_engine *e = NULL;
    cr_assert_eq(open_engine(0, &e), INV_OK);
    char out[RP_OUT_MAX];
    int code = run_tool((const char *[]){"--yes", g_dir, NULL}, NULL, out, sizeof out);
    cr_assert_eq(code, EXIT_IN_USE, "in use: exit %d\n%s", code, out);
    inv_close(e);
}

Test(repair, bad_arguments_print_the_usage)
{
    char out[RP_OUT_MAX];
    cr_assert_eq(run_tool((const char *[]){NULL}, NULL, out, sizeof out), 2);
    cr_assert_not_null(strstr(out, "usage:"), "%s", out);
    cr_assert_eq(run_tool((const char *[]){"--frobnicate", g_dir, NULL}, NULL, out, sizeof out), 2);
    cr_assert_eq(run_tool((const char *[]){g_dir, g_dir, NULL}, NULL, out, sizeof out), 2);
}
