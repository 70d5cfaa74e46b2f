/* poll.c - asynchronous metric polls over shared UDP sockets (see poll.h). */
#include "metrics/poll.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/log.h"
#include "common/bytes.h"
#include "common/random.h"

#define SLOT_BITS  16
#define SLOT_MASK  ((1U << SLOT_BITS) - 1)
#define RECV_BATCH 32
#define RAND_POOL  1024

struct poll_slot {
	struct metric_poller *owner;
	struct event *timer; /* preallocated, reused */
	bool busy;
	uint16_t gen; /* bumped on every use: stale handles miss */
	uint32_t seq; /* native sequence (= handle) */
	uint16_t lbcd_id;
	struct metric_poll_target target;
	uint8_t nonce[METRIC_NONCE_LEN];
	uint8_t req[METRIC_REQUEST_LEN + METRIC_TAG_LEN]; /* kept for retransmission */
	size_t req_len;
	unsigned sends;       /* copies of req sent so far */
	struct timespec sent; /* the first send */
	metric_poll_cb cb;
	void *arg;
	unsigned discarded;
	enum metric_err last_discard;
	uint32_t next_free; /* index + 1 of the next free slot, 0 = none */
};

struct metric_poller {
	struct event_base *base;
	int fd[2]; /* IPv4, IPv6; -1 when absent */
	struct event *ev[2];
	struct poll_slot *slots;
	unsigned nslots;
	uint32_t free_head;      /* index + 1, 0 = table full */
	uint32_t *lbcd_index;    /* lbcd id -> slot index + 1 */
	uint8_t pool[RAND_POOL]; /* random bytes for nonces and ids */
	size_t pool_used;
	struct metric_poller_stats stats;
	struct log_ratelimit rl;
	uint8_t rbuf[RECV_BATCH][LBCD_PACKET_MAX + METRIC_PACKET_MAX];
};

static void complete(struct poll_slot *s, struct metric_poll_result *res);
static int family_index(const struct addr *a);

/* Random bytes from a pool refilled from the kernel's CSPRNG (one syscall per pool). */
static int
take_random(struct metric_poller *p, void *out, size_t n)
{
	if (p->pool_used + n > sizeof(p->pool)) {
		if (random_bytes(p->pool, sizeof(p->pool)) == -1)
			return -1;
		p->pool_used = 0;
	}
	memcpy(out, p->pool + p->pool_used, n);
	p->pool_used += n;
	return 0;
}

static unsigned
elapsed_us(const struct timespec *since)
{
	struct timespec now;
	long long us;

	clock_gettime(CLOCK_MONOTONIC, &now);
	us = (long long)(now.tv_sec - since->tv_sec) * 1000000 +
	    (now.tv_nsec - since->tv_nsec) / 1000;
	return us < 0 ? 0 : (unsigned)us;
}

static struct poll_slot *
slot_take(struct metric_poller *p)
{
	struct poll_slot *s;

	if (p->free_head == 0)
		return NULL;
	s = &p->slots[p->free_head - 1];
	p->free_head = s->next_free;
	s->busy = true;
	s->gen++;
	s->seq = (uint32_t)s->gen << SLOT_BITS | (uint32_t)(s - p->slots);
	s->discarded = 0;
	s->last_discard = METRIC_OK;
	p->stats.outstanding++;
	return s;
}

static void
slot_release(struct metric_poller *p, struct poll_slot *s)
{
	event_del(s->timer);
	if (s->target.proto == METRIC_POLL_LBCD &&
	    p->lbcd_index[s->lbcd_id] == (uint32_t)(s - p->slots) + 1)
		p->lbcd_index[s->lbcd_id] = 0;
	s->busy = false;
	s->next_free = p->free_head;
	p->free_head = (uint32_t)(s - p->slots) + 1;
	p->stats.outstanding--;
}

