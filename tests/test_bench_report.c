/*
 * test_bench_report.c — invcore-bench's reporting (core/tools/bench/report.c):
 * the CSV (its header, one row per sample with the sample's numbers, even
 * past max_samples, where report_samples stops counting), the live progress
 * line, the final table (the verdict, FAILED / OVERSOLD when the flash-sale
 * check failed), the JSON read back with yajl's tree parser, the PNG drawn
 * by gnuplot (its signature, its size, no temp file left behind), and the
 * refusals: zero max_samples, a bad sample, a file in a directory that does
 * not exist (the message names it), a name that is not UTF-8, and no
 * gnuplot in PATH. Every file lives in a fresh dir under /tmp (the suite's
 * fixture makes it before each test and removes it after, failed or not).
 */
#include <criterion/criterion.h>

#include "tools/bench/report.h"

#include <yajl/yajl_tree.h>

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------- */

#define ERR_LEN 512
#define PATH_LEN 4096
#define FILE_BYTES_MAX (4u << 20) /* every file a test reads is far smaller */

/* A fresh, empty dir under /tmp. */
static void tmpdir_make(char *dir, size_t len)
{
    snprintf(dir, len, "/tmp/test_bench_report.XXXXXX");
    cr_assert_not_null(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
}

/* Entries of dir, "." and ".." aside. */
static size_t dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "opendir %s: %s", dir, strerror(errno));
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

/* Removes dir and the files and empty dirs in it (the tests make no more). */
static void tmpdir_remove(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    char path[PATH_LEN];
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) != 0)
            rmdir(path);
    }
    closedir(d);
    rmdir(dir);
}

/* dir + sep + name into out (PATH_LEN bytes); sep is "/" unless name is a
 * suffix (".tmp"). */
static void path_in(char *out, const char *dir, const char *name)
{
    const int n = snprintf(out, PATH_LEN, "%s%s%s", dir, name[0] == '.' ? "" : "/", name);
    cr_assert(n > 0 && n < PATH_LEN, "path too long: %s/%s", dir, name);
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* The whole file, NUL-terminated (free it); *len its size. */
static char *file_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "open %s: %s", path, strerror(errno));
    char *buf = malloc(FILE_BYTES_MAX + 1);
    cr_assert_not_null(buf);
    const size_t n = fread(buf, 1, FILE_BYTES_MAX, f);
    cr_assert(feof(f), "%s is larger than the test expects", path);
    fclose(f);
    buf[n] = '\0';
    if (len != NULL)
        *len = n;
    return buf;
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Sample i (from 1): i seconds in, 1000 * i ops, i - 1 errors, sold 10 * i
 * of 1000; every fourth one is not a sale (sold and remaining unknown). */
static struct bench_sample sample_at(unsigned i)
{
    struct bench_sample s = {
        .t_s = i,
        .interval_s = 1.0,
        .ops = 1000u * i,
        .errors = i - 1,
        .p50_ns = 210000,
        .p99_ns = 840000,
        .p999_ns = 1200000,
        .max_ns = 5000000 + i,
        .sold = i % 4 == 0 ? -1 : 10 * (int64_t)i,
        .remaining = i % 4 == 0 ? -1 : 1000 - 10 * (int64_t)i,
    };
    return s;
}

static struct report *report_with_samples(size_t max_samples, const char *csv, unsigned n)
{
    char err[ERR_LEN] = "";
    struct report *r = report_new(max_samples, NULL, csv, err, sizeof err);
    cr_assert_not_null(r, "report_new: %s", err);
    for (unsigned i = 1; i <= n; i++) {
        const struct bench_sample s = sample_at(i);
        cr_assert_eq(report_sample(r, &s, err, sizeof err), 0, "sample %u: %s", i, err);
    }
    return r;
}

/* The latency of 10,000 requests: 1 us, 2 us, ... 10 ms. */
static struct hist *latency_uniform(void)
{
    struct hist *h = malloc(sizeof *h);
    cr_assert_not_null(h);
    hist_reset(h);
    for (uint64_t i = 1; i <= 10000; i++)
        hist_record(h, i * 1000);
    return h;
}

