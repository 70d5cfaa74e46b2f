/* server.c - UDP query threads and TCP on the main loop. */
#include "broker/server.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "broker/rrl.h"
#include "broker/xfr.h"
#include "broker/zone.h"
#include "broker/zonestore.h"
#include "common/addr.h"
#include "common/config.h"
#include "common/listener.h"
#include "common/log.h"

#define SERVER_STOP_CHECK_US 200000 /* blocking receive: how often stop is checked */
#define UDP_ROUNDS           8      /* batches per wake-up before yielding to the loop */
#define RCODE_REFUSED        5
#define TCP_OUT_HIGH         (256 * 1024) /* unsent bytes before we stop reading */

/* One UDP socket of one thread. */
struct udp_sock {
	struct worker *w;
	int fd;
	bool pktinfo; /* bound to a wildcard: answer from the query's address */
	struct event *ev;
};

/* Room for an IPv4 or IPv6 packet-info control message. */
#define UDP_CTL_LEN CMSG_SPACE(sizeof(struct in6_pktinfo))

struct worker {
	struct dns_server *srv;
	unsigned id;
	pthread_t tid;
	bool started;
	atomic_bool stop; /* blocking mode: leave the receive loop */
	struct event_base *base;
	struct udp_sock *socks;
	size_t nsocks;
	struct log_ratelimit rl;
	struct answer_stats stats;
	struct rrl *rrl; /* NULL: no rate limit */
	struct mmsghdr in[SERVER_UDP_BATCH], out[SERVER_UDP_BATCH];
	struct iovec iov_in[SERVER_UDP_BATCH], iov_out[SERVER_UDP_BATCH];
	struct sockaddr_storage from[SERVER_UDP_BATCH];
	uint8_t ctl[SERVER_UDP_BATCH][UDP_CTL_LEN] __attribute__((aligned(8)));
	uint8_t rbuf[SERVER_UDP_BATCH][SERVER_UDP_RECV_MAX];
	uint8_t wbuf[SERVER_UDP_BATCH][ANSWER_EDNS_SIZE];
};

struct tcp_conn {
	struct dns_server *srv;
	struct bufferevent *bev;
	struct addr peer;
};

struct dns_server {
	struct event_base *base;
	const struct config_broker *cfg;
	struct zonestore *zs;
	struct worker *workers;
	unsigned nworkers;
	struct addr
	    *addrs; /* bound listen addresses; listeners[] and each worker's socks[] match */
	struct listener **listeners;
	size_t nlisteners;
	struct answer_stats tcp_stats;
	uint64_t xfr_refused;
	uint64_t nclients;
	struct log_ratelimit rl;
	uint8_t tcpbuf[WIRE_MSG_MAX];
};

/* ---- UDP -------------------------------------------------------------- */

/* Send from the address the query came to: IPv4 by ipi_spec_dst, any ifindex. */
static void
udp_reply_control(struct msghdr *out, struct msghdr *in)
{
	struct cmsghdr *c;

	for (c = CMSG_FIRSTHDR(in); c != NULL; c = CMSG_NXTHDR(in, c)) {
		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
			struct in_pktinfo *pi = (struct in_pktinfo *)CMSG_DATA(c);

			pi->ipi_ifindex = 0;
			break;
		}
		if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO)
			break;
	}
	if (c == NULL)
		return;
	out->msg_control = c;
	out->msg_controllen = CMSG_SPACE(c->cmsg_len - CMSG_LEN(0));
}

static uint64_t
monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * Response rate limiting of the reply in wbuf[m] to query i: false when it
 * must not be sent; a slipped reply is rewritten as an empty one with TC.
 */
