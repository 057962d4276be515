/*
 * test_server_linearizability.c — integration: is invcored linearizable?
 * LZ_CLIENTS hiredis clients hammer LZ_LEVELS hot levels of a real
 * invcored (test_server_harness.h, --fsync always) with LEVEL.SET,
 * LEVEL.ADJUST (increments, and floored never-oversell decrements),
 * IFREV compare-and-set, LEVEL.GET and multi-line holds (HOLD.CREATE,
 * HOLD.COMMIT, HOLD.RELEASE), while this thread SIGKILLs the server and
 * starts it again on the same data dir. Every request is recorded (invoke
 * and return time on the monotonic clock, arguments, reply); a request in
 * flight at a kill has no reply. tests/lincheck.h then searches for a
 * sequential order that explains every reply.
 *
 * Quiescent points keep each search small: the clients run in rounds of
 * LZ_ROUND_OPS requests each and meet at a barrier between rounds, so no
 * request is in flight there and the checker can cut the history.
 *
 * Sizes: `make test` runs LZ_OPS_DEFAULT requests with LZ_KILLS_DEFAULT
 * kill (divided by INVCORE_STRESS_SCALE, at most LZ_SECONDS_DEFAULT of
 * load); INVCORE_LINCHECK_OPS and INVCORE_LINCHECK_KILLS (and
 * INVCORE_LINCHECK_SECONDS, the load's time bound, an hour by default
 * then) make the large run of `make crash-test`, e.g.
 * INVCORE_LINCHECK_OPS=500000 INVCORE_LINCHECK_KILLS=50 (a few minutes,
 * ~200 MB). INVCORE_SERVER_TEST_MEMORY=1 (no data dir) runs no kills: a
 * kill of an in-memory server loses everything by design.
 *
 * Verdict: the history must be linearizable when a read may observe a
 * change that is not durable yet (docs/PROTOCOL.md, "Durability of
 * replies") and a crash then loses it; the strict verdict (no such read)
 * is printed too, and on a failure the units-only one (revisions not
 * checked), which tells a wrong revision from units seen wrong.
 */
#include "test_server_harness.h"

#include <stdatomic.h>

#include "lincheck.h"

#define LZ_CLIENTS 8
#define LZ_LEVELS 3 /* hot levels: items LZ_ITEM0.. at location LZ_LOC */
#define LZ_ITEM0 101
#define LZ_LOC 1
#define LZ_ROUND_OPS 16 /* requests per client between two barriers */
#define LZ_OPS_DEFAULT 16000 /* requests of the `make test` run: 2000 per client */
#define LZ_OPS_MIN 800 /* under the largest stress scale */
#define LZ_KILLS_DEFAULT 1
#define LZ_KILLS_MAX 10000
#define LZ_SECONDS_DEFAULT 12 /* bound on the load's time (sanitized servers are slow) */
#define LZ_START_QTY 10
#define LZ_SET_MAX 20 /* LEVEL.SET picks 0..LZ_SET_MAX */
#define LZ_HOLD_TTL_MS 600000 /* no hold expires during a run */
#define LZ_RESTART_WAIT_MS 60000 /* a client's bound on waiting for a restart */
#define LZ_CMD_ARGS (4 + 3 * LC_LINES_MAX)

_Static_assert(LZ_LEVELS <= LC_LEVELS_MAX, "the checker's level limit");
_Static_assert(LZ_CLIENTS <= LC_CLIENTS_MAX, "the checker's client limit");
_Static_assert(LZ_CLIENTS *LZ_ROUND_OPS * 2 < LC_WINDOW_MAX, "a round fits a window");

/* What the clients share with the test's thread. */
typedef struct {
    pthread_barrier_t round_end, round_go;
    _Atomic int port; /* the current server's */
    _Atomic unsigned generation; /* raised after each restart */
    _Atomic uint64_t completed; /* requests done, all clients */
    _Atomic int done; /* the clients left their loop */
    bool go; /* written by the barrier's serial thread between the barriers */
    uint64_t target_ops;
    uint64_t deadline_ns;
} lz_shared;

typedef enum { LZ_HOLD_NONE, LZ_HOLD_LIVE, LZ_HOLD_UNSURE } lz_hold_state;

