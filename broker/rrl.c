/* rrl.c - response rate limiting: token buckets per client prefix. */
#include "broker/rrl.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "common/config.h"

#define RRL_PROBE 8    /* slots looked at before one is reused */
#define RRL_SCALE 1000 /* tokens are kept in thousandths */

struct rrl_entry {
	uint64_t key[2];  /* masked prefix; key[0] also holds the family */
	uint64_t last_ms; /* last refill */
	int64_t tokens;   /* thousandths of a response */
	uint32_t over;    /* responses over the rate, for the slip count */
	bool used;
};

struct rrl {
	struct config_rrl cfg;
	uint64_t seed;
	size_t mask;
	struct rrl_entry *table;
};

struct rrl *
rrl_new(const struct config_rrl *cfg)
{
	struct rrl *r = calloc(1, sizeof(*r));
	size_t size = 1;

	if (r == NULL)
		return NULL;
	r->cfg = *cfg;
	while (size < cfg->table_size)
		size <<= 1;
	r->mask = size - 1;
	r->table = calloc(size, sizeof(*r->table));
	if (r->table == NULL) {
		free(r);
		return NULL;
	}
	/* A secret seed: flooders cannot aim at one bucket chain. */
	if (getrandom(&r->seed, sizeof(r->seed), 0) != sizeof(r->seed))
		r->seed = (uint64_t)(uintptr_t)r ^ 0x9e3779b97f4a7c15ULL;
	return r;
}

void
rrl_free(struct rrl *r)
{
	if (r == NULL)
		return;
	free(r->table);
	free(r);
}

/* Keep the first `bits` bits of 16 bytes. */
static void
mask_bytes(uint8_t *b, size_t len, unsigned bits)
{
	for (size_t i = 0; i < len; i++) {
		if (bits >= 8) {
			bits -= 8;
			continue;
		}
		b[i] &= (uint8_t)(0xff00 >> bits);
		bits = 0;
	}
}

/* The client's prefix as a key; false for a family we do not limit. */
static bool
prefix_key(const struct rrl *r, const struct sockaddr *sa, uint64_t key[2])
{
	uint8_t b[16] = {0};

	if (sa->sa_family == AF_INET) {
		memcpy(b, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		mask_bytes(b, 4, r->cfg.ipv4_prefix);
	} else if (sa->sa_family == AF_INET6) {
		memcpy(b, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
		mask_bytes(b, 16, r->cfg.ipv6_prefix);
	} else
		return false;
	memcpy(&key[0], b, 8);
	memcpy(&key[1], b + 8, 8);
	key[0] ^= (uint64_t)sa->sa_family << 56;
	return true;
}

static uint64_t
mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* The entry for key: found, or a free one, or the stalest of the probe. */
static struct rrl_entry *
rrl_find(struct rrl *r, const uint64_t key[2], uint64_t now_ms)
{
	size_t i = mix(key[0] ^ mix(key[1] ^ r->seed)) & r->mask;
	struct rrl_entry *victim = NULL;

	for (unsigned p = 0; p < RRL_PROBE; p++, i = (i + 1) & r->mask) {
		struct rrl_entry *e = &r->table[i];

		if (e->used && e->key[0] == key[0] && e->key[1] == key[1])
			return e;
		if (!e->used || victim == NULL || e->last_ms < victim->last_ms)
			victim = e;
		if (!e->used)
			break;
	}
	victim->used = true;
	victim->key[0] = key[0];
	victim->key[1] = key[1];
	victim->last_ms = now_ms;
	victim->tokens = (int64_t)r->cfg.responses_per_second * RRL_SCALE;
	victim->over = 0;
	return victim;
}

enum rrl_action
rrl_check(struct rrl *r, const struct sockaddr *from, uint64_t now_ms)
{
	int64_t cap = (int64_t)r->cfg.responses_per_second * RRL_SCALE;
	struct rrl_entry *e;
	uint64_t key[2];

	if (r->cfg.responses_per_second == 0 || !prefix_key(r, from, key))
		return RRL_SEND;
	e = rrl_find(r, key, now_ms);
	if (now_ms > e->last_ms) {
		/* rate per second = rate * SCALE / 1000 thousandths per ms */
		uint64_t gain = (now_ms - e->last_ms) * r->cfg.responses_per_second;

		e->tokens = gain >= (uint64_t)cap ? cap : e->tokens + (int64_t)gain;
		if (e->tokens > cap)
			e->tokens = cap;
		e->last_ms = now_ms;
	}
	if (e->tokens >= RRL_SCALE) {
		e->tokens -= RRL_SCALE;
		e->over = 0;
		return RRL_SEND;
	}
	e->over++;
	if (r->cfg.slip != 0 && e->over % r->cfg.slip == 0)
		return RRL_SLIP;
	return RRL_DROP;
}
