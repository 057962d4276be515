/*
 * repl_log.h — the replicated journal log in etcd (issue #16): the key
 * layout, the entry encoding, the leader's fenced append, a follower that
 * reads the log in position order, the head, and trimming old entries. It
 * knows etcd (etcd.h) and nothing of the engine: a payload is opaque bytes
 * (framed journal records) covering journal positions [first, end).
 *
 * Layout, for a cluster named C (1..REPL_CLUSTER_MAX bytes of
 * [A-Za-z0-9_.-], as repl_elect.h):
 *  - /C/leader — repl_elect.c's key; the term is its create_revision.
 *  - /C/log/<16 lowercase hex digits of first> — one entry. Fixed width, so
 *    key order is position order. Value, little-endian:
 *        [0, 8)   magic "INVRLOG1"
 *        [8, 16)  term   (the appending leader's, 1..INT64_MAX)
 *        [16, 24) first  (== the key's position; a multiple of 8)
 *        [24, 32) end    (> first; a multiple of 8)
 *        [32, 40) XXH3-64 of bytes [0, 32) followed by the payload
 *        [40, ...) the payload, exactly end - first bytes
 *  - /C/head — the log's end, written in the same txn as every entry.
 *    Value, big-endian throughout (so that etcd can compare the value
 *    lexicographically by end, which is how append fences on it):
 *        [0, 8) end, [8, 16) magic "INVRHEAD", [16, 24) term,
 *        [24, 32) XXH3-64 of bytes [0, 24)
 *
 * Invariants kept by repl_log_append (the only writer of entries):
 *  - an entry is written only by the leader of its term (the txn compares
 *    /C/leader's create_revision with the term), only where the log ends
 *    (the head's end == first, or no head yet: the first append of a
 *    cluster sets where its log starts), and only once (the entry key's
 *    create_revision is 0);
 *  - so the entries are contiguous, [first, end) of one is [end, ...) of
 *    the next, their terms never decrease, and the head's end is the end
 *    of the last entry.
 * Everything read back from etcd is checked against these (hostile input:
 * magic, lengths, checksum, key vs first, alignment, term order), never
 * trusted.
 *
 * Threads: the functions taking an etcd_client use it on the caller's
 * thread (etcd.h: one thread per client). A reader owns its own client and
 * watch and is used by one thread at a time.
 */
#ifndef INV_SERVER_REPL_LOG_H
#define INV_SERVER_REPL_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "invcore.h"
#include "server/etcd.h"
#include "server/repl_elect.h"

/* ---- limits -------------------------------------------------------------- */

#define REPL_LOG_ENTRY_HEADER_BYTES 40u
#define REPL_LOG_HEAD_BYTES 32u
/* Positions, payload lengths and so entry boundaries are multiples of this
 * (the journal frames its records on 8 bytes). */
#define REPL_LOG_ALIGN 8u
/* "/" cluster "/log/" 16 hex digits, and a NUL. */
#define REPL_LOG_KEY_MAX (REPL_CLUSTER_MAX + 24u)
/* The largest payload one entry carries; callers split bigger batches.
 * ETCD_VALUE_MAX bounds a value's raw bytes (etcd.c sends them base64 in
 * JSON, but the gateway decodes them, and etcd's --max-request-bytes
 * applies to the decoded protobuf request): it leaves ETCD_KEY_MAX + 1 KiB
 * of the request for the rest, here the entry key, the head key and value
 * and four compares (about 700 bytes with framing). Rounded down to
 * REPL_LOG_ALIGN. */
#define REPL_LOG_ENTRY_PAYLOAD_MAX \
    ((ETCD_VALUE_MAX - REPL_LOG_ENTRY_HEADER_BYTES) / REPL_LOG_ALIGN * REPL_LOG_ALIGN)
/* A follower restarts its watch (after the stream broke, or etcd compacted
 * the revision it watched from) at most this many times in one
 * repl_log_next call before reporting INV_EIO. */
