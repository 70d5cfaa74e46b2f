/*
 * log.c - stderr or syslog logging with levels and rate limiting.  Lines on
 * stderr carry an RFC 3339 timestamp (journald, a terminal or a log file
 * has none of its own); syslog stamps its lines itself.
 */
#include "common/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

static const char *log_progname = "mxbroker";
static enum log_level log_level = LOG_LEVEL_INFO;
static bool log_syslog;

static const char *const level_names[] = {"error", "warning", "info", "debug"};

/*
 * May be called again (after a reload or when daemonizing): closing the
 * syslog connection only when leaving syslog keeps LOG_NDELAY's socket open
 * across re-initialisation, so a chroot or dropped privileges later do not
 * cut us off from /dev/log.
 */
void
log_init(const char *progname, enum log_level level, bool use_syslog)
{
	if (log_syslog && !use_syslog)
		closelog();
	log_progname = progname;
	log_level = level;
	log_syslog = use_syslog;
	if (use_syslog)
		openlog(progname, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

/* The index of `name` in level_names is its enum log_level value; -1 if unknown. */
int
log_level_parse(const char *name)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcmp(name, level_names[i]) == 0)
			return (int)i;
	return -1;
}

/* For callers that skip building an expensive debug message. */
enum log_level
log_get_level(void)
{
	return log_level;
}

/*
 * Local time with milliseconds and the numeric UTC offset (RFC 3339), so
 * lines from several hosts and time zones sort and compare; tm_gmtoff
 * (a glibc/BSD extension) gives the offset in force at that instant,
 * daylight saving included, which the global `timezone` would not.
 */
int
log_timestamp(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	long off;
	char date[32];

	if (clock_gettime(CLOCK_REALTIME, &ts) == -1 || localtime_r(&ts.tv_sec, &tm) == NULL ||
	    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		return -1;
	off = tm.tm_gmtoff / 60;
	snprintf(buf, len, "%s.%03ld%c%02ld:%02ld", date, ts.tv_nsec / 1000000L,
	    off < 0 ? '-' : '+', labs(off) / 60, labs(off) % 60);
	return 0;
}

/*
 * The one writer every level goes through.  errnum is captured by the
 * caller before anything here can change errno.  A message is cut at 2 KiB
 * rather than allocated: logging must work when memory is what ran out.
 */
static void __attribute__((format(printf, 3, 0)))
log_vwrite(enum log_level level, int errnum, const char *fmt, va_list ap)
{
	static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
	char msg[2048], stamp[LOG_TIMESTAMP_MAX];
	int n;

	if (level > log_level)
		return;
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n < 0)
		return;
	if (errnum != 0 && (size_t)n < sizeof(msg))
		snprintf(msg + n, sizeof(msg) - (size_t)n, ": %s", strerror(errnum));
	if (log_syslog) {
		syslog(prio[level], "%s", msg);
		return;
	}
	if (log_timestamp(stamp, sizeof(stamp)) == -1)
		snprintf(stamp, sizeof(stamp), "-");
	/* One call per line: lines from several threads do not interleave. */
	fprintf(stderr, "%s %s: %s%s\n", stamp, log_progname,
	    level == LOG_LEVEL_DEBUG ? "debug: " : "", msg);
}

#define LOG_BODY(level, errnum)                                                                    \
	do {                                                                                       \
		va_list ap;                                                                        \
		va_start(ap, fmt);                                                                 \
		log_vwrite((level), (errnum), fmt, ap);                                            \
		va_end(ap);                                                                        \
	} while (0)

/* log_warn and fatal save errno first: formatting the message may clobber it. */
void
log_warn(const char *fmt, ...)
{
	int e = errno;
	LOG_BODY(LOG_LEVEL_WARN, e);
	errno = e;
}
void
log_warnx(const char *fmt, ...)
{
	LOG_BODY(LOG_LEVEL_WARN, 0);
}
void
log_err(const char *fmt, ...)
{
	LOG_BODY(LOG_LEVEL_ERR, 0);
}
void
log_info(const char *fmt, ...)
{
	LOG_BODY(LOG_LEVEL_INFO, 0);
}
void
log_debug(const char *fmt, ...)
{
	LOG_BODY(LOG_LEVEL_DEBUG, 0);
}

/* Startup only (style guide): library code returns errors instead. */
void
fatal(const char *fmt, ...)
{
	int e = errno;
	LOG_BODY(LOG_LEVEL_ERR, e);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	LOG_BODY(LOG_LEVEL_ERR, 0);
	exit(1);
}

/*
 * Fixed windows instead of a token bucket: at most `burst` lines per
 * `interval` seconds, and the count of what was dropped is reported when
 * the next window opens (so a flood is visible without flooding).  Wall
 * time() is enough at one-second resolution; a step of the clock only ends
 * a window early or late.  Not thread-safe: one struct per thread or caller.
 */
void
log_warnx_rl(struct log_ratelimit *rl, const char *fmt, ...)
{
	long long now = (long long)time(NULL);

	if (now - rl->window_start >= (long long)rl->interval) {
		if (rl->suppressed > 0)
			log_warnx("%u similar messages suppressed", rl->suppressed);
		rl->window_start = now;
		rl->printed = 0;
		rl->suppressed = 0;
	}
	if (rl->printed >= rl->burst) {
		rl->suppressed++;
		return;
	}
	rl->printed++;
	LOG_BODY(LOG_LEVEL_WARN, 0);
}
