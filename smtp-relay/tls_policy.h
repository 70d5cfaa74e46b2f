/*
 * tls_policy.h - which outbound TLS level a destination domain gets
 * (Postfix's smtp_tls_policy_maps): relay { tls-policy "domain" LEVEL; },
 * then the lines of relay { tls-policy-file }, then tls-default-policy
 * (auto: `dane` when resolver { dnssec-validating }, else `may`).  An
 * entry "example.com" matches that domain; ".example.com" its subdomains.
 *
 * The domain's level is then narrowed per hop by what DNS said
 * (tls_policy_hop): DANE needs a DNSSEC-secure MX and address answer and
 * TLSA records; an MTA-STS result can be applied in between
 * (tls_policy_apply_sts): DANE wins when both apply.
 */
#ifndef MXB_TLS_POLICY_H
#define MXB_TLS_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "common/config.h"

struct tls_policy;

/* The domain's level and where it came from. */
struct tls_policy_result {
	enum config_tls_level level;
	char reason[160]; /* "tls-policy \"example.com\"", "default (...)" */
	/* MTA-STS (RFC 8461), set by tls_policy_apply_sts; 0 = none. */
	int sts_mode; /* TLS_STS_NONE, _TESTING, _ENFORCE */
	/* The level came from a tls-policy entry or tls-policy-file line (not
	 * the default): then MTA-STS is not consulted (as Postfix's
	 * smtp_tls_policy_maps before postfix-mta-sts-resolver). */
	bool configured;
};

/* Built from cfg (relay and resolver sections), reading tls-policy-file
 * now.  NULL with err "file:line: why". */
struct tls_policy *tls_policy_new(const struct config *cfg, char *err, size_t errlen);
void tls_policy_free(struct tls_policy *p);

/* "none", "may", ...; -1 for an unknown name. */
int tls_level_parse(const char *name);
const char *tls_level_name(enum config_tls_level l);

/* The level for `domain` (lower case, no trailing dot). */
void tls_policy_lookup(
    const struct tls_policy *p, const char *domain, struct tls_policy_result *out);

/*
 * The hook for MTA-STS (smtp-relay/mta_sts.c): a policy in `mode`
 * (TLS_STS_TESTING or TLS_STS_ENFORCE) for the domain.  With enforce, a
 * domain at `may` or `encrypt` is raised to `verify`; `dane`/`dane-only`
 * stay (DANE wins: a hop without TLSA then uses verify, see
 * tls_policy_hop).  MX pattern checks are the caller's (mta_sts.c).
 */
#define TLS_STS_NONE    0
#define TLS_STS_TESTING 1
#define TLS_STS_ENFORCE 2
void tls_policy_apply_sts(struct tls_policy_result *r, int mode);

/* What DNS said about one hop, for DANE. */
enum tls_tlsa_state {
	TLSA_INSECURE,  /* the MX or address answer was not DNSSEC-secure */
	TLSA_NONE,      /* secure, but no TLSA (NXDOMAIN/NODATA, or unsigned) */
	TLSA_USABLE,    /* secure TLSA with at least one usable record */
	TLSA_UNUSABLE,  /* secure TLSA, none usable (RFC 7672 §2.2) */
	TLSA_TEMPFAIL,  /* the TLSA lookup failed (SERVFAIL, timeout) */
	TLSA_NOT_ASKED, /* the level does not use DANE */
};

/*
 * The effective level for one hop: the domain's level with the DNS facts
 * applied (RFC 7672 §2.2): dane with usable TLSA stays dane; with
 * unusable TLSA becomes encrypt; with none or insecure answers becomes
 * may (or verify under MTA-STS enforce); dane-only without usable TLSA,
 * and any dane level on TLSA_TEMPFAIL, is -1 (defer), with `why`.
 */
int tls_policy_hop(
    const struct tls_policy_result *r, enum tls_tlsa_state st, char *why, size_t whylen);

#endif
