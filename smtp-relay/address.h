/*
 * address.h - RFC 5321 envelope addresses: the one parser for the paths of
 * MAIL FROM and RCPT TO, and the relay policy that decides who may send to
 * which recipient.
 *
 * The accepted grammar is written down in docs/address-grammar.md.  In
 * short: "<" [source-route ":"] local-part "@" domain ">" where the domain is
 * a dot-separated list of LDH labels (no trailing dot) or an address
 * literal, the local part is a dot-atom or a quoted string, and the whole
 * path is at most 256 octets of printable US-ASCII.  The parser records the
 * features that matter to the relay policy (source route, quoted local part,
 * routing characters, address literal) instead of judging them itself.
 */
#ifndef MXB_ADDRESS_H
#define MXB_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>

struct addr;
struct config_relay;

/* RFC 5321 4.5.3.1: local part 64, domain 255, path 256 octets. */
#define ADDRESS_LOCAL_MAX  64
#define ADDRESS_DOMAIN_MAX 255
#define ADDRESS_PATH_MAX   256

/* Features of a parsed address (bit set in address.flags). */
enum address_flag {
	ADDRESS_F_ROUTE = 1 << 0,   /* "@a,@b:" source route was given (and dropped) */
	ADDRESS_F_QUOTED = 1 << 1,  /* the local part was a quoted string */
	ADDRESS_F_ROUTING = 1 << 2, /* local part holds '@', '%' or '!' */
	ADDRESS_F_LITERAL = 1 << 3, /* domain is an address literal "[...]" */
	ADDRESS_F_BARE = 1 << 4,    /* no domain: only "<postmaster>" is allowed */
};

/* A parsed mailbox: a plain value. */
struct address {
	char local[ADDRESS_LOCAL_MAX + 1];   /* as written (quoted form kept) */
	char domain[ADDRESS_DOMAIN_MAX + 1]; /* lower case; "" for <> and <postmaster> */
	unsigned flags;                      /* enum address_flag */
};

enum address_status {
	ADDRESS_OK = 0,
	ADDRESS_NULL,     /* "<>": valid only as a sender */
	ADDRESS_ESYNTAX,  /* not a valid path */
	ADDRESS_ETOOLONG, /* over a length limit */
};

/*
 * Parse a path such as "<user@example.test>" (the angle brackets are
 * required; nothing may follow the ">").  `text` need not be terminated:
 * `len` bytes are examined.  On ADDRESS_OK or ADDRESS_NULL *out is filled;
 * on an error its contents are unspecified.
 */
enum address_status address_parse(const char *text, size_t len, struct address *out);

/* Write "local@domain" (or "local", or "" for the null path) into buf; returns buf. */
const char *address_str(const struct address *a, char *buf, size_t len);

/* True when `a` is postmaster: bare, or the local part "postmaster" in any case. */
bool address_is_postmaster(const struct address *a);

/* True for a valid domain name as the parser accepts it (lower or upper case). */
bool address_domain_valid(const char *domain);

/* The relay policy: what the server answers to one recipient. */
enum policy_verdict {
	POLICY_LOCAL,        /* a local-alias domain (or postmaster): accept */
	POLICY_RELAY,        /* a relay domain, or a trusted client: accept */
	POLICY_DENY_RELAY,   /* 550 5.7.1 relaying denied */
	POLICY_DENY_ROUTING, /* 550 5.7.1 sender-specified routing refused */
	POLICY_UNKNOWN_USER, /* 550 5.1.1 not a local user */
};

struct policy;

/*
 * Build the policy from the relay configuration, reading local-aliases-file
 * when set ("#" and "!" start comments; one domain a line).  Returns NULL
 * with the reason logged.  The policy keeps no pointer into `relay`.
 */
struct policy *policy_new(const struct config_relay *relay);
void policy_free(struct policy *p);

/* True when `client` lies in trusted-networks. */
bool policy_is_trusted(const struct policy *p, const struct addr *client);

/*
 * Decide for one recipient.  Untrusted clients get local-alias domains
 * (exact match), relay domains (the domain itself and its subdomains) and
 * postmaster; anything with a source route, routing characters in the local
 * part or an address literal is refused for them whatever the domain.
 */
enum policy_verdict policy_check_rcpt(
    const struct policy *p, const struct address *rcpt, bool trusted);

/* True for a domain in local-aliases (or the relay's own hostname). */
bool policy_is_local_domain(const struct policy *p, const char *domain);

#endif
