/*
 * tokens.c — the token file, the digest table, the leaky buckets, the
 * registry of the current set and the throttle on failed AUTH attempts
 * (contracts in tokens.h).
 *
 * A set is one array of entries and an open-addressing table over their
 * digests (linear probing, a power of two of slots, load <= 1/2, sized once
 * at load and never changed: a set is immutable after it is built, except
 * the buckets). The digest's first 8 bytes are SHA-256 output, so they hash
 * uniformly as they are; every candidate is then compared whole with
 * CRYPTO_memcmp. Raw tokens exist only in the file buffer while it is
 * parsed; it is cleansed before it is freed.
 *
 * Invariants: no two entries share a digest; every slot is 0 (empty) or an
 * entry index + 1; count <= TOKENS_MAX; slots >= 2 * count.
 */
#include "alloc.h"
#include "server/tokens.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "vec.h"

/* Slots of the smallest table (the empty set's too). */
#define TOKENS_SLOTS_MIN 8u
/* Fields of a line: TOKEN TENANT SCOPE [BUCKET/LEAK_PER_S]; one more is
 * split off only to be refused. */
#define TOKEN_FIELDS_MIN 3u
#define TOKEN_FIELDS_MAX 4u
/* Bytes of a hostile field quoted in an error message (a reason names the
 * value it refused, never more than this, never a token). */
#define TOKEN_SHOW_MAX 64u
/* First read of a file whose size fstat could not give a hint of. */
#define TOKENS_READ_FIRST 4096u

/* A drop is 1000 milli-drops: with the level in milli-drops and time in
 * ms, a leak of L drops per second is exactly L milli-drops per ms. */
#define RATE_MILLI 1000u
/* now_ms is clamped to [0, this]: now_ms * TOKEN_LEAK_PER_S_MAX plus a
 * full bucket stays below 2^63 (292 years of a monotonic clock). */
#define RATE_CLOCK_MS_MAX ((uint64_t)INT64_MAX / TOKEN_LEAK_PER_S_MAX - 1)

_Static_assert(TOKENS_MAX <= UINT32_MAX / 4, "slots hold an entry index + 1 in 32 bits");
_Static_assert(((uint64_t)TOKEN_BUCKET_MAX * RATE_MILLI) < (uint64_t)INT64_MAX / 4,
               "a full bucket in milli-drops fits beside the leak clock");
_Static_assert(AUTH_FAILURES_CLOSE < 32, "the penalty's shift stays in range");
_Static_assert(TOKEN_BYTES_MAX <= UINT32_MAX && INV_TENANT_NAME_MAX <= UINT8_MAX,
               "field lengths fit their types");

struct token_set {
    _Atomic uint64_t refs;
    size_t count; /* entries */
    size_t mask; /* slots - 1 */
    uint32_t *slots; /* 0: empty; else an index into entries + 1 */
    token_entry *entries;
};

/* ---- digests and the table -------------------------------------------- */

bool token_digest(const char *token, size_t len, uint8_t digest[TOKEN_DIGEST_BYTES])
{
    unsigned int md_len = 0;
    assert(token != NULL || len == 0);
    if (EVP_Digest(token, len, digest, &md_len, EVP_sha256(), NULL) != 1 ||
        md_len != TOKEN_DIGEST_BYTES) {
        /* libcrypto out of memory: a digest nobody may use (callers see
         * false), cleared so no stale bytes pass for one. */
        memset(digest, 0, TOKEN_DIGEST_BYTES);
        return false;
    }
    return true;
}

/* The slot a digest's probe starts at: its first 8 bytes are uniform. */
static size_t digest_home(const token_set *s, const uint8_t digest[TOKEN_DIGEST_BYTES])
{
    uint64_t h;
    assert(s != NULL && digest != NULL);
    memcpy(&h, digest, sizeof h);
    size_t home = (size_t)h & s->mask;
    assert(home <= s->mask); /* a slot of the table (mask + 1 of them) */
    return home;
}

/* The slot holding digest, or the empty slot ending its probe. Every
 * occupied slot on the way is compared whole, in constant time. */
