/* address.c - RFC 5321 path parser and the relay policy. */
#include "smtp-relay/address.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/addr.h"
#include "common/config.h"
#include "common/log.h"

/* A cursor over the bytes of one path. */
struct cursor {
	const char *p;
	const char *end;
};

static bool
is_atext(int c)
{
	return isalnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static bool
is_ldh(int c)
{
	return isalnum(c) || c == '-';
}

static bool
is_routing_char(int c)
{
	return c == '@' || c == '%' || c == '!';
}

/* Parse one domain (LDH labels, no trailing dot) into out, lower-cased. */
static enum address_status
parse_domain(struct cursor *c, char *out, size_t outlen)
{
	size_t n = 0, label = 0;

	for (;;) {
		if (c->p == c->end || !isalnum((unsigned char)*c->p))
			return ADDRESS_ESYNTAX;
		label = 0;
		while (c->p < c->end && is_ldh((unsigned char)*c->p)) {
			if (n + 1 >= outlen)
				return ADDRESS_ETOOLONG;
			out[n++] = (char)tolower((unsigned char)*c->p++);
			label++;
		}
		if (out[n - 1] == '-' || label > 63)
			return ADDRESS_ESYNTAX;
		if (c->p == c->end || *c->p != '.')
			break;
		if (n + 1 >= outlen)
			return ADDRESS_ETOOLONG;
		out[n++] = *c->p++;
	}
	out[n] = '\0';
	return ADDRESS_OK;
}

/* "[1.2.3.4]" or "[IPv6:...]"; the literal is kept as written (lower case). */
static enum address_status
parse_literal(struct cursor *c, char *out, size_t outlen)
{
	const char *close = memchr(c->p, ']', (size_t)(c->end - c->p));
	unsigned char bin[16];
	char text[64];
	size_t len;
	bool v6;

	/* inet_pton stops at a NUL: "[192.0.2.1\0junk]" must not pass. */
	if (close == NULL || memchr(c->p, '\0', (size_t)(close - c->p)) != NULL)
		return ADDRESS_ESYNTAX;
	len = (size_t)(close - c->p) + 1;
	if (len + 1 > outlen || len - 2 >= sizeof(text))
		return ADDRESS_ETOOLONG;
	v6 = len > 7 && strncasecmp(c->p + 1, "IPv6:", 5) == 0;
	memcpy(text, c->p + (v6 ? 6 : 1), len - (v6 ? 7 : 2));
	text[len - (v6 ? 7 : 2)] = '\0';
	if (inet_pton(v6 ? AF_INET6 : AF_INET, text, bin) != 1)
		return ADDRESS_ESYNTAX;
	for (size_t i = 0; i < len; i++)
		out[i] = (char)tolower((unsigned char)c->p[i]);
	out[len] = '\0';
	c->p = close + 1;
	return ADDRESS_OK;
}

/* "@a,@b:" - accepted as RFC 5321 requires, then dropped (flag kept). */
static enum address_status
skip_route(struct cursor *c, struct address *out)
{
	char scratch[ADDRESS_DOMAIN_MAX + 1];
	enum address_status st;

	out->flags |= ADDRESS_F_ROUTE;
	for (;;) {
		if (c->p == c->end || *c->p != '@')
			return ADDRESS_ESYNTAX;
		c->p++;
		if ((st = parse_domain(c, scratch, sizeof(scratch))) != ADDRESS_OK)
			return st;
		if (c->p < c->end && *c->p == ',') {
			c->p++;
			continue;
		}
		if (c->p == c->end || *c->p != ':')
			return ADDRESS_ESYNTAX;
		c->p++;
		return ADDRESS_OK;
	}
}

static enum address_status
parse_quoted(struct cursor *c, struct address *out, size_t *n)
{
	out->flags |= ADDRESS_F_QUOTED;
	out->local[(*n)++] = *c->p++;
	while (c->p < c->end && *c->p != '"') {
		unsigned char ch = (unsigned char)*c->p;

		if (ch == '\\') {
			if (*n + 2 > ADDRESS_LOCAL_MAX || c->end - c->p < 2)
				return ADDRESS_ESYNTAX;
			out->local[(*n)++] = *c->p++;
			ch = (unsigned char)*c->p;
		}
		if (ch < 32 || ch > 126)
			return ADDRESS_ESYNTAX;
		if (is_routing_char(ch))
			out->flags |= ADDRESS_F_ROUTING;
		if (*n + 1 > ADDRESS_LOCAL_MAX)
			return ADDRESS_ETOOLONG;
		out->local[(*n)++] = *c->p++;
	}
	if (c->p == c->end || *n + 1 > ADDRESS_LOCAL_MAX)
		return ADDRESS_ESYNTAX;
	out->local[(*n)++] = *c->p++;
	return ADDRESS_OK;
}

/* Dot-string: atoms separated by single dots, no leading or trailing dot. */
static enum address_status
parse_dot_string(struct cursor *c, struct address *out, size_t *n)
{
	bool want_atext = true;

	while (c->p < c->end && (is_atext((unsigned char)*c->p) || *c->p == '.')) {
		if (*c->p == '.' && want_atext)
			return ADDRESS_ESYNTAX;
		want_atext = *c->p == '.';
		if (is_routing_char((unsigned char)*c->p))
			out->flags |= ADDRESS_F_ROUTING;
		if (*n + 1 > ADDRESS_LOCAL_MAX)
			return ADDRESS_ETOOLONG;
		out->local[(*n)++] = *c->p++;
	}
	return *n == 0 || want_atext ? ADDRESS_ESYNTAX : ADDRESS_OK;
}

static enum address_status
parse_mailbox(struct cursor *c, struct address *out)
{
	enum address_status st;
	size_t n = 0;

	if (c->p < c->end && *c->p == '"')
		st = parse_quoted(c, out, &n);
	else
		st = parse_dot_string(c, out, &n);
	if (st != ADDRESS_OK)
		return st;
	out->local[n] = '\0';
	if (c->p < c->end && *c->p == '>' && out->flags == 0 &&
	    strcasecmp(out->local, "postmaster") == 0) {
		out->flags |= ADDRESS_F_BARE;
		return ADDRESS_OK;
	}
	if (c->p == c->end || *c->p != '@')
		return ADDRESS_ESYNTAX;
	c->p++;
	if (c->p < c->end && *c->p == '[') {
		out->flags |= ADDRESS_F_LITERAL;
		return parse_literal(c, out->domain, sizeof(out->domain));
	}
	return parse_domain(c, out->domain, sizeof(out->domain));
}

enum address_status
address_parse(const char *text, size_t len, struct address *out)
{
	struct cursor c = {text, text + len};
	enum address_status st;

	memset(out, 0, sizeof(*out));
	if (len > ADDRESS_PATH_MAX + 2)
		return ADDRESS_ETOOLONG;
	if (len < 2 || text[0] != '<' || text[len - 1] != '>')
		return ADDRESS_ESYNTAX;
	if (len == 2)
		return ADDRESS_NULL;
	c.p++;
	if (*c.p == '@' && (st = skip_route(&c, out)) != ADDRESS_OK)
		return st;
	if ((st = parse_mailbox(&c, out)) != ADDRESS_OK)
		return st;
	return c.p == c.end - 1 ? ADDRESS_OK : ADDRESS_ESYNTAX;
}

const char *
address_str(const struct address *a, char *buf, size_t len)
{
	if (a->local[0] == '\0')
		snprintf(buf, len, "%s", "");
	else if (a->domain[0] == '\0')
		snprintf(buf, len, "%s", a->local);
	else
		snprintf(buf, len, "%s@%s", a->local, a->domain);
	return buf;
}

bool
address_is_postmaster(const struct address *a)
{
	return !(a->flags & (ADDRESS_F_QUOTED | ADDRESS_F_ROUTE)) &&
	    strcasecmp(a->local, "postmaster") == 0;
}

bool
address_domain_valid(const char *domain)
{
	char out[ADDRESS_DOMAIN_MAX + 1];
	struct cursor c = {domain, domain + strlen(domain)};

	return parse_domain(&c, out, sizeof(out)) == ADDRESS_OK && c.p == c.end;
}

/* ---- policy ---- */

struct policy {
	struct config_strings local; /* owned copies, lower case */
	struct config_strings relay;
	struct cidr *trusted;
	size_t ntrusted;
	char *hostname;
	char **users;
	size_t nusers;
};

static int
strings_add(struct config_strings *s, const char *text, size_t len)
{
	char **v = realloc(s->v, (s->n + 1) * sizeof(*v));
	char *copy;

	if (v == NULL)
		return -1;
	s->v = v;
	if ((copy = strndup(text, len)) == NULL)
		return -1;
	for (char *p = copy; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	s->v[s->n++] = copy;
	return 0;
}

static void
strings_clear(struct config_strings *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

/* One domain a line; "#" and "!" start comments; blank lines ignored. */
static int
read_aliases_file(struct policy *p, const char *path)
{
	FILE *f = fopen(path, "r");
	char line[512];
	int lineno = 0, rc = 0;

	if (f == NULL) {
		log_warn("relay: %s", path);
		return -1;
	}
	while (rc == 0 && fgets(line, sizeof(line), f) != NULL) {
		size_t len = strcspn(line, "#!\r\n");
		char *s = line;

		lineno++;
		while (len > 0 && isspace((unsigned char)s[len - 1]))
			len--;
		while (len > 0 && isspace((unsigned char)*s)) {
			s++;
			len--;
		}
		if (len == 0)
			continue;
		s[len] = '\0';
		if (!address_domain_valid(s)) {
			log_warnx("relay: %s:%d: '%s' is not a domain name", path, lineno, s);
			rc = -1;
		} else if (strings_add(&p->local, s, len) == -1) {
			rc = -1;
		}
	}
	fclose(f);
	return rc;
}

static int
policy_copy(struct policy *p, const struct config_relay *r)
{
	for (size_t i = 0; i < r->local_aliases.n; i++)
		if (strings_add(&p->local, r->local_aliases.v[i], strlen(r->local_aliases.v[i])) ==
		    -1)
			return -1;
	for (size_t i = 0; i < r->relay_domains.n; i++)
		if (strings_add(&p->relay, r->relay_domains.v[i], strlen(r->relay_domains.v[i])) ==
		    -1)
			return -1;
	if (r->trusted_networks.n > 0) {
		p->trusted = calloc(r->trusted_networks.n, sizeof(*p->trusted));
		if (p->trusted == NULL)
			return -1;
		memcpy(
		    p->trusted, r->trusted_networks.v, r->trusted_networks.n * sizeof(*p->trusted));
		p->ntrusted = r->trusted_networks.n;
	}
	p->hostname = strdup(r->hostname != NULL ? r->hostname : "localhost");
	return p->hostname == NULL ? -1 : 0;
}

struct policy *
policy_new(const struct config_relay *r)
{
	struct policy *p = calloc(1, sizeof(*p));
	struct config_strings users = {NULL, 0};

	if (p == NULL)
		goto fail;
	if (policy_copy(p, r) == -1)
		goto fail;
	for (size_t i = 0; i < r->users.n; i++)
		if (strings_add(&users, r->users.v[i], strlen(r->users.v[i])) == -1)
			goto fail;
	p->users = users.v;
	p->nusers = users.n;
	users.v = NULL;
	if (r->local_aliases_file != NULL && read_aliases_file(p, r->local_aliases_file) == -1)
		goto fail;
	return p;
fail:
	if (errno == ENOMEM)
		log_warnx("relay: policy: out of memory");
	strings_clear(&users);
	policy_free(p);
	return NULL;
}

void
policy_free(struct policy *p)
{
	struct config_strings users;

	if (p == NULL)
		return;
	users.v = p->users;
	users.n = p->nusers;
	strings_clear(&users);
	strings_clear(&p->local);
	strings_clear(&p->relay);
	free(p->trusted);
	free(p->hostname);
	free(p);
}

bool
policy_is_trusted(const struct policy *p, const struct addr *client)
{
	for (size_t i = 0; i < p->ntrusted; i++)
		if (cidr_match(&p->trusted[i], client))
			return true;
	return false;
}

bool
policy_is_local_domain(const struct policy *p, const char *domain)
{
	if (strcasecmp(domain, p->hostname) == 0)
		return true;
	for (size_t i = 0; i < p->local.n; i++)
		if (strcmp(domain, p->local.v[i]) == 0)
			return true;
	return false;
}

/* The domain itself or a subdomain of it, on a label boundary. */
static bool
is_relay_domain(const struct policy *p, const char *domain)
{
	size_t dlen = strlen(domain);

	for (size_t i = 0; i < p->relay.n; i++) {
		size_t rlen = strlen(p->relay.v[i]);

		if (dlen == rlen && strcmp(domain, p->relay.v[i]) == 0)
			return true;
		if (dlen > rlen && domain[dlen - rlen - 1] == '.' &&
		    strcmp(domain + dlen - rlen, p->relay.v[i]) == 0)
			return true;
	}
	return false;
}

static bool
is_local_user(const struct policy *p, const char *local)
{
	if (p->nusers == 0)
		return true;
	for (size_t i = 0; i < p->nusers; i++)
		if (strcasecmp(local, p->users[i]) == 0)
			return true;
	return false;
}

enum policy_verdict
policy_check_rcpt(const struct policy *p, const struct address *rcpt, bool trusted)
{
	bool tricks =
	    (rcpt->flags & (ADDRESS_F_ROUTE | ADDRESS_F_ROUTING | ADDRESS_F_LITERAL)) != 0;

	if (rcpt->flags & ADDRESS_F_BARE)
		return POLICY_LOCAL;
	if (tricks && !trusted)
		return POLICY_DENY_ROUTING;
	if (!(rcpt->flags & ADDRESS_F_LITERAL) && policy_is_local_domain(p, rcpt->domain)) {
		if (address_is_postmaster(rcpt) || is_local_user(p, rcpt->local))
			return POLICY_LOCAL;
		return POLICY_UNKNOWN_USER;
	}
	if (trusted)
		return POLICY_RELAY;
	if (rcpt->flags & ADDRESS_F_QUOTED)
		return POLICY_DENY_ROUTING;
	return is_relay_domain(p, rcpt->domain) ? POLICY_RELAY : POLICY_DENY_RELAY;
}
