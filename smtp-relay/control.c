/* control.c - the smtp-relayd control socket (server and client side). */
#include "smtp-relay/control.h"

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
#include "smtp-relay/intake.h"
#include "smtp-relay/queue.h"
#include "smtp-relay/smtp_server.h"

#define CONTROL_TIMEOUT_SEC 10
#define CONTROL_REPLY_MAX   (1 << 20)

struct control {
	struct evconnlistener *listener;
	char *path;
	struct queue *queue;
	struct smtp_server *srv;
	control_flush_fn flush;
	void *flush_arg;
};

static void
reply_error(struct json_object *r, const char *error)
{
	json_object_object_add(r, "ok", json_object_new_boolean(false));
	json_object_object_add(r, "error", json_object_new_string(error));
}

static void
do_flush(struct control *c, const char *id, struct json_object *r)
{
	if (id != NULL && !queue_id_valid(id)) {
		reply_error(r, "not a queue ID");
		return;
	}
	if (c->flush == NULL) {
		log_info("control: flush %s requested (no delivery agent runs here)",
		    id != NULL ? id : "of the whole queue");
		json_object_object_add(r, "ok", json_object_new_boolean(true));
		json_object_object_add(r, "scheduled", json_object_new_boolean(false));
		return;
	}
	if (c->flush(id, c->flush_arg) == -1) {
		reply_error(r, errno == ENOENT ? "no such message" : strerror(errno));
		return;
	}
	log_info("control: flush %s", id != NULL ? id : "of the whole queue");
	json_object_object_add(r, "ok", json_object_new_boolean(true));
	json_object_object_add(r, "scheduled", json_object_new_boolean(true));
}

static void
do_remove(struct control *c, const char *id, struct json_object *r)
{
	enum queue_status st;

	if (id == NULL || !queue_id_valid(id)) {
		reply_error(r, "remove needs a queue ID");
		return;
	}
	st = queue_remove(c->queue, id);
	if (st != QUEUE_OK) {
		reply_error(r, queue_strerror(st));
		return;
	}
	log_info("control: %s: removed by the operator", id);
	json_object_object_add(r, "ok", json_object_new_boolean(true));
	json_object_object_add(r, "removed", json_object_new_string(id));
}

/* "pause" / "resume": new SMTP connections get 421 meanwhile; delivery goes on. */
static void
do_pause(struct control *c, bool pause, struct json_object *r)
{
	struct intake *in = smtp_server_intake(c->srv);

	if (intake_is_paused(in) != pause)
		log_info("control: intake %s by the operator", pause ? "paused" : "resumed");
	intake_pause(in, pause);
	json_object_object_add(r, "ok", json_object_new_boolean(true));
	json_object_object_add(r, "paused", json_object_new_boolean(pause));
	intake_status_json(in, r);
}

/* Parse "verb [arg]" and act; the one input boundary of this socket. */
static void
dispatch(struct control *c, char *line, struct json_object *r)
{
	char *arg = strchr(line, ' ');

	if (arg != NULL)
		*arg++ = '\0';
	if (strcmp(line, "flush") == 0)
		do_flush(c, arg, r);
	else if (strcmp(line, "remove") == 0)
		do_remove(c, arg, r);
	else if (strcmp(line, "pause") == 0 && arg == NULL)
		do_pause(c, true, r);
	else if (strcmp(line, "resume") == 0 && arg == NULL)
		do_pause(c, false, r);
	else if (strcmp(line, "stats") == 0 && arg == NULL) {
		json_object_object_add(r, "ok", json_object_new_boolean(true));
		smtp_server_status_json(r, c->srv);
	} else
		reply_error(r, "unknown request");
}