static size_t table_probe(const token_set *s, const uint8_t digest[TOKEN_DIGEST_BYTES])
{
    size_t i = digest_home(s, digest);
    /* Bounded: load <= 1/2 leaves an empty slot within mask + 1 steps. */
    for (size_t step = 0; step <= s->mask; step++, i = (i + 1) & s->mask) {
        uint32_t v = s->slots[i];
        if (v == 0 || CRYPTO_memcmp(s->entries[v - 1].digest, digest, TOKEN_DIGEST_BYTES) == 0)
            return i;
    }
    assert(!"token table full"); /* slots >= 2 * count: unreachable */
    return 0;
}

token_entry *token_set_find_digest(const token_set *s, const uint8_t digest[TOKEN_DIGEST_BYTES])
{
    assert(s != NULL && digest != NULL);
    uint32_t v = s->slots[table_probe(s, digest)];
    assert(v <= s->count);
    return v ? &s->entries[v - 1] : NULL;
}

/* Once per AUTH, not per request: libcrypto's digest allocates its context. */
token_entry *token_set_find(const token_set *s, const char *token, size_t len)
{
    uint8_t digest[TOKEN_DIGEST_BYTES];
    assert(s != NULL);
    token_entry *e = NULL;
    /* A digest that failed (no memory) finds nothing: the AUTH fails. */
    if (token_digest(token, len, digest))
        e = token_set_find_digest(s, digest);
    OPENSSL_cleanse(digest, sizeof digest); /* as good as a login to this set */
    return e;
}

/* Slots for n entries: a power of two >= 2n (load <= 1/2). */
static size_t table_slots_for(size_t n)
{
    size_t cap = TOKENS_SLOTS_MIN;
    while (cap < 2 * n)
        cap *= 2;
    assert(cap >= 2 * n && (cap & (cap - 1)) == 0);
    return cap;
}

/* A set adopting n entries (a malloc'd array, freed with the set; NULL
 * with n 0). NULL: out of memory (entries not freed). */
static token_set *set_new(token_entry *entries, size_t n)
{
    assert(n <= TOKENS_MAX && (entries != NULL || n == 0));
    size_t cap = table_slots_for(n);
    token_set *s = inv_malloc(sizeof *s);
    uint32_t *slots = inv_calloc(cap, sizeof *slots);
    if (s == NULL || slots == NULL) {
        free(s);
        free(slots);
        return NULL;
    }
    *s = (token_set){.count = n, .mask = cap - 1, .slots = slots, .entries = entries};
    /* relaxed: nobody else can see the set before it is returned. */
    atomic_init(&s->refs, 1);
    return s;
}

static void set_free(token_set *s)
{
    assert(s != NULL && s->count <= TOKENS_MAX);
    free(s->slots);
    free(s->entries);
    free(s);
}

token_set *token_set_empty(void)
{
    token_set *s = set_new(NULL, 0);
    assert(s == NULL || s->count == 0);
    return s;
}

void token_set_ref(token_set *s)
{
    assert(s != NULL);
    /* relaxed: the caller holds a reference, so the set is alive and this
     * increment publishes nothing. */
    uint64_t before = atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    assert(before >= 1);
    (void)before;
}

void token_set_unref(token_set *s)
{
    if (s == NULL)
        return;
    /* acq_rel: release orders this holder's reads of the set (and its
     * bucket updates) before the decrement; acquire lets the thread that
     * takes the count to 0 see every other holder's, before it frees. */
    uint64_t before = atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel);
    assert(before >= 1);
    if (before == 1)
        set_free(s);
}

size_t token_set_count(const token_set *s)
{
    assert(s != NULL && s->count <= TOKENS_MAX);
    return s->count;
}

/* ---- the file ----------------------------------------------------------- */

/* "PATH:LINE: reason" into err (nothing when err is NULL or errlen 0). */
static void line_error(char *err, size_t errlen, const char *path, size_t line, const char *fmt,
                       ...) __attribute__((format(printf, 5, 6)));
