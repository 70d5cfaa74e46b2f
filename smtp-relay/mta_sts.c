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

/* ---- the resolver: memory cache, lookups, fetches ---- */

#define POLICY_PATH   "/.well-known/mta-sts.txt"
#define ADDRS_PER_FAM 4 /* addresses of mta-sts.<domain> tried, per family */
#define HEADERS_MAX   16384

struct cache_entry {
	char domain[DNSMSG_NAME_MAX];
	struct mta_sts_policy policy;
	struct cache_entry *hnext;
	TAILQ_ENTRY(cache_entry) lru;
};

struct mta_sts {
	struct event_base *base;
	struct dnsclient *dns;
	SSL_CTX *ssl_ctx;
	char *cache_dir;
	uint16_t port;
	size_t max_policies, npolicies, nbuckets;
	bool evicted; /* memory no longer holds every file of cache_dir */
	struct cache_entry **buckets;
	TAILQ_HEAD(cache_lru, cache_entry) lru; /* most recently used first */
	TAILQ_HEAD(, sts_job) jobs;
};

/* One domain's discovery in flight, shared by every lookup of it. */
struct sts_job {
	struct mta_sts *s;
	TAILQ_ENTRY(sts_job) link;
	TAILQ_HEAD(, mta_sts_lookup) waiters;
	bool invalid; /* not a domain name: answered NONE */
	char domain[DNSMSG_NAME_MAX];
	char host[DNSMSG_NAME_MAX + 8]; /* mta-sts.<domain> */
	char id[MTA_STS_ID_MAX + 1];    /* from the TXT record */
	struct mta_sts_policy cached;   /* nmx/mode valid when has_cached */
	bool has_cached;
	struct dnsclient_query *txt_q, *addr_q[2];
	char addrs[2 * ADDRS_PER_FAM][INET6_ADDRSTRLEN];
	size_t n4, n6, naddrs, next;
	char a6[ADDRS_PER_FAM][INET6_ADDRSTRLEN];
	struct evhttp_connection *evcon;
	SSL *ssl; /* owned by the connection's bufferevent */
	struct event *deadline, *defer;
	bool http_done; /* the request callback ran: act from `defer` */
	int http_code;
	bool framed; /* Content-Length or chunked: the end is known */
	char ctype[64];
	struct evbuffer *body;
	char why[512]; /* the last failure */
	struct mta_sts_policy result;
};

struct mta_sts_lookup {
	struct sts_job *job;
	mta_sts_cb cb;
	void *arg;
	TAILQ_ENTRY(mta_sts_lookup) link;
};

static uint32_t
name_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s != '\0'; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

static struct cache_entry **
cache_slot(struct mta_sts *s, const char *domain)
{
	struct cache_entry **pp = &s->buckets[name_hash(domain) & (s->nbuckets - 1)];

	while (*pp != NULL && strcmp((*pp)->domain, domain) != 0)
		pp = &(*pp)->hnext;
	return pp;
}

static void
cache_evict_lru(struct mta_sts *s)
{
	struct cache_entry *e = TAILQ_LAST(&s->lru, cache_lru), **pp;

	pp = cache_slot(s, e->domain);
	*pp = e->hnext;
	TAILQ_REMOVE(&s->lru, e, lru);
	mta_sts_policy_clear(&e->policy);
	free(e);
	s->npolicies--;
	s->evicted = true;
}

/* Keep a copy of `p` for `domain` in memory (replacing what was there). */
static void
cache_insert(struct mta_sts *s, const char *domain, const struct mta_sts_policy *p)
{
	struct cache_entry **pp = cache_slot(s, domain), *e = *pp;
	struct mta_sts_policy copy;

	if (mta_sts_policy_copy(&copy, p) == -1)
		return;
	if (e != NULL) {
		mta_sts_policy_clear(&e->policy);
		e->policy = copy;
		TAILQ_REMOVE(&s->lru, e, lru);
		TAILQ_INSERT_HEAD(&s->lru, e, lru);
		return;
	}
	if (s->npolicies >= s->max_policies) {
		cache_evict_lru(s);
		pp = cache_slot(s, domain);
	}
	if ((e = calloc(1, sizeof(*e))) == NULL) {
		mta_sts_policy_clear(&copy);
		return;
	}
	snprintf(e->domain, sizeof(e->domain), "%s", domain);
	e->policy = copy;
	*pp = e;
	TAILQ_INSERT_HEAD(&s->lru, e, lru);
	s->npolicies++;
}

