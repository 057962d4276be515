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
#include "server/etcd.h"
#include "server/repl_log.h"

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
};

static bool stopping(repl *r)
{
    /* acquire: pairs with repl_stop's release. */
    return atomic_load_explicit(&r->stop, memory_order_acquire);
}

/* ---- the data directory ------------------------------------------------------ */

/* Creates REPL_LED_FILE durably (the file and its directory entry). */
static int mark_led(const char *dir)
{
    assert(dir != NULL);
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, REPL_LED_FILE) >= sizeof path)
        return -1;
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

/* Deletes dir's regular files but LOCK and the marker, then the marker:
 * a crash midway leaves the marker, and the next start empties again. */
static int empty_dir(const char *dir, char *err, size_t errlen)
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
            strcmp(de->d_name, "LOCK") == 0 || strcmp(de->d_name, REPL_LED_FILE) == 0)
            continue;
        if (unlinkat(dfd, de->d_name, 0) != 0) {
            snprintf(err, errlen, "cannot delete %s/%s: %s", dir, de->d_name, strerror(errno));
            rc = -1;
        }
    }
    if (rc == 0 && fsync(dfd) == 0 && unlinkat(dfd, REPL_LED_FILE, 0) == 0 && fsync(dfd) == 0) {
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
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", data_dir, REPL_LED_FILE) >= sizeof path) {
        snprintf(err, errlen, "data dir path too long");
        return -1;
    }
    if (access(path, F_OK) != 0)
        return 0; /* never led (or a fresh directory): resume where it is */
    /* Only with the directory's lock: never empty another engine's. */
    char lock[4096];
    snprintf(lock, sizeof lock, "%s/LOCK", data_dir);
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
    int rc = empty_dir(data_dir, err, errlen);
    close(fd);
    return rc;
}

/* Ends this process image and starts the same command line again, as a
 * standby whose data directory is emptied first (REPL_LED_FILE): what
 * this node wrote but etcd never committed must go. */
static void restart_as_standby(repl *r, const char *why)
{
    /* release: no write is admitted from here on (repl_writable). */
    atomic_store_explicit(&r->writable, false, memory_order_release);
    fprintf(stderr, "invcored: %s; restarting as a standby\n", why);
    if (mark_led(r->cfg.data_dir) != 0)
        fprintf(stderr, "invcored: cannot mark %s: %s\n", r->cfg.data_dir, strerror(errno));
    fflush(stderr);
    execv("/proc/self/exe", r->cfg.argv);
    fprintf(stderr, "invcored: cannot restart: %s\n", strerror(errno));
    _exit(70); /* a supervisor restarts it */
}

/* ---- the standby ----------------------------------------------------------------- */

static void apply_entry(repl *r, const repl_log_entry *ent)
{
    assert(ent->end > ent->first && ent->first == inv_repl_position(r->e));
    r->cfg.pause(r->cfg.pause_arg);
    int rc = inv_repl_apply(r->e, ent->first, ent->payload, (size_t)(ent->end - ent->first));
    r->cfg.resume(r->cfg.pause_arg);
    if (rc != INV_OK) {
        char why[128];
        snprintf(why, sizeof why, "cannot apply the log entry at %" PRIu64 ": %s", ent->first,
                 inv_strerror(rc));
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

/* A final follower error: the log no longer continues this node's copy. */
static void follow_failed(repl *r, int rc)
{
    char why[REPL_LOG_ERROR_MAX + 96];
    snprintf(why, sizeof why, "the log does not continue this copy (%s: %s)", inv_errcode(rc),
             repl_log_reader_errmsg(r->rd));
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

/* Leads term until the process stops or restarts. */
static void lead(repl *r, uint64_t term)
{
    char err[REPL_LOG_ERROR_MAX];
    while (!stopping(r)) {
        uint64_t now_term;
        if (!repl_elect_is_leader(r->el, &now_term) || now_term != term)
            restart_as_standby(r, "lost the lease");
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
    while (!stopping(r)) {
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
    uint32_t ttl = cfg->lease_ttl_ms ? cfg->lease_ttl_ms : REPL_LEASE_TTL_MS_DEFAULT;
    r->etcd_timeout_ms = ttl / REPL_KEEPALIVE_FRACTION;
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
    r->rd = r->etcd ? repl_log_follow(cfg->etcd, r->etcd_timeout_ms, cfg->cluster, pos, err, errlen)
                    : NULL;
    repl_elect_config ec = {.etcd_endpoints = cfg->etcd,
                            .cluster = cfg->cluster,
                            .advertise = cfg->advertise,
                            .lease_ttl_ms = cfg->lease_ttl_ms,
                            .may_campaign = may_campaign,
                            .may_campaign_arg = r};
    r->el = r->rd ? repl_elect_start(&ec, err, errlen) : NULL;
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
