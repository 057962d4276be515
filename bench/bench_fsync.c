/*
 * bench_fsync.c — how fast can this disk acknowledge a durable append, and
 * what do the journal's choices cost (issue #15, item 5)? One writer appends
 * BENCH_FSYNC_RECORD bytes and makes them durable, BENCH_FSYNC_SYNCS times
 * per row, in a file under the data directory's file system (default: the
 * current directory, env BENCH_FSYNC_DIR). Rows, alternated over
 * BENCH_FSYNC_ROUNDS rounds so that the disk's drift hits each alike:
 *
 *   prezeroed     the file was zeroed and synced beforehand: pwrite +
 *                 fdatasync and nothing else (the ceiling: no zeros to
 *                 write, no metadata to commit)
 *   inline-zero   the journal's way: 1 MiB of zeros kept ahead, written by
 *                 the writer before the fdatasync that covers them
 *                 (JOURNAL_PREALLOC_BYTES)
 *   spare-zeroer  prezeroed, while a second thread zeroes the next segment
 *                 in the background (64 KiB writes pushed out with
 *                 sync_file_range, an fdatasync per 4 MiB, paced at 1.5x
 *                 the writer): "pre-zero the next extent off the flusher"
 *   dio-zeroer    a second thread keeps 4 MiB of zeros ahead in the same
 *                 file with O_DIRECT writes and its own fdatasync
 *   o-dsync       prezeroed, opened O_DSYNC, no fdatasync
 *   o-direct      prezeroed, O_DIRECT | O_DSYNC, 4 KiB-aligned writes
 *   io-uring      prezeroed, pwrite then IORING_OP_FSYNC (DATASYNC) through
 *                 liburing, waited for
 *
 * Per row: syncs/s, p50, p99, p99.9 and max of one append-and-sync (us),
 * and how many took over 1 ms and over 2 ms. The last line says whether
 * "no acknowledged write over 2 ms" holds even for the ceiling row: when
 * it does not, that target is beyond this disk.
 *
 * Knobs (env): BENCH_FSYNC_DIR, BENCH_FSYNC_SYNCS (20000), BENCH_FSYNC_ROUNDS
 * (2), BENCH_FSYNC_RECORD (4096). About 4 s per row on this machine's disk.
 */
#include "bench_util.h"

#include <liburing.h>
#include <stdatomic.h>
#include <sys/stat.h>

#define MIB (1ULL << 20)
#define FSYNC_PREALLOC_BYTES MIB /* the journal's JOURNAL_PREALLOC_BYTES */
#define FSYNC_FILE_BYTES (256 * MIB) /* prezeroed size: more than a row writes */
#define FSYNC_RECORD_MAX (1u << 20)
#define FSYNC_SYNCS_MAX 1000000u
#define FSYNC_SPARE_CHUNK (64u << 10)
#define FSYNC_SPARE_SYNC_EVERY (4 * MIB)
#define FSYNC_SPARE_BYTES (64 * MIB) /* a segment */
#define FSYNC_DIO_AHEAD (4 * MIB)
#define FSYNC_DIO_ALIGN 4096u
#define FSYNC_IDLE_US 100u /* a background thread with nothing to do naps */
#define FSYNC_SLOW_NS (1000u * 1000u)
#define FSYNC_TARGET_NS (2000u * 1000u) /* issue #15: no spike above 2 ms */
#define FSYNC_PATH_MAX 4096

typedef enum {
    ROW_PREZEROED,
    ROW_INLINE_ZERO,
    ROW_SPARE_ZEROER,
    ROW_DIO_ZEROER,
    ROW_O_DSYNC,
    ROW_O_DIRECT,
    ROW_IO_URING,
    ROW_COUNT
} row_kind;

static const char *const row_names[ROW_COUNT] = {
    "prezeroed", "inline-zero", "spare-zeroer", "dio-zeroer", "o-dsync", "o-direct", "io-uring"};

typedef struct {
    double syncs_per_s;
    uint64_t p50, p99, p999, max, over_1ms, over_2ms;
} row_result;

/* Shared with the background zeroers of one row. */
typedef struct {
    char spare_path[FSYNC_PATH_MAX];
    const char *path;
    const uint8_t *zeros; /* MIB of zeros, FSYNC_DIO_ALIGN-aligned */
    _Atomic uint64_t data_end; /* bytes the writer appended (release) */
    _Atomic uint64_t zero_end; /* dio-zeroer: file zeroed and synced up to */
    _Atomic bool stop;
} row_ctx;

