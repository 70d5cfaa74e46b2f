/* ctlsock.c - one-request, one-reply unix control sockets (ctlsock.h). */
#include "common/ctlsock.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <json-c/json.h>

#include "common/listener.h"
#include "common/log.h"

#define CTLSOCK_TIMEOUT_SEC 10 /* a client that sends nothing is dropped */
#define CTLSOCK_BACKLOG     16

struct ctlsock {
	struct evconnlistener *listener;
	char *path;
	char *what;
	ctlsock_handler_fn fn;
	void *arg;
};

static void
conn_done_cb(struct bufferevent *bev, void *arg)
{
	(void)arg;
	bufferevent_free(bev);
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)what;
	(void)arg;
	bufferevent_free(bev);
}

static void
peer_of(struct bufferevent *bev, struct ctlsock_peer *peer)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	peer->pid = 0;
	peer->uid = (uid_t)-1;
	peer->gid = (gid_t)-1;
	if (getsockopt(bufferevent_getfd(bev), SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0) {
		peer->pid = cr.pid;
		peer->uid = cr.uid;
		peer->gid = cr.gid;
	}
}

/* One line in, one JSON line out, then close once it is written. */
static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct ctlsock *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct ctlsock_peer peer;
	struct json_object *r;
	size_t n;
	char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);

	if (line == NULL) {
		if (evbuffer_get_length(in) > CTLSOCK_LINE_MAX)
			bufferevent_free(bev);
		return;
	}
	r = json_object_new_object();
	if (n > CTLSOCK_LINE_MAX) {
		json_object_object_add(r, "ok", json_object_new_boolean(false));
		json_object_object_add(r, "error", json_object_new_string("request too long"));
	} else {
		peer_of(bev, &peer);
		c->fn(line, &peer, r, c->arg);
	}
	free(line);
	bufferevent_disable(bev, EV_READ);
	bufferevent_setcb(bev, NULL, conn_done_cb, conn_event_cb, c);
	evbuffer_add_printf(bufferevent_get_output(bev), "%s\n",
	    json_object_to_json_string_ext(
	        r, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(r);
}

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len, void *arg)
{
	struct timeval tv = {CTLSOCK_TIMEOUT_SEC, 0};
	struct bufferevent *bev;

	(void)sa;
	(void)len;
	bev = bufferevent_socket_new(evconnlistener_get_base(l), fd, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		close(fd);
		return;
	}
	bufferevent_setcb(bev, conn_read_cb, NULL, conn_event_cb, arg);
	bufferevent_set_timeouts(bev, &tv, &tv);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static int
unix_address(const char *path, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sun->sun_path, path, strlen(path) + 1);
	return 0;
}

/* Bind with mode 0660 (umask 0117 around bind), then hand it to uid:gid. */
static int
bind_socket(const char *path, int uid, int gid)
{
	struct sockaddr_un sun;
	mode_t old;
	int fd, saved;

	if (unix_address(path, &sun) == -1)
		return -1;
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	unlink(path);
	old = umask(0117);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    listen(fd, CTLSOCK_BACKLOG) == -1) {
		saved = errno;
		umask(old);
		close(fd);
		errno = saved;
		return -1;
	}
	umask(old);
	if (uid != -1 && chown(path, (uid_t)uid, (gid_t)gid) == -1)
		log_warn("%s: %s: chown", "control", path);
	return fd;
}

struct ctlsock *
ctlsock_new(struct event_base *base, const char *path, int uid, int gid, ctlsock_handler_fn fn,
    void *arg, const char *what)
{
	struct ctlsock *c = calloc(1, sizeof(*c));
	int fd;

	if (c == NULL || (c->path = strdup(path)) == NULL || (c->what = strdup(what)) == NULL) {
		if (c != NULL)
			free(c->path);
		free(c);
		log_warnx("%s: out of memory", what);
		return NULL;
	}
	c->fn = fn;
	c->arg = arg;
	if ((fd = bind_socket(path, uid, gid)) == -1) {
		log_warn("%s: cannot listen on %s", what, path);
		ctlsock_free(c);
		return NULL;
	}
	c->listener = evconnlistener_new(base, accept_cb, c, LEV_OPT_CLOSE_ON_FREE, 0, fd);
	if (c->listener == NULL) {
		log_warnx("%s: %s: cannot create the listener", what, path);
		close(fd);
		unlink(path);
		ctlsock_free(c);
		return NULL;
	}
	if (listener_guard(c->listener, c->what) == -1) {
		ctlsock_free(c);
		return NULL;
	}
	return c;
}

const char *
ctlsock_path(const struct ctlsock *c)
{
	return c->path;
}

void
ctlsock_free(struct ctlsock *c)
{
	if (c == NULL)
		return;
	if (c->listener != NULL) {
		listener_free(c->listener);
		unlink(c->path);
	}
	free(c->what);
	free(c->path);
	free(c);
}

/* ---- client ---- */

static int
connect_socket(const char *path, int timeout_sec)
{
	struct timeval tv = {timeout_sec, 0};
	struct sockaddr_un sun;
	int fd, saved;

	if (unix_address(path, &sun) == -1)
		return -1;
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* Everything the daemon sends until it closes; NULL with errno. */
static char *
read_reply(int fd)
{
	char *buf = NULL, *nb;
	size_t len = 0, cap = 0;
	ssize_t got;

	for (;;) {
		if (len + 4096 + 1 > cap) {
			if (cap + 8192 > CTLSOCK_REPLY_MAX ||
			    (nb = realloc(buf, cap + 8192)) == NULL) {
				free(buf);
				errno = EPROTO;
				return NULL;
			}
			buf = nb;
			cap += 8192;
		}
		got = read(fd, buf + len, 4096);
		if (got == 0)
			break;
		if (got < 0) {
			free(buf);
			return NULL;
		}
		len += (size_t)got;
	}
	buf[len] = '\0';
	return buf;
}

struct json_object *
ctlsock_call(const char *path, const char *request, int timeout_sec)
{
	char req[CTLSOCK_LINE_MAX + 2], *text;
	struct json_object *r = NULL;
	int fd, n = snprintf(req, sizeof(req), "%s\n", request);

	if (n < 0 || (size_t)n > CTLSOCK_LINE_MAX + 1 || strchr(request, '\n') != NULL) {
		errno = EINVAL;
		return NULL;
	}
	if ((fd = connect_socket(path, timeout_sec)) == -1)
		return NULL;
	if (write(fd, req, (size_t)n) != n) {
		close(fd);
		return NULL;
	}
	text = read_reply(fd);
	close(fd);
	if (text == NULL)
		return NULL;
	r = json_tokener_parse(text);
	free(text);
	if (r == NULL || !json_object_is_type(r, json_type_object)) {
		json_object_put(r);
		errno = EPROTO;
		return NULL;
	}
	return r;
}
