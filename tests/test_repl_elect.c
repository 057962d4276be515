/*
 * test_repl_elect.c — integration: leader election on an etcd lease
 * (core/server/repl_elect.c) against a real 3-member etcd cluster on
 * loopback (etcd_harness.h), one fresh cluster per test.
 *
 * Electors of one test run in this process, so "A stopped believing it
 * leads before B started" is checked on one CLOCK_MONOTONIC. Nothing
 * waits on time alone: every wait is a bounded poll of a condition, and
 * timing is asserted only as generous "it happened at all" bounds.
 *
 * The partition test puts a loopback TCP relay (relay_*) between one
 * elector and etcd, which the test cuts by closing every socket of it.
 */
#include <poll.h>

#include "etcd_harness.h"
#include "relay.h"
#include "server/repl_elect.h"

#define TTL_MS 1000u /* short leases keep the suite quick */
#define WAIT_MS 20000u /* an awaited state must come within this */
#define POLL_MS 2u /* between polls of electors' states */
#define STOP_WAIT_MS 5000u /* repl_elect_stop must return within this */
#define CLUSTER "shop-1"
#define ADDR_A "127.0.0.1:7001"
#define ADDR_B "127.0.0.1:7002"
#define ADDR_C "[::1]:7003"
#define LEADER_KEY "/" CLUSTER "/leader"
#define HOOK_CALLS_REFUSED 3 /* may_campaign refusals seen before allowing */

static eh_cluster g_cl;

static void cluster_up(void)
{
    eh_start(&g_cl);
}

static void cluster_down(void)
{
    eh_stop(&g_cl);
}

static repl_elect *elector_hooked(const char *endpoints, const char *addr, bool (*hook)(void *),
                                  void *arg)
{
    char err[ETCD_ERROR_MAX];
    repl_elect_config cfg = {.etcd_endpoints = endpoints,
                             .cluster = CLUSTER,
                             .advertise = addr,
                             .lease_ttl_ms = TTL_MS,
                             .may_campaign = hook,
                             .may_campaign_arg = arg};
    repl_elect *e = repl_elect_start(&cfg, err, sizeof err);
    cr_assert_not_null(e, "repl_elect_start(%s): %s", addr, err);
    return e;
}

static repl_elect *elector(const char *addr)
{
    return elector_hooked(g_cl.endpoints, addr, NULL, NULL);
}

static repl_elect_status status_of(repl_elect *e)
{
    repl_elect_status st;
    repl_elect_state(e, &st);
    return st;
}

/* Waits until e leads; its term. */
static uint64_t wait_leader(repl_elect *e, const char *who)
{
    uint64_t deadline = tu_deadline_ms(WAIT_MS), term = 0;
    while (!repl_elect_is_leader(e, &term)) {
        cr_assert(!tu_past(deadline), "%s did not become leader within %u ms", who, WAIT_MS);
        tu_sleep_ms(POLL_MS);
    }
    cr_assert_gt(term, 0);
    return term;
}

/* Waits until follower e knows a leader at addr with term > 0. */
static repl_elect_status wait_knows(repl_elect *e, const char *addr)
{
    uint64_t deadline = tu_deadline_ms(WAIT_MS);
    repl_elect_status st = status_of(e);
    while (st.role != REPL_ROLE_FOLLOWER || st.term == 0 || strcmp(st.leader_addr, addr) != 0) {
        cr_assert(!tu_past(deadline),
                  "no follower of %s within %u ms (knows '%s' term %" PRIu64 ")", addr, WAIT_MS,
                  st.leader_addr, st.term);
        tu_sleep_ms(POLL_MS);
        st = status_of(e);
    }
    return st;
}

