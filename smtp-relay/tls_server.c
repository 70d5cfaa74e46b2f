/* tls_server.c - the inbound TLS context: build, reload, hand out SSLs. */
#include "smtp-relay/tls_server.h"

#include <stdlib.h>

#include <openssl/ssl.h>

#include "common/config.h"
#include "common/log.h"
#include "common/tls.h"

struct tls_server {
	SSL_CTX *ctx; /* for new sessions; older ones hold their own reference */
};

/* A context for cfg, or NULL with the reason in err. */
static SSL_CTX *
server_ctx_new(const struct config_relay_tls *cfg, char *err, size_t errlen)
{
	SSL_CTX *ctx = tls_ctx_new(true, err, errlen);

	if (ctx == NULL)
		return NULL;
	if (tls_ctx_load_cert(ctx, cfg->certificate, cfg->key, err, errlen) == -1 ||
	    tls_ctx_set_ciphers(ctx, cfg->ciphers, cfg->ciphersuites, err, errlen) == -1) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	/* Session resumption by tickets only: no server-side cache to grow. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	return ctx;
}

struct tls_server *
tls_server_new(const struct config_relay_tls *cfg)
{
	struct tls_server *t;
	char err[512];

	if (tls_init() == -1)
		return NULL;
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		log_warnx("tls: out of memory");
		return NULL;
	}
	if ((t->ctx = server_ctx_new(cfg, err, sizeof(err))) == NULL) {
		log_warnx("tls: %s", err);
		free(t);
		return NULL;
	}
	log_info("tls: certificate %s loaded", cfg->certificate);
	return t;
}

int
tls_server_reload(struct tls_server *t, const struct config_relay_tls *cfg)
{
	char err[512];
	SSL_CTX *ctx = server_ctx_new(cfg, err, sizeof(err));

	if (ctx == NULL) {
		log_warnx("tls: reload: %s: keeping the running certificate", err);
		return -1;
	}
	SSL_CTX_free(t->ctx);
	t->ctx = ctx;
	log_info("tls: certificate %s reloaded", cfg->certificate);
	return 0;
}

struct ssl_st *
tls_server_ssl_new(struct tls_server *t)
{
	SSL *ssl = SSL_new(t->ctx);

	if (ssl == NULL)
		log_warnx("tls: SSL_new: out of memory");
	return ssl;
}

void
tls_server_free(struct tls_server *t)
{
	if (t == NULL)
		return;
	SSL_CTX_free(t->ctx);
	free(t);
}
