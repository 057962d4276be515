/*
 * repl_log.c — the replicated journal log in etcd (repl_log.h has the
 * layout and the contract).
 *
 * The append is one txn: compares (leader's create_revision == term, the
 * entry key absent, the head's value between BE(first) and BE(first + 1),
 * i.e. its end == first) and two puts (entry, head). A txn that did not
 * apply is diagnosed by reading the entry, the head and the leader key
 * (append_resolve): our own entry already there is an applied earlier
 * attempt (INV_OK); a missing head means the cluster's first entry, which
 * re-runs with "head absent" instead; anything else is a conflict.
 *
 * The reader is a small state machine with two phases: while r->w is NULL
 * it reads the expected key with a get (sync_step), one entry per call;
 * once that key is absent at revision R (and the head says the log does
 * not already extend past it) it watches the log prefix from R + 1
 * (watch_step). A watch that ends sends it back to gets, which read what
 * the watch may have missed; etcd's history is not needed for that, so a
 * compaction costs a resync, not the follower.
 *
 * Invariants: r->expected is the end of the last delivered entry (or
 * from), a multiple of REPL_LOG_ALIGN; r->term_max the highest term
 * delivered; once r->final_rc is set, nothing changes but the message.
 */
#include "server/repl_log.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "alloc.h"
#include "clock.h"
#include "fileio.h"

#define ENTRY_MAGIC "INVRLOG1"
#define HEAD_MAGIC "INVRHEAD"
#define MAGIC_BYTES 8u
#define POS_HEX_DIGITS 16u
/* The bytes of an entry's header that its checksum covers. */
#define ENTRY_SUMMED_BYTES 32u
#define HEAD_SUMMED_BYTES 24u

/* Steps of the reader, besides INV_OK and the INV_E* codes. */
#define STEP_WATCHING 1 /* sync found the log's end: a watch now runs */
#define STEP_SKIP 2 /* the event was not an entry to deliver */
#define STEP_RESYNC 3 /* the watch ended: back to gets */
/* append_resolve: the txn may apply if run again. */
#define RESOLVE_RETRY 1

_Static_assert(REPL_LOG_ENTRY_PAYLOAD_MAX % REPL_LOG_ALIGN == 0 && REPL_LOG_ENTRY_PAYLOAD_MAX > 0,
               "the payload limit is aligned");
/* The whole txn's keys and values must stay within etcd.c's bound (and
 * etcd's): the entry, the head, three keys more in compares, two 8-byte
 * compare values. */
_Static_assert(REPL_LOG_ENTRY_HEADER_BYTES + REPL_LOG_ENTRY_PAYLOAD_MAX + REPL_LOG_HEAD_BYTES +
                       6u * REPL_LOG_KEY_MAX + 16u <=
                   ETCD_REQUEST_BYTES_MAX - 1024u,
               "an append txn fits one etcd request");

/* ---- small helpers ----------------------------------------------------------- */

