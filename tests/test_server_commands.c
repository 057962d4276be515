/*
 * test_server_commands.c — integration: every command of PROTOCOL.md, its
 * success and error paths, over a real socket against build/invcored
 * (started per test on a free loopback port; see test_server_harness.h).
 */
#include "test_server_harness.h"

static void setup(void)
{
    srv_suite_start(NULL);
}
static void teardown(void)
{
    srv_suite_stop();
}

/* Upper bound of the wait for an expired hold's sweep (a bound on the
 * test's run time, not an assertion on the sweep's speed). */
#define EXPIRY_WAIT_MS 10000

TestSuite(server_cmd, .init = setup, .fini = teardown, .timeout = 30);

static void seed(void)
{
    expect_status(C, "OK", "LOC.SET 1 name Main active 1 priority 0");
    expect_status(C, "OK", "LOC.SET 2 name Second");
    expect_status(C, "OK", "ITEM.SET 10 sku SKU-10 variant v10 product p1");
    expect_status(C, "OK", "ITEM.SET 11 sku SKU-11 variant v11 product p1");
}

Test(server_cmd, connection_commands_answer)
{
    redisReply *r = cmd(C, "PING");
    cr_assert_str_eq(r->str, "PONG");
    freeReplyObject(r);
    r = cmd(C, "ping hello");
    cr_assert_eq(r->type, REDIS_REPLY_STRING);
    cr_assert_str_eq(r->str, "hello");
    freeReplyObject(r);
    r = cmd(C, "ECHO %b", "a\0b", (size_t)3);
    cr_assert_eq(r->len, 3);
    cr_assert(memcmp(r->str, "a\0b", 3) == 0);
    freeReplyObject(r);
    expect_error(C, "ERR unknown command", "NOSUCH 1 2");
    expect_error(C, "ERR wrong number of arguments for 'echo' command", "ECHO");
    expect_error(C, "ERR wrong number of arguments for 'level.get' command", "LEVEL.GET 1");
    expect_error(C, "ERR AUTH <password> called without", "AUTH secret");
    cr_assert_eq(expect_int(C, "DBSIZE"), 0);
    expect_status(C, "OK", "QUIT");
}

/* A connection remembers its last command name (command.c's memo): a name
 * of the same length with other bytes, or the same in other case, must
 * still be looked up as itself. */
Test(server_cmd, a_repeated_name_and_its_neighbours_are_each_looked_up)
{
    redisContext *c = srv_connect(&S);
    for (int i = 0; i < 3; i++) {
        redisReply *r = cmd(c, "PING");
        cr_assert_str_eq(r->str, "PONG");
        freeReplyObject(r);
    }
    expect_error(c, "ERR unknown command 'PINX'", "PINX");
    redisReply *r = cmd(c, "pInG");
    cr_assert_str_eq(r->str, "PONG");
    freeReplyObject(r);
    r = cmd(c, "ECHO abcd");
    cr_assert_str_eq(r->str, "abcd");
    freeReplyObject(r);
    expect_error(c, "ERR unknown command 'ECHP'", "ECHP abcd");
    cr_assert_eq(expect_int(c, "DBSIZE"), 0);
    expect_error(c, "ERR wrong number of arguments for 'echo' command", "ECHO");
    redisFree(c);
}

Test(server_cmd, hello_switches_protocol)
{
    /* hiredis 0.14 has no RESP3: check the RESP3 bytes on a raw socket */
    int fd = raw_connect(&S);
    char buf[1024] = {0};
    raw_send(fd, "HELLO 3\r\n", 9);
    size_t n = raw_recv(fd, buf, sizeof buf - 1, 40, 2000);
    cr_assert_geq(n, 4);
    const char *want = "%7\r\n$6\r\nserver\r\n$7\r\ninvcore\r\n";
    cr_assert(strncmp(buf, want, strlen(want)) == 0, "got %s", buf);
    /* drain the rest of the HELLO map before the next request */
    raw_recv(fd, buf, sizeof buf - 1, sizeof buf - 1, 100);
    raw_send(fd, "CONFIG GET appendonly\r\n", 23);
    memset(buf, 0, sizeof buf);
    raw_recv(fd, buf, sizeof buf - 1, 4, 2000);
    cr_assert(buf[0] == '%', "RESP3 map, got %s", buf);
    close(fd);
    expect_error(C, "NOPROTO unsupported protocol version", "HELLO 4");
    redisReply *r = cmd(C, "HELLO 2");
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(r->elements, 14);
    cr_assert_str_eq(r->element[0]->str, "server");
    cr_assert_str_eq(r->element[1]->str, "invcore");
    freeReplyObject(r);
}

