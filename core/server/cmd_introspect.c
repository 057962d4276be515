/*
 * cmd_introspect.c — the monitoring and keyspace commands Redis tools use:
 * SLOWLOG, LATENCY, MEMORY, SCAN and TYPE; and INFO's # Webhooks and
 * # HTTP sections.
 *
 * The keyspace these commands show is the levels: a level is the "key"
 * named "item:loc" (both decimal ids, as SCAN writes them; leading zeros
 * are accepted on input, as everywhere). Its type is "level". Errors follow
 * Redis's wording (ERR ...) so that tools which match Redis messages work.
 * Nothing here is on a request hot path; SCAN allocates nothing (its rows
 * live in the loop's scratch).
 */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "server/cmd_internal.h"
#include "server/http.h"
#include "server/slowlog.h"
#include "server/webhook.h"

/* A level's footprint: one 32-byte slot of the levels table, which is kept
 * at most 3/4 full (PROTOCOL.md: "about 43 bytes per level"). */
#define CMD_LEVEL_BYTES 43
#define LEVEL_NAME_MAX 42u /* "item:loc": 20 + 1 + 20 digits and a NUL */
#define SCAN_PATTERN_MAX 256u /* bytes of a MATCH pattern (bounds glob work) */
#define SCAN_COUNT_DEFAULT 10u /* as Redis */
#define SUB_ECHO_MAX 32u /* bytes of a subcommand quoted back (as Redis) */
#define DOCTOR_TEXT_MAX 1024u /* LATENCY / MEMORY DOCTOR report */
#define FRAGMENTATION_WARN 1.5 /* MEMORY DOCTOR: rss / used above this ... */
#define FRAGMENTATION_MIN_BYTES (64ull << 20) /* ... and rss above this */

/* ---- helpers --------------------------------------------------------------- */

static void reply_bad_subcommand(resp_out *o, const char *cmd, const resp_arg *sub)
{
    resp_w_errorf(o,
                  "ERR unknown subcommand or wrong number of arguments for '%.*s'. "
                  "Try %s HELP.",
                  echo_len(sub, SUB_ECHO_MAX), sub->ptr, cmd);
}

/* Parses a level name "item:loc"; false when malformed. */
static bool level_name_parse(const resp_arg *a, uint64_t *item, uint64_t *loc)
{
    const char *colon = memchr(a->ptr, ':', a->len);
    if (colon == NULL)
        return false;
    size_t left = (size_t)(colon - a->ptr);
    return resp_parse_u64(a->ptr, left, item) == 0 &&
           resp_parse_u64(colon + 1, a->len - left - 1, loc) == 0;
}

/* Writes "item:loc" into dst[LEVEL_NAME_MAX]; returns its length. */
static size_t level_name(char *dst, uint64_t item, uint64_t loc)
{
    size_t n = resp_fmt_u64(dst, item);
    dst[n++] = ':';
    n += resp_fmt_u64(dst + n, loc);
    dst[n] = '\0';
    return n;
}

/* Does the level (item, loc) exist? */
static bool level_exists(session *s, const resp_arg *key)
{
    uint64_t item, loc;
    inv_level l;
    return level_name_parse(key, &item, &loc) && inv_level_get(s->e, item, loc, &l) == INV_OK;
}

/* ---- SLOWLOG ---------------------------------------------------------------- */

static const char *const slowlog_help[] = {
    "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
    "HELP",
    "    Print this help.",
};

static void sub_slowlog_get(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    int64_t count = SLOWLOG_GET_DEFAULT;
    if (n == 3 && (resp_parse_i64(v[2].ptr, v[2].len, &count) != 0 || count < -1)) {
        resp_w_error(o, "ERR", "count should be greater than or equal to -1");
        return;
    }
    slowlog_reply(o, count == -1 ? SIZE_MAX : (size_t)count, s->ctx->cfg->slowlog_max_len);
}

static void sub_slowlog_len(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    resp_w_int(o, (int64_t)slowlog_len(s->ctx->cfg->slowlog_max_len));
}

static void sub_slowlog_reset(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    slowlog_reset();
    resp_w_ok(o);
}

/* ---- LATENCY ------------------------------------------------------------------ */

