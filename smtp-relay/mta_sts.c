/*
 * mta_sts.c - MTA-STS (RFC 8461): the record and policy parsers, MX
 * pattern matching, the policy cache files, and the asynchronous lookup
 * (TXT record, HTTPS fetch through evhttp over bufferevent_openssl).
 */
#include "smtp-relay/mta_sts.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "common/fileio.h"
#include "common/log.h"
#include "resolver/dnsclient.h"
#include "resolver/dnsmsg.h"

/* First line of a cache file; a file without it is not ours. */
#define CACHE_MAGIC "mxbroker-mta-sts 1"
/* A cache file: the header lines and a policy of at most MTA_STS_MX_MAX lines. */
#define CACHE_FILE_MAX (MTA_STS_BODY_MAX + 1024)

static const char *const mode_names[] = {"none", "testing", "enforce"};

const char *
mta_sts_mode_str(enum mta_sts_mode m)
{
	return (unsigned)m < 3 ? mode_names[m] : "?";
}

const char *
mta_sts_status_str(enum mta_sts_status s)
{
	switch (s) {
	case MTA_STS_NONE: return "none";
	case MTA_STS_POLICY: return "policy";
	case MTA_STS_TEMPFAIL: return "tempfail";
	}
	return "?";
}

/* ---- the TXT record, §3.1 ---- */

static bool
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static bool
is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* sts-ext-name / sts-policy-ext-name: (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / "."). */
static bool
is_ext_name(const char *s, size_t len)
{
	if (len == 0 || len > 32 || !is_alnum(s[0]))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!is_alnum(s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.')
			return false;
	return true;
}

/* sts-ext-value: 1*(%x21-3A / %x3C / %x3E-7E), i.e. no space, ';' or '='. */
static bool
is_txt_value(const char *s, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x21 || c > 0x7e || c == ';' || c == '=')
			return false;
	}
	return true;
}

/* One "key=value" field of the record; the first id wins (§3.2, last paragraph). */
static int
txt_field(const char *k, size_t klen, const char *v, size_t vlen, char *id)
{
	if (!is_ext_name(k, klen) || !is_txt_value(v, vlen))
		return -1;
	if (klen != 2 || memcmp(k, "id", 2) != 0 || id[0] != '\0')
		return 0;
	if (vlen > MTA_STS_ID_MAX)
		return -1;
	for (size_t i = 0; i < vlen; i++)
		if (!is_alnum(v[i]))
			return -1;
	memcpy(id, v, vlen);
	id[vlen] = '\0';
	return 0;
}

int
mta_sts_txt_parse(const char *text, size_t len, char id[MTA_STS_ID_MAX + 1])
{
	static const char version[] = "v=STSv1";
	const char *p = text + sizeof(version) - 1, *end = text + len;

	id[0] = '\0';
	if (len < sizeof(version) - 1 || memcmp(text, version, sizeof(version) - 1) != 0)
		return 0;
	while (p < end && is_wsp(*p))
		p++;
	if (p < end && *p != ';')
		return 0; /* "v=STSv10": not this version */
	while (p < end) {
		const char *k, *eq, *v;

		p++; /* the ';' */
		while (p < end && is_wsp(*p))
			p++;
		if (p == end)
			break;
		k = p;
		while (p < end && *p != ';' && !is_wsp(*p))
			p++;
		if ((eq = memchr(k, '=', (size_t)(p - k))) == NULL)
			return -1;
		v = eq + 1;
		if (txt_field(k, (size_t)(eq - k), v, (size_t)(p - v), id) == -1)
			return -1;
		while (p < end && is_wsp(*p))
			p++;
		if (p < end && *p != ';')
			return -1;
	}
	return id[0] != '\0' ? 1 : -1;
}

/* ---- the policy body, §3.2 ---- */

void
mta_sts_policy_clear(struct mta_sts_policy *p)
{
	for (size_t i = 0; i < p->nmx; i++)
		free(p->mx[i]);
	free(p->mx);
	memset(p, 0, sizeof(*p));
}

