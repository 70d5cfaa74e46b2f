/* drain.c - drain state in a file (see drain.h). */
#include "metrics/drain.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/fileio.h"
#include "metrics/sysstat.h"

int
drain_set(const char *path, const char *reason)
{
	char line[DRAIN_REASON_MAX + 128], when[32];
	const struct passwd *pw = getpwuid(getuid());
	time_t now = time(NULL);
	struct tm tm;

	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
	snprintf(line, sizeof(line), "%.*s (by %s at %s)\n", DRAIN_REASON_MAX,
	    reason != NULL && reason[0] != '\0' ? reason : "drained",
	    pw != NULL ? pw->pw_name : "?", when);
	return file_write_atomic(path, line, strlen(line), 0644);
}

int
drain_clear(const char *path)
{
	if (unlink(path) == -1 && errno != ENOENT)
		return -1;
	return 0;
}

bool
drain_check(const char *path, char *reason, size_t len)
{
	char buf[DRAIN_REASON_MAX + 128];
	struct stat st;
	size_t i;

	if (stat(path, &st) == -1)
		return false;
	if (reason == NULL || len == 0)
		return true;
	reason[0] = '\0';
	if (file_read_buf(path, buf, sizeof(buf)) == -1)
		return true; /* too long or unreadable: still drained */
	for (i = 0; buf[i] != '\0' && buf[i] != '\n' && i + 1 < len; i++)
		reason[i] = (buf[i] >= 0x20 && buf[i] != 0x7f) ? buf[i] : '?';
	reason[i] = '\0';
	return true;
}