/*
 * Arm the slot's timer for the end of the current send's share of the
 * timeout: send k (1-based) of n = retries + 1 covers [(k-1)T/n, kT/n), so
 * the last share ends exactly at T whatever the rounding.
 */
static void
arm_timer(struct poll_slot *s)
{
	uint64_t t = s->target.timeout_ms, n = (uint64_t)s->target.retries + 1, k = s->sends;
	unsigned ms = (unsigned)(k * t / n - (k - 1) * t / n);
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

	event_add(s->timer, &tv);
}

static int
send_request(struct metric_poller *p, struct poll_slot *s)
{
	int fi = family_index(&s->target.agent);

	s->sends++;
	if (sendto(p->fd[fi], s->req, s->req_len, 0, addr_sa(&s->target.agent),
	        s->target.agent.len) == -1) {
		p->stats.send_errors++;
		return -1;
	}
	return 0;
}

/* Same sequence, nonce and bytes: a reply to any copy completes the poll. */
static void
retransmit(struct poll_slot *s)
{
	struct metric_poller *p = s->owner;
	char where[ADDR_STRLEN];

	p->stats.retransmits++;
	if (send_request(p, s) == -1)
		log_warnx_rl(&p->rl, "poll: retransmit to %s: %s",
		    addr_str(&s->target.agent, where, sizeof(where)), strerror(errno));
	arm_timer(s);
}

/* The slot's one timer: retransmit while copies are left, then time out. */
static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct poll_slot *s = arg;
	struct metric_poll_result res;

	(void)fd;
	(void)what;
	if (s->sends <= s->target.retries) {
		retransmit(s);
		return;
	}
	memset(&res, 0, sizeof(res));
	res.status = METRIC_POLL_TIMEOUT;
	s->owner->stats.timeouts++;
	complete(s, &res);
}

/* Finish a poll: release the slot first, so the callback may reuse it. */
static void
complete(struct poll_slot *s, struct metric_poll_result *res)
{
	struct metric_poller *p = s->owner;
	struct addr agent = s->target.agent;
	metric_poll_cb cb = s->cb;
	void *arg = s->arg;

	res->agent = &agent;
	res->proto = s->target.proto;
	res->discarded = s->discarded;
	res->sends = s->sends;
	res->last_discard = s->last_discard;
	if (res->status != METRIC_POLL_TIMEOUT)
		res->rtt_us = elapsed_us(&s->sent);
	slot_release(p, s);
	cb(res, arg);
}

/* Pick an lbcd id no pending poll uses; bounded, the table is sparse. */
static int
lbcd_assign_id(struct metric_poller *p, struct poll_slot *s)
{
	for (int tries = 0; tries < 64; tries++) {
		uint16_t id;

		if (take_random(p, &id, sizeof(id)) == -1)
			return -1;
		if (p->lbcd_index[id] == 0) {
			s->lbcd_id = id;
			p->lbcd_index[id] = (uint32_t)(s - p->slots) + 1;
			return 0;
		}
	}
	return -1;
}

/* Encode the request of slot s into buf; returns its length or 0. */
static size_t
encode_request(struct metric_poller *p, struct poll_slot *s, uint8_t *buf, size_t len)
{
	if (s->target.proto == METRIC_POLL_LBCD) {
		if (lbcd_assign_id(p, s) == -1)
			return 0;
		return lbcd_request_build(buf, len, s->lbcd_id, NULL, 0);
	}
	if (take_random(p, s->nonce, sizeof(s->nonce)) == -1)
		return 0;
	return metric_request_build(buf, len, s->seq, s->nonce, s->target.key);
}

static int
family_index(const struct addr *a)
{
	switch (addr_family(a)) {
	case AF_INET: return 0;
	case AF_INET6: return 1;
	default: return -1;
	}
}

static bool
is_valid_target(const struct metric_poll_target *t)
{
	return family_index(&t->agent) != -1 && t->timeout_ms != 0 && t->timeout_ms <= 600000 &&
	    addr_port(&t->agent) != 0 && t->retries <= METRIC_POLL_RETRIES_MAX &&
	    t->timeout_ms >= t->retries + 1;
}

