/*
 * drain.h - the operator drain of a metric agent, kept in a file.
 *
 * The drain state is the existence of `metrics { drain-file }` (default
 * <directory>/metricd.drain).  `metricd --drain` creates it, `metricd
 * --undrain` removes it, and the running metricd looks at it every second:
 * no signal, no network control, and it survives a restart.  Only who may
 * write the directory may drain (local-only by file permissions).
 */
#ifndef MXB_METRICS_DRAIN_H
#define MXB_METRICS_DRAIN_H

#include <stdbool.h>
#include <stddef.h>

#define DRAIN_REASON_MAX 200

/*
 * Create the drain file atomically (temporary file, fsync, rename) with one
 * line: the reason (may be NULL) and who/when.  Returns 0 or -1 (errno).
 */
int drain_set(const char *path, const char *reason);

/* Remove the drain file; not being drained is success.  0 or -1 (errno). */
int drain_clear(const char *path);

/*
 * True when the file exists; its first line (at most DRAIN_REASON_MAX bytes,
 * control characters replaced) goes into reason, which may be NULL.
 */
bool drain_check(const char *path, char *reason, size_t len);

#endif