static const char *const latency_help[] = {
    "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    Return a human readable latency analysis report.",
    "HISTORY <event>",
    "    Return time-latency samples for the <event> class (command, fast-command).",
    "LATEST",
    "    Return the latest latency samples for all events.",
    "RESET [<event> ...]",
    "    Reset latency data of one or more <event> classes.",
    "    (default: reset all data for all event classes)",
    "HELP",
    "    Print this help.",
};

static void sub_latency_latest(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    latency_reply_latest(o);
}

/* An event never seen (or unknown): an empty history, as Redis. */
static void sub_latency_history(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    int ev = latency_event_find(v[2].ptr, v[2].len);
    if (ev < 0)
        resp_w_array(o, 0);
    else
        latency_reply_history(o, (latency_event)ev);
}

static void sub_latency_reset(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    int64_t reset = 0;
    if (n == 2) {
        for (int ev = 0; ev < LATENCY_EVENTS; ev++)
            reset += latency_reset((latency_event)ev);
    } else {
        for (size_t i = 2; i < n; i++) {
            int ev = latency_event_find(v[i].ptr, v[i].len);
            if (ev >= 0)
                reset += latency_reset((latency_event)ev);
        }
    }
    resp_w_int(o, reset);
}

static void sub_latency_doctor(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    char text[DOCTOR_TEXT_MAX];
    latency_doctor(text, sizeof text, s->ctx->cfg->slowlog_slower_than_us);
    resp_w_verbatim(o, text, strlen(text));
}

/* ---- MEMORY --------------------------------------------------------------------- */

static const char *const memory_help[] = {
    "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    Return memory problems reports.",
    "STATS",
    "    Return information about the memory usage of the server.",
    "USAGE <key> [SAMPLES <count>]",
    "    Return memory in bytes used by the level <key> (\"item:loc\").",
    "HELP",
    "    Print this help.",
};

static void sub_memory_usage(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    if (n == 5) {
        if (!arg_eq(&v[3], "samples")) {
            resp_w_error(o, "ERR", "syntax error");
            return;
        }
        int64_t samples;
        if (resp_parse_i64(v[4].ptr, v[4].len, &samples) != 0 || samples < 0) {
            resp_w_error(o, "ERR", "value is out of range, must be positive");
            return;
        }
        /* a level has no parts to sample: the count changes nothing */
    }
    if (level_exists(s, &v[2]))
        resp_w_int(o, CMD_LEVEL_BYTES);
    else
        resp_w_null(o);
}

static void kv_u64(resp_out *o, const char *k, uint64_t val)
{
    resp_w_bulk_str(o, k);
    resp_w_int(o, (int64_t)val);
}

static void kv_ratio(resp_out *o, const char *k, double val)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%.2f", val);
    resp_w_bulk_str(o, k);
    resp_w_bulk_str(o, buf);
}

static void sub_memory_stats(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    inv_stats st;
    memset(&st, 0, sizeof st);
    (void)inv_stats_get(s->e, &st); /* zeros if it fails */
    stats_memory_info m;
    stats_memory(&m);
    resp_w_map(o, 11);
    kv_u64(o, "peak.allocated", m.peak);
    kv_u64(o, "total.allocated", m.used);
    kv_u64(o, "dataset.bytes", st.table_bytes);
    kv_ratio(o, "dataset.percentage",
             m.used ? 100.0 * (double)st.table_bytes / (double)m.used : 0.0);
    kv_u64(o, "keys.count", st.levels);
    kv_u64(o, "keys.bytes-per-key", st.levels ? m.used / st.levels : 0);
    kv_ratio(o, "peak.percentage", m.peak ? 100.0 * (double)m.used / (double)m.peak : 0.0);
    kv_u64(o, "allocator.allocated", m.used);
    kv_u64(o, "allocator.active", m.active);
    kv_u64(o, "allocator.resident", m.resident);
    kv_ratio(o, "fragmentation", m.used ? (double)m.rss / (double)m.used : 0.0);
}

static void sub_memory_doctor(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    stats_memory_info m;
    stats_memory(&m);
    double frag = m.used ? (double)m.rss / (double)m.used : 0.0;
    char text[DOCTOR_TEXT_MAX];
    if (frag > FRAGMENTATION_WARN && m.rss > FRAGMENTATION_MIN_BYTES)
        snprintf(text, sizeof text,
                 "High fragmentation: the process holds %llu bytes resident for "
                 "%llu bytes allocated (ratio %.2f). Memory freed by deleted levels, "
                 "holds or a table growth may not have gone back to the system.\n",
                 (unsigned long long)m.rss, (unsigned long long)m.used, frag);
    else
        snprintf(text, sizeof text,
                 "No memory problem found: %llu bytes allocated, %llu resident, "
                 "peak %llu (allocator %s).\n",
                 (unsigned long long)m.used, (unsigned long long)m.rss, (unsigned long long)m.peak,
                 m.allocator);
    resp_w_verbatim(o, text, strlen(text));
}

