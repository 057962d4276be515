/*
 * http_json.c — JSON for the HTTP face (http_json.h): the response writer
 * (ours, writing yajl_gen's bytes: its separators, refusals and escaping,
 * without its per-call callbacks; we own the buffer, so growth, its limit
 * and a failed allocation are ours to report), the request parser (yajl's
 * parser through its callback API, building yajl's tree so handlers and
 * yajl_tree_free are unchanged, with a depth bound and the escaped-NUL and
 * \v/\f refusals yajl_tree_parse lacks), typed getters, the shared id rule and
 * query-string helpers. tests/test_http_json.c checks the writer and the
 * parser against yajl_gen and yajl_tree_parse.
 *
 * Invariants: b->p[0..len) is the body so far; once b->failed is set
 * nothing more is appended until http_body_reset; b->nest[0..depth] is
 * the open containers' state. A parsed tree is never deeper than
 * HTTP_JSON_DEPTH_MAX (yajl_tree_free recurses), holds UTF-8 as yajl's
 * lexer checks it, and never came from input holding a comment or a
 * "\\u0000" escape (its string would read cut at the NUL).
 */
#include "alloc.h"
#include "server/http_json.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/resp.h"

#include <yajl/yajl_parse.h>

#define HTTP_BODY_INITIAL 4096u
/* The digits of a u64 (20) or an i64 with its sign (20). */
#define HTTP_DIGITS_MAX 24u
/* Query keys we look up are short names; longer keys never match. */
#define HTTP_QUERY_KEY_MAX 64u

/* ---- the writer -------------------------------------------------------- */

/* A body as the writer keeps it (used only in asserts; O(1)): its bytes
 * within the buffer, the buffer within HTTP_BODY_OUT_MAX, the nesting
 * within HTTP_JSON_NEST_MAX. */
static bool body_ok(const http_body *b)
{
    return b != NULL && b->len <= b->cap && b->cap <= HTTP_BODY_OUT_MAX &&
           (b->p != NULL || b->cap == 0) && b->depth < HTTP_JSON_NEST_MAX;
}

/* Grows b to hold n more bytes (doubling, capped at HTTP_BODY_OUT_MAX);
 * false and b->failed set when it cannot. */
