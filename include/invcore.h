/*
 * invcore.h — the whole public API of invcore, the in-memory inventory core.
 *
 * An engine keeps locations, inventory items and the stock level of every
 * (item, location) pair, plus expiring holds (reservations). Every function
 * here is safe to call from any number of threads at once; reads and level
 * changes take no lock. Functions return INV_OK (0) or a negative INV_E*
 * code; out-parameters are written only on INV_OK unless said otherwise.
 *
 * Ids are plain uint64_t and every value is valid, 0 and UINT64_MAX included.
 * Quantities are int64_t bounded by INV_QTY_MAX in absolute value.
 * A level's revision is >= 1 once it exists and strictly increases on every
 * change; a refused change leaves it as it was. Its step is unspecified.
 */
#ifndef INV_INVCORE_H
#define INV_INVCORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define INVCORE_VERSION "0.1.0"

/* ---- errors: one list generates the codes and their messages ---------- */

#define INV_ERRNO_MAP(X)                                                  \
    X(ENOTFOUND, -1, "NOTFOUND", "no such item, location, level or hold") \
    X(EEXISTS, -2, "EXISTS", "already exists")                            \
    X(ECONFLICT, -3, "CONFLICT", "revision or hold lines do not match")   \
    X(EINSUFFICIENT, -4, "INSUFFICIENT", "not enough available stock")    \
    X(EINVALID, -5, "INVALID", "invalid argument")                        \
    X(ELIMIT, -6, "LIMIT", "a limit was exceeded")                        \
    X(ENOMEM, -7, "NOMEM", "out of memory")                               \
    X(EIO, -8, "IO", "journal I/O failed; writes are refused")            \
    X(EBUSY, -9, "BUSY", "in use: live holds or references remain")

enum {
    INV_OK = 0,
#define INV_ERRNO_ENUM(name, value, code, msg) INV_##name = (value),
    INV_ERRNO_MAP(INV_ERRNO_ENUM)
#undef INV_ERRNO_ENUM
};

/* A human-readable message for rc ("ok" for INV_OK, "unknown error" else). */
const char *inv_strerror(int rc);
/* The protocol error code for rc: "NOTFOUND", "CONFLICT", ... ("ERR" else). */
const char *inv_errcode(int rc);

/* ---- limits (named, checked at every entry point) --------------------- */

#define INV_QTY_MAX 1000000000LL /* |qty|, |delta|, |available| */
#define INV_NO_FLOOR INT64_MIN /* adjust without a floor */
#define INV_SKU_MAX 255 /* bytes, without the NUL */
#define INV_STR_MAX 255 /* a location's text fields */
#define INV_VARIANT_MAX 64 /* variant / product ids */
#define INV_COST_MAX 32 /* decimal text, e.g. "25.00" */
#define INV_HS_CODE_MAX 16 /* harmonized system code */
/* An item's country-specific HS codes, as text: "CC:code" pairs joined by
 * ',' (CC an ISO 3166-1 alpha-2 code, each country once, code 6..16
 * digits), e.g. "CA:1234567890,US:620342"; "" for none. */
#define INV_COUNTRY_HS_CODES_MAX 255 /* bytes */
#define INV_COUNTRY_HS_PAIRS_MAX 12 /* pairs: 12 of the longest fit 255 bytes */
#define INV_COUNTRY_CODE_MAX 2 /* ISO 3166-1 alpha-2 */
#define INV_PROVINCE_CODE_MAX 8
#define INV_HOLD_ID_MAX 64 /* bytes of a client-chosen hold id */
#define INV_HOLD_LINES_MAX 64 /* lines in one hold */
#define INV_HOLD_TTL_MS_MAX (7ULL * 24 * 3600 * 1000) /* a week */
#define INV_LOCATIONS_MAX 16384 /* per-item level scans are O(locations) */
#define INV_LIST_COUNT_MAX 1000 /* entries in one listing page */
#define INV_MGET_MAX 250 /* ids in one bulk item read */
#define INV_PRODUCT_ITEMS_MAX 1000 /* items (variants) under one product */
#define INV_REQUEST_ID_MAX 64 /* bytes of an idempotency request id */
#define INV_REF_MAX 256 /* bytes of a change's reference (a URI) */
#define INV_BUYER_ID_MAX 64 /* bytes of a hold's buyer id */
#define INV_ORDER_REF_MAX 256 /* bytes of a hold's order reference */

/* ---- engine ----------------------------------------------------------- */

typedef struct inv_engine inv_engine;

typedef enum {
    INV_FSYNC_ALWAYS = 0, /* acknowledge after fdatasync */
    INV_FSYNC_INTERVAL = 1, /* fdatasync every fsync_interval_ms */
    INV_FSYNC_NONE = 2 /* leave it to the kernel */
} inv_fsync_policy;

typedef struct {
    /* Capacity hints: a load of this many entries never grows the table.
     * 0 picks a small default; tables grow as needed without stopping
     * readers or writers. */
    size_t levels_capacity;
    size_t items_capacity;
    size_t locations_capacity;
    size_t holds_capacity;
    /* Durability: NULL keeps the engine purely in memory. */
    const char *data_dir;
    inv_fsync_policy fsync_policy;
    uint32_t fsync_interval_ms; /* 0: default 10 */
    /* false: with fsync_policy ALWAYS a write call returns only once its
     * change is durable. true: it returns once applied and the caller waits
     * itself (inv_last_write_position + inv_durable_fd / inv_wait_durable),
     * as the server does so that its event loops never block. */
    bool defer_durability;
    /* Snapshot when the journal since the last one exceeds this many bytes;
     * 0: default (INV_SNAPSHOT_BYTES_DEFAULT). */
    uint64_t snapshot_journal_bytes;
    /* Recovery: cut a corrupt record and everything after it instead of
     * refusing to open. */
    bool repair;
    /* Hold expiry sweep period; 0: default (INV_SWEEP_INTERVAL_MS_DEFAULT). */
    uint32_t sweep_interval_ms;
    /* Idempotency: request ids are remembered this long (0: default
     * INV_REQUEST_ID_RETENTION_MS_DEFAULT) and at most this many (0:
     * default INV_REQUEST_IDS_MAX_DEFAULT; beyond it the oldest are
     * forgotten first). */
    uint64_t request_id_retention_ms;
    size_t request_ids_max;
    /* Per-buyer hold limits count units within this window (0: default
     * INV_BUYER_WINDOW_MS_DEFAULT). */
    uint64_t buyer_window_ms;
    /* History (the change feed, inv_feed_open): journal segments are kept
     * this long after their last record (0: default
     * INV_HISTORY_RETENTION_MS_DEFAULT) and, when history_retention_bytes
     * is not 0, only while the retained segments total at most that many
     * bytes (the oldest go first). A snapshot deletes only segments outside
     * retention. */
    uint64_t history_retention_ms;
    uint64_t history_retention_bytes;
    /* Replication (docs/REPLICATION.md): open as a replica of a leader
     * whose records arrive through inv_repl_apply. Needs data_dir. The
     * engine's own writes are refused (INV_EIO) and it expires nothing
     * until inv_repl_promote. */
    bool replica;
} inv_config;

