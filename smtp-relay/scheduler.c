/* scheduler.c - a heap of messages by due time, a hash by ID, one timer. */
#include "smtp-relay/scheduler.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "smtp-relay/queue.h"

#define NOT_IN_HEAP SIZE_MAX

struct entry {
	char id[QUEUE_ID_LEN + 1];
	time_t due;
	size_t slot;        /* index in the heap, or NOT_IN_HEAP (running) */
	bool forced;        /* flushed: run regardless of next_retry */
	bool again;         /* flushed while running */
	struct entry *next; /* hash chain */
};

struct scheduler {
	struct event *timer;
	scheduler_run_fn run;
	void *arg;
	unsigned max_active;
	size_t active;
	struct entry **buckets;
	size_t nbuckets, count;
	struct entry **heap;
	size_t nheap, heap_cap;
	bool in_pump, repump;
};

static size_t
hash_id(const struct scheduler *s, const char *id)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *id != '\0'; id++)
		h = (h ^ (unsigned char)*id) * 1099511628211ULL;
	return (size_t)h & (s->nbuckets - 1);
}

static struct entry *
find(const struct scheduler *s, const char *id)
{
	for (struct entry *e = s->buckets[hash_id(s, id)]; e != NULL; e = e->next)
		if (strcmp(e->id, id) == 0)
			return e;
	return NULL;
}

static int
grow_hash(struct scheduler *s)
{
	size_t n = s->nbuckets * 2, old = s->nbuckets;
	struct entry **b = calloc(n, sizeof(*b)), **ob = s->buckets;

	if (b == NULL)
		return -1;
	s->buckets = b;
	s->nbuckets = n;
	for (size_t i = 0; i < old; i++) {
		struct entry *e, *next;

		for (e = ob[i]; e != NULL; e = next) {
			size_t h = hash_id(s, e->id);

			next = e->next;
			e->next = b[h];
			b[h] = e;
		}
	}
	free(ob);
	return 0;
}

static void
unlink_hash(struct scheduler *s, struct entry *gone)
{
	struct entry **pp = &s->buckets[hash_id(s, gone->id)];

	while (*pp != gone)
		pp = &(*pp)->next;
	*pp = gone->next;
	s->count--;
}

/* Earlier due first; equal times by ID, which is arrival order. */
static bool
before(const struct entry *a, const struct entry *b)
{
	return a->due != b->due ? a->due < b->due : strcmp(a->id, b->id) < 0;
}

static void
heap_set(struct scheduler *s, size_t i, struct entry *e)
{
	s->heap[i] = e;
	e->slot = i;
}

static void
sift_up(struct scheduler *s, size_t i)
{
	struct entry *e = s->heap[i];

	while (i > 0 && before(e, s->heap[(i - 1) / 2])) {
		heap_set(s, i, s->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	heap_set(s, i, e);
}

static void
sift_down(struct scheduler *s, size_t i)
{
	struct entry *e = s->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= s->nheap)
			break;
		if (c + 1 < s->nheap && before(s->heap[c + 1], s->heap[c]))
			c++;
		if (!before(s->heap[c], e))
			break;
		heap_set(s, i, s->heap[c]);
		i = c;
	}
	heap_set(s, i, e);
}

static int
heap_push(struct scheduler *s, struct entry *e)
{
	if (s->nheap == s->heap_cap) {
		size_t cap = s->heap_cap ? s->heap_cap * 2 : 64;
		struct entry **h = realloc(s->heap, cap * sizeof(*h));

		if (h == NULL)
			return -1;
		s->heap = h;
		s->heap_cap = cap;
	}
	heap_set(s, s->nheap++, e);
	sift_up(s, s->nheap - 1);
	return 0;
}

static void
heap_remove(struct scheduler *s, struct entry *e)
{
	size_t i = e->slot;

	e->slot = NOT_IN_HEAP;
	if (--s->nheap == i)
		return;
	struct entry *moved = s->heap[s->nheap];

	heap_set(s, i, moved);
	sift_down(s, i);
	sift_up(s, moved->slot);
}

/* Start what is due while there is room; then sleep until the next one. */
static void
pump(struct scheduler *s)
{
	time_t now = time(NULL);

	if (s->in_pump) {
		s->repump = true;
		return;
	}
	s->in_pump = true;
	do {
		s->repump = false;
		while (s->active < s->max_active && s->nheap > 0 && s->heap[0]->due <= now) {
			struct entry *e = s->heap[0];
			bool forced = e->forced;

			heap_remove(s, e);
			e->forced = false;
			s->active++;
			s->run(e->id, forced, s->arg);
		}
	} while (s->repump);
	s->in_pump = false;
	evtimer_del(s->timer);
	if (s->nheap > 0 && s->active < s->max_active) {
		struct timeval tv = {s->heap[0]->due > now ? s->heap[0]->due - now : 0, 0};

		evtimer_add(s->timer, &tv);
	}
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pump(arg);
}