int
metric_poll_start(struct metric_poller *p, const struct metric_poll_target *t, metric_poll_cb cb,
    void *arg, uint32_t *handle)
{
	int fi = family_index(&t->agent);
	struct poll_slot *s;

	if (cb == NULL || !is_valid_target(t)) {
		errno = EINVAL;
		return -1;
	}
	if (p->fd[fi] == -1) {
		errno = EAFNOSUPPORT;
		return -1;
	}
	if ((s = slot_take(p)) == NULL) {
		errno = EBUSY;
		return -1;
	}
	s->target = *t;
	s->cb = cb;
	s->arg = arg;
	s->sends = 0;
	s->req_len = encode_request(p, s, s->req, sizeof(s->req));
	if (s->req_len == 0) {
		slot_release(p, s);
		errno = EIO;
		return -1;
	}
	clock_gettime(CLOCK_MONOTONIC, &s->sent);
	if (send_request(p, s) == -1) {
		int saved = errno;

		slot_release(p, s);
		errno = saved;
		return -1;
	}
	arm_timer(s);
	p->stats.sent++;
	if (handle != NULL)
		*handle = s->seq;
	return 0;
}

bool
metric_poll_cancel(struct metric_poller *p, uint32_t handle)
{
	uint32_t idx = handle & SLOT_MASK;
	struct poll_slot *s;

	if (idx >= p->nslots)
		return false;
	s = &p->slots[idx];
	if (!s->busy || s->seq != handle)
		return false;
	slot_release(p, s);
	return true;
}

/* The slot a native reply is for, or NULL: sequence and address must match. */
static struct poll_slot *
find_native(struct metric_poller *p, const uint8_t *buf, size_t len, const struct addr *from)
{
	uint32_t seq, idx;
	struct poll_slot *s;

	if (!metric_packet_seq(buf, len, &seq))
		return NULL;
	idx = seq & SLOT_MASK;
	if (idx >= p->nslots)
		return NULL;
	s = &p->slots[idx];
	if (!s->busy || s->seq != seq || s->target.proto != METRIC_POLL_NATIVE ||
	    !addr_equal(&s->target.agent, from))
		return NULL;
	return s;
}

static struct poll_slot *
find_lbcd(struct metric_poller *p, const uint8_t *buf, size_t len, const struct addr *from)
{
	uint32_t idx;
	struct poll_slot *s;

	if (len < LBCD_HEADER_LEN)
		return NULL;
	idx = p->lbcd_index[wire_get16(buf + 2)];
	if (idx == 0)
		return NULL;
	s = &p->slots[idx - 1];
	if (!s->busy || s->target.proto != METRIC_POLL_LBCD || !addr_equal(&s->target.agent, from))
		return NULL;
	return s;
}

static void
discard(struct poll_slot *s, enum metric_err why)
{
	s->discarded++;
	s->last_discard = why;
	s->owner->stats.discarded++;
}

static void
handle_native(struct poll_slot *s, const uint8_t *buf, size_t len)
{
	struct metric_poll_result res;
	struct metric_reply rep;
	enum metric_err e;

	e = metric_reply_parse(buf, len, s->target.key, s->seq, s->nonce, &rep);
	if (e != METRIC_OK && e != METRIC_E_REMOTE) {
		discard(s, e);
		return;
	}
	memset(&res, 0, sizeof(res));
	if (e == METRIC_OK) {
		res.status = METRIC_POLL_OK;
		res.values = rep.v;
		s->owner->stats.answered++;
	} else if (metric_code_is_key(rep.code)) {
		res.status = METRIC_POLL_KEY_MISMATCH;
		res.code = rep.code;
		s->owner->stats.key_mismatches++;
	} else {
		res.status = METRIC_POLL_REFUSED;
		res.code = rep.code;
		s->owner->stats.refused++;
	}
	complete(s, &res);
}

