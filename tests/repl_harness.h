/*
 * repl_harness.h — invcored cluster nodes for the replication tests
 * (test_repl_server.c, and failover_test.c behind make failover-test):
 * nodes started as real processes with --cluster against an etcd cluster
 * (etcd_harness.h), their ROLE and STATE.DIGEST read with hiredis, and a
 * 64-client never-oversell load that counts what was acknowledged.
 *
 * Invariants: only pids this harness started are signalled; every wait is
 * a bounded poll of a condition (WAIT_MS).
 */
#ifndef TEST_REPL_HARNESS_H
#define TEST_REPL_HARNESS_H

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>

#include "etcd_harness.h"
#include "test_server_harness.h"

#define CLUSTER "shop"
/* The lease: the default, so a box busy with other suites does not make
 * a leader miss its renewals (a failover the test did not ask for). */
#define TTL_MS 2000
#define TTL_ARG "2000"
#define WAIT_MS 30000u /* an awaited state must come within this */
#define POLL_MS 5u
#define CLIENTS 64
#define STOCK 3000 /* units of one round's item */
#define ACKS_BEFORE_KILL 200 /* acknowledged decrements before the leader dies */
#define LOC 1
#define NODES 2

/* ---- nodes -------------------------------------------------------------------- */

typedef struct {
    srv_t s;
    char port[8], http_port[8], adv[32];
    const char *etcd; /* the endpoints it was given */
} node;

/* Tokens mode, set by a test before its nodes start (NULL: off): every node
 * starts with --tokens g_tokens_file --repl-auth g_token (g_repl_auth when
 * set: a test's wrong one), and the harness's connections AUTH with g_token
 * (an admin token of that file). */
static const char *g_tokens_file, *g_token, *g_repl_auth;

static inline void node_start(node *n)
{
    const char *extra[] = {
        "--http-port",    n->http_port, "--fsync", "always", "--threads", "1",           "--port",
        n->port,          "--cluster",  CLUSTER,   "--etcd", n->etcd,     "--advertise", n->adv,
        "--lease-ttl-ms", TTL_ARG,      NULL,      NULL,     NULL,        NULL,          NULL};
    size_t end = sizeof extra / sizeof extra[0] - 5; /* the first NULL */
    assert(extra[end] == NULL && extra[end - 1] != NULL);
    if (g_tokens_file) {
        extra[end] = "--tokens", extra[end + 1] = g_tokens_file;
        extra[end + 2] = "--repl-auth", extra[end + 3] = g_repl_auth ? g_repl_auth : g_token;
    }
    cr_assert_eq(srv_spawn(&n->s, 1, extra), 0, "invcored did not start (log %s)", n->s.log);
    cr_assert_eq(n->s.port, atoi(n->port));
}

static inline void node_new(node *n, const char *etcd)
{
    int port[2];
    srv_prepare(&n->s);
    cr_assert(eh_free_ports(port, 2));
    snprintf(n->port, sizeof n->port, "%d", port[0]);
    snprintf(n->http_port, sizeof n->http_port, "%d", port[1]);
    snprintf(n->adv, sizeof n->adv, "127.0.0.1:%d", port[0]);
    n->etcd = etcd;
    node_start(n);
}

static inline void node_kill(node *n)
{
    cr_assert_gt(n->s.pid, 0);
    kill(n->s.pid, SIGKILL);
    waitpid(n->s.pid, NULL, 0);
    n->s.pid = 0;
}

/* A connection to n (authenticated in tokens mode), NULL when n does not
 * answer. */