typedef struct {
    lz_shared *sh;
    unsigned id;
    tu_rng rng;
    redisContext *c;
    unsigned generation;
    lc_history h;
    uint64_t last_rev[LZ_LEVELS]; /* the last revision seen per level */
    lz_hold_state hold;
    uint32_t hold_seq;
    lc_op hold_op; /* the current hold's lines */
    uint64_t creates_ok;
} lz_client;

static uint64_t env_u64(const char *name, uint64_t dflt)
{
    const char *s = getenv(name);
    if (!s || !*s)
        return dflt;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    return end != s && *end == '\0' && v > 0 ? (uint64_t)v : dflt;
}

/* ---- one request -------------------------------------------------------- */

/* The level index of an INSUFFICIENT hold reply's "<item> <loc> <n>". */
static int level_of_item(long long item)
{
    long long l = item - LZ_ITEM0;
    return l >= 0 && l < LZ_LEVELS ? (int)l : -1;
}

/* Reads reply r (NULL: the connection failed) into op. */
static void parse_reply(lz_client *cl, lc_op *op, const redisReply *r)
{
    if (!r) {
        op->reply = LC_R_NONE;
        op->return_ns = LC_NO_RETURN;
        return;
    }
    long long a = 0, b = 0, n = 0;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
        r->element[0]->type == REDIS_REPLY_INTEGER) {
        op->reply = LC_R_LEVEL;
        op->r_available = r->element[0]->integer;
        op->r_reserved = r->element[1]->integer;
        op->r_revision = (uint64_t)r->element[2]->integer;
    } else if (r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0) {
        op->reply = LC_R_OK;
    } else if (r->type == REDIS_REPLY_ERROR && sscanf(r->str, "CONFLICT revision %lld", &n) == 1) {
        op->reply = LC_R_CONFLICT;
        op->r_revision = (uint64_t)n;
    } else if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "CONFLICT", 8) == 0) {
        op->reply = LC_R_CONFLICT; /* a hold's: no revision */
    } else if (r->type == REDIS_REPLY_ERROR &&
               sscanf(r->str, "INSUFFICIENT available %lld", &n) == 1) {
        op->reply = LC_R_INSUFFICIENT;
        op->reply_level = op->level;
        op->r_available = n;
    } else if (r->type == REDIS_REPLY_ERROR &&
               sscanf(r->str, "INSUFFICIENT %lld %lld %lld", &a, &b, &n) == 3 &&
               level_of_item(a) >= 0 && b == LZ_LOC) {
        op->reply = LC_R_INSUFFICIENT;
        op->reply_level = (uint8_t)level_of_item(a);
        op->r_available = n;
    } else if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOTFOUND", 8) == 0) {
        op->reply = LC_R_NOTFOUND;
    } else {
        op->reply = LC_R_OTHER;
        TU_CHECK(0, "client %u: unexpected reply type %d '%s' to %s", cl->id, r->type,
                 r->str ? r->str : "", lc_kind_name(op->kind));
    }
}

/* Sends argv, records the request and its reply in the client's history;
 * false when the connection failed. A failed request is in flight for
 * ever (it may have happened before the crash), unless the server it was
 * sent to had already been replaced when it was sent: it never arrived,
 * and is not recorded. */
static bool run(lz_client *cl, lc_op *op, int argc, const char **argv)
{
    op->client = (uint8_t)cl->id;
    op->invoke_ns = tu_now_ns();
    /* acquire: a generation raised before our invoke is seen (its crash's
     * up time is taken after the raise) */
    unsigned generation = atomic_load_explicit(&cl->sh->generation, memory_order_acquire);
    redisReply *r = cl->c ? redisCommandArgv(cl->c, argc, argv, NULL) : NULL;
    op->return_ns = tu_now_ns();
    parse_reply(cl, op, r);
    if (op->reply == LC_R_LEVEL || (op->reply == LC_R_CONFLICT && op->r_revision))
        cl->last_rev[op->level] = op->r_revision;
    if (r || generation == cl->generation)
        TU_CHECK(lc_history_push(&cl->h, op), "client %u: out of memory", cl->id);
    if (r)
        freeReplyObject(r);
    return r != NULL;
}

