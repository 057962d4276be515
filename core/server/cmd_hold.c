/*
 * cmd_hold.c — HOLD.CREATE, HOLD.COMMIT, HOLD.RELEASE, HOLD.EXTEND (batch
 * lines), HOLD.GET and HOLD.LIST.
 *
 * The four changes are batch lines: each parses into an inv_batch_line
 * with one function (exported for cmd_inventory.c's batch_parsers, which
 * MULTI uses too), runs alone through hold_line_apply (one engine call)
 * and words its errors with hold_line_error, in both cases as the same
 * command inside EXEC. The parsers check every rule the engine checks on
 * its own (lengths, ranges, repeated lines, option values), so MULTI
 * refuses a bad line before EXEC. A parsed line points into the request's
 * arguments (hold id, buyer, order reference) and into the caller's
 * lines[INV_HOLD_LINES_MAX]; nothing here allocates.
 */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "server/cmd_internal.h"

#define NFIELDS(a) (sizeof(a) / sizeof((a)[0]))

/* Bytes of a buyer id quoted back in a LIMIT refusal (the whole id). */
#define CMD_HOLD_BUYER_ECHO_MAX INV_BUYER_ID_MAX

static void hold_line_init(inv_batch_line *l, inv_batch_op op)
{
    assert(l != NULL);
    assert(op == INV_BATCH_HOLD_CREATE || op == INV_BATCH_HOLD_COMMIT ||
           op == INV_BATCH_HOLD_RELEASE || op == INV_BATCH_HOLD_EXTEND);
    memset(l, 0, sizeof *l);
    l->op = op;
    l->floor = INV_NO_FLOOR;
}

static int hold_id_or_reply(resp_out *o, const resp_arg *a)
{
    assert(reply_buf_ok(o) && a != NULL);
    if (a->len == 0 || a->len > INV_HOLD_ID_MAX) {
        resp_w_errorf(o, "INVALID hold id must be 1..%u bytes", (unsigned)INV_HOLD_ID_MAX);
        return -1;
    }
    assert(a->len >= 1 && a->len <= INV_HOLD_ID_MAX);
    return 0;
}

static int ttl_or_reply(resp_out *o, const resp_arg *a, uint64_t *ttl_ms)
{
    assert(reply_buf_ok(o) && a != NULL && ttl_ms != NULL);
    if (arg_u64_or_reply(o, a, "ttl_ms", ttl_ms) != 0)
        return -1;
    if (*ttl_ms == 0 || *ttl_ms > INV_HOLD_TTL_MS_MAX) {
        resp_w_errorf(o, "%s ttl_ms must be 1..%llu", *ttl_ms == 0 ? "INVALID" : "LIMIT",
                      (unsigned long long)INV_HOLD_TTL_MS_MAX);
        return -1;
    }
    assert(*ttl_ms >= 1 && *ttl_ms <= INV_HOLD_TTL_MS_MAX);
    return 0;
}

/* The rules the engine applies to each line, checked here so that MULTI
 * refuses a bad line before EXEC: qty 1..INV_QTY_MAX, no (item, loc) twice. */
static int hold_line_or_reply(resp_out *o, const resp_arg *a, const inv_hold_line *prev,
                              size_t nprev, inv_hold_line *line)
{
    assert(reply_buf_ok(o) && a != NULL && line != NULL);
    assert(nprev < INV_HOLD_LINES_MAX && (prev != NULL || nprev == 0));
    if (arg_u64_or_reply(o, &a[0], "item id", &line->item) != 0 ||
        arg_u64_or_reply(o, &a[1], "location id", &line->location) != 0 ||
        arg_i64_or_reply(o, &a[2], "quantity", &line->qty) != 0)
        return -1;
    if (line->qty < 1 || line->qty > INV_QTY_MAX) {
        resp_w_errorf(o, "INVALID quantity must be 1..%lld", (long long)INV_QTY_MAX);
        return -1;
    }
    for (size_t i = 0; i < nprev; i++)
        if (prev[i].item == line->item && prev[i].location == line->location) {
            resp_w_errorf(o, "INVALID item %llu at location %llu appears twice",
                          (unsigned long long)line->item, (unsigned long long)line->location);
            return -1;
        }
    assert(line->qty >= 1 && line->qty <= INV_QTY_MAX);
    return 0;
}

