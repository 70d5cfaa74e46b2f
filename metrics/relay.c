/* relay.c - fetch and parse the relay's session counts (see relay.h). */
#include "metrics/relay.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <json-c/json.h>

#include "common/log.h"
#include "metrics/proto.h"

struct relay_probe {
	struct event_base *base;
	struct evhttp_connection *conn;
	char host[ADDR_STRLEN];
	bool busy;
	enum evhttp_request_error last_error;
	bool have_error;
	relay_done_cb done;
	void *arg;
};

static int
get_count(struct json_object *sessions, const char *name, unsigned *out)
{
	struct json_object *v;
	int64_t n;

	if (!json_object_object_get_ex(sessions, name, &v) ||
	    !json_object_is_type(v, json_type_int))
		return -1;
	n = json_object_get_int64(v);
	if (n < 0 || n > INT32_MAX)
		return -1;
	*out = (unsigned)n;
	return 0;
}

/*
 * Copy the string member `name` of o as printable ASCII (anything else
 * becomes '?'), cut to fit.  Absent or null: "".  -1 when not a string.
 */
static int
get_text(struct json_object *o, const char *name, char *out, size_t len)
{
	struct json_object *v;
	const char *text;
	size_t i;

	out[0] = '\0';
	if (!json_object_object_get_ex(o, name, &v) || v == NULL)
		return 0;
	if (!json_object_is_type(v, json_type_string))
		return -1;
	text = json_object_get_string(v);
	for (i = 0; text[i] != '\0' && i + 1 < len; i++)
		out[i] = text[i] >= 0x20 && text[i] < 0x7f ? text[i] : '?';
	out[i] = '\0';
	return 0;
}

/* The flag for accepting.reason; a reason we do not know still means "no mail". */
static uint16_t
reason_flag(const char *reason)
{
	static const struct {
		const char *reason;
		uint16_t flag;
	} map[] = {
	    {RELAY_REASON_FULL, METRIC_F_RELAY_FULL},
	    {RELAY_REASON_QUEUE, METRIC_F_QUEUE_FAIL},
	    {RELAY_REASON_DISK, METRIC_F_DISK_RESERVE},
	    /* queue-max-messages reached: out of queue room, as the disk reserve */
	    {"queue-full", METRIC_F_DISK_RESERVE},
	    {RELAY_REASON_PAUSED, METRIC_F_PAUSED},
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(reason, map[i].reason) == 0)
			return map[i].flag;
	return METRIC_F_PAUSED;
}

/* The optional "accepting" object: absent = accepting.  0 or -1 (r->error). */
static int
parse_accepting(struct json_object *root, struct relay_result *r)
{
	struct json_object *acc, *ok;

	if (!json_object_object_get_ex(root, "accepting", &acc))
		return 0;
	if (!json_object_is_type(acc, json_type_object) ||
	    !json_object_object_get_ex(acc, "ok", &ok) ||
	    !json_object_is_type(ok, json_type_boolean) ||
	    get_text(acc, "reason", r->reason, sizeof(r->reason)) == -1 ||
	    get_text(acc, "detail", r->detail, sizeof(r->detail)) == -1) {
		snprintf(r->error, sizeof(r->error),
		    "\"accepting\" is not {\"ok\": BOOLEAN, \"reason\": STRING, \"detail\": "
		    "STRING}");
		return -1;
	}
	if (json_object_get_boolean(ok)) {
		r->reason[0] = r->detail[0] = '\0';
		return 0;
	}
	r->unavailable = reason_flag(r->reason);
	return 0;
}

/* Check the parsed document; 0, or -1 with r->error set. */
static int
validate(struct json_object *root, struct relay_result *r)
{
	struct json_object *sessions;

	if (!json_object_object_get_ex(root, "sessions", &sessions) ||
	    !json_object_is_type(sessions, json_type_object)) {
		snprintf(r->error, sizeof(r->error), "status has no \"sessions\" object");
		return -1;
	}
	if (get_count(sessions, "open", &r->open) == -1 ||
	    get_count(sessions, "max", &r->max) == -1) {
		snprintf(
		    r->error, sizeof(r->error), "\"sessions\" lacks integer \"open\" and \"max\"");
		return -1;
	}
	if (parse_accepting(root, r) == -1)
		return -1;
	/* An older relay says nothing, but answers 421 at its limit all the same. */
	if (r->max > 0 && r->open >= r->max)
		r->unavailable |= METRIC_F_RELAY_FULL;
	return 0;
}

