/* test_arena.c - the bump allocator (common/arena.h). */
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/arena.h"
#include "common/clock.h"
#include "common/random.h"
#include "tests/unit/tap.h"

static bool
all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return false;
	return true;
}

static void
test_alloc(void)
{
	struct arena *a = arena_new(64);
	unsigned char *p, *q, *big;

	ok(a != NULL, "arena_new");
	p = arena_alloc(a, 3);
	q = arena_alloc(a, 1);
	ok(p != NULL && q != NULL && p != q, "two blocks");
	ok((uintptr_t)p % alignof(max_align_t) == 0 && (uintptr_t)q % alignof(max_align_t) == 0,
	    "blocks aligned to max_align_t");
	ok(all_zero(p, 3) && all_zero(q, 1), "blocks zeroed");
	memset(p, 0xff, 3);
	ok(all_zero(q, 1), "blocks do not overlap");
	big = arena_alloc(a, 1000); /* more than a chunk: a chunk of its own */
	ok(big != NULL && all_zero(big, 1000), "block larger than the chunk size");
	ok(arena_used(a) >= 1004, "arena_used counts what was handed out");
	ok(arena_alloc(a, SIZE_MAX) == NULL, "an impossible size fails, no overflow");
	arena_free(a);
	arena_free(NULL);
	ok(true, "arena_free(NULL) is a no-op");
}

static void
test_strndup(void)
{
	struct arena *a = arena_new(0);
	char *s = arena_strndup(a, "hello world", 5);

	is_str(s, "hello", "arena_strndup copies n bytes and terminates");
	s = arena_strndup(a, "", 0);
	is_str(s, "", "empty string");
	arena_free(a);
}

static void
test_push(void)
{
	struct arena *a = arena_new(128);
	int *v = NULL;
	size_t n = 0;
	bool good = true;

	for (int i = 0; i < 1000; i++) {
		int *e = arena_push(a, &v, &n, sizeof(*v));

		if (e == NULL || *e != 0) {
			good = false;
			break;
		}
		*e = i;
	}
	ok(good && n == 1000, "1000 pushes, each element zeroed");
	for (size_t i = 0; good && i < n; i++)
		good = v[i] == (int)i;
	ok(good, "elements keep their values across growth");
	arena_free(a);
}

static void
test_clock_random(void)
{
	uint64_t ms = clock_ms(), us = clock_us();
	unsigned char buf[64];
	bool seen_other = false;

	ok(clock_ms() >= ms && clock_us() >= us, "monotonic clocks do not go back");
	ok(us / 1000 + 1 >= ms, "clock_us and clock_ms share an origin");
	ok(clock_coarse_ms() + 100 >= ms, "coarse clock close to the precise one");
	memset(buf, 0, sizeof(buf));
	ok(random_bytes(buf, sizeof(buf)) == 0 && !all_zero(buf, sizeof(buf)), "random_bytes");
	ok(random_bytes(buf, 0) == 0, "random_bytes of nothing");
	for (int i = 0; i < 1000; i++) {
		if (random_uniform(7) >= 7) {
			seen_other = true;
			break;
		}
	}
	ok(!seen_other, "random_uniform stays below its bound");
	is_int(random_uniform(0), 0, "random_uniform(0) is 0");
	ok(random_u32() != random_u32() || random_u32() != random_u32(), "random_u32 varies");
}

int
main(void)
{
	test_alloc();
	test_strndup();
	test_push();
	test_clock_random();
	return tap_done();
}
