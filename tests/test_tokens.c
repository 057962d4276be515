/*
 * test_tokens.c — core/server/tokens.c, called directly:
 *  - the token file: good files (comments, blank lines, CRLF, tabs, rate
 *    fields) load whole; every kind of bad line is refused with
 *    INV_EINVALID naming its line; a file too big, missing, a directory or
 *    a FIFO is refused; a set of TOKENS_MAX tokens loads;
 *  - lookups by token and by digest, and a wrong token of the same length
 *    finds nothing;
 *  - the registry: a bad file keeps the current set, a good one swaps it,
 *    and a set acquired before a reload stays usable until it is unref'd
 *    (ASan sees a use after free if not);
 *  - the leaky bucket with a fake clock: exact admissions and retry times,
 *    and exactly bucket_size admissions when 8 threads race at one
 *    instant;
 *  - the AUTH throttle's penalties and its close.
 * Files live in fresh directories under /tmp, removed at the end.
 */
#include "test_util.h"

#include <fcntl.h>
#include <sys/stat.h>

#include "server/tokens.h"

#define ERR_MAX 512
#define PATH_MAX_T 512
#define T0_MS 1000000000 /* a fake monotonic time, far from 0 */

/* A scratch directory per test. */
typedef struct {
    char dir[PATH_MAX_T];
    char path[PATH_MAX_T]; /* dir/tokens */
} scratch;

static void scratch_open(scratch *s)
{
    tu_tmpdir(s->dir, sizeof s->dir, "tokens");
    int n = snprintf(s->path, sizeof s->path, "%s/tokens", s->dir);
    cr_assert(n > 0 && (size_t)n < sizeof s->path);
}

static void scratch_close(scratch *s)
{
    cr_assert_eq(tu_remove_tree(s->dir), 0, "remove %s", s->dir);
}

