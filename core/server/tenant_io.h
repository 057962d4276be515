/*
 * tenant_io.h — one tenant's data as JSON lines: export to a file, import
 * from one into an empty engine, so an operator can move one shop's data
 * to another server (TENANT.EXPORT / TENANT.IMPORT, docs/TENANTS.md).
 *
 * The format (one JSON object per line, UTF-8, '\n' after each; every
 * member listed is required, no other is allowed, none twice):
 *   {"type":"invcore-tenant","version":1,"tenant":NAME,"exported_at":ISO}
 *       ISO: "YYYY-MM-DDTHH:MM:SSZ" (UTC); NAME: 1..INV_TENANT_NAME_MAX bytes
 *   {"type":"location","id":ID,"name":S,"address1":S,"address2":S,"city":S,
 *    "province":S,"province_code":S,"country":S,"country_code":S,"zip":S,
 *    "phone":S,"active":B,"priority":I32}
 *   {"type":"default_location","id":ID}            (at most one)
 *   {"type":"item","id":ID,"sku":S,"tracked":B,"cost":S,"requires_shipping":B,
 *    "country_code_of_origin":S,"province_code_of_origin":S,
 *    "harmonized_system_code":S,"variant":S,"product":S,"country_hs_codes":S}
 *   {"type":"level","item":ID,"location":ID,"available":Q,"committed":Q,
 *    "incoming":Q,"damaged":Q,"safety_stock":Q,"quality_control":Q,
 *    "policy":"deny"|"continue","preorder_limit":L}
 *   {"type":"end","lines":N}     N: the lines before this one
 * ID: a JSON integer 0..UINT64_MAX (0 is an id like any other, invcore.h),
 * read and written exactly; S: a string within the field's INV_*_MAX bytes
 * and the engine's syntax for it; B: true / false; I32: an int32; Q: an
 * integer, available -INV_QTY_MAX..INV_QTY_MAX, the others
 * 0..INV_QTY_MAX; L: -1 (no limit) or 0..INV_QTY_MAX, and -1 with "deny".
 * The quantity members are inv_qty_name_str's words. Lines come in this
 * order of types, each type's in ascending id order (levels by item, then
 * location), so an import never meets a reference to something not yet
 * created and duplicates cannot hide. A file without its end line, or
 * whose count differs, is truncated and refused; so is anything after it.
 *
 * Only what import can set again is exported: not the timestamps, the
 * revisions, on_hand (derived) nor reserved: holds are not exported, so a
 * level of a shop with live holds imports with reserved 0 (its on_hand is
 * lower by those units; available is exported as it is). Each quantity in
 * the file is set to exactly that value on import (and read back).
 *
 * Import is into an empty engine only (no items, no locations): the server
 * creates the tenant, imports, and drops it again when the import fails, so
 * a tenant import is all or nothing. Every line is parsed and validated
 * (types, ranges, lengths as the engine's limits, unknown types and members
 * refused) before the first change.
 *
 * Writes go to PATH.tmp, fsynced, renamed to PATH, parent fsynced: an
 * export file that exists is whole.
 */
#ifndef INV_SERVER_TENANT_IO_H
#define INV_SERVER_TENANT_IO_H

#include <stddef.h>
#include <stdint.h>

#include "invcore.h"

#define TENANT_IO_FORMAT_VERSION 1u
#define TENANT_IO_LINE_BYTES_MAX (64u << 10) /* one line of an import file */
#define TENANT_IO_LINES_MAX (1ull << 32) /* lines of one import file */

typedef struct {
    uint64_t locations, items, levels, lines;
} tenant_io_counts;

/* Exports e (tenant name given for the header line) to path, as above.
 * INV_OK with *counts (lines: every line, the header and end included);
 * INV_EIO (err: the file and errno's text) when it cannot be written
 * (nothing is left at path nor at path.tmp); INV_EINVALID (err names the
 * record) for a record import would refuse (a string that is not UTF-8,
 * a quantity outside what can be set), so an export file always imports;
 * INV_ENOMEM. An export during writes is not one instant: each record is
 * one state of it, and the file never names a missing item or location. */
int tenant_export(inv_engine *e, const char *tenant, const char *path, tenant_io_counts *counts,
                  char *err, size_t errlen);

/* Imports path into e, which must be empty (INV_EEXISTS otherwise, nothing
 * read). INV_OK with *counts (as tenant_export's) once the import is
 * durable under e's fsync policy; INV_EINVALID with "line N: reason" in
 * err for any bad line (nothing changed when it is found before the first
 * change, which is every parse or validation error, the engine's own
 * catalog rules included: SKU / variant uniqueness, field syntax); INV_EIO
 * when the file cannot be read; an engine error from applying a line (err
 * names the line). Holds the file's lines in memory while it runs. */
int tenant_import(inv_engine *e, const char *path, tenant_io_counts *counts, char *err,
                  size_t errlen);

#endif /* INV_SERVER_TENANT_IO_H */