static bool
udp_rate_limit(struct worker *w, unsigned i, unsigned m, struct answer_result *res, uint64_t now_ms)
{
	switch (rrl_check(w->rrl, (const struct sockaddr *)&w->from[i], now_ms)) {
	case RRL_SEND: return true;
	case RRL_SLIP:
		res->len =
		    answer_empty(&res->q, w->rbuf[i], res->rcode, w->wbuf[m], sizeof(w->wbuf[m]));
		if (res->len == 0)
			break;
		w->wbuf[m][2] |= 0x02; /* TC: ask again over TCP */
		answer_count(&w->stats.rrl_slipped);
		return true;
	case RRL_DROP: break;
	}
	answer_count(&w->stats.rrl_dropped);
	return false;
}

static unsigned
udp_answer_batch(struct udp_sock *us, unsigned n)
{
	struct worker *w = us->w;
	struct dns_server *s = w->srv;
	const struct zsnap *snap = zonestore_enter(s->zs, w->id);
	unsigned m = 0;

	uint64_t now_ms = w->rrl != NULL ? monotonic_ms() : 0;

	for (unsigned i = 0; i < n; i++) {
		struct answer_result res;
		struct msghdr *h = &w->out[m].msg_hdr;

		if (answer_query(snap->zones, snap->n, w->rbuf[i], w->in[i].msg_len, false,
		        w->wbuf[m], sizeof(w->wbuf[m]), &res, &w->stats) != ANSWER_REPLY)
			continue;
		if (w->rrl != NULL && !udp_rate_limit(w, i, m, &res, now_ms))
			continue;
		w->iov_out[m].iov_base = w->wbuf[m];
		w->iov_out[m].iov_len = res.len;
		memset(h, 0, sizeof(*h));
		h->msg_name = &w->from[i];
		h->msg_namelen = w->in[i].msg_hdr.msg_namelen;
		h->msg_iov = &w->iov_out[m];
		h->msg_iovlen = 1;
		if (us->pktinfo)
			udp_reply_control(h, &w->in[i].msg_hdr);
		m++;
	}
	zonestore_leave(s->zs, w->id);
	return m;
}

static void
udp_send(struct worker *w, int fd, unsigned m)
{
	unsigned done = 0;

	while (done < m) {
		int r = sendmmsg(fd, w->out + done, m - done, 0);

		if (r > 0) {
			done += (unsigned)r;
			continue;
		}
		if (errno == EINTR)
			continue;
		/* Skip the datagram the kernel refused (e.g. unreachable peer). */
		log_warnx_rl(&w->rl, "udp: sendmmsg: %s", strerror(errno));
		done++;
	}
}

static void
udp_prepare_recv(struct udp_sock *us)
{
	struct worker *w = us->w;

	for (unsigned i = 0; i < SERVER_UDP_BATCH; i++) {
		struct msghdr *h = &w->in[i].msg_hdr;

		w->iov_in[i].iov_base = w->rbuf[i];
		w->iov_in[i].iov_len = sizeof(w->rbuf[i]);
		memset(h, 0, sizeof(*h));
		h->msg_name = &w->from[i];
		h->msg_namelen = sizeof(w->from[i]);
		h->msg_iov = &w->iov_in[i];
		h->msg_iovlen = 1;
		if (us->pktinfo) {
			h->msg_control = w->ctl[i];
			h->msg_controllen = sizeof(w->ctl[i]);
		}
	}
}

static void
udp_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct udp_sock *us = arg;
	struct worker *w = us->w;

	(void)what;
	for (int round = 0; round < UDP_ROUNDS; round++) {
		int n;
		unsigned m;

		udp_prepare_recv(us);
		n = recvmmsg(fd, w->in, SERVER_UDP_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0) {
			if (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				log_warnx_rl(&w->rl, "udp: recvmmsg: %s", strerror(errno));
			return;
		}
		m = udp_answer_batch(us, (unsigned)n);
		if (m > 0)
			udp_send(w, fd, m);
		if (n < SERVER_UDP_BATCH)
			return;
	}
}

/*
 * A thread with one socket receives in blocking recvmmsg calls (the first
 * datagram waits, the rest of the batch does not) instead of waking through
 * epoll for every batch; a receive timeout lets it notice `stop`.
 */
