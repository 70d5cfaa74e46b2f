/* zone_load.c - read a zone file and its $INCLUDEs into RRs with ldns. */
#include "broker/zone.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "broker/zone_int.h"
#include "common/fileio.h"

struct loadctx {
	ldns_rr_list *rrs;
	struct rrsrc *src;
	size_t nsrc, capsrc;
	char **files;
	size_t nfiles;
	ldns_rdf *origin;
	ldns_rdf *prev;
	uint32_t ttl;
	char *err;
	size_t errlen;
};

/* ---- loading ---------------------------------------------------------- */

static int
src_push(struct loadctx *c, const char *file, int line)
{
	if (c->nsrc == c->capsrc) {
		size_t cap = c->capsrc ? c->capsrc * 2 : 64;
		struct rrsrc *v = reallocarray(c->src, cap, sizeof(*v));

		if (v == NULL)
			return -1;
		c->src = v;
		c->capsrc = cap;
	}
	c->src[c->nsrc].file = file;
	c->src[c->nsrc].line = line;
	c->nsrc++;
	return 0;
}

/*
 * The whole file, through fileio's reader: regular files only (a FIFO would
 * block the reload forever, a directory is no zone), at most
 * ZONE_MAX_FILE_SIZE bytes, and a read error is an error, never a zone cut
 * short.  NULL with "file:0: why" in c->err.
 */
static char *
read_zone_file(struct loadctx *c, const char *path, size_t *len)
{
	char *text = file_read_all(path, ZONE_MAX_FILE_SIZE, len);

	if (text != NULL)
		return text;
	if (errno == EINVAL)
		zone_seterr(c->err, c->errlen, "%s:0: cannot read: not a regular file", path);
	else if (errno == EFBIG)
		zone_seterr(c->err, c->errlen, "%s:0: cannot read: larger than %d bytes", path,
		    ZONE_MAX_FILE_SIZE);
	else
		zone_seterr(c->err, c->errlen, "%s:0: cannot read: %s", path, strerror(errno));
	return NULL;
}

static int load_file(struct loadctx *c, const char *path, int depth);

/* Parse the records of one stretch of a file (between $INCLUDE lines). */
static int
load_segment(struct loadctx *c, const char *path, char *text, size_t len, int first_line)
{
	FILE *fp;
	int line = first_line - 1;
	int rc = 0;

	if (len == 0)
		return 0;
	fp = fmemopen(text, len, "r");
	if (fp == NULL) {
		zone_seterr(c->err, c->errlen, "%s:%d: %s", path, first_line, strerror(errno));
		return -1;
	}
	while (!feof(fp)) {
		ldns_rr *rr = NULL;
		ldns_status s = ldns_rr_new_frm_fp_l(&rr, fp, &c->ttl, &c->origin, &c->prev, &line);

		if (s == LDNS_STATUS_OK) {
			if (!ldns_rr_list_push_rr(c->rrs, rr) || src_push(c, path, line) == -1) {
				ldns_rr_free(rr);
				zone_seterr(c->err, c->errlen, "%s:%d: out of memory", path, line);
				rc = -1;
				break;
			}
			continue;
		}
		if (s == LDNS_STATUS_SYNTAX_EMPTY || s == LDNS_STATUS_SYNTAX_TTL ||
		    s == LDNS_STATUS_SYNTAX_ORIGIN)
			continue;
		zone_seterr(c->err, c->errlen, "%s:%d: %s", path, line, ldns_get_errorstr_by_id(s));
		rc = -1;
		break;
	}
	fclose(fp);
	return rc;
}

