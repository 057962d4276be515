/*
 * repl.c — invcored's cluster mode: follow the log as a standby, take over
 * when elected, ship the journal as the leader (repl.h has the contract,
 * docs/REPLICATION.md the design).
 *
 * Invariants:
 *  - A standby applies entries in log order, each whole, with the server's
 *    loops paused; its engine's position is the end of the last entry it
 *    applied.
 *  - It promotes only as the elected leader of term T and only once it
 *    applied the log up to the head it read after winning (no other node
 *    can append then: the appends are fenced on the leader key, which is
 *    T's).
 *  - As the leader it ships the journal's bytes in order as entries of
 *    whole records, one append in flight, and acknowledges (inv_repl_acked)
 *    only what etcd committed. Any doubt about its leadership (the lease
 *    ran out, an append fenced out) ends the process image: it restarts as
 *    a standby, never acknowledging again in that term.
 */
#include "server/repl.h"

#include "alloc.h"
#include "clock.h"
#include "journal.h"
#include "recovery.h"
#include "server/etcd.h"
#include "server/repl_log.h"

#include <hiredis/hiredis.h>

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct repl {
    repl_config cfg;
    inv_engine *e;
    repl_elect *el;
    etcd_client *etcd; /* the thread's own: the head and the appends */
    repl_log_reader *rd;
    uint32_t etcd_timeout_ms;
    pthread_t th;
    bool started;
    _Atomic bool stop;
    /* Published by the thread (release), read anywhere (acquire). */
    _Atomic bool writable, caught_up;
    _Atomic uint64_t term, applied, replicated;
    /* The ship queue: stream bytes the journal wrote, not yet committed
     * in etcd. q[q_head .. q_head + q_len) holds positions [q_first, ...). */
    pthread_mutex_t q_lock;
    pthread_cond_t q_data, q_space;
    uint8_t *q;
    size_t q_head, q_len;
    uint64_t q_first;
    uint8_t *send; /* one entry's payload */
    /* The thread's own. */
    uint32_t lease_ttl_ms;
    int64_t progress_lease; /* a standby's progress key's lease (0: none) */
    int64_t progress_due_ms, compact_due_ms;
    uint64_t compacted_snapshot; /* the snapshot the log was compacted to */
    int64_t refusal_logged_ms; /* the last refused copy's log line (0: none) */
};

static bool stopping(repl *r)
{
    /* acquire: pairs with repl_stop's release. */
    return atomic_load_explicit(&r->stop, memory_order_acquire);
}

/* ---- the data directory ------------------------------------------------------ */

bool repl_path(char *out, size_t cap, const char *dir, const char *name)
{
    assert(out != NULL && cap > 0);
    assert(dir != NULL && name != NULL);
    int n = snprintf(out, cap, "%s/%s", dir, name);
    return n >= 0 && (size_t)n < cap;
}

/* Creates REPL_LED_FILE durably (the file and its directory entry); -1
 * with errno (ENAMETOOLONG: the path does not fit). */
static int mark_led(const char *dir)
{
    assert(dir != NULL);
    char path[REPL_PATH_MAX];
    if (!repl_path(path, sizeof path, dir, REPL_LED_FILE)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -1;
    rc |= fsync(dfd);
    close(dfd);
    return rc;
}

/* Deletes dir's regular files but RECOVERY_LOCK_FILE, keep (may be NULL) and the
 * marker, then the marker: a crash midway leaves the marker, and the next
 * start empties again. */
static int empty_dir(const char *dir, const char *keep, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "cannot read %s: %s", dir, strerror(errno));
        return -1;
    }
    int dfd = dirfd(d), rc = 0;
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
        struct stat st;
        if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode) ||
            strcmp(de->d_name, RECOVERY_LOCK_FILE) == 0 || strcmp(de->d_name, REPL_LED_FILE) == 0 ||
            (keep && strcmp(de->d_name, keep) == 0))
            continue;
        if (unlinkat(dfd, de->d_name, 0) != 0) {
            snprintf(err, errlen, "cannot delete %s/%s: %s", dir, de->d_name, strerror(errno));
            rc = -1;
        }
    }
    if (rc == 0 && fsync(dfd) == 0 && (unlinkat(dfd, REPL_LED_FILE, 0) == 0 || errno == ENOENT) &&
        fsync(dfd) == 0) {
        closedir(d);
        return 0;
    }
    if (rc == 0)
        snprintf(err, errlen, "cannot empty %s: %s", dir, strerror(errno));
    closedir(d);
    return -1;
}

