/*
 * tls_server.h - the relay's inbound TLS: the server context built from
 * relay { tls { } }, replaced on reload, and the SSL objects handed to
 * sessions for STARTTLS and the implicit-TLS listener.
 *
 * An SSL keeps a reference on the context it was made from, so a session
 * that began before a reload finishes with the old certificate while new
 * sessions get the new one.  Loop thread only.
 */
#ifndef MXB_TLS_SERVER_H
#define MXB_TLS_SERVER_H

struct config_relay_tls;
struct ssl_st;
struct tls_server;

/*
 * A server context for `cfg` (borrowed for the call): certificate and key
 * loaded and matched, TLS 1.2 minimum.  NULL (logged with the file that is
 * wrong) on failure.
 */
struct tls_server *tls_server_new(const struct config_relay_tls *cfg);

/*
 * Load `cfg` into a new context and use it for new sessions; on failure
 * the running context stays and the error is logged.  0 or -1.
 */
int tls_server_reload(struct tls_server *t, const struct config_relay_tls *cfg);

/* A new server-side SSL on the current context (the caller owns it); NULL
 * (logged) when out of memory. */
struct ssl_st *tls_server_ssl_new(struct tls_server *t);

/* NULL is a no-op; SSLs made from it stay valid. */
void tls_server_free(struct tls_server *t);

#endif
