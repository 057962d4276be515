/*
 * report.c — invcore-bench's outputs (the contract is report.h): the live
 * progress line, the CSV written as the run goes, the final table, the JSON
 * summary (yajl's generator) and the PNG plot (gnuplot, run as a child):
 * three panels stacked, ops/s over time, p50/p99/p99.9 over time (log y),
 * and the whole run's latency as a percentile curve (x = 1/(1-p), log).
 *
 * Only the reporting thread calls it: no locks, no atomics.
 * Invariants:
 *  - memory is fixed at report_new (the struct and max_samples samples,
 *    max_samples <= REPORT_SAMPLES_MAX); nsamples <= max_samples and
 *    nsamples + dropped == samples accepted;
 *  - the CSV holds its header, then one whole row per accepted sample,
 *    flushed at once, and never a gap: after a failed row no later row is
 *    written. It is the one file written in place (not NAME.tmp): it must be
 *    readable while the run goes, and a killed run keeps every finished row;
 *  - the JSON and the PNG appear under their names whole or not at all:
 *    written to NAME.tmp, synced, renamed; a failure removes NAME.tmp;
 *  - report_plot leaves nothing in its temp dir, success or not, and user
 *    paths and names reach gnuplot only as argv (ARG1.. of `gnuplot -c`),
 *    never inside the script's text, and no shell runs.
 */
#include "tools/bench/report.h"

#include <yajl/yajl_gen.h>

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Samples kept for the plot and the JSON: a week at one a second, about
 * 48 MB of 80-byte samples, allocated up front (config's BENCH_SAMPLES_MAX,
 * a day, stays below it). */
#define REPORT_SAMPLES_MAX (7u * 86400u)
/* A path, with the ".tmp" we append and the NUL: Linux's PATH_MAX. */
#define REPORT_PATH_MAX 4096
#define REPORT_TMP_SUFFIX ".tmp"
/* The shortest interval a sample may span: below it ops/s means nothing
 * (the reporter's clock is not finer) and could overflow a uint64. */
#define REPORT_INTERVAL_S_MIN 1e-6
/* A number as text: 20 digits, 6 group commas, a sign, the NUL; doubles
 * printed "%.6f" up to 1e40 fit too (larger ones fall back to "%.17g"). */
#define REPORT_NUM_CHARS 64
/* A uint64_t with group commas: 20 digits, 6 commas, the NUL. */
#define REPORT_GROUPED_CHARS 27
/* The page title and the distribution panel's title of the plot. */
#define REPORT_TITLE_CHARS 512
/* The percentile curve: 1/(1-p) from 1 to 10^6 (0% to 99.9999%), in
 * steps of a twentieth of a decade: at most 121 points. */
#define REPORT_DIST_DECADES 6
#define REPORT_DIST_STEPS_PER_DECADE 20
/* gnuplot draws three panels in well under a second; past this it hangs
 * (a font lookup, a full disk) and is killed. */
#define REPORT_PLOT_TIMEOUT_MS 60000
#define REPORT_PLOT_POLL_MS 10
/* Of gnuplot's stderr, what an error message quotes. */
#define REPORT_GNUPLOT_ERR_CHARS 240
/* The PNG, in pixels (width,height): three panels stacked. */
#define REPORT_PLOT_SIZE "1200,1500"

static const char csv_header[] =
    "t_s,interval_s,ops,ops_per_s,errors,p50_ms,p99_ms,p999_ms,max_ms,sold,remaining\n";
static const unsigned char png_signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

struct report {
    size_t max_samples;
    size_t nsamples;
    uint64_t dropped; /* samples past max_samples: printed and in the CSV only */
    FILE *progress; /* NULL: quiet (no progress line) */
    FILE *csv; /* NULL: no CSV */
    bool csv_failed; /* a row failed: later rows are refused, not written */
    char csv_path[REPORT_PATH_MAX];
    struct bench_sample samples[]; /* max_samples of them, allocated with the struct */
};

/* ---- small helpers --------------------------------------------------------- */

