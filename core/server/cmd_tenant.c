/*
 * cmd_tenant.c — tenants, tokens and scopes on the RESP face: which tenant
 * a session addresses and what it may do (AUTH), the gate every command
 * passes (scope, rate limit, the tenant still there), and the admin
 * commands TENANT.CREATE / DROP / LIST / USE / EXPORT / IMPORT and
 * TOKENS.RELOAD.
 *
 * Authentication (docs/PROTOCOL.md, "Tenants and tokens"):
 *  - neither --requirepass nor --tokens: every session is admin on the
 *    default tenant, as before tenants existed;
 *  - --requirepass: that token is admin on the default tenant;
 *  - --tokens FILE: each token opens its tenant with its scope.
 * A session's engine is only ever its own tenant's (s->e), looked up by
 * name through inv_tenant_get: no id a command names can reach another
 * tenant, because no engine is shared.
 *
 * Invariants: s->e is inv_tenant_engine(s->tenant) or NULL with it; a
 * session holds exactly one reference to s->tenant and one to s->tset
 * while they are not NULL; scope NONE exactly when not authenticated
 * (with authentication configured).
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "clock.h"
#include "server/cmd_internal.h"
#include "server/command.h"
#include "server/tenant_io.h"

#define TENANT_EXPORT_DIR "exports" /* under the data dir */
#define TENANT_PATH_MAX 4096u
#define TENANT_FILE_NAME_MAX 255u /* an export file's name */

static bool password_set(const server_config *cfg)
{
    assert(cfg != NULL);
    /* a length without the bytes is a config_parse mistake */
    assert(cfg->requirepass != NULL || cfg->requirepass_len == 0);
    return cfg->requirepass != NULL && cfg->requirepass_len > 0;
}

bool session_auth_required(const server_ctx *x)
{
    assert(x != NULL && x->cfg != NULL);
    return password_set(x->cfg) || (x->tokens != NULL && x->tokens->path != NULL);
}

/* ---- the session's tenant ------------------------------------------------ */

static void tenant_release(session *s)
{
    assert(s != NULL && (s->e == NULL) == (s->tenant == NULL));
    /* this thread may defer the journal's wake-ups (an event loop): pay
     * them while the engine surely lives */
    if (s->e != NULL)
        inv_defer_journal_end(s->e);
    inv_tenant_put(s->tenant);
    s->tenant = NULL;
    s->e = NULL;
    assert(s->tenant == NULL && s->e == NULL);
}

/* Addresses tenant name from now on; resolved now when it exists, else by
 * the next request that needs it (session_gate_or_reply). */
static void tenant_select(session *s, const char *name, size_t len)
{
    assert(len <= INV_TENANT_NAME_MAX);
    assert(s->ctx != NULL && name != NULL);
    tenant_release(s);
    memcpy(s->tenant_name, name, len);
    s->tenant_name[len] = '\0';
    s->tenant_name_len = len;
    if (inv_tenant_get(s->ctx->tenants, name, len, &s->tenant) == INV_OK)
        s->e = inv_tenant_engine(s->tenant);
    else
        s->tenant = NULL;
    assert((s->e == NULL) == (s->tenant == NULL) && s->tenant_name_len == len);
}

static void token_forget(session *s)
{
    assert(s != NULL && (s->tok == NULL || s->tset != NULL)); /* an entry lives in its set */
    token_set_unref(s->tset);
    s->tset = NULL;
    s->tok = NULL;
}

void session_auth_start(session *s)
{
    assert(s != NULL && s->ctx != NULL);
    tenant_release(s);
    token_forget(s);
    s->tenant_name[0] = '\0';
    s->tenant_name_len = 0;
    s->authed = !session_auth_required(s->ctx);
    s->scope = s->authed ? TOKEN_SCOPE_ADMIN : TOKEN_SCOPE_NONE;
    if (s->authed)
        tenant_select(s, INV_TENANT_DEFAULT, sizeof INV_TENANT_DEFAULT - 1);
    assert(s->authed == (s->scope != TOKEN_SCOPE_NONE) && s->tset == NULL);
}

void session_auth_free(session *s)
{
    assert(s != NULL);
    tenant_release(s);
    token_forget(s);
    assert(s->tenant == NULL && s->tset == NULL && s->tok == NULL);
}

