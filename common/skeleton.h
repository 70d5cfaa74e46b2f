/*
 * skeleton.h - the event loop a daemon runs before its component is built:
 * status endpoint, signals, privilege drop.  Replaced by each component's
 * real main as it lands.
 */
#ifndef MXB_SKELETON_H
#define MXB_SKELETON_H

struct addr;
struct config;
struct prog_info;

/* Serve GET /status and /metrics on `status` (when its len is non-zero)
 * until SIGTERM; returns the exit status. */
int skeleton_run(const struct prog_info *info, const struct config *cfg, const struct addr *status);

#endif
