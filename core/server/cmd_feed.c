/*
 * cmd_feed.c — the change feed over RESP: FEED.READ (the records after a
 * position, in journal order, waiting for new ones with BLOCK) and
 * LEVEL.HISTORY (one level's changes, newest first). Both read the journal
 * through the engine's feed API (invcore.h "change feed and history");
 * the reply shape is docs/PROTOCOL.md "Change feed".
 *
 * Invariants:
 *  - A call examines at most FEED_SCAN_MAX records, filtered out ones
 *    included, so one request holds its event loop for a bounded decode.
 *    Every page says where to continue (next_position: the last record
 *    examined, not the last one returned), so a filtered reader whose
 *    records are rare still moves forward at every call.
 *  - A session keeps at most one reader (struct feed_session), reused when
 *    the next FEED.READ starts where it stands (a follower's loop), so
 *    following the feed costs no seek per call; it is closed on RESET, on
 *    disconnect, on an error, and replaced when a read starts elsewhere.
 *  - A BLOCK read that finds nothing parks its connection
 *    (session_conn_ops.block) and writes no reply; the server then calls
 *    command_feed_resume until it has answered (records, nil at the
 *    deadline, or an error). The parked request lives in feed_session.
 *  - Records are what the engine's reader shows: below the durable
 *    position only, so a reply never holds a change a crash can take back.
 */
#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "server/cmd_internal.h"

#define FEED_COUNT_DEFAULT 100u /* records in a page without COUNT */
/* Records one call examines at most (matching or not): with a filter that
 * matches little, a page may come back empty with a later next_position. */
#define FEED_SCAN_MAX (4u * INV_FEED_COUNT_MAX)
#define FEED_BLOCK_MS_MAX (366ull * 24 * 3600 * 1000) /* BLOCK: a year at most */
/* The page header "*2\r\n:<u64>\r\n*<count>\r\n" fits in this many bytes. */
#define FEED_PAGE_HEADER_MAX 64u

typedef struct {
    uint64_t item, location;
    bool has_item, has_location;
} feed_filter;

/* A session's reader and its parked read (one per session, see above). */
struct feed_session {
    inv_feed *reader; /* NULL: none */
    bool waiting; /* parked: command_feed_resume answers it */
    size_t count; /* the parked read's COUNT */
    feed_filter filter; /* and its filter */
    uint64_t parked_from; /* the parked read's FROM (resolved) */
    bool parked_block; /* the parked read has BLOCK (else: a "$" read that
                        * waits only until its reader started) */
};

/* A "$" read without BLOCK waits at most this long for the changes made
 * before it to become durable (one fsync interval at most, normally). */
#define FEED_START_WAIT_MS 60000u

typedef struct {
    uint64_t from; /* INV_FEED_FROM_END: "$" */
    size_t count;
    bool block;
    uint64_t block_ms; /* 0: no deadline */
    feed_filter filter;
} feed_request;

/* ---- records ---------------------------------------------------------------- *
 * The hot path of the feed (a follower reads >= 1M records/s): a record is
 * sized first, its room reserved once, then written straight into the
 * reply buffer, keys copied from a table of encoded names, numbers by
 * resp_fmt_u64. The bytes are resp.c's: a key is a bulk string, a number
 * an integer, a map '%' (RESP3) or a flat array of pairs (RESP2), true
 * '#t' (RESP3) or ':1' (RESP2). */

/* The field names, encoded once ("$8\r\nposition\r\n"). */
enum {
    K_POSITION,
    K_GROUP,
    K_TIME_MS,
    K_KIND,
    K_ITEM,
    K_LOCATION,
    K_DELETED,
    K_HOLD,
    K_REQUEST_ID,
    K_ACTOR,
    K_CHANGES,
    K_DELTA,
    K_AFTER,
    K_REVISION,
    K_CREATED,
    K_REASON,
    K_REF,
    K_QTY, /* then the INV_QTY_NAMES quantity names */
    K_COUNT = K_QTY + INV_QTY_NAMES
};
#define KEY_ENC_MAX 32u /* "$NN\r\n" + a name of at most 24 bytes + "\r\n" */
#define NUM_ENC_MAX 24u /* ':' + sign + 20 digits + "\r\n" */
#define RECORD_PAIRS_MAX 11u /* the most fields of a record or a change */
/* A record's or a change's bytes besides its strings and nested maps. */
#define MAP_ENC_MAX (NUM_ENC_MAX + RECORD_PAIRS_MAX * (KEY_ENC_MAX + NUM_ENC_MAX + KEY_ENC_MAX))
#define QTY_MAP_ENC_MAX (NUM_ENC_MAX + INV_QTY_NAMES * (KEY_ENC_MAX + NUM_ENC_MAX))