/* Reads the leader key as etcd has it: etcd_get's code. */
static int leader_key_get(etcd_kv *kv)
{
    char err[ETCD_ERROR_MAX];
    etcd_client *c = etcd_open(g_cl.endpoints, EH_CLIENT_TIMEOUT_MS, err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    int rc = etcd_get(c, LEADER_KEY, strlen(LEADER_KEY), kv, NULL);
    cr_assert(rc == INV_OK || rc == INV_ENOTFOUND, "get %s: %d %s", LEADER_KEY, rc, etcd_errmsg(c));
    etcd_close(c);
    return rc;
}

/* The leader key (the test fails if it is absent). */
static etcd_kv leader_key(void)
{
    etcd_kv kv;
    cr_assert_eq(leader_key_get(&kv), INV_OK, "no leader key");
    return kv;
}

/* A handover from old to new, watched from one thread on one clock: the
 * two never both say they lead (old is asked right after new says yes),
 * old's last "yes" comes before new's first, and so does the end of old's
 * leadership as old recorded it. new's term. */
static uint64_t watch_handover(repl_elect *old, repl_elect *new_leader)
{
    uint64_t deadline = tu_deadline_ms(WAIT_MS), old_last_true_ns = 0, term = 0;
    for (;;) {
        uint64_t t_new = tu_now_ns();
        bool new_leads = repl_elect_is_leader(new_leader, &term);
        uint64_t t_old = tu_now_ns();
        bool old_leads = repl_elect_is_leader(old, NULL);
        cr_assert(!(new_leads && old_leads), "both lead at once");
        if (old_leads)
            old_last_true_ns = t_old;
        if (new_leads) {
            repl_elect_status st = status_of(old);
            cr_assert_lt(old_last_true_ns, t_new, "old led after new began");
            cr_assert_gt(st.leader_until_ns, 0);
            cr_assert_leq(st.leader_until_ns, t_new,
                          "the old leader's leadership ended %" PRIu64
                          " ns after the new one's began",
                          st.leader_until_ns - t_new);
            return term;
        }
        cr_assert(!tu_past(deadline), "no handover within %u ms", WAIT_MS);
        tu_sleep_ms(POLL_MS);
    }
}

Test(repl_elect, two_electors_agree_on_one_leader_whose_term_is_its_key_revision,
     .init = cluster_up, .fini = cluster_down)
{
    repl_elect *a = elector(ADDR_A), *b = elector(ADDR_B);
    uint64_t deadline = tu_deadline_ms(WAIT_MS), ta = 0, tb = 0;
    bool la = false, lb = false;
    while (!(la = repl_elect_is_leader(a, &ta)) && !(lb = repl_elect_is_leader(b, &tb))) {
        cr_assert(!tu_past(deadline), "no leader within %u ms", WAIT_MS);
        tu_sleep_ms(POLL_MS);
    }
    repl_elect *leader = la ? a : b, *follower = la ? b : a;
    const char *leader_addr = la ? ADDR_A : ADDR_B;
    uint64_t term = la ? ta : tb;
    cr_assert_not(repl_elect_is_leader(follower, NULL), "two leaders");
    repl_elect_status fs = wait_knows(follower, leader_addr);
    cr_assert_eq(fs.term, term, "the follower knows the leader's term");
    repl_elect_status ls = status_of(leader);
    cr_assert_eq(ls.role, REPL_ROLE_LEADER);
    cr_assert_eq(ls.term, term);
    cr_assert_str_eq(ls.leader_addr, leader_addr);
    cr_assert_geq(ls.granted_ttl_ms, TTL_MS, "etcd grants at least what was asked");
    /* valid_until is at most TTL - safety after a send, which came before now */
    cr_assert_leq(ls.leader_until_ns,
                  tu_now_ns() + (ls.granted_ttl_ms - REPL_LEASE_SAFETY_MS) * CLOCK_NS_PER_MS);
    etcd_kv kv = leader_key();
    cr_assert_eq((uint64_t)kv.create_revision, term, "the term is the key's create_revision");
    cr_assert_gt(kv.lease, 0, "the key is on a lease");
    char want[64];
    snprintf(want, sizeof want, "{\"addr\":\"%s\"}", leader_addr);
    cr_assert(kv.vlen == strlen(want) && memcmp(kv.value, want, kv.vlen) == 0, "value %.*s",
              (int)kv.vlen, (const char *)kv.value);
    etcd_kv_clear(&kv);
    /* the leader keeps leading across several keep-alive rounds */
    uint64_t until = ls.leader_until_ns, later = until;
    uint64_t keep = tu_deadline_ms(WAIT_MS);
    while ((later = status_of(leader).leader_until_ns) == until && !tu_past(keep))
        tu_sleep_ms(POLL_MS);
    cr_assert_gt(later, until, "keep-alives extend valid_until");
    uint64_t t2 = 0;
    cr_assert(repl_elect_is_leader(leader, &t2));
    cr_assert_eq(t2, term, "renewals keep the term");
    repl_elect_stop(a);
    repl_elect_stop(b);
}

Test(repl_elect, resign_hands_over_to_the_follower_for_good, .init = cluster_up,
     .fini = cluster_down)
{
    repl_elect *a = elector(ADDR_A);
    uint64_t ta = wait_leader(a, "A");
    repl_elect *b = elector(ADDR_B);
    wait_knows(b, ADDR_A);
    cr_assert_eq(repl_elect_resign(b), INV_ECONFLICT, "a follower cannot resign");
    cr_assert_eq(repl_elect_resign(a), INV_OK);
    cr_assert_not(repl_elect_is_leader(a, NULL), "no longer leader once resign returns");
    uint64_t tb = wait_leader(b, "B");
    cr_assert_gt(tb, ta, "terms grow");
    repl_elect_status as = wait_knows(a, ADDR_B);
    cr_assert_eq(as.term, tb);
    cr_assert_not(repl_elect_is_leader(a, NULL));
    cr_assert_eq(repl_elect_resign(a), INV_ECONFLICT);
    etcd_kv kv = leader_key();
    cr_assert_eq((uint64_t)kv.create_revision, tb);
    etcd_kv_clear(&kv);
    repl_elect_stop(a);
    repl_elect_stop(b);
}

Test(repl_elect, a_leader_that_stops_renewing_steps_down_before_another_takes_over,
     .init = cluster_up, .fini = cluster_down)
{
    repl_elect *a = elector(ADDR_A);
    uint64_t ta = wait_leader(a, "A");
    repl_elect *b = elector(ADDR_B);
    wait_knows(b, ADDR_A);
    repl_elect_pause(a, true); /* frozen: no keep-alive, no campaign */
    uint64_t tb = watch_handover(a, b);
    cr_assert_gt(tb, ta, "terms grow");
    cr_assert_not(repl_elect_is_leader(a, NULL));
    wait_knows(a, ADDR_B);
    repl_elect_pause(a, false);
    cr_assert(repl_elect_is_leader(b, NULL), "B keeps leading");
    repl_elect_stop(a);
    repl_elect_stop(b);
}

Test(repl_elect, a_leader_cut_off_from_etcd_steps_down_before_another_takes_over,
     .init = cluster_up, .fini = cluster_down)
{
    relay relays[EH_MEMBERS];
    char endpoints[EH_MEMBERS * EH_URL_MAX];
    relay_set_start(relays, EH_MEMBERS, g_cl.client_port, endpoints, sizeof endpoints);
    repl_elect *a = elector_hooked(endpoints, ADDR_A, NULL, NULL);
    uint64_t ta = wait_leader(a, "A");
    repl_elect *b = elector(ADDR_B);
    wait_knows(b, ADDR_A);
    relay_set_cut(relays, EH_MEMBERS);
    uint64_t tb = watch_handover(a, b);
    cr_assert_gt(tb, ta, "terms grow");
    cr_assert_not(repl_elect_is_leader(a, NULL), "A cannot reach etcd: it cannot lead");
    repl_elect_stop(a);
    repl_elect_stop(b);
}

typedef struct {
    repl_elect *e;
    atomic_int done;
} stopper;

static void *stop_thread(void *p)
{
    stopper *s = p;
    repl_elect_stop(s->e);
    /* release: the test thread's acquire sees the stop finished */
    atomic_store_explicit(&s->done, 1, memory_order_release);
    return NULL;
}

/* repl_elect_stop(e) returns within STOP_WAIT_MS (else the test fails). */
static void stop_promptly(repl_elect *e, const char *what)
{
    stopper s = {.e = e};
    atomic_init(&s.done, 0);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, stop_thread, &s), 0);
    cr_assert(tu_wait_at_least(&s.done, 1, STOP_WAIT_MS), "stop of %s did not return", what);
    pthread_join(t, NULL);
}