static bool body_reserve(http_body *b, size_t n)
{
    assert(body_ok(b));
    if (n > HTTP_BODY_OUT_MAX - b->len) {
        b->failed = true;
        return false;
    }
    size_t cap = b->cap ? b->cap : HTTP_BODY_INITIAL;
    while (cap < b->len + n)
        cap = cap > HTTP_BODY_OUT_MAX / 2 ? HTTP_BODY_OUT_MAX : cap * 2;
    char *p = inv_realloc(b->p, cap);
    if (p == NULL) {
        b->failed = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    assert(body_ok(b) && b->cap - b->len >= n);
    return true;
}

/* yajl's print callback (it cannot return a failure: b->failed keeps it). */
static void body_print(void *ctx, const char *s, size_t n)
{
    http_body *b = ctx;
    assert(b != NULL && (s != NULL || n == 0));
    if (b->failed)
        return;
    if (n > b->cap - b->len && !body_reserve(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    assert(b->len <= b->cap);
}

/* ---- the writer's state ----------------------------------------------- */

/* What comes next in the open container (or the document), as yajl_gen
 * keeps it: the same separators (',' between members, ':' after a key),
 * the same refusals (a non-string key, a second top-level value, nesting
 * over HTTP_JSON_NEST_MAX), so the bytes are yajl_gen's (beautify off).
 * Through yajl_gen a constant key cost ~590 instructions (an escape scan
 * and 3-4 print callbacks); here it is a scan and one memcpy. */
enum {
    J_START = 0, /* the document, before its value */
    J_MAP_START, /* after '{' */
    J_MAP_KEY, /* a key is next (after a member) */
    J_MAP_VAL, /* a value is next (after a key) */
    J_ARRAY_START, /* after '[' */
    J_IN_ARRAY, /* after an element */
    J_COMPLETE /* the document's value is written */
};

/* Appends n bytes; false (b->failed) when they do not fit. */
static inline bool put(http_body *b, const char *s, size_t n)
{
    assert(b->len <= b->cap); /* one compare: put is every token's step */
    if (n > b->cap - b->len && !body_reserve(b, n))
        return false;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    assert(b->len <= b->cap);
    return true;
}

/* The separator before a value (key: a map's key), or false (b->failed)
 * where none may go: yajl_gen's ENSURE_VALID_STATE, ENSURE_NOT_KEY and
 * INSERT_SEP. */
static bool json_sep(http_body *b, bool key)
{
    if (b->failed)
        return false;
    assert(b->depth < HTTP_JSON_NEST_MAX);
    switch (b->nest[b->depth]) {
    case J_COMPLETE:
        b->failed = true;
        return false;
    case J_MAP_START:
        if (!key)
            b->failed = true;
        return key;
    case J_MAP_KEY:
        if (!key) {
            b->failed = true;
            return false;
        }
        return put(b, ",", 1);
    case J_MAP_VAL:
        return put(b, ":", 1);
    case J_IN_ARRAY:
        return put(b, ",", 1);
    default:
        return true;
    }
}

/* A value (or key) was written: yajl_gen's APPENDED_ATOM. */
static void json_appended(http_body *b)
{
    assert(b->depth < HTTP_JSON_NEST_MAX);
    unsigned char *st = &b->nest[b->depth];
    switch (*st) {
    case J_START:
        *st = J_COMPLETE;
        break;
    case J_MAP_START:
    case J_MAP_KEY:
        *st = J_MAP_VAL;
        break;
    case J_ARRAY_START:
        *st = J_IN_ARRAY;
        break;
    case J_MAP_VAL:
        *st = J_MAP_KEY;
        break;
    default:
        break;
    }
    assert(*st != J_START && *st != J_MAP_START && *st != J_ARRAY_START); /* a value is in */
}

/* A scalar's text (a number, true, null) at the value position. */
static void json_atom(http_body *b, const char *text, size_t n)
{
    assert(text != NULL && n > 0);
    if (json_sep(b, false) && put(b, text, n))
        json_appended(b);
}

static void json_open(http_body *b, char c, unsigned char state)
{
    assert(body_ok(b) && (c == '{' || c == '['));
    assert(state == J_MAP_START || state == J_ARRAY_START);
    if (!json_sep(b, false))
        return;
    if (b->depth + 1 >= HTTP_JSON_NEST_MAX) { /* yajl_max_depth_exceeded */
        b->failed = true;
        return;
    }
    if (put(b, &c, 1))
        b->nest[++b->depth] = state;
    assert(b->failed || b->nest[b->depth] == state);
}

/* Closes the open container if it is the kind c closes (a, b: its two
 * states) and no key waits for its value. */
static void json_close(http_body *b, char c, unsigned char a, unsigned char s2)
{
    assert(body_ok(b) && (c == '}' || c == ']'));
    if (b->failed)
        return;
    unsigned char st = b->nest[b->depth];
    if (b->depth == 0 || (st != a && st != s2)) { /* a handler's bug: a 500 */
        b->failed = true;
        return;
    }
    if (put(b, &c, 1)) {
        b->depth--;
        json_appended(b);
    }
}

int http_body_init(http_body *b)
{
    assert(b != NULL);
    memset(b, 0, sizeof *b);
    b->gen = yajl_gen_alloc(NULL);
    if (b->gen == NULL)
        return INV_ENOMEM;
    /* validate_utf8 stays off: http_json_gen's caller writes one scalar */
    if (!yajl_gen_config(b->gen, yajl_gen_print_callback, body_print, (void *)b)) {
        http_body_free(b);
        return INV_ENOMEM;
    }
    assert(body_ok(b) && b->len == 0 && b->nest[0] == J_START);
    return INV_OK;
}

void http_body_reset(http_body *b)
{
    assert(b != NULL && b->gen != NULL);
    b->failed = false;
    b->len = 0;
    b->depth = 0;
    b->nest[0] = J_START; /* deeper levels are written when opened */
    assert(body_ok(b));
}

void http_body_free(http_body *b)
{
    if (b == NULL)
        return;
    assert(b->len <= b->cap);
    if (b->gen != NULL)
        yajl_gen_free(b->gen);
    free(b->p);
    memset(b, 0, sizeof *b);
}

yajl_gen http_json_gen(http_body *b)
{
    assert(b != NULL && b->gen != NULL);
    /* the value's separator now, and the value counted; a fresh generator
     * writes it alone (it would refuse a second top-level value) */
    if (json_sep(b, false))
        json_appended(b);
    yajl_gen_reset(b->gen, NULL);
    assert(body_ok(b));
    return b->gen;
}

void http_json_key(http_body *b, const char *key)
{
    assert(key != NULL);
    assert(body_ok(b)); /* a key only inside an object: json_sep refuses others */
    http_json_str(b, key, strlen(key));
}

/* The length of the well-formed UTF-8 sequence at s[0..n) (RFC 3629: no
 * overlong form, no surrogate, nothing above U+10FFFF), 0 when none. */
static size_t utf8_len_at(const unsigned char *s, size_t n)
{
    static const struct {
        unsigned char first_lo, first_hi, second_lo, second_hi, len;
    } forms[] = {
        {0xc2, 0xdf, 0x80, 0xbf, 2}, {0xe0, 0xe0, 0xa0, 0xbf, 3}, {0xe1, 0xec, 0x80, 0xbf, 3},
        {0xed, 0xed, 0x80, 0x9f, 3}, {0xee, 0xef, 0x80, 0xbf, 3}, {0xf0, 0xf0, 0x90, 0xbf, 4},
        {0xf1, 0xf3, 0x80, 0xbf, 4}, {0xf4, 0xf4, 0x80, 0x8f, 4},
    };
    assert(s != NULL && n >= 1);
    if (s[0] < 0x80)
        return 1;
    for (size_t f = 0; f < sizeof forms / sizeof forms[0]; f++) {
        if (s[0] < forms[f].first_lo || s[0] > forms[f].first_hi)
            continue;
        size_t len = forms[f].len;
        if (n < len || s[1] < forms[f].second_lo || s[1] > forms[f].second_hi)
            return 0;
        for (size_t i = 2; i < len; i++)
            if ((s[i] & 0xc0) != 0x80)
                return 0;
        assert(len >= 2 && len <= 4 && len <= n); /* within the input */
        return len;
    }
    return 0;
}

/* The first byte of s[0..n) that starts no well-formed sequence, or n. */
static size_t utf8_valid_prefix(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t k = utf8_len_at(s + i, n - i);
        if (k == 0)
            return i;
        i += k;
        assert(i <= n); /* a sequence never runs past the input */
    }
    return n;
}

/* Whether byte c goes out as it is inside a JSON string: printable ASCII
 * but '"' and '\\' (the common case: one scan, then one memcpy). */
static inline bool json_plain(unsigned char c)
{
    return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

/* s[0..n) (valid UTF-8) escaped as yajl_gen escapes (yajl_string_encode,
 * escape_solidus off): the six short escapes, other control bytes as
 * \u00XX with upper-case hex, everything else as it is. */
static void json_escaped(http_body *b, const unsigned char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t from = 0;
    assert(body_ok(b) && (s != NULL || n == 0));
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c >= 0x80 || json_plain(c))
            continue;
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t k = 2;
        switch (c) {
        case '\r':
            esc[1] = 'r';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '"':
            esc[1] = '"';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 0xf];
            k = 6;
        }
        put(b, (const char *)s + from, i - from);
        assert(k == 2 || k == 6); /* \x or \u00XX */
        put(b, esc, k);
        from = i + 1;
    }
    assert(from <= n);
    put(b, (const char *)s + from, n - from);
}