static const char *const g_key_names[K_QTY] = {
    "position", "group",    "time_ms",    "kind",   "item",    "location",
    "deleted",  "hold",     "request_id", "actor",  "changes", "delta",
    "after",    "revision", "created",    "reason", "ref"};
static char g_key_enc[K_COUNT][KEY_ENC_MAX];
static uint8_t g_key_len[K_COUNT];
static pthread_once_t g_keys_once = PTHREAD_ONCE_INIT;

static void keys_build(void)
{
    for (int k = 0; k < K_COUNT; k++) {
        const char *name = k < K_QTY ? g_key_names[k] : inv_qty_name_str((inv_qty_name)(k - K_QTY));
        assert(name != NULL); /* every key and quantity has a name */
        int n = snprintf(g_key_enc[k], KEY_ENC_MAX, "$%zu\r\n%s\r\n", strlen(name), name);
        assert(n > 0 && (unsigned)n < KEY_ENC_MAX);
        g_key_len[k] = (uint8_t)n;
    }
    assert(g_key_len[K_POSITION] > 0 && g_key_len[K_COUNT - 1] > 0);
}

/* A writer into room already reserved. */
typedef struct {
    char *p;
    int proto;
} wr;

/* Copies KEY_ENC_MAX bytes whatever the key's length (two 16-byte moves,
 * no length-dependent copy): every key is counted at KEY_ENC_MAX in the
 * room reserved, so the bytes past it are in the room and overwritten
 * next. */
static inline void w_key(wr *w, int k)
{
    assert(k >= 0 && k < K_COUNT);
    memcpy(w->p, g_key_enc[k], KEY_ENC_MAX);
    w->p += g_key_len[k];
}

/* v in decimal; the small numbers that most fields hold (quantities,
 * counts, ids of a small catalog) take the short way, inline. */
static inline void w_u64(wr *w, uint64_t v)
{
    assert(w->p != NULL);
    if (v < 10) {
        *w->p++ = (char)('0' + v);
        return;
    }
    if (v < 100) {
        *w->p++ = (char)('0' + v / 10);
        *w->p++ = (char)('0' + v % 10);
        return;
    }
    w->p += resp_fmt_u64(w->p, v);
}

static inline void w_num(wr *w, char type, int64_t v)
{
    assert(type == ':' || type == '$' || type == '*' || type == '%');
    *w->p++ = type;
    if (v < 0) {
        *w->p++ = '-';
        w_u64(w, (uint64_t)0 - (uint64_t)v);
    } else {
        w_u64(w, (uint64_t)v);
    }
    *w->p++ = '\r';
    *w->p++ = '\n';
}

static inline void w_map(wr *w, size_t pairs)
{
    assert(pairs <= RECORD_PAIRS_MAX); /* what MAP_ENC_MAX counted */
    if (w->proto >= 3)
        w_num(w, '%', (int64_t)pairs);
    else
        w_num(w, '*', (int64_t)(2 * pairs));
}

static inline void w_bulk(wr *w, const char *s, size_t n)
{
    assert(s != NULL || n == 0);
    w_num(w, '$', (int64_t)n);
    memcpy(w->p, s, n);
    w->p += n;
    *w->p++ = '\r';
    *w->p++ = '\n';
}

/* An id as a bulk string (ids are never integers on the wire). */
static inline void w_id(wr *w, uint64_t id)
{
    char digits[24];
    wr d = {digits, w->proto};
    w_u64(&d, id);
    assert(d.p > digits && d.p - digits <= 20); /* a u64 has 1..20 digits */
    w_bulk(w, digits, (size_t)(d.p - digits));
}

static inline void w_str(wr *w, const char *s)
{
    assert(s != NULL);
    w_bulk(w, s, strlen(s));
}

