/*
 * test_server_introspect.c — integration: the monitoring and keyspace
 * commands Redis tools use (INFO's Redis fields, SLOWLOG, LATENCY, MEMORY,
 * SCAN, TYPE, CONFIG GET slowlog-*), their bad inputs, and redis-cli's own
 * modes (--stat, --scan, --bigkeys, --memkeys) run against a real
 * build/invcored (see test_server_harness.h).
 *
 * The server runs with --slowlog-log-slower-than 0, so every command is
 * slow: what SLOWLOG and LATENCY hold is then deterministic.
 */
#include <limits.h>
#include <spawn.h>

#include "test_server_harness.h"

#include "server/config.h"

extern char **environ;

#define SLOWLOG_LEN_TEST 16 /* --slowlog-max-len of the suite's server */
#define WAIT_OPS_MS 10000 /* bound on waiting for an ops/s sample */
#define CLI_TIMEOUT_MS 20000 /* bound on one redis-cli run */
#define CLI_OUT_MAX 65536 /* bytes of redis-cli output kept */
#define STAT_LINES 6 /* --stat: header (2) and data lines read */

static void setup(void)
{
    const char *extra[] = {
        "--slowlog-log-slower-than", "0", "--slowlog-max-len", "16", "--threads", "2", NULL};
    srv_suite_start(extra);
}

static void teardown(void)
{
    srv_suite_stop();
}

TestSuite(introspect, .init = setup, .fini = teardown, .timeout = 60);

/* Items 1, 2, 10 at locations 1 and 2: levels 1:1 1:2 2:1 2:2 10:1 10:2. */
static void seed(void)
{
    expect_status(C, "OK", "LOC.SET 1 name A");
    expect_status(C, "OK", "LOC.SET 2 name B");
    const char *items[] = {"1", "2", "10"};
    for (size_t i = 0; i < 3; i++) {
        expect_status(C, "OK", "ITEM.SET %s sku s%s", items[i], items[i]);
        for (int loc = 1; loc <= 2; loc++)
            expect_level(C, 5, 0, "LEVEL.SET %s %d 5", items[i], loc);
    }
}

/* The INFO text for the given arguments (caller frees). */
static char *info(const char *args)
{
    char line[256];
    snprintf(line, sizeof line, "INFO %s", args); /* hiredis splits at spaces */
    redisReply *r = cmd(C, line);
    cr_assert_eq(r->type, REDIS_REPLY_STRING, "INFO %s: type %d", args, r->type);
    char *s = strdup(r->str);
    freeReplyObject(r);
    return s;
}

/* The value of "field:" at a line start in text, or LLONG_MIN if absent. */
static long long field(const char *text, const char *name)
{
    char key[128];
    snprintf(key, sizeof key, "\n%s:", name);
    const char *p = strncmp(text, key + 1, strlen(key + 1)) == 0 ? text - 1 : strstr(text, key);
    if (p == NULL)
        return LLONG_MIN;
    return strtoll(p + strlen(key), NULL, 10);
}

/* ---- INFO ------------------------------------------------------------------ */

Test(introspect, the_default_is_one_event_loop_per_two_cores)
{
    /* the --threads default (docs/PROTOCOL.md): measured on 2 cores with
     * the clients on the box, one loop gave the better tail */
    const long cores[] = {-1, 0, 1, 2, 3, 4, 16, 100000};
    const unsigned want[] = {1, 1, 1, 1, 1, 2, 8, SERVER_THREADS_MAX};
    for (size_t i = 0; i < sizeof cores / sizeof cores[0]; i++)
        cr_assert_eq(config_default_threads(cores[i]), want[i], "%ld cores: %u loops, want %u",
                     cores[i], config_default_threads(cores[i]), want[i]);
}