Test(repl_elect, stop_returns_promptly_and_a_stopped_leaders_key_expires, .init = cluster_up,
     .fini = cluster_down)
{
    repl_elect *c = elector(ADDR_C);
    stop_promptly(c, "a just-started elector"); /* reading or campaigning */
    repl_elect *a = elector(ADDR_A);
    uint64_t ta = wait_leader(a, "A");
    repl_elect *b = elector(ADDR_B);
    repl_elect *c2 = elector(ADDR_C);
    wait_knows(b, ADDR_A);
    wait_knows(c2, ADDR_A);
    stop_promptly(c2, "a watching follower");
    stop_promptly(a, "the leader");
    uint64_t tb = wait_leader(b, "B");
    cr_assert_gt(tb, ta, "B took over once A's lease expired");
    stop_promptly(b, "the new leader");
    repl_elect_stop(NULL);
}

/* A config start must refuse, with a message; what and value name it. */
static void expect_refused(const repl_elect_config *cfg, const char *what, const char *value)
{
    char err[256] = "";
    repl_elect *e = repl_elect_start(cfg, err, sizeof err);
    cr_assert_null(e, "%s '%s' accepted", what, value ? value : "(null)");
    cr_assert_neq(err[0], '\0', "%s '%s' refused without a message", what,
                  value ? value : "(null)");
}

