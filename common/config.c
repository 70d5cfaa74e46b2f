/*
 * config.c - reader for the named.conf-style configuration: the statement
 * tables, defaults, cross-references and the entry points.
 *
 * Three stages: a lexer turns text into words, braces and semicolons; a
 * parser builds a tree of statements (words plus an optional block),
 * following `include` (both config_lex.c); converters (config_conv.c) walk
 * the tree with one table per block (here) and fill the typed structs of
 * config.h.  The top level is converted in two rounds, keys and options
 * first, so a key reference or a relative path is resolved where it is read:
 * nothing keeps a pointer into an array that is still growing.  Everything
 * the result owns lives in one arena (common/arena.h), so config_free is a
 * single walk and no partial state survives an error.  config_print.c prints
 * a configuration back (-p) from the same tables.
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

#define OFF(type, field) offsetof(struct type, field)

/* ---- statement tables ------------------------------------------------- */

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
	if (config_need_args(cv, n, 1) == -1)
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
	if (config_need_args(cv, n, 1) == -1 || config_conv_enum(cv, n, &idx, &alg) == -1)
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
base64_decode(struct arena *a, const char *text, uint8_t **out, size_t *outlen)
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
	if (config_need_block(cv, n, 1) == -1)
		return -1;
	kb.key = arena_push(cfg->arena, &cfg->keys, &cfg->nkeys, sizeof(*kb.key));
	if (kb.key == NULL)
		return config_cv_error(cv, n->file, n->line, "out of memory");
	kb.key->name = config_domain_normalize(cv, n->words[1].text);
	if (kb.key->name == NULL)
		return config_cv_error(cv, n->file, n->line,
		    "key name '%s' is not a valid DNS name", n->words[1].text);
	for (size_t i = 0; i + 1 < cfg->nkeys; i++)
		if (strcmp(cfg->keys[i].name, kb.key->name) == 0)
			return config_cv_error(
			    cv, n->file, n->line, "key '%s' defined twice", kb.key->name);
	if (config_conv_block(cv, n->children, "in key", key_table, &kb) == -1)
		return -1;
	if (!kb.has_algorithm)
		return config_cv_error(
		    cv, n->file, n->line, "key '%s' needs 'algorithm'", kb.key->name);
	if (kb.secret_text == NULL)
		return config_cv_error(
		    cv, n->file, n->line, "key '%s' needs 'secret'", kb.key->name);
	kb.key->secret_b64 = arena_strndup(cfg->arena, kb.secret_text, strlen(kb.secret_text));
	if (base64_decode(cfg->arena, kb.secret_text, &kb.key->secret, &kb.key->secret_len) == -1)
		return config_cv_error(cv, n->file, n->line,
		    "key '%s': secret is not base64 (generate one with: "
		    "openssl rand -base64 32)",
		    kb.key->name);
	return 0;
}

/* Every word of an entry on its first line: a missing ';' is named as such. */
static int
entry_one_line(struct conv *cv, const struct cnode *c)
{
	for (size_t i = 1; i < c->nwords; i++)
		if (c->words[i].line != c->words[i - 1].line)
			return config_cv_error(cv, c->file, c->words[i - 1].line,
			    "missing ';' after '%s'", c->words[i - 1].text);
	return 0;
}

/* The key named by word w of c (a `key` statement, read in the first round). */
static int
entry_key(struct conv *cv, const struct cnode *c, size_t w, const struct config_key **out)
{
	const char *name = c->words[w].text;

	*out = config_key_find(cv->cfg, name);
	if (*out == NULL)
		return config_cv_error(cv, c->file, c->words[w].line,
		    "key '%s' is not defined (add: key \"%s\" { algorithm hmac-sha256; "
		    "secret \"...\"; };)",
		    name, name);
	/* ldns 1.8.3 lacks hmac-sha224 for TSIG and misspells hmac-sha384. */
	if ((*out)->algorithm == CONFIG_HMAC_SHA224 || (*out)->algorithm == CONFIG_HMAC_SHA384)
		return config_cv_error(cv, c->file, c->words[w].line,
		    "key '%s': %s cannot sign transfers or NOTIFY here (use hmac-sha256)", name,
		    (*out)->algorithm_name);
	return 0;
}

