/*
 * poll.h - the asynchronous metric poll client: many agents, few sockets.
 *
 * One poller serves one libevent event_base (one thread).  It owns one UDP
 * socket per address family, shared by every outstanding poll, and a slot
 * table preallocated by metric_poller_new: starting a poll allocates
 * nothing.  Each poll speaks either our protocol (proto.h, optionally signed
 * with an hmac-sha256 key) or lbcd v3 (lbcd.h) and ends in exactly one call
 * of its callback: a validated reply, an authenticated refusal, or a
 * timeout.  The brokerd poller and metricview are both built on it.
 *
 * Matching.  A datagram completes a poll only when it comes from the exact
 * address and port the poll was sent to, carries the poll's sequence number
 * (native: 32 bits; lbcd: the 16-bit id, chosen at random per poll), and
 * passes the protocol's validating function: for native polls that checks
 * the echoed 64-bit random nonce and, with a key, the HMAC tag.  Anything
 * else (forged, stale, duplicated, unsigned) is counted as discarded and
 * the poll keeps waiting until its timeout, so a forged packet can neither
 * complete nor cancel a poll.  The one unsigned answer a keyed poll takes
 * is a key-mismatch error (proto.h): it can only fail the poll.
 *
 * Loss.  A poll may retransmit its request (metric_poll_target.retries) on
 * the slot's own timer; a reply to any of the copies completes it, once.
 * Retransmissions allocate nothing.
 *
 * lbcd daemons answer from whatever address the kernel picks; run them with
 * `-b ADDR` on multi-homed hosts, as lbnamed also requires.
 *
 * Sizing.  Up to METRIC_POLLER_MAX (65536) polls may be outstanding.  The
 * sockets ask for METRIC_POLLER_BUFSIZE send and receive buffers; still, a
 * caller with thousands of members should spread its polls over the polling
 * interval (the broker jitters them) instead of sending all in one burst.
 */
#ifndef MXB_METRICS_POLL_H
#define MXB_METRICS_POLL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/addr.h"
#include "metrics/lbcd.h"
#include "metrics/proto.h"

struct config_key;
struct event_base;
struct metric_poller;

#define METRIC_POLLER_MAX       65536
#define METRIC_POLLER_BUFSIZE   (4 * 1024 * 1024)
#define METRIC_POLL_RETRIES_MAX 10

enum metric_poll_proto {
	METRIC_POLL_NATIVE, /* metricd, docs/protocol-metrics.md */
	METRIC_POLL_LBCD,   /* lbcd v3, default service only */
};

enum metric_poll_status {
	METRIC_POLL_OK,      /* values (and for lbcd, lbcd) are valid */
	METRIC_POLL_TIMEOUT, /* no acceptable reply before the deadline */
	METRIC_POLL_REFUSED, /* a valid error reply: see code */
	/*
	 * Native only: the agent answered, signed or not, with error NO_KEY,
	 * BADSIG or SIG_REQUIRED echoing our sequence and nonce (code says
	 * which).  Not a good reply: count it as a miss, report "key mismatch".
	 */
	METRIC_POLL_KEY_MISMATCH,
};

/* What to poll. */
struct metric_poll_target {
	struct addr agent; /* address and port of the agent (copied) */
	enum metric_poll_proto proto;
	/*
	 * Native only: NULL = unsigned; else an hmac-sha256 key, borrowed: it
	 * must stay valid until the callback has run or the poll is cancelled.
	 */
	const struct config_key *key;
	unsigned timeout_ms; /* 1..600000 */
	/*
	 * Retransmissions of the same request (same sequence, nonce and bytes)
	 * spread evenly inside timeout_ms: 2 sends at 0, T/3 and 2T/3.  0 = a
	 * single send.  At most METRIC_POLL_RETRIES_MAX, and timeout_ms must
	 * leave at least 1 ms between sends.
	 */
	unsigned retries;
};

/* Handed to the callback; valid only during the call. */
struct metric_poll_result {
	enum metric_poll_status status;
	const struct addr *agent; /* the target's address */
	enum metric_poll_proto proto;
	unsigned rtt_us; /* OK/REFUSED/KEY_MISMATCH: from the first send to the reply */
	/*
	 * OK: the agent's figures.  For lbcd the default weight is mapped to
	 * rating (lbcd.h); rating and flags (METRIC_F_LBCD, and
	 * METRIC_F_DRAINING for weight 0xffffffff) are set, load is l1 as a
	 * percent, computed_ms is the lbcd server's clock; the rest is 0.
	 */
	struct metric_values values;
	const struct lbcd_reply *lbcd; /* OK with lbcd: the raw reply; else NULL */
	unsigned code;                 /* REFUSED, KEY_MISMATCH: enum metric_code or lbcd status */
	unsigned discarded;            /* packets rejected while this poll waited */
	unsigned sends;                /* requests sent: 1 + retransmissions */
	enum metric_err last_discard;  /* native: why the last one was rejected */
};

/*
 * Called once per poll, from the event loop (never from inside
 * metric_poll_start).  The callback may start or cancel polls, but must not
 * free the poller (stop the loop and free it afterwards).
 */
typedef void (*metric_poll_cb)(const struct metric_poll_result *res, void *arg);

/* Counters since metric_poller_new. */
struct metric_poller_stats {
	uint64_t sent;           /* polls started (retransmissions not included) */
	uint64_t retransmits;    /* extra sends of a pending poll's request */
	uint64_t answered;       /* completed OK */
	uint64_t refused;        /* completed REFUSED */
	uint64_t key_mismatches; /* completed KEY_MISMATCH */
	uint64_t timeouts;
	uint64_t discarded; /* matched a poll but failed validation */
	uint64_t unmatched; /* no poll with that sequence and address */
	uint64_t send_errors;
	unsigned outstanding; /* now */
};

/*
 * Create a poller on `base` with room for `max_polls` (1..METRIC_POLLER_MAX)
 * outstanding polls.  `source4`/`source6` (may be NULL: any address,
 * ephemeral port) set the local address of the IPv4/IPv6 socket.  Succeeds
 * when at least one family has a socket.  Returns NULL with the reason
 * logged.
 */
struct metric_poller *metric_poller_new(struct event_base *base, unsigned max_polls,
    const struct addr *source4, const struct addr *source6);

/*
 * Free the poller, its sockets and events; pending polls are dropped
 * without their callbacks.  NULL is a no-op.
 */
void metric_poller_free(struct metric_poller *p);

/*
 * Send one poll.  On success returns 0, stores a handle for
 * metric_poll_cancel in *handle (may be NULL), and `cb` will be called
 * exactly once.  Returns -1 with errno set, and no callback, when the slot
 * table is full (EBUSY), the target is invalid (EINVAL: no port, timeout or
 * retries out of range), the family has no
 * socket (EAFNOSUPPORT) or sending failed (errno from sendto, e.g. EAGAIN).
 */
int metric_poll_start(struct metric_poller *p, const struct metric_poll_target *t,
    metric_poll_cb cb, void *arg, uint32_t *handle);

/*
 * Forget a pending poll: its callback will not run.  A handle whose poll has
 * already completed is ignored (handles are not reused for 65536 polls of
 * the same slot).  Returns true when a poll was cancelled.
 */
bool metric_poll_cancel(struct metric_poller *p, uint32_t handle);

void metric_poller_stats(const struct metric_poller *p, struct metric_poller_stats *out);

const char *metric_poll_status_str(enum metric_poll_status s);

#endif