int repl_prepare_dir(const char *data_dir, char *err, size_t errlen)
{
    assert(data_dir != NULL && err != NULL);
    char path[REPL_PATH_MAX];
    if (!repl_path(path, sizeof path, data_dir, REPL_LED_FILE)) {
        snprintf(err, errlen, "data dir path too long: %s", data_dir);
        return -1;
    }
    if (access(path, F_OK) != 0)
        return 0; /* never led (or a fresh directory): resume where it is */
    /* Only with the directory's lock: never empty another engine's. */
    char lock[REPL_PATH_MAX];
    if (!repl_path(lock, sizeof lock, data_dir, RECOVERY_LOCK_FILE)) {
        snprintf(err, errlen, "data dir path too long: %s", data_dir);
        return -1;
    }
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, errlen, "data directory %s is in use", data_dir);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    fprintf(stderr,
            "invcored: %s led a cluster: its unreplicated records are discarded, the log is "
            "copied again\n",
            data_dir);
    int rc = empty_dir(data_dir, NULL, err, errlen);
    close(fd);
    return rc;
}

/* Ends this process image and starts the same command line again, as a
 * standby. A leader's data directory is marked (REPL_LED_FILE) since its
 * promotion, so the new image empties it first: what this node wrote but
 * etcd never committed must go. */
static void restart_as_standby(repl *r, const char *why)
{
    /* release: no write is admitted from here on (repl_writable). */
    atomic_store_explicit(&r->writable, false, memory_order_release);
    fprintf(stderr, "invcored: %s; restarting as a standby\n", why);
    fflush(stderr);
    execv("/proc/self/exe", r->cfg.argv);
    fprintf(stderr, "invcored: cannot restart: %s\n", strerror(errno));
    _exit(70); /* a supervisor restarts it */
}

/* ---- the standby ----------------------------------------------------------------- */

static void apply_entry(repl *r, const repl_log_entry *ent)
{
    /* the first entry may hold records this copy has (a snapshot's or a
     * restart's position inside it): inv_repl_apply skips them */
    assert(ent->end > ent->first && ent->first <= inv_repl_position(r->e));
    r->cfg.pause(r->cfg.pause_arg);
    int rc = inv_repl_apply(r->e, ent->first, ent->payload, (size_t)(ent->end - ent->first));
    r->cfg.resume(r->cfg.pause_arg);
    if (rc != INV_OK) {
        char why[128];
        snprintf(why, sizeof why, "cannot apply the log entry at %" PRIu64 ": %s", ent->first,
                 inv_strerror(rc));
        (void)mark_led(r->cfg.data_dir); /* its journal may hold part of it: copy again */
        restart_as_standby(r, why);
    }
    /* release: readers of the position see the applied state. */
    atomic_store_explicit(&r->applied, ent->end, memory_order_release);
    atomic_store_explicit(&r->replicated, ent->end, memory_order_release);
    assert(inv_repl_position(r->e) == ent->end);
}

/* Reads the head: *end the log's end (the applied position when the log
 * is empty). -1 when etcd did not answer. */
static int read_head(repl *r, uint64_t *end)
{
    char err[REPL_LOG_ERROR_MAX];
    int rc = repl_log_head(r->etcd, r->cfg.cluster, end, NULL, NULL, err, sizeof err);
    if (rc == INV_ENOTFOUND) {
        *end = inv_repl_position(r->e);
        return 0;
    }
    return rc == INV_OK ? 0 : -1;
}

/* may_campaign: only a standby that applied the whole log. */
static bool may_campaign(void *arg)
{
    repl *r = arg;
    /* acquire: pairs with the follower's release. */
    return atomic_load_explicit(&r->caught_up, memory_order_acquire);
}