/* "$INCLUDE file [origin]": load `file` with its own origin, then restore. */
static int
load_include(struct loadctx *c, const char *path, char *args, int lineno, int depth)
{
	char *save = NULL, *file = strtok_r(args, " \t\r;", &save);
	char *org = strtok_r(NULL, " \t\r;", &save);
	char full[PATH_MAX], dir[PATH_MAX];
	ldns_rdf *saved = c->origin;
	int rc;

	if (file == NULL) {
		zone_seterr(c->err, c->errlen, "%s:%d: $INCLUDE without a file name", path, lineno);
		return -1;
	}
	if (file[0] == '"' && file[1] != '\0' && file[strlen(file) - 1] == '"') {
		file[strlen(file) - 1] = '\0';
		file++;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	if (file[0] == '/')
		snprintf(full, sizeof(full), "%s", file);
	else
		snprintf(full, sizeof(full), "%s/%s", dirname(dir), file);
	if (org != NULL) {
		ldns_rdf *o = NULL;

		if (ldns_str2rdf_dname(&o, org) != LDNS_STATUS_OK) {
			zone_seterr(c->err, c->errlen, "%s:%d: bad $INCLUDE origin '%s'", path,
			    lineno, org);
			return -1;
		}
		if (!ldns_dname_str_absolute(org) && saved != NULL &&
		    ldns_dname_cat(o, saved) != LDNS_STATUS_OK) {
			ldns_rdf_deep_free(o);
			zone_seterr(c->err, c->errlen, "%s:%d: bad $INCLUDE origin", path, lineno);
			return -1;
		}
		c->origin = o;
	} else {
		c->origin = saved != NULL ? ldns_rdf_clone(saved) : NULL;
	}
	rc = load_file(c, full, depth + 1);
	if (rc == -1 && strncmp(c->err, full, strlen(full)) == 0 &&
	    strncmp(c->err + strlen(full), ":0:", 3) == 0) {
		char inner[512];

		snprintf(inner, sizeof(inner), "%s", c->err);
		zone_seterr(c->err, c->errlen, "%s:%d: $INCLUDE %s: %s", path, lineno, full, inner);
	}
	ldns_rdf_deep_free(c->origin);
	c->origin = saved;
	return rc;
}

static bool
is_include_line(const char *p)
{
	return strncasecmp(p, "$INCLUDE", 8) == 0 && (p[8] == ' ' || p[8] == '\t');
}

static int
load_file(struct loadctx *c, const char *path, int depth)
{
	size_t len, seg = 0;
	char *text, *p, *keep;
	int line = 1, seg_line = 1;
	int rc = 0;

	if (depth > ZONE_MAX_INCLUDE_DEPTH) {
		zone_seterr(c->err, c->errlen, "%s:0: $INCLUDE nested too deep", path);
		return -1;
	}
	text = read_zone_file(c, path, &len);
	if (text == NULL)
		return -1;
	keep = strdup(path);
	c->files = reallocarray(c->files, c->nfiles + 1, sizeof(char *));
	if (keep == NULL || c->files == NULL) {
		free(keep);
		free(text);
		zone_seterr(c->err, c->errlen, "%s:0: out of memory", path);
		return -1;
	}
	c->files[c->nfiles++] = keep;
	for (p = text; rc == 0 && p < text + len; line++) {
		char *eol = strchr(p, '\n');
		char *next = eol != NULL ? eol + 1 : text + len;

		if (is_include_line(p)) {
			if (eol != NULL)
				*eol = '\0';
			rc = load_segment(c, keep, text + seg, (size_t)(p - text) - seg, seg_line);
			if (rc == 0)
				rc = load_include(c, keep, p + 8, line, depth);
			seg = (size_t)(next - text);
			seg_line = line + 1;
		}
		p = next;
	}
	if (rc == 0)
		rc = load_segment(c, keep, text + seg, len - seg, seg_line);
	free(text);
	return rc;
}

struct zone *
zone_load(const char *origin, const char *file, char *err, size_t errlen)
{
	return zone_load_signed(origin, file, NULL, err, errlen);
}

struct zone *
zone_load_signed(
    const char *origin, const char *file, struct dnssec_keys *keys, char *err, size_t errlen)
{
	struct loadctx c;
	struct zone *z = NULL;

	memset(&c, 0, sizeof(c));
	err[0] = '\0';
	c.err = err;
	c.errlen = errlen;
	c.ttl = 3600;
	c.rrs = ldns_rr_list_new();
	if (c.rrs == NULL || ldns_str2rdf_dname(&c.origin, origin) != LDNS_STATUS_OK) {
		zone_seterr(err, errlen, "%s:0: bad zone name '%s'", file, origin);
		goto done;
	}
	if (load_file(&c, file, 0) == -1)
		goto done;
	z = zone_build_rrs(origin, file, c.rrs, c.src, NULL, 0, keys, err, errlen);
	c.rrs = NULL;
done:
	ldns_rr_list_deep_free(c.rrs);
	ldns_rdf_deep_free(c.origin);
	ldns_rdf_deep_free(c.prev);
	for (size_t i = 0; i < c.nfiles; i++)
		free(c.files[i]);
	free(c.files);
	free(c.src);
	return z;
}
