/*
 * config.c — parses invcored's command line into a server_config.
 * Accepts "--name value" and "--name=value". Every numeric option is range
 * checked; nothing here exits or prints.
 */
#include "server/config.h"
#include "server/repl_elect.h"

#include <assert.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/resp.h"

void config_defaults(server_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->bind, sizeof c->bind, "%s", SERVER_BIND_DEFAULT);
    c->port = SERVER_PORT_DEFAULT;
    c->threads = 0;
    c->data_dir = SERVER_DATA_DIR_DEFAULT;
    c->fsync_policy = INV_FSYNC_INTERVAL;
    c->fsync_interval_ms = INV_FSYNC_INTERVAL_MS_DEFAULT;
    c->maxclients = SERVER_MAXCLIENTS_DEFAULT;
    c->timeout_s = SERVER_TIMEOUT_S_DEFAULT;
    c->max_bulk = RESP_MAX_BULK_DEFAULT;
    c->max_args = RESP_MAX_ARGS_DEFAULT;
    c->max_query = SERVER_MAX_QUERY_DEFAULT;
    c->max_reply = SERVER_MAX_REPLY_DEFAULT;
    c->maxmemory_clients_pct = SERVER_MAXMEMORY_CLIENTS_PCT_DEFAULT;
    c->maxmemory_clients_default = true;
    c->slowlog_slower_than_us = SERVER_SLOWLOG_SLOWER_THAN_US_DEFAULT;
    c->slowlog_max_len = SERVER_SLOWLOG_MAX_LEN_DEFAULT;
    c->history_retention_hours = SERVER_HISTORY_RETENTION_HOURS_DEFAULT;
    c->webhook_timeout_ms = WEBHOOK_TIMEOUT_MS_DEFAULT;
    c->http_port = SERVER_HTTP_PORT_DEFAULT;
    c->http_header_bytes = SERVER_HTTP_HEADER_BYTES_DEFAULT;
    c->http_headers = SERVER_HTTP_HEADERS_DEFAULT;
    c->http_body_bytes = SERVER_HTTP_BODY_BYTES_DEFAULT;
    c->http_url_bytes = SERVER_HTTP_URL_BYTES_DEFAULT;
    c->http_idle_timeout_s = SERVER_HTTP_IDLE_TIMEOUT_S_DEFAULT;
    c->http_request_timeout_s = SERVER_HTTP_REQUEST_TIMEOUT_S_DEFAULT;
}

const char *config_usage(void)
{
    return "usage: invcored [--bind ADDR] [--port N] [--threads N]\n"
           "                [--data-dir DIR | --in-memory]\n"
           "                [--fsync always|interval|none] [--fsync-interval-ms N]\n"
           "                [--requirepass TOKEN] [--tokens FILE]\n"
           "                [--maxclients N] [--timeout S]\n"
           "                [--max-bulk BYTES] [--max-args N]\n"
           "                [--max-query-buffer BYTES] [--max-reply-buffer BYTES]\n"
           "                [--maxmemory-clients BYTES|PCT%]\n"
           "                [--levels-capacity N] [--items-capacity N]\n"
           "                [--locations-capacity N] [--holds-capacity N]\n"
           "                [--request-id-retention-hours N] [--request-ids-max N]\n"
           "                [--buyer-window-s N]\n"
           "                [--history-retention-hours N] [--history-retention-bytes N]\n"
           "                [--slowlog-log-slower-than US] [--slowlog-max-len N]\n"
           "                [--webhook URL[#topics=levels,holds,items]]...\n"
           "                [--webhook-secret S] [--webhook-timeout-ms N]\n"
           "                [--help] [--version]\n"
           "defaults: bind 127.0.0.1, port 7379, threads = cores / 2, data dir ./data,\n"
           "fsync interval (10 ms), maxclients 10000, timeout 300 s (0: off),\n"
           "max-bulk 1 MiB, max-args 4096, max-query-buffer 8 MiB,\n"
           "max-reply-buffer 64 MiB, maxmemory-clients 5% of RAM (64 MiB..4 GiB;\n"
           "0: no bound), capacities 0 (tables start small and grow),\n"
           "slowlog-log-slower-than 10000 us (-1: off), slowlog-max-len 128,\n"
           "request-id-retention-hours 24, request-ids-max 1048576,\n"
           "buyer-window-s 86400, history-retention-hours 168,\n"
           "history-retention-bytes 0 (no bound), at most 8 webhooks,\n"
           "webhook-timeout-ms 5000\n"
           "replication (docs/REPLICATION.md): [--cluster NAME --etcd URL[,URL...] "
           "--advertise HOST:PORT [--lease-ttl-ms N] [--repl-auth TOKEN]]\n"
           "HTTP (docs/HTTP.md): [--http-port N (0: off)] [--http-max-header-bytes N]\n"
           "  [--http-max-headers N] [--http-max-body-bytes N] [--http-max-url-bytes N]\n"
           "  [--http-idle-timeout S] [--http-request-timeout S]; defaults: http-port 7380\n"
           "  (any free port when --port is 0), 16 KiB of headers, 64 headers, 1 MiB body,\n"
           "  8 KiB URL, idle 60 s, request 10 s\n";
}

