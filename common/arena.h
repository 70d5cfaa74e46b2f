/* arena.h - a bump allocator: many small allocations freed all at once. */
#ifndef MXB_ARENA_H
#define MXB_ARENA_H

#include <stddef.h>

/*
 * An arena hands out zeroed, max_align_t-aligned blocks from chunks of at
 * least `chunk` bytes and frees them only all together (arena_free).  For
 * data that lives and dies as one: a parsed configuration, a compiled zone.
 * Not thread-safe: one arena is filled by one thread; what it holds may be
 * read by many once published.
 */
struct arena;

/* A new empty arena; chunk 0 means ARENA_DEFAULT_CHUNK.  NULL when out of memory. */
struct arena *arena_new(size_t chunk);

#define ARENA_DEFAULT_CHUNK (16 * 1024)

/* Frees every block and the arena itself; arena_free(NULL) is a no-op. */
void arena_free(struct arena *a);

/* n zeroed bytes owned by the arena, or NULL when out of memory. */
void *arena_alloc(struct arena *a, size_t n);

/* A NUL-terminated copy of s[0..n) in the arena, or NULL. */
char *arena_strndup(struct arena *a, const char *s, size_t n);

/*
 * Append one zeroed element of `elem` bytes to the arena array *vp holding
 * *n elements, growing it (by copying; the old block stays in the arena) at
 * powers of two.  vp is the address of the array pointer.  Returns the new
 * element, or NULL (the array is unchanged) when out of memory.
 */
void *arena_push(struct arena *a, void *vp, size_t *n, size_t elem);

/* Bytes handed out so far (for tests and statistics). */
size_t arena_used(const struct arena *a);

#endif
