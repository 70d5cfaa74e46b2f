/*
 * daemon.h - what every mxbroker program does the same way: command-line
 * basics (--help, --version, -c FILE, -t, -p), loading the configuration, signal
 * handling on libevent, privilege drop and the pid file.
 */
#ifndef MXB_DAEMON_H
#define MXB_DAEMON_H

#include <stdbool.h>

#define DAEMON_DEFAULT_CONFIG "/etc/mxbroker/mxbroker.conf"

struct config;
struct event_base;

/* What a program tells daemon_args about itself. */
struct prog_info {
	const char *name;    /* "brokerd" */
	const char *summary; /* one line: what it does */
	const char *usage;   /* options beyond the common ones, already formatted */
	unsigned parts;      /* CONFIG_PART_*: what -t checks and -p prints */
};

struct daemon_opts {
	const char *config_path; /* -c, default DAEMON_DEFAULT_CONFIG */
	bool check_only;         /* -t */
	bool print;              /* -p */
	bool show_secrets;       /* --show-secrets (with -p) */
	bool debug;              /* -d: log level debug */
};

/*
 * Parse the common daemon options; prints help or version and exits 0, or a
 * usage error and exits 64.  Non-option arguments are a usage error.
 */
void daemon_args(int argc, char **argv, const struct prog_info *info, struct daemon_opts *opts);

struct option;

/* A program's own option: ch is the option's `val`; 0 or -1 (usage error). */
typedef int (*daemon_opt_fn)(int ch, const char *optarg, void *arg);

/*
 * daemon_args plus the program's own long options (`extra`, terminated by
 * a zeroed entry, at most 8; their `val` must not be c, t, p, d, h, V or
 * 0x100 and above),
 * each handed to extra_cb.
 */
void daemon_args_ext(int argc, char **argv, const struct prog_info *info, struct daemon_opts *opts,
    const struct option *extra, daemon_opt_fn extra_cb, void *arg);

/* Print "usage: ..." for info to stdout (help) or stderr (error). */
void prog_usage(const struct prog_info *info, bool error);

/*
 * Load and validate the configuration, set up logging from it; on error print
 * "file:line: message" and exit 1.  `check` (may be NULL) is the daemon's own
 * check; it returns 0 or -1 after printing its own file:line error.  The
 * warnings of config_warnings for info->parts are logged (or, with -t/-p,
 * printed to stderr).  With opts->check_only the run user and the files and
 * folders of info->parts are checked as well (config_check_env), then
 * "<file>: configuration OK" is printed and the program exits 0; with
 * opts->print the effective configuration is printed instead.  Sets the
 * umask to 077: files and folders a daemon creates are 0600 / 0700.
 */
struct config *daemon_load_config(const struct prog_info *info, const struct daemon_opts *opts,
    int (*check)(const struct config *));

/*
 * SIGTERM and SIGINT end the loop of `base`; SIGHUP calls reload_cb (when not
 * NULL); SIGPIPE is ignored.  Returns 0 or -1 (logged).
 */
int daemon_signals(struct event_base *base, void (*reload_cb)(void *), void *arg);

/* Set to "1" to let a daemon started as root without options { user } stay root. */
#define DAEMON_ALLOW_ROOT_ENV "MXB_ALLOW_ROOT"

/*
 * The privilege model (docs/hardening.md).  Sets the umask to 077 and
 * raises the soft RLIMIT_NOFILE to the hard limit.  When
 * running as root: with options.user set, switch to that user (setgroups,
 * setresgid, setresuid) and confirm root cannot be regained; without it (or
 * with a user that is uid 0) refuse: log why and how to fix it, return -1 -
 * unless MXB_ALLOW_ROOT=1 is in the environment (tests, containers), which
 * only warns.  When not root, nothing more.  Returns 0 or -1 (logged).
 * Call after binding, before reading any network input.
 */
int daemon_drop_privileges(const struct config *cfg);

/* Write options.pid_file when set; 0 or -1 (logged).  Removed at exit. */
int daemon_write_pidfile(const struct config *cfg);

#endif
