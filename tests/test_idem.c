/*
 * test_idem.c — the idempotency store (core/idem.c) through its private
 * API: claim, decide and retries; conflicts; abandon; bad lengths; a
 * claim waiting on a PENDING id (and giving up); 8 threads racing on the
 * same ids; expiry by time and eviction by count (explicit now_ms values,
 * never a sleep); install and foreach through the record codec; the
 * decoder against every truncation, extension and a mutation sweep; and
 * claims, decisions and expiry running at once.
 *
 * Every store call runs inside an epoch section, as the contract requires,
 * and a DONE entry is read before its section ends.
 */
#include "test_util.h"

#include "epoch.h"
#include "idem.h"

static const char idem_owner_tag = 'i';
#define OWNER ((const void *)&idem_owner_tag)

#define RETENTION_MS 1000 /* of the stores the single-thread tests open */
#define T0_MS 1000000 /* an arbitrary wall-clock start */

/* ---- helpers ------------------------------------------------------------ */

static idem_store *store_open(uint64_t retention_ms, size_t max_ids)
{
    idem_store *s = calloc(1, sizeof *s);
    cr_assert_not_null(s);
    cr_assert_eq(idem_init(s, 0, retention_ms, max_ids, OWNER), INV_OK);
    return s;
}

static void store_close(idem_store *s)
{
    idem_destroy(s);
    epoch_drain_owner(OWNER); /* what the store retired */
    free(s);
}

static void digest_of(const char *args, uint8_t out[IDEM_DIGEST_LEN])
{
    idem_digest(args, strlen(args), out);
}

/* What a claim answered, copied inside its epoch section. */
typedef struct {
    int result; /* IDEM_NEW, IDEM_DONE or an error */
    idem_entry *pending; /* IDEM_NEW: ours to decide or abandon */
    int rc; /* IDEM_DONE: the stored outcome */
    size_t len;
    uint8_t bytes[IDEM_OUTCOME_MAX];
    uint64_t ack_pos;
    int64_t decided_at_ms;
} answer;

static answer claim_at(idem_store *s, const char *id, const char *args, int64_t now_ms)
{
    answer a;
    memset(&a, 0, sizeof a);
    uint8_t d[IDEM_DIGEST_LEN];
    digest_of(args, d);
    idem_entry *e = NULL;
    epoch_enter();
    a.result = idem_claim(s, id, strlen(id), d, now_ms, &e);
    if (a.result == IDEM_NEW)
        a.pending = e;
    if (a.result == IDEM_DONE) {
        const uint8_t *out = idem_entry_outcome(e, &a.len);
        if (a.len)
            memcpy(a.bytes, out, a.len); /* out is NULL for an empty outcome */
        a.rc = idem_entry_rc(e);
        a.ack_pos = idem_entry_ack_pos(e);
        a.decided_at_ms = idem_entry_decided_at_ms(e);
    }
    epoch_exit();
    cr_assert(a.result == IDEM_NEW || a.result == IDEM_DONE ? e != NULL : e == NULL,
              "claim %s: result %d with entry %p", id, a.result, (void *)e);
    return a;
}

static void decide_at(idem_store *s, idem_entry *e, int rc, const char *outcome, uint64_t ack_pos,
                      int64_t now_ms)
{
    idem_outcome o = {rc, outcome, outcome ? strlen(outcome) : 0};
    epoch_enter();
    int r = idem_decide(s, e, &o, ack_pos, now_ms);
    epoch_exit();
    cr_assert_eq(r, INV_OK, "decide: %d", r);
}

/* Claims id (NEW expected) and decides it with outcome at now_ms. */
static void remember(idem_store *s, const char *id, const char *args, const char *outcome,
                     int64_t now_ms)
{
    answer a = claim_at(s, id, args, now_ms);
    cr_assert_eq(a.result, IDEM_NEW, "claim %s: %d", id, a.result);
    decide_at(s, a.pending, 0, outcome, 0, now_ms);
}

static size_t expire_at(idem_store *s, int64_t now_ms)
{
    epoch_enter();
    size_t n = idem_expire(s, now_ms);
    epoch_exit();
    return n;
}

static idem_counters stats_of(idem_store *s)
{
    idem_counters c;
    idem_stats(s, &c);
    return c;
}

static void id_name(char *buf, size_t cap, const char *prefix, size_t i)
{
    int n = snprintf(buf, cap, "%s-%zu", prefix, i);
    cr_assert(n > 0 && (size_t)n < cap);
}

/* ---- claim, decide, retry ------------------------------------------------ */

Test(idem, a_retry_answers_the_first_calls_outcome_and_changes_nothing)
{
    idem_store *s = store_open(RETENTION_MS, 0);
    answer a = claim_at(s, "req-1", "adjust 7 +3", T0_MS);
    cr_assert_eq(a.result, IDEM_NEW);
    decide_at(s, a.pending, INV_EINSUFFICIENT, "outcome bytes", 42, T0_MS + 5);
    for (int retry = 0; retry < 3; retry++) {
        answer b = claim_at(s, "req-1", "adjust 7 +3", T0_MS + 10 + retry);
        cr_assert_eq(b.result, IDEM_DONE, "retry %d: %d", retry, b.result);
        cr_assert_eq(b.rc, INV_EINSUFFICIENT);
        cr_assert_eq(b.len, strlen("outcome bytes"));
        cr_assert_eq(memcmp(b.bytes, "outcome bytes", b.len), 0);
        cr_assert_eq(b.ack_pos, 42);
        cr_assert_eq(b.decided_at_ms, T0_MS + 5);
    }
    idem_counters c = stats_of(s);
    cr_assert_eq(c.remembered, 1);
    cr_assert_eq(c.hits, 3);
    cr_assert_eq(c.conflicts + c.busy + c.expired + c.forgotten_early, 0);
    store_close(s);
}

Test(idem, the_same_id_with_other_arguments_is_a_conflict)
{
    idem_store *s = store_open(RETENTION_MS, 0);
    remember(s, "req-1", "args A", "first", T0_MS);
    cr_assert_eq(claim_at(s, "req-1", "args B", T0_MS + 1).result, INV_ECONFLICT);
    /* The conflict changed nothing: the first call still answers. */
    answer b = claim_at(s, "req-1", "args A", T0_MS + 2);
    cr_assert_eq(b.result, IDEM_DONE);
    cr_assert_eq(memcmp(b.bytes, "first", b.len), 0);
    /* Another id is independent. */
    cr_assert_eq(claim_at(s, "req-2", "args B", T0_MS + 3).result, IDEM_NEW);
    idem_counters c = stats_of(s);
    cr_assert_eq(c.conflicts, 1);
    cr_assert_eq(c.hits, 1);
    store_close(s); /* req-2 is still PENDING: destroy frees it */
}

