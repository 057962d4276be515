/*
 * test_server_tenants.c — integration: tenants, tokens and scopes against
 * a real build/invcored (test_server_harness.h), over RESP (hiredis) and
 * HTTP (libcurl): TENANT.CREATE / DROP / LIST / USE / EXPORT / IMPORT,
 * AUTH with a --tokens token selecting its tenant and scope, a scope
 * denial on every command class and route kind, token reload (command and
 * SIGHUP), a drop with live holds, tenants across SIGKILL and restart,
 * typed errors for bad names and tokens, the AUTH throttle, the rate
 * limit (RESP -BUSY, HTTP 429 with Retry-After), INFO tenants and
 * /metrics, and isolation under concurrency: two tenants, the same ids,
 * 32 clients each, no cross-talk.
 */
#include <pthread.h>

#include "server/http_route.h"
#include "server/tokens.h"
#include "test_http_client.h"
#include "test_server_harness.h"

#define AUTH_TRIES_MAX 20000 /* AUTH tries before the failure count must be reached */
/* The tokens every test's server starts with (tokens_write). Tenant "c"
 * is not created by the tests that use its token until they say so. */
#define TOK_ADMIN "admin-token-0001"
#define TOK_A_READ "a-read-token-001"
#define TOK_A_WRITE "a-write-token-01"
#define TOK_A_ADMIN "a-admin-token-01"
#define TOK_B_WRITE "b-write-token-01"
#define TOK_C_WRITE "c-write-token-01"
#define TOK_LIMITED "a-limited-tok-01" /* bucket 2, leaking 1 a second */
#define PASSWORD "s3cret-password"

static const char TOKENS[] =
    "# tokens of the tenants suite\n" TOK_ADMIN " default admin\n" TOK_A_READ
    " a read\n" TOK_A_WRITE " a write # a comment after the fields\n" TOK_A_ADMIN
    " a admin\n" TOK_B_WRITE " b write\n" TOK_C_WRITE " c write\n" TOK_LIMITED " a write 2/1\n";

static char tokens_dir[128], tokens_path[192];

static void tokens_write(const char *text)
{
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%s.tmp", tokens_path);
    FILE *f = fopen(tmp, "w");
    cr_assert_not_null(f);
    cr_assert_geq(fputs(text, f), 0);
    cr_assert_eq(fclose(f), 0);
    cr_assert_eq(rename(tmp, tokens_path), 0); /* the server never reads half a file */
}

static void setup(void)
{
    tu_tmpdir(tokens_dir, sizeof tokens_dir, "tokens");
    snprintf(tokens_path, sizeof tokens_path, "%s/tokens", tokens_dir);
    tokens_write(TOKENS);
    const char *const extra[] = {"--tokens", tokens_path, "--requirepass", PASSWORD, NULL};
    srv_suite_start(extra);
    expect_status(C, "OK", "AUTH %s", PASSWORD);
    expect_status(C, "OK", "TENANT.CREATE a");
    expect_status(C, "OK", "TENANT.CREATE b");
}

static void teardown(void)
{
    srv_suite_stop();
    tu_remove_tree(tokens_dir);
}

TestSuite(server_tenants, .init = setup, .fini = teardown, .timeout = 120);

/* A new connection authenticated with token (or unauthenticated: NULL). */
static redisContext *as(const char *token)
{
    redisContext *c = srv_connect(&S);
    if (token != NULL)
        expect_status(c, "OK", "AUTH %s", token);
    return c;
}

/* Location 1, item 7 and its level there with qty, in c's tenant. */
static void seed_level(redisContext *c, long long qty)
{
    expect_status(c, "OK", "LOC.SET 1 name Main");
    expect_status(c, "OK", "ITEM.SET 7 sku SHIRT");
    expect_level(c, qty, 0, "LEVEL.SET 7 1 %lld", qty);
}

/* The names TENANT.LIST answers, joined by ',' into out. */
static void tenant_list(redisContext *c, char *out, size_t cap)
{
    redisReply *r = cmd(c, "TENANT.LIST");
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    out[0] = '\0';
    for (size_t i = 0; i < r->elements; i++) {
        strncat(out, r->element[i]->str, cap - strlen(out) - 2);
        if (i + 1 < r->elements)
            strcat(out, ",");
    }
    freeReplyObject(r);
}

