/* drain.c - drain state in a file (see drain.h). */
#include "metrics/drain.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/fileio.h"
#include "metrics/sysstat.h"

static int
write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, buf, len);

		if (w == -1 && errno == EINTR)
			continue;
		if (w == -1)
			return -1;
		buf += w;
		len -= (size_t)w;
	}
	return 0;
}

int
drain_set(const char *path, const char *reason)
{
	char tmp[4096], line[DRAIN_REASON_MAX + 128], when[32];
	const struct passwd *pw = getpwuid(getuid());
	time_t now = time(NULL);
	struct tm tm;
	int fd, saved;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
	snprintf(line, sizeof(line), "%.*s (by %s at %s)\n", DRAIN_REASON_MAX,
	    reason != NULL && reason[0] != '\0' ? reason : "drained",
	    pw != NULL ? pw->pw_name : "?", when);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd == -1)
		return -1;
	if (write_all(fd, line, strlen(line)) == -1 || fsync(fd) == -1) {
		saved = errno;
		close(fd);
		unlink(tmp);
		errno = saved;
		return -1;
	}
	if (close(fd) == -1 || rename(tmp, path) == -1) {
		saved = errno;
		unlink(tmp);
		errno = saved;
		return -1;
	}
	return 0;
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
