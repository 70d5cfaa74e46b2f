/*
 * localmx.h - the local MX database (the OpenVMS SET MX_RECORDS table): a
 * file of "domain preference gateway" lines, '#' or '!' starting a comment.
 *
 * Domains and gateways compare case-insensitively (stored in lower case);
 * a domain may have several lines.  Read once; immutable afterwards.
 */
#ifndef MXB_LOCALMX_H
#define MXB_LOCALMX_H

#include <stddef.h>

struct localmx;

struct localmx_entry {
	char *domain;        /* lower case, no trailing dot */
	unsigned preference; /* 0..65535 */
	char *gateway;       /* a host name, lower case */
	int line;            /* where it was read */
};

/*
 * Load `path`.  Returns the database, or NULL after writing
 * "path:line: message" (or "path: why" when unreadable) into err.
 */
struct localmx *localmx_load(const char *path, char *err, size_t errlen);

/* Same from a string (tests); `name` stands for the file name in errors. */
struct localmx *localmx_parse(const char *name, const char *text, char *err, size_t errlen);

void localmx_free(struct localmx *db);

/*
 * The entries for `domain` (lower case), in file order, as a borrowed array
 * in *out; returns how many (0 when none).
 */
size_t localmx_lookup(
    const struct localmx *db, const char *domain, const struct localmx_entry **out);

size_t localmx_count(const struct localmx *db);

#endif