Test(idem, an_abandoned_id_can_be_claimed_again_with_any_arguments)
{
    idem_store *s = store_open(RETENTION_MS, 0);
    answer a = claim_at(s, "req-1", "args A", T0_MS);
    cr_assert_eq(a.result, IDEM_NEW);
    epoch_enter();
    idem_abandon(s, a.pending);
    epoch_exit();
    cr_assert_eq(stats_of(s).remembered, 0);
    answer b = claim_at(s, "req-1", "args B", T0_MS + 1);
    cr_assert_eq(b.result, IDEM_NEW, "after abandon: %d", b.result);
    decide_at(s, b.pending, 0, "second", 0, T0_MS + 1);
    answer c = claim_at(s, "req-1", "args B", T0_MS + 2);
    cr_assert_eq(c.result, IDEM_DONE);
    cr_assert_eq(memcmp(c.bytes, "second", c.len), 0);
    cr_assert_eq(stats_of(s).remembered, 1);
    store_close(s);
}

/* Issue 17: a call that ran out of memory changed nothing; remembering
 * its NOMEM would answer every retry NOMEM. */
Test(idem, an_out_of_memory_outcome_is_forgotten_so_a_retry_runs)
{
    idem_store *s = store_open(RETENTION_MS, 0);
    answer a = claim_at(s, "req-1", "args A", T0_MS);
    cr_assert_eq(a.result, IDEM_NEW);
    decide_at(s, a.pending, INV_ENOMEM, "nomem outcome", 7, T0_MS + 1);
    cr_assert_eq(stats_of(s).remembered, 0);
    answer b = claim_at(s, "req-1", "args A", T0_MS + 2);
    cr_assert_eq(b.result, IDEM_NEW, "the retry was answered: %d", b.result);
    decide_at(s, b.pending, 0, "done", 8, T0_MS + 3);
    answer c = claim_at(s, "req-1", "args A", T0_MS + 4);
    cr_assert(c.result == IDEM_DONE && c.rc == 0);
    /* a journaled NOMEM outcome (replay) is not installed either */
    uint8_t d[IDEM_DIGEST_LEN];
    digest_of("args Z", d);
    epoch_enter();
    int rc = idem_install(s, "req-2", 5, d, T0_MS, INV_ENOMEM, "x", 1, T0_MS + 5);
    epoch_exit();
    cr_assert_eq(rc, INV_OK);
    cr_assert_eq(claim_at(s, "req-2", "args Z", T0_MS + 6).result, IDEM_NEW);
    store_close(s);
}

Test(idem, ids_of_bad_length_are_refused_and_the_limits_are_accepted)
{
    idem_store *s = store_open(RETENTION_MS, 0);
    uint8_t d[IDEM_DIGEST_LEN];
    digest_of("args", d);
    char id[INV_REQUEST_ID_MAX + 2];
    memset(id, 'x', sizeof id);
    idem_entry *e = (idem_entry *)&e; /* must be cleared on refusal */
    epoch_enter();
    cr_assert_eq(idem_claim(s, id, 0, d, T0_MS, &e), INV_EINVALID);
    cr_assert_null(e);
    cr_assert_eq(idem_claim(s, NULL, 5, d, T0_MS, &e), INV_EINVALID);
    cr_assert_eq(idem_claim(s, id, INV_REQUEST_ID_MAX + 1, d, T0_MS, &e), INV_EINVALID);
    cr_assert_eq(idem_install(s, id, 0, d, T0_MS, 0, NULL, 0, T0_MS), INV_EINVALID);
    cr_assert_eq(idem_install(s, id, INV_REQUEST_ID_MAX + 1, d, T0_MS, 0, NULL, 0, T0_MS),
                 INV_EINVALID);
    cr_assert_eq(idem_install(s, id, 1, d, T0_MS, 0, "x", IDEM_OUTCOME_MAX + 1, T0_MS),
                 INV_EINVALID);
    cr_assert_eq(idem_claim(s, id, 1, d, T0_MS, &e), IDEM_NEW);
    idem_abandon(s, e);
    cr_assert_eq(idem_claim(s, id, INV_REQUEST_ID_MAX, d, T0_MS, &e), IDEM_NEW);
    idem_abandon(s, e);
    epoch_exit();
    cr_assert_eq(stats_of(s).remembered, 0);
    store_close(s);
}

Test(idem, an_outcome_too_long_is_refused_and_leaves_the_entry_pending)
{
    idem_store *s = store_open(RETENTION_MS, 0);
    static uint8_t big[IDEM_OUTCOME_MAX + 1];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 7 + 1);
    answer a = claim_at(s, "req-big", "args", T0_MS);
    cr_assert_eq(a.result, IDEM_NEW);
    epoch_enter();
    idem_outcome o = {0, big, IDEM_OUTCOME_MAX + 1};
    cr_assert_eq(idem_decide(s, a.pending, &o, 0, T0_MS), INV_ELIMIT);
    o.len = IDEM_OUTCOME_MAX;
    cr_assert_eq(idem_decide(s, a.pending, &o, 0, T0_MS), INV_OK);
    epoch_exit();
    answer b = claim_at(s, "req-big", "args", T0_MS + 1);
    cr_assert_eq(b.result, IDEM_DONE);
    cr_assert_eq(b.len, IDEM_OUTCOME_MAX);
    cr_assert_eq(memcmp(b.bytes, big, IDEM_OUTCOME_MAX), 0);
    /* An empty outcome is an outcome too. */
    answer c = claim_at(s, "req-empty", "args", T0_MS);
    decide_at(s, c.pending, INV_ENOTFOUND, NULL, 0, T0_MS);
    answer d = claim_at(s, "req-empty", "args", T0_MS + 1);
    cr_assert_eq(d.result, IDEM_DONE);
    cr_assert_eq(d.rc, INV_ENOTFOUND);
    cr_assert_eq(d.len, 0);
    store_close(s);
}