static void
worker_blocking(struct worker *w)
{
	struct udp_sock *us = &w->socks[0];
	struct timeval tick = {0, SERVER_STOP_CHECK_US};
	int flags = fcntl(us->fd, F_GETFL);

	if (flags == -1 || fcntl(us->fd, F_SETFL, flags & ~O_NONBLOCK) == -1 ||
	    setsockopt(us->fd, SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof(tick)) == -1) {
		log_warn("udp: blocking receive");
		event_base_dispatch(w->base);
		return;
	}
	event_del(us->ev);
	while (!atomic_load_explicit(&w->stop, memory_order_relaxed)) {
		int n;
		unsigned m;

		udp_prepare_recv(us);
		n = recvmmsg(us->fd, w->in, SERVER_UDP_BATCH, MSG_WAITFORONE, NULL);
		if (n <= 0) {
			if (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				log_warnx_rl(&w->rl, "udp: recvmmsg: %s", strerror(errno));
			continue;
		}
		m = udp_answer_batch(us, (unsigned)n);
		if (m > 0)
			udp_send(w, us->fd, m);
	}
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;

	if (w->nsocks == 1)
		worker_blocking(w);
	else
		event_base_dispatch(w->base);
	return NULL;
}

/* One thread's UDP socket on a (SO_REUSEPORT); -1 (logged) on failure. */
static int
udp_bind(const struct addr *a, bool first, bool *pktinfo)
{
	int on = 1, fd;
	char text[ADDR_STRLEN];

	*pktinfo = false;
	if ((fd = sock_bind(a, SOCK_DGRAM, SOCK_F_REUSEPORT)) == -1) {
		log_warn("cannot listen on %s (udp)", addr_str(a, text, sizeof(text)));
		return -1;
	}
	if (sock_set_rcvbuf(fd, SERVER_UDP_RCVBUF) == -1 && first)
		log_warn("udp: %s: receive buffer below %d bytes", addr_str(a, text, sizeof(text)),
		    SERVER_UDP_RCVBUF);
	if (addr_is_any(a)) {
		int r = addr_family(a) == AF_INET
		    ? setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &on, sizeof(on))
		    : setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof(on));

		if (r == -1) {
			log_warn("udp: %s: packet info", addr_str(a, text, sizeof(text)));
			close(fd);
			return -1;
		}
		*pktinfo = true;
	}
	return fd;
}

/* Watch us->fd on its thread's loop; 0 or -1 (logged). */
static int
udp_watch(struct udp_sock *us)
{
	us->ev = event_new(us->w->base, us->fd, EV_READ | EV_PERSIST, udp_read_cb, us);
	if (us->ev == NULL || event_add(us->ev, NULL) == -1) {
		log_warnx("udp: cannot watch a socket");
		return -1;
	}
	return 0;
}

static int
udp_open(struct udp_sock *us, const struct addr *a)
{
	us->fd = udp_bind(a, us->w->id == 0, &us->pktinfo);
	return us->fd == -1 ? -1 : udp_watch(us);
}

static int
worker_bind(struct worker *w, const struct config_addrs *listen)
{
	w->base = event_base_new();
	w->socks = calloc(listen->n, sizeof(*w->socks));
	if (w->srv->cfg->rrl.responses_per_second != 0 &&
	    (w->rrl = rrl_new(&w->srv->cfg->rrl)) == NULL) {
		log_warnx("udp: out of memory for the rate-limit table");
		return -1;
	}
	if (w->base == NULL || w->socks == NULL) {
		log_warnx("udp: out of memory");
		return -1;
	}
	for (size_t i = 0; i < listen->n; i++) {
		w->socks[i].w = w;
		w->socks[i].fd = -1;
		w->nsocks++;
		if (udp_open(&w->socks[i], &listen->v[i]) == -1)
			return -1;
	}
	return 0;
}