/* ---- AUTH ------------------------------------------------------------------ */

#define WRONGPASS_MSG "invalid username-password pair or user is disabled."

/* What a token opens: the tenant's name and the scope; found false when it
 * is neither --requirepass nor a --tokens token. */
typedef struct {
    bool found;
    const char *tenant;
    size_t tenant_len;
    token_scope scope;
    token_set *set; /* a reference when entry is set */
    token_entry *entry;
    uint8_t digest[TOKEN_DIGEST_BYTES];
} auth_match;

/* Both checks always run, so the time does not tell which one failed. */
static void auth_match_token(const session *s, const resp_arg *tok, auth_match *m)
{
    assert(s != NULL && tok != NULL && m != NULL);
    memset(m, 0, sizeof *m);
    m->set = token_registry_acquire(s->ctx->tokens);
    m->found = config_token_resolve(s->ctx->cfg, m->set, tok->ptr, tok->len, &m->entry, m->digest);
    if (m->found && m->entry == NULL) { /* --requirepass */
        m->tenant = INV_TENANT_DEFAULT;
        m->tenant_len = sizeof INV_TENANT_DEFAULT - 1;
        m->scope = TOKEN_SCOPE_ADMIN;
    } else if (m->entry != NULL) {
        m->tenant = m->entry->tenant;
        m->tenant_len = m->entry->tenant_len;
        m->scope = m->entry->scope;
    }
    if (m->entry == NULL) {
        token_set_unref(m->set);
        m->set = NULL;
    }
    /* found: a tenant and a scope a token file may name (never NONE) */
    assert(!m->found || (m->tenant != NULL && m->scope != TOKEN_SCOPE_NONE &&
                         m->tenant_len <= INV_TENANT_NAME_MAX));
}

bool session_auth_or_reply(session *s, resp_out *o, const resp_arg *user, const resp_arg *tok)
{
    uint64_t wait_ms;
    int64_t now_ms = clock_mono_ms();
    assert(tok != NULL);
    assert(session_ok(s) && reply_buf_ok(o));
    if (!session_auth_required(s->ctx)) {
        /* Redis's nopass default user: any token, the user "default" */
        if (user != NULL && !arg_eq(user, "default")) {
            stats_add_global(&s->ctx->g->auth_failures, 1);
            resp_w_error(o, "WRONGPASS", WRONGPASS_MSG);
            return false;
        }
        session_auth_start(s);
        return true;
    }
    if (!auth_throttle_allow(&s->throttle, now_ms, &wait_ms)) {
        stats_add_global(&s->ctx->g->auth_throttled, 1);
        resp_w_errorf(o, "ERR too many failed AUTH attempts on this connection: retry in %llu ms",
                      (unsigned long long)wait_ms);
        return false;
    }
    auth_match m;
    auth_match_token(s, tok, &m);
    /* AUTH user token: the user is the token's tenant (Redis clients that
     * send a user name send it before the password) */
    bool user_ok = user == NULL || (m.found && user->len == m.tenant_len &&
                                    memcmp(user->ptr, m.tenant, m.tenant_len) == 0);
    if (!m.found || !user_ok) {
        token_set_unref(m.set);
        stats_add_global(&s->ctx->g->auth_failures, 1);
        if (auth_throttle_fail(&s->throttle, now_ms))
            s->quit = true; /* closed once this reply is out */
        resp_w_error(o, "WRONGPASS", WRONGPASS_MSG);
        return false;
    }
    auth_throttle_ok(&s->throttle);
    token_forget(s);
    s->tset = m.set;
    s->tok = m.entry;
    memcpy(s->tok_digest, m.digest, sizeof s->tok_digest);
    s->scope = m.scope;
    s->authed = true;
    tenant_select(s, m.tenant, m.tenant_len);
    assert(s->scope != TOKEN_SCOPE_NONE);
    return true;
}

/* ---- the gate ------------------------------------------------------------ */

/* The scope a command needs: admin for the rows flagged so (and CLIENT
 * LIST / KILL, which show and end other tenants' connections), write for
 * a command that may change the engine, read for the rest. EXEC needs
 * only read: each queued command was checked when it was queued. */
