/* smtp-relayctl.c - control the SMTP relay queue. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: smtp-relayctl [-c FILE] [--json] "
	    "list | show ID | remove ID | flush [ID] | analyze [--repair] | stats\n");
	if (out == stderr) {
		fprintf(out, "Try 'smtp-relayctl --help' for more information.\n");
		return;
	}
	fprintf(out,
	    "List, show, remove, flush and analyze queued messages.\n\n"
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
		case 'V': printf("smtp-relayctl (mxbroker) %s\n", MXB_VERSION); return 0;
		default: usage(stderr); return 64;
		}
	}
	fprintf(stderr, "smtp-relayctl: queue control is not implemented yet\n");
	return 69;
}
