/* hostsdb.c - the local hosts database (/etc/hosts format). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "resolver/dnsmsg.h"
#include "resolver/hostsdb.h"

#define HOSTSDB_MAX_FILE (64 * 1024 * 1024)

struct hosts_entry {
	char *name; /* lower case */
	struct addr addr;
	size_t order; /* position in the file */
};

struct hostsdb {
	struct hosts_entry *v; /* sorted by name, then order */
	size_t n, cap;
	size_t skipped;
};

void
hostsdb_free(struct hostsdb *db)
{
	if (db == NULL)
		return;
	for (size_t i = 0; i < db->n; i++)
		free(db->v[i].name);
	free(db->v);
	free(db);
}

static int
entry_cmp(const void *a, const void *b)
{
	const struct hosts_entry *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c != 0 ? c : (x->order > y->order) - (x->order < y->order);
}

static int
add(struct hostsdb *db, const char *name, const struct addr *a)
{
	if (db->n == db->cap) {
		size_t cap = db->cap ? db->cap * 2 : 32;
		struct hosts_entry *v = reallocarray(db->v, cap, sizeof(*v));

		if (v == NULL)
			return -1;
		db->v = v;
		db->cap = cap;
	}
	if ((db->v[db->n].name = strdup(name)) == NULL)
		return -1;
	db->v[db->n].addr = *a;
	db->v[db->n].order = db->n;
	db->n++;
	return 0;
}

/* One line: "address name [alias...]"; malformed lines are skipped. */
static int
parse_line(struct hostsdb *db, char *line)
{
	char *save = NULL, *w, name[DNSMSG_NAME_MAX];
	char *hash = strchr(line, '#');
	struct addr a;
	int names = 0;

	if (hash != NULL)
		*hash = '\0';
	if ((w = strtok_r(line, " \t\r\n", &save)) == NULL)
		return 0;
	if (addr_parse(w, 0, &a) == -1) {
		db->skipped++;
		return 0;
	}
	while ((w = strtok_r(NULL, " \t\r\n", &save)) != NULL) {
		if (dnsmsg_name_normalize(w, name, sizeof(name)) == -1)
			continue;
		if (add(db, name, &a) == -1)
			return -1;
		names++;
	}
	if (names == 0)
		db->skipped++;
	return 0;
}

struct hostsdb *
hostsdb_parse(const char *text)
{
	struct hostsdb *db = calloc(1, sizeof(*db));
	char line[2048];

	if (db == NULL)
		return NULL;
	while (*text != '\0') {
		size_t len = strcspn(text, "\n");

		if (len < sizeof(line)) {
			memcpy(line, text, len);
			line[len] = '\0';
			if (parse_line(db, line) == -1) {
				hostsdb_free(db);
				return NULL;
			}
		} else {
			db->skipped++;
		}
		text += len + (text[len] == '\n');
	}
	if (db->n > 0)
		qsort(db->v, db->n, sizeof(*db->v), entry_cmp);
	return db;
}

struct hostsdb *
hostsdb_load(const char *path, char *err, size_t errlen)
{
	size_t len;
	char *text = file_read_all(path, HOSTSDB_MAX_FILE, &len);
	struct hostsdb *db;

	if (text == NULL) {
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
		return NULL;
	}
	db = hostsdb_parse(text);
	if (db == NULL)
		snprintf(err, errlen, "%s: out of memory", path);
	free(text);
	return db;
}

size_t
hostsdb_lookup(const struct hostsdb *db, const char *name_in, struct addr *out, size_t max)
{
	char name[DNSMSG_NAME_MAX];
	size_t lo = 0, hi = db->n, n = 0, total = 0;

	if (dnsmsg_name_normalize(name_in, name, sizeof(name)) == -1)
		return 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(db->v[mid].name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* Two passes: IPv4 first, then IPv6, each in file order. */
	for (int pass = 0; pass < 2; pass++) {
		int fam = pass == 0 ? AF_INET : AF_INET6;

		for (size_t i = lo; i < db->n && strcmp(db->v[i].name, name) == 0; i++) {
			if (addr_family(&db->v[i].addr) != fam)
				continue;
			if (n < max)
				out[n++] = db->v[i].addr;
			total++;
		}
	}
	return total;
}

size_t
hostsdb_skipped(const struct hostsdb *db)
{
	return db->skipped;
}