static void note_caught_up(repl *r)
{
    uint64_t end;
    if (read_head(r, &end) == 0)
        /* release: pairs with may_campaign's acquire. */
        atomic_store_explicit(&r->caught_up, inv_repl_position(r->e) >= end, memory_order_release);
}

/* Opens the reader at the entry holding this copy's position (a snapshot
 * or a torn restart may have left it inside one; apply skips what it
 * has), or at the position itself when no entry starts at or below it. */
static void start_following(repl *r)
{
    char err[REPL_LOG_ERROR_MAX];
    uint64_t pos = inv_repl_position(r->e), from = pos;
    while (!stopping(r)) {
        int rc = repl_log_entry_holding(r->etcd, r->cfg.cluster, pos, &from, err, sizeof err);
        if (rc == INV_OK || rc == INV_ENOTFOUND) {
            from = rc == INV_OK ? from : pos;
            break;
        }
        clock_sleep_ms(REPL_RETRY_MS); /* etcd did not answer */
    }
    r->rd = repl_log_follow(r->cfg.etcd, r->etcd_timeout_ms, r->cfg.cluster, from, err, sizeof err);
    if (!r->rd && !stopping(r))
        restart_as_standby(r, err);
}

/* A standby's applied position, under its own lease, every
 * REPL_PROGRESS_MS: the leader compacts nothing a live standby needs. */
static void publish_progress(repl *r)
{
    int64_t now = clock_mono_ms();
    if (now < r->progress_due_ms)
        return;
    r->progress_due_ms = now + REPL_PROGRESS_MS;
    int64_t left = 0, granted;
    if (r->progress_lease == 0 ||
        etcd_lease_keepalive(r->etcd, r->progress_lease, &left) != INV_OK || left <= 0) {
        int64_t ttl_s = ((int64_t)r->lease_ttl_ms * REPL_PROGRESS_TTL_FACTOR + 999) / 1000;
        if (etcd_lease_grant(r->etcd, ttl_s, &r->progress_lease, &granted) != INV_OK) {
            r->progress_lease = 0;
            return; /* next time */
        }
    }
    char key[REPL_CLUSTER_MAX + REPL_ADDR_MAX + 16], val[24];
    int klen = snprintf(key, sizeof key, "/%s/standby/%s", r->cfg.cluster, r->cfg.advertise);
    int vlen = snprintf(val, sizeof val, "%" PRIu64, inv_repl_position(r->e));
    assert(klen > 0 && (size_t)klen < sizeof key && vlen > 0);
    (void)etcd_put(r->etcd, key, (size_t)klen, val, (size_t)vlen, r->progress_lease, NULL);
}

/* ---- a snapshot from the leader ---------------------------------------------- */

bool repl_snapshot_name(const char *name, size_t len, uint64_t *pos)
{
    static const char suffix[] = ".snap";
    _Static_assert(16 + sizeof suffix - 1 == REPL_SNAPSHOT_NAME_LEN, "the name's length");
    assert(name != NULL && pos != NULL);
    if (len != REPL_SNAPSHOT_NAME_LEN || memcmp(name + 16, suffix, sizeof suffix - 1) != 0)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < 16; i++) {
        char ch = name[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
            return false;
        v = v << 4 | (uint64_t)(ch <= '9' ? ch - '0' : ch - 'a' + 10);
    }
    *pos = v;
    return true;
}

bool repl_split_addr(const char *addr, char *host, size_t cap, const char **port)
{
    assert(addr != NULL && host != NULL && port != NULL);
    assert(cap > 0);
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || colon[1] == '\0')
        return false;
    const char *h = addr;
    size_t len = (size_t)(colon - addr);
    if (h[0] == '[' && len >= 2 && h[len - 1] == ']')
        h++, len -= 2; /* [v6]:port */
    if (len >= cap)
        return false;
    memcpy(host, h, len);
    host[len] = '\0';
    *port = colon + 1;
    return true;
}

/* Copies the leader's latest snapshot (at host:port) into dir/part:
 * its name in name (cap >= 22), or -1. Every length it is told is checked
 * against what it asked for. */