/* True when word w of c is the bare keyword `key` with one word after it. */
static bool
is_key_word(const struct cnode *c, size_t w)
{
	return w + 2 == c->nwords && !c->words[w].quoted && strcmp(c->words[w].text, "key") == 0;
}

/*
 * One allow-transfer element: PREFIX, PREFIX key "NAME", key "NAME", any
 * (0.0.0.0/0 and ::/0) or none (nothing).
 */
static int
acl_entry(struct conv *cv, const struct cnode *c, void *arg)
{
	struct config_acl *acl = arg;
	struct config_acl_entry *e;
	const char *text = c->words[0].text;
	size_t w = 1;

	if (entry_one_line(cv, c) == -1)
		return -1;
	if (c->nwords == 1 && (strcmp(text, "any") == 0 || strcmp(text, "none") == 0)) {
		for (int i = 0; text[0] == 'a' && i < 2; i++) {
			e = arena_push(cv->cfg->arena, &acl->v, &acl->n, sizeof(*e));
			if (e == NULL)
				return config_cv_error(cv, c->file, c->line, "out of memory");
			cidr_parse(i == 0 ? "0.0.0.0/0" : "::/0", &e->net);
		}
		return 0;
	}
	e = arena_push(cv->cfg->arena, &acl->v, &acl->n, sizeof(*e));
	if (e == NULL)
		return config_cv_error(cv, c->file, c->line, "out of memory");
	if (is_key_word(c, 0)) {
		e->any_addr = true;
		w = 0;
	} else if (c->words[0].quoted || cidr_parse(text, &e->net) == -1) {
		return config_cv_error(cv, c->file, c->line,
		    "'%s' is not an address or prefix with host bits clear, nor 'key \"NAME\"'",
		    text);
	}
	if (w == c->nwords)
		return 0;
	if (!is_key_word(c, w))
		return config_cv_error(cv, c->file, c->line,
		    "unexpected '%s' in allow-transfer (expected PREFIX, PREFIX key \"NAME\" "
		    "or key \"NAME\")",
		    c->words[w].text);
	return entry_key(cv, c, w + 1, &e->key);
}

static int
zone_allow_transfer_cb(struct conv *cv, const struct cnode *n, void *obj, const struct stmt *s)
{
	struct config_zone *z = obj;

	(void)s;
	z->allow_transfer.n = 0;
	if (config_record_where(cv, n, &z->allow_transfer) == -1)
		return -1;
	return config_for_each_entry(cv, n, acl_entry, &z->allow_transfer);
}

/* One also-notify target, words [from, nwords) of c: ADDR [port N] [key "NAME"]. */
static int
notify_words(struct conv *cv, const struct cnode *c, size_t from, struct config_zone *z)
{
	size_t to = c->nwords, nkeys = z->also_notify.n;
	const struct config_key **k;
	struct addr *a;

	if (to >= from + 3 && is_key_word(c, to - 2))
		to -= 2;
	a = arena_push(cv->cfg->arena, &z->also_notify.v, &z->also_notify.n, sizeof(*a));
	k = arena_push(cv->cfg->arena, &z->also_notify_keys, &nkeys, sizeof(*k));
	if (a == NULL || k == NULL)
		return config_cv_error(cv, c->file, c->line, "out of memory");
	if (config_parse_addr_words(cv, c, from, to, CONFIG_PORT_DNS, a) == -1)
		return -1;
	return to == c->nwords ? 0 : entry_key(cv, c, to + 1, k);
}

static int
notify_entry(struct conv *cv, const struct cnode *c, void *arg)
{
	return entry_one_line(cv, c) == -1 ? -1 : notify_words(cv, c, 0, arg);
}