static void
worker_close(struct worker *w)
{
	for (size_t i = 0; i < w->nsocks; i++) {
		if (w->socks[i].ev != NULL)
			event_free(w->socks[i].ev);
		if (w->socks[i].fd != -1)
			close(w->socks[i].fd);
	}
	free(w->socks);
	rrl_free(w->rrl);
	if (w->base != NULL)
		event_base_free(w->base);
}

/* ---- TCP -------------------------------------------------------------- */

static void
tcp_close(struct tcp_conn *c)
{
	c->srv->nclients--;
	bufferevent_free(c->bev);
	free(c);
}

static void
tcp_write_msg(struct evbuffer *out, const uint8_t *msg, size_t len)
{
	uint8_t hdr[2];

	wire_put16(hdr, (uint16_t)len);
	evbuffer_add(out, hdr, 2);
	evbuffer_add(out, msg, len);
}

/* A transfer (xfr.c answers it); REFUSED from here only when xfr.c wrote nothing. */
static void
tcp_xfr(struct tcp_conn *c, const uint8_t *msg, size_t len, const struct answer_result *res)
{
	struct dns_server *s = c->srv;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	struct xfr_request r = {
	    msg, len, &res->q, &c->peer, res->zone, s->cfg, s->zs, &s->rl, (uint64_t)time(NULL)};

	switch (xfr_answer(&r, out)) {
	case XFR_AXFR:
	case XFR_IXFR: return;
	case XFR_REFUSED: s->xfr_refused++; return;
	case XFR_FAILED: break;
	}
	s->xfr_refused++;
	tcp_write_msg(out, s->tcpbuf,
	    answer_empty(&res->q, msg, RCODE_REFUSED, s->tcpbuf, sizeof(s->tcpbuf)));
}

/* Answer every complete message in the input; false: close the connection. */
static bool
tcp_drain(struct tcp_conn *c)
{
	struct dns_server *s = c->srv;
	struct evbuffer *in = bufferevent_get_input(c->bev);
	uint8_t hdr[2];

	while (evbuffer_copyout(in, hdr, 2) == 2) {
		size_t len = wire_get16(hdr);
		const struct zsnap *snap = zonestore_snapshot(s->zs);
		struct answer_result res;
		const uint8_t *msg;

		if (evbuffer_get_length(in) < len + 2)
			break;
		msg = evbuffer_pullup(in, (ssize_t)len + 2) + 2;
		switch (answer_query(snap->zones, snap->n, msg, len, true, s->tcpbuf,
		    sizeof(s->tcpbuf), &res, &s->tcp_stats)) {
		case ANSWER_DROP: return false;
		case ANSWER_XFR: tcp_xfr(c, msg, len, &res); break;
		case ANSWER_REPLY:
			tcp_write_msg(bufferevent_get_output(c->bev), s->tcpbuf, res.len);
			break;
		}
		evbuffer_drain(in, len + 2);
	}
	return true;
}

/* A client that sends without reading stops being read until it catches up. */
static void
tcp_read_cb(struct bufferevent *bev, void *arg)
{
	struct tcp_conn *c = arg;

	if (!tcp_drain(c)) {
		tcp_close(c);
		return;
	}
	if (evbuffer_get_length(bufferevent_get_output(bev)) > TCP_OUT_HIGH)
		bufferevent_disable(bev, EV_READ);
}

static void
tcp_write_cb(struct bufferevent *bev, void *arg)
{
	struct tcp_conn *c = arg;

	if (bufferevent_get_enabled(bev) & EV_READ)
		return;
	bufferevent_enable(bev, EV_READ);
	/* Queries may have waited in the input while we were not reading. */
	tcp_read_cb(bev, c);
}

static void
tcp_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
		tcp_close(arg);
}

