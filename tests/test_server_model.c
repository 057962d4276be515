/*
 * test_server_model.c — integration: the model-2 levels through a real
 * build/invcored (test_server_harness.h): LEVEL.GET item loc ALL (its
 * RESP2 pairs and RESP3 map), LEVEL.MOVE / RETURN / FULFIL / POLICY, the
 * hold commit's committed units, the oversell policy, inactive locations,
 * MULTI's refusal of the new writes, and all of it across a restart.
 *
 * Every refused request is checked for its exact error text and for
 * leaving the level exactly as it was (LEVEL.GET ALL before and after).
 * Timestamps are checked only for shape (whole seconds, created <=
 * updated, within a day of this test's clock), never for elapsed time.
 */
#include "test_server_harness.h"

static void setup(void)
{
    srv_suite_start(NULL);
}
static void teardown(void)
{
    srv_suite_stop();
}

TestSuite(server_model, .init = setup, .fini = teardown, .timeout = 60);

/* Locations 1 and 2, items 10 and 11; level (10, 1) with available qty. */
static void seed(long long qty)
{
    expect_status(C, "OK", "LOC.SET 1 name Main");
    expect_status(C, "OK", "LOC.SET 2 name Second");
    expect_status(C, "OK", "ITEM.SET 10 sku SKU-10");
    expect_status(C, "OK", "ITEM.SET 11 sku SKU-11");
    expect_level(C, qty, 0, "LEVEL.SET 10 1 %lld", qty);
}

/* ---- the full level ---------------------------------------------------------- */

/* LEVEL.GET ... ALL's fields, in the order the server sends them. */
enum {
    F_AVAILABLE,
    F_RESERVED,
    F_COMMITTED,
    F_INCOMING,
    F_DAMAGED,
    F_SAFETY_STOCK,
    F_QUALITY_CONTROL,
    F_ON_HAND,
    F_REVISION,
    F_CREATED_AT_MS,
    F_UPDATED_AT_MS,
    F_POLICY, /* 0 deny, 1 continue (a bulk string on the wire) */
    F_PREORDER_LIMIT,
    F_LOCATION_ACTIVE, /* an integer in RESP2, a boolean in RESP3 */
    F_FIELDS
};

static const char *const full_names[F_FIELDS] = {
    "available",     "reserved",        "committed",      "incoming",        "damaged",
    "safety_stock",  "quality_control", "on_hand",        "revision",        "created_at_ms",
    "updated_at_ms", "policy",          "preorder_limit", "location_active",
};

typedef struct {
    long long v[F_FIELDS];
} full_t;

#define DAY_MS (86400LL * 1000)

/* The invariants every full level keeps: on_hand is the sum of the
 * on-hand quantities, reserved and the others never negative, revision
 * >= 1, timestamps whole seconds in created <= updated near our clock. */
static void full_check(const full_t *f, const char *what)
{
    const long long *v = f->v;
    cr_assert_eq(v[F_ON_HAND],
                 v[F_AVAILABLE] + v[F_RESERVED] + v[F_COMMITTED] + v[F_DAMAGED] +
                     v[F_SAFETY_STOCK] + v[F_QUALITY_CONTROL],
                 "%s: on_hand %lld is not the sum of the on-hand quantities", what, v[F_ON_HAND]);
    for (int i = F_RESERVED; i <= F_QUALITY_CONTROL; i++)
        cr_assert_geq(v[i], 0, "%s: %s %lld < 0", what, full_names[i], v[i]);
    cr_assert_geq(v[F_REVISION], 1, "%s: revision", what);
    long long now_ms = (long long)time(NULL) * 1000;
    for (int i = F_CREATED_AT_MS; i <= F_UPDATED_AT_MS; i++) {
        cr_assert_eq(v[i] % 1000, 0, "%s: %s %lld is not whole seconds", what, full_names[i], v[i]);
        cr_assert(v[i] > now_ms - DAY_MS && v[i] < now_ms + DAY_MS,
                  "%s: %s %lld is not within a day of %lld", what, full_names[i], v[i], now_ms);
    }
    cr_assert_leq(v[F_CREATED_AT_MS], v[F_UPDATED_AT_MS], "%s: created after updated", what);
    cr_assert(v[F_LOCATION_ACTIVE] == 0 || v[F_LOCATION_ACTIVE] == 1, "%s: location_active", what);
    cr_assert(v[F_PREORDER_LIMIT] >= -1, "%s: preorder_limit %lld", what, v[F_PREORDER_LIMIT]);
}

/* A RESP2 full level: 14 field/value pairs, names in order. */
static void full_of(const redisReply *r, full_t *f, const char *what)
{
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY, "%s: type %d '%s'", what, r->type,
                 r->str ? r->str : "");
    cr_assert_eq(r->elements, 2 * F_FIELDS, "%s: %zu elements", what, r->elements);
    for (int i = 0; i < F_FIELDS; i++) {
        const redisReply *k = r->element[2 * i], *val = r->element[2 * i + 1];
        cr_assert_eq(k->type, REDIS_REPLY_STRING, "%s: field %d's name", what, i);
        cr_assert_str_eq(k->str, full_names[i], "%s: field %d", what, i);
        if (i == F_POLICY) {
            cr_assert_eq(val->type, REDIS_REPLY_STRING, "%s: policy's type %d", what, val->type);
            cr_assert(strcmp(val->str, "deny") == 0 || strcmp(val->str, "continue") == 0,
                      "%s: policy '%s'", what, val->str);
            f->v[i] = strcmp(val->str, "continue") == 0;
        } else {
            cr_assert_eq(val->type, REDIS_REPLY_INTEGER, "%s: %s's type %d", what, full_names[i],
                         val->type);
            f->v[i] = val->integer;
        }
    }
    full_check(f, what);
}

/* Runs a command that answers a full level (hiredis format). */
static void full_cmd(full_t *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(C, fmt, ap);
    va_end(ap);
    cr_assert_not_null(r, "no reply to '%s'", fmt);
    full_of(r, f, fmt);
    freeReplyObject(r);
}

static void get_full(full_t *f, int item, int loc)
{
    full_cmd(f, "LEVEL.GET %d %d ALL", item, loc);
}

/* The seven named quantities, in inv_qty_name's order. */
static void expect_qty_at(int line, const full_t *f, long long available, long long reserved,
                          long long committed, long long incoming, long long damaged,
                          long long safety_stock, long long quality_control)
{
    const long long want[] = {available, reserved,     committed,      incoming,
                              damaged,   safety_stock, quality_control};
    for (int i = 0; i <= F_QUALITY_CONTROL; i++)
        cr_assert_eq(f->v[i], want[i], "line %d: %s is %lld, want %lld", line, full_names[i],
                     f->v[i], want[i]);
}
#define EXPECT_QTY(f, ...) expect_qty_at(__LINE__, f, __VA_ARGS__)

/* The level (item, loc) is exactly as before (revision and times too). */
static void expect_unchanged(int item, int loc, const full_t *before, const char *after)
{
    full_t now;
    get_full(&now, item, loc);
    for (int i = 0; i < F_FIELDS; i++)
        cr_assert_eq(now.v[i], before->v[i], "after '%s': %s changed from %lld to %lld", after,
                     full_names[i], before->v[i], now.v[i]);
}

/* Expects exactly the error text want (without the leading '-'). */
static void expect_error_is(const char *want, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(C, fmt, ap);
    va_end(ap);
    cr_assert_not_null(r, "no reply to '%s'", fmt);
    cr_assert_eq(r->type, REDIS_REPLY_ERROR, "'%s': want -%s, got type %d '%s'", fmt, want, r->type,
                 r->str ? r->str : "");
    cr_assert_str_eq(r->str, want, "'%s'", fmt);
    freeReplyObject(r);
}

typedef struct {
    const char *req; /* a request without format directives */
    const char *err; /* its exact error; "X ..." stands for any error X */
} refusal;

/* Each request answers its error and changes nothing on (item, loc). */
static void expect_refusals(int item, int loc, const refusal *cases, size_t n)
{
    full_t before;
    get_full(&before, item, loc);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(cases[i].err);
        char code[32];
        if (len > 4 && len - 3 < sizeof code && strcmp(cases[i].err + len - 4, " ...") == 0) {
            memcpy(code, cases[i].err, len - 3); /* "X " */
            code[len - 3] = 0;
            expect_error(C, code, cases[i].req);
        } else
            expect_error_is(cases[i].err, cases[i].req);
        expect_unchanged(item, loc, &before, cases[i].req);
    }
}

#define NCASES(a) (sizeof(a) / sizeof((a)[0]))

/* ---- LEVEL.GET ALL ------------------------------------------------------------- */

Test(server_model, level_get_all_answers_every_named_quantity_in_order)
{
    seed(10);
    full_t f;
    get_full(&f, 10, 1); /* full_of checks the names, their order, the types */
    EXPECT_QTY(&f, 10, 0, 0, 0, 0, 0, 0);
    cr_assert_eq(f.v[F_ON_HAND], 10);
    cr_assert_eq(f.v[F_POLICY], 0, "deny by default");
    cr_assert_eq(f.v[F_LOCATION_ACTIVE], 1);
    long long rev = expect_level(C, 10, 0, "LEVEL.GET 10 1");
    cr_assert_eq(f.v[F_REVISION], rev, "ALL and the short reply share the revision");

    /* a change: the revision moves, created_at stays */
    full_t g;
    expect_level(C, 7, 0, "LEVEL.SET 10 1 7");
    full_cmd(&g, "level.get 10 1 all"); /* case-insensitive keyword */
    EXPECT_QTY(&g, 7, 0, 0, 0, 0, 0, 0);
    cr_assert_gt(g.v[F_REVISION], f.v[F_REVISION]);
    cr_assert_eq(g.v[F_CREATED_AT_MS], f.v[F_CREATED_AT_MS]);

    static const refusal cases[] = {
        {"LEVEL.GET 10 1 EVERYTHING", "INVALID expected ALL"},
        {"LEVEL.GET 10 1 ALL X", "ERR wrong number of arguments for 'level.get' command"},
        {"LEVEL.GET 10 2 ALL", "NOTFOUND no such item, location, level or hold"},
        {"LEVEL.GET 99 1 ALL", "NOTFOUND no such item, location, level or hold"},
        {"LEVEL.GET x 1 ALL",
         "INVALID item id must be a decimal integer in 0..18446744073709551615"},
    };
    expect_refusals(10, 1, cases, NCASES(cases));
}