Test(idem, digests_are_xxh3_128_of_the_canonical_arguments)
{
    uint8_t a[IDEM_DIGEST_LEN], b[IDEM_DIGEST_LEN], c[IDEM_DIGEST_LEN];
    digest_of("SET 1 2 10", a);
    digest_of("SET 1 2 10", b);
    digest_of("SET 1 2 11", c);
    cr_assert_eq(memcmp(a, b, sizeof a), 0);
    cr_assert_neq(memcmp(a, c, sizeof a), 0);
    idem_digest(NULL, 0, c); /* no arguments at all */
    cr_assert_neq(memcmp(a, c, sizeof a), 0);
}

/* ---- a PENDING id -------------------------------------------------------- */

Test(idem, a_claim_of_an_id_pending_too_long_answers_busy_after_the_bounded_wait)
{
    idem_store *s = store_open(RETENTION_MS, 0);
    answer a = claim_at(s, "req-1", "args", T0_MS);
    cr_assert_eq(a.result, IDEM_NEW);
    uint64_t t0_ns = clock_mono_ns();
    answer b = claim_at(s, "req-1", "args", T0_MS); /* its owner is us: never ends */
    uint64_t waited_ms = (clock_mono_ns() - t0_ns) / CLOCK_NS_PER_MS;
    cr_assert_eq(b.result, IDEM_BUSY);
    cr_assert_geq(waited_ms, IDEM_PENDING_WAIT_MS, "gave up after %llu ms",
                  (unsigned long long)waited_ms);
    cr_assert_eq(stats_of(s).busy, 1);
    decide_at(s, a.pending, 0, "done", 0, T0_MS);
    cr_assert_eq(claim_at(s, "req-1", "args", T0_MS).result, IDEM_DONE);
    store_close(s);
}

/* A second thread claims an id this thread holds PENDING; this thread then
 * decides or abandons it. */
typedef struct {
    idem_store *s;
    _Atomic int started;
    answer got;
    int busy_answers;
} waiter_ctx;

static void *waiter_main(void *p)
{
    waiter_ctx *w = p;
    /* release: nothing to publish but the progress itself. */
    atomic_store_explicit(&w->started, 1, memory_order_release);
    /* A descheduled owner may make one claim answer BUSY: ask again. */
    for (int i = 0; i < 100; i++) {
        w->got = claim_at(w->s, "req-1", "args", T0_MS);
        if (w->got.result != IDEM_BUSY)
            break;
        w->busy_answers++;
    }
    return NULL;
}

static waiter_ctx *start_waiter(idem_store *s, pthread_t *tid)
{
    waiter_ctx *w = calloc(1, sizeof *w);
    cr_assert_not_null(w);
    w->s = s;
    cr_assert_eq(pthread_create(tid, NULL, waiter_main, w), 0);
    cr_assert(tu_wait_at_least(&w->started, 1, 5000));
    tu_sleep_ms(5); /* most likely waiting in its claim now; if not, it claims later */
    return w;
}

Test(idem, a_claim_waits_for_a_pending_id_and_answers_its_decision)
{
    idem_store *s = store_open(RETENTION_MS, 0);
    answer a = claim_at(s, "req-1", "args", T0_MS);
    cr_assert_eq(a.result, IDEM_NEW);
    pthread_t tid;
    waiter_ctx *w = start_waiter(s, &tid);
    decide_at(s, a.pending, 7, "the answer", 0, T0_MS);
    pthread_join(tid, NULL);
    cr_assert_eq(w->got.result, IDEM_DONE, "waiter: %d", w->got.result);
    cr_assert_eq(w->got.rc, 7);
    cr_assert_eq(memcmp(w->got.bytes, "the answer", w->got.len), 0);
    free(w);
    store_close(s);
}

Test(idem, a_claim_waiting_on_an_abandoned_id_takes_it)
{
    idem_store *s = store_open(RETENTION_MS, 0);
    answer a = claim_at(s, "req-1", "args", T0_MS);
    cr_assert_eq(a.result, IDEM_NEW);
    pthread_t tid;
    waiter_ctx *w = start_waiter(s, &tid);
    epoch_enter();
    idem_abandon(s, a.pending);
    epoch_exit();
    pthread_join(tid, NULL);
    cr_assert_eq(w->got.result, IDEM_NEW, "waiter: %d", w->got.result);
    decide_at(s, w->got.pending, 0, "theirs", 0, T0_MS);
    answer b = claim_at(s, "req-1", "args", T0_MS);
    cr_assert_eq(b.result, IDEM_DONE);
    cr_assert_eq(memcmp(b.bytes, "theirs", b.len), 0);
    free(w);
    store_close(s);
}

/* ---- racing threads -------------------------------------------------------- */

#define RACE_THREADS 8
#define RACE_ATTEMPTS_MAX 1000 /* BUSY answers one claim may get before failing */

typedef struct {
    idem_store *s;
    size_t n_ids;
    _Atomic int *decided_by; /* per id: 1 + the thread that decided it */
    _Atomic int *abandons; /* per id: NEW claims abandoned */
    int *seen; /* [thread * n_ids + id]: the decider whose outcome it got */
} race_ctx;

/* One claim of id i by thread t until it ends: NEW (decided by t, or
 * abandoned once per id divisible by 4, then claimed again) or DONE. */