static void line_error(char *err, size_t errlen, const char *path, size_t line, const char *fmt,
                       ...)
{
    if (err == NULL || errlen == 0)
        return;
    assert(path != NULL && fmt != NULL && line >= 1);
    int n = snprintf(err, errlen, "%s:%zu: ", path, line);
    if (n < 0 || (size_t)n >= errlen)
        return; /* the path alone filled err: it is truncated, not overrun */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

/* A field as it may appear in a message: at most TOKEN_SHOW_MAX bytes,
 * anything outside printable ASCII as '?' (no escapes reach a log). */
static const char *field_show(const char *p, size_t len, char out[TOKEN_SHOW_MAX + 4])
{
    size_t n = len < TOKEN_SHOW_MAX ? len : TOKEN_SHOW_MAX;
    assert(out != NULL && (p != NULL || len == 0));
    for (size_t i = 0; i < n; i++)
        out[i] = p[i] >= 0x20 && p[i] < 0x7f ? p[i] : '?';
    strcpy(out + n, len > n ? "..." : "");
    assert(strlen(out) <= TOKEN_SHOW_MAX + 3); /* within out, "..." included */
    return out;
}

/* Opens path for reading if it is a regular file of at most
 * TOKENS_FILE_BYTES_MAX bytes: INV_OK with *fd and its size (a hint: the
 * file may change while read), INV_EIO with errno (0: not a regular file),
 * or INV_ELIMIT. */
static int file_open_regular(const char *path, int *fd, size_t *size)
{
    assert(path != NULL && fd != NULL && size != NULL);
    /* O_NONBLOCK: a FIFO must not block the open before it is refused. */
    *fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    struct stat st;
    int rc = INV_OK;
    if (*fd < 0 || fstat(*fd, &st) != 0) {
        rc = INV_EIO; /* errno: open's or fstat's reason */
    } else if (!S_ISREG(st.st_mode)) {
        rc = INV_EIO;
        errno = 0; /* the reason is the file's type */
    } else if ((uint64_t)st.st_size > TOKENS_FILE_BYTES_MAX) {
        rc = INV_ELIMIT; /* refused before reading */
    }
    if (rc != INV_OK && *fd >= 0) {
        int e = errno;
        close(*fd);
        errno = e;
    }
    *size = rc == INV_OK ? (size_t)st.st_size : 0;
    assert(rc != INV_OK || *size <= TOKENS_FILE_BYTES_MAX); /* open only within the limit */
    return rc;
}

/* Reads fd to its end into a malloc'd buffer (*buf, *len), at most
 * TOKENS_FILE_BYTES_MAX bytes: INV_OK, INV_ELIMIT, INV_ENOMEM or INV_EIO
 * (errno set). Every buffer given up on is cleansed first. */
static int fd_read_all(int fd, size_t size_hint, char **buf, size_t *len)
{
    /* + 1: the end of file is seen without a regrowth. */
    size_t cap = (size_hint ? size_hint : TOKENS_READ_FIRST) + 1, n = 0;
    char *p = inv_malloc(cap);
    int rc = p ? INV_OK : INV_ENOMEM;
    /* Bounded: each turn reads a byte or more, or ends; cap stops growing
     * at TOKENS_FILE_BYTES_MAX + 1. */
    while (rc == INV_OK) {
        if (n == cap) { /* the file grew after fstat */
            size_t grown =
                cap * 2 < TOKENS_FILE_BYTES_MAX + 1 ? cap * 2 : TOKENS_FILE_BYTES_MAX + 1;
            char *q = cap > TOKENS_FILE_BYTES_MAX ? NULL : inv_malloc(grown);
            if (q == NULL) {
                rc = cap > TOKENS_FILE_BYTES_MAX ? INV_ELIMIT : INV_ENOMEM;
                break;
            }
            memcpy(q, p, n); /* not realloc: the old copy is cleansed */
            OPENSSL_cleanse(p, n);
            free(p);
            p = q;
            cap = grown;
        }
        ssize_t got = read(fd, p + n, cap - n);
        if (got < 0 && errno != EINTR)
            rc = INV_EIO;
        else if (got == 0)
            break;
        else if (got > 0)
            n += (size_t)got;
    }
    if (rc != INV_OK && p != NULL) {
        int e = errno;
        OPENSSL_cleanse(p, n);
        free(p);
        errno = e;
        p = NULL;
        n = 0;
    }
    assert(n <= TOKENS_FILE_BYTES_MAX && (rc == INV_OK) == (p != NULL));
    *buf = p;
    *len = n;
    return rc;
}

/* Reads the whole regular file at path: INV_OK with *buf (the caller
 * cleanses and frees it), else the error with err filled. */
static int file_read(const char *path, char **buf, size_t *len, char *err, size_t errlen)
{
    int fd;
    size_t size;
    assert(path != NULL && buf != NULL && len != NULL);
    *buf = NULL;
    *len = 0;
    int rc = file_open_regular(path, &fd, &size);
    if (rc == INV_OK) {
        rc = fd_read_all(fd, size, buf, len);
        int e = errno;
        close(fd);
        errno = e;
    }
    if (rc == INV_EIO)
        fileio_errmsg(err, errlen, "%s: %s", path, errno ? strerror(errno) : "not a regular file");
    else if (rc == INV_ELIMIT)
        fileio_errmsg(err, errlen, "%s: larger than %u bytes", path, TOKENS_FILE_BYTES_MAX);
    else if (rc == INV_ENOMEM)
        fileio_errmsg(err, errlen, "%s: out of memory reading it", path);
    assert(rc != INV_OK || *len <= TOKENS_FILE_BYTES_MAX);
    return rc;
}

/* A decimal number of 1..max, digits only (no sign, no space). */
static bool decimal_in_range(const char *p, size_t len, uint32_t max, uint32_t *out)
{
    uint64_t v = 0;
    assert(out != NULL && max >= 1 && (p != NULL || len == 0));
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(p[i] - '0');
        if (v > max) /* checked per digit: v never overflows */
            return false;
    }
    if (v == 0)
        return false;
    *out = (uint32_t)v;
    assert(*out >= 1 && *out <= max);
    return true;
}