#define SWAR_ONES 0x0101010101010101ull
#define SWAR_HIGHS 0x8080808080808080ull

/* Whether any byte of the 8 in w is not plain (json_plain): below 0x20 or
 * from 0x80 (the high bit of w - 0x20.. or of w), or '"' or '\\' (a zero
 * byte of w ^ their repetition). A borrow can only flag a byte above a
 * byte that is flagged anyway, so a word without a hit is all plain. */
static inline bool swar_not_plain(uint64_t w)
{
    uint64_t q = w ^ (SWAR_ONES * '"'), bs = w ^ (SWAR_ONES * '\\');
    uint64_t low_or_high = ((w - SWAR_ONES * 0x20) | w) & SWAR_HIGHS;
    uint64_t zero = ((q - SWAR_ONES) & ~q) | ((bs - SWAR_ONES) & ~bs);
    return (low_or_high | (zero & SWAR_HIGHS)) != 0;
}

/* The length of the run of plain bytes (json_plain) s[0..n) starts with:
 * eight bytes a step while none is special (keys and ids are all plain). */
static inline size_t plain_prefix(const unsigned char *s, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        if (swar_not_plain(w))
            break;
    }
    if (i < n && n >= 8 && i + 8 > n) { /* the tail as the last 8 bytes */
        uint64_t w;
        memcpy(&w, s + n - 8, 8);
        if (!swar_not_plain(w))
            return n;
    }
    while (i < n && json_plain(s[i]))
        i++;
    assert(i <= n);
    return i;
}

/* A string (key or value) of valid UTF-8, quoted and escaped; i: the
 * length of its plain prefix (plain_prefix). */
static void json_string(http_body *b, const unsigned char *u, size_t len, size_t i)
{
    assert(i <= len);
    if (!json_sep(b, true))
        return;
    if (i == len && len + 2 <= b->cap - b->len) { /* the common case */
        char *o = b->p + b->len;
        o[0] = '"';
        memcpy(o + 1, u, len);
        o[len + 1] = '"';
        b->len += len + 2;
    } else {
        put(b, "\"", 1);
        json_escaped(b, u, len);
        put(b, "\"", 1);
    }
    if (!b->failed)
        json_appended(b);
}

void http_json_str(http_body *b, const char *s, size_t len)
{
    assert(b != NULL && (s != NULL || len == 0));
    const unsigned char *u = (const unsigned char *)s;
    size_t plain = plain_prefix(u, len); /* printable ASCII: UTF-8 already */
    if (plain == len || utf8_valid_prefix(u + plain, len - plain) == len - plain) {
        json_string(b, u, len, plain); /* the common case: as it is */
        return;
    }
    /* A stray byte c becomes U+00c (two UTF-8 bytes, written escaped by no
     * one: it is valid UTF-8), so the document stays valid JSON. */
    if (len > HTTP_BODY_OUT_MAX / 2) {
        b->failed = true;
        return;
    }
    unsigned char *tmp = inv_malloc(2 * len);
    if (tmp == NULL) {
        b->failed = true;
        return;
    }
    size_t out = 0;
    for (size_t i = 0; i < len;) {
        size_t k = utf8_len_at(u + i, len - i);
        if (k > 0) {
            memcpy(tmp + out, u + i, k);
            out += k;
            i += k;
            continue;
        }
        tmp[out++] = (unsigned char)(0xc0 | (u[i] >> 6));
        tmp[out++] = (unsigned char)(0x80 | (u[i] & 0x3f));
        i++;
    }
    assert(out <= 2 * len);
    json_string(b, tmp, out, plain_prefix(tmp, out));
    free(tmp);
}

