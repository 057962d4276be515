/*
 * test_journal.c — the journal on its own: concurrent reserve / publish /
 * abandon under every fsync policy, durability waits and subscribers, torn
 * tails, corruption and repair, I/O error injection, segment rotation and
 * truncation. Iteration counts are divided by INVCORE_STRESS_SCALE.
 */
#include "test_util.h"

#include "fault.h"
#include "journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------ */

/* With deferred wake-ups (journal_defer_begin) the flusher and waiters look
 * again only after an hour: a lost wake-up hangs (and a watchdog fails)
 * instead of healing in 100 ms. */
#define DEFER_SLEEP_NS (3600ULL * 1000000000ULL)
/* Records a deferring test writer publishes per bracket, at most. */
#define DEFER_BRACKET_MAX 8u

static size_t count_files(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name), s = strlen(suffix);
        if (l > s && strcmp(e->d_name + l - s, suffix) == 0)
            n++;
    }
    if (d)
        closedir(d);
    return n;
}

/* The path of the last (highest) segment in dir. */
static void last_segment(const char *dir, char *out, size_t cap)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    char best[300] = "";
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l == 20 && strcmp(e->d_name + 16, ".jnl") == 0 && strcmp(e->d_name, best) > 0)
            snprintf(best, sizeof best, "%s", e->d_name);
    }
    closedir(d);
    cr_assert(best[0] != '\0');
    snprintf(out, cap, "%s/%s", dir, best);
}

static journal *open_j(const char *dir, inv_fsync_policy policy, uint64_t start)
{
    journal_config cfg = {
        .dir = dir, .policy = policy, .start_position = start, .fsync_interval_ms = 2};
    journal *j;
    char err[256] = "";
    int rc = journal_open(&j, &cfg, err, sizeof err);
    cr_assert_eq(rc, INV_OK, "journal_open: %d %s", rc, err);
    return j;
}

/* Replay collector: positions, types and payload copies. */
typedef struct {
    size_t n, cap;
    uint64_t *pos;
    uint8_t *type;
    uint32_t *len;
    uint64_t *tag; /* first 8 payload bytes (0 if shorter) */
} collected;

static int collect_cb(void *ctx, uint64_t pos, uint8_t type, const void *payload, uint32_t len)
{
    collected *c = ctx;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 1024;
        c->pos = realloc(c->pos, c->cap * sizeof *c->pos);
        c->type = realloc(c->type, c->cap);
        c->len = realloc(c->len, c->cap * sizeof *c->len);
        c->tag = realloc(c->tag, c->cap * sizeof *c->tag);
    }
    c->pos[c->n] = pos;
    c->type[c->n] = type;
    c->len[c->n] = len;
    c->tag[c->n] = 0;
    if (len >= 8)
        memcpy(&c->tag[c->n], payload, 8);
    c->n++;
    return INV_OK;
}

static void collected_free(collected *c)
{
    free(c->pos);
    free(c->type);
    free(c->len);
    free(c->tag);
    memset(c, 0, sizeof *c);
}

static int replay_into(const char *dir, uint64_t from, bool repair, collected *c, uint64_t *end,
                       char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    return journal_replay(dir, from, repair, collect_cb, c, end, err, errlen);
}

/* Publishes n records of payload_len bytes tagged i; returns positions. */
static void write_records(journal *j, size_t n, uint32_t len, uint64_t *pos)
{
    uint8_t buf[4096] = {0};
    cr_assert(len >= 8 && len <= sizeof buf);
    for (size_t i = 0; i < n; i++) {
        uint64_t tag = i + 1;
        memcpy(buf, &tag, 8);
        memset(buf + 8, (int)(i & 0xff), len - 8);
        uint64_t p = journal_reserve(j, len);
        cr_assert_neq(p, 0);
        cr_assert_eq(journal_publish(j, p, 16 + (uint8_t)(i % 8), buf, len), INV_OK);
        if (pos)
            pos[i] = p;
    }
}

/* ---- concurrency ----------------------------------------------------------- */

#define WRITERS 8

typedef struct {
    journal *j;
    unsigned id;
    size_t n;
    bool wait_each;
    bool defer; /* publish in brackets of 1..DEFER_BRACKET_MAX records */
    uint64_t *pos; /* per record, 0 if abandoned */
    _Atomic int *errors;
} writer_arg;

static void *writer_main(void *arg)
{
    writer_arg *w = arg;
    uint64_t rnd = 0x9e3779b97f4a7c15ULL * (w->id + 1);
    uint8_t buf[512];
    size_t bracket_left = 0;
    for (size_t i = 0; i < w->n; i++) {
        if (w->defer && bracket_left == 0) { /* an event loop's iteration */
            journal_defer_end(w->j);
            journal_defer_begin(w->j);
            bracket_left = 1 + (size_t)(rnd % DEFER_BRACKET_MAX);
        }
        bracket_left -= bracket_left > 0;
        rnd ^= rnd << 13;
        rnd ^= rnd >> 7;
        rnd ^= rnd << 17;
        uint32_t len = 16 + (uint32_t)(rnd % 200);
        uint64_t tag = ((uint64_t)w->id << 32) | i;
        memcpy(buf, &tag, 8);
        memset(buf + 8, (int)w->id, len - 8);
        uint64_t p = journal_reserve(w->j, len);
        if (p == 0) {
            atomic_fetch_add_explicit(w->errors, 1, memory_order_relaxed);
            continue;
        }
        if (rnd % 7 == 0) {
            if (journal_abandon(w->j, p, len) != INV_OK)
                atomic_fetch_add_explicit(w->errors, 1, memory_order_relaxed);
            w->pos[i] = 0;
            continue;
        }
        if (journal_publish(w->j, p, 16 + (uint8_t)(rnd % 100), buf, len) != INV_OK)
            atomic_fetch_add_explicit(w->errors, 1, memory_order_relaxed);
        w->pos[i] = p;
        if (w->wait_each || i % 64 == 63) {
            if (journal_wait(w->j, p) != INV_OK || journal_durable_end(w->j) <= p)
                atomic_fetch_add_explicit(w->errors, 1, memory_order_relaxed);
        }
    }
    journal_defer_end(w->j); /* a no-op unless deferring */
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void run_concurrent(inv_fsync_policy policy, size_t per_thread, bool wait_each, bool defer)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "test-journal");
    journal_config cfg = {.dir = dir,
                          .policy = policy,
                          .fsync_interval_ms = 2,
                          .sleep_ns_max = defer ? DEFER_SLEEP_NS : 0};
    journal *j;
    cr_assert_eq(journal_open(&j, &cfg, NULL, 0), INV_OK);
    int sub = journal_subscribe(j);
    cr_assert(sub >= 0);
    pthread_t th[WRITERS];
    writer_arg args[WRITERS];
    _Atomic int errors = 0;
    for (unsigned t = 0; t < WRITERS; t++) {
        args[t] = (writer_arg){
            j, t, per_thread, wait_each, defer, calloc(per_thread, sizeof(uint64_t)), &errors};
        pthread_create(&th[t], NULL, writer_main, &args[t]);
    }
    for (unsigned t = 0; t < WRITERS; t++)
        pthread_join(th[t], NULL);
    cr_assert_eq(atomic_load_explicit(&errors, memory_order_relaxed), 0);
    uint64_t tail = journal_tail(j);
    /* every record published: waiting for the last byte's record works */
    struct pollfd pfd = {.fd = sub, .events = POLLIN};
    cr_assert_eq(poll(&pfd, 1, 5000), 1, "subscriber never signalled");
    uint64_t v;
    cr_assert_eq(read(sub, &v, 8), 8);
    cr_assert(v >= 1);
    journal_stats st;
    journal_stats_get(j, &st);
    cr_assert_eq(st.failed, false);
    cr_assert_eq(st.tail, tail);
    journal_unsubscribe(j, sub);
    cr_assert_eq(journal_close(j), INV_OK);

    /* expected: every published position, sorted */
    size_t total = 0;
    uint64_t *want = malloc(WRITERS * per_thread * sizeof *want);
    uint64_t *tags = malloc(WRITERS * per_thread * sizeof *tags);
    for (unsigned t = 0; t < WRITERS; t++)
        for (size_t i = 0; i < per_thread; i++)
            if (args[t].pos[i] != 0)
                want[total++] = args[t].pos[i];
    qsort(want, total, sizeof *want, cmp_u64);
    collected c;
    uint64_t end;
    char err[512] = "";
    cr_assert_eq(replay_into(dir, 0, false, &c, &end, err, sizeof err), INV_OK, "%s", err);
    cr_assert_eq(end, tail);
    cr_assert_eq(c.n, total, "replayed %zu of %zu", c.n, total);
    for (size_t i = 0; i < total; i++) {
        cr_assert_eq(c.pos[i], want[i]);
        tags[i] = c.tag[i];
        /* the tag names a record its writer published at this position */
        unsigned t = (unsigned)(c.tag[i] >> 32);
        size_t k = (size_t)(uint32_t)c.tag[i];
        cr_assert(t < WRITERS && k < per_thread);
        cr_assert_eq(args[t].pos[k], c.pos[i]);
    }
    for (unsigned t = 0; t < WRITERS; t++)
        free(args[t].pos);
    free(want);
    free(tags);
    collected_free(&c);
    tu_remove_tree(dir);
}

