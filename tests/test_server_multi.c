/*
 * test_server_multi.c — integration: MULTI / EXEC / DISCARD / WATCH /
 * UNWATCH against a real build/invcored (test_server_harness.h). EXEC
 * applies its level and hold lines all or nothing: every failing line
 * leaves the levels' available and reserved and the holds as they were,
 * and one error names the line. Also: queue-time refusals (EXECABORT),
 * the limits, a whole transaction in one write (as redis-py sends it),
 * reads inside MULTI, a crash after an acknowledged EXEC, and 16 clients
 * racing transactions that must never half-apply.
 */
#include <pthread.h>

#include "test_server_harness.h"

static void setup(void)
{
    srv_suite_start(NULL);
}
static void teardown(void)
{
    srv_suite_stop();
}

TestSuite(server_multi, .init = setup, .fini = teardown, .timeout = 60);

/* Item 10 and 11 at location 1 with 5 each; location 2 has no levels. */
static void seed(redisContext *c)
{
    expect_status(c, "OK", "LOC.SET 1 name Main");
    expect_status(c, "OK", "LOC.SET 2 name Second");
    expect_status(c, "OK", "ITEM.SET 10 sku A");
    expect_status(c, "OK", "ITEM.SET 11 sku B");
    expect_level(c, 5, 0, "LEVEL.SET 10 1 5");
    expect_level(c, 5, 0, "LEVEL.SET 11 1 5");
}

static void expect_array_level(const redisReply *r, long long avail, long long reserved)
{
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY, "type %d '%s'", r->type, r->str ? r->str : "");
    cr_assert_eq(r->elements, 3);
    cr_assert_eq(r->element[0]->integer, avail, "available %lld want %lld", r->element[0]->integer,
                 avail);
    cr_assert_eq(r->element[1]->integer, reserved, "reserved %lld want %lld",
                 r->element[1]->integer, reserved);
}

/* EXEC, expecting an array of n replies (the caller frees it). */
static redisReply *exec_array(redisContext *c, size_t n)
{
    redisReply *r = cmd(c, "EXEC");
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY, "EXEC: type %d '%s'", r->type, r->str ? r->str : "");
    cr_assert_eq(r->elements, n, "EXEC: %zu replies, want %zu", r->elements, n);
    return r;
}

Test(server_multi, exec_applies_every_line_and_answers_each_reply)
{
    seed(C);
    expect_status(C, "OK", "MULTI");
    expect_status(C, "QUEUED", "LEVEL.ADJUST 10 1 -2 FLOOR 0");
    expect_status(C, "QUEUED", "LEVEL.SET 11 1 9");
    expect_status(C, "QUEUED", "LEVEL.GET 10 1");
    expect_status(C, "QUEUED", "PING");
    expect_status(C, "QUEUED", "ECHO hi");
    redisReply *r = exec_array(C, 5);
    expect_array_level(r->element[0], 3, 0);
    expect_array_level(r->element[1], 9, 0);
    expect_array_level(r->element[2], 3, 0);
    cr_assert_str_eq(r->element[3]->str, "PONG");
    cr_assert_str_eq(r->element[4]->str, "hi");
    freeReplyObject(r);
    expect_level(C, 3, 0, "LEVEL.GET 10 1");
    expect_level(C, 9, 0, "LEVEL.GET 11 1");
    /* the connection is back to normal: commands run at once */
    expect_level(C, 2, 0, "LEVEL.ADJUST 10 1 -1");
}

/* A transaction whose last line fails: the error names that line, and
 * the lines before it (an adjust and a hold on other levels) are undone. */