#define INV_HISTORY_RETENTION_MS_DEFAULT (168ULL * 3600 * 1000) /* a week */

#define INV_REQUEST_ID_RETENTION_MS_DEFAULT (24ULL * 3600 * 1000)
#define INV_REQUEST_IDS_MAX_DEFAULT (1u << 20)
#define INV_BUYER_WINDOW_MS_DEFAULT (24ULL * 3600 * 1000)

#define INV_FSYNC_INTERVAL_MS_DEFAULT 10
#define INV_SNAPSHOT_BYTES_DEFAULT (256ULL << 20)

#define INV_SWEEP_INTERVAL_MS_DEFAULT 10

/* cfg NULL: in memory, default capacities. *out is NULL on failure. With a
 * data_dir: recovers it (a corrupt journal: INV_EINVALID, the file and
 * offset on stderr, unless cfg->repair), and holds it exclusively until
 * inv_close (another engine on it: INV_EEXISTS). */
int inv_open(inv_engine **out, const inv_config *cfg);
/* No other call on e may run during or after inv_close. NULL is a no-op. */
void inv_close(inv_engine *e);

/* Lets memory retired by earlier calls of this thread be reclaimed.
 * Optional: every call already ends with a quiescent point. e is not used
 * (reclamation is process-wide) and may be NULL. */
void inv_quiesce(inv_engine *e);

/* ---- locations -------------------------------------------------------- */

enum {
    INV_LOC_NAME = 1u << 0,
    INV_LOC_ADDRESS1 = 1u << 1,
    INV_LOC_ADDRESS2 = 1u << 2,
    INV_LOC_CITY = 1u << 3,
    INV_LOC_PROVINCE = 1u << 4,
    INV_LOC_PROVINCE_CODE = 1u << 5,
    INV_LOC_COUNTRY = 1u << 6,
    INV_LOC_COUNTRY_CODE = 1u << 7,
    INV_LOC_ZIP = 1u << 8,
    INV_LOC_PHONE = 1u << 9,
    INV_LOC_ACTIVE = 1u << 10,
    INV_LOC_PRIORITY = 1u << 11,
    INV_LOC_ALL = (1u << 12) - 1
};

typedef struct {
    unsigned mask; /* which fields to write (INV_LOC_*); 0 means all */
    char name[INV_STR_MAX + 1];
    char address1[INV_STR_MAX + 1];
    char address2[INV_STR_MAX + 1];
    char city[INV_STR_MAX + 1];
    char province[INV_STR_MAX + 1];
    char province_code[INV_PROVINCE_CODE_MAX + 1];
    char country[INV_STR_MAX + 1];
    char country_code[INV_COUNTRY_CODE_MAX + 1];
    char zip[INV_STR_MAX + 1];
    char phone[INV_STR_MAX + 1];
    bool active; /* default true */
    int32_t priority; /* lower first; default 0 */
} inv_location_fields;

typedef struct {
    uint64_t id;
    inv_location_fields fields; /* mask is INV_LOC_ALL */
    bool is_default;
    int64_t created_at_ms, updated_at_ms; /* Unix time */
} inv_location;

/* Creates or updates (only the masked fields). The first location created
 * becomes the default. Strings must be NUL-terminated within their arrays. */
int inv_location_put(inv_engine *e, uint64_t loc, const inv_location_fields *f);
/* As inv_location_put, only if loc does not exist: INV_EEXISTS (nothing
 * changes) when it does; of concurrent creators exactly one succeeds. */
int inv_location_create(inv_engine *e, uint64_t loc, const inv_location_fields *f);
int inv_location_get(inv_engine *e, uint64_t loc, inv_location *out);
int inv_location_default(inv_engine *e, uint64_t *loc_out); /* NOTFOUND: none */
int inv_location_set_default(inv_engine *e, uint64_t loc);

/* ---- inventory items -------------------------------------------------- */

enum {
    INV_ITEM_SKU = 1u << 0,
    INV_ITEM_TRACKED = 1u << 1,
    INV_ITEM_COST = 1u << 2,
    INV_ITEM_REQUIRES_SHIPPING = 1u << 3,
    INV_ITEM_COUNTRY_OF_ORIGIN = 1u << 4,
    INV_ITEM_PROVINCE_OF_ORIGIN = 1u << 5,
    INV_ITEM_HS_CODE = 1u << 6,
    INV_ITEM_VARIANT = 1u << 7,
    INV_ITEM_PRODUCT = 1u << 8,
    INV_ITEM_COUNTRY_HS_CODES = 1u << 9,
    INV_ITEM_ALL = (1u << 10) - 1
};

typedef struct {
    unsigned mask; /* which fields to write (INV_ITEM_*); 0: all */
    char sku[INV_SKU_MAX + 1]; /* unique when not empty */
    bool tracked; /* default true; untracked: always available */
    char cost[INV_COST_MAX + 1]; /* decimal text: -?digits(.digits{1,6})? or "" */
    bool requires_shipping; /* default true */
    char country_code_of_origin[INV_COUNTRY_CODE_MAX + 1];
    char province_code_of_origin[INV_PROVINCE_CODE_MAX + 1];
    char harmonized_system_code[INV_HS_CODE_MAX + 1]; /* digits or "" */
    char variant[INV_VARIANT_MAX + 1]; /* unique when not empty (variant<->item 1:1) */
    char product[INV_VARIANT_MAX + 1]; /* a product groups its items */
    char country_hs_codes[INV_COUNTRY_HS_CODES_MAX + 1]; /* INV_COUNTRY_HS_CODES_MAX's syntax */
} inv_item_fields;

typedef struct {
    uint64_t id;
    inv_item_fields fields; /* mask is INV_ITEM_ALL */
    int64_t created_at_ms, updated_at_ms;
} inv_item;

/* Creates or updates. A SKU or variant taken by another item: INV_EEXISTS. */
int inv_item_put(inv_engine *e, uint64_t item, const inv_item_fields *f);
/* As inv_item_put, only if the item does not exist: INV_EEXISTS (nothing
 * changes) when it does. The check and the creation are one decision (the
 * CAS that publishes the record): of concurrent creators of one id exactly
 * one succeeds. A SKU or variant taken by another item: INV_EEXISTS too. */
int inv_item_create(inv_engine *e, uint64_t item, const inv_item_fields *f);
int inv_item_get(inv_engine *e, uint64_t item, inv_item *out);
/* Deletes the item and all its levels. INV_ECONFLICT (nothing deleted)
 * while live holds have units reserved on any of its levels. */
int inv_item_del(inv_engine *e, uint64_t item);
int inv_item_by_sku(inv_engine *e, const char *sku, uint64_t *item_out);
int inv_item_by_variant(inv_engine *e, const char *variant, uint64_t *item_out);

/* Cursor listing, Redis SCAN style: start with cursor 0, pass back
 * *next_cursor until it is 0. Entries present for the whole scan are
 * returned exactly once; the order is unspecified. count <= INV_LIST_COUNT_MAX
 * (a page may hold fewer, or a few more, than count: up to ids_cap). */
