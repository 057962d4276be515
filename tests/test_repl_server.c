/*
 * test_repl_server.c — integration: invcored's cluster mode (issue #16,
 * docs/REPLICATION.md) with real processes: a 3-member etcd cluster on
 * loopback (etcd_harness.h), two invcored nodes (the real binary, with
 * --fsync always), hiredis clients. The leader is killed with SIGKILL
 * under a 64-client never-oversell load, round after round; an etcd
 * member is killed; the leader is cut off from etcd by relays the test
 * controls (relay.h).
 *
 * What is asserted: every change a client saw acknowledged is in the new
 * leader's state, no level goes below zero, the units sold equal the
 * stock once the sale ends, and the nodes converge to the same state
 * (STATE.DIGEST). Waits are bounded polls of a condition; failover time is
 * measured and printed (make failover-test reports its distribution), and
 * asserted only as a generous "it happened at all" bound.
 */
#include "relay.h"
#include "repl_harness.h"
#include "test_http_client.h"

/* Leader kills in a_killed_leader_... (fewer under a sanitizer's stress
 * scale, at least 2); make failover-test runs 200. */
#define ROUNDS 10
#define ROUNDS_MIN 2

static eh_cluster g_cl;
static node g_nodes[NODES]; /* every test's nodes: .fini stops them even after a failure */

static void cluster_up(void)
{
    memset(g_nodes, 0, sizeof g_nodes);
    eh_start(&g_cl);
}

static void cluster_down(void)
{
    nodes_down(g_nodes, NODES);
    eh_stop(&g_cl);
}

/* Two nodes on g_cl, the catalog, and item with qty units at LOC. */
static void two_with_stock(node *nodes, node **leader, node **standby, long long item, int qty)
{
    two_nodes(nodes, g_cl.endpoints, g_cl.endpoints);
    int li = wait_leader(nodes, NODES);
    *leader = &nodes[li];
    *standby = &nodes[1 - li];
    catalog(*leader);
    must(*leader, "ITEM.SET %lld sku item-%lld", item, item);
    must(*leader, "LEVEL.SET %lld %d %d", item, LOC, qty);
}

/* ---- tests ------------------------------------------------------------------------ */