Test(server_cmd, info_has_every_section)
{
    expect_status(C, "PONG", "PING");
    redisReply *r = cmd(C, "INFO");
    cr_assert_eq(r->type, REDIS_REPLY_STRING);
    const char *want[] = {"# Server",
                          "invcore_version:",
                          "uptime_in_seconds:",
                          "threads:",
                          "tcp_port:",
                          "# Clients",
                          "connected_clients:1",
                          "rejected_connections:",
                          "auth_failures:",
                          "# Stats",
                          "cmdstat_ping:calls=1",
                          "total_commands_processed:",
                          "# Latencystats",
                          "latency_percentiles_usec_ping:p50=",
                          "# Memory",
                          "table_bytes:",
                          "# Journal",
                          "fsyncs:",
                          "# Holds",
                          "holds_active:"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert_not_null(strstr(r->str, want[i]), "INFO lacks %s", want[i]);
    freeReplyObject(r);
    r = cmd(C, "INFO clients");
    cr_assert_not_null(strstr(r->str, "# Clients"));
    cr_assert_null(strstr(r->str, "# Server"));
    freeReplyObject(r);
}

Test(server_cmd, command_and_config_answer_redis_tools)
{
    long long n = expect_int(C, "COMMAND COUNT");
    cr_assert_geq(n, 31);
    redisReply *r = cmd(C, "COMMAND");
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    cr_assert_eq((long long)r->elements, n);
    freeReplyObject(r);
    r = cmd(C, "COMMAND DOCS");
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    cr_assert_eq((long long)r->elements, 2 * n);
    freeReplyObject(r);
    r = cmd(C, "COMMAND INFO level.adjust nosuch");
    cr_assert_eq(r->elements, 2);
    cr_assert_eq(r->element[0]->element[1]->integer, -4);
    cr_assert_eq(r->element[1]->type, REDIS_REPLY_NIL);
    freeReplyObject(r);
    r = cmd(C, "CONFIG GET save");
    cr_assert_eq(r->elements, 2);
    cr_assert_str_eq(r->element[0]->str, "save");
    cr_assert_str_eq(r->element[1]->str, "");
    freeReplyObject(r);
    r = cmd(C, "CONFIG GET appendonly");
    cr_assert_eq(r->elements, 2);
    cr_assert_str_eq(r->element[1]->str, S.durable ? "yes" : "no");
    freeReplyObject(r);
    r = cmd(C, "CONFIG GET *");
    cr_assert_geq(r->elements, 20);
    freeReplyObject(r);
    r = cmd(C, "CONFIG GET app*");
    cr_assert_eq(r->elements, 4);
    freeReplyObject(r);
    expect_error(C, "ERR", "CONFIG SET save x");
    expect_error(C, "ERR wrong number", "CONFIG");
}

Test(server_cmd, snapshot_needs_a_data_dir)
{
    if (S.durable)
        expect_status(C, "OK", "SNAPSHOT");
    else
        expect_error(C, "INVALID", "SNAPSHOT");
}

Test(server_cmd, locations_set_get_list_default)
{
    seed();
    redisReply *r = cmd(C, "LOC.GET 1");
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(r->elements, 32);
    cr_assert_str_eq(r->element[0]->str, "id");
    cr_assert_str_eq(r->element[1]->str, "1");
    cr_assert_str_eq(r->element[3]->str, "Main");
    int saw_default = 0;
    for (size_t i = 0; i + 1 < r->elements; i += 2)
        if (strcmp(r->element[i]->str, "default") == 0) {
            saw_default = 1;
            cr_assert_eq(r->element[i + 1]->integer, 1, "first is default");
        }
    cr_assert(saw_default);
    freeReplyObject(r);
    r = cmd(C, "LOC.DEFAULT");
    cr_assert_str_eq(r->str, "1");
    freeReplyObject(r);
    expect_status(C, "OK", "LOC.DEFAULT 2");
    r = cmd(C, "LOC.DEFAULT");
    cr_assert_str_eq(r->str, "2");
    freeReplyObject(r);
    expect_error(C, "NOTFOUND", "LOC.DEFAULT 99");
    expect_error(C, "NOTFOUND", "LOC.GET 99");
    expect_error(C, "INVALID", "LOC.GET abc");
    expect_error(C, "INVALID", "LOC.SET 3 color red");
    expect_error(C, "INVALID", "LOC.SET 3 active maybe");
    expect_error(C, "ERR wrong number", "LOC.SET 3 name");
    char longname[400];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    expect_error(C, "INVALID", "LOC.SET 3 name %s", longname);
    /* full u64 range, leading zeros */
    expect_status(C, "OK", "LOC.SET 18446744073709551615 name Max");
    expect_status(C, "OK", "LOC.SET 0 name Zero");
    r = cmd(C, "LOC.GET 00000000018446744073709551615");
    cr_assert_str_eq(r->element[1]->str, "18446744073709551615");
    freeReplyObject(r);
    expect_error(C, "INVALID", "LOC.GET 18446744073709551616");
    expect_error(C, "INVALID", "LOC.GET -1");
    /* listing: pages until cursor 0, every location exactly once */
    size_t seen = 0;
    char cursor[32] = "0";
    for (int guard = 0; guard < 100; guard++) {
        r = cmd(C, "LOC.LIST CURSOR %s COUNT 1", cursor);
        cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
        cr_assert_eq(r->elements, 2);
        seen += r->element[1]->elements;
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        freeReplyObject(r);
        if (strcmp(cursor, "0") == 0)
            break;
    }
    cr_assert_eq(seen, 4);
    expect_error(C, "LIMIT", "LOC.LIST COUNT 100000");
    expect_error(C, "INVALID", "LOC.LIST SIZE 3");
    expect_error(C, "ERR wrong number", "LOC.LIST COUNT");
}

Test(server_cmd, items_set_get_lookup_list_delete)
{
    seed();
    expect_error(C, "EXISTS", "ITEM.SET 12 sku SKU-10");
    redisReply *r = cmd(C, "ITEM.GET 10");
    cr_assert_eq(r->elements, 26);
    cr_assert_str_eq(r->element[1]->str, "10");
    cr_assert_str_eq(r->element[3]->str, "SKU-10");
    freeReplyObject(r);
    r = cmd(C, "ITEM.MGET 10 99 11");
    cr_assert_eq(r->elements, 3);
    cr_assert_eq(r->element[0]->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(r->element[1]->type, REDIS_REPLY_NIL);
    freeReplyObject(r);
    r = cmd(C, "ITEM.BYSKU SKU-11");
    cr_assert_str_eq(r->str, "11");
    freeReplyObject(r);
    expect_error(C, "NOTFOUND", "ITEM.BYSKU nope");
    r = cmd(C, "ITEM.BYVARIANT v10 nope v11");
    cr_assert_eq(r->elements, 2);
    cr_assert_str_eq(r->element[0]->element[0]->str, "v10");
    cr_assert_str_eq(r->element[0]->element[1]->str, "10");
    cr_assert_str_eq(r->element[1]->element[1]->str, "11");
    freeReplyObject(r);
    r = cmd(C, "ITEM.LIST COUNT 1000");
    cr_assert_str_eq(r->element[0]->str, "0");
    cr_assert_eq(r->element[1]->elements, 2);
    freeReplyObject(r);
    expect_status(C, "OK", "ITEM.SET 10 country_hs_codes CA:1234567890,US:620342");
    r = cmd(C, "ITEM.GET 10");
    cr_assert_str_eq(r->element[20]->str, "country_hs_codes");
    cr_assert_str_eq(r->element[21]->str, "CA:1234567890,US:620342");
    freeReplyObject(r);
    expect_error(C, "INVALID", "ITEM.SET 10 country_hs_codes CA:1234567890,CA:620342");
    expect_error(C, "INVALID", "ITEM.SET 12 tracked 2");
    expect_error(C, "INVALID", "ITEM.SET 12 weight 2");
    expect_error(C, "INVALID", "ITEM.GET 1x");
    expect_error(C, "NOTFOUND", "ITEM.GET 99");
    expect_status(C, "OK", "ITEM.DEL 11");
    expect_error(C, "NOTFOUND", "ITEM.GET 11");
    expect_error(C, "NOTFOUND", "ITEM.DEL 11");
    /* ITEM.MGET limit: 251 ids */
    const char *argv[252];
    argv[0] = "ITEM.MGET";
    for (int i = 1; i < 252; i++)
        argv[i] = "10";
    r = redisCommandArgv(C, 252, argv, NULL);
    cr_assert(r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "LIMIT", 5) == 0);
    freeReplyObject(r);
    r = redisCommandArgv(C, 251, argv, NULL);
    cr_assert(r && r->type == REDIS_REPLY_ARRAY && r->elements == 250);
    freeReplyObject(r);
}

Test(server_cmd, levels_set_adjust_get_list_delete)
{
    seed();
    long long rev = expect_level(C, 5, 0, "LEVEL.SET 10 1 5");
    expect_error(C, "CONFLICT revision", "LEVEL.SET 10 1 7 IFREV %lld", rev + 1000);
    long long rev2 = expect_level(C, 7, 0, "LEVEL.SET 10 1 7 IFREV %lld", rev);
    cr_assert_gt(rev2, rev);
    long long rev3 = expect_level(C, 6, 0, "LEVEL.ADJUST 10 1 -1 FLOOR 0");
    cr_assert_gt(rev3, rev2);
    expect_level(C, 6, 0, "level.get 000010 0001");
    expect_error(C, "INSUFFICIENT available 6", "LEVEL.ADJUST 10 1 -7 FLOOR 0");
    expect_level(C, 6, 0, "LEVEL.GET 10 1");
    expect_error(C, "CONFLICT revision", "LEVEL.ADJUST 10 1 1 IFREV 1");
    expect_level(C, 7, 0, "LEVEL.ADJUST 10 1 1 IFREV %lld", rev3);
    /* the default oversell policy (deny) stops a floor-less decrement at 0 */
    expect_error(C, "INSUFFICIENT available 7", "LEVEL.ADJUST 10 1 -10");
    expect_status(C, "OK", "LEVEL.POLICY 10 1 CONTINUE");
    expect_level(C, -3, 0, "LEVEL.ADJUST 10 1 -10");
    expect_error(C, "NOTFOUND", "LEVEL.SET 99 1 5");
    expect_error(C, "NOTFOUND", "LEVEL.SET 10 99 5");
    expect_error(C, "NOTFOUND", "LEVEL.GET 10 2");
    expect_error(C, "LIMIT", "LEVEL.SET 10 1 1000000001");
    expect_error(C, "INVALID", "LEVEL.SET 10 1 ten");
    expect_error(C, "INVALID", "LEVEL.ADJUST 10 1 1 CEILING 3");
    expect_error(C, "ERR wrong number", "LEVEL.ADJUST 10 1 1 FLOOR");
    expect_error(C, "ERR wrong number", "LEVEL.SET 10 1");
    expect_level(C, 4, 0, "LEVEL.SET 10 2 4");
    redisReply *r = cmd(C, "LEVEL.LIST 10");
    cr_assert_eq(r->elements, 2);
    cr_assert_eq(r->element[0]->elements, 4);
    cr_assert_eq(r->element[0]->element[0]->type, REDIS_REPLY_STRING);
    freeReplyObject(r);
    cr_assert_eq(expect_int(C, "DBSIZE"), 2);
    expect_status(C, "OK", "LEVEL.DEL 10 2");
    expect_error(C, "NOTFOUND", "LEVEL.GET 10 2");
    cr_assert_eq(expect_int(C, "DBSIZE"), 1);
}

Test(server_cmd, product_inventory_groups_by_variant)
{
    seed();
    expect_level(C, 5, 0, "LEVEL.SET 10 1 5");
    expect_level(C, 3, 0, "LEVEL.SET 10 2 3");
    expect_level(C, 2, 0, "LEVEL.SET 11 1 2");
    redisReply *r = cmd(C, "PRODUCT.INVENTORY p1");
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY, "type %d %s", r->type, r->str ? r->str : "");
    cr_assert_eq(r->element[0]->integer, 10);
    cr_assert_eq(r->element[1]->elements, 2);
    redisReply *g = r->element[1]->element[0];
    cr_assert_str_eq(g->element[0]->str, "v10");
    cr_assert_str_eq(g->element[1]->str, "10");
    cr_assert_eq(g->element[2]->elements, 2);
    freeReplyObject(r);
    r = cmd(C, "PRODUCT.INVENTORY p1 LOC 2");
    cr_assert_eq(r->element[0]->integer, 3);
    freeReplyObject(r);
    expect_error(C, "INVALID", "PRODUCT.INVENTORY p1 AT 2");
    expect_error(C, "ERR wrong number", "PRODUCT.INVENTORY p1 LOC");
}