int inv_item_list(inv_engine *e, uint64_t cursor, size_t count, uint64_t *ids, size_t ids_cap,
                  size_t *n_out, uint64_t *next_cursor);
int inv_location_list(inv_engine *e, uint64_t cursor, size_t count, uint64_t *ids, size_t ids_cap,
                      size_t *n_out, uint64_t *next_cursor);

/* Items of a product, up to cap; *n_out is the full count (LIMIT if > cap). */
int inv_product_items(inv_engine *e, const char *product, uint64_t *items, size_t cap,
                      size_t *n_out);

/* ---- levels ----------------------------------------------------------- */

typedef struct {
    int64_t available, reserved;
    uint64_t revision;
} inv_level;

/* ---- named quantities (Shopify's meanings) ----------------------------- */

typedef enum {
    INV_QTY_AVAILABLE = 0, /* can be sold or held */
    INV_QTY_RESERVED = 1, /* held by live holds */
    INV_QTY_COMMITTED = 2, /* sold (a committed hold), not yet fulfilled */
    INV_QTY_INCOMING = 3, /* on its way in; not on hand */
    INV_QTY_DAMAGED = 4,
    INV_QTY_SAFETY_STOCK = 5,
    INV_QTY_QUALITY_CONTROL = 6,
    INV_QTY_NAMES = 7
} inv_qty_name;

/* "available", "reserved", ... (NULL for a value out of range). */
const char *inv_qty_name_str(inv_qty_name q);
/* Parses a quantity name (exact, lower case): INV_OK or INV_EINVALID. */
int inv_qty_name_parse(const char *s, size_t len, inv_qty_name *out);

/* How far holds and floor-less decrements may take available. */
typedef enum {
    INV_POLICY_DENY = 0, /* never below 0 (the default) */
    INV_POLICY_CONTINUE = 1 /* down to -preorder_limit (no limit: INV_NO_PREORDER_LIMIT) */
} inv_oversell_policy;

#define INV_NO_PREORDER_LIMIT (-1)

/* Every named quantity of a level. on_hand = available + reserved +
 * committed + damaged + safety_stock + quality_control (derived). */
typedef struct {
    int64_t qty[INV_QTY_NAMES]; /* indexed by inv_qty_name */
    int64_t on_hand;
    uint64_t revision;
    int64_t created_at_ms, updated_at_ms; /* Unix time */
    inv_oversell_policy policy;
    int64_t preorder_limit; /* CONTINUE: units available may go below 0;
                             * INV_NO_PREORDER_LIMIT: unbounded (to -INV_QTY_MAX) */
    bool location_active; /* false: the level refuses stock changes and holds */
} inv_level_full;

/* Why a change was made (journaled with it; Shopify's reasons). */
typedef enum {
    INV_REASON_NONE = 0,
    INV_REASON_CORRECTION,
    INV_REASON_CYCLE_COUNT_AVAILABLE,
    INV_REASON_DAMAGED,
    INV_REASON_MOVEMENT_CANCELED,
    INV_REASON_MOVEMENT_CREATED,
    INV_REASON_MOVEMENT_RECEIVED,
    INV_REASON_MOVEMENT_UPDATED,
    INV_REASON_OTHER,
    INV_REASON_PROMOTION,
    INV_REASON_QUALITY_CONTROL,
    INV_REASON_RECEIVED,
    INV_REASON_RESERVATION_CREATED,
    INV_REASON_RESERVATION_DELETED,
    INV_REASON_RESERVATION_UPDATED,
    INV_REASON_RESTOCK,
    INV_REASON_SAFETY_STOCK,
    INV_REASON_SHRINKAGE,
    INV_REASONS /* count */
} inv_reason;

/* "correction", ... (NULL for INV_REASON_NONE or out of range). */
const char *inv_reason_str(inv_reason r);
/* Parses a reason name (exact, lower case): INV_OK or INV_EINVALID. */
int inv_reason_parse(const char *s, size_t len, inv_reason *out);

/* Sets available to qty (creating the level if absent). if_revision 0:
 * unconditional; else CONFLICT unless the level's revision equals it
 * (an absent level has revision 0 for this purpose only when creating is
 * not conditional). out may be NULL; on CONFLICT it gets the current level. */
int inv_level_set(inv_engine *e, uint64_t item, uint64_t loc, int64_t qty, uint64_t if_revision,
                  inv_level *out);
/* Creates the level with available = qty, only if it does not exist:
 * INV_EEXISTS (nothing changes; out gets the existing level) when it does.
 * Of concurrent creators of one level exactly one succeeds. Unknown item
 * or location: INV_ENOTFOUND; an inactive location: INV_EINVALID. */
int inv_level_create(inv_engine *e, uint64_t item, uint64_t loc, int64_t qty, inv_level *out);
/* available += delta. With a floor, a result below floor changes nothing and
 * returns INV_EINSUFFICIENT (out gets the current level). On an untracked
 * item a floored adjust always succeeds and changes nothing. */
int inv_level_adjust(inv_engine *e, uint64_t item, uint64_t loc, int64_t delta, int64_t floor,
                     inv_level *out);
/* As inv_level_adjust, and CONFLICT unless the revision equals if_revision
 * (0: unconditional). */
int inv_level_adjust_if(inv_engine *e, uint64_t item, uint64_t loc, int64_t delta, int64_t floor,
                        uint64_t if_revision, inv_level *out);
int inv_level_get(inv_engine *e, uint64_t item, uint64_t loc, inv_level *out);
/* A level with units reserved by live holds, or committed and not yet
 * fulfilled, cannot be deleted (CONFLICT). */
int inv_level_del(inv_engine *e, uint64_t item, uint64_t loc);
/* Every named quantity, on_hand, revision, timestamps and policy. */
int inv_level_get_full(inv_engine *e, uint64_t item, uint64_t loc, inv_level_full *out);

/* Moves qty (1 .. INV_QTY_MAX) units of one level from one named quantity
 * to another, atomically: e.g. available -> damaged, incoming -> available
 * (a receipt), committed -> available (a cancel or return). reserved is
 * changed only by holds (INVALID as from or to). from available honours
 * floor (INV_NO_FLOOR: the level's policy); any other from never goes
 * below 0 (INSUFFICIENT). out may be NULL; it gets the level after (on
 * INSUFFICIENT: as it was). */
int inv_level_move(inv_engine *e, uint64_t item, uint64_t loc, int64_t qty, inv_qty_name from,
                   inv_qty_name to, int64_t floor, inv_level_full *out);
/* Moves qty units from (item, from_loc)'s quantity `from` to (item,
 * to_loc)'s quantity `to`: both levels change or neither (the destination
 * is created when absent). */
int inv_level_transfer(inv_engine *e, uint64_t item, uint64_t from_loc, uint64_t to_loc,
                       int64_t qty, inv_qty_name from, inv_qty_name to);
