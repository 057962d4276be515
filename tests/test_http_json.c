/*
 * test_http_json.c — core/server/http_json.c: the writer's escaping and
 * exact integers, the parser's strictness (depth, comments, trailing
 * bytes) and its typed getters, the shared id rule, query helpers.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "server/http_json.h"

static http_body body;

static void setup(void)
{
    cr_assert_eq(http_body_init(&body), INV_OK);
}

static void teardown(void)
{
    http_body_free(&body);
}

static void expect_body(const char *want)
{
    cr_assert(!body.failed);
    cr_assert_eq(body.len, strlen(want), "got %.*s", (int)body.len, body.p);
    cr_assert(memcmp(body.p, want, body.len) == 0, "got %.*s", (int)body.len, body.p);
}

static http_str S(const char *s)
{
    return (http_str){s, strlen(s)};
}

TestSuite(http_json, .init = setup, .fini = teardown);

Test(http_json, writes_ids_as_strings_and_integers_exactly)
{
    http_json_obj_open(&body);
    http_json_key(&body, "id");
    http_json_id(&body, UINT64_MAX);
    http_json_key(&body, "n");
    http_json_u64(&body, UINT64_MAX);
    http_json_key(&body, "m");
    http_json_i64(&body, INT64_MIN);
    http_json_key(&body, "t");
    http_json_bool(&body, true);
    http_json_key(&body, "z");
    http_json_cstr(&body, NULL);
    http_json_obj_close(&body);
    expect_body("{\"id\":\"18446744073709551615\",\"n\":18446744073709551615,"
                "\"m\":-9223372036854775808,\"t\":true,\"z\":null}");
}

Test(http_json, escapes_strings_and_repairs_bytes_that_are_not_utf8)
{
    http_json_arr_open(&body);
    http_json_str(&body, "a\"b\\c\n\x01", 7);
    http_json_str(&body, "\xff", 1);
    http_json_str(&body, "\xc3\xa9", 2); /* é stays as it is */
    http_json_arr_close(&body);
    expect_body("[\"a\\\"b\\\\c\\n\\u0001\",\"\xc3\xbf\",\"\xc3\xa9\"]");
}

Test(http_json, writes_iso_times_in_utc)
{
    http_json_arr_open(&body);
    http_json_time_iso(&body, 1796750455123); /* 2026-12-08T17:20:55.123Z */
    http_json_time_iso(&body, 0);
    http_json_arr_close(&body);
    expect_body("[\"2026-12-08T17:20:55Z\",\"1970-01-01T00:00:00Z\"]");
}

Test(http_json, a_misused_generator_marks_the_body_failed_and_reset_clears_it)
{
    http_json_obj_open(&body);
    http_json_u64(&body, 1); /* a value where a key belongs */
    cr_assert(body.failed);
    http_body_reset(&body);
    cr_assert(!body.failed);
    http_json_arr_open(&body);
    http_json_arr_close(&body);
    expect_body("[]");
}

Test(http_json, a_body_grows_beyond_its_first_buffer)
{
    http_json_arr_open(&body);
    for (int i = 0; i < 10000; i++)
        http_json_u64(&body, 1234567890);
    http_json_arr_close(&body);
    cr_assert(!body.failed);
    cr_assert_eq(body.len, 2 + 10000 * 10 + 9999);
}

Test(http_json, parses_an_object_and_reads_typed_fields)
{
    char err[128];
    http_str in = S("{\"a\":18446744073709551615,\"b\":\"42\",\"c\":-5,\"d\":true,\"e\":\"x\"}");
    yajl_val v = http_json_parse(&in, err, sizeof err);
    cr_assert_not_null(v, "%s", err);
    uint64_t u = 0;
    int64_t i = 0;
    bool b = false, bad = false;
    http_str s;
    cr_assert(http_json_get_u64(v, "a", &u, &bad) && !bad && u == UINT64_MAX);
    cr_assert(http_json_get_u64(v, "b", &u, &bad) && !bad && u == 42);
    cr_assert(http_json_get_i64(v, "c", &i, &bad) && !bad && i == -5);
    cr_assert(http_json_get_bool(v, "d", &b, &bad) && !bad && b);
    cr_assert(http_json_get_str(v, "e", &s, &bad) && !bad && s.len == 1 && s.p[0] == 'x');
    cr_assert(!http_json_get_u64(v, "missing", &u, &bad) && !bad);
    yajl_tree_free(v);
}

