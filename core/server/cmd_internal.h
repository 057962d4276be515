/*
 * cmd_internal.h — shared by command.c (table, dispatch, admin commands),
 * cmd_conn.c (CLIENT, SELECT, TIME, RESET, ROLE), cmd_inventory.c
 * (location, item, level and product commands), cmd_hold.c (hold
 * commands), cmd_multi.c (MULTI /
 * EXEC transactions), cmd_introspect.c (SLOWLOG, LATENCY, MEMORY, SCAN,
 * TYPE) and cmd_feed.c (FEED.READ, LEVEL.HISTORY). Not used outside
 * core/server/cmd*.c.
 *
 * Helpers named ..._or_reply write the error reply themselves and return
 * -1; the handler then returns at once (one reply per request).
 */
#ifndef INV_SERVER_CMD_INTERNAL_H
#define INV_SERVER_CMD_INTERNAL_H

#include <assert.h>

#include "server/command.h"

#define CMD_PRODUCT_ROWS_SCRATCH 4096u /* rows answered without malloc */
#define CMD_PRODUCT_ROWS_MAX (1u << 20) /* rows in one PRODUCT.INVENTORY */
#define CMD_LIST_COUNT_DEFAULT 100u /* LOC.LIST / ITEM.LIST page */
#define CMD_ECHO_MAX \
    128 /* bytes of a client's argument
                                             quoted back in an error */
#define CMD_NAME_ECHO_MAX \
    64 /* bytes of a command or field name
                                             quoted back in an error */

struct cmd_scratch {
    uint64_t ids[2 * INV_LIST_COUNT_MAX];
    inv_level_entry levels[INV_LOCATIONS_MAX];
    inv_stock_row rows[CMD_PRODUCT_ROWS_SCRATCH];
    inv_hold_line lines[INV_HOLD_LINES_MAX];
    inv_hold_info hold;
    /* EXEC: the transaction's batch lines and their results */
    inv_batch_line batch[INV_BATCH_LINES_MAX];
    inv_batch_result results[INV_BATCH_LINES_MAX];
    inv_level_row level_rows[INV_LIST_COUNT_MAX]; /* SCAN */
    inv_level_full_row full_rows[INV_LIST_COUNT_MAX]; /* LEVEL.LIST pages, ... ALL */
    char hold_ids[INV_LIST_COUNT_MAX][INV_HOLD_ID_MAX + 1]; /* HOLD.LIST */
    size_t hold_id_lens[INV_LIST_COUNT_MAX];
};

/* ---- invariant predicates ------------------------------------------------
 * Used only inside assert() (kept in release builds: each is O(1), a few
 * compares, no allocation). They state what this layer itself guarantees,
 * never what a client sent. */

/* A reply buffer the resp_w_* writers may append to. */
static inline bool reply_buf_ok(const resp_out *o)
{
    return o != NULL && o->len <= o->cap && (o->buf != NULL || o->cap == 0) &&
           (o->proto == 2 || o->proto == 3);
}

/* A session between requests (command.h, cmd_tenant.c, cmd_multi.c):
 * an engine exactly with a tenant; authenticated exactly with a scope;
 * a name exactly with a name generation; outside MULTI nothing queued
 * and not aborted; an aborted transaction keeps no queue. */
static inline bool session_ok(const session *s)
{
    return s != NULL && s->ctx != NULL && s->ctx->cfg != NULL && s->scratch != NULL &&
           (s->e == NULL) == (s->tenant == NULL) && s->tenant_name_len <= INV_TENANT_NAME_MAX &&
           s->authed == (s->scope != TOKEN_SCOPE_NONE) && (s->name == NULL) == (s->name_gen == 0) &&
           (s->multi_open || (s->multi_count == 0 && s->multi_head == NULL && !s->multi_aborted)) &&
           (!s->multi_aborted || (s->multi_head == NULL && s->multi_count == 0)) &&
           s->multi_id_len <= INV_REQUEST_ID_MAX;
}

/* A handler's call as command_exec makes it: a sound session and reply
 * buffer, and argc within the row's arity (min_args..max_args, 0: no
 * upper bound), which command_exec (or multi_queue, for EXEC) checked. */