Test(server_model, level_get_all_follows_holds_commits_and_moves)
{
    seed(10);
    full_t f;
    expect_status(C, "OK", "HOLD.CREATE h1 600000 10 1 3");
    get_full(&f, 10, 1);
    EXPECT_QTY(&f, 7, 3, 0, 0, 0, 0, 0);
    cr_assert_eq(f.v[F_ON_HAND], 10);
    expect_level(C, 7, 3, "LEVEL.GET 10 1");

    expect_status(C, "OK", "HOLD.COMMIT h1");
    get_full(&f, 10, 1);
    EXPECT_QTY(&f, 7, 0, 3, 0, 0, 0, 0);
    cr_assert_eq(f.v[F_ON_HAND], 10, "committed units stay on hand until fulfilled");
    expect_level(C, 7, 0, "LEVEL.GET 10 1"); /* the short reply: reserved only */

    /* a repeated commit counts nothing twice */
    expect_status(C, "OK", "HOLD.COMMIT h1");
    expect_unchanged(10, 1, &f, "HOLD.COMMIT h1 (again)");
    expect_error_is("CONFLICT revision or hold lines do not match", "HOLD.RELEASE h1");
    expect_unchanged(10, 1, &f, "HOLD.RELEASE h1");

    full_t m;
    full_cmd(&m, "LEVEL.MOVE 10 1 2 FROM available TO damaged");
    EXPECT_QTY(&m, 5, 0, 3, 0, 2, 0, 0);
    cr_assert_eq(m.v[F_ON_HAND], 10);
    cr_assert_gt(m.v[F_REVISION], f.v[F_REVISION]);
    expect_unchanged(10, 1, &m, "LEVEL.MOVE (its reply is the level after)");
}

/* hiredis 0.14 has no RESP3: read the map from a raw socket. */

/* The end of one complete RESP3 value at p, or NULL if it is not all in
 * [p, end) yet (or is a type these tests do not expect). */
static const char *r3_skip(const char *p, const char *end, int depth)
{
    const char *crlf = p < end ? memchr(p, '\n', (size_t)(end - p)) : NULL;
    if (crlf == NULL || depth > 8)
        return NULL;
    long long n = atoll(p + 1);
    const char *q = crlf + 1;
    switch (*p) {
    case '+':
    case '-':
    case ':':
    case '#':
    case '_':
        return q;
    case '$':
    case '=':
        return end - q >= n + 2 ? q + n + 2 : NULL;
    case '*':
    case '~':
    case '>':
    case '%':
    case '|':
        for (long long i = 0; i < ((*p == '%' || *p == '|') ? 2 * n : n) && q; i++)
            q = r3_skip(q, end, depth + 1);
        return q;
    default:
        return NULL;
    }
}

/* Sends req, reads one whole RESP3 value into buf (NUL-terminated). */
static size_t r3_request(int fd, const char *req, char *buf, size_t cap)
{
    size_t got = 0;
    raw_send(fd, req, strlen(req));
    buf[0] = 0;
    long long deadline = srv_now_ms() + 5000;
    while (r3_skip(buf, buf + got, 0) == NULL && got + 1 < cap && srv_now_ms() < deadline) {
        got += raw_recv(fd, buf + got, cap - 1 - got, 1, 100);
        buf[got] = 0;
    }
    cr_assert_not_null(r3_skip(buf, buf + got, 0), "'%s': incomplete reply '%s'", req, buf);
    return got;
}

/* A RESP3 full level: a map of the same 14 keys, location_active a
 * boolean, policy a bulk string. */
static void full_of_resp3(const char *buf, size_t len, full_t *f, const char *what)
{
    const char *p = buf, *end = buf + len;
    cr_assert(strncmp(p, "%14\r\n", 5) == 0, "%s: want a map of 14, got '%s'", what, buf);
    p += 5;
    for (int i = 0; i < F_FIELDS; i++) {
        char key[64];
        size_t klen = (size_t)atoll(p + 1);
        cr_assert(*p == '$' && klen < sizeof key, "%s: key %d '%s'", what, i, p);
        const char *k = strchr(p, '\n') + 1;
        memcpy(key, k, klen);
        key[klen] = 0;
        cr_assert_str_eq(key, full_names[i], "%s: key %d", what, i);
        p = k + klen + 2;
        if (i == F_POLICY) {
            cr_assert(strncmp(p, "$4\r\ndeny\r\n", 10) == 0 ||
                          strncmp(p, "$8\r\ncontinue\r\n", 14) == 0,
                      "%s: policy '%s'", what, p);
            f->v[i] = p[1] == '8';
        } else if (i == F_LOCATION_ACTIVE) {
            cr_assert(strncmp(p, "#t\r\n", 4) == 0 || strncmp(p, "#f\r\n", 4) == 0,
                      "%s: location_active is not a RESP3 boolean: '%s'", what, p);
            f->v[i] = p[1] == 't';
        } else {
            cr_assert_eq(*p, ':', "%s: %s is not an integer: '%s'", what, full_names[i], p);
            f->v[i] = atoll(p + 1);
        }
        p = r3_skip(p, end, 0);
        cr_assert_not_null(p);
    }
    cr_assert_eq(p, end, "%s: bytes after the map", what);
    full_check(f, what);
}

Test(server_model, level_get_all_is_a_map_in_resp3)
{
    seed(10);
    expect_status(C, "OK", "HOLD.CREATE h 600000 10 1 4");
    expect_status(C, "OK", "HOLD.COMMIT h");
    expect_status(C, "OK", "HOLD.CREATE h2 600000 10 1 1");
    expect_status(C, "OK", "LEVEL.POLICY 10 1 CONTINUE LIMIT 5");
    full_t want;
    full_cmd(&want, "LEVEL.MOVE 10 1 2 FROM available TO quality_control");
    EXPECT_QTY(&want, 3, 1, 4, 0, 0, 0, 2);

    int fd = raw_connect(&S);
    char buf[4096];
    size_t n = r3_request(fd, "HELLO 3\r\n", buf, sizeof buf);
    cr_assert(buf[0] == '%', "HELLO 3: %s", buf);
    n = r3_request(fd, "LEVEL.GET 10 1 ALL\r\n", buf, sizeof buf);
    full_t f;
    full_of_resp3(buf, n, &f, "LEVEL.GET 10 1 ALL (RESP3)");
    for (int i = 0; i < F_FIELDS; i++)
        cr_assert_eq(f.v[i], want.v[i], "RESP3 %s %lld, RESP2 %lld", full_names[i], f.v[i],
                     want.v[i]);
    cr_assert_eq(f.v[F_POLICY], 1);
    cr_assert_eq(f.v[F_PREORDER_LIMIT], 5);
    cr_assert_eq(f.v[F_LOCATION_ACTIVE], 1);

    /* LEVEL.MOVE's reply is the same map */
    n = r3_request(fd, "LEVEL.MOVE 10 1 1 FROM quality_control TO available\r\n", buf, sizeof buf);
    full_of_resp3(buf, n, &f, "LEVEL.MOVE (RESP3)");
    EXPECT_QTY(&f, 4, 1, 4, 0, 0, 0, 1);

    /* an inactive location reads #f */
    expect_status(C, "OK", "LOC.SET 1 active false");
    n = r3_request(fd, "LEVEL.GET 10 1 ALL\r\n", buf, sizeof buf);
    full_of_resp3(buf, n, &f, "inactive (RESP3)");
    cr_assert_eq(f.v[F_LOCATION_ACTIVE], 0);
    close(fd);
}

/* ---- LEVEL.MOVE ------------------------------------------------------------------ */

Test(server_model, moves_between_on_hand_quantities_conserve_on_hand)
{
    seed(20);
    full_t f, prev;
    get_full(&prev, 10, 1);
    full_cmd(&f, "LEVEL.MOVE 10 1 5 FROM available TO damaged");
    EXPECT_QTY(&f, 15, 0, 0, 0, 5, 0, 0);
    cr_assert_eq(f.v[F_ON_HAND], 20);
    cr_assert_gt(f.v[F_REVISION], prev.v[F_REVISION]);
    prev = f;
    full_cmd(&f, "LEVEL.MOVE 10 1 3 FROM damaged TO quality_control");
    EXPECT_QTY(&f, 15, 0, 0, 0, 2, 0, 3);
    cr_assert_eq(f.v[F_ON_HAND], 20);
    cr_assert_gt(f.v[F_REVISION], prev.v[F_REVISION]);
    full_cmd(&f, "LEVEL.MOVE 10 1 2 FROM quality_control TO safety_stock");
    EXPECT_QTY(&f, 15, 0, 0, 0, 2, 2, 1);
    full_cmd(&f, "LEVEL.MOVE 10 1 2 FROM safety_stock TO available");
    EXPECT_QTY(&f, 17, 0, 0, 0, 2, 0, 1);
    full_cmd(&f, "level.move 10 1 1 from quality_control to damaged"); /* keywords any case */
    EXPECT_QTY(&f, 17, 0, 0, 0, 3, 0, 0);
    cr_assert_eq(f.v[F_ON_HAND], 20);
    /* everything out of available, and back */
    full_cmd(&f, "LEVEL.MOVE 10 1 17 FROM available TO safety_stock");
    EXPECT_QTY(&f, 0, 0, 0, 0, 3, 17, 0);
    cr_assert_eq(f.v[F_ON_HAND], 20);
    full_cmd(&f, "LEVEL.MOVE 10 1 17 FROM safety_stock TO available FLOOR 0");
    EXPECT_QTY(&f, 17, 0, 0, 0, 3, 0, 0);
    expect_unchanged(10, 1, &f, "the last move (its reply is the level after)");
    expect_level(C, 17, 0, "LEVEL.GET 10 1");
}

