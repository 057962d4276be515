/*
 * test_server_net.c — integration: the network layer of build/invcored.
 * Pipelining, a 100-client flash sale that must sell exactly the stock,
 * hostile framing, AUTH, maxclients, idle timeout, slow readers, large
 * replies, many idle connections, redis-cli, SIGTERM and restart on the
 * same data dir. Each test starts its own server (test_server_harness.h).
 */
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>

#include "test_server_harness.h"

static void teardown(void)
{
    srv_cleanup(&S);
}

TestSuite(server_net, .fini = teardown, .timeout = 40);

static void seed_level(redisContext *c, long long stock)
{
    expect_status(c, "OK", "LOC.SET 1 name Main");
    expect_status(c, "OK", "ITEM.SET 7 sku HOT");
    expect_level(c, stock, 0, "LEVEL.SET 7 1 %lld", stock);
}

static long long info_field(redisContext *c, const char *field)
{
    redisReply *r = cmd(c, "INFO");
    char *p = strstr(r->str, field);
    cr_assert_not_null(p, "INFO lacks %s", field);
    long long v = atoll(p + strlen(field) + 1);
    freeReplyObject(r);
    return v;
}

Test(server_net, pipelining_10k_replies_in_order)
{
    srv_start(&S, NULL);
    redisContext *c = srv_connect(&S);
    seed_level(c, 0);
    enum { N = 10000 };
    for (int i = 0; i < N; i++)
        redisAppendCommand(c, "LEVEL.ADJUST 7 1 1");
    for (int i = 0; i < N; i++) {
        redisReply *r = NULL;
        cr_assert_eq(redisGetReply(c, (void **)&r), REDIS_OK, "reply %d", i);
        cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
        cr_assert_eq(r->element[0]->integer, i + 1, "reply %d out of order", i);
        freeReplyObject(r);
    }
    /* mixed inline and multibulk in one write */
    int fd = raw_connect(&S);
    const char *mix = "PING\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\nLEVEL.GET 7 1\r\n";
    raw_send(fd, mix, strlen(mix));
    char buf[256] = {0};
    const char *want = "+PONG\r\n$2\r\nhi\r\n*3\r\n:10000\r\n:0\r\n:";
    raw_recv(fd, buf, sizeof buf - 1, strlen(want) + 3, 3000);
    cr_assert(strncmp(buf, want, strlen(want)) == 0, "got %s", buf);
    close(fd);
    redisFree(c);
}

/* A buyer tries until refused: one more try than there is stock, so even
 * a buyer that runs alone to the end is refused once. */
enum { SALE_CLIENTS = 100, SALE_STOCK = 500, SALE_TRIES_MAX = SALE_STOCK + 1 };

typedef struct {
    int port;
    int sold, refused, other;
} buyer;

