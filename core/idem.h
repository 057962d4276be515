/*
 * idem.h — the idempotency store: which request ids were seen, with which
 * arguments, and what the first call with each answered.
 *
 * A mutating call may carry a request id (1 .. INV_REQUEST_ID_MAX bytes).
 * Its caller hashes its canonical arguments into a 128-bit digest
 * (idem_digest) and claims the id (idem_claim):
 *   IDEM_NEW      the id is new: the caller owns a PENDING entry and must
 *                 end it, once, with idem_decide (it ran: the outcome is
 *                 remembered) or idem_abandon (it changed nothing: the id
 *                 is forgotten, a later claim may take it);
 *   IDEM_DONE     the id was decided with the same digest: *out is that
 *                 entry and its outcome is the answer (change nothing);
 *   INV_ECONFLICT the id was decided with another digest;
 *   IDEM_BUSY     the id is PENDING in another call that did not end within
 *                 IDEM_PENDING_WAIT_MS (a claim waits that long for it);
 *   INV_EINVALID  a bad id length; INV_ENOMEM; INV_ELIMIT: two ids with one
 *                 128-bit hash (never seen; refused rather than confused).
 * Exactly one of any number of concurrent claims of a new id gets IDEM_NEW.
 *
 * Who may do what: idem_claim, idem_decide, idem_abandon, idem_foreach and
 * the accessors run on any thread at once, inside the caller's epoch
 * section (epoch.h), and take no lock. A decided entry never changes: it is
 * valid until the caller's section ends. idem_expire runs on one thread at
 * a time (the background thread), inside its section. idem_install runs
 * only while no other call uses the store (recovery), inside a section.
 *
 * Retention: an id is forgotten retention_ms after its decision (a claim
 * treats an entry that old as absent at once; idem_expire removes it), and
 * idem_expire forgets the oldest decided ids first while more than max_ids
 * are remembered. PENDING entries are never forgotten. "Oldest" is the
 * order decisions were pushed (decide's last step): it follows decision
 * times up to the skew between the deciding threads' now_ms, so idem_expire
 * may forget an id that much late; a claim judges retention exactly. A call
 * of idem_expire restores the count bound unless it stops at IDEM_EXPIRE_MAX
 * or at a decision still being pushed; the ids decided between calls may
 * exceed it.
 *
 * A caller must not claim an id it holds PENDING itself (one request id
 * twice in one call): the second claim waits for itself and answers
 * IDEM_BUSY after IDEM_PENDING_WAIT_MS.
 */
#ifndef INV_IDEM_H
#define INV_IDEM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "epoch.h"
#include "invcore.h"
#include "table.h"

/* Bytes of an arguments digest (XXH3-128). */
#define IDEM_DIGEST_LEN 16
/* Bytes of an outcome. The caller stores a compact binary form, not a
 * reply: a batch's rc, its failed line and a 4-byte rc per line take
 * 8 + INV_BATCH_LINES_MAX * 4 = 1032 bytes, so 2 KiB leaves room for a
 * little more per line. It bounds what one remembered id costs (and
 * IDEM_RECORD_LEN_MAX, a stack buffer). */
#define IDEM_OUTCOME_MAX 2048
/* A claim that finds its id PENDING polls it this many times (a pause
 * each) before it yields the processor between polls... */
#define IDEM_PENDING_SPINS 128
/* ... and answers IDEM_BUSY if it is still PENDING after this long. The
 * owner of a PENDING entry runs one batch (well under a millisecond); the
 * bound is for an owner descheduled or waiting for journal space, and
 * keeps the waiter's epoch section bounded. */
#define IDEM_PENDING_WAIT_MS 50
/* One idem_expire call forgets at most this many ids, so the background
 * thread's epoch section stays short; the rest go on its next call. */
#define IDEM_EXPIRE_MAX 4096

/* Positive results of idem_claim (errors are negative INV_E* codes). */
enum { IDEM_NEW = 1, IDEM_DONE = 2, IDEM_BUSY = 3 };

