/*
 * tenant_io.h — one tenant's data as JSON lines: export to a file, import
 * from one into an empty engine, so an operator can move one shop's data
 * to another server (TENANT.EXPORT / TENANT.IMPORT, docs/TENANTS.md).
 *
 * The format (one JSON object per line, UTF-8, '\n' after each):
 *   {"type":"invcore-tenant","version":1,"tenant":NAME,"exported_at":ISO}
 *   {"type":"location",...every field inv_location_get returns...}
 *   {"type":"default_location","id":ID}             (when one is set)
 *   {"type":"item",...every field inv_item_get returns...}
 *   {"type":"level",...item, location, every named quantity (except
 *       reserved: holds are not exported), policy, preorder limit...}
 *   {"type":"end","lines":N}     N: the lines before this one
 * Ids are JSON numbers (64-bit unsigned; the parser keeps them exact).
 * Locations come before items and items before levels, so an import never
 * meets a reference to something not yet created. A file without its end
 * line, or whose count differs, is truncated and refused.
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
 * INV_OK with *counts; INV_EIO (err: the file and errno's text) when it
 * cannot be written (nothing is left at path); INV_ENOMEM. */
int tenant_export(inv_engine *e, const char *tenant, const char *path, tenant_io_counts *counts,
                  char *err, size_t errlen);

/* Imports path into e, which must be empty (INV_EEXISTS otherwise, nothing
 * read). INV_OK with *counts; INV_EINVALID with "line N: reason" in err for
 * any bad line (nothing changed when it is found before the first change,
 * which is every parse or validation error); INV_EIO when the file cannot
 * be read; an engine error from applying a line (err names the line). */
int tenant_import(inv_engine *e, const char *path, tenant_io_counts *counts, char *err,
                  size_t errlen);

#endif /* INV_SERVER_TENANT_IO_H */