static void *buyer_main(void *arg)
{
    buyer *b = arg;
    struct timeval tv = {10, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", b->port, tv);
    if (c == NULL || c->err) {
        b->other++;
        if (c)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    for (int i = 0; i < SALE_TRIES_MAX; i++) {
        redisReply *r = redisCommand(c, "LEVEL.ADJUST 7 1 -1 FLOOR 0");
        if (r == NULL) {
            b->other++;
            break;
        }
        if (r->type == REDIS_REPLY_ARRAY)
            b->sold++;
        else if (r->type == REDIS_REPLY_ERROR &&
                 strncmp(r->str, "INSUFFICIENT available 0", 24) == 0)
            b->refused++;
        else
            b->other++;
        int done = r->type != REDIS_REPLY_ARRAY;
        freeReplyObject(r);
        if (done)
            break;
    }
    redisFree(c);
    return NULL;
}

Test(server_net, flash_sale_100_clients_sells_exactly_the_stock)
{
    const char *extra[] = {"--threads", "2", NULL};
    srv_start(&S, extra);
    redisContext *c = srv_connect(&S);
    seed_level(c, SALE_STOCK);
    pthread_t th[SALE_CLIENTS];
    buyer b[SALE_CLIENTS];
    for (int i = 0; i < SALE_CLIENTS; i++) {
        memset(&b[i], 0, sizeof b[i]);
        b[i].port = S.port;
        cr_assert_eq(pthread_create(&th[i], NULL, buyer_main, &b[i]), 0);
    }
    int sold = 0, refused = 0, other = 0;
    for (int i = 0; i < SALE_CLIENTS; i++) {
        pthread_join(th[i], NULL);
        sold += b[i].sold;
        refused += b[i].refused;
        other += b[i].other;
    }
    cr_assert_eq(other, 0, "unexpected replies");
    cr_assert_eq(sold, SALE_STOCK, "sold %d of %d", sold, SALE_STOCK);
    cr_assert_eq(refused, SALE_CLIENTS);
    expect_level(c, 0, 0, "LEVEL.GET 7 1");
    redisFree(c);
}

/* Sends bytes on a fresh connection; expects an error reply then close. */
static void expect_framing_error(const char *bytes, size_t n)
{
    int fd = raw_connect(&S);
    char buf[512] = {0};
    raw_send(fd, bytes, n);
    size_t got = raw_recv(fd, buf, sizeof buf - 1, 5, 3000);
    cr_assert_geq(got, 5, "no reply to framing error");
    cr_assert(strncmp(buf, "-ERR Protocol error", 19) == 0, "got '%s'", buf);
    cr_assert(raw_closed(fd, 3000), "server kept an unreadable stream open");
    close(fd);
}

Test(server_net, malformed_frames_get_errors_and_server_keeps_serving)
{
    srv_start(&S, NULL);
    redisContext *c = srv_connect(&S);
    expect_framing_error("*1\r\n$999999999999\r\n", 20);
    expect_framing_error("*1\r\n$-3\r\n", 9);
    expect_framing_error("*-5\r\n", 5);
    expect_framing_error("*99999999\r\n", 11);
    expect_framing_error("*2\r\n$4\r\nPING\r\n:1\r\n", 18);
    expect_framing_error("*1\r\n$4\r\nPINGxx", 14);
    expect_framing_error("*abc\r\n", 6);
    /* binary junk: an inline line is an unknown command, connection stays */
    int fd = raw_connect(&S);
    const char junk[] = "\x01\x02\xff\xfe garbage\r\nPING\r\n";
    raw_send(fd, junk, sizeof junk - 1);
    char buf[256] = {0};
    raw_recv(fd, buf, sizeof buf - 1, 200, 500);
    cr_assert(strncmp(buf, "-ERR unknown command", 20) == 0, "got %s", buf);
    cr_assert_not_null(strstr(buf, "+PONG\r\n"));
    close(fd);
    /* random binary garbage on many connections, then the server still works */
    unsigned seed = 42;
    for (int k = 0; k < 50; k++) {
        char b[300];
        for (size_t i = 0; i < sizeof b; i++)
            b[i] = (char)rand_r(&seed);
        b[0] = (k % 2) ? '*' : b[0];
        fd = raw_connect(&S);
        raw_send(fd, b, sizeof b);
        raw_recv(fd, buf, sizeof buf, 1, 50);
        close(fd);
    }
    /* half frames, then close */
    for (int k = 0; k < 20; k++) {
        fd = raw_connect(&S);
        raw_send(fd, "*3\r\n$12\r\nLEVEL.ADJUST\r\n$1\r\n7", 28);
        close(fd);
    }
    /* a huge inline line without newline */
    fd = raw_connect(&S);
    char *line = malloc(70000);
    memset(line, 'a', 70000);
    raw_send(fd, line, 70000);
    free(line);
    memset(buf, 0, sizeof buf);
    raw_recv(fd, buf, sizeof buf - 1, 5, 3000);
    cr_assert(strncmp(buf, "-ERR Protocol error", 19) == 0, "got %s", buf);
    close(fd);
    expect_status(c, "PONG", "PING");
    cr_assert_geq(info_field(c, "protocol_errors"), 8);
    redisFree(c);
}

Test(server_net, auth_required_when_requirepass_set)
{
    const char *extra[] = {"--requirepass", "s3cret", NULL};
    srv_start(&S, extra);
    redisContext *c = srv_connect(&S);
    expect_error(c, "NOAUTH", "PING");
    expect_error(c, "NOAUTH", "LEVEL.GET 1 1");
    expect_error(c, "NOAUTH", "NOSUCHCOMMAND");
    /* each wrong token on a connection of its own: a connection's next
     * AUTH after a failure waits out a penalty (test_server_tenants) */
    const char *const wrong[] = {"AUTH wrong", "AUTH s3cre", "AUTH s3cretx", "AUTH admin s3cret"};
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        redisContext *w = srv_connect(&S);
        expect_error(w, "WRONGPASS invalid", wrong[i]);
        redisFree(w);
    }
    expect_error(c, "NOAUTH", "HELLO 2");
    expect_status(c, "OK", "AUTH s3cret");
    expect_status(c, "PONG", "PING");
    cr_assert_eq(info_field(c, "auth_failures"), 4);
    redisFree(c);
    c = srv_connect(&S);
    redisReply *r = cmd(c, "HELLO 2 AUTH default s3cret");
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    freeReplyObject(r);
    expect_status(c, "PONG", "PING");
    redisFree(c);
    /* before AUTH the limits are tight: a big bulk closes the connection */
    expect_framing_error("*1\r\n$100000\r\n", 13);
    expect_framing_error("*20\r\n", 5);
    /* QUIT works before AUTH */
    int fd = raw_connect(&S);
    raw_send(fd, "QUIT\r\n", 6);
    char buf[16] = {0};
    raw_recv(fd, buf, sizeof buf - 1, 5, 2000);
    cr_assert_str_eq(buf, "+OK\r\n");
    cr_assert(raw_closed(fd, 2000));
    close(fd);
}

Test(server_net, maxclients_rejects_extra_connections)
{
    const char *extra[] = {"--maxclients", "2", NULL};
    srv_start(&S, extra);
    redisContext *a = srv_connect(&S);
    redisContext *b = srv_connect(&S);
    expect_status(a, "PONG", "PING");
    expect_status(b, "PONG", "PING");
    int fd = raw_connect(&S);
    char buf[64] = {0};
    /* generous bounds: they end at the event, and a TSan server on a
     * loaded machine may take seconds to accept */
    raw_recv(fd, buf, sizeof buf - 1, 34, 10000);
    cr_assert(strncmp(buf, "-ERR max number of clients reached", 34) == 0, "got %s", buf);
    cr_assert(raw_closed(fd, 10000));
    close(fd);
    /* counted before the refusal was sent: no wait needed */
    cr_assert_eq(info_field(a, "rejected_connections"), 1);
    redisFree(b);
    /* b's close is seen by its loop at some point: wait for it */
    long long deadline = srv_now_ms() + 5000;
    while (info_field(a, "connected_clients") != 1 && srv_now_ms() < deadline)
        srv_sleep_ms(10);
    cr_assert_eq(info_field(a, "connected_clients"), 1);
    redisContext *d = srv_connect(&S);
    expect_status(d, "PONG", "PING");
    redisFree(d);
    redisFree(a);
}

/* --maxclients is exact across loops (issue 17): with 4 loops, exactly
 * maxclients connections are served and the next is refused; while they
 * are held, every connection of a storm from several threads is refused,
 * INFO connected_clients never passes maxclients, and rejected_connections
 * equals the refusals the clients saw (each is counted before its client
 * can see it). A freed slot is taken by the next client, and only one. */
enum { EXACT_MAX = 40, STORM_THREADS = 4, STORM_EACH = 50 };

typedef struct {
    int port;
    _Atomic int refused, other;
    _Atomic int done; /* threads finished */
} storm;

/* One refused-or-not connection: 1 when refused with the max-clients
 * error, 0 otherwise (served, or no answer). Thread-safe (no asserts). */
static int try_extra(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0), refused = 0;
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
        char buf[64] = {0};
        size_t got = 0;
        long long deadline = srv_now_ms() + 10000;
        while (got < 34 && srv_now_ms() < deadline) {
            struct pollfd p = {fd, POLLIN, 0};
            if (poll(&p, 1, 100) <= 0)
                continue;
            ssize_t r = recv(fd, buf + got, sizeof buf - 1 - got, 0);
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        refused = strncmp(buf, "-ERR max number of clients reached", 34) == 0;
    }
    if (fd >= 0)
        close(fd);
    return refused;
}

