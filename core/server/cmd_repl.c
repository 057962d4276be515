/*
 * cmd_repl.c — the commands a cluster node answers so that clients find
 * the leader with what they already speak (docs/REPLICATION.md): ROLE as
 * Redis answers it, Sentinel's SENTINEL MASTERS / MASTER /
 * GET-MASTER-ADDR-BY-NAME from the leader key (redis-py's Sentinel,
 * ioredis and Jedis follow failovers with them), STATE.DIGEST, a hash of
 * every level that two nodes holding the same state answer alike, and the
 * snapshot side channel a standby behind the retained log copies the
 * leader's snapshot through (REPL.SNAPSHOT, REPL.SNAPSHOT.READ).
 *
 * Offsets are journal stream positions: a leader's replicated end, a
 * standby's applied end. A single node answers ROLE as a master with no
 * replicas and SENTINEL with an empty answer.
 */
#include "server/cmd_internal.h"
#include "server/repl.h"

#include <assert.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

/* Rows one STATE.DIGEST page reads. */
#define DIGEST_PAGE 512u
/* Bytes of a host in "host:port" (REPL_ADDR_MAX bounds the whole). */
#define ADDR_HOST_MAX REPL_ADDR_MAX

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
    bool known = repl_split_addr(in.leader_addr, host, sizeof host, &port);
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
    return repl_split_addr(in->leader_addr, host, cap, port);
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

/* ---- the snapshot side channel (a standby behind the retained log) ------- */

/* REPL.SNAPSHOT: [name, size, position] of the data directory's newest
 * snapshot. */
static void cmd_repl_snapshot(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    assert(handler_call_ok(s, o, v, n, 1, 1));
    const char *dir = s->ctx->cfg->data_dir;
    DIR *d = dir ? opendir(dir) : NULL;
    if (!d) {
        resp_w_error(o, "NOTFOUND", "no data directory");
        return;
    }
    char best[REPL_SNAPSHOT_NAME_LEN + 1] = "";
    uint64_t best_pos = 0, pos;
    for (struct dirent *de; (de = readdir(d)) != NULL;)
        if (repl_snapshot_name(de->d_name, strlen(de->d_name), &pos) && pos >= best_pos) {
            best_pos = pos;
            memcpy(best, de->d_name,
                   REPL_SNAPSHOT_NAME_LEN + 1); /* checked: that long, NUL included */
        }
    struct stat st;
    bool found = best[0] && fstatat(dirfd(d), best, &st, 0) == 0;
    closedir(d);
    if (!found) {
        resp_w_error(o, "NOTFOUND", "no snapshot yet");
        return;
    }
    resp_w_array(o, 3);
    resp_w_bulk_str(o, best);
    resp_w_int(o, (int64_t)st.st_size);
    resp_w_int(o, (int64_t)best_pos);
}

/* REPL.SNAPSHOT.READ name offset count: count (1..REPL_SNAPSHOT_CHUNK_BYTES)
 * bytes of the snapshot from offset, fewer at its end. */
static void cmd_repl_snapshot_read(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    assert(handler_call_ok(s, o, v, n, 4, 4));
    uint64_t pos, off, count;
    const char *dir = s->ctx->cfg->data_dir;
    if (!dir || !repl_snapshot_name(v[1].ptr, v[1].len, &pos) ||
        resp_parse_u64(v[2].ptr, v[2].len, &off) != 0 ||
        resp_parse_u64(v[3].ptr, v[3].len, &count) != 0 || count == 0 ||
        count > REPL_SNAPSHOT_CHUNK_BYTES || off > (uint64_t)INT64_MAX) {
        resp_w_error(o, "INVALID", "expected a snapshot name, an offset and 1..1048576 bytes");
        return;
    }
    char name[REPL_SNAPSHOT_NAME_LEN + 1], path[REPL_PATH_MAX];
    memcpy(name, v[1].ptr, REPL_SNAPSHOT_NAME_LEN); /* checked: that long */
    name[REPL_SNAPSHOT_NAME_LEN] = '\0';
    if (!repl_path(path, sizeof path, dir, name)) {
        resp_w_error(o, "INVALID", "the snapshot path is too long");
        return;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    static _Thread_local char buf[REPL_SNAPSHOT_CHUNK_BYTES];
    ssize_t got = fd >= 0 ? pread(fd, buf, (size_t)count, (off_t)off) : -1;
    if (fd >= 0)
        close(fd);
    if (got < 0) {
        resp_w_error(o, "NOTFOUND", "no such snapshot (a newer one replaced it)");
        return;
    }
    resp_w_bulk(o, buf, (size_t)got);
}

const cmd_def cmd_repl_rows[] = {
    {"role", 1, 1, 0, 0, CMD_FAST | CMD_READONLY | CMD_NOTENANT, cmd_role, "ROLE"},
    {"sentinel", 2, 3, 0, 0, CMD_ADMIN | CMD_READONLY | CMD_NOTENANT, cmd_sentinel,
     "SENTINEL MASTERS|MASTER name|GET-MASTER-ADDR-BY-NAME name|REPLICAS name"},
    {"state.digest", 1, 1, 0, 0, CMD_ADMIN | CMD_READONLY, cmd_state_digest, "STATE.DIGEST"},
    {"repl.snapshot", 1, 1, 0, 0, CMD_ADMIN | CMD_READONLY | CMD_SCOPE_ADMIN | CMD_NOTENANT,
     cmd_repl_snapshot, "REPL.SNAPSHOT"},
    {"repl.snapshot.read", 4, 4, 0, 0, CMD_ADMIN | CMD_READONLY | CMD_SCOPE_ADMIN | CMD_NOTENANT,
     cmd_repl_snapshot_read, "REPL.SNAPSHOT.READ name offset count"},
};
const size_t cmd_repl_rows_n = sizeof cmd_repl_rows / sizeof cmd_repl_rows[0];
