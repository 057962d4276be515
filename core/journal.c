/*
 * journal.c — the journal's writer: lock-free reservations into a ring
 * buffer, one flusher thread doing group commit into segment files,
 * durability waits and subscribers, and the record framing. Reading the
 * segments back (replay, repair) is journal_replay.c. Format:
 * docs/JOURNAL.md.
 *
 * Invariants:
 *  - Positions are stream byte offsets. tail is the next free position;
 *    reservations are disjoint, contiguous and 8-byte aligned.
 *  - The record at position p lives in the ring at p & ring_mask. A record
 *    is "ready" once its 8-byte header word is non-zero; the publisher
 *    writes payload and checksum first and the header last (release), the
 *    flusher reads the header with acquire. Ring bytes are zero unless a
 *    record not yet written to the file occupies them.
 *  - ring_free_end == written_end: the flusher clears the
 *    bytes it wrote, then publishes written_end (release). A writer may fill
 *    [p, p + size) only once p + size <= ring_free_end + ring_bytes.
 *  - durable_end <= written_end <= tail. durable_end only moves after a
 *    successful fdatasync (ALWAYS, INTERVAL) or write (NONE) covering it,
 *    and never moves again once the journal has failed.
 *  - synced_end <= written_end: every record below it was fdatasynced
 *    (any policy). A published record names the synced_end it read in its
 *    header (the synced-back field), so replay can tell a hole in the last
 *    unsynced write (a torn tail) from a bad synced record (corruption).
 *  - Reserved ahead: journal_reserve hands out [p, p + size) only once
 *    p + size <= hwm, and hwm is a mark the current segment's header
 *    holds durably (fdatasynced; written under NONE). The flusher moves it
 *    (hwm_issued, written to the header first, published to hwm after the
 *    sync that covers the header). So a crash never loses the knowledge of
 *    a position handed out: replay resumes at or above the header's mark,
 *    and a revision (a position) is never handed out twice.
 *  - Only the flusher touches the segment file after journal_open.
 *  - Deferred wake-ups (journal_defer_begin): a thread in a bracket on j
 *    that published a record since it last woke the flusher owes one
 *    wake-up (defer_owed), and pays it before any wait of its own on j and
 *    at the bracket's end. So the flusher is woken at the latest when the
 *    bracket ends, and no deferring thread sleeps on a flusher that only
 *    it could wake.
 *  - Lazy policies (NONE, INTERVAL): a busy flusher POLLs (looks again
 *    within lazy_poll_ns by itself) and only waiters and a writer past
 *    half the ring wake it; writers wake only an ASLEEP (idle) one. So a
 *    published record reaches the file within lazy_poll_ns, and a waiter
 *    never sleeps on a flusher that will not look.
 */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "sysio.h"
#include "alloc.h"
#include "journal.h"

#include "clock.h"
#include "cpu.h"
#include "fileio.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Spins before a waiter sleeps on its futex. */
#define JOURNAL_WAIT_SPINS 64u
/* Sleeps re-check their condition at least this often (defence against a
 * lost wake-up, never needed for correctness of a correct wake path). */
#define JOURNAL_SLEEP_NS_MAX (100u * 1000u * 1000u)
/* Zeros one iovec of that extension carries. */
#define JOURNAL_ZERO_CHUNK (64u << 10)
#define JOURNAL_ZERO_IOV (JOURNAL_PREALLOC_BYTES / JOURNAL_ZERO_CHUNK)
static const uint8_t zero_chunk[JOURNAL_ZERO_CHUNK];
#define SEGMENT_PATH_MAX (JOURNAL_PATH_MAX + FILEIO_NAME_MAX)

_Static_assert(JOURNAL_SEGMENT_HEADER == FILEIO_HEADER_BYTES,
               "a segment opens with the fileio header");

/* A futex sleep queue: seq bumps on every advance; waiters counts the
 * threads that may sleep on it, so the flusher skips the wake syscall when
 * nobody waits. Two queues keep durability waiters from being woken by
 * mere writes. */
typedef struct {
    _Atomic uint32_t seq;
    _Atomic uint32_t waiters;
} waitq;

/* What the flusher is doing (flusher_sleeping). Writers wake an ASLEEP
 * flusher; a POLLING one (lazy policies, busy) looks again within
 * lazy_poll_ns by itself, so only waiters and a filling ring wake it. */
enum flusher_state { FLUSHER_AWAKE = 0, FLUSHER_ASLEEP = 1, FLUSHER_POLLING = 2 };

struct journal {
    /* Writers: fetch_add to reserve. Own cache line (hot RMW). */
    _Alignas(64) _Atomic uint64_t tail;
    /* Flusher -> writers. */
    _Alignas(64) _Atomic uint64_t ring_free_end;
    _Atomic uint64_t durable_end;
    /* Every record below synced_end was fdatasynced (see the invariants). */
    _Atomic uint64_t synced_end;
    /* The durable reserved-ahead mark writers stay below. */
    _Atomic uint64_t hwm;
    waitq durable_q; /* journal_wait sleepers: durable_end advanced */
    waitq hwm_q; /* reservers past the mark: hwm moved */
    waitq space_q; /* publishers out of ring space: ring_free_end moved */
    _Atomic bool failed;
    _Atomic bool closing;
    /* A replica's journal (journal_set_follower): plain reservations are
     * refused, only journal_reserve_at hands out positions. */
    _Atomic bool follower;
    /* Writers -> flusher. */
    _Alignas(64) _Atomic uint32_t flusher_seq; /* futex: flusher sleeps */
    _Atomic uint32_t flusher_sleeping; /* a flusher_state */
    /* A reserver waits for the mark to move (flusher: move it and sync). */
    _Atomic uint32_t hwm_wanted;
    /* Set once a thread has deferred wake-ups on j (sticky): waiters then
     * also wake a sleeping flusher for records other threads owe it. */
    _Atomic bool defer_used;
    /* Stats, written by the flusher only (relaxed: counters). */
    _Alignas(64) _Atomic uint64_t st_records, st_pad_records, st_bytes, st_fsyncs,
        st_synced_records, st_per_fsync_max, st_segments, st_written_end;
    /* Writers' futex wake-ups of the flusher (relaxed: a counter, bumped
     * only beside that syscall). */
    _Atomic uint64_t st_flusher_wakeups;
    /* Subscribers: the mutex makes unsubscribe-then-close safe against a
     * flusher that is writing to the same fd. */
    pthread_mutex_t sub_lock;
    _Atomic uint32_t sub_count; /* hint: skip the lock when 0 */
    int subs[INV_DURABLE_SUBSCRIBERS_MAX];
    /* Immutable after open. */
    uint8_t *ring;
    uint64_t ring_bytes, ring_mask;
    inv_fsync_policy policy;
    uint64_t interval_ns;
    uint64_t segment_bytes;
    uint64_t sleep_ns_max; /* JOURNAL_SLEEP_NS_MAX unless a test sets it */
    uint64_t lazy_poll_ns, lazy_idle_ns; /* JOURNAL_LAZY_* unless a test sets them */
    journal_write_hook write_hook;
    journal_sync_hook sync_hook;
    void *hook_ctx;
    /* The tap (journal_set_tap): set once, fn published with release after
     * tap_arg, read by the flusher with acquire. */
    _Atomic(journal_tap_fn) tap_fn;
    void *tap_arg;
    char dir[JOURNAL_PATH_MAX];
    pthread_t flusher;
    /* Flusher-owned. */
    int dir_fd;
    int seg_fd;
    uint64_t seg_first;
    uint64_t seg_alloc; /* file bytes of the segment (records + zeros) */
    bool seg_prealloc_off; /* writing zeros failed in this segment */
    uint64_t hwm_issued; /* the mark in the current segment's header */
    bool hwm_dirty; /* the header holds hwm_issued, not yet synced */
    bool hwm_urgent; /* a reserver waits: sync the header now */
    int fail_errno;
};

/* ---- small helpers ---------------------------------------------------- */

static void futex_wait(_Atomic uint32_t *addr, uint32_t expected, uint64_t timeout_ns)
{
    assert(addr != NULL);
    struct timespec ts = clock_timespec_ns(timeout_ns);
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, expected, &ts, NULL, 0);
}