#define REPL_LOG_RESYNCS_MAX 3u
/* An append re-runs its txn (once the first entry of a cluster finds no
 * head, or when the log changed while it was diagnosed) at most this many
 * times before reporting INV_ECONFLICT. */
#define REPL_LOG_APPEND_ROUNDS_MAX 3u
#define REPL_LOG_ERROR_MAX ETCD_ERROR_MAX /* bytes of a message, NUL included */

/* ---- encoding -------------------------------------------------------------- */

/* One entry, as checked. payload is end - first bytes. */
typedef struct {
    uint64_t term;
    uint64_t first, end; /* journal positions [first, end) */
    const uint8_t *payload;
    int64_t mod_revision; /* the etcd revision that wrote it (0: not read from etcd) */
} repl_log_entry;

/* The entry key of position pos into out (cap bytes, at least
 * REPL_LOG_KEY_MAX): its length without the NUL; 0 when cluster is not a
 * valid name or cap is too small. */
size_t repl_log_key(char *out, size_t cap, const char *cluster, uint64_t pos);
/* Encodes an entry into out (cap >= REPL_LOG_ENTRY_HEADER_BYTES + len):
 * INV_OK, or INV_EINVALID when an argument breaks a rule above (term 0 or
 * over INT64_MAX, len 0 or over REPL_LOG_ENTRY_PAYLOAD_MAX, first or len
 * not aligned, first + len overflowing, cap too small). */
int repl_log_entry_encode(uint8_t *out, size_t cap, uint64_t term, uint64_t first,
                          const void *payload, size_t len);
/* Checks an entry's value read from the key of position key_pos: NULL and
 * *out filled (payload points into value), or why it is refused. */
const char *repl_log_entry_check(const uint8_t *value, size_t vlen, uint64_t key_pos,
                                 repl_log_entry *out);

/* ---- the leader's side ----------------------------------------------------- */

/* Appends bytes [first, first + len) as the entry of term, with the head,
 * in one txn fenced as the invariants above say. Preconditions (else
 * INV_EINVALID, nothing sent): a valid cluster, 1 <= term <= INT64_MAX,
 * 0 < len <= REPL_LOG_ENTRY_PAYLOAD_MAX, first and len multiples of
 * REPL_LOG_ALIGN.
 * Returns INV_OK once etcd committed the entry (a quorum has it);
 * INV_ECONFLICT when fenced out: term is not the leader's, the log does
 * not end at first, or another entry holds first (nothing was written by
 * this call); INV_EIO (or INV_ENOMEM) when the outcome is unknown — the
 * request may or may not have been applied. The resolution of an unknown
 * outcome is to call repl_log_append again with the same arguments: an
 * entry already present with the same term, first, end and payload is
 * this append's own and answers INV_OK (idempotent retry); anything else
 * answers INV_ECONFLICT. A corrupt head: etcd compares only its end
 * bytes, so a head whose end still says first is replaced by a good one;
 * otherwise INV_EINVALID (nothing written; appends stay refused until an
 * operator repairs it). err (may be NULL) says why on failure. */
int repl_log_append(etcd_client *c, const char *cluster, uint64_t term, uint64_t first,
                    const void *bytes, size_t len, char *err, size_t errlen);

/* The head: *end the log's end and *term the term that wrote it (each may
 * be NULL), *revision (may be NULL) the store's revision when read (a
 * watch from revision + 1 sees every later append). INV_ENOTFOUND when
 * nothing was ever appended; INV_EINVALID when the head is corrupt. */
int repl_log_head(etcd_client *c, const char *cluster, uint64_t *end, uint64_t *term,
                  int64_t *revision, char *err, size_t errlen);