static token_scope scope_needed(const cmd_def *c, const resp_arg *argv, size_t argc)
{
    assert(c != NULL && argv != NULL && argc >= 1);
    if (c->flags & CMD_SCOPE_ADMIN)
        return TOKEN_SCOPE_ADMIN;
    if ((c->flags & CMD_SUBS) && argc >= 2 && arg_eq(&argv[0], "client") &&
        (arg_eq(&argv[1], "list") || arg_eq(&argv[1], "kill")))
        return TOKEN_SCOPE_ADMIN;
    if ((c->flags & CMD_WRITE) && !arg_eq(&argv[0], "exec"))
        return TOKEN_SCOPE_WRITE;
    return TOKEN_SCOPE_READ;
}

/* After a token reload: the session's token again, from the new set
 * (scope and tenant may have changed), or signed out when it is gone. */
static int token_refresh_or_reply(session *s, resp_out *o)
{
    assert(s->authed && s->tok != NULL); /* only a --tokens session refreshes */
    token_set *set = token_registry_acquire(s->ctx->tokens);
    token_entry *te = token_set_find_digest(set, s->tok_digest);
    if (te == NULL) {
        token_set_unref(set);
        session_auth_start(s);
        resp_w_error(o, "NOAUTH", "Authentication required: this connection's token was revoked.");
        return -1;
    }
    token_forget(s);
    s->tset = set;
    s->tok = te;
    /* a transaction queued under the old scope or tenant must not run
     * under the new one: its EXEC answers EXECABORT (the queue is freed,
     * as every abort frees it) */
    if (s->multi_open && (te->scope != s->scope || te->tenant_len != s->tenant_name_len ||
                          memcmp(te->tenant, s->tenant_name, te->tenant_len) != 0))
        multi_flag_error(s);
    assert(te->scope != TOKEN_SCOPE_NONE); /* scope_parse never yields it */
    s->scope = te->scope;
    if (te->tenant_len != s->tenant_name_len ||
        memcmp(te->tenant, s->tenant_name, te->tenant_len) != 0)
        tenant_select(s, te->tenant, te->tenant_len);
    assert(session_ok(s));
    return 0;
}

int session_gate_or_reply(session *s, resp_out *o, const cmd_def *c, const resp_arg *argv,
                          size_t argc)
{
    assert(s->authed && c != NULL);
    assert(session_ok(s) && reply_buf_ok(o));
    if (s->tok != NULL && token_registry_changed(s->ctx->tokens, s->tset) &&
        token_refresh_or_reply(s, o) != 0)
        return -1;
    token_scope need = scope_needed(c, argv, argc);
    if (s->scope < need) {
        stats_add_global(&s->ctx->g->scope_denied, 1);
        resp_w_errorf(o, "NOPERM this connection's scope (%s) does not allow '%s' (it needs %s)",
                      token_scope_name(s->scope), c->name, token_scope_name(need));
        return -1;
    }
    uint64_t retry_ms;
    if (s->tok != NULL && s->tok->bucket_size != 0 &&
        !token_rate_take(s->tok, clock_mono_ms(), &retry_ms)) {
        stats_add_global(&s->ctx->g->rate_limited, 1);
        resp_w_errorf(o, "BUSY rate limit: this token's bucket is full, retry in %llu ms",
                      (unsigned long long)retry_ms);
        return -1;
    }
    if (c->flags & CMD_NOTENANT)
        return 0;
    if (s->tenant != NULL && inv_tenant_dropped(s->tenant))
        tenant_release(s); /* looked up again: a tenant made since then */
    if (s->tenant == NULL) {
        if (s->tenant_name_len == 0 || inv_tenant_get(s->ctx->tenants, s->tenant_name,
                                                      s->tenant_name_len, &s->tenant) != INV_OK) {
            s->tenant = NULL;
            resp_w_errorf(o, "NOTFOUND tenant '%s' does not exist", s->tenant_name);
            return -1;
        }
        s->e = inv_tenant_engine(s->tenant);
    }
    assert(s->e != NULL);
    return 0;
}

/* ---- admin commands -------------------------------------------------------- */

