/*
 * bench_http_json.c — JSON for the HTTP face. Request bodies:
 * http_json_parse (yajl's parser through its callbacks building yajl's
 * tree, three typed reads, free) against yajl_tree_parse and jansson's
 * json_loadb (strict by default) doing the same reads, on two typical
 * bodies: a Shopify adjust.json and a Shoplazza inventory_levels/set with
 * a few more fields. Responses: a Shopify inventory_level answer through
 * http_json.c's writer against the same calls through yajl_gen. One line
 * per body: ns per body.
 *
 * BENCH_HTTP_JSON_N (default 1000000) bodies each.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "bench_util.h"
#include "server/http_json.h"

static const char *const BODIES[][2] = {
    {"shopify adjust.json", "{\"location_id\":905684977,\"inventory_item_id\":808950810,"
                            "\"available_adjustment\":5}"},
    {"shoplazza levels/set",
     "{\"inventory_item_id\":\"1234567890123456789\",\"location_id\":"
     "\"9876543210987654321\",\"available\":25,\"reason\":\"restock\","
     "\"note\":\"cycle count, aisle 7\",\"disconnect_if_necessary\":false}"},
};

static volatile uint64_t g_sink; /* keeps the reads from being optimised away */

/* Parses s n times with ours (tree_parse false) or yajl_tree_parse. */
static double bench_tree(const char *s, uint64_t n, bool tree_parse)
{
    http_str body = {s, strlen(s)};
    char err[128];
    uint64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < n; i++) {
        yajl_val v = tree_parse ? yajl_tree_parse(s, err, sizeof err)
                                : http_json_parse(&body, err, sizeof err);
        uint64_t a = 0, b = 0;
        int64_t q = 0;
        bool bad = false;
        http_json_get_u64(v, "location_id", &a, &bad);
        http_json_get_u64(v, "inventory_item_id", &b, &bad);
        http_json_get_i64(v, "available", &q, &bad);
        g_sink += a + b + (uint64_t)q + bad;
        yajl_tree_free(v);
    }
    return (double)(bench_now_ns() - t0) / (double)n;
}

static uint64_t jansson_u64(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (json_is_integer(v))
        return (uint64_t)json_integer_value(v); /* json_int_t: ids above 2^63 are lost */
    if (json_is_string(v))
        return strtoull(json_string_value(v), NULL, 10);
    return 0;
}

static double bench_jansson(const char *s, uint64_t n)
{
    size_t len = strlen(s);
    uint64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < n; i++) {
        json_error_t err;
        json_t *o = json_loadb(s, len, JSON_REJECT_DUPLICATES, &err);
        g_sink += jansson_u64(o, "location_id") + jansson_u64(o, "inventory_item_id") +
                  jansson_u64(o, "available");
        json_decref(o);
    }
    return (double)(bench_now_ns() - t0) / (double)n;
}

/* One Shopify inventory_level answer through our writer. */
static void answer_ours(http_body *b)
{
    http_body_reset(b);
    http_json_obj_open(b);
    http_json_key(b, "inventory_level");
    http_json_obj_open(b);
    http_json_key(b, "inventory_item_id");
    http_json_u64(b, 808950810);
    http_json_key(b, "location_id");
    http_json_u64(b, 905684977);
    http_json_key(b, "available");
    http_json_i64(b, 5000001);
    http_json_key(b, "updated_at");
    http_json_time_iso(b, 1796750455123);
    http_json_key(b, "admin_graphql_api_id");
    http_json_cstr(b, "gid://shopify/InventoryLevel/905684977?inventory_item_id=808950810");
    http_json_obj_close(b);
    http_json_obj_close(b);
}

/* The same answer through yajl_gen (strings and numbers as text). */
static void answer_yajl(yajl_gen g)
{
    static const char *const keys[] = {"inventory_item_id", "location_id", "available",
                                       "updated_at", "admin_graphql_api_id"};
    static const char *const vals[] = {"808950810", "905684977", "5000001"};
    yajl_gen_reset(g, NULL);
    yajl_gen_map_open(g);
    yajl_gen_string(g, (const unsigned char *)"inventory_level", 15);
    yajl_gen_map_open(g);
    for (size_t k = 0; k < 3; k++) {
        yajl_gen_string(g, (const unsigned char *)keys[k], strlen(keys[k]));
        yajl_gen_number(g, vals[k], strlen(vals[k]));
    }
    yajl_gen_string(g, (const unsigned char *)keys[3], strlen(keys[3]));
    yajl_gen_string(g, (const unsigned char *)"2026-12-08T17:20:55Z", 20);
    yajl_gen_string(g, (const unsigned char *)keys[4], strlen(keys[4]));
    const char *gid = "gid://shopify/InventoryLevel/905684977?inventory_item_id=808950810";
    yajl_gen_string(g, (const unsigned char *)gid, strlen(gid));
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);
}

static void sink_print(void *ctx, const char *s, size_t n)
{
    (void)ctx;
    g_sink += n + (uint64_t)s[0];
}

static double bench_writer(uint64_t n, bool yajl)
{
    http_body b;
    yajl_gen g = yajl_gen_alloc(NULL);
    if (http_body_init(&b) != INV_OK || g == NULL ||
        !yajl_gen_config(g, yajl_gen_print_callback, sink_print, NULL))
        return -1;
    uint64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < n; i++) {
        if (yajl)
            answer_yajl(g);
        else
            answer_ours(&b);
        g_sink += b.len;
    }
    double ns = (double)(bench_now_ns() - t0) / (double)n;
    yajl_gen_free(g);
    http_body_free(&b);
    return ns;
}

int main(void)
{
    uint64_t n = bench_env_u64("BENCH_HTTP_JSON_N", 1000000);
    printf("request-body JSON parse + 3 reads + free, %llu bodies each\n", (unsigned long long)n);
    for (size_t b = 0; b < sizeof BODIES / sizeof BODIES[0]; b++) {
        double o = bench_tree(BODIES[b][1], n, false), y = bench_tree(BODIES[b][1], n, true);
        double j = bench_jansson(BODIES[b][1], n);
        printf("  %-22s %3zu bytes  http_json_parse %5.0f ns  yajl_tree_parse %5.0f ns  jansson "
               "%5.0f ns\n",
               BODIES[b][0], strlen(BODIES[b][1]), o, y, j);
    }
    printf("response JSON (a Shopify inventory_level answer), %llu each\n", (unsigned long long)n);
    double w = bench_writer(n, false), g = bench_writer(n, true);
    printf("  http_json writer %5.0f ns  yajl_gen (no time formatting) %5.0f ns\n", w, g);
    return 0;
}
