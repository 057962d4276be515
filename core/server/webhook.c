/*
 * webhook.c — the webhook senders (webhook.h has the contract): one thread
 * per --webhook reads the feed, encodes records (feed_json), POSTs them
 * with libcurl, retries with backoff, and stores the acknowledged position.
 *
 * Threads and what they share:
 *  - Each webhook's thread alone uses its reader, curl handle, JSON buffer
 *    and position file. main starts the threads (webhooks_start) before the
 *    server answers anyone and joins them (webhooks_stop) after the server
 *    stopped, so no INFO runs while a set is freed.
 *  - INFO reads a webhook's counters under its mutex (w->mu); the thread
 *    takes it only to publish them, never while it waits or sends.
 *  - Stop: set->stop (release store; every wait re-checks it with acquire)
 *    plus a write to set->stop_fd that wakes each thread's poll; a POST in
 *    flight sees the flag in curl's progress callback (about once a second)
 *    and is aborted.
 *
 * Invariants: w->acked only grows; the position file holds a position
 * <= w->acked (it is written after the receiver's 2xx, or for records the
 * topics skipped); a batch's body is built once and resent unchanged.
 */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "alloc.h"
#include "server/webhook.h"

#include <assert.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "clock.h"
#include "fileio.h"
#include "server/feed_json.h"

#define WEBHOOK_PATH_MAX 4096u
/* Records one fill may read (matching or not) before it checks for stop:
 * a topic filter that skips everything still yields now and then. */
#define WEBHOOK_READ_MAX (16u * WEBHOOK_BATCH_RECORDS_MAX)
/* With nothing to read, a thread wakes at least this often (stop, and to
 * store a position that skipped records moved). */
#define WEBHOOK_IDLE_MS 1000u
/* Connecting may take at most this long within the POST's deadline. */
#define WEBHOOK_CONNECT_TIMEOUT_MS 2000u
#define WEBHOOK_HEADER_MAX 128u
#define WEBHOOK_POS_SUFFIX ".pos"
#define WEBHOOK_POS_PREFIX "webhook-"

/* The position file: only the fileio header (magic, version, position,
 * checksum); its position field is the acknowledged position. */
static const fileio_format g_pos_format = {"INVWHPOS", 1};

typedef struct webhooks webhooks;

typedef struct {
    /* fixed at start */
    webhooks *set;
    char url[WEBHOOK_URL_MAX + 1]; /* without the fragment */
    unsigned topics;
    char pos_path[WEBHOOK_PATH_MAX], tmp_path[WEBHOOK_PATH_MAX];
    pthread_t thread;
    bool started;
    /* the thread's own */
    CURL *curl;
    feed_json *json;
    inv_feed *feed;
    int durable_fd;
    uint64_t stored; /* the position on disk */
    uint64_t batch_last; /* the reader's position when the batch closed */
    size_t batch_records;
    /* published to INFO under mu */
    pthread_mutex_t mu;
    uint64_t acked;
    /* the journal's end when the thread last found nothing more to send
     * (positions are record starts: acked alone never reaches the end) */
    uint64_t caught_up_end;
    int64_t pending_time_ms; /* time of the batch's first record, 0: none */
    uint64_t posts_ok, records_sent, failures, failing, gaps;
    long last_status;
    char last_error[WEBHOOK_ERROR_MAX];
} webhook;

struct webhooks {
    inv_engine *e;
    webhook_config cfg;
    atomic_bool stop;
    int stop_fd; /* eventfd: readable once stop is set */
    size_t n;
    webhook hooks[WEBHOOKS_MAX];
};

/* A webhook as its own thread sees it (used only in asserts; O(1)): set
 * up, with a URL and a topic set, and the stored position never ahead of
 * the acknowledged one (a batch is stored only once acknowledged; only
 * this thread writes either, so reading acked here needs no lock). */
