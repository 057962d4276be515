/*
 * test_tenant_io.c — core/server/tenant_io.c: a tenant exported as JSON
 * lines and imported into a fresh engine exports again to the same file
 * (every field set, unusual values included, in memory and on data
 * directories across a reopen; 10,000 levels); every kind of bad file is
 * refused with its line number and leaves the engine empty; an import
 * needs an empty engine; an export that cannot be written leaves nothing.
 */
#include <sys/stat.h>

#include "server/tenant_io.h"
#include "test_util.h"

#define ERR_MAX 512
#define PATH_BYTES 512

/* ---- files ------------------------------------------------------------- */

static char dir[PATH_BYTES];

static void setup(void)
{
    tu_tmpdir(dir, sizeof dir, "tenant-io");
}

static void teardown(void)
{
    tu_remove_tree(dir);
}

TestSuite(tenant_io, .init = setup, .fini = teardown);

static void path_in_dir(char *out, const char *name)
{
    int n = snprintf(out, PATH_BYTES, "%s/%s", dir, name);
    cr_assert(n > 0 && n < PATH_BYTES);
}

static void write_bytes(const char *path, const char *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    cr_assert_eq(fwrite(p, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
}

/* The whole file, NUL-terminated; *len its bytes. */
static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    cr_assert(size >= 0);
    rewind(f);
    char *p = malloc((size_t)size + 1);
    cr_assert_not_null(p);
    cr_assert_eq(fread(p, 1, (size_t)size, f), (size_t)size);
    p[size] = '\0';
    fclose(f);
    *len = (size_t)size;
    return p;
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* The file after its first line (the header, whose exported_at differs). */
static const char *after_header(const char *text)
{
    const char *nl = strchr(text, '\n');
    cr_assert_not_null(nl);
    return nl + 1;
}

static tenant_io_counts export_ok(inv_engine *e, const char *path)
{
    tenant_io_counts c;
    char err[ERR_MAX];
    int rc = tenant_export(e, "shop-1", path, &c, err, sizeof err);
    cr_assert_eq(rc, INV_OK, "export: %s: %s", inv_strerror(rc), err);
    char tmp[PATH_BYTES + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    cr_assert(!exists(tmp), "%s left behind", tmp);
    return c;
}

static tenant_io_counts import_ok(inv_engine *e, const char *path)
{
    tenant_io_counts c;
    char err[ERR_MAX];
    int rc = tenant_import(e, path, &c, err, sizeof err);
    cr_assert_eq(rc, INV_OK, "import: %s: %s", inv_strerror(rc), err);
    return c;
}

/* ---- building a tenant with every kind of field ---------------------------- */

/* Sets quantity q of an existing level to v, as an operator would: units
 * into available, then moved. */
static void set_qty(inv_engine *e, uint64_t item, uint64_t loc, inv_qty_name q, int64_t v)
{
    int rc = inv_level_set(e, item, loc, v, 0, NULL);
    cr_assert_eq(rc, INV_OK, "set: %s", inv_strerror(rc));
    rc = inv_level_move(e, item, loc, v, INV_QTY_AVAILABLE, q, INV_NO_FLOOR, NULL);
    cr_assert_eq(rc, INV_OK, "move to %s: %s", inv_qty_name_str(q), inv_strerror(rc));
}

static void set_policy(inv_engine *e, uint64_t item, uint64_t loc, int64_t limit)
{
    int rc = inv_level_set_policy(e, item, loc, INV_POLICY_CONTINUE, limit);
    cr_assert_eq(rc, INV_OK, "policy: %s", inv_strerror(rc));
}

/* s (cap bytes) filled with n bytes: as many of unit as fit, then 'x'. */
static void fill(char *s, size_t cap, size_t n, const char *unit)
{
    cr_assert(n < cap);
    size_t u = strlen(unit), i = 0;
    while (i + u <= n) {
        memcpy(s + i, unit, u);
        i += u;
    }
    memset(s + i, 'x', n - i);
    s[n] = '\0';
}

#define LOC_BIG ((uint64_t)INT64_MAX + 1) /* above what yajl's integers hold */
#define LOC_OFF UINT64_MAX /* inactive */
#define LOC_DEFAULT 42u

static void put_location(inv_engine *e, uint64_t id, const inv_location_fields *f)
{
    int rc = inv_location_create(e, id, f);
    cr_assert_eq(rc, INV_OK, "location %" PRIu64 ": %s", id, inv_strerror(rc));
}

static void put_item(inv_engine *e, uint64_t id, const inv_item_fields *f)
{
    int rc = inv_item_create(e, id, f);
    cr_assert_eq(rc, INV_OK, "item %" PRIu64 ": %s", id, inv_strerror(rc));
}

static void build_locations(inv_engine *e)
{
    inv_location_fields f;
    memset(&f, 0, sizeof f);
    /* id 0 is an id like any other (invcore.h) */
    snprintf(f.name, sizeof f.name, "Zürich — 倉庫 🚚 \t\x01\"\\/ end");
    fill(f.address1, sizeof f.address1, INV_STR_MAX, "é");
    fill(f.address2, sizeof f.address2, INV_STR_MAX, "🚚");
    fill(f.city, sizeof f.city, INV_STR_MAX, "a");
    snprintf(f.province, sizeof f.province, "Zürich");
    fill(f.province_code, sizeof f.province_code, INV_PROVINCE_CODE_MAX, "Z");
    snprintf(f.country, sizeof f.country, "Schweiz");
    snprintf(f.country_code, sizeof f.country_code, "CH");
    fill(f.zip, sizeof f.zip, INV_STR_MAX, "9");
    fill(f.phone, sizeof f.phone, INV_STR_MAX, "+");
    f.active = true;
    f.priority = INT32_MIN;
    put_location(e, 0, &f);
    memset(&f, 0, sizeof f);
    f.active = true; /* deactivated once its levels exist */
    f.priority = INT32_MAX;
    put_location(e, LOC_OFF, &f);
    memset(&f, 0, sizeof f);
    fill(f.name, sizeof f.name, INV_STR_MAX, "名");
    f.active = true;
    f.priority = -1;
    put_location(e, LOC_BIG, &f);
    memset(&f, 0, sizeof f);
    snprintf(f.name, sizeof f.name, "the default, created last");
    f.active = true;
    put_location(e, LOC_DEFAULT, &f);
    cr_assert_eq(inv_location_set_default(e, LOC_DEFAULT), INV_OK);
}

static void build_items(inv_engine *e)
{
    inv_item_fields f;
    memset(&f, 0, sizeof f);
    fill(f.sku, sizeof f.sku, INV_SKU_MAX, "ß");
    f.tracked = false; /* untracked */
    snprintf(f.cost, sizeof f.cost, "-123456789.123456");
    f.requires_shipping = false;
    snprintf(f.country_code_of_origin, sizeof f.country_code_of_origin, "DE");
    fill(f.province_code_of_origin, sizeof f.province_code_of_origin, INV_PROVINCE_CODE_MAX, "B");
    fill(f.harmonized_system_code, sizeof f.harmonized_system_code, INV_HS_CODE_MAX, "1");
    fill(f.variant, sizeof f.variant, INV_VARIANT_MAX, "v");
    fill(f.product, sizeof f.product, INV_VARIANT_MAX, "p");
    size_t n = 0;
    for (int i = 0; i < INV_COUNTRY_HS_PAIRS_MAX; i++)
        n += (size_t)snprintf(f.country_hs_codes + n, sizeof f.country_hs_codes - n, "%sA%c:%s",
                              i ? "," : "", 'A' + i, "1234567890123456");
    put_item(e, 0, &f);
    memset(&f, 0, sizeof f);
    f.tracked = true;
    f.requires_shipping = true;
    put_item(e, UINT64_MAX, &f);
    for (uint64_t id = 5; id <= 6; id++) {
        memset(&f, 0, sizeof f);
        f.tracked = true;
        f.requires_shipping = id == 5;
        snprintf(f.sku, sizeof f.sku, "SKU-%" PRIu64, id);
        snprintf(f.variant, sizeof f.variant, "V%" PRIu64, id);
        snprintf(f.product, sizeof f.product, "P1");
        snprintf(f.cost, sizeof f.cost, "0.5");
        put_item(e, id, &f);
    }
}

static void build_levels(inv_engine *e)
{
    /* every quantity at its largest */
    cr_assert_eq(inv_level_create(e, 5, LOC_DEFAULT, 0, NULL), INV_OK);
    for (int q = INV_QTY_COMMITTED; q < INV_QTY_NAMES; q++)
        set_qty(e, 5, LOC_DEFAULT, (inv_qty_name)q, INV_QTY_MAX);
    tu_set_level(e, 5, LOC_DEFAULT, INV_QTY_MAX);
    /* the smallest available, oversold without a limit */
    tu_set_level(e, 5, 0, -INV_QTY_MAX);
    set_policy(e, 5, 0, INV_NO_PREORDER_LIMIT);
    tu_set_level(e, 6, 0, 0);
    set_policy(e, 6, 0, 0);
    tu_set_level(e, 6, LOC_DEFAULT, 0);
    set_qty(e, 6, LOC_DEFAULT, INV_QTY_DAMAGED, 3);
    tu_set_level(e, 6, LOC_DEFAULT, 17);
    set_policy(e, 6, LOC_DEFAULT, INV_QTY_MAX);
    /* an untracked item's level */
    tu_set_level(e, 0, LOC_DEFAULT, 0);
    set_qty(e, 0, LOC_DEFAULT, INV_QTY_INCOMING, 4);
    tu_set_level(e, 0, LOC_DEFAULT, 9);
    /* levels at the location deactivated below */
    tu_set_level(e, UINT64_MAX, LOC_OFF, 0);
    set_qty(e, UINT64_MAX, LOC_OFF, INV_QTY_SAFETY_STOCK, 2);
    set_qty(e, UINT64_MAX, LOC_OFF, INV_QTY_QUALITY_CONTROL, 1);
    tu_set_level(e, UINT64_MAX, LOC_OFF, 11);
    set_policy(e, UINT64_MAX, LOC_OFF, 7);
    tu_set_level(e, UINT64_MAX, LOC_BIG, 0);
    inv_location_fields off = {.mask = INV_LOC_ACTIVE, .active = false};
    cr_assert_eq(inv_location_put(e, LOC_OFF, &off), INV_OK);
}

static void build_tenant(inv_engine *e)
{
    build_locations(e);
    build_items(e);
    build_levels(e);
}

/* What the round trip must keep, read through the API. */
static void check_tenant(inv_engine *e)
{
    uint64_t def;
    cr_assert_eq(inv_location_default(e, &def), INV_OK);
    cr_assert_eq(def, LOC_DEFAULT);
    inv_location loc;
    cr_assert_eq(inv_location_get(e, LOC_OFF, &loc), INV_OK);
    cr_assert(!loc.fields.active);
    cr_assert_eq(loc.fields.priority, INT32_MAX);
    cr_assert_eq(inv_location_get(e, 0, &loc), INV_OK);
    cr_assert_str_eq(loc.fields.name, "Zürich — 倉庫 🚚 \t\x01\"\\/ end");
    cr_assert_eq(loc.fields.priority, INT32_MIN);
    inv_item it;
    cr_assert_eq(inv_item_get(e, 0, &it), INV_OK);
    cr_assert(!it.fields.tracked && !it.fields.requires_shipping);
    cr_assert_eq(strlen(it.fields.sku), INV_SKU_MAX);
    cr_assert_eq(strlen(it.fields.country_hs_codes), 12 * 19 + 11);
    inv_level_full lv;
    cr_assert_eq(inv_level_get_full(e, 5, LOC_DEFAULT, &lv), INV_OK);
    for (int q = 0; q < INV_QTY_NAMES; q++)
        cr_assert_eq(lv.qty[q], q == INV_QTY_RESERVED ? 0 : INV_QTY_MAX, "%s",
                     inv_qty_name_str((inv_qty_name)q));
    cr_assert_eq(inv_level_get_full(e, 5, 0, &lv), INV_OK);
    cr_assert_eq(lv.qty[INV_QTY_AVAILABLE], -INV_QTY_MAX);
    cr_assert_eq(lv.policy, INV_POLICY_CONTINUE);
    cr_assert_eq(lv.preorder_limit, INV_NO_PREORDER_LIMIT);
    cr_assert_eq(inv_level_get_full(e, UINT64_MAX, LOC_OFF, &lv), INV_OK);
    cr_assert(!lv.location_active);
    cr_assert_eq(lv.qty[INV_QTY_AVAILABLE], 11);
    cr_assert_eq(lv.qty[INV_QTY_SAFETY_STOCK], 2);
    cr_assert_eq(lv.preorder_limit, 7);
    inv_stats st = tu_stats_of(e);
    cr_assert_eq(st.locations, 4);
    cr_assert_eq(st.items, 4);
    cr_assert_eq(st.levels, 7);
}

/* Two exports' bodies are the same. Not cr_assert_str_eq: Criterion sends
 * an assertion's operands to its runner, and a file of megabytes is over
 * its message size (the worker then waits for an answer forever). */
static void expect_same_text(const char *got, const char *want)
{
    size_t i = 0;
    while (got[i] != '\0' && got[i] == want[i])
        i++;
    /* the line around the difference, from each (short: a message fits) */
    size_t from = i;
    while (from > 0 && i - from < 120 && want[from - 1] != '\n')
        from--;
    cr_assert(got[i] == want[i],
              "the exports differ at byte %zu of %zu / %zu:\n got: %.160s\nwant: %.160s", i,
              strlen(got), strlen(want), got + from, want + from);
}

/* Export a, import into b, export b: the same file after the header. */
static void round_trip(inv_engine *a, inv_engine *b, const char *p1, const char *p2)
{
    tenant_io_counts c1 = export_ok(a, p1);
    tenant_io_counts ci = import_ok(b, p1);
    tenant_io_counts c2 = export_ok(b, p2);
    cr_assert_eq(ci.locations, c1.locations);
    cr_assert_eq(ci.items, c1.items);
    cr_assert_eq(ci.levels, c1.levels);
    cr_assert_eq(ci.lines, c1.lines);
    cr_assert_eq(c2.lines, c1.lines);
    size_t n1, n2;
    char *f1 = read_all(p1, &n1), *f2 = read_all(p2, &n2);
    expect_same_text(after_header(f2), after_header(f1));
    free(f1);
    free(f2);
}

/* ---- round trips -------------------------------------------------------------- */

Test(tenant_io, a_round_trip_keeps_every_field_and_writes_the_same_file)
{
    inv_engine *a = tu_open_dir(NULL, INV_FSYNC_NONE), *b = tu_open_dir(NULL, INV_FSYNC_NONE);
    build_tenant(a);
    check_tenant(a);
    char p1[PATH_BYTES], p2[PATH_BYTES];
    path_in_dir(p1, "a.jsonl");
    path_in_dir(p2, "b.jsonl");
    round_trip(a, b, p1, p2);
    check_tenant(b);
    size_t n;
    char *text = read_all(p1, &n);
    cr_assert_eq(strncmp(text,
                         "{\"type\":\"invcore-tenant\",\"version\":1,\"tenant\":\"shop-1\","
                         "\"exported_at\":\"",
                         60),
                 0, "%.120s", text);
    /* exact ids above INT64_MAX, the quantities by their names */
    cr_assert_not_null(strstr(text, "\"id\":18446744073709551615,"));
    cr_assert_not_null(strstr(text, "\"id\":9223372036854775808,"));
    cr_assert_not_null(strstr(text, "{\"type\":\"default_location\",\"id\":42}\n"));
    for (int q = 0; q < INV_QTY_NAMES; q++) {
        char key[64];
        snprintf(key, sizeof key, "\"%s\":", inv_qty_name_str((inv_qty_name)q));
        cr_assert_eq(strstr(text, key) != NULL, q != INV_QTY_RESERVED, "%s", key);
    }
    cr_assert_not_null(strstr(text, "{\"type\":\"end\",\"lines\":17}\n"));
    free(text);
    inv_close(a);
    inv_close(b);
}

Test(tenant_io, a_round_trip_between_data_directories_survives_a_reopen)
{
    char da[PATH_BYTES], db[PATH_BYTES], p1[PATH_BYTES], p2[PATH_BYTES];
    path_in_dir(da, "a");
    path_in_dir(db, "b");
    path_in_dir(p1, "a.jsonl");
    path_in_dir(p2, "b.jsonl");
    cr_assert_eq(mkdir(da, 0700), 0);
    cr_assert_eq(mkdir(db, 0700), 0);
    inv_engine *a = tu_open_dir(da, INV_FSYNC_ALWAYS), *b = tu_open_dir(db, INV_FSYNC_ALWAYS);
    build_tenant(a);
    export_ok(a, p1);
    import_ok(b, p1);
    inv_close(b);
    b = tu_open_dir(db, INV_FSYNC_ALWAYS); /* recovery: committed derived again */
    check_tenant(b);
    export_ok(b, p2);
    size_t n1, n2;
    char *f1 = read_all(p1, &n1), *f2 = read_all(p2, &n2);
    expect_same_text(after_header(f2), after_header(f1));
    free(f1);
    free(f2);
    inv_close(a);
    inv_close(b);
}

Test(tenant_io, ten_thousand_levels_round_trip)
{
    enum { ITEMS = 100, LOCS = 100 };
    inv_engine *a = tu_open_engine(ITEMS, LOCS, ITEMS * LOCS);
    inv_engine *b = tu_open_dir(NULL, INV_FSYNC_NONE);
    tu_rng rng = tu_rng_seed(14);
    for (size_t i = 0; i < ITEMS; i++)
        for (size_t j = 0; j < LOCS; j++) {
            uint64_t item = tu_item_id(i), loc = tu_loc_id(j);
            tu_set_level(a, item, loc, 0);
            if (tu_rng_below(&rng, 4) == 0)
                set_qty(a, item, loc, INV_QTY_COMMITTED, tu_rng_range(&rng, 1, 50));
            if (tu_rng_below(&rng, 4) == 0)
                set_qty(a, item, loc, INV_QTY_DAMAGED, tu_rng_range(&rng, 1, 50));
            tu_set_level(a, item, loc, tu_rng_range(&rng, -1000, 1000));
            if (tu_rng_below(&rng, 8) == 0)
                set_policy(a, item, loc, tu_rng_range(&rng, -1, 100));
        }
    char p1[PATH_BYTES], p2[PATH_BYTES];
    path_in_dir(p1, "a.jsonl");
    path_in_dir(p2, "b.jsonl");
    round_trip(a, b, p1, p2);
    inv_stats st = tu_stats_of(b);
    cr_assert_eq(st.levels, ITEMS * LOCS);
    cr_assert_eq(st.items, ITEMS);
    cr_assert_eq(st.locations, LOCS);
    inv_close(a);
    inv_close(b);
}

Test(tenant_io, holds_are_not_exported_and_their_units_stay_behind)
{
    inv_engine *a = tu_open_engine(1, 1, 0), *b = tu_open_dir(NULL, INV_FSYNC_NONE);
    uint64_t item = tu_item_id(0), loc = tu_loc_id(0);
    tu_set_level(a, item, loc, 10);
    inv_hold_line line = {item, loc, 3};
    cr_assert_eq(inv_hold_create(a, "h1", 2, 60000, &line, 1, NULL), INV_OK);
    char p1[PATH_BYTES];
    path_in_dir(p1, "a.jsonl");
    export_ok(a, p1);
    import_ok(b, p1);
    inv_level_full lv;
    cr_assert_eq(inv_level_get_full(b, item, loc, &lv), INV_OK);
    cr_assert_eq(lv.qty[INV_QTY_AVAILABLE], 7);
    cr_assert_eq(lv.qty[INV_QTY_RESERVED], 0);
    cr_assert_eq(tu_stats_of(b).holds_active, 0);
    inv_close(a);
    inv_close(b);
}

/* ---- refusals ------------------------------------------------------------------- */

#define H                                                                          \
    "{\"type\":\"invcore-tenant\",\"version\":1,\"tenant\":\"t\",\"exported_at\":" \
    "\"2026-12-06T23:00:00Z\"}\n"
#define LOC_REST                                                                               \
    "\"address1\":\"\",\"address2\":\"\",\"city\":\"\",\"province\":\"\",\"province_code\":"   \
    "\"\",\"country\":\"\",\"country_code\":\"\",\"zip\":\"\",\"phone\":\"\",\"active\":true," \
    "\"priority\":0}\n"
#define L1 "{\"type\":\"location\",\"id\":1,\"name\":\"a\"," LOC_REST
#define ITEM_REST                                                                                \
    "\"tracked\":true,\"cost\":\"\",\"requires_shipping\":true,\"country_code_of_origin\":\"\"," \
    "\"province_code_of_origin\":\"\",\"harmonized_system_code\":\"\",\"variant\":\"\","         \
    "\"product\":\"\",\"country_hs_codes\":\"\"}\n"
#define I7 "{\"type\":\"item\",\"id\":7,\"sku\":\"s\"," ITEM_REST
#define LEVEL_REST                                                                           \
    "\"committed\":0,\"incoming\":0,\"damaged\":0,\"safety_stock\":0,\"quality_control\":0," \
    "\"policy\":\"deny\",\"preorder_limit\":-1}\n"
#define V71 "{\"type\":\"level\",\"item\":7,\"location\":1,\"available\":5," LEVEL_REST
#define E4 "{\"type\":\"end\",\"lines\":4}\n"

/* text (n bytes) is refused at line `line` with why in its reason, and
 * the engine stays empty. */
static void refused_n(const char *text, size_t n, uint64_t line, const char *why)
{
    char path[PATH_BYTES];
    path_in_dir(path, "bad.jsonl");
    write_bytes(path, text, n);
    inv_engine *e = tu_open_dir(NULL, INV_FSYNC_NONE);
    tenant_io_counts c;
    char err[ERR_MAX], want[64];
    int rc = tenant_import(e, path, &c, err, sizeof err);
    cr_assert_eq(rc, INV_EINVALID, "%s: %s", inv_strerror(rc), err);
    snprintf(want, sizeof want, "line %" PRIu64 ": ", line);
    cr_assert_eq(strncmp(err, want, strlen(want)), 0, "want %s, got %s", want, err);
    cr_assert_not_null(strstr(err, why), "want \"%s\" in %s", why, err);
    inv_stats st = tu_stats_of(e);
    cr_assert_eq(st.locations + st.items + st.levels, 0);
    inv_close(e);
}

static void refused(const char *text, uint64_t line, const char *why)
{
    refused_n(text, strlen(text), line, why);
}

Test(tenant_io, the_good_file_the_refusals_start_from_imports)
{
    char path[PATH_BYTES];
    path_in_dir(path, "good.jsonl");
    write_bytes(path, H L1 I7 V71 E4, strlen(H L1 I7 V71 E4));
    inv_engine *e = tu_open_dir(NULL, INV_FSYNC_NONE);
    tenant_io_counts c = import_ok(e, path);
    cr_assert_eq(c.locations, 1);
    cr_assert_eq(c.items, 1);
    cr_assert_eq(c.levels, 1);
    cr_assert_eq(c.lines, 5);
    cr_assert_eq(tu_level_of(e, 7, 1).available, 5);
    inv_close(e);
}

Test(tenant_io, a_truncated_file_or_a_wrong_count_is_refused)
{
    refused(H L1 I7 V71, 5, "truncated");
    refused(H L1 I7 V71 "{\"type\":\"end\",\"lines\":3}\n", 5, "counts 3");
    refused(H L1 I7 V71 "{\"type\":\"end\",\"lines\":4}", 5, "no newline");
    refused(H L1 I7 V71 E4 "\n", 6, "after the end line");
    refused(H L1 I7 V71 E4 E4, 6, "after the end line");
    refused("", 1, "empty file");
}

Test(tenant_io, a_bad_header_is_refused)
{
    refused("{\"type\":\"invcore-tenant\",\"version\":2,\"tenant\":\"t\",\"exported_at\":"
            "\"2026-12-06T23:00:00Z\"}\n" L1 I7 V71 E4,
            1, "version 2");
    refused(L1 H I7 V71 E4, 1, "must come first");
    refused(H H L1 I7 V71 E4, 2, "second header");
    refused("{\"type\":\"invcore-tenant\",\"version\":1,\"tenant\":\"t\",\"exported_at\":"
            "\"yesterday\"}\n" L1 I7 V71 E4,
            1, "exported_at");
}

Test(tenant_io, unknown_types_and_members_are_refused)
{
    refused(H "{\"type\":\"warehouse\",\"id\":1}\n" L1 I7 V71 E4, 2, "unknown type");
    refused(H "{\"id\":1}\n" L1 I7 V71 E4, 2, "\"type\"");
    refused(H
            "{\"type\":\"location\",\"id\":1,\"color\":\"red\",\"name\":\"a\"," LOC_REST I7 V71 E4,
            2, "unknown member \"color\"");
    refused(H "{\"type\":\"location\",\"id\":1,\"id\":2,\"name\":\"a\"," LOC_REST I7 V71 E4, 2,
            "\"id\" twice");
    refused(
        H
        "{\"type\":\"location\",\"type\":\"location\",\"id\":1,\"name\":\"a\"," LOC_REST I7 V71 E4,
        2, "\"type\" twice");
    refused(H "{\"type\":\"location\",\"id\":1,\"name\":\"a\",\"priority\":0}\n" I7 V71 E4, 2,
            "missing");
    refused(H "[1,2]\n" L1 I7 V71 E4, 2, "not a JSON object");
}

Test(tenant_io, members_of_the_wrong_type_or_range_are_refused)
{
    refused(H L1 "{\"type\":\"item\",\"id\":7,\"sku\":\"s\",\"tracked\":\"yes\","
                 "\"cost\":\"\",\"requires_shipping\":true,\"country_code_of_origin\":\"\","
                 "\"province_code_of_origin\":\"\",\"harmonized_system_code\":\"\",\"variant\":"
                 "\"\",\"product\":\"\",\"country_hs_codes\":\"\"}\n" V71 E4,
            3, "\"tracked\": true or false");
    refused(H L1 "{\"type\":\"item\",\"id\":\"7\",\"sku\":\"s\"," ITEM_REST V71 E4, 3,
            "\"id\": an integer");
    refused(H L1 "{\"type\":\"item\",\"id\":7,\"sku\":7," ITEM_REST V71 E4, 3, "\"sku\": a string");
    refused(H "{\"type\":\"location\",\"id\":-1,\"name\":\"a\"," LOC_REST I7 V71 E4, 2, "\"id\"");
    refused(H
            "{\"type\":\"location\",\"id\":18446744073709551616,\"name\":\"a\"," LOC_REST I7 V71 E4,
            2, "\"id\"");
    refused(H "{\"type\":\"location\",\"id\":1.5,\"name\":\"a\"," LOC_REST I7 V71 E4, 2, "\"id\"");
    refused(H "{\"type\":\"location\",\"id\":1e3,\"name\":\"a\"," LOC_REST I7 V71 E4, 2, "\"id\"");
    refused(H L1 I7
            "{\"type\":\"level\",\"item\":7,\"location\":1,\"available\":1000000001," LEVEL_REST E4,
            4, "\"available\"");
    refused(H L1 I7
            "{\"type\":\"level\",\"item\":7,\"location\":1,\"available\":0,\"committed\":-1,"
            "\"incoming\":0,\"damaged\":0,\"safety_stock\":0,\"quality_control\":0,"
            "\"policy\":\"deny\",\"preorder_limit\":-1}\n" E4,
            4, "\"committed\"");
    refused(H L1 I7 "{\"type\":\"level\",\"item\":7,\"location\":1,\"available\":0,\"committed\":0,"
                    "\"incoming\":0,\"damaged\":0,\"safety_stock\":0,\"quality_control\":0,"
                    "\"policy\":\"maybe\",\"preorder_limit\":-1}\n" E4,
            4, "\"policy\"");
    refused(H L1 I7 "{\"type\":\"level\",\"item\":7,\"location\":1,\"available\":0,\"committed\":0,"
                    "\"incoming\":0,\"damaged\":0,\"safety_stock\":0,\"quality_control\":0,"
                    "\"policy\":\"deny\",\"preorder_limit\":5}\n" E4,
            4, "\"preorder_limit\"");
    refused(H "{\"type\":\"location\",\"id\":1,\"name\":\"a\",\"address1\":\"\",\"address2\":\"\","
              "\"city\":\"\",\"province\":\"\",\"province_code\":\"\",\"country\":\"\","
              "\"country_code\":\"\",\"zip\":\"\",\"phone\":\"\",\"active\":true,"
              "\"priority\":2147483648}\n" I7 V71 E4,
            2, "\"priority\"");
}

/* A file whose location 1 has name (n bytes of c) or whose item 7 has sku
 * or variant of that length. */
static void refused_long(const char *member, size_t n, uint64_t line)
{
    char *s = malloc(n + 1);
    cr_assert_not_null(s);
    memset(s, 'n', n);
    s[n] = '\0';
    size_t cap = n + 4096;
    char *text = malloc(cap);
    cr_assert_not_null(text);
    if (strcmp(member, "name") == 0)
        snprintf(text, cap, H "{\"type\":\"location\",\"id\":1,\"name\":\"%s\"," LOC_REST I7 V71 E4,
                 s);
    else if (strcmp(member, "sku") == 0)
        snprintf(text, cap, H L1 "{\"type\":\"item\",\"id\":7,\"sku\":\"%s\"," ITEM_REST V71 E4, s);
    else
        snprintf(text, cap,
                 H L1 "{\"type\":\"item\",\"id\":7,\"sku\":\"s\",\"tracked\":true,\"cost\":\"\","
                      "\"requires_shipping\":true,\"country_code_of_origin\":\"\","
                      "\"province_code_of_origin\":\"\",\"harmonized_system_code\":\"\","
                      "\"variant\":\"%s\",\"product\":\"\",\"country_hs_codes\":\"\"}\n" V71 E4,
                 s);
    refused(text, line, n > TENANT_IO_LINE_BYTES_MAX ? "longer than 65536" : "longer than");
    free(text);
    free(s);
}

Test(tenant_io, over_long_strings_and_lines_are_refused)
{
    refused_long("name", INV_STR_MAX + 1, 2);
    refused_long("sku", INV_SKU_MAX + 1, 3);
    refused_long("variant", INV_VARIANT_MAX + 1, 3);
    refused_long("name", TENANT_IO_LINE_BYTES_MAX + 10, 2);
}

Test(tenant_io, references_order_and_duplicates_are_checked)
{
    refused(H L1 I7 "{\"type\":\"level\",\"item\":8,\"location\":1,\"available\":5," LEVEL_REST E4,
            4, "item 8");
    refused(H L1 I7 "{\"type\":\"level\",\"item\":7,\"location\":2,\"available\":5," LEVEL_REST E4,
            4, "location 2");
    refused(H L1 I7 I7 V71 "{\"type\":\"end\",\"lines\":5}\n", 4, "item 7 twice");
    refused(H L1 L1 I7 V71 "{\"type\":\"end\",\"lines\":5}\n", 3, "location 1 twice");
    refused(H L1 I7 V71 V71 "{\"type\":\"end\",\"lines\":5}\n", 5, "twice");
    refused(H I7 L1 V71 E4, 3, "after type \"item\"");
    refused(H L1 "{\"type\":\"default_location\",\"id\":2}\n" I7 V71
                 "{\"type\":\"end\",\"lines\":5}\n",
            3, "not in the file");
    refused(H "{\"type\":\"location\",\"id\":2,\"name\":\"a\"," LOC_REST L1 I7 V71
              "{\"type\":\"end\",\"lines\":5}\n",
            3, "after a higher id");
}

Test(tenant_io, the_engines_own_rules_refuse_before_any_change)
{
    /* cost syntax and SKU uniqueness are the engine's: a scratch engine
     * applies the catalog first */
    refused(H L1 "{\"type\":\"item\",\"id\":7,\"sku\":\"s\",\"tracked\":true,\"cost\":\"1.2.3\","
                 "\"requires_shipping\":true,\"country_code_of_origin\":\"\","
                 "\"province_code_of_origin\":\"\",\"harmonized_system_code\":\"\",\"variant\":"
                 "\"\",\"product\":\"\",\"country_hs_codes\":\"\"}\n" V71 E4,
            3, "INVALID");
    refused(H L1 I7 "{\"type\":\"item\",\"id\":8,\"sku\":\"s\"," ITEM_REST V71
                    "{\"type\":\"end\",\"lines\":5}\n",
            4, "EXISTS");
}

Test(tenant_io, garbage_nul_bytes_and_bad_utf8_are_refused)
{
    refused(H "\x80\xff garbage {\n" L1 I7 V71 E4, 2, "invalid JSON");
    refused(H "{\"type\":\"location\",\"id\":1,\"name\":\"a\\u0000b\"," LOC_REST I7 V71 E4, 2,
            "NUL");
    static const char nul[] = H "{\"type\":\"location\",\"id\":1,\"name\":\"a\0b\"," LOC_REST;
    size_t n = sizeof nul - 1;
    char *text = malloc(n + 4096);
    cr_assert_not_null(text);
    memcpy(text, nul, n);
    memcpy(text + n, I7 V71 E4, strlen(I7 V71 E4));
    refused_n(text, n + strlen(I7 V71 E4), 2, "NUL");
    free(text);
    /* an overlong '/' that yajl's lexer lets through */
    refused(H "{\"type\":\"location\",\"id\":1,\"name\":\"\xc0\xaf\"," LOC_REST I7 V71 E4, 2, "");
    refused(H "\n" L1 I7 V71 E4, 2, "empty line");
}

Test(tenant_io, import_needs_an_empty_engine)
{
    char path[PATH_BYTES];
    path_in_dir(path, "good.jsonl");
    write_bytes(path, H L1 I7 V71 E4, strlen(H L1 I7 V71 E4));
    inv_engine *e = tu_open_engine(0, 1, 0);
    tenant_io_counts c;
    char err[ERR_MAX];
    cr_assert_eq(tenant_import(e, path, &c, err, sizeof err), INV_EEXISTS, "%s", err);
    inv_stats st = tu_stats_of(e);
    cr_assert_eq(st.locations, 1);
    cr_assert_eq(st.items + st.levels, 0);
    inv_close(e);
    e = tu_open_engine(1, 0, 0);
    cr_assert_eq(tenant_import(e, path, &c, err, sizeof err), INV_EEXISTS, "%s", err);
    inv_close(e);
    e = tu_open_dir(NULL, INV_FSYNC_NONE);
    path_in_dir(path, "missing.jsonl");
    cr_assert_eq(tenant_import(e, path, &c, err, sizeof err), INV_EIO, "%s", err);
    cr_assert_not_null(strstr(err, "missing.jsonl"), "%s", err);
    inv_close(e);
}

/* ---- exports that cannot be written ------------------------------------------------ */

Test(tenant_io, an_export_that_cannot_be_written_leaves_nothing)
{
    inv_engine *e = tu_open_engine(2, 2, 0);
    tenant_io_counts c;
    char err[ERR_MAX], path[PATH_BYTES], tmp[PATH_BYTES + 8];
    /* a directory that does not exist */
    path_in_dir(path, "no-such-dir/a.jsonl");
    cr_assert_eq(tenant_export(e, "t", path, &c, err, sizeof err), INV_EIO);
    cr_assert_not_null(strstr(err, "no-such-dir"), "%s", err);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    cr_assert(!exists(tmp) && !exists(path));
    /* a path that is a directory: written, then the rename fails */
    path_in_dir(path, "a-directory");
    cr_assert_eq(mkdir(path, 0700), 0);
    cr_assert_eq(tenant_export(e, "t", path, &c, err, sizeof err), INV_EIO);
    cr_assert_not_null(strstr(err, "rename"), "%s", err);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    cr_assert(!exists(tmp), "%s left behind", tmp);
    inv_close(e);
}

Test(tenant_io, an_export_refuses_what_import_could_not_take_back)
{
    inv_engine *e = tu_open_engine(0, 0, 0);
    inv_location_fields f;
    memset(&f, 0, sizeof f);
    snprintf(f.name, sizeof f.name, "bad \xff byte");
    f.active = true;
    put_location(e, 3, &f);
    tenant_io_counts c;
    char err[ERR_MAX], path[PATH_BYTES], tmp[PATH_BYTES + 8];
    path_in_dir(path, "a.jsonl");
    cr_assert_eq(tenant_export(e, "t", path, &c, err, sizeof err), INV_EINVALID);
    cr_assert_not_null(strstr(err, "location 3"), "%s", err);
    cr_assert_not_null(strstr(err, "not UTF-8"), "%s", err);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    cr_assert(!exists(tmp) && !exists(path));
    inv_close(e);
}
