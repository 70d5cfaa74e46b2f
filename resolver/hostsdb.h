/*
 * hostsdb.h - the local hosts database: a file in /etc/hosts format
 * ("address name [alias...]", '#' comments), the last step of MX routing
 * and the fallback for MX targets DNS does not know.
 *
 * Names compare case-insensitively.  Read once; immutable afterwards.
 */
#ifndef MXB_HOSTSDB_H
#define MXB_HOSTSDB_H

#include <stddef.h>

#include "common/addr.h"

struct hostsdb;

/* Load `path`; NULL after writing "path: why" into err.  Lines that do not
 * parse are skipped (as the C library does) and counted. */
struct hostsdb *hostsdb_load(const char *path, char *err, size_t errlen);
/* Same from a string (tests). */
struct hostsdb *hostsdb_parse(const char *text);
void hostsdb_free(struct hostsdb *db);

/*
 * Copy up to `max` addresses of `name` (any case, trailing dot allowed)
 * into out, IPv4 first then IPv6, each in file order, port 0.  Returns how
 * many there are in all (may exceed max).
 */
size_t hostsdb_lookup(const struct hostsdb *db, const char *name, struct addr *out, size_t max);

/* Lines skipped as malformed while reading. */
size_t hostsdb_skipped(const struct hostsdb *db);

#endif