int
mta_sts_policy_copy(struct mta_sts_policy *dst, const struct mta_sts_policy *src)
{
	*dst = *src;
	dst->mx = NULL;
	dst->nmx = 0;
	if (src->nmx > 0 && (dst->mx = calloc(src->nmx, sizeof(*dst->mx))) == NULL)
		goto fail;
	for (; dst->nmx < src->nmx; dst->nmx++)
		if ((dst->mx[dst->nmx] = strdup(src->mx[dst->nmx])) == NULL)
			goto fail;
	return 0;
fail:
	mta_sts_policy_clear(dst);
	return -1;
}

bool
mta_sts_policy_is_fresh(const struct mta_sts_policy *p, time_t now)
{
	return p->fetched + (time_t)p->max_age > now;
}

/* What the parser has seen so far: a repeated key keeps its first value. */
struct policy_build {
	struct mta_sts_policy *p;
	bool version, mode, max_age;
	char *err;
	size_t errlen;
};

static int policy_fail(struct policy_build *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
policy_fail(struct policy_build *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(b->err, b->errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* An mx value: ["*."] Domain, stored normalised (lower case, no final dot). */
static int
policy_mx(struct policy_build *b, const char *v, size_t vlen)
{
	char in[DNSMSG_NAME_MAX + 2], name[DNSMSG_NAME_MAX];
	bool wild = vlen >= 2 && v[0] == '*' && v[1] == '.';
	char **mx;

	if (b->p->nmx >= MTA_STS_MX_MAX)
		return policy_fail(b, "more than %d mx patterns", MTA_STS_MX_MAX);
	if (wild) {
		v += 2;
		vlen -= 2;
	}
	if (vlen >= sizeof(in))
		return policy_fail(b, "mx pattern too long");
	memcpy(in, v, vlen);
	in[vlen] = '\0';
	if (dnsmsg_name_normalize(in, name, sizeof(name)) == -1 || name[0] == '\0')
		return policy_fail(b, "mx pattern '%s%s' is not a host name", wild ? "*." : "", in);
	if ((mx = realloc(b->p->mx, (b->p->nmx + 1) * sizeof(*mx))) == NULL)
		return policy_fail(b, "out of memory");
	b->p->mx = mx;
	if (asprintf(&mx[b->p->nmx], "%s%s", wild ? "*." : "", name) == -1)
		return policy_fail(b, "out of memory");
	b->p->nmx++;
	return 0;
}

/* max_age: 1*10DIGIT, at most MTA_STS_MAX_AGE_MAX. */
static int
policy_max_age(struct policy_build *b, const char *v, size_t vlen)
{
	uint64_t n = 0;

	if (vlen == 0 || vlen > 10)
		return policy_fail(b, "max_age is not a number of seconds");
	for (size_t i = 0; i < vlen; i++) {
		if (v[i] < '0' || v[i] > '9')
			return policy_fail(b, "max_age is not a number of seconds");
		n = n * 10 + (uint64_t)(v[i] - '0');
	}
	if (n > MTA_STS_MAX_AGE_MAX)
		return policy_fail(b, "max_age %" PRIu64 " is over %d", n, MTA_STS_MAX_AGE_MAX);
	b->p->max_age = (unsigned)n;
	b->max_age = true;
	return 0;
}

static bool
word_is(const char *s, size_t len, const char *word)
{
	return strlen(word) == len && strncasecmp(s, word, len) == 0;
}

static int
policy_field(struct policy_build *b, const char *k, size_t klen, const char *v, size_t vlen)
{
	if (word_is(k, klen, "mx"))
		return policy_mx(b, v, vlen);
	if (word_is(k, klen, "version") && !b->version) {
		if (!word_is(v, vlen, "STSv1"))
			return policy_fail(b, "version is not STSv1");
		b->version = true;
	} else if (word_is(k, klen, "mode") && !b->mode) {
		for (int m = MTA_STS_MODE_NONE; m <= MTA_STS_MODE_ENFORCE; m++)
			if (word_is(v, vlen, mode_names[m])) {
				b->p->mode = (enum mta_sts_mode)m;
				b->mode = true;
			}
		if (!b->mode)
			return policy_fail(b, "mode is not enforce, testing or none");
	} else if (word_is(k, klen, "max_age") && !b->max_age) {
		return policy_max_age(b, v, vlen);
	}
	return 0; /* an unknown key, or a repeated one: ignored */
}

/* One line without its end: key ":" *WSP value *WSP; blank lines are skipped. */
static int
policy_line(struct policy_build *b, const char *s, size_t len, unsigned lineno)
{
	const char *colon, *v, *end = s + len;

	while (end > s && is_wsp(end[-1]))
		end--;
	if (end == s)
		return 0;
	for (const char *q = s; q < end; q++)
		if (((unsigned char)*q < 0x20 && *q != '\t') || (unsigned char)*q > 0x7e)
			return policy_fail(b, "line %u: a control or non-ASCII octet", lineno);
	if ((colon = memchr(s, ':', (size_t)(end - s))) == NULL)
		return policy_fail(b, "line %u: no ':'", lineno);
	if (!is_ext_name(s, (size_t)(colon - s)))
		return policy_fail(b, "line %u: bad key", lineno);
	for (v = colon + 1; v < end && is_wsp(*v);)
		v++;
	return policy_field(b, s, (size_t)(colon - s), v, (size_t)(end - v));
}

static int
policy_check(struct policy_build *b)
{
	if (!b->version)
		return policy_fail(b, "no version");
	if (!b->mode)
		return policy_fail(b, "no mode");
	if (!b->max_age)
		return policy_fail(b, "no max_age");
	if (b->p->mode != MTA_STS_MODE_NONE && b->p->nmx == 0)
		return policy_fail(b, "no mx");
	return 0;
}

int
mta_sts_policy_parse(
    const char *text, size_t len, struct mta_sts_policy *out, char *err, size_t errlen)
{
	struct policy_build b = {out, false, false, false, err, errlen};
	const char *p = text, *end = text + len;
	unsigned lineno = 1;

	memset(out, 0, sizeof(*out));
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl != NULL ? nl : end;

		if (le > p && le[-1] == '\r')
			le--;
		if (policy_line(&b, p, (size_t)(le - p), lineno++) == -1)
			goto fail;
		p = nl != NULL ? nl + 1 : end;
	}
	if (policy_check(&b) == 0)
		return 0;
fail:
	mta_sts_policy_clear(out);
	return -1;
}

/* ---- MX patterns, §4.1 ---- */

static bool
pattern_matches(const char *pat, const char *host)
{
	size_t plen, hlen;
	const char *label_end;

	if (strncmp(pat, "*.", 2) != 0)
		return strcmp(pat, host) == 0;
	plen = strlen(pat + 1); /* ".example.com" */
	hlen = strlen(host);
	if (hlen <= plen || strcmp(host + hlen - plen, pat + 1) != 0)
		return false;
	/* Exactly one label before the suffix, and not an empty one. */
	label_end = host + hlen - plen;
	return memchr(host, '.', (size_t)(label_end - host)) == NULL;
}

bool
mta_sts_mx_matches(const struct mta_sts_policy *p, const char *mxhost)
{
	char host[DNSMSG_NAME_MAX];

	if (p == NULL || dnsmsg_name_normalize(mxhost, host, sizeof(host)) == -1)
		return false;
	for (size_t i = 0; i < p->nmx; i++)
		if (pattern_matches(p->mx[i], host))
			return true;
	return false;
}

/* ---- cache files ---- */

/* The policy as text in the §3.2 form; NULL when out of memory (free()). */
static char *
policy_format(const struct mta_sts_policy *p, const char *domain, size_t *len)
{
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);

	if (f == NULL)
		return NULL;
	fprintf(f, "%s\ndomain: %s\nfetched: %lld\nid: %s\n\n", CACHE_MAGIC, domain,
	    (long long)p->fetched, p->id);
	fprintf(
	    f, "version: STSv1\nmode: %s\nmax_age: %u\n", mta_sts_mode_str(p->mode), p->max_age);
	for (size_t i = 0; i < p->nmx; i++)
		fprintf(f, "mx: %s\n", p->mx[i]);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	*len = size;
	return buf;
}

/* "name: value" as the next line of [*p, end); advances *p past it. */
static bool
cache_header(const char **p, const char *end, const char *name, char *out, size_t outlen)
{
	size_t nlen = strlen(name);
	const char *nl = memchr(*p, '\n', (size_t)(end - *p));
	size_t vlen;

	if (nl == NULL || (size_t)(nl - *p) < nlen + 2 || memcmp(*p, name, nlen) != 0 ||
	    memcmp(*p + nlen, ": ", 2) != 0)
		return false;
	vlen = (size_t)(nl - *p) - nlen - 2;
	if (vlen == 0 || vlen >= outlen || memchr(*p + nlen + 2, '\0', vlen) != NULL)
		return false;
	memcpy(out, *p + nlen + 2, vlen);
	out[vlen] = '\0';
	*p = nl + 1;
	return true;
}

int
mta_sts_cache_parse(const char *text, size_t len, const char *domain, struct mta_sts_policy *out)
{
	const char *p = text, *end = text + len;
	char name[DNSMSG_NAME_MAX], fetched[24], id[MTA_STS_ID_MAX + 1], err[128], *e;
	long long t;

	memset(out, 0, sizeof(*out));
	if (len < sizeof(CACHE_MAGIC) || memcmp(p, CACHE_MAGIC "\n", sizeof(CACHE_MAGIC)) != 0)
		return -1;
	p += sizeof(CACHE_MAGIC);
	if (!cache_header(&p, end, "domain", name, sizeof(name)) || strcmp(name, domain) != 0 ||
	    !cache_header(&p, end, "fetched", fetched, sizeof(fetched)) ||
	    !cache_header(&p, end, "id", id, sizeof(id)) || p == end || *p++ != '\n')
		return -1;
	errno = 0;
	t = strtoll(fetched, &e, 10);
	if (errno != 0 || *e != '\0' || t < 0)
		return -1;
	for (const char *q = id; *q != '\0'; q++)
		if (!is_alnum(*q))
			return -1;
	if (mta_sts_policy_parse(p, (size_t)(end - p), out, err, sizeof(err)) == -1)
		return -1;
	out->fetched = (time_t)t;
	memcpy(out->id, id, sizeof(id));
	return 0;
}

/*
 * <dir>/<domain>.policy: the domain is a validated host name, so a safe file
 * name, and the suffix keeps file_write_atomic's "<path>.tmp" from ever
 * being another domain's file.
 */
static int
cache_path(const char *dir, const char *domain, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "%s/%s.policy", dir, domain);

	return n > 0 && (size_t)n < outlen && domain[0] != '\0' && domain[0] != '.' ? 0 : -1;
}

