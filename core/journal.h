/*
 * journal.h — the append-only journal: reserve / publish, group commit,
 * durability waits, segment files and replay. Generic: records are typed
 * byte strings; the engine decides what they mean (types >= 16).
 *
 * Two files implement it: journal.c writes (the ring, reservations, the
 * flusher, durability waits, record framing); journal_replay.c reads the
 * segment files back (the segment scan, replay, zero tails, torn tails,
 * repair) and drops old segments. They share only the segment-file
 * declarations at the end of this header.
 *
 * Positions are byte offsets in one logical stream that starts at
 * JOURNAL_POSITION_FIRST (never 0) and only grows. A record at position p
 * occupies [p, p + journal_record_size(len)); the next record starts there.
 * Durability advances over a contiguous prefix of that stream: every record
 * starting below journal_durable_end() is durable. The on-disk format is in
 * docs/JOURNAL.md.
 *
 * Threads: any number of writers (reserve, publish, abandon, wait, stats,
 * subscribe) run concurrently; one internal flusher thread writes and
 * syncs. journal_open / journal_close are not concurrent with anything.
 */
#ifndef INV_JOURNAL_H
#define INV_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "invcore.h"

/* ---- format constants (docs/JOURNAL.md) -------------------------------- */

/* The first position of a fresh journal (8: records stay 8-byte aligned in
 * the stream, and 0 stays free to mean "no position"). */
#define JOURNAL_POSITION_FIRST 8ULL
/* The largest position: positions are levels' revisions, which fit the
 * table's version bits (TABLE_VERSION_MAX, checked in persist.c). A
 * segment named at or past it (or unaligned) is not one of ours: replay
 * passes it by, as it does any other name. */
#define JOURNAL_POSITION_MAX ((1ULL << 60) - 1)
/* Largest payload of one record: bounds every length read from disk and
 * keeps a record far smaller than the ring. */
#define JOURNAL_PAYLOAD_MAX (1u << 20)
/* Record framing: 8-byte header (u32 length, u8 type, u24 synced-back
 * distance: 0 unknown, else k where every record below position
 * p - 8 * (k - 1) was fdatasynced when the record at p was published),
 * payload padded with zeros to 8 bytes, u64 xxh3 checksum (seeded with the
 * whole header word). */
#define JOURNAL_RECORD_HEADER 8u
#define JOURNAL_RECORD_TRAILER 8u
#define JOURNAL_RECORD_OVERHEAD (JOURNAL_RECORD_HEADER + JOURNAL_RECORD_TRAILER)
#define JOURNAL_RECORD_MAX (JOURNAL_RECORD_OVERHEAD + JOURNAL_PAYLOAD_MAX)
/* The synced-back field: header bits 40..63; its largest value (a record
 * further than 8 * (JOURNAL_SYNCED_BACK_MAX - 1) bytes past the synced end
 * says 0, "unknown"). */
#define JOURNAL_SYNCED_BACK_SHIFT 40u
#define JOURNAL_SYNCED_BACK_MAX 0xffffffu
/* Segment file header: magic[8], u32 version, u32 reserved-ahead (bits
 * 0..30, a: no position at or above first + 8 * a was handed out while
 * this header was the segment's; bit 31: closed cleanly, every record
 * below that mark is fdatasynced; 0 in journals before issue 17), u64 first
 * position, u64 xxh3 of the 24 bytes before it. */
#define JOURNAL_SEGMENT_HEADER 32u
#define JOURNAL_HEADER_MARK_MASK 0x7fffffffu
#define JOURNAL_HEADER_CLEAN 0x80000000u
#define JOURNAL_FORMAT_VERSION 1u

/* Record types: 0 is invalid (an unwritten header reads as 0), 1..15
 * belong to the journal and snapshot machinery, 16..255 to the engine. */
#define JOURNAL_TYPE_INVALID 0u
#define JOURNAL_TYPE_PAD 1u /* an abandoned reservation */
#define JOURNAL_TYPE_SNAPSHOT_TRAILER 2u /* last record of a snapshot file */
#define JOURNAL_TYPE_USER_MIN 16u

/* ---- configuration defaults and limits --------------------------------- */