static void *storm_main(void *arg)
{
    storm *st = arg;
    for (int i = 0; i < STORM_EACH; i++) {
        /* relaxed: read after the join */
        if (try_extra(st->port))
            atomic_fetch_add_explicit(&st->refused, 1, memory_order_relaxed);
        else
            atomic_fetch_add_explicit(&st->other, 1, memory_order_relaxed);
    }
    /* relaxed: only ends the sampling loop; the counts are read after join */
    atomic_fetch_add_explicit(&st->done, 1, memory_order_relaxed);
    return NULL;
}

Test(server_net, maxclients_is_exact_across_loops)
{
    const char *extra[] = {"--threads", "4", "--maxclients", "40", NULL};
    srv_start(&S, extra);
    redisContext *held[EXACT_MAX];
    for (int i = 0; i < EXACT_MAX; i++) {
        held[i] = srv_connect(&S);
        expect_status(held[i], "PONG", "PING"); /* served */
    }
    cr_assert_eq(try_extra(S.port), 1, "connection %d was not refused", EXACT_MAX + 1);
    storm st = {.port = S.port};
    pthread_t th[STORM_THREADS];
    for (int i = 0; i < STORM_THREADS; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, storm_main, &st), 0);
    long long samples = 0;
    while (atomic_load_explicit(&st.done, memory_order_relaxed) < STORM_THREADS) {
        long long n = info_field(held[0], "connected_clients");
        cr_assert_leq(n, EXACT_MAX, "connected_clients %lld over maxclients", n);
        samples++;
    }
    for (int i = 0; i < STORM_THREADS; i++)
        pthread_join(th[i], NULL);
    int other = atomic_load_explicit(&st.other, memory_order_relaxed); /* joined */
    cr_assert_eq(other, 0, "%d storm connections were not refused", other);
    cr_assert_eq(info_field(held[0], "rejected_connections"), 1 + STORM_THREADS * STORM_EACH);
    cr_log_info("maxclients storm: %d refused, %lld INFO samples",
                atomic_load_explicit(&st.refused, memory_order_relaxed), samples);
    /* a freed slot: the next client is served, the one after refused */
    redisFree(held[EXACT_MAX - 1]);
    long long deadline = srv_now_ms() + 5000;
    while (info_field(held[0], "connected_clients") != EXACT_MAX - 1 && srv_now_ms() < deadline)
        srv_sleep_ms(5);
    held[EXACT_MAX - 1] = srv_connect(&S);
    expect_status(held[EXACT_MAX - 1], "PONG", "PING");
    cr_assert_eq(try_extra(S.port), 1);
    cr_assert_eq(info_field(held[0], "rejected_connections"), 2 + STORM_THREADS * STORM_EACH);
    for (int i = 0; i < EXACT_MAX; i++)
        redisFree(held[i]);
}

