/* arena.c - a bump allocator for data freed all at once. */
#include "common/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct arena_chunk {
	struct arena_chunk *next;
	size_t used, cap;
	max_align_t data[];
};

struct arena {
	struct arena_chunk *head;
	size_t chunk; /* smallest chunk to allocate */
	size_t used;  /* bytes handed out, rounded to the alignment */
};

struct arena *
arena_new(size_t chunk)
{
	struct arena *a = calloc(1, sizeof(*a));

	if (a != NULL)
		a->chunk = chunk > 0 ? chunk : ARENA_DEFAULT_CHUNK;
	return a;
}

void
arena_free(struct arena *a)
{
	struct arena_chunk *c, *next;

	if (a == NULL)
		return;
	for (c = a->head; c != NULL; c = next) {
		next = c->next;
		free(c);
	}
	free(a);
}

/*
 * Only the newest chunk is filled: the tail of an older one is lost when a
 * request does not fit, which costs little with chunks far larger than the
 * typical block and keeps allocation a compare and an add.  Chunks come
 * from calloc, so blocks are zeroed without a memset.
 */
void *
arena_alloc(struct arena *a, size_t n)
{
	struct arena_chunk *c = a->head;
	size_t align = sizeof(max_align_t);
	void *p;

	if (n > SIZE_MAX - align)
		return NULL;
	n = (n + align - 1) / align * align;
	if (c == NULL || c->cap - c->used < n) {
		size_t cap = n > a->chunk ? n : a->chunk;

		c = calloc(1, sizeof(*c) + cap);
		if (c == NULL)
			return NULL;
		c->cap = cap;
		c->next = a->head;
		a->head = c;
	}
	p = (char *)c->data + c->used;
	c->used += n;
	a->used += n;
	return p;
}

char *
arena_strndup(struct arena *a, const char *s, size_t n)
{
	char *p = arena_alloc(a, n + 1);

	if (p != NULL) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

/*
 * Capacity is implicit: an array of n elements has room for the next power
 * of two, so growing happens when n is 0 or a power of two and no capacity
 * field is needed beside the count.
 */
void *
arena_push(struct arena *a, void *vp, size_t *n, size_t elem)
{
	void **v = vp;
	size_t count = *n;

	if (count == 0 || (count & (count - 1)) == 0) {
		void *nv = arena_alloc(a, (count ? count * 2 : 1) * elem);

		if (nv == NULL)
			return NULL;
		if (count)
			memcpy(nv, *v, count * elem);
		*v = nv;
	}
	(*n)++;
	return (char *)*v + count * elem;
}

size_t
arena_used(const struct arena *a)
{
	return a->used;
}