static void expect_last_line_fails(const char *last, const char *want_prefix)
{
    expect_status(C, "OK", "MULTI");
    expect_status(C, "QUEUED", "LEVEL.ADJUST 10 1 -1");
    expect_status(C, "QUEUED", "HOLD.CREATE hx 60000 11 1 2");
    expect_status(C, "QUEUED", last);
    redisReply *r = cmd(C, "EXEC");
    cr_assert_eq(r->type, REDIS_REPLY_ERROR, "'%s': type %d", last, r->type);
    cr_assert(strncmp(r->str, want_prefix, strlen(want_prefix)) == 0,
              "'%s': got '%s', want '%s...'", last, r->str, want_prefix);
    cr_assert_not_null(strstr(r->str, "; nothing was applied"), "%s", r->str);
    freeReplyObject(r);
    expect_level(C, 5, 0, "LEVEL.GET 10 1");
    expect_level(C, 5, 0, "LEVEL.GET 11 1");
    expect_error(C, "NOTFOUND", "HOLD.GET hx");
}

Test(server_multi, a_failing_last_line_changes_nothing)
{
    seed(C);
    long long rev = expect_level(C, 5, 0, "LEVEL.GET 11 1");
    /* FLOOR: the hold left 3 available on 11@1 */
    expect_last_line_fails("LEVEL.ADJUST 11 1 -4 FLOOR 0",
                           "INSUFFICIENT EXEC line 3 (LEVEL.ADJUST): available 3; "
                           "nothing was applied");
    /* IFREV: a revision the level does not have */
    expect_last_line_fails("LEVEL.SET 10 1 1 IFREV 999999999",
                           "CONFLICT EXEC line 3 (LEVEL.SET): revision ");
    expect_last_line_fails("LEVEL.ADJUST 10 1 1 IFREV 999999999",
                           "CONFLICT EXEC line 3 (LEVEL.ADJUST): revision ");
    /* NOTFOUND: no level at location 2, no such hold */
    expect_last_line_fails("LEVEL.ADJUST 10 2 -1", "NOTFOUND EXEC line 3 (LEVEL.ADJUST): ");
    expect_last_line_fails("HOLD.COMMIT nosuch", "NOTFOUND EXEC line 3 (HOLD.COMMIT): ");
    /* INSUFFICIENT hold: 10@1 has 4 after line 1 */
    expect_last_line_fails("HOLD.CREATE hy 60000 10 1 9",
                           "INSUFFICIENT EXEC line 3 (HOLD.CREATE): 10 1 4; "
                           "nothing was applied");
    expect_error(C, "NOTFOUND", "HOLD.GET hy");
    /* undone lines leave a higher revision, never a lower one */
    cr_assert_geq(expect_level(C, 5, 0, "LEVEL.GET 11 1"), rev);
    /* and the hold id is free for a real hold */
    expect_status(C, "OK", "HOLD.CREATE hx 60000 11 1 2");
    expect_level(C, 3, 2, "LEVEL.GET 11 1");
}

Test(server_multi, a_failing_first_line_skips_the_rest)
{
    seed(C);
    expect_status(C, "OK", "MULTI");
    expect_status(C, "QUEUED", "LEVEL.ADJUST 10 1 -6 FLOOR 0");
    expect_status(C, "QUEUED", "LEVEL.ADJUST 11 1 -1");
    expect_status(C, "QUEUED", "PING");
    expect_error(C,
                 "INSUFFICIENT EXEC line 1 (LEVEL.ADJUST): available 5; "
                 "nothing was applied",
                 "EXEC");
    expect_level(C, 5, 0, "LEVEL.GET 10 1");
    expect_level(C, 5, 0, "LEVEL.GET 11 1");
}

/* Each bad command is answered at once and makes EXEC refuse the whole
 * transaction, the good lines queued around it included. */
