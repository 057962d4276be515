/*
 * http_shopify.c — the Shopify dialect of the HTTP face (docs/HTTP.md "Shopify"):
 * the REST Admin inventory resources under /admin/api/{version}/ —
 * InventoryItem (list by ids, get, update), InventoryLevel (list with
 * cursor paging, adjust, set, connect, delete) and Location (list, get) —
 * served from the engine, in Shopify's shapes and error bodies.
 *
 * Invariants: every handler checks {version} against the versions the seed
 * lists (else 404 {"errors":"Not Found"}, as Shopify answers an unknown
 * path), validates every id, query parameter and body field before it
 * calls the engine, and writes exactly one body: a success shape or
 * {"errors": ...} (a body begun and then refused is reset first). Unknown
 * body fields and read-only fields are ignored, as Shopify ignores them.
 * A write sets res->durable_at to its journal position, so the listener
 * answers only once it is durable. No handler blocks or takes a lock;
 * the listings allocate (bounded by named limits), the writes do not.
 *
 * Never oversells: adjust.json passes no explicit floor, so a decrement
 * follows the level's oversell policy inside the engine's one atomic step
 * (DENY, the default: available never below 0; CONTINUE: down to the
 * level's preorder limit). A refused decrement changes nothing and answers
 * 422; concurrent buyers of the last units each get 200 or 422, never both.
 * An untracked item is not adjusted at all (422, as Shopify answers).
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "server/http_fields.h"
#include "server/http_json.h"
#include "server/http_route.h"

/* ---- limits ------------------------------------------------------------- */

#define SHOPIFY_IDS_MAX 100 /* ids in inventory_items.json?ids= (the seed's maximum) */
#define SHOPIFY_LEVEL_IDS_MAX 50 /* inventory_item_ids / location_ids (Shopify's maximum) */
#define SHOPIFY_LIMIT_DEFAULT 50 /* rows in a page without ?limit= */
#define SHOPIFY_LIMIT_MAX 250 /* ?limit= at most (the seed's maximum) */
/* A query value read whole: 100 ids of 20 digits and their commas fit. */
#define SHOPIFY_QUERY_VALUE_MAX 2200
/* Engine pages one levels listing walks at most before answering with a
 * next link: bounds one request's work when few levels match its filter. */
#define SHOPIFY_SCAN_ROUNDS_MAX 64
/* A page_info token's bytes before base64url: kind, two id lists of
 * varints (10 bytes each at most), a cursor and a location. */
#define SHOPIFY_TOKEN_BYTES_MAX (4 + 2 * (SHOPIFY_IDS_MAX + 1) * 10 + 2 * 10)
#define SHOPIFY_TOKEN_TEXT_MAX (((SHOPIFY_TOKEN_BYTES_MAX + 2) / 3) * 4 + 1)
#define SHOPIFY_HOST_MAX 255 /* a Host header used in the Link URL */

/* Every version the seed lists (002: 2020-01 ... unstable). */
static const char *const shopify_versions[] = {
    "2020-01", "2020-04", "2020-07", "2020-10", "2021-01", "2021-04", "unstable",
};

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- replies ------------------------------------------------------------ */

/* Shopify's error bodies, one writer for their four shapes:
 *   field NULL, !list: {"errors":"<msg>"}          (404 Not Found, 400)
 *   field NULL,  list: {"errors":["<msg>"]}        (422 about the request)
 *   field,       list: {"errors":{"<field>":["<msg>"]}}  (422 validation)
 *   field,      !list: {"errors":{"<field>":"<msg>"}}    (400 parameter)
 * Resets a body already begun; a refused request is durable at nothing. */
static void reply_errors(http_response *res, int status, const char *field, const char *msg,
                         bool list)
{
    assert(http_response_ok(res));
    assert(status >= 400 && status < 600 && msg != NULL);
    http_body_reset(res->body);
    res->status = status;
    res->durable_at = 0;
    http_json_obj_open(res->body);
    http_json_key(res->body, "errors");
    if (field != NULL) {
        http_json_obj_open(res->body);
        http_json_key(res->body, field);
    }
    if (list)
        http_json_arr_open(res->body);
    http_json_cstr(res->body, msg);
    if (list)
        http_json_arr_close(res->body);
    if (field != NULL)
        http_json_obj_close(res->body);
    http_json_obj_close(res->body);
}

static void reply_error_text(http_response *res, int status, const char *msg)
{
    assert(http_response_ok(res));
    reply_errors(res, status, NULL, msg, false);
}

static void reply_not_found(http_response *res)
{
    assert(http_response_ok(res));
    reply_errors(res, 404, NULL, "Not Found", false);
}

static void reply_error_field(http_response *res, int status, const char *field, const char *msg)
{
    assert(http_response_ok(res));
    assert(field != NULL);
    reply_errors(res, status, field, msg, true);
}

static void reply_error_list(http_response *res, int status, const char *msg)
{
    assert(http_response_ok(res));
    reply_errors(res, status, NULL, msg, true);
}

/* Shopify's answer to a missing or unreadable parameter. */
static void reply_required(http_response *res, const char *param)
{
    assert(http_response_ok(res));
    assert(param != NULL);
    reply_errors(res, 400, param, "Required parameter missing or invalid", false);
}

/* An engine refusal not handled by the caller: its status from the one
 * error table (http_status_for), in this dialect's error shape. */
static void reply_engine_error(http_response *res, int rc)
{
    assert(http_response_ok(res));
    assert(rc != INV_OK);
    int status = http_status_for(rc);
    if (status == 404)
        reply_not_found(res);
    else if (status >= 500) /* the server's state (memory, journal): text */
        reply_error_text(res, status, inv_strerror(rc));
    else
        reply_error_list(res, status, inv_strerror(rc));
}

/* ---- request helpers ---------------------------------------------------- */

static bool str_eq(http_str s, const char *lit)
{
    assert(lit != NULL && (s.p != NULL || s.len == 0));
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.p, lit, n) == 0;
}

/* params[0] is {version}: false (and a 404) unless the seed lists it. */
static bool version_ok_or_reply(const http_request *req, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    assert(req->n_params >= 1);
    for (size_t i = 0; i < NELEMS(shopify_versions); i++)
        if (str_eq(req->params[0], shopify_versions[i]))
            return true;
    reply_not_found(res);
    return false;
}