const char *config_fsync_name(inv_fsync_policy p)
{
    switch (p) {
    case INV_FSYNC_ALWAYS:
        return "always";
    case INV_FSYNC_INTERVAL:
        return "interval";
    case INV_FSYNC_NONE:
        return "none";
    }
    return "?";
}

/* The numeric options: each is range checked, then stored in its field. */
typedef enum { OPT_INT, OPT_UNSIGNED, OPT_U32, OPT_SIZE, OPT_I64, OPT_U64 } opt_type;

#define CFG(field, type) offsetof(server_config, field), type
static const struct {
    const char *name;
    uint64_t lo, hi;
    size_t offset;
    opt_type type;
} g_numeric[] = {
    {"port", 0, 65535, CFG(port, OPT_INT)},
    {"threads", 1, SERVER_THREADS_MAX, CFG(threads, OPT_UNSIGNED)},
    {"fsync-interval-ms", 1, 60000, CFG(fsync_interval_ms, OPT_U32)},
    {"maxclients", 1, SERVER_MAXCLIENTS_MAX, CFG(maxclients, OPT_UNSIGNED)},
    {"timeout", 0, 365u * 24 * 3600, CFG(timeout_s, OPT_UNSIGNED)},
    {"max-bulk", 64, 512u << 20, CFG(max_bulk, OPT_SIZE)},
    {"max-args", 16, 1u << 20, CFG(max_args, OPT_SIZE)},
    {"max-query-buffer", 1u << 16, 1ull << 32, CFG(max_query, OPT_SIZE)},
    {"max-reply-buffer", 1u << 16, 1ull << 34, CFG(max_reply, OPT_SIZE)},
    /* "-1" (log nothing) is taken before the range check: see apply */
    {"slowlog-log-slower-than", 0, SERVER_SLOWLOG_SLOWER_THAN_US_MAX,
     CFG(slowlog_slower_than_us, OPT_I64)},
    {"slowlog-max-len", 0, SERVER_SLOWLOG_MAX_LEN_MAX, CFG(slowlog_max_len, OPT_UNSIGNED)},
    /* engine table hints */
    {"levels-capacity", 0, SERVER_CAPACITY_MAX, CFG(levels_capacity, OPT_SIZE)},
    {"items-capacity", 0, SERVER_CAPACITY_MAX, CFG(items_capacity, OPT_SIZE)},
    {"locations-capacity", 0, SERVER_CAPACITY_MAX, CFG(locations_capacity, OPT_SIZE)},
    {"holds-capacity", 0, SERVER_CAPACITY_MAX, CFG(holds_capacity, OPT_SIZE)},
    /* idempotency (0: the engine's defaults) */
    {"request-id-retention-hours", 1, SERVER_REQUEST_ID_RETENTION_HOURS_MAX,
     CFG(request_id_retention_hours, OPT_UNSIGNED)},
    {"request-ids-max", 1, SERVER_REQUEST_IDS_MAX, CFG(request_ids_max, OPT_SIZE)},
    {"buyer-window-s", 1, SERVER_BUYER_WINDOW_S_MAX, CFG(buyer_window_s, OPT_UNSIGNED)},
    /* the change feed's history */
    {"history-retention-hours", 1, SERVER_HISTORY_RETENTION_HOURS_MAX,
     CFG(history_retention_hours, OPT_UNSIGNED)},
    {"history-retention-bytes", 0, UINT64_MAX, CFG(history_retention_bytes, OPT_U64)},
    /* the HTTP face */
    {"http-port", 0, 65535, CFG(http_port, OPT_INT)},
    {"http-max-header-bytes", 1024, SERVER_HTTP_HEADER_BYTES_MAX, CFG(http_header_bytes, OPT_SIZE)},
    {"http-max-headers", 8, SERVER_HTTP_HEADERS_MAX, CFG(http_headers, OPT_SIZE)},
    {"http-max-body-bytes", 1024, SERVER_HTTP_BODY_BYTES_MAX, CFG(http_body_bytes, OPT_SIZE)},
    {"http-max-url-bytes", 256, SERVER_HTTP_URL_BYTES_MAX, CFG(http_url_bytes, OPT_SIZE)},
    {"http-idle-timeout", 1, 24u * 3600, CFG(http_idle_timeout_s, OPT_UNSIGNED)},
    {"http-request-timeout", 1, 3600, CFG(http_request_timeout_s, OPT_UNSIGNED)},
    {"webhook-timeout-ms", WEBHOOK_TIMEOUT_MS_MIN, WEBHOOK_TIMEOUT_MS_MAX,
     CFG(webhook_timeout_ms, OPT_UNSIGNED)},
    {"lease-ttl-ms", REPL_LEASE_TTL_MS_MIN, REPL_LEASE_TTL_MS_MAX, CFG(lease_ttl_ms, OPT_U32)},
};
#undef CFG

