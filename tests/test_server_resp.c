/*
 * test_server_resp.c — unit tests of the RESP parser and reply writer
 * (core/server/resp.c), called directly: every input is fed whole and
 * byte by byte, and hostile framing must give RESP_ERROR, never a crash,
 * never a read past the bytes given.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/resp.h"

#define ARGS_CAP 64

static const resp_limits lim = {16, 1024};

/* Parses one request from exactly n bytes in a heap copy (so ASan sees any
 * overread). */
static resp_status parse_n(const char *s, size_t n, resp_arg *argv, size_t *argc, size_t *used,
                           size_t *need, char **copy)
{
    const char *err;
    *copy = malloc(n ? n : 1);
    memcpy(*copy, s, n);
    return resp_parse(*copy, n, &lim, argv, argc, used, need, &err);
}

/* Every strict prefix needs more; the whole parses with consumed == n. */
static void check_whole_and_prefixes(const char *s, size_t n, size_t want_argc)
{
    resp_arg argv[ARGS_CAP];
    size_t argc, used, need;
    char *copy;
    for (size_t k = 0; k < n; k++) {
        resp_status st = parse_n(s, k, argv, &argc, &used, &need, &copy);
        cr_assert_eq(st, RESP_NEED_MORE, "prefix %zu of %zu", k, n);
        cr_assert_gt(need, k);
        free(copy);
    }
    cr_assert_eq(parse_n(s, n, argv, &argc, &used, &need, &copy), RESP_OK);
    cr_assert_eq(used, n);
    cr_assert_eq(argc, want_argc);
    free(copy);
}

Test(resp, multibulk_parses_whole_and_byte_by_byte)
{
    const char *s = "*3\r\n$12\r\nLEVEL.ADJUST\r\n$1\r\n7\r\n$0\r\n\r\n";
    resp_arg argv[ARGS_CAP];
    size_t argc, used, need;
    const char *err;
    check_whole_and_prefixes(s, strlen(s), 3);
    cr_assert_eq(resp_parse(s, strlen(s), &lim, argv, &argc, &used, &need, &err), RESP_OK);
    cr_assert_eq(argv[0].len, 12);
    cr_assert(memcmp(argv[0].ptr, "LEVEL.ADJUST", 12) == 0);
    cr_assert_eq(argv[0].ptr, s + 9, "zero copy: points into the input");
    cr_assert_eq(argv[2].len, 0);
}

Test(resp, inline_command_splits_on_spaces)
{
    const char *s = "level.get  1\t2\r\n";
    resp_arg argv[ARGS_CAP];
    size_t argc, used, need;
    const char *err;
    check_whole_and_prefixes(s, strlen(s), 3);
    cr_assert_eq(resp_parse(s, strlen(s), &lim, argv, &argc, &used, &need, &err), RESP_OK);
    cr_assert_eq(argv[2].len, 1);
    cr_assert_eq(argv[2].ptr[0], '2');
}

Test(resp, empty_inline_line_is_zero_args)
{
    resp_arg argv[ARGS_CAP];
    size_t argc, used, need;
    const char *err;
    cr_assert_eq(resp_parse("\r\n", 2, &lim, argv, &argc, &used, &need, &err), RESP_OK);
    cr_assert_eq(argc, 0);
    cr_assert_eq(used, 2);
}

Test(resp, pipelined_requests_parse_one_at_a_time)
{
    const char *s = "*1\r\n$4\r\nPING\r\nPING\r\n*1\r\n$4\r\nPING\r\n";
    resp_arg argv[ARGS_CAP];
    size_t argc, used, need, pos = 0, count = 0;
    const char *err;
    while (pos < strlen(s)) {
        cr_assert_eq(resp_parse(s + pos, strlen(s) - pos, &lim, argv, &argc, &used, &need, &err),
                     RESP_OK);
        pos += used;
        count++;
    }
    cr_assert_eq(count, 3);
}

