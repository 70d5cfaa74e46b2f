/*
 * mta_sts.h - MTA-STS (RFC 8461): discover, fetch, cache and apply the
 * policy a recipient domain publishes for its MX hosts.
 *
 * mta_sts_lookup(domain) asks the TXT record _mta-sts.<domain> (one record
 * starting "v=STSv1;" with an id, §3.1).  When a cached policy has the same
 * id and has not outlived its max_age it is the answer; otherwise the policy
 * is fetched from https://mta-sts.<domain>/.well-known/mta-sts.txt (§3.3):
 * the host's A/AAAA through the dnsclient (never a blocking getaddrinfo),
 * TLS 1.2 or later with SNI, the certificate verified against the system
 * store (or `ca_file`) and its name checked, HTTP 200 only (redirects are
 * not followed), Content-Type text/plain, at most MTA_STS_BODY_MAX octets,
 * MTA_STS_FETCH_TIMEOUT seconds in all.  A fetched policy is kept in memory
 * (at most `max_policies`, least recently used evicted) and in `cache_dir`,
 * one file per domain written tmp + fsync + rename, so it survives a
 * restart.  When the TXT record is missing or the fetch fails, a cached
 * policy that has not expired is still the answer (§5.1): an attacker who
 * blocks DNS or HTTPS does not turn enforce off.
 *
 * Everything runs on the caller's event loop; callbacks run from the loop,
 * never from inside mta_sts_lookup.  The cache folder is read whole by
 * mta_sts_new, read again for one domain on a miss only once memory has had
 * to drop a policy, and written after a fetch (small files, once per
 * max_age per domain).  Not thread-safe.
 */
#ifndef MXB_MTA_STS_H
#define MXB_MTA_STS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct event_base;
struct dnsclient;
struct mta_sts;
struct mta_sts_lookup;

#define MTA_STS_ID_MAX        32       /* sts-id: 1*32(ALPHA / DIGIT) */
#define MTA_STS_MAX_AGE_MAX   31557600 /* one year, §3.2 */
#define MTA_STS_BODY_MAX      65536    /* policy size limit, §3.3 */
#define MTA_STS_MX_MAX        100      /* more mx lines: the policy is refused */
#define MTA_STS_FETCH_TIMEOUT 10       /* seconds for the whole HTTPS fetch */

enum mta_sts_mode {
	MTA_STS_MODE_NONE,    /* "none": the domain opted out */
	MTA_STS_MODE_TESTING, /* "testing": deliver anyway, report failures */
	MTA_STS_MODE_ENFORCE, /* "enforce": only matching MX, verified TLS */
};
const char *mta_sts_mode_str(enum mta_sts_mode m);

/*
 * A parsed policy (a plain value).  `mx` holds `nmx` patterns, lower case,
 * no trailing dot, each a host name or "*." and a domain; at least one
 * unless mode is none.  `id` is the TXT record's id the policy was fetched
 * under; `fetched` the wall-clock time of the fetch.
 */
struct mta_sts_policy {
	enum mta_sts_mode mode;
	unsigned max_age; /* seconds, 0..MTA_STS_MAX_AGE_MAX */
	char **mx;
	size_t nmx;
	char id[MTA_STS_ID_MAX + 1];
	time_t fetched;
};

enum mta_sts_status {
	MTA_STS_NONE,     /* no policy: the domain publishes none */
	MTA_STS_POLICY,   /* a policy applies (its mode may be none) */
	MTA_STS_TEMPFAIL, /* a policy may exist but could not be obtained (DNS
	                   * failure, fetch failed) and no unexpired one is
	                   * cached.  RFC 8461 §5.1: deliver as without a
	                   * policy (do not defer), and log. */
};
const char *mta_sts_status_str(enum mta_sts_status s);

/*
 * Called once per lookup.  `p` is the policy for MTA_STS_POLICY, else
 * NULL; it is borrowed, valid only during the call (copy it with
 * mta_sts_policy_copy to keep it).  `detail` is a short sentence for logs:
 * where the policy came from ("fetched", "cached, id unchanged", ...) or why
 * there is none ("fetch: certificate verify failed", ...).  The lookup
 * handle is finished when the callback runs: do not cancel it afterwards.
 */
typedef void (*mta_sts_cb)(
    const struct mta_sts_policy *p, enum mta_sts_status st, const char *detail, void *arg);