#define JOURNAL_SEGMENT_BYTES_DEFAULT (64ULL << 20)
#define JOURNAL_SEGMENT_BYTES_MIN 4096ULL
/* The flusher writes zeros this far ahead of a segment's records (never
 * past its end), so that an fdatasync mostly overwrites blocks the file
 * already has and commits no file-system metadata (ext4 here: ~110 us per
 * write + fdatasync against ~180 us when appending). Replay reads a tail of
 * zeros as the end of a segment's records; a clean close trims it. */
#define JOURNAL_PREALLOC_BYTES (1u << 20)
#define JOURNAL_RING_BYTES_DEFAULT (16u << 20)
/* The ring holds at least this many maximal records (back-pressure never
 * deadlocks on one big record). */
#define JOURNAL_RING_RECORDS_MIN 4u
#define JOURNAL_RING_BYTES_MAX (1ULL << 32)
/* Lazy policies (NONE, INTERVAL): their replies never wait for the
 * flusher, so writers do not wake it either (a futex wake-up and a thread
 * hand-off on every event-loop iteration). A flusher that wrote records in
 * the last JOURNAL_LAZY_IDLE_NS looks for more every JOURNAL_LAZY_POLL_NS
 * on its own; an idle one sleeps until the first writer wakes it. Waiters,
 * and a writer that finds the ring more than half full, always wake it.
 * The price: a record reaches the file up to one poll later, so a crash of
 * the process can lose up to that much more of what was acknowledged
 * (docs/JOURNAL.md). */
#define JOURNAL_LAZY_POLL_NS (1000u * 1000u)
#define JOURNAL_LAZY_IDLE_NS (50u * 1000u * 1000u)
/* Bytes one flusher write carries at most. */
#define JOURNAL_BATCH_BYTES_MAX (4u << 20)
#define JOURNAL_FSYNC_INTERVAL_MS_MAX 60000u
/* Positions are handed out only below a durable mark (the segment header's
 * reserved-ahead field), so after a crash the journal resumes above every
 * position handed out before it (revisions never repeat). The flusher keeps
 * the mark at least half of this beyond what the ring can hold past the
 * written records (written + ring_bytes), so a reservation waits for it
 * only when it runs past the ring, and moves it by rewriting the header
 * (about once per 2 MiB of records, riding the fdatasync that follows
 * anyway). A crash costs at most ring_bytes + this many positions, bridged
 * by sparse PAD records on the next open. */
#define JOURNAL_RESERVE_AHEAD_BYTES (4u << 20)
/* journal_open bridges a gap between the records on disk and its start
 * position (a crash's reserved-ahead positions, or a snapshot ahead of the
 * journal) with PAD records (sparse: 16 bytes written per MiB) up to this
 * size; a larger gap starts a new segment. */
#define JOURNAL_BRIDGE_BYTES_MAX (1ULL << 30)
/* The reserved-ahead field counts 8-byte units relative to the segment's
 * first position (31 bits: 16 GiB): segments are bounded well below it. */
#define JOURNAL_SEGMENT_BYTES_MAX (8ULL << 30)
#define JOURNAL_PATH_MAX 4096u

/* Bytes a record with a payload of len occupies in the stream and on disk. */
static inline uint64_t journal_record_size(uint32_t len)
{
    return JOURNAL_RECORD_OVERHEAD + (((uint64_t)len + 7u) & ~(uint64_t)7u);
}

/* ---- writing ------------------------------------------------------------ */

typedef struct journal journal;

/* Fault-injection hooks (tests): they stand for pwritev and fdatasync and
 * follow their contracts (bytes written or -1 with errno; 0 or -1). */
typedef ssize_t (*journal_write_hook)(void *ctx, int fd, const struct iovec *iov, int iovcnt,
                                      off_t offset);
typedef int (*journal_sync_hook)(void *ctx, int fd);

