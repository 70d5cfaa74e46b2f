/* log.h - logging for every mxbroker program: stderr by default, or syslog. */
#ifndef MXB_LOG_H
#define MXB_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level {
	LOG_LEVEL_ERR = 0,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

/* "2026-12-01T22:15:03.123+00:00" plus the terminating NUL. */
#define LOG_TIMESTAMP_MAX 30

/*
 * Lines on stderr are "<RFC 3339 timestamp> <progname>: <message>", the
 * time local with milliseconds and the UTC offset; syslog lines are left to
 * syslog's own stamp.
 */

/*
 * Set the program name, the most verbose level written, and the sink
 * (syslog with LOG_DAEMON when use_syslog, else stderr, one line per
 * message).  May be called again, e.g. after the configuration is read.
 */
void log_init(const char *progname, enum log_level level, bool use_syslog);

/* Parse "error", "warning", "info" or "debug"; -1 when unknown. */
int log_level_parse(const char *name);

enum log_level log_get_level(void);

/*
 * The current time as RFC 3339 with milliseconds and offset
 * ("2026-12-01T22:15:03.123+01:00") into buf (LOG_TIMESTAMP_MAX octets
 * suffice); 0, or -1 when the clock cannot be read.  Thread-safe.
 */
int log_timestamp(char *buf, size_t len);

/* log_warn appends ": strerror(errno)"; log_warnx does not. */
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Startup only: log at error level and exit(1).  fatal appends strerror. */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/*
 * A rate limit for per-packet messages: at most `burst` messages per
 * `interval` seconds; the first message after a quiet period reports how
 * many were suppressed.  Zero-initialise with LOG_RATELIMIT_INIT(n, s).
 * Not thread-safe: use one per thread or accept the occasional extra line.
 */
struct log_ratelimit {
	unsigned interval;
	unsigned burst;
	long long window_start;
	unsigned printed;
	unsigned suppressed;
};
#define LOG_RATELIMIT_INIT(burst_, interval_)                                                      \
	{                                                                                          \
		(interval_), (burst_), 0, 0, 0                                                     \
	}

void log_warnx_rl(struct log_ratelimit *rl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