Test(introspect, info_has_the_fields_redis_tools_read)
{
    seed();
    char *t = info("");
    const char *present[] = {"redis_version",
                             "redis_mode",
                             "os",
                             "arch_bits",
                             "tcp_port",
                             "uptime_in_seconds",
                             "uptime_in_days",
                             "connected_clients",
                             "blocked_clients",
                             "maxclients",
                             "used_memory",
                             "used_memory_rss",
                             "used_memory_peak",
                             "maxmemory",
                             "loading",
                             "aof_enabled",
                             "aof_rewrite_in_progress",
                             "rdb_bgsave_in_progress",
                             "total_commands_processed",
                             "instantaneous_ops_per_sec",
                             "total_connections_received",
                             "connected_slaves",
                             "master_repl_offset",
                             "used_cpu_sys",
                             "cluster_enabled",
                             "table_bytes",
                             "journal_position",
                             "holds_active"};
    for (size_t i = 0; i < sizeof present / sizeof present[0]; i++)
        cr_assert_neq(field(t, present[i]), LLONG_MIN, "INFO lacks %s", present[i]);
    cr_assert_not_null(strstr(t, "\r\nredis_mode:standalone\r\n"));
    cr_assert_not_null(strstr(t, "\r\nrole:master\r\n"));
    cr_assert_not_null(strstr(t, "\r\nmaxmemory_policy:noeviction\r\n"));
    cr_assert_not_null(strstr(t, "\r\nused_memory_human:"));
    cr_assert_not_null(strstr(t, "\r\ndb0:keys=6,expires=0,avg_ttl=0\r\n"));
    cr_assert_gt(field(t, "used_memory"), 0);
    cr_assert_geq(field(t, "used_memory_peak"), field(t, "used_memory"));
    cr_assert_gt(field(t, "used_memory_rss"), 0);
    cr_assert_eq(field(t, "connected_clients"), 1);
    cr_assert_eq(field(t, "blocked_clients"), 0);
    cr_assert_eq(field(t, "tcp_port"), S.port);
    cr_assert_eq(field(t, "aof_enabled"), S.durable ? 1 : 0);
    cr_assert_geq(field(t, "total_commands_processed"), 11, "seed ran 11");
    if (S.durable)
        cr_assert_gt(field(t, "master_repl_offset"), 0, "the journal position");
    /* redis-cli --stat finds fields by substring: used_memory and loading
     * must come first under their own names */
    cr_assert_eq(strstr(t, "used_memory"), strstr(t, "used_memory:"));
    cr_assert_eq(strstr(t, "loading"), strstr(t, "loading:"));
    free(t);
}

Test(introspect, info_answers_the_sections_asked_for)
{
    char *t = info("commandstats");
    cr_assert_not_null(strstr(t, "# Commandstats"));
    cr_assert_null(strstr(t, "# Server"));
    free(t);
    t = info("server CLIENTS keyspace");
    cr_assert(strstr(t, "# Server") && strstr(t, "# Clients") && strstr(t, "# Keyspace"));
    cr_assert_null(strstr(t, "# Memory"));
    free(t);
    t = info("default");
    cr_assert(strstr(t, "# Server") && strstr(t, "# Persistence") && strstr(t, "# Journal"));
    cr_assert_null(strstr(t, "# Commandstats"), "default leaves commandstats out");
    cr_assert_null(strstr(t, "# Latencystats"));
    free(t);
    t = info("all");
    cr_assert(strstr(t, "# Commandstats") && strstr(t, "# Latencystats"));
    free(t);
    t = info("nosuchsection");
    cr_assert_eq(t[0], '\0', "an unknown section is empty, as Redis");
    free(t);
    t = info("keyspace");
    cr_assert_null(strstr(t, "db0:"), "no level: no db0 line, as Redis");
    free(t);
}

/* The cmdstat_<name> line's value of key (calls, usec, ...). */
static long long cmdstat(const char *text, const char *name, const char *key)
{
    char pre[96];
    snprintf(pre, sizeof pre, "\r\ncmdstat_%s:", name);
    const char *line = strstr(text, pre);
    cr_assert_not_null(line, "no %s", pre + 2);
    const char *end = strstr(line + 2, "\r\n");
    char k[64];
    snprintf(k, sizeof k, "%s=", key);
    for (const char *p = line; p && p < end; p = strchr(p + 1, ',')) {
        const char *q = p[0] == ',' ? p + 1 : strchr(p, ':') + 1;
        if (strncmp(q, k, strlen(k)) == 0)
            return strtoll(q + strlen(k), NULL, 10);
    }
    cr_assert_fail("%s has no %s", pre + 2, key);
    return -1;
}

