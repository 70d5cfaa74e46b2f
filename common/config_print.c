/* config_print.c - print a configuration back in its own grammar (-p). */
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

struct pr {
	FILE *out;
	int depth;
	bool show_secrets;
};

/* ---- printing (-p) ---------------------------------------------------- */

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

void
config_broker_zone_print(struct pr *p, const void *obj, const struct stmt *s)
{
	const struct config_broker *b = obj;

	for (size_t i = 0; i < b->nzones; i++)
		pr_block(p, s->name, b->zones[i].name, config_zone_table, &b->zones[i]);
}

void
config_zone_acl_print(struct pr *p, const void *obj, const struct stmt *s)
{
	const struct config_acl *acl = &((const struct config_zone *)obj)->allow_transfer;
	char buf[ADDR_STRLEN + 8];

	pr_list_open(p, s->name);
	for (size_t i = 0; i < acl->n; i++) {
		const struct config_acl_entry *e = &acl->v[i];

		fputc(' ', p->out);
		if (!e->any_addr)
			fputs(cidr_str(&e->net, buf, sizeof(buf)), p->out);
		if (e->key != NULL) {
			fputs(e->any_addr ? "key " : " key ", p->out);
			pr_quoted(p, e->key->name);
		}
		fputc(';', p->out);
	}
	fputs(acl->n == 0 ? " none; };\n" : " };\n", p->out);
}

void
config_zone_notify_print(struct pr *p, const void *obj, const struct stmt *s)
{
	const struct config_zone *z = obj;

	if (z->also_notify.n == 0)
		return;
	pr_list_open(p, s->name);
	for (size_t i = 0; i < z->also_notify.n; i++) {
		fputc(' ', p->out);
		pr_addr(p, &z->also_notify.v[i]);
		if (z->also_notify_keys[i] != NULL) {
			fputs(" key ", p->out);
			pr_quoted(p, z->also_notify_keys[i]->name);
		}
		fputc(';', p->out);
	}
	fputs(" };\n", p->out);
}

void
config_broker_rrl_print(struct pr *p, const void *obj, const struct stmt *s)
{
	const struct config_broker *b = obj;

	pr_block(p, s->name, NULL, config_rrl_table, &b->rrl);
}

void
config_zone_dnssec_print(struct pr *p, const void *obj, const struct stmt *s)
{
	const struct config_zone *z = obj;

	if (z->dnssec.enabled)
		pr_block(p, s->name, NULL, config_dnssec_table, &z->dnssec);
}

void
config_cluster_members_print(struct pr *p, const void *obj, const struct stmt *s)
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

void
config_cluster_failover_print(struct pr *p, const void *obj, const struct stmt *s)
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

void
config_cluster_health_print(struct pr *p, const void *obj, const struct stmt *s)
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

void
config_resolver_gateway_print(struct pr *p, const void *obj, const struct stmt *s)
{
	const struct config_resolver *r = obj;

	if (r->gateway == NULL)
		return;
	pr_indent(p);
	fprintf(p->out, "%s ", s->name);
	pr_quoted(p, r->gateway);
	fputs(";\n", p->out);
}

void
config_relay_outbound_source_print(struct pr *p, const void *obj, const struct stmt *s)
{
	const struct config_relay *r = obj;
	const struct addr *src[] = {&r->outbound_source4, &r->outbound_source6};
	char buf[ADDR_STRLEN];

	if (src[0]->len == 0 && src[1]->len == 0)
		return;
	pr_indent(p);
	fprintf(p->out, "%s {", s->name);
	for (size_t i = 0; i < 2; i++)
		if (src[i]->len != 0)
			fprintf(p->out, " %s;", addr_host_str(src[i], buf, sizeof(buf)));
	fputs(" };\n", p->out);
}

void
config_relay_tls_print(struct pr *p, const void *obj, const struct stmt *s)
{
	const struct config_relay *r = obj;

	if (r->tls.present)
		pr_block(p, s->name, NULL, config_relay_tls_table, &r->tls);
}

void
config_relay_tls_policy_print(struct pr *p, const void *obj, const struct stmt *s)
{
	const struct config_relay *r = obj;

	for (size_t i = 0; i < r->ntls_policies; i++) {
		pr_indent(p);
		fprintf(p->out, "%s ", s->name);
		pr_quoted(p, r->tls_policies[i].domain);
		fprintf(p->out, " %s;\n", config_tls_level_names[r->tls_policies[i].level]);
	}
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

	for (size_t i = 0; i < config_nsections; i++) {
		const void *sec = (const char *)cfg + config_sections[i].off;

		if (!(config_sections[i].parts & parts) ||
		    (sec == &cfg->resolver && !cfg->resolver.present))
			continue;
		pr_block(&p, config_sections[i].name, NULL, config_sections[i].table, sec);
		if (sec == &cfg->options)
			for (size_t k = 0; k < cfg->nkeys; k++)
				pr_key(&p, &cfg->keys[k]);
		if (sec == &cfg->broker)
			for (size_t c = 0; c < cfg->nclusters; c++)
				pr_block(&p, "cluster", cfg->clusters[c].name, config_cluster_table,
				    &cfg->clusters[c]);
	}
}
