/*
 * etcd.h — a small synchronous etcd v3 client over etcd's JSON gateway
 * (HTTP POST of JSON bodies, keys and values base64, int64 fields as JSON
 * strings), with libcurl and yajl. It is the base the replication code
 * (issue #16: leader lease, fenced log appends, standby watch) builds on;
 * it knows nothing of invcore's records.
 *
 * Contract:
 *  - An etcd_client is used by one thread at a time (it owns one curl
 *    handle, one response buffer and its error message); nothing in it is
 *    locked. Several threads need several clients.
 *  - A call has one deadline, the client's timeout_ms. It tries the
 *    endpoint that last answered first; on a transport failure (refused,
 *    reset, timed out) or an etcd "unavailable" reply it tries the next
 *    one, each endpoint at most once per call, each attempt getting a fair
 *    share of the time left. The endpoint that answered is remembered.
 *    A write retried after a timeout may have been applied by the first
 *    endpoint too (at least once): callers that care fence with a txn.
 *  - Every call returns INV_OK or a negative INV_E* code; etcd_errmsg()
 *    then says what failed and where. Codes: INV_EINVALID (an argument, or
 *    etcd refused the request as invalid), INV_ENOTFOUND (no such key or
 *    lease), INV_ELIMIT (a revision was compacted, or a response over
 *    ETCD_RESPONSE_MAX), INV_ENOMEM, INV_EIO (no endpoint answered in
 *    time, or a malformed reply).
 *  - A watch (etcd_watch_start) owns its own curl handle and thread; the
 *    client it was started from may be closed while it runs.
 */
#ifndef INV_SERVER_ETCD_H
#define INV_SERVER_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "invcore.h"

/* ---- limits ---------------------------------------------------------- */

/* etcd's default --max-request-bytes: a bigger request is refused by the
 * server, so it is refused here first (INV_EINVALID) without being sent. */
#define ETCD_REQUEST_BYTES_MAX 1572864u
/* Bytes of one key: our keys are short paths; the bound keeps base64 and
 * range continuation work small. */
#define ETCD_KEY_MAX 4096u
/* Bytes of one value: the request limit less a key and protobuf framing. */
#define ETCD_VALUE_MAX (ETCD_REQUEST_BYTES_MAX - ETCD_KEY_MAX - 1024u)
/* Bytes of one JSON reply, or of one watch batch (base64 and JSON grow the
 * data by about 4/3; a range page or watch batch holds many values). */
#define ETCD_RESPONSE_MAX (64u << 20)
#define ETCD_ENDPOINTS_MAX 8u /* endpoints in the CSV list */
#define ETCD_ENDPOINT_MAX 256u /* bytes of one endpoint URL */
/* etcd's default --max-txn-ops; compares are bounded the same way. */
#define ETCD_TXN_OPS_MAX 128u
#define ETCD_TIMEOUT_MS_MIN 10u
#define ETCD_TIMEOUT_MS_MAX 600000u
#define ETCD_ERROR_MAX 256u /* bytes of an error message, NUL included */
/* Keys one range page may ask for (the caller's limit is clamped to it). */
#define ETCD_RANGE_PAGE_MAX 10000
/* Pages etcd_range_prefix reads before giving up (INV_ELIMIT). */
#define ETCD_RANGE_PAGES_MAX 100000u
/* Events a watch buffers for its consumer; when full the watch thread
 * stops reading the stream (backpressure), it never drops an event. */
#define ETCD_WATCH_QUEUE_MAX 1024u

/* ---- the client ------------------------------------------------------- */

typedef struct etcd_client etcd_client;

/* endpoints_csv: "http://host:port[,http://host:port...]" (http only, no
 * path, at most ETCD_ENDPOINTS_MAX). timeout_ms bounds each call, within
 * [ETCD_TIMEOUT_MS_MIN, ETCD_TIMEOUT_MS_MAX]. Contacts nobody. NULL with a
 * message in err when an argument is bad or memory ran out. */
etcd_client *etcd_open(const char *endpoints_csv, uint32_t timeout_ms, char *err, size_t errlen);
void etcd_close(etcd_client *c);
/* The last call's error message ("" after a success). */
const char *etcd_errmsg(const etcd_client *c);
/* The endpoint the next call tries first (the last that answered). */
const char *etcd_endpoint(const etcd_client *c);

/* A key's value and metadata. From etcd_get, key and value are malloc'd
 * (klen / vlen bytes, each followed by a NUL not counted) and released
 * with etcd_kv_clear; in a range callback they are only valid during the
 * call. */
typedef struct {
    uint8_t *key;
    size_t klen;
    uint8_t *value;
    size_t vlen;
    int64_t create_revision, mod_revision, version, lease;
} etcd_kv;

void etcd_kv_clear(etcd_kv *kv);

/* Puts key = val (lease_id 0: no lease). *revision_out (may be NULL): the
 * store's revision after the put. */
int etcd_put(etcd_client *c, const void *key, size_t klen, const void *val, size_t vlen,
             int64_t lease_id, int64_t *revision_out);
/* Reads one key into *out (see etcd_kv): INV_ENOTFOUND when absent. */
int etcd_get(etcd_client *c, const void *key, size_t klen, etcd_kv *out, int64_t *revision_out);

/* The greatest key in [key, range_end), without its value (out as
 * etcd_get's, vlen 0): INV_ENOTFOUND when the range is empty. */
int etcd_last_key(etcd_client *c, const void *key, size_t klen, const void *range_end, size_t elen,
                  etcd_kv *out);
