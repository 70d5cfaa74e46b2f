/*
 * config.c - reader for the named.conf-style configuration.
 *
 * Three stages: a lexer turns text into words, braces and semicolons; a
 * parser builds a tree of statements (words plus an optional block), following
 * `include`; converters walk the tree with one table per block and fill the
 * typed structs of config.h.  The top level is converted in two rounds, keys
 * and options first, so a key reference or a relative path is resolved where
 * it is read: nothing keeps a pointer into an array that is still growing.  Everything the result
 * owns lives in one arena, so config_free is a single walk and no partial state survives an error.
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

#define CONFIG_MAX_FILE    (4 * 1024 * 1024)
#define CONFIG_MAX_INCLUDE 8
#define CONFIG_MAX_MEMBERS 10000
#define CONFIG_MAX_WORDS   64

/* Rating points a challenger must win by: near-equal members (a few points
 * apart from noise) then keep their ranks, and the answer does not churn. */
#define CONFIG_DEFAULT_HYSTERESIS "5"

/* queue-min-free not written: 1.5 x max-message-size once that is known. */
#define QUEUE_MIN_FREE_UNSET UINT64_MAX

/* ---- arena ------------------------------------------------------------ */

struct arena_chunk {
	struct arena_chunk *next;
	size_t used, size;
	max_align_t data[];
};

struct config_arena {
	struct arena_chunk *head;
};

static void *
arena_alloc(struct config_arena *a, size_t n)
{
	struct arena_chunk *c = a->head;
	size_t align = sizeof(max_align_t);
	void *p;

	n = (n + align - 1) / align * align;
	if (c == NULL || c->size - c->used < n) {
		size_t size = n > 16384 ? n : 16384;

		c = calloc(1, sizeof(*c) + size);
		if (c == NULL)
			return NULL;
		c->size = size;
		c->next = a->head;
		a->head = c;
	}
	p = (char *)c->data + c->used;
	c->used += n;
	return p;
}

static char *
arena_strndup(struct config_arena *a, const char *s, size_t n)
{
	char *p = arena_alloc(a, n + 1);

	if (p != NULL) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

static void
arena_free(struct config_arena *a)
{
	struct arena_chunk *c, *next;

	if (a == NULL)
		return;
	for (c = a->head; c != NULL; c = next) {
		next = c->next;
		free(c);
	}
	free(a);
}

/* Append one zeroed element to an arena array (*v, *n), doubling capacity
 * at powers of two; returns the new element or NULL. */
static void *
arena_push(struct config_arena *a, void *vp, size_t *n, size_t elem)
{
	void **v = vp;
	size_t count = *n;

	if (count == 0 || (count & (count - 1)) == 0) {
		void *nv = arena_alloc(a, (count ? count * 2 : 1) * elem);

		if (nv == NULL)
			return NULL;
		if (count)
			memcpy(nv, *v, count * elem);
		*v = nv;
	}
	(*n)++;
	return (char *)*v + count * elem;
}

/* ---- errors ----------------------------------------------------------- */

struct conv {
	struct config *cfg;
	struct config_arena *tmp; /* the statement tree; freed after */
	char *err;
	size_t errlen;
	bool failed;
	int include_depth;
	const char *base_dir; /* for relative includes and the default directory */
	/* Base of relative paths: NULL while `options` and `key` are converted
	 * (paths are kept as written, options_finish resolves them), then
	 * options.directory.  Keys are final by then too, so every reference is
	 * resolved where it is read: no pointer into a growing array is kept. */
	const char *dir;
	const char *where_file_tmp; /* last statement file seen, in tmp */
	const char *where_file;     /* its copy in the configuration's arena */
};

static int __attribute__((format(printf, 4, 5)))
cv_error(struct conv *cv, const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (cv->failed)
		return -1;
	cv->failed = true;
	/* Line 0: the message is about the file itself, not a statement. */
	n = line > 0 ? snprintf(cv->err, cv->errlen, "%s:%d: ", file, line)
	             : snprintf(cv->err, cv->errlen, "%s: ", file);
	if (n >= 0 && (size_t)n < cv->errlen) {
		va_start(ap, fmt);
		vsnprintf(cv->err + n, cv->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* ---- lexer ------------------------------------------------------------ */

enum tok_type { TOK_EOF, TOK_WORD, TOK_STRING, TOK_LBRACE, TOK_RBRACE, TOK_SEMI, TOK_ERROR };

struct lexer {
	struct conv *cv;
	const char *file;
	const char *p, *end;
	int line;
};

struct token {
	enum tok_type type;
	const char *text;
	size_t len;
	int line;
};

/* Skip blanks and the three comment styles; -1 on an unterminated comment. */
static int
lex_skip(struct lexer *lx)
{
	while (lx->p < lx->end) {
		char c = *lx->p;

		if (c == '\n') {
			lx->line++;
			lx->p++;
		} else if (isspace((unsigned char)c)) {
			lx->p++;
		} else if (c == '#' || (c == '/' && lx->p + 1 < lx->end && lx->p[1] == '/')) {
			while (lx->p < lx->end && *lx->p != '\n')
				lx->p++;
		} else if (c == '/' && lx->p + 1 < lx->end && lx->p[1] == '*') {
			int start = lx->line;

			lx->p += 2;
			while (lx->p + 1 < lx->end && !(lx->p[0] == '*' && lx->p[1] == '/')) {
				if (*lx->p == '\n')
					lx->line++;
				lx->p++;
			}
			if (lx->p + 1 >= lx->end)
				return cv_error(lx->cv, lx->file, start, "unterminated /* comment");
			lx->p += 2;
		} else
			break;
	}
	return 0;
}

/* A quoted string: escapes \" and \\ are kept in the text and undone later. */
static void
lex_string(struct lexer *lx, struct token *t)
{
	const char *s = ++lx->p;

	while (lx->p < lx->end && *lx->p != '"' && *lx->p != '\n') {
		if (*lx->p == '\\' && lx->p + 1 < lx->end && lx->p[1] != '\n')
			lx->p++;
		lx->p++;
	}
	if (lx->p >= lx->end || *lx->p != '"') {
		cv_error(lx->cv, lx->file, t->line, "unterminated string");
		t->type = TOK_ERROR;
		return;
	}
	t->type = TOK_STRING;
	t->text = s;
	t->len = (size_t)(lx->p - s);
	lx->p++;
}

static bool
is_word_char(const struct lexer *lx, const char *p)
{
	char c = *p;

	if (isspace((unsigned char)c) || c == '{' || c == '}' || c == ';' || c == '"' || c == '#' ||
	    c == '\0')
		return false;
	if (c == '/' && p + 1 < lx->end && (p[1] == '/' || p[1] == '*'))
		return false;
	return isprint((unsigned char)c);
}

static void
lex_next(struct lexer *lx, struct token *t)
{
	memset(t, 0, sizeof(*t));
	if (lex_skip(lx) == -1) {
		t->type = TOK_ERROR;
		return;
	}
	t->line = lx->line;
	if (lx->p >= lx->end) {
		t->type = TOK_EOF;
		return;
	}
	switch (*lx->p) {
	case '{':
		t->type = TOK_LBRACE;
		lx->p++;
		return;
	case '}':
		t->type = TOK_RBRACE;
		lx->p++;
		return;
	case ';':
		t->type = TOK_SEMI;
		lx->p++;
		return;
	case '"': lex_string(lx, t); return;
	default: break;
	}
	t->text = lx->p;
	while (lx->p < lx->end && is_word_char(lx, lx->p))
		lx->p++;
	t->len = (size_t)(lx->p - t->text);
	if (t->len == 0) {
		cv_error(lx->cv, lx->file, t->line, "unexpected character 0x%02x",
		    (unsigned char)*lx->p);
		t->type = TOK_ERROR;
		return;
	}
	t->type = TOK_WORD;
}

/* ---- statement tree --------------------------------------------------- */

struct cword {
	char *text;
	bool quoted;
	int line;
};

struct cnode {
	const char *file;
	int line;
	struct cword *words;
	size_t nwords;
	bool has_block;
	struct cnode *children;
	struct cnode *next;
};

static int parse_file(
    struct conv *cv, const char *path, int line_from, const char *from, struct cnode ***tail);

/* Undo the escapes of a quoted string. */
static char *
unescape(struct config_arena *a, const char *s, size_t len)
{
	char *out = arena_alloc(a, len + 1), *o = out;

	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\\' && i + 1 < len)
			i++;
		*o++ = s[i];
	}
	*o = '\0';
	return out;
}

static int parse_block(
    struct conv *cv, struct lexer *lx, struct cnode ***tail, bool top, int open_line);

static int
node_add_word(struct conv *cv, struct lexer *lx, struct cnode *n, const struct token *t)
{
	struct cword *w;

	if (n->nwords >= CONFIG_MAX_WORDS)
		return cv_error(cv, lx->file, t->line, "statement too long (missing ';'?)");
	w = arena_push(cv->tmp, &n->words, &n->nwords, sizeof(*w));
	if (w == NULL)
		return cv_error(cv, lx->file, t->line, "out of memory");
	w->quoted = t->type == TOK_STRING;
	w->text = w->quoted ? unescape(cv->tmp, t->text, t->len)
	                    : arena_strndup(cv->tmp, t->text, t->len);
	w->line = t->line;
	return w->text == NULL ? cv_error(cv, lx->file, t->line, "out of memory") : 0;
}

/*
 * One statement: words, an optional { block }, then ';'.  `first` is the
 * token already read.  Returns 0 and sets *out, or -1.
 */
static int
parse_statement(struct conv *cv, struct lexer *lx, struct token *first, struct cnode **out)
{
	struct cnode *n = arena_alloc(cv->tmp, sizeof(*n));
	struct token t = *first;
	struct cnode **child_tail;

	if (n == NULL)
		return cv_error(cv, lx->file, t.line, "out of memory");
	n->file = lx->file;
	n->line = t.line;
	for (;;) {
		if (t.type == TOK_WORD || t.type == TOK_STRING) {
			if (node_add_word(cv, lx, n, &t) == -1)
				return -1;
		} else if (t.type == TOK_LBRACE) {
			int open_line = t.line;

			child_tail = &n->children;
			n->has_block = true;
			if (parse_block(cv, lx, &child_tail, false, open_line) == -1)
				return -1;
			lex_next(lx, &t);
			if (t.type != TOK_SEMI)
				return cv_error(cv, lx->file, lx->line,
				    "missing ';' after '}' of '%s'", n->words[0].text);
			break;
		} else if (t.type == TOK_SEMI) {
			break;
		} else if (t.type == TOK_ERROR) {
			return -1;
		} else {
			const struct cword *last = &n->words[n->nwords - 1];

			return cv_error(
			    cv, lx->file, last->line, "missing ';' after '%s'", last->text);
		}
		lex_next(lx, &t);
	}
	*out = n;
	return 0;
}

/* Statements until '}' (or EOF at top level), appended at **tail. */
static int
parse_block(struct conv *cv, struct lexer *lx, struct cnode ***tail, bool top, int open_line)
{
	struct token t;
	struct cnode *n = NULL;

	for (;;) {
		lex_next(lx, &t);
		switch (t.type) {
		case TOK_ERROR: return -1;
		case TOK_EOF:
			if (top)
				return 0;
			return cv_error(cv, lx->file, open_line, "'{' is never closed");
		case TOK_RBRACE:
			if (!top)
				return 0;
			return cv_error(cv, lx->file, t.line, "unexpected '}'");
		case TOK_SEMI: continue; /* an empty statement is harmless */
		case TOK_LBRACE: return cv_error(cv, lx->file, t.line, "unexpected '{'");
		default: break;
		}
		if (parse_statement(cv, lx, &t, &n) == -1)
			return -1;
		if (top && n->nwords == 2 && strcmp(n->words[0].text, "include") == 0 &&
		    !n->has_block) {
			if (parse_file(cv, n->words[1].text, n->line, lx->file, tail) == -1)
				return -1;
			continue;
		}
		**tail = n;
		*tail = &n->next;
	}
}

static int
parse_text(struct conv *cv, const char *file, const char *text, size_t len, struct cnode ***tail)
{
	struct lexer lx = {cv, file, text, text + len, 1};

	if (memchr(text, '\0', len) != NULL)
		return cv_error(cv, file, 1, "file contains a NUL byte");
	return parse_block(cv, &lx, tail, true, 1);
}

/* Resolve `path` against `dir` into the arena (absolute paths unchanged). */
static char *
path_join(struct config_arena *a, const char *dir, const char *path)
{
	size_t dl, pl = strlen(path);
	char *out;

	if (path[0] == '/' || dir == NULL || dir[0] == '\0')
		return arena_strndup(a, path, pl);
	/* "./x" against a folder is "folder/x": messages name real paths. */
	while (path[0] == '.' && path[1] == '/' && path[2] != '\0') {
		path += 2;
		while (path[0] == '/')
			path++;
	}
	pl = strlen(path);
	if (strcmp(dir, ".") == 0)
		return arena_strndup(a, path, pl);
	dl = strlen(dir);
	out = arena_alloc(a, dl + pl + 2);
	if (out != NULL)
		snprintf(out, dl + pl + 2, "%s%s%s", dir, dir[dl - 1] == '/' ? "" : "/", path);
	return out;
}

static int
parse_file(struct conv *cv, const char *path, int line_from, const char *from, struct cnode ***tail)
{
	char why[128];
	char *text, *full;
	size_t len;
	int rc;

	if (cv->include_depth >= CONFIG_MAX_INCLUDE)
		return cv_error(cv, from, line_from, "includes nested too deeply");
	full = path_join(cv->tmp, from ? cv->base_dir : NULL, path);
	if (full == NULL)
		return cv_error(cv, from ? from : path, line_from, "out of memory");
	text = file_read_all(full, CONFIG_MAX_FILE, &len);
	if (text == NULL) {
		snprintf(why, sizeof(why), "%s",
		    errno == EINVAL      ? "not a regular file"
		        : errno == EFBIG ? "file too large"
		                         : strerror(errno));
		if (from == NULL)
			return cv_error(cv, full, 0, "cannot read: %s", why);
		return cv_error(cv, from, line_from, "cannot read '%s': %s", full, why);
	}
	cv->include_depth++;
	rc = parse_text(cv, full, text, len, tail);
	cv->include_depth--;
	free(text);
	return rc;
}

/* ---- value conversion ------------------------------------------------- */

int
config_parse_duration(const char *s, unsigned *out)
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
		switch (tolower((unsigned char)*end)) {
		case 's': mult = 1; break;
		case 'm': mult = 60; break;
		case 'h': mult = 3600; break;
		case 'd': mult = 86400; break;
		case 'w': mult = 7 * 86400; break;
		default: return -1;
		}
		if (end[1] != '\0')
			return -1;
	}
	if (v > UINT_MAX / mult)
		return -1;
	*out = (unsigned)(v * mult);
	return 0;
}

int
config_parse_size(const char *s, uint64_t *out)
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
		switch (toupper((unsigned char)*end)) {
		case 'K': mult = 1ULL << 10; break;
		case 'M': mult = 1ULL << 20; break;
		case 'G': mult = 1ULL << 30; break;
		default: return -1;
		}
		if (end[1] != '\0' && !(toupper((unsigned char)end[1]) == 'B' && end[2] == '\0'))
			return -1;
	}
	if (v > UINT64_MAX / mult)
		return -1;
	*out = v * mult;
	return 0;
}

