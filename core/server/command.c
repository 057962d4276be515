/*
 * command.c — the command table, dispatch, sessions, and the connection/
 * admin commands (PING ECHO AUTH HELLO QUIT INFO COMMAND CONFIG SNAPSHOT
 * DBSIZE; CLIENT SELECT TIME RESET ROLE are in cmd_conn.c).
 *
 * Invariants:
 *  - Arity is declared once per command (min, max, repeating group) and per
 *    subcommand (cmd_sub), and checked only in command_exec.
 *  - Lookup is case-insensitive through a fixed open-addressing table built
 *    once (pthread_once); dispatch allocates nothing.
 *  - Before AUTH (when --requirepass is set) only AUTH, HELLO, QUIT and
 *    RESET run. Without a password the default user takes any token (as
 *    Redis's nopass default user).
 *  - Inside MULTI only CMD_NOQUEUE commands run at once; the others are
 *    queued or refused by cmd_multi.c, which EXEC runs later.
 *  - The password is compared in time independent of its content.
 */
#include "alloc.h"
#include "server/command.h"
#include "server/repl.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "clock.h"
#include "server/cmd_internal.h"
#include "server/slowlog.h"

static cmd_handler cmd_ping, cmd_echo, cmd_auth, cmd_hello, cmd_quit;
static cmd_handler cmd_info, cmd_command, cmd_config, cmd_snapshot, cmd_dbsize;

/* The connection and admin commands this file answers (cmd_internal.h:
 * the row format; command.c assembles every group's rows). */
static const cmd_def cmd_admin_rows[] = {
    {"ping", 1, 2, 0, 0, CMD_FAST | CMD_READONLY | CMD_NOTENANT, cmd_ping, "PING [message]"},
    {"echo", 2, 2, 0, 0, CMD_FAST | CMD_READONLY | CMD_NOTENANT, cmd_echo, "ECHO message"},
    {"auth", 2, 0, 0, 0, CMD_NOAUTH | CMD_FAST, cmd_auth, "AUTH [user] token"},
    {"hello", 1, 0, 0, 0, CMD_NOAUTH, cmd_hello, "HELLO [2|3] [AUTH user token] [SETNAME name]"},
    {"quit", 1, 0, 0, 0, CMD_NOAUTH | CMD_FAST | CMD_NOQUEUE, cmd_quit, "QUIT"},
    {"info", 1, 0, 0, 0, CMD_ADMIN | CMD_READONLY | CMD_NOTENANT, cmd_info, "INFO [section ...]"},
    {"command", 1, 0, 0, 0, CMD_ADMIN | CMD_READONLY | CMD_NOTENANT, cmd_command,
     "COMMAND [COUNT|DOCS|INFO|LIST]"},
    {"config", 2, 0, 0, 0, CMD_ADMIN | CMD_READONLY | CMD_SCOPE_ADMIN | CMD_NOTENANT, cmd_config,
     "CONFIG GET pattern [pattern ...]"},
    {"snapshot", 1, 1, 0, 0, CMD_ADMIN | CMD_WRITE | CMD_SCOPE_ADMIN, cmd_snapshot, "SNAPSHOT"},
    {"dbsize", 1, 1, 0, 0, CMD_FAST | CMD_READONLY, cmd_dbsize, "DBSIZE"},
};
static const size_t cmd_admin_rows_n = sizeof cmd_admin_rows / sizeof cmd_admin_rows[0];

/* The subcommands of each CMD_SUBS command. */
static const struct {
    const char *parent;
    const cmd_sub *subs;
} g_subcommands[] = {
    {"client", g_client_subs},
};

#define CMD_NAME_MAX SESSION_CMD_NAME_MAX /* longer names cannot be in the table */
#define CMD_INDEX_SLOTS 256u /* power of two, > 2 * STATS_COMMANDS_MAX */
#define CMD_PATTERN_MAX 128u /* CONFIG GET glob length */
#define INFO_LINE_MAX 256u /* bytes of one txt() call in INFO; longer is cut */

_Static_assert(CMD_INDEX_SLOTS >= 2 * STATS_COMMANDS_MAX, "index load factor");

/* The one table, assembled once from every file's rows in this order (the
 * order COMMAND lists them in); a command's index in it is its number in
 * the statistics. Read-only once built. */
static const struct {
    const cmd_def *rows;
    const size_t *n;
} g_groups[] = {
    {cmd_admin_rows, &cmd_admin_rows_n},         {cmd_conn_rows, &cmd_conn_rows_n},
    {cmd_inventory_rows, &cmd_inventory_rows_n}, {cmd_hold_rows, &cmd_hold_rows_n},
    {cmd_multi_rows, &cmd_multi_rows_n},         {cmd_introspect_rows, &cmd_introspect_rows_n},
    {cmd_feed_rows, &cmd_feed_rows_n},           {cmd_tenant_rows, &cmd_tenant_rows_n},
    {cmd_repl_rows, &cmd_repl_rows_n},
};
static cmd_def g_cmds[STATS_COMMANDS_MAX];
static size_t g_ncmds; /* rows in g_cmds */

static int16_t g_index[CMD_INDEX_SLOTS]; /* -1: empty; else g_cmds index */
static uint8_t g_name_len[STATS_COMMANDS_MAX]; /* strlen of each command's name */
static pthread_once_t g_index_once = PTHREAD_ONCE_INIT;
static _Atomic uint64_t g_next_client_id = 1;

/* FNV-1a over a command name; lookup() computes it fused with lowering. */
#define NAME_HASH_BASIS 2166136261u
#define NAME_HASH_PRIME 16777619u

static uint32_t name_hash(const char *p, size_t n)
{
    assert(p != NULL && n < CMD_NAME_MAX);
    uint32_t h = NAME_HASH_BASIS;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * NAME_HASH_PRIME;
    return h;
}

/* A row as the dispatcher relies on it (used only in asserts): a name
 * lookup() can find, an arity command_exec can check, and a handler
 * unless the row only names subcommands. */
static bool cmd_def_ok(const cmd_def *c)
{
    return c != NULL && c->name != NULL && c->min_args >= 1 &&
           (c->max_args == 0 || c->max_args >= c->min_args) &&
           (c->fn != NULL) == !(c->flags & CMD_SUBS);
}

/* c is a row of the assembled table (lookup's answers, EXEC's records). */
static bool cmd_in_table(const cmd_def *c)
{
    uintptr_t p = (uintptr_t)c, lo = (uintptr_t)g_cmds;
    return p >= lo && p < lo + g_ncmds * sizeof g_cmds[0] && (p - lo) % sizeof g_cmds[0] == 0;
}

static void build_index(void)
{
    for (size_t g = 0; g < sizeof g_groups / sizeof g_groups[0]; g++)
        for (size_t r = 0; r < *g_groups[g].n; r++) {
            /* a table too long for the statistics is a build mistake */
            assert(g_ncmds < STATS_COMMANDS_MAX);
            assert(cmd_def_ok(&g_groups[g].rows[r]));
            g_cmds[g_ncmds++] = g_groups[g].rows[r];
        }
    for (size_t i = 0; i < CMD_INDEX_SLOTS; i++)
        g_index[i] = -1;
    for (size_t c = 0; c < g_ncmds; c++) {
        /* a name lookup() would refuse as too long is a build mistake */
        assert(strlen(g_cmds[c].name) < CMD_NAME_MAX);
        g_name_len[c] = (uint8_t)strlen(g_cmds[c].name);
        uint32_t h = name_hash(g_cmds[c].name, g_name_len[c]);
        size_t i = h & (CMD_INDEX_SLOTS - 1);
        while (g_index[i] >= 0)
            i = (i + 1) & (CMD_INDEX_SLOTS - 1);
        g_index[i] = (int16_t)c;
    }
}