/* The tenant name in a, checked; -1 after an error reply. */
static int name_or_reply(resp_out *o, const resp_arg *a)
{
    assert(reply_buf_ok(o) && a != NULL);
    if (inv_tenant_name_check(a->ptr, a->len) != INV_OK) {
        resp_w_errorf(o,
                      "INVALID tenant name '%.*s': 1..%d bytes of a-z 0-9 . _ -, "
                      "not starting with '.'",
                      echo_len(a, INV_TENANT_NAME_MAX + 1), a->ptr, INV_TENANT_NAME_MAX);
        return -1;
    }
    return 0;
}

static void cmd_tenant_create(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    if (s->ctx->cluster) { /* docs/REPLICATION.md: the default tenant only */
        resp_w_error(o, "ERR", "tenants are not replicated: a cluster serves the default tenant");
        return;
    }
    assert(handler_call_ok(s, o, v, n, 2, 2));
    assert(s->scope == TOKEN_SCOPE_ADMIN); /* CMD_SCOPE_ADMIN: the gate checked */
    if (name_or_reply(o, &v[1]) != 0)
        return;
    int rc = inv_tenant_create(s->ctx->tenants, v[1].ptr, v[1].len);
    if (rc == INV_EEXISTS)
        resp_w_errorf(o, "EXISTS tenant '%.*s' exists", (int)v[1].len, v[1].ptr);
    else if (engine_or_reply(o, rc) == 0)
        resp_w_ok(o);
}

static void cmd_tenant_drop(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    assert(handler_call_ok(s, o, v, n, 2, 3));
    assert(s->scope == TOKEN_SCOPE_ADMIN); /* CMD_SCOPE_ADMIN: the gate checked */
    bool force = n == 3;
    if (force && !arg_eq(&v[2], "force")) {
        resp_w_error(o, "ERR", "syntax error: TENANT.DROP name [FORCE]");
        return;
    }
    if (name_or_reply(o, &v[1]) != 0)
        return;
    int rc = inv_tenant_drop(s->ctx->tenants, v[1].ptr, v[1].len, force);
    if (rc == INV_ENOTFOUND)
        resp_w_errorf(o, "NOTFOUND tenant '%.*s' does not exist", (int)v[1].len, v[1].ptr);
    else if (rc == INV_EBUSY)
        resp_w_errorf(o, "BUSY tenant '%.*s' has live holds: TENANT.DROP %.*s FORCE drops them too",
                      (int)v[1].len, v[1].ptr, (int)v[1].len, v[1].ptr);
    else if (rc == INV_EINVALID)
        resp_w_error(o, "INVALID", "the default tenant cannot be dropped");
    else if (engine_or_reply(o, rc) == 0)
        resp_w_ok(o);
}

typedef struct {
    resp_out *names; /* the names, written as they come */
    size_t count;
} name_list;

static int list_one(void *arg, inv_tenant *t)
{
    name_list *l = arg;
    size_t len;
    assert(l != NULL && reply_buf_ok(l->names) && t != NULL);
    const char *name = inv_tenant_name(t, &len);
    assert(name != NULL && len >= 1 && len <= INV_TENANT_NAME_MAX);
    resp_w_bulk(l->names, name, len);
    l->count++;
    return 0;
}

/* TENANT.LIST: every tenant's name, in name order. The names go to a side
 * buffer first: the array's length is known only once they are listed
 * (tenants may come and go meanwhile). */
static void cmd_tenant_list(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    assert(handler_call_ok(s, o, v, n, 1, 1));
    assert(s->scope == TOKEN_SCOPE_ADMIN); /* CMD_SCOPE_ADMIN: the gate checked */
    resp_out names;
    resp_out_init(&names, o->proto);
    name_list l = {&names, 0};
    inv_tenants_each(s->ctx->tenants, list_one, &l);
    if (names.failed) {
        resp_w_error(o, "NOMEM", "out of memory");
    } else {
        resp_w_array(o, l.count);
        resp_out_raw(o, names.buf, names.len);
    }
    resp_out_free(&names);
}

static void cmd_tenant_use(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    assert(handler_call_ok(s, o, v, n, 2, 2));
    if (name_or_reply(o, &v[1]) != 0)
        return;
    inv_tenant *t;
    if (inv_tenant_get(s->ctx->tenants, v[1].ptr, v[1].len, &t) != INV_OK) {
        resp_w_errorf(o, "NOTFOUND tenant '%.*s' does not exist", (int)v[1].len, v[1].ptr);
        return;
    }
    inv_tenant_put(t);
    tenant_select(s, v[1].ptr, v[1].len);
    assert(s->tenant_name_len == v[1].len);
    resp_w_ok(o);
}