static bool scope_parse(const char *p, size_t len, token_scope *out)
{
    assert(out != NULL && (p != NULL || len == 0));
    /* Every scope a file may name: "none" is not one. */
    for (token_scope s = TOKEN_SCOPE_READ; s <= TOKEN_SCOPE_ADMIN; s++) {
        const char *name = token_scope_name(s);
        if (strlen(name) == len && memcmp(name, p, len) == 0) {
            *out = s;
            assert(*out != TOKEN_SCOPE_NONE);
            return true;
        }
    }
    return false;
}

/* One field of a line: bytes [p, p + len). */
typedef struct {
    const char *p;
    size_t len;
} field;

/* Splits [p, end) at spaces and tabs into up to TOKEN_FIELDS_MAX + 1
 * fields (one past the maximum, only to refuse it); returns how many. */
static size_t fields_split(const char *p, const char *end, field f[TOKEN_FIELDS_MAX + 1])
{
    size_t n = 0;
    while (p < end && n <= TOKEN_FIELDS_MAX) {
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        const char *start = p;
        while (p < end && *p != ' ' && *p != '\t')
            p++;
        if (p > start)
            f[n++] = (field){start, (size_t)(p - start)};
    }
    assert(n <= TOKEN_FIELDS_MAX + 1);
    return n;
}

/* Checks a token field: NULL, or why it is refused (never its bytes). */
static const char *token_field_check(field t, char *why, size_t whylen)
{
    assert(why != NULL && whylen >= 1 && (t.p != NULL || t.len == 0));
    if (t.len < TOKEN_BYTES_MIN || t.len > TOKEN_BYTES_MAX) {
        snprintf(why, whylen, "token is %zu bytes (%u..%u)", t.len, TOKEN_BYTES_MIN,
                 TOKEN_BYTES_MAX);
        return why;
    }
    for (size_t i = 0; i < t.len; i++) {
        unsigned char c = (unsigned char)t.p[i];
        if (c < 0x21 || c > 0x7e) {
            snprintf(why, whylen, "token byte %zu is 0x%02x (printable ASCII only)", i + 1, c);
            return why;
        }
    }
    return NULL;
}