typedef struct idem_entry idem_entry;

/* A link of the FIFO of decided entries (first member of an entry). */
typedef struct idem_fifo_node {
    _Atomic(struct idem_fifo_node *) next;
} idem_fifo_node;

/* Vyukov's intrusive multi-producer single-consumer queue: deciding
 * threads push at `in` (one exchange), idem_expire pops at `out`. */
typedef struct {
    _Atomic(idem_fifo_node *) in; /* the newest node */
    idem_fifo_node *out; /* the oldest node (consumer only) */
    idem_fifo_node stub; /* keeps the queue non-empty */
} idem_fifo;

typedef struct idem_store {
    table by_id; /* XXH3-128 of the id -> (idem_entry *, version) */
    const void *owner; /* tag of everything retired (epoch_retire) */
    uint64_t retention_ms;
    size_t max_ids;
    idem_fifo decided; /* every decided entry, in decision order */
    /* Consumer only: an entry popped from `decided`, not yet due. */
    idem_entry *front;
    /* Entries installed by recovery (any order until idem_expire sorts
     * them by decision time); consumer only after recovery. */
    idem_entry *recovered;
    bool recovered_sorted;
    /* Decided ids in the table now (a gauge). */
    _Atomic size_t remembered;
    /* Statistics (counters since init). */
    _Atomic uint64_t expired, forgotten_early, conflicts, hits, busy;
} idem_store;

typedef struct {
    size_t remembered; /* decided ids remembered now */
    uint64_t expired; /* forgotten retention_ms after their decision */
    uint64_t forgotten_early; /* forgotten earlier: over max_ids */
    uint64_t conflicts; /* claims answered INV_ECONFLICT */
    uint64_t hits; /* claims answered IDEM_DONE */
    uint64_t busy; /* claims answered IDEM_BUSY */
} idem_counters;

/* What a call answered, given to idem_decide: rc and outcome_len bytes
 * (<= IDEM_OUTCOME_MAX) the store copies and keeps. */
typedef struct {
    int rc;
    const void *bytes;
    size_t len;
} idem_outcome;

/* retention_ms 0: INV_REQUEST_ID_RETENTION_MS_DEFAULT; max_ids 0:
 * INV_REQUEST_IDS_MAX_DEFAULT. owner tags what the store retires. */
int idem_init(idem_store *s, size_t capacity_hint, uint64_t retention_ms, size_t max_ids,
              const void *owner);
/* Only when no other thread uses s. Frees every entry still held; what
 * was retired before is freed by epoch_drain_owner(owner). */
void idem_destroy(idem_store *s);

/* XXH3-128 of a call's canonical arguments, in canonical (big-endian)
 * byte order. */
void idem_digest(const void *canonical_args, size_t len, uint8_t out[IDEM_DIGEST_LEN]);

/* See the top of this file. now_ms (wall clock) judges retention. *out:
 * the PENDING entry (IDEM_NEW) or the decided one (IDEM_DONE). */
int idem_claim(idem_store *s, const char *id, size_t len, const uint8_t digest[IDEM_DIGEST_LEN],
               int64_t now_ms, idem_entry **out);
/* Ends the caller's PENDING entry e: its outcome is remembered, decided at
 * now_ms (wall clock); an outcome of INV_ENOMEM is not (the call changed
 * nothing: e is abandoned, so a retry runs; idem_install skips one too). ack_pos: the journal position a retry acknowledges
 * on (0: none); it is not part of the record. INV_OK; INV_ELIMIT when the
 * outcome is longer than IDEM_OUTCOME_MAX (e stays PENDING: decide again
 * or abandon). Never fails otherwise (no allocation). */
int idem_decide(idem_store *s, idem_entry *e, const idem_outcome *o, uint64_t ack_pos,
                int64_t now_ms);
/* Ends the caller's PENDING entry e without an outcome: the id is
 * forgotten (waiting claims go on as if it never was). */