typedef struct {
    const char *dir; /* created if missing */
    uint64_t start_position; /* 0: fresh (JOURNAL_POSITION_FIRST); else the
                                 end_position journal_replay returned */
    inv_fsync_policy policy;
    uint32_t fsync_interval_ms; /* INTERVAL; 0: INV_FSYNC_INTERVAL_MS_DEFAULT */
    uint64_t segment_bytes; /* rotate past this; 0: default */
    size_t ring_bytes; /* power of two; 0: default */
    journal_write_hook write_hook; /* NULL: pwritev */
    journal_sync_hook sync_hook; /* NULL: fdatasync */
    void *hook_ctx;
    /* Longest sleep of the flusher and of waiters before they look again
     * (a defence against a lost wake-up); 0: 100 ms. Tests set it to hours
     * so that a lost wake-up hangs instead of healing. */
    uint64_t sleep_ns_max;
    /* Under NONE and INTERVAL (lazy policies): how often a busy flusher
     * looks for records on its own, so that writers never wake it (0:
     * JOURNAL_LAZY_POLL_NS), and how long after its last record it keeps
     * polling before it sleeps until a writer wakes it (0:
     * JOURNAL_LAZY_IDLE_NS). Tests set them to hours. */
    uint64_t lazy_poll_ns, lazy_idle_ns;
} journal_config;

/* Opens the journal for appending at cfg->start_position and starts its
 * flusher. Refuses (INV_EINVALID, message in errbuf) a start position that
 * does not continue the segments on disk. */
int journal_open(journal **out, const journal_config *cfg, char *errbuf, size_t errlen);

/* Reserves room for a record with a payload of payload_len bytes and
 * returns its position, or 0 when the journal failed, is closing, or
 * payload_len > JOURNAL_PAYLOAD_MAX. Lock-free: one fetch_add (and one
 * relaxed load of the durable reserved-ahead mark; past it, a wait for
 * the flusher to move the mark). A position returned is never handed out
 * again, across crashes too (JOURNAL_RESERVE_AHEAD_BYTES). Every
 * reservation must later be published or abandoned, in reservation order
 * within one thread (a later one may wait for ring space that an earlier
 * unpublished one of the same thread holds). */
uint64_t journal_reserve(journal *j, uint32_t payload_len);
/* ---- replication (docs/REPLICATION.md) ---------------------------------- */

/* A replica's journal takes only the records its leader shipped, at the
 * leader's positions: while follower is set, journal_reserve refuses (0),
 * so a stray write can never take a position the leader's log will use,
 * and journal_reserve_at is the one way in. Set before writers run;
 * cleared by a promotion that lets writers in only after it returns. */
void journal_set_follower(journal *j, bool follower);
/* A follower's reservation at exactly pos, which must be the tail (the
 * records come in stream order from one thread): pos, or 0 when pos is not
 * the tail, the journal is not a follower, failed or closing, or
 * payload_len > JOURNAL_PAYLOAD_MAX. Published or abandoned as any. */
uint64_t journal_reserve_at(journal *j, uint64_t pos, uint32_t payload_len);
/* The tap: called by the flusher after each write of records to the file,
 * with the stream bytes [first, first + total iov length) — whole framed
 * records, PAD records included, contiguous across calls, in position
 * order, each byte once. The iovecs point into the ring: valid only
 * during the call. The tap may block (back-pressure stalls the flusher,
 * then writers). Set once, before or while writers run. */
typedef void (*journal_tap_fn)(void *arg, uint64_t first, const struct iovec *iov, int iovcnt);
void journal_set_tap(journal *j, journal_tap_fn fn, void *arg);
/* Signals every subscriber's eventfd (journal_subscribe) as a durable
 * advance does: for a durability gate above the journal (replication). */
void journal_notify(journal *j);

/* Writes the record into the reservation at pos and hands it to the
 * flusher. len must be the reserved payload_len; type >= 16. May wait for
 * ring space (back-pressure). INV_EIO if the journal failed. */
int journal_publish(journal *j, uint64_t pos, uint8_t type, const void *payload, uint32_t len);
/* Fills the reservation at pos (reserved with payload_len) with a PAD
 * record that replay skips. INV_EIO if the journal failed. */
int journal_abandon(journal *j, uint64_t pos, uint32_t payload_len);

/* ---- deferred flusher wake-ups (an event loop's batching) --------------- */