enum vtype {
	V_UINT,     /* integer in [min, max] */
	V_DURATION, /* seconds in [min, max] */
	V_SIZE,     /* bytes (uint64_t) in [min, max] */
	V_BOOL,
	V_STRING,  /* char *, quoted or bare */
	V_PATH,    /* char *, resolved against the directory */
	V_DOMAIN,  /* char *, lower case, no trailing dot */
	V_PORT,    /* uint16_t */
	V_ADDR,    /* struct addr: ADDR [port N] */
	V_ADDRS,   /* struct config_addrs: one inline or a { } list */
	V_CIDRS,   /* struct config_cidrs: { } list, any, none */
	V_DOMAINS, /* struct config_strings of domain names */
	V_STRINGS, /* struct config_strings */
	V_ENUM,    /* int index into names */
	V_KEYREF,  /* const struct config_key * */
	V_CUSTOM,
};

struct stmt;
struct pr;
typedef int (*stmt_fn)(struct conv *, const struct cnode *, void *obj, const struct stmt *);
typedef void (*stmt_print_fn)(struct pr *, const void *obj, const struct stmt *);

/*
 * One statement of a block: how it is read, its default and its range.
 * These tables are the one source of both: set_defaults applies `def`,
 * conversion enforces [min, max], -p prints from them and --dump-grammar
 * hands them to the documentation check.
 */
struct stmt {
	const char *name;
	enum vtype type;
	size_t off;
	unsigned long long min, max; /* V_UINT, V_DURATION, V_SIZE, V_PORT */
	uint16_t port;               /* V_ADDR, V_ADDRS default port */
	const char *const *names;    /* V_ENUM, NULL-terminated */
	stmt_fn fn;                  /* V_CUSTOM */
	bool repeat;                 /* may appear more than once */
	/* The default as it would be written in the file (NULL = none); one in
	 * parentheses is a description of a default that code derives. */
	const char *def;
	stmt_print_fn print; /* V_CUSTOM: -p */
};

#define FIELD(obj, off, type) ((type *)((char *)(obj) + (off)))

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
			return cv_error(cv, n->file, n->words[i - 1].line, "missing ';' after '%s'",
			    n->words[i - 1].text);
	return 0;
}

/* The statement must have exactly `nargs` values after its name, no block. */
static int
need_args(struct conv *cv, const struct cnode *n, size_t nargs)
{
	const char *name = n->words[0].text;

	if (missing_semi_before_block(cv, n) == -1)
		return -1;
	if (n->has_block)
		return cv_error(cv, n->file, n->line, "'%s' does not take a { } block", name);
	if (n->nwords - 1 < nargs)
		return cv_error(cv, n->file, n->line, "'%s' needs %s", name,
		    nargs == 1 ? "a value" : "more values");
	if (n->nwords - 1 > nargs) {
		const struct cword *last = &n->words[nargs], *extra = &n->words[nargs + 1];

		if (extra->line != last->line)
			return cv_error(
			    cv, n->file, last->line, "missing ';' after '%s'", last->text);
		return cv_error(cv, n->file, extra->line, "unexpected '%s' after the value of '%s'",
		    extra->text, name);
	}
	return 0;
}

static int
need_block(struct conv *cv, const struct cnode *n, size_t nargs)
{
	const char *name = n->words[0].text;

	if (!n->has_block)
		return cv_error(cv, n->file, n->line, "'%s' needs a { } block", name);
	if (n->nwords - 1 != nargs && missing_semi_before_block(cv, n) == -1)
		return -1;
	if (n->nwords - 1 != nargs)
		return cv_error(cv, n->file, n->line,
		    nargs == 0 ? "'%s' takes no value before its block"
		               : "'%s' needs a quoted name before its block",
		    name);
	return 0;
}

static int
parse_uint_word(struct conv *cv, const struct cnode *n, const struct cword *w, const struct stmt *s,
    unsigned long long *out)
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
		return cv_error(cv, n->file, w->line, "'%s' %s is out of range (%llu..%llu)",
		    s->name, w->text, s->min, s->max);
	*out = v;
	return 0;
bad:
	return cv_error(cv, n->file, w->line, "'%s' wants %s, not '%s'", s->name, kind, w->text);
}

static bool
is_domain(const char *s)
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
static char *
domain_normalize(struct conv *cv, const char *s)
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
	if (strcmp(out, ".") != 0 && !is_domain(out))
		return NULL;
	return out;
}

