/* daemon.c - command line, configuration, signals and privileges for every program. */
#include "common/daemon.h"

#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "common/config.h"
#include "common/config_check.h"
#include "common/log.h"

static int privilege_plan(
    const struct config *cfg, bool as_root, struct passwd **pw, char *why, size_t len);

void
prog_usage(const struct prog_info *info, bool error)
{
	FILE *out = error ? stderr : stdout;

	fprintf(out, "usage: %s [-dtp] [-c FILE]%s\n", info->name,
	    info->usage != NULL ? " [OPTIONS]" : "");
	if (error) {
		fprintf(out, "Try '%s --help' for more information.\n", info->name);
		return;
	}
	fprintf(out, "%s\n\n", info->summary);
	fprintf(out,
	    "  -c, --config FILE  configuration file (default %s)\n"
	    "  -t, --check        check the configuration, the files and folders it\n"
	    "                     names and the run user, and exit (0 = valid)\n"
	    "  -p, --print        print the effective configuration and exit\n"
	    "      --show-secrets with -p: print key secrets, not \"<hidden>\"\n"
	    "  -d, --debug        log at debug level\n"
	    "  -h, --help         show this help and exit\n"
	    "  -V, --version      show the version and exit\n",
	    DAEMON_DEFAULT_CONFIG);
	if (info->usage != NULL)
		fprintf(out, "%s", info->usage);
	fprintf(out, "\nSee %s(8) and mxbroker.conf(5).\n", info->name);
}

#define DAEMON_MAX_OPTS 16

/* Long options without a letter: values no program uses for its own. */
#define DAEMON_OPT_SHOW_SECRETS 0x100
#define DAEMON_OPT_DUMP_GRAMMAR 0x101