/* A checkout run that sold 1001 of 1000: the check failed. */
static struct bench_summary summary_oversold(const struct hist *latency)
{
    struct bench_summary sum = {
        .scenario = "checkout",
        .target = "invcored",
        .transport = "resp",
        .keys = "zipf:1000",
        .clients = 64,
        .threads = 2,
        .pipeline = 1,
        .rate_per_s = 0,
        .duration_s = 10,
        .ops = 1523310,
        .errors = 12,
        .latency = latency,
        .counters = {{"sold", 1001}, {"sold_out", 5000}, {"abandoned", 7}},
        .ncounters = 3,
        .checked = true,
        .ok = false,
        .verdict = "sold 1001 > stock 1000 on item 42",
    };
    return sum;
}

/* The table as one string (free it). */
static char *table_of(const struct report *r, const struct bench_summary *sum)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    cr_assert_not_null(out);
    report_table(r, sum, out);
    fclose(out);
    cr_assert_not_null(text);
    return text;
}

/* Each of needles, up to its NULL, is somewhere in text. */
static void text_has_all(const char *text, const char *const needles[])
{
    for (size_t i = 0; needles[i] != NULL; i++)
        cr_assert_not_null(strstr(text, needles[i]), "no \"%s\" in:\n%s", needles[i], text);
}

static yajl_val json_at(yajl_val root, const char *a, const char *b, yajl_type type)
{
    const char *path[] = {a, b, NULL};
    const yajl_val v = yajl_tree_get(root, path, type);
    cr_assert_not_null(v, "JSON: no %s%s%s of the expected type", a, b ? "." : "", b ? b : "");
    return v;
}

/* Never NULL: YAJL_GET_STRING's NULL branch is for a value of another type. */
static const char *json_string(yajl_val root, const char *a, const char *b)
{
    const yajl_val v = json_at(root, a, b, yajl_t_string);
    return v->u.string;
}

static double json_number(yajl_val root, const char *a, const char *b)
{
    return YAJL_GET_DOUBLE(json_at(root, a, b, yajl_t_number));
}

/* ---- the fixture --------------------------------------------------------- */

/* The running test's scratch dir, made by setup, removed by teardown; the
 * CSV's path in it (no file until report_on_csv); the test's report, if it
 * makes one, freed by teardown. Here, after the helpers above, whose own
 * `dir`, `csv` and `r` they would shadow. */
static char dir[PATH_LEN], csv[PATH_LEN];
static struct report *r;

static void setup(void)
{
    tmpdir_make(dir, sizeof dir);
    path_in(csv, dir, "run.csv");
    r = NULL;
}

static void teardown(void)
{
    report_free(r); /* closes the CSV, if any, before its dir goes */
    r = NULL;
    tmpdir_remove(dir);
}

TestSuite(bench_report, .init = setup, .fini = teardown);

/* A report keeping max_samples, its CSV at csv, fed samples 1..n (none for
 * n == 0). */
static struct report *report_on_csv(size_t max_samples, unsigned n)
{
    return report_with_samples(max_samples, csv, n);
}

/* ---- report_new, report_sample, the CSV -------------------------------- */

Test(bench_report, new_refuses_zero_max_samples_and_empty_paths)
{
    char err[ERR_LEN] = "";
    cr_assert_null(report_new(0, NULL, NULL, err, sizeof err));
    cr_assert_not_null(strstr(err, "max_samples"), "err: %s", err);
    err[0] = '\0';
    cr_assert_null(report_new(SIZE_MAX, NULL, NULL, err, sizeof err), "no unbounded allocation");
    cr_assert_not_null(strstr(err, "max_samples"), "err: %s", err);
    err[0] = '\0';
    cr_assert_null(report_new(10, NULL, "", err, sizeof err));
    cr_assert_not_null(strstr(err, "CSV"), "err: %s", err);
    /* and without a place for the reason, still a refusal, no crash */
    cr_assert_null(report_new(0, NULL, NULL, NULL, 0));
}

Test(bench_report, csv_in_a_missing_directory_is_refused_naming_the_path)
{
    char missing[PATH_LEN], err[ERR_LEN] = "";
    path_in(missing, dir, "no/such/dir/run.csv");
    cr_assert_null(report_new(10, NULL, missing, err, sizeof err));
    cr_assert_not_null(strstr(err, missing), "the message names the file: %s", err);
    cr_assert_not_null(strstr(err, strerror(ENOENT)), "and says why: %s", err);
    cr_assert_eq(dir_entries(dir), 0);
}