static void die(const char *what)
{
    fprintf(stderr, "bench_fsync: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void write_full(int fd, const void *buf, size_t len, uint64_t off)
{
    while (len > 0) {
        ssize_t n = pwrite(fd, buf, len, (off_t)off);
        if (n <= 0)
            die("pwrite");
        buf = (const uint8_t *)buf + n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
}

/* Writes zeros over [from, to) of fd in chunks of at most a MiB. */
static void write_zeros(int fd, const uint8_t *zeros, uint64_t from, uint64_t to)
{
    for (uint64_t off = from; off < to;) {
        size_t part = to - off > MIB ? MIB : (size_t)(to - off);
        write_full(fd, zeros, part, off);
        off += part;
    }
}

/* The next segment, zeroed off the writer's thread at 1.5x its pace. */
static void *spare_zeroer(void *arg)
{
    row_ctx *c = arg;
    int fd = open(c->spare_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        die("open spare");
    uint64_t done = 0;
    /* acquire: pairs with the writer's release stores (a pace, no data). */
    while (!atomic_load_explicit(&c->stop, memory_order_acquire)) {
        uint64_t pace = atomic_load_explicit(&c->data_end, memory_order_acquire) * 3 / 2 + MIB;
        if (done >= pace) {
            usleep(FSYNC_IDLE_US);
            continue;
        }
        uint64_t off = done % FSYNC_SPARE_BYTES;
        write_full(fd, c->zeros, FSYNC_SPARE_CHUNK, off);
        (void)sync_file_range(fd, (off_t)off, FSYNC_SPARE_CHUNK, SYNC_FILE_RANGE_WRITE);
        done += FSYNC_SPARE_CHUNK;
        if (done % FSYNC_SPARE_SYNC_EVERY == 0 && fdatasync(fd) != 0)
            die("fdatasync spare");
    }
    close(fd);
    unlink(c->spare_path);
    return NULL;
}

/* Zeros ahead of the writer in the same file, with O_DIRECT. */
static void *dio_zeroer(void *arg)
{
    row_ctx *c = arg;
    int fd = open(c->path, O_WRONLY | O_DIRECT | O_CLOEXEC);
    if (fd < 0)
        die("open O_DIRECT");
    /* relaxed: only this thread stores it after the row began. */
    uint64_t end = atomic_load_explicit(&c->zero_end, memory_order_relaxed);
    while (!atomic_load_explicit(&c->stop, memory_order_acquire)) { /* acquire: as above */
        if (end >= atomic_load_explicit(&c->data_end, memory_order_acquire) + FSYNC_DIO_AHEAD) {
            usleep(FSYNC_IDLE_US);
            continue;
        }
        write_full(fd, c->zeros, MIB, end);
        if (fdatasync(fd) != 0)
            die("fdatasync O_DIRECT");
        end += MIB;
        /* release: the writer may append below it without zeroing. */
        atomic_store_explicit(&c->zero_end, end, memory_order_release);
    }
    close(fd);
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void prezero(const char *path, const uint8_t *zeros)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        die("open");
    write_zeros(fd, zeros, 0, FSYNC_FILE_BYTES);
    if (fsync(fd) != 0)
        die("fsync");
    close(fd);
}

/* Opens the row's file as the row needs it. */
static int open_row(row_kind kind, row_ctx *c)
{
    bool zeroed = kind != ROW_INLINE_ZERO && kind != ROW_DIO_ZEROER;
    if (zeroed)
        prezero(c->path, c->zeros);
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (zeroed ? 0 : O_TRUNC);
    if (kind == ROW_O_DSYNC)
        flags |= O_DSYNC;
    if (kind == ROW_O_DIRECT)
        flags |= O_DSYNC | O_DIRECT;
    int fd = open(c->path, flags, 0644);
    if (fd < 0)
        die("open row file");
    return fd;
}

static row_result run_row(row_kind kind, const char *dir, uint64_t syncs, size_t record)
{
    static uint8_t *zeros, *buf;
    if (zeros == NULL && (posix_memalign((void **)&zeros, FSYNC_DIO_ALIGN, MIB) != 0 ||
                          posix_memalign((void **)&buf, FSYNC_DIO_ALIGN, FSYNC_RECORD_MAX) != 0))
        die("posix_memalign");
    memset(zeros, 0, MIB);
    memset(buf, 'r', record);
    row_ctx c = {.zeros = zeros};
    char path[FSYNC_PATH_MAX];
    snprintf(path, sizeof path, "%s/bench-fsync-%d.dat", dir, (int)getpid());
    snprintf(c.spare_path, sizeof c.spare_path, "%s/bench-fsync-%d.spare", dir, (int)getpid());
    c.path = path;
    int fd = open_row(kind, &c);
    pthread_t helper;
    bool helped = kind == ROW_SPARE_ZEROER || kind == ROW_DIO_ZEROER;
    if (kind == ROW_DIO_ZEROER) {
        write_zeros(fd, zeros, 0, FSYNC_DIO_AHEAD); /* the first extent, before timing */
        if (fdatasync(fd) != 0)
            die("fdatasync");
        /* relaxed: before the thread starts (pthread_create orders it). */
        atomic_store_explicit(&c.zero_end, FSYNC_DIO_AHEAD, memory_order_relaxed);
    }
    if (helped && pthread_create(&helper, NULL,
                                 kind == ROW_SPARE_ZEROER ? spare_zeroer : dio_zeroer, &c) != 0)
        die("pthread_create");
    struct io_uring ring;
    if (kind == ROW_IO_URING && io_uring_queue_init(4, &ring, 0) != 0)
        die("io_uring_queue_init");
    uint64_t *lat = malloc(syncs * sizeof *lat);
    if (lat == NULL)
        die("malloc");
    uint64_t off = 0, zeroed_to = 0;
    uint64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < syncs; i++) {
        uint64_t start = bench_now_ns();
        write_full(fd, buf, record, off);
        off += record;
        if (kind == ROW_INLINE_ZERO && off + FSYNC_PREALLOC_BYTES / 2 > zeroed_to) {
            uint64_t from = zeroed_to > off ? zeroed_to : off;
            write_zeros(fd, zeros, from, off + FSYNC_PREALLOC_BYTES);
            zeroed_to = off + FSYNC_PREALLOC_BYTES;
        }
        /* release: the zeroers' pace (and the dio-zeroer's floor). */
        atomic_store_explicit(&c.data_end, off, memory_order_release);
        if (kind == ROW_IO_URING) {
            struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
            struct io_uring_cqe *cqe;
            io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
            if (io_uring_submit(&ring) != 1 || io_uring_wait_cqe(&ring, &cqe) != 0 || cqe->res < 0)
                die("io_uring fsync");
            io_uring_cqe_seen(&ring, cqe);
        } else if (kind != ROW_O_DSYNC && kind != ROW_O_DIRECT && fdatasync(fd) != 0) {
            die("fdatasync");
        }
        lat[i] = bench_now_ns() - start;
    }
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    /* release: the helper stops; join orders the rest. */
    atomic_store_explicit(&c.stop, true, memory_order_release);
    if (helped)
        pthread_join(helper, NULL);
    if (kind == ROW_IO_URING)
        io_uring_queue_exit(&ring);
    close(fd);
    unlink(path);
    row_result r = {.syncs_per_s = (double)syncs / secs};
    for (uint64_t i = 0; i < syncs; i++) {
        r.over_1ms += lat[i] > FSYNC_SLOW_NS;
        r.over_2ms += lat[i] > FSYNC_TARGET_NS;
    }
    qsort(lat, syncs, sizeof *lat, cmp_u64);
    r.p50 = lat[syncs / 2];
    r.p99 = lat[syncs * 99 / 100];
    r.p999 = lat[syncs * 999 / 1000];
    r.max = lat[syncs - 1];
    free(lat);
    return r;
}

int main(void)
{
    const char *dir = getenv("BENCH_FSYNC_DIR") ? getenv("BENCH_FSYNC_DIR") : ".";
    uint64_t syncs = bench_env_u64("BENCH_FSYNC_SYNCS", 20000);
    uint64_t rounds = bench_env_u64("BENCH_FSYNC_ROUNDS", 2);
    uint64_t record = bench_env_u64("BENCH_FSYNC_RECORD", 4096);
    if (syncs < 1000 || syncs > FSYNC_SYNCS_MAX || rounds == 0 || record == 0 ||
        record > FSYNC_RECORD_MAX || (record % FSYNC_DIO_ALIGN) != 0 ||
        syncs * record > FSYNC_FILE_BYTES) {
        fprintf(stderr,
                "bench_fsync: BENCH_FSYNC_SYNCS 1000..%u, BENCH_FSYNC_RECORD a multiple of "
                "%u up to %u, their product at most %llu MiB\n",
                FSYNC_SYNCS_MAX, FSYNC_DIO_ALIGN, FSYNC_RECORD_MAX,
                (unsigned long long)(FSYNC_FILE_BYTES / MIB));
        return 2;
    }
    printf("bench_fsync: %llu appends of %llu bytes per row, each made durable; dir %s\n",
           (unsigned long long)syncs, (unsigned long long)record, dir);
    printf("%-5s %-13s %9s %8s %8s %8s %8s %6s %6s\n", "round", "row", "syncs/s", "p50 us",
           "p99 us", "p999 us", "max us", ">1ms", ">2ms");
    uint64_t ceiling_max = 0;
    for (uint64_t round = 1; round <= rounds; round++)
        for (int k = 0; k < ROW_COUNT; k++) {
            row_result r = run_row((row_kind)k, dir, syncs, (size_t)record);
            printf("%-5llu %-13s %9.0f %8.0f %8.0f %8.0f %8.0f %6llu %6llu\n",
                   (unsigned long long)round, row_names[k], r.syncs_per_s, (double)r.p50 / 1e3,
                   (double)r.p99 / 1e3, (double)r.p999 / 1e3, (double)r.max / 1e3,
                   (unsigned long long)r.over_1ms, (unsigned long long)r.over_2ms);
            fflush(stdout);
            if (k == ROW_PREZEROED && r.max > ceiling_max)
                ceiling_max = r.max;
        }
    printf("no durable append over 2 ms, even with nothing but pwrite + fdatasync (prezeroed): %s "
           "(its max %.2f ms)%s\n",
           ceiling_max <= FSYNC_TARGET_NS ? "holds" : "does not hold", (double)ceiling_max / 1e6,
           ceiling_max <= FSYNC_TARGET_NS ? "" : ": the 2 ms target is beyond this disk");
    return 0;
}