/* n_values values (item loc qty ...) at v into lines[]; O(lines^2) for the
 * repeat check, at most INV_HOLD_LINES_MAX lines. */
static int hold_lines_or_reply(resp_out *o, const resp_arg *v, size_t n_values, inv_batch_line *l,
                               inv_hold_line *lines)
{
    assert(n_values % 3 == 0);
    assert(reply_buf_ok(o) && l != NULL && lines != NULL && (v != NULL || n_values == 0));
    l->n_hold_lines = n_values / 3;
    if (l->n_hold_lines > INV_HOLD_LINES_MAX) {
        resp_w_errorf(o, "LIMIT at most %u lines per hold", (unsigned)INV_HOLD_LINES_MAX);
        return -1;
    }
    for (size_t i = 0; i < l->n_hold_lines; i++)
        if (hold_line_or_reply(o, &v[3 * i], lines, i, &lines[i]) != 0)
            return -1;
    l->hold_lines = l->n_hold_lines ? lines : NULL;
    assert(l->n_hold_lines <= INV_HOLD_LINES_MAX);
    return 0;
}

/* A decimal integer, as a line's fields are: HOLD.CREATE's lines run up to
 * the first argument that is not one, and its options start there. */
static bool is_number(const resp_arg *a)
{
    uint64_t u;
    int64_t i;
    assert(a != NULL);
    return resp_parse_u64(a->ptr, a->len, &u) == 0 || resp_parse_i64(a->ptr, a->len, &i) == 0;
}

/* A text option's value: 1..max bytes, no NUL byte (the engine stores it
 * as a C string). */
static int text_opt_or_reply(resp_out *o, const resp_arg *a, const char *what, size_t max,
                             const char **p, size_t *len)
{
    assert(reply_buf_ok(o) && a != NULL && what != NULL && max >= 1);
    assert(p != NULL && len != NULL);
    if (*p != NULL) {
        resp_w_errorf(o, "INVALID %s given twice", what);
        return -1;
    }
    if (a->len == 0 || a->len > max || memchr(a->ptr, '\0', a->len) != NULL) {
        resp_w_errorf(o, "INVALID %s must be 1..%zu bytes without NUL", what, max);
        return -1;
    }
    *p = a->ptr;
    *len = a->len;
    assert(*len >= 1 && *len <= max);
    return 0;
}

/* HOLD.CREATE's options at v[0..n): BUYER id, LIMIT n, ORDER ref, in any
 * order, each once; LIMIT needs BUYER. */
static int create_opts_or_reply(resp_out *o, const resp_arg *v, size_t n, inv_batch_line *l)
{
    assert(reply_buf_ok(o) && l != NULL && l->op == INV_BATCH_HOLD_CREATE);
    assert(v != NULL || n == 0);
    for (size_t i = 0; i < n; i += 2) {
        if (i + 1 == n) {
            resp_w_errorf(o, "INVALID option '%.*s' needs a value",
                          echo_len(&v[i], CMD_NAME_ECHO_MAX), v[i].ptr);
            return -1;
        }
        if (arg_eq(&v[i], "buyer")) {
            if (text_opt_or_reply(o, &v[i + 1], "buyer id", INV_BUYER_ID_MAX, &l->buyer,
                                  &l->buyer_len) != 0)
                return -1;
        } else if (arg_eq(&v[i], "order")) {
            if (text_opt_or_reply(o, &v[i + 1], "order reference", INV_ORDER_REF_MAX, &l->order_ref,
                                  &l->order_ref_len) != 0)
                return -1;
        } else if (arg_eq(&v[i], "limit")) {
            if (l->buyer_limit != 0) {
                resp_w_error(o, "INVALID", "limit given twice");
                return -1;
            }
            if (arg_i64_or_reply(o, &v[i + 1], "limit", &l->buyer_limit) != 0)
                return -1;
            if (l->buyer_limit < 1 || l->buyer_limit > INV_QTY_MAX) {
                resp_w_errorf(o, "INVALID limit must be 1..%lld", (long long)INV_QTY_MAX);
                return -1;
            }
        } else {
            resp_w_errorf(o, "INVALID unknown option '%.*s' (expected BUYER, LIMIT or ORDER)",
                          echo_len(&v[i], CMD_NAME_ECHO_MAX), v[i].ptr);
            return -1;
        }
    }
    if (l->buyer_limit != 0 && l->buyer == NULL) {
        resp_w_error(o, "INVALID", "LIMIT needs BUYER");
        return -1;
    }
    assert(l->buyer_limit >= 0 && l->buyer_limit <= INV_QTY_MAX);
    return 0;
}

