/*
 * http_fields.c — the dialects' shared item fields (http_fields.h): the
 * country_harmonized_system_codes array and the engine's "CC:code,..." text.
 * The engine checks the text again when it is written; the checks here are
 * for the dialect's message, which names the entry and the value.
 */
#include "server/http_fields.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#define HS_CODE_DIGITS_MIN 6 /* the engine's rule: 6 .. INV_HS_CODE_MAX digits */
#define WHY_QUOTE_MAX 40 /* bytes of a bad value quoted in a reason */

void http_gid_write(http_body *b, const char *kind, uint64_t id)
{
    char gid[HTTP_GID_BYTES_MAX];
    assert(b != NULL && kind != NULL);
    int n = snprintf(gid, sizeof gid, "gid://shopify/%s/%llu", kind, (unsigned long long)id);
    assert(n > 0 && (size_t)n < sizeof gid); /* kinds are short literals */
    http_json_kv_str(b, "admin_graphql_api_id", gid);
}

void http_level_gid_write(http_body *b, uint64_t item, uint64_t loc)
{
    char gid[HTTP_GID_BYTES_MAX];
    assert(b != NULL);
    int n = snprintf(gid, sizeof gid, "gid://shopify/InventoryLevel/%llu?inventory_item_id=%llu",
                     (unsigned long long)loc, (unsigned long long)item);
    assert(n > 0 && (size_t)n < sizeof gid); /* two u64s fit */
    http_json_kv_str(b, "admin_graphql_api_id", gid);
}

void http_country_hs_write(http_body *b, const char *text)
{
    assert(b != NULL && text != NULL);
    http_json_key(b, HTTP_COUNTRY_HS_KEY);
    http_json_arr_open(b);
    for (const char *p = text; *p != '\0';) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        assert(len > 3 && p[2] == ':'); /* "CC:code", as the engine checked it */
        if (len > 3 && p[2] == ':') {
            http_json_obj_open(b);
            http_json_key(b, "country_code");
            http_json_str(b, p, 2);
            http_json_key(b, "harmonized_system_code");
            http_json_str(b, p + 3, len - 3);
            http_json_obj_close(b);
        }
        p += len + (comma != NULL);
    }
    http_json_arr_close(b);
}

static bool country_ok(http_str s)
{
    assert(s.p != NULL || s.len == 0);
    return s.len == 2 && s.p[0] >= 'A' && s.p[0] <= 'Z' && s.p[1] >= 'A' && s.p[1] <= 'Z';
}

static bool hs_code_ok(http_str s)
{
    assert(s.p != NULL || s.len == 0);
    if (s.len < HS_CODE_DIGITS_MIN || s.len > INV_HS_CODE_MAX)
        return false;
    for (size_t i = 0; i < s.len; i++)
        if (s.p[i] < '0' || s.p[i] > '9')
            return false;
    return true;
}

/* Entry i appended to text (*len bytes so far) as "CC:code"; false with
 * why when it does not read or its country is already in text. */
static bool pair_read(yajl_val pair, size_t i, char *text, size_t *len, char *why, size_t cap)
{
    http_str cc = {NULL, 0}, hs = {NULL, 0};
    bool bad = false;
    assert(pair != NULL && text != NULL && len != NULL && why != NULL && cap > 0);
    assert(*len <= INV_COUNTRY_HS_CODES_MAX && i < INV_COUNTRY_HS_PAIRS_MAX);
    yajl_val code = YAJL_IS_OBJECT(pair) ? http_json_get(pair, "harmonized_system_code") : NULL;
    if (code != NULL && YAJL_IS_INTEGER(code)) /* 620342: its digits (a sign fails below) */
        hs = (http_str){code->u.number.r, strlen(code->u.number.r)};
    else if (code != NULL && !http_json_get_str(pair, "harmonized_system_code", &hs, &bad))
        bad = true;
    if (!YAJL_IS_OBJECT(pair) || !http_json_get_str(pair, "country_code", &cc, &bad) ||
        code == NULL || bad) {
        snprintf(why, cap,
                 HTTP_COUNTRY_HS_KEY "[%zu] must be an object with the strings country_code "
                                     "and harmonized_system_code (or its digits as a number)",
                 i);
        return false;
    }
    if (!country_ok(cc)) {
        snprintf(why, cap,
                 HTTP_COUNTRY_HS_KEY "[%zu].country_code must be two upper-case letters "
                                     "(ISO 3166-1 alpha-2): got \"%.*s\"",
                 i, (int)(cc.len < WHY_QUOTE_MAX ? cc.len : WHY_QUOTE_MAX), cc.p);
        return false;
    }
    if (!hs_code_ok(hs)) {
        snprintf(why, cap,
                 HTTP_COUNTRY_HS_KEY "[%zu].harmonized_system_code must be 6 to 16 digits: "
                                     "got \"%.*s\"",
                 i, (int)(hs.len < WHY_QUOTE_MAX ? hs.len : WHY_QUOTE_MAX), hs.p);
        return false;
    }
    /* text is "CC:code,CC:code": each pair starts it or follows a ',' */
    for (const char *at = text; *len > 0 && at != NULL;
         at = strchr(at, ','), at = at ? at + 1 : NULL)
        if (memcmp(at, cc.p, INV_COUNTRY_CODE_MAX) == 0) {
            snprintf(why, cap, HTTP_COUNTRY_HS_KEY ": country %.2s appears twice", cc.p);
            return false;
        }
    int n = snprintf(text + *len, INV_COUNTRY_HS_CODES_MAX + 1 - *len, "%s%.2s:%.*s",
                     *len ? "," : "", cc.p, (int)hs.len, hs.p);
    assert(n > 0 && *len + (size_t)n <= INV_COUNTRY_HS_CODES_MAX); /* 12 pairs fit */
    *len += (size_t)n;
    return true;
}

bool http_country_hs_read(yajl_val v, char *text, char *why, size_t why_cap)
{
    assert(v != NULL && text != NULL && why != NULL && why_cap > 0);
    size_t len = 0;
    text[0] = '\0';
    if (!YAJL_IS_NULL(v) && !YAJL_IS_ARRAY(v)) {
        snprintf(why, why_cap, HTTP_COUNTRY_HS_KEY " must be an array or null");
        return false;
    }
    size_t n = YAJL_IS_ARRAY(v) ? v->u.array.len : 0;
    if (n > INV_COUNTRY_HS_PAIRS_MAX) {
        snprintf(why, why_cap, HTTP_COUNTRY_HS_KEY " has %zu pairs, at most %d", n,
                 INV_COUNTRY_HS_PAIRS_MAX);
        return false;
    }
    for (size_t i = 0; i < n; i++)
        if (!pair_read(v->u.array.values[i], i, text, &len, why, why_cap)) {
            text[0] = '\0';
            return false;
        }
    assert(strlen(text) == len && len <= INV_COUNTRY_HS_CODES_MAX);
    return true;
}