void http_json_cstr(http_body *b, const char *s)
{
    assert(b != NULL);
    if (s == NULL)
        http_json_null(b);
    else
        http_json_str(b, s, strlen(s));
}

/* Our digits, not yajl_gen_integer's: exact for all of u64, and no
 * snprintf on the hot path. */
void http_json_id(http_body *b, uint64_t id)
{
    char digits[HTTP_DIGITS_MAX];
    size_t n = resp_fmt_u64(digits + 1, id);
    assert(n > 0 && n + 2 < sizeof digits);
    digits[0] = '"';
    digits[n + 1] = '"';
    json_atom(b, digits, n + 2);
}

void http_json_u64(http_body *b, uint64_t v)
{
    char digits[HTTP_DIGITS_MAX];
    size_t n = resp_fmt_u64(digits, v);
    assert(n > 0 && n < sizeof digits);
    json_atom(b, digits, n);
}

void http_json_i64(http_body *b, int64_t v)
{
    char digits[HTTP_DIGITS_MAX];
    size_t n = 0;
    if (v < 0)
        digits[n++] = '-';
    n += resp_fmt_u64(digits + n, v < 0 ? 0 - (uint64_t)v : (uint64_t)v);
    assert(n < sizeof digits);
    json_atom(b, digits, n);
}

void http_json_number(http_body *b, const char *text, size_t len)
{
    assert(b != NULL && text != NULL);
    if (len == 0) { /* yajl_gen_number would write nothing: no JSON */
        b->failed = true;
        return;
    }
    json_atom(b, text, len);
}

void http_json_bool(http_body *b, bool v)
{
    assert(b != NULL);
    json_atom(b, v ? "true" : "false", v ? 4 : 5);
}

void http_json_null(http_body *b)
{
    assert(b != NULL);
    json_atom(b, "null", 4);
}

/* Seconds of [1000-01-01, 10000-01-01): the years written with exactly
 * four digits, by our arithmetic; others go through gmtime_r/strftime. */
#define TIME_ISO_FAST_MIN (-30610224000LL)
#define TIME_ISO_FAST_END 253402300800LL

/* Two digits of v (0..99) at o. */
static inline void two_digits(char *o, unsigned v)
{
    assert(v < 100);
    o[0] = (char)('0' + v / 10);
    o[1] = (char)('0' + v % 10);
}

/* "YYYY-MM-DDTHH:MM:SSZ" of t (TIME_ISO_FAST_MIN <= t < _END) into s[20]:
 * days to the civil date in the proleptic Gregorian calendar (H. Hinnant's
 * civil_from_days: eras of 400 years, March-based years), no time zone,
 * no lock (gmtime_r + strftime took ~1.9k instructions). */
static void time_iso_fast(int64_t t, char *s)
{
    assert(t >= TIME_ISO_FAST_MIN && t < TIME_ISO_FAST_END);
    int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
    int64_t sod = t - days * 86400;
    assert(sod >= 0 && sod < 86400);
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097; /* [0, 146096] */
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100); /* [0, 365] */
    int64_t mp = (5 * doy + 2) / 153; /* [0, 11], March first */
    unsigned d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    unsigned m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    int64_t y = yoe + era * 400 + (m <= 2);
    assert(y >= 1000 && y <= 9999);
    two_digits(s, (unsigned)(y / 100));
    two_digits(s + 2, (unsigned)(y % 100));
    s[4] = '-';
    two_digits(s + 5, m);
    s[7] = '-';
    two_digits(s + 8, d);
    s[10] = 'T';
    two_digits(s + 11, (unsigned)(sod / 3600));
    s[13] = ':';
    two_digits(s + 14, (unsigned)(sod / 60 % 60));
    s[16] = ':';
    two_digits(s + 17, (unsigned)(sod % 60));
    s[19] = 'Z';
}

/* unix_ms as ISO 8601 UTC: whole seconds ("...:55Z"), or with its
 * milliseconds ("...:55.620Z"); null for a year strftime cannot print. */
static void time_iso(http_body *b, int64_t unix_ms, bool with_ms)
{
    char s[48];
    /* floor division: -1 ms is 1969-12-31T23:59:59(.999)Z */
    int64_t t = unix_ms >= 0 ? unix_ms / 1000 : -((-(unix_ms + 1)) / 1000) - 1;
    unsigned ms = (unsigned)(unix_ms - t * 1000);
    size_t n = 0;
    assert(ms < 1000);
    if (t >= TIME_ISO_FAST_MIN && t < TIME_ISO_FAST_END) {
        time_iso_fast(t, s);
        n = 19; /* without its 'Z' */
    } else {
        struct tm tm;
        time_t tt = (time_t)t;
        if (gmtime_r(&tt, &tm) != NULL)
            n = strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%S", &tm);
    }
    if (n == 0 || n + 6 > sizeof s) { /* say so, don't invent a date */
        http_json_null(b);
        return;
    }
    if (with_ms) {
        s[n++] = '.';
        s[n++] = (char)('0' + ms / 100);
        two_digits(s + n, ms % 100);
        n += 2;
    }
    s[n++] = 'Z';
    json_string(b, (const unsigned char *)s, n, n); /* digits, '-', 'T', ':', '.', 'Z' */
}

