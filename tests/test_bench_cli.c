/*
 * test_bench_cli.c — build/invcore-bench run as a user runs it, against a
 * real invcored (the harness's, over RESP and HTTP) and a real
 * redis-server (Debian's, started here on a free loopback port):
 *  - bad flags exit 2 naming the flag; --help exits 0;
 *  - a never-oversell sale on one hot key sells exactly its stock
 *    (--requests makes the demand exact: no test waits on time), and the
 *    server agrees unit for unit; the same over the Shopify HTTP route;
 *  - the README's flash-sale command (read from README.md): progress,
 *    verdict and a PNG plot; a checkout sale with CSV and JSON;
 *  - open loop: a server stopped for STALL_MS shows in the latency of every
 *    request due during the stall (p99), not only in those in flight;
 *  - the oversell detector: plain decrements on Redis oversell and the
 *    run fails loudly (exit 1, OVERSOLD); a planted oversell (a level set
 *    below 0 behind the tool's back) fails --check-only.
 * Each run of the tool is bounded (BENCH_RUN_TIMEOUT_MS, then SIGKILL and
 * a failure): a hung tool fails the test, never hangs it.
 */
#include "test_server_harness.h"

#include <sys/wait.h>

#define BENCH_RUN_TIMEOUT_MS 120000
#define BENCH_ARGS_MAX 48
#define OUTPUT_MAX 65536
#define REDIS_START_TIMEOUT_MS 10000

static const char *bench_bin(void)
{
    const char *b = getenv("INVCORE_BENCH");
    return b ? b : "build/invcore-bench";
}

struct run_result {
    int status; /* exit code, or 128 + signal */
    char out[OUTPUT_MAX];
    char err[OUTPUT_MAX];
};

static void slurp(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
    buf[n] = '\0';
    if (f)
        fclose(f);
}

/* Starts the tool with args (NULL-terminated), stdout and stderr to the
 * files out and err; answers its pid. */