/*
 * The cached policy of `domain` (fresh or not), or NULL.  The disk is read
 * only once memory has had to drop a policy: before that, memory holds
 * every file (loaded by mta_sts_new) and a miss costs no system call.
 */
static const struct mta_sts_policy *
cache_get(struct mta_sts *s, const char *domain)
{
	struct cache_entry *e = *cache_slot(s, domain);
	struct mta_sts_policy p;

	if (e != NULL) {
		TAILQ_REMOVE(&s->lru, e, lru);
		TAILQ_INSERT_HEAD(&s->lru, e, lru);
		return &e->policy;
	}
	if (s->cache_dir == NULL || !s->evicted ||
	    mta_sts_cache_read(s->cache_dir, domain, &p) == -1)
		return NULL;
	cache_insert(s, domain, &p);
	mta_sts_policy_clear(&p);
	e = *cache_slot(s, domain);
	return e != NULL ? &e->policy : NULL;
}

/* At start: every <domain>.policy file of the folder into memory (blocking is fine here). */
static void
cache_load_dir(struct mta_sts *s)
{
	DIR *d = opendir(s->cache_dir);
	struct dirent *de;

	if (d == NULL) {
		log_warn("mta-sts: cannot read the policy cache %s", s->cache_dir);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		char domain[DNSMSG_NAME_MAX];
		size_t n = strlen(de->d_name);
		struct mta_sts_policy p;

		if (n <= 7 || n - 7 >= sizeof(domain) || strcmp(de->d_name + n - 7, ".policy") != 0)
			continue;
		memcpy(domain, de->d_name, n - 7);
		domain[n - 7] = '\0';
		if (mta_sts_cache_read(s->cache_dir, domain, &p) == 0) {
			cache_insert(s, domain, &p);
			mta_sts_policy_clear(&p);
		}
	}
	closedir(d);
}

/* ---- jobs ---- */

static void
http_close(struct sts_job *j)
{
	if (j->evcon != NULL)
		evhttp_connection_free(j->evcon); /* its bufferevent and SSL too */
	j->evcon = NULL;
	j->ssl = NULL;
	j->http_done = false;
}

/* Stop everything the job has in flight (no callbacks) and free it. */
static void
job_free(struct sts_job *j)
{
	struct mta_sts_lookup *l;

	if (j->txt_q != NULL)
		dnsclient_cancel(j->txt_q);
	for (int i = 0; i < 2; i++)
		if (j->addr_q[i] != NULL)
			dnsclient_cancel(j->addr_q[i]);
	http_close(j);
	if (j->deadline != NULL)
		event_free(j->deadline);
	if (j->defer != NULL)
		event_free(j->defer);
	if (j->body != NULL)
		evbuffer_free(j->body);
	while ((l = TAILQ_FIRST(&j->waiters)) != NULL) {
		TAILQ_REMOVE(&j->waiters, l, link);
		free(l);
	}
	mta_sts_policy_clear(&j->cached);
	mta_sts_policy_clear(&j->result);
	free(j);
}

