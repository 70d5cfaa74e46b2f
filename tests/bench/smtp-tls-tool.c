/*
 * smtp-tls-tool.c - a load client and a sink for SMTP over STARTTLS, for the
 * TLS benchmark (tests/bench/smtp-tls.sh).  Postfix's smtp-source and
 * smtp-sink speak no TLS; this is the smallest thing that does, with one
 * thread and blocking OpenSSL calls per connection, so that the tool costs
 * little next to the MTAs it measures.
 *
 *   smtp-tls-tool source [-s sessions] [-m messages] [-l size] [-r]
 *                        [-f from] [-t to] host port
 *       Send `messages` messages over `sessions` parallel connections, each
 *       after EHLO, STARTTLS, EHLO; -r opens a new connection (and does a
 *       new handshake) for every message; -p sends in plaintext (no STARTTLS),
 *       for the cost of TLS.  Prints messages/s and handshakes/s.
 *   smtp-tls-tool sink -c cert.pem -k key.pem host port
 *       Accept connections, offer STARTTLS and PIPELINING, say 250 to every
 *       message; runs until killed.
 *
 * Built by the benchmark script with cc; not part of the product.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

static void
die(const char *what)
{
	fprintf(stderr, "smtp-tls-tool: %s: %s\n", what, errno ? strerror(errno) : "failed");
	ERR_print_errors_fp(stderr);
	exit(1);
}

/* A connection: the socket before STARTTLS, the TLS session after. */
struct conn {
	int fd;
	SSL *ssl;
	char buf[8192];
	size_t len, off;
};

static int
conn_write(struct conn *c, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = c->ssl ? SSL_write(c->ssl, p, (int)n) : write(c->fd, p, n);
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* One line without CRLF into line (truncated to max); -1 at EOF/error. */
static int
conn_line(struct conn *c, char *line, size_t max)
{
	size_t n = 0;
	for (;;) {
		while (c->off < c->len) {
			char ch = c->buf[c->off++];
			if (ch == '\n') {
				if (n > 0 && line[n - 1] == '\r')
					n--;
				line[n] = '\0';
				return 0;
			}
			if (n + 1 < max)
				line[n++] = ch;
		}
		ssize_t r = c->ssl ? SSL_read(c->ssl, c->buf, sizeof(c->buf))
		                   : read(c->fd, c->buf, sizeof(c->buf));
		if (r <= 0)
			return -1;
		c->len = (size_t)r;
		c->off = 0;
	}
}

/* Pending input after STARTTLS must not leak into the TLS session. */
static bool
conn_buffered(const struct conn *c)
{
	return c->off < c->len || (c->ssl && SSL_pending(c->ssl) > 0);
}

/* Read a (multi-line) reply; its code, or -1. */
static int
reply(struct conn *c)
{
	char line[1024];
	for (;;) {
		if (conn_line(c, line, sizeof(line)) < 0 || strlen(line) < 3)
			return -1;
		if (line[3] != '-')
			return atoi(line);
	}
}

static int
command(struct conn *c, const char *cmd, int want)
{
	if (conn_write(c, cmd, strlen(cmd)) < 0)
		return -1;
	int code = reply(c);
	return code / 100 == want ? 0 : -1;
}

/* ---- source ---- */

static const char *host = "127.0.0.1", *from = "bench@client.test", *to = "rcpt@outside.example";
static int port;
static long messages = 1000, sessions = 10, size = 1024;
static bool reconnect, plaintext;
static atomic_long next_msg, handshakes, failures;
static SSL_CTX *ctx;
static char *body;
static size_t body_len;

static int
dial(struct conn *c)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
		return -1;
	memset(c, 0, sizeof(*c));
	if ((c->fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
		return -1;
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		return -1;
	if (reply(c) != 220 || command(c, "EHLO client.test\r\n", 2) < 0)
		return -1;
	if (plaintext)
		return 0;
	if (command(c, "STARTTLS\r\n", 2) < 0 || conn_buffered(c))
		return -1;
	if ((c->ssl = SSL_new(ctx)) == NULL || SSL_set_fd(c->ssl, c->fd) != 1 ||
	    SSL_connect(c->ssl) != 1)
		return -1;
	atomic_fetch_add(&handshakes, 1);
	c->len = c->off = 0;
	return command(c, "EHLO client.test\r\n", 2);
}

static void
hangup(struct conn *c)
{
	if (c->ssl) {
		(void)command(c, "QUIT\r\n", 2);
		SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	close(c->fd);
	c->fd = -1;
	c->ssl = NULL;
}

static int
send_one(struct conn *c)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "MAIL FROM:<%s>\r\n", from);
	if (command(c, cmd, 2) < 0)
		return -1;
	snprintf(cmd, sizeof(cmd), "RCPT TO:<%s>\r\n", to);
	if (command(c, cmd, 2) < 0 || command(c, "DATA\r\n", 3) < 0)
		return -1;
	if (conn_write(c, body, body_len) < 0)
		return -1;
	return reply(c) / 100 == 2 ? 0 : -1;
}

static void *
source_thread(void *arg)
{
	(void)arg;
	struct conn c = {.fd = -1};
	while (atomic_fetch_add(&next_msg, 1) < messages) {
		if (c.fd < 0 && dial(&c) < 0) {
			atomic_fetch_add(&failures, 1);
			if (c.fd >= 0)
				close(c.fd);
			c.fd = -1;
			continue;
		}
		if (send_one(&c) < 0) {
			atomic_fetch_add(&failures, 1);
			hangup(&c);
			continue;
		}
		if (reconnect)
			hangup(&c);
	}
	if (c.fd >= 0)
		hangup(&c);
	return NULL;
}

static void
make_body(void)
{
	/* Header lines, then 72-column lines of body up to `size` octets. */
	body = malloc((size_t)size + 512);
	if (body == NULL)
		die("malloc");
	int n = snprintf(body, 512, "From: <%s>\r\nTo: <%s>\r\nSubject: bench\r\n\r\n", from, to);
	body_len = (size_t)n;
	while (body_len + 74 < (size_t)size) {
		memset(body + body_len, 'x', 72);
		memcpy(body + body_len + 72, "\r\n", 2);
		body_len += 74;
	}
	memcpy(body + body_len, ".\r\n", 3);
	body_len += 3;
}

static double
now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
source_main(int argc, char **argv)
{
	int ch;
	while ((ch = getopt(argc, argv, "s:m:l:rpf:t:")) != -1) {
		switch (ch) {
		case 's': sessions = atol(optarg); break;
		case 'm': messages = atol(optarg); break;
		case 'l': size = atol(optarg); break;
		case 'r': reconnect = true; break;
		case 'p': plaintext = true; break;
		case 'f': from = optarg; break;
		case 't': to = optarg; break;
		default: return 2;
		}
	}
	if (argc - optind != 2 || sessions < 1 || sessions > 1000 || messages < 1)
		return 2;
	host = argv[optind];
	port = atoi(argv[optind + 1]);
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		die("SSL_CTX_new");
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL); /* a benchmark on loopback */
	make_body();
	pthread_t *t = calloc((size_t)sessions, sizeof(*t));
	if (t == NULL)
		die("calloc");
	double t0 = now();
	for (long i = 0; i < sessions; i++)
		if (pthread_create(&t[i], NULL, source_thread, NULL) != 0)
			die("pthread_create");
	for (long i = 0; i < sessions; i++)
		pthread_join(t[i], NULL);
	double dt = now() - t0;
	long failed = atomic_load(&failures);
	printf("sent %ld messages in %.3f s: %.0f messages/s, %ld handshakes: %.0f handshakes/s, "
	       "%ld failed\n",
	    messages - failed, dt, (double)(messages - failed) / dt, atomic_load(&handshakes),
	    (double)atomic_load(&handshakes) / dt, failed);
	return failed ? 1 : 0;
}