/* The optional fields: written only when set (the caller counted them). */
static inline void w_opt_bulk(wr *w, int k, const char *s, size_t n)
{
    assert(s != NULL || n == 0); /* a length only with its bytes */
    if (s == NULL)
        return;
    w_key(w, k);
    w_bulk(w, s, n);
}
static inline void w_opt_true(wr *w, int k, bool set)
{
    assert(k == K_CREATED || k == K_DELETED); /* the two flag fields */
    if (!set)
        return;
    w_key(w, k);
    if (w->proto >= 3) {
        memcpy(w->p, "#t\r\n", 4);
        w->p += 4;
    } else {
        memcpy(w->p, ":1\r\n", 4);
        w->p += 4;
    }
}

static const char *kind_str(inv_feed_kind k)
{
    const char *s = inv_feed_kind_str(k);
    assert(s == NULL || s[0] != '\0');
    return s ? s : "unknown";
}

static bool filter_any(const feed_filter *f)
{
    assert(f != NULL);
    return f->has_item || f->has_location;
}

static bool change_matches(const feed_filter *f, const inv_feed_change *c)
{
    assert(f != NULL && c != NULL);
    return (!f->has_item || c->item == f->item) && (!f->has_location || c->location == f->location);
}

/* A map of the named quantities whose bit is in mask: name -> v[q]. */
static void w_qty_map(wr *w, const int64_t *v, uint32_t mask)
{
    size_t n = 0;
    assert(v != NULL && mask < (1u << INV_QTY_NAMES));
    for (uint32_t m = mask; m != 0; m &= m - 1)
        n++;
    assert(n <= INV_QTY_NAMES); /* what QTY_MAP_ENC_MAX counted */
    w_map(w, n);
    for (int q = 0; q < INV_QTY_NAMES; q++)
        if (mask & (1u << q)) {
            w_key(w, K_QTY + q);
            w_num(w, ':', v[q]);
        }
}

static uint32_t nonzero_mask(const int64_t *delta)
{
    uint32_t m = 0;
    assert(delta != NULL);
    for (int q = 0; q < INV_QTY_NAMES; q++)
        m |= (uint32_t)(delta[q] != 0) << q;
    assert(m < (1u << INV_QTY_NAMES));
    return m;
}

/* One level change: kind, item, location, delta (the non-zero ones), after
 * (the known ones), revision, then created, deleted, hold, reason and ref
 * where set. */
static void w_change(wr *w, const inv_feed_change *c)
{
    const uint32_t all = (1u << INV_QTY_NAMES) - 1;
    assert(w != NULL && c != NULL);
    const char *reason = inv_reason_str(c->reason);
    size_t pairs = 6 + (size_t)c->created + (size_t)c->deleted + (c->hold_id != NULL) +
                   (reason != NULL) + (c->ref != NULL);
    assert(pairs <= RECORD_PAIRS_MAX);
    w_map(w, pairs);
    w_key(w, K_KIND);
    w_str(w, kind_str(c->kind));
    w_key(w, K_ITEM);
    w_id(w, c->item);
    w_key(w, K_LOCATION);
    w_id(w, c->location);
    w_key(w, K_DELTA);
    w_qty_map(w, c->delta, nonzero_mask(c->delta));
    w_key(w, K_AFTER);
    w_qty_map(w, c->after, c->after_known & all);
    w_key(w, K_REVISION);
    w_num(w, ':', (int64_t)c->revision);
    w_opt_true(w, K_CREATED, c->created);
    w_opt_true(w, K_DELETED, c->deleted);
    w_opt_bulk(w, K_HOLD, c->hold_id, c->hold_id_len);
    w_opt_bulk(w, K_REASON, reason, reason ? strlen(reason) : 0);
    w_opt_bulk(w, K_REF, c->ref, c->ref_len);
}

/* The records whose item or location field names their subject. */
static bool kind_has_item(inv_feed_kind k)
{
    return k == INV_FEED_ITEM;
}
static bool kind_has_location(inv_feed_kind k)
{
    return k == INV_FEED_LOCATION || k == INV_FEED_DEFAULT_LOCATION;
}

