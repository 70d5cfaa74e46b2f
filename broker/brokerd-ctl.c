/* brokerd-ctl.c - drain and undrain cluster members of a running brokerd
 * and show its ranked tables, over its control socket (broker/ctl.h). */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "broker/ctl.h"
#include "common/config.h"
#include "common/ctlsock.h"
#include "common/daemon.h"
#include "common/jsonout.h"
#include "common/log.h"

#define EXIT_FAIL        1
#define EXIT_USAGE       64
#define EXIT_UNAVAILABLE 69 /* brokerd does not answer */
#define CALL_TIMEOUT_SEC 10

struct opts {
	const char *config;
	const char *socket; /* -s: overrides the path derived from the configuration */
	const char *reason;
	bool json;
};

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: brokerd-ctl [-c FILE] [-s SOCKET] [--json] "
	    "drain CLUSTER MEMBER [--reason TEXT] |\n"
	    "       undrain CLUSTER MEMBER | show [CLUSTER]\n");
	if (out == stderr) {
		fprintf(out, "Try 'brokerd-ctl --help' for more information.\n");
		return;
	}
	fprintf(out,
	    "Drain and undrain cluster members of the running brokerd; show the ranked table.\n\n"
	    "  drain CLUSTER MEMBER   take MEMBER out of CLUSTER's answer now; kept\n"
	    "                         across reloads and restarts until undrain\n"
	    "  undrain CLUSTER MEMBER let it back into the ranking\n"
	    "  show [CLUSTER]         the ranked table of every cluster, or of one\n\n"
	    "  -c FILE                configuration file (default " DAEMON_DEFAULT_CONFIG ")\n"
	    "  -s SOCKET              control socket (default: broker { control-socket },\n"
	    "                         <directory>/brokerd.sock)\n"
	    "  -r, --reason TEXT      drain: why (shown in /status, show and the log)\n"
	    "  --json                 machine-readable output\n"
	    "  -h, --help             show this help and exit\n"
	    "  -V, --version          show the version and exit\n");
}

/* An error: on stderr, or as {"error": ...} on stdout under --json. */
static int
fail(const struct opts *o, int rc, const char *what, const char *msg)
{
	if (o->json)
		jsonout_error("%s%s%s", what, what[0] ? ": " : "", msg);
	else
		fprintf(stderr, "brokerd-ctl: %s%s%s\n", what, what[0] ? ": " : "", msg);
	return rc;
}

/* The request line for argv (the command and its operands); 0 or EXIT_USAGE. */
static int
build_request(const struct opts *o, int argc, char **argv, char *req, size_t len)
{
	const char *cmd = argv[0];
	int n;

	if (strcmp(cmd, "show") == 0 && argc <= 2 && o->reason == NULL)
		n = snprintf(req, len, "show%s%s", argc == 2 ? " " : "", argc == 2 ? argv[1] : "");
	else if (strcmp(cmd, "drain") == 0 && argc == 3)
		n = snprintf(req, len, "drain %s %s%s%s", argv[1], argv[2], o->reason ? " " : "",
		    o->reason ? o->reason : "");
	else if (strcmp(cmd, "undrain") == 0 && argc == 3 && o->reason == NULL)
		n = snprintf(req, len, "undrain %s %s", argv[1], argv[2]);
	else
		return EXIT_USAGE;
	if (n < 0 || (size_t)n >= len || strpbrk(req, "\r\n") != NULL)
		return EXIT_USAGE;
	return 0;
}

static void
print_member(const char *verb, struct json_object *r)
{
	struct json_object *m, *addr, *why;

	if (!json_object_object_get_ex(r, "member", &m) ||
	    !json_object_object_get_ex(m, "address", &addr) ||
	    !json_object_object_get_ex(m, "reason", &why))
		return;
	printf("%s %s: %s\n", verb, json_object_get_string(addr), json_object_get_string(why));
}

static void
print_tables(struct json_object *r)
{
	struct json_object *cs, *table;

	if (!json_object_object_get_ex(r, "clusters", &cs))
		return;
	for (size_t i = 0; i < json_object_array_length(cs); i++) {
		if (i > 0)
			printf("\n");
		if (!json_object_object_get_ex(json_object_array_get_idx(cs, i), "table", &table))
			continue;
		for (size_t k = 0; k < json_object_array_length(table); k++)
			printf("%s\n", json_object_get_string(json_object_array_get_idx(table, k)));
	}
}

static int
run(const struct opts *o, const char *path, int argc, char **argv)
{
	char req[CTLSOCK_LINE_MAX + 1], msg[4200];
	struct json_object *r, *ok, *err;
	int rc = 0;

	if (build_request(o, argc, argv, req, sizeof(req)) != 0) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if ((r = ctlsock_call(path, req, CALL_TIMEOUT_SEC)) == NULL) {
		snprintf(msg, sizeof(msg), "brokerd does not answer on %s: %s", path,
		    errno == EPROTO ? "not a brokerd reply" : strerror(errno));
		return fail(o, EXIT_UNAVAILABLE, "", msg);
	}
	if (!json_object_object_get_ex(r, "ok", &ok) || !json_object_get_boolean(ok)) {
		json_object_object_get_ex(r, "error", &err);
		rc = fail(
		    o, EXIT_FAIL, argv[0], err != NULL ? json_object_get_string(err) : "refused");
	} else if (o->json) {
		json_object_object_del(r, "ok");
		jsonout_print(stdout, r, true);
	} else if (strcmp(argv[0], "show") == 0) {
		print_tables(r);
	} else {
		print_member(strcmp(argv[0], "drain") == 0 ? "drained" : "undrained", r);
	}
	json_object_put(r);
	return rc;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"reason", required_argument, NULL, 'r'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	struct opts o = {DAEMON_DEFAULT_CONFIG, NULL, NULL, false};
	char path[4096], err[1024];
	struct config *cfg;
	int ch, rc;

	while ((ch = getopt_long(argc, argv, "c:s:r:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': o.config = optarg; break;
		case 's': o.socket = optarg; break;
		case 'r': o.reason = optarg; break;
		case 'j': o.json = true; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("brokerd-ctl (mxbroker) %s\n", MXB_VERSION); return 0;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind == argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	log_init("brokerd-ctl", LOG_LEVEL_WARN, false);
	if (o.socket == NULL) {
		if ((cfg = config_load(o.config, err, sizeof(err))) == NULL)
			return fail(&o, EXIT_FAIL, "", err);
		rc = ctl_socket_path(cfg, path, sizeof(path));
		config_free(cfg);
		if (rc == -1)
			return fail(&o, EXIT_FAIL, "", "control socket path too long");
		o.socket = path;
	}
	return run(&o, o.socket, argc - optind, argv + optind);
}