static void
tcp_accept_cb(
    struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct dns_server *s = arg;
	struct timeval idle = {(time_t)s->cfg->tcp_idle_timeout, 0};
	struct tcp_conn *c;

	(void)l;
	if (s->nclients >= s->cfg->tcp_max_clients || (c = calloc(1, sizeof(*c))) == NULL) {
		log_warnx_rl(&s->rl, "tcp: %" PRIu64 " clients: refusing another", s->nclients);
		close(fd);
		return;
	}
	c->srv = s;
	addr_from_sockaddr(sa, (socklen_t)salen, &c->peer);
	c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		close(fd);
		free(c);
		return;
	}
	s->nclients++;
	bufferevent_setcb(c->bev, tcp_read_cb, tcp_write_cb, tcp_event_cb, c);
	bufferevent_setwatermark(c->bev, EV_WRITE, TCP_OUT_HIGH / 2, 0);
	bufferevent_set_timeouts(c->bev, &idle, &idle);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static int
tcp_listen(struct dns_server *s)
{
	const struct config_addrs *listen = &s->cfg->listen;

	s->listeners = calloc(listen->n, sizeof(*s->listeners));
	if (s->listeners == NULL)
		return -1;
	for (size_t i = 0; i < listen->n; i++) {
		s->listeners[i] = listener_open(s->base, &listen->v[i], tcp_accept_cb, s, "dns");
		if (s->listeners[i] == NULL)
			return -1;
		s->nlisteners++;
	}
	return 0;
}

/* ---- the server ------------------------------------------------------- */

struct dns_server *
dns_server_new(struct event_base *base, const struct config_broker *cfg, struct zonestore *zs)
{
	struct dns_server *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->base = base;
	s->cfg = cfg;
	s->zs = zs;
	s->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(5, 60);
	s->nworkers = cfg->threads;
	s->workers = calloc(s->nworkers, sizeof(*s->workers));
	s->addrs = calloc(cfg->listen.n + 1, sizeof(*s->addrs));
	if (s->workers == NULL || s->addrs == NULL || tcp_listen(s) == -1)
		goto fail;
	memcpy(s->addrs, cfg->listen.v, cfg->listen.n * sizeof(*s->addrs));
	for (unsigned i = 0; i < s->nworkers; i++) {
		struct worker *w = &s->workers[i];

		w->srv = s;
		w->id = i;
		w->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(5, 60);
		if (worker_bind(w, &cfg->listen) == -1)
			goto fail;
	}
	return s;
fail:
	dns_server_free(s);
	return NULL;
}

int
dns_server_start(struct dns_server *s)
{
	for (unsigned i = 0; i < s->nworkers; i++) {
		int e = pthread_create(&s->workers[i].tid, NULL, worker_main, &s->workers[i]);

		if (e != 0) {
			errno = e;
			log_warn("cannot start query thread %u", i);
			return -1;
		}
		s->workers[i].started = true;
	}
	return 0;
}

void
dns_server_free(struct dns_server *s)
{
	if (s == NULL)
		return;
	for (unsigned i = 0; s->workers != NULL && i < s->nworkers; i++)
		if (s->workers[i].started) {
			atomic_store(&s->workers[i].stop, true);
			event_base_loopbreak(s->workers[i].base);
			pthread_join(s->workers[i].tid, NULL);
		}
	for (unsigned i = 0; s->workers != NULL && i < s->nworkers; i++)
		worker_close(&s->workers[i]);
	for (size_t i = 0; i < s->nlisteners; i++)
		listener_close(s->listeners[i]);
	free(s->listeners);
	free(s->workers);
	free(s->addrs);
	free(s);
}

/* ---- SIGHUP: a new listen set ------------------------------------------ */

/* The sockets of the next listen set, opened before anything is changed. */
struct rebind {
	size_t n;
	const struct addr *addrs;    /* cfg->listen.v */
	long *from;                  /* index among s->addrs, or -1: new */
	struct listener **listeners; /* n */
	int *fds;                    /* n per worker (worker-major); -1 = kept */
	bool *pktinfo;
};

static long
bound_index(const struct dns_server *s, const struct addr *a)
{
	for (size_t i = 0; i < s->nlisteners; i++)
		if (addr_equal(&s->addrs[i], a))
			return (long)i;
	return -1;
}