static int copy_snapshot(repl *r, const char *host, int port, const char *part, char *name,
                         size_t cap)
{
    struct timeval tv = {(time_t)(r->etcd_timeout_ms / 1000 + 5), 0};
    redisContext *c = redisConnectWithTimeout(host, port, tv);
    int rc = -1, fd = -1;
    uint64_t snap_pos;
    redisReply *rep = NULL;
    if (!c || c->err || redisSetTimeout(c, tv) != REDIS_OK)
        goto out;
    if (r->cfg.auth && r->cfg.auth[0]) {
        rep = redisCommand(c, "AUTH %s", r->cfg.auth);
        if (!rep || rep->type == REDIS_REPLY_ERROR)
            goto refused;
        freeReplyObject(rep);
    }
    rep = redisCommand(c, "REPL.SNAPSHOT");
    if (rep && rep->type == REDIS_REPLY_ERROR)
        goto refused;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 3 ||
        rep->element[0]->type != REDIS_REPLY_STRING ||
        !repl_snapshot_name(rep->element[0]->str, rep->element[0]->len, &snap_pos) ||
        rep->element[1]->type != REDIS_REPLY_INTEGER || rep->element[1]->integer < 0 ||
        (unsigned long long)rep->element[1]->integer > REPL_SNAPSHOT_BYTES_MAX || cap < 22)
        goto out;
    snprintf(name, cap, "%s", rep->element[0]->str);
    uint64_t size = (uint64_t)rep->element[1]->integer;
    freeReplyObject(rep);
    rep = NULL;
    fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        goto out;
    for (uint64_t off = 0; off < size && !stopping(r);) {
        uint64_t want =
            size - off < REPL_SNAPSHOT_CHUNK_BYTES ? size - off : REPL_SNAPSHOT_CHUNK_BYTES;
        rep = redisCommand(c, "REPL.SNAPSHOT.READ %s %llu %llu", name, (unsigned long long)off,
                           (unsigned long long)want);
        if (!rep || rep->type != REDIS_REPLY_STRING || (uint64_t)rep->len != want)
            goto out; /* replaced by a newer one meanwhile, or cut: start again */
        for (size_t done = 0; done < rep->len;) {
            ssize_t w = pwrite(fd, rep->str + done, rep->len - done, (off_t)(off + done));
            if (w <= 0)
                goto out;
            done += (size_t)w;
        }
        off += want;
        freeReplyObject(rep);
        rep = NULL;
    }
    rc = !stopping(r) && fsync(fd) == 0 ? 0 : -1;
    goto out;
refused:
    /* The one thing that says why this standby never catches up: at the
     * first refusal, then every REPL_REFUSAL_LOG_MS until it is fixed. */
    if (r->refusal_logged_ms == 0 ||
        clock_mono_ms() - r->refusal_logged_ms >= (int64_t)REPL_REFUSAL_LOG_MS) {
        r->refusal_logged_ms = clock_mono_ms();
        fprintf(stderr,
                "invcored: the leader refused the snapshot copy: %s (a standby sends "
                "--repl-auth, else --requirepass)\n",
                rep && rep->type == REDIS_REPLY_ERROR ? rep->str : "no answer");
    }
out:
    if (rep)
        freeReplyObject(rep);
    if (fd >= 0)
        close(fd);
    if (c)
        redisFree(c);
    return rc;
}

/* The log no longer holds this copy's position: copy the leader's latest
 * snapshot, make it the data directory's only content, and restart on it
 * (the engine loads it; the reader starts at the entry holding its
 * position, which the leader kept: it compacts only below its snapshot). */
