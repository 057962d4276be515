/*
 * criterion/assert.h — TSan-only Criterion shim: the cr_assert_* and
 * cr_expect_* macros are defined in the shim's criterion.h, which this
 * header only includes. See ../README.md.
 */
#ifndef TSAN_CRITERION_ASSERT_H
#define TSAN_CRITERION_ASSERT_H
#include "criterion.h"
#endif