void idem_abandon(idem_store *s, idem_entry *e);

/* Background thread: forgets the ids past retention and, while more than
 * max_ids are remembered, the oldest. Returns how many it forgot (at most
 * IDEM_EXPIRE_MAX: more may be due). The first call after idem_install
 * also sorts what recovery installed (once, O(n log n)). */
size_t idem_expire(idem_store *s, int64_t now_ms);

void idem_stats(idem_store *s, idem_counters *out);

/* Recovery (no other call on s meanwhile): remembers a decision read from
 * a snapshot or the journal; a later install of the same id replaces the
 * earlier. A decision past retention at now_ms is skipped (INV_OK).
 * INV_EINVALID for a bad id or outcome length, INV_ENOMEM, INV_ELIMIT (a
 * hash collision, as idem_claim). */
int idem_install(idem_store *s, const char *id, size_t len, const uint8_t digest[IDEM_DIGEST_LEN],
                 int64_t decided_at_ms, int rc, const void *outcome, size_t outcome_len,
                 int64_t now_ms);

/* Calls fn for every decided entry (snapshots), in no order; a PENDING one
 * is waited for until its call decides (then visited) or abandons it (its
 * record may lie below the snapshot's start). fn returns nonzero to stop
 * (returned as is). */
int idem_foreach(idem_store *s, int (*fn)(void *ctx, const idem_entry *e), void *ctx);

/* ---- a decided entry's fields -------------------------------------------- */

const char *idem_entry_id(const idem_entry *e, size_t *len);
const uint8_t *idem_entry_digest(const idem_entry *e);
int64_t idem_entry_decided_at_ms(const idem_entry *e);
int idem_entry_rc(const idem_entry *e);
const uint8_t *idem_entry_outcome(const idem_entry *e, size_t *len);
uint64_t idem_entry_ack_pos(const idem_entry *e);

/* ---- the record (journal batch records, snapshots) ------------------------
 *
 * Little-endian, fixed layout, a multiple of 8 bytes:
 *   u8 id_len, u8 zero[3], i32 rc, i64 decided_at_ms, u8 digest[16],
 *   u32 outcome_len, id bytes, outcome bytes, zeros up to a multiple of 8.
 * Decoding trusts no length: the payload must be exactly one record. */
#define IDEM_RECORD_HEADER_LEN 36
#define IDEM_RECORD_ALIGN 8
#define IDEM_RECORD_LEN_MAX                                                                     \
    ((IDEM_RECORD_HEADER_LEN + INV_REQUEST_ID_MAX + IDEM_OUTCOME_MAX + IDEM_RECORD_ALIGN - 1) / \
     IDEM_RECORD_ALIGN * IDEM_RECORD_ALIGN)

/* A record's fields; decoded ones point into the payload. */
typedef struct {
    const char *id;
    size_t id_len;
    const uint8_t *digest; /* IDEM_DIGEST_LEN bytes */
    int64_t decided_at_ms;
    int rc;
    const uint8_t *outcome;
    size_t outcome_len;
} idem_record_view;

/* Bytes of the record of an id and an outcome of these lengths (both in
 * range). */
size_t idem_record_len_of(size_t id_len, size_t outcome_len);
/* Writes v's record (idem_record_len_of bytes) to buf: a caller that
 * journals the record before it decides encodes from the view. */
void idem_record_encode_view(const idem_record_view *v, uint8_t *buf);
/* The same for a decided entry. */
void idem_entry_view(const idem_entry *e, idem_record_view *out);
size_t idem_record_len(const idem_entry *e);
void idem_record_encode(const idem_entry *e, uint8_t *buf);
/* INV_OK and *out, or INV_EINVALID: a length out of range or not matching
 * len, a non-zero reserved or padding byte. */
int idem_record_decode(const void *payload, uint32_t len, idem_record_view *out);

#endif /* INV_IDEM_H */