Test(server_multi, a_refused_command_aborts_the_transaction_with_execabort)
{
    const char *bad[][2] = {
        {"LEVEL.ADJUST 10 1 abc", "INVALID"},
        {"LEVEL.ADJUST 10 1 -1 CEILING 3", "INVALID"},
        {"LEVEL.SET 10 1 1000000001", "LIMIT"},
        {"HOLD.CREATE h 0 10 1 1", "INVALID"},
        {"HOLD.CREATE h 60000 10 1 1 10 1 2", "INVALID"},
        {"LEVEL.GET 10", "ERR wrong number of arguments"},
        {"NOSUCH 1", "ERR unknown command"},
        {"LOC.SET 1 name Other", "ERR Command not allowed inside a transaction: LOC.SET"},
        {"ITEM.DEL 10", "ERR Command not allowed inside a transaction: ITEM.DEL"},
        {"LEVEL.DEL 10 1", "ERR Command not allowed inside a transaction: LEVEL.DEL"},
        {"SNAPSHOT", "ERR Command not allowed inside a transaction: SNAPSHOT"},
        {"AUTH x", "ERR Command not allowed inside a transaction: AUTH"},
        {"HELLO 3", "ERR Command not allowed inside a transaction: HELLO"},
    };
    seed(C);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        expect_status(C, "OK", "MULTI");
        expect_status(C, "QUEUED", "LEVEL.ADJUST 10 1 -1");
        expect_error(C, bad[i][1], bad[i][0]);
        /* later commands are still checked and answered */
        expect_status(C, "QUEUED", "LEVEL.ADJUST 11 1 -1");
        expect_error(C, "EXECABORT Transaction discarded because of previous errors.", "EXEC");
        expect_level(C, 5, 0, "LEVEL.GET 10 1");
        expect_level(C, 5, 0, "LEVEL.GET 11 1");
    }
    redisReply *r = cmd(C, "LOC.GET 1");
    cr_assert_str_eq(r->element[3]->str, "Main");
    freeReplyObject(r);
    /* a hold may be one line of a transaction only */
    expect_status(C, "OK", "MULTI");
    expect_status(C, "QUEUED", "HOLD.CREATE h 60000 10 1 1");
    expect_error(C, "INVALID this hold is already line 1", "HOLD.COMMIT h");
    expect_error(C, "EXECABORT", "EXEC");
    expect_error(C, "NOTFOUND", "HOLD.GET h");
}

Test(server_multi, discard_drops_the_queue)
{
    seed(C);
    expect_status(C, "OK", "MULTI");
    expect_status(C, "QUEUED", "LEVEL.ADJUST 10 1 -1");
    expect_status(C, "QUEUED", "HOLD.CREATE hd 60000 11 1 1");
    expect_status(C, "OK", "DISCARD");
    expect_error(C, "ERR EXEC without MULTI", "EXEC");
    expect_level(C, 5, 0, "LEVEL.GET 10 1");
    expect_error(C, "NOTFOUND", "HOLD.GET hd");
    /* DISCARD also ends an aborted transaction */
    expect_status(C, "OK", "MULTI");
    expect_error(C, "ERR unknown command", "NOSUCH");
    expect_status(C, "OK", "DISCARD");
    expect_level(C, 4, 0, "LEVEL.ADJUST 10 1 -1");
}

Test(server_multi, nested_multi_and_stray_exec_or_discard_are_errors)
{
    seed(C);
    expect_error(C, "ERR EXEC without MULTI", "EXEC");
    expect_error(C, "ERR DISCARD without MULTI", "DISCARD");
    expect_status(C, "OK", "MULTI");
    expect_error(C, "ERR MULTI calls can not be nested", "MULTI");
    expect_status(C, "QUEUED", "LEVEL.ADJUST 10 1 -1");
    /* as in Redis, a nested MULTI does not abort the transaction */
    redisReply *r = exec_array(C, 1);
    expect_array_level(r->element[0], 4, 0);
    freeReplyObject(r);
    expect_error(C, "ERR EXEC without MULTI", "EXEC");
    /* an empty transaction answers an empty array */
    expect_status(C, "OK", "MULTI");
    r = exec_array(C, 0);
    freeReplyObject(r);
}