/* After a failed request: waits for the restart, reconnects. */
static void reconnect(lz_client *cl)
{
    if (cl->c)
        redisFree(cl->c);
    cl->c = NULL;
    uint64_t deadline = tu_deadline_ms(LZ_RESTART_WAIT_MS);
    /* acquire: the port stored before the generation was raised. */
    while (atomic_load_explicit(&cl->sh->generation, memory_order_acquire) == cl->generation) {
        if (tu_past(deadline)) {
            TU_CHECK(0, "client %u: no restart within %d ms", cl->id, LZ_RESTART_WAIT_MS);
            return;
        }
        tu_sleep_ms(1);
    }
    cl->generation = atomic_load_explicit(&cl->sh->generation, memory_order_acquire);
    /* relaxed: ordered by the generation's acquire above. */
    cl->c = srv_connect_port(atomic_load_explicit(&cl->sh->port, memory_order_relaxed));
    TU_CHECK(cl->c != NULL, "client %u: cannot connect after the restart", cl->id);
}

/* ---- the workload --------------------------------------------------------- */

static void fmt_level(char *item, char *loc, unsigned level)
{
    snprintf(item, 24, "%u", LZ_ITEM0 + level);
    snprintf(loc, 24, "%u", LZ_LOC);
}

/* LEVEL.SET / LEVEL.ADJUST / LEVEL.GET of a random hot level. */
static bool level_request(lz_client *cl, lc_kind kind)
{
    char item[24], loc[24], qty[24], rev[24], floor_s[] = "0";
    const char *argv[8];
    int argc = 0;
    lc_op op;
    memset(&op, 0, sizeof op);
    op.kind = (uint8_t)kind;
    op.level = (uint8_t)tu_rng_below(&cl->rng, LZ_LEVELS);
    fmt_level(item, loc, op.level);
    argv[argc++] = kind == LC_GET ? "LEVEL.GET" : kind == LC_SET ? "LEVEL.SET" : "LEVEL.ADJUST";
    argv[argc++] = item;
    argv[argc++] = loc;
    if (kind == LC_SET) {
        op.arg = tu_rng_range(&cl->rng, 0, LZ_SET_MAX);
    } else if (kind == LC_ADJUST && tu_rng_below(&cl->rng, 2)) {
        op.arg = tu_rng_range(&cl->rng, 1, 4);
    } else if (kind == LC_ADJUST) {
        op.arg = -tu_rng_range(&cl->rng, 1, 3); /* the never-oversell buy */
        op.has_floor = 1;
        argv[argc + 1] = "FLOOR";
        argv[argc + 2] = floor_s;
    }
    if (kind != LC_GET) {
        snprintf(qty, sizeof qty, "%" PRId64, op.arg);
        argv[argc++] = qty;
        argc += op.has_floor ? 2 : 0;
        if (cl->last_rev[op.level] && tu_rng_below(&cl->rng, 3) == 0) {
            op.has_ifrev = 1;
            op.ifrev = cl->last_rev[op.level];
            snprintf(rev, sizeof rev, "%" PRIu64, op.ifrev);
            argv[argc++] = "IFREV";
            argv[argc++] = rev;
        }
    }
    return run(cl, &op, argc, argv);
}

