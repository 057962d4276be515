/*
 * error.c — the messages and Redis-style codes of the INV_E* errors
 * (include/invcore.h). Both come from the one list INV_ERRNO_MAP, so they
 * cannot drift from the enum. No state; a bottom module: every module may
 * report an error without calling up into engine.c.
 */
#include "invcore.h"

const char *inv_strerror(int rc)
{
    switch (rc) {
    case INV_OK:
        return "ok";
#define INV_ERRNO_MSG(name, value, code, msg) \
    case INV_##name:                          \
        return msg;
        INV_ERRNO_MAP(INV_ERRNO_MSG)
#undef INV_ERRNO_MSG
    default:
        return "unknown error";
    }
}

const char *inv_errcode(int rc)
{
    switch (rc) {
#define INV_ERRNO_CODE(name, value, code, msg) \
    case INV_##name:                           \
        return code;
        INV_ERRNO_MAP(INV_ERRNO_CODE)
#undef INV_ERRNO_CODE
    default:
        return "ERR";
    }
}