Test(server_model, a_receipt_moves_incoming_to_available_and_raises_on_hand)
{
    seed(10);
    full_t f;
    /* incoming is not on hand: units moved there leave on_hand */
    full_cmd(&f, "LEVEL.MOVE 10 1 4 FROM available TO incoming");
    EXPECT_QTY(&f, 6, 0, 0, 4, 0, 0, 0);
    cr_assert_eq(f.v[F_ON_HAND], 6);
    full_cmd(&f, "LEVEL.MOVE 10 1 3 FROM incoming TO available");
    EXPECT_QTY(&f, 9, 0, 0, 1, 0, 0, 0);
    cr_assert_eq(f.v[F_ON_HAND], 9, "a receipt raises on_hand");
    full_cmd(&f, "LEVEL.MOVE 10 1 1 FROM incoming TO quality_control");
    EXPECT_QTY(&f, 9, 0, 0, 0, 0, 0, 1);
    cr_assert_eq(f.v[F_ON_HAND], 10);
    expect_error(C, "INSUFFICIENT ", "LEVEL.MOVE 10 1 1 FROM incoming TO available");
}

/* The message of a move refused for want of units says which quantity
 * lacked them and how many it has (STYLE.md: "Messages say what was
 * wrong and with which value"), as LEVEL.FULFIL's "committed <n>" does.
 * It must not name available when available was not the quantity moved
 * from. */
Test(server_model, a_refused_move_names_the_quantity_it_lacks)
{
    seed(10);
    expect_status(C, "OK", "HOLD.CREATE sold 600000 10 1 3");
    expect_status(C, "OK", "HOLD.COMMIT sold");
    full_t f;
    full_cmd(&f, "LEVEL.MOVE 10 1 2 FROM available TO damaged");
    EXPECT_QTY(&f, 5, 0, 3, 0, 2, 0, 0);
    static const struct {
        const char *req, *names;
    } cases[] = {
        {"LEVEL.MOVE 10 1 3 FROM damaged TO available", "damaged 2"},
        {"LEVEL.MOVE 10 1 4 FROM committed TO available", "committed 3"},
        {"LEVEL.RETURN 10 1 4", "committed 3"},
        {"LEVEL.MOVE 10 1 1 FROM incoming TO available", "incoming 0"},
        {"LEVEL.MOVE 10 1 6 FROM available TO damaged", "available 5"},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        redisReply *r = cmd(C, cases[i].req);
        cr_assert_eq(r->type, REDIS_REPLY_ERROR, "'%s': type %d", cases[i].req, r->type);
        cr_assert(strncmp(r->str, "INSUFFICIENT ", 13) == 0, "'%s': %s", cases[i].req, r->str);
        cr_expect_not_null(strstr(r->str, cases[i].names),
                           "'%s' answered '%s', which does not name '%s'", cases[i].req, r->str,
                           cases[i].names);
        freeReplyObject(r);
        expect_unchanged(10, 1, &f, cases[i].req);
    }
}

Test(server_model, committed_units_move_back_to_available)
{
    seed(10);
    expect_status(C, "OK", "HOLD.CREATE sold 600000 10 1 6");
    expect_status(C, "OK", "HOLD.COMMIT sold");
    full_t f;
    full_cmd(&f, "LEVEL.MOVE 10 1 2 FROM committed TO available");
    EXPECT_QTY(&f, 6, 0, 4, 0, 0, 0, 0);
    cr_assert_eq(f.v[F_ON_HAND], 10);
    full_cmd(&f, "LEVEL.RETURN 10 1 3");
    EXPECT_QTY(&f, 9, 0, 1, 0, 0, 0, 0);
    cr_assert_eq(f.v[F_ON_HAND], 10);
    /* committed to another on-hand quantity: a sold unit found damaged */
    full_cmd(&f, "LEVEL.MOVE 10 1 1 FROM committed TO damaged");
    EXPECT_QTY(&f, 9, 0, 0, 0, 1, 0, 0);
    cr_assert_eq(f.v[F_ON_HAND], 10);
    expect_level(C, 9, 0, "LEVEL.GET 10 1");
}

Test(server_model, a_bad_move_answers_its_error_and_changes_nothing)
{
    seed(10);
    expect_status(C, "OK", "HOLD.CREATE h 600000 10 1 2"); /* reserved 2 */
    full_t f;
    full_cmd(&f, "LEVEL.MOVE 10 1 2 FROM available TO damaged");
    EXPECT_QTY(&f, 6, 2, 0, 0, 2, 0, 0);
#define UNKNOWN_QTY(x)                                                                          \
    "INVALID unknown quantity '" x "' (available, committed, incoming, damaged, safety_stock, " \
    "quality_control)"
#define MOVE_ARITY "ERR wrong number of arguments for 'level.move' command"
#define QTY_LIMIT "LIMIT quantity must be within -1000000000..1000000000"
    static const refusal cases[] = {
        {"LEVEL.MOVE 10 1 1 FROM broken TO damaged", UNKNOWN_QTY("broken")},
        {"LEVEL.MOVE 10 1 1 FROM available TO lost", UNKNOWN_QTY("lost")},
        {"LEVEL.MOVE 10 1 1 FROM Available TO damaged", UNKNOWN_QTY("Available")},
        {"LEVEL.MOVE 10 1 1 FROM on_hand TO damaged", UNKNOWN_QTY("on_hand")},
        {"LEVEL.MOVE 10 1 1 FROM reserved TO damaged", "INVALID reserved changes only by holds"},
        {"LEVEL.MOVE 10 1 1 FROM available TO reserved", "INVALID reserved changes only by holds"},
        {"LEVEL.MOVE 10 1 1 FROM damaged TO damaged", "INVALID FROM and TO must differ"},
        {"LEVEL.MOVE 10 1 1 FROM damaged TO available FROM available",
         "INVALID FROM and TO must differ"}, /* a repeated option: the last one counts */
        {"LEVEL.MOVE 10 1 1 FROM available FLOOR 0", "INVALID FROM and TO are required"},
        {"LEVEL.MOVE 10 1 1 TO damaged FLOOR 0", "INVALID FROM and TO are required"},
        {"LEVEL.MOVE 10 1 1 FROM available FROM damaged", "INVALID FROM and TO are required"},
        {"LEVEL.MOVE 10 1 1 FROM available", MOVE_ARITY},
        {"LEVEL.MOVE 10 1 1 TO damaged", MOVE_ARITY},
        {"LEVEL.MOVE 10 1 1", MOVE_ARITY},
        {"LEVEL.MOVE 10 1 1 FROM available TO damaged FLOOR", MOVE_ARITY},
        {"LEVEL.MOVE 10 1 1 FROM available TO damaged FLOOR 0 X", MOVE_ARITY},
        {"LEVEL.MOVE 10 1 1 FROM available TO damaged FLOOR 0 X Y", MOVE_ARITY},
        {"LEVEL.MOVE 10 1 0 FROM available TO damaged", "INVALID quantity must be at least 1"},
        {"LEVEL.MOVE 10 1 -1 FROM available TO damaged", "INVALID quantity must be at least 1"},
        {"LEVEL.MOVE 10 1 -1000000001 FROM available TO damaged", QTY_LIMIT},
        {"LEVEL.MOVE 10 1 two FROM available TO damaged",
         "INVALID quantity must be a decimal integer"},
        {"LEVEL.MOVE 10 1 1.5 FROM available TO damaged",
         "INVALID quantity must be a decimal integer"},
        {"LEVEL.MOVE 10 1 1000000001 FROM available TO damaged", QTY_LIMIT},
        {"LEVEL.MOVE 10 1 99999999999999999999 FROM available TO damaged",
         "INVALID quantity must be a decimal integer"},
        {"LEVEL.MOVE 10 1 1 FROM available TO damaged FLOOR low",
         "INVALID floor must be a decimal integer"},
        {"LEVEL.MOVE 10 1 1 FROM available TO damaged FLOOR -1000000001",
         "LIMIT floor must be within -1000000000..1000000000"},
        {"LEVEL.MOVE 10 1 1 FROM available TO damaged LIMIT 3",
         "INVALID expected FROM, TO or FLOOR"},
        {"LEVEL.MOVE 10 1 1 FROM available TO damaged IFREV 3",
         "INVALID expected FROM, TO or FLOOR"},
        /* more than is there: available 6 (deny), damaged 2, the rest 0 */
        {"LEVEL.MOVE 10 1 7 FROM available TO damaged", "INSUFFICIENT available 6"},
        {"LEVEL.MOVE 10 1 1000000000 FROM available TO damaged", "INSUFFICIENT available 6"},
        {"LEVEL.MOVE 10 1 2 FROM available TO damaged FLOOR 5", "INSUFFICIENT available 6"},
        /* (what these say is a_refused_move_names_the_quantity_it_lacks's) */
        {"LEVEL.MOVE 10 1 3 FROM damaged TO available", "INSUFFICIENT ..."},
        {"LEVEL.MOVE 10 1 1 FROM committed TO available", "INSUFFICIENT ..."},
        {"LEVEL.MOVE 10 1 1 FROM incoming TO available", "INSUFFICIENT ..."},
        {"LEVEL.MOVE 10 1 1 FROM safety_stock TO damaged", "INSUFFICIENT ..."},
        {"LEVEL.MOVE 10 1 1 FROM quality_control TO damaged", "INSUFFICIENT ..."},
        {"LEVEL.RETURN 10 1 1", "INSUFFICIENT ..."},
        /* ids and the level */
        {"LEVEL.MOVE 10 2 1 FROM available TO damaged",
         "NOTFOUND no such item, location, level or hold"},
        {"LEVEL.MOVE 12 1 1 FROM available TO damaged",
         "NOTFOUND no such item, location, level or hold"},
        {"LEVEL.MOVE -10 1 1 FROM available TO damaged",
         "INVALID item id must be a decimal integer in 0..18446744073709551615"},
        {"LEVEL.MOVE 10 x 1 FROM available TO damaged",
         "INVALID location id must be a decimal integer in 0..18446744073709551615"},
    };
#undef UNKNOWN_QTY
#undef MOVE_ARITY
    expect_refusals(10, 1, cases, NCASES(cases));

    /* the bounds themselves are accepted */
    full_cmd(&f, "LEVEL.MOVE 10 1 6 FROM available TO damaged FLOOR 0");
    EXPECT_QTY(&f, 0, 2, 0, 0, 8, 0, 0);
    full_cmd(&f, "LEVEL.MOVE 10 1 8 FROM damaged TO available FLOOR -1000000000");
    EXPECT_QTY(&f, 8, 2, 0, 0, 0, 0, 0);
}