/*
 * ADDR [port N] in words[from..to).  Port 0 in the text is refused; a missing
 * port takes `defport`.
 */
static int
parse_addr_words(struct conv *cv, const struct cnode *n, size_t from, size_t to, uint16_t defport,
    struct addr *out)
{
	const struct cword *w = &n->words[from];
	unsigned long long port = defport;
	static const struct stmt port_stmt = {
	    "port", V_UINT, 0, 1, 65535, 0, NULL, NULL, false, NULL, NULL};

	if (from >= to)
		return cv_error(cv, n->file, n->line, "'%s' needs an address", n->words[0].text);
	if (w->quoted || addr_parse(w->text, 0, out) == -1)
		return cv_error(
		    cv, n->file, w->line, "'%s' is not an IPv4 or IPv6 address", w->text);
	if (to - from == 1)
		goto done;
	if (to - from == 3 && strcmp(n->words[from + 1].text, "port") == 0) {
		if (parse_uint_word(cv, n, &n->words[from + 2], &port_stmt, &port) == -1)
			return -1;
		goto done;
	}
	if (n->words[from + 1].line != w->line)
		return cv_error(cv, n->file, w->line, "missing ';' after '%s'", w->text);
	return cv_error(cv, n->file, n->words[from + 1].line,
	    "unexpected '%s' after address %s (expected 'port N' or ';')", n->words[from + 1].text,
	    w->text);
done:
	addr_set_port(out, (uint16_t)port);
	return 0;
}

