/* metricview.c - show the load ratings of metric agents (TCPIP$METRICVIEW). */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/jsonout.h"
#include "common/log.h"
#include "metrics/lbcd.h"
#include "metrics/view.h"

#define MAX_HOSTS  4096
#define EXIT_USAGE 64

struct view_opts {
	bool json, check, lbcd;
	struct view_check thresholds;
	unsigned timeout_ms;
	const char *key_file, *key_name;
	uint16_t status_port;
};

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: metricview [--json] [--timeout S] [--key-file F [--key NAME]] [--lbcd] "
	    "[--check [-w N] [-c N]] HOST[:PORT]...\n");
	if (out == stderr) {
		fprintf(out, "Try 'metricview --help' for more information.\n");
		return;
	}
	fprintf(out,
	    "Poll metricd agents once and print a Host / Rating table, best first.\n\n"
	    "  -j, --json          machine-readable output ({\"hosts\": [...]})\n"
	    "  -T, -t, --timeout S seconds to wait for the answers (default 2; 0.1 steps)\n"
	    "  -k, --key-file F    sign polls: mxbroker.conf text with key statements, or\n"
	    "                      a file holding the base64 secret\n"
	    "      --key NAME      the key of that name in a file with several keys\n"
	    "  -l, --lbcd          poll lbcd daemons (lbcd v3, default port 4330)\n"
	    "  -s, --status-port P the agents' http-listen port, read for who drained a\n"
	    "                      host, why and when (default %d)\n"
	    "      --check         Nagios/Icinga plugin: one status line with perfdata;\n"
	    "                      exit 0 OK, 1 WARNING, 2 CRITICAL (also a key\n"
	    "                      mismatch), 3 UNKNOWN (a host did not answer, or an\n"
	    "                      error such as a bad option or key file)\n"
	    "  -w, --warn N        WARNING when a rating is below N (N or N:, default %g)\n"
	    "  -c, --crit N        CRITICAL when a rating is below N (N or N:, default %g)\n"
	    "  -h, --help          show this help and exit\n"
	    "  -V, --version       show the version and exit\n"
	    "\nThe default port is 4331 (metricd).  See metricview(1).\n",
	    CONFIG_PORT_METRICS_HTTP, VIEW_WARN_DEFAULT, VIEW_CRIT_DEFAULT);
}

/*
 * Report an error the way the mode asks: the plugin's UNKNOWN line, a JSON
 * {"error": ...}, or "metricview: ..." on stderr (with the usage hint when
 * `status` is EXIT_USAGE).  Returns the exit status.
 */
static int __attribute__((format(printf, 3, 4)))
fail(const struct view_opts *o, int status, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (o->check)
		return (int)view_print_unknown(stdout, "%s", msg);
	if (o->json) {
		jsonout_error("%s", msg);
		return status;
	}
	fprintf(stderr, "metricview: %s\n", msg);
	if (status == EXIT_USAGE)
		usage(stderr);
	return status;
}

static int
parse_number(const char *s, double lo, double hi, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	return errno != 0 || end == s || *end != '\0' || *out < lo || *out > hi ? -1 : 0;
}

/* The output mode decides how even a usage error is reported: look first. */
static void
scan_mode(int argc, char **argv, struct view_opts *o)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (strcmp(argv[i], "--check") == 0)
			o->check = true;
		else if (strcmp(argv[i], "--json") == 0 || strcmp(argv[i], "-j") == 0)
			o->json = true;
	}
}

/* One option; returns -1 to go on, or an exit status. */
static int
take_option(int ch, struct view_opts *o, const char *seen)
{
	double d;

	switch (ch) {
	case 'j': o->json = true; return -1;
	case 'l': o->lbcd = true; return -1;
	case 'C': o->check = true; return -1;
	case 'k': o->key_file = optarg; return -1;
	case 'K': o->key_name = optarg; return -1;
	case 'T':
		if (parse_number(optarg, 0.1, 600, &d) == -1)
			return fail(o, EXIT_USAGE, "bad timeout '%s' (0.1..600 seconds)", optarg);
		o->timeout_ms = (unsigned)(d * 1000.0 + 0.5);
		return -1;
	case 's':
		if (parse_number(optarg, 1, 65535, &d) == -1 || d != (double)(uint16_t)d)
			return fail(o, EXIT_USAGE, "bad status port '%s'", optarg);
		o->status_port = (uint16_t)d;
		return -1;
	case 'w':
	case 'c':
		if (view_parse_threshold(
		        optarg, ch == 'w' ? &o->thresholds.warn : &o->thresholds.crit) == -1)
			return fail(o, EXIT_USAGE,
			    "bad %s threshold '%s' (low is bad: N or N:, N >= 0)",
			    ch == 'w' ? "warning" : "critical", optarg);
		return -1;
	case 'h': usage(stdout); return 0;
	case 'V': printf("metricview (mxbroker) %s\n", MXB_VERSION); return 0;
	default: return fail(o, EXIT_USAGE, "bad option or missing argument: %s", seen);
	}
}