/* Handles --name val if name is a numeric option: 1 when stored, 0 when
 * name is not one, -1 with err filled when val is out of its range. */
static int apply_numeric(server_config *c, const char *name, const char *val, char *err,
                         size_t errlen)
{
    for (size_t i = 0; i < sizeof g_numeric / sizeof g_numeric[0]; i++) {
        if (strcmp(name, g_numeric[i].name) != 0)
            continue;
        uint64_t v, lo = g_numeric[i].lo, hi = g_numeric[i].hi;
        if (resp_parse_u64(val, strlen(val), &v) != 0 || v < lo || v > hi) {
            snprintf(err, errlen, "--%s: expected an integer in %llu..%llu", name,
                     (unsigned long long)lo, (unsigned long long)hi);
            return -1;
        }
        void *field = (char *)c + g_numeric[i].offset;
        switch (g_numeric[i].type) {
        case OPT_INT:
            *(int *)field = (int)v;
            break;
        case OPT_UNSIGNED:
            *(unsigned *)field = (unsigned)v;
            break;
        case OPT_U32:
            *(uint32_t *)field = (uint32_t)v;
            break;
        case OPT_SIZE:
            *(size_t *)field = (size_t)v;
            break;
        case OPT_I64:
            *(int64_t *)field = (int64_t)v;
            break;
        case OPT_U64:
            *(uint64_t *)field = v;
            break;
        }
        return 1;
    }
    return 0;
}

/* --webhook (repeatable, each URL once) and --webhook-secret. */
static int apply_webhook(server_config *c, const char *name, const char *val, char *err,
                         size_t errlen)
{
    if (strcmp(name, "webhook-secret") == 0) {
        if (val[0] == '\0' || strlen(val) > WEBHOOK_SECRET_MAX) {
            snprintf(err, errlen, "--webhook-secret: expected 1..%u bytes", WEBHOOK_SECRET_MAX);
            return -1;
        }
        c->webhook_secret = val;
        c->webhook_secret_len = strlen(val);
        return 0;
    }
    if (webhook_arg_check(val, NULL, err, errlen) != 0)
        return -1;
    for (size_t i = 0; i < c->n_webhooks; i++)
        if (strcmp(c->webhooks[i], val) == 0) {
            snprintf(err, errlen, "--webhook: %.64s given twice", val);
            return -1;
        }
    if (c->n_webhooks == WEBHOOKS_MAX) {
        snprintf(err, errlen, "--webhook: at most %u", WEBHOOKS_MAX);
        return -1;
    }
    c->webhooks[c->n_webhooks++] = val;
    return 0;
}

/* --maxmemory-clients BYTES|PCT%: 0 (no bound), a byte count within
 * SERVER_MAXMEMORY_CLIENTS_MIN..MAX, or a percentage 1..100 of the RAM. */
static int apply_maxmemory_clients(server_config *c, const char *val, char *err, size_t errlen)
{
    size_t n = strlen(val);
    uint64_t v;
    bool pct = n > 0 && val[n - 1] == '%';
    if (resp_parse_u64(val, pct ? n - 1 : n, &v) != 0 || (pct && (v < 1 || v > 100)) ||
        (!pct && v != 0 &&
         (v < SERVER_MAXMEMORY_CLIENTS_MIN || v > SERVER_MAXMEMORY_CLIENTS_MAX))) {
        snprintf(err, errlen,
                 "--maxmemory-clients: expected 0, bytes in %llu..%llu, or 1%%..100%% of RAM",
                 (unsigned long long)SERVER_MAXMEMORY_CLIENTS_MIN,
                 (unsigned long long)SERVER_MAXMEMORY_CLIENTS_MAX);
        return -1;
    }
    c->maxmemory_clients_default = false;
    c->maxmemory_clients_pct = pct ? (unsigned)v : 0;
    c->maxmemory_clients = pct ? 0 : v;
    return 0;
}