Test(server_net, idle_clients_are_closed_after_timeout)
{
    const char *extra[] = {"--timeout", "1", NULL};
    srv_start(&S, extra);
    int fd = raw_connect(&S);
    raw_send(fd, "*2\r\n$4\r\nECHO\r\n$10\r\nabc", 22); /* a half frame */
    cr_assert(raw_closed(fd, 4000), "idle half-open client not closed");
    close(fd);
    redisContext *c = srv_connect(&S);
    cr_assert_geq(info_field(c, "idle_timeouts"), 1);
    redisFree(c);
}

/* --*-capacity pre-sizes the engine's tables: a load within the hints
 * never grows one. A hint beyond SERVER_CAPACITY_MAX refuses to start. */
Test(server_net, capacity_hints_presize_tables_and_bad_ones_refuse_to_start)
{
    const char *extra[] = {"--levels-capacity",
                           "100000",
                           "--items-capacity",
                           "2000",
                           "--locations-capacity",
                           "16",
                           "--holds-capacity",
                           "1000",
                           NULL};
    srv_start(&S, extra);
    redisContext *c = srv_connect(&S);
    cr_assert_geq(info_field(c, "table_bytes"), 100000LL * 32, "levels table not pre-sized");
    long long resizes = info_field(c, "table_resizes");
    expect_status(c, "OK", "LOC.SET 1 name main");
    for (int i = 1; i <= 1000; i++) {
        expect_status(c, "OK", "ITEM.SET %d tracked 1", i);
        expect_level(c, 10, 0, "LEVEL.SET %d 1 10", i);
    }
    cr_assert_eq(info_field(c, "table_resizes"), resizes, "a table grew within its hint");
    redisFree(c);

    srv_t bad;
    srv_prepare(&bad);
    const char *too_big[] = {"--levels-capacity", "99999999999", NULL};
    cr_assert_eq(srv_spawn(&bad, 0, too_big), -1, "started with a hint above the maximum");
    FILE *f = fopen(bad.log, "r");
    cr_assert_not_null(f);
    char msg[512] = "";
    size_t n = fread(msg, 1, sizeof msg - 1, f);
    msg[n] = '\0';
    fclose(f);
    cr_assert(strstr(msg, "--levels-capacity") != NULL, "no message naming the flag: %s", msg);
    srv_cleanup(&bad);
}

