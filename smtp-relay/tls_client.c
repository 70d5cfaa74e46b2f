/*
 * tls_client.c - OpenSSL client contexts and per-connection SSL objects
 * for outbound STARTTLS, verification and DANE (see tls_client.h).
 */
#include "smtp-relay/tls_client.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

static const char *const outcome_names[TLS_OUT_COUNT] = {
    "none", "opportunistic", "verified", "dane"};

const char *
tls_outcome_name(enum tls_outcome o)
{
	return o < TLS_OUT_COUNT ? outcome_names[o] : "none";
}

static void
ssl_error(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256] = "";

	if (e != 0)
		ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	snprintf(err, errlen, "%s%s%s", what, buf[0] ? ": " : "", buf);
}

SSL_CTX *
tls_client_ctx_new(const char *ca_file, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL) {
		ssl_error(err, errlen, "SSL_CTX_new");
		return NULL;
	}
	/* TLS 1.2 minimum; OpenSSL's secure defaults otherwise. */
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	if ((ca_file != NULL && SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) ||
	    (ca_file == NULL && SSL_CTX_set_default_verify_paths(ctx) != 1)) {
		char what[300];

		snprintf(what, sizeof(what), "tls-ca-file %s", ca_file ? ca_file : "(system)");
		ssl_error(err, errlen, what);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_dane_enable(ctx) <= 0) {
		ssl_error(err, errlen, "SSL_CTX_dane_enable");
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

bool
tls_tlsa_usable(const struct tls_tlsa *t)
{
	static const size_t mlen[] = {0, 32, 64};

	if (t->usage != 2 && t->usage != 3)
		return false; /* PKIX-TA(0), PKIX-EE(1): RFC 7672 §3.1.3 */
	if (t->selector > 1 || t->mtype > 2 || t->len == 0)
		return false;
	return t->mtype == 0 || t->len == mlen[t->mtype];
}

SSL *
tls_client_ssl_new(SSL_CTX *ctx, const char *host, enum config_tls_level level,
    const struct tls_tlsa *tlsa, size_t ntlsa, char *err, size_t errlen)
{
	SSL *ssl = SSL_new(ctx);
	size_t added = 0;

	if (ssl == NULL) {
		ssl_error(err, errlen, "SSL_new");
		return NULL;
	}
	if (host != NULL && host[0] != '\0' && SSL_set_tlsext_host_name(ssl, host) != 1)
		goto fail;
	if (level == CONFIG_TLS_VERIFY) {
		X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);

		X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (X509_VERIFY_PARAM_set1_host(vp, host, 0) != 1)
			goto fail;
	} else if ((level == CONFIG_TLS_MAY || level == CONFIG_TLS_ENCRYPT) && host != NULL &&
	    host[0] != '\0') {
		/* Not enforced (SSL_VERIFY_NONE), only recorded in the verify
		 * result, so that MTA-STS testing can say whether the
		 * certificate would have passed (tls_client_verify_error). */
		X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);

		X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (X509_VERIFY_PARAM_set1_host(vp, host, 0) != 1)
			ERR_clear_error();
	} else if (level == CONFIG_TLS_DANE || level == CONFIG_TLS_DANE_ONLY) {
		if (SSL_dane_enable(ssl, host) <= 0)
			goto fail;
		/* RFC 7672 §3.1.1: DANE-EE(3) binds the key, not names. */
		SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
		for (size_t i = 0; i < ntlsa; i++) {
			if (!tls_tlsa_usable(&tlsa[i]))
				continue;
			if (SSL_dane_tlsa_add(ssl, tlsa[i].usage, tlsa[i].selector, tlsa[i].mtype,
			        tlsa[i].data, tlsa[i].len) > 0)
				added++;
		}
		ERR_clear_error(); /* a record OpenSSL refused is unusable, no more */
		if (added == 0) {
			snprintf(err, errlen, "no usable TLSA record");
			SSL_free(ssl);
			return NULL;
		}
	}
	return ssl;
fail:
	ssl_error(err, errlen, "TLS setup");
	SSL_free(ssl);
	return NULL;
}

int
tls_client_check(
    SSL *ssl, enum config_tls_level level, enum tls_outcome *out, char *why, size_t whylen)
{
	long v = SSL_get_verify_result(ssl);
	bool dane = level == CONFIG_TLS_DANE || level == CONFIG_TLS_DANE_ONLY;

	*out = TLS_OUT_OPPORTUNISTIC;
	if (level != CONFIG_TLS_VERIFY && !dane)
		return 0;
	if (SSL_get0_peer_certificate(ssl) == NULL)
		v = X509_V_ERR_UNSPECIFIED;
	if (v == X509_V_OK && (!dane || SSL_get0_dane_authority(ssl, NULL, NULL) >= 0)) {
		*out = dane ? TLS_OUT_DANE : TLS_OUT_VERIFIED;
		return 0;
	}
	if (dane)
		snprintf(why, whylen, "TLS required by policy dane but TLSA did not match (%s)",
		    X509_verify_cert_error_string(v));
	else
		snprintf(why, whylen,
		    "TLS required by policy verify but the certificate did not verify (%s)",
		    X509_verify_cert_error_string(v));
	return -1;
}

const char *
tls_client_verify_error(SSL *ssl)
{
	long v = SSL_get0_peer_certificate(ssl) == NULL ? X509_V_ERR_UNSPECIFIED
	                                                : SSL_get_verify_result(ssl);

	return v == X509_V_OK ? NULL : X509_verify_cert_error_string(v);
}

void
tls_client_describe(SSL *ssl, char *buf, size_t len)
{
	snprintf(buf, len, "%s %s", SSL_get_version(ssl), SSL_get_cipher_name(ssl));
}
