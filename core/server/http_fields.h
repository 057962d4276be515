/*
 * http_fields.h — item fields that several HTTP dialects carry in the same
 * JSON shape, converted once: the seeds' country_harmonized_system_codes
 * array <-> the engine's country_hs_codes text (invcore.h,
 * INV_COUNTRY_HS_CODES_MAX), and Shopify's admin_graphql_api_id.
 *
 * Invariants: a read either fills the whole text or reports what is wrong
 * (and the caller writes nothing); a write emits exactly the pairs the
 * engine stored, in their order.
 */
#ifndef INV_SERVER_HTTP_FIELDS_H
#define INV_SERVER_HTTP_FIELDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "invcore.h"
#include "server/http_json.h"

#define HTTP_COUNTRY_HS_KEY "country_harmonized_system_codes"
#define HTTP_GID_BYTES_MAX 96 /* "gid://shopify/InventoryLevel/<u64>..." */
#define HTTP_FIELD_WHY_MAX 192 /* bytes of a refusal's reason */

/* "admin_graphql_api_id": "gid://shopify/<kind>/<id>" (Shopify's global
 * id, derived: the connector's and Shopify's objects carry it). */
void http_gid_write(http_body *b, const char *kind, uint64_t id);
/* A level's: "gid://shopify/InventoryLevel/<loc>?inventory_item_id=<item>". */
void http_level_gid_write(http_body *b, uint64_t item, uint64_t loc);

/* key: [{"country_code":"CA","harmonized_system_code":"1234567890"}, ...]
 * from the stored "CA:1234567890,..." ("": []). */
void http_country_hs_write(http_body *b, const char *text);

/* v (the key's value, not NULL): null or [] clears; an array of at most
 * INV_COUNTRY_HS_PAIRS_MAX {"country_code","harmonized_system_code"}
 * objects (two upper-case letters; 6 to INV_HS_CODE_MAX digits as a
 * string, or an integer of those digits; each country once) fills text
 * (INV_COUNTRY_HS_CODES_MAX + 1 bytes). false with why (a sentence naming
 * the key, the entry and the value) otherwise. */
bool http_country_hs_read(yajl_val v, char *text, char *why, size_t why_cap);

#endif /* INV_SERVER_HTTP_FIELDS_H */