Test(server_net, slow_reader_is_disconnected_at_reply_limit)
{
    const char *extra[] = {"--max-reply-buffer", "65536", NULL};
    srv_start(&S, extra);
    int fd = raw_connect(&S);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    /* ask for ~48 MB of replies and never read them */
    static char req[60 * 1024 + 64];
    int hdr = snprintf(req, sizeof req, "*2\r\n$4\r\nECHO\r\n$%d\r\n", 60 * 1024);
    memset(req + hdr, 'x', 60 * 1024);
    memcpy(req + hdr + 60 * 1024, "\r\n", 2);
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    for (int i = 0; i < 800; i++) {
        ssize_t w = send(fd, req, (size_t)hdr + 60 * 1024 + 2, MSG_NOSIGNAL);
        if (w <= 0)
            break;
    }
    close(fd);
    redisContext *c = srv_connect(&S);
    long long closed = 0;
    for (int i = 0; i < 50 && closed == 0; i++) {
        closed = info_field(c, "reply_limit_disconnects");
        srv_sleep_ms(50);
    }
    cr_assert_geq(closed, 1);
    expect_status(c, "PONG", "PING");
    redisFree(c);
}

Test(server_net, large_requests_and_replies_and_many_idle_clients)
{
    srv_start(&S, NULL);
    redisContext *c = srv_connect(&S);
    size_t n = 900 * 1024;
    char *big = malloc(n);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('a' + i % 26);
    redisReply *r = cmd(c, "ECHO %b", big, n);
    cr_assert_eq(r->len, n);
    cr_assert(memcmp(r->str, big, n) == 0);
    freeReplyObject(r);
    free(big);
    expect_status(c, "OK", "LOC.SET 1 name Main");
    for (int i = 0; i < 1000; i++)
        redisAppendCommand(c, "ITEM.SET %d sku s%d", i, i);
    for (int i = 0; i < 1000; i++) {
        cr_assert_eq(redisGetReply(c, (void **)&r), REDIS_OK);
        cr_assert_eq(r->type, REDIS_REPLY_STATUS);
        freeReplyObject(r);
    }
    size_t seen = 0;
    char cursor[32] = "0";
    for (int guard = 0; guard < 50; guard++) {
        r = cmd(c, "ITEM.LIST CURSOR %s COUNT 1000", cursor);
        seen += r->element[1]->elements;
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        freeReplyObject(r);
        if (strcmp(cursor, "0") == 0)
            break;
    }
    cr_assert_eq(seen, 1000);
    int fds[400];
    for (int i = 0; i < 400; i++)
        fds[i] = raw_connect(&S);
    expect_status(c, "PONG", "PING");
    /* The kernel completes connections before the loops accept them:
     * poll, bounded, until every one is counted. */
    long long connected = 0;
    for (int guard = 0; guard < 200 && connected < 401; guard++) {
        connected = info_field(c, "connected_clients");
        if (connected < 401)
            usleep(10 * 1000);
    }
    cr_assert_geq(connected, 401);
    for (int i = 0; i < 400; i++)
        close(fds[i]);
    redisFree(c);
}

static void run(const char *cmdline, char *out, size_t cap)
{
    FILE *p = popen(cmdline, "r");
    cr_assert_not_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = 0;
    cr_assert_eq(pclose(p), 0, "'%s' failed: %s", cmdline, out);
}