static void put_le64(uint8_t *p, uint64_t v)
{
    for (unsigned i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (unsigned i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

/* A cluster's keys, formatted once. */
typedef struct {
    char prefix[REPL_LOG_KEY_MAX]; /* "/C/log/" */
    char head[REPL_LOG_KEY_MAX];
    char leader[REPL_LOG_KEY_MAX];
    size_t plen, hlen, llen;
} log_keys;

static bool keys_of(const char *cluster, log_keys *k)
{
    assert(k != NULL);
    memset(k, 0, sizeof *k);
    if (!repl_cluster_valid(cluster))
        return false;
    k->plen = (size_t)snprintf(k->prefix, sizeof k->prefix, "/%s/log/", cluster);
    k->hlen = (size_t)snprintf(k->head, sizeof k->head, "/%s/head", cluster);
    k->llen = (size_t)snprintf(k->leader, sizeof k->leader, "/%s/leader", cluster);
    assert(k->plen + POS_HEX_DIGITS < sizeof k->prefix && k->llen < sizeof k->leader);
    return true;
}

/* The entry key of pos (keys_of's prefix + 16 hex digits): its length. */
static size_t entry_key(const log_keys *k, uint64_t pos, char out[REPL_LOG_KEY_MAX])
{
    int n = snprintf(out, REPL_LOG_KEY_MAX, "%s%016" PRIx64, k->prefix, pos);
    assert(n > 0 && (size_t)n == k->plen + POS_HEX_DIGITS);
    return (size_t)n;
}

/* The position of an entry key: exactly the prefix and 16 lowercase hex
 * digits. false for anything else. */
static bool key_position(const log_keys *k, const uint8_t *key, size_t klen, uint64_t *pos)
{
    assert(k != NULL && pos != NULL);
    if (key == NULL || klen != k->plen + POS_HEX_DIGITS || memcmp(key, k->prefix, k->plen) != 0)
        return false;
    uint64_t v = 0;
    for (size_t i = k->plen; i < klen; i++) {
        uint8_t ch = key[i];
        unsigned d;
        if (ch >= '0' && ch <= '9')
            d = (unsigned)(ch - '0');
        else if (ch >= 'a' && ch <= 'f')
            d = (unsigned)(ch - 'a' + 10);
        else
            return false;
        v = (v << 4) | d;
    }
    *pos = v;
    return true;
}

size_t repl_log_key(char *out, size_t cap, const char *cluster, uint64_t pos)
{
    log_keys k;
    if (out == NULL || cap < REPL_LOG_KEY_MAX || !keys_of(cluster, &k))
        return 0;
    return entry_key(&k, pos, out);
}

/* ---- entries and the head ------------------------------------------------------ */

static bool entry_args_ok(uint64_t term, uint64_t first, size_t len)
{
    return term >= 1 && term <= (uint64_t)INT64_MAX && len >= 1 &&
           len <= REPL_LOG_ENTRY_PAYLOAD_MAX && first % REPL_LOG_ALIGN == 0 &&
           len % REPL_LOG_ALIGN == 0 && first <= UINT64_MAX - len;
}

/* XXH3-64 of the header's first ENTRY_SUMMED_BYTES and then the payload. */
static uint64_t entry_sum(const uint8_t *header, const uint8_t *payload, size_t len)
{
    XXH3_state_t st;
    assert(header != NULL && (payload != NULL || len == 0));
    XXH3_64bits_reset(&st);
    XXH3_64bits_update(&st, header, ENTRY_SUMMED_BYTES);
    XXH3_64bits_update(&st, payload, len);
    return XXH3_64bits_digest(&st);
}

int repl_log_entry_encode(uint8_t *out, size_t cap, uint64_t term, uint64_t first,
                          const void *payload, size_t len)
{
    if (out == NULL || payload == NULL || !entry_args_ok(term, first, len) ||
        cap < REPL_LOG_ENTRY_HEADER_BYTES + len)
        return INV_EINVALID;
    memcpy(out, ENTRY_MAGIC, MAGIC_BYTES);
    put_le64(out + 8, term);
    put_le64(out + 16, first);
    put_le64(out + 24, first + len);
    memcpy(out + REPL_LOG_ENTRY_HEADER_BYTES, payload, len);
    put_le64(out + 32, entry_sum(out, out + REPL_LOG_ENTRY_HEADER_BYTES, len));
    repl_log_entry e;
    /* what was encoded checks as it must */
    assert(repl_log_entry_check(out, REPL_LOG_ENTRY_HEADER_BYTES + len, first, &e) == NULL &&
           e.end == first + len);
    return INV_OK;
}

const char *repl_log_entry_check(const uint8_t *value, size_t vlen, uint64_t key_pos,
                                 repl_log_entry *out)
{
    assert(out != NULL);
    memset(out, 0, sizeof *out);
    if (value == NULL || vlen <= REPL_LOG_ENTRY_HEADER_BYTES)
        return "no payload after the header (or shorter than it)";
    if (memcmp(value, ENTRY_MAGIC, MAGIC_BYTES) != 0)
        return "bad magic";
    uint64_t term = get_le64(value + 8), first = get_le64(value + 16), end = get_le64(value + 24);
    size_t len = vlen - REPL_LOG_ENTRY_HEADER_BYTES;
    if (first != key_pos)
        return "first does not match the key";
    if (end <= first || end - first != len)
        return "end - first does not match the payload length";
    if (first % REPL_LOG_ALIGN != 0 || len % REPL_LOG_ALIGN != 0)
        return "first or end not aligned";
    if (len > REPL_LOG_ENTRY_PAYLOAD_MAX)
        return "payload over REPL_LOG_ENTRY_PAYLOAD_MAX";
    if (term == 0 || term > (uint64_t)INT64_MAX)
        return "term out of range";
    /* last: it reads every byte, the rest only the header */
    if (get_le64(value + 32) != entry_sum(value, value + REPL_LOG_ENTRY_HEADER_BYTES, len))
        return "checksum mismatch";
    *out = (repl_log_entry){
        .term = term, .first = first, .end = end, .payload = value + REPL_LOG_ENTRY_HEADER_BYTES};
    return NULL;
}

typedef struct {
    uint64_t end, term;
} head_value;

static void head_encode(uint8_t out[REPL_LOG_HEAD_BYTES], uint64_t end, uint64_t term)
{
    assert(term >= 1 && end % REPL_LOG_ALIGN == 0);
    put_be64(out, end);
    memcpy(out + 8, HEAD_MAGIC, MAGIC_BYTES);
    put_be64(out + 16, term);
    put_be64(out + 24, XXH3_64bits(out, HEAD_SUMMED_BYTES));
}

static const char *head_check(const uint8_t *v, size_t vlen, head_value *out)
{
    assert(out != NULL);
    if (v == NULL || vlen != REPL_LOG_HEAD_BYTES)
        return "not 32 bytes";
    if (memcmp(v + 8, HEAD_MAGIC, MAGIC_BYTES) != 0)
        return "bad magic";
    if (get_be64(v + 24) != XXH3_64bits(v, HEAD_SUMMED_BYTES))
        return "checksum mismatch";
    out->end = get_be64(v);
    out->term = get_be64(v + 16);
    if (out->end % REPL_LOG_ALIGN != 0 || out->term == 0 || out->term > (uint64_t)INT64_MAX)
        return "end not aligned or term out of range";
    return NULL;
}

/* Reads and checks the head: INV_OK, INV_ENOTFOUND, INV_EINVALID (corrupt)
 * or etcd's error. *revision: the store's revision of the read. */
static int head_get(etcd_client *c, const log_keys *k, head_value *h, int64_t *revision, char *err,
                    size_t errlen)
{
    etcd_kv kv;
    assert(c != NULL && k != NULL && h != NULL);
    int rc = etcd_get(c, k->head, k->hlen, &kv, revision);
    if (rc == INV_ENOTFOUND)
        return rc;
    if (rc != INV_OK) {
        fileio_errmsg(err, errlen, "repl_log: reading %s: %s", k->head, etcd_errmsg(c));
        return rc;
    }
    const char *why = head_check(kv.value, kv.vlen, h);
    if (why != NULL) {
        fileio_errmsg(err, errlen, "repl_log: %s is corrupt (%zu bytes): %s", k->head, kv.vlen,
                      why);
        rc = INV_EINVALID;
    }
    etcd_kv_clear(&kv);
    return rc;
}

int repl_log_head(etcd_client *c, const char *cluster, uint64_t *end, uint64_t *term,
                  int64_t *revision, char *err, size_t errlen)
{
    log_keys k;
    fileio_errmsg(err, errlen, "%s", "");
    if (c == NULL || !keys_of(cluster, &k)) {
        fileio_errmsg(err, errlen, "repl_log head: no client or a bad cluster name");
        return INV_EINVALID;
    }
    head_value h = {0};
    int64_t rev = 0;
    int rc = head_get(c, &k, &h, &rev, err, errlen);
    if (rc == INV_ENOTFOUND)
        fileio_errmsg(err, errlen, "repl_log: %s: no head yet", k.head);
    if (rc != INV_OK)
        return rc;
    assert(h.term >= 1 && rev > 0);
    if (end != NULL)
        *end = h.end;
    if (term != NULL)
        *term = h.term;
    if (revision != NULL)
        *revision = rev;
    return INV_OK;
}

/* ---- the append ----------------------------------------------------------------- */

/* What one append sends: built once, run up to REPL_LOG_APPEND_ROUNDS_MAX
 * times. */
typedef struct {
    const log_keys *k;
    char key[REPL_LOG_KEY_MAX];
    size_t klen;
    uint64_t term, first;
    const uint8_t *bytes;
    size_t len;
    uint8_t *value; /* the encoded entry, REPL_LOG_ENTRY_HEADER_BYTES + len */
    uint8_t head[REPL_LOG_HEAD_BYTES];
    uint8_t end_lo[8], end_hi[8]; /* BE(first), BE(first + 1) */
} append_req;

/* The fenced txn. fresh: the cluster's first entry (no head) instead of
 * "the head ends at first". */
static int append_txn(etcd_client *c, const append_req *a, bool fresh, bool *applied)
{
    const log_keys *k = a->k;
    assert(a->value != NULL && applied != NULL);
    etcd_compare cmp[4] = {
        {.target = ETCD_TARGET_CREATE,
         .result = ETCD_EQUAL,
         .key = k->leader,
         .klen = k->llen,
         .number = (int64_t)a->term},
        {.target = ETCD_TARGET_CREATE, .result = ETCD_EQUAL, .key = a->key, .klen = a->klen},
        /* the head's value starts with BE(end): > BE(first) and < BE(first
         * + 1) as byte strings means end == first (etcd compares values
         * with bytes.Compare; a missing key fails any value compare) */
        {.target = ETCD_TARGET_VALUE,
         .result = ETCD_GREATER,
         .key = k->head,
         .klen = k->hlen,
         .value = a->end_lo,
         .vlen = 8},
        {.target = ETCD_TARGET_VALUE,
         .result = ETCD_LESS,
         .key = k->head,
         .klen = k->hlen,
         .value = a->end_hi,
         .vlen = 8},
    };
    size_t ncmp = 4;
    if (fresh) {
        cmp[2] = (etcd_compare){
            .target = ETCD_TARGET_CREATE, .result = ETCD_EQUAL, .key = k->head, .klen = k->hlen};
        ncmp = 3;
    }
    etcd_op ops[2] = {
        {.kind = ETCD_OP_PUT,
         .key = a->key,
         .klen = a->klen,
         .value = a->value,
         .vlen = REPL_LOG_ENTRY_HEADER_BYTES + a->len},
        {.kind = ETCD_OP_PUT,
         .key = k->head,
         .klen = k->hlen,
         .value = a->head,
         .vlen = REPL_LOG_HEAD_BYTES},
    };
    return etcd_txn_put_if(c, cmp, ncmp, ops, 2, applied, NULL);
}

/* After a txn that did not apply: is the entry there already, as ours? */
static int resolve_entry(etcd_client *c, const append_req *a, char *err, size_t errlen)
{
    etcd_kv kv;
    int rc = etcd_get(c, a->key, a->klen, &kv, NULL);
    if (rc == INV_ENOTFOUND)
        return rc;
    if (rc != INV_OK) {
        fileio_errmsg(err, errlen, "repl_log append: reading %s: %s", a->key, etcd_errmsg(c));
        return rc;
    }
    repl_log_entry e;
    const char *why = repl_log_entry_check(kv.value, kv.vlen, a->first, &e);
    bool ours = why == NULL && e.term == a->term && e.end == a->first + a->len &&
                memcmp(e.payload, a->bytes, a->len) == 0;
    if (!ours)
        fileio_errmsg(err, errlen,
                      "repl_log append: %s already holds another entry (%s; term %" PRIu64
                      ", end %" PRIu64 ")",
                      a->key, why != NULL ? why : "other bytes", e.term, e.end);
    etcd_kv_clear(&kv);
    return ours ? INV_OK : INV_ECONFLICT;
}

/* The head is where it should be: is the leader key this term's? */
static int resolve_leader(etcd_client *c, const append_req *a, char *err, size_t errlen)
{
    etcd_kv kv;
    int rc = etcd_get(c, a->k->leader, a->k->llen, &kv, NULL);
    if (rc == INV_ENOTFOUND) {
        fileio_errmsg(err, errlen, "repl_log append: no %s: term %" PRIu64 " is not the leader's",
                      a->k->leader, a->term);
        return INV_ECONFLICT;
    }
    if (rc != INV_OK) {
        fileio_errmsg(err, errlen, "repl_log append: reading %s: %s", a->k->leader, etcd_errmsg(c));
        return rc;
    }
    int64_t leader_term = kv.create_revision;
    etcd_kv_clear(&kv);
    if (leader_term != (int64_t)a->term) {
        fileio_errmsg(err, errlen,
                      "repl_log append: term %" PRIu64 " is not the leader's (its term is %" PRId64
                      ")",
                      a->term, leader_term);
        return INV_ECONFLICT;
    }
    return RESOLVE_RETRY; /* all holds now: the log changed under the txn */
}

/* Why the txn did not apply: INV_OK (our entry is there: an earlier try
 * applied), INV_ECONFLICT, RESOLVE_RETRY (*fresh says which txn), or an
 * etcd error (outcome still unknown). */
static int append_resolve(etcd_client *c, const append_req *a, bool *fresh, char *err,
                          size_t errlen)
{
    int rc = resolve_entry(c, a, err, errlen);
    if (rc != INV_ENOTFOUND)
        return rc;
    head_value h = {0};
    rc = head_get(c, a->k, &h, NULL, err, errlen);
    if (rc == INV_ENOTFOUND && !*fresh) {
        *fresh = true; /* the cluster's first entry */
        return RESOLVE_RETRY;
    }
    if (rc != INV_OK && rc != INV_ENOTFOUND)
        return rc;
    *fresh = rc == INV_ENOTFOUND;
    if (rc == INV_OK && h.end != a->first) {
        fileio_errmsg(err, errlen,
                      "repl_log append: the log ends at %" PRIu64 " (term %" PRIu64
                      "), not at %" PRIu64,
                      h.end, h.term, a->first);
        return INV_ECONFLICT;
    }
    return resolve_leader(c, a, err, errlen);
}

int repl_log_append(etcd_client *c, const char *cluster, uint64_t term, uint64_t first,
                    const void *bytes, size_t len, char *err, size_t errlen)
{
    log_keys k;
    fileio_errmsg(err, errlen, "%s", "");
    if (c == NULL || bytes == NULL || !keys_of(cluster, &k) || !entry_args_ok(term, first, len)) {
        fileio_errmsg(err, errlen,
                      "repl_log append: bad client, cluster, term %" PRIu64 ", first %" PRIu64
                      " or length %zu (1..%u, both multiples of %u)",
                      term, first, len, REPL_LOG_ENTRY_PAYLOAD_MAX, REPL_LOG_ALIGN);
        return INV_EINVALID;
    }
    append_req a = {.k = &k, .term = term, .first = first, .bytes = bytes, .len = len};
    a.klen = entry_key(&k, first, a.key);
    a.value = inv_malloc(REPL_LOG_ENTRY_HEADER_BYTES + len);
    if (a.value == NULL) {
        fileio_errmsg(err, errlen, "repl_log append: out of memory for %zu bytes", len);
        return INV_ENOMEM;
    }
    int rc =
        repl_log_entry_encode(a.value, REPL_LOG_ENTRY_HEADER_BYTES + len, term, first, bytes, len);
    assert(rc == INV_OK);
    head_encode(a.head, first + len, term);
    put_be64(a.end_lo, first);
    put_be64(a.end_hi, first + 1);
    bool fresh = false;
    for (unsigned round = 0; round < REPL_LOG_APPEND_ROUNDS_MAX; round++) {
        bool applied = false;
        rc = append_txn(c, &a, fresh, &applied);
        if (rc != INV_OK) {
            bool unknown = rc == INV_EIO || rc == INV_ENOMEM;
            fileio_errmsg(err, errlen, "repl_log append at %" PRIu64 ": %s: %s", first,
                          unknown ? "outcome unknown" : "refused by etcd", etcd_errmsg(c));
            break;
        }
        if (applied)
            break;
        rc = append_resolve(c, &a, &fresh, err, errlen);
        if (rc != RESOLVE_RETRY)
            break;
        rc = INV_ECONFLICT;
        fileio_errmsg(err, errlen,
                      "repl_log append at %" PRIu64 ": the log kept changing (%u tries)", first,
                      REPL_LOG_APPEND_ROUNDS_MAX);
    }
    free(a.value);
    assert(rc <= 0);
    if (rc == INV_OK)
        fileio_errmsg(err, errlen, "%s", "");
    return rc;
}

/* ---- trimming -------------------------------------------------------------------- */

int repl_log_delete_below(etcd_client *c, const char *cluster, uint64_t pos, int64_t *deleted,
                          int64_t *revision, char *err, size_t errlen)
{
    log_keys k;
    char end[REPL_LOG_KEY_MAX];
    fileio_errmsg(err, errlen, "%s", "");
    if (c == NULL || !keys_of(cluster, &k)) {
        fileio_errmsg(err, errlen, "repl_log delete: no client or a bad cluster name");
        return INV_EINVALID;
    }
    size_t elen = entry_key(&k, pos, end);
    /* [prefix, key(pos)): every entry key below pos, and nothing outside
     * the prefix (the head and leader keys sort outside it) */
    int rc = etcd_delete_range(c, k.prefix, k.plen, end, elen, deleted, revision);
    if (rc != INV_OK)
        fileio_errmsg(err, errlen, "repl_log delete below %" PRIu64 ": %s", pos, etcd_errmsg(c));
    return rc;
}

int repl_log_entry_holding(etcd_client *c, const char *cluster, uint64_t pos, uint64_t *first,
                           char *err, size_t errlen)
{
    log_keys k;
    char end[REPL_LOG_KEY_MAX + 1];
    fileio_errmsg(err, errlen, "%s", "");
    if (c == NULL || first == NULL || !keys_of(cluster, &k)) {
        fileio_errmsg(err, errlen, "repl_log holding: no client or a bad cluster name");
        return INV_EINVALID;
    }
    /* [prefix, key(pos) + "\0"): the entry keys at or below pos */
    size_t elen = entry_key(&k, pos, end);
    end[elen++] = '\0';
    etcd_kv kv;
    int rc = etcd_last_key(c, k.prefix, k.plen, end, elen, &kv);
    if (rc == INV_OK && !key_position(&k, kv.key, kv.klen, first)) {
        fileio_errmsg(err, errlen, "repl_log holding %" PRIu64 ": '%.*s' is not an entry key", pos,
                      (int)(kv.klen < 64 ? kv.klen : 64), (const char *)kv.key);
        rc = INV_EINVALID;
    } else if (rc != INV_OK) {
        fileio_errmsg(err, errlen, "repl_log holding %" PRIu64 ": %s", pos, etcd_errmsg(c));
    }
    etcd_kv_clear(&kv);
    assert(rc != INV_OK || *first <= pos);
    return rc;
}

int repl_log_compact(etcd_client *c, int64_t revision, char *err, size_t errlen)
{
    fileio_errmsg(err, errlen, "%s", "");
    if (c == NULL || revision <= 0) {
        fileio_errmsg(err, errlen, "repl_log compact: no client or revision %" PRId64, revision);
        return INV_EINVALID;
    }
    int rc = etcd_compact(c, revision, false);
    if (rc != INV_ELIMIT) {
        if (rc != INV_OK)
            fileio_errmsg(err, errlen, "repl_log compact at %" PRId64 ": %s", revision,
                          etcd_errmsg(c));
        return rc;
    }
    /* INV_ELIMIT is etcd's OUT_OF_RANGE: already compacted (fine) or a
     * future revision (refused): the store's revision tells them apart */
    char msg[REPL_LOG_ERROR_MAX];
    snprintf(msg, sizeof msg, "%s", etcd_errmsg(c));
    etcd_kv kv;
    int64_t now = 0;
    int grc = etcd_get(c, "/", 1, &kv, &now);
    etcd_kv_clear(&kv);
    if (grc != INV_OK && grc != INV_ENOTFOUND) {
        fileio_errmsg(err, errlen, "repl_log compact at %" PRId64 ": %s", revision, msg);
        return rc;
    }
    if (now > 0 && revision <= now)
        return INV_OK;
    fileio_errmsg(err, errlen,
                  "repl_log compact: revision %" PRId64 " is ahead of the store's %" PRId64,
                  revision, now);
    return rc;
}

/* ---- the reader ------------------------------------------------------------------ */

struct repl_log_reader {
    etcd_client *c; /* the reader's own */
    log_keys k;
    uint64_t expected; /* where the next entry must start */
    uint64_t term_max; /* the highest term delivered (0: none yet) */
    etcd_watch *w; /* NULL: reading with gets (sync_step) */
    etcd_kv held; /* the entry last delivered from a get */
    int final_rc; /* INV_OK, or what every call now returns */
    char err[REPL_LOG_ERROR_MAX];
};

static bool reader_ok(const repl_log_reader *r)
{
    return r != NULL && r->c != NULL && r->expected % REPL_LOG_ALIGN == 0 &&
           (r->final_rc == INV_OK || r->final_rc == INV_ELIMIT || r->final_rc == INV_EINVALID ||
            r->final_rc == INV_ECONFLICT);
}

/* An etcd failure the reader reports as transient: the final codes
 * (INV_ELIMIT, INV_EINVALID, INV_ECONFLICT) mean something about the log,
 * so whatever else etcd answered is INV_EIO (INV_ENOMEM stays). */
static int transient(int rc)
{
    assert(rc < 0);
    return rc == INV_ENOMEM ? rc : INV_EIO;
}

/* A final failure: every later call returns rc. */
__attribute__((format(printf, 3, 4))) static int reader_fail(repl_log_reader *r, int rc,
                                                             const char *fmt, ...)
{
    va_list ap;
    assert(reader_ok(r) && (rc == INV_ELIMIT || rc == INV_EINVALID || rc == INV_ECONFLICT));
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof r->err, fmt, ap);
    va_end(ap);
    r->final_rc = rc;
    if (r->w != NULL) { /* nothing more will be read from it */
        etcd_watch_stop(r->w);
        r->w = NULL;
    }
    return rc;
}

repl_log_reader *repl_log_follow(const char *endpoints_csv, uint32_t timeout_ms,
                                 const char *cluster, uint64_t from, char *err, size_t errlen)
{
    log_keys k;
    fileio_errmsg(err, errlen, "%s", "");
    if (!keys_of(cluster, &k) || from % REPL_LOG_ALIGN != 0) {
        fileio_errmsg(
            err, errlen,
            "repl_log follow: cluster name not 1..%u bytes of [A-Za-z0-9_.-], or from %" PRIu64
            " not a multiple of %u",
            REPL_CLUSTER_MAX, from, REPL_LOG_ALIGN);
        return NULL;
    }
    repl_log_reader *r = inv_calloc(1, sizeof *r);
    if (r == NULL) {
        fileio_errmsg(err, errlen, "repl_log follow: out of memory");
        return NULL;
    }
    r->c = etcd_open(endpoints_csv, timeout_ms, err, errlen);
    if (r->c == NULL) {
        free(r);
        return NULL;
    }
    r->k = k;
    r->expected = from;
    assert(reader_ok(r) && r->w == NULL);
    return r;
}

void repl_log_follow_stop(repl_log_reader *r)
{
    if (r == NULL)
        return;
    assert(reader_ok(r));
    etcd_watch_stop(r->w);
    etcd_kv_clear(&r->held);
    etcd_close(r->c);
    free(r);
}

uint64_t repl_log_reader_position(const repl_log_reader *r)
{
    assert(r == NULL || reader_ok(r));
    return r == NULL ? 0 : r->expected;
}

const char *repl_log_reader_errmsg(const repl_log_reader *r)
{
    return r == NULL ? "no reader" : r->err;
}

/* The log moved past r->expected without an entry starting there: either
 * it was trimmed (the first entry left starts above it: INV_ELIMIT) or it
 * does not continue there (INV_ECONFLICT). Final, unless etcd failed. */
typedef struct {
    const log_keys *k;
    bool valid;
    uint64_t pos;
} first_key;

static int first_key_take(void *arg, const etcd_kv *kv)
{
    first_key *f = arg;
    f->valid = key_position(f->k, kv->key, kv->klen, &f->pos);
    return 1; /* the first key is all we want */
}

static int reader_gap(repl_log_reader *r)
{
    first_key f = {.k = &r->k};
    int rc = etcd_range_prefix(r->c, r->k.prefix, r->k.plen, 1, first_key_take, &f, NULL);
    if (rc == INV_OK)
        return reader_fail(r, INV_ELIMIT,
                           "repl_log: the log %s holds no entries any more, "
                           "position %" PRIu64 " is gone: fetch a snapshot",
                           r->k.prefix, r->expected);
    if (rc != 1) {
        snprintf(r->err, sizeof r->err, "repl_log: reading the log's start: %s", etcd_errmsg(r->c));
        return transient(rc);
    }
    if (!f.valid)
        return reader_fail(r, INV_EINVALID, "repl_log: the first key under %s is no entry key",
                           r->k.prefix);
    if (f.pos > r->expected)
        return reader_fail(r, INV_ELIMIT,
                           "repl_log: the log starts at %" PRIu64 ", above position %" PRIu64
                           ": fetch a snapshot",
                           f.pos, r->expected);
    return reader_fail(r, INV_ECONFLICT,
                       "repl_log: no entry starts at %" PRIu64 " though the log holds entries "
                       "from %" PRIu64 " and goes past it",
                       r->expected, f.pos);
}

/* Places a checked entry read at key position pos: delivers it (INV_OK),
 * skips a duplicate (STEP_SKIP), or fails. */
static int reader_place(repl_log_reader *r, const repl_log_entry *e, repl_log_entry *out)
{
    assert(reader_ok(r) && e->end > e->first);
    if (e->end <= r->expected)
        return STEP_SKIP; /* already delivered (or below from) */
    if (e->first < r->expected)
        return reader_fail(r, INV_ECONFLICT,
                           "repl_log: entry [%" PRIu64 ", %" PRIu64 ") overlaps position %" PRIu64,
                           e->first, e->end, r->expected);
    if (e->first > r->expected)
        return reader_gap(r);
    if (e->term < r->term_max)
        return reader_fail(r, INV_ECONFLICT,
                           "repl_log: entry at %" PRIu64 " has term %" PRIu64
                           ", below the term %" PRIu64 " already delivered",
                           e->first, e->term, r->term_max);
    *out = *e;
    r->expected = e->end;
    r->term_max = e->term;
    assert(reader_ok(r));
    return INV_OK;
}

/* Checks a value read at the key of pos into *e; INV_EINVALID (final)
 * when corrupt. */
static int reader_check(repl_log_reader *r, const uint8_t *v, size_t vlen, uint64_t pos,
                        int64_t mod_revision, repl_log_entry *e)
{
    const char *why = repl_log_entry_check(v, vlen, pos, e);
    if (why != NULL)
        return reader_fail(r, INV_EINVALID,
                           "repl_log: entry %s%016" PRIx64 " (%zu bytes, revision %" PRId64
                           ") is corrupt: %s",
                           r->k.prefix, pos, vlen, mod_revision, why);
    e->mod_revision = mod_revision;
    return INV_OK;
}

/* The entry got at r->expected: kept in r->held while the caller reads it. */
static int reader_deliver_kv(repl_log_reader *r, etcd_kv *kv, repl_log_entry *out)
{
    repl_log_entry e;
    int rc = reader_check(r, kv->value, kv->vlen, r->expected, kv->mod_revision, &e);
    if (rc == INV_OK)
        rc = reader_place(r, &e, out);
    assert(rc != STEP_SKIP); /* it starts at r->expected */
    if (rc == INV_OK)
        r->held = *kv; /* out->payload points into it */
    else
        etcd_kv_clear(kv);
    return rc;
}

/* Gets the entry at r->expected. Absent and the log ends there (or
 * before): starts the watch (STEP_WATCHING). */
static int sync_step(repl_log_reader *r, repl_log_entry *out)
{
    char key[REPL_LOG_KEY_MAX];
    size_t klen = entry_key(&r->k, r->expected, key);
    etcd_kv kv;
    int64_t rev = 0;
    assert(reader_ok(r) && r->w == NULL);
    int rc = etcd_get(r->c, key, klen, &kv, &rev);
    if (rc == INV_OK)
        return reader_deliver_kv(r, &kv, out);
    if (rc != INV_ENOTFOUND) {
        snprintf(r->err, sizeof r->err, "repl_log: reading %s: %s", key, etcd_errmsg(r->c));
        return transient(rc);
    }
    /* absent at rev: an end of the log, or a hole? The head, read after
     * rev, says whether the log went past r->expected */
    head_value h = {0};
    char why[REPL_LOG_ERROR_MAX] = "";
    rc = head_get(r->c, &r->k, &h, NULL, why, sizeof why);
    if (rc == INV_EINVALID)
        return reader_fail(r, rc, "%s", why);
    if (rc != INV_OK && rc != INV_ENOTFOUND) {
        snprintf(r->err, sizeof r->err, "%s", why);
        return transient(rc);
    }
    if (rc == INV_OK && h.end > r->expected) {
        /* appended since rev, or never there: ask again after the head */
        rc = etcd_get(r->c, key, klen, &kv, NULL);
        if (rc == INV_OK)
            return reader_deliver_kv(r, &kv, out);
        if (rc == INV_ENOTFOUND)
            return reader_gap(r);
        snprintf(r->err, sizeof r->err, "repl_log: reading %s: %s", key, etcd_errmsg(r->c));
        return transient(rc);
    }
    /* every put of the key after rev is in a watch from rev + 1 (etcd_get
     * reports the revision with INV_ENOTFOUND too; defended, as etcd.h
     * does not say so: rev 0 would watch the whole history) */
    if (rev <= 0) {
        snprintf(r->err, sizeof r->err, "repl_log: no revision with the absent %s", key);
        return INV_EIO;
    }
    r->w = etcd_watch_start(r->c, r->k.prefix, r->k.plen, rev + 1, r->err, sizeof r->err);
    return r->w != NULL ? STEP_WATCHING : INV_EIO;
}

/* Waits up to wait_ms for the next event of the watch. */
static int watch_step(repl_log_reader *r, repl_log_entry *out, uint32_t wait_ms)
{
    etcd_event ev;
    uint64_t pos = 0;
    repl_log_entry e;
    assert(reader_ok(r) && r->w != NULL);
    int rc = etcd_watch_next(r->w, &ev, wait_ms);
    if (rc == INV_ENOTFOUND)
        return rc;
    if (rc != INV_OK) { /* the watch ended: gets read what it would have */
        snprintf(r->err, sizeof r->err, "repl_log: the watch ended: %s", etcd_watch_errmsg(r->w));
        etcd_watch_stop(r->w);
        r->w = NULL;
        return STEP_RESYNC;
    }
    if (ev.type == ETCD_EVENT_DELETE)
        return STEP_SKIP; /* trimming, not our business */
    if (!key_position(&r->k, ev.key, ev.klen, &pos))
        return reader_fail(r, INV_EINVALID, "repl_log: a key under %s (%zu bytes) is no entry key",
                           r->k.prefix, ev.klen);
    rc = reader_check(r, ev.value, ev.vlen, pos, ev.mod_revision, &e);
    if (rc == INV_OK)
        rc = reader_place(r, &e, out);
    if (rc < 0 && r->final_rc == INV_OK && r->w != NULL) {
        /* etcd failed while a gap was diagnosed: the event is consumed,
         * so the next call starts over with gets */
        etcd_watch_stop(r->w);
        r->w = NULL;
    }
    return rc;
}

int repl_log_next(repl_log_reader *r, repl_log_entry *out, uint32_t timeout_ms)
{
    if (r == NULL || out == NULL)
        return INV_EINVALID;
    assert(reader_ok(r));
    etcd_kv_clear(&r->held); /* the caller is done with the last entry */
    memset(out, 0, sizeof *out);
    if (r->final_rc != INV_OK)
        return r->final_rc;
    r->err[0] = '\0';
    uint64_t deadline_ns = clock_mono_ns() + (uint64_t)timeout_ms * CLOCK_NS_PER_MS;
    unsigned resyncs = 0;
    int rc;
    for (;;) {
        if (r->w == NULL) {
            rc = sync_step(r, out);
            if (rc != STEP_WATCHING)
                break; /* an entry, or an error */
        }
        uint64_t now_ns = clock_mono_ns();
        uint32_t wait_ms =
            now_ns >= deadline_ns ? 0 : (uint32_t)((deadline_ns - now_ns) / CLOCK_NS_PER_MS);
        rc = watch_step(r, out, wait_ms);
        if (rc == STEP_RESYNC && ++resyncs > REPL_LOG_RESYNCS_MAX) {
            rc = INV_EIO;
            break;
        }
        if (rc == STEP_SKIP && clock_mono_ns() >= deadline_ns) {
            rc = INV_ENOTFOUND;
            break;
        }
        if (rc != STEP_RESYNC && rc != STEP_SKIP)
            break;
    }
    assert(rc <= 0 && (rc != INV_OK || out->end > out->first));
    assert(reader_ok(r));
    return rc;
}