void
daemon_args_ext(int argc, char **argv, const struct prog_info *info, struct daemon_opts *opts,
    const struct option *extra, daemon_opt_fn extra_cb, void *arg)
{
	static const struct option common[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"check", no_argument, NULL, 't'},
	    {"debug", no_argument, NULL, 'd'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {"print", no_argument, NULL, 'p'},
	    {"show-secrets", no_argument, NULL, DAEMON_OPT_SHOW_SECRETS},
	    {"dump-grammar", no_argument, NULL, DAEMON_OPT_DUMP_GRAMMAR},
	};
	struct option longopts[DAEMON_MAX_OPTS + 1];
	size_t n = 0;
	int ch;

	for (size_t i = 0; i < sizeof(common) / sizeof(common[0]); i++)
		longopts[n++] = common[i];
	for (size_t i = 0; extra != NULL && extra[i].name != NULL && n < DAEMON_MAX_OPTS; i++)
		longopts[n++] = extra[i];
	memset(&longopts[n], 0, sizeof(longopts[n]));
	memset(opts, 0, sizeof(*opts));
	opts->config_path = DAEMON_DEFAULT_CONFIG;
	while ((ch = getopt_long(argc, argv, "c:tpdhV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': opts->config_path = optarg; break;
		case 't': opts->check_only = true; break;
		case 'p': opts->print = true; break;
		case DAEMON_OPT_SHOW_SECRETS: opts->show_secrets = true; break;
		case DAEMON_OPT_DUMP_GRAMMAR: config_grammar_print(stdout); exit(0);
		case 'd': opts->debug = true; break;
		case 'h': prog_usage(info, false); exit(0);
		case 'V': printf("%s (mxbroker) %s\n", info->name, MXB_VERSION); exit(0);
		default:
			if (ch == '?' || extra_cb == NULL || extra_cb(ch, optarg, arg) == -1) {
				prog_usage(info, true);
				exit(64);
			}
		}
	}
	if (opts->show_secrets && !opts->print) {
		fprintf(stderr, "%s: --show-secrets goes with -p\n", info->name);
		prog_usage(info, true);
		exit(64);
	}
	if (optind != argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", info->name, argv[optind]);
		prog_usage(info, true);
		exit(64);
	}
	log_init(info->name, opts->debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO, false);
}

void
daemon_args(int argc, char **argv, const struct prog_info *info, struct daemon_opts *opts)
{
	daemon_args_ext(argc, argv, info, opts, NULL, NULL, NULL);
}

static void
warn_stderr_cb(void *arg, const char *msg)
{
	fprintf(stderr, "%s: %s\n", (const char *)arg, msg);
}

static void
warn_log_cb(void *arg, const char *msg)
{
	(void)arg;
	log_warnx("%s", msg);
}

/* -t beyond the grammar: the run user, then the files and folders. */
static int
check_environment(const struct prog_info *info, const struct config *cfg)
{
	struct passwd *pw;
	char why[512];
	int rc = 0;

	if (privilege_plan(cfg, geteuid() == 0, &pw, why, sizeof(why)) == -1) {
		int line = config_where(cfg, &cfg->options.user);

		/* Name the `user` statement when there is one to fix. */
		if (line > 0 && pw == NULL)
			fprintf(stderr, "%s: %s:%d: %s\n", info->name,
			    config_where_file(cfg, &cfg->options.user), line, why);
		else
			fprintf(stderr, "%s: %s\n", info->name, why);
		rc = -1;
	}
	if (config_check_env(cfg, info->parts, info->name) == -1)
		rc = -1;
	return rc;
}

struct config *
daemon_load_config(const struct prog_info *info, const struct daemon_opts *opts,
    int (*check)(const struct config *))
{
	char err[1024];
	struct config *cfg = config_load(opts->config_path, err, sizeof(err));
	bool quit = opts->check_only || opts->print;
	int env_rc;

	if (cfg == NULL) {
		fprintf(stderr, "%s: %s\n", info->name, err);
		exit(1);
	}
	/* Both run, so that -t lists every problem it finds. */
	env_rc = opts->check_only ? check_environment(info, cfg) : 0;
	if ((check != NULL && (opts->check_only || !opts->print) && check(cfg) == -1) ||
	    env_rc == -1) {
		config_free(cfg);
		exit(1);
	}
	if (!quit)
		log_init(info->name,
		    opts->debug ? LOG_LEVEL_DEBUG : (enum log_level)cfg->options.log_level,
		    cfg->options.syslog);
	config_warnings(cfg, info->parts, quit ? warn_stderr_cb : warn_log_cb, (void *)info->name);
	if (opts->print)
		config_print(cfg, info->parts, opts->show_secrets, stdout);
	else if (opts->check_only)
		printf("%s: configuration OK\n", opts->config_path);
	if (quit) {
		config_free(cfg);
		exit(fflush(stdout) == 0 ? 0 : 1);
	}
	/* Whatever the daemon creates (queue, Maildir, sockets, pid file) is ours alone. */
	umask(077);
	return cfg;
}

struct signal_ctx {
	struct event_base *base;
	void (*reload_cb)(void *);
	void *arg;
};

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct signal_ctx *ctx = arg;

	(void)what;
	if (sig == SIGHUP) {
		log_info("received SIGHUP: reloading");
		if (ctx->reload_cb != NULL)
			ctx->reload_cb(ctx->arg);
		return;
	}
	log_info("received %s: shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	event_base_loopexit(ctx->base, NULL);
}

int
daemon_signals(struct event_base *base, void (*reload_cb)(void *), void *arg)
{
	/* Static storage: nothing to free, nothing for LeakSanitizer to report. */
	static struct signal_ctx ctx;
	static struct event events[3];
	static const int sigs[] = {SIGTERM, SIGINT, SIGHUP};

	ctx.base = base;
	ctx.reload_cb = reload_cb;
	ctx.arg = arg;
	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		if (evsignal_assign(&events[i], base, sigs[i], signal_cb, &ctx) == -1 ||
		    event_add(&events[i], NULL) == -1) {
			log_warnx("cannot install handler for signal %d", sigs[i]);
			return -1;
		}
	}
	return 0;
}