struct scheduler *
scheduler_new(struct event_base *base, unsigned max_active, scheduler_run_fn run, void *arg)
{
	struct scheduler *s = calloc(1, sizeof(*s));

	if (s == NULL || (s->buckets = calloc(1024, sizeof(*s->buckets))) == NULL ||
	    (s->timer = evtimer_new(base, timer_cb, s)) == NULL) {
		scheduler_free(s);
		return NULL;
	}
	s->nbuckets = 1024;
	s->max_active = max_active ? max_active : 1;
	s->run = run;
	s->arg = arg;
	return s;
}

void
scheduler_free(struct scheduler *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; s->buckets != NULL && i < s->nbuckets; i++) {
		struct entry *e, *next;

		for (e = s->buckets[i]; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	}
	if (s->timer != NULL)
		event_free(s->timer);
	free(s->buckets);
	free(s->heap);
	free(s);
}

void
scheduler_set_max(struct scheduler *s, unsigned max_active)
{
	s->max_active = max_active ? max_active : 1;
	pump(s);
}

/* Put a known message at `due` if that is earlier than where it waits. */
static void
move_earlier(struct scheduler *s, struct entry *e, time_t due)
{
	if (e->slot == NOT_IN_HEAP || due >= e->due)
		return;
	e->due = due;
	sift_up(s, e->slot);
}

int
scheduler_add(struct scheduler *s, const char *id, time_t due)
{
	struct entry *e = find(s, id);
	size_t h;

	if (e != NULL) {
		move_earlier(s, e, due);
		pump(s);
		return 0;
	}
	if (s->count >= s->nbuckets && grow_hash(s) == -1)
		return -1;
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return -1;
	snprintf(e->id, sizeof(e->id), "%s", id);
	e->due = due;
	if (heap_push(s, e) == -1) {
		free(e);
		return -1;
	}
	h = hash_id(s, id);
	e->next = s->buckets[h];
	s->buckets[h] = e;
	s->count++;
	pump(s);
	return 0;
}

void
scheduler_done(struct scheduler *s, const char *id, time_t next)
{
	struct entry *e = find(s, id);

	if (e == NULL || e->slot != NOT_IN_HEAP)
		return;
	s->active--;
	if (next == 0) {
		unlink_hash(s, e);
		free(e);
	} else {
		e->due = e->again ? 0 : next;
		e->forced = e->again;
		e->again = false;
		if (heap_push(s, e) == -1) {
			/* Out of memory: the message waits for the next start. */
			unlink_hash(s, e);
			free(e);
		}
	}
	pump(s);
}

static void
flush_one(struct scheduler *s, struct entry *e)
{
	e->forced = true;
	if (e->slot == NOT_IN_HEAP)
		e->again = true;
	else
		move_earlier(s, e, 0);
}

int
scheduler_flush(struct scheduler *s, const char *id)
{
	struct entry *e;

	if (id != NULL) {
		if ((e = find(s, id)) == NULL)
			return -1;
		flush_one(s, e);
	} else {
		for (size_t i = 0; i < s->nbuckets; i++)
			for (e = s->buckets[i]; e != NULL; e = e->next)
				flush_one(s, e);
	}
	pump(s);
	return 0;
}

void
scheduler_forget(struct scheduler *s, const char *id)
{
	struct entry *e = find(s, id);

	if (e == NULL || e->slot == NOT_IN_HEAP)
		return;
	heap_remove(s, e);
	unlink_hash(s, e);
	free(e);
}

size_t
scheduler_count(const struct scheduler *s)
{
	return s->count;
}

size_t
scheduler_active(const struct scheduler *s)
{
	return s->active;
}

size_t
scheduler_due(const struct scheduler *s, time_t now)
{
	size_t n = s->active;

	for (size_t i = 0; i < s->nheap; i++)
		n += s->heap[i]->due <= now;
	return n;
}

/* ---- destination concurrency ---- */

void
scheduler_window_init(
    struct scheduler_window *w, unsigned initial, unsigned max, unsigned rate_delay)
{
	w->max = max ? max : 1;
	w->limit = initial < 1 ? 1 : initial > w->max ? w->max : initial;
	if (rate_delay > 0)
		w->limit = 1;
}

void
scheduler_window_grow(struct scheduler_window *w, unsigned rate_delay)
{
	if (rate_delay > 0)
		w->limit = 1;
	else if (w->limit < w->max)
		w->limit++;
}

void
scheduler_window_shrink(struct scheduler_window *w)
{
	if (w->limit > 1)
		w->limit--;
}

bool
scheduler_window_has_room(const struct scheduler_window *w, unsigned active)
{
	return active < w->limit && active < w->max;
}
