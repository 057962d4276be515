/*
 * criterion/criterion.h — TSan-only stand-in for Criterion (header-only).
 *
 * Role: lets the unchanged tests/test_*.c sources build and run under
 * ThreadSanitizer, where the real libcriterion aborts at startup
 * (Snaipe/Criterion#274). It is used ONLY when the compiler sees
 * -Itests/tsan_criterion before the system include path, and the test
 * binary is linked without -lcriterion. See ../README.md.
 *
 * What it does: Test()/TestSuite() register through constructor functions;
 * the main() defined here runs every enabled test serially in this process
 * (no fork), calling .init/.fini around each. A failed cr_assert_* prints
 * file:line and the message, then longjmp()s out of the test; cr_expect_*
 * records the failure and continues. .timeout is enforced with alarm():
 * a test that overruns ends the whole binary with exit status 1.
 * With --fork (or TSAN_CRITERION_FORK=1) each test instead runs in its own
 * child process, like Criterion: no state leaks between tests, and a crash,
 * a timeout or a halting TSan report ends only that test.
 *
 * Limits: each test binary must be one translation unit (main and the test
 * registry live here); a custom assertion message must start with a string
 * literal (the usual printf-style format); fatal assertions belong on the
 * test's own thread (on another thread they end the process); .signal and
 * .exit_code tests are skipped; no parameterized tests, theories, hooks or
 * redirections.
 */
#ifndef TSAN_CRITERION_CRITERION_H
#define TSAN_CRITERION_CRITERION_H

#include <errno.h>
#include <fnmatch.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- test and suite descriptions ------------------------------------ */

/* The designated fields Test(...) and TestSuite(...) accept. */
struct crs_config {
    int crs_unused_; /* lets the initializer start with a designator */
    void (*init)(void);
    void (*fini)(void);
    int signal; /* unsupported here: such tests are skipped */
    int exit_code; /* unsupported here: such tests are skipped */
    bool disabled;
    const char *description;
    double timeout; /* seconds; 0 = none */
    void *data;
};

struct crs_test {
    const char *suite;
    const char *name;
    const char *file;
    unsigned line;
    void (*fn)(void);
    struct crs_config cfg;
    struct crs_test *next;
};

struct crs_suite {
    const char *name;
    struct crs_config cfg;
    struct crs_suite *next;
};

/* Registries, filled by constructors before main() runs. */
static struct crs_test *crs_tests_ __attribute__((unused));
static struct crs_suite *crs_suites_ __attribute__((unused));

static inline void crs_register_test_(struct crs_test *t)
{
    t->next = crs_tests_;
    crs_tests_ = t;
}

static inline void crs_register_suite_(struct crs_suite *s)
{
    s->next = crs_suites_;
    crs_suites_ = s;
}