/* Hot path: no allocation, at most CMD_INDEX_SLOTS probes. */
static const cmd_def *lookup(const resp_arg *a)
{
    assert(a != NULL && g_ncmds > 0); /* build_index ran */
    if (a->len == 0 || a->len >= CMD_NAME_MAX)
        return NULL;
    char low[CMD_NAME_MAX];
    uint32_t h = NAME_HASH_BASIS; /* name_hash of the lower-cased name */
    for (size_t k = 0; k < a->len; k++) {
        char c = a->ptr[k];
        low[k] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
        h = (h ^ (unsigned char)low[k]) * NAME_HASH_PRIME;
    }
    size_t i = h & (CMD_INDEX_SLOTS - 1);
    for (size_t probes = 0; probes < CMD_INDEX_SLOTS; probes++) {
        int16_t c = g_index[i];
        if (c < 0)
            return NULL;
        assert((size_t)c < g_ncmds);
        if (g_name_len[c] == a->len && memcmp(g_cmds[c].name, low, a->len) == 0)
            return &g_cmds[c];
        i = (i + 1) & (CMD_INDEX_SLOTS - 1);
    }
    return NULL;
}

/* lookup() through the session's memo of its last command name (the same
 * bytes find the same row: the table does not change once built). */
static const cmd_def *lookup_memo(session *s, const resp_arg *a)
{
    assert(s != NULL && a != NULL);
    if (s->cmd_memo_len != 0 && a->len == s->cmd_memo_len &&
        memcmp(a->ptr, s->cmd_memo_name, a->len) == 0) {
        assert((size_t)s->cmd_memo < g_ncmds);
        return &g_cmds[s->cmd_memo];
    }
    const cmd_def *c = lookup(a);
    if (c != NULL) {
        assert(a->len >= 1 && a->len < sizeof s->cmd_memo_name); /* lookup's bound */
        memcpy(s->cmd_memo_name, a->ptr, a->len);
        s->cmd_memo_len = (uint8_t)a->len;
        s->cmd_memo = (int16_t)(c - g_cmds);
    }
    return c;
}

size_t command_count(void)
{
    pthread_once(&g_index_once, build_index);
    assert(g_ncmds > 0 && g_ncmds <= STATS_COMMANDS_MAX);
    return g_ncmds;
}

const char *command_name(const cmd_def *c)
{
    assert(cmd_in_table(c));
    return c->name;
}

const char *command_upper(const cmd_def *c, char *buf, size_t cap)
{
    assert(cmd_def_ok(c) && buf != NULL && cap >= 1);
    size_t i = 0;
    for (; c->name[i] != '\0' && i + 1 < cap; i++)
        buf[i] = (c->name[i] >= 'a' && c->name[i] <= 'z') ? (char)(c->name[i] - 32) : c->name[i];
    buf[i] = '\0';
    assert(i < cap);
    return buf;
}

/* The subcommand table of c, NULL when it has none. Not on the hot path:
 * only CMD_SUBS commands and COMMAND INFO/DOCS ask. */
static const cmd_sub *subs_of(const cmd_def *c)
{
    assert(cmd_def_ok(c));
    if (!(c->flags & CMD_SUBS))
        return NULL;
    for (size_t i = 0; i < sizeof g_subcommands / sizeof g_subcommands[0]; i++)
        if (strcmp(g_subcommands[i].parent, c->name) == 0)
            return g_subcommands[i].subs;
    return NULL;
}

/* ---- helpers ------------------------------------------------------------ */

bool arg_eq(const resp_arg *a, const char *lit)
{
    assert(a != NULL && lit != NULL);
    size_t n = strlen(lit);
    return a->len == n && strncasecmp(a->ptr, lit, n) == 0;
}

int arg_u64_or_reply(resp_out *o, const resp_arg *a, const char *what, uint64_t *v)
{
    assert(reply_buf_ok(o) && a != NULL && what != NULL && v != NULL);
    if (resp_parse_u64(a->ptr, a->len, v) == 0)
        return 0;
    resp_w_errorf(o, "INVALID %s must be a decimal integer in 0..18446744073709551615", what);
    return -1;
}

int page_option_or_reply(resp_out *o, const resp_arg *key, const resp_arg *val, uint64_t *cursor,
                         size_t *count)
{
    assert(reply_buf_ok(o) && key != NULL && val != NULL && cursor != NULL && count != NULL);
    if (arg_eq(key, "cursor"))
        return arg_u64_or_reply(o, val, "cursor", cursor) == 0 ? 1 : -1;
    if (!arg_eq(key, "count"))
        return 0;
    uint64_t c;
    if (arg_u64_or_reply(o, val, "count", &c) != 0)
        return -1;
    if (c == 0 || c > INV_LIST_COUNT_MAX) {
        resp_w_errorf(o, "LIMIT count must be 1..%u", (unsigned)INV_LIST_COUNT_MAX);
        return -1;
    }
    *count = (size_t)c;
    assert(*count >= 1 && *count <= INV_LIST_COUNT_MAX);
    return 1;
}

int arg_i64_or_reply(resp_out *o, const resp_arg *a, const char *what, int64_t *v)
{
    assert(reply_buf_ok(o) && a != NULL && what != NULL && v != NULL);
    if (resp_parse_i64(a->ptr, a->len, v) == 0)
        return 0;
    resp_w_errorf(o, "INVALID %s must be a decimal integer", what);
    return -1;
}

int arg_str_or_reply(resp_out *o, const resp_arg *a, const char *what, char *dst, size_t cap)
{
    assert(reply_buf_ok(o) && a != NULL && what != NULL && dst != NULL);
    assert(cap >= 1); /* room for the NUL at least */
    if (a->len >= cap) {
        resp_w_errorf(o, "INVALID %s longer than %zu bytes", what, cap - 1);
        return -1;
    }
    if (memchr(a->ptr, '\0', a->len) != NULL) {
        resp_w_errorf(o, "INVALID %s contains a NUL byte", what);
        return -1;
    }
    memcpy(dst, a->ptr, a->len);
    dst[a->len] = '\0';
    return 0;
}

void reply_engine_error(resp_out *o, int rc)
{
    assert(reply_buf_ok(o));
    assert(rc != INV_OK); /* an error reply needs an error */
    resp_w_error(o, inv_errcode(rc), inv_strerror(rc));
}

int engine_or_reply(resp_out *o, int rc)
{
    assert(reply_buf_ok(o));
    if (rc == INV_OK)
        return 0;
    reply_engine_error(o, rc);
    return -1;
}

void reply_help(resp_out *o, const char *const *lines, size_t n)
{
    assert(reply_buf_ok(o) && lines != NULL && n > 0);
    resp_w_array(o, n);
    for (size_t i = 0; i < n; i++)
        resp_w_simple(o, lines[i]);
}

void reply_level(resp_out *o, const inv_level *l)
{
    assert(reply_buf_ok(o) && l != NULL);
    resp_w_array(o, 3);
    resp_w_int(o, l->available);
    resp_w_int(o, l->reserved);
    resp_w_int(o, (int64_t)l->revision);
}

/* ---- sessions and dispatch --------------------------------------------- */

cmd_scratch *command_scratch_new(void)
{
    return inv_calloc(1, sizeof(cmd_scratch));
}

void command_scratch_free(cmd_scratch *s)
{
    free(s);
}

void session_init(session *s, const server_ctx *ctx, stats_thread *st, cmd_scratch *scratch)
{
    assert(s != NULL && ctx != NULL && ctx->cfg != NULL && scratch != NULL);
    memset(s, 0, sizeof *s);
    s->ctx = ctx;
    s->st = st;
    s->scratch = scratch;
    /* relaxed: ids need only be unique */
    s->id = atomic_fetch_add_explicit(&g_next_client_id, 1, memory_order_relaxed);
    session_auth_start(s);
    s->last_cmd = "NULL"; /* what Redis shows before the first command */
    assert(session_ok(s) && s->id != 0);
}