static inline bool handler_call_ok(const session *s, const resp_out *o, const resp_arg *v, size_t n,
                                   size_t min_args, size_t max_args)
{
    return session_ok(s) && reply_buf_ok(o) && v != NULL && n >= min_args &&
           (max_args == 0 || n <= max_args);
}

/* A row of command.c's table; opaque outside command.c. */

/* Every command and subcommand handler has this type: the handlers below
 * are declared with it, one line per family. */
typedef void cmd_handler(session *s, resp_out *o, const resp_arg *argv, size_t argc);
typedef cmd_handler *cmd_fn;

/* ---- the command table ----------------------------------------------------
 * Each cmd_*.c file lists the commands it answers in a table of rows
 * (cmd_*_rows); command.c assembles them, in a fixed order, into the one
 * table that lookup, COMMAND, INFO and the statistics index. */

enum {
    CMD_WRITE = 1u << 0, /* may change the engine: reply waits for fsync */
    CMD_NOAUTH = 1u << 1, /* allowed before AUTH */
    CMD_ADMIN = 1u << 2,
    CMD_FAST = 1u << 3,
    CMD_BATCH = 1u << 4, /* an inv_batch line: MULTI queues it, EXEC applies it */
    CMD_READONLY = 1u << 5, /* reads only: MULTI queues it, it runs after the batch */
    CMD_NOQUEUE = 1u << 6, /* runs at once even inside MULTI */
    CMD_SUBS = 1u << 7, /* argv[1] names a subcommand (g_subcommands) */
    CMD_SCOPE_ADMIN = 1u << 8, /* needs a token of scope admin (cmd_tenant.c) */
    CMD_NOTENANT = 1u << 9, /* runs without a tenant (connection, server, tenants) */
};

/* Inside MULTI a command without CMD_BATCH, CMD_READONLY or CMD_NOQUEUE is
 * refused (it would write outside the batch, or change the connection). */
typedef struct cmd_def {
    const char *name; /* lower case */
    unsigned min_args; /* argc, the command name included */
    unsigned max_args; /* 0: no upper bound */
    unsigned rep_base; /* when step: (argc - rep_base) % step == 0 */
    unsigned rep_step;
    unsigned flags;
    cmd_fn fn;
    const char *summary;
} cmd_def;

extern const cmd_def cmd_conn_rows[], cmd_inventory_rows[], cmd_hold_rows[], cmd_multi_rows[],
    cmd_introspect_rows[], cmd_feed_rows[], cmd_tenant_rows[], cmd_repl_rows[];
extern const size_t cmd_conn_rows_n, cmd_inventory_rows_n, cmd_hold_rows_n, cmd_multi_rows_n,
    cmd_introspect_rows_n, cmd_feed_rows_n, cmd_tenant_rows_n, cmd_repl_rows_n;

/* ---- tenants, tokens and scopes (cmd_tenant.c) ---------------------------- */

/* --requirepass or --tokens given: sessions start unauthenticated. */
bool session_auth_required(const server_ctx *x);
/* A new or RESET session's authentication: admin on the default tenant
 * when none is required, else signed out (releases what it held). */
void session_auth_start(session *s);
void session_auth_free(session *s);
/* AUTH [user] token (user NULL: none): true when authenticated, else an
 * error reply (WRONGPASS, or the throttle's) was written. */
bool session_auth_or_reply(session *s, resp_out *o, const resp_arg *user, const resp_arg *tok);
/* Before an authenticated session runs command c: its token still valid
 * (after a reload), the scope, the rate limit, and the tenant (unless
 * CMD_NOTENANT) resolved into s->e. 0, or -1 after an error reply. */
int session_gate_or_reply(session *s, resp_out *o, const cmd_def *c, const resp_arg *argv,
                          size_t argc);

bool arg_eq(const resp_arg *a, const char *lit); /* case-insensitive */
/* printf's precision for a quoted argument: "%.*s", echo_len(a, max), a->ptr
 * prints at most max bytes of it. */