Test(repl_elect, hostile_configs_are_refused_with_a_message)
{
    char err[ETCD_ERROR_MAX];
    const char *ep = "http://127.0.0.1:1";
    repl_elect_config good = {
        .etcd_endpoints = ep, .cluster = "c", .advertise = "h:1", .lease_ttl_ms = 0};
    char longname[REPL_CLUSTER_MAX + 2], longaddr[REPL_ADDR_MAX + 8];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    memset(longaddr, 'a', sizeof longaddr - 1);
    memcpy(longaddr + sizeof longaddr - 4, ":80", 4);
    const char *bad_clusters[] = {"", "a/b", "a b", "é", "a\nb", "*", longname, NULL};
    const char *bad_addrs[] = {"",           "host",    "host:",    ":80",    "host:0", "host:01",
                               "host:65536", "host:8o", "ho st:80", "h/x:80", "-h:80",  "[::1:80",
                               "[]:80",      "[zz]:80", "h:123456", longaddr, NULL};
    const uint32_t bad_ttls[] = {1, REPL_LEASE_TTL_MS_MIN - 1, REPL_LEASE_TTL_MS_MAX + 1,
                                 UINT32_MAX};
    for (size_t i = 0; i < sizeof bad_clusters / sizeof bad_clusters[0]; i++) {
        repl_elect_config cfg = good;
        cfg.cluster = bad_clusters[i];
        expect_refused(&cfg, "cluster", bad_clusters[i]);
    }
    for (size_t i = 0; i < sizeof bad_addrs / sizeof bad_addrs[0]; i++) {
        repl_elect_config cfg = good;
        cfg.advertise = bad_addrs[i];
        expect_refused(&cfg, "address", bad_addrs[i]);
    }
    for (size_t i = 0; i < sizeof bad_ttls / sizeof bad_ttls[0]; i++) {
        repl_elect_config cfg = good;
        cfg.lease_ttl_ms = bad_ttls[i];
        char ttl[16];
        snprintf(ttl, sizeof ttl, "%u", bad_ttls[i]);
        expect_refused(&cfg, "TTL", ttl);
    }
    repl_elect_config cfg = good;
    cfg.etcd_endpoints = "not-a-url";
    cr_assert_null(repl_elect_start(&cfg, err, sizeof err));
    cfg.etcd_endpoints = NULL;
    cr_assert_null(repl_elect_start(&cfg, err, sizeof err));
    cr_assert_null(repl_elect_start(NULL, err, sizeof err));
    cr_assert_null(repl_elect_start(NULL, NULL, 0), "no room for a message is not a crash");
    cr_assert_eq(repl_elect_resign(NULL), INV_EINVALID);
    /* good ones start (nothing listens at ep: they just keep retrying) */
    const char *good_addrs[] = {"h:1", "127.0.0.1:65535", "[::1]:6379", "a-b.example.com:80"};
    for (size_t i = 0; i < sizeof good_addrs / sizeof good_addrs[0]; i++) {
        cfg = good;
        cfg.advertise = good_addrs[i];
        cfg.cluster = i == 0 ? longname + 1 : "A.b_c-9";
        cfg.lease_ttl_ms = i == 0 ? REPL_LEASE_TTL_MS_MIN : REPL_LEASE_TTL_MS_MAX;
        repl_elect *e = repl_elect_start(&cfg, err, sizeof err);
        cr_assert_not_null(e, "%s: %s", good_addrs[i], err);
        cr_assert_not(repl_elect_is_leader(e, NULL));
        cr_assert_eq(status_of(e).role, REPL_ROLE_FOLLOWER);
        repl_elect_stop(e);
    }
}

typedef struct {
    atomic_int allow; /* 0: refuse */
    atomic_int calls;
} hook_state;

static bool may_campaign(void *arg)
{
    hook_state *h = arg;
    /* relaxed: a counter the test polls; the flag needs no ordering */
    atomic_fetch_add_explicit(&h->calls, 1, memory_order_relaxed);
    return atomic_load_explicit(&h->allow, memory_order_relaxed) != 0;
}

