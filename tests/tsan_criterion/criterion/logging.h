/*
 * criterion/logging.h — TSan-only Criterion shim: cr_log, cr_log_info,
 * cr_log_warn and cr_log_error are defined in the shim's criterion.h, which
 * this header only includes. See ../README.md.
 */
#ifndef TSAN_CRITERION_LOGGING_H
#define TSAN_CRITERION_LOGGING_H
#include "criterion.h"
#endif