void session_free(session *s)
{
    assert(s != NULL && s->ctx != NULL);
    multi_discard(s); /* a transaction left open */
    feed_session_free(s);
    free(s->name);
    free(s->lib_name);
    free(s->lib_ver);
    s->name = s->lib_name = s->lib_ver = NULL;
    session_auth_free(s);
    assert(s->tenant == NULL && s->e == NULL && s->tset == NULL && !s->multi_open);
}

/* RESET, as Redis's clearClientConnectionState: no name, no open
 * transaction, authenticated only when no password is set (the caller
 * switches the reply protocol back to RESP2). The client library's
 * lib-name and lib-ver stay: they still describe the program behind the
 * connection. Whoever adds session state resets it in this function. The
 * id, the connection and the counters are kept. */
void session_reset(session *s)
{
    assert(session_ok(s));
    multi_discard(s);
    feed_session_free(s);
    free(s->name);
    s->name = NULL;
    s->name_len = 0;
    s->name_gen = 0;
    session_auth_start(s);
    s->quit = false;
    assert(session_ok(s) && !s->multi_open && s->name == NULL);
}

void session_limits(const session *s, resp_limits *out)
{
    assert(session_ok(s) && out != NULL);
    if (s->authed) {
        out->max_args = s->ctx->cfg->max_args;
        out->max_bulk = s->ctx->cfg->max_bulk;
    } else {
        out->max_args = RESP_PREAUTH_MAX_ARGS;
        out->max_bulk = RESP_PREAUTH_MAX_BULK;
    }
    assert(out->max_args >= 1 && out->max_bulk >= 1); /* config_check's lower bounds */
}

static bool arity_ok(const cmd_def *c, size_t argc)
{
    assert(cmd_in_table(c) && cmd_def_ok(c));
    if (argc < c->min_args)
        return false;
    if (c->max_args != 0 && argc > c->max_args)
        return false;
    if (c->rep_step != 0 && (argc - c->rep_base) % c->rep_step != 0)
        return false;
    return true;
}

/* The subcommand argv[1] of c, with its arity checked; NULL after an
 * error reply (Redis's texts). */
static const cmd_sub *subcommand_or_reply(const cmd_def *c, resp_out *o, const resp_arg *argv,
                                          size_t argc)
{
    assert(cmd_in_table(c) && (c->flags & CMD_SUBS));
    assert(argc >= 2 && c->min_args >= 2); /* the row's arity: parent and subcommand */
    size_t plen = g_name_len[c - g_cmds];
    for (const cmd_sub *sub = subs_of(c); sub != NULL && sub->name != NULL; sub++) {
        const char *tail = sub->name + plen + 1; /* after "parent|" */
        if (!arg_eq(&argv[1], tail))
            continue;
        assert(sub->fn != NULL && sub->min_args >= 2);
        if (argc < sub->min_args || (sub->max_args != 0 && argc > sub->max_args)) {
            resp_w_errorf(o, "ERR wrong number of arguments for '%s' command", sub->name);
            return NULL;
        }
        return sub;
    }
    char upper[CMD_NAME_MAX];
    resp_w_errorf(o, "ERR unknown subcommand '%.*s'. Try %s HELP.",
                  echo_len(&argv[1], CMD_ECHO_MAX), argv[1].ptr,
                  command_upper(c, upper, sizeof upper));
    return NULL;
}

/* Slow path: the command ran at least --slowlog-log-slower-than. AUTH and
 * HELLO are logged without their arguments (a password is never kept).
 * The client's address and name go with it (no connection: the fuzzer). */
static void command_slow(const session *s, const cmd_def *c, const resp_arg *argv, size_t argc,
                         uint64_t us)
{
    assert(session_ok(s) && cmd_in_table(c));
    assert(argv != NULL && argc >= 1);
    bool secret = strcmp(c->name, "auth") == 0 || strcmp(c->name, "hello") == 0;
    conn_facts cf = {.addr = ""};
    if (s->conn_ops != NULL)
        s->conn_ops->facts(s->conn, &cf);
    slowlog_push(argv, argc, secret ? 1 : argc, us, cf.addr, s->name, s->ctx->cfg->slowlog_max_len);
    latency_add((c->flags & CMD_FAST) ? LATENCY_EVENT_FAST_COMMAND : LATENCY_EVENT_COMMAND,
                us / 1000);
}

void command_record(session *s, const cmd_def *c, const resp_arg *argv, size_t argc, uint64_t t0_ns,
                    uint64_t t1_ns, bool failed)
{
    assert(s != NULL && cmd_in_table(c));
    assert(t1_ns >= t0_ns); /* clock_mono_ns is monotonic */
    stats_record(s->st, (unsigned)(c - g_cmds), t0_ns, t1_ns, failed);
    uint64_t us = (t1_ns - t0_ns) / 1000;
    if (argv != NULL && s->ctx->cfg->slowlog_slower_than_us >= 0 &&
        us >= (uint64_t)s->ctx->cfg->slowlog_slower_than_us)
        command_slow(s, c, argv, argc, us);
}

void command_run(session *s, resp_out *o, const cmd_def *c, const resp_arg *argv, size_t argc)
{
    assert(cmd_in_table(c) && arity_ok(c, argc));
    assert(handler_call_ok(s, o, argv, argc, c->min_args, c->max_args));
    cmd_fn fn = c->fn;
    s->last_cmd = c->name;
    if (c->flags & CMD_SUBS) {
        const cmd_sub *sub = subcommand_or_reply(c, o, argv, argc);
        if (sub == NULL)
            return;
        fn = sub->fn;
        s->last_cmd = sub->name;
    }
    size_t start = o->len;
    uint64_t t0 = clock_mono_ns();
    fn(s, o, argv, argc);
    /* one reply, or none when a connection deferred it (CLIENT LIST/KILL,
     * FEED.READ BLOCK); without one (the fuzzer) it is always written */
    assert(o->len > start || o->failed || s->conn_ops != NULL);
    /* the one clock pair: stats, ops/s, slow log */
    command_record(s, c, argv, argc, t0, clock_mono_ns(), o->len > start && o->buf[start] == '-');
}

/* The name generation whose name this thread's next changes carry as
 * their actor (inv_set_actor); 0: none, as a new thread starts. */
static _Thread_local uint64_t t_actor_gen;

/* Before a write: the journal names the session's client (its name, cut
 * to INV_ACTOR_MAX bytes) as the actor. Hot path: one compare unless the
 * thread last wrote for a session with another name. */
static void actor_apply(const session *s)
{
    if (s->name_gen == t_actor_gen)
        return;
    size_t n = s->name_len < INV_ACTOR_MAX ? s->name_len : INV_ACTOR_MAX;
    assert(s->name_len <= SESSION_NAME_MAX);
    assert((n == 0) == (s->name_gen == 0));
    if (inv_set_actor(s->name, n) == INV_OK) /* cannot fail within the limit */
        t_actor_gen = s->name_gen;
}

static multi_kind multi_kind_of(const cmd_def *c)
{
    assert(cmd_in_table(c) && !(c->flags & CMD_NOQUEUE)); /* those run at once */
    if (c->flags & CMD_BATCH)
        return MULTI_BATCH;
    return (c->flags & CMD_READONLY) ? MULTI_READ : MULTI_REFUSED;
}

/* Stock and hold changes (batch lines that write) take trailing
 * `ID key`, `REASON r` and `REF uri` pairs, each at most once, in any
 * order: peeled off into s->meta before the arity check. Only while the
 * command keeps its minimum arity (a hold named "ID" stays a hold id).
 * -1 after an error reply. */