static void job_finish(struct sts_job *j, const struct mta_sts_policy *p, enum mta_sts_status st,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/*
 * Answer every lookup waiting on the job, then free it.  The job leaves
 * the list first, so a callback that looks the domain up again starts a new
 * one; a callback may cancel other lookups of this job.
 */
static void
job_finish(
    struct sts_job *j, const struct mta_sts_policy *p, enum mta_sts_status st, const char *fmt, ...)
{
	struct mta_sts_lookup *l;
	char detail[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	if (p != NULL && p != &j->result && mta_sts_policy_copy(&j->result, p) == -1) {
		p = NULL;
		st = MTA_STS_TEMPFAIL;
		snprintf(detail, sizeof(detail), "out of memory");
	}
	TAILQ_REMOVE(&j->s->jobs, j, link);
	while ((l = TAILQ_FIRST(&j->waiters)) != NULL) {
		TAILQ_REMOVE(&j->waiters, l, link);
		l->cb(p != NULL ? &j->result : NULL, st, detail, l->arg);
		free(l);
	}
	job_free(j);
}

/* §5.1: a failed fetch falls back on a cached policy that has not expired. */
static void
fetch_failed(struct sts_job *j)
{
	if (j->deadline != NULL)
		event_del(j->deadline);
	if (j->has_cached && mta_sts_policy_is_fresh(&j->cached, time(NULL))) {
		job_finish(j, &j->cached, MTA_STS_POLICY,
		    "cached policy (id %s): the fetch of id %s failed: %s", j->cached.id, j->id,
		    j->why);
		return;
	}
	job_finish(j, NULL, MTA_STS_TEMPFAIL, "https://%s%s: %s", j->host, POLICY_PATH, j->why);
}

static void
fetch_succeeded(struct sts_job *j)
{
	struct mta_sts *s = j->s;

	if (j->deadline != NULL)
		event_del(j->deadline);
	j->result.fetched = time(NULL);
	memcpy(j->result.id, j->id, sizeof(j->id));
	cache_insert(s, j->domain, &j->result);
	if (s->cache_dir != NULL)
		(void)mta_sts_cache_write(s->cache_dir, j->domain, &j->result);
	log_info("mta-sts: %s: policy id %s fetched: mode %s, max_age %u, %zu mx", j->domain, j->id,
	    mta_sts_mode_str(j->result.mode), j->result.max_age, j->result.nmx);
	job_finish(j, &j->result, MTA_STS_POLICY, "fetched (id %s)", j->id);
}

/* ---- the HTTPS fetch, §3.3 ---- */

static void
http_error_cb(enum evhttp_request_error err, void *arg)
{
	struct sts_job *j = arg;
	long vr = j->ssl != NULL ? SSL_get_verify_result(j->ssl) : X509_V_OK;
	unsigned long e = ERR_peek_last_error();

	if (vr != X509_V_OK)
		snprintf(j->why, sizeof(j->why), "certificate of %s: %s", j->host,
		    X509_verify_cert_error_string(vr));
	else if (err == EVREQ_HTTP_DATA_TOO_LONG)
		snprintf(j->why, sizeof(j->why), "the policy is over %d octets", MTA_STS_BODY_MAX);
	else if (err == EVREQ_HTTP_TIMEOUT)
		snprintf(j->why, sizeof(j->why), "timed out");
	else if (e != 0)
		snprintf(j->why, sizeof(j->why), "TLS: %s", ERR_reason_error_string(e));
	else
		snprintf(
		    j->why, sizeof(j->why), "connection failed or closed (error %d)", (int)err);
	ERR_clear_error();
}

/*
 * The request is over (req is NULL on failure).  Only take what it says:
 * the connection is freed from `defer`, outside evhttp's callbacks.
 */
static void
http_done_cb(struct evhttp_request *req, void *arg)
{
	struct sts_job *j = arg;
	const char *ct;

	j->http_done = true;
	j->http_code = req != NULL ? evhttp_request_get_response_code(req) : 0;
	j->ctype[0] = '\0';
	if (j->http_code != 0) {
		struct evkeyvalq *h = evhttp_request_get_input_headers(req);

		ct = evhttp_find_header(h, "Content-Type");
		snprintf(j->ctype, sizeof(j->ctype), "%s", ct != NULL ? ct : "");
		j->framed = evhttp_find_header(h, "Content-Length") != NULL ||
		    evhttp_find_header(h, "Transfer-Encoding") != NULL;
		evbuffer_drain(j->body, evbuffer_get_length(j->body));
		evbuffer_add_buffer(j->body, evhttp_request_get_input_buffer(req));
	} else if (j->why[0] == '\0') {
		/* A refused connect ends here without the error callback. */
		snprintf(j->why, sizeof(j->why), "cannot connect, or the connection failed");
	}
	event_active(j->defer, EV_TIMEOUT, 1);
}

/* "text/plain", any case, optionally followed by parameters (";charset=..."). */
static bool
is_text_plain(const char *ct)
{
	size_t n = strlen("text/plain");

	if (strncasecmp(ct, "text/plain", n) != 0)
		return false;
	ct += n;
	while (is_wsp(*ct))
		ct++;
	return *ct == '\0' || *ct == ';';
}

/* A 200 response: the policy, or why not. */
static int
http_take_policy(struct sts_job *j)
{
	size_t len = evbuffer_get_length(j->body);
	char err[128];
	const char *text;

	/* With dirty shutdowns allowed, a body ended by the close alone could
	 * have been cut short by an attacker: only a framed one counts. */
	if (!j->framed) {
		snprintf(j->why, sizeof(j->why), "no Content-Length nor chunked encoding");
		return -1;
	}
	if (!is_text_plain(j->ctype)) {
		snprintf(j->why, sizeof(j->why), "Content-Type '%s' is not text/plain", j->ctype);
		return -1;
	}
	if (len > MTA_STS_BODY_MAX) {
		snprintf(j->why, sizeof(j->why), "the policy is over %d octets", MTA_STS_BODY_MAX);
		return -1;
	}
	if (len == 0 || (text = (const char *)evbuffer_pullup(j->body, -1)) == NULL) {
		snprintf(j->why, sizeof(j->why), "empty policy");
		return -1;
	}
	if (mta_sts_policy_parse(text, len, &j->result, err, sizeof(err)) == -1) {
		snprintf(j->why, sizeof(j->why), "invalid policy: %s", err);
		return -1;
	}
	return 0;
}

static void http_try_next(struct sts_job *j);

/* From `defer`: the request ended; judge it, then maybe try the next address. */
static void
http_judge(struct sts_job *j)
{
	int code = j->http_code;

	http_close(j);
	if (code == 200) {
		if (http_take_policy(j) == 0)
			fetch_succeeded(j);
		else
			fetch_failed(j);
		return;
	}
	if (code != 0) {
		/* §3.3: a redirect is not followed; any other status is a failure. */
		snprintf(j->why, sizeof(j->why), "HTTP status %d%s", code,
		    code >= 300 && code < 400 ? " (redirects are not followed)" : "");
		fetch_failed(j);
		return;
	}
	http_try_next(j);
}

static SSL *
http_ssl_new(struct sts_job *j)
{
	SSL *ssl = SSL_new(j->s->ssl_ctx);

	if (ssl == NULL)
		return NULL;
	/* SNI, and the name the certificate must carry (§3.3). */
	SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (SSL_set_tlsext_host_name(ssl, j->host) != 1 || SSL_set1_host(ssl, j->host) != 1) {
		SSL_free(ssl);
		return NULL;
	}
	return ssl;
}

/* Open a connection to the next address and send the GET. */
static int
http_start(struct sts_job *j, const char *addr)
{
	struct evhttp_request *req = NULL;
	struct bufferevent *bev;
	SSL *ssl = http_ssl_new(j);

	if (ssl == NULL)
		return -1;
	bev = bufferevent_openssl_socket_new(j->s->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (bev == NULL) {
		SSL_free(ssl);
		return -1;
	}
	j->ssl = ssl;
	/* Servers often close without close_notify; the end of the body comes
	 * from Content-Length or chunking (http_take_policy insists on one). */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	j->evcon = evhttp_connection_base_bufferevent_new(j->s->base, NULL, bev, addr, j->s->port);
	if (j->evcon == NULL) {
		bufferevent_free(bev);
		j->ssl = NULL;
		return -1;
	}
	evhttp_connection_set_timeout(j->evcon, MTA_STS_FETCH_TIMEOUT);
	evhttp_connection_set_max_body_size(j->evcon, MTA_STS_BODY_MAX);
	evhttp_connection_set_max_headers_size(j->evcon, HEADERS_MAX);
	if ((req = evhttp_request_new(http_done_cb, j)) == NULL)
		return -1;
	evhttp_request_set_error_cb(req, http_error_cb);
	if (evhttp_add_header(evhttp_request_get_output_headers(req), "Host", j->host) == -1 ||
	    evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close") ==
	        -1) {
		evhttp_request_free(req);
		return -1;
	}
	/* On failure evhttp_make_request frees the request itself. */
	return evhttp_make_request(j->evcon, req, EVHTTP_REQ_GET, POLICY_PATH);
}

static void
http_try_next(struct sts_job *j)
{
	while (j->next < j->naddrs) {
		const char *addr = j->addrs[j->next++];

		log_debug("mta-sts: %s: fetching https://%s%s from %s port %u", j->domain, j->host,
		    POLICY_PATH, addr, j->s->port);
		if (http_start(j, addr) == 0)
			return;
		http_close(j);
		snprintf(j->why, sizeof(j->why), "cannot start the request (out of memory)");
	}
	fetch_failed(j);
}

static void
defer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sts_job *j = arg;

	(void)fd;
	(void)what;
	if (j->invalid)
		job_finish(j, NULL, MTA_STS_NONE, "'%s' is not a domain name", j->domain);
	else if (j->http_done)
		http_judge(j);
}

/* Cancel the address queries and the connection of a fetch (no callbacks). */
static void
fetch_stop(struct sts_job *j)
{
	for (int i = 0; i < 2; i++) {
		if (j->addr_q[i] != NULL)
			dnsclient_cancel(j->addr_q[i]);
		j->addr_q[i] = NULL;
	}
	http_close(j);
	event_del(j->defer);
}

static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sts_job *j = arg;

	(void)fd;
	(void)what;
	fetch_stop(j);
	snprintf(j->why, sizeof(j->why), "no policy within %d s", MTA_STS_FETCH_TIMEOUT);
	fetch_failed(j);
}

/* A or AAAA of mta-sts.<domain>: keep a few addresses; A ones are tried first. */
static void
addr_cb(const struct dns_answer *a, const struct dnsclient_info *info, void *arg)
{
	struct sts_job *j = arg;
	bool v4 = a->qtype == LDNS_RR_TYPE_A;

	(void)info;
	j->addr_q[v4 ? 0 : 1] = NULL;
	for (size_t i = 0; a->status == DNS_OK && i < ldns_rr_list_rr_count(a->rrs); i++) {
		ldns_rdf *rdf = ldns_rr_rdf(ldns_rr_list_rr(a->rrs, i), 0);
		size_t *n = v4 ? &j->n4 : &j->n6;
		char *out = v4 ? j->addrs[j->n4] : j->a6[j->n6];

		if (*n >= ADDRS_PER_FAM || rdf == NULL || ldns_rdf_size(rdf) != (v4 ? 4u : 16u))
			continue;
		if (inet_ntop(v4 ? AF_INET : AF_INET6, ldns_rdf_data(rdf), out, INET6_ADDRSTRLEN))
			(*n)++;
	}
	if (a->status != DNS_OK && a->status != DNS_NODATA && a->status != DNS_NXDOMAIN)
		snprintf(j->why, sizeof(j->why), "%s: %s", j->host, dns_status_str(a->status));
	if (j->addr_q[0] != NULL || j->addr_q[1] != NULL)
		return;
	memcpy(j->addrs[j->n4], j->a6, j->n6 * sizeof(j->a6[0]));
	j->naddrs = j->n4 + j->n6;
	if (j->naddrs == 0 && j->why[0] == '\0')
		snprintf(j->why, sizeof(j->why), "%s has no address", j->host);
	http_try_next(j);
}

static void
fetch_start(struct sts_job *j)
{
	struct timeval tv = {MTA_STS_FETCH_TIMEOUT, 0};
	int n = snprintf(j->host, sizeof(j->host), "mta-sts.%s", j->domain);

	if (n < 0 || (size_t)n >= DNSMSG_NAME_MAX) {
		snprintf(j->why, sizeof(j->why), "the policy host name is too long");
		fetch_failed(j);
		return;
	}
	if ((j->body = evbuffer_new()) == NULL ||
	    (j->deadline = evtimer_new(j->s->base, deadline_cb, j)) == NULL) {
		snprintf(j->why, sizeof(j->why), "out of memory");
		fetch_failed(j);
		return;
	}
	evtimer_add(j->deadline, &tv);
	j->addr_q[0] = dnsclient_query(j->s->dns, j->host, LDNS_RR_TYPE_A, addr_cb, j);
	j->addr_q[1] = dnsclient_query(j->s->dns, j->host, LDNS_RR_TYPE_AAAA, addr_cb, j);
	if (j->addr_q[0] == NULL || j->addr_q[1] == NULL) {
		fetch_stop(j);
		snprintf(j->why, sizeof(j->why), "out of memory");
		fetch_failed(j);
	}
}

/* ---- the TXT record and the lookups ---- */

/* A TXT record's character-strings, concatenated, into buf; its length. */
static size_t
txt_text(const ldns_rr *rr, char *buf, size_t buflen)
{
	size_t len = 0;

	for (size_t i = 0; i < ldns_rr_rd_count(rr); i++) {
		const ldns_rdf *rdf = ldns_rr_rdf(rr, i);
		size_t n;

		if (ldns_rdf_get_type(rdf) != LDNS_RDF_TYPE_STR || ldns_rdf_size(rdf) < 1)
			continue;
		n = ldns_rdf_data(rdf)[0]; /* the length octet */
		if (n > ldns_rdf_size(rdf) - 1 || n > buflen - len)
			return buflen; /* too long to be ours: refused by the parser */
		memcpy(buf + len, ldns_rdf_data(rdf) + 1, n);
		len += n;
	}
	return len;
}

/*
 * §3.1: of the records, those starting "v=STSv1" count; exactly one, and
 * valid, gives the id.  1 with j->id, 0 when there is no usable record.
 */
static int
txt_find_id(struct sts_job *j, const struct dns_answer *a)
{
	char buf[2048], id[MTA_STS_ID_MAX + 1];
	int found = 0, bad = 0;

	for (size_t i = 0; a->rrs != NULL && i < ldns_rr_list_rr_count(a->rrs); i++) {
		const ldns_rr *rr = ldns_rr_list_rr(a->rrs, i);
		size_t len = txt_text(rr, buf, sizeof(buf));
		int rc = len < sizeof(buf) ? mta_sts_txt_parse(buf, len, id) : -1;

		if (rc == 1 && found++ == 0)
			memcpy(j->id, id, sizeof(id));
		else if (rc == -1 && len >= 7 && memcmp(buf, "v=STSv1", 7) == 0)
			bad++;
	}
	if (found == 1 && bad == 0)
		return 1;
	snprintf(j->why, sizeof(j->why), "%s",
	    found + bad == 0 ? "no MTA-STS record"
	                     : (found + bad > 1 ? "more than one MTA-STS record"
	                                        : "the MTA-STS record is malformed"));
	return 0;
}

static void
txt_cb(const struct dns_answer *a, const struct dnsclient_info *info, void *arg)
{
	struct sts_job *j = arg;
	const struct mta_sts_policy *c = cache_get(j->s, j->domain);
	bool fresh = c != NULL && mta_sts_policy_is_fresh(c, time(NULL));

	(void)info;
	j->txt_q = NULL;
	if (c != NULL && mta_sts_policy_copy(&j->cached, c) == 0)
		j->has_cached = true;
	fresh = fresh && j->has_cached;
	if (a->status == DNS_OK && txt_find_id(j, a) == 1) {
		if (fresh && strcmp(j->cached.id, j->id) == 0)
			job_finish(j, &j->cached, MTA_STS_POLICY, "cached policy (id %s unchanged)",
			    j->id);
		else
			fetch_start(j);
		return;
	}
	if (a->status != DNS_OK)
		snprintf(j->why, sizeof(j->why), "TXT _mta-sts.%s: %s", j->domain,
		    dns_status_str(a->status));
	/* §5.1: losing the record does not drop a policy that has not expired. */
	if (fresh)
		job_finish(j, &j->cached, MTA_STS_POLICY, "cached policy (id %s); %s", j->cached.id,
		    j->why);
	else if (dns_status_is_temporary(a->status))
		job_finish(j, NULL, MTA_STS_TEMPFAIL, "%s", j->why);
	else
		job_finish(j, NULL, MTA_STS_NONE, "%s", j->why);
}

static struct sts_job *
job_new(struct mta_sts *s, const char *domain)
{
	struct sts_job *j = calloc(1, sizeof(*j));
	char qname[DNSMSG_NAME_MAX + 16];

	if (j == NULL)
		return NULL;
	j->s = s;
	TAILQ_INIT(&j->waiters);
	/* The body buffer and the deadline wait for a fetch (most lookups end at the TXT). */
	if ((j->defer = event_new(s->base, -1, 0, defer_cb, j)) == NULL)
		goto fail;
	if (dnsmsg_name_normalize(domain, j->domain, sizeof(j->domain)) == -1 ||
	    j->domain[0] == '\0' || strlen(j->domain) + 9 >= DNSMSG_NAME_MAX) {
		j->invalid = true;
		snprintf(j->domain, sizeof(j->domain), "%.200s", domain);
		event_active(j->defer, EV_TIMEOUT, 1);
	} else {
		snprintf(qname, sizeof(qname), "_mta-sts.%s", j->domain);
		if ((j->txt_q = dnsclient_query(s->dns, qname, LDNS_RR_TYPE_TXT, txt_cb, j)) ==
		    NULL)
			goto fail;
	}
	TAILQ_INSERT_TAIL(&s->jobs, j, link);
	return j;
fail:
	job_free(j);
	return NULL;
}

struct mta_sts_lookup *
mta_sts_lookup(struct mta_sts *s, const char *domain, mta_sts_cb cb, void *arg)
{
	char name[DNSMSG_NAME_MAX];
	struct mta_sts_lookup *l = calloc(1, sizeof(*l));
	struct sts_job *j = NULL;

	if (l == NULL)
		return NULL;
	if (dnsmsg_name_normalize(domain, name, sizeof(name)) == 0)
		TAILQ_FOREACH(j, &s->jobs, link)
			if (!j->invalid && strcmp(j->domain, name) == 0)
				break;
	if (j == NULL && (j = job_new(s, domain)) == NULL) {
		free(l);
		return NULL;
	}
	l->job = j;
	l->cb = cb;
	l->arg = arg;
	TAILQ_INSERT_TAIL(&j->waiters, l, link);
	return l;
}

void
mta_sts_cancel(struct mta_sts_lookup *l)
{
	TAILQ_REMOVE(&l->job->waiters, l, link);
	free(l);
}

static int
ssl_ctx_init(struct mta_sts *s, const char *ca_file)
{
	if ((s->ssl_ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		return -1;
	SSL_CTX_set_min_proto_version(s->ssl_ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(s->ssl_ctx, SSL_VERIFY_PEER, NULL);
	if (ca_file != NULL ? SSL_CTX_load_verify_locations(s->ssl_ctx, ca_file, NULL) != 1
	                    : SSL_CTX_set_default_verify_paths(s->ssl_ctx) != 1) {
		log_warnx("mta-sts: cannot load the CA certificates %s: %s",
		    ca_file != NULL ? ca_file : "(system store)",
		    ERR_reason_error_string(ERR_get_error()));
		ERR_clear_error();
		return -1;
	}
	return 0;
}

struct mta_sts *
mta_sts_new(struct event_base *base, struct dnsclient *dns, const struct mta_sts_params *p)
{
	struct mta_sts *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->base = base;
	s->dns = dns;
	s->port = p->https_port != 0 ? p->https_port : 443;
	s->max_policies = p->max_policies != 0 ? p->max_policies : MTA_STS_DEFAULT_POLICIES;
	for (s->nbuckets = 16; s->nbuckets < s->max_policies && s->nbuckets < (1u << 20);)
		s->nbuckets <<= 1;
	TAILQ_INIT(&s->lru);
	TAILQ_INIT(&s->jobs);
	if ((s->buckets = calloc(s->nbuckets, sizeof(*s->buckets))) == NULL ||
	    ssl_ctx_init(s, p->ca_file) == -1)
		goto fail;
	if (p->cache_dir != NULL) {
		if ((s->cache_dir = strdup(p->cache_dir)) == NULL)
			goto fail;
		if (mkdir(s->cache_dir, 0700) == -1 && errno != EEXIST) {
			log_warn("mta-sts: cannot create the policy cache %s", s->cache_dir);
			goto fail;
		}
		cache_load_dir(s);
	}
	return s;
fail:
	mta_sts_free(s);
	return NULL;
}

void
mta_sts_free(struct mta_sts *s)
{
	struct sts_job *j;
	struct cache_entry *e;

	if (s == NULL)
		return;
	while ((j = TAILQ_FIRST(&s->jobs)) != NULL) {
		TAILQ_REMOVE(&s->jobs, j, link);
		job_free(j);
	}
	while ((e = TAILQ_FIRST(&s->lru)) != NULL) {
		TAILQ_REMOVE(&s->lru, e, lru);
		mta_sts_policy_clear(&e->policy);
		free(e);
	}
	free(s->buckets);
	SSL_CTX_free(s->ssl_ctx);
	free(s->cache_dir);
	free(s);
}