/* Between journal_defer_begin(j) and journal_defer_end(j) the calling
 * thread's publishes and abandons on j do not wake the flusher: the thread
 * owes one wake-up, paid by journal_defer_end, or earlier by any wait of
 * this thread on j (durability, ring space), so a deferring thread never
 * sleeps on a flusher it did not wake. An event loop brackets each
 * iteration with them: one wake-up (and one flusher write) per iteration
 * instead of one per record, and the records of an iteration reach the
 * flusher when it ends. Per thread, one journal at a time: begin on
 * another journal first ends the current bracket (pays its wake-up);
 * begin inside a bracket on j is a no-op; end outside a bracket on j is a
 * no-op. journal_close ends the closing thread's bracket on j; another
 * thread must end its bracket before j is closed. Threads that never call
 * begin wake the flusher on every record, as before. */
void journal_defer_begin(journal *j);
void journal_defer_end(journal *j);
/* Ends this thread's bracket, on whichever journal it is (none: no-op). */
void journal_defer_end_current(void);

/* ---- durability --------------------------------------------------------- */

/* Every record starting below this position is durable: fdatasynced for
 * ALWAYS and INTERVAL, written to the kernel for NONE. */
uint64_t journal_durable_end(const journal *j);
/* The next position journal_reserve would hand out. */
uint64_t journal_tail(const journal *j);
bool journal_failed(const journal *j);
/* Blocks until the record at pos is durable (INV_OK), or the journal has
 * failed first (INV_EIO). pos 0 is durable at once. */
int journal_wait(journal *j, uint64_t pos);
/* Makes every record written so far durable on disk whatever the policy:
 * under NONE durable means written, and a snapshot must never outlive the
 * records it depends on. A no-op for ALWAYS and INTERVAL (their durable
 * end is already fdatasynced). INV_EIO on failure. */
int journal_sync_written(journal *j);
/* A new non-blocking eventfd signalled on every durable advance and on
 * failure; INV_ELIMIT past INV_DURABLE_SUBSCRIBERS_MAX, INV_EIO if eventfd
 * fails. */
int journal_subscribe(journal *j);
/* Stops signalling fd and closes it (no-op for an unknown fd). */
void journal_unsubscribe(journal *j, int fd);
/* As journal_subscribe with the caller's fd (an eventfd it owns, which
 * the journal never closes): INV_OK, INV_ELIMIT, INV_EINVALID (fd < 0).
 * One fd may be subscribed to many journals. */
int journal_subscribe_fd(journal *j, int fd);
/* Stops signalling fd (no-op for an unknown fd); does not close it. */
void journal_unsubscribe_fd(journal *j, int fd);

/* Counters are exact once the work they count is done: after
 * journal_wait(j, p) returned INV_OK, every record below p is counted in
 * records / pad_records / bytes (the flusher counts a write before it
 * publishes the durable end that covers it). */
typedef struct {
    uint64_t records; /* records of types >= 16 written (replay's count) */
    uint64_t pad_records; /* PAD records written (abandoned reservations) */
    uint64_t bytes; /* record bytes written */
    uint64_t fsyncs; /* fdatasyncs of record data */
    uint64_t records_per_fsync_max;
    double records_per_fsync_avg;
    uint64_t segments; /* segment files created by this journal */
    uint64_t durable_end, written_end, tail;
    bool failed;
    uint64_t flusher_wakeups; /* futex wake-ups of the flusher by writers */
    bool flusher_asleep; /* the flusher sleeps (or is about to) right now */
    bool flusher_polling; /* ... and looks again by itself (lazy policies) */
} journal_stats;

void journal_stats_get(const journal *j, journal_stats *out);

/* Drains every published record (all reservations must have been published
 * or abandoned), syncs, stops the flusher and frees j. INV_EIO if the
 * journal failed at any time. NULL is a no-op. */
int journal_close(journal *j);

/* ---- reading (journal_replay.c) ----------------------------------------- */

/* Called for every record (type >= 16) in position order. A non-zero return
 * stops the replay, which returns it. */
typedef int (*journal_replay_fn)(void *ctx, uint64_t pos, uint8_t type, const void *payload,
                                 uint32_t len);