static void race_one(race_ctx *c, size_t t, size_t i)
{
    char id[32], args[32];
    snprintf(id, sizeof id, "race-%zu", i);
    snprintf(args, sizeof args, "args-%zu", i);
    uint8_t d[IDEM_DIGEST_LEN];
    digest_of(args, d);
    for (int attempt = 0; attempt < RACE_ATTEMPTS_MAX; attempt++) {
        idem_entry *e = NULL;
        epoch_enter();
        int rc = idem_claim(c->s, id, strlen(id), d, T0_MS, &e);
        if (rc == IDEM_NEW && i % 4 == 0 &&
            /* relaxed: a per-id count; the store orders the claims. */
            atomic_fetch_add_explicit(&c->abandons[i], 1, memory_order_relaxed) == 0) {
            idem_abandon(c->s, e);
            rc = IDEM_BUSY; /* ask again */
        } else if (rc == IDEM_NEW) {
            uint32_t me = (uint32_t)t;
            idem_outcome o = {(int)i, &me, sizeof me};
            TU_CHECK(idem_decide(c->s, e, &o, i + 1, T0_MS) == INV_OK, "decide %zu", i);
            /* relaxed: read after the join. */
            int prev =
                atomic_exchange_explicit(&c->decided_by[i], (int)t + 1, memory_order_relaxed);
            TU_CHECK(prev == 0, "id %zu decided by threads %d and %zu", i, prev - 1, t);
            c->seen[t * c->n_ids + i] = (int)t;
        } else if (rc == IDEM_DONE) {
            size_t len = 0;
            const uint8_t *out = idem_entry_outcome(e, &len);
            uint32_t owner = UINT32_MAX;
            TU_CHECK(len == sizeof owner, "id %zu: outcome of %zu bytes", i, len);
            if (len == sizeof owner)
                memcpy(&owner, out, sizeof owner);
            TU_CHECK(idem_entry_rc(e) == (int)i && idem_entry_ack_pos(e) == i + 1,
                     "id %zu: wrong rc or ack_pos", i);
            c->seen[t * c->n_ids + i] = (int)owner;
        } else
            TU_CHECK(rc == IDEM_BUSY, "id %zu: claim answered %d", i, rc);
        epoch_exit();
        if (rc != IDEM_BUSY)
            return;
        sched_yield();
    }
    TU_CHECK(false, "id %zu: still busy after %d claims", i, RACE_ATTEMPTS_MAX);
}

static void race_thread(void *arg, size_t t)
{
    race_ctx *c = arg;
    /* Each thread walks the ids from its own offset, half of them
     * backwards, so every id is contended from several sides. */
    for (size_t k = 0; k < c->n_ids; k++) {
        size_t i = (k + t * 7) % c->n_ids;
        race_one(c, t, t % 2 ? c->n_ids - 1 - i : i);
    }
}

Test(idem, racing_threads_get_exactly_one_new_per_id_and_all_see_its_outcome, .timeout = 120)
{
    race_ctx c = {store_open(RETENTION_MS, 0), tu_iters_min(2000, 200), NULL, NULL, NULL};
    c.decided_by = calloc(c.n_ids, sizeof *c.decided_by);
    c.abandons = calloc(c.n_ids, sizeof *c.abandons);
    c.seen = calloc(RACE_THREADS * c.n_ids, sizeof *c.seen);
    cr_assert(c.decided_by && c.abandons && c.seen);
    tu_run_threads(RACE_THREADS, race_thread, &c);
    tu_assert_no_failures();
    for (size_t i = 0; i < c.n_ids; i++) {
        /* relaxed: after the join. */
        int decider = atomic_load_explicit(&c.decided_by[i], memory_order_relaxed) - 1;
        cr_assert_geq(decider, 0, "id %zu never decided", i);
        for (size_t t = 0; t < RACE_THREADS; t++)
            cr_assert_eq(c.seen[t * c.n_ids + i], decider,
                         "id %zu: thread %zu saw %d's outcome, %d decided", i, t,
                         c.seen[t * c.n_ids + i], decider);
    }
    idem_counters st = stats_of(c.s);
    cr_assert_eq(st.remembered, c.n_ids);
    cr_assert_eq(st.hits, (RACE_THREADS - 1) * c.n_ids);
    cr_assert_eq(st.conflicts, 0);
    store_close(c.s);
    free(c.decided_by);
    free(c.abandons);
    free(c.seen);
}

/* ---- retention ------------------------------------------------------------- */

Test(idem, ids_are_forgotten_retention_after_their_decision)
{
    idem_store *s = store_open(RETENTION_MS, 0);
    remember(s, "a", "args", "A", T0_MS + 100);
    remember(s, "b", "args", "B", T0_MS + 200);
    remember(s, "c", "args", "C", T0_MS + 300);
    cr_assert_eq(expire_at(s, T0_MS + 100 + RETENTION_MS - 1), 0);
    cr_assert_eq(stats_of(s).remembered, 3);
    cr_assert_eq(expire_at(s, T0_MS + 100 + RETENTION_MS), 1);
    idem_counters st = stats_of(s);
    cr_assert_eq(st.remembered, 2);
    cr_assert_eq(st.expired, 1);
    /* a is gone: the id is new again, even with other arguments. */
    answer a = claim_at(s, "a", "other args", T0_MS + 1150);
    cr_assert_eq(a.result, IDEM_NEW);
    epoch_enter();
    idem_abandon(s, a.pending);
    epoch_exit();
    cr_assert_eq(claim_at(s, "b", "args", T0_MS + 1150).result, IDEM_DONE);
    /* A claim past retention does not wait for the expiry: c is new now,
     * and counted expired by the claim that replaced it. */
    answer c = claim_at(s, "c", "args", T0_MS + 300 + RETENTION_MS);
    cr_assert_eq(c.result, IDEM_NEW);
    st = stats_of(s);
    cr_assert_eq(st.remembered, 1);
    cr_assert_eq(st.expired, 2);
    decide_at(s, c.pending, 0, "C2", 0, T0_MS + 300 + RETENTION_MS);
    /* b expires; the old c (replaced) is retired without being counted
     * twice; the new c stays. */
    cr_assert_eq(expire_at(s, T0_MS + 300 + RETENTION_MS), 2);
    st = stats_of(s);
    cr_assert_eq(st.remembered, 1);
    cr_assert_eq(st.expired, 3);
    answer c2 = claim_at(s, "c", "args", T0_MS + 300 + RETENTION_MS + 1);
    cr_assert_eq(c2.result, IDEM_DONE);
    cr_assert_eq(memcmp(c2.bytes, "C2", c2.len), 0);
    store_close(s);
}

Test(idem, beyond_max_ids_the_oldest_decided_are_forgotten_first)
{
    enum { MAX_IDS = 3, N = 5 };
    idem_store *s = store_open(RETENTION_MS, MAX_IDS);
    char id[16];
    for (size_t i = 0; i < N; i++) {
        id_name(id, sizeof id, "r", i);
        remember(s, id, "args", "x", T0_MS + (int64_t)i);
    }
    /* A PENDING id is never counted nor forgotten. */
    answer p = claim_at(s, "pending", "args", T0_MS);
    cr_assert_eq(p.result, IDEM_NEW);
    cr_assert_eq(stats_of(s).remembered, N);
    cr_assert_eq(expire_at(s, T0_MS + N), N - MAX_IDS);
    idem_counters st = stats_of(s);
    cr_assert_eq(st.remembered, MAX_IDS);
    cr_assert_eq(st.forgotten_early, N - MAX_IDS);
    cr_assert_eq(st.expired, 0);
    cr_assert_eq(expire_at(s, T0_MS + N), 0);
    for (size_t i = 0; i < N; i++) {
        id_name(id, sizeof id, "r", i);
        answer a = claim_at(s, id, "args", T0_MS + N);
        cr_assert_eq(a.result, i < N - MAX_IDS ? IDEM_NEW : IDEM_DONE, "%s: %d", id, a.result);
        if (a.result == IDEM_NEW) {
            epoch_enter();
            idem_abandon(s, a.pending);
            epoch_exit();
        }
    }
    decide_at(s, p.pending, 0, "late", 0, T0_MS + N);
    store_close(s);
}