Test(server_tenants, tenants_are_created_listed_and_dropped_with_typed_errors)
{
    char names[256];
    tenant_list(C, names, sizeof names);
    cr_assert_str_eq(names, "a,b,default");
    expect_error(C, "EXISTS", "TENANT.CREATE a");
    expect_error(C, "EXISTS", "TENANT.CREATE default");
    const char *const bad[] = {
        "A",   "a b",         "",
        ".",   "..",          ".hidden",
        "a/b", "sh\xc3\xb6p", "0123456789012345678901234567890123456789012345678901234567890123x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_error(C, "INVALID", "TENANT.CREATE %b", bad[i], strlen(bad[i]));
    expect_status(C, "OK",
                  "TENANT.CREATE 0123456789012345678901234567890123456789012345678901234567890123");
    expect_status(C, "OK", "TENANT.CREATE shop-1.eu_west");
    expect_error(C, "INVALID", "TENANT.DROP default");
    expect_error(C, "NOTFOUND", "TENANT.DROP nosuch");
    expect_error(C, "ERR", "TENANT.DROP a NOW");
    expect_status(C, "OK", "TENANT.DROP shop-1.eu_west");
    expect_status(C, "OK",
                  "TENANT.DROP 0123456789012345678901234567890123456789012345678901234567890123");
    tenant_list(C, names, sizeof names);
    cr_assert_str_eq(names, "a,b,default");
    expect_error(C, "NOTFOUND", "TENANT.USE nosuch");
}

Test(server_tenants, the_same_ids_in_two_tenants_are_separate_stock)
{
    redisContext *a = as(TOK_A_WRITE), *b = as(TOK_B_WRITE);
    const char *seed[] = {"LOC.SET 1 name Main", "ITEM.SET 7 sku SHIRT"};
    for (size_t i = 0; i < 2; i++) {
        expect_status(a, "OK", seed[i]);
        expect_status(b, "OK", seed[i]);
    }
    expect_level(a, 10, 0, "LEVEL.SET 7 1 10");
    expect_level(b, 3, 0, "LEVEL.SET 7 1 3");
    expect_level(a, 9, 0, "LEVEL.ADJUST 7 1 -1");
    expect_level(b, 3, 0, "LEVEL.GET 7 1");
    /* the default tenant has none of it, whatever ids it names */
    expect_error(C, "NOTFOUND", "LEVEL.GET 7 1");
    expect_error(C, "NOTFOUND", "ITEM.GET 7");
    /* a hold in a reserves a's units only; its id is free in b */
    expect_status(a, "OK", "HOLD.CREATE h1 60000 7 1 4");
    expect_level(a, 5, 4, "LEVEL.GET 7 1");
    expect_level(b, 3, 0, "LEVEL.GET 7 1");
    expect_error(b, "NOTFOUND", "HOLD.GET h1");
    expect_status(b, "OK", "HOLD.CREATE h1 60000 7 1 1");
    expect_level(b, 2, 1, "LEVEL.GET 7 1");
    /* an admin reaches a tenant by TENANT.USE only */
    expect_status(C, "OK", "TENANT.USE a");
    expect_level(C, 5, 4, "LEVEL.GET 7 1");
    expect_status(C, "OK", "TENANT.USE default");
    redisFree(a);
    redisFree(b);
}

/* Each command class against a scope: ok is the reply type wanted when
 * allowed ('+', ':', '*', '$' or '-' for an engine error that shows the
 * command ran); a denied one answers -NOPERM. */
typedef struct {
    const char *cmd;
    token_scope need;
} scope_case;

static const scope_case scope_cases[] = {
    {"PING", TOKEN_SCOPE_READ},
    {"LEVEL.GET 7 1", TOKEN_SCOPE_READ},
    {"LEVEL.LIST ITEM 7", TOKEN_SCOPE_READ},
    {"ITEM.GET 7", TOKEN_SCOPE_READ},
    {"LOC.LIST", TOKEN_SCOPE_READ},
    {"HOLD.GET nosuch", TOKEN_SCOPE_READ},
    {"FEED.READ FROM 0 COUNT 1", TOKEN_SCOPE_READ},
    {"INFO tenants", TOKEN_SCOPE_READ},
    {"DBSIZE", TOKEN_SCOPE_READ},
    {"LEVEL.SET 7 1 5", TOKEN_SCOPE_WRITE},
    {"LEVEL.ADJUST 7 1 -1", TOKEN_SCOPE_WRITE},
    {"LEVEL.MOVE 7 1 1 FROM available TO damaged", TOKEN_SCOPE_WRITE},
    {"ITEM.SET 8 sku X8", TOKEN_SCOPE_WRITE},
    {"LOC.SET 2 name Two", TOKEN_SCOPE_WRITE},
    {"HOLD.CREATE hx 60000 7 1 1", TOKEN_SCOPE_WRITE},
    {"HOLD.RELEASE hx", TOKEN_SCOPE_WRITE},
    {"LEVEL.DEL 7 2", TOKEN_SCOPE_WRITE},
    {"CONFIG GET maxclients", TOKEN_SCOPE_ADMIN},
    {"SNAPSHOT", TOKEN_SCOPE_ADMIN},
    {"SLOWLOG LEN", TOKEN_SCOPE_ADMIN},
    {"CLIENT LIST", TOKEN_SCOPE_ADMIN},
    {"TENANT.LIST", TOKEN_SCOPE_ADMIN},
    {"TENANT.CREATE zz", TOKEN_SCOPE_ADMIN},
    {"TOKENS.RELOAD", TOKEN_SCOPE_ADMIN},
};

static void check_scope(const char *token, token_scope have)
{
    redisContext *c = as(token);
    for (size_t i = 0; i < sizeof scope_cases / sizeof scope_cases[0]; i++) {
        redisReply *r = cmd(c, scope_cases[i].cmd);
        bool denied = r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOPERM", 6) == 0;
        cr_assert_eq(denied, have < scope_cases[i].need, "%s with scope %d: %d '%s'",
                     scope_cases[i].cmd, have, r->type, r->str ? r->str : "");
        freeReplyObject(r);
    }
    /* a transaction: a write queued by a reader aborts it whole */
    expect_status(c, "OK", "MULTI");
    redisReply *r = cmd(c, "LEVEL.ADJUST 7 1 -1");
    bool queued = r->type == REDIS_REPLY_STATUS;
    freeReplyObject(r);
    cr_assert_eq(queued, have >= TOKEN_SCOPE_WRITE);
    r = cmd(c, "EXEC");
    if (have >= TOKEN_SCOPE_WRITE)
        cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    else
        cr_assert(r->type == REDIS_REPLY_ERROR && strncmp(r->str, "EXECABORT", 9) == 0);
    freeReplyObject(r);
    redisFree(c);
}

Test(server_tenants, each_scope_is_denied_what_it_does_not_allow_on_every_command_class)
{
    redisContext *w = as(TOK_A_WRITE);
    seed_level(w, 100);
    redisFree(w);
    check_scope(TOK_A_READ, TOKEN_SCOPE_READ);
    check_scope(TOK_A_WRITE, TOKEN_SCOPE_WRITE);
    check_scope(TOK_A_ADMIN, TOKEN_SCOPE_ADMIN);
    /* a denial changed nothing: the reader's adjust never ran */
    cr_assert_geq(expect_int(C, "DBSIZE"), 0);
    redisReply *r = cmd(C, "INFO stats");
    cr_assert_not_null(strstr(r->str, "scope_denied:"));
    freeReplyObject(r);
}

Test(server_tenants, a_token_for_a_tenant_not_yet_created_gets_notfound_until_it_is)
{
    redisContext *c = as(TOK_C_WRITE);
    expect_status(c, "PONG", "PING");
    expect_error(c, "NOTFOUND tenant 'c'", "LEVEL.GET 1 1");
    expect_status(C, "OK", "TENANT.CREATE c");
    expect_status(c, "OK", "LOC.SET 1 name Main");
    expect_status(C, "OK", "TENANT.DROP c");
    expect_error(c, "NOTFOUND tenant 'c'", "LOC.GET 1");
    expect_status(C, "OK", "TENANT.CREATE c"); /* a new, empty c */
    expect_error(c, "NOTFOUND", "LOC.GET 1");
    redisFree(c);
}

Test(server_tenants, bad_tokens_are_refused_counted_and_slowed)
{
    redisContext *c = srv_connect(&S);
    expect_error(c, "NOAUTH", "LEVEL.GET 1 1");
    expect_error(c, "WRONGPASS", "AUTH not-a-token-at-all");
    /* within the penalty the next AUTH is refused without a check, even
     * a right one: ask until it is let through (a bounded wait) */
    redisReply *r = cmd(c, "AUTH %s", TOK_A_READ);
    bool throttled = r->type == REDIS_REPLY_ERROR && strstr(r->str, "too many failed AUTH");
    freeReplyObject(r);
    long long deadline = srv_now_ms() + 10000;
    while (throttled && srv_now_ms() < deadline) {
        srv_sleep_ms(5);
        r = cmd(c, "AUTH %s", TOK_A_READ);
        throttled = r->type == REDIS_REPLY_ERROR && strstr(r->str, "too many failed AUTH");
        cr_assert(throttled || r->type == REDIS_REPLY_STATUS, "%s", r->str);
        freeReplyObject(r);
    }
    cr_assert(!throttled);
    /* a user name must name the token's tenant */
    expect_error(c, "WRONGPASS", "AUTH b %s", TOK_A_READ);
    redisFree(c);
    /* AUTH_FAILURES_CLOSE failures close the connection */
    c = srv_connect(&S);
    unsigned failures = 0;
    /* bounded by tries, not time: under TSan the penalties outlast 1000
     * throttled tries of 5 ms (a CI run counted 9 of the 10 failures) */
    for (int i = 0; i < AUTH_TRIES_MAX && failures < AUTH_FAILURES_CLOSE; i++) {
        r = redisCommand(c, "AUTH wrong-token-%d", i);
        if (r == NULL)
            break;
        if (strncmp(r->str, "WRONGPASS", 9) == 0)
            failures++;
        else
            srv_sleep_ms(5); /* throttled: wait out the penalty */
        freeReplyObject(r);
    }
    cr_assert_eq(failures, AUTH_FAILURES_CLOSE);
    r = redisCommand(c, "PING");
    cr_assert(r == NULL || r->type == REDIS_REPLY_ERROR, "still open after %u failures", failures);
    if (r)
        freeReplyObject(r);
    redisFree(c);
    r = cmd(C, "INFO stats");
    cr_assert_not_null(strstr(r->str, "auth_throttled:"));
    freeReplyObject(r);
    r = cmd(C, "INFO clients");
    const char *f = strstr(r->str, "auth_failures:");
    cr_assert_not_null(f);
    cr_assert_geq(atoll(f + strlen("auth_failures:")), (long long)AUTH_FAILURES_CLOSE + 2);
    freeReplyObject(r);
}

Test(server_tenants, tokens_reload_by_command_and_by_sighup)
{
    redisContext *a = as(TOK_A_WRITE);
    expect_status(a, "PONG", "PING");
    /* a's token now reads only, b's is gone, a new one writes b */
    tokens_write(TOK_ADMIN " default admin\n" TOK_A_WRITE " a read\nnew-b-token-0001 b write\n");
    cr_assert_eq(expect_int(C, "TOKENS.RELOAD"), 3);
    expect_error(a, "NOPERM", "LEVEL.SET 7 1 5");
    redisContext *b = srv_connect(&S);
    expect_error(b, "WRONGPASS", "AUTH %s", TOK_B_WRITE);
    redisFree(b);
    b = as("new-b-token-0001");
    expect_status(b, "OK", "LOC.SET 1 name B");
    /* a bad file changes nothing */
    tokens_write("short a read\n");
    expect_error(C, "INVALID", "TOKENS.RELOAD");
    expect_status(b, "OK", "LOC.SET 1 name B2");
    /* SIGHUP: the token b used is revoked, the connection signed out */
    tokens_write(TOK_ADMIN " default admin\n");
    cr_assert_eq(kill(S.pid, SIGHUP), 0);
    cr_assert(srv_log_wait(&S, "tokens reloaded", 10000));
    expect_error(b, "NOAUTH", "LOC.GET 1");
    expect_error(b, "NOAUTH", "LOC.GET 1");
    redisFree(a);
    redisFree(b);
}

/* A reload that changes a session's scope aborts its open transaction as
 * any refused command does: the queue is dropped at once (CLIENT LIST shows
 * multi=0), later commands answer QUEUED, EXEC answers EXECABORT. */
Test(server_tenants, a_reload_that_changes_the_scope_drops_an_open_transactions_queue)
{
    redisContext *a = as(TOK_A_WRITE);
    seed_level(a, 10);
    long long id = expect_int(a, "CLIENT ID");
    expect_status(a, "OK", "MULTI");
    expect_status(a, "QUEUED", "LEVEL.GET 7 1");
    tokens_write(TOK_ADMIN " default admin\n" TOK_A_WRITE " a read\n");
    cr_assert_eq(expect_int(C, "TOKENS.RELOAD"), 2);
    expect_status(a, "QUEUED", "LEVEL.GET 7 1"); /* the session sees the reload here */
    redisReply *r = cmd(C, "CLIENT LIST ID %lld", id);
    cr_assert_eq(r->type, REDIS_REPLY_STRING);
    cr_assert_not_null(strstr(r->str, " multi=0 "), "queue kept after the abort: %s", r->str);
    freeReplyObject(r);
    expect_error(a, "EXECABORT", "EXEC");
    expect_status(a, "PONG", "PING");
    redisFree(a);
}

Test(server_tenants, a_drop_with_live_holds_needs_force_and_ends_the_tenants_sessions)
{
    redisContext *a = as(TOK_A_WRITE);
    seed_level(a, 10);
    expect_status(a, "OK", "HOLD.CREATE cart-1 600000 7 1 2");
    expect_error(C, "BUSY", "TENANT.DROP a");
    expect_level(a, 8, 2, "LEVEL.GET 7 1"); /* nothing changed */
    redisContext *tx = as(TOK_A_WRITE); /* a transaction open across the drop */
    expect_status(tx, "OK", "MULTI");
    expect_status(tx, "QUEUED", "LEVEL.ADJUST 7 1 -1");
    expect_status(C, "OK", "TENANT.DROP a FORCE");
    expect_error(tx, "NOTFOUND tenant 'a'", "EXEC");
    expect_status(tx, "PONG", "PING"); /* the refused EXEC ended the transaction */
    redisFree(tx);
    expect_error(a, "NOTFOUND tenant 'a'", "LEVEL.GET 7 1");
    expect_error(a, "NOTFOUND tenant 'a'", "HOLD.COMMIT cart-1");
    expect_status(C, "OK", "TENANT.CREATE a");
    expect_error(a, "NOTFOUND", "LEVEL.GET 7 1");
    expect_error(a, "NOTFOUND", "HOLD.GET cart-1");
    redisFree(a);
}

Test(server_tenants, tenants_and_their_data_survive_sigkill_and_restart)
{
    redisContext *a = as(TOK_A_WRITE);
    seed_level(a, 10);
    expect_status(C, "OK", "TENANT.CREATE gone");
    expect_status(C, "OK", "TENANT.DROP gone");
    expect_status(C, "OK", "TENANT.CREATE kept");
    redisFree(a);
    if (!S.durable)
        return; /* INVCORE_SERVER_TEST_MEMORY: nothing to recover */
    kill(S.pid, SIGKILL);
    waitpid(S.pid, NULL, 0);
    S.pid = 0;
    redisFree(C);
    const char *const extra[] = {"--fsync",       "always", "--tokens", tokens_path,
                                 "--requirepass", PASSWORD, NULL};
    cr_assert_eq(srv_spawn(&S, 1, extra), 0);
    C = as(PASSWORD);
    char names[256];
    tenant_list(C, names, sizeof names);
    cr_assert_str_eq(names, "a,b,default,kept");
    a = as(TOK_A_READ);
    expect_level(a, 10, 0, "LEVEL.GET 7 1");
    redisFree(a);
}

Test(server_tenants, a_rate_limited_token_gets_busy_when_its_bucket_is_full)
{
    redisContext *c = as(TOK_LIMITED);
    /* bucket 2, leaking 1 a second: a pipeline of many requests sees BUSY
     * long before a second has passed (the bound: 1000 requests) */
    enum { N = 1000 };
    for (int i = 0; i < N; i++)
        redisAppendCommand(c, "PING");
    int busy = 0, ok = 0;
    for (int i = 0; i < N; i++) {
        redisReply *r;
        cr_assert_eq(redisGetReply(c, (void **)&r), REDIS_OK);
        if (r->type == REDIS_REPLY_ERROR) {
            cr_assert(strncmp(r->str, "BUSY", 4) == 0 && strstr(r->str, "retry in"), "%s", r->str);
            busy++;
        } else {
            ok++;
        }
        freeReplyObject(r);
    }
    cr_assert_gt(busy, 0);
    cr_assert_geq(ok, 2);
    redisFree(c);
}

Test(server_tenants, info_tenants_lists_each_tenant_for_an_admin_and_only_its_own_otherwise)
{
    redisContext *a = as(TOK_A_WRITE);
    expect_status(a, "OK", "LOC.SET 1 name Main");
    redisReply *r = cmd(C, "INFO tenants");
    cr_assert_not_null(strstr(r->str, "tenants:3\r\n"), "%s", r->str);
    cr_assert_not_null(strstr(r->str, "tenant_a:levels=0,items=0,locations=1,"), "%s", r->str);
    cr_assert_not_null(strstr(r->str, "tenant_b:"), "%s", r->str);
    cr_assert_not_null(strstr(r->str, "tenant_default:"), "%s", r->str);
    freeReplyObject(r);
    r = cmd(a, "INFO tenants");
    cr_assert_not_null(strstr(r->str, "tenant:a\r\nscope:write\r\n"), "%s", r->str);
    cr_assert_not_null(strstr(r->str, "tenant_a:"), "%s", r->str);
    cr_assert_null(strstr(r->str, "tenant_b:"), "%s", r->str);
    freeReplyObject(r);
    redisFree(a);
}

Test(server_tenants, export_and_import_move_one_tenants_data)
{
    if (!S.durable)
        return; /* exports live in the data dir */
    redisContext *a = as(TOK_A_WRITE);
    seed_level(a, 10);
    redisFree(a);
    redisReply *r = cmd(C, "TENANT.EXPORT a");
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY, "%s", r->str ? r->str : "");
    cr_assert_str_eq(r->element[0]->str, "file");
    char file[128];
    snprintf(file, sizeof file, "%s", r->element[1]->str);
    cr_assert_eq(strncmp(file, "a-", 2), 0);
    freeReplyObject(r);
    r = cmd(C, "TENANT.IMPORT moved %s", file);
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY, "%s", r->str ? r->str : "");
    freeReplyObject(r);
    expect_status(C, "OK", "TENANT.USE moved");
    expect_level(C, 10, 0, "LEVEL.GET 7 1");
    expect_status(C, "OK", "TENANT.USE default");
    expect_error(C, "EXISTS", "TENANT.IMPORT moved %s", file);
    expect_error(C, "INVALID", "TENANT.IMPORT other ../tokens");
    expect_error(C, "IO", "TENANT.IMPORT other no-such-file.jsonl");
    char names[256];
    tenant_list(C, names, sizeof names);
    cr_assert_str_eq(names, "a,b,default,moved"); /* the refused import left nothing */
}

