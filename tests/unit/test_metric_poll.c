/*
 * test_metric_poll.c - the async poll client against fake agents on
 * loopback: forged, replayed and unsigned replies are ignored, timeouts,
 * refusals, key mismatches (signed or not, forged or real), retransmission,
 * lbcd, cancellation, a full table, and a burst of polls.
 */
#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/addr.h"
#include "common/config.h"
#include "common/log.h"
#include "metrics/lbcd.h"
#include "metrics/poll.h"
#include "metrics/proto.h"
#include "tests/unit/tap.h"

static uint8_t secret[] = "poll test secret";
static struct config_key key = {
    (char *)"k", CONFIG_HMAC_SHA256, "hmac-sha256", NULL, secret, sizeof(secret) - 1};
static const struct metric_values sample = {.rating = 61500,
    .availability = 20000,
    .workload = 41500,
    .load = 2500,
    .cpu_rating = 50,
    .sessions = 1,
    .capacity = 50,
    .interval = 10};

enum fake_mode {
	FAKE_FORGERIES,   /* forged/replayed/unsigned first, then the real reply */
	FAKE_REFUSE,      /* a signed error packet */
	FAKE_LBCD,        /* lbcd: wrong id first, then the reply */
	FAKE_ECHO,        /* unsigned native reply to every request */
	FAKE_ECHO_SIGNED, /* signed native reply to every signed request */
	FAKE_KEY_ERROR,   /* forged key errors first, then an unsigned error `code` */
	FAKE_FORGED_ONLY, /* only an unsigned key error with a wrong nonce */
	FAKE_DROP_FIRST,  /* ignore the first `drop` requests, then echo unsigned */
	FAKE_HOLD,        /* keep requests; at the third, answer all three */
};

#define FAKE_HELD 3

struct fake {
	int fd, forger_fd;
	struct addr addr, forger_addr;
	struct event *ev;
	enum fake_mode mode;
	unsigned requests;
	uint16_t code;   /* FAKE_REFUSE, FAKE_KEY_ERROR: the error code */
	unsigned drop;   /* FAKE_DROP_FIRST */
	bool same_bytes; /* every request so far had the first one's bytes */
	uint8_t first[METRIC_PACKET_MAX];
	size_t first_len;
	struct metric_header held[FAKE_HELD];
	struct addr held_from[FAKE_HELD];
};

struct outcome {
	int calls;
	struct metric_poll_result res;
	struct lbcd_reply lbcd;
};

static struct event_base *base;

static void
send_pkt(int fd, const uint8_t *buf, size_t len, const struct addr *to)
{
	if (sendto(fd, buf, len, 0, addr_sa(to), to->len) != (ssize_t)len)
		tap_diag("sendto: %s", strerror(errno));
}

/*
 * Unsigned errors: a wrong nonce, to a signed poll a non-key code, then
 * (unless forged_only) the real `code`.
 */
static void
fake_key_error(struct fake *f, const uint8_t *buf, size_t len, const struct addr *from)
{
	uint8_t out[METRIC_PACKET_MAX];
	struct metric_header h, forged;

	(void)metric_request_parse(buf, len, NULL, &h); /* header only: no key here */
	forged = h;
	forged.nonce[3] ^= 0x10;
	send_pkt(f->fd, out,
	    metric_error_build(out, sizeof(out), &forged, METRIC_CODE_BADSIG, NULL), from);
	if (f->mode == FAKE_FORGED_ONLY)
		return;
	/* To a signed poll an unsigned error that is no key complaint is a forgery. */
	if ((h.flags & METRIC_H_SIGNED) != 0)
		send_pkt(f->fd, out,
		    metric_error_build(out, sizeof(out), &h, METRIC_CODE_MALFORMED, NULL), from);
	send_pkt(f->fd, out, metric_error_build(out, sizeof(out), &h, f->code, NULL), from);
}

