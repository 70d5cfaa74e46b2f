/*
 * statefile.h - the last published answer of every cluster, kept on disk
 * (`broker { state-file }`) so that brokerd answers correctly right after a
 * restart: the saved set is published at once and kept until the first
 * polls have returned.
 *
 * It also keeps the last served SOA serial of every zone, with the
 * zone_digest of the content served under it, so that a restart never
 * serves a lower serial (zonestore_restore_serial).
 *
 * Format (JSON, written atomically: temporary file, fsync, rename, fsync of
 * the directory):
 *   {"version": 1, "saved": UNIX-TIME,
 *    "clusters": {"smtp.mail.example.test": {"A": ["192.0.2.1", ...],
 *                                            "AAAA": [...]}},
 *    "zones": {"mail.example.test": {"serial": 2024010107,
 *                                    "digest": "16 hex digits"}},
 *    "drains": {"smtp.mail.example.test": {"192.0.2.1": {"reason": "disk swap",
 *                                           "who": "root", "since": UNIX-TIME}}}}
 * The drains are brokerd-ctl's (a `drain` in the configuration is not kept
 * here): they survive restarts until `brokerd-ctl undrain`.
 * Main thread only.
 */
#ifndef MXB_BROKER_STATEFILE_H
#define MXB_BROKER_STATEFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/* The saved serial and digest of `zone`: 0, or -1 when none was saved. */
int statefile_get_serial(
    const struct statefile *sf, const char *zone, uint32_t *serial, uint64_t *digest);

/* Remember the served serial and digest of `zone`; 0 or -1. */
int statefile_set_serial(struct statefile *sf, const char *zone, uint32_t serial, uint64_t digest);

/* A member drained by the operator (brokerd-ctl drain). */
#define STATEFILE_REASON_MAX 160 /* octets of a drain reason, NUL included */
#define STATEFILE_WHO_MAX    64  /* octets of who drained, NUL included */
struct statefile_drain {
	char reason[STATEFILE_REASON_MAX];
	char who[STATEFILE_WHO_MAX];
	int64_t since; /* UNIX time */
};

/*
 * The saved drain of `member` (its address as addr_host_str writes it) in
 * `cluster`: 0 with *out filled, or -1 when there is none (or it is
 * malformed: a reason or who that does not fit is cut, not refused).
 */
int statefile_get_drain(const struct statefile *sf, const char *cluster, const char *member,
    struct statefile_drain *out);

/* Remember (d not NULL) or forget (d NULL) a drain; 0 or -1 (no memory). */
int statefile_set_drain(
    struct statefile *sf, const char *cluster, const char *member, const struct statefile_drain *d);

/*
 * Forget every saved drain for which keep(cluster, member, arg) is false
 * (clusters and members no longer in the configuration); returns how many
 * were forgotten.
 */
size_t statefile_prune_drains(struct statefile *sf,
    bool (*keep)(const char *cluster, const char *member, void *arg), void *arg);

/*
 * Check that the folder of the state file `path` takes new files: by a
 * probe file created and removed, or, when running as root for a daemon
 * that drops to `user` (may be NULL), by the folder's owner and mode for
 * that user.  brokerd refuses to start, and -t fails, when it does not.
 * 0, or -1 with the reason in why.
 */
int statefile_check_dir(const char *path, const char *user, char *why, size_t len);

/* Write the file atomically; 0 or -1 (logged with the path). */
int statefile_save(struct statefile *sf);

void statefile_free(struct statefile *sf);

#endif
