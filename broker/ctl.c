/* ctl.c - brokerd's control socket requests (ctl.h). */
#include "broker/ctl.h"

#include <ctype.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "broker/cluster.h"
#include "common/addr.h"
#include "common/config.h"
#include "common/ctlsock.h"
#include "common/log.h"

#define CTL_NAME_MAX 255 /* a cluster name */

struct ctl {
	struct ctlsock *sock;
	struct clusters **clusters;
};

/* A parsed request: the one input boundary of the control socket. */
struct ctl_request {
	enum { CTL_DRAIN, CTL_UNDRAIN, CTL_SHOW } verb;
	char cluster[CTL_NAME_MAX + 1]; /* lower case, no trailing dot; "" = all */
	struct addr member;
	const char *reason; /* into the request line; NULL = none */
};

int
ctl_socket_path(const struct config *cfg, char *buf, size_t len)
{
	const char *path = cfg->broker.control_socket;
	int n;

	if (path == NULL)
		return -1;
	n = snprintf(buf, len, "%s", path);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

static void
reply_error(struct json_object *r, const char *error)
{
	json_object_object_add(r, "ok", json_object_new_boolean(false));
	json_object_object_add(r, "error", json_object_new_string(error));
}

/* A cluster name: lower-cased, trailing dot dropped; false when unusable. */
static bool
parse_cluster(const char *s, char *out)
{
	size_t n = strlen(s);

	if (n > 0 && s[n - 1] == '.')
		n--;
	if (n == 0 || n > CTL_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (!isalnum(ch) && ch != '-' && ch != '.' && ch != '_')
			return false;
		out[i] = (char)tolower(ch);
	}
	out[n] = '\0';
	return true;
}

/* Printable ASCII and spaces only (it goes to logs, JSON and the state file). */
static bool
reason_valid(const char *s)
{
	if (strlen(s) > CTL_REASON_MAX)
		return false;
	for (; *s != '\0'; s++)
		if (!isprint((unsigned char)*s))
			return false;
	return true;
}

/* Split "verb cluster member reason..." in place; NULL error or a message. */
static const char *
ctl_parse(char *line, struct ctl_request *req)
{
	char *save = NULL;
	char *verb = strtok_r(line, " ", &save), *cluster = strtok_r(NULL, " ", &save);
	char *member = strtok_r(NULL, " ", &save), *reason = strtok_r(NULL, "", &save);

	memset(req, 0, sizeof(*req));
	if (verb == NULL)
		return "empty request";
	if (strcmp(verb, "show") == 0) {
		req->verb = CTL_SHOW;
		if (member != NULL)
			return "usage: show [CLUSTER]";
		if (cluster != NULL && !parse_cluster(cluster, req->cluster))
			return "not a cluster name";
		return NULL;
	}
	if (strcmp(verb, "drain") == 0)
		req->verb = CTL_DRAIN;
	else if (strcmp(verb, "undrain") == 0)
		req->verb = CTL_UNDRAIN;
	else
		return "unknown request (drain, undrain, show)";
	if (cluster == NULL || member == NULL)
		return req->verb == CTL_DRAIN ? "usage: drain CLUSTER MEMBER [REASON]"
		                              : "usage: undrain CLUSTER MEMBER";
	if (req->verb == CTL_UNDRAIN && reason != NULL)
		return "usage: undrain CLUSTER MEMBER";
	if (!parse_cluster(cluster, req->cluster))
		return "not a cluster name";
	if (addr_parse(member, 0, &req->member) == -1)
		return "MEMBER must be an IP address";
	while (reason != NULL && *reason == ' ')
		reason++;
	if (reason != NULL && !reason_valid(reason))
		return "REASON must be printable text of at most 150 characters";
	req->reason = reason != NULL && *reason != '\0' ? reason : NULL;
	return NULL;
}

/* The connecting user's name, else "uid N". */
static void
peer_name(const struct ctlsock_peer *peer, char *buf, size_t len)
{
	const struct passwd *pw = getpwuid(peer->uid);

	if (pw != NULL)
		snprintf(buf, len, "%s", pw->pw_name);
	else
		snprintf(buf, len, "uid %ld", (long)peer->uid);
}

static void
ctl_handle(char *line, const struct ctlsock_peer *peer, struct json_object *r, void *arg)
{
	struct ctl *c = arg;
	struct clusters *cs = *c->clusters;
	struct ctl_request req;
	enum clusters_status st;
	const char *err = ctl_parse(line, &req);
	char who[64];

	if (err != NULL) {
		reply_error(r, err);
		return;
	}
	if (cs == NULL) {
		reply_error(r, "no cluster is configured");
		return;
	}
	if (req.verb == CTL_SHOW) {
		st = clusters_show_json(cs, req.cluster[0] ? req.cluster : NULL, r);
	} else {
		peer_name(peer, who, sizeof(who));
		st = clusters_drain(
		    cs, req.cluster, &req.member, req.verb == CTL_DRAIN, req.reason, who, r);
	}
	if (st != CLUSTERS_OK) {
		reply_error(r, clusters_strerror(st));
		return;
	}
	json_object_object_add(r, "ok", json_object_new_boolean(true));
}

/* The run user's uid/gid when running as root with options { user }; else -1. */
static void
run_user(const struct config *cfg, int *uid, int *gid)
{
	const struct passwd *pw;

	*uid = *gid = -1;
	if (geteuid() != 0 || cfg->options.user == NULL ||
	    (pw = getpwnam(cfg->options.user)) == NULL)
		return;
	*uid = (int)pw->pw_uid;
	*gid = (int)pw->pw_gid;
}

struct ctl *
ctl_new(struct event_base *base, const struct config *cfg, struct clusters **clusters)
{
	struct ctl *c = calloc(1, sizeof(*c));
	char path[4096];
	int uid, gid;

	if (c == NULL)
		return NULL;
	c->clusters = clusters;
	if (ctl_socket_path(cfg, path, sizeof(path)) == -1) {
		log_warnx("control: the socket path is too long");
		free(c);
		return NULL;
	}
	run_user(cfg, &uid, &gid);
	if ((c->sock = ctlsock_new(base, path, uid, gid, ctl_handle, c, "control")) == NULL) {
		free(c);
		return NULL;
	}
	log_debug("control: listening on %s", path);
	return c;
}

void
ctl_free(struct ctl *c)
{
	if (c == NULL)
		return;
	ctlsock_free(c->sock);
	free(c);
}
