/*
 * test_http_docs.c — docs/HTTP.md lists every route of every dialect's
 * routing table (http_route.h), as a row "| METHOD | `pattern` | dialect |"
 * of its route table, and has a section per dialect: a route added to a
 * table without its documentation fails here.
 *
 * The doc is read relative to this source file (tests/../docs/HTTP.md), so
 * the suite runs from the repository's root, as make test runs it.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/http_route.h"

#define DOC_PATH "docs/HTTP.md"
#define DOC_BYTES_MAX (1u << 20)
#define ROW_MAX 512

static char *read_doc(void)
{
    FILE *f = fopen(DOC_PATH, "rb");
    cr_assert_not_null(f, "%s: run the suite from the repository's root", DOC_PATH);
    char *text = malloc(DOC_BYTES_MAX + 1);
    cr_assert_not_null(text);
    size_t n = fread(text, 1, DOC_BYTES_MAX, f);
    cr_assert(feof(f), "%s is over %u bytes", DOC_PATH, DOC_BYTES_MAX);
    fclose(f);
    text[n] = '\0';
    return text;
}

static const char *method_name(http_method m)
{
    switch (m) {
    case HTTP_GET:
        return "GET";
    case HTTP_HEAD:
        return "HEAD";
    case HTTP_POST:
        return "POST";
    case HTTP_PUT:
        return "PUT";
    case HTTP_PATCH:
        return "PATCH";
    case HTTP_DELETE:
        return "DELETE";
    case HTTP_OPTIONS:
        return "OPTIONS";
    }
    return "?";
}

static const char *const dialect_names[HTTP_DIALECTS] = {
    [HTTP_DIALECT_COMMON] = "common",   [HTTP_DIALECT_SHOPLAZZA] = "shoplazza",
    [HTTP_DIALECT_SHOPIFY] = "shopify", [HTTP_DIALECT_CONNECTOR] = "connector",
    [HTTP_DIALECT_WIX] = "wix",
};

static void expect_rows(const char *doc, const http_route *routes, size_t n, size_t *seen)
{
    for (size_t i = 0; i < n; i++) {
        char row[ROW_MAX];
        cr_assert_lt(routes[i].dialect, HTTP_DIALECTS);
        snprintf(row, sizeof row, "| %s | `%s` | %s |", method_name(routes[i].method),
                 routes[i].pattern, dialect_names[routes[i].dialect]);
        cr_expect_not_null(strstr(doc, row), "docs/HTTP.md lacks the route row %s", row);
        (*seen)++;
    }
}

Test(http_docs, every_route_of_every_table_is_a_row_of_the_route_table)
{
    char *doc = read_doc();
    size_t seen = 0;
    expect_rows(doc, http_common_routes, http_common_routes_n, &seen);
    expect_rows(doc, http_shoplazza_routes, http_shoplazza_routes_n, &seen);
    expect_rows(doc, http_shopify_routes, http_shopify_routes_n, &seen);
    expect_rows(doc, http_connector_routes, http_connector_routes_n, &seen);
    expect_rows(doc, http_wix_routes, http_wix_routes_n, &seen);
    cr_assert_gt(seen, 0);
    free(doc);
}

Test(http_docs, every_dialect_has_its_section)
{
    char *doc = read_doc();
    static const char *const sections[] = {
        "\n## Shoplazza\n", "\n## Shopify\n",      "\n## Connector (seed 001)\n",
        "\n## Wix\n",       "\n## GET /healthz\n", "\n## GET /metrics\n"};
    for (size_t i = 0; i < sizeof sections / sizeof *sections; i++)
        cr_expect_not_null(strstr(doc, sections[i]), "no section%s", sections[i]);
    free(doc);
}