Test(journal, concurrent_writers_always_replay_exactly_the_published)
{
    run_concurrent(INV_FSYNC_ALWAYS, 400 / tu_scale(), true, false);
}

Test(journal, concurrent_writers_interval_replay_exactly_the_published)
{
    run_concurrent(INV_FSYNC_INTERVAL, 2000 / tu_scale(), false, false);
}

Test(journal, concurrent_writers_none_replay_exactly_the_published)
{
    run_concurrent(INV_FSYNC_NONE, 8000 / tu_scale(), false, false);
}

Test(journal, interval_waiters_return_once_fsynced)
{
    run_concurrent(INV_FSYNC_INTERVAL, 100 / tu_scale(), true, false);
}

/* Many event loops: every thread publishes in brackets, some waiting for
 * durability inside them; every record is written, none lost or doubled,
 * and no lost wake-up (the flusher would sleep for an hour). */
Test(journal, deferring_writers_always_replay_exactly_the_published)
{
    run_concurrent(INV_FSYNC_ALWAYS, 400 / tu_scale(), true, true);
}

Test(journal, deferring_writers_interval_replay_exactly_the_published)
{
    run_concurrent(INV_FSYNC_INTERVAL, 2000 / tu_scale(), false, true);
}

Test(journal, deferring_writers_none_replay_exactly_the_published)
{
    run_concurrent(INV_FSYNC_NONE, 8000 / tu_scale(), false, true);
}

Test(journal, positions_start_at_first_and_strictly_increase)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "test-journal");
    journal *j = open_j(dir, INV_FSYNC_NONE, 0);
    uint64_t a = journal_reserve(j, 0), b = journal_reserve(j, 1);
    uint64_t c = journal_reserve(j, 9);
    cr_assert_eq(a, JOURNAL_POSITION_FIRST);
    cr_assert_eq(b, a + journal_record_size(0));
    cr_assert_eq(c, b + journal_record_size(1));
    cr_assert_eq(journal_reserve(j, JOURNAL_PAYLOAD_MAX + 1), 0);
    cr_assert_eq(journal_publish(j, c, 3, "x", 1), INV_EINVALID);
    cr_assert_eq(journal_publish(j, c, 16, "123456789", 9), INV_OK);
    cr_assert_eq(journal_abandon(j, b, 1), INV_OK);
    cr_assert_eq(journal_publish(j, a, 200, NULL, 0), INV_OK);
    cr_assert_eq(journal_wait(j, c), INV_OK);
    cr_assert(journal_durable_end(j) > c);
    cr_assert_eq(journal_close(j), INV_OK);
    collected col;
    uint64_t end;
    char err[256];
    cr_assert_eq(replay_into(dir, 0, false, &col, &end, err, sizeof err), INV_OK);
    cr_assert_eq(col.n, 2);
    cr_assert_eq(col.pos[0], a);
    cr_assert_eq(col.type[0], 200);
    cr_assert_eq(col.len[0], 0);
    cr_assert_eq(col.pos[1], c);
    cr_assert_eq(col.len[1], 9);
    cr_assert_eq(end, c + journal_record_size(9));
    collected_free(&col);
    tu_remove_tree(dir);
}

Test(journal, big_records_wrap_the_ring_under_back_pressure)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "test-journal");
    journal_config cfg = {.dir = dir, .policy = INV_FSYNC_NONE, .ring_bytes = 8u << 20};
    journal *j;
    cr_assert_eq(journal_open(&j, &cfg, NULL, 0), INV_OK);
    uint32_t len = JOURNAL_PAYLOAD_MAX - 3;
    uint8_t *buf = malloc(len);
    size_t n = 40 / (size_t)tu_scale() + 12;
    uint64_t last = 0;
    for (size_t i = 0; i < n; i++) {
        memset(buf, (int)i + 1, len);
        memcpy(buf, &i, sizeof i);
        last = journal_reserve(j, len);
        cr_assert_eq(journal_publish(j, last, 17, buf, len), INV_OK);
    }
    cr_assert_eq(journal_wait(j, last), INV_OK);
    cr_assert_eq(journal_close(j), INV_OK);
    free(buf);
    collected c;
    uint64_t end;
    cr_assert_eq(replay_into(dir, 0, false, &c, &end, NULL, 0), INV_OK);
    cr_assert_eq(c.n, n);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(c.tag[i], i);
    collected_free(&c);
    tu_remove_tree(dir);
}

/* ---- torn tails and corruption -------------------------------------------- */

static off_t file_size(const char *path)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    return st.st_size;
}

/* A fresh dir with a journal of n records of len bytes (positions in
 * pos), written under policy and closed. */
static void closed_journal(char *dir, size_t cap, inv_fsync_policy policy, size_t n, uint32_t len,
                           uint64_t *pos)
{
    tu_tmpdir(dir, cap, "test-journal");
    journal *j = open_j(dir, policy, 0);
    write_records(j, n, len, pos);
    cr_assert_eq(journal_close(j), INV_OK);
}

/* Replay resumed at or past where the records it kept end (records_end):
 * past every position the writer may have handed out (its header's
 * reserved-ahead mark), never further than that mark can be ahead. */
static void assert_resumes_past(uint64_t end, uint64_t records_end)
{
    cr_assert_geq(end, records_end);
    cr_assert_leq(end, records_end + JOURNAL_RING_BYTES_DEFAULT + 2u * JOURNAL_RESERVE_AHEAD_BYTES,
                  "end %llu, records end %llu", (unsigned long long)end,
                  (unsigned long long)records_end);
}

/* Reopens the journal at end (where replay ended), appends one record,
 * which must land exactly there, and replays: total records in all. */
static void continues_at(const char *dir, uint64_t end, size_t total)
{
    journal *j = open_j(dir, INV_FSYNC_ALWAYS, end);
    uint64_t p;
    write_records(j, 1, 40, &p);
    cr_assert_eq(p, end);
    cr_assert_eq(journal_close(j), INV_OK);
    collected c;
    char err[512] = "";
    cr_assert_eq(replay_into(dir, 0, false, &c, &end, err, sizeof err), INV_OK, "%s", err);
    cr_assert_eq(c.n, total);
    collected_free(&c);
}

Test(journal, torn_tail_at_every_byte_recovers_to_the_previous_record)
{
    char dir[64];
    uint64_t pos[3];
    closed_journal(dir, sizeof dir, INV_FSYNC_NONE, 3, 40, pos);
    char seg[400], keep[420];
    last_segment(dir, seg, sizeof seg);
    snprintf(keep, sizeof keep, "%s/original", dir);
    tu_copy_file(seg, keep);
    off_t size = file_size(seg);
    off_t last_off = size - (off_t)journal_record_size(40);
    for (off_t cut = last_off; cut < size; cut++) {
        tu_copy_file(keep, seg);
        cr_assert_eq(truncate(seg, cut), 0);
        collected c;
        uint64_t end;
        char err[512] = "";
        int rc = replay_into(dir, 0, false, &c, &end, err, sizeof err);
        cr_assert_eq(rc, INV_OK, "cut %lld: %s", (long long)cut, err);
        cr_assert_eq(c.n, 2, "cut %lld", (long long)cut);
        assert_resumes_past(end, pos[2]);
        cr_assert_eq(file_size(seg), last_off);
        collected_free(&c);
    }
    /* a torn tail of zeros (size extended, data lost) is cut too */
    tu_copy_file(keep, seg);
    cr_assert_eq(truncate(seg, size + 4096), 0);
    collected c;
    uint64_t end;
    cr_assert_eq(replay_into(dir, 0, false, &c, &end, NULL, 0), INV_OK);
    cr_assert_eq(c.n, 3);
    cr_assert_eq(file_size(seg), size);
    collected_free(&c);
    /* the journal reopens where replay ended and continues */
    unlink(keep);
    continues_at(dir, end, 4);
    tu_remove_tree(dir);
}

/* The writer keeps zeros ahead of its records (JOURNAL_PREALLOC_BYTES):
 * a crash leaves them in the segment, and replay must read them as the end
 * of the records, cut them, and let the journal continue there. */
Test(journal, zero_tail_of_a_live_segment_is_its_end_and_close_trims_it)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "test-journal");
    journal *j = open_j(dir, INV_FSYNC_ALWAYS, 0);
    uint64_t pos[3];
    write_records(j, 3, 40, pos);
    cr_assert_eq(journal_wait(j, pos[2]), INV_OK);
    uint64_t end_expected = pos[2] + journal_record_size(40);
    off_t data_end = (off_t)(JOURNAL_SEGMENT_HEADER + end_expected - JOURNAL_POSITION_FIRST);
    char seg[400], crashed[420];
    last_segment(dir, seg, sizeof seg);
    snprintf(crashed, sizeof crashed, "%s/crashed", dir);
    tu_copy_file(seg, crashed); /* the file as a SIGKILL now would leave it */
    cr_assert_geq(file_size(crashed), data_end + (off_t)JOURNAL_PREALLOC_BYTES / 2,
                  "no zeros written ahead: %lld", (long long)file_size(crashed));
    cr_assert_eq(journal_close(j), INV_OK);
    cr_assert_eq(file_size(seg), data_end, "a clean close trims the zeros");
    cr_assert_eq(rename(crashed, seg), 0);
    collected c;
    uint64_t end;
    char err[512] = "";
    cr_assert_eq(replay_into(dir, 0, false, &c, &end, err, sizeof err), INV_OK, "%s", err);
    cr_assert_eq(c.n, 3);
    assert_resumes_past(end, end_expected);
    cr_assert_eq(file_size(seg), data_end, "replay cuts the zero tail");
    collected_free(&c);
    continues_at(dir, end, 4);
    tu_remove_tree(dir);
}