Test(introspect, commandstats_count_calls_time_failures_and_rejections)
{
    seed();
    expect_error(C, "ERR wrong number", "LEVEL.GET 1");
    expect_error(C, "NOTFOUND", "LEVEL.GET 9 9");
    expect_level(C, 5, 0, "LEVEL.GET 1 1");
    char *t = info("commandstats");
    cr_assert_eq(cmdstat(t, "level.get", "calls"), 2, "rejected calls do not run");
    cr_assert_eq(cmdstat(t, "level.get", "rejected_calls"), 1);
    cr_assert_eq(cmdstat(t, "level.get", "failed_calls"), 1);
    cr_assert_geq(cmdstat(t, "level.get", "usec"), 0);
    cr_assert_eq(cmdstat(t, "level.set", "calls"), 6);
    cr_assert_not_null(strstr(t, "usec_per_call="));
    cr_assert_null(strstr(t, "cmdstat_LEVEL"), "names are lower case");
    free(t);
}

Test(introspect, instantaneous_ops_per_sec_reports_a_recent_window)
{
    /* a burst, then wait (bounded) for the window holding it to complete */
    for (int i = 0; i < 200; i++)
        redisAppendCommand(C, "PING");
    for (int i = 0; i < 200; i++) {
        redisReply *r = NULL;
        cr_assert_eq(redisGetReply(C, (void **)&r), REDIS_OK);
        freeReplyObject(r);
    }
    long long ops = 0, deadline = srv_now_ms() + WAIT_OPS_MS;
    while (ops == 0 && srv_now_ms() < deadline) {
        char *t = info("stats");
        ops = field(t, "instantaneous_ops_per_sec");
        free(t);
    }
    cr_assert_gt(ops, 0, "no window counted the burst");
}

/* ---- SLOWLOG ----------------------------------------------------------------- */