/* Writes len bytes of text as s->path (replacing it). */
static void write_bytes(const scratch *s, const char *text, size_t len)
{
    FILE *f = fopen(s->path, "wb");
    cr_assert_not_null(f, "fopen %s: %s", s->path, strerror(errno));
    cr_assert_eq(fwrite(text, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

static void write_text(const scratch *s, const char *text)
{
    write_bytes(s, text, strlen(text));
}

/* Loads s->path: the return code, with *out and err filled. */
static int load(const scratch *s, token_set **out, char *err)
{
    err[0] = '\0';
    int rc = token_set_load(s->path, out, err, ERR_MAX);
    cr_assert_eq(rc == INV_OK, *out != NULL, "a set exactly when INV_OK (rc %d)", rc);
    return rc;
}

/* Writes text as s->path and loads it, which must succeed. */
static token_set *load_ok(const scratch *s, const char *text)
{
    write_text(s, text);
    token_set *set;
    char err[ERR_MAX];
    cr_assert_eq(load(s, &set, err), INV_OK, "%s", err);
    return set;
}

static token_entry *find(const token_set *set, const char *token)
{
    return token_set_find(set, token, strlen(token));
}

/* ---- good files ----------------------------------------------------------- */

Test(tokens, a_good_file_loads_every_token_with_its_tenant_scope_and_rate)
{
    scratch s;
    scratch_open(&s);
    token_set *set = load_ok(&s, "# tokens for the test\n"
                                 "\n"
                                 "reader-token-1 shop-a read\n"
                                 "   \t  \n"
                                 "writer.token.2\tshop-b\twrite   # a trailing comment\r\n"
                                 "\tadmin_token_3 default admin 40/2\r\n"
                                 "#only a comment \r\n"
                                 "limited-token-4 a.b_c-9 write 1000000/1000000\n"
                                 "last-line-no-newline x read 1/1");
    cr_assert_eq(token_set_count(set), 5);

    token_entry *e = find(set, "reader-token-1");
    cr_assert_not_null(e);
    cr_assert_str_eq(e->tenant, "shop-a");
    cr_assert_eq(e->tenant_len, 6);
    cr_assert_eq(e->scope, TOKEN_SCOPE_READ);
    cr_assert_eq(e->bucket_size, 0, "no rate field: no limit");

    e = find(set, "writer.token.2");
    cr_assert_not_null(e, "tabs separate fields; a comment ends the line; CRLF");
    cr_assert_str_eq(e->tenant, "shop-b");
    cr_assert_eq(e->scope, TOKEN_SCOPE_WRITE);

    e = find(set, "admin_token_3");
    cr_assert_not_null(e);
    cr_assert_str_eq(e->tenant, "default");
    cr_assert_eq(e->scope, TOKEN_SCOPE_ADMIN);
    cr_assert_eq(e->bucket_size, 40);
    cr_assert_eq(e->leak_per_s, 2);

    e = find(set, "limited-token-4");
    cr_assert_not_null(e);
    cr_assert_str_eq(e->tenant, "a.b_c-9");
    cr_assert_eq(e->bucket_size, TOKEN_BUCKET_MAX);
    cr_assert_eq(e->leak_per_s, TOKEN_LEAK_PER_S_MAX);

    e = find(set, "last-line-no-newline");
    cr_assert_not_null(e);
    cr_assert_str_eq(e->tenant, "x");
    cr_assert_eq(e->bucket_size, 1);
    cr_assert_eq(e->leak_per_s, 1);

    token_set_unref(set);
    scratch_close(&s);
}

Test(tokens, an_empty_or_comment_only_file_is_an_empty_set)
{
    scratch s;
    scratch_open(&s);
    const char *texts[] = {"", "\n\n", "# nothing\r\n  # more\n\t\n"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        write_text(&s, texts[i]);
        token_set *set;
        char err[ERR_MAX];
        cr_assert_eq(load(&s, &set, err), INV_OK, "text %zu: %s", i, err);
        cr_assert_eq(token_set_count(set), 0, "text %zu", i);
        cr_assert_null(find(set, "anything-at-all"));
        token_set_unref(set);
    }
    scratch_close(&s);
}

Test(tokens, the_longest_and_shortest_tokens_load)
{
    scratch s;
    scratch_open(&s);
    char text[TOKEN_BYTES_MAX + 64];
    char longest[TOKEN_BYTES_MAX + 1];
    memset(longest, '~', TOKEN_BYTES_MAX);
    longest[TOKEN_BYTES_MAX] = '\0';
    snprintf(text, sizeof text, "%s t read\n!!!!!!!! t write\n", longest);
    token_set *set = load_ok(&s, text);
    cr_assert_not_null(find(set, longest));
    cr_assert_not_null(find(set, "!!!!!!!!"));
    token_set_unref(set);
    scratch_close(&s);
}

/* ---- bad lines ------------------------------------------------------------ */

typedef struct {
    const char *line; /* placed on line 3, after a good line and a comment */
    size_t len; /* 0: strlen(line) */
    const char *reason; /* a part of the message */
} bad_line;

Test(tokens, every_kind_of_bad_line_is_refused_naming_its_line)
{
    char long_token[TOKEN_BYTES_MAX + 2];
    memset(long_token, 'k', TOKEN_BYTES_MAX + 1);
    long_token[TOKEN_BYTES_MAX + 1] = '\0';
    char long_line[TOKEN_BYTES_MAX + 32];
    snprintf(long_line, sizeof long_line, "%s t read", long_token);
    char long_tenant[INV_TENANT_NAME_MAX + 40];
    snprintf(long_tenant, sizeof long_tenant, "token-xyz %0*d read", INV_TENANT_NAME_MAX + 1, 0);
    const bad_line bad[] = {
        {"short77 t read", 0, "token is 7 bytes"},
        {long_line, 0, "token is 513 bytes"},
        {"bad\x7ftoken t read", 0, "0x7f"},
        {"bad\x01token t read", 0, "0x01"},
        {"bad\xc3\xa9token t read", 0, "0xc3"},
        {"bad\vtoken t read", 0, "0x0b"},
        {"token-xyz Shop read", 0, "bad tenant name \"Shop\""},
        {"token-xyz .hidden read", 0, "bad tenant name"},
        {"token-xyz .. read", 0, "bad tenant name"},
        {"token-xyz a/b read", 0, "bad tenant name"},
        {"token-xyz a\x1b[31m read", 0, "bad tenant name \"a?[31m\""},
        {long_tenant, 0, "bad tenant name"},
        {"token-xyz t Read", 0, "unknown scope \"Read\""},
        {"token-xyz t none", 0, "unknown scope"},
        {"token-xyz t readwrite", 0, "unknown scope"},
        {"token-xyz t read 40", 0, "bad rate \"40\""},
        {"token-xyz t read 40/", 0, "bad rate"},
        {"token-xyz t read /2", 0, "bad rate"},
        {"token-xyz t read 0/2", 0, "bad rate"},
        {"token-xyz t read 40/0", 0, "bad rate"},
        {"token-xyz t read +40/2", 0, "bad rate"},
        {"token-xyz t read 40/-2", 0, "bad rate"},
        {"token-xyz t read 1000001/2", 0, "bad rate"},
        {"token-xyz t read 40/1000001", 0, "bad rate"},
        {"token-xyz t read 99999999999999999999999/2", 0, "bad rate"},
        {"token-xyz t read 40/2x", 0, "bad rate"},
        {"token-xyz t read 40/2/1", 0, "bad rate"},
        {"token-xyz t read 40/2 extra", 0, "extra fields"},
        {"token-xyz t", 0, "too few fields"},
        {"token-xyz", 0, "too few fields"},
        {"token-xyz t read\r\r", 0, "unknown scope"},
        {"token-xyz t re\0ad", 17, "NUL byte"},
        {"good-token-1 t write", 0, "duplicate token (also on line 1)"},
    };
    scratch s;
    scratch_open(&s);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[2048];
        size_t len = bad[i].len ? bad[i].len : strlen(bad[i].line);
        int head = snprintf(text, sizeof text, "good-token-1 t read\n# a comment\n");
        cr_assert(head > 0 && (size_t)head + len + 32 < sizeof text);
        memcpy(text + head, bad[i].line, len);
        const char *tail = "\ngood-token-2 t read\n";
        memcpy(text + (size_t)head + len, tail, strlen(tail));
        write_bytes(&s, text, (size_t)head + len + strlen(tail));

        token_set *set;
        char err[ERR_MAX], want[PATH_MAX_T + 16];
        cr_assert_eq(load(&s, &set, err), INV_EINVALID, "case %zu (%s): not refused", i,
                     bad[i].reason);
        snprintf(want, sizeof want, "%s:3: ", s.path);
        cr_assert_eq(strncmp(err, want, strlen(want)), 0, "case %zu: \"%s\" should start \"%s\"", i,
                     err, want);
        cr_assert_not_null(strstr(err, bad[i].reason), "case %zu: \"%s\" should say \"%s\"", i, err,
                           bad[i].reason);
        cr_assert_null(strstr(err, "token-xyz"), "case %zu: the message shows a token: %s", i, err);
    }
    scratch_close(&s);
}

Test(tokens, a_duplicate_names_both_lines)
{
    scratch s;
    scratch_open(&s);
    write_text(&s, "\n\nsame-token-1 a read\nother-token b read\n\nsame-token-1 c admin\n");
    token_set *set;
    char err[ERR_MAX], want[PATH_MAX_T + 64];
    cr_assert_eq(load(&s, &set, err), INV_EINVALID);
    snprintf(want, sizeof want, "%s:6: duplicate token (also on line 3)", s.path);
    cr_assert_str_eq(err, want);
    scratch_close(&s);
}

/* ---- files that cannot be read ------------------------------------------- */

Test(tokens, a_missing_file_a_directory_and_a_fifo_are_io_errors)
{
    scratch s;
    scratch_open(&s);
    token_set *set;
    char err[ERR_MAX];
    cr_assert_eq(load(&s, &set, err), INV_EIO, "missing");
    cr_assert_not_null(strstr(err, s.path), "%s", err);
    cr_assert_not_null(strstr(err, "No such file"), "%s", err);

    cr_assert_eq(mkdir(s.path, 0700), 0);
    cr_assert_eq(load(&s, &set, err), INV_EIO, "a directory");
    cr_assert_not_null(strstr(err, "not a regular file"), "%s", err);
    cr_assert_eq(rmdir(s.path), 0);

    /* Without O_NONBLOCK the open would wait for a writer forever. */
    cr_assert_eq(mkfifo(s.path, 0600), 0);
    cr_assert_eq(load(&s, &set, err), INV_EIO, "a FIFO");
    cr_assert_not_null(strstr(err, "not a regular file"), "%s", err);
    scratch_close(&s);
}

Test(tokens, a_file_past_the_byte_limit_is_refused)
{
    scratch s;
    scratch_open(&s);
    write_text(&s, "tok-tok-tok t read\n");
    cr_assert_eq(truncate(s.path, (off_t)TOKENS_FILE_BYTES_MAX + 1), 0); /* sparse */
    token_set *set;
    char err[ERR_MAX];
    cr_assert_eq(load(&s, &set, err), INV_ELIMIT);
    cr_assert_not_null(strstr(err, "larger than"), "%s", err);
    scratch_close(&s);
}

Test(tokens, a_file_whose_size_stat_does_not_know_is_read_to_its_end)
{
    /* procfs: a regular file of st_size 0 and more than the first read
     * (TOKENS_READ_FIRST) holds, so the buffer grows; its first line is
     * "ADDR PERMS OFFSET DEV INODE PATH": too many fields. */
    const char *path = "/proc/self/smaps";
    token_set *set = NULL;
    char err[ERR_MAX];
    cr_assert_eq(token_set_load(path, &set, err, sizeof err), INV_EINVALID, "%s", err);
    cr_assert_null(set);
    cr_assert_str_eq(err,
                     "/proc/self/smaps:1: extra fields (TOKEN TENANT SCOPE [BUCKET/LEAK_PER_S])");
}

/* ---- lookups -------------------------------------------------------------- */

Test(tokens, tokens_are_found_by_token_and_by_digest_and_near_misses_are_not)
{
    scratch s;
    scratch_open(&s);
    token_set *set = load_ok(&s, "secret-token-aaaa t1 read\nsecret-token-bbbb t2 write\n");

    token_entry *a = find(set, "secret-token-aaaa");
    cr_assert_not_null(a);
    uint8_t d[TOKEN_DIGEST_BYTES];
    cr_assert(token_digest("secret-token-aaaa", 17, d));
    cr_assert_eq(memcmp(a->digest, d, sizeof d), 0, "the entry keeps the token's digest");
    cr_assert_eq(token_set_find_digest(set, d), a);
    cr_assert_eq(find(set, "secret-token-bbbb")->scope, TOKEN_SCOPE_WRITE);

    cr_assert_null(find(set, "secret-token-aaab"), "same length, one byte off");
    cr_assert_null(find(set, "secret-token-cccc"), "same length");
    cr_assert_null(find(set, "secret-token-aaa"), "a prefix");
    cr_assert_null(find(set, "secret-token-aaaaa"), "an extension");
    cr_assert_null(token_set_find(set, "", 0));
    d[TOKEN_DIGEST_BYTES - 1] ^= 1; /* the first 8 bytes (the hash) agree */
    cr_assert_null(token_set_find_digest(set, d), "a digest that differs at its end");

    /* The digest is SHA-256 (a known answer: SHA-256("abc")). */
    static const uint8_t abc[TOKEN_DIGEST_BYTES] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea,
                                                    0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
                                                    0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c,
                                                    0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    cr_assert(token_digest("abc", 3, d));
    cr_assert_eq(memcmp(d, abc, sizeof d), 0);

    token_set_unref(set);
    scratch_close(&s);
}

Test(tokens, the_empty_set_finds_nothing_and_refcounts_free_it)
{
    token_set *set = token_set_empty();
    cr_assert_not_null(set);
    cr_assert_eq(token_set_count(set), 0);
    cr_assert_null(find(set, "whatever-token"));
    token_set_ref(set);
    token_set_unref(set);
    cr_assert_eq(token_set_count(set), 0, "one reference left: still alive");
    token_set_unref(set); /* the last: LSan reports a leak if it is not freed */
    token_set_unref(NULL);
}

Test(tokens, scope_names)
{
    cr_assert_str_eq(token_scope_name(TOKEN_SCOPE_NONE), "none");
    cr_assert_str_eq(token_scope_name(TOKEN_SCOPE_READ), "read");
    cr_assert_str_eq(token_scope_name(TOKEN_SCOPE_WRITE), "write");
    cr_assert_str_eq(token_scope_name(TOKEN_SCOPE_ADMIN), "admin");
    cr_assert_str_eq(token_scope_name((token_scope)77), "none");
}

/* ---- a file of TOKENS_MAX tokens ----------------------------------------- */

/* Writes n lines "tok-%016x tN read" (N cycling over 16 tenants). */
static void write_many(const scratch *s, size_t n)
{
    FILE *f = fopen(s->path, "wb");
    cr_assert_not_null(f);
    for (size_t i = 0; i < n; i++)
        cr_assert(fprintf(f, "tok-%016zx t%zu read\n", i, i % 16) > 0);
    cr_assert_eq(fclose(f), 0);
}

/* TOKENS_MAX tokens (over a million) in a release build: about 1.3 s to
 * load. The sanitizer builds (INVCORE_STRESS_SCALE > 1) load a scaled-down
 * file and skip the file one past the limit, which must hash TOKENS_MAX
 * tokens first (10 s under ASan, 30 s under TSan). */
Test(tokens, a_file_of_tokens_max_tokens_loads_and_one_more_is_refused, .timeout = 120)
{
    scratch s;
    scratch_open(&s);
    size_t n = tu_iters_min(TOKENS_MAX, 4096);
    write_many(&s, n);
    token_set *set;
    char err[ERR_MAX];
    uint64_t t0 = tu_now_ns();
    cr_assert_eq(load(&s, &set, err), INV_OK, "%s", err);
    uint64_t load_ms = (tu_now_ns() - t0) / 1000000;
    cr_log_info("%zu tokens loaded in %llu ms", n, (unsigned long long)load_ms);
    cr_assert_eq(token_set_count(set), n);
    char tok[64];
    for (size_t i = 0; i < n; i += 997) {
        snprintf(tok, sizeof tok, "tok-%016zx", i);
        token_entry *e = find(set, tok);
        cr_assert_not_null(e, "token %zu", i);
        snprintf(tok, sizeof tok, "t%zu", i % 16);
        cr_assert_str_eq(e->tenant, tok);
    }
    snprintf(tok, sizeof tok, "tok-%016zx", n);
    cr_assert_null(find(set, tok));
    token_set_unref(set);
    if (n == TOKENS_MAX) {
        FILE *f = fopen(s.path, "ab");
        cr_assert_not_null(f);
        fprintf(f, "%s t read\n", tok);
        cr_assert_eq(fclose(f), 0);
        cr_assert_eq(load(&s, &set, err), INV_ELIMIT);
        char want[PATH_MAX_T + 32];
        snprintf(want, sizeof want, "%s:%u: more than", s.path, TOKENS_MAX + 1);
        cr_assert_eq(strncmp(err, want, strlen(want)), 0, "%s", err);
    }
    scratch_close(&s);
}

/* ---- the registry --------------------------------------------------------- */

Test(tokens, reload_keeps_the_set_on_a_bad_file_and_swaps_on_a_good_one)
{
    scratch s;
    scratch_open(&s);
    write_text(&s, "first-token-1 a read\n");
    token_registry r;
    char err[ERR_MAX];
    cr_assert_eq(token_registry_init(&r, s.path, err, sizeof err), INV_OK, "%s", err);
    token_set *before = token_registry_acquire(&r);
    token_entry *old_entry = find(before, "first-token-1");
    cr_assert_not_null(old_entry);
    cr_assert_not(token_registry_changed(&r, before));

    write_text(&s, "first-token-1 a read\nbad\n");
    cr_assert_eq(token_registry_reload(&r, err, sizeof err), INV_EINVALID);
    cr_assert_not_null(strstr(err, ":2: too few fields"), "%s", err);
    cr_assert_not(token_registry_changed(&r, before), "a bad file keeps the set");
    unlink(s.path);
    cr_assert_eq(token_registry_reload(&r, err, sizeof err), INV_EIO, "a missing file");
    cr_assert_not(token_registry_changed(&r, before));

    write_text(&s, "second-token-2 b admin\n");
    cr_assert_eq(token_registry_reload(&r, err, sizeof err), INV_OK, "%s", err);
    cr_assert(token_registry_changed(&r, before));
    token_set *after = token_registry_acquire(&r);
    cr_assert_neq(after, before);
    cr_assert_null(find(after, "first-token-1"), "revoked by the reload");
    cr_assert_str_eq(find(after, "second-token-2")->tenant, "b");
    cr_assert_not(token_registry_changed(&r, after));

    /* The old set is still whole for its holder (ASan: no use after free). */
    cr_assert_eq(find(before, "first-token-1"), old_entry);
    cr_assert_str_eq(old_entry->tenant, "a");
    cr_assert_eq(token_set_count(before), 1);
    token_set_unref(before);

    /* relaxed: statistics, read on the only thread. */
    cr_assert_eq(atomic_load_explicit(&r.reloads, memory_order_relaxed), 1);
    cr_assert_eq(atomic_load_explicit(&r.reload_failures, memory_order_relaxed), 2);
    token_set_unref(after);
    token_registry_destroy(&r);
    scratch_close(&s);
}

Test(tokens, a_registry_without_a_file_holds_the_empty_set)
{
    token_registry r;
    char err[ERR_MAX];
    cr_assert_eq(token_registry_init(&r, NULL, err, sizeof err), INV_OK);
    token_set *set = token_registry_acquire(&r);
    cr_assert_eq(token_set_count(set), 0);
    cr_assert_eq(token_registry_reload(&r, err, sizeof err), INV_OK);
    cr_assert_not(token_registry_changed(&r, set));
    token_set_unref(set);
    token_registry_destroy(&r);
}

Test(tokens, a_registry_on_a_bad_file_is_not_initialised)
{
    scratch s;
    scratch_open(&s);
    write_text(&s, "ok-token-123 a read\nok-token-123 b read\n");
    token_registry r;
    char err[ERR_MAX];
    cr_assert_eq(token_registry_init(&r, s.path, err, sizeof err), INV_EINVALID);
    cr_assert_not_null(strstr(err, ":2: duplicate token (also on line 1)"), "%s", err);
    scratch_close(&s);
}

#define SWAP_READERS 4
#define SWAP_RELOADS 200
#define SWAP_REQUESTS 20000 /* per reader */

typedef struct {
    token_registry r;
    scratch s;
    _Atomic int reloading; /* 1 while the reloader runs */
    _Atomic uint64_t swaps_seen;
} swap_race;

/* Writes version v of the file whole, then renames it in, so a load sees
 * one version or the other: "stable-token" in both, "vN-token" in one. */
static void swap_write(swap_race *x, unsigned v)
{
    char tmp[PATH_MAX_T + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", x->s.path);
    FILE *f = fopen(tmp, "wb");
    TU_CHECK(f != NULL, "fopen %s", tmp);
    if (f == NULL)
        return;
    fprintf(f, "stable-token t%u write 1000000/1000000\nv%u-token-x t read\n", v % 2, v % 2);
    TU_CHECK(fclose(f) == 0, "fclose");
    TU_CHECK(rename(tmp, x->s.path) == 0, "rename");
}

static void swap_worker(void *arg, size_t index)
{
    swap_race *x = arg;
    if (index == 0) { /* the reloader */
        char err[ERR_MAX];
        for (unsigned i = 1; i <= SWAP_RELOADS; i++) {
            swap_write(x, i);
            int rc = token_registry_reload(&x->r, err, sizeof err);
            TU_CHECK(rc == INV_OK, "reload %u: %d %s", i, rc, err);
        }
        /* release: pairs with the readers' acquire (only a flag). */
        atomic_store_explicit(&x->reloading, 0, memory_order_release);
        return;
    }
    token_set *set = token_registry_acquire(&x->r);
    uint64_t swaps = 0, retry;
    /* Bounded: SWAP_REQUESTS, and on until the reloader has finished. */
    for (unsigned i = 0;
         i < SWAP_REQUESTS || atomic_load_explicit(&x->reloading, memory_order_acquire); i++) {
        if (token_registry_changed(&x->r, set)) {
            token_set_unref(set);
            set = token_registry_acquire(&x->r);
            swaps++;
        }
        token_entry *e = find(set, "stable-token");
        TU_CHECK(e != NULL, "reader %zu: the stable token is missing", index);
        if (e == NULL)
            break;
        TU_CHECK(e->tenant[0] == 't' && e->tenant_len == 2, "reader %zu: tenant %s", index,
                 e->tenant);
        /* One instant: at most 10 * SWAP_REQUESTS * SWAP_READERS drops, below
         * the bucket's million. */
        TU_CHECK(token_rate_take(e, T0_MS, &retry), "reader %zu: a million-drop bucket", index);
        TU_CHECK(token_set_count(set) == 2, "reader %zu: %zu tokens", index, token_set_count(set));
        if (i > 10 * SWAP_REQUESTS)
            break; /* a reloader stuck: its failure is reported, not a hang */
    }
    token_set_unref(set);
    /* relaxed: read after the join. */
    atomic_fetch_add_explicit(&x->swaps_seen, swaps, memory_order_relaxed);
}

Test(tokens, readers_follow_reloads_and_never_see_a_freed_set, .timeout = 120)
{
    static swap_race x; /* static: the registry is large for a stack */
    scratch_open(&x.s);
    atomic_store_explicit(&x.reloading, 1, memory_order_relaxed); /* before the threads */
    atomic_store_explicit(&x.swaps_seen, 0, memory_order_relaxed);
    swap_write(&x, 0);
    char err[ERR_MAX];
    cr_assert_eq(token_registry_init(&x.r, x.s.path, err, sizeof err), INV_OK, "%s", err);
    tu_run_threads(1 + SWAP_READERS, swap_worker, &x);
    tu_assert_no_failures();
    /* relaxed: statistics, after the join. */
    cr_assert_eq(atomic_load_explicit(&x.r.reloads, memory_order_relaxed), SWAP_RELOADS);
    cr_assert_eq(atomic_load_explicit(&x.r.reload_failures, memory_order_relaxed), 0);
    cr_log_info("readers switched sets %llu times",
                (unsigned long long)atomic_load_explicit(&x.swaps_seen, memory_order_relaxed));
    token_set *last = token_registry_acquire(&x.r);
    cr_assert_not_null(find(last, "v0-token-x"), "the last reload (version 200) is current");
    token_set_unref(last);
    token_registry_destroy(&x.r);
    scratch_close(&x.s);
}

/* ---- the leaky bucket ----------------------------------------------------- */

/* A set of one token with rate field rate ("": no limit); its entry in *e. */
static token_set *one_token(const char *rate, token_entry **e)
{
    scratch s;
    scratch_open(&s);
    char text[128];
    snprintf(text, sizeof text, "bucket-token t write %s\n", rate);
    token_set *set = load_ok(&s, text);
    scratch_close(&s);
    *e = find(set, "bucket-token");
    cr_assert_not_null(*e);
    return set;
}

/* How many of tries requests at now_ms the bucket admits. */
static unsigned takes(token_entry *e, int64_t now_ms, unsigned tries)
{
    unsigned admitted = 0;
    uint64_t retry;
    for (unsigned i = 0; i < tries; i++)
        admitted += token_rate_take(e, now_ms, &retry);
    return admitted;
}

Test(tokens, a_bucket_of_40_leaking_2_per_second_admits_40_then_one_per_500_ms)
{
    token_entry *e;
    token_set *set = one_token("40/2", &e);
    uint64_t retry = 0;
    cr_assert_eq(takes(e, T0_MS, 40), 40, "a burst of 40");
    cr_assert_not(token_rate_take(e, T0_MS, &retry), "the 41st");
    cr_assert_eq(retry, 500, "one drop leaks in 500 ms at 2/s");
    cr_assert_not(token_rate_take(e, T0_MS + 250, &retry));
    cr_assert_eq(retry, 250);
    cr_assert_not(token_rate_take(e, T0_MS + 499, &retry));
    cr_assert_eq(retry, 1, "never 0");
    cr_assert(token_rate_take(e, T0_MS + 500, &retry), "one drop has leaked");
    cr_assert_not(token_rate_take(e, T0_MS + 500, &retry));
    cr_assert_eq(retry, 500);

    /* 10 s later 20 drops have leaked: 20 more, not 21. */
    cr_assert_eq(takes(e, T0_MS + 10500, 30), 20);
    /* Idle for long: the bucket is empty, not negative (40, not more). */
    cr_assert_eq(takes(e, T0_MS + 1000000, 100), 40);
    token_set_unref(set);
}

Test(tokens, leaks_not_dividing_1000_are_exact_and_a_clock_behind_never_admits_more)
{
    token_entry *e;
    token_set *set = one_token("3/3", &e);
    uint64_t retry = 0;
    cr_assert_eq(takes(e, T0_MS, 3), 3);
    cr_assert_not(token_rate_take(e, T0_MS, &retry));
    cr_assert_eq(retry, 334, "1000 milli-drops at 3 per ms: 333.3 ms, rounded up");
    cr_assert_not(token_rate_take(e, T0_MS + 333, &retry));
    cr_assert_eq(retry, 1);
    cr_assert(token_rate_take(e, T0_MS + 334, &retry));
    /* A reading from before the last update (another thread's older clock)
     * sees a fuller bucket, never an emptier one. */
    cr_assert_not(token_rate_take(e, T0_MS, &retry));
    cr_assert_not(token_rate_take(e, -5, &retry), "a negative clock is clamped, not wrapped");
    token_set_unref(set);
}

Test(tokens, a_token_without_a_rate_is_never_limited)
{
    token_entry *e;
    token_set *set = one_token("", &e);
    cr_assert_eq(takes(e, T0_MS, 100000), 100000);
    uint64_t retry = 77;
    cr_assert(token_rate_take(e, T0_MS, &retry));
    cr_assert_eq(retry, 77, "untouched");
    token_set_unref(set);
}

#define RACE_THREADS 8
#define RACE_BUCKET 1000u
#define RACE_TRIES 500 /* per thread: 4000 in all, 4x the bucket */

typedef struct {
    token_entry *e;
    _Atomic uint64_t admitted;
} race;

static void race_worker(void *arg, size_t index)
{
    race *r = arg;
    uint64_t mine = 0, retry = 0;
    for (int i = 0; i < RACE_TRIES; i++) {
        if (token_rate_take(r->e, T0_MS, &retry))
            mine++;
        else
            TU_CHECK(retry >= 1, "thread %zu: retry_after %llu", index, (unsigned long long)retry);
    }
    /* relaxed: summed after the join. */
    atomic_fetch_add_explicit(&r->admitted, mine, memory_order_relaxed);
}

Test(tokens, eight_threads_at_one_instant_get_exactly_the_bucket_size)
{
    token_entry *e;
    char rate[32];
    snprintf(rate, sizeof rate, "%u/1", RACE_BUCKET);
    token_set *set = one_token(rate, &e);
    race r = {e, 0};
    tu_run_threads(RACE_THREADS, race_worker, &r);
    tu_assert_no_failures();
    /* relaxed: the join ordered the workers' adds before this. */
    uint64_t admitted = atomic_load_explicit(&r.admitted, memory_order_relaxed);
    cr_assert_eq(admitted, RACE_BUCKET, "%llu admitted by a bucket of %u",
                 (unsigned long long)admitted, RACE_BUCKET);
    uint64_t retry;
    cr_assert_not(token_rate_take(e, T0_MS, &retry));
    cr_assert(token_rate_take(e, T0_MS + 1000, &retry), "one drop per second leaks");
    token_set_unref(set);
}

/* ---- the AUTH throttle ----------------------------------------------------- */

Test(tokens, failed_auths_wait_a_doubling_penalty_and_close_after_the_limit)
{
    auth_throttle a = {0, 0};
    uint64_t wait = 99;
    int64_t now = T0_MS;
    cr_assert(auth_throttle_allow(&a, now, &wait), "no failure yet");
    cr_assert_eq(wait, 0);
    uint64_t penalty = AUTH_PENALTY_MS_FIRST;
    for (unsigned f = 1; f < AUTH_FAILURES_CLOSE; f++) {
        cr_assert_not(auth_throttle_fail(&a, now), "failure %u does not close", f);
        cr_assert_not(auth_throttle_allow(&a, now, &wait), "failure %u: refused at once", f);
        cr_assert_eq(wait, penalty, "failure %u", f);
        cr_assert_not(auth_throttle_allow(&a, now + (int64_t)penalty - 1, &wait));
        cr_assert_eq(wait, 1);
        now += (int64_t)penalty;
        cr_assert(auth_throttle_allow(&a, now, &wait), "failure %u: allowed after its penalty", f);
        penalty = penalty * 2 > AUTH_PENALTY_MS_MAX ? AUTH_PENALTY_MS_MAX : penalty * 2;
    }
    cr_assert(auth_throttle_fail(&a, now), "failure %u closes", AUTH_FAILURES_CLOSE);
    cr_assert(auth_throttle_fail(&a, now), "and stays closing");

    auth_throttle_ok(&a);
    cr_assert(auth_throttle_allow(&a, now, &wait), "a success resets");
    cr_assert_not(auth_throttle_fail(&a, now));
    cr_assert_not(auth_throttle_allow(&a, now, &wait));
    cr_assert_eq(wait, AUTH_PENALTY_MS_FIRST, "from the first penalty again");
}