static inline int echo_len(const resp_arg *a, size_t max)
{
    return (int)(a->len > max ? max : a->len);
}
int arg_u64_or_reply(resp_out *o, const resp_arg *a, const char *what, uint64_t *v);
int arg_i64_or_reply(resp_out *o, const resp_arg *a, const char *what, int64_t *v);
/* A listing's `CURSOR c` or `COUNT n` (1..INV_LIST_COUNT_MAX) pair: 1 when
 * key is one of them (stored), 0 when it is another key, -1 after an
 * error reply. */
int page_option_or_reply(resp_out *o, const resp_arg *key, const resp_arg *val, uint64_t *cursor,
                         size_t *count);
/* Copies a into dst[cap] NUL-terminated; INVALID if too long or has NUL. */
int arg_str_or_reply(resp_out *o, const resp_arg *a, const char *what, char *dst, size_t cap);
void reply_engine_error(resp_out *o, int rc);
/* 0 when rc is INV_OK; else replies the engine's error and returns -1. */
int engine_or_reply(resp_out *o, int rc);
void reply_level(resp_out *o, const inv_level *l);
/* A level's every field as a map (RESP3) or field/value pairs (RESP2). */
void reply_level_full(resp_out *o, const inv_level_full *f);
/* -CONFLICT for a request id used with other arguments. */
void reply_id_conflict(resp_out *o, const char *id, size_t len);
/* A HELP reply: an array of one simple string per line. */
void reply_help(resp_out *o, const char *const *lines, size_t n);

/* command.c, for EXEC (cmd_multi.c) */
const char *command_name(const cmd_def *c); /* lower case */
/* c's name in upper case into buf[cap] (cut at cap - 1 bytes); returns buf. */
const char *command_upper(const cmd_def *c, char *buf, size_t cap);
/* Runs c as command_exec does once arity is checked, statistics included. */
void command_run(session *s, resp_out *o, const cmd_def *c, const resp_arg *argv, size_t argc);
/* Records one call of c that ran from t0_ns to t1_ns (clock_mono_ns):
 * statistics, ops/s and the slow log. argv NULL (a batch line EXEC
 * applied, which keeps no arguments): statistics only, EXEC itself is
 * slow-logged. */
void command_record(session *s, const cmd_def *c, const resp_arg *argv, size_t argc, uint64_t t0_ns,
                    uint64_t t1_ns, bool failed);
/* A subcommand (CLIENT SETNAME): command_exec finds it by argv[1] and
 * checks its arity from this row, as for commands. A table of them ends
 * with a row whose name is NULL. */
typedef struct {
    const char *name; /* "parent|sub", lower case (Redis's full name) */
    unsigned min_args; /* argc, the parent and subcommand names included */
    unsigned max_args; /* 0: no upper bound */
    bool admin; /* COMMAND INFO flag */
    cmd_fn fn;
    const char *summary;
} cmd_sub;

/* cmd_conn.c */
extern const cmd_sub g_client_subs[];
cmd_handler cmd_select, cmd_time, cmd_reset;
/* Checks a client name (what NULL) or a CLIENT SETINFO value (what: the
 * option as the client spelled it) by Redis's rule, printable ASCII
 * without spaces (CLIENT LIST splits on them), and our limit of
 * SESSION_NAME_MAX bytes. 0, or -1 after an error reply. */
int client_attr_check_or_reply(resp_out *o, const resp_arg *a, const resp_arg *what);
/* Sets (or, for "", clears) the session's name; -1 after an error reply. */
int session_set_name_or_reply(session *s, resp_out *o, const resp_arg *a);
/* Strict integer as Redis reads one (string2ll): "0" or -?[1-9][0-9]*,
 * within int64. 0 or -1. */
int arg_ll_strict(const resp_arg *a, int64_t *v);

/* cmd_inventory.c */
cmd_handler cmd_loc_set, cmd_loc_get, cmd_loc_list, cmd_loc_default;
cmd_handler cmd_item_set, cmd_item_get, cmd_item_mget, cmd_item_bysku, cmd_item_byvariant,
    cmd_item_list, cmd_item_del;
