/*
 * config.c — invcore-bench's flags, validated whole before anything runs.
 *
 * Every number goes through parse_u64 / parse_double (no atoi: a trailing
 * character, an empty string, an overflow or a value out of its named
 * range is an error naming the flag). The combinations are checked last,
 * in config_check, once every flag is known.
 */
#include "config.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Defaults a person gets without flags (README, docs). */
#define DEFAULT_HOST "127.0.0.1"
#define DEFAULT_PORT_INVCORED 7379
#define DEFAULT_PORT_REDIS 6379
#define DEFAULT_PORT_HTTP 7380
#define DEFAULT_CLIENTS 50
#define DEFAULT_DURATION_S 10.0
#define DEFAULT_STOCK_SALE 1000 /* floor, checkout, mix: a sale that sells out */
#define DEFAULT_STOCK_DECR 1000000000 /* decr: enough not to run out in a run */
#define DEFAULT_ITEM_BASE 1000000
#define DEFAULT_LOCATION 1
#define DEFAULT_TTL_MS 5000
#define DEFAULT_THINK_MS 50
#define DEFAULT_COMMIT_PCT 70
#define DEFAULT_RELEASE_PCT 20
#define DEFAULT_ZIPF_THETA 0.99 /* YCSB's skew */
#define DEFAULT_SHOPIFY_VERSION "2021-04"

int bench_errf(char *err, size_t err_len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
    return -1;
}

/* A decimal integer in [min, max], the whole string. */
static int parse_u64(const char *flag, const char *s, uint64_t min, uint64_t max, uint64_t *out,
                     char *err, size_t err_len)
{
    assert(flag && s && out);
    if (*s < '0' || *s > '9')
        return bench_errf(err, err_len, "%s: '%s' is not a whole number", flag, s);
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno == ERANGE || *end != '\0')
        return bench_errf(err, err_len, "%s: '%s' is not a whole number", flag, s);
    if (v < min || v > max)
        return bench_errf(err, err_len, "%s: %s is out of range %" PRIu64 "..%" PRIu64, flag, s,
                          min, max);
    *out = v;
    return 0;
}

static int parse_double(const char *flag, const char *s, double min, double max, double *out,
                        char *err, size_t err_len)
{
    assert(flag && s && out);
    errno = 0;
    char *end = NULL;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || errno == ERANGE || !isfinite(v))
        return bench_errf(err, err_len, "%s: '%s' is not a number", flag, s);
    if (v < min || v > max)
        return bench_errf(err, err_len, "%s: %s is out of range %g..%g", flag, s, min, max);
    *out = v;
    return 0;
}

static int parse_unsigned(const char *flag, const char *s, unsigned min, unsigned max,
                          unsigned *out, char *err, size_t err_len)
{
    uint64_t v = 0;
    if (parse_u64(flag, s, min, max, &v, err, err_len) < 0)
        return -1;
    *out = (unsigned)v;
    return 0;
}

static int copy_text(const char *flag, const char *s, char *dst, size_t dst_len, char *err,
                     size_t err_len)
{
    size_t n = strlen(s);
    if (n == 0 || n >= dst_len)
        return bench_errf(err, err_len, "%s: must be 1..%zu bytes", flag, dst_len - 1);
    memcpy(dst, s, n + 1);
    return 0;
}

static const char *const scenario_names[] = {"ping", "decr", "floor", "checkout", "browse", "mix"};

const char *bench_scenario_name(enum bench_scenario s)
{
    assert((size_t)s < sizeof scenario_names / sizeof scenario_names[0]);
    return scenario_names[s];
}

const char *bench_target_name(enum bench_target t)
{
    return t == TARGET_REDIS ? "redis" : "invcored";
}

bool bench_scenario_sells(enum bench_scenario s)
{
    return s == SCEN_DECR || s == SCEN_FLOOR || s == SCEN_CHECKOUT || s == SCEN_MIX;
}