Test(server_model, bad_return_and_fulfil_requests_change_nothing)
{
    seed(10);
    expect_status(C, "OK", "HOLD.CREATE h 600000 10 1 3");
    expect_status(C, "OK", "HOLD.COMMIT h");
    static const refusal cases[] = {
        {"LEVEL.RETURN 10 1", "ERR wrong number of arguments for 'level.return' command"},
        {"LEVEL.RETURN 10 1 1 FROM committed",
         "ERR wrong number of arguments for 'level.return' command"},
        {"LEVEL.RETURN 10 1 0", "INVALID quantity must be at least 1"},
        {"LEVEL.RETURN 10 1 -2", "INVALID quantity must be at least 1"},
        {"LEVEL.RETURN 10 1 x", "INVALID quantity must be a decimal integer"},
        {"LEVEL.RETURN 10 1 1000000001", QTY_LIMIT},
        {"LEVEL.RETURN 10 1 4", "INSUFFICIENT ..."},
        {"LEVEL.RETURN 10 2 1", "NOTFOUND no such item, location, level or hold"},
        {"LEVEL.FULFIL 10 1", "ERR wrong number of arguments for 'level.fulfil' command"},
        {"LEVEL.FULFIL 10 1 1 2", "ERR wrong number of arguments for 'level.fulfil' command"},
        {"LEVEL.FULFIL 10 1 0", "INVALID quantity must be at least 1"},
        {"LEVEL.FULFIL 10 1 -1", "INVALID quantity must be at least 1"},
        {"LEVEL.FULFIL 10 1 x", "INVALID quantity must be a decimal integer"},
        {"LEVEL.FULFIL 10 1 1000000001", QTY_LIMIT},
        {"LEVEL.FULFIL 10 1 4", "INSUFFICIENT committed 3"},
        {"LEVEL.FULFIL 10 1 1000000000", "INSUFFICIENT committed 3"},
        {"LEVEL.FULFIL 10 2 1", "NOTFOUND no such item, location, level or hold"},
        {"LEVEL.FULFIL 99 1 1", "NOTFOUND no such item, location, level or hold"},
    };
    expect_refusals(10, 1, cases, NCASES(cases));
}
#undef QTY_LIMIT

/* ---- sold units: commit, fulfil, return, delete ------------------------------------ */

