/*
 * feed_json.c — change-feed records as JSON (feed_json.h has the schema
 * and the byte-string rule). yajl generates into our own buffer through
 * its print callback, so the buffer's growth, its limit and a failed
 * allocation are ours to handle (yajl's own buffer cannot report one).
 *
 * Invariants: buf[0..len) is the document so far; after a failure (failed
 * != INV_OK) nothing more is appended until feed_json_begin.
 */
#include "alloc.h"
#include "server/feed_json.h"

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_gen.h>

#include "server/resp.h"

#define FEED_JSON_BUF_INITIAL 4096u
/* A byte string becomes at most two UTF-8 bytes per input byte. */
#define FEED_JSON_UTF8_MAX (2u * FEED_JSON_STRING_MAX)

struct feed_json {
    yajl_gen g;
    char *buf;
    size_t len, cap;
    int failed; /* INV_OK, or the first failure since begin */
    bool array, has_record;
    uint8_t utf8[FEED_JSON_UTF8_MAX]; /* a byte string made valid UTF-8 */
};

/* A document being written (used only in asserts; O(1)): its generator,
 * the bytes within the buffer, the buffer within FEED_JSON_DOC_MAX. */
static bool json_ok(const feed_json *j)
{
    return j != NULL && j->g != NULL && j->len <= j->cap && j->cap <= FEED_JSON_DOC_MAX &&
           (j->buf != NULL || j->cap == 0);
}

/* yajl's print callback: appends, growing the buffer by doubling up to
 * FEED_JSON_DOC_MAX; a failure is kept for the caller (the callback
 * cannot return one). */
static void json_print(void *ctx, const char *s, size_t n)
{
    feed_json *j = ctx;
    assert(j != NULL && s != NULL);
    if (n <= j->cap - j->len && j->failed == INV_OK) { /* the common case: room */
        if (n == 1) /* yajl prints most separators and quotes alone */
            j->buf[j->len] = s[0];
        else
            memcpy(j->buf + j->len, s, n);
        j->len += n;
        return;
    }
    if (j->failed != INV_OK)
        return;
    if (n > FEED_JSON_DOC_MAX - j->len) {
        j->failed = INV_ELIMIT;
        return;
    }
    if (j->len + n > j->cap) {
        size_t cap = j->cap ? j->cap : FEED_JSON_BUF_INITIAL;
        while (cap < j->len + n)
            cap = cap > FEED_JSON_DOC_MAX / 2 ? FEED_JSON_DOC_MAX : cap * 2;
        char *p = inv_realloc(j->buf, cap);
        if (p == NULL) {
            j->failed = INV_ENOMEM;
            return;
        }
        j->buf = p;
        j->cap = cap;
    }
    memcpy(j->buf + j->len, s, n);
    j->len += n;
    assert(json_ok(j)); /* grown within FEED_JSON_DOC_MAX */
}

feed_json *feed_json_new(void)
{
    feed_json *j = inv_calloc(1, sizeof *j);
    if (j == NULL)
        return NULL;
    j->g = yajl_gen_alloc(NULL);
    if (j->g == NULL) {
        free(j);
        return NULL;
    }
    /* yajl's validate_utf8 stays off: every string is valid UTF-8 by
     * construction (bytes_to_utf8, ASCII names), and validating again cost
     * an eighth of a record's encoding (callgrind) */
    if (!yajl_gen_config(j->g, yajl_gen_print_callback, json_print, (void *)j)) {
        feed_json_free(j);
        return NULL;
    }
    assert(json_ok(j) && j->len == 0);
    return j;
}

void feed_json_free(feed_json *j)
{
    if (j == NULL)
        return;
    assert(j->len <= j->cap);
    if (j->g != NULL)
        yajl_gen_free(j->g);
    free(j->buf);
    free(j);
}

void feed_json_begin(feed_json *j, bool array)
{
    assert(j != NULL && j->g != NULL);
    yajl_gen_reset(j->g, NULL);
    j->len = 0;
    j->failed = INV_OK;
    j->array = array;
    j->has_record = false;
    if (array && yajl_gen_array_open(j->g) != yajl_gen_status_ok && j->failed == INV_OK)
        j->failed = INV_EINVALID;
    assert(json_ok(j) && !j->has_record);
}

size_t feed_json_len(const feed_json *j)
{
    assert(json_ok(j));
    return j->len;
}

/* ---- values ------------------------------------------------------------ */

/* Notes a yajl call's status: the first failure is kept (a buffer failure
 * the callback noted wins, it is the cause). */
