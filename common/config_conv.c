/*
 * config_conv.c - generic converters of the configuration reader: one
 * statement of the tree into a typed field (numbers, durations, sizes,
 * addresses, lists, enums) and a block through its statement table.
 */
#include "common/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "common/fileio.h"
#include "common/log.h"
#include "common/config_int.h"

/* ---- value conversion ------------------------------------------------- */

/*
 * A decimal number with an optional one-letter unit ("30m", "10M"), the
 * unit looked up in `units` (upper case letters, a multiplier each);
 * `suffix` is a second letter also allowed after the unit ("10MB"), or 0.
 * *out = number * multiplier; 0, or -1 when malformed or above `max`.
 */
struct unit {
	char letter;
	unsigned long long mult;
};

static int
number_with_unit(const char *s, const struct unit *units, char suffix, unsigned long long max,
    unsigned long long *out)
{
	unsigned long long v, mult = 1;
	char *end;

	if (!isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	if (*end != '\0') {
		const struct unit *u = units;

		while (u->letter != '\0' && u->letter != toupper((unsigned char)*end))
			u++;
		if (u->letter == '\0')
			return -1;
		mult = u->mult;
		if (end[1] != '\0' &&
		    !(suffix != 0 && toupper((unsigned char)end[1]) == suffix && end[2] == '\0'))
			return -1;
	}
	if (v > max / mult)
		return -1;
	*out = v * mult;
	return 0;
}

int
config_parse_duration(const char *s, unsigned *out)
{
	static const struct unit units[] = {
	    {'S', 1}, {'M', 60}, {'H', 3600}, {'D', 86400}, {'W', 7 * 86400}, {'\0', 0}};
	unsigned long long v;

	if (number_with_unit(s, units, 0, UINT_MAX, &v) == -1)
		return -1;
	*out = (unsigned)v;
	return 0;
}

int
config_parse_size(const char *s, uint64_t *out)
{
	static const struct unit units[] = {
	    {'K', 1ULL << 10}, {'M', 1ULL << 20}, {'G', 1ULL << 30}, {'\0', 0}};
	unsigned long long v;

	if (number_with_unit(s, units, 'B', UINT64_MAX, &v) == -1)
		return -1;
	*out = v;
	return 0;
}

/*
 * A statement whose words run onto a new line and then into a { } block is
 * two statements with the ';' between them missing ("threads 2" then
 * "rate-limit { ... }"): say so.  0 when that is not the case.
 */
static int
missing_semi_before_block(struct conv *cv, const struct cnode *n)
{
	if (!n->has_block)
		return 0;
	for (size_t i = 1; i < n->nwords; i++)
		if (n->words[i].line > n->words[i - 1].line)
			return config_cv_error(cv, n->file, n->words[i - 1].line,
			    "missing ';' after '%s'", n->words[i - 1].text);
	return 0;
}

/* The statement must have exactly `nargs` values after its name, no block. */
int
config_need_args(struct conv *cv, const struct cnode *n, size_t nargs)
{
	const char *name = n->words[0].text;

	if (missing_semi_before_block(cv, n) == -1)
		return -1;
	if (n->has_block)
		return config_cv_error(
		    cv, n->file, n->line, "'%s' does not take a { } block", name);
	if (n->nwords - 1 < nargs)
		return config_cv_error(cv, n->file, n->line, "'%s' needs %s", name,
		    nargs == 1 ? "a value" : "more values");
	if (n->nwords - 1 > nargs) {
		const struct cword *last = &n->words[nargs], *extra = &n->words[nargs + 1];

		if (extra->line != last->line)
			return config_cv_error(
			    cv, n->file, last->line, "missing ';' after '%s'", last->text);
		return config_cv_error(cv, n->file, extra->line,
		    "unexpected '%s' after the value of '%s'", extra->text, name);
	}
	return 0;
}

int
config_need_block(struct conv *cv, const struct cnode *n, size_t nargs)
{
	const char *name = n->words[0].text;

	if (!n->has_block)
		return config_cv_error(cv, n->file, n->line, "'%s' needs a { } block", name);
	if (n->nwords - 1 != nargs && missing_semi_before_block(cv, n) == -1)
		return -1;
	if (n->nwords - 1 != nargs)
		return config_cv_error(cv, n->file, n->line,
		    nargs == 0 ? "'%s' takes no value before its block"
		               : "'%s' needs a quoted name before its block",
		    name);
	return 0;
}

int
config_parse_uint_word(struct conv *cv, const struct cnode *n, const struct cword *w,
    const struct stmt *s, unsigned long long *out)
{
	unsigned long long v = 0;
	unsigned d;
	uint64_t sz;
	char *end;
	const char *kind = "a number";

	if (s->type == V_DURATION) {
		kind = "a duration (30, 30s, 5m, 2h, 5d)";
		if (config_parse_duration(w->text, &d) == 0)
			v = d;
		else
			goto bad;
	} else if (s->type == V_SIZE) {
		kind = "a size (512, 64K, 10M, 1G)";
		if (config_parse_size(w->text, &sz) == 0)
			v = sz;
		else
			goto bad;
	} else {
		if (!isdigit((unsigned char)w->text[0]))
			goto bad;
		errno = 0;
		v = strtoull(w->text, &end, 10);
		if (errno != 0 || *end != '\0')
			goto bad;
	}
	if (v < s->min || v > s->max)
		return config_cv_error(cv, n->file, w->line, "'%s' %s is out of range (%llu..%llu)",
		    s->name, w->text, s->min, s->max);
	*out = v;
	return 0;
bad:
	return config_cv_error(
	    cv, n->file, w->line, "'%s' wants %s, not '%s'", s->name, kind, w->text);
}

bool
config_is_domain(const char *s)
{
	size_t len = strlen(s), label = 0;

	if (len == 0 || len > 253)
		return false;
	for (const char *p = s; *p; p++) {
		if (*p == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '*')
			return false;
		if (++label > 63)
			return false;
	}
	return true;
}

/* Lower-case a domain name and drop one trailing dot; NULL if invalid. */
char *
config_domain_normalize(struct conv *cv, const char *s)
{
	size_t len = strlen(s);
	char *out;

	if (len > 1 && s[len - 1] == '.')
		len--;
	out = arena_strndup(cv->cfg->arena, s, len);
	if (out == NULL)
		return NULL;
	for (char *p = out; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	if (strcmp(out, ".") != 0 && !config_is_domain(out))
		return NULL;
	return out;
}

/*
 * ADDR [port N] in words[from..to).  Port 0 in the text is refused; a missing
 * port takes `defport`.
 */
int
config_parse_addr_words(struct conv *cv, const struct cnode *n, size_t from, size_t to,
    uint16_t defport, struct addr *out)
{
	const struct cword *w = &n->words[from];
	unsigned long long port = defport;
	static const struct stmt port_stmt = {
	    "port", V_UINT, 0, 1, 65535, 0, NULL, NULL, false, NULL, NULL};

	if (from >= to)
		return config_cv_error(
		    cv, n->file, n->line, "'%s' needs an address", n->words[0].text);
	if (w->quoted || addr_parse(w->text, 0, out) == -1)
		return config_cv_error(
		    cv, n->file, w->line, "'%s' is not an IPv4 or IPv6 address", w->text);
	if (to - from == 1)
		goto done;
	if (to - from == 3 && strcmp(n->words[from + 1].text, "port") == 0) {
		if (config_parse_uint_word(cv, n, &n->words[from + 2], &port_stmt, &port) == -1)
			return -1;
		goto done;
	}
	if (n->words[from + 1].line != w->line)
		return config_cv_error(cv, n->file, w->line, "missing ';' after '%s'", w->text);
	return config_cv_error(cv, n->file, n->words[from + 1].line,
	    "unexpected '%s' after address %s (expected 'port N' or ';')", n->words[from + 1].text,
	    w->text);
done:
	addr_set_port(out, (uint16_t)port);
	return 0;
}

/* A { } list whose entries are single words handed to `fn`. */
int
config_for_each_entry(struct conv *cv, const struct cnode *n,
    int (*fn)(struct conv *, const struct cnode *, void *), void *arg)
{
	if (config_need_block(cv, n, 0) == -1)
		return -1;
	for (const struct cnode *c = n->children; c != NULL; c = c->next) {
		if (c->has_block)
			return config_cv_error(
			    cv, c->file, c->line, "unexpected { } block in '%s'", n->words[0].text);
		if (fn(cv, c, arg) == -1)
			return -1;
	}
	return 0;
}

struct addrs_arg {
	struct config_addrs *list;
	uint16_t port;
};

int
config_addrs_entry(struct conv *cv, const struct cnode *c, void *arg)
{
	struct addrs_arg *aa = arg;
	struct addr *a = arena_push(cv->cfg->arena, &aa->list->v, &aa->list->n, sizeof(*a));

	if (a == NULL)
		return config_cv_error(cv, c->file, c->line, "out of memory");
	return config_parse_addr_words(cv, c, 0, c->nwords, aa->port, a);
}

int
config_cidrs_entry(struct conv *cv, const struct cnode *c, void *arg)
{
	struct config_cidrs *list = arg;
	struct cidr *p;
	const char *text = c->words[0].text;

	if (config_need_args(cv, c, 0) == -1)
		return -1;
	if (strcmp(text, "none") == 0)
		return 0;
	if (strcmp(text, "any") == 0) {
		for (int i = 0; i < 2; i++) {
			p = arena_push(cv->cfg->arena, &list->v, &list->n, sizeof(*p));
			if (p == NULL)
				return config_cv_error(cv, c->file, c->line, "out of memory");
			cidr_parse(i == 0 ? "0.0.0.0/0" : "::/0", p);
		}
		return 0;
	}
	p = arena_push(cv->cfg->arena, &list->v, &list->n, sizeof(*p));
	if (p == NULL)
		return config_cv_error(cv, c->file, c->line, "out of memory");
	if (c->words[0].quoted || cidr_parse(text, p) == -1)
		return config_cv_error(cv, c->file, c->words[0].line,
		    "'%s' is not an address or prefix (like 192.0.2.0/24 or 2001:db8::/32)"
		    " with host bits clear",
		    text);
	return 0;
}

struct strings_arg {
	struct config_strings *list;
	bool domain;
};

int
config_strings_entry(struct conv *cv, const struct cnode *c, void *arg)
{
	struct strings_arg *sa = arg;
	char **p;

	if (config_need_args(cv, c, 0) == -1)
		return -1;
	p = arena_push(cv->cfg->arena, &sa->list->v, &sa->list->n, sizeof(*p));
	if (p == NULL)
		return config_cv_error(cv, c->file, c->line, "out of memory");
	if (sa->domain) {
		*p = config_domain_normalize(cv, c->words[0].text);
		if (*p == NULL)
			return config_cv_error(
			    cv, c->file, c->line, "'%s' is not a domain name", c->words[0].text);
		return 0;
	}
	*p = arena_strndup(cv->cfg->arena, c->words[0].text, strlen(c->words[0].text));
	return *p == NULL ? config_cv_error(cv, c->file, c->line, "out of memory") : 0;
}

int
config_enum_index(const char *const *names, const char *text)
{
	for (int i = 0; names[i] != NULL; i++)
		if (strcasecmp(names[i], text) == 0)
			return i;
	return -1;
}

int
config_conv_enum(struct conv *cv, const struct cnode *n, void *obj, const struct stmt *s)
{
	const struct cword *w = &n->words[1];
	int i = config_enum_index(s->names, w->text);
	char choices[256] = "";

	if (i >= 0) {
		*FIELD(obj, s->off, int) = i;
		return 0;
	}
	for (int k = 0; s->names[k] != NULL; k++) {
		size_t used = strlen(choices);

		snprintf(
		    choices + used, sizeof(choices) - used, "%s%s", k ? ", " : "", s->names[k]);
	}
	return config_cv_error(
	    cv, n->file, w->line, "'%s' wants one of %s, not '%s'", s->name, choices, w->text);
}

int
config_conv_bool(struct conv *cv, const struct cnode *n, void *obj, const struct stmt *s)
{
	static const char *const names[] = {"no", "yes", "false", "true", "off", "on", NULL};
	int i = config_enum_index(names, n->words[1].text);

	if (i < 0)
		return config_cv_error(cv, n->file, n->words[1].line,
		    "'%s' wants yes or no, not '%s'", s->name, n->words[1].text);
	*FIELD(obj, s->off, bool) = (i % 2) == 1;
	return 0;
}

/* `key "NAME";`: the keys are all converted before any block that names one. */
int
config_conv_keyref(struct conv *cv, const struct cnode *n, const struct config_key **slot)
{
	const char *name = n->words[1].text;

	*slot = config_key_find(cv->cfg, name);
	if (*slot == NULL)
		return config_cv_error(cv, n->file, n->words[1].line,
		    "key '%s' is not defined (add: key \"%s\" { algorithm "
		    "hmac-sha256; secret \"...\"; };)",
		    name, name);
	return 0;
}

/* A path, resolved against cv->dir (kept as written while that is NULL). */
int
config_conv_path(struct conv *cv, const struct cnode *n, char **slot)
{
	const char *text = n->words[1].text;

	if (text[0] == '\0')
		return config_cv_error(
		    cv, n->file, n->line, "'%s' wants a non-empty path", n->words[0].text);
	*slot = config_path_join(cv->cfg->arena, cv->dir, text);
	return *slot == NULL ? config_cv_error(cv, n->file, n->line, "out of memory") : 0;
}

/* Scalar values: exactly one word after the name (addresses: ADDR [port N]). */
int
config_conv_scalar(struct conv *cv, const struct cnode *n, void *obj, const struct stmt *s)
{
	unsigned long long v;
	const char *text;

	if (s->type == V_ADDR) {
		if (missing_semi_before_block(cv, n) == -1)
			return -1;
		if (n->has_block)
			return config_cv_error(cv, n->file, n->line,
			    "'%s' takes one address, not a "
			    "{ } list",
			    s->name);
		return config_parse_addr_words(
		    cv, n, 1, n->nwords, s->port, FIELD(obj, s->off, struct addr));
	}
	if (config_need_args(cv, n, 1) == -1)
		return -1;
	text = n->words[1].text;
	switch (s->type) {
	case V_UINT:
	case V_DURATION:
		if (config_parse_uint_word(cv, n, &n->words[1], s, &v) == -1)
			return -1;
		*FIELD(obj, s->off, unsigned) = (unsigned)v;
		return 0;
	case V_SIZE:
		if (config_parse_uint_word(cv, n, &n->words[1], s, &v) == -1)
			return -1;
		*FIELD(obj, s->off, uint64_t) = v;
		return 0;
	case V_PORT:
		if (config_parse_uint_word(cv, n, &n->words[1], s, &v) == -1)
			return -1;
		*FIELD(obj, s->off, uint16_t) = (uint16_t)v;
		return 0;
	case V_BOOL: return config_conv_bool(cv, n, obj, s);
	case V_ENUM: return config_conv_enum(cv, n, obj, s);
	case V_KEYREF:
		return config_conv_keyref(cv, n, FIELD(obj, s->off, const struct config_key *));
	case V_PATH: return config_conv_path(cv, n, FIELD(obj, s->off, char *));
	case V_DOMAIN:
		*FIELD(obj, s->off, char *) = config_domain_normalize(cv, text);
		if (*FIELD(obj, s->off, char *) == NULL)
			return config_cv_error(
			    cv, n->file, n->words[1].line, "'%s' is not a domain name", text);
		return 0;
	case V_STRING:
		*FIELD(obj, s->off, char *) = arena_strndup(cv->cfg->arena, text, strlen(text));
		if (*FIELD(obj, s->off, char *) == NULL)
			return config_cv_error(cv, n->file, n->line, "out of memory");
		return 0;
	default: return config_cv_error(cv, n->file, n->line, "internal: bad statement type");
	}
}

/* Remember where the statement that fills `field` was written (config_where). */
int
config_record_where(struct conv *cv, const struct cnode *n, const void *field)
{
	struct config *cfg = cv->cfg;
	struct config_where *w;

	if (cv->where_file_tmp != n->file) {
		cv->where_file = arena_strndup(cfg->arena, n->file, strlen(n->file));
		cv->where_file_tmp = n->file;
	}
	w = arena_push(cfg->arena, &cfg->where, &cfg->nwhere, sizeof(*w));
	if (w == NULL || cv->where_file == NULL)
		return config_cv_error(cv, n->file, n->line, "out of memory");
	w->field = field;
	w->file = cv->where_file;
	w->line = n->line;
	return 0;
}

int
config_conv_value(struct conv *cv, const struct cnode *n, void *obj, const struct stmt *s)
{
	struct addrs_arg aa = {FIELD(obj, s->off, struct config_addrs), s->port};
	struct strings_arg sa = {FIELD(obj, s->off, struct config_strings), s->type == V_DOMAINS};

	if (s->type != V_CUSTOM && config_record_where(cv, n, FIELD(obj, s->off, void)) == -1)
		return -1;
	switch (s->type) {
	case V_ADDRS:
		aa.list->n = 0; /* replaces the default */
		if (!n->has_block) {
			struct addr *a =
			    arena_push(cv->cfg->arena, &aa.list->v, &aa.list->n, sizeof(*a));

			if (a == NULL)
				return config_cv_error(cv, n->file, n->line, "out of memory");
			return config_parse_addr_words(cv, n, 1, n->nwords, s->port, a);
		}
		return config_for_each_entry(cv, n, config_addrs_entry, &aa);
	case V_CIDRS:
		FIELD(obj, s->off, struct config_cidrs)->n = 0;
		return config_for_each_entry(
		    cv, n, config_cidrs_entry, FIELD(obj, s->off, struct config_cidrs));
	case V_DOMAINS:
	case V_STRINGS: return config_for_each_entry(cv, n, config_strings_entry, &sa);
	case V_CUSTOM: return s->fn(cv, n, obj, s);
	default: return config_conv_scalar(cv, n, obj, s);
	}
}

static size_t
stmt_find(const struct stmt *table, const char *name)
{
	size_t i = 0;

	while (table[i].name != NULL && strcmp(table[i].name, name) != 0)
		i++;
	return i;
}

/*
 * Convert the statements of one block with `table`, passing over those of
 * `skip` (NULL = none): the top level is read in two rounds.
 */
int
config_conv_block_skip(struct conv *cv, const struct cnode *first, const char *where,
    const struct stmt *table, const struct stmt *skip, void *obj)
{
	int seen[64];
	size_t ntable = 0;

	while (table[ntable].name != NULL)
		ntable++;

	if (ntable > sizeof(seen) / sizeof(seen[0]))
		return config_cv_error(cv, cv->cfg->path, 0, "internal: statement table too long");
	memset(seen, 0, sizeof(seen));
	for (const struct cnode *n = first; n != NULL; n = n->next) {
		const char *name = n->words[0].text;
		size_t i;

		if (n->words[0].quoted)
			return config_cv_error(cv, n->file, n->line,
			    "expected a statement name, found the quoted string \"%s\"", name);
		if (skip != NULL && skip[stmt_find(skip, name)].name != NULL)
			continue;
		i = stmt_find(table, name);
		if (i == ntable)
			return config_cv_error(
			    cv, n->file, n->line, "unknown statement '%s' %s", name, where);
		if (seen[i] && !table[i].repeat)
			return config_cv_error(cv, n->file, n->line,
			    "'%s' given twice %s (first on line %d)", name, where, seen[i]);
		seen[i] = n->line;
		if (config_conv_value(cv, n, obj, &table[i]) == -1)
			return -1;
	}
	return 0;
}

/* Convert the statements of one block with its table. */
int
config_conv_block(struct conv *cv, const struct cnode *first, const char *where,
    const struct stmt *table, void *obj)
{
	return config_conv_block_skip(cv, first, where, table, NULL, obj);
}