/* invcore has no keys to watch: optimistic concurrency is IFREV. */
Test(server_multi, watch_points_to_ifrev_and_unwatch_is_a_no_op)
{
    seed(C);
    expect_error(C,
                 "ERR WATCH is not supported: read the level's revision "
                 "and use IFREV rev on LEVEL.SET / LEVEL.ADJUST inside MULTI",
                 "WATCH level:10:1");
    expect_status(C, "OK", "UNWATCH");
    expect_status(C, "OK", "MULTI");
    expect_error(C, "ERR WATCH inside MULTI is not allowed", "WATCH k");
    expect_status(C, "QUEUED", "UNWATCH");
    redisReply *r = exec_array(C, 1);
    cr_assert_str_eq(r->element[0]->str, "OK");
    freeReplyObject(r);

    /* the IFREV way: another client's change between the read and EXEC */
    long long rev = expect_level(C, 5, 0, "LEVEL.GET 10 1");
    redisContext *other = srv_connect(&S);
    expect_status(C, "OK", "MULTI");
    expect_status(C, "QUEUED", "LEVEL.ADJUST 11 1 -1");
    expect_status(C, "QUEUED", "LEVEL.ADJUST 10 1 -1 IFREV %lld", rev);
    expect_level(other, 4, 0, "LEVEL.ADJUST 10 1 -1");
    expect_error(C, "CONFLICT EXEC line 2 (LEVEL.ADJUST): revision ", "EXEC");
    expect_level(C, 5, 0, "LEVEL.GET 11 1");
    expect_level(C, 4, 0, "LEVEL.GET 10 1");
    redisFree(other);
}

enum { MULTI_MAX = 256 }; /* INV_BATCH_LINES_MAX */

/* Sends MULTI, n x fmt, EXEC pipelined; returns EXEC's reply. Every
 * command must answer QUEUED but one, which may answer an error starting
 * with err: its index goes to *err_at (-1: none). */
static redisReply *pipeline(redisContext *c, int n, const char *err, int *err_at, const char *fmt,
                            const char *arg)
{
    redisReply *r;
    *err_at = -1;
    redisAppendCommand(c, "MULTI");
    for (int i = 0; i < n; i++)
        redisAppendCommand(c, fmt, arg);
    redisAppendCommand(c, "EXEC");
    cr_assert_eq(redisGetReply(c, (void **)&r), REDIS_OK);
    cr_assert_str_eq(r->str, "OK");
    freeReplyObject(r);
    for (int i = 0; i < n; i++) {
        cr_assert_eq(redisGetReply(c, (void **)&r), REDIS_OK, "reply %d", i);
        if (r->type == REDIS_REPLY_ERROR && *err_at < 0 && strncmp(r->str, err, strlen(err)) == 0)
            *err_at = i;
        else
            cr_assert(r->type == REDIS_REPLY_STATUS && strcmp(r->str, "QUEUED") == 0,
                      "command %d: type %d '%s'", i, r->type, r->str);
        freeReplyObject(r);
    }
    cr_assert_eq(redisGetReply(c, (void **)&r), REDIS_OK);
    return r;
}

static void expect_execabort(redisReply *r)
{
    cr_assert(r->type == REDIS_REPLY_ERROR &&
                  strcmp(r->str, "EXECABORT Transaction discarded because "
                                 "of previous errors.") == 0,
              "got type %d '%s'", r->type, r->str ? r->str : "");
    freeReplyObject(r);
}

Test(server_multi, a_queue_over_the_command_limit_aborts)
{
    int err_at;
    seed(C);
    redisReply *r = pipeline(C, MULTI_MAX, "LIMIT", &err_at, "LEVEL.ADJUST 10 1 %s", "1");
    cr_assert_eq(err_at, -1);
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(r->elements, MULTI_MAX);
    expect_array_level(r->element[MULTI_MAX - 1], 5 + MULTI_MAX, 0);
    freeReplyObject(r);
    r = pipeline(C, MULTI_MAX + 2, "LIMIT a transaction holds at most 256 commands", &err_at,
                 "LEVEL.ADJUST 10 1 %s", "1");
    cr_assert_eq(err_at, MULTI_MAX);
    expect_execabort(r);
    expect_level(C, 5 + MULTI_MAX, 0, "LEVEL.GET 10 1");
}

enum { SMALL_QUERY = 65536, BIG_ARG = 3000, BIG_FIT = 15, BIG_SENT = 30 };