static const redisReply *arg_of(const redisReply *entry, size_t i)
{
    cr_assert_eq(entry->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(entry->elements, 6, "[id, time, duration, args, addr, name]");
    cr_assert_lt(i, entry->element[3]->elements);
    return entry->element[3]->element[i];
}

Test(introspect, slowlog_keeps_slow_commands_with_arguments_cut_as_redis)
{
    seed();
    char big[301];
    memset(big, 'x', 300);
    big[300] = '\0';
    expect_status(C, "OK", "CLIENT SETNAME slowpoke");
    expect_status(C, "OK", "SLOWLOG RESET");
    redisReply *r = cmd(C, "ECHO %s", big);
    freeReplyObject(r);
    /* 41 arguments: 31 kept and a note; a big ITEM.MGET is the slow one */
    char mget[512] = "ITEM.MGET";
    for (int i = 0; i < 40; i++)
        snprintf(mget + strlen(mget), sizeof mget - strlen(mget), " %d", i);
    r = cmd(C, mget);
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    freeReplyObject(r);

    r = cmd(C, "SLOWLOG GET");
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    cr_assert_geq(r->elements, 3, "RESET, ECHO, ITEM.MGET");
    const redisReply *mg = r->element[0], *echo = r->element[1];
    cr_assert_gt(mg->element[0]->integer, echo->element[0]->integer, "newest first");
    cr_assert_gt(mg->element[1]->integer, 1600000000, "unix time");
    cr_assert_geq(mg->element[2]->integer, 0);
    cr_assert_eq(mg->element[3]->elements, 32);
    cr_assert_str_eq(arg_of(mg, 0)->str, "ITEM.MGET");
    cr_assert_str_eq(arg_of(mg, 30)->str, "29");
    cr_assert_str_eq(arg_of(mg, 31)->str, "... (10 more arguments)");
    cr_assert_eq(mg->element[4]->type, REDIS_REPLY_STRING, "client address");
    cr_assert(strncmp(mg->element[4]->str, "127.0.0.1:", 10) == 0, "address %s",
              mg->element[4]->str);
    cr_assert_str_eq(mg->element[5]->str, "slowpoke", "the client's name");
    cr_assert_str_eq(arg_of(echo, 0)->str, "ECHO");
    cr_assert(strncmp(arg_of(echo, 1)->str, big, 128) == 0);
    cr_assert_str_eq(arg_of(echo, 1)->str + 128, "... (172 more bytes)");
    freeReplyObject(r);

    r = cmd(C, "SLOWLOG GET 1");
    cr_assert_eq(r->elements, 1);
    freeReplyObject(r);
    cr_assert_geq(expect_int(C, "SLOWLOG LEN"), 4);
}

Test(introspect, slowlog_never_keeps_a_password_and_stays_within_max_len)
{
    /* Without --requirepass the default user takes any password. */
    expect_status(C, "OK", "AUTH default hunter2");
    redisReply *r = cmd(C, "SLOWLOG GET 1");
    cr_assert_eq(r->elements, 1);
    cr_assert_str_eq(arg_of(r->element[0], 0)->str, "AUTH");
    cr_assert_str_eq(arg_of(r->element[0], 1)->str, "(redacted)");
    cr_assert_str_eq(arg_of(r->element[0], 2)->str, "(redacted)");
    freeReplyObject(r);
    expect_error(C, "ERR AUTH <password> called without", "AUTH hunter3");
    r = cmd(C, "SLOWLOG GET 1");
    cr_assert_eq(r->element[0]->element[3]->elements, 2);
    cr_assert_str_eq(arg_of(r->element[0], 1)->str, "(redacted)");
    freeReplyObject(r);
    for (int i = 0; i < 3 * SLOWLOG_LEN_TEST; i++)
        expect_status(C, "PONG", "PING");
    cr_assert_eq(expect_int(C, "SLOWLOG LEN"), SLOWLOG_LEN_TEST);
    r = cmd(C, "SLOWLOG GET -1");
    cr_assert_eq(r->elements, SLOWLOG_LEN_TEST);
    for (size_t i = 1; i < r->elements; i++)
        cr_assert_gt(r->element[i - 1]->element[0]->integer, r->element[i]->element[0]->integer);
    freeReplyObject(r);
    expect_status(C, "OK", "SLOWLOG RESET");
    cr_assert_leq(expect_int(C, "SLOWLOG LEN"), 1, "only the RESET itself");
}

Test(introspect, slowlog_refuses_bad_input)
{
    expect_error(C, "ERR count should be greater than or equal to -1", "SLOWLOG GET -2");
    expect_error(C, "ERR count should be", "SLOWLOG GET abc");
    expect_error(C, "ERR unknown subcommand", "SLOWLOG NOSUCH");
    expect_error(C, "ERR unknown subcommand", "SLOWLOG LEN extra");
    expect_error(C, "ERR wrong number", "SLOWLOG");
    redisReply *r = cmd(C, "SLOWLOG HELP");
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    cr_assert_gt(r->elements, 4);
    freeReplyObject(r);
}

Test(introspect, config_get_shows_the_slowlog_settings)
{
    redisReply *r = cmd(C, "CONFIG GET slowlog-*");
    cr_assert_eq(r->elements, 4);
    cr_assert_str_eq(r->element[0]->str, "slowlog-log-slower-than");
    cr_assert_str_eq(r->element[1]->str, "0");
    cr_assert_str_eq(r->element[2]->str, "slowlog-max-len");
    cr_assert_str_eq(r->element[3]->str, "16");
    freeReplyObject(r);
}

/* ---- LATENCY ------------------------------------------------------------------ */

Test(introspect, latency_reports_slow_commands_as_events)
{
    expect_status(C, "PONG", "PING"); /* fast-command */
    expect_int(C, "LATENCY RESET nosuch"); /* any command: "command" */
    redisReply *r = cmd(C, "LATENCY LATEST");
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    cr_assert_geq(r->elements, 1);
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *ev = r->element[i];
        cr_assert_eq(ev->elements, 4, "[event, time, latest_ms, max_ms]");
        cr_assert(strcmp(ev->element[0]->str, "command") == 0 ||
                  strcmp(ev->element[0]->str, "fast-command") == 0);
        cr_assert_gt(ev->element[1]->integer, 1600000000);
        cr_assert_geq(ev->element[3]->integer, ev->element[2]->integer);
    }
    freeReplyObject(r);
    r = cmd(C, "LATENCY HISTORY fast-command");
    cr_assert_geq(r->elements, 1);
    cr_assert_eq(r->element[0]->elements, 2, "[time, latency_ms]");
    freeReplyObject(r);
    r = cmd(C, "LATENCY HISTORY nosuch-event");
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(r->elements, 0, "an unknown event has no history (as Redis)");
    freeReplyObject(r);
    r = cmd(C, "LATENCY DOCTOR");
    cr_assert_eq(r->type, REDIS_REPLY_STRING);
    cr_assert_not_null(strstr(r->str, "command"));
    freeReplyObject(r);
    cr_assert_geq(expect_int(C, "LATENCY RESET"), 1);
    cr_assert_eq(expect_int(C, "LATENCY RESET fast-command"), 0);
    r = cmd(C, "LATENCY HELP");
    cr_assert_gt(r->elements, 4);
    freeReplyObject(r);
    expect_error(C, "ERR unknown subcommand", "LATENCY NOSUCH");
    expect_error(C, "ERR unknown subcommand", "LATENCY HISTORY");
    expect_error(C, "ERR wrong number", "LATENCY");
}

