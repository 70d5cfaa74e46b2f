/* localmx.c - the local MX database file. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "resolver/dnsmsg.h"
#include "resolver/localmx.h"

/* Longest line we accept: a domain, a number and a host name fit easily. */
#define LOCALMX_LINE_MAX 1024
#define LOCALMX_MAX_FILE (64 * 1024 * 1024)

struct localmx {
	struct localmx_entry *v; /* sorted by domain, then line */
	size_t n, cap;
};

void
localmx_free(struct localmx *db)
{
	if (db == NULL)
		return;
	for (size_t i = 0; i < db->n; i++) {
		free(db->v[i].domain);
		free(db->v[i].gateway);
	}
	free(db->v);
	free(db);
}

static int
entry_cmp(const void *a, const void *b)
{
	const struct localmx_entry *x = a, *y = b;
	int c = strcmp(x->domain, y->domain);

	return c != 0 ? c : (x->line > y->line) - (x->line < y->line);
}

/* Parse one line; 0 = entry or blank, -1 = error written to err. */
static int
parse_line(struct localmx *db, char *line, int lineno, const char *name, char *err, size_t errlen)
{
	char *save = NULL, *w[4], dom[DNSMSG_NAME_MAX], gw[DNSMSG_NAME_MAX], *end;
	const char *cut = strpbrk(line, "#!");
	unsigned long pref;
	int n = 0;

	if (cut != NULL)
		line[cut - line] = '\0';
	for (char *t = strtok_r(line, " \t\r\n", &save); t != NULL && n < 4;
	     t = strtok_r(NULL, " \t\r\n", &save))
		w[n++] = t;
	if (n == 0)
		return 0;
	if (n != 3) {
		snprintf(err, errlen, "%s:%d: expected 'domain preference gateway'", name, lineno);
		return -1;
	}
	errno = 0;
	pref = strtoul(w[1], &end, 10);
	if (errno != 0 || *end != '\0' || w[1][0] == '-' || pref > 65535) {
		snprintf(err, errlen, "%s:%d: preference '%s' is not a number 0..65535", name,
		    lineno, w[1]);
		return -1;
	}
	if (dnsmsg_name_normalize(w[0], dom, sizeof(dom)) == -1 ||
	    dnsmsg_name_normalize(w[2], gw, sizeof(gw)) == -1) {
		snprintf(err, errlen, "%s:%d: '%s' is not a valid domain name", name, lineno,
		    dnsmsg_name_normalize(w[0], dom, sizeof(dom)) == -1 ? w[0] : w[2]);
		return -1;
	}
	if (db->n == db->cap) {
		size_t cap = db->cap ? db->cap * 2 : 16;
		struct localmx_entry *v = reallocarray(db->v, cap, sizeof(*v));

		if (v == NULL)
			goto nomem;
		db->v = v;
		db->cap = cap;
	}
	db->v[db->n].domain = strdup(dom);
	db->v[db->n].gateway = strdup(gw);
	db->v[db->n].preference = (unsigned)pref;
	db->v[db->n].line = lineno;
	db->n++;
	if (db->v[db->n - 1].domain == NULL || db->v[db->n - 1].gateway == NULL)
		goto nomem;
	return 0;
nomem:
	snprintf(err, errlen, "%s:%d: out of memory", name, lineno);
	return -1;
}

struct localmx *
localmx_parse(const char *name, const char *text, char *err, size_t errlen)
{
	struct localmx *db = calloc(1, sizeof(*db));
	char line[LOCALMX_LINE_MAX];
	int lineno = 0;

	if (db == NULL) {
		snprintf(err, errlen, "%s: out of memory", name);
		return NULL;
	}
	while (*text != '\0') {
		size_t len = strcspn(text, "\n");

		lineno++;
		if (len >= sizeof(line)) {
			snprintf(err, errlen, "%s:%d: line too long", name, lineno);
			goto fail;
		}
		memcpy(line, text, len);
		line[len] = '\0';
		text += len + (text[len] == '\n');
		if (parse_line(db, line, lineno, name, err, errlen) == -1)
			goto fail;
	}
	if (db->n > 0)
		qsort(db->v, db->n, sizeof(*db->v), entry_cmp);
	return db;
fail:
	localmx_free(db);
	return NULL;
}

struct localmx *
localmx_load(const char *path, char *err, size_t errlen)
{
	size_t len;
	char *text = file_read_all(path, LOCALMX_MAX_FILE, &len);
	struct localmx *db;

	if (text == NULL) {
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
		return NULL;
	}
	db = localmx_parse(path, text, err, errlen);
	free(text);
	return db;
}

size_t
localmx_lookup(const struct localmx *db, const char *domain, const struct localmx_entry **out)
{
	size_t lo = 0, hi = db->n, first, n = 0;

	while (lo < hi) { /* first entry >= domain */
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(db->v[mid].domain, domain) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	first = lo;
	while (first + n < db->n && strcmp(db->v[first + n].domain, domain) == 0)
		n++;
	*out = n > 0 ? &db->v[first] : NULL;
	return n;
}

size_t
localmx_count(const struct localmx *db)
{
	return db->n;
}
