/*
 * test_http_json.c — core/server/http_json.c: the writer's escaping and
 * exact integers, the parser's strictness (depth, comments, trailing
 * bytes) and its typed getters, the shared id rule, query helpers.
 */
#include <criterion/criterion.h>
#include <string.h>

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
    const char *bad[] = {"", "0", "-1", "+1", "18446744073709551616", "07", "1a", " 1", "1.0"};
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
