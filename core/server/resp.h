/*
 * resp.h — RESP2/RESP3 request parser and reply writer (no sockets here).
 *
 * Parser: resp_parse() looks at the bytes received so far and either returns
 * one complete request (arguments point into the caller's buffer: zero copy),
 * asks for more bytes, or reports a framing error. It keeps no state between
 * calls, allocates nothing, and never sizes anything from a declared length
 * or count: a declared length is only compared with the limits and with the
 * bytes actually present.
 *
 * Writer: struct resp_out is a growable byte buffer; resp_w_* append one
 * reply element in the session's protocol version (2 or 3). Growth is by
 * doubling; the owner enforces the per-client reply limit.
 */
#ifndef INV_SERVER_RESP_H
#define INV_SERVER_RESP_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* ---- limits (defaults; the CLI may change the configurable ones) ------- */
#define RESP_MAX_BULK_DEFAULT (1u << 20) /* bytes in one argument */
#define RESP_MAX_ARGS_DEFAULT 4096u /* arguments per command */
#define RESP_INLINE_MAX (64u << 10) /* one inline command line */
#define RESP_PREAUTH_MAX_ARGS 8u /* before AUTH, when set */
#define RESP_PREAUTH_MAX_BULK 512u /* before AUTH, when set */
#define RESP_HEADER_DIGITS_MAX 20u /* digits in *N / $N */

typedef struct {
    const char *ptr; /* points into the input buffer; not NUL-terminated */
    size_t len;
} resp_arg;

typedef struct {
    size_t max_args; /* requests with more arguments are framing errors */
    size_t max_bulk; /* a longer bulk argument is a framing error */
} resp_limits;

typedef enum {
    RESP_OK = 0, /* one request parsed: *consumed bytes, *argc args */
    RESP_NEED_MORE = 1, /* incomplete; *need is a lower bound on total bytes */
    RESP_ERROR = -1 /* unreadable framing: reply *err and close */
} resp_status;

/* Parses one request at the start of buf[0..len). argv has room for
 * limits->max_args entries. An empty inline line parses as argc 0 (skip it).
 * On RESP_ERROR, *err names the problem (a static string). */
resp_status resp_parse(const char *buf, size_t len, const resp_limits *limits, resp_arg *argv,
                       size_t *argc, size_t *consumed, size_t *need, const char **err);

/* ---- reply writer ------------------------------------------------------ */

typedef struct {
    char *buf;
    size_t len, cap;
    int proto; /* 2 or 3 */
    int failed; /* an allocation failed: the owner must drop the client */
} resp_out;

void resp_out_init(resp_out *o, int proto);
void resp_out_free(resp_out *o);
/* Makes room for n more bytes; returns 0 or -1 (and sets failed). */
int resp_out_reserve(resp_out *o, size_t n);
void resp_out_raw(resp_out *o, const char *p, size_t n);
/* Appends fmt's output as raw bytes, cut at max - 1 bytes (max > 0). */
void resp_out_vprintf(resp_out *o, size_t max, const char *fmt, va_list ap);

void resp_w_simple(resp_out *o, const char *s); /* +s */
void resp_w_ok(resp_out *o); /* +OK */
void resp_w_error(resp_out *o, const char *code, const char *msg); /* -CODE msg */
void resp_w_errorf(resp_out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3))); /* -<formatted> */
void resp_w_int(resp_out *o, int64_t v); /* :v */
void resp_w_bulk(resp_out *o, const char *p, size_t n); /* $n p */
void resp_w_bulk_str(resp_out *o, const char *s);
void resp_w_bulk_u64(resp_out *o, uint64_t v); /* id as string */
void resp_w_null(resp_out *o); /* $-1 or _ */
void resp_w_array(resp_out *o, size_t n); /* *n */
void resp_w_map(resp_out *o, size_t pairs); /* *2n or %n */
void resp_w_bool(resp_out *o, int v); /* :0/1 or #t/f */
void resp_w_verbatim(resp_out *o, const char *p, size_t n); /* bulk or =txt: */

/* Decimal parsing used by the command layer; strict, no spaces, no '+'. */
int resp_parse_u64(const char *p, size_t n, uint64_t *out); /* 0 or -1 */
int resp_parse_i64(const char *p, size_t n, int64_t *out); /* 0 or -1 */
/* Writes v in decimal to dst (>= 21 bytes); returns the length. */
size_t resp_fmt_u64(char *dst, uint64_t v);

#endif /* INV_SERVER_RESP_H */