Test(idem, one_expiry_call_forgets_at_most_its_bound)
{
    idem_store *s = store_open(RETENTION_MS, 0);
    size_t n = IDEM_EXPIRE_MAX + 10;
    char id[32];
    for (size_t i = 0; i < n; i++) {
        id_name(id, sizeof id, "bulk", i);
        remember(s, id, "args", "", T0_MS);
    }
    cr_assert_eq(expire_at(s, T0_MS + RETENTION_MS), IDEM_EXPIRE_MAX);
    cr_assert_eq(expire_at(s, T0_MS + RETENTION_MS), 10);
    cr_assert_eq(expire_at(s, T0_MS + RETENTION_MS), 0);
    idem_counters st = stats_of(s);
    cr_assert_eq(st.remembered, 0);
    cr_assert_eq(st.expired, n);
    store_close(s);
}

/* ---- install, foreach, the record ------------------------------------------ */

#define RT_IDS 40

/* The outcome of round-trip id i: lengths around the 8-byte padding and
 * the limits. */
static size_t rt_outcome(size_t i, uint8_t *out)
{
    static const size_t lens[] = {0, 1, 7, 8, 9, 100, IDEM_OUTCOME_MAX};
    size_t len = lens[i % (sizeof lens / sizeof lens[0])];
    for (size_t k = 0; k < len; k++)
        out[k] = (uint8_t)(i * 31 + k);
    return len;
}

/* A distinct id of length 1 .. INV_REQUEST_ID_MAX. */
static size_t rt_id(size_t i, char *out)
{
    size_t len = 1 + (i * 13) % INV_REQUEST_ID_MAX;
    for (size_t k = 0; k < len; k++)
        out[k] = (char)('a' + (i + k) % 26);
    out[0] = (char)('A' + i % 26);
    out[len - 1] = (char)('0' + i / 26 % 10);
    return len;
}

typedef struct {
    uint8_t *buf; /* records, one after another */
    size_t used, cap;
    size_t n;
} rec_list;

static int collect_record(void *ctx, const idem_entry *e)
{
    rec_list *l = ctx;
    size_t len = idem_record_len(e);
    if (l->used + len + sizeof(uint32_t) > l->cap)
        return INV_ENOMEM;
    uint32_t len32 = (uint32_t)len;
    memcpy(l->buf + l->used, &len32, sizeof len32);
    idem_record_encode(e, l->buf + l->used + sizeof len32);
    l->used += sizeof len32 + len;
    l->n++;
    return 0;
}

/* Every decided entry of s, encoded, each behind its length, dumped on a
 * thread of its own (no assertion there: the test thread may hold an id
 * the dump waits for). */
typedef struct {
    idem_store *s;
    rec_list l;
    int rc;
} dump_arg;

static void *dump_main(void *p)
{
    dump_arg *d = p;
    epoch_enter();
    d->rc = idem_foreach(d->s, collect_record, &d->l);
    epoch_exit();
    return NULL;
}

/* Installs every record of l into s at now_ms. */
static void load(idem_store *s, const rec_list *l, int64_t now_ms)
{
    size_t at = 0;
    epoch_enter();
    for (size_t i = 0; i < l->n; i++) {
        uint32_t len;
        memcpy(&len, l->buf + at, sizeof len);
        idem_record_view v;
        cr_assert_eq(idem_record_decode(l->buf + at + sizeof len, len, &v), INV_OK, "record %zu",
                     i);
        cr_assert_eq(idem_install(s, v.id, v.id_len, v.digest, v.decided_at_ms, v.rc, v.outcome,
                                  v.outcome_len, now_ms),
                     INV_OK);
        at += sizeof len + len;
    }
    epoch_exit();
}

typedef struct {
    bool seen[RT_IDS];
    size_t n;
} rt_check;

/* Checks an entry of the loaded store against what round-trip id i had. */
static int check_loaded(void *ctx, const idem_entry *e)
{
    rt_check *c = ctx;
    size_t len;
    const char *id = idem_entry_id(e, &len);
    size_t i = (size_t)idem_entry_rc(e);
    char want_id[INV_REQUEST_ID_MAX];
    uint8_t want_out[IDEM_OUTCOME_MAX], want_digest[IDEM_DIGEST_LEN];
    TU_CHECK(i < RT_IDS, "rc %zu", i);
    if (i >= RT_IDS)
        return 1;
    size_t want_len = rt_id(i, want_id);
    size_t want_out_len = rt_outcome(i, want_out);
    idem_digest(want_id, want_len, want_digest);
    size_t out_len;
    const uint8_t *out = idem_entry_outcome(e, &out_len);
    TU_CHECK(len == want_len && memcmp(id, want_id, len) == 0, "id %zu", i);
    TU_CHECK(memcmp(idem_entry_digest(e), want_digest, IDEM_DIGEST_LEN) == 0, "digest %zu", i);
    TU_CHECK(idem_entry_decided_at_ms(e) == T0_MS + (int64_t)i, "decided_at %zu", i);
    TU_CHECK(out_len == want_out_len && (out_len == 0 || memcmp(out, want_out, out_len) == 0),
             "outcome %zu", i);
    TU_CHECK(idem_entry_ack_pos(e) == 0, "installed entries have no ack position");
    TU_CHECK(!c->seen[i], "id %zu twice", i);
    c->seen[i] = true;
    c->n++;
    return 0;
}