/* A range callback: non-zero stops the range, which returns that value. */
typedef int (*etcd_kv_fn)(void *arg, const etcd_kv *kv);
/* Calls fn for every key starting with prefix (plen 0: every key), in key
 * order, exactly once, all from one snapshot (the first page's revision,
 * returned in *revision_out). page_limit: keys per request (0 or more than
 * ETCD_RANGE_PAGE_MAX: ETCD_RANGE_PAGE_MAX). A snapshot compacted while it
 * is read: INV_ELIMIT. */
int etcd_range_prefix(etcd_client *c, const void *prefix, size_t plen, int64_t page_limit,
                      etcd_kv_fn fn, void *arg, int64_t *revision_out);
/* Deletes [key, range_end) (elen 0: key alone). *deleted: keys deleted. */
int etcd_delete_range(etcd_client *c, const void *key, size_t klen, const void *range_end,
                      size_t elen, int64_t *deleted, int64_t *revision_out);
int etcd_delete_prefix(etcd_client *c, const void *prefix, size_t plen, int64_t *deleted,
                       int64_t *revision_out);

/* ---- transactions ----------------------------------------------------- */

typedef enum {
    ETCD_TARGET_VERSION, /* number: the key's version (0: absent) */
    ETCD_TARGET_CREATE, /* number: its create_revision */
    ETCD_TARGET_MOD, /* number: its mod_revision */
    ETCD_TARGET_VALUE, /* value/vlen */
    ETCD_TARGET_LEASE, /* number: its lease id (0: none) */
} etcd_target;

typedef enum { ETCD_EQUAL, ETCD_GREATER, ETCD_LESS, ETCD_NOT_EQUAL } etcd_cmp_result;

typedef struct {
    etcd_target target;
    etcd_cmp_result result;
    const void *key;
    size_t klen;
    int64_t number; /* VERSION, CREATE, MOD, LEASE */
    const void *value; /* VALUE */
    size_t vlen;
} etcd_compare;

typedef enum { ETCD_OP_PUT, ETCD_OP_DELETE } etcd_op_kind;

typedef struct {
    etcd_op_kind kind;
    const void *key;
    size_t klen;
    const void *value; /* PUT */
    size_t vlen;
    int64_t lease; /* PUT: 0 none */
    const void *range_end; /* DELETE: elen 0 deletes key alone */
    size_t elen;
} etcd_op;

/* If every compare holds, applies ops atomically (*succeeded true);
 * otherwise applies nothing (*succeeded false, still INV_OK). 1..
 * ETCD_TXN_OPS_MAX compares, 0..ETCD_TXN_OPS_MAX ops, all keys and values
 * within the limits and the whole within ETCD_REQUEST_BYTES_MAX. */
int etcd_txn_put_if(etcd_client *c, const etcd_compare *cmp, size_t ncmp, const etcd_op *ops,
                    size_t nops, bool *succeeded, int64_t *revision_out);

/* ---- leases and compaction ------------------------------------------- */

/* ttl_s in [1, ETCD_LEASE_TTL_S_MAX]; etcd may grant a longer TTL (its
 * minimum is about 1.5 election timeouts): *granted_ttl_s says which. */
#define ETCD_LEASE_TTL_S_MAX 9000000000LL
int etcd_lease_grant(etcd_client *c, int64_t ttl_s, int64_t *lease_id_out, int64_t *granted_ttl_s);
/* One keep-alive: *ttl_left_s the renewed TTL. A lease that expired or was
 * revoked: INV_ENOTFOUND. */
int etcd_lease_keepalive(etcd_client *c, int64_t lease_id, int64_t *ttl_left_s);
/* Revokes the lease and deletes its keys. Unknown lease: INV_ENOTFOUND. */
int etcd_lease_revoke(etcd_client *c, int64_t lease_id);
/* Drops history before revision (physical: wait until it is gone from
 * disk). Already compacted up to it: INV_ELIMIT. */
int etcd_compact(etcd_client *c, int64_t revision, bool physical);

/* ---- watches ------------------------------------------------------------ */

typedef struct etcd_watch etcd_watch;

typedef enum { ETCD_EVENT_PUT, ETCD_EVENT_DELETE } etcd_event_type;

/* key and value (DELETE: vlen 0) stay valid until the next etcd_watch_next
 * or etcd_watch_stop on the same watch. */
typedef struct {
    etcd_event_type type;
    const uint8_t *key;
    size_t klen;
    const uint8_t *value;
    size_t vlen;
    int64_t create_revision, mod_revision, version, lease;
} etcd_event;

/* Watches every key starting with prefix from start_revision (0: from now
 * on), on its own thread and connection, trying the client's endpoints in
 * turn. Returns once etcd has registered the watch (every later change is
 * then delivered), or NULL with a message within the client's timeout.
 * Called on the client's thread (it reads the client's endpoints). */
etcd_watch *etcd_watch_start(etcd_client *c, const void *prefix, size_t plen,
                             int64_t start_revision, char *err, size_t errlen);
/* The next event, in revision order, each exactly once: INV_OK; none
 * within timeout_ms: INV_ENOTFOUND. Once the queued events are consumed,
 * the watch's end: INV_ELIMIT when start_revision was compacted
 * (etcd_watch_compact_revision says from where history remains: fetch a
 * snapshot), INV_EIO when the stream broke or etcd cancelled the watch
 * (etcd_watch_errmsg says why; start a new watch after the last
 * mod_revision seen). One consumer thread at a time. */
int etcd_watch_next(etcd_watch *w, etcd_event *ev, uint32_t timeout_ms);
int64_t etcd_watch_compact_revision(etcd_watch *w);
/* The watch's error message ("" while it runs). Valid until stop. */
const char *etcd_watch_errmsg(etcd_watch *w);
/* Stops the thread (promptly, even while the stream is idle or the queue
 * is full), joins it and frees everything. */
void etcd_watch_stop(etcd_watch *w);

#endif