/* HOLD.CREATE of 1..3 distinct levels, 1..3 units each. */
static bool hold_create(lz_client *cl)
{
    char id[48], ttl[24], item[LC_LINES_MAX][24], loc[LC_LINES_MAX][24], qty[LC_LINES_MAX][24];
    const char *argv[LZ_CMD_ARGS];
    int argc = 0;
    lc_op *op = &cl->hold_op;
    memset(op, 0, sizeof *op);
    op->kind = LC_HOLD_CREATE;
    op->hold = ++cl->hold_seq;
    snprintf(id, sizeof id, "lz-%u-%" PRIu32, cl->id, op->hold);
    snprintf(ttl, sizeof ttl, "%d", LZ_HOLD_TTL_MS);
    argv[argc++] = "HOLD.CREATE";
    argv[argc++] = id;
    argv[argc++] = ttl;
    unsigned first = (unsigned)tu_rng_below(&cl->rng, LZ_LEVELS);
    unsigned lines = 1 + (unsigned)tu_rng_below(&cl->rng, LZ_LEVELS);
    for (unsigned i = 0; i < lines; i++) {
        unsigned l = (first + i) % LZ_LEVELS;
        op->line_level[i] = (uint8_t)l;
        op->line_qty[i] = tu_rng_range(&cl->rng, 1, 3);
        fmt_level(item[i], loc[i], l);
        snprintf(qty[i], sizeof qty[i], "%" PRId64, op->line_qty[i]);
        argv[argc++] = item[i];
        argv[argc++] = loc[i];
        argv[argc++] = qty[i];
    }
    op->n_lines = (uint8_t)lines;
    lc_op copy = *op;
    bool ok = run(cl, &copy, argc, argv);
    cl->hold = !ok ? LZ_HOLD_UNSURE : copy.reply == LC_R_OK ? LZ_HOLD_LIVE : LZ_HOLD_NONE;
    cl->creates_ok += copy.reply == LC_R_OK;
    return ok;
}

/* HOLD.COMMIT or HOLD.RELEASE of the client's hold. */
static bool hold_end(lz_client *cl, lc_kind kind)
{
    char id[48];
    snprintf(id, sizeof id, "lz-%u-%" PRIu32, cl->id, cl->hold_op.hold);
    const char *argv[2] = {kind == LC_HOLD_COMMIT ? "HOLD.COMMIT" : "HOLD.RELEASE", id};
    lc_op op = cl->hold_op;
    op.kind = (uint8_t)kind;
    bool ok = run(cl, &op, 2, argv);
    cl->hold = ok ? LZ_HOLD_NONE : LZ_HOLD_UNSURE;
    return ok;
}

/* One random request (a hold in doubt after a crash is released first). */
static bool one_request(lz_client *cl)
{
    if (cl->hold == LZ_HOLD_UNSURE)
        return hold_end(cl, LC_HOLD_RELEASE);
    unsigned r = (unsigned)tu_rng_below(&cl->rng, 100);
    if (r < 15)
        return level_request(cl, LC_GET);
    if (r < 25)
        return level_request(cl, LC_SET);
    if (r < 65)
        return level_request(cl, LC_ADJUST);
    if (cl->hold == LZ_HOLD_NONE)
        return hold_create(cl);
    return hold_end(cl, tu_rng_below(&cl->rng, 5) < 3 ? LC_HOLD_COMMIT : LC_HOLD_RELEASE);
}

/* Rounds of LZ_ROUND_OPS requests between barriers until the serial
 * thread of a barrier decides the run is over. */
static void client_main(void *arg, size_t index)
{
    lz_client *cl = &((lz_client *)arg)[index];
    lz_shared *sh = cl->sh;
    for (;;) {
        if (pthread_barrier_wait(&sh->round_end) == PTHREAD_BARRIER_SERIAL_THREAD)
            /* relaxed: a count; the barriers order go's write and reads */
            sh->go = atomic_load_explicit(&sh->completed, memory_order_relaxed) < sh->target_ops &&
                     !tu_past(sh->deadline_ns) && tu_failures() == 0;
        pthread_barrier_wait(&sh->round_go);
        if (!sh->go)
            break;
        for (unsigned i = 0; i < LZ_ROUND_OPS; i++) {
            if (!cl->c || !one_request(cl))
                reconnect(cl);
            /* relaxed: a progress count for the killer */
            atomic_fetch_add_explicit(&sh->completed, 1, memory_order_relaxed);
        }
    }
}

typedef struct {
    lz_shared *sh;
    lz_client *clients;
} lz_run;

static void *clients_thread(void *arg)
{
    lz_run *run_arg = arg;
    tu_run_threads(LZ_CLIENTS, client_main, run_arg->clients);
    /* release: the clients' histories, read after the join anyway */
    atomic_store_explicit(&run_arg->sh->done, 1, memory_order_release);
    return NULL;
}

/* ---- the test's thread: set-up, kills, the check ------------------------------ */

