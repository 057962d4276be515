/*
 * test_server_compat.c — integration: the connection commands answer as
 * Redis 7 does, so clients connect with default options: AUTH and HELLO
 * (the nopass default user, WRONGPASS, NOPROTO), CLIENT (SETNAME GETNAME
 * ID SETINFO INFO LIST KILL NO-EVICT NO-TOUCH HELP), SELECT, TIME, RESET,
 * ROLE, COMMAND INFO/DOCS of them, and the client's name in the server's
 * log. Exact error texts are asserted: clients match on some of them.
 * Each test starts its own invcored (test_server_harness.h), with several
 * loops where connections must be found across loops.
 */
#include <pthread.h>

#include "test_server_harness.h"

static void teardown(void)
{
    srv_cleanup(&S);
}

TestSuite(server_compat, .fini = teardown, .timeout = 40);

#define NAME_MAX_BYTES 512 /* SESSION_NAME_MAX in core/server/command.h */

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define WORDS_MAX 16

/* Checks r is of type and (want not NULL) its text is exactly want, then
 * frees it; what names the request in a failure. */
static void check_reply(redisReply *r, int type, const char *want, const char *what)
{
    cr_assert_not_null(r, "no reply to '%s'", what);
    cr_assert(r->type == type && (want == NULL || strcmp(r->str, want) == 0),
              "'%s': want type %d '%s', got type %d '%s'", what, type, want ? want : "", r->type,
              r->str ? r->str : "");
    freeReplyObject(r);
}

/* Expects exactly the error text want (without the leading '-'). */
static void expect_err(redisContext *c, const char *want, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    check_reply(r, REDIS_REPLY_ERROR, want, fmt);
}

/* A request written as plain words and the exact error it gets. */
typedef struct {
    const char *req;
    const char *err;
} err_case;

/* Sends req split on spaces: case tables need no format strings. */
static redisReply *run_words(redisContext *c, const char *req)
{
    char buf[256];
    const char *argv[WORDS_MAX];
    size_t lens[WORDS_MAX];
    int argc = 0;
    char *save = NULL;
    cr_assert_lt(strlen(req), sizeof buf);
    strcpy(buf, req);
    for (char *w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
        cr_assert_lt(argc, WORDS_MAX);
        argv[argc] = w;
        lens[argc++] = strlen(w);
    }
    return redisCommandArgv(c, argc, argv, lens);
}

static void expect_errors(redisContext *c, const err_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++)
        check_reply(run_words(c, cases[i].req), REDIS_REPLY_ERROR, cases[i].err, cases[i].req);
}

static void expect_nil(redisContext *c, const char *req)
{
    check_reply(run_words(c, req), REDIS_REPLY_NIL, NULL, req);
}

static void expect_bulk(redisContext *c, const char *want, const char *req)
{
    check_reply(run_words(c, req), REDIS_REPLY_STRING, want, req);
}

/* The text reply of fmt (CLIENT INFO / CLIENT LIST), malloc'd. */
static char *text_of(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    char *t = r && r->type == REDIS_REPLY_STRING ? strdup(r->str) : NULL;
    check_reply(r, REDIS_REPLY_STRING, NULL, fmt);
    return t;
}

/* The value of key=... in a CLIENT LIST line, into out. */
static void field(const char *line, const char *key, char *out, size_t cap)
{
    size_t klen = strlen(key);
    const char *p;
    if (strncmp(line, key, klen) == 0 && line[klen] == '=') {
        p = line + klen + 1;
    } else {
        char pat[64];
        snprintf(pat, sizeof pat, " %s=", key);
        p = strstr(line, pat);
        cr_assert_not_null(p, "no %s= in '%s'", key, line);
        p += strlen(pat);
    }
    size_t n = strcspn(p, " \n");
    cr_assert_lt(n, cap);
    memcpy(out, p, n);
    out[n] = 0;
}

/* The line of client id in a CLIENT LIST text, or NULL. */
static const char *line_of(const char *list, long long id)
{
    char pat[40];
    snprintf(pat, sizeof pat, "id=%lld ", id);
    for (const char *p = list; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, pat, strlen(pat)) == 0)
            return p;
    return NULL;
}

static size_t count_lines(const char *t)
{
    size_t n = 0;
    for (; *t; t++)
        n += *t == '\n';
    return n;
}

/* Reads into buf (NUL-terminated) until it holds needle, EOF or 5 s. */
static size_t raw_until(int fd, char *buf, size_t cap, const char *needle)
{
    size_t got = 0;
    long long deadline = srv_now_ms() + 5000;
    buf[0] = 0;
    while (!strstr(buf, needle) && got + 1 < cap && srv_now_ms() < deadline) {
        size_t r = raw_recv(fd, buf + got, cap - 1 - got, 1, 100);
        got += r;
        buf[got] = 0;
    }
    return got;
}

