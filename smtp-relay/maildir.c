/* maildir.c - local delivery: tmp/ -> new/ with fsync, one file per message. */
#include "smtp-relay/maildir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "common/fileio.h"
#include "common/log.h"

int
maildir_user(const char *local, char *out, size_t outlen)
{
	size_t n = strlen(local);

	if (n == 0 || n > MAILDIR_USER_MAX || n >= outlen || local[0] == '.')
		return -1;
	for (size_t i = 0; i < n; i++) {
		char ch = local[i];

		if (ch <= 0x20 || ch >= 0x7f || ch == '/' || ch == '"' || ch == '\\')
			return -1;
		out[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
	}
	out[n] = '\0';
	return 0;
}

static int
mkdir_at(int dirfd, const char *name)
{
	if (mkdirat(dirfd, name, 0700) == -1 && errno != EEXIST)
		return -1;
	return 0;
}

/* Open <root>/<user>, creating it with tmp/, new/ and cur/ when missing. */
static int
open_box(const char *root, const char *user)
{
	int rootfd, fd = -1;

	if ((rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	if (mkdir_at(rootfd, user) == 0 &&
	    (fd = openat(rootfd, user, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) != -1 &&
	    (mkdir_at(fd, "tmp") == -1 || mkdir_at(fd, "new") == -1 || mkdir_at(fd, "cur") == -1)) {
		int e = errno;

		close(fd);
		fd = -1;
		errno = e;
	}
	close(rootfd);
	return fd;
}

/* The headers, then the content with CRLF turned into LF, in big writes. */
static int
write_message(int fd, const char *sender, const char *rcpt, const char *content, size_t len)
{
	char head[1024];
	int n = snprintf(head, sizeof(head), "Return-Path: <%s>\nDelivered-To: %s\n", sender, rcpt);
	size_t start = 0;

	if (n < 0 || (size_t)n >= sizeof(head) || file_write_all(fd, head, (size_t)n) == -1)
		return -1;
	for (size_t i = 0; i + 1 < len; i++) {
		if (content[i] != '\r' || content[i + 1] != '\n')
			continue;
		if (file_write_all(fd, content + start, i - start) == -1)
			return -1;
		start = i + 1;
	}
	return file_write_all(fd, content + start, len - start);
}

/* "<sec>.M<usec>P<pid>Q<n>.<host>": unique within this host (Maildir spec). */
static void
unique_name(char *buf, size_t len)
{
	static atomic_uint seq;
	struct timeval tv;
	char host[256];

	gettimeofday(&tv, NULL);
	if (gethostname(host, sizeof(host)) == -1)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	for (char *p = host; *p != '\0'; p++)
		if (*p == '/' || *p == ':')
			*p = '_';
	snprintf(buf, len, "%lld.M%ldP%ldQ%u.%s", (long long)tv.tv_sec, (long)tv.tv_usec,
	    (long)getpid(), atomic_fetch_add(&seq, 1) + 1, host);
}

int
maildir_deliver(const char *root, const char *user, const char *sender, const char *rcpt,
    const char *content, size_t len)
{
	char name[400], tmp[420], dst[420];
	int box, fd = -1, newfd = -1, rc = -1, e = 0;

	if ((box = open_box(root, user)) == -1)
		return -1;
	unique_name(name, sizeof(name));
	snprintf(tmp, sizeof(tmp), "tmp/%s", name);
	snprintf(dst, sizeof(dst), "new/%s", name);
	if ((fd = openat(box, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) == -1)
		goto done;
	if (write_message(fd, sender, rcpt, content, len) == -1 || fsync(fd) == -1 ||
	    linkat(box, tmp, box, dst, 0) == -1) {
		e = errno;
		unlinkat(box, tmp, 0);
		goto done;
	}
	unlinkat(box, tmp, 0);
	if ((newfd = openat(box, "new", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 ||
	    fsync(newfd) == -1) {
		e = errno;
		unlinkat(box, dst, 0);
		goto done;
	}
	rc = 0;
done:
	if (rc == -1 && e == 0)
		e = errno;
	if (fd != -1)
		close(fd);
	if (newfd != -1)
		close(newfd);
	close(box);
	errno = e;
	return rc;
}

int
maildir_prepare(const char *root, int uid, int gid)
{
	if (mkdir(root, 0700) == -1 && errno != EEXIST) {
		log_warn("maildir: %s: mkdir", root);
		return -1;
	}
	if (uid != -1 && chown(root, (uid_t)uid, (gid_t)gid) == -1) {
		log_warn("maildir: %s: chown", root);
		return -1;
	}
	return 0;
}