static int
zone_also_notify_cb(struct conv *cv, const struct cnode *n, void *obj, const struct stmt *s)
{
	struct config_zone *z = obj;

	(void)s;
	z->also_notify.n = 0;
	if (config_record_where(cv, n, &z->also_notify) == -1)
		return -1;
	if (!n->has_block)
		return config_need_args(cv, n, 1) == -1 ? -1 : notify_words(cv, n, 1, z);
	return config_for_each_entry(cv, n, notify_entry, z);
}

const struct stmt config_dnssec_table[] = {
    T("key-directory", V_PATH, config_dnssec, key_directory, "(required)"),
    D("signature-validity", config_dnssec, validity, "14d", 3600, 365 * 86400),
    D("signature-refresh", config_dnssec, refresh, "7d", 600, 364 * 86400),
    D("inception-offset", config_dnssec, inception_offset, "1h", 0, 86400), END};

static int
zone_dnssec_cb(struct conv *cv, const struct cnode *n, void *obj, const struct stmt *s)
{
	struct config_zone *z = obj;
	struct config_dnssec *d = &z->dnssec;

	(void)s;
	if (config_need_block(cv, n, 0) == -1)
		return -1;
	if (d->enabled)
		return config_cv_error(
		    cv, n->file, n->line, "dnssec given twice in zone '%s'", z->name);
	if (table_defaults(cv->cfg, config_dnssec_table, d) == -1 ||
	    config_conv_block(cv, n->children, "in dnssec", config_dnssec_table, d) == -1)
		return -1;
	d->enabled = true;
	if (d->key_directory == NULL)
		return config_cv_error(
		    cv, n->file, n->line, "dnssec in zone '%s' needs 'key-directory'", z->name);
	if (d->refresh >= d->validity)
		return config_cv_error(cv, n->file, n->line,
		    "zone '%s': signature-refresh must be shorter than signature-validity",
		    z->name);
	return 0;
}

const struct stmt config_zone_table[] = {T("file", V_PATH, config_zone, file, "(required)"),
    C("allow-transfer", zone_allow_transfer_cb, false, "none", config_zone_acl_print),
    C("also-notify", zone_also_notify_cb, false, NULL, config_zone_notify_print),
    A("notify-source", V_ADDR, config_zone, notify_source, 0, "(the broker's notify-source)"),
    C("dnssec", zone_dnssec_cb, false, "(unsigned)", config_zone_dnssec_print), END};

static int
broker_zone_cb(struct conv *cv, const struct cnode *n, void *obj, const struct stmt *s)
{
	struct config_broker *b = obj;
	struct config_zone *z;

	(void)s;
	if (config_need_block(cv, n, 1) == -1)
		return -1;
	z = arena_push(cv->cfg->arena, &b->zones, &b->nzones, sizeof(*z));
	if (z == NULL)
		return config_cv_error(cv, n->file, n->line, "out of memory");
	z->line = n->line;
	z->name = config_domain_normalize(cv, n->words[1].text);
	if (z->name == NULL)
		return config_cv_error(
		    cv, n->file, n->line, "zone name '%s' is not a domain name", n->words[1].text);
	for (size_t i = 0; i + 1 < b->nzones; i++)
		if (strcmp(b->zones[i].name, z->name) == 0)
			return config_cv_error(cv, n->file, n->line,
			    "zone '%s' given twice (first on line %d)", z->name, b->zones[i].line);
	if (config_conv_block(cv, n->children, "in zone", config_zone_table, z) == -1)
		return -1;
	if (z->file == NULL)
		return config_cv_error(cv, n->file, n->line, "zone '%s' needs 'file'", z->name);
	return 0;
}