int
mta_sts_cache_write(const char *dir, const char *domain, const struct mta_sts_policy *p)
{
	char path[4096];
	size_t len;
	char *text;
	int rc;

	if (cache_path(dir, domain, path, sizeof(path)) == -1) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((text = policy_format(p, domain, &len)) == NULL)
		return -1;
	rc = file_write_atomic(path, text, len, 0600);
	if (rc == -1)
		log_warn("mta-sts: %s: cannot write the policy cache %s", domain, path);
	free(text);
	return rc;
}

int
mta_sts_cache_read(const char *dir, const char *domain, struct mta_sts_policy *out)
{
	char path[4096];
	size_t len;
	char *text;
	int rc;

	memset(out, 0, sizeof(*out));
	if (cache_path(dir, domain, path, sizeof(path)) == -1)
		return -1;
	if ((text = file_read_all(path, CACHE_FILE_MAX, &len)) == NULL) {
		if (errno != ENOENT)
			log_warn("mta-sts: %s: cannot read the policy cache %s", domain, path);
		return -1;
	}
	rc = mta_sts_cache_parse(text, len, domain, out);
	free(text);
	if (rc == -1) {
		log_warnx("mta-sts: %s: damaged policy cache %s: removed", domain, path);
		unlink(path);
	}
	return rc;
}
