/*
 * cmd_conn.c — connection commands as Redis 7 answers them: CLIENT (its
 * subcommands are g_client_subs), SELECT, TIME, RESET and ROLE; and the
 * CLIENT LIST line and filter that server.c applies on each event loop.
 *
 * Invariants:
 *  - No sockets here. Facts about connections come through the session's
 *    conn_ops (server.c); without them (the fuzzer) CLIENT LIST and KILL
 *    see only the calling session.
 *  - A name, lib-name or lib-ver held by a session is printable ASCII
 *    without spaces and at most SESSION_NAME_MAX bytes: CLIENT LIST lines
 *    and the server's log lines split on spaces unambiguously, and a line
 *    always fits CLIENT_LINE_MAX.
 *  - Error texts are Redis 7's (clients match on some of them); where we
 *    add a limit Redis lacks, the text says which.
 */
#include <assert.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "server/cmd_internal.h"

/* A CLIENT LIST line: the numbers and flags, plus the three strings. */
#define CLIENT_LINE_FIXED_MAX 512u
#define CLIENT_LINE_MAX (CLIENT_LINE_FIXED_MAX + 2u * CLIENT_ADDR_MAX + 3u * SESSION_NAME_MAX)
/* CLIENT LIST ID a b ...: the ids are parsed into the loop's scratch. */
#define CLIENT_LIST_IDS_MAX (2u * INV_LIST_COUNT_MAX)

_Static_assert(sizeof(((cmd_scratch *)0)->ids) >= CLIENT_LIST_IDS_MAX * sizeof(uint64_t),
               "CLIENT LIST ID parses into the scratch id array");

#define ECHO_LEN(a) echo_len((a), CMD_ECHO_MAX)

/* ---- names and numbers ---------------------------------------------------- */

int arg_ll_strict(const resp_arg *a, int64_t *v)
{
    assert(a != NULL && v != NULL);
    const char *p = a->ptr;
    size_t n = a->len;
    if (n == 1 && p[0] == '0') {
        *v = 0;
        return 0;
    }
    if (n > 0 && p[0] == '-') {
        p++;
        n--;
    }
    /* no sign but '-', no leading zero, no space; overflow checked below */
    if (n == 0 || p[0] < '1' || p[0] > '9')
        return -1;
    assert(n <= a->len && p >= a->ptr); /* at most the sign was skipped */
    return resp_parse_i64(a->ptr, a->len, v);
}

int client_attr_check_or_reply(resp_out *o, const resp_arg *a, const resp_arg *what)
{
    assert(reply_buf_ok(o) && a != NULL);
    for (size_t i = 0; i < a->len; i++) {
        unsigned char ch = (unsigned char)a->ptr[i];
        if (ch >= '!' && ch <= '~')
            continue;
        if (what == NULL)
            resp_w_error(o, "ERR",
                         "Client names cannot contain spaces, "
                         "newlines or special characters.");
        else
            resp_w_errorf(o,
                          "ERR %.*s cannot contain spaces, newlines or "
                          "special characters.",
                          ECHO_LEN(what), what->ptr);
        return -1;
    }
    if (a->len > SESSION_NAME_MAX) {
        if (what == NULL)
            resp_w_errorf(o, "ERR Client names cannot be longer than %u bytes.", SESSION_NAME_MAX);
        else
            resp_w_errorf(o, "ERR %.*s cannot be longer than %u bytes.", ECHO_LEN(what), what->ptr,
                          SESSION_NAME_MAX);
        return -1;
    }
    assert(a->len <= SESSION_NAME_MAX);
    return 0;
}

/* Stores a copy of a in *dst ("" clears it). 0, or -1 when memory is
 * short (*dst unchanged). */
static int session_str_set(char **dst, const resp_arg *a)
{
    char *copy = NULL;
    assert(dst != NULL && a != NULL && a->len <= SESSION_NAME_MAX); /* checked first */
    if (a->len > 0) {
        copy = inv_malloc(a->len + 1);
        if (copy == NULL)
            return -1;
        memcpy(copy, a->ptr, a->len);
        copy[a->len] = '\0';
    }
    free(*dst);
    *dst = copy;
    assert((*dst == NULL) == (a->len == 0));
    return 0;
}

/* The next name generation (session.name_gen): never 0, never repeated. */
static _Atomic uint64_t g_name_gen = 1;