Test(server_cmd, holds_reserve_commit_release)
{
    seed();
    expect_level(C, 5, 0, "LEVEL.SET 10 1 5");
    expect_level(C, 5, 0, "LEVEL.SET 11 1 5");
    expect_status(C, "OK", "HOLD.CREATE h1 60000 10 1 2 11 1 1");
    expect_status(C, "OK", "HOLD.CREATE h1 60000 10 1 2 11 1 1");
    expect_level(C, 3, 2, "LEVEL.GET 10 1");
    expect_error(C, "CONFLICT", "HOLD.CREATE h1 60000 10 1 3");
    expect_error(C, "INSUFFICIENT 10 1 3", "HOLD.CREATE h2 60000 11 1 1 10 1 4");
    expect_level(C, 4, 1, "LEVEL.GET 11 1");
    redisReply *r = cmd(C, "HOLD.GET h1");
    cr_assert_eq(r->elements, 6); /* state, expiry, lines, buyer, order, created */
    cr_assert_str_eq(r->element[0]->str, "held");
    cr_assert_eq(r->element[1]->type, REDIS_REPLY_INTEGER);
    cr_assert_eq(r->element[2]->elements, 2);
    cr_assert_str_eq(r->element[2]->element[0]->element[0]->str, "10");
    cr_assert_eq(r->element[2]->element[0]->element[2]->integer, 2);
    freeReplyObject(r);
    expect_status(C, "OK", "HOLD.COMMIT h1");
    expect_status(C, "OK", "HOLD.COMMIT h1");
    expect_level(C, 3, 0, "LEVEL.GET 10 1");
    expect_status(C, "OK", "HOLD.CREATE h3 60000 10 1 1");
    expect_status(C, "OK", "HOLD.RELEASE h3");
    expect_status(C, "OK", "HOLD.RELEASE h3");
    expect_level(C, 3, 0, "LEVEL.GET 10 1");
    expect_error(C, "NOTFOUND", "HOLD.COMMIT nope");
    expect_error(C, "NOTFOUND", "HOLD.GET nope");
    expect_error(C, "ERR wrong number", "HOLD.CREATE h4 60000 10 1");
    expect_error(C, "INVALID", "HOLD.CREATE h4 soon 10 1 1");
    char longid[80];
    memset(longid, 'h', sizeof longid - 1);
    longid[sizeof longid - 1] = 0;
    expect_error(C, "INVALID", "HOLD.CREATE %s 1000 10 1 1", longid);
}

Test(server_cmd, hold_expires_and_commit_is_notfound)
{
    seed();
    expect_level(C, 5, 0, "LEVEL.SET 10 1 5");
    expect_status(C, "OK", "HOLD.CREATE hx 50 10 1 2");
    /* bounded wait for the sweep to give the 2 units back (no timing
     * assertion: only that it happens) */
    long long reserved = 2;
    for (long long end = srv_now_ms() + EXPIRY_WAIT_MS; reserved != 0 && srv_now_ms() < end;) {
        redisReply *r = cmd(C, "LEVEL.GET 10 1");
        cr_assert(r->type == REDIS_REPLY_ARRAY && r->elements == 3);
        reserved = r->element[1]->integer;
        freeReplyObject(r);
        if (reserved != 0)
            srv_sleep_ms(10);
    }
    expect_level(C, 5, 0, "LEVEL.GET 10 1");
    expect_error(C, "NOTFOUND", "HOLD.COMMIT hx");
}