/* Ships qty committed units: committed -= qty (on_hand falls). */
int inv_level_fulfil(inv_engine *e, uint64_t item, uint64_t loc, int64_t qty);
/* Stores the level's oversell policy (preorder_limit 0 .. INV_QTY_MAX, or
 * INV_NO_PREORDER_LIMIT; ignored for DENY). */
int inv_level_set_policy(inv_engine *e, uint64_t item, uint64_t loc, inv_oversell_policy policy,
                         int64_t preorder_limit);

typedef struct {
    uint64_t location;
    inv_level level;
} inv_level_entry;

/* The levels of one item, up to cap; *n_out is the full count. */
int inv_level_list(inv_engine *e, uint64_t item, inv_level_entry *out, size_t cap, size_t *n_out);

typedef struct {
    uint64_t item, location;
    inv_level level;
} inv_level_row;

/* Cursor listing of every level, as inv_item_list: start with cursor 0,
 * pass back *next_cursor until it is 0. Levels present for the whole scan
 * are returned exactly once (at least once in any case); the order is
 * unspecified. 1 <= count <= INV_LIST_COUNT_MAX; a page holds at most
 * count rows (fewer when cap is smaller; LIMIT only if more than cap
 * levels share one hash position). */
int inv_level_scan(inv_engine *e, uint64_t cursor, size_t count, inv_level_row *rows, size_t cap,
                   size_t *n_out, uint64_t *next_cursor);

/* A filter of inv_level_list_page (all zero: every level). */
typedef struct {
    uint64_t item, location; /* read only when has_item / has_location */
    bool has_item, has_location;
    /* 0: none; else only levels whose updated_at_ms >= this, compared at
     * whole seconds (timestamps are kept in seconds: a change in the same
     * second as updated_since_ms is included). Negative: INV_EINVALID.
     * A level's time is the engine's clock (refreshed by its background
     * thread, later while a snapshot is written), stored just after the
     * change: a poller passes its previous start less a few seconds. */
    int64_t updated_since_ms;
} inv_level_filter;

typedef struct {
    uint64_t item, location;
    inv_level_full level;
} inv_level_full_row;

/* Cursor listing of levels with a filter (NULL: none), every named
 * quantity per row: start with cursor 0, pass back *next_cursor until it
 * is 0. A cursor scan over every level, as inv_level_scan: levels present
 * (and matching) for the whole scan are returned exactly once, in no
 * order. count (1 .. INV_LIST_COUNT_MAX) bounds the levels a page
 * examines, not the rows it keeps: a filtered page holds at most
 * min(count, cap) rows and may hold fewer, even none while *next_cursor
 * is not 0 (keep going). A full pass costs O(all levels) whatever the
 * filter (one item's levels: inv_level_list is O(locations)). Each row is
 * one consistent state of its level (read as inv_level_get_full); a page
 * is not one instant of the table. has_item or has_location naming no
 * item or location: INV_ENOTFOUND. cap 0, count out of range, NULL
 * pointers: INV_EINVALID; INV_ELIMIT as inv_level_scan. */
int inv_level_list_page(inv_engine *e, const inv_level_filter *filter, uint64_t cursor,
                        size_t count, inv_level_full_row *rows, size_t cap, size_t *n_out,
                        uint64_t *next_cursor);

/* ---- product inventory (per variant x location, and the total) -------- */

typedef struct {
    char variant[INV_VARIANT_MAX + 1];
    uint64_t item;
    uint64_t location; /* has_level false: 0 */
    int64_t available; /* has_level false: 0 */
    bool has_level; /* false: the item's one row saying it has no level */
} inv_stock_row;

/* Rows of every item (variant) of the product, grouped by item, items in
 * id order: one row per existing level (locations in id order; only at
 * *only_loc when given), or, for an item without any such level, exactly
 * one row with has_level false. So every item of the product appears.
 * *n_out is the full row count (LIMIT if > cap); *total_out the sum of
 * available over tracked items. */
int inv_product_inventory(inv_engine *e, const char *product, const uint64_t *only_loc,
                          inv_stock_row *rows, size_t cap, size_t *n_out, int64_t *total_out);

/* ---- holds (reservations) --------------------------------------------- */

typedef struct {
    uint64_t item, location;
    int64_t qty; /* 1 .. INV_QTY_MAX */
} inv_hold_line;

typedef enum {
    INV_HOLD_HELD = 1,
    INV_HOLD_COMMITTED = 2,
    INV_HOLD_RELEASED = 3,
    INV_HOLD_EXPIRED = 4
} inv_hold_state;

/* On INV_EINSUFFICIENT: which line failed and the available it saw. */
typedef struct {
    size_t line;
    uint64_t item, location;
    int64_t available;
} inv_hold_failure;

/* Moves qty from available to reserved on every line, all or nothing. Lines
 * may not repeat an (item, location). Repeating a create with the same id
 * and lines answers INV_OK without reserving twice; other lines CONFLICT.
 * failure may be NULL. */
int inv_hold_create(inv_engine *e, const char *hold_id, size_t hold_id_len, uint64_t ttl_ms,
                    const inv_hold_line *lines, size_t n_lines, inv_hold_failure *failure);
/* Sold: the hold's reserved units become committed (still on hand, until
 * inv_level_fulfil ships them or a return moves them back). Idempotent. An
 * expired or released hold answers NOTFOUND. */
int inv_hold_commit(inv_engine *e, const char *hold_id, size_t hold_id_len);
/* Units return to available. Idempotent. A committed hold: CONFLICT. */
int inv_hold_release(inv_engine *e, const char *hold_id, size_t hold_id_len);

typedef struct {
    inv_hold_state state;
    int64_t expires_at_ms; /* Unix time */
    size_t n_lines;
    inv_hold_line lines[INV_HOLD_LINES_MAX];
    /* committed[i]: units of lines[i] committed (a partial commit commits
     * fewer than qty; the rest was released). 0 unless COMMITTED. */
    int64_t committed[INV_HOLD_LINES_MAX];
    char buyer[INV_BUYER_ID_MAX + 1]; /* "" when none */
    char order_ref[INV_ORDER_REF_MAX + 1]; /* "" when none */
    int64_t created_at_ms;
} inv_hold_info;

int inv_hold_get(inv_engine *e, const char *hold_id, size_t hold_id_len, inv_hold_info *out);

/* A hold's optional attributes. */
typedef struct {
    const char *buyer; /* 0 .. INV_BUYER_ID_MAX bytes (NULL/0: none) */
    size_t buyer_len;
    /* With a buyer: 0 none, else the create is refused (INV_ELIMIT) when
     * the buyer's units of any of the hold's items, held + committed within
     * the buyer window (inv_config.buyer_window_ms), would exceed it. */
    int64_t buyer_limit;
    const char *order_ref; /* 0 .. INV_ORDER_REF_MAX bytes */
    size_t order_ref_len;
} inv_hold_opts;

