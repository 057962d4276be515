/*
 * resp.c — RESP request parser and reply writer.
 *
 * Invariants:
 *  - resp_parse reads only buf[0..len), writes only argv[0..max_args) and
 *    the out-parameters, allocates nothing, and keeps no state: a caller
 *    may call it again with more bytes (the `need` hint says how many are
 *    worth waiting for before trying again).
 *  - A declared count or length is checked against the limits before it is
 *    used, and is never used to size anything: bytes are waited for, not
 *    reserved.
 *  - The writer never emits CR or LF inside a simple string or an error.
 */
#include "alloc.h"
#include "server/resp.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- parser ----------------------------------------------------------- */

/* Parses the header "<c>N\r\n" at buf[pos..len) (buf[pos] is the type byte).
 * Returns 1 with *value and *next, 0 for need-more, -1 for bad framing. */
static int parse_header(const char *buf, size_t len, size_t pos, int64_t *value, size_t *next)
{
    /* Fast path, most headers of a request: one or two digits, whole in
     * the buffer ("$5\r\n", "*12\r\n"); anything else takes the loop. */
    assert(buf != NULL && pos < len); /* buf[pos] is the type byte */
    if (len - pos >= 5) {
        unsigned d1 = (unsigned char)buf[pos + 1] - '0', d2 = (unsigned char)buf[pos + 2] - '0';
        if (d1 <= 9 && buf[pos + 2] == '\r' && buf[pos + 3] == '\n') {
            *value = (int64_t)d1;
            *next = pos + 4;
            return 1;
        }
        if (d1 <= 9 && d2 <= 9 && buf[pos + 3] == '\r' && buf[pos + 4] == '\n') {
            *value = (int64_t)(d1 * 10 + d2);
            *next = pos + 5;
            return 1;
        }
    }
    size_t i = pos + 1;
    size_t limit = pos + 1 + RESP_HEADER_DIGITS_MAX + 1; /* sign + digits */
    int neg = 0;
    uint64_t v = 0;
    size_t digits = 0;

    if (i < len && buf[i] == '-') {
        neg = 1;
        i++;
    }
    for (; i < len && i < limit; i++) {
        char c = buf[i];
        if (c < '0' || c > '9')
            break;
        if (v > (UINT64_MAX - 9) / 10)
            return -1; /* far beyond any limit */
        v = v * 10 + (uint64_t)(c - '0');
        digits++;
    }
    if (i >= len)
        return 0;
    if (i >= limit || digits == 0 || buf[i] != '\r')
        return -1;
    if (i + 1 >= len)
        return 0;
    if (buf[i + 1] != '\n')
        return -1;
    if (v > (uint64_t)INT64_MAX)
        return -1;
    *value = neg ? -(int64_t)v : (int64_t)v;
    *next = i + 2;
    return 1;
}

static resp_status parse_multibulk(const char *buf, size_t len, const resp_limits *lim,
                                   resp_arg *argv, size_t *argc, size_t *consumed, size_t *need,
                                   const char **err)
{
    int64_t count = 0;
    size_t pos = 0;
    int r = parse_header(buf, len, 0, &count, &pos);

    if (r == 0) {
        *need = len + 1;
        return RESP_NEED_MORE;
    }
    if (r < 0 || count < 0) {
        *err = "Protocol error: invalid multibulk length";
        return RESP_ERROR;
    }
    if ((uint64_t)count > lim->max_args) {
        *err = "Protocol error: too many arguments";
        return RESP_ERROR;
    }
    for (size_t k = 0; k < (size_t)count; k++) {
        int64_t blen = 0;
        size_t body = 0;
        if (pos >= len) {
            *need = pos + 1;
            return RESP_NEED_MORE;
        }
        if (buf[pos] != '$') {
            *err = "Protocol error: expected '$'";
            return RESP_ERROR;
        }
        r = parse_header(buf, len, pos, &blen, &body);
        if (r == 0) {
            *need = len + 1;
            return RESP_NEED_MORE;
        }
        if (r < 0 || blen < 0 || (uint64_t)blen > lim->max_bulk) {
            *err = "Protocol error: invalid bulk length";
            return RESP_ERROR;
        }
        /* blen <= max_bulk, so this cannot overflow */
        if (len - body < (size_t)blen + 2) {
            *need = body + (size_t)blen + 2;
            return RESP_NEED_MORE;
        }
        if (buf[body + blen] != '\r' || buf[body + blen + 1] != '\n') {
            *err = "Protocol error: bulk not terminated by CRLF";
            return RESP_ERROR;
        }
        argv[k].ptr = buf + body;
        argv[k].len = (size_t)blen;
        pos = body + (size_t)blen + 2;
    }
    *argc = (size_t)count;
    *consumed = pos;
    return RESP_OK;
}