/* The hot levels, each with LZ_START_QTY: the model's start state. */
static void seed_levels(lc_state *init)
{
    lc_state_init(init);
    expect_status(C, "OK", "LOC.SET %d name Hot", LZ_LOC);
    for (unsigned l = 0; l < LZ_LEVELS; l++) {
        expect_status(C, "OK", "ITEM.SET %u sku LZ-%u", LZ_ITEM0 + l, l);
        long long rev = expect_level(C, LZ_START_QTY, 0, "LEVEL.SET %u %d %d", LZ_ITEM0 + l, LZ_LOC,
                                     LZ_START_QTY);
        lc_state_level(init, l, LZ_START_QTY, 0, (uint64_t)rev);
    }
}

/* SIGKILLs the server, starts it again on its data dir and lets the
 * clients reconnect; records the crash in h. */
static void kill_and_restart(lz_shared *sh, lc_history *h)
{
    cr_assert_gt(S.pid, 0);
    cr_assert_eq(kill(S.pid, SIGKILL), 0, "kill: %s", strerror(errno));
    cr_assert_eq(waitpid(S.pid, NULL, 0), S.pid);
    uint64_t dead_ns = tu_now_ns(); /* certainly dead from here on */
    S.pid = 0;
    const char *const always[] = {"--fsync", "always", NULL};
    cr_assert_eq(srv_spawn(&S, 1, always), 0, "restart on the same data dir (log %s)", S.log);
    /* relaxed + release: the port is published by the generation */
    atomic_store_explicit(&sh->port, S.port, memory_order_relaxed);
    atomic_fetch_add_explicit(&sh->generation, 1, memory_order_release);
    /* after the raise: a request invoked later was sent knowing the new
     * server (or to a dead one, and is not recorded) */
    cr_assert(lc_history_crash(h, dead_ns, tu_now_ns()));
}

/* Kills at evenly spread points of the run (by requests done, or by time
 * when the server is slower than planned), a little jitter each. */
static unsigned drive_kills(lz_shared *sh, lc_history *h, unsigned kills, uint64_t start_ns)
{
    tu_rng rng = tu_rng_seed(start_ns);
    unsigned done_kills = 0;
    uint64_t span_ns = sh->deadline_ns - start_ns;
    for (unsigned k = 0; k < kills; k++) {
        uint64_t at_ops =
            sh->target_ops * (k + 1) / (kills + 1) + tu_rng_below(&rng, LZ_CLIENTS * LZ_ROUND_OPS);
        uint64_t at_ns = start_ns + span_ns / (kills + 1) * (k + 1);
        /* acquire: pairs with the clients' thread's release of done */
        while (!atomic_load_explicit(&sh->done, memory_order_acquire) &&
               atomic_load_explicit(&sh->completed, memory_order_relaxed) < at_ops &&
               !tu_past(at_ns))
            tu_sleep_ms(1);
        if (atomic_load_explicit(&sh->done, memory_order_acquire))
            break;
        kill_and_restart(sh, h);
        done_kills++;
    }
    return done_kills;
}

/* Checks a copy of the history (lc_check sorts and trims it in place). */
static lc_verdict check_copy(const lc_history *all, const lc_state *init, const lc_config *cfg,
                             lc_result *res)
{
    lc_history copy = {0};
    cr_assert(lc_history_append(&copy, all), "out of memory");
    lc_verdict v = lc_check(copy.v, copy.n, init, cfg, res);
    lc_history_free(&copy);
    return v;
}

/* Checks the history strictly (printed) and, unless that passed, with
 * dirty reads (asserted) and, when that fails too, on units only
 * (printed: tells a wrong revision from units seen wrong). */