static void expect_error(const char *s, size_t n)
{
    resp_arg argv[ARGS_CAP];
    size_t argc, used, need;
    const char *err = NULL;
    char *copy = malloc(n);
    memcpy(copy, s, n);
    cr_assert_eq(resp_parse(copy, n, &lim, argv, &argc, &used, &need, &err), RESP_ERROR,
                 "input: %.*s", (int)n, s);
    cr_assert_not_null(err);
    free(copy);
}

static void expect_error_str(const char *s)
{
    expect_error(s, strlen(s));
}

Test(resp, hostile_lengths_are_framing_errors)
{
    expect_error("*1\r\n$999999999999\r\n", 20);
    expect_error("*1\r\n$99999999999999999999999999\r\n", 33);
    expect_error("*1\r\n$-5\r\n", 9);
    expect_error("*-5\r\n", 5);
    expect_error("*17\r\n", 5); /* more than max_args */
    expect_error("*1\r\n$1025\r\n", 11); /* more than max_bulk */
    expect_error("*1x\r\n", 5);
    expect_error("*1\r\n:5\r\n", 8);
    expect_error("*1\r\n$3\r\nabcXY", 13); /* missing CRLF after bulk */
    expect_error("*1\n", 3);
    expect_error("*\r\n", 3);
}

/* Headers of one and two digits take parse_header's fast path, longer
 * ones its loop: every length 0..999 (leading zeros too) parses to the
 * same argument, whole and byte by byte, and a bad byte in each place a
 * short header has is a framing error. */
Test(resp, short_and_long_headers_parse_alike)
{
    static char body[1000];
    memset(body, 'x', sizeof body);
    char req[1100];
    for (int blen = 0; blen < 1000; blen++)
        for (int zeros = 0; zeros <= 1; zeros++) {
            int n = snprintf(req, sizeof req, "*1\r\n$%s%d\r\n%.*s\r\n", zeros ? "0" : "", blen,
                             blen, body);
            cr_assert(n > 0 && (size_t)n < sizeof req);
            resp_arg argv[ARGS_CAP];
            size_t argc, used, need;
            char *copy;
            cr_assert_eq(parse_n(req, (size_t)n, argv, &argc, &used, &need, &copy), RESP_OK,
                         "length %d", blen);
            cr_assert_eq(argc, 1);
            cr_assert_eq(argv[0].len, (size_t)blen);
            cr_assert_eq(used, (size_t)n);
            free(copy);
            if (blen % 97 == 0) /* a sample byte by byte: every prefix needs more */
                check_whole_and_prefixes(req, (size_t)n, 1);
        }
    expect_error_str("*1\r\n$5\rX12345\r\n"); /* CR without LF */
    expect_error_str("*1\r\n$5X\r\n12345\r\n");
    expect_error_str("*1\r\n$1\n\r1\r\n");
    expect_error_str("*1\r\n$12\rX123456789012\r\n");
    expect_error_str("*1\r\n$1X\r\n1\r\n");
    expect_error_str("*2x\r\n$1\r\n1\r\n");
}

Test(resp, huge_declared_length_waits_no_allocation)
{
    /* within the limits, a declared length only makes the parser wait */
    resp_limits big = {16, 1u << 30};
    resp_arg argv[ARGS_CAP];
    size_t argc, used, need;
    const char *err;
    const char *s = "*1\r\n$1000000000\r\nab";
    cr_assert_eq(resp_parse(s, strlen(s), &big, argv, &argc, &used, &need, &err), RESP_NEED_MORE);
    cr_assert_eq(need, 17 + 1000000000 + 2);
}

Test(resp, header_without_end_is_bounded)
{
    char s[64];
    memset(s, '9', sizeof s);
    s[0] = '*';
    expect_error(s, sizeof s);
}

Test(resp, inline_line_too_long_is_error)
{
    size_t n = RESP_INLINE_MAX + 10;
    char *s = malloc(n);
    memset(s, 'a', n);
    expect_error(s, n);
    free(s);
}