static resp_status parse_inline(const char *buf, size_t len, const resp_limits *lim, resp_arg *argv,
                                size_t *argc, size_t *consumed, size_t *need, const char **err)
{
    size_t scan = len < RESP_INLINE_MAX ? len : RESP_INLINE_MAX;
    const char *nl = memchr(buf, '\n', scan);
    if (nl == NULL) {
        if (len >= RESP_INLINE_MAX) {
            *err = "Protocol error: too big inline request";
            return RESP_ERROR;
        }
        *need = len + 1;
        return RESP_NEED_MORE;
    }
    size_t end = (size_t)(nl - buf), n = 0, i = 0;
    *consumed = end + 1;
    if (end > 0 && buf[end - 1] == '\r')
        end--;
    while (i < end) {
        while (i < end && (buf[i] == ' ' || buf[i] == '\t'))
            i++;
        if (i >= end)
            break;
        size_t start = i;
        while (i < end && buf[i] != ' ' && buf[i] != '\t')
            i++;
        if (n >= lim->max_args) {
            *err = "Protocol error: too many arguments";
            return RESP_ERROR;
        }
        if (i - start > lim->max_bulk) {
            *err = "Protocol error: invalid bulk length";
            return RESP_ERROR;
        }
        argv[n].ptr = buf + start;
        argv[n].len = i - start;
        n++;
    }
    *argc = n;
    return RESP_OK;
}

resp_status resp_parse(const char *buf, size_t len, const resp_limits *limits, resp_arg *argv,
                       size_t *argc, size_t *consumed, size_t *need, const char **err)
{
    *argc = 0;
    *consumed = 0;
    *need = 0;
    *err = NULL;
    if (len == 0) {
        *need = 1;
        return RESP_NEED_MORE;
    }
    if (buf[0] == '*')
        return parse_multibulk(buf, len, limits, argv, argc, consumed, need, err);
    return parse_inline(buf, len, limits, argv, argc, consumed, need, err);
}

/* ---- numbers ---------------------------------------------------------- */

int resp_parse_u64(const char *p, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 64) /* leading zeros allowed, but not unbounded */
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned char)p[i] - '0';
        if (d > 9)
            return -1;
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int resp_parse_i64(const char *p, size_t n, int64_t *out)
{
    uint64_t mag = 0;
    int neg = 0;
    if (n > 0 && p[0] == '-') {
        neg = 1;
        p++;
        n--;
    }
    if (resp_parse_u64(p, n, &mag) != 0)
        return -1;
    if (neg) {
        if (mag > (uint64_t)INT64_MAX + 1)
            return -1;
        *out = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
    } else {
        if (mag > (uint64_t)INT64_MAX)
            return -1;
        *out = (int64_t)mag;
    }
    return 0;
}

/* Decimal digits of v (1 for 0). */
static size_t u64_digits(uint64_t v)
{
    size_t n = 1;
    for (;;) {
        if (v < 10)
            return n;
        if (v < 100)
            return n + 1;
        if (v < 1000)
            return n + 2;
        if (v < 10000)
            return n + 3;
        v /= 10000;
        n += 4;
    }
}

/* Every reply carries several numbers (lengths, quantities, revisions,
 * ids): written from the end two digits at a time, straight into dst. */
size_t resp_fmt_u64(char *dst, uint64_t v)
{
    static const char pairs[201] = "00010203040506070809"
                                   "10111213141516171819"
                                   "20212223242526272829"
                                   "30313233343536373839"
                                   "40414243444546474849"
                                   "50515253545556575859"
                                   "60616263646566676869"
                                   "70717273747576777879"
                                   "80818283848586878889"
                                   "90919293949596979899";
    size_t n = u64_digits(v), i = n;
    while (v >= 100) {
        unsigned two = (unsigned)(v % 100) * 2;
        v /= 100;
        dst[--i] = pairs[two + 1];
        dst[--i] = pairs[two];
    }
    if (v >= 10) {
        dst[--i] = pairs[v * 2 + 1];
        dst[--i] = pairs[v * 2];
    } else {
        dst[--i] = (char)('0' + v);
    }
    return n;
}

static size_t fmt_i64(char *dst, int64_t v)
{
    if (v < 0) {
        dst[0] = '-';
        return 1 + resp_fmt_u64(dst + 1, (uint64_t)0 - (uint64_t)v);
    }
    return resp_fmt_u64(dst, (uint64_t)v);
}

/* ---- writer ----------------------------------------------------------- */

#define RESP_OUT_MIN_CAP 256u
#define RESP_ERROR_MAX 512u /* bytes of an error reply's text; longer is cut */

void resp_out_init(resp_out *o, int proto)
{
    memset(o, 0, sizeof *o);
    o->proto = proto;
}

void resp_out_free(resp_out *o)
{
    free(o->buf);
    o->buf = NULL;
    o->len = o->cap = 0;
}