Test(idem, decided_entries_round_trip_through_foreach_the_record_and_install)
{
    idem_store *a = store_open(RETENTION_MS, 0);
    for (size_t i = 0; i < RT_IDS; i++) {
        char id[INV_REQUEST_ID_MAX];
        uint8_t out[IDEM_OUTCOME_MAX], d[IDEM_DIGEST_LEN];
        size_t len = rt_id(i, id);
        idem_digest(id, len, d);
        idem_entry *e = NULL;
        epoch_enter();
        cr_assert_eq(idem_claim(a, id, len, d, T0_MS, &e), IDEM_NEW, "id %zu", i);
        idem_outcome o = {(int)i, out, rt_outcome(i, out)};
        cr_assert_eq(idem_decide(a, e, &o, 99, T0_MS + (int64_t)i), INV_OK);
        epoch_exit();
    }
    /* A PENDING entry is waited for (its record may lie below a snapshot's
     * start): the dump runs in another thread while this one still holds
     * the id, then ends once it is abandoned (an abandoned id is not
     * dumped; a decided one is, test_batch_model checks). */
    answer p = claim_at(a, "pending", "args", T0_MS);
    cr_assert_eq(p.result, IDEM_NEW);
    dump_arg da = {a, {NULL, 0, (size_t)RT_IDS * 2 * (IDEM_RECORD_LEN_MAX + 4), 0}, -1};
    da.l.buf = malloc(da.l.cap);
    cr_assert_not_null(da.l.buf);
    pthread_t dumper;
    cr_assert_eq(pthread_create(&dumper, NULL, dump_main, &da), 0);
    epoch_enter();
    idem_abandon(a, p.pending);
    epoch_exit();
    cr_assert_eq(pthread_join(dumper, NULL), 0);
    cr_assert_eq(da.rc, INV_OK);
    rec_list l = da.l;
    cr_assert_eq(l.n, RT_IDS);
    idem_store *b = store_open(RETENTION_MS, 0);
    load(b, &l, T0_MS + RT_IDS);
    rt_check c = {{false}, 0};
    epoch_enter();
    cr_assert_eq(idem_foreach(b, check_loaded, &c), INV_OK);
    epoch_exit();
    tu_assert_no_failures();
    cr_assert_eq(c.n, RT_IDS);
    cr_assert_eq(stats_of(b).remembered, RT_IDS);
    /* The loaded store answers retries as the first did. */
    char id[INV_REQUEST_ID_MAX + 1] = {0};
    rt_id(3, id);
    uint8_t out[IDEM_OUTCOME_MAX];
    answer r = claim_at(b, id, id, T0_MS + RT_IDS);
    cr_assert_eq(r.result, IDEM_DONE);
    cr_assert_eq(r.len, rt_outcome(3, out));
    cr_assert_eq(memcmp(r.bytes, out, r.len), 0);
    free(l.buf);
    store_close(b);
    store_close(a);
}

Test(idem, install_skips_decisions_past_retention_and_a_later_install_replaces)
{
    idem_store *s = store_open(RETENTION_MS, 0);
    uint8_t d[IDEM_DIGEST_LEN];
    digest_of("args", d);
    int64_t now = T0_MS + 5000;
    epoch_enter();
    cr_assert_eq(idem_install(s, "old", 3, d, now - RETENTION_MS, 0, NULL, 0, now), INV_OK);
    cr_assert_eq(idem_install(s, "young", 5, d, now - RETENTION_MS + 1, 1, "y1", 2, now), INV_OK);
    cr_assert_eq(idem_install(s, "young", 5, d, now - 10, 2, "y2", 2, now), INV_OK);
    epoch_exit();
    cr_assert_eq(stats_of(s).remembered, 1);
    cr_assert_eq(claim_at(s, "old", "args", now).result, IDEM_NEW);
    answer y = claim_at(s, "young", "args", now);
    cr_assert_eq(y.result, IDEM_DONE);
    cr_assert_eq(y.rc, 2);
    cr_assert_eq(memcmp(y.bytes, "y2", 2), 0);
    /* The replaced install is retired when its time comes, uncounted. */
    cr_assert_eq(expire_at(s, now + 1), 1);
    idem_counters st = stats_of(s);
    cr_assert_eq(st.remembered, 1);
    cr_assert_eq(st.expired, 0);
    cr_assert_eq(expire_at(s, now - 10 + RETENTION_MS), 1);
    st = stats_of(s);
    cr_assert_eq(st.remembered, 0);
    cr_assert_eq(st.expired, 1);
    store_close(s);
}

/* Decision times of a store's entries, up to end (then foreach stops). */
typedef struct {
    int64_t *at, *end;
} time_list;

static int collect_times(void *ctx, const idem_entry *e)
{
    time_list *l = ctx;
    if (l->at == l->end)
        return 1;
    *l->at++ = idem_entry_decided_at_ms(e);
    return 0;
}

static int cmp_i64(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a > b) - (a < b);
}

Test(idem, installs_in_any_order_are_forgotten_oldest_first)
{
    enum { N = 257, KEEP = 100 };
    idem_store *s = store_open(RETENTION_MS * 1000, KEEP);
    tu_rng rng = tu_rng_seed(7);
    int64_t times[N];
    for (size_t i = 0; i < N; i++)
        times[i] = T0_MS + (int64_t)i;
    for (size_t i = N - 1; i > 0; i--) { /* Fisher-Yates */
        size_t j = (size_t)tu_rng_below(&rng, i + 1);
        int64_t t = times[i];
        times[i] = times[j];
        times[j] = t;
    }
    uint8_t d[IDEM_DIGEST_LEN];
    digest_of("args", d);
    epoch_enter();
    for (size_t i = 0; i < N; i++) {
        char id[16];
        id_name(id, sizeof id, "i", i);
        cr_assert_eq(idem_install(s, id, strlen(id), d, times[i], 0, NULL, 0, T0_MS + N), INV_OK);
    }
    epoch_exit();
    /* A decision made since comes after every installed one. */
    remember(s, "live", "args", "", T0_MS + N);
    cr_assert_eq(expire_at(s, T0_MS + N), N + 1 - KEEP);
    int64_t left[N + 1];
    time_list l = {left, left + N + 1};
    epoch_enter();
    cr_assert_eq(idem_foreach(s, collect_times, &l), INV_OK);
    epoch_exit();
    cr_assert_eq(l.at - left, KEEP);
    qsort(left, KEEP, sizeof left[0], cmp_i64);
    for (size_t k = 0; k < KEEP; k++)
        cr_assert_eq(left[k], T0_MS + N + 1 - KEEP + (int64_t)k, "kept %zu: %lld", k,
                     (long long)left[k]);
    store_close(s);
}