/* A path id (params[i]): a decimal u64 without sign, else 404 as Shopify
 * answers a path that names nothing. */
static bool path_id_or_reply(const http_request *req, size_t i, uint64_t *id, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    assert(i < req->n_params);
    if (http_parse_id(req->params[i], id))
        return true;
    reply_not_found(res);
    return false;
}

/* Parses the body as a JSON object: NULL (and a 400) on malformed JSON or
 * a root that is not an object. Free with yajl_tree_free. */
static yajl_val body_or_reply(const http_request *req, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    char err[128] = "";
    yajl_val root = http_json_parse(&req->body, err, sizeof err);
    if (root != NULL && YAJL_IS_OBJECT(root))
        return root;
    char msg[192];
    snprintf(msg, sizeof msg, "Bad Request: %s",
             root == NULL ? (err[0] ? err : "malformed JSON") : "the body must be a JSON object");
    yajl_tree_free(root);
    reply_error_text(res, 400, msg);
    return NULL;
}

/* A required id field of a body: false (and a 400 when absent, 422 when
 * present but not an id) unless it reads. */
static bool body_id_or_reply(yajl_val obj, const char *key, uint64_t *out, http_response *res)
{
    assert(http_response_ok(res));
    bool bad = false;
    if (!http_json_get_u64(obj, key, out, &bad)) {
        reply_required(res, key);
        return false;
    }
    if (bad || *out == 0) {
        reply_error_field(res, 422, key, "must be a positive integer id within 64 bits");
        return false;
    }
    return true;
}

/* A required quantity field: an integer within INV_QTY_MAX. */
static bool body_qty_or_reply(yajl_val obj, const char *key, int64_t *out, http_response *res)
{
    assert(http_response_ok(res));
    bool bad = false;
    if (!http_json_get_i64(obj, key, out, &bad)) {
        reply_required(res, key);
        return false;
    }
    if (bad || *out > INV_QTY_MAX || *out < -INV_QTY_MAX) {
        reply_error_field(res, 422, key, "must be an integer between -1000000000 and 1000000000");
        return false;
    }
    return true;
}

/* A comma-separated id list (sorted, duplicates dropped): false on an
 * unreadable id or more than max. Spaces around an id are allowed. */
static bool parse_id_list(const char *s, size_t len, uint64_t *ids, size_t max, size_t *n_out)
{
    assert(s != NULL && ids != NULL && max >= 1);
    size_t n = 0, i = 0;
    while (i <= len) {
        size_t j = i;
        while (j < len && s[j] != ',')
            j++;
        size_t a = i, b = j;
        while (a < b && s[a] == ' ')
            a++;
        while (b > a && s[b - 1] == ' ')
            b--;
        uint64_t id;
        if (n == max || !http_parse_id((http_str){s + a, b - a}, &id))
            return false;
        ids[n++] = id;
        i = j + 1;
    }
    assert(n >= 1 && n <= max);
    /* sort (insertion: at most SHOPIFY_IDS_MAX) and drop duplicates */
    for (size_t k = 1; k < n; k++)
        for (size_t m = k; m > 0 && ids[m - 1] > ids[m]; m--) {
            uint64_t t = ids[m];
            ids[m] = ids[m - 1];
            ids[m - 1] = t;
        }
    size_t w = 0;
    for (size_t k = 0; k < n; k++)
        if (w == 0 || ids[w - 1] != ids[k])
            ids[w++] = ids[k];
    *n_out = w;
    return true;
}

/* Whether name appears as a key of the query (raw compare: our names need
 * no escapes). http_query_get answers false both for an absent key and a
 * value too long to decode; this tells them apart, so that an over-long
 * filter is refused, never dropped. */
static bool query_present(http_str query, const char *name)
{
    size_t name_len = strlen(name), at = 0;
    assert(name_len >= 1 && (query.p != NULL || query.len == 0));
    while (at < query.len) {
        const char *pair = query.p + at;
        const char *amp = memchr(pair, '&', query.len - at);
        size_t pair_len = amp ? (size_t)(amp - pair) : query.len - at;
        at += pair_len + (amp != NULL);
        const char *eq = memchr(pair, '=', pair_len);
        size_t key_len = eq ? (size_t)(eq - pair) : pair_len;
        assert(at <= query.len && key_len <= pair_len); /* cursors within the query */
        if (key_len == name_len && memcmp(pair, name, name_len) == 0)
            return true;
    }
    return false;
}

/* ?name=1,2,3: false (and a 400 naming it) when absent but required, or
 * unreadable; *n_out 0 when absent and optional. */
static bool query_ids_or_reply(const http_request *req, const char *name, bool required,
                               uint64_t *ids, size_t max, size_t *n_out, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    static _Thread_local char buf[SHOPIFY_QUERY_VALUE_MAX];
    size_t len = 0;
    *n_out = 0;
    if (!query_present(req->query, name)) {
        if (!required)
            return true;
        reply_required(res, name);
        return false;
    }
    if (!http_query_get(req->query, name, buf, sizeof buf, &len) ||
        !parse_id_list(buf, len, ids, max, n_out)) {
        char msg[96];
        snprintf(msg, sizeof msg, "must be a comma-separated list of at most %zu positive ids",
                 max);
        reply_error_field(res, 400, name, msg);
        return false;
    }
    return true;
}

/* ?limit=: SHOPIFY_LIMIT_DEFAULT when absent, 1..SHOPIFY_LIMIT_MAX else 400. */
static bool query_limit_or_reply(const http_request *req, size_t *limit, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    char buf[24];
    size_t len = 0;
    uint64_t v;
    *limit = SHOPIFY_LIMIT_DEFAULT;
    if (!query_present(req->query, "limit"))
        return true;
    if (!http_query_get(req->query, "limit", buf, sizeof buf, &len) ||
        !http_parse_id((http_str){buf, len}, &v) || v > SHOPIFY_LIMIT_MAX) {
        reply_error_field(res, 400, "limit", "must be an integer between 1 and 250");
        return false;
    }
    *limit = (size_t)v;
    return true;
}

/* ---- page_info: the cursor of a listing, in the URL ---------------------- *
 *
 * A token carries everything the next page needs (Shopify refuses filters
 * beside page_info; here they are ignored): the listing's kind, the ids
 * still to visit (sorted: varint deltas) and the filter's location ids, an
 * engine cursor and the last location returned. Encoded as base64url
 * without padding; decoding checks every byte (a token is client input). */