/* HOLD.CREATE hold ttl_ms item loc qty [item loc qty ...] [BUYER id]
 * [LIMIT n] [ORDER ref]: the lines are integer triples, so the first
 * argument after the ttl that is not an integer starts the options. */
int parse_hold_create(resp_out *o, const resp_arg *v, size_t n, inv_batch_line *l,
                      inv_hold_line *lines)
{
    assert(v != NULL && n >= 6 && lines != NULL); /* the row's arity */
    hold_line_init(l, INV_BATCH_HOLD_CREATE);
    if (hold_id_or_reply(o, &v[1]) != 0 || ttl_or_reply(o, &v[2], &l->ttl_ms) != 0)
        return -1;
    size_t end = 3;
    while (end < n && is_number(&v[end]))
        end++;
    if (end == 3) {
        resp_w_error(o, "INVALID", "a hold needs at least one line: item loc qty");
        return -1;
    }
    if ((end - 3) % 3 != 0) {
        resp_w_error(o, "ERR", "wrong number of arguments for 'hold.create' command");
        return -1;
    }
    if (hold_lines_or_reply(o, &v[3], end - 3, l, lines) != 0 ||
        create_opts_or_reply(o, &v[end], n - end, l) != 0)
        return -1;
    l->hold_id = v[1].ptr;
    l->hold_id_len = v[1].len;
    assert(l->n_hold_lines >= 1 && end <= n);
    return 0;
}

/* HOLD.COMMIT hold [item loc qty ...]: with lines, a partial commit (the
 * table's arity keeps the lines whole). */
int parse_hold_commit(resp_out *o, const resp_arg *v, size_t n, inv_batch_line *l,
                      inv_hold_line *lines)
{
    assert(v != NULL && n >= 2 && (n - 2) % 3 == 0); /* the row's arity: whole lines */
    hold_line_init(l, INV_BATCH_HOLD_COMMIT);
    if (hold_id_or_reply(o, &v[1]) != 0 || hold_lines_or_reply(o, &v[2], n - 2, l, lines) != 0)
        return -1;
    l->hold_id = v[1].ptr;
    l->hold_id_len = v[1].len;
    assert(l->n_hold_lines == (n - 2) / 3);
    return 0;
}

/* HOLD.RELEASE hold */
int parse_hold_release(resp_out *o, const resp_arg *v, size_t n, inv_batch_line *l,
                       inv_hold_line *lines)
{
    assert(v != NULL && n == 2); /* the row's arity */
    hold_line_init(l, INV_BATCH_HOLD_RELEASE);
    if (hold_id_or_reply(o, &v[1]) != 0)
        return -1;
    l->hold_id = v[1].ptr;
    l->hold_id_len = v[1].len;
    assert(l->n_hold_lines == 0 && l->hold_id_len <= INV_HOLD_ID_MAX);
    return 0;
}

/* HOLD.EXTEND hold ttl_ms */
int parse_hold_extend(resp_out *o, const resp_arg *v, size_t n, inv_batch_line *l,
                      inv_hold_line *lines)
{
    assert(v != NULL && n == 3); /* the row's arity */
    hold_line_init(l, INV_BATCH_HOLD_EXTEND);
    if (hold_id_or_reply(o, &v[1]) != 0 || ttl_or_reply(o, &v[2], &l->ttl_ms) != 0)
        return -1;
    l->hold_id = v[1].ptr;
    l->hold_id_len = v[1].len;
    assert(l->ttl_ms >= 1 && l->ttl_ms <= INV_HOLD_TTL_MS_MAX);
    return 0;
}

