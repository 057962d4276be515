/*
 * http_dialects_pending.c — TEMPORARY (branch http-core only): empty route
 * tables for the Shopify dialect (Shoplazza's: http_shoplazza.c, merged), so invcored links before
 * http_shoplazza.c and http_shopify.c are merged. The lead deletes this
 * file when merging them (their tables replace these definitions).
 */
#include "server/http_route.h"

/* C has no empty array: one zeroed entry, and a count of 0 */
const http_route http_shopify_routes[1] = {{0}};
const size_t http_shopify_routes_n = 0;