/* The most bytes rec can take (its kept changes only: f). */
static size_t record_bound(const inv_feed_record *rec, const feed_filter *f)
{
    assert(rec != NULL && (rec->changes != NULL || rec->n_changes == 0));
    size_t n = MAP_ENC_MAX + rec->hold_id_len + rec->request_id_len + rec->actor_len;
    for (size_t i = 0; i < rec->n_changes; i++)
        if (f == NULL || !filter_any(f) || change_matches(f, &rec->changes[i]))
            n += MAP_ENC_MAX + 2 * QTY_MAP_ENC_MAX + rec->changes[i].hold_id_len +
                 rec->changes[i].ref_len;
    assert(n >= MAP_ENC_MAX);
    return n;
}

/* Appends rec as a map, keeping only the changes f matches (f NULL: all).
 * Returns false, writing nothing, when a filter leaves no change (or the
 * buffer could not grow: o->failed). */
static bool write_record(resp_out *o, const inv_feed_record *rec, const feed_filter *f)
{
    size_t kept = rec->n_changes;
    assert(reply_buf_ok(o) && rec != NULL);
    if (f != NULL && filter_any(f)) {
        kept = 0;
        for (size_t i = 0; i < rec->n_changes; i++)
            kept += change_matches(f, &rec->changes[i]);
        if (kept == 0)
            return false;
    }
    size_t bound = record_bound(rec, f);
    if (resp_out_reserve(o, bound) != 0)
        return false;
    pthread_once(&g_keys_once, keys_build);
    wr w = {o->buf + o->len, o->proto};
    bool has_item = kind_has_item(rec->kind), has_loc = kind_has_location(rec->kind);
    size_t pairs = 5 + (size_t)has_item + (size_t)has_loc + (size_t)rec->deleted +
                   (rec->hold_id != NULL) + (rec->request_id != NULL) + (rec->actor != NULL);
    w_map(&w, pairs);
    w_key(&w, K_POSITION);
    w_num(&w, ':', (int64_t)rec->position);
    w_key(&w, K_GROUP);
    w_num(&w, ':', (int64_t)rec->group);
    w_key(&w, K_TIME_MS);
    w_num(&w, ':', rec->time_ms);
    w_key(&w, K_KIND);
    w_str(&w, kind_str(rec->kind));
    if (has_item) {
        w_key(&w, K_ITEM);
        w_id(&w, rec->item);
    }
    if (has_loc) {
        w_key(&w, K_LOCATION);
        w_id(&w, rec->location);
    }
    w_opt_true(&w, K_DELETED, rec->deleted);
    w_opt_bulk(&w, K_HOLD, rec->hold_id, rec->hold_id_len);
    w_opt_bulk(&w, K_REQUEST_ID, rec->request_id, rec->request_id_len);
    w_opt_bulk(&w, K_ACTOR, rec->actor, rec->actor_len);
    w_key(&w, K_CHANGES);
    w_num(&w, '*', (int64_t)kept);
    for (size_t i = 0; i < rec->n_changes; i++)
        if (f == NULL || !filter_any(f) || change_matches(f, &rec->changes[i]))
            w_change(&w, &rec->changes[i]);
    assert(w.p <= o->buf + o->len + bound); /* record_bound holds */
    o->len = (size_t)(w.p - o->buf);
    return true;
}

/* ---- pages: [next_position, [record ...]] ------------------------------------ */

/* The records are written before their count is known: the header's room
 * is reserved first and the body slid up against the real header after. */
typedef struct {
    size_t start; /* o->len at page_begin: the header's place */
    size_t n; /* records written */
} feed_page;

static void page_begin(resp_out *o, feed_page *p)
{
    assert(reply_buf_ok(o) && p != NULL);
    p->start = o->len;
    p->n = 0;
    if (resp_out_reserve(o, FEED_PAGE_HEADER_MAX) == 0)
        o->len += FEED_PAGE_HEADER_MAX;
    /* the header's room, or a failed buffer the connection drops */
    assert(o->failed || (o->len == p->start + FEED_PAGE_HEADER_MAX && o->len <= o->cap));
}