__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t err_len,
                                                          const char *fmt, ...)
{
    if (err == NULL || err_len == 0)
        return; /* the caller did not ask why */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

/* A path we may write: given, not empty, and short enough for NAME.tmp. */
static bool path_ok(const char *what, const char *path, char *err, size_t err_len)
{
    if (path == NULL || path[0] == '\0') {
        set_err(err, err_len, "%s: no path given", what);
        return false;
    }
    const size_t len = strnlen(path, REPORT_PATH_MAX);
    if (len + sizeof REPORT_TMP_SUFFIX > REPORT_PATH_MAX) {
        set_err(err, err_len, "%s: path too long (at most %zu bytes): %.80s...", what,
                REPORT_PATH_MAX - sizeof REPORT_TMP_SUFFIX, path);
        return false;
    }
    return true;
}

static double ms_of_ns(uint64_t ns)
{
    return (double)ns / 1e6;
}

/* v with a comma every three digits ("152,331"): a load tool's numbers are
 * read at a glance. Not the locale's: the output must not depend on it. */
static const char *fmt_u64(char *buf, size_t len, uint64_t v)
{
    assert(len >= REPORT_GROUPED_CHARS);
    char digits[24];
    const int n = snprintf(digits, sizeof digits, "%" PRIu64, v);
    assert(n > 0 && n <= 20);
    size_t out = 0;
    for (int i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            buf[out++] = ',';
        buf[out++] = digits[i];
    }
    buf[out] = '\0';
    return buf;
}

static const char *fmt_i64(char *buf, size_t len, int64_t v)
{
    assert(len >= REPORT_GROUPED_CHARS + 1); /* and the sign */
    /* -(v + 1) + 1 in unsigned: INT64_MIN's magnitude does not fit int64 */
    const uint64_t mag = v < 0 ? (uint64_t)(-(v + 1)) + 1 : (uint64_t)v;
    buf[0] = '-';
    fmt_u64(buf + (v < 0), len - (v < 0), mag);
    return buf;
}

/* A rate rounded for display; saturates instead of overflowing. */
static uint64_t u64_of_rate(double per_s)
{
    if (!(per_s >= 0)) /* also NaN */
        return 0;
    return per_s >= 18446744073709549568.0 ? UINT64_MAX : (uint64_t)llround(per_s);
}

/* Latency for a person: three decimals below 10 ms, fewer above. */
static const char *fmt_ms(char *buf, size_t len, double ms)
{
    assert(len >= REPORT_NUM_CHARS);
    snprintf(buf, len, ms < 10 ? "%.3f" : ms < 1000 ? "%.1f" : "%.0f", ms);
    return buf;
}

/* ---- report_new, report_sample --------------------------------------------- */

struct report *report_new(size_t max_samples, FILE *progress, const char *csv_path, char *err,
                          size_t err_len)
{
    if (max_samples == 0 || max_samples > REPORT_SAMPLES_MAX) {
        set_err(err, err_len, "report: max_samples %zu out of range [1, %u]", max_samples,
                REPORT_SAMPLES_MAX);
        return NULL;
    }
    if (csv_path != NULL && !path_ok("CSV", csv_path, err, err_len))
        return NULL;
    /* No overflow: max_samples * 80 bytes is below 50 MB. */
    struct report *r = calloc(1, sizeof *r + max_samples * sizeof r->samples[0]);
    if (r == NULL) {
        set_err(err, err_len, "report: out of memory for %zu samples", max_samples);
        return NULL;
    }
    r->max_samples = max_samples;
    r->progress = progress;
    if (csv_path != NULL) {
        snprintf(r->csv_path, sizeof r->csv_path, "%s", csv_path);
        /* "e": close-on-exec, so gnuplot (report_plot) does not inherit it */
        r->csv = fopen(csv_path, "we");
        if (r->csv == NULL || fputs(csv_header, r->csv) == EOF || fflush(r->csv) != 0) {
            const int e = errno;
            if (r->csv != NULL) {
                fclose(r->csv);
                unlink(csv_path); /* no header-less file left under the name */
            }
            set_err(err, err_len, "CSV %s: cannot create: %s", csv_path, strerror(e));
            free(r);
            return NULL;
        }
    }
    assert(r->nsamples == 0 && r->dropped == 0);
    return r;
}

/* What the arithmetic below needs of a sample (the rest is data). */
static bool sample_ok(const struct bench_sample *s, char *err, size_t err_len)
{
    if (!isfinite(s->t_s) || s->t_s < 0) {
        set_err(err, err_len, "report: sample time %g s is not a time since the start", s->t_s);
        return false;
    }
    if (!isfinite(s->interval_s) || s->interval_s < REPORT_INTERVAL_S_MIN) {
        set_err(err, err_len, "report: sample interval %g s is not a length (at least %g s)",
                s->interval_s, REPORT_INTERVAL_S_MIN);
        return false;
    }
    if (s->sold < -1 || s->remaining < -1) {
        set_err(err, err_len,
                "report: sample sold %" PRId64 " / remaining %" PRId64 " below -1 (unknown)",
                s->sold, s->remaining);
        return false;
    }
    return true;
}

static double sample_ops_per_s(const struct bench_sample *s)
{
    assert(s->interval_s >= REPORT_INTERVAL_S_MIN); /* sample_ok came first */
    return (double)s->ops / s->interval_s;
}

/* The live line. Its write errors are ignored on purpose: a closed terminal
 * must not stop a run whose results go to files. */
static void progress_line(FILE *out, const struct bench_sample *s, double ops_per_s)
{
    assert(out != NULL && s != NULL);
    assert(ops_per_s >= 0);
    char ops[REPORT_NUM_CHARS], p50[REPORT_NUM_CHARS], p99[REPORT_NUM_CHARS];
    char errs[REPORT_NUM_CHARS], num[REPORT_NUM_CHARS];
    fprintf(out, "[%5.1fs] %s ops/s  p50 %s ms  p99 %s ms  errors %s", s->t_s,
            fmt_u64(ops, sizeof ops, u64_of_rate(ops_per_s)),
            fmt_ms(p50, sizeof p50, ms_of_ns(s->p50_ns)),
            fmt_ms(p99, sizeof p99, ms_of_ns(s->p99_ns)), fmt_u64(errs, sizeof errs, s->errors));
    if (s->sold >= 0)
        fprintf(out, "  sold %s", fmt_i64(num, sizeof num, s->sold));
    if (s->remaining >= 0)
        fprintf(out, "  remaining %s", fmt_i64(num, sizeof num, s->remaining));
    fputc('\n', out);
    fflush(out);
}

/* One row, flushed: 0, or -1 with errno. Latencies keep every nanosecond
 * ("%.6f" ms); an unknown sold or remaining is an empty field. */
static int csv_row(FILE *f, const struct bench_sample *s, double ops_per_s)
{
    assert(f != NULL);
    assert(s->interval_s >= REPORT_INTERVAL_S_MIN); /* sample_ok came first */
    char sold[REPORT_NUM_CHARS] = "", rem[REPORT_NUM_CHARS] = "";
    if (s->sold >= 0)
        snprintf(sold, sizeof sold, "%" PRId64, s->sold);
    if (s->remaining >= 0)
        snprintf(rem, sizeof rem, "%" PRId64, s->remaining);
    const int n =
        fprintf(f, "%.3f,%.3f,%" PRIu64 ",%.1f,%" PRIu64 ",%.6f,%.6f,%.6f,%.6f,%s,%s\n", s->t_s,
                s->interval_s, s->ops, ops_per_s, s->errors, ms_of_ns(s->p50_ns),
                ms_of_ns(s->p99_ns), ms_of_ns(s->p999_ns), ms_of_ns(s->max_ns), sold, rem);
    return n < 0 || fflush(f) != 0 ? -1 : 0;
}

int report_sample(struct report *r, const struct bench_sample *s, char *err, size_t err_len)
{
    if (r == NULL || s == NULL) {
        set_err(err, err_len, "report_sample: no report or no sample");
        return -1;
    }
    if (!sample_ok(s, err, err_len))
        return -1;
    const double ops_per_s = sample_ops_per_s(s);
    if (r->progress != NULL)
        progress_line(r->progress, s, ops_per_s);
    /* Kept even when the CSV fails below: the plot and the JSON still want it. */
    if (r->nsamples < r->max_samples)
        r->samples[r->nsamples++] = *s;
    else
        r->dropped++;
    assert(r->nsamples <= r->max_samples);
    assert(r->dropped == 0 || r->nsamples == r->max_samples); /* drops only when full */
    if (r->csv == NULL)
        return 0;
    if (r->csv_failed) {
        set_err(err, err_len, "CSV %s: an earlier row failed; the file stops there", r->csv_path);
        return -1;
    }
    if (csv_row(r->csv, s, ops_per_s) != 0) {
        r->csv_failed = true;
        set_err(err, err_len, "CSV %s: cannot write a row: %s", r->csv_path, strerror(errno));
        return -1;
    }
    return 0;
}

size_t report_samples(const struct report *r)
{
    if (r == NULL)
        return 0;
    assert(r->nsamples <= r->max_samples);
    return r->nsamples;
}

void report_free(struct report *r)
{
    if (r == NULL)
        return;
    assert(r->nsamples <= r->max_samples);
    if (r->csv != NULL)
        fclose(r->csv); /* every row was flushed already: nothing left to lose */
    free(r);
}

/* ---- the summary ------------------------------------------------------------- */

/* What every output needs of a summary; the strings may be NULL (unknown). */
static bool summary_ok(const struct bench_summary *sum, char *err, size_t err_len)
{
    if (sum->ncounters > BENCH_COUNTERS_MAX) {
        set_err(err, err_len, "report: %zu counters, at most %d", sum->ncounters,
                BENCH_COUNTERS_MAX);
        return false;
    }
    for (size_t i = 0; i < sum->ncounters; i++)
        if (sum->counters[i].name == NULL || sum->counters[i].name[0] == '\0') {
            set_err(err, err_len, "report: counter %zu has no name", i);
            return false;
        }
    if (!isfinite(sum->duration_s) || sum->duration_s < 0 || !isfinite(sum->rate_per_s) ||
        sum->rate_per_s < 0) {
        set_err(err, err_len, "report: duration %g s or rate %g/s is not a non-negative number",
                sum->duration_s, sum->rate_per_s);
        return false;
    }
    return true;
}

/* What report_json and report_plot check first: a report, a summary
 * summary_ok accepts, and a path path_ok accepts. fn names the caller,
 * what the file (path_ok's messages). */
static bool output_args_ok(const char *fn, const char *what, const struct report *r,
                           const struct bench_summary *sum, const char *path, char *err,
                           size_t err_len)
{
    if (r == NULL || sum == NULL) {
        set_err(err, err_len, "%s: no report or no summary", fn);
        return false;
    }
    return summary_ok(sum, err, err_len) && path_ok(what, path, err, err_len);
}

static const char *or_unknown(const char *s)
{
    return s != NULL ? s : "?";
}

static double summary_ops_per_s(const struct bench_summary *sum)
{
    return sum->duration_s > 0 ? (double)sum->ops / sum->duration_s : 0;
}

/* The whole run's latency, read once for the table, the JSON and the plot. */
struct latency_ms {
    uint64_t count, clamped;
    double min, mean, p50, p90, p99, p999, p9999, max;
};

static struct latency_ms latency_of(const struct hist *h)
{
    struct latency_ms l;
    memset(&l, 0, sizeof l);
    if (h == NULL || h->total == 0)
        return l; /* nothing answered: every figure 0 */
    l.count = h->total;
    l.clamped = h->clamped;
    l.min = ms_of_ns(h->min_ns);
    l.mean = hist_mean_ns(h) / 1e6;
    l.p50 = ms_of_ns(hist_percentile(h, 50));
    l.p90 = ms_of_ns(hist_percentile(h, 90));
    l.p99 = ms_of_ns(hist_percentile(h, 99));
    l.p999 = ms_of_ns(hist_percentile(h, 99.9));
    l.p9999 = ms_of_ns(hist_percentile(h, 99.99));
    l.max = ms_of_ns(h->max_ns);
    assert(l.min <= l.p50 && l.p50 <= l.max); /* hist.h: percentiles within [min, max] */
    assert(l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.p999 && l.p999 <= l.p9999);
    return l;
}

/* ---- report_table ------------------------------------------------------------ */

static void table_run(FILE *out, const struct bench_summary *sum)
{
    assert(out != NULL && sum != NULL);
    char a[REPORT_NUM_CHARS], b[REPORT_NUM_CHARS];
    fprintf(out, "invcore-bench: %s\n", or_unknown(sum->scenario));
    fprintf(out, "  %-11s %s over %s, keys %s\n", "target", or_unknown(sum->target),
            or_unknown(sum->transport), or_unknown(sum->keys));
    fprintf(out, "  %-11s %u clients, %u threads, pipeline %u, ", "load", sum->clients,
            sum->threads, sum->pipeline);
    if (sum->rate_per_s > 0)
        fprintf(out, "open loop at %s req/s\n", fmt_u64(a, sizeof a, u64_of_rate(sum->rate_per_s)));
    else
        fprintf(out, "closed loop\n");
    fprintf(out, "  %-11s %.2f s\n", "duration", sum->duration_s);
    fprintf(out, "  %-11s %s  (%s ops/s)\n", "ops", fmt_u64(a, sizeof a, sum->ops),
            fmt_u64(b, sizeof b, u64_of_rate(summary_ops_per_s(sum))));
    fprintf(out, "  %-11s %s", "errors", fmt_u64(a, sizeof a, sum->errors));
    if (sum->ops > 0)
        fprintf(out, "  (%.4f%%)", 100.0 * (double)sum->errors / (double)sum->ops);
    fputc('\n', out);
}

static void table_latency(FILE *out, const struct hist *h)
{
    const struct latency_ms l = latency_of(h);
    char v[8][REPORT_NUM_CHARS], n[REPORT_NUM_CHARS];
    if (l.count == 0) {
        fprintf(out, "  %-11s none recorded\n", "latency ms");
        return;
    }
    fprintf(out, "  %-11s min %s  mean %s  (%s answered)\n", "latency ms",
            fmt_ms(v[0], sizeof v[0], l.min), fmt_ms(v[1], sizeof v[1], l.mean),
            fmt_u64(n, sizeof n, l.count));
    fprintf(out, "  %-11s p50 %s  p90 %s  p99 %s  p99.9 %s  p99.99 %s  max %s\n", "",
            fmt_ms(v[2], sizeof v[2], l.p50), fmt_ms(v[3], sizeof v[3], l.p90),
            fmt_ms(v[4], sizeof v[4], l.p99), fmt_ms(v[5], sizeof v[5], l.p999),
            fmt_ms(v[6], sizeof v[6], l.p9999), fmt_ms(v[7], sizeof v[7], l.max));
    if (l.clamped > 0) /* the max is then a floor, not the truth: say so */
        fprintf(out, "  %-11s %s latencies above %s ms, counted at that value\n", "clamped",
                fmt_u64(n, sizeof n, l.clamped),
                fmt_ms(v[0], sizeof v[0], ms_of_ns(HIST_VALUE_MAX_NS)));
}

static void table_counters(FILE *out, const struct bench_summary *sum)
{
    assert(sum->ncounters <= BENCH_COUNTERS_MAX);
    char n[REPORT_NUM_CHARS];
    for (size_t i = 0; i < sum->ncounters; i++)
        fprintf(out, "  %-11s %-12s %s\n", i == 0 ? "counters" : "", sum->counters[i].name,
                fmt_u64(n, sizeof n, sum->counters[i].value));
}

static void table_verdict(FILE *out, const struct bench_summary *sum)
{
    const char *verdict = sum->verdict != NULL ? sum->verdict : "(no verdict given)";
    if (!sum->checked) {
        fprintf(out, "  %-11s not checked (the scenario sells nothing, or the check was off)\n",
                "verdict");
        return;
    }
    if (sum->ok) {
        fprintf(out, "  %-11s %s\n", "verdict", verdict);
        return;
    }
    /* The one result a flash-sale run exists to catch: impossible to miss. */
    fprintf(out, "  %-11s FAILED: %s\n", "verdict", verdict);
    fprintf(out, "\n  *** FLASH-SALE CHECK FAILED: OVERSOLD or units not conserved ***\n");
}

void report_table(const struct report *r, const struct bench_summary *sum, FILE *out)
{
    if (r == NULL || sum == NULL || out == NULL)
        return; /* nothing to print, or nowhere to print it */
    char why[REPORT_TITLE_CHARS];
    if (!summary_ok(sum, why, sizeof why)) {
        fprintf(out, "invcore-bench: no table: %s\n", why);
        return;
    }
    assert(r->nsamples <= r->max_samples);
    char kept[REPORT_NUM_CHARS], dropped[REPORT_NUM_CHARS];
    table_run(out, sum);
    table_latency(out, sum->latency);
    table_counters(out, sum);
    fprintf(out, "  %-11s %s kept, %s dropped past %zu\n", "samples",
            fmt_u64(kept, sizeof kept, r->nsamples), fmt_u64(dropped, sizeof dropped, r->dropped),
            r->max_samples);
    table_verdict(out, sum);
    fflush(out);
}

/* ---- output files: NAME.tmp, then rename ----------------------------------- */

struct outfile {
    const char *what; /* "JSON", for messages */
    const char *path;
    char tmp[REPORT_PATH_MAX];
    FILE *f;
    bool is_stdout;
};

/* path was checked by path_ok: NAME.tmp fits. */
static int out_open(struct outfile *o, const char *what, const char *path, char *err,
                    size_t err_len)
{
    assert(path != NULL && path[0] != '\0'); /* path_ok came first */
    memset(o, 0, sizeof *o);
    o->what = what;
    o->path = path;
    if (strcmp(path, "-") == 0) {
        o->f = stdout;
        o->is_stdout = true;
        return 0;
    }
    const int n = snprintf(o->tmp, sizeof o->tmp, "%s%s", path, REPORT_TMP_SUFFIX);
    assert(n > 0 && (size_t)n < sizeof o->tmp);
    o->f = fopen(o->tmp, "we");
    if (o->f == NULL) {
        set_err(err, err_len, "%s %s: cannot create %s: %s", what, path, o->tmp, strerror(errno));
        return -1;
    }
    return 0;
}

static void out_abort(struct outfile *o)
{
    if (o->is_stdout)
        return; /* bytes on stdout cannot be taken back */
    if (o->f != NULL)
        fclose(o->f);
    o->f = NULL;
    unlink(o->tmp);
}

/* Synced before the rename: after a crash the name holds the whole file
 * or nothing, never a renamed empty one. */
static int out_commit(struct outfile *o, char *err, size_t err_len)
{
    assert(o->f != NULL);
    if (o->is_stdout) {
        if (fflush(stdout) != 0) {
            set_err(err, err_len, "%s to stdout: cannot write: %s", o->what, strerror(errno));
            return -1;
        }
        return 0;
    }
    int e = 0;
    if (fflush(o->f) != 0 || ferror(o->f) || fsync(fileno(o->f)) != 0)
        e = errno ? errno : EIO;
    if (fclose(o->f) != 0 && e == 0)
        e = errno;
    o->f = NULL;
    if (e == 0 && rename(o->tmp, o->path) != 0)
        e = errno;
    if (e != 0) {
        unlink(o->tmp);
        set_err(err, err_len, "%s %s: cannot write %s: %s", o->what, o->path, o->tmp, strerror(e));
        return -1;
    }
    return 0;
}

/* ---- report_json ------------------------------------------------------------- */

/* yajl's bytes go straight to the file: memory stays yajl's small buffer,
 * whatever the number of samples. */
struct sink {
    FILE *f;
    int errno_first; /* 0 until a write fails */
};

static void sink_write(void *ctx, const char *str, size_t len)
{
    struct sink *s = ctx;
    if (s->errno_first == 0 && fwrite(str, 1, len, s->f) != len)
        s->errno_first = errno ? errno : EIO;
}

/* A generator whose first failure sticks: the document is written without
 * a check per call, and the status read once at the end. */
struct jw {
    yajl_gen g;
    yajl_gen_status st;
};

static void jw_key(struct jw *w, const char *key)
{
    assert(w->g != NULL && key != NULL);
    if (w->st == yajl_gen_status_ok)
        w->st = yajl_gen_string(w->g, (const unsigned char *)key, strlen(key));
}

static void jw_str(struct jw *w, const char *key, const char *v)
{
    jw_key(w, key);
    if (w->st == yajl_gen_status_ok)
        w->st = v != NULL ? yajl_gen_string(w->g, (const unsigned char *)v, strlen(v))
                          : yajl_gen_null(w->g);
}

static void jw_null(struct jw *w, const char *key)
{
    jw_key(w, key);
    if (w->st == yajl_gen_status_ok)
        w->st = yajl_gen_null(w->g);
}

/* Through yajl_gen_number: yajl_gen_integer takes a long long, too small
 * for a uint64_t, and yajl_gen_double prints 17 digits of noise. */
static void jw_raw_number(struct jw *w, const char *key, const char *num)
{
    jw_key(w, key);
    if (w->st == yajl_gen_status_ok)
        w->st = yajl_gen_number(w->g, num, strlen(num));
}

static void jw_u64(struct jw *w, const char *key, uint64_t v)
{
    char num[REPORT_NUM_CHARS];
    snprintf(num, sizeof num, "%" PRIu64, v);
    jw_raw_number(w, key, num);
}

/* A known count, or null for -1 (unknown). */
static void jw_i64_or_null(struct jw *w, const char *key, int64_t v)
{
    char num[REPORT_NUM_CHARS];
    snprintf(num, sizeof num, "%" PRId64, v);
    if (v >= 0)
        jw_raw_number(w, key, num);
    else
        jw_null(w, key);
}

static void jw_fixed(struct jw *w, const char *key, double v, int decimals)
{
    char num[REPORT_NUM_CHARS];
    if (!isfinite(v)) { /* JSON has no inf or NaN */
        jw_null(w, key);
        return;
    }
    const int n = snprintf(num, sizeof num, "%.*f", decimals, v);
    if (n < 0 || (size_t)n >= sizeof num)
        snprintf(num, sizeof num, "%.17g", v); /* huge: exponent form always fits */
    jw_raw_number(w, key, num);
}

static void jw_bool(struct jw *w, const char *key, bool v)
{
    jw_key(w, key);
    if (w->st == yajl_gen_status_ok)
        w->st = yajl_gen_bool(w->g, v);
}

static void jw_open(struct jw *w, const char *key, bool array)
{
    if (key != NULL)
        jw_key(w, key);
    if (w->st == yajl_gen_status_ok)
        w->st = array ? yajl_gen_array_open(w->g) : yajl_gen_map_open(w->g);
}

static void jw_close(struct jw *w, bool array)
{
    if (w->st == yajl_gen_status_ok)
        w->st = array ? yajl_gen_array_close(w->g) : yajl_gen_map_close(w->g);
}

static void json_run(struct jw *w, const struct bench_summary *sum)
{
    jw_str(w, "scenario", sum->scenario);
    jw_str(w, "target", sum->target);
    jw_str(w, "transport", sum->transport);
    jw_str(w, "keys", sum->keys);
    jw_u64(w, "clients", sum->clients);
    jw_u64(w, "threads", sum->threads);
    jw_u64(w, "pipeline", sum->pipeline);
    jw_bool(w, "closed_loop", !(sum->rate_per_s > 0));
    jw_fixed(w, "rate_per_s", sum->rate_per_s, 3);
    jw_fixed(w, "duration_s", sum->duration_s, 3);
    jw_u64(w, "ops", sum->ops);
    jw_u64(w, "errors", sum->errors);
    jw_fixed(w, "ops_per_s", summary_ops_per_s(sum), 1);
}

static void json_latency(struct jw *w, const struct hist *h)
{
    const struct latency_ms l = latency_of(h);
    jw_u64(w, "latency_count", l.count);
    jw_u64(w, "latency_clamped", l.clamped);
    jw_open(w, "latency_ms", false);
    jw_fixed(w, "p50", l.p50, 6);
    jw_fixed(w, "p90", l.p90, 6);
    jw_fixed(w, "p99", l.p99, 6);
    jw_fixed(w, "p999", l.p999, 6);
    jw_fixed(w, "p9999", l.p9999, 6);
    jw_fixed(w, "max", l.max, 6);
    jw_fixed(w, "min", l.min, 6);
    jw_fixed(w, "mean", l.mean, 6);
    jw_close(w, false);
}

static void json_counters_check(struct jw *w, const struct bench_summary *sum)
{
    assert(sum->ncounters <= BENCH_COUNTERS_MAX);
    jw_open(w, "counters", false);
    for (size_t i = 0; i < sum->ncounters; i++)
        jw_u64(w, sum->counters[i].name, sum->counters[i].value);
    jw_close(w, false);
    jw_open(w, "check", false);
    jw_bool(w, "checked", sum->checked);
    if (sum->checked) {
        jw_bool(w, "ok", sum->ok);
        jw_str(w, "verdict", sum->verdict);
    } else { /* unused then (report.h): say so rather than guess */
        jw_str(w, "ok", NULL);
        jw_str(w, "verdict", NULL);
    }
    jw_close(w, false);
}

static void json_samples(struct jw *w, const struct report *r)
{
    assert(r->nsamples <= r->max_samples);
    jw_u64(w, "samples_max", r->max_samples);
    jw_u64(w, "samples_dropped", r->dropped);
    jw_open(w, "samples", true);
    for (size_t i = 0; i < r->nsamples && w->st == yajl_gen_status_ok; i++) {
        const struct bench_sample *s = &r->samples[i];
        jw_open(w, NULL, false);
        jw_fixed(w, "t_s", s->t_s, 3);
        jw_fixed(w, "interval_s", s->interval_s, 3);
        jw_u64(w, "ops", s->ops);
        jw_fixed(w, "ops_per_s", sample_ops_per_s(s), 1);
        jw_u64(w, "errors", s->errors);
        jw_fixed(w, "p50_ms", ms_of_ns(s->p50_ns), 6);
        jw_fixed(w, "p99_ms", ms_of_ns(s->p99_ns), 6);
        jw_fixed(w, "p999_ms", ms_of_ns(s->p999_ns), 6);
        jw_fixed(w, "max_ms", ms_of_ns(s->max_ns), 6);
        jw_i64_or_null(w, "sold", s->sold);
        jw_i64_or_null(w, "remaining", s->remaining);
        jw_close(w, false);
    }
    jw_close(w, true);
}

int report_json(const struct report *r, const struct bench_summary *sum, const char *path,
                char *err, size_t err_len)
{
    if (!output_args_ok("report_json", "JSON", r, sum, path, err, err_len))
        return -1;
    struct outfile o;
    if (out_open(&o, "JSON", path, err, err_len) != 0)
        return -1;
    struct sink sk = {o.f, 0};
    struct jw w = {yajl_gen_alloc(NULL), yajl_gen_status_ok};
    if (w.g == NULL) {
        out_abort(&o);
        set_err(err, err_len, "JSON %s: out of memory", path);
        return -1;
    }
    yajl_gen_config(w.g, yajl_gen_beautify, 1);
    yajl_gen_config(w.g, yajl_gen_validate_utf8, 1); /* a name from argv may be anything */
    yajl_gen_config(w.g, yajl_gen_print_callback, sink_write, &sk);
    jw_open(&w, NULL, false);
    json_run(&w, sum);
    json_latency(&w, sum->latency);
    json_counters_check(&w, sum);
    json_samples(&w, r);
    jw_close(&w, false);
    yajl_gen_free(w.g);
    if (w.st != yajl_gen_status_ok || sk.errno_first != 0) {
        out_abort(&o);
        if (w.st != yajl_gen_status_ok)
            set_err(err, err_len, "JSON %s: cannot encode (yajl status %d: a string not UTF-8?)",
                    path, (int)w.st);
        else
            set_err(err, err_len, "JSON %s: cannot write: %s", path, strerror(sk.errno_first));
        return -1;
    }
    return out_commit(&o, err, err_len);
}

/* ---- report_plot ------------------------------------------------------------- */

/* The script is constant text: every path and name arrives as an argument
 * (ARG1 the PNG, ARG2 the series, ARG3 the distribution, ARG4..ARG6 "1"
 * when the series / its latencies / the distribution have a point, ARG7 the
 * page title, ARG8 the distribution's title). An empty panel says so instead
 * of plotting nothing, which gnuplot refuses. */
static const char plot_script[] =
    "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
    "    set terminal pngcairo size " REPORT_PLOT_SIZE " noenhanced font ',10'\n"
    "} else {\n"
    "    set terminal png size " REPORT_PLOT_SIZE " noenhanced\n"
    "}\n"
    "set output ARG1\n"
    "set datafile missing '?'\n"
    "set grid\n"
    "set key outside right top\n" /* off the curves */
    "set lmargin 12\n" /* fixed margins: the panels' time axes align */
    "set rmargin 16\n"
    "set multiplot layout 3,1 title ARG7\n"
    "set title 'throughput (per interval)'\n"
    "set xlabel 'time (s)'\n"
    "set ylabel 'ops/s'\n"
    "if (ARG4 eq '1') {\n"
    "    set yrange [0:*]\n"
    "    plot ARG2 using 1:2 with linespoints pt 7 ps 0.5 lw 2 title 'ops/s'\n"
    "} else {\n"
    "    set label 1 'no samples' at graph 0.5,0.5 center\n"
    "    plot [0:1][0:1] -1 notitle\n"
    "    unset label 1\n"
    "}\n"
    "set title 'latency over time (per interval)'\n"
    "set ylabel 'latency (ms, log)'\n"
    "set autoscale y\n"
    "if (ARG5 eq '1') {\n"
    "    set logscale y\n"
    "    plot ARG2 using 1:3 with linespoints pt 7 ps 0.5 lw 2 title 'p50', \\\n"
    "         ARG2 using 1:4 with linespoints pt 7 ps 0.5 lw 2 title 'p99', \\\n"
    "         ARG2 using 1:5 with linespoints pt 7 ps 0.5 lw 2 title 'p99.9'\n"
    "    unset logscale y\n"
    "} else {\n"
    "    set label 1 'no latency recorded' at graph 0.5,0.5 center\n"
    "    plot [0:1][0:1] -1 notitle\n"
    "    unset label 1\n"
    "}\n"
    "set title ARG8\n"
    "set xlabel 'percentile (log scale of 1/(1-p))'\n"
    "set ylabel 'latency (ms)'\n"
    "if (ARG6 eq '1') {\n"
    "    set logscale x\n"
    "    set xrange [1:*]\n"
    "    set yrange [0:*]\n"
    /* a tic label is a format: '%%' is a percent sign */
    "    set xtics ('0%%' 1, '90%%' 10, '99%%' 100, '99.9%%' 1000, '99.99%%' 1e4, \\\n"
    "               '99.999%%' 1e5, '99.9999%%' 1e6)\n"
    "    plot ARG3 using 1:3 with linespoints pt 7 ps 0.5 lw 2 title 'latency'\n"
    "} else {\n"
    "    set label 1 'no latency recorded' at graph 0.5,0.5 center\n"
    "    plot [0:1][0:1] -1 notitle\n"
    "}\n"
    "unset multiplot\n";

/* The temp dir and what goes in it; dir[0] == '\0' until it exists. */
struct plot_files {
    char dir[REPORT_PATH_MAX];
    char series[REPORT_PATH_MAX], dist[REPORT_PATH_MAX], script[REPORT_PATH_MAX];
    char errlog[REPORT_PATH_MAX];
    char png_tmp[REPORT_PATH_MAX];
};

/* a + b into out (REPORT_PATH_MAX bytes): false if it does not fit. */
static bool join(char *out, const char *a, const char *b)
{
    const int n = snprintf(out, REPORT_PATH_MAX, "%s%s", a, b);
    return n > 0 && n < REPORT_PATH_MAX;
}

static int plot_files_make(struct plot_files *pf, const char *png_path, char *err, size_t err_len)
{
    memset(pf, 0, sizeof *pf);
    const char *tmpdir = getenv("TMPDIR");
    if (tmpdir == NULL || tmpdir[0] == '\0' || strnlen(tmpdir, REPORT_PATH_MAX) > 1024)
        tmpdir = "/tmp"; /* 1024: room for our names below within REPORT_PATH_MAX */
    snprintf(pf->dir, sizeof pf->dir, "%s/invcore-bench-plot.XXXXXX", tmpdir);
    if (mkdtemp(pf->dir) == NULL) {
        set_err(err, err_len, "plot: cannot make a temp dir in %s: %s", tmpdir, strerror(errno));
        pf->dir[0] = '\0';
        return -1;
    }
    /* Cannot truncate: dir is at most 1024 + 30 bytes, png_path was checked
     * by path_ok. */
    const bool fit =
        join(pf->series, pf->dir, "/series.dat") && join(pf->dist, pf->dir, "/latency.dat") &&
        join(pf->script, pf->dir, "/plot.gp") && join(pf->errlog, pf->dir, "/gnuplot.err") &&
        join(pf->png_tmp, png_path, REPORT_TMP_SUFFIX);
    assert(fit);
    (void)fit;
    return 0;
}

/* Removes everything report_plot made but the finished PNG. */
static void plot_files_remove(const struct plot_files *pf)
{
    if (pf->png_tmp[0] != '\0')
        unlink(pf->png_tmp); /* already renamed away on success: ENOENT then */
    if (pf->dir[0] == '\0')
        return;
    unlink(pf->series);
    unlink(pf->dist);
    unlink(pf->script);
    unlink(pf->errlog);
    rmdir(pf->dir);
}

static FILE *plot_open(const char *path, char *err, size_t err_len)
{
    FILE *f = fopen(path, "we");
    if (f == NULL)
        set_err(err, err_len, "plot: cannot create %s: %s", path, strerror(errno));
    return f;
}

static int plot_close(FILE *f, const char *path, char *err, size_t err_len)
{
    const bool bad = ferror(f) != 0;
    if (fclose(f) != 0 || bad) {
        set_err(err, err_len, "plot: cannot write %s: %s", path, strerror(errno ? errno : EIO));
        return -1;
    }
    return 0;
}

/* A latency for the log-scale panel: 0 (no answer in the interval) is
 * missing data, not a point at minus infinity. */
static void plot_put_ms(FILE *f, uint64_t ns)
{
    if (ns == 0)
        fputs(" ?", f);
    else
        fprintf(f, " %.6f", ms_of_ns(ns));
}

/* t_s ops_per_s p50_ms p99_ms p999_ms, one line per kept sample. */
static int plot_write_series(const struct report *r, const char *path, size_t *rows_latency,
                             char *err, size_t err_len)
{
    FILE *f = plot_open(path, err, err_len);
    if (f == NULL)
        return -1;
    *rows_latency = 0;
    fputs("# t_s ops_per_s p50_ms p99_ms p999_ms\n", f);
    for (size_t i = 0; i < r->nsamples; i++) {
        const struct bench_sample *s = &r->samples[i];
        fprintf(f, "%.3f %.1f", s->t_s, sample_ops_per_s(s));
        plot_put_ms(f, s->p50_ns);
        plot_put_ms(f, s->p99_ns);
        plot_put_ms(f, s->p999_ns);
        fputc('\n', f);
        *rows_latency += s->p50_ns > 0 || s->p99_ns > 0 || s->p999_ns > 0;
    }
    assert(*rows_latency <= r->nsamples);
    return plot_close(f, path, err, err_len);
}

/* The percentile curve, as HdrHistogram plots it: x = 1/(1-p) on a log
 * axis (1 is 0%, 10 is 90%, 100 is 99%, ...), y the latency there. It
 * stops where x passes the count (past it every percentile is the max),
 * and ends on the max at x = count, the last rank's place as HdrHistogram's
 * plotter draws it (at p = 100% x would be infinite). */
static int plot_write_dist(const struct hist *h, const char *path, size_t *points, char *err,
                           size_t err_len)
{
    FILE *f = plot_open(path, err, err_len);
    if (f == NULL)
        return -1;
    *points = 0;
    fputs("# one_over_one_minus_p percentile latency_ms\n", f);
    const int steps = REPORT_DIST_DECADES * REPORT_DIST_STEPS_PER_DECADE;
    for (int k = 0; h != NULL && h->total > 0 && k <= steps; k++) {
        const double x = pow(10.0, (double)k / REPORT_DIST_STEPS_PER_DECADE);
        if (x > (double)h->total)
            break;
        const double pct = 100.0 * (1.0 - 1.0 / x);
        /* hist_percentile wants pct > 0: 0% is the min */
        const uint64_t ns = k == 0 ? h->min_ns : hist_percentile(h, pct);
        fprintf(f, "%.6g %.6f %.6f\n", x, pct, ms_of_ns(ns));
        (*points)++;
    }
    if (*points > 0) {
        const double x_max = (double)h->total < 1e6 ? (double)h->total : 1e6;
        fprintf(f, "%.6g 100 %.6f\n", x_max, ms_of_ns(h->max_ns));
        (*points)++;
    }
    assert(*points <= (size_t)steps + 2);
    return plot_close(f, path, err, err_len);
}

static int plot_write_script(const char *path, char *err, size_t err_len)
{
    FILE *f = plot_open(path, err, err_len);
    if (f == NULL)
        return -1;
    fputs(plot_script, f);
    return plot_close(f, path, err, err_len);
}

/* The PNG's tmp name, made by us first: a directory that does not exist or
 * is not writable is then reported plainly, with errno, before gnuplot runs. */
static int plot_create_png_tmp(const char *png_path, const char *png_tmp, char *err, size_t err_len)
{
    const int fd = open(png_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        set_err(err, err_len, "plot %s: cannot create %s: %s", png_path, png_tmp, strerror(errno));
        return -1;
    }
    close(fd);
    return 0;
}

/* The first line of gnuplot's stderr, for the error message. */
static void plot_first_err_line(const char *errlog, char *line, size_t len)
{
    assert(len > 0);
    line[0] = '\0';
    FILE *f = fopen(errlog, "re");
    if (f == NULL)
        return;
    /* gnuplot echoes the failing line first, then the error: keep both */
    size_t used = 0;
    char buf[REPORT_GNUPLOT_ERR_CHARS];
    for (int i = 0; i < 4 && used + 1 < len && fgets(buf, sizeof buf, f) != NULL; i++) {
        buf[strcspn(buf, "\n")] = '\0';
        if (buf[strspn(buf, " ^\t")] == '\0')
            continue; /* the caret line under the echo */
        const int n = snprintf(line + used, len - used, "%s%s", used ? " | " : "", buf);
        used += n < 0 ? 0 : (size_t)n;
        used = used < len ? used : len - 1;
    }
    fclose(f);
}

/* Waits for the child, at most REPORT_PLOT_TIMEOUT_MS: 0 with its status,
 * -1 (errno) when it cannot be waited for, -2 when it was killed for time. */
static int plot_wait(pid_t pid, int *status)
{
    assert(pid > 0 && status != NULL);
    const struct timespec poll = {0, REPORT_PLOT_POLL_MS * 1000000L};
    for (long waited_ms = 0;; waited_ms += REPORT_PLOT_POLL_MS) {
        const pid_t w = waitpid(pid, status, WNOHANG);
        if (w == pid)
            return 0;
        if (w < 0 && errno != EINTR)
            return -1;
        if (waited_ms >= REPORT_PLOT_TIMEOUT_MS) {
            kill(pid, SIGKILL); /* our own child, by its pid */
            while (waitpid(pid, status, 0) < 0 && errno == EINTR)
                ;
            return -2;
        }
        nanosleep(&poll, NULL);
    }
}

/* Runs gnuplot from PATH with argv: no shell, stdin and stdout on
 * /dev/null (a failed `set output` must not spill PNG bytes on our
 * stdout), stderr into errlog. */
static int plot_run_gnuplot(char *const argv[], const char *errlog, char *err, size_t err_len)
{
    posix_spawn_file_actions_t fa;
    if (posix_spawn_file_actions_init(&fa) != 0) {
        set_err(err, err_len, "plot: cannot prepare to run gnuplot: out of memory");
        return -1;
    }
    int rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    rc = rc ? rc : posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    rc = rc ? rc
            : posix_spawn_file_actions_addopen(&fa, 2, errlog, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid = -1;
    if (rc == 0)
        rc = posix_spawnp(&pid, "gnuplot", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        set_err(err, err_len, "plot: cannot run gnuplot: %s (is gnuplot installed and in PATH?)",
                strerror(rc));
        return -1;
    }
    assert(pid > 0);
    int status = 0;
    const int w = plot_wait(pid, &status);
    if (w != 0) {
        set_err(err, err_len,
                w == -2 ? "plot: gnuplot ran over %d ms and was killed"
                        : "plot: cannot wait for gnuplot (after %d ms at most): %s",
                REPORT_PLOT_TIMEOUT_MS, strerror(errno));
        return -1;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    char why[REPORT_GNUPLOT_ERR_CHARS];
    plot_first_err_line(errlog, why, sizeof why);
    if (WIFEXITED(status))
        set_err(err, err_len, "plot: gnuplot exited with %d%s: %s", WEXITSTATUS(status),
                WEXITSTATUS(status) == 127 ? " (not found?)" : "", why);
    else
        set_err(err, err_len, "plot: gnuplot ended by signal %d: %s", WTERMSIG(status), why);
    return -1;
}

/* gnuplot said 0, but is the file a PNG? Then synced and renamed. */
static int plot_commit_png(const struct plot_files *pf, const char *png_path, char *err,
                           size_t err_len)
{
    assert(pf->png_tmp[0] != '\0' && png_path != NULL);
    unsigned char head[sizeof png_signature];
    const int fd = open(pf->png_tmp, O_RDONLY | O_CLOEXEC);
    const bool is_png = fd >= 0 && read(fd, head, sizeof head) == (ssize_t)sizeof head &&
                        memcmp(head, png_signature, sizeof head) == 0;
    const bool synced = is_png && fsync(fd) == 0;
    if (fd >= 0)
        close(fd);
    if (!is_png) {
        set_err(err, err_len, "plot %s: gnuplot wrote no PNG to %s", png_path, pf->png_tmp);
        return -1;
    }
    if (!synced || rename(pf->png_tmp, png_path) != 0) {
        set_err(err, err_len, "plot %s: cannot %s %s: %s", png_path, synced ? "rename" : "sync",
                pf->png_tmp, strerror(errno));
        return -1;
    }
    return 0;
}

static void plot_titles(const struct bench_summary *sum, char *page, char *dist, size_t len)
{
    const struct latency_ms l = latency_of(sum->latency);
    char ops[REPORT_NUM_CHARS], count[REPORT_NUM_CHARS], max[REPORT_NUM_CHARS];
    snprintf(page, len, "invcore-bench %s on %s over %s, keys %s, %u clients, %.1f s, %s ops/s",
             or_unknown(sum->scenario), or_unknown(sum->target), or_unknown(sum->transport),
             or_unknown(sum->keys), sum->clients, sum->duration_s,
             fmt_u64(ops, sizeof ops, u64_of_rate(summary_ops_per_s(sum))));
    snprintf(dist, len, "latency by percentile, whole run (%s answered, max %s ms%s)",
             fmt_u64(count, sizeof count, l.count), fmt_ms(max, sizeof max, l.max),
             l.clamped > 0 ? ", some clamped" : "");
}

static int plot_draw(const struct report *r, const struct bench_summary *sum,
                     const struct plot_files *pf, char *err, size_t err_len)
{
    size_t rows_latency = 0, points = 0;
    if (plot_write_series(r, pf->series, &rows_latency, err, err_len) != 0 ||
        plot_write_dist(sum->latency, pf->dist, &points, err, err_len) != 0 ||
        plot_write_script(pf->script, err, err_len) != 0)
        return -1;
    char page[REPORT_TITLE_CHARS], dist[REPORT_TITLE_CHARS];
    plot_titles(sum, page, dist, sizeof page);
    char *const argv[] = {
        "gnuplot",
        "-c",
        (char *)pf->script,
        (char *)pf->png_tmp,
        (char *)pf->series,
        (char *)pf->dist,
        r->nsamples > 0 ? "1" : "0",
        rows_latency > 0 ? "1" : "0",
        points > 0 ? "1" : "0",
        page,
        dist,
        NULL,
    };
    return plot_run_gnuplot(argv, pf->errlog, err, err_len);
}

int report_plot(const struct report *r, const struct bench_summary *sum, const char *png_path,
                char *err, size_t err_len)
{
    if (!output_args_ok("report_plot", "plot", r, sum, png_path, err, err_len))
        return -1;
    assert(r->nsamples <= r->max_samples);
    struct plot_files pf;
    if (plot_files_make(&pf, png_path, err, err_len) != 0)
        return -1;
    int rc = plot_create_png_tmp(png_path, pf.png_tmp, err, err_len);
    if (rc == 0)
        rc = plot_draw(r, sum, &pf, err, err_len);
    if (rc == 0)
        rc = plot_commit_png(&pf, png_path, err, err_len);
    plot_files_remove(&pf);
    return rc;
}