static void futex_wake_all(_Atomic uint32_t *addr)
{
    assert(addr != NULL);
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

static uint64_t header_word(uint8_t type, uint32_t len)
{
    assert(len <= JOURNAL_PAYLOAD_MAX);
    assert(type != JOURNAL_TYPE_INVALID);
    return (uint64_t)len | ((uint64_t)type << 32);
}

static void segment_name(char *out, size_t cap, uint64_t first)
{
    assert(out != NULL && cap > 0);
    assert(first >= JOURNAL_POSITION_FIRST && first % 8u == 0);
    fileio_name(out, cap, first, JOURNAL_SEGMENT_SUFFIX);
}

static void segment_path(char *out, size_t cap, const char *dir, uint64_t first)
{
    assert(out != NULL && dir != NULL);
    assert(first >= JOURNAL_POSITION_FIRST && first % 8u == 0);
    fileio_path(out, cap, dir, first, JOURNAL_SEGMENT_SUFFIX);
}

/* ---- framing ------------------------------------------------------------ */

/* The checksum of a record with header word hdr: seeded with the whole
 * header (length, type and synced-back field). */
static uint64_t frame_checksum_hdr(uint64_t hdr, const void *payload, uint32_t len)
{
    assert((uint32_t)hdr == len && len <= JOURNAL_PAYLOAD_MAX);
    assert(payload != NULL || len == 0 || (uint8_t)(hdr >> 32) == JOURNAL_TYPE_PAD);
    uint8_t type = (uint8_t)(hdr >> 32);
    /* A PAD's payload is zeros the reader checks; its checksum covers the
     * header only, so abandoning costs no hashing of a zero buffer. */
    if (type == JOURNAL_TYPE_PAD || len == 0)
        return XXH3_64bits_withSeed(&hdr, 0, hdr);
    return XXH3_64bits_withSeed(payload, len, hdr);
}

uint64_t journal_frame_checksum(uint8_t type, const void *payload, uint32_t len)
{
    assert(len <= JOURNAL_PAYLOAD_MAX);
    return frame_checksum_hdr(header_word(type, len), payload, len);
}

uint64_t journal_frame_synced(const uint8_t *p, uint64_t pos)
{
    assert(p != NULL);
    assert(pos >= JOURNAL_POSITION_FIRST);
    uint64_t k = fileio_load_u64(p) >> JOURNAL_SYNCED_BACK_SHIFT;
    assert(k <= JOURNAL_SYNCED_BACK_MAX);
    /* k - 1 eight-byte units back; a value past the start of the stream
     * is a lie no writer tells: no claim. */
    if (k == 0 || (k - 1) * 8u > pos - JOURNAL_POSITION_FIRST)
        return 0;
    return pos - (k - 1) * 8u;
}

void journal_frame_encode(uint8_t *dst, uint8_t type, const void *payload, uint32_t len)
{
    assert(dst != NULL && len <= JOURNAL_PAYLOAD_MAX);
    assert(payload != NULL || len == 0 || type == JOURNAL_TYPE_PAD);
    uint64_t hdr = header_word(type, len);
    uint64_t padded = journal_record_size(len) - JOURNAL_RECORD_OVERHEAD;
    memcpy(dst, &hdr, sizeof hdr);
    if (len > 0 && type != JOURNAL_TYPE_PAD)
        memcpy(dst + JOURNAL_RECORD_HEADER, payload, len);
    else
        memset(dst + JOURNAL_RECORD_HEADER, 0, len);
    memset(dst + JOURNAL_RECORD_HEADER + len, 0, padded - len);
    uint64_t sum = journal_frame_checksum(type, payload, len);
    memcpy(dst + JOURNAL_RECORD_HEADER + padded, &sum, sizeof sum);
}

const char *journal_frame_decode(const uint8_t *p, size_t avail, uint8_t *type,
                                 const uint8_t **payload, uint32_t *len, uint64_t *size)
{
    assert(p != NULL && type != NULL && payload != NULL && len != NULL && size != NULL);
    if (avail < JOURNAL_RECORD_OVERHEAD)
        return "short record";
    uint64_t hdr = fileio_load_u64(p);
    uint32_t n = (uint32_t)hdr;
    uint8_t t = (uint8_t)(hdr >> 32);
    if (t == JOURNAL_TYPE_INVALID)
        return "record type 0";
    if (n > JOURNAL_PAYLOAD_MAX)
        return "record length above JOURNAL_PAYLOAD_MAX";
    uint64_t sz = journal_record_size(n);
    if (sz > avail)
        return "record runs past the end of the file";
    uint64_t padded = sz - JOURNAL_RECORD_OVERHEAD;
    const uint8_t *body = p + JOURNAL_RECORD_HEADER;
    if (!fileio_all_zero(body + n, padded - n))
        return "non-zero padding";
    if (t == JOURNAL_TYPE_PAD && !fileio_all_zero(body, n))
        return "non-zero PAD payload";
    if (fileio_load_u64(body + padded) != frame_checksum_hdr(hdr, body, n))
        return "checksum mismatch";
    /* a decoded record lies within what was there and its own length */
    assert(sz <= avail && sz == journal_record_size(n) && n <= JOURNAL_PAYLOAD_MAX);
    *type = t;
    *payload = body;
    *len = n;
    *size = sz;
    return NULL;
}

/* ---- I/O through the hooks (flusher) ------------------------------------ */

/* Writes every byte of iov at offset, or returns -1 with errno set. */
static int write_all(journal *j, int fd, struct iovec *iov, int iovcnt, off_t off)
{
    assert(j != NULL && fd >= 0);
    assert(iov != NULL && iovcnt >= 0);
    while (iovcnt > 0) {
        ssize_t w = j->write_hook ? j->write_hook(j->hook_ctx, fd, iov, iovcnt, off)
                                  : sysio_pwritev(FAULT_JOURNAL_WRITE, fd, iov, iovcnt, off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (w == 0) {
            errno = EIO; /* no progress: never loop forever */
            return -1;
        }
        off += w;
        while (iovcnt > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            iovcnt--;
        }
        if (iovcnt > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    assert(iovcnt == 0); /* every byte written */
    return 0;
}

static int sync_fd(journal *j, int fd)
{
    assert(j != NULL && fd >= 0);
    int rc = j->sync_hook ? j->sync_hook(j->hook_ctx, fd) : sysio_fdatasync(FAULT_JOURNAL_SYNC, fd);
    if (rc != 0 && errno == 0)
        errno = EIO;
    return rc;
}

/* The largest reserved-ahead mark a header of a segment at first holds. */
static uint64_t hwm_cap(uint64_t first)
{
    assert(first >= JOURNAL_POSITION_FIRST && first % 8u == 0);
    return first + 8u * (uint64_t)JOURNAL_HEADER_MARK_MASK;
}

/* The journal's shape, for asserts only (O(1), immutable fields): a
 * power-of-two ring that holds the largest record, a known policy, a
 * segment size within its limits. */
static bool journal_ok(const journal *j)
{
    return j != NULL && j->ring != NULL && j->ring_bytes > JOURNAL_RECORD_MAX &&
           (j->ring_bytes & j->ring_mask) == 0 && j->ring_mask == j->ring_bytes - 1 &&
           (j->policy == INV_FSYNC_ALWAYS || j->policy == INV_FSYNC_INTERVAL ||
            j->policy == INV_FSYNC_NONE) &&
           j->segment_bytes >= JOURNAL_SEGMENT_BYTES_MIN &&
           j->segment_bytes <= JOURNAL_SEGMENT_BYTES_MAX;
}

/* The flusher's segment state, for asserts only (flusher, or open before
 * it starts): an open segment whose header mark lies at or past its first
 * position and within what a header can hold, its file at least a header. */
static bool flusher_ok(const journal *j)
{
    return journal_ok(j) && j->seg_fd >= 0 && j->seg_first >= JOURNAL_POSITION_FIRST &&
           j->seg_first % 8u == 0 && j->hwm_issued >= j->seg_first &&
           j->hwm_issued <= hwm_cap(j->seg_first) && j->seg_alloc >= JOURNAL_SEGMENT_HEADER;
}

/* Encodes the header of the segment at first with the mark issued (clean:
 * a clean close's, every record below it synced). */
static void segment_header(uint8_t out[JOURNAL_SEGMENT_HEADER], uint64_t first, uint64_t issued,
                           bool clean)
{
    assert(out != NULL);
    assert(issued >= first && issued <= hwm_cap(first));
    /* Rounded up: the mark may only be read as larger, never smaller. */
    uint32_t units = (uint32_t)((issued - first + 7u) / 8u);
    fileio_header_encode_extra(out, &journal_segment_format, first,
                               units | (clean ? JOURNAL_HEADER_CLEAN : 0u));
}

/* Creates the segment file for position first with its header (carrying
 * j->hwm_issued), synced, and syncs the directory. Returns the fd or -1
 * with errno. */
static int segment_create(journal *j, uint64_t first)
{
    assert(journal_ok(j) && j->dir_fd >= 0);
    assert(first >= JOURNAL_POSITION_FIRST && first % 8u == 0);
    char name[64];
    segment_name(name, sizeof name, first);
    int fd = sysio_openat(FAULT_JOURNAL_SEG_CREATE, j->dir_fd, name,
                          O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    uint8_t hdr[JOURNAL_SEGMENT_HEADER];
    segment_header(hdr, first, j->hwm_issued, false);
    struct iovec iov = {.iov_base = hdr, .iov_len = sizeof hdr};
    if (write_all(j, fd, &iov, 1, 0) != 0 || sync_fd(j, fd) != 0 ||
        sysio_fsync(FAULT_JOURNAL_DIR_SYNC, j->dir_fd) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    /* relaxed: a statistics counter. */
    atomic_fetch_add_explicit(&j->st_segments, 1, memory_order_relaxed);
    return fd;
}

/* ---- wake-ups ------------------------------------------------------------ */

static void notify_subscribers(journal *j)
{
    assert(journal_ok(j));
    /* relaxed: a hint; a subscriber added concurrently gets the next one. */
    if (atomic_load_explicit(&j->sub_count, memory_order_relaxed) == 0)
        return;
    uint64_t one = 1;
    pthread_mutex_lock(&j->sub_lock);
    for (size_t i = 0; i < INV_DURABLE_SUBSCRIBERS_MAX; i++)
        if (j->subs[i] >= 0) {
            ssize_t w = write(j->subs[i], &one, sizeof one);
            (void)w; /* EAGAIN: the counter is saturated, still signalled */
        }
    pthread_mutex_unlock(&j->sub_lock);
}

/* Wakes every thread sleeping on progress (durability or ring space). */
static void wake_progress(waitq *q)
{
    assert(q != NULL);
    /* seq_cst (not just release): the advance (a seq_cst store) and this
     * increment come before reading q->waiters in the single total
     * order, pairing with the waiter's seq_cst increment before its seq_cst
     * re-check (a Dekker pattern without fences, which TSan cannot model):
     * either we see the waiter, or the waiter sees the advance. Release
     * part: whoever reads the new sequence value sees the advance. */
    atomic_fetch_add_explicit(&q->seq, 1, memory_order_seq_cst);
    /* seq_cst: see above. */
    if (atomic_load_explicit(&q->waiters, memory_order_seq_cst) > 0)
        futex_wake_all(&q->seq);
}

static void advance_durable(journal *j, uint64_t end)
{
    assert(end >= JOURNAL_POSITION_FIRST && end % 8u == 0);
    /* relaxed: only the flusher (or a failing close) stores it */
    assert(end >= atomic_load_explicit(&j->durable_end, memory_order_relaxed));
    /* seq_cst: records below end are durable (release for waiters who
     * acquire it); seq_cst for the Dekker pairing in wake_progress. */
    atomic_store_explicit(&j->durable_end, end, memory_order_seq_cst);
    wake_progress(&j->durable_q);
    notify_subscribers(j);
}

static void enter_failed(journal *j, int err)
{
    assert(journal_ok(j));
    assert(err != 0);
    j->fail_errno = err;
    FILEIO_WARN("invcore journal: I/O error in %s: %s; writes refused\n", j->dir, strerror(err));
    /* seq_cst: release (who sees failed sees that durable_end stopped)
     * plus the Dekker pairing in wake_progress. */
    atomic_store_explicit(&j->failed, true, memory_order_seq_cst);
    wake_progress(&j->durable_q);
    wake_progress(&j->space_q);
    wake_progress(&j->hwm_q);
    notify_subscribers(j);
}

/* ---- the reserved-ahead mark ---------------------------------------------- */

/* Rewrites the current segment's header with the mark issued, in place
 * (its 32 bytes lie in the file's first sector, which a device writes
 * whole). -1 with errno. */
static int header_write(journal *j, uint64_t issued, bool clean)
{
    assert(journal_ok(j) && j->seg_fd >= 0);
    assert(issued >= j->seg_first);
    uint8_t hdr[JOURNAL_SEGMENT_HEADER];
    segment_header(hdr, j->seg_first, issued, clean);
    struct iovec iov = {.iov_base = hdr, .iov_len = sizeof hdr};
    return write_all(j, j->seg_fd, &iov, 1, 0);
}

/* The header holding mark is durable: reservers may hand out positions
 * below it. Flusher (or open, before it) only. */
static void hwm_publish(journal *j, uint64_t mark)
{
    assert(journal_ok(j));
    assert(mark % 8u == 0 && mark <= j->hwm_issued); /* the header holds it */
    /* relaxed: only this thread stores hwm. */
    if (mark <= atomic_load_explicit(&j->hwm, memory_order_relaxed))
        return;
    /* seq_cst: release (a reserver that reads it may hand out positions
     * below it) plus the Dekker pairing in wake_progress. */
    atomic_store_explicit(&j->hwm, mark, memory_order_seq_cst);
    wake_progress(&j->hwm_q);
}

/* Keeps the mark at least half of JOURNAL_RESERVE_AHEAD_BYTES beyond
 * what the ring can hold past the written records (written + ring_bytes:
 * reservations within it never wait for the mark), and past the tail when
 * a reserver waits for it (hwm_wanted). Moving it rewrites the header,
 * which becomes the reservers' once synced (do_sync; at once under NONE,
 * whose durability is the write). The tail is read only for a waiting
 * reserver: a load of it each round would pull the writers' hottest line
 * to this thread. -1 with errno if the write failed. */
static int hwm_extend(journal *j, uint64_t written)
{
    assert(flusher_ok(j));
    assert(written >= j->seg_first && written % 8u == 0);
    /* seq_cst (load and exchange): pairs with hwm_wait's store, so the
     * tail read below includes the waiting reserver's fetch_add. The load
     * first keeps the line shared while nobody waits. */
    bool wanted = atomic_load_explicit(&j->hwm_wanted, memory_order_seq_cst) != 0 &&
                  atomic_exchange_explicit(&j->hwm_wanted, 0, memory_order_seq_cst) != 0;
    uint64_t base = written + j->ring_bytes;
    if (wanted) {
        /* seq_cst: ordered after the exchange (above). */
        uint64_t tail = atomic_load_explicit(&j->tail, memory_order_seq_cst);
        if (tail > base)
            base = tail;
    }
    if (base + JOURNAL_RESERVE_AHEAD_BYTES / 2u > j->hwm_issued) {
        uint64_t issued = base + JOURNAL_RESERVE_AHEAD_BYTES;
        if (issued > hwm_cap(j->seg_first))
            issued = hwm_cap(j->seg_first); /* reservers wait for a rotation */
        if (issued > j->hwm_issued) {
            if (header_write(j, issued, false) != 0)
                return -1;
            j->hwm_issued = issued;
            if (j->policy == INV_FSYNC_NONE)
                hwm_publish(j, issued);
            else
                j->hwm_dirty = true;
        }
    }
    j->hwm_urgent |= wanted && j->hwm_dirty;
    assert(j->hwm_issued >= atomic_load_explicit(&j->hwm, memory_order_relaxed));
    return 0;
}

static void defer_before_wait(journal *j);

/* Sleeps until *cond(j, arg) or failure. Used for durability and ring space.
 * Spins briefly, then sleeps on the progress futex. */
static int wait_progress(journal *j, waitq *q, bool (*cond)(journal *, uint64_t), uint64_t arg)
{
    assert(j != NULL && q != NULL && cond != NULL);
    defer_before_wait(j); /* the flusher must be awake for what we wait on */
    for (unsigned i = 0; i < JOURNAL_WAIT_SPINS; i++) {
        if (cond(j, arg))
            return INV_OK;
        /* acquire: pairs with enter_failed's release. */
        if (atomic_load_explicit(&j->failed, memory_order_acquire))
            return INV_EIO;
        cpu_relax();
    }
    for (;;) {
        /* acquire: pairs with wake_progress's release increment. */
        uint32_t seq = atomic_load_explicit(&q->seq, memory_order_acquire);
        /* seq_cst: ordered before the re-check below (see wake_progress). */
        atomic_fetch_add_explicit(&q->waiters, 1, memory_order_seq_cst);
        bool done = cond(j, arg);
        /* seq_cst: the Dekker re-check (see wake_progress). */
        bool failed = atomic_load_explicit(&j->failed, memory_order_seq_cst);
        if (!done && !failed) {
            defer_before_wait(j); /* again each round: see defer_before_wait */
            futex_wait(&q->seq, seq, j->sleep_ns_max);
        }
        /* relaxed: only a count of sleepers. */
        atomic_fetch_sub_explicit(&q->waiters, 1, memory_order_relaxed);
        if (done || cond(j, arg))
            return INV_OK;
        if (failed || atomic_load_explicit(&j->failed, memory_order_acquire))
            return INV_EIO; /* acquire: as above */
    }
}

static bool cond_durable(journal *j, uint64_t pos)
{
    /* seq_cst (stronger than the acquire it needs): the Dekker re-check in
     * wait_progress must not move before the waiter increment. */
    return atomic_load_explicit(&j->durable_end, memory_order_seq_cst) > pos;
}

static bool cond_hwm(journal *j, uint64_t end)
{
    /* seq_cst: as cond_durable. */
    return end <= atomic_load_explicit(&j->hwm, memory_order_seq_cst);
}

static bool cond_ring_space(journal *j, uint64_t end)
{
    /* seq_cst: as cond_durable; acquire alone would order the ring bytes
     * the flusher cleared before our writes into them. */
    return end <= atomic_load_explicit(&j->ring_free_end, memory_order_seq_cst) + j->ring_bytes;
}

/* Tells a sleeping flusher that a record is ready, or (urgent: a waiter,
 * a filling ring) that someone waits for it: only an urgent call wakes a
 * POLLING flusher, which looks again by itself within lazy_poll_ns. */
static void wake_flusher(journal *j, bool urgent)
{
    /* seq_cst: after our seq_cst header store in the total order, pairing
     * with the flusher's seq_cst state store before its seq_cst re-check of
     * the head record: either it sees our record or we see it sleeping.
     * The exchange lets one writer do the wake-up (one that finds the state
     * changed under it wakes anyway: a spare wake-up is harmless). */
    uint32_t state = atomic_load_explicit(&j->flusher_sleeping, memory_order_seq_cst);
    if (state == FLUSHER_AWAKE || (state == FLUSHER_POLLING && !urgent))
        return;
    if (atomic_exchange_explicit(&j->flusher_sleeping, FLUSHER_AWAKE, memory_order_relaxed) !=
        FLUSHER_AWAKE) {
        /* release: the flusher's futex value changes after our record. */
        atomic_fetch_add_explicit(&j->flusher_seq, 1, memory_order_release);
        syscall(SYS_futex, (uint32_t *)&j->flusher_seq, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
        /* relaxed: a statistics counter. */
        atomic_fetch_add_explicit(&j->st_flusher_wakeups, 1, memory_order_relaxed);
    }
}

/* journal_reserve's slow path: the position it took ends past the mark;
 * waits until the flusher moved it (or the journal failed). */
static int hwm_wait(journal *j, uint64_t end)
{
    assert(j != NULL && end % 8u == 0);
    /* seq_cst: after our fetch_add of the tail and before wake_flusher's
     * read of flusher_sleeping, pairing with the flusher's seq_cst flag
     * store and re-check in flusher_sleep (and hwm_extend's exchange). */
    atomic_store_explicit(&j->hwm_wanted, 1, memory_order_seq_cst);
    wake_flusher(j, true);
    return wait_progress(j, &j->hwm_q, cond_hwm, end);
}

/* ---- deferred wake-ups ---------------------------------------------------- */

/* The journal this thread defers its flusher wake-ups for (NULL: none, it
 * wakes on every record), and whether it owes that journal one. Thread
 * state, so deferral costs no shared write: fill only sets the flag. */
static __thread journal *defer_j;
static __thread bool defer_owed;

/* Pays this thread's owed wake-up on j, if it owes one (urgent: before a
 * wait of its own). */
static void defer_pay(journal *j, bool urgent)
{
    assert(j != NULL);
    if (defer_j == j && defer_owed) {
        defer_owed = false;
        wake_flusher(j, urgent);
    }
}

/* Before a wait on j: pay our own wake-up, and on a journal where threads
 * defer, also wake a sleeping flusher for records another deferring
 * thread owes it (that thread may be blocked behind us, on a lock we hold,
 * before its bracket ends). A no-op for journals nobody defers on. */
static void defer_before_wait(journal *j)
{
    assert(j != NULL);
    defer_pay(j, true);
    /* relaxed: a sticky hint; a bracket begun concurrently is paid by its
     * own end, and the sleep below re-checks within j->sleep_ns_max. */
    if (atomic_load_explicit(&j->defer_used, memory_order_relaxed))
        wake_flusher(j, true);
}

void journal_defer_begin(journal *j)
{
    assert(j != NULL);
    if (defer_j == j)
        return;
    if (defer_j != NULL)
        journal_defer_end(defer_j); /* one journal per thread at a time */
    assert(!defer_owed);
    /* relaxed (both): a sticky hint for waiters (defer_before_wait); the
     * load first keeps the line shared once the flag is set. */
    if (!atomic_load_explicit(&j->defer_used, memory_order_relaxed))
        atomic_store_explicit(&j->defer_used, true, memory_order_relaxed);
    defer_j = j;
}

void journal_defer_end_current(void)
{
    if (defer_j != NULL)
        journal_defer_end(defer_j);
    assert(defer_j == NULL && !defer_owed);
}

void journal_defer_end(journal *j)
{
    assert(j != NULL);
    if (defer_j != j)
        return;
    defer_pay(j, false);
    defer_j = NULL;
    assert(!defer_owed);
}

/* ---- the flusher --------------------------------------------------------- */

static _Atomic uint64_t *ring_word(journal *j, uint64_t pos)
{
    assert(pos % 8u == 0); /* headers are 8-aligned in the ring */
    return (_Atomic uint64_t *)(void *)(j->ring + (pos & j->ring_mask));
}

/* Walks ready records from `from`; returns the end of the batch, with its
 * records (*nrec) and how many of them are PADs (*npad). *rotate is set
 * when the next ready record belongs in a new segment. */
static uint64_t collect(journal *j, uint64_t from, uint64_t *nrec, uint64_t *npad, bool *rotate)
{
    assert(flusher_ok(j) && nrec != NULL && npad != NULL && rotate != NULL);
    assert(from >= j->seg_first && from % 8u == 0);
    uint64_t p = from;
    *nrec = 0;
    *npad = 0;
    *rotate = false;
    for (;;) {
        /* acquire: pairs with the publisher's release store of the header:
         * its payload and checksum bytes are visible once it is. */
        uint64_t hdr = atomic_load_explicit(ring_word(j, p), memory_order_acquire);
        if (hdr == 0)
            break;
        uint64_t size = journal_record_size((uint32_t)hdr);
        uint64_t in_seg = p - j->seg_first;
        if (in_seg > 0 && in_seg + size > j->segment_bytes) {
            *rotate = true;
            break;
        }
        if (p > from && p + size - from > JOURNAL_BATCH_BYTES_MAX)
            break;
        p += size;
        (*nrec)++;
        *npad += (uint8_t)(hdr >> 32) == JOURNAL_TYPE_PAD;
    }
    assert(p >= from && p % 8u == 0);
    assert(*npad <= *nrec);
    return p;
}

/* Keeps JOURNAL_PREALLOC_BYTES of zeros (at most to the segment's end)
 * after the records that now end at file offset data_end. Written before
 * the fdatasync that covers those records, so both are durable together.
 * Only a speed-up for fdatasync: NONE never syncs, and a failed write of
 * zeros (a nearly full disk) stops it for this segment without failing the
 * journal (the records themselves were written; their sync reports any
 * error that matters). */
static void segment_extend(journal *j, uint64_t data_end)
{
    assert(flusher_ok(j));
    assert(data_end >= JOURNAL_SEGMENT_HEADER);
    if (data_end > j->seg_alloc)
        j->seg_alloc = data_end;
    if (j->policy == INV_FSYNC_NONE || j->seg_prealloc_off ||
        data_end + JOURNAL_PREALLOC_BYTES / 2 <= j->seg_alloc)
        return; /* enough ahead: extend in big steps, rarely */
    uint64_t limit = JOURNAL_SEGMENT_HEADER + j->segment_bytes;
    uint64_t to = data_end + JOURNAL_PREALLOC_BYTES;
    if (to > limit)
        to = limit;
    while (j->seg_alloc < to) {
        struct iovec iov[JOURNAL_ZERO_IOV];
        int n = 0;
        uint64_t len = 0;
        while (n < (int)JOURNAL_ZERO_IOV && j->seg_alloc + len < to) {
            uint64_t part = to - j->seg_alloc - len;
            if (part > JOURNAL_ZERO_CHUNK)
                part = JOURNAL_ZERO_CHUNK;
            iov[n].iov_base = (void *)zero_chunk;
            iov[n++].iov_len = part;
            len += part;
        }
        if (write_all(j, j->seg_fd, iov, n, (off_t)j->seg_alloc) != 0) {
            j->seg_prealloc_off = true; /* the file may end mid-way: fine */
            return;
        }
        j->seg_alloc += len;
    }
}

/* Trims the zeros after the records (the segment is complete: rotation or
 * close). Best effort: replay reads a zero tail as the end anyway. */
static void segment_trim(journal *j, uint64_t written)
{
    assert(flusher_ok(j));
    assert(written >= j->seg_first);
    uint64_t data_end = JOURNAL_SEGMENT_HEADER + (written - j->seg_first);
    if (j->seg_alloc > data_end &&
        sysio_ftruncate(FAULT_JOURNAL_TRIM, j->seg_fd, (off_t)data_end) == 0) {
        j->seg_alloc = data_end;
        (void)sysio_fsync(FAULT_JOURNAL_SYNC,
                          j->seg_fd); /* the size; the records are already synced */
    }
}

static int write_batch(journal *j, uint64_t from, uint64_t end)
{
    assert(flusher_ok(j));
    assert(from < end && end - from <= j->ring_bytes && from >= j->seg_first);
    uint64_t off = from & j->ring_mask, len = end - from;
    struct iovec iov[2];
    int n = 1;
    iov[0].iov_base = j->ring + off;
    if (off + len > j->ring_bytes) {
        iov[0].iov_len = j->ring_bytes - off;
        iov[1].iov_base = j->ring;
        iov[1].iov_len = len - iov[0].iov_len;
        n = 2;
    } else {
        iov[0].iov_len = len;
    }
    /* write_all consumes its iovec: the tap gets a copy */
    struct iovec tap_iov[2] = {iov[0], iov[1 % n]};
    off_t foff = (off_t)(JOURNAL_SEGMENT_HEADER + (from - j->seg_first));
    if (write_all(j, j->seg_fd, iov, n, foff) != 0)
        return -1;
    segment_extend(j, (uint64_t)foff + len);
    /* acquire: pairs with journal_set_tap's release (tap_arg is set). */
    journal_tap_fn tap = atomic_load_explicit(&j->tap_fn, memory_order_acquire);
    if (tap)
        tap(j->tap_arg, from, tap_iov, n);
    return 0;
}

static void clear_ring(journal *j, uint64_t from, uint64_t end)
{
    assert(journal_ok(j));
    assert(from <= end && end - from <= j->ring_bytes);
    uint64_t off = from & j->ring_mask, len = end - from;
    if (off + len > j->ring_bytes) {
        memset(j->ring + off, 0, j->ring_bytes - off);
        memset(j->ring, 0, len - (j->ring_bytes - off));
    } else {
        memset(j->ring + off, 0, len);
    }
}

/* Group commit under load: the writers the last fdatasync woke are still
 * coming back with their next records. When far fewer are ready than that
 * fdatasync carried, wait this long at most for them (yielding), so one
 * fdatasync serves them all instead of a trickle of small ones. Idle or
 * single-writer journals never wait (their last batch was 1). */
#define JOURNAL_GATHER_NS_MAX (150u * 1000u)

static uint64_t gather(journal *j, uint64_t from, uint64_t want, uint64_t *nrec, uint64_t *npad,
                       bool *rotate)
{
    assert(nrec != NULL && npad != NULL && rotate != NULL);
    uint64_t deadline = clock_mono_ns() + JOURNAL_GATHER_NS_MAX;
    uint64_t end = collect(j, from, nrec, npad, rotate);
    while (*nrec * 2 < want && !*rotate && clock_mono_ns() < deadline) {
        sched_yield();
        end = collect(j, from, nrec, npad, rotate);
    }
    assert(end >= from);
    return end;
}

typedef struct {
    uint64_t written, synced, last_sync_ns, unsynced_records;
    uint64_t last_batch; /* records the previous fdatasync carried */
    uint64_t last_write_ns; /* when records were last written; 0: never */
} flush_state;

static int do_sync(journal *j, flush_state *s)
{
    assert(flusher_ok(j) && s != NULL);
    assert(s->synced <= s->written);
    if (sync_fd(j, j->seg_fd) != 0)
        return -1;
    s->synced = s->written;
    /* release: publishers stamp it in their records (a relaxed load there:
     * a stale value is a smaller, still true claim). */
    atomic_store_explicit(&j->synced_end, s->synced, memory_order_release);
    if (j->hwm_dirty) { /* the header with the new mark is durable now */
        j->hwm_dirty = false;
        j->hwm_urgent = false;
        hwm_publish(j, j->hwm_issued);
    }
    s->last_sync_ns = clock_mono_ns();
    /* relaxed: statistics counters, single writer. */
    atomic_fetch_add_explicit(&j->st_fsyncs, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&j->st_synced_records, s->unsynced_records, memory_order_relaxed);
    if (s->unsynced_records > atomic_load_explicit(&j->st_per_fsync_max, memory_order_relaxed))
        atomic_store_explicit(&j->st_per_fsync_max, s->unsynced_records, memory_order_relaxed);
    s->last_batch = s->unsynced_records;
    s->unsynced_records = 0;
    if (j->policy != INV_FSYNC_NONE)
        advance_durable(j, s->synced);
    assert(s->synced == s->written && s->unsynced_records == 0);
    return 0;
}

/* Sleeps (state ASLEEP or POLLING) until a writer publishes the head
 * record (ASLEEP) or a waiter wakes it, close, or timeout. */
static void flusher_sleep(journal *j, uint32_t seq, uint64_t pos, uint64_t timeout_ns,
                          enum flusher_state state)
{
    assert(journal_ok(j));
    assert(pos % 8u == 0 && state != FLUSHER_AWAKE);
    /* seq_cst (state store, then both re-checks): see wake_flusher. */
    atomic_store_explicit(&j->flusher_sleeping, state, memory_order_seq_cst);
    bool ready = atomic_load_explicit(ring_word(j, pos), memory_order_seq_cst) != 0 ||
                 atomic_load_explicit(&j->closing, memory_order_seq_cst) ||
                 atomic_load_explicit(&j->hwm_wanted, memory_order_seq_cst) != 0;
    if (!ready)
        futex_wait(&j->flusher_seq, seq, timeout_ns);
    /* relaxed: the state is only a hint for writers. */
    atomic_store_explicit(&j->flusher_sleeping, FLUSHER_AWAKE, memory_order_relaxed);
}

/* How the flusher sleeps when it found nothing to write at now_ns, and for
 * how long (*timeout_ns): polling while the journal is busy under a lazy
 * policy, else until woken; an INTERVAL sync that is due bounds both.
 * FLUSHER_AWAKE: a sync is due now, do not sleep. */
static enum flusher_state flusher_rest(const journal *j, const flush_state *s, uint64_t now_ns,
                                       uint64_t *timeout_ns)
{
    assert(flusher_ok(j) && s != NULL && timeout_ns != NULL);
    enum flusher_state state = FLUSHER_ASLEEP;
    *timeout_ns = j->sleep_ns_max;
    if (j->policy != INV_FSYNC_ALWAYS && s->last_write_ns != 0 &&
        now_ns - s->last_write_ns < j->lazy_idle_ns) {
        state = FLUSHER_POLLING;
        *timeout_ns = j->lazy_poll_ns;
    }
    if (j->policy == INV_FSYNC_INTERVAL && (s->written > s->synced || j->hwm_dirty)) {
        uint64_t next = s->last_sync_ns + j->interval_ns;
        if (next <= now_ns)
            return FLUSHER_AWAKE;
        if (next - now_ns < *timeout_ns)
            *timeout_ns = next - now_ns;
    }
    assert(*timeout_ns > 0);
    return state;
}

/* Writes the ready records [s->written, end) to the segment, then frees
 * their ring bytes for writers. -1 with errno if the write failed. */
static int flush_written(journal *j, flush_state *s, uint64_t end, uint64_t nrec, uint64_t npad)
{
    assert(flusher_ok(j) && s != NULL);
    assert(end > s->written && npad <= nrec);
    if (write_batch(j, s->written, end) != 0)
        return -1;
    clear_ring(j, s->written, end);
    /* relaxed: statistics; counted before the durable end that covers
     * them is published (release), so a waiter sees them counted. */
    atomic_fetch_add_explicit(&j->st_records, nrec - npad, memory_order_relaxed);
    atomic_fetch_add_explicit(&j->st_pad_records, npad, memory_order_relaxed);
    atomic_fetch_add_explicit(&j->st_bytes, end - s->written, memory_order_relaxed);
    atomic_store_explicit(&j->st_written_end, end, memory_order_relaxed);
    s->written = end;
    s->unsynced_records += nrec;
    /* seq_cst: release (the cleared ring bytes are free for writers who
     * acquire this) plus the Dekker pairing with sleeping writers (see
     * wake_progress). */
    atomic_store_explicit(&j->ring_free_end, end, memory_order_seq_cst);
    wake_progress(&j->space_q); /* ring space for blocked writers */
    if (j->policy == INV_FSYNC_NONE)
        advance_durable(j, end);
    assert(s->written == end && s->synced <= s->written);
    return 0;
}

/* Closes the full segment (its records synced) and starts the next one at
 * position written. -1 with errno if it cannot be created. */
static int rotate_segment(journal *j, uint64_t written)
{
    assert(flusher_ok(j));
    assert(written > j->seg_first);
    segment_trim(j, written);
    close(j->seg_fd);
    j->seg_fd = segment_create(j, written);
    if (j->seg_fd < 0)
        return -1;
    j->seg_first = written;
    j->seg_alloc = JOURNAL_SEGMENT_HEADER;
    j->seg_prealloc_off = false;
    /* The new header carries hwm_issued and was synced. */
    j->hwm_dirty = false;
    j->hwm_urgent = false;
    hwm_publish(j, j->hwm_issued);
    assert(flusher_ok(j) && j->seg_first == written);
    return 0;
}

/* At a clean close (every record written and synced): lowers the mark in
 * the header to the records' end (every reservation is published), so a
 * clean reopen resumes exactly there instead of bridging the reserved-ahead
 * positions, and marks the segment clean, so replay knows all of it was
 * synced (a bad record in it is corruption, not a torn tail). Best effort:
 * the header left behind only costs positions and that knowledge. */
static void hwm_settle(journal *j, uint64_t written)
{
    assert(flusher_ok(j));
    assert(written >= j->seg_first && written <= j->hwm_issued);
    if (header_write(j, written, true) == 0 && sync_fd(j, j->seg_fd) == 0)
        j->hwm_issued = written;
}

static void *flusher_main(void *arg)
{
    assert(flusher_ok(arg));
    journal *j = arg;
    /* relaxed: set before the thread started (pthread_create orders it). */
    uint64_t start = atomic_load_explicit(&j->ring_free_end, memory_order_relaxed);
    flush_state s = {start, start, clock_mono_ns(), 0, 0, 0};
    for (;;) {
        /* acquire: pairs with wake_flusher's release increment. */
        uint32_t seq = atomic_load_explicit(&j->flusher_seq, memory_order_acquire);
        if (hwm_extend(j, s.written) != 0)
            goto fail;
        uint64_t nrec, npad;
        bool rotate;
        uint64_t end = collect(j, s.written, &nrec, &npad, &rotate);
        if (end > s.written && j->policy == INV_FSYNC_ALWAYS && s.written == s.synced &&
            nrec * 2 < s.last_batch && !rotate)
            end = gather(j, s.written, s.last_batch, &nrec, &npad, &rotate);
        bool progressed = end > s.written;
        if (progressed && flush_written(j, &s, end, nrec, npad) != 0)
            goto fail;
        /* acquire: pairs with journal_close's release store. */
        bool closing = atomic_load_explicit(&j->closing, memory_order_acquire);
        /* relaxed: close requires every reservation be published, so tail
         * is final once closing is seen. */
        bool drained = closing && s.written == atomic_load_explicit(&j->tail, memory_order_relaxed);
        uint64_t t = clock_mono_ns();
        bool due = j->policy == INV_FSYNC_ALWAYS || rotate || drained || j->hwm_urgent ||
                   (j->policy == INV_FSYNC_INTERVAL && t - s.last_sync_ns >= j->interval_ns);
        if ((s.written > s.synced || j->hwm_dirty) && due && do_sync(j, &s) != 0)
            goto fail;
        if (rotate) {
            if (rotate_segment(j, s.written) != 0)
                goto fail;
            continue;
        }
        if (drained) {
            segment_trim(j, s.written);
            hwm_settle(j, s.written);
            break;
        }
        if (progressed) {
            s.last_write_ns = t;
            continue;
        }
        uint64_t timeout;
        enum flusher_state rest = flusher_rest(j, &s, t, &timeout);
        if (rest != FLUSHER_AWAKE)
            flusher_sleep(j, seq, s.written, timeout, rest);
    }
    return NULL;
fail:
    enter_failed(j, errno ? errno : EIO);
    return NULL;
}

/* ---- open / close --------------------------------------------------------- */

/* Fills the positions [end, start) of the open segment with PAD records
 * (the reserved-ahead positions a crash left unused, or a snapshot ahead of
 * the journal): only each PAD's header and checksum are written, the zeros
 * between stay file holes. The caller syncs. -1 with errno. */
static int bridge_gap(journal *j, uint64_t end, uint64_t start)
{
    assert(journal_ok(j) && j->seg_fd >= 0 && end >= j->seg_first);
    assert(start - end >= JOURNAL_RECORD_OVERHEAD && start % 8u == 0 && end % 8u == 0);
    while (end < start) {
        uint64_t gap = start - end, size = gap < JOURNAL_RECORD_MAX ? gap : JOURNAL_RECORD_MAX;
        if (gap > size && gap - size < JOURNAL_RECORD_OVERHEAD)
            size -= JOURNAL_RECORD_OVERHEAD; /* leave room for a last PAD */
        uint32_t len = (uint32_t)(size - JOURNAL_RECORD_OVERHEAD);
        uint64_t hdr = header_word(JOURNAL_TYPE_PAD, len);
        uint64_t sum = frame_checksum_hdr(hdr, NULL, len);
        off_t off = (off_t)(JOURNAL_SEGMENT_HEADER + (end - j->seg_first));
        struct iovec h = {.iov_base = &hdr, .iov_len = sizeof hdr};
        struct iovec c = {.iov_base = &sum, .iov_len = sizeof sum};
        if (write_all(j, j->seg_fd, &h, 1, off) != 0 ||
            write_all(j, j->seg_fd, &c, 1, off + (off_t)(size - JOURNAL_RECORD_TRAILER)) != 0)
            return -1;
        end += size;
    }
    assert(end == start);
    return 0;
}

/* Continues the segment last at start: bridges a gap before start, writes
 * the reserved-ahead mark into its header and syncs the file (the records
 * replay read may still be only in the page cache: from here on they are
 * what every record's synced-back field claims). -1 with errno. */
static int segment_continue(journal *j, const journal_segment *last, uint64_t end, uint64_t start)
{
    assert(journal_ok(j) && last != NULL);
    assert(last->first <= end && end <= start);
    char path[SEGMENT_PATH_MAX];
    segment_path(path, sizeof path, j->dir, last->first);
    j->seg_fd = sysio_open(FAULT_JOURNAL_SEG_OPEN, path, O_WRONLY | O_CLOEXEC, 0);
    if (j->seg_fd < 0)
        return -1;
    j->seg_first = last->first;
    j->seg_alloc = last->size;
    if (end < start) {
        if (bridge_gap(j, end, start) != 0)
            return -1;
        j->seg_alloc = JOURNAL_SEGMENT_HEADER + (start - last->first);
    }
    return header_write(j, j->hwm_issued, false) == 0 && sync_fd(j, j->seg_fd) == 0 ? 0 : -1;
}

/* Syncs the segment at path (the last one before a new segment starts:
 * what replay read of it must be durable before later records claim it).
 * -1 with errno. */
static int segment_sync_path(journal *j, const char *path)
{
    assert(j != NULL && path != NULL && path[0] != '\0');
    int fd = sysio_open(FAULT_JOURNAL_SEG_OPEN, path, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int rc = sync_fd(j, fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

/* Chooses the segment to append to at start: continues the last segment if
 * its records end at start or a bridgeable gap before it, else creates
 * one. Refuses a start that does not continue what is on disk. */
static int open_segment_at(journal *j, uint64_t start, char *errbuf, size_t errlen)
{
    assert(journal_ok(j) && j->dir_fd >= 0);
    assert(start >= JOURNAL_POSITION_FIRST && start % 8u == 0);
    journal_segment *segs;
    size_t n;
    int rc = journal_segments_list(j->dir, &segs, &n, errbuf, errlen);
    if (rc != INV_OK)
        return rc;
    rc = INV_OK;
    journal_segment *last = n > 0 ? &segs[n - 1] : NULL;
    uint64_t end = start;
    char last_path[SEGMENT_PATH_MAX] = "";
    if (last != NULL && last->first == start && last->size <= JOURNAL_SEGMENT_HEADER) {
        last = NULL; /* an empty segment at start: recreate it */
    } else if (last != NULL) {
        uint64_t data =
            last->size < JOURNAL_SEGMENT_HEADER ? 0 : last->size - JOURNAL_SEGMENT_HEADER;
        end = last->first + data;
        char name[64];
        segment_name(name, sizeof name, last->first);
        segment_path(last_path, sizeof last_path, j->dir, last->first);
        if (last->first > start || end > start || last->size < JOURNAL_SEGMENT_HEADER) {
            fileio_errmsg(errbuf, errlen,
                          "journal: start position %" PRIu64
                          " does not continue %s/%s (records end at %" PRIu64 "); replay first",
                          start, j->dir, name, end);
            rc = INV_EINVALID;
        } else if (end < start && (start - end < JOURNAL_RECORD_OVERHEAD ||
                                   start - end > JOURNAL_BRIDGE_BYTES_MAX ||
                                   hwm_cap(last->first) < j->hwm_issued)) {
            /* A snapshot far ahead of the durable journal: positions in
             * [end, start) are covered by it; start a new segment. */
            FILEIO_WARN("invcore journal: warning: %s/%s ends at %" PRIu64
                        ", starting a new segment at %" PRIu64 "\n",
                        j->dir, name, end, start);
            last = NULL;
        }
    }
    if (rc == INV_OK && last != NULL) {
        if (segment_continue(j, last, end, start) != 0)
            rc = INV_EIO;
    } else if (rc == INV_OK) {
        if (last_path[0] != '\0' && segment_sync_path(j, last_path) != 0)
            rc = INV_EIO;
        if (rc == INV_OK)
            j->seg_fd = segment_create(j, start);
        j->seg_first = start;
        j->seg_alloc = JOURNAL_SEGMENT_HEADER;
    }
    if (rc == INV_EIO || (rc == INV_OK && j->seg_fd < 0)) {
        fileio_errmsg(errbuf, errlen, "journal: cannot open a segment in %s: %s", j->dir,
                      strerror(errno));
        rc = INV_EIO;
    }
    assert(rc != INV_OK || (j->seg_fd >= 0 && j->seg_first <= start));
    free(segs);
    return rc;
}

static int check_config(const journal_config *cfg, char *errbuf, size_t errlen)
{
    assert(errbuf != NULL || errlen == 0);
    if (cfg == NULL || cfg->dir == NULL || cfg->dir[0] == '\0' ||
        strlen(cfg->dir) >= JOURNAL_PATH_MAX) {
        fileio_errmsg(errbuf, errlen, "journal: a directory path is required");
        return INV_EINVALID;
    }
    if (cfg->policy != INV_FSYNC_ALWAYS && cfg->policy != INV_FSYNC_INTERVAL &&
        cfg->policy != INV_FSYNC_NONE) {
        fileio_errmsg(errbuf, errlen, "journal: unknown fsync policy %d", (int)cfg->policy);
        return INV_EINVALID;
    }
    size_t rb = cfg->ring_bytes;
    if (rb != 0 && ((rb & (rb - 1)) != 0 || rb > JOURNAL_RING_BYTES_MAX ||
                    rb < JOURNAL_RING_RECORDS_MIN * JOURNAL_RECORD_MAX)) {
        fileio_errmsg(errbuf, errlen,
                      "journal: ring_bytes %zu must be a power of two in "
                      "[%llu, %llu]",
                      rb, (unsigned long long)JOURNAL_RING_RECORDS_MIN * JOURNAL_RECORD_MAX,
                      (unsigned long long)JOURNAL_RING_BYTES_MAX);
        return INV_EINVALID;
    }
    if (cfg->segment_bytes != 0 && (cfg->segment_bytes < JOURNAL_SEGMENT_BYTES_MIN ||
                                    cfg->segment_bytes > JOURNAL_SEGMENT_BYTES_MAX)) {
        fileio_errmsg(errbuf, errlen, "journal: segment_bytes %" PRIu64 " not in [%llu, %llu]",
                      cfg->segment_bytes, (unsigned long long)JOURNAL_SEGMENT_BYTES_MIN,
                      (unsigned long long)JOURNAL_SEGMENT_BYTES_MAX);
        return INV_EINVALID;
    }
    if (cfg->fsync_interval_ms > JOURNAL_FSYNC_INTERVAL_MS_MAX) {
        fileio_errmsg(errbuf, errlen, "journal: fsync_interval_ms %u above %u",
                      cfg->fsync_interval_ms, JOURNAL_FSYNC_INTERVAL_MS_MAX);
        return INV_EINVALID;
    }
    if (cfg->start_position != 0 &&
        (cfg->start_position < JOURNAL_POSITION_FIRST || cfg->start_position % 8 != 0)) {
        fileio_errmsg(errbuf, errlen,
                      "journal: start position %" PRIu64 " is not a record boundary",
                      cfg->start_position);
        return INV_EINVALID;
    }
    return INV_OK;
}

/* A journal with its ring, set up from a checked cfg to append at start;
 * no file open, no thread yet. NULL when memory is short. */
static journal *journal_new(const journal_config *cfg, uint64_t start)
{
    assert(cfg != NULL && cfg->dir != NULL);
    assert(start >= JOURNAL_POSITION_FIRST && start % 8u == 0);
    journal *j = inv_calloc(1, sizeof *j);
    if (j == NULL)
        return NULL;
    j->ring_bytes = cfg->ring_bytes ? cfg->ring_bytes : JOURNAL_RING_BYTES_DEFAULT;
    j->ring_mask = j->ring_bytes - 1;
    /* Anonymous pages: zeroed by the kernel and resident only once used,
     * so an idle journal (one per tenant) costs no ring memory. */
    void *ring =
        mmap(NULL, j->ring_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (ring == MAP_FAILED) {
        free(j);
        return NULL;
    }
    j->ring = ring;
    snprintf(j->dir, sizeof j->dir, "%s", cfg->dir);
    j->policy = cfg->policy;
    j->interval_ns = (uint64_t)(cfg->fsync_interval_ms ? cfg->fsync_interval_ms
                                                       : INV_FSYNC_INTERVAL_MS_DEFAULT) *
                     1000000ULL;
    j->segment_bytes = cfg->segment_bytes ? cfg->segment_bytes : JOURNAL_SEGMENT_BYTES_DEFAULT;
    j->sleep_ns_max = cfg->sleep_ns_max ? cfg->sleep_ns_max : JOURNAL_SLEEP_NS_MAX;
    j->lazy_poll_ns = cfg->lazy_poll_ns ? cfg->lazy_poll_ns : JOURNAL_LAZY_POLL_NS;
    j->lazy_idle_ns = cfg->lazy_idle_ns ? cfg->lazy_idle_ns : JOURNAL_LAZY_IDLE_NS;
    j->write_hook = cfg->write_hook;
    j->sync_hook = cfg->sync_hook;
    j->hook_ctx = cfg->hook_ctx;
    j->seg_fd = -1;
    for (size_t i = 0; i < INV_DURABLE_SUBSCRIBERS_MAX; i++)
        j->subs[i] = -1;
    pthread_mutex_init(&j->sub_lock, NULL);
    /* relaxed (all): no other thread exists yet; pthread_create publishes
     * them to the flusher. hwm stays at start (nothing may be handed out)
     * until open made the header with hwm_issued durable. */
    atomic_store_explicit(&j->tail, start, memory_order_relaxed);
    atomic_store_explicit(&j->ring_free_end, start, memory_order_relaxed);
    atomic_store_explicit(&j->durable_end, start, memory_order_relaxed);
    atomic_store_explicit(&j->synced_end, start, memory_order_relaxed);
    atomic_store_explicit(&j->hwm, start, memory_order_relaxed);
    atomic_store_explicit(&j->st_written_end, start, memory_order_relaxed);
    j->hwm_issued = start + j->ring_bytes + JOURNAL_RESERVE_AHEAD_BYTES;
    assert(journal_ok(j) && j->hwm_issued > start);
    return j;
}

int journal_open(journal **out, const journal_config *cfg, char *errbuf, size_t errlen)
{
    if (out == NULL)
        return INV_EINVALID;
    *out = NULL;
    int rc = check_config(cfg, errbuf, errlen);
    if (rc != INV_OK)
        return rc;
    /* Durably: segment_create syncs the directory, not its parent. */
    if (fileio_mkdir_durable(FAULT_JOURNAL_MKDIR, cfg->dir, 0755) != 0) {
        fileio_errmsg(errbuf, errlen, "journal: cannot create %s: %s", cfg->dir, strerror(errno));
        return INV_EIO;
    }
    uint64_t start = cfg->start_position ? cfg->start_position : JOURNAL_POSITION_FIRST;
    journal *j = journal_new(cfg, start);
    if (j == NULL)
        return INV_ENOMEM;
    j->dir_fd = sysio_open(FAULT_JOURNAL_DIR_OPEN, j->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (j->dir_fd < 0) {
        fileio_errmsg(errbuf, errlen, "journal: cannot open %s: %s", j->dir, strerror(errno));
        rc = INV_EIO;
    } else {
        rc = open_segment_at(j, start, errbuf, errlen);
    }
    if (rc == INV_OK) /* the segment's header holds hwm_issued, synced */
        hwm_publish(j, j->hwm_issued);
    if (rc == INV_OK && pthread_create(&j->flusher, NULL, flusher_main, j)) {
        fileio_errmsg(errbuf, errlen, "journal: cannot start the flusher thread");
        rc = INV_ENOMEM;
    }
    if (rc != INV_OK) {
        if (j->seg_fd >= 0)
            close(j->seg_fd);
        if (j->dir_fd >= 0)
            close(j->dir_fd);
        pthread_mutex_destroy(&j->sub_lock);
        munmap(j->ring, j->ring_bytes);
        free(j);
        return rc;
    }
    *out = j;
    return INV_OK;
}

int journal_close(journal *j)
{
    if (j == NULL)
        return INV_OK;
    assert(journal_ok(j));
    if (defer_j == j) { /* the wake-up below covers what we owed */
        defer_j = NULL;
        defer_owed = false;
    }
    /* seq_cst: release (the flusher that sees closing sees every publish
     * before) plus the flusher_sleep re-check pairing. */
    atomic_store_explicit(&j->closing, true, memory_order_seq_cst);
    /* relaxed: the futex value only has to change; the flusher re-reads
     * closing with acquire. */
    atomic_fetch_add_explicit(&j->flusher_seq, 1, memory_order_relaxed);
    futex_wake_all(&j->flusher_seq);
    pthread_join(j->flusher, NULL);
    /* acquire: the flusher's last state is visible after join anyway. */
    int rc = atomic_load_explicit(&j->failed, memory_order_acquire) ? INV_EIO : INV_OK;
    if (j->seg_fd >= 0)
        close(j->seg_fd);
    close(j->dir_fd);
    for (size_t i = 0; i < INV_DURABLE_SUBSCRIBERS_MAX; i++)
        if (j->subs[i] >= 0)
            close(j->subs[i]);
    pthread_mutex_destroy(&j->sub_lock);
    munmap(j->ring, j->ring_bytes);
    free(j);
    return rc;
}

/* ---- writers --------------------------------------------------------------- */

/* A reservation of size bytes at pos is handed out once the durable
 * reserved-ahead mark covers it: pos, or 0 if the journal failed. */
static uint64_t reserve_below_mark(journal *j, uint64_t pos, uint64_t size)
{
    /* relaxed: the mark only grows; a stale value only sends us to the
     * slow path, which re-reads it (seq_cst). */
    if (__builtin_expect(pos + size > atomic_load_explicit(&j->hwm, memory_order_relaxed), 0) &&
        hwm_wait(j, pos + size) != INV_OK)
        return 0; /* failed: nothing is appended past a failure anyway */
    assert(pos >= JOURNAL_POSITION_FIRST && pos % 8u == 0);
    return pos;
}

uint64_t journal_reserve(journal *j, uint32_t payload_len)
{
    assert(j != NULL);
    /* Hot path: no lock, no allocation. */
    if (payload_len > JOURNAL_PAYLOAD_MAX)
        return 0;
    /* relaxed: a best-effort early refusal; a reservation racing with the
     * failure is refused at publish (INV_EIO). follower: set before any
     * writer runs and cleared by the promoting thread before it lets
     * writers in (the server's pause), so a relaxed load sees it. */
    if (atomic_load_explicit(&j->failed, memory_order_relaxed) ||
        atomic_load_explicit(&j->closing, memory_order_relaxed) ||
        atomic_load_explicit(&j->follower, memory_order_relaxed))
        return 0;
    uint64_t size = journal_record_size(payload_len);
    /* relaxed: only atomicity matters; the record's bytes are published by
     * the header's release store, not by the tail. */
    uint64_t pos = atomic_fetch_add_explicit(&j->tail, size, memory_order_relaxed);
    return reserve_below_mark(j, pos, size);
}

uint64_t journal_reserve_at(journal *j, uint64_t pos, uint32_t payload_len)
{
    assert(j != NULL && pos % 8u == 0);
    if (payload_len > JOURNAL_PAYLOAD_MAX ||
        !atomic_load_explicit(&j->follower, memory_order_relaxed) ||
        atomic_load_explicit(&j->failed, memory_order_relaxed) ||
        atomic_load_explicit(&j->closing, memory_order_relaxed))
        return 0;
    uint64_t size = journal_record_size(payload_len), expected = pos;
    /* relaxed: as journal_reserve; the one applier is the only reserver of
     * a follower, the CAS only refuses a position that is not the tail. */
    if (!atomic_compare_exchange_strong_explicit(&j->tail, &expected, pos + size,
                                                 memory_order_relaxed, memory_order_relaxed))
        return 0;
    return reserve_below_mark(j, pos, size);
}

void journal_set_follower(journal *j, bool follower)
{
    assert(j != NULL);
    /* relaxed: see journal_reserve (ordered by whoever lets writers in). */
    atomic_store_explicit(&j->follower, follower, memory_order_relaxed);
}

void journal_set_tap(journal *j, journal_tap_fn fn, void *arg)
{
    assert(j != NULL && fn != NULL);
    /* relaxed: set once (a second call is a caller bug) */
    assert(atomic_load_explicit(&j->tap_fn, memory_order_relaxed) == NULL);
    j->tap_arg = arg;
    /* release: the flusher that sees fn sees arg. */
    atomic_store_explicit(&j->tap_fn, fn, memory_order_release);
}

void journal_notify(journal *j)
{
    assert(j != NULL);
    notify_subscribers(j);
}

/* The synced-back field for a record at pos (journal.h): how far back the
 * synced end lies, so that replay knows what was durable when it was
 * published. */
static uint64_t synced_back(journal *j, uint64_t pos)
{
    assert(pos % 8u == 0);
    /* relaxed: synced_end only grows and every value stored is true; a
     * stale one is a smaller claim. */
    uint64_t e = atomic_load_explicit(&j->synced_end, memory_order_relaxed);
    assert(e <= pos); /* pos is not written yet, so not synced */
    uint64_t k = ((pos - e) >> 3) + 1u;
    return k <= JOURNAL_SYNCED_BACK_MAX ? k << JOURNAL_SYNCED_BACK_SHIFT : 0;
}

/* Copies n bytes to the ring at stream position pos, wrapping. */
static void ring_copy(journal *j, uint64_t pos, const void *src, size_t n)
{
    assert(src != NULL && n <= j->ring_bytes);
    uint64_t off = pos & j->ring_mask;
    size_t first = n;
    if (off + n > j->ring_bytes)
        first = (size_t)(j->ring_bytes - off);
    memcpy(j->ring + off, src, first);
    if (first < n)
        memcpy(j->ring, (const uint8_t *)src + first, n - first);
}

static int fill(journal *j, uint64_t pos, uint8_t type, const void *payload, uint32_t len)
{
    assert(j != NULL && len <= JOURNAL_PAYLOAD_MAX);
    assert(pos >= JOURNAL_POSITION_FIRST && pos % 8u == 0);
    uint64_t size = journal_record_size(len);
    /* relaxed: a hint; past half the ring this record wakes even a polling
     * flusher, so writers rarely reach the wait for space below. */
    bool filling = pos + size - atomic_load_explicit(&j->ring_free_end, memory_order_relaxed) >
                   j->ring_bytes / 2;
    if (!cond_ring_space(j, pos + size)) {
        int rc = wait_progress(j, &j->space_q, cond_ring_space, pos + size);
        if (rc != INV_OK)
            return rc;
    }
    /* Cheap failure check so a failed journal refuses promptly. */
    /* relaxed: best effort; the flusher never writes past a failure. */
    if (atomic_load_explicit(&j->failed, memory_order_relaxed))
        return INV_EIO;
    uint64_t hdr = header_word(type, len) | synced_back(j, pos);
    uint64_t sum = frame_checksum_hdr(hdr, payload, len);
    if (len > 0 && type != JOURNAL_TYPE_PAD)
        ring_copy(j, pos + JOURNAL_RECORD_HEADER, payload, len);
    /* The checksum word is 8-aligned: it never wraps. */
    memcpy(j->ring + ((pos + size - JOURNAL_RECORD_TRAILER) & j->ring_mask), &sum, sizeof sum);
    /* seq_cst: release (payload and checksum are visible to the flusher
     * that acquires this header: the record is ready) plus the Dekker
     * pairing with flusher_sleep (see wake_flusher). */
    atomic_store_explicit(ring_word(j, pos), hdr, memory_order_seq_cst);
    if (filling)
        wake_flusher(j, true);
    else if (defer_j == j)
        defer_owed = true; /* paid at the bracket's end or before a wait */
    else
        wake_flusher(j, false);
    return INV_OK;
}

int journal_publish(journal *j, uint64_t pos, uint8_t type, const void *payload, uint32_t len)
{
    assert(j != NULL);
    if (pos < JOURNAL_POSITION_FIRST || type < JOURNAL_TYPE_USER_MIN || len > JOURNAL_PAYLOAD_MAX ||
        (len > 0 && payload == NULL))
        return INV_EINVALID;
    return fill(j, pos, type, payload, len);
}

int journal_abandon(journal *j, uint64_t pos, uint32_t payload_len)
{
    assert(j != NULL);
    if (pos < JOURNAL_POSITION_FIRST || payload_len > JOURNAL_PAYLOAD_MAX)
        return INV_EINVALID;
    return fill(j, pos, JOURNAL_TYPE_PAD, NULL, payload_len);
}

/* ---- durability ----------------------------------------------------------- */

uint64_t journal_durable_end(const journal *j)
{
    assert(j != NULL);
    /* acquire: pairs with advance_durable; callers act on durability. */
    return atomic_load_explicit(&((journal *)j)->durable_end, memory_order_acquire);
}

uint64_t journal_tail(const journal *j)
{
    assert(j != NULL);
    /* relaxed: a snapshot of a counter. */
    return atomic_load_explicit(&((journal *)j)->tail, memory_order_relaxed);
}

bool journal_failed(const journal *j)
{
    assert(j != NULL);
    /* acquire: pairs with enter_failed. */
    return atomic_load_explicit(&((journal *)j)->failed, memory_order_acquire);
}

int journal_wait(journal *j, uint64_t pos)
{
    assert(j != NULL);
    if (pos == 0 || cond_durable(j, pos))
        return INV_OK;
    return wait_progress(j, &j->durable_q, cond_durable, pos);
}

int journal_sync_written(journal *j)
{
    assert(journal_ok(j));
    if (j->policy != INV_FSYNC_NONE)
        return INV_OK;
    /* Older segments were fdatasynced when the flusher rotated past them;
     * the newest one is synced through a descriptor of our own (the
     * flusher owns its descriptor; fdatasync covers the file). */
    journal_segment *segs;
    size_t n;
    int rc = journal_segments_list(j->dir, &segs, &n, NULL, 0);
    if (rc != INV_OK)
        return rc == INV_ENOMEM ? rc : INV_EIO; /* out of memory is no I/O failure */
    if (n > 0) {
        char path[SEGMENT_PATH_MAX];
        segment_path(path, sizeof path, j->dir, segs[n - 1].first);
        int fd = sysio_open(FAULT_JOURNAL_SEG_OPEN, path, O_RDONLY | O_CLOEXEC, 0);
        if (fd < 0 || sync_fd(j, fd) != 0)
            rc = INV_EIO;
        if (fd >= 0)
            close(fd);
    }
    free(segs);
    return rc;
}

/* Adds fd to the subscribers: INV_OK or INV_ELIMIT (full). */
static int sub_add(journal *j, int fd)
{
    assert(fd >= 0);
    pthread_mutex_lock(&j->sub_lock);
    size_t i = 0;
    while (i < INV_DURABLE_SUBSCRIBERS_MAX && j->subs[i] >= 0)
        i++;
    if (i < INV_DURABLE_SUBSCRIBERS_MAX) {
        j->subs[i] = fd;
        /* relaxed: a hint read by the flusher before taking the lock. */
        atomic_fetch_add_explicit(&j->sub_count, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&j->sub_lock);
    return i < INV_DURABLE_SUBSCRIBERS_MAX ? INV_OK : INV_ELIMIT;
}

/* Removes fd from the subscribers; true if it was one. Once it returns the
 * flusher no longer writes to fd (it writes under the same lock). */
static bool sub_remove(journal *j, int fd)
{
    assert(j != NULL);
    bool found = false;
    pthread_mutex_lock(&j->sub_lock);
    for (size_t i = 0; i < INV_DURABLE_SUBSCRIBERS_MAX; i++)
        if (fd >= 0 && j->subs[i] == fd) {
            j->subs[i] = -1;
            found = true;
            /* relaxed: a hint, see sub_add. */
            atomic_fetch_sub_explicit(&j->sub_count, 1, memory_order_relaxed);
            break;
        }
    pthread_mutex_unlock(&j->sub_lock);
    return found;
}

int journal_subscribe(journal *j)
{
    assert(journal_ok(j));
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0)
        return INV_EIO;
    int rc = sub_add(j, fd);
    if (rc != INV_OK) {
        close(fd);
        return rc;
    }
    return fd;
}

void journal_unsubscribe(journal *j, int fd)
{
    assert(j != NULL);
    if (sub_remove(j, fd))
        close(fd); /* after the lock: the flusher no longer writes to it */
}

int journal_subscribe_fd(journal *j, int fd)
{
    assert(j != NULL);
    if (fd < 0)
        return INV_EINVALID;
    return sub_add(j, fd);
}

void journal_unsubscribe_fd(journal *j, int fd)
{
    assert(j != NULL);
    (void)sub_remove(j, fd); /* the caller's fd: never closed here */
}

void journal_stats_get(const journal *cj, journal_stats *out)
{
    assert(journal_ok(cj) && out != NULL);
    journal *j = (journal *)cj;
    memset(out, 0, sizeof *out);
    /* The ends first (acquire: journal_durable_end; the flusher counts a
     * write before it publishes the durable end that covers it), so the
     * counters read after them count at least every record below
     * durable_end: exact once durable_end reaches the tail. */
    out->durable_end = journal_durable_end(j);
    out->tail = journal_tail(j);
    /* durable_end <= written_end <= tail, and the tail was read after */
    assert(out->durable_end <= out->tail);
    /* relaxed (all below): statistics, read independently. */
    out->records = atomic_load_explicit(&j->st_records, memory_order_relaxed);
    out->pad_records = atomic_load_explicit(&j->st_pad_records, memory_order_relaxed);
    out->bytes = atomic_load_explicit(&j->st_bytes, memory_order_relaxed);
    out->fsyncs = atomic_load_explicit(&j->st_fsyncs, memory_order_relaxed);
    out->records_per_fsync_max = atomic_load_explicit(&j->st_per_fsync_max, memory_order_relaxed);
    uint64_t synced = atomic_load_explicit(&j->st_synced_records, memory_order_relaxed);
    out->records_per_fsync_avg = out->fsyncs ? (double)synced / (double)out->fsyncs : 0.0;
    out->segments = atomic_load_explicit(&j->st_segments, memory_order_relaxed);
    out->written_end = atomic_load_explicit(&j->st_written_end, memory_order_relaxed);
    out->failed = journal_failed(j);
    /* relaxed (both): statistics; the flag is a hint of the moment. */
    out->flusher_wakeups = atomic_load_explicit(&j->st_flusher_wakeups, memory_order_relaxed);
    uint32_t state = atomic_load_explicit(&j->flusher_sleeping, memory_order_relaxed);
    out->flusher_asleep = state != FLUSHER_AWAKE;
    out->flusher_polling = state == FLUSHER_POLLING;
}
