/*
 * etcd_harness.h — a real 3-member etcd cluster on loopback for the suites
 * that test core/server/etcd.c (and later the replication).
 *
 * eh_start() picks 6 free ports (bind port 0 on 127.0.0.1 and read each
 * back, all held open together so they differ), makes a fresh
 * /tmp/invcore-etcd-XXXXXX with a data dir and a log file per member, and
 * runs /usr/bin/etcd (override: $ETCD) for each member with a unique
 * cluster token and short raft timers; it returns once every member
 * answers a write through its own endpoint (bounded: EH_START_MS), trying
 * a second set of ports if the first cluster did not form (another process
 * may take a port between the probe and etcd's bind). eh_kill() SIGKILLs
 * one member and reaps it; eh_stop() SIGTERMs the rest, SIGKILLs any that
 * outlive EH_TERM_GRACE_MS, reaps them all and removes the directory.
 *
 * Invariants: only pids this harness forked are signalled; every wait is
 * bounded; a member's pid is 0 once it has been reaped.
 */
#ifndef ETCD_HARNESS_H
#define ETCD_HARNESS_H

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "server/etcd.h"
#include "test_util.h"

#define EH_MEMBERS 3
#define EH_START_MS 20000u /* the cluster must answer within this */
#define EH_TERM_GRACE_MS 1000u /* SIGTERM, then SIGKILL after this */
#define EH_STOP_MS 5000u /* a SIGKILLed member is reaped within this */
#define EH_POLL_MS 50u /* between readiness probes and reaping polls */
#define EH_START_TRIES 2 /* fresh ports when a cluster did not form */
#define EH_CLIENT_TIMEOUT_MS 10000u /* a test client's per-call deadline */
#define EH_URL_MAX 64
#define EH_PATH_MAX 512
#define EH_ARGS_MAX 32

typedef struct {
    char dir[EH_PATH_MAX];
    pid_t pid[EH_MEMBERS];
    int client_port[EH_MEMBERS], peer_port[EH_MEMBERS];
    char url[EH_MEMBERS][EH_URL_MAX]; /* client URL of each member */
    char endpoints[EH_MEMBERS * EH_URL_MAX]; /* all of them, comma separated */
} eh_cluster;

/* n free loopback TCP ports, distinct (the sockets are held until all are
 * read). false when a socket call failed. */
static inline bool eh_free_ports(int *ports, size_t n)
{
    int fds[2 * EH_MEMBERS];
    bool ok = n <= sizeof fds / sizeof fds[0];
    size_t opened = 0;
    for (; ok && opened < n; opened++) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
        socklen_t alen = sizeof a;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        fds[opened] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ok = fds[opened] >= 0 && bind(fds[opened], (struct sockaddr *)&a, sizeof a) == 0 &&
             getsockname(fds[opened], (struct sockaddr *)&a, &alen) == 0;
        ports[opened] = ntohs(a.sin_port);
    }
    for (size_t i = 0; i < opened; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    return ok;
}

/* Forks etcd member i with its flags; its stdout and stderr go to
 * <dir>/member<i>.log. */