Test(repl_elect, may_campaign_false_keeps_a_node_follower_of_a_free_key, .init = cluster_up,
     .fini = cluster_down)
{
    hook_state h;
    atomic_init(&h.allow, 0);
    atomic_init(&h.calls, 0);
    repl_elect *a = elector_hooked(g_cl.endpoints, ADDR_A, may_campaign, &h);
    cr_assert(tu_wait_at_least(&h.calls, HOOK_CALLS_REFUSED, WAIT_MS), "the hook was not asked");
    cr_assert_not(repl_elect_is_leader(a, NULL));
    repl_elect_status st = status_of(a);
    cr_assert_eq(st.role, REPL_ROLE_FOLLOWER);
    cr_assert_eq(st.term, 0, "no leader known");
    etcd_kv kv;
    cr_assert_eq(leader_key_get(&kv), INV_ENOTFOUND,
                 "a node that may not campaign wrote the leader key");
    atomic_store_explicit(&h.allow, 1, memory_order_relaxed);
    uint64_t term = wait_leader(a, "A");
    kv = leader_key();
    cr_assert_eq((uint64_t)kv.create_revision, term);
    etcd_kv_clear(&kv);
    repl_elect_stop(a);
}

#define CHURN_ELECTORS 3
#define CHURN_ROUNDS 5 /* leaders that resign in turn */

/* The one elector of es[] that leads now (its term in *term), or -1; the
 * test fails if two do. */
static int sole_leader(repl_elect **es, int n, uint64_t *term)
{
    int who = -1;
    for (int i = 0; i < n; i++) {
        uint64_t t = 0;
        if (!repl_elect_is_leader(es[i], &t))
            continue;
        cr_assert_eq(who, -1, "electors %d and %d both lead", who, i);
        who = i;
        *term = t;
    }
    return who;
}

Test(repl_elect, leaders_resigning_in_turn_never_overlap_and_terms_grow, .init = cluster_up,
     .fini = cluster_down)
{
    const char *addrs[CHURN_ELECTORS] = {ADDR_A, ADDR_B, ADDR_C};
    repl_elect *es[CHURN_ELECTORS];
    for (int i = 0; i < CHURN_ELECTORS; i++)
        es[i] = elector(addrs[i]);
    uint64_t last_term = 0;
    for (int round = 0; round < CHURN_ROUNDS; round++) {
        uint64_t deadline = tu_deadline_ms(WAIT_MS), term = 0;
        int who;
        while ((who = sole_leader(es, CHURN_ELECTORS, &term)) < 0) {
            cr_assert(!tu_past(deadline), "round %d: no leader within %u ms", round, WAIT_MS);
            tu_sleep_ms(POLL_MS);
        }
        cr_assert_gt(term, last_term, "round %d: terms grow", round);
        last_term = term;
        etcd_kv kv = leader_key();
        cr_assert_eq((uint64_t)kv.create_revision, term, "round %d", round);
        etcd_kv_clear(&kv);
        /* may fail if it lost the lease meanwhile: either way it stepped down */
        int rc = repl_elect_resign(es[who]);
        cr_assert(rc == INV_OK || rc == INV_ECONFLICT, "round %d: resign: %d", round, rc);
        cr_assert_not(repl_elect_is_leader(es[who], NULL));
    }
    for (int i = 0; i < CHURN_ELECTORS; i++)
        repl_elect_stop(es[i]);
}

Test(repl_elect, killing_one_etcd_member_leaves_one_leader_that_all_know, .init = cluster_up,
     .fini = cluster_down)
{
    repl_elect *a = elector(ADDR_A);
    wait_leader(a, "A");
    repl_elect *b = elector(ADDR_B);
    wait_knows(b, ADDR_A);
    /* member 0 is the first endpoint: the one A's client talks to */
    eh_kill(&g_cl, 0);
    uint64_t killed_ns = tu_now_ns();
    /* A may keep its lease or lose it while etcd elects a new raft leader;
     * either way one of the two leads on a lease renewed or granted after
     * the kill (a valid_until that far ahead was earned by a request sent
     * after it), and the other follows it */
    repl_elect *es[2] = {a, b};
    const char *addrs[2] = {ADDR_A, ADDR_B};
    uint64_t deadline = tu_deadline_ms(WAIT_MS), term = 0;
    int who;
    for (;;) {
        who = sole_leader(es, 2, &term);
        if (who >= 0) {
            repl_elect_status ls = status_of(es[who]);
            if (ls.leader_until_ns >
                killed_ns + (ls.granted_ttl_ms - REPL_LEASE_SAFETY_MS) * CLOCK_NS_PER_MS)
                break;
        }
        cr_assert(!tu_past(deadline), "no leader renewed after the kill within %u ms", WAIT_MS);
        tu_sleep_ms(POLL_MS);
    }
    repl_elect_status st = wait_knows(es[1 - who], addrs[who]);
    cr_assert_geq(st.term, term, "the follower knows this term or a later one");
    repl_elect_stop(a);
    repl_elect_stop(b);
}