/* ---- isolation under concurrency ---------------------------------------- */

#define RACE_CLIENTS 32 /* per tenant */
#define RACE_STOCK 100000

static _Atomic long race_sold[2];
static int race_rounds;

/* Client index: tenants a (even) and b (odd), the same item and
 * location; each takes one unit at a time with a floor until its rounds
 * are done, counting what it sold. */
static void race_client(void *arg, size_t index)
{
    (void)arg;
    redisContext *c = srv_connect_port(S.port);
    TU_CHECK(c != NULL, "client %zu: connect", index);
    if (c == NULL)
        return;
    redisReply *r = redisCommand(c, "AUTH %s", index % 2 ? TOK_B_WRITE : TOK_A_WRITE);
    TU_CHECK(r && r->type == REDIS_REPLY_STATUS, "client %zu: AUTH", index);
    freeReplyObject(r);
    long sold = 0;
    for (int i = 0; i < race_rounds; i++) {
        r = redisCommand(c, "LEVEL.ADJUST 7 1 -1 FLOOR 0");
        TU_CHECK(r && r->type == REDIS_REPLY_ARRAY, "client %zu: adjust", index);
        if (r == NULL)
            break;
        sold++;
        freeReplyObject(r);
    }
    atomic_fetch_add(&race_sold[index % 2], sold);
    redisFree(c);
}