static void fetch_snapshot(repl *r)
{
    char part[REPL_PATH_MAX], name[32], final[REPL_PATH_MAX], err[256];
    /* Believed to fit (the engine opened its journal there), checked still,
     * once: every snapshot's name is as long as this one. Without them this
     * node stays a standby until it stops. */
    static const char any_name[] = "0000000000000000.snap";
    _Static_assert(sizeof any_name - 1 == REPL_SNAPSHOT_NAME_LEN, "a snapshot name's length");
    bool fits = repl_path(part, sizeof part, r->cfg.data_dir, REPL_SNAPSHOT_PART_FILE) &&
                repl_path(final, sizeof final, r->cfg.data_dir, any_name);
    if (!fits)
        fprintf(stderr, "invcored: cannot copy a snapshot: data dir path too long: %s\n",
                r->cfg.data_dir);
    while (!stopping(r)) {
        repl_elect_status st;
        repl_elect_state(r->el, &st);
        if (st.role == REPL_ROLE_LEADER) /* won before it knew it was behind */
            (void)repl_elect_resign(r->el);
        char host[REPL_ADDR_MAX + 1];
        const char *port;
        if (fits && repl_split_addr(st.leader_addr, host, sizeof host, &port)) {
            fprintf(stderr,
                    "invcored: the log no longer holds position %" PRIu64
                    ": copying the snapshot of %s\n",
                    inv_repl_position(r->e), st.leader_addr);
            if (copy_snapshot(r, host, atoi(port), part, name, sizeof name) == 0 &&
                repl_path(final, sizeof final, r->cfg.data_dir, name) &&
                empty_dir(r->cfg.data_dir, REPL_SNAPSHOT_PART_FILE, err, sizeof err) == 0) {
                int dfd = open(r->cfg.data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (rename(part, final) == 0 && dfd >= 0 && fsync(dfd) == 0) {
                    close(dfd);
                    restart_as_standby(r, "copied a snapshot");
                }
                if (dfd >= 0)
                    close(dfd);
            }
        }
        clock_sleep_ms(REPL_SNAPSHOT_RETRY_MS);
    }
}

/* A final follower error: the log no longer continues this node's copy. */
static void follow_failed(repl *r, int rc)
{
    /* release: may_campaign's acquire; this copy must not lead now */
    atomic_store_explicit(&r->caught_up, false, memory_order_release);
    if (rc == INV_ELIMIT) {
        fetch_snapshot(r); /* returns only when stopping */
        return;
    }
    char why[REPL_LOG_ERROR_MAX + 96];
    snprintf(why, sizeof why, "the log does not continue this copy (%s: %s)", inv_errcode(rc),
             repl_log_reader_errmsg(r->rd));
    if (mark_led(r->cfg.data_dir) != 0) /* copy the log again, from the start */
        fprintf(stderr, "invcored: cannot mark %s: %s\n", r->cfg.data_dir, strerror(errno));
    restart_as_standby(r, why);
}

/* ---- the leader ------------------------------------------------------------------- */

/* The journal's tap, on its writer thread: queue the bytes (wait for
 * room: back-pressure). */
static void ship(void *arg, uint64_t first, const void *bytes, size_t len)
{
    repl *r = arg;
    pthread_mutex_lock(&r->q_lock);
    assert(first == r->q_first + r->q_len); /* contiguous, in order (invcore.h) */
    while (r->q_head + r->q_len + len > REPL_SHIP_QUEUE_BYTES && !stopping(r)) {
        if (r->q_head > 0) {
            memmove(r->q, r->q + r->q_head, r->q_len);
            r->q_head = 0;
            continue;
        }
        pthread_cond_wait(&r->q_space, &r->q_lock);
    }
    if (!stopping(r)) { /* stopping: nothing more is acknowledged anyway */
        memcpy(r->q + r->q_head + r->q_len, bytes, len);
        r->q_len += len;
        pthread_cond_signal(&r->q_data);
    }
    pthread_mutex_unlock(&r->q_lock);
}

/* The whole records at the queue's front, at most one entry's payload,
 * copied to r->send: their byte count (0 when none came within a poll). */
static size_t take_entry(repl *r, uint64_t *first)
{
    pthread_mutex_lock(&r->q_lock);
    if (r->q_len == 0 && !stopping(r)) {
        struct timespec ts; /* absolute, CLOCK_REALTIME (the condition's clock) */
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + REPL_FOLLOW_POLL_MS * 1000000ull;
        ts.tv_sec += (time_t)(ns / 1000000000ull);
        ts.tv_nsec = (long)(ns % 1000000000ull);
        pthread_cond_timedwait(&r->q_data, &r->q_lock, &ts);
    }
    size_t n = 0;
    while (n + JOURNAL_RECORD_HEADER <= r->q_len) {
        uint32_t plen;
        memcpy(&plen, r->q + r->q_head + n, sizeof plen); /* the header's length field */
        uint64_t size = journal_record_size(plen);
        if (n + size > r->q_len || n + size > REPL_LOG_ENTRY_PAYLOAD_MAX)
            break;
        n += (size_t)size;
    }
    memcpy(r->send, r->q + r->q_head, n);
    *first = r->q_first;
    pthread_mutex_unlock(&r->q_lock);
    return n;
}

static void dequeue(repl *r, size_t n)
{
    pthread_mutex_lock(&r->q_lock);
    assert(n <= r->q_len);
    r->q_head += n;
    r->q_len -= n;
    r->q_first += n;
    pthread_cond_broadcast(&r->q_space);
    pthread_mutex_unlock(&r->q_lock);
}

static int min_progress(void *arg, const etcd_kv *kv)
{
    uint64_t *need = arg, v = 0;
    if (kv->vlen == 0 || kv->vlen > 20)
        return 0; /* not a position: ignored */
    for (size_t i = 0; i < kv->vlen; i++) {
        if (kv->value[i] < '0' || kv->value[i] > '9')
            return 0;
        v = v * 10 + (uint64_t)(kv->value[i] - '0');
    }
    if (v < *need)
        *need = v;
    return 0;
}

/* After a snapshot: deletes the log's entries below the entry holding the
 * oldest position still needed (the snapshot's, or a live standby's
 * applied one) and compacts etcd's history there, so etcd's size stays
 * bounded by what came after the last snapshot (docs/REPLICATION.md). */
static void maybe_compact(repl *r)
{
    int64_t now = clock_mono_ms();
    if (now < r->compact_due_ms)
        return;
    r->compact_due_ms = now + REPL_COMPACT_CHECK_MS;
    inv_stats st;
    if (inv_stats_get(r->e, &st) != INV_OK || st.snapshot_position == 0 ||
        st.snapshot_position <= r->compacted_snapshot)
        return;
    uint64_t need = st.snapshot_position, first;
    char prefix[REPL_CLUSTER_MAX + 16], err[REPL_LOG_ERROR_MAX];
    int plen = snprintf(prefix, sizeof prefix, "/%s/standby/", r->cfg.cluster);
    assert(plen > 0 && (size_t)plen < sizeof prefix);
    int64_t deleted = 0, revision = 0;
    if (etcd_range_prefix(r->etcd, prefix, (size_t)plen, 0, min_progress, &need, NULL) != INV_OK ||
        repl_log_entry_holding(r->etcd, r->cfg.cluster, need, &first, err, sizeof err) != INV_OK ||
        repl_log_delete_below(r->etcd, r->cfg.cluster, first, &deleted, &revision, err,
                              sizeof err) != INV_OK)
        return; /* next time */
    if (deleted > 0 && repl_log_compact(r->etcd, revision, err, sizeof err) != INV_OK)
        return;
    if (need == st.snapshot_position)
        r->compacted_snapshot = need; /* else a standby holds it back: look again */
    if (deleted > 0)
        fprintf(stderr,
                "invcored: compacted the log below position %" PRIu64 " (%" PRId64 " entries)\n",
                first, deleted);
}

/* Leads term until the process stops or restarts. */
static void lead(repl *r, uint64_t term)
{
    char err[REPL_LOG_ERROR_MAX];
    while (!stopping(r)) {
        uint64_t now_term;
        if (!repl_elect_is_leader(r->el, &now_term) || now_term != term)
            restart_as_standby(r, "lost the lease");
        maybe_compact(r);
        uint64_t first;
        size_t n = take_entry(r, &first);
        if (n == 0)
            continue;
        int rc;
        while ((rc = repl_log_append(r->etcd, r->cfg.cluster, term, first, r->send, n, err,
                                     sizeof err)) != INV_OK) {
            if ((rc != INV_EIO && rc != INV_ENOMEM) || stopping(r))
                restart_as_standby(r, err[0] ? err : "an append was fenced out");
            if (!repl_elect_is_leader(r->el, NULL))
                restart_as_standby(r, "lost the lease with an append unconfirmed");
            clock_sleep_ms(REPL_RETRY_MS); /* the outcome is unknown: ask again */
        }
        dequeue(r, n);
        /* committed, but a leader past its lease acknowledges nothing more
         * (its entry is in the log: the next leader has it) */
        if (!repl_elect_is_leader(r->el, NULL))
            restart_as_standby(r, "lost the lease with an append committed");
        inv_repl_acked(r->e, first + n);
        /* release: INFO and ROLE read it. */
        atomic_store_explicit(&r->replicated, first + n, memory_order_release);
        atomic_store_explicit(&r->applied, first + n, memory_order_release);
    }
}

/* Won the election for term: apply the log up to its head (fenced now:
 * nobody else can append), promote the engine, lead. Returns when the
 * leadership ended before the promotion. */
static void take_over(repl *r, uint64_t term)
{
    uint64_t head;
    if (read_head(r, &head) != 0)
        return;
    while (inv_repl_position(r->e) < head && !stopping(r)) {
        if (!repl_elect_is_leader(r->el, NULL))
            return;
        repl_log_entry ent;
        int rc = repl_log_next(r->rd, &ent, REPL_FOLLOW_POLL_MS);
        if (rc == INV_OK)
            apply_entry(r, &ent);
        else if (rc == INV_ELIMIT || rc == INV_EINVALID || rc == INV_ECONFLICT)
            follow_failed(r, rc);
    }
    if (stopping(r) || inv_repl_position(r->e) != head)
        return;
    if (mark_led(r->cfg.data_dir) != 0) {
        fprintf(stderr, "invcored: cannot mark %s (%s): not taking over\n", r->cfg.data_dir,
                strerror(errno));
        return;
    }
    r->cfg.pause(r->cfg.pause_arg);
    r->q_first = inv_repl_position(r->e); /* nothing ships before promote */
    int rc = inv_repl_promote(r->e, ship, r);
    r->cfg.resume(r->cfg.pause_arg);
    if (rc != INV_OK) {
        char why[96];
        snprintf(why, sizeof why, "cannot promote the engine: %s", inv_strerror(rc));
        restart_as_standby(r, why);
    }
    if (r->progress_lease != 0) /* a leader needs no standby entry */
        (void)etcd_lease_revoke(r->etcd, r->progress_lease);
    r->progress_lease = 0;
    /* release: pairs with repl_writable's acquire. */
    atomic_store_explicit(&r->term, term, memory_order_release);
    atomic_store_explicit(&r->writable, true, memory_order_release);
    fprintf(stderr, "invcored: leading cluster %s, term %" PRIu64 ", from position %" PRIu64 "\n",
            r->cfg.cluster, term, r->q_first);
    lead(r, term);
}

static void *repl_main(void *arg)
{
    repl *r = arg;
    start_following(r);
    while (!stopping(r)) {
        publish_progress(r);
        repl_log_entry ent;
        int rc = repl_log_next(r->rd, &ent, REPL_FOLLOW_POLL_MS);
        if (rc == INV_OK) {
            apply_entry(r, &ent);
            continue;
        }
        if (rc == INV_ELIMIT || rc == INV_EINVALID || rc == INV_ECONFLICT)
            follow_failed(r, rc);
        note_caught_up(r);
        uint64_t term;
        if (may_campaign(r) && repl_elect_is_leader(r->el, &term))
            take_over(r, term);
        if (rc != INV_ENOTFOUND)
            clock_sleep_ms(REPL_RETRY_MS); /* etcd did not answer */
    }
    return NULL;
}

/* ---- lifecycle --------------------------------------------------------------------- */

repl *repl_start(const repl_config *cfg, inv_engine *e, char *err, size_t errlen)
{
    assert(cfg != NULL && e != NULL && cfg->pause != NULL && cfg->resume != NULL);
    repl *r = inv_calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    r->cfg = *cfg;
    r->e = e;
    r->lease_ttl_ms = cfg->lease_ttl_ms ? cfg->lease_ttl_ms : REPL_LEASE_TTL_MS_DEFAULT;
    r->etcd_timeout_ms = r->lease_ttl_ms / REPL_KEEPALIVE_FRACTION;
    pthread_mutex_init(&r->q_lock, NULL);
    pthread_cond_init(&r->q_data, NULL);
    pthread_cond_init(&r->q_space, NULL);
    uint64_t pos = inv_repl_position(e);
    atomic_init(&r->applied, pos);
    atomic_init(&r->replicated, pos);
    r->q = malloc(REPL_SHIP_QUEUE_BYTES);
    r->send = malloc(REPL_LOG_ENTRY_PAYLOAD_MAX);
    if (!r->q || !r->send) {
        snprintf(err, errlen, "out of memory");
        repl_stop(r);
        repl_free(r);
        return NULL;
    }
    r->etcd = etcd_open(cfg->etcd, r->etcd_timeout_ms, err, errlen);
    repl_elect_config ec = {.etcd_endpoints = cfg->etcd,
                            .cluster = cfg->cluster,
                            .advertise = cfg->advertise,
                            .lease_ttl_ms = cfg->lease_ttl_ms,
                            .may_campaign = may_campaign,
                            .may_campaign_arg = r};
    r->el = r->etcd ? repl_elect_start(&ec, err, errlen) : NULL;
    if (!r->el || pthread_create(&r->th, NULL, repl_main, r) != 0) {
        if (r->el)
            snprintf(err, errlen, "cannot start the replication thread");
        repl_stop(r);
        repl_free(r);
        return NULL;
    }
    r->started = true;
    return r;
}

bool repl_writable(repl *r)
{
    if (!r)
        return false; /* a cluster node not following yet */
    /* acquire: pairs with take_over's release. */
    return atomic_load_explicit(&r->writable, memory_order_acquire) &&
           repl_elect_is_leader(r->el, NULL);
}

void repl_info_get(repl *r, repl_info *out)
{
    assert(r != NULL && out != NULL);
    memset(out, 0, sizeof *out);
    repl_elect_status st;
    repl_elect_state(r->el, &st);
    out->leader = repl_writable(r);
    snprintf(out->leader_addr, sizeof out->leader_addr, "%s", st.leader_addr);
    out->term = st.term;
    /* acquire: published by the thread. */
    out->applied = atomic_load_explicit(&r->applied, memory_order_acquire);
    out->replicated = atomic_load_explicit(&r->replicated, memory_order_acquire);
    out->caught_up = atomic_load_explicit(&r->caught_up, memory_order_acquire);
}

void repl_stop(repl *r)
{
    if (!r)
        return;
    /* release: pairs with stopping(). */
    atomic_store_explicit(&r->stop, true, memory_order_release);
    pthread_mutex_lock(&r->q_lock);
    pthread_cond_broadcast(&r->q_space);
    pthread_cond_broadcast(&r->q_data);
    pthread_mutex_unlock(&r->q_lock);
    if (r->started)
        pthread_join(r->th, NULL);
    r->started = false;
    /* a leader stopping (SIGTERM) hands over at once instead of letting
     * its lease run out: nothing more ships from here */
    if (atomic_load_explicit(&r->writable, memory_order_acquire))
        (void)repl_elect_resign(r->el);
    atomic_store_explicit(&r->writable, false, memory_order_release);
    repl_elect_stop(r->el);
    repl_log_follow_stop(r->rd);
    etcd_close(r->etcd);
    r->el = NULL;
    r->rd = NULL;
    r->etcd = NULL;
}

void repl_free(repl *r)
{
    if (!r)
        return;
    assert(stopping(r) && !r->started);
    free(r->q);
    free(r->send);
    pthread_mutex_destroy(&r->q_lock);
    pthread_cond_destroy(&r->q_data);
    pthread_cond_destroy(&r->q_space);
    free(r);
}