int resp_out_reserve(resp_out *o, size_t n)
{
    if (o->failed)
        return -1;
    if (o->cap - o->len >= n)
        return 0;
    size_t cap = o->cap ? o->cap : RESP_OUT_MIN_CAP;
    while (cap - o->len < n) {
        if (cap > SIZE_MAX / 2) {
            o->failed = 1;
            return -1;
        }
        cap *= 2;
    }
    char *nb = inv_realloc(o->buf, cap);
    if (nb == NULL) {
        o->failed = 1;
        return -1;
    }
    o->buf = nb;
    o->cap = cap;
    return 0;
}

void resp_out_raw(resp_out *o, const char *p, size_t n)
{
    if (resp_out_reserve(o, n) != 0)
        return;
    memcpy(o->buf + o->len, p, n);
    o->len += n;
}

/* vsnprintf into dst[cap] (cap > 0), returning the length kept: what does
 * not fit in cap - 1 bytes is cut, and an encoding error keeps nothing. */
static size_t fmt_va(char *dst, size_t cap, const char *fmt, va_list ap)
{
    int n = vsnprintf(dst, cap, fmt, ap);
    if (n < 0)
        return 0;
    return (size_t)n < cap ? (size_t)n : cap - 1;
}

void resp_out_vprintf(resp_out *o, size_t max, const char *fmt, va_list ap)
{
    if (resp_out_reserve(o, max) != 0)
        return;
    o->len += fmt_va(o->buf + o->len, max, fmt, ap);
}

/* The longest "<t><number>\r\n": a type byte, a sign, 20 digits, CRLF. */
#define RESP_W_HEADER_MAX (1u + 1u + RESP_HEADER_DIGITS_MAX + 2u)

/* "<t><number>\r\n", formatted in place (every reply has a few: the
 * level's reply is four). */
static void w_header(resp_out *o, char t, int64_t v)
{
    if (resp_out_reserve(o, RESP_W_HEADER_MAX) != 0)
        return;
    char *p = o->buf + o->len;
    size_t n = 1;
    p[0] = t;
    n += fmt_i64(p + 1, v);
    p[n++] = '\r';
    p[n++] = '\n';
    assert(n <= RESP_W_HEADER_MAX);
    o->len += n;
}

/* Appends s with CR/LF replaced by spaces (simple strings, errors). */
static void w_line(resp_out *o, char t, const char *s, size_t n)
{
    if (resp_out_reserve(o, n + 3) != 0)
        return;
    o->buf[o->len++] = t;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        o->buf[o->len++] = (c == '\r' || c == '\n') ? ' ' : c;
    }
    o->buf[o->len++] = '\r';
    o->buf[o->len++] = '\n';
}

void resp_w_simple(resp_out *o, const char *s)
{
    w_line(o, '+', s, strlen(s));
}

void resp_w_ok(resp_out *o)
{
    resp_out_raw(o, "+OK\r\n", 5);
}

void resp_w_error(resp_out *o, const char *code, const char *msg)
{
    resp_w_errorf(o, "%s %s", code, msg);
}

void resp_w_errorf(resp_out *o, const char *fmt, ...)
{
    char tmp[RESP_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    size_t n = fmt_va(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    w_line(o, '-', tmp, n);
}

void resp_w_int(resp_out *o, int64_t v)
{
    w_header(o, ':', v);
}

void resp_w_bulk(resp_out *o, const char *p, size_t n)
{
    w_header(o, '$', (int64_t)n);
    if (resp_out_reserve(o, n + 2) != 0)
        return;
    if (n)
        memcpy(o->buf + o->len, p, n);
    o->len += n;
    o->buf[o->len++] = '\r';
    o->buf[o->len++] = '\n';
}

void resp_w_bulk_str(resp_out *o, const char *s)
{
    resp_w_bulk(o, s, strlen(s));
}

void resp_w_bulk_u64(resp_out *o, uint64_t v)
{
    char tmp[24];
    size_t n = resp_fmt_u64(tmp, v);
    resp_w_bulk(o, tmp, n);
}

void resp_w_null(resp_out *o)
{
    if (o->proto >= 3)
        resp_out_raw(o, "_\r\n", 3);
    else
        resp_out_raw(o, "$-1\r\n", 5);
}

void resp_w_array(resp_out *o, size_t n)
{
    w_header(o, '*', (int64_t)n);
}

void resp_w_map(resp_out *o, size_t pairs)
{
    if (o->proto >= 3)
        w_header(o, '%', (int64_t)pairs);
    else
        w_header(o, '*', (int64_t)(pairs * 2));
}

void resp_w_bool(resp_out *o, int v)
{
    if (o->proto >= 3)
        resp_out_raw(o, v ? "#t\r\n" : "#f\r\n", 4);
    else
        resp_w_int(o, v ? 1 : 0);
}

void resp_w_verbatim(resp_out *o, const char *p, size_t n)
{
    if (o->proto < 3) {
        resp_w_bulk(o, p, n);
        return;
    }
    w_header(o, '=', (int64_t)(n + 4));
    resp_out_raw(o, "txt:", 4);
    resp_out_raw(o, p, n);
    resp_out_raw(o, "\r\n", 2);
}
