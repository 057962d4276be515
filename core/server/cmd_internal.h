/*
 * cmd_internal.h — shared by command.c (table, dispatch, admin commands)
 * and cmd_inventory.c (location, item, level, product and hold commands).
 * Not used outside core/server/cmd*.c.
 *
 * Helpers named ..._or_reply write the error reply themselves and return
 * -1; the handler then returns at once (one reply per request).
 */
#ifndef INV_SERVER_CMD_INTERNAL_H
#define INV_SERVER_CMD_INTERNAL_H

#include "server/command.h"

#define CMD_PRODUCT_ROWS_SCRATCH 4096u    /* rows answered without malloc */
#define CMD_PRODUCT_ROWS_MAX (1u << 20)   /* rows in one PRODUCT.INVENTORY */
#define CMD_LIST_COUNT_DEFAULT 100u       /* LOC.LIST / ITEM.LIST page */

struct cmd_scratch {
    uint64_t ids[2 * INV_LIST_COUNT_MAX];
    inv_level_entry levels[INV_LOCATIONS_MAX];
    inv_stock_row rows[CMD_PRODUCT_ROWS_SCRATCH];
    inv_hold_line lines[INV_HOLD_LINES_MAX];
    inv_hold_info hold;
    inv_level_row level_rows[INV_LIST_COUNT_MAX]; /* SCAN */
};

typedef void (*cmd_fn)(session *s, resp_out *o, const resp_arg *argv,
                       size_t argc);

bool arg_eq(const resp_arg *a, const char *lit); /* case-insensitive */
int arg_u64_or_reply(resp_out *o, const resp_arg *a, const char *what,
                     uint64_t *v);
int arg_i64_or_reply(resp_out *o, const resp_arg *a, const char *what,
                     int64_t *v);
/* Copies a into dst[cap] NUL-terminated; INVALID if too long or has NUL. */
int arg_str_or_reply(resp_out *o, const resp_arg *a, const char *what,
                     char *dst, size_t cap);
void reply_engine_error(resp_out *o, int rc);
void reply_level(resp_out *o, const inv_level *l);

/* cmd_inventory.c */
void cmd_loc_set(session *s, resp_out *o, const resp_arg *v, size_t n);
void cmd_loc_get(session *s, resp_out *o, const resp_arg *v, size_t n);
void cmd_loc_list(session *s, resp_out *o, const resp_arg *v, size_t n);
void cmd_loc_default(session *s, resp_out *o, const resp_arg *v, size_t n);
void cmd_item_set(session *s, resp_out *o, const resp_arg *v, size_t n);
void cmd_item_get(session *s, resp_out *o, const resp_arg *v, size_t n);
void cmd_item_mget(session *s, resp_out *o, const resp_arg *v, size_t n);
void cmd_item_bysku(session *s, resp_out *o, const resp_arg *v, size_t n);
void cmd_item_byvariant(session *s, resp_out *o, const resp_arg *v, size_t n);
void cmd_item_list(session *s, resp_out *o, const resp_arg *v, size_t n);
void cmd_item_del(session *s, resp_out *o, const resp_arg *v, size_t n);
void cmd_level_set(session *s, resp_out *o, const resp_arg *v, size_t n);
void cmd_level_adjust(session *s, resp_out *o, const resp_arg *v, size_t n);
void cmd_level_get(session *s, resp_out *o, const resp_arg *v, size_t n);
void cmd_level_list(session *s, resp_out *o, const resp_arg *v, size_t n);
void cmd_level_del(session *s, resp_out *o, const resp_arg *v, size_t n);
void cmd_product_inventory(session *s, resp_out *o, const resp_arg *v,
                           size_t n);
void cmd_hold_create(session *s, resp_out *o, const resp_arg *v, size_t n);
void cmd_hold_commit(session *s, resp_out *o, const resp_arg *v, size_t n);
void cmd_hold_release(session *s, resp_out *o, const resp_arg *v, size_t n);
void cmd_hold_get(session *s, resp_out *o, const resp_arg *v, size_t n);

/* command.c: Redis's glob (* ? [a-z] [^x] \x), nocase for CONFIG GET. */
bool glob_match(const char *p, size_t pn, const char *s, size_t sn, bool nocase);

/* cmd_introspect.c */
void cmd_slowlog(session *s, resp_out *o, const resp_arg *v, size_t n);
void cmd_latency(session *s, resp_out *o, const resp_arg *v, size_t n);
void cmd_memory(session *s, resp_out *o, const resp_arg *v, size_t n);
void cmd_scan(session *s, resp_out *o, const resp_arg *v, size_t n);
void cmd_type(session *s, resp_out *o, const resp_arg *v, size_t n);

#endif /* INV_SERVER_CMD_INTERNAL_H */