Test(server_net, redis_cli_talks_to_invcored)
{
    srv_start(&S, NULL);
    char line[256];
    static char out[1 << 16];
    snprintf(line, sizeof line, "redis-cli -p %d LOC.SET 1 name Main 2>&1", S.port);
    run(line, out, sizeof out);
    cr_assert_str_eq(out, "OK\n");
    snprintf(line, sizeof line, "redis-cli -p %d ITEM.SET 7 sku HOT 2>&1", S.port);
    run(line, out, sizeof out);
    snprintf(line, sizeof line, "redis-cli -p %d LEVEL.SET 7 1 5 2>&1", S.port);
    run(line, out, sizeof out);
    snprintf(line, sizeof line, "redis-cli --no-raw -p %d LEVEL.GET 7 1 2>&1", S.port);
    run(line, out, sizeof out);
    cr_assert(strncmp(out, "1) (integer) 5\n2) (integer) 0\n3) (integer) ", 41) == 0, "got %s",
              out);
    snprintf(line, sizeof line, "redis-cli --no-raw -p %d level.adjust 7 1 -9 FLOOR 0 2>&1",
             S.port);
    run(line, out, sizeof out);
    cr_assert_str_eq(out, "(error) INSUFFICIENT available 5\n");
    snprintf(line, sizeof line, "redis-benchmark -p %d -n 2000 -c 4 -q LEVEL.ADJUST 7 1 1 2>&1",
             S.port);
    run(line, out, sizeof out);
    cr_assert_null(strstr(out, "ERR"), "%s", out);
    cr_assert_null(strstr(out, "WARN"), "%s", out);
    cr_assert_not_null(strstr(out, "requests per second"), "%s", out);
}

Test(server_net, sigterm_exits_zero_and_restart_keeps_state)
{
    srv_start(&S, NULL);
    redisContext *c = srv_connect(&S);
    seed_level(c, 42);
    expect_level(c, 41, 0, "LEVEL.ADJUST 7 1 -1 FLOOR 0");
    expect_status(c, "OK", "HOLD.CREATE keep 600000 7 1 1");
    redisFree(c);
    cr_assert_eq(srv_stop(&S), 0, "exit status after SIGTERM");
    if (!S.durable)
        cr_skip_test("INVCORE_SERVER_TEST_MEMORY: in memory, restart "
                     "persistence not testable");
    cr_assert_eq(srv_spawn(&S, 1, NULL), 0, "restart with the same data dir");
    c = srv_connect(&S);
    expect_level(c, 40, 1, "LEVEL.GET 7 1");
    redisReply *r = cmd(c, "HOLD.GET keep");
    cr_assert_str_eq(r->element[0]->str, "held");
    freeReplyObject(r);
    redisFree(c);
}

/* SO_REUSEPORT would let a second server share the port and split the
 * clients between two states: a second invcored on a port in use exits. */
Test(server_net, a_second_server_on_the_same_port_refuses_to_start)
{
    srv_start(&S, NULL);
    char cmdline[256];
    snprintf(cmdline, sizeof cmdline,
             "timeout 10 %s --in-memory --bind 127.0.0.1 --port %d >/dev/null 2>&1", srv_bin(),
             S.port);
    int status = system(cmdline);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1, "second server exit status %d",
              status);
    redisContext *c = srv_connect(&S);
    expect_status(c, "PONG", "PING"); /* the first one still serves */
    redisFree(c);
}

/* Above CONN_OUT_SOFT of unsent output the server stops running a
 * client's requests; once the output drains, the requests already read
 * must run even if no more bytes ever arrive. 20 pipelined replies of
 * ~140 KB each cross that mark many times; the PING after them proves the
 * whole pipeline ran. */
enum {
    BIG_ITEMS = 250, /* ids per ITEM.MGET (within INV_MGET_MAX) */
    BIG_MGETS = 20, /* pipelined MGETs: ~2.8 MB of replies */
    BIG_SKU_LEN = 200, /* bytes: makes each item's reply ~550 B */
    BIG_WAIT_MS = 10000, /* generous; the fixed server needs < 1 s */
    BIG_REPLY_CAP = 8 << 20, /* bytes: room for all replies */
};

