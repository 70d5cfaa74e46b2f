/*
 * rrl.h - response rate limiting for UDP answers, per client network.
 *
 * Each client prefix (an IPv4 /24 or an IPv6 /56 by default) has a token
 * bucket refilled at `responses-per-second` with one second of burst.  A
 * response beyond it is dropped, except every `slip`-th one, which goes out
 * as an empty truncated reply (TC=1): a real resolver behind a forged flood
 * retries over TCP and is served, while the flood's victim receives at most
 * a trickle of small packets.  This keeps brokerd from being an amplifier.
 *
 * One table per UDP thread, preallocated by rrl_new: checking allocates
 * nothing and takes no lock.  The table is fixed-size (open addressing with
 * a short probe; the least recently seen entry of the probe is reused), so a
 * spoofed flood from many prefixes cannot grow memory.  A client whose
 * queries land on several threads (different source ports) gets the rate
 * once per thread.
 */
#ifndef MXB_BROKER_RRL_H
#define MXB_BROKER_RRL_H

#include <stdint.h>
#include <sys/socket.h>

struct config_rrl;
struct rrl;

enum rrl_action {
	RRL_SEND, /* within the rate: answer */
	RRL_SLIP, /* over it: send an empty truncated reply instead */
	RRL_DROP, /* over it: send nothing */
};

/* A table for one thread; NULL when out of memory.  cfg is copied. */
struct rrl *rrl_new(const struct config_rrl *cfg);
void rrl_free(struct rrl *r);

/* Account one response to `from` at `now_ms` (a monotonic clock). */
enum rrl_action rrl_check(struct rrl *r, const struct sockaddr *from, uint64_t now_ms);

#endif
