/* addr.c - IPv4/IPv6 addresses, CIDR prefixes and socket helpers. */
#include "common/addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int
addr_parse(const char *text, uint16_t port, struct addr *out)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;

	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, text, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		out->len = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		out->len = sizeof(*sin6);
		return 0;
	}
	return -1;
}

int
addr_from_sockaddr(const struct sockaddr *sa, socklen_t len, struct addr *out)
{
	memset(out, 0, sizeof(*out));
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in))
		out->len = sizeof(struct sockaddr_in);
	else if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6))
		out->len = sizeof(struct sockaddr_in6);
	else
		return -1;
	memcpy(&out->ss, sa, out->len);
	return 0;
}

int
addr_family(const struct addr *a)
{
	return a->ss.ss_family;
}

uint16_t
addr_port(const struct addr *a)
{
	if (a->ss.ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
	if (a->ss.ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
	return 0;
}

void
addr_set_port(struct addr *a, uint16_t port)
{
	if (a->ss.ss_family == AF_INET)
		((struct sockaddr_in *)&a->ss)->sin_port = htons(port);
	else if (a->ss.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&a->ss)->sin6_port = htons(port);
}

const struct sockaddr *
addr_sa(const struct addr *a)
{
	return (const struct sockaddr *)&a->ss;
}

/* Pointer to the raw address bytes and their length (4 or 16). */
static const uint8_t *
addr_bytes(const struct addr *a, size_t *len)
{
	if (a->ss.ss_family == AF_INET) {
		*len = 4;
		return (const uint8_t *)&((const struct sockaddr_in *)&a->ss)->sin_addr;
	}
	if (a->ss.ss_family == AF_INET6) {
		*len = 16;
		return (const uint8_t *)&((const struct sockaddr_in6 *)&a->ss)->sin6_addr;
	}
	*len = 0;
	return NULL;
}

bool
addr_equal_host(const struct addr *a, const struct addr *b)
{
	size_t la, lb;
	const uint8_t *pa = addr_bytes(a, &la), *pb = addr_bytes(b, &lb);

	return la != 0 && la == lb && memcmp(pa, pb, la) == 0;
}

bool
addr_equal(const struct addr *a, const struct addr *b)
{
	return addr_equal_host(a, b) && addr_port(a) == addr_port(b);
}

const char *
addr_host_str(const struct addr *a, char *buf, size_t len)
{
	size_t n;
	const uint8_t *p = addr_bytes(a, &n);

	if (p == NULL || inet_ntop(a->ss.ss_family, p, buf, (socklen_t)len) == NULL)
		snprintf(buf, len, "(unknown)");
	return buf;
}

const char *
addr_str(const struct addr *a, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];

	addr_host_str(a, host, sizeof(host));
	if (a->ss.ss_family == AF_INET6)
		snprintf(buf, len, "[%s]:%u", host, addr_port(a));
	else
		snprintf(buf, len, "%s:%u", host, addr_port(a));
	return buf;
}

int
cidr_parse(const char *text, struct cidr *out)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(text, '/');
	size_t hlen = slash ? (size_t)(slash - text) : strlen(text);
	unsigned max;

	memset(out, 0, sizeof(*out));
	if (hlen == 0 || hlen >= sizeof(host))
		return -1;
	memcpy(host, text, hlen);
	host[hlen] = '\0';
	if (inet_pton(AF_INET, host, out->bytes) == 1) {
		out->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, host, out->bytes) == 1) {
		out->family = AF_INET6;
		max = 128;
	} else
		return -1;
	out->prefix = max;
	if (slash != NULL) {
		char *end;
		unsigned long v;

		if (slash[1] < '0' || slash[1] > '9')
			return -1;
		errno = 0;
		v = strtoul(slash + 1, &end, 10);
		if (errno != 0 || *end != '\0' || v > max)
			return -1;
		out->prefix = (unsigned)v;
	}
	for (unsigned bit = out->prefix; bit < max; bit++)
		if (out->bytes[bit / 8] & (0x80 >> (bit % 8)))
			return -1;
	return 0;
}

static bool
prefix_match(const uint8_t *net, const uint8_t *addr, unsigned prefix)
{
	unsigned full = prefix / 8, rest = prefix % 8;

	if (memcmp(net, addr, full) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((net[full] ^ addr[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

bool
cidr_match(const struct cidr *c, const struct addr *a)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	size_t len;
	const uint8_t *p = addr_bytes(a, &len);

	if (p == NULL)
		return false;
	if (c->family == AF_INET && len == 16 && memcmp(p, mapped, 12) == 0) {
		p += 12;
		len = 4;
	}
	if ((c->family == AF_INET && len != 4) || (c->family == AF_INET6 && len != 16))
		return false;
	return prefix_match(c->bytes, p, c->prefix);
}

const char *
cidr_str(const struct cidr *c, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];

	if (inet_ntop(c->family, c->bytes, host, sizeof(host)) == NULL)
		snprintf(host, sizeof(host), "(unknown)");
	snprintf(buf, len, "%s/%u", host, c->prefix);
	return buf;
}

int
sock_bind(const struct addr *a, int type, int flags)
{
	int fd, one = 1, saved;

	fd = socket(a->ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1)
		goto fail;
	if ((flags & SOCK_F_REUSEPORT) &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1)
		goto fail;
	if (a->ss.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) == -1)
		goto fail;
	if (bind(fd, addr_sa(a), a->len) == -1)
		goto fail;
	if ((flags & SOCK_F_LISTEN) && type == SOCK_STREAM && listen(fd, 1024) == -1)
		goto fail;
	return fd;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

int
sock_set_rcvbuf(int fd, int bytes)
{
	int got = 0;
	socklen_t len = sizeof(got);

	/* SO_RCVBUFFORCE passes rmem_max when we have CAP_NET_ADMIN. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(bytes)) == 0)
		return 0;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes)) == -1)
		return -1;
	if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &len) == -1)
		return -1;
	/* The kernel doubles the value it stores; less than asked is capped. */
	if (got < bytes) {
		errno = ENOBUFS;
		return -1;
	}
	return 0;
}

int
sock_local_addr(int fd, struct addr *out)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
		return -1;
	return addr_from_sockaddr((struct sockaddr *)&ss, len, out);
}

bool
addr_is_any(const struct addr *a)
{
	const struct sockaddr *sa = addr_sa(a);

	if (sa->sa_family == AF_INET)
		return ((const struct sockaddr_in *)sa)->sin_addr.s_addr == htonl(INADDR_ANY);
	return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)sa)->sin6_addr);
}