/* inv_hold_create with attributes (opts NULL: none). A buyer and an order
 * reference hold no NUL byte (INV_EINVALID); a limit needs a buyer. A
 * retry is the same create only with the same attributes too (else
 * CONFLICT). A buyer over its limit: INV_ELIMIT before any level changes,
 * with failure (if not NULL) naming the caller's first line of that item
 * and, in available, the units the buyer would hold (more than the limit,
 * so > 0; any other INV_ELIMIT leaves available 0). Released and expired
 * holds give their buyer's units back at once; committed units count
 * until the buyer window has passed since the commit. */
int inv_hold_create_ex(inv_engine *e, const char *hold_id, size_t hold_id_len, uint64_t ttl_ms,
                       const inv_hold_line *lines, size_t n_lines, const inv_hold_opts *opts,
                       inv_hold_failure *failure);
/* Commits part of a hold: lines name (item, location, qty <= the hold's
 * qty there) what was sold; those units become committed, every other unit
 * of the hold is released. A line the hold lacks, or more than it holds:
 * INV_EINVALID (nothing changes). n_lines 0: as inv_hold_commit. A retry
 * that sells the same units answers INV_OK; any other commit of a
 * committed hold (a whole one after a partial one too): INV_ECONFLICT. */
int inv_hold_commit_partial(inv_engine *e, const char *hold_id, size_t hold_id_len,
                            const inv_hold_line *lines, size_t n_lines);
/* A HELD hold now expires ttl_ms (1 .. INV_HOLD_TTL_MS_MAX) from now
 * (journaled; earlier than before is allowed: commits are refused from the
 * new time on, its units come back within one sweep of the timing wheel's
 * span, hold.h). Ended, or past its expiry time: NOTFOUND (expired or
 * released) or CONFLICT (committed). */
int inv_hold_extend(inv_engine *e, const char *hold_id, size_t hold_id_len, uint64_t ttl_ms);

typedef struct {
    uint64_t item, location; /* 0/0 with has_*: no filter */
    bool has_item, has_location;
} inv_hold_filter;

/* Cursor listing of live holds (HELD, and not past their expiry time), as
 * inv_item_list; filter may be NULL (has_item and has_location: one line
 * on both). ids_out[i] gets each hold's id (NUL-terminated) and, unless
 * id_lens is NULL, id_lens[i] its length (ids are byte strings: one may
 * hold a NUL). A page may hold fewer than count ids, none included, with
 * a cursor that is not 0 yet: the filter drops what does not match. */
int inv_hold_list(inv_engine *e, const inv_hold_filter *filter, uint64_t cursor, size_t count,
                  char (*ids_out)[INV_HOLD_ID_MAX + 1], size_t *id_lens, size_t cap, size_t *n_out,
                  uint64_t *next_cursor);

/* ---- batches: many changes, all or nothing ----------------------------- */

#define INV_BATCH_LINES_MAX 256 /* lines in one batch (MULTI ... EXEC) */
/* Level changes in one batch, counting each hold line it creates, commits
 * or releases; also bounds its journal record. */
#define INV_BATCH_LEVELS_MAX 1024

typedef enum {
    INV_BATCH_LEVEL_SET = 1, /* item, location, qty; if_revision */
    INV_BATCH_LEVEL_ADJUST = 2, /* item, location, qty (the delta); floor, if_revision */
    INV_BATCH_LEVEL_GET = 3, /* item, location: reads the level as the lines
                                 * before it left it */
    INV_BATCH_HOLD_CREATE = 4, /* hold_id, ttl_ms, hold_lines, n_hold_lines */
    INV_BATCH_HOLD_COMMIT = 5, /* hold_id; n_hold_lines > 0: a partial
                                * commit of those lines' qty (the rest of
                                * the hold is released) */
    INV_BATCH_HOLD_RELEASE = 6, /* hold_id */
    INV_BATCH_LEVEL_MOVE = 7, /* item, location, qty, from, to; floor */
    INV_BATCH_LEVEL_TRANSFER = 8, /* item, location -> to_location, qty, from, to */
    INV_BATCH_LEVEL_FULFIL = 9, /* item, location, qty */
    INV_BATCH_LEVEL_POLICY = 10, /* item, location, policy, preorder_limit */
    INV_BATCH_HOLD_EXTEND = 11, /* hold_id, ttl_ms: expires ttl_ms from now */
    INV_BATCH_LEVEL_GET_FULL = 12 /* item, location: as LEVEL_GET, every named
                                   * quantity (result.full) */
} inv_batch_op;

typedef struct {
    inv_batch_op op;
    uint64_t item, location;
    int64_t qty; /* SET: the new available; ADJUST: the delta */
    int64_t floor; /* ADJUST: INV_NO_FLOOR, or the floor */
    uint64_t if_revision; /* SET, ADJUST: 0, or the revision expected */
    const char *hold_id; /* hold lines: 1 .. INV_HOLD_ID_MAX bytes */
    size_t hold_id_len;
    uint64_t ttl_ms; /* HOLD_CREATE */
    const inv_hold_line *hold_lines; /* HOLD_CREATE; HOLD_COMMIT (partial) */
    size_t n_hold_lines;
    /* model 2 (all zero: unused) */
    uint64_t to_location; /* TRANSFER */
    inv_qty_name from, to; /* MOVE, TRANSFER (0 is available) */
    inv_oversell_policy policy; /* POLICY */
    int64_t preorder_limit; /* POLICY */
    const char *buyer; /* HOLD_CREATE: 0 .. INV_BUYER_ID_MAX bytes */
    size_t buyer_len;
    int64_t buyer_limit; /* HOLD_CREATE with a buyer: 0 none, else at most this
                          * many units of an item held + committed by the buyer
                          * per buyer window */
    const char *order_ref; /* HOLD_CREATE: 0 .. INV_ORDER_REF_MAX bytes */
    size_t order_ref_len;
    inv_reason reason; /* any change: journaled with it */
    const char *ref; /* any change: 0 .. INV_REF_MAX bytes, journaled */
    size_t ref_len;
} inv_batch_line;

/* A batch with a request id has at most this many lines (its remembered
 * outcome stays small). */
#define INV_REQUEST_ID_LINES_MAX 32

/* Options of a whole batch call. */
typedef struct {
    /* Idempotency: a batch repeated with the same request id (1 ..
     * INV_REQUEST_ID_MAX bytes) and the same lines answers the first call's
     * outcome and changes nothing; other lines: INV_ECONFLICT. Ids are
     * remembered for inv_config.request_id_retention_ms (journaled). */
    const char *request_id;
    size_t request_id_len;
} inv_batch_opts;

typedef struct {
    int rc; /* INV_OK, or the error of the line that failed */
    inv_level level; /* level lines: the level after this line (on failure:
                      * the level the line was refused on) */
    inv_hold_failure hold_failure; /* HOLD_CREATE refused: the hold line */
    inv_level to_level; /* TRANSFER: the destination level after */
    inv_level_full full; /* LEVEL_GET_FULL; MOVE, FULFIL, TRANSFER: the
                          * (source) level after, every quantity */
    inv_level_full to_full; /* TRANSFER: the destination after */
} inv_batch_result;