void hold_line_apply(inv_engine *e, const inv_batch_line *l, inv_batch_result *r)
{
    assert(e != NULL && l != NULL && r != NULL);
    /* a parsed line: its hold id checked by hold_id_or_reply */
    assert(l->hold_id != NULL && l->hold_id_len >= 1 && l->hold_id_len <= INV_HOLD_ID_MAX);
    switch (l->op) {
    case INV_BATCH_HOLD_CREATE: {
        const inv_hold_opts opts = {l->buyer, l->buyer_len, l->buyer_limit, l->order_ref,
                                    l->order_ref_len};
        r->rc = inv_hold_create_ex(e, l->hold_id, l->hold_id_len, l->ttl_ms, l->hold_lines,
                                   l->n_hold_lines, &opts, &r->hold_failure);
        break;
    }
    case INV_BATCH_HOLD_COMMIT:
        r->rc =
            inv_hold_commit_partial(e, l->hold_id, l->hold_id_len, l->hold_lines, l->n_hold_lines);
        break;
    case INV_BATCH_HOLD_RELEASE:
        r->rc = inv_hold_release(e, l->hold_id, l->hold_id_len);
        break;
    case INV_BATCH_HOLD_EXTEND:
        r->rc = inv_hold_extend(e, l->hold_id, l->hold_id_len, l->ttl_ms);
        break;
    default:
        r->rc = INV_EINVALID; /* defended: called for hold lines only */
    }
}

const char *hold_line_error(const inv_batch_line *l, const inv_batch_result *r, char *msg,
                            size_t cap)
{
    const inv_hold_failure *f = &r->hold_failure;
    assert(l != NULL && r != NULL && msg != NULL && cap >= 1);
    assert(r->rc != INV_OK); /* only a failed line is worded */
    if (r->rc == INV_EINSUFFICIENT && l->op == INV_BATCH_HOLD_CREATE) {
        snprintf(msg, cap, "%llu %llu %lld", (unsigned long long)f->item,
                 (unsigned long long)f->location, (long long)f->available);
        return inv_errcode(r->rc);
    }
    /* The engine's buyer refusal says how many the buyer would hold (> 0,
     * include/invcore.h); a level's own LIMIT says 0. */
    if (r->rc == INV_ELIMIT && l->op == INV_BATCH_HOLD_CREATE && l->buyer_limit > 0 &&
        f->available > 0) {
        snprintf(
            msg, cap, "buyer %.*s would hold %lld of item %llu (limit %lld)",
            (int)(l->buyer_len < CMD_HOLD_BUYER_ECHO_MAX ? l->buyer_len : CMD_HOLD_BUYER_ECHO_MAX),
            l->buyer, (long long)f->available, (unsigned long long)f->item,
            (long long)l->buyer_limit);
        return inv_errcode(r->rc);
    }
    if (r->rc == INV_EINVALID && l->op == INV_BATCH_HOLD_COMMIT && l->n_hold_lines > 0) {
        snprintf(msg, cap, "each line must be one of the hold's, qty 1..its qty there");
        return inv_errcode(r->rc);
    }
    return NULL;
}

/* ---- HOLD.GET --------------------------------------------------------------- */

static const char *hold_state_name(inv_hold_state st)
{
    switch (st) {
    case INV_HOLD_HELD:
        return "held";
    case INV_HOLD_COMMITTED:
        return "committed";
    case INV_HOLD_RELEASED:
        return "released";
    case INV_HOLD_EXPIRED:
        return "expired";
    }
    return "unknown";
}

/* [state, expires_at_ms, [[item, loc, qty, committed], ...], buyer,
 * order_ref, created_at_ms] */
void cmd_hold_get(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    inv_hold_info *h = &s->scratch->hold;
    assert(handler_call_ok(s, o, v, n, 2, 2));
    assert(s->e != NULL); /* not CMD_NOTENANT: the gate resolved the tenant */
    if (hold_id_or_reply(o, &v[1]) != 0 ||
        engine_or_reply(o, inv_hold_get(s->e, v[1].ptr, v[1].len, h)) != 0)
        return;
    if (h->n_lines > INV_HOLD_LINES_MAX)
        h->n_lines = INV_HOLD_LINES_MAX; /* defended: engine contract */
    resp_w_array(o, 6);
    resp_w_bulk_str(o, hold_state_name(h->state));
    resp_w_int(o, h->expires_at_ms);
    resp_w_array(o, h->n_lines);
    for (size_t i = 0; i < h->n_lines; i++) {
        resp_w_array(o, 4);
        resp_w_bulk_u64(o, h->lines[i].item);
        resp_w_bulk_u64(o, h->lines[i].location);
        resp_w_int(o, h->lines[i].qty);
        resp_w_int(o, h->committed[i]);
    }
    resp_w_bulk_str(o, h->buyer);
    resp_w_bulk_str(o, h->order_ref);
    resp_w_int(o, h->created_at_ms);
}

/* ---- HOLD.LIST ----------------------------------------------------------------- */

