/*
 * config.h — invcored's command line: the server's settings and their
 * defaults (every limit is a named constant here or in resp.h).
 * config_parse never exits: it returns an error message for the caller.
 */
#ifndef INV_SERVER_CONFIG_H
#define INV_SERVER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "invcore.h"
#include "server/tokens.h"
#include "server/webhook.h"

#define SERVER_PORT_DEFAULT 7379
#define SERVER_BIND_DEFAULT "127.0.0.1"
#define SERVER_DATA_DIR_DEFAULT "./data"
#define SERVER_MAXCLIENTS_DEFAULT 10000u
#define SERVER_MAXCLIENTS_MAX 1000000u
#define SERVER_TIMEOUT_S_DEFAULT 300u /* idle clients; 0: never */
#define SERVER_THREADS_MAX 256u
/* Default event loops: one per this many online cores (at least one). A
 * loop keeps its core busy under load; the journal's flusher, the engine's
 * background thread and, on a box shared with clients (a load test, an app
 * server), the clients need the rest. Measured on 2 cores with
 * invcore-bench on the box (docs/PROTOCOL.md): one loop gives the better
 * P1 and P16 tail. */
#define SERVER_CORES_PER_THREAD 2u
#define SERVER_MAX_QUERY_DEFAULT (8u << 20) /* unparsed input per client */
#define SERVER_MAX_REPLY_DEFAULT (64u << 20) /* unsent output per client */
#define SERVER_REQUIREPASS_MAX 512u /* bytes of the token */
/* --maxmemory-clients: one bound on every client's buffers together (query
 * buffers, reply buffers, replies held for durability), enforced by closing
 * the largest consumers first (server.c). The per-client limits alone allow
 * maxclients x (max-query + max-reply), far beyond any machine. Default:
 * this percentage of physical memory, kept within the two bounds below (a
 * small machine still fits a few full-size requests; a large one does not
 * hand clients gigabytes nobody asked for). 0 turns the bound off. */
#define SERVER_MAXMEMORY_CLIENTS_PCT_DEFAULT 5u
#define SERVER_MAXMEMORY_CLIENTS_DEFAULT_MIN (64ull << 20)
#define SERVER_MAXMEMORY_CLIENTS_DEFAULT_MAX (4ull << 30)
/* The smallest explicit bound: below it a handful of idle clients' kept
 * reply buffers (64 KiB each) would already reach it. */
#define SERVER_MAXMEMORY_CLIENTS_MIN (1ull << 20)
#define SERVER_MAXMEMORY_CLIENTS_MAX (1ull << 48)
/* Largest table hint --*-capacity accepts, in entries (the memory, about
 * 43 bytes per level, is reserved at start). */
#define SERVER_CAPACITY_MAX (1ull << 32)
/* --request-id-retention-hours: a year at most; --request-ids-max: 2^28 (a
 * remembered id costs a few hundred bytes) */
#define SERVER_REQUEST_ID_RETENTION_HOURS_MAX (366u * 24)
#define SERVER_REQUEST_IDS_MAX (1ull << 28)
/* --buyer-window-s: a year at most */
#define SERVER_BUYER_WINDOW_S_MAX (366u * 24 * 3600)
/* --history-retention-hours: a week by default, ten years at most (the
 * engine keeps journal segments this long for the change feed) */
#define SERVER_HISTORY_RETENTION_HOURS_DEFAULT 168u
#define SERVER_HISTORY_RETENTION_HOURS_MAX (3660u * 24)
#define SERVER_SHUTDOWN_GRACE_MS 5000u /* flushing on SIGTERM */
/* SLOWLOG: commands that ran at least this long are logged (-1: none). */
#define SERVER_SLOWLOG_SLOWER_THAN_US_DEFAULT 10000
#define SERVER_SLOWLOG_SLOWER_THAN_US_MAX (3600ll * 1000000) /* an hour */
/* Entries kept; each is at most ~5 KB (32 arguments of 128 bytes), and
 * every event loop keeps up to this many, so the bound caps memory. */
#define SERVER_SLOWLOG_MAX_LEN_DEFAULT 128u
#define SERVER_SLOWLOG_MAX_LEN_MAX 65536u
/* The HTTP face (docs/HTTP.md). Port 0 turns it off; with --port 0 and no
 * --http-port it takes any free port too (tests: see log_listening). */
#define SERVER_HTTP_PORT_DEFAULT 7380
#define SERVER_HTTP_PORT_ANY (-1) /* any free port */
/* Header block: a browser sends ~1 KiB, an API client less; 16 KiB leaves
 * room for long tokens and cookies. */
#define SERVER_HTTP_HEADER_BYTES_DEFAULT (16u << 10)
#define SERVER_HTTP_HEADER_BYTES_MAX (1u << 20)
#define SERVER_HTTP_HEADERS_DEFAULT 64u
#define SERVER_HTTP_HEADERS_MAX 256u
/* Shopify's bulk calls are far below 1 MiB; an inventory body above it is
 * a mistake or an attack. */
#define SERVER_HTTP_BODY_BYTES_DEFAULT (1u << 20)
#define SERVER_HTTP_BODY_BYTES_MAX (64u << 20)
/* ids=... with 100 ids of 20 digits is about 2 KiB */
#define SERVER_HTTP_URL_BYTES_DEFAULT 8192u
#define SERVER_HTTP_URL_BYTES_MAX (1u << 20)
#define SERVER_HTTP_IDLE_TIMEOUT_S_DEFAULT 60u /* keep-alive without a request */
/* A request begun must be whole within this (slowloris headers or body). */
#define SERVER_HTTP_REQUEST_TIMEOUT_S_DEFAULT 10u