/* Parses the fields of one line into e (digest included): NULL, or why
 * the line is refused (in why). */
static const char *line_parse(const field *f, size_t n, token_entry *e, char *why, size_t whylen)
{
    char shown[TOKEN_SHOW_MAX + 4];
    assert(n >= TOKEN_FIELDS_MIN && n <= TOKEN_FIELDS_MAX);
    if (token_field_check(f[0], why, whylen))
        return why;
    if (inv_tenant_name_check(f[1].p, f[1].len) != INV_OK) {
        snprintf(why, whylen, "bad tenant name \"%s\" (1..%u bytes of a-z 0-9 . _ -, no leading .)",
                 field_show(f[1].p, f[1].len, shown), INV_TENANT_NAME_MAX);
        return why;
    }
    if (!scope_parse(f[2].p, f[2].len, &e->scope)) {
        snprintf(why, whylen, "unknown scope \"%s\" (read, write or admin)",
                 field_show(f[2].p, f[2].len, shown));
        return why;
    }
    if (n == TOKEN_FIELDS_MAX) {
        const char *slash = memchr(f[3].p, '/', f[3].len);
        size_t left = slash ? (size_t)(slash - f[3].p) : 0;
        if (!slash || !decimal_in_range(f[3].p, left, TOKEN_BUCKET_MAX, &e->bucket_size) ||
            !decimal_in_range(slash + 1, f[3].len - left - 1, TOKEN_LEAK_PER_S_MAX,
                              &e->leak_per_s)) {
            snprintf(why, whylen, "bad rate \"%s\" (BUCKET/LEAK_PER_S, 1..%u / 1..%u)",
                     field_show(f[3].p, f[3].len, shown), TOKEN_BUCKET_MAX, TOKEN_LEAK_PER_S_MAX);
            return why;
        }
    }
    memcpy(e->tenant, f[1].p, f[1].len);
    e->tenant[f[1].len] = '\0';
    e->tenant_len = (uint8_t)f[1].len;
    if (!token_digest(f[0].p, f[0].len, e->digest)) {
        snprintf(why, whylen, "out of memory hashing the token");
        return why;
    }
    return NULL;
}

/* What parsing a file collects: the entries and the line of each. */
typedef struct {
    vec entries; /* token_entry */
    vec lines; /* size_t: the line each entry came from */
} parsed;

/* Parses one line [p, end) (no newline, no trailing CR) numbered line
 * into out. INV_OK (a blank or comment line adds nothing). */
static int line_take(const char *path, size_t line, const char *p, const char *end, parsed *out,
                     char *err, size_t errlen)
{
    char why[160];
    assert(path != NULL && p != NULL && end >= p && out != NULL && line >= 1);
    if (memchr(p, '\0', (size_t)(end - p)) != NULL) {
        line_error(err, errlen, path, line, "NUL byte");
        return INV_EINVALID;
    }
    const char *hash = memchr(p, '#', (size_t)(end - p));
    field f[TOKEN_FIELDS_MAX + 1];
    size_t n = fields_split(p, hash ? hash : end, f);
    if (n == 0)
        return INV_OK;
    if (n < TOKEN_FIELDS_MIN || n > TOKEN_FIELDS_MAX) {
        line_error(err, errlen, path, line, "%s (TOKEN TENANT SCOPE [BUCKET/LEAK_PER_S])",
                   n < TOKEN_FIELDS_MIN ? "too few fields" : "extra fields");
        return INV_EINVALID;
    }
    if (out->entries.n >= TOKENS_MAX) {
        line_error(err, errlen, path, line, "more than %u tokens", TOKENS_MAX);
        return INV_ELIMIT;
    }
    token_entry e = {.scope = TOKEN_SCOPE_NONE};
    if (line_parse(f, n, &e, why, sizeof why)) {
        line_error(err, errlen, path, line, "%s", why);
        return INV_EINVALID;
    }
    if (vec_push(&out->entries, &e) != INV_OK || vec_push(&out->lines, &line) != INV_OK) {
        line_error(err, errlen, path, line, "out of memory");
        return INV_ENOMEM;
    }
    return INV_OK;
}