typedef struct {
    uint8_t kind; /* 'I': inventory_items; 'L': inventory_levels */
    uint64_t items[SHOPIFY_IDS_MAX];
    size_t n_items;
    uint64_t locs[SHOPIFY_LEVEL_IDS_MAX];
    size_t n_locs;
    uint64_t cursor; /* levels by location: the engine's scan cursor */
    uint64_t after_loc; /* levels by item: resume items[0] after this location */
    bool has_after;
} page_state;

static size_t varint_put(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    assert(p != NULL);
    do {
        p[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    assert(n >= 1 && n <= 10); /* 64 bits in 7-bit groups */
    return n;
}

static bool varint_get(const uint8_t *p, size_t len, size_t *at, uint64_t *out)
{
    assert(p != NULL && at != NULL && *at <= len);
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64 && *at < len; shift += 7) {
        uint8_t b = p[(*at)++];
        if (shift == 63 && b > 1)
            return false; /* over 64 bits */
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

static size_t ids_put(uint8_t *p, const uint64_t *ids, size_t n)
{
    assert(n <= SHOPIFY_IDS_MAX);
    size_t at = varint_put(p, n);
    for (size_t i = 0; i < n; i++)
        at += varint_put(p + at, i ? ids[i] - ids[i - 1] : ids[i]);
    return at;
}

static bool ids_get(const uint8_t *p, size_t len, size_t *at, uint64_t *ids, size_t max,
                    size_t *n_out)
{
    uint64_t n, d;
    assert(p != NULL && at != NULL && *at <= len && ids != NULL && n_out != NULL);
    if (!varint_get(p, len, at, &n) || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!varint_get(p, len, at, &d) || d == 0)
            return false; /* strictly increasing, ids not 0 */
        if (i && d > UINT64_MAX - ids[i - 1])
            return false;
        ids[i] = i ? ids[i - 1] + d : d;
        assert(i == 0 || ids[i] > ids[i - 1]); /* strictly increasing */
    }
    *n_out = (size_t)n;
    assert(*n_out <= max && *at <= len);
    return true;
}

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int b64url_val(char c)
{
    const char *p = c ? strchr(b64url, c) : NULL;
    assert(p == NULL || (p - b64url >= 0 && p - b64url < 64)); /* one of the 64 */
    return p ? (int)(p - b64url) : -1;
}

/* The token of st into text (NUL-terminated; cap >= SHOPIFY_TOKEN_TEXT_MAX). */
static void page_token_encode(const page_state *st, char *text, size_t cap)
{
    uint8_t raw[SHOPIFY_TOKEN_BYTES_MAX];
    size_t n = 0;
    assert(cap >= SHOPIFY_TOKEN_TEXT_MAX);
    raw[n++] = st->kind;
    n += ids_put(raw + n, st->items, st->n_items);
    n += ids_put(raw + n, st->locs, st->n_locs);
    n += varint_put(raw + n, st->cursor);
    n += varint_put(raw + n, st->has_after ? st->after_loc + 1 : 0);
    assert(n <= sizeof raw);
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t w = (uint32_t)raw[i] << 16;
        if (i + 1 < n)
            w |= (uint32_t)raw[i + 1] << 8;
        if (i + 2 < n)
            w |= raw[i + 2];
        size_t chars = i + 2 < n ? 4 : i + 1 < n ? 3 : 2;
        for (size_t k = 0; k < chars; k++)
            text[o++] = b64url[(w >> (18 - 6 * k)) & 0x3f];
    }
    text[o] = '\0';
}

/* false: not a token this server wrote (of kind). */
static bool page_token_decode(const char *text, size_t len, uint8_t kind, page_state *st)
{
    assert(text != NULL && st != NULL && (kind == 'I' || kind == 'L'));
    uint8_t raw[SHOPIFY_TOKEN_BYTES_MAX];
    size_t n = 0;
    if (len == 0 || len % 4 == 1 || (len / 4) * 3 + 2 > sizeof raw)
        return false;
    for (size_t i = 0; i < len; i += 4) {
        uint32_t w = 0;
        size_t chars = len - i < 4 ? len - i : 4;
        for (size_t k = 0; k < 4; k++) {
            int v = k < chars ? b64url_val(text[i + k]) : 0;
            if (v < 0)
                return false;
            w = (w << 6) | (uint32_t)v;
        }
        for (size_t k = 0; k + 1 < chars; k++)
            raw[n++] = (uint8_t)(w >> (16 - 8 * k));
    }
    size_t at = 1;
    uint64_t after1;
    memset(st, 0, sizeof *st);
    if (n < 1 || raw[0] != kind)
        return false;
    st->kind = kind;
    /* a levels token names at most SHOPIFY_LEVEL_IDS_MAX items, and some
     * item or location to list (what the first request required) */
    size_t items_max = kind == 'L' ? SHOPIFY_LEVEL_IDS_MAX : SHOPIFY_IDS_MAX;
    if (!ids_get(raw, n, &at, st->items, items_max, &st->n_items) ||
        !ids_get(raw, n, &at, st->locs, SHOPIFY_LEVEL_IDS_MAX, &st->n_locs) ||
        !varint_get(raw, n, &at, &st->cursor) || !varint_get(raw, n, &at, &after1) || at != n)
        return false;
    if (st->n_items == 0 && st->n_locs == 0)
        return false;
    st->has_after = after1 != 0;
    st->after_loc = after1 - st->has_after;
    return true;
}

/* ?page_info=: false when absent; *ok false (and a 400) when unreadable. */
static bool query_page_info(const http_request *req, uint8_t kind, page_state *st, bool *ok,
                            http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    static _Thread_local char buf[SHOPIFY_TOKEN_TEXT_MAX];
    size_t len = 0;
    *ok = true;
    if (!query_present(req->query, "page_info"))
        return false;
    if (http_query_get(req->query, "page_info", buf, sizeof buf, &len) &&
        page_token_decode(buf, len, kind, st))
        return true;
    *ok = false;
    reply_error_field(res, 400, "page_info", "Invalid value.");
    return true;
}

/* Adds Link: <...page_info=...>; rel="next" (absolute when a sane Host
 * header came): false (and a 422) when it does not fit the header. */
static bool link_next_or_reply(const http_request *req, size_t limit, const page_state *st,
                               http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    assert(limit >= 1 && limit <= SHOPIFY_LIMIT_MAX);
    assert(st->n_items > 0 || st->cursor != 0);
    static _Thread_local char token[SHOPIFY_TOKEN_TEXT_MAX];
    char host[SHOPIFY_HOST_MAX + 1] = "";
    http_str h;
    page_token_encode(st, token, sizeof token);
    if (req->header != NULL && req->header(req, "Host", &h) && h.len > 0 &&
        h.len <= SHOPIFY_HOST_MAX) {
        bool sane = true;
        for (size_t i = 0; i < h.len; i++) {
            char c = h.p[i];
            sane &= (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '-' || c == ':' || c == '[' || c == ']';
        }
        if (sane)
            snprintf(host, sizeof host, "http://%.*s", (int)h.len, h.p);
    }
    assert(res->n_extra < HTTP_EXTRA_HEADERS_MAX);
    int n = snprintf(res->extra[res->n_extra], HTTP_EXTRA_HEADER_BYTES_MAX,
                     "Link: <%s%.*s?limit=%zu&page_info=%s>; rel=\"next\"", host,
                     (int)req->path.len, req->path.p, limit, token);
    if (n < 0 || (size_t)n >= HTTP_EXTRA_HEADER_BYTES_MAX) {
        reply_error_field(res, 422, "page_info",
                          "the ids left to list do not fit a page_info link: pass fewer ids "
                          "per request or a larger limit");
        return false;
    }
    res->n_extra++;
    return true;
}

/* ---- shapes ------------------------------------------------------------- */

/* ---- country_harmonized_system_codes <-> the engine's text --------------- *
 *
 * JSON [{"country_code":"CA","harmonized_system_code":"1234567890"}, ...]
 * is the engine's "CA:1234567890,..." (invcore.h, INV_COUNTRY_HS_CODES_MAX),
 * pairs in the order given. */

/* The body's country_harmonized_system_codes into f (absent: untouched;
 * null or []: none): false (and a 422 naming the field) on a bad pair, a
 * country twice, or more than INV_COUNTRY_HS_PAIRS_MAX pairs. */
static bool country_hs_codes_or_reply(yajl_val obj, inv_item_fields *f, http_response *res)
{
    assert(http_response_ok(res));
    assert(obj != NULL && f != NULL && res != NULL);
    yajl_val v = http_json_get(obj, HTTP_COUNTRY_HS_KEY);
    char why[HTTP_FIELD_WHY_MAX];
    if (v == NULL)
        return true;
    if (!http_country_hs_read(v, f->country_hs_codes, why, sizeof why)) {
        reply_error_field(res, 422, HTTP_COUNTRY_HS_KEY, why);
        return false;
    }
    f->mask |= INV_ITEM_COUNTRY_HS_CODES;
    return true;
}

/* The seed's InventoryItem, field for field, in its order. */
static void write_item(http_body *b, const void *obj)
{
    assert(b != NULL && b->len <= b->cap);
    const inv_item *it = obj;
    assert(b != NULL && it != NULL);
    const inv_item_fields *f = &it->fields;
    http_json_obj_open(b);
    http_json_kv_u64(b, "id", it->id);
    http_json_kv_str_or_null(b, "sku", f->sku);
    http_json_kv_time(b, "created_at", it->created_at_ms);
    http_json_kv_time(b, "updated_at", it->updated_at_ms);
    http_json_kv_bool(b, "requires_shipping", f->requires_shipping);
    http_json_kv_str_or_null(b, "cost", f->cost);
    http_json_kv_str_or_null(b, "country_code_of_origin", f->country_code_of_origin);
    http_json_kv_str_or_null(b, "province_code_of_origin", f->province_code_of_origin);
    http_json_kv_str_or_null(b, "harmonized_system_code", f->harmonized_system_code);
    http_json_kv_bool(b, "tracked", f->tracked);
    http_country_hs_write(b, f->country_hs_codes);
    http_gid_write(b, "InventoryItem", it->id);
    http_json_obj_close(b);
}

/* An InventoryLevel: available from the write's own result (exact), the
 * time from the level as read just after. */
static void write_level(http_body *b, uint64_t item, uint64_t loc, int64_t available,
                        int64_t updated_at_ms)
{
    assert(b != NULL && b->len <= b->cap);
    http_json_obj_open(b);
    http_json_kv_u64(b, "inventory_item_id", item);
    http_json_kv_u64(b, "location_id", loc);
    http_json_key(b, "available");
    http_json_i64(b, available);
    http_json_kv_time(b, "updated_at", updated_at_ms);
    http_level_gid_write(b, item, loc);
    http_json_obj_close(b);
}

static void write_location(http_body *b, const void *obj)
{
    assert(b != NULL && b->len <= b->cap);
    const inv_location *l = obj;
    assert(b != NULL && l != NULL);
    const inv_location_fields *f = &l->fields;
    http_json_obj_open(b);
    http_json_kv_u64(b, "id", l->id);
    http_json_kv_str(b, "name", f->name);
    http_json_kv_str_or_null(b, "address1", f->address1);
    http_json_kv_str_or_null(b, "address2", f->address2);
    http_json_kv_str_or_null(b, "city", f->city);
    http_json_kv_str_or_null(b, "zip", f->zip);
    http_json_kv_str_or_null(b, "province", f->province);
    http_json_kv_str_or_null(b, "country", f->country_code);
    http_json_kv_str_or_null(b, "phone", f->phone);
    http_json_kv_time(b, "created_at", l->created_at_ms);
    http_json_kv_time(b, "updated_at", l->updated_at_ms);
    http_json_kv_str_or_null(b, "country_code", f->country_code);
    http_json_kv_str_or_null(b, "country_name", f->country);
    http_json_kv_str_or_null(b, "province_code", f->province_code);
    http_json_kv_bool(b, "legacy", false);
    http_json_kv_bool(b, "active", f->active);
    http_gid_write(b, "Location", l->id);
    http_json_kv_str_or_null(b, "localized_country_name", f->country);
    http_json_kv_str_or_null(b, "localized_province_name", f->province);
    http_json_obj_close(b);
}

/* {"<key>": <obj written by write>} with status. */
static void reply_wrapped(http_response *res, int status, const char *key,
                          void (*write)(http_body *, const void *), const void *obj)
{
    assert(key != NULL && write != NULL);
    res->status = status;
    http_json_obj_open(res->body);
    http_json_key(res->body, key);
    write(res->body, obj);
    http_json_obj_close(res->body);
}

/* ---- inventory_items ---------------------------------------------------- */

/* GET inventory_items.json?ids=a,b,c[&limit=][&page_info=]: the items that
 * exist, by id ascending (as the seed's example); unknown ids are left out. */
static void h_items_list(const http_request *req, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    assert(req->e != NULL && req->n_params == 1); /* the route: a tenant, its pattern's params */
    static _Thread_local page_state st;
    size_t limit;
    bool ok;
    if (!version_ok_or_reply(req, res) || !query_limit_or_reply(req, &limit, res))
        return;
    if (!query_page_info(req, 'I', &st, &ok, res)) {
        memset(&st, 0, sizeof st);
        st.kind = 'I';
        if (!query_ids_or_reply(req, "ids", true, st.items, SHOPIFY_IDS_MAX, &st.n_items, res))
            return;
    } else if (!ok) {
        return;
    }
    size_t i = 0, shown = 0;
    inv_item it;
    res->status = 200;
    http_json_obj_open(res->body);
    http_json_key(res->body, "inventory_items");
    http_json_arr_open(res->body);
    for (; i < st.n_items && shown < limit; i++) {
        if (inv_item_get(req->e, st.items[i], &it) != INV_OK)
            continue; /* unknown or deleted: left out */
        write_item(res->body, &it);
        shown++;
    }
    http_json_arr_close(res->body);
    http_json_obj_close(res->body);
    assert(shown <= limit && i <= st.n_items);
    if (i < st.n_items) {
        memmove(st.items, st.items + i, (st.n_items - i) * sizeof st.items[0]);
        st.n_items -= i;
        link_next_or_reply(req, limit, &st, res);
    }
}

static void h_item_get(const http_request *req, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    assert(req->e != NULL && req->n_params == 2); /* the route: a tenant, its pattern's params */
    uint64_t id;
    inv_item it;
    if (!version_ok_or_reply(req, res) || !path_id_or_reply(req, 1, &id, res))
        return;
    int rc = inv_item_get(req->e, id, &it);
    if (rc == INV_OK)
        reply_wrapped(res, 200, "inventory_item", write_item, &it);
    else
        reply_engine_error(res, rc);
}

/* One writable string field of an InventoryItem. */
typedef struct {
    const char *name;
    unsigned mask;
    size_t off, cap;
    bool number_ok; /* a JSON number is taken as its text (cost, HS code) */
    const char *rule; /* said in the 422 the engine's check leads to */
} item_str_field;

#define ITEM_STR(n, m, num, rule)                                                         \
    {                                                                                     \
#n, m, offsetof(inv_item_fields, n), sizeof(((inv_item_fields *)0)->n), num, rule \
    }
static const item_str_field item_str_fields[] = {
    ITEM_STR(sku, INV_ITEM_SKU, false, "must be unique among items"),
    ITEM_STR(cost, INV_ITEM_COST, true, "must be a decimal such as \"25.00\""),
    ITEM_STR(country_code_of_origin, INV_ITEM_COUNTRY_OF_ORIGIN, false,
             "must be two upper-case letters (ISO 3166-1 alpha-2)"),
    ITEM_STR(province_code_of_origin, INV_ITEM_PROVINCE_OF_ORIGIN, false,
             "must be at most 8 characters"),
    ITEM_STR(harmonized_system_code, INV_ITEM_HS_CODE, true, "must be 6 to 16 digits"),
};
#undef ITEM_STR

/* Reads one string field of the body's inventory_item into f: false (and
 * a 422) on a wrong type or a value too long. null clears it. */
static bool item_str_or_reply(yajl_val obj, const item_str_field *d, inv_item_fields *f,
                              http_response *res)
{
    assert(http_response_ok(res));
    yajl_val v = http_json_get(obj, d->name);
    if (v == NULL)
        return true;
    const char *s = YAJL_IS_NULL(v)                     ? ""
                    : YAJL_IS_STRING(v)                 ? v->u.string
                    : YAJL_IS_NUMBER(v) && d->number_ok ? v->u.number.r
                                                        : NULL;
    if (s == NULL) {
        reply_error_field(res, 422, d->name,
                          d->number_ok ? "must be a string, a number or null"
                                       : "must be a string or null");
        return false;
    }
    size_t len = strlen(s);
    if (len >= d->cap) {
        char msg[64];
        snprintf(msg, sizeof msg, "is too long (maximum is %zu characters)", d->cap - 1);
        reply_error_field(res, 422, d->name, msg);
        return false;
    }
    memcpy((char *)f + d->off, s, len + 1);
    f->mask |= d->mask;
    return true;
}

/* Reads the writable fields of obj into f (f->mask: those present). */
static bool item_fields_or_reply(yajl_val obj, inv_item_fields *f, http_response *res)
{
    assert(http_response_ok(res));
    bool bad = false;
    for (size_t i = 0; i < NELEMS(item_str_fields); i++)
        if (!item_str_or_reply(obj, &item_str_fields[i], f, res))
            return false;
    if (http_json_get_bool(obj, "tracked", &f->tracked, &bad))
        f->mask |= INV_ITEM_TRACKED;
    if (bad) {
        reply_error_field(res, 422, "tracked", "must be true or false");
        return false;
    }
    if (http_json_get_bool(obj, "requires_shipping", &f->requires_shipping, &bad))
        f->mask |= INV_ITEM_REQUIRES_SHIPPING;
    if (bad) {
        reply_error_field(res, 422, "requires_shipping", "must be true or false");
        return false;
    }
    return country_hs_codes_or_reply(obj, f, res);
}

/* The field a refused update names: the first written one with a rule
 * the engine checks (its INVALID does not say which). */
static const char *item_invalid_field(const inv_item_fields *f, const char **rule)
{
    assert(f != NULL && rule != NULL);
    for (size_t i = 0; i < NELEMS(item_str_fields); i++)
        if ((f->mask & item_str_fields[i].mask) && i > 0) {
            *rule = item_str_fields[i].rule;
            return item_str_fields[i].name;
        }
    *rule = "is invalid";
    return "inventory_item";
}

/* PUT inventory_items/{id}.json {"inventory_item":{...}}: updates the
 * fields present; id, created_at, updated_at, admin_graphql_api_id and
 * unknown fields are ignored. The item must exist (404 else). */
static void h_item_put(const http_request *req, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    assert(req->e != NULL && req->n_params == 2); /* the route: a tenant, its pattern's params */
    uint64_t id;
    inv_item it;
    if (!version_ok_or_reply(req, res) || !path_id_or_reply(req, 1, &id, res))
        return;
    yajl_val root = body_or_reply(req, res);
    if (root == NULL)
        return;
    yajl_val obj = http_json_get(root, "inventory_item");
    inv_item_fields f;
    memset(&f, 0, sizeof f);
    if (obj == NULL || !YAJL_IS_OBJECT(obj)) {
        reply_required(res, "inventory_item");
    } else if (item_fields_or_reply(obj, &f, res)) {
        int rc = inv_item_get(req->e, id, &it);
        /* an empty update (nothing writable given) answers the item as is */
        if (rc == INV_OK && f.mask != 0)
            rc = inv_item_put(req->e, id, &f);
        if (rc == INV_OK && f.mask != 0) {
            res->durable_at = inv_last_write_position();
            rc = inv_item_get(req->e, id, &it);
        }
        const char *rule;
        if (rc == INV_OK)
            reply_wrapped(res, 200, "inventory_item", write_item, &it);
        else if (rc == INV_EEXISTS) {
            reply_error_field(res, 422, "sku", "has already been taken");
        } else if (rc == INV_EINVALID) {
            const char *field = item_invalid_field(&f, &rule);
            reply_error_field(res, 422, field, rule);
        } else {
            reply_engine_error(res, rc);
        }
    }
    yajl_tree_free(root);
}

/* ---- inventory_levels --------------------------------------------------- */

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static bool id_in(const uint64_t *sorted, size_t n, uint64_t id)
{
    assert(sorted != NULL || n == 0);
    return n > 0 && bsearch(&id, sorted, n, sizeof *sorted, u64_cmp) != NULL;
}

static int entry_cmp(const void *a, const void *b)
{
    uint64_t x = ((const inv_level_entry *)a)->location;
    uint64_t y = ((const inv_level_entry *)b)->location;
    return (x > y) - (x < y);
}

/* Writes one listed level (read whole); false when it vanished meanwhile. */
static bool list_level_row(inv_engine *e, http_body *b, uint64_t item, uint64_t loc)
{
    assert(e != NULL && b != NULL && b->len <= b->cap);
    inv_level_full full;
    if (inv_level_get_full(e, item, loc, &full) != INV_OK)
        return false;
    write_level(b, item, loc, full.qty[INV_QTY_AVAILABLE], full.updated_at_ms);
    return true;
}

/* Levels of st->items (each item's by location ascending), filtered by
 * st->locs, up to limit rows; st is left where the next page starts. */
static int levels_by_item(inv_engine *e, http_body *b, page_state *st, size_t limit)
{
    assert(e != NULL && b != NULL && b->len <= b->cap);
    assert(limit >= 1 && limit <= SHOPIFY_LIMIT_MAX && st->n_items <= SHOPIFY_LEVEL_IDS_MAX);
    inv_level_entry *ent = inv_malloc(INV_LOCATIONS_MAX * sizeof *ent);
    if (ent == NULL)
        return INV_ENOMEM;
    size_t shown = 0;
    while (st->n_items > 0) {
        size_t n = 0;
        if (inv_level_list(e, st->items[0], ent, INV_LOCATIONS_MAX, &n) != INV_OK)
            n = 0; /* unknown item: nothing to list */
        n = n < INV_LOCATIONS_MAX ? n : INV_LOCATIONS_MAX;
        qsort(ent, n, sizeof *ent, entry_cmp);
        size_t k = 0;
        for (; k < n && shown < limit; k++) {
            uint64_t loc = ent[k].location;
            if ((st->has_after && loc <= st->after_loc) ||
                (st->n_locs && !id_in(st->locs, st->n_locs, loc)))
                continue;
            if (list_level_row(e, b, st->items[0], loc))
                shown++;
            st->has_after = true;
            st->after_loc = loc;
        }
        /* more of this item's levels to come? */
        bool more = false;
        for (; k < n && !more; k++)
            more = (!st->has_after || ent[k].location > st->after_loc) &&
                   (!st->n_locs || id_in(st->locs, st->n_locs, ent[k].location));
        if (more)
            break;
        memmove(st->items, st->items + 1, (st->n_items - 1) * sizeof st->items[0]);
        st->n_items--;
        st->has_after = false;
        if (shown == limit)
            break;
    }
    free(ent);
    return INV_OK;
}

/* Levels at st->locs over the engine's level scan, up to limit rows and
 * SHOPIFY_SCAN_ROUNDS_MAX engine pages; st->cursor 0 after: done. */
static int levels_by_location(inv_engine *e, http_body *b, page_state *st, size_t limit, bool *done)
{
    assert(e != NULL && b != NULL && b->len <= b->cap);
    assert(limit >= 1 && limit <= SHOPIFY_LIMIT_MAX && st->n_locs >= 1);
    inv_level_full_row *rows = inv_malloc(limit * sizeof *rows);
    if (rows == NULL)
        return INV_ENOMEM;
    size_t shown = 0;
    int rc = INV_OK;
    *done = false;
    for (size_t round = 0; round < SHOPIFY_SCAN_ROUNDS_MAX && shown < limit; round++) {
        size_t n = 0, want = limit - shown;
        uint64_t next = 0;
        rc = inv_level_list_page(e, NULL, st->cursor, want, rows, want, &n, &next);
        if (rc != INV_OK)
            break;
        for (size_t i = 0; i < n; i++) {
            if (!id_in(st->locs, st->n_locs, rows[i].location))
                continue;
            write_level(b, rows[i].item, rows[i].location, rows[i].level.qty[INV_QTY_AVAILABLE],
                        rows[i].level.updated_at_ms);
            shown++;
        }
        assert(shown <= limit); /* a page holds at most want rows */
        st->cursor = next;
        if (next == 0) {
            *done = true;
            break;
        }
    }
    free(rows);
    return rc;
}

/* GET inventory_levels.json?inventory_item_ids=&location_ids=[&limit=]
 * [&page_info=]: at least one filter (400 else); a Link rel="next" header
 * while more may follow. */
static void h_levels_list(const http_request *req, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    assert(req->e != NULL && req->n_params == 1); /* the route: a tenant, its pattern's params */
    static _Thread_local page_state st;
    size_t limit;
    bool ok, done;
    if (!version_ok_or_reply(req, res) || !query_limit_or_reply(req, &limit, res))
        return;
    if (!query_page_info(req, 'L', &st, &ok, res)) {
        memset(&st, 0, sizeof st);
        st.kind = 'L';
        if (!query_ids_or_reply(req, "inventory_item_ids", false, st.items, SHOPIFY_LEVEL_IDS_MAX,
                                &st.n_items, res) ||
            !query_ids_or_reply(req, "location_ids", false, st.locs, SHOPIFY_LEVEL_IDS_MAX,
                                &st.n_locs, res))
            return;
        if (st.n_items == 0 && st.n_locs == 0) {
            reply_required(res, "inventory_item_ids");
            return;
        }
    } else if (!ok) {
        return;
    }
    res->status = 200;
    http_json_obj_open(res->body);
    http_json_key(res->body, "inventory_levels");
    http_json_arr_open(res->body);
    int rc;
    if (st.n_items > 0) {
        rc = levels_by_item(req->e, res->body, &st, limit);
        done = st.n_items == 0;
    } else {
        rc = levels_by_location(req->e, res->body, &st, limit, &done);
    }
    http_json_arr_close(res->body);
    http_json_obj_close(res->body);
    if (rc != INV_OK)
        reply_engine_error(res, rc);
    else if (!done)
        link_next_or_reply(req, limit, &st, res);
}

/* Reads inventory_item_id and location_id of a level body. */
static bool level_ids_or_reply(yajl_val root, uint64_t *item, uint64_t *loc, http_response *res)
{
    assert(http_response_ok(res));
    return body_id_or_reply(root, "location_id", loc, res) &&
           body_id_or_reply(root, "inventory_item_id", item, res);
}

/* A level write's ENOTFOUND: 404 when the item or location is unknown,
 * 422 when both exist but the item is not stocked there. */
static void reply_level_missing(inv_engine *e, uint64_t item, uint64_t loc, http_response *res)
{
    assert(e != NULL && http_response_ok(res));
    inv_item it;
    inv_location l;
    if (inv_item_get(e, item, &it) != INV_OK || inv_location_get(e, loc, &l) != INV_OK)
        reply_not_found(res);
    else
        reply_error_list(res, 422, "Inventory item is not stocked at the location");
}

/* The answer of a level write that succeeded: {"inventory_level":{...}}. */
static void reply_level(const http_request *req, http_response *res, int status, uint64_t item,
                        uint64_t loc, int64_t available)
{
    assert(http_request_ok(req) && http_response_ok(res));
    inv_level_full full;
    int64_t at_ms = 0;
    if (inv_level_get_full(req->e, item, loc, &full) == INV_OK)
        at_ms = full.updated_at_ms; /* the time only; available is the write's */
    res->status = status;
    http_json_obj_open(res->body);
    http_json_key(res->body, "inventory_level");
    write_level(res->body, item, loc, available, at_ms);
    http_json_obj_close(res->body);
}

/* A level write's refusal (rc not OK), in Shopify's words. */
static void reply_level_refused(const http_request *req, http_response *res, int rc, uint64_t item,
                                uint64_t loc, const inv_level *now, int64_t delta)
{
    assert(http_request_ok(req) && http_response_ok(res));
    char msg[160];
    switch (rc) {
    case INV_ENOTFOUND:
        reply_level_missing(req->e, item, loc, res);
        return;
    case INV_EINSUFFICIENT:
        snprintf(msg, sizeof msg,
                 "would take available below what the level allows (available %lld, "
                 "adjustment %lld): nothing was changed",
                 (long long)now->available, (long long)delta);
        reply_error_field(res, 422, "available", msg);
        return;
    case INV_EINVALID:
        reply_error_list(res, 422, "The location is inactive or the quantity is out of range");
        return;
    default:
        reply_engine_error(res, rc);
        return;
    }
}

/* Shopify refuses to adjust an untracked item (whose stock counts
 * nothing: a floor-less decrement would take it below 0): 422. An unknown
 * item passes, for the write's own 404. */
static bool item_tracked_or_reply(inv_engine *e, uint64_t item, http_response *res)
{
    assert(e != NULL && http_response_ok(res));
    inv_item it;
    if (inv_item_get(e, item, &it) != INV_OK || it.fields.tracked)
        return true;
    reply_error_list(res, 422, "Inventory item does not have inventory tracking enabled");
    return false;
}

/* The three level writes share one shape: ids, maybe a quantity, one
 * engine call, the level or a refusal. */
typedef enum { LEVEL_ADJUST = 0, LEVEL_SET = 1, LEVEL_CONNECT = 2 } level_write_op;

static const char *const level_write_qty_key[] = {"available_adjustment", "available", NULL};

static void level_write(const http_request *req, http_response *res, level_write_op op)
{
    assert(http_request_ok(req) && http_response_ok(res));
    assert(op <= LEVEL_CONNECT);
    if (!version_ok_or_reply(req, res))
        return;
    yajl_val root = body_or_reply(req, res);
    const char *qty_key = level_write_qty_key[op];
    uint64_t item, loc;
    int64_t qty = 0;
    if (root != NULL && level_ids_or_reply(root, &item, &loc, res) &&
        (qty_key == NULL || body_qty_or_reply(root, qty_key, &qty, res))) {
        inv_level out = {0};
        if (op == LEVEL_ADJUST && !item_tracked_or_reply(req->e, item, res)) {
            yajl_tree_free(root);
            return;
        }
        int rc = op == LEVEL_ADJUST ? inv_level_adjust(req->e, item, loc, qty, INV_NO_FLOOR, &out)
                 : op == LEVEL_SET  ? inv_level_set(req->e, item, loc, qty, 0, &out)
                                    : inv_level_create(req->e, item, loc, 0, &out);
        if (rc == INV_OK) {
            res->durable_at = inv_last_write_position();
            reply_level(req, res, op == LEVEL_CONNECT ? 201 : 200, item, loc, out.available);
        } else if (rc == INV_EEXISTS && op == LEVEL_CONNECT) {
            reply_level(req, res, 200, item, loc, out.available);
        } else {
            reply_level_refused(req, res, rc, item, loc, &out, qty);
        }
    }
    yajl_tree_free(root);
}

/* POST inventory_levels/adjust.json {"location_id","inventory_item_id",
 * "available_adjustment"}: available += adjustment in one atomic step;
 * a decrement never goes below the level's policy floor (the engine's
 * floor-less adjust: 0 under DENY), else 422 and nothing changes. */
static void h_level_adjust(const http_request *req, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    assert(req->e != NULL && req->n_params == 1); /* the route: a tenant, its pattern's params */
    level_write(req, res, LEVEL_ADJUST);
}

/* POST inventory_levels/set.json {"location_id","inventory_item_id",
 * "available"}: sets available, connecting the item there when it was not
 * (disconnect_if_necessary is ignored: levels are not exclusive). */
static void h_level_set(const http_request *req, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    assert(req->e != NULL && req->n_params == 1); /* the route: a tenant, its pattern's params */
    level_write(req, res, LEVEL_SET);
}

/* POST inventory_levels/connect.json {"location_id","inventory_item_id"}:
 * creates the level with available 0 (201); an existing level answers 200
 * with its state, unchanged (relocate_if_necessary is ignored). */
static void h_level_connect(const http_request *req, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    assert(req->e != NULL && req->n_params == 1); /* the route: a tenant, its pattern's params */
    level_write(req, res, LEVEL_CONNECT);
}

/* DELETE inventory_levels.json?inventory_item_id=&location_id=: 204 with
 * no body; 422 while holds have units reserved or committed there. */
static void h_level_delete(const http_request *req, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    assert(req->e != NULL && req->n_params == 1); /* the route: a tenant, its pattern's params */
    char buf[24];
    size_t len = 0;
    uint64_t item, loc;
    if (!version_ok_or_reply(req, res))
        return;
    if (!http_query_get(req->query, "inventory_item_id", buf, sizeof buf, &len) ||
        !http_parse_id((http_str){buf, len}, &item)) {
        reply_required(res, "inventory_item_id");
        return;
    }
    if (!http_query_get(req->query, "location_id", buf, sizeof buf, &len) ||
        !http_parse_id((http_str){buf, len}, &loc)) {
        reply_required(res, "location_id");
        return;
    }
    int rc = inv_level_del(req->e, item, loc);
    if (rc == INV_OK) {
        res->status = 204;
        res->durable_at = inv_last_write_position();
    } else if (rc == INV_ECONFLICT) {
        reply_error_list(res, 422,
                         "The inventory level has units reserved or committed and cannot be "
                         "deleted");
    } else {
        reply_engine_error(res, rc);
    }
}

/* ---- locations ---------------------------------------------------------- */

/* GET locations.json: every location (at most INV_LOCATIONS_MAX), by id. */
static void h_locations_list(const http_request *req, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    assert(req->e != NULL && req->n_params == 1); /* the route: a tenant, its pattern's params */
    if (!version_ok_or_reply(req, res))
        return;
    /* a page may hold a few more than count: room for one more page */
    size_t cap = INV_LOCATIONS_MAX + INV_LIST_COUNT_MAX;
    uint64_t *ids = inv_malloc(cap * sizeof *ids);
    if (ids == NULL) {
        reply_engine_error(res, INV_ENOMEM);
        return;
    }
    size_t n = 0;
    uint64_t cursor = 0;
    int rc = INV_OK;
    do {
        size_t got = 0;
        size_t room = cap - n < INV_LIST_COUNT_MAX ? cap - n : INV_LIST_COUNT_MAX;
        rc = inv_location_list(req->e, cursor, room, ids + n, cap - n, &got, &cursor);
        n += got;
    } while (rc == INV_OK && cursor != 0 && n + INV_LIST_COUNT_MAX <= cap);
    if (rc != INV_OK) {
        free(ids);
        reply_engine_error(res, rc);
        return;
    }
    qsort(ids, n, sizeof *ids, u64_cmp);
    inv_location l;
    res->status = 200;
    http_json_obj_open(res->body);
    http_json_key(res->body, "locations");
    http_json_arr_open(res->body);
    for (size_t i = 0; i < n; i++)
        if ((i == 0 || ids[i] != ids[i - 1]) && inv_location_get(req->e, ids[i], &l) == INV_OK)
            write_location(res->body, &l);
    http_json_arr_close(res->body);
    http_json_obj_close(res->body);
    free(ids);
}

static void h_location_get(const http_request *req, http_response *res)
{
    assert(http_request_ok(req) && http_response_ok(res));
    assert(req->e != NULL && req->n_params == 2); /* the route: a tenant, its pattern's params */
    uint64_t id;
    inv_location l;
    if (!version_ok_or_reply(req, res) || !path_id_or_reply(req, 1, &id, res))
        return;
    int rc = inv_location_get(req->e, id, &l);
    if (rc == INV_OK)
        reply_wrapped(res, 200, "location", write_location, &l);
    else
        reply_engine_error(res, rc);
}

/* ---- the routing table -------------------------------------------------- */

#define SHOPIFY(m, p, fn)                                      \
    {                                                          \
        m, "/admin/api/{version}/" p, HTTP_DIALECT_SHOPIFY, fn \
    }

const http_route http_shopify_routes[] = {
    SHOPIFY(HTTP_GET, "inventory_items.json", h_items_list),
    SHOPIFY(HTTP_GET, "inventory_items/{id}.json", h_item_get),
    SHOPIFY(HTTP_PUT, "inventory_items/{id}.json", h_item_put),
    SHOPIFY(HTTP_GET, "inventory_levels.json", h_levels_list),
    SHOPIFY(HTTP_DELETE, "inventory_levels.json", h_level_delete),
    SHOPIFY(HTTP_POST, "inventory_levels/adjust.json", h_level_adjust),
    SHOPIFY(HTTP_POST, "inventory_levels/set.json", h_level_set),
    SHOPIFY(HTTP_POST, "inventory_levels/connect.json", h_level_connect),
    SHOPIFY(HTTP_GET, "locations.json", h_locations_list),
    SHOPIFY(HTTP_GET, "locations/{id}.json", h_location_get),
};

const size_t http_shopify_routes_n = NELEMS(http_shopify_routes);