static bool
same_listen(const struct dns_server *s, const struct config_addrs *listen)
{
	if (listen->n != s->nlisteners)
		return false;
	for (size_t i = 0; i < listen->n; i++)
		if (!addr_equal(&s->addrs[i], &listen->v[i]))
			return false;
	return true;
}

static void
rebind_close(struct rebind *rb, unsigned nworkers)
{
	for (size_t i = 0; rb->from != NULL && i < rb->n; i++)
		if (rb->from[i] == -1 && rb->listeners != NULL)
			listener_close(rb->listeners[i]);
	for (size_t i = 0; rb->fds != NULL && i < rb->n * nworkers; i++)
		if (rb->fds[i] != -1)
			close(rb->fds[i]);
	free(rb->from);
	free(rb->listeners);
	free(rb->fds);
	free(rb->pktinfo);
}

/* Bind TCP and every thread's UDP socket for the new addresses; 0 or -1. */
static int
rebind_open(struct dns_server *s, const struct config_addrs *listen, struct rebind *rb)
{
	size_t nfd = listen->n * s->nworkers;

	memset(rb, 0, sizeof(*rb));
	rb->n = listen->n;
	rb->addrs = listen->v;
	rb->from = calloc(rb->n + 1, sizeof(*rb->from));
	rb->listeners = calloc(rb->n + 1, sizeof(*rb->listeners));
	rb->fds = calloc(nfd + 1, sizeof(*rb->fds));
	rb->pktinfo = calloc(nfd + 1, sizeof(*rb->pktinfo));
	if (rb->from == NULL || rb->listeners == NULL || rb->fds == NULL || rb->pktinfo == NULL)
		return -1;
	for (size_t k = 0; k < nfd; k++)
		rb->fds[k] = -1;
	for (size_t i = 0; i < rb->n; i++) {
		if ((rb->from[i] = bound_index(s, &listen->v[i])) != -1) {
			rb->listeners[i] = s->listeners[rb->from[i]];
			continue;
		}
		rb->listeners[i] = listener_open(s->base, &listen->v[i], tcp_accept_cb, s, "dns");
		if (rb->listeners[i] == NULL)
			return -1;
		for (unsigned w = 0; w < s->nworkers; w++) {
			size_t k = w * rb->n + i;

			if ((rb->fds[k] = udp_bind(&listen->v[i], w == 0, &rb->pktinfo[k])) == -1)
				return -1;
		}
	}
	return 0;
}

/* Stop and join every query thread; queries wait in the socket buffers. */
static void
workers_stop(struct dns_server *s)
{
	for (unsigned i = 0; i < s->nworkers; i++) {
		struct worker *w = &s->workers[i];

		if (!w->started)
			continue;
		atomic_store(&w->stop, true);
		event_base_loopbreak(w->base);
		pthread_join(w->tid, NULL);
		w->started = false;
		atomic_store(&w->stop, false);
	}
}

/* Give worker w the sockets of rb: kept ones move over, new ones come from rb. */
static int
worker_swap(struct worker *w, struct rebind *rb)
{
	struct udp_sock *socks = calloc(rb->n + 1, sizeof(*socks));
	int rc = 0;

	if (socks == NULL)
		return -1;
	for (size_t i = 0; i < rb->n; i++) {
		size_t k = w->id * rb->n + i;

		socks[i].w = w;
		if (rb->from[i] != -1) {
			socks[i].fd = w->socks[rb->from[i]].fd;
			socks[i].pktinfo = w->socks[rb->from[i]].pktinfo;
			w->socks[rb->from[i]].fd = -1;
		} else {
			socks[i].fd = rb->fds[k];
			socks[i].pktinfo = rb->pktinfo[k];
			rb->fds[k] = -1;
		}
		if (udp_watch(&socks[i]) == -1)
			rc = -1;
	}
	for (size_t i = 0; i < w->nsocks; i++) {
		if (w->socks[i].ev != NULL)
			event_free(w->socks[i].ev);
		if (w->socks[i].fd != -1)
			close(w->socks[i].fd); /* an address no longer listened on */
	}
	free(w->socks);
	w->socks = socks;
	w->nsocks = rb->n;
	return rc;
}