struct mta_sts_params {
	const char *cache_dir; /* NULL = memory only; created (0700) if missing */
	const char *ca_file;   /* NULL = the system trust store */
	uint16_t https_port;   /* 0 = 443; tests give another */
	size_t max_policies;   /* in memory; 0 = MTA_STS_DEFAULT_POLICIES */
};
#define MTA_STS_DEFAULT_POLICIES 1000

/*
 * A new MTA-STS resolver on `base`, asking DNS through `dns` (borrowed: it
 * must outlive the result).  The strings in `p` are copied.  NULL when the
 * CA file cannot be loaded, the cache folder cannot be made, or out of
 * memory (logged).
 */
struct mta_sts *mta_sts_new(
    struct event_base *base, struct dnsclient *dns, const struct mta_sts_params *p);

/* Cancel every lookup and fetch in flight (no callbacks run) and free;
 * NULL is a no-op.  Never call it from inside a callback of the same ctx. */
void mta_sts_free(struct mta_sts *s);

/*
 * Find the policy of `domain` (a domain name; case and a trailing dot do
 * not matter).  Returns a handle for mta_sts_cancel, or NULL when out of
 * memory (the callback then never runs).  An invalid domain gets
 * MTA_STS_NONE through the callback.  Concurrent lookups of one domain share
 * one DNS query and one fetch.
 */
struct mta_sts_lookup *mta_sts_lookup(
    struct mta_sts *s, const char *domain, mta_sts_cb cb, void *arg);

/* Forget a lookup before its callback ran; the callback will not run (a
 * fetch it started goes on and fills the cache). */
void mta_sts_cancel(struct mta_sts_lookup *l);

/*
 * True when `mxhost` (any case, trailing dot allowed) matches one of the
 * policy's patterns (§4.1): equal, or "*.example.com" with exactly one more
 * leftmost label ("mx1.example.com", not "example.com" nor
 * "a.b.example.com").  False for every host when p is NULL.
 */
bool mta_sts_mx_matches(const struct mta_sts_policy *p, const char *mxhost);

/* ---- pure functions: the parsers and the cache file, for tests and fuzzing ---- */

/*
 * Parse a TXT record's text (its strings concatenated).  Returns 1 and the
 * id when it is a valid "v=STSv1; id=...;" record, 0 when it does not
 * start with "v=STSv1" (another kind of record: ignored), -1 when it does
 * but is malformed (RFC 8461 §3.1: then the domain has no usable record).
 */
int mta_sts_txt_parse(const char *text, size_t len, char id[MTA_STS_ID_MAX + 1]);

/*
 * Parse and validate a policy body (§3.2), CRLF or LF line ends: version
 * STSv1, mode, max_age, mx patterns; unknown keys ignored, a repeated key
 * other than mx takes its first value.  Returns 0 with `out` filled (id and
 * fetched left zero; release with mta_sts_policy_clear), or -1 with a reason
 * in err and `out` cleared.  Never reads past text + len.
 */
int mta_sts_policy_parse(
    const char *text, size_t len, struct mta_sts_policy *out, char *err, size_t errlen);

/* Release what a policy owns (not the struct); safe on a zeroed one. */
void mta_sts_policy_clear(struct mta_sts_policy *p);

/* Deep copy: 0, or -1 when out of memory (`dst` left cleared). */
int mta_sts_policy_copy(struct mta_sts_policy *dst, const struct mta_sts_policy *src);

/* True when `p` is still valid at `now`: fetched + max_age > now. */
bool mta_sts_policy_is_fresh(const struct mta_sts_policy *p, time_t now);

/*
 * The cache file of `domain` in `dir`: write it (tmp, fsync, rename, fsync
 * the folder; 0 or -1 with errno, logged) or read it back (0 with `out`
 * filled, -1 when absent or damaged; a damaged file is logged and removed).
 */
int mta_sts_cache_write(const char *dir, const char *domain, const struct mta_sts_policy *p);
int mta_sts_cache_read(const char *dir, const char *domain, struct mta_sts_policy *out);

/* The text of a cache file for `domain` (what mta_sts_cache_read checks):
 * 0 with `out` filled, or -1 (`out` cleared).  Never reads past text + len. */
int mta_sts_cache_parse(
    const char *text, size_t len, const char *domain, struct mta_sts_policy *out);

#endif