/* A crash between a rotation and the trim of the finished segment leaves
 * zeros after its records: replay goes on in the next segment. */
Test(journal, zero_tail_of_a_finished_segment_continues_in_the_next)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "test-journal");
    journal_config cfg = {.dir = dir, .policy = INV_FSYNC_NONE, .segment_bytes = 4096};
    journal *j;
    cr_assert_eq(journal_open(&j, &cfg, NULL, 0), INV_OK);
    enum { N = 200 };
    uint64_t pos[N];
    write_records(j, N, 100, pos);
    cr_assert_eq(journal_close(j), INV_OK);
    cr_assert(count_files(dir, ".jnl") > 2);
    char first[400];
    snprintf(first, sizeof first, "%s/%016llx.jnl", dir,
             (unsigned long long)JOURNAL_POSITION_FIRST);
    off_t size = file_size(first);
    cr_assert_eq(truncate(first, size + 4096), 0);
    collected c;
    uint64_t end;
    char err[512] = "";
    cr_assert_eq(replay_into(dir, 0, false, &c, &end, err, sizeof err), INV_OK, "%s", err);
    cr_assert_eq(c.n, N);
    assert_resumes_past(end, pos[N - 1] + journal_record_size(100));
    cr_assert_eq(file_size(first), size, "replay trims the zeros of a finished segment");
    collected_free(&c);
    tu_remove_tree(dir);
}

/* Repair that sets aside segments after a missing one ends replay in a
 * finished segment that still had its zeros: the journal must reopen
 * there (it refused when only the last segment's zeros were trimmed). */
Test(journal, repair_ending_in_a_segment_with_zeros_reopens_there)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "test-journal");
    journal_config cfg = {.dir = dir, .policy = INV_FSYNC_NONE, .segment_bytes = 4096};
    journal *j;
    cr_assert_eq(journal_open(&j, &cfg, NULL, 0), INV_OK);
    enum { N = 200 };
    uint64_t pos[N];
    write_records(j, N, 100, pos);
    cr_assert_eq(journal_close(j), INV_OK);
    cr_assert(count_files(dir, ".jnl") > 3);
    /* the first segment keeps zeros after its records; the second is lost */
    char first[400];
    snprintf(first, sizeof first, "%s/%016llx.jnl", dir,
             (unsigned long long)JOURNAL_POSITION_FIRST);
    off_t size = file_size(first);
    cr_assert_eq(truncate(first, size + 4096), 0);
    uint64_t second = JOURNAL_POSITION_FIRST + (uint64_t)(size - JOURNAL_SEGMENT_HEADER);
    char lost[400];
    snprintf(lost, sizeof lost, "%s/%016llx.jnl", dir, (unsigned long long)second);
    cr_assert_eq(unlink(lost), 0, "%s", lost);
    collected c;
    uint64_t end;
    char err[512] = "";
    cr_assert_eq(replay_into(dir, 0, true, &c, &end, err, sizeof err), INV_OK, "%s", err);
    assert_resumes_past(end, second);
    collected_free(&c);
    continues_at(dir, end,
                 (size_t)((second - JOURNAL_POSITION_FIRST) / journal_record_size(100)) + 1);
    tu_remove_tree(dir);
}

Test(journal, flipped_byte_in_a_middle_record_is_refused_and_repair_cuts)
{
    char dir[64];
    uint64_t pos[4];
    closed_journal(dir, sizeof dir, INV_FSYNC_NONE, 4, 64, pos);
    char seg[400];
    last_segment(dir, seg, sizeof seg);
    off_t off2 = (off_t)(JOURNAL_SEGMENT_HEADER + (pos[1] - pos[0]));
    int fd = open(seg, O_RDWR);
    uint8_t b;
    cr_assert_eq(pread(fd, &b, 1, off2 + 20), 1);
    b ^= 0x40;
    cr_assert_eq(pwrite(fd, &b, 1, off2 + 20), 1);
    close(fd);
    collected c;
    uint64_t end;
    char err[512] = "";
    cr_assert_eq(replay_into(dir, 0, false, &c, &end, err, sizeof err), INV_EINVALID);
    char want[64];
    snprintf(want, sizeof want, "byte offset %lld", (long long)off2);
    cr_assert(strstr(err, seg) != NULL, "message: %s", err);
    cr_assert(strstr(err, want) != NULL, "message: %s", err);
    cr_assert_eq(file_size(seg), off2 + 3 * (off_t)journal_record_size(64));
    collected_free(&c);
    cr_assert_eq(replay_into(dir, 0, true, &c, &end, err, sizeof err), INV_OK);
    cr_assert_eq(c.n, 1);
    assert_resumes_past(end, pos[1]);
    cr_assert_eq(file_size(seg), off2);
    collected_free(&c);
    tu_remove_tree(dir);
}

/* ---- I/O errors ---------------------------------------------------------- */

typedef struct {
    _Atomic int fail_writes, fail_syncs; /* armed: the next call fails */
} faults;

static ssize_t fault_write(void *ctx, int fd, const struct iovec *iov, int iovcnt, off_t off)
{
    faults *f = ctx;
    if (atomic_load_explicit(&f->fail_writes, memory_order_acquire)) {
        errno = ENOSPC;
        return -1;
    }
    return pwritev(fd, iov, iovcnt, off);
}

static int fault_sync(void *ctx, int fd)
{
    faults *f = ctx;
    if (atomic_load_explicit(&f->fail_syncs, memory_order_acquire)) {
        errno = EIO;
        return -1;
    }
    return fdatasync(fd);
}

/* A snapshot under NONE forces the written records to disk first: the
 * sync goes through the journal's hook, and its failure is reported. */
Test(journal, sync_written_syncs_under_none_and_reports_failure)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "test-journal");
    faults f = {0, 0};
    journal_config cfg = {
        .dir = dir, .policy = INV_FSYNC_NONE, .sync_hook = fault_sync, .hook_ctx = &f};
    journal *j;
    cr_assert_eq(journal_open(&j, &cfg, NULL, 0), INV_OK);
    uint64_t pos[4];
    write_records(j, 4, 40, pos);
    cr_assert_eq(journal_wait(j, pos[3]), INV_OK);
    cr_assert_eq(journal_sync_written(j), INV_OK);
    atomic_store_explicit(&f.fail_syncs, 1, memory_order_release);
    cr_assert_eq(journal_sync_written(j), INV_EIO);
    atomic_store_explicit(&f.fail_syncs, 0, memory_order_release);
    cr_assert_eq(journal_close(j), INV_OK);
    tu_remove_tree(dir);
}

static void run_fault(bool on_write)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "test-journal");
    faults f = {0, 0};
    journal_config cfg = {.dir = dir,
                          .policy = INV_FSYNC_ALWAYS,
                          .write_hook = fault_write,
                          .sync_hook = fault_sync,
                          .hook_ctx = &f};
    journal *j;
    cr_assert_eq(journal_open(&j, &cfg, NULL, 0), INV_OK);
    uint64_t ok[3];
    write_records(j, 3, 32, ok);
    cr_assert_eq(journal_wait(j, ok[2]), INV_OK);
    uint64_t durable = journal_durable_end(j);
    cr_assert(durable > ok[2]);
    if (on_write)
        atomic_store_explicit(&f.fail_writes, 1, memory_order_release);
    else
        atomic_store_explicit(&f.fail_syncs, 1, memory_order_release);
    uint64_t bad[4];
    uint8_t buf[32] = {1};
    for (int i = 0; i < 4; i++)
        cr_assert_neq(bad[i] = journal_reserve(j, 32), 0);
    for (int i = 0; i < 4; i++) {
        int rc = journal_publish(j, bad[i], 16, buf, 32);
        cr_assert(rc == INV_OK || rc == INV_EIO);
    }
    for (int i = 0; i < 4; i++)
        cr_assert_eq(journal_wait(j, bad[i]), INV_EIO);
    cr_assert(journal_failed(j));
    cr_assert_eq(journal_durable_end(j), durable);
    cr_assert_eq(journal_reserve(j, 32), 0);
    cr_assert_eq(journal_wait(j, ok[2]), INV_OK); /* durable before stays */
    journal_stats st;
    journal_stats_get(j, &st);
    cr_assert(st.failed);
    cr_assert_eq(st.durable_end, durable);
    cr_assert_eq(journal_close(j), INV_EIO);
    tu_remove_tree(dir);
}

Test(journal, write_failure_fails_the_journal_and_wakes_waiters_with_eio)
{
    run_fault(true);
}