Test(server_tenants, two_tenants_with_the_same_ids_under_32_clients_each_do_not_cross)
{
    redisContext *a = as(TOK_A_WRITE), *b = as(TOK_B_WRITE);
    expect_status(a, "OK", "LOC.SET 1 name Main");
    expect_status(b, "OK", "LOC.SET 1 name Main");
    expect_status(a, "OK", "ITEM.SET 7 sku SHIRT");
    expect_status(b, "OK", "ITEM.SET 7 sku SHIRT");
    expect_level(a, RACE_STOCK, 0, "LEVEL.SET 7 1 %d", RACE_STOCK);
    expect_level(b, RACE_STOCK / 2, 0, "LEVEL.SET 7 1 %d", RACE_STOCK / 2);
    race_rounds = (int)tu_iters_min(200, 20);
    atomic_store(&race_sold[0], 0);
    atomic_store(&race_sold[1], 0);
    tu_run_threads(2 * RACE_CLIENTS, race_client, NULL);
    cr_assert_eq(tu_failures(), 0);
    long sa = atomic_load(&race_sold[0]), sb = atomic_load(&race_sold[1]);
    cr_assert_eq(sa, (long)RACE_CLIENTS * race_rounds);
    cr_assert_eq(sb, (long)RACE_CLIENTS * race_rounds);
    /* each tenant lost exactly its own clients' units */
    expect_level(a, RACE_STOCK - sa, 0, "LEVEL.GET 7 1");
    expect_level(b, RACE_STOCK / 2 - sb, 0, "LEVEL.GET 7 1");
    redisFree(a);
    redisFree(b);
}