const struct stmt config_rrl_table[] = {
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
	if (config_need_block(cv, n, 0) == -1)
		return -1;
	return config_conv_block(cv, n->children, "in rate-limit", config_rrl_table, &b->rrl);
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
    C("zone", broker_zone_cb, true, NULL, config_broker_zone_print),
    C("rate-limit", broker_rrl_cb, false, "(off)", config_broker_rrl_print), END};

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
		return config_cv_error(
		    cv, c->file, c->line, "more than %d members", CONFIG_MAX_MEMBERS);
	m = arena_push(cv->cfg->arena, &cl->members, &cl->nmembers, sizeof(*m));
	if (m == NULL)
		return config_cv_error(cv, c->file, c->line, "out of memory");
	if (config_parse_addr_words(cv, c, 0, 1, 0, &m->addr) == -1)
		return -1;
	m->check = m->addr;
	m->weight = 1;
	while (i < c->nwords) {
		const struct cword *w = &c->words[i];

		if (w->line != c->words[i - 1].line)
			return config_cv_error(cv, c->file, c->words[i - 1].line,
			    "missing ';' after '%s'", c->words[i - 1].text);
		if (strcmp(w->text, "drain") == 0) {
			m->drain = true;
			i++;
		} else if (strcmp(w->text, "weight") == 0 && i + 1 < c->nwords) {
			if (config_parse_uint_word(cv, c, &c->words[i + 1], &weight, &v) == -1)
				return -1;
			m->weight = (unsigned)v;
			i += 2;
		} else if (strcmp(w->text, "check") == 0 && i + 1 < c->nwords) {
			if (config_parse_addr_words(cv, c, i + 1, i + 2, 0, &m->check) == -1)
				return -1;
			i += 2;
		} else
			return config_cv_error(cv, c->file, w->line,
			    "unexpected '%s' in member %s (expected weight N, drain or "
			    "check ADDR)",
			    w->text, c->words[0].text);
	}
	for (size_t k = 0; k + 1 < cl->nmembers; k++)
		if (addr_equal_host(&cl->members[k].addr, &m->addr))
			return config_cv_error(
			    cv, c->file, c->line, "member %s listed twice", c->words[0].text);
	return 0;
}

static int
cluster_members_cb(struct conv *cv, const struct cnode *n, void *obj, const struct stmt *s)
{
	(void)s;
	return config_for_each_entry(cv, n, member_entry, obj);
}