/* ---- SLOWLOG, LATENCY, MEMORY: one handler, a row per subcommand ----------- */

/* A subcommand runs when argv[0] names its parent, argv[1] names it and
 * argc is within min_args..max_args (0: no upper bound); otherwise the next
 * row is tried, so a name may have a row per arity (as Redis's chains of
 * checks). */
static const struct {
    const char *parent, *name;
    unsigned min_args, max_args;
    cmd_handler *fn;
} g_subs[] = {
    /* parent    name       min max handler */
    {"slowlog", "get", 2, 3, sub_slowlog_get},
    {"slowlog", "len", 2, 2, sub_slowlog_len},
    {"slowlog", "reset", 2, 2, sub_slowlog_reset},
    {"latency", "latest", 2, 2, sub_latency_latest},
    {"latency", "history", 3, 3, sub_latency_history},
    {"latency", "reset", 2, 0, sub_latency_reset},
    {"latency", "doctor", 2, 2, sub_latency_doctor},
    {"memory", "usage", 3, 3, sub_memory_usage},
    {"memory", "usage", 5, 5, sub_memory_usage},
    {"memory", "stats", 2, 2, sub_memory_stats},
    {"memory", "doctor", 2, 2, sub_memory_doctor},
};

/* HELP (argc 2) answers the parent's lines; any other subcommand, Redis's
 * "unknown subcommand" error with the parent's upper-case name. */
static const struct {
    const char *parent, *upper;
    const char *const *help;
    size_t nhelp;
} g_parents[] = {
#define HELP_LINES(a) (a), (sizeof(a) / sizeof((a)[0]))
    {"slowlog", "SLOWLOG", HELP_LINES(slowlog_help)},
    {"latency", "LATENCY", HELP_LINES(latency_help)},
    {"memory", "MEMORY", HELP_LINES(memory_help)},
#undef HELP_LINES
};

#define NROWS(a) (sizeof(a) / sizeof((a)[0]))

/* SLOWLOG, LATENCY and MEMORY (arity checked by the command table). */
void cmd_introspect(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    for (size_t i = 0; i < NROWS(g_subs); i++) {
        if (arg_eq(&v[0], g_subs[i].parent) && arg_eq(&v[1], g_subs[i].name) &&
            n >= g_subs[i].min_args && (g_subs[i].max_args == 0 || n <= g_subs[i].max_args)) {
            g_subs[i].fn(s, o, v, n);
            return;
        }
    }
    for (size_t i = 0; i < NROWS(g_parents); i++) {
        if (!arg_eq(&v[0], g_parents[i].parent))
            continue;
        if (arg_eq(&v[1], "help") && n == 2)
            reply_help(o, g_parents[i].help, g_parents[i].nhelp);
        else
            reply_bad_subcommand(o, g_parents[i].upper, &v[1]);
        return;
    }
    /* defended: a command table row pointing here without a g_parents row */
    resp_w_error(o, "ERR", "this command has no subcommands");
}

/* ---- SCAN, TYPE ------------------------------------------------------------------ */

typedef struct {
    uint64_t cursor;
    size_t count;
    const resp_arg *match; /* NULL: every name */
    bool type_ok; /* no TYPE, or TYPE level */
} scan_opts;

/* SCAN cursor [MATCH p] [COUNT n] [TYPE t] at v[1..n) (pairs checked by
 * the table's arity); a repeated option takes the last value. */