/* Parses buf (len bytes): lines end in \n or \r\n, the last may have
 * neither. */
static int file_parse(const char *path, const char *buf, size_t len, parsed *out, char *err,
                      size_t errlen)
{
    const char *p = buf, *end = buf + len;
    size_t line = 1;
    assert(path != NULL && (buf != NULL || len == 0) && out != NULL);
    /* Bounded: each turn consumes at least one byte or ends the file. */
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl : end;
        const char *text_end = stop > p && stop[-1] == '\r' ? stop - 1 : stop;
        int rc = line_take(path, line, p, text_end, out, err, errlen);
        if (rc != INV_OK)
            return rc;
        p = nl ? nl + 1 : end;
        line++;
        assert(p <= end); /* the cursor stays within the file */
    }
    return INV_OK;
}

/* Builds the table over the parsed entries (adopted by the set on
 * success). A duplicate digest refuses the file, naming both lines. */
static int set_build(const char *path, parsed *in, token_set **out, char *err, size_t errlen)
{
    size_t n = in->entries.n;
    token_entry *entries = in->entries.items;
    const size_t *lines = in->lines.items;
    assert(n <= TOKENS_MAX && in->lines.n == n);
    token_set *s = set_new(entries, n);
    if (s == NULL) {
        fileio_errmsg(err, errlen, "%s: out of memory for %zu tokens", path, n);
        return INV_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        size_t slot = table_probe(s, entries[i].digest);
        if (s->slots[slot] != 0) {
            line_error(err, errlen, path, lines[i], "duplicate token (also on line %zu)",
                       lines[s->slots[slot] - 1]);
            s->entries = NULL; /* still the caller's */
            set_free(s);
            return INV_EINVALID;
        }
        s->slots[slot] = (uint32_t)(i + 1);
        /* relaxed: an empty bucket; the set is published later (by the
         * registry's mutex or by handing it to the caller). */
        atomic_init(&entries[i].bucket, 0);
    }
    in->entries = VEC_OF(token_entry); /* adopted by s */
    *out = s;
    return INV_OK;
}

int token_set_load(const char *path, token_set **out, char *err, size_t errlen)
{
    assert(path != NULL && out != NULL);
    *out = NULL;
    char *buf;
    size_t len;
    int rc = file_read(path, &buf, &len, err, errlen);
    if (rc != INV_OK)
        return rc;
    parsed p = {VEC_OF(token_entry), VEC_OF(size_t)};
    rc = file_parse(path, buf, len, &p, err, errlen);
    /* The raw tokens live only in buf: gone before anything else. */
    OPENSSL_cleanse(buf, len);
    free(buf);
    if (rc == INV_OK)
        rc = set_build(path, &p, out, err, errlen);
    vec_free(&p.entries);
    vec_free(&p.lines);
    assert((rc == INV_OK) == (*out != NULL));
    return rc;
}

/* ---- the leaky bucket ----------------------------------------------------
 * The word is the instant the bucket will be empty, on the leak clock:
 * leak(now) = now_ms * leak_per_s counts the milli-drops the bucket could
 * have leaked since the clock's 0 (a leak of L drops/s is L milli-drops per
 * ms, so every step is exact integer arithmetic). The level at now is
 * max(0, word - leak(now)) milli-drops; a request adds RATE_MILLI. This is
 * the level-and-last-leak pair folded into one number (the GCRA form of a
 * leaky bucket): no field to pack, and no wrap-around to handle, since
 * now_ms is clamped to [0, RATE_CLOCK_MS_MAX] (292 years) and the word
 * stays below 2^63. A thread whose clock reading is a little older than
 * the last writer's sees the level a little higher: it may refuse a
 * request a few ms early, never admit one too many. 0 is an empty bucket.
 */

typedef struct {
    uint64_t leak_now; /* leak(now), milli-drops */
    uint64_t full; /* bucket_size in milli-drops */
    uint32_t leak_per_s;
} rate_now;

/* The step of one request: true with *next (its drop added), or false
 * with *retry_after_ms, until enough has leaked for one more drop. */