Test(http_json, wrong_types_and_ranges_are_bad)
{
    char err[128];
    http_str in = S("{\"neg\":-1,\"big\":18446744073709551616,\"f\":1.5,\"s\":\"+1\","
                    "\"e\":1e3,\"i\":9223372036854775808,\"t\":\"true\",\"n\":null}");
    yajl_val v = http_json_parse(&in, err, sizeof err);
    cr_assert_not_null(v, "%s", err);
    const char *u64_bad[] = {"neg", "big", "f", "s", "e", "t", "n"};
    for (size_t k = 0; k < sizeof u64_bad / sizeof u64_bad[0]; k++) {
        uint64_t u;
        bool bad = false;
        cr_assert(http_json_get_u64(v, u64_bad[k], &u, &bad) && bad, "%s", u64_bad[k]);
    }
    int64_t i;
    bool bad = false, b;
    cr_assert(http_json_get_i64(v, "i", &i, &bad) && bad);
    bad = false;
    cr_assert(http_json_get_bool(v, "t", &b, &bad) && bad);
    bad = false;
    http_str s;
    cr_assert(http_json_get_str(v, "n", &s, &bad) && bad);
    yajl_tree_free(v);
}

Test(http_json, refuses_malformed_deep_commented_or_trailing_input)
{
    char err[128];
    const char *bad[] = {"",
                         "{",
                         "{\"a\":}",
                         "{\"a\":1}x",
                         "{\"a\":1} {}",
                         "/* c */ {}",
                         "{\"a\":1 // c\n}",
                         "[1,]",
                         "{'a':1}",
                         "\"\xff\""};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        http_str in = S(bad[k]);
        yajl_val v = http_json_parse(&in, err, sizeof err);
        cr_assert_null(v, "accepted %s", bad[k]);
        cr_assert(err[0] != '\0');
    }
    char deep[2 * HTTP_JSON_DEPTH_MAX + 4];
    size_t n = 0;
    for (int d = 0; d <= HTTP_JSON_DEPTH_MAX; d++)
        deep[n++] = '[';
    for (int d = 0; d <= HTTP_JSON_DEPTH_MAX; d++)
        deep[n++] = ']';
    http_str in = {deep, n};
    cr_assert_null(http_json_parse(&in, err, sizeof err));
    in.len = n - 2; /* still unbalanced but at depth bound + 1: refused */
    cr_assert_null(http_json_parse(&in, err, sizeof err));
    in = (http_str){deep + 1, n - 2}; /* exactly the bound: accepted */
    yajl_val v = http_json_parse(&in, err, sizeof err);
    cr_assert_not_null(v, "%s", err);
    yajl_tree_free(v);
    /* a slash inside a string is just a character */
    in = S("{\"a\":\"x/y\"}");
    v = http_json_parse(&in, err, sizeof err);
    cr_assert_not_null(v, "%s", err);
    yajl_tree_free(v);
}

