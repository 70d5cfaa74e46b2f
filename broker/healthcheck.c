/* healthcheck.c - TCP connect and SMTP 220 banner checks on bufferevents. */
#include "broker/healthcheck.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "common/addr.h"

#define BANNER_MAX 1024 /* longest banner line we read */

struct healthcheck {
	struct event_base *base;
	struct bufferevent *bev;
	enum config_health kind;
	healthcheck_cb cb;
	void *arg;
};

struct healthcheck *
healthcheck_new(struct event_base *base, healthcheck_cb cb, void *arg)
{
	struct healthcheck *hc = calloc(1, sizeof(*hc));

	if (hc == NULL)
		return NULL;
	hc->base = base;
	hc->cb = cb;
	hc->arg = arg;
	return hc;
}

static void
stop(struct healthcheck *hc)
{
	if (hc->bev != NULL)
		bufferevent_free(hc->bev);
	hc->bev = NULL;
}

/* End the check and report; the callback may start the next one. */
static void
finish(struct healthcheck *hc, bool ok, const char *why)
{
	char copy[HEALTHCHECK_WHY_LEN];

	snprintf(copy, sizeof(copy), "%s", why);
	if (ok && hc->kind == CONFIG_HEALTH_SMTP && hc->bev != NULL)
		bufferevent_write(hc->bev, "QUIT\r\n", 6); /* best effort */
	stop(hc);
	hc->cb(ok, copy, hc->arg);
}

static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct healthcheck *hc = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	char why[HEALTHCHECK_WHY_LEN];
	size_t len;
	char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);

	if (line == NULL) {
		if (evbuffer_get_length(in) > BANNER_MAX)
			finish(hc, false, "banner line too long");
		return;
	}
	/* "220 " or "220-" (a multi-line greeting) both announce service. */
	if (len >= 3 && strncmp(line, "220", 3) == 0 &&
	    (len == 3 || line[3] == ' ' || line[3] == '-')) {
		free(line);
		finish(hc, true, "");
		return;
	}
	snprintf(why, sizeof(why), "banner '%.60s'", line);
	free(line);
	finish(hc, false, why);
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct healthcheck *hc = arg;
	char why[HEALTHCHECK_WHY_LEN];

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		if (hc->kind == CONFIG_HEALTH_TCP)
			finish(hc, true, "");
		return;
	}
	if (what & BEV_EVENT_TIMEOUT)
		finish(hc, false, "timeout");
	else if (what & BEV_EVENT_EOF)
		finish(hc, false, "closed before the banner");
	else {
		snprintf(why, sizeof(why), "connect: %s",
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		finish(hc, false, why);
	}
}

int
healthcheck_start(
    struct healthcheck *hc, enum config_health kind, const struct addr *target, unsigned timeout_ms)
{
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};

	stop(hc);
	hc->kind = kind;
	hc->bev =
	    bufferevent_socket_new(hc->base, -1, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (hc->bev == NULL) {
		finish(hc, false, "out of memory");
		return -1;
	}
	bufferevent_setcb(hc->bev, read_cb, NULL, event_cb, hc);
	bufferevent_set_timeouts(hc->bev, &tv, &tv);
	bufferevent_enable(hc->bev, EV_READ);
	/* Failures, even immediate ones, arrive through event_cb. */
	if (bufferevent_socket_connect(hc->bev, addr_sa(target), (int)target->len) == -1) {
		finish(hc, false, "connect failed");
		return -1;
	}
	return 0;
}

bool
healthcheck_is_running(const struct healthcheck *hc)
{
	return hc->bev != NULL;
}

void
healthcheck_free(struct healthcheck *hc)
{
	if (hc == NULL)
		return;
	stop(hc);
	free(hc);
}