/* The queued bytes count against --max-query-buffer. */
Test(server_multi, a_queue_over_the_byte_limit_aborts)
{
    const char *extra[] = {"--max-bulk", "4096", "--max-query-buffer", "65536", NULL};
    static char big[BIG_ARG + 1];
    int err_at;
    redisFree(C);
    srv_cleanup(&S);
    srv_start(&S, extra);
    C = srv_connect(&S);
    memset(big, 'x', BIG_ARG);
    /* 15 x 3000 bytes fit in 64 KiB with any bookkeeping; 30 cannot */
    redisReply *r = pipeline(C, BIG_FIT, "LIMIT", &err_at, "ECHO %s", big);
    cr_assert_eq(err_at, -1);
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    cr_assert_eq((int)r->elements, BIG_FIT);
    cr_assert_eq(r->element[BIG_FIT - 1]->len, BIG_ARG);
    freeReplyObject(r);
    r = pipeline(C, BIG_SENT, "LIMIT a transaction holds at most 65536 bytes", &err_at, "ECHO %s",
                 big);
    cr_assert(err_at >= BIG_FIT && err_at <= SMALL_QUERY / BIG_ARG, "limit met at command %d",
              err_at);
    expect_execabort(r);
    expect_status(C, "PONG", "PING");
}

/* ---- one write, as redis-py's pipeline sends it --------------------------- */

/* Appends one multibulk request (hiredis format) to buf[*len..cap). */
static void append_request(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
    char *req = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = redisvFormatCommand(&req, fmt, ap);
    va_end(ap);
    cr_assert(n > 0 && *len + (size_t)n < cap);
    memcpy(buf + *len, req, (size_t)n);
    *len += (size_t)n;
    free(req);
}

static redisReply *read_reply(int fd, redisReader *rd)
{
    void *r = NULL;
    char buf[4096];
    long long deadline = srv_now_ms() + 5000;
    while (redisReaderGetReply(rd, &r) == REDIS_OK && r == NULL) {
        int left = (int)(deadline - srv_now_ms());
        size_t n = left > 0 ? raw_recv(fd, buf, sizeof buf, 1, left) : 0;
        cr_assert_gt(n, 0, "no reply within 5 s");
        redisReaderFeed(rd, buf, n);
    }
    cr_assert_not_null(r, "unreadable reply");
    return r;
}

static void expect_raw_status(int fd, redisReader *rd, const char *want)
{
    redisReply *r = read_reply(fd, rd);
    cr_assert(r->type == REDIS_REPLY_STATUS && strcmp(r->str, want) == 0,
              "want +%s, got type %d '%s'", want, r->type, r->str ? r->str : "");
    freeReplyObject(r);
}

Test(server_multi, a_whole_transaction_in_one_write_as_redis_py_sends_it)
{
    char buf[2048];
    size_t len = 0;
    seed(C);
    int fd = raw_connect(&S);
    redisReader *rd = redisReaderCreate();
    append_request(buf, sizeof buf, &len, "MULTI");
    append_request(buf, sizeof buf, &len, "LEVEL.ADJUST 10 1 -1 FLOOR 0");
    append_request(buf, sizeof buf, &len, "LEVEL.GET 11 1");
    append_request(buf, sizeof buf, &len, "EXEC");
    /* the failing one, then a command after it on the same connection */
    append_request(buf, sizeof buf, &len, "MULTI");
    append_request(buf, sizeof buf, &len, "LEVEL.ADJUST 10 1 -1 FLOOR 0");
    append_request(buf, sizeof buf, &len, "LEVEL.ADJUST 11 1 -9 FLOOR 0");
    append_request(buf, sizeof buf, &len, "EXEC");
    append_request(buf, sizeof buf, &len, "PING");
    raw_send(fd, buf, len);

    expect_raw_status(fd, rd, "OK");
    expect_raw_status(fd, rd, "QUEUED");
    expect_raw_status(fd, rd, "QUEUED");
    redisReply *r = read_reply(fd, rd);
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(r->elements, 2);
    expect_array_level(r->element[0], 4, 0);
    expect_array_level(r->element[1], 5, 0);
    freeReplyObject(r);

    expect_raw_status(fd, rd, "OK");
    expect_raw_status(fd, rd, "QUEUED");
    expect_raw_status(fd, rd, "QUEUED");
    r = read_reply(fd, rd);
    cr_assert_eq(r->type, REDIS_REPLY_ERROR);
    cr_assert_str_eq(r->str, "INSUFFICIENT EXEC line 2 (LEVEL.ADJUST): available 5; "
                             "nothing was applied");
    freeReplyObject(r);
    expect_raw_status(fd, rd, "PONG");
    redisReaderFree(rd);
    close(fd);
    expect_level(C, 4, 0, "LEVEL.GET 10 1");
    expect_level(C, 5, 0, "LEVEL.GET 11 1");
}