typedef struct {
    char bind[64];
    int port; /* 0: any free port (logged at start) */
    unsigned threads; /* 0 at parse: number of cores */
    const char *data_dir; /* NULL: in memory */
    bool in_memory;
    inv_fsync_policy fsync_policy;
    uint32_t fsync_interval_ms;
    const char *requirepass; /* NULL or "": no AUTH needed */
    size_t requirepass_len;
    /* --tokens FILE (server/tokens.h: TOKEN TENANT SCOPE [BUCKET/LEAK]
     * lines); NULL: none. SIGHUP and TOKENS.RELOAD read it again. */
    const char *tokens_file;
    unsigned maxclients;
    unsigned timeout_s;
    size_t max_bulk;
    size_t max_args;
    size_t max_query;
    size_t max_reply;
    /* --maxmemory-clients: bytes (0: no bound) once config_resolve ran;
     * before, maxmemory_clients_pct (1..100) means a share of the RAM. */
    uint64_t maxmemory_clients;
    unsigned maxmemory_clients_pct;
    bool maxmemory_clients_default; /* not given: the clamped default */
    /* Engine table hints (0: start small and grow): a known-size load
     * never pauses for growth. */
    size_t levels_capacity, items_capacity, locations_capacity, holds_capacity;
    /* Idempotency: request ids kept this long, at most this many (0:
     * the engine's defaults, INV_REQUEST_ID_RETENTION_MS_DEFAULT and
     * INV_REQUEST_IDS_MAX_DEFAULT). */
    unsigned request_id_retention_hours;
    size_t request_ids_max;
    /* Per-buyer hold limits count units within this window (0: the
     * engine's default, INV_BUYER_WINDOW_MS_DEFAULT). */
    unsigned buyer_window_s;
    /* History (FEED.READ, LEVEL.HISTORY): journal segments are kept this
     * long, and within this many bytes (0: no bound). */
    unsigned history_retention_hours;
    uint64_t history_retention_bytes;
    int64_t slowlog_slower_than_us; /* -1: log nothing */
    unsigned slowlog_max_len; /* 0: keep nothing */
    /* webhooks (server/webhook.h): each --webhook argument as given */
    const char *webhooks[WEBHOOKS_MAX];
    size_t n_webhooks;
    const char *webhook_secret; /* NULL: bodies are not signed */
    size_t webhook_secret_len;
    unsigned webhook_timeout_ms;
    /* the HTTP face */
    int http_port; /* 0: off; SERVER_HTTP_PORT_ANY: any free port */
    bool http_port_set; /* given on the command line */
    size_t http_header_bytes, http_headers, http_body_bytes, http_url_bytes;
    unsigned http_idle_timeout_s, http_request_timeout_s;
    /* replication (docs/REPLICATION.md): cluster NULL: a single node */
    const char *cluster; /* --cluster NAME */
    const char *etcd; /* --etcd URL[,URL...] */
    const char *advertise; /* --advertise HOST:PORT (what clients are told) */
    uint32_t lease_ttl_ms; /* --lease-ttl-ms; 0: REPL_LEASE_TTL_MS_DEFAULT */
    /* --repl-auth TOKEN: what a standby sends its leader's AUTH to copy a
     * snapshot (an admin token of --tokens; NULL: --requirepass, if any) */
    const char *repl_auth;
    bool help, version;
} server_config;

void config_defaults(server_config *c);
/* Returns 0, or -1 with a message in err (size errlen). Strings in c point
 * into argv. */
int config_parse(server_config *c, int argc, char **argv, char *err, size_t errlen);
const char *config_usage(void);
/* Turns a percentage --maxmemory-clients (or the default) into bytes of a
 * machine with phys_bytes of memory; the default is clamped to
 * SERVER_MAXMEMORY_CLIENTS_DEFAULT_MIN..MAX, an explicit percentage only to
 * SERVER_MAXMEMORY_CLIENTS_MIN. After config_parse, before server_start. */
void config_resolve(server_config *c, uint64_t phys_bytes);
/* The --threads default for a machine with `cores` online cores (<= 0:
 * unknown): cores / SERVER_CORES_PER_THREAD, within 1..SERVER_THREADS_MAX. */
unsigned config_default_threads(long cores);
const char *config_fsync_name(inv_fsync_policy p);
/* cand equals --requirepass, compared in constant time (RESP's AUTH and
 * the HTTP face's token headers). */
bool config_token_matches(const server_config *c, const char *cand, size_t len);
/* What a presented token opens: --requirepass (true, *entry NULL) or a
 * --tokens entry of set (true, *entry), else false. Both are compared every
 * time, so the time does not tell which one matched; --requirepass wins.
 * digest gets cand's SHA-256 (zeroed if libcrypto failed). The one check
 * behind RESP's AUTH and the HTTP token headers. */
bool config_token_resolve(const server_config *c, const token_set *set, const char *cand,
                          size_t len, token_entry **entry, uint8_t digest[TOKEN_DIGEST_BYTES]);

#endif /* INV_SERVER_CONFIG_H */