Test(repl_server, acknowledged_writes_are_readable_on_the_standby, .init = cluster_up,
     .fini = cluster_down, .timeout = 120)
{
    node *nodes = g_nodes, *leader, *standby;
    two_with_stock(nodes, &leader, &standby, 7, 50);
    must(leader, "LEVEL.ADJUST 7 %d -8 FLOOR 0", LOC);
    must(leader, "HOLD.CREATE cart-1 60000 7 %d 2", LOC);
    wait_caught_up(leader, standby);
    cr_assert_eq(available(standby, 7), 40, "the standby reads what the leader acknowledged");
    assert_same_state(leader, standby);
    redisReply *r = ask(standby, "LEVEL.ADJUST 7 %d -1 FLOOR 0", LOC);
    cr_assert(r && r->type == REDIS_REPLY_ERROR &&
                  strcmp(r->str, "READONLY You can't write against a read only replica.") == 0,
              "a write to the standby: %s", r ? r->str : "no answer");
    freeReplyObject(r);
    /* The standby learns the leader's address from the election key, apart
     * from the log it follows: caught up does not imply it knows it yet. */
    uint64_t deadline = tu_deadline_ms(WAIT_MS);
    while ((r = ask(standby, "SENTINEL GET-MASTER-ADDR-BY-NAME %s", CLUSTER)) != NULL &&
           r->type == REDIS_REPLY_NIL) {
        freeReplyObject(r);
        cr_assert(!tu_past(deadline), "the standby names no leader within %u ms", WAIT_MS);
        tu_sleep_ms(POLL_MS);
    }
    cr_assert(r && r->type == REDIS_REPLY_ARRAY && r->elements == 2);
    cr_assert_str_eq(r->element[0]->str, "127.0.0.1");
    cr_assert_str_eq(r->element[1]->str, leader->port, "Sentinel's answer names the leader");
    freeReplyObject(r);
    r = ask(standby, "SENTINEL GET-MASTER-ADDR-BY-NAME other");
    cr_assert(r && r->type == REDIS_REPLY_NIL, "another cluster's name: nil");
    freeReplyObject(r);
    /* Over HTTP a write to the standby is a 503 to retry, a read is served. */
    CURL *curl = curl_easy_init();
    static hc_resp hr;
    const char *const none[] = {NULL};
    cr_assert_not_null(curl);
    long st = hc_do(curl, atoi(standby->http_port), "POST",
                    "/admin/api/2021-04/inventory_levels/adjust.json", none,
                    "{\"location_id\":1,\"inventory_item_id\":7,\"available_adjustment\":-1}", &hr);
    cr_assert_eq(st, 503, "an HTTP write to the standby: %ld %s", st, hr.body);
    cr_assert_str_eq(hr.retry_after, "1");
    cr_assert(strstr(hr.body, "read-only replica") != NULL, "%s", hr.body);
    st = hc_do(curl, atoi(standby->http_port), "GET",
               "/admin/api/2021-04/inventory_levels.json?inventory_item_ids=7", none, NULL, &hr);
    cr_assert_eq(st, 200, "an HTTP read on the standby: %ld %s", st, hr.body);
    cr_assert(strstr(hr.body, "\"available\":40") != NULL, "%s", hr.body);
    hc_free(&hr);
    curl_easy_cleanup(curl);
    cr_assert_eq(available(standby, 7), 40, "the refused write changed nothing");
    assert_same_state(leader, standby);
    r = ask(standby, "TENANT.CREATE acme");
    cr_assert(r && r->type == REDIS_REPLY_ERROR, "tenants are not replicated");
    freeReplyObject(r);
    nodes_down(nodes, NODES);
}

Test(repl_server, a_killed_leader_is_replaced_with_every_acknowledged_change_and_no_oversell,
     .init = cluster_up, .fini = cluster_down, .timeout = 600)
{
    node *nodes = g_nodes;
    two_nodes(nodes, g_cl.endpoints, g_cl.endpoints);
    catalog(&nodes[wait_leader(nodes, NODES)]);
    long long failover_ms_max = 0;
    int rounds = (int)tu_iters_min(ROUNDS, ROUNDS_MIN);
    for (int round = 0; round < rounds; round++) {
        int li = wait_leader(nodes, NODES);
        long long item = 100 + round;
        must(&nodes[li], "ITEM.SET %lld sku sale-%d", item, round);
        must(&nodes[li], "LEVEL.SET %lld %d %d", item, LOC, STOCK);
        wait_caught_up(&nodes[li], &nodes[1 - li]); /* the standby can take over at once */
        /* 64 buyers who follow the leader (as Sentinel clients do) */
        load l = {.port = atoi(nodes[li].port), .item = item, .nodes = nodes, .n_nodes = NODES};
        load_run run;
        load_start(&run, &l);
        wait_acked(&l, ACKS_BEFORE_KILL);
        li = wait_leader(nodes, NODES); /* whoever leads now */
        node *victim = &nodes[li], *next = &nodes[1 - li];
        long long acked_before = atomic_load(&l.acked); /* all from earlier leaders */
        node_kill(victim);
        long long killed_ms = srv_now_ms();
        long long failover_ms = wait_writable(next, NULL) - killed_ms;
        if (failover_ms > failover_ms_max)
            failover_ms_max = failover_ms;
        long long left = available(next, item);
        cr_assert_geq(left, 0, "round %d: oversold (%lld)", round, left);
        cr_assert_geq(STOCK - left, acked_before,
                      "round %d: %lld decrements acknowledged, %lld in the new leader's state",
                      round, acked_before, STOCK - left);
        /* the buyers finish the sale on the new leader: an acknowledged
         * decrement the new leader lacked would be sold twice, so more
         * acknowledgements than stock would show it */
        load_join(&run);
        int now = wait_leader(nodes, NODES);
        cr_assert_eq(available(&nodes[now], item), 0, "round %d: the sale sells out", round);
        cr_assert_leq(atomic_load(&l.acked), STOCK, "round %d: %lld acknowledged of %d units",
                      round, atomic_load(&l.acked), STOCK);
        /* the old leader rejoins as a standby and converges */
        node_start(victim);
        wait_caught_up(&nodes[now], victim);
        assert_same_state(&nodes[now], victim);
        fprintf(stderr, "round %d: %lld acknowledged before the kill, failover %lld ms\n", round,
                acked_before, failover_ms);
    }
    cr_assert_lt(failover_ms_max, WAIT_MS, "a standby took over every time");
    nodes_down(nodes, NODES);
}