static bool rate_step(uint64_t cur, const rate_now *r, uint64_t *next, uint64_t *retry_after_ms)
{
    uint64_t level = cur > r->leak_now ? cur - r->leak_now : 0;
    uint64_t need = level + RATE_MILLI;
    assert(r->leak_per_s >= 1 && r->full >= RATE_MILLI);
    if (need <= r->full) {
        *next = r->leak_now + need;
        return true;
    }
    uint64_t excess = need - r->full; /* milli-drops that must leak first */
    *retry_after_ms = (excess + r->leak_per_s - 1) / r->leak_per_s;
    assert(*retry_after_ms >= 1);
    return false;
}

/* The one update of a bucket: the step on the current word, installed by
 * CAS, retried on the word that beat it. Lock-free: a failed CAS means
 * another request's landed. relaxed throughout: the word publishes no
 * other memory and depends on none; what bounds the admissions is that
 * every update is a read-modify-write on the word's single modification
 * order, which holds in any memory order. */
static bool bucket_cas_loop(_Atomic uint64_t *word, const rate_now *r, uint64_t *retry_after_ms)
{
    assert(word != NULL && r != NULL && retry_after_ms != NULL);
    uint64_t cur = atomic_load_explicit(word, memory_order_relaxed);
    for (;;) {
        uint64_t next;
        if (!rate_step(cur, r, &next, retry_after_ms)) {
            assert(*retry_after_ms >= 1); /* refused: a wait of at least 1 ms */
            return false;
        }
        if (atomic_compare_exchange_weak_explicit(word, &cur, next, memory_order_relaxed,
                                                  memory_order_relaxed)) {
            /* installed: the request's drop is in, the bucket not over full */
            assert(next >= r->leak_now + RATE_MILLI && next - r->leak_now <= r->full);
            return true;
        }
    }
}

/* Hot path (every request of a limited token): no lock, no allocation,
 * one CAS loop. */
bool token_rate_take(token_entry *t, int64_t now_ms, uint64_t *retry_after_ms)
{
    assert(t != NULL && retry_after_ms != NULL);
    if (t->bucket_size == 0)
        return true;
    assert(t->leak_per_s >= 1 && t->leak_per_s <= TOKEN_LEAK_PER_S_MAX);
    assert(t->bucket_size <= TOKEN_BUCKET_MAX);
    /* Defended, not asserted: a clock before 0 or past 292 years would
     * otherwise wrap the leak clock. */
    uint64_t now = now_ms < 0 ? 0 : (uint64_t)now_ms;
    if (now > RATE_CLOCK_MS_MAX)
        now = RATE_CLOCK_MS_MAX;
    rate_now r = {now * t->leak_per_s, (uint64_t)t->bucket_size * RATE_MILLI, t->leak_per_s};
    return bucket_cas_loop(&t->bucket, &r, retry_after_ms);
}

/* ---- the registry ------------------------------------------------------- */

int token_registry_init(token_registry *r, const char *path, char *err, size_t errlen)
{
    assert(r != NULL);
    token_set *s = NULL;
    int rc = path ? token_set_load(path, &s, err, errlen) : INV_OK;
    if (rc == INV_OK && s == NULL && (s = token_set_empty()) == NULL) {
        fileio_errmsg(err, errlen, "out of memory for the token set");
        rc = INV_ENOMEM;
    }
    if (rc != INV_OK)
        return rc;
    if (pthread_mutex_init(&r->lock, NULL) != 0) {
        fileio_errmsg(err, errlen, "pthread_mutex_init failed");
        token_set_unref(s);
        return INV_ENOMEM;
    }
    /* path is kept, not copied: it must outlive the registry (the
     * server's configuration does). */
    r->path = path;
    /* Not yet shared: the caller publishes r (starting its threads). */
    atomic_init(&r->current, s);
    atomic_init(&r->reloads, 0);
    atomic_init(&r->reload_failures, 0);
    return INV_OK;
}

