/* random.c - unpredictable numbers from the kernel. */
#include "common/random.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

/* getrandom returns at most 32 MiB per call and may be interrupted: loop. */
int
random_bytes(void *buf, size_t n)
{
	unsigned char *p = buf;

	while (n > 0) {
		ssize_t r = getrandom(p, n, 0);

		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

uint32_t
random_u32(void)
{
	return arc4random();
}

uint32_t
random_uniform(uint32_t bound)
{
	return bound > 0 ? arc4random_uniform(bound) : 0;
}