Test(server_net, pipelined_large_replies_all_arrive_without_more_input)
{
    srv_start(&S, NULL);
    redisContext *c = srv_connect(&S);
    char sku[BIG_SKU_LEN + 1];
    memset(sku, 's', BIG_SKU_LEN);
    sku[BIG_SKU_LEN] = '\0';
    expect_status(c, "OK", "LOC.SET 1 name Main");
    for (int i = 1; i <= BIG_ITEMS; i++)
        redisAppendCommand(c, "ITEM.SET %d sku %s%d", i, sku, i);
    for (int i = 1; i <= BIG_ITEMS; i++) {
        redisReply *r = NULL;
        cr_assert_eq(redisGetReply(c, (void **)&r), REDIS_OK);
        cr_assert_eq(r->type, REDIS_REPLY_STATUS, "ITEM.SET %d", i);
        freeReplyObject(r);
    }
    redisFree(c);

    /* one inline MGET line: "ITEM.MGET 1 2 ... 250\r\n" */
    char line[BIG_ITEMS * 4 + 16];
    size_t n = (size_t)snprintf(line, sizeof line, "ITEM.MGET");
    for (int i = 1; i <= BIG_ITEMS; i++)
        n += (size_t)snprintf(line + n, sizeof line - n, " %d", i);
    n += (size_t)snprintf(line + n, sizeof line - n, "\r\n");
    size_t reqlen = n * BIG_MGETS + 6;
    char *req = malloc(reqlen);
    cr_assert_not_null(req);
    for (int k = 0; k < BIG_MGETS; k++)
        memcpy(req + n * (size_t)k, line, n);
    memcpy(req + n * BIG_MGETS, "PING\r\n", 6);

    int fd = raw_connect(&S);
    raw_send(fd, req, reqlen); /* ~20 KB: fits the socket buffers */
    free(req);
    char *buf = malloc(BIG_REPLY_CAP);
    cr_assert_not_null(buf);
    size_t got = 0;
    long long deadline = srv_now_ms() + BIG_WAIT_MS;
    while (got < BIG_REPLY_CAP && srv_now_ms() < deadline &&
           !(got >= 7 && memcmp(buf + got - 7, "+PONG\r\n", 7) == 0))
        got += raw_recv(fd, buf + got, BIG_REPLY_CAP - got, BIG_REPLY_CAP - got, 50);
    cr_assert(got >= 7 && memcmp(buf + got - 7, "+PONG\r\n", 7) == 0,
              "pipeline stalled after %zu bytes", got);
    size_t arrays = 0;
    char hdr[16];
    int hl = snprintf(hdr, sizeof hdr, "*%d\r\n", BIG_ITEMS);
    for (size_t i = 0; i + (size_t)hl <= got; i++)
        if (memcmp(buf + i, hdr, (size_t)hl) == 0)
            arrays++;
    cr_assert_eq(arrays, BIG_MGETS, "got %zu of %d MGET replies", arrays, BIG_MGETS);
    free(buf);
    close(fd);
}

/* Out of descriptors, a level-triggered listener with clients waiting in
 * the backlog would wake the loop forever: the server must take them off
 * the backlog (reject and close) and stay idle, and serve again once
 * descriptors are free. The limit is lowered on the running server with
 * prlimit (its own process, same user). */
enum {
    FD_HEADROOM = 2, /* clients the server can still accept */
    FD_EXTRA_CLIENTS = 10, /* clients beyond the headroom */
    FD_IDLE_WAIT_MS = 1000, /* CPU is measured over this window */
    FD_CPU_PCT_MAX = 40, /* a spinning loop uses ~100% */
};

/* The number of the n-th (1-based) descriptor pid does not hold: with
 * RLIMIT_NOFILE one above it, pid can open exactly n more (descriptors
 * take the lowest free number; inherited ones may leave holes). */
static long nth_free_fd(pid_t pid, int n)
{
    enum { FD_SCAN_MAX = 4096 };
    static unsigned char used[FD_SCAN_MAX];
    char path[64];
    memset(used, 0, sizeof used);
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    cr_assert_not_null(d);
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        long fd = e->d_name[0] == '.' ? -1 : atol(e->d_name);
        if (fd >= 0 && fd < FD_SCAN_MAX)
            used[fd] = 1;
    }
    closedir(d);
    for (long fd = 0; fd < FD_SCAN_MAX; fd++)
        if (!used[fd] && --n == 0)
            return fd;
    cr_assert_fail("no free descriptor below %d", FD_SCAN_MAX);
    return -1;
}