static int scan_opts_or_reply(resp_out *o, const resp_arg *v, size_t n, scan_opts *q)
{
    *q = (scan_opts){0, SCAN_COUNT_DEFAULT, NULL, true};
    if (resp_parse_u64(v[1].ptr, v[1].len, &q->cursor) != 0) {
        resp_w_error(o, "ERR", "invalid cursor");
        return -1;
    }
    for (size_t i = 2; i + 1 < n; i += 2) {
        if (arg_eq(&v[i], "match")) {
            if (v[i + 1].len > SCAN_PATTERN_MAX) {
                resp_w_errorf(o, "ERR MATCH pattern longer than %u bytes", SCAN_PATTERN_MAX);
                return -1;
            }
            q->match = &v[i + 1];
        } else if (arg_eq(&v[i], "count")) {
            int64_t c;
            if (resp_parse_i64(v[i + 1].ptr, v[i + 1].len, &c) != 0) {
                resp_w_error(o, "ERR", "value is not an integer or out of range");
                return -1;
            }
            if (c < 1) {
                resp_w_error(o, "ERR", "syntax error (COUNT must be at least 1)");
                return -1;
            }
            /* a hint, as in Redis: pages are capped at the listing limit */
            q->count = c > INV_LIST_COUNT_MAX ? INV_LIST_COUNT_MAX : (size_t)c;
        } else if (arg_eq(&v[i], "type")) {
            q->type_ok = arg_eq(&v[i + 1], "level");
        } else {
            resp_w_error(o, "ERR", "syntax error");
            return -1;
        }
    }
    return 0;
}

void cmd_scan(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    scan_opts q;
    if (scan_opts_or_reply(o, v, n, &q) != 0)
        return;
    if (!q.type_ok) { /* no other type exists: the scan is over */
        resp_w_array(o, 2);
        resp_w_bulk_str(o, "0");
        resp_w_array(o, 0);
        return;
    }
    inv_level_row *rows = s->scratch->level_rows;
    size_t got = 0;
    uint64_t next = 0;
    if (engine_or_reply(
            o, inv_level_scan(s->e, q.cursor, q.count, rows, INV_LIST_COUNT_MAX, &got, &next)) != 0)
        return;
    bool hit[INV_LIST_COUNT_MAX];
    char name[LEVEL_NAME_MAX];
    size_t hits = 0;
    for (size_t i = 0; i < got; i++) {
        size_t len = level_name(name, rows[i].item, rows[i].location);
        hit[i] = q.match == NULL || glob_match(q.match->ptr, q.match->len, name, len, false);
        hits += hit[i];
    }
    resp_w_array(o, 2);
    resp_w_bulk_u64(o, next);
    resp_w_array(o, hits);
    for (size_t i = 0; i < got; i++)
        if (hit[i])
            resp_w_bulk(o, name, level_name(name, rows[i].item, rows[i].location));
}

void cmd_type(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    resp_w_simple(o, level_exists(s, &v[1]) ? "level" : "none");
}

/* ---- INFO webhooks ----------------------------------------------------------- */

/* A webhook's line: "webhookN:url=...,acked_position=...,...". */
#define INFO_WEBHOOK_LINE_MAX (3u * WEBHOOK_URL_MAX + 2 * WEBHOOK_ERROR_MAX + 512u)

/* s into dst[cap] for a "k=v,k=v" field: ',' and control bytes (the
 * separators INFO readers split on) become %XX. Returns dst. */
static const char *info_value(char *dst, size_t cap, const char *s)
{
    size_t n = 0;
    assert(cap >= 4);
    for (; *s != '\0' && n + 4 <= cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == ',' || c < ' ' || c == 0x7f)
            n += (size_t)snprintf(dst + n, cap - n, "%%%02X", c);
        else
            dst[n++] = (char)c;
    }
    dst[n] = '\0';
    return dst;
}

static const char *info_topics(unsigned topics)
{
    static const char *const names[] = {
        "none",  "levels",       "holds",       "levels|holds",
        "items", "levels|items", "holds|items", "levels|holds|items"};
    return names[topics & WEBHOOK_TOPICS_ALL];
}

/* # Webhooks: how many run, then one line per webhook (webhook.h has the
 * meaning of each field). Empty of webhooks when none was configured. */