/* Sends one inline command on a raw socket and expects exactly want. */
static void raw_expect(int fd, const char *req, const char *want)
{
    char buf[512] = {0};
    raw_send(fd, req, strlen(req));
    raw_recv(fd, buf, sizeof buf - 1, strlen(want), 3000);
    cr_assert_str_eq(buf, want, "'%s'", req);
}

/* ---- AUTH and HELLO ------------------------------------------------------- */

Test(server_compat, auth_without_password_is_the_nopass_default_user)
{
    srv_start(&S, NULL);
    redisContext *c = srv_connect(&S);
    expect_status(c, "OK", "AUTH default anything");
    expect_status(c, "OK", "AUTH default %s", "");
    expect_err(c,
               "ERR AUTH <password> called without any password configured "
               "for the default user. Are you sure your configuration is correct?",
               "AUTH x");
    long long before = 0;
    char *info = text_of(c, "INFO clients");
    before = atoll(strstr(info, "auth_failures:") + strlen("auth_failures:"));
    free(info);
    expect_err(c, "WRONGPASS invalid username-password pair or user is disabled.", "AUTH bob x");
    expect_err(c, "WRONGPASS invalid username-password pair or user is disabled.",
               "HELLO 2 AUTH bob x");
    info = text_of(c, "INFO clients");
    cr_assert_eq(atoll(strstr(info, "auth_failures:") + strlen("auth_failures:")), before + 2);
    free(info);
    expect_err(c, "ERR syntax error", "AUTH a b c");
    expect_err(c, "ERR wrong number of arguments for 'auth' command", "AUTH");
    redisReply *r = cmd(c, "HELLO 2 AUTH default whatever");
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(r->elements, 14);
    freeReplyObject(r);
    redisFree(c);

    /* HELLO 3 AUTH default x: a RESP3 map (hiredis 0.14 lacks RESP3) */
    int fd = raw_connect(&S);
    char buf[1024] = {0};
    raw_send(fd, "HELLO 3 AUTH default x\r\n", 24);
    raw_until(fd, buf, sizeof buf, "$7\r\nmodules\r\n*0\r\n");
    cr_assert(strncmp(buf, "%7\r\n", 4) == 0, "got %s", buf);
    close(fd);
}

Test(server_compat, auth_with_requirepass_checks_user_and_token)
{
    const char *extra[] = {"--requirepass", "s3cret", NULL};
    srv_start(&S, extra);
    redisContext *c = srv_connect(&S);
#define WRONGPASS "WRONGPASS invalid username-password pair or user is disabled."
    static const err_case cases[] = {
        {"PING", "NOAUTH Authentication required."},
        {"CLIENT KILL ID 1", "NOAUTH Authentication required."},
        {"CLIENT LIST", "NOAUTH Authentication required."},
        {"HELLO 2", "NOAUTH HELLO must be called with the client already "
                    "authenticated, otherwise the HELLO <proto> AUTH <user> <pass> "
                    "option can be used to authenticate the client and select the "
                    "RESP protocol version at the same time"},
    };
    /* each wrong one on a connection of its own: after a failure a
     * connection's next AUTH waits out a penalty (test_server_tenants) */
    static const err_case wrong[] = {
        {"AUTH default wrong", WRONGPASS},
        {"AUTH bob s3cret", WRONGPASS},
        {"AUTH wrong", WRONGPASS},
        {"HELLO 3 AUTH default wrong", WRONGPASS},
    };
#undef WRONGPASS
    expect_errors(c, cases, ARRAY_LEN(cases));
    for (size_t i = 0; i < ARRAY_LEN(wrong); i++) {
        redisContext *w = srv_connect(&S);
        expect_errors(w, &wrong[i], 1);
        redisFree(w);
    }
    expect_status(c, "OK", "AUTH default s3cret");
    expect_status(c, "PONG", "PING");
    redisFree(c);
    c = srv_connect(&S);
    redisReply *r = cmd(c, "HELLO 2 AUTH default s3cret SETNAME boot");
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY, "type %d %s", r->type, r->str);
    freeReplyObject(r);
    expect_bulk(c, "boot", "CLIENT GETNAME");
    redisFree(c);
}

