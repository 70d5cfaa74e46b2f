/* sdnotify.c - the sd_notify datagram protocol, without libsystemd. */
#include "common/sdnotify.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"

/* A STATUS= line longer than this is cut: systemctl shows one short line. */
#define SDNOTIFY_STATUS_MAX 256
#define SDNOTIFY_MSG_MAX    (SDNOTIFY_STATUS_MAX + 64)

/* Whether a failure has been logged: the manager is gone or never was. */
static bool sdnotify_warned;

/*
 * Fill `sa` from $NOTIFY_SOCKET: an absolute path, or '@' for the
 * abstract namespace.  Returns the address length; 0 when the variable is
 * unset or empty (not supervised); -1 when it is neither form.
 */
static int
sdnotify_addr(struct sockaddr_un *sa)
{
	const char *name = getenv("NOTIFY_SOCKET");
	size_t len;

	if (name == NULL || name[0] == '\0')
		return 0;
	len = strlen(name);
	if ((name[0] != '/' && name[0] != '@') || len >= sizeof(sa->sun_path))
		return -1;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, name, len);
	if (name[0] == '@')
		sa->sun_path[0] = '\0';
	/* An abstract name is exactly len bytes; a path carries its NUL. */
	return (int)(offsetof(struct sockaddr_un, sun_path) + len + (name[0] == '/'));
}

/* One datagram to the manager; -1 with errno. */
static int
sdnotify_sendto(const struct sockaddr_un *sa, int sa_len, const char *msg)
{
	ssize_t sent;
	int fd, saved;

	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	do
		sent = sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (const struct sockaddr *)sa,
		    (socklen_t)sa_len);
	while (sent == -1 && errno == EINTR);
	saved = errno;
	close(fd);
	errno = saved;
	return sent == -1 ? -1 : 0;
}

/* Send msg to the service manager, if there is one; the first failure is logged. */
static void
sdnotify_send(const char *msg)
{
	struct sockaddr_un sa;
	int sa_len = sdnotify_addr(&sa);

	if (sa_len == 0)
		return;
	if (sa_len == -1) {
		if (!sdnotify_warned)
			log_warnx("sdnotify: NOTIFY_SOCKET %s: not an absolute path or @name",
			    getenv("NOTIFY_SOCKET"));
		sdnotify_warned = true;
		return;
	}
	if (sdnotify_sendto(&sa, sa_len, msg) == -1 && !sdnotify_warned) {
		log_warn("sdnotify: %s", getenv("NOTIFY_SOCKET"));
		sdnotify_warned = true;
	}
}

void
sdnotify_ready(void)
{
	char msg[64];

	snprintf(msg, sizeof(msg), "READY=1\nMAINPID=%ld\n", (long)getpid());
	sdnotify_send(msg);
}

void
sdnotify_reloading(void)
{
	char msg[96];

	/* MONOTONIC_USEC lets Type=notify-reload (systemd >= 253) match the reload. */
	snprintf(
	    msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu\n", (unsigned long long)clock_us());
	sdnotify_send(msg);
}

void
sdnotify_status(const char *fmt, ...)
{
	char text[SDNOTIFY_STATUS_MAX], msg[SDNOTIFY_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	/* One line: a newline would start a new KEY=value assignment. */
	text[strcspn(text, "\n")] = '\0';
	snprintf(msg, sizeof(msg), "STATUS=%s\n", text);
	sdnotify_send(msg);
}

void
sdnotify_stopping(void)
{
	sdnotify_send("STOPPING=1\n");
}