/* hot | uniform:N | zipf:N[:THETA] */
static int parse_keys(const char *s, struct bench_config *c, char *err, size_t err_len)
{
    if (copy_text("--keys", s, c->keys_text, sizeof c->keys_text, err, err_len) < 0)
        return -1;
    if (strcmp(s, "hot") == 0) {
        c->keys = KEYS_HOT;
        c->keys_n = 1;
        return 0;
    }
    char buf[sizeof c->keys_text];
    memcpy(buf, s, strlen(s) + 1);
    char *colon = strchr(buf, ':');
    if (!colon)
        return bench_errf(err, err_len,
                          "--keys: expected hot, uniform:N or zipf:N[:THETA], got '%s'", s);
    *colon = '\0';
    char *n_text = colon + 1;
    if (strcmp(buf, "uniform") == 0) {
        c->keys = KEYS_UNIFORM;
    } else if (strcmp(buf, "zipf") == 0) {
        c->keys = KEYS_ZIPF;
        char *theta = strchr(n_text, ':');
        if (theta) {
            *theta++ = '\0';
            /* theta 1 is a pole of the generator's formula (Gray et al.). */
            if (parse_double("--keys zipf theta", theta, 0.01, 0.999, &c->zipf_theta, err,
                             err_len) < 0)
                return -1;
        }
    } else {
        return bench_errf(err, err_len,
                          "--keys: expected hot, uniform:N or zipf:N[:THETA], got '%s'", s);
    }
    return parse_u64("--keys N", n_text, 1, BENCH_KEYS_MAX, &c->keys_n, err, err_len);
}

/* B,F,C percentages of browse, floor and checkout, summing to 100. */
static int parse_mix(const char *s, struct bench_config *c, char *err, size_t err_len)
{
    unsigned v[3];
    char buf[64];
    if (copy_text("--mix", s, buf, sizeof buf, err, err_len) < 0)
        return -1;
    char *save = NULL, *tok = strtok_r(buf, ",", &save);
    for (int i = 0; i < 3; i++, tok = strtok_r(NULL, ",", &save)) {
        if (!tok)
            return bench_errf(err, err_len, "--mix: expected BROWSE,FLOOR,CHECKOUT percentages");
        if (parse_unsigned("--mix", tok, 0, 100, &v[i], err, err_len) < 0)
            return -1;
    }
    if (tok)
        return bench_errf(err, err_len, "--mix: expected three percentages");
    if (v[0] + v[1] + v[2] != 100)
        return bench_errf(err, err_len, "--mix: percentages must sum to 100, not %u",
                          v[0] + v[1] + v[2]);
    c->mix_browse_pct = v[0];
    c->mix_floor_pct = v[1];
    c->mix_checkout_pct = v[2];
    return 0;
}

static void set_defaults(struct bench_config *c)
{
    memset(c, 0, sizeof *c);
    memcpy(c->host, DEFAULT_HOST, sizeof DEFAULT_HOST);
    c->target = TARGET_INVCORED;
    c->scenario = SCEN_FLOOR;
    c->clients = DEFAULT_CLIENTS;
    c->pipeline = 1;
    c->duration_s = DEFAULT_DURATION_S;
    c->keys = KEYS_HOT;
    c->keys_n = 1;
    c->zipf_theta = DEFAULT_ZIPF_THETA;
    c->stock = -1; /* by scenario, in config_check */
    c->item_base = DEFAULT_ITEM_BASE;
    c->location = DEFAULT_LOCATION;
    c->lines_max = 1;
    c->qty_max = 1;
    c->ttl_ms = DEFAULT_TTL_MS;
    c->think_ms = DEFAULT_THINK_MS;
    c->commit_pct = DEFAULT_COMMIT_PCT;
    c->release_pct = DEFAULT_RELEASE_PCT;
    c->mix_browse_pct = 80;
    c->mix_floor_pct = 15;
    c->mix_checkout_pct = 5;
    c->seed = 1;
    memcpy(c->shopify_version, DEFAULT_SHOPIFY_VERSION, sizeof DEFAULT_SHOPIFY_VERSION);
    memcpy(c->keys_text, "hot", 4);
}