Test(bench_report, a_sample_without_a_length_is_refused_and_not_kept)
{
    char err[ERR_LEN] = "";
    r = report_on_csv(4, 0);
    struct bench_sample s = sample_at(1);
    s.interval_s = 0;
    cr_assert_eq(report_sample(r, &s, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "interval"), "err: %s", err);
    s = sample_at(1);
    s.sold = -2;
    cr_assert_eq(report_sample(r, &s, err, sizeof err), -1);
    cr_assert_eq(report_sample(r, NULL, err, sizeof err), -1);
    cr_assert_eq(report_samples(r), 0);
    char *text = file_read(csv, NULL);
    cr_assert_eq(count_lines(text), 1, "the header only:\n%s", text);
    free(text);
}

Test(bench_report, csv_has_the_header_and_one_row_per_sample_with_its_numbers)
{
    r = report_on_csv(10, 4);
    /* flushed per row: complete while the report is open */
    char *text = file_read(csv, NULL);
    cr_assert_str_eq(
        text, "t_s,interval_s,ops,ops_per_s,errors,p50_ms,p99_ms,p999_ms,max_ms,sold,remaining\n"
              "1.000,1.000,1000,1000.0,0,0.210000,0.840000,1.200000,5.000001,10,990\n"
              "2.000,1.000,2000,2000.0,1,0.210000,0.840000,1.200000,5.000002,20,980\n"
              "3.000,1.000,3000,3000.0,2,0.210000,0.840000,1.200000,5.000003,30,970\n"
              "4.000,1.000,4000,4000.0,3,0.210000,0.840000,1.200000,5.000004,,\n");
    cr_assert_eq(report_samples(r), 4);
    free(text);
}

Test(bench_report, ops_per_second_divides_by_the_interval)
{
    char err[ERR_LEN] = "";
    r = report_on_csv(4, 0);
    struct bench_sample s = sample_at(1);
    s.t_s = 10.25;
    s.interval_s = 0.25; /* the last, shorter interval */
    s.ops = 500;
    cr_assert_eq(report_sample(r, &s, err, sizeof err), 0, "%s", err);
    char *text = file_read(csv, NULL);
    cr_assert_not_null(strstr(text, "\n10.250,0.250,500,2000.0,0,"), "%s", text);
    free(text);
}

Test(bench_report, samples_past_max_are_not_kept_but_still_written_to_the_csv)
{
    r = report_on_csv(2, 5);
    cr_assert_eq(report_samples(r), 2, "only max_samples are kept");
    char *text = file_read(csv, NULL);
    cr_assert_eq(count_lines(text), 1 + 5, "header and every sample:\n%s", text);
    cr_assert_not_null(strstr(text, "\n5.000,1.000,5000,5000.0,4,"), "%s", text);
    free(text);
}

Test(bench_report, progress_prints_one_line_per_sample_and_omits_unknown_sales)
{
    char *text = NULL, err[ERR_LEN] = "";
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    cr_assert_not_null(out);
    r = report_new(1, out, NULL, err, sizeof err);
    cr_assert_not_null(r, "%s", err);
    struct bench_sample s = sample_at(3);
    s.ops = 152331;
    s.sold = 1203;
    s.remaining = 8797;
    cr_assert_eq(report_sample(r, &s, err, sizeof err), 0, "%s", err);
    s = sample_at(4); /* not a sale */
    cr_assert_eq(report_sample(r, &s, err, sizeof err), 0, "%s", err);
    fclose(out);
    cr_assert_eq(count_lines(text), 2, "%s", text);
    const char *second = strchr(text, '\n') + 1;
    cr_assert_not_null(strstr(text, "[  3.0s] 152,331 ops/s  p50 0.210 ms  p99 0.840 ms"), "%s",
                       text);
    cr_assert_not_null(strstr(text, "sold 1,203  remaining 8,797\n"), "%s", text);
    cr_assert_not_null(strstr(second, "[  4.0s] 4,000 ops/s"), "%s", second);
    cr_assert_null(strstr(second, "sold"), "no sale, no sold: %s", second);
    cr_assert_null(strstr(second, "remaining"), "%s", second);
    cr_assert_eq(report_samples(r), 1);
    free(text);
}