/* data_dir/exports/NAME into path[TENANT_PATH_MAX]; -1 after an error reply
 * (memory mode, or a path too long). */
static int export_path_or_reply(session *s, resp_out *o, const char *file, size_t len, char *path)
{
    assert(session_ok(s) && reply_buf_ok(o));
    assert(path != NULL && (file != NULL || len == 0));
    const char *dir = s->ctx->cfg->data_dir;
    if (dir == NULL) {
        resp_w_error(o, "INVALID", "no data dir: the server runs in memory");
        return -1;
    }
    int k = snprintf(path, TENANT_PATH_MAX, "%s/%s/%.*s", dir, TENANT_EXPORT_DIR, (int)len, file);
    if (k < 0 || (size_t)k >= TENANT_PATH_MAX) {
        resp_w_error(o, "INVALID", "the export path is too long");
        return -1;
    }
    return 0;
}

/* An export file's name: [A-Za-z0-9._-], 1..TENANT_FILE_NAME_MAX bytes, not
 * starting with '.': no directory part, so TENANT.IMPORT reads only the
 * exports directory. */
static bool file_name_ok(const resp_arg *a)
{
    assert(a != NULL);
    if (a->len == 0 || a->len > TENANT_FILE_NAME_MAX || a->ptr[0] == '.')
        return false;
    for (size_t i = 0; i < a->len; i++) {
        char c = a->ptr[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static void reply_counts(resp_out *o, const char *file, const tenant_io_counts *c)
{
    assert(reply_buf_ok(o) && c != NULL);
    resp_w_map(o, file ? 5 : 4);
    if (file) {
        resp_w_bulk_str(o, "file");
        resp_w_bulk_str(o, file);
    }
    resp_w_bulk_str(o, "locations");
    resp_w_int(o, (int64_t)c->locations);
    resp_w_bulk_str(o, "items");
    resp_w_int(o, (int64_t)c->items);
    resp_w_bulk_str(o, "levels");
    resp_w_int(o, (int64_t)c->levels);
    resp_w_bulk_str(o, "lines");
    resp_w_int(o, (int64_t)c->lines);
}

/* TENANT.EXPORT name: the tenant as JSON lines in data_dir/exports/
 * NAME-<unix ms>.jsonl (tenant_io.h); replies the file's name and counts.
 * It runs on the event loop: an export of a large tenant delays this
 * loop's other clients for its duration (docs/TENANTS.md). */
static void cmd_tenant_export(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    char file[INV_TENANT_NAME_MAX + 32], path[TENANT_PATH_MAX], err[512];
    assert(handler_call_ok(s, o, v, n, 2, 2));
    if (name_or_reply(o, &v[1]) != 0)
        return;
    /* the name checked: at most INV_TENANT_NAME_MAX bytes, so file is not cut */
    assert(v[1].len <= INV_TENANT_NAME_MAX);
    snprintf(file, sizeof file, "%.*s-%lld.jsonl", (int)v[1].len, v[1].ptr,
             (long long)clock_wall_ms());
    if (export_path_or_reply(s, o, "", 0, path) != 0)
        return;
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        resp_w_errorf(o, "IO cannot create %s: %s", path, strerror(errno));
        return;
    }
    if (export_path_or_reply(s, o, file, strlen(file), path) != 0)
        return;
    inv_tenant *t;
    if (inv_tenant_get(s->ctx->tenants, v[1].ptr, v[1].len, &t) != INV_OK) {
        resp_w_errorf(o, "NOTFOUND tenant '%.*s' does not exist", (int)v[1].len, v[1].ptr);
        return;
    }
    tenant_io_counts c;
    size_t len;
    int rc =
        tenant_export(inv_tenant_engine(t), inv_tenant_name(t, &len), path, &c, err, sizeof err);
    inv_tenant_put(t);
    if (rc != INV_OK)
        resp_w_errorf(o, "%s %s", inv_errcode(rc), err);
    else
        reply_counts(o, file, &c);
}

/* TENANT.IMPORT name file: creates tenant name from data_dir/exports/file;
 * all or nothing: when the import fails the new tenant is dropped again. */
static void cmd_tenant_import(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    char path[TENANT_PATH_MAX], err[512];
    assert(handler_call_ok(s, o, v, n, 3, 3));
    if (name_or_reply(o, &v[1]) != 0)
        return;
    if (!file_name_ok(&v[2])) {
        resp_w_errorf(o, "INVALID export file name '%.*s': a name in the exports directory",
                      echo_len(&v[2], CMD_ECHO_MAX), v[2].ptr);
        return;
    }
    if (export_path_or_reply(s, o, v[2].ptr, v[2].len, path) != 0)
        return;
    assert(v[2].len >= 1 && v[2].len <= TENANT_FILE_NAME_MAX); /* file_name_ok */
    int rc = inv_tenant_create(s->ctx->tenants, v[1].ptr, v[1].len);
    if (rc == INV_EEXISTS) {
        resp_w_errorf(o, "EXISTS tenant '%.*s' exists: import makes a new tenant", (int)v[1].len,
                      v[1].ptr);
        return;
    }
    if (engine_or_reply(o, rc) != 0)
        return;
    inv_tenant *t;
    rc = inv_tenant_get(s->ctx->tenants, v[1].ptr, v[1].len, &t);
    tenant_io_counts c;
    snprintf(err, sizeof err, "the new tenant was dropped before the import");
    if (rc == INV_OK) {
        rc = tenant_import(inv_tenant_engine(t), path, &c, err, sizeof err);
        inv_tenant_put(t);
    }
    if (rc == INV_OK) {
        reply_counts(o, NULL, &c);
        return;
    }
    (void)inv_tenant_drop(s->ctx->tenants, v[1].ptr, v[1].len, true);
    resp_w_errorf(o, "%s import refused, nothing kept: %s", inv_errcode(rc), err);
}

/* TOKENS.RELOAD: reads --tokens again (SIGHUP does the same); a bad file
 * changes nothing. Sessions pick the change up on their next command. */
static void cmd_tokens_reload(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    char err[512];
    assert(handler_call_ok(s, o, v, n, 1, 1));
    assert(s->ctx->tokens != NULL); /* the server always passes a registry */
    if (s->ctx->tokens->path == NULL) {
        resp_w_error(o, "INVALID", "no --tokens file: nothing to reload");
        return;
    }
    int rc = token_registry_reload(s->ctx->tokens, err, sizeof err);
    if (rc != INV_OK) {
        resp_w_errorf(o, "%s %s", inv_errcode(rc), err);
        return;
    }
    token_set *set = token_registry_acquire(s->ctx->tokens);
    resp_w_int(o, (int64_t)token_set_count(set));
    token_set_unref(set);
}

const cmd_def cmd_tenant_rows[] = {
    {"tenant.create", 2, 2, 0, 0, CMD_SCOPE_ADMIN | CMD_NOTENANT, cmd_tenant_create,
     "TENANT.CREATE name"},
    {"tenant.drop", 2, 3, 0, 0, CMD_SCOPE_ADMIN | CMD_NOTENANT, cmd_tenant_drop,
     "TENANT.DROP name [FORCE]"},
    {"tenant.list", 1, 1, 0, 0, CMD_SCOPE_ADMIN | CMD_NOTENANT | CMD_READONLY, cmd_tenant_list,
     "TENANT.LIST"},
    {"tenant.use", 2, 2, 0, 0, CMD_SCOPE_ADMIN | CMD_NOTENANT | CMD_FAST, cmd_tenant_use,
     "TENANT.USE name"},
    {"tenant.export", 2, 2, 0, 0, CMD_SCOPE_ADMIN | CMD_NOTENANT, cmd_tenant_export,
     "TENANT.EXPORT name"},
    {"tenant.import", 3, 3, 0, 0, CMD_SCOPE_ADMIN | CMD_NOTENANT, cmd_tenant_import,
     "TENANT.IMPORT name file"},
    {"tokens.reload", 1, 1, 0, 0, CMD_SCOPE_ADMIN | CMD_NOTENANT, cmd_tokens_reload,
     "TOKENS.RELOAD"},
};
const size_t cmd_tenant_rows_n = sizeof cmd_tenant_rows / sizeof cmd_tenant_rows[0];