/* Forgets the page (an error or a parked read answers instead). */
static void page_drop(resp_out *o, const feed_page *p)
{
    assert(reply_buf_ok(o) && p != NULL);
    assert(o->failed || o->len >= p->start + FEED_PAGE_HEADER_MAX); /* page_begin ran */
    if (!o->failed)
        o->len = p->start;
}

static void page_end(resp_out *o, const feed_page *p, uint64_t next)
{
    char h[FEED_PAGE_HEADER_MAX];
    if (o->failed)
        return; /* the connection is dropped: see resp_out.failed */
    int hn = snprintf(h, sizeof h, "*2\r\n:%llu\r\n*%zu\r\n", (unsigned long long)next, p->n);
    assert(hn > 0 && (size_t)hn <= FEED_PAGE_HEADER_MAX);
    size_t body = p->start + FEED_PAGE_HEADER_MAX;
    assert(o->len >= body);
    memcpy(o->buf + p->start, h, (size_t)hn);
    memmove(o->buf + p->start + hn, o->buf + body, o->len - body);
    o->len -= FEED_PAGE_HEADER_MAX - (size_t)hn;
    assert(o->len >= p->start + (size_t)hn && reply_buf_ok(o));
}

/* Reads records from f into the page: those f matches, up to count,
 * examining at most FEED_SCAN_MAX. INV_OK: stopped at count or at the
 * scan bound; INV_ENOTFOUND: nothing more is readable yet; else the
 * reader's error. */
static int page_fill(resp_out *o, feed_page *p, inv_feed *f, const feed_filter *flt, size_t count)
{
    inv_feed_record rec;
    int rc = INV_OK;
    assert(count >= 1 && count <= INV_FEED_COUNT_MAX);
    for (size_t scanned = 0; p->n < count && scanned < FEED_SCAN_MAX && !o->failed; scanned++) {
        rc = inv_feed_next(f, &rec);
        if (rc != INV_OK)
            break;
        p->n += write_record(o, &rec, flt);
    }
    assert(p->n <= count);
    return rc;
}

/* ---- errors ------------------------------------------------------------------- */

/* The feed reads the journal: none in memory. -1 after the error reply. */
static int journal_or_reply(session *s, resp_out *o, const char *cmd)
{
    assert(session_ok(s) && reply_buf_ok(o) && cmd != NULL);
    if (s->ctx->cfg->data_dir != NULL)
        return 0;
    resp_w_errorf(o,
                  "INVALID %s reads the journal; invcored runs --in-memory "
                  "(no journal, no history)",
                  cmd);
    return -1;
}

/* A reader's or a history's error: retention's INV_ELIMIT says where the
 * history starts now; a record that does not decode, about where. */
static void reply_feed_error(session *s, resp_out *o, int rc, uint64_t after)
{
    assert(session_ok(s) && reply_buf_ok(o) && s->e != NULL);
    assert(rc != INV_OK); /* only an error is worded */
    if (rc == INV_ELIMIT) {
        resp_w_errorf(o, "LIMIT history starts at %llu",
                      (unsigned long long)inv_feed_oldest_position(s->e));
        return;
    }
    if (rc == INV_EINVALID) {
        resp_w_errorf(o, "INVALID a journal record near position %llu does not decode",
                      (unsigned long long)after);
        return;
    }
    reply_engine_error(o, rc);
}

/* COUNT n: 1 .. INV_FEED_COUNT_MAX. -1 after the error reply. */
static int count_or_reply(resp_out *o, const resp_arg *a, size_t *count)
{
    uint64_t c;
    assert(reply_buf_ok(o) && a != NULL && count != NULL);
    if (arg_u64_or_reply(o, a, "COUNT", &c) != 0)
        return -1;
    if (c == 0 || c > INV_FEED_COUNT_MAX) {
        resp_w_errorf(o, "%s COUNT must be 1..%u", c == 0 ? "INVALID" : "LIMIT",
                      (unsigned)INV_FEED_COUNT_MAX);
        return -1;
    }
    *count = (size_t)c;
    assert(*count >= 1 && *count <= INV_FEED_COUNT_MAX);
    return 0;
}