void config_resolve(server_config *c, uint64_t phys_bytes)
{
    assert(c->maxmemory_clients_pct <= 100);
    if (c->maxmemory_clients_pct == 0)
        return; /* bytes given (or 0: no bound) */
    uint64_t v = phys_bytes / 100 * c->maxmemory_clients_pct;
    uint64_t lo = c->maxmemory_clients_default ? SERVER_MAXMEMORY_CLIENTS_DEFAULT_MIN
                                               : SERVER_MAXMEMORY_CLIENTS_MIN;
    if (v < lo)
        v = lo; /* phys_bytes unknown (0) or a tiny machine */
    if (c->maxmemory_clients_default && v > SERVER_MAXMEMORY_CLIENTS_DEFAULT_MAX)
        v = SERVER_MAXMEMORY_CLIENTS_DEFAULT_MAX;
    c->maxmemory_clients = v;
    c->maxmemory_clients_pct = 0;
    assert(c->maxmemory_clients >= SERVER_MAXMEMORY_CLIENTS_MIN);
}

unsigned config_default_threads(long cores)
{
    long loops = cores / (long)SERVER_CORES_PER_THREAD;
    unsigned threads = loops < 1                          ? 1u
                       : loops > (long)SERVER_THREADS_MAX ? SERVER_THREADS_MAX
                                                          : (unsigned)loops;
    assert(threads >= 1 && threads <= SERVER_THREADS_MAX);
    return threads;
}

/* Handles one option with its value; returns 0, or -1 with err filled. */
static int apply(server_config *c, const char *name, const char *val, char *err, size_t errlen)
{
    if (strcmp(name, "slowlog-log-slower-than") == 0 && strcmp(val, "-1") == 0) {
        c->slowlog_slower_than_us = -1;
        return 0;
    }
    if (strcmp(name, "http-port") == 0)
        c->http_port_set = true;
    int numeric = apply_numeric(c, name, val, err, errlen);
    if (numeric != 0)
        return numeric < 0 ? -1 : 0;
    if (strcmp(name, "bind") == 0) {
        if (strlen(val) >= sizeof c->bind) {
            snprintf(err, errlen, "--bind: address too long");
            return -1;
        }
        snprintf(c->bind, sizeof c->bind, "%s", val);
    } else if (strcmp(name, "data-dir") == 0) {
        if (val[0] == '\0') {
            snprintf(err, errlen, "--data-dir: empty path");
            return -1;
        }
        c->data_dir = val;
        c->in_memory = false;
    } else if (strcmp(name, "fsync") == 0) {
        if (strcmp(val, "always") == 0)
            c->fsync_policy = INV_FSYNC_ALWAYS;
        else if (strcmp(val, "interval") == 0 || strcmp(val, "everysec") == 0)
            c->fsync_policy = INV_FSYNC_INTERVAL;
        else if (strcmp(val, "none") == 0 || strcmp(val, "no") == 0)
            c->fsync_policy = INV_FSYNC_NONE;
        else {
            snprintf(err, errlen, "--fsync: expected always, interval or none");
            return -1;
        }
    } else if (strcmp(name, "requirepass") == 0) {
        if (strlen(val) > SERVER_REQUIREPASS_MAX) {
            snprintf(err, errlen, "--requirepass: longer than %u bytes", SERVER_REQUIREPASS_MAX);
            return -1;
        }
        c->requirepass = val;
        c->requirepass_len = strlen(val);
    } else if (strcmp(name, "tokens") == 0) {
        if (val[0] == '\0') {
            snprintf(err, errlen, "--tokens: expected a file");
            return -1;
        }
        c->tokens_file = val;
    } else if (strcmp(name, "cluster") == 0 || strcmp(name, "etcd") == 0 ||
               strcmp(name, "advertise") == 0) {
        if (val[0] == '\0') {
            snprintf(err, errlen, "--%s: empty value", name);
            return -1;
        }
        *(name[0] == 'c' ? &c->cluster : name[0] == 'e' ? &c->etcd : &c->advertise) = val;
    } else if (strcmp(name, "repl-auth") == 0) {
        if (val[0] == '\0' || strlen(val) > SERVER_REQUIREPASS_MAX) {
            snprintf(err, errlen, "--repl-auth: expected a token of 1 to %u bytes",
                     SERVER_REQUIREPASS_MAX);
            return -1;
        }
        c->repl_auth = val;
    } else if (strcmp(name, "maxmemory-clients") == 0) {
        return apply_maxmemory_clients(c, val, err, errlen);
    } else if (strcmp(name, "webhook") == 0 || strcmp(name, "webhook-secret") == 0) {
        return apply_webhook(c, name, val, err, errlen);
    } else {
        snprintf(err, errlen, "unknown option --%s", name);
        return -1;
    }
    return 0;
}