int session_set_name_or_reply(session *s, resp_out *o, const resp_arg *a)
{
    assert(session_ok(s) && reply_buf_ok(o) && a != NULL);
    if (client_attr_check_or_reply(o, a, NULL) != 0)
        return -1;
    if (session_str_set(&s->name, a) != 0) {
        reply_engine_error(o, INV_ENOMEM);
        return -1;
    }
    s->name_len = a->len;
    /* relaxed: the number need only be unique; the name it stands for is
     * this session's own, read by its own thread */
    s->name_gen = a->len ? atomic_fetch_add_explicit(&g_name_gen, 1, memory_order_relaxed) : 0;
    assert(session_ok(s) && s->name_len == a->len);
    return 0;
}

/* ---- the CLIENT LIST line --------------------------------------------------- */

static size_t client_line_fmt(const session *s, const conn_facts *cf, char *buf, size_t cap)
{
    assert(s != NULL && cf != NULL && buf != NULL && cap >= 1);
    assert(s->last_cmd != NULL && (cf->proto == 2 || cf->proto == 3));
    const char *events = cf->want_write ? "rw" : "r";
    int n = snprintf(buf, cap,
                     "id=%llu addr=%s laddr=%s fd=%d name=%s age=%lld idle=%lld flags=%s "
                     "db=0 sub=0 psub=0 ssub=0 multi=%lld qbuf=%llu qbuf-free=%llu "
                     "argv-mem=0 multi-mem=%llu obl=%llu oll=0 omem=%llu tot-mem=%llu "
                     "events=%s cmd=%s user=default redir=-1 resp=%d lib-name=%s "
                     "lib-ver=%s\n",
                     (unsigned long long)s->id, cf->addr, cf->laddr, cf->fd, s->name ? s->name : "",
                     (long long)cf->age_s, (long long)cf->idle_s,
                     cf->closing     ? "c"
                     : cf->blocked   ? "b"
                     : s->multi_open ? "x"
                                     : "N",
                     /* as Redis: -1 outside MULTI, else the commands queued */
                     s->multi_open ? (long long)s->multi_count : -1LL, (unsigned long long)cf->qbuf,
                     (unsigned long long)cf->qbuf_free, (unsigned long long)s->multi_bytes,
                     (unsigned long long)cf->obl, (unsigned long long)cf->omem,
                     (unsigned long long)cf->tot_mem, events, s->last_cmd, cf->proto,
                     s->lib_name ? s->lib_name : "", s->lib_ver ? s->lib_ver : "");
    if (n < 0)
        return 0;
    /* cannot truncate (see CLIENT_LINE_MAX); defended all the same */
    return (size_t)n < cap ? (size_t)n : cap - 1;
}

void client_info_line(const session *s, const conn_facts *cf, resp_out *t)
{
    char line[CLIENT_LINE_MAX];
    assert(reply_buf_ok(t));
    size_t len = client_line_fmt(s, cf, line, sizeof line);
    assert(len < sizeof line);
    resp_out_raw(t, line, len);
}

bool client_filter_match(const client_filter *f, const session *s, const conn_facts *cf)
{
    assert(f != NULL && s != NULL && cf != NULL);
    assert(f->nids == 0 || f->ids != NULL);
    if (f->match_none)
        return false;
    if (f->skipme && s->id == f->self_id)
        return false;
    if (f->id != 0 && s->id != f->id)
        return false;
    if (f->addr[0] != '\0' && strcmp(cf->addr, f->addr) != 0)
        return false;
    if (f->laddr[0] != '\0' && strcmp(cf->laddr, f->laddr) != 0)
        return false;
    if (f->nids == 0)
        return true;
    for (size_t i = 0; i < f->nids; i++)
        if (f->ids[i] == s->id)
            return true;
    return false;
}

void client_gather_reply(resp_out *o, const client_filter *f, const char *text, size_t len,
                         uint64_t killed)
{
    assert(reply_buf_ok(o) && f != NULL);
    assert(f->kind != CLIENT_GATHER_LIST || killed == 0); /* a LIST kills none */
    if (f->kind == CLIENT_GATHER_LIST)
        resp_w_verbatim(o, text != NULL ? text : "", len);
    else if (!f->kill_old_form)
        resp_w_int(o, (int64_t)killed);
    else if (killed == 0)
        resp_w_error(o, "ERR", "No such client");
    else
        resp_w_ok(o);
}

/* ---- CLIENT ----------------------------------------------------------------- */