/* Replays every record at position >= from_position (0: all) from the
 * segments in dir, verifying checksums. Cuts a torn tail (warning on
 * stderr naming the file and offset): a bad record with no valid record
 * after it, or one at or past the synced end the records around it name
 * (a hole in the last unsynced write: an earlier page lost while a later
 * one reached the disk). A bad record below that synced end or followed by
 * valid data in a journal that names none, a bad segment header or a gap
 * between segments is corruption: INV_EINVALID with the file and byte
 * offset in errbuf, unless repair (then cut there, warning). *end_position
 * gets where the next record goes (journal_config.start_position): past
 * every position the crashed writer may have handed out (its durable
 * reserved-ahead mark). A missing or empty dir replays nothing. INV_EIO
 * (file and offset in errbuf) on a read error. */
int journal_replay(const char *dir, uint64_t from_position, bool repair, journal_replay_fn fn,
                   void *ctx, uint64_t *end_position, char *errbuf, size_t errlen);
/* As journal_replay; also *records_end: where the last valid record (PAD
 * records included) ends, without the reserved-ahead positions
 * (from_position, at least JOURNAL_POSITION_FIRST, when there is none). A
 * replica resumes its leader's stream there. */
int journal_replay_records(const char *dir, uint64_t from_position, bool repair,
                           journal_replay_fn fn, void *ctx, uint64_t *end_position,
                           uint64_t *records_end, char *errbuf, size_t errlen);

/* Deletes the segments of dir whose records all lie below position (never
 * the last segment). Safe while a journal appends to dir. */
int journal_drop_before(const char *dir, uint64_t position);

/* ---- framing, shared with snapshot.c ----------------------------------- */

/* Writes the framed record (journal_record_size(len) bytes) to dst. */
void journal_frame_encode(uint8_t *dst, uint8_t type, const void *payload, uint32_t len);
/* Checks the record at p (avail bytes readable). NULL if valid, with
 * *type, *payload, *len and *size filled; else a short reason. Never reads
 * past avail; trusts no length. Accepts any synced-back field. */
const char *journal_frame_decode(const uint8_t *p, size_t avail, uint8_t *type,
                                 const uint8_t **payload, uint32_t *len, uint64_t *size);
/* The record at file offset off of the file rd reads (fileio.h): a
 * pointer to it with *avail readable bytes, enough for the whole record if
 * its length is possible and the file holds it (journal_frame_decode
 * checks the rest). NULL on a read error (errno, rd->err_off). */
struct fileio_reader;
const uint8_t *journal_record_read(struct fileio_reader *rd, uint64_t off, size_t *avail);
/* The record's checksum (what journal_frame_encode stores last; a record
 * with synced-back 0). */
uint64_t journal_frame_checksum(uint8_t type, const void *payload, uint32_t len);
/* The synced end a valid record at position pos names (its header at p):
 * every record below it was fdatasynced before it was published; 0 when it
 * names none. */
uint64_t journal_frame_synced(const uint8_t *p, uint64_t pos);

/* ---- segment files, shared by journal.c and journal_replay.c ------------ */

/* A segment is named <16 hex digits of its first position><suffix> and
 * opens with the file header of fileio.h (this magic and
 * JOURNAL_FORMAT_VERSION, journal_segment_format). */
#define JOURNAL_SEGMENT_MAGIC "INVJRNL1" /* 8 bytes on disk, no NUL */
#define JOURNAL_SEGMENT_SUFFIX ".jnl"
/* Segments one directory listing handles. */
#define JOURNAL_SEGMENTS_MAX (1u << 20)

/* The segment header's format (fileio.h), with the reasons replay gives
 * for a bad one. Defined in journal_replay.c. */
struct fileio_format;
extern const struct fileio_format journal_segment_format;

typedef struct {
    uint64_t first; /* first position, from the name */
    uint64_t size; /* file bytes */
} journal_segment;

/* Lists dir's segments sorted by first position. *out is malloc'd (NULL
 * when *n is 0). A missing dir has no segments. INV_EIO, INV_ELIMIT or
 * INV_ENOMEM (message in errbuf) otherwise. */
int journal_segments_list(const char *dir, journal_segment **out, size_t *n, char *errbuf,
                          size_t errlen);

#endif /* INV_JOURNAL_H */
