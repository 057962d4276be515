/*
 * main.c — invcored: parse the command line, open the engine (durability
 * deferred to the event loops), start the webhook senders and the loops,
 * wait for SIGTERM/SIGINT, then stop accepting, flush what is owed, stop
 * the webhooks, close the engine and exit 0.
 *
 * Signals are blocked in every thread (the mask is set before any thread
 * exists) and taken synchronously by sigwait in the main thread, so no
 * handler runs concurrently with the loops.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "invcore.h"
#include "server/config.h"
#include "server/repl.h"
#include "server/server.h"
#include "server/webhook.h"

#define DATA_DIR_PATH_MAX 4096
/* Descriptors kept out of maxclients besides SERVER_FDS_PER_LOOP per loop:
 * stdio, the engine's journal, snapshot and directory files, and slack for
 * the accept that EMFILE handling needs. */
#define MAIN_FDS_RESERVED 64u
/* Each tenant with a data dir holds a few descriptors (its directory lock,
 * journal segment and directory): room for this many tenants is asked
 * for besides the clients' (docs/TENANTS.md). */
#define MAIN_FDS_TENANTS 4096u

/* mkdir -p */
static int make_dirs(const char *path)
{
    char buf[DATA_DIR_PATH_MAX];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf)
        return -1;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char saved = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return -1;
            buf[i] = saved;
        }
    }
    return 0;
}

/* Every client costs a descriptor: raise the soft RLIMIT_NOFILE toward
 * the hard one if maxclients needs it, then clamp maxclients to what the
 * limit allows, so the server refuses clients politely (maxclients) rather
 * than by running out of descriptors. Logs one line when it clamps. */
static void fit_maxclients_to_fd_limit(server_config *cfg)
{
    struct rlimit rl;
    rlim_t reserve = MAIN_FDS_RESERVED + (rlim_t)cfg->threads * SERVER_FDS_PER_LOOP;
    rlim_t want = (rlim_t)cfg->maxclients + reserve;
    /* tenants' descriptors are asked for, not reserved from maxclients */
    rlim_t ask = want + MAIN_FDS_TENANTS;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < ask) {
        struct rlimit up = rl;
        up.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= ask ? ask : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &up) == 0)
            rl = up;
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want)
        return;
    unsigned fit = rl.rlim_cur > reserve ? (unsigned)(rl.rlim_cur - reserve) : 1;
    fprintf(stderr,
            "invcored: maxclients %u lowered to %u (RLIMIT_NOFILE %llu, "
            "%llu descriptors reserved)\n",
            cfg->maxclients, fit, (unsigned long long)rl.rlim_cur, (unsigned long long)reserve);
    cfg->maxclients = fit;
}

/* Parses the command line and fits it to the machine. Returns -1 to go
 * on, else the exit code (--help, --version, a bad option, no data dir). */
static int configure(server_config *cfg, int argc, char **argv)
{
    char err[256];
    config_defaults(cfg);
    if (config_parse(cfg, argc, argv, err, sizeof err) != 0) {
        fprintf(stderr, "invcored: %s\n%s", err, config_usage());
        return 2;
    }
    if (cfg->help) {
        fputs(config_usage(), stdout);
        return 0;
    }
    if (cfg->version) {
        printf("invcored %s\n", INVCORE_VERSION);
        return 0;
    }
    if (cfg->threads == 0)
        cfg->threads = config_default_threads(sysconf(_SC_NPROCESSORS_ONLN));
    fit_maxclients_to_fd_limit(cfg);
    if (cfg->data_dir != NULL && make_dirs(cfg->data_dir) != 0) {
        fprintf(stderr, "invcored: cannot create data dir %s: %s\n", cfg->data_dir,
                strerror(errno));
        return 1;
    }
    return -1;
}

/* The engine, durability deferred to the event loops; NULL after a log
 * line saying why. */
static inv_tenants *tenants_open(const server_config *cfg, server_subs *subs)
{
    inv_config ecfg;
    memset(&ecfg, 0, sizeof ecfg);
    ecfg.data_dir = cfg->data_dir;
    ecfg.fsync_policy = cfg->fsync_policy;
    ecfg.fsync_interval_ms = cfg->fsync_interval_ms;
    ecfg.defer_durability = true;
    ecfg.levels_capacity = cfg->levels_capacity;
    ecfg.items_capacity = cfg->items_capacity;
    ecfg.locations_capacity = cfg->locations_capacity;
    ecfg.holds_capacity = cfg->holds_capacity;
    ecfg.request_id_retention_ms = (uint64_t)cfg->request_id_retention_hours * 3600 * 1000;
    ecfg.request_ids_max = cfg->request_ids_max;
    ecfg.buyer_window_ms = (uint64_t)cfg->buyer_window_s * 1000;
    ecfg.history_retention_ms = (uint64_t)cfg->history_retention_hours * 3600 * 1000;
    ecfg.history_retention_bytes = cfg->history_retention_bytes;
    ecfg.replica = cfg->cluster != NULL; /* a cluster node starts as a standby */
    inv_tenants *ts = NULL;
    inv_tenant_hooks hooks;
    server_subs_hooks(subs, &hooks);
    int rc = inv_tenants_open(&ts, &ecfg, &hooks);
    if (rc != INV_OK) {
        fprintf(stderr, "invcored: cannot open the engine (data dir %s): %s %s\n",
                cfg->data_dir ? cfg->data_dir : "(in-memory)", inv_errcode(rc), inv_strerror(rc));
        return NULL;
    }
    return ts;
}