void http_json_time_iso(http_body *b, int64_t unix_ms)
{
    time_iso(b, unix_ms, false);
}

void http_json_time_iso_ms(http_body *b, int64_t unix_ms)
{
    time_iso(b, unix_ms, true);
}

void http_json_kv_str(http_body *b, const char *key, const char *s)
{
    assert(b != NULL && key != NULL);
    http_json_key(b, key);
    http_json_cstr(b, s);
}

void http_json_kv_str_or_null(http_body *b, const char *key, const char *s)
{
    assert(s != NULL);
    http_json_key(b, key);
    if (s[0] != '\0')
        http_json_cstr(b, s);
    else
        http_json_null(b);
}

void http_json_kv_bool(http_body *b, const char *key, bool v)
{
    assert(b != NULL && key != NULL);
    http_json_key(b, key);
    http_json_bool(b, v);
}

void http_json_kv_u64(http_body *b, const char *key, uint64_t v)
{
    assert(b != NULL && key != NULL);
    http_json_key(b, key);
    http_json_u64(b, v);
}

void http_json_kv_id(http_body *b, const char *key, uint64_t id)
{
    assert(b != NULL && key != NULL);
    http_json_key(b, key);
    http_json_id(b, id);
}

void http_json_kv_time(http_body *b, const char *key, int64_t unix_ms)
{
    assert(b != NULL && key != NULL);
    http_json_key(b, key);
    time_iso(b, unix_ms, false);
}

void http_json_kv_time_ms(http_body *b, const char *key, int64_t unix_ms)
{
    assert(b != NULL && key != NULL);
    http_json_key(b, key);
    time_iso(b, unix_ms, true);
}

void http_json_obj_open(http_body *b)
{
    assert(b != NULL);
    json_open(b, '{', J_MAP_START);
}

void http_json_obj_close(http_body *b)
{
    assert(b != NULL);
    json_close(b, '}', J_MAP_START, J_MAP_KEY);
}

void http_json_arr_open(http_body *b)
{
    assert(b != NULL);
    json_open(b, '[', J_ARRAY_START);
}

void http_json_arr_close(http_body *b)
{
    assert(b != NULL);
    json_close(b, ']', J_ARRAY_START, J_IN_ARRAY);
}

static int hex_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    assert(!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))); /* none matched */
    return -1;
}

/* Decimal digits p[0..n) (1 <= n <= 20) as a u64; false on a non-digit
 * or above UINT64_MAX. Up to 19 digits cannot overflow, so only the 20th
 * is checked (resp_parse_u64's per-digit division cost ~20 instructions a
 * digit on every id of every request). */
static bool digits_u64(const char *p, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    assert(out != NULL && (p != NULL || n == 0));
    if (n == 0 || n > 20)
        return false;
    size_t safe = n < 19 ? n : 19;
    for (size_t i = 0; i < safe; i++) {
        unsigned d = (unsigned char)p[i] - '0';
        if (d > 9)
            return false;
        v = v * 10 + d;
    }
    if (n == 20) {
        unsigned d = (unsigned char)p[19] - '0';
        if (d > 9 || __builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, d, &v))
            return false;
    }
    *out = v;
    return true;
}

/* ---- the parser: yajl's, building yajl's tree --------------------------- */

/* yajl parses (yajl_alloc/yajl_parse/yajl_complete_parse: its lexer checks
 * the grammar, control bytes, escapes and UTF-8; comments, trailing bytes
 * and a second value stay off, as yajl_alloc leaves them), and these
 * callbacks build the same yajl_val nodes yajl_tree.c builds, so
 * yajl_tree_free frees them and every handler reads them unchanged. Three
 * rules on top of yajl's, which yajl_tree_parse cannot add:
 * - nesting at most HTTP_JSON_DEPTH_MAX (yajl_tree_free recurses);
 * - a string or key holding "\u0000" is refused: the tree's strings are
 *   NUL-terminated, so every getter would read it cut;
 * - \v and \f are not whitespace (RFC 8259; yajl's lexer takes them).
 * Numbers keep their text exact (r, what the getters read); i, d and the
 * flags are set as yajl_tree sets them, without strtod for an integer. */

/* A container's first arrays hold this many members (a request body's
 * object has a handful: one allocation each, no regrowth). */
#define JSON_MEMBERS_FIRST 8u

typedef struct {
    yajl_val root;
    yajl_val stack[HTTP_JSON_DEPTH_MAX]; /* open containers, innermost last */
    size_t depth;
    size_t cap[HTTP_JSON_DEPTH_MAX]; /* each open container's array room */
    char *key; /* an object's key waiting for its value */
    char *err;
    size_t errlen;
} tree_build;

