/*
 * server.h - brokerd's DNS network side: UDP query threads (one event loop
 * and one SO_REUSEPORT socket per listen address per thread, batched with
 * recvmmsg/sendmmsg) and TCP (length-framed, pipelined, idle timeout, AXFR)
 * on the main thread's event loop.
 */
#ifndef MXB_BROKER_SERVER_H
#define MXB_BROKER_SERVER_H

#include <stdint.h>

#include "broker/answer.h"

struct config_broker;
struct dns_server;
struct event_base;
struct zonestore;

#define SERVER_UDP_BATCH    32   /* datagrams per recvmmsg/sendmmsg */
#define SERVER_UDP_RECV_MAX 4096 /* bytes read of one query */
#define SERVER_UDP_RCVBUF   (1 << 20)

/* Totals over every thread, for /status and /metrics. */
struct dns_counters {
	uint64_t rcode[ANSWER_NRCODES];
	uint64_t udp, tcp, dropped, truncated;
	uint64_t xfr, xfr_refused;
	uint64_t rrl_dropped, rrl_slipped;
	uint64_t tcp_clients; /* open now */
};

/*
 * Bind every UDP socket (cfg->threads per address) and TCP listener of
 * cfg->listen now, so that it happens before privileges are dropped; TCP is
 * served on `base` (the zone store's owner thread) from now on.  `zs` must
 * have been created for cfg->threads readers.  Returns NULL, logged
 * ("cannot listen on ADDR: why").
 */
struct dns_server *dns_server_new(
    struct event_base *base, const struct config_broker *cfg, struct zonestore *zs);

/*
 * SIGHUP: adopt `cfg` (borrowed from now on, in place of the one given
 * before: zones for AXFR, TCP limits).  When its listen addresses differ,
 * the added ones are bound first (TCP and a UDP socket per thread; after
 * the privilege drop a privileged port fails unless the process holds
 * CAP_NET_BIND_SERVICE), and only if all of them bind: the query threads
 * are stopped, take the sockets of unchanged addresses over (queries
 * waiting in them are answered, none is lost) and the new ones, and start
 * again; removed addresses are closed.  `threads` and `rate-limit` keep
 * their values from the start.  0, or -1 (logged) when the previous
 * addresses stay.
 */
int dns_server_reconfigure(struct dns_server *s, const struct config_broker *cfg);

/* Start the UDP threads; 0 or -1 (logged). */
int dns_server_start(struct dns_server *s);

/* Stop and join the threads, close everything. */
void dns_server_free(struct dns_server *s);

/* All zero when s is NULL (no zone, no DNS sockets). */
void dns_server_counters(const struct dns_server *s, struct dns_counters *out);

#endif