Test(server_compat, hello_versions_and_options_answer_as_redis)
{
    srv_start(&S, NULL);
    redisContext *c = srv_connect(&S);
    static const err_case cases[] = {
        {"HELLO 4", "NOPROTO unsupported protocol version"},
        {"HELLO 1", "NOPROTO unsupported protocol version"},
        {"HELLO -1", "NOPROTO unsupported protocol version"},
        {"HELLO x", "ERR Protocol version is not an integer or out of range"},
        {"HELLO 03", "ERR Protocol version is not an integer or out of range"},
        {"HELLO AUTH default x", "ERR Protocol version is not an integer or out of range"},
        {"HELLO 2 FOO", "ERR Syntax error in HELLO option 'FOO'"},
        {"HELLO 2 SETNAME", "ERR Syntax error in HELLO option 'SETNAME'"},
        {"HELLO 2 AUTH default", "ERR Syntax error in HELLO option 'AUTH'"},
        {"HELLO 2 SETNAME x y", "ERR Syntax error in HELLO option 'y'"},
    };
    expect_errors(c, cases, ARRAY_LEN(cases));
    expect_err(c, "ERR Client names cannot contain spaces, newlines or special characters.",
               "HELLO 2 SETNAME %s", "a b");
    expect_nil(c, "CLIENT GETNAME"); /* a refused HELLO sets nothing */
    redisReply *r = cmd(c, "HELLO 2 SETNAME worker-1");
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    cr_assert_str_eq(r->element[6]->str, "id");
    long long id = r->element[7]->integer;
    freeReplyObject(r);
    expect_bulk(c, "worker-1", "CLIENT GETNAME");
    cr_assert_eq(expect_int(c, "CLIENT ID"), id);
    r = cmd(c, "HELLO");
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    freeReplyObject(r);
    redisFree(c);
}

/* ---- CLIENT on one connection ----------------------------------------------- */

Test(server_compat, client_setname_getname_and_id)
{
    srv_start(&S, NULL);
    redisContext *c = srv_connect(&S);
    const char *bad = "ERR Client names cannot contain spaces, newlines or special characters.";
    expect_nil(c, "CLIENT GETNAME");
    expect_err(c, bad, "CLIENT SETNAME %s", "a b");
    expect_err(c, bad, "CLIENT SETNAME %s", "a\nb");
    expect_err(c, bad, "CLIENT SETNAME %b", "a\x01", (size_t)2);
    expect_err(c, bad, "CLIENT SETNAME %b", "a\0b", (size_t)3);
    expect_err(c, bad, "CLIENT SETNAME %s", "\xc3\xa9");
    char big[NAME_MAX_BYTES + 2];
    memset(big, 'n', sizeof big - 1);
    big[sizeof big - 1] = 0;
    expect_err(c, "ERR Client names cannot be longer than 512 bytes.", "CLIENT SETNAME %s", big);
    big[NAME_MAX_BYTES] = 0;
    expect_status(c, "OK", "CLIENT SETNAME %s", big);
    expect_bulk(c, big, "CLIENT GETNAME");
    expect_status(c, "OK", "CLIENT SETNAME app=orders:1");
    expect_bulk(c, "app=orders:1", "CLIENT GETNAME");
    expect_status(c, "OK", "CLIENT SETNAME %s", "");
    expect_nil(c, "CLIENT GETNAME");
    long long id = expect_int(c, "CLIENT ID");
    cr_assert_gt(id, 0);
    redisContext *d = srv_connect(&S);
    cr_assert_neq(expect_int(d, "CLIENT ID"), id);
    redisFree(d);
    static const err_case cases[] = {
        {"CLIENT", "ERR wrong number of arguments for 'client' command"},
        {"CLIENT SETNAME", "ERR wrong number of arguments for 'client|setname' command"},
        {"CLIENT SETNAME a b", "ERR wrong number of arguments for 'client|setname' command"},
        {"CLIENT GETNAME x", "ERR wrong number of arguments for 'client|getname' command"},
        {"CLIENT ID x", "ERR wrong number of arguments for 'client|id' command"},
        {"CLIENT INFO x", "ERR wrong number of arguments for 'client|info' command"},
        {"CLIENT FOO", "ERR unknown subcommand 'FOO'. Try CLIENT HELP."},
        {"client setname2 x", "ERR unknown subcommand 'setname2'. Try CLIENT HELP."},
    };
    expect_errors(c, cases, ARRAY_LEN(cases));
    expect_status(c, "OK", "client setname lower");
    expect_bulk(c, "lower", "client getname");
    redisFree(c);
}