/* ---- report_table ------------------------------------------------------- */

Test(bench_report, table_says_failed_and_oversold_loudly_when_the_check_fails)
{
    struct hist *h = latency_uniform();
    r = report_with_samples(8, NULL, 3);
    const struct bench_summary sum = summary_oversold(h);
    char *text = table_of(r, &sum);
    static const char *const shown[] = {
        "sold 1001 > stock 1000 on item 42", /* the verdict */
        "FAILED",
        "OVERSOLD",
        "checkout",
        "invcored over resp, keys zipf:1000",
        "64 clients, 2 threads, pipeline 1, closed loop",
        "1,523,310  (152,331 ops/s)",
        "sold_out", /* every counter */
        "5,000",
        "abandoned",
        "max 10.0", /* the max, exact */
        "p99.99 ",
        NULL,
    };
    text_has_all(text, shown);
    cr_assert_null(strstr(text, "clamped"), "nothing clamped: %s", text);
    free(text);
    free(h);
}

Test(bench_report, table_shows_an_ok_verdict_quietly_and_the_clamped_count)
{
    struct hist *h = latency_uniform();
    hist_record(h, HIST_VALUE_MAX_NS + 1000); /* a stall past the histogram */
    hist_record(h, HIST_VALUE_MAX_NS + 1);
    r = report_with_samples(8, NULL, 1);
    struct bench_summary sum = summary_oversold(h);
    sum.ok = true;
    sum.verdict = "ok: sold 1000 <= stock 1000, units conserved";
    sum.rate_per_s = 50000;
    char *text = table_of(r, &sum);
    cr_assert_not_null(strstr(text, sum.verdict), "%s", text);
    cr_assert_null(strstr(text, "FAILED"), "%s", text);
    cr_assert_null(strstr(text, "OVERSOLD"), "%s", text);
    cr_assert_not_null(strstr(text, "open loop at 50,000 req/s"), "%s", text);
    cr_assert_not_null(strstr(text, "clamped     2 latencies"), "%s", text);
    free(text);
    sum.checked = false;
    sum.verdict = NULL;
    text = table_of(r, &sum);
    cr_assert_not_null(strstr(text, "not checked"), "%s", text);
    free(text);
    free(h);
}

/* ---- report_json --------------------------------------------------------- */