/* An option given twice: -1 after the error reply. */
static int once_or_reply(resp_out *o, unsigned *seen, unsigned bit, const resp_arg *key)
{
    assert(reply_buf_ok(o) && seen != NULL && key != NULL);
    assert(bit != 0 && (bit & (bit - 1)) == 0); /* one OPT_ flag */
    if (*seen & bit) {
        resp_w_errorf(o, "INVALID option %.*s given twice", echo_len(key, CMD_NAME_ECHO_MAX),
                      key->ptr);
        return -1;
    }
    *seen |= bit;
    return 0;
}

/* ---- sessions --------------------------------------------------------------- */

void feed_session_free(session *s)
{
    assert(s != NULL);
    struct feed_session *fs = s->feed;
    if (fs == NULL)
        return;
    assert(!fs->waiting || fs->reader != NULL);
    inv_feed_close(fs->reader);
    free(fs);
    s->feed = NULL;
    assert(s->feed == NULL);
}

static void reader_close(struct feed_session *fs)
{
    assert(fs != NULL);
    inv_feed_close(fs->reader);
    fs->reader = NULL;
    fs->waiting = false;
}

/* The session's reader, positioned after from: the kept one when it stands
 * there, else a new one. -1 after the error reply. */
static int reader_at_or_reply(session *s, resp_out *o, uint64_t from)
{
    struct feed_session *fs = s->feed;
    inv_engine *e = s->e;
    assert(fs != NULL && !fs->waiting);
    assert(e != NULL && reply_buf_ok(o)); /* FEED.READ is not CMD_NOTENANT */
    if (fs->reader != NULL && from != INV_FEED_FROM_END && inv_feed_position(fs->reader) == from)
        return 0;
    reader_close(fs);
    int rc = inv_feed_open(e, from, &fs->reader);
    if (rc == INV_OK) {
        assert(fs->reader != NULL);
        return 0;
    }
    fs->reader = NULL;
    uint64_t end = inv_feed_end_position(e);
    if (rc == INV_EINVALID && from > end)
        resp_w_errorf(o, "INVALID FROM %llu is beyond the end of the journal (%llu)",
                      (unsigned long long)from, (unsigned long long)end);
    else if (rc == INV_EINVALID)
        resp_w_errorf(o, "INVALID FROM %llu is not the position of a record",
                      (unsigned long long)from);
    else
        reply_feed_error(s, o, rc, from);
    return -1;
}

/* ---- FEED.READ [FROM pos|$] [COUNT n] [BLOCK ms] [ITEM item] [LOC loc] ------- */

/* The options seen so far (each is taken once). */
enum { OPT_FROM = 1, OPT_COUNT = 2, OPT_BLOCK = 4, OPT_ITEM = 8, OPT_LOC = 16, OPT_BEFORE = 32 };

static int feed_option_or_reply(resp_out *o, const resp_arg *k, const resp_arg *v, feed_request *rq,
                                unsigned *seen)
{
    assert(reply_buf_ok(o) && k != NULL && v != NULL && rq != NULL && seen != NULL);
    if (arg_eq(k, "from")) {
        if (once_or_reply(o, seen, OPT_FROM, k) != 0)
            return -1;
        if (v->len == 1 && v->ptr[0] == '$') {
            rq->from = INV_FEED_FROM_END;
            return 0;
        }
        if (arg_u64_or_reply(o, v, "FROM", &rq->from) != 0)
            return -1;
        if (rq->from == INV_FEED_FROM_END) { /* the API's "$": not a position */
            resp_w_errorf(o, "INVALID FROM %llu is beyond the end of the journal",
                          (unsigned long long)rq->from);
            return -1;
        }
        return 0;
    }
    if (arg_eq(k, "count"))
        return once_or_reply(o, seen, OPT_COUNT, k) != 0 ? -1 : count_or_reply(o, v, &rq->count);
    if (arg_eq(k, "block")) {
        if (once_or_reply(o, seen, OPT_BLOCK, k) != 0 ||
            arg_u64_or_reply(o, v, "BLOCK", &rq->block_ms) != 0)
            return -1;
        if (rq->block_ms > FEED_BLOCK_MS_MAX) {
            resp_w_errorf(o, "LIMIT BLOCK must be 0..%llu ms (0: no timeout)",
                          (unsigned long long)FEED_BLOCK_MS_MAX);
            return -1;
        }
        rq->block = true;
        return 0;
    }
    if (arg_eq(k, "item")) {
        rq->filter.has_item = true;
        return once_or_reply(o, seen, OPT_ITEM, k) != 0
                   ? -1
                   : arg_u64_or_reply(o, v, "ITEM", &rq->filter.item);
    }
    if (arg_eq(k, "loc")) {
        rq->filter.has_location = true;
        return once_or_reply(o, seen, OPT_LOC, k) != 0
                   ? -1
                   : arg_u64_or_reply(o, v, "LOC", &rq->filter.location);
    }
    resp_w_errorf(o, "INVALID unknown option '%.*s' (FROM, COUNT, BLOCK, ITEM, LOC)",
                  echo_len(k, CMD_NAME_ECHO_MAX), k->ptr);
    return -1;
}