/* An HTTP client of the suite's server: libcurl, its port, a response. */
typedef struct {
    int port;
    CURL *c;
    hc_resp *r;
} http_client;

static http_client http_open(void)
{
    cr_assert_eq(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
    http_client h = {srv_http_port(&S), curl_easy_init(), calloc(1, sizeof(hc_resp))};
    cr_assert(h.c && h.r);
    return h;
}

static void http_close(http_client *h)
{
    hc_free(h->r);
    free(h->r);
    curl_easy_cleanup(h->c);
    curl_global_cleanup();
}

/* Every route of every dialect with a reader's token: the writes (every
 * method but GET, and but the POST .../query searches) answer 403 in the
 * dialect's shape and change nothing; the reads are never refused for
 * their scope; /metrics is the admin's. */

static const char *method_name(http_method m)
{
    static const char *const names[] = {"",    "GET",   "HEAD",   "POST",
                                        "PUT", "PATCH", "DELETE", "OPTIONS"};
    return (size_t)m < sizeof names / sizeof names[0] ? names[m] : "";
}

/* The route's pattern with each {param} made a value ("{version}": a
 * version Shopify's seed lists; any other: "1"), into out. */
static void route_path(const char *pattern, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *p = pattern; *p && o + 16 < cap;) {
        if (*p != '{') {
            out[o++] = *p++;
            continue;
        }
        const char *end = strchr(p, '}');
        cr_assert_not_null(end, "pattern %s", pattern);
        const char *val = strncmp(p, "{version}", 9) == 0 ? "2021-04" : "1";
        o += (size_t)snprintf(out + o, cap - o, "%s", val);
        p = end + 1;
    }
    out[o] = '\0';
}

