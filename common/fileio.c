/* fileio.c - reading small whole files. */
#include "common/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Read from fd until EOF or `len` bytes; -1 with errno on error. */
static long
read_fd(int fd, char *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t r = read(fd, buf + got, len - got);

		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (long)got;
}

long
file_read_buf(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	long got;
	int saved;

	if (fd == -1)
		return -1;
	got = len > 0 ? read_fd(fd, buf, len - 1) : -1;
	saved = errno;
	close(fd);
	if (got == -1) {
		errno = len > 0 ? saved : EINVAL;
		return -1;
	}
	if ((size_t)got + 1 >= len) {
		errno = EFBIG;
		return -1;
	}
	buf[got] = '\0';
	return got;
}

char *
file_read_all(const char *path, size_t max, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK), saved;
	struct stat st;
	char *buf = NULL;
	long got;

	if (fd == -1)
		return NULL;
	if (fstat(fd, &st) == -1)
		goto fail;
	if (!S_ISREG(st.st_mode)) {
		errno = EINVAL;
		goto fail;
	}
	if ((size_t)st.st_size > max) {
		errno = EFBIG;
		goto fail;
	}
	/* One byte more than the size tells a file that grew while read. */
	buf = malloc((size_t)st.st_size + 2);
	if (buf == NULL)
		goto fail;
	got = read_fd(fd, buf, (size_t)st.st_size + 1);
	if (got == -1)
		goto fail;
	if ((size_t)got > max) {
		errno = EFBIG;
		goto fail;
	}
	close(fd);
	buf[got] = '\0';
	*len = (size_t)got;
	return buf;
fail:
	saved = errno;
	free(buf);
	close(fd);
	errno = saved;
	return NULL;
}

int
file_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* fsync the folder holding path, so that a rename into it is durable. */
static int
sync_parent(const char *path)
{
	char copy[PATH_MAX];
	int fd, rc, saved;

	if (snprintf(copy, sizeof(copy), "%s", path) >= (int)sizeof(copy)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1)
		return -1;
	rc = fsync(fd);
	saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

int
file_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	char tmp[PATH_MAX];
	int fd, saved;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd == -1)
		return -1;
	if (file_write_all(fd, data, len) == -1 || fsync(fd) == -1) {
		saved = errno;
		close(fd);
		goto fail;
	}
	if (close(fd) == -1 || rename(tmp, path) == -1) {
		saved = errno;
		goto fail;
	}
	return sync_parent(path);
fail:
	unlink(tmp);
	errno = saved;
	return -1;
}