/* MXB_ALLOW_ROOT=1: the escape hatch for test fixtures and containers. */
static bool
root_allowed(void)
{
	const char *v = getenv(DAEMON_ALLOW_ROOT_ENV);

	return v != NULL && strcmp(v, "1") == 0;
}

/*
 * Descriptors: every session, query and queue file needs one, and the soft
 * limit is often 1024 while the hard one is far higher.  Raise soft to hard
 * so the configured session limits, not EMFILE, decide; when accept() still
 * runs out the servers pause accepting (never spin).
 */
static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
		log_warn("cannot raise the descriptor limit");
	else
		log_debug("descriptor limit raised to %llu", (unsigned long long)rl.rlim_cur);
}

/*
 * The refusals of the privilege model, shared by the drop and -t so both say
 * the same: `user` must exist, and root needs a `user` that is not root
 * (unless MXB_ALLOW_ROOT=1).  0 with *pw the user to switch to (NULL: stay
 * as we are), or -1 with the reason in why.
 */
static int
privilege_plan(const struct config *cfg, bool as_root, struct passwd **pw, char *why, size_t len)
{
	const char *user = cfg->options.user;

	*pw = NULL;
	if (user != NULL && (*pw = getpwnam(user)) == NULL) {
		snprintf(why, len,
		    "options: user '%s' does not exist (create it, e.g. useradd --system %s)", user,
		    user);
		return -1;
	}
	if (!as_root || root_allowed())
		return 0;
	if (user == NULL) {
		snprintf(why, len,
		    "refusing to run as root: set options { user \"NAME\"; } (e.g. user "
		    "\"mxbroker\";) so privileges are dropped after binding, or start the daemon "
		    "as that user");
		return -1;
	}
	if ((*pw)->pw_uid == 0) {
		snprintf(
		    why, len, "refusing to run as root: options { user \"%s\"; } is uid 0", user);
		return -1;
	}
	return 0;
}

int
daemon_drop_privileges(const struct config *cfg)
{
	const char *user = cfg->options.user;
	struct passwd *pw;
	char why[512];
	gid_t gid;

	umask(077);
	raise_nofile();
	if (geteuid() != 0)
		return 0;
	if (privilege_plan(cfg, true, &pw, why, sizeof(why)) == -1) {
		log_warnx("%s", why);
		return -1;
	}
	if (pw == NULL || pw->pw_uid == 0) {
		log_warnx("running as root (" DAEMON_ALLOW_ROOT_ENV "=1): not for production");
		return 0;
	}
	gid = pw->pw_gid;
	if (setgroups(1, &gid) == -1 || setresgid(gid, gid, gid) == -1 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1) {
		log_warn("cannot switch to user '%s'", user);
		return -1;
	}
	if (pw->pw_uid != 0 &&
	    (setuid(0) != -1 || seteuid(0) != -1 ||
	        (gid != 0 && (setgid(0) != -1 || setegid(0) != -1)))) {
		log_warnx("could regain root after switching to '%s'", user);
		return -1;
	}
	log_info("running as user %s (uid %u, gid %u)", user, (unsigned)pw->pw_uid, (unsigned)gid);
	return 0;
}

static char *pidfile_path;

static void
pidfile_remove(void)
{
	if (pidfile_path != NULL)
		unlink(pidfile_path);
}

int
daemon_write_pidfile(const struct config *cfg)
{
	FILE *f;

	if (cfg->options.pid_file == NULL)
		return 0;
	f = fopen(cfg->options.pid_file, "we");
	if (f == NULL) {
		log_warn("pid file %s", cfg->options.pid_file);
		return -1;
	}
	fprintf(f, "%ld\n", (long)getpid());
	if (fclose(f) != 0) {
		log_warn("pid file %s", cfg->options.pid_file);
		return -1;
	}
	pidfile_path = strdup(cfg->options.pid_file);
	atexit(pidfile_remove);
	return 0;
}