static void own_facts(const session *s, int proto, conn_facts *cf)
{
    assert(s != NULL && cf != NULL && (proto == 2 || proto == 3));
    memset(cf, 0, sizeof *cf);
    cf->fd = -1;
    cf->proto = proto;
    if (s->conn_ops != NULL)
        s->conn_ops->facts(s->conn, cf);
    /* the addresses are strings CLIENT LIST prints */
    assert(memchr(cf->addr, '\0', sizeof cf->addr) != NULL &&
           memchr(cf->laddr, '\0', sizeof cf->laddr) != NULL);
}

static void filter_init(client_filter *f, const session *s, client_gather_kind kind)
{
    assert(f != NULL && s != NULL);
    assert(kind == CLIENT_GATHER_LIST || kind == CLIENT_GATHER_KILL);
    memset(f, 0, sizeof *f);
    f->kind = kind;
    f->skipme = kind == CLIENT_GATHER_KILL;
    f->self_id = s->id;
}

/* An address to match: one that no connection can have matches none. */
static void filter_addr(client_filter *f, char *dst, const resp_arg *a)
{
    assert(f != NULL && a != NULL && (dst == f->addr || dst == f->laddr));
    if (a->len == 0 || a->len >= CLIENT_ADDR_MAX || memchr(a->ptr, '\0', a->len) != NULL) {
        f->match_none = true;
        return;
    }
    memcpy(dst, a->ptr, a->len);
    dst[a->len] = '\0';
    assert(a->len < CLIENT_ADDR_MAX);
}

/* Every connection is a normal client: the other types match none. */
static int filter_type_or_reply(resp_out *o, client_filter *f, const resp_arg *a)
{
    assert(reply_buf_ok(o) && f != NULL && a != NULL);
    if (arg_eq(a, "normal"))
        return 0;
    if (arg_eq(a, "master") || arg_eq(a, "replica") || arg_eq(a, "slave") || arg_eq(a, "pubsub")) {
        f->match_none = true;
        return 0;
    }
    resp_w_errorf(o, "ERR Unknown client type '%.*s'", ECHO_LEN(a), a->ptr);
    return -1;
}

/* Runs f over every connection (the server answers later), or, without a
 * connection, over this session alone. */
static void gather(session *s, resp_out *o, const client_filter *f)
{
    assert(session_ok(s) && reply_buf_ok(o) && f != NULL);
    assert(f->nids <= CLIENT_LIST_IDS_MAX);
    if (s->conn_ops != NULL) {
        if (s->conn_ops->gather(s->conn, f) != 0)
            reply_engine_error(o, INV_ENOMEM);
        return;
    }
    conn_facts cf;
    own_facts(s, o->proto, &cf);
    bool hit = client_filter_match(f, s, &cf);
    if (f->kind == CLIENT_GATHER_LIST) {
        char line[CLIENT_LINE_MAX];
        size_t len = hit ? client_line_fmt(s, &cf, line, sizeof line) : 0;
        client_gather_reply(o, f, line, len, 0);
        return;
    }
    client_gather_reply(o, f, NULL, 0, hit ? 1 : 0);
    if (hit)
        s->quit = true; /* killed itself: closes once the reply is sent */
}

static void client_getname(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    assert(handler_call_ok(s, o, v, n, 2, 2));
    assert(s->name == NULL || strlen(s->name) == s->name_len);
    if (s->name != NULL)
        resp_w_bulk_str(o, s->name);
    else
        resp_w_null(o);
}

static void client_setname(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    assert(handler_call_ok(s, o, v, n, 3, 3));
    if (session_set_name_or_reply(s, o, &v[2]) == 0)
        resp_w_ok(o);
}

static void client_id(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    assert(handler_call_ok(s, o, v, n, 2, 2));
    assert(s->id != 0); /* session_init gives ids from 1 */
    resp_w_int(o, (int64_t)s->id);
}

static void client_info(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    char line[CLIENT_LINE_MAX];
    conn_facts cf;
    assert(handler_call_ok(s, o, v, n, 2, 2));
    own_facts(s, o->proto, &cf);
    size_t len = client_line_fmt(s, &cf, line, sizeof line);
    assert(len < sizeof line);
    resp_w_verbatim(o, line, len);
}

