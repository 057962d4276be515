/*
 * http_json.h — JSON for the HTTP face: a response body written by our
 * writer (byte for byte what yajl's generator writes, at a fraction of
 * its cost: tests/test_http_json.c compares the two), and request bodies
 * parsed by yajl's parser into yajl's tree (yajl_val) under a depth and
 * size bound. The dialects use these, never string formatting of JSON.
 *
 * Invariants: an http_body only grows up to HTTP_BODY_OUT_MAX (then it is
 * marked failed and the response becomes a 500); 64-bit ids are written as
 * JSON strings where a dialect says so (http_json_id), as exact integers
 * otherwise (http_json_u64), never through a double.
 */
#ifndef INV_SERVER_HTTP_JSON_H
#define INV_SERVER_HTTP_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "server/http_route.h"

/* Bytes of one response body at most. */
#define HTTP_BODY_OUT_MAX (16u << 20)

/* Nesting of a response body at most (yajl_gen's YAJL_MAX_DEPTH: the
 * writer keeps its limit). */
#define HTTP_JSON_NEST_MAX 128

struct http_body {
    char *p;
    size_t len, cap;
    bool failed; /* out of memory or over HTTP_BODY_OUT_MAX */
    yajl_gen gen; /* for http_json_gen only; created by http_body_init */
    /* The writer's state (http_json.c): per open container, what comes
     * next, as yajl_gen keeps it; nest[0] is the document's. */
    size_t depth;
    unsigned char nest[HTTP_JSON_NEST_MAX];
};

int http_body_init(http_body *b);
void http_body_reset(http_body *b); /* empty, a fresh generator */
void http_body_free(http_body *b);

/* A generator for ONE scalar value (yajl_gen_number, _string, ...) at
 * b's value position: the separator is written and the value counted
 * first, and the generator starts afresh for it. Containers and keys go
 * through the calls below (the writer is ours, not yajl_gen's: see
 * http_json.c), never through it. */
yajl_gen http_json_gen(http_body *b);

/* Short forms over yajl_gen for what every dialect writes. */
void http_json_key(http_body *b, const char *key); /* an object's key (NUL-terminated) */
void http_json_str(http_body *b, const char *s, size_t len); /* escaped; bytes that are
                                                               not UTF-8 as \u00XX */
void http_json_cstr(http_body *b, const char *s); /* NUL-terminated, or null when NULL */
void http_json_id(http_body *b, uint64_t id); /* "123" (a JSON string) */
void http_json_u64(http_body *b, uint64_t v); /* an exact integer */
void http_json_i64(http_body *b, int64_t v);
void http_json_bool(http_body *b, bool v);
void http_json_null(http_body *b);
void http_json_time_iso(http_body *b, int64_t unix_ms); /* "2026-12-06T17:20:55Z" (UTC) */
void http_json_time_iso_ms(http_body *b, int64_t unix_ms); /* "2026-12-06T17:20:55.620Z" */
/* An object's member: the key, then its value. */
void http_json_kv_str(http_body *b, const char *key, const char *s); /* NUL-terminated */
void http_json_kv_str_or_null(http_body *b, const char *key, const char *s); /* "": null */
void http_json_kv_bool(http_body *b, const char *key, bool v);
void http_json_kv_u64(http_body *b, const char *key, uint64_t v);
void http_json_kv_id(http_body *b, const char *key, uint64_t id); /* "123", a string */
void http_json_kv_time(http_body *b, const char *key, int64_t unix_ms); /* http_json_time_iso */
void http_json_kv_time_ms(http_body *b, const char *key, int64_t unix_ms); /* ..._iso_ms */
void http_json_obj_open(http_body *b);
void http_json_obj_close(http_body *b);
void http_json_arr_open(http_body *b);
void http_json_arr_close(http_body *b);

/* Request bodies. Parses body (at most the listener's body limit) into a
 * tree: NULL with a short reason in err on bad JSON, one nested deeper
 * than HTTP_JSON_DEPTH_MAX, or one with a "\u0000" escape in a string or
 * key (yajl's tree would hold it NUL-terminated, so http_json_get_str would
 * read it cut at the NUL: refused whole instead, and every handler answers
 * its 400 for a body it cannot parse). yajl's parser (its callback API):
 * no comments, no bytes after the value but JSON whitespace (\v and \f are
 * not), UTF-8 as yajl's lexer checks it (its structure; an overlong form or
 * a lone surrogate escape passes as yajl_tree_parse lets it). Numbers keep
 * their text (r), i and the INT flag as yajl sets them. Free with
 * yajl_tree_free. */
#define HTTP_JSON_DEPTH_MAX 32
yajl_val http_json_parse(const http_str *body, char *err, size_t errlen);

/* Reading a parsed object, each answering false when the key is absent
 * and setting *bad when it is present with the wrong type or range. */
yajl_val http_json_get(yajl_val obj, const char *key); /* NULL: absent */
bool http_json_get_u64(yajl_val obj, const char *key, uint64_t *out, bool *bad); /* a number
                                                                  or a decimal string */
bool http_json_get_i64(yajl_val obj, const char *key, int64_t *out, bool *bad);
bool http_json_get_bool(yajl_val obj, const char *key, bool *out, bool *bad);
bool http_json_get_str(yajl_val obj, const char *key, http_str *out, bool *bad);

/* A decimal id (no sign, no leading '+', within u64, not 0): the shared
 * rule for path and query ids. */
bool http_parse_id(http_str s, uint64_t *out);

/* The value of name in a query string (first occurrence, percent-decoded
 * into buf); false when absent or longer than cap. Repeated keys
 * (ids=a&ids=b) are read with http_query_next. */
bool http_query_get(http_str query, const char *name, char *buf, size_t cap, size_t *len);
/* Iterates the values of name: *at starts at 0; false at the end. */
bool http_query_next(http_str query, const char *name, size_t *at, char *buf, size_t cap,
                     size_t *len);

/* ---- additions by http-core -------------------------------------------- */

/* Raw bytes appended to b (a body that is not JSON, e.g. /metrics text);
 * not through the generator, so never mixed with JSON in one body. */
void http_body_raw(http_body *b, const char *p, size_t n);

/* A JSON number given as its text (the caller's digits, e.g. a decimal
 * price kept exact), at b's value position. */
void http_json_number(http_body *b, const char *text, size_t len);

/* ---- additions by tenant-io -------------------------------------------- */

/* Is s[0..n) well-formed UTF-8 (RFC 3629), so that http_json_str writes it
 * as it is (it repairs any other byte to a \u00XX code point)? */
bool http_json_utf8_ok(const char *s, size_t n);

#endif /* INV_SERVER_HTTP_JSON_H */