/* HOLD.LIST's options at v[1..n): ITEM item, LOC loc, CURSOR c, COUNT n. */
static int hold_list_opts_or_reply(resp_out *o, const resp_arg *v, size_t n, inv_hold_filter *f,
                                   uint64_t *cursor, size_t *count)
{
    assert(reply_buf_ok(o) && v != NULL && f != NULL && cursor != NULL && count != NULL);
    assert(n >= 1 && n <= 9 && (n - 1) % 2 == 0); /* the row's arity: whole pairs */
    memset(f, 0, sizeof *f);
    *cursor = 0;
    *count = CMD_LIST_COUNT_DEFAULT;
    for (size_t i = 1; i + 1 < n; i += 2) {
        if (arg_eq(&v[i], "item")) {
            if (arg_u64_or_reply(o, &v[i + 1], "item id", &f->item) != 0)
                return -1;
            f->has_item = true;
        } else if (arg_eq(&v[i], "loc")) {
            if (arg_u64_or_reply(o, &v[i + 1], "location id", &f->location) != 0)
                return -1;
            f->has_location = true;
        } else {
            int rc = page_option_or_reply(o, &v[i], &v[i + 1], cursor, count);
            if (rc < 0)
                return -1;
            if (rc == 0) {
                resp_w_error(o, "INVALID", "expected ITEM, LOC, CURSOR or COUNT");
                return -1;
            }
        }
    }
    assert(*count >= 1 && *count <= INV_LIST_COUNT_MAX);
    return 0;
}

/* HOLD.LIST [ITEM item] [LOC loc] [CURSOR c] [COUNT n] ->
 * [next_cursor, [hold id ...]]: live holds, SCAN style. */
void cmd_hold_list(session *s, resp_out *o, const resp_arg *v, size_t n)
{
    inv_hold_filter f;
    uint64_t cursor, next = 0;
    size_t count, got = 0;
    assert(handler_call_ok(s, o, v, n, 1, 9));
    assert(s->e != NULL); /* not CMD_NOTENANT: the gate resolved the tenant */
    if (hold_list_opts_or_reply(o, v, n, &f, &cursor, &count) != 0 ||
        engine_or_reply(o, inv_hold_list(s->e, &f, cursor, count, s->scratch->hold_ids,
                                         s->scratch->hold_id_lens, NFIELDS(s->scratch->hold_ids),
                                         &got, &next)) != 0)
        return;
    if (got > NFIELDS(s->scratch->hold_ids))
        got = NFIELDS(s->scratch->hold_ids); /* defended: engine contract */
    resp_w_array(o, 2);
    resp_w_bulk_u64(o, next);
    resp_w_array(o, got);
    for (size_t i = 0; i < got; i++)
        resp_w_bulk(o, s->scratch->hold_ids[i], s->scratch->hold_id_lens[i]);
}

/* ---- the commands of this file (rows: cmd_internal.h) ---------------------- */

const cmd_def cmd_hold_rows[] = {
    /* HOLD.CREATE checks its own shape: lines, then options (parse_hold_create) */
    {"hold.create", 6, 0, 0, 0, CMD_WRITE | CMD_BATCH, cmd_batch_line,
     "HOLD.CREATE hold ttl_ms item loc qty [item loc qty ...] [BUYER id] [LIMIT n] [ORDER ref]"},
    {"hold.commit", 2, 0, 2, 3, CMD_WRITE | CMD_FAST | CMD_BATCH, cmd_batch_line,
     "HOLD.COMMIT hold [item loc qty ...]"},
    {"hold.release", 2, 2, 0, 0, CMD_WRITE | CMD_FAST | CMD_BATCH, cmd_batch_line,
     "HOLD.RELEASE hold"},
    {"hold.extend", 3, 3, 0, 0, CMD_WRITE | CMD_FAST | CMD_BATCH, cmd_batch_line,
     "HOLD.EXTEND hold ttl_ms"},
    {"hold.get", 2, 2, 0, 0, CMD_FAST | CMD_READONLY, cmd_hold_get, "HOLD.GET hold"},
    {"hold.list", 1, 9, 1, 2, CMD_READONLY, cmd_hold_list,
     "HOLD.LIST [ITEM item] [LOC loc] [CURSOR c] [COUNT n]"},
};
const size_t cmd_hold_rows_n = sizeof cmd_hold_rows / sizeof cmd_hold_rows[0];