static bool hook_ok(const webhook *w)
{
    return w != NULL && w->set != NULL && w->url[0] != '\0' && w->topics != 0 &&
           (w->topics & ~(unsigned)WEBHOOK_TOPICS_ALL) == 0 && w->stored <= w->acked &&
           w->batch_records <= WEBHOOK_BATCH_RECORDS_MAX;
}

/* The started set, for INFO (webhooks_status); NULL when none runs. */
static _Atomic(webhooks *) g_running;

/* ---- arguments ---------------------------------------------------------- */

static const struct {
    const char *name;
    unsigned bit;
} g_topics[] = {
    {"levels", WEBHOOK_TOPIC_LEVELS},
    {"holds", WEBHOOK_TOPIC_HOLDS},
    {"items", WEBHOOK_TOPIC_ITEMS},
};

/* "a,b,c" of topic names into bits; 0 when a name is unknown or empty. */
static unsigned topics_parse(const char *s)
{
    unsigned bits = 0;
    assert(s != NULL);
    while (*s != '\0') {
        size_t n = strcspn(s, ",");
        unsigned bit = 0;
        for (size_t i = 0; i < sizeof g_topics / sizeof g_topics[0]; i++)
            if (strlen(g_topics[i].name) == n && strncmp(s, g_topics[i].name, n) == 0)
                bit = g_topics[i].bit;
        if (bit == 0)
            return 0;
        bits |= bit;
        s += n + (s[n] == ',');
    }
    assert((bits & ~(unsigned)WEBHOOK_TOPICS_ALL) == 0);
    return bits;
}

int webhook_arg_check(const char *arg, unsigned *topics_out, char *err, size_t errlen)
{
    assert(arg != NULL);
    size_t len = strlen(arg);
    if (len > WEBHOOK_URL_MAX) {
        fileio_errmsg(err, errlen, "--webhook: URL longer than %u bytes", WEBHOOK_URL_MAX);
        return -1;
    }
    if (strncmp(arg, "http://", 7) != 0 && strncmp(arg, "https://", 8) != 0) {
        fileio_errmsg(err, errlen, "--webhook: '%.64s' is not an http:// or https:// URL", arg);
        return -1;
    }
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)arg[i] <= ' ' || arg[i] == 0x7f) {
            fileio_errmsg(err, errlen, "--webhook: space or control byte in the URL");
            return -1;
        }
    unsigned topics = WEBHOOK_TOPICS_ALL;
    const char *frag = strchr(arg, '#');
    if (frag != NULL) {
        topics = strncmp(frag, "#topics=", 8) == 0 ? topics_parse(frag + 8) : 0;
        if (topics == 0) {
            fileio_errmsg(err, errlen,
                          "--webhook: fragment '%.64s': expected #topics= with one or more "
                          "of levels, holds, items",
                          frag);
            return -1;
        }
    }
    if (topics_out != NULL)
        *topics_out = topics;
    assert(topics != 0 && len <= WEBHOOK_URL_MAX);
    return 0;
}

/* The topic of a kind; a batch's is the union of its changes'. */
static unsigned kind_topic(inv_feed_kind k)
{
    if (k >= INV_FEED_HOLD_CREATE && k <= INV_FEED_HOLD_ABORT)
        return WEBHOOK_TOPIC_HOLDS;
    if (k >= INV_FEED_ITEM && k <= INV_FEED_DEFAULT_LOCATION)
        return WEBHOOK_TOPIC_ITEMS;
    return WEBHOOK_TOPIC_LEVELS; /* level kinds, and 0 (unknown) */
}

static bool record_wanted(const webhook *w, const inv_feed_record *r)
{
    assert(hook_ok(w) && r != NULL && (r->changes != NULL || r->n_changes == 0));
    if (w->topics == WEBHOOK_TOPICS_ALL)
        return true;
    if (r->kind != INV_FEED_BATCH)
        return (kind_topic(r->kind) & w->topics) != 0;
    for (size_t i = 0; i < r->n_changes; i++)
        if (kind_topic(r->changes[i].kind) & w->topics)
            return true;
    return false;
}