/* ---- MEMORY ------------------------------------------------------------------- */

Test(introspect, memory_usage_and_stats_describe_levels)
{
    seed();
    long long bytes = expect_int(C, "MEMORY USAGE 10:1");
    cr_assert_gt(bytes, 0);
    cr_assert_eq(expect_int(C, "MEMORY USAGE 010:01"), bytes, "ids may have leading zeros");
    cr_assert_eq(expect_int(C, "MEMORY USAGE 10:1 SAMPLES 5"), bytes);
    const char *absent[] = {"10:9", "junk", "10:", ":1", "1:2:3", "-1:1", ""};
    for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++) {
        redisReply *r = cmd(C, "MEMORY USAGE %s", absent[i]);
        cr_assert_eq(r->type, REDIS_REPLY_NIL, "MEMORY USAGE '%s'", absent[i]);
        freeReplyObject(r);
    }
    expect_error(C, "ERR syntax error", "MEMORY USAGE 10:1 FOO 5");
    expect_error(C, "ERR value is out of range", "MEMORY USAGE 10:1 SAMPLES -1");
    expect_error(C, "ERR unknown subcommand", "MEMORY USAGE 10:1 SAMPLES");
    expect_error(C, "ERR unknown subcommand", "MEMORY NOSUCH");

    redisReply *r = cmd(C, "MEMORY STATS");
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(r->elements % 2, 0);
    long long total = -1, keys = -1;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        if (strcmp(r->element[i]->str, "total.allocated") == 0)
            total = r->element[i + 1]->integer;
        if (strcmp(r->element[i]->str, "keys.count") == 0)
            keys = r->element[i + 1]->integer;
    }
    cr_assert_gt(total, 0);
    cr_assert_eq(keys, 6);
    freeReplyObject(r);
    r = cmd(C, "MEMORY DOCTOR");
    cr_assert_eq(r->type, REDIS_REPLY_STRING);
    cr_assert_gt(r->len, 10);
    freeReplyObject(r);
    r = cmd(C, "MEMORY HELP");
    cr_assert_gt(r->elements, 4);
    freeReplyObject(r);
}

/* ---- SCAN, TYPE ---------------------------------------------------------------- */

/* Scans with the given options to the end; returns the names, sorted and
 * joined by spaces (caller frees). */
static char *scan_all(const char *opts)
{
    char cursor[32] = "0", names[64][48];
    size_t n = 0, rounds = 0;
    do {
        char line[256];
        snprintf(line, sizeof line, "SCAN %s %s", cursor, opts); /* split at spaces */
        redisReply *r = cmd(C, line);
        cr_assert_eq(r->type, REDIS_REPLY_ARRAY, "SCAN: %s", r->str ? r->str : "");
        cr_assert_eq(r->elements, 2);
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            cr_assert_lt(n, 64);
            snprintf(names[n++], sizeof names[0], "%s", r->element[1]->element[i]->str);
        }
        freeReplyObject(r);
        cr_assert_lt(++rounds, 1000, "SCAN never ends");
    } while (strcmp(cursor, "0") != 0);
    qsort(names, n, sizeof names[0], (int (*)(const void *, const void *))strcmp);
    char *out = calloc(1, 64 * 49 + 1);
    for (size_t i = 0; i < n; i++) {
        if (i)
            strcat(out, " ");
        strcat(out, names[i]);
    }
    return out;
}