Test(repl_server, an_etcd_member_killed_changes_nothing_visible, .init = cluster_up,
     .fini = cluster_down, .timeout = 120)
{
    node *nodes = g_nodes, *leader, *standby;
    two_with_stock(nodes, &leader, &standby, 9, 1000);
    for (int member = 0; member < 1; member++)
        eh_kill(&g_cl, member);
    for (int i = 0; i < 200; i++)
        must(leader, "LEVEL.ADJUST 9 %d -1 FLOOR 0", LOC);
    cr_assert_eq(role_of(leader, NULL), 1, "the leader still leads");
    wait_caught_up(leader, standby);
    cr_assert_eq(available(standby, 9), 800);
    assert_same_state(leader, standby);
    nodes_down(nodes, NODES);
}

Test(repl_server, a_leader_cut_off_from_etcd_stops_acknowledging_before_the_standby_takes_over,
     .init = cluster_up, .fini = cluster_down, .timeout = 120)
{
    relay relays[EH_MEMBERS];
    char endpoints[EH_MEMBERS * EH_URL_MAX];
    relay_set_start(relays, EH_MEMBERS, g_cl.client_port, endpoints, sizeof endpoints);
    node *nodes = g_nodes;
    node_new(&nodes[0], endpoints); /* through the relays: it leads first */
    cr_assert_eq(wait_leader(nodes, 1), 0);
    node_new(&nodes[1], g_cl.endpoints);
    node *a = &nodes[0], *b = &nodes[1];
    catalog(a);
    must(a, "ITEM.SET 5 sku hat");
    must(a, "LEVEL.SET 5 %d %d", LOC, STOCK);
    wait_caught_up(a, b);
    load l = {.port = atoi(a->port), .item = 5};
    load_run run;
    load_start(&run, &l);
    wait_acked(&l, ACKS_BEFORE_KILL);
    relay_set_cut(relays, EH_MEMBERS);
    /* b takes over; its first acknowledged write is after a's last one */
    long long b_first_ms; /* sent: b acknowledged it no earlier */
    wait_writable(b, &b_first_ms);
    atomic_store(&l.stop, true);
    load_join(&run);
    long long a_last_ms = atomic_load(&l.last_ack_ms);
    cr_assert_lt(a_last_ms, b_first_ms, "two leaders acknowledged at once");
    long long left = available(b, 5);
    cr_assert_geq(left, 0);
    cr_assert_geq(STOCK - left, atomic_load(&l.acked), "every change a acknowledged is in b");
    nodes_down(nodes, NODES);
}

static int count_key(void *arg, const etcd_kv *kv)
{
    (void)kv;
    (*(int *)arg)++;
    return 0;
}

