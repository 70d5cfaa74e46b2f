/* metricview.c - show the load ratings of metric agents (TCPIP$METRICVIEW). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/log.h"
#include "metrics/lbcd.h"
#include "metrics/view.h"

#define MAX_HOSTS 4096

struct view_opts {
	bool json, check, lbcd;
	double warn, crit;
	bool have_warn, have_crit;
	unsigned timeout_ms;
	const char *key_file;
};

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: metricview [--json] [--timeout S] [--key-file F] [--lbcd] [--check --warn N "
	    "--crit N] HOST[:PORT]...\n");
	if (out == stderr) {
		fprintf(out, "Try 'metricview --help' for more information.\n");
		return;
	}
	fprintf(out,
	    "Poll metricd agents once and print a Host / Rating table, best first.\n\n"
	    "  -j, --json          machine-readable output\n"
	    "  -T, --timeout S     seconds to wait for the answers (default 2; 0.1 steps)\n"
	    "  -k, --key-file F    sign polls: mxbroker.conf text with the key, or a\n"
	    "                      file holding the base64 secret\n"
	    "  -l, --lbcd          poll lbcd daemons (lbcd v3, default port 4330)\n"
	    "      --check         Nagios/Icinga plugin: one status line with perfdata;\n"
	    "                      exit 0 OK, 1 WARNING, 2 CRITICAL (also a key\n"
	    "                      mismatch), 3 a host did not answer\n"
	    "      --warn N        WARNING when a rating is below N\n"
	    "      --crit N        CRITICAL when a rating is below N\n"
	    "  -h, --help          show this help and exit\n"
	    "  -V, --version       show the version and exit\n"
	    "\nThe default port is 4331 (metricd).  See metricview(1).\n");
}

static int
parse_number(const char *s, double lo, double hi, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	return errno != 0 || end == s || *end != '\0' || *out < lo || *out > hi ? -1 : 0;
}

/* Print "metricview: <what><arg>" and the usage; returns the usage status. */
static int
usage_error(const char *what, const char *arg)
{
	fprintf(stderr, "metricview: %s%s\n", what, arg);
	usage(stderr);
	return 64;
}

/* Returns -1 to go on, or an exit status. */
static int
parse_args(int argc, char **argv, struct view_opts *o)
{
	static const struct option longopts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"timeout", required_argument, NULL, 'T'},
	    {"key-file", required_argument, NULL, 'k'},
	    {"lbcd", no_argument, NULL, 'l'},
	    {"check", no_argument, NULL, 'C'},
	    {"warn", required_argument, NULL, 'w'},
	    {"crit", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	double d;
	int ch;

	while ((ch = getopt_long(argc, argv, "jT:k:lhV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'j': o->json = true; break;
		case 'l': o->lbcd = true; break;
		case 'C': o->check = true; break;
		case 'k': o->key_file = optarg; break;
		case 'T':
			if (parse_number(optarg, 0.1, 600, &d) == -1)
				return usage_error("bad timeout (0.1..600 seconds): ", optarg);
			o->timeout_ms = (unsigned)(d * 1000.0 + 0.5);
			break;
		case 'w':
		case 'c':
			if (parse_number(optarg, 0, 1e6, &d) == -1)
				return usage_error("bad threshold: ", optarg);
			*(ch == 'w' ? &o->warn : &o->crit) = d;
			*(ch == 'w' ? &o->have_warn : &o->have_crit) = true;
			break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("metricview (mxbroker) %s\n", MXB_VERSION); return 0;
		default: usage(stderr); return 64;
		}
	}
	if (optind == argc)
		return usage_error("no HOST given", "");
	if (o->check && !(o->have_warn && o->have_crit))
		return usage_error("--check needs --warn N and --crit N", "");
	if (o->lbcd && o->key_file != NULL)
		return usage_error("lbcd has no authentication: --key-file cannot apply", "");
	return -1;
}

int
main(int argc, char **argv)
{
	struct view_opts o = {.timeout_ms = 2000};
	static struct view_host hosts[MAX_HOSTS];
	struct view_key key;
	char err[512];
	size_t n = 0;
	int rc;

	log_init("metricview", LOG_LEVEL_WARN, false);
	if ((rc = parse_args(argc, argv, &o)) != -1)
		return rc;
	if (o.key_file != NULL && view_load_key(o.key_file, &key, err, sizeof(err)) == -1) {
		fprintf(stderr, "metricview: %s\n", err);
		return o.check ? 3 : 1;
	}
	for (int i = optind; i < argc; i++) {
		if (n == MAX_HOSTS)
			return usage_error("too many hosts; at most ", "4096");
		if (view_parse_target(argv[i], o.lbcd ? 4330 : CONFIG_PORT_METRICS, &hosts[n], err,
		        sizeof(err)) == -1) {
			fprintf(stderr, "metricview: %s\n", err);
			return o.check ? 3 : 1;
		}
		n++;
	}
	if (view_poll(hosts, n, o.lbcd ? METRIC_POLL_LBCD : METRIC_POLL_NATIVE,
	        o.key_file != NULL ? &key.key : NULL, o.timeout_ms) == -1)
		return 3;
	view_sort(hosts, n);
	if (o.check)
		return (int)view_print_check(stdout, hosts, n, o.warn, o.crit);
	if (o.json)
		view_print_json(stdout, hosts, n);
	else
		view_print_table(stdout, hosts, n);
	return view_exit_status(hosts, n);
}