/* ---- state for INFO ----------------------------------------------------- */

static void publish_failure(webhook *w, long status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void publish_failure(webhook *w, long status, const char *fmt, ...)
{
    char msg[WEBHOOK_ERROR_MAX];
    va_list ap;
    assert(w != NULL && fmt != NULL);
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&w->mu);
    bool first = w->failing == 0;
    w->failures++;
    w->failing++;
    w->last_status = status;
    memcpy(w->last_error, msg, sizeof msg);
    assert(w->failing >= 1 && w->failures >= w->failing);
    pthread_mutex_unlock(&w->mu);
    if (first) /* one line per outage, not per retry */
        fprintf(stderr, "invcored: webhook %s: %s (retrying)\n", w->url, msg);
}

static void publish_ack(webhook *w, uint64_t position, size_t records, long status)
{
    pthread_mutex_lock(&w->mu);
    bool recovered = w->failing > 0;
    assert(position >= w->acked);
    assert(records <= WEBHOOK_BATCH_RECORDS_MAX);
    w->acked = position;
    w->pending_time_ms = 0;
    if (records > 0) {
        w->posts_ok++;
        w->records_sent += records;
        w->last_status = status;
        w->failing = 0;
        w->last_error[0] = '\0';
    }
    pthread_mutex_unlock(&w->mu);
    if (recovered && records > 0)
        fprintf(stderr, "invcored: webhook %s: delivering again\n", w->url);
}

/* ---- the position file -------------------------------------------------- */