/* ---- holds and reads ------------------------------------------------------ */

Test(server_multi, a_hold_and_a_level_change_in_one_exec)
{
    seed(C);
    expect_status(C, "OK", "MULTI");
    expect_status(C, "QUEUED", "HOLD.CREATE cart 60000 10 1 2 11 1 1");
    expect_status(C, "QUEUED", "LEVEL.ADJUST 10 1 -1 FLOOR 0");
    expect_status(C, "QUEUED", "LEVEL.GET 11 1");
    redisReply *r = exec_array(C, 3);
    cr_assert_str_eq(r->element[0]->str, "OK");
    expect_array_level(r->element[1], 2, 2);
    expect_array_level(r->element[2], 4, 1);
    freeReplyObject(r);
    expect_level(C, 2, 2, "LEVEL.GET 10 1");
    r = cmd(C, "HOLD.GET cart");
    cr_assert_str_eq(r->element[0]->str, "held");
    freeReplyObject(r);
    /* commit it and restock in one EXEC */
    expect_status(C, "OK", "MULTI");
    expect_status(C, "QUEUED", "HOLD.COMMIT cart");
    expect_status(C, "QUEUED", "LEVEL.ADJUST 10 1 10");
    r = exec_array(C, 2);
    cr_assert_str_eq(r->element[0]->str, "OK");
    expect_array_level(r->element[1], 12, 0);
    freeReplyObject(r);
    expect_level(C, 4, 0, "LEVEL.GET 11 1");
    r = cmd(C, "HOLD.GET cart");
    cr_assert_str_eq(r->element[0]->str, "committed");
    freeReplyObject(r);
    /* a release undone with its transaction keeps the hold */
    expect_status(C, "OK", "HOLD.CREATE keep 60000 11 1 1");
    expect_status(C, "OK", "MULTI");
    expect_status(C, "QUEUED", "HOLD.RELEASE keep");
    expect_status(C, "QUEUED", "LEVEL.ADJUST 10 1 -100 FLOOR 0");
    expect_error(C, "INSUFFICIENT EXEC line 2 (LEVEL.ADJUST)", "EXEC");
    expect_level(C, 3, 1, "LEVEL.GET 11 1");
    r = cmd(C, "HOLD.GET keep");
    cr_assert_str_eq(r->element[0]->str, "held");
    freeReplyObject(r);
}

/* Reads run after the batch, in order: they see the whole transaction,
 * even when queued before the writes. LEVEL.GET is a batch line: it sees
 * the lines before it. A read's own error is its element of the array. */