/* The session's feed state, made on first use. NULL after the error reply. */
static struct feed_session *feed_session_or_reply(session *s, resp_out *o)
{
    assert(session_ok(s) && reply_buf_ok(o));
    /* a parked session runs no request until it is answered */
    assert(s->feed == NULL || !s->feed->waiting);
    if (s->feed == NULL)
        s->feed = inv_calloc(1, sizeof *s->feed);
    if (s->feed == NULL)
        reply_engine_error(o, INV_ENOMEM);
    return s->feed;
}

/* Parks the read: nothing is readable yet. No connection (the fuzzer):
 * answers as a timeout would. */
static void feed_park(session *s, resp_out *o, const feed_request *rq, uint64_t from)
{
    struct feed_session *fs = s->feed;
    assert(fs != NULL && fs->reader != NULL && !fs->waiting && rq != NULL);
    assert(rq->count >= 1 && rq->count <= INV_FEED_COUNT_MAX);
    if (s->conn_ops == NULL || s->conn_ops->block == NULL) {
        resp_w_null(o);
        return;
    }
    fs->waiting = true;
    fs->count = rq->count;
    fs->filter = rq->filter;
    fs->parked_from = from;
    fs->parked_block = rq->block;
    if (s->conn_ops->block(s->conn, rq->block ? rq->block_ms : FEED_START_WAIT_MS) != 0) {
        fs->waiting = false;
        resp_w_errorf(o, "LIMIT too many clients wait in FEED.READ BLOCK on this "
                         "event loop; retry, or read without BLOCK");
    }
}

static void cmd_feed_read(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    feed_request rq = {.from = 0, .count = FEED_COUNT_DEFAULT};
    unsigned seen = 0;
    assert(handler_call_ok(s, o, v, n, 1, 11));
    assert(s->e != NULL); /* not CMD_NOTENANT: the gate resolved the tenant */
    for (size_t i = 1; i + 1 < n; i += 2)
        if (feed_option_or_reply(o, &v[i], &v[i + 1], &rq, &seen) != 0)
            return;
    if (journal_or_reply(s, o, "FEED.READ") != 0)
        return;
    struct feed_session *fs = feed_session_or_reply(s, o);
    if (fs == NULL || reader_at_or_reply(s, o, rq.from) != 0)
        return;
    uint64_t from = inv_feed_position(fs->reader); /* "$" resolved */
    feed_page p;
    page_begin(o, &p);
    int rc = page_fill(o, &p, fs->reader, &rq.filter, rq.count);
    if (rc != INV_OK && rc != INV_ENOTFOUND) {
        page_drop(o, &p);
        reply_feed_error(s, o, rc, inv_feed_position(fs->reader));
        reader_close(fs);
        return;
    }
    /* Nothing yet: BLOCK waits for records; "$" without BLOCK waits (on
     * the loop, parked) only until the changes made before it are passed
     * over, so that its next position excludes them. */
    if (p.n == 0 && rc == INV_ENOTFOUND && (rq.block || !inv_feed_started(fs->reader))) {
        page_drop(o, &p);
        feed_park(s, o, &rq, from);
        return;
    }
    page_end(o, &p, inv_feed_position(fs->reader));
}

