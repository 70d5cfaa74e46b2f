/*
 * statefile.h - the last published answer of every cluster, kept on disk
 * (`broker { state-file }`) so that brokerd answers correctly right after a
 * restart: the saved set is published at once and kept until the first
 * polls have returned.
 *
 * Format (JSON, written atomically: temporary file, fsync, rename, fsync of
 * the directory):
 *   {"version": 1, "saved": UNIX-TIME,
 *    "clusters": {"smtp.mail.example.test": {"A": ["192.0.2.1", ...],
 *                                            "AAAA": [...]}}}
 * Main thread only.
 */
#ifndef MXB_BROKER_STATEFILE_H
#define MXB_BROKER_STATEFILE_H

#include <stddef.h>

struct addr;
struct statefile;

/*
 * Read `path`.  A missing file gives an empty state; an unreadable or
 * malformed one is logged and also gives an empty state (a restart must not
 * fail for it).  NULL only when out of memory.
 */
struct statefile *statefile_load(const char *path);

/*
 * Up to `max` saved addresses of `family` (AF_INET, AF_INET6) for cluster
 * `name` into out; returns how many (0 when none were saved).
 */
size_t statefile_get(
    const struct statefile *sf, const char *name, int family, struct addr *out, size_t max);

/* Remember the published set of `family` for `name`; 0 or -1. */
int statefile_set(
    struct statefile *sf, const char *name, int family, const struct addr *v, size_t n);

/* Write the file atomically; 0 or -1 (logged with the path). */
int statefile_save(struct statefile *sf);

void statefile_free(struct statefile *sf);

#endif