/* Retransmission checks: every copy must be the same datagram. */
static void
fake_retransmit(struct fake *f, const uint8_t *buf, size_t len, const struct addr *from)
{
	uint8_t out[METRIC_PACKET_MAX];
	struct metric_header h;

	if (f->requests == 1) {
		memcpy(f->first, buf, len);
		f->first_len = len;
		f->same_bytes = true;
	} else if (len != f->first_len || memcmp(buf, f->first, len) != 0) {
		f->same_bytes = false;
	}
	if (metric_request_parse(buf, len, NULL, &h) != METRIC_OK)
		return;
	if (f->mode == FAKE_DROP_FIRST) {
		if (f->requests > f->drop)
			send_pkt(f->fd, out,
			    metric_reply_build(out, sizeof(out), &h, &sample, NULL), from);
		return;
	}
	if (f->requests > FAKE_HELD)
		return;
	f->held[f->requests - 1] = h;
	f->held_from[f->requests - 1] = *from;
	if (f->requests == FAKE_HELD)
		for (int i = 0; i < FAKE_HELD; i++)
			send_pkt(f->fd, out,
			    metric_reply_build(out, sizeof(out), &f->held[i], &sample, NULL),
			    &f->held_from[i]);
}

static void
fake_native(struct fake *f, const uint8_t *buf, size_t len, const struct addr *from)
{
	uint8_t out[METRIC_PACKET_MAX];
	struct metric_header h, replay;
	size_t n;

	if (f->mode == FAKE_KEY_ERROR || f->mode == FAKE_FORGED_ONLY) {
		fake_key_error(f, buf, len, from);
		return;
	}
	if (f->mode == FAKE_DROP_FIRST || f->mode == FAKE_HOLD) {
		fake_retransmit(f, buf, len, from);
		return;
	}
	if (f->mode == FAKE_ECHO || f->mode == FAKE_ECHO_SIGNED) {
		const struct config_key *k = f->mode == FAKE_ECHO_SIGNED ? &key : NULL;

		if (metric_request_parse(buf, len, k, &h) == METRIC_OK)
			send_pkt(
			    f->fd, out, metric_reply_build(out, sizeof(out), &h, &sample, k), from);
		return;
	}
	if (metric_request_parse(buf, len, &key, &h) != METRIC_OK) {
		tap_diag("fake agent: request does not verify");
		return;
	}
	if (f->mode == FAKE_REFUSE) {
		send_pkt(f->fd, out,
		    metric_error_build(out, sizeof(out), &h, (enum metric_code)f->code, &key),
		    from);
		return;
	}
	/* 1: perfect reply, but from another address. */
	n = metric_reply_build(out, sizeof(out), &h, &sample, &key);
	send_pkt(f->forger_fd, out, n, from);
	/* 2: right address, stale nonce (a replay). */
	replay = h;
	replay.nonce[0] ^= 0xff;
	send_pkt(f->fd, out, metric_reply_build(out, sizeof(out), &replay, &sample, &key), from);
	/* 3: right address and nonce, but unsigned ("I am idle"). */
	send_pkt(f->fd, out, metric_reply_build(out, sizeof(out), &h, &sample, NULL), from);
	/* 4: the real one. */
	send_pkt(f->fd, out, metric_reply_build(out, sizeof(out), &h, &sample, &key), from);
}

static void
fake_lbcd(struct fake *f, const uint8_t *buf, size_t len, const struct addr *from)
{
	uint8_t out[LBCD_PACKET_MAX];
	struct lbcd_request req;
	struct lbcd_reply r;

	if (lbcd_request_parse(buf, len, &req) != LBCD_OK) {
		tap_diag("fake lbcd: bad request");
		return;
	}
	memset(&r, 0, sizeof(r));
	r.current_time = 1700000000;
	r.l1 = 150;
	r.weights[0] = (struct lbcd_weight){1000, 200};
	req.hdr.id ^= 1;
	send_pkt(f->fd, out, lbcd_reply_build(out, sizeof(out), &req, &r), from);
	req.hdr.id ^= 1;
	send_pkt(f->fd, out, lbcd_reply_build(out, sizeof(out), &req, &r), from);
}

static void
fake_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fake *f = arg;
	uint8_t buf[2048];

	(void)what;
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		struct addr from;
		ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&ss, &sl);

		if (n < 0)
			return;
		addr_from_sockaddr((struct sockaddr *)&ss, sl, &from);
		f->requests++;
		if (f->mode == FAKE_LBCD)
			fake_lbcd(f, buf, (size_t)n, &from);
		else
			fake_native(f, buf, (size_t)n, &from);
	}
}