static void
log_listen_changes(const struct dns_server *s, const struct rebind *rb)
{
	char a[ADDR_STRLEN];

	for (size_t i = 0; i < rb->n; i++)
		if (rb->from[i] == -1)
			log_info("listen: now also on %s", addr_str(&rb->addrs[i], a, sizeof(a)));
	for (size_t i = 0; i < s->nlisteners; i++) {
		bool kept = false;

		for (size_t k = 0; k < rb->n; k++)
			kept |= rb->from[k] == (long)i;
		if (!kept)
			log_info("listen: no longer on %s", addr_str(&s->addrs[i], a, sizeof(a)));
	}
}

/* Swap in rb's sockets: threads stopped, sockets moved, threads started again. */
static int
rebind_apply(struct dns_server *s, struct rebind *rb)
{
	struct addr *addrs = calloc(rb->n + 1, sizeof(*addrs));
	int rc = 0;

	if (addrs == NULL)
		return -1;
	log_listen_changes(s, rb);
	workers_stop(s);
	for (unsigned i = 0; i < s->nworkers; i++)
		if (worker_swap(&s->workers[i], rb) == -1)
			rc = -1;
	for (size_t i = 0; i < s->nlisteners; i++) {
		bool kept = false;

		for (size_t k = 0; k < rb->n; k++)
			kept |= rb->from[k] == (long)i;
		if (!kept)
			listener_close(s->listeners[i]);
	}
	free(s->listeners);
	s->listeners = rb->listeners;
	s->nlisteners = rb->n;
	rb->listeners = NULL;
	memcpy(addrs, rb->addrs, rb->n * sizeof(*addrs));
	free(s->addrs);
	s->addrs = addrs;
	for (size_t i = 0; i < rb->n; i++)
		rb->from[i] = 0; /* nothing of rb is left to close */
	if (dns_server_start(s) == -1)
		rc = -1;
	return rc;
}

int
dns_server_reconfigure(struct dns_server *s, const struct config_broker *cfg)
{
	struct rebind rb;
	int rc;

	s->cfg = cfg;
	if (same_listen(s, &cfg->listen))
		return 0;
	if (rebind_open(s, &cfg->listen, &rb) == -1) {
		log_warnx("listen: the new addresses cannot all be bound (a privileged port "
		          "needs a restart): still listening on the previous ones");
		rebind_close(&rb, s->nworkers);
		return -1;
	}
	rc = rebind_apply(s, &rb);
	rebind_close(&rb, s->nworkers);
	return rc;
}

static void
add_stats(struct dns_counters *out, const struct answer_stats *st)
{
	for (int i = 0; i < ANSWER_NRCODES; i++)
		out->rcode[i] += atomic_load_explicit(&st->rcode[i], memory_order_relaxed);
	out->udp += atomic_load_explicit(&st->udp, memory_order_relaxed);
	out->tcp += atomic_load_explicit(&st->tcp, memory_order_relaxed);
	out->dropped += atomic_load_explicit(&st->dropped, memory_order_relaxed);
	out->truncated += atomic_load_explicit(&st->truncated, memory_order_relaxed);
	out->rrl_dropped += atomic_load_explicit(&st->rrl_dropped, memory_order_relaxed);
	out->rrl_slipped += atomic_load_explicit(&st->rrl_slipped, memory_order_relaxed);
	out->xfr += atomic_load_explicit(&st->xfr, memory_order_relaxed);
}

void
dns_server_counters(const struct dns_server *s, struct dns_counters *out)
{
	memset(out, 0, sizeof(*out));
	if (s == NULL)
		return;
	for (unsigned i = 0; i < s->nworkers; i++)
		add_stats(out, &s->workers[i].stats);
	add_stats(out, &s->tcp_stats);
	out->xfr_refused = s->xfr_refused;
	out->tcp_clients = s->nclients;
}