static inline pid_t eh_spawn(const eh_cluster *cl, int i, const char *initial, const char *token)
{
    char name[16], data[EH_PATH_MAX + 32], log[EH_PATH_MAX + 32], client[EH_URL_MAX],
        peer[EH_URL_MAX];
    snprintf(name, sizeof name, "m%d", i);
    snprintf(data, sizeof data, "%s/m%d.etcd", cl->dir, i);
    snprintf(log, sizeof log, "%s/member%d.log", cl->dir, i);
    snprintf(client, sizeof client, "http://127.0.0.1:%d", cl->client_port[i]);
    snprintf(peer, sizeof peer, "http://127.0.0.1:%d", cl->peer_port[i]);
    const char *bin = getenv("ETCD") != NULL ? getenv("ETCD") : "/usr/bin/etcd";
    const char *argv[EH_ARGS_MAX] = {bin,      "--name",
                                     name,     "--data-dir",
                                     data,     "--listen-client-urls",
                                     client,   "--advertise-client-urls",
                                     client,   "--listen-peer-urls",
                                     peer,     "--initial-advertise-peer-urls",
                                     peer,     "--initial-cluster",
                                     initial,  "--initial-cluster-state",
                                     "new",    "--initial-cluster-token",
                                     token,    "--heartbeat-interval",
                                     "50",     "--election-timeout",
                                     "500",    "--logger",
                                     "zap",    "--log-outputs",
                                     "stderr", NULL};
    pid_t pid = fork();
    if (pid == 0) {
        /* a test process that dies (a crash, a watchdog) takes its etcd
         * members with it instead of leaving them listening */
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* Waits up to ms for pid to exit; true when reaped. */
static inline bool eh_reap(pid_t pid, unsigned ms)
{
    uint64_t deadline = tu_deadline_ms(ms);
    for (;;) {
        pid_t r = waitpid(pid, NULL, WNOHANG);
        if (r == pid || (r < 0 && errno == ECHILD))
            return true;
        if (tu_past(deadline))
            return false;
        tu_sleep_ms(EH_POLL_MS);
    }
}

/* SIGKILL of member i (it is gone once this returns). */
static inline void eh_kill(eh_cluster *cl, int i)
{
    cr_assert(i >= 0 && i < EH_MEMBERS && cl->pid[i] > 0, "member %d is not running", i);
    kill(cl->pid[i], SIGKILL);
    cr_assert(eh_reap(cl->pid[i], EH_STOP_MS), "member %d did not die on SIGKILL", i);
    cl->pid[i] = 0;
}

static inline void eh_stop(eh_cluster *cl)
{
    for (int i = 0; i < EH_MEMBERS; i++)
        if (cl->pid[i] > 0)
            kill(cl->pid[i], SIGTERM);
    /* one grace period for all members together: a member whose peers
     * are gone may wait out its own timers instead of exiting; the data
     * is thrown away, so SIGKILL after the grace loses nothing */
    uint64_t grace = tu_deadline_ms(EH_TERM_GRACE_MS);
    for (int left = EH_MEMBERS; left > 0 && !tu_past(grace);) {
        left = 0;
        for (int i = 0; i < EH_MEMBERS; i++) {
            if (cl->pid[i] > 0 && waitpid(cl->pid[i], NULL, WNOHANG) == cl->pid[i])
                cl->pid[i] = 0;
            left += cl->pid[i] > 0;
        }
        if (left > 0)
            tu_sleep_ms(EH_POLL_MS);
    }
    for (int i = 0; i < EH_MEMBERS; i++) {
        if (cl->pid[i] <= 0)
            continue;
        kill(cl->pid[i], SIGKILL);
        eh_reap(cl->pid[i], EH_STOP_MS);
        cl->pid[i] = 0;
    }
    if (cl->dir[0] != '\0')
        tu_remove_tree(cl->dir);
    cl->dir[0] = '\0';
}

/* The member whose client URL is url, or -1. */
static inline int eh_member_of(const eh_cluster *cl, const char *url)
{
    for (int i = 0; i < EH_MEMBERS; i++)
        if (strcmp(cl->url[i], url) == 0)
            return i;
    return -1;
}

/* true once every member took a write through its own endpoint. */
static inline bool eh_wait_ready(const eh_cluster *cl, unsigned ms)
{
    uint64_t deadline = tu_deadline_ms(ms);
    bool ready[EH_MEMBERS] = {false};
    int n_ready = 0;
    while (n_ready < EH_MEMBERS && !tu_past(deadline)) {
        for (int i = 0; i < EH_MEMBERS; i++) {
            if (ready[i])
                continue;
            etcd_client *c = etcd_open(cl->url[i], 1000, NULL, 0);
            ready[i] = c != NULL && etcd_put(c, "/eh/ready", 9, "1", 1, 0, NULL) == INV_OK;
            n_ready += ready[i];
            etcd_close(c);
        }
        if (n_ready < EH_MEMBERS)
            tu_sleep_ms(EH_POLL_MS * 4);
    }
    return n_ready == EH_MEMBERS;
}

static inline bool eh_try_start(eh_cluster *cl)
{
    int ports[2 * EH_MEMBERS];
    char initial[EH_MEMBERS * (EH_URL_MAX + 8)], token[64];
    memset(cl, 0, sizeof *cl);
    if (!eh_free_ports(ports, 2 * EH_MEMBERS))
        return false;
    snprintf(cl->dir, sizeof cl->dir, "/tmp/invcore-etcd-XXXXXX");
    if (mkdtemp(cl->dir) == NULL)
        return false;
    size_t used = 0, eused = 0;
    for (int i = 0; i < EH_MEMBERS; i++) {
        cl->client_port[i] = ports[i];
        cl->peer_port[i] = ports[EH_MEMBERS + i];
        snprintf(cl->url[i], sizeof cl->url[i], "http://127.0.0.1:%d", cl->client_port[i]);
        used += (size_t)snprintf(initial + used, sizeof initial - used, "%sm%d=http://127.0.0.1:%d",
                                 i > 0 ? "," : "", i, cl->peer_port[i]);
        eused += (size_t)snprintf(cl->endpoints + eused, sizeof cl->endpoints - eused, "%s%s",
                                  i > 0 ? "," : "", cl->url[i]);
    }
    snprintf(token, sizeof token, "invcore-%d-%" PRIu64, (int)getpid(), tu_now_ns());
    for (int i = 0; i < EH_MEMBERS; i++)
        cl->pid[i] = eh_spawn(cl, i, initial, token);
    return eh_wait_ready(cl, EH_START_MS);
}

/* A running, answering cluster (the test fails otherwise). */
static inline void eh_start(eh_cluster *cl)
{
    for (int t = 0; t < EH_START_TRIES; t++) {
        if (eh_try_start(cl))
            return;
        fprintf(stderr, "etcd_harness: cluster in %s did not form (try %d)\n", cl->dir, t + 1);
        eh_stop(cl);
    }
    cr_assert_fail("etcd cluster did not start within %u ms", EH_START_MS);
}

#endif