/* Waits until the log holds at most max entries: how many it holds. */
static int wait_log_at_most(int max)
{
    char err[ETCD_ERROR_MAX];
    etcd_client *c = etcd_open(g_cl.endpoints, EH_CLIENT_TIMEOUT_MS, err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    const char prefix[] = "/" CLUSTER "/log/";
    uint64_t deadline = tu_deadline_ms(WAIT_MS);
    int n;
    for (;;) {
        n = 0;
        cr_assert_eq(etcd_range_prefix(c, prefix, sizeof prefix - 1, 0, count_key, &n, NULL),
                     INV_OK);
        if (n <= max)
            break;
        cr_assert(!tu_past(deadline), "the log still holds %d entries", n);
        tu_sleep_ms(POLL_MS * 10);
    }
    etcd_close(c);
    return n;
}

/* The log shrinks after snapshots, with a live standby and a dead one; the
 * dead one, restarted behind the retained log, copies the leader's snapshot
 * and converges. wrong_auth (tokens mode; NULL: none): the dead one first
 * restarts with that --repl-auth, which the leader refuses, and says so. */
static void compaction_and_snapshot_copy(const char *wrong_auth)
{
    node *nodes = g_nodes, *leader, *standby;
    two_with_stock(nodes, &leader, &standby, 11, 10000);
    for (int i = 0; i < 40; i++)
        must(leader, "LEVEL.ADJUST 11 %d -1 FLOOR 0", LOC);
    wait_caught_up(leader, standby);
    cr_assert_gt(wait_log_at_most(1000), 40, "one entry per acknowledged batch at least");
    /* a snapshot with the standby caught up: the log shrinks to what
     * follows it */
    must(leader, "SNAPSHOT");
    wait_log_at_most(2);
    /* a standby that is gone holds nothing back once its lease expires */
    node_kill(standby);
    for (int i = 0; i < 40; i++)
        must(leader, "LEVEL.ADJUST 11 %d -1 FLOOR 0", LOC);
    must(leader, "SNAPSHOT");
    wait_log_at_most(2);
    for (int i = 0; i < 5; i++)
        must(leader, "LEVEL.ADJUST 11 %d -1 FLOOR 0", LOC);
    if (wrong_auth != NULL) {
        g_repl_auth = wrong_auth;
        node_start(standby);
        cr_assert(srv_log_wait(&standby->s, "the leader refused the snapshot copy", WAIT_MS) == 1,
                  "a refused copy is logged (log %s)", standby->s.log);
        cr_assert_eq(role_of(standby, NULL), 0, "still a standby");
        node_kill(standby);
        g_repl_auth = NULL;
    }
    /* behind the retained log: it copies the leader's snapshot and
     * follows from there */
    node_start(standby);
    wait_caught_up(leader, standby);
    cr_assert_eq(available(standby, 11), 10000 - 85);
    assert_same_state(leader, standby);
    cr_assert(srv_log_wait(&standby->s, "copying the snapshot", 0) == 1,
              "the standby copied a snapshot (log %s)", standby->s.log);
    nodes_down(nodes, NODES);
}

Test(repl_server, the_log_is_compacted_and_a_standby_behind_it_copies_the_snapshot,
     .init = cluster_up, .fini = cluster_down, .timeout = 180)
{
    compaction_and_snapshot_copy(NULL);
}

#define REPL_TOKEN "repl-admin-token-01"

Test(repl_server, with_tokens_a_standby_copies_the_snapshot_with_its_repl_auth, .init = cluster_up,
     .fini = cluster_down, .timeout = 180)
{
    /* Under --tokens no password is shared: the standby's AUTH for the
     * copy is --repl-auth (an admin token); without it, it never caught
     * up. A wrong one is refused and logged, and nothing is copied. */
    static char dir[128], path[192];
    tu_tmpdir(dir, sizeof dir, "repl-tokens");
    snprintf(path, sizeof path, "%s/tokens", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(REPL_TOKEN " default admin\n", f);
    cr_assert_eq(fclose(f), 0);
    g_tokens_file = path;
    g_token = REPL_TOKEN;
    compaction_and_snapshot_copy("not-a-token-of-the-file");
    g_tokens_file = g_token = NULL;
    tu_remove_tree(dir);
}