static void check(feed_json *j, yajl_gen_status st)
{
    assert(j != NULL);
    if (st != yajl_gen_status_ok && j->failed == INV_OK)
        j->failed = INV_EINVALID;
}

static void key(feed_json *j, const char *k)
{
    assert(j != NULL && k != NULL && k[0] != '\0'); /* our field names */
    check(j, yajl_gen_string(j->g, (const unsigned char *)k, strlen(k)));
}

static void num_u64(feed_json *j, const char *k, uint64_t v)
{
    char digits[24];
    size_t n = resp_fmt_u64(digits, v);
    assert(n >= 1 && n <= 20); /* a u64's digits */
    key(j, k);
    check(j, yajl_gen_number(j->g, digits, n));
}

/* Our digits, not yajl_gen_integer's: it formats with snprintf, the
 * largest cost of a record after the copying. */
static void num_i64(feed_json *j, const char *k, int64_t v)
{
    char digits[24];
    size_t n = 0;
    if (v < 0)
        digits[n++] = '-';
    n += resp_fmt_u64(digits + n, v < 0 ? 0 - (uint64_t)v : (uint64_t)v);
    assert(n >= 1 && n <= 20); /* a sign and 19 digits at most */
    key(j, k);
    check(j, yajl_gen_number(j->g, digits, n));
}

/* A 64-bit id as a decimal string (exact in every JSON reader). */
static void id_str(feed_json *j, const char *k, uint64_t v)
{
    char digits[24];
    size_t n = resp_fmt_u64(digits, v);
    assert(n >= 1 && n <= 20); /* a u64's digits */
    key(j, k);
    check(j, yajl_gen_string(j->g, (const unsigned char *)digits, n));
}

static void id_or_null(feed_json *j, const char *k, uint64_t v, bool set)
{
    assert(j != NULL && k != NULL);
    if (set) {
        id_str(j, k, v);
        return;
    }
    key(j, k);
    check(j, yajl_gen_null(j->g));
}

static void boolean(feed_json *j, const char *k, bool v)
{
    assert(j != NULL && k != NULL);
    key(j, k);
    check(j, yajl_gen_bool(j->g, v));
}

/* A name from one of the engine's tables; NULL (no name): null. */
static void name(feed_json *j, const char *k, const char *v)
{
    assert(j != NULL && k != NULL);
    key(j, k);
    check(j, v ? yajl_gen_string(j->g, (const unsigned char *)v, strlen(v)) : yajl_gen_null(j->g));
}

/* The length of the well-formed UTF-8 sequence at s[0..n) (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF), 0 if none. */
static size_t utf8_seq(const uint8_t *s, size_t n)
{
    uint8_t c = s[0];
    size_t len;
    uint8_t lo = 0x80, hi = 0xbf; /* the range of the second byte */
    assert(s != NULL && n >= 1);
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        lo = c == 0xe0 ? 0xa0 : 0x80;
        hi = c == 0xed ? 0x9f : 0xbf;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        lo = c == 0xf0 ? 0x90 : 0x80;
        hi = c == 0xf4 ? 0x8f : 0xbf;
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    assert(len >= 2 && len <= 4 && len <= n);
    return len;
}

/* Bytes s[0..n) as valid UTF-8 into j->utf8: well-formed sequences as
 * they are, any other byte b as U+00bb (two bytes). Returns the length. */
static size_t bytes_to_utf8(feed_json *j, const uint8_t *s, size_t n)
{
    assert(n <= FEED_JSON_STRING_MAX);
    size_t out = 0;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq(s + i, n - i);
        if (k > 0) {
            memcpy(j->utf8 + out, s + i, k);
            out += k;
            i += k;
        } else {
            j->utf8[out++] = (uint8_t)(0xc0 | (s[i] >> 6));
            j->utf8[out++] = (uint8_t)(0x80 | (s[i] & 0x3f));
            i++;
        }
        assert(out <= 2 * i); /* at most two bytes out per byte in */
    }
    assert(out <= sizeof j->utf8);
    return out;
}

/* A byte string (hold id, request id, ref, actor); NULL: null. */
static void bytes(feed_json *j, const char *k, const char *s, size_t n)
{
    assert(s != NULL || n == 0);
    key(j, k);
    if (s == NULL) {
        check(j, yajl_gen_null(j->g));
        return;
    }
    size_t len = bytes_to_utf8(j, (const uint8_t *)s, n);
    check(j, yajl_gen_string(j->g, j->utf8, len));
}

/* ---- a record ---------------------------------------------------------- */

