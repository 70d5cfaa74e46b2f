/*
 * tls_client.h - the OpenSSL side of outbound STARTTLS: one client context
 * per configuration (CA store for `verify`, DANE enabled), and one SSL per
 * connection set up for the hop's effective TLS level (docs/delivery.md
 * "TLS"): SNI is the MX host name; `verify` checks the chain and that name;
 * `dane` adds the hop's usable TLSA records (RFC 7672: DANE-TA(2) and
 * DANE-EE(3) only) to OpenSSL's DANE verifier.
 *
 * Verification never fails the handshake itself (SSL_VERIFY_NONE): the
 * result is read afterwards (tls_client_check), so that the reason a
 * policy was not met can be said in the log and the DSN.
 */
#ifndef MXB_TLS_CLIENT_H
#define MXB_TLS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "common/config.h"

/* One TLSA record (RFC 6698): borrowed data. */
struct tls_tlsa {
	uint8_t usage, selector, mtype;
	const unsigned char *data;
	size_t len;
};

/* What a delivery made of TLS, worst to best. */
enum tls_outcome {
	TLS_OUT_NONE,          /* plaintext */
	TLS_OUT_OPPORTUNISTIC, /* encrypted, peer not authenticated */
	TLS_OUT_VERIFIED,      /* chain and name checked */
	TLS_OUT_DANE,          /* authenticated by TLSA */
	TLS_OUT_COUNT,
};
const char *tls_outcome_name(enum tls_outcome o);

/* The client context: NULL with err filled (a bad CA file, no memory). */
SSL_CTX *tls_client_ctx_new(const char *ca_file, char *err, size_t errlen);

/*
 * A new SSL for a connection to `host` (the MX name: SNI, reference
 * identifier) at the effective `level` (may, encrypt, verify or dane),
 * with the TLSA records of the hop for dane (the unusable ones are
 * skipped here: RFC 7672 §2.2; at least one must be usable).  NULL with
 * err filled.
 */
SSL *tls_client_ssl_new(SSL_CTX *ctx, const char *host, enum config_tls_level level,
    const struct tls_tlsa *tlsa, size_t ntlsa, char *err, size_t errlen);

/* RFC 7672 §3.1.3: may OpenSSL use this TLSA record (DANE-TA(2) or
 * DANE-EE(3), selector 0/1, matching type 0/1/2 with a sane length)? */
bool tls_tlsa_usable(const struct tls_tlsa *t);

/*
 * After the handshake: did the peer meet `level`?  0 with *out set, or -1
 * with `why` ("TLS required by policy verify but the certificate ...").
 */
int tls_client_check(
    SSL *ssl, enum config_tls_level level, enum tls_outcome *out, char *why, size_t whylen);

/* After the handshake at any level: NULL when the chain verified against
 * the CA store and (given a host) the name matched, else OpenSSL's reason.
 * At may and encrypt this is only reported, never enforced. */
const char *tls_client_verify_error(SSL *ssl);

/* "TLSv1.3 TLS_AES_256_GCM_SHA384" */
void tls_client_describe(SSL *ssl, char *buf, size_t len);

#endif