Test(server_compat, client_setinfo_no_evict_no_touch_and_help)
{
    srv_start(&S, NULL);
    redisContext *c = srv_connect(&S);
    expect_status(c, "OK", "CLIENT SETINFO LIB-NAME redis-py");
    expect_status(c, "OK", "CLIENT SETINFO lib-ver 5.0.1");
    expect_err(c, "ERR LIB-NAME cannot contain spaces, newlines or special characters.",
               "CLIENT SETINFO LIB-NAME %s", "go redis");
    expect_err(c, "ERR lib-ver cannot contain spaces, newlines or special characters.",
               "CLIENT SETINFO lib-ver %s", "1.0\n");
    static const err_case cases[] = {
        {"CLIENT SETINFO FOO 1", "ERR Unrecognized option 'FOO'"},
        {"CLIENT SETINFO LIB-NAME", "ERR wrong number of arguments for 'client|setinfo' command"},
        {"CLIENT NO-EVICT maybe", "ERR syntax error"},
        {"CLIENT NO-TOUCH 1", "ERR syntax error"},
        {"CLIENT NO-EVICT", "ERR wrong number of arguments for 'client|no-evict' command"},
    };
    expect_errors(c, cases, ARRAY_LEN(cases));
    char *info = text_of(c, "CLIENT INFO");
    char v[64];
    field(info, "lib-name", v, sizeof v);
    cr_assert_str_eq(v, "redis-py");
    field(info, "lib-ver", v, sizeof v);
    cr_assert_str_eq(v, "5.0.1");
    free(info);
    expect_status(c, "OK", "CLIENT SETINFO LIB-VER %s", ""); /* clears */
    info = text_of(c, "CLIENT INFO");
    cr_assert_not_null(strstr(info, " lib-name=redis-py lib-ver=\n"), "%s", info);
    free(info);

    expect_status(c, "OK", "CLIENT NO-EVICT on");
    expect_status(c, "OK", "CLIENT NO-EVICT OFF");
    expect_status(c, "OK", "CLIENT NO-TOUCH on");
    expect_status(c, "OK", "CLIENT NO-TOUCH off");
    redisReply *r = cmd(c, "CLIENT HELP");
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    cr_assert_gt(r->elements, 10);
    cr_assert_eq(r->element[0]->type, REDIS_REPLY_STATUS);
    cr_assert(strncmp(r->element[0]->str, "CLIENT <subcommand>", 19) == 0);
    int has_kill = 0;
    for (size_t i = 0; i < r->elements; i++)
        has_kill |= strncmp(r->element[i]->str, "KILL", 4) == 0;
    cr_assert(has_kill);
    freeReplyObject(r);
    redisFree(c);
}