/* Fill values from an lbcd reply: the documented mapping (lbcd.h). */
static void
lbcd_to_values(const struct lbcd_reply *r, struct metric_values *v)
{
	uint32_t w = r->weights[0].weight;

	memset(v, 0, sizeof(*v));
	v->rating = lbcd_weight_to_rating(w);
	v->load = (uint32_t)r->l1 * 10; /* l1 x 100 -> thousandths */
	if (v->load > 100000)
		v->load = 100000;
	v->flags = METRIC_F_LBCD | (w == LBCD_WEIGHT_DOWN ? METRIC_F_DRAINING : 0);
	v->computed_ms = (uint64_t)r->current_time * 1000;
}

static void
handle_lbcd(struct poll_slot *s, const uint8_t *buf, size_t len)
{
	struct metric_poll_result res;
	struct lbcd_reply rep;
	enum lbcd_err e;

	e = lbcd_reply_parse(buf, len, s->lbcd_id, 0, &rep);
	if (e != LBCD_OK && e != LBCD_E_STATUS) {
		discard(s, METRIC_E_LENGTH);
		return;
	}
	memset(&res, 0, sizeof(res));
	if (e == LBCD_OK) {
		res.status = METRIC_POLL_OK;
		lbcd_to_values(&rep, &res.values);
		res.lbcd = &rep;
		s->owner->stats.answered++;
	} else {
		res.status = METRIC_POLL_REFUSED;
		res.code = rep.hdr.status;
		s->owner->stats.refused++;
	}
	complete(s, &res);
}

static void
handle_packet(struct metric_poller *p, const uint8_t *buf, size_t len, const struct sockaddr *sa,
    socklen_t salen)
{
	struct addr from;
	struct poll_slot *s;

	if (addr_from_sockaddr(sa, salen, &from) == -1) {
		p->stats.unmatched++;
		return;
	}
	if ((s = find_native(p, buf, len, &from)) != NULL) {
		handle_native(s, buf, len);
		return;
	}
	if ((s = find_lbcd(p, buf, len, &from)) != NULL) {
		handle_lbcd(s, buf, len);
		return;
	}
	p->stats.unmatched++;
}

/* Drain the socket in batches; bounded so one busy socket cannot starve the loop. */
static void
read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct metric_poller *p = arg;
	struct mmsghdr msgs[RECV_BATCH];
	struct iovec iov[RECV_BATCH];
	struct sockaddr_storage from[RECV_BATCH];

	(void)what;
	for (int round = 0; round < 8; round++) {
		int n;

		for (int i = 0; i < RECV_BATCH; i++) {
			iov[i].iov_base = p->rbuf[i];
			iov[i].iov_len = sizeof(p->rbuf[i]);
			memset(&msgs[i], 0, sizeof(msgs[i]));
			msgs[i].msg_hdr.msg_iov = &iov[i];
			msgs[i].msg_hdr.msg_iovlen = 1;
			msgs[i].msg_hdr.msg_name = &from[i];
			msgs[i].msg_hdr.msg_namelen = sizeof(from[i]);
		}
		n = recvmmsg(fd, msgs, RECV_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0) {
			if (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				log_warnx_rl(&p->rl, "poll: recvmmsg: %s", strerror(errno));
			return;
		}
		for (int i = 0; i < n; i++)
			handle_packet(p, p->rbuf[i], msgs[i].msg_len,
			    (const struct sockaddr *)&from[i], msgs[i].msg_hdr.msg_namelen);
		if (n < RECV_BATCH)
			return;
	}
}