static int peel_meta_or_reply(session *s, resp_out *o, const cmd_def *c, const resp_arg *argv,
                              size_t *argc)
{
    assert(cmd_in_table(c) && argv != NULL && *argc >= 1);
    request_meta *m = &s->meta;
    memset(m, 0, sizeof *m);
    if ((c->flags & (CMD_BATCH | CMD_WRITE)) != (CMD_BATCH | CMD_WRITE))
        return 0;
    while (*argc >= 3 && *argc - 2 >= c->min_args) {
        const resp_arg *k = &argv[*argc - 2], *v = &argv[*argc - 1];
        if (arg_eq(k, "id") && !m->id) {
            if (v->len == 0 || v->len > INV_REQUEST_ID_MAX) {
                resp_w_errorf(o, "%s ID must be 1..%d bytes", v->len ? "LIMIT" : "INVALID",
                              INV_REQUEST_ID_MAX);
                return -1;
            }
            m->id = v->ptr, m->id_len = v->len;
        } else if (arg_eq(k, "reason") && !m->reason) {
            if (inv_reason_parse(v->ptr, v->len, &m->reason) != INV_OK) {
                resp_w_errorf(o,
                              "INVALID unknown reason '%.*s' (correction, "
                              "cycle_count_available, damaged, movement_canceled, "
                              "movement_created, movement_received, movement_updated, other, "
                              "promotion, quality_control, received, reservation_created, "
                              "reservation_deleted, reservation_updated, restock, "
                              "safety_stock, shrinkage)",
                              echo_len(v, CMD_NAME_ECHO_MAX), v->ptr);
                return -1;
            }
        } else if (arg_eq(k, "ref") && !m->ref) {
            if (v->len > INV_REF_MAX) {
                resp_w_errorf(o, "LIMIT REF must be at most %d bytes", INV_REF_MAX);
                return -1;
            }
            m->ref = v->ptr, m->ref_len = v->len;
        } else {
            break;
        }
        m->any = true;
        *argc -= 2;
    }
    /* peeled only while the command kept its minimum arity */
    assert(!m->any || *argc >= c->min_args);
    assert(m->id_len <= INV_REQUEST_ID_MAX && m->ref_len <= INV_REF_MAX);
    return 0;
}

bool server_ctx_read_only(const server_ctx *ctx)
{
    assert(ctx != NULL);
    return ctx->cluster != NULL && !repl_writable(server_ctx_repl(ctx));
}

bool command_exec(session *s, resp_out *o, const resp_arg *argv, size_t argc)
{
    pthread_once(&g_index_once, build_index);
    assert(session_ok(s) && reply_buf_ok(o));
    assert(argv != NULL || argc == 0);
    if (argc == 0)
        return false;
    const cmd_def *c = lookup_memo(s, &argv[0]);
    if (!s->authed && (c == NULL || !(c->flags & CMD_NOAUTH))) {
        if (c != NULL)
            stats_reject(s->st, (unsigned)(c - g_cmds));
        resp_w_error(o, "NOAUTH", "Authentication required.");
        return false;
    }
    if (c == NULL) {
        resp_w_errorf(o, "ERR unknown command '%.*s'", echo_len(&argv[0], CMD_NAME_ECHO_MAX),
                      argv[0].ptr);
        multi_flag_error(s);
        return false;
    }
    if (!(c->flags & CMD_NOAUTH) && session_gate_or_reply(s, o, c, argv, argc) != 0) {
        stats_reject(s->st, (unsigned)(c - g_cmds));
        multi_flag_error(s);
        /* an EXEC refused at the gate (its tenant dropped, the token's
         * bucket full, the token revoked) ends the transaction, as every
         * EXEC reply does: nothing of it ran, and the client's next
         * commands must not be queued behind its back */
        if (s->multi_open && (c->flags & CMD_NOQUEUE) && arg_eq(&argv[0], "exec"))
            multi_discard(s);
        return false;
    }
    if (peel_meta_or_reply(s, o, c, argv, &argc) != 0) {
        stats_reject(s->st, (unsigned)(c - g_cmds));
        multi_flag_error(s);
        return false;
    }
    if (!arity_ok(c, argc)) {
        stats_reject(s->st, (unsigned)(c - g_cmds));
        resp_w_errorf(o, "ERR wrong number of arguments for '%s' command", c->name);
        multi_flag_error(s);
        return false;
    }
    if (s->multi_open && !(c->flags & CMD_NOQUEUE)) {
        multi_queue(s, o, c, multi_kind_of(c), argv, argc);
        return false;
    }
    /* A standby (or a leader whose lease ran out) takes no write: Redis's
     * words, so clients react as they do to a Redis replica. */
    if ((c->flags & CMD_WRITE) && server_ctx_read_only(s->ctx)) {
        stats_reject(s->st, (unsigned)(c - g_cmds));
        resp_w_error(o, "READONLY", "You can't write against a read only replica.");
        multi_flag_error(s);
        if (s->multi_open && (c->flags & CMD_NOQUEUE) && arg_eq(&argv[0], "exec"))
            multi_discard(s); /* EXEC ends the transaction whatever it answers */
        return false;
    }
    if (c->flags & CMD_WRITE)
        actor_apply(s);
    command_run(s, o, c, argv, argc);
    assert(session_ok(s) && reply_buf_ok(o));
    return (c->flags & CMD_WRITE) != 0;
}

/* ---- connection commands ----------------------------------------------- */

static void cmd_ping(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    assert(handler_call_ok(s, o, v, n, 1, 2));
    if (n == 2)
        resp_w_bulk(o, v[1].ptr, v[1].len);
    else
        resp_w_simple(o, "PONG");
}

static void cmd_echo(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    assert(handler_call_ok(s, o, v, n, 2, 2));
    resp_w_bulk(o, v[1].ptr, v[1].len);
}

static void cmd_auth(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    assert(handler_call_ok(s, o, v, n, 2, 0));
    if (n > 3) {
        resp_w_error(o, "ERR", "syntax error");
        return;
    }
    if (n == 2 && !session_auth_required(s->ctx)) {
        resp_w_error(o, "ERR",
                     "AUTH <password> called without any password "
                     "configured for the default user. Are you sure "
                     "your configuration is correct?");
        return;
    }
    if (session_auth_or_reply(s, o, n == 3 ? &v[1] : NULL, &v[n - 1])) {
        assert(s->authed && s->scope != TOKEN_SCOPE_NONE);
        resp_w_ok(o);
    }
}

/* HELLO [protover [AUTH user token] [SETNAME name]], Redis 7's order:
 * every option is checked first, then AUTH, then the name is set. */
static void cmd_hello(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    assert(handler_call_ok(s, o, v, n, 1, 0));
    int proto = o->proto;
    const resp_arg *user = NULL, *tok = NULL, *name = NULL;
    if (n >= 2) {
        int64_t p;
        if (arg_ll_strict(&v[1], &p) != 0) {
            resp_w_error(o, "ERR", "Protocol version is not an integer or out of range");
            return;
        }
        if (p != 2 && p != 3) {
            resp_w_error(o, "NOPROTO", "unsupported protocol version");
            return;
        }
        proto = (int)p;
    }
    for (size_t i = 2; i < n; i++) {
        if (arg_eq(&v[i], "auth") && i + 2 < n) {
            user = &v[i + 1];
            tok = &v[i + 2];
            i += 2;
            assert(tok != NULL && i < n);
        } else if (arg_eq(&v[i], "setname") && i + 1 < n) {
            name = &v[++i];
            if (client_attr_check_or_reply(o, name, NULL) != 0)
                return;
        } else {
            resp_w_errorf(o, "ERR Syntax error in HELLO option '%.*s'",
                          echo_len(&v[i], CMD_ECHO_MAX), v[i].ptr);
            return;
        }
    }
    if (user != NULL && !session_auth_or_reply(s, o, user, tok))
        return;
    if (!s->authed) {
        resp_w_error(o, "NOAUTH",
                     "HELLO must be called with the client already "
                     "authenticated, otherwise the HELLO <proto> AUTH <user> "
                     "<pass> option can be used to authenticate the client and "
                     "select the RESP protocol version at the same time");
        return;
    }
    if (name != NULL && session_set_name_or_reply(s, o, name) != 0)
        return;
    assert(proto == 2 || proto == 3);
    o->proto = proto;
    resp_w_map(o, 7);
    resp_w_bulk_str(o, "server");
    resp_w_bulk_str(o, "invcore");
    resp_w_bulk_str(o, "version");
    resp_w_bulk_str(o, INVCORE_VERSION);
    resp_w_bulk_str(o, "proto");
    resp_w_int(o, proto);
    resp_w_bulk_str(o, "id");
    resp_w_int(o, (int64_t)s->id);
    resp_w_bulk_str(o, "mode");
    resp_w_bulk_str(o, "standalone");
    resp_w_bulk_str(o, "role");
    resp_w_bulk_str(o, "master");
    resp_w_bulk_str(o, "modules");
    resp_w_array(o, 0);
}