Test(introspect, scan_names_every_level_once)
{
    seed();
    const struct {
        const char *opts, *want;
    } cases[] = {
        {"", "10:1 10:2 1:1 1:2 2:1 2:2"},
        {"COUNT 1", "10:1 10:2 1:1 1:2 2:1 2:2"},
        {"COUNT 100000", "10:1 10:2 1:1 1:2 2:1 2:2"},
        {"MATCH 1:*", "1:1 1:2"},
        {"MATCH 1*:2 COUNT 2", "10:2 1:2"},
        {"MATCH [12]:[^1]", "1:2 2:2"},
        {"TYPE level", "10:1 10:2 1:1 1:2 2:1 2:2"},
        {"TYPE LEVEL MATCH *0*", "10:1 10:2"},
        {"TYPE string", ""},
        {"MATCH nothing*", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = scan_all(cases[i].opts);
        cr_assert_str_eq(got, cases[i].want, "SCAN %s", cases[i].opts);
        free(got);
    }
}

Test(introspect, scan_and_type_refuse_bad_input)
{
    seed();
    expect_error(C, "ERR invalid cursor", "SCAN x");
    expect_error(C, "ERR invalid cursor", "SCAN -1");
    expect_error(C, "ERR invalid cursor", "SCAN 18446744073709551616");
    expect_error(C, "ERR syntax error", "SCAN 0 COUNT 0");
    expect_error(C, "ERR syntax error", "SCAN 0 COUNT -5");
    expect_error(C, "ERR value is not an integer", "SCAN 0 COUNT many");
    expect_error(C, "ERR syntax error", "SCAN 0 NOSUCH 1");
    expect_error(C, "ERR wrong number", "SCAN 0 MATCH");
    expect_error(C, "ERR wrong number", "SCAN");
    char pattern[300];
    memset(pattern, '*', sizeof pattern - 1);
    pattern[sizeof pattern - 1] = '\0';
    expect_error(C, "ERR MATCH pattern longer", "SCAN 0 MATCH %s", pattern);

    expect_status(C, "level", "TYPE 10:1");
    expect_status(C, "level", "TYPE 0010:0001");
    const char *none[] = {"10:9", "junk", ":", "1:2:3", "1:", "99999999999999999999:1"};
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++)
        expect_status(C, "none", "TYPE %s", none[i]);
    expect_error(C, "ERR wrong number", "TYPE");
    expect_error(C, "ERR wrong number", "TYPE a b");
}

Test(introspect, command_info_and_docs_describe_the_new_commands)
{
    const char *names[] = {"slowlog", "latency", "memory", "scan", "type"};
    for (size_t i = 0; i < 5; i++) {
        redisReply *r = cmd(C, "COMMAND INFO %s", names[i]);
        cr_assert_eq(r->elements, 1);
        cr_assert_eq(r->element[0]->type, REDIS_REPLY_ARRAY, "COMMAND INFO %s", names[i]);
        cr_assert_str_eq(r->element[0]->element[0]->str, names[i]);
        freeReplyObject(r);
        r = cmd(C, "COMMAND DOCS %s", names[i]);
        cr_assert_eq(r->elements, 2);
        cr_assert_str_eq(r->element[1]->element[0]->str, "summary");
        cr_assert_gt(strlen(r->element[1]->element[1]->str), 4);
        freeReplyObject(r);
    }
}

/* ---- redis-cli ------------------------------------------------------------------ */

typedef struct {
    char out[CLI_OUT_MAX];
    size_t len;
    int status; /* exit status; -1 if killed or not exited */
} cli_run;

/* Runs redis-cli -p PORT args... (stdout and stderr into r->out). When
 * max_lines > 0, stops it (SIGTERM, by its pid) once that many lines came;
 * otherwise waits for its exit. Both within CLI_TIMEOUT_MS. */