/* Open the socket of one family; -1 (logged at debug) when unavailable. */
static int
open_socket(struct metric_poller *p, int fi, const struct addr *source)
{
	struct addr any;
	char where[ADDR_STRLEN];
	int fd;

	if (source == NULL || source->len == 0) {
		if (addr_parse(fi == 0 ? "0.0.0.0" : "::", 0, &any) == -1)
			return -1;
		source = &any;
	}
	fd = sock_bind(source, SOCK_DGRAM, 0);
	if (fd == -1) {
		log_debug("poll: cannot bind %s: %s", addr_str(source, where, sizeof(where)),
		    strerror(errno));
		return -1;
	}
	(void)sock_set_rcvbuf(fd, METRIC_POLLER_BUFSIZE);
	if (setsockopt(
	        fd, SOL_SOCKET, SO_SNDBUFFORCE, &(int){METRIC_POLLER_BUFSIZE}, sizeof(int)) == -1)
		(void)setsockopt(
		    fd, SOL_SOCKET, SO_SNDBUF, &(int){METRIC_POLLER_BUFSIZE}, sizeof(int));
	p->ev[fi] = event_new(p->base, fd, EV_READ | EV_PERSIST, read_cb, p);
	if (p->ev[fi] == NULL || event_add(p->ev[fi], NULL) == -1) {
		close(fd);
		return -1;
	}
	p->fd[fi] = fd;
	return 0;
}

static int
init_slots(struct metric_poller *p)
{
	for (unsigned i = 0; i < p->nslots; i++) {
		struct poll_slot *s = &p->slots[i];

		s->owner = p;
		s->timer = evtimer_new(p->base, timer_cb, s);
		if (s->timer == NULL)
			return -1;
		s->next_free = i + 2 <= p->nslots ? i + 2 : 0;
	}
	p->free_head = 1;
	return 0;
}

struct metric_poller *
metric_poller_new(struct event_base *base, unsigned max_polls, const struct addr *source4,
    const struct addr *source6)
{
	struct metric_poller *p;
	int ok4, ok6;

	if (max_polls == 0 || max_polls > METRIC_POLLER_MAX) {
		log_warnx("poll: %u outstanding polls asked; the range is 1..%u", max_polls,
		    METRIC_POLLER_MAX);
		return NULL;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL)
		goto oom;
	p->base = base;
	p->fd[0] = p->fd[1] = -1;
	p->nslots = max_polls;
	p->pool_used = sizeof(p->pool);
	p->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(5, 60);
	p->slots = calloc(max_polls, sizeof(*p->slots));
	p->lbcd_index = calloc(1U << 16, sizeof(*p->lbcd_index));
	if (p->slots == NULL || p->lbcd_index == NULL || init_slots(p) == -1)
		goto oom;
	ok4 = open_socket(p, 0, source4);
	ok6 = open_socket(p, 1, source6);
	if (ok4 == -1 && ok6 == -1) {
		log_warn("poll: cannot open a UDP socket");
		metric_poller_free(p);
		return NULL;
	}
	return p;
oom:
	log_warnx("poll: out of memory for %u poll slots", max_polls);
	metric_poller_free(p);
	return NULL;
}

void
metric_poller_free(struct metric_poller *p)
{
	if (p == NULL)
		return;
	for (int fi = 0; fi < 2; fi++) {
		if (p->ev[fi] != NULL)
			event_free(p->ev[fi]);
		if (p->fd[fi] != -1)
			close(p->fd[fi]);
	}
	if (p->slots != NULL) {
		for (unsigned i = 0; i < p->nslots; i++)
			if (p->slots[i].timer != NULL)
				event_free(p->slots[i].timer);
		free(p->slots);
	}
	free(p->lbcd_index);
	free(p);
}

void
metric_poller_stats(const struct metric_poller *p, struct metric_poller_stats *out)
{
	*out = p->stats;
}

const char *
metric_poll_status_str(enum metric_poll_status s)
{
	switch (s) {
	case METRIC_POLL_OK: return "ok";
	case METRIC_POLL_TIMEOUT: return "timeout";
	case METRIC_POLL_REFUSED: return "refused";
	case METRIC_POLL_KEY_MISMATCH: return "key mismatch";
	}
	return "unknown";
}
