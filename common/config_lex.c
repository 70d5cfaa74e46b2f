/*
 * config_lex.c - the configuration reader's first two stages: the lexer
 * (words, strings, braces, semicolons, three comment styles) and the parser
 * that builds the statement tree, following `include`.  See config.c.
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

/* ---- errors ----------------------------------------------------------- */

int __attribute__((format(printf, 4, 5)))
config_cv_error(struct conv *cv, const char *file, int line, const char *fmt, ...)
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
				return config_cv_error(
				    lx->cv, lx->file, start, "unterminated /* comment");
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
		config_cv_error(lx->cv, lx->file, t->line, "unterminated string");
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
		config_cv_error(lx->cv, lx->file, t->line, "unexpected character 0x%02x",
		    (unsigned char)*lx->p);
		t->type = TOK_ERROR;
		return;
	}
	t->type = TOK_WORD;
}

/* ---- statement tree --------------------------------------------------- */

/* Undo the escapes of a quoted string. */
static char *
unescape(struct arena *a, const char *s, size_t len)
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
		return config_cv_error(cv, lx->file, t->line, "statement too long (missing ';'?)");
	w = arena_push(cv->tmp, &n->words, &n->nwords, sizeof(*w));
	if (w == NULL)
		return config_cv_error(cv, lx->file, t->line, "out of memory");
	w->quoted = t->type == TOK_STRING;
	w->text = w->quoted ? unescape(cv->tmp, t->text, t->len)
	                    : arena_strndup(cv->tmp, t->text, t->len);
	w->line = t->line;
	return w->text == NULL ? config_cv_error(cv, lx->file, t->line, "out of memory") : 0;
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
		return config_cv_error(cv, lx->file, t.line, "out of memory");
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
				return config_cv_error(cv, lx->file, lx->line,
				    "missing ';' after '}' of '%s'", n->words[0].text);
			break;
		} else if (t.type == TOK_SEMI) {
			break;
		} else if (t.type == TOK_ERROR) {
			return -1;
		} else {
			const struct cword *last = &n->words[n->nwords - 1];

			return config_cv_error(
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
			return config_cv_error(cv, lx->file, open_line, "'{' is never closed");
		case TOK_RBRACE:
			if (!top)
				return 0;
			return config_cv_error(cv, lx->file, t.line, "unexpected '}'");
		case TOK_SEMI: continue; /* an empty statement is harmless */
		case TOK_LBRACE: return config_cv_error(cv, lx->file, t.line, "unexpected '{'");
		default: break;
		}
		if (parse_statement(cv, lx, &t, &n) == -1)
			return -1;
		if (top && n->nwords == 2 && strcmp(n->words[0].text, "include") == 0 &&
		    !n->has_block) {
			if (config_parse_file(cv, n->words[1].text, n->line, lx->file, tail) == -1)
				return -1;
			continue;
		}
		**tail = n;
		*tail = &n->next;
	}
}

int
config_parse_text(
    struct conv *cv, const char *file, const char *text, size_t len, struct cnode ***tail)
{
	struct lexer lx = {cv, file, text, text + len, 1};

	if (memchr(text, '\0', len) != NULL)
		return config_cv_error(cv, file, 1, "file contains a NUL byte");
	return parse_block(cv, &lx, tail, true, 1);
}

/* Resolve `path` against `dir` into the arena (absolute paths unchanged). */
char *
config_path_join(struct arena *a, const char *dir, const char *path)
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

int
config_parse_file(
    struct conv *cv, const char *path, int line_from, const char *from, struct cnode ***tail)
{
	char why[128];
	char *text, *full;
	size_t len;
	int rc;

	if (cv->include_depth >= CONFIG_MAX_INCLUDE)
		return config_cv_error(cv, from, line_from, "includes nested too deeply");
	full = config_path_join(cv->tmp, from ? cv->base_dir : NULL, path);
	if (full == NULL)
		return config_cv_error(cv, from ? from : path, line_from, "out of memory");
	text = file_read_all(full, CONFIG_MAX_FILE, &len);
	if (text == NULL) {
		snprintf(why, sizeof(why), "%s",
		    errno == EINVAL      ? "not a regular file"
		        : errno == EFBIG ? "file too large"
		                         : strerror(errno));
		if (from == NULL)
			return config_cv_error(cv, full, 0, "cannot read: %s", why);
		return config_cv_error(cv, from, line_from, "cannot read '%s': %s", full, why);
	}
	cv->include_depth++;
	rc = config_parse_text(cv, full, text, len, tail);
	cv->include_depth--;
	free(text);
	return rc;
}
