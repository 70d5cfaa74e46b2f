/*
 * tls_policy.c - per-destination outbound TLS levels (see tls_policy.h).
 */
#include "smtp-relay/tls_policy.h"

#include "common/config_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct tls_entry {
	char *domain; /* ".example.com" for subdomains */
	enum config_tls_level level;
	char *from; /* "tls-policy" or "file:line" */
};

struct tls_policy {
	struct tls_entry *v;
	size_t n;
	enum config_tls_level def;
	const char *def_reason;
};

int
tls_level_parse(const char *name)
{
	for (int i = 0; config_tls_level_names[i] != NULL; i++)
		if (strcasecmp(config_tls_level_names[i], name) == 0)
			return i;
	return -1;
}

const char *
tls_level_name(enum config_tls_level l)
{
	return l <= CONFIG_TLS_DANE_ONLY ? config_tls_level_names[l] : "?";
}

static int
add_entry(struct tls_policy *p, const char *domain, enum config_tls_level level, const char *from)
{
	struct tls_entry *v = realloc(p->v, (p->n + 1) * sizeof(*v));

	if (v == NULL)
		return -1;
	p->v = v;
	v[p->n].domain = strdup(domain);
	v[p->n].from = strdup(from);
	v[p->n].level = level;
	if (v[p->n].domain == NULL || v[p->n].from == NULL) {
		free(v[p->n].domain);
		free(v[p->n].from);
		return -1;
	}
	p->n++;
	return 0;
}

struct file_ctx {
	struct tls_policy *p;
	const char *path;
};

static int
file_entry(const char *domain, int level, int line, void *arg)
{
	struct file_ctx *fc = arg;
	char from[1100];

	snprintf(from, sizeof(from), "tls-policy-file %s:%d", fc->path, line);
	return add_entry(fc->p, domain, (enum config_tls_level)level, from);
}

struct tls_policy *
tls_policy_new(const struct config *cfg, char *err, size_t errlen)
{
	const struct config_relay *r = &cfg->relay;
	struct tls_policy *p = calloc(1, sizeof(*p));

	if (p == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < r->ntls_policies; i++)
		if (add_entry(p, r->tls_policies[i].domain, r->tls_policies[i].level,
		        "tls-policy") == -1) {
			snprintf(err, errlen, "out of memory");
			tls_policy_free(p);
			return NULL;
		}
	if (r->tls_policy_file != NULL) {
		struct file_ctx fc = {p, r->tls_policy_file};

		if (config_tls_policy_file_read(r->tls_policy_file, file_entry, &fc, err, errlen) ==
		    -1) {
			tls_policy_free(p);
			return NULL;
		}
	}
	if (r->tls_default_policy > 0) {
		p->def = (enum config_tls_level)(r->tls_default_policy - 1);
		p->def_reason = "tls-default-policy";
	} else if (cfg->resolver.dnssec_validating) {
		p->def = CONFIG_TLS_DANE;
		p->def_reason = "default (resolver dnssec-validating: dane)";
	} else {
		p->def = CONFIG_TLS_MAY;
		p->def_reason = "default (no DNSSEC-validating resolver: may)";
	}
	return p;
}

void
tls_policy_free(struct tls_policy *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->n; i++) {
		free(p->v[i].domain);
		free(p->v[i].from);
	}
	free(p->v);
	free(p);
}

/* ".example.com" matches any name ending in it (not example.com itself). */
static bool
entry_matches(const char *pat, const char *domain)
{
	size_t pl = strlen(pat), dl = strlen(domain);

	if (pat[0] != '.')
		return strcmp(pat, domain) == 0;
	return dl > pl && strcmp(domain + dl - pl, pat) == 0;
}

void
tls_policy_lookup(const struct tls_policy *p, const char *domain, struct tls_policy_result *out)
{
	const struct tls_entry *best = NULL;

	memset(out, 0, sizeof(*out));
	/* An exact entry first, then the longest suffix; first written wins ties. */
	for (size_t i = 0; i < p->n; i++) {
		const struct tls_entry *e = &p->v[i];

		if (!entry_matches(e->domain, domain))
			continue;
		if (best == NULL || (e->domain[0] != '.' && best->domain[0] == '.') ||
		    (e->domain[0] == '.' && best->domain[0] == '.' &&
		        strlen(e->domain) > strlen(best->domain)))
			best = e;
	}
	if (best != NULL) {
		out->level = best->level;
		out->configured = true;
		snprintf(out->reason, sizeof(out->reason), "%s \"%s\"", best->from, best->domain);
	} else {
		out->level = p->def;
		snprintf(out->reason, sizeof(out->reason), "%s", p->def_reason);
	}
}

void
tls_policy_apply_sts(struct tls_policy_result *r, int mode)
{
	r->sts_mode = mode;
	if (mode == TLS_STS_ENFORCE && r->level < CONFIG_TLS_VERIFY &&
	    r->level != CONFIG_TLS_NONE) {
		r->level = CONFIG_TLS_VERIFY;
		strncat(r->reason, ", MTA-STS enforce: verify",
		    sizeof(r->reason) - strlen(r->reason) - 1);
	}
}

int
tls_policy_hop(const struct tls_policy_result *r, enum tls_tlsa_state st, char *why, size_t whylen)
{
	enum config_tls_level fallback =
	    r->sts_mode == TLS_STS_ENFORCE ? CONFIG_TLS_VERIFY : CONFIG_TLS_MAY;

	if (r->level != CONFIG_TLS_DANE && r->level != CONFIG_TLS_DANE_ONLY)
		return (int)r->level;
	switch (st) {
	case TLSA_USABLE: return (int)r->level;
	case TLSA_UNUSABLE:
		if (r->level == CONFIG_TLS_DANE_ONLY)
			break;
		/* RFC 7672 §2.2 (as Postfix); MTA-STS enforce still verifies */
		return r->sts_mode == TLS_STS_ENFORCE ? CONFIG_TLS_VERIFY : CONFIG_TLS_ENCRYPT;
	case TLSA_TEMPFAIL:
		snprintf(why, whylen,
		    "TLS required by policy %s but the TLSA lookup failed (RFC 7672 §2.2.1)",
		    tls_level_name(r->level));
		return -1;
	case TLSA_INSECURE:
	case TLSA_NONE:
	case TLSA_NOT_ASKED:
		if (r->level == CONFIG_TLS_DANE_ONLY)
			break;
		return (int)fallback;
	}
	snprintf(why, whylen, "TLS required by policy dane-only but %s",
	    st == TLSA_INSECURE       ? "the MX or address answer was not DNSSEC-secure"
	        : st == TLSA_UNUSABLE ? "no TLSA record is usable"
	                              : "there is no TLSA record");
	return -1;
}