Test(journal, fsync_failure_fails_the_journal_and_nothing_more_is_durable)
{
    run_fault(false);
}

/* ---- segments --------------------------------------------------------------- */

Test(journal, segments_rotate_and_drop_before_deletes_covered_ones)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "test-journal");
    journal_config cfg = {
        .dir = dir, .policy = INV_FSYNC_INTERVAL, .segment_bytes = 4096, .fsync_interval_ms = 1};
    journal *j;
    cr_assert_eq(journal_open(&j, &cfg, NULL, 0), INV_OK);
    enum { N = 300 };
    uint64_t pos[N];
    write_records(j, N, 100, pos);
    cr_assert_eq(journal_wait(j, pos[N - 1]), INV_OK);
    journal_stats st;
    journal_stats_get(j, &st);
    cr_assert(st.segments > 5);
    size_t before = count_files(dir, ".jnl");
    cr_assert_eq(before, st.segments);
    /* drop while the journal is live: the current segment is kept */
    cr_assert_eq(journal_drop_before(dir, pos[200]), INV_OK);
    size_t after = count_files(dir, ".jnl");
    cr_assert(after < before && after >= 1);
    cr_assert_eq(journal_close(j), INV_OK);
    collected c;
    uint64_t end;
    char err[512] = "";
    cr_assert_eq(replay_into(dir, pos[200], false, &c, &end, err, sizeof err), INV_OK, "%s", err);
    cr_assert_eq(c.n, N - 200);
    cr_assert_eq(c.pos[0], pos[200]);
    assert_resumes_past(end, pos[N - 1] + journal_record_size(100));
    collected_free(&c);
    /* from the start, the dropped segments are missing: corruption */
    cr_assert_eq(replay_into(dir, 0, false, &c, &end, err, sizeof err), INV_EINVALID);
    cr_assert(strstr(err, "missing segment") != NULL, "%s", err);
    collected_free(&c);
    tu_remove_tree(dir);
}

Test(journal, a_missing_middle_segment_is_corruption)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "test-journal");
    journal_config cfg = {.dir = dir, .policy = INV_FSYNC_NONE, .segment_bytes = 4096};
    journal *j;
    cr_assert_eq(journal_open(&j, &cfg, NULL, 0), INV_OK);
    uint64_t pos[200];
    write_records(j, 200, 100, pos);
    cr_assert_eq(journal_close(j), INV_OK);
    /* remove the segment holding record 100 */
    DIR *d = opendir(dir);
    struct dirent *e;
    uint64_t victim = 0;
    while ((e = readdir(d)) != NULL) {
        uint64_t first;
        if (sscanf(e->d_name, "%16" SCNx64 ".jnl", &first) == 1 && first <= pos[100] &&
            first > victim)
            victim = first;
    }
    closedir(d);
    char path[256];
    snprintf(path, sizeof path, "%s/%016" PRIx64 ".jnl", dir, victim);
    cr_assert_eq(unlink(path), 0);
    collected c;
    uint64_t end;
    char err[512] = "";
    cr_assert_eq(replay_into(dir, 0, false, &c, &end, err, sizeof err), INV_EINVALID);
    cr_assert(strstr(err, "missing segment") != NULL, "%s", err);
    collected_free(&c);
    /* repair keeps the prefix and sets the rest aside */
    cr_assert_eq(replay_into(dir, 0, true, &c, &end, err, sizeof err), INV_OK);
    cr_assert(c.n < 100 && c.n > 0);
    assert_resumes_past(end, victim);
    collected_free(&c);
    tu_remove_tree(dir);
}

Test(journal, open_refuses_a_start_inside_existing_records)
{
    char dir[64];
    uint64_t pos[2];
    closed_journal(dir, sizeof dir, INV_FSYNC_NONE, 2, 8, pos);
    journal *j;
    journal_config cfg = {.dir = dir, .start_position = pos[1]};
    char err[256] = "";
    cr_assert_eq(journal_open(&j, &cfg, err, sizeof err), INV_EINVALID);
    cr_assert(strstr(err, "replay first") != NULL, "%s", err);
    tu_remove_tree(dir);
}

Test(journal, subscribers_are_bounded_and_unsubscribe_closes)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "test-journal");
    journal *j = open_j(dir, INV_FSYNC_NONE, 0);
    int fds[INV_DURABLE_SUBSCRIBERS_MAX];
    for (int i = 0; i < INV_DURABLE_SUBSCRIBERS_MAX; i++) {
        fds[i] = journal_subscribe(j);
        cr_assert(fds[i] >= 0);
    }
    cr_assert_eq(journal_subscribe(j), INV_ELIMIT);
    for (int i = 0; i < INV_DURABLE_SUBSCRIBERS_MAX; i++)
        journal_unsubscribe(j, fds[i]);
    cr_assert_eq(fcntl(fds[0], F_GETFD), -1); /* closed */
    cr_assert_eq(journal_close(j), INV_OK);
    tu_remove_tree(dir);
}

Test(journal, empty_or_missing_directory_replays_nothing)
{
    collected c;
    uint64_t end;
    cr_assert_eq(replay_into("/tmp/invcore-no-such-dir-xyz", 0, false, &c, &end, NULL, 0), INV_OK);
    cr_assert_eq(c.n, 0);
    cr_assert_eq(end, JOURNAL_POSITION_FIRST);
}

/* ---- deferred flusher wake-ups (event loops) ------------------------------ */

/* How long a watchdog waits for work that needs no more than a few fsyncs. */
#define DEFER_WATCHDOG_S 20
#define DEFER_POLL_MS 1

/* Opens a journal whose sleeps last hours (a lost wake-up hangs) with the
 * lazy flusher's poll period and idle time (0: the defaults; hours: it
 * never looks by itself, or never stops polling). */
static journal *open_sleepy(const char *dir, inv_fsync_policy policy, size_t ring_bytes,
                            uint64_t poll_ns, uint64_t idle_ns)
{
    journal_config cfg = {.dir = dir,
                          .policy = policy,
                          .fsync_interval_ms = 2,
                          .ring_bytes = ring_bytes,
                          .sleep_ns_max = DEFER_SLEEP_NS,
                          .lazy_poll_ns = poll_ns,
                          .lazy_idle_ns = idle_ns};
    journal *j;
    char err[256] = "";
    int rc = journal_open(&j, &cfg, err, sizeof err);
    cr_assert_eq(rc, INV_OK, "journal_open: %d %s", rc, err);
    return j;
}

static journal *open_defer(const char *dir, inv_fsync_policy policy, size_t ring_bytes)
{
    return open_sleepy(dir, policy, ring_bytes, 0, 0);
}

/* NONE with the lazy flusher's poll period and idle time set. */
static journal *open_lazy(const char *dir, uint64_t poll_ns, uint64_t idle_ns, size_t ring_bytes)
{
    return open_sleepy(dir, INV_FSYNC_NONE, ring_bytes, poll_ns, idle_ns);
}

static journal_stats stats_of(journal *j)
{
    journal_stats st;
    journal_stats_get(j, &st);
    return st;
}

/* Waits (bounded) until the flusher sleeps: only a wake-up moves it then. */
static void wait_flusher_asleep(journal *j)
{
    for (unsigned i = 0; !stats_of(j).flusher_asleep; i++) {
        cr_assert_lt(i, DEFER_WATCHDOG_S * 1000u / DEFER_POLL_MS, "the flusher never slept");
        usleep(DEFER_POLL_MS * 1000u);
    }
}

/* Waits for the subscriber fd until pos is durable; false after the
 * watchdog (nobody woke the flusher). */
static bool durable_via(journal *j, int sub, uint64_t pos)
{
    for (unsigned i = 0; journal_durable_end(j) <= pos; i++) {
        if (i == DEFER_WATCHDOG_S)
            return false;
        struct pollfd pfd = {.fd = sub, .events = POLLIN};
        if (poll(&pfd, 1, 1000) == 1) {
            uint64_t v;
            cr_assert_eq(read(sub, &v, sizeof v), (ssize_t)sizeof v);
        }
    }
    return true;
}

/* Runs fn(arg) on a thread and fails if it does not finish within the
 * watchdog (a deferring thread asleep on a flusher nobody woke). */
static void run_watched(void *(*fn)(void *), void *arg, const char *what)
{
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, fn, arg), 0);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += DEFER_WATCHDOG_S;
    cr_assert_eq(pthread_timedjoin_np(th, NULL, &ts), 0, "%s: hung (deadlock)", what);
}

static void replay_expect(const char *dir, size_t n, uint64_t end_want)
{
    collected c;
    uint64_t end;
    char err[256] = "";
    cr_assert_eq(replay_into(dir, 0, false, &c, &end, err, sizeof err), INV_OK, "%s", err);
    cr_assert_eq(c.n, n, "replayed %zu of %zu", c.n, n);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(c.tag[i], i + 1);
    cr_assert_eq(end, end_want);
    collected_free(&c);
}