/* ---- sink ---- */

static SSL_CTX *sctx;

static void *
sink_thread(void *arg)
{
	struct conn c = {.fd = (int)(intptr_t)arg};
	char line[1024];
	bool data = false;
	(void)conn_write(&c, "220 sink.bench.test ESMTP\r\n", 27);
	while (conn_line(&c, line, sizeof(line)) == 0) {
		const char *r = NULL;
		if (data) {
			if (strcmp(line, ".") != 0)
				continue;
			data = false;
			r = "250 2.0.0 queued\r\n";
		} else if (strncasecmp(line, "EHLO", 4) == 0) {
			r = c.ssl ? "250-sink.bench.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
			          : "250-sink.bench.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
			            "250 STARTTLS\r\n";
		} else if (strncasecmp(line, "STARTTLS", 8) == 0 && c.ssl == NULL) {
			if (conn_write(&c, "220 2.0.0 go ahead\r\n", 20) < 0 || conn_buffered(&c))
				break;
			if ((c.ssl = SSL_new(sctx)) == NULL || SSL_set_fd(c.ssl, c.fd) != 1 ||
			    SSL_accept(c.ssl) != 1)
				break;
			c.len = c.off = 0;
			continue;
		} else if (strncasecmp(line, "DATA", 4) == 0) {
			data = true;
			r = "354 go ahead\r\n";
		} else if (strncasecmp(line, "QUIT", 4) == 0) {
			(void)conn_write(&c, "221 bye\r\n", 9);
			break;
		} else {
			r = "250 2.0.0 ok\r\n";
		}
		if (conn_write(&c, r, strlen(r)) < 0)
			break;
	}
	if (c.ssl) {
		SSL_shutdown(c.ssl);
		SSL_free(c.ssl);
	}
	close(c.fd);
	return NULL;
}

static int
sink_main(int argc, char **argv)
{
	const char *cert = NULL, *key = NULL;
	int ch;
	while ((ch = getopt(argc, argv, "c:k:")) != -1) {
		switch (ch) {
		case 'c': cert = optarg; break;
		case 'k': key = optarg; break;
		default: return 2;
		}
	}
	if (argc - optind != 2 || cert == NULL || key == NULL)
		return 2;
	if ((sctx = SSL_CTX_new(TLS_server_method())) == NULL ||
	    SSL_CTX_use_certificate_chain_file(sctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(sctx, key, SSL_FILETYPE_PEM) != 1)
		die("loading the certificate and key");
	SSL_CTX_set_min_proto_version(sctx, TLS1_2_VERSION);
	struct sockaddr_in sin = {
	    .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[optind + 1]))};
	if (inet_pton(AF_INET, argv[optind], &sin.sin_addr) != 1)
		return 2;
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(fd, 512) < 0)
		die("listen");
	for (;;) {
		int cfd = accept(fd, NULL, NULL);
		if (cfd < 0)
			continue;
		setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		pthread_t t;
		if (pthread_create(&t, NULL, sink_thread, (void *)(intptr_t)cfd) != 0) {
			close(cfd);
			continue;
		}
		pthread_detach(t);
	}
}

int
main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN); /* a peer that hangs up ends its thread, not the tool */
	if (argc >= 2 && strcmp(argv[1], "source") == 0)
		return source_main(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "sink") == 0)
		return sink_main(argc - 1, argv + 1);
	fprintf(stderr,
	    "usage: smtp-tls-tool source [-s sessions] [-m messages] [-l size] [-r] [-p] "
	    "[-f from] [-t to] host port\n"
	    "       smtp-tls-tool sink -c cert.pem -k key.pem host port\n");
	return 2;
}
