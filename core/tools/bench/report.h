/*
 * report.h — what invcore-bench shows and writes: the live progress line
 * (one per second), the final table, the CSV and JSON files and the
 * gnuplot PNG.
 *
 * The run's threads never call it: the reporting thread builds one
 * bench_sample per interval from the workers' merged interval histograms
 * and counters, and passes it here; at the end it passes the summary.
 *
 * Invariants: memory is bounded by max_samples (fixed at report_new; a
 * sample past it is still printed and written to the CSV but not kept for
 * the plot, and `dropped` counts it); every output file is written whole
 * or the call answers an error naming the file (no half-written file is
 * left under the asked name: written to NAME.tmp, then renamed).
 */
#ifndef INVCORE_BENCH_REPORT_H
#define INVCORE_BENCH_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "hist.h"

/* Named counters of a scenario's outcomes in the summary (e.g. "sold",
 * "sold_out", "held", "committed", "released", "abandoned"). */
#define BENCH_COUNTERS_MAX 16

/* One interval of the run, every thread merged. */
struct bench_sample {
    double t_s; /* end of the interval, seconds since the measured start */
    double interval_s; /* its length (about 1 s; the last one may be shorter) */
    uint64_t ops; /* requests answered in the interval */
    uint64_t errors; /* of them, answered with an unexpected error, or failed */
    uint64_t p50_ns, p99_ns, p999_ns, max_ns; /* latency of those answered */
    int64_t sold; /* units sold so far (acknowledged), -1: not a sale */
    int64_t remaining; /* units the client believes are left, -1: unknown */
};

struct bench_counter {
    const char *name;
    uint64_t value;
};

/* The whole run. Strings are owned by the caller. */
struct bench_summary {
    const char *scenario; /* "ping", "decr", "floor", "checkout", "browse", "mix" */
    const char *target; /* "invcored" or "redis" */
    const char *transport; /* "resp" or "http" */
    const char *keys; /* as given: "hot", "uniform:N", "zipf:N" */
    unsigned clients, threads, pipeline;
    double rate_per_s; /* open loop: the arrival rate; 0: closed loop */
    double duration_s; /* measured time */
    uint64_t ops, errors;
    const struct hist *latency; /* every answered request of the measured time */
    struct bench_counter counters[BENCH_COUNTERS_MAX];
    size_t ncounters;
    /* The flash-sale check (bench_verify): checked false when the scenario
     * sells nothing or the check was not run; then ok and verdict are unused. */
    bool checked;
    bool ok;
    const char *verdict; /* one line, e.g. "ok: sold 1000 <= stock 1000 ..." */
};

struct report;

/* progress: where the live line goes (stderr); csv_path: NULL or a file
 * that gets a header and one row per sample, flushed per row. NULL with
 * a message in err when the CSV cannot be created. */
struct report *report_new(size_t max_samples, FILE *progress, const char *csv_path, char *err,
                          size_t err_len);
/* Prints the progress line, keeps the sample (up to max_samples), writes
 * its CSV row. -1 with err set when the CSV write fails. */
int report_sample(struct report *r, const struct bench_sample *s, char *err, size_t err_len);
/* The final table (human-readable) to out. */
void report_table(const struct report *r, const struct bench_summary *sum, FILE *out);
/* The summary, the samples and the latency percentiles as JSON (yajl);
 * path "-" is stdout. */
int report_json(const struct report *r, const struct bench_summary *sum, const char *path,
                char *err, size_t err_len);
/* A PNG (gnuplot, pngcairo or png terminal): throughput and p50/p99/p999
 * over time, and the latency distribution of the whole run. Runs gnuplot
 * from PATH; a missing gnuplot or a failed plot is an error naming why. */
int report_plot(const struct report *r, const struct bench_summary *sum, const char *png_path,
                char *err, size_t err_len);
size_t report_samples(const struct report *r);
void report_free(struct report *r);

#endif