/* CLIENT LIST [TYPE type | ID id [id ...]] (one filter, as Redis 7). */
static void client_list(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    client_filter f;
    assert(handler_call_ok(s, o, v, n, 2, 0));
    filter_init(&f, s, CLIENT_GATHER_LIST);
    if (n == 4 && arg_eq(&v[2], "type")) {
        if (filter_type_or_reply(o, &f, &v[3]) != 0)
            return;
    } else if (n > 3 && arg_eq(&v[2], "id")) {
        uint64_t *ids = s->scratch->ids;
        if (n - 3 > CLIENT_LIST_IDS_MAX) {
            resp_w_errorf(o, "ERR too many client IDs (at most %u)", CLIENT_LIST_IDS_MAX);
            return;
        }
        for (size_t i = 3; i < n; i++) {
            int64_t id;
            if (arg_ll_strict(&v[i], &id) != 0) {
                resp_w_error(o, "ERR", "Invalid client ID");
                return;
            }
            ids[i - 3] = id > 0 ? (uint64_t)id : 0; /* 0: no client */
        }
        f.ids = ids;
        f.nids = n - 3;
        assert(f.nids >= 1 && f.nids <= CLIENT_LIST_IDS_MAX);
    } else if (n != 2) {
        resp_w_error(o, "ERR", "syntax error");
        return;
    }
    gather(s, o, &f);
}

/* One option of CLIENT KILL's new form (name at v[0], value at v[1]).
 * 0, or -1 after an error reply. */
static int kill_option_or_reply(resp_out *o, client_filter *f, const resp_arg *v)
{
    assert(reply_buf_ok(o) && f != NULL && v != NULL);
    assert(f->kind == CLIENT_GATHER_KILL);
    if (arg_eq(&v[0], "id")) {
        int64_t id;
        if (arg_ll_strict(&v[1], &id) != 0 || id < 1) {
            resp_w_error(o, "ERR", "client-id should be greater than 0");
            return -1;
        }
        f->id = (uint64_t)id;
    } else if (arg_eq(&v[0], "type")) {
        return filter_type_or_reply(o, f, &v[1]);
    } else if (arg_eq(&v[0], "addr")) {
        filter_addr(f, f->addr, &v[1]);
    } else if (arg_eq(&v[0], "laddr")) {
        filter_addr(f, f->laddr, &v[1]);
    } else if (arg_eq(&v[0], "user")) {
        if (!arg_eq(&v[1], "default")) { /* the one user: matches all */
            resp_w_errorf(o, "ERR No such user '%.*s'", ECHO_LEN(&v[1]), v[1].ptr);
            return -1;
        }
    } else if (arg_eq(&v[0], "skipme") && (arg_eq(&v[1], "yes") || arg_eq(&v[1], "no"))) {
        f->skipme = arg_eq(&v[1], "yes");
    } else {
        resp_w_error(o, "ERR", "syntax error");
        return -1;
    }
    return 0;
}

/* CLIENT KILL addr | CLIENT KILL option value [option value ...] */
static void client_kill(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    client_filter f;
    assert(handler_call_ok(s, o, v, n, 3, 0));
    filter_init(&f, s, CLIENT_GATHER_KILL);
    if (n == 3) {
        /* the old form, which may kill the caller itself */
        f.kill_old_form = true;
        f.skipme = false;
        filter_addr(&f, f.addr, &v[2]);
    }
    for (size_t i = 2; n > 3 && i < n; i += 2) {
        if (i + 1 >= n) { /* an option without its value */
            resp_w_error(o, "ERR", "syntax error");
            return;
        }
        assert(i + 1 < n); /* an option and its value */
        if (kill_option_or_reply(o, &f, &v[i]) != 0)
            return;
    }
    gather(s, o, &f);
}

static void client_setinfo(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    char **dst;
    assert(handler_call_ok(s, o, v, n, 4, 4));
    if (arg_eq(&v[2], "lib-name")) {
        dst = &s->lib_name;
    } else if (arg_eq(&v[2], "lib-ver")) {
        dst = &s->lib_ver;
    } else {
        resp_w_errorf(o, "ERR Unrecognized option '%.*s'", ECHO_LEN(&v[2]), v[2].ptr);
        return;
    }
    if (client_attr_check_or_reply(o, &v[3], &v[2]) != 0)
        return;
    assert(dst == &s->lib_name || dst == &s->lib_ver);
    if (session_str_set(dst, &v[3]) != 0)
        reply_engine_error(o, INV_ENOMEM);
    else
        resp_w_ok(o);
}

/* NO-EVICT and NO-TOUCH: invcore neither evicts nor tracks access. */
static void client_on_off(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    assert(handler_call_ok(s, o, v, n, 3, 3));
    if (arg_eq(&v[2], "on") || arg_eq(&v[2], "off"))
        resp_w_ok(o);
    else
        resp_w_error(o, "ERR", "syntax error");
}

