/*
 * webhook.h — outbound webhooks: invcored POSTs the change feed, as JSON
 * arrays of records (feed_json.h), to each URL given with --webhook.
 *
 * One background thread per webhook reads the feed with the C reader
 * (inv_feed_open; it waits on an inv_durable_subscribe eventfd) and is
 * never on the write path: a slow or dead receiver only makes that thread
 * wait. Delivery is at least once and in journal order: a batch is retried
 * (the same body) with exponential backoff until a 2xx; then the position
 * of its last record is stored durably in the data dir
 * ("webhook-<16 hex>.pos", tmp + fdatasync + rename + dir fsync) and the
 * next batch starts after it. After a restart a webhook resumes after its
 * stored position, so at most the last unacknowledged batch is sent again.
 * A webhook that has never stored a position starts at the end of the
 * journal (it sees changes made from its first start on).
 *
 * --webhook URL[#topics=levels,holds,items]: the fragment (never sent) picks
 * the record kinds sent: levels (level.*), holds (hold.*), items (item,
 * location, default_location); a batch record goes when any of its
 * changes is of a chosen topic (whole). No fragment: every record.
 * --webhook-secret S signs each body: X-Invcore-Hmac-Sha256 =
 * base64(HMAC-SHA256(S, body)), as Shopify's X-Shopify-Hmac-Sha256.
 * docs/PROTOCOL.md "Webhooks" is the user's description.
 */
#ifndef INV_SERVER_WEBHOOK_H
#define INV_SERVER_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "invcore.h"

#define WEBHOOKS_MAX 8u /* --webhook given at most this many times */
#define WEBHOOK_URL_MAX 2048u /* bytes of a URL (its fragment included) */
#define WEBHOOK_SECRET_MAX 256u /* bytes of --webhook-secret */
/* A POST's deadline, connect included (--webhook-timeout-ms). */
#define WEBHOOK_TIMEOUT_MS_DEFAULT 5000u
#define WEBHOOK_TIMEOUT_MS_MIN 100u
#define WEBHOOK_TIMEOUT_MS_MAX 600000u
/* A POST carries at most this many records; it ends once its body passes
 * WEBHOOK_BATCH_BYTES_MAX (so it is at most that plus one record). */
#define WEBHOOK_BATCH_RECORDS_MAX 1000u
#define WEBHOOK_BATCH_BYTES_MAX (1u << 20)
/* Retry delays: the first failure waits MIN, each next one twice as long,
 * never more than MAX. */
#define WEBHOOK_BACKOFF_MIN_MS 100u
#define WEBHOOK_BACKOFF_MAX_MS 30000u
#define WEBHOOK_ERROR_MAX 160u /* bytes of the last error kept for INFO */

enum {
    WEBHOOK_TOPIC_LEVELS = 1u << 0,
    WEBHOOK_TOPIC_HOLDS = 1u << 1,
    WEBHOOK_TOPIC_ITEMS = 1u << 2,
    WEBHOOK_TOPICS_ALL = (1u << 3) - 1,
};

/* Checks one --webhook argument "URL[#topics=a,b,...]": an http:// or
 * https:// URL of at most WEBHOOK_URL_MAX bytes, known topic names. 0, or
 * -1 with a message in err. topics_out (may be NULL): the topic bits. */
int webhook_arg_check(const char *arg, unsigned *topics_out, char *err, size_t errlen);

typedef struct {
    const char *const *args; /* n --webhook arguments, checked */
    size_t n;
    const char *secret; /* NULL: bodies are not signed */
    size_t secret_len;
    unsigned timeout_ms;
    const char *data_dir; /* where the positions are stored */
} webhook_config;

typedef struct webhooks webhooks;

/* Starts one thread per webhook over e (which must outlive
 * webhooks_stop); registers the set for webhooks_status. 0, or -1 with a
 * message in err (no data dir, no memory, a position file unreadable). */
int webhooks_start(webhooks **out, inv_engine *e, const webhook_config *cfg, char *err,
                   size_t errlen);
/* Stops and joins the threads (a POST in flight is abandoned within about
 * a second: it is sent again after a restart) and frees the set. NULL: no-op. */
void webhooks_stop(webhooks *w);

/* One webhook's state, for INFO webhooks. */
typedef struct {
    char url[WEBHOOK_URL_MAX + 1]; /* without the fragment */
    unsigned topics;
    uint64_t acked_position; /* last position the receiver acknowledged */
    /* journal bytes not yet sent: the end less the acknowledged position,
     * or less the end the sender last found caught up (positions are
     * byte offsets of record starts); 0 when nothing waits */
    uint64_t lag_bytes;
    int64_t lag_ms; /* age of the oldest unacknowledged record (0: none) */
    uint64_t posts_ok, records_sent, failures;
    uint64_t failing; /* failed attempts since the last success */
    uint64_t gaps; /* times retention had dropped unsent records */
    long last_status; /* HTTP status of the last attempt (0: none/no reply) */
    char last_error[WEBHOOK_ERROR_MAX]; /* "" when the last attempt succeeded */
} webhook_status;

/* Copies the running webhooks' states (at most cap) into out; returns how
 * many webhooks run (0 when none were started). Any thread. */
size_t webhooks_status(webhook_status *out, size_t cap);

#endif /* INV_SERVER_WEBHOOK_H */
