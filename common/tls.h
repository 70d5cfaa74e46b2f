/*
 * tls.h - small OpenSSL helpers shared by the TLS server and client sides:
 * library start, a context with TLS 1.2 as the floor, certificate and key
 * loading with errors that name the file, the OpenSSL error queue as text,
 * and the "TLSv1.3 with cipher ... (256/256 bits)" description for logs
 * and Received: headers.
 *
 * Contexts are OpenSSL's (reference counted: an SSL holds its SSL_CTX, so
 * a context replaced on reload lives on in the sessions that use it).
 * Thread-safe as OpenSSL 3 is; nothing here keeps state.
 */
#ifndef MXB_TLS_H
#define MXB_TLS_H

#include <stdbool.h>
#include <stddef.h>

struct ssl_ctx_st;
struct ssl_st;

/* Longest tls_describe text. */
#define TLS_DESCRIBE_MAX 160

/* Start OpenSSL (once; later calls are no-ops).  0, or -1 (logged). */
int tls_init(void);

/*
 * A new context for the server (server true) or client side with TLS 1.2
 * minimum, renegotiation off and OpenSSL's defaults otherwise; NULL with
 * the reason in err.
 */
struct ssl_ctx_st *tls_ctx_new(bool server, char *err, size_t errlen);

/*
 * Load the PEM certificate chain `cert` and private key `key` into ctx and
 * check that they belong together.  0, or -1 with "certificate PATH: why",
 * "key PATH: why" or "key PATH does not match certificate PATH" in err.
 */
int tls_ctx_load_cert(
    struct ssl_ctx_st *ctx, const char *cert, const char *key, char *err, size_t errlen);

/*
 * Restrict ctx to `ciphers` (TLS 1.2 list) and `suites` (TLS 1.3); NULL
 * keeps OpenSSL's default.  0, or -1 with why in err.
 */
int tls_ctx_set_ciphers(
    struct ssl_ctx_st *ctx, const char *ciphers, const char *suites, char *err, size_t errlen);

/* Take OpenSSL's error queue of this thread as "reason; reason" (cleared);
 * `fallback` when it is empty.  Returns buf. */
const char *tls_error_string(char *buf, size_t len, const char *fallback);

/* "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)" for an
 * established connection.  Returns buf. */
const char *tls_describe(const struct ssl_st *ssl, char *buf, size_t len);

/* The protocol and cipher names of an established connection (static strings). */
const char *tls_version_name(const struct ssl_st *ssl);
const char *tls_cipher_name(const struct ssl_st *ssl);

#endif