cmd_handler cmd_level_list, cmd_level_del, cmd_product_inventory;
/* LEVEL.SET: its NX form (create-only, no batch line) or the batch line. */
cmd_handler cmd_level_set;

/* cmd_inventory.c: the commands that are batch lines (CMD_BATCH: LEVEL.SET,
 * LEVEL.ADJUST, LEVEL.GET, HOLD.CREATE, HOLD.COMMIT, HOLD.RELEASE,
 * HOLD.EXTEND). Each has one parser, found by its name; alone, each runs as
 * cmd_batch_line. */
cmd_handler cmd_batch_line;
/* Parses v (v[0] names the command; arity checked) into *l with the
 * command's own parser; a HOLD.CREATE's lines go to lines (room for
 * INV_HOLD_LINES_MAX) and its hold_id points into v. On bad arguments it
 * replies what the command would and returns -1. */
int batch_line_parse_or_reply(resp_out *o, const resp_arg *v, size_t n, inv_batch_line *l,
                              inv_hold_line *lines);
/* The reply the command alone gives when its line ended with r. */
void reply_batch_line(session *s, resp_out *o, const inv_batch_line *l, const inv_batch_result *r);
/* A failed line's error as the command alone words it: returns the code
 * ("INSUFFICIENT") and writes the message after it into msg[cap]. */
const char *batch_line_error(session *s, const inv_batch_line *l, const inv_batch_result *r,
                             char *msg, size_t cap);

/* cmd_hold.c: HOLD.GET, HOLD.LIST, and the hold batch lines' parsers (the
 * batch_line_parse_or_reply contract), single calls and error wording. */
cmd_handler cmd_hold_get, cmd_hold_list;
typedef int hold_line_parser(resp_out *o, const resp_arg *v, size_t n, inv_batch_line *l,
                             inv_hold_line *lines);
hold_line_parser parse_hold_create, parse_hold_commit, parse_hold_release, parse_hold_extend;
/* Runs a hold line alone through its one engine call (r->rc, and for a
 * create r->hold_failure). */
void hold_line_apply(inv_engine *e, const inv_batch_line *l, inv_batch_result *r);
/* A failed hold line's error as the command words it (the code; the
 * message into msg[cap]), or NULL: the generic wording. */
const char *hold_line_error(const inv_batch_line *l, const inv_batch_result *r, char *msg,
                            size_t cap);

/* cmd_multi.c */
typedef enum {
    MULTI_REFUSED = 0, /* not allowed inside MULTI */
    MULTI_BATCH = 1, /* a batch line: applied by EXEC's inv_batch */
    MULTI_READ = 2 /* a read: runs after the batch, in order */
} multi_kind;
/* Inside MULTI: checks c's arguments (arity checked) and queues it, with
 * +QUEUED; or replies an error and aborts the transaction. */
void multi_queue(session *s, resp_out *o, const cmd_def *c, multi_kind kind, const resp_arg *argv,
                 size_t argc);
/* A command was refused before it could be queued (unknown, arity): the
 * open transaction is aborted (EXECABORT). No-op outside MULTI. */
void multi_flag_error(session *s);
cmd_handler cmd_multi, cmd_exec, cmd_discard, cmd_watch, cmd_unwatch;
/* command.c: Redis's glob (* ? [a-z] [^x] \x), nocase for CONFIG GET. */
bool glob_match(const char *p, size_t pn, const char *s, size_t sn, bool nocase);

/* cmd_feed.c: closes the session's feed reader and drops a parked read
 * (session_free, RESET). */
void feed_session_free(session *s);

/* cmd_introspect.c */
/* cmd_introspect serves SLOWLOG, LATENCY and MEMORY (by argv[0]). */
cmd_handler cmd_introspect, cmd_scan, cmd_type;
/* INFO's # Webhooks section, appended to t. */
void info_webhooks(resp_out *t);
/* INFO's # HTTP section (the listener on http_port, 0: off), appended to t. */
void info_http(resp_out *t, int http_port);

#endif /* INV_SERVER_CMD_INTERNAL_H */