static long long cpu_ticks(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* fields 14, 15: utime, stime */
    cr_assert_not_null(p);
    unsigned long long ut = 0, st = 0;
    cr_assert_eq(sscanf(p + 2,
                        "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
                        "%llu %llu",
                        &ut, &st),
                 2);
    return (long long)(ut + st);
}

Test(server_net, out_of_descriptors_rejects_clients_without_spinning)
{
    const char *extra[] = {"--threads", "1", NULL};
    srv_start(&S, extra);
    redisContext *c = srv_connect(&S);
    expect_status(c, "PONG", "PING");
    struct rlimit old, low;
    cr_assert_eq(prlimit(S.pid, RLIMIT_NOFILE, NULL, &old), 0);
    low = old;
    low.rlim_cur = (rlim_t)nth_free_fd(S.pid, FD_HEADROOM) + 1;
    cr_assert_eq(prlimit(S.pid, RLIMIT_NOFILE, &low, NULL), 0);
    int fds[FD_HEADROOM + FD_EXTRA_CLIENTS];
    for (int i = 0; i < FD_HEADROOM + FD_EXTRA_CLIENTS; i++)
        fds[i] = raw_connect(&S);
    srv_sleep_ms(200); /* let the loop meet the backlog */
    long long t0 = cpu_ticks(S.pid);
    srv_sleep_ms(FD_IDLE_WAIT_MS);
    long long used = cpu_ticks(S.pid) - t0;
    long long max = sysconf(_SC_CLK_TCK) * FD_IDLE_WAIT_MS / 1000 * FD_CPU_PCT_MAX / 100;
    cr_assert_leq(used, max, "server used %lld ticks idle (max %lld)", used, max);
    cr_assert_geq(info_field(c, "rejected_connections"), FD_EXTRA_CLIENTS);
    for (int i = 0; i < FD_HEADROOM + FD_EXTRA_CLIENTS; i++)
        close(fds[i]);
    cr_assert_eq(prlimit(S.pid, RLIMIT_NOFILE, &old, NULL), 0);
    redisContext *d = srv_connect(&S);
    expect_status(d, "PONG", "PING");
    redisFree(d);
    redisFree(c);
}

/* A framing error ends the connection; bytes from the bad frame on are
 * dropped, not kept as input, so they cannot earn a second error (the
 * query-buffer limit) that the client would read as another reply. The bad
 * frame is a bulk whose trailer is wrong: its bytes arrive in two writes,
 * so the input kept at the error (frame + tail) exceeds max-query. */
enum {
    FRAME_BULK = 60000, /* bytes: <= --max-bulk below */
    FRAME_FIRST = 59000, /* bulk bytes in the first write */
    FRAME_TAIL = 10000, /* junk after the bad trailer */
};

Test(server_net, framing_error_is_the_only_reply_even_with_a_long_tail)
{
    const char *extra[] = {"--max-bulk", "64000", "--max-query-buffer", "65536", NULL};
    srv_start(&S, extra);
    static char first[64 + FRAME_FIRST];
    static char second[FRAME_BULK - FRAME_FIRST + 2 + FRAME_TAIL];
    int hdr = snprintf(first, sizeof first, "*2\r\n$4\r\nECHO\r\n$%d\r\n", FRAME_BULK);
    memset(first + hdr, 'x', FRAME_FIRST);
    memset(second, 'x', sizeof second);
    memcpy(second + FRAME_BULK - FRAME_FIRST, "XX", 2); /* not \r\n */
    int fd = raw_connect(&S);
    raw_send(fd, first, (size_t)hdr + FRAME_FIRST);
    srv_sleep_ms(100); /* kept as an incomplete request */
    raw_send(fd, second, sizeof second);
    char buf[1024] = {0};
    size_t got = raw_recv(fd, buf, sizeof buf - 1, sizeof buf - 1, 2000);
    cr_assert(strncmp(buf, "-ERR Protocol error", 19) == 0, "got '%s'", buf);
    size_t errors = 0;
    for (size_t i = 0; i < got; i++)
        errors += buf[i] == '-';
    cr_assert_eq(errors, 1, "replies after the framing error: '%s'", buf);
    close(fd);
}