/* ---- the decoder against hostile payloads --------------------------------- */

/* decode over an exact-size heap copy, so ASan catches any read beyond. */
static int decode_copy(const uint8_t *rec, size_t len, idem_record_view *v)
{
    uint8_t *copy = malloc(len ? len : 1);
    cr_assert_not_null(copy);
    memcpy(copy, rec, len);
    int rc = idem_record_decode(copy, (uint32_t)len, v);
    if (rc == INV_OK) {
        /* The view lies inside the payload. */
        cr_assert(v->id >= (const char *)copy && v->id + v->id_len <= (const char *)copy + len);
        cr_assert(v->outcome_len == 0 ||
                  (v->outcome >= copy && v->outcome + v->outcome_len <= copy + len));
    }
    free(copy);
    return rc;
}

static size_t sample_record(uint8_t *buf, size_t id_len, size_t outcome_len)
{
    char id[INV_REQUEST_ID_MAX];
    static uint8_t outcome[IDEM_OUTCOME_MAX];
    memset(id, 'q', sizeof id);
    for (size_t i = 0; i < outcome_len; i++)
        outcome[i] = (uint8_t)(i + 1);
    uint8_t d[IDEM_DIGEST_LEN];
    digest_of("args", d);
    idem_record_view v = {id, id_len, d, -12345, INV_ECONFLICT, outcome, outcome_len};
    idem_record_encode_view(&v, buf);
    return idem_record_len_of(id_len, outcome_len);
}

Test(idem, the_record_round_trips_at_every_padding_and_at_its_maximum)
{
    static uint8_t buf[IDEM_RECORD_LEN_MAX];
    for (size_t id_len = 1; id_len <= INV_REQUEST_ID_MAX; id_len += 9)
        for (size_t out_len = 0; out_len <= 17; out_len++) {
            size_t len = sample_record(buf, id_len, out_len);
            cr_assert_eq(len % IDEM_RECORD_ALIGN, 0);
            idem_record_view v;
            cr_assert_eq(decode_copy(buf, len, &v), INV_OK, "id %zu outcome %zu", id_len, out_len);
            cr_assert_eq(v.id_len, id_len);
            cr_assert_eq(v.outcome_len, out_len);
            cr_assert_eq(v.rc, INV_ECONFLICT);
            cr_assert_eq(v.decided_at_ms, -12345);
        }
    size_t max = sample_record(buf, INV_REQUEST_ID_MAX, IDEM_OUTCOME_MAX);
    cr_assert_eq(max, IDEM_RECORD_LEN_MAX);
    idem_record_view v;
    cr_assert_eq(decode_copy(buf, max, &v), INV_OK);
    /* The layout, byte by byte, for the readers of journal dumps. */
    cr_assert_eq(buf[0], INV_REQUEST_ID_MAX);
    cr_assert_eq(buf[1] | buf[2] | buf[3], 0);
    cr_assert_eq(buf[4], (uint8_t)INV_ECONFLICT);
    cr_assert_eq(buf[7], 0xff); /* rc is negative: sign-extended, little-endian */
    cr_assert_eq(buf[32] | buf[33] << 8, IDEM_OUTCOME_MAX);
    cr_assert_eq(buf[IDEM_RECORD_HEADER_LEN], 'q');
}

Test(idem, decode_rejects_every_truncation_and_every_extension)
{
    static uint8_t buf[IDEM_RECORD_LEN_MAX + 16];
    const size_t shapes[][2] = {{1, 0}, {5, 3}, {INV_REQUEST_ID_MAX, 100}, {3, IDEM_OUTCOME_MAX}};
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        memset(buf, 0, sizeof buf);
        size_t len = sample_record(buf, shapes[k][0], shapes[k][1]);
        idem_record_view v;
        for (size_t cut = 0; cut < len; cut++)
            cr_assert_eq(decode_copy(buf, cut, &v), INV_EINVALID, "shape %zu cut to %zu", k, cut);
        for (size_t extra = 1; extra <= 16; extra++)
            cr_assert_eq(decode_copy(buf, len + extra, &v), INV_EINVALID, "shape %zu + %zu", k,
                         extra);
        cr_assert_eq(decode_copy(buf, len, &v), INV_OK);
    }
}

Test(idem, decode_rejects_lengths_out_of_range_and_non_zero_reserved_bytes)
{
    static uint8_t rec[IDEM_RECORD_LEN_MAX + 8];
    idem_record_view v;
    size_t len = sample_record(rec, 5, 3); /* 36 + 5 + 3 = 44 -> 48 */
    cr_assert_eq(len, 48);
    uint8_t bad[sizeof rec];
    /* id_len 0, beyond the maximum, and at the byte's maximum. */
    const uint8_t id_lens[] = {0, INV_REQUEST_ID_MAX + 1, 255};
    for (size_t k = 0; k < sizeof id_lens; k++) {
        memcpy(bad, rec, len);
        bad[0] = id_lens[k];
        cr_assert_eq(decode_copy(bad, len, &v), INV_EINVALID, "id_len %u", id_lens[k]);
    }
    /* outcome_len beyond the maximum, huge, or more than the payload holds
     * (it has room for 7 outcome bytes). */
    const uint32_t outcome_lens[] = {IDEM_OUTCOME_MAX + 1, UINT32_MAX, 0x80000000u, 8, 12};
    for (size_t k = 0; k < sizeof outcome_lens / sizeof outcome_lens[0]; k++) {
        memcpy(bad, rec, len);
        for (size_t b = 0; b < 4; b++)
            bad[32 + b] = (uint8_t)(outcome_lens[k] >> (8 * b));
        cr_assert_eq(decode_copy(bad, len, &v), INV_EINVALID, "outcome_len %u", outcome_lens[k]);
    }
    /* A shorter outcome_len than written leaves non-zero bytes as padding. */
    memcpy(bad, rec, len);
    bad[32] = 2;
    cr_assert_eq(decode_copy(bad, len, &v), INV_EINVALID);
    /* Reserved and padding bytes must be zero. */
    for (size_t at = 1; at <= 3; at++) {
        memcpy(bad, rec, len);
        bad[at] = 1;
        cr_assert_eq(decode_copy(bad, len, &v), INV_EINVALID, "reserved byte %zu", at);
    }
    for (size_t at = 44; at < 48; at++) {
        memcpy(bad, rec, len);
        bad[at] = 0x80;
        cr_assert_eq(decode_copy(bad, len, &v), INV_EINVALID, "padding byte %zu", at);
    }
}