Test(server_model, committed_units_are_fulfilled_returned_and_block_deletion)
{
    seed(10);
    expect_status(C, "OK", "HOLD.CREATE h1 600000 10 1 4");
    expect_status(C, "OK", "HOLD.COMMIT h1");
    full_t f;
    get_full(&f, 10, 1);
    EXPECT_QTY(&f, 6, 0, 4, 0, 0, 0, 0);
    cr_assert_eq(f.v[F_ON_HAND], 10);

    redisReply *l = cmd(C, "LEVEL.LIST 10"); /* reserved: live holds only */
    cr_assert_eq(l->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(l->elements, 1);
    cr_assert_str_eq(l->element[0]->element[0]->str, "1");
    cr_assert_eq(l->element[0]->element[1]->integer, 6);
    cr_assert_eq(l->element[0]->element[2]->integer, 0);
    cr_assert_eq(l->element[0]->element[3]->integer, f.v[F_REVISION]);
    freeReplyObject(l);
    expect_error_is("CONFLICT revision or hold lines do not match", "LEVEL.DEL 10 1");
    expect_unchanged(10, 1, &f, "LEVEL.DEL with committed units");
    expect_error_is("INSUFFICIENT committed 4", "LEVEL.FULFIL 10 1 5");
    expect_unchanged(10, 1, &f, "LEVEL.FULFIL 5 of 4");

    full_t g;
    full_cmd(&g, "LEVEL.FULFIL 10 1 3");
    EXPECT_QTY(&g, 6, 0, 1, 0, 0, 0, 0);
    cr_assert_eq(g.v[F_ON_HAND], 7, "shipped units leave on_hand");
    cr_assert_gt(g.v[F_REVISION], f.v[F_REVISION]);
    expect_unchanged(10, 1, &g, "LEVEL.FULFIL (its reply is the level after)");
    expect_error_is("CONFLICT revision or hold lines do not match", "LEVEL.DEL 10 1");

    full_cmd(&g, "LEVEL.RETURN 10 1 1");
    EXPECT_QTY(&g, 7, 0, 0, 0, 0, 0, 0);
    cr_assert_eq(g.v[F_ON_HAND], 7);
    expect_error_is("INSUFFICIENT committed 0", "LEVEL.FULFIL 10 1 1");

    /* a live hold blocks deletion too; released, the level goes */
    expect_status(C, "OK", "HOLD.CREATE h2 600000 10 1 1");
    expect_error_is("CONFLICT revision or hold lines do not match", "LEVEL.DEL 10 1");
    expect_status(C, "OK", "HOLD.RELEASE h2");
    expect_status(C, "OK", "LEVEL.DEL 10 1");
    expect_error_is("NOTFOUND no such item, location, level or hold", "LEVEL.GET 10 1 ALL");

    /* re-created, the level starts again from nothing */
    expect_level(C, 2, 0, "LEVEL.SET 10 1 2");
    get_full(&g, 10, 1);
    EXPECT_QTY(&g, 2, 0, 0, 0, 0, 0, 0);
    cr_assert_eq(g.v[F_POLICY], 0);
}

Test(server_model, a_hold_over_two_levels_commits_on_both)
{
    seed(10);
    expect_level(C, 5, 0, "LEVEL.SET 11 2 5");
    expect_status(C, "OK", "HOLD.CREATE two 600000 10 1 2 11 2 5");
    expect_status(C, "OK", "HOLD.COMMIT two");
    full_t a, b;
    get_full(&a, 10, 1);
    get_full(&b, 11, 2);
    EXPECT_QTY(&a, 8, 0, 2, 0, 0, 0, 0);
    EXPECT_QTY(&b, 0, 0, 5, 0, 0, 0, 0);
    full_cmd(&b, "LEVEL.FULFIL 11 2 5");
    EXPECT_QTY(&b, 0, 0, 0, 0, 0, 0, 0);
    cr_assert_eq(b.v[F_ON_HAND], 0);
    expect_unchanged(10, 1, &a, "LEVEL.FULFIL on another level");
}

/* ---- the oversell policy ------------------------------------------------------------ */

/* A level that never had a policy set and one set to DENY are in the same
 * state: they must read the same (preorder_limit included), and setting
 * DENY on a default level must change nothing, its revision included. */
Test(server_model, deny_reads_the_same_whether_default_or_set)
{
    seed(3);
    full_t f;
    get_full(&f, 10, 1);
    cr_assert_eq(f.v[F_POLICY], 0);
    expect_status(C, "OK", "LEVEL.POLICY 10 1 DENY");
    full_t g;
    get_full(&g, 10, 1);
    cr_expect_eq(g.v[F_PREORDER_LIMIT], f.v[F_PREORDER_LIMIT],
                 "deny reads preorder_limit %lld by default, %lld once set", f.v[F_PREORDER_LIMIT],
                 g.v[F_PREORDER_LIMIT]);
    expect_unchanged(10, 1, &f, "LEVEL.POLICY DENY on a level that denies by default");
}

Test(server_model, deny_by_default_refuses_a_floorless_decrement_below_zero)
{
    seed(3);
    full_t f;
    get_full(&f, 10, 1);
    expect_error_is("INSUFFICIENT available 3", "LEVEL.ADJUST 10 1 -4");
    expect_unchanged(10, 1, &f, "LEVEL.ADJUST -4");
    expect_level(C, 0, 0, "LEVEL.ADJUST 10 1 -3");
    expect_error_is("INSUFFICIENT available 0", "LEVEL.ADJUST 10 1 -1");
    /* an explicit FLOOR always wins over the policy */
    expect_level(C, -2, 0, "LEVEL.ADJUST 10 1 -2 FLOOR -5");
    expect_error_is("INSUFFICIENT available -2", "LEVEL.ADJUST 10 1 -4 FLOOR -5");
    /* below zero, increments still apply and decrements stay refused */
    expect_level(C, -1, 0, "LEVEL.ADJUST 10 1 1");
    expect_error_is("INSUFFICIENT available -1", "LEVEL.ADJUST 10 1 -1");
    /* LEVEL.SET is not a decrement: any value */
    expect_level(C, -7, 0, "LEVEL.SET 10 1 -7");
    get_full(&f, 10, 1);
    EXPECT_QTY(&f, -7, 0, 0, 0, 0, 0, 0);
    cr_assert_eq(f.v[F_POLICY], 0);
}

Test(server_model, continue_lets_decrements_go_to_the_preorder_limit)
{
    seed(3);
    full_t f;
    expect_status(C, "OK", "LEVEL.POLICY 10 1 CONTINUE LIMIT 2");
    get_full(&f, 10, 1);
    cr_assert_eq(f.v[F_POLICY], 1);
    cr_assert_eq(f.v[F_PREORDER_LIMIT], 2);
    EXPECT_QTY(&f, 3, 0, 0, 0, 0, 0, 0);
    expect_level(C, -2, 0, "LEVEL.ADJUST 10 1 -5");
    expect_error_is("INSUFFICIENT available -2", "LEVEL.ADJUST 10 1 -1");
    get_full(&f, 10, 1);
    cr_assert_eq(f.v[F_ON_HAND], -2);

    /* an explicit FLOOR still wins, either way */
    expect_error_is("INSUFFICIENT available -2", "LEVEL.ADJUST 10 1 -1 FLOOR 0");
    expect_level(C, -4, 0, "LEVEL.ADJUST 10 1 -2 FLOOR -10");

    /* CONTINUE without LIMIT: unbounded */
    expect_status(C, "OK", "level.policy 10 1 continue");
    get_full(&f, 10, 1);
    cr_assert_eq(f.v[F_POLICY], 1);
    cr_assert_eq(f.v[F_PREORDER_LIMIT], -1);
    expect_level(C, -1004, 0, "LEVEL.ADJUST 10 1 -1000");
    expect_level(C, -1000000000, 0, "LEVEL.ADJUST 10 1 -999998996");
    expect_error_is("LIMIT a limit was exceeded", "LEVEL.ADJUST 10 1 -1");

    /* DENY again: nothing below where it is */
    expect_level(C, -4, 0, "LEVEL.SET 10 1 -4");
    expect_status(C, "OK", "LEVEL.POLICY 10 1 DENY");
    get_full(&f, 10, 1);
    cr_assert_eq(f.v[F_POLICY], 0);
    cr_assert_eq(f.v[F_PREORDER_LIMIT], -1);
    expect_error_is("INSUFFICIENT available -4", "LEVEL.ADJUST 10 1 -1");
    expect_level(C, -3, 0, "LEVEL.ADJUST 10 1 1");

    /* the same policy again changes nothing, not even the revision */
    get_full(&f, 10, 1);
    expect_status(C, "OK", "LEVEL.POLICY 10 1 DENY");
    expect_unchanged(10, 1, &f, "LEVEL.POLICY DENY (again)");

    /* LIMIT 0: as deny for the floor, but reported as continue */
    expect_level(C, 1, 0, "LEVEL.SET 10 1 1");
    expect_status(C, "OK", "LEVEL.POLICY 10 1 CONTINUE LIMIT 0");
    get_full(&f, 10, 1);
    cr_assert_eq(f.v[F_POLICY], 1);
    cr_assert_eq(f.v[F_PREORDER_LIMIT], 0);
    expect_error_is("INSUFFICIENT available 1", "LEVEL.ADJUST 10 1 -2");
    /* the policy is the level's: LEVEL.SET keeps it */
    expect_level(C, 5, 0, "LEVEL.SET 10 1 5");
    get_full(&f, 10, 1);
    cr_assert_eq(f.v[F_POLICY], 1);
    cr_assert_eq(f.v[F_PREORDER_LIMIT], 0);
}

Test(server_model, a_bad_policy_request_answers_invalid_and_changes_nothing)
{
    seed(3);
    expect_status(C, "OK", "LEVEL.POLICY 10 1 CONTINUE LIMIT 4");
    static const refusal cases[] = {
        {"LEVEL.POLICY 10 1 DENY LIMIT 3", "INVALID expected LIMIT n after CONTINUE"},
        {"LEVEL.POLICY 10 1 CONTINUE FOR 3", "INVALID expected LIMIT n after CONTINUE"},
        {"LEVEL.POLICY 10 1 CONTINUE LIMIT -1", "INVALID limit must be at least 0"},
        {"LEVEL.POLICY 10 1 CONTINUE LIMIT lots", "INVALID limit must be a decimal integer"},
        {"LEVEL.POLICY 10 1 CONTINUE LIMIT 1000000001",
         "LIMIT limit must be within -1000000000..1000000000"},
        {"LEVEL.POLICY 10 1 CONTINUE 3", "INVALID expected LIMIT n"},
        {"LEVEL.POLICY 10 1 DENY 3", "INVALID expected LIMIT n"},
        {"LEVEL.POLICY 10 1 ALLOW", "INVALID expected DENY or CONTINUE"},
        {"LEVEL.POLICY 10 1 ALLOW LIMIT 3", "INVALID expected DENY or CONTINUE"},
        {"LEVEL.POLICY 10 1", "ERR wrong number of arguments for 'level.policy' command"},
        {"LEVEL.POLICY 10 1 CONTINUE LIMIT 3 X",
         "ERR wrong number of arguments for 'level.policy' command"},
        {"LEVEL.POLICY 10 2 DENY", "NOTFOUND no such item, location, level or hold"},
        {"LEVEL.POLICY 99 1 DENY", "NOTFOUND no such item, location, level or hold"},
        {"LEVEL.POLICY x 1 DENY",
         "INVALID item id must be a decimal integer in 0..18446744073709551615"},
    };
    expect_refusals(10, 1, cases, NCASES(cases));
    full_t f;
    get_full(&f, 10, 1);
    cr_assert_eq(f.v[F_POLICY], 1);
    cr_assert_eq(f.v[F_PREORDER_LIMIT], 4);
}

Test(server_model, holds_and_moves_honour_the_policy)
{
    seed(2);
    full_t f;
    get_full(&f, 10, 1);
    expect_error_is("INSUFFICIENT 10 1 2", "HOLD.CREATE big 600000 10 1 3");
    expect_unchanged(10, 1, &f, "HOLD.CREATE over available (deny)");
    expect_error_is("INSUFFICIENT available 2", "LEVEL.MOVE 10 1 3 FROM available TO damaged");
    expect_unchanged(10, 1, &f, "LEVEL.MOVE over available (deny)");

    expect_status(C, "OK", "LEVEL.POLICY 10 1 CONTINUE LIMIT 1");
    expect_status(C, "OK", "HOLD.CREATE big 600000 10 1 3");
    get_full(&f, 10, 1);
    EXPECT_QTY(&f, -1, 3, 0, 0, 0, 0, 0);
    cr_assert_eq(f.v[F_ON_HAND], 2);
    expect_error_is("INSUFFICIENT 10 1 -1", "HOLD.CREATE more 600000 10 1 1");
    expect_unchanged(10, 1, &f, "HOLD.CREATE past the preorder limit");
    expect_error_is("INSUFFICIENT available -1", "LEVEL.MOVE 10 1 1 FROM available TO damaged");
    expect_unchanged(10, 1, &f, "LEVEL.MOVE past the preorder limit");

    /* a preorder sold: committed exceeds what is on hand */
    expect_status(C, "OK", "HOLD.COMMIT big");
    get_full(&f, 10, 1);
    EXPECT_QTY(&f, -1, 0, 3, 0, 0, 0, 0);
    /* stock arrives and ships */
    expect_level(C, 4, 0, "LEVEL.ADJUST 10 1 5");
    full_cmd(&f, "LEVEL.FULFIL 10 1 3");
    EXPECT_QTY(&f, 4, 0, 0, 0, 0, 0, 0);
    cr_assert_eq(f.v[F_ON_HAND], 4);

    /* unbounded: a hold and a move may take available far below 0 */
    expect_status(C, "OK", "LEVEL.POLICY 10 1 CONTINUE");
    expect_status(C, "OK", "HOLD.CREATE huge 600000 10 1 1000");
    full_cmd(&f, "LEVEL.MOVE 10 1 10 FROM available TO damaged");
    EXPECT_QTY(&f, -1006, 1000, 0, 0, 10, 0, 0);
    expect_status(C, "OK", "HOLD.RELEASE huge");
    get_full(&f, 10, 1);
    EXPECT_QTY(&f, -6, 0, 0, 0, 10, 0, 0);
}

/* ---- inactive locations ------------------------------------------------------------ */

#define INACTIVE "INVALID location inactive"

Test(server_model, an_inactive_location_refuses_stock_changes_and_holds)
{
    seed(10);
    expect_level(C, 5, 0, "LEVEL.SET 11 2 5");
    expect_status(C, "OK", "HOLD.CREATE before 600000 10 1 2");
    expect_status(C, "OK", "HOLD.CREATE sold 600000 10 1 3");
    expect_status(C, "OK", "HOLD.COMMIT sold");
    expect_status(C, "OK", "HOLD.CREATE later 600000 10 1 1");
    expect_status(C, "OK", "LOC.SET 1 active false");
    full_t f;
    get_full(&f, 10, 1);
    EXPECT_QTY(&f, 4, 3, 3, 0, 0, 0, 0);
    cr_assert_eq(f.v[F_LOCATION_ACTIVE], 0);
    expect_level(C, 4, 3, "LEVEL.GET 10 1");

    static const refusal cases[] = {
        {"LEVEL.ADJUST 10 1 1", INACTIVE},
        {"LEVEL.ADJUST 10 1 -1", INACTIVE},
        {"LEVEL.ADJUST 10 1 -1 FLOOR 0", INACTIVE},
        {"LEVEL.SET 10 1 50", INACTIVE},
        {"LEVEL.MOVE 10 1 1 FROM available TO damaged", INACTIVE},
        {"LEVEL.RETURN 10 1 1", INACTIVE},
        {"HOLD.CREATE new 600000 10 1 1", INACTIVE},
        /* one inactive line refuses the whole hold */
        {"HOLD.CREATE mixed 600000 11 2 1 10 1 1", INACTIVE},
        /* a new level there: refused, nothing created */
        {"LEVEL.SET 11 1 5", INACTIVE},
    };
    expect_refusals(10, 1, cases, NCASES(cases));
    expect_level(C, 5, 0, "LEVEL.GET 11 2"); /* the mixed hold took nothing */
    expect_error_is("NOTFOUND no such item, location, level or hold", "LEVEL.GET 11 1");

    /* ending holds and shipping sold units still work */
    expect_status(C, "OK", "HOLD.RELEASE before");
    expect_status(C, "OK", "HOLD.COMMIT later");
    full_t g;
    full_cmd(&g, "LEVEL.FULFIL 10 1 4");
    EXPECT_QTY(&g, 6, 0, 0, 0, 0, 0, 0);
    cr_assert_eq(g.v[F_ON_HAND], 6);
    cr_assert_eq(g.v[F_LOCATION_ACTIVE], 0);
    /* the hold of the other location is unaffected */
    expect_status(C, "OK", "HOLD.CREATE other 600000 11 2 1");

    /* active again: everything works */
    expect_status(C, "OK", "LOC.SET 1 active true");
    get_full(&g, 10, 1);
    cr_assert_eq(g.v[F_LOCATION_ACTIVE], 1);
    expect_level(C, 7, 0, "LEVEL.ADJUST 10 1 1");
    expect_level(C, 8, 0, "LEVEL.SET 10 1 8");
    full_cmd(&g, "LEVEL.MOVE 10 1 1 FROM available TO damaged");
    EXPECT_QTY(&g, 7, 0, 0, 0, 1, 0, 0);
    expect_status(C, "OK", "HOLD.CREATE after 600000 10 1 1");
    expect_level(C, 3, 0, "LEVEL.SET 11 1 3");
}

Test(server_model, location_activity_follows_every_loc_set)
{
    seed(10);
    expect_status(C, "OK", "LOC.SET 2 active 0");
    expect_error_is(INACTIVE, "LEVEL.SET 10 2 1");
    /* ADJUST creates no level: there is none to refuse */
    expect_error_is("NOTFOUND no such item, location, level or hold", "LEVEL.ADJUST 10 2 1");
    expect_error_is("NOTFOUND no such item, location, level or hold", "LEVEL.GET 10 2 ALL");
    expect_status(C, "OK", "LOC.SET 2 active 1");
    expect_level(C, 1, 0, "LEVEL.SET 10 2 1");
    /* deactivated twice, activated once: active */
    expect_status(C, "OK", "LOC.SET 2 active no");
    expect_status(C, "OK", "LOC.SET 2 active no");
    expect_error_is(INACTIVE, "LEVEL.ADJUST 10 2 1");
    expect_status(C, "OK", "LOC.SET 2 active yes");
    expect_level(C, 2, 0, "LEVEL.ADJUST 10 2 1");
    /* other fields of the location leave its activity alone */
    expect_status(C, "OK", "LOC.SET 2 active 0");
    expect_status(C, "OK", "LOC.SET 2 name Renamed");
    expect_error_is(INACTIVE, "LEVEL.ADJUST 10 2 1");
}

/* ---- MULTI ------------------------------------------------------------------------ */

#define MULTI_REFUSED(name)                                                \
    "ERR Command not allowed inside a transaction: " name " (MULTI takes " \
    "LEVEL.SET, LEVEL.ADJUST, LEVEL.GET, HOLD.CREATE, HOLD.COMMIT, HOLD.RELEASE and reads)"

Test(server_model, multi_applies_the_new_level_writes_all_or_nothing_and_reads_all)
{
    seed(10);
    expect_status(C, "OK", "HOLD.CREATE h 600000 10 1 2");
    expect_status(C, "OK", "HOLD.COMMIT h");
    full_t f;
    get_full(&f, 10, 1);
    /* the new level writes are batch lines: all of them or none */
    expect_status(C, "OK", "MULTI");
    expect_status(C, "QUEUED", "LEVEL.ADJUST 10 1 -1");
    expect_status(C, "QUEUED", "LEVEL.MOVE 10 1 1 FROM available TO damaged");
    expect_status(C, "QUEUED", "LEVEL.RETURN 10 1 1");
    expect_status(C, "QUEUED", "LEVEL.POLICY 10 1 CONTINUE");
    expect_status(C, "QUEUED", "LEVEL.FULFIL 10 1 5");
    expect_error_is("INSUFFICIENT EXEC line 5 (LEVEL.FULFIL): committed 1; nothing was applied",
                    "EXEC");
    /* an undone line leaves its level with a higher revision (docs: Isolation) */
    full_t after_failed;
    get_full(&after_failed, 10, 1);
    for (int q = 0; q < INV_QTY_NAMES; q++)
        cr_assert_eq(after_failed.v[q], f.v[q], "a failed EXEC changed %s",
                     inv_qty_name_str((inv_qty_name)q));
    expect_status(C, "OK", "MULTI");
    expect_status(C, "QUEUED", "LEVEL.ADJUST 10 1 -1");
    expect_status(C, "QUEUED", "LEVEL.MOVE 10 1 1 FROM available TO damaged");
    expect_status(C, "QUEUED", "LEVEL.RETURN 10 1 1");
    expect_status(C, "QUEUED", "LEVEL.FULFIL 10 1 1");
    redisReply *x = cmd(C, "EXEC");
    cr_assert_eq(x->type, REDIS_REPLY_ARRAY, "EXEC: type %d '%s'", x->type, x->str ? x->str : "");
    cr_assert_eq(x->elements, 4);
    freeReplyObject(x);
    full_t g0;
    get_full(&g0, 10, 1);
    /* -1 (adjust) -1 (to damaged) +1 (returned); committed 2 -1 -1 (shipped) */
    cr_assert_eq(g0.v[INV_QTY_DAMAGED], f.v[INV_QTY_DAMAGED] + 1);
    cr_assert_eq(g0.v[INV_QTY_COMMITTED], 0);
    cr_assert_eq(g0.v[INV_QTY_AVAILABLE], f.v[INV_QTY_AVAILABLE] - 1);
    full_cmd(&g0, "LEVEL.MOVE 10 1 1 FROM damaged TO available");
    /* back to the state below expects: available 8, committed 2 */
    full_cmd(&g0, "LEVEL.MOVE 10 1 2 FROM available TO committed");
    expect_level(C, 8, 0, "LEVEL.ADJUST 10 1 2");

    /* a hold committed by EXEC counts its units as committed */
    expect_status(C, "OK", "HOLD.CREATE m 600000 10 1 3");
    get_full(&f, 10, 1);
    EXPECT_QTY(&f, 5, 3, 2, 0, 0, 0, 0);
    expect_status(C, "OK", "MULTI");
    expect_status(C, "QUEUED", "HOLD.COMMIT m");
    expect_status(C, "QUEUED", "LEVEL.ADJUST 10 1 -6 FLOOR 0");
    expect_error_is("INSUFFICIENT EXEC line 2 (LEVEL.ADJUST): available 5; nothing was applied",
                    "EXEC");
    get_full(&f, 10, 1);
    EXPECT_QTY(&f, 5, 3, 2, 0, 0, 0, 0); /* the failed EXEC committed nothing */
    redisReply *h = cmd(C, "HOLD.GET m");
    cr_assert_str_eq(h->element[0]->str, "held");
    freeReplyObject(h);
    expect_status(C, "OK", "MULTI");
    expect_status(C, "QUEUED", "HOLD.COMMIT m");
    expect_status(C, "QUEUED", "LEVEL.ADJUST 10 1 -1 FLOOR 0");
    redisReply *ok = cmd(C, "EXEC");
    cr_assert_eq(ok->type, REDIS_REPLY_ARRAY, "EXEC: type %d '%s'", ok->type,
                 ok->str ? ok->str : "");
    freeReplyObject(ok);
    get_full(&f, 10, 1);
    EXPECT_QTY(&f, 4, 0, 5, 0, 0, 0, 0);
    full_cmd(&f, "LEVEL.FULFIL 10 1 5");
    EXPECT_QTY(&f, 4, 0, 0, 0, 0, 0, 0);

    /* LEVEL.GET ... ALL is a batch line: it sees the lines before it */
    expect_status(C, "OK", "MULTI");
    expect_status(C, "QUEUED", "LEVEL.ADJUST 10 1 -1");
    expect_status(C, "QUEUED", "LEVEL.GET 10 1 ALL");
    redisReply *r = cmd(C, "EXEC");
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY, "EXEC: type %d '%s'", r->type, r->str ? r->str : "");
    cr_assert_eq(r->elements, 2);
    full_t g;
    full_of(r->element[1], &g, "LEVEL.GET ALL inside EXEC");
    EXPECT_QTY(&g, 3, 0, 0, 0, 0, 0, 0);
    freeReplyObject(r);
}