/* Deletes every entry whose key position is below pos (the keys
 * [/C/log/, key(pos))); pos should be an entry boundary: an entry that
 * starts below pos and ends above it goes too. *deleted (may be NULL) the
 * number of keys deleted, *revision (may be NULL) the store's revision
 * after the delete. The head and the leader key are not touched. Deleting
 * removes the keys but not etcd's history of them: follow with
 * repl_log_compact to bound etcd's size. */
int repl_log_delete_below(etcd_client *c, const char *cluster, uint64_t pos, int64_t *deleted,
                          int64_t *revision, char *err, size_t errlen);
/* The first position of the last entry whose key is at or below pos (the
 * entry holding pos, when the log has it): a follower of a state taken
 * at pos (a snapshot) starts there and skips what it has. INV_ENOTFOUND
 * when no entry starts at or below pos. */
int repl_log_entry_holding(etcd_client *c, const char *cluster, uint64_t pos, uint64_t *first,
                           char *err, size_t errlen);
/* Compacts etcd's history below revision (e.g. delete_below's *revision).
 * It is the whole store's, every cluster's: a watch from an older revision
 * ends (a repl_log reader resyncs by itself; repl_elect re-reads). Already
 * compacted up to revision: INV_OK. */
int repl_log_compact(etcd_client *c, int64_t revision, char *err, size_t errlen);

/* ---- the follower's side --------------------------------------------------- */

typedef struct repl_log_reader repl_log_reader;

/* A reader of cluster's log from position from (an entry boundary, a
 * multiple of REPL_LOG_ALIGN), with its own etcd client on endpoints_csv
 * and timeout_ms (as etcd_open). Contacts nobody yet. NULL with a message
 * in err when an argument is bad or memory ran out. A from beyond the
 * log's end waits for the log to reach it (entries ending at or before it
 * are skipped; one that starts before it and ends after is a conflict). */
repl_log_reader *repl_log_follow(const char *endpoints_csv, uint32_t timeout_ms,
                                 const char *cluster, uint64_t from, char *err, size_t errlen);

/* The next entry of the log in position order: out->first is from for the
 * first entry delivered and the previous entry's end after that. It reads
 * the entries that exist one key at a time (etcd_get of the expected key),
 * then, once the expected key is absent at revision R, watches the log
 * prefix from R + 1, so no append is missed in between; a watch that ends
 * (stream broken, revision compacted) is replaced the same way. Waits at
 * most timeout_ms for an entry to arrive (plus the etcd calls in flight).
 * Returns:
 *  - INV_OK: *out is the entry; out->payload is valid until the next call
 *    or repl_log_follow_stop;
 *  - INV_ENOTFOUND: nothing arrived within timeout_ms (as etcd_watch_next);
 *  - INV_EIO / INV_ENOMEM: etcd did not answer, or a watch could not be
 *    (re)started REPL_LOG_RESYNCS_MAX times; calling again retries;
 *  - INV_ELIMIT: the log no longer holds the expected position (its first
 *    retained entry starts above it): the caller must fetch a snapshot;
 *  - INV_EINVALID: a corrupt entry or head (bad magic, checksum, lengths,
 *    alignment, first != key) or a key under the prefix that is not an
 *    entry key;
 *  - INV_ECONFLICT: an entry whose term is below one already delivered,
 *    or the log does not continue at the expected position (an entry that
 *    overlaps it, or a gap, while older entries remain).
 * The last three are final: every later call returns the same code.
 * Entries that end at or below the expected position (duplicates) are
 * skipped; deletions are ignored. */
int repl_log_next(repl_log_reader *r, repl_log_entry *out, uint32_t timeout_ms);
/* The position the next entry must start at. */
uint64_t repl_log_reader_position(const repl_log_reader *r);
/* The last failure's message ("" when none). Valid until the next call. */
const char *repl_log_reader_errmsg(const repl_log_reader *r);
/* Stops the watch, closes the client, frees everything. NULL is ignored. */
void repl_log_follow_stop(repl_log_reader *r);

#endif