/* Reads the stored position: 1 found, 0 no file, -1 unreadable (err). */
static int pos_load(const webhook *w, uint64_t *pos, char *err, size_t errlen)
{
    uint8_t buf[FILEIO_HEADER_BYTES + 1];
    assert(w != NULL && w->pos_path[0] != '\0' && pos != NULL);
    int fd = open(w->pos_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return 0;
    ssize_t n = fd < 0 ? -1 : pread(fd, buf, sizeof buf, 0);
    if (fd >= 0)
        close(fd);
    if (n < 0) {
        fileio_errmsg(err, errlen, "webhook position %s: %s", w->pos_path, strerror(errno));
        return -1;
    }
    uint64_t p = (size_t)n >= FILEIO_HEADER_BYTES ? fileio_load_u64(buf + 16) : 0;
    const char *bad = n == FILEIO_HEADER_BYTES
                          ? fileio_header_check(buf, (size_t)n, &g_pos_format, p)
                          : "not 32 bytes";
    if (bad != NULL) {
        fileio_errmsg(err, errlen, "webhook position %s: %s (delete it to start at the end)",
                      w->pos_path, bad);
        return -1;
    }
    *pos = p;
    return 1;
}

/* Stores pos durably: tmp file, fdatasync, rename, directory fsync. */
static int pos_store(webhook *w, uint64_t pos)
{
    uint8_t buf[FILEIO_HEADER_BYTES];
    assert(w != NULL && w->set != NULL && w->set->cfg.data_dir != NULL);
    assert(pos >= w->stored); /* the position only moves forward */
    fileio_header_encode(buf, &g_pos_format, pos);
    int fd = open(w->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    bool ok = fd >= 0 && write(fd, buf, sizeof buf) == (ssize_t)sizeof buf && fdatasync(fd) == 0;
    if (fd >= 0)
        ok = close(fd) == 0 && ok;
    ok = ok && rename(w->tmp_path, w->pos_path) == 0 && fileio_fsync_dir(w->set->cfg.data_dir) == 0;
    if (!ok) {
        publish_failure(w, 0, "storing the position in %s: %s", w->pos_path, strerror(errno));
        return -1;
    }
    w->stored = pos;
    return 0;
}

/* ---- waiting ------------------------------------------------------------- */

static bool stopping(const webhook *w)
{
    assert(w != NULL && w->set != NULL);
    /* acquire: pairs with webhooks_stop's release store */
    return atomic_load_explicit(&w->set->stop, memory_order_acquire);
}

/* Waits up to ms for stop or (fd >= 0) fd readable, which it drains.
 * Returns true when stopping. */
static bool wait_for(webhook *w, int fd, unsigned ms)
{
    assert(w->set->stop_fd >= 0 && ms <= WEBHOOK_BACKOFF_MAX_MS + WEBHOOK_IDLE_MS);
    struct pollfd p[2] = {{w->set->stop_fd, POLLIN, 0}, {fd, POLLIN, 0}};
    int n = poll(p, fd >= 0 ? 2 : 1, (int)ms);
    if (n > 0 && fd >= 0 && (p[1].revents & POLLIN)) {
        uint64_t v;
        if (read(fd, &v, sizeof v) < 0 && errno != EAGAIN)
            publish_failure(w, 0, "reading the durable eventfd: %s", strerror(errno));
    }
    return stopping(w);
}

static unsigned backoff_ms(uint64_t attempt)
{
    uint64_t ms = WEBHOOK_BACKOFF_MIN_MS;
    for (uint64_t i = 0; i < attempt && ms < WEBHOOK_BACKOFF_MAX_MS; i++)
        ms *= 2;
    assert(ms >= WEBHOOK_BACKOFF_MIN_MS);
    return ms > WEBHOOK_BACKOFF_MAX_MS ? WEBHOOK_BACKOFF_MAX_MS : (unsigned)ms;
}

static int reader_open(webhook *w, uint64_t pos);

/* ---- POST ---------------------------------------------------------------- */

/* The receiver's reply body is read and dropped. */
static size_t discard_body(char *p, size_t size, size_t n, void *ctx)
{
    return size * n;
}

/* Aborts a transfer once stop is set (curl calls it about once a second
 * while a transfer stalls, more often while bytes move). */
static int abort_on_stop(void *ctx, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    return stopping(ctx) ? 1 : 0;
}

/* "X-Invcore-Hmac-Sha256: base64(HMAC-SHA256(secret, body))" into h. */
static bool sign(const webhooks *set, const char *body, size_t len, char *h, size_t cap)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    unsigned char b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
    assert(set != NULL && set->cfg.secret != NULL && h != NULL && cap >= 1);
    if (HMAC(EVP_sha256(), set->cfg.secret, (int)set->cfg.secret_len, (const unsigned char *)body,
             len, mac, &mac_len) == NULL)
        return false;
    assert(mac_len == 32);
    EVP_EncodeBlock(b64, mac, (int)mac_len);
    return (size_t)snprintf(h, cap, "X-Invcore-Hmac-Sha256: %s", (const char *)b64) < cap;
}

/* One POST of body; *status: the HTTP status (0: none). CURLE_OK means a
 * reply came back, whatever its status. */
static CURLcode post_once(webhook *w, const char *body, size_t len, long *status)
{
    struct curl_slist *h = NULL, *t;
    char sig[WEBHOOK_HEADER_MAX];
    assert(hook_ok(w) && w->curl != NULL && body != NULL && len > 0 && status != NULL);
    *status = 0;
    /* "Expect:" off: curl would wait for a 100 Continue on large bodies */
    const char *fixed[] = {"Content-Type: application/json",
                           "Expect:", "User-Agent: invcored/" INVCORE_VERSION};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        t = curl_slist_append(h, fixed[i]);
        if (t == NULL)
            goto oom;
        h = t;
    }
    if (w->set->cfg.secret != NULL) {
        if (!sign(w->set, body, len, sig, sizeof sig) || (t = curl_slist_append(h, sig)) == NULL)
            goto oom;
        h = t;
    }
    curl_easy_setopt(w->curl, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(w->curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(w->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    CURLcode cc = curl_easy_perform(w->curl);
    if (cc == CURLE_OK)
        curl_easy_getinfo(w->curl, CURLINFO_RESPONSE_CODE, status);
    curl_easy_setopt(w->curl, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(h);
    return cc;
oom:
    curl_slist_free_all(h);
    return CURLE_OUT_OF_MEMORY;
}

/* Sends the built batch until a 2xx, backing off between attempts, then
 * stores its position. false: stopped first (nothing acknowledged). */
static bool deliver(webhook *w)
{
    const char *body;
    size_t len;
    assert(w->batch_records > 0);
    assert(hook_ok(w) && w->batch_last >= w->acked); /* the batch lies after what was acked */
    if (feed_json_end(w->json, &body, &len) != INV_OK) { /* defended: fill checked each add */
        publish_failure(w, 0, "encoding a batch failed: reading it again");
        w->batch_records = 0;
        if (wait_for(w, -1, WEBHOOK_BACKOFF_MAX_MS))
            return false;
        (void)reader_open(w, w->acked); /* acked: only this thread writes it */
        return true;
    }
    for (uint64_t attempt = 0;; attempt++) {
        long status;
        CURLcode cc = post_once(w, body, len, &status);
        if (cc == CURLE_OK && status >= 200 && status <= 299) {
            publish_ack(w, w->batch_last, w->batch_records, status);
            (void)pos_store(w, w->batch_last); /* a failure is counted: the batch is resent */
            return true;
        }
        if (stopping(w))
            return false;
        if (cc == CURLE_OK)
            publish_failure(w, status, "HTTP status %ld", status);
        else
            publish_failure(w, 0, "%s", curl_easy_strerror(cc));
        if (wait_for(w, -1, backoff_ms(attempt)))
            return false;
    }
}

/* ---- reading the feed ---------------------------------------------------- */

/* Opens the reader after pos; a position retention dropped moves to the
 * oldest readable one (counted as a gap, logged). INV_OK or the error. */
static int reader_open(webhook *w, uint64_t pos)
{
    inv_engine *e = w->set->e;
    assert(e != NULL);
    if (w->feed != NULL)
        inv_feed_close(w->feed);
    w->feed = NULL;
    int rc = inv_feed_open(e, pos, &w->feed);
    if (rc == INV_ELIMIT) {
        uint64_t oldest = inv_feed_oldest_position(e);
        fprintf(stderr,
                "invcored: webhook %s: records after %llu are past retention; "
                "resuming at the oldest kept (%llu)\n",
                w->url, (unsigned long long)pos, (unsigned long long)oldest);
        pthread_mutex_lock(&w->mu);
        w->gaps++;
        pthread_mutex_unlock(&w->mu);
        rc = inv_feed_open(e, 0, &w->feed);
    }
    if (rc != INV_OK)
        w->feed = NULL;
    assert((rc == INV_OK) == (w->feed != NULL));
    return rc;
}

/* Reads up to a batch of wanted records into a new JSON array. Returns
 * the reader's last code (INV_ENOTFOUND: caught up, INV_OK: the batch is
 * full, else an error); w->batch_records and w->batch_last say what was
 * read. */
static int fill(webhook *w)
{
    inv_feed_record r;
    int rc = INV_OK;
    assert(hook_ok(w) && w->feed != NULL && w->json != NULL);
    feed_json_begin(w->json, true);
    w->batch_records = 0;
    for (size_t read = 0; read < WEBHOOK_READ_MAX; read++) {
        if (w->batch_records >= WEBHOOK_BATCH_RECORDS_MAX ||
            feed_json_len(w->json) >= WEBHOOK_BATCH_BYTES_MAX)
            break;
        rc = inv_feed_next(w->feed, &r);
        if (rc != INV_OK)
            break;
        if (!record_wanted(w, &r))
            continue;
        int jrc = feed_json_add(w->json, &r);
        if (jrc == INV_EINVALID) { /* nothing was added: say so, go on */
            publish_failure(w, 0, "record at %llu cannot be encoded: skipped",
                            (unsigned long long)r.position);
            continue;
        }
        if (jrc != INV_OK) { /* no memory: drop the batch, read it again later */
            w->batch_records = 0;
            rc = jrc;
            break;
        }
        if (w->batch_records++ == 0) {
            pthread_mutex_lock(&w->mu);
            w->pending_time_ms = r.time_ms;
            pthread_mutex_unlock(&w->mu);
        }
    }
    w->batch_last = inv_feed_position(w->feed);
    assert(w->batch_records <= WEBHOOK_BATCH_RECORDS_MAX);
    return rc;
}

/* Skipped records moved the reader past the acknowledged position:
 * publish it, and store it when idle (a restart need not re-read them). */
static void ack_skipped(webhook *w, bool store)
{
    assert(hook_ok(w) && w->feed != NULL);
    uint64_t pos = inv_feed_position(w->feed);
    pthread_mutex_lock(&w->mu);
    bool moved = pos > w->acked;
    pthread_mutex_unlock(&w->mu);
    if (moved)
        publish_ack(w, pos, 0, 0);
    if (store && pos > w->stored)
        (void)pos_store(w, pos);
}

static void *webhook_main(void *arg)
{
    webhook *w = arg;
    uint64_t failures = 0;
    assert(hook_ok(w) && w->feed != NULL); /* hook_resume opened it */
    while (!stopping(w)) {
        /* before the read: what the read then finds readable lies below */
        uint64_t end_before = inv_feed_end_position(w->set->e);
        int rc = w->feed != NULL ? fill(w) : INV_EIO;
        if (w->feed != NULL && w->batch_records > 0) {
            if (!deliver(w))
                break;
            continue;
        }
        if (rc == INV_OK)
            continue; /* read a full scan of skipped records */
        if (rc == INV_ENOTFOUND) {
            ack_skipped(w, true);
            pthread_mutex_lock(&w->mu);
            w->caught_up_end = end_before;
            pthread_mutex_unlock(&w->mu);
            failures = 0;
            (void)wait_for(w, w->durable_fd, WEBHOOK_IDLE_MS);
            continue;
        }
        /* the reader failed (I/O, corrupt record, retention under it, no
         * memory): reopen after what was acknowledged, after a backoff */
        publish_failure(w, 0, "reading the feed: %s %s", inv_errcode(rc), inv_strerror(rc));
        if (wait_for(w, -1, backoff_ms(failures++)))
            break;
        pthread_mutex_lock(&w->mu);
        uint64_t acked = w->acked;
        pthread_mutex_unlock(&w->mu);
        rc = reader_open(w, acked);
        if (rc != INV_OK)
            publish_failure(w, 0, "opening the feed: %s %s", inv_errcode(rc), inv_strerror(rc));
    }
    if (w->feed != NULL)
        ack_skipped(w, true);
    assert(stopping(w));
    return NULL;
}

/* ---- start and stop ------------------------------------------------------ */

/* Sets up w for args (checked by the config) and opens its reader at its
 * stored position (or the end, stored now). 0 or -1 with err. */
static int hook_init(webhooks *set, webhook *w, const char *arg, char *err, size_t errlen)
{
    assert(set != NULL && w != NULL && arg != NULL && set->cfg.data_dir != NULL);
    w->set = set;
    w->durable_fd = -1;
    pthread_mutex_init(&w->mu, NULL);
    if (webhook_arg_check(arg, &w->topics, err, errlen) != 0)
        return -1;
    size_t url_len = strcspn(arg, "#");
    assert(url_len <= WEBHOOK_URL_MAX); /* webhook_arg_check */
    memcpy(w->url, arg, url_len);
    w->url[url_len] = '\0';
    /* the file is named by the whole argument: another topic filter for
     * the same URL is another webhook with its own position */
    uint64_t h = XXH3_64bits(arg, strlen(arg));
    char name[FILEIO_NAME_MAX];
    snprintf(name, sizeof name, WEBHOOK_POS_PREFIX "%016llx" WEBHOOK_POS_SUFFIX,
             (unsigned long long)h);
    if ((size_t)snprintf(w->pos_path, sizeof w->pos_path, "%s/%s", set->cfg.data_dir, name) >=
            sizeof w->pos_path ||
        (size_t)snprintf(w->tmp_path, sizeof w->tmp_path, "%s.tmp", w->pos_path) >=
            sizeof w->tmp_path) {
        fileio_errmsg(err, errlen, "--webhook: data dir path too long");
        return -1;
    }
    w->json = feed_json_new();
    w->curl = curl_easy_init();
    w->durable_fd = inv_durable_subscribe(set->e);
    if (w->json == NULL || w->curl == NULL || w->durable_fd < 0) {
        fileio_errmsg(err, errlen, "webhook %s: cannot set up (%s)", w->url,
                      w->durable_fd < 0 ? "durable subscription" : "out of memory");
        return -1;
    }
    curl_easy_setopt(w->curl, CURLOPT_URL, w->url);
    curl_easy_setopt(w->curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(w->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(w->curl, CURLOPT_TIMEOUT_MS, (long)set->cfg.timeout_ms);
    curl_easy_setopt(w->curl, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(set->cfg.timeout_ms < WEBHOOK_CONNECT_TIMEOUT_MS
                                ? set->cfg.timeout_ms
                                : WEBHOOK_CONNECT_TIMEOUT_MS));
    curl_easy_setopt(w->curl, CURLOPT_WRITEFUNCTION, discard_body);
    curl_easy_setopt(w->curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(w->curl, CURLOPT_XFERINFOFUNCTION, abort_on_stop);
    curl_easy_setopt(w->curl, CURLOPT_XFERINFODATA, (void *)w);
    return 0;
}

/* The position w resumes after: the stored one, or the journal's end
 * (stored at once). 0 or -1 with err. */
static int hook_resume(webhook *w, char *err, size_t errlen)
{
    uint64_t pos = 0;
    assert(w != NULL && w->set != NULL && w->json != NULL && w->feed == NULL);
    int found = pos_load(w, &pos, err, errlen);
    if (found < 0)
        return -1;
    if (found == 0) {
        pos = inv_feed_end_position(w->set->e);
        if (pos_store(w, pos) != 0) {
            fileio_errmsg(err, errlen, "webhook %s: %s", w->url, w->last_error);
            return -1;
        }
    }
    w->stored = pos;
    w->acked = pos;
    int rc = reader_open(w, pos);
    if (rc != INV_OK) {
        fileio_errmsg(err, errlen, "webhook %s: cannot read the feed after %llu (%s): %s %s",
                      w->url, (unsigned long long)pos, w->pos_path, inv_errcode(rc),
                      inv_strerror(rc));
        return -1;
    }
    assert(hook_ok(w) && w->feed != NULL);
    return 0;
}

static void hook_free(webhooks *set, webhook *w)
{
    assert(set != NULL && w != NULL);
    if (w->set == NULL)
        return;
    assert(w->set == set);
    if (w->feed != NULL)
        inv_feed_close(w->feed);
    if (w->durable_fd >= 0)
        inv_durable_unsubscribe(set->e, w->durable_fd);
    if (w->curl != NULL)
        curl_easy_cleanup(w->curl);
    feed_json_free(w->json);
    pthread_mutex_destroy(&w->mu);
}

int webhooks_start(webhooks **out, inv_engine *e, const webhook_config *cfg, char *err,
                   size_t errlen)
{
    assert(out != NULL && e != NULL && cfg != NULL);
    assert(cfg->n > 0 && cfg->n <= WEBHOOKS_MAX);
    *out = NULL;
    if (cfg->data_dir == NULL) {
        fileio_errmsg(err, errlen, "--webhook needs a data dir (the feed reads the journal)");
        return -1;
    }
    /* once, before any thread uses curl (curl_global_init is not safe
     * concurrently with other curl calls) */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fileio_errmsg(err, errlen, "webhooks: curl_global_init failed");
        return -1;
    }
    webhooks *set = inv_calloc(1, sizeof *set);
    if (set == NULL) {
        curl_global_cleanup();
        fileio_errmsg(err, errlen, "webhooks: out of memory");
        return -1;
    }
    set->e = e;
    set->cfg = *cfg;
    set->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    atomic_init(&set->stop, false);
    int ok = set->stop_fd >= 0 ? 0 : -1;
    if (ok != 0)
        fileio_errmsg(err, errlen, "webhooks: eventfd: %s", strerror(errno));
    for (size_t i = 0; i < cfg->n && ok == 0; i++, set->n++) {
        webhook *w = &set->hooks[i];
        ok = hook_init(set, w, cfg->args[i], err, errlen);
        if (ok == 0)
            ok = hook_resume(w, err, errlen);
    }
    for (size_t i = 0; i < set->n && ok == 0; i++) {
        webhook *w = &set->hooks[i];
        ok = pthread_create(&w->thread, NULL, webhook_main, w) == 0 ? 0 : -1;
        w->started = ok == 0;
        if (ok != 0)
            fileio_errmsg(err, errlen, "webhooks: cannot start a thread");
    }
    if (ok != 0) {
        webhooks_stop(set);
        return -1;
    }
    /* release: INFO's acquire load sees the set's fields initialised */
    atomic_store_explicit(&g_running, set, memory_order_release);
    *out = set;
    return 0;
}

void webhooks_stop(webhooks *set)
{
    if (set == NULL)
        return;
    assert(set->n <= WEBHOOKS_MAX);
    /* relaxed: INFO no longer runs (the server stopped first); the
     * pointer is only cleared so a later status call finds nothing */
    atomic_store_explicit(&g_running, NULL, memory_order_relaxed);
    /* release: a thread that sees stop sees nothing more to do */
    atomic_store_explicit(&set->stop, true, memory_order_release);
    uint64_t one = 1;
    if (set->stop_fd >= 0 && write(set->stop_fd, &one, sizeof one) != (ssize_t)sizeof one)
        fprintf(stderr, "invcored: webhooks: waking the threads failed: %s\n", strerror(errno));
    for (size_t i = 0; i < set->n; i++)
        if (set->hooks[i].started)
            pthread_join(set->hooks[i].thread, NULL);
    for (size_t i = 0; i < set->n; i++)
        hook_free(set, &set->hooks[i]);
    if (set->stop_fd >= 0)
        close(set->stop_fd);
    free(set);
    curl_global_cleanup();
}

size_t webhooks_status(webhook_status *out, size_t cap)
{
    /* acquire: pairs with webhooks_start's release store */
    webhooks *set = atomic_load_explicit(&g_running, memory_order_acquire);
    if (set == NULL)
        return 0;
    assert(out != NULL || cap == 0);
    assert(set->n >= 1 && set->n <= WEBHOOKS_MAX);
    uint64_t end = inv_feed_end_position(set->e);
    int64_t now_ms = clock_wall_ms();
    for (size_t i = 0; i < set->n && i < cap; i++) {
        webhook *w = &set->hooks[i];
        webhook_status *s = &out[i];
        memcpy(s->url, w->url, sizeof s->url);
        s->topics = w->topics;
        pthread_mutex_lock(&w->mu);
        s->acked_position = w->acked;
        uint64_t base = w->caught_up_end > w->acked ? w->caught_up_end : w->acked;
        s->lag_ms =
            w->pending_time_ms > 0 && now_ms > w->pending_time_ms ? now_ms - w->pending_time_ms : 0;
        s->posts_ok = w->posts_ok;
        s->records_sent = w->records_sent;
        s->failures = w->failures;
        s->failing = w->failing;
        s->gaps = w->gaps;
        s->last_status = w->last_status;
        memcpy(s->last_error, w->last_error, sizeof s->last_error);
        pthread_mutex_unlock(&w->mu);
        s->lag_bytes = end > base ? end - base : 0;
    }
    return set->n;
}