/* Records why the build stopped (the first reason wins); 0 cancels yajl. */
static int build_fail(tree_build *t, const char *what)
{
    assert(t != NULL && t->err != NULL && t->errlen > 0 && what != NULL);
    if (t->err[0] == '\0')
        snprintf(t->err, t->errlen, "%s", what);
    return 0;
}

static char *text_dup(const unsigned char *s, size_t len)
{
    assert(s != NULL || len == 0);
    char *c = inv_malloc(len + 1);
    if (c != NULL) {
        memcpy(c, s, len);
        c[len] = '\0';
    }
    return c;
}

/* Grows the innermost container's arrays (keys too for an object). */
static bool build_grow(tree_build *t, yajl_val c)
{
    assert(t->depth >= 1 && t->depth <= HTTP_JSON_DEPTH_MAX && c == t->stack[t->depth - 1]);
    size_t *cap = &t->cap[t->depth - 1];
    bool obj = YAJL_IS_OBJECT(c);
    size_t len = obj ? c->u.object.len : c->u.array.len;
    if (len < *cap)
        return true;
    size_t ncap = *cap ? *cap * 2 : JSON_MEMBERS_FIRST;
    yajl_val **values = obj ? &c->u.object.values : &c->u.array.values;
    yajl_val *nv = inv_realloc(*values, ncap * sizeof *nv);
    if (nv == NULL)
        return false;
    *values = nv;
    if (obj) {
        const char **nk = inv_realloc(c->u.object.keys, ncap * sizeof *nk);
        if (nk == NULL)
            return false;
        c->u.object.keys = nk;
    }
    *cap = ncap;
    assert(len < *cap); /* room for the member being added */
    return true;
}

/* Hangs v (owned: freed here on failure) on the innermost container, or
 * makes it the root. */
static int build_add(tree_build *t, yajl_val v)
{
    if (v == NULL)
        return build_fail(t, "out of memory");
    if (t->depth == 0) {
        assert(t->root == NULL); /* yajl allows one value */
        t->root = v;
        return 1;
    }
    yajl_val c = t->stack[t->depth - 1];
    if (!build_grow(t, c)) {
        yajl_tree_free(v);
        return build_fail(t, "out of memory");
    }
    if (YAJL_IS_OBJECT(c)) {
        assert(t->key != NULL); /* yajl calls map_key before each value */
        c->u.object.keys[c->u.object.len] = t->key;
        c->u.object.values[c->u.object.len++] = v;
        t->key = NULL;
    } else {
        c->u.array.values[c->u.array.len++] = v;
    }
    return 1;
}

static yajl_val node_new(yajl_type type)
{
    yajl_val v = inv_calloc(1, sizeof *v);
    assert(type >= yajl_t_string && type <= yajl_t_null);
    if (v != NULL)
        v->type = type;
    return v;
}

static int on_null(void *ctx)
{
    assert(ctx != NULL);
    return build_add(ctx, node_new(yajl_t_null));
}

static int on_boolean(void *ctx, int b)
{
    assert(ctx != NULL);
    return build_add(ctx, node_new(b ? yajl_t_true : yajl_t_false));
}

/* A number token (its text as yajl lexed it: RFC 8259's grammar). */
static int on_number(void *ctx, const char *s, size_t n)
{
    assert(ctx != NULL && s != NULL && n >= 1); /* yajl's lexer: a number has a digit */
    yajl_val v = node_new(yajl_t_number);
    if (v == NULL || (v->u.number.r = text_dup((const unsigned char *)s, n)) == NULL) {
        free(v);
        return build_fail(ctx, "out of memory");
    }
    bool neg = s[0] == '-';
    bool integer =
        memchr(s, '.', n) == NULL && memchr(s, 'e', n) == NULL && memchr(s, 'E', n) == NULL;
    uint64_t mag;
    /* yajl's INT flag: an integer whose magnitude is within LLONG_MAX */
    if (integer && digits_u64(s + neg, n - neg, &mag) && mag <= (uint64_t)LLONG_MAX) {
        v->u.number.i = neg ? -(long long)mag : (long long)mag;
        v->u.number.d = neg ? -(double)mag : (double)mag; /* as strtod rounds */
        v->u.number.flags = YAJL_NUMBER_INT_VALID | YAJL_NUMBER_DOUBLE_VALID;
        assert(neg == (v->u.number.i < 0) || mag == 0);
        return build_add(ctx, v);
    }
    v->u.number.i = neg ? LLONG_MIN : LLONG_MAX; /* yajl's value out of range */
    errno = 0;
    v->u.number.d = strtod(v->u.number.r, NULL);
    if (errno == 0)
        v->u.number.flags = YAJL_NUMBER_DOUBLE_VALID;
    return build_add(ctx, v);
}

/* A string's decoded bytes, or NULL (and the build failed) when it holds
 * a NUL ("\u0000") or memory ran out. */
static char *string_text(tree_build *t, const unsigned char *s, size_t len)
{
    assert(t != NULL && (s != NULL || len == 0));
    if (memchr(s, '\0', len) != NULL) {
        build_fail(t, "a string holds an escaped NUL (\\u0000)");
        return NULL;
    }
    char *c = text_dup(s, len);
    if (c == NULL)
        build_fail(t, "out of memory");
    return c;
}

