/*
 * tsig.h - TSIG (RFC 8945) for zone transfers and NOTIFY, on top of ldns:
 * check a signed request against the configured keys, sign each message
 * of a response stream, and build the error answers of RFC 8945 5.2.
 * Owner thread only (brokerd's main thread); nothing here blocks.
 */
#ifndef MXB_BROKER_TSIG_H
#define MXB_BROKER_TSIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ldns/ldns.h>

struct config_key;

#define TSIG_FUDGE 300 /* seconds of clock skew we sign with (RFC 8945 10) */

/* TSIG error codes of RFC 8945 (the TSIG RR's Error field). */
enum tsig_error {
	TSIG_NOERROR = 0,
	TSIG_BADSIG = 16,
	TSIG_BADKEY = 17,
	TSIG_BADTIME = 18,
};

/* What tsig_check found in a request. */
enum tsig_status {
	TSIG_UNSIGNED, /* no TSIG record */
	TSIG_OK,       /* signed with *key, MAC and time good */
	TSIG_UNKNOWN,  /* a key name (or algorithm) we do not have: BADKEY */
	TSIG_BAD_MAC,  /* BADSIG */
	TSIG_BAD_TIME, /* MAC good, time signed outside the fudge: BADTIME */
};

/* A short word for logs: "unsigned", "ok", "unknown key", "bad MAC", "bad time". */
const char *tsig_status_str(enum tsig_status st);

/*
 * The TSIG of request `p` (parsed from wire[0..len) by ldns_wire2pkt,
 * unchanged since) checked against keys[0..nkeys) (borrowed): the key is
 * found by name and must have the algorithm the record names; then the MAC
 * (ldns_pkt_tsig_verify), then the time, against `now` (seconds since the
 * epoch), in that order (RFC 8945 5.2).  *key is set for TSIG_OK and
 * TSIG_BAD_TIME, else NULL.  Never reads outside wire.
 */
enum tsig_status tsig_check(ldns_pkt *p, const uint8_t *wire, size_t len,
    const struct config_key *const *keys, size_t nkeys, uint64_t now,
    const struct config_key **key);

/*
 * True when ldns 1.8.3 can compute `key`'s HMAC for TSIG: not hmac-sha224
 * (absent) nor hmac-sha384 (misspelt in its table).
 */
bool tsig_key_usable(const struct config_key *key);

/*
 * Signing a stream of response messages (an AXFR/IXFR over TCP, RFC 8945
 * 5.3.1): the first message's MAC covers the request's MAC and all TSIG
 * variables, each later one the previous message's MAC and the timers only.
 * Every message is signed.
 */
struct tsig_stream {
	const struct config_key *key; /* NULL: nothing is signed */
	ldns_rdf *mac;                /* the request's MAC, then the last message's */
	bool first;
};

/*
 * Start a stream answering request `req` (its TSIG, checked, holds the
 * MAC); key NULL for an unsigned stream.  0, or -1 (out of memory).
 */
int tsig_stream_init(struct tsig_stream *ts, const struct config_key *key, const ldns_pkt *req);

/* Sign p (the next message, not yet signed): a TSIG record is added.  0 or -1. */
int tsig_stream_sign(struct tsig_stream *ts, ldns_pkt *p);

/* Free what the stream holds; the struct may then be initialised again. */
void tsig_stream_clear(struct tsig_stream *ts);

/*
 * Add to response p the TSIG record of an error answer to request req
 * (which carries a TSIG): BADKEY and BADSIG unsigned (empty MAC, RFC 8945
 * 5.3.2); BADTIME signed with `key` over the request's MAC, its Time
 * Signed echoed and our time (`now`) in Other Data so a client can see
 * the skew.  0 or -1.
 */
int tsig_error_add(ldns_pkt *p, const ldns_pkt *req, enum tsig_error err,
    const struct config_key *key, uint64_t now);

/*
 * Verify the TSIG of a response `p` (parsed from wire[0..len)) to a
 * message we signed with `key` whose MAC was `req_mac`, and its time
 * against `now`.  True only when it is signed with that key and valid.
 */
bool tsig_response_ok(ldns_pkt *p, const uint8_t *wire, size_t len, const struct config_key *key,
    const ldns_rdf *req_mac, uint64_t now);

#endif