Test(server_multi, reads_inside_multi_see_the_whole_transaction)
{
    seed(C);
    expect_status(C, "OK", "MULTI");
    expect_status(C, "QUEUED", "LEVEL.LIST 10");
    expect_status(C, "QUEUED", "LEVEL.GET 10 1");
    expect_status(C, "QUEUED", "LEVEL.ADJUST 10 1 -2");
    expect_status(C, "QUEUED", "LEVEL.GET 10 1");
    expect_status(C, "QUEUED", "HOLD.GET nosuch");
    expect_status(C, "QUEUED", "ITEM.GET 10");
    expect_status(C, "QUEUED", "DBSIZE");
    redisReply *r = exec_array(C, 7);
    cr_assert_eq(r->element[0]->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(r->element[0]->elements, 1);
    cr_assert_eq(r->element[0]->element[0]->element[1]->integer, 3,
                 "LEVEL.LIST ran after the batch");
    expect_array_level(r->element[1], 5, 0);
    expect_array_level(r->element[2], 3, 0);
    expect_array_level(r->element[3], 3, 0);
    cr_assert_eq(r->element[4]->type, REDIS_REPLY_ERROR);
    cr_assert(strncmp(r->element[4]->str, "NOTFOUND", 8) == 0);
    cr_assert_eq(r->element[5]->type, REDIS_REPLY_ARRAY);
    cr_assert_str_eq(r->element[5]->element[3]->str, "A");
    cr_assert_eq(r->element[6]->integer, 2);
    freeReplyObject(r);
}

Test(server_multi, command_info_and_docs_know_the_transaction_commands)
{
    redisReply *r = cmd(C, "COMMAND INFO multi exec discard watch unwatch");
    cr_assert_eq(r->elements, 5);
    for (size_t i = 0; i < 5; i++)
        cr_assert_eq(r->element[i]->type, REDIS_REPLY_ARRAY, "entry %zu", i);
    cr_assert_str_eq(r->element[1]->element[0]->str, "exec");
    cr_assert_eq(r->element[3]->element[1]->integer, -2); /* WATCH key... */
    freeReplyObject(r);
    r = cmd(C, "COMMAND DOCS multi exec discard watch unwatch");
    cr_assert_eq(r->elements, 10);
    freeReplyObject(r);
}

/* ---- lifetime and durability ----------------------------------------------- */

/* A connection closed inside MULTI frees its queue: the ASan build of
 * invcored exits non-zero on a leak. */
Test(server_multi, a_connection_closed_inside_multi_frees_its_queue)
{
    seed(C);
    for (int k = 0; k < 4; k++) {
        redisContext *c = srv_connect(&S);
        expect_status(c, "OK", "MULTI");
        expect_status(c, "QUEUED", "LEVEL.ADJUST 10 1 -1");
        expect_status(c, "QUEUED", "HOLD.CREATE open%d 60000 11 1 1", k);
        expect_status(c, "QUEUED", "ECHO %s", "payload");
        redisFree(c);
    }
    /* the other connection still serves, nothing was applied */
    expect_level(C, 5, 0, "LEVEL.GET 10 1");
    expect_level(C, 5, 0, "LEVEL.GET 11 1");
    redisFree(C);
    C = NULL;
    cr_assert_eq(srv_stop(&S), 0, "invcored exit status (a leak under ASan?)");
}

Test(server_multi, an_acknowledged_exec_survives_a_crash)
{
    if (!S.durable) {
        teardown(); /* a skipped test gets no .fini: stop the server now */
        cr_skip_test("INVCORE_SERVER_TEST_MEMORY: nothing survives a crash");
    }
    seed(C);
    expect_status(C, "OK", "MULTI");
    expect_status(C, "QUEUED", "LEVEL.ADJUST 10 1 -1");
    expect_status(C, "QUEUED", "HOLD.CREATE crash 600000 11 1 2");
    expect_status(C, "QUEUED", "LEVEL.SET 11 1 7");
    redisReply *r = exec_array(C, 3);
    freeReplyObject(r);
    /* a failed one after it must leave no trace either */
    expect_status(C, "OK", "MULTI");
    expect_status(C, "QUEUED", "LEVEL.ADJUST 10 1 -1");
    expect_status(C, "QUEUED", "HOLD.COMMIT nosuch");
    expect_error(C, "NOTFOUND EXEC line 2", "EXEC");
    redisFree(C);
    C = NULL;
    kill(S.pid, SIGKILL);
    waitpid(S.pid, NULL, 0);
    S.pid = 0;
    cr_assert_eq(srv_spawn(&S, 1, NULL), 0, "restart on the same data dir");
    C = srv_connect(&S);
    expect_level(C, 4, 0, "LEVEL.GET 10 1");
    expect_level(C, 7, 2, "LEVEL.GET 11 1");
    r = cmd(C, "HOLD.GET crash");
    cr_assert_str_eq(r->element[0]->str, "held");
    freeReplyObject(r);
}

/* ---- 16 clients racing ------------------------------------------------------ */

/* Each transaction takes one unit of level A (item 10) and one of B (item
 * 11), FLOOR 0. B has RACE_STOCK, A RACE_EXTRA more: once B is empty, every
 * EXEC applies A's line and then fails on B's, which must undo A's. */
enum { RACE_CLIENTS = 16, RACE_STOCK = 200, RACE_EXTRA = 50, RACE_TRIES_MAX = RACE_STOCK + 1 };

typedef struct {
    redisContext *c; /* connected by the test's thread */
    int ok, refused, other;
} racer;

static void *racer_main(void *arg)
{
    racer *b = arg;
    redisContext *c = b->c;
    for (int i = 0; i < RACE_TRIES_MAX; i++) {
        redisReply *r[4] = {NULL, NULL, NULL, NULL};
        int done = 1;
        redisAppendCommand(c, "MULTI");
        redisAppendCommand(c, "LEVEL.ADJUST 10 1 -1 FLOOR 0");
        redisAppendCommand(c, "LEVEL.ADJUST 11 1 -1 FLOOR 0");
        redisAppendCommand(c, "EXEC");
        for (int k = 0; k < 4; k++)
            if (redisGetReply(c, (void **)&r[k]) != REDIS_OK)
                r[k] = NULL;
        if (r[3] == NULL) {
            b->other++;
        } else if (r[3]->type == REDIS_REPLY_ARRAY && r[3]->elements == 2 &&
                   r[3]->element[0]->element[0]->integer >= 0 &&
                   r[3]->element[1]->element[0]->integer >= 0) {
            b->ok++;
            done = 0;
        } else if (r[3]->type == REDIS_REPLY_ERROR &&
                   strcmp(r[3]->str, "INSUFFICIENT EXEC line 2 (LEVEL.ADJUST): "
                                     "available 0; nothing was applied") == 0) {
            b->refused++;
        } else {
            b->other++;
        }
        for (int k = 0; k < 4; k++)
            if (r[k])
                freeReplyObject(r[k]);
        if (done)
            break;
    }
    return NULL;
}

Test(server_multi, racing_transactions_never_half_apply)
{
    const char *extra[] = {"--threads", "2", NULL};
    redisFree(C);
    srv_cleanup(&S);
    srv_start(&S, extra);
    C = srv_connect(&S);
    seed(C);
    expect_level(C, RACE_STOCK + RACE_EXTRA, 0, "LEVEL.SET 10 1 %d", RACE_STOCK + RACE_EXTRA);
    expect_level(C, RACE_STOCK, 0, "LEVEL.SET 11 1 %d", RACE_STOCK);
    pthread_t th[RACE_CLIENTS];
    racer b[RACE_CLIENTS];
    for (int i = 0; i < RACE_CLIENTS; i++) {
        memset(&b[i], 0, sizeof b[i]);
        b[i].c = srv_connect(&S);
    }
    for (int i = 0; i < RACE_CLIENTS; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, racer_main, &b[i]), 0);
    int ok = 0, refused = 0, other = 0;
    for (int i = 0; i < RACE_CLIENTS; i++) {
        pthread_join(th[i], NULL);
        redisFree(b[i].c);
        ok += b[i].ok;
        refused += b[i].refused;
        other += b[i].other;
    }
    cr_assert_eq(other, 0, "unexpected replies");
    cr_assert_eq(refused, RACE_CLIENTS, "every client ends refused");
    cr_assert_eq(ok, RACE_STOCK, "%d transactions applied for a stock of %d", ok, RACE_STOCK);
    /* both fell by exactly the number of successful EXECs */
    expect_level(C, RACE_STOCK + RACE_EXTRA - ok, 0, "LEVEL.GET 10 1");
    expect_level(C, RACE_STOCK - ok, 0, "LEVEL.GET 11 1");
}