int config_parse(server_config *c, int argc, char **argv, char *err, size_t errlen)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0) {
            snprintf(err, errlen, "unexpected argument '%s'", a);
            return -1;
        }
        a += 2;
        if (strcmp(a, "help") == 0) {
            c->help = true;
            continue;
        }
        if (strcmp(a, "version") == 0) {
            c->version = true;
            continue;
        }
        if (strcmp(a, "in-memory") == 0) {
            c->in_memory = true;
            c->data_dir = NULL;
            continue;
        }
        char name[64];
        const char *val;
        const char *eq = strchr(a, '=');
        if (eq != NULL) {
            size_t n = (size_t)(eq - a);
            if (n >= sizeof name) {
                snprintf(err, errlen, "unknown option --%s", a);
                return -1;
            }
            memcpy(name, a, n);
            name[n] = '\0';
            val = eq + 1;
        } else {
            if (strlen(a) >= sizeof name) {
                snprintf(err, errlen, "unknown option --%s", a);
                return -1;
            }
            snprintf(name, sizeof name, "%s", a);
            if (i + 1 >= argc) {
                snprintf(err, errlen, "--%s needs a value", name);
                return -1;
            }
            val = argv[++i];
        }
        if (apply(c, name, val, err, errlen) != 0)
            return -1;
    }
    if (c->n_webhooks > 0 && c->data_dir == NULL) {
        snprintf(err, errlen, "--webhook needs a data dir (not --in-memory)");
        return -1;
    }
    /* replication: all three names, and a journal to replicate */
    if ((c->cluster != NULL) != (c->etcd != NULL) ||
        (c->cluster != NULL) != (c->advertise != NULL)) {
        snprintf(err, errlen, "--cluster, --etcd and --advertise go together");
        return -1;
    }
    if (c->cluster && c->data_dir == NULL) {
        snprintf(err, errlen, "--cluster needs a data dir (not --in-memory)");
        return -1;
    }
    if (c->repl_auth && !c->cluster) {
        snprintf(err, errlen, "--repl-auth needs --cluster");
        return -1;
    }
    if (c->lease_ttl_ms && !c->cluster) {
        snprintf(err, errlen, "--lease-ttl-ms needs --cluster");
        return -1;
    }
    if (!c->http_port_set && c->port == 0)
        c->http_port = SERVER_HTTP_PORT_ANY;
    /* an HTTP request within its limits must fit the unparsed-input bound:
     * a smaller --max-query-buffer lowers the body limit to fit */
    if (c->http_port != 0 && c->max_query < c->http_header_bytes + c->http_body_bytes) {
        if (c->max_query < c->http_header_bytes + 1024) {
            snprintf(err, errlen,
                     "--max-query-buffer must exceed --http-max-header-bytes by at least 1024");
            return -1;
        }
        c->http_body_bytes = c->max_query - c->http_header_bytes;
    }
    if (c->max_query < c->max_bulk + 1024) {
        snprintf(err, errlen, "--max-query-buffer must exceed --max-bulk by at least 1024");
        return -1;
    }
    return 0;
}

/* Constant time in the token's content: always walks the whole configured
 * password, whatever the candidate's length. */
bool config_token_resolve(const server_config *c, const token_set *set, const char *cand,
                          size_t len, token_entry **entry, uint8_t digest[TOKEN_DIGEST_BYTES])
{
    assert(entry != NULL && digest != NULL);
    bool pass = c->requirepass_len > 0 && config_token_matches(c, cand, len);
    token_entry *te = token_digest(cand, len, digest) ? token_set_find_digest(set, digest) : NULL;
    *entry = pass ? NULL : te;
    return pass || te != NULL;
}

bool config_token_matches(const server_config *c, const char *cand, size_t len)
{
    const unsigned char *p = (const unsigned char *)c->requirepass;
    size_t n = c->requirepass_len;
    volatile unsigned char diff = (unsigned char)(len != n);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = len ? (unsigned char)cand[i % len] : 0;
        diff |= (unsigned char)(ch ^ p[i]);
    }
    return diff == 0;
}