static int
fake_open(struct fake *f, enum fake_mode mode, bool listen)
{
	struct addr a;

	memset(f, 0, sizeof(*f));
	f->mode = mode;
	addr_parse("127.0.0.1", 0, &a);
	f->fd = sock_bind(&a, SOCK_DGRAM, 0);
	addr_parse("127.0.0.2", 0, &a);
	f->forger_fd = sock_bind(&a, SOCK_DGRAM, 0);
	if (f->fd == -1 || f->forger_fd == -1)
		return -1;
	sock_set_rcvbuf(f->fd, 4 << 20);
	sock_local_addr(f->fd, &f->addr);
	sock_local_addr(f->forger_fd, &f->forger_addr);
	f->ev = event_new(base, f->fd, EV_READ | EV_PERSIST, fake_read_cb, f);
	return listen ? event_add(f->ev, NULL) : 0;
}

static void
fake_close(struct fake *f)
{
	event_free(f->ev);
	close(f->fd);
	close(f->forger_fd);
}

static void
record_cb(const struct metric_poll_result *res, void *arg)
{
	struct outcome *o = arg;

	o->calls++;
	o->res = *res;
	if (res->lbcd != NULL)
		o->lbcd = *res->lbcd;
	o->res.lbcd = NULL;
	event_base_loopbreak(base);
}