static pid_t spawn_bench(const char *const *args, const char *out, const char *err)
{
    const char *argv[BENCH_ARGS_MAX + 2];
    int n = 0;
    argv[n++] = bench_bin();
    for (int i = 0; args[i]; i++) {
        cr_assert_lt(n, BENCH_ARGS_MAX);
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fe = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fo < 0 || fe < 0)
            _exit(126);
        dup2(fo, 1);
        dup2(fe, 2);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* Waits for the tool at most BENCH_RUN_TIMEOUT_MS (then kills it and
 * fails); answers its exit code, or 128 + signal. */
static int wait_bench(pid_t pid)
{
    long long deadline = srv_now_ms() + BENCH_RUN_TIMEOUT_MS;
    int st = 0;
    while (waitpid(pid, &st, WNOHANG) != pid) {
        if (srv_now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            cr_assert_fail("invcore-bench ran past %d ms", BENCH_RUN_TIMEOUT_MS);
        }
        srv_sleep_ms(10);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Runs the tool with args, its output in files in dir, to its end. */
static void run_bench(const char *dir, struct run_result *res, const char *const *args)
{
    char out[256], err[256];
    snprintf(out, sizeof out, "%s/bench.out", dir);
    snprintf(err, sizeof err, "%s/bench.err", dir);
    res->status = wait_bench(spawn_bench(args, out, err));
    slurp(out, res->out, sizeof res->out);
    slurp(err, res->err, sizeof res->err);
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static char dir[128];
static char port_text[16];

static void setup(void)
{
    srv_suite_start(NULL);
    tu_tmpdir(dir, sizeof dir, "bench-cli");
    snprintf(port_text, sizeof port_text, "%d", S.port);
}

static void teardown(void)
{
    srv_suite_stop();
    tu_remove_tree(dir);
}

TestSuite(bench_cli, .init = setup, .fini = teardown, .timeout = 300);

/* The sum of available over items base..base+n-1 at location 1. */
static long long available_sum(long long base, int n)
{
    long long sum = 0;
    for (int i = 0; i < n; i++) {
        redisReply *r = cmd(C, "LEVEL.GET %lld 1", base + i);
        cr_assert_eq(r->type, REDIS_REPLY_ARRAY, "LEVEL.GET %lld: %s", base + i,
                     r->type == REDIS_REPLY_ERROR ? r->str : "?");
        sum += r->element[0]->integer;
        freeReplyObject(r);
    }
    return sum;
}

Test(bench_cli, bad_flags_exit_2_naming_the_flag_and_help_exits_0)
{
    struct run_result *res = malloc(sizeof *res);
    run_bench(dir, res, ARGS("--clients", "many"));
    cr_assert_eq(res->status, 2, "exit %d", res->status);
    cr_assert(strstr(res->err, "--clients: 'many' is not a whole number"), "%s", res->err);
    run_bench(dir, res, ARGS("--scenario", "checkout", "--http"));
    cr_assert_eq(res->status, 2);
    cr_assert(strstr(res->err, "the HTTP dialects have no holds"), "%s", res->err);
    run_bench(dir, res, ARGS("--bogus"));
    cr_assert_eq(res->status, 2);
    cr_assert(strstr(res->err, "unknown flag '--bogus'"), "%s", res->err);
    run_bench(dir, res, ARGS("--help"));
    cr_assert_eq(res->status, 0);
    cr_assert(strstr(res->out, "usage: invcore-bench"), "%s", res->out);
    free(res);
}

Test(bench_cli, an_unreachable_server_exits_3)
{
    struct run_result *res = malloc(sizeof *res);
    /* The port of a socket bound here and never listened on: refused. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    char port[16];
    snprintf(port, sizeof port, "%u", ntohs(a.sin_port));
    run_bench(dir, res, ARGS("--port", port, "--scenario", "floor", "--requests", "1"));
    close(fd);
    cr_assert_eq(res->status, 3, "exit %d: %s", res->status, res->err);
    cr_assert(strstr(res->err, "cannot connect"), "%s", res->err);
    free(res);
}

Test(bench_cli, a_floor_sale_on_a_hot_key_sells_exactly_its_stock)
{
    struct run_result *res = malloc(sizeof *res);
    char json[256];
    snprintf(json, sizeof json, "%s/sale.json", dir);
    run_bench(dir, res,
              ARGS("--port", port_text, "--scenario", "floor", "--keys", "hot", "--stock", "50",
                   "--preload", "--requests", "80", "--clients", "8", "--threads", "2",
                   "--duration", "100", "--quiet", "--json", json, "--item-base", "7000"));
    cr_assert_eq(res->status, 0, "exit %d\n%s\n%s", res->status, res->out, res->err);
    cr_assert(strstr(res->out, "verdict     ok: sold 50 (50 by decrements, 0 committed) of 50"),
              "%s", res->out);
    cr_assert(strstr(res->out, "sold_out     30"), "%s", res->out);
    cr_assert_eq(available_sum(7000, 1), 0);
    char body[OUTPUT_MAX];
    slurp(json, body, sizeof body);
    cr_assert(strstr(body, "\"sold_units\""), "%s", body);
    free(res);
}

Test(bench_cli, the_same_sale_over_the_shopify_http_route)
{
    struct run_result *res = malloc(sizeof *res);
    char http_port[16];
    snprintf(http_port, sizeof http_port, "%d", srv_http_port(&S));
    run_bench(dir, res,
              ARGS("--http", "--port", http_port, "--resp-port", port_text, "--scenario", "floor",
                   "--keys", "uniform:4", "--stock", "5", "--preload", "--requests", "200",
                   "--clients", "4", "--duration", "100", "--quiet", "--item-base", "8000"));
    cr_assert_eq(res->status, 0, "exit %d\n%s\n%s", res->status, res->out, res->err);
    /* 200 draws over 4 keys of 5: whatever the draws, the server and the
     * clients agree (the verdict), and nothing is below 0. */
    cr_assert(strstr(res->out, "units conserved"), "%s", res->out);
    long long left = available_sum(8000, 4);
    cr_assert(left >= 0 && left <= 20, "available %lld", left);
    free(res);
}

/* The README's "Load-test a flash sale" command, read from README.md (the
 * ```sh flash-sale block), run as written but for a 2 s duration, this
 * suite's server port and a plot path in the scratch dir. */
#define README_PATH "README.md"
#define README_BLOCK "```sh flash-sale\n"

static int readme_command(char *text, size_t cap, const char **argv, int argv_max)
{
    FILE *f = fopen(README_PATH, "r");
    cr_assert_not_null(f, "no %s (the suites run from the repository's root)", README_PATH);
    size_t n = fread(text, 1, cap - 1, f);
    fclose(f);
    text[n] = '\0';
    char *p = strstr(text, README_BLOCK);
    cr_assert_not_null(p, "README.md has no %s block", README_BLOCK);
    p += strlen(README_BLOCK);
    char *end = strstr(p, "```");
    cr_assert_not_null(end);
    *end = '\0';
    int argc = 0;
    for (char *save = NULL, *tok = strtok_r(p, " \t\n\\", &save); tok;
         tok = strtok_r(NULL, " \t\n\\", &save)) {
        cr_assert_lt(argc, argv_max - 1);
        argv[argc++] = tok;
    }
    argv[argc] = NULL;
    cr_assert_gt(argc, 1);
    cr_assert_str_eq(argv[0], "build/invcore-bench", "the README's command runs the tool");
    return argc;
}

Test(bench_cli, the_readme_flash_sale_passes_its_check_and_writes_the_plot)
{
    struct run_result *res = malloc(sizeof *res);
    static char text[OUTPUT_MAX];
    const char *argv[BENCH_ARGS_MAX];
    int argc = readme_command(text, sizeof text, argv, BENCH_ARGS_MAX - 2);
    char png[256];
    snprintf(png, sizeof png, "%s/sale.png", dir);
    bool has_duration = false, has_plot = false;
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--duration") == 0)
            argv[i + 1] = "2", has_duration = true;
        if (strcmp(argv[i], "--plot") == 0)
            argv[i + 1] = png, has_plot = true;
    }
    cr_assert(has_duration && has_plot, "the README's command sets --duration and --plot");
    argv[argc++] = "--port";
    argv[argc++] = port_text;
    argv[argc] = NULL;
    run_bench(dir, res, argv + 1);
    cr_assert_eq(res->status, 0, "exit %d\n%s\n%s", res->status, res->out, res->err);
    cr_assert(strstr(res->out, "verdict     ok: sold"), "%s", res->out);
    cr_assert(strstr(res->err, "ops/s"), "no progress line: %s", res->err);
    char head[16] = {0};
    FILE *f = fopen(png, "rb");
    cr_assert_not_null(f, "no plot at %s", png);
    cr_assert_eq(fread(head, 1, 8, f), 8);
    fclose(f);
    cr_assert_eq(memcmp(head, "\x89PNG\r\n\x1a\n", 8), 0, "not a PNG");
    free(res);
}

Test(bench_cli, a_checkout_sale_with_every_output_passes_its_check)
{
    struct run_result *res = malloc(sizeof *res);
    char csv[256], json[256];
    snprintf(csv, sizeof csv, "%s/sale.csv", dir);
    snprintf(json, sizeof json, "%s/sale.json", dir);
    run_bench(dir, res,
              ARGS("--port", port_text, "--scenario", "checkout", "--keys", "uniform:100",
                   "--stock", "3", "--preload", "--clients", "16", "--requests", "2000",
                   "--duration", "100", "--lines", "3", "--qty", "2", "--think-ms", "1", "--ttl-ms",
                   "2000", "--buyers", "100", "--limit", "4", "--csv", csv, "--json", json,
                   "--item-base", "9000", "--quiet"));
    cr_assert_eq(res->status, 0, "exit %d\n%s\n%s", res->status, res->out, res->err);
    cr_assert(strstr(res->out, "units conserved"), "%s", res->out);
    char body[OUTPUT_MAX];
    slurp(csv, body, sizeof body);
    cr_assert(strncmp(body, "t_s,", 4) == 0, "%s", body);
    slurp(json, body, sizeof body);
    cr_assert(strstr(body, "\"commit_units\""), "%s", body);
    free(res);
}

Test(bench_cli, a_planted_oversell_fails_check_only)
{
    struct run_result *res = malloc(sizeof *res);
    run_bench(dir, res,
              ARGS("--port", port_text, "--scenario", "floor", "--keys", "uniform:3", "--stock",
                   "10", "--preload", "--requests", "3", "--clients", "1", "--quiet", "--item-base",
                   "6000"));
    cr_assert_eq(res->status, 0, "exit %d\n%s\n%s", res->status, res->out, res->err);
    const char *const check[] = {"--port",       port_text,     "--scenario", "floor",
                                 "--keys",       "uniform:3",   "--stock",    "10",
                                 "--check-only", "--item-base", "6000",       NULL};
    run_bench(dir, res, check);
    cr_assert_eq(res->status, 0, "exit %d\n%s\n%s", res->status, res->out, res->err);
    cr_assert(strstr(res->out, "flash-sale check: ok"), "%s", res->out);
    /* The plant: three units more sold than there were. */
    redisReply *r = cmd(C, "LEVEL.SET 6001 1 -3");
    cr_assert_neq(r->type, REDIS_REPLY_ERROR, "%s", r->str);
    freeReplyObject(r);
    run_bench(dir, res, check);
    cr_assert_eq(res->status, 1, "exit %d\n%s\n%s", res->status, res->out, res->err);
    cr_assert(strstr(res->out, "OVERSOLD: 1 key(s) below 0"), "%s", res->out);
    cr_assert(strstr(res->out, "item 6001 available -3"), "%s", res->out);
    free(res);
}

/* The latency at pct in a --json file ("latency_ms": {"p90": x, ...}). */
static double json_latency_ms(const char *path, const char *pct)
{
    char body[OUTPUT_MAX], key[32];
    slurp(path, body, sizeof body);
    const char *lat = strstr(body, "\"latency_ms\"");
    cr_assert_not_null(lat, "no latency_ms in %s", body);
    snprintf(key, sizeof key, "\"%s\":", pct);
    const char *at = strstr(lat, key);
    cr_assert_not_null(at, "no %s in %s", key, lat);
    return strtod(at + strlen(key), NULL);
}

/* Open loop: a stall of the server shows in every request that was due
 * during it, measured from when it was due (not only in the few already
 * sent): coordinated omission does not hide it. 2000 arrivals at 500/s (a
 * 4 s run); the server is stopped STALL_MS once the first progress line
 * shows the load running (at 1 s: the stall falls well inside the run); the
 * arrivals of the stall's first STALL_MS - 100 ms (about 150, over 1% of
 * all) wait >= 100 ms, so p99 >= 100 ms. With one request in flight per
 * connection, a measure from the send would show only the four in flight
 * (p99 a few ms: checked by hand against such a build). */
#define STALL_MS 400
#define RUN_START_TIMEOUT_MS 60000

Test(bench_cli, an_open_loop_counts_a_server_stall_in_every_request_due_during_it)
{
    char json[256], err_path[256];
    snprintf(json, sizeof json, "%s/open.json", dir);
    snprintf(err_path, sizeof err_path, "%s/open.err", dir);
    const char *const args[] = {
        "--port", port_text,   "--scenario",  "floor",      "--keys",     "hot",        "--stock",
        "100000", "--preload", "--rate",      "500",        "--requests", "2000",       "--clients",
        "4",      "--threads", "1",           "--pipeline", "1",          "--duration", "100",
        "--json", json,        "--item-base", "5000",       NULL};
    char out_path[256];
    snprintf(out_path, sizeof out_path, "%s/open.out", dir);
    pid_t pid = spawn_bench(args, out_path, err_path);
    /* The event: the load is running (its first progress line). */
    long long deadline = srv_now_ms() + RUN_START_TIMEOUT_MS;
    char text[OUTPUT_MAX] = "";
    while (!strstr(text, "ops/s") && srv_now_ms() < deadline) {
        srv_sleep_ms(10);
        slurp(err_path, text, sizeof text);
    }
    cr_assert(strstr(text, "ops/s"), "no progress line: %s", text);
    cr_assert_eq(kill(S.pid, SIGSTOP), 0);
    srv_sleep_ms(STALL_MS); /* the stall itself, not a wait for an event */
    cr_assert_eq(kill(S.pid, SIGCONT), 0);
    int status = wait_bench(pid);
    slurp(err_path, text, sizeof text);
    cr_assert_eq(status, 0, "exit %d: %s", status, text);
    double p99 = json_latency_ms(json, "p99"), max = json_latency_ms(json, "max");
    cr_assert_geq(max, STALL_MS - 50, "max %.3f ms after a %d ms stall", max, STALL_MS);
    cr_assert_geq(p99, 100.0, "p99 %.3f ms: the stall's queue is not counted", p99);
}

/* ---- Redis ---------------------------------------------------------------- */

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* redis-server on a free port (retried if another process took it between
 * the probe and the start); answers its pid, *port set. */
static pid_t redis_start(int *port)
{
    for (int attempt = 0; attempt < 5; attempt++) {
        *port = free_port();
        char p[16];
        snprintf(p, sizeof p, "%d", *port);
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            int nul = open("/dev/null", O_RDWR);
            dup2(nul, 1);
            dup2(nul, 2);
            execlp("redis-server", "redis-server", "--port", p, "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "no", "--dir", dir, (char *)NULL);
            _exit(127);
        }
        long long deadline = srv_now_ms() + REDIS_START_TIMEOUT_MS;
        while (srv_now_ms() < deadline) {
            if (waitpid(pid, NULL, WNOHANG) == pid)
                break; /* exited: the port was taken; try another */
            redisContext *c = srv_connect_port(*port);
            if (c) {
                redisReply *r = redisCommand(c, "PING");
                bool up = r && r->type == REDIS_REPLY_STATUS;
                freeReplyObject(r);
                redisFree(c);
                if (up)
                    return pid;
            }
            srv_sleep_ms(20);
        }
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    cr_assert_fail("redis-server did not start");
    return -1;
}

static void redis_stop(pid_t pid)
{
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

Test(bench_cli, plain_decrements_on_redis_oversell_and_the_run_fails_loudly)
{
    struct run_result *res = malloc(sizeof *res);
    int port = 0;
    pid_t redis = redis_start(&port);
    char p[16];
    snprintf(p, sizeof p, "%d", port);
    run_bench(dir, res,
              ARGS("--target", "redis", "--port", p, "--scenario", "decr", "--keys", "hot",
                   "--stock", "5", "--preload", "--requests", "50", "--clients", "4", "--duration",
                   "100", "--quiet"));
    cr_assert_eq(res->status, 1, "exit %d\n%s\n%s", res->status, res->out, res->err);
    cr_assert(strstr(res->out, "OVERSOLD: 1 key(s) below 0"), "%s", res->out);
    cr_assert(strstr(res->out, "available -45"), "%s", res->out);
    cr_assert(strstr(res->err, "FLASH-SALE CHECK FAILED"), "%s", res->err);
    /* The never-oversell script on the same Redis passes. */
    run_bench(dir, res,
              ARGS("--target", "redis", "--port", p, "--scenario", "floor", "--keys", "hot",
                   "--stock", "5", "--preload", "--requests", "50", "--clients", "4", "--duration",
                   "100", "--quiet"));
    cr_assert_eq(res->status, 0, "exit %d\n%s\n%s", res->status, res->out, res->err);
    cr_assert(strstr(res->out, "ok: sold 5 (5 by decrements"), "%s", res->out);
    /* And the checkout scripts (holds, commit, release, expiry sweep). */
    run_bench(dir, res,
              ARGS("--target", "redis", "--port", p, "--scenario", "checkout", "--keys",
                   "uniform:20", "--stock", "5", "--preload", "--requests", "300", "--clients", "4",
                   "--lines", "2", "--think-ms", "1", "--ttl-ms", "50", "--duration", "100",
                   "--quiet"));
    cr_assert_eq(res->status, 0, "exit %d\n%s\n%s", res->status, res->out, res->err);
    cr_assert(strstr(res->out, "units conserved"), "%s", res->out);
    redis_stop(redis);
    free(res);
}