#define Test(suite, name, ...)                                                            \
    static void crs_fn_##suite##__##name(void);                                           \
    static struct crs_test crs_test_##suite##__##name = {#suite,                          \
                                                         #name,                           \
                                                         __FILE__,                        \
                                                         __LINE__,                        \
                                                         crs_fn_##suite##__##name,        \
                                                         {.crs_unused_ = 0, __VA_ARGS__}, \
                                                         NULL};                           \
    __attribute__((constructor)) static void crs_reg_##suite##__##name(void)              \
    {                                                                                     \
        crs_register_test_(&crs_test_##suite##__##name);                                  \
    }                                                                                     \
    static void crs_fn_##suite##__##name(void)

#define TestSuite(suite, ...)                                                                    \
    static struct crs_suite crs_suite_##suite = {#suite, {.crs_unused_ = 0, __VA_ARGS__}, NULL}; \
    __attribute__((constructor)) static void crs_reg_suite_##suite(void)                         \
    {                                                                                            \
        crs_register_suite_(&crs_suite_##suite);                                                 \
    }                                                                                            \
    struct crs_suite_##suite##_semicolon_ /* swallows the trailing ';' */

/* ---- run state ------------------------------------------------------ */

enum { CRS_JUMP_FAIL = 1, CRS_JUMP_SKIP = 2 };

static jmp_buf crs_jump_ __attribute__((unused));
static pthread_t crs_test_thread_ __attribute__((unused));
/* Set from any thread (cr_expect_* in a worker), read by the test thread
 * after the test returned; relaxed suffices, the workers were joined. */
static atomic_int crs_failed_ __attribute__((unused));
static const struct crs_test *crs_current_ __attribute__((unused));

static inline bool crs_on_test_thread_(void)
{
    return pthread_equal(pthread_self(), crs_test_thread_) != 0;
}

__attribute__((format(printf, 4, 0))) static inline void
crs_print_failure_(const char *file, int line, const char *expr, const char *fmt, va_list ap)
{
    /* fmt is " " followed by the user's format (see CRS_MSG_); an empty
     * user message falls back to the failed expression, like Criterion. */
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    const char *m = msg[0] == ' ' ? msg + 1 : msg;
    if (m[0] == '\0')
        printf("[----] %s:%d: Assertion Failed: The expression %s is false.\n", file, line, expr);
    else
        printf("[----] %s:%d: Assertion Failed: %s\n", file, line, m);
    fflush(stdout);
}

__attribute__((noreturn, format(printf, 4, 5))) static inline void
crs_assert_failed_(const char *file, int line, const char *expr, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    crs_print_failure_(file, line, expr, fmt, ap);
    va_end(ap);
    atomic_store_explicit(&crs_failed_, 1, memory_order_relaxed);
    if (!crs_on_test_thread_()) {
        printf("[----] fatal assertion on a thread other than the test's: cannot "
               "unwind it, ending the test binary\n");
        fflush(stdout);
        _exit(1);
    }
    longjmp(crs_jump_, CRS_JUMP_FAIL);
}

__attribute__((format(printf, 4, 5))) static inline void
crs_expect_failed_(const char *file, int line, const char *expr, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    crs_print_failure_(file, line, expr, fmt, ap);
    va_end(ap);
    atomic_store_explicit(&crs_failed_, 1, memory_order_relaxed);
}

__attribute__((noreturn, format(printf, 1, 2))) static inline void crs_skip_(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    printf("[SKIP] %s::%s: %s\n", crs_current_ ? crs_current_->suite : "?",
           crs_current_ ? crs_current_->name : "?", msg[0] == ' ' ? msg + 1 : msg);
    fflush(stdout);
    if (!crs_on_test_thread_())
        _exit(1);
    longjmp(crs_jump_, CRS_JUMP_SKIP);
}

/* ---- assertions ----------------------------------------------------- */

/* The optional message: " " glued to the user's format literal, so that an
 * absent message is still a valid (non-empty) format. */
#define CRS_MSG_(...) " " __VA_ARGS__

#define CRS_CHECK_(kind, cond, expr, ...)                                          \
    do {                                                                           \
        if (!(cond))                                                               \
            crs_##kind##_failed_(__FILE__, __LINE__, expr, CRS_MSG_(__VA_ARGS__)); \
    } while (0)

#define cr_assert(cond, ...) CRS_CHECK_(assert, (cond), #cond, __VA_ARGS__)
#define cr_expect(cond, ...) CRS_CHECK_(expect, (cond), #cond, __VA_ARGS__)
#define cr_assert_not(cond, ...) CRS_CHECK_(assert, !(cond), "!(" #cond ")", __VA_ARGS__)
#define cr_expect_not(cond, ...) CRS_CHECK_(expect, !(cond), "!(" #cond ")", __VA_ARGS__)

#define cr_assert_fail(...) \
    crs_assert_failed_(__FILE__, __LINE__, "(forced failure)", CRS_MSG_(__VA_ARGS__))
#define cr_expect_fail(...) \
    crs_expect_failed_(__FILE__, __LINE__, "(forced failure)", CRS_MSG_(__VA_ARGS__))
/* Criterion's newer API: cr_fail continues, cr_fatal ends the test. */
#define cr_fail(...) cr_expect_fail(__VA_ARGS__)
#define cr_fatal(...) cr_assert_fail(__VA_ARGS__)
#define cr_skip_test(...) crs_skip_(CRS_MSG_(__VA_ARGS__))
#define cr_skip(...) crs_skip_(CRS_MSG_(__VA_ARGS__))

#define CRS_CMP_(kind, a, op, b, ...) \
    CRS_CHECK_(kind, (a)op(b), "(" #a ") " #op " (" #b ")", __VA_ARGS__)

#define cr_assert_eq(a, b, ...) CRS_CMP_(assert, a, ==, b, __VA_ARGS__)
#define cr_assert_neq(a, b, ...) CRS_CMP_(assert, a, !=, b, __VA_ARGS__)
#define cr_assert_lt(a, b, ...) CRS_CMP_(assert, a, <, b, __VA_ARGS__)
#define cr_assert_leq(a, b, ...) CRS_CMP_(assert, a, <=, b, __VA_ARGS__)
#define cr_assert_gt(a, b, ...) CRS_CMP_(assert, a, >, b, __VA_ARGS__)
#define cr_assert_geq(a, b, ...) CRS_CMP_(assert, a, >=, b, __VA_ARGS__)
#define cr_expect_eq(a, b, ...) CRS_CMP_(expect, a, ==, b, __VA_ARGS__)
#define cr_expect_neq(a, b, ...) CRS_CMP_(expect, a, !=, b, __VA_ARGS__)
#define cr_expect_lt(a, b, ...) CRS_CMP_(expect, a, <, b, __VA_ARGS__)
#define cr_expect_leq(a, b, ...) CRS_CMP_(expect, a, <=, b, __VA_ARGS__)
#define cr_expect_gt(a, b, ...) CRS_CMP_(expect, a, >, b, __VA_ARGS__)
#define cr_expect_geq(a, b, ...) CRS_CMP_(expect, a, >=, b, __VA_ARGS__)

#define cr_assert_zero(v, ...) CRS_CHECK_(assert, !(v), "(" #v ") == 0", __VA_ARGS__)
#define cr_assert_not_zero(v, ...) CRS_CHECK_(assert, !!(v), "(" #v ") != 0", __VA_ARGS__)
#define cr_expect_zero(v, ...) CRS_CHECK_(expect, !(v), "(" #v ") == 0", __VA_ARGS__)
#define cr_expect_not_zero(v, ...) CRS_CHECK_(expect, !!(v), "(" #v ") != 0", __VA_ARGS__)

#define cr_assert_null(p, ...) CRS_CHECK_(assert, (p) == NULL, "(" #p ") == NULL", __VA_ARGS__)
#define cr_assert_not_null(p, ...) CRS_CHECK_(assert, (p) != NULL, "(" #p ") != NULL", __VA_ARGS__)
#define cr_expect_null(p, ...) CRS_CHECK_(expect, (p) == NULL, "(" #p ") == NULL", __VA_ARGS__)
#define cr_expect_not_null(p, ...) CRS_CHECK_(expect, (p) != NULL, "(" #p ") != NULL", __VA_ARGS__)

#define CRS_STR_(kind, a, op, b, ...) \
    CRS_CHECK_(kind, strcmp((a), (b)) op 0, "(as strings) (" #a ") " #op " (" #b ")", __VA_ARGS__)

#define cr_assert_str_eq(a, b, ...) CRS_STR_(assert, a, ==, b, __VA_ARGS__)
#define cr_assert_str_neq(a, b, ...) CRS_STR_(assert, a, !=, b, __VA_ARGS__)
#define cr_assert_str_lt(a, b, ...) CRS_STR_(assert, a, <, b, __VA_ARGS__)
#define cr_assert_str_leq(a, b, ...) CRS_STR_(assert, a, <=, b, __VA_ARGS__)
#define cr_assert_str_gt(a, b, ...) CRS_STR_(assert, a, >, b, __VA_ARGS__)
#define cr_assert_str_geq(a, b, ...) CRS_STR_(assert, a, >=, b, __VA_ARGS__)
#define cr_expect_str_eq(a, b, ...) CRS_STR_(expect, a, ==, b, __VA_ARGS__)
#define cr_expect_str_neq(a, b, ...) CRS_STR_(expect, a, !=, b, __VA_ARGS__)
#define cr_expect_str_lt(a, b, ...) CRS_STR_(expect, a, <, b, __VA_ARGS__)
#define cr_expect_str_leq(a, b, ...) CRS_STR_(expect, a, <=, b, __VA_ARGS__)
#define cr_expect_str_gt(a, b, ...) CRS_STR_(expect, a, >, b, __VA_ARGS__)
#define cr_expect_str_geq(a, b, ...) CRS_STR_(expect, a, >=, b, __VA_ARGS__)

#define cr_assert_str_empty(s, ...) \
    CRS_CHECK_(assert, (s)[0] == '\0', "(" #s ") is empty", __VA_ARGS__)
#define cr_assert_str_not_empty(s, ...) \
    CRS_CHECK_(assert, (s)[0] != '\0', "(" #s ") is not empty", __VA_ARGS__)
#define cr_expect_str_empty(s, ...) \
    CRS_CHECK_(expect, (s)[0] == '\0', "(" #s ") is empty", __VA_ARGS__)
#define cr_expect_str_not_empty(s, ...) \
    CRS_CHECK_(expect, (s)[0] != '\0', "(" #s ") is not empty", __VA_ARGS__)

/* size is in bytes, as in Criterion. */
#define cr_assert_arr_eq(a, b, size, ...)                                                 \
    CRS_CHECK_(assert, memcmp((a), (b), (size)) == 0, "(as arrays) (" #a ") == (" #b ")", \
               __VA_ARGS__)
#define cr_assert_arr_neq(a, b, size, ...)                                                \
    CRS_CHECK_(assert, memcmp((a), (b), (size)) != 0, "(as arrays) (" #a ") != (" #b ")", \
               __VA_ARGS__)
#define cr_expect_arr_eq(a, b, size, ...)                                                 \
    CRS_CHECK_(expect, memcmp((a), (b), (size)) == 0, "(as arrays) (" #a ") == (" #b ")", \
               __VA_ARGS__)
#define cr_expect_arr_neq(a, b, size, ...)                                                \
    CRS_CHECK_(expect, memcmp((a), (b), (size)) != 0, "(as arrays) (" #a ") != (" #b ")", \
               __VA_ARGS__)

/* |a - b| <= eps, written without fabs so <math.h> is not needed. */
#define CRS_FCLOSE_(a, b, eps) ((a) - (b) <= (eps) && (b) - (a) <= (eps))
#define cr_assert_float_eq(a, b, eps, ...) \
    CRS_CHECK_(assert, CRS_FCLOSE_(a, b, eps), "(" #a ") == (" #b ") within " #eps, __VA_ARGS__)
#define cr_assert_float_neq(a, b, eps, ...) \
    CRS_CHECK_(assert, !CRS_FCLOSE_(a, b, eps), "(" #a ") != (" #b ") beyond " #eps, __VA_ARGS__)
#define cr_expect_float_eq(a, b, eps, ...) \
    CRS_CHECK_(expect, CRS_FCLOSE_(a, b, eps), "(" #a ") == (" #b ") within " #eps, __VA_ARGS__)
#define cr_expect_float_neq(a, b, eps, ...) \
    CRS_CHECK_(expect, !CRS_FCLOSE_(a, b, eps), "(" #a ") != (" #b ") beyond " #eps, __VA_ARGS__)

/* ---- logging (also reachable as <criterion/logging.h>) ---------------- */

enum criterion_severity { CR_LOG_INFO, CR_LOG_WARNING, CR_LOG_ERROR };

__attribute__((format(printf, 2, 3))) static inline void cr_log(enum criterion_severity severity,
                                                                const char *fmt, ...)
{
    static const char *const tag[] = {"INFO", "WARN", "ERR "};
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    printf("[%s] %s\n", tag[(unsigned)severity <= CR_LOG_ERROR ? severity : CR_LOG_ERROR], msg);
    fflush(stdout);
}

#define cr_log_info(...) cr_log(CR_LOG_INFO, __VA_ARGS__)
#define cr_log_warn(...) cr_log(CR_LOG_WARNING, __VA_ARGS__)
#define cr_log_error(...) cr_log(CR_LOG_ERROR, __VA_ARGS__)

/* ---- the runner ----------------------------------------------------- */

#ifndef TSAN_CRITERION_NO_MAIN

static inline double crs_now_(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void crs_write_str_(const char *s)
{
    ssize_t r = write(STDOUT_FILENO, s, strlen(s));
    (void)r;
}

/* SIGALRM: the running test overran its .timeout. Only async-signal-safe
 * calls; the process cannot safely resume, so it ends here. */
static inline void crs_on_alarm_(int sig)
{
    (void)sig;
    crs_write_str_("[FAIL] ");
    if (crs_current_) {
        crs_write_str_(crs_current_->suite);
        crs_write_str_("::");
        crs_write_str_(crs_current_->name);
    }
    crs_write_str_(": timed out (.timeout); ending the process\n");
    _exit(1);
}

static inline void crs_arm_timeout_(double seconds)
{
    if (seconds <= 0)
        return;
    unsigned s = (unsigned)seconds;
    if ((double)s < seconds)
        s++;
    alarm(s);
}

/* Calls fn under setjmp: 0 when it returned, else the CRS_JUMP_* code it
 * left with. fn travels in a static so nothing local lives across setjmp. */
static void (*crs_call_)(void) __attribute__((unused));

static inline int crs_guarded_(void (*fn)(void))
{
    crs_call_ = fn;
    switch (setjmp(crs_jump_)) {
    case 0:
        crs_call_();
        return 0;
    case CRS_JUMP_SKIP:
        return CRS_JUMP_SKIP;
    default:
        return CRS_JUMP_FAIL;
    }
}

/* Runs one test: init, body, fini (fini even after a failure).
 * Returns 0 passed, 1 failed, 2 skipped. */
static inline int crs_run_one_(const struct crs_test *t, const struct crs_config *cfg)
{
    crs_current_ = t;
    atomic_store_explicit(&crs_failed_, 0, memory_order_relaxed);
    crs_arm_timeout_(cfg->timeout);
    int r = cfg->init ? crs_guarded_(cfg->init) : 0;
    if (r == 0)
        r = crs_guarded_(t->fn);
    if (cfg->fini)
        (void)crs_guarded_(cfg->fini);
    alarm(0);
    crs_current_ = NULL;
    if (atomic_load_explicit(&crs_failed_, memory_order_relaxed))
        return 1;
    return r == CRS_JUMP_SKIP ? 2 : 0;
}

/* --fork: runs the test in a child process, as Criterion does, so global
 * state does not leak between tests and a crash (or a ThreadSanitizer report
 * with halt_on_error=1, exit status 66) ends only that test. Returns 0 passed,
 * 1 failed, 2 skipped, 3 crashed. */
static inline int crs_run_forked_(const struct crs_test *t, const struct crs_config *cfg)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        perror("tsan_criterion: fork");
        return 3;
    }
    if (pid == 0) {
        crs_test_thread_ = pthread_self();
        int r = crs_run_one_(t, cfg);
        fflush(stdout);
        _exit(r);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            perror("tsan_criterion: waitpid");
            return 3;
        }
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) <= 2)
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        printf("[----] %s::%s: killed by signal %d\n", t->suite, t->name, WTERMSIG(status));
    else
        printf("[----] %s::%s: exited with status %d\n", t->suite, t->name, WEXITSTATUS(status));
    return 3;
}

static inline const struct crs_suite *crs_find_suite_(const char *name)
{
    for (const struct crs_suite *s = crs_suites_; s; s = s->next)
        if (strcmp(s->name, name) == 0)
            return s;
    return NULL;
}

/* Test-level fields override the suite's (TestSuite) ones. */
static inline struct crs_config crs_effective_config_(const struct crs_test *t)
{
    struct crs_config c = t->cfg;
    const struct crs_suite *s = crs_find_suite_(t->suite);
    if (s) {
        if (!c.init)
            c.init = s->cfg.init;
        if (!c.fini)
            c.fini = s->cfg.fini;
        if (c.timeout <= 0)
            c.timeout = s->cfg.timeout;
        if (!c.signal)
            c.signal = s->cfg.signal;
        if (!c.exit_code)
            c.exit_code = s->cfg.exit_code;
        c.disabled = c.disabled || s->cfg.disabled;
    }
    return c;
}

/* --filter: a glob on "suite/name" (as Criterion), or a plain substring
 * when the pattern has no glob characters. */
static inline bool crs_selected_(const struct crs_test *t, const char *filter)
{
    if (!filter)
        return true;
    char full[512];
    snprintf(full, sizeof full, "%s/%s", t->suite, t->name);
    if (strpbrk(filter, "*?[") != NULL)
        return fnmatch(filter, full, 0) == 0;
    return strstr(full, filter) != NULL;
}

static inline int crs_by_position_(const void *a, const void *b)
{
    const struct crs_test *x = *(const struct crs_test *const *)a;
    const struct crs_test *y = *(const struct crs_test *const *)b;
    int f = strcmp(x->file, y->file);
    if (f != 0)
        return f;
    return (x->line > y->line) - (x->line < y->line);
}

int main(int argc, char **argv)
{
    const char *filter = NULL;
    bool list_only = false;
    const char *fork_env = getenv("TSAN_CRITERION_FORK");
    bool use_fork = fork_env && fork_env[0] && strcmp(fork_env, "0") != 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--filter=", 9) == 0) {
            filter = a + 9;
        } else if (strcmp(a, "--filter") == 0 && i + 1 < argc) {
            filter = argv[++i];
        } else if (strcmp(a, "--fork") == 0) {
            use_fork = true;
        } else if (strcmp(a, "--list") == 0 || strcmp(a, "-l") == 0) {
            list_only = true;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            printf("usage: %s [--filter suite/name-glob-or-substring] [--list] [--fork]\n"
                   "(TSan Criterion shim; other Criterion flags are ignored)\n",
                   argv[0]);
            return 0;
        } else if ((strcmp(a, "--jobs") == 0 || strcmp(a, "-j") == 0 ||
                    strcmp(a, "--pattern") == 0 || strcmp(a, "--output") == 0 ||
                    strcmp(a, "-O") == 0) &&
                   i + 1 < argc) {
            i++; /* ignored flag with a separate value, e.g. --jobs 1 */
        }
        /* every other argument (-j2, --jobs=2, --verbose, --tap, ...) is ignored */
    }

    setvbuf(stdout, NULL, _IOLBF, 0);
    crs_test_thread_ = pthread_self();

    size_t n = 0;
    for (struct crs_test *t = crs_tests_; t; t = t->next)
        n++;
    struct crs_test **order = calloc(n ? n : 1, sizeof *order);
    if (!order) {
        fprintf(stderr, "tsan_criterion: out of memory\n");
        return 1;
    }
    n = 0;
    for (struct crs_test *t = crs_tests_; t; t = t->next)
        order[n++] = t;
    qsort(order, n, sizeof *order, crs_by_position_);

    if (list_only) {
        for (size_t i = 0; i < n; i++)
            printf("%s::%s\n", order[i]->suite, order[i]->name);
        free(order);
        return 0;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = crs_on_alarm_;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);

    unsigned tested = 0, passed = 0, failed = 0, skipped = 0, crashed = 0;
    for (size_t i = 0; i < n; i++) {
        const struct crs_test *t = order[i];
        if (!crs_selected_(t, filter))
            continue;
        struct crs_config cfg = crs_effective_config_(t);
        if (cfg.disabled) {
            printf("[SKIP] %s::%s: disabled\n", t->suite, t->name);
            skipped++;
            continue;
        }
        if (cfg.signal || cfg.exit_code) {
            printf("[SKIP] %s::%s: .signal/.exit_code tests need a forked "
                   "runner (not supported by the TSan shim)\n",
                   t->suite, t->name);
            skipped++;
            continue;
        }
        printf("[RUN ] %s::%s\n", t->suite, t->name);
        double t0 = crs_now_();
        int r = use_fork ? crs_run_forked_(t, &cfg) : crs_run_one_(t, &cfg);
        double dt = crs_now_() - t0;
        if (r == 2) {
            skipped++;
            continue;
        }
        tested++;
        if (r == 3) {
            crashed++;
            printf("[CRASH] %s::%s: (%.2fs)\n", t->suite, t->name, dt);
        } else if (r == 0) {
            passed++;
            printf("[PASS] %s::%s: (%.2fs)\n", t->suite, t->name, dt);
        } else {
            failed++;
            printf("[FAIL] %s::%s: (%.2fs)\n", t->suite, t->name, dt);
        }
    }
    free(order);

    if (skipped)
        printf("[====] Skipped: %u\n", skipped);
    /* Crashing is always 0 without --fork: a crash ends this very process. */
    printf("Synthesis: Tested: %u | Passing: %u | Failing: %u | Crashing: %u\n", tested, passed,
           failed, crashed);
    printf("%u passed, %u failed\n", passed, failed + crashed);
    fflush(stdout);
    return failed || crashed ? 1 : 0;
}

#endif /* TSAN_CRITERION_NO_MAIN */

#endif /* TSAN_CRITERION_CRITERION_H */