static inline redisContext *node_connect(const node *n, time_t timeout_s)
{
    struct timeval tv = {timeout_s, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", atoi(n->port), tv);
    redisReply *r = NULL;
    if (c && !c->err && redisSetTimeout(c, tv) == REDIS_OK &&
        (g_token == NULL ||
         ((r = redisCommand(c, "AUTH %s", g_token)) != NULL && r->type == REDIS_REPLY_STATUS))) {
        if (r)
            freeReplyObject(r);
        return c;
    }
    if (r)
        freeReplyObject(r);
    if (c)
        redisFree(c);
    return NULL;
}

/* A short-lived connection's reply, NULL when the node does not answer. */
static inline redisReply *ask(const node *n, const char *fmt, ...)
{
    redisContext *c = node_connect(n, 2);
    if (!c)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    redisFree(c);
    return r;
}

/* ROLE: 1 master (takes writes), 0 slave, -1 no answer; *offset its
 * offset (may be NULL). */
static inline int role_of(const node *n, long long *offset)
{
    redisReply *r = ask(n, "ROLE");
    int role = -1;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements >= 3) {
        role = strcmp(r->element[0]->str, "master") == 0;
        if (offset)
            *offset = r->element[role ? 1 : 4]->integer;
    }
    if (r)
        freeReplyObject(r);
    return role;
}

/* The index of the node that says it is the master (waits for one). */
static inline int wait_leader(node *nodes, int n)
{
    uint64_t deadline = tu_deadline_ms(WAIT_MS);
    for (;;) {
        for (int i = 0; i < n; i++)
            if (nodes[i].s.pid > 0 && role_of(&nodes[i], NULL) == 1)
                return i;
        cr_assert(!tu_past(deadline), "no leader within %u ms", WAIT_MS);
        tu_sleep_ms(POLL_MS);
    }
}

/* Waits until the standby applied everything the leader replicated. */
static inline void wait_caught_up(const node *leader, const node *standby)
{
    long long want = 0, have = -1;
    cr_assert_eq(role_of(leader, &want), 1);
    uint64_t deadline = tu_deadline_ms(WAIT_MS);
    while (role_of(standby, &have) != 0 || have < want) {
        cr_assert(!tu_past(deadline), "standby at %lld of %lld", have, want);
        tu_sleep_ms(POLL_MS);
    }
}

static inline void digest_of(const node *n, char *out, size_t cap)
{
    redisReply *r = ask(n, "STATE.DIGEST");
    cr_assert(r && r->type == REDIS_REPLY_STRING, "STATE.DIGEST: %s", r ? r->str : "no answer");
    snprintf(out, cap, "%s", r->str);
    freeReplyObject(r);
}

static inline void assert_same_state(const node *a, const node *b)
{
    char da[64], db[64];
    digest_of(a, da, sizeof da);
    digest_of(b, db, sizeof db);
    cr_assert_str_eq(da, db, "the nodes' states differ");
}

/* A write that must be acknowledged. */
static inline void must(const node *n, const char *fmt, ...)
{
    redisContext *c = node_connect(n, 10);
    cr_assert(c != NULL, "no connection to %s", n->port);
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    cr_assert(r && r->type != REDIS_REPLY_ERROR, "'%s': %s", fmt, r ? r->str : c->errstr);
    freeReplyObject(r);
    redisFree(c);
}

/* available of (item, LOC) on n. */
static inline long long available(const node *n, long long item)
{
    redisReply *r = ask(n, "LEVEL.GET %lld %d", item, LOC);
    cr_assert(r && r->type == REDIS_REPLY_ARRAY && r->elements >= 1, "LEVEL.GET %lld: %s", item,
              r ? r->str : "no answer");
    long long v = r->element[0]->integer;
    freeReplyObject(r);
    return v;
}

/* Polls a harmless write until n takes it: when (monotonic ms) the
 * acknowledged attempt was sent (*sent_ms, may be NULL) and its reply came
 * back (returned). */
static inline long long wait_writable(const node *n, long long *sent_ms)
{
    uint64_t deadline = tu_deadline_ms(WAIT_MS);
    for (;;) {
        long long sent = srv_now_ms();
        redisReply *r = ask(n, "LEVEL.ADJUST 1 %d 1", LOC);
        bool ok = r && r->type == REDIS_REPLY_ARRAY;
        if (r)
            freeReplyObject(r);
        if (ok) {
            if (sent_ms)
                *sent_ms = sent;
            return srv_now_ms();
        }
        cr_assert(!tu_past(deadline), "node %s takes no write", n->port);
        tu_sleep_ms(POLL_MS);
    }
}