static int on_string(void *ctx, const unsigned char *s, size_t len)
{
    char *text = string_text(ctx, s, len);
    if (text == NULL)
        return 0;
    assert(text[len] == '\0'); /* NUL-terminated after its len bytes (none inside) */
    yajl_val v = node_new(yajl_t_string);
    if (v == NULL) {
        free(text);
        return build_fail(ctx, "out of memory");
    }
    v->u.string = text;
    return build_add(ctx, v);
}

static int on_map_key(void *ctx, const unsigned char *s, size_t len)
{
    tree_build *t = ctx;
    assert(t->key == NULL);
    t->key = string_text(t, s, len);
    return t->key != NULL;
}

static int on_open(tree_build *t, yajl_type type)
{
    assert(t != NULL && t->depth <= HTTP_JSON_DEPTH_MAX);
    assert(type == yajl_t_object || type == yajl_t_array);
    if (t->depth == HTTP_JSON_DEPTH_MAX) {
        snprintf(t->err, t->errlen, "JSON nested deeper than %u", HTTP_JSON_DEPTH_MAX);
        return 0;
    }
    yajl_val v = node_new(type);
    if (!build_add(t, v))
        return 0;
    t->stack[t->depth] = v;
    t->cap[t->depth++] = 0;
    assert(t->depth <= HTTP_JSON_DEPTH_MAX && t->stack[t->depth - 1] == v);
    return 1;
}

static int on_start_map(void *ctx)
{
    assert(ctx != NULL);
    return on_open(ctx, yajl_t_object);
}

static int on_start_array(void *ctx)
{
    assert(ctx != NULL);
    return on_open(ctx, yajl_t_array);
}

static int on_close(void *ctx)
{
    tree_build *t = ctx;
    assert(t->depth > 0); /* yajl matches brackets */
    t->depth--;
    return 1;
}

static const yajl_callbacks tree_callbacks = {
    .yajl_null = on_null,
    .yajl_boolean = on_boolean,
    .yajl_number = on_number, /* the text: exact ids, never through a double */
    .yajl_string = on_string,
    .yajl_start_map = on_start_map,
    .yajl_map_key = on_map_key,
    .yajl_end_map = on_close,
    .yajl_start_array = on_start_array,
    .yajl_end_array = on_close,
};