Test(journal, a_deferring_threads_records_reach_the_segment_when_its_bracket_ends)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "test-journal");
    journal *j = open_defer(dir, INV_FSYNC_ALWAYS, 0);
    int sub = journal_subscribe(j);
    cr_assert(sub >= 0);
    wait_flusher_asleep(j);
    uint64_t pos[50];
    journal_defer_begin(j);
    journal_defer_begin(j); /* a no-op inside the bracket */
    write_records(j, 50, 64, pos);
    /* no wake-up yet: the flusher still sleeps (for an hour) */
    cr_assert_eq(stats_of(j).flusher_wakeups, 0);
    cr_assert(journal_durable_end(j) <= pos[0]);
    journal_defer_end(j);
    cr_assert_eq(stats_of(j).flusher_wakeups, 1, "one wake-up for the bracket");
    cr_assert(durable_via(j, sub, pos[49]), "the bracket's end woke no flusher");
    journal_defer_end(j); /* outside a bracket: a no-op */
    /* outside the bracket every record wakes a sleeping flusher, as before */
    wait_flusher_asleep(j);
    uint64_t w = stats_of(j).flusher_wakeups;
    uint64_t p = journal_reserve(j, 8);
    uint64_t tag = 51;
    cr_assert_eq(journal_publish(j, p, 16, &tag, 8), INV_OK);
    cr_assert_eq(stats_of(j).flusher_wakeups, w + 1);
    cr_assert(durable_via(j, sub, p));
    journal_unsubscribe(j, sub);
    cr_assert_eq(journal_close(j), INV_OK);
    replay_expect(dir, 51, p + journal_record_size(8));
    tu_remove_tree(dir);
}

Test(journal, begin_on_another_journal_pays_the_first_ones_wake_up)
{
    char d1[64], d2[64];
    tu_tmpdir(d1, sizeof d1, "test-journal");
    tu_tmpdir(d2, sizeof d2, "test-journal");
    journal *a = open_defer(d1, INV_FSYNC_NONE, 0), *b = open_defer(d2, INV_FSYNC_NONE, 0);
    int sub = journal_subscribe(a);
    wait_flusher_asleep(a);
    uint64_t pos[3];
    journal_defer_begin(a);
    write_records(a, 3, 16, pos);
    cr_assert_eq(stats_of(a).flusher_wakeups, 0);
    journal_defer_begin(b); /* ends a's bracket */
    cr_assert_eq(stats_of(a).flusher_wakeups, 1);
    cr_assert(durable_via(a, sub, pos[2]));
    write_records(b, 2, 16, NULL);
    journal_unsubscribe(a, sub);
    cr_assert_eq(journal_close(a), INV_OK);
    cr_assert_eq(journal_close(b), INV_OK); /* closes the bracket on b */
    replay_expect(d1, 3, pos[2] + journal_record_size(16));
    tu_remove_tree(d1);
    tu_remove_tree(d2);
}

typedef struct {
    journal *j;
    size_t n;
    uint32_t len;
    int rc;
    uint64_t last;
} defer_job;

/* Waits (bounded) until the flusher polls: it looks again by itself then,
 * and writers leave it alone. */
static void wait_flusher_polling(journal *j)
{
    for (unsigned i = 0; !stats_of(j).flusher_polling; i++) {
        cr_assert_lt(i, DEFER_WATCHDOG_S * 1000u / DEFER_POLL_MS, "the flusher never polled");
        usleep(DEFER_POLL_MS * 1000u);
    }
}

/* One record, made durable through a wait (which wakes any flusher): the
 * flusher has written records since, so a lazy one polls next. */
static uint64_t write_one_and_wait(journal *j, uint64_t tag)
{
    uint64_t p = journal_reserve(j, 8);
    cr_assert_neq(p, 0);
    cr_assert_eq(journal_publish(j, p, 16, &tag, 8), INV_OK);
    cr_assert_eq(journal_wait(j, p), INV_OK);
    return p;
}

Test(journal, writers_never_wake_a_busy_flusher_under_a_lazy_policy)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "test-journal");
    /* polls every ms, never goes idle */
    journal *j = open_lazy(dir, 1000u * 1000u, DEFER_SLEEP_NS, 0);
    int sub = journal_subscribe(j);
    cr_assert(sub >= 0);
    wait_flusher_asleep(j);
    cr_assert(!stats_of(j).flusher_polling, "a journal that wrote nothing sleeps until woken");
    write_one_and_wait(j, 1);
    wait_flusher_polling(j);
    uint64_t woken = stats_of(j).flusher_wakeups;
    cr_assert_geq(woken, 1, "the idle flusher was woken for the first record");
    uint64_t pos[50];
    journal_defer_begin(j);
    write_records(j, 50, 64, pos);
    journal_defer_end(j);
    uint64_t p = journal_reserve(j, 8), tag = 51;
    cr_assert_eq(journal_publish(j, p, 16, &tag, 8), INV_OK); /* outside a bracket */
    cr_assert_eq(stats_of(j).flusher_wakeups, woken, "a writer woke a polling flusher");
    /* the poll writes them: no wake-up, no wait */
    cr_assert(durable_via(j, sub, p), "a polling flusher never wrote the records");
    cr_assert_eq(stats_of(j).flusher_wakeups, woken);
    journal_unsubscribe(j, sub);
    cr_assert_eq(journal_close(j), INV_OK);
    tu_remove_tree(dir);
}

static void *wait_for_last(void *arg)
{
    defer_job *job = arg;
    job->rc = journal_wait(job->j, job->last);
    return NULL;
}

Test(journal, a_waiter_wakes_a_polling_flusher)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "test-journal");
    /* polls only every few hours, never goes idle: only a wake-up helps */
    journal *j = open_lazy(dir, DEFER_SLEEP_NS, DEFER_SLEEP_NS, 0);
    write_one_and_wait(j, 1);
    wait_flusher_polling(j);
    uint64_t woken = stats_of(j).flusher_wakeups;
    defer_job job = {.j = j};
    journal_defer_begin(j);
    job.last = journal_reserve(j, 8);
    uint64_t tag = 2;
    cr_assert_eq(journal_publish(j, job.last, 16, &tag, 8), INV_OK);
    journal_defer_end(j);
    cr_assert_eq(stats_of(j).flusher_wakeups, woken, "the bracket's end woke a polling flusher");
    cr_assert(journal_durable_end(j) <= job.last);
    run_watched(wait_for_last, &job, "a wait on a polling flusher");
    cr_assert_eq(job.rc, INV_OK);
    cr_assert_eq(stats_of(j).flusher_wakeups, woken + 1, "the waiter woke it once");
    cr_assert_eq(journal_close(j), INV_OK);
    replay_expect(dir, 2, job.last + journal_record_size(8));
    tu_remove_tree(dir);
}

Test(journal, an_idle_flusher_stops_polling_and_the_next_writer_wakes_it)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "test-journal");
    /* idle after 1 ms without records */
    journal *j = open_lazy(dir, 1000u * 1000u, 1000u * 1000u, 0);
    int sub = journal_subscribe(j);
    write_one_and_wait(j, 1);
    /* bounded: the flusher stops polling 1 ms after its last write */
    for (unsigned i = 0; !stats_of(j).flusher_asleep || stats_of(j).flusher_polling; i++) {
        cr_assert_lt(i, DEFER_WATCHDOG_S * 1000u / DEFER_POLL_MS, "the flusher kept polling");
        usleep(DEFER_POLL_MS * 1000u);
    }
    uint64_t woken = stats_of(j).flusher_wakeups;
    uint64_t pos[3];
    journal_defer_begin(j);
    write_records(j, 3, 16, pos);
    cr_assert_eq(stats_of(j).flusher_wakeups, woken);
    journal_defer_end(j);
    cr_assert_eq(stats_of(j).flusher_wakeups, woken + 1, "the bracket's end woke no idle flusher");
    cr_assert(durable_via(j, sub, pos[2]));
    journal_unsubscribe(j, sub);
    cr_assert_eq(journal_close(j), INV_OK);
    tu_remove_tree(dir);
}

Test(journal, a_writer_past_half_the_ring_wakes_a_polling_flusher)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "test-journal");
    size_t ring = 8u << 20; /* the smallest power of two that is allowed */
    journal *j = open_lazy(dir, DEFER_SLEEP_NS, DEFER_SLEEP_NS, ring);
    int sub = journal_subscribe(j);
    uint64_t first = write_one_and_wait(j, 1);
    wait_flusher_polling(j);
    uint64_t woken = stats_of(j).flusher_wakeups;
    /* in a bracket, without waiting: records up to the first that ends past
     * half the ring, which must wake the flusher by itself */
    static uint8_t big[4096];
    uint64_t last = 0, size = journal_record_size(sizeof big);
    journal_defer_begin(j);
    for (uint64_t end = first; end - first <= ring / 2; end = last + size) {
        last = journal_reserve(j, sizeof big);
        cr_assert_eq(journal_publish(j, last, 16, big, sizeof big), INV_OK);
    }
    cr_assert_gt(stats_of(j).flusher_wakeups, woken, "half the ring full, and no wake-up");
    cr_assert(durable_via(j, sub, last), "the flusher never wrote the filling records");
    journal_defer_end(j);
    journal_unsubscribe(j, sub);
    cr_assert_eq(journal_close(j), INV_OK);
    tu_remove_tree(dir);
}

