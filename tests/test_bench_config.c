/*
 * test_bench_config.c — invcore-bench's command line (core/tools/bench/
 * config.c) and its flash-sale verdict (verify_judge in verify.c), called
 * directly:
 *  - defaults, and every flag of the issue's list parsed into the config;
 *  - each kind of bad input refused with a message naming the flag: not a
 *    number, out of range, an unknown flag or value, a flag without its
 *    value, a stray argument, and the combinations (HTTP without holds,
 *    Redis over HTTP, commit + release over 100, a limit without buyers,
 *    more cart lines than keys, a check over too many keys);
 *  - the verdict: a clean sale passes; a planted oversell (a key below 0,
 *    a key above its stock with --check-only) fails as OVERSOLD; a lost
 *    acknowledged sale and an unacknowledged extra one both fail as units
 *    not conserved; requests never answered widen what passes, no more.
 */
#include "test_util.h"

#include "tools/bench/config.h"
#include "tools/bench/verify.h"
#include "tools/bench/workload.h"

#define ARGV_MAX 64
#define ERR_LEN 256

/* Parses a NULL-terminated list of arguments after the program name. */
static int parse(struct bench_config *c, char *err, const char *const *args)
{
    char *argv[ARGV_MAX];
    int argc = 0;
    argv[argc++] = (char *)"invcore-bench";
    for (int i = 0; args[i]; i++) {
        cr_assert_lt(argc, ARGV_MAX - 1);
        argv[argc++] = (char *)args[i];
    }
    argv[argc] = NULL;
    bool help = false;
    int rc = bench_config_parse(argc, argv, c, &help, err, ERR_LEN);
    cr_assert(!help);
    return rc;
}