static void check_history(const lc_history *all, const lc_state *init, unsigned kills)
{
    lc_result res, res_strict, res_units;
    lc_config cfg = {.n_levels = LZ_LEVELS,
                     .crash_mode = LC_CRASH_STRICT,
                     .out = stderr,
                     .name = "server (strict: no read of a change a crash lost)"};
    uint64_t t0 = tu_now_ns();
    check_copy(all, init, &cfg, &res_strict);
    cfg.crash_mode = LC_CRASH_DIRTY_READS;
    cfg.name = "server (dirty reads: a read may see a change a crash lost)";
    if (res_strict.verdict == LC_OK)
        res = res_strict; /* strictly linearizable: so with dirty reads too */
    else
        check_copy(all, init, &cfg, &res);
    if (res.verdict == LC_VIOLATION) {
        cfg.units_only = true;
        cfg.name = "server (units only: revisions not checked)";
        check_copy(all, init, &cfg, &res_units);
    }
    fprintf(stderr, "lincheck server: checked in %.1f s\n", (double)(tu_now_ns() - t0) / 1e9);
    cr_assert_eq(res.crashes, kills, "crashes %zu, kills %u", res.crashes, kills);
    cr_assert_eq(res.verdict, LC_OK, "lincheck: %s", res.msg);
}

/* The server stops whatever the test's outcome (a failed assertion
 * leaves the test's body early; .fini still runs). */
static void teardown(void)
{
    srv_suite_stop();
}

TestSuite(server_linearizability, .fini = teardown);

Test(server_linearizability, concurrent_clients_and_sigkills_stay_linearizable, .timeout = 7200)
{
    srv_suite_start(NULL);
    bool durable = S.durable;
    lc_state init;
    seed_levels(&init);
    lz_shared sh;
    memset(&sh, 0, sizeof sh);
    sh.target_ops = tu_iters_min(env_u64("INVCORE_LINCHECK_OPS", LZ_OPS_DEFAULT), LZ_OPS_MIN);
    uint64_t kills = durable ? env_u64("INVCORE_LINCHECK_KILLS", LZ_KILLS_DEFAULT) : 0;
    cr_assert_leq(kills, LZ_KILLS_MAX);
    uint64_t seconds = env_u64("INVCORE_LINCHECK_SECONDS",
                               getenv("INVCORE_LINCHECK_OPS") ? 3600 : LZ_SECONDS_DEFAULT);
    uint64_t start_ns = tu_now_ns();
    sh.deadline_ns = start_ns + seconds * 1000000000ull;
    cr_assert_eq(pthread_barrier_init(&sh.round_end, NULL, LZ_CLIENTS), 0);
    cr_assert_eq(pthread_barrier_init(&sh.round_go, NULL, LZ_CLIENTS), 0);
    atomic_store_explicit(&sh.port, S.port, memory_order_relaxed); /* before the threads */
    static lz_client clients[LZ_CLIENTS];
    memset(clients, 0, sizeof clients);
    for (unsigned i = 0; i < LZ_CLIENTS; i++) {
        clients[i] = (lz_client){.sh = &sh, .id = i, .rng = tu_rng_seed(start_ns + i)};
        clients[i].c = srv_connect(&S);
    }
    lz_run run_arg = {&sh, clients};
    pthread_t tid;
    cr_assert_eq(pthread_create(&tid, NULL, clients_thread, &run_arg), 0);
    lc_history all = {0};
    unsigned done_kills = drive_kills(&sh, &all, (unsigned)kills, start_ns);
    pthread_join(tid, NULL);
    double secs = (double)(tu_now_ns() - start_ns) / 1e9;
    uint64_t creates = 0;
    for (unsigned i = 0; i < LZ_CLIENTS; i++) {
        cr_assert(lc_history_append(&all, &clients[i].h));
        creates += clients[i].creates_ok;
        lc_history_free(&clients[i].h);
        if (clients[i].c)
            redisFree(clients[i].c);
    }
    pthread_barrier_destroy(&sh.round_end);
    pthread_barrier_destroy(&sh.round_go);
    tu_assert_no_failures();
    fprintf(stderr,
            "lincheck server: %d clients, %d hot levels: %zu requests in %.1f s (%.0f/s), %u "
            "SIGKILLs, %" PRIu64 " holds created\n",
            LZ_CLIENTS, LZ_LEVELS, all.n - done_kills, secs, (double)all.n / secs, done_kills,
            creates);
    cr_assert_geq(all.n, LZ_OPS_MIN / 2, "only %zu requests", all.n);
    cr_assert_gt(creates, 0, "no hold was ever created: the workload is too dry");
    check_history(&all, &init, done_kills);
    if (durable)
        cr_assert_eq(done_kills, kills, "the run ended before every kill");
    lc_history_free(&all);
}