/* Runs lines in order as one change: either every line applies, or none
 * does and the call returns the first failing line's error (*failed_line
 * its index; results[*failed_line] says why; the lines before it report
 * INV_OK but were undone). Every rule of the single calls holds per line
 * (floors, IFREV, NOTFOUND, INSUFFICIENT, hold retries; a commit at or
 * after the hold's expiry time is NOTFOUND). A LEVEL_GET line never fails
 * the batch: its result carries its own rc (NOTFOUND for no level). A hold
 * id may appear in one line of a batch only (else INVALID). A SET that
 * created its level and fails is undone by deleting the level again. The batch is one journal unit: after
 * a crash it is there whole or not at all, and with fsync ALWAYS the call
 * returns once it is durable. A batch of SET, ADJUST and GET lines on
 * existing levels is one step: others see all of it or none, and a failed
 * one changes no revision. Any other batch: while it runs, other callers
 * may see the lines it has applied so far (and, on failure, their
 * undoing); an undone line leaves its level with a higher revision. Units a batch adds to a
 * level stay reserved until it is decided (its own lines may use them), so
 * no other caller can take units a failing batch takes back. results (n entries) and
 * failed_line may be NULL. */
int inv_batch(inv_engine *e, const inv_batch_line *lines, size_t n, inv_batch_result *results,
              size_t *failed_line);
/* inv_batch with options (opts NULL: as inv_batch). A request id used
 * with other lines (or running in another call right now) answers
 * INV_ECONFLICT with *failed_line SIZE_MAX: no line ran. */
int inv_batch_ex(inv_engine *e, const inv_batch_line *lines, size_t n, const inv_batch_opts *opts,
                 inv_batch_result *results, size_t *failed_line);

/* ---- durability ------------------------------------------------------- */

/* The journal position of the calling thread's last successful write on
 * any engine (0: none). A change is durable once inv_durable_position() is
 * at or past it. */
uint64_t inv_last_write_position(void);
/* Every change at or below this position is durable under the engine's
 * policy. In memory mode: UINT64_MAX. */
uint64_t inv_durable_position(inv_engine *e);
/* A new eventfd (non-blocking) that the engine signals whenever the durable
 * position advances; read 8 bytes to clear it. One per event loop. In memory
 * mode: INV_EINVALID. At most INV_DURABLE_SUBSCRIBERS_MAX at once. */
#define INV_DURABLE_SUBSCRIBERS_MAX 256
int inv_durable_subscribe(inv_engine *e);
/* Stops signalling fd and closes it. */
void inv_durable_unsubscribe(inv_engine *e, int fd);
/* As inv_durable_subscribe, with the caller's own eventfd, so that one
 * event loop waits on one fd for many engines (tenants): INV_OK, INV_ELIMIT
 * or INV_EINVALID (memory mode). The engine never closes fd. */
int inv_durable_subscribe_fd(inv_engine *e, int fd);
/* Stops signalling fd (subscribed by inv_durable_subscribe_fd); does not
 * close it. */
void inv_durable_unsubscribe_fd(inv_engine *e, int fd);
/* Blocks until position is durable. INV_EIO once the journal has failed. */
int inv_wait_durable(inv_engine *e, uint64_t position);
/* Writes a snapshot now and drops the journal segments it covers. */
int inv_snapshot(inv_engine *e);
/* Batches the calling thread's hand-offs to the journal's writer thread,
 * for an event loop: between inv_defer_journal_begin(e) and
 * inv_defer_journal_end(e) this thread's writes on e do not wake the
 * journal writer each (a futex wake-up per write, and a file write per
 * record); the first end pays one wake-up for all of them, so their
 * records reach the file together. A loop calls begin after its
 * epoll_wait and end before the next one, so a crash loses no more than
 * the records of one iteration beyond what the fsync policy already
 * allows, and a reply held for durability (inv_durable_subscribe) never
 * waits on a writer nobody woke. Any wait of this thread on e's journal
 * (inv_wait_durable, a write that finds the journal's buffer full,
 * inv_snapshot) first pays the owed wake-up, so deferring never blocks
 * it. One engine per thread at a time: begin on another engine ends the
 * current bracket; begin inside a bracket on e and end outside one are
 * no-ops. End every bracket before inv_close(e) from another thread.
 * Threads that never call begin behave as without it. No-ops in memory
 * mode. Never blocks, allocates nothing. */
void inv_defer_journal_begin(inv_engine *e);
/* e NULL: ends this thread's bracket whichever engine it is on (an event
 * loop serving many tenants ends its iteration so). */
void inv_defer_journal_end(inv_engine *e);

/* ---- replication (invcored's cluster mode, docs/REPLICATION.md) -------- *
 *
 * A leader's journal is a byte stream of framed records at positions. A
 * replica (inv_config.replica) takes the leader's stream through
 * inv_repl_apply, one thread, in order: it writes each record into its own
 * journal at the same position and applies it as recovery would, so both
 * engines hold the same levels at the same revisions. Nothing else may
 * use a replica's engine while inv_repl_apply or inv_repl_promote runs
 * (the server pauses its event loops); reads between calls see a state
 * the leader had. inv_repl_promote makes the replica a leader: it
 * finishes what the stream left half done, and from then on the engine
 * hands every record it writes to ship (from the journal's writer thread,
 * in position order, each byte once) and acknowledges a change only once
 * inv_repl_acked passed it (inv_durable_position never goes beyond that,
 * whatever the fsync policy). */

/* The stream bytes [first, first + len): whole framed records, contiguous
 * with the previous call. Called on the journal's writer thread; bytes
 * are valid only during the call; may block (back-pressure). */
typedef void (*inv_repl_ship_fn)(void *arg, uint64_t first, const void *bytes, size_t len);
/* Where the next record of the stream goes (the replica's journal tail). */
uint64_t inv_repl_position(inv_engine *e);
/* Applies the stream bytes [first, first + len) (len > 0, whole records;
 * any alignment).
 * Records below inv_repl_position are skipped (a resend after a restart);
 * first beyond it is a gap. INV_OK; INV_EINVALID for a gap, a bad record
 * (checksum, length) or an engine that is not a replica (nothing of a bad
 * record is applied; records before it are); INV_EIO when the journal
 * failed. */
int inv_repl_apply(inv_engine *e, uint64_t first, const void *bytes, size_t len);
/* Promotes a replica: attaches ship, finishes the changes the stream left
 * half done (journaled, shipped), rebuilds what recovery derives (indexes,
 * committed units), and lets writes and expiry run. Acknowledgements of
 * records from inv_repl_position on wait for inv_repl_acked. INV_OK;
 * INV_EINVALID when e is not a replica; else the error that stopped it. */
int inv_repl_promote(inv_engine *e, inv_repl_ship_fn ship, void *arg);
/* Every record below end is replicated (a leader's shipper calls it in
 * increasing order): acknowledgements up to end go out. */
void inv_repl_acked(inv_engine *e, uint64_t end);
/* The replicated end (a promoted engine), else 0. */
uint64_t inv_repl_acked_end(inv_engine *e);

