/*
 * drain.h - the operator drain of a metric agent, kept in a file.
 *
 * The drain state is the existence of `metrics { drain-file }` (default
 * <directory>/metricd.drain).  `metricd --drain` creates it, `metricd
 * --undrain` removes it, and the running metricd looks at it every second:
 * no signal, no network control, and it survives a restart.  Only who may
 * write the directory may drain (local-only by file permissions).
 *
 * The file is text, one "name: value" per line:
 *
 *     reason: kernel update
 *     by: alice
 *     at: 2024-05-01T10:00:00Z
 *
 * A file in another shape (`touch`, `echo text >`, or the one-line format
 * of older releases) still drains: its first line is the reason, "by" is
 * the file's owner and "at" its modification time.
 */
#ifndef MXB_METRICS_DRAIN_H
#define MXB_METRICS_DRAIN_H

#include <stdbool.h>
#include <stddef.h>

#define DRAIN_REASON_MAX 200
#define DRAIN_WHO_MAX    64
#define DRAIN_WHEN_MAX   32 /* "YYYY-MM-DDTHH:MM:SSZ" and room to spare */

struct json_object;

/* Who drained, why and when; every field a NUL-terminated printable line. */
struct drain_info {
	char reason[DRAIN_REASON_MAX + 1]; /* "" when none was given */
	char by[DRAIN_WHO_MAX + 1];        /* user name, "" when unknown */
	char at[DRAIN_WHEN_MAX];           /* RFC 3339 UTC, "" when unknown */
};

/*
 * Create the drain file atomically (temporary file, fsync, rename) with
 * the reason (NULL or "" means "drained"), drain_invoker() and the time.
 * The file is mode 0644 whatever the umask, so the daemon's own user can
 * read the reason after `--drain` ran as root.  Returns 0 or -1 (errno).
 * Sets and restores the process umask: not for threaded callers.
 */
int drain_set(const char *path, const char *reason);

/* Remove the drain file; not being drained is success.  0 or -1 (errno). */
int drain_clear(const char *path);

/*
 * True when the file exists; when `info` is not NULL it gets what the file
 * says (control characters replaced by '?').  An unreadable file still
 * drains, with the reason "(drain file unreadable: <errno text>)".
 */
bool drain_check(const char *path, struct drain_info *info);

/*
 * The user who asked for the drain: SUDO_USER when set (root acting for
 * someone), else the login name, else the name of the real uid, else
 * "uid N".  Returns buf.
 */
const char *drain_invoker(char *buf, size_t len);

/* "kernel update (by alice at 2024-05-01T10:00:00Z)", leaving out what is unknown. */
void drain_describe(const struct drain_info *d, char *buf, size_t len);

/* A new {"reason", "by", "at"} object (unknown fields null); NULL when out of memory. */
struct json_object *drain_to_json(const struct drain_info *d);

/*
 * Fill `d` from such an object (a missing or non-string field is left "").
 * Returns 0, or -1 when `o` is not an object.
 */
int drain_from_json(struct json_object *o, struct drain_info *d);

#endif
