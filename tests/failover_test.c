/*
 * failover_test.c — make failover-test (issue #16): FAILOVER_ROUNDS
 * (default 200) rounds of a never-oversell sale on a two-node invcored
 * cluster over a real 3-member etcd, each round ending its leader in one
 * of three ways chosen at random: SIGKILL, SIGSTOP (frozen past its lease,
 * then let go), or a partition from etcd (every connection of it to etcd
 * cut by relays the test controls). Each round checks that every change a
 * client saw acknowledged is in the new leader's state, that nothing was
 * oversold, that the sale then sells out exactly, and that the old leader
 * rejoins as a standby with the same state (copying the new leader's
 * snapshot: each round ends with one). It prints a summary: rounds,
 * acknowledged writes, lost, oversold, failover time p50/p99 (from the
 * leader's end to the first write the new leader acknowledged).
 *
 * Not part of make test (about 4 s a round); the same checks run 10
 * rounds of kills there (test_repl_server.c).
 */
#include "relay.h"
#include "repl_harness.h"

#define ROUNDS_DEFAULT 200
#define ROUNDS_MAX 100000

enum { END_KILL, END_STOP, END_PARTITION, ENDS };
static const char *const END_NAMES[ENDS] = {"kill", "stop", "partition"};

static eh_cluster g_cl;

/* A node whose etcd connections all go through its own relays. */
typedef struct {
    node n;
    relay rl[EH_MEMBERS];
    bool relays_up;
    char endpoints[EH_MEMBERS * EH_URL_MAX];
} rnode;

static void relays_up(rnode *r)
{
    relay_set_start(r->rl, EH_MEMBERS, g_cl.client_port, r->endpoints, sizeof r->endpoints);
    r->relays_up = true;
}

static void relays_cut(rnode *r)
{
    if (r->relays_up)
        relay_set_cut(r->rl, EH_MEMBERS);
    r->relays_up = false;
}

/* Kills r if it runs, gives it fresh relays and starts it. */
static void rnode_restart(rnode *r, bool fresh)
{
    if (!fresh && r->n.s.pid > 0)
        node_kill(&r->n);
    relays_cut(r);
    relays_up(r);
    if (fresh) {
        node_new(&r->n, r->endpoints);
    } else {
        r->n.etcd = r->endpoints;
        node_start(&r->n);
    }
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

static long long pct(const long long *sorted, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return sorted[i];
}

Test(failover, rounds_of_kill_stop_and_partition, .timeout = 0)
{
    const char *env = getenv("FAILOVER_ROUNDS");
    long rounds = env ? strtol(env, NULL, 10) : ROUNDS_DEFAULT;
    cr_assert(rounds >= 1 && rounds <= ROUNDS_MAX, "FAILOVER_ROUNDS: 1..%d", ROUNDS_MAX);
    eh_start(&g_cl);
    static rnode nodes[NODES];
    node plain[NODES];
    for (int i = 0; i < NODES; i++)
        rnode_restart(&nodes[i], true);
    tu_rng rng = tu_rng_seed((uint64_t)time(NULL));
    long long *failover_ms = calloc((size_t)rounds, sizeof *failover_ms);
    long long acked_total = 0, count[ENDS] = {0};
    long long t_start = srv_now_ms();
    for (int i = 0; i < NODES; i++)
        plain[i] = nodes[i].n;
    catalog(&nodes[wait_leader(plain, NODES)].n);
    for (long round = 0; round < rounds; round++) {
        for (int i = 0; i < NODES; i++)
            plain[i] = nodes[i].n;
        int li = wait_leader(plain, NODES);
        rnode *lr = &nodes[li], *sr = &nodes[1 - li];
        node *leader = &lr->n, *standby = &sr->n;
        long long item = 1000 + round;
        must(leader, "ITEM.SET %lld sku sale-%ld", item, round);
        must(leader, "LEVEL.SET %lld %d %d", item, LOC, STOCK);
        wait_caught_up(leader, standby);
        load l = {.port = atoi(leader->port), .item = item};
        load_run run;
        load_start(&run, &l);
        wait_acked(&l, ACKS_BEFORE_KILL);
        int end = (int)tu_rng_below(&rng, ENDS);
        long long ended_ms = srv_now_ms();
        if (end == END_KILL)
            node_kill(leader);
        else if (end == END_STOP)
            kill(leader->s.pid, SIGSTOP);
        else
            relays_cut(lr);
        long long first_sent;
        failover_ms[round] = wait_writable(standby, &first_sent) - ended_ms;
        atomic_store(&l.stop, true);
        if (end == END_STOP)
            kill(leader->s.pid, SIGCONT); /* its lease is gone: it restarts as a standby */
        load_join(&run);
        long long acked = atomic_load(&l.acked);
        /* a partitioned leader stops acknowledging before another leads
         * (a frozen one may still send, once let go, the replies of what
         * its term committed: the new leader has those changes too) */
        cr_assert(end != END_PARTITION || atomic_load(&l.last_ack_ms) < first_sent,
                  "round %ld: the partitioned leader acknowledged after the new one", round);
        long long left = available(standby, item);
        cr_assert_geq(left, 0, "round %ld (%s): oversold (%lld)", round, END_NAMES[end], left);
        cr_assert_geq(STOCK - left, acked, "round %ld (%s): %lld acknowledged, %lld present", round,
                      END_NAMES[end], acked, STOCK - left);
        load l2 = {.port = atoi(standby->port), .item = item};
        load_start(&run, &l2);
        load_join(&run);
        cr_assert_eq(available(standby, item), 0, "round %ld: the sale sells out", round);
        cr_assert_leq(acked + atomic_load(&l2.acked), STOCK, "round %ld: more than stock", round);
        acked_total += acked + atomic_load(&l2.acked);
        count[end]++;
        /* a snapshot a round (as --snapshot-journal-bytes would take on
         * its own): the log is compacted, and the old leader, which
         * empties its directory, copies the snapshot instead of the whole
         * log of every earlier round */
        must(standby, "SNAPSHOT");
        rnode_restart(lr, false); /* a partitioned or restarted node: fresh relays */
        wait_caught_up(standby, leader);
        assert_same_state(standby, leader);
        if ((round + 1) % 10 == 0)
            fprintf(stderr, "failover-test: %ld/%ld rounds, %lld s\n", round + 1, rounds,
                    (srv_now_ms() - t_start) / 1000);
    }
    qsort(failover_ms, (size_t)rounds, sizeof *failover_ms, cmp_ll);
    printf("failover-test: %ld rounds (kill %lld, stop %lld, partition %lld), lease %d ms, "
           "%lld writes acknowledged, lost 0, oversold 0, failover p50 %lld ms p99 %lld ms max "
           "%lld ms, %lld s\n",
           rounds, count[END_KILL], count[END_STOP], count[END_PARTITION], TTL_MS, acked_total,
           pct(failover_ms, (size_t)rounds, 0.5), pct(failover_ms, (size_t)rounds, 0.99),
           failover_ms[rounds - 1], (srv_now_ms() - t_start) / 1000);
    fflush(stdout);
    free(failover_ms);
    for (int i = 0; i < NODES; i++) {
        srv_cleanup(&nodes[i].n.s);
        relays_cut(&nodes[i]);
    }
    eh_stop(&g_cl);
}