static void cmd_quit(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    assert(handler_call_ok(s, o, v, n, 1, 0));
    s->quit = true;
    resp_w_ok(o);
}

/* ---- INFO --------------------------------------------------------------- */

static void txt(resp_out *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void txt(resp_out *t, const char *fmt, ...)
{
    assert(reply_buf_ok(t) && fmt != NULL);
    va_list ap;
    va_start(ap, fmt);
    resp_out_vprintf(t, INFO_LINE_MAX, fmt, ap);
    va_end(ap);
}

/* The sections INFO was asked for: none means every section; "all" and
 * "everything" too; "default" all but commandstats and latencystats (as
 * Redis); other names pick their section (case-insensitive). */
typedef struct {
    const resp_arg *v;
    size_t n;
} info_sel;

static bool want(const info_sel *q, const char *name, bool in_default)
{
    assert(q != NULL && name != NULL && (q->v != NULL || q->n == 0));
    if (q->n == 0)
        return true;
    for (size_t i = 0; i < q->n; i++)
        if (arg_eq(&q->v[i], "all") || arg_eq(&q->v[i], "everything") ||
            (in_default && arg_eq(&q->v[i], "default")) || arg_eq(&q->v[i], name))
            return true;
    return false;
}

/* Redis's bytesToHuman: 1023B, 1.50K, 2.25M ... */
static void human_bytes(char *dst, size_t cap, uint64_t n)
{
    /* "1023B", or "%.2f" of at most 1023.99 (u64 ends in P: < 16384) and a unit */
    assert(dst != NULL && cap >= 16);
    if (n < 1024) {
        snprintf(dst, cap, "%lluB", (unsigned long long)n);
        return;
    }
    static const char units[] = "KMGTP";
    double d = (double)n / 1024;
    size_t u = 0;
    while (d >= 1024 && u + 1 < sizeof units - 1) {
        d /= 1024;
        u++;
    }
    assert(u < sizeof units - 1);
    snprintf(dst, cap, "%.2f%c", d, units[u]);
}

static void info_server(session *s, resp_out *t)
{
    assert(session_ok(s) && reply_buf_ok(t));
    const server_ctx *x = s->ctx;
    const server_config *cfg = x->cfg;
    char exe[256];
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    int64_t up_s = (clock_wall_ms() - x->start_ms) / 1000;
    assert(k < (ssize_t)sizeof exe); /* readlink wrote at most sizeof exe - 1 */
    exe[k > 0 ? k : 0] = '\0';
    struct utsname un;
    if (uname(&un) != 0)
        memset(&un, 0, sizeof un);
    txt(t,
        "# Server\r\ninvcore_version:%s\r\nredis_version:7.0.0\r\n"
        "redis_mode:standalone\r\nos:%.64s %.64s %.64s\r\narch_bits:%d\r\n"
        "multiplexing_api:epoll\r\nprocess_id:%ld\r\ntcp_port:%d\r\n",
        INVCORE_VERSION, un.sysname, un.release, un.machine, (int)(sizeof(void *) * 8),
        (long)getpid(), x->port);
    txt(t,
        "bind:%s\r\nthreads:%u\r\nuptime_in_seconds:%lld\r\n"
        "uptime_in_days:%lld\r\nexecutable:%.200s\r\nconfig_file:\r\n",
        cfg->bind, x->threads, (long long)up_s, (long long)(up_s / 86400), exe);
    txt(t, "data_dir:%.200s\r\nfsync:%s\r\n\r\n", cfg->data_dir ? cfg->data_dir : "(in-memory)",
        config_fsync_name(cfg->fsync_policy));
}

static uint64_t total_calls(void)
{
    uint64_t total = 0;
    assert(g_ncmds > 0 && g_ncmds <= STATS_COMMANDS_MAX);
    for (size_t c = 0; c < g_ncmds; c++)
        total += stats_calls((unsigned)c);
    return total;
}

/* The counters of # Clients and # Stats: one list of names and one of
 * values, in section order (INFO_CLIENTS_FIELDS of # Clients first). */
static const char *const info_counter_names[] = {
    "connected_clients", "blocked_clients", "maxclients", "auth_failures", "idle_timeouts",
    "reply_limit_disconnects", "protocol_errors", "clients_memory", "maxmemory_clients",
    /* # Stats */
    "total_connections_received", "total_commands_processed", "instantaneous_ops_per_sec",
    "rejected_connections", "expired_keys", "evicted_keys", "auth_throttled", "scope_denied",
    "rate_limited", "evicted_clients"};
#define INFO_CLIENTS_FIELDS 9u
#define INFO_COUNTERS (sizeof info_counter_names / sizeof info_counter_names[0])

/* # Clients or # Stats: the counters [from, to) of info_counter_names. */
static void info_counters(session *s, resp_out *t, const char *title, size_t from, size_t to)
{
    assert(session_ok(s) && reply_buf_ok(t) && title != NULL && s->ctx->g != NULL);
    const stats_global *g = s->ctx->g;
    const uint64_t value[INFO_COUNTERS] = {stats_get(&g->connected),
                                           stats_get(&g->blocked),
                                           s->ctx->cfg->maxclients,
                                           stats_get(&g->auth_failures),
                                           stats_get(&g->idle_closed),
                                           stats_get(&g->reply_limit_closed),
                                           stats_get(&g->protocol_errors),
                                           stats_get(&g->clients_mem),
                                           s->ctx->cfg->maxmemory_clients,
                                           stats_get(&g->accepted),
                                           total_calls(),
                                           stats_ops_per_sec(clock_mono_ns()),
                                           stats_get(&g->rejected_maxclients),
                                           0,
                                           0,
                                           stats_get(&g->auth_throttled),
                                           stats_get(&g->scope_denied),
                                           stats_get(&g->rate_limited),
                                           stats_get(&g->evicted_memory)};
    assert(from < to && to <= INFO_COUNTERS);
    txt(t, "# %s\r\n", title);
    for (size_t i = from; i < to; i++)
        txt(t, "%s:%llu\r\n", info_counter_names[i], (unsigned long long)value[i]);
    txt(t, "\r\n");
}

/* used_memory comes first: redis-cli --stat finds fields by substring. */
static void info_memory(resp_out *t, const inv_stats *st)
{
    assert(reply_buf_ok(t) && st != NULL);
    stats_memory_info m;
    char used[32], rss[32], peak[32];
    stats_memory(&m);
    human_bytes(used, sizeof used, m.used);
    human_bytes(rss, sizeof rss, m.rss);
    human_bytes(peak, sizeof peak, m.peak);
    txt(t,
        "# Memory\r\nused_memory:%llu\r\nused_memory_human:%s\r\n"
        "used_memory_rss:%llu\r\nused_memory_rss_human:%s\r\n"
        "used_memory_peak:%llu\r\nused_memory_peak_human:%s\r\n",
        (unsigned long long)m.used, used, (unsigned long long)m.rss, rss,
        (unsigned long long)m.peak, peak);
    txt(t,
        "used_memory_dataset:%llu\r\nallocator_active:%llu\r\n"
        "allocator_resident:%llu\r\nmem_fragmentation_ratio:%.2f\r\n"
        "mem_allocator:%s\r\nmaxmemory:0\r\nmaxmemory_human:0B\r\n"
        "maxmemory_policy:noeviction\r\n",
        (unsigned long long)st->table_bytes, (unsigned long long)m.active,
        (unsigned long long)m.resident, m.used ? (double)m.rss / (double)m.used : 0.0, m.allocator);
    txt(t,
        "table_bytes:%llu\r\ntable_resizes:%llu\r\n"
        "levels:%llu\r\nitems:%llu\r\nlocations:%llu\r\n\r\n",
        (unsigned long long)st->table_bytes, (unsigned long long)st->table_resizes,
        (unsigned long long)st->levels, (unsigned long long)st->items,
        (unsigned long long)st->locations);
}

/* No child process ever runs (snapshots are written by the engine's own
 * threads), and recovery ends before the server answers: the Redis fields
 * that tools poll are constant. The journal is an append-only file; the
 * history (FEED.READ) starts at history_oldest_position (0 in memory). */
static void info_persistence(session *s, resp_out *t, const inv_stats *st)
{
    assert(session_ok(s) && reply_buf_ok(t) && st != NULL);
    txt(t,
        "# Persistence\r\nloading:0\r\nasync_loading:0\r\n"
        "rdb_bgsave_in_progress:0\r\naof_enabled:%d\r\n"
        "aof_rewrite_in_progress:0\r\naof_last_write_status:%s\r\n"
        "history_oldest_position:%llu\r\nhistory_bytes:%llu\r\n\r\n",
        s->ctx->cfg->data_dir != NULL, st->journal_failed ? "err" : "ok",
        (unsigned long long)st->history_oldest_position, (unsigned long long)st->history_bytes);
}

static void info_replication(resp_out *t, const inv_stats *st)
{
    assert(reply_buf_ok(t) && st != NULL);
    txt(t,
        "# Replication\r\nrole:master\r\nconnected_slaves:0\r\n"
        "master_repl_offset:%llu\r\nrepl_backlog_active:0\r\n\r\n",
        (unsigned long long)st->journal_position);
}

static void info_cpu(resp_out *t)
{
    assert(reply_buf_ok(t));
    struct rusage self, children;
    if (getrusage(RUSAGE_SELF, &self) != 0)
        memset(&self, 0, sizeof self);
    if (getrusage(RUSAGE_CHILDREN, &children) != 0)
        memset(&children, 0, sizeof children);
#define SECS(tv) ((double)(tv).tv_sec + (double)(tv).tv_usec / 1e6)
    txt(t,
        "# CPU\r\nused_cpu_sys:%.6f\r\nused_cpu_user:%.6f\r\n"
        "used_cpu_sys_children:%.6f\r\nused_cpu_user_children:%.6f\r\n\r\n",
        SECS(self.ru_stime), SECS(self.ru_utime), SECS(children.ru_stime), SECS(children.ru_utime));
#undef SECS
}

static void info_commandstats(resp_out *t)
{
    assert(reply_buf_ok(t) && g_ncmds > 0);
    txt(t, "# Commandstats\r\n");
    for (size_t c = 0; c < g_ncmds; c++) {
        uint64_t calls = stats_sum(STATS_CALLS, (unsigned)c);
        uint64_t rejected = stats_sum(STATS_REJECTED, (unsigned)c);
        uint64_t usec = stats_sum(STATS_NS, (unsigned)c) / 1000;
        if (calls == 0 && rejected == 0)
            continue;
        txt(t,
            "cmdstat_%s:calls=%llu,usec=%llu,usec_per_call=%.2f,"
            "rejected_calls=%llu,failed_calls=%llu\r\n",
            g_cmds[c].name, (unsigned long long)calls, (unsigned long long)usec,
            calls ? (double)usec / (double)calls : 0.0, (unsigned long long)rejected,
            (unsigned long long)stats_sum(STATS_ERRORS, (unsigned)c));
    }
    txt(t, "\r\n");
}

static void info_latency(resp_out *t)
{
    assert(reply_buf_ok(t) && g_ncmds > 0);
    txt(t, "# Latencystats\r\n");
    for (size_t c = 0; c < g_ncmds; c++) {
        if (stats_calls((unsigned)c) == 0)
            continue;
        txt(t, "latency_percentiles_usec_%s:p50=%.3f,p99=%.3f,p99.9=%.3f\r\n", g_cmds[c].name,
            (double)stats_quantile_ns((unsigned)c, 0.5) / 1e3,
            (double)stats_quantile_ns((unsigned)c, 0.99) / 1e3,
            (double)stats_quantile_ns((unsigned)c, 0.999) / 1e3);
    }
    txt(t, "\r\n");
}

/* Levels are the keys (SCAN, TYPE); none expires. Redis omits empty dbs. */
static void info_keyspace(resp_out *t, const inv_stats *st)
{
    assert(reply_buf_ok(t) && st != NULL);
    txt(t, "# Keyspace\r\n");
    if (st->levels > 0)
        txt(t, "db0:keys=%llu,expires=0,avg_ttl=0\r\n", (unsigned long long)st->levels);
    txt(t, "\r\n");
}

/* One tenant's line of # Tenants, Redis's keyspace style. */
static int info_tenant_line(void *arg, inv_tenant *tn)
{
    resp_out *t = arg;
    inv_stats st;
    size_t len;
    assert(reply_buf_ok(t) && tn != NULL);
    const char *name = inv_tenant_name(tn, &len);
    assert(name != NULL && len <= INV_TENANT_NAME_MAX);
    memset(&st, 0, sizeof st);
    (void)inv_stats_get(inv_tenant_engine(tn), &st);
    txt(t,
        "tenant_%s:levels=%llu,items=%llu,locations=%llu,holds_active=%llu,"
        "journal_position=%llu,journal_bytes=%llu\r\n",
        name, (unsigned long long)st.levels, (unsigned long long)st.items,
        (unsigned long long)st.locations, (unsigned long long)st.holds_active,
        (unsigned long long)st.journal_position, (unsigned long long)st.journal_bytes);
    return 0;
}

/* # Tenants: how many, the session's own, and a line per tenant (an admin
 * sees every tenant, another scope only its own). Not in INFO's default
 * sections: a thousand tenants are a thousand lines. */
static void info_tenants(session *s, resp_out *t)
{
    assert(session_ok(s) && reply_buf_ok(t));
    assert(s->authed); /* INFO is not a CMD_NOAUTH command */
    txt(t, "# Tenants\r\ntenants:%zu\r\ntenant:%s\r\nscope:%s\r\n",
        inv_tenants_count(s->ctx->tenants), s->tenant_name, token_scope_name(s->scope));
    if (s->scope == TOKEN_SCOPE_ADMIN)
        (void)inv_tenants_each(s->ctx->tenants, info_tenant_line, t);
    else if (s->tenant != NULL)
        (void)info_tenant_line(t, s->tenant);
    txt(t, "\r\n");
}

static void info_engine(session *s, resp_out *t, const info_sel *q, const inv_stats *st)
{
    assert(session_ok(s) && reply_buf_ok(t));
    assert(q != NULL && st != NULL);
    if (want(q, "journal", true))
        txt(t,
            "# Journal\r\njournal_enabled:%d\r\njournal_position:%llu\r\n"
            "durable_position:%llu\r\njournal_bytes:%llu\r\nfsyncs:%llu\r\n"
            "records_written:%llu\r\nsnapshots:%llu\r\njournal_failed:%d\r\n"
            "held_replies:%llu\r\n\r\n",
            s->ctx->cfg->data_dir != NULL, (unsigned long long)st->journal_position,
            (unsigned long long)st->durable_position, (unsigned long long)st->journal_bytes,
            (unsigned long long)st->fsyncs, (unsigned long long)st->records_written,
            (unsigned long long)st->snapshots, st->journal_failed ? 1 : 0,
            (unsigned long long)stats_get(&s->ctx->g->held_replies));
    if (want(q, "holds", true))
        txt(t,
            "# Holds\r\nholds_active:%llu\r\nholds_created:%llu\r\n"
            "holds_committed:%llu\r\nholds_released:%llu\r\n"
            "holds_expired:%llu\r\n\r\n",
            (unsigned long long)st->holds_active, (unsigned long long)st->holds_created,
            (unsigned long long)st->holds_committed, (unsigned long long)st->holds_released,
            (unsigned long long)st->holds_expired);
    if (want(q, "requestids", true))
        txt(t,
            "# Requestids\r\nrequest_ids:%llu\r\nrequest_id_hits:%llu\r\n"
            "request_id_conflicts:%llu\r\nrequest_ids_expired:%llu\r\n"
            "request_ids_forgotten_early:%llu\r\n\r\n",
            (unsigned long long)st->request_ids, (unsigned long long)st->request_id_hits,
            (unsigned long long)st->request_id_conflicts,
            (unsigned long long)st->request_ids_expired,
            (unsigned long long)st->request_ids_forgotten_early);
}

static void cmd_info(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    assert(handler_call_ok(s, o, v, n, 1, 0));
    const info_sel q = {v + 1, n - 1};
    inv_stats st;
    memset(&st, 0, sizeof st);
    (void)inv_stats_get(s->e, &st); /* zeros if it fails */
    resp_out t;
    resp_out_init(&t, 2);
    if (want(&q, "server", true))
        info_server(s, &t);
    if (want(&q, "clients", true))
        info_counters(s, &t, "Clients", 0, INFO_CLIENTS_FIELDS);
    if (want(&q, "memory", true))
        info_memory(&t, &st);
    if (want(&q, "persistence", true))
        info_persistence(s, &t, &st);
    if (want(&q, "stats", true))
        info_counters(s, &t, "Stats", INFO_CLIENTS_FIELDS, INFO_COUNTERS);
    if (want(&q, "replication", true))
        info_replication(&t, &st);
    if (want(&q, "cpu", true))
        info_cpu(&t);
    if (want(&q, "commandstats", false))
        info_commandstats(&t);
    if (want(&q, "latencystats", false) || want(&q, "latency", false))
        info_latency(&t);
    if (want(&q, "cluster", true))
        txt(&t, "# Cluster\r\ncluster_enabled:0\r\n\r\n");
    if (want(&q, "keyspace", true))
        info_keyspace(&t, &st);
    info_engine(s, &t, &q, &st);
    if (want(&q, "webhooks", true))
        info_webhooks(&t);
    if (want(&q, "http", true))
        info_http(&t, s->ctx->http_port);
    if (want(&q, "tenants", false))
        info_tenants(s, &t);
    assert(reply_buf_ok(&t));
    if (t.failed)
        reply_engine_error(o, INV_ENOMEM);
    else
        resp_w_verbatim(o, t.buf ? t.buf : "", t.len);
    resp_out_free(&t);
}

/* ---- COMMAND ------------------------------------------------------------ */

static size_t subs_count(const cmd_sub *subs)
{
    size_t k = 0;
    while (subs != NULL && subs[k].name != NULL)
        k++;
    assert(subs == NULL || subs[k].fn == NULL); /* the table's end row */
    return k;
}

/* One COMMAND INFO entry; subcommands are entries of the same shape. */
static void info_entry(resp_out *o, const char *name, unsigned min_args, unsigned max_args,
                       unsigned flags, const cmd_sub *subs)
{
    assert(reply_buf_ok(o) && name != NULL);
    assert(min_args >= 1 && (max_args == 0 || max_args >= min_args));
    int arity = (max_args == min_args) ? (int)min_args : -(int)min_args;
    resp_w_array(o, 10);
    resp_w_bulk_str(o, name);
    resp_w_int(o, arity);
    size_t nflags = ((flags & CMD_WRITE) ? 1 : 1) + ((flags & CMD_FAST) ? 1 : 0) +
                    ((flags & CMD_NOAUTH) ? 1 : 0) + ((flags & CMD_ADMIN) ? 1 : 0);
    resp_w_array(o, nflags);
    resp_w_simple(o, (flags & CMD_WRITE) ? "write" : "readonly");
    if (flags & CMD_FAST)
        resp_w_simple(o, "fast");
    if (flags & CMD_NOAUTH)
        resp_w_simple(o, "no_auth");
    if (flags & CMD_ADMIN)
        resp_w_simple(o, "admin");
    resp_w_int(o, 0); /* first key: invcore has no keyspace */
    resp_w_int(o, 0);
    resp_w_int(o, 0);
    resp_w_array(o, 0); /* ACL categories */
    resp_w_array(o, 0); /* tips */
    resp_w_array(o, 0); /* key specs */
    size_t nsubs = subs_count(subs);
    resp_w_array(o, nsubs);
    for (size_t i = 0; i < nsubs; i++)
        info_entry(o, subs[i].name, subs[i].min_args, subs[i].max_args,
                   subs[i].admin ? CMD_ADMIN : 0, NULL);
}

static void command_info_entry(resp_out *o, const cmd_def *c)
{
    assert(cmd_in_table(c));
    info_entry(o, c->name, c->min_args, c->max_args, c->flags, subs_of(c));
}

/* COMMAND DOCS: {summary, since, group[, subcommands]}. */
static void docs_entry(resp_out *o, const char *summary, const cmd_sub *subs)
{
    assert(reply_buf_ok(o) && summary != NULL);
    size_t nsubs = subs_count(subs);
    resp_w_map(o, nsubs ? 4 : 3);
    resp_w_bulk_str(o, "summary");
    resp_w_bulk_str(o, summary);
    resp_w_bulk_str(o, "since");
    resp_w_bulk_str(o, INVCORE_VERSION);
    resp_w_bulk_str(o, "group");
    resp_w_bulk_str(o, "generic");
    if (nsubs == 0)
        return;
    resp_w_bulk_str(o, "subcommands");
    resp_w_map(o, nsubs);
    for (size_t i = 0; i < nsubs; i++) {
        resp_w_bulk_str(o, subs[i].name);
        docs_entry(o, subs[i].summary, NULL);
    }
}

static void cmd_command(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    assert(handler_call_ok(s, o, v, n, 1, 0));
    if (n == 1) {
        resp_w_array(o, g_ncmds);
        for (size_t c = 0; c < g_ncmds; c++)
            command_info_entry(o, &g_cmds[c]);
    } else if (arg_eq(&v[1], "count") && n == 2) {
        resp_w_int(o, (int64_t)g_ncmds);
    } else if (arg_eq(&v[1], "list") && n == 2) {
        resp_w_array(o, g_ncmds);
        for (size_t c = 0; c < g_ncmds; c++)
            resp_w_bulk_str(o, g_cmds[c].name);
    } else if (arg_eq(&v[1], "info")) {
        resp_w_array(o, n - 2);
        for (size_t i = 2; i < n; i++) {
            const cmd_def *c = lookup(&v[i]);
            if (c)
                command_info_entry(o, c);
            else
                resp_w_null(o);
        }
    } else if (arg_eq(&v[1], "docs")) {
        /* name -> {summary, since, group}; all commands, or those asked */
        size_t k = 0;
        const cmd_def *sel[STATS_COMMANDS_MAX];
        for (size_t c = 0; c < g_ncmds; c++) {
            bool asked = n == 2;
            for (size_t i = 2; i < n && !asked; i++)
                asked = lookup(&v[i]) == &g_cmds[c];
            if (asked)
                sel[k++] = &g_cmds[c];
        }
        assert(k <= g_ncmds);
        resp_w_map(o, k);
        for (size_t i = 0; i < k; i++) {
            resp_w_bulk_str(o, sel[i]->name);
            docs_entry(o, sel[i]->summary, subs_of(sel[i]));
        }
    } else {
        resp_w_error(o, "ERR", "unknown COMMAND subcommand (COUNT DOCS INFO LIST)");
    }
}

/* ---- CONFIG GET ----------------------------------------------------------- */

static bool glob_eq(char a, char b, bool nocase)
{
    if (nocase) {
        a = (a >= 'A' && a <= 'Z') ? (char)(a + 32) : a;
        b = (b >= 'A' && b <= 'Z') ? (char)(b + 32) : b;
    }
    return a == b;
}

/* [class] at p[i] (i past '['): [abc], [^abc], [a-z], \x escapes; an
 * unterminated class ends with the pattern (as Redis). */
static bool glob_class(const char *p, size_t pn, size_t *pi, char c, bool nocase)
{
    size_t i = *pi;
    bool neg = false, hit = false;
    assert(p != NULL && i <= pn);
    if (i < pn && p[i] == '^') {
        neg = true;
        i++;
    }
    while (i < pn && p[i] != ']') {
        if (p[i] == '\\' && i + 1 < pn) {
            hit |= glob_eq(p[i + 1], c, nocase);
            i += 2;
        } else if (i + 2 < pn && p[i + 1] == '-') {
            char lo = p[i], hi = p[i + 2], x = c;
            if (lo > hi) {
                char tmp = lo;
                lo = hi;
                hi = tmp;
            }
            if (nocase) {
                lo = (lo >= 'A' && lo <= 'Z') ? (char)(lo + 32) : lo;
                hi = (hi >= 'A' && hi <= 'Z') ? (char)(hi + 32) : hi;
                x = (x >= 'A' && x <= 'Z') ? (char)(x + 32) : x;
            }
            hit |= x >= lo && x <= hi;
            i += 3;
        } else {
            hit |= glob_eq(p[i], c, nocase);
            i++;
        }
    }
    *pi = i < pn ? i + 1 : i;
    assert(*pi <= pn); /* the cursor stayed within the pattern */
    return hit != neg;
}

/* Does the one-character token at p[*pi] (not '*') match c? Moves *pi
 * past it. */
static bool glob_token(const char *p, size_t pn, size_t *pi, char c, bool nocase)
{
    size_t i = *pi;
    assert(p != NULL && i < pn && p[i] != '*'); /* glob_match handles '*' */
    if (p[i] == '[') {
        *pi = i + 1;
        return glob_class(p, pn, pi, c, nocase);
    }
    if (p[i] == '\\' && i + 1 < pn) {
        *pi = i + 2;
        return glob_eq(p[i + 1], c, nocase);
    }
    *pi = i + 1;
    return p[i] == '?' || glob_eq(p[i], c, nocase);
}

/* Redis's glob (* ? [abc] [^a-z] \x). Every token but '*' takes exactly
 * one character, so backtracking to the last '*' alone is exact:
 * O(len(p) * len(s)), no recursion. */
bool glob_match(const char *p, size_t pn, const char *s, size_t sn, bool nocase)
{
    size_t pi = 0, si = 0, star_p = SIZE_MAX, star_s = 0;
    assert((p != NULL || pn == 0) && (s != NULL || sn == 0));
    while (si < sn) {
        size_t next = pi;
        if (pi < pn && p[pi] == '*') {
            star_p = ++pi; /* the pattern after the star */
            star_s = si;
        } else if (pi < pn && glob_token(p, pn, &next, s[si], nocase)) {
            assert(next > pi && next <= pn); /* a token advanced */
            pi = next;
            si++;
        } else if (star_p != SIZE_MAX) {
            pi = star_p;
            si = ++star_s;
        } else {
            return false;
        }
    }
    while (pi < pn && p[pi] == '*')
        pi++;
    return pi == pn;
}

static void cmd_config(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    assert(handler_call_ok(s, o, v, n, 2, 0));
    if (!arg_eq(&v[1], "get") || n < 3) {
        if (arg_eq(&v[1], "get"))
            resp_w_errorf(o, "ERR wrong number of arguments for 'config|get' command");
        else
            resp_w_error(o, "ERR",
                         "only CONFIG GET is supported; settings "
                         "are command-line flags");
        return;
    }
    const server_config *cfg = s->ctx->cfg;
    enum { NCONF = 12 };
    const char *names[NCONF] = {"save",
                                "appendonly",
                                "appendfsync",
                                "port",
                                "bind",
                                "maxclients",
                                "timeout",
                                "databases",
                                "io-threads",
                                "proto-max-bulk-len",
                                "slowlog-log-slower-than",
                                "slowlog-max-len"};
    char vals[NCONF][80];
    snprintf(vals[0], sizeof vals[0], "%s", "");
    snprintf(vals[1], sizeof vals[1], "%s", cfg->data_dir ? "yes" : "no");
    snprintf(vals[2], sizeof vals[2], "%s",
             cfg->fsync_policy == INV_FSYNC_ALWAYS     ? "always"
             : cfg->fsync_policy == INV_FSYNC_INTERVAL ? "everysec"
                                                       : "no");
    snprintf(vals[3], sizeof vals[3], "%d", s->ctx->port);
    snprintf(vals[4], sizeof vals[4], "%s", cfg->bind);
    snprintf(vals[5], sizeof vals[5], "%u", cfg->maxclients);
    snprintf(vals[6], sizeof vals[6], "%u", cfg->timeout_s);
    snprintf(vals[7], sizeof vals[7], "%s", "1");
    snprintf(vals[8], sizeof vals[8], "%u", s->ctx->threads);
    snprintf(vals[9], sizeof vals[9], "%zu", cfg->max_bulk);
    snprintf(vals[10], sizeof vals[10], "%lld", (long long)cfg->slowlog_slower_than_us);
    snprintf(vals[11], sizeof vals[11], "%u", cfg->slowlog_max_len);
    bool hit[NCONF] = {false};
    size_t k = 0;
    for (size_t i = 2; i < n; i++) {
        if (v[i].len > CMD_PATTERN_MAX)
            continue;
        for (size_t j = 0; j < NCONF; j++)
            if (!hit[j] && glob_match(v[i].ptr, v[i].len, names[j], strlen(names[j]), true)) {
                hit[j] = true;
                k++;
            }
    }
    assert(k <= NCONF);
    resp_w_map(o, k);
    for (size_t j = 0; j < NCONF; j++) {
        if (!hit[j])
            continue;
        resp_w_bulk_str(o, names[j]);
        resp_w_bulk_str(o, vals[j]);
    }
}

/* ---- SNAPSHOT, DBSIZE ----------------------------------------------------- */

static void cmd_snapshot(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    assert(handler_call_ok(s, o, v, n, 1, 1));
    assert(s->e != NULL); /* not CMD_NOTENANT: the gate resolved the tenant */
    int rc = inv_snapshot(s->e);
    if (rc == INV_OK)
        resp_w_ok(o);
    else if (rc == INV_EINVALID && s->ctx->cfg->data_dir == NULL)
        resp_w_error(o, "INVALID", "no data dir: the server runs in memory");
    else
        reply_engine_error(o, rc);
}

static void cmd_dbsize(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    assert(handler_call_ok(s, o, v, n, 1, 1));
    assert(s->e != NULL); /* not CMD_NOTENANT: the gate resolved the tenant */
    inv_stats st;
    if (engine_or_reply(o, inv_stats_get(s->e, &st)) == 0)
        resp_w_int(o, (int64_t)st.levels);
}
