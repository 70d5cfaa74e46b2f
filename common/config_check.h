/*
 * config_check.h - what `-t` checks beyond the grammar: that the files and
 * folders a daemon's statements name are there and usable by the user it
 * will run as, and warnings about values that are valid but likely wrong.
 *
 * Everything here reads the file system and the user database, never the
 * network; nothing is created or changed.  Main thread only (getpwnam).
 */
#ifndef MXB_CONFIG_CHECK_H
#define MXB_CONFIG_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct config;

#define CHECK_MAX_GROUPS 64

/*
 * Whom a check is for.  Started as root for a daemon with options { user }
 * that exists, the checks judge by that user's uid, groups and the modes
 * (root can read everything, so probing as root would prove nothing);
 * otherwise they probe as this process (access(2) with the effective ids).
 */
struct check_user {
	bool by_mode; /* judge by modes for uid/gids; false: probe as ourselves */
	bool is_root; /* this process runs as root (it creates what it needs) */
	uid_t uid;
	gid_t gids[CHECK_MAX_GROUPS];
	int ngids;
	char name[64]; /* for messages: "user mxbroker", or "uid 1000" */
};

/* Fill u for the run user `user` (may be NULL); a user that does not exist
 * is judged as this process (daemon_check_user reports it). */
void check_user_init(struct check_user *u, const char *user);

/*
 * Can u read the regular file `path` (every folder above it searchable)?
 * 0, or -1 with the reason in why ("No such file or directory", "user
 * mxbroker cannot read it (mode 0600, owner 0)").
 */
int check_can_read(const struct check_user *u, const char *path, char *why, size_t len);

/* Can u create and remove files in the folder `dir`?  0, or -1 and why. */
int check_can_write_dir(const struct check_user *u, const char *dir, char *why, size_t len);

/*
 * The daemon's environment for the parts in `parts` (CONFIG_PART_*): files
 * it reads, folders it writes, the pid file.  Each problem is printed to
 * stderr as "prog: file:line: what: why"; returns 0, or -1 after all of
 * them were printed.
 */
int config_check_env(const struct config *cfg, unsigned parts, const char *prog);

/*
 * Read a TLS policy file (relay { tls-policy-file }): "domain level" per
 * line, '#' comments, levels as in config_tls_level_names.  Calls fn for
 * each entry (the domain lower case, line number given; fn returns 0 or
 * -1); returns 0, or -1 with err ("path:line: why").  smtp-relay's
 * tls_policy.c and `-t` share it.
 */
int config_tls_policy_file_read(const char *path,
    int (*fn)(const char *domain, int level, int line, void *arg), void *arg, char *err,
    size_t errlen);

/*
 * Valid but likely wrong: dns-refresh above dns-ttl, a cluster in no served
 * zone and without masters, an open relay, the reference example's key.
 * Calls warn once per warning with "file:line: warning: text"; returns how
 * many there were.  Never fatal.
 */
int config_warnings(
    const struct config *cfg, unsigned parts, void (*warn)(void *arg, const char *msg), void *arg);

/* The secret of the key in docs/examples/mxbroker.conf: never for production. */
#define CONFIG_EXAMPLE_SECRET "bWVyZ2UgbWUgaW50byBhIHJlYWwga2V5Cg=="

#endif