void token_registry_destroy(token_registry *r)
{
    assert(r != NULL);
    /* relaxed: destroy runs after every other user of r has stopped. */
    token_set *s = atomic_load_explicit(&r->current, memory_order_relaxed);
    assert(s != NULL);
    atomic_store_explicit(&r->current, NULL, memory_order_relaxed);
    token_set_unref(s);
    pthread_mutex_destroy(&r->lock);
}

int token_registry_reload(token_registry *r, char *err, size_t errlen)
{
    assert(r != NULL);
    token_set *s = NULL, *old = NULL;
    int rc = INV_OK;
    /* The load runs under the lock so that reloads are serialised: two at
     * once could otherwise swap an older reading of the file in last (and
     * bring a revoked token back). Requests on connections that hold a set
     * do not take the lock; only acquirers wait, at most one load. */
    pthread_mutex_lock(&r->lock);
    if (r->path != NULL) {
        rc = token_set_load(r->path, &s, err, errlen);
        if (rc == INV_OK) {
            /* relaxed: current is written only under the lock, and the
             * unlock publishes the new set to acquirers; changed() only
             * compares the pointer, never reads through it. */
            old = atomic_load_explicit(&r->current, memory_order_relaxed);
            atomic_store_explicit(&r->current, s, memory_order_relaxed);
        }
    }
    pthread_mutex_unlock(&r->lock);
    token_set_unref(old); /* holders keep it alive; the last one frees it */
    /* relaxed: statistics. */
    atomic_fetch_add_explicit(rc == INV_OK ? &r->reloads : &r->reload_failures, 1,
                              memory_order_relaxed);
    return rc;
}

token_set *token_registry_acquire(token_registry *r)
{
    assert(r != NULL);
    pthread_mutex_lock(&r->lock);
    /* relaxed: under the lock that every write of current holds, which
     * also makes the set's contents visible here. */
    token_set *s = atomic_load_explicit(&r->current, memory_order_relaxed);
    assert(s != NULL);
    token_set_ref(s);
    pthread_mutex_unlock(&r->lock);
    return s;
}

bool token_registry_changed(token_registry *r, const token_set *s)
{
    assert(r != NULL && s != NULL);
    /* relaxed: a hint. The pointer is compared, never followed; a stale
     * answer only delays the switch by a request, and the switch itself
     * goes through token_registry_acquire (the lock). No ABA: the caller
     * holds s, so no new set can be allocated at its address. */
    return atomic_load_explicit(&r->current, memory_order_relaxed) != s;
}

/* ---- scopes and the AUTH throttle ---------------------------------------- */

/* Indexed by token_scope. */
static const char *const scope_names[] = {"none", "read", "write", "admin"};

const char *token_scope_name(token_scope s)
{
    _Static_assert(sizeof scope_names / sizeof scope_names[0] == TOKEN_SCOPE_ADMIN + 1,
                   "a name per scope");
    return (unsigned)s <= TOKEN_SCOPE_ADMIN ? scope_names[s] : "none";
}

bool auth_throttle_allow(const auth_throttle *a, int64_t now_ms, uint64_t *wait_ms)
{
    assert(a != NULL && wait_ms != NULL);
    if (a->failures == 0 || now_ms >= a->next_allowed_ms) {
        *wait_ms = 0;
        return true;
    }
    *wait_ms = (uint64_t)(a->next_allowed_ms - now_ms);
    assert(*wait_ms >= 1);
    return false;
}

bool auth_throttle_fail(auth_throttle *a, int64_t now_ms)
{
    assert(a != NULL);
    if (a->failures < AUTH_FAILURES_CLOSE)
        a->failures++;
    if (a->failures >= AUTH_FAILURES_CLOSE)
        return true;
    /* FIRST << (failures - 1), capped; failures < AUTH_FAILURES_CLOSE keeps
     * the shift small. */
    uint64_t penalty = (uint64_t)AUTH_PENALTY_MS_FIRST << (a->failures - 1);
    if (penalty > AUTH_PENALTY_MS_MAX)
        penalty = AUTH_PENALTY_MS_MAX;
    a->next_allowed_ms = now_ms + (int64_t)penalty;
    return false;
}

void auth_throttle_ok(auth_throttle *a)
{
    assert(a != NULL);
    *a = (auth_throttle){0, 0};
}
