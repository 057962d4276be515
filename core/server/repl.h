/*
 * repl.h — invcored's cluster mode (docs/REPLICATION.md): one node of a
 * cluster whose journal lives in etcd. The node starts as a standby: it
 * follows the log (repl_log.h) and applies each entry to its replica
 * engine with every request paused (the server's loops: cfg->pause). Once it has
 * applied everything and wins the election (repl_elect.h), it promotes its
 * engine and ships every batch its journal writes as one fenced etcd
 * transaction; a write is acknowledged once etcd committed it (the
 * engine's gate, inv_repl_acked) and the local journal has it.
 *
 * The leader compacts the log below its latest snapshot (and below what
 * every live standby has applied); a standby that finds the log no longer
 * holds its position copies the leader's snapshot over RESP
 * (REPL.SNAPSHOT, REPL.SNAPSHOT.READ) and restarts on it.
 *
 * A leader that loses its lease, or whose append is fenced out, stops
 * acknowledging at once and restarts itself as a standby (exec of its own
 * command line); its data directory is marked (REPL_LED_FILE) so that the
 * restart discards what it wrote but never replicated and copies the log
 * again.
 *
 * Threads: one of its own (follow, promote, ship) plus the elector's;
 * repl_writable and repl_info may be called from any thread.
 */
#ifndef INV_SERVER_REPL_H
#define INV_SERVER_REPL_H

#include <stdbool.h>
#include <stdint.h>

#include "invcore.h"
#include "server/repl_elect.h"

/* The marker of a data directory whose engine led: its journal may hold
 * records the log never got. */
#define REPL_LED_FILE "repl.led"
/* Bytes of a path repl builds in the data directory (the directory, '/',
 * a file name, NUL): Linux's PATH_MAX, as JOURNAL_PATH_MAX, so that any
 * directory the engine opened fits; a longer path is refused, never cut. */
#define REPL_PATH_MAX 4096u
/* Bytes the leader's journal may have written ahead of etcd's commits:
 * beyond it the journal's writer waits (back-pressure on the writers). */
#define REPL_SHIP_QUEUE_BYTES (64u << 20)
/* How long the follower waits for an entry before it looks at the head
 * and the election again. */
#define REPL_FOLLOW_POLL_MS 50u
/* Between retries of an etcd call whose outcome was unknown. */
#define REPL_RETRY_MS 20u
/* A standby publishes its applied position under /<cluster>/standby/<its
 * address> this often, on a lease of REPL_PROGRESS_TTL_FACTOR lease TTLs
 * (a dead standby stops holding the log back once it expires). */
#define REPL_PROGRESS_MS 1000u
#define REPL_PROGRESS_TTL_FACTOR 3u
/* The leader looks for a new snapshot to compact the log below this often. */
#define REPL_COMPACT_CHECK_MS 1000u
/* A standby behind the retained log copies the leader's snapshot in reads
 * of this many bytes (REPL.SNAPSHOT.READ), into this file of its data
 * directory; a snapshot bigger than REPL_SNAPSHOT_BYTES_MAX is refused. */
#define REPL_SNAPSHOT_CHUNK_BYTES (1u << 20)
#define REPL_SNAPSHOT_PART_FILE "repl.snapshot.part"
#define REPL_SNAPSHOT_BYTES_MAX (1ULL << 40)
/* Between attempts to copy a snapshot (no leader yet, a transfer cut). */
#define REPL_SNAPSHOT_RETRY_MS 500u
/* A refused snapshot copy is logged at its first try, then at most once per
 * this long while it stays refused (it is retried every
 * REPL_SNAPSHOT_RETRY_MS). */
#define REPL_REFUSAL_LOG_MS 30000u

typedef struct repl repl;

/* Writes "dir/name" into out (cap bytes): false when it does not fit (out
 * then holds no usable path). */
bool repl_path(char *out, size_t cap, const char *dir, const char *name);
/* Splits "host:port" or "[v6]:port" (brackets dropped) into host (cap
 * bytes, NUL-terminated) and *port (pointing into addr): false when addr is
 * neither (no colon, nothing before or after it) or the host does not fit. */
bool repl_split_addr(const char *addr, char *host, size_t cap, const char **port);

/* A snapshot file's name: 16 lowercase hex digits (its position, in
 * *pos) and ".snap"; nothing else (no path, no "..") reaches the file
 * system through REPL.SNAPSHOT.READ. */
#define REPL_SNAPSHOT_NAME_LEN 21u
bool repl_snapshot_name(const char *name, size_t len, uint64_t *pos);

typedef struct {
    const char *cluster, *etcd, *advertise;
    uint32_t lease_ttl_ms; /* 0: REPL_LEASE_TTL_MS_DEFAULT */
    const char *data_dir;
    /* What a standby sends the leader's AUTH to copy a snapshot (--repl-auth,
     * else --requirepass); NULL or "": no AUTH. */
    const char *auth;
    char **argv; /* the command line, for the restart as a standby */
    /* Stops every request from running until resume (the server's
     * server_pause / server_resume: repl knows no sockets). */
    void (*pause)(void *arg);
    void (*resume)(void *arg);
    void *pause_arg;
} repl_config;

/* Before the engine opens: a data directory marked REPL_LED_FILE is
 * emptied (its journal and snapshots), so the engine opens empty and
 * copies the log. 0, or -1 with a message in err. */
int repl_prepare_dir(const char *data_dir, char *err, size_t errlen);

/* Starts following with e (opened with inv_config.replica); cfg->pause
 * and resume fence every apply. NULL with a message in err. */
repl *repl_start(const repl_config *cfg, inv_engine *e, char *err, size_t errlen);
/* Writes may run now: this node leads, its engine is promoted and its
 * lease is valid. Lock-free. NULL (not started yet): false. */
bool repl_writable(repl *r);

typedef struct {
    bool leader; /* repl_writable */
    char leader_addr[REPL_ADDR_MAX + 1]; /* "" when unknown */
    uint64_t term;
    uint64_t applied; /* journal stream position: applied (standby) or written */
    uint64_t replicated; /* a leader's end committed in etcd, else applied */
    bool caught_up; /* a standby that applied the log's head */
} repl_info;
void repl_info_get(repl *r, repl_info *out);

/* Stops the thread and the elector (no resign: the lease expires). The
 * engine may still write after (its close drains the journal through
 * the tap, which then drops the bytes): repl_free after the engine
 * closed. NULL is ignored. */
void repl_stop(repl *r);
void repl_free(repl *r);

#endif /* INV_SERVER_REPL_H */
