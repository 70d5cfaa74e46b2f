/*
 * config_int.h - private declarations shared by the configuration reader's
 * files: config_lex.c (lexer, statement tree, include), config_conv.c
 * (generic converters), config.c (statement tables, defaults, entry points)
 * and config_print.c (-p).  Not for use outside common/config*.c.
 */
#ifndef MXB_CONFIG_INT_H
#define MXB_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/arena.h"
#include "common/config.h"

#define CONFIG_MAX_FILE    (4 * 1024 * 1024)
#define CONFIG_MAX_INCLUDE 8
#define CONFIG_MAX_MEMBERS 10000
#define CONFIG_MAX_WORDS   64

/* Rating points a challenger must win by: near-equal members (a few points
 * apart from noise) then keep their ranks, and the answer does not churn. */
#define CONFIG_DEFAULT_HYSTERESIS "5"

/* queue-min-free not written: 1.5 x max-message-size once that is known. */
#define QUEUE_MIN_FREE_UNSET UINT64_MAX

/* The conversion of one configuration: where errors go, what is being built. */
struct conv {
	struct config *cfg;
	struct arena *tmp; /* the statement tree; freed after */
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

/* The statement tree: each statement is its words plus an optional block. */
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

/* options, broker, metrics, resolver, relay: a block with no name, once. */
struct config_section {
	const char *name;
	const struct stmt *table;
	size_t off;
	size_t present_off; /* (size_t)-1: no `present` flag */
	unsigned parts;     /* the daemons that use it (CONFIG_PART_*) */
};
extern const struct config_section config_sections[];
extern const size_t config_nsections;

/* Statement tables that -p needs beside config_sections. */
extern const struct stmt config_zone_table[], config_rrl_table[], config_cluster_table[],
    config_dnssec_table[];
extern const struct stmt config_relay_tls_table[];

struct pr;

/*
 * config_lex.c.  config_cv_error records the first error as "file:line: why"
 * (later ones are dropped) and returns -1.  config_parse_text/_file append
 * the statements of a text or file (following include) at *tail; -1 on error.
 * config_path_join resolves path against dir into the arena.
 */
int __attribute__((format(printf, 4, 5)))
config_cv_error(struct conv *cv, const char *file, int line, const char *fmt, ...);
int config_parse_text(
    struct conv *cv, const char *file, const char *text, size_t len, struct cnode ***tail);
char *config_path_join(struct arena *a, const char *dir, const char *path);
int config_parse_file(
    struct conv *cv, const char *path, int line_from, const char *from, struct cnode ***tail);
/*
 * config_conv.c: argument checks and converters.  Each returns 0, or -1
 * after config_cv_error; the statement tables in config.c point at them.
 */
int config_need_args(struct conv *cv, const struct cnode *n, size_t nargs);
int config_need_block(struct conv *cv, const struct cnode *n, size_t nargs);
int config_parse_uint_word(struct conv *cv, const struct cnode *n, const struct cword *w,
    const struct stmt *s, unsigned long long *out);
bool config_is_domain(const char *s);
char *config_domain_normalize(struct conv *cv, const char *s);
int config_parse_addr_words(struct conv *cv, const struct cnode *n, size_t from, size_t to,
    uint16_t defport, struct addr *out);
int config_for_each_entry(struct conv *cv, const struct cnode *n,
    int (*fn)(struct conv *, const struct cnode *, void *), void *arg);
int config_addrs_entry(struct conv *cv, const struct cnode *c, void *arg);
int config_cidrs_entry(struct conv *cv, const struct cnode *c, void *arg);
int config_strings_entry(struct conv *cv, const struct cnode *c, void *arg);
int config_enum_index(const char *const *names, const char *text);
int config_conv_enum(struct conv *cv, const struct cnode *n, void *obj, const struct stmt *s);
int config_conv_bool(struct conv *cv, const struct cnode *n, void *obj, const struct stmt *s);
int config_conv_keyref(struct conv *cv, const struct cnode *n, const struct config_key **slot);
int config_conv_path(struct conv *cv, const struct cnode *n, char **slot);
int config_conv_scalar(struct conv *cv, const struct cnode *n, void *obj, const struct stmt *s);
int config_record_where(struct conv *cv, const struct cnode *n, const void *field);
int config_conv_value(struct conv *cv, const struct cnode *n, void *obj, const struct stmt *s);
int config_conv_block_skip(struct conv *cv, const struct cnode *first, const char *where,
    const struct stmt *table, const struct stmt *skip, void *obj);
int config_conv_block(struct conv *cv, const struct cnode *first, const char *where,
    const struct stmt *table, void *obj);
/* config_print.c: -p of the V_CUSTOM statements. */
void config_broker_zone_print(struct pr *p, const void *obj, const struct stmt *s);
void config_broker_rrl_print(struct pr *p, const void *obj, const struct stmt *s);
void config_zone_acl_print(struct pr *p, const void *obj, const struct stmt *s);
void config_zone_notify_print(struct pr *p, const void *obj, const struct stmt *s);
void config_zone_dnssec_print(struct pr *p, const void *obj, const struct stmt *s);
void config_cluster_members_print(struct pr *p, const void *obj, const struct stmt *s);
void config_cluster_failover_print(struct pr *p, const void *obj, const struct stmt *s);
void config_cluster_health_print(struct pr *p, const void *obj, const struct stmt *s);
void config_resolver_gateway_print(struct pr *p, const void *obj, const struct stmt *s);
void config_relay_outbound_source_print(struct pr *p, const void *obj, const struct stmt *s);
void config_relay_tls_print(struct pr *p, const void *obj, const struct stmt *s);
void config_relay_tls_policy_print(struct pr *p, const void *obj, const struct stmt *s);

#endif