static void cli(cli_run *r, int max_lines, const char *const *args)
{
    char port[16];
    const char *argv[32];
    int n = 0, pfd[2], lines = 0;
    snprintf(port, sizeof port, "%d", S.port);
    argv[n++] = "stdbuf"; /* line-buffered output: --stat is read live */
    argv[n++] = "-oL";
    argv[n++] = "redis-cli";
    argv[n++] = "-p";
    argv[n++] = port;
    for (int i = 0; args[i] && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    cr_assert_eq(pipe(pfd), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 2);
    posix_spawn_file_actions_addclose(&fa, pfd[0]);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    pid_t pid;
    int rc = posix_spawnp(&pid, "stdbuf", &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pfd[1]);
    cr_assert_eq(rc, 0, "spawn redis-cli: %s", strerror(rc));
    memset(r, 0, sizeof *r);
    r->status = -1;
    long long deadline = srv_now_ms() + CLI_TIMEOUT_MS;
    for (;;) {
        struct pollfd p = {pfd[0], POLLIN, 0};
        int left = (int)(deadline - srv_now_ms());
        if (left <= 0 || poll(&p, 1, left) <= 0)
            break;
        ssize_t k = read(pfd[0], r->out + r->len, sizeof r->out - 1 - r->len);
        if (k <= 0)
            break;
        for (ssize_t i = 0; i < k; i++)
            lines += r->out[r->len + (size_t)i] == '\n';
        r->len += (size_t)k;
        if ((max_lines > 0 && lines >= max_lines) || r->len == sizeof r->out - 1)
            break;
    }
    r->out[r->len] = '\0';
    int st = 0;
    pid_t done = 0;
    /* EOF came: wait (bounded) for the exit; or stop it by its pid */
    while (max_lines == 0 && (done = waitpid(pid, &st, WNOHANG)) == 0 && srv_now_ms() < deadline)
        srv_sleep_ms(5);
    if (done != pid) {
        kill(pid, SIGTERM);
        waitpid(pid, &st, 0);
    } else if (WIFEXITED(st)) {
        r->status = WEXITSTATUS(st);
    }
    close(pfd[0]);
}

/* The run exited 0 and printed no error. */
static void cli_done(cli_run *r, const char *what)
{
    cr_assert_eq(r->status, 0, "%s: exit %d, output:\n%s", what, r->status, r->out);
    cr_assert_null(strstr(r->out, "ERR"), "%s:\n%s", what, r->out);
    cr_assert_null(strstr(r->out, "rror"), "%s:\n%s", what, r->out);
    cr_assert_null(strstr(r->out, "Warning"), "%s:\n%s", what, r->out);
}

Test(introspect, redis_cli_scan_bigkeys_and_memkeys_run_cleanly)
{
    seed();
    static cli_run r;
    const char *scan[] = {"--scan", NULL};
    cli(&r, 0, scan);
    cli_done(&r, "--scan");
    const char *want[] = {"1:1", "1:2", "2:1", "2:2", "10:1", "10:2"};
    size_t lines = 0;
    for (const char *p = r.out; *p; p++)
        lines += *p == '\n';
    cr_assert_eq(lines, 6, "--scan:\n%s", r.out);
    for (size_t i = 0; i < 6; i++) {
        char line[16];
        snprintf(line, sizeof line, "\n%s\n", want[i]);
        cr_assert(strstr(r.out, line + 1) == r.out || strstr(r.out, line), "--scan lacks %s:\n%s",
                  want[i], r.out);
    }
    const char *pattern[] = {"--scan", "--pattern", "1:*", NULL};
    cli(&r, 0, pattern);
    cli_done(&r, "--scan --pattern");
    cr_assert(strcmp(r.out, "1:1\n1:2\n") == 0 || strcmp(r.out, "1:2\n1:1\n") == 0,
              "--scan --pattern 1:*:\n%s", r.out);
    const char *big[] = {"--bigkeys", NULL};
    cli(&r, 0, big);
    cli_done(&r, "--bigkeys");
    cr_assert_not_null(strstr(r.out, "Sampled 6 keys"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "6 levels"), "%s", r.out);
    const char *mem[] = {"--memkeys", NULL};
    cli(&r, 0, mem);
    cli_done(&r, "--memkeys");
    cr_assert_not_null(strstr(r.out, "Biggest  level found"), "%s", r.out);
}

Test(introspect, redis_cli_stat_shows_every_column)
{
    seed();
    static cli_run r;
    const char *stat[] = {"--stat", "-i", "0.1", NULL};
    cli(&r, STAT_LINES, stat);
    cr_assert_null(strstr(r.out, "ERR"), "%s", r.out);
    cr_assert_null(strstr(r.out, "rror"), "%s", r.out);
    /* header, then lines: keys mem clients blocked requests connections */
    char *line = strstr(r.out, "connections");
    cr_assert_not_null(line, "%s", r.out);
    line = strchr(line, '\n');
    cr_assert_not_null(line);
    long long keys, clients, blocked, requests, conns;
    char mem[32];
    int k = sscanf(line + 1, "%lld %31s %lld %lld %lld (+%*d) %lld", &keys, mem, &clients, &blocked,
                   &requests, &conns);
    cr_assert_eq(k, 6, "a --stat line: %s", line + 1);
    cr_assert_eq(keys, 6);
    cr_assert(mem[0] >= '1' && mem[0] <= '9', "mem %s", mem);
    cr_assert_geq(clients, 1);
    cr_assert_eq(blocked, 0);
    cr_assert_gt(requests, 0);
    cr_assert_geq(conns, 2);
    cr_assert_null(strstr(r.out, "-9223372036854775808"));
}