/* ---- restarts ----------------------------------------------------------------------- */

/* Levels the restart tests build: (10, 1) with every quantity, a bounded
 * CONTINUE policy, a live hold and committed units, some fulfilled and
 * returned; (11, 2) with an unbounded policy, a live hold and committed
 * units, at an inactive location. */
#define RESTART_LEVELS 2
static const int restart_item[RESTART_LEVELS] = {10, 11};
static const int restart_loc[RESTART_LEVELS] = {1, 2};

static void build_model(void)
{
    seed(30);
    expect_level(C, 6, 0, "LEVEL.SET 11 2 6");
    expect_status(C, "OK", "HOLD.CREATE sold 600000 10 1 5 11 2 2");
    expect_status(C, "OK", "HOLD.COMMIT sold");
    expect_status(C, "OK", "HOLD.CREATE live 600000 10 1 2 11 2 1");
    full_t f;
    full_cmd(&f, "LEVEL.MOVE 10 1 4 FROM available TO damaged");
    full_cmd(&f, "LEVEL.MOVE 10 1 3 FROM available TO quality_control");
    full_cmd(&f, "LEVEL.MOVE 10 1 2 FROM available TO safety_stock");
    full_cmd(&f, "LEVEL.MOVE 10 1 6 FROM available TO incoming");
    full_cmd(&f, "LEVEL.MOVE 10 1 1 FROM incoming TO available");
    full_cmd(&f, "LEVEL.FULFIL 10 1 2");
    full_cmd(&f, "LEVEL.RETURN 10 1 1");
    expect_status(C, "OK", "LEVEL.POLICY 10 1 CONTINUE LIMIT 4");
    expect_status(C, "OK", "LEVEL.POLICY 11 2 CONTINUE");
    full_cmd(&f, "LEVEL.FULFIL 11 2 1");
    expect_status(C, "OK", "LOC.SET 2 active false");
    /* (10, 1): available 30-5-2-4-3-2-6+1+1 = 10, reserved 2, committed
     * 5-2-1 = 2, incoming 5, damaged 4, safety 2, qc 3; on_hand 23 */
    get_full(&f, 10, 1);
    EXPECT_QTY(&f, 10, 2, 2, 5, 4, 2, 3);
    cr_assert_eq(f.v[F_ON_HAND], 23);
    get_full(&f, 11, 2);
    EXPECT_QTY(&f, 3, 1, 1, 0, 0, 0, 0);
    cr_assert_eq(f.v[F_LOCATION_ACTIVE], 0);
}

