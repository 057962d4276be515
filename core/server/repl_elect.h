/*
 * repl_elect.h — leader election for replication (issue #16) on an etcd
 * lease: a node campaigns for the key /<cluster>/leader, keeps its lease
 * alive while it leads, and says — conservatively — whether it may act as
 * the leader right now.
 *
 * Contract:
 *  - The term is the etcd revision at which this node's leader key was
 *    created (its create_revision): unique and increasing across leaders.
 *  - A leader may act only until valid_until = the send time of its last
 *    successful keep-alive (or of the lease grant) + the granted TTL −
 *    REPL_LEASE_SAFETY_MS, on the monotonic clock. etcd counts the TTL from
 *    when it received the request, which is after we sent it, so
 *    valid_until passes before etcd can let another node in.
 *    repl_elect_is_leader() compares it with the clock on every call.
 *  - A lease reported gone, or valid_until passing, makes the node a
 *    follower at once; a keep-alive etcd did not answer is retried every
 *    REPL_KEEPALIVE_RETRY_MS until then (one etcd member dying is not a
 *    reason to step down). A stopped node does not resign:
 *    its lease just expires.
 *  - One thread per elector owns its etcd client; every other function may
 *    be called from any thread while it runs (repl_elect_stop excepted:
 *    once, after every other call returned). A NULL elector is refused
 *    quietly (not leader, a zeroed status, INV_EINVALID).
 */
#ifndef INV_SERVER_REPL_ELECT_H
#define INV_SERVER_REPL_ELECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "invcore.h"

/* ---- limits -------------------------------------------------------------- */

#define REPL_LEASE_TTL_MS_DEFAULT 2000u
/* etcd grants whole seconds, at least 1; a TTL above a minute would leave a
 * cluster without a writer for that long after a crash. */
#define REPL_LEASE_TTL_MS_MIN 1000u
#define REPL_LEASE_TTL_MS_MAX 60000u
/* Taken off every valid_until: covers the time between a caller's
 * is_leader() and its action (acknowledging a write), and clock rate
 * differences between this host and etcd's leader. */
#define REPL_LEASE_SAFETY_MS 250u
/* Keep-alives are sent every granted TTL / this, so each renewal comes
 * well before valid_until (a failed one deposes the node at once). */
#define REPL_KEEPALIVE_FRACTION 3u
/* A keep-alive etcd did not answer is sent again after this, until one
 * succeeds or valid_until passes (a member's death, a raft election). */
#define REPL_KEEPALIVE_RETRY_MS 50u
/* After resigning, the node does not campaign for this long, so another
 * node wins the free key. */
#define REPL_RESIGN_HOLDOFF_MS 3000u
#define REPL_CLUSTER_MAX 64u /* bytes of a cluster name, [A-Za-z0-9_.-] */
#define REPL_ADDR_MAX 255u /* bytes of "host:port" */

typedef enum { REPL_ROLE_FOLLOWER = 0, REPL_ROLE_LEADER = 1 } repl_role;

typedef struct {
    const char *etcd_endpoints; /* CSV, as etcd_open takes it */
    const char *cluster; /* 1..REPL_CLUSTER_MAX bytes of [A-Za-z0-9_.-] */
    const char *advertise; /* "host:port": what clients are told */
    uint32_t lease_ttl_ms; /* 0: REPL_LEASE_TTL_MS_DEFAULT; rounded up to s */
    /* NULL: always may. Called on the elector's thread before each
     * campaign (a standby campaigns only once it has applied everything);
     * it must not call back into this elector. */
    bool (*may_campaign)(void *arg);
    void *may_campaign_arg;
} repl_elect_config;

/* What the node knows (repl_elect_state). */
typedef struct {
    repl_role role; /* LEADER only while valid_until is ahead of the clock */
    uint64_t term; /* the leader's term, 0 when no leader is known */
    char leader_addr[REPL_ADDR_MAX + 1]; /* "" when no leader is known */
    /* For this node's current or last leadership: the monotonic instant
     * (ns) it stops or stopped acting as leader (valid_until, or the
     * earlier step-down). 0 if it never led. */
    uint64_t leader_until_ns;
    uint64_t granted_ttl_ms; /* the last TTL etcd granted, 0 before any */
} repl_elect_status;

typedef struct repl_elect repl_elect;

/* 1..REPL_CLUSTER_MAX bytes of [A-Za-z0-9_.-] (NULL: false). */
bool repl_cluster_valid(const char *s);

/* Validates cfg (NULL with a message in err otherwise), opens an etcd
 * client and starts the elector's thread. Contacts etcd only from that
 * thread, so a cluster that is down does not fail the start. */
repl_elect *repl_elect_start(const repl_elect_config *cfg, char *err, size_t errlen);
/* true (and *term_out, which may be NULL) while this node leads and its
 * valid_until is ahead of the clock. Takes no lock, allocates nothing. */
bool repl_elect_is_leader(repl_elect *e, uint64_t *term_out);
void repl_elect_state(repl_elect *e, repl_elect_status *out);
/* A leader revokes its lease (its key goes, another node can take over at
 * once) and becomes a follower, not campaigning for REPL_RESIGN_HOLDOFF_MS.
 * is_leader is false once this is called. INV_OK; INV_ECONFLICT when not
 * leader; INV_EIO when etcd did not confirm the revoke (the lease then
 * expires on its own). */
int repl_elect_resign(repl_elect *e);
/* For tests: while paused the node sends no keep-alive and does not
 * campaign, as a frozen process would, yet it still steps down when its
 * valid_until passes. */
void repl_elect_pause(repl_elect *e, bool paused);
/* Stops the thread promptly (within one etcd call's timeout), without
 * resigning, and frees everything. NULL is ignored. */
void repl_elect_stop(repl_elect *e);

#endif
