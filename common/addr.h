/* addr.h - IPv4/IPv6 addresses, CIDR prefixes and socket helpers. */
#ifndef MXB_ADDR_H
#define MXB_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* A socket address (IPv4 or IPv6, with port): a plain value, copy freely. */
struct addr {
	struct sockaddr_storage ss;
	socklen_t len;
};

/* Large enough for "[ffff:...:ffff%ifname]:65535". */
#define ADDR_STRLEN 80

/*
 * Parse a numeric IPv4 or IPv6 address (no names, no port) and set `port`.
 * Returns 0, or -1 when `text` is not an address.
 */
int addr_parse(const char *text, uint16_t port, struct addr *out);

/* Build from a sockaddr as returned by accept/recvfrom; -1 if not INET/INET6. */
int addr_from_sockaddr(const struct sockaddr *sa, socklen_t len, struct addr *out);

int addr_family(const struct addr *a);
uint16_t addr_port(const struct addr *a);
void addr_set_port(struct addr *a, uint16_t port);
const struct sockaddr *addr_sa(const struct addr *a);

/* True when family, address and port are equal. */
bool addr_equal(const struct addr *a, const struct addr *b);
/* True when family and address are equal; ports are ignored. */
bool addr_equal_host(const struct addr *a, const struct addr *b);

/* True for the wildcard address of its family (0.0.0.0 or ::). */
bool addr_is_any(const struct addr *a);

/* Write "192.0.2.1" (no port) into buf; returns buf. */
const char *addr_host_str(const struct addr *a, char *buf, size_t len);
/* Write "192.0.2.1:53" or "[2001:db8::1]:53" into buf; returns buf. */
const char *addr_str(const struct addr *a, char *buf, size_t len);

/* An address prefix such as 10.0.0.0/8 or 2001:db8::/32: a plain value. */
struct cidr {
	int family;        /* AF_INET or AF_INET6 */
	uint8_t bytes[16]; /* network order, host bits cleared */
	unsigned prefix;   /* 0..32 or 0..128 */
};

/*
 * Parse "ADDR" (a host prefix) or "ADDR/LEN".  Host bits set beyond the
 * prefix are an error (likely a typo).  Returns 0 or -1.
 */
int cidr_parse(const char *text, struct cidr *out);
/* True when the address (port ignored) lies in the prefix.  An IPv4-mapped
 * IPv6 address matches IPv4 prefixes. */
bool cidr_match(const struct cidr *c, const struct addr *a);
const char *cidr_str(const struct cidr *c, char *buf, size_t len);

enum sock_flags {
	SOCK_F_REUSEPORT = 1 << 0, /* SO_REUSEPORT, for one socket per thread */
	SOCK_F_LISTEN = 1 << 1,    /* listen() a stream socket */
};

/*
 * Create a non-blocking, close-on-exec socket of `type` (SOCK_DGRAM or
 * SOCK_STREAM) bound to `a`, with SO_REUSEADDR, IPV6_V6ONLY for IPv6.
 * Returns the descriptor, or -1 with errno set (nothing logged).
 */
int sock_bind(const struct addr *a, int type, int flags);

/* Ask for a receive buffer of at least `bytes`; returns 0 or -1 (errno). */
int sock_set_rcvbuf(int fd, int bytes);

/* The local address a socket is bound to (useful after binding port 0). */
int sock_local_addr(int fd, struct addr *out);

#endif
