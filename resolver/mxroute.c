/* mxroute.c - show how mail to a domain or address is routed. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: mxroute [-c FILE] [--json] [--explain] "
	    "DOMAIN|ADDRESS...\n");
	if (out == stderr) {
		fprintf(out, "Try 'mxroute --help' for more information.\n");
		return;
	}
	fprintf(out,
	    "Print the next hops for each destination, in order.\n\n"
	    "  --json          machine-readable output\n"
	    "  -h, --help      show this help and exit\n"
	    "  -V, --version   show the version and exit\n");
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	while ((ch = getopt_long(argc, argv, "hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'j': break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("mxroute (mxbroker) %s\n", MXB_VERSION); return 0;
		default: usage(stderr); return 64;
		}
	}
	fprintf(stderr, "mxroute: routing is not implemented yet\n");
	return 2;
}