static const char *const g_client_help[] = {
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR <ip:port>",
    "      Kill connections made from the specified address",
    "    * LADDR <ip:port>",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "    * ID <client-id>",
    "      Kill connections by client id.",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "    * ID <client-id> [<client-id> ...]",
    "      Return clients of specified IDs only.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "SETINFO <option> <value>",
    "    Set client meta attr. Options are:",
    "    * LIB-NAME: the client lib name.",
    "    * LIB-VER: the client lib version.",
    "NO-EVICT (ON|OFF)",
    "    Accepted for compatibility: invcore evicts no client.",
    "NO-TOUCH (ON|OFF)",
    "    Accepted for compatibility: invcore keeps no access statistics.",
    "HELP",
    "    Print this help.",
};

static void client_help(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    assert(handler_call_ok(s, o, v, n, 2, 2));
    reply_help(o, g_client_help, sizeof g_client_help / sizeof g_client_help[0]);
}

const cmd_sub g_client_subs[] = {
    /* name            min max admin handler */
    {"client|getname", 2, 2, false, client_getname, "CLIENT GETNAME"},
    {"client|setname", 3, 3, false, client_setname, "CLIENT SETNAME name"},
    {"client|id", 2, 2, false, client_id, "CLIENT ID"},
    {"client|info", 2, 2, false, client_info, "CLIENT INFO"},
    {"client|list", 2, 0, true, client_list,
     "CLIENT LIST [TYPE normal|master|replica|pubsub | ID id [id ...]]"},
    {"client|kill", 3, 0, true, client_kill,
     "CLIENT KILL ip:port | CLIENT KILL [ID id] [ADDR ip:port] [LADDR ip:port] [TYPE type] [USER "
     "default] [SKIPME yes|no]"},
    {"client|setinfo", 4, 4, false, client_setinfo, "CLIENT SETINFO LIB-NAME|LIB-VER value"},
    {"client|no-evict", 3, 3, false, client_on_off, "CLIENT NO-EVICT on|off (accepted, no effect)"},
    {"client|no-touch", 3, 3, false, client_on_off, "CLIENT NO-TOUCH on|off (accepted, no effect)"},
    {"client|help", 2, 2, false, client_help, "CLIENT HELP"},
    {NULL, 0, 0, false, NULL, NULL},
};

/* ---- SELECT, TIME, RESET, ROLE ----------------------------------------------- */

/* One database, number 0 (CONFIG GET databases says 1). */
void cmd_select(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    int64_t db;
    assert(handler_call_ok(s, o, v, n, 2, 2));
    if (arg_ll_strict(&v[1], &db) != 0)
        resp_w_error(o, "ERR", "value is not an integer or out of range");
    else if (db < INT32_MIN || db > INT32_MAX) /* Redis reads an int */
        resp_w_errorf(o, "ERR value is out of range, value must between %d and %d", INT32_MIN,
                      INT32_MAX);
    else if (db != 0)
        resp_w_error(o, "ERR", "DB index is out of range");
    else
        resp_w_ok(o);
}

/* [unix seconds, microseconds], both bulk strings as in Redis. */
void cmd_time(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    char num[24];
    assert(handler_call_ok(s, o, v, n, 1, 1));
    _Static_assert(sizeof num >= 20, "a u64's digits fit");
    uint64_t us = clock_wall_us();
    resp_w_array(o, 2);
    resp_w_bulk(o, num, resp_fmt_u64(num, us / 1000000u));
    resp_w_bulk(o, num, resp_fmt_u64(num, us % 1000000u));
}

void cmd_reset(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    assert(handler_call_ok(s, o, v, n, 1, 1));
    session_reset(s);
    assert(!s->multi_open && !s->quit && s->feed == NULL);
    o->proto = 2;
    resp_w_simple(o, "RESET");
}

/* ---- the commands of this file (rows: cmd_internal.h) ---------------------- */

const cmd_def cmd_conn_rows[] = {
    {"client", 2, 0, 0, 0, CMD_SUBS | CMD_NOTENANT, NULL, "CLIENT subcommand [argument ...]"},
    {"select", 2, 2, 0, 0, CMD_FAST | CMD_READONLY | CMD_NOTENANT, cmd_select,
     "SELECT index (only 0)"},
    {"time", 1, 1, 0, 0, CMD_FAST | CMD_READONLY | CMD_NOTENANT, cmd_time, "TIME"},
    {"reset", 1, 1, 0, 0, CMD_NOAUTH | CMD_FAST | CMD_NOQUEUE, cmd_reset, "RESET"},
};
const size_t cmd_conn_rows_n = sizeof cmd_conn_rows / sizeof cmd_conn_rows[0];