static void
conn_write_cb(struct bufferevent *bev, void *arg)
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
conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct control *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct json_object *r;
	size_t n;
	char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
	const char *text;

	if (line == NULL) {
		if (evbuffer_get_length(in) > CONTROL_LINE_MAX)
			bufferevent_free(bev);
		return;
	}
	r = json_object_new_object();
	if (n > CONTROL_LINE_MAX)
		reply_error(r, "request too long");
	else
		dispatch(c, line, r);
	free(line);
	text = json_object_to_json_string_ext(r, JSON_C_TO_STRING_PLAIN);
	bufferevent_disable(bev, EV_READ);
	bufferevent_setcb(bev, NULL, conn_write_cb, conn_event_cb, c);
	evbuffer_add_printf(bufferevent_get_output(bev), "%s\n", text);
	json_object_put(r);
}

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len, void *arg)
{
	struct timeval tv = {CONTROL_TIMEOUT_SEC, 0};
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

static int
bind_socket(const char *path, int uid, int gid)
{
	struct sockaddr_un sun;
	int fd;
	mode_t old;

	if (unix_address(path, &sun) == -1)
		return -1;
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	unlink(path);
	old = umask(0117);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 || listen(fd, 16) == -1) {
		umask(old);
		close(fd);
		return -1;
	}
	umask(old);
	if (uid != -1 && chown(path, (uid_t)uid, (gid_t)gid) == -1)
		log_warn("control: %s: chown", path);
	return fd;
}

struct control *
control_new(struct event_base *base, const char *path, struct queue *q, struct smtp_server *srv,
    int uid, int gid)
{
	struct control *c = calloc(1, sizeof(*c));
	int fd;

	if (c == NULL || (c->path = strdup(path)) == NULL) {
		free(c);
		log_warnx("control: out of memory");
		return NULL;
	}
	c->queue = q;
	c->srv = srv;
	if ((fd = bind_socket(path, uid, gid)) == -1) {
		log_warn("control: cannot listen on %s", path);
		free(c->path);
		free(c);
		return NULL;
	}
	c->listener = evconnlistener_new(base, accept_cb, c, LEV_OPT_CLOSE_ON_FREE, 0, fd);
	if (c->listener == NULL) {
		log_warnx("control: %s: cannot create the listener", path);
		close(fd);
		control_free(c);
		return NULL;
	}
	if (listener_guard(c->listener, "control") == -1) {
		control_free(c);
		return NULL;
	}
	return c;
}

void
control_free(struct control *c)
{
	if (c == NULL)
		return;
	if (c->listener != NULL) {
		listener_free(c->listener);
		unlink(c->path);
	}
	free(c->path);
	free(c);
}

void
control_set_flush(struct control *c, control_flush_fn fn, void *arg)
{
	c->flush = fn;
	c->flush_arg = arg;
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

struct json_object *
control_call(const char *path, const char *request, int timeout_sec)
{
	char req[CONTROL_LINE_MAX + 2], *buf = NULL;
	size_t len = 0, cap = 0;
	struct json_object *r = NULL;
	int fd, n = snprintf(req, sizeof(req), "%s\n", request);
	ssize_t got;

	if (n < 0 || (size_t)n >= sizeof(req)) {
		errno = EINVAL;
		return NULL;
	}
	if ((fd = connect_socket(path, timeout_sec)) == -1)
		return NULL;
	if (write(fd, req, (size_t)n) != n)
		goto done;
	for (;;) {
		if (len + 4096 + 1 > cap) {
			char *nb = cap + 8192 > CONTROL_REPLY_MAX ? NULL : realloc(buf, cap + 8192);

			if (nb == NULL)
				goto done;
			buf = nb;
			cap += 8192;
		}
		if ((got = read(fd, buf + len, 4096)) <= 0)
			break;
		len += (size_t)got;
	}
	if (got == 0 && buf != NULL) {
		buf[len] = '\0';
		r = json_tokener_parse(buf);
		if (r == NULL || !json_object_is_type(r, json_type_object)) {
			json_object_put(r);
			r = NULL;
			errno = EPROTO;
		}
	}
done:
	free(buf);
	close(fd);
	return r;
}