/* ---- change feed and history (docs/PROTOCOL.md "Change feed") --------- *
 *
 * The feed reads the journal itself (no second log): every change record,
 * in journal order, decoded into an inv_feed_record. A record is one
 * journal record, except a batch: its partial records are not shown, and
 * its applied final record is one inv_feed_record holding every change of
 * the batch (group = the batch's first position); an aborted batch shows
 * nothing (it changed nothing). A hold change cut into partial records
 * shows one record per journal record (same group).
 *
 * Positions are journal positions: a level change's record position is
 * the level's revision after it. A reader sees records below the durable
 * position only (under fsync interval: the last fdatasync; under none:
 * what was written to the kernel), so it never sees a change that a
 * crash could take back. In memory mode there is no feed (INV_EINVALID). */

#define INV_FEED_COUNT_MAX 10000 /* records in one FEED.READ / history page */
#define INV_FEED_FROM_END UINT64_MAX /* open after the current end ("$") */
#define INV_ACTOR_MAX 64 /* bytes of an actor label */

typedef enum {
    INV_FEED_LEVEL_SET = 1, /* LEVEL.SET (create included: see created) */
    INV_FEED_LEVEL_ADJUST = 2,
    INV_FEED_LEVEL_DELETE = 3,
    INV_FEED_LEVEL_TRACKING = 4, /* the item's tracked flag reached the level */
    INV_FEED_LEVEL_MOVE = 5, /* between named quantities */
    INV_FEED_LEVEL_TRANSFER = 6, /* one of a transfer's two levels */
    INV_FEED_LEVEL_FULFIL = 7,
    INV_FEED_LEVEL_RETURN = 8,
    INV_FEED_LEVEL_POLICY = 9,
    INV_FEED_LEVEL_ACTIVITY = 10, /* its location was (de)activated */
    INV_FEED_LEVEL_SETTLE = 11, /* a batch moved its pending units to available */
    INV_FEED_HOLD_CREATE = 12,
    INV_FEED_HOLD_COMMIT = 13,
    INV_FEED_HOLD_RELEASE = 14,
    INV_FEED_HOLD_EXPIRE = 15,
    INV_FEED_HOLD_EXTEND = 16,
    INV_FEED_HOLD_ABORT = 17, /* recovery gave back a create cut by a crash */
    INV_FEED_ITEM = 18, /* an item written or deleted */
    INV_FEED_LOCATION = 19,
    INV_FEED_DEFAULT_LOCATION = 20,
    INV_FEED_BATCH = 21, /* record kind of a batch; its changes say theirs */
    INV_FEED_KINDS /* count */
} inv_feed_kind;

/* "level.set", "level.adjust", ..., "batch" (NULL out of range). */
const char *inv_feed_kind_str(inv_feed_kind k);

/* One level's change. delta: every named quantity's change (a set's is
 * the new value less the old). after[q]: the quantity after the change,
 * valid where after_known has bit (1u << q); a record carries what it
 * changed (a plain set or adjust: available; reserved and committed are
 * told apart only by records that change them). */
typedef struct {
    inv_feed_kind kind;
    uint64_t item, location;
    int64_t delta[INV_QTY_NAMES];
    int64_t after[INV_QTY_NAMES];
    uint32_t after_known;
    uint64_t revision; /* the level's revision after the change */
    bool created, deleted; /* the change created / deleted the level */
    const char *hold_id; /* the hold it belongs to (NULL: none) */
    size_t hold_id_len;
    inv_reason reason; /* INV_REASON_NONE: none given */
    const char *ref; /* NULL: none; not NUL-terminated */
    size_t ref_len;
} inv_feed_change;

typedef struct {
    uint64_t position; /* this record's journal position */
    uint64_t group; /* the first position of its change (a batch's id, a
                     * hold change's first record); == position when alone */
    int64_t time_ms; /* Unix ms when the change was made (0: unknown, a
                      * record written before the feed existed) */
    inv_feed_kind kind;
    /* Holds: the hold's id; ITEM, LOCATION, DEFAULT_LOCATION: the id in
     * item / location, deleted for a deletion. */
    const char *hold_id;
    size_t hold_id_len;
    uint64_t item, location;
    bool deleted;
    const char *request_id; /* NULL: none */
    size_t request_id_len;
    const char *actor; /* NULL: not known (inv_set_actor) */
    size_t actor_len;
    const inv_feed_change *changes; /* n_changes level changes */
    size_t n_changes;
} inv_feed_record;

typedef struct inv_feed inv_feed;

/* Opens a reader after position after (0: from the oldest readable record;
 * INV_FEED_FROM_END: only records made from now on). INV_ELIMIT when after
 * is older than the oldest readable record (inv_feed_oldest_position),
 * INV_EINVALID when it is beyond the journal's end or not a record
 * boundary, or in memory mode. Usable from any thread while the engine
 * runs; one reader is used by one thread at a time. */
int inv_feed_open(inv_engine *e, uint64_t after, inv_feed **out);
/* The same over a data directory that no running engine owns (the
 * command-line reader): reads every whole record on disk. */
int inv_feed_open_dir(const char *data_dir, uint64_t after, inv_feed **out);
/* The next record: INV_OK with *rec filled (its pointers stay valid until
 * the next call or close), INV_ENOTFOUND when none is readable yet (call
 * again later: wait with inv_durable_subscribe), INV_ELIMIT when retention
 * dropped the records after the reader's position, INV_EIO or
 * INV_EINVALID (a corrupt record) else. */
int inv_feed_next(inv_feed *f, inv_feed_record *rec);
/* The position of the last record returned (the open's after before any). */
uint64_t inv_feed_position(const inv_feed *f);
/* A reader opened at INV_FEED_FROM_END shows only changes that reserved
 * their journal position after the open; changes made before it but not
 * yet durable (fsync interval / none acknowledge before the disk) are
 * passed over as they become readable. false until they all were: only
 * then is its position the cursor of "now". true for every other reader. */
bool inv_feed_started(const inv_feed *f);
void inv_feed_close(inv_feed *f);
/* The oldest position a reader may open after (every later record is
 * readable), and the current end (a reader opened after it sees only new
 * records). */
uint64_t inv_feed_oldest_position(inv_engine *e);
uint64_t inv_feed_end_position(inv_engine *e);

/* A level's changes, newest first: the records (at most count, <=
 * INV_FEED_COUNT_MAX) with a change of (item, location) at positions
 * below before (0: the end), as records whose changes are only that
 * level's. *recs_out gets an array of *n_out pointers to them, all owned
 * by *page (valid until inv_feed_page_free). *next_before: pass it as
 * before for the next page (0: no more). A page may hold fewer than count
 * records with next_before not 0: one call walks a bounded number of
 * journal bytes. Cost: docs/PROTOCOL.md "LEVEL.HISTORY". */
typedef struct inv_feed_page inv_feed_page;
int inv_level_history(inv_engine *e, uint64_t item, uint64_t location, uint64_t before,
                      size_t count, inv_feed_page **page, const inv_feed_record *const **recs_out,
                      size_t *n_out, uint64_t *next_before);
void inv_feed_page_free(inv_feed_page *page);

