/*
 * cmd_internal.h — shared by command.c (table, dispatch, admin commands),
 * cmd_conn.c (CLIENT, SELECT, TIME, RESET, ROLE) and cmd_inventory.c
 * (location, item, level, product and hold commands).
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
#define CMD_ECHO_MAX 128                  /* bytes of a client's argument
                                             quoted back in an error */

struct cmd_scratch {
    uint64_t ids[2 * INV_LIST_COUNT_MAX];
    inv_level_entry levels[INV_LOCATIONS_MAX];
    inv_stock_row rows[CMD_PRODUCT_ROWS_SCRATCH];
    inv_hold_line lines[INV_HOLD_LINES_MAX];
    inv_hold_info hold;
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

/* A subcommand (CLIENT SETNAME): command_exec finds it by argv[1] and
 * checks its arity from this row, as for commands. A table of them ends
 * with a row whose name is NULL. */
typedef struct {
    const char *name;  /* "parent|sub", lower case (Redis's full name) */
    unsigned min_args; /* argc, the parent and subcommand names included */
    unsigned max_args; /* 0: no upper bound */
    bool admin;        /* COMMAND INFO flag */
    cmd_fn fn;
    const char *summary;
} cmd_sub;

/* cmd_conn.c */
extern const cmd_sub g_client_subs[];
void cmd_select(session *s, resp_out *o, const resp_arg *v, size_t n);
void cmd_time(session *s, resp_out *o, const resp_arg *v, size_t n);
void cmd_reset(session *s, resp_out *o, const resp_arg *v, size_t n);
void cmd_role(session *s, resp_out *o, const resp_arg *v, size_t n);
/* Checks a client name (what NULL) or a CLIENT SETINFO value (what: the
 * option as the client spelled it) by Redis's rule, printable ASCII
 * without spaces (CLIENT LIST splits on them), and our limit of
 * SESSION_NAME_MAX bytes. 0, or -1 after an error reply. */
int client_attr_check_or_reply(resp_out *o, const resp_arg *a,
                               const resp_arg *what);
/* Sets (or, for "", clears) the session's name; -1 after an error reply. */
int session_set_name_or_reply(session *s, resp_out *o, const resp_arg *a);
/* Strict integer as Redis reads one (string2ll): "0" or -?[1-9][0-9]*,
 * within int64. 0 or -1. */
int arg_ll_strict(const resp_arg *a, int64_t *v);

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

#endif /* INV_SERVER_CMD_INTERNAL_H */