/* ---- a never-oversell load ------------------------------------------------------ */

typedef struct {
    int port;
    long long item;
    _Atomic long long acked; /* decrements acknowledged, all clients */
    _Atomic bool stop;
    _Atomic long long last_ack_ms; /* monotonic, of the latest acknowledgement */
    const node *nodes; /* NULL: clients stop when their node refuses */
    int n_nodes;
} load;

/* For a following client (no asserts: a client thread): the port of the
 * node that says it is the master, 0 when none does within WAIT_MS. */
static inline int leader_port(const node *nodes, int n)
{
    uint64_t deadline = tu_deadline_ms(WAIT_MS);
    while (!tu_past(deadline)) {
        for (int i = 0; i < n; i++)
            if (role_of(&nodes[i], NULL) == 1)
                return atoi(nodes[i].port);
        tu_sleep_ms(POLL_MS);
    }
    return 0;
}

/* One client: decrements with floor 0 until told to stop or the stock is
 * gone. When its node refuses (READONLY) or dies, a following client
 * (l->nodes set) finds the leader as a Sentinel client would and goes on
 * there; any other client stops. */
static inline void load_client(void *arg, size_t index)
{
    load *l = arg;
    (void)index;
    int port = l->port;
    redisContext *c = srv_connect_port(port);
    struct timeval tv = {5, 0};
    while (c && !atomic_load(&l->stop)) {
        redisSetTimeout(c, tv);
        redisReply *r = redisCommand(c, "LEVEL.ADJUST %lld %d -1 FLOOR 0", l->item, LOC);
        bool acked = r && r->type == REDIS_REPLY_ARRAY;
        bool sold_out =
            r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "INSUFFICIENT", 12) == 0;
        if (r)
            freeReplyObject(r);
        if (acked) {
            atomic_fetch_add(&l->acked, 1);
            atomic_store(&l->last_ack_ms, srv_now_ms());
            continue;
        }
        redisFree(c);
        c = NULL;
        if (sold_out || !l->nodes)
            break;
        port = leader_port(l->nodes, l->n_nodes); /* READONLY, or the node died */
        c = port ? srv_connect_port(port) : NULL;
    }
    if (c)
        redisFree(c);
}

typedef struct {
    load *l;
    pthread_t th;
} load_run;

static inline void *load_main(void *arg)
{
    tu_run_threads(CLIENTS, load_client, ((load_run *)arg)->l);
    return NULL;
}

static inline void load_start(load_run *run, load *l)
{
    run->l = l;
    cr_assert_eq(pthread_create(&run->th, NULL, load_main, run), 0);
}

static inline void load_join(load_run *run)
{
    pthread_join(run->th, NULL);
}

static inline void wait_acked(load *l, long long n)
{
    uint64_t deadline = tu_deadline_ms(WAIT_MS);
    while (atomic_load(&l->acked) < n)
        cr_assert(!tu_past(deadline), "only %lld acknowledged", atomic_load(&l->acked));
}

/* The catalog every test writes into: location LOC, the scratch item 1. */
static inline void catalog(const node *leader)
{
    must(leader, "LOC.SET %d name main", LOC);
    must(leader, "ITEM.SET 1 sku scratch");
    must(leader, "LEVEL.SET 1 %d 0", LOC);
}

static inline void two_nodes(node *nodes, const char *etcd_a, const char *etcd_b)
{
    node_new(&nodes[0], etcd_a);
    node_new(&nodes[1], etcd_b);
}

/* Stops the nodes started and removes their directories; again: no-op
 * (a test's end and its .fini after a failed assertion both call it). */
static inline void nodes_down(node *nodes, int n)
{
    for (int i = 0; i < n; i++) {
        if (nodes[i].s.dir[0])
            srv_cleanup(&nodes[i].s);
        nodes[i].s.dir[0] = '\0';
    }
}

#endif /* TEST_REPL_HARNESS_H */