bool command_feed_resume(session *s, resp_out *o, bool timed_out)
{
    struct feed_session *fs = s->feed;
    assert(fs != NULL && fs->waiting && fs->reader != NULL);
    assert(session_ok(s) && reply_buf_ok(o));
    feed_page p;
    page_begin(o, &p);
    int rc = page_fill(o, &p, fs->reader, &fs->filter, fs->count);
    if (rc != INV_OK && rc != INV_ENOTFOUND) {
        page_drop(o, &p);
        reply_feed_error(s, o, rc, inv_feed_position(fs->reader));
        reader_close(fs);
        return true;
    }
    uint64_t next = inv_feed_position(fs->reader);
    if (p.n == 0 && rc == INV_ENOTFOUND) {
        bool started = inv_feed_started(fs->reader);
        if (!fs->parked_block && (started || timed_out)) {
            page_end(o, &p, next); /* "$" without BLOCK: an empty page */
            fs->waiting = false;
            return true;
        }
        if (!timed_out) {
            page_drop(o, &p); /* o as it was: still parked */
            return false;
        }
        /* nil, as XREAD; but a filter that skipped records meanwhile
         * answers an empty page, so the reader does not examine them again */
        if (next == fs->parked_from) {
            page_drop(o, &p);
            resp_w_null(o);
            fs->waiting = false;
            return true;
        }
    }
    page_end(o, &p, next);
    fs->waiting = false;
    return true;
}

/* ---- LEVEL.HISTORY item loc [COUNT n] [BEFORE pos] -------------------------- */

static void cmd_level_history(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    uint64_t item, loc, before = 0;
    size_t count = FEED_COUNT_DEFAULT;
    unsigned seen = 0;
    assert(handler_call_ok(s, o, v, n, 3, 7));
    assert(s->e != NULL); /* not CMD_NOTENANT: the gate resolved the tenant */
    if (arg_u64_or_reply(o, &v[1], "item", &item) != 0 ||
        arg_u64_or_reply(o, &v[2], "location", &loc) != 0)
        return;
    for (size_t i = 3; i + 1 < n; i += 2) {
        int bad;
        if (arg_eq(&v[i], "count"))
            bad = once_or_reply(o, &seen, OPT_COUNT, &v[i]) || count_or_reply(o, &v[i + 1], &count);
        else if (arg_eq(&v[i], "before"))
            bad = once_or_reply(o, &seen, OPT_BEFORE, &v[i]) ||
                  arg_u64_or_reply(o, &v[i + 1], "BEFORE", &before);
        else {
            resp_w_errorf(o, "INVALID unknown option '%.*s' (COUNT, BEFORE)",
                          echo_len(&v[i], CMD_NAME_ECHO_MAX), v[i].ptr);
            return;
        }
        if (bad)
            return;
    }
    if (journal_or_reply(s, o, "LEVEL.HISTORY") != 0)
        return;
    inv_feed_page *page = NULL;
    /* rec_out is an array of nrec record pointers into the page (as
     * core/feed.c fills it and tests/test_feed.c reads it: "rec_out[i]
     * points into *page") */
    const inv_feed_record *const *recs = NULL;
    size_t nrec = 0;
    uint64_t next_before = 0;
    int rc = inv_level_history(s->e, item, loc, before, count, &page, &recs, &nrec, &next_before);
    if (rc != INV_OK) {
        inv_feed_page_free(page);
        reply_feed_error(s, o, rc, before);
        return;
    }
    assert(nrec <= count);
    assert(recs != NULL || nrec == 0);
    feed_page p;
    page_begin(o, &p);
    for (size_t i = 0; i < nrec; i++)
        p.n += write_record(o, recs[i], NULL);
    page_end(o, &p, next_before);
    inv_feed_page_free(page);
}

/* ---- the commands of this file (rows: cmd_internal.h) ---------------------- */

/* FEED.READ is no MULTI read: it may park its connection. */
const cmd_def cmd_feed_rows[] = {
    {"feed.read", 1, 11, 1, 2, 0, cmd_feed_read,
     "FEED.READ [FROM pos|$] [COUNT n] [BLOCK ms] [ITEM item] [LOC loc]"},
    {"level.history", 3, 7, 3, 2, CMD_READONLY, cmd_level_history,
     "LEVEL.HISTORY item loc [COUNT n] [BEFORE pos]"},
};
const size_t cmd_feed_rows_n = sizeof cmd_feed_rows / sizeof cmd_feed_rows[0];
