/* random.h - unpredictable numbers (DNS ids, hash seeds, shuffles). */
#ifndef MXB_RANDOM_H
#define MXB_RANDOM_H

#include <stddef.h>
#include <stdint.h>

/*
 * Fill buf with n bytes from the kernel's CSPRNG (getrandom(2)); waits only
 * before the pool is first seeded at boot.  0, or -1 with errno.
 * Thread-safe.
 */
int random_bytes(void *buf, size_t n);

/*
 * A uniform 32-bit value / a uniform value in [0, bound) without modulo
 * bias (bound 0 gives 0).  Never fail: arc4random(3) (glibc >= 2.36)
 * aborts rather than hand out predictable numbers.  Thread-safe.
 */
uint32_t random_u32(void);
uint32_t random_uniform(uint32_t bound);

#endif