/* The arguments must be refused with a message containing `want`. */
static void refused(const char *want, const char *const *args)
{
    struct bench_config c;
    char err[ERR_LEN] = "";
    cr_assert_eq(parse(&c, err, args), -1, "accepted, expected '%s'", want);
    cr_assert(strstr(err, want), "message '%s' lacks '%s'", err, want);
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

Test(bench_config, defaults_are_a_closed_loop_floor_sale_on_one_hot_key)
{
    struct bench_config c;
    char err[ERR_LEN];
    cr_assert_eq(parse(&c, err, ARGS("--threads", "2")), 0, "%s", err);
    cr_assert_str_eq(c.host, "127.0.0.1");
    cr_assert_eq(c.port, 7379);
    cr_assert_eq(c.resp_port, 7379);
    cr_assert_eq(c.scenario, SCEN_FLOOR);
    cr_assert_eq(c.target, TARGET_INVCORED);
    cr_assert_eq(c.clients, 50);
    cr_assert_eq(c.threads, 2);
    cr_assert_eq(c.pipeline, 1);
    cr_assert_eq(c.rate_per_s, 0);
    cr_assert_eq(c.keys, KEYS_HOT);
    cr_assert_eq(c.keys_n, 1);
    cr_assert_eq(c.stock, 1000);
}

Test(bench_config, every_flag_of_the_issue_is_read)
{
    struct bench_config c;
    char err[ERR_LEN];
    cr_assert_eq(
        parse(&c, err,
              ARGS("--host", "localhost", "--port", "6400", "--target", "redis", "--scenario",
                   "checkout", "--clients", "64", "--threads", "4", "--pipeline", "16",
                   "--duration", "2.5", "--rate", "1000", "--keys", "zipf:5000:0.9", "--stock", "7",
                   "--preload", "--plot", "/tmp/x.png", "--csv", "/tmp/x.csv", "--lines", "3",
                   "--buyers", "10", "--limit", "2")),
        0, "%s", err);
    cr_assert_str_eq(c.host, "localhost");
    cr_assert_eq(c.port, 6400);
    cr_assert_eq(c.target, TARGET_REDIS);
    cr_assert_eq(c.scenario, SCEN_CHECKOUT);
    cr_assert_eq(c.clients, 64);
    cr_assert_eq(c.threads, 4);
    cr_assert_eq(c.pipeline, 16);
    cr_assert_float_eq(c.duration_s, 2.5, 1e-9);
    cr_assert_float_eq(c.rate_per_s, 1000, 1e-9);
    cr_assert_eq(c.keys, KEYS_ZIPF);
    cr_assert_eq(c.keys_n, 5000);
    cr_assert_float_eq(c.zipf_theta, 0.9, 1e-9);
    cr_assert_eq(c.stock, 7);
    cr_assert(c.preload);
    cr_assert_str_eq(c.plot_path, "/tmp/x.png");
    cr_assert_str_eq(c.csv_path, "/tmp/x.csv");
    cr_assert_eq(c.lines_max, 3);
    cr_assert_eq(c.buyers, 10);
    cr_assert_eq(c.buyer_limit, 2);
}

Test(bench_config, http_takes_its_own_port_and_checks_over_resp)
{
    struct bench_config c;
    char err[ERR_LEN];
    cr_assert_eq(parse(&c, err, ARGS("--http", "--scenario", "decr")), 0, "%s", err);
    cr_assert(c.http);
    cr_assert_eq(c.port, 7380);
    cr_assert_eq(c.resp_port, 7379);
    cr_assert_eq(c.stock, 1000000000); /* decr: a stock that lasts the run */
}

Test(bench_config, default_threads_leave_a_loopback_server_its_share_of_the_cores)
{
    /* A server on this box: half the cores, at least one. */
    cr_expect_eq(bench_default_threads("127.0.0.1", 2), 1);
    cr_expect_eq(bench_default_threads("127.3.2.1", 16), 8);
    cr_expect_eq(bench_default_threads("::1", 8), 4);
    cr_expect_eq(bench_default_threads("localhost", 4), 2);
    cr_expect_eq(bench_default_threads("127.0.0.1", 1), 1);
    /* A server elsewhere: every core. */
    cr_expect_eq(bench_default_threads("10.0.0.7", 2), 2);
    cr_expect_eq(bench_default_threads("128.0.0.1", 16), 16);
    cr_expect_eq(bench_default_threads("::2", 8), 8);
    cr_expect_eq(bench_default_threads("db.example", 4), 4);
    /* Unknown core count, and more cores than threads may run. */
    cr_expect_eq(bench_default_threads("10.0.0.7", 0), 1);
    cr_expect_eq(bench_default_threads("10.0.0.7", 100000), BENCH_THREADS_MAX);
    /* The parsed default is the same rule for this box. */
    struct bench_config c;
    char err[ERR_LEN];
    cr_assert_eq(parse(&c, err, ARGS("--clients", "1000")), 0, "%s", err);
    cr_expect_eq(c.threads, bench_default_threads("127.0.0.1", sysconf(_SC_NPROCESSORS_ONLN)));
}

Test(bench_config, more_threads_than_clients_run_one_thread_per_client)
{
    struct bench_config c;
    char err[ERR_LEN];
    cr_assert_eq(parse(&c, err, ARGS("--clients", "3", "--threads", "8")), 0, "%s", err);
    cr_assert_eq(c.threads, 3);
}

Test(bench_config, bad_numbers_are_refused_naming_the_flag)
{
    refused("--clients: 'x' is not a whole number", ARGS("--clients", "x"));
    refused("--clients: '5x' is not a whole number", ARGS("--clients", "5x"));
    refused("--clients: '-1' is not a whole number", ARGS("--clients", "-1"));
    refused("--clients: 0 is out of range", ARGS("--clients", "0"));
    refused("--clients: 10001 is out of range", ARGS("--clients", "10001"));
    refused("--pipeline: 1025 is out of range", ARGS("--pipeline", "1025"));
    refused("--port: 65536 is out of range", ARGS("--port", "65536"));
    refused("--duration: 'soon' is not a number", ARGS("--duration", "soon"));
    refused("--duration: 0 is out of range", ARGS("--duration", "0"));
    refused("--rate: 'nan' is not a number", ARGS("--rate", "nan"));
    refused("--stock: 1000000001 is out of range", ARGS("--stock", "1000000001"));
    refused("--stock: '99999999999999999999' is not a whole number",
            ARGS("--stock", "99999999999999999999"));
    refused("--ttl-ms: 0 is out of range", ARGS("--ttl-ms", "0"));
    refused("--lines: 4 is out of range", ARGS("--lines", "4"));
}

Test(bench_config, unknown_flags_values_and_stray_arguments_are_refused)
{
    refused("unknown flag '--fast'", ARGS("--fast"));
    refused("--clients: needs a value", ARGS("--clients"));
    refused("unexpected argument 'now'", ARGS("now"));
    refused("--scenario: expected ping, decr, floor, checkout, browse or mix, got 'buy'",
            ARGS("--scenario", "buy"));
    refused("--target: expected invcored or redis, got 'memcached'", ARGS("--target", "memcached"));
    refused("--keys: expected hot, uniform:N or zipf:N[:THETA], got 'cold'",
            ARGS("--keys", "cold"));
    refused("--keys N: 0 is out of range", ARGS("--keys", "uniform:0"));
    refused("--keys zipf theta: 1 is out of range", ARGS("--keys", "zipf:10:1"));
    refused("--mix: percentages must sum to 100, not 90", ARGS("--mix", "80,5,5"));
    refused("--mix: expected three percentages", ARGS("--mix", "50,25,20,5"));
    refused("--host: must be 1..255 bytes", ARGS("--host", ""));
}

Test(bench_config, contradicting_combinations_are_refused)
{
    refused("needs RESP: the HTTP dialects have no holds",
            ARGS("--http", "--scenario", "checkout"));
    refused("needs RESP", ARGS("--http", "--scenario", "mix"));
    refused("Redis has no HTTP face", ARGS("--http", "--target", "redis"));
    refused("--commit-pct + --release-pct must be at most 100",
            ARGS("--commit-pct", "80", "--release-pct", "30"));
    refused("--limit needs --buyers", ARGS("--limit", "2"));
    refused("--lines 3: a cart's lines are distinct keys",
            ARGS("--lines", "3", "--keys", "uniform:2"));
    refused("the flash-sale check reads every key", ARGS("--keys", "uniform:2000000"));
    refused("--check-only: --scenario browse sells nothing",
            ARGS("--check-only", "--scenario", "browse"));
    refused("contradict", ARGS("--check-only", "--no-check"));
}

Test(bench_config, a_large_catalog_runs_without_the_check)
{
    struct bench_config c;
    char err[ERR_LEN];
    cr_assert_eq(parse(&c, err, ARGS("--keys", "uniform:2000000", "--no-check")), 0, "%s", err);
    cr_assert_eq(c.keys_n, 2000000);
}

Test(bench_config, help_stops_the_parse)
{
    struct bench_config c;
    char err[ERR_LEN];
    char *argv[] = {(char *)"invcore-bench", (char *)"--clients", (char *)"x", (char *)"--help",
                    NULL};
    bool help = false;
    /* The bad value comes first: it is refused before --help is seen. */
    cr_assert_eq(bench_config_parse(4, argv, &c, &help, err, sizeof err), -1);
    char *argv2[] = {(char *)"invcore-bench", (char *)"--help", (char *)"--clients", (char *)"x",
                     NULL};
    cr_assert_eq(bench_config_parse(4, argv2, &c, &help, err, sizeof err), 0);
    cr_assert(help);
}

/* ---- the verdict ---------------------------------------------------------- */

#define KEYS 4
#define STOCK 10

/* A sale of KEYS keys of STOCK units: the state before and after, the
 * clients' counters, and the verdict of judge(). */
struct sale {
    struct bench_config c;
    struct level_state before[KEYS], after[KEYS];
    uint64_t counters[CNT_KINDS];
    char verdict[VERIFY_VERDICT_MAX];
};

static void fresh(struct level_state *s)
{
    for (int i = 0; i < KEYS; i++)
        s[i] = (struct level_state){STOCK, 0, 0};
}

static void sale_init(struct sale *s)
{
    memset(s, 0, sizeof *s);
    char err[ERR_LEN];
    cr_assert_eq(parse(&s->c, err, ARGS("--keys", "uniform:4", "--stock", "10")), 0, "%s", err);
    fresh(s->before);
    fresh(s->after);
}

/* The verdict of a run (with_before) or of --check-only. */
static bool judge(struct sale *s, bool with_before)
{
    return verify_judge(&s->c, with_before ? s->before : NULL, s->after,
                        with_before ? s->counters : NULL, s->verdict, sizeof s->verdict);
}

Test(bench_config, a_clean_sale_passes_with_its_figures)
{
    struct sale s;
    sale_init(&s);
    /* key 0: 10 sold by decrements; key 1: 4 committed, 2 still held;
     * key 2: a hold that expired (units back). */
    s.after[0].available = 0;
    s.after[1] = (struct level_state){4, 2, 4};
    s.counters[CNT_SOLD_UNITS] = 10;
    s.counters[CNT_COMMIT_UNITS] = 4;
    cr_assert(judge(&s, true), "%s", s.verdict);
    cr_assert(strstr(s.verdict, "sold 14 (10 by decrements, 4 committed) of 40"), "%s", s.verdict);
}

Test(bench_config, a_planted_oversell_is_caught)
{
    struct sale s;
    sale_init(&s);
    /* 13 decrements acknowledged on a key of 10: available -3. The counts
     * agree with the server, and still it is an oversell. */
    s.after[2].available = -3;
    s.counters[CNT_SOLD_UNITS] = 13;
    cr_assert(!judge(&s, true));
    cr_assert(strstr(s.verdict, "OVERSOLD: 1 key(s) below 0"), "%s", s.verdict);
    cr_assert(strstr(s.verdict, "item 1000002 available -3"), "%s", s.verdict);
}

Test(bench_config, check_only_catches_a_key_below_zero_or_above_its_stock)
{
    struct sale s;
    sale_init(&s);
    cr_assert(judge(&s, false), "%s", s.verdict);
    s.after[3].reserved = 1; /* 11 units on a key of 10 */
    cr_assert(!judge(&s, false));
    cr_assert(strstr(s.verdict, "OVERSOLD: 0 key(s) below 0 and 1 above --stock"), "%s", s.verdict);
    fresh(s.after);
    s.after[1].committed = -1;
    cr_assert(!judge(&s, false));
    cr_assert(strstr(s.verdict, "OVERSOLD: 1 key(s) below 0"), "%s", s.verdict);
}

Test(bench_config, a_lost_or_an_extra_sale_is_units_not_conserved)
{
    struct sale s;
    sale_init(&s);
    /* 5 decrements acknowledged, the server shows 4: one acknowledged sale lost. */
    s.after[0].available = 6;
    s.counters[CNT_SOLD_UNITS] = 5;
    cr_assert(!judge(&s, true));
    cr_assert(strstr(s.verdict, "UNITS NOT CONSERVED"), "%s", s.verdict);
    /* The server shows 6: one sale nobody was told of. */
    s.after[0].available = 4;
    cr_assert(!judge(&s, true));
    cr_assert(strstr(s.verdict, "UNITS NOT CONSERVED"), "%s", s.verdict);
    /* ... unless one decrement was never answered: then 5 or 6 pass, 7 not. */
    s.counters[CNT_UNKNOWN_DECR] = 1;
    cr_assert(judge(&s, true), "%s", s.verdict);
    s.after[0].available = 3;
    cr_assert(!judge(&s, true));
    /* A committed unit the clients were not told of. */
    sale_init(&s);
    s.after[1] = (struct level_state){9, 0, 1};
    cr_assert(!judge(&s, true));
    cr_assert(strstr(s.verdict, "committed 1 (clients were told 0, 0 unanswered)"), "%s",
              s.verdict);
}