/* In a bracket: publishes n records, then waits for the last to be
 * durable, still in the bracket (a loop that blocked on durability). */
static void *defer_write_and_wait(void *arg)
{
    defer_job *job = arg;
    uint8_t *buf = calloc(1, job->len);
    journal_defer_begin(job->j);
    job->rc = INV_OK;
    for (size_t i = 0; i < job->n && job->rc == INV_OK; i++) {
        uint64_t tag = i + 1;
        memcpy(buf, &tag, sizeof tag);
        job->last = journal_reserve(job->j, job->len);
        job->rc = job->last ? journal_publish(job->j, job->last, 17, buf, job->len) : INV_EIO;
    }
    if (job->rc == INV_OK)
        job->rc = journal_wait(job->j, job->last);
    journal_defer_end(job->j);
    free(buf);
    return NULL;
}

Test(journal, a_deferring_writer_waiting_for_durability_under_always_does_not_deadlock)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "test-journal");
    journal *j = open_defer(dir, INV_FSYNC_ALWAYS, 0);
    wait_flusher_asleep(j);
    defer_job job = {.j = j, .n = 20, .len = 40};
    run_watched(defer_write_and_wait, &job, "journal_wait in a bracket");
    cr_assert_eq(job.rc, INV_OK);
    cr_assert(journal_durable_end(j) > job.last);
    cr_assert_eq(journal_close(j), INV_OK);
    replay_expect(dir, 20, job.last + journal_record_size(40));
    tu_remove_tree(dir);
}

Test(journal, a_deferring_writer_that_fills_the_ring_wakes_the_flusher)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "test-journal");
    size_t ring = 8u << 20; /* the smallest power of two that is allowed */
    journal *j = open_defer(dir, INV_FSYNC_NONE, ring);
    wait_flusher_asleep(j);
    /* three times the ring in big records: the writer waits for space */
    defer_job job = {.j = j, .n = 3 * ring / JOURNAL_PAYLOAD_MAX, .len = JOURNAL_PAYLOAD_MAX};
    run_watched(defer_write_and_wait, &job, "ring full in a bracket");
    cr_assert_eq(job.rc, INV_OK);
    cr_assert(stats_of(j).flusher_wakeups >= 1);
    cr_assert_eq(journal_close(j), INV_OK);
    replay_expect(dir, job.n, job.last + journal_record_size(JOURNAL_PAYLOAD_MAX));
    tu_remove_tree(dir);
}

/* The held-lock case: a deferring thread owes a wake-up while it blocks on
 * a mutex that a durability waiter holds; the waiter needs that thread's
 * record durable. The waiter must wake the flusher for it. */
typedef struct {
    journal *j;
    pthread_mutex_t lock;
    _Atomic int stage; /* 1: the deferring thread published, 2: it locks */
    uint64_t pos;
} owed_case;

static void *owed_blocker(void *arg)
{
    owed_case *oc = arg;
    uint64_t tag = 1;
    journal_defer_begin(oc->j);
    oc->pos = journal_reserve(oc->j, 8);
    cr_assert_eq(journal_publish(oc->j, oc->pos, 16, &tag, 8), INV_OK);
    /* release: pos is read by the waiter after it acquires stage. */
    atomic_store_explicit(&oc->stage, 1, memory_order_release);
    pthread_mutex_lock(&oc->lock); /* held by the waiter: blocks, owing */
    pthread_mutex_unlock(&oc->lock);
    journal_defer_end(oc->j);
    return NULL;
}

static void *owed_waiter(void *arg)
{
    owed_case *oc = arg;
    pthread_mutex_lock(&oc->lock);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, owed_blocker, oc), 0);
    /* acquire: pairs with the blocker's release; a bounded wait. */
    for (unsigned i = 0; atomic_load_explicit(&oc->stage, memory_order_acquire) != 1; i++) {
        cr_assert_lt(i, DEFER_WATCHDOG_S * 1000u, "the blocker never published");
        usleep(1000);
    }
    cr_assert_eq(journal_wait(oc->j, oc->pos), INV_OK);
    pthread_mutex_unlock(&oc->lock);
    pthread_join(th, NULL);
    return NULL;
}

Test(journal, a_waiter_wakes_the_flusher_for_a_record_a_blocked_deferrer_owes)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "test-journal");
    owed_case oc = {.j = open_defer(dir, INV_FSYNC_ALWAYS, 0)};
    pthread_mutex_init(&oc.lock, NULL);
    wait_flusher_asleep(oc.j);
    run_watched(owed_waiter, &oc, "waiter behind a deferring thread");
    cr_assert(journal_durable_end(oc.j) > oc.pos);
    cr_assert_eq(journal_close(oc.j), INV_OK);
    pthread_mutex_destroy(&oc.lock);
    replay_expect(dir, 1, oc.pos + journal_record_size(8));
    tu_remove_tree(dir);
}

/* Replays dir whole: it must open and deliver n records. */
static void assert_replays(const char *dir, size_t n)
{
    collected c;
    uint64_t end;
    char err[512] = "";
    cr_assert_eq(replay_into(dir, 0, false, &c, &end, err, sizeof err), INV_OK, "%s", err);
    cr_assert_eq(c.n, n, "replayed %zu records, want %zu", c.n, n);
    collected_free(&c);
}

/* ---- power loss inside the last unsynced write (issue 17, #4) ------------- */

/* Longest a test waits for the flusher (a hang is a failure, not a timing
 * assumption). */
#define FLUSH_WAIT_MS 20000

#define PAGE_BYTES 4096
#define SYNCED_RECORDS 40u
#define UNSYNCED_RECORDS 120u
#define TORN_RECORD_LEN 100u

typedef struct {
    char dir[64], copy_dir[96], copy_seg[400];
    uint64_t synced_end; /* every record below it was fdatasynced */
    uint64_t pos[SYNCED_RECORDS + UNSYNCED_RECORDS];
} torn_state;

/* Writes SYNCED_RECORDS records and closes (all synced), reopens with an
 * fsync interval far longer than the test and writes UNSYNCED_RECORDS
 * more, which reach the file (the page cache) but no fdatasync, and copies
 * the segment as a power loss would find it if every page had reached the
 * disk (the caller then loses some). */
static void torn_setup(torn_state *t)
{
    tu_tmpdir(t->dir, sizeof t->dir, "test-journal");
    journal *j = open_j(t->dir, INV_FSYNC_ALWAYS, 0);
    write_records(j, SYNCED_RECORDS, TORN_RECORD_LEN, t->pos);
    cr_assert_eq(journal_close(j), INV_OK);
    collected c;
    cr_assert_eq(replay_into(t->dir, 0, false, &c, &t->synced_end, NULL, 0), INV_OK);
    collected_free(&c);
    journal_config cfg = {.dir = t->dir,
                          .policy = INV_FSYNC_INTERVAL,
                          .fsync_interval_ms = JOURNAL_FSYNC_INTERVAL_MS_MAX,
                          .start_position = t->synced_end};
    cr_assert_eq(journal_open(&j, &cfg, NULL, 0), INV_OK);
    write_records(j, UNSYNCED_RECORDS, TORN_RECORD_LEN, &t->pos[SYNCED_RECORDS]);
    uint64_t last_end =
        t->pos[SYNCED_RECORDS + UNSYNCED_RECORDS - 1] + journal_record_size(TORN_RECORD_LEN);
    journal_stats st;
    for (int i = 0; i < FLUSH_WAIT_MS; i++) {
        journal_stats_get(j, &st);
        if (st.written_end >= last_end)
            break;
        struct timespec ms = {0, 1000000L};
        nanosleep(&ms, NULL);
    }
    cr_assert_geq(st.written_end, last_end, "the records never reached the file");
    cr_assert_eq(st.fsyncs, 0, "a sync covered them");
    char seg[400];
    last_segment(t->dir, seg, sizeof seg);
    snprintf(t->copy_dir, sizeof t->copy_dir, "%s/lost", t->dir);
    cr_assert_eq(mkdir(t->copy_dir, 0755), 0);
    snprintf(t->copy_seg, sizeof t->copy_seg, "%s/%s", t->copy_dir, strrchr(seg, '/') + 1);
    tu_copy_file(seg, t->copy_seg); /* the disk at the power loss */
    cr_assert_eq(journal_close(j), INV_OK);
}

/* Zeroes [off, off + len) of path (a page the device never wrote). */
static void lose_bytes(const char *path, off_t off, size_t len)
{
    int fd = open(path, O_WRONLY);
    cr_assert_geq(fd, 0);
    uint8_t zero[PAGE_BYTES] = {0};
    cr_assert_leq(len, sizeof zero);
    cr_assert_eq(pwrite(fd, zero, len, off), (ssize_t)len);
    close(fd);
}

static off_t file_off(uint64_t pos)
{
    return (off_t)(JOURNAL_SEGMENT_HEADER + (pos - JOURNAL_POSITION_FIRST));
}

/* The first record (index) that overlaps [off, off + len). */
static size_t first_record_in(const torn_state *t, off_t off)
{
    size_t i = 0;
    while (file_off(t->pos[i]) + (off_t)journal_record_size(TORN_RECORD_LEN) <= off)
        i++;
    return i;
}