/* A loopback address or name: the server shares this machine's cores. */
static bool host_is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (strcmp(host, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127; /* 127.0.0.0/8 */
    return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

unsigned bench_default_threads(const char *host, long cores)
{
    assert(host != NULL);
    if (cores < 1)
        return 1;
    long threads = host_is_loopback(host) ? cores / BENCH_LOOPBACK_CORES_PER_THREAD : cores;
    threads = threads < 1 ? 1 : threads > BENCH_THREADS_MAX ? BENCH_THREADS_MAX : threads;
    assert(threads >= 1 && threads <= BENCH_THREADS_MAX);
    return (unsigned)threads;
}

/* The combinations, once every flag is known. */
static int config_check(struct bench_config *c, bool port_given, bool threads_given, char *err,
                        size_t err_len)
{
    if (c->http && c->target == TARGET_REDIS)
        return bench_errf(err, err_len, "--http: Redis has no HTTP face (use --target invcored)");
    if (c->http && (c->scenario == SCEN_CHECKOUT || c->scenario == SCEN_MIX))
        return bench_errf(err, err_len,
                          "--scenario %s needs RESP: the HTTP dialects have no holds (drop --http)",
                          bench_scenario_name(c->scenario));
    if (!port_given)
        c->port = c->http
                      ? DEFAULT_PORT_HTTP
                      : (c->target == TARGET_REDIS ? DEFAULT_PORT_REDIS : DEFAULT_PORT_INVCORED);
    if (!c->http)
        c->resp_port = c->port;
    else if (c->resp_port == 0)
        c->resp_port = DEFAULT_PORT_INVCORED;
    if (!threads_given)
        c->threads = bench_default_threads(c->host, sysconf(_SC_NPROCESSORS_ONLN));
    if (c->threads > c->clients)
        c->threads = c->clients; /* a thread without a connection would idle */
    if (c->stock < 0)
        c->stock = c->scenario == SCEN_DECR ? DEFAULT_STOCK_DECR : DEFAULT_STOCK_SALE;
    if (c->commit_pct + c->release_pct > 100)
        return bench_errf(err, err_len,
                          "--commit-pct + --release-pct must be at most 100 (%u + %u)",
                          c->commit_pct, c->release_pct);
    if (c->buyer_limit && !c->buyers)
        return bench_errf(err, err_len, "--limit needs --buyers (a limit is per buyer)");
    if (c->lines_max > c->keys_n)
        return bench_errf(err, err_len,
                          "--lines %u: a cart's lines are distinct keys, and --keys has %" PRIu64,
                          c->lines_max, c->keys_n);
    if (c->item_base + c->keys_n > BENCH_ID_BASE_MAX)
        return bench_errf(err, err_len, "--item-base + keys must stay below %llu",
                          BENCH_ID_BASE_MAX);
    if (!c->no_check && bench_scenario_sells(c->scenario) && c->keys_n > BENCH_CHECK_KEYS_MAX)
        return bench_errf(
            err, err_len,
            "--keys: the flash-sale check reads every key, at most %u (add --no-check)",
            BENCH_CHECK_KEYS_MAX);
    if (c->check_only && c->no_check)
        return bench_errf(err, err_len, "--check-only and --no-check contradict each other");
    if (c->check_only && !bench_scenario_sells(c->scenario))
        return bench_errf(err, err_len, "--check-only: --scenario %s sells nothing to check",
                          bench_scenario_name(c->scenario));
    assert(c->threads >= 1 && c->threads <= c->clients);
    return 0;
}

enum {
    OPT_HOST = 256,
    OPT_PORT,
    OPT_RESP_PORT,
    OPT_HTTP,
    OPT_TARGET,
    OPT_SCENARIO,
    OPT_CLIENTS,
    OPT_THREADS,
    OPT_PIPELINE,
    OPT_DURATION,
    OPT_WARMUP,
    OPT_RATE,
    OPT_REQUESTS,
    OPT_KEYS,
    OPT_STOCK,
    OPT_PRELOAD,
    OPT_CHECK_ONLY,
    OPT_NO_CHECK,
    OPT_ITEM_BASE,
    OPT_LOCATION,
    OPT_LINES,
    OPT_QTY,
    OPT_TTL_MS,
    OPT_THINK_MS,
    OPT_COMMIT_PCT,
    OPT_RELEASE_PCT,
    OPT_BUYERS,
    OPT_LIMIT,
    OPT_MIX,
    OPT_TOKEN,
    OPT_SHOPIFY,
    OPT_PLOT,
    OPT_CSV,
    OPT_JSON,
    OPT_QUIET,
    OPT_SEED,
    OPT_HELP,
};

static const struct option long_options[] = {
    {"host", required_argument, NULL, OPT_HOST},
    {"port", required_argument, NULL, OPT_PORT},
    {"resp-port", required_argument, NULL, OPT_RESP_PORT},
    {"http", no_argument, NULL, OPT_HTTP},
    {"target", required_argument, NULL, OPT_TARGET},
    {"scenario", required_argument, NULL, OPT_SCENARIO},
    {"clients", required_argument, NULL, OPT_CLIENTS},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"pipeline", required_argument, NULL, OPT_PIPELINE},
    {"duration", required_argument, NULL, OPT_DURATION},
    {"warmup", required_argument, NULL, OPT_WARMUP},
    {"rate", required_argument, NULL, OPT_RATE},
    {"requests", required_argument, NULL, OPT_REQUESTS},
    {"keys", required_argument, NULL, OPT_KEYS},
    {"stock", required_argument, NULL, OPT_STOCK},
    {"preload", no_argument, NULL, OPT_PRELOAD},
    {"check-only", no_argument, NULL, OPT_CHECK_ONLY},
    {"no-check", no_argument, NULL, OPT_NO_CHECK},
    {"item-base", required_argument, NULL, OPT_ITEM_BASE},
    {"location", required_argument, NULL, OPT_LOCATION},
    {"lines", required_argument, NULL, OPT_LINES},
    {"qty", required_argument, NULL, OPT_QTY},
    {"ttl-ms", required_argument, NULL, OPT_TTL_MS},
    {"think-ms", required_argument, NULL, OPT_THINK_MS},
    {"commit-pct", required_argument, NULL, OPT_COMMIT_PCT},
    {"release-pct", required_argument, NULL, OPT_RELEASE_PCT},
    {"buyers", required_argument, NULL, OPT_BUYERS},
    {"limit", required_argument, NULL, OPT_LIMIT},
    {"mix", required_argument, NULL, OPT_MIX},
    {"token", required_argument, NULL, OPT_TOKEN},
    {"shopify-version", required_argument, NULL, OPT_SHOPIFY},
    {"plot", required_argument, NULL, OPT_PLOT},
    {"csv", required_argument, NULL, OPT_CSV},
    {"json", required_argument, NULL, OPT_JSON},
    {"quiet", no_argument, NULL, OPT_QUIET},
    {"seed", required_argument, NULL, OPT_SEED},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

static int parse_port(const char *flag, const char *s, uint16_t *out, char *err, size_t err_len)
{
    uint64_t v = 0;
    if (parse_u64(flag, s, 1, 65535, &v, err, err_len) < 0)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

/* One flag with its value; -1 with err set. */
static int apply_option(int opt, const char *v, struct bench_config *c, bool *port_given,
                        bool *threads_given, char *err, size_t err_len)
{
    uint64_t u = 0;
    switch (opt) {
    case OPT_HOST:
        return copy_text("--host", v, c->host, sizeof c->host, err, err_len);
    case OPT_PORT:
        *port_given = true;
        return parse_port("--port", v, &c->port, err, err_len);
    case OPT_RESP_PORT:
        return parse_port("--resp-port", v, &c->resp_port, err, err_len);
    case OPT_HTTP:
        c->http = true;
        return 0;
    case OPT_TARGET:
        if (strcmp(v, "invcored") == 0)
            c->target = TARGET_INVCORED;
        else if (strcmp(v, "redis") == 0)
            c->target = TARGET_REDIS;
        else
            return bench_errf(err, err_len, "--target: expected invcored or redis, got '%s'", v);
        return 0;
    case OPT_SCENARIO:
        for (size_t i = 0; i < sizeof scenario_names / sizeof scenario_names[0]; i++)
            if (strcmp(v, scenario_names[i]) == 0) {
                c->scenario = (enum bench_scenario)i;
                return 0;
            }
        return bench_errf(
            err, err_len,
            "--scenario: expected ping, decr, floor, checkout, browse or mix, got '%s'", v);
    case OPT_CLIENTS:
        return parse_unsigned("--clients", v, 1, BENCH_CLIENTS_MAX, &c->clients, err, err_len);
    case OPT_THREADS:
        *threads_given = true;
        return parse_unsigned("--threads", v, 1, BENCH_THREADS_MAX, &c->threads, err, err_len);
    case OPT_PIPELINE:
        return parse_unsigned("--pipeline", v, 1, BENCH_PIPELINE_MAX, &c->pipeline, err, err_len);
    case OPT_DURATION:
        return parse_double("--duration", v, 0.1, BENCH_DURATION_S_MAX, &c->duration_s, err,
                            err_len);
    case OPT_WARMUP:
        return parse_double("--warmup", v, 0, BENCH_DURATION_S_MAX, &c->warmup_s, err, err_len);
    case OPT_RATE:
        return parse_double("--rate", v, 1, BENCH_RATE_MAX, &c->rate_per_s, err, err_len);
    case OPT_REQUESTS:
        return parse_u64("--requests", v, 1, BENCH_REQUESTS_MAX, &c->requests, err, err_len);
    case OPT_KEYS:
        return parse_keys(v, c, err, err_len);
    case OPT_STOCK:
        if (parse_u64("--stock", v, 0, BENCH_STOCK_MAX, &u, err, err_len) < 0)
            return -1;
        c->stock = (int64_t)u;
        return 0;
    case OPT_PRELOAD:
        c->preload = true;
        return 0;
    case OPT_CHECK_ONLY:
        c->check_only = true;
        return 0;
    case OPT_NO_CHECK:
        c->no_check = true;
        return 0;
    case OPT_ITEM_BASE:
        return parse_u64("--item-base", v, 1, BENCH_ID_BASE_MAX, &c->item_base, err, err_len);
    case OPT_LOCATION:
        return parse_u64("--location", v, 1, BENCH_ID_BASE_MAX, &c->location, err, err_len);
    case OPT_LINES:
        return parse_unsigned("--lines", v, 1, BENCH_LINES_MAX, &c->lines_max, err, err_len);
    case OPT_QTY:
        return parse_unsigned("--qty", v, 1, 1000, &c->qty_max, err, err_len);
    case OPT_TTL_MS:
        if (parse_u64("--ttl-ms", v, 1, BENCH_TTL_MS_MAX, &u, err, err_len) < 0)
            return -1;
        c->ttl_ms = (uint32_t)u;
        return 0;
    case OPT_THINK_MS:
        if (parse_u64("--think-ms", v, 0, BENCH_THINK_MS_MAX, &u, err, err_len) < 0)
            return -1;
        c->think_ms = (uint32_t)u;
        return 0;
    case OPT_COMMIT_PCT:
        return parse_unsigned("--commit-pct", v, 0, 100, &c->commit_pct, err, err_len);
    case OPT_RELEASE_PCT:
        return parse_unsigned("--release-pct", v, 0, 100, &c->release_pct, err, err_len);
    case OPT_BUYERS:
        return parse_u64("--buyers", v, 1, BENCH_KEYS_MAX, &c->buyers, err, err_len);
    case OPT_LIMIT:
        return parse_u64("--limit", v, 1, BENCH_STOCK_MAX, &c->buyer_limit, err, err_len);
    case OPT_MIX:
        return parse_mix(v, c, err, err_len);
    case OPT_TOKEN:
        return copy_text("--token", v, c->token, sizeof c->token, err, err_len);
    case OPT_SHOPIFY:
        return copy_text("--shopify-version", v, c->shopify_version, sizeof c->shopify_version, err,
                         err_len);
    case OPT_PLOT:
        return copy_text("--plot", v, c->plot_path, sizeof c->plot_path, err, err_len);
    case OPT_CSV:
        return copy_text("--csv", v, c->csv_path, sizeof c->csv_path, err, err_len);
    case OPT_JSON:
        return copy_text("--json", v, c->json_path, sizeof c->json_path, err, err_len);
    case OPT_QUIET:
        c->quiet = true;
        return 0;
    case OPT_SEED:
        return parse_u64("--seed", v, 0, UINT64_MAX, &c->seed, err, err_len);
    default:
        return bench_errf(err, err_len, "unknown flag");
    }
}

int bench_config_parse(int argc, char **argv, struct bench_config *out, bool *help, char *err,
                       size_t err_len)
{
    assert(argc >= 1 && argv && out && help && err && err_len > 0);
    set_defaults(out);
    *help = false;
    err[0] = '\0';
    bool port_given = false, threads_given = false;
    optind = 1;
    opterr = 0; /* our own messages, not getopt's */
    for (;;) {
        int idx = 0;
        int opt = getopt_long(argc, argv, "h", long_options, &idx);
        if (opt == -1)
            break;
        if (opt == 'h' || opt == OPT_HELP) {
            *help = true;
            return 0;
        }
        if (opt == '?' || opt == ':') {
            const char *bad = argv[optind - 1];
            if (optopt)
                return bench_errf(err, err_len, "%s: needs a value", bad);
            return bench_errf(err, err_len, "unknown flag '%s' (see --help)", bad);
        }
        if (apply_option(opt, optarg, out, &port_given, &threads_given, err, err_len) < 0)
            return -1;
    }
    if (optind < argc)
        return bench_errf(err, err_len, "unexpected argument '%s' (see --help)", argv[optind]);
    return config_check(out, port_given, threads_given, err, err_len);
}

void bench_config_usage(FILE *out)
{
    fputs(
        "usage: invcore-bench [flags]\n"
        "  --host H --port P          server (127.0.0.1; 7379 invcored, 6379 redis, 7380 --http)\n"
        "  --http [--resp-port P]     invcored's HTTP face (Shopify routes); preload and check\n"
        "                             go over RESP on --resp-port (7379)\n"
        "  --target invcored|redis    the same scenarios; on Redis as Lua scripts\n"
        "  --scenario ping|decr|floor|checkout|browse|mix   (floor)\n"
        "  --clients N (50) --threads T (cores; half of them for a loopback --host)\n"
        "  --pipeline P (1)\n"
        "  --duration S (10) --warmup S (0) --rate R (open loop: R arrivals/s in all;\n"
        "                             latency from the intended send time)\n"
        "  --requests N               end after N transactions (a checkout, hold to\n"
        "                             commit, is one), or at --duration if sooner\n"
        "  --keys hot|uniform:N|zipf:N[:THETA] (hot)  --stock N per key (1000; decr 1e9)\n"
        "  --preload                  set every key's stock before the run\n"
        "  --check-only | --no-check  only check the server's state / skip the check\n"
        "  --item-base I (1000000) --location L (1): key k is item I+k at L\n"
        "  checkout: --lines N (1..3) --qty N (1) --ttl-ms T (5000) --think-ms T (50)\n"
        "            --commit-pct P (70) --release-pct P (20; the rest abandon their carts)\n"
        "            --buyers N [--limit N]  per-buyer limit (BUYER/LIMIT on HOLD.CREATE)\n"
        "  mix: --mix B,F,C           percent of browse, floor and checkout (80,15,5)\n"
        "  --token T                  AUTH token / HTTP Access-Token\n"
        "  --csv F --json F|- --plot F.png (gnuplot) --quiet --seed N\n"
        "exit: 0 ok; 1 the flash-sale check failed (oversold or units not conserved);\n"
        "      2 bad flags; 3 the server could not be reached or refused the setup\n",
        out);
}