/* After a restart the levels are as before, and still behave so. */
static void check_model_after_restart(const full_t before[RESTART_LEVELS])
{
    for (int i = 0; i < RESTART_LEVELS; i++)
        expect_unchanged(restart_item[i], restart_loc[i], &before[i], "the restart");
    /* the policy: down to -4 and no further */
    expect_level(C, -4, 2, "LEVEL.ADJUST 10 1 -14");
    expect_error_is("INSUFFICIENT available -4", "LEVEL.ADJUST 10 1 -1");
    /* the inactive location */
    expect_error_is(INACTIVE, "LEVEL.ADJUST 11 2 1");
    expect_error_is(INACTIVE, "HOLD.CREATE again 600000 11 2 1");
    /* committed units still block deletion, and ship */
    expect_error_is("CONFLICT revision or hold lines do not match", "LEVEL.DEL 10 1");
    expect_error_is("INSUFFICIENT committed 2", "LEVEL.FULFIL 10 1 3");
    full_t f;
    full_cmd(&f, "LEVEL.FULFIL 10 1 2");
    EXPECT_QTY(&f, -4, 2, 0, 5, 4, 2, 3);
    full_cmd(&f, "LEVEL.FULFIL 11 2 1");
    EXPECT_QTY(&f, 3, 1, 0, 0, 0, 0, 0);
    /* the live hold: released, its units come back */
    expect_status(C, "OK", "HOLD.RELEASE live");
    get_full(&f, 10, 1);
    EXPECT_QTY(&f, -2, 0, 0, 5, 4, 2, 3);
    get_full(&f, 11, 2);
    EXPECT_QTY(&f, 4, 0, 0, 0, 0, 0, 0);
    expect_status(C, "OK", "LOC.SET 2 active true");
    expect_level(C, 5, 0, "LEVEL.ADJUST 11 2 1");
}

static void capture(full_t before[RESTART_LEVELS])
{
    for (int i = 0; i < RESTART_LEVELS; i++)
        get_full(&before[i], restart_item[i], restart_loc[i]);
}

/* A durable server only (INVCORE_SERVER_TEST_MEMORY has no data dir). */
static void need_data_dir(void)
{
    if (!S.durable) {
        teardown(); /* a skipped test gets no .fini: stop the server now */
        cr_skip_test("INVCORE_SERVER_TEST_MEMORY: nothing survives a restart");
    }
}

static void restart(void)
{
    redisFree(C);
    C = NULL;
    cr_assert_eq(srv_stop(&S), 0, "invcored's exit status after SIGTERM (log %s)", S.log);
    cr_assert_eq(srv_spawn(&S, 1, NULL), 0, "restart on the same data dir (log %s)", S.log);
    C = srv_connect(&S);
}

Test(server_model, the_model_survives_a_restart_from_the_journal)
{
    need_data_dir();
    build_model();
    full_t before[RESTART_LEVELS];
    capture(before);
    restart();
    check_model_after_restart(before);
    /* and once more, with the changes made after the first restart */
    capture(before);
    restart();
    for (int i = 0; i < RESTART_LEVELS; i++)
        expect_unchanged(restart_item[i], restart_loc[i], &before[i], "the second restart");
}

Test(server_model, the_model_survives_a_snapshot_and_a_crash)
{
    need_data_dir();
    build_model();
    expect_status(C, "OK", "SNAPSHOT");
    /* changes after the snapshot, from the journal's tail */
    full_t f;
    full_cmd(&f, "LEVEL.MOVE 10 1 1 FROM damaged TO available");
    full_cmd(&f, "LEVEL.MOVE 10 1 1 FROM available TO damaged");
    full_t before[RESTART_LEVELS];
    capture(before);
    redisFree(C);
    C = NULL;
    kill(S.pid, SIGKILL);
    waitpid(S.pid, NULL, 0);
    S.pid = 0;
    cr_assert_eq(srv_spawn(&S, 1, NULL), 0, "restart on the same data dir (log %s)", S.log);
    C = srv_connect(&S);
    check_model_after_restart(before);
}

Test(server_model, the_model_survives_a_snapshot_and_a_clean_restart)
{
    need_data_dir();
    build_model();
    expect_status(C, "OK", "SNAPSHOT");
    full_t before[RESTART_LEVELS];
    capture(before);
    restart();
    check_model_after_restart(before);
}

/* Upper bound of the waits for a hold's expiry (a bound on the test's run
 * time, not an assertion on the sweep's speed). */
#define EXPIRY_WAIT_MS 10000

/* Recovery derives committed from the holds: a hold that expires while the
 * server is down must return its units, never count them as sold. */
Test(server_model, a_hold_expiring_across_a_restart_never_counts_as_committed)
{
    need_data_dir();
    seed(10);
    expect_status(C, "OK", "HOLD.CREATE sold 600000 10 1 3");
    expect_status(C, "OK", "HOLD.COMMIT sold");
    expect_status(C, "OK", "HOLD.CREATE brief 200 10 1 2");
    restart();
    full_t f;
    long long deadline = srv_now_ms() + EXPIRY_WAIT_MS;
    for (;;) {
        get_full(&f, 10, 1);
        cr_assert_eq(f.v[F_COMMITTED], 3, "committed %lld while the hold expires",
                     f.v[F_COMMITTED]);
        if (f.v[F_RESERVED] == 0 || srv_now_ms() > deadline)
            break;
        srv_sleep_ms(20);
    }
    EXPECT_QTY(&f, 7, 0, 3, 0, 0, 0, 0);
    redisReply *r = cmd(C, "HOLD.GET brief");
    cr_assert_str_eq(r->element[0]->str, "expired");
    freeReplyObject(r);
    full_cmd(&f, "LEVEL.FULFIL 10 1 3");
    EXPECT_QTY(&f, 7, 0, 0, 0, 0, 0, 0);
}

/* The cold part lives beside the hot word in the table's slot: growth
 * copies it. A small table grows many times under the model's levels. */
#define GROWTH_LEVELS 600

Test(server_model, the_model_survives_table_growth_and_a_restart)
{
    srv_suite_stop();
    const char *small[] = {"--levels-capacity", "16", NULL};
    srv_suite_start(small);
    build_model();
    full_t before[RESTART_LEVELS];
    capture(before);
    for (int i = 0; i < GROWTH_LEVELS; i++) {
        redisAppendCommand(C, "ITEM.SET %d sku g%d", 1000 + i, i);
        redisAppendCommand(C, "LEVEL.SET %d 1 %d", 1000 + i, i);
    }
    for (int i = 0; i < 2 * GROWTH_LEVELS; i++) {
        redisReply *r = NULL;
        cr_assert_eq(redisGetReply(C, (void **)&r), REDIS_OK);
        cr_assert(r->type != REDIS_REPLY_ERROR, "pipelined reply %d: %s", i, r->str);
        freeReplyObject(r);
    }
    cr_assert_geq(expect_int(C, "DBSIZE"), GROWTH_LEVELS + RESTART_LEVELS);
    for (int i = 0; i < RESTART_LEVELS; i++)
        expect_unchanged(restart_item[i], restart_loc[i], &before[i], "table growth");
    if (!S.durable)
        return;
    restart();
    check_model_after_restart(before);
    expect_level(C, GROWTH_LEVELS - 1, 0, "LEVEL.GET %d 1", 1000 + GROWTH_LEVELS - 1);
}

/* Every quantity stays within ±1000000000: a move or decrement past the
 * bound answers LIMIT (a hold INSUFFICIENT) and changes nothing. */
Test(server_model, the_quantity_bound_holds_for_moves_policies_and_holds)
{
    seed(1000000000);
    full_t f;
    full_cmd(&f, "LEVEL.MOVE 10 1 1000000000 FROM available TO damaged");
    EXPECT_QTY(&f, 0, 0, 0, 0, 1000000000, 0, 0);
    expect_level(C, 1, 0, "LEVEL.SET 10 1 1");
    static const refusal past_the_bound[] = {
        {"LEVEL.MOVE 10 1 1 FROM available TO damaged", "LIMIT a limit was exceeded"},
    };
    expect_refusals(10, 1, past_the_bound, NCASES(past_the_bound));

    expect_level(C, -999999999, 0, "LEVEL.SET 10 1 -999999999");
    expect_status(C, "OK", "LEVEL.POLICY 10 1 CONTINUE");
    static const refusal unbounded[] = {
        {"LEVEL.ADJUST 10 1 -2", "LIMIT a limit was exceeded"},
        {"LEVEL.MOVE 10 1 2 FROM available TO safety_stock", "LIMIT a limit was exceeded"},
        {"HOLD.CREATE deep 600000 10 1 2", "INSUFFICIENT 10 1 -999999999"},
    };
    expect_refusals(10, 1, unbounded, NCASES(unbounded));
}