void info_webhooks(resp_out *t)
{
    webhook_status st[WEBHOOKS_MAX];
    size_t n = webhooks_status(st, WEBHOOKS_MAX);
    char line[INFO_WEBHOOK_LINE_MAX], url[3 * WEBHOOK_URL_MAX + 1], err[3 * WEBHOOK_ERROR_MAX];
    assert(n <= WEBHOOKS_MAX);
    int k = snprintf(line, sizeof line, "# Webhooks\r\nwebhooks:%zu\r\n", n);
    resp_out_raw(t, line, (size_t)k);
    for (size_t i = 0; i < n; i++) {
        const webhook_status *w = &st[i];
        k = snprintf(line, sizeof line,
                     "webhook%zu:url=%s,topics=%s,acked_position=%llu,lag_bytes=%llu,"
                     "lag_ms=%lld,posts=%llu,records=%llu,failures=%llu,failing=%llu,"
                     "gaps=%llu,last_status=%ld,last_error=%s\r\n",
                     i, info_value(url, sizeof url, w->url), info_topics(w->topics),
                     (unsigned long long)w->acked_position, (unsigned long long)w->lag_bytes,
                     (long long)w->lag_ms, (unsigned long long)w->posts_ok,
                     (unsigned long long)w->records_sent, (unsigned long long)w->failures,
                     (unsigned long long)w->failing, (unsigned long long)w->gaps, w->last_status,
                     info_value(err, sizeof err, w->last_error));
        assert(k > 0 && (size_t)k < sizeof line);
        resp_out_raw(t, line, (size_t)k);
    }
    resp_out_raw(t, "\r\n", 2);
}

/* ---- INFO http ------------------------------------------------------------------ */

/* # HTTP: the listener's port (0: off), its connections, and the request
 * counters /metrics shows (http_common.c's, read through http_stats_get):
 * the total, the 4xx and 5xx answers (refusals included), and one line per
 * dialect ("none": requests never routed: 404, 405, refusals before
 * routing). */
void info_http(resp_out *t, int http_port)
{
    http_stats st;
    char line[256];
    uint64_t total = 0, e4 = 0, e5 = 0;
    http_stats_get(&st);
    for (size_t d = 0; d < HTTP_STATS_SLOTS; d++) {
        total += st.slot[d].requests;
        e4 += st.slot[d].errors_4xx;
        e5 += st.slot[d].errors_5xx;
    }
    int k = snprintf(line, sizeof line,
                     "# HTTP\r\nhttp_port:%d\r\nhttp_connections:%llu\r\n"
                     "http_connections_received:%llu\r\nhttp_requests:%llu\r\n"
                     "http_errors_4xx:%llu\r\nhttp_errors_5xx:%llu\r\n",
                     http_port > 0 ? http_port : 0, (unsigned long long)st.connections_open,
                     (unsigned long long)st.connections_total, (unsigned long long)total,
                     (unsigned long long)e4, (unsigned long long)e5);
    assert(k > 0 && (size_t)k < sizeof line);
    resp_out_raw(t, line, (size_t)k);
    for (size_t d = 0; d < HTTP_STATS_SLOTS; d++) {
        const http_slot_stats *x = &st.slot[d];
        k = snprintf(line, sizeof line,
                     "http_dialect_%s:requests=%llu,errors_4xx=%llu,errors_5xx=%llu\r\n", x->name,
                     (unsigned long long)x->requests, (unsigned long long)x->errors_4xx,
                     (unsigned long long)x->errors_5xx);
        assert(k > 0 && (size_t)k < sizeof line);
        resp_out_raw(t, line, (size_t)k);
    }
    resp_out_raw(t, "\r\n", 2);
}

/* ---- the commands of this file (rows: cmd_internal.h) ---------------------- */

const cmd_def cmd_introspect_rows[] = {
    {"slowlog", 2, 3, 0, 0, CMD_ADMIN | CMD_READONLY | CMD_SCOPE_ADMIN | CMD_NOTENANT,
     cmd_introspect, "SLOWLOG GET [count] | LEN | RESET | HELP"},
    {"latency", 2, 0, 0, 0, CMD_ADMIN | CMD_READONLY | CMD_SCOPE_ADMIN | CMD_NOTENANT,
     cmd_introspect, "LATENCY LATEST | HISTORY event | RESET [event ...] | DOCTOR | HELP"},
    {"memory", 2, 5, 0, 0, CMD_READONLY, cmd_introspect,
     "MEMORY USAGE key [SAMPLES count] | STATS | DOCTOR | HELP"},
    {"scan", 2, 0, 2, 2, CMD_READONLY, cmd_scan,
     "SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]"},
    {"type", 2, 2, 0, 0, CMD_FAST | CMD_READONLY, cmd_type, "TYPE key"},
};
const size_t cmd_introspect_rows_n = sizeof cmd_introspect_rows / sizeof cmd_introspect_rows[0];
