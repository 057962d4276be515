/*
 * test_server_repl_cmds.c — the cluster commands' bad input, on a single
 * node (test_repl_server.c runs the cluster itself): the snapshot side
 * channel refuses any name but a snapshot's and any count out of range,
 * SENTINEL answers a single node as one without a leader, and the
 * cluster flags are refused unless given together with a data directory.
 */
#include "server/config.h"
#include "test_server_harness.h"

#define CHUNK_MAX 1048576 /* REPL_SNAPSHOT_CHUNK_BYTES */

static void up(void)
{
    srv_suite_start(NULL);
}

TestSuite(server_repl_cmds, .init = up, .fini = srv_suite_stop);

Test(server_repl_cmds, the_snapshot_side_channel_reads_only_snapshots)
{
    expect_error(C, "NOTFOUND", "REPL.SNAPSHOT"); /* none taken yet */
    expect_status(C, "OK", "LOC.SET 1 name main");
    expect_status(C, "OK", "SNAPSHOT");
    redisReply *r = cmd(C, "REPL.SNAPSHOT");
    cr_assert(r->type == REDIS_REPLY_ARRAY && r->elements == 3, "REPL.SNAPSHOT: type %d", r->type);
    char name[64];
    snprintf(name, sizeof name, "%s", r->element[0]->str);
    long long size = r->element[1]->integer;
    cr_assert_eq(strlen(name), 21, "a snapshot's name: %s", name);
    cr_assert_gt(size, 0);
    freeReplyObject(r);
    r = cmd(C, "REPL.SNAPSHOT.READ %s 0 %d", name, CHUNK_MAX);
    cr_assert(r->type == REDIS_REPLY_STRING && (long long)r->len == size,
              "the whole file: %zu of %lld bytes", r->len, size);
    freeReplyObject(r);
    r = cmd(C, "REPL.SNAPSHOT.READ %s %lld 10", name, size);
    cr_assert(r->type == REDIS_REPLY_STRING && r->len == 0, "at its end: empty");
    freeReplyObject(r);
    const char *bad[] = {"../server.log",          "LOCK",
                         "0000000000000008.jnl",   "000000000000000G.snap",
                         "00000000000000080.snap", "/etc/passwd"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_error(C, "INVALID", "REPL.SNAPSHOT.READ %s 0 10", bad[i]);
    expect_error(C, "INVALID", "REPL.SNAPSHOT.READ %s 0 0", name);
    expect_error(C, "INVALID", "REPL.SNAPSHOT.READ %s 0 %d", name, CHUNK_MAX + 1);
    expect_error(C, "INVALID", "REPL.SNAPSHOT.READ %s -1 10", name);
    expect_error(C, "NOTFOUND", "REPL.SNAPSHOT.READ 00000000000000a8.snap 0 10");
}

Test(server_repl_cmds, a_single_node_is_a_master_with_no_leader_to_name)
{
    redisReply *r = cmd(C, "ROLE");
    cr_assert(r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
              strcmp(r->element[0]->str, "master") == 0);
    freeReplyObject(r);
    r = cmd(C, "SENTINEL GET-MASTER-ADDR-BY-NAME shop");
    cr_assert_eq(r->type, REDIS_REPLY_NIL);
    freeReplyObject(r);
    r = cmd(C, "SENTINEL MASTERS");
    cr_assert(r->type == REDIS_REPLY_ARRAY && r->elements == 0);
    freeReplyObject(r);
    expect_error(C, "ERR No such master", "SENTINEL MASTER shop");
    expect_error(C, "ERR unknown SENTINEL subcommand", "SENTINEL FAILOVER shop");
    expect_error(C, "ERR wrong number of arguments", "SENTINEL MASTER a b c");
    r = cmd(C, "STATE.DIGEST");
    cr_assert_eq(r->type, REDIS_REPLY_STRING);
    freeReplyObject(r);
}

/* config_parse on argv (NULL-terminated): its error, "" when accepted. */
static const char *parse(const char *const *argv, char *err, size_t cap)
{
    server_config c;
    config_defaults(&c);
    int argc = 0;
    while (argv[argc])
        argc++;
    err[0] = '\0';
    if (config_parse(&c, argc, (char **)argv, err, cap) == 0)
        err[0] = '\0';
    return err;
}

Test(server_repl_cmds, the_cluster_flags_go_together_and_need_a_data_directory)
{
    char err[256];
    const char *alone[] = {"invcored", "--data-dir", "/tmp/x", "--cluster", "shop", NULL};
    cr_assert(strstr(parse(alone, err, sizeof err), "go together"), "%s", err);
    const char *memory[] = {"invcored",   "--in-memory", "--cluster", "shop", "--etcd",
                            "http://e:1", "--advertise", "h:1",       NULL};
    cr_assert(strstr(parse(memory, err, sizeof err), "needs a data dir"), "%s", err);
    const char *ttl[] = {"invcored", "--data-dir", "/tmp/x", "--lease-ttl-ms", "2000", NULL};
    cr_assert(strstr(parse(ttl, err, sizeof err), "needs --cluster"), "%s", err);
    const char *short_ttl[] = {"invcored", "--data-dir",     "/tmp/x",     "--cluster",
                               "shop",     "--etcd",         "http://e:1", "--advertise",
                               "h:1",      "--lease-ttl-ms", "999",        NULL};
    cr_assert(strstr(parse(short_ttl, err, sizeof err), "--lease-ttl-ms"), "%s", err);
    const char *empty[] = {"invcored", "--data-dir", "/tmp/x", "--cluster", "", NULL};
    cr_assert(strstr(parse(empty, err, sizeof err), "empty"), "%s", err);
    const char *ok[] = {"invcored", "--data-dir", "/tmp/x",      "--cluster", "shop",
                        "--etcd",   "http://e:1", "--advertise", "h:1",       NULL};
    cr_assert_str_eq(parse(ok, err, sizeof err), "", "all three with a data dir: accepted");
    /* --repl-auth: with --cluster only, 1..SERVER_REQUIREPASS_MAX bytes */
    const char *auth_alone[] = {"invcored", "--data-dir", "/tmp/x", "--repl-auth", "t", NULL};
    cr_assert(strstr(parse(auth_alone, err, sizeof err), "--repl-auth needs --cluster"), "%s", err);
    static char long_token[SERVER_REQUIREPASS_MAX + 2];
    memset(long_token, 'x', SERVER_REQUIREPASS_MAX + 1);
    const char *bad_auth[][2] = {{"--repl-auth", ""}, {"--repl-auth", long_token}};
    for (size_t i = 0; i < 2; i++) {
        const char *argv[] = {"invcored", "--data-dir",   "/tmp/x",       "--cluster",
                              "shop",     "--etcd",       "http://e:1",   "--advertise",
                              "h:1",      bad_auth[i][0], bad_auth[i][1], NULL};
        cr_assert(strstr(parse(argv, err, sizeof err), "--repl-auth: expected a token"),
                  "case %zu: %s", i, err);
    }
    const char *auth_ok[] = {"invcored", "--data-dir",  "/tmp/x",      "--cluster",
                             "shop",     "--etcd",      "http://e:1",  "--advertise",
                             "h:1",      "--repl-auth", "admin-token", NULL};
    cr_assert_str_eq(parse(auth_ok, err, sizeof err), "", "--repl-auth with the cluster: accepted");
}
