/*
 * bench_http_json.c — request-body JSON for the HTTP face: yajl's tree
 * parser as http_json_parse uses it (pre-scan, copy, tree, three typed
 * reads, free) against jansson's json_loadb (strict by default: no
 * comments, no trailing bytes) doing the same reads, on two typical
 * bodies: a Shopify adjust.json and a Shoplazza inventory_levels/set with
 * a few more fields. One line per parser and body: ns per body.
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

static double bench_yajl(const char *s, uint64_t n)
{
    http_str body = {s, strlen(s)};
    char err[128];
    uint64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < n; i++) {
        yajl_val v = http_json_parse(&body, err, sizeof err);
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

int main(void)
{
    uint64_t n = bench_env_u64("BENCH_HTTP_JSON_N", 1000000);
    printf("request-body JSON parse + 3 reads + free, %llu bodies each\n", (unsigned long long)n);
    for (size_t b = 0; b < sizeof BODIES / sizeof BODIES[0]; b++) {
        double y = bench_yajl(BODIES[b][1], n), j = bench_jansson(BODIES[b][1], n);
        printf("  %-22s %3zu bytes  yajl %6.0f ns  jansson %6.0f ns  (yajl/jansson %.2f)\n",
               BODIES[b][0], strlen(BODIES[b][1]), y, j, y / j);
    }
    return 0;
}
