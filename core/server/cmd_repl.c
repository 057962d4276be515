/*
 * cmd_repl.c — the commands a cluster node answers so that clients find
 * the leader with what they already speak (docs/REPLICATION.md): ROLE as
 * Redis answers it, Sentinel's SENTINEL MASTERS / MASTER /
 * GET-MASTER-ADDR-BY-NAME from the leader key (redis-py's Sentinel,
 * ioredis and Jedis follow failovers with them), and STATE.DIGEST, a hash
 * of every level that two nodes holding the same state answer alike.
 *
 * Offsets are journal stream positions: a leader's replicated end, a
 * standby's applied end. A single node answers ROLE as a master with no
 * replicas and SENTINEL with an empty answer.
 */
#include "server/cmd_internal.h"
#include "server/repl.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

/* Rows one STATE.DIGEST page reads. */
#define DIGEST_PAGE 512u
/* Bytes of a host in "host:port" (REPL_ADDR_MAX bounds the whole). */
#define ADDR_HOST_MAX REPL_ADDR_MAX

/* Splits "host:port" or "[v6]:port": false when it is neither. */
static bool split_addr(const char *addr, char *host, size_t cap, const char **port)
{
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || colon[1] == '\0')
        return false;
    const char *h = addr;
    size_t len = (size_t)(colon - addr);
    if (h[0] == '[' && len >= 2 && h[len - 1] == ']')
        h++, len -= 2;
    if (len >= cap)
        return false;
    memcpy(host, h, len);
    host[len] = '\0';
    *port = colon + 1;
    return true;
}

static void cmd_role(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    assert(handler_call_ok(s, o, v, n, 1, 1));
    repl *r = server_ctx_repl(s->ctx);
    repl_info in = {0};
    if (r)
        repl_info_get(r, &in);
    char host[ADDR_HOST_MAX + 1];
    const char *port;
    if (!s->ctx->cluster || in.leader) {
        uint64_t offset = in.replicated;
        inv_stats st;
        /* a single node: its journal position (0 in memory; CMD_NOTENANT:
         * s->e may be NULL, which inv_stats_get refuses) */
        if (!s->ctx->cluster)
            offset = inv_stats_get(s->e, &st) == INV_OK ? st.journal_position : 0;
        resp_w_array(o, 3);
        resp_w_bulk_str(o, "master");
        resp_w_int(o, (int64_t)offset);
        resp_w_array(o, 0); /* standbys follow etcd, not this node */
        return;
    }
    bool known = split_addr(in.leader_addr, host, sizeof host, &port);
    resp_w_array(o, 5);
    resp_w_bulk_str(o, "slave");
    resp_w_bulk_str(o, known ? host : "");
    resp_w_int(o, known ? (int64_t)strtol(port, NULL, 10) : 0);
    resp_w_bulk_str(o, in.caught_up ? "connected" : "sync");
    resp_w_int(o, (int64_t)in.applied);
}

/* The leader's address when name is this cluster's and a leader is known. */
static bool leader_of(session *s, const resp_arg *name, char *host, size_t cap, const char **port,
                      repl_info *in)
{
    repl *r = server_ctx_repl(s->ctx);
    const char *cluster = s->ctx->cluster;
    if (!r || !cluster || name->len != strlen(cluster) || memcmp(name->ptr, cluster, name->len))
        return false;
    repl_info_get(r, in);
    return split_addr(in->leader_addr, host, cap, port);
}

/* A master's state as SENTINEL MASTER answers it (flat field/value). */
static void write_master(session *s, resp_out *o, const char *host, const char *port,
                         const repl_info *in)
{
    char term[24];
    snprintf(term, sizeof term, "%llu", (unsigned long long)in->term);
    const char *fields[][2] = {{"name", s->ctx->cluster},
                               {"ip", host},
                               {"port", port},
                               {"runid", ""},
                               {"flags", "master"},
                               {"num-slaves", "0"},
                               {"num-other-sentinels", "0"},
                               {"quorum", "1"},
                               {"config-epoch", term},
                               {"role-reported", "master"}};
    size_t nf = sizeof fields / sizeof fields[0];
    resp_w_map(o, nf);
    for (size_t i = 0; i < nf; i++) {
        resp_w_bulk_str(o, fields[i][0]);
        resp_w_bulk_str(o, fields[i][1]);
    }
}