Test(http_json, ids_are_positive_decimal_u64_without_sign_or_leading_zero)
{
    uint64_t id;
    cr_assert(http_parse_id(S("18446744073709551615"), &id) && id == UINT64_MAX);
    cr_assert(http_parse_id(S("7"), &id) && id == 7);
    cr_assert(http_parse_id(S("9999999999999999999"), &id) && id == 9999999999999999999ull);
    cr_assert(http_parse_id(S("10000000000000000000"), &id) && id == 10000000000000000000ull);
    cr_assert(http_parse_id(S("18446744073709551610"), &id) && id == 18446744073709551610ull);
    const char *bad[] = {"",
                         "0",
                         "-1",
                         "+1",
                         "18446744073709551616",
                         "07",
                         "1a",
                         " 1",
                         "1.0",
                         "18446744073709551620",
                         "18446744073709551699",
                         "19999999999999999999",
                         "99999999999999999999",
                         "100000000000000000000",
                         "1844674407370955161a"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
        cr_assert(!http_parse_id(S(bad[k]), &id), "accepted %s", bad[k]);
}

Test(http_json, query_values_are_found_decoded_and_iterated)
{
    http_str q = S("a=1&ids=x%2Cy&variant_ids=5&b&variant_ids=6&c=a+b&v%61riant_ids=7");
    char buf[16];
    size_t len;
    cr_assert(http_query_get(q, "ids", buf, sizeof buf, &len));
    cr_assert(len == 3 && memcmp(buf, "x,y", 3) == 0);
    cr_assert(http_query_get(q, "b", buf, sizeof buf, &len) && len == 0);
    cr_assert(http_query_get(q, "c", buf, sizeof buf, &len) && len == 3 &&
              memcmp(buf, "a b", 3) == 0);
    cr_assert(!http_query_get(q, "missing", buf, sizeof buf, &len));
    size_t at = 0;
    const char *want[] = {"5", "6", "7"};
    for (size_t k = 0; k < 3; k++) {
        cr_assert(http_query_next(q, "variant_ids", &at, buf, sizeof buf, &len));
        cr_assert(len == 1 && buf[0] == want[k][0]);
    }
    cr_assert(!http_query_next(q, "variant_ids", &at, buf, sizeof buf, &len));
}

Test(http_json, query_values_too_long_or_badly_escaped_are_refused)
{
    char buf[4];
    size_t len;
    cr_assert(!http_query_get(S("a=12345"), "a", buf, sizeof buf, &len));
    cr_assert(!http_query_get(S("a=%zz"), "a", buf, sizeof buf, &len));
    cr_assert(!http_query_get(S("a=%4"), "a", buf, sizeof buf, &len));
    cr_assert(http_query_get(S("a=%41"), "a", buf, sizeof buf, &len) && len == 1 && buf[0] == 'A');
    cr_assert(!http_query_get(S(""), "a", buf, sizeof buf, &len));
}

Test(http_json, a_string_or_key_with_an_escaped_nul_is_refused_never_read_cut)
{
    char err[128];
    /* yajl would decode each into a NUL byte: "ab\u0000cd" read as "ab" */
    const char *nul[] = {"{\"sku\":\"ab\\u0000cd\"}", "{\"sku\":\"\\u0000\"}",
                         "{\"sku\\u0000x\":\"v\"}", "[\"a\",\"b\\u0000\"]",
                         "{\"sku\":\"\\\\\\u0000\"}"};
    for (size_t k = 0; k < sizeof nul / sizeof nul[0]; k++) {
        http_str in = S(nul[k]);
        yajl_val v = http_json_parse(&in, err, sizeof err);
        cr_assert_null(v, "accepted %s", nul[k]);
        cr_assert_not_null(strstr(err, "NUL"), "%s: %s", nul[k], err);
    }
    /* an escaped backslash then the text u0000, and \u0001: whole strings */
    http_str in = S("{\"a\":\"x\\\\u0000y\",\"b\":\"p\\u0001q\",\"c\":\"\\u00e9\"}");
    yajl_val v = http_json_parse(&in, err, sizeof err);
    cr_assert_not_null(v, "%s", err);
    http_str s;
    bool bad = false;
    cr_assert(http_json_get_str(v, "a", &s, &bad) && !bad);
    cr_assert(s.len == 8 && memcmp(s.p, "x\\u0000y", 8) == 0, "%.*s", (int)s.len, s.p);
    cr_assert(http_json_get_str(v, "b", &s, &bad) && !bad);
    cr_assert(s.len == 3 && s.p[1] == '\x01');
    cr_assert(http_json_get_str(v, "c", &s, &bad) && !bad);
    cr_assert(s.len == 2 && memcmp(s.p, "\xc3\xa9", 2) == 0);
    yajl_tree_free(v);
}

/* ---- the writer against yajl_gen (the bytes it replaced) ---------------- */

/* The same calls through yajl_gen, its output into a buffer. */
typedef struct {
    char buf[32768];
    size_t len;
} gen_out;

static void gen_print(void *ctx, const char *s, size_t n)
{
    gen_out *o = ctx;
    cr_assert(o->len + n <= sizeof o->buf);
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

Test(http_json, the_writer_writes_what_yajl_gen_writes_byte_for_byte)
{
    static gen_out want;
    yajl_gen g = yajl_gen_alloc(NULL);
    cr_assert(g != NULL);
    cr_assert(yajl_gen_config(g, yajl_gen_print_callback, gen_print, (void *)&want));
    want.len = 0;
    yajl_gen_map_open(g);
    http_json_obj_open(&body);
    /* every ASCII byte as a one-byte key and as a one-byte value */
    for (int c = 0; c < 0x80; c++) {
        unsigned char s[3] = {(unsigned char)c, 'x', (unsigned char)c};
        yajl_gen_string(g, s, 1);
        yajl_gen_string(g, s, 3);
        http_json_str(&body, (const char *)s, 1);
        http_json_str(&body, (const char *)s, 3);
    }
    /* the byte at every place of a 17-byte key (the scan goes 8 bytes a step) */
    for (int c = 0; c < 0x80; c += 3)
        for (size_t at = 0; at < 17; at += 4) {
            unsigned char s[17];
            memcpy(s, "abcdefghijklmnopq", 17);
            s[at] = (unsigned char)c;
            s[16 - at] = (unsigned char)(0x7f - c);
            yajl_gen_string(g, s, 17);
            yajl_gen_string(g, s, 17);
            http_json_str(&body, (const char *)s, 17);
            http_json_str(&body, (const char *)s, 17);
        }
    const char *utf8 = "\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xa6 \"q\" \\ /";
    yajl_gen_string(g, (const unsigned char *)"nested", 6);
    http_json_key(&body, "nested");
    yajl_gen_array_open(g);
    http_json_arr_open(&body);
    yajl_gen_string(g, (const unsigned char *)utf8, strlen(utf8));
    http_json_cstr(&body, utf8);
    yajl_gen_number(g, "18446744073709551615", 20);
    http_json_u64(&body, UINT64_MAX);
    yajl_gen_number(g, "-9223372036854775808", 20);
    http_json_i64(&body, INT64_MIN);
    yajl_gen_string(g, (const unsigned char *)"42", 2);
    http_json_id(&body, 42);
    yajl_gen_bool(g, 1);
    http_json_bool(&body, true);
    yajl_gen_bool(g, 0);
    http_json_bool(&body, false);
    yajl_gen_null(g);
    http_json_null(&body);
    yajl_gen_map_open(g);
    http_json_obj_open(&body);
    yajl_gen_map_close(g);
    http_json_obj_close(&body);
    yajl_gen_array_open(g);
    http_json_arr_open(&body);
    yajl_gen_array_close(g);
    http_json_arr_close(&body);
    yajl_gen_map_open(g);
    http_json_obj_open(&body);
    yajl_gen_string(g, (const unsigned char *)"k", 1);
    http_json_key(&body, "k");
    yajl_gen_number(g, "1.50", 4);
    http_json_number(&body, "1.50", 4);
    yajl_gen_string(g, (const unsigned char *)"via_gen", 7);
    http_json_key(&body, "via_gen");
    yajl_gen_number(g, "-0.25", 5);
    cr_assert_eq(yajl_gen_number(http_json_gen(&body), "-0.25", 5), yajl_gen_status_ok);
    yajl_gen_string(g, (const unsigned char *)"after", 5);
    http_json_key(&body, "after");
    yajl_gen_array_open(g);
    http_json_arr_open(&body);
    yajl_gen_number(g, "7", 1);
    http_json_u64(&body, 7);
    yajl_gen_number(g, "8", 1);
    cr_assert_eq(yajl_gen_number(http_json_gen(&body), "8", 1), yajl_gen_status_ok);
    yajl_gen_array_close(g);
    http_json_arr_close(&body);
    yajl_gen_map_close(g);
    http_json_obj_close(&body);
    yajl_gen_array_close(g);
    http_json_arr_close(&body);
    yajl_gen_map_close(g);
    http_json_obj_close(&body);
    cr_assert(!body.failed);
    cr_assert_eq(body.len, want.len, "got %.*s\nwant %.*s", (int)body.len, body.p, (int)want.len,
                 want.buf);
    cr_assert(memcmp(body.p, want.buf, want.len) == 0, "got %.*s\nwant %.*s", (int)body.len, body.p,
              (int)want.len, want.buf);
    yajl_gen_free(g);
}

Test(http_json, the_writer_refuses_what_yajl_gen_refuses)
{
    http_json_u64(&body, 1);
    http_json_u64(&body, 2); /* a second document value */
    cr_assert(body.failed);
    http_body_reset(&body);
    http_json_obj_open(&body);
    http_json_key(&body, "k");
    http_json_obj_close(&body); /* a key without its value */
    cr_assert(body.failed);
    http_body_reset(&body);
    http_json_arr_open(&body);
    http_json_obj_close(&body); /* the wrong closer */
    cr_assert(body.failed);
    http_body_reset(&body);
    http_json_arr_close(&body); /* nothing open */
    cr_assert(body.failed);
    http_body_reset(&body);
    for (int i = 0; i < HTTP_JSON_NEST_MAX; i++)
        http_json_arr_open(&body);
    cr_assert(body.failed, "nesting past HTTP_JSON_NEST_MAX is refused");
    http_body_reset(&body);
    http_json_obj_open(&body);
    http_json_obj_open(&body); /* an object where a key belongs */
    cr_assert(body.failed);
    http_body_reset(&body);
    http_json_str(&body, "ok", 2);
    expect_body("\"ok\"");
}

/* strftime's text for t, quoted, with ".mmm" before its Z when ms >= 0, or
 * "null" (what http_json_time_iso(_ms) writes for a time gmtime_r/strftime
 * cannot print). */
static size_t iso_reference(int64_t t, int ms, char *out, size_t cap)
{
    struct tm tm;
    time_t tt = (time_t)t;
    char s[64];
    size_t n = 0;
    if (gmtime_r(&tt, &tm) != NULL)
        n = strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (n == 0)
        return (size_t)snprintf(out, cap, "null");
    if (ms >= 0)
        return (size_t)snprintf(out, cap, "\"%s.%03dZ\"", s, ms);
    return (size_t)snprintf(out, cap, "\"%sZ\"", s);
}

/* Both forms of unix_ms (t: its whole seconds) against the reference. */
static void expect_iso(int64_t unix_ms, int64_t t)
{
    char want[80];
    for (int with_ms = 0; with_ms <= 1; with_ms++) {
        size_t n = iso_reference(t, with_ms ? (int)(unix_ms - t * 1000) : -1, want, sizeof want);
        http_body_reset(&body);
        if (with_ms)
            http_json_time_iso_ms(&body, unix_ms);
        else
            http_json_time_iso(&body, unix_ms);
        cr_assert(!body.failed);
        cr_assert(body.len == n && memcmp(body.p, want, n) == 0, "t=%lld ms=%lld: got %.*s want %s",
                  (long long)t, (long long)unix_ms, (int)body.len, body.p, want);
    }
}

Test(http_json, iso_times_equal_gmtime_and_strftime_over_many_values)
{
    /* leap days and century rules, the ends of the fast range, and past them */
    static const int64_t edges[] = {
        0,
        -1,
        951782400,
        951868799,
        951868800,
        4107542400,
        4107456000,
        -2203891200,
        -2203977600,
        68256000,
        -30610224000,
        -30610224001,
        253402300799,
        253402300800,
        1796750455,
        -62135596800,
        32503680000,
        -12219292800,
        1709164800,
        1709251199,
        4102444800,
        -86400,
        -86401,
        253402214400,
    };
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) {
        expect_iso(edges[i] * 1000, edges[i]);
        expect_iso(edges[i] * 1000 + 999, edges[i]);
    }
    expect_iso(-1, -1);
    expect_iso(-999, -1);
    expect_iso(-1000, -1);
    expect_iso(-1001, -2);
    expect_iso(1796750455123, 1796750455); /* 2026-12-08T17:20:55.123Z */
    expect_iso(1796750455007, 1796750455);
    /* a walk over years 1000..9999 with a prime stride: every day-of-year
     * and second-of-day position is hit in many years */
    for (int64_t t = -30610224000; t < 253402300800; t += 7777777)
        expect_iso(t * 1000, t);
    for (int64_t t = -400000000000; t < 400000000000; t += 7777777777)
        expect_iso(t * 1000, t);
}

/* ---- the parser against yajl_tree_parse (what it replaced) -------------- */

/* Whether two trees hold the same values (numbers by their text and
 * flags, objects' keys in order). */
static bool same_tree(yajl_val a, yajl_val b)
{
    if (a == NULL || b == NULL || a->type != b->type)
        return a == b;
    switch (a->type) {
    case yajl_t_string:
        return strcmp(a->u.string, b->u.string) == 0;
    case yajl_t_number:
        return strcmp(a->u.number.r, b->u.number.r) == 0 &&
               a->u.number.flags == b->u.number.flags &&
               (!(a->u.number.flags & YAJL_NUMBER_INT_VALID) || a->u.number.i == b->u.number.i) &&
               (!(a->u.number.flags & YAJL_NUMBER_DOUBLE_VALID) ||
                memcmp(&a->u.number.d, &b->u.number.d, sizeof(double)) == 0);
    case yajl_t_object:
        if (a->u.object.len != b->u.object.len)
            return false;
        for (size_t i = 0; i < a->u.object.len; i++)
            if (strcmp(a->u.object.keys[i], b->u.object.keys[i]) != 0 ||
                !same_tree(a->u.object.values[i], b->u.object.values[i]))
                return false;
        return true;
    case yajl_t_array:
        if (a->u.array.len != b->u.array.len)
            return false;
        for (size_t i = 0; i < a->u.array.len; i++)
            if (!same_tree(a->u.array.values[i], b->u.array.values[i]))
                return false;
        return true;
    default:
        return true;
    }
}

Test(http_json, the_parser_builds_the_tree_yajl_tree_parse_builds)
{
    static const char *const good[] = {
        "{\"inventory_item_id\":\"1000007\",\"location_id\":\"42\",\"stock\":123}",
        "{\"location_id\":42,\"inventory_item_id\":2000001,\"available_adjustment\":-1}",
        " [ 1 , -0 , 0.5 , -1.25e-3 , 1E+9 , 2e308 , 9223372036854775807 ,"
        " -9223372036854775808 , 9223372036854775808 , 18446744073709551615 , "
        "123456789012345678901234 ] ",
        "{\"a\":{\"b\":[true,false,null,{},[]]},\"a\":\"dup\"}",
        "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\u20ac\\ud83d\\udce6\"",
        "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xa6 \x7f\"",
        "{\"\\u0041key\":\"v\"}",
        "[\"abcdefghijklmno\\\"p\",\"abcdefgh\\\\ijklmnop\",\"abcdefghijklmnopqrst\\n\"]",
        "\"abcdefghijklmnop\xc3\xa9qrstuvwx\"",
        "0",
        "-5",
        "true",
        "null",
        "\"\"",
        "{}",
        "[]",
        "\r\n\t {\"x\" :\t1}\n",
    };
    char err[128];
    for (size_t k = 0; k < sizeof good / sizeof good[0]; k++) {
        http_str in = S(good[k]);
        char yerr[128];
        yajl_val want = yajl_tree_parse(good[k], yerr, sizeof yerr);
        yajl_val got = http_json_parse(&in, err, sizeof err);
        cr_assert_not_null(want, "yajl refused %s", good[k]);
        cr_assert_not_null(got, "refused %s: %s", good[k], err);
        cr_assert(same_tree(got, want), "a different tree for %s", good[k]);
        yajl_tree_free(got);
        yajl_tree_free(want);
    }
}

/* yajl's lexer checks UTF-8's structure, not overlong forms or encoded
 * surrogates, and decodes a lone surrogate escape as '?': bodies holding
 * those parse as yajl_tree_parse parses them (documented in docs/HTTP.md;
 * no id, quantity or key the dialects read is affected). */
Test(http_json, utf8_and_escape_leniency_is_yajls)
{
    static const char *const lenient[] = {"\"\\ud800\"", "\"\\udc00\"", "\"\\ud800x\"",
                                          "\"\xc0\xaf\"", "\"\xed\xa0\x80\""};
    char err[128], yerr[128];
    for (size_t k = 0; k < sizeof lenient / sizeof lenient[0]; k++) {
        http_str in = S(lenient[k]);
        yajl_val want = yajl_tree_parse(lenient[k], yerr, sizeof yerr);
        yajl_val got = http_json_parse(&in, err, sizeof err);
        cr_assert_not_null(want, "yajl refused #%zu", k);
        cr_assert_not_null(got, "#%zu: %s", k, err);
        cr_assert(same_tree(got, want), "a different tree for #%zu", k);
        yajl_tree_free(got);
        yajl_tree_free(want);
    }
}

Test(http_json, the_parser_refuses_what_yajl_refuses_and_what_json_forbids)
{
    static const char *const bad[] = {
        /* refused by yajl too */
        "{\"a\" 1}",
        "{\"a\":1,}",
        "[1 2]",
        "01",
        "1.",
        ".5",
        "-",
        "1e",
        "+1",
        "tru",
        "nul",
        "\"a\x01\"",
        "\"\\x\"",
        "\"\\u12\"",
        "\"unterminated",
        "{\"a\":1",
        "[",
        "]",
        "{1:2}",
        "\"\xc3\"",
        "\"\xff\"",
        "[1]]",
        "{}{}",
        "\x00",
        /* let by yajl_tree_parse (comments, \v and \f as whitespace, an
         * escaped NUL), refused here */
        "/* c */ {}",
        "[1 // c\n]",
        "\v1",
        "\f1",
        "\"a\\u0000b\"",
        "\"abcdefghijklmn\x01op\"",
        "\"abcdefghijklmnop\xffqr\"",
    };
    char err[128];
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        http_str in = {bad[k], strlen(bad[k]) + (bad[k][0] == '\0')};
        yajl_val v = http_json_parse(&in, err, sizeof err);
        cr_assert_null(v, "accepted #%zu %s", k, bad[k]);
        cr_assert(err[0] != '\0');
    }
}