/* The power-loss model refused 13 of 913 trials this way: an
 * earlier page of the last unsynced write was lost, a later one reached
 * the disk. Nothing in it was acknowledged: cut at the hole and open. */
Test(journal, a_hole_inside_the_last_unsynced_write_is_a_torn_tail_cut_there)
{
    torn_state t;
    torn_setup(&t);
    /* lose the second page the unsynced write touched; later pages stay */
    off_t unsynced_off = file_off(t.synced_end);
    off_t page = (unsynced_off / PAGE_BYTES + 2) * PAGE_BYTES;
    uint64_t last = t.pos[SYNCED_RECORDS + UNSYNCED_RECORDS - 1];
    cr_assert_lt(page + PAGE_BYTES, file_off(last), "valid records follow the hole");
    lose_bytes(t.copy_seg, page, PAGE_BYTES);
    size_t cut = first_record_in(&t, page);
    cr_assert_gt(cut, SYNCED_RECORDS);
    collected c;
    uint64_t end;
    char err[512] = "";
    int rc = replay_into(t.copy_dir, 0, false, &c, &end, err, sizeof err);
    cr_assert_eq(rc, INV_OK, "refused a torn tail: %s", err);
    cr_assert_eq(c.n, cut, "records kept: %zu, want %zu", c.n, cut);
    for (size_t i = 0; i < cut; i++)
        cr_assert_eq(c.pos[i], t.pos[i]);
    cr_assert_eq(file_size(t.copy_seg), file_off(t.pos[cut]), "cut at the hole");
    assert_resumes_past(end, t.pos[cut]);
    collected_free(&c);
    /* and the journal goes on there */
    journal *j = open_j(t.copy_dir, INV_FSYNC_ALWAYS, end);
    uint64_t p;
    write_records(j, 1, 40, &p);
    cr_assert_eq(p, end);
    cr_assert_eq(journal_close(j), INV_OK);
    cr_assert_eq(replay_into(t.copy_dir, 0, false, &c, &end, err, sizeof err), INV_OK, "%s", err);
    cr_assert_eq(c.n, cut + 1);
    collected_free(&c);
    tu_remove_tree(t.dir);
}

/* The same damage where a completed fdatasync covered it is no torn
 * write: the records after it name a synced end past it. */
Test(journal, a_bad_record_in_the_synced_region_is_still_refused)
{
    torn_state t;
    torn_setup(&t);
    size_t victim = SYNCED_RECORDS / 2;
    lose_bytes(t.copy_seg, file_off(t.pos[victim]) + JOURNAL_RECORD_HEADER, 8);
    collected c;
    uint64_t end;
    char err[512] = "";
    cr_assert_eq(replay_into(t.copy_dir, 0, false, &c, &end, err, sizeof err), INV_EINVALID);
    cr_assert(strstr(err, t.copy_seg) != NULL, "the message names the file: %s", err);
    cr_assert(strstr(err, "synced end") != NULL, "%s", err);
    collected_free(&c);
    tu_remove_tree(t.dir);
}

/* A frame that decodes inside a bad segment header (the fuzzer found a
 * zero-length one at byte 24) has no position: the search for valid
 * records after the bad header starts where records can start. Before, it
 * asked for the synced end of a record "at position 0" and aborted. */
Test(journal, a_frame_inside_a_bad_header_is_not_taken_for_a_record)
{
    char dir[64], seg[400];
    uint64_t pos[3];
    closed_journal(dir, sizeof dir, INV_FSYNC_ALWAYS, 3, 40, pos);
    last_segment(dir, seg, sizeof seg);
    uint8_t frame[JOURNAL_RECORD_OVERHEAD];
    journal_frame_encode(frame, JOURNAL_TYPE_USER_MIN, NULL, 0);
    cr_assert_eq(journal_record_size(0), sizeof frame);
    int fd = open(seg, O_WRONLY);
    cr_assert_geq(fd, 0);
    /* at byte 24: its position would be the segment's first minus 8, 0 */
    cr_assert_eq(pwrite(fd, frame, sizeof frame, JOURNAL_SEGMENT_HEADER - 8),
                 (ssize_t)sizeof frame);
    close(fd);
    collected c;
    uint64_t end;
    char err[512] = "";
    int rc = replay_into(dir, 0, false, &c, &end, err, sizeof err);
    cr_assert_eq(rc, INV_EINVALID, "a bad header with valid records after it: rc %d: %s", rc, err);
    cr_assert(strstr(err, seg) != NULL, "the message names the file: %s", err);
    collected_free(&c);
    tu_remove_tree(dir);
}

/* A segment named at a position no journal reaches (past
 * JOURNAL_POSITION_MAX) is not ours: replay passes it by. Before, its
 * records' positions wrapped past 2^64 and replay aborted on an assertion
 * (the fuzzer named one 0xffffffffffffffff). */
Test(journal, a_segment_named_past_the_largest_position_is_passed_by)
{
    char dir[64], seg[400], moved[600];
    uint64_t pos[3];
    closed_journal(dir, sizeof dir, INV_FSYNC_ALWAYS, 3, 40, pos);
    last_segment(dir, seg, sizeof seg);
    snprintf(moved, sizeof moved, "%s/fffffffffffffff8%s", dir, JOURNAL_SEGMENT_SUFFIX);
    cr_assert_eq(rename(seg, moved), 0);
    collected c;
    uint64_t end;
    char err[512] = "";
    int rc = replay_into(dir, 0, false, &c, &end, err, sizeof err);
    cr_assert_eq(rc, INV_OK, "rc %d: %s", rc, err);
    cr_assert_eq(c.n, 0, "records of a file that is not a segment");
    collected_free(&c);
    cr_assert_eq(access(moved, F_OK), 0, "a foreign file is left alone");
    tu_remove_tree(dir);
}

/* ---- positions never repeat across a crash (issue 17, #12) ---------------- */

#define CRASH_PUBLISHED 10u
#define CRASH_UNPUBLISHED 10u

/* Child: reserves positions, publishes some, leaves the rest in flight,
 * reports the largest one handed out and dies by SIGKILL. */
static void crash_child(const char *dir, int report_fd)
{
    uint64_t start;
    if (journal_replay(dir, 0, false, NULL, NULL, &start, NULL, 0) != INV_OK)
        _exit(1);
    journal_config cfg = {.dir = dir, .policy = INV_FSYNC_ALWAYS, .start_position = start};
    journal *j;
    if (journal_open(&j, &cfg, NULL, 0) != INV_OK)
        _exit(2);
    uint8_t buf[64] = {1};
    uint64_t max = 0;
    for (unsigned i = 0; i < 5; i++) { /* durable ones */
        uint64_t p = journal_reserve(j, sizeof buf);
        if (p == 0 || journal_publish(j, p, 16, buf, sizeof buf) != INV_OK ||
            journal_wait(j, p) != INV_OK)
            _exit(3);
        max = p;
    }
    for (unsigned i = 0; i < CRASH_PUBLISHED + CRASH_UNPUBLISHED; i++) {
        uint64_t p = journal_reserve(j, sizeof buf);
        if (p == 0)
            _exit(4);
        if (i < CRASH_PUBLISHED && journal_publish(j, p, 16, buf, sizeof buf) != INV_OK)
            _exit(5);
        max = p; /* handed out: a revision someone may have read */
    }
    if (write(report_fd, &max, sizeof max) != (ssize_t)sizeof max)
        _exit(6);
    kill(getpid(), SIGKILL);
    _exit(7);
}

Test(journal, positions_handed_out_before_a_crash_are_never_handed_out_again)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "test-journal");
    for (unsigned round = 0; round < 3; round++) {
        int fds[2];
        cr_assert_eq(pipe(fds), 0);
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            close(fds[0]);
            crash_child(dir, fds[1]);
        }
        close(fds[1]);
        uint64_t max = 0;
        cr_assert_eq(read(fds[0], &max, sizeof max), (ssize_t)sizeof max, "the child failed");
        close(fds[0]);
        int status;
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        collected c;
        uint64_t end;
        char err[512] = "";
        cr_assert_eq(replay_into(dir, 0, false, &c, &end, err, sizeof err), INV_OK, "%s", err);
        collected_free(&c);
        journal *j = open_j(dir, INV_FSYNC_ALWAYS, end);
        uint64_t p = journal_reserve(j, 64);
        cr_assert_gt(p, max, "round %u: position %llu handed out again (before: up to %llu)", round,
                     (unsigned long long)p, (unsigned long long)max);
        cr_assert_eq(journal_abandon(j, p, 64), INV_OK);
        cr_assert_eq(journal_close(j), INV_OK);
        /* what replay reads after the bridge is whole and in order */
        cr_assert_eq(replay_into(dir, 0, false, &c, &end, err, sizeof err), INV_OK, "%s", err);
        for (size_t i = 1; i < c.n; i++)
            cr_assert_gt(c.pos[i], c.pos[i - 1]);
        collected_free(&c);
    }
    tu_remove_tree(dir);
}

/* The smallest ring a journal takes (JOURNAL_RING_RECORDS_MIN records of
 * JOURNAL_RECORD_MAX, rounded up to a power of two). */