Test(resp, binary_junk_never_crashes)
{
    unsigned seed = 12345;
    resp_arg argv[ARGS_CAP];
    for (int round = 0; round < 20000; round++) {
        char buf[48];
        size_t n = (size_t)(rand_r(&seed) % sizeof buf), argc, used, need;
        const char *err;
        for (size_t i = 0; i < n; i++) {
            int r = rand_r(&seed) % 8;
            buf[i] = r == 0   ? '*'
                     : r == 1 ? '$'
                     : r == 2 ? '\r'
                     : r == 3 ? '\n'
                     : r == 4 ? (char)('0' + rand_r(&seed) % 10)
                              : (char)rand_r(&seed);
        }
        char *copy = malloc(n ? n : 1);
        memcpy(copy, buf, n);
        resp_status st = resp_parse(copy, n, &lim, argv, &argc, &used, &need, &err);
        if (st == RESP_OK) {
            cr_assert_leq(used, n);
            cr_assert_leq(argc, lim.max_args);
            for (size_t i = 0; i < argc; i++)
                cr_assert(argv[i].ptr >= copy && argv[i].ptr + argv[i].len <= copy + n);
        }
        free(copy);
    }
}

Test(resp, numbers_parse_strictly)
{
    uint64_t u;
    int64_t i;
    cr_assert_eq(resp_parse_u64("000000012345", 12, &u), 0);
    cr_assert_eq(u, 12345);
    cr_assert_eq(resp_parse_u64("18446744073709551615", 20, &u), 0);
    cr_assert_eq(u, UINT64_MAX);
    cr_assert_eq(resp_parse_u64("18446744073709551616", 20, &u), -1);
    cr_assert_eq(resp_parse_u64("-1", 2, &u), -1);
    cr_assert_eq(resp_parse_u64("", 0, &u), -1);
    cr_assert_eq(resp_parse_u64("1 ", 2, &u), -1);
    cr_assert_eq(resp_parse_u64("+1", 2, &u), -1);
    cr_assert_eq(resp_parse_i64("-9223372036854775808", 20, &i), 0);
    cr_assert_eq(i, INT64_MIN);
    cr_assert_eq(resp_parse_i64("9223372036854775808", 19, &i), -1);
    cr_assert_eq(resp_parse_i64("-", 1, &i), -1);
    cr_assert_eq(resp_parse_i64("-0", 2, &i), 0);
    cr_assert_eq(i, 0);
}

/* Every reply number goes through resp_fmt_u64: each digit count and both
 * ends of the range, against printf. */
Test(resp, u64_formatting_matches_printf)
{
    uint64_t v = 1;
    for (int digits = 1; digits <= 20; digits++) {
        uint64_t cases[] = {v - 1, v, v + 1, v * 2 - 1, v * 5 + 3, UINT64_MAX - v};
        for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
            char got[32], want[32];
            size_t n = resp_fmt_u64(got, cases[k]);
            got[n] = '\0';
            snprintf(want, sizeof want, "%llu", (unsigned long long)cases[k]);
            cr_assert_str_eq(got, want);
        }
        if (digits < 20)
            v *= 10;
    }
}

Test(resp, writer_emits_resp2_and_resp3)
{
    resp_out o;
    resp_out_init(&o, 2);
    resp_w_map(&o, 1);
    resp_w_bulk_u64(&o, UINT64_MAX);
    resp_w_int(&o, -7);
    resp_w_null(&o);
    resp_w_error(&o, "CONFLICT", "revision\r\n7");
    const char *want2 = "*2\r\n$20\r\n18446744073709551615\r\n:-7\r\n$-1\r\n"
                        "-CONFLICT revision  7\r\n";
    cr_assert_eq(o.len, strlen(want2));
    cr_assert(memcmp(o.buf, want2, o.len) == 0);
    resp_out_free(&o);

    resp_out_init(&o, 3);
    resp_w_map(&o, 1);
    resp_w_null(&o);
    resp_w_bool(&o, 1);
    const char *want3 = "%1\r\n_\r\n#t\r\n";
    cr_assert_eq(o.len, strlen(want3));
    cr_assert(memcmp(o.buf, want3, o.len) == 0);
    resp_out_free(&o);
}