static void cmd_sentinel(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    assert(handler_call_ok(s, o, v, n, 2, 3));
    char host[ADDR_HOST_MAX + 1];
    const char *port;
    repl_info in;
    if (arg_eq(&v[1], "masters") && n == 2) {
        const char *cluster = s->ctx->cluster;
        resp_arg name = {cluster ? cluster : "", cluster ? strlen(cluster) : 0};
        bool known = leader_of(s, &name, host, sizeof host, &port, &in);
        resp_w_array(o, known ? 1 : 0);
        if (known)
            write_master(s, o, host, port, &in);
    } else if (arg_eq(&v[1], "master") && n == 3) {
        if (leader_of(s, &v[2], host, sizeof host, &port, &in))
            write_master(s, o, host, port, &in);
        else
            resp_w_error(o, "ERR", "No such master with that name");
    } else if (arg_eq(&v[1], "get-master-addr-by-name") && n == 3) {
        if (leader_of(s, &v[2], host, sizeof host, &port, &in)) {
            resp_w_array(o, 2);
            resp_w_bulk_str(o, host);
            resp_w_bulk_str(o, port);
        } else {
            resp_w_null(o);
        }
    } else if ((arg_eq(&v[1], "slaves") || arg_eq(&v[1], "replicas") ||
                arg_eq(&v[1], "sentinels")) &&
               n == 3) {
        resp_w_array(o, 0); /* standbys are found through etcd, not here */
    } else {
        resp_w_errorf(o, "ERR unknown SENTINEL subcommand '%.*s'", (int)v[1].len, v[1].ptr);
    }
}

static void cmd_state_digest(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    assert(handler_call_ok(s, o, v, n, 1, 1));
    assert(s->e != NULL);
    static _Thread_local inv_level_row rows[DIGEST_PAGE];
    uint64_t sum = 0, count = 0, cursor = 0;
    do {
        size_t got = 0;
        int rc = inv_level_scan(s->e, cursor, DIGEST_PAGE, rows, DIGEST_PAGE, &got, &cursor);
        if (engine_or_reply(o, rc) != 0)
            return;
        for (size_t i = 0; i < got; i++) {
            /* available and the revision: what every node holds alike
             * (a standby counts committed units as reserved until it is
             * promoted: docs/REPLICATION.md) */
            uint64_t row[4] = {rows[i].item, rows[i].location, (uint64_t)rows[i].level.available,
                               rows[i].level.revision};
            sum += XXH3_64bits(row, sizeof row); /* a sum: the scan's order does not matter */
        }
        count += got;
    } while (cursor != 0);
    char hex[64];
    snprintf(hex, sizeof hex, "%016llx:%llu", (unsigned long long)sum, (unsigned long long)count);
    resp_w_bulk_str(o, hex);
}

const cmd_def cmd_repl_rows[] = {
    {"role", 1, 1, 0, 0, CMD_FAST | CMD_READONLY | CMD_NOTENANT, cmd_role, "ROLE"},
    {"sentinel", 2, 3, 0, 0, CMD_ADMIN | CMD_READONLY | CMD_NOTENANT, cmd_sentinel,
     "SENTINEL MASTERS|MASTER name|GET-MASTER-ADDR-BY-NAME name|REPLICAS name"},
    {"state.digest", 1, 1, 0, 0, CMD_ADMIN | CMD_READONLY, cmd_state_digest, "STATE.DIGEST"},
};
const size_t cmd_repl_rows_n = sizeof cmd_repl_rows / sizeof cmd_repl_rows[0];
