/* tls.c - shared OpenSSL helpers: context, certificate and key, error text. */
#include "common/tls.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "common/log.h"

int
tls_init(void)
{
	if (OPENSSL_init_ssl(
	        OPENSSL_INIT_LOAD_SSL_STRINGS | OPENSSL_INIT_LOAD_CRYPTO_STRINGS, NULL) != 1) {
		log_warnx("tls: OpenSSL initialisation failed");
		return -1;
	}
	return 0;
}

const char *
tls_error_string(char *buf, size_t len, const char *fallback)
{
	unsigned long e;
	size_t n = 0;

	buf[0] = '\0';
	while ((e = ERR_get_error()) != 0) {
		const char *r = ERR_reason_error_string(e);
		char code[32];

		if (r == NULL) {
			snprintf(code, sizeof(code), "error %lu", e);
			r = code;
		}
		if (n < len)
			n += (size_t)snprintf(buf + n, len - n, "%s%s", n > 0 ? "; " : "", r);
	}
	if (buf[0] == '\0')
		snprintf(buf, len, "%s", fallback);
	return buf;
}

struct ssl_ctx_st *
tls_ctx_new(bool server, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());

	if (ctx == NULL) {
		tls_error_string(err, errlen, "out of memory");
		return NULL;
	}
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
		tls_error_string(err, errlen, "cannot set TLS 1.2 as the minimum");
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	return ctx;
}

int
tls_ctx_load_cert(
    struct ssl_ctx_st *ctx, const char *cert, const char *key, char *err, size_t errlen)
{
	char why[256];
	FILE *f;

	/* fopen first: "No such file or directory" says more than PEM_R_NO_START_LINE. */
	if ((f = fopen(cert, "r")) == NULL) {
		snprintf(err, errlen, "certificate %s: %s", cert, strerror(errno));
		return -1;
	}
	fclose(f);
	if ((f = fopen(key, "r")) == NULL) {
		snprintf(err, errlen, "key %s: %s", key, strerror(errno));
		return -1;
	}
	fclose(f);
	ERR_clear_error();
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		snprintf(err, errlen, "certificate %s: %s", cert,
		    tls_error_string(why, sizeof(why), "not a PEM certificate"));
		return -1;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		tls_error_string(why, sizeof(why), "not a PEM private key");
		if (strstr(why, "values mismatch") != NULL || strstr(why, "mismatch") != NULL)
			snprintf(err, errlen, "key %s does not match certificate %s", key, cert);
		else
			snprintf(err, errlen, "key %s: %s", key, why);
		return -1;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		ERR_clear_error();
		snprintf(err, errlen, "key %s does not match certificate %s", key, cert);
		return -1;
	}
	return 0;
}

int
tls_ctx_set_ciphers(
    struct ssl_ctx_st *ctx, const char *ciphers, const char *suites, char *err, size_t errlen)
{
	char why[256];

	if (ciphers != NULL && SSL_CTX_set_cipher_list(ctx, ciphers) != 1) {
		snprintf(err, errlen, "ciphers \"%s\": %s", ciphers,
		    tls_error_string(why, sizeof(why), "no usable cipher"));
		return -1;
	}
	if (suites != NULL && SSL_CTX_set_ciphersuites(ctx, suites) != 1) {
		snprintf(err, errlen, "ciphersuites \"%s\": %s", suites,
		    tls_error_string(why, sizeof(why), "no usable cipher suite"));
		return -1;
	}
	return 0;
}

const char *
tls_version_name(const struct ssl_st *ssl)
{
	return SSL_get_version(ssl);
}

const char *
tls_cipher_name(const struct ssl_st *ssl)
{
	const char *name = SSL_CIPHER_get_name(SSL_get_current_cipher(ssl));

	return name != NULL ? name : "(none)";
}

const char *
tls_describe(const struct ssl_st *ssl, char *buf, size_t len)
{
	const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
	int alg = 0, bits = SSL_CIPHER_get_bits(c, &alg);

	snprintf(buf, len, "%s with cipher %s (%d/%d bits)", SSL_get_version(ssl),
	    tls_cipher_name(ssl), bits, alg);
	return buf;
}