Test(idem, decode_accepts_a_mutated_record_only_if_it_is_canonical)
{
    static uint8_t rec[IDEM_RECORD_LEN_MAX], bad[IDEM_RECORD_LEN_MAX], again[IDEM_RECORD_LEN_MAX];
    size_t len = sample_record(rec, 11, 20);
    tu_rng rng = tu_rng_seed(42);
    size_t accepted = 0;
    for (size_t round = 0; round < tu_iters_min(20000, 2000); round++) {
        memcpy(bad, rec, len);
        size_t flips = 1 + (size_t)tu_rng_below(&rng, 3);
        for (size_t f = 0; f < flips; f++)
            bad[tu_rng_below(&rng, len)] ^= (uint8_t)(1 + tu_rng_below(&rng, 255));
        size_t cut = tu_rng_below(&rng, 4) == 0 ? (size_t)tu_rng_below(&rng, len + 1) : len;
        idem_record_view v;
        if (decode_copy(bad, cut, &v) != INV_OK)
            continue;
        /* Accepted: it is exactly the encoding of what it decoded to. */
        accepted++;
        cr_assert_eq(idem_record_len_of(v.id_len, v.outcome_len), cut);
        uint8_t *copy = malloc(cut);
        cr_assert_not_null(copy);
        memcpy(copy, bad, cut);
        cr_assert_eq(idem_record_decode(copy, (uint32_t)cut, &v), INV_OK);
        idem_record_encode_view(&v, again);
        cr_assert_eq(memcmp(again, copy, cut), 0, "round %zu: accepted a non-canonical record",
                     round);
        free(copy);
    }
    cr_assert_gt(accepted, 0, "no mutation of the id, rc, time or digest was accepted");
}

/* ---- claims, decisions and expiry at once ----------------------------------- */

#define CE_PRODUCERS 4
#define CE_MAX_IDS 300
#define CE_RETENTION_MS 200

typedef struct {
    idem_store *s;
    size_t per_thread;
    _Atomic int64_t clock_ms; /* a shared fake wall clock, ticking per decision */
    _Atomic int producers_done;
    _Atomic uint64_t decided; /* decisions made (NEW claims decided) */
} ce_ctx;

static void ce_producer(ce_ctx *c, size_t t)
{
    uint8_t d[IDEM_DIGEST_LEN];
    digest_of("args", d);
    for (size_t i = 0; i < c->per_thread; i++) {
        /* Every other step retries an earlier id of ours: DONE, or NEW if it
         * was forgotten meanwhile; never a conflict. */
        size_t which = i % 2 && i >= 20 ? i - 20 : i;
        char id[32];
        snprintf(id, sizeof id, "p%zu-%zu", t, which);
        /* relaxed: a fake clock; only its rough order matters. */
        int64_t now = atomic_fetch_add_explicit(&c->clock_ms, 1, memory_order_relaxed);
        idem_entry *e = NULL;
        epoch_enter();
        int rc = idem_claim(c->s, id, strlen(id), d, now, &e);
        if (rc == IDEM_NEW) {
            idem_outcome o = {0, id, strlen(id)};
            TU_CHECK(idem_decide(c->s, e, &o, 0, now) == INV_OK, "decide %s", id);
            /* relaxed: read after the join. */
            atomic_fetch_add_explicit(&c->decided, 1, memory_order_relaxed);
        } else if (rc == IDEM_DONE) {
            size_t len;
            const uint8_t *out = idem_entry_outcome(e, &len);
            TU_CHECK(len == strlen(id) && memcmp(out, id, len) == 0, "%s: another's outcome", id);
        } else
            TU_CHECK(false, "%s: claim answered %d", id, rc);
        epoch_exit();
    }
    /* release: our decisions are all pushed before the consumer's last run. */
    atomic_fetch_add_explicit(&c->producers_done, 1, memory_order_release);
}

static void ce_thread(void *arg, size_t t)
{
    ce_ctx *c = arg;
    if (t < CE_PRODUCERS) {
        ce_producer(c, t);
        return;
    }
    /* acquire: pairs with the producers' release when they are done. */
    while (atomic_load_explicit(&c->producers_done, memory_order_acquire) < CE_PRODUCERS) {
        epoch_enter();
        /* relaxed: as the producers. */
        idem_expire(c->s, atomic_load_explicit(&c->clock_ms, memory_order_relaxed));
        epoch_exit();
        epoch_reclaim();
        sched_yield();
    }
}

Test(idem, claims_decisions_and_expiry_at_once_keep_the_counts, .timeout = 120)
{
    ce_ctx *c = calloc(1, sizeof *c);
    cr_assert_not_null(c);
    c->s = store_open(CE_RETENTION_MS, CE_MAX_IDS);
    c->per_thread = tu_iters_min(20000, 2000);
    atomic_init(&c->clock_ms, T0_MS);
    tu_run_threads(CE_PRODUCERS + 1, ce_thread, c);
    tu_assert_no_failures();
    /* One last run (two calls may be needed: the bound per call). */
    int64_t now = atomic_load_explicit(&c->clock_ms, memory_order_relaxed);
    while (expire_at(c->s, now) == IDEM_EXPIRE_MAX)
        ;
    idem_counters st = stats_of(c->s);
    uint64_t decided = atomic_load_explicit(&c->decided, memory_order_relaxed);
    cr_assert_leq(st.remembered, CE_MAX_IDS);
    cr_assert_eq(st.remembered + st.expired + st.forgotten_early, decided,
                 "%zu remembered + %llu expired + %llu evicted != %llu decided", st.remembered,
                 (unsigned long long)st.expired, (unsigned long long)st.forgotten_early,
                 (unsigned long long)decided);
    cr_assert_eq(st.conflicts + st.busy, 0);
    int64_t times[CE_MAX_IDS + 1];
    time_list l = {times, times + CE_MAX_IDS + 1};
    epoch_enter();
    cr_assert_eq(idem_foreach(c->s, collect_times, &l), INV_OK);
    epoch_exit();
    cr_assert_eq((size_t)(l.at - times), st.remembered);
    store_close(c->s);
    free(c);
}