/* The policy is the level's: deleted and created again, it denies. */
Test(server_model, a_level_created_again_starts_with_deny)
{
    seed(1);
    expect_status(C, "OK", "LEVEL.POLICY 10 1 CONTINUE LIMIT 7");
    expect_status(C, "OK", "LEVEL.DEL 10 1");
    expect_level(C, 0, 0, "LEVEL.SET 10 1 0");
    full_t f;
    get_full(&f, 10, 1);
    cr_assert_eq(f.v[F_POLICY], 0);
    expect_error_is("INSUFFICIENT available 0", "LEVEL.ADJUST 10 1 -1");
}

/* ---- request ids, reasons and references ------------------------------------------ */

Test(server_model, a_request_id_makes_a_retry_answer_the_first_reply)
{
    seed(10);
    expect_level(C, 9, 0, "LEVEL.ADJUST 10 1 -1 ID order-1");
    long long rev1 = 0;
    redisReply *r = cmd(C, "LEVEL.GET 10 1");
    rev1 = r->element[2]->integer;
    freeReplyObject(r);
    /* the retry: the first reply (same revision), nothing applied */
    r = cmd(C, "LEVEL.ADJUST 10 1 -1 ID order-1");
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(r->element[0]->integer, 9);
    cr_assert_eq(r->element[2]->integer, rev1);
    freeReplyObject(r);
    expect_level(C, 9, 0, "LEVEL.GET 10 1");
    /* options in any order, with a reason and a reference */
    expect_level(C, 8, 0, "LEVEL.ADJUST 10 1 -1 REASON correction REF gid://o/2 ID order-2");
    expect_level(C, 8, 0, "LEVEL.ADJUST 10 1 -1 ID order-2 REF gid://o/2 REASON correction");
    expect_error_is("CONFLICT request id 'order-1' was used with other arguments (or is running)",
                    "LEVEL.ADJUST 10 1 -2 ID order-1");
    expect_level(C, 8, 0, "LEVEL.GET 10 1");
    /* a refused change is remembered refused */
    expect_error_is("INSUFFICIENT available 8", "LEVEL.ADJUST 10 1 -9 FLOOR 0 ID order-3");
    expect_level(C, 18, 0, "LEVEL.ADJUST 10 1 10");
    expect_error_is("INSUFFICIENT available 8", "LEVEL.ADJUST 10 1 -9 FLOOR 0 ID order-3");
    /* moves and holds take them too */
    full_t f;
    full_cmd(&f, "LEVEL.MOVE 10 1 2 FROM available TO damaged ID mv-1 REASON damaged");
    full_cmd(&f, "LEVEL.MOVE 10 1 2 FROM available TO damaged ID mv-1 REASON damaged");
    cr_assert_eq(f.v[INV_QTY_DAMAGED], 2, "the move applied once");
    r = cmd(C, "INFO requestids");
    cr_assert_eq(r->type, REDIS_REPLY_STRING);
    cr_assert_not_null(strstr(r->str, "request_id_hits:"), "%s", r->str);
    cr_assert_null(strstr(r->str, "request_id_hits:0\r"), "retries were answered: %s", r->str);
    cr_assert_null(strstr(r->str, "request_id_conflicts:0\r"), "one conflict: %s", r->str);
    freeReplyObject(r);
    expect_status(C, "OK", "HOLD.CREATE hh 60000 10 1 1 ID h-1");
    expect_status(C, "OK", "HOLD.COMMIT hh ID h-2");
    expect_status(C, "OK", "HOLD.COMMIT hh ID h-2");
}

Test(server_model, bad_request_options_are_refused_and_change_nothing)
{
    seed(10);
    char long_id[70];
    memset(long_id, 'x', 65);
    long_id[65] = '\0';
    expect_error_is("LIMIT ID must be 1..64 bytes", "LEVEL.ADJUST 10 1 -1 ID %s", long_id);
    expect_error_is("INVALID ID must be 1..64 bytes", "LEVEL.ADJUST 10 1 -1 ID %s", "");
    redisReply *r = cmd(C, "LEVEL.ADJUST 10 1 -1 REASON sold");
    cr_assert_eq(r->type, REDIS_REPLY_ERROR);
    cr_assert(strncmp(r->str, "INVALID unknown reason 'sold'", 29) == 0, "%s", r->str);
    freeReplyObject(r);
    char long_ref[300];
    memset(long_ref, 'r', 257);
    long_ref[257] = '\0';
    expect_error_is("LIMIT REF must be at most 256 bytes", "LEVEL.ADJUST 10 1 -1 REF %s", long_ref);
    /* a keyword twice: the first pair peeled, the second left to the command */
    r = cmd(C, "LEVEL.ADJUST 10 1 -1 ID a ID b");
    cr_assert_eq(r->type, REDIS_REPLY_ERROR, "%s", r->str ? r->str : "");
    freeReplyObject(r);
    expect_level(C, 10, 0, "LEVEL.GET 10 1");
    expect_error_is("INVALID NX takes no ID, REASON or REF", "LEVEL.SET 10 2 5 NX ID n-1");
}

Test(server_model, a_transaction_with_an_id_is_answered_once)
{
    seed(10);
    for (int round = 0; round < 2; round++) {
        expect_status(C, "OK", "MULTI");
        expect_status(C, "QUEUED", "LEVEL.ADJUST 10 1 -1 ID tx-1");
        expect_status(C, "QUEUED", "LEVEL.MOVE 10 1 1 FROM available TO damaged REASON damaged");
        redisReply *r = cmd(C, "EXEC");
        cr_assert_eq(r->type, REDIS_REPLY_ARRAY, "round %d: %s", round, r->str ? r->str : "");
        cr_assert_eq(r->elements, 2);
        cr_assert_eq(r->element[0]->element[0]->integer, 9, "round %d", round);
        freeReplyObject(r);
    }
    full_t f;
    get_full(&f, 10, 1);
    cr_assert_eq(f.v[INV_QTY_AVAILABLE], 8, "applied once");
    cr_assert_eq(f.v[INV_QTY_DAMAGED], 1);
    expect_status(C, "OK", "MULTI");
    expect_status(C, "QUEUED", "LEVEL.ADJUST 10 1 -1 ID tx-2");
    expect_error_is("INVALID a transaction takes one ID (it names the whole EXEC)",
                    "LEVEL.ADJUST 10 1 -1 ID tx-3");
    expect_error_is("EXECABORT Transaction discarded because of previous errors.", "EXEC");
}

Test(server_model, a_request_id_is_honoured_after_a_restart)
{
    need_data_dir();
    seed(10);
    expect_level(C, 7, 0, "LEVEL.ADJUST 10 1 -3 ID keep-me");
    restart();
    expect_level(C, 7, 0, "LEVEL.ADJUST 10 1 -3 ID keep-me");
    expect_level(C, 7, 0, "LEVEL.GET 10 1");
    expect_status(C, "OK", "SNAPSHOT");
    restart();
    expect_level(C, 7, 0, "LEVEL.ADJUST 10 1 -3 ID keep-me");
    expect_level(C, 7, 0, "LEVEL.GET 10 1");
}

/* ---- LEVEL.TRANSFER -------------------------------------------------------------------- */

Test(server_model, a_transfer_moves_units_between_locations_or_nothing)
{
    seed(10);
    redisReply *r = cmd(C, "LEVEL.TRANSFER 10 1 2 4 TO incoming");
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY, "%s", r->str ? r->str : "");
    cr_assert_eq(r->elements, 2);
    full_t src, dst;
    full_of(r->element[0], &src, "transfer source");
    full_of(r->element[1], &dst, "transfer destination");
    freeReplyObject(r);
    EXPECT_QTY(&src, 6, 0, 0, 0, 0, 0, 0);
    EXPECT_QTY(&dst, 0, 0, 0, 4, 0, 0, 0);
    full_t before;
    get_full(&before, 10, 1);
    static const refusal bad[] = {
        {"LEVEL.TRANSFER 10 1 1 1", "INVALID a transfer goes to another location"},
        {"LEVEL.TRANSFER 10 1 2 1 FROM reserved", "INVALID reserved changes only by holds"},
        {"LEVEL.TRANSFER 10 1 2 0", "INVALID quantity must be at least 1"},
        {"LEVEL.TRANSFER 10 1 2 1 FROM nothing",
         "INVALID unknown quantity 'nothing' (available, committed, incoming, damaged, "
         "safety_stock, quality_control)"},
        {"LEVEL.TRANSFER 10 1 2 1 VIA x", "INVALID expected FROM or TO"},
        {"LEVEL.TRANSFER 10 1 2 7", "INSUFFICIENT available 6"},
        {"LEVEL.TRANSFER 10 1 99 1", "NOTFOUND no such item, location, level or hold"},
        {"LEVEL.TRANSFER 10 1 2", "ERR wrong number of arguments for 'level.transfer' command"},
    };
    for (size_t i = 0; i < NCASES(bad); i++) {
        expect_error_is(bad[i].err, bad[i].req);
        expect_unchanged(10, 1, &before, bad[i].req);
    }
    expect_status(C, "OK", "LOC.SET 2 active false");
    expect_error_is("INVALID location inactive", "LEVEL.TRANSFER 10 1 2 1");
    expect_unchanged(10, 1, &before, "a transfer to an inactive location");
}