yajl_val http_json_parse(const http_str *body, char *err, size_t errlen)
{
    assert(body != NULL && err != NULL && errlen > 0);
    err[0] = '\0';
    if (body->len == 0) {
        snprintf(err, errlen, "empty body");
        return NULL;
    }
    if (memchr(body->p, '\v', body->len) || memchr(body->p, '\f', body->len)) {
        /* never JSON: not whitespace, and a control byte inside a string */
        snprintf(err, errlen, "invalid JSON: a \\v or \\f byte");
        return NULL;
    }
    tree_build t = {.err = err, .errlen = errlen};
    yajl_handle h = yajl_alloc(&tree_callbacks, NULL, &t);
    if (h == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    const unsigned char *text = (const unsigned char *)body->p;
    yajl_status st = yajl_parse(h, text, body->len);
    if (st == yajl_status_ok)
        st = yajl_complete_parse(h);
    if (st != yajl_status_ok && err[0] == '\0') { /* yajl's reason, one line */
        unsigned char *why = yajl_get_error(h, 0, text, body->len);
        snprintf(err, errlen, "invalid JSON: %s", why ? (const char *)why : "malformed");
        for (char *c = err; *c; c++)
            if (*c == '\n')
                *c = ' ';
        if (why)
            yajl_free_error(h, why);
    }
    yajl_free(h);
    if (st != yajl_status_ok) {
        free(t.key);
        yajl_tree_free(t.root); /* the partial tree hangs from the root */
        return NULL;
    }
    assert(t.root != NULL && t.depth == 0 && t.key == NULL);
    return t.root;
}

yajl_val http_json_get(yajl_val obj, const char *key)
{
    assert(key != NULL);
    if (obj == NULL || !YAJL_IS_OBJECT(obj))
        return NULL;
    for (size_t i = 0; i < obj->u.object.len; i++)
        if (strcmp(obj->u.object.keys[i], key) == 0)
            return obj->u.object.values[i];
    return NULL;
}

/* Decimal digits only, within u64, no leading zero unless "0": the form
 * of an exact unsigned integer in a body or a URL. */
static bool parse_u64_strict(const char *p, size_t n, uint64_t *out)
{
    assert(out != NULL && (p != NULL || n == 0));
    if (n == 0 || n > 20 || (n > 1 && p[0] == '0'))
        return false;
    return digits_u64(p, n, out);
}

/* An i64 written as an integer (optional '-', then parse_u64_strict). */
static bool parse_i64_strict(const char *p, size_t n, int64_t *out)
{
    bool neg = n > 0 && p[0] == '-';
    uint64_t mag;
    assert(out != NULL && (p != NULL || n == 0));
    if (!parse_u64_strict(p + neg, n - neg, &mag))
        return false;
    if (mag > (uint64_t)INT64_MAX + neg)
        return false;
    *out = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    assert(neg ? *out <= 0 : *out >= 0);
    return true;
}

bool http_json_get_u64(yajl_val obj, const char *key, uint64_t *out, bool *bad)
{
    assert(out != NULL && bad != NULL);
    yajl_val v = http_json_get(obj, key);
    if (v == NULL)
        return false;
    /* yajl keeps a number's text (r): read it ourselves, never via double */
    const char *s = YAJL_IS_NUMBER(v) ? v->u.number.r : YAJL_IS_STRING(v) ? v->u.string : NULL;
    if (s == NULL || !parse_u64_strict(s, strlen(s), out))
        *bad = true;
    return true;
}

bool http_json_get_i64(yajl_val obj, const char *key, int64_t *out, bool *bad)
{
    assert(out != NULL && bad != NULL);
    yajl_val v = http_json_get(obj, key);
    if (v == NULL)
        return false;
    if (!YAJL_IS_NUMBER(v) || !parse_i64_strict(v->u.number.r, strlen(v->u.number.r), out))
        *bad = true;
    return true;
}

bool http_json_get_bool(yajl_val obj, const char *key, bool *out, bool *bad)
{
    assert(out != NULL && bad != NULL);
    yajl_val v = http_json_get(obj, key);
    if (v == NULL)
        return false;
    if (YAJL_IS_TRUE(v))
        *out = true;
    else if (YAJL_IS_FALSE(v))
        *out = false;
    else
        *bad = true;
    return true;
}

bool http_json_get_str(yajl_val obj, const char *key, http_str *out, bool *bad)
{
    assert(out != NULL && bad != NULL);
    yajl_val v = http_json_get(obj, key);
    if (v == NULL)
        return false;
    if (YAJL_IS_STRING(v)) {
        out->p = v->u.string;
        out->len = strlen(v->u.string);
    } else {
        *bad = true;
    }
    return true;
}

bool http_parse_id(http_str s, uint64_t *out)
{
    assert(out != NULL);
    uint64_t v;
    if (s.p == NULL || !parse_u64_strict(s.p, s.len, &v) || v == 0)
        return false;
    *out = v;
    return true;
}

/* ---- query strings ----------------------------------------------------- */

/* Percent-decodes s[0..n) into buf (cap bytes; '+' is a space, as forms
 * send it). False on a bad escape or when it does not fit. */
static bool pct_decode(const char *s, size_t n, char *buf, size_t cap, size_t *len)
{
    size_t o = 0;
    assert((s != NULL || n == 0) && buf != NULL && len != NULL);
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            int hi = i + 2 < n ? hex_val(s[i + 1]) : -1;
            int lo = hi >= 0 ? hex_val(s[i + 2]) : -1;
            if (lo < 0)
                return false;
            c = (char)(hi * 16 + lo);
            i += 2;
        } else if (c == '+') {
            c = ' ';
        }
        if (o >= cap)
            return false;
        buf[o++] = c;
    }
    *len = o;
    assert(o <= n && o <= cap); /* decoding only shrinks */
    return true;
}

bool http_query_next(http_str query, const char *name, size_t *at, char *buf, size_t cap,
                     size_t *len)
{
    assert(name != NULL && at != NULL && buf != NULL && len != NULL);
    size_t name_len = strlen(name);
    assert(name_len < HTTP_QUERY_KEY_MAX);
    while (*at < query.len) {
        const char *pair = query.p + *at;
        const char *amp = memchr(pair, '&', query.len - *at);
        size_t pair_len = amp ? (size_t)(amp - pair) : query.len - *at;
        *at += pair_len + (amp != NULL);
        const char *eq = memchr(pair, '=', pair_len);
        size_t key_raw = eq ? (size_t)(eq - pair) : pair_len;
        char key[HTTP_QUERY_KEY_MAX];
        size_t key_len;
        if (!pct_decode(pair, key_raw, key, sizeof key, &key_len) || key_len != name_len ||
            memcmp(key, name, name_len) != 0)
            continue;
        const char *val = eq ? eq + 1 : pair + pair_len;
        size_t val_raw = pair_len - key_raw - (eq != NULL);
        /* the cursor moved past this pair and stayed within the query */
        assert(*at <= query.len && val + val_raw <= query.p + query.len);
        if (pct_decode(val, val_raw, buf, cap, len))
            return true;
        return false; /* present but undecodable or too long */
    }
    return false;
}

bool http_query_get(http_str query, const char *name, char *buf, size_t cap, size_t *len)
{
    size_t at = 0;
    assert(name != NULL && buf != NULL && len != NULL);
    bool found = http_query_next(query, name, &at, buf, cap, len);
    assert(!found || *len <= cap);
    return found;
}

void http_body_raw(http_body *b, const char *p, size_t n)
{
    assert(b != NULL && (p != NULL || n == 0));
    body_print(b, p, n);
}

bool http_json_utf8_ok(const char *s, size_t n)
{
    assert(s != NULL || n == 0);
    return n == 0 || utf8_valid_prefix((const unsigned char *)s, n) == n;
}