/* A { } list whose entries are single words handed to `fn`. */
static int
for_each_entry(struct conv *cv, const struct cnode *n,
    int (*fn)(struct conv *, const struct cnode *, void *), void *arg)
{
	if (need_block(cv, n, 0) == -1)
		return -1;
	for (const struct cnode *c = n->children; c != NULL; c = c->next) {
		if (c->has_block)
			return cv_error(
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

static int
addrs_entry(struct conv *cv, const struct cnode *c, void *arg)
{
	struct addrs_arg *aa = arg;
	struct addr *a = arena_push(cv->cfg->arena, &aa->list->v, &aa->list->n, sizeof(*a));

	if (a == NULL)
		return cv_error(cv, c->file, c->line, "out of memory");
	return parse_addr_words(cv, c, 0, c->nwords, aa->port, a);
}

static int
cidrs_entry(struct conv *cv, const struct cnode *c, void *arg)
{
	struct config_cidrs *list = arg;
	struct cidr *p;
	const char *text = c->words[0].text;

	if (need_args(cv, c, 0) == -1)
		return -1;
	if (strcmp(text, "none") == 0)
		return 0;
	if (strcmp(text, "any") == 0) {
		for (int i = 0; i < 2; i++) {
			p = arena_push(cv->cfg->arena, &list->v, &list->n, sizeof(*p));
			if (p == NULL)
				return cv_error(cv, c->file, c->line, "out of memory");
			cidr_parse(i == 0 ? "0.0.0.0/0" : "::/0", p);
		}
		return 0;
	}
	p = arena_push(cv->cfg->arena, &list->v, &list->n, sizeof(*p));
	if (p == NULL)
		return cv_error(cv, c->file, c->line, "out of memory");
	if (c->words[0].quoted || cidr_parse(text, p) == -1)
		return cv_error(cv, c->file, c->words[0].line,
		    "'%s' is not an address or prefix (like 192.0.2.0/24 or 2001:db8::/32)"
		    " with host bits clear",
		    text);
	return 0;
}

struct strings_arg {
	struct config_strings *list;
	bool domain;
};

static int
strings_entry(struct conv *cv, const struct cnode *c, void *arg)
{
	struct strings_arg *sa = arg;
	char **p;

	if (need_args(cv, c, 0) == -1)
		return -1;
	p = arena_push(cv->cfg->arena, &sa->list->v, &sa->list->n, sizeof(*p));
	if (p == NULL)
		return cv_error(cv, c->file, c->line, "out of memory");
	if (sa->domain) {
		*p = domain_normalize(cv, c->words[0].text);
		if (*p == NULL)
			return cv_error(
			    cv, c->file, c->line, "'%s' is not a domain name", c->words[0].text);
		return 0;
	}
	*p = arena_strndup(cv->cfg->arena, c->words[0].text, strlen(c->words[0].text));
	return *p == NULL ? cv_error(cv, c->file, c->line, "out of memory") : 0;
}

static int
enum_index(const char *const *names, const char *text)
{
	for (int i = 0; names[i] != NULL; i++)
		if (strcasecmp(names[i], text) == 0)
			return i;
	return -1;
}

static int
conv_enum(struct conv *cv, const struct cnode *n, void *obj, const struct stmt *s)
{
	const struct cword *w = &n->words[1];
	int i = enum_index(s->names, w->text);
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
	return cv_error(
	    cv, n->file, w->line, "'%s' wants one of %s, not '%s'", s->name, choices, w->text);
}

static int
conv_bool(struct conv *cv, const struct cnode *n, void *obj, const struct stmt *s)
{
	static const char *const names[] = {"no", "yes", "false", "true", "off", "on", NULL};
	int i = enum_index(names, n->words[1].text);

	if (i < 0)
		return cv_error(cv, n->file, n->words[1].line, "'%s' wants yes or no, not '%s'",
		    s->name, n->words[1].text);
	*FIELD(obj, s->off, bool) = (i % 2) == 1;
	return 0;
}

/* `key "NAME";`: the keys are all converted before any block that names one. */
static int
conv_keyref(struct conv *cv, const struct cnode *n, const struct config_key **slot)
{
	const char *name = n->words[1].text;

	*slot = config_key_find(cv->cfg, name);
	if (*slot == NULL)
		return cv_error(cv, n->file, n->words[1].line,
		    "key '%s' is not defined (add: key \"%s\" { algorithm "
		    "hmac-sha256; secret \"...\"; };)",
		    name, name);
	return 0;
}

/* A path, resolved against cv->dir (kept as written while that is NULL). */
static int
conv_path(struct conv *cv, const struct cnode *n, char **slot)
{
	const char *text = n->words[1].text;

	if (text[0] == '\0')
		return cv_error(
		    cv, n->file, n->line, "'%s' wants a non-empty path", n->words[0].text);
	*slot = path_join(cv->cfg->arena, cv->dir, text);
	return *slot == NULL ? cv_error(cv, n->file, n->line, "out of memory") : 0;
}

/* Scalar values: exactly one word after the name (addresses: ADDR [port N]). */
static int
conv_scalar(struct conv *cv, const struct cnode *n, void *obj, const struct stmt *s)
{
	unsigned long long v;
	const char *text;

	if (s->type == V_ADDR) {
		if (missing_semi_before_block(cv, n) == -1)
			return -1;
		if (n->has_block)
			return cv_error(cv, n->file, n->line,
			    "'%s' takes one address, not a "
			    "{ } list",
			    s->name);
		return parse_addr_words(
		    cv, n, 1, n->nwords, s->port, FIELD(obj, s->off, struct addr));
	}
	if (need_args(cv, n, 1) == -1)
		return -1;
	text = n->words[1].text;
	switch (s->type) {
	case V_UINT:
	case V_DURATION:
		if (parse_uint_word(cv, n, &n->words[1], s, &v) == -1)
			return -1;
		*FIELD(obj, s->off, unsigned) = (unsigned)v;
		return 0;
	case V_SIZE:
		if (parse_uint_word(cv, n, &n->words[1], s, &v) == -1)
			return -1;
		*FIELD(obj, s->off, uint64_t) = v;
		return 0;
	case V_PORT:
		if (parse_uint_word(cv, n, &n->words[1], s, &v) == -1)
			return -1;
		*FIELD(obj, s->off, uint16_t) = (uint16_t)v;
		return 0;
	case V_BOOL: return conv_bool(cv, n, obj, s);
	case V_ENUM: return conv_enum(cv, n, obj, s);
	case V_KEYREF: return conv_keyref(cv, n, FIELD(obj, s->off, const struct config_key *));
	case V_PATH: return conv_path(cv, n, FIELD(obj, s->off, char *));
	case V_DOMAIN:
		*FIELD(obj, s->off, char *) = domain_normalize(cv, text);
		if (*FIELD(obj, s->off, char *) == NULL)
			return cv_error(
			    cv, n->file, n->words[1].line, "'%s' is not a domain name", text);
		return 0;
	case V_STRING:
		*FIELD(obj, s->off, char *) = arena_strndup(cv->cfg->arena, text, strlen(text));
		if (*FIELD(obj, s->off, char *) == NULL)
			return cv_error(cv, n->file, n->line, "out of memory");
		return 0;
	default: return cv_error(cv, n->file, n->line, "internal: bad statement type");
	}
}

/* Remember where the statement that fills `field` was written (config_where). */
static int
record_where(struct conv *cv, const struct cnode *n, const void *field)
{
	struct config *cfg = cv->cfg;
	struct config_where *w;

	if (cv->where_file_tmp != n->file) {
		cv->where_file = arena_strndup(cfg->arena, n->file, strlen(n->file));
		cv->where_file_tmp = n->file;
	}
	w = arena_push(cfg->arena, &cfg->where, &cfg->nwhere, sizeof(*w));
	if (w == NULL || cv->where_file == NULL)
		return cv_error(cv, n->file, n->line, "out of memory");
	w->field = field;
	w->file = cv->where_file;
	w->line = n->line;
	return 0;
}

static int
conv_value(struct conv *cv, const struct cnode *n, void *obj, const struct stmt *s)
{
	struct addrs_arg aa = {FIELD(obj, s->off, struct config_addrs), s->port};
	struct strings_arg sa = {FIELD(obj, s->off, struct config_strings), s->type == V_DOMAINS};

	if (s->type != V_CUSTOM && record_where(cv, n, FIELD(obj, s->off, void)) == -1)
		return -1;
	switch (s->type) {
	case V_ADDRS:
		aa.list->n = 0; /* replaces the default */
		if (!n->has_block) {
			struct addr *a =
			    arena_push(cv->cfg->arena, &aa.list->v, &aa.list->n, sizeof(*a));

			if (a == NULL)
				return cv_error(cv, n->file, n->line, "out of memory");
			return parse_addr_words(cv, n, 1, n->nwords, s->port, a);
		}
		return for_each_entry(cv, n, addrs_entry, &aa);
	case V_CIDRS:
		FIELD(obj, s->off, struct config_cidrs)->n = 0;
		return for_each_entry(cv, n, cidrs_entry, FIELD(obj, s->off, struct config_cidrs));
	case V_DOMAINS:
	case V_STRINGS: return for_each_entry(cv, n, strings_entry, &sa);
	case V_CUSTOM: return s->fn(cv, n, obj, s);
	default: return conv_scalar(cv, n, obj, s);
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
static int
conv_block_skip(struct conv *cv, const struct cnode *first, const char *where,
    const struct stmt *table, const struct stmt *skip, void *obj)
{
	int seen[64];
	size_t ntable = 0;

	while (table[ntable].name != NULL)
		ntable++;

	if (ntable > sizeof(seen) / sizeof(seen[0]))
		return cv_error(cv, cv->cfg->path, 0, "internal: statement table too long");
	memset(seen, 0, sizeof(seen));
	for (const struct cnode *n = first; n != NULL; n = n->next) {
		const char *name = n->words[0].text;
		size_t i;

		if (n->words[0].quoted)
			return cv_error(cv, n->file, n->line,
			    "expected a statement name, found the quoted string \"%s\"", name);
		if (skip != NULL && skip[stmt_find(skip, name)].name != NULL)
			continue;
		i = stmt_find(table, name);
		if (i == ntable)
			return cv_error(
			    cv, n->file, n->line, "unknown statement '%s' %s", name, where);
		if (seen[i] && !table[i].repeat)
			return cv_error(cv, n->file, n->line,
			    "'%s' given twice %s (first on line %d)", name, where, seen[i]);
		seen[i] = n->line;
		if (conv_value(cv, n, obj, &table[i]) == -1)
			return -1;
	}
	return 0;
}

/* Convert the statements of one block with its table. */
static int
conv_block(struct conv *cv, const struct cnode *first, const char *where, const struct stmt *table,
    void *obj)
{
	return conv_block_skip(cv, first, where, table, NULL, obj);
}

/* ---- statement tables ------------------------------------------------- */

#define OFF(type, field) offsetof(struct type, field)
/* Numbers, durations and sizes: default `def` (as written), range lo..hi. */
#define U(name, type, field, def, lo, hi)                                                          \
	{                                                                                          \
		name, V_UINT, OFF(type, field), lo, hi, 0, NULL, NULL, false, def, NULL            \
	}
#define D(name, type, field, def, lo, hi)                                                          \
	{                                                                                          \
		name, V_DURATION, OFF(type, field), lo, hi, 0, NULL, NULL, false, def, NULL        \
	}
#define Z(name, type, field, def, lo, hi)                                                          \
	{                                                                                          \
		name, V_SIZE, OFF(type, field), lo, hi, 0, NULL, NULL, false, def, NULL            \
	}
#define T(name, vt, type, field, def)                                                              \
	{                                                                                          \
		name, vt, OFF(type, field), 0, 0, 0, NULL, NULL, false, def, NULL                  \
	}
#define A(name, vt, type, field, port, def)                                                        \
	{                                                                                          \
		name, vt, OFF(type, field), 0, 0, port, NULL, NULL, false, def, NULL               \
	}
#define E(name, type, field, names, def)                                                           \
	{                                                                                          \
		name, V_ENUM, OFF(type, field), 0, 0, 0, names, NULL, false, def, NULL             \
	}
#define P(name, type, field, def)                                                                  \
	{                                                                                          \
		name, V_PORT, OFF(type, field), 1, 65535, 0, NULL, NULL, false, def, NULL          \
	}
#define C(name, fn, rep, def, print)                                                               \
	{                                                                                          \
		name, V_CUSTOM, 0, 0, 0, 0, NULL, fn, rep, def, print                              \
	}
#define END                                                                                        \
	{                                                                                          \
		NULL, 0, 0, 0, 0, 0, NULL, NULL, false, NULL, NULL                                 \
	}

static int table_defaults(struct config *cfg, const struct stmt *table, void *obj);
static void broker_zone_print(struct pr *, const void *, const struct stmt *);
static void broker_rrl_print(struct pr *, const void *, const struct stmt *);
static void cluster_members_print(struct pr *, const void *, const struct stmt *);
static void cluster_failover_print(struct pr *, const void *, const struct stmt *);
static void cluster_health_print(struct pr *, const void *, const struct stmt *);
static void resolver_gateway_print(struct pr *, const void *, const struct stmt *);

static const char *const log_levels[] = {"error", "warning", "info", "debug", NULL};

static const struct stmt options_table[] = {
    T("directory", V_PATH, config_options, directory, "(the configuration file's folder)"),
    T("user", V_STRING, config_options, user, NULL),
    T("pid-file", V_PATH, config_options, pid_file, NULL),
    T("syslog", V_BOOL, config_options, syslog, "no"),
    E("log-level", config_options, log_level, log_levels, "info"), END};

static const char *const hmac_names[] = {
    "hmac-md5", "hmac-sha1", "hmac-sha224", "hmac-sha256", "hmac-sha384", "hmac-sha512", NULL};

struct key_build {
	struct config_key *key;
	const char *secret_text;
	bool has_algorithm;
};

static int
key_secret_cb(struct conv *cv, const struct cnode *n, void *obj, const struct stmt *s)
{
	struct key_build *kb = obj;

	(void)s;
	if (need_args(cv, n, 1) == -1)
		return -1;
	kb->secret_text = n->words[1].text;
	return 0;
}

static int
key_algorithm_cb(struct conv *cv, const struct cnode *n, void *obj, const struct stmt *s)
{
	struct key_build *kb = obj;
	static const struct stmt alg = {
	    "algorithm", V_ENUM, 0, 0, 0, 0, hmac_names, NULL, false, NULL, NULL};
	int idx = 0;

	(void)s;
	if (need_args(cv, n, 1) == -1 || conv_enum(cv, n, &idx, &alg) == -1)
		return -1;
	kb->key->algorithm = (enum config_hmac)idx;
	kb->key->algorithm_name = hmac_names[idx];
	kb->has_algorithm = true;
	return 0;
}

static const struct stmt key_table[] = {C("algorithm", key_algorithm_cb, false, "(required)", NULL),
    C("secret", key_secret_cb, false, "(required)", NULL), END};

/* Decode base64 into the arena; -1 when it is not base64 or is empty. */
static int
base64_decode(struct config_arena *a, const char *text, uint8_t **out, size_t *outlen)
{
	size_t len = strlen(text), cap = len / 4 * 3 + 3;
	uint8_t *buf = arena_alloc(a, cap + 1);
	int n;

	if (buf == NULL || len == 0 || len % 4 != 0)
		return -1;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)text[i]) && text[i] != '+' && text[i] != '/' &&
		    !(text[i] == '=' && i >= len - 2))
			return -1;
	n = EVP_DecodeBlock(buf, (const unsigned char *)text, (int)len);
	if (n < 0)
		return -1;
	if (len >= 1 && text[len - 1] == '=')
		n--;
	if (len >= 2 && text[len - 2] == '=')
		n--;
	if (n <= 0)
		return -1;
	*out = buf;
	*outlen = (size_t)n;
	return 0;
}

static int
top_key_cb(struct conv *cv, const struct cnode *n, void *obj, const struct stmt *s)
{
	struct config *cfg = obj;
	struct key_build kb = {0};

	(void)s;
	if (need_block(cv, n, 1) == -1)
		return -1;
	kb.key = arena_push(cfg->arena, &cfg->keys, &cfg->nkeys, sizeof(*kb.key));
	if (kb.key == NULL)
		return cv_error(cv, n->file, n->line, "out of memory");
	kb.key->name = domain_normalize(cv, n->words[1].text);
	if (kb.key->name == NULL)
		return cv_error(cv, n->file, n->line, "key name '%s' is not a valid DNS name",
		    n->words[1].text);
	for (size_t i = 0; i + 1 < cfg->nkeys; i++)
		if (strcmp(cfg->keys[i].name, kb.key->name) == 0)
			return cv_error(
			    cv, n->file, n->line, "key '%s' defined twice", kb.key->name);
	if (conv_block(cv, n->children, "in key", key_table, &kb) == -1)
		return -1;
	if (!kb.has_algorithm)
		return cv_error(cv, n->file, n->line, "key '%s' needs 'algorithm'", kb.key->name);
	if (kb.secret_text == NULL)
		return cv_error(cv, n->file, n->line, "key '%s' needs 'secret'", kb.key->name);
	kb.key->secret_b64 = arena_strndup(cfg->arena, kb.secret_text, strlen(kb.secret_text));
	if (base64_decode(cfg->arena, kb.secret_text, &kb.key->secret, &kb.key->secret_len) == -1)
		return cv_error(cv, n->file, n->line,
		    "key '%s': secret is not base64 (generate one with: "
		    "openssl rand -base64 32)",
		    kb.key->name);
	return 0;
}

static const struct stmt zone_table[] = {T("file", V_PATH, config_zone, file, "(required)"),
    A("allow-transfer", V_CIDRS, config_zone, allow_transfer, 0, "none"),
    A("also-notify", V_ADDRS, config_zone, also_notify, CONFIG_PORT_DNS, NULL),
    A("notify-source", V_ADDR, config_zone, notify_source, 0, "(the broker's notify-source)"), END};

static int
broker_zone_cb(struct conv *cv, const struct cnode *n, void *obj, const struct stmt *s)
{
	struct config_broker *b = obj;
	struct config_zone *z;

	(void)s;
	if (need_block(cv, n, 1) == -1)
		return -1;
	z = arena_push(cv->cfg->arena, &b->zones, &b->nzones, sizeof(*z));
	if (z == NULL)
		return cv_error(cv, n->file, n->line, "out of memory");
	z->line = n->line;
	z->name = domain_normalize(cv, n->words[1].text);
	if (z->name == NULL)
		return cv_error(
		    cv, n->file, n->line, "zone name '%s' is not a domain name", n->words[1].text);
	for (size_t i = 0; i + 1 < b->nzones; i++)
		if (strcmp(b->zones[i].name, z->name) == 0)
			return cv_error(cv, n->file, n->line,
			    "zone '%s' given twice (first on line %d)", z->name, b->zones[i].line);
	if (conv_block(cv, n->children, "in zone", zone_table, z) == -1)
		return -1;
	if (z->file == NULL)
		return cv_error(cv, n->file, n->line, "zone '%s' needs 'file'", z->name);
	return 0;
}

static const struct stmt rrl_table[] = {
    U("responses-per-second", config_rrl, responses_per_second, "0", 0, 1000000),
    U("slip", config_rrl, slip, "2", 0, 10),
    U("ipv4-prefix-length", config_rrl, ipv4_prefix, "24", 8, 32),
    U("ipv6-prefix-length", config_rrl, ipv6_prefix, "56", 16, 128),
    U("table-size", config_rrl, table_size, "16384", 64, 16777216), END};

static int
broker_rrl_cb(struct conv *cv, const struct cnode *n, void *obj, const struct stmt *s)
{
	struct config_broker *b = obj;

	(void)s;
	if (need_block(cv, n, 0) == -1)
		return -1;
	return conv_block(cv, n->children, "in rate-limit", rrl_table, &b->rrl);
}

static const struct stmt broker_table[] = {
    A("listen", V_ADDRS, config_broker, listen, CONFIG_PORT_DNS, "0.0.0.0 ::"),
    U("threads", config_broker, threads, "1", 1, 64),
    A("status-listen", V_ADDR, config_broker, status_listen, CONFIG_PORT_BROKER_HTTP, NULL),
    D("tcp-idle-timeout", config_broker, tcp_idle_timeout, "10s", 1, 3600),
    U("tcp-max-clients", config_broker, tcp_max_clients, "1000", 1, 100000),
    T("state-file", V_PATH, config_broker, state_file, "brokerd.state"),
    T("control-socket", V_PATH, config_broker, control_socket, "brokerd.sock"),
    A("notify-source", V_ADDR, config_broker, notify_source, 0, NULL),
    C("zone", broker_zone_cb, true, NULL, broker_zone_print),
    C("rate-limit", broker_rrl_cb, false, "(off)", broker_rrl_print), END};

/* One member: ADDR [weight N] [drain] [check ADDR]. */
static int
member_entry(struct conv *cv, const struct cnode *c, void *arg)
{
	struct config_cluster *cl = arg;
	struct config_member *m;
	static const struct stmt weight = {
	    "weight", V_UINT, 0, 1, 1000, 0, NULL, NULL, false, NULL, NULL};
	unsigned long long v;
	size_t i = 1;

	if (cl->nmembers >= CONFIG_MAX_MEMBERS)
		return cv_error(cv, c->file, c->line, "more than %d members", CONFIG_MAX_MEMBERS);
	m = arena_push(cv->cfg->arena, &cl->members, &cl->nmembers, sizeof(*m));
	if (m == NULL)
		return cv_error(cv, c->file, c->line, "out of memory");
	if (parse_addr_words(cv, c, 0, 1, 0, &m->addr) == -1)
		return -1;
	m->check = m->addr;
	m->weight = 1;
	while (i < c->nwords) {
		const struct cword *w = &c->words[i];

		if (w->line != c->words[i - 1].line)
			return cv_error(cv, c->file, c->words[i - 1].line, "missing ';' after '%s'",
			    c->words[i - 1].text);
		if (strcmp(w->text, "drain") == 0) {
			m->drain = true;
			i++;
		} else if (strcmp(w->text, "weight") == 0 && i + 1 < c->nwords) {
			if (parse_uint_word(cv, c, &c->words[i + 1], &weight, &v) == -1)
				return -1;
			m->weight = (unsigned)v;
			i += 2;
		} else if (strcmp(w->text, "check") == 0 && i + 1 < c->nwords) {
			if (parse_addr_words(cv, c, i + 1, i + 2, 0, &m->check) == -1)
				return -1;
			i += 2;
		} else
			return cv_error(cv, c->file, w->line,
			    "unexpected '%s' in member %s (expected weight N, drain or "
			    "check ADDR)",
			    w->text, c->words[0].text);
	}
	for (size_t k = 0; k + 1 < cl->nmembers; k++)
		if (addr_equal_host(&cl->members[k].addr, &m->addr))
			return cv_error(
			    cv, c->file, c->line, "member %s listed twice", c->words[0].text);
	return 0;
}

static int
cluster_members_cb(struct conv *cv, const struct cnode *n, void *obj, const struct stmt *s)
{
	(void)s;
	return for_each_entry(cv, n, member_entry, obj);
}

static int
cluster_failover_cb(struct conv *cv, const struct cnode *n, void *obj, const struct stmt *s)
{
	struct config_cluster *cl = obj;
	struct addr a, *slot;

	(void)s;
	if (n->has_block)
		return cv_error(cv, n->file, n->line, "'failover' takes one address");
	if (parse_addr_words(cv, n, 1, n->nwords, 0, &a) == -1)
		return -1;
	if (n->nwords != 2)
		return cv_error(cv, n->file, n->line, "'failover' takes an address, no port");
	slot = addr_family(&a) == AF_INET ? &cl->failover4 : &cl->failover6;
	if (slot->len != 0)
		return cv_error(
		    cv, n->file, n->line, "'failover' given twice for the same address family");
	*slot = a;
	return 0;
}

static int
cluster_health_cb(struct conv *cv, const struct cnode *n, void *obj, const struct stmt *s)
{
	static const char *const kinds[] = {"none", "tcp", "smtp", NULL};
	static const struct stmt kind = {
	    "health-check", V_ENUM, 0, 0, 0, 0, kinds, NULL, false, NULL, NULL};
	static const struct stmt port = {
	    "health-check port", V_UINT, 0, 1, 65535, 0, NULL, NULL, false, NULL, NULL};
	struct config_cluster *cl = obj;
	unsigned long long v;
	int idx = 0;

	(void)s;
	if (n->nwords == 2 && strcmp(n->words[1].text, "none") == 0 && !n->has_block)
		return 0;
	if (need_args(cv, n, 2) == -1 || conv_enum(cv, n, &idx, &kind) == -1 ||
	    parse_uint_word(cv, n, &n->words[2], &port, &v) == -1)
		return -1;
	cl->health = (enum config_health)idx;
	cl->health_port = (uint16_t)v;
	return 0;
}

static const char *const protocols[] = {"native", "lbcd", NULL};
static const char *const policies[] = {"ranked", "weighted", NULL};

static const struct stmt cluster_table[] = {U("dns-ttl", config_cluster, dns_ttl, "45", 0, 604800),
    D("dns-refresh", config_cluster, dns_refresh, "30", 1, 86400),
    D("polling-interval", config_cluster, polling_interval, "30", 1, 86400),
    U("max-members", config_cluster, max_members, "3", 1, 1000),
    A("masters", V_ADDRS, config_cluster, masters, CONFIG_PORT_DNS, NULL),
    C("members", cluster_members_cb, false, "(required)", cluster_members_print),
    C("failover", cluster_failover_cb, true, NULL, cluster_failover_print),
    P("metric-port", config_cluster, metric_port, "(4331; 4330 with protocol lbcd)"),
    T("key", V_KEYREF, config_cluster, key, NULL),
    E("protocol", config_cluster, protocol, protocols, "native"),
    C("health-check", cluster_health_cb, false, "none", cluster_health_print),
    U("hysteresis", config_cluster, hysteresis, CONFIG_DEFAULT_HYSTERESIS, 0, 1000),
    E("policy", config_cluster, policy, policies, "ranked"),
    U("fall", config_cluster, fall, "3", 1, 100), U("rise", config_cluster, rise, "1", 1, 100),
    END};

static int
top_cluster_cb(struct conv *cv, const struct cnode *n, void *obj, const struct stmt *s)
{
	struct config *cfg = obj;
	struct config_cluster *cl;

	(void)s;
	if (need_block(cv, n, 1) == -1)
		return -1;
	cl = arena_push(cfg->arena, &cfg->clusters, &cfg->nclusters, sizeof(*cl));
	if (cl == NULL)
		return cv_error(cv, n->file, n->line, "out of memory");
	cl->line = n->line;
	cl->name = domain_normalize(cv, n->words[1].text);
	if (cl->name == NULL)
		return cv_error(cv, n->file, n->line, "cluster name '%s' is not a domain name",
		    n->words[1].text);
	for (size_t i = 0; i + 1 < cfg->nclusters; i++)
		if (strcmp(cfg->clusters[i].name, cl->name) == 0)
			return cv_error(cv, n->file, n->line,
			    "cluster '%s' given twice (first on line %d)", cl->name,
			    cfg->clusters[i].line);
	if (table_defaults(cfg, cluster_table, cl) == -1)
		return cv_error(cv, n->file, n->line, "out of memory");
	if (conv_block(cv, n->children, "in cluster", cluster_table, cl) == -1)
		return -1;
	if (cl->nmembers == 0)
		return cv_error(cv, n->file, n->line, "cluster '%s' needs 'members'", cl->name);
	if (cl->metric_port == 0)
		cl->metric_port =
		    cl->protocol == CONFIG_PROTO_LBCD ? CONFIG_PORT_LBCD : CONFIG_PORT_METRICS;
	return 0;
}

static const struct stmt metrics_table[] = {
    A("listen", V_ADDRS, config_metrics, listen, CONFIG_PORT_METRICS, "0.0.0.0 ::"),
    A("http-listen", V_ADDR, config_metrics, http_listen, CONFIG_PORT_METRICS_HTTP, NULL),
    A("lbcd-listen", V_ADDR, config_metrics, lbcd_listen, CONFIG_PORT_LBCD, NULL),
    D("compute-interval", config_metrics, compute_interval, "10", 1, 300),
    U("cpu-rating", config_metrics, cpu_rating, "0", 0, 100),
    U("capacity", config_metrics, capacity, "100", 1, 1000000),
    U("sessions", config_metrics, sessions, "0", 0, 1000000),
    Z("memory-goal", config_metrics, memory_goal, "0", 0, 1ULL << 50),
    A("relay-status", V_ADDR, config_metrics, relay_status, CONFIG_PORT_RELAY_HTTP, NULL),
    T("key", V_KEYREF, config_metrics, key, NULL),
    T("drain-file", V_PATH, config_metrics, drain_file, "metricd.drain"), END};

static int
resolver_gateway_cb(struct conv *cv, const struct cnode *n, void *obj, const struct stmt *s)
{
	struct config_resolver *r = obj;
	const char *text;
	size_t len;
	struct addr a;

	(void)s;
	if (need_args(cv, n, 1) == -1)
		return -1;
	text = n->words[1].text;
	len = strlen(text);
	if (len > 2 && text[0] == '[' && text[len - 1] == ']') {
		char inner[64];
		const char *lit = text + 1;

		if (len - 2 >= sizeof(inner))
			goto bad;
		if (strncasecmp(lit, "ipv6:", 5) == 0)
			lit += 5;
		snprintf(
		    inner, sizeof(inner), "%.*s", (int)(len - 2 - (size_t)(lit - text - 1)), lit);
		if (addr_parse(inner, 0, &a) == -1)
			goto bad;
		r->gateway = arena_strndup(cv->cfg->arena, text, len);
		return 0;
	}
	r->gateway = domain_normalize(cv, text);
	if (r->gateway != NULL)
		return 0;
bad:
	return cv_error(cv, n->file, n->words[1].line,
	    "'gateway' wants a host name or an address literal like \"[192.0.2.1]\", "
	    "not '%s'",
	    text);
}

static const struct stmt resolver_table[] = {A("nameservers", V_ADDRS, config_resolver, nameservers,
                                                 CONFIG_PORT_DNS, "(from /etc/resolv.conf)"),
    T("local-mx", V_PATH, config_resolver, local_mx, NULL),
    T("hosts", V_PATH, config_resolver, hosts, "/etc/hosts"),
    T("zones", V_DOMAINS, config_resolver, zones, NULL),
    C("gateway", resolver_gateway_cb, false, NULL, resolver_gateway_print),
    D("timeout", config_resolver, timeout, "5s", 1, 300),
    U("attempts", config_resolver, attempts, "2", 1, 10),
    U("cache-size", config_resolver, cache_size, "10000", 0, 10000000), END};

static const struct stmt relay_table[] = {
    A("listen", V_ADDRS, config_relay, listen, CONFIG_PORT_SMTP, "0.0.0.0 ::"),
    T("hostname", V_DOMAIN, config_relay, hostname, "(the host name)"),
    T("local-aliases", V_DOMAINS, config_relay, local_aliases, NULL),
    T("local-aliases-file", V_PATH, config_relay, local_aliases_file, NULL),
    T("relay-domains", V_DOMAINS, config_relay, relay_domains, NULL),
    T("trusted-networks", V_CIDRS, config_relay, trusted_networks, "127.0.0.0/8 ::1"),
    T("queue-directory", V_PATH, config_relay, queue_directory, "spool"),
    T("maildir-root", V_PATH, config_relay, maildir_root, "mail"),
    T("users", V_STRINGS, config_relay, users, "(any local part)"),
    Z("max-message-size", config_relay, max_message_size, "10M", 1024, 1ULL << 32),
    Z("queue-min-free", config_relay, queue_min_free, "(1.5 x max-message-size)", 0, 1ULL << 50),
    U("max-recipients", config_relay, max_recipients, "100", 1, 100000),
    U("max-sessions", config_relay, max_sessions, "100", 1, 100000),
    U("max-sessions-per-client", config_relay, max_sessions_per_client, "10", 1, 100000),
    D("command-timeout", config_relay, command_timeout, "5m", 1, 3600),
    D("data-timeout", config_relay, data_timeout, "10m", 1, 7200),
    D("retry-interval", config_relay, retry_interval, "30m", 1, 7 * 86400),
    D("max-retry-interval", config_relay, max_retry_interval, "4h", 1, 30 * 86400),
    D("queue-lifetime", config_relay, queue_lifetime, "5d", 1, 365 * 86400),
    D("delay-warning", config_relay, delay_warning, "0", 0, 365 * 86400),
    U("max-deliveries", config_relay, max_deliveries, "20", 1, 10000),
    U("max-deliveries-per-destination", config_relay, max_per_destination, "4", 1, 10000),
    P("remote-port", config_relay, remote_port, "25"),
    T("hold-delivery", V_BOOL, config_relay, hold_delivery, "no"),
    T("postmaster", V_STRING, config_relay, postmaster, "(postmaster@HOSTNAME)"),
    T("control-socket", V_PATH, config_relay, control_socket, "smtp-relayd.sock"),
    A("status-listen", V_ADDR, config_relay, status_listen, CONFIG_PORT_RELAY_HTTP, NULL), END};

/* options, broker, metrics, resolver, relay: a block with no name, once. */
static const struct section {
	const char *name;
	const struct stmt *table;
	size_t off;
	size_t present_off; /* (size_t)-1: no `present` flag */
	unsigned parts;     /* the daemons that use it (CONFIG_PART_*) */
} sections[] = {
    {"options", options_table, offsetof(struct config, options), (size_t)-1, CONFIG_PART_ALL},
    {"broker", broker_table, offsetof(struct config, broker),
        offsetof(struct config_broker, present), CONFIG_PART_BROKER},
    {"metrics", metrics_table, offsetof(struct config, metrics),
        offsetof(struct config_metrics, present), CONFIG_PART_METRICS},
    {"resolver", resolver_table, offsetof(struct config, resolver),
        offsetof(struct config_resolver, present), CONFIG_PART_RELAY},
    {"relay", relay_table, offsetof(struct config, relay), offsetof(struct config_relay, present),
        CONFIG_PART_RELAY},
};

#define NSECTIONS (sizeof(sections) / sizeof(sections[0]))

static int
top_section_cb(struct conv *cv, const struct cnode *n, void *obj, const struct stmt *s)
{
	struct config *cfg = obj;
	const char *name = n->words[0].text;
	char where[32];

	(void)s;
	if (need_block(cv, n, 0) == -1)
		return -1;
	for (size_t i = 0; i < NSECTIONS; i++) {
		void *sec;

		if (strcmp(sections[i].name, name) != 0)
			continue;
		sec = (char *)cfg + sections[i].off;
		if (sections[i].present_off != (size_t)-1)
			*FIELD(sec, sections[i].present_off, bool) = true;
		snprintf(where, sizeof(where), "in %s", name);
		return conv_block(cv, n->children, where, sections[i].table, sec);
	}
	return cv_error(cv, n->file, n->line, "internal: no section '%s'", name);
}

/* First round: what the other blocks refer to (keys) or depend on (directory). */
static const struct stmt top_first_table[] = {
    C("options", top_section_cb, false, NULL, NULL), C("key", top_key_cb, true, NULL, NULL), END};

static const struct stmt top_table[] = {C("broker", top_section_cb, false, NULL, NULL),
    C("cluster", top_cluster_cb, true, NULL, NULL), C("metrics", top_section_cb, false, NULL, NULL),
    C("resolver", top_section_cb, false, NULL, NULL), C("relay", top_section_cb, false, NULL, NULL),
    END};

/*
 * Once `options` is read: make the directory absolute (the configuration
 * file's folder by default) and resolve the other paths of `options` against
 * it, whatever their order in the block.
 */
static int
options_finish(struct conv *cv)
{
	struct config *cfg = cv->cfg;
	struct config_options *o = &cfg->options;
	char cwd[PATH_MAX];
	const char *base = cv->base_dir;

	/* A relative base would change meaning when a daemon changes directory. */
	if (base[0] != '/' && getcwd(cwd, sizeof(cwd)) != NULL) {
		base = strcmp(base, ".") == 0 ? cwd : path_join(cv->tmp, cwd, base);
		if (base == NULL)
			return cv_error(cv, cfg->path, 0, "out of memory");
	}
	o->directory = o->directory ? path_join(cfg->arena, base, o->directory)
	                            : arena_strndup(cfg->arena, base, strlen(base));
	if (o->directory == NULL)
		return cv_error(cv, cfg->path, 0, "out of memory");
	for (const struct stmt *s = options_table; s->name != NULL; s++) {
		char **slot = FIELD(o, s->off, char *);

		if (s->type != V_PATH || s->off == OFF(config_options, directory) || *slot == NULL)
			continue;
		*slot = path_join(cfg->arena, o->directory, *slot);
		if (*slot == NULL)
			return cv_error(cv, cfg->path, 0, "out of memory");
	}
	cv->dir = o->directory;
	return 0;
}

static int
conv_top(struct conv *cv, const struct cnode *tree)
{
	if (conv_block_skip(cv, tree, "at top level", top_first_table, top_table, cv->cfg) == -1 ||
	    options_finish(cv) == -1)
		return -1;
	return conv_block_skip(cv, tree, "at top level", top_table, top_first_table, cv->cfg);
}

/* ---- defaults, cross-references, entry points ------------------------- */

/* Fill an empty address list from `def` (addresses separated by spaces) on `port`. */
static int
default_addrs(struct config *cfg, struct config_addrs *list, const char *def, uint16_t port)
{
	char word[64];
	int used = 0;

	while (sscanf(def, "%63s%n", word, &used) == 1) {
		struct addr *a = arena_push(cfg->arena, &list->v, &list->n, sizeof(*a));

		if (a == NULL || addr_parse(word, port, a) == -1)
			return -1;
		def += used;
	}
	return 0;
}

/* The same for a prefix list; `none` adds nothing. */
static int
default_cidrs(struct config *cfg, struct config_cidrs *list, const char *def)
{
	char word[64];
	int used = 0;

	while (sscanf(def, "%63s%n", word, &used) == 1) {
		struct cidr *c;

		def += used;
		if (strcmp(word, "none") == 0)
			continue;
		c = arena_push(cfg->arena, &list->v, &list->n, sizeof(*c));
		if (c == NULL || cidr_parse(word, c) == -1)
			return -1;
	}
	return 0;
}

/*
 * Apply the table default of `s` to obj.  Paths wait for the directory
 * (path_defaults); a default in parentheses is derived by code.  The
 * defaults are ours, so -1 means out of memory or a bad table.
 */
static int
stmt_set_default(struct config *cfg, const struct stmt *s, void *obj)
{
	unsigned d;
	uint64_t z;
	int i;

	if (s->def == NULL || s->def[0] == '(')
		return 0;
	switch (s->type) {
	case V_UINT: *FIELD(obj, s->off, unsigned) = (unsigned)strtoul(s->def, NULL, 10); return 0;
	case V_PORT: *FIELD(obj, s->off, uint16_t) = (uint16_t)strtoul(s->def, NULL, 10); return 0;
	case V_DURATION:
		if (config_parse_duration(s->def, &d) == -1)
			return -1;
		*FIELD(obj, s->off, unsigned) = d;
		return 0;
	case V_SIZE:
		if (config_parse_size(s->def, &z) == -1)
			return -1;
		*FIELD(obj, s->off, uint64_t) = z;
		return 0;
	case V_BOOL: *FIELD(obj, s->off, bool) = strcmp(s->def, "yes") == 0; return 0;
	case V_ENUM:
		if ((i = enum_index(s->names, s->def)) < 0)
			return -1;
		*FIELD(obj, s->off, int) = i;
		return 0;
	case V_ADDRS:
		return default_addrs(cfg, FIELD(obj, s->off, struct config_addrs), s->def, s->port);
	case V_CIDRS: return default_cidrs(cfg, FIELD(obj, s->off, struct config_cidrs), s->def);
	default: return 0;
	}
}

static int
table_defaults(struct config *cfg, const struct stmt *table, void *obj)
{
	for (const struct stmt *s = table; s->name != NULL; s++)
		if (stmt_set_default(cfg, s, obj) == -1)
			return -1;
	return 0;
}

static int
set_defaults(struct config *cfg)
{
	cfg->relay.queue_min_free = QUEUE_MIN_FREE_UNSET;
	for (size_t i = 0; i < NSECTIONS; i++)
		if (table_defaults(cfg, sections[i].table, (char *)cfg + sections[i].off) == -1)
			return -1;
	return table_defaults(cfg, rrl_table, &cfg->broker.rrl);
}

/* Table defaults of the paths not given, resolved against the directory. */
static void
path_defaults(struct config *cfg, const struct stmt *table, void *obj)
{
	for (const struct stmt *s = table; s->name != NULL; s++) {
		char **slot = FIELD(obj, s->off, char *);

		if (s->type == V_PATH && s->def != NULL && s->def[0] != '(' && *slot == NULL)
			*slot = path_join(cfg->arena, cfg->options.directory, s->def);
	}
}

static int
apply_defaults(struct conv *cv)
{
	struct config *cfg = cv->cfg;
	struct config_relay *r = &cfg->relay;
	char host[256];

	for (size_t i = 0; i < NSECTIONS; i++)
		path_defaults(cfg, sections[i].table, (char *)cfg + sections[i].off);
	for (size_t i = 0; i < cfg->broker.nzones; i++)
		if (cfg->broker.zones[i].notify_source.len == 0)
			cfg->broker.zones[i].notify_source = cfg->broker.notify_source;
	if (r->hostname == NULL) {
		if (gethostname(host, sizeof(host)) == -1)
			snprintf(host, sizeof(host), "localhost");
		host[sizeof(host) - 1] = '\0';
		r->hostname = arena_strndup(cfg->arena, host, strlen(host));
	}
	if (r->postmaster == NULL) {
		size_t len = strlen(r->hostname) + sizeof("postmaster@");

		r->postmaster = arena_alloc(cfg->arena, len);
		if (r->postmaster != NULL)
			snprintf(r->postmaster, len, "postmaster@%s", r->hostname);
	}
	/* Postfix's queue_minfree rule: room for one and a half largest messages. */
	if (r->queue_min_free == QUEUE_MIN_FREE_UNSET)
		r->queue_min_free = r->max_message_size + r->max_message_size / 2;
	if (r->max_retry_interval < r->retry_interval) {
		const void *f = config_where(cfg, &r->max_retry_interval) != 0
		    ? (void *)&r->max_retry_interval
		    : (void *)&r->retry_interval;

		return cv_error(cv, config_where_file(cfg, f), config_where(cfg, f),
		    "relay: max-retry-interval (%us) is shorter than retry-interval (%us)",
		    r->max_retry_interval, r->retry_interval);
	}
	return 0;
}

static struct config *
config_build(
    const char *name, const char *text, size_t len, const char *base_dir, char *err, size_t errlen)
{
	struct config *cfg = calloc(1, sizeof(*cfg));
	struct conv cv = {0};
	struct cnode *tree = NULL, **tail = &tree;

	if (cfg == NULL || (cfg->arena = calloc(1, sizeof(*cfg->arena))) == NULL ||
	    (cv.tmp = calloc(1, sizeof(*cv.tmp))) == NULL) {
		snprintf(err, errlen, "%s: out of memory", name);
		free(cfg ? cfg->arena : NULL);
		free(cfg);
		return NULL;
	}
	cv.cfg = cfg;
	cv.err = err;
	cv.errlen = errlen;
	cv.base_dir = base_dir;
	cfg->path = arena_strndup(cfg->arena, name, strlen(name));
	if (set_defaults(cfg) == -1)
		cv_error(&cv, name, 0, "out of memory");
	else if (text != NULL)
		parse_text(&cv, cfg->path, text, len, &tail);
	else
		parse_file(&cv, name, 0, NULL, &tail);
	if (!cv.failed && conv_top(&cv, tree) == 0)
		apply_defaults(&cv);
	arena_free(cv.tmp);
	if (cv.failed) {
		config_free(cfg);
		return NULL;
	}
	return cfg;
}

struct config *
config_load(const char *path, char *err, size_t errlen)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	return config_build(path, NULL, 0, dir, err, errlen);
}

struct config *
config_load_string(const char *name, const char *text, char *err, size_t errlen)
{
	return config_build(name, text, strlen(text), ".", err, errlen);
}

void
config_free(struct config *cfg)
{
	if (cfg == NULL)
		return;
	arena_free(cfg->arena);
	free(cfg);
}

const struct config_key *
config_key_find(const struct config *cfg, const char *name)
{
	size_t len = strlen(name);

	if (len > 1 && name[len - 1] == '.')
		len--;
	for (size_t i = 0; i < cfg->nkeys; i++)
		if (strlen(cfg->keys[i].name) == len &&
		    strncasecmp(cfg->keys[i].name, name, len) == 0)
			return &cfg->keys[i];
	return NULL;
}

const struct config_zone *
config_zone_find(const struct config *cfg, const char *name)
{
	size_t len = strlen(name);

	if (len > 1 && name[len - 1] == '.')
		len--;
	for (size_t i = 0; i < cfg->broker.nzones; i++)
		if (strlen(cfg->broker.zones[i].name) == len &&
		    strncasecmp(cfg->broker.zones[i].name, name, len) == 0)
			return &cfg->broker.zones[i];
	return NULL;
}

int
config_where(const struct config *cfg, const void *field)
{
	for (size_t i = cfg->nwhere; i-- > 0;)
		if (cfg->where[i].field == field)
			return cfg->where[i].line;
	return 0;
}

const char *
config_where_file(const struct config *cfg, const void *field)
{
	for (size_t i = cfg->nwhere; i-- > 0;)
		if (cfg->where[i].field == field)
			return cfg->where[i].file;
	return cfg->path;
}

/* ---- printing (-p) ---------------------------------------------------- */

struct pr {
	FILE *out;
	int depth;
	bool show_secrets;
};

static void
pr_indent(struct pr *p)
{
	for (int i = 0; i < p->depth; i++)
		fputc('\t', p->out);
}

/* A quoted string, with the escapes the lexer undoes. */
static void
pr_quoted(struct pr *p, const char *text)
{
	fputc('"', p->out);
	for (const char *c = text; *c != '\0'; c++) {
		if (*c == '"' || *c == '\\')
			fputc('\\', p->out);
		fputc(*c, p->out);
	}
	fputc('"', p->out);
}

/* The largest unit that divides v exactly: 1800 is "30m". */
static void
pr_unit(struct pr *p, unsigned long long v, const unsigned long long *mult, const char *units)
{
	for (size_t i = 0; v != 0 && units[i] != '\0'; i++)
		if (v % mult[i] == 0) {
			fprintf(p->out, "%llu%c", v / mult[i], units[i]);
			return;
		}
	fprintf(p->out, "%llu", v);
}

static void
pr_duration(struct pr *p, unsigned v)
{
	static const unsigned long long mult[] = {7 * 86400, 86400, 3600, 60};

	pr_unit(p, v, mult, "wdhm");
}

static void
pr_size(struct pr *p, uint64_t v)
{
	static const unsigned long long mult[] = {1ULL << 30, 1ULL << 20, 1ULL << 10};

	pr_unit(p, v, mult, "GMK");
}

/* ADDR [port N]; port 0 (any, or none allowed) is left out. */
static void
pr_addr(struct pr *p, const struct addr *a)
{
	char buf[ADDR_STRLEN];

	fputs(addr_host_str(a, buf, sizeof(buf)), p->out);
	if (addr_port(a) != 0)
		fprintf(p->out, " port %u", (unsigned)addr_port(a));
}

static void
pr_list_open(struct pr *p, const char *name)
{
	pr_indent(p);
	fprintf(p->out, "%s {", name);
}

static void
pr_strings(struct pr *p, const char *name, const struct config_strings *l)
{
	if (l->n == 0)
		return;
	pr_list_open(p, name);
	for (size_t i = 0; i < l->n; i++) {
		fputc(' ', p->out);
		pr_quoted(p, l->v[i]);
		fputc(';', p->out);
	}
	fputs(" };\n", p->out);
}

static void
pr_addrs(struct pr *p, const char *name, const struct config_addrs *l)
{
	if (l->n == 0)
		return;
	pr_list_open(p, name);
	for (size_t i = 0; i < l->n; i++) {
		fputc(' ', p->out);
		pr_addr(p, &l->v[i]);
		fputc(';', p->out);
	}
	fputs(" };\n", p->out);
}

static void
pr_cidrs(struct pr *p, const char *name, const struct config_cidrs *l)
{
	char buf[ADDR_STRLEN + 8];

	pr_list_open(p, name);
	for (size_t i = 0; i < l->n; i++)
		fprintf(p->out, " %s;", cidr_str(&l->v[i], buf, sizeof(buf)));
	fputs(l->n == 0 ? " none; };\n" : " };\n", p->out);
}

/* "name value;" for the one-word values; nothing when unset. */
static void
pr_scalar(struct pr *p, const void *obj, const struct stmt *s)
{
	const char *text = NULL;
	const struct config_key *key;

	if (s->type == V_STRING || s->type == V_PATH || s->type == V_DOMAIN)
		text = *FIELD(obj, s->off, char *const);
	else if (s->type == V_KEYREF)
		text =
		    (key = *FIELD(obj, s->off, const struct config_key *const)) ? key->name : NULL;
	if ((s->type == V_ADDR && FIELD(obj, s->off, const struct addr)->len == 0) ||
	    ((s->type == V_STRING || s->type == V_PATH || s->type == V_DOMAIN ||
	         s->type == V_KEYREF) &&
	        text == NULL))
		return;
	pr_indent(p);
	fprintf(p->out, "%s ", s->name);
	switch (s->type) {
	case V_UINT: fprintf(p->out, "%u", *FIELD(obj, s->off, const unsigned)); break;
	case V_PORT: fprintf(p->out, "%u", (unsigned)*FIELD(obj, s->off, const uint16_t)); break;
	case V_DURATION: pr_duration(p, *FIELD(obj, s->off, const unsigned)); break;
	case V_SIZE: pr_size(p, *FIELD(obj, s->off, const uint64_t)); break;
	case V_BOOL: fputs(*FIELD(obj, s->off, const bool) ? "yes" : "no", p->out); break;
	case V_ENUM: fputs(s->names[*FIELD(obj, s->off, const int)], p->out); break;
	case V_ADDR: pr_addr(p, FIELD(obj, s->off, const struct addr)); break;
	default: pr_quoted(p, text); break;
	}
	fputs(";\n", p->out);
}

static void
pr_table(struct pr *p, const struct stmt *table, const void *obj)
{
	for (const struct stmt *s = table; s->name != NULL; s++) {
		switch (s->type) {
		case V_ADDRS:
			pr_addrs(p, s->name, FIELD(obj, s->off, const struct config_addrs));
			break;
		case V_CIDRS:
			pr_cidrs(p, s->name, FIELD(obj, s->off, const struct config_cidrs));
			break;
		case V_DOMAINS:
		case V_STRINGS:
			pr_strings(p, s->name, FIELD(obj, s->off, const struct config_strings));
			break;
		case V_CUSTOM:
			if (s->print != NULL)
				s->print(p, obj, s);
			break;
		default: pr_scalar(p, obj, s); break;
		}
	}
}

/* name ["label"] { statements of table };  */
static void
pr_block(
    struct pr *p, const char *name, const char *label, const struct stmt *table, const void *obj)
{
	pr_indent(p);
	fputs(name, p->out);
	if (label != NULL) {
		fputc(' ', p->out);
		pr_quoted(p, label);
	}
	fputs(" {\n", p->out);
	p->depth++;
	pr_table(p, table, obj);
	p->depth--;
	pr_indent(p);
	fputs("};\n", p->out);
}

static void
broker_zone_print(struct pr *p, const void *obj, const struct stmt *s)
{
	const struct config_broker *b = obj;

	for (size_t i = 0; i < b->nzones; i++)
		pr_block(p, s->name, b->zones[i].name, zone_table, &b->zones[i]);
}

static void
broker_rrl_print(struct pr *p, const void *obj, const struct stmt *s)
{
	const struct config_broker *b = obj;

	pr_block(p, s->name, NULL, rrl_table, &b->rrl);
}

static void
cluster_members_print(struct pr *p, const void *obj, const struct stmt *s)
{
	const struct config_cluster *cl = obj;
	char buf[ADDR_STRLEN];

	pr_list_open(p, s->name);
	fputc('\n', p->out);
	p->depth++;
	for (size_t i = 0; i < cl->nmembers; i++) {
		const struct config_member *m = &cl->members[i];

		pr_indent(p);
		fprintf(
		    p->out, "%s weight %u", addr_host_str(&m->addr, buf, sizeof(buf)), m->weight);
		if (m->drain)
			fputs(" drain", p->out);
		if (!addr_equal_host(&m->check, &m->addr))
			fprintf(p->out, " check %s", addr_host_str(&m->check, buf, sizeof(buf)));
		fputs(";\n", p->out);
	}
	p->depth--;
	pr_indent(p);
	fputs("};\n", p->out);
}

static void
cluster_failover_print(struct pr *p, const void *obj, const struct stmt *s)
{
	const struct config_cluster *cl = obj;
	const struct addr *f[] = {&cl->failover4, &cl->failover6};
	char buf[ADDR_STRLEN];

	for (size_t i = 0; i < 2; i++) {
		if (f[i]->len == 0)
			continue;
		pr_indent(p);
		fprintf(p->out, "%s %s;\n", s->name, addr_host_str(f[i], buf, sizeof(buf)));
	}
}

static void
cluster_health_print(struct pr *p, const void *obj, const struct stmt *s)
{
	static const char *const kinds[] = {"none", "tcp", "smtp"};
	const struct config_cluster *cl = obj;

	pr_indent(p);
	if (cl->health == CONFIG_HEALTH_NONE)
		fprintf(p->out, "%s none;\n", s->name);
	else
		fprintf(
		    p->out, "%s %s %u;\n", s->name, kinds[cl->health], (unsigned)cl->health_port);
}

static void
resolver_gateway_print(struct pr *p, const void *obj, const struct stmt *s)
{
	const struct config_resolver *r = obj;

	if (r->gateway == NULL)
		return;
	pr_indent(p);
	fprintf(p->out, "%s ", s->name);
	pr_quoted(p, r->gateway);
	fputs(";\n", p->out);
}

static void
pr_key(struct pr *p, const struct config_key *k)
{
	fputs("key ", p->out);
	pr_quoted(p, k->name);
	fprintf(p->out, " {\n\talgorithm %s;\n\tsecret ", k->algorithm_name);
	pr_quoted(p, p->show_secrets ? k->secret_b64 : "<hidden>");
	fputs(";\n};\n", p->out);
}

void
config_print(const struct config *cfg, unsigned parts, bool show_secrets, FILE *out)
{
	struct pr p = {out, 0, show_secrets};

	for (size_t i = 0; i < NSECTIONS; i++) {
		const void *sec = (const char *)cfg + sections[i].off;

		if (!(sections[i].parts & parts) ||
		    (sec == &cfg->resolver && !cfg->resolver.present))
			continue;
		pr_block(&p, sections[i].name, NULL, sections[i].table, sec);
		if (sec == &cfg->options)
			for (size_t k = 0; k < cfg->nkeys; k++)
				pr_key(&p, &cfg->keys[k]);
		if (sec == &cfg->broker)
			for (size_t c = 0; c < cfg->nclusters; c++)
				pr_block(&p, "cluster", cfg->clusters[c].name, cluster_table,
				    &cfg->clusters[c]);
	}
}

/* ---- the grammar, for the documentation check ------------------------- */

static const char *
vtype_name(enum vtype t)
{
	static const char *const names[] = {"number", "duration", "size", "boolean", "string",
	    "path", "domain", "port", "address", "address-list", "prefix-list", "domain-list",
	    "string-list", "keyword", "key", "block"};

	return names[t];
}

static void
grammar_table(FILE *out, const char *block, const struct stmt *table)
{
	for (const struct stmt *s = table; s->name != NULL; s++) {
		fprintf(out, "%s\t%s\t%s\t%s\t", block, s->name, vtype_name(s->type),
		    s->def != NULL ? s->def : "-");
		if (s->type == V_UINT || s->type == V_DURATION || s->type == V_SIZE ||
		    s->type == V_PORT)
			fprintf(out, "%llu..%llu", s->min, s->max);
		else
			fputc('-', out);
		fprintf(out, "\t%s\n", s->repeat ? "repeat" : "once");
	}
}

void
config_grammar_print(FILE *out)
{
	grammar_table(out, "options", options_table);
	grammar_table(out, "key", key_table);
	grammar_table(out, "broker", broker_table);
	grammar_table(out, "rate-limit", rrl_table);
	grammar_table(out, "zone", zone_table);
	grammar_table(out, "cluster", cluster_table);
	grammar_table(out, "metrics", metrics_table);
	grammar_table(out, "resolver", resolver_table);
	grammar_table(out, "relay", relay_table);
}