Test(server_tenants, every_http_route_refuses_a_reader_what_needs_more)
{
    static const struct {
        const http_route *rows;
        const size_t *n;
    } tables[] = {{http_common_routes, &http_common_routes_n},
                  {http_shoplazza_routes, &http_shoplazza_routes_n},
                  {http_shopify_routes, &http_shopify_routes_n},
                  {http_connector_routes, &http_connector_routes_n},
                  {http_wix_routes, &http_wix_routes_n}};
    http_client h = http_open();
    int port = h.port;
    CURL *c = h.c;
    hc_resp *r = h.r;
    redisContext *a = as(TOK_A_WRITE);
    seed_level(a, 10);
    const char *const reader[] = {"X-TWC-Tenant: a", "Authorization: Bearer " TOK_A_READ, NULL};
    size_t writes = 0, reads = 0;
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++) {
        for (size_t i = 0; i < *tables[t].n; i++) {
            const http_route *rt = &tables[t].rows[i];
            char path[512];
            route_path(rt->pattern, path, sizeof path);
            size_t n = strlen(rt->pattern);
            bool query =
                rt->method == HTTP_POST && n >= 6 && strcmp(rt->pattern + n - 6, "/query") == 0;
            bool admin = strcmp(rt->pattern, "/metrics") == 0;
            bool write = rt->method != HTTP_GET && !query;
            long st = hc_do(c, port, method_name(rt->method), path, reader,
                            rt->method == HTTP_GET ? NULL : "{}", r);
            if (write || admin) {
                cr_assert_eq(st, 403, "%s %s: %ld %s", method_name(rt->method), path, st, r->body);
                cr_assert_not_null(strstr(r->body, "Forbidden"), "%s %s: %s",
                                   method_name(rt->method), path, r->body);
                writes++;
            } else {
                cr_assert(st != 403 && st != 401, "%s %s: %ld %s", method_name(rt->method), path,
                          st, r->body);
                reads++;
            }
            hc_free(r);
        }
    }
    cr_assert_gt(writes, 20);
    cr_assert_gt(reads, 15);
    /* none of the refused writes changed the tenant */
    expect_level(a, 10, 0, "LEVEL.GET 7 1");
    redisFree(a);
    http_close(&h);
}
/* ---- HTTP ---------------------------------------------------------------- */