/* The actor label the calling thread's next changes carry in the journal
 * (batches, and commands with ID, REASON or REF, and holds): a connection's
 * client name or token label. NULL or 0 length clears it; longer than
 * INV_ACTOR_MAX: INV_ELIMIT. Plain single-level changes do not carry it
 * (their records stay small on the hot path). */
int inv_set_actor(const char *actor, size_t len);

/* ---- tenants ----------------------------------------------------------
 * A tenant is a named namespace with its own engine: its own locations,
 * items, levels, holds, request ids, journal and feed. No call on one
 * tenant's engine can read or change another's: there is no shared table
 * (docs/TENANTS.md says why this layout). An inv_tenants is the set of
 * them; it always holds the default tenant (INV_TENANT_DEFAULT), whose
 * data lives where a single engine's does, so a data directory from before
 * tenants opens unchanged as the default tenant.
 *
 * Durability: with a data_dir, tenant NAME lives in data_dir/tenants/NAME/
 * (its own journal and snapshots). Creating and dropping a tenant are
 * durable before they return: a create makes the directory and fsyncs its
 * parent; a drop renames it aside (one atomic rename, parent fsynced) and
 * then deletes it. A crash in between leaves the tenant either whole or
 * gone, never half. Memory mode (data_dir NULL): tenants live in memory.
 *
 * Tokens, scopes and rate limits belong to the server, not to this API:
 * invcored maps each access token (--tokens FILE: TOKEN TENANT SCOPE
 * [BUCKET/LEAK_PER_S]) to a tenant and a scope (read, write, admin) and
 * checks it before a request reaches an engine (docs/PROTOCOL.md, "Tenants,
 * tokens and scopes"; docs/TENANTS.md). A program linking the library
 * isolates its tenants by the engine handle it passes: every call on
 * inv_tenant_engine(t) reaches t's data only.
 *
 * Lifetime: inv_tenant_get counts a reference; inv_tenant_put drops it.
 * A dropped tenant disappears from lookups at once; its engine is closed
 * (and its files removed) when its last reference goes, so a caller that
 * holds one never sees the engine freed under it. Callers check
 * inv_tenant_dropped before each request and stop using a dropped one.
 */
#define INV_TENANT_NAME_MAX 64 /* bytes: [a-z0-9._-], 1..64, not starting with "." */
#define INV_TENANT_DEFAULT "default"
#define INV_TENANTS_MAX 100000 /* tenants in one set, the default included */

typedef struct inv_tenants inv_tenants;
typedef struct inv_tenant inv_tenant;

typedef struct {
    /* Called once per tenant engine right after it opened, before anyone
     * can look the tenant up (the default tenant's too, inside
     * inv_tenants_open), and once right before it closes. NULL: none. The
     * server uses these to subscribe its loops to each journal. They run on
     * the thread that created / released the tenant and must not call back
     * into the inv_tenants. */
    void (*on_open)(void *arg, inv_tenant *t);
    void (*on_close)(void *arg, inv_tenant *t);
    void *arg;
} inv_tenant_hooks;

/* Is name (len bytes, no NUL needed) a valid tenant name? INV_OK or
 * INV_EINVALID. */
int inv_tenant_name_check(const char *name, size_t len);
/* Opens the set: the default tenant with cfg (as inv_open does), then
 * every tenant found under cfg->data_dir/tenants/ with the same settings
 * (finishing any drop a crash interrupted). Every tenant engine shares one
 * background thread, owned by the set, instead of one each. hooks may be
 * NULL. */
int inv_tenants_open(inv_tenants **out, const inv_config *cfg, const inv_tenant_hooks *hooks);
/* Closes every tenant. Every reference must have been put back. */
void inv_tenants_close(inv_tenants *ts);
/* Creates tenant name (empty). INV_EEXISTS when it exists, INV_EINVALID for
 * a bad name, INV_ELIMIT beyond INV_TENANTS_MAX, INV_EIO when its
 * directory cannot be made durable. */
int inv_tenant_create(inv_tenants *ts, const char *name, size_t len);
/* Drops tenant name and everything in it. INV_ENOTFOUND when there is none,
 * INV_EINVALID for the default tenant, INV_EBUSY (nothing changes) when it
 * has live holds unless force. */
int inv_tenant_drop(inv_tenants *ts, const char *name, size_t len, bool force);
/* Looks tenant name up and counts a reference: INV_OK with *out, or
 * INV_ENOTFOUND. Lock-free. */
int inv_tenant_get(inv_tenants *ts, const char *name, size_t len, inv_tenant **out);
/* The default tenant, counting a reference. Never NULL for an open set. */
inv_tenant *inv_tenant_default(inv_tenants *ts);
/* Counts another reference to t (which the caller holds one of). */
void inv_tenant_ref(inv_tenant *t);
/* Drops a reference (NULL: no-op). The last one of a dropped tenant closes
 * its engine and removes its files. */
void inv_tenant_put(inv_tenant *t);
/* The tenant's engine: valid while the caller holds a reference. */
inv_engine *inv_tenant_engine(const inv_tenant *t);
/* The tenant's name (NUL-terminated) and its length. */
const char *inv_tenant_name(const inv_tenant *t, size_t *len);
/* True once the tenant has been dropped (acquire: a caller that sees false
 * started before the drop returned). */
bool inv_tenant_dropped(const inv_tenant *t);
/* Calls fn for every live tenant in name order, each with a reference held
 * for the call only; stops early when fn returns non-zero (returned).
 * Returns 0 after all. */
int inv_tenants_each(inv_tenants *ts, int (*fn)(void *arg, inv_tenant *t), void *arg);
/* Live tenants, the default included. */
size_t inv_tenants_count(inv_tenants *ts);

/* ---- statistics ------------------------------------------------------- */

typedef struct {
    uint64_t levels, items, locations;
    uint64_t holds_active, holds_created, holds_committed, holds_released, holds_expired;
    uint64_t table_bytes; /* bytes held by the hash tables */
    uint64_t table_resizes; /* completed table migrations */
    /* journal (all 0 in memory mode) */
    uint64_t journal_position; /* next position to be written */
    uint64_t durable_position;
    uint64_t journal_bytes; /* on disk since the last snapshot */
    uint64_t fsyncs, records_written, snapshots;
    uint64_t snapshot_position; /* journal position of the last snapshot (0: none) */
    bool journal_failed; /* an I/O error: writes are refused */
    /* request ids (inv_batch_ex) */
    uint64_t request_ids; /* remembered now */
    uint64_t request_id_hits; /* retries answered from a remembered id */
    uint64_t request_id_conflicts; /* an id reused with other lines */
    uint64_t request_ids_expired; /* forgotten after the retention */
    uint64_t request_ids_forgotten_early; /* forgotten over the count bound */
    /* history (0 in memory mode) */
    uint64_t history_oldest_position; /* inv_feed_oldest_position */
    uint64_t history_bytes; /* journal segment bytes kept for history */
} inv_stats;

int inv_stats_get(inv_engine *e, inv_stats *out);

#ifdef __cplusplus
}
#endif
#endif /* INV_INVCORE_H */