/* Run the loop until `o` is called back, at most about `ms`. */
static void
run_until(struct outcome *o, unsigned ms)
{
	for (unsigned waited = 0; o->calls == 0 && waited < ms; waited += 20) {
		struct timeval tv = {0, 20000};

		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
}

static void
test_forgeries_ignored(struct metric_poller *p)
{
	struct fake f;
	struct outcome o = {0};
	struct metric_poll_target t;
	struct metric_poller_stats st;

	ok(fake_open(&f, FAKE_FORGERIES, true) == 0,
	    "fake agent on 127.0.0.1, forger on 127.0.0.2");
	t = (struct metric_poll_target){f.addr, METRIC_POLL_NATIVE, &key, 2000, 0};
	ok(metric_poll_start(p, &t, record_cb, &o, NULL) == 0, "signed poll sent");
	is_int(o.calls, 0, "callback never runs inside metric_poll_start");
	run_until(&o, 3000);
	is_int(o.calls, 1, "exactly one callback");
	is_int(o.res.status, METRIC_POLL_OK, "the real reply completes the poll");
	is_int(o.res.discarded, 2, "replayed and unsigned replies discarded on the way");
	ok(memcmp(&o.res.values, &sample, sizeof(sample)) == 0, "values delivered intact");
	ok(addr_equal(o.res.agent, &f.addr), "result names the agent");
	metric_poller_stats(p, &st);
	ok(st.unmatched >= 1, "the reply from 127.0.0.2 matched no poll (%llu)",
	    (unsigned long long)st.unmatched);
	is_int(st.outstanding, 0, "no poll outstanding");
	fake_close(&f);
}

static void
test_timeout_and_cancel(struct metric_poller *p)
{
	struct fake f;
	struct outcome o = {0}, c = {0};
	struct metric_poll_target t;
	uint32_t handle;
	struct timespec t0, t1;
	long ms;

	ok(fake_open(&f, FAKE_FORGERIES, false) == 0, "silent agent");
	t = (struct metric_poll_target){f.addr, METRIC_POLL_NATIVE, NULL, 150, 0};
	ok(metric_poll_start(p, &t, record_cb, &c, &handle) == 0, "poll to cancel");
	ok(metric_poll_cancel(p, handle), "cancelled");
	ok(!metric_poll_cancel(p, handle), "second cancel is a no-op");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ok(metric_poll_start(p, &t, record_cb, &o, NULL) == 0, "poll to a silent agent");
	run_until(&o, 2000);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	is_int(o.res.status, METRIC_POLL_TIMEOUT, "timed out");
	ok(ms >= 140 && ms < 1000, "after about 150 ms (%ld)", ms);
	is_int(c.calls, 0, "the cancelled poll never called back");
	fake_close(&f);
}

static void
test_refused_and_lbcd(struct metric_poller *p)
{
	struct fake f;
	struct outcome o = {0};
	struct metric_poll_target t;
	struct metric_poller_stats before, after;

	ok(fake_open(&f, FAKE_REFUSE, true) == 0, "refusing agent");
	f.code = METRIC_CODE_MALFORMED;
	t = (struct metric_poll_target){f.addr, METRIC_POLL_NATIVE, &key, 2000, 0};
	metric_poll_start(p, &t, record_cb, &o, NULL);
	run_until(&o, 3000);
	is_int(o.res.status, METRIC_POLL_REFUSED, "signed error packet: refused");
	is_int(o.res.code, METRIC_CODE_MALFORMED, "with its code");
	memset(&o, 0, sizeof(o));
	f.code = METRIC_CODE_NO_KEY;
	metric_poll_start(p, &t, record_cb, &o, NULL);
	run_until(&o, 3000);
	is_int(o.res.status, METRIC_POLL_KEY_MISMATCH, "signed NO_KEY error: key mismatch");
	is_int(o.res.code, METRIC_CODE_NO_KEY, "with its code");
	fake_close(&f);

	memset(&o, 0, sizeof(o));
	ok(fake_open(&f, FAKE_LBCD, true) == 0, "fake lbcd");
	metric_poller_stats(p, &before);
	t = (struct metric_poll_target){f.addr, METRIC_POLL_LBCD, NULL, 2000, 0};
	metric_poll_start(p, &t, record_cb, &o, NULL);
	run_until(&o, 3000);
	metric_poller_stats(p, &after);
	is_int(o.res.status, METRIC_POLL_OK, "lbcd poll answered");
	is_int((long long)(after.unmatched - before.unmatched), 1,
	    "the reply with the wrong id matched no poll");
	is_int(o.res.values.rating, 50000, "weight 1000 mapped to rating 50");
	ok((o.res.values.flags & METRIC_F_LBCD) != 0, "flagged as lbcd");
	is_int(o.res.values.load, 1500, "l1 1.50 as load 1.5%%");
	is_int(o.lbcd.weights[0].incr, 200, "raw lbcd reply available");
	fake_close(&f);
}

/* One poll against a fake agent in `mode`; returns its outcome. */
static struct outcome
poll_once(struct metric_poller *p, struct fake *f, const struct config_key *k, unsigned timeout_ms,
    unsigned retries)
{
	struct metric_poll_target t = {f->addr, METRIC_POLL_NATIVE, k, timeout_ms, retries};
	struct outcome o = {0};

	if (metric_poll_start(p, &t, record_cb, &o, NULL) == -1)
		tap_diag("metric_poll_start: %s", strerror(errno));
	run_until(&o, timeout_ms + 2000);
	return o;
}

static void
key_case(struct metric_poller *p, const struct config_key *k, uint16_t code, const char *what)
{
	struct metric_poller_stats before, after;
	struct fake f;
	struct outcome o;

	ok(fake_open(&f, FAKE_KEY_ERROR, true) == 0, "%s: agent", what);
	f.code = code;
	metric_poller_stats(p, &before);
	o = poll_once(p, &f, k, 2000, 0);
	metric_poller_stats(p, &after);
	is_int(o.calls, 1, "%s: one callback", what);
	is_int(o.res.status, METRIC_POLL_KEY_MISMATCH, "%s: key mismatch, not OK", what);
	is_int(o.res.code, code, "%s: code %u (%s)", what, code, metric_code_str(code));
	is_int(o.res.discarded, k != NULL ? 2 : 1,
	    "%s: wrong nonce (and to a signed poll, an unsigned non-key code) discarded", what);
	is_int((long long)(after.key_mismatches - before.key_mismatches), 1,
	    "%s: counted as a key mismatch", what);
	fake_close(&f);
}

static void
test_key_mismatch(struct metric_poller *p)
{
	key_case(p, &key, METRIC_CODE_BADSIG, "keyed poll, unsigned BADSIG");
	key_case(p, &key, METRIC_CODE_NO_KEY, "keyed poll, unsigned NO_KEY");
	key_case(p, NULL, METRIC_CODE_SIG_REQUIRED, "unkeyed poll, SIG_REQUIRED");
	key_case(p, NULL, METRIC_CODE_NO_KEY, "unkeyed poll, NO_KEY");
	ok(strcmp(metric_poll_status_str(METRIC_POLL_KEY_MISMATCH), "key mismatch") == 0,
	    "status string: key mismatch");
}

/* A forged unsigned "bad signature" neither completes nor fails a keyed poll. */
static void
test_forged_key_error(struct metric_poller *p)
{
	struct fake f;
	struct outcome o;

	ok(fake_open(&f, FAKE_FORGED_ONLY, true) == 0, "agent sending a forged key error");
	o = poll_once(p, &f, &key, 300, 0);
	is_int(o.res.status, METRIC_POLL_TIMEOUT, "wrong nonce: the poll times out");
	is_int(o.res.discarded, 1, "the forgery was discarded");
	is_int(o.res.last_discard, METRIC_E_NONCE, "for its nonce");
	fake_close(&f);
}

static void
test_retransmit_until_answered(struct metric_poller *p)
{
	struct metric_poller_stats before, after;
	struct fake f;
	struct outcome o;

	ok(fake_open(&f, FAKE_DROP_FIRST, true) == 0, "agent losing the first request");
	f.drop = 1;
	metric_poller_stats(p, &before);
	o = poll_once(p, &f, NULL, 600, 2);
	metric_poller_stats(p, &after);
	is_int(o.res.status, METRIC_POLL_OK, "the retransmission is answered");
	is_int(f.requests, 2, "two requests reached the agent");
	ok(f.same_bytes, "the retransmission is the same datagram (seq, nonce, bytes)");
	is_int(o.res.sends, 2, "result counts 2 sends");
	is_int((long long)(after.retransmits - before.retransmits), 1, "one retransmit counted");
	is_int((long long)(after.sent - before.sent), 1, "one poll sent");
	ok(o.res.rtt_us >= 190000 && o.res.rtt_us < 600000,
	    "answered after the second send at T/3 (%u us)", o.res.rtt_us);
	fake_close(&f);
}

static void
test_retransmit_then_timeout(struct metric_poller *p)
{
	struct metric_poller_stats before, after;
	struct timespec t0, t1;
	struct fake f;
	struct outcome o;
	long ms;

	ok(fake_open(&f, FAKE_DROP_FIRST, true) == 0, "agent losing everything");
	f.drop = 100;
	metric_poller_stats(p, &before);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	o = poll_once(p, &f, &key, 300, 2);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	metric_poller_stats(p, &after);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	is_int(o.res.status, METRIC_POLL_TIMEOUT, "no answer: timeout");
	ok(ms >= 290 && ms < 900, "still after the timeout, not later (%ld ms)", ms);
	is_int(f.requests, 3, "sent at 0, T/3, 2T/3");
	ok(f.same_bytes, "all three copies identical (signed)");
	is_int((long long)(after.retransmits - before.retransmits), 2, "two retransmits counted");
	is_int(o.res.sends, 3, "result counts 3 sends");
	fake_close(&f);
}

static void
test_retransmit_answered_once(struct metric_poller *p)
{
	struct metric_poller_stats before, after;
	struct fake f;
	struct outcome o;

	ok(fake_open(&f, FAKE_HOLD, true) == 0, "agent answering all copies late");
	metric_poller_stats(p, &before);
	o = poll_once(p, &f, NULL, 600, 2);
	for (int i = 0; i < 5; i++) {
		struct timeval tv = {0, 20000};

		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
	metric_poller_stats(p, &after);
	is_int(o.calls, 1, "three replies, one callback");
	is_int(o.res.status, METRIC_POLL_OK, "answered");
	is_int((long long)(after.unmatched - before.unmatched), 2,
	    "the two later replies match no poll");
	is_int((long long)(after.retransmits - before.retransmits), 2, "two retransmits");
	fake_close(&f);
}

#define BURST 5000
static struct outcome burst[BURST];

/* BURST polls outstanding at once against one echo agent, all answered. */
static void
burst_run(const struct config_key *k, const char *what)
{
	struct metric_poller *big = metric_poller_new(base, BURST, NULL, NULL);
	struct metric_poll_target t;
	struct fake f;
	struct timespec t0, t1;
	unsigned answered = 0;
	int started = 0;
	long us;

	memset(burst, 0, sizeof(burst));
	ok(big != NULL && fake_open(&f, k != NULL ? FAKE_ECHO_SIGNED : FAKE_ECHO, true) == 0,
	    "%s: poller and echo agent", what);
	t = (struct metric_poll_target){f.addr, METRIC_POLL_NATIVE, k, 5000, 0};
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < BURST; i++)
		started += metric_poll_start(big, &t, record_cb, &burst[i], NULL) == 0;
	is_int(started, BURST, "%s: %d polls outstanding at once", what, BURST);
	for (int rounds = 0; rounds < 10000 && answered < BURST; rounds++) {
		event_base_loop(base, EVLOOP_ONCE);
		answered = 0;
		for (int i = 0; i < BURST; i++)
			answered += burst[i].calls == 1 && burst[i].res.status == METRIC_POLL_OK;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	us = (t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000;
	is_int(answered, BURST, "%s: all answered", what);
	tap_diag("%s: %d polls sent, answered and matched in %ld ms (%ld us per poll, "
	         "agent included)",
	    what, BURST, us / 1000, us / BURST);
	metric_poller_free(big);
	fake_close(&f);
}

static void
test_full_table_and_burst(void)
{
	struct metric_poller *small = metric_poller_new(base, 2, NULL, NULL);
	struct metric_poll_target t;
	struct outcome o1 = {0}, o2 = {0}, o3 = {0};
	struct fake f;

	ok(small != NULL && fake_open(&f, FAKE_ECHO, true) == 0, "small poller, echo agent");
	t = (struct metric_poll_target){f.addr, METRIC_POLL_NATIVE, NULL, 500, 0};
	ok(metric_poll_start(small, &t, record_cb, &o1, NULL) == 0 &&
	        metric_poll_start(small, &t, record_cb, &o2, NULL) == 0,
	    "two polls fit");
	ok(metric_poll_start(small, &t, record_cb, &o3, NULL) == -1 && errno == EBUSY,
	    "the third finds the table full (EBUSY)");
	metric_poller_free(small); /* pending polls dropped without callbacks */
	fake_close(&f);
	burst_run(NULL, "unsigned");
	burst_run(&key, "signed");
}

static void
test_bad_targets(struct metric_poller *p)
{
	struct metric_poll_target t;
	struct outcome o = {0};

	memset(&t, 0, sizeof(t));
	t.timeout_ms = 100;
	ok(metric_poll_start(p, &t, record_cb, &o, NULL) == -1 && errno == EINVAL,
	    "no address: EINVAL");
	addr_parse("127.0.0.1", 0, &t.agent);
	ok(metric_poll_start(p, &t, record_cb, &o, NULL) == -1 && errno == EINVAL,
	    "port 0: EINVAL");
	addr_set_port(&t.agent, 9);
	t.timeout_ms = 0;
	ok(metric_poll_start(p, &t, record_cb, &o, NULL) == -1 && errno == EINVAL,
	    "timeout 0: EINVAL");
	t.timeout_ms = 1000;
	t.retries = METRIC_POLL_RETRIES_MAX + 1;
	ok(metric_poll_start(p, &t, record_cb, &o, NULL) == -1 && errno == EINVAL,
	    "more than %d retries: EINVAL", METRIC_POLL_RETRIES_MAX);
	t.retries = 2;
	t.timeout_ms = 2;
	ok(metric_poll_start(p, &t, record_cb, &o, NULL) == -1 && errno == EINVAL,
	    "less than 1 ms between sends: EINVAL");
	ok(metric_poller_new(base, 0, NULL, NULL) == NULL, "0 slots refused");
	ok(metric_poller_new(base, METRIC_POLLER_MAX + 1, NULL, NULL) == NULL,
	    "more than 65536 slots refused");
}

int
main(void)
{
	struct metric_poller *p;

	log_init("test_metric_poll", LOG_LEVEL_ERR, false);
	base = event_base_new();
	p = metric_poller_new(base, 64, NULL, NULL);
	ok(p != NULL, "poller created");
	test_forgeries_ignored(p);
	test_timeout_and_cancel(p);
	test_refused_and_lbcd(p);
	test_key_mismatch(p);
	test_forged_key_error(p);
	test_retransmit_until_answered(p);
	test_retransmit_then_timeout(p);
	test_retransmit_answered_once(p);
	test_bad_targets(p);
	test_full_table_and_burst();
	metric_poller_free(p);
	metric_poller_free(NULL);
	event_base_free(base);
	return tap_done();
}