/* {name: n} for the quantities with bit q in mask, from v[]. */
static void qty_map(feed_json *j, const char *k, const int64_t *v, uint32_t mask)
{
    assert(v != NULL && mask < (1u << INV_QTY_NAMES));
    key(j, k);
    check(j, yajl_gen_map_open(j->g));
    for (int q = 0; q < INV_QTY_NAMES; q++)
        if (mask & (1u << q))
            num_i64(j, inv_qty_name_str((inv_qty_name)q), v[q]);
    check(j, yajl_gen_map_close(j->g));
}

static void change(feed_json *j, const inv_feed_change *c)
{
    uint32_t nonzero = 0;
    assert(json_ok(j) && c != NULL);
    assert(inv_feed_kind_str(c->kind) != NULL); /* record_ok checked */
    for (int q = 0; q < INV_QTY_NAMES; q++)
        nonzero |= c->delta[q] != 0 ? 1u << q : 0;
    check(j, yajl_gen_map_open(j->g));
    name(j, "kind", inv_feed_kind_str(c->kind));
    id_str(j, "item", c->item);
    id_str(j, "location", c->location);
    num_u64(j, "revision", c->revision);
    qty_map(j, "deltas", c->delta, nonzero);
    qty_map(j, "after", c->after, c->after_known & ((1u << INV_QTY_NAMES) - 1));
    boolean(j, "created", c->created);
    boolean(j, "deleted", c->deleted);
    name(j, "reason", inv_reason_str(c->reason));
    bytes(j, "ref", c->ref, c->ref_len);
    bytes(j, "hold_id", c->hold_id, c->hold_id_len);
    check(j, yajl_gen_map_close(j->g));
}

static bool string_ok(const char *s, size_t n)
{
    return s == NULL || n <= FEED_JSON_STRING_MAX;
}

/* Can r be written whole? Checked before any byte is: a record refused
 * leaves the document as it was. */
static bool record_ok(const inv_feed_record *r)
{
    assert(r != NULL && (r->changes != NULL || r->n_changes == 0));
    if (inv_feed_kind_str(r->kind) == NULL || !string_ok(r->hold_id, r->hold_id_len) ||
        !string_ok(r->request_id, r->request_id_len) || !string_ok(r->actor, r->actor_len))
        return false;
    for (size_t i = 0; i < r->n_changes; i++) {
        const inv_feed_change *c = &r->changes[i];
        if (inv_feed_kind_str(c->kind) == NULL || !string_ok(c->ref, c->ref_len) ||
            !string_ok(c->hold_id, c->hold_id_len))
            return false;
    }
    return true;
}

int feed_json_add(feed_json *j, const inv_feed_record *r)
{
    assert(j != NULL && r != NULL);
    assert(r->n_changes == 0 || r->changes != NULL);
    if (j->failed != INV_OK)
        return j->failed;
    if ((!j->array && j->has_record) || !record_ok(r))
        return INV_EINVALID; /* nothing written: the document stays usable */
    check(j, yajl_gen_map_open(j->g));
    num_u64(j, "position", r->position);
    num_u64(j, "group", r->group);
    num_i64(j, "time_ms", r->time_ms);
    name(j, "kind", inv_feed_kind_str(r->kind));
    /* the record's own ids name its subject only for these kinds (the
     * level changes carry theirs) */
    id_or_null(j, "item", r->item, r->kind == INV_FEED_ITEM);
    id_or_null(j, "location", r->location,
               r->kind == INV_FEED_LOCATION || r->kind == INV_FEED_DEFAULT_LOCATION);
    bytes(j, "hold_id", r->hold_id, r->hold_id_len);
    bytes(j, "request_id", r->request_id, r->request_id_len);
    bytes(j, "actor", r->actor, r->actor_len);
    boolean(j, "deleted", r->deleted);
    key(j, "changes");
    check(j, yajl_gen_array_open(j->g));
    for (size_t i = 0; i < r->n_changes && j->failed == INV_OK; i++)
        change(j, &r->changes[i]);
    check(j, yajl_gen_array_close(j->g));
    check(j, yajl_gen_map_close(j->g));
    j->has_record = true;
    assert(json_ok(j));
    return j->failed;
}

int feed_json_end(feed_json *j, const char **buf, size_t *len)
{
    assert(j != NULL && buf != NULL && len != NULL);
    if (j->array)
        check(j, yajl_gen_array_close(j->g));
    else if (!j->has_record && j->failed == INV_OK)
        j->failed = INV_EINVALID;
    if (j->failed != INV_OK)
        return j->failed;
    *buf = j->buf;
    *len = j->len;
    return INV_OK;
}