Test(bench_report, json_reads_back_with_the_summary_latency_verdict_and_samples)
{
    char json[PATH_LEN], tmp[PATH_LEN], err[ERR_LEN] = "";
    path_in(json, dir, "run.json");
    path_in(tmp, json, ".tmp");
    struct hist *h = latency_uniform();
    r = report_with_samples(4, NULL, 6); /* 2 dropped */
    const struct bench_summary sum = summary_oversold(h);
    cr_assert_eq(report_json(r, &sum, json, err, sizeof err), 0, "%s", err);
    cr_assert_not(file_exists(tmp), "the .tmp was renamed");
    char *text = file_read(json, NULL);
    char perr[ERR_LEN] = "";
    yajl_val root = yajl_tree_parse(text, perr, sizeof perr);
    cr_assert_not_null(root, "not JSON (%s):\n%s", perr, text);
    cr_assert_str_eq(json_string(root, "scenario", NULL), "checkout");
    cr_assert_str_eq(json_string(root, "keys", NULL), "zipf:1000");
    cr_assert_eq(YAJL_GET_INTEGER(json_at(root, "ops", NULL, yajl_t_number)), 1523310);
    cr_assert_eq(YAJL_GET_INTEGER(json_at(root, "clients", NULL, yajl_t_number)), 64);
    cr_assert(YAJL_IS_TRUE(json_at(root, "closed_loop", NULL, yajl_t_true)));
    cr_assert_float_eq(json_number(root, "ops_per_s", NULL), 152331.0, 0.05);
    cr_assert_eq(YAJL_GET_INTEGER(json_at(root, "counters", "sold", yajl_t_number)), 1001);
    cr_assert_eq(YAJL_GET_INTEGER(json_at(root, "counters", "abandoned", yajl_t_number)), 7);
    /* within the histogram's 0.39% of 5 ms, 9.9 ms, 9.99 ms; max and min exact */
    cr_assert_float_eq(json_number(root, "latency_ms", "p50"), 5.0, 0.02);
    cr_assert_float_eq(json_number(root, "latency_ms", "p99"), 9.9, 0.04);
    cr_assert_float_eq(json_number(root, "latency_ms", "p999"), 9.99, 0.04);
    cr_assert_float_eq(json_number(root, "latency_ms", "max"), 10.0, 1e-9);
    cr_assert_float_eq(json_number(root, "latency_ms", "min"), 0.001, 1e-9);
    cr_assert_float_eq(json_number(root, "latency_ms", "mean"), 5.0005, 1e-6);
    cr_assert(json_number(root, "latency_ms", "p9999") >= json_number(root, "latency_ms", "p999"));
    cr_assert(json_number(root, "latency_ms", "p90") >= json_number(root, "latency_ms", "p50"));
    cr_assert(YAJL_IS_FALSE(json_at(root, "check", "ok", yajl_t_false)));
    cr_assert_str_eq(json_string(root, "check", "verdict"), sum.verdict);
    cr_assert_eq(YAJL_GET_INTEGER(json_at(root, "samples_dropped", NULL, yajl_t_number)), 2);
    const yajl_val samples = json_at(root, "samples", NULL, yajl_t_array);
    cr_assert_eq(YAJL_GET_ARRAY(samples)->len, 4, "the kept samples");
    const yajl_val s2 = YAJL_GET_ARRAY(samples)->values[1];
    cr_assert_eq(YAJL_GET_INTEGER(json_at(s2, "ops", NULL, yajl_t_number)), 2000);
    cr_assert_eq(YAJL_GET_INTEGER(json_at(s2, "sold", NULL, yajl_t_number)), 20);
    cr_assert_float_eq(json_number(s2, "p99_ms", NULL), 0.84, 1e-9);
    const yajl_val s4 = YAJL_GET_ARRAY(samples)->values[3];
    cr_assert(YAJL_IS_NULL(json_at(s4, "sold", NULL, yajl_t_null)), "unknown sold is null");
    yajl_tree_free(root);
    free(text);
    free(h);
}

Test(bench_report, json_escapes_names_and_leaves_no_file_when_a_name_is_not_utf8)
{
    char json[PATH_LEN], err[ERR_LEN] = "";
    path_in(json, dir, "run.json");
    r = report_with_samples(4, NULL, 1);
    struct bench_summary sum = summary_oversold(NULL); /* no latency: zeros */
    sum.verdict = "bad \"quote\"\nand newline";
    cr_assert_eq(report_json(r, &sum, json, err, sizeof err), 0, "%s", err);
    char *text = file_read(json, NULL);
    yajl_val root = yajl_tree_parse(text, NULL, 0);
    cr_assert_not_null(root, "%s", text);
    cr_assert_str_eq(json_string(root, "check", "verdict"), sum.verdict);
    cr_assert_eq(YAJL_GET_INTEGER(json_at(root, "latency_count", NULL, yajl_t_number)), 0);
    yajl_tree_free(root);
    free(text);
    cr_assert_eq(unlink(json), 0);

    sum.scenario = "check\xff"; /* not UTF-8: refused, nothing left behind */
    cr_assert_eq(report_json(r, &sum, json, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, json), "err: %s", err);
    cr_assert_eq(dir_entries(dir), 0, "neither the file nor its .tmp");
}

Test(bench_report, json_refuses_a_missing_directory_and_no_path)
{
    char json[PATH_LEN], err[ERR_LEN] = "";
    path_in(json, dir, "missing/run.json");
    r = report_with_samples(4, NULL, 1);
    const struct bench_summary sum = summary_oversold(NULL);
    cr_assert_eq(report_json(r, &sum, json, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, json), "err: %s", err);
    cr_assert_eq(report_json(r, &sum, NULL, err, sizeof err), -1);
    cr_assert_eq(report_json(r, &sum, "", err, sizeof err), -1);
    struct bench_summary bad = sum;
    bad.ncounters = BENCH_COUNTERS_MAX + 1;
    path_in(json, dir, "run.json");
    cr_assert_eq(report_json(r, &bad, json, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "counters"), "err: %s", err);
    cr_assert_eq(dir_entries(dir), 0);
}