/* Returns -1 to go on, or an exit status. */
static int
parse_args(int argc, char **argv, struct view_opts *o)
{
	static const struct option longopts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"timeout", required_argument, NULL, 'T'},
	    {"key-file", required_argument, NULL, 'k'},
	    {"key", required_argument, NULL, 'K'},
	    {"lbcd", no_argument, NULL, 'l'},
	    {"status-port", required_argument, NULL, 's'},
	    {"check", no_argument, NULL, 'C'},
	    {"warn", required_argument, NULL, 'w'},
	    {"crit", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	int ch, rc;

	scan_mode(argc, argv, o);
	opterr = !(o->check || o->json); /* those modes report on stdout */
	while ((ch = getopt_long(argc, argv, "jT:t:k:ls:w:c:hV", longopts, NULL)) != -1)
		if ((rc = take_option(ch == 't' ? 'T' : ch, o, argv[optind - 1])) != -1)
			return rc;
	if (optind == argc)
		return fail(o, EXIT_USAGE, "no HOST given");
	if (o->thresholds.crit > o->thresholds.warn)
		return fail(o, EXIT_USAGE,
		    "inverted thresholds: critical %g is above warning %g (a rating below "
		    "the warning threshold warns, below the critical one is critical)",
		    o->thresholds.crit, o->thresholds.warn);
	if (o->check && o->json)
		return fail(o, EXIT_USAGE, "--check and --json cannot be combined");
	if (o->lbcd && o->key_file != NULL)
		return fail(o, EXIT_USAGE, "lbcd has no authentication: --key-file cannot apply");
	if (o->key_name != NULL && o->key_file == NULL)
		return fail(o, EXIT_USAGE, "--key NAME needs --key-file FILE");
	return -1;
}

static int
load_hosts(const struct view_opts *o, int argc, char **argv, struct view_host *hosts, size_t *n)
{
	char err[512];

	for (int i = optind; i < argc; i++) {
		if (*n == MAX_HOSTS)
			return fail(o, EXIT_USAGE, "too many hosts; at most %d", MAX_HOSTS);
		if (view_parse_target(argv[i], o->lbcd ? CONFIG_PORT_LBCD : CONFIG_PORT_METRICS,
		        &hosts[*n], err, sizeof(err)) == -1)
			return fail(o, 1, "%s", err);
		(*n)++;
	}
	return -1;
}

int
main(int argc, char **argv)
{
	struct view_opts o = {
	    .timeout_ms = 2000,
	    .thresholds = {VIEW_WARN_DEFAULT, VIEW_CRIT_DEFAULT, VIEW_RATING_MAX},
	    .status_port = CONFIG_PORT_METRICS_HTTP,
	};
	static struct view_host hosts[MAX_HOSTS];
	struct view_key key;
	char err[512];
	size_t n = 0;
	int rc;

	log_init("metricview", LOG_LEVEL_WARN, false);
	if ((rc = parse_args(argc, argv, &o)) != -1)
		return rc;
	if (o.lbcd)
		o.thresholds.max = VIEW_LBCD_MAX;
	if (o.key_file != NULL &&
	    view_load_key(o.key_file, o.key_name, &key, err, sizeof(err)) == -1)
		return fail(&o, 1, "key file %s", err);
	if ((rc = load_hosts(&o, argc, argv, hosts, &n)) != -1)
		return rc;
	if (view_poll(hosts, n, o.lbcd ? METRIC_POLL_LBCD : METRIC_POLL_NATIVE,
	        o.key_file != NULL ? &key.key : NULL, o.timeout_ms) == -1)
		return fail(&o, VIEW_UNKNOWN, "cannot start polling");
	if (!o.lbcd && view_fetch_drain(hosts, n, o.status_port, o.timeout_ms) == -1)
		return fail(&o, VIEW_UNKNOWN, "cannot read the agents' /status");
	view_sort(hosts, n);
	if (o.check)
		return (int)view_print_check(stdout, hosts, n, &o.thresholds);
	if (o.json)
		view_print_json(stdout, hosts, n);
	else
		view_print_table(stdout, hosts, n);
	return view_exit_status(hosts, n);
}