#define SMALL_RING_BYTES (8u << 20)
_Static_assert(SMALL_RING_BYTES >= JOURNAL_RING_RECORDS_MIN * JOURNAL_RECORD_MAX,
               "a ring the journal accepts");

/* A writer that outruns the durable mark waits for the flusher to move it
 * (and sync it at once, whatever the interval) instead of handing out a
 * position no crash would remember. */
Test(journal, reservations_past_the_mark_wait_for_it_to_move)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "test-journal");
    journal_config cfg = {.dir = dir,
                          .policy = INV_FSYNC_INTERVAL,
                          .fsync_interval_ms = JOURNAL_FSYNC_INTERVAL_MS_MAX,
                          .ring_bytes = SMALL_RING_BYTES};
    journal *j;
    cr_assert_eq(journal_open(&j, &cfg, NULL, 0), INV_OK);
    static uint8_t big[JOURNAL_PAYLOAD_MAX];
    /* three times past the mark open sets (ring + ahead) */
    enum { N = 3 * (SMALL_RING_BYTES + JOURNAL_RESERVE_AHEAD_BYTES) / JOURNAL_PAYLOAD_MAX };
    uint64_t prev = 0;
    for (unsigned i = 0; i < N; i++) {
        uint64_t p = journal_reserve(j, sizeof big);
        cr_assert_gt(p, prev);
        cr_assert_eq(journal_publish(j, p, 16, big, sizeof big), INV_OK);
        prev = p;
    }
    journal_stats st;
    journal_stats_get(j, &st);
    cr_assert_geq(st.fsyncs, 1, "the mark moved without a sync");
    cr_assert_eq(journal_close(j), INV_OK);
    assert_replays(dir, N);
    tu_remove_tree(dir);
}

/* ---- counters (issue 17, #13) ---------------------------------------------- */

/* Once journal_wait returned for the last record, the counters count every
 * record exactly: records (what replay delivers), PADs apart, and bytes. */
Test(journal, counters_are_exact_once_records_are_durable)
{
    char dir[64];
    tu_tmpdir(dir, sizeof dir, "test-journal");
    journal *j = open_j(dir, INV_FSYNC_NONE, 0);
    enum { N = 300 };
    uint8_t buf[64] = {7};
    uint64_t bytes = 0, records = 0, pads = 0, last = 0;
    for (unsigned i = 0; i < N; i++) {
        uint32_t len = 8 + (i % 7) * 8;
        uint64_t p = journal_reserve(j, len);
        cr_assert_neq(p, 0);
        if (i % 5 == 4) {
            cr_assert_eq(journal_abandon(j, p, len), INV_OK);
            pads++;
        } else {
            cr_assert_eq(journal_publish(j, p, 16, buf, len), INV_OK);
            records++;
        }
        bytes += journal_record_size(len);
        last = p;
    }
    cr_assert_eq(journal_wait(j, last), INV_OK);
    journal_stats st;
    journal_stats_get(j, &st);
    cr_assert_eq(st.records, records, "records %llu, want %llu", (unsigned long long)st.records,
                 (unsigned long long)records);
    cr_assert_eq(st.pad_records, pads);
    cr_assert_eq(st.bytes, bytes);
    cr_assert_eq(journal_close(j), INV_OK);
    assert_replays(dir, records);
    tu_remove_tree(dir);
}

/* ---- read errors (issue 17, #7) ------------------------------------------- */

/* A segment of this many 1 MiB records spans several read buffers. */
#define READ_ERR_RECORDS 10u

/* A fresh dir with one segment of READ_ERR_RECORDS records of 1 MiB;
 * seg gets its path. */
static void big_segment(char *dir, size_t dir_cap, char *seg, size_t seg_cap)
{
    tu_tmpdir(dir, dir_cap, "test-journal");
    journal *j = open_j(dir, INV_FSYNC_NONE, 0);
    static uint8_t big[JOURNAL_PAYLOAD_MAX];
    for (unsigned i = 0; i < READ_ERR_RECORDS; i++) {
        memset(big, (int)i + 1, sizeof big);
        uint64_t p = journal_reserve(j, sizeof big);
        cr_assert_neq(p, 0);
        cr_assert_eq(journal_publish(j, p, 16, big, sizeof big), INV_OK);
    }
    cr_assert_eq(journal_close(j), INV_OK);
    last_segment(dir, seg, seg_cap);
}

/* A media error while replaying is INV_EIO naming the file and offset
 * (through the mapping it was a SIGBUS), for the first read and later
 * ones; the journal replays whole once the device reads again. */
Test(journal, a_read_error_while_replaying_is_eio_with_file_and_offset)
{
    char dir[64], seg[400];
    big_segment(dir, sizeof dir, seg, sizeof seg);
    for (uint64_t nth = 1; nth <= 3; nth++) {
        fault_reset();
        fault_fail(FAULT_REPLAY_READ, nth, 1, EIO);
        collected c;
        uint64_t end;
        char err[512] = "";
        int rc = replay_into(dir, 0, false, &c, &end, err, sizeof err);
        uint64_t failed = fault_failures(FAULT_REPLAY_READ);
        fault_reset();
        collected_free(&c);
        cr_assert_eq(failed, 1, "read %llu never happened", (unsigned long long)nth);
        cr_assert_eq(rc, INV_EIO, "read %llu: rc %d: %s", (unsigned long long)nth, rc, err);
        cr_assert(strstr(err, seg) != NULL, "names the file: %s", err);
        cr_assert(strstr(err, "byte offset") != NULL, "names the offset: %s", err);
        cr_assert_eq(file_size(seg),
                     (off_t)(JOURNAL_SEGMENT_HEADER +
                             READ_ERR_RECORDS * journal_record_size(JOURNAL_PAYLOAD_MAX)),
                     "a read error cuts nothing");
    }
    assert_replays(dir, READ_ERR_RECORDS);
    tu_remove_tree(dir);
}

/* Truncates the segment (path in ctx) on the second read: the file shrinks
 * under the reader, as another process or a failing device might do. */
static int shrink_on_read(void *ctx, fault_site site, uint64_t call, uint64_t arg, uint64_t arg2)
{
    if (call == 2)
        cr_assert_eq(truncate((const char *)ctx, JOURNAL_SEGMENT_HEADER + 3000), 0);
    return 0;
}

/* A file cut short under the reader ends earlier (a torn tail there), it
 * never crashes the reader: the bytes are read, not mapped. */
Test(journal, a_segment_truncated_under_the_reader_does_not_crash)
{
    char dir[64], seg[400];
    big_segment(dir, sizeof dir, seg, sizeof seg);
    fault_reset();
    fault_hook(FAULT_REPLAY_READ, shrink_on_read, seg);
    collected c;
    uint64_t end;
    char err[512] = "";
    int rc = replay_into(dir, 0, false, &c, &end, err, sizeof err);
    fault_reset();
    cr_assert_eq(rc, INV_OK, "%s", err);
    cr_assert_lt(c.n, READ_ERR_RECORDS, "it read the records the file no longer has");
    for (size_t i = 0; i < c.n; i++)
        cr_assert_eq(c.len[i], JOURNAL_PAYLOAD_MAX);
    collected_free(&c);
    tu_remove_tree(dir);
}

/* Opening past the records (a crash's reserved-ahead positions) writes a
 * PAD bridge and a header: a failed write or sync there is a typed error
 * that leaves the records whole, and the next open bridges. */
Test(journal, a_failed_bridge_at_open_is_eio_and_the_next_open_bridges)
{
    char dir[64];
    uint64_t pos[3];
    closed_journal(dir, sizeof dir, INV_FSYNC_ALWAYS, 3, 40, pos);
    journal *j;
    uint64_t start = pos[2] + journal_record_size(40) + 3 * JOURNAL_RECORD_MAX;
    const fault_site sites[] = {FAULT_JOURNAL_WRITE, FAULT_JOURNAL_SYNC, FAULT_JOURNAL_SEG_OPEN};
    for (size_t s = 0; s < sizeof sites / sizeof sites[0]; s++)
        for (uint64_t nth = 1; nth <= 3; nth++) {
            fault_reset();
            fault_fail(sites[s], nth, 1, s == 0 ? ENOSPC : EIO);
            journal_config cfg = {.dir = dir, .policy = INV_FSYNC_ALWAYS, .start_position = start};
            char err[256] = "";
            int rc = journal_open(&j, &cfg, err, sizeof err);
            bool failed = fault_failures(sites[s]) > 0;
            fault_reset();
            if (rc == INV_OK) {
                cr_assert(!failed, "%s call %llu failed, yet the open succeeded",
                          fault_site_name(sites[s]), (unsigned long long)nth);
                cr_assert_eq(journal_close(j), INV_OK);
                continue;
            }
            cr_assert_eq(rc, INV_EIO, "%s call %llu: rc %d: %s", fault_site_name(sites[s]),
                         (unsigned long long)nth, rc, err);
            assert_replays(dir, 3);
        }
    j = open_j(dir, INV_FSYNC_ALWAYS, start);
    uint64_t p;
    write_records(j, 1, 40, &p);
    cr_assert_eq(p, start);
    cr_assert_eq(journal_close(j), INV_OK);
    assert_replays(dir, 4);
    tu_remove_tree(dir);
}