/* ---- report_plot --------------------------------------------------------- */

/* png starts with the PNG signature and holds more than an empty page. */
static void plot_png_check(const char *png)
{
    size_t len = 0;
    char *bytes = file_read(png, &len);
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    cr_assert_geq(len, sizeof sig);
    cr_assert_arr_eq(bytes, sig, sizeof sig, "%s is not a PNG", png);
    cr_assert_gt(len, 10000, "%s: %zu bytes, too small for three panels", png, len);
    free(bytes);
}

/* report_plot with the environment variable name set to value for the call
 * alone: restored at once, as the TSan runner runs every test in one
 * process. */
static int plot_with_env(const char *name, const char *value, const struct report *report,
                         const struct bench_summary *sum, const char *png, char *err,
                         size_t err_len)
{
    const char *old = getenv(name);
    char *old_value = old ? strdup(old) : NULL;
    cr_assert(old == NULL || old_value != NULL, "strdup %s", name);
    cr_assert_eq(setenv(name, value, 1), 0, "setenv %s: %s", name, strerror(errno));
    const int rc = report_plot(report, sum, png, err, err_len);
    old_value ? setenv(name, old_value, 1) : unsetenv(name);
    free(old_value);
    return rc;
}

Test(bench_report, plot_writes_a_png_and_leaves_no_temp_file, .timeout = 60)
{
    char scratch[PATH_LEN], png[PATH_LEN], err[ERR_LEN] = "";
    tmpdir_make(scratch, sizeof scratch);
    path_in(png, dir, "run.png");
    struct hist *h = latency_uniform();
    r = report_with_samples(16, NULL, 12);
    const struct bench_summary sum = summary_oversold(h);
    /* report_plot's scratch goes to TMPDIR: a fresh dir, which must be empty after */
    const int rc = plot_with_env("TMPDIR", scratch, r, &sum, png, err, sizeof err);
    cr_assert_eq(rc, 0, "report_plot: %s", err);
    plot_png_check(png);
    cr_assert_eq(dir_entries(dir), 1, "the PNG alone, no .tmp");
    cr_assert_eq(dir_entries(scratch), 0, "the temp data and script are removed");
    free(h);
    tmpdir_remove(scratch);
}

Test(bench_report, plot_of_a_run_without_samples_or_latency_still_draws, .timeout = 60)
{
    char png[PATH_LEN], err[ERR_LEN] = "";
    path_in(png, dir, "empty.png");
    r = report_with_samples(4, NULL, 0);
    struct bench_summary sum = summary_oversold(NULL);
    sum.ops = 0;
    cr_assert_eq(report_plot(r, &sum, png, err, sizeof err), 0, "report_plot: %s", err);
    plot_png_check(png);
}

Test(bench_report, plot_without_gnuplot_in_path_fails_and_leaves_nothing, .timeout = 60)
{
    char empty[PATH_LEN], png[PATH_LEN], err[ERR_LEN] = "";
    tmpdir_make(empty, sizeof empty);
    path_in(png, dir, "run.png");
    r = report_with_samples(4, NULL, 2);
    const struct bench_summary sum = summary_oversold(NULL);
    const int rc = plot_with_env("PATH", empty, r, &sum, png, err, sizeof err);
    cr_assert_eq(rc, -1);
    cr_assert_not_null(strstr(err, "gnuplot"), "err: %s", err);
    cr_assert_eq(dir_entries(dir), 0, "no PNG, no .tmp");
    tmpdir_remove(empty);
}

Test(bench_report, plot_into_a_missing_directory_fails_naming_it, .timeout = 60)
{
    char png[PATH_LEN], err[ERR_LEN] = "";
    path_in(png, dir, "missing/run.png");
    r = report_with_samples(4, NULL, 2);
    const struct bench_summary sum = summary_oversold(NULL);
    cr_assert_eq(report_plot(r, &sum, png, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, png), "err: %s", err);
    cr_assert_eq(report_plot(r, &sum, NULL, err, sizeof err), -1);
    cr_assert_eq(report_plot(NULL, &sum, png, err, sizeof err), -1);
    cr_assert_eq(dir_entries(dir), 0);
}
