/*
 * test_http_read.h — reading the HTTP suites' JSON answers (yajl trees from
 * tests/test_http_client.h or a handler's body) with an assertion per
 * expectation: a member that is missing or of another type fails the test
 * naming the key. One set for every dialect's suite.
 *
 * Invariant: every reader but jnull asserts the type it returns; numbers
 * are read from their text (exact, never through a double) except jint,
 * which takes yajl's long long for keys that hold small integers.
 */
#ifndef TEST_HTTP_READ_H
#define TEST_HTTP_READ_H

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdlib.h>
#include <yajl/yajl_tree.h>

#include "server/http_json.h"

/* A member of obj, which must be an object (NULL when the key is absent). */
static inline yajl_val jget(yajl_val obj, const char *key)
{
    cr_assert(obj != NULL && YAJL_IS_OBJECT(obj), "not an object (looking for %s)", key);
    return http_json_get(obj, key);
}

static inline const char *jstr(yajl_val obj, const char *key)
{
    yajl_val v = jget(obj, key);
    cr_assert(v != NULL && YAJL_IS_STRING(v), "%s: not a string", key);
    return v->u.string;
}

static inline long long jint(yajl_val obj, const char *key)
{
    yajl_val v = jget(obj, key);
    cr_assert(v != NULL && YAJL_IS_INTEGER(v), "%s: not an integer", key);
    return YAJL_GET_INTEGER(v);
}

/* A number's text as written (exact: no double in between). */
static inline const char *jnum(yajl_val obj, const char *key)
{
    yajl_val v = jget(obj, key);
    cr_assert(v != NULL && YAJL_IS_NUMBER(v), "%s: not a number", key);
    return v->u.number.r;
}

static inline unsigned long long ju64(yajl_val obj, const char *key)
{
    return strtoull(jnum(obj, key), NULL, 10);
}

static inline bool jbool(yajl_val obj, const char *key)
{
    yajl_val v = jget(obj, key);
    cr_assert(v != NULL && (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v)), "%s: not a bool", key);
    return YAJL_IS_TRUE(v);
}

/* Whether the member is there and null (no assertion: a test asks). */
static inline bool jnull(yajl_val obj, const char *key)
{
    yajl_val v = jget(obj, key);
    return v != NULL && YAJL_IS_NULL(v);
}

#endif /* TEST_HTTP_READ_H */