static void log_listening(const server_config *cfg, server *srv, inv_tenants *ts, inv_engine *e)
{
    inv_stats st;
    memset(&st, 0, sizeof st);
    inv_stats_get(e, &st);
    fprintf(stderr,
            "invcored %s listening on %s:%d threads=%u data=%s fsync=%s "
            "durable_replies=%s levels=%llu items=%llu locations=%llu http=%d tenants=%zu\n",
            INVCORE_VERSION, cfg->bind, server_port(srv), cfg->threads,
            cfg->data_dir ? cfg->data_dir : "in-memory", config_fsync_name(cfg->fsync_policy),
            server_durable_replies(srv) && cfg->fsync_policy == INV_FSYNC_ALWAYS ? "yes" : "no",
            (unsigned long long)st.levels, (unsigned long long)st.items,
            (unsigned long long)st.locations, server_http_port(srv), inv_tenants_count(ts));
    fflush(stderr);
}

/* repl's fence around each apply: the event loops, parked. */
static void pause_loops(void *srv)
{
    server_pause(srv);
}
static void resume_loops(void *srv)
{
    server_resume(srv);
}

int main(int argc, char **argv)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP); /* reloads --tokens */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    server_config cfg;
    int code = configure(&cfg, argc, argv);
    if (code >= 0)
        return code;
    char err[512];
    if (cfg.cluster && repl_prepare_dir(cfg.data_dir, err, sizeof err) != 0) {
        fprintf(stderr, "invcored: %s\n", err);
        return 1;
    }
    server_subs *subs = server_subs_new();
    inv_tenants *ts = subs ? tenants_open(&cfg, subs) : NULL;
    if (ts == NULL) {
        server_subs_free(subs);
        return 1;
    }
    /* the default tenant: webhooks follow its feed (docs/PROTOCOL.md) */
    inv_tenant *def = inv_tenant_default(ts);
    inv_engine *e = inv_tenant_engine(def);
    /* before the server: INFO webhooks never sees a set being built */
    webhooks *hooks = NULL;
    const webhook_config hcfg = {cfg.webhooks,           cfg.n_webhooks,         cfg.webhook_secret,
                                 cfg.webhook_secret_len, cfg.webhook_timeout_ms, cfg.data_dir};
    if (cfg.n_webhooks > 0 && webhooks_start(&hooks, e, &hcfg, err, sizeof err) != 0) {
        fprintf(stderr, "invcored: %s\n", err);
        inv_tenant_put(def);
        inv_tenants_close(ts);
        server_subs_free(subs);
        return 1;
    }
    server *srv = NULL;
    if (server_start(&srv, &cfg, ts, subs, err, sizeof err) != 0) {
        fprintf(stderr, "invcored: %s\n", err);
        webhooks_stop(hooks);
        inv_tenant_put(def);
        inv_tenants_close(ts);
        server_subs_free(subs);
        return 1;
    }
    repl *rp = NULL;
    if (cfg.cluster) {
        repl_config rc = {.cluster = cfg.cluster,
                          .etcd = cfg.etcd,
                          .advertise = cfg.advertise,
                          .lease_ttl_ms = cfg.lease_ttl_ms,
                          .data_dir = cfg.data_dir,
                          .auth = cfg.repl_auth ? cfg.repl_auth : cfg.requirepass,
                          .argv = argv,
                          .pause = pause_loops,
                          .resume = resume_loops,
                          .pause_arg = srv};
        rp = inv_tenants_count(ts) == 1 ? repl_start(&rc, e, err, sizeof err) : NULL;
        if (!rp) {
            fprintf(stderr, "invcored: cluster %s: %s\n", cfg.cluster,
                    inv_tenants_count(ts) == 1 ? err : "tenants are not replicated yet");
            server_stop(srv);
            webhooks_stop(hooks);
            server_free(srv);
            inv_tenant_put(def);
            inv_tenants_close(ts);
            server_subs_free(subs);
            return 1;
        }
        server_set_repl(srv, rp);
    }
    log_listening(&cfg, srv, ts, e);

    int sig = 0;
    for (;;) {
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig != SIGHUP)
            break;
        if (server_reload_tokens(srv, err, sizeof err) == INV_OK)
            fprintf(stderr, "invcored: SIGHUP: tokens reloaded\n");
        else
            fprintf(stderr, "invcored: SIGHUP: tokens not reloaded (the old ones stay): %s\n", err);
    }
    fprintf(stderr, "invcored: signal %d, shutting down\n", sig);
    server_stop(srv);
    repl_stop(rp); /* after the loops: none is paused by it */
    webhooks_stop(hooks); /* after the server: no INFO reads the set */
    server_free(srv);
    inv_tenant_put(def);
    inv_tenants_close(ts);
    repl_free(rp); /* after the engine: its journal's close ships through it */
    server_subs_free(subs);
    fprintf(stderr, "invcored: bye\n");
    return 0;
}
