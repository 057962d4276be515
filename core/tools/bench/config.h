/*
 * config.h — invcore-bench's command line: what to run, against what, for
 * how long, and where the results go.
 *
 * bench_config_parse is the only reader of argv: it validates every flag
 * (range, combination) and answers a message naming the flag, so a bad
 * command line never starts a run. Every limit is a named constant below.
 *
 * Invariants of a parsed config: clients >= threads >= 1; pipeline >= 1;
 * duration_s > 0; keys_n >= 1 (1 for hot); the scenario is one the target
 * and transport can run (checkout and mix need RESP: the HTTP dialects
 * have no holds); commit + release percentages <= 100 (the rest abandon).
 */
#ifndef INVCORE_BENCH_CONFIG_H
#define INVCORE_BENCH_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define BENCH_CLIENTS_MAX 10000 /* connections in all */
#define BENCH_THREADS_MAX 256 /* worker threads */
#define BENCH_PIPELINE_MAX 1024 /* requests in flight per connection */
#define BENCH_DURATION_S_MAX 86400 /* one day */
#define BENCH_RATE_MAX 100000000.0 /* open-loop arrivals per second */
#define BENCH_KEYS_MAX 100000000ull /* catalog size of uniform:N and zipf:N */
#define BENCH_STOCK_MAX 1000000000ll /* invcored's bound on a quantity */
#define BENCH_LINES_MAX 3 /* a checkout cart: 1..3 lines */
#define BENCH_TTL_MS_MAX 604800000u /* a hold's ttl: one week */
#define BENCH_THINK_MS_MAX 600000u /* think time: ten minutes */
#define BENCH_ID_BASE_MAX 1000000000000000000ull /* item ids stay below 2^63 */
#define BENCH_HOST_MAX 255
/* Default --threads against a server on this machine (a loopback --host):
 * one per this many cores, as invcored's own default loops, so the two
 * together do not ask for more cores than there are. Three runnable threads
 * on two cores made the P1 tail measure the run queue: PING's p99 against
 * Redis was 3.3 ms with two client threads, 0.9 with one (issue #15). */
#define BENCH_LOOPBACK_CORES_PER_THREAD 2
#define BENCH_PATH_MAX 4096
#define BENCH_TOKEN_MAX 512
#define BENCH_SAMPLES_MAX 86400 /* per-second samples kept for the plot */
#define BENCH_CHECK_KEYS_MAX 1000000u /* keys the flash-sale check reads */
#define BENCH_REQUESTS_MAX 1000000000000ull /* --requests */

enum bench_scenario {
    SCEN_PING,
    SCEN_DECR,
    SCEN_FLOOR,
    SCEN_CHECKOUT,
    SCEN_BROWSE,
    SCEN_MIX,
};

enum bench_target { TARGET_INVCORED, TARGET_REDIS };
enum bench_keys { KEYS_HOT, KEYS_UNIFORM, KEYS_ZIPF };

struct bench_config {
    char host[BENCH_HOST_MAX + 1];
    uint16_t port; /* the port of the transport (RESP, or HTTP with --http) */
    uint16_t resp_port; /* preload and the check: RESP (== port unless --http) */
    bool http;
    enum bench_target target;
    enum bench_scenario scenario;
    unsigned clients, threads, pipeline;
    double duration_s;
    double warmup_s; /* run before the measured time, not counted */
    double rate_per_s; /* 0: closed loop */
    uint64_t requests; /* transactions in all, then the run ends; 0: until --duration */
    enum bench_keys keys;
    uint64_t keys_n;
    double zipf_theta;
    int64_t stock; /* per key */
    bool preload;
    bool check_only; /* no load: check the server's state against --stock */
    bool no_check;
    uint64_t item_base; /* key k is item item_base + k */
    uint64_t location;
    /* checkout */
    unsigned lines_max; /* a cart has 1..lines_max lines */
    unsigned qty_max; /* each line 1..qty_max units */
    uint32_t ttl_ms; /* hold ttl: abandoned carts come back after it */
    uint32_t think_ms; /* between the hold and its commit or release */
    unsigned commit_pct, release_pct; /* the rest are abandoned */
    uint64_t buyers; /* 0: no BUYER; else buyer ids 1..buyers */
    uint64_t buyer_limit; /* 0: no LIMIT */
    /* mix: percentages of browse, floor and checkout sessions */
    unsigned mix_browse_pct, mix_floor_pct, mix_checkout_pct;
    char token[BENCH_TOKEN_MAX + 1]; /* AUTH (RESP) / Access-Token (HTTP); "" none */
    char shopify_version[16];
    char plot_path[BENCH_PATH_MAX];
    char csv_path[BENCH_PATH_MAX];
    char json_path[BENCH_PATH_MAX];
    bool quiet; /* no progress line */
    uint64_t seed;
    char keys_text[64]; /* as given, for the report */
};

/* Formats a message into err (never more than err_len bytes) and answers
 * -1: every module of the tool reports its errors this way. */
int bench_errf(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* 0: parsed (or --help: *help set, nothing else checked); -1: err holds
 * the reason, naming the flag. */
/* The default --threads on a box of cores online (< 1: unknown) for host:
 * every core for a remote server, a share (BENCH_LOOPBACK_CORES_PER_THREAD)
 * for one on loopback; at least 1. */
unsigned bench_default_threads(const char *host, long cores);
int bench_config_parse(int argc, char **argv, struct bench_config *out, bool *help, char *err,
                       size_t err_len);
void bench_config_usage(FILE *out);
const char *bench_scenario_name(enum bench_scenario s);
const char *bench_target_name(enum bench_target t);
/* Does the scenario sell (and so get the flash-sale check)? */
bool bench_scenario_sells(enum bench_scenario s);

#endif