int
relay_status_parse(const char *body, size_t len, struct relay_result *r)
{
	struct json_tokener *tok;
	struct json_object *root;
	int rc = -1;

	memset(r, 0, sizeof(*r));
	if (len > RELAY_STATUS_MAX) {
		snprintf(r->error, sizeof(r->error), "status document too large");
		return -1;
	}
	if ((tok = json_tokener_new()) == NULL) {
		snprintf(r->error, sizeof(r->error), "out of memory");
		return -1;
	}
	root = json_tokener_parse_ex(tok, body, (int)len);
	if (root == NULL || json_tokener_get_error(tok) != json_tokener_success ||
	    !json_object_is_type(root, json_type_object))
		snprintf(r->error, sizeof(r->error), "status is not a JSON object");
	else
		rc = validate(root, r);
	if (rc == 0) {
		r->ok = true;
	} else {
		r->open = r->max = 0;
		r->unavailable = 0;
		r->reason[0] = r->detail[0] = '\0';
	}
	json_object_put(root);
	json_tokener_free(tok);
	return rc;
}

static const char *
request_error_str(enum evhttp_request_error e)
{
	switch (e) {
	case EVREQ_HTTP_TIMEOUT: return "timed out";
	case EVREQ_HTTP_EOF: return "connection closed";
	case EVREQ_HTTP_INVALID_HEADER: return "invalid HTTP response";
	case EVREQ_HTTP_BUFFER_ERROR: return "connection refused or reset";
	case EVREQ_HTTP_REQUEST_CANCEL: return "cancelled";
	case EVREQ_HTTP_DATA_TOO_LONG: return "response too long";
	}
	return "request failed";
}

static void
error_cb(enum evhttp_request_error e, void *arg)
{
	struct relay_probe *rp = arg;

	rp->last_error = e;
	rp->have_error = true;
}

static void
response_cb(struct evhttp_request *req, void *arg)
{
	struct relay_probe *rp = arg;
	struct relay_result r;
	int code = req != NULL ? evhttp_request_get_response_code(req) : 0;

	memset(&r, 0, sizeof(r));
	if (code == 0) {
		snprintf(r.error, sizeof(r.error), "%s",
		    rp->have_error ? request_error_str(rp->last_error)
		                   : "connection failed or no answer");
		r.timed_out = rp->have_error && rp->last_error == EVREQ_HTTP_TIMEOUT;
	} else if (code != HTTP_OK) {
		snprintf(r.error, sizeof(r.error), "HTTP status %d", code);
	} else {
		struct evbuffer *in = evhttp_request_get_input_buffer(req);
		size_t len = evbuffer_get_length(in);
		const char *body = (const char *)evbuffer_pullup(in, -1);

		(void)relay_status_parse(body != NULL ? body : "", len, &r);
	}
	rp->busy = false;
	rp->done(&r, rp->arg);
}

struct relay_probe *
relay_probe_new(struct event_base *base, const struct addr *where)
{
	struct relay_probe *rp = calloc(1, sizeof(*rp));
	char host[ADDR_STRLEN];

	if (rp == NULL) {
		log_warnx("relay-status: out of memory");
		return NULL;
	}
	rp->base = base;
	addr_str(where, rp->host, sizeof(rp->host));
	addr_host_str(where, host, sizeof(host));
	rp->conn = evhttp_connection_base_new(base, NULL, host, addr_port(where));
	if (rp->conn == NULL) {
		log_warnx("relay-status: %s: cannot create an HTTP client", rp->host);
		free(rp);
		return NULL;
	}
	evhttp_connection_set_retries(rp->conn, 0);
	evhttp_connection_set_max_body_size(rp->conn, RELAY_STATUS_MAX);
	return rp;
}

int
relay_probe_start(struct relay_probe *rp, unsigned timeout_s, relay_done_cb done, void *arg)
{
	struct evhttp_request *req;

	if (rp->busy)
		return -1;
	rp->done = done;
	rp->arg = arg;
	rp->have_error = false;
	evhttp_connection_set_timeout(rp->conn, (int)timeout_s);
	req = evhttp_request_new(response_cb, rp);
	if (req == NULL)
		return -1;
	evhttp_request_set_error_cb(req, error_cb);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Host", rp->host);
	if (evhttp_make_request(rp->conn, req, EVHTTP_REQ_GET, "/status") == -1)
		return -1;
	rp->busy = true;
	return 0;
}

bool
relay_probe_busy(const struct relay_probe *rp)
{
	return rp->busy;
}

void
relay_probe_free(struct relay_probe *rp)
{
	if (rp == NULL)
		return;
	evhttp_connection_free(rp->conn);
	free(rp);
}