Test(server_tenants, http_token_headers_select_the_tenant_and_scope)
{
    http_client h = http_open();
    int port = h.port;
    CURL *c = h.c;
    hc_resp *r = h.r;
    redisContext *a = as(TOK_A_WRITE);
    seed_level(a, 10);
    const char *path = "/admin/api/2021-01/inventory_levels.json?inventory_item_ids=7";
    const char *const read_a[] = {"X-Shopify-Access-Token: " TOK_A_READ, NULL};
    const char *const write_b[] = {"X-Shopify-Access-Token: " TOK_B_WRITE, NULL};
    const char *const none[] = {NULL};
    const char *const wrong[] = {"X-Shopify-Access-Token: wrong-token-000", NULL};
    cr_assert_eq(hc_do(c, port, "GET", path, none, NULL, r), 401);
    cr_assert_eq(hc_do(c, port, "GET", path, wrong, NULL, r), 401);
    cr_assert_eq(hc_do(c, port, "GET", path, read_a, NULL, r), 200, "%s", r->body);
    cr_assert_not_null(strstr(r->body, "\"available\":10"), "%s", r->body);
    /* tenant b has no item 7 */
    cr_assert_eq(hc_do(c, port, "GET", path, write_b, NULL, r), 200, "%s", r->body);
    cr_assert_null(strstr(r->body, "\"available\":10"), "%s", r->body);
    /* a reader may not adjust (403 in Shopify's error shape) */
    const char *adjust = "{\"location_id\":1,\"inventory_item_id\":7,\"available_adjustment\":-1}";
    cr_assert_eq(hc_do(c, port, "POST", "/admin/api/2021-01/inventory_levels/adjust.json", read_a,
                       adjust, r),
                 403, "%s", r->body);
    cr_assert_not_null(strstr(r->body, "\"errors\""), "%s", r->body);
    expect_level(a, 10, 0, "LEVEL.GET 7 1");
    /* X-TWC-Tenant: a token of another tenant is refused; an admin picks */
    const char *const twc_wrong[] = {"X-TWC-Tenant: b", "Authorization: Bearer " TOK_A_READ, NULL};
    const char *const twc_admin[] = {"X-TWC-Tenant: a", "Authorization: Bearer " TOK_ADMIN, NULL};
    const char *const twc_none[] = {"X-TWC-Tenant: nosuch", "Authorization: Bearer " TOK_ADMIN,
                                    NULL};
    cr_assert_eq(hc_do(c, port, "GET", "/api/inventoryitem/7", twc_wrong, NULL, r), 403, "%s",
                 r->body);
    cr_assert_eq(hc_do(c, port, "GET", "/api/inventoryitem/7", twc_admin, NULL, r), 200, "%s",
                 r->body);
    cr_assert_eq(hc_do(c, port, "GET", "/api/inventoryitem/7", twc_none, NULL, r), 404, "%s",
                 r->body);
    cr_assert_not_null(strstr(r->body, "tenant 'nosuch' does not exist"), "%s", r->body);
    /* /metrics: admin only, a sample per tenant */
    const char *const admin[] = {"Access-Token: " TOK_ADMIN, NULL};
    cr_assert_eq(hc_do(c, port, "GET", "/metrics", read_a, NULL, r), 403);
    cr_assert_eq(hc_do(c, port, "GET", "/metrics", admin, NULL, r), 200);
    cr_assert_not_null(strstr(r->body, "invcore_levels{tenant=\"a\"} 1\n"), "%s", r->body);
    cr_assert_not_null(strstr(r->body, "invcore_levels{tenant=\"b\"} 0\n"), "%s", r->body);
    cr_assert_not_null(strstr(r->body, "invcore_tenants 3\n"), "%s", r->body);
    /* /healthz needs no token */
    cr_assert_eq(hc_do(c, port, "GET", "/healthz", none, NULL, r), 200);
    redisFree(a);
    http_close(&h);
}

Test(server_tenants, http_answers_429_with_retry_after_when_a_tokens_bucket_is_full)
{
    http_client h = http_open();
    int port = h.port;
    CURL *c = h.c;
    hc_resp *r = h.r;
    const char *const lim[] = {"X-Shopify-Access-Token: " TOK_LIMITED, NULL};
    const char *path = "/admin/api/2021-01/inventory_levels.json?inventory_item_ids=7";
    long st = 0;
    for (int i = 0; i < 1000 && st != 429; i++)
        st = hc_do(c, port, "GET", path, lim, NULL, r);
    cr_assert_eq(st, 429);
    cr_assert_gt(atoi(r->retry_after), 0, "Retry-After '%s'", r->retry_after);
    cr_assert_not_null(strstr(r->body, "\"errors\""), "%s", r->body);
    /* the connection stays usable: the next answer on it is a new request's */
    cr_assert_eq(r->new_connections, 0);
    http_close(&h);
}
