/* control.c - the smtp-relayd control socket (server and client side). */
#include "smtp-relay/control.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/ctlsock.h"
#include "common/log.h"
#include "smtp-relay/intake.h"
#include "smtp-relay/queue.h"
#include "smtp-relay/smtp_server.h"

struct control {
	struct ctlsock *sock;
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

/* ctlsock_handler_fn: one request line, one reply object. */
static void
handle(char *line, const struct ctlsock_peer *peer, struct json_object *r, void *arg)
{
	(void)peer;
	if (strlen(line) > CONTROL_LINE_MAX)
		reply_error(r, "request too long");
	else
		dispatch(arg, line, r);
}

struct control *
control_new(struct event_base *base, const char *path, struct queue *q, struct smtp_server *srv,
    int uid, int gid)
{
	struct control *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		log_warnx("control: out of memory");
		return NULL;
	}
	c->queue = q;
	c->srv = srv;
	if ((c->sock = ctlsock_new(base, path, uid, gid, handle, c, "control")) == NULL) {
		free(c);
		return NULL;
	}
	return c;
}

void
control_free(struct control *c)
{
	if (c == NULL)
		return;
	ctlsock_free(c->sock);
	free(c);
}

void
control_set_flush(struct control *c, control_flush_fn fn, void *arg)
{
	c->flush = fn;
	c->flush_arg = arg;
}

struct json_object *
control_call(const char *path, const char *request, int timeout_sec)
{
	return ctlsock_call(path, request, timeout_sec);
}