Test(server_compat, client_info_describes_this_connection)
{
    srv_start(&S, NULL);
    redisContext *c = srv_connect(&S);
    long long id = expect_int(c, "CLIENT ID");
    expect_status(c, "OK", "CLIENT SETNAME inspector");
    char *info = text_of(c, "CLIENT INFO");
    char v[128], want[64];
    cr_assert_eq(count_lines(info), 1);
    cr_assert_eq(info[strlen(info) - 1], '\n');
    snprintf(want, sizeof want, "id=%lld ", id);
    cr_assert(strncmp(info, want, strlen(want)) == 0, "%s", info);
    field(info, "addr", v, sizeof v);
    cr_assert(strncmp(v, "127.0.0.1:", 10) == 0, "%s", v);
    field(info, "laddr", v, sizeof v);
    snprintf(want, sizeof want, "127.0.0.1:%d", S.port);
    cr_assert_str_eq(v, want);
    field(info, "name", v, sizeof v);
    cr_assert_str_eq(v, "inspector");
    field(info, "cmd", v, sizeof v);
    cr_assert_str_eq(v, "client|info");
    field(info, "user", v, sizeof v);
    cr_assert_str_eq(v, "default");
    field(info, "flags", v, sizeof v);
    cr_assert_str_eq(v, "N");
    field(info, "db", v, sizeof v);
    cr_assert_str_eq(v, "0");
    field(info, "resp", v, sizeof v);
    cr_assert_str_eq(v, "2");
    const char *keys[] = {"fd",        "age", "idle", "sub",  "psub",    "multi", "qbuf",
                          "qbuf-free", "obl", "oll",  "omem", "tot-mem", "events"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        field(info, keys[i], v, sizeof v);
    free(info);
    redisFree(c);
}

/* ---- CLIENT LIST and KILL across loops ----------------------------------------- */

#define LIST_CLIENTS 8 /* over 4 loops: SO_REUSEPORT spreads them */

static const char *const four_loops[] = {"--threads", "4", NULL};

Test(server_compat, client_list_shows_every_connection_with_name_and_lib)
{
    srv_start(&S, four_loops);
    redisContext *cs[LIST_CLIENTS];
    long long ids[LIST_CLIENTS];
    for (int i = 0; i < LIST_CLIENTS; i++) {
        cs[i] = srv_connect(&S);
        ids[i] = expect_int(cs[i], "CLIENT ID");
        expect_status(cs[i], "OK", "CLIENT SETNAME worker-%d", i);
        expect_status(cs[i], "OK", "CLIENT SETINFO LIB-NAME lib-%d", i);
    }
    char *list = text_of(cs[0], "CLIENT LIST");
    cr_assert_eq(count_lines(list), LIST_CLIENTS, "%s", list);
    for (int i = 0; i < LIST_CLIENTS; i++) {
        const char *line = line_of(list, ids[i]);
        char v[64], want[64];
        cr_assert_not_null(line, "client %lld missing:\n%s", ids[i], list);
        field(line, "name", v, sizeof v);
        snprintf(want, sizeof want, "worker-%d", i);
        cr_assert_str_eq(v, want);
        field(line, "lib-name", v, sizeof v);
        snprintf(want, sizeof want, "lib-%d", i);
        cr_assert_str_eq(v, want);
        field(line, "cmd", v, sizeof v);
        cr_assert_str_eq(v, i == 0 ? "client|list" : "client|setinfo");
    }
    free(list);
    list = text_of(cs[1], "CLIENT LIST TYPE normal");
    cr_assert_eq(count_lines(list), LIST_CLIENTS);
    free(list);
    list = text_of(cs[1], "CLIENT LIST TYPE master");
    cr_assert_str_eq(list, "");
    free(list);
    list = text_of(cs[1], "CLIENT LIST TYPE PUBSUB");
    cr_assert_str_eq(list, "");
    free(list);
    list = text_of(cs[2], "CLIENT LIST ID %lld %lld 999999 -4 0", ids[3], ids[5]);
    cr_assert_eq(count_lines(list), 2, "%s", list);
    cr_assert_not_null(line_of(list, ids[3]));
    cr_assert_not_null(line_of(list, ids[5]));
    free(list);
    static const err_case cases[] = {
        {"CLIENT LIST TYPE bogus", "ERR Unknown client type 'bogus'"},
        {"CLIENT LIST ID 1 x", "ERR Invalid client ID"},
        {"CLIENT LIST FOO", "ERR syntax error"},
        {"CLIENT LIST TYPE", "ERR syntax error"},
        {"CLIENT LIST ID", "ERR syntax error"},
        {"CLIENT LIST TYPE normal ID 1", "ERR syntax error"},
    };
    expect_errors(cs[0], cases, ARRAY_LEN(cases));
    for (int i = 0; i < LIST_CLIENTS; i++)
        redisFree(cs[i]);
}

/* A CLIENT LIST waits for the other loops: requests pipelined behind it
 * must still be answered after it, in order. */
Test(server_compat, requests_pipelined_after_client_list_keep_their_order)
{
    srv_start(&S, four_loops);
    redisContext *others[3];
    for (int i = 0; i < 3; i++)
        others[i] = srv_connect(&S);
    int fd = raw_connect(&S);
    const char *req = "CLIENT LIST\r\nPING\r\nCLIENT KILL ID 999999\r\nECHO end\r\n";
    raw_send(fd, req, strlen(req));
    char buf[8192];
    raw_until(fd, buf, sizeof buf, "$3\r\nend\r\n");
    cr_assert(buf[0] == '$', "got %s", buf);
    cr_assert_not_null(strstr(buf, "cmd=client|list"), "got %s", buf);
    const char *pong = strstr(buf, "\n\r\n+PONG\r\n:0\r\n$3\r\nend\r\n");
    cr_assert_not_null(pong, "got %s", buf);
    close(fd);
    for (int i = 0; i < 3; i++)
        redisFree(others[i]);
}

Test(server_compat, client_kill_by_id_closes_the_other_connection)
{
    srv_start(&S, four_loops);
    redisContext *killer = srv_connect(&S);
    for (int round = 0; round < 6; round++) { /* victims land on various loops */
        int victim = raw_connect(&S);
        char buf[64] = {0};
        raw_send(victim, "CLIENT ID\r\n", 11);
        raw_recv(victim, buf, sizeof buf - 1, 4, 3000);
        cr_assert_eq(buf[0], ':', "got %s", buf);
        long long vid = atoll(buf + 1);
        cr_assert_eq(expect_int(killer, "CLIENT KILL ID %lld", vid), 1);
        cr_assert(raw_closed(victim, 3000), "victim %lld still open", vid);
        close(victim);
        cr_assert_eq(expect_int(killer, "CLIENT KILL ID %lld", vid), 0);
    }
    expect_status(killer, "PONG", "PING");
    redisFree(killer);
}

Test(server_compat, client_kill_by_addr_old_and_new_form)
{
    srv_start(&S, four_loops);
    redisContext *killer = srv_connect(&S);
    char addr[64];
    redisContext *v1 = srv_connect(&S);
    char *info = text_of(v1, "CLIENT INFO");
    field(info, "addr", addr, sizeof addr);
    free(info);
    cr_assert_eq(expect_int(killer, "CLIENT KILL ADDR %s", addr), 1);
    redisReply *r = redisCommand(v1, "PING");
    cr_assert(r == NULL || r->type == REDIS_REPLY_ERROR, "v1 still served");
    if (r)
        freeReplyObject(r);
    redisFree(v1);

    redisContext *v2 = srv_connect(&S);
    info = text_of(v2, "CLIENT INFO");
    field(info, "addr", addr, sizeof addr);
    free(info);
    expect_status(killer, "OK", "CLIENT KILL %s", addr);
    expect_err(killer, "ERR No such client", "CLIENT KILL %s", addr);
    expect_err(killer, "ERR No such client", "CLIENT KILL 1.2.3.4:5");
    expect_err(killer, "ERR No such client", "CLIENT KILL %s", "");
    cr_assert_eq(expect_int(killer, "CLIENT KILL ADDR 1.2.3.4:5"), 0);
    redisFree(v2);

    /* LADDR: every client reached this listener, the killer is skipped */
    redisContext *v3 = srv_connect(&S);
    expect_status(v3, "PONG", "PING");
    char laddr[64];
    snprintf(laddr, sizeof laddr, "127.0.0.1:%d", S.port);
    cr_assert_eq(expect_int(killer, "CLIENT KILL LADDR %s", laddr), 1);
    redisFree(v3);
    expect_status(killer, "PONG", "PING");
    redisFree(killer);
}

Test(server_compat, client_kill_options_and_errors_answer_as_redis)
{
    srv_start(&S, NULL);
    redisContext *c = srv_connect(&S);
    static const err_case cases[] = {
        {"CLIENT KILL ID x", "ERR client-id should be greater than 0"},
        {"CLIENT KILL ID 0", "ERR client-id should be greater than 0"},
        {"CLIENT KILL ID -1", "ERR client-id should be greater than 0"},
        {"CLIENT KILL ID 99999999999999999999", "ERR client-id should be greater than 0"},
        {"CLIENT KILL FOO bar", "ERR syntax error"},
        {"CLIENT KILL a b c", "ERR syntax error"},
        {"CLIENT KILL ID 5 SKIPME", "ERR syntax error"},
        {"CLIENT KILL SKIPME maybe", "ERR syntax error"},
        {"CLIENT KILL USER bob", "ERR No such user 'bob'"},
        {"CLIENT KILL ID 1 TYPE foo", "ERR Unknown client type 'foo'"},
        {"CLIENT KILL ID", "ERR No such client"}, /* old form: addr "ID" */
        {"CLIENT KILL", "ERR wrong number of arguments for 'client|kill' command"},
    };
    expect_errors(c, cases, ARRAY_LEN(cases));
    cr_assert_eq(expect_int(c, "CLIENT KILL USER default"), 0); /* SKIPME yes */
    cr_assert_eq(expect_int(c, "CLIENT KILL TYPE master"), 0);
    long long self = expect_int(c, "CLIENT ID");
    cr_assert_eq(expect_int(c, "CLIENT KILL ID %lld", self), 0);
    cr_assert_eq(expect_int(c, "CLIENT KILL ID 1 ID %lld SKIPME yes", self), 0);
    /* SKIPME no: the reply comes, then the connection closes */
    cr_assert_eq(expect_int(c, "CLIENT KILL ID %lld SKIPME no", self), 1);
    redisReply *r = redisCommand(c, "PING");
    cr_assert(r == NULL, "connection survived its own kill");
    redisFree(c);
}

/* Many clients on many loops list and kill at once (run against the
 * TSan build of invcored by make test): every answer is complete and
 * the server keeps serving. */
#define STORM_THREADS 4
#define STORM_ROUNDS 100

typedef struct {
    int port;
    int bad;
} storm_arg;

static void *storm_main(void *p)
{
    storm_arg *a = p;
    redisContext *c = srv_connect_port(a->port);
    if (c == NULL) {
        a->bad++;
        return NULL;
    }
    for (int i = 0; i < STORM_ROUNDS; i++) {
        redisReply *r = redisCommand(c, i % 2 ? "CLIENT LIST" : "CLIENT KILL ID 999999999");
        if (r == NULL) {
            a->bad++;
            break;
        }
        if (i % 2 ? (r->type != REDIS_REPLY_STRING || count_lines(r->str) < STORM_THREADS)
                  : (r->type != REDIS_REPLY_INTEGER || r->integer != 0))
            a->bad++;
        freeReplyObject(r);
    }
    redisFree(c);
    return NULL;
}

Test(server_compat, concurrent_lists_and_kills_across_loops_all_complete)
{
    srv_start(&S, four_loops);
    redisContext *keep[STORM_THREADS];
    for (int i = 0; i < STORM_THREADS; i++)
        keep[i] = srv_connect(&S); /* at least STORM_THREADS lines, always */
    pthread_t th[STORM_THREADS];
    storm_arg a[STORM_THREADS];
    for (int i = 0; i < STORM_THREADS; i++) {
        a[i].port = S.port;
        a[i].bad = 0;
        cr_assert_eq(pthread_create(&th[i], NULL, storm_main, &a[i]), 0);
    }
    for (int i = 0; i < STORM_THREADS; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(a[i].bad, 0, "thread %d had %d bad replies", i, a[i].bad);
    }
    for (int i = 0; i < STORM_THREADS; i++) {
        expect_status(keep[i], "PONG", "PING");
        redisFree(keep[i]);
    }
}

/* ---- SELECT, TIME, RESET, ROLE ------------------------------------------------- */

Test(server_compat, select_time_and_role)
{
    srv_start(&S, NULL);
    redisContext *c = srv_connect(&S);
    expect_status(c, "OK", "SELECT 0");
    static const err_case cases[] = {
        {"SELECT 1", "ERR DB index is out of range"},
        {"SELECT -1", "ERR DB index is out of range"},
        {"SELECT x", "ERR value is not an integer or out of range"},
        {"SELECT 00", "ERR value is not an integer or out of range"},
        {"SELECT -0", "ERR value is not an integer or out of range"},
        {"SELECT 99999999999",
         "ERR value is out of range, value must between -2147483648 and 2147483647"},
        {"SELECT", "ERR wrong number of arguments for 'select' command"},
        {"TIME x", "ERR wrong number of arguments for 'time' command"},
        {"ROLE x", "ERR wrong number of arguments for 'role' command"},
    };
    expect_errors(c, cases, ARRAY_LEN(cases));
    expect_err(c, "ERR value is not an integer or out of range", "SELECT %s", " 0");

    redisReply *r = cmd(c, "TIME");
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(r->elements, 2);
    cr_assert_eq(r->element[0]->type, REDIS_REPLY_STRING);
    cr_assert_eq(r->element[1]->type, REDIS_REPLY_STRING);
    long long secs = atoll(r->element[0]->str), us = atoll(r->element[1]->str);
    long long now = (long long)time(NULL);
    cr_assert(secs >= now - 5 && secs <= now + 5, "TIME %lld, now %lld", secs, now);
    cr_assert(us >= 0 && us < 1000000);
    freeReplyObject(r);

    r = cmd(c, "ROLE");
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(r->elements, 3);
    cr_assert_str_eq(r->element[0]->str, "master");
    cr_assert_eq(r->element[1]->type, REDIS_REPLY_INTEGER);
    long long pos0 = r->element[1]->integer;
    cr_assert_eq(r->element[2]->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(r->element[2]->elements, 0);
    freeReplyObject(r);
    expect_status(c, "OK", "LOC.SET 1 name Main");
    r = cmd(c, "ROLE");
    if (S.durable) /* the offset is the journal position */
        cr_assert_gt(r->element[1]->integer, pos0);
    else
        cr_assert_eq(r->element[1]->integer, 0);
    freeReplyObject(r);
    redisFree(c);
}

Test(server_compat, reset_returns_the_connection_to_its_defaults)
{
    srv_start(&S, NULL);
    int fd = raw_connect(&S);
    char buf[1024] = {0};
    raw_send(fd, "HELLO 3 SETNAME temp\r\n", 22);
    raw_until(fd, buf, sizeof buf, "$7\r\nmodules\r\n*0\r\n"); /* the whole map */
    cr_assert(strncmp(buf, "%7\r\n", 4) == 0, "got %s", buf);
    raw_expect(fd, "CLIENT SETINFO LIB-NAME keep\r\n", "+OK\r\n");
    raw_expect(fd, "RESET\r\n", "+RESET\r\n");
    raw_expect(fd, "CLIENT GETNAME\r\n", "$-1\r\n"); /* RESP2 nil, no name */
    raw_send(fd, "CLIENT INFO\r\n", 13);
    raw_until(fd, buf, sizeof buf, "\n\r\n");
    cr_assert(buf[0] == '$', "RESP2 bulk, got %s", buf); /* not '=' verbatim */
    close(fd);
    /* lib-name stays across RESET (Redis: it describes the library) */
    cr_assert_not_null(strstr(buf, " name= "), "%s", buf);
    cr_assert_not_null(strstr(buf, "lib-name=keep"), "%s", buf);
    redisContext *c = srv_connect(&S);
    expect_err(c, "ERR wrong number of arguments for 'reset' command", "RESET x");
    redisFree(c);
}

Test(server_compat, reset_deauthenticates_when_a_password_is_set)
{
    const char *extra[] = {"--requirepass", "pw", NULL};
    srv_start(&S, extra);
    redisContext *c = srv_connect(&S);
    expect_status(c, "RESET", "RESET"); /* allowed before AUTH */
    expect_status(c, "OK", "AUTH pw");
    expect_status(c, "OK", "CLIENT SETNAME n1");
    expect_status(c, "RESET", "RESET");
    expect_err(c, "NOAUTH Authentication required.", "PING");
    expect_status(c, "OK", "AUTH default pw");
    expect_nil(c, "CLIENT GETNAME");
    redisFree(c);
}

/* ---- COMMAND INFO / DOCS, fuzz-free sanity of the table -------------------------- */

Test(server_compat, command_info_and_docs_describe_the_new_commands)
{
    srv_start(&S, NULL);
    redisContext *c = srv_connect(&S);
    redisReply *r = cmd(c, "COMMAND INFO client select time reset role");
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(r->elements, 5);
    for (size_t i = 0; i < 5; i++)
        cr_assert_eq(r->element[i]->type, REDIS_REPLY_ARRAY, "entry %zu", i);
    redisReply *client = r->element[0];
    cr_assert_str_eq(client->element[0]->str, "client");
    cr_assert_eq(client->element[1]->integer, -2);
    redisReply *subs = client->element[9];
    cr_assert_geq(subs->elements, 10);
    int kill = 0;
    for (size_t i = 0; i < subs->elements; i++) {
        redisReply *e = subs->element[i];
        cr_assert(strncmp(e->element[0]->str, "client|", 7) == 0);
        if (strcmp(e->element[0]->str, "client|kill") == 0) {
            kill = 1;
            cr_assert_eq(e->element[1]->integer, -3);
        }
    }
    cr_assert(kill);
    cr_assert_eq(r->element[1]->element[1]->integer, 2); /* select */
    cr_assert_eq(r->element[2]->element[1]->integer, 1); /* time */
    freeReplyObject(r);

    r = cmd(c, "COMMAND DOCS client");
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY); /* a map, flat in RESP2 */
    cr_assert_eq(r->elements, 2);
    cr_assert_str_eq(r->element[0]->str, "client");
    redisReply *doc = r->element[1];
    cr_assert_eq(doc->elements, 8);
    cr_assert_str_eq(doc->element[6]->str, "subcommands");
    redisReply *sd = doc->element[7];
    int setname = 0;
    for (size_t i = 0; i + 1 < sd->elements; i += 2)
        setname |= strcmp(sd->element[i]->str, "client|setname") == 0;
    cr_assert(setname);
    freeReplyObject(r);
    r = cmd(c, "COMMAND DOCS time reset role select");
    cr_assert_eq(r->elements, 8);
    freeReplyObject(r);
    redisFree(c);
}

/* ---- the client's name in the server's log ---------------------------------------- */

Test(server_compat, log_lines_about_a_client_carry_its_name)
{
    const char *extra[] = {"--threads",          "2",     "--max-bulk", "1024",
                           "--max-query-buffer", "65536", NULL};
    srv_start(&S, extra);
    /* over the query buffer limit (and the inline line limit) */
    int fd = raw_connect(&S);
    raw_expect(fd, "CLIENT SETNAME greedy-reader\r\n", "+OK\r\n");
    enum { JUNK = 70000 };
    char *junk = malloc(JUNK);
    memset(junk, 'a', JUNK);
    raw_send(fd, junk, JUNK);
    free(junk);
    cr_assert(raw_closed(fd, 5000));
    close(fd);
    cr_assert(srv_log_wait(&S, "name=greedy-reader", 5000), "no log line names the client (log %s)",
              S.log);
    /* killed by CLIENT KILL: the victim is named, and who killed it */
    redisContext *killer = srv_connect(&S);
    redisContext *victim = srv_connect(&S);
    expect_status(victim, "OK", "CLIENT SETNAME doomed");
    long long vid = expect_int(victim, "CLIENT ID");
    long long kid = expect_int(killer, "CLIENT ID");
    cr_assert_eq(expect_int(killer, "CLIENT KILL ID %lld", vid), 1);
    char want[128];
    snprintf(want, sizeof want, "name=doomed lib-name= closed: CLIENT KILL by client id=%lld", kid);
    cr_assert(srv_log_wait(&S, want, 5000), "no '%s' in %s", want, S.log);
    redisFree(victim);
    redisFree(killer);
}
