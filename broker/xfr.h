/*
 * xfr.h - zone transfers out (AXFR over TCP, RFC 5936; IXFR, RFC 1995),
 * TSIG-checked and signed (RFC 8945), and NOTIFY (RFC 1996) to the
 * also-notify addresses when a zone's serial moves.
 * Both run on the owner thread of the zone store (brokerd's main thread).
 */
#ifndef MXB_BROKER_XFR_H
#define MXB_BROKER_XFR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct addr;
struct config_broker;
struct config_key;
struct config_zone;
struct dnsq;
struct event_base;
struct evbuffer;
struct log_ratelimit;
struct notifier;
struct zone;
struct zonestore;

#define XFR_MSG_TARGET   16000 /* bytes of RRs per AXFR message */
#define NOTIFY_TRIES     5     /* sends before giving up on a secondary */
#define NOTIFY_RETRY_MS  1000  /* first retry; doubled each time */
#define NOTIFY_RCODES    16    /* a DNS header's rcode is four bits */
#define NOTIFY_QNAME_MAX 255   /* text of a reply's question name (LDNS_MAX_DOMAINLEN) */

/*
 * True when the zone's transfer ACL (allow-transfer) lets `peer` transfer
 * with a request signed by `key` (checked already; NULL = unsigned): some
 * element covers the address (or names none) and names no key or this key.
 * An empty ACL allows nobody.
 */
bool xfr_allowed(
    const struct config_zone *cz, const struct addr *peer, const struct config_key *key);

/* A zone transfer request received over TCP, and what answering it needs. */
struct xfr_request {
	const uint8_t *wire; /* the query as received */
	size_t len;
	const struct dnsq *q;            /* as dnsq_parse read it: AXFR or IXFR */
	const struct addr *peer;         /* who asked */
	const struct zone *z;            /* the zone asked for */
	const struct config_broker *cfg; /* the zones' ACLs (and so the keys) */
	const struct zonestore *zs;      /* the IXFR journal; NULL: none */
	struct log_ratelimit *rl;        /* refusals are logged through it */
	uint64_t now;                    /* seconds since the epoch, for TSIG */
};

enum xfr_result {
	XFR_AXFR,    /* the whole zone went out (AXFR, or IXFR answered in full) */
	XFR_IXFR,    /* the differences went out, or the SOA alone (up to date) */
	XFR_REFUSED, /* an error answer went out: REFUSED, or NOTAUTH with a TSIG error */
	XFR_FAILED,  /* nothing went out (unparsable or out of memory) */
};

/*
 * Answer the AXFR or IXFR request r (ldns parses it again: TSIG, IXFR's
 * SOA): its TSIG checked first (RFC 8945 5.2: an unknown key is NOTAUTH
 * BADKEY, a bad MAC NOTAUTH BADSIG, both unsigned; a time outside the
 * fudge NOTAUTH BADTIME, signed), then the ACL (REFUSED, signed when the
 * request was), then the name (NOTAUTH unless it is the zone's apex).  The answer goes to out as
 * TCP messages with their length prefixes, of at most XFR_MSG_TARGET bytes of records each; when
 * the request was signed every message is (RFC 8945 5.3.1).  AXFR: SOA, every other RR, SOA (RFC
 * 5936).  Refusals are logged with peer, zone, key and reason, rate-limited by r->rl.  On
 * XFR_FAILED out is unchanged.
 */
enum xfr_result xfr_answer(const struct xfr_request *r, struct evbuffer *out);

/*
 * A NOTIFY sender on `base` for every (zone, also-notify address) of `cfg`
 * (borrowed, must outlive it or the next notifier_reload).
 * Binds one UDP socket (ephemeral port) per source address now, so call it
 * before privileges are dropped.  The source for a peer is the zone's
 * notify-source when it is of the peer's family, else the first listen
 * address of that family unless it is a wildcard, else the wildcard (the
 * kernel chooses).  NULL (logged) when a named source cannot be bound.
 */
struct notifier *notifier_new(struct event_base *base, const struct config_broker *cfg);
void notifier_free(struct notifier *n);

/*
 * SIGHUP: the zones and peers of a new configuration `cfg` (borrowed, as
 * for notifier_new; the old one is no longer used when this returns).
 * NOTIFYs being retried are dropped; counters and source sockets are
 * kept, and a source that is new is bound now (after the privilege drop:
 * a privileged notify-source port then fails).  0, or -1 when some peer
 * gets no NOTIFY (logged).
 */
int notifier_reload(struct notifier *n, const struct config_broker *cfg);

/*
 * Send NOTIFY for z's current serial to each of its also-notify addresses,
 * TSIG-signed for an address given with `key`.  Only a NOERROR response
 * from that address, with our ID and question (and, for a signed NOTIFY, a
 * valid TSIG of the same key over our MAC), is an acknowledgement (RFC 1996); an error rcode or no
 * answer is retried after NOTIFY_RETRY_MS, doubled each time, NOTIFY_TRIES sends in all.  A call
 * for a newer serial replaces a NOTIFY still being retried to the same peer.
 */
void notifier_zone_changed(struct notifier *n, const struct zone *z);

/*
 * Counters for /status and /metrics: messages sent, acknowledged, answered
 * with an error (by rcode), sends left unanswered (timeout), and NOTIFYs
 * given up after NOTIFY_TRIES sends without an acknowledgement (failed).
 */
struct notifier_stats {
	uint64_t sent, acked, timeout, failed;
	uint64_t rcode[NOTIFY_RCODES]; /* error responses; rcode[0] stays 0 */
};
void notifier_stats(const struct notifier *n, struct notifier_stats *out);

/* A response on a NOTIFY socket, as notify_reply_parse validated it. */
struct notify_reply {
	uint16_t id;
	uint8_t rcode; /* < NOTIFY_RCODES */
	bool has_question;
	char qname[NOTIFY_QNAME_MAX + 1]; /* no trailing dot; case as received */
	uint16_t qtype, qclass;
};

/*
 * The one validating function for a datagram received on a NOTIFY socket
 * (untrusted): the length is checked before the header is read, then it
 * must be a well-formed DNS response (QR set) with opcode NOTIFY and at
 * most one question.  Returns 0 and fills `out`, or -1 for anything else
 * (the datagram is then ignored).
 */
int notify_reply_parse(const uint8_t *buf, size_t len, struct notify_reply *out);

/*
 * True when a parsed reply answers our NOTIFY with message ID `id` for
 * `zone` (no trailing dot): same ID, and the question echoed as
 * <zone> SOA IN (names compared without case).  RFC 1996 4.7 lets an
 * error response omit the question; a NOERROR without it is no
 * acknowledgement.  The caller also checks the sender's address.
 */
bool notify_reply_answers(const struct notify_reply *r, uint16_t id, const char *zone);

#endif