static int
cluster_failover_cb(struct conv *cv, const struct cnode *n, void *obj, const struct stmt *s)
{
	struct config_cluster *cl = obj;
	struct addr a, *slot;

	(void)s;
	if (n->has_block)
		return config_cv_error(cv, n->file, n->line, "'failover' takes one address");
	if (config_parse_addr_words(cv, n, 1, n->nwords, 0, &a) == -1)
		return -1;
	if (n->nwords != 2)
		return config_cv_error(
		    cv, n->file, n->line, "'failover' takes an address, no port");
	slot = addr_family(&a) == AF_INET ? &cl->failover4 : &cl->failover6;
	if (slot->len != 0)
		return config_cv_error(
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
	if (config_need_args(cv, n, 2) == -1 || config_conv_enum(cv, n, &idx, &kind) == -1 ||
	    config_parse_uint_word(cv, n, &n->words[2], &port, &v) == -1)
		return -1;
	cl->health = (enum config_health)idx;
	cl->health_port = (uint16_t)v;
	return 0;
}

static const char *const protocols[] = {"native", "lbcd", NULL};
static const char *const policies[] = {"ranked", "weighted", NULL};

const struct stmt config_cluster_table[] = {U("dns-ttl", config_cluster, dns_ttl, "45", 0, 604800),
    D("dns-refresh", config_cluster, dns_refresh, "30", 1, 86400),
    D("polling-interval", config_cluster, polling_interval, "30", 1, 86400),
    U("max-members", config_cluster, max_members, "3", 1, 1000),
    A("masters", V_ADDRS, config_cluster, masters, CONFIG_PORT_DNS, NULL),
    C("members", cluster_members_cb, false, "(required)", config_cluster_members_print),
    C("failover", cluster_failover_cb, true, NULL, config_cluster_failover_print),
    P("metric-port", config_cluster, metric_port, "(4331; 4330 with protocol lbcd)"),
    T("key", V_KEYREF, config_cluster, key, NULL),
    E("protocol", config_cluster, protocol, protocols, "native"),
    C("health-check", cluster_health_cb, false, "none", config_cluster_health_print),
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
	if (config_need_block(cv, n, 1) == -1)
		return -1;
	cl = arena_push(cfg->arena, &cfg->clusters, &cfg->nclusters, sizeof(*cl));
	if (cl == NULL)
		return config_cv_error(cv, n->file, n->line, "out of memory");
	cl->line = n->line;
	cl->name = config_domain_normalize(cv, n->words[1].text);
	if (cl->name == NULL)
		return config_cv_error(cv, n->file, n->line,
		    "cluster name '%s' is not a domain name", n->words[1].text);
	for (size_t i = 0; i + 1 < cfg->nclusters; i++)
		if (strcmp(cfg->clusters[i].name, cl->name) == 0)
			return config_cv_error(cv, n->file, n->line,
			    "cluster '%s' given twice (first on line %d)", cl->name,
			    cfg->clusters[i].line);
	if (table_defaults(cfg, config_cluster_table, cl) == -1)
		return config_cv_error(cv, n->file, n->line, "out of memory");
	if (config_conv_block(cv, n->children, "in cluster", config_cluster_table, cl) == -1)
		return -1;
	if (cl->nmembers == 0)
		return config_cv_error(
		    cv, n->file, n->line, "cluster '%s' needs 'members'", cl->name);
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
	if (config_need_args(cv, n, 1) == -1)
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
	r->gateway = config_domain_normalize(cv, text);
	if (r->gateway != NULL)
		return 0;
bad:
	return config_cv_error(cv, n->file, n->words[1].line,
	    "'gateway' wants a host name or an address literal like \"[192.0.2.1]\", "
	    "not '%s'",
	    text);
}

static const struct stmt resolver_table[] = {A("nameservers", V_ADDRS, config_resolver, nameservers,
                                                 CONFIG_PORT_DNS, "(from /etc/resolv.conf)"),
    T("local-mx", V_PATH, config_resolver, local_mx, NULL),
    T("hosts", V_PATH, config_resolver, hosts, "/etc/hosts"),
    T("zones", V_DOMAINS, config_resolver, zones, NULL),
    C("gateway", resolver_gateway_cb, false, NULL, config_resolver_gateway_print),
    D("timeout", config_resolver, timeout, "5s", 1, 300),
    U("attempts", config_resolver, attempts, "2", 1, 10),
    U("cache-size", config_resolver, cache_size, "10000", 0, 10000000),
    T("dnssec-validating", V_BOOL, config_resolver, dnssec_validating, "no"), END};

static const char *const families[] = {"any", "ipv4", "ipv6", NULL};

/* One outbound source address for a family; a second of the same family is an error. */
static int
relay_source_entry(struct conv *cv, const struct cnode *c, void *arg)
{
	struct config_relay *r = arg;
	struct addr a, *slot;

	if (config_parse_addr_words(cv, c, 0, c->nwords, 0, &a) == -1)
		return -1;
	if (c->nwords != 1)
		return config_cv_error(
		    cv, c->file, c->line, "'outbound-source' takes addresses, no port");
	slot = addr_family(&a) == AF_INET ? &r->outbound_source4 : &r->outbound_source6;
	if (slot->len != 0)
		return config_cv_error(
		    cv, c->file, c->line, "'outbound-source' has two addresses of the same family");
	*slot = a;
	return 0;
}

static int
relay_source_cb(struct conv *cv, const struct cnode *n, void *obj, const struct stmt *s)
{
	struct config_relay *r = obj;

	(void)s;
	r->outbound_source4.len = 0;
	r->outbound_source6.len = 0;
	return config_for_each_entry(cv, n, relay_source_entry, r);
}

const struct stmt config_relay_tls_table[] = {
    T("certificate", V_PATH, config_relay_tls, certificate, "(required)"),
    T("key", V_PATH, config_relay_tls, key, "(required)"),
    T("ciphers", V_STRING, config_relay_tls, ciphers, "(OpenSSL's default)"),
    T("ciphersuites", V_STRING, config_relay_tls, ciphersuites, "(OpenSSL's default)"), END};

/* tls { certificate; key; ... }: both files are required (-t opens them). */
static int
relay_tls_cb(struct conv *cv, const struct cnode *n, void *obj, const struct stmt *s)
{
	struct config_relay *r = obj;

	(void)s;
	if (config_need_block(cv, n, 0) == -1 ||
	    config_conv_block(cv, n->children, "in tls", config_relay_tls_table, &r->tls) == -1)
		return -1;
	if (r->tls.certificate == NULL || r->tls.key == NULL)
		return config_cv_error(
		    cv, n->file, n->line, "relay: tls needs both 'certificate' and 'key'");
	r->tls.present = true;
	return config_record_where(cv, n, &r->tls);
}

const char *const config_tls_level_names[] = {
    "none", "may", "encrypt", "verify", "dane", "dane-only", NULL};
static const char *const tls_default_names[] = {
    "auto", "none", "may", "encrypt", "verify", "dane", "dane-only", NULL};

/* tls-policy "domain" LEVEL; repeatable, one entry per domain. */
static int
relay_tls_policy_cb(struct conv *cv, const struct cnode *n, void *obj, const struct stmt *s)
{
	struct config_relay *r = obj;
	struct config_tls_policy *tp;
	const char *dom;
	char *norm;
	int lvl;

	(void)s;
	if (n->has_block || n->nwords != 3)
		return config_cv_error(cv, n->file, n->line,
		    "'tls-policy' takes a domain and a level, like tls-policy \"example.com\" "
		    "verify;");
	dom = n->words[1].text;
	if ((norm = config_domain_normalize(cv, dom[0] == '.' ? dom + 1 : dom)) == NULL)
		return config_cv_error(
		    cv, n->file, n->line, "'tls-policy': '%s' is not a domain name", dom);
	if ((lvl = config_enum_index(config_tls_level_names, n->words[2].text)) < 0)
		return config_cv_error(cv, n->file, n->line,
		    "'tls-policy': unknown level '%s' (none, may, encrypt, verify, dane, "
		    "dane-only)",
		    n->words[2].text);
	if (dom[0] == '.') {
		size_t len = strlen(norm);
		char *dot = arena_alloc(cv->cfg->arena, len + 2);

		if (dot == NULL)
			return config_cv_error(cv, n->file, n->line, "out of memory");
		dot[0] = '.';
		memcpy(dot + 1, norm, len + 1);
		norm = dot;
	}
	for (size_t i = 0; i < r->ntls_policies; i++)
		if (strcmp(r->tls_policies[i].domain, norm) == 0)
			return config_cv_error(
			    cv, n->file, n->line, "'tls-policy' for '%s' given twice", norm);
	tp = arena_push(cv->cfg->arena, &r->tls_policies, &r->ntls_policies, sizeof(*tp));
	if (tp == NULL)
		return config_cv_error(cv, n->file, n->line, "out of memory");
	tp->domain = norm;
	tp->level = (enum config_tls_level)lvl;
	return 0;
}

static const struct stmt relay_table[] = {
    A("listen", V_ADDRS, config_relay, listen, CONFIG_PORT_SMTP, "0.0.0.0 ::"),
    A("smtps-listen", V_ADDRS, config_relay, smtps_listen, CONFIG_PORT_SMTPS, NULL),
    A("submission-listen", V_ADDRS, config_relay, submission_listen, CONFIG_PORT_SUBMISSION, NULL),
    C("tls", relay_tls_cb, false, "(no TLS)", config_relay_tls_print),
    T("auth-file", V_PATH, config_relay, auth_file, NULL),
    T("auth-on-listen", V_BOOL, config_relay, auth_on_listen, "no"),
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
    U("queue-max-messages", config_relay, queue_max_messages, "100000", 0, 100000000),
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
    U("initial-destination-concurrency", config_relay, initial_destination_concurrency, "2", 1,
        10000),
    D("destination-rate-delay", config_relay, destination_rate_delay, "0", 0, 3600),
    D("connection-reuse-time", config_relay, connection_reuse_time, "2", 0, 3600),
    U("connection-reuse-limit", config_relay, connection_reuse_limit, "100", 1, 100000),
    E("outbound-family", config_relay, outbound_family, families, "any"),
    C("outbound-source", relay_source_cb, false, NULL, config_relay_outbound_source_print),
    P("remote-port", config_relay, remote_port, "25"),
    T("hold-delivery", V_BOOL, config_relay, hold_delivery, "no"),
    T("mta-sts", V_BOOL, config_relay, mta_sts, "yes"),
    T("mta-sts-cache", V_PATH, config_relay, mta_sts_cache, "mta-sts"),
    T("mta-sts-ca-file", V_PATH, config_relay, mta_sts_ca_file, "(the system trust store)"),
    P("mta-sts-port", config_relay, mta_sts_port, "443"),
    U("mta-sts-cache-size", config_relay, mta_sts_cache_size, "1000", 1, 1000000),
    T("postmaster", V_STRING, config_relay, postmaster, "(postmaster@HOSTNAME)"),
    T("control-socket", V_PATH, config_relay, control_socket, "smtp-relayd.sock"),
    A("status-listen", V_ADDR, config_relay, status_listen, CONFIG_PORT_RELAY_HTTP, NULL),
    C("tls-policy", relay_tls_policy_cb, true, NULL, config_relay_tls_policy_print),
    T("tls-policy-file", V_PATH, config_relay, tls_policy_file, NULL),
    E("tls-default-policy", config_relay, tls_default_policy, tls_default_names, "auto"),
    T("tls-ca-file", V_PATH, config_relay, tls_ca_file, "(the system store)"), END};

const struct config_section config_sections[] = {
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

const size_t config_nsections = sizeof(config_sections) / sizeof(config_sections[0]);

static int
top_section_cb(struct conv *cv, const struct cnode *n, void *obj, const struct stmt *s)
{
	struct config *cfg = obj;
	const char *name = n->words[0].text;
	char where[32];

	(void)s;
	if (config_need_block(cv, n, 0) == -1)
		return -1;
	for (size_t i = 0; i < config_nsections; i++) {
		void *sec;

		if (strcmp(config_sections[i].name, name) != 0)
			continue;
		sec = (char *)cfg + config_sections[i].off;
		if (config_sections[i].present_off != (size_t)-1)
			*FIELD(sec, config_sections[i].present_off, bool) = true;
		snprintf(where, sizeof(where), "in %s", name);
		return config_conv_block(cv, n->children, where, config_sections[i].table, sec);
	}
	return config_cv_error(cv, n->file, n->line, "internal: no section '%s'", name);
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
		base = strcmp(base, ".") == 0 ? cwd : config_path_join(cv->tmp, cwd, base);
		if (base == NULL)
			return config_cv_error(cv, cfg->path, 0, "out of memory");
	}
	o->directory = o->directory ? config_path_join(cfg->arena, base, o->directory)
	                            : arena_strndup(cfg->arena, base, strlen(base));
	if (o->directory == NULL)
		return config_cv_error(cv, cfg->path, 0, "out of memory");
	for (const struct stmt *s = options_table; s->name != NULL; s++) {
		char **slot = FIELD(o, s->off, char *);

		if (s->type != V_PATH || s->off == OFF(config_options, directory) || *slot == NULL)
			continue;
		*slot = config_path_join(cfg->arena, o->directory, *slot);
		if (*slot == NULL)
			return config_cv_error(cv, cfg->path, 0, "out of memory");
	}
	cv->dir = o->directory;
	return 0;
}

static int
conv_top(struct conv *cv, const struct cnode *tree)
{
	if (config_conv_block_skip(cv, tree, "at top level", top_first_table, top_table, cv->cfg) ==
	        -1 ||
	    options_finish(cv) == -1)
		return -1;
	return config_conv_block_skip(
	    cv, tree, "at top level", top_table, top_first_table, cv->cfg);
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
		if ((i = config_enum_index(s->names, s->def)) < 0)
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
	for (size_t i = 0; i < config_nsections; i++)
		if (table_defaults(
		        cfg, config_sections[i].table, (char *)cfg + config_sections[i].off) == -1)
			return -1;
	return table_defaults(cfg, config_rrl_table, &cfg->broker.rrl);
}

/* Table defaults of the paths not given, resolved against the directory. */
static void
path_defaults(struct config *cfg, const struct stmt *table, void *obj)
{
	for (const struct stmt *s = table; s->name != NULL; s++) {
		char **slot = FIELD(obj, s->off, char *);

		if (s->type == V_PATH && s->def != NULL && s->def[0] != '(' && *slot == NULL)
			*slot = config_path_join(cfg->arena, cfg->options.directory, s->def);
	}
}

/* The TLS listeners and AUTH need a certificate: say which statement lacks it. */
static int
relay_tls_check(struct conv *cv)
{
	struct config *cfg = cv->cfg;
	const struct config_relay *r = &cfg->relay;
	const void *f = r->smtps_listen.n > 0 ? (const void *)&r->smtps_listen
	    : r->submission_listen.n > 0      ? (const void *)&r->submission_listen
	    : r->auth_file != NULL            ? (const void *)&r->auth_file
	                                      : NULL;

	if (f == NULL || r->tls.present)
		return 0;
	return config_cv_error(cv, config_where_file(cfg, f), config_where(cfg, f),
	    "relay: %s needs a tls { certificate ...; key ...; } block",
	    f == &r->auth_file          ? "auth-file"
	        : f == &r->smtps_listen ? "smtps-listen"
	                                : "submission-listen");
}

static int
apply_defaults(struct conv *cv)
{
	struct config *cfg = cv->cfg;
	struct config_relay *r = &cfg->relay;
	char host[256];

	for (size_t i = 0; i < config_nsections; i++)
		path_defaults(cfg, config_sections[i].table, (char *)cfg + config_sections[i].off);
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
	if (relay_tls_check(cv) == -1)
		return -1;
	if (r->max_retry_interval < r->retry_interval) {
		const void *f = config_where(cfg, &r->max_retry_interval) != 0
		    ? (void *)&r->max_retry_interval
		    : (void *)&r->retry_interval;

		return config_cv_error(cv, config_where_file(cfg, f), config_where(cfg, f),
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

	if (cfg == NULL || (cfg->arena = arena_new(0)) == NULL || (cv.tmp = arena_new(0)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", name);
		arena_free(cfg ? cfg->arena : NULL);
		free(cfg);
		return NULL;
	}
	cv.cfg = cfg;
	cv.err = err;
	cv.errlen = errlen;
	cv.base_dir = base_dir;
	cfg->path = arena_strndup(cfg->arena, name, strlen(name));
	if (set_defaults(cfg) == -1)
		config_cv_error(&cv, name, 0, "out of memory");
	else if (text != NULL)
		config_parse_text(&cv, cfg->path, text, len, &tail);
	else
		config_parse_file(&cv, name, 0, NULL, &tail);
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
	grammar_table(out, "rate-limit", config_rrl_table);
	grammar_table(out, "zone", config_zone_table);
	grammar_table(out, "dnssec", config_dnssec_table);
	grammar_table(out, "cluster", config_cluster_table);
	grammar_table(out, "metrics", metrics_table);
	grammar_table(out, "resolver", resolver_table);
	grammar_table(out, "relay", relay_table);
	grammar_table(out, "tls", config_relay_tls_table);
}
